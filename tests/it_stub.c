/*
 * it_stub: the upstream stub and the harness, through the harness only, so
 * the integration tests' footing is proven before the gateway is involved.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(it_stub, .init = hx_init, .fini = hx_fini, .timeout = 60);

static const char *const json_ct[] = {"Content-Type: application/json", NULL};

static const char *
url(const struct hx_stub *s, const char *path)
{
	return hx_fmt("%s%s", s->url, path);
}

static json_t *
post_json(const struct hx_stub *s, const char *path, const char *body, long want)
{
	struct hx_resp *r = hx_http("POST", url(s, path), json_ct, body, strlen(body));

	cr_assert_eq(r->status, want, "POST %s -> %ld %s%s", path, r->status, r->error, r->body);
	cr_assert_not_null(hx_resp_json(r), "not JSON: %s", r->body);
	return hx_resp_json(r);
}

static json_t *
get_json(const struct hx_stub *s, const char *path, long want)
{
	struct hx_resp *r = hx_http("GET", url(s, path), NULL, NULL, 0);

	cr_assert_eq(r->status, want, "GET %s -> %ld %s%s", path, r->status, r->error, r->body);
	cr_assert_not_null(hx_resp_json(r), "not JSON: %s", r->body);
	return hx_resp_json(r);
}

static const char *
str(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	cr_assert_not_null(v, "no string \"%s\"", key);
	return v;
}

static bool
is_id(const char *id, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(id, prefix, n) != 0 || strlen(id) != n + 32)
		return false;
	return strspn(id + n, "0123456789abcdef") == 32;
}

static void
assert_error_shape(json_t *v)
{
	json_t *e = json_object_get(v, "error");

	cr_assert(json_is_object(e));
	cr_assert(json_is_string(json_object_get(e, "message")));
	cr_assert_str_eq(str(e, "type"), "invalid_request_error");
	cr_assert(json_object_get(e, "param") != NULL);
	cr_assert(json_is_null(json_object_get(e, "code")));
}

Test(it_stub, create_and_read_back)
{
	struct hx_stub *s = hx_stub_start();
	json_t *c =
	        post_json(s, "/v1/containers",
	                  "{\"name\":\"box\",\"memory_limit\":\"4g\","
	                  "\"expires_after\":{\"anchor\":\"last_active_at\",\"minutes\":5},"
	                  "\"network_policy\":{\"type\":\"allowlist\","
	                  "\"allowed_domains\":[\"example.com\"],\"domain_secrets\":"
	                  "[{\"domain\":\"example.com\",\"name\":\"K\",\"value\":\"s3cr3t\"}]}}",
	                  200);
	json_t *np = json_object_get(c, "network_policy"), *back, *list;
	const char *id = str(c, "id");

	cr_assert(is_id(id, "cntr_"), "bad id %s", id);
	cr_assert_str_eq(str(c, "object"), "container");
	cr_assert_str_eq(str(c, "status"), "running");
	cr_assert_str_eq(str(c, "name"), "box");
	cr_assert_str_eq(str(c, "memory_limit"), "4g");
	cr_assert(json_integer_value(json_object_get(c, "created_at")) > 1600000000);
	cr_assert_eq(json_integer_value(json_object_get(c, "last_active_at")),
	             json_integer_value(json_object_get(c, "created_at")));
	cr_assert_str_eq(str(json_object_get(c, "expires_after"), "anchor"), "last_active_at");
	cr_assert_eq(
	        json_integer_value(json_object_get(json_object_get(c, "expires_after"), "minutes")),
	        5);
	cr_assert_str_eq(str(np, "type"), "allowlist");
	cr_assert_str_eq(
	        json_string_value(json_array_get(json_object_get(np, "allowed_domains"), 0)),
	        "example.com");
	cr_assert_null(json_object_get(np, "domain_secrets"));
	cr_assert(!hx_file_contains(s->proc->err_path, "s3cr3t"));

	/* The same resource under the /v1 prefix and bare, Prism-style. */
	back = get_json(s, hx_fmt("/v1/containers/%s", id), 200);
	cr_assert(json_equal(back, c));
	back = get_json(s, hx_fmt("/containers/%s", id), 200);
	cr_assert(json_equal(back, c));
	list = get_json(s, "/v1/containers", 200);
	cr_assert_str_eq(str(list, "object"), "list");
	cr_assert_eq(json_array_size(json_object_get(list, "data")), 1);
	cr_assert_str_eq(str(list, "first_id"), id);
	cr_assert_str_eq(str(list, "last_id"), id);
	cr_assert(json_is_false(json_object_get(list, "has_more")));

	/* Defaults when the request leaves things out. */
	c = post_json(s, "/containers", "{\"name\":\"plain\"}", 200);
	cr_assert_str_eq(str(c, "memory_limit"), "1g");
	cr_assert_eq(
	        json_integer_value(json_object_get(json_object_get(c, "expires_after"), "minutes")),
	        20);
	cr_assert_str_eq(str(json_object_get(c, "network_policy"), "type"), "disabled");
	cr_assert_null(json_object_get(json_object_get(c, "network_policy"), "allowed_domains"));
}

