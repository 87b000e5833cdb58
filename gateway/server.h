/*
 * server: the running gateway, wired together.
 *
 * Owns the event loops and what lives on them, the snapshot in force
 * (config, policy, TLS context; see app/snapshot.h), the audit log, the
 * listeners and the signals that run the process's life: SIGTERM and
 * SIGINT drain and stop, SIGHUP reloads, SIGUSR1 reopens the log files.
 *
 * Each event loop has a transport (http/conn.h) whose handler is the
 * gateway's front door (app/front.h), and an app context
 * (app/context.h) with the loop's upstream client and store connection.
 * The server makes them, hands them the snapshot on reload, and, when the
 * shutdown's grace period is over, asks the contexts to end what is left;
 * it never answers a request itself.
 *
 * With workers: N there are N loops, each on its own thread with its own
 * listening socket on the same port (SO_REUSEPORT); the first (main) owns
 * the signals, the admin listener, the audit log and the metrics, which
 * the others borrow, and tells the others of reloads and stops through a
 * pipe each.
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include <stddef.h>

#include "lib/err.h"

struct evbuffer;
struct server;

/* Loads everything the config names and binds the listeners. On failure
 * returns NULL with every problem added to errs. */
struct server *server_new(const char *config_path, struct errlist *errs);

/* Everything the start would check, binding nothing: the config, the
 * policy it names, the TLS files and keys, and that every file the
 * gateway writes can be written; with online, that the redis store
 * answers. Every problem goes to errs, in one pass. */
int server_check(const char *config_path, int online, struct errlist *errs);

/* Serves until SIGINT or SIGTERM and the drain after it; returns the
 * process exit status. */
int server_run(struct server *s);

void server_free(struct server *s);

/* Whether the gateway can take traffic: config loaded, not stopping, the
 * audit log writable, the store reachable. Returns 1, or 0 with the
 * reasons in why. For /readyz. */
int server_ready(struct server *s, char *why, size_t n);

/* Appends the metrics, Prometheus text format; -1 when memory runs out.
 * For /metrics. */
int server_render_metrics(struct server *s, struct evbuffer *out);

#endif
