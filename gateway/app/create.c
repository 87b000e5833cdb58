#include "app/create.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "app/call.h"
#include "app/config.h"
#include "app/context.h"
#include "app/request.h"
#include "app/reply.h"
#include "app/store.h"
#include "app/tenancy.h"
#include "audit/audit.h"
#include "audit/redact.h"
#include "http/conn.h"
#include "lib/jsonbuf.h"
#include "lib/jsondoc.h"
#include "lib/jsonspool.h"
#include "lib/log.h"
#include "lib/secmem.h"
#include "lib/spool.h"
#include "lib/text.h"
#include "policy/check.h"
#include "policy/policy.h"
#include "policy/schema.h"
#include "policy/tenant.h"

/* A large body's strings set aside (front.c streams bodies over 1 MiB
 * in): the contract's one string that may be large, an inline skill's
 * base64 "data" (up to 70254592 characters), once past 64 KiB; the spool
 * holds 1 MiB in memory, the rest in limits.spool_dir. The rest of a
 * create is held and parsed, up to limits.max_json_bytes (413 past it). */
static const char *const spooled_keys[] = {"data", NULL};
#define SPOOL_STRING_MIN (64 * 1024)
#define SPOOL_MEMORY     (1024 * 1024)

/* The create's own state: the document decided on, and as sent; when the
 * container made would expire if left alone. A body that streamed in
 * has its large strings in spool (the document holds stand-ins), read
 * by reader as it came; its forwarded text has holes they fill, and
 * the upstream reads it from text_at, hole hole, hole_done bytes in. */
struct create {
	json_t *doc;
	char *forward;
	size_t forward_len;
	long long expires_at_ms;

	struct spool *spool;
	struct jsonspool *reader;
	size_t text_len; /* what the reader kept in memory, as a size hint */
	int taking;
	struct jsonbuf_hole *holes;
	size_t nholes, hole, text_at;
	uint64_t hole_done;
};

static void
create_free(void *arg)
{
	struct create *c = arg;

	if (c == NULL)
		return;
	secmem_free(c->forward);
	json_decref(c->doc);
	jsonspool_free(c->reader);
	spool_free(c->spool);
	free(c->holes);
	free(c);
}

static struct create *
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

/* What the audit record says about the container asked for. */
static void
note_container(struct request *r, const json_t *doc)
{
	json_t *mem = json_object_get(doc, "memory_limit");

	if (json_is_string(mem) && json_string_length(mem) < sizeof(r->rec.memory_limit))
		text_copy(r->rec.memory_limit, sizeof(r->rec.memory_limit), json_string_value(mem));
	json_decref(r->rec.network_policy);
	r->rec.network_policy = redact_network_policy_keyed(json_object_get(doc, "network_policy"),
	                                                    audit_key(r->ctx->audit));
}

/* Moves what has arrived of a streamed body into the reader, wiping it
 * from the transport's buffer (it may hold secrets). Returns 1 once the
 * body is whole, 0 while more is to come, -1 with r->error filled. */
static int
take(struct request *r)
{
	struct conn_req *http = r->http;
	struct create *c = op(r);
	struct evbuffer_iovec v;
	int rc = 0;

	c->taking = 1; /* reading on may tell us of more: taken here */
	do {
		while (rc == 0 && evbuffer_peek(http->stream_in, -1, NULL, &v, 1) > 0 &&
		       v.iov_len > 0) {
			rc = jsonspool_feed(c->reader, v.iov_base, v.iov_len, &r->error);
			secmem_wipe(v.iov_base, v.iov_len);
			evbuffer_drain(http->stream_in, v.iov_len);
		}
		if (rc == 0)
			conn_stream_resume(http);
	} while (rc == 0 && evbuffer_get_length(http->stream_in) > 0);
	c->taking = 0;
	if (rc < 0)
		return -1;
	if (http->stream_error.status) {
		r->error = http->stream_error;
		return -1;
	}
	if (!http->body_done)
		return 0;
	jsonspool_finish(c->reader);
	return 1;
}

