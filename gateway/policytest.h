/*
 * policytest: `gateway policy test`, a policy's table of cases run as the
 * gateway would decide them, and which of its rules they exercised.
 *
 *   gateway policy test [--threshold PERCENT] [--verbose] CASES.json...
 *
 * A cases file names its policy (relative to the file) and lists cases:
 *
 *   {"policy": "../default.json",
 *    "cases": [{"name": "16g is refused", "tenant": "ml",
 *               "operation": "CreateContainer",
 *               "body": {"name": "x", "memory_limit": "16g"},
 *               "expect": {"decision": "deny", "code": "memory_limit_exceeded",
 *                          "param": "memory_limit", "forwarded": {...}}}]}
 *
 * "tenant" (default: the organization), "operation" (an operationId,
 * default CreateContainer) and every key of "expect" but "decision" may be
 * left out; "forwarded" must be contained in what would be forwarded.
 * Each case is decided by policy/decide.c, as eval and requests are. A
 * rule is exercised when some case made it decide something (deny, would
 * deny in shadow mode, or change the request); the rules are each
 * policy's own (policy_rules), the organization's and each tenant's.
 * Exit status: 0 every case passed and coverage reached the threshold
 * (default 0); 1 a case failed or coverage fell short; 2 a usage error or a
 * file that does not load.
 */
#ifndef GW_POLICYTEST_H
#define GW_POLICYTEST_H

/* argv[0] is "policy"; returns the exit status. */
int policytest_main(int argc, char **argv);

#endif
