/*
 * Tests for gateway/schema.c, with gateway/jsondoc.c in front of it as in
 * production: every body goes through jsondoc_parse, then schema_check.
 *
 * Most cases are files in $GW_DATA/schema/ (GW_DATA defaults to
 * "tests/data"), one case per file, run in name order:
 *
 *   NNN-name.json     {"body": "<the body as a JSON string>", <expectation>}
 *   NNN-name.body     the raw body bytes (invalid UTF-8, BOMs), with
 *   NNN-name.expect   {<expectation>}
 *
 * The expectation members are
 *
 *   "status"            0 (accepted) or 400
 *   "param"             the exact JSON path, or null for none (400 only)
 *   "code"              the exact error code (400 only)
 *   "message_contains"  optional substring of the message
 *   "message_excludes"  optional substring the message must not hold
 *                       (secret values)
 *   "schema"            optional: which schema, create_container_body when
 *                       absent
 *   "note"              optional: why the case exists (a fixed bug it
 *                       guards, say); shown when the case fails
 *
 * Every refusal must also carry type invalid_request_error, a non-empty
 * message, and a param and message that are valid UTF-8 (reply_error turns
 * anything else into a bare "request failed").
 *
 * The length limits of millions of characters are built in code below.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/jsondoc.h"
#include "policy/schema.h"
#include "lib/secmem.h"

#define CASES_MAX    1024
#define NAME_MAX_LEN 256 /* a d_name and its NUL */

struct tcase {
	char file[NAME_MAX_LEN];
	char *body; /* exactly len bytes, so ASan sees reads past the end */
	size_t len;
	const struct schema *schema;
	int status;
	const char *param; /* "" for null */
	const char *code;
	const char *contains;
	const char *excludes;
	const char *known_bug;
	json_t *spec; /* owns the strings above */
};

static struct tcase cases[CASES_MAX];
static size_t ncases;

static const struct {
	const char *name;
	const struct schema *s;
} schemas[] = {
        {"create_container_body", &schema_create_container_body},
        {"create_container_file_body", &schema_create_container_file_body},
        {"container_resource", &schema_container_resource},
        {"container_list_resource", &schema_container_list_resource},
        {"container_file_resource", &schema_container_file_resource},
        {"container_file_list_resource", &schema_container_file_list_resource},
        {"code_interpreter_tool", &schema_code_interpreter_tool},
        {"shell_tool", &schema_shell_tool},
};

#define NSCHEMAS (sizeof(schemas) / sizeof(schemas[0]))

static const char *const request_codes[] = {
        "invalid_type",
        "missing_required_parameter",
        "unknown_parameter",
        "invalid_value",
        "string_too_short",
        "string_too_long",
        "array_too_short",
        "integer_too_small",
        "invalid_json",
        "duplicate_key",
        NULL,
};

static const char *
data_dir(void)
{
	const char *d = getenv("GW_DATA");

	return d && *d ? d : "tests/data";
}

/* Reads a whole file into an exactly-sized heap buffer (one byte at least,
 * so that an empty body has an address). */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "cannot open %s (set GW_DATA to the tests/data directory)", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	cr_assert_geq(n, 0);
	rewind(f);
	buf = malloc(n > 0 ? (size_t)n : 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n, "short read on %s", path);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static char *
copy_exact(const char *s, size_t len)
{
	char *p = malloc(len > 0 ? len : 1);

	cr_assert_not_null(p);
	memcpy(p, s, len);
	return p;
}

static int
has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && strcmp(s + a - b, suf) == 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const struct tcase *)a)->file, ((const struct tcase *)b)->file);
}

static const char *
opt_string(const struct tcase *t, const char *key)
{
	json_t *v = json_object_get(t->spec, key);

	if (v == NULL)
		return NULL;
	cr_assert(json_is_string(v), "%s: \"%s\" must be a string", t->file, key);
	return json_string_value(v);
}

/* Fills t's expectation from t->spec; raw says the body is in a .body file,
 * so the spec may not have one. */
