#include "app/request.h"

#include <event2/event.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "app/context.h"
#include "app/snapshot.h"
#include "app/store.h"
#include "audit/audit.h"
#include "http/conn.h"
#include "http/upstream.h"
#include "lib/hex.h"
#include "lib/text.h"

/* Request ids: a random per-process prefix and a counter, so they are
 * unique without a syscall per request and unguessable across restarts. */
static uint64_t id_prefix;
static atomic_uint_fast64_t id_counter;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;

static void
id_init(void)
{
	if (RAND_bytes((unsigned char *)&id_prefix, sizeof(id_prefix)) != 1)
		id_prefix = (uint64_t)time(NULL) * 2654435761u;
}

static void
make_id(char *dst, size_t n)
{
	uint64_t v[2];
	unsigned char b[16];
	size_t i;

	pthread_once(&id_once, id_init);
	v[0] = id_prefix;
	v[1] = atomic_fetch_add_explicit(&id_counter, 1, memory_order_relaxed) + 1;
	/* "req_" and the two as 16 hex digits each, big-endian. */
	for (i = 0; i < 16; i++)
		b[i] = (unsigned char)(v[i / 8] >> (56 - 8 * (i % 8)));
	if (n < 4 + 2 * sizeof(b) + 1) {
		dst[0] = '\0';
		return;
	}
	memcpy(dst, "req_", 4);
	hex_encode(b, sizeof(b), dst + 4);
}

/* Counts r in flight on its loop, or no longer. */
static void
live_add(struct context *c, struct request *r)
{
	r->live_prev = NULL;
	r->live_next = c->live;
	if (c->live)
		c->live->live_prev = r;
	c->live = r;
	c->nlive++;
	atomic_fetch_add_explicit(c->inflight, 1, memory_order_relaxed);
}

static void
live_remove(struct context *c, struct request *r)
{
	if (r->live_prev)
		r->live_prev->live_next = r->live_next;
	else if (c->live == r)
		c->live = r->live_next;
	if (r->live_next)
		r->live_next->live_prev = r->live_prev;
	r->live_prev = r->live_next = NULL;
	c->nlive--;
	atomic_fetch_sub_explicit(c->inflight, 1, memory_order_relaxed);
}

struct request *
request_new(struct context *ctx, struct conn_req *http)
{
	struct request *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->ctx = ctx;
	r->http = http;
	r->snap = snapshot_ref(ctx->snap);
	r->cfg = snapshot_config(r->snap);
	make_id(r->id, sizeof(r->id));
	live_add(ctx, r);
	return r;
}

const char *
request_header(const struct request *r, const char *name, char *dst, size_t n)
{
	return conn_req_header(r->http, name, dst, n);
}

int
request_is_json(const struct request *r)
{
	const size_t n = strlen("application/json");
	size_t len;
	const char *ct = httpmsg_header(&r->http->head, "Content-Type", &len);

	if (ct == NULL)
		return 1;
	return len >= n && strncasecmp(ct, "application/json", n) == 0 &&
	       (len == n || ct[n] == ';' || ct[n] == ' ');
}

int
request_keep_answer(struct request *r, const struct upstream_res *res)
{
	free(r->answer.body);
	r->answer.body = malloc(res->len + 1);
	if (r->answer.body == NULL)
		return -1;
	memcpy(r->answer.body, res->body, res->len);
	r->answer.body[res->len] = '\0';
	r->answer.len = res->len;
	r->answer.status = res->status;
	text_copy(r->answer.type, sizeof(r->answer.type),
	          res->content_type[0] ? res->content_type : "application/json");
	return 0;
}

struct err *
request_shadow(struct request *r)
{
	if (r->shadow != NULL)
		return NULL;
	r->shadow = calloc(1, sizeof(*r->shadow));
	return r->shadow;
}

void
request_free(struct request *r)
{
	if (r == NULL)
		return;
	if (r->intent_pending)
		audit_forget(r->ctx->audit, r);
	if (r->intent_timer)
		event_free(r->intent_timer);
	upstream_cancel(r->call);
	store_cancel(r->store_op);
	/* What the request held and did not use goes back (tenancy.c). */
	if (r->unwind)
		r->unwind(r);
	if (r->op_free)
		r->op_free(r->op);
	json_decref(r->rec.network_policy);
	json_decref(r->rec.adjustments);
	json_decref(r->rec.violations);
	json_decref(r->rec.remediation);
	json_decref(r->rec.tool_containers);
	json_decref(r->rec.containers);
	json_decref(r->person);
	free(r->answer.body);
	free(r->shadow);
	free(r->reconcile);
	free(r->upstream_path);
	conn_req_free(r->http);
	live_remove(r->ctx, r);
	snapshot_release(r->snap);
	free(r);
}
