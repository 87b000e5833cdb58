/*
 * Tests for gateway/policy/tools.c, driven by $GW_DATA/policy/tools/
 * (GW_DATA defaults to "tests/data").
 *
 *   <topic>.json   {"policy": P, "cases": [C, ...]}; each case is
 *                  {"name", "policy"? (overrides P), "request", "expect"}, the
 *                  request a Responses body, and expect is one of
 *                    {"allow": true, "forwarded": F, "adjust": [s, ...],
 *                     "containers"?: [{"kind": "made" | "used", "param",
 *                                      "container_id"?}, ...],
 *                     "local"?: n, "unset"?: n, "shadow"?: {"code", "param"}}
 *                      the body becomes exactly F (json_equal), adjustment i
 *                      contains s[i], no more, no fewer; the containers made
 *                      and used are exactly those listed, in order (none when
 *                      absent); so are the local and unset shell tools (0
 *                      when absent) and the first shadow denial (none when
 *                      absent);
 *                    {"allow": false, "status", "code", "param",
 *                     "message"?: [s, ...]}
 *                      refused with that status, code and param (400 with
 *                      type invalid_request_error, 403 policy_violation), the
 *                      message containing every s.
 *
 * Every case also checks what must hold for any input: two copies give
 * identical results; no domain secret value appears in a message, param or
 * adjustment; a message names its param; and an allowed body is a fixed
 * point (deciding it again allows it unchanged with nothing to adjust),
 * with every tool other than code_interpreter and shell, and every member
 * of the body other than tools and input, exactly as the client sent it.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/secmem.h"
#include "policy/policy.h"
#include "policy/policyset.h"
#include "policy/tenant.h"
#include "policy/tools.h"

#define PATH_MAX_LEN 1024
#define SHOW_MAX     4096
#define SECRETS_MAX  32

/* The case files, in the order they run; files_listed checks that this
 * list and the folder agree, so a new file cannot be skipped. */
static const char *const case_files[] = {
        "files.json",  "malformed.json", "memory.json", "network.json", "secrets.json",
        "shadow.json", "skills.json",    "which.json",  NULL,
};

static void
suite_init(void)
{
	secmem_init();
	setenv("GW_TEST_BROKER", "broker-value", 1);
}

TestSuite(tools, .init = suite_init);

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

static struct policy *
compile(const json_t *doc, const char *ctx)
{
	static struct errlist errs;
	struct policy *p;

	memset(&errs, 0, sizeof(errs));
	p = policy_new(doc, "policy.json", &errs);
	cr_assert_not_null(p, "%s: policy does not compile: %s", ctx, errs.n ? errs.msg[0] : "");
	cr_assert_eq(errs.n, 0, "%s: policy compiled with messages: %s", ctx, errs.msg[0]);
	return p;
}

/* The string values under every "value" key within domain_secrets lists,
 * anywhere in v (borrowed). */
static size_t
secret_values(json_t *v, int in_secrets, const char **out, size_t n)
{
	const char *key;
	json_t *child;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach(v, key, child)
		{
			if (in_secrets && strcmp(key, "value") == 0 && json_is_string(child)) {
				if (n < SECRETS_MAX && json_string_length(child) > 0)
					out[n++] = json_string_value(child);
			} else {
				n = secret_values(child, strcmp(key, "domain_secrets") == 0, out,
				                  n);
			}
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child) n = secret_values(child, in_secrets, out, n);
	}
	return n;
}

static void
expect_no_secret(const struct policy_result *r, const char **secrets, size_t nsecrets,
                 const char *ctx)
{
	size_t i, j;

	for (i = 0; i < nsecrets; i++) {
		cr_expect_null(strstr(r->err.message, secrets[i]),
		               "%s: message quotes a secret: %s", ctx, r->err.message);
		cr_expect_null(strstr(r->err.param, secrets[i]), "%s: param quotes a secret", ctx);
		cr_expect_null(strstr(r->shadow.message, secrets[i]),
		               "%s: shadow message quotes a secret", ctx);
		for (j = 0; j < r->nadjust; j++)
			cr_expect_null(strstr(r->adjust[j], secrets[i]),
			               "%s: adjustment quotes a secret: %s", ctx, r->adjust[j]);
	}
}

