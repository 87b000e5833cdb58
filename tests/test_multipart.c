/*
 * Tests for gateway/multipart.c.
 *
 * Most cases are data: tests/data/multipart/cases.txt lists raw bodies with
 * their Content-Type and what must come of them, and content_type.txt lists
 * Content-Type values; the headers of both files say the format. Every body
 * case is fed whole, byte by byte, at every two-way split and in random
 * pieces, and must give the same result, error and parts each time. The
 * tests here add what is easier to build in code: the header limit at its
 * edge, a 200 MB body, and the API's small promises.
 *
 * Every piece is copied into an exactly-sized heap buffer before it is fed,
 * so that AddressSanitizer catches any read past the length given.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/multipart.h"
#include "lib/hex.h"

#define MANIFEST_MAX   256
#define LINE_MAX_LEN   2048
#define ALLOWED_MAX    8
#define FILENAME_MAX_T 512
#define SPLIT_SEEDS    20
#define CUTS_ALL_MAX   4096 /* bodies up to this size are cut at every byte */

static const char *const default_allowed[] = {"file", "file_id", NULL};

struct mcase {
	char name[128];
	char expect[16];
	char opts[LINE_MAX_LEN]; /* KEY=VALUE fields, tab-separated, escapes kept */
};

static const char *
data_dir(void)
{
	const char *d = getenv("GW_DATA");

	return d && *d ? d : "tests/data";
}

/* Reads tests/data/multipart/<name> into an exactly-sized buffer (one byte
 * at least, so that empty files work). */
static char *
slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/multipart/%s", data_dir(), name);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s (set GW_DATA to the tests/data directory)", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	cr_assert(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n, "short read on %s", path);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static char *
dup_bytes(const char *s, size_t n)
{
	char *p = malloc(n ? n : 1);

	cr_assert_not_null(p);
	if (n)
		memcpy(p, s, n);
	return p;
}

/* Decodes the C escapes \" \\ \t \r \n \xNN of s[0..n) into out (NUL
 * added); returns the decoded length. */
static size_t
unescape(const char *s, size_t n, char *out, size_t cap)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		char c = s[i];

		cr_assert(o + 1 < cap, "escaped value too long: %.*s", (int)n, s);
		if (c == '\\') {
			cr_assert(i + 1 < n, "dangling backslash in %.*s", (int)n, s);
			c = s[++i];
			if (c == 't') {
				c = '\t';
			} else if (c == 'r') {
				c = '\r';
			} else if (c == 'n') {
				c = '\n';
			} else if (c == 'x') {
				cr_assert(i + 2 < n && hex_digit(s[i + 1]) >= 0 &&
				                  hex_digit(s[i + 2]) >= 0,
				          "bad \\x in %.*s", (int)n, s);
				c = (char)(hex_digit(s[i + 1]) << 4 | hex_digit(s[i + 2]));
				i += 2;
			} else {
				cr_assert(c == '"' || c == '\\', "unknown escape in %.*s", (int)n,
				          s);
			}
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return o;
}

/* Splits line at its tabs in place; returns the number of fields. */
static size_t
split_tabs(char *line, char **fields, size_t max)
{
	size_t n = 0;
	char *p = line;

	for (;;) {
		cr_assert(n < max, "too many fields: %s", line);
		fields[n++] = p;
		p = strchr(p, '\t');
		if (p == NULL)
			return n;
		*p++ = '\0';
	}
}

/* Reads the non-comment lines of tests/data/multipart/<file> into lines. */
static size_t
load_lines(const char *file, char (*lines)[LINE_MAX_LEN], size_t max)
{
	char path[512], line[LINE_MAX_LEN];
	FILE *f;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/multipart/%s", data_dir(), file);
	f = fopen(path, "r");
	cr_assert_not_null(f, "cannot open %s (set GW_DATA to the tests/data directory)", path);
	while (fgets(line, sizeof(line), f)) {
		cr_assert(strchr(line, '\n') != NULL, "%s: line too long: %.60s", path, line);
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		cr_assert(n < max, "%s has more than %zu lines", path, max);
		strcpy(lines[n++], line);
	}
	fclose(f);
	cr_assert(n > 0, "%s lists nothing", path);
	return n;
}

