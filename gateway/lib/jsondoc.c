#include "lib/jsondoc.h"

#include <errno.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hex.h"
#include "lib/secmem.h"
#include "lib/text.h"
#include "lib/utf8.h"

#define PATH_DEPTH 32  /* frames tracked when locating an error */
#define KEY_MAX    128 /* longest key shown in a path */

int
jsondoc_key_showable(const char *key)
{
	size_t i;

	for (i = 0; key[i]; i++)
		if (i >= KEY_MAX || (unsigned char)key[i] < 0x20 || (unsigned char)key[i] > 0x7e)
			return 0;
	return i > 0;
}

size_t
jsondoc_path_push_key(char *dst, size_t n, const char *key)
{
	size_t old = strlen(dst), klen = strlen(key), at = old;

	/* A key that does not fit, or is not short printable ASCII, is left
	 * out whole: it could be anything, even a secret. The path then names
	 * the parent. */
	if (jsondoc_key_showable(key) && old + (old ? 1 : 0) + klen < n) {
		if (at > 0)
			dst[at++] = '.';
		memcpy(dst + at, key, klen + 1);
	}
	return old;
}

size_t
jsondoc_path_push_index(char *dst, size_t n, size_t i)
{
	size_t old = strlen(dst), k;
	char idx[24];

	idx[0] = '[';
	k = 1 + text_u64(idx + 1, i);
	idx[k++] = ']';
	idx[k] = '\0';
	if (old + k < n)
		memcpy(dst + old, idx, k + 1);
	return old;
}

struct frame {
	int is_object;
	int have_key;
	int key_ok; /* the key can be shown: short, printable ASCII, closed */
	size_t index;
	char key[KEY_MAX + 1];
};

/*
 * Reads a string starting after its opening quote; returns the offset of
 * the byte after the closing quote, or limit if it does not close before.
 * With f, keeps the string as f's key when it can be shown in a path:
 * printable ASCII (escapes of it decoded), at most KEY_MAX bytes, closed.
 * Anything else, including bytes that may be a secret pasted where a key
 * belongs, is not shown.
 */
static size_t
scan_string(const char *buf, size_t i, size_t limit, struct frame *f)
{
	size_t k = 0;
	int ok = 1, closed = 0;
	unsigned u;

	while (i < limit) {
		unsigned char c = (unsigned char)buf[i++];

		if (c == '"') {
			closed = 1;
			break;
		}
		if (c == '\\') {
			if (i >= limit)
				break;
			c = (unsigned char)buf[i++];
			if (c == 'u' && i + 4 <= limit && hex_u16(buf + i, &u) == 0) {
				i += 4;
				c = u >= 0x20 && u < 0x7f ? (unsigned char)u : 0;
			} else if (c != '"' && c != '\\' && c != '/') {
				c = 0; /* \b \f \n \r \t: control characters */
			}
		}
		if (c < 0x20 || c >= 0x7f || k >= KEY_MAX)
			ok = 0;
		else if (f)
			f->key[k++] = (char)c;
	}
	if (f) {
		f->key[k] = '\0';
		f->key_ok = ok && closed && k > 0;
	}
	return i;
}

