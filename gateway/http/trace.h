/*
 * trace: W3C Trace Context (the traceparent header), so a request can be
 * followed from the client through the gateway to the upstream.
 *
 * A client's traceparent ("00-<32 hex trace id>-<16 hex parent id>-<2 hex
 * flags>", lower case, neither id all zeros) is taken as the parent of
 * the gateway's own span; without one, or with one that is malformed (it
 * is then ignored, as the specification asks), a new trace starts. The
 * gateway's span gets an id of its own, and the upstream hears of it as
 * its parent.
 */
#ifndef GW_TRACE_H
#define GW_TRACE_H

#include <stddef.h>

#define TRACE_ID_HEX   32
#define TRACE_SPAN_HEX 16
#define TRACE_HEADER   55 /* "00-" trace "-" span "-" flags */

struct trace_context {
	char trace_id[TRACE_ID_HEX + 1];
	char span_id[TRACE_SPAN_HEX + 1];   /* the gateway's span */
	char parent_id[TRACE_SPAN_HEX + 1]; /* the client's span; "" when it sent none */
	int sampled;                        /* the client's flag; 1 for a new trace */
};

/* Whether value (len bytes) is a traceparent this gateway can follow;
 * fills the trace id, parent id and flag of t when it is. A version other
 * than 00 is read by its first 55 characters, as the specification asks
 * of versions it does not know; "ff" is never valid. */
int trace_parse(const char *value, size_t len, struct trace_context *t);

/* The request's trace: the client's (value, len; NULL for none) when it
 * parses, else a new one; either way a new span id. */
void trace_start(struct trace_context *t, const char *value, size_t len);

/* The traceparent the upstream gets: this trace, the gateway's span as
 * its parent. dst holds TRACE_HEADER + 1 bytes. */
void trace_header(const struct trace_context *t, char dst[TRACE_HEADER + 1]);

#endif
