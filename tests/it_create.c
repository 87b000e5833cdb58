/*
 * it_create: POST /v1/containers end to end. The real gateway runs against
 * the stand-in upstream; each test checks what the client got, what the
 * upstream received (or that it received nothing), and what the audit log
 * says.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "harness.h"

TestSuite(it_create, .init = hx_init, .fini = hx_fini, .timeout = 60);

#define SECRET     "sk-SECRET-MARKER-7f3a9c"
#define CLIENT_KEY "sk-client-KEY-MARKER-19d2"

/* The create example from the upstream's documentation, verbatim. */
static const char seed_body[] = "{\n"
                                "  \"name\": \"My Container\",\n"
                                "  \"memory_limit\": \"4g\",\n"
                                "  \"skills\": [\n"
                                "    {\n"
                                "      \"type\": \"skill_reference\",\n"
                                "      \"skill_id\": \"skill_4db6f1a2c9e73508b41f9da06e2c7b5f\"\n"
                                "    },\n"
                                "    {\n"
                                "      \"type\": \"skill_reference\",\n"
                                "      \"skill_id\": \"openai-spreadsheets\",\n"
                                "      \"version\": \"latest\"\n"
                                "    }\n"
                                "  ],\n"
                                "  \"network_policy\": {\n"
                                "    \"type\": \"allowlist\",\n"
                                "    \"allowed_domains\": [\"api.buildkite.com\"]\n"
                                "  }\n"
                                "}";

static const char base_policy[] =
        "{\"memory_limit\":{\"max\":\"4g\",\"default\":\"1g\"},"
        "\"network_policy\":{\"allowed_domains\":[\"api.buildkite.com\",\"*.example.org\"],"
        "\"allow_domain_secrets\":true},"
        "\"expires_after\":{\"max_minutes\":60,\"default_minutes\":20},"
        "\"skills\":{\"allowed_skill_ids\":[\"skill_4db6f1a2c9e73508b41f9da06e2c7b5f\","
        "\"openai-spreadsheets\"]},"
        "\"on_upstream_violation\":\"block\"}";

static const char *const auth_headers[] = {"Authorization: Bearer " CLIENT_KEY,
                                           "Content-Type: application/json", NULL};

static struct hx_resp *
create(const struct hx_gw *gw, const char *body)
{
	return hx_http("POST", hx_gw_url(gw, "/v1/containers"), auth_headers, body, strlen(body));
}

/* The single audit record a test's one request produced. */
static json_t *
only_record(const struct hx_gw *gw)
{
	json_t *recs = hx_audit_wait(gw, 1, 5000);

	cr_assert_eq(json_array_size(recs), 1, "audit log has %zu records, want 1",
	             json_array_size(recs));
	return json_array_get(recs, 0);
}

/* Compact JSON text for assertion messages, in a string the harness owns. */
static const char *
dump(const json_t *v)
{
	char buf[4096];
	size_t n = json_dumpb(v, buf, sizeof(buf) - 1, JSON_COMPACT);

	buf[n < sizeof(buf) ? n : 0] = '\0';
	return hx_fmt("%s", buf);
}

/* The error shape, field by field. */
static void
expect_error(struct hx_resp *r, long status, const char *type, const char *param, const char *code)
{
	json_t *doc = hx_resp_json(r), *err = json_object_get(doc, "error");

	cr_assert_eq(r->status, status, "status %ld, want %ld: %s", r->status, status, r->body);
	cr_assert(json_is_object(err), "not the error shape: %s", r->body);
	cr_expect_eq(json_object_size(err), 4, "error has extra or missing fields: %s", r->body);
	cr_expect_str_eq(hx_str(err, "type"), type);
	cr_expect(json_is_string(json_object_get(err, "message")) &&
	          json_string_length(json_object_get(err, "message")) > 10);
	if (param)
		cr_expect_str_eq(hx_str(err, "param"), param, "%s", r->body);
	else
		cr_expect(json_is_null(json_object_get(err, "param")), "%s", r->body);
	cr_expect_str_eq(hx_str(err, "code"), code, "%s", r->body);
	cr_expect_not_null(hx_resp_header(r, "x-request-id"));
}

