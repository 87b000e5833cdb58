#include "app/front.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "audit/audit.h"
#include "policy/check.h"
#include "app/config.h"
#include "policy/keys.h"
#include "policy/policy.h"
#include "app/proxy.h"
#include "http/query.h"
#include "app/reply.h"
#include "app/request.h"
#include "policy/schema.h"
#include "lib/secmem.h"
#include "server.h"
#include "app/tenancy.h"
#include "policy/tenant.h"
#include "http/tls.h"

#define MAX_SEGMENTS 8
#define BEARER_MAX   900

static const char *const orders[] = {"asc", "desc", NULL};

static const struct query_param list_containers_query[] = {
        {"limit", QUERY_INT, 1, 100},
        {"order", QUERY_ENUM, .enumv = orders},
        {"after", QUERY_ID},
        {"name", QUERY_STRING, .max = 256},
        {NULL},
};

static const struct query_param list_files_query[] = {
        {"limit", QUERY_INT, 1, 100},
        {"order", QUERY_ENUM, .enumv = orders},
        {"after", QUERY_ID},
        {NULL},
};

static const struct query_param no_query[] = {{NULL}};

struct route {
	const char *name;      /* as the policy's "routes" names it */
	const char *operation; /* the spec's operationId */
	const char *method;
	const char *pattern; /* segments; "{name}" is an identifier */
	enum front_body body;
	const struct query_param *query;
	void (*handle)(struct request *r);
	const struct schema *answer; /* a 2xx answer's schema, if checked by it */
	int list;
};

static const struct route routes[] = {
        {"containers.create", "CreateContainer", "POST", "/v1/containers", FRONT_BODY_JSON,
         no_query, proxy_create},
        {"containers.list", "ListContainers", "GET", "/v1/containers", FRONT_BODY_NONE,
         list_containers_query, proxy_forward, &schema_container_list_resource, 1},
        {"containers.retrieve", "RetrieveContainer", "GET", "/v1/containers/{container_id}",
         FRONT_BODY_NONE, no_query, proxy_forward, &schema_container_resource},
        {"containers.delete", "DeleteContainer", "DELETE", "/v1/containers/{container_id}",
         FRONT_BODY_NONE, no_query, proxy_forward},
        {"files.create", "CreateContainerFile", "POST", "/v1/containers/{container_id}/files",
         FRONT_BODY_UPLOAD, no_query, proxy_file_create, &schema_container_file_resource},
        {"files.list", "ListContainerFiles", "GET", "/v1/containers/{container_id}/files",
         FRONT_BODY_NONE, list_files_query, proxy_forward, &schema_container_file_list_resource, 1},
        {"files.retrieve", "RetrieveContainerFile", "GET",
         "/v1/containers/{container_id}/files/{file_id}", FRONT_BODY_NONE, no_query, proxy_forward,
         &schema_container_file_resource},
        {"files.delete", "DeleteContainerFile", "DELETE",
         "/v1/containers/{container_id}/files/{file_id}", FRONT_BODY_NONE, no_query, proxy_forward},
        {"files.content", "RetrieveContainerFileContent", "GET",
         "/v1/containers/{container_id}/files/{file_id}/content", FRONT_BODY_NONE, no_query,
         proxy_download},
        {NULL},
};

/* Paths under /v1 that no route knows, when the config lets them through:
 * forwarded as they came, answers relayed unchecked, still audited. */
static const struct route passthrough = {
        "passthrough", "Passthrough", "*", "/v1/*", FRONT_BODY_JSON, no_query, proxy_passthrough};

const char *
front_operation(const struct request *r)
{
	return r->route ? r->route->operation : NULL;
}

const char *
front_route_name(const struct request *r)
{
	return r->route ? r->route->name : NULL;
}

void
front_expect(const struct request *r, struct check_expect *x)
{
	const struct route *rt = r->route;
	int is_file = strncmp(rt->name, "files.", 6) == 0;

	memset(x, 0, sizeof(*x));
	x->schema = rt->answer;
	x->list = rt->list;
	/* A retrieve or delete answers about the very object in the path. */
	if (strcmp(rt->method, "GET") == 0 || strcmp(rt->method, "DELETE") == 0)
		if (!rt->list)
			x->id = is_file ? r->file_id : r->container_id;
	/* A file, or a list of files, names the container it belongs to. */
	if (is_file)
		x->container_id = r->container_id;
}

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
			int is_file = strncmp(pat.s[i], "{file_id}", 9) == 0;
			char *dst = is_file ? r->file_id : r->container_id;

			if (!id_ok(seg->s[i], seg->len[i])) {
				*bad = is_file ? "file_id" : "container_id";
				continue;
			}
			memcpy(dst, seg->s[i], seg->len[i]);
			dst[seg->len[i]] = '\0';
		} else if (pat.len[i] != seg->len[i] ||
		           memcmp(pat.s[i], seg->s[i], pat.len[i]) != 0) {
			return 0;
		}
	}
	return 1;
}

