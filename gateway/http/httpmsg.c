/*
 * httpmsg: strict HTTP/1.1 request heads (RFC 9112) and chunked bodies.
 *
 * The head parser is stateless: the caller hands it everything buffered so
 * far and it parses from the start each time, which keeps it free of
 * allocation and of state to get wrong. It looks at no more than max_head
 * bytes, so the work per call is bounded by the caller's limit.
 *
 * Lines are checked in order, and an incomplete last line is checked as far
 * as it goes with rules that the complete line would also fail. So if a
 * prefix of some input is rejected, the whole input is rejected with the same
 * status, and every prefix of an acceptable head asks for more bytes.
 *
 * Rules chosen here where the RFCs leave room (each refuses rather than
 * guesses):
 *  - up to HEAD_LEADING_CRLF_MAX empty lines before the request line are
 *    skipped (RFC 9112 2.2); they count in the returned length and max_head;
 *  - the version is checked before the target's form, so "PRI * HTTP/2.0"
 *    gets 505 rather than 400;
 *  - every version other than exactly HTTP/1.0 and HTTP/1.1 is refused,
 *    including HTTP/1.2 (505) and lowercase "http/1.1" (400);
 *  - more than one Transfer-Encoding field is 400, like a repeated
 *    Content-Length, whatever the values;
 *  - Host must be non-empty and hold only characters of a URI host and port
 *    (RFC 3986 reg-name, IP literal, ':' port) except ',', in HTTP/1.0 too;
 *  - "close" in Connection wins over "keep-alive" in either version;
 *  - Expect: 100-continue in HTTP/1.0 is ignored (RFC 9110 10.1.1), other
 *    expectations are 417 in either version;
 *  - chunk extensions must follow the RFC 9112 grammar (token names, token
 *    or quoted-string values, BWS only around ';' and '=');
 *  - chunk sizes have at most 16 hex digits, leading zeros included.
 *
 * Error messages say which rule was broken and never repeat a header value or
 * the target, which may carry credentials; a header name is quoted at most.
 */
#include "http/httpmsg.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hex.h"

#define HEAD_LEADING_CRLF_MAX 2
#define CONTENT_LENGTH_MAX    (UINT64_C(1) << 53)
#define CHUNK_DIGITS_MAX      16
#define CHUNK_EXT_MAX         256
#define CHUNK_TRAILER_MAX     8192

#define BAD_REQUEST(e, ...) err_set((e), 400, ERR_INVALID, "bad_request", NULL, __VA_ARGS__)

static int
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* VCHAR, obs-text, SP and HTAB: what a field value may hold. */
static int
is_field_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static unsigned char
ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Whether s[0..n) equals the lowercase literal lit, ignoring ASCII case. The
 * locale-free comparison keeps header matching independent of setlocale. */
static int
ieq(const char *s, size_t n, const char *lit)
{
	size_t i;

	if (strlen(lit) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (ascii_lower((unsigned char)s[i]) != (unsigned char)lit[i])
			return 0;
	return 1;
}

static void
head_reset(struct httpmsg_head *h)
{
	h->method = NULL;
	h->method_len = 0;
	h->target = NULL;
	h->target_len = 0;
	h->minor_version = 0;
	h->nheaders = 0;
	h->content_length = -1;
	h->chunked = 0;
	h->keep_alive = 0;
	h->expect_continue = 0;
}

/*
 * Finds the CRLF ending the line at s[0..n). Returns 1 with *content set to
 * the line's length without the CRLF, 0 when the line is incomplete (with
 * *content the bytes seen so far, less a CR that may yet be followed by LF),
 * -1 on a CR or LF that is not part of a CRLF.
 */
static int
line_end(const char *s, size_t n, size_t *content, struct err *e)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\n')
			return BAD_REQUEST(
			        e, "request head contains a bare LF; lines must end in CRLF");
		if (s[i] != '\r')
			continue;
		if (i + 1 == n)
			break;
		if (s[i + 1] != '\n')
			return BAD_REQUEST(e,
			                   "request head contains a CR not followed by LF; CR is "
			                   "only allowed as part of a CRLF line ending");
		*content = i;
		return 1;
	}
	*content = i;
	return 0;
}

/* Checks the start of an incomplete line: every byte must be one that the
 * complete line could hold, so that rejecting early never changes the answer. */
