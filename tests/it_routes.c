/*
 * it_routes: the Containers API beyond create, through the real gateway and
 * the stand-in upstream: each route allowed, denied by the policy's routes,
 * with a bad path parameter or query, with an upstream error, and with an
 * answer that does not match the spec.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "harness.h"

TestSuite(it_routes, .init = hx_init, .fini = hx_fini, .timeout = 120);

static const char *const auth[] = {"Authorization: Bearer sk-routes-KEY-4411", NULL};

static struct hx_resp *
call(const struct hx_gw *gw, const char *method, const char *path)
{
	return hx_http(method, hx_gw_url(gw, path), auth, NULL, 0);
}

/* A container made through the gateway; its id. */
static const char *
make_container(const struct hx_gw *gw)
{
	struct hx_resp *r =
	        hx_http("POST", hx_gw_url(gw, "/v1/containers"), auth, "{\"name\":\"routes\"}", 17);

	cr_assert_eq(r->status, 200, "%s", r->body);
	return hx_str(hx_resp_json(r), "id");
}

/* A file uploaded through the gateway, multipart; its id. */
static const char *
upload(const struct hx_gw *gw, const char *cid, const char *data, size_t len)
{
	struct hx_part part = {"file", "notes.txt", "text/plain", data, len};
	struct hx_req rq = {.method = "POST",
	                    .url = hx_gw_url(gw, hx_fmt("/v1/containers/%s/files", cid)),
	                    .headers = auth,
	                    .parts = &part,
	                    .nparts = 1};
	struct hx_resp *r = hx_request(&rq);

	cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
	cr_assert_str_eq(hx_str(hx_resp_json(r), "container_id"), cid);
	return hx_str(hx_resp_json(r), "id");
}

static void
expect_code(struct hx_resp *r, long status, const char *code, const char *param)
{
	json_t *err = json_object_get(hx_resp_json(r), "error");

	cr_assert_eq(r->status, status, "want %ld: %ld %s", status, r->status, r->body);
	cr_expect_str_eq(hx_str(err, "code"), code, "%s", r->body);
	if (param)
		cr_expect_str_eq(hx_str(err, "param"), param, "%s", r->body);
}

Test(it_routes, every_operation_goes_through)
{
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	const char *cid = make_container(gw), *fid, *fid2;
	struct hx_resp *r;
	json_t *recs, *rec, *up;
	size_t i;
	static const char *const ops[] = {"CreateContainer",       "RetrieveContainer",
	                                  "ListContainers",        "CreateContainerFile",
	                                  "CreateContainerFile",   "ListContainerFiles",
	                                  "RetrieveContainerFile", "RetrieveContainerFileContent",
	                                  "DeleteContainerFile",   "DeleteContainer"};

	r = call(gw, "GET", hx_fmt("/v1/containers/%s", cid));
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_str_eq(hx_str(hx_resp_json(r), "id"), cid);

	r = call(gw, "GET", "/v1/containers?limit=5&order=asc");
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_str_eq(hx_str(hx_resp_json(r), "object"), "list");
	up = json_array_get(hx_stub_requests(), 2);
	cr_expect_str_eq(hx_str(up, "uri"), "/v1/containers?limit=5&order=asc");

	fid = upload(gw, cid, "hello, container", 16);
	r = hx_http("POST", hx_gw_url(gw, hx_fmt("/v1/containers/%s/files", cid)),
	            (const char *[]){"Content-Type: application/json", NULL},
	            "{\"file_id\":\"file-abc123\"}", 25);
	cr_assert_eq(r->status, 200, "%s", r->body);
	fid2 = hx_str(hx_resp_json(r), "id");
	cr_assert_not_null(fid2, "%s", r->body);

	r = call(gw, "GET", hx_fmt("/v1/containers/%s/files?limit=10", cid));
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_eq(json_array_size(json_object_get(hx_resp_json(r), "data")), 2);

	r = call(gw, "GET", hx_fmt("/v1/containers/%s/files/%s", cid, fid));
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_str_eq(hx_str(hx_resp_json(r), "id"), fid);

	r = call(gw, "GET", hx_fmt("/v1/containers/%s/files/%s/content", cid, fid));
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_eq(r->len, 16);
	cr_expect_eq(memcmp(r->body, "hello, container", 16), 0);

	r = call(gw, "DELETE", hx_fmt("/v1/containers/%s/files/%s", cid, fid));
	cr_assert_eq(r->status, 200, "%s", r->body);
	r = call(gw, "DELETE", hx_fmt("/v1/containers/%s", cid));
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect(json_is_true(json_object_get(hx_resp_json(r), "deleted")));

	recs = hx_audit_wait(gw, 10, 5000);
	cr_assert_eq(json_array_size(recs), 10);
	json_array_foreach(recs, i, rec)
	{
		cr_expect_str_eq(hx_str(rec, "operation"), ops[i]);
		cr_expect_str_eq(hx_str(rec, "decision"), "allow", "%s", ops[i]);
		cr_expect(json_is_null(json_object_get(rec, "violations")), "%s", ops[i]);
	}
	cr_expect_str_eq(hx_str(json_array_get(recs, 1), "container_id"), cid);
	cr_expect_str_eq(hx_str(json_array_get(recs, 6), "file_id"), fid);
	/* An upload's record names the file it made, as the answer said. */
	cr_expect_str_eq(hx_str(json_array_get(recs, 3), "file_id"), fid);
	cr_expect_str_eq(hx_str(json_array_get(recs, 4), "file_id"), fid2);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(recs, 7), "bytes_out")), 16);
	/* The upload went up as it came: the stub saw the multipart body. */
	up = json_array_get(hx_stub_requests(), 3);
	cr_expect_not_null(strstr(hx_str(json_object_get(up, "headers"), "content-type"),
	                          "multipart/form-data; boundary="));
	cr_expect_str_eq(hx_str(json_object_get(up, "headers"), "authorization"),
	                 "Bearer sk-routes-KEY-4411");
}

