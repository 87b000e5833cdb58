/*
 * redis: one connection to a Redis server on an event loop.
 *
 * Commands go out in RESP, formatted by hiredis, and replies come back
 * through hiredis's reader; the bytes travel on a libevent bufferevent,
 * plain TCP or TLS (OpenSSL, the server's name checked), so a managed
 * Redis that needs TLS and a password works (Debian's hiredis 0.14 has no
 * TLS of its own). On connecting it sends AUTH (a password, or a user and
 * a password: an ACL user) and SELECT; a refused AUTH is logged as such.
 * A lost connection fails what is waiting and is made again, at most once
 * a second, when the next command comes. Everything runs on the loop.
 */
#ifndef GW_REDIS_H
#define GW_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "lib/err.h"

struct event_base;
struct redis;
struct redis_cmd;

struct redis_settings {
	char host[256];
	int port;
	int db;
	char user[128];      /* "" for none (the default user) */
	char *password;      /* NULL for none; secure memory, owned by the settings */
	int tls;             /* rediss:// */
	const char *ca_file; /* TLS: CAs the server is checked against; NULL: the system's */
	const char *cert_file, *key_file; /* TLS: a client certificate, or NULL */
};

/* Reads a store URL, redis://[user[:password]@]host[:port][/db] or
 * rediss://... for TLS, into s (the password, if any, in secure memory).
 * Returns 0, or -1 with e saying what is wrong (never quoting a password). */
int redis_parse_url(const char *url, struct redis_settings *s, struct err *e);

/* Wipes and frees what redis_parse_url allocated. */
void redis_settings_clear(struct redis_settings *s);

/* A connection to the server s names (copied), made at the first command.
 * NULL with e filled when the TLS settings cannot be loaded. */
struct redis *redis_new(struct event_base *base, const struct redis_settings *s, struct err *e);
void redis_free(struct redis *r);

/*
 * Sends argv. fn(arg, reply) runs once from the loop: with the server's
 * reply (an error reply included; valid during the call), or NULL when
 * there was none (no connection, or it was lost). Returns NULL when the
 * command cannot even be queued (fn does not run then).
 */
typedef void (*redis_reply_fn)(void *arg, const redisReply *reply);
struct redis_cmd *redis_command(struct redis *r, int argc, const char **argv, redis_reply_fn fn,
                                void *arg);

/* fn will not run; the reply, when it comes, is read and dropped. */
void redis_cancel(struct redis_cmd *c);

/* Whether the connection is up and authenticated. */
int redis_connected(const struct redis *r);

/* Why the last connection was lost or refused ("" when none was). */
const char *redis_last_error(const struct redis *r);

#endif
