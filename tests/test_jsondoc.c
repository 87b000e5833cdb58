/*
 * Tests for gateway/jsondoc.c: the path finder and path builders on
 * hand-written cases, and properties of jsondoc_parse over many broken
 * bodies. The table of accepted and refused bodies lives with the schema
 * tests (tests/data/schema/, run by tests/test_schema.c), since every body
 * goes through both.
 *
 * Bodies for the property tests are the .json files in $GW_DATA/jsondoc/ (GW_DATA
 * defaults to "tests/data"): valid CreateContainerBody documents, each with
 * the marker secret "sk-SECRET-MARKER" in a domain_secrets value.
 *
 * Inputs are copied into exactly-sized heap buffers before parsing, so
 * AddressSanitizer catches any read past the length jsondoc was given.
 */
#include <criterion/criterion.h>
#include <signal.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsondoc.h"
#include "lib/secmem.h"

#define SEEDS_MAX 32
#define PIECE_MAX 64 /* bytes copied by one edit */
#define MARKER    "sk-SECRET-MARKER"
/* What is looked for in messages: any part of the marker's tail would be a
 * piece of the secret, and no field name or message text has it. */
#define MARKER_PART "SECRET"

static void
suite_init(void)
{
	secmem_init();
}

TestSuite(jsondoc, .init = suite_init);

static const char *
data_dir(void)
{
	const char *d = getenv("GW_DATA");

	return d && *d ? d : "tests/data";
}

static char *
copy_exact(const char *s, size_t len)
{
	char *p = malloc(len > 0 ? len : 1);

	cr_assert_not_null(p);
	memcpy(p, s, len);
	return p;
}

/* --- jsondoc_path_at ---------------------------------------------------- */

struct path_case {
	const char *buf; /* read up to its end unless off says otherwise */
	const char *want;
};