/* The known markers appear in none of the gateway's outputs. */
static void
expect_no_secret(const struct hx_gw *gw, const char *secret)
{
	cr_expect(!hx_file_contains(gw->audit_path, secret), "secret in the audit log");
	cr_expect(!hx_file_contains(gw->out_path, secret), "secret on stdout");
	cr_expect(!hx_file_contains(gw->err_path, secret), "secret on stderr");
}

static void
expect_nothing_forwarded(void)
{
	json_t *reqs = hx_stub_requests();

	cr_expect_eq(json_array_size(reqs), 0, "the upstream received %zu request(s)",
	             json_array_size(reqs));
}

/* The one request the upstream received, its body parsed. */
static json_t *
forwarded_body(json_t **record)
{
	json_t *reqs = hx_stub_requests(), *rec;
	size_t len;
	const char *body;

	cr_assert_eq(json_array_size(reqs), 1, "the upstream received %zu requests, want 1",
	             json_array_size(reqs));
	rec = json_array_get(reqs, 0);
	if (record)
		*record = rec;
	body = hx_record_body(rec, &len);
	cr_assert_not_null(body);
	return hx_json(body);
}

Test(it_create, seed_example_comes_back_as_a_container)
{
	const char *policy = hx_read_file("policies/default.json", NULL);
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *c, *rec, *fwd, *up, *want;

	cr_assert_not_null(policy, "run from the repository root");
	gw = hx_gw_start(policy, NULL);
	r = create(gw, seed_body);
	cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
	c = hx_resp_json(r);
	cr_expect_str_eq(hx_str(c, "object"), "container");
	cr_expect_str_eq(hx_str(c, "name"), "My Container");
	cr_expect_str_eq(hx_str(c, "memory_limit"), "4g");

	/* Forwarded: the validated document with the policy's defaults. */
	fwd = forwarded_body(&up);
	want = hx_json(
	        "{\"name\":\"My Container\",\"memory_limit\":\"4g\",\"skills\":[{\"type\":"
	        "\"skill_reference\",\"skill_id\":\"skill_4db6f1a2c9e73508b41f9da06e2c7b5f\"},"
	        "{\"type\":\"skill_reference\",\"skill_id\":\"openai-spreadsheets\","
	        "\"version\":\"latest\"}],\"network_policy\":{\"type\":\"allowlist\","
	        "\"allowed_domains\":[\"api.buildkite.com\"]},\"expires_after\":{\"anchor\":"
	        "\"last_active_at\",\"minutes\":20}}");
	cr_expect(json_equal(fwd, want), "forwarded %s", dump(fwd));
	cr_expect_str_eq(hx_str(up, "method"), "POST");
	cr_expect_str_eq(hx_str(up, "uri"), "/v1/containers");
	cr_expect_str_eq(hx_str(json_object_get(up, "headers"), "authorization"),
	                 "Bearer " CLIENT_KEY);
	cr_expect_str_eq(hx_str(json_object_get(up, "headers"), "content-type"),
	                 "application/json");

	rec = only_record(gw);
	cr_expect_str_eq(hx_str(rec, "decision"), "allow");
	cr_expect_str_eq(hx_str(rec, "operation"), "CreateContainer");
	cr_expect_str_eq(hx_str(rec, "method"), "POST");
	cr_expect_str_eq(hx_str(rec, "path"), "/v1/containers");
	cr_expect_str_eq(hx_str(rec, "client"), "127.0.0.1");
	cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 200);
	cr_expect_eq(json_integer_value(json_object_get(rec, "upstream_status")), 200);
	cr_expect_str_eq(hx_str(rec, "container_id"), hx_str(c, "id"));
	cr_expect_str_eq(hx_str(rec, "memory_limit"), "4g");
	cr_expect(json_equal(json_object_get(rec, "network_policy"),
	                     json_object_get(want, "network_policy")));
	cr_expect(json_is_number(json_object_get(rec, "latency_ms")));
	cr_expect(json_is_null(json_object_get(rec, "violations")));
	cr_expect_not_null(strstr(hx_str(rec, "ts"), "T"));
	cr_expect_eq(strlen(hx_str(rec, "ts")), strlen("2026-11-22T10:54:06.262Z"));
	cr_expect_str_eq(hx_resp_header(r, "x-request-id"), hx_str(rec, "request_id"));
	expect_no_secret(gw, CLIENT_KEY);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

