/*
 * it_spool: large create bodies, read as they arrive. A create over 1 MiB
 * (or chunked) streams in; its inline skill's base64 "data" goes to the
 * spool (memory, then a file in limits.spool_dir) instead of memory, and
 * is read back as the decided document goes upstream. The real gateway
 * against the stand-in upstream: what arrives upstream is what was sent,
 * errors deep in a large string are named as for a small body, limits hold
 * at their bounds, and the gateway's memory does not grow with the body.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

TestSuite(it_spool, .init = hx_init, .fini = hx_fini, .timeout = 120);

#define SECRET "sk-SECRET-MARKER-5e21b7"

static const char inline_policy[] =
        "{\"memory_limit\":{\"max\":\"4g\",\"default\":\"1g\"},"
        "\"network_policy\":{\"allowed_domains\":[\"api.buildkite.com\"],"
        "\"allow_domain_secrets\":true},"
        "\"expires_after\":{\"max_minutes\":60,\"default_minutes\":20},"
        "\"skills\":{\"allow_inline\":true},\"on_upstream_violation\":\"block\"}";

static const char *const json_headers[] = {"Authorization: Bearer sk-client",
                                           "Content-Type: application/json", NULL};

/* A create whose one inline skill's data is n base64 characters (a
 * pattern of the alphabet, ending "=="), with a domain secret beside it.
 * bad_at >= 0 puts a byte that is not UTF-8 there in the data. */
static char *
large_body(size_t n, long bad_at, size_t *len)
{
	static const char head[] =
	        "{\"name\":\"big\",\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":"
	        "[\"api.buildkite.com\"],\"domain_secrets\":[{\"domain\":\"api.buildkite.com\","
	        "\"name\":\"TOKEN\",\"value\":\"" SECRET "\"}]},\"skills\":[{\"type\":\"inline\","
	        "\"name\":\"s\",\"description\":\"d\",\"source\":{\"type\":\"base64\","
	        "\"media_type\":\"application/zip\",\"data\":\"";
	static const char tail[] = "\"}}]}";
	static const char alphabet[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t h = sizeof(head) - 1, i;
	char *b = malloc(h + n + sizeof(tail));

	cr_assert_not_null(b);
	memcpy(b, head, h);
	for (i = 0; i < n; i++)
		b[h + i] = alphabet[(i * 7 + i / 64) % 64];
	b[h + n - 1] = b[h + n - 2] = '=';
	if (bad_at >= 0)
		b[h + (size_t)bad_at] = '\xff';
	memcpy(b + h + n, tail, sizeof(tail));
	*len = h + n + sizeof(tail) - 1;
	return b;
}

static const char *
data_of(json_t *doc)
{
	return json_string_value(json_object_get(
	        json_object_get(json_array_get(json_object_get(doc, "skills"), 0), "source"),
	        "data"));
}

Test(it_spool, a_large_inline_skill_reaches_the_upstream_as_it_was_sent)
{
	struct hx_gw *gw = hx_gw_start(inline_policy, NULL);
	size_t len, got_len;
	char *body = large_body(3 << 20, -1, &len);
	json_t *sent = hx_json(body), *reqs, *up;
	struct hx_resp *r;
	const char *got;

	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), json_headers, body, len);
	cr_assert_eq(r->status, 200, "%s", r->body);
	reqs = hx_stub_requests();
	cr_assert_eq(json_array_size(reqs), 1);
	got = hx_record_body(json_array_get(reqs, 0), &got_len);
	up = hx_json(got);
	cr_assert_str_eq(data_of(up), data_of(sent), "the data upstream is not what was sent");
	cr_assert_str_eq(json_string_value(json_object_get(up, "memory_limit")), "1g",
	                 "the policy's default was not added");
	cr_assert_str_eq(
	        json_string_value(json_object_get(
	                json_array_get(json_object_get(json_object_get(up, "network_policy"),
	                                               "domain_secrets"),
	                               0),
	                "value")),
	        SECRET);
	cr_assert_eq(json_array_size(hx_audit_wait(gw, 1, 5000)), 1);
	cr_assert_not(hx_file_contains(gw->audit_path, SECRET));
	cr_assert_not(hx_file_contains(gw->err_path, SECRET));
	hx_resp_free(r);
	free(body);
	hx_gw_stop(gw);
}

