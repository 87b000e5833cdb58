/*
 * it_tenants: one gateway for a whole organization. Tenants found by their
 * keys' digests get their own (narrower) policies, limits and brokered
 * secrets; gateway_keys mode keeps client keys away from the upstream; a
 * tenant sees only its own containers; shadow mode audits instead of
 * refusing; eval decides without the upstream.
 */
#include <criterion/criterion.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

TestSuite(it_tenants, .init = hx_init, .fini = hx_fini, .timeout = 60);

#define DATA_KEY     "sk-data-team-KEY-7781"
#define INTERN_KEY   "sk-intern-KEY-1290"
#define OPS_KEY      "sk-ops-KEY-5501"
#define BK_SECRET    "bk-SECRET-VALUE-93f0aa"
#define UPSTREAM_KEY "sk-org-UPSTREAM-KEY-4410"

static const char *
org_policy(const char *extra_tenant_json)
{
	return hx_fmt(
	        "{\"memory_limit\":{\"max\":\"16g\",\"default\":\"1g\"},"
	        "\"network_policy\":{\"allowed_domains\":[\"api.buildkite.com\",\"pypi.org\"],"
	        "\"allow_domain_secrets\":true},"
	        "\"tenants\":{"
	        "\"data-team\":{\"api_keys_sha256\":[\"%s\"],"
	        "\"secrets\":[{\"domain\":\"api.buildkite.com\",\"name\":\"BUILDKITE_TOKEN\","
	        "\"value_env\":\"GW_TEST_BK_TOKEN\"}],\"allow_client_secrets\":false},"
	        "\"interns\":{\"api_keys_sha256\":[\"%s\"],\"policy\":{\"memory_limit\":{\"max\":"
	        "\"1g\"},\"network_policy\":{\"allowed_domains\":[]}},"
	        "\"rate_limit\":{\"creates_per_minute\":2}}%s}}",
	        hx_key_digest(DATA_KEY), hx_key_digest(INTERN_KEY),
	        extra_tenant_json ? extra_tenant_json : "");
}

static struct hx_resp *
as(const struct hx_gw *gw, const char *key, const char *method, const char *path, const char *body)
{
	const char *h[3] = {"Content-Type: application/json", NULL, NULL};

	if (key)
		h[1] = hx_fmt("Authorization: Bearer %s", key);
	return hx_http(method, hx_gw_url(gw, path), h, body, body ? strlen(body) : 0);
}

static void
expect_code(struct hx_resp *r, long status, const char *code)
{
	cr_assert_eq(r->status, status, "want %ld: %ld %s", status, r->status, r->body);
	cr_expect_str_eq(hx_str(json_object_get(hx_resp_json(r), "error"), "code"), code, "%s",
	                 r->body);
}

static void
no_secret_anywhere(const struct hx_gw *gw, const char *secret)
{
	cr_expect(!hx_file_contains(gw->audit_path, secret), "in the audit log");
	cr_expect(!hx_file_contains(gw->out_path, secret), "on stdout");
	cr_expect(!hx_file_contains(gw->err_path, secret), "on stderr");
}

Test(it_tenants, two_tenants_get_their_own_policies)
{
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *recs;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(org_policy(NULL), NULL);
	r = as(gw, DATA_KEY, "POST", "/v1/containers",
	       "{\"name\":\"big\",\"memory_limit\":\"16g\"}");
	cr_expect_eq(r->status, 200, "%s", r->body);
	r = as(gw, INTERN_KEY, "POST", "/v1/containers",
	       "{\"name\":\"big\",\"memory_limit\":\"16g\"}");
	expect_code(r, 403, "memory_limit_exceeded");
	cr_expect_not_null(strstr(r->body, "\\\"1g\\\""), "%s", r->body);
	r = as(gw, INTERN_KEY, "POST", "/v1/containers",
	       "{\"name\":\"net\",\"network_policy\":{\"type\":\"allowlist\","
	       "\"allowed_domains\":[\"pypi.org\"]}}");
	expect_code(r, 403, "domain_not_allowed");
	/* A key no tenant lists gets the organization's policy. */
	r = as(gw, "sk-someone-else", "POST", "/v1/containers",
	       "{\"name\":\"org\",\"memory_limit\":\"16g\"}");
	cr_expect_eq(r->status, 200, "%s", r->body);
	recs = hx_audit_wait(gw, 4, 5000);
	cr_expect_str_eq(hx_str(json_array_get(recs, 0), "tenant"), "data-team");
	cr_expect_str_eq(hx_str(json_array_get(recs, 1), "tenant"), "interns");
	cr_expect(json_is_null(json_object_get(json_array_get(recs, 3), "tenant")));
	cr_expect_eq(json_array_size(hx_stub_requests()), 2);
	/* Passthrough mode forwards each client's own key. */
	cr_expect_str_eq(hx_str(json_object_get(json_array_get(hx_stub_requests(), 0), "headers"),
	                        "authorization"),
	                 "Bearer " DATA_KEY);
}

/* A key names its tenant however the Bearer credential is spelled, and the
 * upstream gets it written one way; credentials that read two ways are
 * refused and never forwarded. */
