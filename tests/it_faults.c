/*
 * it_faults: the upstream and the audit log failing in every way we could
 * make them, against the real gateway. For each fault the client gets the
 * status and code the README promises, the request has its audit record,
 * and the gateway goes on serving (a normal request after the faults is
 * answered, and it exits cleanly).
 *
 * The upstream's faults are scripted through the stub (tests/stub/
 * upstream.c): close, reset, hang, delay, truncate, and raw bytes for what
 * no HTTP library would send.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "harness.h"

TestSuite(it_faults, .init = hx_init, .fini = hx_fini, .timeout = 120);

static const char *const json_headers[] = {"Content-Type: application/json", NULL};

static struct hx_resp *
create(const struct hx_gw *gw)
{
	return hx_http("POST", hx_gw_url(gw, "/v1/containers"), json_headers, "{\"name\":\"f\"}",
	               12);
}

static const char *
code_of(struct hx_resp *r)
{
	return hx_str(json_object_get(hx_resp_json(r), "error"), "code");
}

/* A container the stub knows, for the retrieve cases. */
static const char *
make_container(const struct hx_gw *gw)
{
	struct hx_resp *r = create(gw);

	cr_assert_eq(r->status, 200, "%s", r->body);
	return hx_fmt("%s", hx_str(hx_resp_json(r), "id"));
}

/* A ContainerResource for id with a name of n bytes. */
static const char *
container_json(const char *id, size_t n)
{
	char *name = malloc(n + 1);
	const char *out;

	cr_assert_not_null(name);
	memset(name, 'n', n);
	name[n] = '\0';
	out = hx_fmt(
	        "{\"id\":\"%s\",\"object\":\"container\",\"name\":\"%s\",\"created_at\":1,"
	        "\"status\":\"running\",\"memory_limit\":\"1g\",\"expires_after\":{\"anchor\":"
	        "\"last_active_at\",\"minutes\":20},\"network_policy\":{\"type\":\"disabled\"}}",
	        id, name);
	free(name);
	return out;
}

/* s with the first "marker" replaced by with. */
static const char *
subst(const char *s, const char *marker, const char *with)
{
	const char *at = strstr(s, marker);

	if (at == NULL)
		return s;
	return hx_fmt("%.*s%s%s", (int)(at - s), s, with, at + strlen(marker));
}

struct fault {
	const char *name;
	const char *behaviour; /* "@ID@" is the container id, "@BIG@" an oversized answer */
	long create_status;
	const char *create_code; /* NULL: relayed, not checked */
	long get_status;
	const char *get_code;
};

/*
 * Timeouts are 600 ms and answers at most 4096 bytes in these tests. A
 * create's answer is checked as a container; a retrieve's too, and in the
 * default block mode a broken one is withheld as a violation.
 */
static const struct fault faults[] = {
        {"close", "{\"action\":\"close\",\"repeat\":2}", 502, "upstream_unreachable", 502,
         "upstream_unreachable"},
        {"reset mid-answer", "{\"action\":\"reset\",\"repeat\":2}", 502, "upstream_unreachable",
         502, "upstream_unreachable"},
        {"hang", "{\"action\":\"hang\",\"repeat\":2}", 504, "upstream_timeout", 504,
         "upstream_timeout"},
        {"slower than the timeout", "{\"delay_ms\":3000,\"repeat\":2}", 504, "upstream_timeout",
         504, "upstream_timeout"},
        {"truncated, chunked", "{\"action\":\"truncate\",\"repeat\":2}", 502,
         "upstream_unreachable", 502, "upstream_unreachable"},
        {"truncated, Content-Length longer than the body",
         "{\"raw\":\"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: "
         "400\\r\\n\\r\\n{\\\"id\\\":\\\"@ID@\\\"\",\"repeat\":2}",
         502, "upstream_unreachable", 502, "upstream_unreachable"},
        {"a status line that is not HTTP",
         "{\"raw\":\"HTTP/1.1 2000 OK\\r\\n\\r\\n\",\"repeat\":2}", 502, "upstream_unreachable",
         502, "upstream_unreachable"},
        {"not HTTP at all", "{\"raw\":\"hello there\\r\\n\\r\\n\",\"repeat\":2}", 502,
         "upstream_unreachable", 502, "upstream_unreachable"},
        {"two Content-Lengths",
         "{\"raw\":\"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: "
         "2\\r\\nContent-Length: 3\\r\\n\\r\\n{}x\",\"repeat\":2}",
         502, "bad_upstream_response", 502, "bad_upstream_response"},
        {"oversized", "{\"json\":@BIG@,\"repeat\":2}", 502, "upstream_response_too_large", 502,
         "upstream_response_too_large"},
        {"not JSON", "{\"status\":200,\"body\":\"<html>fine</html>\",\"repeat\":2}", 502,
         "bad_upstream_response", 502, "upstream_violation"},
        {"empty 200", "{\"status\":200,\"body\":\"\",\"repeat\":2}", 502, "bad_upstream_response",
         502, "upstream_violation"},
        {"a JSON array", "{\"json\":[1,2],\"repeat\":2}", 502, "bad_upstream_response", 502,
         "upstream_violation"},
        {"wrongly typed fields",
         "{\"json\":{\"id\":5,\"object\":\"container\",\"name\":[],\"created_at\":\"today\","
         "\"status\":\"running\"},\"repeat\":2}",
         502, "bad_upstream_response", 502, "upstream_violation"},
        {"another container's id",
         "{\"json\":{\"id\":\"cntr_other\",\"object\":\"container\",\"name\":\"x\",\"created_at\":"
         "1,\"status\":\"running\"},\"repeat\":2}",
         200, NULL, 502, "upstream_violation"},
        {"204 with no body", "{\"status\":204,\"repeat\":2}", 502, "bad_upstream_response", 502,
         "upstream_violation"},
        {"500 with HTML", "{\"status\":500,\"body\":\"<html>oops</html>\",\"repeat\":2}", 500, NULL,
         500, NULL},
};

