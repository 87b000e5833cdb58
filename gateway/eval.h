/*
 * eval: the policy's decision on a create body, without the upstream.
 *
 * `gateway eval --config FILE [--tenant NAME] < body.json` runs the same
 * steps a create goes through (strict JSON, the contract, the tenant's
 * policy, brokered secrets) and prints the outcome as JSON: the decision,
 * each rule that fired, and the document that would be forwarded with
 * every secret value masked. Nothing is sent anywhere.
 */
#ifndef GW_EVAL_H
#define GW_EVAL_H

/* Returns the exit status: 0 when a decision was printed (whatever it
 * was), 1 when the config or policy is unusable, 2 for a usage error. */
int eval_main(int argc, char **argv);

#endif
