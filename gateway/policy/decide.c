#include "policy/decide.h"

#include <stdio.h>
#include <string.h>

#include "policy/operations.h"
#include "policy/policyset.h"
#include "policy/schema.h"
#include "policy/tenant.h"
#include "policy/tools.h"

/* The operations whose bodies the gateway decides on (app/front.c's own
 * routes); every other one is decided by its route alone. */
enum kind { KIND_OTHER, KIND_CREATE, KIND_RESPONSES, KIND_BATCH };

static enum kind
kind_of(const struct operation *op)
{
	static const struct {
		const char *id;
		enum kind kind;
	} kinds[] = {
	        {"CreateContainer", KIND_CREATE},
	        {"createResponse", KIND_RESPONSES},
	        {"beta_createResponse", KIND_RESPONSES},
	        {"Compactconversation", KIND_RESPONSES},
	        {"beta_Compactconversation", KIND_RESPONSES},
	        {"createBatch", KIND_BATCH},
	};
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(op->id, kinds[i].id) == 0)
			return kinds[i].kind;
	return KIND_OTHER;
}

static void
note(struct decision *d, const char *code)
{
	size_t i;

	for (i = 0; i < d->nrules; i++)
		if (strcmp(d->rules[i], code) == 0)
			return;
	if (d->nrules < sizeof(d->rules) / sizeof(d->rules[0]))
		d->rules[d->nrules++] = code;
}

static void
refuse(struct decision *d, const struct err *e)
{
	d->err = *e;
	d->decision = e->status == 400 ? "invalid" : "deny";
	if (e->status == 403 && e->code)
		note(d, e->code);
}

/* What the policy decided for the request's containers: the rules that
 * fired, the changes, the first shadow denial. */
static int
take(struct decision *d, const struct policy_result *pr)
{
	size_t i;

	for (i = 0; i < pr->nrules; i++)
		note(d, pr->rules[i]);
	for (i = 0; i < pr->nadjust; i++)
		if (json_array_append_new(d->adjustments, json_string(pr->adjust[i])) < 0)
			return -1;
	if (pr->nshadow && d->shadow.status == 0) {
		d->shadow = pr->shadow;
		d->decision = "shadow_deny";
	}
	return 0;
}

/* A tenant's brokered secrets, added to one container config. */
static int
broker(const struct tenant *t, json_t *config, struct decision *d)
{
	json_t *names = json_array(), *v;
	char text[160];
	size_t i;

	if (names == NULL || tenant_inject_secrets(t, config, names) < 0) {
		json_decref(names);
		return -1;
	}
	json_array_foreach(names, i, v)
	{
		snprintf(text, sizeof(text), "brokered secret %s added", json_string_value(v));
		note(d, "brokered_secrets");
		if (json_array_append_new(d->adjustments, json_string(text)) < 0) {
			json_decref(names);
			return -1;
		}
	}
	json_decref(names);
	return 0;
}

static int
client_secrets(struct decision *d, const char *param)
{
	struct err e;

	err_set(&e, 403, ERR_POLICY, "client_secrets_not_allowed", param,
	        "this tenant's domain secrets are supplied by the gateway; remove %s from the "
	        "request",
	        param);
	refuse(d, &e);
	return 0;
}

static int
create(const struct policy *p, const struct tenant *t, json_t *body, struct decision *d)
{
	struct policy_result pr;
	struct err e;

	err_clear(&e);
	if (body == NULL || schema_check(&schema_create_container_body, body, &e) < 0) {
		if (body == NULL)
			err_set(&e, 400, ERR_INVALID, "missing_body", NULL,
			        "a create needs a JSON body");
		refuse(d, &e);
		return 0;
	}
	if (t && !tenant_allow_client_secrets(t) &&
	    json_object_get(json_object_get(body, "network_policy"), "domain_secrets"))
		return client_secrets(d, "network_policy.domain_secrets");
	if (policy_apply_create(p, body, &pr) < 0) {
		if (pr.err.status == 503)
			return -1;
		(void)take(d, &pr);
		refuse(d, &pr.err);
		return 0;
	}
	if (take(d, &pr) < 0)
		return -1;
	return t ? broker(t, body, d) : 0;
}

static int
responses(const struct policy *p, const struct tenant *t, json_t *body, struct decision *d)
{
	struct tools_result tr;
	char param[256];
	struct err e;
	size_t i;
	int rc = 0;

	if (!json_is_object(body)) {
		err_set(&e, 400, ERR_INVALID, "invalid_type", NULL,
		        "the request body must be a JSON object");
		refuse(d, &e);
		return 0;
	}
	if (policy_check_prompt(p, body, &e) < 0) {
		refuse(d, &e);
		return 0;
	}
	memset(&tr, 0, sizeof(tr));
	if (tools_apply(p, body, &tr) < 0) {
		if (tr.decision.err.status == 503)
			rc = -1;
		else {
			(void)take(d, &tr.decision);
			refuse(d, &tr.decision.err);
		}
		goto out;
	}
	if (t && !tenant_allow_client_secrets(t) &&
	    tools_client_secrets(&tr, param, sizeof(param))) {
		rc = client_secrets(d, param);
		goto out;
	}
	if (take(d, &tr.decision) < 0) {
		rc = -1;
		goto out;
	}
	for (i = 0; t && i < tr.n && rc == 0; i++)
		if (tr.containers[i].kind == TOOLS_MADE)
			rc = broker(t, tr.containers[i].config, d);
out:
	tools_result_release(&tr);
	return rc;
}

size_t
decide_tenant_rules(const struct tenant *t, const char **out, size_t max)
{
	size_t n = 0;

	if (t && !tenant_allow_client_secrets(t) && n < max)
		out[n++] = "client_secrets_not_allowed";
	if (t && tenant_has_secrets(t) && n < max)
		out[n++] = "brokered_secrets";
	return n;
}

int
decide(const struct policyset *ps, const struct tenant *t, const struct operation *op, json_t *body,
       struct decision *d)
{
	const struct policy *p = t ? tenant_policy(t) : policyset_org(ps);
	struct err e;

	memset(d, 0, sizeof(*d));
	d->decision = "allow";
	if ((d->adjustments = json_array()) == NULL)
		return -1;
	switch (policy_route(p, op)) {
	case POLICY_ROUTE_ALLOW:
		break;
	case POLICY_ROUTE_SHADOW_DENY:
		note(d, "route_denied");
		err_set(&d->shadow, 403, ERR_POLICY, "route_denied", NULL,
		        "%s would be denied by the policy's routes", op->id);
		d->decision = "shadow_deny";
		break;
	default:
		err_set(&e, 403, ERR_POLICY, "route_denied", NULL,
		        "%s (%s /v1%s) is not allowed by %s policy", op->id,
		        operation_method_name(op->method), op->path, policy_whose(p));
		refuse(d, &e);
		return 0;
	}
	switch (kind_of(op)) {
	case KIND_CREATE:
		return create(p, t, body, d);
	case KIND_RESPONSES:
		return responses(p, t, body, d);
	case KIND_BATCH:
		if (policy_check_batch(p, body, &e) < 0)
			refuse(d, &e);
		return 0;
	default:
		return 0;
	}
}

void
decide_release(struct decision *d)
{
	json_decref(d->adjustments);
	d->adjustments = NULL;
}
