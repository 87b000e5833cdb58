/* sched_getaffinity and CPU_COUNT, for workers: "auto". */
#define _GNU_SOURCE /* NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp) */
#include "app/config.h"

#include <jansson.h>
#include <sched.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/note.h"
#include "http/conn.h"
#include "http/upstream.h"
#include "lib/conftable.h"
#include "lib/jsondoc.h"
#include "lib/secmem.h"
#include "policy/jwt.h"
#include "policy/tenant.h"

#define K(field) offsetof(struct config, field)
#define MiB      (1024LL * 1024)

/* The largest legal create body carries an inline skill of 70254592
 * base64 characters; the default leaves room for the JSON around it. */
#define DEFAULT_MAX_BODY (75 * MiB)

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const tls_versions[] = {"1.2", "1.3", NULL};
static const char *const auth_modes[] = {"passthrough", "gateway_keys", NULL};
static const char *const store_types[] = {"memory", "redis", NULL};
static const char *const store_failure_modes[] = {"fail_closed", "fail_open", NULL};
static const char *const fsync_modes[] = {"always", "interval", "never", NULL};

static const struct confkey config_keys[] = {
        {"listen", CT_STRING, K(listen), "127.0.0.1:8080"},
        {"upstream.base_url", CT_STRING, K(upstream_base_url), "https://api.openai.com/v1"},
        {"upstream.timeout_ms", CT_INT, K(upstream_timeout_ms), .def_int = 60000, .min = 1,
         .max = 3600000},
        {"upstream.connect_timeout_ms", CT_INT, K(upstream_connect_timeout_ms), .def_int = 5000,
         .min = 1, .max = 600000},
        {"upstream.max_response_bytes", CT_INT, K(upstream_max_response_bytes), .def_int = 16 * MiB,
         .min = 1024, .max = 1024 * MiB},
        {"upstream.max_idle_connections", CT_INT, K(upstream_max_idle_connections), .def_int = 1024,
         .min = 1, .max = 100000},
        {"upstream.ca_file", CT_STRING, K(upstream_ca_file), NULL},
        {"upstream.insecure_skip_verify", CT_BOOL, K(upstream_insecure_skip_verify), .def_int = 0},
        {"audit.path", CT_STRING, K(audit_path), "-"},
        {"audit.hmac_key_env", CT_STRING, K(audit_hmac_key_env), NULL},
        {"audit.hmac_key_file", CT_STRING, K(audit_hmac_key_file), NULL},
        {"audit.signing_key_file", CT_STRING, K(audit_signing_key_file), NULL},
        {"audit.origin", CT_STRING, K(audit_origin), NULL},
        {"audit.checkpoint_every", CT_INT, K(audit_checkpoint_every), .def_int = 1000, .min = 1,
         .max = 100000000},
        {"audit.checkpoint_interval_ms", CT_INT, K(audit_checkpoint_interval_ms), .def_int = 60000,
         .min = 10, .max = 86400000},
        {"audit.witness_url", CT_STRING, K(audit_witness_url), NULL},
        {"audit.anchor", CT_STRING, K(audit_anchor), NULL},
        {"audit.fsync", CT_ENUM, K(audit_fsync), "interval", .enumv = fsync_modes},
        {"audit.fsync_interval_ms", CT_INT, K(audit_fsync_interval_ms), .def_int = 1000, .min = 1,
         .max = 3600000},
        {"audit.intent_timeout_ms", CT_INT, K(audit_intent_timeout_ms), .def_int = 10000, .min = 1,
         .max = 3600000},
        {"audit.on_failure", CT_ENUM, K(audit_on_failure), "fail_closed",
         .enumv = store_failure_modes},
        {"audit.max_bytes", CT_INT, K(audit_max_bytes), .def_int = 0, .min = 0, .max = 1LL << 50},
        {"policy_file", CT_STRING, K(policy_file), "policies/default.json"},
        {"log.level", CT_ENUM, K(log_level), "info", .enumv = log_levels},
        {"limits.max_body_bytes", CT_INT, K(max_body_bytes), .def_int = DEFAULT_MAX_BODY,
         .min = 1024, .max = 1024 * MiB},
        {"limits.spool_dir", CT_STRING, K(spool_dir), NULL},
        {"limits.max_spool_bytes", CT_INT, K(max_spool_bytes), .def_int = 1024 * MiB,
         .min = 1 * MiB, .max = 1LL << 50},
        {"limits.max_json_bytes", CT_INT, K(max_json_bytes), .def_int = 1 * MiB, .min = 1 * MiB,
         .max = 1024 * MiB},
        {"limits.max_header_bytes", CT_INT, K(max_header_bytes), .def_int = 16384, .min = 1024,
         .max = 1024 * 1024},
        {"limits.header_timeout_ms", CT_INT, K(header_timeout_ms), .def_int = 10000, .min = 1,
         .max = 3600000},
        {"limits.body_timeout_ms", CT_INT, K(body_timeout_ms), .def_int = 60000, .min = 1,
         .max = 3600000},
        {"limits.idle_timeout_ms", CT_INT, K(idle_timeout_ms), .def_int = 60000, .min = 1,
         .max = 3600000},
        {"limits.max_connections", CT_INT, K(max_connections), .def_int = 10000, .min = 1,
         .max = 1000000},
        {"routes.passthrough_unknown", CT_BOOL, K(passthrough_unknown), .def_int = 0},
        {"tls.cert", CT_STRING, K(tls_cert), NULL},
        {"tls.key", CT_STRING, K(tls_key), NULL},
        {"tls.min_version", CT_ENUM, K(tls_min_version), "1.2", .enumv = tls_versions},
        {"tls.client_ca", CT_STRING, K(tls_client_ca), NULL},
        {"tls.require_client_cert", CT_BOOL, K(tls_require_client_cert), .def_int = 0},
        {"upstream.pinned_pubkey", CT_STRING, K(upstream_pinned_pubkey), NULL},
        {"admin_listen", CT_STRING, K(admin_listen), NULL},
        {"log.path", CT_STRING, K(log_path), "-"},
        {"pid_file", CT_STRING, K(pid_file), NULL},
        {"shutdown_grace_ms", CT_INT, K(shutdown_grace_ms), .def_int = 10000, .min = 0,
         .max = 3600000},
        {"limits.max_inflight", CT_INT, K(max_inflight), .def_int = 4096, .min = 1, .max = 1000000},
        {"workers", CT_JSON, K(workers_doc), NULL}, /* absent: 1 */
        {"auth.mode", CT_ENUM, K(auth_mode), "passthrough", .enumv = auth_modes},
        {"upstream.api_key_env", CT_STRING, K(upstream_api_key_env), NULL},
        {"upstream.api_key_file", CT_STRING, K(upstream_api_key_file), NULL},
        {"upstream.organization", CT_STRING, K(upstream_organization), NULL},
        {"upstream.project", CT_STRING, K(upstream_project), NULL},
        {"auth.jwt.issuer", CT_STRING, K(jwt_issuer), NULL},
        {"auth.jwt.audience", CT_JSON, K(jwt_audience), NULL},
        {"auth.jwt.jwks_url", CT_STRING, K(jwt_jwks_url), NULL},
        {"auth.jwt.jwks_file", CT_STRING, K(jwt_jwks_file), NULL},
        {"auth.jwt.ca_file", CT_STRING, K(jwt_ca_file), NULL},
        {"auth.jwt.refresh_ms", CT_INT, K(jwt_refresh_ms), .def_int = 300000, .min = 10000,
         .max = 86400000},
        {"auth.jwt.clock_skew_s", CT_INT, K(jwt_clock_skew_s), .def_int = 60, .min = 0, .max = 600},
        {"auth.jwt.groups_claim", CT_JSON, K(jwt_groups_claim), .def_json = "\"groups\""},
        {"auth.jwt.person_claims", CT_STRLIST, K(jwt_person_claims), .def_json = "[\"email\"]"},
        {"store.type", CT_ENUM, K(store_type), "memory", .enumv = store_types},
        {"store.url", CT_STRING, K(store_url), "redis://127.0.0.1:6379/0"},
        {"store.on_unavailable", CT_ENUM, K(store_on_unavailable), "fail_closed",
         .enumv = store_failure_modes},
        {"store.timeout_ms", CT_INT, K(store_timeout_ms), .def_int = 1000, .min = 1, .max = 60000},
        {"store.path", CT_STRING, K(store_path), "gateway-state.db"},
        {"store.password_env", CT_STRING, K(store_password_env), NULL},
        {"store.password_file", CT_STRING, K(store_password_file), NULL},
        {"store.ca_file", CT_STRING, K(store_ca_file), NULL},
        {"store.cert_file", CT_STRING, K(store_cert_file), NULL},
        {"store.key_file", CT_STRING, K(store_key_file), NULL},
        {"telemetry.otlp_url", CT_STRING, K(otlp_url), NULL},
        {"telemetry.service_name", CT_STRING, K(otlp_service_name), "containers-gateway"},
        {"telemetry.timeout_ms", CT_INT, K(otlp_timeout_ms), .def_int = 5000, .min = 1,
         .max = 60000},
        {"telemetry.flush_ms", CT_INT, K(otlp_flush_ms), .def_int = 1000, .min = 10, .max = 60000},
        {"pricing.session_minutes", CT_INT, K(session_minutes), .def_int = 20, .min = 1,
         .max = 1440},
        {"pricing.per_session_usd", CT_JSON, K(prices_doc),
         .def_json = "{\"1g\": 0.03, \"4g\": 0.12, \"16g\": 0.48, \"64g\": 1.92}"},
        {NULL},
};

