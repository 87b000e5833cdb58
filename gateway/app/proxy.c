#include "app/proxy.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "audit/audit.h"
#include "policy/check.h"
#include "app/config.h"
#include "http/conn.h"
#include "app/front.h"
#include "lib/jsonbuf.h"
#include "lib/jsondoc.h"
#include "lib/log.h"
#include "http/multipart.h"
#include "policy/policy.h"
#include "audit/redact.h"
#include "app/reply.h"
#include "app/request.h"
#include "policy/schema.h"
#include "lib/secmem.h"
#include "server.h"
#include "app/tenancy.h"
#include "policy/tenant.h"
#include "http/upstream.h"

/* Client headers that go upstream besides the key; everything else stays
 * here. */
static const char *const forwarded_headers[] = {"OpenAI-Organization", "OpenAI-Project", NULL};

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
 * the caller wipes them once the call has copied them. The key is the
 * one authentication identified, written canonically. */
static void
upstream_headers(const struct request *r, struct header_lines *h, int has_body)
{
	const char *upstream_key = server_snapshot_config(r->snap)->upstream_api_key;
	int gateway_keys = strcmp(server_snapshot_config(r->snap)->auth_mode, "gateway_keys") == 0;
	char value[HEADER_LINE - 64];
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
	r->audit_network_policy = redact_network_policy_keyed(
	        json_object_get(doc, "network_policy"), audit_key(server_audit(r->srv)));
}

/* The client hears what kind of failure it was; the operator's log gets
 * libcurl's detail, which names hosts and addresses. */
static void
fail_upstream(struct request *r, const struct upstream_res *res)
{
	log_msg(LOG_WARN, r->id, "upstream call failed: %s", res->error);
	switch (res->failure) {
	case UPSTREAM_TIMEOUT:
		reply_error(r, 504, ERR_UPSTREAM, NULL, "upstream_timeout",
		            "the upstream did not answer within this gateway's time limit");
		break;
	case UPSTREAM_TOO_LARGE:
		reply_error(r, 502, ERR_UPSTREAM, NULL, "upstream_response_too_large",
		            "the upstream's answer exceeded upstream.max_response_bytes");
		break;
	case UPSTREAM_MALFORMED:
		reply_error(r, 502, ERR_UPSTREAM, NULL, "bad_upstream_response",
		            "the upstream's answer had two different Content-Length headers, so "
		            "its end could not be told; it was discarded");
		break;
	default:
		reply_error(r, 502, ERR_UPSTREAM, NULL, "upstream_unreachable",
		            "the upstream could not be reached or did not complete its answer");
		break;
	}
}

/* Whether the call worked and the upstream said yes (2xx). */
static int
succeeded(const struct upstream_res *res)
{
	return res->failure == UPSTREAM_OK && res->status >= 200 && res->status <= 299;
}

/* The answer to a call that did not succeed: the failure, or the upstream's
 * own refusal relayed as it came. */
static void
reply_unsuccessful(struct request *r, const struct upstream_res *res)
{
	if (res->failure != UPSTREAM_OK)
		fail_upstream(r, res);
	else
		reply_relay(r, res);
}

/* Starts the upstream call now; answers the client itself when it cannot. */
static void
launch(struct request *r, struct upstream_req *up, int has_json_body, upstream_done_fn done)
{
	struct header_lines h;
	char ct[HEADER_LINE];
	struct err e;

	err_clear(&e);
	upstream_headers(r, &h, has_json_body);
	/* An upload's own Content-Type carries the boundary its body uses. */
	if (r->up_content_type[0] && h.n < MAX_UP_HEADERS) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", r->up_content_type);
		h.ptr[h.n++] = ct;
	}
	up->headers = h.ptr;
	up->nheaders = h.n;
	r->call = upstream_start(server_upstream(r->srv), up, done, r, &e);
	secmem_wipe(&h, sizeof(h));
	if (r->call == NULL)
		reply_err(r, &e);
}

