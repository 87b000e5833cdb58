#include "app/transfer.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/call.h"
#include "app/reply.h"
#include "app/request.h"
#include "app/tenancy.h"
#include "http/conn.h"
#include "http/multipart.h"
#include "lib/log.h"
#include "policy/check.h"
#include "policy/policy.h"

/* --- uploads ------------------------------------------------------------ */

/* An upload's own state: its body as checked so far, and the Content-Type
 * (with the boundary) it goes upstream with. */
struct upload {
	struct multipart *multipart;
	char content_type[256];
};

static void
upload_free(void *arg)
{
	struct upload *u = arg;

	if (u == NULL)
		return;
	multipart_free(u->multipart);
	free(u);
}

/* The upload's bytes go to the upstream exactly as they came, checked as
 * multipart on the way; a bad part stops the transfer before it is whole. */
static size_t
upload_read(void *arg, char *buf, size_t n)
{
	struct request *r = arg;
	struct conn_req *http = r->http;
	struct upload *u = r->op;
	size_t k = (size_t)evbuffer_remove(http->stream_in, buf, n);

	if (http->stream_error.status)
		return UPSTREAM_ABORT;
	if (k > 0) {
		if (multipart_feed(u->multipart, buf, k, &http->stream_error) < 0)
			return UPSTREAM_ABORT;
		conn_stream_resume(http);
		return k;
	}
	if (!http->body_done) {
		r->paused = 1;
		return UPSTREAM_PAUSE;
	}
	if (multipart_feed(u->multipart, "", 0, &http->stream_error) != 1) {
		if (http->stream_error.status == 0)
			err_set(&http->stream_error, 400, ERR_INVALID, "invalid_multipart", NULL,
			        "the multipart body ended before its closing delimiter");
		return UPSTREAM_ABORT;
	}
	if (!multipart_has(u->multipart, "file") && !multipart_has(u->multipart, "file_id")) {
		err_set(&http->stream_error, 400, ERR_INVALID, "missing_required_parameter", "file",
		        "the upload has neither a \"file\" part nor a \"file_id\" field");
		return UPSTREAM_ABORT;
	}
	return 0;
}

static void
on_upload_event(struct request *r, int event)
{
	if (event == CONN_EV_FAILED) {
		pipeline_fail(r, &r->http->stream_error);
		return;
	}
	if (r->paused && r->call) {
		r->paused = 0;
		upstream_resume(r->call);
	}
}

/* The body may have failed while the tenant was admitted; then that is
 * the answer. Otherwise the upload is set up to be checked on its way. */
static enum step_result
prepare_upload(struct request *r)
{
	static const char *const parts[] = {"file", "file_id", NULL};
	struct conn_req *http = r->http;
	long long limit = policy_max_upload_bytes(r->policy);
	struct upload *u;
	const char *ct;
	size_t ct_len;

	if (http->stream_error.status) {
		r->error = http->stream_error;
		return STEP_FAIL;
	}
	if (http->head.content_length > limit) {
		err_set(&r->error, 413, ERR_INVALID, "request_too_large", NULL,
		        "the upload is larger than %s limit of %lld bytes (files.max_upload_bytes)",
		        policy_whose(r->policy), limit);
		return STEP_FAIL;
	}
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		err_set(&r->error, 503, ERR_INTERNAL, "out_of_memory", NULL,
		        "the gateway is out of memory; try again");
		return STEP_FAIL;
	}
	r->op = u;
	r->op_free = upload_free;
	ct = httpmsg_header(&http->head, "Content-Type", &ct_len);
	u->multipart = multipart_new(ct, ct_len, parts, &r->error);
	if (u->multipart == NULL || ct_len >= sizeof(u->content_type)) {
		if (r->error.status == 0)
			err_set(&r->error, 400, ERR_INVALID, "invalid_multipart", NULL,
			        "the Content-Type header is too long");
		return STEP_FAIL;
	}
	snprintf(u->content_type, sizeof(u->content_type), "%.*s", (int)ct_len, ct);
	http->body_limit = (uint64_t)limit;
	http->body_limit_key = "files.max_upload_bytes";
	r->on_event = on_upload_event;
	snprintf(r->rec.container_id, sizeof(r->rec.container_id), "%s", r->container_id);
	return STEP_NEXT;
}

