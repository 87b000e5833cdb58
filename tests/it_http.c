/*
 * it_http: the gateway's HTTP/1.1 front end, from raw sockets: routes,
 * framing errors, oversized bodies and heads, keep-alive and pipelining,
 * chunked bodies and slow clients. Every answer is in the error shape and
 * every request that got one has one audit record.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "harness.h"

TestSuite(it_http, .init = hx_init, .fini = hx_fini, .timeout = 60);

/* Sends raw bytes and returns the answer's text. */
static const char *
raw(const struct hx_gw *gw, const char *bytes)
{
	size_t n;
	const char *out = hx_raw(gw->port, bytes, strlen(bytes), 5000, 0, &n);

	cr_assert_not_null(out, "cannot connect");
	return out;
}

/* The status code of the first response in text. */
static int
status_of(const char *text)
{
	int code = 0;

	if (sscanf(text, "HTTP/1.1 %d ", &code) != 1)
		return 0;
	return code;
}

/* The JSON body of the first response in text. */
static json_t *
body_of(const char *text)
{
	const char *b = strstr(text, "\r\n\r\n");
	const char *cl = strstr(text, "Content-Length: ");
	char *copy;
	json_t *doc;
	int n;

	cr_assert(b && cl, "no body in: %s", text);
	n = atoi(cl + 16);
	copy = strndup(b + 4, (size_t)n);
	doc = hx_json(copy);
	free(copy);
	return doc;
}

static void
expect_code(const char *text, int status, const char *code)
{
	json_t *err;

	cr_assert_eq(status_of(text), status, "want %d: %s", status, text);
	err = json_object_get(body_of(text), "error");
	cr_expect_str_eq(hx_str(err, "code"), code, "%s", text);
	cr_expect_str_eq(hx_str(err, "type"), "invalid_request_error");
	cr_expect_not_null(strstr(text, "x-request-id: "), "%s", text);
}

Test(it_http, routes_and_methods)
{
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	struct hx_resp *r;

	r = hx_http("GET", hx_gw_url(gw, "/v1/nothing"), NULL, NULL, 0);
	cr_expect_eq(r->status, 404);
	cr_expect_str_eq(hx_str(json_object_get(hx_resp_json(r), "error"), "code"), "not_found");
	r = hx_http("PUT", hx_gw_url(gw, "/v1/containers"), NULL, "{}", 2);
	cr_expect_eq(r->status, 405);
	cr_expect_str_eq(hx_str(json_object_get(hx_resp_json(r), "error"), "code"),
	                 "method_not_allowed");
	r = hx_http("POST", hx_gw_url(gw, "/V1/Containers"), NULL, "{}", 2);
	cr_expect_eq(r->status, 404);
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers?x=1"), NULL, "{\"name\":\"a\"}", 12);
	cr_expect_eq(r->status, 400);
	cr_expect_str_eq(hx_str(json_object_get(hx_resp_json(r), "error"), "code"),
	                 "unknown_parameter");
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 4, 5000)), 4);
}

Test(it_http, paths_that_could_be_read_differently_are_refused)
{
	static const char *const paths[] = {
	        "/v1/containers/",     "/v1//containers",   "/v1/./containers",
	        "/v1/x/../containers", "/v1/containers%2F", "/v1/%63ontainers",
	};
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const char *out = raw(gw, hx_fmt("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: "
		                                 "0\r\nConnection: close\r\n\r\n",
		                                 paths[i]));

		expect_code(out, 400, "invalid_path");
	}
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
	cr_expect_eq(json_array_size(hx_audit_wait(gw, i, 5000)), i);
}

Test(it_http, smuggling_shapes_are_refused_in_the_error_shape)
{
	static const char *const heads[] = {
	        "POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Length: "
	        "5\r\nTransfer-Encoding: "
	        "chunked\r\n\r\n0\r\n\r\n",
	        "POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: "
	        "6\r\n\r\nabcdef",
	        "POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nabcde",
	        "POST /v1/containers HTTP/1.1\nHost: x\nContent-Length: 0\n\n",
	        "POST /v1/containers HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
	        "POST http://evil/v1/containers HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	};
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	size_t i;
	json_t *recs, *rec;

	for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
		expect_code(raw(gw, heads[i]), 400, "bad_request");
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
	recs = hx_audit_wait(gw, i, 5000);
	cr_expect_eq(json_array_size(recs), i);
	json_array_foreach(recs, i, rec)
	{
		cr_expect_str_eq(hx_str(rec, "decision"), "deny");
		cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 400);
	}
}