Test(it_tenants, a_key_is_its_tenants_however_bearer_is_spelled)
{
	static const char *const spellings[] = {"Bearer  ", "Bearer\t", "bearer ", "BEARER \t "};
	const char *big = "{\"name\":\"big\",\"memory_limit\":\"16g\"}";
	const char *h[3] = {"Content-Type: application/json", NULL, NULL};
	struct hx_gw *gw;
	struct hx_resp *r;
	const char *raw, *out;
	size_t i, n;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(org_policy(NULL), NULL);
	for (i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		h[1] = hx_fmt("Authorization: %s%s", spellings[i], INTERN_KEY);
		r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), h, big, strlen(big));
		expect_code(r, 403, "memory_limit_exceeded");
	}
	h[1] = hx_fmt("Authorization: bearer\t%s", DATA_KEY);
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), h, big, strlen(big));
	cr_expect_eq(r->status, 200, "%s", r->body);
	cr_assert_eq(json_array_size(hx_stub_requests()), 1);
	cr_expect_str_eq(hx_str(json_object_get(json_array_get(hx_stub_requests(), 0), "headers"),
	                        "authorization"),
	                 "Bearer " DATA_KEY);

	/* Not a Bearer credential, or not only one. */
	h[1] = "Authorization: Basic ZGF0YTp0ZWFt";
	expect_code(hx_http("GET", hx_gw_url(gw, "/v1/containers"), h, NULL, 0), 401,
	            "invalid_api_key");
	h[1] = hx_fmt("Authorization: Bearer %s trailing", DATA_KEY);
	expect_code(hx_http("GET", hx_gw_url(gw, "/v1/containers"), h, NULL, 0), 401,
	            "invalid_api_key");
	raw = hx_fmt("GET /v1/containers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
	             "Authorization: Bearer %s\r\nConnection: close\r\n\r\n",
	             INTERN_KEY, DATA_KEY);
	out = hx_raw(gw->port, raw, strlen(raw), 5000, 0, &n);
	cr_assert_not_null(out);
	cr_expect(strncmp(out, "HTTP/1.1 401 ", 13) == 0, "%s", out);
	cr_expect_not_null(strstr(out, "ambiguous_credentials"), "%s", out);
	cr_expect_eq(json_array_size(hx_stub_requests()), 1, "nothing more was forwarded");
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 8, 5000)), 8, "each one audited");
}

Test(it_tenants, gateway_keys_mode_never_forwards_a_client_key)
{
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *reqs, *rec;
	size_t i;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	setenv("GW_TEST_UPSTREAM_KEY", UPSTREAM_KEY, 1);
	gw = hx_gw_start(org_policy(NULL),
	                 "{\"auth\":{\"mode\":\"gateway_keys\"},"
	                 "\"upstream\":{\"api_key_env\":\"GW_TEST_UPSTREAM_KEY\"}}");
	r = as(gw, DATA_KEY, "POST", "/v1/containers", "{\"name\":\"k\"}");
	cr_expect_eq(r->status, 200, "%s", r->body);
	r = as(gw, INTERN_KEY, "GET", "/v1/containers", NULL);
	cr_expect_eq(r->status, 200, "%s", r->body);
	r = as(gw, "sk-unknown-KEY", "POST", "/v1/containers", "{\"name\":\"k\"}");
	expect_code(r, 401, "invalid_api_key");
	r = as(gw, NULL, "GET", "/v1/containers", NULL);
	expect_code(r, 401, "missing_api_key");

	reqs = hx_stub_requests();
	cr_assert_eq(json_array_size(reqs), 2, "refused requests never went up");
	json_array_foreach(reqs, i, rec)
	{
		cr_expect_str_eq(hx_str(json_object_get(rec, "headers"), "authorization"),
		                 "Bearer " UPSTREAM_KEY);
	}
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 4, 5000)), 4);
	cr_expect_eq(hx_gw_stop(gw), 0);
	no_secret_anywhere(gw, UPSTREAM_KEY);
	no_secret_anywhere(gw, DATA_KEY);
	no_secret_anywhere(gw, "sk-unknown-KEY");
}

/* Beside the organization's key, the organization says which of its
 * organizations and projects pays, whatever the client sends; in
 * passthrough mode the client's own key goes with the client's own
 * headers, each at most once. */
Test(it_tenants, gateway_keys_mode_chooses_the_organization_and_project)
{
	const char *h[] = {"Authorization: Bearer " DATA_KEY, "OpenAI-Project: proj_client_CHOICE",
	                   "OpenAI-Organization: org-client-CHOICE", NULL};
	struct hx_gw *gw;
	json_t *up;
	char *text;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	setenv("GW_TEST_UPSTREAM_KEY", UPSTREAM_KEY, 1);
	gw = hx_gw_start(org_policy(hx_fmt(",\"ops\":{\"api_keys_sha256\":[\"%s\"],"
	                                   "\"upstream\":{\"project\":\"proj_ops\"}}",
	                                   hx_key_digest(OPS_KEY))),
	                 "{\"auth\":{\"mode\":\"gateway_keys\"},"
	                 "\"upstream\":{\"api_key_env\":\"GW_TEST_UPSTREAM_KEY\","
	                 "\"organization\":\"org-ACME\",\"project\":\"proj_gateway\"}}");
	cr_expect_eq(hx_http("GET", hx_gw_url(gw, "/v1/containers"), h, NULL, 0)->status, 200);
	up = json_object_get(json_array_get(hx_stub_requests(), 0), "headers");
	cr_expect_str_eq(hx_str(up, "authorization"), "Bearer " UPSTREAM_KEY);
	cr_expect_str_eq(hx_str(up, "openai-project"), "proj_gateway");
	cr_expect_str_eq(hx_str(up, "openai-organization"), "org-ACME");
	text = json_dumps(up, 0);
	cr_expect(text && !strstr(text, "CHOICE"), "nothing of the client's choice: %s", text);
	free(text);

	/* A tenant billed to its own project: that one, the organization's
	 * organization, and still nothing of the client's. */
	h[0] = "Authorization: Bearer " OPS_KEY;
	cr_expect_eq(hx_http("GET", hx_gw_url(gw, "/v1/containers"), h, NULL, 0)->status, 200);
	up = json_object_get(json_array_get(hx_stub_requests(), 1), "headers");
	cr_expect_str_eq(hx_str(up, "openai-project"), "proj_ops");
	cr_expect_str_eq(hx_str(up, "openai-organization"), "org-ACME");
	text = json_dumps(up, 0);
	cr_expect(text && !strstr(text, "CHOICE"), "nothing of the client's choice: %s", text);
	free(text);
}

