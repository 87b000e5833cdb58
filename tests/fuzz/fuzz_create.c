/*
 * libFuzzer target: a create body through the pipeline the gateway runs on
 * it, up to the bytes it would send: jsondoc_parse, schema_check,
 * policy_apply_create under each of a handful of policies, and json_dumps
 * as proxy.c serializes it.
 *
 * Beyond memory errors it aborts when
 *  - what would be forwarded breaks the policy it was decided by, as read
 *    by tests/fuzz/invariant.c, which shares no code with policy.c;
 *  - the forwarded document is not a fixed point: deciding it again must
 *    allow it unchanged, with nothing to adjust;
 *  - a refusal is not in the error shape: a status, a code, a message, and
 *    a param that is printable ASCII.
 *
 *   make fuzz FUZZ_TARGETS=create FUZZ_SECONDS=300
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "invariant.h"
#include "lib/jsondoc.h"
#include "policy/policy.h"
#include "policy/schema.h"
#include "lib/secmem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Policies that between them reach every rule and its edges: clamping,
 * wildcards in both places, "*", secrets, inline skills with a small
 * limit, few files, a short expiry; and one with list limits far above
 * the defaults, so long lists of domains, secrets and skills reach every
 * check (where work that grows faster than the input would time out). */
static const char *const policy_texts[] = {
        "{}",
        "{\"memory_limit\":{\"max\":\"4g\",\"default\":\"1g\"},"
        "\"network_policy\":{\"allowed_domains\":[\"api.buildkite.com\",\"*.example.org\","
        "\"Pypi.Org.\"],\"allow_domain_secrets\":true},"
        "\"expires_after\":{\"max_minutes\":60,\"default_minutes\":20},"
        "\"skills\":{\"allowed_skill_ids\":[\"skill_4db6f1a2c9e73508b41f9da06e2c7b5f\","
        "\"openai-spreadsheets\"]},\"file_ids\":{\"max_count\":2}}",
        "{\"memory_limit\":{\"max\":\"16g\",\"default\":\"4g\",\"on_exceed\":\"clamp\"},"
        "\"network_policy\":{\"allowed_domains\":[\"*.example.org\",\"*.a.example.com\","
        "\"xn--80ak6aa92e.com\"],\"allow_wildcards\":true,\"allow_domain_secrets\":true,"
        "\"default\":{\"type\":\"allowlist\",\"allowed_domains\":[\"Deep.Example.ORG\"]}},"
        "\"expires_after\":{\"max_minutes\":1,\"default_minutes\":1},"
        "\"skills\":{\"allowed_skill_ids\":[\"*\"],\"allow_inline\":true,"
        "\"max_inline_bytes\":6},\"file_ids\":{\"max_count\":0}}",
        "{\"memory_limit\":{\"max\":\"64g\"},\"network_policy\":{\"allowed_domains\":[\"*\"],"
        "\"allow_wildcards\":true,\"allow_domain_secrets\":true,\"max_domains\":100000,"
        "\"max_domain_secrets\":100000},\"expires_after\":{\"max_minutes\":525600},"
        "\"skills\":{\"allow_inline\":true,\"max_count\":100000},"
        "\"file_ids\":{\"max_count\":100000}}",
        "{\"network_policy\":{\"allowed_domains\":[\"example.com\",\"*.example.com\"]},"
        "\"skills\":{\"allowed_skill_ids\":[\"a\",\"b\"],\"allow_inline\":true,"
        "\"max_inline_bytes\":0}}",
};

#define NPOLICIES (sizeof(policy_texts) / sizeof(policy_texts[0]))

static struct policy *policies[NPOLICIES];
static struct inv_policy *models[NPOLICIES];

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_create: %s: %s\n", what, detail);
	abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct errlist errs;
	json_error_t je;
	char why[256];
	size_t i;

	(void)argc;
	(void)argv;
	secmem_init();
	for (i = 0; i < NPOLICIES; i++) {
		json_t *doc = json_loads(policy_texts[i], JSON_REJECT_DUPLICATES, &je);

		memset(&errs, 0, sizeof(errs));
		if (doc == NULL)
			die("built-in policy is not JSON", je.text);
		policies[i] = policy_new(doc, "fuzz", &errs);
		if (policies[i] == NULL)
			die("built-in policy refused", errs.msg[0]);
		models[i] = inv_policy_new(doc, why, sizeof(why));
		if (models[i] == NULL)
			die("built-in policy not modelled", why);
		json_decref(doc);
	}
	return 0;
}

static void
check_error(const struct err *e, int want_status)
{
	const char *c;

	if ((e->status != want_status && e->status != 503) || e->type == NULL || e->code == NULL ||
	    e->message[0] == '\0')
		die("refusal not in the error shape", e->message);
	for (c = e->param; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			die("param is not printable ASCII", e->message);
}

/* Decides doc (a copy) under policy i and checks what would go out. */
static void
decide(size_t i, const json_t *doc)
{
	struct policy_result r, again;
	json_t *fwd = json_deep_copy(doc), *back;
	char *text, why[512];
	struct err e;

	if (fwd == NULL)
		die("out of memory", "copy");
	if (policy_apply_create(policies[i], fwd, &r) < 0) {
		check_error(&r.err, 403);
		json_decref(fwd);
		return;
	}
	text = json_dumps(fwd, JSON_COMPACT);
	if (text == NULL)
		die("out of memory", "dump");
	if (inv_check_create(models[i], text, strlen(text), why, sizeof(why)) < 0) {
		fprintf(stderr, "policy %zu: %s\nforwarded: %s\n", i, why, text);
		die("forwarded body breaks the policy", why);
	}
	err_clear(&e);
	back = jsondoc_parse(text, strlen(text), &e);
	if (back == NULL || policy_apply_create(policies[i], back, &again) < 0 ||
	    again.nadjust != 0 || !json_equal(back, fwd)) {
		fprintf(stderr, "policy %zu: forwarded %s\n", i, text);
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
	char *buf = malloc(size ? size : 1);
	json_t *doc;
	struct err e;
	size_t i;

	if (buf == NULL)
		return 0;
	/* An exactly-sized copy, so reading past the end is caught. */
	memcpy(buf, data, size);
	err_clear(&e);
	doc = jsondoc_parse(buf, size, &e);
	if (doc == NULL) {
		check_error(&e, 400);
		free(buf);
		return 0;
	}
	err_clear(&e);
	if (schema_check(&schema_create_container_body, doc, &e) < 0) {
		check_error(&e, 400);
	} else {
		for (i = 0; i < NPOLICIES; i++)
			decide(i, doc);
	}
	json_decref(doc);
	free(buf);
	return 0;
}
