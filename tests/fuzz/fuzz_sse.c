/*
 * libFuzzer harness for gateway/http/sse.c.
 *
 * An input is one byte that chooses max_event, then the stream. Beyond
 * memory errors it aborts on broken promises:
 *  - the events (type, data, id, size, too large or not) and the final
 *    retry are those of a reference written here from the standard's text
 *    and sharing nothing with sse.c: it decodes the whole input at once,
 *    splits it into lines, and applies the fields line by line, where
 *    sse.c streams byte by byte;
 *  - they are the same whether the stream is fed whole, byte by byte, cut
 *    at a place derived from the input, or in pieces sized by it;
 *  - what is dispatched is valid UTF-8, within max_event unless reported
 *    too large, and the parser's memory stays within its bound;
 *  - sse_data_may_contain never says 0 for text jansson parses to a key or
 *    string holding the word (tried on every event's data and on the
 *    stream itself).
 *
 *   make fuzz FUZZ_TARGETS=sse
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/sse.h"
#include "lib/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fev {
	int too_large;
	size_t size;
	char *type, *data, *id;
	size_t type_len, data_len, id_len;
};

struct events {
	struct fev *v;
	size_t n, cap;
	long long retry;
	size_t max;
};

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

static char *
copy(const void *p, size_t n)
{
	char *c = xmalloc(n + 1);

	if (n)
		memcpy(c, p, n);
	c[n] = '\0';
	return c;
}

static void
events_free(struct events *e)
{
	size_t i;

	for (i = 0; i < e->n; i++) {
		free(e->v[i].type);
		free(e->v[i].data);
		free(e->v[i].id);
	}
	free(e->v);
	memset(e, 0, sizeof(*e));
}

static void
push(struct events *e, int too_large, size_t size, const char *type, size_t tl,
     const char *data, size_t dl, const char *id, size_t il)
{
	struct fev *f;

	if (e->n == e->cap) {
		e->cap = e->cap ? 2 * e->cap : 16;
		e->v = realloc(e->v, e->cap * sizeof(*e->v));
		if (e->v == NULL)
			abort();
	}
	f = &e->v[e->n++];
	f->too_large = too_large;
	f->size = size;
	f->type = type ? copy(type, tl) : NULL;
	f->data = data ? copy(data, dl) : NULL;
	f->id = copy(id, il);
	f->type_len = type ? tl : 0;
	f->data_len = data ? dl : 0;
	f->id_len = il;
}

/* --- the reference ------------------------------------------------------ */

/*
 * The Encoding standard's UTF-8 decode of in[0..n) into out (room for 3n
 * bytes), re-encoded: a well-formed sequence is copied, and anything else
 * becomes one U+FFFD per maximal subpart (a lead byte and the continuation
 * bytes that could still have completed it). Returns the output length.
 */
static size_t
ref_decode(const unsigned char *in, size_t n, unsigned char *out)
{
	size_t i = 0, o = 0;

	while (i < n) {
		unsigned char b = in[i];
		size_t need, m = 0;
		unsigned char lo = 0x80, hi = 0xbf;

		if (b < 0x80) {
			out[o++] = b;
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf) {
			need = 1;
		} else if (b >= 0xe0 && b <= 0xef) {
			need = 2;
			lo = b == 0xe0 ? 0xa0 : 0x80;
			hi = b == 0xed ? 0x9f : 0xbf;
		} else if (b >= 0xf0 && b <= 0xf4) {
			need = 3;
			lo = b == 0xf0 ? 0x90 : 0x80;
			hi = b == 0xf4 ? 0x8f : 0xbf;
		} else {
			need = 0;
		}
		while (need && m < need && i + 1 + m < n) {
			unsigned char c = in[i + 1 + m];

			if (c < (m == 0 ? lo : 0x80) || c > (m == 0 ? hi : 0xbf))
				break;
			m++;
		}
		if (need && m == need) {
			memcpy(out + o, in + i, need + 1);
			o += need + 1;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
		}
		i += 1 + m;
	}
	return o;
}

