/*
 * libFuzzer target: the gateway's config file, read as config_load reads it
 * (from a file).
 *
 * Beyond memory errors it aborts when a config that loaded holds a value
 * outside what config.c's table and the README promise (every number
 * within its bounds, a listen port that is a port, a base URL that is
 * http(s) with a host and no trailing slash, query, fragment, userinfo or
 * whitespace, paths made absolute), or when a refused config comes back
 * without a reason.
 *
 *   make fuzz FUZZ_TARGETS=config
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "app/config.h"
#include "lib/err.h"
#include "lib/secmem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MIB (1024LL * 1024)

static int memfd = -1;
static char memfd_path[64];

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_config: %s: %s\n", what, detail ? detail : "(null)");
	abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	secmem_init();
	memfd = memfd_create("fuzz_config", 0);
	if (memfd < 0)
		die("memfd_create", "failed");
	snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
	return 0;
}

static void
within(const char *key, long long v, long long lo, long long hi)
{
	char msg[128];

	if (v < lo || v > hi) {
		snprintf(msg, sizeof(msg), "%lld not in [%lld, %lld]", v, lo, hi);
		die(key, msg);
	}
}

static void
absolute(const char *key, const char *path, int dash_ok)
{
	if (path == NULL)
		return;
	if (path[0] != '/' && !(dash_ok && strcmp(path, "-") == 0))
		die(key, path);
}

static void
check(const struct config *c)
{
	const char *u = c->upstream_base_url;
	size_t n;

	within("upstream.timeout_ms", c->upstream_timeout_ms, 1, 3600000);
	within("upstream.connect_timeout_ms", c->upstream_connect_timeout_ms, 1, 600000);
	within("upstream.max_response_bytes", c->upstream_max_response_bytes, 1024, 1024 * MIB);
	within("limits.max_body_bytes", c->max_body_bytes, 1024, 1024 * MIB);
	within("limits.max_header_bytes", c->max_header_bytes, 1024, MIB);
	within("limits.header_timeout_ms", c->header_timeout_ms, 1, 3600000);
	within("limits.body_timeout_ms", c->body_timeout_ms, 1, 3600000);
	within("limits.idle_timeout_ms", c->idle_timeout_ms, 1, 3600000);
	within("limits.max_connections", c->max_connections, 1, 1000000);
	within("audit.intent_timeout_ms", c->audit_intent_timeout_ms, 1, 3600000);
	within("listen port", c->listen_port, 0, 65535);
	if (c->listen_host == NULL || c->listen_host[0] == '\0')
		die("listen host empty", c->listen);
	if (u == NULL)
		die("no base_url", NULL);
	n = strlen(u);
	if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0)
		die("base_url scheme", u);
	if (strpbrk(u, " \t\r\n?#@") != NULL || (n > 0 && u[n - 1] == '/'))
		die("base_url form", u);
	if (u[strncmp(u, "https://", 8) == 0 ? 8 : 7] == '\0')
		die("base_url without a host", u);
	absolute("audit.path", c->audit_path, 1);
	absolute("policy_file", c->policy_file, 0);
	absolute("upstream.ca_file", c->upstream_ca_file, 0);
	if (c->log_level == NULL ||
	    (strcmp(c->log_level, "debug") != 0 && strcmp(c->log_level, "info") != 0 &&
	     strcmp(c->log_level, "warn") != 0 && strcmp(c->log_level, "error") != 0))
		die("log.level", c->log_level);
	/* auth.jwt's lists, when it loaded: bounded, every name non-empty. */
	if (c->jwt) {
		size_t i;

		if (c->jwt_naudiences < 1 || c->jwt_naudiences > 16)
			die("auth.jwt.audience count", NULL);
		for (i = 0; i < c->jwt_naudiences; i++)
			if (c->jwt_audiences[i][0] == '\0' || strlen(c->jwt_audiences[i]) > 200)
				die("auth.jwt.audience", c->jwt_audiences[i]);
		if (c->jwt_ngroups < 1 || c->jwt_ngroups > 8)
			die("auth.jwt.groups_claim count", NULL);
		for (i = 0; i < c->jwt_ngroups; i++)
			if (c->jwt_groups[i][0] == '\0')
				die("auth.jwt.groups_claim", NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct errlist errs;
	struct config *c;
	size_t i;

	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
		die("memfd", "write failed");
	memset(&errs, 0, sizeof(errs));
	c = config_load(memfd_path, &errs);
	if (c == NULL) {
		if (errs.n == 0 && errs.dropped == 0)
			die("a refused config without a reason", "");
		for (i = 0; i < errs.n; i++)
			if (strncmp(errs.msg[i], memfd_path, strlen(memfd_path)) != 0)
				die("a reason that does not name the file", errs.msg[i]);
		return 0;
	}
	check(c);
	config_free(c);
	return 0;
}
