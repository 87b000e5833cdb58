#include "lib/jsonbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsondoc.h"
#include "lib/secmem.h"
#include "lib/utf8.h"

#define NEST_MAX 32 /* containers opened with jsonbuf_open */
/* Nesting of a json_t written whole: as deep as jansson parses
 * (JSON_PARSER_MAX_DEPTH), so every body the gateway took can be sent on. */
#define VALUE_MAX 2048

struct jsonbuf {
	char *p;
	size_t len, cap, max;
	int failed;
	int depth;
	int after_key;
	unsigned char has[NEST_MAX + 1]; /* the container has a member already */
	char closer[NEST_MAX + 1];
	/* jsonbuf_dump_spooled: where spooled strings go; else NULL and a
	 * stand-in is an error. */
	int spooled;
	struct jsonbuf_hole *holes;
	size_t nholes, holes_cap;
};

struct jsonbuf *
jsonbuf_new(size_t hint, size_t max)
{
	struct jsonbuf *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->max = max;
	b->cap = hint < 64 ? 64 : hint > max ? max + 1 : hint;
	b->p = secmem_alloc(b->cap);
	if (b->p == NULL) {
		free(b);
		return NULL;
	}
	return b;
}

void
jsonbuf_free(struct jsonbuf *b)
{
	if (b == NULL)
		return;
	secmem_free(b->p);
	free(b->holes);
	free(b);
}