Test(it_stub, delete_and_errors)
{
	struct hx_stub *s = hx_stub_start();
	const char *id = str(post_json(s, "/v1/containers", "{\"name\":\"x\"}", 200), "id");
	struct hx_resp *r =
	        hx_http("DELETE", url(s, hx_fmt("/v1/containers/%s", id)), NULL, NULL, 0);
	json_t *v;

	cr_assert_eq(r->status, 200);
	v = hx_resp_json(r);
	cr_assert_str_eq(str(v, "id"), id);
	cr_assert_str_eq(str(v, "object"), "container.deleted");
	cr_assert(json_is_true(json_object_get(v, "deleted")));
	assert_error_shape(get_json(s, hx_fmt("/v1/containers/%s", id), 404));
	assert_error_shape(get_json(s, "/v1/containers/cntr_nope/files", 404));
	assert_error_shape(post_json(s, "/v1/containers", "{\"name\": oops", 400));
	assert_error_shape(post_json(s, "/v1/containers", "", 400));
	assert_error_shape(get_json(s, "/v1/containers?limit=0", 400));
	assert_error_shape(get_json(s, "/v1/containers?order=sideways", 400));
	assert_error_shape(get_json(s, "/v1/elsewhere", 404));
}

Test(it_stub, list_parameters)
{
	struct hx_stub *s = hx_stub_start();
	const char *a = str(post_json(s, "/v1/containers", "{\"name\":\"a\"}", 200), "id");
	const char *b = str(post_json(s, "/v1/containers", "{\"name\":\"b\"}", 200), "id");
	const char *c = str(post_json(s, "/v1/containers", "{\"name\":\"a\"}", 200), "id");
	json_t *l;

	l = get_json(s, "/v1/containers?limit=2&order=asc", 200);
	cr_assert_eq(json_array_size(json_object_get(l, "data")), 2);
	cr_assert_str_eq(str(l, "first_id"), a);
	cr_assert_str_eq(str(l, "last_id"), b);
	cr_assert(json_is_true(json_object_get(l, "has_more")));
	l = get_json(s, hx_fmt("/v1/containers?limit=2&order=asc&after=%s", b), 200);
	cr_assert_eq(json_array_size(json_object_get(l, "data")), 1);
	cr_assert_str_eq(str(l, "first_id"), c);
	cr_assert(json_is_false(json_object_get(l, "has_more")));
	/* desc is the default order. */
	l = get_json(s, "/v1/containers", 200);
	cr_assert_str_eq(str(l, "first_id"), c);
	cr_assert_str_eq(str(l, "last_id"), a);
	l = get_json(s, "/v1/containers?name=a", 200);
	cr_assert_eq(json_array_size(json_object_get(l, "data")), 2);
	l = get_json(s, "/v1/containers?name=zzz", 200);
	cr_assert_eq(json_array_size(json_object_get(l, "data")), 0);
	cr_assert(json_is_null(json_object_get(l, "first_id")));
}

