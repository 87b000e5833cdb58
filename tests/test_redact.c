/*
 * Tests for gateway/redact.c: what of a network policy may be written down,
 * and wiping secret values once forwarded.
 *
 * Every secret value used here contains MARK, so "the secret appears
 * nowhere" is a substring search of json_dumps output for MARK.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/redact.h"
#include "lib/secmem.h"

#define MARK     "sk-live-REDACT-TEST-9c41"
#define SHOW_MAX 2048

static void
suite_init(void)
{
	secmem_init();
}

TestSuite(redact, .init = suite_init);

static json_t *
parse(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);

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

/* Fails the test if MARK appears anywhere in the text of v. */
static void
expect_no_mark(const json_t *v, const char *ctx)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	cr_assert_not_null(text, "%s: cannot dump", ctx);
	cr_expect_null(strstr(text, MARK), "%s: the secret is in the output: %s", ctx, text);
	secmem_json_free(text);
}

/* redact_network_policy(in) equals want, leaves in as it was, shares no
 * part of it and contains no secret. */
static void
expect_redacted(const char *in_text, const char *want_text)
{
	json_t *in = parse(in_text), *before = json_deep_copy(in), *want = parse(want_text);
	json_t *out = redact_network_policy(in);
	char a[SHOW_MAX], b[SHOW_MAX];

	cr_assert_not_null(out, "NULL for %s", in_text);
	cr_expect(out != in, "returned its input");
	cr_expect(json_equal(out, want), "redacted wrong:\n  got  %s\n  want %s",
	          show(out, a, sizeof(a)), show(want, b, sizeof(b)));
	cr_expect(json_equal(in, before), "the input was changed: %s", show(in, a, sizeof(a)));
	expect_no_mark(out, in_text);
	json_decref(out);
	json_decref(want);
	json_decref(before);
	json_decref(in);
}

Test(redact, replaces_every_value)
{
	expect_redacted("{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\", "
	                "\"api.example.org\"], \"domain_secrets\": [{\"domain\": \"pypi.org\", "
	                "\"name\": \"PIP_TOKEN\", \"value\": \"" MARK "-1\"}, {\"domain\": "
	                "\"api.example.org\", \"name\": \"API_KEY\", \"value\": \"" MARK "-2\"}]}",
	                "{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\", "
	                "\"api.example.org\"], \"domain_secrets\": [{\"domain\": \"pypi.org\", "
	                "\"name\": \"PIP_TOKEN\", \"value\": \"" REDACT_MARKER "\"}, {\"domain\": "
	                "\"api.example.org\", \"name\": \"API_KEY\", \"value\": \"" REDACT_MARKER
	                "\"}]}");
}

Test(redact, one_secret_keeps_name_and_domain)
{
	json_t *in = parse("{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\"], "
	                   "\"domain_secrets\": [{\"domain\": \"pypi.org\", \"name\": \"T\", "
	                   "\"value\": \"" MARK "\"}]}");
	json_t *out = redact_network_policy(in), *s;

	cr_assert_not_null(out);
	s = json_array_get(json_object_get(out, "domain_secrets"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(s, "value")), REDACT_MARKER);
	cr_expect_str_eq(json_string_value(json_object_get(s, "name")), "T");
	cr_expect_str_eq(json_string_value(json_object_get(s, "domain")), "pypi.org");
	cr_expect_eq(json_object_size(s), 3);
	expect_no_mark(out, "one secret");
	json_decref(out);
	json_decref(in);
}

/* The marker itself and a value that merely contains it are both redacted
 * to exactly the marker. */
