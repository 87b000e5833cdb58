/*
 * Allocation failure through the pipeline's pure steps: jsondoc, schema,
 * policy, check and redact, with secmem's hook failing the nth allocation
 * and every one after it (sticky: jansson must not see a later one
 * succeed, see secmem.h).
 *
 * For n = 1, 2, ... until a run sees no injected failure, each step must
 * either give exactly the answer it gives with memory to spare, or fail
 * cleanly with the gateway's own out-of-memory error (503 out_of_memory):
 * never a different document, never a policy refusal or an upstream fault
 * that did not happen. Under AddressSanitizer (make sanitize) every path
 * must also free what it allocated.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "policy/check.h"
#include "lib/err.h"
#include "lib/jsondoc.h"
#include "policy/policy.h"
#include "audit/redact.h"
#include "policy/schema.h"
#include "lib/secmem.h"

#define MAX_N 5000

static void
setup(void)
{
	secmem_init();
	secmem_fail_after(0, 0);
}

static void
teardown(void)
{
	secmem_fail_after(0, 0);
}

TestSuite(oom, .init = setup, .fini = teardown);

static const char body[] =
        "{\"name\":\"oom\",\"memory_limit\":\"16g\",\"file_ids\":[\"a\",\"b\"],"
        "\"skills\":[{\"type\":\"skill_reference\",\"skill_id\":\"s1\",\"version\":\"2\"}],"
        "\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":[\"API.Example.COM.\","
        "\"x.example.org\"],\"domain_secrets\":[{\"domain\":\"Api.Example.com\",\"name\":\"T\","
        "\"value\":\"secret-value\"}]}}";

static const char policy_text[] =
        "{\"memory_limit\":{\"max\":\"4g\",\"on_exceed\":\"clamp\"},\"network_policy\":{"
        "\"allowed_domains\":[\"api.example.com\",\"*.example.org\"],\"allow_domain_secrets\":"
        "true},\"skills\":{\"allowed_skill_ids\":[\"s1\"]},\"expires_after\":{\"max_minutes\":"
        "30,\"default_minutes\":10}}";

static const char container[] =
        "{\"id\":\"cntr_1\",\"object\":\"container\",\"name\":\"oom\",\"created_at\":1,"
        "\"status\":\"running\",\"memory_limit\":\"16g\",\"expires_after\":{\"anchor\":"
        "\"last_active_at\",\"minutes\":99},\"network_policy\":{\"type\":\"allowlist\","
        "\"allowed_domains\":[\"api.example.com\",\"evil.com\"]}}";

/* Fails the nth allocation from now on; returns whether a run under it saw
 * a failure at all (when not, n is past what the step allocates). */
static unsigned long before;

static void
fail_from(unsigned long n)
{
	before = secmem_failures();
	secmem_fail_after(n, 1);
}

static int
stop_failing(void)
{
	secmem_fail_after(0, 0);
	return secmem_failures() != before;
}

static void
expect_oom(const struct err *e, const char *step, unsigned long n)
{
	cr_expect_eq(e->status, 503, "%s, allocation %lu failing: status %d (%s: %s)", step, n,
	             e->status, e->code ? e->code : "-", e->message);
	cr_expect(e->code && strcmp(e->code, "out_of_memory") == 0,
	          "%s, allocation %lu failing: code %s", step, n, e->code ? e->code : "(null)");
}

static struct policy *
load_policy(void)
{
	struct errlist errs;
	json_error_t je;
	json_t *doc = json_loads(policy_text, 0, &je);
	struct policy *p;

	memset(&errs, 0, sizeof(errs));
	cr_assert_not_null(doc, "%s", je.text);
	p = policy_new(doc, "oom", &errs);
	cr_assert_not_null(p, "%s", errs.msg[0]);
	json_decref(doc);
	return p;
}

Test(oom, jsondoc_parse)
{
	struct err e;
	json_t *want = jsondoc_parse(body, strlen(body), &e), *got;
	unsigned long n;
	int failed = 1;

	cr_assert_not_null(want);
	for (n = 1; n < MAX_N && failed; n++) {
		err_clear(&e);
		fail_from(n);
		got = jsondoc_parse(body, strlen(body), &e);
		failed = stop_failing();
		if (got)
			cr_expect(json_equal(got, want), "allocation %lu failing: another document",
			          n);
		else
			expect_oom(&e, "jsondoc_parse", n);
		json_decref(got);
	}
	cr_expect(!failed, "still failing after %d allocations", MAX_N);
	json_decref(want);
}

/* The policy decides the same or says it ran out of memory. */
Test(oom, policy_apply_create)
{
	struct policy *p = load_policy();
	struct policy_result r;
	struct err e;
	json_t *doc = jsondoc_parse(body, strlen(body), &e), *want, *got;
	unsigned long n;
	int failed = 1, rc;

	cr_assert_not_null(doc);
	cr_assert_eq(schema_check(&schema_create_container_body, doc, &e), 0, "%s", e.message);
	want = json_deep_copy(doc);
	cr_assert_eq(policy_apply_create(p, want, &r), 0, "%s", r.err.message);
	for (n = 1; n < MAX_N && failed; n++) {
		got = json_deep_copy(doc);
		cr_assert_not_null(got);
		fail_from(n);
		rc = policy_apply_create(p, got, &r);
		failed = stop_failing();
		if (rc == 0) {
			char *a = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);

			cr_expect(json_equal(got, want),
			          "allocation %lu failing: allowed, but would forward %s", n, a);
			secmem_json_free(a);
		} else {
			expect_oom(&r.err, "policy_apply_create", n);
		}
		json_decref(got);
	}
	cr_expect(!failed, "still failing after %d allocations", MAX_N);
	json_decref(want);
	json_decref(doc);
	policy_free(p);
}

