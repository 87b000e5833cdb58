/*
 * Tests for gateway/config.c (and the conftable under it), driven by
 * $GW_DATA/config/ (GW_DATA defaults to "tests/data").
 *
 * cases.json lists config files of that folder:
 *   {"file", "ok": {field: value, ...}, "complete"?}
 *       config_load succeeds and each named field of struct config has that
 *       value: a string ("@DIR@" stands for the folder as the test names
 *       it), an integer, true/false, or null for a NULL pointer. With
 *       "complete", every field must be listed.
 *   {"file", "errors": [e, ...], "regression"?}
 *       config_load fails with exactly one message per e, each starting
 *       "<path>: <e>", so the file comes first and the JSON path next;
 *       "A ... B" means A, then B somewhere after it. Cases with
 *       "regression" guard a fixed bug (the note says which) and run in
 *       their own test.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/config.h"
#include "lib/secmem.h"

#define PATH_MAX_LEN 1024

static void
suite_init(void)
{
	secmem_init();
	/* The key the auth.jwt cases' upstream.api_key_env names. */
	setenv("GW_TEST_CONFIG_KEY", "sk-test-config-KEY-1188", 1);
	/* limits.spool_dir's default is $TMPDIR, else /tmp: the cases say /tmp. */
	unsetenv("TMPDIR");
}

TestSuite(config, .init = suite_init);

enum ftype { F_STR, F_INT, F_LL, F_BOOL };

struct field {
	const char *name;
	enum ftype type;
	size_t off;
};

#define FIELD(name, type)                                                                          \
	{                                                                                          \
#name, type, offsetof(struct config, name)                                         \
	}

/* Every field of struct config. */
static const struct field fields[] = {
        FIELD(file, F_STR),
        FIELD(listen, F_STR),
        FIELD(listen_host, F_STR),
        FIELD(listen_port, F_INT),
        FIELD(upstream_base_url, F_STR),
        FIELD(upstream_timeout_ms, F_LL),
        FIELD(upstream_connect_timeout_ms, F_LL),
        FIELD(upstream_max_response_bytes, F_LL),
        FIELD(upstream_ca_file, F_STR),
        FIELD(upstream_insecure_skip_verify, F_BOOL),
        FIELD(audit_path, F_STR),
        FIELD(policy_file, F_STR),
        FIELD(log_level, F_STR),
        FIELD(max_body_bytes, F_LL),
        FIELD(max_header_bytes, F_LL),
        FIELD(header_timeout_ms, F_LL),
        FIELD(body_timeout_ms, F_LL),
        FIELD(idle_timeout_ms, F_LL),
        FIELD(max_connections, F_LL),
        FIELD(spool_dir, F_STR),
        FIELD(max_spool_bytes, F_LL),
        FIELD(max_json_bytes, F_LL),
        {NULL},
};

static const char *
data_dir(void)
{
	const char *dir = getenv("GW_DATA");

	return dir && dir[0] ? dir : "tests/data";
}

static void
config_dir(char *dst, size_t n)
{
	snprintf(dst, n, "%s/config", data_dir());
}

static json_t *
load_cases(void)
{
	char path[PATH_MAX_LEN];
	json_error_t je;
	json_t *doc;

	snprintf(path, sizeof(path), "%s/config/cases.json", data_dir());
	doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	cr_assert_not_null(doc, "%s:%d:%d: %s (set GW_DATA)", path, je.line, je.column, je.text);
	return doc;
}

/* want with every "@DIR@" replaced by dir. */
static void
expand(char *dst, size_t n, const char *want, const char *dir)
{
	const char *at = strstr(want, "@DIR@");
	int k;

	if (at == NULL)
		k = snprintf(dst, n, "%s", want);
	else
		k = snprintf(dst, n, "%.*s%s%s", (int)(at - want), want, dir, at + 5);
	cr_assert(k >= 0 && (size_t)k < n, "expanded path too long: %s", want);
}

