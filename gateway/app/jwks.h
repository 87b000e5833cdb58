/*
 * jwks: the identity provider's keys in force (auth.jwt), shared by every
 * event loop.
 *
 * The keys come from auth.jwt.jwks_file, read at start and on each reload
 * as part of building the new configuration, or from auth.jwt.jwks_url,
 * fetched with libcurl on the main loop, never on a request's path: at
 * start (the gateway serves before the first fetch lands; tokens are
 * refused 503 until it does), every auth.jwt.refresh_ms, and soon after a
 * token names a key the set lacks (at most once per JWKS_KICK_S). A fetch
 * that fails, or brings a set that does not parse, keeps the keys in
 * force and is tried again sooner.
 *
 * A new set is swapped in whole; a request verifies with the set it took
 * (a reference), so a swap never changes or frees keys in use. Workers
 * take sets and ask for fetches from their own threads; everything else
 * happens on the main loop.
 */
#ifndef GW_JWKS_H
#define GW_JWKS_H

#include "lib/err.h"

/* The least time between two fetches asked for by unknown key ids. */
#define JWKS_KICK_S 30

struct config;
struct event_base;
struct jwks;
struct jwks_set;
struct jwt_keys;

/* Keys of no one yet, fetched on base (the main loop) once configured.
 * NULL (with errs) when it cannot be set up. */
struct jwks *jwks_new(struct event_base *base, const char *file, struct errlist *errs);
void jwks_free(struct jwks *j);

/* Reads and parses the JWKS at path (auth.jwt.jwks_file): NULL with the
 * problem added to errs, cited at cfg_file's auth.jwt.jwks_file. */
struct jwt_keys *jwks_read_file(const char *path, const char *cfg_file, struct errlist *errs);

/* --check --online: fetches cfg's auth.jwt.jwks_url once, as the gateway
 * would (its CAs, timeouts and size bound), and adds to errs why it gives
 * no usable key set. Blocks up to the fetch's timeout. */
void jwks_check_url(const struct config *cfg, struct errlist *errs);

/*
 * Puts cfg's auth.jwt in force, on the main loop (at start, and for each
 * configuration a reload made). keys (taken; from jwks_read_file, or NULL)
 * replace the set in force; with auth.jwt.jwks_url, a URL not fetched
 * before is fetched now, the set from another source dropped meanwhile;
 * without auth.jwt, no set is kept. Returns 0, or -1 with errs when the
 * fetcher cannot be set up.
 */
int jwks_configure(struct jwks *j, const struct config *cfg, struct jwt_keys *keys,
                   struct errlist *errs);

/* The set in force with a reference (any thread), or NULL when none is
 * loaded yet; the keys are borrowed from it until it is released. */
struct jwks_set *jwks_get(struct jwks *j);
const struct jwt_keys *jwks_set_keys(const struct jwks_set *s);
void jwks_set_release(struct jwks_set *s);

/* A token named a key the set lacks: fetch auth.jwt.jwks_url again soon,
 * unless that was asked less than JWKS_KICK_S ago. Any thread. */
void jwks_want_refresh(struct jwks *j);

/* Whether a set is in force, or none is needed (auth.jwt is off). */
int jwks_ready(struct jwks *j);

#endif
