/*
 * libFuzzer target: a Responses body through what the gateway runs on its
 * tools, up to the bytes it would send: jsondoc_parse, then tools_apply
 * under each of a handful of policies, and the body written out.
 *
 * Beyond memory errors it aborts when
 *  - what would be forwarded breaks the policy it was decided by, as read
 *    by tests/fuzz/invariant.c (inv_check_tools), which shares no code
 *    with policy.c or tools.c;
 *  - anything but a code_interpreter or shell tool, or any member of the
 *    body but its tools and input, is not forwarded exactly as it came;
 *  - the forwarded body is not a fixed point: deciding it again must allow
 *    it unchanged, with nothing to adjust, and report the same containers;
 *  - a refusal is not in the error shape: a status, a code, a message, and
 *    a param that is printable ASCII.
 *
 *   make fuzz FUZZ_TARGETS=tools FUZZ_SECONDS=300
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invariant.h"
#include "lib/err.h"
#include "lib/jsondoc.h"
#include "lib/secmem.h"
#include "policy/policy.h"
#include "policy/tools.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The same policies as fuzz_create's, between them reaching every rule
 * and its edges, and one with list limits far above the defaults. */
static const char *const policy_texts[] = {
        "{}",
        "{\"memory_limit\":{\"max\":\"4g\",\"default\":\"1g\"},"
        "\"network_policy\":{\"allowed_domains\":[\"api.buildkite.com\",\"*.example.org\","
        "\"Pypi.Org.\"],\"allow_domain_secrets\":true},"
        "\"skills\":{\"allowed_skill_ids\":[\"skill_4db6f1a2c9e73508b41f9da06e2c7b5f\","
        "\"openai-spreadsheets\"]},\"file_ids\":{\"max_count\":2}}",
        "{\"memory_limit\":{\"max\":\"16g\",\"default\":\"4g\",\"on_exceed\":\"clamp\"},"
        "\"network_policy\":{\"allowed_domains\":[\"*.example.org\",\"*.a.example.com\","
        "\"xn--80ak6aa92e.com\"],\"allow_wildcards\":true,\"allow_domain_secrets\":true,"
        "\"default\":{\"type\":\"allowlist\",\"allowed_domains\":[\"Deep.Example.ORG\"]}},"
        "\"skills\":{\"allowed_skill_ids\":[\"*\"],\"allow_inline\":true,"
        "\"max_inline_bytes\":6},\"file_ids\":{\"max_count\":0}}",
        "{\"memory_limit\":{\"max\":\"64g\"},\"network_policy\":{\"allowed_domains\":[\"*\"],"
        "\"allow_wildcards\":true,\"allow_domain_secrets\":true,\"max_domains\":100000,"
        "\"max_domain_secrets\":100000},"
        "\"skills\":{\"allow_inline\":true,\"max_count\":100000},"
        "\"file_ids\":{\"max_count\":100000}}",
        "{\"mode\":\"shadow\",\"memory_limit\":{\"max\":\"4g\"},\"network_policy\":"
        "{\"allowed_domains\":[\"example.com\",\"*.example.com\"]},"
        "\"skills\":{\"allowed_skill_ids\":[\"a\",\"b\"],\"allow_inline\":true,"
        "\"max_inline_bytes\":0},\"file_ids\":{\"max_count\":1}}",
};

#define NPOLICIES (sizeof(policy_texts) / sizeof(policy_texts[0]))

