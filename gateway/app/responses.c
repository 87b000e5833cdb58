#include "app/responses.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/call.h"
#include "app/config.h"
#include "app/context.h"
#include "app/reply.h"
#include "app/request.h"
#include "app/store.h"
#include "app/tenancy.h"
#include "app/transfer.h"
#include "audit/audit.h"
#include "audit/redact.h"
#include "http/conn.h"
#include "http/sse.h"
#include "lib/jsonbuf.h"
#include "lib/jsondoc.h"
#include "lib/log.h"
#include "lib/secmem.h"
#include "policy/check.h"
#include "policy/policy.h"
#include "policy/tenant.h"
#include "policy/tools.h"

#define KEY_MAX          320
#define OWNERSHIP_TTL_MS (30LL * 24 * 3600 * 1000) /* as tenancy.c keeps them */
/* An event past this is not read for containers (it is relayed whole):
 * the events that name a container as it starts are small; one that
 * holds a whole response is not needed for it. */
#define SSE_EVENT_MAX (32 * 1024)
/* Room for what the policy adds to each container a call makes, in the
 * forwarded body: a default allowlist of up to 256 names of up to 253
 * bytes, and brokered secrets. */
#define FORWARD_PER_CONTAINER ((size_t)1 << 20)

/* A Responses call's own state. */
struct responses {
	json_t *doc; /* the body, decided */
	char *forward;
	size_t forward_len;
	/* The containers the body makes and uses (tools.h), kept past decide
	 * without the rest of its result, so a stream does not carry that. */
	struct tools_container *containers;
	size_t ncontainers;
	size_t made;      /* containers the tools make */
	size_t i;         /* where check_refs and own are */
	int stream;       /* "stream": true */
	int background;   /* "background": true: the model runs after the answer */
	struct sse *sse;  /* reading the stream */
	json_t *seen;     /* container ids the answer names, each once (an object) */
	json_t *seen_ids; /* the same, in order */
	/* The relay's own handler of the client's events, and whether the
	 * client left mid-stream (the call then stops, and what it named is
	 * still recorded before the record says so). */
	void (*relay_event)(struct request *r, int event);
	int left;
};

static void
responses_free(void *arg)
{
	struct responses *s = arg;

	if (s == NULL)
		return;
	free(s->containers);
	secmem_free(s->forward);
	json_decref(s->doc);
	sse_free(s->sse);
	json_decref(s->seen);
	json_decref(s->seen_ids);
	free(s);
}

static struct responses *
op(struct request *r)
{
	return r->op;
}

static enum step_result
oom(struct request *r)
{
	err_set(&r->error, 503, ERR_INTERNAL, "out_of_memory", NULL,
	        "the gateway is out of memory; try again");
	return STEP_FAIL;
}

static void
adjustment(struct request *r, const char *text)
{
	if (r->rec.adjustments == NULL)
		r->rec.adjustments = json_array();
	json_array_append_new(r->rec.adjustments, json_string(text));
}

/* --- validate ------------------------------------------------------------ */

