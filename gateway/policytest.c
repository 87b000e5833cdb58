#include "policytest.h"

#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "policy/decide.h"
#include "policy/operations.h"
#include "policy/policy.h"
#include "policy/policyset.h"
#include "policy/tenant.h"

static const char usage[] =
        "usage: gateway policy test [--threshold PERCENT] [--verbose] CASES.json...\n"
        "Runs each file's cases against the policy it names and reports which of the\n"
        "policy's rules they exercised. Exit status: 0 every case passed and rule\n"
        "coverage reached PERCENT (default 0); 1 a case failed or coverage fell short;\n"
        "2 a usage error or a file that does not load.\n";

#define SCOPE_RULES (POLICY_MAX_RULES + 2)
#define PATH_MAX_   4096

/* The rules of one decider (the organization, or one tenant) and which
 * cases exercised them. */
struct scope {
	const struct tenant *tenant; /* NULL: the organization */
	const char *rules[SCOPE_RULES];
	size_t nrules;
	unsigned char hit[SCOPE_RULES];
};

struct run {
	int verbose;
	size_t cases, failed;
	size_t rules, hit;
};

static void
scope_init(struct scope *s, const struct policyset *ps, const struct tenant *t)
{
	const struct policy *p = t ? tenant_policy(t) : policyset_org(ps);

	memset(s, 0, sizeof(*s));
	s->tenant = t;
	s->nrules = policy_rules(p, s->rules, POLICY_MAX_RULES);
	s->nrules += decide_tenant_rules(t, s->rules + s->nrules, SCOPE_RULES - s->nrules);
}

static void
scope_hit(struct scope *s, const struct decision *d)
{
	size_t i, k;

	for (i = 0; i < d->nrules; i++)
		for (k = 0; k < s->nrules; k++)
			if (strcmp(d->rules[i], s->rules[k]) == 0)
				s->hit[k] = 1;
}

/* Whether want is contained in got: every member of an object, each item
 * of an array of the same length, equal scalars. */
static int
contains(const json_t *got, const json_t *want)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_object(want)) {
		if (!json_is_object(got))
			return 0;
		json_object_foreach((json_t *)(uintptr_t)want, k, v)
		{
			if (!contains(json_object_get(got, k), v))
				return 0;
		}
		return 1;
	}
	if (json_is_array(want)) {
		if (!json_is_array(got) || json_array_size(got) != json_array_size(want))
			return 0;
		json_array_foreach(want, i, v)
		{
			if (!contains(json_array_get(got, i), v))
				return 0;
		}
		return 1;
	}
	return got && json_equal(got, want);
}

/* Why the decision is not what the case expects; NULL when it is. */
static const char *
mismatch(const json_t *expect, const struct decision *d, const json_t *forwarded, char *why,
         size_t n)
{
	const char *want = json_string_value(json_object_get(expect, "decision"));
	const char *code = json_string_value(json_object_get(expect, "code"));
	const char *param = json_string_value(json_object_get(expect, "param"));
	const json_t *fwd = json_object_get(expect, "forwarded");
	const struct err *e = strcmp(d->decision, "shadow_deny") == 0 ? &d->shadow : &d->err;
	const char *got_code = e->code ? e->code : "";

	if (strcmp(want, d->decision) != 0) {
		snprintf(why, n, "want %s, got %s%s%s%s%s", want, d->decision, *got_code ? " " : "",
		         got_code, e->message[0] ? ": " : "", e->message);
		return why;
	}
	if (code && strcmp(code, got_code) != 0) {
		snprintf(why, n, "want code %s, got %s: %s", code, *got_code ? got_code : "none",
		         e->message);
		return why;
	}
	if (param && strcmp(param, e->param) != 0) {
		snprintf(why, n, "want param %s, got %s", param, e->param[0] ? e->param : "none");
		return why;
	}
	if (fwd && !contains(forwarded, fwd)) {
		snprintf(why, n, "what would be forwarded does not contain expect.forwarded");
		return why;
	}
	return NULL;
}