static void
expect_same_result(int rca, const json_t *a, const struct tools_result *ra, int rcb,
                   const json_t *b, const struct tools_result *rb, const char *ctx)
{
	const struct policy_result *pa = &ra->decision, *pb = &rb->decision;
	char sa[SHOW_MAX], sb[SHOW_MAX];
	size_t i;

	cr_expect_eq(rca, rcb, "%s: not deterministic: %d then %d", ctx, rca, rcb);
	cr_expect(json_equal(a, b), "%s: not deterministic:\n  %s\n  %s", ctx,
	          show(a, sa, sizeof(sa)), show(b, sb, sizeof(sb)));
	cr_expect_eq(pa->err.status, pb->err.status, "%s: status differs", ctx);
	cr_expect_str_eq(pa->err.param, pb->err.param, "%s", ctx);
	cr_expect_str_eq(pa->err.message, pb->err.message, "%s", ctx);
	cr_expect_eq(pa->nadjust, pb->nadjust, "%s: adjustments differ", ctx);
	for (i = 0; i < pa->nadjust && i < pb->nadjust; i++)
		cr_expect_str_eq(pa->adjust[i], pb->adjust[i], "%s", ctx);
	cr_expect_eq(ra->n, rb->n, "%s: containers differ", ctx);
}

/* Whether a tool is one tools.c judges. */
static int
judged(const json_t *tool)
{
	const char *type = json_string_value(json_object_get(tool, "type"));

	return type && (strcmp(type, "code_interpreter") == 0 || strcmp(type, "shell") == 0);
}

/* Every tool the gateway does not judge is forwarded as it came, at its
 * place. */
static void
expect_list_untouched(const json_t *sent, const json_t *got, const char *at, const char *ctx)
{
	json_t *tool;
	size_t j;

	cr_expect_eq(json_array_size(sent), json_array_size(got), "%s: %s changed length", ctx, at);
	json_array_foreach(sent, j, tool)
	{
		if (!judged(tool))
			cr_expect(json_equal(tool, json_array_get(got, j)),
			          "%s: %s[%zu], not the gateway's to judge, was changed", ctx, at,
			          j);
	}
}

static void
expect_rest_untouched(json_t *sent, const json_t *got, const char *ctx)
{
	const char *key;
	json_t *v, *item;
	size_t i;

	json_object_foreach(sent, key, v)
	{
		if (strcmp(key, "tools") != 0 && strcmp(key, "input") != 0)
			cr_expect(json_equal(v, json_object_get(got, key)), "%s: %s was changed",
			          ctx, key);
	}
	cr_expect_eq(json_object_size(sent), json_object_size(got), "%s: members added", ctx);
	expect_list_untouched(json_object_get(sent, "tools"), json_object_get(got, "tools"),
	                      "tools", ctx);
	if (!json_is_array(json_object_get(sent, "input"))) {
		/* json_equal holds nothing equal to NULL. */
		cr_expect(json_object_get(sent, "input") == NULL ||
		                  json_equal(json_object_get(sent, "input"),
		                             json_object_get(got, "input")),
		          "%s: input was changed", ctx);
		return;
	}
	json_array_foreach(json_object_get(sent, "input"), i, item)
	{
		json_t *out = json_array_get(json_object_get(got, "input"), i);
		const char *k;
		json_t *m;

		json_object_foreach(item, k, m)
		{
			if (strcmp(k, "tools") != 0)
				cr_expect(json_equal(m, json_object_get(out, k)),
				          "%s: input[%zu].%s was changed", ctx, i, k);
		}
		expect_list_untouched(json_object_get(item, "tools"), json_object_get(out, "tools"),
		                      "input[].tools", ctx);
	}
}

