/*
 * Tests for gateway/httpmsg.c.
 *
 * Most cases are data: tests/data/httpmsg/cases.txt (request heads) and
 * chunked.txt (chunked bodies) list them, and their headers say the format.
 * The tests here add the properties the data runners check on every case
 * (prefixes, splits) and the limits that are easier to build in code.
 *
 * Inputs are copied into exactly-sized heap buffers before parsing, so that
 * AddressSanitizer catches any read past the length the parser was given.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/httpmsg.h"

#define DEFAULT_MAX_HEAD 8192
#define MANIFEST_MAX     256
#define LINE_MAX_LEN     1024

/* The parser's header slots for every parse here; h.headers points in. */
static struct httpmsg_header slots[HTTPMSG_MAX_HEADERS];

struct mcase {
	char name[128];
	long status;
	char opts[LINE_MAX_LEN];
};

static const char *
data_dir(void)
{
	const char *d = getenv("GW_DATA");

	return d && *d ? d : "tests/data";
}

/* Reads tests/data/httpmsg/<name> into an exactly-sized buffer (at least
 * one byte allocated, so that empty files work). */
static char *
slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/httpmsg/%s", data_dir(), name);
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

/* Loads a manifest: NAME <TAB> STATUS [<TAB> KEY=VALUE ...]. */
static size_t
load_manifest(const char *file, struct mcase *cases, size_t max)
{
	char path[512], line[LINE_MAX_LEN];
	FILE *f;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/httpmsg/%s", data_dir(), file);
	f = fopen(path, "r");
	cr_assert_not_null(f, "cannot open %s (set GW_DATA to the tests/data directory)", path);
	while (fgets(line, sizeof(line), f)) {
		char *tab, *end;

		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		cr_assert(n < max, "%s has more than %zu cases", path, max);
		tab = strchr(line, '\t');
		cr_assert_not_null(tab, "%s: no tab in line: %s", path, line);
		*tab = '\0';
		cr_assert(strlen(line) < sizeof(cases[n].name));
		strcpy(cases[n].name, line);
		cases[n].status = strtol(tab + 1, &end, 10);
		cr_assert(end != tab + 1 && (*end == '\0' || *end == '\t'), "%s: bad status for %s",
		          path, line);
		snprintf(cases[n].opts, sizeof(cases[n].opts), "%s", *end ? end + 1 : "");
		n++;
	}
	fclose(f);
	cr_assert(n > 0, "%s lists no cases", path);
	return n;
}

/* Finds KEY=VALUE among tab-separated options; copies VALUE into out. */
static int
opt_str(const char *opts, const char *key, char *out, size_t outlen)
{
	size_t klen = strlen(key);
	const char *p = opts;

	while (*p) {
		size_t n = strcspn(p, "\t");

		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			snprintf(out, outlen, "%.*s", (int)(n - klen - 1), p + klen + 1);
			return 1;
		}
		p += n;
		if (*p == '\t')
			p++;
	}
	return 0;
}

static int
opt_ll(const char *opts, const char *key, long long *v)
{
	char s[64];

	if (!opt_str(opts, key, s, sizeof(s)))
		return 0;
	*v = strtoll(s, NULL, 10);
	return 1;
}

static ssize_t
parse_copy(const char *buf, size_t len, size_t max_head, struct httpmsg_head *h, struct err *e)
{
	char *copy = dup_bytes(buf, len);
	ssize_t rc;

	err_clear(e);
	rc = httpmsg_parse(copy, len, max_head, h, slots, e);
	free(copy);
	return rc;
}

static const char *
code_for(int status)
{
	switch (status) {
	case 400:
		return "bad_request";
	case 417:
		return "expectation_failed";
	case 501:
		return "unsupported_transfer_encoding";
	case 505:
		return "http_version_not_supported";
	default:
		return NULL;
	}
}