static const char *const decisions[] = {"allow", "deny", "shadow_deny", "invalid", NULL};

/* A case's shape; NULL when fine, else what is wrong with it. */
static const char *
malformed(const json_t *c)
{
	const json_t *expect = json_object_get(c, "expect");
	const char *d = json_string_value(json_object_get(expect, "decision"));
	const char *k;
	json_t *v;
	size_t i;

	if (!json_is_object(c) || !json_is_string(json_object_get(c, "name")))
		return "a case must be an object with a \"name\"";
	json_object_foreach((json_t *)(uintptr_t)c, k, v)
	{
		if (strcmp(k, "name") != 0 && strcmp(k, "tenant") != 0 &&
		    strcmp(k, "operation") != 0 && strcmp(k, "body") != 0 &&
		    strcmp(k, "expect") != 0 && strcmp(k, "$comment") != 0)
			return "unknown key (a case takes name, tenant, operation, body, expect)";
	}
	for (i = 0; d && decisions[i]; i++)
		if (strcmp(d, decisions[i]) == 0)
			break;
	if (d == NULL || decisions[i] == NULL)
		return "expect.decision must be allow, deny, shadow_deny or invalid";
	json_object_foreach((json_t *)(uintptr_t)expect, k, v)
	{
		if (strcmp(k, "decision") != 0 && strcmp(k, "code") != 0 &&
		    strcmp(k, "param") != 0 && strcmp(k, "forwarded") != 0)
			return "unknown key in expect (it takes decision, code, param, forwarded)";
	}
	return NULL;
}

/* Runs one case; -1 when it cannot be run at all (a usage error). */
static int
run_case(struct run *run, const char *file, size_t idx, const json_t *c, const struct policyset *ps,
         struct scope *scopes, size_t nscopes)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	const char *tname = json_string_value(json_object_get(c, "tenant"));
	const char *opid = json_string_value(json_object_get(c, "operation"));
	const char *bad = malformed(c);
	const struct tenant *t = NULL;
	const struct operation *op;
	struct decision d;
	char why[ERR_MESSAGE_MAX + 128];
	const char *wrong;
	json_t *body;
	size_t s;

	if (bad) {
		fprintf(stderr, "%s: cases[%zu]: %s\n", file, idx, bad);
		return -1;
	}
	if (tname && (t = tenants_by_name(policyset_tenants(ps), tname)) == NULL) {
		fprintf(stderr, "%s: cases[%zu] \"%s\": the policy has no tenant %s\n", file, idx,
		        name, tname);
		return -1;
	}
	if ((op = operations_by_id(opid ? opid : "CreateContainer")) == NULL) {
		fprintf(stderr, "%s: cases[%zu] \"%s\": the API has no operation %s\n", file, idx,
		        name, opid);
		return -1;
	}
	body = json_deep_copy(json_object_get(c, "body"));
	if (decide(ps, t, op, body, &d) < 0) {
		json_decref(body);
		fprintf(stderr, "gateway policy test: out of memory\n");
		return -1;
	}
	for (s = 0; s < nscopes; s++)
		if (scopes[s].tenant == t)
			scope_hit(&scopes[s], &d);
	wrong = mismatch(json_object_get(c, "expect"), &d, body, why, sizeof(why));
	run->cases++;
	if (wrong) {
		run->failed++;
		printf("  FAIL  %s: %s\n", name, wrong);
	} else if (run->verbose) {
		printf("  ok    %s\n", name);
	}
	decide_release(&d);
	json_decref(body);
	return 0;
}

/* The policy a cases file names, relative to the file's folder. */
static const char *
policy_path(const char *file, const char *policy, char *dst, size_t n)
{
	const char *slash = strrchr(file, '/');

	if (policy[0] == '/' || slash == NULL)
		snprintf(dst, n, "%s", policy);
	else
		snprintf(dst, n, "%.*s/%s", (int)(slash - file), file, policy);
	return dst;
}

