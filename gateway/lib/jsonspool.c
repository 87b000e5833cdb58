#include "lib/jsonspool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hex.h"
#include "lib/secmem.h"
#include "lib/spool.h"
#include "lib/utf8.h"

#define KEY_MAX 16 /* longest key name matched */

enum state {
	S_OUT,  /* between strings */
	S_STR,  /* in a string kept in memory */
	S_REF,  /* in a string that may be spooled */
	S_DONE, /* a spooled string is not JSON: the rest does not matter */
};

/* Where a string being spooled is in its text. */
enum lex {
	L_PLAIN,
	L_ESC,  /* after a backslash */
	L_HEX,  /* in \uXXXX */
	L_LOW,  /* after a high surrogate: its pair, or not */
	L_UTF8, /* in a multi-byte sequence */
};

struct jsonspool {
	struct spool *spool;
	const char *const *names;
	size_t min, max_text;
	uint64_t seen; /* body bytes before the current chunk */
	enum state state;

	char *text; /* the body but the spooled strings' text (wiped) */
	size_t len, cap;
	struct jsondoc_ref *refs;
	size_t nrefs, refs_cap;

	/* S_OUT and S_STR: the key being read, whether the last string was
	 * one of names, and whether a ':' followed it. */
	char key[KEY_MAX];
	size_t key_len;
	int key_ok, esc, named, armed;

	/* S_REF: the string so far, its text held until it passes min. */
	struct jsondoc_ref cur;
	char *pend;
	size_t pend_len, pend_cap;
	int spilled;
	enum lex lex;
	unsigned char hold[12]; /* an escape or a UTF-8 sequence being read */
	size_t hold_n, need;
	uint64_t hold_at; /* where it began in the body */
};

struct jsonspool *
jsonspool_new(struct spool *spool, const char *const *names, size_t min, size_t max_text)
{
	struct jsonspool *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->spool = spool;
	j->names = names;
	j->min = min;
	j->max_text = max_text;
	return j;
}

void
jsonspool_free(struct jsonspool *j)
{
	if (j == NULL)
		return;
	if (j->text)
		secmem_wipe(j->text, j->len);
	secmem_free(j->text);
	if (j->pend)
		secmem_wipe(j->pend, j->pend_len);
	secmem_free(j->pend);
	free(j->refs);
	free(j);
}

static int
oom(struct err *e)
{
	return err_set(e, 503, ERR_INTERNAL, "out_of_memory", NULL,
	               "the gateway is out of memory; try again");
}

/* Appends n bytes to a wiped buffer that doubles as it grows. */
static int
append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : 4096;
		char *p;

		while (c < *len + n)
			c *= 2;
		if ((p = secmem_alloc(c)) == NULL)
			return -1;
		if (*buf) {
			memcpy(p, *buf, *len);
			secmem_wipe(*buf, *len);
			secmem_free(*buf);
		}
		*buf = p;
		*cap = c;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	return 0;
}

static int
put_text(struct jsonspool *j, const char *data, size_t n, struct err *e)
{
	if (n > j->max_text - j->len) {
		j->state = S_DONE;
		return err_set(e, 413, ERR_INVALID, "request_too_large", NULL,
		               "this body holds more than %zu bytes of JSON besides the values of "
		               "\"%s\" (which may be larger); send less, or raise "
		               "limits.max_json_bytes",
		               j->max_text, j->names[0]);
	}
	return n == 0 || append(&j->text, &j->len, &j->cap, data, n) == 0 ? 0 : oom(e);
}

static int
push_ref(struct jsonspool *j, struct err *e)
{
	if (j->nrefs == j->refs_cap) {
		size_t cap = j->refs_cap ? j->refs_cap * 2 : 4;
		struct jsondoc_ref *p = realloc(j->refs, cap * sizeof(*p));

		if (p == NULL)
			return oom(e);
		j->refs = p;
		j->refs_cap = cap;
	}
	j->refs[j->nrefs++] = j->cur;
	return 0;
}

/* The string's text as it goes: held, then spooled once past min. */
static int
keep(struct jsonspool *j, const char *data, size_t n, struct err *e)
{
	if (n == 0)
		return 0;
	j->cur.s.raw_len += n;
	if (j->spilled)
		return spool_write(j->spool, data, n, e);
	if (append(&j->pend, &j->pend_len, &j->pend_cap, data, n) < 0)
		return oom(e);
	if (j->pend_len <= j->min)
		return 0;
	j->spilled = 1;
	j->cur.s.off = spool_size(j->spool);
	if (spool_write(j->spool, j->pend, j->pend_len, e) < 0)
		return -1;
	secmem_wipe(j->pend, j->pend_len);
	j->pend_len = 0;
	return 0;
}