/* Room for n more bytes and a NUL, or the sticky error. */
static int
reserve(struct jsonbuf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->failed)
		return -1;
	if (n > b->max - b->len) {
		b->failed = 1;
		return -1;
	}
	if (n <= b->cap - b->len - 1)
		return 0;
	cap = b->cap * 2;
	if (cap < b->len + n + 1)
		cap = b->len + n + 1;
	if (cap > b->max + 1)
		cap = b->max + 1;
	p = secmem_realloc(b->p, cap);
	if (p == NULL) {
		b->failed = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

static void
put(struct jsonbuf *b, const void *s, size_t n)
{
	if (reserve(b, n) == 0) {
		memcpy(b->p + b->len, s, n);
		b->len += n;
	}
}

static void
put_char(struct jsonbuf *b, char c)
{
	if (reserve(b, 1) == 0)
		b->p[b->len++] = c;
}

/* The comma between members, unless this value follows its key. */
static void
before_value(struct jsonbuf *b)
{
	if (b->after_key) {
		b->after_key = 0;
		return;
	}
	if (b->depth > 0) {
		if (b->has[b->depth])
			put_char(b, ',');
		b->has[b->depth] = 1;
	}
}

static void
put_string(struct jsonbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run, k;
	char esc[6];

	/* Most strings need no escape: one reservation and one copy. */
	if (jsondoc_plain_run(s, n) == n) {
		if (reserve(b, n + 2) == 0) {
			b->p[b->len] = '"';
			memcpy(b->p + b->len + 1, s, n);
			b->p[b->len + 1 + n] = '"';
			b->len += n + 2;
		}
		return;
	}
	put_char(b, '"');
	while (i < n) {
		run = i + jsondoc_plain_run(s + i, n - i);
		put(b, s + i, run - i);
		if ((i = run) >= n)
			break;
		if (u[i] >= 0x80) {
			k = utf8_seq(u + i, n - i);
			if (k > 0)
				put(b, s + i, k);
			else
				put(b, "\xef\xbf\xbd", 3);
			i += k > 0 ? k : 1;
			continue;
		}
		esc[0] = '\\';
		switch (u[i]) {
		case '"':
		case '\\':
			esc[1] = (char)u[i];
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[u[i] >> 4];
			esc[5] = hex[u[i] & 15];
			put(b, esc, 6);
			i++;
			continue;
		}
		put(b, esc, 2);
		i++;
	}
	put_char(b, '"');
}

void
jsonbuf_open(struct jsonbuf *b, char brace)
{
	before_value(b);
	if (b->depth >= NEST_MAX) {
		b->failed = 1;
		return;
	}
	b->depth++;
	b->has[b->depth] = 0;
	b->closer[b->depth] = brace == '{' ? '}' : ']';
	put_char(b, brace);
}

void
jsonbuf_close(struct jsonbuf *b)
{
	if (b->depth == 0) {
		b->failed = 1;
		return;
	}
	put_char(b, b->closer[b->depth--]);
}

void
jsonbuf_key(struct jsonbuf *b, const char *key)
{
	if (b->depth > 0 && b->has[b->depth])
		put_char(b, ',');
	b->has[b->depth] = 1;
	put_string(b, key, strlen(key));
	if (reserve(b, 1) == 0)
		b->p[b->len++] = ':';
	b->after_key = 1;
}

void
jsonbuf_null(struct jsonbuf *b)
{
	before_value(b);
	put(b, "null", 4);
}

void
jsonbuf_str(struct jsonbuf *b, const char *s)
{
	if (s == NULL) {
		jsonbuf_null(b);
		return;
	}
	before_value(b);
	put_string(b, s, strlen(s));
}

static void
put_int(struct jsonbuf *b, long long v)
{
	char digits[24];
	size_t i = sizeof(digits);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		digits[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		digits[--i] = '-';
	put(b, digits + i, sizeof(digits) - i);
}

void
jsonbuf_int(struct jsonbuf *b, long long v)
{
	before_value(b);
	put_int(b, v);
}

/* "1e+05" as "1e5", "1e-05" as "1e-5": the shortest form, as jansson. */
static void
exponent_short(char *text, int *n)
{
	char *e = strchr(text, 'e'), *from, *to;

	if (e == NULL)
		return;
	to = e + 1;
	from = to;
	if (*from == '-')
		to++, from++;
	else if (*from == '+')
		from++;
	while (*from == '0' && from[1] != '\0')
		from++;
	memmove(to, from, strlen(from) + 1);
	*n = (int)strlen(text);
}

/* As jansson writes a real: %.*g, with ".0" added when that reads as an
 * integer, so the type survives a round trip. */
static void
put_real(struct jsonbuf *b, double v, int precision)
{
	char text[40];
	int n = snprintf(text, sizeof(text) - 2, "%.*g", precision, v);

	if (n <= 0 || (size_t)n >= sizeof(text) - 2) {
		b->failed = 1;
		return;
	}
	if (strpbrk(text, ".eEn") == NULL) {
		memcpy(text + n, ".0", 3);
		n += 2;
	}
	exponent_short(text, &n);
	put(b, text, (size_t)n);
}

void
jsonbuf_real(struct jsonbuf *b, double v, int precision)
{
	before_value(b);
	put_real(b, v, precision);
}

void
jsonbuf_decimal(struct jsonbuf *b, double v, int places)
{
	static const unsigned long long scale[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
	char text[48], *end = text + sizeof(text), *p = end;
	unsigned long long k, whole, frac;
	int neg = v < 0, i, keep;

	before_value(b);
	if (!(v > -1e12 && v < 1e12) || places < 1 || places > 6) {
		put_real(b, v, 12);
		return;
	}
	k = (unsigned long long)((neg ? -v : v) * (double)scale[places] + 0.5);
	whole = k / scale[places];
	frac = k % scale[places];
	/* The fraction's digits, less its trailing zeros, one kept. */
	for (keep = places; keep > 1 && frac % 10 == 0; keep--)
		frac /= 10;
	for (i = 0; i < keep; i++, frac /= 10)
		*--p = (char)('0' + frac % 10);
	*--p = '.';
	do
		*--p = (char)('0' + whole % 10);
	while ((whole /= 10) > 0);
	if (neg && k > 0)
		*--p = '-';
	put(b, p, (size_t)(end - p));
}

void
jsonbuf_bool(struct jsonbuf *b, int v)
{
	before_value(b);
	put(b, v ? "true" : "false", v ? 4 : 5);
}

/* A spooled string's stand-in, as "" and a hole for its text; no string
 * the parser reads begins with a NUL, so any other such string is one
 * the gateway cannot write. */
static void
put_spooled(struct jsonbuf *b, const json_t *v)
{
	struct jsondoc_spooled s;

	if (!b->spooled || !jsondoc_spooled_of(v, &s)) {
		b->failed = 1;
		return;
	}
	if (b->nholes == b->holes_cap) {
		size_t cap = b->holes_cap ? b->holes_cap * 2 : 4;
		struct jsonbuf_hole *p = realloc(b->holes, cap * sizeof(*p));

		if (p == NULL) {
			b->failed = 1;
			return;
		}
		b->holes = p;
		b->holes_cap = cap;
	}
	put(b, "\"\"", 2);
	b->holes[b->nholes++] = (struct jsonbuf_hole){b->len - 1, s.off, s.raw_len};
}

static void
put_json(struct jsonbuf *b, const json_t *v, int depth)
{
	const char *key;
	json_t *m;
	size_t i;
	int first = 1;

	if (depth > VALUE_MAX) {
		b->failed = 1;
		return;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		put_char(b, '{');
		json_object_foreach((json_t *)(uintptr_t)v, key, m)
		{
			if (!first)
				put_char(b, ',');
			first = 0;
			put_string(b, key, strlen(key));
			put_char(b, ':');
			put_json(b, m, depth + 1);
		}
		put_char(b, '}');
		break;
	case JSON_ARRAY:
		put_char(b, '[');
		json_array_foreach(v, i, m)
		{
			if (i > 0)
				put_char(b, ',');
			put_json(b, m, depth + 1);
		}
		put_char(b, ']');
		break;
	case JSON_STRING:
		if (json_string_value(v)[0] == '\0' && json_string_length(v) > 0)
			put_spooled(b, v);
		else
			put_string(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		put_int(b, (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		put_real(b, json_real_value(v), 17);
		break;
	case JSON_TRUE:
		put(b, "true", 4);
		break;
	case JSON_FALSE:
		put(b, "false", 5);
		break;
	case JSON_NULL:
		put(b, "null", 4);
		break;
	}
}

void
jsonbuf_json(struct jsonbuf *b, const json_t *v)
{
	before_value(b);
	if (v == NULL)
		put(b, "null", 4);
	else
		put_json(b, v, 0);
}

void
jsonbuf_raw(struct jsonbuf *b, const char *s, size_t n)
{
	put(b, s, n);
}

const char *
jsonbuf_text(const struct jsonbuf *b, size_t *len)
{
	if (b->failed)
		return NULL;
	*len = b->len;
	return b->p;
}

char *
jsonbuf_take(struct jsonbuf *b, size_t *len)
{
	char *p = NULL;

	if (b == NULL)
		return NULL;
	if (!b->failed) {
		b->p[b->len] = '\0';
		*len = b->len;
		p = b->p;
		b->p = NULL;
	}
	jsonbuf_free(b);
	return p;
}

char *
jsonbuf_dump(const json_t *v, size_t hint, size_t max, size_t *len)
{
	struct jsonbuf *b = jsonbuf_new(hint, max);

	if (b == NULL)
		return NULL;
	jsonbuf_json(b, v);
	return jsonbuf_take(b, len);
}

char *
jsonbuf_dump_spooled(const json_t *v, size_t hint, size_t max, size_t *len,
                     struct jsonbuf_hole **holes, size_t *nholes)
{
	struct jsonbuf *b = jsonbuf_new(hint, max);
	char *text;

	*holes = NULL;
	*nholes = 0;
	if (b == NULL)
		return NULL;
	b->spooled = 1;
	jsonbuf_json(b, v);
	if (!b->failed) {
		*holes = b->holes;
		*nholes = b->nholes;
		b->holes = NULL;
	}
	text = jsonbuf_take(b, len);
	if (text == NULL) {
		free(*holes);
		*holes = NULL;
		*nholes = 0;
	}
	return text;
}
