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

#include "err.h"

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

#endif
