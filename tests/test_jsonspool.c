/*
 * Tests for gateway/lib/jsonspool.c (test_spool.c has the spool), and for the
 * spooled strings' way through jsondoc (stand-ins) and jsonbuf (holes).
 *
 * The property that matters: a body read through jsonspool and parsed with
 * jsondoc_parse_spooled is the document jsondoc_parse makes of the whole
 * body, or the same error (status, code, param, message). It is checked on
 * every body of the schema and jsondoc case files and on thousands of
 * broken copies of them, fed whole, a byte at a time and in random pieces,
 * with every string of the names below spooled from a few bytes on, and a
 * spool that goes to its file after a few bytes. The document is compared
 * value by value (a stand-in's length, code points and last bytes against
 * the string it stands for), and its text with the spool's bytes put back
 * in the holes must parse to the same document.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonbuf.h"
#include "lib/jsondoc.h"
#include "lib/jsonspool.h"
#include "lib/secmem.h"
#include "lib/spool.h"

#define BODIES_MAX 600

static const char *const names[] = {"data", "value", "name", "description", "skill_id", NULL};

static void
suite_init(void)
{
	secmem_init();
}

TestSuite(jsonspool, .init = suite_init);

static const char *
data_dir(void)
{
	const char *d = getenv("GW_DATA");

	return d && *d ? d : "tests/data";
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

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

struct body {
	char *buf;
	size_t len;
};

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long sz;
	char *b;

	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	rewind(f);
	b = malloc((size_t)sz + 1);
	cr_assert_not_null(b);
	cr_assert_eq(fread(b, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	b[sz] = '\0';
	*len = (size_t)sz;
	return b;
}

/* The case files' bodies: tests/data/schema wraps each in {"body": ...},
 * tests/data/jsondoc holds them as they are. */