Test(it_stub, scripted_status_body_headers)
{
	struct hx_stub *s = hx_stub_start();
	struct hx_resp *r;

	hx_stub_next("{\"status\":429,\"json\":{\"error\":{\"message\":\"slow down\"}},"
	             "\"headers\":{\"Retry-After\":\"3\",\"X-Upstream\":\"stub\"},\"repeat\":2}");
	hx_stub_next("{\"status\":502,\"body\":\"<html>bad gateway</html>\","
	             "\"headers\":{\"Content-Type\":\"text/html\"}}");
	for (int i = 0; i < 2; i++) {
		r = hx_http("GET", url(s, "/v1/containers"), NULL, NULL, 0);
		cr_assert_eq(r->status, 429);
		cr_assert_str_eq(hx_resp_header(r, "retry-after"), "3");
		cr_assert_str_eq(hx_resp_header(r, "X-Upstream"), "stub");
		cr_assert_str_eq(hx_resp_header(r, "Content-Type"), "application/json");
		cr_assert_str_eq(str(json_object_get(hx_resp_json(r), "error"), "message"),
		                 "slow down");
	}
	r = hx_http("POST", url(s, "/v1/containers"), NULL, "{\"name\":\"n\"}", 12);
	cr_assert_eq(r->status, 502);
	cr_assert_str_eq(r->body, "<html>bad gateway</html>");
	cr_assert_str_eq(hx_resp_header(r, "content-type"), "text/html");
	/* Queue used up: the state answers again, and the scripted POST made nothing. */
	cr_assert_eq(json_array_size(json_object_get(get_json(s, "/v1/containers", 200), "data")),
	             0);

	/* Headers alone decorate the normal answer. */
	hx_stub_next("{\"headers\":{\"X-Request-Id\":\"req_123\"}}");
	r = hx_http("GET", url(s, "/v1/containers"), NULL, NULL, 0);
	cr_assert_eq(r->status, 200);
	cr_assert_str_eq(hx_resp_header(r, "x-request-id"), "req_123");
	cr_assert_str_eq(str(hx_resp_json(r), "object"), "list");

	/* Bad behaviours are refused, not queued. */
	r = hx_http("POST", url(s, "/__stub/next"), NULL, "{\"stauts\":500}", 14);
	cr_assert_eq(r->status, 400);
	r = hx_http("POST", url(s, "/__stub/next"), NULL, "{\"status\":\"500\"}", 16);
	cr_assert_eq(r->status, 400);
	cr_assert_eq(hx_http("GET", url(s, "/v1/containers"), NULL, NULL, 0)->status, 200);
}

/* Sends a request on a socket and leaves the answer unread. */
static int
send_unread(int port, const char *req)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(fd >= 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
	cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	return fd;
}

Test(it_stub, delay_does_not_block_others)
{
	struct hx_stub *s = hx_stub_start();
	long long t0;
	char buf[4096];
	ssize_t n = 0;
	struct pollfd pfd;
	int fd;

	hx_stub_next("{\"delay_ms\":800,\"status\":201,\"body\":\"late\"}");
	t0 = hx_now_ms();
	fd = send_unread(s->port, "GET /v1/containers HTTP/1.1\r\nHost: stub\r\n\r\n");
	/* While that answer waits, the stub keeps serving. */
	cr_assert_eq(hx_http("GET", url(s, "/__stub/health"), NULL, NULL, 0)->status, 200);
	cr_assert_eq(hx_http("GET", url(s, "/v1/containers"), NULL, NULL, 0)->status, 200);
	cr_assert_lt(hx_now_ms() - t0, 700);
	pfd.fd = fd;
	pfd.events = POLLIN;
	cr_assert_eq(poll(&pfd, 1, 5000), 1);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_assert_geq(hx_now_ms() - t0, 800);
	cr_assert(strncmp(buf, "HTTP/1.1 201", 12) == 0, "%s", buf);
	cr_assert_not_null(strstr(buf, "\r\n\r\nlate"), "%s", buf);

	/* Delay alone slows the normal answer. */
	hx_stub_next("{\"delay_ms\":300}");
	t0 = hx_now_ms();
	cr_assert_eq(hx_http("GET", url(s, "/v1/containers"), NULL, NULL, 0)->status, 200);
	cr_assert_geq(hx_now_ms() - t0, 300);
}

