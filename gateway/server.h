/*
 * server: the running gateway.
 *
 * Owns the event loop, the configuration and policy in force, the upstream
 * client, the audit log, the listeners and the signals that run the
 * process's life: SIGTERM and SIGINT drain and stop, SIGHUP reloads,
 * SIGUSR1 reopens the log files.
 *
 * A reload builds a new configuration and policy (and TLS context) whole,
 * keeps the old ones if anything fails, and otherwise swaps them in. The
 * three travel together as a reference-counted snapshot: each request
 * holds the one in force when it started, so a reload never changes or
 * frees what a request in flight is using.
 *
 * With workers: N, there are N of these, one per event loop and thread:
 * the first (main) owns the signals, the admin listener, the audit log and
 * the metrics, which the others borrow; each worker has its own listening
 * socket on the same port (SO_REUSEPORT), upstream client, store
 * connection and requests, and takes the main loop's snapshots, stops and
 * aborts through a pipe. Everything below is called on the server's own
 * loop.
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include <stddef.h>

#include "lib/err.h"

struct audit;
struct audit_event;
struct config;
struct conn_limits;
struct event_base;
struct evbuffer;
struct metrics;
struct policy;
struct request;
struct store;
struct tls_server;
struct upstream;

struct server;
struct server_snapshot;

/* Loads everything the config names and binds the listeners. On failure
 * returns NULL with every problem added to errs. */
struct server *server_new(const char *config_path, struct errlist *errs);

/* Validates the config, the policy it names and the TLS files, binding
 * nothing. */
int server_check(const char *config_path, struct errlist *errs);

/* Serves until SIGINT or SIGTERM and the drain after it; returns the
 * process exit status. */
int server_run(struct server *s);

void server_free(struct server *s);

struct event_base *server_base(const struct server *s);
struct upstream *server_upstream(const struct server *s);
struct store *server_store(const struct server *s);
struct audit *server_audit(const struct server *s);
const struct conn_limits *server_limits(const struct server *s);
struct metrics *server_metrics(const struct server *s);
/* The listener's TLS context now, or NULL when it serves plain HTTP. */
struct tls_server *server_tls(const struct server *s);

/* The configuration and policy in force now: what a request starting now
 * gets. A request already running should use its own snapshot
 * (r->snap, below) instead. Borrowed; valid until the next reload. */
const struct config *server_config(const struct server *s);
const struct policy *server_policy(const struct server *s);

/*
 * A request's life, called by request_new and request_free: begin counts
 * it in flight and returns a reference to the snapshot in force (NULL only
 * when s is NULL); end drops both.
 */
struct server_snapshot *server_request_begin(struct server *s, struct request *r);
void server_request_end(struct server *s, struct request *r);

/* A snapshot's configuration and policy; borrowed from it. */
const struct config *server_snapshot_config(const struct server_snapshot *snap);
const struct policy *server_snapshot_policy(const struct server_snapshot *snap);

/* Requests being handled now. */
size_t server_inflight(const struct server *s);

/* Whether the server is stopping: connections close after their answer. */
int server_draining(const struct server *s);

/* Called once per request, right after its audit record was written:
 * counts it in the metrics and notes whether the audit log still takes
 * records. */
void server_request_done(struct server *s, const struct audit_event *ev);

/* Whether the gateway can take traffic: config loaded, not stopping, the
 * audit log writable, and every check added below passing. Returns 1, or 0
 * with the reasons in why. */
int server_ready(struct server *s, char *why, size_t n);

/* A readiness check of another part (a shared store, say): returns 1 when
 * ready, else 0 with a short reason in why. It runs on the event loop at
 * each /readyz, so it must not block: report the last known state. */
typedef int (*server_ready_fn)(void *arg, char *why, size_t n);
int server_add_ready_check(struct server *s, const char *name, server_ready_fn fn, void *arg);

/* Appends the metrics, Prometheus text format; -1 when memory runs out. */
int server_render_metrics(struct server *s, struct evbuffer *out);

#endif