static void
expect_error(const char *name, const struct err *e, long status)
{
	const char *code = code_for((int)status);

	cr_expect_eq(e->status, status, "%s: status %d, want %ld (%s)", name, e->status, status,
	             e->message);
	cr_expect(e->type && strcmp(e->type, ERR_INVALID) == 0, "%s: type %s", name,
	          e->type ? e->type : "(null)");
	cr_expect(e->code != NULL, "%s: no code", name);
	if (code && e->code)
		cr_expect_str_eq(e->code, code, "%s: code %s, want %s", name, e->code, code);
	if (status == 431 && e->code)
		cr_expect(strcmp(e->code, "header_too_large") == 0 ||
		                  strcmp(e->code, "too_many_headers") == 0,
		          "%s: code %s", name, e->code);
	cr_expect(e->message[0] != '\0', "%s: empty message", name);
	cr_expect(strstr(e->message, "SECRET") == NULL, "%s: message echoes a value: %s", name,
	          e->message);
}

static void
check_accepted(const struct mcase *mc, const char *buf, size_t len, const struct httpmsg_head *h,
               ssize_t rc)
{
	long long v, head = (long long)len;
	char s[256];

	opt_ll(mc->opts, "head", &head);
	cr_expect_eq(rc, head, "%s: returned %zd, want %lld", mc->name, rc, head);
	if (rc != head)
		return;
	if (opt_str(mc->opts, "method", s, sizeof(s)))
		cr_expect(h->method_len == strlen(s) && memcmp(h->method, s, h->method_len) == 0,
		          "%s: method %.*s", mc->name, (int)h->method_len, h->method);
	if (opt_str(mc->opts, "target", s, sizeof(s)))
		cr_expect(h->target_len == strlen(s) && memcmp(h->target, s, h->target_len) == 0,
		          "%s: target %.*s", mc->name, (int)h->target_len, h->target);
	if (opt_ll(mc->opts, "cl", &v))
		cr_expect_eq(h->content_length, v, "%s: content_length %lld", mc->name,
		             (long long)h->content_length);
	if (opt_ll(mc->opts, "chunked", &v))
		cr_expect_eq(h->chunked, v, "%s: chunked %d", mc->name, h->chunked);
	if (opt_ll(mc->opts, "ka", &v))
		cr_expect_eq(h->keep_alive, v, "%s: keep_alive %d", mc->name, h->keep_alive);
	if (opt_ll(mc->opts, "expect", &v))
		cr_expect_eq(h->expect_continue, v, "%s: expect_continue %d", mc->name,
		             h->expect_continue);
	cr_expect(h->method >= buf && h->method < buf + len, "%s: method not in buf", mc->name);
}

Test(httpmsg_data, head_cases)
{
	static struct mcase cases[MANIFEST_MAX];
	size_t ncases = load_manifest("cases.txt", cases, MANIFEST_MAX), i;

	for (i = 0; i < ncases; i++) {
		const struct mcase *mc = &cases[i];
		struct httpmsg_head h;
		struct err e;
		char file[160];
		long long mh = DEFAULT_MAX_HEAD;
		size_t len, p, stop;
		char *buf;
		ssize_t rc;

		snprintf(file, sizeof(file), "%.127s.http", mc->name);
		buf = slurp(file, &len);
		opt_ll(mc->opts, "max_head", &mh);
		err_clear(&e);
		rc = httpmsg_parse(buf, len, (size_t)mh, &h, slots, &e);
		if (mc->status == 0) {
			cr_expect(rc > 0, "%s: rejected with %d: %s", mc->name, e.status,
			          e.message);
			check_accepted(mc, buf, len, &h, rc);
		} else {
			cr_expect_eq(rc, -1, "%s: returned %zd, want -1", mc->name, rc);
			expect_error(mc->name, &e, mc->status);
		}
		/* Prefixes: an accepted head needs more bytes until it is whole; a
		 * rejected one may be rejected early, but only the same way. */
		stop = rc > 0 ? (size_t)rc : len;
		for (p = 0; p < stop; p++) {
			ssize_t prc = parse_copy(buf, p, (size_t)mh, &h, &e);

			if (mc->status == 0)
				cr_expect_eq(prc, 0, "%s: prefix of %zu bytes returned %zd (%s)",
				             mc->name, p, prc, e.message);
			else
				cr_expect(prc == 0 || (prc == -1 && e.status == mc->status),
				          "%s: prefix of %zu bytes returned %zd status %d",
				          mc->name, p, prc, e.status);
		}
		if (rc > 0)
			cr_expect_eq(parse_copy(buf, (size_t)rc, (size_t)mh, &h, &e), rc,
			             "%s: head alone not accepted", mc->name);
		free(buf);
	}
}