/* The record of the request that got r. */
static json_t *
record_of(const struct hx_gw *gw, size_t n, struct hx_resp *r)
{
	json_t *recs = hx_audit_wait(gw, n, 10000), *rec;
	const char *rid = hx_resp_header(r, "x-request-id");
	size_t i;

	json_array_foreach(recs, i, rec)
	{
		if (rid && hx_str(rec, "request_id") && strcmp(hx_str(rec, "request_id"), rid) == 0)
			return rec;
		if (rid && hx_str(rec, "upstream_request_id") &&
		    strcmp(hx_str(rec, "upstream_request_id"), rid) == 0)
			return rec;
	}
	return NULL;
}

/* Request audit records so far (other line types left out). */
static size_t
request_records(const struct hx_gw *gw)
{
	json_t *recs = hx_audit_records(gw), *rec;
	size_t i, n = 0;

	json_array_foreach(recs, i, rec)
	{
		if (hx_str(rec, "type") == NULL || strcmp(hx_str(rec, "type"), "request") == 0)
			n++;
	}
	return n;
}

static void
expect_answer(const struct hx_gw *gw, const char *what, struct hx_resp *r, long status,
              const char *code, size_t *nrecs)
{
	json_t *rec;

	cr_expect_eq(r->status, status, "%s: status %ld, want %ld: %.200s %s", what, r->status,
	             status, r->body, r->error);
	if (code)
		cr_expect(code_of(r) && strcmp(code_of(r), code) == 0, "%s: code %s, want %s", what,
		          code_of(r), code);
	(*nrecs)++;
	rec = record_of(gw, *nrecs, r);
	cr_expect_not_null(rec, "%s: no audit record for request %s", what,
	                   hx_resp_header(r, "x-request-id"));
	if (rec) {
		cr_expect_eq(json_integer_value(json_object_get(rec, "status")), r->status,
		             "%s: audited status %lld", what,
		             (long long)json_integer_value(json_object_get(rec, "status")));
		if (status >= 500 && code)
			cr_expect_str_eq(hx_str(rec, "decision"), "error", "%s", what);
		if (code)
			cr_expect(hx_str(rec, "code") && strcmp(hx_str(rec, "code"), code) == 0,
			          "%s: audited code %s", what, hx_str(rec, "code"));
	}
}

