#include "eval.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/config.h"
#include "lib/jsondoc.h"
#include "policy/policy.h"
#include "policy/policyset.h"
#include "audit/redact.h"
#include "policy/schema.h"
#include "lib/secmem.h"
#include "policy/tenant.h"

static const char usage[] =
        "usage: gateway eval --config FILE [--tenant NAME] < body.json\n"
        "Exit status: 0 allow; 1 deny or invalid (the gateway would refuse the body);\n"
        "2 no decision (a usage error, an unknown tenant, a config or policy that\n"
        "does not load); 3 shadow_deny (forwarded now, refused once enforced).\n";

/* The exit status of a decision, for a CI job to gate on: a refusal is 1,
 * a would-be refusal in shadow mode 3, so that a job may fail on either or
 * only on the first; 2 stays for "could not decide". */
static int
exit_status(const char *decision)
{
	if (decision && strcmp(decision, "allow") == 0)
		return 0;
	if (decision && strcmp(decision, "shadow_deny") == 0)
		return 3;
	return 1;
}

static json_t *
error_json(const struct err *e, const char *effect)
{
	return json_pack("{s:s, s:i, s:s?, s:s?, s:s?, s:s}", "effect", effect, "status", e->status,
	                 "type", e->type, "code", e->code, "param", e->param[0] ? e->param : NULL,
	                 "message", e->message);
}

/* Reads all of standard input, up to max bytes, into wiped memory. */
static char *
read_body(size_t max, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = secmem_alloc(cap), *grown;
	ssize_t k;

	while (buf && (k = read(STDIN_FILENO, buf + n, cap - n)) > 0) {
		n += (size_t)k;
		if (n == cap) {
			if (cap >= max) {
				secmem_free(buf);
				return NULL;
			}
			grown = secmem_realloc(buf, cap * 2);
			if (grown == NULL) {
				secmem_free(buf);
				return NULL;
			}
			buf = grown;
			cap *= 2;
		}
	}
	*len = n;
	return buf;
}

static void
print(json_t *out)
{
	char *text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (text)
		printf("%s\n", text);
	secmem_json_free(text);
}

/* Decides doc under p (and t); fills out. */
static void
decide(const struct policy *p, const struct tenant *t, json_t *doc, json_t *out)
{
	json_t *rules = json_array(), *adjust = json_array(), *names = json_array(), *v;
	struct policy_result pr;
	const char *decision = "allow";
	size_t i;

	json_object_set_new(out, "rules", rules);
	json_object_set_new(out, "adjustments", adjust);
	if (t && !tenant_allow_client_secrets(t) &&
	    json_object_get(json_object_get(doc, "network_policy"), "domain_secrets")) {
		struct err e;

		err_set(&e, 403, ERR_POLICY, "client_secrets_not_allowed",
		        "network_policy.domain_secrets",
		        "this tenant's domain secrets are supplied by the gateway");
		json_array_append_new(rules, error_json(&e, "deny"));
		json_object_set_new(out, "decision", json_string("deny"));
		json_decref(names);
		return;
	}
	if (policy_apply_create(p, doc, &pr) < 0) {
		json_array_append_new(rules, error_json(&pr.err, "deny"));
		json_object_set_new(out, "decision", json_string("deny"));
		json_decref(names);
		return;
	}
	if (pr.nshadow) {
		json_array_append_new(rules, error_json(&pr.shadow, "shadow"));
		decision = "shadow_deny";
	}
	for (i = 0; i < pr.nadjust; i++)
		json_array_append_new(adjust, json_string(pr.adjust[i]));
	if (t && tenant_inject_secrets(t, doc, names) > 0) {
		json_array_foreach(names, i, v)
		{
			json_array_append_new(adjust, json_pack("s+", "brokered secret added: ",
			                                        json_string_value(v)));
		}
	}
	json_decref(names);
	json_object_set_new(out, "decision", json_string(decision));
	/* What would be forwarded, with every secret value masked. */
	if (json_object_get(doc, "network_policy"))
		json_object_set_new(doc, "network_policy",
		                    redact_network_policy(json_object_get(doc, "network_policy")));
	json_object_set(out, "forwarded", doc);
}

int
eval_main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"tenant", required_argument, NULL, 't'},
	        {NULL, 0, NULL, 0},
	};
	static struct errlist errs;
	const char *config = NULL, *tenant = NULL;
	struct config *cfg = NULL;
	struct policyset *p = NULL;
	const struct tenant *t = NULL;
	json_t *out = NULL, *doc = NULL;
	char *body = NULL;
	size_t len = 0, i;
	struct err e;
	int opt, rc = 1;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'c')
			config = optarg;
		else if (opt == 't')
			tenant = optarg;
		else
			goto usage;
	}
	if (config == NULL || optind < argc)
		goto usage;
	cfg = config_load(config, &errs);
	if (cfg)
		p = policyset_load(cfg->policy_file, &errs);
	if (p == NULL)
		goto fail;
	if (tenant && (t = tenants_by_name(policyset_tenants(p), tenant)) == NULL) {
		fprintf(stderr, "gateway eval: no tenant named %s in %s\n", tenant,
		        cfg->policy_file);
		rc = 2;
		goto out;
	}
	body = read_body((size_t)cfg->max_body_bytes, &len);
	if (body == NULL) {
		fprintf(stderr, "gateway eval: the body is larger than limits.max_body_bytes\n");
		goto out;
	}
	out = json_object();
	json_object_set_new(out, "tenant", t ? json_string(tenant_name(t)) : json_null());
	err_clear(&e);
	doc = jsondoc_parse(body, len, &e);
	if (doc == NULL || schema_check(&schema_create_container_body, doc, &e) < 0) {
		json_object_set_new(out, "decision", json_string("invalid"));
		json_object_set_new(out, "rules", json_pack("[o]", error_json(&e, "invalid")));
	} else {
		decide(t ? tenant_policy(t) : policyset_org(p), t, doc, out);
	}
	print(out);
	rc = exit_status(json_string_value(json_object_get(out, "decision")));
	goto out;
usage:
	fputs(usage, stderr);
	rc = 2;
	goto out;
fail:
	for (i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msg[i]);
	rc = 2;
out:
	json_decref(doc);
	json_decref(out);
	secmem_free(body);
	policyset_free(p);
	config_free(cfg);
	return rc;
}