Test(it_spool, a_chunked_create_is_read_as_it_arrives)
{
	static const char *const chunked[] = {"Authorization: Bearer sk-client",
	                                      "Content-Type: application/json",
	                                      "Transfer-Encoding: chunked", NULL};
	struct hx_gw *gw = hx_gw_start(inline_policy, NULL);
	size_t len, got_len;
	char *body = large_body(200000, -1, &len);
	struct hx_resp *r;
	json_t *reqs;
	const char *got;

	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), chunked, body, len);
	cr_assert_eq(r->status, 200, "%s", r->body);
	reqs = hx_stub_requests();
	cr_assert_eq(json_array_size(reqs), 1);
	got = hx_record_body(json_array_get(reqs, 0), &got_len);
	cr_assert_str_eq(data_of(hx_json(got)), data_of(hx_json(body)));
	hx_resp_free(r);
	free(body);
	hx_gw_stop(gw);
}

/* A bad byte 1.5 MiB into the data: named by the body's byte offset and
 * the data's path, as for a body read whole; nothing goes upstream. */
Test(it_spool, a_bad_byte_deep_in_a_large_skill_is_named_where_it_is)
{
	struct hx_gw *gw = hx_gw_start(inline_policy, NULL);
	size_t len, h;
	char *body = large_body(2 << 20, 1536 * 1024, &len);
	struct hx_resp *r;
	json_t *err;
	char want[64];

	h = (size_t)(strstr(body, "\"data\":\"") - body) + 8;
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), json_headers, body, len);
	cr_assert_eq(r->status, 400, "%s", r->body);
	err = json_object_get(hx_resp_json(r), "error");
	cr_assert_str_eq(hx_str(err, "code"), "invalid_json");
	cr_assert_str_eq(hx_str(err, "param"), "skills[0].source.data");
	snprintf(want, sizeof(want), "at byte %zu;", h + 1536 * 1024);
	cr_assert(strstr(hx_str(err, "message"), want), "%s", hx_str(err, "message"));
	cr_assert_eq(json_array_size(hx_stub_requests()), 0);
	cr_assert_eq(json_array_size(hx_audit_wait(gw, 1, 5000)), 1);
	hx_resp_free(r);
	free(body);
	hx_gw_stop(gw);
}

/* The contract's bound on the data, 70254592 characters, is counted on
 * a spooled string as on any other: one more is a 400. */
Test(it_spool, data_one_past_the_contracts_bound_is_refused)
{
	struct hx_gw *gw = hx_gw_start(inline_policy, NULL);
	size_t len;
	char *body = large_body(70254593, -1, &len);
	struct hx_resp *r;
	json_t *err;

	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), json_headers, body, len);
	cr_assert_eq(r->status, 400, "%s", r->body);
	err = json_object_get(hx_resp_json(r), "error");
	cr_assert_str_eq(hx_str(err, "code"), "string_too_long");
	cr_assert_str_eq(hx_str(err, "param"), "skills[0].source.data");
	cr_assert(strstr(hx_str(err, "message"), "got 70254593"), "%s", hx_str(err, "message"));
	cr_assert_eq(json_array_size(hx_stub_requests()), 0);
	hx_resp_free(r);
	free(body);
	hx_gw_stop(gw);
}

/* The policy's skills.max_inline_bytes reads a spooled string's decoded
 * size from its length and padding. */
Test(it_spool, an_inline_skill_over_the_policys_size_is_refused_by_its_decoded_size)
{
	struct hx_gw *gw =
	        hx_gw_start("{\"network_policy\":{\"allowed_domains\":[\"api.buildkite.com\"],"
	                    "\"allow_domain_secrets\":true},"
	                    "\"skills\":{\"allow_inline\":true,\"max_inline_bytes\":1500000}}",
	                    NULL);
	size_t len, n = 2 << 20;
	char *body = large_body(n, -1, &len);
	struct hx_resp *r;
	json_t *err;
	char want[64];

	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), json_headers, body, len);
	cr_assert_eq(r->status, 403, "%s", r->body);
	err = json_object_get(hx_resp_json(r), "error");
	cr_assert_str_eq(hx_str(err, "code"), "inline_skill_too_large");
	snprintf(want, sizeof(want), "of %zu bytes", n / 4 * 3 - 2);
	cr_assert(strstr(hx_str(err, "message"), want), "%s", hx_str(err, "message"));
	cr_assert_eq(json_array_size(hx_stub_requests()), 0);
	hx_resp_free(r);
	free(body);
	hx_gw_stop(gw);
}

