/*
 * jsonbuf: JSON text written straight into one growing buffer.
 *
 * The hot path writes two audit lines and one forwarded body per request.
 * Building a json_t tree only to serialize it costs an allocation per
 * value, and jansson's dump keeps a hashtable of the objects it is inside;
 * this writes the bytes directly. The buffer grows up to a maximum fixed at
 * creation and is wiped when freed (a forwarded body holds secrets).
 *
 * Errors are sticky: once memory runs out or the maximum is reached every
 * later call does nothing and jsonbuf_take returns NULL, so a writer checks
 * once, at the end.
 */
#ifndef GW_JSONBUF_H
#define GW_JSONBUF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct jsonbuf;

/* hint: the expected size; max: the most the text may reach. */
struct jsonbuf *jsonbuf_new(size_t hint, size_t max);
void jsonbuf_free(struct jsonbuf *b);

/* An object or an array: brace is '{' or '['; close ends the innermost. */
void jsonbuf_open(struct jsonbuf *b, char brace);
void jsonbuf_close(struct jsonbuf *b);

/* A member's name inside an object; the next value is its value. */
void jsonbuf_key(struct jsonbuf *b, const char *key);

/* Values. A NULL string or json_t is written as null. A string that is not
 * UTF-8 has each bad byte replaced by U+FFFD: the text is always valid. */
void jsonbuf_str(struct jsonbuf *b, const char *s);
void jsonbuf_int(struct jsonbuf *b, long long v);
void jsonbuf_real(struct jsonbuf *b, double v, int precision);
/* v rounded to places (1 to 6) decimals, its trailing zeros dropped but
 * one ("80.0"): what jsonbuf_real(v rounded, 12) writes while that has
 * at most 12 digits, without printf. Beyond 1e12, or not finite, it is
 * jsonbuf_real(v, 12). */
void jsonbuf_decimal(struct jsonbuf *b, double v, int places);
void jsonbuf_bool(struct jsonbuf *b, int v);
void jsonbuf_null(struct jsonbuf *b);
void jsonbuf_json(struct jsonbuf *b, const json_t *v);

/* Bytes as they are, outside the structure (a suffix after the text). */
void jsonbuf_raw(struct jsonbuf *b, const char *s, size_t n);

/* The text so far, and its length; NULL once an error happened. */
const char *jsonbuf_text(const struct jsonbuf *b, size_t *len);

/* Hands the text over, NUL-terminated; free it with secmem_free. NULL after
 * an error. The jsonbuf is freed either way. */
char *jsonbuf_take(struct jsonbuf *b, size_t *len);

/* Compact JSON text of v (as json_dumps with JSON_COMPACT writes it), at
 * most max bytes; free with secmem_free. NULL on no memory or too big, or
 * when v holds a spooled string's stand-in (jsondoc.h). */
char *jsonbuf_dump(const json_t *v, size_t hint, size_t max, size_t *len);

/* Where a spooled string's text goes in a dump: the spool's bytes
 * [off, off + len) at offset at of the text. */
struct jsonbuf_hole {
	size_t at;
	uint64_t off, len;
};

/* jsonbuf_dump of a document that may hold stand-ins: each is written as
 * "" and listed in *holes (in order; free() it; NULL when none), so the
 * text with the spool's bytes put in is the whole document. */
char *jsonbuf_dump_spooled(const json_t *v, size_t hint, size_t max, size_t *len,
                           struct jsonbuf_hole **holes, size_t *nholes);

#endif
