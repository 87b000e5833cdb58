/*
 * admin: the operators' listener (admin_listen), apart from client traffic.
 *
 *   GET /metrics   the gateway's metrics, Prometheus text format
 *   GET /healthz   200 while the process serves
 *   GET /readyz    200 when it can take traffic, else 503 with the reasons
 *
 * Served by the same HTTP transport as the API (http/conn.h) through a
 * small handler of its own; heads, time and connections are bounded.
 * Nothing here reaches the pipeline or the upstream, and nothing it
 * answers is secret.
 */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include "lib/err.h"

#include <stddef.h>

struct admin;
struct event_base;
struct evbuffer;

/* Where the answers come from: readiness (1, or 0 with the reasons in
 * why) and the metrics (appended to out; -1 when memory runs out). */
struct admin_source {
	int (*ready)(void *arg, char *why, size_t n);
	int (*metrics)(void *arg, struct evbuffer *out);
	void *arg;
};

/* Listens on addr ("host:port", IPv6 in brackets) on base's loop. On
 * failure returns NULL with the problem added to errs, cited as file:
 * admin_listen. */
struct admin *admin_new(const struct admin_source *src, struct event_base *base, const char *addr,
                        const char *file, struct errlist *errs);
void admin_free(struct admin *a);

/* Whether addr is a usable admin_listen value, for --check. */
int admin_check_addr(const char *addr, const char *file, struct errlist *errs);

#endif
