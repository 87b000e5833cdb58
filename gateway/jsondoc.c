#include "jsondoc.h"

#include <stdio.h>
#include <string.h>

#include "secmem.h"

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
	size_t old = strlen(dst);
	char idx[24];
	int k = snprintf(idx, sizeof(idx), "[%zu]", i);

	if (old + (size_t)k < n)
		memcpy(dst + old, idx, (size_t)k + 1);
	return old;
}

struct frame {
	int is_object;
	int have_key;
	int key_ok; /* the key can be shown: short, printable ASCII, closed */
	size_t index;
	char key[KEY_MAX + 1];
};

static int
hex4(const char *p, unsigned *v)
{
	unsigned i, x = 0;

	for (i = 0; i < 4; i++) {
		char c = p[i];

		x <<= 4;
		if (c >= '0' && c <= '9')
			x |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			x |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*v = x;
	return 0;
}

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
			if (c == 'u' && i + 4 <= limit && hex4(buf + i, &u) == 0) {
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

json_t *
jsondoc_parse(const char *buf, size_t len, struct err *e)
{
	json_error_t je;
	json_t *doc;
	char path[ERR_PARAM_MAX], q[96];
	unsigned long oom_before;
	size_t pos;
	int whole;

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
	doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (doc != NULL) {
		if (json_is_object(doc))
			return doc;
		json_decref(doc);
		err_set(e, 400, ERR_INVALID, "invalid_json", NULL,
		        "body must be a JSON object, not an array");
		return NULL;
	}

	/* jansson 2.14 reports a failed allocation as a syntax error. */
	if (secmem_failures() != oom_before) {
		err_set(e, 503, ERR_INTERNAL, "out_of_memory", NULL,
		        "the gateway ran out of memory reading the body; try again");
		return NULL;
	}

	/* jansson's own text quotes the bytes near the error, which may be a
	 * secret, so only its code and position are used. */
	pos = je.position > 0 ? (size_t)je.position : 0;
	whole = jsondoc_path_at(buf, len, pos, path, sizeof(path));
	switch (json_error_code(&je)) {
	case json_error_duplicate_key:
		if (whole) {
			const char *dot = strrchr(path, '.'), *key = dot ? dot + 1 : path;

			err_quote(q, sizeof(q), key, strlen(key));
			err_set(e, 400, ERR_INVALID, "duplicate_key", path,
			        "key %s appears more than once in the same object (line %d, column "
			        "%d); each key may appear once",
			        q, je.line, je.column);
		} else {
			err_set(e, 400, ERR_INVALID, "duplicate_key", path,
			        "a key appears more than once in the same object (line %d, column "
			        "%d); each key may appear once",
			        je.line, je.column);
		}
		break;
	case json_error_invalid_utf8:
		err_set(e, 400, ERR_INVALID, "invalid_json", path,
		        "body is not valid UTF-8 at byte %zu; send UTF-8 encoded JSON", pos);
		break;
	case json_error_null_character:
		err_set(e, 400, ERR_INVALID, "invalid_json", path,
		        "strings may not contain \\u0000 (line %d, column %d)", je.line, je.column);
		break;
	case json_error_numeric_overflow:
		err_set(e, 400, ERR_INVALID, "invalid_json", path,
		        "number out of range (line %d, column %d); integers must fit in 64 bits "
		        "and reals in a double",
		        je.line, je.column);
		break;
	case json_error_stack_overflow:
		err_set(e, 400, ERR_INVALID, "invalid_json", NULL,
		        "JSON is nested too deeply (line %d, column %d)", je.line, je.column);
		break;
	case json_error_end_of_input_expected:
		err_set(e, 400, ERR_INVALID, "invalid_json", NULL,
		        "unexpected data after the JSON object (line %d, column %d); send exactly "
		        "one JSON object",
		        je.line, je.column);
		break;
	case json_error_premature_end_of_input:
		err_set(e, 400, ERR_INVALID, "invalid_json", path,
		        "body ends before the JSON is complete");
		break;
	case json_error_out_of_memory:
		err_set(e, 500, ERR_INTERNAL, "out_of_memory", NULL,
		        "the gateway ran out of memory parsing the request");
		break;
	default:
		err_set(e, 400, ERR_INVALID, "invalid_json", path,
		        "invalid JSON at line %d, column %d (NaN, Infinity, comments, single "
		        "quotes and trailing commas are not JSON)",
		        je.line, je.column);
		break;
	}
	return NULL;
}
