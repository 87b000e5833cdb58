/*
 * Tests for gateway/policy/operations.c: the table generated from the spec
 * and the matcher, driven by $GW_DATA/operations/match.txt (GW_DATA
 * defaults to "tests/data"; its header says how a line reads).
 *
 * Beyond the cases in that file, every operation of the table must be
 * found from its own template with sample parameter values, and the table
 * must be sorted and indexed as operations.h promises.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/operations.h"
#include "policy/policy.h"

#define PATH_MAX_LEN 1024
#define LINE_MAX_LEN 1024

struct split {
	size_t n;
	const char *s[16];
	size_t len[16];
	char buf[PATH_MAX_LEN];
};

/* Splits path ("/a/b") on '/' into sp, as front.c's split does for a path
 * it accepts. */
static void
split_path(const char *path, struct split *sp)
{
	char *p, *slash;

	cr_assert_lt(strlen(path), sizeof(sp->buf));
	strcpy(sp->buf, path);
	sp->n = 0;
	cr_assert_eq(sp->buf[0], '/', "%s", path);
	for (p = sp->buf + 1; sp->n < 16; p = slash + 1) {
		slash = strchr(p, '/');
		sp->s[sp->n] = p;
		sp->len[sp->n++] = slash ? (size_t)(slash - p) : strlen(p);
		if (slash == NULL)
			break;
	}
}

static enum operations_found
match(const char *method, const char *path, struct operations_match *m)
{
	static struct split sp;

	split_path(path, &sp);
	return operations_match(method, sp.s, sp.len, sp.n, m);
}

static FILE *
open_data(const char *rel)
{
	const char *dir = getenv("GW_DATA");
	char path[PATH_MAX_LEN];
	FILE *f;

	if (dir == NULL || dir[0] == '\0')
		dir = "tests/data";
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "r");
	cr_assert_not_null(f, "cannot open %s (set GW_DATA)", path);
	return f;
}

/* Checks one "name=value name=value" list against m's parameters. */
static void
expect_params(const struct operations_match *m, char *want, const char *ctx)
{
	size_t i = 0;
	char *tok, *save = NULL;

	for (tok = strtok_r(want, " ", &save); tok; tok = strtok_r(NULL, " ", &save), i++) {
		char *eq = strchr(tok, '=');

		cr_assert_not_null(eq, "%s: bad parameter %s in the data", ctx, tok);
		*eq = '\0';
		cr_assert_lt(i, m->nparams, "%s: %zu parameters, want more", ctx, m->nparams);
		cr_expect_str_eq(m->params[i].name, tok, "%s: parameter %zu", ctx, i);
		cr_expect(m->params[i].len == strlen(eq + 1) &&
		                  memcmp(m->params[i].value, eq + 1, m->params[i].len) == 0,
		          "%s: %s is \"%.*s\", want \"%s\"", ctx, tok, (int)m->params[i].len,
		          m->params[i].value, eq + 1);
	}
	cr_expect_eq(m->nparams, i, "%s: %zu parameters, want %zu", ctx, m->nparams, i);
}

Test(operations, match_cases)
{
	FILE *f = open_data("operations/match.txt");
	char line[LINE_MAX_LEN], ctx[LINE_MAX_LEN + 32], allowed[128];
	struct operations_match m;
	size_t lineno = 0, ran = 0;

	while (fgets(line, sizeof(line), f)) {
		char *method, *path, *want, *rest, *save = NULL;
		enum operations_found got;

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		snprintf(ctx, sizeof(ctx), "match.txt:%zu: %s", lineno, line);
		method = strtok_r(line, "\t", &save);
		path = strtok_r(NULL, "\t", &save);
		want = strtok_r(NULL, "\t", &save);
		cr_assert(method && path && want, "%s: needs three fields", ctx);
		got = match(method, path, &m);
		if (strcmp(want, "404") == 0) {
			cr_expect_eq(got, OPERATIONS_NO_PATH, "%s: got %d", ctx, got);
			cr_expect_eq(m.allowed, 0, "%s", ctx);
		} else if (strncmp(want, "405 ", 4) == 0) {
			cr_expect_eq(got, OPERATIONS_NO_METHOD, "%s: got %d", ctx, got);
			cr_expect_null(m.op, "%s", ctx);
			cr_expect_str_eq(
			        operations_methods_text(m.allowed, allowed, sizeof(allowed)),
			        want + 4, "%s", ctx);
		} else {
			rest = strchr(want, ' ');
			if (rest)
				*rest++ = '\0';
			cr_expect_eq(got, OPERATIONS_FOUND, "%s: got %d", ctx, got);
			cr_expect(m.op && strcmp(m.op->id, want) == 0, "%s: found %s", ctx,
			          m.op ? m.op->id : "nothing");
			cr_expect(m.allowed & (1u << m.op->method), "%s", ctx);
			expect_params(&m, rest ? rest : (char[]){""}, ctx);
		}
		ran++;
	}
	fclose(f);
	cr_expect_geq(ran, 30);
}

