/*
 * sse: the event stream format (WHATWG HTML, "Server-sent events") parsed
 * incrementally, to observe a stream the caller relays.
 *
 * The bytes pass through three stages, each keeping only the state it needs
 * between feeds, so that a piece may end anywhere:
 *  - UTF-8 decoding as the Encoding standard's decoder does it: a valid
 *    sequence passes as it is, an invalid one becomes U+FFFD (the decoder's
 *    "maximal subpart" rule: a byte that cannot continue a sequence ends it
 *    and is read again), and one U+FEFF at the very start is dropped;
 *  - lines, ended by CRLF, LF or CR: a CR ends its line at once, and an LF
 *    right after a CR is skipped, in this feed or the next one;
 *  - fields: a line's name is known at its first colon (or its end), and
 *    its value is appended straight to where it goes (the data, the type or
 *    the id) as it arrives, so no line is ever held whole or read twice.
 *
 * Runs of ASCII that hold no line end are handed on in one piece, so a long
 * line costs a memcpy, and a byte fed alone costs a constant: the work is
 * linear in the input however it is cut.
 *
 * Memory: the struct, and three buffers grown by doubling as an event needs
 * them (data, type, and the last event id followed by an id being read).
 * Within one event, data, type and a new id together take at most its size
 * (a "data" line adds at most its value and an LF, shorter than the line),
 * and bytes are counted before they are stored, so data and type stay
 * within max_event + 1 bytes each and the id buffer within twice that: at
 * most 4 (max_event + 1) in all. After an event, a buffer past SSE_KEEP
 * bytes is shrunk to what it keeps (freed when that is nothing), so one
 * large event does not keep its memory.
 * A failure is kept (allocated when it happens) so that every later feed
 * reports it. Memory comes from secmem, wiped when freed: the events are
 * people's conversations.
 */
#include "http/sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/secmem.h"

#define SSE_KEEP     2048 /* buffers up to this size are kept for the next event */
#define SSE_MIN_CAP  128
#define SSE_NAME_MAX 5 /* the longest field name read: "event", "retry" */
#define RETRY_MAX    ((long long)1 << 53)

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

enum sse_line {
	LINE_START, /* nothing of the line read yet */
	LINE_NAME,  /* in the field name */
	LINE_SPACE, /* right after the colon: one space may be dropped */
	LINE_VALUE,
	LINE_COMMENT
};

enum sse_field { FIELD_OTHER, FIELD_DATA, FIELD_EVENT, FIELD_ID, FIELD_RETRY };

struct sse_buf {
	char *p;
	size_t len, cap;
};

struct sse {
	sse_event_fn cb;
	void *arg;
	size_t max;      /* max_event */
	size_t size;     /* the current event's size so far (saturating) */
	long long retry; /* -1 until set */
	long long retry_new;
	struct sse_buf data; /* data lines, each followed by LF */
	struct sse_buf type;
	struct sse_buf id; /* the last event id (id_len bytes), then one being read */
	size_t id_len;
	struct err *fail; /* the failure, once a feed failed (NULL: out of memory) */
	unsigned char failed;
	enum sse_line line;
	enum sse_field field;
	unsigned char name[SSE_NAME_MAX];
	unsigned char namelen; /* saturates at SSE_NAME_MAX + 1 */
	unsigned char u8[4];   /* a UTF-8 sequence begun */
	unsigned char u8len, u8need, lower, upper;
	unsigned char started;      /* the first character was read (BOM check) */
	unsigned char after_cr;     /* the last character was CR */
	unsigned char has_data;     /* the event has a data line */
	unsigned char too_large;    /* the event went past max */
	unsigned char skip;         /* this line's value is not applied */
	unsigned char id_nul;       /* the id being read holds a NUL */
	unsigned char retry_ok;     /* the retry being read is all digits so far */
	unsigned char retry_digits; /* and has one at least */
};

static const struct err oom_err = {
        .status = 503,
        .type = ERR_INTERNAL,
        .code = "out_of_memory",
        .message = "out of memory",
};

void
sse_free(struct sse *s)
{
	if (s == NULL)
		return;
	secmem_free(s->data.p);
	secmem_free(s->type.p);
	secmem_free(s->id.p);
	secmem_free(s->fail);
	secmem_free(s);
}