static void
expect_containers(const json_t *expect, const struct tools_result *r, const char *ctx)
{
	json_t *want = json_object_get(expect, "containers"), *c;
	char param[ERR_PARAM_MAX];
	size_t i;

	cr_expect_eq(r->n, json_array_size(want), "%s: %zu containers, want %zu", ctx, r->n,
	             json_array_size(want));
	json_array_foreach(want, i, c)
	{
		const char *kind = json_string_value(json_object_get(c, "kind"));
		const char *id = json_string_value(json_object_get(c, "container_id"));

		if (i >= r->n)
			break;
		cr_assert(kind, "%s: a container needs a kind", ctx);
		cr_expect_eq(r->containers[i].kind,
		             strcmp(kind, "made") == 0 ? TOOLS_MADE : TOOLS_USED,
		             "%s: container %zu is not %s", ctx, i, kind);
		cr_expect_str_eq(tools_param(&r->containers[i], param, sizeof(param)),
		                 str_or(json_string_value(json_object_get(c, "param")), "?"),
		                 "%s: container %zu", ctx, i);
		if (r->containers[i].kind == TOOLS_USED)
			cr_expect_str_eq(str_or(r->containers[i].container_id, "(null)"),
			                 str_or(id, "?"), "%s: container %zu's id", ctx, i);
		else
			cr_expect(json_is_object(r->containers[i].config),
			          "%s: container %zu has no config", ctx, i);
	}
	cr_expect_eq(r->local, (size_t)json_integer_value(json_object_get(expect, "local")),
	             "%s: %zu local environments", ctx, r->local);
	cr_expect_eq(r->unset, (size_t)json_integer_value(json_object_get(expect, "unset")),
	             "%s: %zu shell tools without an environment", ctx, r->unset);
}

static void
expect_allowed(const struct policy *p, json_t *request, const json_t *expect, int rc, json_t *got,
               const struct tools_result *r, const char *ctx)
{
	json_t *forwarded = json_object_get(expect, "forwarded");
	json_t *adjust = json_object_get(expect, "adjust"), *s;
	json_t *shadow = json_object_get(expect, "shadow");
	const struct policy_result *d = &r->decision;
	char sa[SHOW_MAX], sb[SHOW_MAX];
	struct tools_result again_r;
	json_t *again;
	size_t i;

	cr_assert(json_is_object(forwarded) && json_is_array(adjust),
	          "%s: an allowed case needs \"forwarded\" and \"adjust\"", ctx);
	cr_assert_eq(rc, 0, "%s: refused (%s, %s): %s", ctx, str_or(d->err.code, "?"), d->err.param,
	             d->err.message);
	cr_expect(json_equal(got, forwarded),
	          "%s: forwarded document differs:\n  got  %s\n  want %s", ctx,
	          show(got, sa, sizeof(sa)), show(forwarded, sb, sizeof(sb)));
	cr_expect_null(d->err.code, "%s: allowed but err.code is set", ctx);
	cr_expect_eq(d->nadjust, json_array_size(adjust), "%s: %zu adjustments, want %zu%s%s", ctx,
	             d->nadjust, json_array_size(adjust), d->nadjust ? "; first: " : "",
	             d->nadjust ? d->adjust[0] : "");
	json_array_foreach(adjust, i, s)
	{
		if (i >= d->nadjust)
			break;
		cr_expect_not_null(strstr(d->adjust[i], json_string_value(s)),
		                   "%s: adjustment %zu is \"%s\", want it to contain \"%s\"", ctx,
		                   i, d->adjust[i], json_string_value(s));
	}
	if (shadow) {
		cr_expect_gt(d->nshadow, 0, "%s: no shadow denial", ctx);
		cr_expect_str_eq(str_or(d->shadow.code, "(null)"),
		                 str_or(json_string_value(json_object_get(shadow, "code")), "?"),
		                 "%s: shadow code", ctx);
		cr_expect_str_eq(d->shadow.param,
		                 str_or(json_string_value(json_object_get(shadow, "param")), "?"),
		                 "%s: shadow param", ctx);
		cr_expect_not_null(strstr(d->shadow.message, d->shadow.param),
		                   "%s: shadow message does not name its param: %s", ctx,
		                   d->shadow.message);
	} else {
		cr_expect_eq(d->nshadow, 0, "%s: a shadow denial: %s", ctx, d->shadow.message);
	}
	expect_containers(expect, r, ctx);
	expect_rest_untouched(request, got, ctx);

	/* Nothing more to change in what is forwarded. */
	again = json_deep_copy(got);
	cr_assert_not_null(again);
	cr_expect_eq(tools_apply(p, again, &again_r), 0,
	             "%s: the forwarded body is refused when decided again: %s", ctx,
	             again_r.decision.err.message);
	cr_expect(json_equal(again, got), "%s: deciding again changed the body", ctx);
	cr_expect_eq(again_r.decision.nadjust, 0, "%s: deciding again adjusts: %s", ctx,
	             again_r.decision.nadjust ? again_r.decision.adjust[0] : "");
	tools_result_release(&again_r);
	json_decref(again);
}

