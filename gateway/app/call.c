#include "app/call.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "app/config.h"
#include "app/context.h"
#include "app/reply.h"
#include "app/request.h"
#include "audit/audit.h"
#include "http/conn.h"
#include "lib/jsondoc.h"
#include "lib/log.h"
#include "lib/secmem.h"
#include "policy/check.h"
#include "policy/policy.h"
#include "policy/tenant.h"

/* Client headers that go upstream besides the key, in passthrough mode;
 * everything else stays here. */
static const char *const forwarded_headers[] = {"OpenAI-Organization", "OpenAI-Project", NULL};

/* Client headers every request passes on: what the API reads of them
 * (a beta's name, an idempotency key) carries no identity. */
static const char *const passed_headers[] = {"OpenAI-Beta", "Idempotency-Key", NULL};

#define MAX_UP_HEADERS 16
#define HEADER_LINE    1024

struct header_lines {
	size_t n;
	char line[MAX_UP_HEADERS][HEADER_LINE];
	size_t len[MAX_UP_HEADERS];
	const char *ptr[MAX_UP_HEADERS];
};

/* "name: value", cut to HEADER_LINE - 1 bytes. */
static void
add_header(struct header_lines *h, const char *name, const char *value)
{
	size_t nlen = strlen(name), vlen = strlen(value), o;
	char *l;

	if (h->n == MAX_UP_HEADERS || nlen + 2 >= HEADER_LINE)
		return;
	l = h->line[h->n];
	memcpy(l, name, nlen);
	memcpy(l + nlen, ": ", 2);
	o = nlen + 2;
	if (vlen > HEADER_LINE - 1 - o)
		vlen = HEADER_LINE - 1 - o;
	memcpy(l + o, value, vlen);
	l[o + vlen] = '\0';
	h->len[h->n] = o + vlen;
	h->ptr[h->n] = l;
	h->n++;
}

/* Wipes the lines written (they may hold the key), not the whole 16 KiB. */
static void
wipe_headers(struct header_lines *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		secmem_wipe(h->line[i], h->len[i]);
	h->n = 0;
}

/* A tracestate passed on as it came: printable ASCII, at most 512 bytes
 * (the specification's limit), read once (request_header is NULL for a
 * longer one). */
static int
tracestate_ok(const char *v)
{
	for (; *v; v++)
		if (*v < 0x20 || *v > 0x7e)
			return 0;
	return 1;
}

/* Builds the upstream's header lines; they may hold the client's key, so
 * the caller wipes them once the call has copied them. The key is the
 * one authentication identified, written canonically. */
static void
upstream_headers(const struct request *r, struct header_lines *h, int json_body,
                 const char *content_type)
{
	const char *upstream_key = r->cfg->upstream_api_key;
	/* A token is no upstream key: its requests go with the
	 * organization's, as in gateway_keys mode. */
	int gateway_keys = strcmp(r->cfg->auth_mode, "gateway_keys") == 0 || r->token;
	char value[HEADER_LINE - 64], trace[TRACE_HEADER + 1];
	size_t i;

	h->n = 0;
	/* In gateway_keys mode the client's key never leaves the gateway. */
	if (gateway_keys && upstream_key) {
		snprintf(value, sizeof(value), "Bearer %s", upstream_key);
		add_header(h, "Authorization", value);
	} else if (!gateway_keys && r->bearer && r->bearer_len < sizeof(value) - 8) {
		snprintf(value, sizeof(value), "Bearer %.*s", (int)r->bearer_len, r->bearer);
		add_header(h, "Authorization", value);
	}
	/* Beside the organization's key, the organization says which of its
	 * organizations and projects pays; beside their own, clients do. */
	if (gateway_keys) {
		const char *org = r->tenant ? tenant_upstream_organization(r->tenant) : NULL;
		const char *project = r->tenant ? tenant_upstream_project(r->tenant) : NULL;

		/* A tenant may be billed to its own project. */
		org = org ? org : r->cfg->upstream_organization;
		project = project ? project : r->cfg->upstream_project;
		if (org)
			add_header(h, "OpenAI-Organization", org);
		if (project)
			add_header(h, "OpenAI-Project", project);
	} else {
		for (i = 0; forwarded_headers[i]; i++)
			if (request_header(r, forwarded_headers[i], value, sizeof(value)))
				add_header(h, forwarded_headers[i], value);
	}
	for (i = 0; passed_headers[i]; i++)
		if (request_header(r, passed_headers[i], value, sizeof(value)))
			add_header(h, passed_headers[i], value);
	if (json_body)
		add_header(h, "Content-Type", "application/json");
	add_header(h, "Accept",
	           request_header(r, "Accept", value, sizeof(value)) ? value : "application/json");
	add_header(h, "User-Agent", "containers-gateway/" GW_VERSION);
	add_header(h, "X-Gateway-Request-Id", r->id);
	/* The upstream's spans, if it keeps any, hang off the gateway's. */
	trace_header(&r->trace, trace);
	add_header(h, "traceparent", trace);
	if (r->trace.parent_id[0] && request_header(r, "tracestate", value, 513) &&
	    tracestate_ok(value))
		add_header(h, "tracestate", value);
	/* An upload's own Content-Type carries the boundary its body uses. */
	if (content_type)
		add_header(h, "Content-Type", content_type);
	secmem_wipe(value, sizeof(value));
}

