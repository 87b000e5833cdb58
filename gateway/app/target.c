#include "app/target.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "app/request.h"
#include "lib/hex.h"

/* Identifiers are what the upstream issues: letters, digits, '_' and '-'.
 * Anything else could be read differently on the way upstream. */
static int
id_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > REQUEST_ID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* Identifiers of other operations (models, vector stores, files...): what
 * the upstream issues, which may also hold '.' and ':' ("ft:gpt-4o:..."). */
static int
param_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > TARGET_PARAM_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.' || c == ':'))
			return 0;
	}
	return 1;
}

int
target_is_id(const char *name)
{
	return strcmp(name, "container_id") == 0 || strcmp(name, "file_id") == 0;
}

/* Splits an absolute path; -1 (with a message) when it has a form the
 * gateway will not forward. */
static int
split(const char *path, struct target *t)
{
	const char *p = path + 1, *slash;
	size_t n;

	t->nseg = 0;
	if (strchr(path, '%')) {
		t->why = "percent-encoded characters are not allowed in the path";
		return -1;
	}
	for (;;) {
		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0) {
			t->why = "the path has an empty segment (a doubled or trailing slash)";
			return -1;
		}
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			t->why = "the path has a dot segment";
			return -1;
		}
		if (t->nseg == TARGET_MAX_SEGMENTS) {
			t->why = "the path has too many segments";
			return -1;
		}
		t->seg[t->nseg] = p;
		t->len[t->nseg++] = n;
		if (slash == NULL)
			return 0;
		p = slash + 1;
	}
}

/* Whether the n bytes at p, percent-decoded ('+' as a space), are name in
 * any case, spaces around it aside. */
static int
decodes_to(const char *p, size_t n, const char *name)
{
	size_t i, k = 0, len = strlen(name);
	int c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%' && i + 2 < n && hex_digit(p[i + 1]) >= 0 &&
		           hex_digit(p[i + 2]) >= 0) {
			c = hex_digit(p[i + 1]) * 16 + hex_digit(p[i + 2]);
			i += 2;
		}
		if (c == ' ' && (k == 0 || k == len))
			continue;
		if (k == len || tolower(c) != tolower((unsigned char)name[k]))
			return 0;
		k++;
	}
	return k == len;
}

/*
 * Which twin of an operation the query asks for, when the spec tells them
 * apart by a query pair ("beta=true"): 1 when the query holds that pair
 * exactly once, 0 when it does not name the pair's parameter at all, and
 * -1 when it names it any other way: another value, another case, percent-
 * encoded, padded, twice, or in a parameter that ';' splits (some servers
 * read ';' as '&', others as part of the value). The query goes upstream
 * as it came, so a spelling the upstream could read as the pair while the
 * gateway does not (or the other way round) would put the request under
 * the other twin's route policy.
 */
static int
twin_query(const char *query, const char *pair)
{
	const char *eq = strchr(pair, '=');
	char name[32];
	size_t item, sub, n, off;
	int found = 0, names;

	if (query == NULL || eq == NULL || (size_t)(eq - pair) >= sizeof(name))
		return 0;
	snprintf(name, sizeof(name), "%.*s", (int)(eq - pair), pair);
	while (*query) {
		item = strcspn(query, "&");
		names = 0;
		for (off = 0; off < item; off += sub + 1) {
			sub = strcspn(query + off, "&;");
			n = strcspn(query + off, "&;=");
			names |= decodes_to(query + off, n < sub ? n : sub, name);
			if (off + sub >= item)
				break;
		}
		if (names) {
			if (found || item != strlen(pair) || strncmp(query, pair, item) != 0)
				return -1;
			found = 1;
		}
		query += item;
		if (*query)
			query++;
	}
	return found;
}

enum target_found
target_read(const char *method, const char *path, const char *query, struct target *t)
{
	const struct operation *twin;
	size_t i;
	int pick;

	memset(t, 0, sizeof(*t));
	/* A fragment is no part of a request target (RFC 9112 3.2), and the
	 * upstream would never see it: libcurl drops it, and with it whatever
	 * came after the '#' that the gateway read as the query. */
	if (strchr(path, '#') || (query && strchr(query, '#')))
		return TARGET_FRAGMENT;
	if (split(path, t) < 0)
		return TARGET_BAD_PATH;
	if (t->len[0] != 2 || memcmp(t->seg[0], "v1", 2) != 0)
		return TARGET_NOT_FOUND;
	switch (operations_match(method, t->seg + 1, t->len + 1, t->nseg - 1, &t->match)) {
	case OPERATIONS_NO_PATH:
		return TARGET_NOT_FOUND;
	case OPERATIONS_NO_METHOD:
		return TARGET_NO_METHOD;
	default:
		break;
	}
	t->op = t->match.op;
	/* "?beta=true" is an operation of its own, with its own name; a query
	 * that could be read as either is neither. */
	if ((twin = operation_variant(t->op)) != NULL && twin->query) {
		if ((pick = twin_query(query, twin->query)) < 0)
			return TARGET_BAD_QUERY;
		if (pick)
			t->op = twin;
	}
	for (i = 0; i < t->match.nparams; i++) {
		const struct operations_param *p = &t->match.params[i];

		if (target_is_id(p->name) ? !id_ok(p->value, p->len)
		                          : !param_ok(p->value, p->len)) {
			t->why = p->name;
			return TARGET_BAD_PARAM;
		}
	}
	return TARGET_FOUND;
}