static void
on_uploaded(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;

	call_note(r, res);
	r->on_event = NULL;
	if (r->http->stream_error.status) { /* the upload stopped on our side */
		r->error = r->http->stream_error;
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	if (!call_succeeded(res)) {
		pipeline_resume(r, call_unsuccessful(r, res));
		return;
	}
	if (request_keep_answer(r, res) < 0) {
		err_set(&r->error, 503, ERR_INTERNAL, "out_of_memory", NULL,
		        "the gateway ran out of memory; try again");
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	pipeline_resume(r, STEP_NEXT);
}

static enum step_result
upload(struct request *r)
{
	struct upload *u = r->op;
	struct upstream_req up = {0};

	up.method = "POST";
	up.path = r->upstream_path;
	up.read = upload_read;
	up.body_size = r->http->head.chunked ? -1 : r->http->head.content_length;
	return call_start(r, &up, 0, u->content_type, on_uploaded);
}

const struct step transfer_upload_steps[] = {
        {"admit", tenancy_admit},     {"prepare", prepare_upload},
        {"intent", call_intent},      {"upload", upload},
        {"check", call_check},        {"note", call_note_file},
        {"answer", call_answer_kept}, {NULL, NULL},
};

/* --- downloads ---------------------------------------------------------- */

static int
download_head(void *arg, const struct upstream_res *res)
{
	struct request *r = arg;

	if (res->status < 200 || res->status > 299)
		return 0; /* an error: buffered and relayed whole */
	return reply_stream_begin(r, res) == 0;
}

static size_t
download_data(void *arg, const char *data, size_t n)
{
	struct request *r = arg;

	/* Held back, not dropped: libcurl hands the same bytes over again. */
	if (reply_stream_full(r)) {
		r->paused = 1;
		return UPSTREAM_PAUSE;
	}
	reply_stream_data(r, data, n);
	return n;
}

static void
on_download_event(struct request *r, int event)
{
	if (event == CONN_EV_FAILED) {
		pipeline_fail(r, &r->http->stream_error);
		return;
	}
	if (event == CONN_EV_DRAINED && r->paused && r->call) {
		r->paused = 0;
		upstream_resume(r->call);
	}
}

static void
on_downloaded(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;

	call_note(r, res);
	r->on_event = NULL;
	if (!res->streamed) {
		pipeline_resume(r, call_unsuccessful(r, res));
		return;
	}
	if (res->failure == UPSTREAM_OK) {
		reply_stream_end(r, NULL);
		pipeline_resume(r, STEP_DONE);
		return;
	}
	log_msg(LOG_WARN, r->id, "upstream answer broke off after %zu bytes: %s", res->bytes,
	        res->error);
	err_set(&r->error, 502, ERR_UPSTREAM, "upstream_stream_failed", NULL,
	        "the upstream's answer broke off after %zu bytes", res->bytes);
	pipeline_resume(r, STEP_FAIL);
}

static enum step_result
download(struct request *r)
{
	struct upstream_req up = {0};

	snprintf(r->rec.container_id, sizeof(r->rec.container_id), "%s", r->container_id);
	r->on_event = on_download_event;
	up.method = "GET";
	up.path = r->upstream_path;
	up.retry_connect = 1;
	up.on_head = download_head;
	up.on_data = download_data;
	return call_start(r, &up, 0, NULL, on_downloaded);
}

const struct step transfer_download_steps[] = {
        {"admit", tenancy_admit},
        {"intent", call_intent},
        {"download", download},
        {NULL, NULL},
};

/* --- relay ---------------------------------------------------------------- */

/* A streamed body goes up as it arrives, as it came. */
static size_t
relay_read(void *arg, char *buf, size_t n)
{
	struct request *r = arg;
	struct conn_req *http = r->http;
	size_t k;

	if (http->stream_error.status)
		return UPSTREAM_ABORT;
	k = (size_t)evbuffer_remove(http->stream_in, buf, n);
	if (k > 0) {
		conn_stream_resume(http);
		return k;
	}
	if (!http->body_done) {
		r->paused = 1;
		return UPSTREAM_PAUSE;
	}
	return 0;
}

static int
relay_head(void *arg, const struct upstream_res *res)
{
	struct request *r = arg;

	/* Every answer streams back as it comes, its status whatever it is;
	 * with the client gone it is read whole and dropped. */
	return reply_stream_begin(r, res) == 0;
}

static size_t
relay_data(void *arg, const char *data, size_t n)
{
	struct request *r = arg;

	/* Held back, not dropped: libcurl hands the same bytes over again. */
	if (reply_stream_full(r)) {
		r->paused = 1;
		return UPSTREAM_PAUSE;
	}
	if (r->observe)
		r->observe(r, data, n);
	reply_stream_data(r, data, n);
	return n;
}

/* The client's events: its body arrived (the upload may go on), its side
 * drained (the answer may go on), or it left (the call is cancelled). */
static void
on_relay_event(struct request *r, int event)
{
	if (event == CONN_EV_FAILED) {
		pipeline_fail(r, &r->http->stream_error);
		return;
	}
	if (r->paused && r->call) {
		r->paused = 0;
		upstream_resume(r->call);
	}
}

static void
on_relayed(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;

	call_note(r, res);
	r->on_event = NULL;
	if (r->http->stream_error.status) { /* the upload stopped on our side */
		r->error = r->http->stream_error;
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	if (!res->streamed) {
		pipeline_resume(r, call_unsuccessful(r, res));
		return;
	}
	if (res->failure == UPSTREAM_OK && r->relay_keeps_open) {
		pipeline_resume(r, STEP_NEXT); /* a later step ends the answer */
		return;
	}
	if (res->failure == UPSTREAM_OK) {
		reply_stream_end(r, NULL);
		pipeline_resume(r, STEP_DONE);
		return;
	}
	log_msg(LOG_WARN, r->id, "upstream answer broke off after %zu bytes: %s", res->bytes,
	        res->error);
	err_set(&r->error, 502, ERR_UPSTREAM, "upstream_stream_failed", NULL,
	        "the upstream's answer broke off after %zu bytes", res->bytes);
	/* What it said before it broke may still matter to the later step
	 * (containers it named were made): that step ends the answer. */
	if (r->relay_keeps_open) {
		r->relay_broke = 1;
		pipeline_resume(r, STEP_NEXT);
		return;
	}
	pipeline_resume(r, STEP_FAIL);
}

enum step_result
transfer_stream(struct request *r, const char *body, size_t len, int keep_open)
{
	struct conn_req *http = r->http;
	struct upstream_req up = {0};
	char ct[256];

	if (http->stream_error.status) {
		r->error = http->stream_error;
		return STEP_FAIL;
	}
	r->on_event = on_relay_event;
	r->relay_keeps_open = keep_open;
	up.method = http->method;
	up.path = r->upstream_path;
	if (body) {
		up.body = body;
		up.body_len = len;
	} else if (http->stream_in) {
		up.read = relay_read;
		up.body_size = http->head.chunked ? -1 : http->head.content_length;
	} else {
		up.body = http->body;
		up.body_len = http->body_len;
	}
	up.retry_connect = strcmp(http->method, "GET") == 0;
	up.on_head = relay_head;
	up.on_data = relay_data;
	return call_start(r, &up, body != NULL,
	                  body ? NULL : request_header(r, "Content-Type", ct, sizeof(ct)),
	                  on_relayed);
}

/* The request goes upstream as it came: its method, path and query, its
 * body (read whole, or passed on as it arrives) with its own Content-Type;
 * the answer comes back as it arrives, whatever it is. */
static enum step_result
relay(struct request *r)
{
	return transfer_stream(r, NULL, 0, 0);
}

const struct step transfer_relay_steps[] = {
        {"admit", tenancy_admit},
        {"intent", call_intent},
        {"relay", relay},
        {NULL, NULL},
};