Test(it_routes, the_policy_can_deny_any_route)
{
	struct hx_gw *gw = hx_gw_start(
	        "{\"routes\":{\"files.create\":\"deny\",\"DeleteContainer\":\"deny\"}}", NULL);
	const char *cid = make_container(gw);
	struct hx_resp *r;

	r = hx_http("POST", hx_gw_url(gw, hx_fmt("/v1/containers/%s/files", cid)),
	            (const char *[]){"Content-Type: application/json", NULL}, "{\"file_id\":\"f\"}",
	            15);
	expect_code(r, 403, "route_denied", NULL);
	r = call(gw, "DELETE", hx_fmt("/v1/containers/%s", cid));
	expect_code(r, 403, "route_denied", NULL);
	r = call(gw, "GET", hx_fmt("/v1/containers/%s", cid));
	cr_expect_eq(r->status, 200);
	cr_expect_eq(json_array_size(hx_stub_requests()), 2, "denied calls never went up");
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 4, 5000)), 4);
}

Test(it_routes, bad_path_parameters_and_queries_are_refused)
{
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	struct hx_resp *r;
	char longid[200];

	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	r = call(gw, "GET", hx_fmt("/v1/containers/%s", longid));
	expect_code(r, 400, "invalid_path_parameter", "container_id");
	r = call(gw, "GET", "/v1/containers/cntr_1/files/a.b");
	expect_code(r, 400, "invalid_path_parameter", "file_id");
	r = call(gw, "GET", "/v1/containers/cntr_1%2F..%2Fx");
	expect_code(r, 400, "invalid_path", NULL);
	r = call(gw, "GET", "/v1/containers?limit=0");
	expect_code(r, 400, "invalid_value", "limit");
	r = call(gw, "GET", "/v1/containers?limit=101");
	expect_code(r, 400, "invalid_value", "limit");
	r = call(gw, "GET", "/v1/containers?order=up");
	expect_code(r, 400, "invalid_value", "order");
	r = call(gw, "GET", "/v1/containers?limit=1&limit=2");
	expect_code(r, 400, "duplicate_parameter", "limit");
	r = call(gw, "GET", "/v1/containers?foo=1");
	expect_code(r, 400, "unknown_parameter", "foo");
	r = call(gw, "GET", "/v1/containers/cntr_1/files?name=x");
	expect_code(r, 400, "unknown_parameter", "name");
	r = call(gw, "GET", "/v1/containers?after=a%2Fb");
	expect_code(r, 400, "invalid_value", "after");
	r = call(gw, "DELETE", "/v1/containers/cntr_1?force=1");
	expect_code(r, 400, "unknown_parameter", "force");
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 11, 5000)), 11);

	/* A name with spaces and non-ASCII goes up re-encoded, as checked. */
	r = call(gw, "GET", "/v1/containers?name=my+box%20%C3%A9");
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_str_eq(hx_str(json_array_get(hx_stub_requests(), 0), "uri"),
	                 "/v1/containers?name=my%20box%20%C3%A9");
}

