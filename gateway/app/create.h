/*
 * create: POST /v1/containers (CreateContainer), the operation the
 * gateway exists for. Its steps, in order:
 *
 *   admit         the tenant's request rate
 *   validate      strict JSON, the upstream's contract
 *   decide        the policy: refuse, or rewrite into the document to send
 *   admit_create  the tenant's create rate and live-container slot
 *   intent        the audit intent line, durable before anything leaves
 *   forward       the decided document goes upstream
 *   check         the answer against what was forwarded and the spec
 *   own           the container becomes the tenant's
 *   remediate     on_upstream_violation "delete": delete what broke it
 *   answer        relay the container, or withhold it
 */
#ifndef GW_CREATE_H
#define GW_CREATE_H

#include "app/pipeline.h"

extern const struct step create_steps[];

#endif
