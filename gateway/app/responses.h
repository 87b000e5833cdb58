/*
 * responses: POST /v1/responses (and its ?beta=true twin and /compact),
 * where containers are made too: a code_interpreter tool's
 * {"type": "auto"} container, a shell tool's "container_auto"
 * environment. The organization's container rules hold there as on
 * POST /v1/containers, and what the call makes is its maker's. Steps:
 *
 *   admit         the tenant's request rate
 *   validate      strict JSON; a stored prompt only where the policy allows
 *   decide        every code_interpreter and shell tool against the
 *                 contract, every container made against the policy
 *                 (policy/tools.c); brokered secrets added
 *   check_refs    a container a tool names by id is the tenant's own
 *   admit_create  with containers to make: the tenant's create rate and a
 *                 live-container slot
 *   intent        the audit intent line
 *   forward       the decided body goes upstream; the answer comes back as
 *                 it arrives (Server-Sent Events with "stream": true), read
 *                 on the way for the containers it names (an event stream
 *                 the body did not ask for is read once whole); a client
 *                 that leaves mid-stream stops the upstream call
 *   own           each container the call made becomes the tenant's and
 *                 counts among its live ones, the client still there or
 *                 not (its record then says client_closed)
 *   answer        the answer's end, and the audit record naming them
 */
#ifndef GW_RESPONSES_H
#define GW_RESPONSES_H

#include "app/pipeline.h"

extern const struct step responses_steps[];

#endif