Test(it_routes, upstream_errors_are_relayed)
{
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	struct hx_resp *r;
	json_t *rec;

	r = call(gw, "GET", "/v1/containers/cntr_missing");
	cr_expect_eq(r->status, 404, "%s", r->body);
	cr_expect_not_null(json_object_get(hx_resp_json(r), "error"));
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_eq(json_integer_value(json_object_get(rec, "upstream_status")), 404);
	cr_expect_str_eq(hx_str(rec, "decision"), "allow");
}

static const char *const bad_container =
        "{\"json\":{\"id\":\"cntr_other\",\"object\":\"container\",\"name\":\"x\","
        "\"created_at\":1,\"status\":\"running\"}}";

Test(it_routes, a_mismatched_answer_is_blocked_or_logged)
{
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	struct hx_resp *r;
	json_t *rec;

	/* Asked for cntr_1, got cntr_other: blocked (the default mode). */
	hx_stub_next(bad_container);
	r = call(gw, "GET", "/v1/containers/cntr_1");
	expect_code(r, 502, "upstream_violation", NULL);
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_str_eq(hx_str(json_array_get(json_object_get(rec, "violations"), 0), "field"),
	                 "id");

	/* Not the schema: a list without has_more. */
	hx_stub_next("{\"json\":{\"object\":\"list\",\"data\":[]}}");
	r = call(gw, "GET", "/v1/containers");
	expect_code(r, 502, "upstream_violation", NULL);
	hx_stub_next("{\"body\":\"not json\"}");
	r = call(gw, "GET", "/v1/containers/cntr_1/files/cfile_1");
	expect_code(r, 502, "upstream_violation", NULL);
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 3, 5000)), 3);
}

Test(it_routes, log_mode_relays_a_mismatched_answer)
{
	struct hx_gw *gw = hx_gw_start("{\"on_upstream_violation\":\"log\"}", NULL);
	struct hx_resp *r;
	json_t *rec;

	hx_stub_next(bad_container);
	r = call(gw, "GET", "/v1/containers/cntr_1");
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_str_eq(hx_str(hx_resp_json(r), "id"), "cntr_other");
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_eq(json_array_size(json_object_get(rec, "violations")), 1);
	cr_expect_str_eq(hx_str(rec, "decision"), "allow");
}

Test(it_routes, delete_mode_removes_a_container_that_breaks_the_request)
{
	struct hx_gw *gw = hx_gw_start("{\"memory_limit\":{\"max\":\"4g\"},"
	                               "\"on_upstream_violation\":\"delete\"}",
	                               NULL);
	struct hx_resp *r;
	json_t *rec, *reqs;

	/* The container the stub "creates", then its answer to the delete. */
	hx_stub_next("[{\"json\":{\"id\":\"cntr_big\",\"object\":\"container\",\"name\":\"v\","
	             "\"created_at\":1,\"status\":\"running\",\"memory_limit\":\"64g\"}},"
	             "{\"json\":{\"id\":\"cntr_big\",\"object\":\"container.deleted\","
	             "\"deleted\":true}}]");
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), auth, "{\"name\":\"v\"}", 12);
	expect_code(r, 502, "upstream_violation", NULL);
	cr_expect_not_null(strstr(r->body, "deleted"), "%s", r->body);
	reqs = hx_stub_requests();
	cr_assert_eq(json_array_size(reqs), 2);
	cr_expect_str_eq(hx_str(json_array_get(reqs, 1), "method"), "DELETE");
	cr_expect_str_eq(hx_str(json_array_get(reqs, 1), "uri"), "/v1/containers/cntr_big");
	cr_expect_str_eq(
	        hx_str(json_object_get(json_array_get(reqs, 1), "headers"), "authorization"),
	        "Bearer sk-routes-KEY-4411");
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_eq(json_array_size(hx_audit_records(gw)), 1, "one record for both calls");
	cr_expect_str_eq(hx_str(json_object_get(rec, "remediation"), "outcome"), "deleted");
	cr_expect_str_eq(hx_str(json_array_get(json_object_get(rec, "violations"), 0), "field"),
	                 "memory_limit");
}

