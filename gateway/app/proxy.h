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

/* The operations without a body to decide on: list, retrieve and delete
 * of containers and files. The answer is checked against the spec. */
void proxy_forward(struct request *r);

/* POST /v1/containers/{id}/files: JSON naming a file_id, or a multipart
 * upload streamed through as it is checked. */
void proxy_file_create(struct request *r);

/* GET .../files/{file_id}/content, streamed back as it arrives. */
void proxy_download(struct request *r);

/* Any other path under /v1, when routes.passthrough_unknown is set: the
 * request goes up as it came and the answer comes back unchecked. */
void proxy_passthrough(struct request *r);

#endif
