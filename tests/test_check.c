/*
 * Tests for gateway/check.c, driven by $GW_DATA/check/cases.json (GW_DATA
 * defaults to "tests/data"):
 *
 *   {"forwarded": F, "cases": [{"name", "forwarded"? (overrides F),
 *                               "response": R | "raw": "bytes", "expect"}]}
 *
 * R is sent as compact JSON text, "raw" as exactly its bytes (for what is
 * not JSON). expect is {"ok": true, "violations": [V, ...]}: the container
 * comes back equal to R and exactly those violations, in order, are
 * appended; or {"ok": false}: NULL with a 502 upstream_error
 * bad_upstream_response and nothing appended.
 *
 * Bodies are copied into exactly-sized heap buffers with no terminating NUL,
 * so AddressSanitizer catches any read past the length given.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/check.h"
#include "lib/err.h"
#include "lib/secmem.h"

#define PATH_MAX_LEN 1024
#define SHOW_MAX     2048

static void
suite_init(void)
{
	secmem_init();
}

TestSuite(check, .init = suite_init);

static json_t *
load_data(const char *rel)
{
	const char *dir = getenv("GW_DATA");
	char path[PATH_MAX_LEN];
	json_error_t je;
	json_t *doc;

	if (dir == NULL || dir[0] == '\0')
		dir = "tests/data";
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	doc = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	cr_assert_not_null(doc, "%s:%d:%d: %s (set GW_DATA)", path, je.line, je.column, je.text);
	return doc;
}

static json_t *
parse(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &je);

	cr_assert_not_null(v, "bad JSON in test: %s: %s", je.text, text);
	return v;
}

static const char *
show(const json_t *v, char *buf, size_t n)
{
	size_t len;

	if (v == NULL)
		return "NULL";
	len = json_dumpb(v, buf, n - 1, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	buf[len < n - 1 ? len : n - 1] = '\0';
	return buf;
}

/* The body as exactly len heap bytes; free with free(). */
static char *
exact_copy(const char *s, size_t len)
{
	char *p = malloc(len ? len : 1);

	cr_assert_not_null(p);
	memcpy(p, s, len);
	return p;
}

/* Runs check_create_response on text and checks the answer. */
static void
expect_check(const json_t *forwarded, const char *text, size_t len, const json_t *response,
             const json_t *expect, const char *ctx)
{
	json_t *violations = json_array(), *want, *got, *fwd_before = json_deep_copy(forwarded);
	char *body = exact_copy(text, len), a[SHOW_MAX], b[SHOW_MAX];
	struct err e;

	cr_assert(violations && fwd_before);
	err_clear(&e);
	got = check_create_response(forwarded, body, len, violations, &e);
	if (json_is_true(json_object_get(expect, "ok"))) {
		want = json_object_get(expect, "violations");
		cr_assert(json_is_array(want), "%s: expect.violations must be an array", ctx);
		cr_assert_not_null(got, "%s: refused (%d %s): %s", ctx, e.status,
		                   e.code ? e.code : "?", e.message);
		if (response != NULL)
			cr_expect(json_equal(got, response), "%s: container differs: %s", ctx,
			          show(got, a, sizeof(a)));
		cr_expect(json_equal(violations, want), "%s: violations:\n  got  %s\n  want %s",
		          ctx, show(violations, a, sizeof(a)), show(want, b, sizeof(b)));
		cr_expect_eq(e.status, 0, "%s: err filled on success", ctx);
	} else {
		cr_assert(json_is_false(json_object_get(expect, "ok")), "%s: expect.ok", ctx);
		cr_expect_null(got, "%s: accepted as %s", ctx, show(got, a, sizeof(a)));
		cr_expect_eq(e.status, 502, "%s: status %d", ctx, e.status);
		cr_expect_str_eq(e.type ? e.type : "(null)", ERR_UPSTREAM, "%s", ctx);
		cr_expect_str_eq(e.code ? e.code : "(null)", "bad_upstream_response", "%s", ctx);
		cr_expect_str_eq(e.param, "", "%s", ctx);
		cr_expect_gt(strlen(e.message), 20, "%s: message \"%s\"", ctx, e.message);
		cr_expect_eq(json_array_size(violations), 0, "%s: violations on a refusal", ctx);
	}
	cr_expect(json_equal(forwarded, fwd_before), "%s: the forwarded document changed", ctx);
	json_decref(got);
	json_decref(violations);
	json_decref(fwd_before);
	free(body);
}