Test(it_create, seed_example_at_64g_is_denied_and_never_forwarded)
{
	const char *policy = hx_read_file("policies/default.json", NULL);
	const char *at = strstr(seed_body, "\"4g\"");
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *rec;

	cr_assert_not_null(policy, "run from the repository root");
	gw = hx_gw_start(policy, NULL);
	r = create(gw, hx_fmt("%.*s\"64g\"%s", (int)(at - seed_body), seed_body, at + 4));
	expect_error(r, 403, "policy_violation", "memory_limit", "memory_limit_exceeded");
	cr_expect_not_null(strstr(r->body, "\\\"64g\\\""), "%s", r->body);
	cr_expect_not_null(strstr(r->body, "\\\"4g\\\""), "%s", r->body);
	expect_nothing_forwarded();
	rec = only_record(gw);
	cr_expect_str_eq(hx_str(rec, "decision"), "deny");
	cr_expect_str_eq(hx_str(rec, "code"), "memory_limit_exceeded");
	cr_expect_str_eq(hx_str(rec, "param"), "memory_limit");
	cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 403);
	cr_expect(json_is_null(json_object_get(rec, "upstream_status")));
	cr_expect_str_eq(hx_str(rec, "memory_limit"), "64g");
}

/* Invalid bodies: the client gets the param and code; nothing goes up. */
static const struct invalid_case {
	const char *body;
	const char *param;
	const char *code;
} invalid[] = {
        {"{\"name\":\"a\",\"memory\":\"4g\"}", "memory", "unknown_parameter"},
        {"{\"name\":\"a\",\"memory_limit\":\"4g\",\"memory_limit\":\"64g\"}", "memory_limit",
         "duplicate_key"},
        {"{\"name\":\"a\",\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":[\"a."
         "com\","
         "\"b.com\",7]}}",
         "network_policy.allowed_domains[2]", "invalid_type"},
        {"{\"name\":\"a\",\"network_policy\":{\"type\":\"disabled\",\"allowed_domains\":[\"a.com\"]"
         "}}",
         "network_policy.allowed_domains", "unknown_parameter"},
        {"{\"memory_limit\":\"4g\"}", "name", "missing_required_parameter"},
        {"{\"name\":\"a\",\"memory_limit\":\"2g\"}", "memory_limit", "invalid_value"},
        {"{\"name\":\"a\"} {}", NULL, "invalid_json"},
        {"\xef\xbb\xbf{\"name\":\"a\"}", NULL, "invalid_json"},
        {"{\"name\":\"\xc0\xaf\"}", "name", "invalid_json"},
        {"{\"name\":\"a\",\"expires_after\":{\"anchor\":\"last_active_at\",\"minutes\":NaN}}",
         "expires_after.minutes", "invalid_json"},
        {"[{\"name\":\"a\"}]", NULL, "invalid_json"},
        {"{\"name\":\"a\",\"skills\":[{\"type\":\"skill_reference\",\"skill_id\":"
         "\"0123456789012345678901234567890123456789012345678901234567890123X\"}]}",
         "skills[0].skill_id", "string_too_long"},
};

Test(it_create, invalid_bodies_get_400_with_the_field_and_are_not_forwarded)
{
	struct hx_gw *gw = hx_gw_start(base_policy, NULL);
	json_t *recs, *rec;
	size_t i;

	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		struct hx_resp *r = create(gw, invalid[i].body);

		expect_error(r, 400, "invalid_request_error", invalid[i].param, invalid[i].code);
	}
	expect_nothing_forwarded();
	recs = hx_audit_wait(gw, i, 5000);
	cr_expect_eq(json_array_size(recs), i, "one record per request");
	json_array_foreach(recs, i, rec)
	{
		cr_expect_str_eq(hx_str(rec, "decision"), "deny");
		cr_expect_str_eq(hx_str(rec, "code"), invalid[i].code);
		cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 400);
	}
}