Test(it_faults, every_upstream_fault_gets_its_status_and_record)
{
	struct hx_gw *gw = hx_gw_start(
	        "{}", "{\"upstream\":{\"timeout_ms\":600,\"max_response_bytes\":4096}}");
	const char *id = make_container(gw);
	size_t i, nrecs = 1;
	struct hx_resp *r;

	for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		const struct fault *f = &faults[i];
		const char *b =
		        subst(subst(f->behaviour, "@ID@", id), "@BIG@", container_json(id, 8000));
		hx_stub_next(b);
		r = create(gw);
		expect_answer(gw, hx_fmt("%s (create)", f->name), r, f->create_status,
		              f->create_code, &nrecs);
		hx_stub_next_clear();
		hx_stub_next(b);
		r = hx_http("GET", hx_gw_url(gw, hx_fmt("/v1/containers/%s", id)), NULL, NULL, 0);
		expect_answer(gw, hx_fmt("%s (retrieve)", f->name), r, f->get_status, f->get_code,
		              &nrecs);
		hx_stub_next_clear();
	}
	/* Still serving, and exactly one record per answer. */
	r = hx_http("GET", hx_gw_url(gw, hx_fmt("/v1/containers/%s", id)), NULL, NULL, 0);
	cr_expect_eq(r->status, 200, "after the faults: %ld %s", r->status, r->body);
	cr_expect_eq(request_records(gw) >= nrecs, 1);
	(void)hx_audit_wait(gw, nrecs + 1, 10000);
	cr_expect_eq(request_records(gw), nrecs + 1, "%zu records for %zu answers",
	             request_records(gw), nrecs + 1);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

