/*
 * sse: a text/event-stream read as it streams past.
 *
 * Streamed answers (POST /v1/responses and chat completions with "stream":
 * true) are relayed to the client event by event as they arrive, never
 * buffered whole, and read on the way: the parser is fed the same bytes the
 * caller relays, in whatever pieces they come, and calls back once for each
 * event a browser's EventSource would dispatch (the WHATWG HTML standard,
 * "Server-sent events", "Interpreting an event stream"). It only observes:
 * the bytes are neither changed nor kept for the relay.
 *
 * Memory is bounded by the largest event the caller allows (max_event at
 * sse_new). An event past it is skipped, not an error: its dispatch says it
 * was too large and carries neither type nor data, and parsing goes on at
 * the next event. A stream is still relayed whole when one of its events is
 * too large to read; whether that is acceptable is the caller's decision.
 */
#ifndef GW_SSE_H
#define GW_SSE_H

#include <stddef.h>

#include "lib/err.h"

/* The largest max_event sse_new takes; larger values are lowered to it. */
#define SSE_MAX_EVENT_LIMIT ((size_t)1 << 30)

struct sse;

/*
 * One dispatched event. The size of an event is the bytes of its field
 * lines (every line but comments and the blank line that ends it, line ends
 * not counted, after UTF-8 decoding), which bounds what it holds.
 *
 * For an event within max_event: type is the event type ("message" when the
 * event named none) and data the data lines joined by LF; both are UTF-8
 * (invalid input decodes to U+FFFD, as the standard says) and NUL-terminated
 * past their lengths (data may hold NULs of its own). id is the stream's
 * last event id ("" when none was set), NUL-terminated. All three are
 * borrowed and valid only during the callback.
 *
 * For an event past max_event: too_large is 1, type and data are NULL with
 * lengths 0, and size is the event's full size. A field line that takes an
 * event past the limit, and every field line after it up to the blank line,
 * is not applied: an id or retry there does not take effect.
 */
struct sse_event {
	const char *type;
	size_t type_len;
	const char *data;
	size_t data_len;
	const char *id;
	size_t id_len;
	size_t size;
	int too_large;
};

/*
 * Called for each dispatched event. Returns 0 to go on, or -1 with e filled
 * to stop: sse_feed then returns -1 with that error, now and for good.
 */
typedef int (*sse_event_fn)(void *arg, const struct sse_event *ev, struct err *e);

/*
 * A parser for one stream that calls cb(arg, ...) for each event.
 * max_event (at least 1) bounds an event's size as struct sse_event defines
 * it. Returns NULL with e filled (503 out_of_memory; 500 for a NULL cb or a
 * max_event of 0).
 */
struct sse *sse_new(size_t max_event, sse_event_fn cb, void *arg, struct err *e);
void sse_free(struct sse *s);

/*
 * Reads the next len bytes of the stream, in which any piece may end
 * anywhere (within a line end or a UTF-8 sequence too), calling back for
 * each event they complete. Returns 0, or -1 with e filled when a callback
 * failed or memory ran out (503 out_of_memory); once it has returned -1 it
 * reads nothing more and returns the same error each time. An event not yet
 * ended by a blank line when the stream ends is never dispatched (the
 * standard discards it), so there is no call for the end.
 */
int sse_feed(struct sse *s, const char *buf, size_t len, struct err *e);

/* The reconnection time in milliseconds the stream last set with a valid
 * retry field (saturating at 2^53), or -1 if none. */
long long sse_retry(const struct sse *s);

/* The bytes s holds now: the struct and its buffers, as allocated. */
size_t sse_memory(const struct sse *s);

/*
 * Whether event data, read as JSON text, may hold word in a key or a string
 * value, decided without parsing it, so that the caller parses only the
 * events that may matter. Never 0 when the parsed text would hold word:
 * besides word itself, a \u escape of one of word's characters (which no
 * common encoder writes) answers 1. word is printable ASCII without '"' or
 * '\'; for any other word the answer is 1. Linear in len (times
 * strlen(word) at worst).
 */
int sse_data_may_contain(const char *data, size_t len, const char *word);

#endif
