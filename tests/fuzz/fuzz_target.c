/*
 * libFuzzer target: request targets as the front end reads them
 * (app/target.c, over policy/operations.c), from the request line on.
 *
 * The input is "METHOD TARGET" (without a space: GET, and the input is
 * the target). It goes in as a request line through httpmsg_parse, is cut
 * at its first '?' as conn.c cuts it, and is read by target_read; the
 * bytes are also read by target_read as they are, without the request
 * line's rules, which it must survive too. Beyond memory errors it aborts
 * when
 *  - a found operation's method is not the one given, or its path
 *    template, with the parameters found put in, is not the path below
 *    /v1 byte for byte, or the parameters are not the template's, in order;
 *  - a parameter found is empty, longer than its bound, or holds a byte
 *    outside its alphabet;
 *  - anything is found, or refused for its method, query or parameters,
 *    while the path has a '%', a '#', an empty or dot segment, or more
 *    segments than any operation's, or does not start with /v1;
 *  - the ?beta=true twin is chosen without its pair in the query exactly
 *    once, or not chosen with it there;
 *  - a 405 lists no method, or lists the one given;
 *  - the same target read again gives another answer.
 * What this reads is restated here without target.c's code.
 *
 *   make fuzz FUZZ_TARGETS=target
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/request.h"
#include "app/target.h"
#include "http/httpmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
die(const char *what, const char *method, const char *path, const char *query)
{
	fprintf(stderr, "fuzz_target: %s: %s %s%s%s\n", what, method, path, query ? "?" : "",
	        query ? query : "");
	abort();
}

/* Whether the path is one the front end may look up: no '%' or '#', no
 * empty or dot segment, "v1" first and at most TARGET_MAX_SEGMENTS. */
static int
clean(const char *path, const char *query)
{
	const char *p = path + 1, *end;
	size_t n, nseg = 0;

	if (strchr(path, '%') || strchr(path, '#') || (query && strchr(query, '#')))
		return 0;
	for (;;) {
		end = strchr(p, '/');
		n = end ? (size_t)(end - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (++nseg > TARGET_MAX_SEGMENTS)
			return 0;
		if (nseg == 1 && (n != 2 || memcmp(p, "v1", 2) != 0))
			return 0;
		if (end == NULL)
			return 1;
		p = end + 1;
	}
}

/* How many of the query's '&'-separated items are pair exactly. */
static int
pair_count(const char *query, const char *pair)
{
	size_t item, len = strlen(pair);
	int k = 0;

	while (query && *query) {
		item = strcspn(query, "&");
		k += item == len && memcmp(query, pair, len) == 0;
		query += item;
		if (*query)
			query++;
	}
	return k;
}

static void
check_param(const struct operations_param *p, const char *method, const char *path,
            const char *query)
{
	int id = strcmp(p->name, "container_id") == 0 || strcmp(p->name, "file_id") == 0;
	size_t i, max = id ? REQUEST_ID_MAX : TARGET_PARAM_MAX;

	if (p->len == 0 || p->len > max)
		die("a parameter of the wrong length", method, path, query);
	if (p->value < path || p->value + p->len > path + strlen(path))
		die("a parameter outside the path", method, path, query);
	for (i = 0; i < p->len; i++) {
		char c = p->value[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || (!id && (c == '.' || c == ':'))))
			die("a parameter with a byte outside its alphabet", method, path, query);
	}
}

/* The path the operation's template makes with m's parameters put in:
 * it must be the path read, below /v1. */
static void
check_template(const struct operation *op, const struct operations_match *m, const char *method,
               const char *path, const char *query)
{
	const char *s = op->path, *close;
	size_t k = 0, o = 0, len = strlen(path);

	if (len < 3 || memcmp(path, "/v1", 3) != 0)
		die("found under another root", method, path, query);
	o = 3;
	while (*s) {
		if (*s == '{') {
			close = strchr(s, '}');
			if (close == NULL || k >= m->nparams ||
			    strlen(m->params[k].name) != (size_t)(close - s - 1) ||
			    memcmp(m->params[k].name, s + 1, (size_t)(close - s - 1)) != 0)
				die("parameters not the template's", method, path, query);
			if (m->params[k].value != path + o || o + m->params[k].len > len)
				die("a parameter that is not its segment", method, path, query);
			o += m->params[k++].len;
			s = close + 1;
			continue;
		}
		if (o >= len || path[o] != *s)
			die("the template is not the path", method, path, query);
		o++;
		s++;
	}
	if (o != len || k != m->nparams || k != op->nparams)
		die("the template is not the path", method, path, query);
}