Test(it_create, domains_are_checked_as_hostnames)
{
	struct hx_gw *gw = hx_gw_start(base_policy, NULL);
	struct hx_resp *r;
	json_t *fwd;

	r = create(gw, "{\"name\":\"a\",\"network_policy\":{\"type\":\"allowlist\","
	               "\"allowed_domains\":[\"api.buildkite.com\",\"evil.com\"]}}");
	expect_error(r, 403, "policy_violation", "network_policy.allowed_domains[1]",
	             "domain_not_allowed");
	r = create(gw, "{\"name\":\"a\",\"network_policy\":{\"type\":\"allowlist\","
	               "\"allowed_domains\":[\"https://api.buildkite.com/\"]}}");
	expect_error(r, 403, "policy_violation", "network_policy.allowed_domains[0]",
	             "domain_invalid");
	r = create(gw, "{\"name\":\"a\",\"network_policy\":{\"type\":\"allowlist\","
	               "\"allowed_domains\":[\"example.org\"]}}");
	expect_error(r, 403, "policy_violation", "network_policy.allowed_domains[0]",
	             "domain_not_allowed");
	r = create(gw, "{\"name\":\"a\",\"network_policy\":{\"type\":\"allowlist\","
	               "\"allowed_domains\":[\"127.0.0.1\"]}}");
	expect_error(r, 403, "policy_violation", "network_policy.allowed_domains[0]",
	             "domain_invalid");
	expect_nothing_forwarded();

	/* Case and a trailing dot do not matter; the normalized name is sent. */
	r = create(gw, "{\"name\":\"a\",\"network_policy\":{\"type\":\"allowlist\","
	               "\"allowed_domains\":[\"API.BuildKite.com.\",\"Deep.Sub.Example.ORG\"]}}");
	cr_assert_eq(r->status, 200, "%s", r->body);
	fwd = forwarded_body(NULL);
	cr_expect(json_equal(json_object_get(json_object_get(fwd, "network_policy"),
	                                     "allowed_domains"),
	                     hx_json("[\"api.buildkite.com\",\"deep.sub.example.org\"]")),
	          "%s", dump(fwd));
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 5, 5000)), 5);
}

Test(it_create, defaults_fill_what_the_request_left_out)
{
	struct hx_gw *gw = hx_gw_start(base_policy, NULL);
	struct hx_resp *r = create(gw, "{\"name\":\"bare\"}");
	json_t *fwd, *rec;

	cr_assert_eq(r->status, 200, "%s", r->body);
	fwd = forwarded_body(NULL);
	cr_expect(json_equal(fwd, hx_json("{\"name\":\"bare\",\"memory_limit\":\"1g\","
	                                  "\"expires_after\":{\"anchor\":\"last_active_at\","
	                                  "\"minutes\":20},\"network_policy\":{\"type\":"
	                                  "\"disabled\"}}")),
	          "%s", dump(fwd));
	rec = only_record(gw);
	cr_expect_eq(json_array_size(json_object_get(rec, "adjustments")), 3);
}

Test(it_create, clamp_lowers_memory_and_says_so)
{
	struct hx_gw *gw =
	        hx_gw_start("{\"memory_limit\":{\"max\":\"4g\",\"on_exceed\":\"clamp\"}}", NULL);
	struct hx_resp *r = create(gw, "{\"name\":\"big\",\"memory_limit\":\"16g\"}");
	json_t *fwd, *rec;

	cr_assert_eq(r->status, 200, "%s", r->body);
	fwd = forwarded_body(NULL);
	cr_expect_str_eq(hx_str(fwd, "memory_limit"), "4g");
	rec = only_record(gw);
	cr_expect_str_eq(hx_str(rec, "memory_limit"), "4g");
	cr_expect_not_null(strstr(dump(json_object_get(rec, "adjustments")), "16g"));
}