static void
read_expectation(struct tcase *t, int raw)
{
	static const char *const known[] = {
	        "body",   "status", "param", "code", "message_contains", "message_excludes",
	        "schema", "note",   NULL};
	const char *key, *name;
	json_t *v;
	size_t i;

	cr_assert(json_is_object(t->spec), "%s: not a JSON object", t->file);
	json_object_foreach(t->spec, key, v)
	{
		for (i = 0; known[i]; i++)
			if (strcmp(known[i], key) == 0)
				break;
		cr_assert_not_null(known[i], "%s: unknown member \"%s\"", t->file, key);
		cr_assert(!(raw && strcmp(key, "body") == 0), "%s: body given twice", t->file);
	}
	v = json_object_get(t->spec, "status");
	cr_assert(json_is_integer(v), "%s: \"status\" must be 0 or 400", t->file);
	t->status = (int)json_integer_value(v);
	cr_assert(t->status == 0 || t->status == 400, "%s: \"status\" must be 0 or 400", t->file);

	t->schema = &schema_create_container_body;
	name = opt_string(t, "schema");
	if (name != NULL) {
		for (i = 0; i < NSCHEMAS; i++)
			if (strcmp(schemas[i].name, name) == 0)
				break;
		cr_assert_lt(i, NSCHEMAS, "%s: unknown schema \"%s\"", t->file, name);
		t->schema = schemas[i].s;
	}

	v = json_object_get(t->spec, "param");
	if (t->status == 0) {
		cr_assert(v == NULL && json_object_get(t->spec, "code") == NULL,
		          "%s: an accepted case has no param or code", t->file);
		t->param = "";
	} else {
		cr_assert(v != NULL && (json_is_null(v) || json_is_string(v)),
		          "%s: \"param\" must be a string or null", t->file);
		t->param = json_is_string(v) ? json_string_value(v) : "";
		t->code = opt_string(t, "code");
		cr_assert_not_null(t->code, "%s: \"code\" is missing", t->file);
	}
	t->contains = opt_string(t, "message_contains");
	t->excludes = opt_string(t, "message_excludes");
	t->known_bug = opt_string(t, "note");
}

static void
load_case(const char *dir, const char *file)
{
	struct tcase *t;
	char path[1024];
	json_error_t je;
	size_t n;
	int raw = has_suffix(file, ".expect");

	cr_assert_lt(ncases, CASES_MAX, "too many cases");
	t = &cases[ncases++];
	memset(t, 0, sizeof(*t));
	cr_assert_lt(strlen(file), sizeof(t->file), "file name too long: %s", file);
	snprintf(t->file, sizeof(t->file), "%s", file);

	cr_assert_lt((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file), sizeof(path));
	t->spec = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	cr_assert_not_null(t->spec, "%s:%d: %s", path, je.line, je.text);
	read_expectation(t, raw);
	if (raw) {
		n = strlen(path) - strlen(".expect");
		memcpy(path + n, ".body", sizeof(".body")); /* shorter than ".expect" */
		t->body = slurp(path, &t->len);
	} else {
		json_t *b = json_object_get(t->spec, "body");

		cr_assert(json_is_string(b), "%s: \"body\" must be a string", t->file);
		t->len = json_string_length(b);
		t->body = copy_exact(json_string_value(b), t->len);
	}
}

static void
load_cases(void)
{
	char dir[1024], other[1024 + 300];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/schema", data_dir());
	d = opendir(dir);
	cr_assert_not_null(d, "cannot open %s (set GW_DATA to the tests/data directory)", dir);
	ncases = 0;
	while ((de = readdir(d)) != NULL) {
		const char *f = de->d_name;
		size_t n = strlen(f);

		if (f[0] == '.')
			continue;
		if (has_suffix(f, ".json") || has_suffix(f, ".expect")) {
			load_case(dir, f);
		} else if (has_suffix(f, ".body")) {
			/* A body nobody expects anything of is a mistake. */
			cr_assert_lt((size_t)snprintf(other, sizeof(other), "%s/%.*s.expect", dir,
			                              (int)(n - 5), f),
			             sizeof(other));
			cr_assert_eq(access(other, R_OK), 0, "%s/%s has no .expect file", dir, f);
		} else {
			cr_assert_fail("%s/%s: not a .json, .body or .expect file", dir, f);
		}
	}
	closedir(d);
	qsort(cases, ncases, sizeof(cases[0]), by_name);
}

static void
suite_init(void)
{
	secmem_init();
	load_cases();
}

static void
suite_fini(void)
{
	size_t i;

	for (i = 0; i < ncases; i++) {
		free(cases[i].body);
		json_decref(cases[i].spec);
	}
	ncases = 0;
}

