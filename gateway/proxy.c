#include "proxy.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "jsondoc.h"
#include "log.h"
#include "policy.h"
#include "redact.h"
#include "reply.h"
#include "request.h"
#include "schema.h"
#include "secmem.h"
#include "server.h"
#include "upstream.h"

/* Client headers that go upstream; everything else stays here. */
static const char *const forwarded_headers[] = {"Authorization", "OpenAI-Organization",
                                                "OpenAI-Project", NULL};

#define MAX_UP_HEADERS 8
#define HEADER_LINE    1024

struct header_lines {
	size_t n;
	char line[MAX_UP_HEADERS][HEADER_LINE];
	const char *ptr[MAX_UP_HEADERS];
};

static void
add_header(struct header_lines *h, const char *name, const char *value)
{
	if (h->n == MAX_UP_HEADERS)
		return;
	snprintf(h->line[h->n], HEADER_LINE, "%s: %s", name, value);
	h->ptr[h->n] = h->line[h->n];
	h->n++;
}

/* Builds the upstream's header lines; they may hold the client's key, so
 * the caller wipes them once the call has copied them. */
static void
upstream_headers(const struct request *r, struct header_lines *h, int has_body)
{
	char value[HEADER_LINE - 64];
	size_t i;

	h->n = 0;
	for (i = 0; forwarded_headers[i]; i++)
		if (request_header(r, forwarded_headers[i], value, sizeof(value)))
			add_header(h, forwarded_headers[i], value);
	if (has_body)
		add_header(h, "Content-Type", "application/json");
	add_header(h, "Accept", "application/json");
	add_header(h, "User-Agent", "containers-gateway/" GW_VERSION);
	add_header(h, "X-Gateway-Request-Id", r->id);
	secmem_wipe(value, sizeof(value));
}

/* What the audit record says about the container asked for. */
static void
note_container(struct request *r, const json_t *doc)
{
	json_t *mem = json_object_get(doc, "memory_limit");

	if (json_is_string(mem) && json_string_length(mem) < sizeof(r->memory_limit))
		snprintf(r->memory_limit, sizeof(r->memory_limit), "%s", json_string_value(mem));
	json_decref(r->audit_network_policy);
	r->audit_network_policy = redact_network_policy(json_object_get(doc, "network_policy"));
}

static void
fail_upstream(struct request *r, const struct upstream_res *res)
{
	char msg[400];

	switch (res->failure) {
	case UPSTREAM_TIMEOUT:
		snprintf(msg, sizeof(msg), "the upstream did not answer in time (%s)", res->error);
		reply_error(r, 504, ERR_UPSTREAM, NULL, "upstream_timeout", msg);
		break;
	case UPSTREAM_TOO_LARGE:
		reply_error(r, 502, ERR_UPSTREAM, NULL, "upstream_response_too_large",
		            "the upstream's answer exceeded upstream.max_response_bytes");
		break;
	default:
		snprintf(msg, sizeof(msg), "the upstream could not be reached (%s)", res->error);
		reply_error(r, 502, ERR_UPSTREAM, NULL, "upstream_unreachable", msg);
		break;
	}
}

static void
block_violation(struct request *r)
{
	char msg[ERR_MESSAGE_MAX], *line;
	size_t o;
	json_t *v;
	size_t i;

	o = (size_t)snprintf(msg, sizeof(msg),
	                     "the upstream created a container that does not match what was "
	                     "asked for, so this gateway withheld it:");
	json_array_foreach(r->violations, i, v)
	{
		line = json_dumps(v, JSON_COMPACT);
		if (line && o < sizeof(msg))
			o += (size_t)snprintf(msg + o, sizeof(msg) - o, " %s", line);
		secmem_json_free(line);
	}
	reply_error(r, 502, ERR_UPSTREAM, NULL, "upstream_violation", msg);
}

static void
on_create_done(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;
	json_t *container;
	struct err e;

	r->call = NULL;
	r->upstream_status = res->status;
	r->upstream_ms = res->ms;
	snprintf(r->upstream_request_id, sizeof(r->upstream_request_id), "%s", res->request_id);
	/* The forwarded body held any domain secrets; it is done with. */
	secmem_wipe(r->forward, r->forward_len);
	redact_wipe_secrets(r->doc);

	if (res->failure != UPSTREAM_OK) {
		fail_upstream(r, res);
		return;
	}
	if (res->status < 200 || res->status > 299) {
		reply_relay(r, res);
		return;
	}
	err_clear(&e);
	r->violations = json_array();
	container = check_create_response(r->doc, res->body, res->len, r->violations, &e);
	if (container == NULL) {
		reply_err(r, &e);
		return;
	}
	snprintf(r->audit_container_id, sizeof(r->audit_container_id), "%s",
	         json_string_value(json_object_get(container, "id")));
	json_decref(container);
	if (json_array_size(r->violations) > 0) {
		log_msg(LOG_WARN, r->id, "upstream violation on container %s",
		        r->audit_container_id);
		if (policy_violation_mode(server_policy(r->srv)) == POLICY_VIOLATION_BLOCK) {
			block_violation(r);
			return;
		}
	}
	reply_relay(r, res);
}

/* A JSON body, or none at all; anything else is a client mistake. */
static int
json_content_type(const struct request *r)
{
	const size_t n = strlen("application/json");
	size_t len;
	const char *ct = httpmsg_header(&r->head, "Content-Type", &len);

	if (ct == NULL)
		return 1;
	return len >= n && strncasecmp(ct, "application/json", n) == 0 &&
	       (len == n || ct[n] == ';' || ct[n] == ' ');
}

void
proxy_create(struct request *r)
{
	struct policy_result pr;
	struct header_lines h;
	struct upstream_req up;
	struct err e;

	err_clear(&e);
	if (!json_content_type(r)) {
		reply_error(r, 415, ERR_INVALID, NULL, "unsupported_media_type",
		            "POST /v1/containers takes a JSON body; send Content-Type: "
		            "application/json");
		return;
	}
	r->doc = jsondoc_parse(r->body, r->body_len, &e);
	/* The raw bytes may hold secrets and are not needed again. */
	secmem_free(r->body);
	r->body = NULL;
	r->body_len = r->body_cap = 0;
	if (r->doc == NULL || schema_check(&schema_create_container_body, r->doc, &e) < 0) {
		reply_err(r, &e);
		return;
	}
	if (policy_apply_create(server_policy(r->srv), r->doc, &pr) < 0) {
		note_container(r, r->doc);
		reply_err(r, &pr.err);
		return;
	}
	note_container(r, r->doc);
	if (pr.nadjust) {
		size_t i;

		r->adjustments = json_array();
		for (i = 0; i < pr.nadjust; i++)
			json_array_append_new(r->adjustments, json_string(pr.adjust[i]));
	}
	r->forward = json_dumps(r->doc, JSON_COMPACT);
	if (r->forward == NULL) {
		reply_error(r, 503, ERR_INTERNAL, NULL, "out_of_memory",
		            "the gateway is out of memory; try again");
		return;
	}
	r->forward_len = strlen(r->forward);

	upstream_headers(r, &h, 1);
	up.method = "POST";
	up.path = "/containers";
	up.headers = h.ptr;
	up.nheaders = h.n;
	up.body = r->forward;
	up.body_len = r->forward_len;
	r->call = upstream_start(server_upstream(r->srv), &up, on_create_done, r, &e);
	secmem_wipe(&h, sizeof(h));
	if (r->call == NULL)
		reply_err(r, &e);
}
