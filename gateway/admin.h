/*
 * admin: the operators' listener (admin_listen), apart from client traffic.
 *
 *   GET /metrics   the gateway's metrics, Prometheus text format
 *   GET /healthz   200 while the process serves
 *   GET /readyz    200 when it can take traffic, else 503 with the reasons
 *
 * One small request per connection, answered and closed; heads, time and
 * connections are bounded. Nothing here reaches the pipeline or the
 * upstream, and nothing it answers is secret.
 */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include "lib/err.h"

struct admin;
struct server;

/* Listens on addr ("host:port", IPv6 in brackets). On failure returns NULL
 * with the problem added to errs, cited as file: admin_listen. */
struct admin *admin_new(struct server *srv, const char *addr, const char *file,
                        struct errlist *errs);
void admin_free(struct admin *a);

/* Whether addr is a usable admin_listen value, for --check. */
int admin_check_addr(const char *addr, const char *file, struct errlist *errs);

#endif
