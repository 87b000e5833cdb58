#include "policy/tenant.h"

#include <stdint.h>
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/conftable.h"
#include "policy/domain.h"
#include "policy/keys.h"
#include "policy/operations.h"
#include "policy/policy.h"
#include "lib/secmem.h"

struct secret {
	char domain[DOMAIN_MAX + 1];
	char *name;
	char *value; /* secmem: wiped when freed */
	size_t len;
};

struct tenant {
	char *name;
	struct policy *policy;
	struct tenant_limits limits;

	/* As read, through tenant_keys. */
	json_t *key_digests, *cert_subjects, *oidc_groups, *policy_doc, *secrets_doc;
	long long creates_per_minute, requests_per_second, max_live;
	long long budget_day, budget_month;
	char *limits_mode, *budget_mode;
	int allow_client_secrets;
	char *upstream_org, *upstream_project;

	struct secret *secrets;
	size_t nsecrets;
};

struct tenants {
	size_t n;
	struct tenant *t;
	json_t *by_group; /* an OIDC group: the index of the tenant listing it */
};

/* The longest group a tenant may list: as long as a token's may be. */
#define GROUP_MAX 256

static const char *const modes[] = {"enforce", "shadow", NULL};

#define K(field) offsetof(struct tenant, field)

static const struct confkey tenant_keys[] = {
        {"api_keys_sha256", CT_STRLIST, K(key_digests), .def_json = "[]"},
        {"client_cert_subjects", CT_STRLIST, K(cert_subjects), .def_json = "[]"},
        {"oidc_groups", CT_STRLIST, K(oidc_groups), .def_json = "[]"},
        {"policy", CT_JSON, K(policy_doc), .def_json = "{}"},
        {"rate_limit.creates_per_minute", CT_INT, K(creates_per_minute), .def_int = 0, .min = 0,
         .max = 1000000},
        {"rate_limit.requests_per_second", CT_INT, K(requests_per_second), .def_int = 0, .min = 0,
         .max = 1000000},
        {"rate_limit.max_live_containers", CT_INT, K(max_live), .def_int = 0, .min = 0,
         .max = 1000000},
        {"rate_limit.mode", CT_ENUM, K(limits_mode), "enforce", .enumv = modes},
        {"budget.gb_minutes_per_day", CT_INT, K(budget_day), .def_int = 0, .min = 0,
         .max = 1000000000000LL},
        {"budget.gb_minutes_per_month", CT_INT, K(budget_month), .def_int = 0, .min = 0,
         .max = 1000000000000LL},
        {"budget.mode", CT_ENUM, K(budget_mode), "enforce", .enumv = modes},
        {"secrets", CT_JSON, K(secrets_doc), .def_json = "[]"},
        {"allow_client_secrets", CT_BOOL, K(allow_client_secrets), .def_int = 1},
        {"upstream.organization", CT_STRING, K(upstream_org), NULL},
        {"upstream.project", CT_STRING, K(upstream_project), NULL},
        {NULL},
};

/* How a tenant's secret values are read (policyset.c does the reading). */
struct reader {
	tenant_secret_fn read;
	void *arg;
};

static void
load_secret(struct tenant *t, const json_t *s, size_t i, const struct reader *rd, const char *file,
            struct errlist *errs)
{
	const char *domain = json_string_value(json_object_get(s, "domain"));
	const char *name = json_string_value(json_object_get(s, "name"));
	const char *env = json_string_value(json_object_get(s, "value_env"));
	const char *path = json_string_value(json_object_get(s, "value_file"));
	struct secret *sec = &t->secrets[t->nsecrets];
	const char *why = NULL;
	char at[64];

	snprintf(at, sizeof(at), "secrets[%zu]", i);
	if (!json_is_object(s) || domain == NULL || name == NULL || *name == '\0' ||
	    !env == !path || json_object_size(s) != 3) {
		errlist_add(errs, file, at,
		            "must be {\"domain\", \"name\", and one of \"value_env\" or "
		            "\"value_file\"}");
		return;
	}
	if (domain_normalize(domain, strlen(domain), 0, sec->domain, &why) < 0) {
		errlist_add(errs, file, at, "domain is not a plain DNS hostname: %s", why);
		return;
	}
	sec->value = rd->read(rd->arg, env, path, &sec->len, &why);
	if (sec->value == NULL) {
		if (env)
			errlist_add(errs, file, at, "environment variable %s %s", env, why);
		else
			errlist_add(errs, file, at, "cannot read value_file %s: %s", path, why);
		return;
	}
	sec->name = strdup(name);
	if (sec->value == NULL || sec->name == NULL) {
		errlist_add(errs, file, at, "out of memory");
		secmem_free(sec->value);
		free(sec->name);
		return;
	}
	t->nsecrets++;
}

