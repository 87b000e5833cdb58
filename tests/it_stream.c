/*
 * it_stream: file uploads and downloads pass through the gateway as they
 * arrive, in bounded memory, and limits are counted on the bytes that
 * actually come, not on what Content-Length promised.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "harness.h"

TestSuite(it_stream, .init = hx_init, .fini = hx_fini, .timeout = 180);

static const char *const auth[] = {"Authorization: Bearer sk-stream-KEY", NULL};

static const char *
make_container(const struct hx_gw *gw)
{
	struct hx_resp *r =
	        hx_http("POST", hx_gw_url(gw, "/v1/containers"), auth, "{\"name\":\"stream\"}", 17);

	cr_assert_eq(r->status, 200, "%s", r->body);
	return hx_str(hx_resp_json(r), "id");
}

/* 200 MB up and back down; the gateway's peak memory moves by a few MB. */
Test(it_stream, a_200_mb_upload_and_download_stay_in_bounded_memory)
{
	struct hx_gw *gw = hx_gw_start(NULL, "{\"upstream\":{\"timeout_ms\":120000}}");
	const size_t size = 200u * 1024 * 1024;
	char *data = malloc(size);
	const char *cid = make_container(gw), *fid, *san = getenv("GW_SANITIZED");
	struct hx_part part = {"file", "big.bin", "application/octet-stream", data, size};
	struct hx_req rq = {.method = "POST",
	                    .url = hx_gw_url(gw, hx_fmt("/v1/containers/%s/files", cid)),
	                    .headers = auth,
	                    .parts = &part,
	                    .nparts = 1,
	                    .timeout_ms = 120000};
	struct hx_resp *r;
	long before, after;
	size_t i;
	json_t *recs;

	cr_assert_not_null(data);
	for (i = 0; i < size; i++)
		data[i] = (char)(i * 2654435761u >> 24);
	/* Warm up the paths first, so the baseline holds their buffers. */
	(void)hx_http("GET", hx_gw_url(gw, "/v1/containers"), auth, NULL, 0);
	before = hx_proc_kb(gw->proc->pid, "VmHWM");

	r = hx_request(&rq);
	cr_assert_eq(r->status, 200, "%ld %s %s", r->status, r->error, r->body);
	fid = hx_str(hx_resp_json(r), "id");
	cr_expect_eq(json_integer_value(json_object_get(hx_resp_json(r), "bytes")),
	             (json_int_t)size);

	r = hx_request(&(struct hx_req){
	        .url = hx_gw_url(gw, hx_fmt("/v1/containers/%s/files/%s/content", cid, fid)),
	        .headers = auth,
	        .timeout_ms = 120000});
	cr_assert_eq(r->status, 200, "%ld %s", r->status, r->error);
	cr_assert_eq(r->len, size);
	cr_expect_eq(memcmp(r->body, data, size), 0, "the bytes came back changed");
	after = hx_proc_kb(gw->proc->pid, "VmHWM");

	recs = hx_audit_wait(gw, 4, 5000);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(recs, 2), "bytes_in")) >
	                     (json_int_t)size,
	             1, "the upload's record counts its bytes");
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(recs, 3), "bytes_out")),
	             (json_int_t)size);
	cr_log_info("gateway peak resident memory: %ld kB before, %ld kB after 2 x 200 MB", before,
	            after);
	/* make sanitize and make tsan set GW_SANITIZED=1: ASan's quarantine
	 * and TSan's shadow memory are in their numbers, so the bound is only
	 * meaningful for the plain build. */
	if (san == NULL || strcmp(san, "1") != 0)
		cr_expect_lt(after - before, 8 * 1024, "peak memory grew by %ld kB",
		             after - before);
	free(data);
}

/* A chunked upload has no Content-Length to trust: the limit is counted on
 * the bytes as they pass. */
Test(it_stream, an_upload_limit_is_counted_while_streaming)
{
	struct hx_gw *gw = hx_gw_start("{\"files\":{\"max_upload_bytes\":100000}}", NULL);
	const char *cid = make_container(gw);
	const char *head = hx_fmt("POST /v1/containers/%s/files HTTP/1.1\r\nHost: x\r\n"
	                          "Content-Type: multipart/form-data; boundary=XyZ\r\n"
	                          "Transfer-Encoding: chunked\r\n\r\n",
	                          cid);
	const char *part = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
	                   "filename=\"a.bin\"\r\n\r\n";
	size_t chunk = 50000, n, total = 0, cap = 400000;
	char *req = malloc(cap), *payload = malloc(chunk);
	const char *out;
	int i;
	json_t *rec;

	memset(payload, 'q', chunk);
	total += (size_t)snprintf(req, cap, "%s%zx\r\n%s\r\n", head, strlen(part), part);
	for (i = 0; i < 4; i++) {
		total += (size_t)snprintf(req + total, cap - total, "%zx\r\n", chunk);
		memcpy(req + total, payload, chunk);
		total += chunk;
		memcpy(req + total, "\r\n", 2);
		total += 2;
	}
	out = hx_raw(gw->port, req, total, 10000, 0, &n);
	cr_assert_not_null(out);
	cr_expect_eq(strncmp(out, "HTTP/1.1 413", 12), 0, "%.200s", out);
	rec = json_array_get(hx_audit_wait(gw, 2, 5000), 1);
	cr_expect_str_eq(hx_str(rec, "code"), "request_too_large");
	cr_expect_lt(json_integer_value(json_object_get(rec, "bytes_in")), 200000);
	free(req);
	free(payload);
}