TestSuite(schema, .init = suite_init, .fini = suite_fini);

/* What reply_error does with a param or message: a jansson string, which
 * only valid UTF-8 can become. */
static int
utf8_ok(const char *s)
{
	json_t *j = json_string(s);
	int ok = j != NULL;

	json_decref(j);
	return ok;
}

static int
same_err(const struct err *a, const struct err *b)
{
	return a->status == b->status && a->code == b->code && a->type == b->type &&
	       strcmp(a->param, b->param) == 0 && strcmp(a->message, b->message) == 0;
}

/* Parses and checks body as the gateway does. Returns 0 or -1 with e filled;
 * what names the input in failure messages. */
static int
validate(const char *what, const struct schema *s, const char *body, size_t len, struct err *e)
{
	struct err again;
	json_t *doc;
	int rc;

	err_clear(e);
	doc = jsondoc_parse(body, len, e);
	if (doc == NULL)
		return -1;
	rc = schema_check(s, doc, e);
	/* The walker keeps no state between calls. */
	err_clear(&again);
	cr_expect_eq(schema_check(s, doc, &again), rc, "%s: second check differs", what);
	if (rc < 0)
		cr_expect(same_err(e, &again), "%s: second check reports differently", what);
	json_decref(doc);
	return rc;
}

/* s with control and non-ASCII bytes as \xNN, for failure messages that
 * stay readable (and valid UTF-8) whatever the gateway produced. */
static const char *
show(const char *s, char *dst, size_t n)
{
	size_t o = 0;

	for (; *s && o + 5 < n; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(dst + o, n - o, "\\x%02x", c);
		else
			dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return dst;
}

/* Runs one case; returns the number of expectations it failed. */
static int
run_case(const struct tcase *t)
{
	const char *tag = "";
	const char *why = t->known_bug ? t->known_bug : "";
	char got[4 * ERR_PARAM_MAX], want[4 * ERR_PARAM_MAX];
	struct err e;
	int rc, bad = 0;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			bad++;                                                                     \
			cr_expect_fail(__VA_ARGS__);                                               \
		}                                                                                  \
	} while (0)

	rc = validate(t->file, t->schema, t->body, t->len, &e);
	if (t->status == 0) {
		CHECK(rc == 0, "%s%s: refused: %d %s param \"%s\": %s", tag, t->file, e.status,
		      e.code ? e.code : "(null)", show(e.param, got, sizeof(got)), e.message);
		return bad;
	}
	if (rc == 0) {
		CHECK(0, "%s%s: accepted, expected %s at \"%s\" %s", tag, t->file, t->code,
		      t->param, why);
		return bad;
	}
	CHECK(e.status == 400, "%s%s: status %d: %s", tag, t->file, e.status, e.message);
	CHECK(e.type != NULL && strcmp(e.type, ERR_INVALID) == 0, "%s%s: type %s", tag, t->file,
	      e.type ? e.type : "(null)");
	CHECK(e.code != NULL && strcmp(e.code, t->code) == 0, "%s%s: code %s, expected %s %s", tag,
	      t->file, e.code ? e.code : "(null)", t->code, why);
	CHECK(strcmp(e.param, t->param) == 0, "%s%s: param \"%s\", expected \"%s\" %s", tag,
	      t->file, show(e.param, got, sizeof(got)), show(t->param, want, sizeof(want)), why);
	CHECK(e.message[0] != '\0', "%s%s: empty message", tag, t->file);
	CHECK(utf8_ok(e.param), "%s%s: param is not valid UTF-8 %s", tag, t->file, why);
	CHECK(utf8_ok(e.message), "%s%s: message is not valid UTF-8 %s", tag, t->file, why);
	if (t->contains)
		CHECK(strstr(e.message, t->contains) != NULL,
		      "%s%s: message \"%s\" does not contain \"%s\"", tag, t->file, e.message,
		      t->contains);
	if (t->excludes)
		CHECK(strstr(e.message, t->excludes) == NULL,
		      "%s%s: message \"%s\" contains \"%s\"", tag, t->file, e.message, t->excludes);
#undef CHECK
	return bad;
}

Test(schema, cases)
{
	size_t i, ran = 0;

	for (i = 0; i < ncases; i++) {
		run_case(&cases[i]);
		ran++;
	}
	cr_assert_gt(ran, 0, "no cases ran");
}

