/*
 * query: list parameters in a request target, checked and rebuilt.
 *
 * The query string is parsed into named values (percent-decoded, '+' read
 * as a space), each checked against what the operation accepts, and the
 * query forwarded upstream is rebuilt from the checked values, so the
 * upstream reads exactly what the gateway read.
 */
#ifndef GW_QUERY_H
#define GW_QUERY_H

#include <stddef.h>

#include "lib/err.h"

enum query_type {
	QUERY_INT,    /* decimal digits, within [min, max] */
	QUERY_ENUM,   /* one of enumv */
	QUERY_ID,     /* an identifier: letters, digits, '_' and '-', 1..128 */
	QUERY_STRING, /* any UTF-8 text without control characters, 1..max bytes */
};

struct query_param {
	const char *name;
	enum query_type type;
	long long min, max;
	const char *const *enumv;
};

/*
 * Checks raw (the text after '?', NULL or empty for none) against allowed,
 * which ends with a NULL name. On success writes the rebuilt query, without
 * the '?', into out (n bytes; "" when there is none) and returns 0. Returns
 * -1 with e filled (status 400, param the parameter) for an unknown or
 * repeated parameter, a bad escape, or a value that does not fit.
 */
int query_check(const char *raw, const struct query_param *allowed, char *out, size_t n,
                struct err *e);

#endif