int
jsondoc_path_at(const char *buf, size_t len, size_t off, char *dst, size_t n)
{
	struct frame st[PATH_DEPTH];
	size_t depth = 0, deep = 0, i = 0, d;

	if (off > len)
		off = len;
	while (i < off) {
		char c = buf[i++];
		struct frame *top = depth ? &st[depth - 1] : NULL;

		switch (c) {
		case '{':
		case '[':
			if (depth < PATH_DEPTH) {
				st[depth].is_object = c == '{';
				st[depth].have_key = 0;
				st[depth].key_ok = 0;
				st[depth].index = 0;
				st[depth].key[0] = '\0';
				depth++;
			} else {
				deep++;
			}
			break;
		case '}':
		case ']':
			if (deep)
				deep--;
			else if (depth)
				depth--;
			break;
		case ',':
			if (top && !deep) {
				if (top->is_object)
					top->have_key = 0;
				else
					top->index++;
			}
			break;
		case '"':
			if (top && !deep && top->is_object && !top->have_key) {
				i = scan_string(buf, i, off, top);
				top->have_key = 1;
			} else {
				i = scan_string(buf, i, off, NULL);
			}
			break;
		default:
			break;
		}
	}
	dst[0] = '\0';
	/* Elements that do not fit end the path: a prefix, never a gap. */
	for (d = 0; d < depth; d++) {
		size_t before = strlen(dst);

		if (st[d].is_object && st[d].have_key) {
			if (!st[d].key_ok)
				return 0;
			jsondoc_path_push_key(dst, n, st[d].key);
		} else if (!st[d].is_object) {
			jsondoc_path_push_index(dst, n, st[d].index);
		} else {
			continue;
		}
		if (strlen(dst) == before)
			return 0;
	}
	return deep == 0;
}

/* --- the parser ---------------------------------------------------------- */

/*
 * The gateway's own reader, building jansson values. jansson's parser reads
 * a byte at a time through a stream and copies every string through a
 * growing buffer: most of a small request's parse, and for a 64 MiB inline
 * skill most of the request, with the body held about three times over.
 * This one scans a string's plain run in one loop and copies it once.
 * What it accepts is what json_loadb(JSON_REJECT_DUPLICATES) accepts
 * (test_jsondoc compares the two on every case file).
 */
enum perr {
	PE_NONE = JSONDOC_OK,
	PE_SYNTAX = JSONDOC_SYNTAX,
	PE_UTF8 = JSONDOC_UTF8,
	PE_NUL = JSONDOC_NUL,
	PE_END = JSONDOC_END,
	PE_OVERFLOW,
	PE_DEEP,
	PE_TRAILING,
	PE_DUPLICATE,
	PE_MEMORY,
};

struct parser {
	const char *buf;
	size_t len, i;
	enum perr err;
	size_t err_at;
	/* Spooled strings, the next one to come, and the one that failed. */
	const struct jsondoc_ref *refs;
	size_t nrefs, next;
	const struct jsondoc_ref *err_ref;
};

static json_t *parse_value(struct parser *p, int depth);

/* Notes the first error; returns -1 (fail) or NULL (failed) to pass up. */
static int
fail(struct parser *p, enum perr err, size_t at)
{
	if (p->err == PE_NONE) {
		p->err = err;
		p->err_at = at;
	}
	return -1;
}

static json_t *
failed(struct parser *p, enum perr err, size_t at)
{
	fail(p, err, at);
	return NULL;
}

static void
skip_space(struct parser *p)
{
	while (p->i < p->len) {
		char c = p->buf[p->i];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return;
		p->i++;
	}
}

static int
digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Where the token starting at i ends: an unexpected token is reported past
 * its end, as jansson (which reads a whole token before judging it) does,
 * so an error's path is the same: "x" after a key without a colon names the
 * key, a ',' there does not, a ']' after a trailing comma closes the array.
 */
static size_t
token_end(const struct parser *p, size_t i)
{
	const char *b = p->buf;
	size_t start;

	if (i >= p->len)
		return p->len;
	if (b[i] == '"') {
		for (i++; i < p->len && b[i] != '"'; i++)
			if (b[i] == '\\')
				i++;
		return i < p->len ? i + 1 : p->len;
	}
	start = i;
	while (i < p->len &&
	       (digit(b[i]) || (b[i] >= 'a' && b[i] <= 'z') || (b[i] >= 'A' && b[i] <= 'Z') ||
	        b[i] == '+' || b[i] == '-' || b[i] == '.'))
		i++;
	/* Punctuation, or any other byte, is a token of one. */
	return i > start ? i : i + 1;
}

