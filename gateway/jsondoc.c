#include "jsondoc.h"

#include <stdio.h>
#include <string.h>

#define PATH_DEPTH 32	/* frames tracked when locating an error */
#define KEY_MAX	   64	/* bytes of a key kept for the path */

size_t
jsondoc_path_push_key(char *dst, size_t n, const char *key)
{
	size_t old = strlen(dst);

	snprintf(dst + old, n - old, "%s%s", old ? "." : "", key);
	return old;
}

size_t
jsondoc_path_push_index(char *dst, size_t n, size_t i)
{
	size_t old = strlen(dst);

	snprintf(dst + old, n - old, "[%zu]", i);
	return old;
}

struct frame {
	int is_object;
	int have_key;
	size_t index;
	char key[KEY_MAX + 1];
};

/* Reads a string starting after its opening quote; returns the offset of
 * the byte after the closing quote, or limit if it does not close before. */
static size_t
scan_string(const char *buf, size_t i, size_t limit, char *key, size_t keysz)
{
	size_t k = 0;

	while (i < limit) {
		char c = buf[i++];

		if (c == '"')
			break;
		if (c == '\\' && i < limit) {
			c = buf[i++];
		}
		if (key && k + 1 < keysz)
			key[k++] = c;
	}
	if (key)
		key[k] = '\0';
	return i;
}

void
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
				i = scan_string(buf, i, off, top->key, sizeof(top->key));
				top->have_key = 1;
			} else {
				i = scan_string(buf, i, off, NULL, 0);
			}
			break;
		default:
			break;
		}
	}
	dst[0] = '\0';
	for (d = 0; d < depth; d++) {
		if (st[d].is_object && st[d].have_key)
			jsondoc_path_push_key(dst, n, st[d].key);
		else if (!st[d].is_object)
			jsondoc_path_push_index(dst, n, st[d].index);
	}
}

/* A key name for a duplicate-key message: the last path element. */
static const char *
last_key(const char *path)
{
	const char *dot = strrchr(path, '.');

	return dot ? dot + 1 : path;
}

json_t *
jsondoc_parse(const char *buf, size_t len, struct err *e)
{
	json_error_t je;
	json_t *doc;
	char path[ERR_PARAM_MAX], q[96];
	size_t pos;

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

	doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (doc != NULL) {
		if (json_is_object(doc))
			return doc;
		json_decref(doc);
		err_set(e, 400, ERR_INVALID, "invalid_json", NULL,
			       "body must be a JSON object, not an array");
		return NULL;
	}

	/* jansson's own text quotes the bytes near the error, which may be a
	 * secret, so only its code and position are used. */
	pos = je.position > 0 ? (size_t)je.position : 0;
	jsondoc_path_at(buf, len, pos, path, sizeof(path));
	switch (json_error_code(&je)) {
	case json_error_duplicate_key:
		err_quote(q, sizeof(q), last_key(path), strlen(last_key(path)));
		err_set(e, 400, ERR_INVALID, "duplicate_key", path,
			"key %s appears more than once in the same object (line %d, column %d); "
			"each key may appear once",
			q, je.line, je.column);
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
