#include "front.h"

#include <stdio.h>
#include <string.h>

#include "proxy.h"
#include "reply.h"
#include "request.h"

#define MAX_SEGMENTS 8
#define ID_MAX       128

struct route {
	const char *operation; /* the spec's operationId */
	const char *method;
	const char *pattern; /* segments; "{name}" is an identifier */
	enum front_body body;
	void (*handle)(struct request *r);
};

static const struct route routes[] = {
        {"CreateContainer", "POST", "/v1/containers", FRONT_BODY_JSON, proxy_create},
        {NULL},
};

const char *
front_operation(const struct request *r)
{
	return r->route ? r->route->operation : NULL;
}

/* Identifiers are what the upstream issues: letters, digits, '_' and '-'.
 * Anything else could be read differently on the way upstream. */
static int
id_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > ID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

struct segments {
	size_t n;
	const char *s[MAX_SEGMENTS];
	size_t len[MAX_SEGMENTS];
};

/* Splits an absolute path; -1 (with a message) when it has a form the
 * gateway will not forward. */
static int
split(const char *path, struct segments *seg, const char **why)
{
	const char *p = path + 1, *slash;
	size_t n;

	seg->n = 0;
	if (strchr(path, '%')) {
		*why = "percent-encoded characters are not allowed in the path";
		return -1;
	}
	for (;;) {
		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0) {
			*why = "the path has an empty segment (a doubled or trailing slash)";
			return -1;
		}
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			*why = "the path has a dot segment";
			return -1;
		}
		if (seg->n == MAX_SEGMENTS) {
			*why = "the path has too many segments";
			return -1;
		}
		seg->s[seg->n] = p;
		seg->len[seg->n++] = n;
		if (slash == NULL)
			return 0;
		p = slash + 1;
	}
}

/* Whether seg fits pattern; identifiers are captured into r. *bad names
 * the identifier that had the right place but not the right form. */
static int
match(const char *pattern, const struct segments *seg, struct request *r, const char **bad)
{
	struct segments pat;
	const char *why;
	size_t i;

	if (split(pattern, &pat, &why) < 0 || pat.n != seg->n)
		return 0;
	*bad = NULL;
	for (i = 0; i < pat.n; i++) {
		if (pat.s[i][0] == '{') {
			char *dst = strncmp(pat.s[i], "{file_id}", 9) == 0 ? r->file_id
			                                                   : r->container_id;
			if (!id_ok(seg->s[i], seg->len[i])) {
				*bad = strncmp(pat.s[i], "{file_id}", 9) == 0 ? "file_id"
				                                              : "container_id";
				continue;
			}
			snprintf(dst, ID_MAX + 1, "%.*s", (int)seg->len[i], seg->s[i]);
		} else if (pat.len[i] != seg->len[i] ||
		           memcmp(pat.s[i], seg->s[i], pat.len[i]) != 0) {
			return 0;
		}
	}
	return 1;
}

int
front_route(struct request *r)
{
	const struct route *rt, *path_match = NULL;
	struct segments seg;
	const char *why, *bad = NULL;
	char allowed[64] = "", msg[300];
	size_t o = 0;

	if (split(r->path, &seg, &why) < 0) {
		snprintf(msg, sizeof(msg), "%s; send the path exactly as documented", why);
		reply_error(r, 400, ERR_INVALID, NULL, "invalid_path", msg);
		return -1;
	}
	for (rt = routes; rt->operation; rt++) {
		if (!match(rt->pattern, &seg, r, &bad))
			continue;
		if (strcmp(rt->method, r->method) == 0) {
			path_match = rt;
			break;
		}
		if (path_match == NULL)
			path_match = rt;
		o += (size_t)snprintf(allowed + o, sizeof(allowed) - o, "%s%s", o ? ", " : "",
		                      rt->method);
	}
	if (path_match == NULL) {
		snprintf(msg, sizeof(msg), "no such route: %s %s", r->method, r->path);
		reply_error(r, 404, ERR_INVALID, NULL, "not_found", msg);
		return -1;
	}
	if (strcmp(path_match->method, r->method) != 0) {
		snprintf(msg, sizeof(msg), "%s is not allowed on %s; allowed: %s", r->method,
		         r->path, allowed);
		reply_error(r, 405, ERR_INVALID, NULL, "method_not_allowed", msg);
		return -1;
	}
	r->route = path_match;
	if (bad) {
		snprintf(msg, sizeof(msg),
		         "%s in the path must be 1 to %d letters, digits, '_' or '-'", bad, ID_MAX);
		reply_error(r, 400, ERR_INVALID, bad, "invalid_path_parameter", msg);
		return -1;
	}
	if (r->query && path_match->body != FRONT_BODY_NONE) {
		snprintf(msg, sizeof(msg), "%s %s takes no query parameters", r->method, r->path);
		reply_error(r, 400, ERR_INVALID, NULL, "unknown_parameter", msg);
		return -1;
	}
	return (int)path_match->body;
}

void
front_dispatch(struct request *r)
{
	r->route->handle(r);
}
