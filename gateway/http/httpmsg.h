/*
 * httpmsg: HTTP/1.1 request heads and chunked bodies, parsed strictly.
 *
 * Pure functions over bytes, no I/O, so the framing rules that stop request
 * smuggling can be unit-tested and fuzzed on their own. Anything ambiguous is
 * refused rather than guessed at.
 */
#ifndef GW_HTTPMSG_H
#define GW_HTTPMSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

#define HTTPMSG_MAX_HEADERS 100

struct httpmsg_header {
	const char *name;
	size_t name_len;
	const char *value; /* optional whitespace around it already trimmed */
	size_t value_len;
};

struct httpmsg_head {
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	int minor_version; /* HTTP/1.0 or HTTP/1.1 */
	size_t nheaders;
	/* The header lines: the slots httpmsg_parse was given, or a copy of
	 * just nheaders, so a head kept with a request is no larger than it. */
	struct httpmsg_header *headers;

	/* Derived from the headers. */
	int64_t content_length; /* -1 when absent */
	int chunked;            /* Transfer-Encoding: chunked */
	int keep_alive;         /* the connection may carry another request */
	int expect_continue;    /* Expect: 100-continue */
};

/*
 * Parses the request head at buf[0..len). Returns the head's length in
 * bytes, through the empty line, once it is complete; 0 while more bytes are
 * needed; -1 when the head is malformed or unacceptable, with e filled
 * (status 400, 431 when larger than max_head bytes or HTTPMSG_MAX_HEADERS
 * lines, 501 for an unsupported transfer coding, 505 for a version other
 * than 1.0 and 1.1, 417 for an Expect other than 100-continue). The header
 * lines go into slots, which h->headers then points to; the pointers in
 * them and in h point into buf.
 *
 * Stateless: call it again with the grown buffer after each read. It reads
 * no more than max_head bytes, and returns -1 (431) once len reaches max_head
 * without a complete head, so a caller never buffers more than that. Bytes
 * after the head (a body, a pipelined request) are left alone.
 */
ssize_t httpmsg_parse(const char *buf, size_t len, size_t max_head, struct httpmsg_head *h,
                      struct httpmsg_header slots[HTTPMSG_MAX_HEADERS], struct err *e);

/* The value of the first header called name (case-insensitive), or NULL;
 * *len receives its length. */
const char *httpmsg_header(const struct httpmsg_head *h, const char *name, size_t *len);

/* How many header fields are called name (case-insensitive). */
size_t httpmsg_header_count(const struct httpmsg_head *h, const char *name);

struct httpmsg_chunked;

struct httpmsg_chunked *httpmsg_chunked_new(void);
void httpmsg_chunked_free(struct httpmsg_chunked *c);

/*
 * Feeds len bytes of a chunked body. Decoded data is passed to emit as it is
 * found; *consumed receives how many input bytes were used (all of them
 * unless the body ended inside in). Returns 1 once the last chunk and the
 * trailer section have been read, 0 when more input is needed, -1 on a
 * malformed body with e filled (status 400). emit may be NULL. After 1 or -1,
 * later calls give the same answer and consume nothing. Trailer fields are
 * checked and dropped.
 */
int httpmsg_chunked_feed(struct httpmsg_chunked *c, const char *in, size_t len, size_t *consumed,
                         void (*emit)(void *arg, const char *data, size_t n), void *arg,
                         struct err *e);

#endif