static struct policy *policies[NPOLICIES];
static struct inv_policy *models[NPOLICIES];

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_tools: %s: %s\n", what, detail);
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
check_error(const struct err *e)
{
	const char *c;

	if ((e->status != 400 && e->status != 403 && e->status != 503) || e->type == NULL ||
	    e->code == NULL || e->message[0] == '\0')
		die("refusal not in the error shape", e->message);
	for (c = e->param; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			die("param is not printable ASCII", e->message);
}

static int
judged(const json_t *tool)
{
	const char *type = json_string_value(json_object_get(tool, "type"));

	return type && (strcmp(type, "code_interpreter") == 0 || strcmp(type, "shell") == 0);
}

/* Every tool not the gateway's to judge, at its place, as it came. */
static void
list_untouched(const json_t *sent, const json_t *got)
{
	const json_t *tool;
	size_t j;

	if (sent == NULL && got == NULL)
		return;
	if (!json_is_array(sent)) {
		if (!json_equal(sent, got))
			die("a list of tools was changed", "not an array");
		return;
	}
	if (json_array_size(sent) != json_array_size(got))
		die("a list of tools changed length", "");
	json_array_foreach(sent, j, tool)
	{
		if (!judged(tool) && !json_equal(tool, json_array_get(got, j)))
			die("a tool not the gateway's to judge was changed", "");
	}
}

static void
rest_untouched(const json_t *sent, const json_t *got)
{
	const char *key;
	json_t *v, *item, *out;
	size_t i;

	if (json_object_size(sent) != json_object_size(got))
		die("members were added to the body", "");
	json_object_foreach((json_t *)(uintptr_t)sent, key, v)
	{
		if (strcmp(key, "tools") != 0 && strcmp(key, "input") != 0 &&
		    !json_equal(v, json_object_get(got, key)))
			die("a member of the body was changed", key);
	}
	list_untouched(json_object_get(sent, "tools"), json_object_get(got, "tools"));
	if (!json_is_array(json_object_get(sent, "input"))) {
		/* json_equal holds nothing equal to NULL. */
		if (json_object_get(sent, "input") &&
		    !json_equal(json_object_get(sent, "input"), json_object_get(got, "input")))
			die("input was changed", "");
		return;
	}
	json_array_foreach(json_object_get(sent, "input"), i, item)
	{
		const char *type = json_string_value(json_object_get(item, "type"));
		const char *k;
		json_t *m;

		out = json_array_get(json_object_get(got, "input"), i);
		/* Only these items define tools; any other is not read at all. */
		if (type == NULL || (strcmp(type, "tool_search_output") != 0 &&
		                     strcmp(type, "additional_tools") != 0)) {
			if (!json_equal(item, out))
				die("an input item without tools was changed", "");
			continue;
		}
		if (json_object_size(item) != json_object_size(out))
			die("members were added to an input item", "");
		json_object_foreach(item, k, m)
		{
			if (strcmp(k, "tools") != 0 && !json_equal(m, json_object_get(out, k)))
				die("a member of an input item was changed", k);
		}
		list_untouched(json_object_get(item, "tools"), json_object_get(out, "tools"));
	}
}

/* Decides doc (a copy) under policy i and checks what would go out. */
static void
decide(size_t i, const json_t *doc)
{
	struct tools_result r, again;
	json_t *fwd = json_deep_copy(doc), *back;
	char *text, why[512];
	struct err e;

	if (fwd == NULL)
		die("out of memory", "copy");
	if (tools_apply(policies[i], fwd, &r) < 0) {
		check_error(&r.decision.err);
		tools_result_release(&r);
		json_decref(fwd);
		return;
	}
	rest_untouched(doc, fwd);
	text = json_dumps(fwd, JSON_COMPACT);
	if (text == NULL)
		die("out of memory", "dump");
	if (inv_check_tools(models[i], text, strlen(text), why, sizeof(why)) < 0) {
		fprintf(stderr, "policy %zu: %s\nforwarded: %.4000s\n", i, why, text);
		die("forwarded body breaks the policy", why);
	}
	err_clear(&e);
	back = jsondoc_parse(text, strlen(text), &e);
	if (back == NULL || tools_apply(policies[i], back, &again) < 0 ||
	    again.decision.nadjust != 0 || again.n != r.n || !json_equal(back, fwd)) {
		fprintf(stderr, "policy %zu: forwarded %.4000s\n", i, text);
		die("a decided body is not decided the same way again",
		    back ? again.decision.err.message : e.message);
	}
	tools_result_release(&again);
	tools_result_release(&r);
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
	if (doc != NULL) {
		for (i = 0; i < NPOLICIES; i++)
			decide(i, doc);
	}
	json_decref(doc);
	free(buf);
	return 0;
}
