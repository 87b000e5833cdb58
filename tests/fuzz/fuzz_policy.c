/*
 * libFuzzer target: policy loading, and the loaded policy deciding.
 *
 * The input is a policy document, optionally followed by a NUL byte and a
 * create body. The document is loaded as the gateway loads it
 * (policyset_load, from a file). When it loads, the built-in create bodies
 * below, and the one from the input if any, are decided by it, and beyond
 * memory errors the target aborts when
 *  - the policy loaded but is not one the README describes, as read by
 *    tests/fuzz/invariant.c (a key of the wrong type, say);
 *  - what would be forwarded breaks that policy, by invariant.c's reading
 *    of the document (so a policy that compiles into something more
 *    permissive than it says is caught);
 *  - a decided document, decided again, is not allowed unchanged;
 *  - a refused policy comes back without a message.
 *
 *   make fuzz FUZZ_TARGETS=policy
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/err.h"
#include "invariant.h"
#include "lib/jsondoc.h"
#include "policy/policy.h"
#include "policy/policyset.h"
#include "policy/schema.h"
#include "lib/secmem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Requests that reach every rule, at and past the usual limits. */
static const char *const requests[] = {
        "{\"name\":\"a\"}",
        "{\"name\":\"m\",\"memory_limit\":\"64g\"}",
        "{\"name\":\"m\",\"memory_limit\":\"4g\"}",
        "{\"name\":\"n\",\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":["
        "\"example.com\",\"A.Example.ORG.\",\"*.example.org\",\"pypi.org\"],\"domain_secrets\":["
        "{\"domain\":\"b.example.org\",\"name\":\"S\",\"value\":\"v\"}]}}",
        "{\"name\":\"n\",\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":["
        "\"api.buildkite.com\"]}}",
        "{\"name\":\"n\",\"network_policy\":{\"type\":\"disabled\"}}",
        "{\"name\":\"e\",\"expires_after\":{\"anchor\":\"last_active_at\",\"minutes\":100000}}",
        "{\"name\":\"e\",\"expires_after\":{\"anchor\":\"last_active_at\",\"minutes\":20}}",
        "{\"name\":\"s\",\"skills\":[{\"type\":\"skill_reference\",\"skill_id\":\"a\"},"
        "{\"type\":\"skill_reference\",\"skill_id\":\"openai-spreadsheets\"}]}",
        "{\"name\":\"s\",\"skills\":[{\"type\":\"inline\",\"name\":\"n\",\"description\":\"d\","
        "\"source\":{\"type\":\"base64\",\"media_type\":\"application/zip\",\"data\":"
        "\"QUJDREVGR0g=\"}}]}",
        "{\"name\":\"f\",\"file_ids\":[\"a\",\"b\",\"c\"]}",
};

#define NREQUESTS (sizeof(requests) / sizeof(requests[0]))

static json_t *parsed[NREQUESTS];
static int memfd = -1;
static char memfd_path[64];

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_policy: %s: %s\n", what, detail);
	abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct err e;
	size_t i;

	(void)argc;
	(void)argv;
	secmem_init();
	/* The policy is read from a file, as the gateway reads it; an
	 * in-memory one keeps the disk out of the loop. */
	memfd = memfd_create("fuzz_policy", 0);
	if (memfd < 0)
		die("memfd_create", "failed");
	snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
	for (i = 0; i < NREQUESTS; i++) {
		err_clear(&e);
		parsed[i] = jsondoc_parse(requests[i], strlen(requests[i]), &e);
		if (parsed[i] == NULL ||
		    schema_check(&schema_create_container_body, parsed[i], &e) < 0)
			die("built-in request refused", e.message);
	}
	return 0;
}

static void
decide(const struct policy *p, const struct inv_policy *model, const json_t *doc)
{
	struct policy_result r, again;
	json_t *fwd = json_deep_copy(doc), *back;
	char *text, why[512];
	struct err e;

	if (fwd == NULL)
		die("out of memory", "copy");
	if (policy_apply_create(p, fwd, &r) < 0) {
		if (r.err.status != 403 || r.err.code == NULL || r.err.message[0] == '\0')
			die("a refusal not in the error shape", r.err.message);
		json_decref(fwd);
		return;
	}
	text = json_dumps(fwd, JSON_COMPACT);
	if (text == NULL)
		die("out of memory", "dump");
	if (inv_check_create(model, text, strlen(text), why, sizeof(why)) < 0) {
		fprintf(stderr, "forwarded: %s\n", text);
		die("forwarded body breaks the policy", why);
	}
	err_clear(&e);
	back = jsondoc_parse(text, strlen(text), &e);
	if (back == NULL || policy_apply_create(p, back, &again) < 0 || again.nadjust != 0 ||
	    !json_equal(back, fwd)) {
		fprintf(stderr, "forwarded: %s\n", text);
		die("a decided document is not decided the same way again",
		    back ? again.err.message : e.message);
	}
	json_decref(back);
	secmem_json_free(text);
	json_decref(fwd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t plen = nul ? (size_t)(nul - data) : size;
	struct inv_policy *model = NULL;
	struct errlist errs;
	struct policyset *ps;
	const struct policy *p;
	json_t *doc, *req = NULL;
	json_error_t je;
	char why[256];
	struct err e;
	size_t i;

	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, plen, 0) != (ssize_t)plen)
		die("memfd", "write failed");
	memset(&errs, 0, sizeof(errs));
	ps = policyset_load(memfd_path, &errs);
	if (ps == NULL) {
		if (errs.n == 0 && errs.dropped == 0)
			die("a refused policy without a reason", "");
		for (i = 0; i < errs.n; i++)
			if (errs.msg[i][0] == '\0')
				die("an empty reason", "");
		return 0;
	}
	p = policyset_org(ps);
	doc = json_loadb((const char *)data, plen, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL)
		die("loaded a policy jansson cannot read", je.text);
	model = inv_policy_new(doc, why, sizeof(why));
	if (model == NULL)
		die("loaded a policy the README does not describe", why);
	for (i = 0; i < NREQUESTS; i++)
		decide(p, model, parsed[i]);
	if (nul) {
		err_clear(&e);
		req = jsondoc_parse((const char *)nul + 1, size - plen - 1, &e);
		if (req && schema_check(&schema_create_container_body, req, &e) == 0)
			decide(p, model, req);
	}
	json_decref(req);
	json_decref(doc);
	inv_policy_free(model);
	policyset_free(ps);
	return 0;
}