static int
partial_line(const char *s, size_t n, int is_header, struct err *e)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (is_header && !is_field_char(c))
			return BAD_REQUEST(e,
			                   "header line contains a control character; fields may "
			                   "hold visible ASCII, obs-text, SP and HTAB only");
		if (!is_header && (c < 0x20 || c > 0x7e))
			return BAD_REQUEST(e, "request line contains a control or non-ASCII "
			                      "character; only visible ASCII and single spaces are "
			                      "allowed");
	}
	return 0;
}

static int
request_line(const char *s, size_t n, struct httpmsg_head *h, struct err *e)
{
	size_t i = 0, t, v;

	while (i < n && is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i == n || s[i] != ' ')
		return BAD_REQUEST(e, "request line must start with a method token followed by "
		                      "one space");
	t = ++i;
	while (i < n && s[i] >= 0x21 && s[i] <= 0x7e)
		i++;
	if (i == t || i == n || s[i] != ' ')
		return BAD_REQUEST(e, "request target must be visible ASCII (0x21-0x7e) followed "
		                      "by one space and the HTTP version");
	v = ++i;
	if (n - v != 8 || memcmp(s + v, "HTTP/", 5) != 0 || s[v + 5] < '0' || s[v + 5] > '9' ||
	    s[v + 6] != '.' || s[v + 7] < '0' || s[v + 7] > '9')
		return BAD_REQUEST(e, "request line must end in one space and HTTP/1.1 or "
		                      "HTTP/1.0");
	if (s[v + 5] != '1' || (s[v + 7] != '0' && s[v + 7] != '1'))
		return err_set(e, 505, ERR_INVALID, "http_version_not_supported", NULL,
		               "HTTP version %.8s is not supported; use HTTP/1.1 or HTTP/1.0",
		               s + v);
	if (s[t] != '/')
		return BAD_REQUEST(e, "request target must be in origin-form, starting with '/'; "
		                      "absolute-form, authority-form and '*' are not accepted");
	h->method = s;
	h->method_len = t - 1;
	h->target = s + t;
	h->target_len = v - 1 - t;
	h->minor_version = s[v + 7] - '0';
	return 0;
}

/* Rules that apply as soon as a header line's first byte is known. */
static int
header_start(unsigned char c, const struct httpmsg_head *h, struct err *e)
{
	if (is_ows(c))
		return BAD_REQUEST(e, "header line starts with whitespace; line folding "
		                      "(obs-fold) is not accepted, send each field on one line");
	if (h->nheaders >= HTTPMSG_MAX_HEADERS)
		return err_set(e, 431, ERR_INVALID, "too_many_headers", NULL,
		               "request has more than %d header fields; send at most %d",
		               HTTPMSG_MAX_HEADERS, HTTPMSG_MAX_HEADERS);
	return 0;
}

static int
header_line(const char *s, size_t n, struct httpmsg_head *h, struct err *e)
{
	struct httpmsg_header *f;
	char q[96];
	size_t i = 0, v, end;

	while (i < n && is_tchar((unsigned char)s[i]))
		i++;
	if (i < n && is_ows((unsigned char)s[i]))
		return BAD_REQUEST(e,
		                   "whitespace between header name %s and ':' is not allowed; "
		                   "put the colon right after the name",
		                   err_quote(q, sizeof(q), s, i));
	if (i == n)
		return BAD_REQUEST(e, "header line has no ':'; send each field as NAME: value");
	if (s[i] != ':')
		return BAD_REQUEST(e, "header name contains a character outside the token set; "
		                      "names may use letters, digits and !#$%%&'*+-.^_`|~");
	if (i == 0)
		return BAD_REQUEST(e, "header line has an empty name; send each field as "
		                      "NAME: value");
	v = i + 1;
	while (v < n && is_ows((unsigned char)s[v]))
		v++;
	for (end = v; end < n; end++)
		if (!is_field_char((unsigned char)s[end]))
			return BAD_REQUEST(e,
			                   "header %s has a control character in its value; "
			                   "values may hold visible ASCII, obs-text, SP and "
			                   "HTAB only",
			                   err_quote(q, sizeof(q), s, i));
	while (end > v && is_ows((unsigned char)s[end - 1]))
		end--;
	f = &h->headers[h->nheaders++];
	f->name = s;
	f->name_len = i;
	f->value = s + v;
	f->value_len = end - v;
	return 0;
}