Test(it_routes, a_get_is_retried_once_when_the_connection_fails)
{
	int closed = hx_free_port();
	struct hx_gw *gw = hx_gw_start(
	        NULL, hx_fmt("{\"upstream\":{\"base_url\":\"http://127.0.0.1:%d/v1\"}}", closed));
	struct hx_resp *r = call(gw, "GET", "/v1/containers");

	expect_code(r, 502, "upstream_unreachable", NULL);
	cr_expect(hx_file_contains(gw->err_path, "retrying once"));
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), auth, "{\"name\":\"x\"}", 12);
	expect_code(r, 502, "upstream_unreachable", NULL);
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 2, 5000)), 2);
	cr_expect_eq(hx_proc_stop(gw->proc), 0);
	/* One retry for the GET, none for the POST. */
	{
		const char *log = hx_read_file(gw->err_path, NULL);
		const char *first = strstr(log, "retrying once");

		cr_expect_null(first ? strstr(first + 1, "retrying once") : NULL);
	}
}

Test(it_routes, upload_checks_and_limits)
{
	struct hx_gw *gw = hx_gw_start("{\"files\":{\"max_upload_bytes\":1000}}", NULL);
	const char *cid = make_container(gw);
	char big[2000];
	struct hx_part file = {"file", "big.bin", NULL, big, sizeof(big)};
	struct hx_part other = {"purpose", NULL, NULL, "x", 1};
	struct hx_req rq = {.method = "POST",
	                    .url = hx_gw_url(gw, hx_fmt("/v1/containers/%s/files", cid)),
	                    .headers = auth,
	                    .parts = &file,
	                    .nparts = 1};
	struct hx_resp *r;

	memset(big, 'z', sizeof(big));
	r = hx_request(&rq);
	expect_code(r, 413, "request_too_large", NULL);
	rq.parts = &other;
	r = hx_request(&rq);
	expect_code(r, 400, "unknown_parameter", "purpose");
	r = hx_http("POST", rq.url, (const char *[]){"Content-Type: text/plain", NULL}, "x", 1);
	expect_code(r, 415, "unsupported_media_type", NULL);
	r = hx_http("POST", rq.url, (const char *[]){"Content-Type: application/json", NULL}, "{}",
	            2);
	expect_code(r, 400, "missing_required_parameter", "file_id");
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 5, 5000)), 5);
}

/* Every operation of the API goes through, when the policy's routes allow
 * it: forwarded as it came, its answer relayed, audited under its
 * operationId. Without routes.default the built-in policy allows only the
 * Containers operations. A path the API does not have is 404, and the
 * path checks hold for every operation. */