static void
report(struct run *run, const char *policy, const struct scope *s)
{
	size_t k, hit = 0;
	int first = 1;

	for (k = 0; k < s->nrules; k++)
		hit += s->hit[k];
	run->rules += s->nrules;
	run->hit += hit;
	printf("  %s %s%s%s: %zu of %zu rules exercised", policy, s->tenant ? "tenant \"" : "",
	       s->tenant ? tenant_name(s->tenant) : "the organization", s->tenant ? "\"" : "", hit,
	       s->nrules);
	for (k = 0; k < s->nrules; k++) {
		if (s->hit[k])
			continue;
		printf("%s%s", first ? "; not: " : ", ", s->rules[k]);
		first = 0;
	}
	printf("\n");
}

/* Runs a cases file; 0, or 2 when it cannot be run. */
static int
run_file(struct run *run, const char *file)
{
	static struct errlist errs;
	char path[PATH_MAX_];
	struct scope *scopes = NULL;
	struct policyset *ps = NULL;
	json_error_t je;
	json_t *doc = json_load_file(file, JSON_REJECT_DUPLICATES, &je), *c;
	const json_t *cases = json_object_get(doc, "cases");
	const char *policy = json_string_value(json_object_get(doc, "policy"));
	size_t i, nscopes;
	int rc = 2;

	if (doc == NULL) {
		fprintf(stderr, "%s: line %d, column %d: %s\n", file, je.line, je.column, je.text);
		return 2;
	}
	if (policy == NULL || !json_is_array(cases)) {
		fprintf(stderr, "%s: must be {\"policy\": \"FILE\", \"cases\": [...]}\n", file);
		goto out;
	}
	memset(&errs, 0, sizeof(errs));
	ps = policyset_load(policy_path(file, policy, path, sizeof(path)), &errs);
	if (ps == NULL) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		goto out;
	}
	nscopes = 1 + tenants_count(policyset_tenants(ps));
	if ((scopes = calloc(nscopes, sizeof(*scopes))) == NULL)
		goto out;
	scope_init(&scopes[0], ps, NULL);
	for (i = 1; i < nscopes; i++)
		scope_init(&scopes[i], ps, tenants_at(policyset_tenants(ps), i - 1));
	printf("%s (%s, %s): %zu cases\n", file, path, policyset_version(ps),
	       json_array_size(cases));
	json_array_foreach(cases, i, c)
	{
		if (run_case(run, file, i, c, ps, scopes, nscopes) < 0)
			goto out;
	}
	for (i = 0; i < nscopes; i++)
		report(run, path, &scopes[i]);
	rc = 0;
out:
	free(scopes);
	policyset_free(ps);
	json_decref(doc);
	return rc;
}

int
policytest_main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"threshold", required_argument, NULL, 't'},
	        {"verbose", no_argument, NULL, 'v'},
	        {NULL, 0, NULL, 0},
	};
	struct run run = {0};
	double threshold = 0, pct;
	char *end;
	int opt, i;

	if (argc < 2 || strcmp(argv[1], "test") != 0) {
		fputs(usage, stderr);
		return 2;
	}
	argc--;
	argv++;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 't') {
			threshold = strtod(optarg, &end);
			if (*optarg == '\0' || *end != '\0' || threshold < 0 || threshold > 100) {
				fprintf(stderr,
				        "gateway policy test: --threshold takes a percentage "
				        "from 0 to 100\n");
				return 2;
			}
		} else if (opt == 'v') {
			run.verbose = 1;
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fputs(usage, stderr);
		return 2;
	}
	for (i = optind; i < argc; i++)
		if (run_file(&run, argv[i]) != 0)
			return 2;
	pct = run.rules ? 100.0 * (double)run.hit / (double)run.rules : 100.0;
	printf("%zu cases, %zu failed; %zu of %zu rules exercised (%.1f%%, threshold %.1f%%)\n",
	       run.cases, run.failed, run.hit, run.rules, pct, threshold);
	if (run.failed)
		return 1;
	if (pct + 1e-9 < threshold) {
		printf("coverage %.1f%% is below the threshold %.1f%%\n", pct, threshold);
		return 1;
	}
	return 0;
}
