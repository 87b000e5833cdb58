#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void
err_clear(struct err *e)
{
	e->status = 0;
	e->type = NULL;
	e->code = NULL;
	e->param[0] = '\0';
	e->message[0] = '\0';
}

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t
utf8_seq(const unsigned char *s)
{
	unsigned c = s[0], need, cp, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		need = 2, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 3, cp = c & 0x07;
	else
		return 0;
	for (i = 1; i <= need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need + 1;
}

/* Replaces every byte that is not part of valid UTF-8 with '?', so an
 * error can always be encoded as JSON (a cut message may end mid-sequence). */
static void
scrub_utf8(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t n;

	while (*p) {
		n = utf8_seq(p);
		if (n == 0) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

int
err_vset(struct err *e, int status, const char *type, const char *code, const char *param,
         const char *fmt, va_list ap)
{
	e->status = status;
	e->type = type;
	e->code = code;
	snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	scrub_utf8(e->param);
	scrub_utf8(e->message);
	return -1;
}

int
err_set(struct err *e, int status, const char *type, const char *code, const char *param,
        const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(e, status, type, code, param, fmt, ap);
	va_end(ap);
	return -1;
}

char *
err_quote(char *dst, size_t n, const char *s, size_t len)
{
	size_t o = 0, i;
	const size_t shown = 64;

	if (n < 16) {
		if (n > 0)
			dst[0] = '\0';
		return dst;
	}
	dst[o++] = '"';
	for (i = 0; i < len && i < shown; i++) {
		unsigned char c = (unsigned char)s[i];

		if (o + 8 >= n)
			break;
		if (c == '"' || c == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			dst[o++] = (char)c;
		} else {
			o += (size_t)snprintf(dst + o, n - o, "\\x%02x", c);
		}
	}
	dst[o++] = '"';
	if (i < len && o + 4 < n) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

void
errlist_add(struct errlist *l, const char *file, const char *path, const char *fmt, ...)
{
	char *dst;
	size_t cap = sizeof(l->msg[0]), o;
	va_list ap;

	if (l->n >= ERRLIST_MAX) {
		l->dropped++;
		return;
	}
	dst = l->msg[l->n++];
	o = (size_t)snprintf(dst, cap, "%s: ", file);
	if (l->prefix && *l->prefix && o < cap)
		o += (size_t)snprintf(dst + o, cap - o, "%s%s", l->prefix,
		                      path && *path ? "." : ": ");
	if (path && *path && o < cap)
		o += (size_t)snprintf(dst + o, cap - o, "%s: ", path);
	if (o < cap) {
		va_start(ap, fmt);
		vsnprintf(dst + o, cap - o, fmt, ap);
		va_end(ap);
	}
}