Test(it_stub, close_and_hang)
{
	struct hx_stub *s = hx_stub_start();
	struct hx_req rq = {.url = url(s, "/v1/containers"), .timeout_ms = 300};
	struct hx_resp *r;
	json_t *recs = NULL;
	long long end;

	hx_stub_next("{\"action\":\"close\"}");
	r = hx_http("GET", url(s, "/v1/containers"), NULL, NULL, 0);
	cr_assert_eq(r->status, 0);
	cr_assert_neq(r->error[0], '\0');
	cr_assert_eq(hx_http("GET", url(s, "/v1/containers"), NULL, NULL, 0)->status, 200);

	hx_stub_next("{\"action\":\"hang\"}");
	r = hx_request(&rq);
	cr_assert_eq(r->status, 0);
	cr_assert(strstr(r->error, "imed out") != NULL, "%s", r->error);
	/* The stub notices the client leaving and marks the record. */
	for (end = hx_now_ms() + 3000; hx_now_ms() < end; usleep(20000)) {
		recs = hx_stub_requests();
		if (json_is_true(json_object_get(json_array_get(recs, 2), "aborted")))
			break;
	}
	cr_assert(json_is_true(json_object_get(json_array_get(recs, 2), "aborted")));
	cr_assert_null(json_object_get(json_array_get(recs, 1), "aborted"));
	cr_assert_eq(hx_http("GET", url(s, "/v1/containers"), NULL, NULL, 0)->status, 200);

	/* A hang still pending at shutdown is no reason for an unclean exit. */
	hx_stub_next("{\"action\":\"hang\"}");
	hx_request(&rq);
	cr_assert_eq(hx_proc_stop(s->proc), 0, "%s", hx_read_file(s->proc->err_path, NULL));
}

/* "events": Server-Sent Events, each after its delay, the times recorded
 * on the clock tests read (CLOCK_REALTIME); a stream cut off, a client
 * leaving mid-stream, and scripts the stub refuses. */