Test(it_tenants, passthrough_mode_forwards_the_clients_own_project_once)
{
	const char *h[] = {"Authorization: Bearer sk-own-KEY", "OpenAI-Project: proj_mine", NULL};
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	const char *raw;
	size_t n;

	cr_expect_eq(hx_http("GET", hx_gw_url(gw, "/v1/containers"), h, NULL, 0)->status, 200);
	cr_expect_str_eq(hx_str(json_object_get(json_array_get(hx_stub_requests(), 0), "headers"),
	                        "openai-project"),
	                 "proj_mine");
	raw = hx_raw(
	        gw->port,
	        "GET /v1/containers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-own-KEY\r\n"
	        "OpenAI-Project: proj_a\r\nOpenAI-Project: proj_b\r\nConnection: close\r\n\r\n",
	        strlen("GET /v1/containers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
	               "sk-own-KEY\r\nOpenAI-Project: proj_a\r\nOpenAI-Project: "
	               "proj_b\r\nConnection: close\r\n\r\n"),
	        5000, 0, &n);
	cr_assert_not_null(raw);
	cr_expect(strncmp(raw, "HTTP/1.1 400 ", 13) == 0 && strstr(raw, "duplicate_header"), "%s",
	          raw);
	cr_expect_eq(json_array_size(hx_stub_requests()), 1);
}

Test(it_tenants, a_brokered_secret_reaches_the_upstream_and_nowhere_else)
{
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *up, *secrets, *rec;
	size_t len;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(org_policy(NULL), NULL);
	r = as(gw, DATA_KEY, "POST", "/v1/containers",
	       "{\"name\":\"ci\",\"network_policy\":{\"type\":\"allowlist\","
	       "\"allowed_domains\":[\"api.buildkite.com\"]}}");
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_null(strstr(r->body, BK_SECRET));
	up = hx_json(hx_record_body(json_array_get(hx_stub_requests(), 0), &len));
	secrets = json_object_get(json_object_get(up, "network_policy"), "domain_secrets");
	cr_assert_eq(json_array_size(secrets), 1);
	cr_expect_str_eq(hx_str(json_array_get(secrets, 0), "name"), "BUILDKITE_TOKEN");
	cr_expect_str_eq(hx_str(json_array_get(secrets, 0), "value"), BK_SECRET);
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_str_eq(
	        hx_str(json_array_get(json_object_get(json_object_get(rec, "network_policy"),
	                                              "domain_secrets"),
	                              0),
	               "value"),
	        "[REDACTED]");

	/* A domain the allowlist does not reach gets no secret. */
	r = as(gw, DATA_KEY, "POST", "/v1/containers",
	       "{\"name\":\"py\",\"network_policy\":{\"type\":\"allowlist\","
	       "\"allowed_domains\":[\"pypi.org\"]}}");
	cr_assert_eq(r->status, 200, "%s", r->body);
	up = hx_json(hx_record_body(json_array_get(hx_stub_requests(), 1), &len));
	cr_expect_null(json_object_get(json_object_get(up, "network_policy"), "domain_secrets"));

	/* This tenant's clients may not send secrets of their own. */
	r = as(gw, DATA_KEY, "POST", "/v1/containers",
	       "{\"name\":\"x\",\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":"
	       "[\"pypi.org\"],\"domain_secrets\":[{\"domain\":\"pypi.org\",\"name\":\"T\","
	       "\"value\":\"client-SECRET-55\"}]}}");
	expect_code(r, 403, "client_secrets_not_allowed");
	cr_expect_eq(json_array_size(hx_stub_requests()), 2);
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 3, 5000)), 3);
	cr_expect_eq(hx_gw_stop(gw), 0);
	no_secret_anywhere(gw, BK_SECRET);
	no_secret_anywhere(gw, "client-SECRET-55");
}