/* Puts dir in front of a relative *path, so paths mean the same whatever
 * the working directory of whoever reads the config. "-" stays as it is
 * only for the logs (dash), where it means standard output or error; for
 * any other file it is a file named "-". */
static int
resolve(char **path, const char *dir, int dash)
{
	char *abs;
	size_t n;

	if (*path == NULL || (*path)[0] == '/' || (dash && strcmp(*path, "-") == 0))
		return 0;
	n = strlen(dir) + strlen(*path) + 2;
	abs = malloc(n);
	if (abs == NULL)
		return -1;
	snprintf(abs, n, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", *path);
	free(*path);
	*path = abs;
	return 0;
}

static void
parse_listen(struct config *c, struct errlist *errs)
{
	const char *s = c->listen, *colon, *host_end;
	const char *host = s;
	long port = 0;
	const char *p;

	colon = strrchr(s, ':');
	if (colon == NULL || colon[1] == '\0') {
		errlist_add(errs, c->file, "listen",
		            "must be \"host:port\", e.g. \"127.0.0.1:8080\"");
		return;
	}
	for (p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || port > 65535) {
			errlist_add(errs, c->file, "listen",
			            "port must be a number from 0 to 65535");
			return;
		}
		port = port * 10 + (*p - '0');
	}
	if (port > 65535) {
		errlist_add(errs, c->file, "listen", "port must be a number from 0 to 65535");
		return;
	}
	host_end = colon;
	if (s[0] == '[') {
		if (colon[-1] != ']') {
			errlist_add(errs, c->file, "listen", "an IPv6 address must be in brackets");
			return;
		}
		host = s + 1;
		host_end = colon - 1;
	} else if (memchr(s, ':', (size_t)(colon - s))) {
		errlist_add(errs, c->file, "listen",
		            "an IPv6 address must be in brackets, as in \"[::1]:8080\"");
		return;
	}
	if (host_end == host) {
		errlist_add(errs, c->file, "listen", "the host is empty");
		return;
	}
	c->listen_host = strndup(host, (size_t)(host_end - host));
	c->listen_port = (int)port;
}

