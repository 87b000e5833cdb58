#include "app/reply.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "app/context.h"
#include "app/request.h"
#include "app/snapshot.h"
#include "audit/audit.h"
#include "http/conn.h"
#include "http/upstream.h"
#include "lib/log.h"
#include "lib/secmem.h"
#include "lib/text.h"
#include "policy/policyset.h"
#include "policy/tenant.h"

#define MAX_HEADERS 16
#define MAX_RELAYED 12 /* headers of the upstream's answer passed back */

/* What the request's records say, at the moment it is asked. */
static void
describe(struct request *r, struct audit_event *ev, int status, const char *decision,
         const char *code, const char *param, const char *message)
{
	const struct request_record *rec = &r->rec;

	/* Let through only because a rule is in shadow mode: say what it
	 * would have refused. */
	if (strcmp(decision, "allow") == 0 && r->shadow != NULL && r->shadow->status) {
		decision = "shadow_deny";
		code = r->shadow->code;
		param = r->shadow->param;
		message = r->shadow->message;
	}
	memset(ev, 0, sizeof(*ev));
	/* Refused before its head was read: a trace of its own. */
	if (r->trace.trace_id[0] == '\0')
		trace_start(&r->trace, NULL, 0);
	ev->request_id = r->id;
	ev->trace_id = r->trace.trace_id;
	ev->span_id = r->trace.span_id;
	ev->parent_span_id = r->trace.parent_id;
	ev->sampled = r->trace.sampled;
	ev->tenant = r->tenant ? tenant_name(r->tenant) : NULL;
	ev->upstream_request_id = rec->upstream_request_id[0] ? rec->upstream_request_id : NULL;
	ev->credential = r->credential[0] ? r->credential : NULL;
	ev->person = r->person;
	ev->policy_version = policyset_version(snapshot_policies(r->snap));
	ev->client = r->http->client;
	ev->method = r->http->method[0] ? r->http->method : NULL;
	ev->path = r->http->path;
	ev->operation = r->operation;
	ev->decision = decision;
	ev->code = code;
	ev->param = param;
	ev->message = message;
	ev->status = status;
	ev->upstream_status = rec->upstream_status;
	ev->upstream_ms = rec->upstream_ms;
	ev->latency_ms = conn_req_elapsed_ms(r->http);
	ev->container_id = rec->container_id[0] ? rec->container_id : NULL;
	ev->file_id = r->file_id[0] ? r->file_id : NULL;
	ev->memory_limit = rec->memory_limit[0] ? rec->memory_limit : NULL;
	ev->network_policy = rec->network_policy;
	ev->adjustments = rec->adjustments;
	ev->violations =
	        rec->violations && json_array_size(rec->violations) ? rec->violations : NULL;
	ev->remediation = rec->remediation;
	ev->tool_containers = rec->tool_containers;
	ev->containers = rec->containers;
	ev->charged = r->budget.charged;
	ev->gb_minutes = r->budget.gb_minutes;
	ev->cost_usd = r->budget.usd;
	ev->bytes_in = r->http->body_seen;
	ev->bytes_out = rec->bytes_out;
}

int
reply_intent(struct request *r, void (*durable)(void *arg, int ok))
{
	struct audit_event ev;

	describe(r, &ev, 0, "allow", NULL, NULL, NULL);
	return audit_intent(r->ctx->audit, r->ctx->base, &ev, durable, r);
}

/* The request's audit record; every way a request ends comes here once. */
static void
audit(struct request *r, int status, const char *decision, const char *code, const char *param,
      const char *message)
{
	struct audit_event ev;

	describe(r, &ev, status, decision, code, param, message);
	audit_write(r->ctx->audit, &ev);
	if (r->ctx->done)
		r->ctx->done(r->ctx->done_arg, &ev);
}

/* The request is answered: the driver frees it (pipeline.c). */
static void
release(struct request *r)
{
	r->free_pending = 1;
}

struct headers {
	size_t n;
	const char *line[MAX_HEADERS];
	char ct[160], rid[200], ra[64];
	char relayed[1024];
};

/* The upstream's headers a client reads ("name: value" lines, each ended
 * by '\n', as upstream.h keeps them), passed back. */
static void
relay_headers(struct headers *h, const char *lines)
{
	char *p, *nl;

	text_copy(h->relayed, sizeof(h->relayed), lines ? lines : "");
	for (p = h->relayed; *p && h->n < MAX_HEADERS; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			break;
		*nl = '\0';
		h->line[h->n++] = p;
	}
}