Test(it_tenants, another_tenants_container_does_not_exist)
{
	struct hx_gw *gw;
	struct hx_resp *r;
	const char *mine, *theirs, *version;
	json_t *data, *recs, *rec;
	size_t before, i;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(org_policy(NULL), NULL);
	r = as(gw, DATA_KEY, "POST", "/v1/containers", "{\"name\":\"data\"}");
	cr_assert_eq(r->status, 200, "%s", r->body);
	theirs = hx_str(hx_resp_json(r), "id");
	r = as(gw, INTERN_KEY, "POST", "/v1/containers", "{\"name\":\"intern\"}");
	cr_assert_eq(r->status, 200, "%s", r->body);
	mine = hx_str(hx_resp_json(r), "id");

	before = json_array_size(hx_stub_requests());
	expect_code(as(gw, INTERN_KEY, "GET", hx_fmt("/v1/containers/%s", theirs), NULL), 404,
	            "not_found");
	expect_code(as(gw, INTERN_KEY, "DELETE", hx_fmt("/v1/containers/%s", theirs), NULL), 404,
	            "not_found");
	expect_code(as(gw, INTERN_KEY, "GET", hx_fmt("/v1/containers/%s/files", theirs), NULL), 404,
	            "not_found");
	cr_expect_eq(json_array_size(hx_stub_requests()), before, "nothing went up");
	cr_expect_eq(as(gw, INTERN_KEY, "GET", hx_fmt("/v1/containers/%s", mine), NULL)->status,
	             200);
	/* The records say what the client is not told: it was another
	 * tenant's. They name the key (by its digest's start, as the policy
	 * lists it) and the policy that decided (the file's SHA-256). */
	recs = hx_audit_wait(gw, 6, 5000);
	version = hx_fmt("sha256:%s", hx_key_digest(hx_read_file(gw->policy_path, NULL)));
	for (i = 2; i < 5; i++) {
		rec = json_array_get(recs, i);
		cr_expect_str_eq(hx_str(rec, "code"), "ownership_denied", "record %zu", i);
		cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 404);
		cr_expect_str_eq(hx_str(rec, "credential"),
		                 hx_fmt("key:sha256:%.16s", hx_key_digest(INTERN_KEY)));
	}
	cr_expect_str_eq(hx_str(json_array_get(recs, 0), "credential"),
	                 hx_fmt("key:sha256:%.16s", hx_key_digest(DATA_KEY)));
	json_array_foreach(recs, i, rec)
	{
		char *text = json_dumps(rec, 0);

		cr_expect_str_eq(hx_str(rec, "policy_version"), version, "record %zu", i);
		cr_expect_null(strstr(text, INTERN_KEY), "no key in record %zu", i);
		free(text);
	}

	/* Lists show each tenant its own; the organization sees all. */
	r = as(gw, INTERN_KEY, "GET", "/v1/containers?limit=10", NULL);
	cr_assert_eq(r->status, 200, "%s", r->body);
	data = json_object_get(hx_resp_json(r), "data");
	cr_expect_eq(json_array_size(data), 1, "%s", r->body);
	cr_expect_str_eq(hx_str(json_array_get(data, 0), "id"), mine);
	cr_expect_str_eq(hx_str(hx_resp_json(r), "first_id"), mine);
	r = as(gw, DATA_KEY, "GET", "/v1/containers", NULL);
	data = json_object_get(hx_resp_json(r), "data");
	cr_expect_eq(json_array_size(data), 1, "%s", r->body);
	cr_expect_str_eq(hx_str(json_array_get(data, 0), "id"), theirs);
	r = as(gw, NULL, "GET", "/v1/containers", NULL);
	cr_expect_eq(json_array_size(json_object_get(hx_resp_json(r), "data")), 2, "%s", r->body);

	/* Once deleted, it is gone for its owner too. */
	cr_expect_eq(as(gw, DATA_KEY, "DELETE", hx_fmt("/v1/containers/%s", theirs), NULL)->status,
	             200);
	expect_code(as(gw, DATA_KEY, "GET", hx_fmt("/v1/containers/%s", theirs), NULL), 404,
	            "not_found");
}

Test(it_tenants, a_list_pages_through_the_upstream_to_fill_the_limit)
{
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *data;
	int i;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(org_policy(NULL), NULL);
	/* 150 containers of others, 5 of the data team's scattered among them. */
	for (i = 0; i < 155; i++) {
		const char *key = i % 31 == 0 ? DATA_KEY : NULL;

		r = as(gw, key, "POST", "/v1/containers", hx_fmt("{\"name\":\"c%d\"}", i));
		cr_assert_eq(r->status, 200, "%d: %s", i, r->body);
	}
	r = as(gw, DATA_KEY, "GET", "/v1/containers?limit=3&order=asc", NULL);
	cr_assert_eq(r->status, 200, "%s", r->body);
	data = json_object_get(hx_resp_json(r), "data");
	cr_expect_eq(json_array_size(data), 3, "%s", r->body);
	cr_expect(json_is_true(json_object_get(hx_resp_json(r), "has_more")), "%s", r->body);
	for (i = 0; i < 3; i++)
		cr_expect_str_eq(hx_str(json_array_get(data, (size_t)i), "name"),
		                 hx_fmt("c%d", i * 31));
	/* The next page, from where that one ended. */
	r = as(gw, DATA_KEY, "GET",
	       hx_fmt("/v1/containers?limit=3&order=asc&after=%s",
	              hx_str(hx_resp_json(r), "last_id")),
	       NULL);
	data = json_object_get(hx_resp_json(r), "data");
	cr_expect_eq(json_array_size(data), 2, "%s", r->body);
	cr_expect(json_is_false(json_object_get(hx_resp_json(r), "has_more")), "%s", r->body);
}

Test(it_tenants, limits_answer_429_with_retry_after)
{
	struct hx_gw *gw;
	struct hx_resp *r;
	const char *first;
	json_t *rec;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(org_policy(hx_fmt(",\"ops\":{\"api_keys_sha256\":[\"%s\"],"
	                                   "\"rate_limit\":{\"max_live_containers\":1}}",
	                                   hx_key_digest(OPS_KEY))),
	                 NULL);
	cr_expect_eq(as(gw, INTERN_KEY, "POST", "/v1/containers", "{\"name\":\"1\"}")->status, 200);
	cr_expect_eq(as(gw, INTERN_KEY, "POST", "/v1/containers", "{\"name\":\"2\"}")->status, 200);
	r = as(gw, INTERN_KEY, "POST", "/v1/containers", "{\"name\":\"3\"}");
	expect_code(r, 429, "rate_limit_exceeded");
	cr_expect_not_null(hx_resp_header(r, "Retry-After"));
	cr_expect_gt(atoi(hx_resp_header(r, "Retry-After")), 0);
	cr_expect_leq(atoi(hx_resp_header(r, "Retry-After")), 60);
	/* Other calls are not creates. */
	cr_expect_eq(as(gw, INTERN_KEY, "GET", "/v1/containers", NULL)->status, 200);

	r = as(gw, OPS_KEY, "POST", "/v1/containers", "{\"name\":\"only\"}");
	cr_assert_eq(r->status, 200, "%s", r->body);
	first = hx_str(hx_resp_json(r), "id");
	expect_code(as(gw, OPS_KEY, "POST", "/v1/containers", "{\"name\":\"second\"}"), 429,
	            "rate_limit_exceeded");
	cr_expect_eq(as(gw, OPS_KEY, "DELETE", hx_fmt("/v1/containers/%s", first), NULL)->status,
	             200);
	cr_expect_eq(as(gw, OPS_KEY, "POST", "/v1/containers", "{\"name\":\"again\"}")->status,
	             200);
	rec = json_array_get(hx_audit_wait(gw, 3, 5000), 2);
	cr_expect_str_eq(hx_str(rec, "code"), "rate_limit_exceeded");
	cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 429);
}