static void
check_base_url(struct config *c, struct errlist *errs)
{
	char *u = c->upstream_base_url;
	size_t n = strlen(u), scheme;

	scheme = strncmp(u, "https://", 8) == 0 ? 8 : strncmp(u, "http://", 7) == 0 ? 7 : 0;
	if (scheme == 0)
		errlist_add(errs, c->file, "upstream.base_url",
		            "must start with https:// or http://");
	else if (u[scheme] == '\0' || u[scheme] == '/')
		errlist_add(errs, c->file, "upstream.base_url", "has no host");
	else if (strpbrk(u, " \t\r\n?#@") != NULL)
		errlist_add(errs, c->file, "upstream.base_url",
		            "must not contain whitespace, userinfo, a query or a fragment");
	/* A trailing slash would double the one every route starts with. */
	while (n > scheme + 1 && u[n - 1] == '/')
		u[--n] = '\0';
}

/* A key named by an environment variable or held in a file (its first
 * line), copied into memory that is wiped when freed: the organization's
 * upstream key (gateway_keys mode) and the audit log's HMAC key. */
static char *
load_key(const struct config *c, const char *env, const char *file, const char *at, size_t *len,
         struct errlist *errs)
{
	const char *v = NULL;
	char buf[1024], *key = NULL;
	size_t n = 0;
	FILE *f;

