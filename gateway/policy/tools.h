/*
 * tools: the containers a Responses request makes or uses, held to the
 * organization's container rules.
 *
 * POST /v1/responses makes a container for a code_interpreter tool whose
 * container is {"type": "auto", ...} and for a shell tool whose environment
 * is {"type": "container_auto", ...}; it uses an existing one for a
 * code_interpreter container given as an id and for a shell environment of
 * type container_reference. This module finds those tools wherever a
 * Responses body defines tools (its "tools", and the "tools" of its input
 * items of type tool_search_output and additional_tools, which the model
 * may call too), checks each against the upstream's contract (schema.c),
 * and applies to every container made the rules POST /v1/containers has
 * (policy_apply_container). Other tools and the rest of the body are not
 * the gateway's to judge and are left as they came. No I/O, like the
 * policy.
 */
#ifndef GW_TOOLS_H
#define GW_TOOLS_H

#include <jansson.h>
#include <stddef.h>

#include "policy/policy.h"

enum tools_kind {
	TOOLS_MADE, /* a container made for this request, from config */
	TOOLS_USED, /* an existing container, named by container_id */
};

/* The tool is in the body's own tools, not in an input item's. */
#define TOOLS_BODY ((size_t)-1)

struct tools_container {
	enum tools_kind kind;
	size_t item; /* the tool is input[item].tools[tool], or tools[tool] (TOOLS_BODY) */
	size_t tool;
	const char *field;        /* where in the tool: "container", "environment" or
	                             "environment.container_id" (static) */
	unsigned fields;          /* TOOLS_MADE: POLICY_FIELDS_CODE_INTERPRETER or _SHELL */
	json_t *config;           /* TOOLS_MADE: the config, in the body (borrowed) */
	const char *container_id; /* TOOLS_USED: in the body (borrowed) */
};

struct tools_result {
	/* As policy_apply_create's: the denial, the first shadow denial, the
	 * adjustments. */
	struct policy_result decision;
	/* Every container the body makes or uses, in the order of the body
	 * (its tools, then each input item's); owned, see tools_result_release. */
	struct tools_container *containers;
	size_t n, cap;
	size_t local; /* shell tools on a local environment: the client's own machine */
	size_t unset; /* shell tools without an environment (absent or null) */
};

/*
 * Decides the tools of a parsed Responses body (a JSON object, parsed
 * strictly). Each tool of type code_interpreter or shell is checked against
 * its schema (schema_code_interpreter_tool, schema_shell_tool), every one
 * before any rule runs, as a create is checked whole before it is decided;
 * then the container rules apply to each container made, in order:
 * memory_limit (absent or null: the policy's default is forwarded, never
 * left to the upstream), network_policy (absent: the policy's default),
 * skills (shell only) and file_ids. Containers made this way take no
 * expires_after (the contract has none; the upstream's own expiry applies).
 * A "tools" that is null is as good as none; one that is not an array is a
 * 400, since the tools in it could not be seen.
 *
 * Returns 0 when allowed: body is rewritten in place into what will be
 * forwarded (defaults filled in, memory clamped where the policy says so,
 * domains normalized), r->containers lists the containers made and used
 * and r->decision the adjustments and any shadow denial. Returns -1 when
 * refused, with r->decision.err filled: 400 invalid_request_error for a
 * malformed tool, 403 policy_violation, or 503 out_of_memory; body may
 * then be partly rewritten and is not to be forwarded. Every param is the
 * whole JSON path ("tools[1].container.memory_limit"); messages never
 * quote a secret. Linear in the size of the body. Either way, r is the
 * caller's to release.
 */
int tools_apply(const struct policy *p, json_t *body, struct tools_result *r);

void tools_result_release(struct tools_result *r);

/* The JSON path of c in the body: "tools[1].container",
 * "input[0].tools[2].environment.container_id". Returns dst. */
const char *tools_param(const struct tools_container *c, char *dst, size_t n);

/*
 * Whether a container the request makes carries domain_secrets of the
 * client's own; if so, the path of the first such list goes to param
 * ("tools[1].environment.network_policy.domain_secrets"). For a tenant
 * whose secrets only the gateway supplies (tenant_allow_client_secrets),
 * asked before tenant_inject_secrets adds them to each config.
 */
int tools_client_secrets(const struct tools_result *r, char *param, size_t n);

#endif