/* A create's answer, as the upstream would give it for an old container:
 * last active long ago, so the gateway asks about it again at the cap. */
static const char *
old_container(const char *id)
{
	return hx_fmt("{\"json\":{\"id\":\"%s\",\"object\":\"container\",\"name\":\"old\","
	              "\"created_at\":1,\"status\":\"running\",\"memory_limit\":\"1g\","
	              "\"expires_after\":{\"anchor\":\"last_active_at\",\"minutes\":20},"
	              "\"last_active_at\":1,\"network_policy\":{\"type\":\"disabled\"}}}",
	              id);
}

/* Live containers follow the upstream's truth. At its cap, a tenant's
 * containers past their expiry are asked about: one the upstream no
 * longer has frees its slot at once (before, it held it until a timer
 * from its creation ran out); one the upstream says is still running
 * keeps counting, whatever the timer says. */
Test(it_tenants, the_live_count_asks_the_upstream_at_the_cap)
{
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *reqs, *rec;
	char *text;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(org_policy(hx_fmt(",\"ops\":{\"api_keys_sha256\":[\"%s\"],"
	                                   "\"rate_limit\":{\"max_live_containers\":1}}",
	                                   hx_key_digest(OPS_KEY))),
	                 NULL);
	/* Gone upstream: the next create takes its slot. */
	hx_stub_next(old_container("cntr_gone"));
	cr_assert_eq(as(gw, OPS_KEY, "POST", "/v1/containers", "{\"name\":\"a\"}")->status, 200);
	r = as(gw, OPS_KEY, "POST", "/v1/containers", "{\"name\":\"b\"}");
	cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
	reqs = hx_stub_requests();
	cr_assert_eq(json_array_size(reqs), 3);
	cr_expect_str_eq(hx_str(json_array_get(reqs, 1), "method"), "GET");
	cr_expect_str_eq(hx_str(json_array_get(reqs, 1), "uri"), "/v1/containers/cntr_gone");
	rec = json_array_get(hx_audit_wait(gw, 2, 5000), 1);
	text = json_dumps(json_object_get(rec, "adjustments"), 0);
	cr_expect(text && strstr(text, "1 of them gone"), "%s", text);
	free(text);

	/* Still running upstream: it counts, and nothing more is made. */
	cr_expect_eq(as(gw, OPS_KEY, "DELETE",
	                hx_fmt("/v1/containers/%s", hx_str(hx_resp_json(r), "id")), NULL)
	                     ->status,
	             200);
	hx_stub_clear();
	hx_stub_next(old_container("cntr_alive"));
	cr_assert_eq(as(gw, OPS_KEY, "POST", "/v1/containers", "{\"name\":\"c\"}")->status, 200);
	hx_stub_next("{\"json\":{\"id\":\"cntr_alive\",\"object\":\"container\",\"name\":\"old\","
	             "\"created_at\":1,\"status\":\"running\",\"memory_limit\":\"1g\","
	             "\"expires_after\":{\"anchor\":\"last_active_at\",\"minutes\":20},"
	             "\"last_active_at\":1,\"network_policy\":{\"type\":\"disabled\"}}}");
	r = as(gw, OPS_KEY, "POST", "/v1/containers", "{\"name\":\"d\"}");
	expect_code(r, 429, "rate_limit_exceeded");
	reqs = hx_stub_requests();
	cr_expect_eq(json_array_size(reqs), 2, "the create, the question; not the refused create");
	cr_expect_str_eq(hx_str(json_array_get(reqs, 1), "uri"), "/v1/containers/cntr_alive");
	/* Asked once: its new hint is a minute off at least. */
	expect_code(as(gw, OPS_KEY, "POST", "/v1/containers", "{\"name\":\"e\"}"), 429,
	            "rate_limit_exceeded");
	cr_expect_eq(json_array_size(hx_stub_requests()), 2);
}

/* With the default store, a restart loses nothing a tenant relies on:
 * its containers are still its own (and still nobody else's), and its
 * live count still holds. The state is kept in gateway-state.db beside
 * the config (store.path). */
