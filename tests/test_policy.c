/*
 * Tests for gateway/policy.c, driven by $GW_DATA/policy/ (GW_DATA defaults to
 * "tests/data").
 *
 *   apply/<topic>.json   {"policy": P, "cases": [C, ...]}; each case is
 *                        {"name", "policy"? (overrides P), "request", "expect"}
 *                        and expect is one of
 *                          {"allow": true, "forwarded": F, "adjust": [s, ...]}
 *                            the request becomes exactly F (json_equal) and
 *                            adjustment i contains s[i], no more, no fewer;
 *                          {"allow": false, "status", "code", "param",
 *                           "message"?: [s, ...]}
 *                            denied with that status, code and param, the
 *                            message containing every s.
 *   load_errors.json     {"cases": [{"name", "policy", "errors": [e, ...],
 *                        "regression"?}]}: policy_new fails with exactly one message
 *                        per e, each starting "<file>: <e>" (so the JSON path
 *                        comes first; "A ... B" means A, then B after it).
 *                        Cases with "regression" guard a fixed bug and
 *                        run in their own test.
 *   load/<name>.json     files for policy_load.
 *   routes.json          {"cases": [{"name", "policy", "tenant"?, "expect":
 *                        {operation: decision}, "others"?}]}: policy_route
 *                        of the organization's policy (or the tenant's)
 *                        gives each decision ("allow", "deny",
 *                        "shadow_deny"); operations are operationIds or
 *                        short names, and "others" is the decision for
 *                        every operation expect does not name.
 *
 * Every apply case also checks what must hold for any input: the request
 * passes the schema (so the data stays honest), two copies give identical
 * results, no domain secret value appears in any message, param or
 * adjustment, a message names its param, and a forwarded document still
 * passes the schema and is a fixed point (applying again changes nothing).
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "policy/operations.h"
#include "policy/policy.h"
#include "policy/policyset.h"
#include "policy/schema.h"
#include "policy/tenant.h"
#include "lib/secmem.h"

#define PATH_MAX_LEN 1024
#define SHOW_MAX     2048
#define SECRETS_MAX  16

/* The apply files, in the order they run; apply_files_listed checks that
 * this list and the folder agree, so a new file cannot be skipped. */
static const char *const apply_files[] = {
        "domains.json", "empty_policy.json",    "expiry.json",  "files.json",  "limits.json",
        "memory.json",  "network_default.json", "secrets.json", "skills.json", "wildcards.json",
        NULL,
};

static void
suite_init(void)
{
	secmem_init();
}

TestSuite(policy, .init = suite_init);

static void
data_path(char *dst, size_t n, const char *rel)
{
	const char *dir = getenv("GW_DATA");

	if (dir == NULL || dir[0] == '\0')
		dir = "tests/data";
	snprintf(dst, n, "%s/%s", dir, rel);
}

static json_t *
load_data(const char *rel)
{
	char path[PATH_MAX_LEN];
	json_error_t je;
	json_t *doc;

	data_path(path, sizeof(path), rel);
	doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	cr_assert_not_null(doc, "%s:%d:%d: %s (set GW_DATA)", path, je.line, je.column, je.text);
	return doc;
}

static json_t *
parse(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &je);

	cr_assert_not_null(v, "bad JSON in test: %s: %s", je.text, text);
	return v;
}