Test(it_spool, bodies_past_the_limit_get_a_413_whether_their_length_is_given_or_not)
{
	static const char *const chunked[] = {"Authorization: Bearer sk-client",
	                                      "Content-Type: application/json",
	                                      "Transfer-Encoding: chunked", NULL};
	struct hx_gw *gw = hx_gw_start(inline_policy, "{\"limits\":{\"max_body_bytes\":2000000}}");
	size_t len;
	char *body = large_body(2000000, -1, &len);
	struct hx_resp *r;
	json_t *err;

	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), json_headers, body, len);
	cr_assert_eq(r->status, 413, "%s", r->body);
	err = json_object_get(hx_resp_json(r), "error");
	cr_assert_str_eq(hx_str(err, "code"), "request_too_large");
	hx_resp_free(r);
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), chunked, body, len);
	cr_assert_eq(r->status, 413, "%s", r->body);
	err = json_object_get(hx_resp_json(r), "error");
	cr_assert_str_eq(hx_str(err, "code"), "request_too_large");
	cr_assert(strstr(hx_str(err, "message"), "limits.max_body_bytes"), "%s",
	          hx_str(err, "message"));
	cr_assert_eq(json_array_size(hx_stub_requests()), 0);
	cr_assert_eq(json_array_size(hx_audit_wait(gw, 2, 5000)), 2);
	hx_resp_free(r);
	free(body);
	hx_gw_stop(gw);
}

/* A spool folder gone while the gateway runs: the create that needed it
 * gets a 503 in the API's shape, and is recorded. */
Test(it_spool, a_spool_folder_that_cannot_take_the_body_gives_a_503)
{
	const char *dir = hx_path("spool");
	struct hx_gw *gw;
	size_t len;
	char *body = large_body(3 << 20, -1, &len);
	struct hx_resp *r;

	cr_assert_eq(mkdir(dir, 0700), 0);
	gw = hx_gw_start(inline_policy, hx_fmt("{\"limits\":{\"spool_dir\":\"%s\"}}", dir));
	cr_assert_eq(rmdir(dir), 0);
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), json_headers, body, len);
	cr_assert_eq(r->status, 503, "%s", r->body);
	cr_assert_str_eq(hx_str(json_object_get(hx_resp_json(r), "error"), "code"),
	                 "spool_unavailable");
	cr_assert_eq(json_array_size(hx_stub_requests()), 0);
	cr_assert_eq(json_array_size(hx_audit_wait(gw, 1, 5000)), 1);
	hx_resp_free(r);
	free(body);
	hx_gw_stop(gw);
}

/* limits.max_spool_bytes bounds what all large bodies hold on disk at
 * once: a create that would pass it gets a 503 to retry, and what a
 * finished one held is free again. */
Test(it_spool, the_spool_bound_refuses_a_body_that_would_pass_it)
{
	struct hx_gw *gw = hx_gw_start(inline_policy, "{\"limits\":{\"max_spool_bytes\":1048576}}");
	size_t len;
	char *body = large_body(3 << 20, -1, &len);
	struct hx_resp *r;

	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), json_headers, body, len);
	cr_assert_eq(r->status, 503, "%s", r->body);
	cr_assert_str_eq(hx_str(json_object_get(hx_resp_json(r), "error"), "code"), "spool_full");
	cr_assert_eq(json_array_size(hx_stub_requests()), 0);
	hx_resp_free(r);
	free(body);
	/* 1 MiB in memory and 0.5 MiB in the file: under the bound. */
	body = large_body(1536 * 1024, -1, &len);
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), json_headers, body, len);
	cr_assert_eq(r->status, 200, "%s", r->body);
	hx_resp_free(r);
	free(body);
	hx_gw_stop(gw);
}

/* Only an inline skill's "data" is set aside; the rest of a create, like
 * a body read whole, is at most 1 MiB. A 64 MiB description, or data
 * under a key written with an escape, is refused with 413 once that is
 * passed, holding little (196 MB before this bound, more than a body read
 * whole). */
/* pre, then n bytes of 'A', then post, in a new buffer. */
static char *
filled(const char *pre, size_t n, const char *post, size_t *len)
{
	size_t a = strlen(pre), b = strlen(post);
	char *buf = malloc(a + n + b + 1);

	cr_assert_not_null(buf);
	memcpy(buf, pre, a);
	memset(buf + a, 'A', n);
	memcpy(buf + a + n, post, b + 1);
	*len = a + n + b;
	return buf;
}