/* Finds KEY=VALUE among the tab-separated options and decodes VALUE into
 * out; returns its length, or -1 when the key is absent. */
static long
opt(const char *opts, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);
	const char *p = opts;

	while (*p) {
		size_t n = strcspn(p, "\t");

		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=')
			return (long)unescape(p + klen + 1, n - klen - 1, out, cap);
		p += n;
		if (*p == '\t')
			p++;
	}
	return -1;
}

/* A comma-separated list in s, split in place into names (NULL-ended). */
static size_t
split_commas(char *s, const char **names, size_t max)
{
	size_t n = 0;
	char *p = s;

	if (*s == '\0') {
		names[0] = NULL;
		return 0;
	}
	for (;;) {
		cr_assert(n + 1 < max, "list too long: %s", s);
		names[n++] = p;
		p = strchr(p, ',');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	names[n] = NULL;
	return n;
}

/* What came of one body: the result, the error, and each allowed part. */
struct outcome {
	int rc;     /* -1 rejected, 0 incomplete, 1 read to its close delimiter */
	int at_new; /* rejected by multipart_new */
	struct err e;
	size_t nallowed;
	int has[ALLOWED_MAX];
	int has_fn[ALLOWED_MAX];
	char fn[ALLOWED_MAX][FILENAME_MAX_T];
};

enum split { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM, SPLIT_CUT };

static uint32_t
xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static int
same_err(const struct err *a, const struct err *b)
{
	return a->status == b->status && a->type == b->type && a->code == b->code &&
	       strcmp(a->param, b->param) == 0 && strcmp(a->message, b->message) == 0;
}

/*
 * Feeds body to a checker made from ct: whole, byte by byte, in random
 * pieces of 1 to 23 bytes (arg is the seed) or in two at byte arg. Checks
 * the promises of every call on the way: an empty feed changes nothing, and
 * once a feed returns 1 or -1 every later one returns the same.
 */
static void
run(const char *ct, const char *const *allowed, const char *body, size_t len, enum split how,
    uint32_t arg, struct outcome *o)
{
	struct multipart *m;
	struct err e;
	size_t off = 0, i;
	int rc = 0;

	memset(o, 0, sizeof(*o));
	err_clear(&o->e);
	err_clear(&e);
	m = multipart_new(ct, strlen(ct), allowed, &e);
	if (m == NULL) {
		o->rc = -1;
		o->at_new = 1;
		o->e = e;
		return;
	}
	cr_assert_eq(multipart_feed(m, NULL, 0, &e), 0, "an empty first feed must give 0");
	while (off < len) {
		size_t n = len - off;
		char *piece;
		int r;

		if (how == SPLIT_BYTES)
			n = 1;
		else if (how == SPLIT_RANDOM && n > 1)
			n = 1 + xorshift(&arg) % (n < 23 ? n : 23);
		else if (how == SPLIT_CUT && off < arg)
			n = arg - off;
		piece = dup_bytes(body + off, n);
		r = multipart_feed(m, piece, n, &e);
		free(piece);
		off += n;
		if (rc != 0) {
			cr_assert_eq(r, rc, "feed after %d returned %d", rc, r);
			if (rc < 0)
				cr_assert(same_err(&e, &o->e),
				          "the error changed after -1: %s / %s", o->e.message,
				          e.message);
			continue;
		}
		cr_assert(r >= -1 && r <= 1, "feed returned %d", r);
		rc = r;
		if (r < 0)
			o->e = e;
	}
	if (rc != 0) {
		/* Answers are final, even for an empty feed. */
		cr_assert_eq(multipart_feed(m, "--", 2, &e), rc);
		cr_assert_eq(multipart_feed(m, "", 0, &e), rc);
		if (rc < 0)
			cr_assert(same_err(&e, &o->e), "the error changed after -1");
	}
	o->rc = rc;
	for (i = 0; allowed[i]; i++) {
		const char *fn = multipart_filename(m, allowed[i]);

		cr_assert(i < ALLOWED_MAX);
		o->has[i] = multipart_has(m, allowed[i]);
		cr_assert(o->has[i] == 0 || o->has[i] == 1);
		o->has_fn[i] = fn != NULL;
		if (fn) {
			cr_assert(strlen(fn) < FILENAME_MAX_T);
			strcpy(o->fn[i], fn);
		}
	}
	o->nallowed = i;
	cr_assert_eq(multipart_has(m, "no such part"), 0);
	cr_assert_null(multipart_filename(m, "no such part"));
	multipart_free(m);
}

static void
expect_same(const char *name, const char *how, const struct outcome *a, const struct outcome *b)
{
	size_t i;

	cr_expect_eq(b->rc, a->rc, "%s: %s returned %d, whole %d (%s)", name, how, b->rc, a->rc,
	             b->e.message);
	cr_expect(same_err(&a->e, &b->e), "%s: %s error \"%s\" (%s), whole \"%s\" (%s)", name, how,
	          b->e.message, b->e.param, a->e.message, a->e.param);
	for (i = 0; i < a->nallowed; i++) {
		cr_expect_eq(b->has[i], a->has[i], "%s: %s has() differs for part %zu", name, how,
		             i);
		cr_expect(b->has_fn[i] == a->has_fn[i] && strcmp(b->fn[i], a->fn[i]) == 0,
		          "%s: %s filename differs for part %zu", name, how, i);
	}
}

static int
in_list(const char *const *names, const char *s)
{
	for (; *names; names++)
		if (strcmp(*names, s) == 0)
			return 1;
	return 0;
}

static void
check_expected(const struct mcase *mc, const char *const *allowed, const struct outcome *o)
{
	char want[LINE_MAX_LEN], key[160], hasbuf[LINE_MAX_LEN];
	const char *has[ALLOWED_MAX + 1];
	long n;
	size_t i;

	if (strcmp(mc->expect, "ok") == 0 || strcmp(mc->expect, "incomplete") == 0) {
		int rc = strcmp(mc->expect, "ok") == 0;

		cr_expect_eq(o->rc, rc, "%s: returned %d, want %d (%d %s: %s)", mc->name, o->rc, rc,
		             o->e.status, o->e.code ? o->e.code : "", o->e.message);
		cr_assert(opt(mc->opts, "has", hasbuf, sizeof(hasbuf)) >= 0,
		          "%s: ok and incomplete cases need has=", mc->name);
		split_commas(hasbuf, has, ALLOWED_MAX + 1);
		for (i = 0; i < o->nallowed; i++) {
			cr_expect_eq(o->has[i], in_list(has, allowed[i]), "%s: has(\"%s\") is %d",
			             mc->name, allowed[i], o->has[i]);
			snprintf(key, sizeof(key), "fn:%s", allowed[i]);
			n = opt(mc->opts, key, want, sizeof(want));
			if (n < 0)
				cr_expect(!o->has_fn[i],
				          "%s: filename(\"%s\") is \"%s\", want none", mc->name,
				          allowed[i], o->fn[i]);
			else
				cr_expect(o->has_fn[i] && strlen(o->fn[i]) == (size_t)n &&
				                  memcmp(o->fn[i], want, (size_t)n) == 0,
				          "%s: filename(\"%s\") is %s\"%s\", want \"%s\"", mc->name,
				          allowed[i], o->has_fn[i] ? "" : "NULL ", o->fn[i], want);
		}
		for (i = 0; has[i]; i++)
			cr_expect(in_list(allowed, has[i]), "%s: has= names %s, not allowed",
			          mc->name, has[i]);
		return;
	}
	cr_expect_eq(o->rc, -1, "%s: returned %d, want -1", mc->name, o->rc);
	cr_expect_eq(o->e.status, atoi(mc->expect), "%s: status %d, want %s (%s)", mc->name,
	             o->e.status, mc->expect, o->e.message);
	cr_expect(o->at_new == (o->e.status == 415) || o->e.status == 400,
	          "%s: 415 must come from multipart_new", mc->name);
	cr_expect(o->e.type && strcmp(o->e.type, ERR_INVALID) == 0, "%s: type %s", mc->name,
	          o->e.type ? o->e.type : "(null)");
	cr_expect(o->e.message[0] != '\0', "%s: empty message", mc->name);
	if (opt(mc->opts, "code", want, sizeof(want)) >= 0)
		cr_expect(o->e.code && strcmp(o->e.code, want) == 0, "%s: code %s, want %s",
		          mc->name, o->e.code ? o->e.code : "(null)", want);
	if (opt(mc->opts, "param", want, sizeof(want)) >= 0)
		cr_expect_str_eq(o->e.param, want, "%s: param \"%s\", want \"%s\"", mc->name,
		                 o->e.param, want);
	if (opt(mc->opts, "msg", want, sizeof(want)) >= 0)
		cr_expect(strstr(o->e.message, want) != NULL, "%s: message \"%s\" lacks \"%s\"",
		          mc->name, o->e.message, want);
}

Test(multipart_data, cases)
{
	static char lines[MANIFEST_MAX][LINE_MAX_LEN];
	size_t nlines = load_lines("cases.txt", lines, MANIFEST_MAX), i;

	for (i = 0; i < nlines; i++) {
		struct mcase mc;
		char *fields[32], ct[LINE_MAX_LEN], allowbuf[LINE_MAX_LEN], file[160], how[64];
		const char *allowed[ALLOWED_MAX + 1];
		const char *const *al = default_allowed;
		struct outcome whole, other;
		size_t nf = split_tabs(lines[i], fields, 32), len, k, step;
		char *body;
		uint32_t seed;

		cr_assert(nf >= 3, "cases.txt line %zu: want NAME, EXPECT and ct=", i + 1);
		snprintf(mc.name, sizeof(mc.name), "%s", fields[0]);
		snprintf(mc.expect, sizeof(mc.expect), "%s", fields[1]);
		mc.opts[0] = '\0';
		for (k = 2; k < nf; k++)
			snprintf(mc.opts + strlen(mc.opts), sizeof(mc.opts) - strlen(mc.opts),
			         "%s%s", k > 2 ? "\t" : "", fields[k]);
		cr_assert(opt(mc.opts, "ct", ct, sizeof(ct)) >= 0, "%s: no ct=", mc.name);
		if (opt(mc.opts, "allowed", allowbuf, sizeof(allowbuf)) >= 0) {
			split_commas(allowbuf, allowed, ALLOWED_MAX + 1);
			al = allowed;
		}
		snprintf(file, sizeof(file), "%.127s.body", mc.name);
		body = slurp(file, &len);

		run(ct, al, body, len, SPLIT_WHOLE, 0, &whole);
		check_expected(&mc, al, &whole);
		run(ct, al, body, len, SPLIT_BYTES, 0, &other);
		expect_same(mc.name, "byte by byte", &whole, &other);
		for (seed = 1; seed <= SPLIT_SEEDS; seed++) {
			run(ct, al, body, len, SPLIT_RANDOM, seed * 2654435761u, &other);
			snprintf(how, sizeof(how), "random split %u", seed);
			expect_same(mc.name, how, &whole, &other);
		}
		step = len <= CUTS_ALL_MAX ? 1 : len / 257;
		for (k = 1; k < len; k += step) {
			run(ct, al, body, len, SPLIT_CUT, (uint32_t)k, &other);
			snprintf(how, sizeof(how), "cut at %zu", k);
			expect_same(mc.name, how, &whole, &other);
		}
		free(body);
	}
}

Test(multipart_data, content_types)
{
	static char lines[MANIFEST_MAX][LINE_MAX_LEN];
	size_t nlines = load_lines("content_type.txt", lines, MANIFEST_MAX), i;

	for (i = 0; i < nlines; i++) {
		char *fields[4], ct[LINE_MAX_LEN], b[LINE_MAX_LEN], body[LINE_MAX_LEN];
		size_t nf = split_tabs(lines[i], fields, 4), ctlen, blen, len;
		long status;
		struct multipart *m;
		struct err e;
		char *copy;

		cr_assert_eq(nf, 3, "content_type.txt line %zu: want STATUS, BOUNDARY, VALUE",
		             i + 1);
		status = strtol(fields[0], NULL, 10);
		ctlen = unescape(fields[2], strlen(fields[2]), ct, sizeof(ct));
		blen = unescape(fields[1], strlen(fields[1]), b, sizeof(b));
		copy = dup_bytes(ct, ctlen);
		err_clear(&e);
		m = multipart_new(copy, ctlen, default_allowed, &e);
		free(copy);
		if (status != 0) {
			cr_expect_null(m, "accepted: %s", fields[2]);
			cr_expect_eq(e.status, status, "%s: status %d (%s)", fields[2], e.status,
			             e.message);
			cr_expect_str_eq(e.code ? e.code : "",
			                 status == 415 ? "unsupported_media_type"
			                               : "invalid_multipart",
			                 "%s", fields[2]);
			cr_expect(e.type && strcmp(e.type, ERR_INVALID) == 0);
			cr_expect(e.message[0] != '\0');
			multipart_free(m);
			continue;
		}
		cr_expect_not_null(m, "rejected: %s: %s", fields[2], e.message);
		if (m == NULL)
			continue;
		/* The boundary read is exactly this one: it closes the body, and one
		 * a character shorter or longer does not. */
		len = (size_t)snprintf(body, sizeof(body), "--%.*s--", (int)blen - 1, b);
		cr_expect_neq(multipart_feed(m, body, len, &e), 1, "%s: shorter boundary",
		              fields[2]);
		multipart_free(m);
		m = multipart_new(ct, ctlen, default_allowed, &e);
		cr_assert_not_null(m);
		len = (size_t)snprintf(body, sizeof(body), "--%.*sx--", (int)blen, b);
		cr_expect_eq(multipart_feed(m, body, len, &e), -1, "%s: longer boundary",
		             fields[2]);
		multipart_free(m);
		m = multipart_new(ct, ctlen, default_allowed, &e);
		cr_assert_not_null(m);
		len = (size_t)snprintf(body, sizeof(body), "--%.*s--", (int)blen, b);
		cr_expect_eq(multipart_feed(m, body, len, &e), 1, "%s: boundary %s not read (%s)",
		             fields[2], b, e.message);
		multipart_free(m);
	}
}

/* A body whose one part has headers of exactly n bytes, counted from the
 * byte after the boundary to the end of the blank line. */
static size_t
build_headers(char *out, size_t cap, size_t n)
{
	static const char cd[] = "\r\nContent-Disposition: form-data; name=\"file\"\r\nX-Pad: ";
	size_t len = 0, fixed = strlen(cd) + 4;

	cr_assert(n > fixed && n + 64 < cap);
	len += (size_t)snprintf(out, cap, "--b%s", cd);
	memset(out + len, 'p', n - fixed);
	len += n - fixed;
	len += (size_t)snprintf(out + len, cap - len, "\r\n\r\ndata\r\n--b--");
	return len;
}

Test(multipart, header_limit_is_8k_and_reported_at_the_byte_past_it)
{
	static char body[9000];
	size_t n;

	for (n = 8189; n <= 8195; n++) {
		size_t len = build_headers(body, sizeof(body), n), at;
		struct err e;
		struct multipart *m =
		        multipart_new("multipart/form-data; boundary=b", 31, default_allowed, &e);
		int rc;

		cr_assert_not_null(m);
		rc = multipart_feed(m, body, len, &e);
		if (n <= 8192) {
			cr_expect_eq(rc, 1, "headers of %zu bytes: %s", n, e.message);
			cr_expect(multipart_has(m, "file"));
			multipart_free(m);
			continue;
		}
		cr_expect_eq(rc, -1, "headers of %zu bytes accepted", n);
		cr_expect_str_eq(e.code, "invalid_multipart");
		multipart_free(m);
		/* Known at the 8193rd header byte, not before. */
		at = 3 + 8192;
		m = multipart_new("multipart/form-data; boundary=b", 31, default_allowed, &e);
		cr_assert_not_null(m);
		cr_expect_eq(multipart_feed(m, body, at, &e), 0, "%zu", n);
		cr_expect_eq(multipart_feed(m, body + at, 1, &e), -1, "%zu", n);
		multipart_free(m);
	}
}

/* 200 MB of data in one "file" part, made and fed a chunk at a time, with
 * near-miss delimiters sprinkled in and delimiters split across feeds. */
Test(multipart, large_body_streams_in_bounded_memory)
{
	static const char ct[] =
	        "multipart/form-data; boundary=------------------------d74496d66958873e";
	static const char bnd[] = "------------------------d74496d66958873e";
	const size_t total = (size_t)200 << 20, chunk = 65521;
	struct err e;
	struct multipart *m = multipart_new(ct, strlen(ct), default_allowed, &e);
	char *buf = malloc(chunk);
	size_t sent = 0, len, k;
	uint32_t s = 2463534242u;
	char tail[512];
	int rc;

	cr_assert_not_null(m);
	cr_assert_not_null(buf);
	len = (size_t)snprintf(buf, chunk,
	                       "--%s\r\nContent-Disposition: form-data; name=\"file\"; "
	                       "filename=\"big.bin\"\r\nContent-Type: application/octet-stream"
	                       "\r\n\r\n",
	                       bnd);
	cr_assert_eq(multipart_feed(m, buf, len, &e), 0, "%s", e.message);
	while (sent < total) {
		size_t n = total - sent < chunk ? total - sent : chunk;

		for (k = 0; k + 4 <= n; k += 4) {
			uint32_t r = xorshift(&s);

			memcpy(buf + k, &r, 4);
		}
		for (; k < n; k++)
			buf[k] = (char)xorshift(&s);
		/* A near miss: all of the delimiter but its last byte, split across
		 * this feed and the next. */
		memcpy(buf + n - 20, "\r\n--", 4);
		memcpy(buf + n - 16, bnd, 16);
		cr_assert_eq(multipart_feed(m, buf, n, &e), 0, "at %zu: %s", sent, e.message);
		len = (size_t)snprintf(buf, chunk, "%.*sX", (int)(sizeof(bnd) - 1 - 16 - 1),
		                       bnd + 16);
		cr_assert_eq(multipart_feed(m, buf, len, &e), 0, "at %zu: %s", sent, e.message);
		sent += n;
	}
	cr_expect_eq(multipart_has(m, "file"), 0);
	len = (size_t)snprintf(
	        tail, sizeof(tail),
	        "\r\n--%s\r\nContent-Disposition: form-data; name=\"file_id\"\r\n\r\n"
	        "abc\r\n--%s--\r\n",
	        bnd, bnd);
	/* The delimiter split across two feeds, inside "--" boundary. */
	cr_assert_eq(multipart_feed(m, tail, 10, &e), 0);
	cr_expect_eq(multipart_has(m, "file"), 0);
	rc = multipart_feed(m, tail + 10, len - 10, &e);
	cr_expect_eq(rc, 1, "%s", e.message);
	cr_expect(multipart_has(m, "file"));
	cr_expect(multipart_has(m, "file_id"));
	cr_expect_str_eq(multipart_filename(m, "file"), "big.bin");
	free(buf);
	multipart_free(m);
}

Test(multipart, has_means_the_delimiter_after_the_part_was_read)
{
	const char *body =
	        "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n"
	        "\r\nxyz\r\n--b--";
	size_t len = strlen(body), i;
	struct err e;
	struct multipart *m =
	        multipart_new("multipart/form-data; boundary=b", 31, default_allowed, &e);

	cr_assert_not_null(m);
	for (i = 0; i < len; i++) {
		int rc = multipart_feed(m, body + i, 1, &e);

		cr_assert_eq(rc, i + 1 == len, "byte %zu", i);
		/* The filename is known once the line after Content-Disposition
		 * starts (showing it is not folded), the part is whole once its
		 * delimiter is read: "\r\n--b" ends at byte len - 3. */
		if (i < (size_t)(strstr(body, "\r\n\r\n") - body) + 2)
			cr_expect_null(multipart_filename(m, "file"));
		else
			cr_expect_str_eq(multipart_filename(m, "file"), "a");
		cr_expect_eq(multipart_has(m, "file"), i >= len - 3, "byte %zu", i);
	}
	multipart_free(m);
}

Test(multipart, allowed_names_are_copied)
{
	char *names[3];
	struct multipart *m;
	struct err e;
	const char *body = "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--b--";

	names[0] = strdup("file");
	names[1] = strdup("file_id");
	names[2] = NULL;
	cr_assert(names[0] && names[1]);
	m = multipart_new("multipart/form-data; boundary=b", 31, (const char *const *)names, &e);
	cr_assert_not_null(m);
	memset(names[0], 'x', 4);
	free(names[0]);
	free(names[1]);
	cr_expect_eq(multipart_feed(m, body, strlen(body), &e), 1, "%s", e.message);
	cr_expect(multipart_has(m, "file"));
	multipart_free(m);
}

Test(multipart, null_and_empty_arguments)
{
	const char *body;
	struct err e;
	struct multipart *m;

	multipart_free(NULL);
	cr_expect_eq(multipart_has(NULL, "file"), 0);
	cr_expect_null(multipart_filename(NULL, "file"));
	err_clear(&e);
	cr_expect_null(multipart_new(NULL, 0, default_allowed, &e));
	cr_expect_eq(e.status, 415);

	/* No allowed list: every part is unknown. */
	m = multipart_new("multipart/form-data; boundary=b", 31, NULL, &e);
	cr_assert_not_null(m);
	cr_expect_eq(multipart_has(m, NULL), 0);
	cr_expect_null(multipart_filename(m, NULL));
	cr_expect_eq(multipart_feed(m, "--b--", 5, &e), 1);
	multipart_free(m);
	m = multipart_new("multipart/form-data; boundary=b", 31, NULL, &e);
	cr_assert_not_null(m);
	body = "--b\r\nContent-Disposition: form-data; name=x\r\n\r\n";
	cr_expect_eq(multipart_feed(m, body, strlen(body), &e), -1);
	cr_expect_str_eq(e.code, "unknown_parameter");
	cr_expect_str_eq(e.param, "x");
	multipart_free(m);

	/* The length is what counts, not a NUL. */
	m = multipart_new("multipart/form-data; boundary=bcd", 32, default_allowed, &e);
	cr_assert_not_null(m);
	cr_expect_eq(multipart_feed(m, "--bc--", 6, &e), 1);
	multipart_free(m);
}

Test(multipart, messages_never_quote_part_data)
{
	const char *body = "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
	                   "sk-SECRET\n--b\r\n";
	struct err e;
	struct multipart *m =
	        multipart_new("multipart/form-data; boundary=b", 31, default_allowed, &e);

	cr_assert_not_null(m);
	cr_expect_eq(multipart_feed(m, body, strlen(body), &e), -1);
	cr_expect(strstr(e.message, "SECRET") == NULL, "%s", e.message);
	cr_expect_str_eq(e.param, "file");
	multipart_free(m);
}

Test(multipart, long_allowed_list_and_long_name_fit_the_message)
{
	static char names[40][100];
	const char *allowed[41];
	char body[1200];
	struct err e;
	struct multipart *m;
	size_t i, len;

	for (i = 0; i < 40; i++) {
		memset(names[i], 'a' + (int)(i % 26), sizeof(names[i]) - 1);
		names[i][sizeof(names[i]) - 1] = '\0';
		allowed[i] = names[i];
	}
	allowed[40] = NULL;
	m = multipart_new("multipart/form-data; boundary=b", 31, allowed, &e);
	cr_assert_not_null(m);
	len = (size_t)snprintf(body, sizeof(body),
	                       "--b\r\nContent-Disposition: form-data; name=\"%0600d\"\r\n\r\n", 7);
	cr_expect_eq(multipart_feed(m, body, len, &e), -1);
	cr_expect_str_eq(e.code, "unknown_parameter");
	cr_expect_eq(strlen(e.param), ERR_PARAM_MAX - 1);
	cr_expect(strlen(e.message) < ERR_MESSAGE_MAX);
	cr_expect(strstr(e.message, "is not allowed") != NULL, "%s", e.message);
	multipart_free(m);
}