static void
expect_refused(const json_t *expect, int rc, const struct tools_result *r, const char *ctx)
{
	json_t *status = json_object_get(expect, "status"), *message, *s;
	const char *code = json_string_value(json_object_get(expect, "code"));
	const char *param = json_string_value(json_object_get(expect, "param"));
	const struct err *e = &r->decision.err;
	size_t i;

	cr_assert(json_is_integer(status) && code && param,
	          "%s: a refused case needs \"status\", \"code\" and \"param\"", ctx);
	cr_assert_eq(rc, -1, "%s: allowed, want %s", ctx, code);
	cr_expect_eq(e->status, json_integer_value(status), "%s: status %d (%s)", ctx, e->status,
	             e->message);
	cr_expect_str_eq(str_or(e->type, "(null)"), e->status == 400 ? ERR_INVALID : ERR_POLICY,
	                 "%s: type", ctx);
	cr_expect_str_eq(str_or(e->code, "(null)"), code, "%s: code (message: %s)", ctx,
	                 e->message);
	cr_expect_str_eq(e->param, param, "%s: param (message: %s)", ctx, e->message);
	/* An unknown field is named as the schema walker names it: the key,
	 * quoted, "in" the path of its object. */
	if (strcmp(code, "unknown_parameter") != 0)
		cr_expect_not_null(strstr(e->message, param), "%s: message does not name %s: %s",
		                   ctx, param, e->message);
	message = json_object_get(expect, "message");
	json_array_foreach(message, i, s)
	{
		cr_expect_not_null(strstr(e->message, json_string_value(s)),
		                   "%s: message does not contain \"%s\": %s", ctx,
		                   json_string_value(s), e->message);
	}
}

static void
run_case(const struct policy *p, const json_t *c, const char *ctx)
{
	json_t *request = json_object_get(c, "request");
	json_t *expect = json_object_get(c, "expect");
	const char *secrets[SECRETS_MAX];
	struct tools_result ra, rb;
	json_t *a, *b;
	int rca, rcb;

	cr_assert(json_is_object(request) && json_is_object(expect),
	          "%s: a case needs \"request\" and \"expect\"", ctx);
	a = json_deep_copy(request);
	b = json_deep_copy(request);
	cr_assert(a && b);
	rca = tools_apply(p, a, &ra);
	rcb = tools_apply(p, b, &rb);
	expect_same_result(rca, a, &ra, rcb, b, &rb, ctx);
	expect_no_secret(&ra.decision, secrets, secret_values(request, 0, secrets, 0), ctx);

	if (json_is_true(json_object_get(expect, "allow")))
		expect_allowed(p, request, expect, rca, a, &ra, ctx);
	else if (json_is_false(json_object_get(expect, "allow")))
		expect_refused(expect, rca, &ra, ctx);
	else
		cr_assert_fail("%s: expect.allow must be true or false", ctx);
	tools_result_release(&ra);
	tools_result_release(&rb);
	json_decref(a);
	json_decref(b);
}