static int
plain_byte(unsigned char c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Bytes of w that are zero get their high bit set (and only those, when
 * no byte of w has its own high bit set). */
static uint64_t
zero_bytes(uint64_t w)
{
	return (w - ONES) & ~w & HIGHS;
}

size_t
jsondoc_plain_run(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	uint64_t w;

#ifdef __SSE2__
	/* Sixteen at a time where x86-64 always has SSE2. Signed compares: a
	 * byte >= 0x80 reads as negative, so "< 0x20" catches it too. */
	const __m128i space = _mm_set1_epi8(0x20), quote = _mm_set1_epi8('"'),
	              slash = _mm_set1_epi8('\\');

	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(u + i));
		__m128i bad = _mm_or_si128(
		        _mm_cmplt_epi8(v, space),
		        _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)));

		if (_mm_movemask_epi8(bad) != 0)
			break;
	}
#endif
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, u + i, 8);
		/* Any byte >= 0x80, < 0x20, '"' or '\\' stops the fast way. */
		if ((w & HIGHS) || zero_bytes(w & ~(ONES * 0x1f)) || zero_bytes(w ^ (ONES * '"')) ||
		    zero_bytes(w ^ (ONES * '\\')))
			break;
	}
	while (i < n && plain_byte(u[i]))
		i++;
	return i;
}

/* One \uXXXX escape (p->i at the 'u'), a surrogate pair taken whole, as
 * UTF-8 into out; returns its length, or 0 after fail(). */