Test(it_http, a_body_over_the_limit_is_refused_before_it_is_read)
{
	struct hx_gw *gw = hx_gw_start(NULL, "{\"limits\":{\"max_body_bytes\":4096}}");
	const char *out;
	json_t *rec;

	/* 100 MB announced, none sent: the answer comes without waiting. */
	out = raw(gw, "POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Type: "
	              "application/json\r\nContent-Length: 100000000\r\n\r\n{\"name\":");
	expect_code(out, 413, "request_too_large");
	cr_expect_not_null(strstr(out, "Connection: close"));
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 413);
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
}

Test(it_http, a_chunked_body_over_the_limit_is_cut_off)
{
	struct hx_gw *gw = hx_gw_start(NULL, "{\"limits\":{\"max_body_bytes\":4096}}");
	char chunk[3000];
	const char *out;

	memset(chunk, 'a', sizeof(chunk));
	out = raw(gw, hx_fmt("POST /v1/containers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
	                     "chunked\r\n\r\nbb8\r\n%.*s\r\nbb8\r\n%.*s\r\n0\r\n\r\n",
	                     3000, chunk, 3000, chunk));
	expect_code(out, 413, "request_too_large");
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 1, 5000)), 1);
}

Test(it_http, an_oversized_head_is_a_431)
{
	struct hx_gw *gw = hx_gw_start(NULL, "{\"limits\":{\"max_header_bytes\":1024}}");
	char pad[2000];

	memset(pad, 'a', sizeof(pad));
	expect_code(raw(gw, hx_fmt("GET /v1/containers HTTP/1.1\r\nHost: x\r\nX-Pad: %.*s\r\n\r\n",
	                           2000, pad)),
	            431, "header_too_large");
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 1, 5000)), 1);
}

Test(it_http, keep_alive_and_pipelined_requests_each_get_their_answer)
{
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	const char *one = "POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Type: "
	                  "application/json\r\nContent-Length: 12\r\n\r\n{\"name\":\"a\"}";
	const char *out, *second;

	out = raw(gw, hx_fmt("%s%s%sGET /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: "
	                     "close\r\n\r\n",
	                     one, one, one));
	cr_assert_eq(status_of(out), 200, "%s", out);
	second = strstr(out + 1, "HTTP/1.1 200");
	cr_assert_not_null(second, "%s", out);
	cr_assert_not_null(strstr(second + 1, "HTTP/1.1 200"), "%s", out);
	cr_expect_not_null(strstr(out, "HTTP/1.1 404"), "%s", out);
	cr_expect_eq(json_array_size(hx_stub_requests()), 3);
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 4, 5000)), 4);
}

Test(it_http, a_chunked_request_body_is_read_whole)
{
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	const char *out;

	out = raw(gw,
	          "POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	          "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
	          "5\r\n{\"nam\r\n7;ext=1\r\ne\":\"ch\"\r\n1\r\n}\r\n0\r\n\r\n");
	cr_assert_eq(status_of(out), 200, "%s", out);
	cr_expect_str_eq(hx_str(body_of(out), "name"), "ch");
}

Test(it_http, a_slow_head_is_cut_off_with_a_408)
{
	struct hx_gw *gw = hx_gw_start(NULL, "{\"limits\":{\"header_timeout_ms\":300}}");
	size_t n;
	const char *out;

	/* Half a head, then silence (the socket stays open for 3 s). */
	out = hx_raw(gw->port, "POST /v1/containers HTTP/1.1\r\nHost:", 35, 3000, 0, &n);
	cr_assert_not_null(out);
	expect_code(out, 408, "request_timeout");
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 1, 5000)), 1);
}

Test(it_http, a_slow_body_is_cut_off_with_a_408)
{
	struct hx_gw *gw = hx_gw_start(NULL, "{\"limits\":{\"body_timeout_ms\":300}}");
	size_t n;
	const char *out;
	const char *req = "POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{";

	out = hx_raw(gw->port, req, strlen(req), 3000, 0, &n);
	cr_assert_not_null(out);
	expect_code(out, 408, "request_timeout");
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 1, 5000)), 1);
}

Test(it_http, a_client_that_leaves_mid_body_is_still_audited)
{
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	size_t n;
	const char *req = "POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{";
	json_t *rec;

	(void)hx_raw(gw->port, req, strlen(req), 300, HX_RAW_SHUT_WR, &n);
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_str_eq(hx_str(rec, "code"), "incomplete_body");
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
}