static enum step_result
validate(struct request *r)
{
	struct conn_req *http = r->http;
	struct responses *s;

	if (!request_is_json(r)) {
		err_set(&r->error, 415, ERR_INVALID, "unsupported_media_type", NULL,
		        "%s takes a JSON body; send Content-Type: application/json", r->operation);
		return STEP_FAIL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return oom(r);
	r->op = s;
	r->op_free = responses_free;
	if ((s->seen = json_object()) == NULL || (s->seen_ids = json_array()) == NULL)
		return oom(r);
	s->doc = jsondoc_parse(http->body, http->body_len, &r->error);
	/* The raw bytes may hold secrets and are not needed again. */
	secmem_free(http->body);
	http->body = NULL;
	http->body_len = http->body_cap = 0;
	if (s->doc == NULL)
		return STEP_FAIL;
	if (!json_is_object(s->doc)) {
		err_set(&r->error, 400, ERR_INVALID, "invalid_type", NULL,
		        "the request body must be a JSON object");
		return STEP_FAIL;
	}
	/* A stored prompt brings tools the gateway cannot see. */
	if (policy_check_prompt(r->policy, s->doc, &r->error) < 0)
		return STEP_FAIL;
	s->stream = json_is_true(json_object_get(s->doc, "stream"));
	s->background = json_is_true(json_object_get(s->doc, "background"));
	return STEP_NEXT;
}

/* --- decide -------------------------------------------------------------- */

/* What the audit record says of a container the call makes, as decided. */
static int
note_tool_container(struct request *r, const struct tools_container *c)
{
	char param[256];
	json_t *entry, *mem = json_object_get(c->config, "memory_limit");

	if (r->rec.tool_containers == NULL && (r->rec.tool_containers = json_array()) == NULL)
		return -1;
	entry = json_pack("{s:s, s:O?, s:o?}", "param", tools_param(c, param, sizeof(param)),
	                  "memory_limit", json_is_string(mem) ? mem : NULL, "network_policy",
	                  redact_network_policy_keyed(json_object_get(c->config, "network_policy"),
	                                              audit_key(r->ctx->audit)));
	return json_array_append_new(r->rec.tool_containers, entry);
}

/* A tenant's brokered secrets, in each container the call makes. */
static int
inject_secrets(struct request *r, json_t *config)
{
	json_t *names, *v;
	char text[160];
	size_t i;

	names = json_array();
	if (names == NULL || tenant_inject_secrets(r->tenant, config, names) < 0) {
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

static enum step_result
decide_tools(struct request *r, struct responses *s, struct tools_result *t)
{
	char param[256];
	struct err *shadow;
	size_t i;

	if (tools_apply(r->policy, s->doc, t) < 0) {
		r->error = t->decision.err;
		return STEP_FAIL;
	}
	if (r->tenant && !tenant_allow_client_secrets(r->tenant) &&
	    tools_client_secrets(t, param, sizeof(param))) {
		err_set(&r->error, 403, ERR_POLICY, "client_secrets_not_allowed", param,
		        "this tenant's domain secrets are supplied by the gateway; remove %s from "
		        "the request",
		        param);
		return STEP_FAIL;
	}
	if (t->decision.nshadow && (shadow = request_shadow(r)) != NULL)
		*shadow = t->decision.shadow;
	for (i = 0; i < t->decision.nadjust; i++)
		adjustment(r, t->decision.adjust[i]);
	for (i = 0; i < t->n; i++) {
		if (t->containers[i].kind != TOOLS_MADE)
			continue;
		s->made++;
		if ((r->tenant && inject_secrets(r, t->containers[i].config) < 0) ||
		    note_tool_container(r, &t->containers[i]) < 0)
			return oom(r);
	}
	return STEP_NEXT;
}

static enum step_result
decide(struct request *r)
{
	struct responses *s = op(r);
	struct tools_result *t = calloc(1, sizeof(*t));
	enum step_result rc;

	if (t == NULL)
		return oom(r);
	rc = decide_tools(r, s, t);
	s->containers = t->containers;
	s->ncontainers = t->n;
	t->containers = NULL;
	tools_result_release(t);
	free(t);
	return rc;
}

/* --- check_refs ---------------------------------------------------------- */

static enum step_result next_ref(struct request *r);

static void
on_ref_owner(void *arg, enum store_status st, const char *owner)
{
	struct request *r = arg;
	struct responses *s = op(r);
	const struct tools_container *c = &s->containers[s->i];
	char param[256];
	enum step_result res;

	r->store_op = NULL;
	if (st != STORE_OK && strcmp(r->cfg->store_on_unavailable, "fail_open") != 0) {
		err_set(&r->error, 503, ERR_INTERNAL, "store_unavailable", NULL,
		        "the gateway's shared store cannot be reached, so the containers this "
		        "request names cannot be checked; try again shortly");
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	if (st == STORE_OK && (owner == NULL || strcmp(owner, tenant_name(r->tenant)) != 0)) {
		/* Another tenant's container does not exist, as far as this
		 * tenant can tell; the record says when it was another's. */
		r->audit_code = owner ? "ownership_denied" : NULL;
		err_set(&r->error, 404, ERR_INVALID, "not_found",
		        tools_param(c, param, sizeof(param)), "No container found with id '%s'.",
		        c->container_id);
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	s->i++;
	res = next_ref(r);
	if (res != STEP_WAIT)
		pipeline_resume(r, res);
}

static enum step_result
next_ref(struct request *r)
{
	struct responses *s = op(r);
	char k[KEY_MAX];

	for (; s->i < s->ncontainers; s->i++) {
		if (s->containers[s->i].kind != TOOLS_USED)
			continue;
		snprintf(k, sizeof(k), "gw:own:%s", s->containers[s->i].container_id);
		r->store_op = store_get(r->ctx->store, k, on_ref_owner, r);
		return pipeline_wait(r, r->store_op != NULL);
	}
	return STEP_NEXT;
}

/* A tenant may run code only in a container of its own: one it named by
 * id is looked up (another tenant's answers 404, as on retrieve). */
static enum step_result
check_refs(struct request *r)
{
	if (r->tenant == NULL)
		return STEP_NEXT;
	op(r)->i = 0;
	return next_ref(r);
}

static enum step_result
admit_create(struct request *r)
{
	return op(r)->made ? tenancy_admit_create(r) : STEP_NEXT;
}

/* --- forward ------------------------------------------------------------- */

static void
saw(void *arg, const char *id)
{
	struct request *r = arg;
	struct responses *s = op(r);

	if (json_object_get(s->seen, id) == NULL && json_array_size(s->seen_ids) < 1024) {
		json_object_set_new(s->seen, id, json_true());
		json_array_append_new(s->seen_ids, json_string(id));
	}
}

/* An event of the stream: only those that may name a container are read. */
static int
on_event(void *arg, const struct sse_event *ev, struct err *e)
{
	struct request *r = arg;
	json_t *doc;

	(void)e;
	if (ev->too_large || !sse_data_may_contain(ev->data, ev->data_len, "container_id"))
		return 0;
	doc = json_loadb(ev->data, ev->data_len, 0, NULL);
	if (doc)
		(void)check_containers(doc, saw, r);
	json_decref(doc);
	return 0;
}

static void
observe(struct request *r, const char *data, size_t n)
{
	struct responses *s = op(r);
	struct err e;

	err_clear(&e);
	if (s->sse && sse_feed(s->sse, data, n, &e) < 0) {
		log_msg(LOG_WARN, r->id, "the answer's events could not be read: %s", e.message);
		sse_free(s->sse);
		s->sse = NULL;
	}
}

/* Whether the answer says it is an event stream. */
static int
is_event_stream(const struct upstream_res *res)
{
	return strncasecmp(res->content_type, "text/event-stream", 17) == 0;
}

static void
on_answered(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;
	struct sse *events;
	struct err e;
	json_t *doc;

	call_note(r, res);
	secmem_wipe(op(r)->forward, op(r)->forward_len);
	if (!call_succeeded(res)) {
		/* Sent, and no answer says it failed: its model may have made
		 * containers, so what they were charged stays spent (and the
		 * slot held for its hold); a refusal made none. */
		if (call_may_have_acted(res))
			tenancy_budget_spent(r);
		else
			tenancy_not_created(r);
		pipeline_resume(r, call_unsuccessful(r, res));
		return;
	}
	if (request_keep_answer(r, res) < 0) {
		pipeline_resume(r, oom(r));
		return;
	}
	doc = json_loadb(res->body, res->len, 0, NULL);
	if (doc)
		(void)check_containers(doc, saw, r);
	json_decref(doc);
	/* A stream the body did not ask for as the gateway reads "stream"
	 * (a "stream" of another type the upstream took as true, say) still
	 * names the containers it made: they are read from its events. */
	if (doc == NULL && is_event_stream(res)) {
		err_clear(&e);
		events = sse_new(SSE_EVENT_MAX, on_event, r, &e);
		if (events == NULL) {
			pipeline_resume(r, oom(r));
			return;
		}
		if (sse_feed(events, res->body, res->len, &e) < 0 ||
		    sse_feed(events, "\n\n", 2, &e) < 0)
			log_msg(LOG_WARN, r->id, "the answer's events could not be read: %s",
			        e.message);
		sse_free(events);
	}
	pipeline_resume(r, STEP_NEXT);
}

/* The client's events while the stream is relayed. One that leaves stops
 * the upstream call, but not the pipeline: the containers the stream has
 * named so far may have been made, and are recorded as the tenant's (and
 * counted) before the record says the client left. */
static void
on_stream_event(struct request *r, int event)
{
	struct responses *s = op(r);

	if (event != CONN_EV_FAILED || r->call == NULL) {
		if (s->relay_event)
			s->relay_event(r, event);
		return;
	}
	upstream_cancel(r->call);
	r->call = NULL;
	r->on_event = NULL;
	r->observe = NULL;
	r->error = r->http->stream_error;
	s->left = 1;
	pipeline_resume(r, STEP_NEXT);
}

static enum step_result
forward(struct request *r)
{
	struct responses *s = op(r);
	size_t sent = (size_t)r->http->body_seen;
	struct upstream_req up = {0};
	enum step_result res;
	struct err e;

	/* What is forwarded may be much larger than what came: each container
	 * made gets the policy's defaults (a default allowlist of up to
	 * max_domains names) and the tenant's secrets. The doc holds them all
	 * already, so its text is no real risk; the bound only catches a
	 * runaway. */
	s->forward = jsonbuf_dump(s->doc, sent + 512,
	                          sent * 2 + 64 * 1024 + s->made * FORWARD_PER_CONTAINER,
	                          &s->forward_len);
	if (s->forward == NULL)
		return oom(r);
	redact_wipe_secrets(s->doc);
	if (s->stream) {
		err_clear(&e);
		s->sse = sse_new(SSE_EVENT_MAX, on_event, r, &e);
		if (s->sse == NULL)
			return oom(r);
		r->observe = observe;
		res = transfer_stream(r, s->forward, s->forward_len, 1);
		if (res == STEP_WAIT && r->call) {
			s->relay_event = r->on_event;
			r->on_event = on_stream_event;
		}
	} else {
		up.method = "POST";
		up.path = r->upstream_path;
		up.body = s->forward;
		up.body_len = s->forward_len;
		res = call_start(r, &up, 1, NULL, on_answered);
	}
	/* Under way now: what it may make keeps its slot past its end. */
	if (res != STEP_FAIL)
		r->forwarded = 1;
	return res;
}

/* --- own ------------------------------------------------------------------ */

/* Whether the request named id itself (a container it used, not made). */
static int
named(const struct responses *s, const char *id)
{
	size_t i;

	for (i = 0; i < s->ncontainers; i++)
		if (s->containers[i].kind == TOOLS_USED &&
		    strcmp(s->containers[i].container_id, id) == 0)
			return 1;
	return 0;
}

static enum step_result next_own(struct request *r);

/* Counted among the tenant's live containers: on to the next. */
static void
on_counted(void *arg, enum store_status st)
{
	struct request *r = arg;

	(void)st;
	r->store_op = NULL;
	op(r)->i++;
	pipeline_resume(r, next_own(r));
}

/* Claimed: the container is the tenant's, and only then counted (the first
 * fills the slot the call held). One another tenant owns stays theirs and
 * is not counted here, whatever the answer says. */
static void
on_claimed(void *arg, enum store_status st, const char *owner)
{
	struct request *r = arg;
	struct responses *s = op(r);
	const char *id = json_string_value(json_array_get(s->seen_ids, s->i));
	char live[KEY_MAX], member[64];

	r->store_op = NULL;
	if (st != STORE_OK || (owner && *owner && strcmp(owner, tenant_name(r->tenant)) != 0)) {
		if (st != STORE_OK)
			log_msg(LOG_WARN, r->id,
			        "store: could not record container %s for tenant %s", id,
			        tenant_name(r->tenant));
		else
			log_msg(LOG_WARN, r->id,
			        "the answer names container %s, which is not this tenant's", id);
		s->i++;
		pipeline_resume(r, next_own(r));
		return;
	}
	/* The call made a container: what its tools were charged is spent. */
	tenancy_budget_spent(r);
	snprintf(live, sizeof(live), "gw:live:%s", tenant_name(r->tenant));
	snprintf(member, sizeof(member), "%s%s", r->holds_slot ? "pending:" : "",
	         r->holds_slot ? r->id : "");
	r->holds_slot = 0;
	r->store_op = store_settle(r->ctx->store, live, member, id, store_now_ms() + 20 * 60000LL,
	                           on_counted, r);
	pipeline_wait_more(r, r->store_op != NULL);
}

/* The containers the answer names that the request did not: made by the
 * call, so the tenant's, each claimed and then counted, once. */
static enum step_result
next_own(struct request *r)
{
	struct responses *s = op(r);
	char k[KEY_MAX];
	const char *id;

	for (; s->i < json_array_size(s->seen_ids); s->i++) {
		id = json_string_value(json_array_get(s->seen_ids, s->i));
		if (named(s, id) || json_object_get(s->seen, id) != json_true())
			continue;
		json_object_set_new(s->seen, id, json_false());
		snprintf(k, sizeof(k), "gw:own:%s", id);
		r->store_op = store_claim(r->ctx->store, k, tenant_name(r->tenant),
		                          OWNERSHIP_TTL_MS, on_claimed, r);
		return pipeline_wait(r, r->store_op != NULL);
	}
	return STEP_NEXT;
}

static enum step_result
own(struct request *r)
{
	struct responses *s = op(r);
	int status;

	/* The record names every container the call made or used. */
	if (json_array_size(s->seen_ids) > 0)
		r->rec.containers = json_incref(s->seen_ids);
	if (r->tenant == NULL)
		return STEP_NEXT;
	/* A background call's model runs after its answer, so the containers
	 * its tools make are never named here: once the upstream took the
	 * call, what they were charged stays spent. */
	status = s->stream ? r->rec.stream_status : r->rec.upstream_status;
	if (s->background && status >= 200 && status <= 299)
		tenancy_budget_spent(r);
	s->i = 0;
	return next_own(r);
}

static enum step_result
answer(struct request *r)
{
	/* A slot held for containers the call did not make goes back. */
	tenancy_not_created(r);
	if (op(r)->left || r->relay_broke)
		return STEP_FAIL; /* r->error says the client left or the upstream broke
		                     off; the driver ends the answer with it */
	if (op(r)->stream) {
		reply_stream_end(r, NULL);
		return STEP_DONE;
	}
	reply_kept(r);
	return STEP_DONE;
}

/* What the containers the tools make will cost: each one's memory for the
 * upstream's session (pricing.session_minutes), as an auto container
 * takes no expiry of its own. */
static enum step_result
budget(struct request *r)
{
	struct responses *s = op(r);
	long long gb_minutes = 0, minutes = r->cfg->session_minutes;
	double usd = 0;
	const char *mem;
	size_t i;

	for (i = 0; i < s->ncontainers; i++) {
		if (s->containers[i].kind != TOOLS_MADE)
			continue;
		mem = json_string_value(json_object_get(s->containers[i].config, "memory_limit"));
		gb_minutes += tenancy_gb_minutes(mem, minutes);
		usd += tenancy_usd(r, mem, minutes);
	}
	if (s->made == 0)
		return STEP_NEXT;
	return tenancy_budget(r, gb_minutes, usd);
}

const struct step responses_steps[] = {
        {"admit", tenancy_admit},
        {"validate", validate},
        {"decide", decide},
        {"check_refs", check_refs},
        {"admit_create", admit_create},
        {"budget", budget},
        {"intent", call_intent},
        {"forward", forward},
        {"own", own},
        {"answer", answer},
        {NULL, NULL},
};