static void
check(const char *method, const char *path, const char *query)
{
	struct target t, again;
	enum target_found f = target_read(method, path, query, &t);
	const struct operation *twin;
	int m, ok = clean(path, query);
	size_t i;

	if (target_read(method, path, query, &again) != f || again.op != t.op ||
	    again.match.nparams != t.match.nparams)
		die("another answer the second time", method, path, query);
	switch (f) {
	case TARGET_FRAGMENT:
		if (!strchr(path, '#') && !(query && strchr(query, '#')))
			die("a fragment without a '#'", method, path, query);
		return;
	case TARGET_BAD_PATH:
		if (ok)
			die("a clean path refused", method, path, query);
		return;
	case TARGET_NOT_FOUND:
		return;
	case TARGET_NO_METHOD:
		if (!ok || t.match.allowed == 0)
			die("a 405 for an unclean path or with no method", method, path, query);
		for (m = 0; m < OPERATION_METHODS; m++)
			if ((t.match.allowed & (1u << m)) &&
			    strcmp(operation_method_name((enum operation_method)m), method) == 0)
				die("a 405 that lists the method given", method, path, query);
		return;
	case TARGET_BAD_QUERY:
		twin = operation_variant(t.op);
		if (!ok || twin == NULL || twin->query == NULL || t.op->query != NULL)
			die("a query refused where no twin is told apart by it", method, path,
			    query);
		return;
	case TARGET_BAD_PARAM:
		if (!ok || t.op == NULL || t.why == NULL)
			die("a parameter refused on an unclean path", method, path, query);
		return;
	case TARGET_FOUND:
		break;
	default:
		die("an answer target.h does not name", method, path, query);
	}
	if (!ok || t.op == NULL)
		die("found on an unclean path", method, path, query);
	if (strcmp(operation_method_name(t.op->method), method) != 0)
		die("found under another method", method, path, query);
	if (t.match.nparams != t.op->nparams || t.match.nparams > OPERATION_MAX_PARAMS)
		die("as many parameters as the operation has", method, path, query);
	for (i = 0; i < t.match.nparams; i++)
		check_param(&t.match.params[i], method, path, query);
	check_template(t.op, &t.match, method, path, query);
	twin = operation_variant(t.op);
	if (t.op->query && pair_count(query, t.op->query) != 1)
		die("the twin chosen without its pair once", method, path, query);
	if (!t.op->query && twin && twin->query && pair_count(query, twin->query) != 0)
		die("the twin not chosen with its pair there", method, path, query);
}

/* target cut at its first '?', as conn.c cuts it; path must start with
 * '/', as the request line's rules make it. */
static void
check_target(const char *method, const char *target, size_t len)
{
	char *path = malloc(len + 1);
	const char *q = memchr(target, '?', len);
	char *query = NULL;
	size_t plen = q ? (size_t)(q - target) : len;

	if (path == NULL)
		abort();
	memcpy(path, target, plen);
	path[plen] = '\0';
	if (q) {
		query = strndup(q + 1, len - plen - 1);
		if (query == NULL)
			abort();
	}
	if (path[0] == '/')
		check(method, path, query);
	free(path);
	free(query);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *sp = memchr(data, ' ', size);
	size_t mlen = sp ? (size_t)(sp - (const char *)data) : 0;
	size_t tlen = sp ? size - mlen - 1 : size;
	const char *tgt = sp ? sp + 1 : (const char *)data;
	char method[32], *line, *raw;
	struct httpmsg_header slots[HTTPMSG_MAX_HEADERS];
	struct httpmsg_head h;
	struct err e;
	int n;

	snprintf(method, sizeof(method), "%.*s", (int)(mlen && mlen < sizeof(method) ? mlen : 0),
	         (const char *)data);
	if (!mlen || mlen >= sizeof(method))
		snprintf(method, sizeof(method), "GET");
	/* As a request line, then as the front end gets it. */
	n = snprintf(NULL, 0, "%s %.*s HTTP/1.1\r\nHost: f\r\n\r\n", method, (int)tlen, tgt);
	line = malloc((size_t)n + 1);
	if (line == NULL)
		abort();
	snprintf(line, (size_t)n + 1, "%s %.*s HTTP/1.1\r\nHost: f\r\n\r\n", method, (int)tlen,
	         tgt);
	err_clear(&e);
	if (memchr(tgt, '\0', tlen) == NULL &&
	    httpmsg_parse(line, (size_t)n, (size_t)n + 1, &h, slots, &e) == n) {
		char m[16]; /* conn.c keeps a method in as many bytes */

		snprintf(m, sizeof(m), "%.*s", (int)h.method_len, h.method);
		check_target(m, h.target, h.target_len);
	}
	free(line);
	/* The bytes as they are, up to a NUL. */
	raw = strndup(tgt, tlen);
	if (raw == NULL)
		abort();
	check_target(method, raw, strlen(raw));
	free(raw);
	return 0;
}
