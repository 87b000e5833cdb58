/*
 * jsondoc: request and response bodies parsed strictly.
 *
 * A body is accepted only if every parser would read it the same way: no
 * duplicate keys (the gateway would check one value, the upstream use
 * another), valid UTF-8 without a BOM, no NUL escapes, no NaN or numbers
 * that overflow, nothing after the top-level object, bounded nesting.
 */
#ifndef GW_JSONDOC_H
#define GW_JSONDOC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

/*
 * Parses len bytes at buf into a new JSON object (the caller owns it).
 * On failure returns NULL with e filled: status 400, the JSON path of the
 * place it failed as param, and a message that never quotes the offending
 * bytes (they may be a secret).
 */
json_t *jsondoc_parse(const char *buf, size_t len, struct err *e);

/*
 * Large strings left in a spool. A body read as it arrives (jsonspool.h)
 * keeps a large string's text out of memory; the parser then makes a
 * stand-in for it, a JSON string no body can produce (it begins with a
 * NUL, which the parser never accepts), and jsondoc_spooled_of says what
 * it stands for. What reads a value it may stand in for (the contract's
 * lengths, the policy's sizes, the forwarded text) asks.
 */
struct jsondoc_spooled {
	uint64_t off, raw_len; /* its JSON text, between the quotes, in the spool */
	uint64_t len, chars;   /* its value's bytes and code points */
	unsigned char tail[2]; /* its value's last two bytes (the last in tail[1]) */
};

/* Why a spooled string's text is not a JSON string's, as the parser would
 * have said it. */
enum jsondoc_fault {
	JSONDOC_OK,
	JSONDOC_SYNTAX, /* a control character, an unknown escape, a lone surrogate */
	JSONDOC_UTF8,
	JSONDOC_NUL, /* \u0000 */
	JSONDOC_END, /* the body ends inside an escape */
};

/* One spooled string, for jsondoc_parse_spooled: where its stand-in ""
 * is in the text parsed (at: just past its opening quote), where its text
 * began in the body (orig), and what it holds or why it is not JSON
 * (fault, at byte fault_at of the body). */
struct jsondoc_ref {
	size_t at;
	uint64_t orig;
	struct jsondoc_spooled s;
	enum jsondoc_fault fault;
	uint64_t fault_at;
};

/* jsondoc_parse of a body whose large strings were spooled: buf is the
 * body with each one's text taken out (refs, in order, say where); each
 * becomes a stand-in. What it accepts, and every error's message and
 * param, are what jsondoc_parse of the whole body gives. */
json_t *jsondoc_parse_spooled(const char *buf, size_t len, const struct jsondoc_ref *refs,
                              size_t nrefs, struct err *e);

/* 1 with *s filled when v is a spooled string's stand-in, else 0. */
int jsondoc_spooled_of(const json_t *v, struct jsondoc_spooled *s);

/*
 * Writes the JSON path of the value being read at byte offset off of buf
 * ("network_policy.allowed_domains[2]") into dst, "" at the top level.
 * Assumes buf[0..off) is well-formed JSON so far. A key that is not short
 * printable ASCII is never written (it could be anything, even a secret):
 * the path stops before it and 0 is returned; 1 when the path is whole.
 */
int jsondoc_path_at(const char *buf, size_t len, size_t off, char *dst, size_t n);

/* What jansson found wrong with a file (je->text), without the bytes it
 * quotes ("near '...'", up to 20 of them): in a config or policy they may
 * be a secret, which the log and the audit log would then keep. A
 * duplicate key keeps its quote (a key is no secret, and names the
 * place). Written to dst (n bytes), which is returned. */
const char *jsondoc_file_error(const json_error_t *je, char *dst, size_t n);

/* What a one-letter JSON escape (the letter after the backslash) stands
 * for, or NUL for a letter that is none. */
char jsondoc_unescape(unsigned char c);

/* How many bytes at the start of s (n bytes) a JSON string holds as they
 * are: printable ASCII but '"' and '\\'. Eight at a time; the parser and
 * jsonbuf spend most of a large body's time here. */
size_t jsondoc_plain_run(const char *s, size_t n);

/* Whether a key may be shown in a path or a message: 1 to 128 bytes of
 * printable ASCII. */
int jsondoc_key_showable(const char *key);

/* Appends ".key" (or "key" at the start) or "[i]" to a path being built in
 * dst (n bytes); returns the previous length so the caller can cut back.
 * A key that is not showable, or does not fit, is not appended. */
size_t jsondoc_path_push_key(char *dst, size_t n, const char *key);
size_t jsondoc_path_push_index(char *dst, size_t n, size_t i);

#endif