static size_t
load(struct body *out, size_t max)
{
	static const char *const dirs[] = {"schema", "jsondoc"};
	char dir[1024], path[1400];
	size_t n = 0, k, len;

	for (k = 0; k < 2; k++) {
		struct dirent *de;
		DIR *d;

		snprintf(dir, sizeof(dir), "%s/%s", data_dir(), dirs[k]);
		d = opendir(dir);
		cr_assert_not_null(d, "cannot open %s", dir);
		while ((de = readdir(d)) != NULL && n < max) {
			size_t l = strlen(de->d_name);
			char *text;

			if (l < 5 || strcmp(de->d_name + l - 5, ".json") != 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			text = read_file(path, &len);
			if (k == 0) {
				json_t *c = json_loads(text, 0, NULL);
				json_t *b = json_object_get(c, "body");

				free(text);
				if (!json_is_string(b)) {
					json_decref(c);
					continue;
				}
				len = json_string_length(b);
				text = malloc(len + 1);
				memcpy(text, json_string_value(b), len);
				json_decref(c);
			}
			out[n].buf = text;
			out[n].len = len;
			n++;
		}
		closedir(d);
	}
	return n;
}

static size_t
code_points(const char *s, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

/* got (with stand-ins) is want, value by value. */
static void
same_value(const json_t *got, const json_t *want, int *spooled)
{
	struct jsondoc_spooled s;
	const char *key;
	json_t *v;
	size_t i;

	if (jsondoc_spooled_of(got, &s)) {
		size_t n = json_string_length(want);
		const char *w = json_string_value(want);

		(*spooled)++;
		cr_assert(json_is_string(want));
		cr_assert_eq(s.len, n);
		cr_assert_eq(s.chars, code_points(w, n));
		if (n >= 2)
			cr_assert(s.tail[0] == (unsigned char)w[n - 2]);
		if (n >= 1)
			cr_assert(s.tail[1] == (unsigned char)w[n - 1]);
		return;
	}
	cr_assert_eq(json_typeof(got), json_typeof(want));
	if (json_is_object(want)) {
		cr_assert_eq(json_object_size(got), json_object_size(want));
		json_object_foreach((json_t *)(uintptr_t)want, key, v)
		{
			cr_assert_not_null(json_object_get(got, key));
			same_value(json_object_get(got, key), v, spooled);
		}
	} else if (json_is_array(want)) {
		cr_assert_eq(json_array_size(got), json_array_size(want));
		json_array_foreach(want, i, v) same_value(json_array_get(got, i), v, spooled);
	} else {
		cr_assert(json_equal(got, want));
	}
}

/* The dump of got with the spool's bytes in its holes. */
static char *
spliced(const json_t *got, const struct spool *sp, size_t *len)
{
	struct jsonbuf_hole *holes;
	size_t nholes, tlen, k, at = 0, o = 0, total;
	char *text = jsonbuf_dump_spooled(got, 64, 1 << 26, &tlen, &holes, &nholes);
	char *out;

	cr_assert_not_null(text);
	if (nholes > 0)
		cr_assert_null(jsonbuf_dump(got, 64, 1 << 26, &(size_t){0}),
		               "a stand-in must not be written as a string");
	total = tlen;
	for (k = 0; k < nholes; k++)
		total += holes[k].len;
	out = malloc(total + 1);
	for (k = 0; k < nholes; k++) {
		uint64_t off = holes[k].off, left = holes[k].len;

		memcpy(out + o, text + at, holes[k].at - at);
		o += holes[k].at - at;
		at = holes[k].at;
		while (left > 0) {
			long r = spool_read(sp, off, out + o, left);

			cr_assert_gt(r, 0);
			o += (size_t)r;
			off += (uint64_t)r;
			left -= (uint64_t)r;
		}
	}
	memcpy(out + o, text + at, tlen - at);
	o += tlen - at;
	cr_assert_eq(o, total);
	secmem_free(text);
	free(holes);
	*len = total;
	return out;
}

/* mode 0: whole; 1: a byte at a time; 2: random pieces. */
static int
check_body(const char *body, size_t len, size_t min, int mode, const char *what)
{
	struct err e1, e2;
	struct spool *sp = spool_new("/tmp", 7, UINT64_MAX);
	struct jsonspool *j = jsonspool_new(sp, names, min, SIZE_MAX);
	char *copy = malloc(len ? len : 1);
	const struct jsondoc_ref *refs;
	const char *text;
	size_t i = 0, tlen, nrefs;
	json_t *want, *got;
	int spooled = 0;

	memcpy(copy, body, len);
	if (getenv("JSONSPOOL_DEBUG") && strstr(what, getenv("JSONSPOOL_DEBUG")))
		fprintf(stderr, "%s (min %zu): %.*s\n", what, min, (int)len, body);
	err_clear(&e1);
	err_clear(&e2);
	want = jsondoc_parse(copy, len, &e1);
	while (i < len) {
		size_t k = mode == 0 ? len : mode == 1 ? 1 : 1 + rng_below(9);

		if (k > len - i)
			k = len - i;
		cr_assert_eq(jsonspool_feed(j, body + i, k, &e2), 0, "%s: %s", what, e2.message);
		i += k;
	}
	jsonspool_finish(j);
	text = jsonspool_text(j, &tlen);
	refs = jsonspool_refs(j, &nrefs);
	got = jsondoc_parse_spooled(text, tlen, refs, nrefs, &e2);
	if (want == NULL) {
		cr_assert_null(got, "%s: spooled parse accepted what jsondoc_parse refused (%s)",
		               what, e1.message);
		cr_assert_eq(e2.status, e1.status, "%s", what);
		cr_assert_str_eq(e2.code, e1.code, "%s", what);
		cr_assert_str_eq(e2.param, e1.param, "%s: %s; spooled: %s", what, e1.message,
		                 e2.message);
		cr_assert_str_eq(e2.message, e1.message, "%s", what);
	} else {
		char *full;
		size_t flen;
		json_t *again;

		cr_assert_not_null(got, "%s: spooled parse refused (%s)", what, e2.message);
		same_value(got, want, &spooled);
		full = spliced(got, sp, &flen);
		again = jsondoc_parse(full, flen, &e2);
		cr_assert_not_null(again, "%s: spliced text does not parse (%s)", what, e2.message);
		cr_assert(json_equal(again, want), "%s: spliced text is another document", what);
		json_decref(again);
		free(full);
	}
	json_decref(want);
	json_decref(got);
	jsonspool_free(j);
	spool_free(sp);
	free(copy);
	return spooled;
}

Test(jsonspool, case_files_parse_alike_whole_bytewise_and_in_pieces)
{
	static struct body b[BODIES_MAX];
	size_t n = load(b, BODIES_MAX), i, spooled = 0;
	char what[64];
	int mode;

	cr_assert_geq(n, 300, "found only %zu case bodies", n);
	for (i = 0; i < n; i++)
		for (mode = 0; mode < 3; mode++) {
			snprintf(what, sizeof(what), "body %zu mode %d", i, mode);
			spooled += (size_t)check_body(b[i].buf, b[i].len, (size_t)mode * 2, mode,
			                              what);
		}
	/* Not vacuous: many strings went through the spool. */
	cr_assert_gt(spooled, 500, "only %zu strings were spooled", spooled);
	for (i = 0; i < n; i++)
		free(b[i].buf);
}

/* Bytes that change how a string reads: quotes, escapes and their
 * letters, surrogates, UTF-8 leads and continuations, control bytes. */
static const char *const pieces[] = {
        "\"",      "\\",        "\\u",  "\\ud83d", "\\ude00", "\\ud83d\\ude00",
        "\\u0000", "\\u00e9",   "\\n",  "\\x",     "\\uZZZZ", "\xc3",
        "\xa9",    "\xe2\x82",  "\xf0", "\xff",    "\n",      "\x01",
        ":",       "\"data\":", ",",    "}",       "]",       "\\\\",
};

static char *
mutate(const struct body *sd, size_t *len)
{
	size_t n = sd->len, edits = 1 + rng_below(3), e, at;
	char *b = malloc(n + 3 * 16 + 1);

	memcpy(b, sd->buf, n);
	for (e = 0; e < edits && n > 0; e++) {
		const char *p = pieces[rng_below(sizeof(pieces) / sizeof(pieces[0]))];
		size_t k = strlen(p);

		at = rng_below(n);
		switch (rng_below(4)) {
		case 0:
			n = at;
			break;
		case 1:
			memmove(b + at, b + at + 1, n - at - 1);
			n--;
			break;
		default:
			memmove(b + at + k, b + at, n - at);
			memcpy(b + at, p, k);
			n += k;
			break;
		}
	}
	*len = n;
	return b;
}

Test(jsonspool, broken_bodies_fail_alike)
{
	static struct body b[BODIES_MAX];
	size_t n = load(b, BODIES_MAX), i, len;
	char what[64];

	for (i = 0; i < 6000; i++) {
		const struct body *sd = &b[rng_below(n)];
		char *m = mutate(sd, &len);

		snprintf(what, sizeof(what), "mutation %zu", i);
		check_body(m, len, rng_below(4), (int)rng_below(3), what);
		free(m);
	}
	for (i = 0; i < n; i++)
		free(b[i].buf);
}

/* A large string goes to the spool's file, not memory, and reads back. */
Test(jsonspool, a_large_string_is_spooled_not_held)
{
	static const char head[] = "{\"skills\":[{\"source\":{\"data\":\"";
	static const char tail[] = "\"}}]}";
	size_t big = 4 << 20, tlen, nrefs, i;
	struct spool *sp = spool_new("/tmp", 64 * 1024, UINT64_MAX);
	struct jsonspool *j = jsonspool_new(sp, names, 1024, SIZE_MAX);
	const struct jsondoc_ref *refs;
	char chunk[65536];
	struct err e;
	json_t *doc;
	struct jsondoc_spooled s;

	memset(chunk, 'A', sizeof(chunk));
	cr_assert_eq(jsonspool_feed(j, head, sizeof(head) - 1, &e), 0);
	for (i = 0; i < big; i += sizeof(chunk))
		cr_assert_eq(jsonspool_feed(j, chunk, sizeof(chunk), &e), 0);
	cr_assert_eq(jsonspool_feed(j, "==", 2, &e), 0);
	cr_assert_eq(jsonspool_feed(j, tail, sizeof(tail) - 1, &e), 0);
	jsonspool_finish(j);
	jsonspool_text(j, &tlen);
	refs = jsonspool_refs(j, &nrefs);
	cr_assert_lt(tlen, 64, "the text kept %zu bytes", tlen);
	cr_assert_eq(nrefs, 1);
	cr_assert_eq(spool_size(sp), big + 2);
	doc = jsondoc_parse_spooled(jsonspool_text(j, &tlen), tlen, refs, nrefs, &e);
	cr_assert_not_null(doc, "%s", e.message);
	cr_assert(jsondoc_spooled_of(
	        json_object_get(json_object_get(json_array_get(json_object_get(doc, "skills"), 0),
	                                        "source"),
	                        "data"),
	        &s));
	cr_assert_eq(s.len, big + 2);
	cr_assert_eq(s.chars, big + 2);
	cr_assert(s.tail[0] == '=' && s.tail[1] == '=');
	cr_assert_eq(spool_read(sp, s.off + big, chunk, 8), 2);
	cr_assert(memcmp(chunk, "==", 2) == 0);
	json_decref(doc);
	jsonspool_free(j);
	spool_free(sp);
}

/* A bad byte deep in a spooled string is found where it is, by body
 * offset and path, as the whole-body parser finds it. */
Test(jsonspool, a_bad_byte_in_a_large_string_is_named_by_offset_and_path)
{
	size_t n = 300000, i;
	char *body = malloc(n + 64);
	struct err e1, e2;
	json_t *doc;
	char what[32];

	i = (size_t)sprintf(body, "{\"a\":[1,{\"data\":\"");
	memset(body + i, 'x', n);
	body[i + 200000] = '\xc3';
	i += n;
	i += (size_t)sprintf(body + i, "\"}]}");
	check_body(body, i, 100, 2, "bad utf-8");
	err_clear(&e1);
	doc = jsondoc_parse(body, i, &e1);
	cr_assert_null(doc);
	cr_assert_str_eq(e1.param, "a[1].data");
	snprintf(what, sizeof(what), "byte %zu", (size_t)17 + 200000);
	cr_assert(strstr(e1.message, what), "%s", e1.message);
	(void)e2;
	free(body);
}

/* What is not set aside is bounded: past max_text, feeding fails with a
 * 413 and reads no further, whatever holds the bytes (here a long value
 * of a key that is not named). */
Test(jsonspool, the_text_kept_in_memory_is_bounded)
{
	static const char head[] = "{\"other\":\"";
	struct spool *sp = spool_new("/tmp", 1024, UINT64_MAX);
	struct jsonspool *j = jsonspool_new(sp, names, 16, 4096);
	char chunk[1000];
	struct err e;
	size_t len;
	int i, rc = 0;

	memset(chunk, 'a', sizeof(chunk));
	err_clear(&e);
	cr_assert_eq(jsonspool_feed(j, head, sizeof(head) - 1, &e), 0);
	for (i = 0; i < 5 && rc == 0; i++)
		rc = jsonspool_feed(j, chunk, sizeof(chunk), &e);
	cr_assert_eq(rc, -1);
	cr_assert_eq(e.status, 413);
	cr_assert_str_eq(e.code, "request_too_large");
	jsonspool_text(j, &len);
	cr_assert_leq(len, 4096);
	jsonspool_free(j);
	spool_free(sp);
}