Test(it_routes, every_operation_of_the_api_is_served_under_the_routes_policy)
{
	struct hx_gw *gw = hx_gw_start("{\"routes\":{\"default\":\"allow\"}}", NULL);
	struct hx_resp *r;
	json_t *up, *rec;

	r = call(gw, "GET", "/v1/models?limit=2");
	cr_expect_eq(r->status, 404, "the stub's own answer: %s", r->body);
	up = json_array_get(hx_stub_requests(), 0);
	cr_assert_not_null(up, "not forwarded");
	cr_expect_str_eq(hx_str(up, "uri"), "/v1/models?limit=2");
	cr_expect_str_eq(hx_str(json_object_get(up, "headers"), "authorization"),
	                 "Bearer sk-routes-KEY-4411");
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_str_eq(hx_str(rec, "operation"), "listModels");
	cr_expect_eq(json_integer_value(json_object_get(rec, "upstream_status")), 404);
	expect_code(call(gw, "GET", "/v1/no-such-thing"), 404, "not_found", NULL);
	expect_code(call(gw, "PUT", "/v1/models"), 405, "method_not_allowed", NULL);
	{
		/* Sent raw: curl would resolve the dot segment itself. */
		const char *req = "GET /v1/models/../containers HTTP/1.1\r\nHost: x\r\n"
		                  "Connection: close\r\n\r\n";
		size_t n;
		const char *out = hx_raw(gw->port, req, strlen(req), 5000, 0, &n);

		cr_assert_not_null(out);
		cr_expect_eq(strncmp(out, "HTTP/1.1 400", 12), 0, "%s", out);
	}
	cr_expect_eq(json_array_size(hx_stub_requests()), 1);
	hx_gw_stop(gw);

	gw = hx_gw_start(NULL, NULL);
	expect_code(call(gw, "GET", "/v1/models"), 403, "route_denied", NULL);
	cr_expect_eq(call(gw, "GET", "/v1/containers")->status, 200);
}

/* routes.passthrough_unknown is retired: refused at start, pointing to
 * the policy's routes. */
Test(it_routes, passthrough_unknown_is_refused_with_a_pointer_to_routes_default)
{
	struct hx_gw *gw = hx_gw_prepare(NULL, "{\"routes\":{\"passthrough_unknown\":true}}");
	const char *argv[] = {hx_gw_bin(), "--config", gw->config_path, "--check", NULL};
	struct hx_proc *p = hx_proc_start("check", argv);

	cr_expect_eq(hx_proc_wait(p, 10000), 1);
	cr_expect(hx_file_contains(p->err_path, "routes.passthrough_unknown"));
	cr_expect(hx_file_contains(p->err_path, "routes.default"));
}

/* No operation bypasses authentication: in gateway_keys mode a request to
 * any operation without a tenant's key is 401, and nothing is forwarded
 * with the organization's key. */
Test(it_routes, every_operation_needs_a_tenants_key_in_gateway_keys_mode)
{
	struct hx_gw *gw;
	struct hx_resp *r;

	setenv("GW_TEST_ORG_KEY", "sk-org-KEY-9921", 1);
	gw = hx_gw_start(hx_fmt("{\"routes\":{\"default\":\"allow\"},"
	                        "\"tenants\":{\"t\":{\"api_keys_sha256\":[\"%s\"]}}}",
	                        hx_key_digest("sk-tenant-KEY-1")),
	                 "{\"auth\":{\"mode\":\"gateway_keys\"},"
	                 "\"upstream\":{\"api_key_env\":\"GW_TEST_ORG_KEY\"}}");
	r = hx_http("GET", hx_gw_url(gw, "/v1/models"), NULL, NULL, 0);
	cr_expect_eq(r->status, 401, "%ld %s", r->status, r->body);
	r = hx_http("GET", hx_gw_url(gw, "/v1/models"),
	            (const char *[]){"Authorization: Bearer sk-not-a-tenant", NULL}, NULL, 0);
	cr_expect_eq(r->status, 401, "%ld %s", r->status, r->body);
	cr_expect_eq(json_array_size(hx_stub_requests()), 0, "nothing forwarded");
	r = hx_http("GET", hx_gw_url(gw, "/v1/models"),
	            (const char *[]){"Authorization: Bearer sk-tenant-KEY-1", NULL}, NULL, 0);
	cr_expect_eq(r->status, 404, "the stub's own answer: %ld %s", r->status, r->body);
	cr_assert_eq(json_array_size(hx_stub_requests()), 1);
	cr_expect_str_eq(hx_str(json_object_get(json_array_get(hx_stub_requests(), 0), "headers"),
	                        "authorization"),
	                 "Bearer sk-org-KEY-9921");
	cr_expect_str_eq(hx_str(json_array_get(hx_audit_wait(gw, 3, 5000), 2), "tenant"), "t");
}

/* Every operation, one by one: denied by name, and relaying an upstream
 * error. */