Test(check, cases)
{
	json_t *doc = load_data("check/cases.json"), *cases, *c;
	json_t *file_fwd = json_object_get(doc, "forwarded");
	size_t i, ok = 0, bad = 0;
	char ctx[PATH_MAX_LEN];

	cases = json_object_get(doc, "cases");
	cr_assert(json_is_object(file_fwd) && json_array_size(cases) > 0);
	json_array_foreach(cases, i, c)
	{
		json_t *fwd = json_object_get(c, "forwarded");
		json_t *response = json_object_get(c, "response");
		json_t *raw = json_object_get(c, "raw");
		json_t *expect = json_object_get(c, "expect");
		const char *name = json_string_value(json_object_get(c, "name"));

		snprintf(ctx, sizeof(ctx), "cases.json case %zu \"%s\"", i, name ? name : "?");
		cr_assert((response != NULL) != (raw != NULL),
		          "%s: give exactly one of response and raw", ctx);
		cr_assert(json_is_object(expect), "%s: no expect", ctx);
		if (raw != NULL) {
			cr_assert(json_is_string(raw), "%s: raw must be a string", ctx);
			expect_check(fwd ? fwd : file_fwd, json_string_value(raw),
			             json_string_length(raw), NULL, expect, ctx);
		} else {
			char *text = json_dumps(response, JSON_COMPACT | JSON_ENCODE_ANY);

			cr_assert_not_null(text);
			expect_check(fwd ? fwd : file_fwd, text, strlen(text), response, expect,
			             ctx);
			secmem_json_free(text);
		}
		if (json_is_true(json_object_get(expect, "ok")))
			ok++;
		else
			bad++;
	}
	cr_expect_geq(ok, 20, "only %zu accepted cases", ok);
	cr_expect_geq(bad, 25, "only %zu refused cases", bad);
	json_decref(doc);
}

/* Violations are appended: what the caller had in the array stays. */
Test(check, appends_to_violations)
{
	json_t *fwd =
	        parse("{\"name\": \"c\", \"memory_limit\": \"1g\", \"expires_after\": "
	              "{\"anchor\": \"last_active_at\", \"minutes\": 20}, \"network_policy\": "
	              "{\"type\": \"disabled\"}}");
	json_t *violations = parse("[{\"field\": \"earlier\"}]");
	json_t *want = parse("[{\"field\": \"earlier\"}, {\"field\": \"memory_limit\", "
	                     "\"forwarded\": \"1g\", \"returned\": \"4g\"}]");
	static const char body[] = "{\"id\": \"cntr_1\", \"object\": \"container\", \"name\": "
	                           "\"c\", \"created_at\": 1, \"status\": \"running\", "
	                           "\"memory_limit\": \"4g\"}";
	char *copy = exact_copy(body, sizeof(body) - 1), a[SHOW_MAX];
	struct err e;
	json_t *got;

	err_clear(&e);
	got = check_create_response(fwd, copy, sizeof(body) - 1, violations, &e);
	cr_assert_not_null(got, "%s", e.message);
	cr_expect(json_equal(violations, want), "%s", show(violations, a, sizeof(a)));
	json_decref(got);
	free(copy);
	json_decref(want);
	json_decref(violations);
	json_decref(fwd);
}

/* Only len bytes are read: a valid object followed by junk beyond len is
 * fine, and a valid prefix cut short is not. */
Test(check, reads_only_len_bytes)
{
	json_t *fwd = parse("{\"name\": \"c\", \"memory_limit\": \"1g\"}");
	static const char body[] = "{\"id\": \"cntr_1\", \"object\": \"container\", \"name\": "
	                           "\"c\", \"created_at\": 1, \"status\": \"running\"}GARBAGE";
	size_t len = sizeof(body) - 1 - strlen("GARBAGE");
	json_t *violations = json_array(), *got;
	char *copy = exact_copy(body, sizeof(body) - 1);
	struct err e;

	err_clear(&e);
	got = check_create_response(fwd, copy, len, violations, &e);
	cr_expect_not_null(got, "%s", e.message);
	json_decref(got);
	err_clear(&e);
	got = check_create_response(fwd, copy, len - 1, violations, &e);
	cr_expect_null(got);
	cr_expect_eq(e.status, 502);
	json_decref(got);
	json_decref(violations);
	free(copy);
	json_decref(fwd);
}