Test(it_tenants, the_default_store_survives_a_restart)
{
	struct stat st;
	struct hx_gw *gw;
	struct hx_resp *r;
	const char *id;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(org_policy(hx_fmt(",\"ops\":{\"api_keys_sha256\":[\"%s\"],"
	                                   "\"rate_limit\":{\"max_live_containers\":1}}",
	                                   hx_key_digest(OPS_KEY))),
	                 "{\"store\":{\"path\":\"state/gateway-state.db\"}}");
	r = as(gw, OPS_KEY, "POST", "/v1/containers", "{\"name\":\"kept\"}");
	cr_assert_eq(r->status, 200, "%s", r->body);
	id = hx_str(hx_resp_json(r), "id");
	cr_assert_not_null(id);
	cr_assert_eq(hx_proc_stop(gw->proc), 0);
	hx_gw_launch(gw);
	r = as(gw, OPS_KEY, "GET", hx_fmt("/v1/containers/%s", id), NULL);
	cr_expect_eq(r->status, 200, "the owner reaches it after a restart: %ld %s", r->status,
	             r->body);
	expect_code(as(gw, DATA_KEY, "GET", hx_fmt("/v1/containers/%s", id), NULL), 404,
	            "not_found");
	expect_code(as(gw, OPS_KEY, "POST", "/v1/containers", "{\"name\":\"second\"}"), 429,
	            "rate_limit_exceeded");
	/* Its folder was made, as systemd's StateDirectory would, and only
	 * the gateway's user may read it. */
	cr_expect_eq(hx_file_contains(hx_path("state/gateway-state.db"), "cntr_"), true,
	             "kept in state/gateway-state.db");
	cr_expect_eq(stat(hx_path("state"), &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0700, "%o", st.st_mode & 0777);
}

/* A quota refusal says it will not clear by waiting: x-should-retry:
 * false (the official SDKs then give up at once) and a short Retry-After;
 * a rate limit says nothing of the kind, and clears within its window. */
Test(it_tenants, a_quota_refusal_says_not_to_retry)
{
	struct hx_gw *gw;
	struct hx_resp *r;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(org_policy(hx_fmt(",\"ops\":{\"api_keys_sha256\":[\"%s\"],"
	                                   "\"rate_limit\":{\"max_live_containers\":1}}",
	                                   hx_key_digest(OPS_KEY))),
	                 NULL);
	cr_assert_eq(as(gw, OPS_KEY, "POST", "/v1/containers", "{\"name\":\"a\"}")->status, 200);
	r = as(gw, OPS_KEY, "POST", "/v1/containers", "{\"name\":\"b\"}");
	expect_code(r, 429, "rate_limit_exceeded");
	cr_expect_str_eq(hx_resp_header(r, "x-should-retry"), "false");
	cr_expect_str_eq(hx_resp_header(r, "Retry-After"), "60");
	/* interns: two creates a minute. */
	cr_assert_eq(as(gw, INTERN_KEY, "POST", "/v1/containers", "{\"name\":\"1\"}")->status, 200);
	cr_assert_eq(as(gw, INTERN_KEY, "POST", "/v1/containers", "{\"name\":\"2\"}")->status, 200);
	r = as(gw, INTERN_KEY, "POST", "/v1/containers", "{\"name\":\"3\"}");
	expect_code(r, 429, "rate_limit_exceeded");
	cr_expect_null(hx_resp_header(r, "x-should-retry"));
	cr_expect_leq(atoi(hx_resp_header(r, "Retry-After")), 60);
}

Test(it_tenants, requests_per_second_is_enforced)
{
	struct hx_gw *gw;
	int i, refused = 0;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(org_policy(hx_fmt(",\"ops\":{\"api_keys_sha256\":[\"%s\"],"
	                                   "\"rate_limit\":{\"requests_per_second\":3}}",
	                                   hx_key_digest(OPS_KEY))),
	                 NULL);
	for (i = 0; i < 10; i++)
		refused += as(gw, OPS_KEY, "GET", "/v1/containers", NULL)->status == 429;
	/* Ten back to back fit in one or two one-second windows: at most 6 pass. */
	cr_expect_geq(refused, 4, "%d refused", refused);
}

Test(it_tenants, shadow_mode_forwards_and_audits_what_it_would_deny)
{
	struct hx_gw *gw =
	        hx_gw_start("{\"memory_limit\":{\"max\":\"1g\",\"mode\":\"shadow\"},"
	                    "\"routes\":{\"mode\":\"shadow\",\"containers.delete\":\"deny\"}}",
	                    NULL);
	struct hx_resp *r;
	json_t *recs;
	size_t len;

	const char *body = "{\"name\":\"s\",\"memory_limit\":\"16g\"}";

	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), NULL, body, strlen(body));
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_str_eq(
	        hx_str(hx_json(hx_record_body(json_array_get(hx_stub_requests(), 0), &len)),
	               "memory_limit"),
	        "16g", "forwarded as asked");
	r = hx_http("DELETE",
	            hx_gw_url(gw, hx_fmt("/v1/containers/%s", hx_str(hx_resp_json(r), "id"))), NULL,
	            NULL, 0);
	cr_expect_eq(r->status, 200, "%s", r->body);
	recs = hx_audit_wait(gw, 2, 5000);
	cr_expect_str_eq(hx_str(json_array_get(recs, 0), "decision"), "shadow_deny");
	cr_expect_str_eq(hx_str(json_array_get(recs, 0), "code"), "memory_limit_exceeded");
	cr_expect_str_eq(hx_str(json_array_get(recs, 1), "decision"), "shadow_deny");
	cr_expect_str_eq(hx_str(json_array_get(recs, 1), "code"), "route_denied");
}

/* Runs `gateway eval` on a body; returns its stdout parsed. status is the
 * exit status expected (0 allow, 1 deny or invalid, 3 shadow_deny). */
static json_t *
eval(const struct hx_gw *gw, const char *tenant, const char *body, int status)
{
	char bin[4096];
	const char *argv[4];
	struct hx_proc *p;

	cr_assert_not_null(realpath(hx_gw_bin(), bin));
	hx_write_file(hx_path("body.json"), body);
	argv[0] = "/bin/sh";
	argv[1] = "-c";
	argv[2] = hx_fmt("%s eval --config %s %s%s < %s", bin, gw->config_path,
	                 tenant ? "--tenant " : "", tenant ? tenant : "", hx_path("body.json"));
	argv[3] = NULL;
	static int n;

	p = hx_proc_start(hx_fmt("eval%d", n++), argv);
	cr_assert_eq(hx_proc_wait(p, 10000), status, "%s", hx_read_file(p->err_path, NULL));
	return hx_json(hx_read_file(p->out_path, NULL));
}

Test(it_tenants, eval_decides_without_the_upstream)
{
	struct hx_gw *gw;
	json_t *out, *np;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_prepare(org_policy(NULL), NULL);
	out = eval(gw, "interns", "{\"name\":\"e\",\"memory_limit\":\"4g\"}", 1);
	cr_expect_str_eq(hx_str(out, "decision"), "deny");
	cr_expect_str_eq(hx_str(json_array_get(json_object_get(out, "rules"), 0), "code"),
	                 "memory_limit_exceeded");
	out = eval(gw, "data-team",
	           "{\"name\":\"e\",\"network_policy\":{\"type\":\"allowlist\","
	           "\"allowed_domains\":[\"API.buildkite.com\"]}}",
	           0);
	cr_expect_str_eq(hx_str(out, "decision"), "allow");
	np = json_object_get(json_object_get(out, "forwarded"), "network_policy");
	cr_expect_str_eq(
	        json_string_value(json_array_get(json_object_get(np, "allowed_domains"), 0)),
	        "api.buildkite.com");
	cr_expect_str_eq(hx_str(json_array_get(json_object_get(np, "domain_secrets"), 0), "value"),
	                 "[REDACTED]");
	out = eval(gw, NULL, "{\"name\":1}", 1);
	cr_expect_str_eq(hx_str(out, "decision"), "invalid");
	cr_expect(!hx_file_contains(hx_path("eval1.stdout"), BK_SECRET));
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
}

