/*
 * check: whether the upstream did what was asked.
 *
 * A create response is held against the document the gateway forwarded:
 * the same memory_limit and network policy type, no domain beyond those
 * forwarded, an expiry no longer. A mismatch is a violation, recorded in
 * the audit log and, in block mode, kept from the client.
 */
#ifndef GW_CHECK_H
#define GW_CHECK_H

#include <jansson.h>
#include <stddef.h>

#include "lib/err.h"

struct schema;

/*
 * Parses and checks a 2xx create response. Returns the parsed container
 * (the caller owns it) and appends one object per mismatch to violations:
 * {"field", "forwarded", "returned"}. Returns NULL with e filled (status
 * 502, type upstream_error, code bad_upstream_response) when the body is not
 * a container object per the spec's ContainerResource. A field the
 * response leaves out is not a violation: the spec makes them optional.
 */
json_t *check_create_response(const json_t *forwarded, const char *body, size_t len,
                              json_t *violations, struct err *e);

/* What a 2xx answer of another operation must be. */
struct check_expect {
	const struct schema *schema; /* NULL: any JSON object */
	const char *id;              /* the answer's "id" must be this, when set */
	const char *container_id;    /* its (or each listed item's) "container_id" */
	int list;                    /* the items are under "data" */
};

/*
 * Checks a 2xx answer of any operation but create against the spec's
 * response schema and the ids in the request path. Every mismatch is
 * appended to violations as {"field", "problem"} or {"field", "requested",
 * "returned"}; an answer that is not JSON is one violation. Returns 0, or
 * -1 with e filled when memory runs out (the answer must then be withheld).
 */
int check_response(const struct check_expect *x, const char *body, size_t len, json_t *violations,
                   struct err *e);

/*
 * The containers an answer of the Responses API names: the container_id of
 * every code_interpreter_call item, and of every container_reference (a
 * shell call's environment), where the API puts them in doc (a response's
 * output, an output item, a stream event's item or response), never in
 * what the answer echoes of the request (its tools). found(arg, id) is
 * called for each, in order, duplicates included; ids are borrowed from
 * doc. Work is linear in doc's size. Returns how many were found.
 */
size_t check_containers(const json_t *doc, void (*found)(void *arg, const char *id), void *arg);

#endif