/* The upstream's path: the route's pattern below /v1 with the checked
 * identifiers, and the rebuilt query. */
static int
upstream_path(struct request *r, const char *query, char *buf, size_t n)
{
	char *o = buf, *end = buf + n;
	const char *p = r->route->pattern + 3; /* past "/v1" */
	int k;

	while (*p && o < end - 1) {
		if (*p == '{') {
			const char *id =
			        strncmp(p, "{file_id}", 9) == 0 ? r->file_id : r->container_id;

			k = snprintf(o, (size_t)(end - o), "%s", id);
			o += k > 0 ? k : 0;
			p = strchr(p, '}') + 1;
		} else {
			*o++ = *p++;
		}
	}
	if (o >= end - 1)
		return -1;
	*o = '\0';
	if (*query && snprintf(o, (size_t)(end - o), "?%s", query) >= end - o)
		return -1;
	return 0;
}

/* Keeps path as r's upstream path; answers the client when it cannot. */
static int
keep_upstream_path(struct request *r, const char *path)
{
	free(r->upstream_path);
	r->upstream_path = strdup(path);
	if (r->upstream_path != NULL)
		return 0;
	reply_error(r, 503, ERR_INTERNAL, NULL, "out_of_memory",
	            "the gateway is out of memory; try again shortly");
	return -1;
}

/* Refuses the request's credentials with 401. */
static int
unauthorized(struct request *r, const char *code, const char *message)
{
	reply_error(r, 401, ERR_INVALID, NULL, code, message);
	return -1;
}

/*
 * Who is asking: the tenant whose key digest matches the bearer key, or
 * whose client_cert_subjects name the verified client certificate, or
 * none (the organization's policy applies). The key is read as HTTP
 * defines a Bearer credential, whatever its spelling, and only that token
 * is ever forwarded (see proxy.c); credentials that could be read two
 * ways are refused. In gateway_keys mode a key is required and must be a
 * tenant's; the upstream then gets the organization's own key instead.
 */
static int
authenticate(struct request *r)
{
	const struct policy *org = server_snapshot_policy(r->snap);
	int gateway_keys = strcmp(server_snapshot_config(r->snap)->auth_mode, "gateway_keys") == 0;
	const struct tenant *by_key = NULL, *by_cert = NULL;
	char hex[KEYS_HEX_LEN + 1];
	const char *h;
	size_t len;

	r->tenant = NULL;
	if (httpmsg_header_count(&r->head, "Authorization") > 1)
		return unauthorized(r, "ambiguous_credentials",
		                    "the request has more than one Authorization header; send "
		                    "exactly one: Authorization: Bearer <key>");
	h = httpmsg_header(&r->head, "Authorization", &len);
	if (h && keys_bearer(h, len, &r->bearer, &r->bearer_len) < 0)
		return unauthorized(r, "invalid_api_key",
		                    "the Authorization header must be \"Bearer <key>\": the word "
		                    "Bearer, a space, then the key");
	/* Longer than any key the upstream issues, and than the line that
	 * would carry it upstream. */
	if (r->bearer && r->bearer_len > BEARER_MAX)
		return unauthorized(
		        r, "invalid_api_key",
		        "the key in the Authorization header is longer than any API key "
		        "(at most 900 characters)");
	if (r->bearer) {
		keys_hash_hex(r->bearer, r->bearer_len, hex);
		by_key = tenants_by_key_digest(policy_tenants(org), hex);
		secmem_wipe(hex, sizeof(hex));
	}
	/* A service may authenticate by its verified client certificate. */
	if (r->client_cert) {
		const char *const *sans;
		size_t nsans;

		sans = tls_peer_sans(r->client_cert, &nsans);
		by_cert = tenants_by_cert(policy_tenants(org), tls_peer_subject(r->client_cert),
		                          sans, nsans);
	}
	if (by_key && by_cert && by_key != by_cert)
		return unauthorized(r, "ambiguous_credentials",
		                    "the API key and the client certificate belong to different "
		                    "tenants; send the credentials of one");
	r->tenant = by_key ? by_key : by_cert;
	if (gateway_keys && r->tenant == NULL)
		return unauthorized(r, h ? "invalid_api_key" : "missing_api_key",
		                    h ? "the API key is not one this gateway knows; use the key "
		                        "your organization issued for this gateway"
		                      : "send Authorization: Bearer <key>, with the key your "
		                        "organization issued for this gateway");
	r->policy = r->tenant ? tenant_policy(r->tenant) : org;
	return 0;
}