Test(it_create, a_domain_secret_reaches_the_upstream_and_nowhere_else)
{
	struct hx_gw *gw = hx_gw_start(base_policy, NULL);
	struct hx_resp *r;
	json_t *fwd, *rec, *np;

	r = create(gw,
	           "{\"name\":\"s\",\"network_policy\":{\"type\":\"allowlist\","
	           "\"allowed_domains\":[\"api.buildkite.com\"],\"domain_secrets\":[{\"domain\":"
	           "\"api.buildkite.com\",\"name\":\"BUILDKITE_TOKEN\",\"value\":\"" SECRET
	           "\"}]}}");
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_null(strstr(r->body, SECRET), "secret in the answer");
	fwd = forwarded_body(NULL);
	cr_expect_str_eq(
	        hx_str(json_array_get(json_object_get(json_object_get(fwd, "network_policy"),
	                                              "domain_secrets"),
	                              0),
	               "value"),
	        SECRET);
	rec = only_record(gw);
	np = json_object_get(rec, "network_policy");
	cr_expect(json_equal(
	                  json_object_get(np, "domain_secrets"),
	                  hx_json("[{\"domain\":\"api.buildkite.com\",\"name\":\"BUILDKITE_TOKEN\","
	                          "\"value\":\"[REDACTED]\"}]")),
	          "%s", dump(np));

	/* Refused requests do not echo it either. */
	r = create(gw,
	           "{\"name\":\"s\",\"network_policy\":{\"type\":\"allowlist\","
	           "\"allowed_domains\":[\"api.buildkite.com\"],\"domain_secrets\":[{\"domain\":"
	           "\"evil.com\",\"name\":\"T\",\"value\":\"" SECRET "\"}]}}");
	expect_error(r, 403, "policy_violation", "network_policy.domain_secrets[0].domain",
	             "secret_domain_not_allowed");
	cr_expect_null(strstr(r->body, SECRET));
	r = create(gw,
	           "{\"name\":\"s\",\"network_policy\":{\"type\":\"allowlist\","
	           "\"allowed_domains\":[\"api.buildkite.com\"],\"domain_secrets\":[{\"domain\":"
	           "\"api.buildkite.com\",\"name\":\"T\",\"value\":\"" SECRET "\",\"x\":1}]}}");
	expect_error(r, 400, "invalid_request_error", "network_policy.domain_secrets[0].x",
	             "unknown_parameter");
	cr_expect_null(strstr(r->body, SECRET));
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 3, 5000)), 3);
	cr_expect_eq(hx_gw_stop(gw), 0);
	expect_no_secret(gw, SECRET);
	expect_no_secret(gw, CLIENT_KEY);
}

Test(it_create, secrets_refused_when_the_policy_says_so)
{
	struct hx_gw *gw =
	        hx_gw_start("{\"network_policy\":{\"allowed_domains\":[\"a.example.com\"]}}", NULL);
	struct hx_resp *r;

	r = create(gw, "{\"name\":\"s\",\"network_policy\":{\"type\":\"allowlist\","
	               "\"allowed_domains\":[\"a.example.com\"],\"domain_secrets\":[{\"domain\":"
	               "\"a.example.com\",\"name\":\"T\",\"value\":\"" SECRET "\"}]}}");
	expect_error(r, 403, "policy_violation", "network_policy.domain_secrets",
	             "domain_secrets_not_allowed");
	expect_nothing_forwarded();
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 1, 5000)), 1);
	expect_no_secret(gw, SECRET);
}

Test(it_create, only_the_documented_headers_go_upstream)
{
	static const char *const headers[] = {"Authorization: Bearer " CLIENT_KEY,
	                                      "OpenAI-Organization: org-123",
	                                      "OpenAI-Project: proj_456",
	                                      "Cookie: session=abc",
	                                      "X-Forwarded-For: 10.0.0.1",
	                                      "Content-Type: application/json",
	                                      NULL};
	struct hx_gw *gw = hx_gw_start(base_policy, NULL);
	struct hx_resp *r;
	json_t *up, *h;

	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), headers, "{\"name\":\"h\"}", 12);
	cr_assert_eq(r->status, 200, "%s", r->body);
	(void)forwarded_body(&up);
	h = json_object_get(up, "headers");
	cr_expect_str_eq(hx_str(h, "authorization"), "Bearer " CLIENT_KEY);
	cr_expect_str_eq(hx_str(h, "openai-organization"), "org-123");
	cr_expect_str_eq(hx_str(h, "openai-project"), "proj_456");
	cr_expect_null(json_object_get(h, "cookie"));
	cr_expect_null(json_object_get(h, "x-forwarded-for"));
	cr_expect_not_null(json_object_get(h, "x-gateway-request-id"));
	cr_expect_str_eq(hx_str(h, "x-gateway-request-id"), hx_str(only_record(gw), "request_id"));
}

