/*
 * request: the gateway's context for one request, from its head to its
 * audit record.
 *
 * What the transport read (head, body, client) is in http, a conn_req the
 * request owns; what the operation's steps share is here; what one
 * operation alone needs hangs off op. Freed in one place, request_free,
 * whichever way the request ended. It outlives its connection when the
 * client goes away while the upstream is still answering, so the audit
 * record is still written.
 */
#ifndef GW_REQUEST_H
#define GW_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "http/trace.h"
#include "lib/err.h"
#include "policy/check.h"

/* Longest identifier accepted in a path, and longest upstream path plus
 * query. */
#define REQUEST_ID_MAX   128
#define REQUEST_PATH_MAX 2048

/* "jwt:" and an issuer (auth.jwt.issuer, at most 200) "#" and a kid. */
#define REQUEST_CREDENTIAL_MAX 344

struct config;
struct conn_req;
struct event;
struct context;
struct policy;
struct operation;
struct route;
struct snapshot;
struct step;
struct store_op;
struct tenant;
struct upstream_call;
struct upstream_res;

/* What the audit record says of the request besides its outcome,
 * collected as the steps go. JSON values are owned. */
struct request_record {
	char upstream_request_id[128];
	int upstream_status;
	double upstream_ms;
	char container_id[REQUEST_ID_MAX + 1];
	char memory_limit[8];
	json_t *network_policy; /* redacted */
	json_t *adjustments;
	json_t *violations;
	json_t *remediation;
	json_t *tool_containers; /* a Responses call's containers as decided */
	json_t *containers;      /* the containers it made or used, by id */
	size_t bytes_out;
	int stream_status; /* a streamed answer's status, once it has begun */
};

/* An upstream answer kept past its callback, to be relayed once the store
 * has been told what it says. */
struct request_answer {
	char *body;
	size_t len;
	int status;
	char type[128];
};

struct request {
	struct context *ctx;      /* the event loop's */
	struct conn_req *http;    /* owned */
	struct snapshot *snap;    /* a reference: the config and policy it started under */
	const struct config *cfg; /* snap's */
	char id[40];
	struct trace_context trace; /* W3C trace context: the client's, or a new one */

	/* Who is asking and under which rules: the tenant its key or
	 * certificate names (NULL: the organization), and that tenant's
	 * policy or the organization's. The bearer key as authentication read
	 * it (pointing into the head; NULL when none): what goes upstream is
	 * built from it, never from the client's spelling. */
	const struct route *route;
	const struct operation *spec; /* the spec's operation (operations.h) */
	const char *operation;        /* the spec's operationId; NULL: no route */
	const char *route_name;       /* as the policy's "routes" names it */
	struct check_expect expect;   /* what a 2xx answer must be */
	const struct tenant *tenant;
	const struct policy *policy;
	const char *bearer;
	size_t bearer_len;
	/* Which credential it was, for the record: "key:" and the start of
	 * the key's SHA-256 (as the policy lists it), "cert:" and the client
	 * certificate's SHA-256 fingerprint, or "jwt:" and a token's issuer
	 * and key id (its digest's start while it is not verified). Never the
	 * key or the token. */
	char credential[REQUEST_CREDENTIAL_MAX];
	/* A verified token's person ({"sub", and auth.jwt.person_claims};
	 * owned), NULL otherwise; with a token, the organization's key goes
	 * upstream in either auth.mode: a token is no upstream key. */
	json_t *person;
	int token;
	struct err *shadow; /* the first denial a rule in shadow mode let pass (owned) */

	/* The path's identifiers, and the upstream's path and query rebuilt
	 * from what was checked (owned). */
	char container_id[REQUEST_ID_MAX + 1];
	char file_id[REQUEST_ID_MAX + 1];
	char *upstream_path;

	/* The pipeline (pipeline.c): its steps, where it is, why it failed. */
	const struct step *steps;
	size_t step;
	int in_step, resumed, free_pending;
	struct err error;
	const char *audit_code; /* the record's code when it differs from the reply's */
	int replied;

	/* What is under way: a store call, an upstream call. A step that
	 * streams hears the connection's events (conn.h's conn_event). */
	struct store_op *store_op;
	struct upstream_call *call;
	void (*on_event)(struct request *r, int event);
	/* A step that relays an answer may read it as it passes. */
	void (*observe)(struct request *r, const char *data, size_t n);
	int intent_pending;         /* its intent's durable callback has not run yet */
	struct event *intent_timer; /* ... and how long it may wait for it */
	int paused;                 /* the upstream call waits on the client */
	int relay_keeps_open;       /* transfer_stream: a later step ends the answer */
	int relay_broke;            /* ... and the upstream broke off (r->error says so) */

	/* The tenant's limits (tenancy.c): a live-container slot held for a
	 * create, the limit being counted, a Retry-After for the answer. */
	int holds_slot;
	int forwarded; /* a call that may make containers went upstream */
	int rate;
	/* What the request's containers cost (tenancy_budget): GB-minutes and
	 * the estimate in US dollars, for the record; held: the GB-minutes
	 * reserved from the tenant's budget and not yet spent for good, given
	 * back (unwind) if the request ends without the upstream making them. */
	struct request_budget {
		long long gb_minutes;
		double usd;
		long long held;
		int charged; /* gb_minutes were worked out (the record says so) */
		time_t at;   /* when they were reserved: the windows they count in */
	} budget;
	void (*unwind)(struct request *r);
	char retry_after[16];
	int no_retry; /* a refusal that will not clear by waiting */
	struct {
		json_t *items; /* borrowed */
		void (*then)(struct request *r, int ok);
	} filtering;
	struct tenancy_reconcile *reconcile; /* at the live cap (tenancy.c); owned */

	struct request_answer answer;
	struct request_record rec;

	/* One operation's own state, freed with op_free. */
	void *op;
	void (*op_free)(void *op);

	struct request *live_prev, *live_next; /* the context's requests */
};

/* A new request for what the transport read (taken), under the context's
 * snapshot now. NULL when memory runs out (http is not taken then). */
struct request *request_new(struct context *ctx, struct conn_req *http);

/* The first value of a request header, NUL-terminated in dst (n bytes),
 * or NULL when absent or longer than n - 1. */
const char *request_header(const struct request *r, const char *name, char *dst, size_t n);

/* Where to put a denial a rule in shadow mode lets pass: a new slot when
 * none was put yet (the record names the first), else NULL (also when
 * memory runs out: the record then says "allow"). */
struct err *request_shadow(struct request *r);

/* Whether the request's body is JSON by its Content-Type, or has none. */
int request_is_json(const struct request *r);

/* Copies an upstream answer (status, type, body) into r->answer, since
 * res lives only during its callback; -1 when memory runs out. */
int request_keep_answer(struct request *r, const struct upstream_res *res);

void request_free(struct request *r);

#endif