static const struct {
	const char *name, *method, *path;
} all_routes[] = {
        {"containers.create", "POST", "/v1/containers"},
        {"containers.list", "GET", "/v1/containers"},
        {"containers.retrieve", "GET", "/v1/containers/cntr_1"},
        {"containers.delete", "DELETE", "/v1/containers/cntr_1"},
        {"files.create", "POST", "/v1/containers/cntr_1/files"},
        {"files.list", "GET", "/v1/containers/cntr_1/files"},
        {"files.retrieve", "GET", "/v1/containers/cntr_1/files/cfile_1"},
        {"files.delete", "DELETE", "/v1/containers/cntr_1/files/cfile_1"},
        {"files.content", "GET", "/v1/containers/cntr_1/files/cfile_1/content"},
};

static struct hx_resp *
call_route(const struct hx_gw *gw, size_t i)
{
	const char *body = strcmp(all_routes[i].name, "containers.create") == 0 ? "{\"name\":\"x\"}"
	                   : strcmp(all_routes[i].name, "files.create") == 0 ? "{\"file_id\":\"f\"}"
	                                                                     : NULL;

	return hx_http(all_routes[i].method, hx_gw_url(gw, all_routes[i].path),
	               (const char *[]){"Content-Type: application/json", NULL}, body,
	               body ? strlen(body) : 0);
}

Test(it_routes, each_route_can_be_denied_by_name)
{
	char policy[1024] = "{\"routes\":{";
	size_t i, n = sizeof(all_routes) / sizeof(all_routes[0]);
	struct hx_gw *gw;

	for (i = 0; i < n; i++)
		snprintf(policy + strlen(policy), sizeof(policy) - strlen(policy),
		         "%s\"%s\":\"deny\"", i ? "," : "", all_routes[i].name);
	strcat(policy, "}}");
	gw = hx_gw_start(policy, NULL);
	for (i = 0; i < n; i++) {
		struct hx_resp *r = call_route(gw, i);

		expect_code(r, 403, "route_denied", NULL);
		cr_expect_not_null(strstr(r->body, all_routes[i].name), "%s", r->body);
	}
	cr_expect_eq(json_array_size(hx_stub_requests()), 0, "a denied call went up");
	cr_expect_eq(json_array_size(hx_audit_wait(gw, n, 5000)), n);
}

Test(it_routes, each_route_relays_an_upstream_error)
{
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	size_t i;

	for (i = 0; i < sizeof(all_routes) / sizeof(all_routes[0]); i++) {
		struct hx_resp *r;

		hx_stub_next(
		        "{\"status\":503,\"json\":{\"error\":{\"message\":\"try later\",\"type\":"
		        "\"server_error\",\"param\":null,\"code\":null}}}");
		r = call_route(gw, i);
		cr_expect_eq(r->status, 503, "%s: %ld %s", all_routes[i].name, r->status, r->body);
		cr_expect_str_eq(json_string_value(json_object_get(
		                         json_object_get(hx_resp_json(r), "error"), "message")),
		                 "try later", "%s", all_routes[i].name);
	}
	cr_expect_eq(json_array_size(hx_audit_wait(gw, i, 5000)), i);
}

/* A WebSocket upgrade (the Realtime API's) is refused plainly, in the
 * error shape, and audited; nothing is tunneled. */
Test(it_routes, a_websocket_upgrade_is_refused)
{
	struct hx_gw *gw = hx_gw_start("{\"routes\":{\"default\":\"allow\"}}", NULL);
	const char *req = "GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: x\r\n"
	                  "Authorization: Bearer sk-routes-KEY-4411\r\nConnection: Upgrade\r\n"
	                  "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
	                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
	size_t n;
	const char *out = hx_raw(gw->port, req, strlen(req), 5000, 0, &n);

	cr_assert_not_null(out);
	cr_expect(strncmp(out, "HTTP/1.1 400 ", 13) == 0, "%s", out);
	cr_expect_not_null(strstr(out, "upgrade_not_supported"), "%s", out);
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
	cr_expect_str_eq(hx_str(json_array_get(hx_audit_wait(gw, 1, 5000), 0), "code"),
	                 "upgrade_not_supported");
}
