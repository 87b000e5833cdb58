/*
 * server: the running gateway.
 *
 * Owns the event loop, the loaded configuration and policy, the upstream
 * client, the audit log and the listener; the pipeline steps reach them
 * through the accessors below.
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include "err.h"

struct config;
struct policy;
struct upstream;
struct audit;
struct event_base;
struct conn_limits;

struct server;

/* Loads everything the config names and binds the listener. On failure
 * returns NULL with every problem added to errs. */
struct server *server_new(const char *config_path, struct errlist *errs);

/* Validates the config and the policy it names without binding anything. */
int server_check(const char *config_path, struct errlist *errs);

/* Serves until SIGINT or SIGTERM; returns the process exit status. */
int server_run(struct server *s);

void server_free(struct server *s);

struct event_base *server_base(const struct server *s);
const struct config *server_config(const struct server *s);
const struct policy *server_policy(const struct server *s);
struct upstream *server_upstream(const struct server *s);
struct audit *server_audit(const struct server *s);
const struct conn_limits *server_limits(const struct server *s);

#endif
