#include "policy/policy.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/conftable.h"
#include "lib/jsondoc.h"
#include "policy/domain.h"
#include "policy/operations.h"
#include "policy/schema.h"

struct policy {
	/* As read, through the key table below. */
	char *mem_max, *mem_default, *mem_on_exceed;
	json_t *domains, *np_default;
	int allow_secrets, allow_wildcards;
	long long max_domains, max_secrets;
	long long exp_max, exp_default;
	json_t *skill_ids;
	int allow_inline;
	long long max_inline_bytes;
	long long max_skills;
	long long max_tool_containers;
	long long max_file_ids;
	char *on_violation;
	json_t *routes;
	long long max_upload;
	int allow_prompts, allow_batch_containers;
	char *policy_mode, *mem_mode, *np_mode, *exp_mode, *skills_mode, *files_mode;
	json_t *tenants_doc; /* read for the key table; policyset.c compiles it */

	/* Compiled. */
	int mem_max_rank, mem_default_rank, clamp;
	size_t npatterns;
	char (*patterns)[DOMAIN_MAX + 1]; /* in order, for messages */
	struct domain_set *allow;         /* the same, to look names up in */
	json_t *skill_set;                /* allowed skill ids as keys */
	int any_skill;
	int any_domain; /* "*": any plain hostname */
	enum policy_violation_mode mode;
	uint64_t denied[OPERATIONS_MAX / 64]; /* bit i: operations[i] denied */
	unsigned shadow;                      /* bit r: rule r only audits what it would deny */
	char whose[POLICY_WHOSE_MAX];         /* "this organization's", "tenant \"x\"'s" */
};

/* The rules a policy's "mode": "shadow" can apply to one by one. */
enum rule {
	RULE_MEMORY,
	RULE_NETWORK,
	RULE_EXPIRY,
	RULE_SKILLS,
	RULE_FILES,
	RULE_ROUTES,
	RULE_TOOLS /* shadowed only with the whole policy */
};

static const char *const memory_sizes[] = {"1g", "4g", "16g", "64g", NULL};
static const char *const on_exceed[] = {"reject", "clamp", NULL};
static const char *const violation_modes[] = {"log", "block", "delete", NULL};
static const char *const rule_modes[] = {"enforce", "shadow", NULL};

const struct policy_operation policy_operations[] = {
        {"containers.create", "CreateContainer"},          {"containers.list", "ListContainers"},
        {"containers.retrieve", "RetrieveContainer"},      {"containers.delete", "DeleteContainer"},
        {"files.create", "CreateContainerFile"},           {"files.list", "ListContainerFiles"},
        {"files.retrieve", "RetrieveContainerFile"},       {"files.delete", "DeleteContainerFile"},
        {"files.content", "RetrieveContainerFileContent"}, {NULL, NULL},
};

/* The largest inline skill the contract allows, decoded: 70254592 base64
 * characters. */
#define INLINE_MAX 52690944LL

#define K(field) offsetof(struct policy, field)

/* Every policy key and its default. Defaults are restrictive: an empty
 * policy allows a 1g container with no network, skills or files beyond 100.
 * The contract bounds none of the lists a create body carries, so the
 * policy does: a list past its count is refused before any of it is
 * looked at. The defaults are well beyond what a container needs (a
 * handful of package and API hosts, a secret or two for them, a few
 * skills) and keep the audit record of the largest allowed request far
 * below its 1 MiB line limit: 256 domains of 253 bytes are 64 KiB. */
static const struct confkey policy_keys[] = {
        {"memory_limit.max", CT_ENUM, K(mem_max), "1g", .enumv = memory_sizes},
        {"memory_limit.default", CT_ENUM, K(mem_default), NULL, .enumv = memory_sizes},
        {"memory_limit.on_exceed", CT_ENUM, K(mem_on_exceed), "reject", .enumv = on_exceed},
        {"network_policy.allowed_domains", CT_STRLIST, K(domains), .def_json = "[]"},
        {"network_policy.allow_domain_secrets", CT_BOOL, K(allow_secrets), .def_int = 0},
        {"network_policy.allow_wildcards", CT_BOOL, K(allow_wildcards), .def_int = 0},
        {"network_policy.default", CT_JSON, K(np_default), .def_json = "{\"type\":\"disabled\"}"},
        {"network_policy.max_domains", CT_INT, K(max_domains), .def_int = 256, .min = 0,
         .max = 100000},
        {"network_policy.max_domain_secrets", CT_INT, K(max_secrets), .def_int = 64, .min = 0,
         .max = 100000},
        {"expires_after.max_minutes", CT_INT, K(exp_max), .def_int = 1440, .min = 1, .max = 525600},
        {"expires_after.default_minutes", CT_INT, K(exp_default), .def_int = 20, .min = 1,
         .max = 525600},
        {"skills.allowed_skill_ids", CT_STRLIST, K(skill_ids), .def_json = "[]"},
        {"skills.allow_inline", CT_BOOL, K(allow_inline), .def_int = 0},
        {"skills.max_inline_bytes", CT_INT, K(max_inline_bytes), .def_int = INLINE_MAX, .min = 0,
         .max = INLINE_MAX},
        {"skills.max_count", CT_INT, K(max_skills), .def_int = 64, .min = 0, .max = 100000},
        {"responses.max_tool_containers", CT_INT, K(max_tool_containers), .def_int = 16, .min = 0,
         .max = 100000},
        {"file_ids.max_count", CT_INT, K(max_file_ids), .def_int = 100, .min = 0, .max = 100000},
        {"on_upstream_violation", CT_ENUM, K(on_violation), "block", .enumv = violation_modes},
        {"routes", CT_JSON, K(routes), .def_json = "{}"},
        {"responses.allow_stored_prompts", CT_BOOL, K(allow_prompts), .def_int = 0},
        {"batches.allow_container_endpoints", CT_BOOL, K(allow_batch_containers), .def_int = 0},
        {"files.max_upload_bytes", CT_INT, K(max_upload), .def_int = 512LL * 1024 * 1024, .min = 0,
         .max = 1LL << 40},
        {"mode", CT_ENUM, K(policy_mode), "enforce", .enumv = rule_modes},
        {"memory_limit.mode", CT_ENUM, K(mem_mode), "enforce", .enumv = rule_modes},
        {"network_policy.mode", CT_ENUM, K(np_mode), "enforce", .enumv = rule_modes},
        {"expires_after.mode", CT_ENUM, K(exp_mode), "enforce", .enumv = rule_modes},
        {"skills.mode", CT_ENUM, K(skills_mode), "enforce", .enumv = rule_modes},
        {"file_ids.mode", CT_ENUM, K(files_mode), "enforce", .enumv = rule_modes},
        {"tenants", CT_JSON, K(tenants_doc), NULL},
        {NULL},
};

