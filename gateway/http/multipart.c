/*
 * multipart: a strict multipart/form-data checker (RFC 7578, RFC 2046) for
 * bodies that stream past.
 *
 * The body is read one byte at a time by a state machine, so where the
 * caller's reads happen to split it makes no difference to the answer: every
 * decision depends only on the bytes so far. Part header lines are collected
 * in one fixed buffer and checked once the next line starts; part data is
 * scanned without being kept. Memory is the struct (the delimiter and one
 * MP_HEADER_MAX buffer) and a copy of the allowed names, plus, once per
 * allowed part that is actually sent, a copy of its filename.
 *
 * Finding delimiters needs no search table: a delimiter is CRLF "--"
 * boundary, and the boundary can hold neither CR nor LF, so a delimiter can
 * only start at a line break, and a failed match can only resume at the next
 * CR or LF.
 *
 * Rules chosen here where the RFCs leave room. Each refuses rather than
 * guesses, because the upstream parses the same bytes after us, and any
 * reading it could make differently from ours would let a part past the
 * check:
 *  - no preamble: the body starts with "--" boundary, or with CRLF "--"
 *    boundary (the empty preamble of RFC 2046);
 *  - after a boundary: "--" ends the body (whatever follows is the epilogue
 *    and is ignored), else optional SP/HTAB padding and CRLF; anything else
 *    is an error, never data;
 *  - "--" boundary at the start of a line inside part data is an error
 *    unless the line break before it is CRLF (then it is the delimiter): a
 *    line starts after CR, after LF and where the data starts, since lenient
 *    parsers accept bare CR or LF before a delimiter;
 *  - a body of no parts ("--b--") is accepted; has() is false for every name;
 *  - part headers: from the byte after the boundary to the end of the blank
 *    line, padding and line ends included, at most MP_HEADER_MAX bytes; lines
 *    end in CRLF; no folding (so a line is checked when the next one starts);
 *    field names are tokens; values hold no control characters other than
 *    HTAB (obs-text, such as UTF-8, is allowed); a part's Content-Type may
 *    not be multipart/... (RFC 7578 4.3: no nested multipart/mixed);
 *  - Content-Disposition: exactly one; type form-data (any case);
 *    parameters as in RFC 9110 (OWS around ';', none around '='), none
 *    empty; name, filename and filename* at most once each; other RFC 2231
 *    forms of name and filename (name*, filename*0, ...) refused; other
 *    parameters ignored;
 *  - quoted strings: a backslash may escape only '"' or '\' (RFC 7578
 *    senders percent-encode instead, and parsers differ on other escapes);
 *    percent-encoding is not decoded;
 *  - filename* is an RFC 8187 ext-value in UTF-8 whose decoded bytes are
 *    valid UTF-8 without control characters; when both filename and
 *    filename* are given they must decode to the same bytes;
 *  - part names compare byte for byte with the allowed names;
 *  - Content-Type: type and subtype any case; parameters as in RFC 9110,
 *    empty ones allowed; a boundary given unquoted must also be a token;
 *    parameters other than boundary must not mention "boundary" in name or
 *    value, so that no naive search of the header finds another one.
 */
#include "http/multipart.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hex.h"
#include "lib/utf8.h"

#define MP_BOUNDARY_MAX 70
#define MP_HEADER_MAX   8192
#define MP_QUOTE_MAX    300 /* room for err_quote's longest output */

enum mp_state {
	MP_START, /* matching the first delimiter */
	MP_AFTER_BOUNDARY,
	MP_CLOSE,       /* read "-" after a boundary, want the second */
	MP_PADDING,     /* transport padding after a boundary */
	MP_BOUNDARY_LF, /* read CR after a boundary */
	MP_HEADER,
	MP_HEADER_LF, /* read CR in the part headers */
	MP_DATA,
	MP_DONE,
	MP_FAILED
};

struct mp_part {
	char *name;     /* a copy of the allowed name */
	char *filename; /* decoded, or NULL */
	int seen;       /* its headers were read */
	int complete;   /* the delimiter after its data was read */
};