/* Compact, sorted JSON text of v for failure messages, cut to fit buf. */
static const char *
show(const json_t *v, char *buf, size_t n)
{
	size_t len;

	if (v == NULL)
		return "(none)";
	len = json_dumpb(v, buf, n - 1, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	buf[len < n - 1 ? len : n - 1] = '\0';
	return buf;
}

static const char *
str_or(const char *s, const char *dflt)
{
	return s ? s : dflt;
}

/* Compiles doc or fails the test with every message policy_new gave. */
static struct policy *
compile(const json_t *doc, const char *ctx)
{
	static struct errlist errs;
	struct policy *p;
	char all[ERRLIST_MAX * 80] = "";
	size_t i, o = 0;

	memset(&errs, 0, sizeof(errs));
	p = policy_new(doc, "policy.json", &errs);
	for (i = 0; i < errs.n && o < sizeof(all); i++)
		o += (size_t)snprintf(all + o, sizeof(all) - o, "\n  %s", errs.msg[i]);
	cr_assert_not_null(p, "%s: policy does not compile:%s", ctx, all);
	cr_assert_eq(errs.n, 0, "%s: policy compiled with messages:%s", ctx, all);
	return p;
}

/* The domain secret values of a create document (borrowed from it). */
static size_t
secret_values(const json_t *doc, const char **out, size_t max)
{
	json_t *secrets, *s;
	size_t i, n = 0;

	secrets = json_object_get(json_object_get(doc, "network_policy"), "domain_secrets");
	json_array_foreach(secrets, i, s)
	{
		const char *v = json_string_value(json_object_get(s, "value"));

		if (v != NULL && n < max)
			out[n++] = v;
	}
	return n;
}

/* No secret of the request may show up anywhere a person could read. */
static void
expect_no_secret(const struct policy_result *r, const char **secrets, size_t nsecrets,
                 const char *ctx)
{
	size_t i, j;

	for (i = 0; i < nsecrets; i++) {
		cr_expect_null(strstr(r->err.message, secrets[i]),
		               "%s: message quotes a secret: %s", ctx, r->err.message);
		cr_expect_null(strstr(r->err.param, secrets[i]), "%s: param quotes a secret", ctx);
		for (j = 0; j < r->nadjust; j++)
			cr_expect_null(strstr(r->adjust[j], secrets[i]),
			               "%s: adjustment quotes a secret: %s", ctx, r->adjust[j]);
	}
}

static void
expect_same_result(int rca, const json_t *a, const struct policy_result *ra, int rcb,
                   const json_t *b, const struct policy_result *rb, const char *ctx)
{
	char sa[SHOW_MAX], sb[SHOW_MAX];
	size_t i;

	cr_expect_eq(rca, rcb, "%s: not deterministic: %d then %d", ctx, rca, rcb);
	cr_expect(json_equal(a, b), "%s: not deterministic:\n  %s\n  %s", ctx,
	          show(a, sa, sizeof(sa)), show(b, sb, sizeof(sb)));
	cr_expect_eq(ra->err.status, rb->err.status, "%s: status differs", ctx);
	cr_expect_str_eq(str_or(ra->err.code, ""), str_or(rb->err.code, ""), "%s", ctx);
	cr_expect_str_eq(ra->err.param, rb->err.param, "%s", ctx);
	cr_expect_str_eq(ra->err.message, rb->err.message, "%s", ctx);
	cr_expect_eq(ra->nadjust, rb->nadjust, "%s: adjustments differ", ctx);
	for (i = 0; i < ra->nadjust && i < rb->nadjust; i++)
		cr_expect_str_eq(ra->adjust[i], rb->adjust[i], "%s", ctx);
}

static void
expect_allowed(const struct policy *p, const json_t *expect, int rc, json_t *got,
               const struct policy_result *r, const char *ctx)
{
	json_t *forwarded = json_object_get(expect, "forwarded");
	json_t *adjust = json_object_get(expect, "adjust"), *s;
	char sa[SHOW_MAX], sb[SHOW_MAX];
	struct policy_result again_r;
	struct err se;
	json_t *again;
	size_t i;

	cr_assert(json_is_object(forwarded) && json_is_array(adjust),
	          "%s: an allowed case needs \"forwarded\" and \"adjust\"", ctx);
	cr_assert_eq(rc, 0, "%s: denied (%s, %s): %s", ctx, str_or(r->err.code, "?"), r->err.param,
	             r->err.message);
	cr_expect(json_equal(got, forwarded),
	          "%s: forwarded document differs:\n  got  %s\n  want %s", ctx,
	          show(got, sa, sizeof(sa)), show(forwarded, sb, sizeof(sb)));
	cr_expect_null(r->err.code, "%s: allowed but err.code is set", ctx);
	cr_expect_eq(r->nadjust, json_array_size(adjust), "%s: %zu adjustments, want %zu%s%s", ctx,
	             r->nadjust, json_array_size(adjust), r->nadjust ? "; first: " : "",
	             r->nadjust ? r->adjust[0] : "");
	json_array_foreach(adjust, i, s)
	{
		if (i >= r->nadjust)
			break;
		cr_expect_not_null(strstr(r->adjust[i], json_string_value(s)),
		                   "%s: adjustment %zu is \"%s\", want it to contain \"%s\"", ctx,
		                   i, r->adjust[i], json_string_value(s));
	}

	/* What is forwarded is still a valid create body... */
	err_clear(&se);
	cr_expect_eq(schema_check(&schema_create_container_body, got, &se), 0,
	             "%s: forwarded document breaks the contract: %s", ctx, se.message);
	/* ...and the policy has nothing more to change in it. */
	again = json_deep_copy(got);
	cr_assert_not_null(again);
	cr_expect_eq(policy_apply_create(p, again, &again_r), 0,
	             "%s: the forwarded document is denied when applied again: %s", ctx,
	             again_r.err.message);
	cr_expect(json_equal(again, got), "%s: applying again changed the document", ctx);
	cr_expect_eq(again_r.nadjust, 0, "%s: applying again adjusts: %s", ctx,
	             again_r.nadjust ? again_r.adjust[0] : "");
	json_decref(again);
}

static void
expect_denied(const json_t *expect, int rc, const struct policy_result *r, const char *ctx)
{
	json_t *status = json_object_get(expect, "status"), *message, *s;
	const char *code = json_string_value(json_object_get(expect, "code"));
	const char *param = json_string_value(json_object_get(expect, "param"));
	size_t i;

	cr_assert(json_is_integer(status) && code && param,
	          "%s: a denied case needs \"status\", \"code\" and \"param\"", ctx);
	cr_assert_eq(rc, -1, "%s: allowed, want %s", ctx, code);
	cr_expect_eq(r->err.status, json_integer_value(status), "%s: status %d", ctx,
	             r->err.status);
	cr_expect_str_eq(str_or(r->err.type, "(null)"), ERR_POLICY, "%s: type", ctx);
	cr_expect_str_eq(str_or(r->err.code, "(null)"), code, "%s: code (message: %s)", ctx,
	                 r->err.message);
	cr_expect_str_eq(r->err.param, param, "%s: param (message: %s)", ctx, r->err.message);
	cr_expect_gt(strlen(r->err.message), 20, "%s: message too short: \"%s\"", ctx,
	             r->err.message);
	cr_expect_not_null(strstr(r->err.message, param), "%s: message does not name %s: %s", ctx,
	                   param, r->err.message);
	message = json_object_get(expect, "message");
	json_array_foreach(message, i, s)
	{
		cr_expect_not_null(strstr(r->err.message, json_string_value(s)),
		                   "%s: message does not contain \"%s\": %s", ctx,
		                   json_string_value(s), r->err.message);
	}
}

static void
run_apply_case(const struct policy *p, const json_t *c, const char *ctx)
{
	json_t *request = json_object_get(c, "request");
	json_t *expect = json_object_get(c, "expect");
	const char *secrets[SECRETS_MAX];
	struct policy_result ra, rb;
	size_t nsecrets;
	struct err se;
	json_t *a, *b;
	int rca, rcb;

	cr_assert(json_is_object(request) && json_is_object(expect),
	          "%s: a case needs \"request\" and \"expect\"", ctx);
	err_clear(&se);
	cr_assert_eq(schema_check(&schema_create_container_body, request, &se), 0,
	             "%s: the request is not schema-valid: %s", ctx, se.message);

	a = json_deep_copy(request);
	b = json_deep_copy(request);
	cr_assert(a && b);
	rca = policy_apply_create(p, a, &ra);
	rcb = policy_apply_create(p, b, &rb);
	expect_same_result(rca, a, &ra, rcb, b, &rb, ctx);

	nsecrets = secret_values(request, secrets, SECRETS_MAX);
	expect_no_secret(&ra, secrets, nsecrets, ctx);

	if (json_is_true(json_object_get(expect, "allow")))
		expect_allowed(p, expect, rca, a, &ra, ctx);
	else if (json_is_false(json_object_get(expect, "allow")))
		expect_denied(expect, rca, &ra, ctx);
	else
		cr_assert_fail("%s: expect.allow must be true or false", ctx);
	json_decref(a);
	json_decref(b);
}

/* Runs every case of apply/<file>; returns how many. */
static size_t
run_apply_file(const char *file)
{
	char rel[PATH_MAX_LEN], ctx[2 * PATH_MAX_LEN];
	json_t *doc, *cases, *c, *file_policy, *pdoc;
	struct policy *p;
	size_t i, allowed = 0;

	snprintf(rel, sizeof(rel), "policy/apply/%s", file);
	doc = load_data(rel);
	cases = json_object_get(doc, "cases");
	file_policy = json_object_get(doc, "policy");
	cr_assert(json_array_size(cases) > 0, "%s: no cases", rel);
	json_array_foreach(cases, i, c)
	{
		snprintf(ctx, sizeof(ctx), "%s case %zu \"%s\"", rel, i,
		         str_or(json_string_value(json_object_get(c, "name")), "?"));
		pdoc = json_object_get(c, "policy");
		if (pdoc == NULL)
			pdoc = file_policy;
		cr_assert_not_null(pdoc, "%s: no policy for this case", ctx);
		p = compile(pdoc, ctx);
		run_apply_case(p, c, ctx);
		policy_free(p);
		allowed += json_is_true(json_object_get(json_object_get(c, "expect"), "allow"));
	}
	i = json_array_size(cases);
	cr_expect(allowed > 0 && allowed < i, "%s: cases should both allow and deny", rel);
	json_decref(doc);
	return i;
}

Test(policy, apply_domains)
{
	cr_expect_geq(run_apply_file("domains.json"), 20);
}

Test(policy, apply_empty_policy)
{
	run_apply_file("empty_policy.json");
}

Test(policy, apply_expiry)
{
	run_apply_file("expiry.json");
}

Test(policy, apply_files)
{
	run_apply_file("files.json");
}

Test(policy, apply_limits)
{
	run_apply_file("limits.json");
}

Test(policy, apply_memory)
{
	run_apply_file("memory.json");
}

Test(policy, apply_network_default)
{
	run_apply_file("network_default.json");
}

Test(policy, apply_secrets)
{
	run_apply_file("secrets.json");
}

Test(policy, apply_skills)
{
	run_apply_file("skills.json");
}

Test(policy, apply_wildcards)
{
	run_apply_file("wildcards.json");
}

static int
is_json_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

Test(policy, apply_files_listed)
{
	char path[PATH_MAX_LEN];
	struct dirent **names;
	int n, i;

	data_path(path, sizeof(path), "policy/apply");
	n = scandir(path, &names, is_json_name, alphasort);
	cr_assert_geq(n, 0, "cannot read %s", path);
	for (i = 0; i < n; i++) {
		cr_expect(apply_files[i] && strcmp(apply_files[i], names[i]->d_name) == 0,
		          "%s/%s is not run (or apply_files is out of order)", path,
		          names[i]->d_name);
		free(names[i]);
	}
	free(names);
	cr_expect_null(apply_files[n], "apply_files lists %s, which is not in %s", apply_files[n],
	               path);
}

/* --- Loading -------------------------------------------------------------- */

/* Collects the string values under every "value" key of v, for checking that
 * no message quotes them. */
static size_t
nested_values(json_t *v, const char **out, size_t n, size_t max)
{
	const char *key;
	json_t *child;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach(v, key, child)
		{
			if (strcmp(key, "value") == 0 && json_is_string(child) && n < max)
				out[n++] = json_string_value(child);
			else
				n = nested_values(child, out, n, max);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child) n = nested_values(child, out, n, max);
	}
	return n;
}

