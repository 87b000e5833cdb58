/*
 * batches: POST /v1/batches. A batch runs its input file's lines against
 * one endpoint, later, where the gateway does not see them; a batch of
 * POST /v1/responses lines can make containers no rule has checked. So a
 * batch whose endpoint makes containers is refused unless the policy
 * allows it (batches.allow_container_endpoints); any other is relayed.
 *
 *   admit      the tenant's request rate
 *   validate   strict JSON; the endpoint's check
 *   intent     the audit intent line
 *   relay      the body goes up as it came, the answer back
 */
#ifndef GW_BATCHES_H
#define GW_BATCHES_H

#include "app/pipeline.h"

extern const struct step batches_steps[];

#endif