/* The table is sorted by id with no repeats, each entry knows its index,
 * and operations_by_id finds each one. */
Test(operations, table_sorted_and_indexed)
{
	size_t i;

	cr_assert_gt(operations_count, 0);
	cr_assert_leq(operations_count, OPERATIONS_MAX);
	for (i = 0; i < operations_count; i++) {
		const struct operation *op = &operations[i];

		cr_expect_eq(op->index, i, "%s", op->id);
		if (i > 0)
			cr_expect_lt(strcmp(operations[i - 1].id, op->id), 0, "%s then %s",
			             operations[i - 1].id, op->id);
		cr_expect_eq(operations_by_id(op->id), op, "%s", op->id);
		cr_expect_eq(op->path[0], '/', "%s", op->id);
		cr_expect_leq(op->nparams, OPERATION_MAX_PARAMS, "%s", op->id);
		cr_expect_lt((unsigned)op->method, OPERATION_METHODS, "%s", op->id);
		cr_expect_eq(op->body_other != NULL, (op->flags & OPERATION_BODY_OTHER) != 0, "%s",
		             op->id);
	}
	cr_expect_null(operations_by_id(""));
	cr_expect_null(operations_by_id("createresponse"), "ids are case-sensitive");
	cr_expect_null(operations_by_id("zzz"));
	cr_expect_null(operations_by_id("AAA"));
}

/* The spec this table was made from has 288 operations; a new spec changes
 * this number on purpose. */
Test(operations, every_operation_of_the_spec)
{
	cr_expect_eq(operations_count, 288);
}

/*
 * Every operation is found from its own template, with sample values that
 * are no literal segment of the spec: by method and path, with its
 * parameters named and captured in order. An operation the spec gives a
 * query is found as its twin without one, which names it as its variant.
 */
Test(operations, every_operation_matches_its_template)
{
	size_t i;

	for (i = 0; i < operations_count; i++) {
		const struct operation *op = &operations[i], *want = op;
		char path[PATH_MAX_LEN], values[OPERATION_MAX_PARAMS][32];
		struct operations_match m;
		const char *t = op->path;
		size_t o = 0, k = 0;

		while (*t) {
			if (*t == '{') {
				snprintf(values[k], sizeof(values[k]), "v%zu_%zu", k, i);
				o += (size_t)snprintf(path + o, sizeof(path) - o, "%s",
				                      values[k++]);
				t = strchr(t, '}') + 1;
			} else {
				path[o++] = *t++;
			}
		}
		path[o] = '\0';
		cr_assert_eq(k, op->nparams, "%s: %zu parameters in the path", op->id, k);
		if (op->query) {
			want = operation_variant(op);
			cr_assert_not_null(want, "%s has a query and no twin", op->id);
			cr_expect_null(want->query, "%s", op->id);
			cr_expect_eq(operation_variant(want), op, "%s", op->id);
			cr_expect_str_eq(want->path, op->path, "%s", op->id);
			cr_expect_eq(want->method, op->method, "%s", op->id);
		}
		cr_expect_eq(match(operation_method_name(op->method), path, &m), OPERATIONS_FOUND,
		             "%s: %s %s", op->id, operation_method_name(op->method), path);
		cr_expect_eq(m.op, want, "%s: %s %s found %s", op->id,
		             operation_method_name(op->method), path, m.op ? m.op->id : "nothing");
		cr_expect_eq(m.nparams, op->nparams, "%s", op->id);
		for (k = 0; k < m.nparams && k < op->nparams; k++) {
			cr_expect_str_eq(m.params[k].name, op->params[k], "%s", op->id);
			cr_expect(m.params[k].len == strlen(values[k]) &&
			                  memcmp(m.params[k].value, values[k], m.params[k].len) ==
			                          0,
			          "%s: parameter %zu", op->id, k);
		}
	}
}