struct sse *
sse_new(size_t max_event, sse_event_fn cb, void *arg, struct err *e)
{
	struct sse *s = NULL;

	if (cb == NULL || max_event == 0) {
		err_set(e, 500, ERR_INTERNAL, "internal_error", NULL,
		        "sse_new needs a callback and a max_event of at least 1");
		goto fail;
	}
	s = secmem_calloc(1, sizeof(*s));
	if (s == NULL) {
		*e = oom_err;
		goto fail;
	}
	s->cb = cb;
	s->arg = arg;
	s->max = max_event < SSE_MAX_EVENT_LIMIT ? max_event : SSE_MAX_EVENT_LIMIT;
	s->retry = -1;
	s->line = LINE_START;
	return s;

fail:
	sse_free(s);
	return NULL;
}

long long
sse_retry(const struct sse *s)
{
	return s ? s->retry : -1;
}

size_t
sse_memory(const struct sse *s)
{
	if (s == NULL)
		return 0;
	return sizeof(*s) + s->data.cap + s->type.cap + s->id.cap +
	       (s->fail ? sizeof(*s->fail) : 0);
}

/* Keeps e as the stream's failure (as out of memory when there is no
 * memory to keep it in) and returns -1. */
static int
fail(struct sse *s, const struct err *e)
{
	s->failed = 1;
	s->fail = secmem_alloc(sizeof(*s->fail));
	if (s->fail)
		*s->fail = *e;
	return -1;
}

/* Room for need bytes in b, doubling, but not past s->max + 1 unless need
 * is more (the id buffer, which holds two ids). Returns 0, or -1. */