Test(it_create, unreachable_upstream_is_a_502)
{
	int closed = hx_free_port();
	struct hx_gw *gw = hx_gw_start(
	        base_policy,
	        hx_fmt("{\"upstream\":{\"base_url\":\"http://127.0.0.1:%d/v1\"}}", closed));
	struct hx_resp *r = create(gw, "{\"name\":\"u\"}");
	json_t *rec;

	expect_error(r, 502, "upstream_error", NULL, "upstream_unreachable");
	rec = only_record(gw);
	cr_expect_str_eq(hx_str(rec, "decision"), "error");
	cr_expect_str_eq(hx_str(rec, "code"), "upstream_unreachable");
	cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 502);
}

Test(it_create, slow_upstream_is_a_504)
{
	struct hx_gw *gw = hx_gw_start(base_policy, "{\"upstream\":{\"timeout_ms\":300}}");
	struct hx_resp *r;

	hx_stub_next("{\"delay_ms\":3000}");
	r = create(gw, "{\"name\":\"slow\"}");
	expect_error(r, 504, "upstream_error", NULL, "upstream_timeout");
	cr_expect_str_eq(hx_str(only_record(gw), "decision"), "error");
}

Test(it_create, upstream_errors_are_relayed_with_their_body)
{
	struct hx_gw *gw = hx_gw_start(base_policy, NULL);
	struct hx_resp *r;
	json_t *recs;

	hx_stub_next("{\"status\":429,\"json\":{\"error\":{\"message\":\"slow down\",\"type\":"
	             "\"rate_limit_error\",\"param\":null,\"code\":\"rate_limit_exceeded\"}},"
	             "\"headers\":{\"Retry-After\":\"7\",\"x-request-id\":\"req_upstream_1\"}}");
	r = create(gw, "{\"name\":\"busy\"}");
	cr_assert_eq(r->status, 429, "%s", r->body);
	cr_expect_str_eq(hx_str(json_object_get(hx_resp_json(r), "error"), "message"), "slow down");
	cr_expect_str_eq(hx_resp_header(r, "Retry-After"), "7");
	cr_expect_str_eq(hx_resp_header(r, "x-request-id"), "req_upstream_1");

	hx_stub_next("{\"status\":500,\"body\":\"upstream broke\"}");
	r = create(gw, "{\"name\":\"broken\"}");
	cr_assert_eq(r->status, 500);
	cr_expect_str_eq(r->body, "upstream broke");

	recs = hx_audit_wait(gw, 2, 5000);
	cr_expect_eq(
	        json_integer_value(json_object_get(json_array_get(recs, 0), "upstream_status")),
	        429);
	cr_expect_str_eq(hx_str(json_array_get(recs, 0), "upstream_request_id"), "req_upstream_1");
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(recs, 1), "status")), 500);
}

/* An answer that shows a different container than the one asked for. */
static const char *
wrong_container(const char *memory, const char *domains, int minutes)
{
	return hx_fmt("{\"json\":{\"id\":\"cntr_x\",\"object\":\"container\",\"name\":\"v\","
	              "\"created_at\":1,\"status\":\"running\",\"memory_limit\":\"%s\","
	              "\"expires_after\":{\"anchor\":\"last_active_at\",\"minutes\":%d},"
	              "\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":%s}}}",
	              memory, minutes, domains);
}

static const char violating_request[] =
        "{\"name\":\"v\",\"memory_limit\":\"1g\",\"network_policy\":{\"type\":\"allowlist\","
        "\"allowed_domains\":[\"api.buildkite.com\"]}}";

Test(it_create, block_mode_withholds_a_container_that_breaks_the_request)
{
	struct hx_gw *gw = hx_gw_start(base_policy, NULL);
	struct hx_resp *r;
	json_t *rec, *v;

	hx_stub_next(wrong_container("16g", "[\"api.buildkite.com\",\"evil.com\"]", 600));
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), auth_headers, violating_request,
	            strlen(violating_request));
	expect_error(r, 502, "upstream_error", NULL, "upstream_violation");
	cr_expect_null(strstr(r->body, "cntr_x\",\"object"), "container leaked: %s", r->body);
	rec = only_record(gw);
	cr_expect_str_eq(hx_str(rec, "decision"), "error");
	cr_expect_str_eq(hx_str(rec, "container_id"), "cntr_x");
	v = json_object_get(rec, "violations");
	cr_assert_eq(json_array_size(v), 3, "%s", dump(v));
	cr_expect_str_eq(hx_str(json_array_get(v, 0), "field"), "memory_limit");
	cr_expect_str_eq(hx_str(json_array_get(v, 0), "returned"), "16g");
	cr_expect_str_eq(hx_str(json_array_get(v, 1), "field"), "expires_after.minutes");
	cr_expect_str_eq(hx_str(json_array_get(v, 2), "field"),
	                 "network_policy.allowed_domains[1]");
}