/* Runs every case of policy/tools/<file>; returns how many. */
static size_t
run_file(const char *file)
{
	char rel[256], ctx[2 * PATH_MAX_LEN];
	json_t *doc, *cases, *c, *pdoc;
	struct policy *p;
	size_t i, allowed = 0;

	snprintf(rel, sizeof(rel), "policy/tools/%s", file);
	doc = load_data(rel);
	cases = json_object_get(doc, "cases");
	cr_assert(json_array_size(cases) > 0, "%s: no cases", rel);
	json_array_foreach(cases, i, c)
	{
		snprintf(ctx, sizeof(ctx), "%s case %zu \"%s\"", rel, i,
		         str_or(json_string_value(json_object_get(c, "name")), "?"));
		pdoc = json_object_get(c, "policy");
		if (pdoc == NULL)
			pdoc = json_object_get(doc, "policy");
		cr_assert_not_null(pdoc, "%s: no policy for this case", ctx);
		p = compile(pdoc, ctx);
		run_case(p, c, ctx);
		policy_free(p);
		allowed += json_is_true(json_object_get(json_object_get(c, "expect"), "allow"));
	}
	i = json_array_size(cases);
	cr_expect(allowed > 0 && allowed < i, "%s: cases should both allow and refuse", rel);
	json_decref(doc);
	return i;
}

Test(tools, files)
{
	run_file("files.json");
}

Test(tools, malformed)
{
	cr_expect_geq(run_file("malformed.json"), 20);
}

Test(tools, memory)
{
	run_file("memory.json");
}

Test(tools, network)
{
	run_file("network.json");
}

Test(tools, secrets)
{
	run_file("secrets.json");
}

Test(tools, shadow)
{
	run_file("shadow.json");
}

Test(tools, skills)
{
	run_file("skills.json");
}

Test(tools, which)
{
	run_file("which.json");
}

static int
is_json_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

Test(tools, files_listed)
{
	char path[PATH_MAX_LEN];
	struct dirent **names;
	int n, i;

	data_path(path, sizeof(path), "policy/tools");
	n = scandir(path, &names, is_json_name, alphasort);
	cr_assert_geq(n, 0, "cannot read %s", path);
	for (i = 0; i < n; i++) {
		cr_expect(case_files[i] && strcmp(case_files[i], names[i]->d_name) == 0,
		          "%s/%s is not run (or case_files is out of order)", path,
		          names[i]->d_name);
		free(names[i]);
	}
	free(names);
	cr_expect_null(case_files[n], "case_files lists %s, which is not in %s", case_files[n],
	               path);
}

/* --- Built in code: lists too long for a case file ------------------------ */

/* A body with one shell tool at tools[1] whose environment holds n
 * file_ids ("file-<i>") or, with skills, n references to "s<i>". */
static json_t *
shell_with_list(int skills, int n)
{
	json_t *body = parse("{\"model\": \"m\", \"tools\": [{\"type\": \"function\", \"name\": "
	                     "\"f\"}, {\"type\": \"shell\", \"environment\": {\"type\": "
	                     "\"container_auto\"}}]}");
	json_t *env =
	        json_object_get(json_array_get(json_object_get(body, "tools"), 1), "environment");
	json_t *list = json_array();
	char text[64];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "%s%d", skills ? "s" : "file-", i);
		json_array_append_new(list, skills ? json_pack("{s:s, s:s}", "type",
		                                               "skill_reference", "skill_id", text)
		                                   : json_string(text));
	}
	json_object_set_new(env, skills ? "skills" : "file_ids", list);
	return body;
}

/* The spec's maxItems are the contract's: 50 file_ids and 200 skills are
 * taken as far as the contract goes, one more is a 400 naming the list,
 * whatever the policy allows. */
Test(tools, contract_max_items)
{
	json_t *pdoc = parse("{\"skills\": {\"allowed_skill_ids\": [\"*\"], \"max_count\": 1000},"
	                     " \"file_ids\": {\"max_count\": 1000}}");
	struct policy *p = compile(pdoc, "high limits");
	struct tools_result r;
	json_t *body;

	body = shell_with_list(0, 50);
	cr_expect_eq(tools_apply(p, body, &r), 0, "50 file_ids: %s", r.decision.err.message);
	tools_result_release(&r);
	json_decref(body);
	body = shell_with_list(0, 51);
	cr_expect_eq(tools_apply(p, body, &r), -1, "51 file_ids allowed");
	cr_expect_eq(r.decision.err.status, 400);
	cr_expect_str_eq(str_or(r.decision.err.code, ""), "array_too_long");
	cr_expect_str_eq(r.decision.err.param, "tools[1].environment.file_ids");
	cr_expect_not_null(strstr(r.decision.err.message, "at most 50"), "%s",
	                   r.decision.err.message);
	tools_result_release(&r);
	json_decref(body);

	body = shell_with_list(1, 200);
	cr_expect_eq(tools_apply(p, body, &r), 0, "200 skills: %s", r.decision.err.message);
	tools_result_release(&r);
	json_decref(body);
	body = shell_with_list(1, 201);
	cr_expect_eq(tools_apply(p, body, &r), -1, "201 skills allowed");
	cr_expect_str_eq(str_or(r.decision.err.code, ""), "array_too_long");
	cr_expect_str_eq(r.decision.err.param, "tools[1].environment.skills");
	tools_result_release(&r);
	json_decref(body);
	policy_free(p);
	json_decref(pdoc);
}

