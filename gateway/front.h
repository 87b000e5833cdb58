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
	FRONT_BODY_NONE, /* the operation takes no body */
	FRONT_BODY_JSON, /* buffered whole, up to limits.max_body_bytes */
};

/*
 * Called once a request's head has been read. Returns how its body is to
 * be read, or -1 when the request has already been answered (no route,
 * wrong method, bad path).
 */
int front_route(struct request *r);

/* Called once the body (if any) has been read in full. */
void front_dispatch(struct request *r);

/* The spec's operationId for the request's route, or NULL. */
const char *front_operation(const struct request *r);

#endif
