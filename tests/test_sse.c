/*
 * Tests for gateway/http/sse.c.
 *
 * Most cases are data: each tests/data/sse/NAME.sse holds a raw stream and
 * NAME.events what must come of it, one line each, tab-separated:
 *   # ...                      a comment (the first ones say what the case is)
 *   max N                      max_event for the case (default 65536)
 *   event TYPE DATA ID         a dispatched event, in order
 *   too_large SIZE ID          a dispatched event past max, of SIZE bytes
 *   retry N                    sse_retry at the end (default -1)
 * with C escapes \n \r \t \\ \xNN in TYPE, DATA and ID. Every case is fed
 * whole, byte by byte, cut in two at every byte (at 257 places for long
 * ones), cut in three at every pair of bytes (short ones), and in random
 * pieces, and must give exactly these events each time. The tests here add
 * what is easier to build in code: every mix of line ends, large and many
 * events with their memory, allocation failures, a failing callback, and
 * sse_data_may_contain.
 *
 * Every piece is copied into an exactly-sized heap buffer before it is fed,
 * so that AddressSanitizer catches any read past the length given.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/sse.h"
#include "lib/hex.h"
#include "lib/secmem.h"
#include "lib/utf8.h"

#define DEFAULT_MAX   65536
#define EVENTS_MAX    64
#define LINE_MAX_LEN  16384
#define CUTS_ALL_MAX  4096 /* streams up to this size are cut at every byte */
#define CUTS3_ALL_MAX 160  /* and up to this size at every pair of bytes */
#define SPLIT_SEEDS   20

struct bytes {
	char *p;
	size_t n;
};

struct ev {
	int too_large;
	size_t size;
	struct bytes type, data, id;
};

/* What came of one stream. */
struct outcome {
	struct ev ev[EVENTS_MAX];
	size_t n;
	long long retry;
	size_t peak; /* the most sse_memory said after a feed */
};

/* What the callback sees besides the outcome. */
struct sink {
	struct outcome *o;
	size_t max;
	int fail_at; /* 1-based event to fail at, 0 never */
	size_t calls;
};

static const char *
data_dir(void)
{
	const char *d = getenv("GW_DATA");

	return d && *d ? d : "tests/data";
}

