/*
 * proxy: the pipeline for each operation.
 *
 * For a create: parse strictly, check against the contract, decide by the
 * policy, forward the document that was decided on, check the answer
 * against what was forwarded, and reply. Each step lives in its own module;
 * this one only runs them in order and records what they said.
 */
#ifndef GW_PROXY_H
#define GW_PROXY_H

struct request;

/* POST /v1/containers (CreateContainer). */
void proxy_create(struct request *r);

#endif