Test(it_stub, event_streams)
{
	struct hx_stub *s = hx_stub_start();
	struct hx_req rq = {
	        .url = url(s, "/v1/responses"), .method = "POST", .body = "{}", .len = 2};
	static const char *const bad[] = {
	        "{\"events\":[]}",
	        "{\"events\":{}}",
	        "{\"events\":[{\"bogus\":1}]}",
	        "{\"events\":[{\"event\":\"a\\nb\"}]}",
	        "{\"events\":[{\"raw\":\"x\",\"data\":\"y\"}]}",
	        "{\"events\":[{\"data\":\"x\"}],\"json\":{}}",
	        "{\"events\":[{\"data\":\"x\"}],\"delay_ms\":5}",
	        "{\"then\":\"close\"}",
	        "{\"events\":[{\"data\":\"x\"}],\"then\":\"reset\"}",
	};
	struct hx_resp *r;
	json_t *rec = NULL;
	long long start, end;
	size_t i;

	hx_stub_next(
	        "{\"events\":[{\"event\":\"response.created\",\"id\":\"1\",\"data\":{\"a\":1}},"
	        "{\"data\":\"two\\nlines\",\"delay_ms\":300},{\"raw\":\": note\\n\\n\","
	        "\"delay_ms\":300}],\"headers\":{\"x-request-id\":\"req_sse\"}}");
	start = hx_now_ms();
	r = hx_request(&rq);
	end = hx_now_ms();
	cr_assert_eq(r->status, 200, "%ld %s", r->status, r->error);
	cr_expect_str_eq(hx_resp_header(r, "content-type"), "text/event-stream");
	cr_expect_str_eq(hx_resp_header(r, "x-request-id"), "req_sse");
	cr_expect_str_eq(hx_resp_header(r, "transfer-encoding"), "chunked");
	cr_expect_str_eq(r->body, "event: response.created\nid: 1\ndata: {\"a\":1}\n\n"
	                          "data: two\ndata: lines\n\n: note\n\n");
	cr_expect_geq(end - start, 580, "the events came at once: %lld ms", end - start);
	rec = json_array_get(hx_stub_requests(), 0);
	cr_expect_eq(json_integer_value(json_object_get(rec, "sse_sent")), 3);
	cr_expect_geq(json_integer_value(json_object_get(rec, "sse_last_ms")) -
	                      json_integer_value(json_object_get(rec, "sse_first_ms")),
	              590);
	cr_expect_geq(json_integer_value(json_object_get(rec, "sse_done_ms")),
	              json_integer_value(json_object_get(rec, "sse_last_ms")));
	cr_expect_null(json_object_get(rec, "aborted"));

	/* Cut off after the last event: the client sees an unfinished answer. */
	hx_stub_next("{\"events\":[{\"data\":\"only\"}],\"then\":\"close\"}");
	r = hx_request(&rq);
	cr_expect_neq(r->error[0], '\0', "a cut stream ended cleanly: %s", r->body);
	cr_expect_not_null(strstr(r->body, "data: only"), "%s", r->body);
	cr_expect(json_is_true(json_object_get(json_array_get(hx_stub_requests(), 1), "sse_cut")));

	/* A client that leaves mid-stream is noticed and recorded. */
	hx_stub_next("{\"events\":[{\"data\":\"1\"},{\"data\":\"2\",\"delay_ms\":2000}]}");
	rq.timeout_ms = 300;
	r = hx_request(&rq);
	cr_expect(strstr(r->error, "imed out") != NULL, "%s", r->error);
	for (end = hx_now_ms() + 3000; hx_now_ms() < end; usleep(20000)) {
		rec = json_array_get(hx_stub_requests(), 2);
		if (json_is_true(json_object_get(rec, "aborted")))
			break;
	}
	cr_expect(json_is_true(json_object_get(rec, "aborted")), "%s",
	          json_dumps(rec, JSON_COMPACT));
	cr_expect_eq(json_integer_value(json_object_get(rec, "sse_sent")), 1);
	cr_expect_null(json_object_get(rec, "sse_done_ms"));

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(
		        hx_http("POST", url(s, "/__stub/next"), json_ct, bad[i], strlen(bad[i]))
		                ->status,
		        400, "%s", bad[i]);
	/* The stub answers as before, and a stream still going at shutdown is
	 * no reason for an unclean exit. */
	cr_expect_eq(hx_http("GET", url(s, "/v1/containers"), NULL, NULL, 0)->status, 200);
	hx_stub_next("{\"events\":[{\"data\":\"1\"},{\"data\":\"2\",\"delay_ms\":60000}]}");
	hx_request(&rq);
	cr_assert_eq(hx_proc_stop(s->proc), 0, "%s", hx_read_file(s->proc->err_path, NULL));
}