/*
 * An operation has two names in "routes" (a Containers short name and its
 * operationId). When the tenant names one the organization named the other
 * way, the organization's key is dropped from the merged routes, so the
 * tenant's overrides it as it would under the same name; the result is
 * then held to be no wider like the rest.
 */
static void
drop_renamed_routes(json_t *merged, const json_t *own)
{
	unsigned char named[OPERATIONS_MAX] = {0};
	const struct operation *op;
	const char *key;
	json_t *v, *tmp;

	if (!json_is_object(merged) || !json_is_object(own))
		return;
	json_object_foreach((json_t *)(uintptr_t)own, key, v)
	{
		if ((op = policy_route_operation(key)) != NULL)
			named[op->index] = 1;
	}
	json_object_foreach_safe(merged, tmp, key, v)
	{
		op = policy_route_operation(key);
		if (op && named[op->index] && json_object_get(own, key) == NULL)
			json_object_del(merged, key);
	}
}

static void
load_tenant(struct tenant *t, const char *name, const json_t *doc, const json_t *org_doc,
            const struct policy *org, const struct reader *rd, const char *file,
            struct errlist *errs)
{
	json_t *merged, *v;
	size_t i;

	(void)conftable_read(tenant_keys, t, doc, file, errs);
	t->name = strdup(name);
	t->limits.creates_per_minute = t->creates_per_minute;
	t->limits.requests_per_second = t->requests_per_second;
	t->limits.max_live_containers = t->max_live;
	t->limits.shadow = t->limits_mode && strcmp(t->limits_mode, "shadow") == 0;
	t->limits.gb_minutes_per_day = t->budget_day;
	t->limits.gb_minutes_per_month = t->budget_month;
	t->limits.budget_shadow = t->budget_mode && strcmp(t->budget_mode, "shadow") == 0;

	json_array_foreach(t->key_digests, i, v)
	{
		if (!keys_is_digest(json_string_value(v))) {
			char at[64];

			snprintf(at, sizeof(at), "api_keys_sha256[%zu]", i);
			errlist_add(
			        errs, file, at,
			        "must be a SHA-256 hex digest (see `gateway hash-key`), not a key");
		}
	}
	json_array_foreach(t->oidc_groups, i, v)
	{
		size_t n = json_string_length(v);

		if (n == 0 || n > GROUP_MAX) {
			char at[64];

			snprintf(at, sizeof(at), "oidc_groups[%zu]", i);
			errlist_add(errs, file, at, "must be 1 to %d characters", GROUP_MAX);
		}
	}
	if (t->upstream_org && !tenant_upstream_id_ok(t->upstream_org))
		errlist_add(errs, file, "upstream.organization", "%s", UPSTREAM_ID_RULE);
	if (t->upstream_project && !tenant_upstream_id_ok(t->upstream_project))
		errlist_add(errs, file, "upstream.project", "%s", UPSTREAM_ID_RULE);
	if (json_is_array(t->secrets_doc)) {
		t->secrets = calloc(json_array_size(t->secrets_doc) + 1, sizeof(*t->secrets));
		json_array_foreach(t->secrets_doc, i, v)
		{
			if (t->secrets)
				load_secret(t, v, i, rd, file, errs);
		}
	} else {
		errlist_add(errs, file, "secrets", "must be an array");
	}