/*
 * Whether msg is "<file>: " followed by want, where want "A ... B" means A
 * and then, anywhere after it, B.
 */
static int
message_matches(const char *msg, const char *file, const char *want)
{
	const char *dots = strstr(want, " ... ");
	size_t flen = strlen(file), alen = dots ? (size_t)(dots - want) : strlen(want);

	if (strncmp(msg, file, flen) != 0 || strncmp(msg + flen, ": ", 2) != 0)
		return 0;
	msg += flen + 2;
	if (strncmp(msg, want, alen) != 0)
		return 0;
	return dots == NULL || strstr(msg + alen, dots + 5) != NULL;
}

static void
run_load_error_case(json_t *c, const char *ctx)
{
	static struct errlist errs;
	json_t *doc = json_object_get(c, "policy"), *want = json_object_get(c, "errors"), *e;
	const char *secrets[SECRETS_MAX];
	char all[ERRLIST_MAX * 100] = "";
	size_t i, j, o = 0, nsecrets;
	int used[ERRLIST_MAX] = {0};
	struct policyset *p;

	cr_assert(doc && json_array_size(want) > 0, "%s: needs \"policy\" and \"errors\"", ctx);
	memset(&errs, 0, sizeof(errs));
	p = policyset_new(doc, "policy.json", &errs);
	for (i = 0; i < errs.n && o < sizeof(all); i++)
		o += (size_t)snprintf(all + o, sizeof(all) - o, "\n  %s", errs.msg[i]);
	cr_expect_null(p, "%s: compiled", ctx);
	policyset_free(p);
	cr_expect_eq(errs.n, json_array_size(want), "%s: %zu messages, want %zu:%s", ctx, errs.n,
	             json_array_size(want), all);
	for (i = 0; i < errs.n; i++)
		cr_expect_eq(strncmp(errs.msg[i], "policy.json: ", 13), 0,
		             "%s: message does not start with the file: %s", ctx, errs.msg[i]);
	json_array_foreach(want, i, e)
	{
		for (j = 0; j < errs.n; j++)
			if (!used[j] &&
			    message_matches(errs.msg[j], "policy.json", json_string_value(e)))
				break;
		cr_expect_lt(j, errs.n, "%s: no message matches \"%s\"; got:%s", ctx,
		             json_string_value(e), all);
		if (j < errs.n)
			used[j] = 1;
	}
	nsecrets = nested_values(doc, secrets, 0, SECRETS_MAX);
	for (i = 0; i < nsecrets; i++)
		for (j = 0; j < errs.n; j++)
			cr_expect_null(strstr(errs.msg[j], secrets[i]),
			               "%s: a message quotes a secret: %s", ctx, errs.msg[j]);
}

