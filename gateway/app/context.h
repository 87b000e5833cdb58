/*
 * context: what the gateway's requests on one event loop share.
 *
 * One per event loop (worker), made by the server and passed down to each
 * request, as h2o's h2o_context_t: the loop, its upstream client and
 * store connection, the audit log, the snapshot in force, and the
 * requests in flight. Nothing here reaches back into the server: what the
 * server wants to hear of a finished request (metrics, readiness) it hears
 * through the done callback it set.
 */
#ifndef GW_CONTEXT_H
#define GW_CONTEXT_H

#include <stdatomic.h>
#include <stddef.h>

#include "lib/err.h"

struct audit;
struct audit_event;
struct event_base;
struct jwks;
struct request;
struct snapshot;
struct store;
struct upstream;

struct context {
	struct event_base *base;
	struct upstream *upstream;
	struct store *store;
	struct audit *audit; /* shared by every loop */
	struct jwks *jwks;   /* the identity provider's keys, shared; may be NULL */

	/* The snapshot in force for requests starting now (a reference). */
	struct snapshot *snap;

	/* Requests in flight: this loop's (request.c keeps the list), and
	 * every loop's (shared, for limits.max_inflight). */
	struct request *live;
	size_t nlive;
	atomic_size_t *inflight;
	int own_inflight;

	/* Called once per request, right after its audit record is written. */
	void (*done)(void *arg, const struct audit_event *ev);
	void *done_arg;
};

/* A context over the given parts (borrowed; they outlive it), with a
 * reference to snap. inflight may be NULL for a loop of its own. NULL when
 * memory runs out. */
struct context *context_new(struct event_base *base, struct upstream *upstream, struct store *store,
                            struct audit *audit, struct snapshot *snap, atomic_size_t *inflight);

/* Every request still in flight must have ended (front_abort). */
void context_free(struct context *c);

/* Requests starting from now get snap (a new reference is taken). */
void context_set_snapshot(struct context *c, struct snapshot *snap);

/* Requests in flight on every loop that shares c's count. */
size_t context_inflight(const struct context *c);

#endif
