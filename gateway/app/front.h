/*
 * front: the gateway's routes.
 *
 * Maps a method and path onto one of the Containers API operations (named
 * as in the spec), after checking that the path is one the upstream will
 * read exactly as the gateway did: no encoding, no dot segments, no empty
 * segments, identifiers of a safe alphabet and length.
 */
#ifndef GW_FRONT_H
#define GW_FRONT_H

struct request;

enum front_body {
	FRONT_BODY_NONE,   /* the operation takes no body */
	FRONT_BODY_JSON,   /* buffered whole, up to limits.max_body_bytes */
	FRONT_BODY_STREAM, /* passed upstream as it arrives, up to files.max_upload_bytes */
	FRONT_BODY_UPLOAD, /* route table only: JSON or STREAM, by Content-Type */
};

/*
 * Called once a request's head has been read. Returns how its body is to
 * be read (FRONT_BODY_NONE, _JSON or _STREAM), or -1 when the request has
 * already been answered (no route, wrong method, bad path or query, a
 * route the policy denies).
 */
int front_route(struct request *r);

/* Called once the body (if any) has been read in full, or for a streamed
 * body as soon as the head is in. */
void front_dispatch(struct request *r);

/* The spec's operationId for the request's route, or NULL. */
const char *front_operation(const struct request *r);

/* The route's name in the policy's "routes" ("files.create"), or NULL. */
const char *front_route_name(const struct request *r);

struct check_expect;

/* What a 2xx answer to the request's operation must be. */
void front_expect(const struct request *r, struct check_expect *x);

#endif