/* Runs the load_errors cases with (bugs) or without a "regression" note. */
static size_t
run_load_errors(int bugs)
{
	json_t *doc = load_data("policy/load_errors.json"), *cases, *c;
	char ctx[PATH_MAX_LEN];
	size_t i, ran = 0;

	cases = json_object_get(doc, "cases");
	json_array_foreach(cases, i, c)
	{
		json_t *bug = json_object_get(c, "regression");

		if ((bug != NULL) != bugs)
			continue;
		snprintf(ctx, sizeof(ctx), "load_errors.json case %zu \"%s\"%s%s", i,
		         str_or(json_string_value(json_object_get(c, "name")), "?"),
		         bug ? "; regression: " : "", bug ? json_string_value(bug) : "");
		run_load_error_case(c, ctx);
		ran++;
	}
	json_decref(doc);
	return ran;
}

Test(policy, load_errors)
{
	cr_expect_geq(run_load_errors(0), 40);
}

/* Load errors that were once missed, kept so the fix stays. */
Test(policy, load_errors_regressions)
{
	cr_expect_geq(run_load_errors(1), 1);
}

Test(policy, load_file_ok)
{
	static struct errlist errs;
	char path[PATH_MAX_LEN];
	struct policyset *p;

	data_path(path, sizeof(path), "policy/load/ok.json");
	p = policyset_load(path, &errs);
	cr_assert_not_null(p, "%s: %s", path, errs.n ? errs.msg[0] : "");
	cr_expect_eq(errs.n, 0);
	cr_expect_eq(policy_violation_mode(policyset_org(p)), POLICY_VIOLATION_LOG);
	policyset_free(p);
}

/* A file that is not JSON, or has a key twice, fails with its path and the
 * line first. */
static void
expect_load_fails(const char *rel, const char *contains)
{
	static struct errlist errs;
	char path[PATH_MAX_LEN], prefix[PATH_MAX_LEN + 8];
	struct policyset *p;

	memset(&errs, 0, sizeof(errs));
	data_path(path, sizeof(path), rel);
	p = policyset_load(path, &errs);
	cr_expect_null(p, "%s: loaded", path);
	policyset_free(p);
	cr_assert_eq(errs.n, 1, "%s: %zu messages", path, errs.n);
	snprintf(prefix, sizeof(prefix), "%s: line ", path);
	cr_expect_eq(strncmp(errs.msg[0], prefix, strlen(prefix)), 0, "%s", errs.msg[0]);
	cr_expect_not_null(strstr(errs.msg[0], contains), "%s", errs.msg[0]);
}

Test(policy, load_file_errors)
{
	static struct errlist errs;
	char path[PATH_MAX_LEN];

	expect_load_fails("policy/load/trailing_comma.json", ", column ");
	expect_load_fails("policy/load/duplicate_key.json", "duplicate");

	memset(&errs, 0, sizeof(errs));
	data_path(path, sizeof(path), "policy/load/no-such-file.json");
	cr_expect_null(policyset_load(path, &errs));
	cr_assert_eq(errs.n, 1);
	cr_expect_eq(strncmp(errs.msg[0], path, strlen(path)), 0, "%s", errs.msg[0]);
}

/* The policy `make run` uses loads, and means what it says. */
Test(policy, shipped_default_policy)
{
	static struct errlist errs;
	char path[PATH_MAX_LEN];
	struct policy_result r;
	struct policyset *ps;
	const struct policy *p;
	json_t *doc;

	data_path(path, sizeof(path), "../../policies/default.json");
	ps = policyset_load(path, &errs);
	cr_assert_not_null(ps, "%s: %s", path, errs.n ? errs.msg[0] : "");
	p = policyset_org(ps);
	cr_expect_eq(policy_violation_mode(p), POLICY_VIOLATION_BLOCK);

	doc = parse("{\"name\": \"ci\", \"memory_limit\": \"4g\", \"network_policy\": {\"type\": "
	            "\"allowlist\", \"allowed_domains\": [\"PyPI.org\", "
	            "\"raw.githubusercontent.com\"], \"domain_secrets\": [{\"domain\": "
	            "\"pypi.org\", \"name\": \"T\", \"value\": \"v\"}]}, \"skills\": [{\"type\": "
	            "\"skill_reference\", \"skill_id\": \"openai-spreadsheets\"}]}");
	cr_expect_eq(policy_apply_create(p, doc, &r), 0, "%s", r.err.message);
	cr_expect_str_eq(
	        json_string_value(json_array_get(
	                json_object_get(json_object_get(doc, "network_policy"), "allowed_domains"),
	                0)),
	        "pypi.org");
	json_decref(doc);

	doc = parse("{\"name\": \"ci\", \"network_policy\": {\"type\": \"allowlist\", "
	            "\"allowed_domains\": [\"*.githubusercontent.com\"]}}");
	cr_expect_eq(policy_apply_create(p, doc, &r), -1);
	cr_expect_str_eq(str_or(r.err.code, ""), "domain_invalid");
	json_decref(doc);

	doc = parse("{\"name\": \"ci\", \"memory_limit\": \"16g\"}");
	cr_expect_eq(policy_apply_create(p, doc, &r), -1);
	cr_expect_str_eq(str_or(r.err.code, ""), "memory_limit_exceeded");
	json_decref(doc);
	policyset_free(ps);
}

/* --- Routes ------------------------------------------------------------- */