Test(operations, segment_counts)
{
	const char *seg[OPERATIONS_MAX_SEGMENTS + 1];
	size_t len[OPERATIONS_MAX_SEGMENTS + 1], i;
	struct operations_match m;

	for (i = 0; i <= OPERATIONS_MAX_SEGMENTS; i++) {
		seg[i] = "containers";
		len[i] = 10;
	}
	cr_expect_eq(operations_match("GET", seg, len, 0, &m), OPERATIONS_NO_PATH, "no segment");
	cr_expect_eq(operations_match("GET", seg, len, 1, &m), OPERATIONS_FOUND);
	cr_expect_eq(operations_match("GET", seg, len, OPERATIONS_MAX_SEGMENTS, &m),
	             OPERATIONS_NO_PATH);
	cr_expect_eq(operations_match("GET", seg, len, OPERATIONS_MAX_SEGMENTS + 1, &m),
	             OPERATIONS_NO_PATH, "too many segments");
	cr_expect_null(m.op);
	cr_expect_eq(m.allowed, 0);
	cr_expect_eq(m.nparams, 0);
}

/* A segment is its len bytes, whatever follows them, and a long one is
 * just a value. */
Test(operations, segments_are_bounded_by_their_length)
{
	static char big[70000];
	const char *seg[2] = {"containersXYZ", big};
	size_t len[2] = {10, sizeof(big)};
	struct operations_match m;

	memset(big, 'a', sizeof(big));
	cr_expect_eq(operations_match("GET", seg, len, 1, &m), OPERATIONS_FOUND);
	cr_expect_str_eq(m.op->id, "ListContainers");
	cr_expect_eq(operations_match("GET", seg, len, 2, &m), OPERATIONS_FOUND);
	cr_expect_str_eq(m.op->id, "RetrieveContainer");
	cr_expect_eq(m.params[0].value, big);
	cr_expect_eq(m.params[0].len, sizeof(big));
	seg[0] = big;
	len[0] = 10;
	cr_expect_eq(operations_match("GET", seg, len, 1, &m), OPERATIONS_NO_PATH);
}

static unsigned
flags_of(const char *id)
{
	const struct operation *op = operations_by_id(id);

	cr_assert_not_null(op, "%s is not in the table", id);
	return op->flags;
}

/* The flags say what the spec says (spot checks; the generator derives all
 * of them the same way). */