Test(redact, values_of_any_length)
{
	char big[20000];
	json_t *in, *out;
	size_t i;

	for (i = 0; i + 1 < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	big[sizeof(big) - 1] = '\0';
	memcpy(big + 5000, MARK, strlen(MARK));
	in = parse("{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\"], "
	           "\"domain_secrets\": [{\"domain\": \"pypi.org\", \"name\": \"A\", \"value\": "
	           "\"x\"}, {\"domain\": \"pypi.org\", \"name\": \"B\", \"value\": \"x\"}]}");
	json_object_set_new(json_array_get(json_object_get(in, "domain_secrets"), 0), "value",
	                    json_string(big));
	json_object_set_new(json_array_get(json_object_get(in, "domain_secrets"), 1), "value",
	                    json_string(REDACT_MARKER));
	out = redact_network_policy(in);
	cr_assert_not_null(out);
	for (i = 0; i < 2; i++)
		cr_expect_str_eq(json_string_value(json_object_get(
		                         json_array_get(json_object_get(out, "domain_secrets"), i),
		                         "value")),
		                 REDACT_MARKER, "secret %zu", i);
	expect_no_mark(out, "long value");
	json_decref(out);
	json_decref(in);
}

/* A value that is not a string is replaced all the same. */
Test(redact, non_string_values)
{
	expect_redacted("{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\"], "
	                "\"domain_secrets\": [{\"domain\": \"pypi.org\", \"name\": \"N\", "
	                "\"value\": {\"k\": \"" MARK "\"}}, {\"domain\": \"pypi.org\", \"name\": "
	                "\"A\", \"value\": [\"" MARK "\"]}, {\"domain\": \"pypi.org\", \"name\": "
	                "\"I\", \"value\": 12345}]}",
	                "{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\"], "
	                "\"domain_secrets\": [{\"domain\": \"pypi.org\", \"name\": \"N\", "
	                "\"value\": \"" REDACT_MARKER "\"}, {\"domain\": \"pypi.org\", \"name\": "
	                "\"A\", \"value\": \"" REDACT_MARKER "\"}, {\"domain\": \"pypi.org\", "
	                "\"name\": \"I\", \"value\": \"" REDACT_MARKER "\"}]}");
}

/* An entry that is not an object is replaced whole. */
Test(redact, non_object_entries)
{
	expect_redacted("{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\"], "
	                "\"domain_secrets\": [\"" MARK "\", 7, null]}",
	                "{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\"], "
	                "\"domain_secrets\": [\"" REDACT_MARKER "\", \"" REDACT_MARKER
	                "\", \"" REDACT_MARKER "\"]}");
}

Test(redact, secret_without_value)
{
	expect_redacted("{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\"], "
	                "\"domain_secrets\": [{\"domain\": \"pypi.org\", \"name\": \"T\"}]}",
	                "{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\"], "
	                "\"domain_secrets\": [{\"domain\": \"pypi.org\", \"name\": \"T\"}]}");
}

Test(redact, empty_secret_list)
{
	expect_redacted("{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\"], "
	                "\"domain_secrets\": []}",
	                "{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\"], "
	                "\"domain_secrets\": []}");
}

Test(redact, no_secrets)
{
	expect_redacted("{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\", "
	                "\"*.example.org\"]}",
	                "{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\", "
	                "\"*.example.org\"]}");
}

Test(redact, disabled)
{
	expect_redacted("{\"type\": \"disabled\"}", "{\"type\": \"disabled\"}");
}

Test(redact, empty_object)
{
	expect_redacted("{}", "{}");
}

/* The copy is deep: changing it leaves the request's policy alone. */
Test(redact, copy_is_independent)
{
	json_t *in = parse("{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\"], "
	                   "\"domain_secrets\": [{\"domain\": \"pypi.org\", \"name\": \"T\", "
	                   "\"value\": \"" MARK "\"}]}");
	json_t *before = json_deep_copy(in);
	json_t *out = redact_network_policy(in);

	cr_assert_not_null(out);
	cr_expect(json_object_get(out, "allowed_domains") !=
	          json_object_get(in, "allowed_domains"));
	json_array_append_new(json_object_get(out, "allowed_domains"), json_string("evil.com"));
	json_object_set_new(json_array_get(json_object_get(out, "domain_secrets"), 0), "name",
	                    json_string("CHANGED"));
	cr_expect(json_equal(in, before), "changing the copy changed the input");
	cr_expect_str_eq(
	        json_string_value(json_object_get(
	                json_array_get(json_object_get(in, "domain_secrets"), 0), "value")),
	        MARK, "the input lost its secret");
	json_decref(out);
	json_decref(before);
	json_decref(in);
}

Test(redact, null_and_non_objects)
{
	static const char *const inputs[] = {
	        "[{\"domain_secrets\": [{\"value\": \"" MARK "\"}]}]",
	        "\"" MARK "\"",
	        "42",
	        "null",
	        "true",
	        NULL,
	};
	size_t i;

	cr_expect_null(redact_network_policy(NULL));
	for (i = 0; inputs[i]; i++) {
		json_t *v = parse(inputs[i]);
		json_t *out = redact_network_policy(v);

		cr_expect_null(out, "%s gave a copy", inputs[i]);
		json_decref(out);
		json_decref(v);
	}
}

/*
 * redact_network_policy makes the copies that go to the audit log, so it
 * must not pass a secret through whatever shape the policy has. Known bug:
 * a domain_secrets that is an object rather than an array is deep-copied,
 * value included. The schema refuses such requests before they reach the
 * audit log today, so this is hardening. Fails until fixed.
 */
Test(redact, never_copies_a_secret_whatever_the_shape)
{
	static const char *const inputs[] = {
	        "{\"type\": \"allowlist\", \"domain_secrets\": {\"domain\": \"pypi.org\", "
	        "\"name\": \"T\", \"value\": \"" MARK "\"}}",
	        "{\"type\": \"allowlist\", \"domain_secrets\": \"" MARK "\"}",
	        NULL,
	};
	size_t i;

	for (i = 0; inputs[i]; i++) {
		json_t *v = parse(inputs[i]);
		json_t *out = redact_network_policy(v);

		if (out != NULL)
			expect_no_mark(out, inputs[i]);
		json_decref(out);
		json_decref(v);
	}
}

/*
 * When allocations fail (from the nth on; secmem aborts on a lone failure
 * inside jansson) the copy may be NULL or lack parts, but it never holds a
 * secret.
 */
Test(redact, allocation_failure_never_leaks)
{
	json_t *in = parse("{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\"], "
	                   "\"domain_secrets\": [{\"domain\": \"pypi.org\", \"name\": \"A\", "
	                   "\"value\": \"" MARK "\"}, {\"domain\": \"pypi.org\", \"name\": \"B\", "
	                   "\"value\": \"" MARK "\"}]}");
	json_t *full = redact_network_policy(in);
	unsigned long nth;
	int failed = 0;

	cr_assert_not_null(full);
	for (nth = 1; nth <= 64; nth++) {
		json_t *out;

		secmem_fail_after(nth, 1);
		out = redact_network_policy(in);
		secmem_fail_after(0, 0);
		if (out == NULL || !json_equal(out, full))
			failed++;
		if (out != NULL)
			expect_no_mark(out, "allocation failure");
		json_decref(out);
	}
	cr_expect_gt(failed, 0, "no allocation failure had any effect");
	json_decref(full);
	json_decref(in);
}

/* --- Wiping ---------------------------------------------------------------- */

static int
all_zero(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != '\0')
			return 0;
	return 1;
}