static void
expect_field(const struct config *c, const char *name, const json_t *want, const char *dir,
             const char *ctx)
{
	const struct field *f;
	const char *base = (const char *)c;
	char expanded[PATH_MAX_LEN];

	for (f = fields; f->name; f++)
		if (strcmp(f->name, name) == 0)
			break;
	cr_assert_not_null(f->name, "%s: no field %s in struct config", ctx, name);
	switch (f->type) {
	case F_STR: {
		const char *got = *(char *const *)(const void *)(base + f->off);

		if (json_is_null(want)) {
			cr_expect_null(got, "%s: %s is \"%s\", want NULL", ctx, name, got);
			break;
		}
		cr_assert(json_is_string(want), "%s: %s wants a string", ctx, name);
		expand(expanded, sizeof(expanded), json_string_value(want), dir);
		cr_expect_not_null(got, "%s: %s is NULL, want \"%s\"", ctx, name, expanded);
		if (got)
			cr_expect_str_eq(got, expanded, "%s: %s", ctx, name);
		break;
	}
	case F_INT:
		cr_assert(json_is_integer(want), "%s: %s wants an integer", ctx, name);
		cr_expect_eq(*(const int *)(const void *)(base + f->off), json_integer_value(want),
		             "%s: %s is %d", ctx, name,
		             *(const int *)(const void *)(base + f->off));
		break;
	case F_LL:
		cr_assert(json_is_integer(want), "%s: %s wants an integer", ctx, name);
		cr_expect_eq(*(const long long *)(const void *)(base + f->off),
		             json_integer_value(want), "%s: %s is %lld", ctx, name,
		             *(const long long *)(const void *)(base + f->off));
		break;
	case F_BOOL:
	default:
		cr_assert(json_is_boolean(want), "%s: %s wants true or false", ctx, name);
		cr_expect_eq(*(const int *)(const void *)(base + f->off) != 0, json_is_true(want),
		             "%s: %s", ctx, name);
		break;
	}
}

/* Whether msg is "<path>: " then want ("A ... B": A, and B after it). */
static int
message_matches(const char *msg, const char *path, const char *want)
{
	const char *dots = strstr(want, " ... ");
	size_t plen = strlen(path), alen = dots ? (size_t)(dots - want) : strlen(want);

	if (strncmp(msg, path, plen) != 0 || strncmp(msg + plen, ": ", 2) != 0)
		return 0;
	msg += plen + 2;
	if (strncmp(msg, want, alen) != 0)
		return 0;
	return dots == NULL || strstr(msg + alen, dots + 5) != NULL;
}

static void
run_ok_case(const char *path, const json_t *want, int complete, const char *ctx)
{
	static struct errlist errs;
	char dir[PATH_MAX_LEN];
	struct config *c;
	const char *key;
	json_t *v;
	size_t nfields = 0;

	config_dir(dir, sizeof(dir));
	memset(&errs, 0, sizeof(errs));
	c = config_load(path, &errs);
	cr_assert_not_null(c, "%s: refused: %s", ctx, errs.n ? errs.msg[0] : "(no message)");
	cr_expect_eq(errs.n, 0, "%s: loaded with messages: %s", ctx, errs.n ? errs.msg[0] : "");
	json_object_foreach((json_t *)(uintptr_t)want, key, v) expect_field(c, key, v, dir, ctx);
	while (fields[nfields].name)
		nfields++;
	if (complete)
		cr_expect_eq(json_object_size(want), nfields, "%s: lists %zu of %zu fields", ctx,
		             json_object_size(want), nfields);
	config_free(c);
}