struct sink {
	char *data;
	size_t len;
	size_t cap;
};

static void
sink_emit(void *arg, const char *d, size_t n)
{
	struct sink *s = arg;

	cr_assert(n > 0, "emit called with no bytes");
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->data = realloc(s->data, s->cap);
		cr_assert_not_null(s->data);
	}
	memcpy(s->data + s->len, d, n);
	s->len += n;
}

struct feed_result {
	int rc;
	int status;
	size_t consumed;
	struct sink out;
};

static uint32_t
xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

enum split { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM };

/* Feeds buf in pieces chosen by how (seed for SPLIT_RANDOM), each copied to
 * its own buffer, until the decoder stops asking for more. */
static void
feed(const char *buf, size_t len, enum split how, uint32_t seed, struct feed_result *r)
{
	struct httpmsg_chunked *c = httpmsg_chunked_new();
	size_t off = 0, used;
	struct err e;
	int rc;

	cr_assert_not_null(c);
	memset(r, 0, sizeof(*r));
	err_clear(&e);
	/* An empty feed is always allowed and changes nothing. */
	rc = httpmsg_chunked_feed(c, "", 0, &used, sink_emit, &r->out, &e);
	cr_assert_eq(rc, 0);
	cr_assert_eq(used, 0);
	while (off < len && rc == 0) {
		size_t n = len - off;
		char *piece;

		if (how == SPLIT_BYTES)
			n = 1;
		else if (how == SPLIT_RANDOM && n > 1)
			n = 1 + xorshift(&seed) % (n < 23 ? n : 23);
		piece = dup_bytes(buf + off, n);
		rc = httpmsg_chunked_feed(c, piece, n, &used, sink_emit, &r->out, &e);
		free(piece);
		cr_assert(used <= n);
		if (rc == 0)
			cr_assert_eq(used, n, "needed more input but left bytes unused");
		off += used;
	}
	r->rc = rc;
	r->status = rc < 0 ? e.status : 0;
	r->consumed = off;
	if (rc != 0) {
		/* The decoder's answer is final. */
		struct err e2;
		int again = httpmsg_chunked_feed(c, "0\r\n\r\n", 5, &used, sink_emit, &r->out, &e2);

		cr_assert_eq(again, rc);
		cr_assert_eq(used, 0);
	}
	httpmsg_chunked_free(c);
}

static void
feed_result_free(struct feed_result *r)
{
	free(r->out.data);
}