Test(it_tenants, check_refuses_a_tenant_wider_than_the_organization)
{
	struct hx_gw *gw;
	const char *argv[4];
	struct hx_proc *p;
	const char *err;

	gw = hx_gw_prepare(
	        "{\"memory_limit\":{\"max\":\"4g\"},\"network_policy\":{"
	        "\"allowed_domains\":[\"pypi.org\"]},\"tenants\":{\"greedy\":{"
	        "\"api_keys_sha256\":[\"not-a-digest\"],\"policy\":{\"memory_limit\":{"
	        "\"max\":\"64g\"},\"network_policy\":{\"allowed_domains\":[\"evil.com\"]},"
	        "\"on_upstream_violation\":\"log\"},\"secrets\":[{\"domain\":\"x.com\","
	        "\"name\":\"T\",\"value_env\":\"GW_TEST_UNSET_VAR\"}]}}}",
	        NULL);
	argv[0] = hx_gw_bin();
	argv[1] = "--config";
	argv[2] = gw->config_path;
	argv[3] = "--check";
	{
		const char *full[] = {argv[0], argv[1], argv[2], argv[3], NULL};

		unsetenv("GW_TEST_UNSET_VAR");
		p = hx_proc_start("check", full);
	}
	cr_expect_eq(hx_proc_wait(p, 10000), 1);
	err = hx_read_file(p->err_path, NULL);
	cr_expect_not_null(strstr(err, "tenants.greedy.policy.memory_limit.max"), "%s", err);
	cr_expect_not_null(strstr(err, "tenants.greedy.policy.network_policy.allowed_domains"),
	                   "%s", err);
	cr_expect_not_null(strstr(err, "tenants.greedy.policy.on_upstream_violation"), "%s", err);
	cr_expect_not_null(strstr(err, "tenants.greedy.api_keys_sha256[0]"), "%s", err);
	cr_expect_not_null(strstr(err, "GW_TEST_UNSET_VAR is not set"), "%s", err);
}

static const char *
create_body(const char *memory, int minutes)
{
	return hx_fmt("{\"name\":\"b\",\"memory_limit\":\"%s\",\"expires_after\":{\"anchor\":"
	              "\"last_active_at\",\"minutes\":%d}}",
	              memory, minutes);
}

/* The organization's policy with ops held to one live container and a
 * budget of gb_minutes a day. */
static const char *
capped_ops(int gb_minutes)
{
	return org_policy(hx_fmt(",\"ops\":{\"api_keys_sha256\":[\"%s\"],"
	                         "\"rate_limit\":{\"max_live_containers\":1},"
	                         "\"budget\":{\"gb_minutes_per_day\":%d}}",
	                         hx_key_digest(OPS_KEY), gb_minutes));
}

/* A budget in GB-minutes: reserved before forwarding, refused at the line
 * with what is left and when it resets, given back when the upstream makes
 * nothing, kept across a restart; every create's record says what it cost. */
Test(it_tenants, a_budget_is_reserved_before_forwarding_and_refused_at_its_line)
{
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *recs, *err;
	size_t before;
	double usd;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(org_policy(hx_fmt(",\"ops\":{\"api_keys_sha256\":[\"%s\"],"
	                                   "\"budget\":{\"gb_minutes_per_day\":100,"
	                                   "\"gb_minutes_per_month\":1000}}",
	                                   hx_key_digest(OPS_KEY))),
	                 NULL);
	/* 4g for 20 minutes is 80; 1g for 20 more is 100, the line itself. */
	r = as(gw, OPS_KEY, "POST", "/v1/containers", create_body("4g", 20));
	cr_assert_eq(r->status, 200, "%s", r->body);
	r = as(gw, OPS_KEY, "POST", "/v1/containers", create_body("1g", 20));
	cr_assert_eq(r->status, 200, "%s", r->body);
	before = json_array_size(hx_stub_requests());
	r = as(gw, OPS_KEY, "POST", "/v1/containers", create_body("1g", 1));
	expect_code(r, 429, "budget_exceeded");
	err = json_object_get(hx_resp_json(r), "error");
	cr_expect_not_null(strstr(hx_str(err, "message"), "budget of 100 GB-minutes per day has 0 "
	                                                  "left (100 used)"),
	                   "%s", r->body);
	cr_expect_not_null(strstr(hx_str(err, "message"), "it resets at "), "%s", r->body);
	cr_expect_str_eq(hx_resp_header(r, "x-should-retry"), "false");
	cr_expect_gt(atol(hx_resp_header(r, "retry-after")), 0);
	cr_expect_leq(atol(hx_resp_header(r, "retry-after")), 86400);
	cr_expect_eq(json_array_size(hx_stub_requests()), before, "nothing went up");

	/* Each record names the cost: GB-minutes and the estimate, the 4g
	 * session priced at $0.12 for its 20 minutes. */
	recs = hx_audit_wait(gw, 3, 5000);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(recs, 0), "gb_minutes")),
	             80);
	usd = json_number_value(json_object_get(json_array_get(recs, 0), "cost_usd"));
	cr_expect(usd > 0.1199 && usd < 0.1201, "cost_usd %f", usd);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(recs, 2), "gb_minutes")), 1);
	cr_expect_str_eq(hx_str(json_array_get(recs, 2), "code"), "budget_exceeded");

	/* Spent stays spent across a restart (the default store keeps it). */
	cr_assert_eq(hx_proc_stop(gw->proc), 0);
	hx_gw_launch(gw);
	expect_code(as(gw, OPS_KEY, "POST", "/v1/containers", create_body("1g", 1)), 429,
	            "budget_exceeded");
	/* Other tenants have no budget and are not held by this one. */
	cr_expect_eq(as(gw, DATA_KEY, "POST", "/v1/containers", create_body("4g", 20))->status,
	             200);
}