static const char *
route_name(enum policy_route d)
{
	return d == POLICY_ROUTE_ALLOW ? "allow" : d == POLICY_ROUTE_DENY ? "deny" : "shadow_deny";
}

static void
run_routes_case(json_t *c, const char *ctx)
{
	static struct errlist errs;
	const char *tname = json_string_value(json_object_get(c, "tenant"));
	const char *others = json_string_value(json_object_get(c, "others"));
	json_t *expect = json_object_get(c, "expect"), *v;
	unsigned char listed[OPERATIONS_MAX] = {0};
	const struct policy *p;
	struct policyset *ps;
	const char *key;
	size_t i;

	memset(&errs, 0, sizeof(errs));
	ps = policyset_new(json_object_get(c, "policy"), "policy.json", &errs);
	cr_assert_not_null(ps, "%s: does not compile: %s", ctx, errs.n ? errs.msg[0] : "");
	p = policyset_org(ps);
	if (tname) {
		const struct tenant *t = tenants_by_name(policyset_tenants(ps), tname);

		cr_assert_not_null(t, "%s: no tenant %s", ctx, tname);
		p = tenant_policy(t);
	}
	cr_assert(json_is_object(expect), "%s: needs \"expect\"", ctx);
	json_object_foreach(expect, key, v)
	{
		const struct operation *op = policy_route_operation(key);

		cr_assert_not_null(op, "%s: %s is no operation", ctx, key);
		listed[op->index] = 1;
		cr_expect_str_eq(route_name(policy_route(p, op)), json_string_value(v), "%s: %s",
		                 ctx, key);
	}
	for (i = 0; others && i < operations_count; i++)
		if (!listed[i])
			cr_expect_str_eq(route_name(policy_route(p, &operations[i])), others,
			                 "%s: %s (others)", ctx, operations[i].id);
	/* An operation that is not the table's is never allowed. */
	cr_expect_neq(policy_route(p, NULL), POLICY_ROUTE_ALLOW, "%s: NULL", ctx);
	policyset_free(ps);
}

Test(policy, routes)
{
	json_t *doc = load_data("policy/routes.json"), *c;
	char ctx[PATH_MAX_LEN];
	size_t i;

	json_array_foreach(json_object_get(doc, "cases"), i, c)
	{
		snprintf(ctx, sizeof(ctx), "routes.json case %zu \"%s\"", i,
		         str_or(json_string_value(json_object_get(c, "name")), "?"));
		run_routes_case(c, ctx);
	}
	cr_expect_geq(i, 15);
	json_decref(doc);
}

/* The short names keep naming the operations they always did, and any
 * other key is no operation. */
Test(policy, route_operation_names)
{
	size_t i;

	for (i = 0; policy_operations[i].name; i++) {
		const struct operation *op = policy_route_operation(policy_operations[i].name);

		cr_assert_not_null(op, "%s", policy_operations[i].name);
		cr_expect_str_eq(op->id, policy_operations[i].operation_id);
		cr_expect_eq(policy_route_operation(policy_operations[i].operation_id), op);
	}
	cr_expect_null(policy_route_operation("default"));
	cr_expect_null(policy_route_operation("mode"));
	cr_expect_null(policy_route_operation("containers.update"));
	cr_expect_eq(policy_route_operation("createResponse"), operations_by_id("createResponse"));
}

/* The shipped policies' routes: make run's lets the whole API through, the
 * allowlist example only what it lists. */
Test(policy, shipped_policies_routes)
{
	static const struct {
		const char *file, *op, *want;
	} cases[] = {
	        {"default.json", "createResponse", "allow"},
	        {"default.json", "CreateContainer", "allow"},
	        {"default.json", "createImage", "allow"},
	        {"examples/observe-only.json", "createFineTuningJob", "allow"},
	        {"examples/no-network.json", "CreateContainer", "allow"},
	        {"examples/no-network.json", "createResponse", "deny"},
	        {"examples/allowlist.json", "createResponse", "allow"},
	        {"examples/allowlist.json", "containers.create", "allow"},
	        {"examples/allowlist.json", "files.delete", "deny"},
	        {"examples/allowlist.json", "createImage", "deny"},
	        {"examples/allowlist.json", "beta_createResponse", "deny"},
	};
	static struct errlist errs;
	char path[PATH_MAX_LEN], rel[256];
	struct policyset *ps;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&errs, 0, sizeof(errs));
		snprintf(rel, sizeof(rel), "../../policies/%s", cases[i].file);
		data_path(path, sizeof(path), rel);
		ps = policyset_load(path, &errs);
		cr_assert_not_null(ps, "%s: %s", path, errs.n ? errs.msg[0] : "");
		cr_expect_str_eq(route_name(policy_route(policyset_org(ps),
		                                         policy_route_operation(cases[i].op))),
		                 cases[i].want, "%s: %s", cases[i].file, cases[i].op);
		policyset_free(ps);
	}
}

Test(policy, violation_mode)
{
	json_t *doc = parse("{}");
	struct policy *p = compile(doc, "{}");

	cr_expect_eq(policy_violation_mode(p), POLICY_VIOLATION_BLOCK, "the default is block");
	policy_free(p);
	json_decref(doc);

	doc = parse("{\"on_upstream_violation\": \"log\"}");
	p = compile(doc, "log");
	cr_expect_eq(policy_violation_mode(p), POLICY_VIOLATION_LOG);
	policy_free(p);
	json_decref(doc);

	doc = parse("{\"on_upstream_violation\": \"block\"}");
	p = compile(doc, "block");
	cr_expect_eq(policy_violation_mode(p), POLICY_VIOLATION_BLOCK);
	policy_free(p);
	policy_free(NULL);
	json_decref(doc);
}

Test(policy, memory_rank)
{
	cr_expect_eq(policy_memory_rank("1g"), 0);
	cr_expect_eq(policy_memory_rank("4g"), 1);
	cr_expect_eq(policy_memory_rank("16g"), 2);
	cr_expect_eq(policy_memory_rank("64g"), 3);
	cr_expect_eq(policy_memory_rank("2g"), -1);
	cr_expect_eq(policy_memory_rank("1G"), -1);
	cr_expect_eq(policy_memory_rank("1g "), -1);
	cr_expect_eq(policy_memory_rank(""), -1);
	cr_expect_eq(policy_memory_rank(NULL), -1);
}