/* Withheld means withheld: a tenant never gets to use a container the
 * gateway refused to hand over. Retrieving it is 404 and never forwarded,
 * and it does not take the tenant's live-container slot. */
Test(it_create, a_withheld_container_is_not_the_tenants)
{
	const char *tenant[] = {"Authorization: Bearer sk-withheld-TENANT",
	                        "Content-Type: application/json", NULL};
	struct hx_gw *gw = hx_gw_start(
	        hx_fmt("{\"memory_limit\":{\"max\":\"4g\"},\"network_policy\":{\"allowed_domains\":"
	               "[\"api.buildkite.com\"]},\"on_upstream_violation\":\"block\","
	               "\"tenants\":{\"t\":{\"api_keys_sha256\":[\"%s\"],"
	               "\"rate_limit\":{\"max_live_containers\":1}}}}",
	               hx_key_digest("sk-withheld-TENANT")),
	        NULL);
	struct hx_resp *r;
	size_t before;

	hx_stub_next(wrong_container("16g", "[\"api.buildkite.com\"]", 20));
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), tenant, violating_request,
	            strlen(violating_request));
	expect_error(r, 502, "upstream_error", NULL, "upstream_violation");
	before = json_array_size(hx_stub_requests());
	r = hx_http("GET", hx_gw_url(gw, "/v1/containers/cntr_x"), tenant, NULL, 0);
	expect_error(r, 404, "invalid_request_error", NULL, "not_found");
	r = hx_http("DELETE", hx_gw_url(gw, "/v1/containers/cntr_x"), tenant, NULL, 0);
	expect_error(r, 404, "invalid_request_error", NULL, "not_found");
	cr_expect_eq(json_array_size(hx_stub_requests()), before, "neither was forwarded");
	/* Its slot was given back: the tenant's one live container can be made. */
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), tenant, "{\"name\":\"ok\"}", 13);
	cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
}

Test(it_create, log_mode_relays_and_records_the_violation)
{
	struct hx_gw *gw = hx_gw_start(
	        "{\"memory_limit\":{\"max\":\"4g\"},\"network_policy\":{\"allowed_domains\":["
	        "\"api.buildkite.com\"]},\"on_upstream_violation\":\"log\"}",
	        NULL);
	struct hx_resp *r;
	json_t *rec;

	hx_stub_next(wrong_container("4g", "[\"api.buildkite.com\"]", 20));
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), auth_headers, violating_request,
	            strlen(violating_request));
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_str_eq(hx_str(hx_resp_json(r), "id"), "cntr_x");
	rec = only_record(gw);
	cr_expect_str_eq(hx_str(rec, "decision"), "allow");
	cr_expect_eq(json_array_size(json_object_get(rec, "violations")), 1);
	cr_expect_str_eq(hx_str(json_array_get(json_object_get(rec, "violations"), 0), "field"),
	                 "memory_limit");
}

Test(it_create, an_answer_that_is_not_a_container_is_a_502)
{
	struct hx_gw *gw = hx_gw_start(base_policy, "{\"policy_file\":\"policy.json\"}");
	struct hx_resp *r;

	hx_stub_next("{\"body\":\"<html>hello</html>\"}");
	r = create(gw, "{\"name\":\"n\"}");
	expect_error(r, 502, "upstream_error", NULL, "bad_upstream_response");
	hx_stub_next("{\"json\":{\"id\":\"cntr_1\",\"object\":\"container\"}}");
	r = create(gw, "{\"name\":\"n\"}");
	expect_error(r, 502, "upstream_error", NULL, "bad_upstream_response");
	cr_expect_not_null(strstr(r->body, "name"), "says what is missing: %s", r->body);
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 2, 5000)), 2);
}