/* The stream processed line by line, as the standard's steps read. */
static void
reference(const unsigned char *in, size_t n, size_t max, struct events *ev)
{
	unsigned char *t = xmalloc(3 * n + 1);
	size_t tn = ref_decode(in, n, t), pos = 0;
	/* The buffers: data (values each followed by LF), type, last id. */
	char *data = xmalloc(3 * n + 1), *type = xmalloc(3 * n + 1), *last = xmalloc(3 * n + 1);
	size_t dl = 0, tl = 0, ll = 0, esize = 0;
	int has_data = 0, big = 0;

	memset(ev, 0, sizeof(*ev));
	ev->retry = -1;
	ev->max = max;
	if (tn >= 3 && memcmp(t, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	for (;;) {
		size_t start = pos, end, len, nl, vs;
		const unsigned char *line, *colon;

		while (pos < tn && t[pos] != '\r' && t[pos] != '\n')
			pos++;
		if (pos == tn)
			break; /* an unterminated last line is discarded */
		end = pos;
		pos += t[pos] == '\r' && pos + 1 < tn && t[pos + 1] == '\n' ? 2 : 1;
		line = t + start;
		len = end - start;
		if (len == 0) {
			if (has_data && big)
				push(ev, 1, esize, NULL, 0, NULL, 0, last, ll);
			else if (has_data)
				push(ev, 0, esize, tl ? type : "message", tl ? tl : 7, data, dl - 1,
				     last, ll);
			dl = tl = esize = 0;
			has_data = big = 0;
			continue;
		}
		if (line[0] == ':')
			continue;
		esize += len;
		if (esize > max)
			big = 1;
		colon = memchr(line, ':', len);
		nl = colon ? (size_t)(colon - line) : len;
		vs = colon ? nl + 1 : len;
		if (vs < len && line[vs] == ' ')
			vs++;
		if (nl == 4 && memcmp(line, "data", 4) == 0)
			has_data = 1;
		if (big)
			continue;
		if (nl == 4 && memcmp(line, "data", 4) == 0) {
			memcpy(data + dl, line + vs, len - vs);
			dl += len - vs;
			data[dl++] = '\n';
		} else if (nl == 5 && memcmp(line, "event", 5) == 0) {
			memcpy(type, line + vs, len - vs);
			tl = len - vs;
		} else if (nl == 2 && memcmp(line, "id", 2) == 0) {
			if (memchr(line + vs, '\0', len - vs) == NULL) {
				memcpy(last, line + vs, len - vs);
				ll = len - vs;
			}
		} else if (nl == 5 && memcmp(line, "retry", 5) == 0 && vs < len) {
			long long r = 0;
			size_t k;

			for (k = vs; k < len && line[k] >= '0' && line[k] <= '9'; k++)
				if (r < (1LL << 53))
					r = r * 10 + (line[k] - '0');
			if (k == len)
				ev->retry = r < (1LL << 53) ? r : 1LL << 53;
		}
	}
	free(t);
	free(data);
	free(type);
	free(last);
}

/* --- the parser under test --------------------------------------------- */

static int
collect(void *arg, const struct sse_event *e, struct err *err)
{
	struct events *ev = arg;

	(void)err;
	if (e->id == NULL || e->id[e->id_len] != '\0' || !utf8_valid(e->id, e->id_len))
		abort();
	if (e->too_large) {
		if (e->type || e->data || e->type_len || e->data_len || e->size <= ev->max)
			abort();
	} else {
		if (!e->type || !e->data || e->type_len == 0 || e->size > ev->max ||
		    e->type[e->type_len] != '\0' || e->data[e->data_len] != '\0' ||
		    !utf8_valid(e->type, e->type_len) || !utf8_valid(e->data, e->data_len))
			abort();
	}
	push(ev, e->too_large, e->size, e->type, e->type_len, e->data, e->data_len, e->id,
	     e->id_len);
	return 0;
}

enum split { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_CUT, SPLIT_SIZES };

static void
run(const uint8_t *in, size_t n, size_t max, enum split how, size_t arg, struct events *ev)
{
	struct err e;
	struct sse *s;
	size_t off = 0, k = 0, base;

	memset(ev, 0, sizeof(*ev));
	ev->max = max;
	s = sse_new(max, collect, ev, &e);
	if (s == NULL)
		abort();
	base = sse_memory(s);
	while (off < n) {
		size_t len = n - off;
		char *piece;

		if (how == SPLIT_BYTES)
			len = 1;
		else if (how == SPLIT_CUT && off < arg)
			len = arg - off;
		else if (how == SPLIT_SIZES)
			len = 1 + in[k++ % n] % 61;
		if (len > n - off)
			len = n - off;
		piece = copy(in + off, len);
		if (sse_feed(s, piece, len, &e) != 0)
			abort();
		free(piece);
		off += len;
		if (sse_memory(s) > base + 4 * (max + 1))
			abort();
	}
	ev->retry = sse_retry(s);
	sse_free(s);
}

static int
same_bytes(const char *a, size_t al, const char *b, size_t bl)
{
	if ((a == NULL) != (b == NULL) || al != bl)
		return 0;
	return al == 0 || memcmp(a, b, al) == 0;
}

static void
expect_same(const struct events *a, const struct events *b)
{
	size_t i;

	if (a->n != b->n || a->retry != b->retry)
		abort();
	for (i = 0; i < a->n; i++) {
		const struct fev *x = &a->v[i], *y = &b->v[i];

		if (x->too_large != y->too_large || x->size != y->size ||
		    !same_bytes(x->type, x->type_len, y->type, y->type_len) ||
		    !same_bytes(x->data, x->data_len, y->data, y->data_len) ||
		    !same_bytes(x->id, x->id_len, y->id, y->id_len))
			abort();
	}
}

/* --- sse_data_may_contain ------------------------------------------------ */

static int
holds(const char *s, size_t n, const char *word)
{
	size_t w = strlen(word), i;

	for (i = 0; i + w <= n; i++)
		if (memcmp(s + i, word, w) == 0)
			return 1;
	return 0;
}

/* Whether any key or string in v holds word. */
static int
json_holds(json_t *v, const char *word)
{
	size_t i;

	if (json_is_string(v))
		return holds(json_string_value(v), json_string_length(v), word);
	if (json_is_array(v)) {
		for (i = 0; i < json_array_size(v); i++)
			if (json_holds(json_array_get(v, i), word))
				return 1;
	}
	if (json_is_object(v)) {
		void *it;

		for (it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
			const char *key = json_object_iter_key(it);

			if (holds(key, strlen(key), word) ||
			    json_holds(json_object_iter_value(it), word))
				return 1;
		}
	}
	return 0;
}

static void
check_may_contain(const char *text, size_t n)
{
	static const char *const words[] = {"container", "x/y", "id"};
	json_error_t je;
	json_t *v = json_loadb(text, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		int may = sse_data_may_contain(text, n, words[i]);

		if (may != 0 && may != 1)
			abort();
		if (v && !may && json_holds(v, words[i]))
			abort();
		if (!may && holds(text, n, words[i]))
			abort();
	}
	json_decref(v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct events want, got;
	const uint8_t *in = data + 1;
	size_t n, max, i;

	if (size == 0)
		return 0;
	n = size - 1;
	/* Small limits, so that events go past them, and a large one. */
	max = data[0] >= 0xf0 ? 65536 : 1 + (size_t)data[0] * 3;

	reference(in, n, max, &want);
	run(in, n, max, SPLIT_WHOLE, 0, &got);
	expect_same(&want, &got);
	for (i = 0; i < got.n; i++)
		if (!got.v[i].too_large)
			check_may_contain(got.v[i].data, got.v[i].data_len);
	events_free(&got);
	check_may_contain((const char *)in, n);

	run(in, n, max, SPLIT_BYTES, 0, &got);
	expect_same(&want, &got);
	events_free(&got);
	if (n > 1) {
		run(in, n, max, SPLIT_CUT, 1 + (size_t)data[size - 1] * 31 % (n - 1), &got);
		expect_same(&want, &got);
		events_free(&got);
		run(in, n, max, SPLIT_SIZES, 0, &got);
		expect_same(&want, &got);
		events_free(&got);
	}
	events_free(&want);
	return 0;
}