/* Messages already in the list are not this policy's problems. */
Test(policy, new_counts_only_its_own_errors)
{
	static struct errlist errs;
	json_t *doc = parse("{\"memory_limit\": {\"max\": \"4g\"}}");
	struct policy *p;

	memset(&errs, 0, sizeof(errs));
	errlist_add(&errs, "other.json", NULL, "an earlier problem");
	p = policy_new(doc, "policy.json", &errs);
	cr_expect_not_null(p);
	cr_expect_eq(errs.n, 1);
	policy_free(p);
	json_decref(doc);
}

/* The default limit of 100 files needs 101 ids, so it is built here. */
Test(policy, file_ids_default_limit)
{
	json_t *pdoc = parse("{}"), *doc, *ids;
	struct policy *p = compile(pdoc, "{}");
	struct policy_result r;
	char id[32];
	int i;

	doc = parse("{\"name\": \"c\"}");
	ids = json_array();
	for (i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "file-%d", i);
		json_array_append_new(ids, json_string(id));
	}
	json_object_set_new(doc, "file_ids", ids);
	cr_expect_eq(policy_apply_create(p, doc, &r), 0, "100 files: %s", r.err.message);
	json_array_append_new(ids, json_string("file-100"));
	cr_expect_eq(policy_apply_create(p, doc, &r), -1, "101 files allowed");
	cr_expect_str_eq(str_or(r.err.code, ""), "too_many_file_ids");
	cr_expect_str_eq(r.err.param, "file_ids");
	cr_expect_not_null(strstr(r.err.message, "101"), "%s", r.err.message);
	json_decref(doc);
	policy_free(p);
	json_decref(pdoc);
}

/* Adds n items to the array at key in obj: fmt (one %d) numbered 0..n-1. */
static void
add_items(json_t *arr, const char *kind, int from, int n)
{
	char text[64];
	int i;

	for (i = from; i < from + n; i++) {
		if (strcmp(kind, "domain") == 0) {
			snprintf(text, sizeof(text), "h%d.example.com", i);
			json_array_append_new(arr, json_string(text));
		} else if (strcmp(kind, "secret") == 0) {
			snprintf(text, sizeof(text), "S%d", i);
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "domain",
			                                     "h0.example.com", "name", text,
			                                     "value", "v"));
		} else {
			snprintf(text, sizeof(text), "skill-%d", i);
			json_array_append_new(arr, json_pack("{s:s, s:s}", "type",
			                                     "skill_reference", "skill_id", text));
		}
	}
}

/* The default list limits (256 domains, 64 secrets, 64 skills) need lists
 * too long for a case file, so they are built here: each at its limit is
 * allowed, one more is refused naming the key that sets it. */
Test(policy, list_default_limits)
{
	static const struct {
		const char *kind, *code, *param, *key;
		int max;
	} lims[] = {
	        {"domain", "too_many_domains", "network_policy.allowed_domains",
	         "network_policy.max_domains", 256},
	        {"secret", "too_many_domain_secrets", "network_policy.domain_secrets",
	         "network_policy.max_domain_secrets", 64},
	        {"skill", "too_many_skills", "skills", "skills.max_count", 64},
	};
	json_t *pdoc = parse("{\"network_policy\": {\"allowed_domains\": [\"*.example.com\"], "
	                     "\"allow_domain_secrets\": true}, \"skills\": "
	                     "{\"allowed_skill_ids\": [\"*\"]}}");
	struct policy *p = compile(pdoc, "defaults");
	struct policy_result r;
	char want[64];
	size_t k;

	for (k = 0; k < sizeof(lims) / sizeof(lims[0]); k++) {
		json_t *doc = parse("{\"name\": \"c\", \"network_policy\": {\"type\": "
		                    "\"allowlist\", \"allowed_domains\": []}}");
		json_t *np = json_object_get(doc, "network_policy"), *list, *copy;

		add_items(json_object_get(np, "allowed_domains"), "domain", 0, 1);
		if (strcmp(lims[k].kind, "skill") == 0)
			json_object_set_new(doc, "skills", list = json_array());
		else if (strcmp(lims[k].kind, "secret") == 0)
			json_object_set_new(np, "domain_secrets", list = json_array());
		else
			list = json_object_get(np, "allowed_domains");
		add_items(list, lims[k].kind, (int)json_array_size(list),
		          lims[k].max - (int)json_array_size(list));
		copy = json_deep_copy(doc);
		cr_expect_eq(policy_apply_create(p, copy, &r), 0, "%d %ss: %s", lims[k].max,
		             lims[k].kind, r.err.message);
		json_decref(copy);
		add_items(list, lims[k].kind, lims[k].max, 1);
		cr_expect_eq(policy_apply_create(p, doc, &r), -1, "%d %ss allowed", lims[k].max + 1,
		             lims[k].kind);
		cr_expect_str_eq(str_or(r.err.code, ""), lims[k].code);
		cr_expect_str_eq(r.err.param, lims[k].param);
		snprintf(want, sizeof(want), "lists %d", lims[k].max + 1);
		cr_expect_not_null(strstr(r.err.message, want), "%s", r.err.message);
		cr_expect_not_null(strstr(r.err.message, lims[k].key), "%s", r.err.message);
		json_decref(doc);
	}
	policy_free(p);
	json_decref(pdoc);
}

/*
 * The same policy applied to copies of the same body gives equal results,
 * whether compiled once or twice, and however often it is applied.
 */