/* 1*DIGIT no larger than CONTENT_LENGTH_MAX, overflow-checked digit by
 * digit. */
static int
parse_length(const char *s, size_t n, int64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (CONTENT_LENGTH_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = (int64_t)v;
	return 0;
}

/* uri-host [ ":" port ]: reg-name, IPv4 or IP-literal characters only, so a
 * Host cannot smuggle userinfo, a path or whitespace into routing or logs.
 * ',' is refused too although reg-name allows it: it reads as a list of two
 * hosts to anything that splits field values on commas. */
static int
valid_host(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			continue;
		if (c == '\0' || strchr("-._~!$&'()*+;=:[]%", c) == NULL)
			return 0;
	}
	return 1;
}

/* Scans one Connection field's comma-separated list for close and
 * keep-alive. Empty list elements are allowed (RFC 9110 5.6.1). */
static void
connection_tokens(const char *s, size_t n, int *close, int *keep)
{
	size_t i, a = 0, b;

	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != ',')
			continue;
		b = i;
		while (a < b && is_ows((unsigned char)s[a]))
			a++;
		while (b > a && is_ows((unsigned char)s[b - 1]))
			b--;
		if (ieq(s + a, b - a, "close"))
			*close = 1;
		else if (ieq(s + a, b - a, "keep-alive"))
			*keep = 1;
		a = i + 1;
	}
}

/* Framing, Host, Connection and Expect, once the whole head is known. */
static int
head_derive(struct httpmsg_head *h, struct err *e)
{
	const struct httpmsg_header *cl = NULL, *te = NULL, *host = NULL;
	size_t ncl = 0, nte = 0, nhost = 0, i;
	int close = 0, keep = 0, cont = 0, other_expect = 0;

	for (i = 0; i < h->nheaders; i++) {
		const struct httpmsg_header *f = &h->headers[i];

		if (ieq(f->name, f->name_len, "content-length")) {
			cl = f;
			ncl++;
		} else if (ieq(f->name, f->name_len, "transfer-encoding")) {
			te = f;
			nte++;
		} else if (ieq(f->name, f->name_len, "host")) {
			host = f;
			nhost++;
		} else if (ieq(f->name, f->name_len, "connection")) {
			connection_tokens(f->value, f->value_len, &close, &keep);
		} else if (ieq(f->name, f->name_len, "expect")) {
			if (ieq(f->value, f->value_len, "100-continue"))
				cont = 1;
			else
				other_expect = 1;
		}
	}
	if (ncl > 1)
		return BAD_REQUEST(e, "request has %zu Content-Length headers; send exactly one",
		                   ncl);
	if (cl && parse_length(cl->value, cl->value_len, &h->content_length) < 0)
		return BAD_REQUEST(e,
		                   "Content-Length must be decimal digits only (no sign, "
		                   "spaces or list) and at most %llu",
		                   (unsigned long long)CONTENT_LENGTH_MAX);
	if (te) {
		if (h->minor_version == 0)
			return BAD_REQUEST(e, "Transfer-Encoding is not allowed in an HTTP/1.0 "
			                      "request; send Content-Length or use HTTP/1.1");
		if (nte > 1)
			return BAD_REQUEST(e,
			                   "request has %zu Transfer-Encoding headers; send "
			                   "one, with the value chunked",
			                   nte);
		if (cl)
			return BAD_REQUEST(e, "request has both Content-Length and "
			                      "Transfer-Encoding; send one of them");
		if (!ieq(te->value, te->value_len, "chunked"))
			return err_set(e, 501, ERR_INVALID, "unsupported_transfer_encoding", NULL,
			               "Transfer-Encoding must be exactly chunked; other codings "
			               "and lists of codings are not supported");
		h->chunked = 1;
	}
	if (nhost > 1)
		return BAD_REQUEST(e, "request has %zu Host headers; send exactly one", nhost);
	if (nhost == 0 && h->minor_version == 1)
		return BAD_REQUEST(e, "HTTP/1.1 request has no Host header; send exactly one");
	if (host && !valid_host(host->value, host->value_len))
		return BAD_REQUEST(e, "Host must be a host name or address with an optional "
		                      "port, nothing else");
	if (other_expect)
		return err_set(e, 417, ERR_INVALID, "expectation_failed", NULL,
		               "Expect may only be 100-continue");
	h->expect_continue = cont && h->minor_version == 1;
	h->keep_alive = h->minor_version == 1 ? !close : keep && !close;
	return 0;
}