Test(operations, flags)
{
	const struct operation *op;

	cr_expect_eq(flags_of("CreateContainer"),
	             OPERATION_BODY | OPERATION_BODY_JSON | OPERATION_ANSWER_JSON);
	cr_expect_eq(flags_of("ListContainers"), OPERATION_ANSWER_JSON);
	cr_expect_eq(flags_of("CreateContainerFile"),
	             OPERATION_BODY | OPERATION_BODY_REQUIRED | OPERATION_BODY_JSON |
	                     OPERATION_BODY_MULTIPART | OPERATION_ANSWER_JSON);
	cr_expect_eq(flags_of("DeleteContainer"), OPERATION_ANSWER_NONE);
	/* The spec declares no content; the file's bytes, added by hand. */
	cr_expect_eq(flags_of("RetrieveContainerFileContent"),
	             OPERATION_ANSWER_NONE | OPERATION_ANSWER_BINARY);
	/* Declared as a JSON string: the file's bytes. */
	cr_expect_eq(flags_of("downloadFile"), OPERATION_ANSWER_BINARY);
	cr_expect(flags_of("GetSkillContent") & OPERATION_ANSWER_BINARY);
	cr_expect(flags_of("RetrieveVideoContent") & OPERATION_ANSWER_BINARY);
	/* Server-Sent Events: declared, or asked for by a "stream" boolean in
	 * the body or the query. */
	cr_expect_eq(flags_of("createChatCompletion") & (OPERATION_SSE | OPERATION_STREAM_BODY),
	             OPERATION_SSE | OPERATION_STREAM_BODY);
	cr_expect_eq(flags_of("createCompletion") & (OPERATION_SSE | OPERATION_STREAM_BODY),
	             OPERATION_SSE | OPERATION_STREAM_BODY);
	cr_expect_eq(flags_of("createRun") & (OPERATION_SSE | OPERATION_STREAM_BODY),
	             OPERATION_SSE | OPERATION_STREAM_BODY);
	cr_expect_eq(flags_of("getResponse") & (OPERATION_SSE | OPERATION_STREAM_QUERY),
	             OPERATION_SSE | OPERATION_STREAM_QUERY);
	cr_expect_eq(flags_of("createTranscription") & (OPERATION_SSE | OPERATION_BODY_MULTIPART),
	             OPERATION_SSE | OPERATION_BODY_MULTIPART);
	cr_expect_eq(flags_of("createSpeech") & (OPERATION_SSE | OPERATION_ANSWER_BINARY),
	             OPERATION_SSE | OPERATION_ANSWER_BINARY);
	cr_expect_eq(flags_of("createEmbedding") & OPERATION_SSE, 0);
	cr_expect_eq(flags_of("ListContainers") & OPERATION_SSE, 0);
	op = operations_by_id("create-realtime-call");
	cr_assert_not_null(op);
	cr_expect(op->flags & OPERATION_BODY_MULTIPART);
	cr_expect_str_eq(op->body_other, "application/sdp");
	cr_expect(op->flags & OPERATION_ANSWER_BINARY, "it answers application/sdp");
}

/* A query the spec writes into a path names the twin that has it. */
Test(operations, query_variants)
{
	const struct operation *plain = operations_by_id("createResponse");
	const struct operation *beta = operations_by_id("beta_createResponse");
	size_t i, n = 0;

	cr_assert(plain && beta);
	cr_expect_eq(operation_variant(plain), beta);
	cr_expect_eq(operation_variant(beta), plain);
	cr_expect_str_eq(beta->query, "beta=true");
	cr_expect_null(plain->query);
	cr_expect_null(operation_variant(operations_by_id("CreateContainer")));
	cr_expect_null(operation_variant(NULL));
	for (i = 0; i < operations_count; i++)
		n += operations[i].query != NULL;
	cr_expect_eq(n, 7);
}

Test(operations, methods_text)
{
	char buf[64];

	cr_expect_str_eq(operations_methods_text(0, buf, sizeof(buf)), "");
	cr_expect_str_eq(operations_methods_text((1u << OPERATION_DELETE) | (1u << OPERATION_GET),
	                                         buf, sizeof(buf)),
	                 "GET, DELETE");
	cr_expect_str_eq(operations_methods_text(0xff, buf, sizeof(buf)),
	                 "GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH, TRACE");
	cr_expect_str_eq(operations_methods_text(0xff, buf, 8), "GET, PU", "cut to fit");
	cr_expect_str_eq(operation_method_name(OPERATION_PATCH), "PATCH");
	cr_expect_str_eq(operation_method_name(OPERATION_METHODS), "?");
}

Test(operations, closest)
{
	cr_expect_str_eq(operations_closest("createresponse"), "createResponse");
	cr_expect_str_eq(operations_closest("CreatContainer"), "CreateContainer");
	cr_expect_str_eq(operations_closest("create_response"), "createResponse");
	cr_expect_str_eq(operations_closest("listcontainer"), "ListContainers");
	cr_expect_null(operations_closest("zzzz"));
	cr_expect_null(operations_closest(""));
	cr_expect_null(operations_closest(
	        "a-name-far-longer-than-any-operation-id-so-it-is-not-compared-at-all-x"));
}

/* The names the policy has always taken are operations of the table. */
Test(operations, policy_short_names_are_operations)
{
	size_t i;

	for (i = 0; policy_operations[i].name; i++)
		cr_expect_not_null(operations_by_id(policy_operations[i].operation_id), "%s",
		                   policy_operations[i].operation_id);
	cr_expect_eq(i, 9);
}