Test(httpmsg_data, chunked_cases)
{
	static struct mcase cases[MANIFEST_MAX];
	size_t ncases = load_manifest("chunked.txt", cases, MANIFEST_MAX), i;

	for (i = 0; i < ncases; i++) {
		const struct mcase *mc = &cases[i];
		struct feed_result whole, other;
		char file[160];
		long long consumed;
		size_t len, olen = 0;
		char *buf, *want = NULL;
		uint32_t seed;

		snprintf(file, sizeof(file), "%.127s.chunked", mc->name);
		buf = slurp(file, &len);
		consumed = (long long)len;
		opt_ll(mc->opts, "consumed", &consumed);
		if (mc->status != 400) {
			snprintf(file, sizeof(file), "%.127s.out", mc->name);
			want = slurp(file, &olen);
		}
		feed(buf, len, SPLIT_WHOLE, 0, &whole);
		if (mc->status == 400) {
			cr_expect_eq(whole.rc, -1, "%s: returned %d, want -1", mc->name, whole.rc);
			cr_expect_eq(whole.status, 400, "%s: status %d", mc->name, whole.status);
		} else {
			cr_expect_eq(whole.rc, mc->status, "%s: returned %d, want %ld", mc->name,
			             whole.rc, mc->status);
			cr_expect_eq(whole.consumed, (size_t)consumed,
			             "%s: consumed %zu, want %lld", mc->name, whole.consumed,
			             consumed);
			cr_expect(whole.out.len == olen &&
			                  (olen == 0 || memcmp(whole.out.data, want, olen) == 0),
			          "%s: decoded bytes differ (%zu bytes, want %zu)", mc->name,
			          whole.out.len, olen);
		}
		for (seed = 0; seed < 21; seed++) {
			feed(buf, len, seed == 0 ? SPLIT_BYTES : SPLIT_RANDOM, seed * 2654435761u,
			     &other);
			cr_expect_eq(other.rc, whole.rc, "%s: split %u returned %d, whole %d",
			             mc->name, seed, other.rc, whole.rc);
			cr_expect_eq(other.status, whole.status, "%s: split %u status", mc->name,
			             seed);
			if (whole.rc >= 0)
				cr_expect_eq(other.consumed, whole.consumed,
				             "%s: split %u consumed %zu, whole %zu", mc->name, seed,
				             other.consumed, whole.consumed);
			cr_expect(other.out.len == whole.out.len &&
			                  (whole.out.len == 0 ||
			                   memcmp(other.out.data, whole.out.data, whole.out.len) ==
			                           0),
			          "%s: split %u decoded different bytes", mc->name, seed);
			feed_result_free(&other);
		}
		feed_result_free(&whole);
		free(want);
		free(buf);
	}
}

/* Builds "GET / HTTP/1.1\r\nHost: a\r\n" plus n "X-Hi: v" lines and, when
 * terminated, the empty line. */
static size_t
build_headers(char *out, size_t cap, int n, int terminated)
{
	size_t len;
	int i;

	len = (size_t)snprintf(out, cap, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, cap - len, "X-H%d: v\r\n", i);
	if (terminated)
		len += (size_t)snprintf(out + len, cap - len, "\r\n");
	cr_assert(len < cap);
	return len;
}

Test(httpmsg, every_proper_prefix_needs_more)
{
	const char *req = "\r\nPOST /v1/containers/cntr_1/files?x=1 HTTP/1.1\r\n"
	                  "Host: api.example.com:443\r\n"
	                  "Content-Type: multipart/form-data; boundary=b\r\n"
	                  "Content-Length: 1234\r\n"
	                  "Connection: keep-alive\r\n"
	                  "Expect: 100-continue\r\n"
	                  "X-Empty:\r\n"
	                  "\r\n";
	size_t len = strlen(req), p;
	struct httpmsg_head h;
	struct err e;

	for (p = 0; p < len; p++)
		cr_expect_eq(parse_copy(req, p, DEFAULT_MAX_HEAD, &h, &e), 0,
		             "prefix of %zu bytes: %s", p, e.message);
	cr_assert_eq(parse_copy(req, len, DEFAULT_MAX_HEAD, &h, &e), (ssize_t)len);
	cr_expect_eq(h.content_length, 1234);
	cr_expect_eq(h.expect_continue, 1);
	cr_expect_eq(h.keep_alive, 1);
	cr_expect_eq(h.minor_version, 1);
	cr_expect_eq(h.nheaders, 6);
}

