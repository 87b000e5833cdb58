/*
 * store: the state replicas share: rate-limit counters, each tenant's live
 * containers, and which tenant owns which container.
 *
 * Two backends behind one interface: "memory" (in this process) and
 * "redis" (redis.c: one connection per event loop, plain or TLS, with a
 * password; counters changed by Lua scripts so replicas never race). Every call answers through its
 * callback, from the event loop, never before it returns; a call can be
 * cancelled, after which its callback does not run.
 */
#ifndef GW_STORE_H
#define GW_STORE_H

#include "lib/err.h"

struct event_base;
struct config;
struct store;
struct store_op;

enum store_status { STORE_OK, STORE_UNAVAILABLE };

/* allowed: whether the count stayed within the limit; retry_after_ms: when
 * it may next fit, when it did not. */
typedef void (*store_count_fn)(void *arg, enum store_status st, int allowed,
                               long long retry_after_ms);
/* value: NULL when the key does not exist. */
typedef void (*store_get_fn)(void *arg, enum store_status st, const char *value);
typedef void (*store_done_fn)(void *arg, enum store_status st);

/* A store per the config's store.* keys. */
struct store *store_new(struct event_base *base, const struct config *cfg, struct err *e);
/* A store for another worker's event loop, sharing like's state: the same
 * memory tables (behind a lock), or the same redis server over a
 * connection of its own. */
struct store *store_clone(struct store *like, struct event_base *base, struct err *e);

void store_free(struct store *s);

/* Whether the store is reachable (for readiness checks): the last call
 * reached it and the connection is up; a lost one is tried again. */
int store_reachable(struct store *s);

/* Counts one hit on key in a fixed window of window_ms that starts with its
 * first hit; allowed while the window's count is at most limit. */
struct store_op *store_hit(struct store *s, const char *key, long long limit, long long window_ms,
                           store_count_fn fn, void *arg);

/*
 * Live sets: a tenant's containers, each with an expiry hint (wall clock
 * ms), and "pending:<request>" members holding a slot for a create not yet
 * answered. A pending member counts until its hint; a container counts
 * until it is removed (deleted, or found gone upstream), whatever its hint
 * says: the hint only tells when to ask the upstream again.
 *
 * store_reserve adds member, until expires_at_ms, if the set holds fewer
 * than max members that count.
 */
struct store_op *store_reserve(struct store *s, const char *key, const char *member, long long max,
                               long long expires_at_ms, store_count_fn fn, void *arg);

/* Replaces member from with to in the live set key (to NULL: removes
 * from; to == from: a new hint for it). */
struct store_op *store_settle(struct store *s, const char *key, const char *from, const char *to,
                              long long expires_at_ms, store_done_fn fn, void *arg);

struct store_op *store_get(struct store *s, const char *key, store_get_fn fn, void *arg);

/* Sets key to value for ttl_ms unless it is set already, in one step (two
 * replicas cannot both claim it). The callback gets the value the key
 * held before (NULL or "": this call set it). */
struct store_op *store_claim(struct store *s, const char *key, const char *value, long long ttl_ms,
                             store_get_fn fn, void *arg);

/* Up to max containers of the live set key whose hint has passed (their
 * names, valid during the callback). */
typedef void (*store_mget_fn)(void *arg, enum store_status st, char *const *values, size_t n);
struct store_op *store_stale(struct store *s, const char *key, size_t max, store_mget_fn fn,
                             void *arg);

/* The values of n keys at once (NULL where a key does not exist);
 * values[] is valid only during the callback. */
struct store_op *store_mget(struct store *s, const char *const *keys, size_t n, store_mget_fn fn,
                            void *arg);

/* Sets key to value for ttl_ms; value NULL deletes it. */
struct store_op *store_set(struct store *s, const char *key, const char *value, long long ttl_ms,
                           store_done_fn fn, void *arg);

/*
 * Budgets: adds amount to each of the n counters keys[] (n at most
 * STORE_SPEND_MAX; a counter is a value holding an integer, kept for
 * ttl_ms[i] from its first spend), all of them or none, in one step so
 * replicas never overspend between them: when any would pass its limit
 * (limits[i] > 0), none changes, allowed is 0 and which names the first.
 * A negative amount gives back (never below 0) and is always allowed.
 * used[] holds the counters after (refused: as they stand). In Redis,
 * what was taken is noted under marker (a key naming this spend, e.g. its
 * request), for store_give_back.
 */
#define STORE_SPEND_MAX 4
typedef void (*store_spend_fn)(void *arg, enum store_status st, int allowed, size_t which,
                               const long long *used);
struct store_op *store_spend(struct store *s, const char *const *keys, const long long *limits,
                             const long long *ttl_ms, size_t n, long long amount,
                             const char *marker, store_spend_fn fn, void *arg);

/*
 * Gives back to the n counters keys[] that exist (never below 0) what the
 * spend of marker took: in Redis, what its marker says, exactly once
 * however often it is sent, and nothing when the spend never arrived (a
 * spend arriving after its give-back then takes nothing), so a spend
 * whose answer timed out is given back too; in memory, amount. The store
 * keeps it and sends it again (from 1 s, doubling to a minute, for about
 * an hour) while Redis cannot be reached or does not answer in time.
 * Nobody is called back; what is still unsent when the store is freed is
 * logged as lost (a stop waits for store_give_backs to reach 0, up to its
 * grace).
 */
void store_give_back(struct store *s, const char *const *keys, const long long *ttl_ms, size_t n,
                     long long amount, const char *marker);

/* How many give-backs Redis has not taken yet. */
size_t store_give_backs(const struct store *s);

/* Its callback will not run. NULL is fine. */
void store_cancel(struct store_op *op);

/* Milliseconds since the epoch, the clock live sets are kept in. */
long long store_now_ms(void);

#endif