Test(it_stub, records_requests)
{
	struct hx_stub *s = hx_stub_start();
	const char *const hdrs[] = {"Authorization: Bearer sk-test-123", "X-Trace: one",
	                            "Content-Type: application/json", NULL};
	const unsigned char bin[] = {0x00, 0xff, 0x10, 'a', 0xc3};
	json_t *recs, *rec, *h;
	const char *body;
	size_t len;

	hx_http("GET", url(s, "/__stub/health"), NULL, NULL, 0);
	hx_http("POST", url(s, "/v1/containers?x=1&y=two"), hdrs, "{\"name\":\"r\"}", 12);
	hx_http("PUT", url(s, "/v1/raw"),
	        (const char *const[]){"Content-Type: application/x-bin", NULL}, bin, sizeof(bin));
	recs = hx_stub_requests();
	cr_assert_eq(json_array_size(recs), 2, "control calls are not recorded");

	rec = json_array_get(recs, 0);
	cr_assert_str_eq(str(rec, "method"), "POST");
	cr_assert_str_eq(str(rec, "uri"), "/v1/containers?x=1&y=two");
	h = json_object_get(rec, "headers");
	cr_assert_str_eq(str(h, "authorization"), "Bearer sk-test-123");
	cr_assert_str_eq(str(h, "x-trace"), "one");
	cr_assert_str_eq(str(h, "content-type"), "application/json");
	cr_assert_str_eq(str(h, "content-length"), "12");
	cr_assert_str_eq(str(rec, "body"), "{\"name\":\"r\"}");
	cr_assert_eq(json_integer_value(json_object_get(rec, "body_len")), 12);

	rec = json_array_get(recs, 1);
	cr_assert_str_eq(str(rec, "method"), "PUT");
	cr_assert_null(json_object_get(rec, "body"));
	cr_assert_str_eq(str(rec, "body_b64"), "AP8QYcM=");
	cr_assert_eq(json_integer_value(json_object_get(rec, "body_len")), sizeof(bin));
	body = hx_record_body(rec, &len);
	cr_assert_eq(len, sizeof(bin));
	cr_assert_arr_eq(body, bin, sizeof(bin));

	hx_stub_clear();
	cr_assert_eq(json_array_size(hx_stub_requests()), 0);
	hx_http("GET", url(s, "/v1/containers"), NULL, NULL, 0);
	cr_assert_eq(json_array_size(hx_stub_requests()), 1);
}

Test(it_stub, clear_queue)
{
	struct hx_stub *s = hx_stub_start();

	hx_stub_next("[{\"status\":500},{\"status\":501}]");
	cr_assert_eq(hx_http("GET", url(s, "/v1/containers"), NULL, NULL, 0)->status, 500);
	hx_stub_next_clear();
	cr_assert_eq(hx_http("GET", url(s, "/v1/containers"), NULL, NULL, 0)->status, 200);
}

Test(it_stub, multipart_upload_round_trip)
{
	struct hx_stub *s = hx_stub_start();
	const char *cid = str(post_json(s, "/v1/containers", "{\"name\":\"files\"}", 200), "id");
	const char *files = url(s, hx_fmt("/v1/containers/%s/files", cid));
	unsigned char data[3000];
	struct hx_part part = {.name = "file",
	                       .filename = "data.bin",
	                       .type = "application/octet-stream",
	                       .data = data,
	                       .len = sizeof(data)};
	struct hx_req rq = {.method = "POST", .url = files, .parts = &part, .nparts = 1};
	struct hx_resp *r;
	json_t *f, *l, *rec;
	const char *fid;

	/* Bytes that look like a boundary, NULs and CRLFs must survive. */
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + 3);
	memcpy(data + 100, "\r\n--------------------------", 28);
	r = hx_request(&rq);
	cr_assert_eq(r->status, 200, "%ld %s%s", r->status, r->error, r->body);
	f = hx_resp_json(r);
	fid = str(f, "id");
	cr_assert(is_id(fid, "cfile_"), "bad id %s", fid);
	cr_assert_str_eq(str(f, "object"), "container.file");
	cr_assert_str_eq(str(f, "container_id"), cid);
	cr_assert_str_eq(str(f, "path"), "/mnt/data/data.bin");
	cr_assert_str_eq(str(f, "source"), "user");
	cr_assert_eq(json_integer_value(json_object_get(f, "bytes")), sizeof(data));
	rec = json_array_get(hx_stub_requests(), 1);
	cr_assert(strncmp(str(json_object_get(rec, "headers"), "content-type"),
	                  "multipart/form-data; boundary=", 30) == 0);

	r = hx_http("GET", url(s, hx_fmt("/v1/containers/%s/files/%s/content", cid, fid)), NULL,
	            NULL, 0);
	cr_assert_eq(r->status, 200);
	cr_assert_str_eq(hx_resp_header(r, "content-type"), "application/octet-stream");
	cr_assert_eq(r->len, sizeof(data));
	cr_assert_arr_eq(r->body, data, sizeof(data));

	cr_assert(json_equal(get_json(s, hx_fmt("/v1/containers/%s/files/%s", cid, fid), 200), f));
	post_json(s, hx_fmt("/v1/containers/%s/files", cid), "{\"file_id\":\"file-abc\"}", 200);
	l = get_json(s, hx_fmt("/v1/containers/%s/files?order=asc", cid), 200);
	cr_assert_eq(json_array_size(json_object_get(l, "data")), 2);
	cr_assert_str_eq(str(l, "first_id"), fid);
	cr_assert_str_eq(str(json_array_get(json_object_get(l, "data"), 1), "path"),
	                 "/mnt/data/file-abc");

	r = hx_http("DELETE", url(s, hx_fmt("/v1/containers/%s/files/%s", cid, fid)), NULL, NULL,
	            0);
	cr_assert_eq(r->status, 200);
	cr_assert_str_eq(str(hx_resp_json(r), "object"), "container.file.deleted");
	get_json(s, hx_fmt("/v1/containers/%s/files/%s/content", cid, fid), 404);

	/* A form without a file part is refused. */
	part.name = "other";
	cr_assert_eq(hx_request(&rq)->status, 400);
}