Test(httpmsg, pipelined_bytes_are_not_consumed)
{
	const char *head = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
	const char *next[] = {"G", "GET /b HTTP/1.1\r\nHost: a\r\n\r\n", "\r\n", "garbage\n\x01"};
	char buf[256];
	size_t i;

	for (i = 0; i < sizeof(next) / sizeof(next[0]); i++) {
		struct httpmsg_head h;
		struct err e;
		size_t len = (size_t)snprintf(buf, sizeof(buf), "%s%s", head, next[i]);

		cr_expect_eq(parse_copy(buf, len, DEFAULT_MAX_HEAD, &h, &e), (ssize_t)strlen(head),
		             "with %zu pipelined bytes", strlen(next[i]));
	}
}

Test(httpmsg, head_limit_is_431_as_soon_as_reached)
{
	char buf[1024];
	size_t len = build_headers(buf, sizeof(buf), 20, 0), max = 200, n;
	struct httpmsg_head h;
	struct err e;

	cr_assert(len > max);
	for (n = 0; n < max; n++)
		cr_assert_eq(parse_copy(buf, n, max, &h, &e), 0, "len %zu", n);
	cr_assert_eq(parse_copy(buf, max, max, &h, &e), -1);
	cr_expect_eq(e.status, 431);
	cr_expect_str_eq(e.code, "header_too_large");
	cr_assert_eq(parse_copy(buf, len, max, &h, &e), -1);
	cr_expect_eq(e.status, 431);

	/* A complete head of exactly max_head bytes fits; one byte more does not,
	 * and is refused when len reaches max_head, before its last byte. */
	len = build_headers(buf, sizeof(buf), 3, 1);
	cr_expect_eq(parse_copy(buf, len, len, &h, &e), (ssize_t)len);
	cr_expect_eq(parse_copy(buf, len - 1, len - 1, &h, &e), -1);
	cr_expect_eq(e.status, 431);

	/* Bytes past the limit are never looked at. */
	len = build_headers(buf, sizeof(buf), 20, 1);
	memcpy(buf + 150, "\n\x01", 2);
	cr_expect_eq(parse_copy(buf, len, 100, &h, &e), -1);
	cr_expect_eq(e.status, 431);
	cr_expect_eq(parse_copy(buf, 0, 0, &h, &e), -1);
	cr_expect_eq(e.status, 431);
}

Test(httpmsg, header_count_limit)
{
	char buf[4096];
	size_t len = build_headers(buf, sizeof(buf), HTTPMSG_MAX_HEADERS - 1, 1);
	size_t line_start;
	struct httpmsg_head h;
	struct err e;

	cr_expect_eq(parse_copy(buf, len, sizeof(buf), &h, &e), (ssize_t)len);
	cr_expect_eq(h.nheaders, HTTPMSG_MAX_HEADERS);

	len = build_headers(buf, sizeof(buf), HTTPMSG_MAX_HEADERS, 1);
	cr_expect_eq(parse_copy(buf, len, sizeof(buf), &h, &e), -1);
	cr_expect_eq(e.status, 431);
	cr_expect_str_eq(e.code, "too_many_headers");

	/* Known as soon as the 101st line starts. */
	line_start = build_headers(buf, sizeof(buf), HTTPMSG_MAX_HEADERS - 1, 0);
	cr_expect_eq(parse_copy(buf, line_start, sizeof(buf), &h, &e), 0);
	cr_expect_eq(parse_copy(buf, line_start + 1, sizeof(buf), &h, &e), -1);
	cr_expect_eq(e.status, 431);
}