/* The policy's own list limits hold per container, at its path: the
 * default 64 skills, and max_domains. */
Test(tools, policy_list_limits)
{
	json_t *pdoc = parse("{\"skills\": {\"allowed_skill_ids\": [\"*\"]}, \"network_policy\": "
	                     "{\"allowed_domains\": [\"*.example.com\"], \"max_domains\": 3}}");
	struct policy *p = compile(pdoc, "limits");
	struct tools_result r;
	json_t *body;

	body = shell_with_list(1, 64);
	cr_expect_eq(tools_apply(p, body, &r), 0, "64 skills: %s", r.decision.err.message);
	tools_result_release(&r);
	json_decref(body);
	body = shell_with_list(1, 65);
	cr_expect_eq(tools_apply(p, body, &r), -1, "65 skills allowed");
	cr_expect_eq(r.decision.err.status, 403);
	cr_expect_str_eq(str_or(r.decision.err.code, ""), "too_many_skills");
	cr_expect_str_eq(r.decision.err.param, "tools[1].environment.skills");
	cr_expect_not_null(strstr(r.decision.err.message, "skills.max_count"), "%s",
	                   r.decision.err.message);
	tools_result_release(&r);
	json_decref(body);
	policy_free(p);
	json_decref(pdoc);
}

/* Many tools change more than POLICY_MAX_ADJUST things: the first are
 * kept, the rest counted. */
Test(tools, adjustments_past_the_limit_are_counted)
{
	json_t *pdoc = parse("{\"responses\": {\"max_tool_containers\": 20}}");
	struct policy *p = compile(pdoc, "{}");
	json_t *body = parse("{\"tools\": []}"), *tools = json_object_get(body, "tools");
	struct tools_result r;
	int i;

	for (i = 0; i < 20; i++)
		json_array_append_new(tools,
		                      parse("{\"type\": \"code_interpreter\", \"container\": "
		                            "{\"type\": \"auto\"}}"));
	cr_assert_eq(tools_apply(p, body, &r), 0, "%s", r.decision.err.message);
	cr_expect_eq(r.n, 20);
	cr_expect_eq(r.decision.nadjust, POLICY_MAX_ADJUST);
	cr_expect_eq(r.decision.nadjust + r.decision.nadjust_dropped, 40);
	cr_expect_str_eq(r.decision.adjust[0],
	                 "tools[0].container.memory_limit set to this organization's default "
	                 "\"1g\"");
	tools_result_release(&r);
	json_decref(body);
	policy_free(p);
	json_decref(pdoc);
}

/* A container made with the client's own domain_secrets is named, for a
 * tenant whose secrets only the gateway supplies; one without is not. */
