/*
 * target: a request target read as the front end reads it, before anything
 * else of the request: the path split into segments, refusing any form
 * that could be read two ways on the way upstream; the operation the
 * method and path name, its ?beta=true twin chosen by the query; and its
 * path parameters, each checked against the alphabet the gateway forwards.
 *
 * Pure: no I/O, no allocation, nothing kept between calls, so the front
 * end's reading of a target can be unit-tested and fuzzed on its own.
 */
#ifndef GW_TARGET_H
#define GW_TARGET_H

#include <stddef.h>

#include "policy/operations.h"

/* "v1" and the most segments below it an operation has. */
#define TARGET_MAX_SEGMENTS (OPERATIONS_MAX_SEGMENTS + 1)
/* Longest parameter of an operation other than the Containers ones (a
 * model's or a vector store's id); those ids take REQUEST_ID_MAX. */
#define TARGET_PARAM_MAX 256

enum target_found {
	TARGET_FOUND,     /* t->op, its parameters in t->match */
	TARGET_FRAGMENT,  /* 400: a '#' in the target */
	TARGET_BAD_PATH,  /* 400: t->why says what is wrong with the path */
	TARGET_NOT_FOUND, /* 404: no operation has this path */
	TARGET_NO_METHOD, /* 405: t->match.allowed has the path's methods */
	/* 400: t->op's twin's query pair named some other way (another
	 * value, case, escape, twice); t->op is the twin without it. */
	TARGET_BAD_QUERY,
	/* 400: t->op's parameter t->why is not of a form forwarded. */
	TARGET_BAD_PARAM,
};

struct target {
	size_t nseg; /* the path's segments, "v1" first; they point into path */
	const char *seg[TARGET_MAX_SEGMENTS];
	size_t len[TARGET_MAX_SEGMENTS];
	const struct operation *op;
	struct operations_match match; /* params point into path */
	const char *why;
};

/*
 * Reads method (as sent), path (the target before any '?', starting with
 * '/') and query (after the '?', or NULL), all NUL-terminated, into t.
 * Returns what was found; on TARGET_FOUND t->op is the operation (the twin
 * the query names, when it names one) and t->match.params its parameters,
 * each 1 to REQUEST_ID_MAX letters, digits, '_' or '-' for a container's
 * or file's id, else 1 to TARGET_PARAM_MAX of those or '.' or ':'.
 */
enum target_found target_read(const char *method, const char *path, const char *query,
                              struct target *t);

/* Whether a parameter called name takes the Containers ids' alphabet and
 * length (REQUEST_ID_MAX), rather than TARGET_PARAM_MAX and '.' and ':'. */
int target_is_id(const char *name);

#endif