ssize_t
httpmsg_parse(const char *buf, size_t len, size_t max_head, struct httpmsg_head *h,
              struct httpmsg_header slots[HTTPMSG_MAX_HEADERS], struct err *e)
{
	size_t avail = len < max_head ? len : max_head;
	size_t pos = 0, blanks = 0, n = 0;
	int have_request_line = 0, rc;

	if (avail > (size_t)SSIZE_MAX)
		avail = (size_t)SSIZE_MAX;
	head_reset(h);
	h->headers = slots;
	while (pos < avail) {
		const char *s = buf + pos;
		unsigned char c = (unsigned char)s[0];

		if (have_request_line && c != '\r' && c != '\n' && header_start(c, h, e) < 0)
			return -1;
		rc = line_end(s, avail - pos, &n, e);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			if (partial_line(s, n, have_request_line, e) < 0)
				return -1;
			break;
		}
		if (!have_request_line && n == 0) {
			if (++blanks > HEAD_LEADING_CRLF_MAX)
				return BAD_REQUEST(e,
				                   "request starts with more than %d empty lines; "
				                   "send the request line first",
				                   HEAD_LEADING_CRLF_MAX);
		} else if (!have_request_line) {
			if (request_line(s, n, h, e) < 0)
				return -1;
			have_request_line = 1;
		} else if (n == 0) {
			if (head_derive(h, e) < 0)
				return -1;
			return (ssize_t)(pos + 2);
		} else if (header_line(s, n, h, e) < 0) {
			return -1;
		}
		pos += n + 2;
	}
	if (len >= max_head)
		return err_set(e, 431, ERR_INVALID, "header_too_large", NULL,
		               "request head is larger than %zu bytes; send a smaller request line "
		               "and fewer or shorter headers",
		               max_head);
	return 0;
}

/* Whether header field f is called name (n bytes), in any case. */
static int
named(const struct httpmsg_header *f, const char *name, size_t n)
{
	size_t j;

	if (f->name_len != n)
		return 0;
	for (j = 0; j < n; j++)
		if (ascii_lower((unsigned char)f->name[j]) != ascii_lower((unsigned char)name[j]))
			return 0;
	return 1;
}

const char *
httpmsg_header(const struct httpmsg_head *h, const char *name, size_t *len)
{
	size_t i, n = strlen(name);

	for (i = 0; i < h->nheaders; i++) {
		if (named(&h->headers[i], name, n)) {
			*len = h->headers[i].value_len;
			return h->headers[i].value;
		}
	}
	return NULL;
}

size_t
httpmsg_header_count(const struct httpmsg_head *h, const char *name)
{
	size_t i, n = strlen(name), k = 0;

	for (i = 0; i < h->nheaders; i++)
		k += (size_t)named(&h->headers[i], name, n);
	return k;
}

/*
 * Chunked decoding, one input byte per step except for chunk data. The
 * extension states are contiguous, and so are the trailer states, so each
 * group can be bounded with a range check.
 */
enum chunk_state {
	CS_SIZE,          /* hex digits of a chunk size */
	CS_SIZE_WS,       /* BWS that must lead to ';' */
	CS_EXT_PRE_NAME,  /* after ';': BWS, then a name */
	CS_EXT_NAME,      /* extension name */
	CS_EXT_POST_NAME, /* BWS after a name: '=' or ';' */
	CS_EXT_PRE_VAL,   /* after '=': BWS, then a value */
	CS_EXT_TOKEN,     /* token value */
	CS_EXT_QUOTED,    /* quoted-string value */
	CS_EXT_ESC,       /* after '\' in a quoted-string */
	CS_EXT_END,       /* after a closing quote */
	CS_SIZE_LF,       /* LF ending the size line */
	CS_DATA,          /* chunk data, size bytes left */
	CS_DATA_CR,       /* CRLF after data */
	CS_DATA_LF,       /* LF of that CRLF */
	CS_TRAILER_START, /* a trailer field or the final CRLF */
	CS_TRAILER_NAME,  /* trailer field name */
	CS_TRAILER_VALUE, /* trailer field value */
	CS_TRAILER_LF,    /* LF ending a trailer field */
	CS_END_LF,        /* LF of the final CRLF */
	CS_DONE,          /* body complete */
	CS_FAILED         /* body rejected */
};