Test(it_spool, large_strings_elsewhere_are_refused_before_they_cost_memory)
{
	struct hx_gw *gw = hx_gw_start(inline_policy, NULL);
	size_t len;
	char *body;
	struct hx_resp *r;
	long before, after;

	before = hx_proc_kb(gw->proc->pid, "VmHWM");
	/* 64 MiB in the skill's description. */
	body = filled("{\"name\":\"big\",\"skills\":[{\"type\":\"inline\",\"name\":\"s\","
	              "\"description\":\"",
	              (size_t)64 << 20,
	              "\",\"source\":{\"type\":\"base64\",\"media_type\":\"application/zip\","
	              "\"data\":\"UEsDBA==\"}}]}",
	              &len);
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), json_headers, body, len);
	cr_assert_eq(r->status, 413, "%s", r->body);
	cr_assert_str_eq(hx_str(json_object_get(hx_resp_json(r), "error"), "code"),
	                 "request_too_large");
	hx_resp_free(r);
	free(body);
	/* 2 MiB of data under a key written with an escape. */
	body = filled("{\"name\":\"big\",\"skills\":[{\"type\":\"inline\",\"name\":\"s\","
	              "\"description\":\"d\",\"source\":{\"type\":\"base64\","
	              "\"media_type\":\"application/zip\",\"dat\\u0061\":\"",
	              (size_t)2 << 20, "\"}}]}", &len);
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), json_headers, body, len);
	cr_assert_eq(r->status, 413, "%s", r->body);
	hx_resp_free(r);
	free(body);
	after = hx_proc_kb(gw->proc->pid, "VmHWM");
	cr_log_info("refusing them grew the peak by %ld kB", after - before);
	if (getenv("GW_SANITIZED") == NULL)
		cr_expect_lt(after - before, 16 * 1024, "the peak grew by %ld kB", after - before);
	cr_assert_eq(json_array_size(hx_stub_requests()), 0);
	cr_assert_eq(json_array_size(hx_audit_wait(gw, 2, 5000)), 2);
	hx_gw_stop(gw);
}

/* A large create's body, though read as it arrives, must arrive whole
 * within limits.body_timeout_ms, as a body read whole must: a client
 * trickling it (17 KB every 700 ms) gets 408 after about a second rather
 * than holding a request and its spool for as long as it likes. */
Test(it_spool, a_trickled_large_body_times_out_as_a_whole)
{
	struct hx_gw *gw = hx_gw_start(inline_policy, "{\"limits\":{\"body_timeout_ms\":1000}}");
	size_t len, sent = 0;
	char *body = large_body(1200000, -1, &len);
	const char *head = hx_fmt("POST /v1/containers HTTP/1.1\r\nHost: x\r\n"
	                          "Authorization: Bearer sk-client\r\n"
	                          "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	                          len);
	long long start = hx_now_ms(), at = 0;
	const char *got = "";
	size_t n = 0;
	int fd = hx_raw_open(gw->port, head, strlen(head));

	cr_assert_geq(fd, 0);
	while (sent < len && hx_now_ms() - start < 4000) {
		size_t k = len - sent < 17000 ? len - sent : 17000;

		if (hx_raw_send(fd, body + sent, k) < 0)
			break;
		sent += k;
		got = hx_raw_read(fd, 700, &n); /* what has come back meanwhile */
		if (n > 0) {
			at = hx_now_ms() - start;
			break;
		}
	}
	cr_assert(strncmp(got, "HTTP/1.1 408", 12) == 0, "%.200s", got);
	cr_expect_lt(at, 2500, "the 408 came after %lld ms", at);
	cr_assert_eq(json_array_size(hx_stub_requests()), 0);
	cr_assert_eq(json_array_size(hx_audit_wait(gw, 1, 5000)), 1);
	free(body);
	hx_gw_stop(gw);
}

/* A 64 MiB create: the gateway's peak memory grows by far less than the
 * body (141 MiB before bodies were streamed). */
Test(it_spool, a_64_mib_create_leaves_the_gateways_memory_nearly_as_it_was)
{
	struct hx_gw *gw = hx_gw_start(inline_policy, NULL);
	size_t len, n = 64 << 20;
	char *body = large_body(n, -1, &len);
	struct hx_resp *r;
	long before, after;
	json_t *reqs;

	before = hx_proc_kb(gw->proc->pid, "VmHWM");
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), json_headers, body, len);
	cr_assert_eq(r->status, 200, "%s", r->body);
	after = hx_proc_kb(gw->proc->pid, "VmHWM");
	reqs = hx_stub_requests();
	cr_assert_eq(json_array_size(reqs), 1);
	cr_assert_gt(json_integer_value(json_object_get(json_array_get(reqs, 0), "body_len")),
	             (long long)n, "the upstream did not get the whole data");
	cr_log_info("a %zu-byte create grew the peak by %ld kB", len, after - before);
	/* Sanitizer builds keep freed memory in quarantine: the bound holds
	 * for the plain build. */
	if (getenv("GW_SANITIZED") == NULL)
		cr_expect_lt(after - before, 16 * 1024, "a 64 MiB create grew the peak by %ld kB",
		             after - before);
	hx_resp_free(r);
	free(body);
	hx_gw_stop(gw);
}