Test(httpmsg, fields_point_into_buffer_and_lookup_ignores_case)
{
	const char *req = "PUT /x?q HTTP/1.0\r\n"
	                  "Host: h\r\n"
	                  "X-Dup:  first \t\r\n"
	                  "x-dup: second\r\n"
	                  "X-Empty: \r\n"
	                  "\r\n";
	struct httpmsg_head h;
	struct err e;
	const char *v;
	size_t n = 99;

	cr_assert_eq(httpmsg_parse(req, strlen(req), DEFAULT_MAX_HEAD, &h, slots, &e),
	             (ssize_t)strlen(req));
	cr_expect(h.method == req && h.method_len == 3);
	cr_expect(h.target == req + 4 && h.target_len == 4);
	cr_expect_eq(h.minor_version, 0);
	cr_expect_eq(h.keep_alive, 0);
	cr_expect_eq(h.content_length, -1);

	v = httpmsg_header(&h, "x-DUP", &n);
	cr_assert_not_null(v);
	cr_expect(n == 5 && memcmp(v, "first", 5) == 0);
	cr_expect(v > req && v < req + strlen(req));
	v = httpmsg_header(&h, "X-Empty", &n);
	cr_assert_not_null(v);
	cr_expect_eq(n, 0);
	cr_expect_null(httpmsg_header(&h, "X-Missing", &n));
	cr_expect_null(httpmsg_header(&h, "X-Du", &n));
}