Test(tools, client_secrets_are_found)
{
	json_t *pdoc = parse("{\"network_policy\": {\"allowed_domains\": [\"pypi.org\"], "
	                     "\"allow_domain_secrets\": true}}");
	struct policy *p = compile(pdoc, "secrets");
	json_t *body =
	        parse("{\"tools\": [{\"type\": \"code_interpreter\", \"container\": \"cntr_1\"}, "
	              "{\"type\": \"code_interpreter\", \"container\": {\"type\": \"auto\", "
	              "\"network_policy\": {\"type\": \"allowlist\", \"allowed_domains\": "
	              "[\"pypi.org\"]}}}, {\"type\": \"shell\", \"environment\": {\"type\": "
	              "\"container_auto\", \"network_policy\": {\"type\": \"allowlist\", "
	              "\"allowed_domains\": [\"pypi.org\"], \"domain_secrets\": [{\"domain\": "
	              "\"pypi.org\", \"name\": \"T\", \"value\": \"v\"}]}}}]}");
	struct tools_result r;
	char param[ERR_PARAM_MAX] = "";

	cr_assert_eq(tools_apply(p, body, &r), 0, "%s", r.decision.err.message);
	cr_expect_eq(tools_client_secrets(&r, param, sizeof(param)), 1);
	cr_expect_str_eq(param, "tools[2].environment.network_policy.domain_secrets");
	tools_result_release(&r);
	json_object_del(
	        json_object_get(json_array_get(json_object_get(body, "tools"), 2), "environment"),
	        "network_policy");
	cr_assert_eq(tools_apply(p, body, &r), 0, "%s", r.decision.err.message);
	cr_expect_eq(tools_client_secrets(&r, param, sizeof(param)), 0);
	tools_result_release(&r);
	json_decref(body);
	policy_free(p);
	json_decref(pdoc);
}

/* A tenant's brokered secrets reach the containers a Responses request
 * makes, both kinds, through the same tenant_inject_secrets as a create:
 * only where the decided allowlist reaches their domain. */
Test(tools, brokered_secrets_reach_tool_containers)
{
	static struct errlist errs;
	json_t *pdoc = parse(
	        "{\"network_policy\": {\"allowed_domains\": [\"*.example.com\", \"pypi.org\"], "
	        "\"allow_domain_secrets\": true}, \"tenants\": {\"t\": {\"secrets\": "
	        "[{\"domain\": \"api.example.com\", \"name\": \"TOKEN\", \"value_env\": "
	        "\"GW_TEST_BROKER\"}]}}}");
	json_t *body = parse(
	        "{\"tools\": [{\"type\": \"code_interpreter\", \"container\": {\"type\": \"auto\", "
	        "\"network_policy\": {\"type\": \"allowlist\", \"allowed_domains\": "
	        "[\"API.example.com\"]}}}, {\"type\": \"shell\", \"environment\": {\"type\": "
	        "\"container_auto\", \"network_policy\": {\"type\": \"allowlist\", "
	        "\"allowed_domains\": [\"api.example.com\"], \"domain_secrets\": [{\"domain\": "
	        "\"api.example.com\", \"name\": \"TOKEN\", \"value\": \"client\"}]}}}, "
	        "{\"type\": \"shell\", \"environment\": {\"type\": \"container_auto\", "
	        "\"network_policy\": {\"type\": \"allowlist\", \"allowed_domains\": "
	        "[\"pypi.org\"]}}}, {\"type\": \"code_interpreter\", \"container\": "
	        "\"cntr_1\"}]}");
	json_t *want = parse("[{\"domain\": \"api.example.com\", \"name\": \"TOKEN\", "
	                     "\"value\": \"broker-value\"}]");
	struct policyset *ps;
	const struct tenant *t;
	struct tools_result r;
	json_t *names = json_array();
	size_t i;
	int added = 0, n;

	memset(&errs, 0, sizeof(errs));
	ps = policyset_new(pdoc, "policy.json", &errs);
	cr_assert_not_null(ps, "%s", errs.n ? errs.msg[0] : "");
	t = tenants_by_name(policyset_tenants(ps), "t");
	cr_assert_not_null(t);
	cr_assert_eq(tools_apply(tenant_policy(t), body, &r), 0, "%s", r.decision.err.message);
	cr_assert_eq(r.n, 4);
	for (i = 0; i < r.n; i++) {
		if (r.containers[i].kind != TOOLS_MADE)
			continue;
		n = tenant_inject_secrets(t, r.containers[i].config, names);
		cr_assert_geq(n, 0);
		added += n;
	}
	cr_expect_eq(added, 2);
	cr_expect_eq(json_array_size(names), 2);
	for (i = 0; i < 2; i++)
		cr_expect(json_equal(json_object_get(json_object_get(r.containers[i].config,
		                                                     "network_policy"),
		                                     "domain_secrets"),
		                     want),
		          "container %zu does not carry the broker's secret alone", i);
	cr_expect_null(json_object_get(json_object_get(r.containers[2].config, "network_policy"),
	                               "domain_secrets"),
	               "a secret was added where the allowlist does not reach");
	tools_result_release(&r);
	policyset_free(ps);
	json_decref(names);
	json_decref(want);
	json_decref(body);
	json_decref(pdoc);
}