static void
refuse_unaudited(struct request *r)
{
	reply_error(r, 503, ERR_INTERNAL, NULL, "audit_unavailable",
	            "the gateway cannot write its audit log, so it forwards nothing; try again "
	            "shortly");
}

static void
on_intent_durable(void *arg, int ok)
{
	struct request *r = arg;
	struct upstream_req up = r->pending.up;

	r->intent_pending = 0;
	if (!ok && !audit_available(server_audit(r->srv))) {
		refuse_unaudited(r);
		return;
	}
	up.path = r->pending.path;
	launch(r, &up, r->pending.json_body, r->pending.done);
}

/*
 * Starts the request's upstream call. The first call of a request is
 * preceded by its intent line in the audit log, and waits for it when
 * audit.fsync is "always": nothing reaches the upstream unrecorded.
 */
static void
start(struct request *r, struct upstream_req *up, int has_json_body, upstream_done_fn done)
{
	int rc;

	if (r->intent_written) {
		launch(r, up, has_json_body, done);
		return;
	}
	r->intent_written = 1;
	r->pending.up = *up;
	r->pending.json_body = has_json_body;
	r->pending.done = done;
	free(r->pending.path);
	if ((r->pending.path = strdup(up->path)) == NULL) {
		reply_error(r, 503, ERR_INTERNAL, NULL, "out_of_memory",
		            "the gateway is out of memory; try again shortly");
		return;
	}
	rc = reply_intent(r, on_intent_durable);
	r->intent_pending = rc == 0;
	if (rc < 0 && !audit_available(server_audit(r->srv)))
		refuse_unaudited(r);
	else if (rc != 0)
		launch(r, up, has_json_body, done);
}

static void
note_upstream(struct request *r, const struct upstream_res *res)
{
	r->call = NULL;
	r->upstream_status = res->status;
	r->upstream_ms = res->ms;
	snprintf(r->upstream_request_id, sizeof(r->upstream_request_id), "%s", res->request_id);
}

static void
block_violation(struct request *r)
{
	char msg[ERR_MESSAGE_MAX], *line;
	size_t o;
	json_t *v;
	size_t i;

	o = (size_t)snprintf(msg, sizeof(msg), "%s, so this gateway withheld it:",
	                     r->doc && strcmp(r->method, "POST") == 0 && r->memory_limit[0]
	                             ? "the upstream created a container that does not match what "
	                               "was asked for"
	                             : "the upstream's answer does not match the API's contract");
	json_array_foreach(r->violations, i, v)
	{
		line = json_dumps(v, JSON_COMPACT);
		if (line && o < sizeof(msg))
			o += (size_t)snprintf(msg + o, sizeof(msg) - o, " %s", line);
		secmem_json_free(line);
	}
	reply_error(r, 502, ERR_UPSTREAM, NULL, "upstream_violation", msg);
}

/* Identifiers the upstream hands back are checked like the client's before
 * they go into a path. */
