/*
 * policy: the organization's rules for containers, as a pure decision.
 *
 * A policy is compiled once from its JSON document. Applying it to a request
 * that already passed the schema either denies it, naming the rule and the
 * field, or rewrites it into exactly the document the gateway will forward:
 * defaults filled in, memory clamped where the policy says so, domains
 * normalized. The rules are written once, for a container config found at
 * some path of a request (a create body, or a container a Responses tool
 * makes; see tools.c). No I/O happens here, so every rule is a unit test
 * away.
 */
#ifndef GW_POLICY_H
#define GW_POLICY_H

#include <jansson.h>

#include "lib/err.h"

struct policy;

enum policy_violation_mode {
	POLICY_VIOLATION_LOG,    /* audit the mismatch, relay the answer */
	POLICY_VIOLATION_BLOCK,  /* audit it and answer 502 instead */
	POLICY_VIOLATION_DELETE, /* as block; a created container is deleted too */
};

/* Compiles a parsed policy document; file names it in errors. Its
 * "tenants", if any, are left to policyset.c, which reads the file and
 * builds the organization's policy and its tenants together. On failure
 * returns NULL with every problem found added to errs. */
struct policy *policy_new(const json_t *doc, const char *file, struct errlist *errs);

void policy_free(struct policy *p);

/* A create changes at most three things; a Responses request with many
 * tool containers may change more, and the rest are only counted. */
#define POLICY_MAX_ADJUST 16
/* More than the rules there are (policy_rules). */
#define POLICY_MAX_RULES 32
#define POLICY_WHOSE_MAX 96

struct policy_result {
	struct err err;    /* why, when denied */
	struct err shadow; /* the first denial a rule in shadow mode let pass */
	size_t nshadow;    /* how many such denials there were */
	size_t nadjust;
	char adjust[POLICY_MAX_ADJUST][160]; /* what was changed on the way */
	size_t nadjust_dropped;              /* changes past POLICY_MAX_ADJUST, not kept */
	/* The codes of the rules that decided something (denied, would have
	 * denied in shadow mode, changed the request), each once, in order;
	 * for `gateway policy test`'s coverage. Static strings. */
	const char *rules[POLICY_MAX_RULES];
	size_t nrules;
};

/*
 * Decides a create request. doc must have passed schema_create_container_body.
 * Returns 0 when allowed, with doc rewritten in place into the document to
 * forward and r->adjust listing what changed; -1 when denied, with r->err
 * filled (status 403, type policy_violation). Messages never quote a secret.
 */
int policy_apply_create(const struct policy *p, json_t *doc, struct policy_result *r);

/*
 * The fields a container config may carry, and so the rules applied to it.
 * A field the config may not carry is neither checked nor filled in: a
 * tool's container has no expires_after (the upstream's own session
 * expiry applies to it), so none is added.
 */
#define POLICY_FIELD_MEMORY  0x01u /* memory_limit: absent or null gets the default */
#define POLICY_FIELD_EXPIRY  0x02u /* expires_after: absent gets the default */
#define POLICY_FIELD_NETWORK 0x04u /* network_policy: absent gets the default */
#define POLICY_FIELD_SKILLS  0x08u
#define POLICY_FIELD_FILES   0x10u
/* A POST /v1/containers body (CreateContainerBody). */
#define POLICY_FIELDS_CREATE                                                                       \
	(POLICY_FIELD_MEMORY | POLICY_FIELD_EXPIRY | POLICY_FIELD_NETWORK | POLICY_FIELD_SKILLS |  \
	 POLICY_FIELD_FILES)
/* A code_interpreter tool's container (AutoCodeInterpreterToolParam). */
#define POLICY_FIELDS_CODE_INTERPRETER                                                             \
	(POLICY_FIELD_MEMORY | POLICY_FIELD_NETWORK | POLICY_FIELD_FILES)
/* A shell tool's container_auto environment (ContainerAutoParam). */
#define POLICY_FIELDS_SHELL                                                                        \
	(POLICY_FIELD_MEMORY | POLICY_FIELD_NETWORK | POLICY_FIELD_SKILLS | POLICY_FIELD_FILES)