/*
 * When allocations fail (from the nth on), tools_apply refuses with 503 or
 * allows exactly the body it allows normally.
 */
Test(tools, survives_allocation_failure)
{
	json_t *pdoc = parse("{\"memory_limit\": {\"max\": \"4g\", \"default\": \"4g\"}, "
	                     "\"network_policy\": {\"allowed_domains\": [\"pypi.org\"], "
	                     "\"allow_domain_secrets\": true, \"default\": {\"type\": "
	                     "\"allowlist\", \"allowed_domains\": [\"pypi.org\"]}}}");
	json_t *body = parse(
	        "{\"model\": \"m\", \"tools\": [{\"type\": \"code_interpreter\", \"container\": "
	        "{\"type\": \"auto\"}}, {\"type\": \"shell\", \"environment\": {\"type\": "
	        "\"container_auto\", \"memory_limit\": null, \"network_policy\": {\"type\": "
	        "\"allowlist\", \"allowed_domains\": [\"PyPI.org\"], \"domain_secrets\": "
	        "[{\"domain\": \"PYPI.ORG\", \"name\": \"T\", \"value\": \"v\"}]}}}, {\"type\": "
	        "\"code_interpreter\", \"container\": \"cntr_1\"}]}");
	json_t *want = json_deep_copy(body);
	struct policy *p = compile(pdoc, "defaults");
	struct tools_result r;
	char sa[SHOW_MAX], sb[SHOW_MAX];
	unsigned long nth;

	cr_assert_eq(tools_apply(p, want, &r), 0, "%s", r.decision.err.message);
	tools_result_release(&r);
	for (nth = 1; nth <= 64; nth++) {
		json_t *doc = json_deep_copy(body);
		int rc;

		cr_assert_not_null(doc);
		secmem_fail_after(nth, 1);
		rc = tools_apply(p, doc, &r);
		secmem_fail_after(0, 0);
		if (rc == 0)
			cr_expect(json_equal(doc, want),
			          "allocation %lu and later failed; allowed as %s, want %s", nth,
			          show(doc, sa, sizeof(sa)), show(want, sb, sizeof(sb)));
		else
			cr_expect_eq(r.decision.err.status, 503, "allocation %lu: %d %s", nth,
			             r.decision.err.status, r.decision.err.message);
		tools_result_release(&r);
		json_decref(doc);
	}
	json_decref(want);
	json_decref(body);
	policy_free(p);
	json_decref(pdoc);
}

/* More containers than responses.max_tool_containers: refused before any
 * is decided, naming the limit; at the limit, decided. */
Test(tools, the_count_of_containers_is_bounded)
{
	json_t *pdoc = parse("{\"responses\": {\"max_tool_containers\": 3}}");
	struct policy *p = compile(pdoc, "{}");
	json_t *body = parse("{\"tools\": []}"), *tools = json_object_get(body, "tools");
	struct tools_result r;
	int i;

	for (i = 0; i < 3; i++)
		json_array_append_new(tools,
		                      parse("{\"type\": \"code_interpreter\", \"container\": "
		                            "{\"type\": \"auto\"}}"));
	cr_expect_eq(tools_apply(p, body, &r), 0, "%s", r.decision.err.message);
	tools_result_release(&r);
	json_array_append_new(tools, parse("{\"type\": \"code_interpreter\", \"container\": "
	                                   "\"cntr_abc\"}"));
	cr_assert_eq(tools_apply(p, body, &r), -1);
	cr_expect_eq(r.decision.err.status, 403);
	cr_expect_str_eq(r.decision.err.code, "too_many_tool_containers");
	cr_expect_str_eq(r.decision.err.param, "tools");
	cr_expect_not_null(strstr(r.decision.err.message, "at most 3"));
	cr_expect_eq(r.decision.nadjust, 0, "refused before any was decided");
	tools_result_release(&r);
	json_decref(body);
	policy_free(p);
	json_decref(pdoc);
}