/* Sends a request, waits without reading a byte, and closes. */
static void
hang_up_after_asking(int port, const char *req)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), small = 4096;

	cr_assert_geq(fd, 0);
	/* A small receive window, so the answer backs up into the gateway. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	usleep(500 * 1000);
	close(fd);
}

/* The client leaving mid-download ends the upstream transfer and is
 * recorded. */
Test(it_stream, a_client_leaving_mid_download_is_recorded)
{
	struct hx_gw *gw = hx_gw_start(NULL, "{\"upstream\":{\"timeout_ms\":60000}}");
	const size_t size = 64u * 1024 * 1024;
	char *data = calloc(1, size);
	const char *cid = make_container(gw), *fid;
	struct hx_part part = {"file", "mid.bin", NULL, data, size};
	struct hx_resp *r;
	const char *get;
	json_t *rec;

	r = hx_request(
	        &(struct hx_req){.method = "POST",
	                         .url = hx_gw_url(gw, hx_fmt("/v1/containers/%s/files", cid)),
	                         .headers = auth,
	                         .parts = &part,
	                         .nparts = 1,
	                         .timeout_ms = 60000});
	cr_assert_eq(r->status, 200, "%s", r->body);
	fid = hx_str(hx_resp_json(r), "id");
	/* Ask, read nothing, hang up with nearly all of it unsent. */
	get = hx_fmt("GET /v1/containers/%s/files/%s/content HTTP/1.1\r\nHost: x\r\n\r\n", cid,
	             fid);
	hang_up_after_asking(gw->port, get);
	rec = json_array_get(hx_audit_wait(gw, 3, 10000), 2);
	cr_expect_str_eq(hx_str(rec, "operation"), "RetrieveContainerFileContent");
	cr_expect_str_eq(hx_str(rec, "decision"), "error");
	cr_expect_str_eq(hx_str(rec, "code"), "client_closed");
	cr_expect_lt(json_integer_value(json_object_get(rec, "bytes_out")), (json_int_t)size);
	free(data);
}

/* The upstream breaking off mid-answer: the client's answer ends early
 * (the connection closes before the last chunk) and the record says so. */
Test(it_stream, an_upstream_failing_mid_download_ends_the_answer_and_is_recorded)
{
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	const size_t size = 1u * 1024 * 1024;
	char *data = malloc(size);
	const char *cid = make_container(gw), *fid, *get, *out;
	struct hx_part part = {"file", "half.bin", NULL, data, size};
	struct hx_resp *r;
	size_t n;
	json_t *rec;

	memset(data, 'h', size);
	r = hx_request(
	        &(struct hx_req){.method = "POST",
	                         .url = hx_gw_url(gw, hx_fmt("/v1/containers/%s/files", cid)),
	                         .headers = auth,
	                         .parts = &part,
	                         .nparts = 1});
	cr_assert_eq(r->status, 200, "%s", r->body);
	fid = hx_str(hx_resp_json(r), "id");
	hx_stub_next("{\"action\":\"truncate\"}");
	get = hx_fmt("GET /v1/containers/%s/files/%s/content HTTP/1.1\r\nHost: x\r\n\r\n", cid,
	             fid);
	out = hx_raw(gw->port, get, strlen(get), 5000, 0, &n);
	cr_assert_not_null(out);
	cr_expect_eq(strncmp(out, "HTTP/1.1 200", 12), 0, "%.100s", out);
	cr_expect_not_null(strstr(out, "Transfer-Encoding: chunked"));
	/* Closed early: no terminating chunk, less than the whole file. */
	cr_expect(n < size, "got %zu bytes", n);
	cr_expect(n < 5 || memcmp(out + n - 5, "0\r\n\r\n", 5) != 0, "the answer looks complete");
	rec = json_array_get(hx_audit_wait(gw, 3, 5000), 2);
	cr_expect_str_eq(hx_str(rec, "decision"), "error");
	cr_expect_str_eq(hx_str(rec, "code"), "upstream_stream_failed");
	cr_expect_gt(json_integer_value(json_object_get(rec, "bytes_out")), 0);
	cr_expect_lt(json_integer_value(json_object_get(rec, "bytes_out")), (json_int_t)size);
	free(data);
}