struct multipart {
	enum mp_state state;
	char delim[4 + MP_BOUNDARY_MAX]; /* CRLF "--" boundary */
	size_t dlen;
	size_t matched;  /* MP_START: bytes of delim matched */
	size_t hbytes;   /* header bytes of the current part */
	size_t linelen;  /* bytes in line */
	int pending;     /* line is whole, checked once the next line shows it is not folded */
	int cur;         /* the current part's index in parts, or -1 */
	int line_match;  /* MP_DATA: bytes of "--" boundary this line starts with, -1 if not */
	int cr;          /* MP_DATA: the last byte was CR */
	int crlf;        /* MP_DATA: the current line began after CRLF */
	struct err fail; /* the error once MP_FAILED */
	struct mp_part *parts;
	size_t nparts;
	char line[MP_HEADER_MAX];
};

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

/* RFC 2046 bchars, space included. */
static int
is_bchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("'()+_,-./:=? ", c) != NULL;
}

/* RFC 8187 attr-char. */
static int
is_attr_char(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$&+-.^_`|~", c) != NULL;
}

static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Whether s[0..n) equals the lowercase literal lit, ignoring case. */
static int
ieq(const char *s, size_t n, const char *lit)
{
	size_t i;

	if (strlen(lit) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (lower((unsigned char)s[i]) != (unsigned char)lit[i])
			return 0;
	return 1;
}

/* Whether s[0..n) starts with the lowercase literal lit, ignoring case. */
static int
iprefix(const char *s, size_t n, const char *lit)
{
	size_t k = strlen(lit);

	return n >= k && ieq(s, k, lit);
}

/* Whether s[0..n) contains the lowercase literal lit, ignoring case. */
static int
icontains(const char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (iprefix(s + i, n - i, lit))
			return 1;
	return 0;
}

static size_t
skip_ows(const char *s, size_t n, size_t i)
{
	while (i < n && is_ows((unsigned char)s[i]))
		i++;
	return i;
}

static size_t
token_len(const char *s, size_t n, size_t i)
{
	size_t k = i;

	while (k < n && is_tchar((unsigned char)s[k]))
		k++;
	return k - i;
}

/*
 * Reads the quoted-string at s[*i] (which is '"') and moves *i past its
 * closing quote. The decoded bytes go to out, at most cap of them (out may
 * be NULL, or s + *i to decode in place: the output never overtakes the
 * input); *olen gets the full decoded length. Returns 0, -1 when the string
 * is unterminated or holds a byte a quoted-string cannot, -2 for a backslash
 * before anything but '"' or '\'.
 */
static int
qstring(const char *s, size_t n, size_t *i, char *out, size_t cap, size_t *olen)
{
	size_t k = *i + 1, o = 0;

	for (;;) {
		unsigned char c;

		if (k >= n)
			return -1;
		c = (unsigned char)s[k++];
		if (c == '"')
			break;
		if (c == '\\') {
			if (k >= n)
				return -1;
			c = (unsigned char)s[k++];
			if (c != '"' && c != '\\')
				return -2;
		} else if (c != '\t' && (c < 0x20 || c == 0x7f)) {
			return -1;
		}
		if (out && o < cap)
			out[o] = (char)c;
		o++;
	}
	*i = k;
	*olen = o;
	return 0;
}

/* Reads a token or quoted-string parameter value at s[*i], as qstring
 * does (a token is copied as it is). Returns as qstring, or -1 for an empty
 * token. */
static int
param_value(const char *s, size_t n, size_t *i, char *out, size_t cap, size_t *olen)
{
	size_t t;

	if (*i < n && s[*i] == '"')
		return qstring(s, n, i, out, cap, olen);
	t = token_len(s, n, *i);
	if (t == 0)
		return -1;
	if (out) {
		size_t c = t < cap ? t : cap;

		memmove(out, s + *i, c);
	}
	*olen = t;
	*i += t;
	return 0;
}

static int bad_content_type(struct err *e, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static int
bad_content_type(struct err *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(e, 400, ERR_INVALID, "invalid_multipart", NULL, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Finds the boundary in a Content-Type value: copies it to b (room for
 * MP_BOUNDARY_MAX bytes) and its length to *blen. Returns 0, or -1 with e
 * filled.
 */
static int
content_type_boundary(const char *s, size_t n, char *b, size_t *blen, struct err *e)
{
	static const char allowed_chars[] = "letters, digits, space (not last) and '()+_,-./:=?";
	char q[MP_QUOTE_MAX];
	size_t i, type, t, vs, len = 0;
	int have = 0, rc;

	if (s == NULL)
		s = "", n = 0;
	i = skip_ows(s, n, 0);
	type = i;
	t = token_len(s, n, i);
	i += t;
	if (!ieq(s + type, t, "multipart") || i >= n || s[i] != '/' ||
	    !ieq(s + i + 1, token_len(s, n, i + 1), "form-data"))
		return err_set(e, 415, ERR_INVALID, "unsupported_media_type", NULL,
		               "Content-Type %s is not supported here; send multipart/form-data "
		               "with a boundary parameter",
		               err_quote(q, sizeof(q), s, n));
	i += 1 + token_len(s, n, i + 1);
	for (;;) {
		size_t name, nlen, vlen;

		i = skip_ows(s, n, i);
		if (i == n)
			break;
		if (s[i] != ';')
			return bad_content_type(e,
			                        "Content-Type has a malformed parameter list at "
			                        "byte %zu; send multipart/form-data; boundary=...",
			                        i + 1);
		i = skip_ows(s, n, i + 1);
		if (i == n || s[i] == ';')
			continue;
		name = i;
		nlen = token_len(s, n, i);
		i += nlen;
		if (nlen == 0 || i >= n || s[i] != '=')
			return bad_content_type(e,
			                        "Content-Type has a malformed parameter at byte "
			                        "%zu; parameters are name=value",
			                        name + 1);
		vs = ++i;
		if (!ieq(s + name, nlen, "boundary")) {
			rc = param_value(s, n, &i, NULL, 0, &vlen);
			if (rc < 0)
				return bad_content_type(e,
				                        "Content-Type parameter %s has a malformed "
				                        "value; use a token or a quoted string",
				                        err_quote(q, sizeof(q), s + name, nlen));
			if (icontains(s + name, nlen, "boundary") ||
			    icontains(s + vs, i - vs, "boundary"))
				return bad_content_type(
				        e,
				        "Content-Type parameter %s mentions "
				        "\"boundary\"; give the boundary only as the "
				        "boundary parameter",
				        err_quote(q, sizeof(q), s + name, nlen));
			continue;
		}
		if (have)
			return bad_content_type(e, "Content-Type has more than one boundary "
			                           "parameter; send exactly one");
		have = 1;
		rc = param_value(s, n, &i, b, MP_BOUNDARY_MAX, &len);
		if (rc < 0 || len == 0 || len > MP_BOUNDARY_MAX)
			goto bad_boundary;
		/* Unquoted, it ends at ';' or OWS: "b=a:b" needs quotes. */
		if (s[vs] != '"' && i < n && s[i] != ';' && !is_ows((unsigned char)s[i]))
			goto bad_boundary;
		for (t = 0; t < len; t++)
			if (!is_bchar((unsigned char)b[t]))
				goto bad_boundary;
		if (b[len - 1] == ' ')
			goto bad_boundary;
	}
	if (!have)
		return bad_content_type(e, "Content-Type multipart/form-data has no boundary "
		                           "parameter; add boundary=... of 1 to 70 characters");
	*blen = len;
	return 0;

bad_boundary:
	return bad_content_type(e,
	                        "multipart boundary is not valid; it must be 1 to 70 of %s, "
	                        "and quoted if it has any of ()/:=? or space",
	                        allowed_chars);
}

/* Frees the allowed names and filenames, then m. */
void
multipart_free(struct multipart *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nparts; i++) {
		free(m->parts[i].name);
		free(m->parts[i].filename);
	}
	free(m->parts);
	free(m);
}

struct multipart *
multipart_new(const char *content_type, size_t len, const char *const *allowed, struct err *e)
{
	struct multipart *m = NULL;
	char b[MP_BOUNDARY_MAX];
	size_t blen = 0, n = 0;

	if (content_type_boundary(content_type, len, b, &blen, e) < 0)
		goto fail;
	while (allowed && allowed[n])
		n++;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		goto oom;
	m->parts = calloc(n ? n : 1, sizeof(*m->parts));
	if (m->parts == NULL)
		goto oom;
	for (; m->nparts < n; m->nparts++) {
		m->parts[m->nparts].name = strdup(allowed[m->nparts]);
		if (m->parts[m->nparts].name == NULL)
			goto oom;
	}
	memcpy(m->delim, "\r\n--", 4);
	memcpy(m->delim + 4, b, blen);
	m->dlen = 4 + blen;
	m->state = MP_START;
	m->cur = -1;
	m->line_match = -1;
	return m;

oom:
	err_set(e, 503, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
fail:
	multipart_free(m);
	return NULL;
}

/* Fails m for good with a 400 of this code; param is the current part's
 * name unless given. */
static int reject(struct multipart *m, struct err *e, const char *code, const char *param,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
reject(struct multipart *m, struct err *e, const char *code, const char *param, const char *fmt,
       ...)
{
	va_list ap;

	if (param == NULL && m->cur >= 0)
		param = m->parts[m->cur].name;
	va_start(ap, fmt);
	err_vset(&m->fail, 400, ERR_INVALID, code, param, fmt, ap);
	va_end(ap);
	m->state = MP_FAILED;
	*e = m->fail;
	return -1;
}

#define INVALID(m, e, ...) reject((m), (e), "invalid_multipart", NULL, __VA_ARGS__)

/* Lists the allowed names for a message: "a", "a" or "b", "a", "b" or "c". */
static void
allowed_names(const struct multipart *m, char *out, size_t cap)
{
	char q[MP_QUOTE_MAX];
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; i < m->nparts && o < cap; i++) {
		const char *sep = i == 0 ? "" : i + 1 == m->nparts ? " or " : ", ";
		const char *name = m->parts[i].name;

		o += (size_t)snprintf(out + o, cap - o, "%s%s", sep,
		                      err_quote(q, sizeof(q), name, strlen(name)));
	}
}

/*
 * Decodes an RFC 8187 ext-value in place: v[0..n) becomes the decoded bytes,
 * their length in *olen. Returns 0, or -1 when it is malformed, not UTF-8,
 * or decodes to a control character.
 */
static int
ext_value(char *v, size_t n, size_t *olen)
{
	size_t i = 0, cs, o = 0;

	while (i < n && v[i] != '\'')
		i++;
	if (i == n || !ieq(v, i, "utf-8"))
		return -1;
	cs = ++i;
	while (i < n && v[i] != '\'') {
		unsigned char c = (unsigned char)v[i];

		if (!(c == '-' || (c >= '0' && c <= '9') || (lower(c) >= 'a' && lower(c) <= 'z')))
			return -1;
		i++;
	}
	if (i == n || i - cs > 64)
		return -1;
	for (i++; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3)
				return -1;
			hi = hex_digit((unsigned char)v[i + 1]);
			lo = hex_digit((unsigned char)v[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			if (c < 0x20 || c == 0x7f)
				return -1;
			i += 2;
		} else if (!is_attr_char(c)) {
			return -1;
		}
		v[o++] = (char)c;
	}
	if (!utf8_valid(v, o))
		return -1;
	*olen = o;
	return 0;
}

/*
 * Checks a Content-Disposition value v[0..n) (trimmed; decoded in place) and
 * makes its part the current one.
 */
static int
disposition(struct multipart *m, char *v, size_t n, struct err *e)
{
	char q[MP_QUOTE_MAX], list[4 * MP_QUOTE_MAX], param[ERR_PARAM_MAX];
	size_t i, t, name = 0, nlen = 0, fn = 0, fnlen = 0, fx = 0, fxlen = 0, k;
	int have_name = 0, have_fn = 0, have_fx = 0, rc;
	struct mp_part *p = NULL;

	t = token_len(v, n, 0);
	if (t == 0)
		return INVALID(m, e,
		               "multipart part Content-Disposition has no type; it must be "
		               "form-data; name=\"...\"");
	if (!ieq(v, t, "form-data"))
		return INVALID(m, e,
		               "multipart part Content-Disposition is %s; it must be form-data",
		               err_quote(q, sizeof(q), v, t));
	i = t;
	for (;;) {
		size_t pn, plen, vs, vlen;
		int quoted;

		i = skip_ows(v, n, i);
		if (i == n)
			break;
		if (v[i] != ';')
			goto malformed;
		i = skip_ows(v, n, i + 1);
		pn = i;
		plen = token_len(v, n, i);
		i += plen;
		if (plen == 0 || i >= n || v[i] != '=')
			goto malformed;
		vs = ++i;
		quoted = i < n && v[i] == '"';
		rc = param_value(v, n, &i, v + vs, n, &vlen);
		if (rc == -2)
			return INVALID(m, e,
			               "multipart part Content-Disposition has a backslash "
			               "escaping something other than '\"' or '\\' in a "
			               "quoted string");
		if (rc < 0)
			goto malformed;
		if (ieq(v + pn, plen, "name")) {
			if (have_name++)
				goto twice;
			name = vs, nlen = vlen;
		} else if (ieq(v + pn, plen, "filename")) {
			if (have_fn++)
				goto twice;
			fn = vs, fnlen = vlen;
		} else if (ieq(v + pn, plen, "filename*")) {
			if (have_fx++)
				goto twice;
			if (quoted || ext_value(v + vs, vlen, &fxlen) < 0)
				return INVALID(m, e,
				               "multipart part Content-Disposition has a "
				               "malformed filename*; use filename=\"...\"");
			fx = vs;
		} else if (iprefix(v + pn, plen, "name*") || iprefix(v + pn, plen, "filename*")) {
			return INVALID(m, e,
			               "multipart part Content-Disposition has parameter %s; "
			               "RFC 2231 continuations are not accepted, use name=\"...\" "
			               "and filename=\"...\"",
			               err_quote(q, sizeof(q), v + pn, plen));
		}
		continue;
	twice:
		return INVALID(m, e, "multipart part Content-Disposition gives %s more than once",
		               err_quote(q, sizeof(q), v + pn, plen));
	}
	if (!have_name)
		return INVALID(m, e,
		               "multipart part Content-Disposition has no name parameter; "
		               "send form-data; name=\"...\"");
	for (k = 0; k < m->nparts; k++) {
		if (strlen(m->parts[k].name) == nlen &&
		    memcmp(m->parts[k].name, v + name, nlen) == 0) {
			p = &m->parts[k];
			break;
		}
	}
	snprintf(param, sizeof(param), "%.*s", (int)(nlen < sizeof(param) ? nlen : sizeof(param)),
	         v + name);
	if (p == NULL) {
		allowed_names(m, list, sizeof(list));
		if (m->nparts == 0)
			return reject(
			        m, e, "unknown_parameter", param,
			        "multipart part %s is not allowed; this request takes no parts",
			        err_quote(q, sizeof(q), v + name, nlen));
		return reject(m, e, "unknown_parameter", param,
		              "multipart part %s is not allowed; send only parts named %s",
		              err_quote(q, sizeof(q), v + name, nlen), list);
	}
	if (p->seen)
		return reject(m, e, "duplicate_parameter", param,
		              "multipart part %s appears more than once; send each part once",
		              err_quote(q, sizeof(q), v + name, nlen));
	p->seen = 1;
	m->cur = (int)k;
	if (have_fx && have_fn && (fnlen != fxlen || memcmp(v + fn, v + fx, fnlen) != 0))
		return INVALID(m, e,
		               "multipart part %s has a filename and a filename* that differ; "
		               "send filename=\"...\" alone",
		               err_quote(q, sizeof(q), p->name, strlen(p->name)));
	if (have_fn || have_fx) {
		p->filename = malloc((have_fx ? fxlen : fnlen) + 1);
		if (p->filename == NULL) {
			err_set(&m->fail, 503, ERR_INTERNAL, "out_of_memory", NULL,
			        "out of memory");
			m->state = MP_FAILED;
			*e = m->fail;
			return -1;
		}
		memcpy(p->filename, have_fx ? v + fx : v + fn, have_fx ? fxlen : fnlen);
		p->filename[have_fx ? fxlen : fnlen] = '\0';
	}
	return 0;

malformed:
	return INVALID(m, e,
	               "multipart part Content-Disposition is malformed; send form-data; "
	               "name=\"...\" with an optional filename=\"...\"");
}

/* Checks the complete, unfolded header line in m->line. */
static int
header_line(struct multipart *m, struct err *e)
{
	char q[MP_QUOTE_MAX];
	char *s = m->line;
	size_t n = m->linelen, t, i, end;

	t = token_len(s, n, 0);
	if (t == 0 || t == n || s[t] != ':')
		return INVALID(m, e, "multipart part header line is not \"Name: value\"");
	for (i = t + 1; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c != '\t' && (c < 0x20 || c == 0x7f))
			return INVALID(m, e, "multipart part header %s holds a control character",
			               err_quote(q, sizeof(q), s, t));
	}
	i = skip_ows(s, n, t + 1);
	if (ieq(s, t, "content-type") && iprefix(s + i, n - i, "multipart/"))
		return INVALID(m, e,
		               "multipart part has Content-Type %s; nested multipart is not "
		               "accepted, send each file as a part of its own",
		               err_quote(q, sizeof(q), s + i, token_len(s, n, i + 10) + 10));
	if (!ieq(s, t, "content-disposition"))
		return 0;
	if (m->cur >= 0)
		return INVALID(m, e,
		               "multipart part has more than one Content-Disposition header; "
		               "send exactly one");
	end = n;
	while (end > i && is_ows((unsigned char)s[end - 1]))
		end--;
	return disposition(m, s + i, end - i, e);
}

/* Counts a byte of the current part's headers against MP_HEADER_MAX. */
static int
header_byte(struct multipart *m, struct err *e)
{
	if (++m->hbytes > MP_HEADER_MAX)
		return INVALID(m, e, "multipart part headers are over %d bytes; send at most %d",
		               MP_HEADER_MAX, MP_HEADER_MAX);
	return 0;
}

/* The data of the current part has ended at a delimiter. */
static void
boundary_seen(struct multipart *m)
{
	if (m->cur >= 0)
		m->parts[m->cur].complete = 1;
	m->cur = -1;
	m->hbytes = 0;
	m->state = MP_AFTER_BOUNDARY;
}

/* One byte of part data. */
static int
data_byte(struct multipart *m, unsigned char c, struct err *e)
{
	if (c == '\r') {
		m->cr = 1;
		m->line_match = 0;
		return 0;
	}
	if (c == '\n') {
		m->crlf = m->cr;
		m->cr = 0;
		m->line_match = 0;
		return 0;
	}
	if (m->cr) {
		m->crlf = 0;
		m->cr = 0;
	}
	if (m->line_match < 0)
		return 0;
	if (c != (unsigned char)m->delim[2 + m->line_match]) {
		m->line_match = -1;
		return 0;
	}
	if ((size_t)++m->line_match < m->dlen - 2)
		return 0;
	if (!m->crlf)
		return INVALID(m, e,
		               "multipart part data has the boundary at the start of a line "
		               "without CRLF before it; the boundary must not occur in part "
		               "data, and a delimiter is CRLF \"--\" boundary");
	boundary_seen(m);
	return 0;
}

static int
step(struct multipart *m, unsigned char c, struct err *e)
{
	switch (m->state) {
	case MP_START:
		if (m->matched == 0 && c == '-')
			m->matched = 3; /* no CRLF at the very start */
		else if (c == (unsigned char)m->delim[m->matched])
			m->matched++;
		else
			return INVALID(m, e,
			               "multipart body must start with \"--\" and the boundary "
			               "from Content-Type; a preamble is not accepted");
		if (m->matched == m->dlen)
			boundary_seen(m);
		return 0;
	case MP_AFTER_BOUNDARY:
		if (header_byte(m, e) < 0)
			return -1;
		if (c == '-')
			m->state = MP_CLOSE;
		else if (is_ows(c))
			m->state = MP_PADDING;
		else if (c == '\r')
			m->state = MP_BOUNDARY_LF;
		else if (c == '\n')
			return INVALID(m, e,
			               "multipart boundary line ends in a bare LF; lines must "
			               "end in CRLF");
		else
			return INVALID(m, e,
			               "multipart boundary is followed by other text; after "
			               "the boundary only \"--\" (end of body) or CRLF (next "
			               "part) may come");
		return 0;
	case MP_CLOSE:
		if (c != '-')
			return INVALID(m, e,
			               "multipart boundary is followed by a single '-'; the "
			               "last boundary ends in \"--\"");
		m->state = MP_DONE;
		return 0;
	case MP_PADDING:
		if (header_byte(m, e) < 0)
			return -1;
		if (c == '\r')
			m->state = MP_BOUNDARY_LF;
		else if (!is_ows(c))
			return INVALID(m, e,
			               "multipart boundary is followed by other text; after "
			               "the boundary only spaces and CRLF may come");
		return 0;
	case MP_BOUNDARY_LF:
		if (header_byte(m, e) < 0)
			return -1;
		if (c != '\n')
			return INVALID(m, e,
			               "multipart boundary line has a CR without LF; lines "
			               "must end in CRLF");
		m->linelen = 0;
		m->state = MP_HEADER;
		return 0;
	case MP_HEADER:
		if (header_byte(m, e) < 0)
			return -1;
		if (m->pending) {
			if (is_ows(c))
				return INVALID(m, e,
				               "multipart part header line is folded (the next "
				               "line starts with whitespace); folding is not "
				               "accepted");
			m->pending = 0;
			if (header_line(m, e) < 0)
				return -1;
			m->linelen = 0;
		}
		if (c == '\r') {
			m->state = MP_HEADER_LF;
			return 0;
		}
		if (c == '\n')
			return INVALID(m, e,
			               "multipart part header line ends in a bare LF; lines "
			               "must end in CRLF");
		if (m->linelen == 0 && is_ows(c))
			return INVALID(m, e,
			               "multipart part header line starts with whitespace; "
			               "folded header lines are not accepted");
		if (m->linelen >= sizeof(m->line))
			return INVALID(m, e,
			               "multipart part headers are over %d bytes; send at "
			               "most %d",
			               MP_HEADER_MAX, MP_HEADER_MAX);
		m->line[m->linelen++] = (char)c;
		return 0;
	case MP_HEADER_LF:
		if (header_byte(m, e) < 0)
			return -1;
		if (c != '\n')
			return INVALID(m, e,
			               "multipart part header line has a CR without LF; lines "
			               "must end in CRLF");
		m->state = MP_HEADER;
		if (m->linelen > 0) {
			m->pending = 1;
			return 0;
		}
		if (m->cur < 0)
			return INVALID(m, e,
			               "multipart part has no Content-Disposition header; "
			               "each part needs Content-Disposition: form-data; "
			               "name=\"...\"");
		m->state = MP_DATA;
		m->line_match = 0; /* the data starts a line */
		m->cr = 0;
		m->crlf = 0;
		return 0;
	case MP_DATA:
		return data_byte(m, c, e);
	case MP_DONE:
	case MP_FAILED:
		break;
	}
	return 0;
}

/* How many bytes at p the data scan can pass over without looking: those
 * before the next CR or LF while no line start is being matched (a pending
 * CR always has line_match 0). */
static size_t
data_skip(const struct multipart *m, const unsigned char *p, size_t n)
{
	size_t i = 0;

	if (m->line_match >= 0)
		return 0;
	while (i < n && p[i] != '\r' && p[i] != '\n')
		i++;
	return i;
}

int
multipart_feed(struct multipart *m, const char *data, size_t len, struct err *e)
{
	const unsigned char *p = (const unsigned char *)data;
	size_t i = 0;

	while (m->state != MP_DONE && m->state != MP_FAILED && i < len) {
		if (m->state == MP_DATA) {
			i += data_skip(m, p + i, len - i);
			if (i == len)
				break;
		}
		if (step(m, p[i++], e) < 0)
			return -1;
	}
	if (m->state == MP_FAILED) {
		*e = m->fail;
		return -1;
	}
	return m->state == MP_DONE;
}

static const struct mp_part *
find_part(const struct multipart *m, const char *name)
{
	size_t i;

	for (i = 0; m && name && i < m->nparts; i++)
		if (strcmp(m->parts[i].name, name) == 0)
			return &m->parts[i];
	return NULL;
}

int
multipart_has(const struct multipart *m, const char *name)
{
	const struct mp_part *p = find_part(m, name);

	return p != NULL && p->complete;
}

const char *
multipart_filename(const struct multipart *m, const char *name)
{
	const struct mp_part *p = find_part(m, name);

	return p ? p->filename : NULL;
}