static void
answer_headers(const struct request *r, struct headers *h, const char *content_type,
               const char *retry_after)
{
	h->n = 0;
	h->relayed[0] = '\0';
	text_join(h->ct, sizeof(h->ct), "Content-Type: ", content_type);
	h->line[h->n++] = h->ct;
	/* The upstream's id when it gave one, so support tickets match. */
	text_join(h->rid, sizeof(h->rid), "x-request-id: ",
	          r->rec.upstream_request_id[0] ? r->rec.upstream_request_id : r->id);
	h->line[h->n++] = h->rid;
	if (retry_after && *retry_after) {
		text_join(h->ra, sizeof(h->ra), "Retry-After: ", retry_after);
		h->line[h->n++] = h->ra;
	}
	if (r->no_retry)
		h->line[h->n++] = "x-should-retry: false";
}

/* Audit, then send: the record is on its way to disk before the client
 * hears anything. relayed: headers of the upstream's answer to pass back. */
static void
finish_with(struct request *r, int status, const char *decision, const char *code,
            const char *param, const char *message, const char *content_type, const char *body,
            size_t len, const char *retry_after, const char *relayed)
{
	struct headers h;

	if (r->replied) {
		log_msg(LOG_ERROR, r->id, "second reply to one request suppressed");
		return;
	}
	r->replied = 1;
	r->rec.bytes_out = len;
	audit(r, status, decision, code, param, message);
	answer_headers(r, &h, content_type, retry_after ? retry_after : r->retry_after);
	if (relayed)
		relay_headers(&h, relayed);
	conn_reply(r->http, status, h.line, h.n, body, len);
	release(r);
}

static void
finish(struct request *r, int status, const char *decision, const char *code, const char *param,
       const char *message, const char *content_type, const char *body, size_t len,
       const char *retry_after)
{
	finish_with(r, status, decision, code, param, message, content_type, body, len, retry_after,
	            NULL);
}

/* The upstream's own answer, passed back with its headers. */
static void
finish_relayed(struct request *r, int status, const char *content_type, const char *body,
               size_t len, const char *retry_after, const char *relayed)
{
	finish_with(r, status, "allow", NULL, NULL, NULL, content_type, body, len, retry_after,
	            relayed);
}

int
reply_stream_begin(struct request *r, const struct upstream_res *res)
{
	struct headers h;

	if (r->http->conn == NULL || r->replied)
		return -1;
	answer_headers(r, &h, res->content_type[0] ? res->content_type : "application/octet-stream",
	               res->retry_after);
	relay_headers(&h, res->relayed);
	if (conn_stream_begin(r->http, res->status, h.line, h.n, res->content_length) < 0)
		return -1;
	r->rec.stream_status = res->status;
	return 0;
}

void
reply_stream_data(struct request *r, const char *data, size_t n)
{
	r->rec.bytes_out += n;
	conn_stream_write(r->http, data, n);
}

int
reply_stream_full(const struct request *r)
{
	return conn_stream_full(r->http);
}

void
reply_stream_end(struct request *r, const struct err *e)
{
	if (r->replied)
		return;
	r->replied = 1;
	if (e)
		audit(r, r->rec.stream_status, "error", e->code, NULL, e->message);
	else
		audit(r, r->rec.stream_status, "allow", NULL, NULL, NULL);
	conn_stream_end(r->http, e == NULL);
	release(r);
}

void
reply_err(struct request *r, const struct err *e)
{
	int status = e->status ? e->status : 500;
	const char *type = e->type ? e->type : ERR_INTERNAL;
	json_t *doc;
	char buf[2048];
	size_t len = 0;

	doc = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", e->message, "type", type,
	                "param", e->param[0] ? e->param : NULL, "code", e->code);
	if (doc)
		len = json_dumpb(doc, buf, sizeof(buf), JSON_COMPACT);
	json_decref(doc);
	if (len == 0 || len > sizeof(buf))
		len = (size_t)snprintf(buf, sizeof(buf),
		                       "{\"error\":{\"message\":\"request failed\",\"type\":\"%s\","
		                       "\"param\":null,\"code\":null}}",
		                       type);
	finish(r, status, status >= 500 ? "error" : "deny", r->audit_code ? r->audit_code : e->code,
	       e->param, e->message, "application/json", buf, len, NULL);
}

void
reply_relay(struct request *r, const struct upstream_res *res)
{
	finish_relayed(r, res->status,
	               res->content_type[0] ? res->content_type : "application/json", res->body,
	               res->len, res->retry_after, res->relayed);
}

void
reply_kept(struct request *r)
{
	finish(r, r->answer.status, "allow", NULL, NULL, NULL, r->answer.type, r->answer.body,
	       r->answer.len, NULL);
}

void
reply_json(struct request *r, int status, const json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT);
	struct err e;

	if (text == NULL) {
		err_set(&e, 503, ERR_INTERNAL, "out_of_memory", NULL,
		        "the gateway ran out of memory; try again");
		reply_err(r, &e);
		return;
	}
	finish(r, status, "allow", NULL, NULL, NULL, "application/json", text, strlen(text), NULL);
	secmem_json_free(text);
}
