#include "app/reply.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "http/conn.h"
#include "app/front.h"
#include "lib/log.h"
#include "app/request.h"
#include "lib/secmem.h"
#include "server.h"
#include "policy/tenant.h"
#include "http/upstream.h"

#define MAX_HEADERS 4

/* What the request's records say, at the moment it is asked. */
static void
describe(struct request *r, struct audit_event *ev, int status, const char *decision,
         const char *code, const char *param, const char *message)
{
	/* Let through only because a rule is in shadow mode: say what it
	 * would have refused. */
	if (strcmp(decision, "allow") == 0 && r->shadow.status) {
		decision = "shadow_deny";
		code = r->shadow.code;
		param = r->shadow.param;
		message = r->shadow.message;
	}
	memset(ev, 0, sizeof(*ev));
	ev->request_id = r->id;
	ev->tenant = r->tenant ? tenant_name(r->tenant) : NULL;
	ev->upstream_request_id = r->upstream_request_id[0] ? r->upstream_request_id : NULL;
	ev->client = r->client;
	ev->method = r->method[0] ? r->method : NULL;
	ev->path = r->path;
	ev->operation = front_operation(r);
	ev->decision = decision;
	ev->code = code;
	ev->param = param;
	ev->message = message;
	ev->status = status;
	ev->upstream_status = r->upstream_status;
	ev->upstream_ms = r->upstream_ms;
	ev->latency_ms = request_elapsed_ms(r);
	ev->container_id = r->audit_container_id[0] ? r->audit_container_id : NULL;
	ev->file_id = r->file_id[0] ? r->file_id : NULL;
	ev->memory_limit = r->memory_limit[0] ? r->memory_limit : NULL;
	ev->network_policy = r->audit_network_policy;
	ev->adjustments = r->adjustments;
	ev->violations = r->violations && json_array_size(r->violations) ? r->violations : NULL;
	ev->remediation = r->remediation;
	ev->bytes_in = r->body_seen;
	ev->bytes_out = r->bytes_out;
}

int
reply_intent(struct request *r, void (*durable)(void *arg, int ok))
{
	struct audit_event ev;

	describe(r, &ev, 0, "allow", NULL, NULL, NULL);
	return audit_intent(server_audit(r->srv), server_base(r->srv), &ev, durable, r);
}

/* The request's audit record; every way a request ends comes here once. */
static void
audit(struct request *r, int status, const char *decision, const char *code, const char *param,
      const char *message)
{
	struct audit_event ev;

	describe(r, &ev, status, decision, code, param, message);
	audit_write(server_audit(r->srv), &ev);
	server_request_done(r->srv, &ev);
}

struct headers {
	size_t n;
	const char *line[MAX_HEADERS];
	char ct[160], rid[200], ra[64];
};

static void
answer_headers(const struct request *r, struct headers *h, const char *content_type,
               const char *retry_after)
{
	h->n = 0;
	snprintf(h->ct, sizeof(h->ct), "Content-Type: %s", content_type);
	h->line[h->n++] = h->ct;
	/* The upstream's id when it gave one, so support tickets match. */
	snprintf(h->rid, sizeof(h->rid), "x-request-id: %s",
	         r->upstream_request_id[0] ? r->upstream_request_id : r->id);
	h->line[h->n++] = h->rid;
	if (retry_after && *retry_after) {
		snprintf(h->ra, sizeof(h->ra), "Retry-After: %s", retry_after);
		h->line[h->n++] = h->ra;
	}
}

/* Audit, then send: the record is on its way to disk before the client
 * hears anything. */
static void
finish(struct request *r, int status, const char *decision, const char *code, const char *param,
       const char *message, const char *content_type, const char *body, size_t len,
       const char *retry_after)
{
	struct headers h;

	if (r->replied) {
		log_msg(LOG_ERROR, r->id, "second reply to one request suppressed");
		return;
	}
	r->replied = 1;
	r->bytes_out = len;
	audit(r, status, decision, code, param, message);
	answer_headers(r, &h, content_type, retry_after ? retry_after : r->retry_after);
	if (r->conn)
		conn_send(r->conn, r, status, h.line, h.n, body, len);
	else
		request_free(r);
}

int
reply_stream_begin(struct request *r, const struct upstream_res *res)
{
	struct headers h;

	if (r->conn == NULL || r->replied)
		return -1;
	r->stream_status = res->status;
	answer_headers(r, &h, res->content_type[0] ? res->content_type : "application/octet-stream",
	               NULL);
	conn_stream_begin(r->conn, res->status, h.line, h.n, res->content_length);
	return 0;
}

int
reply_stream_data(struct request *r, const char *data, size_t n)
{
	if (r->conn == NULL)
		return 1;
	r->bytes_out += n;
	conn_stream_write(r->conn, data, n);
	return conn_stream_full(r->conn);
}

int
reply_stream_full(const struct request *r)
{
	return r->conn == NULL || conn_stream_full(r->conn);
}

void
reply_stream_end(struct request *r, const struct err *e)
{
	if (r->replied)
		return;
	r->replied = 1;
	if (e)
		audit(r, r->stream_status, "error", e->code, NULL, e->message);
	else
		audit(r, r->stream_status, "allow", NULL, NULL, NULL);
	if (r->conn)
		conn_stream_end(r->conn, r, e == NULL);
	else
		request_free(r);
}

void
reply_error(struct request *r, int status, const char *type, const char *param, const char *code,
            const char *message)
{
	json_t *doc;
	char buf[2048];
	size_t len = 0;

	doc = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", message, "type", type,
	                "param", param && *param ? param : NULL, "code", code);
	if (doc)
		len = json_dumpb(doc, buf, sizeof(buf), JSON_COMPACT);
	json_decref(doc);
	if (len == 0 || len > sizeof(buf))
		len = (size_t)snprintf(buf, sizeof(buf),
		                       "{\"error\":{\"message\":\"request failed\",\"type\":\"%s\","
		                       "\"param\":null,\"code\":null}}",
		                       type);
	finish(r, status, status >= 500 ? "error" : "deny", code, param, message,
	       "application/json", buf, len, NULL);
}

void
reply_err(struct request *r, const struct err *e)
{
	reply_error(r, e->status ? e->status : 500, e->type ? e->type : ERR_INTERNAL, e->param,
	            e->code, e->message);
}

void
reply_relay(struct request *r, const struct upstream_res *res)
{
	finish(r, res->status, "allow", NULL, NULL, NULL,
	       res->content_type[0] ? res->content_type : "application/json", res->body, res->len,
	       res->retry_after);
}

void
reply_kept(struct request *r)
{
	finish(r, r->answer_status, "allow", NULL, NULL, NULL, r->answer_type, r->answer,
	       r->answer_len, NULL);
}

void
reply_json(struct request *r, int status, const json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT);

	if (text == NULL) {
		reply_error(r, 503, ERR_INTERNAL, NULL, "out_of_memory",
		            "the gateway ran out of memory; try again");
		return;
	}
	finish(r, status, "allow", NULL, NULL, NULL, "application/json", text, strlen(text), NULL);
	secmem_json_free(text);
}