Test(it_create, wrong_content_type_is_a_415)
{
	static const char *const headers[] = {"Content-Type: text/plain", NULL};
	struct hx_gw *gw = hx_gw_start(base_policy, NULL);
	struct hx_resp *r;

	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), headers, "{\"name\":\"t\"}", 12);
	expect_error(r, 415, "invalid_request_error", NULL, "unsupported_media_type");
	expect_nothing_forwarded();
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 1, 5000)), 1);
}

Test(it_create, large_inline_skill_passes_through_when_allowed)
{
	struct hx_gw *gw = hx_gw_start("{\"skills\":{\"allow_inline\":true}}", NULL);
	size_t n = 3 * 1024 * 1024, i;
	char *body = malloc(n + 256);
	struct hx_resp *r;
	size_t len, fwd_len = 0;
	const char *fwd_text;
	json_t *reqs, *data;

	len = (size_t)sprintf(body, "{\"name\":\"big\",\"skills\":[{\"type\":\"inline\",\"name\":"
	                            "\"s\",\"description\":\"d\",\"source\":{\"type\":\"base64\","
	                            "\"media_type\":\"application/zip\",\"data\":\"");
	for (i = 0; i < n; i++)
		body[len++] = "ABCD"[i % 4];
	len += (size_t)sprintf(body + len, "\"}}]}");
	/* Over 1 MiB, curl sends Expect: 100-continue. */
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), auth_headers, body, len);
	cr_assert_eq(r->status, 200, "%ld %s", r->status, r->error);
	reqs = hx_stub_requests();
	cr_assert_eq(json_array_size(reqs), 1);
	fwd_text = hx_record_body(json_array_get(reqs, 0), &fwd_len);
	cr_assert_not_null(fwd_text);
	cr_expect_gt(fwd_len, n);
	data = json_object_get(
	        json_object_get(json_array_get(json_object_get(hx_json(fwd_text), "skills"), 0),
	                        "source"),
	        "data");
	cr_expect_eq(json_string_length(data), n, "inline data forwarded whole");
	free(body);
}

/* Creates in flight at once, each on its own client connection while the
 * stub holds its answer; returns the upstream ports they arrived on. */
static json_t *
wave(const struct hx_gw *gw, int n)
{
	static const char body[] = "{\"name\":\"wave\"}";
	const char *req = hx_fmt("POST /v1/containers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
	                         "%s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	                         "Connection: close\r\n\r\n%s",
	                         CLIENT_KEY, strlen(body), body);
	json_t *ports = json_object(), *rq;
	int fds[16], i;
	size_t k;

	cr_assert_leq(n, 16);
	hx_stub_clear();
	hx_stub_next(hx_fmt("{\"delay_ms\":300,\"repeat\":%d}", n));
	for (i = 0; i < n; i++)
		cr_assert_geq(fds[i] = hx_raw_open(gw->port, req, strlen(req)), 0);
	for (i = 0; i < n; i++) {
		const char *got = hx_raw_read(fds[i], 5000, &k);

		cr_assert(strncmp(got, "HTTP/1.1 200", 12) == 0, "wave request %d: %.200s", i, got);
	}
	json_array_foreach(hx_stub_requests(), k, rq) json_object_set_new(
	        ports,
	        hx_fmt("%lld", (long long)json_integer_value(json_object_get(rq, "peer_port"))),
	        json_true());
	return ports;
}

/* Upstream connections outlive requests, even when the load dips between
 * two bursts: the second burst finds the first one's connections open and
 * pays no connect (or TLS handshake). libcurl's default cache would have
 * closed all but a few of them as the first burst finished. */
Test(it_create, upstream_connections_outlive_a_dip_in_load)
{
	struct hx_gw *gw = hx_gw_start(base_policy, NULL);
	json_t *first = wave(gw, 8), *second, *v;
	struct hx_resp *r = create(gw, "{\"name\":\"lull\"}");
	const char *port;

	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_assert_eq(json_object_size(first), 8, "the first burst came on %zu connections, want 8",
	             json_object_size(first));
	second = wave(gw, 8);
	json_object_foreach(second, port, v) cr_expect_not_null(
	        json_object_get(first, port),
	        "the second burst opened a new upstream connection (port %s)", port);
	json_decref(first);
	json_decref(second);
}