struct httpmsg_chunked {
	enum chunk_state state;
	uint64_t size;      /* size being read, then data bytes left */
	unsigned digits;    /* hex digits of the size so far */
	size_t ext_len;     /* bytes after the size on this line */
	size_t trailer_len; /* bytes of the trailer section so far */
};

struct httpmsg_chunked *
httpmsg_chunked_new(void)
{
	struct httpmsg_chunked *c = calloc(1, sizeof(*c));

	if (c)
		c->state = CS_SIZE;
	return c;
}

void
httpmsg_chunked_free(struct httpmsg_chunked *c)
{
	free(c);
}

/* What may follow a chunk size or a complete extension: BWS then ';', ';'
 * directly, or the CR ending the line. */
static int
ext_next(struct httpmsg_chunked *c, unsigned char ch, struct err *e)
{
	if (ch == ';')
		c->state = CS_EXT_PRE_NAME;
	else if (is_ows(ch))
		c->state = CS_SIZE_WS;
	else if (ch == '\r')
		c->state = CS_SIZE_LF;
	else
		return BAD_REQUEST(e, "chunk size line must be hex digits, optional "
		                      "';'-separated extensions and CRLF");
	return 0;
}

/* Consumes one byte outside chunk data. Returns 1 when it ended the body, 0
 * to go on, -1 on a malformed body. */
