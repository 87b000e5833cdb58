/*
 * tenant: the teams of an organization, each with its own keys, a policy
 * that can only narrow the organization's, limits and brokered secrets.
 *
 * Tenants are read from the "tenants" object of the policy document and
 * live in the policy set (policyset.c) beside the organization's policy,
 * so a reload swaps them with it.
 */
#ifndef GW_TENANT_H
#define GW_TENANT_H

#include <jansson.h>
#include <stddef.h>

#include "lib/err.h"

struct policy;
struct tenant;
struct tenants;

/*
 * Reads a secret's value from the environment variable env or the file
 * path (exactly one is given): returns it in memory that is wiped when
 * freed (secmem_free), with its length in *len, or NULL with *why saying
 * what went wrong ("is not set" for a variable; for a file, what the
 * system said, "it is empty" or "it is too large"). The loader (policyset.c) does the reading, so
 * this module does none.
 */
typedef char *(*tenant_secret_fn)(void *arg, const char *env, const char *path, size_t *len,
                                  const char **why);

/*
 * Reads tenants_doc ({"name": {...}}). Each tenant's "policy" is merged
 * over org_doc (the organization's policy document without "tenants") and
 * compiled; anything it would widen beyond org is an error (org may be
 * NULL when the organization's own policy did not compile: each tenant's
 * other mistakes are still reported). Secret values
 * are read through read(arg, ...) now. Every problem is added to errs;
 * returns NULL when there was one.
 */
struct tenants *tenants_new(const json_t *tenants_doc, const json_t *org_doc,
                            const struct policy *org, tenant_secret_fn read, void *arg,
                            const char *file, struct errlist *errs);
void tenants_free(struct tenants *t);

/* The tenant whose api_keys_sha256 holds this digest (compared in constant
 * time), or NULL. */
const struct tenant *tenants_by_key_digest(const struct tenants *t, const char *hex);

/*
 * The tenant whose oidc_groups holds one of groups (an array of strings,
 * a token's groups claim): returns how many tenants the groups name, 0, 1
 * or 2 for more than one, with *found the tenant when it is one. Each
 * group is looked up once.
 */
int tenants_by_groups(const struct tenants *t, const json_t *groups, const struct tenant **found);

/* The tenant named so, or NULL. */
const struct tenant *tenants_by_name(const struct tenants *t, const char *name);

/* How many tenants there are (none for NULL), and the i-th, in the
 * policy's order. */
size_t tenants_count(const struct tenants *t);
const struct tenant *tenants_at(const struct tenants *t, size_t i);

/* The tenant whose client_cert_subjects lists the certificate's subject
 * ("CN=...,O=...") or one of its subject alternative names ("DNS:...",
 * "URI:..."), or NULL. */
const struct tenant *tenants_by_cert(const struct tenants *t, const char *subject,
                                     const char *const *sans, size_t nsans);

const char *tenant_name(const struct tenant *t);
const struct policy *tenant_policy(const struct tenant *t);

/* Limits per tenant; 0 means none. shadow: over a limit is only audited.
 * The budget is container memory times time, in GB-minutes, per UTC day
 * and per UTC month (budget.*). */
struct tenant_limits {
	long long creates_per_minute;
	long long requests_per_second;
	long long max_live_containers;
	int shadow;
	long long gb_minutes_per_day;
	long long gb_minutes_per_month;
	int budget_shadow;
};
const struct tenant_limits *tenant_limits(const struct tenant *t);

/* In gateway_keys mode, the upstream organization and project this
 * tenant's calls are billed to (its "upstream.organization" and
 * "upstream.project"); NULL: the config's. */
const char *tenant_upstream_organization(const struct tenant *t);
const char *tenant_upstream_project(const struct tenant *t);

/* Whether v is written as the upstream writes an organization or project
 * id ("org-...", "proj_..."): 1 to 128 letters, digits, '_' or '-'. */
int tenant_upstream_id_ok(const char *v);
#define UPSTREAM_ID_RULE                                                                           \
	"must be 1 to 128 letters, digits, '_' or '-', as the upstream writes an id "              \
	"(\"org-...\", \"proj_...\")"

/* Whether the tenant has brokered secrets (its "secrets"). */
int tenant_has_secrets(const struct tenant *t);

/* Whether clients of this tenant may send domain_secrets themselves. */
int tenant_allow_client_secrets(const struct tenant *t);

/*
 * Adds the tenant's brokered secrets to a container config already decided
 * by the policy (domains normalized), for each domain its allowlist covers,
 * replacing every client secret of the same name and domain (and an
 * earlier brokered one: the last of a name and domain wins). doc is a
 * create document, or the config of a container a Responses tool makes
 * (tools_apply's TOOLS_MADE configs: a code_interpreter container or a
 * shell environment, whose network_policy takes domain_secrets as a
 * create's does); call it once for each. Appends the names of the secrets
 * the allowlist reaches to names (may be NULL). Returns how many, or -1
 * when memory runs out. Linear in the tenant's secrets plus the
 * document's domains and secrets.
 */
int tenant_inject_secrets(const struct tenant *t, json_t *doc, json_t *names);

#endif