/* The value's decoded bytes, counted, and its last two kept. */
static void
value_bytes(struct jsonspool *j, const unsigned char *b, size_t n)
{
	unsigned char *t = j->cur.s.tail;

	j->cur.s.len += n;
	if (n >= 2) {
		t[0] = b[n - 2];
		t[1] = b[n - 1];
	} else if (n == 1) {
		t[0] = t[1];
		t[1] = b[0];
	}
}

/* The string is not JSON: where and why, as the parser would say. The
 * rest of the body is not read (the parser stops at this string). */
static int
fault(struct jsonspool *j, enum jsondoc_fault why, uint64_t at, struct err *e)
{
	j->cur.fault = why;
	j->cur.fault_at = at;
	j->state = S_DONE;
	return push_ref(j, e);
}

static void
code_point(struct jsonspool *j, unsigned cp)
{
	char out[4];
	size_t n = utf8_put(cp, out);

	j->cur.s.chars++;
	value_bytes(j, (const unsigned char *)out, n);
}

/*
 * One byte of an escape or a UTF-8 sequence (the lexer is not L_PLAIN),
 * checked as jsondoc's parser checks it, at the same places: a \u escape
 * is judged once its four digits are in (the body ending first is "ends
 * early"), a high surrogate once the six bytes after it show its pair or
 * not, a sequence once its bytes are in. Returns 0 (after a fault too),
 * or -1 after a failure.
 */
static int
lex_byte(struct jsonspool *j, unsigned char c, struct err *e)
{
	char v;
	unsigned cp = 0, lo = 0;

	j->hold[j->hold_n++] = c;
	switch (j->lex) {
	case L_ESC:
		if (c == 'u') {
			j->lex = L_HEX;
			return 0;
		}
		if ((v = jsondoc_unescape(c)) == '\0')
			return fault(j, JSONDOC_SYNTAX, j->hold_at + 1, e);
		j->cur.s.chars++;
		value_bytes(j, (const unsigned char *)&v, 1);
		break;
	case L_HEX:
		if (j->hold_n < 6)
			return 0;
		if (hex_u16((const char *)j->hold + 2, &cp) < 0)
			return fault(j, JSONDOC_SYNTAX, j->hold_at + 1, e);
		if (cp >= 0xd800 && cp <= 0xdbff) {
			j->lex = L_LOW;
			return 0;
		}
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return fault(j, JSONDOC_SYNTAX, j->hold_at + 6, e);
		if (cp == 0)
			return fault(j, JSONDOC_NUL, j->hold_at + 6, e);
		code_point(j, cp);
		break;
	case L_LOW:
		/* Anything but "\u" and a low surrogate leaves the high one
		 * alone: an error just after it. */
		if ((j->hold_n == 7 && c != '\\') || (j->hold_n == 8 && c != 'u') ||
		    (j->hold_n == 12 &&
		     (hex_u16((const char *)j->hold + 8, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)))
			return fault(j, JSONDOC_SYNTAX, j->hold_at + 6, e);
		if (j->hold_n < 12)
			return 0;
		hex_u16((const char *)j->hold + 2, &cp);
		code_point(j, 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00));
		break;
	case L_UTF8:
		if (j->hold_n < j->need)
			return 0;
		if (utf8_seq(j->hold, j->hold_n) != j->need)
			return fault(j, JSONDOC_UTF8, j->hold_at, e);
		j->cur.s.chars++;
		value_bytes(j, j->hold, j->hold_n);
		break;
	case L_PLAIN:
		break;
	}
	j->lex = L_PLAIN;
	return 0;
}

/* The string ends at its closing quote: spooled, or put back whole. */
static int
close_ref(struct jsonspool *j, struct err *e)
{
	j->state = S_OUT;
	if (!j->spilled) {
		if (put_text(j, j->pend, j->pend_len, e) < 0)
			return -1;
		secmem_wipe(j->pend, j->pend_len);
		j->pend_len = 0;
		return put_text(j, "\"", 1, e);
	}
	return push_ref(j, e) < 0 ? -1 : put_text(j, "\"", 1, e);
}

/* Reads the string being spooled from data[*i]; returns 0 at its end,
 * the chunk's or a fault, -1 after a failure. */
static int
scan_ref(struct jsonspool *j, const char *data, size_t n, size_t *i, struct err *e)
{
	const unsigned char *u = (const unsigned char *)data;
	size_t from = *i, k;
	unsigned char c;

	while (*i < n && j->state == S_REF) {
		if (j->lex != L_PLAIN) {
			if (lex_byte(j, u[(*i)++], e) < 0)
				return -1;
			continue;
		}
		k = jsondoc_plain_run(data + *i, n - *i);
		j->cur.s.chars += k;
		value_bytes(j, u + *i, k);
		*i += k;
		if (*i >= n)
			break;
		c = u[*i];
		if (c == '"') {
			if (keep(j, data + from, *i - from, e) < 0)
				return -1;
			(*i)++;
			return close_ref(j, e);
		}
		if (c < 0x20)
			return fault(j, JSONDOC_SYNTAX, j->seen + *i, e);
		/* An escape or a sequence begins: judged once its bytes are in. */
		j->hold_at = j->seen + *i;
		j->hold[0] = c;
		j->hold_n = 1;
		if (c == '\\') {
			j->lex = L_ESC;
		} else if (c >= 0xc0) {
			j->lex = L_UTF8;
			j->need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		} else {
			return fault(j, JSONDOC_UTF8, j->hold_at, e);
		}
		(*i)++;
	}
	return j->state == S_REF ? keep(j, data + from, *i - from, e) : 0;
}