Test(redact, wipe_zeroes_values_in_place)
{
	json_t *doc = parse("{\"name\": \"c\", \"network_policy\": {\"type\": \"allowlist\", "
	                    "\"allowed_domains\": [\"pypi.org\", \"api.example.org\"], "
	                    "\"domain_secrets\": [{\"domain\": \"pypi.org\", \"name\": \"A\", "
	                    "\"value\": \"" MARK "-first\"}, {\"domain\": \"api.example.org\", "
	                    "\"name\": \"B\", \"value\": \"" MARK "-second-and-longer\"}]}}");
	json_t *secrets = json_object_get(json_object_get(doc, "network_policy"), "domain_secrets");
	json_t *v[2];
	const char *bytes[2];
	size_t len[2], i;

	for (i = 0; i < 2; i++) {
		v[i] = json_object_get(json_array_get(secrets, i), "value");
		bytes[i] = json_string_value(v[i]);
		len[i] = json_string_length(v[i]);
		cr_assert_gt(len[i], strlen(MARK));
	}
	redact_wipe_secrets(doc);
	for (i = 0; i < 2; i++) {
		json_t *now = json_object_get(json_array_get(secrets, i), "value");

		cr_expect(now == v[i], "secret %zu: value replaced rather than wiped in place", i);
		cr_expect(json_string_value(now) == bytes[i], "secret %zu: bytes moved", i);
		cr_expect_eq(json_string_length(now), len[i], "secret %zu: length changed", i);
		cr_expect(all_zero(bytes[i], len[i]), "secret %zu: bytes not all zero", i);
		cr_expect_str_eq(
		        json_string_value(json_object_get(json_array_get(secrets, i), "name")),
		        i ? "B" : "A");
	}
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(secrets, 1), "domain")),
	                 "api.example.org");
	cr_expect_str_eq(
	        json_string_value(json_array_get(
	                json_object_get(json_object_get(doc, "network_policy"), "allowed_domains"),
	                0)),
	        "pypi.org");
	cr_expect_str_eq(json_string_value(json_object_get(doc, "name")), "c");
	expect_no_mark(doc, "wiped document");
	json_decref(doc);
}