static int
chunk_step(struct httpmsg_chunked *c, unsigned char ch, struct err *e)
{
	int x;

	if (c->state >= CS_SIZE_WS && c->state <= CS_EXT_END && ch != '\r' &&
	    ++c->ext_len > CHUNK_EXT_MAX)
		return BAD_REQUEST(e, "chunk extensions are longer than %d bytes on one line",
		                   CHUNK_EXT_MAX);
	if (c->state >= CS_TRAILER_START && c->state <= CS_END_LF &&
	    ++c->trailer_len > CHUNK_TRAILER_MAX)
		return BAD_REQUEST(e, "chunked trailer section is larger than %d bytes",
		                   CHUNK_TRAILER_MAX);
	switch (c->state) {
	case CS_SIZE:
		x = hex_digit(ch);
		if (x >= 0) {
			if (++c->digits > CHUNK_DIGITS_MAX)
				return BAD_REQUEST(e, "chunk size has more than %d hex digits",
				                   CHUNK_DIGITS_MAX);
			c->size = c->size << 4 | (uint64_t)x;
			return 0;
		}
		if (c->digits == 0)
			return BAD_REQUEST(e, "chunk size must start with a hex digit");
		if (ch != '\r')
			c->ext_len++;
		return ext_next(c, ch, e);
	case CS_SIZE_WS:
		if (ch == ';')
			c->state = CS_EXT_PRE_NAME;
		else if (!is_ows(ch))
			return BAD_REQUEST(e, "whitespace after a chunk size or extension must be "
			                      "followed by ';'");
		return 0;
	case CS_EXT_PRE_NAME:
		if (is_tchar(ch))
			c->state = CS_EXT_NAME;
		else if (!is_ows(ch))
			return BAD_REQUEST(e, "chunk extension must have a token name after ';'");
		return 0;
	case CS_EXT_NAME:
		if (is_tchar(ch))
			return 0;
		if (ch == '=') {
			c->state = CS_EXT_PRE_VAL;
			return 0;
		}
		if (is_ows(ch)) {
			c->state = CS_EXT_POST_NAME;
			return 0;
		}
		return ext_next(c, ch, e);
	case CS_EXT_POST_NAME:
		if (ch == '=')
			c->state = CS_EXT_PRE_VAL;
		else if (ch == ';')
			c->state = CS_EXT_PRE_NAME;
		else if (!is_ows(ch))
			return BAD_REQUEST(e, "chunk extension name must be followed by '=', ';' "
			                      "or CRLF");
		return 0;
	case CS_EXT_PRE_VAL:
		if (ch == '"')
			c->state = CS_EXT_QUOTED;
		else if (is_tchar(ch))
			c->state = CS_EXT_TOKEN;
		else if (!is_ows(ch))
			return BAD_REQUEST(e, "chunk extension value must be a token or a quoted "
			                      "string");
		return 0;
	case CS_EXT_TOKEN:
		if (is_tchar(ch))
			return 0;
		return ext_next(c, ch, e);
	case CS_EXT_QUOTED:
		if (ch == '"')
			c->state = CS_EXT_END;
		else if (ch == '\\')
			c->state = CS_EXT_ESC;
		else if (!is_field_char(ch))
			return BAD_REQUEST(e, "chunk extension quoted string contains a control "
			                      "character");
		return 0;
	case CS_EXT_ESC:
		if (!is_field_char(ch))
			return BAD_REQUEST(e, "chunk extension quoted string escapes a control "
			                      "character");
		c->state = CS_EXT_QUOTED;
		return 0;
	case CS_EXT_END:
		return ext_next(c, ch, e);
	case CS_SIZE_LF:
		if (ch != '\n')
			return BAD_REQUEST(e, "chunk size line must end in CRLF");
		c->state = c->size == 0 ? CS_TRAILER_START : CS_DATA;
		return 0;
	case CS_DATA_CR:
		if (ch != '\r')
			return BAD_REQUEST(e, "chunk data must be followed by CRLF; the chunk is "
			                      "longer than its size says");
		c->state = CS_DATA_LF;
		return 0;
	case CS_DATA_LF:
		if (ch != '\n')
			return BAD_REQUEST(e, "chunk data must be followed by CRLF");
		c->state = CS_SIZE;
		c->size = 0;
		c->digits = 0;
		c->ext_len = 0;
		return 0;
	case CS_TRAILER_START:
		if (ch == '\r')
			c->state = CS_END_LF;
		else if (is_tchar(ch))
			c->state = CS_TRAILER_NAME;
		else if (is_ows(ch))
			return BAD_REQUEST(e, "trailer line starts with whitespace; line folding "
			                      "(obs-fold) is not accepted");
		else
			return BAD_REQUEST(e, "trailer field must start with a token name, or the "
			                      "body must end with CRLF");
		return 0;
	case CS_TRAILER_NAME:
		if (ch == ':')
			c->state = CS_TRAILER_VALUE;
		else if (is_ows(ch))
			return BAD_REQUEST(e, "whitespace between a trailer name and ':' is not "
			                      "allowed");
		else if (!is_tchar(ch))
			return BAD_REQUEST(e, "trailer name must be a token followed by ':'");
		return 0;
	case CS_TRAILER_VALUE:
		if (ch == '\r')
			c->state = CS_TRAILER_LF;
		else if (!is_field_char(ch))
			return BAD_REQUEST(e, "trailer value contains a control character");
		return 0;
	case CS_TRAILER_LF:
		if (ch != '\n')
			return BAD_REQUEST(e, "trailer field must end in CRLF");
		c->state = CS_TRAILER_START;
		return 0;
	case CS_END_LF:
		if (ch != '\n')
			return BAD_REQUEST(e, "chunked body must end in CRLF");
		c->state = CS_DONE;
		return 1;
	case CS_DATA:
	case CS_DONE:
	case CS_FAILED:
		break;
	}
	return err_set(e, 500, ERR_INTERNAL, "internal_error", NULL,
	               "chunked decoder reached an impossible state");
}

int
httpmsg_chunked_feed(struct httpmsg_chunked *c, const char *in, size_t len, size_t *consumed,
                     void (*emit)(void *arg, const char *data, size_t n), void *arg, struct err *e)
{
	size_t i = 0;
	int rc = 0;

	if (c->state == CS_DONE) {
		*consumed = 0;
		return 1;
	}
	if (c->state == CS_FAILED) {
		*consumed = 0;
		return BAD_REQUEST(e, "chunked body was already rejected");
	}
	while (i < len && rc == 0) {
		if (c->state == CS_DATA) {
			size_t n = len - i;

			if ((uint64_t)n > c->size)
				n = (size_t)c->size;
			if (emit)
				emit(arg, in + i, n);
			i += n;
			c->size -= n;
			if (c->size == 0)
				c->state = CS_DATA_CR;
			continue;
		}
		rc = chunk_step(c, (unsigned char)in[i], e);
		i++;
	}
	if (rc < 0)
		c->state = CS_FAILED;
	*consumed = i;
	return rc;
}