Test(httpmsg, content_length_bounds)
{
	static const struct {
		const char *value;
		int64_t want; /* -2: rejected */
	} cases[] = {
	        {"0", 0},
	        {"00000000000000000000000000000042", 42},
	        {"9007199254740991", 9007199254740991},
	        {"9007199254740992", 9007199254740992},
	        {"9007199254740993", -2},
	        {"90071992547409920", -2},
	        {"18446744073709551615", -2},
	        {"18446744073709551616", -2},
	        {"99999999999999999999999999", -2},
	        {"1e3", -2},
	        {"5;", -2},
	        {"5\t5", -2},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[256];
		struct httpmsg_head h;
		struct err e;
		size_t len = (size_t)snprintf(
		        buf, sizeof(buf),
		        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %s\r\n\r\n", cases[i].value);
		ssize_t rc = parse_copy(buf, len, DEFAULT_MAX_HEAD, &h, &e);

		if (cases[i].want == -2) {
			cr_expect_eq(rc, -1, "%s accepted", cases[i].value);
			cr_expect_eq(e.status, 400, "%s", cases[i].value);
		} else {
			cr_expect_eq(rc, (ssize_t)len, "%s rejected: %s", cases[i].value,
			             e.message);
			cr_expect_eq(h.content_length, cases[i].want, "%s", cases[i].value);
		}
	}
}

Test(httpmsg, messages_quote_names_not_values)
{
	const char *req = "GET / HTTP/1.1\r\nHost: a\r\nX-Api-Key: sk-SECRET\x01\r\n\r\n";
	struct httpmsg_head h;
	struct err e;

	cr_assert_eq(parse_copy(req, strlen(req), DEFAULT_MAX_HEAD, &h, &e), -1);
	cr_expect(strstr(e.message, "\"X-Api-Key\"") != NULL, "%s", e.message);
	cr_expect(strstr(e.message, "SECRET") == NULL, "%s", e.message);
}

Test(httpmsg_chunked, free_null_is_a_no_op)
{
	httpmsg_chunked_free(NULL);
}

static void
count_emit(void *arg, const char *d, size_t n)
{
	(void)d;
	*(size_t *)arg += n;
}

Test(httpmsg_chunked, stops_at_the_end_and_stays_done)
{
	const char *in = "4;x=y\r\nwiki\r\n0\r\nT: v\r\n\r\nNEXT";
	struct httpmsg_chunked *c = httpmsg_chunked_new();
	size_t used, got = 0, total = 0, i;
	struct err e;

	cr_assert_not_null(c);
	/* Fed in two pieces split inside the trailer. */
	cr_assert_eq(httpmsg_chunked_feed(c, in, 17, &used, count_emit, &got, &e), 0);
	cr_assert_eq(used, 17);
	total += used;
	cr_assert_eq(httpmsg_chunked_feed(c, in + 17, strlen(in) - 17, &used, count_emit, &got, &e),
	             1);
	total += used;
	cr_expect_eq(total, strlen(in) - 4);
	cr_expect_eq(got, 4);
	cr_expect_eq(httpmsg_chunked_feed(c, "0\r\n\r\n", 5, &used, count_emit, &got, &e), 1);
	cr_expect_eq(used, 0);
	httpmsg_chunked_free(c);

	/* emit may be NULL when only the framing matters. */
	c = httpmsg_chunked_new();
	cr_assert_not_null(c);
	for (i = 0; i < strlen(in); i++) {
		int rc = httpmsg_chunked_feed(c, in + i, 1, &used, NULL, NULL, &e);

		if (rc == 1) {
			cr_expect_eq(i, strlen(in) - 5);
			break;
		}
		cr_assert_eq(rc, 0);
	}
	httpmsg_chunked_free(c);
}

Test(httpmsg_chunked, trailer_limit_is_8k)
{
	char body[9000];
	size_t n;

	for (n = 8191; n <= 8193; n++) {
		/* "0\r\n", then "X: vvv...\r\n", then "\r\n": n trailer bytes in all. */
		struct feed_result r;
		size_t len = 0, fill = n - 7;

		memcpy(body, "0\r\nX: ", 6);
		len = 6;
		memset(body + len, 'v', fill);
		len += fill;
		memcpy(body + len, "\r\n\r\n", 4);
		len += 4;
		cr_assert_eq(len - 3, n);
		feed(body, len, SPLIT_WHOLE, 0, &r);
		cr_expect_eq(r.rc, n <= 8192 ? 1 : -1, "trailer of %zu bytes", n);
		feed_result_free(&r);
	}
}

Test(httpmsg_chunked, random_splits_of_a_long_body)
{
	char *in = malloc(1 << 16), *want = malloc(1 << 16);
	size_t len = 0, wlen = 0;
	uint32_t s = 12345;
	struct feed_result whole, split;
	int i, k;

	cr_assert(in && want);
	for (i = 0; i < 200; i++) {
		size_t n = 1 + xorshift(&s) % 200;

		len += (size_t)snprintf(in + len, 64, i % 3 ? "%zx\r\n" : "%zX;i=\"%d\"\r\n", n, i);
		for (k = 0; k < (int)n; k++) {
			char ch = (char)(xorshift(&s) & 0xff);

			in[len++] = ch;
			want[wlen++] = ch;
		}
		memcpy(in + len, "\r\n", 2);
		len += 2;
	}
	len += (size_t)snprintf(in + len, 64, "0\r\nDone: yes\r\n\r\nPIPELINED");
	feed(in, len, SPLIT_WHOLE, 0, &whole);
	cr_assert_eq(whole.rc, 1);
	cr_expect_eq(whole.consumed, len - strlen("PIPELINED"));
	cr_assert_eq(whole.out.len, wlen);
	cr_expect(memcmp(whole.out.data, want, wlen) == 0);
	for (i = 0; i < 50; i++) {
		feed(in, len, i == 0 ? SPLIT_BYTES : SPLIT_RANDOM, (uint32_t)i * 7919u + 1, &split);
		cr_expect_eq(split.rc, 1);
		cr_expect_eq(split.consumed, whole.consumed);
		cr_expect(split.out.len == wlen && memcmp(split.out.data, want, wlen) == 0);
		feed_result_free(&split);
	}
	feed_result_free(&whole);
	free(in);
	free(want);
}

Test(httpmsg, head_then_chunked_body)
{
	const char *msg = "POST /v1/files HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	                  "3\r\nabc\r\n0\r\n\r\n";
	struct httpmsg_head h;
	struct err e;
	struct feed_result r;
	ssize_t n = httpmsg_parse(msg, strlen(msg), DEFAULT_MAX_HEAD, &h, slots, &e);

	cr_assert(n > 0);
	cr_assert_eq(h.chunked, 1);
	feed(msg + n, strlen(msg) - (size_t)n, SPLIT_WHOLE, 0, &r);
	cr_expect_eq(r.rc, 1);
	cr_expect(r.out.len == 3 && memcmp(r.out.data, "abc", 3) == 0);
	feed_result_free(&r);
}