/*
 * Applies the container rules of fields to one container config cfg, an
 * object that passed its schema, found at the JSON path at of the request
 * ("" for a create body, "tools[1].container" for a tool's). Every param,
 * message and adjustment names a field by its whole path
 * ("tools[1].container.memory_limit"). The rules are the create's, in the
 * same order with the same codes and messages; policy_apply_create is this
 * with at "" and POLICY_FIELDS_CREATE. Adds to r, which the caller zeroes
 * before the first config of a request, so one request's configs share one
 * result: its adjustments and its first shadow denial. Returns 0, with cfg
 * rewritten in place, or -1 with r->err filled (403, or 503 out_of_memory).
 */
int policy_apply_container(const struct policy *p, json_t *cfg, const char *at, unsigned fields,
                           struct policy_result *r);

enum policy_violation_mode policy_violation_mode(const struct policy *p);

/* The policy is a tenant's (tenant.c): its messages say so ("exceeds
 * tenant \"ml\"'s maximum"), since the limit may be the tenant's own. */
void policy_set_tenant(struct policy *p, const char *name);

/* Whose rules these are, for messages: "this organization's" or
 * "tenant \"ml\"'s". */
const char *policy_whose(const struct policy *p);

/*
 * The codes of the rules this policy can apply to a request: every denial
 * and change its settings make possible (memory_limit_clamped only with
 * on_exceed clamp, skill_not_allowed only without "*", route_denied only
 * when some operation is denied, ...). A rule's code is the error code it
 * refuses with, or for a change the code policy_result.rules names it by.
 * Writes at most max; returns how many.
 */
size_t policy_rules(const struct policy *p, const char **out, size_t max);

/*
 * The Containers operations by the short names the policy's "routes" has
 * always taken ("containers.create", "files.content"), with their
 * operationIds. Any operationId of the spec (policy/operations.h) is a key
 * of "routes" too; these nine are also the ones a policy without
 * "routes.default" allows.
 */
struct policy_operation {
	const char *name;
	const char *operation_id;
};
extern const struct policy_operation policy_operations[];

enum policy_route {
	POLICY_ROUTE_ALLOW,
	POLICY_ROUTE_DENY,
	POLICY_ROUTE_SHADOW_DENY, /* denied, but routes are in shadow mode */
};

struct operation;

/* The operation a key of "routes" names: a short name above or an
 * operationId; NULL for anything else ("default", "mode", unknown keys). */
const struct operation *policy_route_operation(const char *key);

/* Whether the policy lets requests through to op (one of the table's;
 * NULL is denied): the operation's own entry in "routes", else
 * "routes.default", else allowed only for the nine Containers operations.
 * One bit test. */
enum policy_route policy_route(const struct policy *p, const struct operation *op);

/* The largest file upload allowed, in bytes. */
long long policy_max_upload_bytes(const struct policy *p);

/* A Responses body whose tools make or use more than
 * responses.max_tool_containers containers (default 16): denied (403
 * too_many_tool_containers, param "tools") before any is decided, so the
 * work and memory a request costs stay bounded by the policy, not by the
 * body's size. Returns 0, or -1 with r->err filled (or, in shadow mode, 0
 * with r->shadow noted). */
int policy_check_tool_count(const struct policy *p, size_t n, struct policy_result *r);

/* A Responses body (a parsed object) that names a stored prompt, whose
 * tools the gateway cannot see, unless responses.allow_stored_prompts:
 * -1 with e filled (403 stored_prompt_not_allowed); else 0. */
int policy_check_prompt(const struct policy *p, const json_t *body, struct err *e);

/* A batch body (a parsed object) whose endpoint makes containers
 * ("/v1/responses"), whose lines the gateway does not read, unless
 * batches.allow_container_endpoints: -1 with e filled (403
 * batch_endpoint_not_allowed); else 0. */
int policy_check_batch(const struct policy *p, const json_t *body, struct err *e);

/* Adds to errs, under the path at, every way the tenant policy t allows
 * more than the organization's policy org. */
void policy_check_narrows(const struct policy *org, const struct policy *t, const char *file,
                          const char *at, struct errlist *errs);

/* The memory sizes in increasing order, as the contract spells them; -1 for
 * anything else. */
int policy_memory_rank(const char *size);

#endif