/* Documents without secrets, or with odd shapes, are left as they are. */
Test(redact, wipe_leaves_the_rest_alone)
{
	static const char *const docs[] = {
	        "{\"name\": \"c\"}",
	        "{\"name\": \"c\", \"network_policy\": {\"type\": \"disabled\"}}",
	        "{\"name\": \"c\", \"network_policy\": {\"type\": \"allowlist\", "
	        "\"allowed_domains\": [\"pypi.org\"]}}",
	        "{\"name\": \"c\", \"network_policy\": {\"type\": \"allowlist\", "
	        "\"allowed_domains\": [\"pypi.org\"], \"domain_secrets\": []}}",
	        "{\"network_policy\": {\"domain_secrets\": {\"value\": \"keep\"}}}",
	        "{\"network_policy\": {\"domain_secrets\": [\"keep\", 3, {\"value\": 4}, "
	        "{\"name\": \"n\"}]}}",
	        "{\"network_policy\": \"keep\"}",
	        NULL,
	};
	size_t i;

	redact_wipe_secrets(NULL);
	for (i = 0; docs[i]; i++) {
		json_t *doc = parse(docs[i]), *before = json_deep_copy(doc);

		redact_wipe_secrets(doc);
		cr_expect(json_equal(doc, before), "changed: %s", docs[i]);
		json_decref(before);
		json_decref(doc);
	}
}

/* Wiping twice is harmless, and an empty-looking value stays its length. */
Test(redact, wipe_twice)
{
	json_t *doc =
	        parse("{\"network_policy\": {\"type\": \"allowlist\", "
	              "\"allowed_domains\": [\"pypi.org\"], \"domain_secrets\": "
	              "[{\"domain\": \"pypi.org\", \"name\": \"A\", \"value\": \"" MARK "\"}]}}");
	json_t *v = json_object_get(
	        json_array_get(
	                json_object_get(json_object_get(doc, "network_policy"), "domain_secrets"),
	                0),
	        "value");

	redact_wipe_secrets(doc);
	redact_wipe_secrets(doc);
	cr_expect_eq(json_string_length(v), strlen(MARK));
	cr_expect(all_zero(json_string_value(v), strlen(MARK)));
	json_decref(doc);
}
