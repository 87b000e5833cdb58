#include "eval.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/config.h"
#include "lib/jsondoc.h"
#include "policy/decide.h"
#include "policy/operations.h"
#include "policy/policy.h"
#include "policy/policyset.h"
#include "audit/redact.h"
#include "policy/schema.h"
#include "lib/secmem.h"
#include "policy/tenant.h"

static const char usage[] =
        "usage: gateway eval --config FILE [--tenant NAME] [--operation ID] < body.json\n"
        "Decides a body sent to the operation (an operationId of the API; default\n"
        "CreateContainer) as the gateway would, with nothing sent.\n"
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

/* Every domain secret's value in doc, wherever it sits (a create's
 * network_policy, a tool container's), replaced by the marker. */
static void
mask_secrets(json_t *doc)
{
	const char *k;
	json_t *v, *s;
	size_t i;

	if (json_is_array(doc)) {
		json_array_foreach(doc, i, v)
		{
			mask_secrets(v);
		}
		return;
	}
	json_object_foreach(doc, k, v)
	{
		if (strcmp(k, "domain_secrets") == 0 && json_is_array(v)) {
			json_array_foreach(v, i, s)
			{
				if (json_object_get(s, "value"))
					json_object_set_new(s, "value", json_string(REDACT_MARKER));
			}
		} else {
			mask_secrets(v);
		}
	}
}

/* The decision as eval prints it. */
static json_t *
describe(const struct decision *d, json_t *doc)
{
	json_t *out = json_object(), *rules = json_array();

	json_object_set_new(out, "decision", json_string(d->decision));
	json_object_set_new(out, "rules", rules);
	if (strcmp(d->decision, "allow") != 0 && strcmp(d->decision, "shadow_deny") != 0)
		json_array_append_new(rules, error_json(&d->err, strcmp(d->decision, "invalid") == 0
		                                                         ? "invalid"
		                                                         : "deny"));
	else if (d->shadow.status)
		json_array_append_new(rules, error_json(&d->shadow, "shadow"));
	json_object_set(out, "adjustments", d->adjustments);
	/* What would be forwarded, with every secret value masked. */
	if (doc && (strcmp(d->decision, "allow") == 0 || strcmp(d->decision, "shadow_deny") == 0)) {
		mask_secrets(doc);
		json_object_set(out, "forwarded", doc);
	}
	return out;
}

int
eval_main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"tenant", required_argument, NULL, 't'},
	        {"operation", required_argument, NULL, 'o'},
	        {NULL, 0, NULL, 0},
	};
	static struct errlist errs;
	const char *config = NULL, *tenant = NULL, *operation = "CreateContainer";
	const struct operation *op;
	struct decision d;
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
		else if (opt == 'o')
			operation = optarg;
		else
			goto usage;
	}
	if (config == NULL || optind < argc)
		goto usage;
	if ((op = operations_by_id(operation)) == NULL) {
		fprintf(stderr, "gateway eval: the API has no operation %s\n", operation);
		return 2;
	}
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
	err_clear(&e);
	doc = len ? jsondoc_parse(body, len, &e) : NULL;
	if (len && doc == NULL) {
		out = json_pack("{s:s, s:[o]}", "decision", "invalid", "rules",
		                error_json(&e, "invalid"));
	} else {
		if (decide(p, t, op, doc, &d) < 0) {
			fprintf(stderr, "gateway eval: out of memory\n");
			goto out;
		}
		out = describe(&d, doc);
		decide_release(&d);
	}
	json_object_set_new(out, "tenant", t ? json_string(tenant_name(t)) : json_null());
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