	if (env) {
		v = getenv(env);
		n = v ? strlen(v) : 0;
	} else if ((f = fopen(file, "r")) != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
		buf[n] = '\0';
		v = buf;
	}
	if (v == NULL || n == 0 || n >= sizeof(buf) - 1 || strpbrk(v, "\r\n") != NULL)
		errlist_add(errs, c->file, at,
		            "no usable key: %s is unset, empty, unreadable or has line breaks",
		            env ? env : file);
	else if ((key = secmem_alloc(n + 1)) != NULL) {
		memcpy(key, v, n);
		key[n] = '\0';
		*len = n;
	}
	secmem_wipe(buf, sizeof(buf));
	return key;
}

/*
 * The origin checkpoints name (and the key name they are signed under):
 * audit.origin, or "<hostname>/audit". Each gateway writes a log of its
 * own, so the host tells the logs of replicas apart.
 */
static void
check_audit_origin(struct config *c, struct errlist *errs)
{
	char host[256] = "";
	size_t i;

	if (c->audit_origin == NULL) {
		if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "localhost");
		for (i = 0; host[i]; i++)
			if (host[i] <= ' ' || host[i] > '~' || host[i] == '+' || host[i] == '/')
				host[i] = '-';
		if ((c->audit_origin = malloc(strlen(host) + 7)) != NULL)
			sprintf(c->audit_origin, "%s/audit", host);
		return;
	}
	if (!note_name_valid(c->audit_origin))
		errlist_add(errs, c->file, "audit.origin",
		            "must be 1 to 255 printable ASCII characters without spaces or '+', "
		            "such as \"gateway.example.com/audit\"");
}

/* Where checkpoints are shipped; a note without a signature proves nothing
 * to anyone else, so shipping needs the signing key. */