Test(policy, deterministic)
{
	static const char *const bodies[] = {
	        "{\"name\": \"c\", \"network_policy\": {\"type\": \"allowlist\", "
	        "\"allowed_domains\": [\"PyPI.org.\", \"A.Example.org\"], \"domain_secrets\": "
	        "[{\"domain\": \"PYPI.org\", \"name\": \"T\", \"value\": \"s\"}]}, \"skills\": "
	        "[{\"type\": \"skill_reference\", \"skill_id\": \"x\"}], \"memory_limit\": "
	        "\"64g\"}",
	        "{\"name\": \"c\", \"memory_limit\": \"16g\", \"file_ids\": [\"a\", \"b\", \"c\"]}",
	        "{\"name\": \"c\", \"network_policy\": {\"type\": \"allowlist\", "
	        "\"allowed_domains\": [\"evil.com\"]}}",
	        "{\"name\": \"c\"}",
	        NULL,
	};
	json_t *pdoc = parse("{\"memory_limit\": {\"max\": \"16g\", \"on_exceed\": \"clamp\"}, "
	                     "\"network_policy\": {\"allowed_domains\": [\"pypi.org\", "
	                     "\"*.example.org\"], \"allow_domain_secrets\": true, \"default\": "
	                     "{\"type\": \"allowlist\", \"allowed_domains\": [\"pypi.org\"]}}, "
	                     "\"skills\": {\"allowed_skill_ids\": [\"x\"]}, \"file_ids\": "
	                     "{\"max_count\": 2}}");
	struct policy *p1 = compile(pdoc, "once"), *p2 = compile(pdoc, "twice");
	struct policy_result r0, r;
	char *d0, *d;
	size_t b, k;

	for (b = 0; bodies[b]; b++) {
		json_t *body = parse(bodies[b]);
		json_t *first = json_deep_copy(body);
		int rc0 = policy_apply_create(p1, first, &r0);

		d0 = json_dumps(first, JSON_COMPACT | JSON_SORT_KEYS);
		for (k = 0; k < 6; k++) {
			json_t *copy = json_deep_copy(body);
			int rc = policy_apply_create(k % 2 ? p2 : p1, copy, &r);

			d = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
			cr_expect_eq(rc, rc0, "body %zu run %zu", b, k);
			cr_expect_str_eq(d, d0, "body %zu run %zu", b, k);
			cr_expect_str_eq(r.err.message, r0.err.message, "body %zu run %zu", b, k);
			cr_expect_str_eq(r.err.param, r0.err.param, "body %zu run %zu", b, k);
			cr_expect_eq(r.nadjust, r0.nadjust, "body %zu run %zu", b, k);
			cr_expect_eq(memcmp(r.adjust, r0.adjust, sizeof(r.adjust)), 0,
			             "body %zu run %zu: adjustments differ", b, k);
			secmem_json_free(d);
			json_decref(copy);
		}
		secmem_json_free(d0);
		json_decref(first);
		json_decref(body);
	}
	policy_free(p1);
	policy_free(p2);
	json_decref(pdoc);
}

/*
 * A secret placed in domain_secrets never appears in a denial, whichever
 * rule denies the request. Each body below is denied by a different rule
 * while carrying the marker as its secret value.
 */
Test(policy, denials_never_quote_secrets)
{
	static const char marker[] = "MARKER-b3c1e0f1-do-not-log";
	static const char *const bodies[] = {
	        "{\"memory_limit\": \"64g\"}",
	        "{\"expires_after\": {\"anchor\": \"last_active_at\", \"minutes\": 100000}}",
	        "{\"file_ids\": [\"a\", \"b\", \"c\"]}",
	        "{\"skills\": [{\"type\": \"skill_reference\", \"skill_id\": \"nope\"}]}",
	        "{\"skills\": [{\"type\": \"inline\", \"name\": \"s\", \"description\": \"d\", "
	        "\"source\": {\"type\": \"base64\", \"media_type\": \"application/zip\", "
	        "\"data\": \"QUJD\"}}]}",
	        "{\"network_policy\": {\"allowed_domains\": [\"evil.com\"]}}",
	        "{\"network_policy\": {\"allowed_domains\": [\"https://pypi.org\"]}}",
	        "{\"network_policy\": {\"allowed_domains\": [\"*.example.org\"]}}",
	        "{\"network_policy\": {\"domain_secrets\": [{\"domain\": \"evil.com\", \"name\": "
	        "\"T\", \"value\": \"@\"}]}}",
	        "{\"network_policy\": {\"domain_secrets\": [{\"domain\": \"pypi.org:443\", "
	        "\"name\": "
	        "\"T\", \"value\": \"@\"}]}}",
	        "{\"network_policy\": {\"domain_secrets\": [{\"domain\": \"a.example.org\", "
	        "\"name\": "
	        "\"T\", \"value\": \"@\"}]}}",
	        NULL,
	};
	json_t *pdoc = parse("{\"network_policy\": {\"allowed_domains\": [\"pypi.org\", "
	                     "\"*.example.org\"], \"allow_domain_secrets\": true}, \"file_ids\": "
	                     "{\"max_count\": 2}}");
	json_t *nosecrets = parse("{\"network_policy\": {\"allowed_domains\": [\"pypi.org\"]}}");
	struct policy *p = compile(pdoc, "secrets allowed");
	struct policy *q = compile(nosecrets, "secrets not allowed");
	const char *values[1] = {marker};
	struct policy_result r;
	size_t b, i;
	json_t *s;

	for (b = 0; bodies[b]; b++) {
		json_t *patch = parse(bodies[b]);
		json_t *body = parse("{\"name\": \"c\", \"network_policy\": {\"type\": "
		                     "\"allowlist\", \"allowed_domains\": [\"pypi.org\"], "
		                     "\"domain_secrets\": [{\"domain\": \"pypi.org\", \"name\": "
		                     "\"TOKEN\", \"value\": \"@\"}]}}");
		json_t *np = json_object_get(body, "network_policy");
		json_t *copy;
		struct err se;

		json_object_update_recursive(body, patch);
		json_array_foreach(json_object_get(np, "domain_secrets"), i, s)
		        json_object_set_new(s, "value", json_string(marker));
		err_clear(&se);
		cr_assert_eq(schema_check(&schema_create_container_body, body, &se), 0,
		             "body %zu: %s", b, se.message);
		copy = json_deep_copy(body);
		cr_expect_eq(policy_apply_create(p, body, &r), -1, "body %zu allowed", b);
		expect_no_secret(&r, values, 1, bodies[b]);
		cr_expect_eq(policy_apply_create(q, copy, &r), -1, "body %zu allowed", b);
		expect_no_secret(&r, values, 1, bodies[b]);
		json_decref(copy);
		json_decref(body);
		json_decref(patch);
	}
	policy_free(p);
	policy_free(q);
	json_decref(pdoc);
	json_decref(nosecrets);
}