Test(it_faults, an_upstream_that_refuses_connections)
{
	int closed = hx_free_port();
	struct hx_gw *gw = hx_gw_start(
	        "{}", hx_fmt("{\"upstream\":{\"base_url\":\"http://127.0.0.1:%d/v1\"}}", closed));
	size_t nrecs = 0;

	expect_answer(gw, "create", create(gw), 502, "upstream_unreachable", &nrecs);
	expect_answer(gw, "list", hx_http("GET", hx_gw_url(gw, "/v1/containers"), NULL, NULL, 0),
	              502, "upstream_unreachable", &nrecs);
	expect_answer(gw, "delete",
	              hx_http("DELETE", hx_gw_url(gw, "/v1/containers/cntr_1"), NULL, NULL, 0), 502,
	              "upstream_unreachable", &nrecs);
	expect_answer(gw, "a refusal needs no upstream",
	              hx_http("GET", hx_gw_url(gw, "/v1/nothing"), NULL, NULL, 0), 404, "not_found",
	              &nrecs);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

/* The upstream breaks off a download whose length it announced. */
Test(it_faults, a_reset_mid_download_cuts_the_answer_and_is_recorded)
{
	struct hx_gw *gw = hx_gw_start("{}", NULL);
	const char *id = make_container(gw), *fid, *get, *out;
	static char data[256 * 1024];
	struct hx_part part = {"file", "f.bin", NULL, data, sizeof(data)};
	struct hx_resp *r;
	json_t *rec;
	size_t n;

	memset(data, 'd', sizeof(data));
	r = hx_request(&(struct hx_req){.method = "POST",
	                                .url = hx_gw_url(gw, hx_fmt("/v1/containers/%s/files", id)),
	                                .parts = &part,
	                                .nparts = 1});
	cr_assert_eq(r->status, 200, "%s", r->body);
	fid = hx_str(hx_resp_json(r), "id");
	hx_stub_next("{\"action\":\"reset\",\"match\":\"/content\"}");
	get = hx_fmt("GET /v1/containers/%s/files/%s/content HTTP/1.1\r\nHost: x\r\n\r\n", id, fid);
	out = hx_raw(gw->port, get, strlen(get), 5000, 0, &n);
	cr_assert_not_null(out);
	/* Either the head went out and the body stops short, or nothing of the
	 * body had come and the client gets the error. */
	if (strncmp(out, "HTTP/1.1 200", 12) == 0)
		cr_expect(n < sizeof(data), "the whole file arrived: %zu bytes", n);
	else
		cr_expect_eq(strncmp(out, "HTTP/1.1 502", 12), 0, "%.200s", out);
	rec = json_array_get(hx_audit_wait(gw, 3, 5000), 2);
	cr_expect_str_eq(hx_str(rec, "decision"), "error");
	cr_expect(hx_str(rec, "code") &&
	                  (strcmp(hx_str(rec, "code"), "upstream_stream_failed") == 0 ||
	                   strcmp(hx_str(rec, "code"), "upstream_unreachable") == 0),
	          "code %s", hx_str(rec, "code"));
	r = create(gw);
	cr_expect_eq(r->status, 200, "after the reset: %ld", r->status);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

Test(it_faults, a_tls_error_is_a_502_and_recorded)
{
	/* A certificate the gateway's CA signed, for a name it does not dial. */
	const char *pem = hx_cert_issue("other", "DNS:other.example");
	struct hx_tls tls = {
	        .cert = pem, .key = hx_fmt("%s/other.key", hx_certs()), .name = "other.example"};
	struct hx_gw *gw = hx_gw_start_tls("{}", NULL, &tls);
	size_t nrecs = 0;

	expect_answer(gw, "create over TLS with the wrong name", create(gw), 502,
	              "upstream_unreachable", &nrecs);
	cr_expect_eq(json_array_size(hx_stub_requests()), 0, "the request went through");
	expect_answer(gw, "list over TLS with the wrong name",
	              hx_http("GET", hx_gw_url(gw, "/v1/containers"), NULL, NULL, 0), 502,
	              "upstream_unreachable", &nrecs);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

Test(it_faults, https_to_a_plain_http_upstream_is_a_502)
{
	struct hx_gw *gw = hx_gw_prepare("{}", NULL);
	json_t *up = json_object_get(gw->config, "upstream");
	char *text;
	size_t nrecs = 0;

	json_object_set_new(up, "base_url",
	                    json_string(hx_fmt("https://127.0.0.1:%d/v1", gw->stub_port)));
	text = json_dumps(gw->config, JSON_INDENT(2));
	hx_write_file(gw->config_path, text);
	free(text);
	hx_gw_launch(gw);
	expect_answer(gw, "create", create(gw), 502, "upstream_unreachable", &nrecs);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

/* A full disk under the audit log (/dev/full: every write fails ENOSPC).
 * By default (fail_closed) nothing is forwarded that cannot be audited. */
Test(it_faults, an_unwritable_audit_log_forwards_nothing_by_default)
{
	struct hx_gw *gw = hx_gw_start("{}", "{\"audit\":{\"path\":\"/dev/full\"}}");
	struct hx_resp *r;
	int i;

	for (i = 0; i < 3; i++) {
		r = create(gw);
		cr_expect_eq(r->status, 503, "create %d: %ld %s", i, r->status, r->body);
		cr_expect(code_of(r) && strcmp(code_of(r), "audit_unavailable") == 0, "code %s",
		          code_of(r));
	}
	cr_expect_eq(json_array_size(hx_stub_requests()), 0, "forwarded without an audit record");
	/* It takes nothing it cannot record, but it keeps answering. */
	r = hx_http("GET", hx_gw_url(gw, "/v1/nothing"), NULL, NULL, 0);
	cr_expect_eq(r->status, 503, "%ld %s", r->status, r->body);
	cr_expect(hx_proc_alive(gw->proc), "the gateway died");
	cr_expect_eq(hx_gw_stop(gw), 0);
	cr_expect(hx_file_contains(gw->err_path, "audit"), "the failure is not in the log");
}

/* The disk fills just as a create's intent is written: the create waits
 * for the log, but not past audit.intent_timeout_ms; then it is answered
 * 503 and nothing is forwarded (before, it waited until the disk had room
 * again, and was forwarded then, its client long gone). */
Test(it_faults, a_create_whose_intent_cannot_be_written_is_refused_in_time)
{
	struct hx_gw *gw = hx_gw_prepare("{}", "{\"audit\":{\"intent_timeout_ms\":400}}");
	struct hx_resp *r;
	long long t0;

	hx_gw_launch_capped(gw, 64 * 1024);
	hx_audit_fill(gw, NULL, 64 * 1024, 1000);
	t0 = hx_now_ms();
	r = create(gw);
	cr_expect_eq(r->status, 503, "%ld %s", r->status, r->body);
	cr_expect(code_of(r) && strcmp(code_of(r), "audit_unavailable") == 0, "code %s",
	          code_of(r));
	cr_expect_geq(hx_now_ms() - t0, 400, "answered before the intent's time was up");
	cr_expect_eq(json_array_size(hx_stub_requests()), 0, "forwarded without an intent");
	cr_expect(hx_proc_alive(gw->proc), "the gateway died");
}

Test(it_faults, an_unwritable_audit_log_in_fail_open_mode_keeps_forwarding)
{
	struct hx_gw *gw = hx_gw_start(
	        "{}", "{\"audit\":{\"path\":\"/dev/full\",\"on_failure\":\"fail_open\"}}");
	struct hx_resp *r;
	int i;

	for (i = 0; i < 3; i++) {
		r = create(gw);
		cr_expect_eq(r->status, 200, "create %d: %ld %s", i, r->status, r->body);
	}
	cr_expect_eq(json_array_size(hx_stub_requests()), 3);
	cr_expect(hx_proc_alive(gw->proc), "the gateway died");
	cr_expect_eq(hx_gw_stop(gw), 0);
	cr_expect(hx_file_contains(gw->err_path, "audit"), "the failure is not in the log");
}
