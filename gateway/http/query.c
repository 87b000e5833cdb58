#include "http/query.h"

#include <stdio.h>
#include <string.h>

#include "lib/hex.h"
#include "lib/utf8.h"

#define VALUE_MAX  512
#define PARAMS_MAX 16

/* Decodes s[0..len) into dst (VALUE_MAX + 1 bytes); -1 on a bad escape,
 * an over-long value or a control character. */
static int
decode(const char *s, size_t len, char *dst, size_t *out_len)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (i + 2 >= len)
				return -1;
			if (hex_digit(s[i + 1]) < 0 || hex_digit(s[i + 2]) < 0)
				return -1;
			c = hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f || o >= VALUE_MAX)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	*out_len = o;
	return 0;
}

static int
check_value(const struct query_param *p, const char *v, size_t len, struct err *e)
{
	size_t i;
	long long n = 0;

	switch (p->type) {
	case QUERY_INT:
		if (len == 0 || len > 12)
			goto bad_int;
		for (i = 0; i < len; i++) {
			if (v[i] < '0' || v[i] > '9')
				goto bad_int;
			n = n * 10 + (v[i] - '0');
		}
		if (n < p->min || n > p->max)
			goto bad_int;
		return 0;
	bad_int:
		return err_set(e, 400, ERR_INVALID, "invalid_value", p->name,
		               "query parameter %s must be an integer from %lld to %lld", p->name,
		               p->min, p->max);
	case QUERY_ENUM: {
		char list[128];
		size_t o = 0;

		for (i = 0; p->enumv[i]; i++)
			if (strcmp(p->enumv[i], v) == 0)
				return 0;
		list[0] = '\0';
		for (i = 0; p->enumv[i] && o < sizeof(list); i++)
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s\"%s\"", i ? ", " : "",
			                      p->enumv[i]);
		return err_set(e, 400, ERR_INVALID, "invalid_value", p->name,
		               "query parameter %s must be one of %s", p->name, list);
	}
	case QUERY_ID:
		for (i = 0; i < len; i++) {
			char c = v[i];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '_' || c == '-'))
				break;
		}
		if (len == 0 || len > 128 || i < len)
			return err_set(e, 400, ERR_INVALID, "invalid_value", p->name,
			               "query parameter %s must be an id: 1 to 128 letters, "
			               "digits, '_' or '-'",
			               p->name);
		return 0;
	case QUERY_STRING:
	default:
		if (len == 0 || (long long)len > p->max || !utf8_valid(v, len))
			return err_set(e, 400, ERR_INVALID, "invalid_value", p->name,
			               "query parameter %s must be UTF-8 text of 1 to %lld bytes",
			               p->name, p->max);
		return 0;
	}
}

/* Appends name=value to out, escaping everything but unreserved bytes. */
static int
append(char *out, size_t n, size_t *o, const char *name, const char *v, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;
	int k = snprintf(out + *o, n - *o, "%s%s=", *o ? "&" : "", name);

	if (k < 0 || (size_t)k >= n - *o)
		return -1;
	*o += (size_t)k;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (*o + 4 >= n)
			return -1;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			out[(*o)++] = (char)c;
		} else {
			out[(*o)++] = '%';
			out[(*o)++] = hex[c >> 4];
			out[(*o)++] = hex[c & 15];
		}
	}
	out[*o] = '\0';
	return 0;
}

int
query_check(const char *raw, const struct query_param *allowed, char *out, size_t n, struct err *e)
{
	const struct query_param *p;
	int seen[PARAMS_MAX] = {0};
	char value[VALUE_MAX + 1], name[64], q[96];
	const char *s = raw, *amp, *eq;
	size_t o = 0, len, vlen, idx;

	out[0] = '\0';
	if (s == NULL)
		return 0;
	while (*s) {
		amp = strchr(s, '&');
		len = amp ? (size_t)(amp - s) : strlen(s);
		eq = memchr(s, '=', len);
		if (len == 0)
			return err_set(e, 400, ERR_INVALID, "invalid_query", NULL,
			               "the query string has an empty parameter");
		if (eq == NULL || (size_t)(eq - s) >= sizeof(name) ||
		    decode(s, (size_t)(eq - s), value, &vlen) < 0 || vlen >= sizeof(name))
			return err_set(e, 400, ERR_INVALID, "invalid_query", NULL,
			               "each query parameter must be name=value with valid "
			               "percent-escapes");
		memcpy(name, value, vlen + 1); /* vlen < sizeof(name), checked above */
		for (p = allowed, idx = 0; p->name; p++, idx++)
			if (strcmp(p->name, name) == 0)
				break;
		if (p->name == NULL) {
			err_quote(q, sizeof(q), name, strlen(name));
			return err_set(e, 400, ERR_INVALID, "unknown_parameter", name,
			               "unknown query parameter %s", q);
		}
		if (idx < PARAMS_MAX && seen[idx]++)
			return err_set(e, 400, ERR_INVALID, "duplicate_parameter", p->name,
			               "query parameter %s appears more than once", p->name);
		if (decode(eq + 1, len - (size_t)(eq - s) - 1, value, &vlen) < 0)
			return err_set(e, 400, ERR_INVALID, "invalid_query", p->name,
			               "query parameter %s has a bad percent-escape, a control "
			               "character, or is longer than %d bytes",
			               p->name, VALUE_MAX);
		if (check_value(p, value, vlen, e) < 0)
			return -1;
		if (append(out, n, &o, p->name, value, vlen) < 0)
			return err_set(e, 400, ERR_INVALID, "invalid_query", NULL,
			               "the query string is too long");
		if (amp && amp[1] == '\0')
			return err_set(e, 400, ERR_INVALID, "invalid_query", NULL,
			               "the query string ends with '&'");
		s = amp ? amp + 1 : s + len;
	}
	return 0;
}