static void
on_body_event(struct request *r, int event)
{
	int rc;

	/* While take() is reading (reading on can report more), it finds
	 * what happened itself: the bytes, or the stream's error. */
	if (op(r)->taking)
		return;
	if (event == CONN_EV_FAILED) {
		pipeline_fail(r, &r->http->stream_error);
		return;
	}
	if (event != CONN_EV_BODY || (rc = take(r)) == 0)
		return;
	r->on_event = NULL;
	pipeline_resume(r, rc > 0 ? STEP_NEXT : STEP_FAIL);
}

/* The body is JSON, and all in: buffered by the transport, or (a large
 * one) read here as it streams in, its large strings spooled. */
static enum step_result
receive(struct request *r)
{
	struct create *c;
	int rc;

	if (!request_is_json(r)) {
		err_set(&r->error, 415, ERR_INVALID, "unsupported_media_type", NULL,
		        "POST /v1/containers takes a JSON body; send Content-Type: "
		        "application/json");
		return STEP_FAIL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return oom(r);
	r->op = c;
	r->op_free = create_free;
	if (r->http->stream_in == NULL)
		return STEP_NEXT;
	c->spool = spool_new(r->cfg->spool_dir, SPOOL_MEMORY, (uint64_t)r->cfg->max_spool_bytes);
	c->reader = c->spool ? jsonspool_new(c->spool, spooled_keys, SPOOL_STRING_MIN,
	                                     (size_t)r->cfg->max_json_bytes)
	                     : NULL;
	if (c->reader == NULL)
		return oom(r);
	if ((rc = take(r)) == 0) {
		r->on_event = on_body_event;
		return STEP_WAIT;
	}
	return rc > 0 ? STEP_NEXT : STEP_FAIL;
}

static enum step_result
validate(struct request *r)
{
	struct conn_req *http = r->http;
	struct create *c = op(r);
	const struct jsondoc_ref *refs;
	const char *text;
	size_t len, nrefs;

	if (c->reader) {
		text = jsonspool_text(c->reader, &len);
		refs = jsonspool_refs(c->reader, &nrefs);
		c->doc = jsondoc_parse_spooled(text, len, refs, nrefs, &r->error);
		c->text_len = len;
		jsonspool_free(c->reader);
		c->reader = NULL;
	} else {
		c->doc = jsondoc_parse(http->body, http->body_len, &r->error);
		/* The raw bytes may hold secrets and are not needed again. */
		secmem_free(http->body);
		http->body = NULL;
		http->body_len = http->body_cap = 0;
	}
	if (c->doc == NULL || schema_check(&schema_create_container_body, c->doc, &r->error) < 0)
		return STEP_FAIL;
	return STEP_NEXT;
}

/* A tenant's brokered secrets, for the domains the decided allowlist
 * reaches; the client never sees them. */
static int
inject_secrets(struct request *r)
{
	json_t *names, *v;
	char text[160];
	size_t i;

	if (r->tenant == NULL)
		return 0;
	names = json_array();
	if (names == NULL || tenant_inject_secrets(r->tenant, op(r)->doc, names) < 0) {
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
decide(struct request *r)
{
	json_t *doc = op(r)->doc;
	struct policy_result pr;
	struct err *shadow;
	size_t i;

	if (r->tenant && !tenant_allow_client_secrets(r->tenant) &&
	    json_object_get(json_object_get(doc, "network_policy"), "domain_secrets")) {
		note_container(r, doc);
		err_set(&r->error, 403, ERR_POLICY, "client_secrets_not_allowed",
		        "network_policy.domain_secrets",
		        "this tenant's domain secrets are supplied by the gateway; remove "
		        "network_policy.domain_secrets from the request");
		return STEP_FAIL;
	}
	if (policy_apply_create(r->policy, doc, &pr) < 0) {
		note_container(r, doc);
		r->error = pr.err;
		return STEP_FAIL;
	}
	if (pr.nshadow && (shadow = request_shadow(r)) != NULL)
		*shadow = pr.shadow;
	for (i = 0; i < pr.nadjust; i++)
		adjustment(r, pr.adjust[i]);
	if (inject_secrets(r) < 0)
		return oom(r);
	note_container(r, doc);
	return STEP_NEXT;
}

/* The upstream's word on when the container expires if left alone: its
 * last activity plus its expiry minutes; what was forwarded otherwise. */
static long long
expiry(const json_t *forwarded, const json_t *container)
{
	json_t *last = json_object_get(container, "last_active_at");
	json_t *minutes = json_object_get(json_object_get(container, "expires_after"), "minutes");

	if (!json_is_integer(minutes))
		minutes = json_object_get(json_object_get(forwarded, "expires_after"), "minutes");
	if (json_is_integer(last) && json_integer_value(last) > 0)
		return json_integer_value(last) * 1000 + json_integer_value(minutes) * 60000;
	return store_now_ms() + json_integer_value(minutes) * 60000;
}

static void
on_created(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;
	struct create *c = op(r);
	json_t *container;

	call_note(r, res);
	/* The forwarded body held any domain secrets; it is done with. */
	secmem_wipe(c->forward, c->forward_len);
	redact_wipe_secrets(c->doc);
	if (!call_succeeded(res)) {
		/* Sent, and no answer says it failed: the container may exist,
		 * so its slot (for its hold) and its cost stay. */
		if (call_may_have_acted(res))
			tenancy_budget_spent(r);
		else
			tenancy_not_created(r);
		pipeline_resume(r, call_unsuccessful(r, res));
		return;
	}
	/* The upstream made a container: its cost is spent, whatever the
	 * gateway makes of the answer. */
	tenancy_budget_spent(r);
	err_clear(&r->error);
	r->rec.violations = json_array();
	container =
	        check_create_response(c->doc, res->body, res->len, r->rec.violations, &r->error);
	if (container == NULL || request_keep_answer(r, res) < 0) {
		json_decref(container);
		tenancy_not_created(r);
		if (r->error.status == 0)
			err_set(&r->error, 503, ERR_INTERNAL, "out_of_memory", NULL,
			        "the gateway ran out of memory with the upstream's answer");
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	text_copy(r->rec.container_id, sizeof(r->rec.container_id),
	          json_string_value(json_object_get(container, "id")));
	c->expires_at_ms = expiry(c->doc, container);
	json_decref(container);
	pipeline_resume(r, STEP_NEXT);
}

/* The forwarded body for the upstream to read: the text, with the
 * spool's bytes where its holes are. */
static size_t
forward_read(void *arg, char *buf, size_t n)
{
	struct create *c = op(arg);
	size_t k = 0, end, m;
	long got;

	while (k < n) {
		const struct jsonbuf_hole *h = c->hole < c->nholes ? &c->holes[c->hole] : NULL;

		if (h && c->text_at == h->at) {
			if (c->hole_done == h->len) {
				c->hole++;
				c->hole_done = 0;
				continue;
			}
			m = n - k < h->len - c->hole_done ? n - k : (size_t)(h->len - c->hole_done);
			if ((got = spool_read(c->spool, h->off + c->hole_done, buf + k, m)) <= 0)
				return UPSTREAM_ABORT;
			c->hole_done += (uint64_t)got;
			k += (size_t)got;
			continue;
		}
		end = h ? h->at : c->forward_len;
		m = n - k < end - c->text_at ? n - k : end - c->text_at;
		if (m == 0)
			break;
		memcpy(buf + k, c->forward + c->text_at, m);
		c->text_at += m;
		k += m;
	}
	return k;
}

static int
forward_rewind(void *arg)
{
	struct create *c = op(arg);

	c->text_at = c->hole = 0;
	c->hole_done = 0;
	return 0;
}

/* The decided document as it goes upstream. Compact text is never longer
 * than what the client sent, but for what the policy adds. A streamed
 * body's spooled strings are read back into it as it is sent. */
static enum step_result
forward(struct request *r)
{
	struct create *c = op(r);
	size_t sent = (size_t)r->http->body_seen, hint = sent + 512, max = sent * 2 + 64 * 1024;
	struct upstream_req up = {0};
	enum step_result res;
	size_t i;

	if (c->spool)
		c->forward = jsonbuf_dump_spooled(c->doc, c->text_len + 512, max, &c->forward_len,
		                                  &c->holes, &c->nholes);
	else
		c->forward = jsonbuf_dump(c->doc, hint, max, &c->forward_len);
	if (c->forward == NULL) {
		tenancy_not_created(r);
		return oom(r);
	}
	up.method = "POST";
	up.path = "/containers";
	if (c->spool) {
		up.read = forward_read;
		up.rewind = forward_rewind;
		up.body_size = (long long)c->forward_len;
		for (i = 0; i < c->nholes; i++)
			up.body_size += (long long)c->holes[i].len;
	} else {
		up.body = c->forward;
		up.body_len = c->forward_len;
	}
	r->forwarded = 1;
	res = call_start(r, &up, 1, NULL, on_created);
	if (res == STEP_FAIL)
		tenancy_not_created(r);
	return res;
}

/* The answer was checked as it arrived (on_created): the container and
 * its differences from what was forwarded are on record now. */
static enum step_result
check(struct request *r)
{
	if (json_array_size(r->rec.violations) > 0)
		log_msg(LOG_WARN, r->id, "upstream violation on container %s", r->rec.container_id);
	return STEP_NEXT;
}

static int violated(const struct request *r);

/* The container is the tenant's, unless it is withheld: then it is
 * nobody's, whatever becomes of it upstream. */
static enum step_result
own(struct request *r)
{
	if (violated(r))
		return tenancy_withheld(r);
	return tenancy_created(r, op(r)->expires_at_ms);
}

/* Identifiers the upstream hands back are checked like the client's before
 * they go into a path. */
static int
safe_id(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > REQUEST_ID_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

static int
violated(const struct request *r)
{
	return json_array_size(r->rec.violations) > 0 &&
	       policy_violation_mode(r->policy) != POLICY_VIOLATION_LOG;
}

static void
on_remediated(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;
	int deleted = call_succeeded(res);

	r->call = NULL;
	r->rec.remediation = json_pack("{s:s, s:s, s:o, s:s}", "action", "delete", "container_id",
	                               r->rec.container_id, "status",
	                               res->status ? json_integer(res->status) : json_null(),
	                               "outcome", deleted ? "deleted" : "failed");
	log_msg(deleted ? LOG_WARN : LOG_ERROR, r->id, "container %s broke the request; delete %s",
	        r->rec.container_id, deleted ? "succeeded" : "FAILED");
	err_set(&r->error, 502, ERR_UPSTREAM, "upstream_violation", NULL,
	        "the upstream created container %s with more than was asked for, so this gateway "
	        "%s; see the audit record of this request for the differences",
	        r->rec.container_id,
	        deleted ? "deleted it" : "tried to delete it and failed: delete it by hand");
	pipeline_resume(r, STEP_FAIL);
}

/* on_upstream_violation "delete": the container is removed upstream before
 * the client hears about it. */
static enum step_result
remediate(struct request *r)
{
	struct upstream_req up = {0};
	char path[REQUEST_ID_MAX + 16];

	if (!violated(r) || policy_violation_mode(r->policy) != POLICY_VIOLATION_DELETE)
		return STEP_NEXT;
	if (!safe_id(r->rec.container_id)) {
		r->rec.remediation =
		        json_pack("{s:s, s:s}", "action", "delete", "outcome",
		                  "not attempted: the container id is not a safe identifier");
		call_withheld(r);
		return STEP_FAIL;
	}
	text_join(path, sizeof(path), "/containers/", r->rec.container_id);
	up.method = "DELETE";
	up.path = path;
	return call_start(r, &up, 0, NULL, on_remediated);
}

static enum step_result
answer(struct request *r)
{
	if (violated(r)) {
		call_withheld(r);
		return STEP_FAIL;
	}
	reply_kept(r);
	return STEP_DONE;
}

/* What the container will cost: its memory for its expiry, both as
 * decided (the policy filled in any the client left out). */
static enum step_result
budget(struct request *r)
{
	const json_t *doc = op(r)->doc;
	const char *mem = json_string_value(json_object_get(doc, "memory_limit"));
	long long minutes = json_integer_value(
	        json_object_get(json_object_get(doc, "expires_after"), "minutes"));

	return tenancy_budget(r, tenancy_gb_minutes(mem, minutes), tenancy_usd(r, mem, minutes));
}

const struct step create_steps[] = {
        {"admit", tenancy_admit},
        {"receive", receive},
        {"validate", validate},
        {"decide", decide},
        {"admit_create", tenancy_admit_create},
        {"budget", budget},
        {"intent", call_intent},
        {"forward", forward},
        {"check", check},
        {"own", own},
        {"remediate", remediate},
        {"answer", answer},
        {NULL, NULL},
};