static int
is_named(const struct jsonspool *j)
{
	size_t k;

	if (!j->key_ok)
		return 0;
	for (k = 0; j->names[k]; k++)
		if (strlen(j->names[k]) == j->key_len &&
		    memcmp(j->names[k], j->key, j->key_len) == 0)
			return 1;
	return 0;
}

/* Reads a string kept in memory from data[*i], noting whether it is one
 * of the names; returns at its end or the chunk's. */
static void
scan_str(struct jsonspool *j, const char *data, size_t n, size_t *i)
{
	while (*i < n) {
		size_t k;

		if (j->esc) { /* the byte after a backslash, whatever it is */
			j->esc = 0;
			j->key_ok = 0;
			(*i)++;
			continue;
		}
		k = jsondoc_plain_run(data + *i, n - *i);
		if (j->key_len + k <= KEY_MAX)
			memcpy(j->key + j->key_len, data + *i, k);
		else
			j->key_ok = 0;
		j->key_len += k;
		*i += k;
		if (*i >= n)
			return;
		if (data[*i] == '"') {
			(*i)++;
			j->named = is_named(j);
			j->state = S_OUT;
			return;
		} else if (data[*i] == '\\') {
			j->esc = 1;
		}
		j->key_ok = 0;
		(*i)++;
	}
}

/* Opens the string whose quote is at data[i]: spooled if it is the value
 * of a named key. */
static int
open_string(struct jsonspool *j, const char *data, size_t *copy, size_t i, struct err *e)
{
	if (!j->armed) {
		j->state = S_STR;
		j->key_len = 0;
		j->key_ok = 1;
		j->esc = 0;
		return 0;
	}
	j->armed = 0;
	if (put_text(j, data + *copy, i + 1 - *copy, e) < 0)
		return -1;
	*copy = i + 1;
	memset(&j->cur, 0, sizeof(j->cur));
	j->cur.at = j->len;
	j->cur.orig = j->seen + i + 1;
	j->spilled = 0;
	j->lex = L_PLAIN;
	j->state = S_REF;
	return 0;
}

int
jsonspool_feed(struct jsonspool *j, const char *data, size_t n, struct err *e)
{
	size_t i = 0, copy = 0;
	int rc = 0;

	while (i < n && rc == 0 && j->state != S_DONE) {
		char c;

		switch (j->state) {
		case S_STR:
			scan_str(j, data, n, &i);
			break;
		case S_REF:
			rc = scan_ref(j, data, n, &i, e);
			copy = i;
			break;
		default:
			c = data[i];
			if (c == '"') {
				rc = open_string(j, data, &copy, i, e);
			} else if (c == ':') {
				j->armed = j->named;
				j->named = 0;
			} else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
				j->armed = j->named = 0;
			}
			i++;
			break;
		}
	}
	if (rc == 0 && j->state != S_REF && j->state != S_DONE)
		rc = put_text(j, data + copy, n - copy, e);
	j->seen += n;
	return rc;
}

void
jsonspool_finish(struct jsonspool *j)
{
	struct err e;

	if (j->state != S_REF)
		return;
	/* The body ended in a string being spooled: as the parser would
	 * say, in a sequence is bad UTF-8 and after a high surrogate is a
	 * lone one; anywhere else it ends early. */
	if (j->lex == L_UTF8) {
		fault(j, JSONDOC_UTF8, j->hold_at, &e);
	} else if (j->lex == L_LOW) {
		fault(j, JSONDOC_SYNTAX, j->hold_at + 6, &e);
	} else if (j->lex == L_ESC || j->lex == L_HEX) {
		/* An escape cut short: its bytes go to the parser as they
		 * came, so it reads them, and names the place, as it would
		 * have in the whole body ("\u\"}" ends early, yet a path
		 * reads its quote as the string's end). */
		j->state = S_OUT;
		put_text(j, (const char *)j->hold, j->hold_n, &e);
	} else {
		fault(j, JSONDOC_END, j->seen, &e);
	}
}

const char *
jsonspool_text(const struct jsonspool *j, size_t *len)
{
	*len = j->len;
	return j->text ? j->text : "";
}

const struct jsondoc_ref *
jsonspool_refs(const struct jsonspool *j, size_t *n)
{
	*n = j->nrefs;
	return j->refs;
}