static char *
dup_bytes(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	cr_assert_not_null(p);
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "cannot open %s (set GW_DATA to the tests/data directory)", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	cr_assert(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n, "short read on %s", path);
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static void
outcome_clear(struct outcome *o)
{
	size_t i;

	for (i = 0; i < o->n; i++) {
		free(o->ev[i].type.p);
		free(o->ev[i].data.p);
		free(o->ev[i].id.p);
	}
	memset(o, 0, sizeof(*o));
	o->retry = -1;
}

static int
on_event(void *arg, const struct sse_event *ev, struct err *e)
{
	struct sink *k = arg;
	struct ev *out;

	k->calls++;
	if (k->fail_at && k->calls == (size_t)k->fail_at)
		return err_set(e, 502, ERR_UPSTREAM, "test_failure", NULL, "failed at event %zu",
		               k->calls);
	cr_assert_lt(k->o->n, EVENTS_MAX, "too many events");
	cr_assert_not_null(ev->id);
	cr_assert_eq(ev->id[ev->id_len], '\0', "the id is not NUL-terminated");
	cr_assert(utf8_valid(ev->id, ev->id_len), "the id is not UTF-8");
	if (ev->too_large) {
		cr_assert_eq(ev->too_large, 1);
		cr_assert_null(ev->type);
		cr_assert_null(ev->data);
		cr_assert_eq(ev->type_len, 0);
		cr_assert_eq(ev->data_len, 0);
		cr_assert_gt(ev->size, k->max, "too large at %zu, max %zu", ev->size, k->max);
	} else {
		cr_assert_not_null(ev->type);
		cr_assert_not_null(ev->data);
		cr_assert_gt(ev->type_len, 0);
		cr_assert_eq(ev->type[ev->type_len], '\0', "the type is not NUL-terminated");
		cr_assert_eq(ev->data[ev->data_len], '\0', "the data is not NUL-terminated");
		cr_assert(utf8_valid(ev->type, ev->type_len), "the type is not UTF-8");
		cr_assert(utf8_valid(ev->data, ev->data_len), "the data is not UTF-8");
		cr_assert_leq(ev->size, k->max);
		cr_assert_lt(ev->data_len, ev->size, "data of %zu from an event of %zu",
		             ev->data_len, ev->size);
	}
	out = &k->o->ev[k->o->n++];
	out->too_large = ev->too_large;
	out->size = ev->size;
	if (!ev->too_large) {
		out->type = (struct bytes){dup_bytes(ev->type, ev->type_len), ev->type_len};
		out->data = (struct bytes){dup_bytes(ev->data, ev->data_len), ev->data_len};
	}
	out->id = (struct bytes){dup_bytes(ev->id, ev->id_len), ev->id_len};
	return 0;
}

enum split { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM, SPLIT_CUT, SPLIT_CUT3 };

static uint32_t
xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/*
 * Feeds in[0..len) to a parser of max_event max: whole, byte by byte, in
 * random pieces of 1 to 23 bytes (a is the seed), cut at a, or cut at a
 * and b. Every feed must succeed.
 */
static void
run(const char *in, size_t len, size_t max, enum split how, size_t a, size_t b, struct outcome *o)
{
	struct sink k = {.o = o, .max = max};
	struct err e;
	struct sse *s;
	size_t off = 0;
	uint32_t seed = (uint32_t)a | 1;

	outcome_clear(o);
	err_clear(&e);
	s = sse_new(max, on_event, &k, &e);
	cr_assert_not_null(s, "%s", e.message);
	cr_assert_eq(sse_feed(s, NULL, 0, &e), 0, "an empty feed must succeed");
	while (off < len) {
		size_t n = len - off;
		char *piece;

		if (how == SPLIT_BYTES)
			n = 1;
		else if (how == SPLIT_RANDOM)
			n = 1 + xorshift(&seed) % 23;
		else if ((how == SPLIT_CUT || how == SPLIT_CUT3) && off < a)
			n = a - off;
		else if (how == SPLIT_CUT3 && off < b)
			n = b - off;
		if (n > len - off)
			n = len - off;
		piece = dup_bytes(in + off, n);
		cr_assert_eq(sse_feed(s, piece, n, &e), 0, "feed failed: %s", e.message);
		free(piece);
		off += n;
		if (sse_memory(s) > o->peak)
			o->peak = sse_memory(s);
	}
	o->retry = sse_retry(s);
	sse_free(s);
}

static int
bytes_eq(const struct bytes *a, const struct bytes *b)
{
	return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
}

/* Writes b into out for a message, escaped and cut short. */
static const char *
show(const struct bytes *b, char *out, size_t cap)
{
	return err_quote(out, cap, b->p ? b->p : "", b->n);
}

static void
expect_outcome(const char *name, const char *how, const struct outcome *want,
               const struct outcome *got)
{
	char w[128], g[128];
	size_t i;

	cr_expect_eq(got->n, want->n, "%s: %s: %zu events, want %zu", name, how, got->n, want->n);
	for (i = 0; i < want->n && i < got->n; i++) {
		const struct ev *x = &want->ev[i], *y = &got->ev[i];

		cr_expect_eq(y->too_large, x->too_large, "%s: %s: event %zu too_large %d", name,
		             how, i, y->too_large);
		if (x->too_large) {
			cr_expect_eq(y->size, x->size, "%s: %s: event %zu size %zu, want %zu", name,
			             how, i, y->size, x->size);
		} else {
			cr_expect(bytes_eq(&x->type, &y->type),
			          "%s: %s: event %zu type %s, want %s", name, how, i,
			          show(&y->type, g, sizeof(g)), show(&x->type, w, sizeof(w)));
			cr_expect(bytes_eq(&x->data, &y->data),
			          "%s: %s: event %zu data %s, want %s", name, how, i,
			          show(&y->data, g, sizeof(g)), show(&x->data, w, sizeof(w)));
		}
		cr_expect(bytes_eq(&x->id, &y->id), "%s: %s: event %zu id %s, want %s", name, how,
		          i, show(&y->id, g, sizeof(g)), show(&x->id, w, sizeof(w)));
	}
	cr_expect_eq(got->retry, want->retry, "%s: %s: retry %lld, want %lld", name, how,
	             got->retry, want->retry);
}

/* Decodes the escapes of s into a new buffer. */
static struct bytes
unescape(const char *s)
{
	size_t n = strlen(s), i, o = 0;
	char *out = malloc(n + 1);

	cr_assert_not_null(out);
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '\\') {
			cr_assert(i + 1 < n, "dangling backslash in %s", s);
			c = s[++i];
			if (c == 'n') {
				c = '\n';
			} else if (c == 'r') {
				c = '\r';
			} else if (c == 't') {
				c = '\t';
			} else if (c == 'x') {
				cr_assert(i + 2 < n && hex_digit(s[i + 1]) >= 0 &&
				                  hex_digit(s[i + 2]) >= 0,
				          "bad \\x in %s", s);
				c = (char)(hex_digit(s[i + 1]) << 4 | hex_digit(s[i + 2]));
				i += 2;
			} else {
				cr_assert_eq(c, '\\', "unknown escape in %s", s);
			}
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return (struct bytes){out, o};
}

/* Reads NAME.events into want and the case's max into *max. */
static void
load_expected(const char *path, struct outcome *want, size_t *max)
{
	static char line[LINE_MAX_LEN];
	FILE *f = fopen(path, "r");

	cr_assert_not_null(f, "cannot open %s", path);
	outcome_clear(want);
	*max = DEFAULT_MAX;
	while (fgets(line, sizeof(line), f)) {
		char *field[5], *p = line;
		size_t nf = 0;

		cr_assert(strchr(line, '\n') != NULL, "%s: line too long", path);
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		while (nf < 5) {
			field[nf++] = p;
			p = strchr(p, '\t');
			if (p == NULL)
				break;
			*p++ = '\0';
		}
		if (strcmp(field[0], "max") == 0 && nf == 2) {
			*max = strtoul(field[1], NULL, 10);
		} else if (strcmp(field[0], "retry") == 0 && nf == 2) {
			want->retry = strtoll(field[1], NULL, 10);
		} else if (strcmp(field[0], "too_large") == 0 && nf == 3) {
			cr_assert_lt(want->n, EVENTS_MAX);
			want->ev[want->n].too_large = 1;
			want->ev[want->n].size = strtoul(field[1], NULL, 10);
			want->ev[want->n++].id = unescape(field[2]);
		} else if (strcmp(field[0], "event") == 0 && nf == 4) {
			cr_assert_lt(want->n, EVENTS_MAX);
			want->ev[want->n].type = unescape(field[1]);
			want->ev[want->n].data = unescape(field[2]);
			want->ev[want->n++].id = unescape(field[3]);
		} else {
			cr_assert_fail("%s: cannot read the line starting %.40s", path, field[0]);
		}
	}
	fclose(f);
}

static int
is_case(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 4 && strcmp(d->d_name + n - 4, ".sse") == 0;
}

/* Feeds a stream every way there is and holds each outcome to want. */
static void
check_every_split(const char *name, const char *in, size_t len, size_t max,
                  const struct outcome *want)
{
	struct outcome got;
	char how[64];
	size_t a, b, step;
	uint32_t seed;

	memset(&got, 0, sizeof(got));
	run(in, len, max, SPLIT_WHOLE, 0, 0, &got);
	expect_outcome(name, "whole", want, &got);
	run(in, len, max, SPLIT_BYTES, 0, 0, &got);
	expect_outcome(name, "byte by byte", want, &got);
	for (seed = 1; seed <= SPLIT_SEEDS; seed++) {
		run(in, len, max, SPLIT_RANDOM, seed * 2654435761u, 0, &got);
		snprintf(how, sizeof(how), "random pieces %u", seed);
		expect_outcome(name, how, want, &got);
	}
	step = len <= CUTS_ALL_MAX ? 1 : len / 257;
	for (a = 1; a < len; a += step) {
		run(in, len, max, SPLIT_CUT, a, 0, &got);
		snprintf(how, sizeof(how), "cut at %zu", a);
		expect_outcome(name, how, want, &got);
	}
	for (a = 1; len <= CUTS3_ALL_MAX && a < len; a++) {
		for (b = a + 1; b < len; b++) {
			run(in, len, max, SPLIT_CUT3, a, b, &got);
			snprintf(how, sizeof(how), "cut at %zu and %zu", a, b);
			expect_outcome(name, how, want, &got);
		}
	}
	outcome_clear(&got);
}

Test(sse_data, cases)
{
	char dir[512], path[1024];
	struct dirent **list;
	int n, i;

	snprintf(dir, sizeof(dir), "%s/sse", data_dir());
	n = scandir(dir, &list, is_case, alphasort);
	cr_assert_gt(n, 0, "no cases in %s", dir);
	for (i = 0; i < n; i++) {
		struct outcome want;
		size_t len, max, base = 0;
		char name[256], *in;

		memset(&want, 0, sizeof(want));
		snprintf(name, sizeof(name), "%.*s", (int)(strlen(list[i]->d_name) - 4),
		         list[i]->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
		in = slurp(path, &len);
		snprintf(path, sizeof(path), "%s/%s.events", dir, name);
		load_expected(path, &want, &max);
		check_every_split(name, in, len, max, &want);

		/* The memory bound of sse.c's header comment. */
		{
			struct outcome got;
			struct sink k = {.o = &got, .max = max};
			struct err e;
			struct sse *s = sse_new(max, on_event, &k, &e);

			memset(&got, 0, sizeof(got));
			cr_assert_not_null(s);
			base = sse_memory(s);
			sse_free(s);
			run(in, len, max, SPLIT_WHOLE, 0, 0, &got);
			cr_expect_leq(got.peak, base + 4 * (max + 1), "%s: %zu bytes held", name,
			              got.peak);
			outcome_clear(&got);
		}
		outcome_clear(&want);
		free(in);
		free(list[i]);
	}
	free(list);
}

/* Each of the three line ends after each line of "event: t", "data: a",
 * "data: b" and the blank line, then "data: z" and a blank line: CR after
 * "data: b" and LF for the blank line make one CRLF, so no blank line, and
 * "z" joins the first event. */
Test(sse, every_line_ending_mix)
{
	static const char *const lines[] = {"event: t", "data: a", "data: b", ""};
	static const char *const ends[] = {"\r\n", "\n", "\r"};
	char in[128];
	int combo, k;

	for (combo = 0; combo < 81; combo++) {
		struct outcome want;
		char name[64];
		size_t len = 0;
		int end[4], merged;

		memset(&want, 0, sizeof(want));
		outcome_clear(&want);
		for (k = 0; k < 4; k++) {
			end[k] = combo / (k == 0 ? 1 : k == 1 ? 3 : k == 2 ? 9 : 27) % 3;
			len += (size_t)snprintf(in + len, sizeof(in) - len, "%s%s", lines[k],
			                        ends[end[k]]);
		}
		merged = end[2] == 2 && end[3] == 1;
		len += (size_t)snprintf(in + len, sizeof(in) - len, "data: z\n\n");
		want.ev[0].type = unescape("t");
		want.ev[0].id = unescape("");
		if (merged) {
			want.ev[0].data = unescape("a\\nb\\nz");
			want.n = 1;
		} else {
			want.ev[0].data = unescape("a\\nb");
			want.ev[1].type = unescape("message");
			want.ev[1].data = unescape("z");
			want.ev[1].id = unescape("");
			want.n = 2;
		}
		snprintf(name, sizeof(name), "line ends %d", combo);
		check_every_split(name, in, len, DEFAULT_MAX, &want);
		outcome_clear(&want);
	}
}

/* A counting sink for the large tests, which keeps nothing. */
struct counter {
	size_t events, too_large, bytes, last_size;
	const char *want_type;
	char last[16];
};

static int
count_event(void *arg, const struct sse_event *ev, struct err *e)
{
	struct counter *c = arg;

	(void)e;
	c->events++;
	c->last_size = ev->size;
	if (ev->too_large) {
		c->too_large++;
		return 0;
	}
	c->bytes += ev->data_len;
	snprintf(c->last, sizeof(c->last), "%.*s", (int)ev->data_len, ev->data);
	if (c->want_type)
		cr_assert_str_eq(ev->type, c->want_type);
	return 0;
}

Test(sse, oversized_event_is_skipped_in_bounded_memory)
{
	const size_t max = 1024, chunk = 4096, big = (size_t)1 << 20;
	struct counter c = {0};
	struct err e;
	struct sse *s = sse_new(max, count_event, &c, &e);
	char *buf = malloc(chunk);
	size_t sent = 0, base, peak = 0;

	cr_assert_not_null(s);
	cr_assert_not_null(buf);
	base = sse_memory(s);
	cr_assert_eq(sse_feed(s, "data: small\n\ndata: ", 19, &e), 0);
	memset(buf, 'x', chunk);
	while (sent < big) {
		cr_assert_eq(sse_feed(s, buf, chunk, &e), 0);
		sent += chunk;
		if (sse_memory(s) > peak)
			peak = sse_memory(s);
	}
	cr_assert_eq(sse_feed(s, "\nevent: t\ndata: more\n\n", 22, &e), 0);
	cr_expect_eq(c.events, 2);
	cr_expect_eq(c.too_large, 1);
	cr_expect_eq(c.last_size, 6 + big + 8 + 10, "size %zu", c.last_size);
	cr_expect_leq(peak, base + max + 1, "%zu bytes held for a skipped event", peak);
	cr_expect_leq(sse_memory(s), base + 2048, "%zu bytes kept after the event", sse_memory(s));
	cr_assert_eq(sse_feed(s, "data: after\n\n", 13, &e), 0);
	cr_expect_eq(c.events, 3);
	cr_expect_str_eq(c.last, "after");
	free(buf);
	sse_free(s);
}

/* Token-delta-sized events, as a Responses stream sends them, keep a few
 * hundred bytes; a large event grows the buffer, and it is given back. */
Test(sse, memory_stays_small_with_small_events)
{
	static const char delta[] =
	        "event: response.output_text.delta\n"
	        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":12345,"
	        "\"item_id\":\"msg_67c9fdcecf488190bdd9a0409de3a1ec07b1b9d7c4e5d1b2\","
	        "\"output_index\":0,\"content_index\":0,\"delta\":\" token\"}\n\n";
	struct counter c = {.want_type = "response.output_text.delta"};
	struct err e;
	struct sse *s = sse_new(12 * 1024, count_event, &c, &e);
	size_t i, base, peak = 0;
	char *big;

	cr_assert_not_null(s);
	base = sse_memory(s);
	for (i = 0; i < 100000; i++) {
		cr_assert_eq(sse_feed(s, delta, sizeof(delta) - 1, &e), 0);
		if (sse_memory(s) > peak)
			peak = sse_memory(s);
	}
	cr_expect_eq(c.events, 100000);
	cr_expect_leq(peak, base + 512, "small events held %zu bytes", peak);
	fprintf(stderr, "sse memory: struct %zu bytes, with small events %zu bytes\n", base, peak);
	cr_expect_leq(base, 256, "struct sse is %zu bytes", base);

	big = malloc(10010);
	cr_assert_not_null(big);
	memcpy(big, "data: ", 6);
	memset(big + 6, 'y', 10000);
	memcpy(big + 10006, "\n\n", 2);
	c.want_type = NULL;
	cr_assert_eq(sse_feed(s, big, 10008, &e), 0);
	cr_expect_eq(c.too_large, 0);
	cr_expect_eq(c.last_size, 10006);
	cr_expect_leq(sse_memory(s), base + 512, "%zu bytes kept after a large event",
	              sse_memory(s));
	free(big);
	sse_free(s);
}

Test(sse, many_empty_events)
{
	const size_t n = 1000000;
	struct counter c = {0};
	struct err e;
	struct sse *s = sse_new(64, count_event, &c, &e);
	char *buf = malloc(4 * n);
	size_t i, len = 0, base;
	uint32_t seed = 12345;

	cr_assert_not_null(s);
	cr_assert_not_null(buf);
	base = sse_memory(s);
	for (i = 0; i < n; i++) {
		static const char *const blank[] = {"\n", "\r\n", "\r", ":\n", "event:x\n\n"};
		const char *b = blank[i % 5];

		memcpy(buf + len, b, strlen(b));
		len += strlen(b);
	}
	for (i = 0; i < len;) {
		size_t k = 1 + xorshift(&seed) % 97;

		if (k > len - i)
			k = len - i;
		cr_assert_eq(sse_feed(s, buf + i, k, &e), 0);
		i += k;
	}
	cr_expect_eq(c.events, 0);
	cr_expect_leq(sse_memory(s), base + 128);
	cr_assert_eq(sse_feed(s, "data:\n\n", 7, &e), 0);
	cr_expect_eq(c.events, 1);
	free(buf);
	sse_free(s);
}

/* An 8 MiB data line and a 100 KiB type within a max of 16 MiB, fed in
 * pieces of odd sizes, come out whole. */
Test(sse, long_lines_within_the_limit)
{
	const size_t dlen = (size_t)8 << 20, tlen = 100 * 1024;
	size_t len = 7 + tlen + 1 + 6 + dlen + 2, i, off = 0;
	char *in = malloc(len);
	struct outcome o;
	struct sink k = {.o = &o, .max = (size_t)16 << 20};
	struct err e;
	struct sse *s = sse_new(k.max, on_event, &k, &e);

	cr_assert_not_null(in);
	cr_assert_not_null(s);
	memset(&o, 0, sizeof(o));
	outcome_clear(&o);
	memcpy(in, "event: ", 7);
	off = 7;
	for (i = 0; i < tlen; i++)
		in[off++] = (char)('a' + i % 26);
	memcpy(in + off, "\ndata: ", 7);
	off += 7;
	for (i = 0; i < dlen; i++)
		in[off++] = (char)('0' + i % 10);
	memcpy(in + off, "\n\n", 2);
	for (off = 0; off < len;) {
		size_t n = len - off < 65521 ? len - off : 65521;

		cr_assert_eq(sse_feed(s, in + off, n, &e), 0);
		off += n;
	}
	cr_assert_eq(o.n, 1);
	cr_expect_eq(o.ev[0].type.n, tlen);
	cr_expect_eq(memcmp(o.ev[0].type.p, in + 7, tlen), 0);
	cr_expect_eq(o.ev[0].data.n, dlen);
	cr_expect_eq(memcmp(o.ev[0].data.p, in + 7 + tlen + 7, dlen), 0);
	cr_expect_eq(o.ev[0].size, len - 3);
	outcome_clear(&o);
	free(in);
	sse_free(s);
}

/* An event is dispatched at the first byte of its blank line, so a CR
 * that is the last byte fed is enough; the LF after it, fed later, makes
 * no second blank line. The same holds for a BOM cut in three. */
Test(sse, dispatch_at_the_first_byte_of_the_blank_line)
{
	struct counter c = {0};
	struct err e;
	struct sse *s = sse_new(64, count_event, &c, &e);

	cr_assert_not_null(s);
	cr_assert_eq(sse_feed(s, "\xef", 1, &e), 0);
	cr_assert_eq(sse_feed(s, "\xbb", 1, &e), 0);
	cr_assert_eq(sse_feed(s, "\xbf", 1, &e), 0);
	cr_assert_eq(sse_feed(s, "data: 1\r", 8, &e), 0);
	cr_expect_eq(c.events, 0);
	cr_assert_eq(sse_feed(s, "\r", 1, &e), 0);
	cr_expect_eq(c.events, 1);
	cr_expect_str_eq(c.last, "1");
	cr_assert_eq(sse_feed(s, "\n", 1, &e), 0);
	cr_assert_eq(sse_feed(s, "data: 2\r\n", 9, &e), 0);
	cr_assert_eq(sse_feed(s, "\n", 1, &e), 0);
	cr_expect_eq(c.events, 2);
	cr_expect_str_eq(c.last, "2");
	sse_free(s);
}

Test(sse, callback_failure_is_final)
{
	struct outcome o;
	struct sink k = {.o = &o, .max = 64, .fail_at = 2};
	struct err e, again;
	struct sse *s = sse_new(64, on_event, &k, &e);
	const char *in = "data: 1\n\ndata: 2\n\ndata: 3\n\n";

	cr_assert_not_null(s);
	memset(&o, 0, sizeof(o));
	outcome_clear(&o);
	cr_expect_eq(sse_feed(s, in, strlen(in), &e), -1);
	cr_expect_eq(e.status, 502);
	cr_expect_str_eq(e.code, "test_failure");
	cr_expect_str_eq(e.message, "failed at event 2");
	cr_expect_eq(k.calls, 2, "the third event was read after a failure");
	err_clear(&again);
	cr_expect_eq(sse_feed(s, in, strlen(in), &again), -1);
	cr_expect_eq(sse_feed(s, NULL, 0, &again), -1);
	cr_expect_str_eq(again.message, e.message);
	cr_expect_eq(again.status, 502);
	cr_expect_eq(k.calls, 2);
	outcome_clear(&o);
	sse_free(s);
}

/* Allocation n fails, and every one after it: sse_new fails cleanly, or
 * every feed up to the failure gives what it gives with memory to spare and
 * then 503 out_of_memory for good. */
Test(sse, out_of_memory)
{
	const char *in = "event: e\nid: 42\ndata: 0123456789abcdef0123456789abcdef0123456789\n"
	                 "data: more data to grow the buffer past its first size, more data "
	                 "to grow the buffer past its first size, more data to grow it\n\n"
	                 "data: second\n\n";
	unsigned long n, before;
	int saw_success = 0;

	secmem_init();
	for (n = 1; n < 100 && !saw_success; n++) {
		struct counter c = {0};
		struct err e;
		struct sse *s;
		size_t i, len = strlen(in);
		int rc = 0;

		before = secmem_failures();
		secmem_fail_after(n, 1);
		s = sse_new(4096, count_event, &c, &e);
		if (s == NULL) {
			secmem_fail_after(0, 0);
			cr_expect_eq(e.status, 503);
			cr_expect_str_eq(e.code, "out_of_memory");
			continue;
		}
		for (i = 0; i < len && rc == 0; i += 7)
			rc = sse_feed(s, in + i, len - i < 7 ? len - i : 7, &e);
		secmem_fail_after(0, 0);
		if (secmem_failures() == before) {
			cr_expect_eq(rc, 0);
			cr_expect_eq(c.events, 2);
			saw_success = 1;
		} else {
			cr_expect_eq(rc, -1, "an allocation failed unnoticed at n=%lu", n);
			cr_expect_eq(e.status, 503);
			cr_expect_str_eq(e.code, "out_of_memory");
			cr_expect_lt(c.events, 2);
			cr_expect_eq(sse_feed(s, "\n\n", 2, &e), -1, "the failure was not final");
		}
		sse_free(s);
	}
	cr_expect(saw_success, "no run got through");
}

static int
never(void *arg, const struct sse_event *ev, struct err *e)
{
	(void)arg;
	(void)ev;
	(void)e;
	return 0;
}

Test(sse, arguments)
{
	struct err e;
	struct sse *s;

	sse_free(NULL);
	cr_expect_eq(sse_retry(NULL), -1);
	cr_expect_eq(sse_memory(NULL), 0);
	err_clear(&e);
	cr_expect_null(sse_new(16, NULL, NULL, &e));
	cr_expect_eq(e.status, 500);
	err_clear(&e);
	cr_expect_null(sse_new(0, never, NULL, &e));
	cr_expect_eq(e.status, 500);
	s = sse_new(SIZE_MAX, never, NULL, &e);
	cr_assert_not_null(s, "a huge max is lowered, not refused");
	cr_expect_eq(sse_feed(s, "data: x\n\n", 9, &e), 0);
	cr_expect_eq(sse_retry(s), -1);
	sse_free(s);
}

Test(sse, data_may_contain)
{
	static const struct {
		const char *data, *word;
		int want;
	} cases[] = {
	        {"{\"item\":{\"container_id\":\"cntr_1\"}}", "container", 1},
	        {"{\"tools\":[{\"type\":\"code_interpreter\",\"container\":\"c\"}]}", "container",
	         1},
	        {"{\"type\":\"response.output_text.delta\",\"delta\":\"contain\"}", "container", 0},
	        {"", "container", 0},
	        {"container", "container", 1},
	        {"containe", "container", 0},
	        {"xcontainerx", "container", 1},
	        {"ccontainer", "container", 1},
	        {"{\"\\u0063ontainer_id\":\"c\"}", "container", 1},
	        {"{\"contai\\u006Eer_id\":\"c\"}", "container", 1},
	        {"{\"k\":\"\\u00e9\\n\\t\\\"\"}", "container", 0},
	        {"{\"k\":\"\\u0041\"}", "container", 0},
	        {"{\"k\":\"\\\\u0063\"}", "container", 0},
	        {"{\"k\":\"\\\\\\u0063\"}", "container", 1},
	        {"{\"k\":\"\\u006\"}", "container", 0},
	        {"{\"k\":\"a\\/b\"}", "a/b", 1},
	        {"{\"k\":\"a\\/b\"}", "ab", 0},
	        {"tail\\", "container", 0},
	        {"anything", "", 1},
	        {"anything", "quote\"", 1},
	        {"anything", "caf\xc3\xa9", 1},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *d = dup_bytes(cases[i].data, strlen(cases[i].data));

		cr_expect_eq(sse_data_may_contain(d, strlen(d), cases[i].word), cases[i].want,
		             "%s in %s", cases[i].word, cases[i].data);
		free(d);
	}
	cr_expect_eq(sse_data_may_contain(NULL, 0, "container"), 0);
	cr_expect_eq(sse_data_may_contain("x", 1, NULL), 1);
	/* The length is what counts, not a NUL. */
	cr_expect_eq(sse_data_may_contain("contai\0ner container", 11, "container"), 0);
	cr_expect_eq(sse_data_may_contain("container\0", 10, "container"), 1);
}