static void
check_audit_anchors(const struct config *c, struct errlist *errs)
{
	const char *u = c->audit_witness_url;

	if (u && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
		errlist_add(errs, c->file, "audit.witness_url",
		            "must be an http:// or https:// URL");
	if (c->audit_anchor && strncmp(c->audit_anchor, "redis://", 8) != 0)
		errlist_add(errs, c->file, "audit.anchor", "must be \"redis://host[:port][/db]\"");
	if ((u || c->audit_anchor) && c->audit_signing_key_file == NULL)
		errlist_add(errs, c->file, u ? "audit.witness_url" : "audit.anchor",
		            "checkpoints are shipped signed: set audit.signing_key_file too");
}

/* Whether url may serve keys: https, or http to this very machine. */
static int
jwks_url_ok(const char *url)
{
	static const char *const local[] = {"http://localhost", "http://127.0.0.1", "http://[::1]",
	                                    NULL};
	size_t i, n;

	if (strncmp(url, "https://", 8) == 0)
		return url[8] != '\0' && url[8] != '/' && strpbrk(url, " \t\r\n@#") == NULL;
	for (i = 0; local[i]; i++) {
		n = strlen(local[i]);
		if (strncmp(url, local[i], n) == 0 && (url[n] == ':' || url[n] == '/'))
			return strpbrk(url, " \t\r\n@#") == NULL;
	}
	return 0;
}

#define GROUPS_PATH_MAX 8
#define AUDIENCES_MAX   16

/* A string list at key that may also be one string: 1 to max strings of 1
 * to maxlen bytes, borrowed from v into a new array *out of *n. Anything
 * else adds what to errs (and leaves *out NULL or short). */
static void
string_or_list(struct config *c, struct errlist *errs, const json_t *v, const char *key, size_t max,
               size_t maxlen, const char *what, const char ***out, size_t *n)
{
	const json_t *item;
	size_t i, count = json_is_array(v) ? json_array_size(v) : 1;

	if (!json_is_string(v) && (!json_is_array(v) || count == 0 || count > max)) {
		errlist_add(errs, c->file, key, "%s", what);
		return;
	}
	*out = calloc(count, sizeof(char *));
	if (*out == NULL) {
		errlist_add(errs, c->file, key, "out of memory");
		return;
	}
	for (i = 0; i < count; i++) {
		item = json_is_array(v) ? json_array_get(v, i) : v;
		if (!json_is_string(item) || json_string_length(item) == 0 ||
		    json_string_length(item) > maxlen) {
			errlist_add(errs, c->file, key, "%s", what);
			return;
		}
		(*out)[(*n)++] = json_string_value(item);
	}
}

/*
 * auth.jwt: who issues the tokens, for whom, where their keys are, and
 * the key the gateway sends upstream on a token's behalf (a token is no
 * upstream key, in either auth.mode). Every problem is reported.
 */
static void
check_jwt(struct config *c, const json_t *doc, struct errlist *errs)
{
	const json_t *v;
	size_t i;

	c->jwt = conftable_has(doc, "auth.jwt");
	if (!c->jwt)
		return;
	if (c->jwt_issuer == NULL || *c->jwt_issuer == '\0' || strlen(c->jwt_issuer) > 200)
		errlist_add(errs, c->file, "auth.jwt.issuer",
		            "is required: the \"iss\" tokens must carry, 1 to 200 characters");
	string_or_list(c, errs, c->jwt_audience, "auth.jwt.audience", AUDIENCES_MAX, 200,
	               "is required: the \"aud\" tokens must name, 1 to 200 characters, or an "
	               "array of 1 to 16 such audiences, any one of which a token may name",
	               &c->jwt_audiences, &c->jwt_naudiences);
	if (!c->jwt_jwks_url == !c->jwt_jwks_file)
		errlist_add(errs, c->file, "auth.jwt",
		            "needs exactly one of jwks_url and jwks_file: where the identity "
		            "provider's keys are");
	if (c->jwt_jwks_url && !jwks_url_ok(c->jwt_jwks_url))
		errlist_add(errs, c->file, "auth.jwt.jwks_url",
		            "must be an https:// URL (http:// only for localhost, 127.0.0.1 or "
		            "[::1]), without userinfo or a fragment");
	string_or_list(c, errs, c->jwt_groups_claim, "auth.jwt.groups_claim", GROUPS_PATH_MAX,
	               JWT_CLAIM_MAX,
	               "must be a claim's name, or an array of 1 to 8 names leading to it through "
	               "nested objects (e.g. [\"realm_access\", \"roles\"]), each 1 to 256 "
	               "characters",
	               &c->jwt_groups, &c->jwt_ngroups);
	if (json_array_size(c->jwt_person_claims) > 16)
		errlist_add(errs, c->file, "auth.jwt.person_claims", "at most 16 claims");
	c->jwt_person = calloc(json_array_size(c->jwt_person_claims) + 1, sizeof(char *));
	if (c->jwt_person == NULL)
		errlist_add(errs, c->file, "auth.jwt.person_claims", "out of memory");
	json_array_foreach(c->jwt_person_claims, i, v)
	{
		if (json_string_length(v) == 0 || json_string_length(v) > 64)
			errlist_add(errs, c->file, "auth.jwt.person_claims",
			            "each claim's name must be 1 to 64 characters");
		else if (c->jwt_person)
			c->jwt_person[c->jwt_nperson++] = json_string_value(v);
	}
	if (!c->upstream_api_key_env && !c->upstream_api_key_file)
		errlist_add(errs, c->file, "auth.jwt",
		            "a token is no upstream key: set upstream.api_key_env or "
		            "upstream.api_key_file, the organization's key the gateway sends "
		            "upstream for requests that bring a token");
}

/* An organization or project id goes upstream as a header value: letters,
 * digits, '_' and '-' only, as the upstream issues them. */
static void
check_upstream_id(const char *v, const char *file, const char *key, struct errlist *errs)
{
	if (v && !tenant_upstream_id_ok(v))
		errlist_add(errs, file, key, "%s", UPSTREAM_ID_RULE);
}

/* The cores this process may run on: those its affinity mask allows, and
 * no more than its cgroup's CPU quota (cpu.max, as a container's CPU limit
 * sets it), rounded up. */
static long long
usable_cores(void)
{
	cpu_set_t set;
	long long n = 1, quota, period;
	char line[64], *end;
	FILE *f;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	/* "max 100000" (no quota) or "200000 100000" (two cores' worth). */
	f = fopen("/sys/fs/cgroup/cpu.max", "r");
	if (f && fgets(line, sizeof(line), f)) {
		quota = strtoll(line, &end, 10);
		period = end != line ? strtoll(end, NULL, 10) : 0;
		if (quota > 0 && period > 0 && (quota + period - 1) / period < n)
			n = (quota + period - 1) / period;
	}
	if (f)
		fclose(f);
	return n < 1 ? 1 : n > 64 ? 64 : n;
}

/* workers: a number from 1 to 64, or "auto": one per usable core. */
static void
check_workers(struct config *c, const char *file, struct errlist *errs)
{
	const json_t *w = c->workers_doc;

	if (w == NULL) {
		c->workers = 1;
	} else if (json_is_string(w) && strcmp(json_string_value(w), "auto") == 0) {
		c->workers = usable_cores();
		c->workers_auto = 1;
	} else if (json_is_integer(w) && json_integer_value(w) >= 1 &&
	           json_integer_value(w) <= 64) {
		c->workers = json_integer_value(w);
	} else {
		errlist_add(errs, file, "workers",
		            "must be a number from 1 to 64, or \"auto\" (one per core this process "
		            "may use)");
		c->workers = 1;
	}
}

/* pricing.per_session_usd: a price for each memory size the API has. */
static void
check_prices(struct config *c, const char *file, struct errlist *errs)
{
	static const char *const sizes[] = {"1g", "4g", "16g", "64g"};
	const char *k;
	json_t *v;
	size_t i;

	if (!json_is_object(c->prices_doc)) {
		errlist_add(errs, file, "pricing.per_session_usd",
		            "must be an object of memory size: US dollars per session");
		return;
	}
	json_object_foreach(c->prices_doc, k, v)
	{
		for (i = 0; i < 4 && strcmp(k, sizes[i]) != 0; i++)
			;
		if (i == 4 || !json_is_number(v) || json_number_value(v) < 0)
			errlist_add(
			        errs, file, "pricing.per_session_usd",
			        "\"%.16s\": the sizes are 1g, 4g, 16g and 64g, each priced at 0 or "
			        "more US dollars",
			        k);
		else
			c->session_usd[i] = json_number_value(v);
	}
	for (i = 0; i < 4; i++)
		if (json_object_get(c->prices_doc, sizes[i]) == NULL)
			errlist_add(errs, file, "pricing.per_session_usd", "no price for %s",
			            sizes[i]);
}

struct config *
config_load(const char *path, struct errlist *errs)
{
	struct config *c;
	json_error_t je;
	json_t *doc = NULL;
	char *dir = NULL, *slash, why[JSON_ERROR_TEXT_LENGTH];
	size_t before = errs->n + errs->dropped;

	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->file = strdup(path)) == NULL) {
		errlist_add(errs, path, NULL, "out of memory");
		goto fail;
	}
	doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL) {
		errlist_add(errs, path, NULL, "line %d, column %d: %s", je.line, je.column,
		            jsondoc_file_error(&je, why, sizeof(why)));
		goto fail;
	}
	if (!json_is_object(doc)) {
		errlist_add(errs, path, NULL, "the config must be a JSON object");
		goto fail;
	}
	(void)conftable_read(config_keys, c, doc, path, errs);
	/* Checked even after other errors, so --check reports everything. */
	if (c->listen)
		parse_listen(c, errs);
	if (c->upstream_base_url)
		check_base_url(c, errs);
	if (c->auth_mode && strcmp(c->auth_mode, "gateway_keys") == 0 &&
	    !c->upstream_api_key_env == !c->upstream_api_key_file)
		errlist_add(
		        errs, path, "upstream",
		        "auth.mode \"gateway_keys\" needs exactly one of upstream.api_key_env and "
		        "upstream.api_key_file: the key the gateway sends upstream");

	/* Every operation is served now, each under the policy's routes. */
	if (conftable_has(doc, "routes.passthrough_unknown"))
		errlist_add(errs, path, "routes.passthrough_unknown",
		            "is retired: the gateway serves every operation of the API now, each "
		            "authenticated and audited; allow or deny them in the policy's routes "
		            "(routes.default \"allow\" serves the whole API)");
	check_upstream_id(c->upstream_organization, path, "upstream.organization", errs);
	check_jwt(c, doc, errs);
	check_audit_origin(c, errs);
	check_audit_anchors(c, errs);
	check_upstream_id(c->upstream_project, path, "upstream.project", errs);
	check_prices(c, path, errs);
	check_workers(c, path, errs);
	if (c->otlp_url && strncmp(c->otlp_url, "http://", 7) != 0 &&
	    strncmp(c->otlp_url, "https://", 8) != 0)
		errlist_add(errs, path, "telemetry.otlp_url",
		            "must be an http:// or https:// URL, such as "
		            "http://collector:4318/v1/traces");

	dir = strdup(path);
	if (dir == NULL)
		goto fail;
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (resolve(&c->audit_path, dir, 1) < 0 || resolve(&c->log_path, dir, 1) < 0 ||
	    resolve(&c->policy_file, dir, 0) < 0 || resolve(&c->upstream_ca_file, dir, 0) < 0 ||
	    resolve(&c->upstream_api_key_file, dir, 0) < 0 || resolve(&c->tls_cert, dir, 0) < 0 ||
	    resolve(&c->tls_key, dir, 0) < 0 || resolve(&c->tls_client_ca, dir, 0) < 0 ||
	    resolve(&c->pid_file, dir, 0) < 0 || resolve(&c->audit_hmac_key_file, dir, 0) < 0 ||
	    resolve(&c->audit_signing_key_file, dir, 0) < 0 ||
	    (c->store_path && *c->store_path && resolve(&c->store_path, dir, 0) < 0) ||
	    resolve(&c->store_password_file, dir, 0) < 0 ||
	    resolve(&c->store_ca_file, dir, 0) < 0 || resolve(&c->store_cert_file, dir, 0) < 0 ||
	    resolve(&c->store_key_file, dir, 0) < 0 || resolve(&c->jwt_jwks_file, dir, 0) < 0 ||
	    resolve(&c->jwt_ca_file, dir, 0) < 0 || resolve(&c->spool_dir, dir, 0) < 0 ||
	    (c->upstream_pinned_pubkey && strncmp(c->upstream_pinned_pubkey, "sha256//", 8) != 0 &&
	     resolve(&c->upstream_pinned_pubkey, dir, 0) < 0))
		errlist_add(errs, path, NULL, "out of memory");
	if (c->spool_dir == NULL) {
		const char *tmp = getenv("TMPDIR");

		c->spool_dir = strdup(tmp && *tmp == '/' ? tmp : "/tmp");
		if (c->spool_dir == NULL)
			errlist_add(errs, path, NULL, "out of memory");
	}
	if (c->upstream_api_key_env || c->upstream_api_key_file)
		c->upstream_api_key = load_key(c, c->upstream_api_key_env, c->upstream_api_key_file,
		                               c->upstream_api_key_env ? "upstream.api_key_env"
		                                                       : "upstream.api_key_file",
		                               &c->upstream_api_key_len, errs);
	if (c->store_password_env && c->store_password_file)
		errlist_add(errs, path, "store",
		            "give store.password_env or store.password_file, not both");
	else if (c->store_password_env || c->store_password_file)
		c->store_password = load_key(c, c->store_password_env, c->store_password_file,
		                             c->store_password_env ? "store.password_env"
		                                                   : "store.password_file",
		                             &c->store_password_len, errs);
	if (!c->store_cert_file != !c->store_key_file)
		errlist_add(errs, path, "store",
		            "store.cert_file and store.key_file go together: a client certificate "
		            "and its key");
	if (c->audit_hmac_key_env && c->audit_hmac_key_file)
		errlist_add(errs, path, "audit",
		            "give audit.hmac_key_env or audit.hmac_key_file, not both");
	else if (c->audit_hmac_key_env || c->audit_hmac_key_file)
		c->audit_key = load_key(c, c->audit_hmac_key_env, c->audit_hmac_key_file,
		                        c->audit_hmac_key_env ? "audit.hmac_key_env"
		                                              : "audit.hmac_key_file",
		                        &c->audit_key_len, errs);
	if (errs->n + errs->dropped > before)
		goto fail;
	free(dir);
	json_decref(doc);
	return c;
