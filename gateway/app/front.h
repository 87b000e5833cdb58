/*
 * front: the gateway's door, the handler the transport calls (conn.h).
 *
 * For each request head: is there room (the audit log writable, fewer than
 * limits.max_inflight in flight), which route (one of the Containers API
 * operations, named as in the spec, after checking that the path is one
 * the upstream will read exactly as the gateway did: no encoding, no dot
 * segments, no empty segments, identifiers of a safe alphabet and length),
 * who is asking (authenticate), whether the policy lets them use it, the
 * query, and how the body is to be read. Once the body is in, the route's
 * pipeline runs (its steps are in create.c, forward.c and transfer.c).
 */
#ifndef GW_FRONT_H
#define GW_FRONT_H

#include "lib/err.h"

struct conn_handler;
struct context;

/* The handler; its arg is the event loop's struct context. */
extern const struct conn_handler front_handler;

/* Ends every request still in flight on ctx's loop with e, each
 * answered and audited (the shutdown's grace period is over). */
void front_abort(struct context *ctx, const struct err *e);

#endif
