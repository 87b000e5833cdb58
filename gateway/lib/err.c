#include "lib/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/utf8.h"

void
err_clear(struct err *e)
{
	e->status = 0;
	e->type = NULL;
	e->code = NULL;
	e->param[0] = '\0';
	e->message[0] = '\0';
}

/* Replaces every byte that is not part of valid UTF-8 with '?', so an
 * error can always be encoded as JSON (a cut message may end mid-sequence). */
static void
scrub_utf8(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t left = strlen(s), n;

	while (*p) {
		n = utf8_seq(p, left);
		if (n == 0) {
			*p++ = '?';
			left--;
			continue;
		}
		p += n;
		left -= n;
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
	/* No file: the message is whole already (moved from another list). */
	o = file ? (size_t)snprintf(dst, cap, "%s: ", file) : 0;
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