fail:
	free(dir);
	json_decref(doc);
	config_free(c);
	return NULL;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->jwt_person);
	free(c->jwt_groups);
	free(c->jwt_audiences);
	conftable_release(config_keys, c);
	secmem_free(c->upstream_api_key);
	secmem_free(c->store_password);
	secmem_free(c->audit_key);
	free(c->listen_host);
	free(c->file);
	free(c);
}

void
config_audit_settings(const struct config *cfg, struct audit_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->path = cfg->audit_path;
	s->key = (const unsigned char *)cfg->audit_key;
	s->keylen = cfg->audit_key_len;
	s->signing_key_file = cfg->audit_signing_key_file;
	s->origin = cfg->audit_origin;
	s->checkpoint_every = cfg->audit_checkpoint_every;
	s->checkpoint_interval_ms = cfg->audit_checkpoint_interval_ms;
	s->witness_url = cfg->audit_witness_url;
	s->anchor_url = cfg->audit_anchor;
	s->fsync = strcmp(cfg->audit_fsync, "always") == 0  ? AUDIT_FSYNC_ALWAYS
	           : strcmp(cfg->audit_fsync, "never") == 0 ? AUDIT_FSYNC_NEVER
	                                                    : AUDIT_FSYNC_INTERVAL;
	s->fsync_interval_ms = cfg->audit_fsync_interval_ms;
	s->fail_open = strcmp(cfg->audit_on_failure, "fail_open") == 0;
	s->max_bytes = cfg->audit_max_bytes;
}