static int
safe_id(const char *s)
{
	size_t i, n = s ? strlen(s) : 0;

	if (n == 0 || n > REQUEST_ID_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

static void
on_remediation_done(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;
	int deleted = res->failure == UPSTREAM_OK && res->status >= 200 && res->status < 300;
	char msg[ERR_MESSAGE_MAX];

	r->call = NULL;
	r->remediation = json_pack("{s:s, s:s, s:o, s:s}", "action", "delete", "container_id",
	                           r->audit_container_id, "status",
	                           res->status ? json_integer(res->status) : json_null(), "outcome",
	                           deleted ? "deleted" : "failed");
	log_msg(deleted ? LOG_WARN : LOG_ERROR, r->id, "container %s broke the request; delete %s",
	        r->audit_container_id, deleted ? "succeeded" : "FAILED");
	snprintf(msg, sizeof(msg),
	         "the upstream created container %s with more than was asked for, so this gateway "
	         "%s; see the audit record of this request for the differences",
	         r->audit_container_id,
	         deleted ? "deleted it" : "tried to delete it and failed: delete it by hand");
	reply_error(r, 502, ERR_UPSTREAM, NULL, "upstream_violation", msg);
}

/* on_upstream_violation "delete": the container is removed upstream before
 * the client hears about it. */
static void
remediate(struct request *r)
{
	struct upstream_req up = {0};
	char path[REQUEST_ID_MAX + 16];

	if (!safe_id(r->audit_container_id)) {
		r->remediation =
		        json_pack("{s:s, s:s}", "action", "delete", "outcome",
		                  "not attempted: the container id is not a safe identifier");
		block_violation(r);
		return;
	}
	snprintf(path, sizeof(path), "/containers/%s", r->audit_container_id);
	up.method = "DELETE";
	up.path = path;
	start(r, &up, 0, on_remediation_done);
}

/* After the container is on record: relay it, or act on its violations. */
static void
decide_create(struct request *r)
{
	if (json_array_size(r->violations) > 0) {
		log_msg(LOG_WARN, r->id, "upstream violation on container %s",
		        r->audit_container_id);
		switch (policy_violation_mode(r->policy)) {
		case POLICY_VIOLATION_DELETE:
			remediate(r);
			return;
		case POLICY_VIOLATION_BLOCK:
			block_violation(r);
			return;
		default:
			break;
		}
	}
	reply_kept(r);
}

static void
on_create_done(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;
	json_t *container;
	json_int_t minutes;
	struct err e;

	note_upstream(r, res);
	/* The forwarded body held any domain secrets; it is done with. */
	secmem_wipe(r->forward, r->forward_len);
	redact_wipe_secrets(r->doc);

	if (!succeeded(res)) {
		tenancy_not_created(r);
		reply_unsuccessful(r, res);
		return;
	}
	err_clear(&e);
	r->violations = json_array();
	container = check_create_response(r->doc, res->body, res->len, r->violations, &e);
	if (container == NULL || request_keep_answer(r, res) < 0) {
		json_decref(container);
		tenancy_not_created(r);
		if (e.status == 0)
			err_set(&e, 503, ERR_INTERNAL, "out_of_memory", NULL,
			        "the gateway ran out of memory with the upstream's answer");
		reply_err(r, &e);
		return;
	}
	snprintf(r->audit_container_id, sizeof(r->audit_container_id), "%s",
	         json_string_value(json_object_get(container, "id")));
	json_decref(container);
	minutes = json_integer_value(
	        json_object_get(json_object_get(r->doc, "expires_after"), "minutes"));
	/* The container is the tenant's, whatever happens to the answer. */
	tenancy_created(r, r->audit_container_id, minutes, decide_create);
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

/* The decided document as it goes upstream. Compact text is never longer
 * than what the client sent, but for what the policy adds. */
static char *
serialize(struct request *r)
{
	size_t sent = (size_t)r->body_seen;

	return jsonbuf_dump(r->doc, sent + 512, sent * 2 + 64 * 1024, &r->forward_len);
}

/* Once the tenant's create limits have passed: the decided document goes
 * upstream. */
static void
forward_create(struct request *r)
{
	struct upstream_req up = {0};

	r->forward = serialize(r);
	if (r->forward == NULL) {
		tenancy_not_created(r);
		reply_error(r, 503, ERR_INTERNAL, NULL, "out_of_memory",
		            "the gateway is out of memory; try again");
		return;
	}
	up.method = "POST";
	up.path = "/containers";
	up.body = r->forward;
	up.body_len = r->forward_len;
	start(r, &up, 1, on_create_done);
}

static void
adjustment(struct request *r, const char *text)
{
	if (r->adjustments == NULL)
		r->adjustments = json_array();
	json_array_append_new(r->adjustments, json_string(text));
}

/* A tenant's brokered secrets, for the domains the decided allowlist
 * reaches; the client never sees them. */
static int
inject_secrets(struct request *r)
{
	json_t *names;
	char text[160];
	size_t i;
	json_t *v;

	if (r->tenant == NULL)
		return 0;
	names = json_array();
	if (names == NULL || tenant_inject_secrets(r->tenant, r->doc, names) < 0) {
		json_decref(names);
		return -1;
	}
	json_array_foreach(names, i, v)
	{
		snprintf(text, sizeof(text), "brokered secret %s added", json_string_value(v));
		adjustment(r, text);
	}
	json_decref(names);
	return 0;
}

void
proxy_create(struct request *r)
{
	struct policy_result pr;
	struct err e;
	size_t i;

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
	if (r->tenant && !tenant_allow_client_secrets(r->tenant) &&
	    json_object_get(json_object_get(r->doc, "network_policy"), "domain_secrets")) {
		note_container(r, r->doc);
		reply_error(r, 403, ERR_POLICY, "network_policy.domain_secrets",
		            "client_secrets_not_allowed",
		            "this tenant's domain secrets are supplied by the gateway; remove "
		            "network_policy.domain_secrets from the request");
		return;
	}
	if (policy_apply_create(r->policy, r->doc, &pr) < 0) {
		note_container(r, r->doc);
		reply_err(r, &pr.err);
		return;
	}
	if (pr.nshadow && r->shadow.status == 0)
		r->shadow = pr.shadow;
	for (i = 0; i < pr.nadjust; i++)
		adjustment(r, pr.adjust[i]);
	if (inject_secrets(r) < 0) {
		reply_error(r, 503, ERR_INTERNAL, NULL, "out_of_memory",
		            "the gateway is out of memory; try again");
		return;
	}
	note_container(r, r->doc);
	tenancy_admit_create(r, forward_create);
}

/* --- Everything but create ------------------------------------------- */

static void
on_forward_done(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;
	struct check_expect x;
	struct err e;

	note_upstream(r, res);
	if (r->stream_error.status) {
		reply_err(r, &r->stream_error); /* an upload stopped on our side */
		return;
	}
	if (!succeeded(res)) {
		reply_unsuccessful(r, res);
		return;
	}
	err_clear(&e);
	front_expect(r, &x);
	r->violations = json_array();
	if (r->violations == NULL ||
	    check_response(&x, res->body, res->len, r->violations, &e) < 0) {
		reply_err(r, &e);
		return;
	}
	if (json_array_size(r->violations) > 0) {
		log_msg(LOG_WARN, r->id, "upstream answer to %s does not match the spec",
		        front_operation(r));
		if (policy_violation_mode(r->policy) != POLICY_VIOLATION_LOG) {
			block_violation(r);
			return;
		}
	}
	/* A deleted container stops counting as the tenant's. */
	if (r->tenant && strcmp(front_route_name(r), "containers.delete") == 0) {
		if (request_keep_answer(r, res) == 0) {
			tenancy_deleted(r, reply_kept);
			return;
		}
	}
	reply_relay(r, res);
}

static void
forward(struct request *r, struct upstream_req *up, int has_json_body)
{
	snprintf(r->audit_container_id, sizeof(r->audit_container_id), "%s", r->container_id);
	up->method = r->method;
	up->path = r->upstream_path;
	/* A GET that never reached the upstream is safe to try again. */
	up->retry_connect = strcmp(r->method, "GET") == 0;
	start(r, up, has_json_body, on_forward_done);
}

/* --- A tenant's list of containers ------------------------------------ */

#define LIST_PAGES_MAX 10 /* upstream pages read for one answer, at most */

static void list_next_page(struct request *r);

static void
reply_list(struct request *r)
{
	json_t *data = r->list_acc, *doc;
	size_t n = json_array_size(data);
	int more = r->list_more || (long)n > r->list_want;

	while ((long)json_array_size(data) > r->list_want)
		json_array_remove(data, json_array_size(data) - 1);
	n = json_array_size(data);
	doc = json_pack("{s:s, s:O, s:O?, s:O?, s:b}", "object", "list", "data", data, "first_id",
	                n ? json_object_get(json_array_get(data, 0), "id") : NULL, "last_id",
	                n ? json_object_get(json_array_get(data, n - 1), "id") : NULL, "has_more",
	                more);
	if (doc == NULL) {
		reply_error(r, 503, ERR_INTERNAL, NULL, "out_of_memory",
		            "the gateway ran out of memory; try again");
		return;
	}
	reply_json(r, 200, doc);
	json_decref(doc);
}

/* The page's own containers are in; enough, or another page. */
static void
list_filtered(struct request *r)
{
	json_t *item;
	size_t i;

	json_array_foreach(r->list_page, i, item)
	{
		json_array_append(r->list_acc, item);
	}
	json_decref(r->list_page);
	r->list_page = NULL;
	if ((long)json_array_size(r->list_acc) > r->list_want || !r->list_more ||
	    r->list_pages >= LIST_PAGES_MAX) {
		reply_list(r);
		return;
	}
	list_next_page(r);
}

static void
on_list_page(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;
	struct check_expect x;
	json_t *page, *data;
	struct err e;

	note_upstream(r, res);
	if (!succeeded(res)) {
		reply_unsuccessful(r, res);
		return;
	}
	err_clear(&e);
	front_expect(r, &x);
	if (r->violations == NULL)
		r->violations = json_array();
	if (check_response(&x, res->body, res->len, r->violations, &e) < 0) {
		reply_err(r, &e);
		return;
	}
	/* A page that is not a list cannot be filtered: it is withheld
	 * whatever the mode, since relaying it could show others' containers. */
	if (json_array_size(r->violations) > 0) {
		block_violation(r);
		return;
	}
	page = jsondoc_parse(res->body, res->len, &e);
	data = json_object_get(page, "data");
	r->list_more = json_is_true(json_object_get(page, "has_more"));
	if (json_array_size(data) > 0)
		snprintf(r->list_after, sizeof(r->list_after), "%s",
		         json_string_value(json_object_get(
		                 json_array_get(data, json_array_size(data) - 1), "id")));
	r->list_page = json_incref(data);
	json_decref(page);
	if (r->list_page == NULL) {
		r->list_more = 0;
		list_filtered(r);
		return;
	}
	tenancy_filter(r, r->list_page, list_filtered);
}

/* The next page of the upstream's list, 100 at a time, with the client's
 * order and name; "after" moves past what was read. */
static void
list_next_page(struct request *r)
{
	struct upstream_req up = {0};
	char path[REQUEST_PATH_MAX], rest[REQUEST_PATH_MAX] = "";
	const char *q = strchr(r->upstream_path, '?'), *p, *amp;
	size_t o = 0, len;

	for (p = q ? q + 1 : NULL; p && *p; p = amp ? amp + 1 : p + len) {
		amp = strchr(p, '&');
		len = amp ? (size_t)(amp - p) : strlen(p);
		if (strncmp(p, "limit=", 6) == 0 || strncmp(p, "after=", 6) == 0 ||
		    o + len + 2 > sizeof(rest))
			continue;
		o += (size_t)snprintf(rest + o, sizeof(rest) - o, "&%.*s", (int)len, p);
	}
	if (snprintf(path, sizeof(path), "/containers?limit=100%s%s%s", rest,
	             r->list_after[0] ? "&after=" : "", r->list_after) >= (int)sizeof(path)) {
		reply_error(r, 414, ERR_INVALID, NULL, "uri_too_long",
		            "the list query is too long");
		return;
	}
	r->list_pages++;
	up.method = "GET";
	up.path = path;
	up.retry_connect = 1;
	start(r, &up, 0, on_list_page);
}

/* GET /v1/containers for a tenant: only its own containers, gathered from
 * the upstream's pages until limit is filled or the upstream runs out. */
static void
list_own(struct request *r)
{
	const char *q = strchr(r->upstream_path, '?');
	const char *limit = q ? strstr(q, "limit=") : NULL;
	const char *after = q ? strstr(q, "after=") : NULL;

	r->list_want = limit ? strtol(limit + 6, NULL, 10) : 20;
	if (after)
		snprintf(r->list_after, sizeof(r->list_after), "%.*s", (int)strcspn(after + 6, "&"),
		         after + 6);
	r->list_acc = json_array();
	if (r->list_acc == NULL) {
		reply_error(r, 503, ERR_INTERNAL, NULL, "out_of_memory",
		            "the gateway ran out of memory; try again");
		return;
	}
	list_next_page(r);
}

void
proxy_forward(struct request *r)
{
	struct upstream_req up = {0};

	if (r->tenant && strcmp(front_route_name(r), "containers.list") == 0) {
		list_own(r);
		return;
	}
	forward(r, &up, 0);
}

/* JSON naming a file the organization already uploaded. */
static void
file_create_json(struct request *r)
{
	struct upstream_req up = {0};
	struct err e;

	err_clear(&e);
	if (!json_content_type(r)) {
		reply_error(r, 415, ERR_INVALID, NULL, "unsupported_media_type",
		            "send Content-Type: application/json");
		return;
	}
	r->doc = jsondoc_parse(r->body, r->body_len, &e);
	secmem_free(r->body);
	r->body = NULL;
	r->body_len = r->body_cap = 0;
	if (r->doc == NULL || schema_check(&schema_create_container_file_body, r->doc, &e) < 0) {
		reply_err(r, &e);
		return;
	}
	if (json_object_get(r->doc, "file_id") == NULL) {
		reply_error(r, 400, ERR_INVALID, "file_id", "missing_required_parameter",
		            "file_id is required in a JSON body; to upload the file itself, send "
		            "multipart/form-data with a \"file\" part");
		return;
	}
	r->forward = serialize(r);
	if (r->forward == NULL) {
		reply_error(r, 503, ERR_INTERNAL, NULL, "out_of_memory",
		            "the gateway is out of memory; try again");
		return;
	}
	up.body = r->forward;
	up.body_len = r->forward_len;
	forward(r, &up, 1);
}

/* The upload's bytes go to the upstream exactly as they came, checked as
 * multipart on the way; a bad part stops the transfer before it is whole. */
static size_t
upload_read(void *arg, char *buf, size_t n)
{
	struct request *r = arg;
	size_t k = (size_t)evbuffer_remove(r->stream_in, buf, n);
	int rc;

	if (r->stream_error.status)
		return UPSTREAM_ABORT;
	if (k > 0) {
		rc = multipart_feed(r->multipart, buf, k, &r->stream_error);
		if (rc < 0)
			return UPSTREAM_ABORT;
		if (r->conn)
			conn_stream_resume(r->conn);
		return k;
	}
	if (!r->body_done) {
		r->paused = 1;
		return UPSTREAM_PAUSE;
	}
	if (multipart_feed(r->multipart, "", 0, &r->stream_error) != 1) {
		if (r->stream_error.status == 0)
			err_set(&r->stream_error, 400, ERR_INVALID, "invalid_multipart", NULL,
			        "the multipart body ended before its closing delimiter");
		return UPSTREAM_ABORT;
	}
	if (!multipart_has(r->multipart, "file") && !multipart_has(r->multipart, "file_id")) {
		err_set(&r->stream_error, 400, ERR_INVALID, "missing_required_parameter", "file",
		        "the upload has neither a \"file\" part nor a \"file_id\" field");
		return UPSTREAM_ABORT;
	}
	return 0;
}

static void
on_upload_event(struct request *r, int event)
{
	if (event == REQUEST_FAILED) {
		upstream_cancel(r->call);
		r->call = NULL;
		reply_err(r, &r->stream_error);
		return;
	}
	if (r->paused && r->call) {
		r->paused = 0;
		upstream_resume(r->call);
	}
}

static void
file_create_stream(struct request *r)
{
	static const char *const parts[] = {"file", "file_id", NULL};
	long long limit = policy_max_upload_bytes(r->policy);
	struct upstream_req up = {0};
	const char *ct;
	size_t ct_len;
	struct err e;

	err_clear(&e);
	if (r->head.content_length > limit) {
		reply_error(r, 413, ERR_INVALID, NULL, "request_too_large",
		            "the upload is larger than this organization's limit "
		            "(files.max_upload_bytes)");
		return;
	}
	ct = httpmsg_header(&r->head, "Content-Type", &ct_len);
	r->multipart = multipart_new(ct, ct_len, parts, &e);
	if (r->multipart == NULL || ct_len >= sizeof(r->up_content_type)) {
		if (e.status == 0)
			err_set(&e, 400, ERR_INVALID, "invalid_multipart", NULL,
			        "the Content-Type header is too long");
		reply_err(r, &e);
		return;
	}
	r->body_limit = (uint64_t)limit;
	r->on_event = on_upload_event;
	snprintf(r->audit_container_id, sizeof(r->audit_container_id), "%s", r->container_id);

	snprintf(r->up_content_type, sizeof(r->up_content_type), "%.*s", (int)ct_len, ct);
	up.method = "POST";
	up.path = r->upstream_path;
	up.read = upload_read;
	up.body_size = r->head.chunked ? -1 : r->head.content_length;
	start(r, &up, 0, on_forward_done);
}

void
proxy_file_create(struct request *r)
{
	if (r->stream_in)
		file_create_stream(r);
	else
		file_create_json(r);
}

/* --- Downloads ------------------------------------------------------- */

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
	if (event == REQUEST_FAILED) {
		upstream_cancel(r->call);
		r->call = NULL;
		reply_stream_end(r, &r->stream_error);
		return;
	}
	if (event == REQUEST_DRAINED && r->paused && r->call) {
		r->paused = 0;
		upstream_resume(r->call);
	}
}

static void
on_download_done(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;
	struct err e;

	note_upstream(r, res);
	if (!res->streamed) {
		if (res->failure != UPSTREAM_OK)
			fail_upstream(r, res);
		else
			reply_relay(r, res);
		return;
	}
	if (res->failure == UPSTREAM_OK) {
		reply_stream_end(r, NULL);
		return;
	}
	log_msg(LOG_WARN, r->id, "upstream answer broke off after %zu bytes: %s", res->bytes,
	        res->error);
	err_set(&e, 502, ERR_UPSTREAM, "upstream_stream_failed", NULL,
	        "the upstream's answer broke off after %zu bytes", res->bytes);
	reply_stream_end(r, &e);
}

void
proxy_download(struct request *r)
{
	struct upstream_req up = {0};

	snprintf(r->audit_container_id, sizeof(r->audit_container_id), "%s", r->container_id);
	r->on_event = on_download_event;
	up.method = "GET";
	up.path = r->upstream_path;
	up.retry_connect = 1;
	up.on_head = download_head;
	up.on_data = download_data;
	start(r, &up, 0, on_download_done);
}

/* --- Passthrough ------------------------------------------------------ */

static void
on_passthrough_done(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;

	note_upstream(r, res);
	if (res->failure != UPSTREAM_OK)
		fail_upstream(r, res);
	else
		reply_relay(r, res);
}

void
proxy_passthrough(struct request *r)
{
	struct upstream_req up = {0};
	const char *ct;
	size_t ct_len;

	ct = httpmsg_header(&r->head, "Content-Type", &ct_len);
	if (ct && ct_len < sizeof(r->up_content_type))
		snprintf(r->up_content_type, sizeof(r->up_content_type), "%.*s", (int)ct_len, ct);
	up.method = r->method;
	up.path = r->upstream_path;
	up.body = r->body;
	up.body_len = r->body_len;
	up.retry_connect = strcmp(r->method, "GET") == 0;
	start(r, &up, 0, on_passthrough_done);
}
