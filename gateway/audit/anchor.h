/*
 * anchor: checkpoints leave the host.
 *
 * A log that lives only on the gateway's disk can be rewritten, or cut
 * short, by whoever holds that disk and the signing key, and nobody else
 * could tell. Each signed checkpoint is therefore handed over here and
 * shipped, off the event loops, on a thread of its own:
 *
 *   - to a witness (audit.witness_url): an HTTP POST of the note, as
 *     text/plain. A 2xx answer holding signature lines is the witness's
 *     cosignature; it is handed back, on the loop anchor_new was given, to
 *     be appended to the stored checkpoint.
 *   - to Redis (audit.anchor, "redis://host:port/db"): RPUSH of the note
 *     onto a list, "gateway:audit:checkpoints:<origin>".
 *
 * Only the newest checkpoint waits for each: a newer one replaces one not
 * yet shipped, since it vouches for everything the older did. A failure is
 * logged, counted and tried again after 1 s, doubling to at most 60 s.
 */
#ifndef GW_ANCHOR_H
#define GW_ANCHOR_H

#include <stddef.h>

#include "lib/err.h"

struct event_base;
struct anchor;

struct anchor_settings {
	const char *witness_url; /* NULL: no witness */
	const char *redis_url;   /* NULL: no Redis */
	const char *origin;      /* names the Redis list */
	long timeout_ms;         /* each attempt */
};

/* cosigned(arg, note, len): a witness's cosignature, appended to the note
 * it signed; runs on base's loop (or in anchor_free). */
typedef void (*anchor_cosigned_fn)(void *arg, const char *note, size_t len);

/* Starts the thread. NULL with e set when it cannot. */
struct anchor *anchor_new(struct event_base *base, const struct anchor_settings *s,
                          anchor_cosigned_fn cosigned, void *arg, struct err *e);

/* Tries once more, within the timeout, what is left to ship; then stops
 * the thread and hands back the last cosignatures. */
void anchor_free(struct anchor *an);

/* Queues a signed note (copied) to be shipped; any thread. */
void anchor_ship(struct anchor *an, const char *note, size_t len);

/* Attempts that failed since start, all destinations together. */
unsigned long anchor_failures(const struct anchor *an);

#endif