static void
run_error_case(const char *path, const json_t *want, const char *ctx)
{
	static struct errlist errs;
	char all[ERRLIST_MAX * 100] = "";
	int used[ERRLIST_MAX] = {0};
	struct config *c;
	size_t i, j, o = 0;
	json_t *e;

	memset(&errs, 0, sizeof(errs));
	c = config_load(path, &errs);
	for (i = 0; i < errs.n && o < sizeof(all); i++)
		o += (size_t)snprintf(all + o, sizeof(all) - o, "\n  %s", errs.msg[i]);
	cr_expect_null(c, "%s: loaded", ctx);
	config_free(c);
	cr_expect_eq(errs.n, json_array_size(want), "%s: %zu messages, want %zu:%s", ctx, errs.n,
	             json_array_size(want), all);
	for (i = 0; i < errs.n; i++) {
		cr_expect_eq(strncmp(errs.msg[i], path, strlen(path)), 0,
		             "%s: message does not start with the file: %s", ctx, errs.msg[i]);
		cr_expect_eq(strncmp(errs.msg[i] + strlen(path), ": ", 2), 0, "%s: %s", ctx,
		             errs.msg[i]);
	}
	json_array_foreach(want, i, e)
	{
		for (j = 0; j < errs.n; j++)
			if (!used[j] && message_matches(errs.msg[j], path, json_string_value(e)))
				break;
		cr_expect_lt(j, errs.n, "%s: no message matches \"%s\"; got:%s", ctx,
		             json_string_value(e), all);
		if (j < errs.n)
			used[j] = 1;
	}
}

/* Runs the cases with (bugs) or without a "regression" note; returns how
 * many. */
static size_t
run_cases(int bugs, int want_ok)
{
	json_t *doc = load_cases(), *c;
	char dir[PATH_MAX_LEN / 2], path[PATH_MAX_LEN], ctx[2 * PATH_MAX_LEN];
	size_t i, ran = 0;

	config_dir(dir, sizeof(dir));
	json_array_foreach(json_object_get(doc, "cases"), i, c)
	{
		const char *file = json_string_value(json_object_get(c, "file"));
		json_t *ok = json_object_get(c, "ok"), *errors = json_object_get(c, "errors");
		json_t *bug = json_object_get(c, "regression");

		cr_assert(file && (ok != NULL) != (errors != NULL),
		          "cases.json case %zu: needs \"file\" and one of \"ok\", \"errors\"", i);
		if ((bug != NULL) != bugs || (bugs == 0 && (ok != NULL) != want_ok))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, file);
		snprintf(ctx, sizeof(ctx), "%s%s%s", file, bug ? "; regression: " : "",
		         bug ? json_string_value(bug) : "");
		if (ok)
			run_ok_case(path, ok, json_is_true(json_object_get(c, "complete")), ctx);
		else
			run_error_case(path, errors, ctx);
		ran++;
	}
	json_decref(doc);
	return ran;
}

Test(config, loads)
{
	cr_expect_geq(run_cases(0, 1), 12);
}

Test(config, errors)
{
	cr_expect_geq(run_cases(0, 0), 30);
}

/* Cases that once failed, kept so the fix stays. */
Test(config, regressions)
{
	cr_expect_geq(run_cases(1, 0), 1);
}

/* Every file in the folder is a case, and every case has its file. */
Test(config, every_file_is_a_case)
{
	json_t *doc = load_cases(), *c;
	char dir[PATH_MAX_LEN / 2], path[PATH_MAX_LEN];
	size_t i;

	config_dir(dir, sizeof(dir));
	json_array_foreach(json_object_get(doc, "cases"), i, c)
	{
		snprintf(path, sizeof(path), "%s/%s", dir,
		         json_string_value(json_object_get(c, "file")));
		cr_expect_eq(access(path, R_OK), 0, "cases.json case %zu: no file %s", i, path);
	}
	json_decref(doc);
}

/* Without limits.spool_dir, large bodies go to $TMPDIR when it is an
 * absolute path (a relative one would follow the working folder), else
 * /tmp. */