static void
refuse_unaudited(struct request *r)
{
	err_set(&r->error, 503, ERR_INTERNAL, "audit_unavailable", NULL,
	        "the gateway cannot write its audit log, so it forwards nothing; try again "
	        "shortly");
}

static void
stop_intent_timer(struct request *r)
{
	if (r->intent_timer)
		event_free(r->intent_timer);
	r->intent_timer = NULL;
}

static void
on_intent_durable(void *arg, int ok)
{
	struct request *r = arg;

	r->intent_pending = 0;
	stop_intent_timer(r);
	if (!ok && !audit_available(r->ctx->audit)) {
		refuse_unaudited(r);
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	pipeline_resume(r, STEP_NEXT);
}

/* The log has not taken the intent in audit.intent_timeout_ms (a disk
 * full or too slow). fail_closed: nothing goes upstream, and the client
 * hears so now rather than when, or if, the log takes it; its line is
 * still written then, before the request's own record says it was
 * refused. fail_open serves on without waiting, as it does for lines it
 * cannot write. */
static void
on_intent_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct request *r = arg;

	(void)fd;
	(void)what;
	audit_forget(r->ctx->audit, r);
	r->intent_pending = 0;
	stop_intent_timer(r);
	if (strcmp(r->cfg->audit_on_failure, "fail_open") == 0) {
		pipeline_resume(r, STEP_NEXT);
		return;
	}
	refuse_unaudited(r);
	pipeline_resume(r, STEP_FAIL);
}

enum step_result
call_intent(struct request *r)
{
	int rc = reply_intent(r, on_intent_durable);
	long long ms = r->cfg->audit_intent_timeout_ms;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

	if (rc == 0) {
		r->intent_pending = 1;
		/* Without a timer (no memory) it waits for the log, as before. */
		r->intent_timer = evtimer_new(r->ctx->base, on_intent_timeout, r);
		if (r->intent_timer)
			evtimer_add(r->intent_timer, &tv);
		return STEP_WAIT;
	}
	if (rc < 0 && !audit_available(r->ctx->audit)) {
		refuse_unaudited(r);
		return STEP_FAIL;
	}
	return STEP_NEXT;
}

enum step_result
call_start(struct request *r, struct upstream_req *up, int json_body, const char *content_type,
           upstream_done_fn done)
{
	struct header_lines h;

	err_clear(&r->error);
	upstream_headers(r, &h, json_body, content_type);
	up->headers = h.ptr;
	up->nheaders = h.n;
	r->call = upstream_start(r->ctx->upstream, up, done, r, &r->error);
	wipe_headers(&h);
	return r->call ? STEP_WAIT : STEP_FAIL;
}

void
call_note(struct request *r, const struct upstream_res *res)
{
	r->call = NULL;
	r->rec.upstream_status = res->status;
	r->rec.upstream_ms = res->ms;
	snprintf(r->rec.upstream_request_id, sizeof(r->rec.upstream_request_id), "%s",
	         res->request_id);
}