	/* The tenant's policy is the organization's with its own keys laid
	 * over it, compiled whole and then held to be no wider. */
	if (!json_is_object(t->policy_doc)) {
		errlist_add(errs, file, "policy", "must be an object");
		return;
	}
	if (json_object_get(t->policy_doc, "tenants")) {
		errlist_add(errs, file, "policy.tenants", "a tenant cannot have tenants");
		return;
	}
	merged = json_deep_copy(org_doc);
	if (merged == NULL || json_object_update_recursive(merged, t->policy_doc) < 0) {
		errlist_add(errs, file, "policy", "out of memory");
		json_decref(merged);
		return;
	}
	drop_renamed_routes(json_object_get(merged, "routes"),
	                    json_object_get(t->policy_doc, "routes"));
	{
		const char *outer = errs->prefix;
		char at[256];

		snprintf(at, sizeof(at), "%s.policy", outer ? outer : name);
		errs->prefix = at;
		t->policy = policy_new(merged, file, errs);
		errs->prefix = outer;
		if (t->policy)
			policy_set_tenant(t->policy, name);
		if (t->policy && org)
			policy_check_narrows(org, t->policy, file, "policy", errs);
	}
	json_decref(merged);
}

static void
tenant_release(struct tenant *t)
{
	size_t i;

	for (i = 0; i < t->nsecrets; i++) {
		secmem_free(t->secrets[i].value);
		free(t->secrets[i].name);
	}
	free(t->secrets);
	policy_free(t->policy);
	conftable_release(tenant_keys, t);
	free(t->name);
}

/*
 * Notes in owners (a key: the tenant's index) which tenant each of key
 * belongs to, and reports one that another tenant listed first. Returns 0,
 * or -1 when memory runs out.
 */
static int
claim(json_t *owners, const struct tenants *ts, size_t a, const char *key, const char *what,
      const char *file, struct errlist *errs)
{
	json_t *owner = json_object_get(owners, key);

	if (owner == NULL)
		return json_object_set_new_nocheck(owners, key, json_integer((json_int_t)a));
	if ((size_t)json_integer_value(owner) != a)
		errlist_add(errs, file, "tenants", "tenants %s and %s share %s",
		            ts->t[json_integer_value(owner)].name, ts->t[a].name, what);
	return 0;
}

/* A key digest, certificate subject or OIDC group names one tenant only.
 * Each is looked up once among those seen, so many tenants and keys cost
 * no more than reading them; the groups' map is kept, for tokens. */
static void
check_unique(struct tenants *ts, const char *file, struct errlist *errs)
{
	json_t *digests = json_object(), *subjects = json_object(), *v;
	char lower[KEYS_HEX_LEN + 1];
	size_t a, i, k;
	int rc = digests && subjects ? 0 : -1;

	for (a = 0; a < ts->n && rc == 0; a++) {
		json_array_foreach(ts->t[a].key_digests, i, v)
		{
			const char *hex = json_string_value(v);

			/* Digests compare without regard to case; one that is
			 * not a digest was refused already. */
			if (rc < 0 || !keys_is_digest(hex))
				continue;
			for (k = 0; k <= KEYS_HEX_LEN; k++)
				lower[k] =
				        (char)(hex[k] >= 'A' && hex[k] <= 'F' ? hex[k] - 'A' + 'a'
				                                              : hex[k]);
			rc = claim(digests, ts, a, lower, "a key", file, errs);
		}
		json_array_foreach(ts->t[a].cert_subjects, i, v)
		{
			if (rc == 0)
				rc = claim(subjects, ts, a, json_string_value(v),
				           "a certificate subject", file, errs);
		}
		json_array_foreach(ts->t[a].oidc_groups, i, v)
		{
			if (rc == 0 && ts->by_group)
				rc = claim(ts->by_group, ts, a, json_string_value(v),
				           "an OIDC group", file, errs);
		}
	}
	if (rc < 0)
		errlist_add(errs, file, "tenants", "out of memory");
	json_decref(digests);
	json_decref(subjects);
}

/* A tenant's name goes into store keys, metric labels and records: kept
 * short and plain, so no two names can share a key or be cut to one. */
static int
name_ok(const char *name)
{
	size_t n = strlen(name);

	return n >= 1 && n <= 64 && isalnum((unsigned char)name[0]) &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	               n;
}