/*
 * When allocations fail, the check either refuses the answer or reports
 * every mismatch: a violation must never be silently dropped, or a
 * container the policy forbids goes to the client in block mode. Known
 * bug: a violation whose json_pack or append fails is lost and the
 * container is returned as if it matched. Fails until fixed.
 *
 * Failures are injected sticky (every allocation from the nth on fails):
 * secmem aborts on a lone failure inside jansson, whose 2.14 parser cannot
 * recover from one.
 */
Test(check, allocation_failure_never_drops_a_violation)
{
	json_t *fwd =
	        parse("{\"name\": \"c\", \"memory_limit\": \"1g\", \"expires_after\": "
	              "{\"anchor\": \"last_active_at\", \"minutes\": 20}, \"network_policy\": "
	              "{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\"]}}");
	static const char body[] =
	        "{\"id\": \"cntr_1\", \"object\": \"container\", \"name\": "
	        "\"c\", \"created_at\": 1, \"status\": \"running\", "
	        "\"memory_limit\": \"64g\", \"expires_after\": {\"anchor\": "
	        "\"last_active_at\", \"minutes\": 9999}, \"network_policy\": "
	        "{\"type\": \"allowlist\", \"allowed_domains\": [\"evil.com\"]}}";
	unsigned long nth;
	int refused = 0;

	for (nth = 1; nth <= 200; nth++) {
		json_t *violations = json_array(), *got;
		struct err e;

		cr_assert_not_null(violations);
		err_clear(&e);
		secmem_fail_after(nth, 1);
		got = check_create_response(fwd, body, sizeof(body) - 1, violations, &e);
		secmem_fail_after(0, 0);
		if (got != NULL)
			cr_expect_eq(json_array_size(violations), 3,
			             "allocation %lu and later failed; container returned with %zu "
			             "of 3 violations",
			             nth, json_array_size(violations));
		else {
			cr_expect_geq(e.status, 500, "allocation %lu: NULL without an error", nth);
			refused++;
		}
		json_decref(got);
		json_decref(violations);
	}
	cr_expect_gt(refused, 0, "no allocation failure had any effect");
	json_decref(fwd);
}

static void
collect(void *arg, const char *id)
{
	json_array_append_new(arg, json_string(id));
}

/* The containers a Responses answer names: code interpreter calls and
 * shell environments that are container references, where the API puts
 * them; nothing else that merely carries a container_id (a file
 * citation), nor what the answer echoes of the request (a function tool's
 * parameters are any JSON the client wrote). */
Test(check, the_containers_an_answer_names)
{
	const char *text =
	        "{\"id\":\"resp_1\",\"output\":["
	        "{\"type\":\"code_interpreter_call\",\"id\":\"ci_1\",\"container_id\":\"cntr_a\"},"
	        "{\"type\":\"shell_call\",\"id\":\"sh_1\",\"environment\":"
	        "{\"type\":\"container_reference\",\"container_id\":\"cntr_b\"}},"
	        "{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"annotations\":["
	        "{\"type\":\"container_file_citation\",\"container_id\":\"cntr_c\"}]}]},"
	        "{\"type\":\"code_interpreter_call\",\"container_id\":42}],"
	        "\"item\":{\"type\":\"code_interpreter_call\",\"container_id\":\"cntr_a\"},"
	        "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{\"x\":"
	        "{\"type\":\"code_interpreter_call\",\"container_id\":\"cntr_d\"}}}]}";
	json_t *doc = json_loads(text, 0, NULL), *ids = json_array();

	cr_assert_not_null(doc);
	cr_expect_eq(check_containers(doc, collect, ids), 3);
	cr_expect_str_eq(json_string_value(json_array_get(ids, 0)), "cntr_a");
	cr_expect_str_eq(json_string_value(json_array_get(ids, 1)), "cntr_b");
	cr_expect_str_eq(json_string_value(json_array_get(ids, 2)), "cntr_a");
	json_decref(ids);
	json_decref(doc);
}