static int
reserve(struct sse *s, struct sse_buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : SSE_MIN_CAP;
	char *p;

	if (need <= b->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > s->max + 1)
		cap = s->max + 1 > need ? s->max + 1 : need;
	p = secmem_realloc(b->p, cap);
	if (p == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int
append(struct sse *s, struct sse_buf *b, const unsigned char *p, size_t n)
{
	if (reserve(s, b, b->len + n + 1) < 0)
		return -1;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

/* Shrinks b to what it holds (freed when empty) when it grew past
 * SSE_KEEP; a failed shrink keeps it as it is. */
static void
release(struct sse_buf *b)
{
	char *p;

	if (b->cap <= SSE_KEEP)
		return;
	if (b->len == 0) {
		secmem_free(b->p);
		b->p = NULL;
		b->cap = 0;
		return;
	}
	if (b->len + 1 > b->cap / 2)
		return;
	p = secmem_realloc(b->p, b->len + 1);
	if (p) {
		b->p = p;
		b->cap = b->len + 1;
	}
}

/* The event went past max: what it held goes, and no more of it is kept. */
static void
too_large(struct sse *s)
{
	s->too_large = 1;
	s->skip = 1;
	s->data.len = 0;
	s->type.len = 0;
	s->id.len = s->id_len;
	release(&s->data);
	release(&s->type);
}

/* Counts n bytes of a field line against the event's size. */
static void
count(struct sse *s, size_t n)
{
	s->size = n > SIZE_MAX - s->size ? SIZE_MAX : s->size + n;
	if (s->size > s->max && !s->too_large)
		too_large(s);
}

static int
name_is(const struct sse *s, const char *lit, size_t n)
{
	return s->namelen == n && memcmp(s->name, lit, n) == 0;
}

/* The line's name is complete: the field begins. */
static void
field_start(struct sse *s)
{
	s->field = FIELD_OTHER;
	if (name_is(s, "data", 4)) {
		s->field = FIELD_DATA;
		s->has_data = 1;
	} else if (name_is(s, "event", 5)) {
		s->field = FIELD_EVENT;
		if (!s->skip)
			s->type.len = 0;
	} else if (name_is(s, "id", 2)) {
		s->field = FIELD_ID;
		s->id_nul = 0;
	} else if (name_is(s, "retry", 5)) {
		s->field = FIELD_RETRY;
		s->retry_new = 0;
		s->retry_ok = 1;
		s->retry_digits = 0;
	}
}

/* Value bytes p[0..n) of the current field, already counted. */
static int
value(struct sse *s, const unsigned char *p, size_t n)
{
	size_t i;

	if (s->skip)
		return 0;
	switch (s->field) {
	case FIELD_DATA:
		return append(s, &s->data, p, n);
	case FIELD_EVENT:
		return append(s, &s->type, p, n);
	case FIELD_ID:
		if (memchr(p, '\0', n))
			s->id_nul = 1;
		return append(s, &s->id, p, n);
	case FIELD_RETRY:
		for (i = 0; i < n && s->retry_ok; i++) {
			if (p[i] < '0' || p[i] > '9') {
				s->retry_ok = 0;
			} else {
				s->retry_digits = 1;
				if (s->retry_new < RETRY_MAX)
					s->retry_new = s->retry_new * 10 + (p[i] - '0');
			}
		}
		return 0;
	case FIELD_OTHER:
		break;
	}
	return 0;
}

/*
 * Decoded text p[0..n) of the current line: ASCII without CR or LF, or one
 * whole UTF-8 sequence. Returns 0, or -1 when memory ran out.
 */
static int
text(struct sse *s, const unsigned char *p, size_t n)
{
	size_t i;

	s->after_cr = 0;
	while (n > 0) {
		switch (s->line) {
		case LINE_START:
			if (p[0] == ':') {
				s->line = LINE_COMMENT;
				return 0;
			}
			s->line = LINE_NAME;
			s->namelen = 0;
			s->skip = s->too_large;
			break;
		case LINE_NAME: {
			const unsigned char *colon = memchr(p, ':', n);
			size_t k = colon ? (size_t)(colon - p) : n;

			for (i = 0; i < k && s->namelen <= SSE_NAME_MAX; i++) {
				if (s->namelen < SSE_NAME_MAX)
					s->name[s->namelen] = p[i];
				s->namelen++;
			}
			count(s, colon ? k + 1 : k);
			if (colon == NULL)
				return 0;
			field_start(s);
			s->line = LINE_SPACE;
			p += k + 1;
			n -= k + 1;
			break;
		}
		case LINE_SPACE:
			s->line = LINE_VALUE;
			if (p[0] == ' ') {
				count(s, 1);
				p++;
				n--;
			}
			break;
		case LINE_VALUE:
			count(s, n);
			return value(s, p, n);
		case LINE_COMMENT:
			return 0;
		}
	}
	return 0;
}

static void
reset_event(struct sse *s)
{
	s->size = 0;
	s->too_large = 0;
	s->has_data = 0;
	s->data.len = 0;
	s->type.len = 0;
	release(&s->data);
	release(&s->type);
	release(&s->id);
}

/* A blank line: the event goes to the callback if it has data. */
static int
dispatch(struct sse *s, struct err *e)
{
	struct sse_event ev;
	int rc = 0;

	if (!s->has_data) {
		reset_event(s);
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	ev.size = s->size;
	ev.too_large = s->too_large;
	if (!s->too_large) {
		/* The last LF goes; the NUL takes its place. */
		s->data.p[--s->data.len] = '\0';
		ev.data = s->data.p;
		ev.data_len = s->data.len;
		if (s->type.len) {
			s->type.p[s->type.len] = '\0';
			ev.type = s->type.p;
			ev.type_len = s->type.len;
		} else {
			ev.type = "message";
			ev.type_len = 7;
		}
	}
	if (s->id_len) {
		s->id.p[s->id_len] = '\0';
		ev.id = s->id.p;
	} else {
		ev.id = "";
	}
	ev.id_len = s->id_len;
	if (s->cb(s->arg, &ev, e) < 0)
		rc = fail(s, e);
	reset_event(s);
	return rc;
}

/* The current line ended. */
static int
line_end(struct sse *s, struct err *e)
{
	enum sse_line line = s->line;

	s->line = LINE_START;
	if (line == LINE_START)
		return dispatch(s, e);
	if (line == LINE_COMMENT)
		return 0;
	if (line == LINE_NAME)
		field_start(s); /* a name alone: the value is empty */
	if (s->skip || s->too_large)
		return 0;
	switch (s->field) {
	case FIELD_DATA:
		if (append(s, &s->data, (const unsigned char *)"\n", 1) < 0)
			return fail(s, &oom_err);
		break;
	case FIELD_ID: {
		/* The new id follows the last one in the buffer; it replaces it
		 * unless it holds a NUL. */
		size_t n = s->id.len - s->id_len;

		if (!s->id_nul && n > 0)
			memmove(s->id.p, s->id.p + s->id_len, n);
		if (!s->id_nul)
			s->id_len = n;
		s->id.len = s->id_len;
		break;
	}
	case FIELD_RETRY:
		if (s->retry_ok && s->retry_digits)
			s->retry = s->retry_new < RETRY_MAX ? s->retry_new : RETRY_MAX;
		break;
	case FIELD_EVENT:
	case FIELD_OTHER:
		break;
	}
	return 0;
}

/* A CR or an LF (c): a line end, unless it is the LF of a CRLF. */
static int
line_break(struct sse *s, unsigned char c, struct err *e)
{
	int cr = s->after_cr;

	s->started = 1;
	s->after_cr = c == '\r';
	if (c == '\n' && cr)
		return 0;
	return line_end(s, e);
}

/* One decoded character of 2 to 4 bytes, or U+FFFD. */
static int
wide(struct sse *s, const unsigned char *p, size_t n)
{
	if (!s->started) {
		s->started = 1;
		if (n == 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
			return 0; /* the BOM */
	}
	return text(s, p, n) < 0 ? fail(s, &oom_err) : 0;
}

/*
 * One byte of a sequence begun, or that begins one (c >= 0x80). Returns 1
 * when c must be read again (it ended the sequence before it), 0, or -1.
 */
static int
utf8_byte(struct sse *s, unsigned char c)
{
	if (s->u8need == 0) {
		s->lower = 0x80;
		s->upper = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			s->u8need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			s->u8need = 2;
			if (c == 0xe0)
				s->lower = 0xa0;
			if (c == 0xed)
				s->upper = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			s->u8need = 3;
			if (c == 0xf0)
				s->lower = 0x90;
			if (c == 0xf4)
				s->upper = 0x8f;
		} else {
			return wide(s, (const unsigned char *)replacement, 3);
		}
		s->u8[0] = c;
		s->u8len = 1;
		return 0;
	}
	if (c < s->lower || c > s->upper) {
		s->u8need = 0;
		return wide(s, (const unsigned char *)replacement, 3) < 0 ? -1 : 1;
	}
	s->lower = 0x80;
	s->upper = 0xbf;
	s->u8[s->u8len++] = c;
	if (s->u8len <= s->u8need)
		return 0;
	s->u8need = 0;
	return wide(s, s->u8, s->u8len);
}

int
sse_feed(struct sse *s, const char *buf, size_t len, struct err *e)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t i = 0;

	while (!s->failed && i < len) {
		unsigned char c = p[i];
		int rc;

		if (s->u8need == 0 && c < 0x80) {
			size_t j = i;

			if (c == '\r' || c == '\n') {
				if (line_break(s, c, e) < 0)
					break;
				i++;
				continue;
			}
			while (j < len && p[j] < 0x80 && p[j] != '\r' && p[j] != '\n')
				j++;
			s->started = 1;
			if (text(s, p + i, j - i) < 0) {
				fail(s, &oom_err);
				break;
			}
			i = j;
			continue;
		}
		rc = utf8_byte(s, c);
		if (rc < 0)
			break;
		if (rc == 0)
			i++;
	}
	if (s->failed) {
		*e = s->fail ? *s->fail : oom_err;
		return -1;
	}
	return 0;
}

/* Whether data[0..len) has a JSON escape of a character of word at or
 * after a backslash: \uXXXX of an ASCII one, or \/ when word has '/'. */
static int
escapes_any_of(const char *data, size_t len, const char *word)
{
	const char *p = data, *end = data + len;

	while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
		unsigned v = 0;
		size_t k;

		if (end - p >= 2 && p[1] == '/' && strchr(word, '/'))
			return 1;
		if (end - p >= 6 && p[1] == 'u') {
			for (k = 2; k < 6; k++) {
				char c = p[k];
				int d = c >= '0' && c <= '9'   ? c - '0'
				        : c >= 'a' && c <= 'f' ? c - 'a' + 10
				        : c >= 'A' && c <= 'F' ? c - 'A' + 10
				                               : -1;

				if (d < 0)
					break;
				v = v << 4 | (unsigned)d;
			}
			if (k == 6 && v > 0 && v < 0x80 && strchr(word, (int)v))
				return 1;
		}
		p++;
		if (p < end && *p == '\\')
			p++; /* an escaped backslash escapes nothing after it */
	}
	return 0;
}

/* Whether word (wlen bytes) occurs in data[0..len): memchr to each
 * occurrence of its first byte, then a compare (memmem is not POSIX). */
static int
contains(const char *data, size_t len, const char *word, size_t wlen)
{
	const char *p = data, *end = data + len;

	while ((size_t)(end - p) >= wlen &&
	       (p = memchr(p, word[0], (size_t)(end - p) - wlen + 1))) {
		if (memcmp(p, word, wlen) == 0)
			return 1;
		p++;
	}
	return 0;
}

int
sse_data_may_contain(const char *data, size_t len, const char *word)
{
	size_t wlen, i;

	if (word == NULL || (wlen = strlen(word)) == 0)
		return 1;
	for (i = 0; i < wlen; i++) {
		unsigned char c = (unsigned char)word[i];

		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
			return 1;
	}
	if (data == NULL || len < wlen)
		return 0;
	if (contains(data, len, word, wlen))
		return 1;
	return escapes_any_of(data, len, word);
}