struct tenants *
tenants_new(const json_t *tenants_doc, const json_t *org_doc, const struct policy *org,
            tenant_secret_fn read, void *arg, const char *file, struct errlist *errs)
{
	struct reader rd = {read, arg};
	struct tenants *ts = calloc(1, sizeof(*ts));
	size_t before = errs->n + errs->dropped;
	const char *name;
	json_t *doc;
	char at[192];

	if (ts) {
		ts->t = calloc(json_object_size(tenants_doc) + 1, sizeof(*ts->t));
		ts->by_group = json_object();
	}
	if (ts == NULL || ts->t == NULL || ts->by_group == NULL) {
		errlist_add(errs, file, "tenants", "out of memory");
		tenants_free(ts);
		return NULL;
	}
	json_object_foreach((json_t *)(uintptr_t)tenants_doc, name, doc)
	{
		snprintf(at, sizeof(at), "tenants.%.64s", name);
		if (!name_ok(name)) {
			errlist_add(errs, file, "tenants",
			            "\"%.64s\": a tenant's name is 1 to 64 letters, digits, '.', "
			            "'_' or "
			            "'-', starting with a letter or digit",
			            name);
			continue;
		}
		if (!json_is_object(doc)) {
			errlist_add(errs, file, at, "must be an object");
			continue;
		}
		errs->prefix = at;
		load_tenant(&ts->t[ts->n++], name, doc, org_doc, org, &rd, file, errs);
		errs->prefix = NULL;
	}
	check_unique(ts, file, errs);
	if (errs->n + errs->dropped > before) {
		tenants_free(ts);
		return NULL;
	}
	return ts;
}

void
tenants_free(struct tenants *ts)
{
	size_t i;

	if (ts == NULL)
		return;
	for (i = 0; ts->t && i < ts->n; i++)
		tenant_release(&ts->t[i]);
	free(ts->t);
	json_decref(ts->by_group);
	free(ts);
}

const struct tenant *
tenants_by_key_digest(const struct tenants *ts, const char *hex)
{
	const struct tenant *found = NULL;
	size_t a, i;
	json_t *v;

	/* Every digest is compared, found or not, so timing says nothing. */
	for (a = 0; ts && a < ts->n; a++) {
		json_array_foreach(ts->t[a].key_digests, i, v)
		{
			if (keys_equal(json_string_value(v), hex) && found == NULL)
				found = &ts->t[a];
		}
	}
	return found;
}

int
tenants_by_groups(const struct tenants *ts, const json_t *groups, const struct tenant **found)
{
	const struct tenant *first = NULL;
	const json_t *v, *at;
	size_t i;

	*found = NULL;
	json_array_foreach(groups, i, v)
	{
		at = ts ? json_object_get(ts->by_group, json_string_value(v)) : NULL;
		if (at == NULL)
			continue;
		if (first && first != &ts->t[json_integer_value(at)])
			return 2;
		first = &ts->t[json_integer_value(at)];
	}
	*found = first;
	return first ? 1 : 0;
}

size_t
tenants_count(const struct tenants *ts)
{
	return ts ? ts->n : 0;
}

const struct tenant *
tenants_at(const struct tenants *ts, size_t i)
{
	return ts && i < ts->n ? &ts->t[i] : NULL;
}

const struct tenant *
tenants_by_name(const struct tenants *ts, const char *name)
{
	size_t a;

	for (a = 0; ts && a < ts->n; a++)
		if (strcmp(ts->t[a].name, name) == 0)
			return &ts->t[a];
	return NULL;
}

const struct tenant *
tenants_by_cert(const struct tenants *ts, const char *subject, const char *const *sans,
                size_t nsans)
{
	size_t a, i, k;
	json_t *v;

	for (a = 0; ts && a < ts->n; a++) {
		json_array_foreach(ts->t[a].cert_subjects, i, v)
		{
			const char *want = json_string_value(v);

			if (subject && strcmp(want, subject) == 0)
				return &ts->t[a];
			for (k = 0; k < nsans; k++)
				if (strcmp(want, sans[k]) == 0)
					return &ts->t[a];
		}
	}
	return NULL;
}

const char *
tenant_name(const struct tenant *t)
{
	return t->name;
}

const struct policy *
tenant_policy(const struct tenant *t)
{
	return t->policy;
}

const struct tenant_limits *
tenant_limits(const struct tenant *t)
{
	return &t->limits;
}