static size_t
unicode_escape(struct parser *p, char *out)
{
	unsigned cp, lo;

	if (p->i + 5 > p->len) {
		fail(p, PE_END, p->len);
		return 0;
	}
	if (hex_u16(p->buf + p->i + 1, &cp) < 0) {
		fail(p, PE_SYNTAX, p->i);
		return 0;
	}
	p->i += 5;
	if (cp >= 0xd800 && cp <= 0xdbff && p->i + 6 <= p->len && p->buf[p->i] == '\\' &&
	    p->buf[p->i + 1] == 'u' && hex_u16(p->buf + p->i + 2, &lo) == 0 && lo >= 0xdc00 &&
	    lo <= 0xdfff) {
		p->i += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	/* A surrogate left alone is not a character. */
	if (cp >= 0xd800 && cp <= 0xdfff) {
		fail(p, PE_SYNTAX, p->i);
		return 0;
	}
	if (cp == 0) {
		fail(p, PE_NUL, p->i);
		return 0;
	}
	return utf8_put(cp, out);
}

char
jsondoc_unescape(unsigned char c)
{
	switch (c) {
	case '"':
	case '\\':
	case '/':
		return (char)c;
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	default:
		return '\0';
	}
}

/* Bytes from start to the string's closing quote (or the end), scanning
 * from i, where an escape begins. */
static size_t
raw_length(const struct parser *p, size_t i, size_t start)
{
	while (i < p->len && p->buf[i] != '"') {
		if (p->buf[i] == '\\')
			i++;
		i++;
		if (i < p->len)
			i += jsondoc_plain_run(p->buf + i, p->len - i);
	}
	return (i < p->len ? i : p->len) - start;
}

/*
 * A string, p->i just past its opening quote. Its text is *s (n bytes):
 * a pointer into the buffer when it has no escapes, else *owned, a wiped
 * buffer the caller frees. Returns 0, or -1 after fail().
 */
static int
read_string(struct parser *p, const char **s, size_t *n, char **owned)
{
	const unsigned char *u = (const unsigned char *)p->buf;
	size_t start = p->i, k, o = 0;
	char *out = NULL;

	*owned = NULL;
	for (;;) {
		p->i += jsondoc_plain_run(p->buf + p->i, p->len - p->i);
		if (p->i >= p->len)
			goto end;
		if (u[p->i] == '"')
			break;
		if (u[p->i] >= 0x80) {
			k = utf8_seq(u + p->i, p->len - p->i);
			if (k == 0) {
				fail(p, PE_UTF8, p->i);
				goto bad;
			}
			p->i += k;
			continue;
		}
		if (u[p->i] < 0x20) {
			fail(p, PE_SYNTAX, p->i);
			goto bad;
		}
		/* A backslash: the text is decoded into out, sized to this
		 * string (decoded text is never longer than what encodes it),
		 * not to the rest of the body: many short strings with escapes
		 * must not each cost the body's size. */
		out = secmem_alloc(raw_length(p, p->i, start) + 1);
		if (out == NULL) {
			fail(p, PE_MEMORY, p->i);
			goto bad;
		}
		break;
	}
	if (out == NULL) {
		*s = p->buf + start;
		*n = p->i - start;
		p->i++;
		return 0;
	}
	/* The slow way, for strings with escapes. */
	p->i = start;
	while (p->i < p->len && u[p->i] != '"') {
		if (u[p->i] != '\\') {
			k = u[p->i] < 0x80 ? 1 : utf8_seq(u + p->i, p->len - p->i);
			if (u[p->i] < 0x20 || k == 0) {
				fail(p, k ? PE_SYNTAX : PE_UTF8, p->i);
				goto bad;
			}
			memcpy(out + o, p->buf + p->i, k);
			o += k;
			p->i += k;
			continue;
		}
		if (++p->i >= p->len)
			goto end;
		if (u[p->i] == 'u') {
			k = unicode_escape(p, out + o);
			if (k == 0)
				goto bad;
			o += k;
		} else if ((out[o] = jsondoc_unescape(u[p->i])) != '\0') {
			o++;
			p->i++;
		} else {
			fail(p, PE_SYNTAX, p->i);
			goto bad;
		}
	}
	if (p->i >= p->len)
		goto end;
	p->i++;
	*s = out;
	*n = o;
	*owned = out;
	return 0;
end:
	fail(p, PE_END, p->len);
bad:
	if (out) {
		secmem_wipe(out, o);
		secmem_free(out);
	}
	return -1;
}

static json_t *
parse_string(struct parser *p)
{
	const char *s;
	char *owned;
	size_t n;
	json_t *v;

	if (read_string(p, &s, &n, &owned) < 0)
		return NULL;
	v = json_stringn_nocheck(s, n);
	if (owned) {
		secmem_wipe(owned, n);
		secmem_free(owned);
	}
	return v ? v : failed(p, PE_MEMORY, p->i);
}

/* A stand-in begins with a NUL, which no string the parser reads holds. */
#define STAND_IN_LEN (1 + sizeof(struct jsondoc_spooled))

int
jsondoc_spooled_of(const json_t *v, struct jsondoc_spooled *s)
{
	const char *text = json_string_value(v);

	if (text == NULL || json_string_length(v) != STAND_IN_LEN || text[0] != '\0')
		return 0;
	memcpy(s, text + 1, sizeof(*s));
	return 1;
}

/* The spooled string whose stand-in "" begins here (p->i just past its
 * opening quote), or the fault its text has. */
static json_t *
parse_spooled(struct parser *p)
{
	const struct jsondoc_ref *ref = &p->refs[p->next++];
	char text[STAND_IN_LEN];
	json_t *v;

	if (ref->fault != JSONDOC_OK) {
		p->err_ref = ref;
		return failed(p, (enum perr)ref->fault, p->i);
	}
	if (p->i >= p->len || p->buf[p->i] != '"')
		return failed(p, PE_SYNTAX, p->i);
	p->i++;
	text[0] = '\0';
	memcpy(text + 1, &ref->s, sizeof(ref->s));
	v = json_stringn_nocheck(text, sizeof(text));
	return v ? v : failed(p, PE_MEMORY, p->i);
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? as an integer when it has
 * neither fraction nor exponent, else a real; either must fit. */
static json_t *
parse_number(struct parser *p)
{
	const char *b = p->buf;
	size_t start = p->i, i = p->i;
	int real = 0;
	char tmp[64], *heap = NULL, *txt, *stop;
	json_t *v;

	if (i < p->len && b[i] == '-')
		i++;
	if (i >= p->len)
		return failed(p, PE_END, p->len);
	if (b[i] == '0') {
		if (++i < p->len && digit(b[i]))
			return failed(p, PE_SYNTAX, i);
	} else if (digit(b[i])) {
		while (i < p->len && digit(b[i]))
			i++;
	} else {
		return failed(p, PE_SYNTAX, token_end(p, i));
	}
	if (i < p->len && b[i] == '.') {
		real = 1;
		if (++i >= p->len || !digit(b[i]))
			return failed(p, i >= p->len ? PE_END : PE_SYNTAX, i);
		while (i < p->len && digit(b[i]))
			i++;
	}
	if (i < p->len && (b[i] == 'e' || b[i] == 'E')) {
		real = 1;
		if (++i < p->len && (b[i] == '+' || b[i] == '-'))
			i++;
		if (i >= p->len || !digit(b[i]))
			return failed(p, i >= p->len ? PE_END : PE_SYNTAX, i);
		while (i < p->len && digit(b[i]))
			i++;
	}
	p->i = i;
	/* strtoll and strtod want the token NUL-terminated. */
	if (i - start < sizeof(tmp))
		txt = tmp;
	else if ((txt = heap = malloc(i - start + 1)) == NULL)
		return failed(p, PE_MEMORY, start);
	memcpy(txt, b + start, i - start);
	txt[i - start] = '\0';
	errno = 0;
	if (real) {
		double d = strtod(txt, &stop);

		/* Too small rounds to zero, as jansson takes it; too big fails. */
		v = isinf(d) ? failed(p, PE_OVERFLOW, i) : json_real(d);
	} else {
		long long n = strtoll(txt, &stop, 10);

		v = errno == ERANGE ? failed(p, PE_OVERFLOW, i) : json_integer((json_int_t)n);
	}
	free(heap);
	return v || p->err != PE_NONE ? v : failed(p, PE_MEMORY, i);
}

static json_t *
parse_word(struct parser *p, const char *word, json_t *v)
{
	size_t n = strlen(word);

	if (p->len - p->i < n || memcmp(p->buf + p->i, word, n) != 0)
		return failed(p, PE_SYNTAX, token_end(p, p->i));
	p->i += n;
	return v;
}

/* After a member or element: ',' (1) or the closer (0); -1 after fail(). */
static int
next_member(struct parser *p, char closer)
{
	skip_space(p);
	if (p->i < p->len && p->buf[p->i] == ',') {
		p->i++;
		skip_space(p);
		return 1;
	}
	if (p->i < p->len && p->buf[p->i] == closer) {
		p->i++;
		return 0;
	}
	return fail(p, p->i >= p->len ? PE_END : PE_SYNTAX, token_end(p, p->i));
}

/* One "key": value into o; 0, or -1 after fail(). */
static int
parse_member(struct parser *p, json_t *o, int depth)
{
	const char *key;
	char *owned;
	size_t n;
	json_t *v = NULL;
	int rc = -1;

	if (p->i >= p->len || p->buf[p->i] != '"')
		return fail(p, p->i >= p->len ? PE_END : PE_SYNTAX, token_end(p, p->i));
	p->i++;
	if (read_string(p, &key, &n, &owned) < 0)
		return -1;
	/* Where the key ends: an error there names it as the path. */
	if (json_object_getn(o, key, n) != NULL) {
		fail(p, PE_DUPLICATE, p->i);
		goto out;
	}
	skip_space(p);
	if (p->i >= p->len || p->buf[p->i] != ':') {
		fail(p, p->i >= p->len ? PE_END : PE_SYNTAX, token_end(p, p->i));
		goto out;
	}
	p->i++;
	if ((v = parse_value(p, depth)) == NULL)
		goto out;
	if (json_object_setn_new_nocheck(o, key, n, v) < 0) {
		fail(p, PE_MEMORY, p->i);
		goto out;
	}
	rc = 0;
out:
	if (owned) {
		secmem_wipe(owned, n);
		secmem_free(owned);
	}
	return rc;
}

static json_t *
parse_object(struct parser *p, int depth)
{
	json_t *o = json_object();

	if (o == NULL)
		return failed(p, PE_MEMORY, p->i);
	p->i++; /* { */
	skip_space(p);
	if (p->i < p->len && p->buf[p->i] == '}') {
		p->i++;
		return o;
	}
	do {
		if (parse_member(p, o, depth + 1) < 0)
			break;
	} while (next_member(p, '}') == 1);
	if (p->err == PE_NONE)
		return o;
	json_decref(o);
	return NULL;
}

static json_t *
parse_array(struct parser *p, int depth)
{
	json_t *a = json_array(), *v;

	if (a == NULL)
		return failed(p, PE_MEMORY, p->i);
	p->i++; /* [ */
	skip_space(p);
	if (p->i < p->len && p->buf[p->i] == ']') {
		p->i++;
		return a;
	}
	do {
		if ((v = parse_value(p, depth + 1)) == NULL)
			break;
		if (json_array_append_new(a, v) < 0) {
			fail(p, PE_MEMORY, p->i);
			break;
		}
	} while (next_member(p, ']') == 1);
	if (p->err == PE_NONE)
		return a;
	json_decref(a);
	return NULL;
}

static json_t *
parse_value(struct parser *p, int depth)
{
	skip_space(p);
	if (p->i >= p->len)
		return failed(p, PE_END, p->len);
	if (depth > JSON_PARSER_MAX_DEPTH)
		return failed(p, PE_DEEP, p->i);
	switch (p->buf[p->i]) {
	case '{':
		return parse_object(p, depth);
	case '[':
		return parse_array(p, depth);
	case '"':
		p->i++;
		if (p->next < p->nrefs && p->refs[p->next].at == p->i)
			return parse_spooled(p);
		return parse_string(p);
	case 't':
		return parse_word(p, "true", json_true());
	case 'f':
		return parse_word(p, "false", json_false());
	case 'n':
		return parse_word(p, "null", json_null());
	default:
		return parse_number(p);
	}
}

/* Where byte off of the text parsed was in the body: past the spooled
 * strings' text taken out before it. */
static uint64_t
body_offset(const struct parser *p, size_t off)
{
	uint64_t at = off;
	size_t k;

	for (k = 0; k < p->nrefs && p->refs[k].at <= off; k++)
		if (p->refs[k].fault == JSONDOC_OK)
			at += p->refs[k].s.raw_len;
	return at;
}

/* The error's line and column (1-based, in bytes) and byte offset in the
 * body, for messages. A spooled string holds no line break (it would be
 * an error), so the lines are the text's. */
static void
line_column(const struct parser *p, int *line, int *column, uint64_t *at)
{
	size_t i, from = 0;

	*line = 1;
	for (i = 0; i < p->err_at; i++)
		if (p->buf[i] == '\n') {
			(*line)++;
			from = i + 1;
		}
	*at = p->err_ref ? p->err_ref->fault_at : body_offset(p, p->err_at);
	*column = (int)(*at - body_offset(p, from)) + 1;
}

/* The whole document: an object or an array, then only whitespace. */
static json_t *
parse_document(struct parser *p)
{
	json_t *doc;

	skip_space(p);
	if (p->i < p->len && p->buf[p->i] != '{' && p->buf[p->i] != '[')
		return failed(p, PE_SYNTAX, token_end(p, p->i));
	if ((doc = parse_value(p, 1)) == NULL)
		return NULL;
	skip_space(p);
	if (p->i < p->len) {
		json_decref(doc);
		return failed(p, PE_TRAILING, p->i);
	}
	return doc;
}

json_t *
jsondoc_parse(const char *buf, size_t len, struct err *e)
{
	return jsondoc_parse_spooled(buf, len, NULL, 0, e);
}

json_t *
jsondoc_parse_spooled(const char *buf, size_t len, const struct jsondoc_ref *refs, size_t nrefs,
                      struct err *e)
{
	struct parser p = {.buf = buf, .len = len, .refs = refs, .nrefs = nrefs};
	json_t *doc;
	char path[ERR_PARAM_MAX], q[96];
	unsigned long oom_before;
	uint64_t at;
	int whole, line, column;

	if (len == 0) {
		err_set(e, 400, ERR_INVALID, "invalid_json", NULL,
		        "request body is empty; send a JSON object");
		return NULL;
	}
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
		err_set(e, 400, ERR_INVALID, "invalid_json", NULL,
		        "request body starts with a byte order mark; send UTF-8 JSON without one");
		return NULL;
	}

	oom_before = secmem_failures();
	doc = parse_document(&p);
	if (doc != NULL) {
		if (json_is_object(doc))
			return doc;
		json_decref(doc);
		err_set(e, 400, ERR_INVALID, "invalid_json", NULL,
		        "body must be a JSON object, not an array");
		return NULL;
	}
	if (p.err == PE_MEMORY || secmem_failures() != oom_before) {
		err_set(e, 503, ERR_INTERNAL, "out_of_memory", NULL,
		        "the gateway ran out of memory reading the body; try again");
		return NULL;
	}

	/* The message gives the place, never the bytes there: they may be a
	 * secret. */
	whole = jsondoc_path_at(buf, len, p.err_at, path, sizeof(path));
	line_column(&p, &line, &column, &at);
	switch (p.err) {
	case PE_DUPLICATE:
		if (whole) {
			const char *dot = strrchr(path, '.'), *key = dot ? dot + 1 : path;

			err_quote(q, sizeof(q), key, strlen(key));
			err_set(e, 400, ERR_INVALID, "duplicate_key", path,
			        "key %s appears more than once in the same object (line %d, column "
			        "%d); each key may appear once",
			        q, line, column);
		} else {
			err_set(e, 400, ERR_INVALID, "duplicate_key", path,
			        "a key appears more than once in the same object (line %d, column "
			        "%d); each key may appear once",
			        line, column);
		}
		break;
	case PE_UTF8:
		err_set(e, 400, ERR_INVALID, "invalid_json", path,
		        "body is not valid UTF-8 at byte %llu; send UTF-8 encoded JSON",
		        (unsigned long long)at);
		break;
	case PE_NUL:
		err_set(e, 400, ERR_INVALID, "invalid_json", path,
		        "strings may not contain \\u0000 (line %d, column %d)", line, column);
		break;
	case PE_OVERFLOW:
		err_set(e, 400, ERR_INVALID, "invalid_json", path,
		        "number out of range (line %d, column %d); integers must fit in 64 bits "
		        "and reals in a double",
		        line, column);
		break;
	case PE_DEEP:
		err_set(e, 400, ERR_INVALID, "invalid_json", NULL,
		        "JSON is nested too deeply (line %d, column %d); at most %d levels", line,
		        column, JSON_PARSER_MAX_DEPTH);
		break;
	case PE_TRAILING:
		err_set(e, 400, ERR_INVALID, "invalid_json", NULL,
		        "unexpected data after the JSON object (line %d, column %d); send exactly "
		        "one JSON object",
		        line, column);
		break;
	case PE_END:
		err_set(e, 400, ERR_INVALID, "invalid_json", path,
		        "body ends before the JSON is complete");
		break;
	default:
		err_set(e, 400, ERR_INVALID, "invalid_json", path,
		        "invalid JSON at line %d, column %d (NaN, Infinity, comments, single "
		        "quotes and trailing commas are not JSON)",
		        line, column);
		break;
	}
	return NULL;
}

const char *
jsondoc_file_error(const json_error_t *je, char *dst, size_t n)
{
	const char *near = strstr(je->text, " near '");

	if (near && strncmp(je->text, "duplicate object key", 20) != 0)
		snprintf(dst, n, "%.*s", (int)(near - je->text), je->text);
	else
		snprintf(dst, n, "%s", je->text);
	return dst;
}