/* A create answer: the same container and violations, or the gateway's
 * own 503; never an upstream fault that the upstream did not commit. */
Test(oom, check_create_response)
{
	json_t *fwd = json_loads("{\"name\":\"oom\",\"memory_limit\":\"4g\",\"expires_after\":{"
	                         "\"anchor\":\"last_active_at\",\"minutes\":10},"
	                         "\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":["
	                         "\"api.example.com\"]}}",
	                         0, NULL);
	json_t *want_v = json_array(), *v, *got, *want;
	struct err e;
	unsigned long n;
	int failed = 1;

	want = check_create_response(fwd, container, strlen(container), want_v, &e);
	cr_assert_not_null(want, "%s", e.message);
	cr_assert_eq(json_array_size(want_v), 3);
	for (n = 1; n < MAX_N && failed; n++) {
		v = json_array();
		cr_assert_not_null(v);
		err_clear(&e);
		fail_from(n);
		got = check_create_response(fwd, container, strlen(container), v, &e);
		failed = stop_failing();
		if (got) {
			cr_expect(json_equal(got, want),
			          "allocation %lu failing: another container", n);
			cr_expect(json_equal(v, want_v), "allocation %lu failing: other violations",
			          n);
		} else {
			expect_oom(&e, "check_create_response", n);
		}
		json_decref(got);
		json_decref(v);
	}
	cr_expect(!failed, "still failing after %d allocations", MAX_N);
	json_decref(want);
	json_decref(want_v);
	json_decref(fwd);
}

Test(oom, check_response)
{
	static const struct check_expect x = {&schema_container_resource, "cntr_2", NULL, 0};
	json_t *want_v = json_array(), *v;
	struct err e;
	unsigned long n;
	int failed = 1, rc;

	cr_assert_eq(check_response(&x, container, strlen(container), want_v, &e), 0);
	cr_assert_eq(json_array_size(want_v), 1);
	for (n = 1; n < MAX_N && failed; n++) {
		v = json_array();
		cr_assert_not_null(v);
		err_clear(&e);
		fail_from(n);
		rc = check_response(&x, container, strlen(container), v, &e);
		failed = stop_failing();
		if (rc == 0)
			cr_expect(json_equal(v, want_v), "allocation %lu failing: other violations",
			          n);
		else
			expect_oom(&e, "check_response", n);
		json_decref(v);
	}
	cr_expect(!failed, "still failing after %d allocations", MAX_N);
	json_decref(want_v);
}

/* What the audit log gets: the redacted copy, or nothing; never the
 * secret. */
Test(oom, redact_network_policy)
{
	struct err e;
	json_t *doc = jsondoc_parse(body, strlen(body), &e);
	json_t *np = json_object_get(doc, "network_policy"), *want, *got;
	unsigned long n;
	int failed = 1;

	cr_assert_not_null(doc);
	want = redact_network_policy(np);
	cr_assert_not_null(want);
	for (n = 1; n < MAX_N && failed; n++) {
		fail_from(n);
		got = redact_network_policy(np);
		failed = stop_failing();
		if (got) {
			char *text = json_dumps(got, JSON_COMPACT);

			cr_expect(json_equal(got, want), "allocation %lu failing: another copy", n);
			cr_expect(text == NULL || strstr(text, "secret-value") == NULL,
			          "allocation %lu failing: the secret is in the copy", n);
			secmem_json_free(text);
		}
		json_decref(got);
	}
	cr_expect(!failed, "still failing after %d allocations", MAX_N);
	json_decref(want);
	json_decref(doc);
}

/* Compiling a policy: it loads whole (and decides as the reference does)
 * or is refused with a reason. */
Test(oom, policy_new)
{
	struct policy *ref = load_policy(), *p;
	struct policy_result r1, r2;
	struct errlist errs;
	json_error_t je;
	json_t *doc = json_loads(policy_text, 0, &je), *a, *b;
	struct err e;
	unsigned long n;
	int failed = 1;

	cr_assert_not_null(doc);
	for (n = 1; n < MAX_N && failed; n++) {
		memset(&errs, 0, sizeof(errs));
		fail_from(n);
		p = policy_new(doc, "oom", &errs);
		failed = stop_failing();
		if (p == NULL) {
			cr_expect(errs.n > 0, "allocation %lu failing: refused without a reason",
			          n);
			continue;
		}
		a = jsondoc_parse(body, strlen(body), &e);
		b = json_deep_copy(a);
		cr_assert(a && b);
		cr_expect_eq(policy_apply_create(ref, a, &r1), policy_apply_create(p, b, &r2),
		             "allocation %lu failing: the policy decides otherwise", n);
		cr_expect(json_equal(a, b), "allocation %lu failing: the policy forwards otherwise",
		          n);
		json_decref(a);
		json_decref(b);
		policy_free(p);
	}
	cr_expect(!failed, "still failing after %d allocations", MAX_N);
	json_decref(doc);
	policy_free(ref);
}
