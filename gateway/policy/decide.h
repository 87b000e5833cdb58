/*
 * decide: the policy's decision on one request, with nothing sent.
 *
 * What `gateway eval` shows and `gateway policy test` checks: the steps a
 * request takes that need neither the upstream nor the store, in the order
 * the gateway takes them. The operation's route; then its body: a create
 * checked against the contract and the container rules, a Responses call's
 * tools (each container a tool makes, and a stored prompt), a batch's
 * endpoint; a tenant's own rule on client secrets, and its brokered
 * secrets added. Ownership and the tenant's counted limits live in the
 * store and are not decided here. Pure, like the policy.
 */
#ifndef GW_DECIDE_H
#define GW_DECIDE_H

#include <jansson.h>

#include "lib/err.h"
#include "policy/policy.h"

struct operation;
struct policyset;
struct tenant;

struct decision {
	/* "allow", "deny" (refused by a rule), "shadow_deny" (a rule in
	 * shadow mode would refuse it) or "invalid" (the body breaks the
	 * API's contract). */
	const char *decision;
	struct err err;    /* deny, invalid */
	struct err shadow; /* shadow_deny */
	/* What was filled in, lowered or added, as the audit record says it
	 * (owned). */
	json_t *adjustments;
	/* The codes of the rules that decided something, each once: the
	 * policy's (policy_rules), "client_secrets_not_allowed" and
	 * "brokered_secrets". Static strings. */
	const char *rules[POLICY_MAX_RULES + 2];
	size_t nrules;
};

/* Every rule a tenant adds to its policy's (policy_rules): at most 2. */
size_t decide_tenant_rules(const struct tenant *t, const char **out, size_t max);

/*
 * Decides body (a parsed JSON value; NULL for none) sent to op by the
 * tenant t (NULL: the organization) under the policy set ps. body is
 * rewritten in place into what would be forwarded, secrets included (the
 * caller redacts before showing it). Returns 0 with d filled, or -1 when
 * memory ran out. Release d with decide_release.
 */
int decide(const struct policyset *ps, const struct tenant *t, const struct operation *op,
           json_t *body, struct decision *d);

void decide_release(struct decision *d);

#endif