Test(config, spool_dir_defaults_to_an_absolute_tmpdir)
{
	static struct errlist errs;
	char path[PATH_MAX_LEN];
	struct config *c;

	snprintf(path, sizeof(path), "%s/config/empty.json", data_dir());
	setenv("TMPDIR", "/var/tmp", 1);
	c = config_load(path, &errs);
	cr_assert_not_null(c);
	cr_expect_str_eq(c->spool_dir, "/var/tmp");
	config_free(c);
	setenv("TMPDIR", "relative/tmp", 1);
	c = config_load(path, &errs);
	cr_assert_not_null(c);
	cr_expect_str_eq(c->spool_dir, "/tmp");
	config_free(c);
	unsetenv("TMPDIR");
}

/* The config `make run` uses loads, and its policy file is where it says. */
Test(config, example_config)
{
	static struct errlist errs;
	char path[PATH_MAX_LEN], want[PATH_MAX_LEN];
	struct config *c;

	snprintf(path, sizeof(path), "%s/../../gateway.example.json", data_dir());
	c = config_load(path, &errs);
	cr_assert_not_null(c, "%s: %s", path, errs.n ? errs.msg[0] : "");
	cr_expect_str_eq(c->listen_host, "127.0.0.1");
	cr_expect_eq(c->listen_port, 8080);
	cr_expect_str_eq(c->upstream_base_url, "https://api.openai.com/v1");
	cr_expect_eq(c->upstream_timeout_ms, 60000);
	cr_expect_eq(c->upstream_connect_timeout_ms, 5000);
	cr_expect_eq(c->max_body_bytes, 78643200);
	cr_expect_str_eq(c->audit_path, "-");
	snprintf(want, sizeof(want), "%s/../../policies/default.json", data_dir());
	cr_expect_str_eq(c->policy_file, want);
	cr_expect_eq(access(c->policy_file, R_OK), 0, "%s is not readable", c->policy_file);
	config_free(c);
}

Test(config, missing_file)
{
	static struct errlist errs;
	char path[PATH_MAX_LEN];

	snprintf(path, sizeof(path), "%s/config/no-such-file.json", data_dir());
	cr_expect_null(config_load(path, &errs));
	cr_assert_eq(errs.n, 1);
	cr_expect_eq(strncmp(errs.msg[0], path, strlen(path)), 0, "%s", errs.msg[0]);
}

Test(config, directory_instead_of_file)
{
	static struct errlist errs;
	char path[PATH_MAX_LEN];

	config_dir(path, sizeof(path));
	cr_expect_null(config_load(path, &errs));
	cr_assert_eq(errs.n, 1);
	cr_expect_eq(strncmp(errs.msg[0], path, strlen(path)), 0, "%s", errs.msg[0]);
}

/* A config named without a folder resolves against ".". */
Test(config, path_without_folder)
{
	static struct errlist errs;
	char dir[PATH_MAX_LEN], *abs;
	struct config *c;

	config_dir(dir, sizeof(dir));
	abs = realpath(dir, NULL);
	cr_assert_not_null(abs, "realpath %s", dir);
	cr_assert_eq(chdir(abs), 0, "chdir %s", abs);
	free(abs);
	c = config_load("full.json", &errs);
	cr_assert_not_null(c, "%s", errs.n ? errs.msg[0] : "");
	cr_expect_str_eq(c->file, "full.json");
	cr_expect_str_eq(c->policy_file, "./policies/strict.json");
	cr_expect_str_eq(c->audit_path, "./logs/audit.log");
	cr_expect_str_eq(c->upstream_ca_file, "./certs/ca.pem");
	config_free(c);
}

/* Messages already in the list are not this file's problems. */
Test(config, counts_only_its_own_errors)
{
	static struct errlist errs;
	char path[PATH_MAX_LEN];
	struct config *c;

	snprintf(path, sizeof(path), "%s/config/empty.json", data_dir());
	errlist_add(&errs, "other.json", NULL, "an earlier problem");
	c = config_load(path, &errs);
	cr_expect_not_null(c);
	cr_expect_eq(errs.n, 1);
	config_free(c);
	config_free(NULL);
}
