/*
 * reply: the one way a request ends.
 *
 * Every reply writes the request's audit record first and then sends the
 * answer, and a request can be replied to once; so every request gets
 * exactly one response and one audit record, in that order. Error bodies
 * use the upstream's shape, {"error":{"message","type","param","code"}}.
 * A reply leaves the request for the pipeline's driver to free: a step
 * that answered returns STEP_DONE, a callback that answered resumes the
 * pipeline with STEP_DONE, and nothing else touches the request after.
 */
#ifndef GW_REPLY_H
#define GW_REPLY_H

#include <jansson.h>

#include "lib/err.h"

struct request;
struct upstream_res;

/* A refusal or failure, in the error shape, from e. Only the pipeline's
 * driver calls this (pipeline.c): everything else reports a failure. */
void reply_err(struct request *r, const struct err *e);

/* Relays the upstream's answer as it came: status, body, content type and
 * request id. */
void reply_relay(struct request *r, const struct upstream_res *res);

/* Relays the answer kept with request_keep_answer. */
void reply_kept(struct request *r);

/* An answer the gateway made itself (a tenant's filtered list). */
void reply_json(struct request *r, int status, const json_t *doc);

/*
 * The intent line of a request about to be forwarded (see audit.h):
 * returns 1 when the caller may forward now, 0 when durable will be called
 * first, -1 when it could not be written.
 */
int reply_intent(struct request *r, void (*durable)(void *arg, int ok));

/*
 * An answer streamed from the upstream as it arrives: begin sends the head
 * (status, type and length of res); data passes body bytes on; full says
 * when the client's side is full and the caller should pause; end writes
 * the audit record, with e saying why the stream was cut (NULL when it
 * completed), and finishes the answer. begin returns -1 when the client
 * has gone.
 */
int reply_stream_begin(struct request *r, const struct upstream_res *res);
void reply_stream_data(struct request *r, const char *data, size_t n);
int reply_stream_full(const struct request *r);
void reply_stream_end(struct request *r, const struct err *e);

#endif