static const struct path_case path_cases[] = {
        {"", ""},
        {"   ", ""},
        {"{", ""},
        {"{\"a\"", "a"},
        {"{\"a\":", "a"},
        {"{\"a\": \"partial val", "a"},
        {"{\"a\":1,", ""},
        {"{\"a\":1,\"b\":", "b"},
        {"{\"a\":{\"b\":", "a.b"},
        {"{\"a\":{\"b\":1},", ""},
        {"{\"a\":{\"b\":1},\"c\":", "c"},
        {"{\"a\":{\"b\":[", "a.b[0]"},
        {"{\"a\":{\"b\":[1,2,", "a.b[2]"},
        {"{\"a\":{\"b\":[1,2,[", "a.b[2][0]"},
        {"{\"a\":{\"b\":[1,2,[3,4]", "a.b[2]"},
        {"{\"a\":{\"b\":[1,2,[3,4],", "a.b[3]"},
        {"{\"a\":[{\"x\":1},{\"y\":", "a[1].y"},
        {"{\"a\":[{\"x\":1},{\"y\":2}],\"z\":", "z"},
        {"[", "[0]"},
        {"[1,[2,3],{\"k\":", "[2].k"},
        {" { \"a\" : [ 1 , 2 , ", "a[2]"},
        {"{\"a\":\"x[,]{\\\"}\",\"b\":", "b"},
        {"{\"a\":[\"],[\",\",\",\"{\",", "a[3]"},
        {"{\"a\":\"\\\\\",\"b\":[", "b[0]"},
        {"{\"k\\\"q\":[", "k\"q[0]"},
        {"{\"k\\\\\":1,\"z\":", "z"},
        {"{\"a.b\":{\"c\":", "a.b.c"},
        {"{\"x[0]\":", "x[0]"},
        /* Keys that are not printable ASCII, or not closed, are not shown. */
        {"{\"\xc3\xa9\":[", ""},
        {"{\"a\":{\"\xc3\xa9\":[", "a"},
        {"{\"a\":{\"sk-unclosed", "a"},
        {"{\"a\":{\"n\\u0061me\":", "a.name"},
        {"{\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":[\"a\",\"b\",",
         "network_policy.allowed_domains[2]"},
        {"{\"skills\":[{\"type\":\"skill_reference\"},{\"type\":\"inline\",\"source\":{\"data\":",
         "skills[1].source.data"},
};

Test(jsondoc, path_at_cases)
{
	char dst[ERR_PARAM_MAX];
	size_t i;

	for (i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		const struct path_case *c = &path_cases[i];
		size_t len = strlen(c->buf);
		char *buf = copy_exact(c->buf, len);

		memset(dst, 'X', sizeof(dst));
		jsondoc_path_at(buf, len, len, dst, sizeof(dst));
		cr_expect_str_eq(dst, c->want, "case %zu: %s", i, c->buf);
		free(buf);
	}
}

/* Only buf[0..off) counts; an offset past len is read as len. */
Test(jsondoc, path_at_offset)
{
	static const char doc[] = "{\"a\":[1,2,3],\"b\":{\"c\":4}}";
	const char *two = strstr(doc, "2,3");
	char dst[ERR_PARAM_MAX];
	char *buf = copy_exact(doc, sizeof(doc) - 1);

	jsondoc_path_at(buf, sizeof(doc) - 1, (size_t)(two - doc) + 2, dst, sizeof(dst));
	cr_expect_str_eq(dst, "a[2]");
	jsondoc_path_at(buf, sizeof(doc) - 1, (size_t)(strstr(doc, "4") - doc), dst, sizeof(dst));
	cr_expect_str_eq(dst, "b.c");
	jsondoc_path_at(buf, sizeof(doc) - 1, 0, dst, sizeof(dst));
	cr_expect_str_eq(dst, "");
	jsondoc_path_at(buf, 6, 1000, dst, sizeof(dst));
	cr_expect_str_eq(dst, "a[0]");
	free(buf);
}

/* Nesting deeper than the frames it tracks: the levels it keeps stay right
 * once the deep part closes again. */
Test(jsondoc, path_at_deep)
{
	char buf[256], dst[ERR_PARAM_MAX], want[ERR_PARAM_MAX] = "";
	size_t n = 0, i;

	for (i = 0; i < 40; i++)
		buf[n++] = '[';
	for (i = 0; i < 8; i++)
		buf[n++] = ']';
	buf[n++] = ',';
	jsondoc_path_at(buf, n, n, dst, sizeof(dst));
	for (i = 0; i < 31; i++)
		strcat(want, "[0]");
	strcat(want, "[1]");
	cr_expect_str_eq(dst, want);
}

/* A small destination gets a prefix of the path made of whole elements,
 * terminated, and nothing past n bytes is written. */
Test(jsondoc, path_at_small_destination)
{
	static const char doc[] = "{\"network_policy\":{\"allowed_domains\":[1,2,";
	const char *full = "network_policy.allowed_domains[2]";
	struct {
		char dst[10];
		char canary[16];
	} b;
	size_t n, k;

	for (n = 1; n <= sizeof(b.dst); n++) {
		memset(&b, 0x5a, sizeof(b));
		jsondoc_path_at(doc, sizeof(doc) - 1, sizeof(doc) - 1, b.dst, n);
		cr_expect_lt(strnlen(b.dst, n), n, "n %zu: not terminated", n);
		cr_expect_eq(strncmp(b.dst, full, strlen(b.dst)), 0, "n %zu: \"%s\"", n, b.dst);
		for (k = n; k < sizeof(b); k++)
			cr_expect_eq(((unsigned char *)&b)[k], 0x5a, "n %zu: byte %zu written", n,
			             k);
	}
}

/* --- path builders ------------------------------------------------------ */

Test(jsondoc, path_push)
{
	char p[ERR_PARAM_MAX] = "";
	size_t a, b, c, d;

	a = jsondoc_path_push_key(p, sizeof(p), "skills");
	cr_expect_eq(a, 0);
	cr_expect_str_eq(p, "skills");
	b = jsondoc_path_push_index(p, sizeof(p), 1);
	cr_expect_eq(b, 6);
	cr_expect_str_eq(p, "skills[1]");
	c = jsondoc_path_push_key(p, sizeof(p), "source");
	cr_expect_eq(c, 9);
	d = jsondoc_path_push_key(p, sizeof(p), "data");
	cr_expect_str_eq(p, "skills[1].source.data");

	/* Cutting back at the returned length undoes each push. */
	p[d] = '\0';
	cr_expect_str_eq(p, "skills[1].source");
	p[c] = '\0';
	cr_expect_str_eq(p, "skills[1]");
	p[b] = '\0';
	cr_expect_str_eq(p, "skills");
	p[a] = '\0';
	cr_expect_str_eq(p, "");

	/* An index at the top level, and the largest one. */
	jsondoc_path_push_index(p, sizeof(p), 0);
	cr_expect_str_eq(p, "[0]");
	jsondoc_path_push_key(p, sizeof(p), "k");
	cr_expect_str_eq(p, "[0].k");
	p[0] = '\0';
	jsondoc_path_push_index(p, sizeof(p), SIZE_MAX);
	cr_expect_str_eq(p, "[18446744073709551615]");
}

/* A key that does not fit is left out whole (never cut, which could split a
 * UTF-8 sequence); an index is cut but stays terminated within n bytes. */
Test(jsondoc, path_push_bounded)
{
	struct {
		char dst[8];
		char canary[16];
	} b;
	size_t old, i;

	memset(&b, 0x5a, sizeof(b));
	strcpy(b.dst, "abcdef");
	old = jsondoc_path_push_key(b.dst, sizeof(b.dst), "ghijk");
	cr_expect_eq(old, 6);
	cr_expect_str_eq(b.dst, "abcdef");
	old = jsondoc_path_push_key(b.dst, sizeof(b.dst), "x");
	cr_expect_eq(old, 6);
	cr_expect_str_eq(b.dst, "abcdef");
	b.dst[4] = '\0';
	old = jsondoc_path_push_key(b.dst, sizeof(b.dst), "xy");
	cr_expect_eq(old, 4);
	cr_expect_str_eq(b.dst, "abcd.xy");
	b.dst[4] = '\0';
	old = jsondoc_path_push_index(b.dst, sizeof(b.dst), 123);
	cr_expect_eq(old, 4);
	cr_expect_str_eq(b.dst, "abcd");
	old = jsondoc_path_push_index(b.dst, sizeof(b.dst), 1);
	cr_expect_str_eq(b.dst, "abcd[1]");
	for (i = 0; i < sizeof(b.canary); i++)
		cr_expect_eq(b.canary[i], 0x5a, "canary byte %zu", i);
}

/* --- jsondoc_parse ------------------------------------------------------ */

/* Only len bytes are read: what follows them does not count, and a body
 * cut short of them is incomplete. */
Test(jsondoc, parse_reads_len_bytes)
{
	static const char doc[] = "{\"name\":\"c\"}garbage";
	struct err e;
	json_t *v;

	err_clear(&e);
	v = jsondoc_parse(doc, 12, &e);
	cr_assert_not_null(v, "%s", e.message);
	cr_expect(json_is_object(v));
	cr_expect_str_eq(json_string_value(json_object_get(v, "name")), "c");
	json_decref(v);

	v = jsondoc_parse(doc, 11, &e);
	cr_expect_null(v);
	cr_expect_eq(e.status, 400);
	cr_expect_str_eq(e.code, "invalid_json");
}

/* What it accepts is exactly what jansson reads. */
Test(jsondoc, parse_matches_jansson)
{
	static const char doc[] =
	        "{\"name\":\"My Container\",\"memory_limit\":\"4g\",\"skills\":[{\"type\":"
	        "\"skill_reference\",\"skill_id\":\"openai-spreadsheets\",\"version\":\"latest\"}],"
	        "\"expires_after\":{\"anchor\":\"last_active_at\",\"minutes\":20},"
	        "\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":[\"a.com\"]}}";
	struct err e;
	json_t *got, *want;

	err_clear(&e);
	got = jsondoc_parse(doc, sizeof(doc) - 1, &e);
	want = json_loads(doc, 0, NULL);
	cr_assert_not_null(got, "%s", e.message);
	cr_assert_not_null(want);
	cr_expect(json_equal(got, want));
	json_decref(got);
	json_decref(want);
}

/* A small deterministic generator, so a failure names a reproducible
 * iteration. */
static uint64_t rng_state;

static uint32_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static size_t
rng_below(size_t n)
{
	return n ? rng() % n : 0;
}

struct seed {
	char name[256];
	char *buf;
	size_t len;
};

static size_t
load_seeds(const char *sub, struct seed *s, size_t max)
{
	char dir[1024], path[1400];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", data_dir(), sub);
	d = opendir(dir);
	cr_assert_not_null(d, "cannot open %s (set GW_DATA to the tests/data directory)", dir);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		FILE *f;
		long sz;

		if (l < 5 || strcmp(de->d_name + l - 5, ".json") != 0)
			continue;
		cr_assert_lt(n, max, "too many seed bodies");
		snprintf(s[n].name, sizeof(s[n].name), "%s", de->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "rb");
		cr_assert_not_null(f, "cannot open %s", path);
		cr_assert_eq(fseek(f, 0, SEEK_END), 0);
		sz = ftell(f);
		cr_assert_geq(sz, 0);
		rewind(f);
		s[n].buf = malloc((size_t)sz + 1);
		cr_assert_not_null(s[n].buf);
		cr_assert_eq(fread(s[n].buf, 1, (size_t)sz, f), (size_t)sz);
		fclose(f);
		s[n].len = (size_t)sz;
		n++;
	}
	closedir(d);
	return n;
}

static const char structural[] = "{}[]:,\"\\ 0-eE.tfn\x00\xff\xc3";

/*
 * Applies one to three random edits to a copy of seed (truncation, byte
 * replacement, deletion, insertion of a structural or random byte, a piece
 * of the body copied elsewhere) and returns it in a new exactly-sized
 * buffer.
 */
static char *
mutate(const struct seed *sd, size_t *len)
{
	char *b = malloc(sd->len + 3 * PIECE_MAX);
	size_t n = sd->len, e, edits = 1 + rng_below(3), at, i;
	char *out;

	cr_assert_not_null(b);
	memcpy(b, sd->buf, n);
	for (e = 0; e < edits && n > 0; e++) {
		char c = rng_below(2) ? structural[rng_below(sizeof(structural) - 1)]
		                      : (char)rng_below(256);

		at = rng_below(n);
		switch (rng_below(5)) {
		case 0: /* truncate */
			n = at;
			break;
		case 1: /* replace */
			b[at] = c;
			break;
		case 2: /* delete */
			memmove(b + at, b + at + 1, n - at - 1);
			n--;
			break;
		case 3: { /* copy a piece elsewhere, which can duplicate members */
			size_t from = rng_below(n), k = 1 + rng_below(PIECE_MAX);
			char piece[PIECE_MAX];

			if (k > n - from)
				k = n - from;
			/* Copying the secret's own text into a key would make it a
			 * key, which param rightly names; every other piece (seed
			 * text is lower case but for the marker and names) is fair. */
			for (i = 0; i < k; i++)
				if (b[from + i] >= 'A' && b[from + i] <= 'Z')
					k = i;
			if (k == 0)
				break;
			memcpy(piece, b + from, k);
			memmove(b + at + k, b + at, n - at);
			memcpy(b + at, piece, k);
			n += k;
			break;
		}
		default: /* insert */
			memmove(b + at + 1, b + at, n - at);
			b[at] = c;
			n++;
			break;
		}
	}
	out = copy_exact(b, n);
	free(b);
	*len = n;
	return out;
}

static int
contains(const char *buf, size_t len, const char *needle)
{
	size_t k = strlen(needle), i;

	for (i = 0; i + k <= len; i++)
		if (memcmp(buf + i, needle, k) == 0)
			return 1;
	return 0;
}

static int
utf8_ok(const char *s)
{
	json_t *j = json_string(s);
	int ok = j != NULL;

	json_decref(j);
	return ok;
}

/*
 * 1000 broken copies of bodies that carry a secret: jsondoc_parse never
 * crashes (ASan/UBSan would say), returns an object or a 400 whose message
 * and param hold no part of the secret and are valid UTF-8.
 */
Test(jsondoc, broken_bodies_never_echo_secrets)
{
	struct seed seeds[SEEDS_MAX];
	size_t nseeds, i, accepted = 0;

	nseeds = load_seeds("jsondoc", seeds, SEEDS_MAX);
	cr_assert_geq(nseeds, 3, "need seed bodies in %s/jsondoc", data_dir());
	for (i = 0; i < nseeds; i++) {
		struct err e;
		json_t *v;

		/* The seeds themselves are valid and carry the marker. */
		err_clear(&e);
		v = jsondoc_parse(seeds[i].buf, seeds[i].len, &e);
		cr_assert_not_null(v, "seed %s refused: %s", seeds[i].name, e.message);
		json_decref(v);
		cr_assert(contains(seeds[i].buf, seeds[i].len, MARKER), "seed %s has no marker",
		          seeds[i].name);
	}

	rng_state = 0x9e3779b97f4a7c15u;
	for (i = 0; i < 1000; i++) {
		const struct seed *sd = &seeds[rng_below(nseeds)];
		size_t len;
		char *b = mutate(sd, &len);
		struct err e;
		json_t *v;

		err_clear(&e);
		v = jsondoc_parse(b, len, &e);
		if (v != NULL) {
			cr_expect(json_is_object(v), "iteration %zu: not an object", i);
			json_decref(v);
			accepted++;
		} else {
			cr_expect_eq(e.status, 400, "iteration %zu (%s, %zu bytes): status %d", i,
			             sd->name, len, e.status);
			cr_expect(e.type && strcmp(e.type, ERR_INVALID) == 0, "iteration %zu", i);
			cr_expect(e.code != NULL, "iteration %zu: no code", i);
			cr_expect_neq(e.message[0], '\0', "iteration %zu: empty message", i);
			cr_expect_null(strstr(e.message, MARKER_PART),
			               "iteration %zu (%s): message echoes the secret: %s", i,
			               sd->name, e.message);
			cr_expect_null(strstr(e.param, MARKER_PART),
			               "iteration %zu (%s): param echoes the secret: %s", i,
			               sd->name, e.param);
			cr_expect(utf8_ok(e.message), "iteration %zu: message not UTF-8", i);
			cr_expect(utf8_ok(e.param), "iteration %zu: param not UTF-8", i);
		}
		free(b);
	}
	/* Most edits break the body; the run is not vacuous. */
	cr_expect_lt(accepted, 500, "%zu of 1000 broken bodies accepted", accepted);
	cr_log_info("%zu of 1000 broken bodies still parsed", accepted);
	for (i = 0; i < nseeds; i++)
		free(seeds[i].buf);
}

/* Every prefix of every seed: an incomplete body is a 400, never a crash
 * or an over-read. */
Test(jsondoc, every_prefix)
{
	struct seed seeds[SEEDS_MAX];
	size_t nseeds, i, n;

	nseeds = load_seeds("jsondoc", seeds, SEEDS_MAX);
	for (i = 0; i < nseeds; i++) {
		for (n = 0; n < seeds[i].len; n++) {
			char *b = copy_exact(seeds[i].buf, n);
			struct err e;
			json_t *v;

			err_clear(&e);
			v = jsondoc_parse(b, n, &e);
			/* Only trailing whitespace may be cut off a valid body. */
			if (v != NULL) {
				size_t k;

				for (k = n; k < seeds[i].len; k++)
					cr_expect(strchr(" \t\r\n", seeds[i].buf[k]) != NULL,
					          "%s: prefix of %zu bytes accepted", seeds[i].name,
					          n);
				json_decref(v);
			} else {
				cr_expect_eq(e.status, 400, "%s: %zu bytes", seeds[i].name, n);
				cr_expect_null(strstr(e.message, MARKER_PART));
				cr_expect_null(strstr(e.param, MARKER_PART));
			}
			free(b);
		}
		free(seeds[i].buf);
	}
}

/* --- allocation failure ------------------------------------------------- */

static const char alloc_doc[] =
        "{\"name\":\"My Container\",\"memory_limit\":\"4g\",\"network_policy\":{\"type\":"
        "\"allowlist\",\"allowed_domains\":[\"a.com\"],\"domain_secrets\":[{\"domain\":\"a.com\","
        "\"name\":\"T\",\"value\":\"" MARKER "\"}]}}";

/*
 * Parses alloc_doc with the nth allocation failing (and every later one if
 * sticky). Returns 1 once the parse succeeds; otherwise checks the refusal
 * and leaves it in e.
 */
static int
parse_failing(unsigned long nth, int sticky, struct err *e)
{
	json_t *v;

	err_clear(e);
	secmem_fail_after(nth, sticky);
	v = jsondoc_parse(alloc_doc, sizeof(alloc_doc) - 1, e);
	secmem_fail_after(0, 0);
	if (v != NULL) {
		cr_expect(json_is_object(v));
		json_decref(v);
		return 1;
	}
	cr_expect(e->status == 503, "nth %lu: status %d", nth, e->status);
	cr_expect_neq(e->message[0], '\0', "nth %lu: empty message", nth);
	cr_expect_null(strstr(e->message, MARKER_PART), "nth %lu: %s", nth, e->message);
	cr_expect_null(strstr(e->param, MARKER_PART), "nth %lu: %s", nth, e->param);
	return 0;
}

/* Once allocations start failing they all fail: jsondoc_parse returns NULL
 * with an error, or (past the last allocation) the document; nothing leaks
 * (LeakSanitizer) or crashes. */
Test(jsondoc, allocation_failure_is_survived)
{
	unsigned long nth;
	struct err e;

	for (nth = 1; nth < 1000; nth++)
		if (parse_failing(nth, 1, &e))
			break;
	cr_expect_lt(nth, 1000, "never parsed");
	cr_expect_gt(nth, 1, "no allocation was made");
}

/*
 * jansson 2.14 can corrupt its lexer when one allocation fails and later
 * ones succeed (akheron/jansson issue #362: a heap write past the buffer
 * for the 12th allocation of alloc_doc), so the gateway's jansson
 * allocator stops the process on a real allocation failure rather than
 * hand jansson a NULL. A non-sticky injected failure is such a failure.
 */
Test(jsondoc, single_allocation_failure_stops_the_process, .signal = SIGABRT)
{
	struct err e;

	(void)parse_failing(12, 0, &e);
}

/* An allocation failure is the gateway's trouble, never the client's:
 * 503 out_of_memory, not a 400 for a body that was fine. */
Test(jsondoc, allocation_failure_is_not_a_client_error)
{
	unsigned long nth, blamed = 0;
	struct err e;

	for (nth = 1; nth < 1000; nth++) {
		if (parse_failing(nth, 1, &e))
			break;
		cr_expect_str_eq(e.code, "out_of_memory", "allocation %lu", nth);
		if (e.status != 503)
			blamed++;
	}
	cr_expect_gt(nth, 1, "no allocation was made");
	cr_expect_eq(blamed, 0, "%lu allocation failures refused as client errors", blamed);
}

/* jsondoc has its own parser (for speed); jansson's is the reference. Both
 * must accept the same bodies and read them as the same values: every seed
 * here and in the adversarial corpus, and 20,000 broken copies of them. */
static void
same_reading(const char *b, size_t len, const char *what, size_t i)
{
	json_error_t je;
	struct err e;
	json_t *got, *want;

	err_clear(&e);
	got = jsondoc_parse(b, len, &e);
	want = json_loadb(b, len, JSON_REJECT_DUPLICATES, &je);
	/* An array jsondoc refuses by rule. jansson also skips a NUL byte
	 * right after a number ({"a":4<NUL>} reads as {"a":4}); a NUL outside a
	 * string is not JSON, and jsondoc refuses it. */
	if (want && (!json_is_object(want) || memchr(b, '\0', len) != NULL)) {
		json_decref(want);
		want = NULL;
	}
	if (got == NULL && want != NULL)
		cr_expect(0, "%s %zu: jsondoc refused what jansson reads: %s", what, i, e.message);
	else if (got != NULL && want == NULL)
		cr_expect(0, "%s %zu: jsondoc read what jansson refuses (%s)", what, i, je.text);
	else if (got != NULL)
		cr_expect(json_equal(got, want), "%s %zu: read differently", what, i);
	json_decref(got);
	json_decref(want);
}

Test(jsondoc, reads_what_jansson_reads)
{
	static struct seed seeds[256];
	size_t n, i;

	n = load_seeds("jsondoc", seeds, 256);
	n += load_seeds("adversarial/json", seeds + n, 256 - n);
	cr_assert_geq(n, 50);
	for (i = 0; i < n; i++)
		same_reading(seeds[i].buf, seeds[i].len, seeds[i].name, 0);
	rng_state = 0x243f6a8885a308d3u;
	for (i = 0; i < 20000; i++) {
		const struct seed *sd = &seeds[rng_below(n)];
		size_t len;
		char *b;

		if (sd->len == 0)
			continue;
		b = mutate(sd, &len);
		same_reading(b, len, sd->name, i);
		free(b);
	}
	for (i = 0; i < n; i++)
		free(seeds[i].buf);
}

/* The plain run stops exactly at the first byte a string cannot hold as it
 * is, wherever it falls in the 16- and 8-byte steps, and never reads past n. */
Test(jsondoc, plain_run_stops_at_the_first_special_byte)
{
	static const unsigned char special[] = {'"', '\\', 0x00, 0x1f, 0x80, 0xc3, 0xff, '\n'};
	static const unsigned char plainb[] = {' ', '!', '#', '[', ']', '~', 0x7f, 'a', '0'};
	char buf[48];
	size_t n, at, k;

	for (n = 0; n <= 40; n++) {
		for (k = 0; k < n; k++)
			buf[k] = (char)plainb[k % sizeof(plainb)];
		cr_assert_eq(jsondoc_plain_run(buf, n), n, "all plain, %zu bytes", n);
		for (at = 0; at < n; at++)
			for (k = 0; k < sizeof(special); k++) {
				char *copy = malloc(n); /* exact: ASan sees any over-read */
				size_t got;

				memcpy(copy, buf, n);
				copy[at] = (char)special[k];
				got = jsondoc_plain_run(copy, n);
				cr_expect_eq(got, at, "%zu bytes, 0x%02x at %zu: run %zu", n,
				             special[k], at, got);
				free(copy);
			}
	}
}
