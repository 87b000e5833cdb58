/*
 * reply: the one way a request ends.
 *
 * Every reply writes the request's audit record first and then sends the
 * answer, and a request can be replied to once; so every request gets
 * exactly one response and one audit record, in that order. Error bodies
 * use the upstream's shape, {"error":{"message","type","param","code"}}.
 */
#ifndef GW_REPLY_H
#define GW_REPLY_H

#include "err.h"

struct request;
struct upstream_res;

/* Answers with the error shape. param and code may be NULL. */
void reply_error(struct request *r, int status, const char *type, const char *param,
                 const char *code, const char *message);

/* reply_error from a filled struct err. */
void reply_err(struct request *r, const struct err *e);

/* Relays the upstream's answer as it came: status, body, content type and
 * request id. */
void reply_relay(struct request *r, const struct upstream_res *res);

#endif