void
config_upstream_settings(const struct config *cfg, struct upstream_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->base_url = cfg->upstream_base_url;
	s->timeout_ms = (long)cfg->upstream_timeout_ms;
	s->connect_timeout_ms = (long)cfg->upstream_connect_timeout_ms;
	s->max_response_bytes = (size_t)cfg->upstream_max_response_bytes;
	s->max_idle_connections = (long)cfg->upstream_max_idle_connections;
	s->max_inflight = (long)cfg->max_inflight;
	s->ca_file = cfg->upstream_ca_file;
	s->insecure_skip_verify = cfg->upstream_insecure_skip_verify;
	s->pinned_pubkey = cfg->upstream_pinned_pubkey;
}

void
config_conn_limits(const struct config *cfg, struct conn_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->max_head = (size_t)cfg->max_header_bytes;
	l->max_body = (size_t)cfg->max_body_bytes;
	l->header_timeout_ms = (long)cfg->header_timeout_ms;
	l->body_timeout_ms = (long)cfg->body_timeout_ms;
	l->idle_timeout_ms = (long)cfg->idle_timeout_ms;
	l->max_connections = cfg->max_connections;
}

void
config_jwt_rules(const struct config *cfg, struct jwt_rules *rules)
{
	memset(rules, 0, sizeof(*rules));
	rules->issuer = cfg->jwt_issuer;
	rules->audiences = cfg->jwt_audiences;
	rules->naudiences = cfg->jwt_naudiences;
	rules->skew_s = cfg->jwt_clock_skew_s;
	rules->groups_path = cfg->jwt_groups;
	rules->ngroups_path = cfg->jwt_ngroups;
	rules->person_claims = cfg->jwt_person;
	rules->nperson = cfg->jwt_nperson;
}
