/*
 * operations: every operation of the upstream's spec, and the matcher that
 * finds one from a request's method and path.
 *
 * The table is generated from tests/conformance/openapi.yaml by
 * tests/spec/operations.py (`make operations`; `make spec-check` fails when
 * it drifts from the spec). It is sorted by operationId, so an operation's
 * index is stable for a given spec and the policy can keep one bit per
 * operation. Matching walks a path index generated with the table: no
 * allocation, one lookup per segment.
 */
#ifndef GW_OPERATIONS_H
#define GW_OPERATIONS_H

#include <stddef.h>

/* Room for the table: the policy's bitmaps are this wide. */
#define OPERATIONS_MAX 512
/* The most path parameters one operation has, and the most segments below
 * /v1 a path can have and still be an operation's. */
#define OPERATION_MAX_PARAMS    4
#define OPERATIONS_MAX_SEGMENTS 8

enum operation_method {
	OPERATION_GET,
	OPERATION_PUT,
	OPERATION_POST,
	OPERATION_DELETE,
	OPERATION_OPTIONS,
	OPERATION_HEAD,
	OPERATION_PATCH,
	OPERATION_TRACE,
	OPERATION_METHODS
};

/* What the gateway needs to know to carry an operation, from the spec. */
enum operation_flag {
	OPERATION_BODY = 1 << 0,           /* a request body is defined */
	OPERATION_BODY_REQUIRED = 1 << 1,  /* and the spec requires it */
	OPERATION_BODY_JSON = 1 << 2,      /* it may be application/json */
	OPERATION_BODY_MULTIPART = 1 << 3, /* it may be multipart/form-data */
	OPERATION_BODY_OTHER = 1 << 4,     /* it may be op->body_other */
	OPERATION_SSE = 1 << 5,            /* it may answer text/event-stream */
	OPERATION_STREAM_BODY = 1 << 6,    /* the body's boolean "stream" asks for that */
	OPERATION_STREAM_QUERY = 1 << 7,   /* the query's boolean "stream" asks for that */
	OPERATION_ANSWER_JSON = 1 << 8,    /* a 2xx answer may be a JSON document */
	OPERATION_ANSWER_BINARY = 1 << 9,  /* a 2xx answer may be bytes that are not JSON */
	OPERATION_ANSWER_NONE = 1 << 10,   /* a 2xx answer's content is not declared */
};

struct operation {
	const char *id;   /* the spec's operationId */
	const char *path; /* template below /v1: "/containers/{container_id}/files" */
	/* A query the spec writes into the path ("/responses?beta=true" is
	 * "beta=true"), or NULL. Such an operation is never matched by
	 * operations_match: its twin without the query is, and names it in
	 * variant. */
	const char *query;
	const char *body_other; /* the other request media type, or NULL */
	enum operation_method method;
	unsigned flags; /* enum operation_flag */
	unsigned short index;
	short variant; /* the twin at the same method and path, other query; -1: none */
	unsigned char nparams;
	const char *params[OPERATION_MAX_PARAMS]; /* in path order */
};

/* The table, sorted by id (strcmp); operations[i].index == i. */
extern const struct operation operations[];
extern const size_t operations_count;

/* The operation with this operationId (binary search), or NULL. */
const struct operation *operations_by_id(const char *id);

/* op's twin at the same method and path, one with the query the spec
 * writes into its path and one without (which of the two has it is in
 * ->query), or NULL. The caller picks the twin when the request's query
 * has that name=value. */
const struct operation *operation_variant(const struct operation *op);

/* "GET", "POST", ... */
const char *operation_method_name(enum operation_method m);

enum operations_found {
	OPERATIONS_FOUND,     /* m->op is the operation, m->params its parameters */
	OPERATIONS_NO_METHOD, /* the path is known; m->allowed has its methods (405) */
	OPERATIONS_NO_PATH,   /* no operation has this path (404) */
};

struct operations_param {
	const char *name;  /* the template's, e.g. "container_id" */
	const char *value; /* borrowed from the segment; not NUL-terminated */
	size_t len;
};

struct operations_match {
	const struct operation *op;
	unsigned allowed; /* bit m: method m is defined on the path */
	size_t nparams;
	struct operations_param params[OPERATION_MAX_PARAMS];
};

/*
 * Finds the operation for method (as sent: "GET", case-sensitive) on the
 * path below /v1, given as its n segments (seg[i], len[i] bytes each, not
 * NUL-terminated; "/v1/containers/c1" is {"containers", "c1"}). The caller
 * has already refused empty, dot and percent-encoded segments, and must
 * check each captured value against an alphabet it will forward: a
 * parameter takes any segment.
 *
 * The path is chosen first, then the method, as HTTP has it. A literal
 * segment wins over the parameter beside it whenever the rest of the path
 * matches through it: POST /responses/input_tokens is Getinputtokencounts,
 * and GET on it is 405 (allowed: POST), not getResponse; where the literal
 * leads to no operation's path the parameter takes the segment (POST
 * /responses/input_tokens/cancel is cancelResponse). An operation the spec
 * gives a query (op->query) is never the answer: its twin is, and names it
 * (operation_variant). Fills m; allocates nothing; the work is bounded by
 * OPERATIONS_MAX_SEGMENTS, more segments being NO_PATH at once.
 */
enum operations_found operations_match(const char *method, const char *const *seg,
                                       const size_t *len, size_t n, struct operations_match *m);

/* Writes the methods in mask as "GET, POST, DELETE" (for Allow and
 * messages), cut to fit; returns dst. */
char *operations_methods_text(unsigned mask, char *dst, size_t n);

/* The operationId closest to name (case aside, then by edit distance), for
 * "did you mean" in messages; NULL when none is close. */
const char *operations_closest(const char *name);

#endif