/* How a file upload's body is read: JSON naming a file, or a multipart
 * upload streamed through. */
static int
upload_body(struct request *r)
{
	size_t len;
	const char *ct = httpmsg_header(&r->head, "Content-Type", &len);

	if (ct && len >= 16 && strncasecmp(ct, "application/json", 16) == 0 &&
	    (len == 16 || ct[16] == ';' || ct[16] == ' '))
		return FRONT_BODY_JSON;
	if (ct && len >= 19 && strncasecmp(ct, "multipart/form-data", 19) == 0)
		return FRONT_BODY_STREAM;
	reply_error(r, 415, ERR_INVALID, NULL, "unsupported_media_type",
	            "POST /v1/containers/{container_id}/files takes multipart/form-data with a "
	            "\"file\" part, or JSON with a \"file_id\"");
	return -1;
}

int
front_route(struct request *r)
{
	const struct route *rt, *path_match = NULL;
	struct segments seg;
	const char *why, *bad = NULL;
	char allowed[64] = "", msg[400], query[1024], up[REQUEST_PATH_MAX];
	size_t o = 0;
	struct err e;

	/* fail_closed: what cannot be recorded is not done. */
	if (!audit_available(server_audit(r->srv))) {
		reply_error(r, 503, ERR_INTERNAL, NULL, "audit_unavailable",
		            "the gateway cannot write its audit log, so it takes no requests; try "
		            "again shortly");
		return -1;
	}
	if (split(r->path, &seg, &why) < 0) {
		snprintf(msg, sizeof(msg), "%s; send the path exactly as documented", why);
		reply_error(r, 400, ERR_INVALID, NULL, "invalid_path", msg);
		return -1;
	}
	for (rt = routes; rt->name; rt++) {
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
	if (path_match == NULL && server_snapshot_config(r->snap)->passthrough_unknown &&
	    strncmp(r->path, "/v1/", 4) == 0) {
		r->route = &passthrough;
		/* Unchecked, but never unauthenticated. */
		if (authenticate(r) < 0)
			return -1;
		if (snprintf(up, sizeof(up), "%s%s%s", r->path + 3, r->query ? "?" : "",
		             r->query ? r->query : "") >= (int)sizeof(up)) {
			reply_error(r, 414, ERR_INVALID, NULL, "uri_too_long",
			            "the request path is too long");
			return -1;
		}
		return keep_upstream_path(r, up) < 0 ? -1 : FRONT_BODY_JSON;
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
		         "%s in the path must be 1 to %d letters, digits, '_' or '-'", bad,
		         REQUEST_ID_MAX);
		reply_error(r, 400, ERR_INVALID, bad, "invalid_path_parameter", msg);
		return -1;
	}
	if (authenticate(r) < 0)
		return -1;
	switch (policy_route(r->policy, path_match->name)) {
	case POLICY_ROUTE_ALLOW:
		break;
	case POLICY_ROUTE_SHADOW_DENY:
		err_set(&r->shadow, 403, ERR_POLICY, "route_denied", NULL,
		        "%s would be denied by the policy's routes", path_match->name);
		break;
	default:
		snprintf(msg, sizeof(msg),
		         "%s (%s %s) is not allowed by this organization's policy",
		         path_match->name, path_match->method, path_match->pattern);
		reply_error(r, 403, ERR_POLICY, NULL, "route_denied", msg);
		return -1;
	}
	err_clear(&e);
	if (query_check(r->query, path_match->query, query, sizeof(query), &e) < 0) {
		reply_err(r, &e);
		return -1;
	}
	if (upstream_path(r, query, up, sizeof(up)) < 0) {
		reply_error(r, 414, ERR_INVALID, NULL, "uri_too_long",
		            "the request path is too long");
		return -1;
	}
	if (keep_upstream_path(r, up) < 0)
		return -1;
	if (path_match->body == FRONT_BODY_UPLOAD)
		return upload_body(r);
	return (int)path_match->body;
}

/* Once the tenant's limits and ownership have passed. A streamed body that
 * failed meanwhile is answered now. */
static void
handle(struct request *r)
{
	r->on_event = NULL;
	if (r->stream_error.status) {
		reply_err(r, &r->stream_error);
		return;
	}
	r->route->handle(r);
}

/* Body events while the store is asked: a failure is kept in
 * stream_error (by conn.c) and answered by handle. */
static void
while_admitting(struct request *r, int event)
{
	(void)r;
	(void)event;
}

void
front_dispatch(struct request *r)
{
	if (r->stream_in)
		r->on_event = while_admitting;
	tenancy_admit(r, handle);
}
