#include "reply.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "conn.h"
#include "front.h"
#include "log.h"
#include "request.h"
#include "secmem.h"
#include "server.h"
#include "upstream.h"

#define MAX_HEADERS 4

/* Audit, then send: the record is on its way to disk before the client
 * hears anything. */
static void
finish(struct request *r, int status, const char *decision, const char *code, const char *param,
       const char *message, const char *content_type, const char *body, size_t len,
       const char *retry_after)
{
	struct audit_event ev = {0};
	const char *headers[MAX_HEADERS];
	char ct[160], rid[200], ra[64];
	size_t n = 0;

	if (r->replied) {
		log_msg(LOG_ERROR, r->id, "second reply to one request suppressed");
		return;
	}
	r->replied = 1;

	ev.request_id = r->id;
	ev.upstream_request_id = r->upstream_request_id[0] ? r->upstream_request_id : NULL;
	ev.client = r->client;
	ev.method = r->method[0] ? r->method : NULL;
	ev.path = r->path;
	ev.operation = front_operation(r);
	ev.decision = decision;
	ev.code = code;
	ev.param = param;
	ev.message = message;
	ev.status = status;
	ev.upstream_status = r->upstream_status;
	ev.upstream_ms = r->upstream_ms;
	ev.latency_ms = request_elapsed_ms(r);
	ev.container_id = r->audit_container_id[0] ? r->audit_container_id : NULL;
	ev.memory_limit = r->memory_limit[0] ? r->memory_limit : NULL;
	ev.network_policy = r->audit_network_policy;
	ev.adjustments = r->adjustments;
	ev.violations = r->violations && json_array_size(r->violations) ? r->violations : NULL;
	audit_write(server_audit(r->srv), &ev);

	snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
	headers[n++] = ct;
	/* The upstream's id when it gave one, so support tickets match. */
	snprintf(rid, sizeof(rid), "x-request-id: %s",
	         r->upstream_request_id[0] ? r->upstream_request_id : r->id);
	headers[n++] = rid;
	if (retry_after && *retry_after) {
		snprintf(ra, sizeof(ra), "Retry-After: %s", retry_after);
		headers[n++] = ra;
	}
	if (r->conn)
		conn_send(r->conn, r, status, headers, n, body, len);
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