/* What the upstream refused to make is given back. */
Test(it_tenants, a_budget_gets_back_what_the_upstream_did_not_make)
{
	struct hx_gw *gw;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(org_policy(hx_fmt(",\"ops\":{\"api_keys_sha256\":[\"%s\"],"
	                                   "\"budget\":{\"gb_minutes_per_day\":50}}",
	                                   hx_key_digest(OPS_KEY))),
	                 NULL);
	hx_stub_next("{\"status\":500,\"json\":{\"error\":{\"message\":\"boom\",\"type\":"
	             "\"server_error\",\"param\":null,\"code\":null}}}");
	cr_expect_eq(as(gw, OPS_KEY, "POST", "/v1/containers", create_body("1g", 40))->status, 500);
	hx_sleep_ms(100); /* the give-back is on its way, not awaited */
	cr_expect_eq(as(gw, OPS_KEY, "POST", "/v1/containers", create_body("1g", 40))->status, 200,
	             "the failed create's 40 GB-minutes were not given back");
	expect_code(as(gw, OPS_KEY, "POST", "/v1/containers", create_body("1g", 20)), 429,
	            "budget_exceeded");
}

/* A create sent upstream whose answer never came (a timeout) may have
 * made its container: its slot and its cost stay, so timeouts cannot take
 * a tenant past its cap or its budget. */
Test(it_tenants, a_create_whose_answer_never_came_keeps_its_slot_and_cost)
{
	struct hx_gw *gw;
	struct hx_resp *r;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(capped_ops(20), "{\"upstream\":{\"timeout_ms\":300}}");
	hx_stub_next("{\"delay_ms\":800}");
	r = as(gw, OPS_KEY, "POST", "/v1/containers", create_body("1g", 20));
	cr_expect_eq(r->status, 504, "%ld %s", r->status, r->body);
	hx_sleep_ms(600); /* what would be given back has had its time */
	r = as(gw, OPS_KEY, "POST", "/v1/containers", create_body("1g", 20));
	cr_expect_eq(r->status, 429, "a timed-out create gave its slot or cost back: %ld %s",
	             r->status, r->body);
	cr_expect_eq(json_array_size(hx_stub_requests()), 1);
}

/* Where nothing listens, nothing is sent and nothing can have been made:
 * each create is a 502, never a 429 for what the one before held. */
Test(it_tenants, a_create_never_sent_gives_its_slot_and_cost_back)
{
	struct hx_gw *gw;
	struct hx_resp *r;
	char *text;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_prepare(capped_ops(20), NULL);
	json_object_set_new(json_object_get(gw->config, "upstream"), "base_url",
	                    json_string(hx_fmt("http://127.0.0.1:%d/v1", hx_free_port())));
	text = json_dumps(gw->config, 0);
	hx_write_file(gw->config_path, text);
	free(text);
	hx_gw_launch(gw);
	r = as(gw, OPS_KEY, "POST", "/v1/containers", create_body("1g", 20));
	cr_expect_eq(r->status, 502, "%ld %s", r->status, r->body);
	hx_sleep_ms(100); /* the give-back is on its way, not awaited */
	r = as(gw, OPS_KEY, "POST", "/v1/containers", create_body("1g", 20));
	cr_expect_eq(r->status, 502, "an unsent create kept its slot or cost: %ld %s", r->status,
	             r->body);
}

/* A create the budget refuses made nothing, so it holds no live slot: the
 * tenant's next create that fits its budget is not refused as if the
 * refused one were a live container. */
Test(it_tenants, a_create_the_budget_refuses_holds_no_live_slot)
{
	struct hx_gw *gw;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(capped_ops(50), NULL);
	expect_code(as(gw, OPS_KEY, "POST", "/v1/containers", create_body("4g", 20)), 429,
	            "budget_exceeded");
	hx_sleep_ms(100); /* the give-back is on its way, not awaited */
	cr_expect_eq(as(gw, OPS_KEY, "POST", "/v1/containers", create_body("1g", 20))->status, 200,
	             "the refused create kept the tenant's one live slot");
}

/* An expiry the policy only watches (shadow) may be any 64-bit number of
 * minutes: its cost in GB-minutes must not wrap around to a negative
 * number that skips the budget (nor overflow, which is undefined). */
Test(it_tenants, an_enormous_expiry_is_charged_not_wrapped_around)
{
	struct hx_gw *gw;
	struct hx_resp *r;
	size_t before;

	setenv("GW_TEST_BK_TOKEN", BK_SECRET, 1);
	gw = hx_gw_start(
	        hx_fmt("{\"memory_limit\":{\"max\":\"4g\"},\"expires_after\":{\"mode\":\"shadow\"},"
	               "\"tenants\":{\"ops\":{\"api_keys_sha256\":[\"%s\"],"
	               "\"budget\":{\"gb_minutes_per_day\":100}}}}",
	               hx_key_digest(OPS_KEY)),
	        NULL);
	before = json_array_size(hx_stub_requests());
	/* 4 times 2^61 + 1 minutes is past 2^63. */
	r = as(gw, OPS_KEY, "POST", "/v1/containers",
	       "{\"name\":\"b\",\"memory_limit\":\"4g\",\"expires_after\":{\"anchor\":"
	       "\"last_active_at\",\"minutes\":2305843009213693953}}");
	expect_code(r, 429, "budget_exceeded");
	cr_expect_eq(json_array_size(hx_stub_requests()), before, "it went up");
}