/* The data covers what it claims to: enough request cases, every error
 * code, accepts and refusals for every schema, raw-byte cases. */
Test(schema, coverage)
{
	size_t i, j, req = 0, raw = 0, acc[NSCHEMAS] = {0}, rej[NSCHEMAS] = {0};

	for (i = 0; i < ncases; i++) {
		const struct tcase *t = &cases[i];

		for (j = 0; j < NSCHEMAS; j++)
			if (schemas[j].s == t->schema)
				break;
		if (t->status == 0)
			acc[j]++;
		else
			rej[j]++;
		if (t->schema == &schema_create_container_body)
			req++;
		if (has_suffix(t->file, ".expect"))
			raw++;
	}
	cr_expect_geq(req, 150, "only %zu CreateContainerBody cases", req);
	cr_expect_geq(raw, 5, "only %zu raw-byte cases", raw);
	for (j = 0; j < NSCHEMAS; j++) {
		cr_expect_gt(acc[j], 0, "no accepted case for %s", schemas[j].name);
		cr_expect_gt(rej[j], 0, "no refused case for %s", schemas[j].name);
	}
	for (j = 0; request_codes[j]; j++) {
		for (i = 0; i < ncases; i++)
			if (cases[i].schema == &schema_create_container_body &&
			    cases[i].status == 400 && strcmp(cases[i].code, request_codes[j]) == 0)
				break;
		cr_expect_lt(i, ncases, "no case for code %s", request_codes[j]);
	}
}

/* --- Limits too big for files ----------------------------------------- */

/*
 * Returns a new exactly-sized buffer: head, then lead, then count copies of
 * unit, then tail.
 */
static char *
build(const char *head, const char *lead, const char *unit, size_t count, const char *tail,
      size_t *len)
{
	size_t h = strlen(head), l = strlen(lead), u = strlen(unit), t = strlen(tail), i;
	char *buf, *p;

	*len = h + l + u * count + t;
	buf = malloc(*len);
	cr_assert_not_null(buf);
	p = buf;
	memcpy(p, head, h);
	p += h;
	memcpy(p, lead, l);
	p += l;
	for (i = 0; i < count; i++, p += u)
		memcpy(p, unit, u);
	memcpy(p, tail, t);
	return buf;
}