int
policy_memory_rank(const char *size)
{
	int i;

	for (i = 0; size && memory_sizes[i]; i++)
		if (strcmp(memory_sizes[i], size) == 0)
			return i;
	return -1;
}

/* The rule code decided something for this request: noted once. */
static void
fired(struct policy_result *r, const char *code)
{
	size_t i;

	for (i = 0; i < r->nrules; i++)
		if (strcmp(r->rules[i], code) == 0)
			return;
	if (r->nrules < POLICY_MAX_RULES)
		r->rules[r->nrules++] = code;
}

static void adjust(struct policy_result *r, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* A rule changed the request on its way: code names the rule. */
static void
adjust(struct policy_result *r, const char *code, const char *fmt, ...)
{
	va_list ap;

	fired(r, code);

	if (r->nadjust >= POLICY_MAX_ADJUST) {
		r->nadjust_dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(r->adjust[r->nadjust++], sizeof(r->adjust[0]), fmt, ap);
	va_end(ap);
}

static int deny(const struct policy *p, struct policy_result *r, enum rule rule, const char *code,
                const char *param, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * A rule refuses the request: -1 with r->err filled. A rule in shadow mode
 * only notes the first such refusal in r->shadow and lets the request go
 * on unchanged (0), so an organization can see what a rule would do.
 */
static int
deny(const struct policy *p, struct policy_result *r, enum rule rule, const char *code,
     const char *param, const char *fmt, ...)
{
	int shadow = (p->shadow >> rule) & 1;
	va_list ap;

	fired(r, code);
	if (shadow && r->nshadow++ > 0)
		return 0;
	va_start(ap, fmt);
	err_vset(shadow ? &r->shadow : &r->err, 403, ERR_POLICY, code, param, fmt, ap);
	va_end(ap);
	return shadow ? 0 : -1;
}

/* Memory ran out while rewriting the document: the request cannot be
 * forwarded as decided, so it is not forwarded at all. */
static int
oom(struct policy_result *r)
{
	return err_set(&r->err, 503, ERR_INTERNAL, "out_of_memory", NULL,
	               "the gateway ran out of memory applying the policy; try again");
}

/* "a, b, c" from the policy's patterns, for messages; at most six. */
static void
list_patterns(const struct policy *p, char *dst, size_t n)
{
	size_t i, o = 0;

	dst[0] = '\0';
	for (i = 0; i < p->npatterns && i < 6 && o < n; i++)
		o += (size_t)snprintf(dst + o, n - o, "%s%s", i ? ", " : "", p->patterns[i]);
	if (i < p->npatterns && o < n)
		snprintf(dst + o, n - o, ", ...");
}

static int
policy_covers(const struct policy *p, const char *name)
{
	return p->any_domain || domain_set_covers(p->allow, name);
}

static const char *path(char *dst, size_t n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* A JSON path into dst (ERR_PARAM_MAX bytes). The deepest a request's path
 * goes ("input[i].tools[j].environment.network_policy.domain_secrets[k]
 * .domain", indexes of 20 digits) is well within that, so nothing is cut. */
static const char *
path(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, n, fmt, ap);
	va_end(ap);
	return dst;
}

/* The JSON path of a field of the config at at: at + "." + name, or name
 * alone for a whole create body (at ""). */
static const char *
field(char *dst, size_t n, const char *at, const char *name)
{
	size_t a = strlen(at), m = strlen(name), o;

	/* Joined by hand, not path()'s printf: every create takes several. */
	if (a + 1 + m >= n)
		return path(dst, n, "%s%s%s", at, *at ? "." : "", name);
	o = a + (a > 0) + m;
	dst[o] = '\0';
	memcpy(dst, at, a);
	if (a)
		dst[a] = '.';
	memcpy(dst + o - m, name, m);
	return dst;
}

/* A memory_limit that is absent, or null where the contract allows null
 * (a tool's container), has not been chosen: the organization's default
 * is forwarded instead, so the upstream's own default never decides. */
static int
apply_memory(const struct policy *p, json_t *cfg, const char *at, struct policy_result *r)
{
	json_t *v = json_object_get(cfg, "memory_limit");
	char name[ERR_PARAM_MAX];
	const char *want;
	int rank;

	field(name, sizeof(name), at, "memory_limit");
	if (v == NULL || json_is_null(v)) {
		want = memory_sizes[p->mem_default_rank];
		if (json_object_set_new(cfg, "memory_limit", json_string(want)) < 0)
			return oom(r);
		adjust(r, "memory_limit_default", "%s set to %s default \"%s\"", name, p->whose,
		       want);
		return 0;
	}
	want = json_string_value(v);
	rank = policy_memory_rank(want);
	if (rank <= p->mem_max_rank)
		return 0;
	if (p->clamp) {
		adjust(r, "memory_limit_clamped", "%s \"%s\" lowered to %s maximum \"%s\"", name,
		       want, p->whose, memory_sizes[p->mem_max_rank]);
		if (json_object_set_new(cfg, "memory_limit",
		                        json_string(memory_sizes[p->mem_max_rank])) < 0)
			return oom(r);
		return 0;
	}
	return deny(p, r, RULE_MEMORY, "memory_limit_exceeded", name,
	            "%s \"%s\" exceeds %s maximum \"%s\"", name, want, p->whose,
	            memory_sizes[p->mem_max_rank]);
}

static int
apply_expiry(const struct policy *p, json_t *cfg, const char *at, struct policy_result *r)
{
	json_t *v = json_object_get(cfg, "expires_after");
	char name[ERR_PARAM_MAX], param[ERR_PARAM_MAX];
	json_int_t minutes;

	field(name, sizeof(name), at, "expires_after");
	if (v == NULL) {
		if (json_object_set_new(cfg, "expires_after",
		                        json_pack("{s:s, s:I}", "anchor", "last_active_at",
		                                  "minutes", (json_int_t)p->exp_default)) < 0)
			return oom(r);
		adjust(r, "expires_after_default", "%s set to %s default of %lld minutes", name,
		       p->whose, p->exp_default);
		return 0;
	}
	minutes = json_integer_value(json_object_get(v, "minutes"));
	field(param, sizeof(param), at, "expires_after.minutes");
	if (minutes > p->exp_max)
		return deny(p, r, RULE_EXPIRY, "expires_after_exceeded", param,
		            "%s %lld exceeds %s maximum of %lld minutes", param, (long long)minutes,
		            p->whose, p->exp_max);
	return 0;
}

/* Normalizes and checks each requested domain against the policy, in
 * place; list is the path of the list. */
static int
apply_domains(const struct policy *p, json_t *domains, const char *list, struct policy_result *r)
{
	char norm[DOMAIN_MAX + 1], param[ERR_PARAM_MAX], q[96], allowed[512];
	const char *why;
	json_t *d;
	size_t i, n = json_array_size(domains);

	if ((long long)n > p->max_domains &&
	    deny(p, r, RULE_NETWORK, "too_many_domains", list,
	         "%s lists %zu domains; %s policy allows at most %lld "
	         "(network_policy.max_domains)",
	         list, n, p->whose, p->max_domains) < 0)
		return -1;
	json_array_foreach(domains, i, d)
	{
		const char *s = json_string_value(d);
		size_t len = json_string_length(d);

		path(param, sizeof(param), "%s[%zu]", list, i);
		if (domain_normalize(s, len, p->allow_wildcards, norm, &why) < 0)
			return deny(p, r, RULE_NETWORK, "domain_invalid", param,
			            "%s %s is not a plain DNS hostname: %s", param,
			            err_quote(q, sizeof(q), s, len), why);
		if (!policy_covers(p, norm)) {
			list_patterns(p, allowed, sizeof(allowed));
			return deny(p, r, RULE_NETWORK, "domain_not_allowed", param,
			            "%s \"%s\" is not allowed by %s policy; %s%s", param, norm,
			            p->whose,
			            p->npatterns ? "allowed domains are "
			                         : "no domains are allowed",
			            allowed);
		}
		if (json_array_set_new(domains, i, json_string(norm)) < 0)
			return oom(r);
	}
	return 0;
}

/* The secrets of the network policy np found at the path at_np. */
static int
apply_secrets(const struct policy *p, json_t *np, const char *at_np, struct policy_result *r)
{
	json_t *secrets = json_object_get(np, "domain_secrets");
	char norm[DOMAIN_MAX + 1], param[ERR_PARAM_MAX], name[ERR_PARAM_MAX],
	        domains[ERR_PARAM_MAX], q[96];
	struct domain_set *listed = NULL;
	struct err e;
	const char *why;
	json_t *s;
	size_t i, n = json_array_size(secrets);
	int rc = -1;

	if (secrets == NULL)
		return 0;
	field(name, sizeof(name), at_np, "domain_secrets");
	field(domains, sizeof(domains), at_np, "allowed_domains");
	if (!p->allow_secrets)
		return deny(p, r, RULE_NETWORK, "domain_secrets_not_allowed", name,
		            "%s is not allowed by %s policy; remove the secrets from the request",
		            name, p->whose);
	if ((long long)n > p->max_secrets &&
	    deny(p, r, RULE_NETWORK, "too_many_domain_secrets", name,
	         "%s lists %zu secrets; %s policy allows at most %lld "
	         "(network_policy.max_domain_secrets)",
	         name, n, p->whose, p->max_secrets) < 0)
		return -1;
	/* The request's own allowlist, to hold its secrets against. */
	listed = domain_set_of(json_object_get(np, "allowed_domains"), &e);
	if (listed == NULL)
		return oom(r);
	json_array_foreach(secrets, i, s)
	{
		json_t *dom = json_object_get(s, "domain");

		path(param, sizeof(param), "%s[%zu].domain", name, i);
		if (domain_normalize(json_string_value(dom), json_string_length(dom), 0, norm,
		                     &why) < 0) {
			rc = deny(p, r, RULE_NETWORK, "domain_invalid", param,
			          "%s %s is not a plain DNS hostname: %s", param,
			          err_quote(q, sizeof(q), json_string_value(dom),
			                    json_string_length(dom)),
			          why);
			goto out;
		}
		if (!domain_set_covers(listed, norm)) {
			rc = deny(p, r, RULE_NETWORK, "secret_domain_not_allowed", param,
			          "%s \"%s\" is not in %s; a secret may only be sent to an allowed "
			          "domain",
			          param, norm, domains);
			goto out;
		}
		/* Every request domain passed the policy already, so a secret
		 * domain they cover is covered by the policy too. */
		if (json_object_set_new(s, "domain", json_string(norm)) < 0) {
			rc = oom(r);
			goto out;
		}
	}
	rc = 0;
out:
	domain_set_free(listed);
	return rc;
}

static int
apply_network(const struct policy *p, json_t *cfg, const char *at, struct policy_result *r)
{
	json_t *np = json_object_get(cfg, "network_policy");
	char name[ERR_PARAM_MAX], list[ERR_PARAM_MAX];

	field(name, sizeof(name), at, "network_policy");
	if (np == NULL) {
		if (json_object_set_new(cfg, "network_policy", json_deep_copy(p->np_default)) < 0)
			return oom(r);
		adjust(r, "network_policy_default", "%s set to %s default (%s)", name, p->whose,
		       json_string_value(json_object_get(p->np_default, "type")));
		/* The default was checked and normalized at load time. */
		return 0;
	}
	if (strcmp(json_string_value(json_object_get(np, "type")), "allowlist") != 0)
		return 0;
	if (apply_domains(p, json_object_get(np, "allowed_domains"),
	                  field(list, sizeof(list), name, "allowed_domains"), r) < 0)
		return -1;
	return apply_secrets(p, np, name, r);
}

static int
skill_allowed(const struct policy *p, const char *id)
{
	return p->any_skill || json_object_get(p->skill_set, id) != NULL;
}

/* Decoded size of base64 text, from its length and padding (the text's
 * last two bytes, the last in tail[1]). */
static long long
base64_size(unsigned long long len, const unsigned char *tail)
{
	long long n = (long long)(len / 4) * 3;

	if (len % 4)
		n += (long long)(len % 4) - 1;
	else if (len >= 2 && tail[1] == '=')
		n -= tail[0] == '=' ? 2 : 1;
	return n;
}

/* The same of a string value, which may be left in the spool. */
static long long
base64_decoded_size(const json_t *v)
{
	size_t len = json_string_length(v);
	const char *s = json_string_value(v);
	struct jsondoc_spooled sp;

	if (jsondoc_spooled_of(v, &sp))
		return base64_size(sp.len, sp.tail);
	if (len < 2)
		return base64_size(len, (const unsigned char *)"\0\0");
	return base64_size(len, (const unsigned char *)s + len - 2);
}

static int
apply_skills(const struct policy *p, json_t *cfg, const char *at, struct policy_result *r)
{
	json_t *skills = json_object_get(cfg, "skills"), *sk;
	char name[ERR_PARAM_MAX], param[ERR_PARAM_MAX], q[96];
	size_t i, n = json_array_size(skills);

	field(name, sizeof(name), at, "skills");
	if ((long long)n > p->max_skills &&
	    deny(p, r, RULE_SKILLS, "too_many_skills", name,
	         "%s lists %zu skills; %s policy allows at most %lld "
	         "(skills.max_count)",
	         name, n, p->whose, p->max_skills) < 0)
		return -1;
	json_array_foreach(skills, i, sk)
	{
		const char *type = json_string_value(json_object_get(sk, "type"));

		if (strcmp(type, "skill_reference") == 0) {
			json_t *id = json_object_get(sk, "skill_id");

			path(param, sizeof(param), "%s[%zu].skill_id", name, i);
			if (!skill_allowed(p, json_string_value(id)))
				return deny(p, r, RULE_SKILLS, "skill_not_allowed", param,
				            "%s %s is not in %s allowed skills", param,
				            err_quote(q, sizeof(q), json_string_value(id),
				                      json_string_length(id)),
				            p->whose);
		} else {
			json_t *data = json_object_get(json_object_get(sk, "source"), "data");
			long long size = base64_decoded_size(data);

			path(param, sizeof(param), "%s[%zu]", name, i);
			if (!p->allow_inline)
				return deny(
				        p, r, RULE_SKILLS, "inline_skill_not_allowed", param,
				        "%s is an inline skill, which %s policy does not allow; "
				        "reference an uploaded skill by skill_id",
				        param, p->whose);
			if (size > p->max_inline_bytes)
				return deny(p, r, RULE_SKILLS, "inline_skill_too_large", param,
				            "%s is an inline skill of %lld bytes; %s policy allows "
				            "at most %lld",
				            param, size, p->whose, p->max_inline_bytes);
		}
	}
	return 0;
}

static int
apply_files(const struct policy *p, json_t *cfg, const char *at, struct policy_result *r)
{
	size_t n = json_array_size(json_object_get(cfg, "file_ids"));
	char name[ERR_PARAM_MAX];

	field(name, sizeof(name), at, "file_ids");
	if ((long long)n > p->max_file_ids)
		return deny(p, r, RULE_FILES, "too_many_file_ids", name,
		            "%s lists %zu files; %s policy allows at most %lld "
		            "(file_ids.max_count)",
		            name, n, p->whose, p->max_file_ids);
	return 0;
}

int
policy_apply_container(const struct policy *p, json_t *cfg, const char *at, unsigned fields,
                       struct policy_result *r)
{
	if (((fields & POLICY_FIELD_MEMORY) && apply_memory(p, cfg, at, r) < 0) ||
	    ((fields & POLICY_FIELD_EXPIRY) && apply_expiry(p, cfg, at, r) < 0) ||
	    ((fields & POLICY_FIELD_NETWORK) && apply_network(p, cfg, at, r) < 0) ||
	    ((fields & POLICY_FIELD_SKILLS) && apply_skills(p, cfg, at, r) < 0) ||
	    ((fields & POLICY_FIELD_FILES) && apply_files(p, cfg, at, r) < 0))
		return -1;
	return 0;
}

int
policy_apply_create(const struct policy *p, json_t *doc, struct policy_result *r)
{
	memset(r, 0, sizeof(*r));
	return policy_apply_container(p, doc, "", POLICY_FIELDS_CREATE, r);
}

enum policy_violation_mode
policy_violation_mode(const struct policy *p)
{
	return p->mode;
}

static int
route_denied(const uint64_t *bits, size_t i)
{
	return (int)((bits[i / 64] >> (i % 64)) & 1);
}

static void
route_set(uint64_t *bits, size_t i, int deny)
{
	if (deny)
		bits[i / 64] |= (uint64_t)1 << (i % 64);
	else
		bits[i / 64] &= ~((uint64_t)1 << (i % 64));
}

enum policy_route
policy_route(const struct policy *p, const struct operation *op)
{
	if (op && op->index < operations_count && !route_denied(p->denied, op->index))
		return POLICY_ROUTE_ALLOW;
	return (p->shadow >> RULE_ROUTES) & 1 ? POLICY_ROUTE_SHADOW_DENY : POLICY_ROUTE_DENY;
}

int
policy_check_tool_count(const struct policy *p, size_t n, struct policy_result *r)
{
	if ((long long)n <= p->max_tool_containers)
		return 0;
	return deny(p, r, RULE_TOOLS, "too_many_tool_containers", "tools",
	            "the request's tools make or use %zu containers; %s policy allows at most %lld "
	            "(responses.max_tool_containers)",
	            n, p->whose, p->max_tool_containers);
}

int
policy_check_prompt(const struct policy *p, const json_t *body, struct err *e)
{
	if (!json_is_object(json_object_get(body, "prompt")) || p->allow_prompts)
		return 0;
	return err_set(e, 403, ERR_POLICY, "stored_prompt_not_allowed", "prompt",
	               "a stored prompt may carry tools this gateway cannot check, so %s "
	               "policy refuses it (responses.allow_stored_prompts); send the prompt's "
	               "instructions and tools in the request instead",
	               p->whose);
}

/* The batch endpoints whose calls can make containers. */
static const char *const container_endpoints[] = {"/v1/responses", NULL};

int
policy_check_batch(const struct policy *p, const json_t *body, struct err *e)
{
	const char *endpoint = json_string_value(json_object_get(body, "endpoint"));
	size_t i;

	for (i = 0; endpoint && container_endpoints[i]; i++)
		if (strcmp(endpoint, container_endpoints[i]) == 0)
			break;
	if (endpoint == NULL || container_endpoints[i] == NULL || p->allow_batch_containers)
		return 0;
	return err_set(e, 403, ERR_POLICY, "batch_endpoint_not_allowed", "endpoint",
	               "a batch of %s calls can make containers this gateway cannot check, so "
	               "%s policy refuses it (batches.allow_container_endpoints); send those "
	               "calls through the gateway one by one",
	               endpoint, p->whose);
}

long long
policy_max_upload_bytes(const struct policy *p)
{
	return p->max_upload;
}

const struct operation *
policy_route_operation(const char *key)
{
	size_t i;

	for (i = 0; policy_operations[i].name; i++)
		if (strcmp(policy_operations[i].name, key) == 0)
			return operations_by_id(policy_operations[i].operation_id);
	return operations_by_id(key);
}

/* "allow" is 0, "deny" 1, anything else -1. */
static int
route_value(const json_t *v)
{
	const char *s = json_string_value(v);

	if (s && strcmp(s, "deny") == 0)
		return 1;
	if (s && strcmp(s, "allow") == 0)
		return 0;
	return -1;
}

/*
 * "routes": the default for every operation first ("default", or when
 * there is none the built-in one: the Containers operations allowed, the
 * rest of the API denied), then each operation named over it. Two names of
 * one operation (a short name and its operationId) must agree.
 */
static void
compile_routes(struct policy *p, const char *file, struct errlist *errs)
{
	const char *named[OPERATIONS_MAX] = {NULL}; /* the key that named operation i */
	const struct operation *op;
	const char *key, *near;
	int deny;
	json_t *v;
	size_t i;
	char at[96];

	if (!json_is_object(p->routes)) {
		errlist_add(errs, file, "routes",
		            "must be an object of operation: \"allow\" | \"deny\"");
		return;
	}
	v = json_object_get(p->routes, "default");
	deny = v ? route_value(v) : 1;
	if (deny < 0)
		errlist_add(errs, file, "routes.default", "must be \"allow\" or \"deny\"");
	for (i = 0; i < operations_count; i++)
		route_set(p->denied, i, deny != 0);
	if (v == NULL)
		for (i = 0; policy_operations[i].name; i++)
			if ((op = operations_by_id(policy_operations[i].operation_id)) != NULL)
				route_set(p->denied, op->index, 0);
	json_object_foreach(p->routes, key, v)
	{
		snprintf(at, sizeof(at), "routes.%s", key);
		if (strcmp(key, "mode") == 0) {
			if (json_is_string(v) && strcmp(json_string_value(v), "shadow") == 0)
				p->shadow |= 1u << RULE_ROUTES;
			else if (!json_is_string(v) || strcmp(json_string_value(v), "enforce") != 0)
				errlist_add(errs, file, at, "must be \"enforce\" or \"shadow\"");
			continue;
		}
		if (strcmp(key, "default") == 0 || strcmp(key, "$comment") == 0)
			continue;
		op = policy_route_operation(key);
		if (op == NULL) {
			near = operations_closest(key);
			errlist_add(
			        errs, file, at,
			        "unknown operation%s%s%s; a key is an operationId of the spec, a "
			        "Containers short name (containers.create, containers.list, "
			        "containers.retrieve, containers.delete, files.create, "
			        "files.list, files.retrieve, files.delete, files.content), "
			        "\"default\" or \"mode\"",
			        near ? " (did you mean \"" : "", near ? near : "",
			        near ? "\"?)" : "");
			continue;
		}
		deny = route_value(v);
		if (deny < 0) {
			errlist_add(errs, file, at, "must be \"allow\" or \"deny\"");
			continue;
		}
		if (named[op->index] && route_denied(p->denied, op->index) != deny) {
			errlist_add(errs, file, at,
			            "names %s, as routes.%s does, which says \"%s\"; say it once",
			            op->id, named[op->index], deny ? "allow" : "deny");
			continue;
		}
		named[op->index] = key;
		route_set(p->denied, op->index, deny);
	}
}

/* --- Compiling -------------------------------------------------------- */

static int
is_shadow(const char *mode)
{
	return mode && strcmp(mode, "shadow") == 0;
}

static void
compile_modes(struct policy *p)
{
	if (is_shadow(p->policy_mode))
		p->shadow = ~0u;
	p->shadow |= (unsigned)is_shadow(p->mem_mode) << RULE_MEMORY;
	p->shadow |= (unsigned)is_shadow(p->np_mode) << RULE_NETWORK;
	p->shadow |= (unsigned)is_shadow(p->exp_mode) << RULE_EXPIRY;
	p->shadow |= (unsigned)is_shadow(p->skills_mode) << RULE_SKILLS;
	p->shadow |= (unsigned)is_shadow(p->files_mode) << RULE_FILES;
}

/* The allowed skill ids as a set, so a request's skills are each one
 * lookup. */
static void
compile_skills(struct policy *p, const char *file, struct errlist *errs)
{
	json_t *v;
	size_t i;

	p->skill_set = json_object();
	if (p->skill_set == NULL) {
		errlist_add(errs, file, NULL, "out of memory");
		return;
	}
	json_array_foreach(p->skill_ids, i, v)
	{
		const char *id = json_string_value(v);

		if (strcmp(id, "*") == 0) {
			p->any_skill = 1;
		} else if (*id == '\0' || strlen(id) > 64) {
			char at[64];

			snprintf(at, sizeof(at), "skills.allowed_skill_ids[%zu]", i);
			errlist_add(errs, file, at,
			            "must be a skill id of 1 to 64 characters, or \"*\"");
		} else if (json_object_set_new_nocheck(p->skill_set, id, json_true()) < 0) {
			errlist_add(errs, file, NULL, "out of memory");
			return;
		}
	}
}

static void
compile_domains(struct policy *p, const char *file, struct errlist *errs)
{
	const char *why;
	char at[96];
	struct err e;
	json_t *v;
	size_t i;

	p->patterns = calloc(json_array_size(p->domains) + 1, sizeof(*p->patterns));
	p->allow = domain_set_new(json_array_size(p->domains));
	if (p->patterns == NULL || p->allow == NULL) {
		errlist_add(errs, file, NULL, "out of memory");
		return;
	}
	json_array_foreach(p->domains, i, v)
	{
		snprintf(at, sizeof(at), "network_policy.allowed_domains[%zu]", i);
		if (strcmp(json_string_value(v), "*") == 0) {
			p->any_domain = 1;
			continue;
		}
		if (domain_normalize(json_string_value(v), json_string_length(v), 1,
		                     p->patterns[p->npatterns], &why) < 0)
			errlist_add(errs, file, at,
			            "not a DNS hostname, a \"*.\" pattern or \"*\": %s", why);
		else if (domain_set_add(p->allow, p->patterns[p->npatterns++], &e) < 0) {
			errlist_add(errs, file, NULL, "out of memory");
			return;
		}
	}
}

/* The default network policy must be one a client could send and this
 * policy would allow, without secrets (they do not belong in a file). */
static void
compile_default(struct policy *p, const char *file, struct errlist *errs)
{
	const char *at = "network_policy.default";
	struct policy_result r;
	struct err e;
	json_t *probe;

	if (!json_is_object(p->np_default)) {
		errlist_add(errs, file, at, "must be a network policy object");
		return;
	}
	if (json_object_get(p->np_default, "domain_secrets")) {
		errlist_add(errs, file, at, "may not carry domain_secrets");
		return;
	}
	probe = json_pack("{s:s, s:O}", "name", "policy-default", "network_policy", p->np_default);
	if (probe == NULL) {
		errlist_add(errs, file, at, "out of memory");
		return;
	}
	err_clear(&e);
	memset(&r, 0, sizeof(r));
	if (schema_check(&schema_create_container_body, probe, &e) < 0)
		errlist_add(errs, file, at, "%s", e.message);
	else if (apply_network(p, probe, "", &r) < 0)
		errlist_add(errs, file, at, "%s", r.err.message);
	else {
		/* Keep the normalized form, so the default is forwarded as checked. */
		json_decref(p->np_default);
		p->np_default = json_incref(json_object_get(probe, "network_policy"));
	}
	json_decref(probe);
}

struct policy *
policy_new(const json_t *doc, const char *file, struct errlist *errs)
{
	struct policy *p;
	size_t before = errs->n + errs->dropped;

	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		errlist_add(errs, file, NULL, "out of memory");
		return NULL;
	}
	if (!json_is_object(doc)) {
		errlist_add(errs, file, NULL, "a policy must be a JSON object");
		goto fail;
	}
	/* Keys that failed to read are left NULL; the checks below skip them
	 * and go on, so one --check run reports every problem. */
	(void)conftable_read(policy_keys, p, doc, file, errs);

	snprintf(p->whose, sizeof(p->whose), "this organization's");
	p->mem_max_rank = policy_memory_rank(p->mem_max);
	p->mem_default_rank = p->mem_default ? policy_memory_rank(p->mem_default) : 0;
	if (p->mem_max && p->mem_default_rank > p->mem_max_rank)
		errlist_add(errs, file, "memory_limit.default",
		            "\"%s\" exceeds memory_limit.max \"%s\"", p->mem_default, p->mem_max);
	p->clamp = p->mem_on_exceed && strcmp(p->mem_on_exceed, "clamp") == 0;
	if (p->on_violation && strcmp(p->on_violation, "log") == 0)
		p->mode = POLICY_VIOLATION_LOG;
	else if (p->on_violation && strcmp(p->on_violation, "delete") == 0)
		p->mode = POLICY_VIOLATION_DELETE;
	else
		p->mode = POLICY_VIOLATION_BLOCK;
	/* An unwritten default follows a smaller maximum rather than clash. */
	if (p->exp_default > p->exp_max && !conftable_has(doc, "expires_after.default_minutes"))
		p->exp_default = p->exp_max;
	if (p->exp_default > p->exp_max)
		errlist_add(errs, file, "expires_after.default_minutes",
		            "%lld exceeds expires_after.max_minutes %lld", p->exp_default,
		            p->exp_max);
	compile_skills(p, file, errs);
	compile_modes(p);
	compile_domains(p, file, errs);
	compile_default(p, file, errs);
	compile_routes(p, file, errs);
	if (errs->n + errs->dropped > before)
		goto fail;
	return p;
fail:
	policy_free(p);
	return NULL;
}

void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	conftable_release(policy_keys, p);
	free(p->patterns);
	domain_set_free(p->allow);
	json_decref(p->skill_set);
	free(p);
}

/*
 * Adds an error for every operation the tenant policy t allows and the
 * organization's org denies: one for each key of t's routes that allows
 * such an operation by name, and one for those its default lets through.
 */
static void
check_routes_narrow(const struct policy *org, const struct policy *t, const char *file,
                    const char *at, struct errlist *errs)
{
	uint64_t wider[OPERATIONS_MAX / 64], any = 0;
	char where[256], some[256];
	const struct operation *op;
	const char *key;
	size_t i, n = 0, o = 0;
	json_t *v;

	for (i = 0; i < OPERATIONS_MAX / 64; i++) {
		wider[i] = org->denied[i] & ~t->denied[i];
		any |= wider[i];
	}
	if (any == 0)
		return;
	json_object_foreach(t->routes, key, v)
	{
		op = policy_route_operation(key);
		if (op == NULL || !route_denied(wider, op->index))
			continue;
		snprintf(where, sizeof(where), "%s.routes.%s", at, key);
		errlist_add(errs, file, where, "allows %s, which the organization denies", op->id);
		route_set(wider, op->index, 0);
	}
	some[0] = '\0';
	for (i = 0; i < operations_count; i++) {
		if (!route_denied(wider, i))
			continue;
		if (n++ < 4 && o < sizeof(some))
			o += (size_t)snprintf(some + o, sizeof(some) - o, "%s%s", o ? ", " : "",
			                      operations[i].id);
	}
	if (n == 0)
		return;
	v = json_object_get(t->routes, "default");
	snprintf(where, sizeof(where), "%s.routes%s", at, v ? ".default" : "");
	errlist_add(errs, file, where,
	            "lets through %zu operation%s the organization denies (%s%s); deny them, "
	            "or allow by name only what the organization allows",
	            n, n == 1 ? "" : "s", some, n > 4 ? ", ..." : "");
}

static int
strictness(enum policy_violation_mode m)
{
	return m == POLICY_VIOLATION_LOG ? 0 : m == POLICY_VIOLATION_BLOCK ? 1 : 2;
}

void
policy_check_narrows(const struct policy *org, const struct policy *t, const char *file,
                     const char *at, struct errlist *errs)
{
	char where[256];
	json_t *v;
	size_t i;

#define WIDER(key, ...)                                                                            \
	do {                                                                                       \
		snprintf(where, sizeof(where), "%s.%s", at, key);                                  \
		errlist_add(errs, file, where, __VA_ARGS__);                                       \
	} while (0)

	if (t->mem_max_rank > org->mem_max_rank)
		WIDER("memory_limit.max", "\"%s\" is more than the organization's \"%s\"",
		      t->mem_max, org->mem_max);
	if (t->allow_secrets && !org->allow_secrets)
		WIDER("network_policy.allow_domain_secrets",
		      "the organization does not allow them");
	if (t->allow_wildcards && !org->allow_wildcards)
		WIDER("network_policy.allow_wildcards", "the organization does not allow them");
	if (t->any_domain && !org->any_domain)
		WIDER("network_policy.allowed_domains",
		      "\"*\" is wider than the organization's list");
	for (i = 0; i < t->npatterns; i++)
		if (!policy_covers(org, t->patterns[i]))
			WIDER("network_policy.allowed_domains",
			      "\"%s\" is not within the organization's allowed domains",
			      t->patterns[i]);
	if (t->exp_max > org->exp_max)
		WIDER("expires_after.max_minutes", "%lld is more than the organization's %lld",
		      t->exp_max, org->exp_max);
	if (t->any_skill && !org->any_skill)
		WIDER("skills.allowed_skill_ids", "\"*\" is wider than the organization's list");
	json_array_foreach(t->skill_ids, i, v)
	{
		const char *id = json_string_value(v);

		if (strcmp(id, "*") != 0 && !skill_allowed(org, id))
			WIDER("skills.allowed_skill_ids",
			      "\"%s\" is not among the organization's allowed skills", id);
	}
	if (t->allow_inline && !org->allow_inline)
		WIDER("skills.allow_inline", "the organization does not allow inline skills");
	if (t->allow_inline && t->max_inline_bytes > org->max_inline_bytes)
		WIDER("skills.max_inline_bytes", "%lld is more than the organization's %lld",
		      t->max_inline_bytes, org->max_inline_bytes);
	if (t->max_domains > org->max_domains)
		WIDER("network_policy.max_domains", "%lld is more than the organization's %lld",
		      t->max_domains, org->max_domains);
	if (t->max_secrets > org->max_secrets)
		WIDER("network_policy.max_domain_secrets",
		      "%lld is more than the organization's %lld", t->max_secrets,
		      org->max_secrets);
	if (t->max_tool_containers > org->max_tool_containers)
		WIDER("responses.max_tool_containers", "%lld is more than the organization's %lld",
		      t->max_tool_containers, org->max_tool_containers);
	if (t->max_skills > org->max_skills)
		WIDER("skills.max_count", "%lld is more than the organization's %lld",
		      t->max_skills, org->max_skills);
	if (t->max_file_ids > org->max_file_ids)
		WIDER("file_ids.max_count", "%lld is more than the organization's %lld",
		      t->max_file_ids, org->max_file_ids);
	if (t->allow_prompts && !org->allow_prompts)
		WIDER("responses.allow_stored_prompts", "allows stored prompts, which the "
		                                        "organization refuses");
	if (t->allow_batch_containers && !org->allow_batch_containers)
		WIDER("batches.allow_container_endpoints",
		      "allows batches of container-making calls, which the organization refuses");
	if (t->max_upload > org->max_upload)
		WIDER("files.max_upload_bytes", "%lld is more than the organization's %lld",
		      t->max_upload, org->max_upload);
	check_routes_narrow(org, t, file, at, errs);
	if (strictness(t->mode) < strictness(org->mode))
		WIDER("on_upstream_violation", "\"%s\" is weaker than the organization's \"%s\"",
		      t->on_violation, org->on_violation);
	if (t->shadow & ~org->shadow)
		WIDER("mode", "puts in shadow mode a rule the organization enforces");
#undef WIDER
}

void
policy_set_tenant(struct policy *p, const char *name)
{
	snprintf(p->whose, sizeof(p->whose), "tenant \"%.64s\"'s", name);
}

const char *
policy_whose(const struct policy *p)
{
	return p->whose;
}

/* Whether the policy lets any of these operations through (a rule on
 * their bodies can only fire if so). */
static int
routes_any(const struct policy *p, const char *const *ids)
{
	for (; *ids; ids++)
		if (policy_route(p, operations_by_id(*ids)) != POLICY_ROUTE_DENY)
			return 1;
	return 0;
}

/* Whether the policy denies any operation. */
static int
denies_a_route(const struct policy *p)
{
	size_t i;

	for (i = 0; i < sizeof(p->denied) / sizeof(p->denied[0]); i++)
		if (p->denied[i])
			return 1;
	return 0;
}

size_t
policy_rules(const struct policy *p, const char **out, size_t max)
{
	const int top = (int)(sizeof(memory_sizes) / sizeof(memory_sizes[0])) - 2;
	static const char *const responses[] = {"createResponse", "beta_createResponse",
	                                        "Compactconversation", "beta_Compactconversation",
	                                        NULL};
	static const char *const batches[] = {"createBatch", NULL};
	static const char *const makers[] = {"CreateContainer",          "createResponse",
	                                     "beta_createResponse",      "Compactconversation",
	                                     "beta_Compactconversation", NULL};
	static const char *const creates[] = {"CreateContainer", NULL};
	/* The container rules, only where containers can be made; expiry only
	 * by a create (a tool's container takes none). */
	const int c = routes_any(p, makers), cr = routes_any(p, creates);
	/* Secrets are looked at only once the request's domains passed. */
	const int reach = c && (p->any_domain || p->npatterns > 0);
	const struct {
		const char *code;
		int in_force;
	} rules[] = {
	        {"route_denied", denies_a_route(p)},
	        {"memory_limit_default", c},
	        {"memory_limit_exceeded", c && !p->clamp && p->mem_max_rank < top},
	        {"memory_limit_clamped", c && p->clamp && p->mem_max_rank < top},
	        {"expires_after_default", cr},
	        {"expires_after_exceeded", cr},
	        {"network_policy_default", c},
	        {"too_many_domains", c},
	        {"domain_invalid", c},
	        {"domain_not_allowed", c && !p->any_domain},
	        {"domain_secrets_not_allowed", reach && !p->allow_secrets},
	        {"too_many_domain_secrets", reach && p->allow_secrets},
	        {"secret_domain_not_allowed", reach && p->allow_secrets},
	        {"too_many_skills", c},
	        {"skill_not_allowed", c && !p->any_skill},
	        {"inline_skill_not_allowed", c && !p->allow_inline},
	        {"inline_skill_too_large",
	         c && p->allow_inline && p->max_inline_bytes < INLINE_MAX},
	        {"too_many_file_ids", c},
	        {"stored_prompt_not_allowed", !p->allow_prompts && routes_any(p, responses)},
	        {"too_many_tool_containers", routes_any(p, responses)},
	        {"batch_endpoint_not_allowed",
	         !p->allow_batch_containers && routes_any(p, batches)},
	};
	size_t i, n = 0;

	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].in_force && n < max)
			out[n++] = rules[i].code;
	return n;
}