Test(it_stub, raw_socket)
{
	struct hx_stub *s = hx_stub_start();
	static const char get[] =
	        "GET /__stub/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	static const char big[] =
	        "POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Length: 268435457\r\n\r\n";
	static const char bin[] =
	        "GET /v1/x HTTP/1.1\r\nHost: x\r\nX-Bin: a\xff\xfe\r\nConnection: close\r\n\r\n";
	size_t n;
	const char *out;

	out = hx_raw(s->port, get, sizeof(get) - 1, 3000, 0, &n);
	cr_assert_not_null(out);
	cr_assert(strncmp(out, "HTTP/1.1 200", 12) == 0, "%s", out);
	cr_assert_eq(strcmp(out + n - 2, "ok"), 0, "%s", out);

	out = hx_raw(s->port, "BREW /pot HTCPCP/9\r\n\r\n", 22, 3000, HX_RAW_SHUT_WR, &n);
	cr_assert_not_null(out);
	cr_assert(strncmp(out, "HTTP/1.1 4", 10) == 0, "%s", out);

	/* Bodies over 256 MiB are refused before they are read. */
	out = hx_raw(s->port, big, sizeof(big) - 1, 3000, 0, &n);
	cr_assert_not_null(out);
	cr_assert(strncmp(out, "HTTP/1.1 413", 12) == 0, "%s", out);

	/* Header bytes that are not UTF-8 are still recorded, escaped. */
	hx_stub_clear();
	out = hx_raw(s->port, bin, sizeof(bin) - 1, 3000, 0, &n);
	cr_assert(strncmp(out, "HTTP/1.1 404", 12) == 0, "%s", out);
	cr_assert_str_eq(
	        str(json_object_get(json_array_get(hx_stub_requests(), 0), "headers"), "x-bin"),
	        "a\\xff\\xfe");

	/* Nothing answers a request cut short; the timeout returns what came. */
	out = hx_raw(s->port, "GET /v1/containers HTTP/1.1\r\nHo", 31, 200, 0, &n);
	cr_assert_not_null(out);
	cr_assert_eq(n, 0);
	cr_assert_null(hx_raw(hx_free_port(), "x", 1, 200, 0, &n));
}