#define SECRET_HEAD                                                                                \
	"{\"name\":\"c\",\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":"          \
	"[\"a.com\"],\"domain_secrets\":[{\"domain\":\"a.com\",\"name\":\"T\",\"value\":\""
#define SECRET_TAIL   "\"}]}}"
#define SECRET_MARKER "sk-SECRET-MARKER"
#define SECRET_PARAM  "network_policy.domain_secrets[0].value"
#define SECRET_MAX    10485760u

#define DATA_HEAD                                                                                  \
	"{\"name\":\"c\",\"skills\":[{\"type\":\"inline\",\"name\":\"n\",\"description\":"         \
	"\"d\",\"source\":{\"type\":\"base64\",\"media_type\":\"application/zip\",\"data\":\""
#define DATA_TAIL  "\"}}]}"
#define DATA_PARAM "skills[0].source.data"
#define DATA_MAX   70254592u

/* A secret value of chars code points, each unit (one code point) after the
 * marker; expects acceptance up to the limit and string_too_long past it. */
static void
secret_of_length(const char *unit, size_t chars)
{
	size_t lead = strlen(SECRET_MARKER), len;
	char *body = build(SECRET_HEAD, SECRET_MARKER, unit, chars - lead, SECRET_TAIL, &len);
	struct err e;
	int rc = validate("big body", &schema_create_container_body, body, len, &e);

	if (chars <= SECRET_MAX) {
		cr_expect_eq(rc, 0, "%zu x \"%s\": refused: %s %s", chars, unit, e.code, e.message);
	} else {
		cr_expect_eq(rc, -1, "%zu x \"%s\": accepted", chars, unit);
		cr_expect_str_eq(e.code, "string_too_long");
		cr_expect_str_eq(e.param, SECRET_PARAM);
		cr_expect_not_null(strstr(e.message, "10485760"), "%s", e.message);
		cr_expect_null(strstr(e.message, "SECRET"), "secret echoed: %s", e.message);
		cr_expect_null(strstr(e.param, "SECRET"), "secret in param: %s", e.param);
	}
	free(body);
}

Test(schema, secret_value_max_length)
{
	secret_of_length("x", SECRET_MAX);
	secret_of_length("x", SECRET_MAX + 1);
}

/* maxLength counts code points: 10485760 two-byte characters are 20 MiB of
 * bytes and still within the limit. */
Test(schema, secret_value_max_length_in_code_points)
{
	secret_of_length("\xc3\xa9", SECRET_MAX);
	secret_of_length("\xc3\xa9", SECRET_MAX + 1);
}

Test(schema, inline_data_max_length)
{
	size_t len;
	char *body;
	struct err e;

	body = build(DATA_HEAD, "", "A", DATA_MAX, DATA_TAIL, &len);
	cr_expect_eq(validate("big body", &schema_create_container_body, body, len, &e), 0,
	             "refused: %s", e.message);
	free(body);

	body = build(DATA_HEAD, "", "A", DATA_MAX + 1, DATA_TAIL, &len);
	cr_expect_eq(validate("big body", &schema_create_container_body, body, len, &e), -1);
	cr_expect_str_eq(e.code, "string_too_long");
	cr_expect_str_eq(e.param, DATA_PARAM);
	cr_expect_not_null(strstr(e.message, "70254593"), "%s", e.message);
	free(body);
}

/* The secret-value rules hold when other fields around it are wrong too:
 * whatever is refused, the secret bytes are not in the reply. */
Test(schema, secret_never_echoed)
{
	static const char *const bodies[] = {
	        SECRET_HEAD SECRET_MARKER "\",\"extra\":1}]}}",
	        SECRET_HEAD SECRET_MARKER "\"}],\"extra\":1}}",
	        SECRET_HEAD SECRET_MARKER "\"}]},\"memory_limit\":\"2g\"}",
	        SECRET_HEAD SECRET_MARKER "\",\"value\":\"" SECRET_MARKER "2\"}]}}",
	        SECRET_HEAD SECRET_MARKER "\\u0000\"}]}}",
	        SECRET_HEAD SECRET_MARKER "\\q\"}]}}",
	        SECRET_HEAD SECRET_MARKER "\"}]}",
	        SECRET_HEAD SECRET_MARKER "\"}]}}}",
	        SECRET_HEAD SECRET_MARKER,
	        SECRET_HEAD SECRET_MARKER "\x01\"}]}}",
	};
	struct err e;
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char *b = copy_exact(bodies[i], strlen(bodies[i]));

		cr_expect_eq(validate("secret body", &schema_create_container_body, b,
		                      strlen(bodies[i]), &e),
		             -1, "body %zu accepted", i);
		cr_expect_eq(e.status, 400, "body %zu", i);
		cr_expect_null(strstr(e.message, "SECRET"), "body %zu: %s", i, e.message);
		cr_expect_null(strstr(e.param, "SECRET"), "body %zu: %s", i, e.param);
		free(b);
	}
}

Test(schema, utf8_length)
{
	static const struct {
		const char *s;
		size_t chars;
	} t[] = {
	        {"", 0},
	        {"a", 1},
	        {"abc", 3},
	        {"\xc3\xa9", 1},
	        {"\xe2\x82\xac", 1},
	        {"\xf0\x9f\x98\x80", 1},
	        {"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 5},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		cr_expect_eq(schema_utf8_length(t[i].s, strlen(t[i].s)), t[i].chars, "\"%s\"",
		             t[i].s);
	/* Only len bytes are looked at. */
	cr_expect_eq(schema_utf8_length("abcdef", 2), 2);
}

/*
 * An unknown key too long for the param buffer (ERR_PARAM_MAX) is left out
 * of param whole rather than cut mid-character: param names the object it
 * was found in (here the top level, so it is empty) and stays valid UTF-8.
 */
Test(schema, long_unknown_key_param_is_utf8)
{
	size_t len;
	char *body = build("{\"name\":\"c\",\"", "", "\xc3\xa9", 200, "\":1}", &len);
	struct err e;

	cr_assert_eq(validate("big body", &schema_create_container_body, body, len, &e), -1);
	cr_expect_str_eq(e.code, "unknown_parameter");
	cr_expect_str_eq(e.param, "");
	cr_expect(utf8_ok(e.message), "message is not valid UTF-8");
	cr_expect_neq(strstr(e.message, "unknown field"), NULL, "%s", e.message);
	free(body);
}