int
tenant_upstream_id_ok(const char *v)
{
	size_t n = strlen(v);

	return n > 0 && n <= 128 &&
	       strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

const char *
tenant_upstream_organization(const struct tenant *t)
{
	return t->upstream_org;
}

const char *
tenant_upstream_project(const struct tenant *t)
{
	return t->upstream_project;
}

int
tenant_has_secrets(const struct tenant *t)
{
	return t->nsecrets > 0;
}

int
tenant_allow_client_secrets(const struct tenant *t)
{
	return t->allow_client_secrets;
}

/* "domain\0name", the identity of a secret (a domain holds no NUL), into
 * a buffer the caller frees; *len gets its length. NULL on no memory. */
static char *
secret_id(const char *domain, const char *name, size_t *len)
{
	size_t dn = strlen(domain), nn = strlen(name);
	char *id = malloc(dn + nn + 2);

	if (id) {
		memcpy(id, domain, dn + 1);
		memcpy(id + dn + 1, name, nn + 1);
		*len = dn + 1 + nn;
	}
	return id;
}

/*
 * Marks in brokered, by secret_id, the last of the tenant's secrets of
 * each domain and name that the allowlist reaches (a later one of the same
 * identity replaces an earlier, as a client's is replaced). Returns how
 * many secrets the allowlist reaches, or -1 when memory runs out.
 */
static int
reached(const struct tenant *t, const struct domain_set *allow, json_t *brokered, json_t *names)
{
	size_t i, len;
	char *id;
	int n = 0;

	for (i = 0; i < t->nsecrets; i++) {
		const struct secret *sec = &t->secrets[i];

		if (!domain_set_covers(allow, sec->domain))
			continue;
		id = secret_id(sec->domain, sec->name, &len);
		if (id == NULL || json_object_setn_new_nocheck(brokered, id, len,
		                                               json_integer((json_int_t)i)) < 0) {
			free(id);
			return -1;
		}
		free(id);
		if (names)
			json_array_append_new(names, json_string(sec->name));
		n++;
	}
	return n;
}

/*
 * The new domain_secrets: the client's, but those of a domain and name the
 * broker supplies, then the broker's, in the tenant's order. Each secret
 * is looked up once by its identity. NULL when memory runs out.
 */
static json_t *
merged_secrets(const struct tenant *t, const json_t *client, const json_t *brokered)
{
	json_t *list = json_array(), *s, *last;
	size_t i, len;
	char *id;

	json_array_foreach(client, i, s)
	{
		const char *name = json_string_value(json_object_get(s, "name"));
		const char *domain = json_string_value(json_object_get(s, "domain"));

		if (list == NULL)
			continue;
		/* Without both (the contract requires them) it is no broker's. */
		id = name && domain ? secret_id(domain, name, &len) : NULL;
		if ((name && domain && id == NULL) ||
		    ((id == NULL || json_object_getn(brokered, id, len) == NULL) &&
		     json_array_append(list, s) < 0)) {
			json_decref(list);
			list = NULL;
		}
		free(id);
	}
	for (i = 0; list && i < t->nsecrets; i++) {
		const struct secret *sec = &t->secrets[i];

		id = secret_id(sec->domain, sec->name, &len);
		last = id ? json_object_getn(brokered, id, len) : NULL;
		free(id);
		if (id == NULL ||
		    (last && (size_t)json_integer_value(last) == i &&
		     json_array_append_new(list, json_pack("{s:s, s:s, s:s#}", "domain",
		                                           sec->domain, "name", sec->name, "value",
		                                           sec->value, sec->len)) < 0)) {
			json_decref(list);
			list = NULL;
		}
	}
	return list;
}

int
tenant_inject_secrets(const struct tenant *t, json_t *doc, json_t *names)
{
	json_t *np = json_object_get(doc, "network_policy"), *brokered = NULL, *list;
	struct domain_set *allow = NULL;
	struct err e;
	int n = 0;

	if (t->nsecrets == 0 || !json_is_object(np) ||
	    strcmp(json_string_value(json_object_get(np, "type")), "allowlist") != 0)
		return 0;
	allow = domain_set_of(json_object_get(np, "allowed_domains"), &e);
	brokered = json_object();
	if (allow == NULL || brokered == NULL)
		goto fail;
	n = reached(t, allow, brokered, names);
	if (n < 0)
		goto fail;
	/* The broker's value wins over a client's of the same name. */
	if (n > 0) {
		list = merged_secrets(t, json_object_get(np, "domain_secrets"), brokered);
		if (list == NULL || json_object_set_new(np, "domain_secrets", list) < 0)
			goto fail;
	}
	domain_set_free(allow);
	json_decref(brokered);
	return n;
fail:
	domain_set_free(allow);
	json_decref(brokered);
	return -1;
}