Test(it_stub, processes)
{
	const char *exit3[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
	const char *stubborn[] = {"/bin/sh", "-c", "trap '' TERM; echo ready; sleep 30", NULL};
	struct hx_proc *p = hx_proc_start("exit3", exit3);

	cr_assert_eq(hx_proc_wait(p, 5000), 3);
	cr_assert(!hx_proc_alive(p));
	cr_assert(hx_file_contains(p->out_path, "out"));
	cr_assert(hx_file_contains(p->err_path, "err"));
	cr_assert(!hx_file_contains(p->out_path, "err"));
	cr_assert_eq(hx_proc_stop(p), 3);

	p = hx_proc_start("stubborn", stubborn);
	cr_assert_eq(hx_wait_file(p->out_path, 5000), 0);
	cr_assert(hx_proc_alive(p));
	cr_assert_eq(hx_proc_stop(p), 128 + 9);
	cr_assert(!hx_proc_alive(p));
}

Test(it_stub, gateway_fixture_files)
{
	struct hx_gw *gw =
	        hx_gw_prepare("{\"rules\":[]}", "{\"upstream\":{\"timeout_ms\":500,\"extra\":[1]},"
	                                        "\"audit\":{\"path\":\"logs.jsonl\"},"
	                                        "\"policy_file\":null}");
	json_t *cfg = hx_json(hx_read_file(gw->config_path, NULL)), *up, *recs;

	cr_assert_not_null(cfg);
	cr_assert(json_equal(cfg, gw->config));
	cr_assert_str_eq(str(cfg, "listen"), hx_fmt("127.0.0.1:%d", gw->port));
	up = json_object_get(cfg, "upstream");
	cr_assert_str_eq(str(up, "base_url"), hx_fmt("http://127.0.0.1:%d/v1", gw->stub_port));
	cr_assert_eq(json_integer_value(json_object_get(up, "timeout_ms")), 500);
	cr_assert_eq(json_integer_value(json_object_get(up, "connect_timeout_ms")), 1000);
	cr_assert(json_is_array(json_object_get(up, "extra")));
	cr_assert_null(json_object_get(cfg, "policy_file"));
	cr_assert_str_eq(hx_read_file(gw->policy_path, NULL), "{\"rules\":[]}");
	cr_assert_str_eq(gw->audit_path, hx_path("logs.jsonl"));
	cr_assert_str_eq(gw->url, hx_fmt("http://127.0.0.1:%d", gw->port));
	cr_assert_eq(hx_wait_port(gw->stub_port, 1000), 0);

	cr_assert_eq(json_array_size(hx_audit_records(gw)), 0);
	/* Requests' records count; the chain's own lines do not. */
	hx_write_file(gw->audit_path, "{\"type\":\"request\",\"a\":1}\n\n{\"type\":\"segment\"}\n"
	                              "{\"type\":\"request\",\"b\":2}\n{\"c\"");
	/* An unterminated last line is a write in progress: not yet a record. */
	recs = hx_audit_wait(gw, 2, 1000);
	cr_assert_eq(json_array_size(recs), 2);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(recs, 1), "b")), 2);
	hx_write_file(gw->audit_path,
	              "{\"type\":\"request\",\"a\":1}\n{\"type\":\"request\",\"b\":2}\n"
	              "{\"type\":\"request\",\"c\":3}");
	cr_assert_eq(json_array_size(hx_audit_records(gw)), 3);
	cr_assert(hx_file_contains(gw->audit_path, "\"c\":3"));
	cr_assert(!hx_file_contains(gw->audit_path, "\"d\""));
	cr_assert(!hx_file_contains(hx_path("missing"), "x"));
	cr_assert_eq(hx_gw_stop(gw), -1, "never launched");
	cr_assert(!hx_proc_alive(gw->stub->proc));
	cr_assert_eq(gw->stub->proc->status, 0);
}

Test(it_stub, gateway_fixture_defaults)
{
	struct hx_gw *gw = hx_gw_prepare(NULL, NULL);

	cr_assert_str_eq(hx_read_file(gw->policy_path, NULL), "{}");
	cr_assert_str_eq(str(gw->config, "policy_file"), "policy.json");
	cr_assert_str_eq(str(json_object_get(gw->config, "audit"), "path"), "audit.log");
	cr_assert_str_eq(gw->audit_path, hx_path("audit.log"));
	cr_assert_str_eq(gw->config_path, hx_path("gateway.json"));
	cr_assert_str_eq(gw->err_path, hx_path("gateway.stderr"));
	cr_assert_str_eq(hx_gw_url(gw, "/v1/containers"),
	                 hx_fmt("http://127.0.0.1:%d/v1/containers", gw->port));
	cr_assert_neq(gw->port, gw->stub_port);
}