/*
 * policy_new takes a const document. Known bug: compiling an allowlist
 * default normalizes the caller's network_policy.default.allowed_domains in
 * place (the policy keeps a reference to the caller's object and rewrites
 * it). Fails until fixed.
 */
Test(policy, new_leaves_document_unchanged)
{
	json_t *doc = parse("{\"network_policy\": {\"allowed_domains\": [\"PyPI.org\"], "
	                    "\"default\": {\"type\": \"allowlist\", \"allowed_domains\": "
	                    "[\"PYPI.ORG.\"]}}}");
	json_t *before = json_deep_copy(doc);
	struct policy *p = compile(doc, "allowlist default");
	char sa[SHOW_MAX], sb[SHOW_MAX];

	cr_expect(json_equal(doc, before), "policy_new changed its input:\n  was %s\n  now %s",
	          show(before, sa, sizeof(sa)), show(doc, sb, sizeof(sb)));
	policy_free(p);
	json_decref(before);
	json_decref(doc);
}

/*
 * When allocations fail, policy_apply_create may deny the request but must
 * never allow it with a document other than the one it would forward
 * normally: a missing network_policy leaves the container's network to the
 * upstream's default. Known bug: today the defaults are silently dropped,
 * and when adding the network default fails, the copy that jansson already
 * freed is read (a use-after-free). Fails until fixed.
 *
 * Failures are injected sticky (every allocation from the nth on fails):
 * secmem aborts on a lone failure inside jansson, whose 2.14 parser cannot
 * recover from one.
 */
Test(policy, apply_survives_allocation_failure)
{
	json_t *pdoc = parse("{\"memory_limit\": {\"max\": \"4g\", \"default\": \"4g\"}, "
	                     "\"network_policy\": {\"allowed_domains\": [\"pypi.org\"], "
	                     "\"default\": {\"type\": \"allowlist\", \"allowed_domains\": "
	                     "[\"pypi.org\"]}}}");
	json_t *body = parse("{\"name\": \"c\"}");
	json_t *want = json_deep_copy(body);
	struct policy *p = compile(pdoc, "defaults");
	struct policy_result r;
	char sa[SHOW_MAX], sb[SHOW_MAX];
	unsigned long nth;

	cr_assert_eq(policy_apply_create(p, want, &r), 0);
	for (nth = 1; nth <= 64; nth++) {
		json_t *doc = json_deep_copy(body);
		int rc;

		cr_assert_not_null(doc);
		secmem_fail_after(nth, 1);
		rc = policy_apply_create(p, doc, &r);
		secmem_fail_after(0, 0);
		if (rc == 0)
			cr_expect(json_equal(doc, want),
			          "allocation %lu and later failed; request allowed as %s, want %s",
			          nth, show(doc, sa, sizeof(sa)), show(want, sb, sizeof(sb)));
		json_decref(doc);
	}
	json_decref(want);
	json_decref(body);
	policy_free(p);
	json_decref(pdoc);
}

/*
 * When allocations fail (from the nth on), policy_new either refuses with a
 * message or returns a policy that decides exactly like one compiled
 * normally.
 */
Test(policy, new_survives_allocation_failure)
{
	static struct errlist errs;
	static const char *const bodies[] = {
	        "{\"name\": \"c\"}",
	        "{\"name\": \"c\", \"memory_limit\": \"16g\"}",
	        "{\"name\": \"c\", \"network_policy\": {\"type\": \"allowlist\", "
	        "\"allowed_domains\": [\"Files.Example.org\"]}}",
	        "{\"name\": \"c\", \"network_policy\": {\"type\": \"allowlist\", "
	        "\"allowed_domains\": [\"evil.com\"]}}",
	        "{\"name\": \"c\", \"skills\": [{\"type\": \"skill_reference\", \"skill_id\": "
	        "\"s2\"}]}",
	        NULL,
	};
	json_t *pdoc = parse("{\"memory_limit\": {\"max\": \"4g\"}, \"network_policy\": "
	                     "{\"allowed_domains\": [\"pypi.org\", \"*.example.org\"], "
	                     "\"default\": {\"type\": \"allowlist\", \"allowed_domains\": "
	                     "[\"pypi.org\"]}}, \"skills\": {\"allowed_skill_ids\": [\"s1\"]}}");
	struct policy *ref = compile(pdoc, "reference");
	struct policy_result r0, r;
	unsigned long nth;
	size_t b;

	for (nth = 1; nth <= 64; nth++) {
		json_t *copy = json_deep_copy(pdoc);
		struct policy *p;

		cr_assert_not_null(copy);
		memset(&errs, 0, sizeof(errs));
		secmem_fail_after(nth, 1);
		p = policy_new(copy, "policy.json", &errs);
		secmem_fail_after(0, 0);
		if (p == NULL) {
			cr_expect_gt(errs.n, 0, "allocation %lu: NULL without a message", nth);
		} else {
			for (b = 0; bodies[b]; b++) {
				json_t *a = parse(bodies[b]), *c = json_deep_copy(a);
				int rc0 = policy_apply_create(ref, a, &r0);
				int rc = policy_apply_create(p, c, &r);

				cr_expect_eq(rc, rc0, "allocation %lu, body %zu", nth, b);
				cr_expect(json_equal(a, c), "allocation %lu, body %zu", nth, b);
				json_decref(a);
				json_decref(c);
			}
		}
		policy_free(p);
		json_decref(copy);
	}
	policy_free(ref);
	json_decref(pdoc);
}