int
call_succeeded(const struct upstream_res *res)
{
	return res->failure == UPSTREAM_OK && res->status >= 200 && res->status <= 299;
}

int
call_may_have_acted(const struct upstream_res *res)
{
	return res->failure != UPSTREAM_OK && res->sent;
}

/* The client hears what kind of failure it was; the operator's log gets
 * libcurl's detail, which names hosts and addresses. */
void
call_failure(struct request *r, const struct upstream_res *res)
{
	log_msg(LOG_WARN, r->id, "upstream call failed: %s", res->error);
	switch (res->failure) {
	case UPSTREAM_TIMEOUT:
		err_set(&r->error, 504, ERR_UPSTREAM, "upstream_timeout", NULL,
		        "the upstream did not answer within this gateway's time limit");
		break;
	case UPSTREAM_TOO_LARGE:
		err_set(&r->error, 502, ERR_UPSTREAM, "upstream_response_too_large", NULL,
		        "the upstream's answer exceeded upstream.max_response_bytes");
		break;
	case UPSTREAM_MALFORMED:
		err_set(&r->error, 502, ERR_UPSTREAM, "bad_upstream_response", NULL,
		        "the upstream's answer had two different Content-Length headers, so its "
		        "end "
		        "could not be told; it was discarded");
		break;
	default:
		err_set(&r->error, 502, ERR_UPSTREAM, "upstream_unreachable", NULL,
		        "the upstream could not be reached or did not complete its answer");
		break;
	}
}

enum step_result
call_unsuccessful(struct request *r, const struct upstream_res *res)
{
	if (res->failure != UPSTREAM_OK) {
		call_failure(r, res);
		return STEP_FAIL;
	}
	reply_relay(r, res);
	return STEP_DONE;
}

void
call_withheld(struct request *r)
{
	char *line;
	size_t o, i;
	json_t *v;

	o = (size_t)snprintf(r->error.message, sizeof(r->error.message),
	                     "%s, so this gateway withheld it:",
	                     strcmp(r->http->method, "POST") == 0 && r->rec.memory_limit[0]
	                             ? "the upstream created a container that does not match what "
	                               "was asked for"
	                             : "the upstream's answer does not match the API's contract");
	json_array_foreach(r->rec.violations, i, v)
	{
		line = json_dumps(v, JSON_COMPACT);
		if (line && o < sizeof(r->error.message))
			o += (size_t)snprintf(r->error.message + o, sizeof(r->error.message) - o,
			                      " %s", line);
		secmem_json_free(line);
	}
	r->error.status = 502;
	r->error.type = ERR_UPSTREAM;
	r->error.code = "upstream_violation";
	r->error.param[0] = '\0';
}

int
call_check_answer(struct request *r, const char *body, size_t len)
{
	err_clear(&r->error);
	if ((r->rec.violations == NULL && (r->rec.violations = json_array()) == NULL) ||
	    check_response(&r->expect, body, len, r->rec.violations, &r->error) < 0) {
		if (r->error.status == 0)
			err_set(&r->error, 503, ERR_INTERNAL, "out_of_memory", NULL,
			        "the gateway ran out of memory; try again");
		return -1;
	}
	return (int)json_array_size(r->rec.violations);
}

enum step_result
call_check(struct request *r)
{
	int n = call_check_answer(r, r->answer.body, r->answer.len);

	if (n < 0)
		return STEP_FAIL;
	if (n > 0) {
		log_msg(LOG_WARN, r->id, "upstream answer to %s does not match the spec",
		        r->operation);
		if (policy_violation_mode(r->policy) != POLICY_VIOLATION_LOG) {
			call_withheld(r);
			return STEP_FAIL;
		}
	}
	return STEP_NEXT;
}

enum step_result
call_note_file(struct request *r)
{
	struct err e;
	json_t *doc = jsondoc_parse(r->answer.body, r->answer.len, &e);
	const char *id = json_string_value(json_object_get(doc, "id"));

	if (id && strlen(id) <= REQUEST_ID_MAX)
		snprintf(r->file_id, sizeof(r->file_id), "%s", id);
	json_decref(doc);
	return STEP_NEXT;
}

enum step_result
call_answer_kept(struct request *r)
{
	reply_kept(r);
	return STEP_DONE;
}
