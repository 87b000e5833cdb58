#include "app/front.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "app/call.h"
#include "app/config.h"
#include "app/context.h"
#include "app/batches.h"
#include "app/create.h"
#include "app/forward.h"
#include "app/jwks.h"
#include "app/pipeline.h"
#include "app/request.h"
#include "app/responses.h"
#include "app/snapshot.h"
#include "app/target.h"
#include "app/transfer.h"
#include "audit/audit.h"
#include "http/conn.h"
#include "http/query.h"
#include "http/tls.h"
#include "lib/secmem.h"
#include "lib/text.h"
#include "policy/check.h"
#include "policy/jwt.h"
#include "policy/keys.h"
#include "policy/operations.h"
#include "policy/policy.h"
#include "policy/policyset.h"
#include "policy/schema.h"
#include "policy/tenant.h"

#define BEARER_MAX 900
/* How much of a key's SHA-256 hex the record keeps: enough to tell a
 * tenant's keys apart, too little to be worth guessing at. */
#define CREDENTIAL_HEX 16

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

/* How a route's body is read. */
enum front_body {
	FRONT_BODY_NONE,   /* the operation takes no body */
	FRONT_BODY_JSON,   /* buffered whole, up to limits.max_body_bytes */
	FRONT_BODY_UPLOAD, /* JSON, or multipart streamed through, by Content-Type */
	FRONT_BODY_SPOOL,  /* JSON; a large one read as it arrives (create.c spools it) */
};

/* A body up to this size (with its length given) is buffered whole: the
 * cheapest way for the ordinary create. */
#define SPOOL_FROM (1024 * 1024)

struct route {
	const char *name;      /* as the policy's "routes" names it */
	const char *operation; /* the spec's operationId */
	const char *method;
	const char *pattern; /* segments; "{name}" is an identifier */
	enum front_body body;
	const struct query_param *query;
	const struct step *steps;
	const struct schema *answer; /* a 2xx answer's schema, if checked by it */
	int list;
};

static const struct route routes[] = {
        {"containers.create", "CreateContainer", "POST", "/v1/containers", FRONT_BODY_SPOOL,
         no_query, create_steps},
        {"containers.list", "ListContainers", "GET", "/v1/containers", FRONT_BODY_NONE,
         list_containers_query, forward_list_steps, &schema_container_list_resource, 1},
        {"containers.retrieve", "RetrieveContainer", "GET", "/v1/containers/{container_id}",
         FRONT_BODY_NONE, no_query, forward_steps, &schema_container_resource},
        {"containers.delete", "DeleteContainer", "DELETE", "/v1/containers/{container_id}",
         FRONT_BODY_NONE, no_query, forward_delete_steps},
        {"files.create", "CreateContainerFile", "POST", "/v1/containers/{container_id}/files",
         FRONT_BODY_UPLOAD, no_query, forward_file_steps, &schema_container_file_resource},
        {"files.list", "ListContainerFiles", "GET", "/v1/containers/{container_id}/files",
         FRONT_BODY_NONE, list_files_query, forward_steps, &schema_container_file_list_resource, 1},
        {"files.retrieve", "RetrieveContainerFile", "GET",
         "/v1/containers/{container_id}/files/{file_id}", FRONT_BODY_NONE, no_query, forward_steps,
         &schema_container_file_resource},
        {"files.delete", "DeleteContainerFile", "DELETE",
         "/v1/containers/{container_id}/files/{file_id}", FRONT_BODY_NONE, no_query, forward_steps},
        {"files.content", "RetrieveContainerFileContent", "GET",
         "/v1/containers/{container_id}/files/{file_id}/content", FRONT_BODY_NONE, no_query,
         transfer_download_steps},
        /* Where containers are made implicitly. A NULL query: the
         * operation's query goes upstream as it came. */
        {NULL, "createResponse", "POST", "/v1/responses", FRONT_BODY_JSON, NULL, responses_steps},
        {NULL, "beta_createResponse", "POST", "/v1/responses", FRONT_BODY_JSON, NULL,
         responses_steps},
        {NULL, "Compactconversation", "POST", "/v1/responses/compact", FRONT_BODY_JSON, NULL,
         responses_steps},
        {NULL, "beta_Compactconversation", "POST", "/v1/responses/compact", FRONT_BODY_JSON, NULL,
         responses_steps},
        {NULL, "createBatch", "POST", "/v1/batches", FRONT_BODY_JSON, NULL, batches_steps},
        {NULL, NULL},
};

/* Every other operation of the API: relayed as it came (transfer.c). */
static const struct route relayed = {
        NULL, NULL, NULL, NULL, FRONT_BODY_UPLOAD, NULL, transfer_relay_steps};

/* routes[] by the index of their operation in operations[] (operations.h),
 * made once. */
static const struct route *by_operation[OPERATIONS_MAX];
static pthread_once_t by_operation_once = PTHREAD_ONCE_INIT;

static void
index_routes(void)
{
	const struct operation *op;
	const struct route *rt;

	for (rt = routes; rt->operation; rt++)
		if ((op = operations_by_id(rt->operation)) != NULL)
			by_operation[op->index] = rt;
}

/* The gateway's own pipeline for op, or NULL when op is relayed. */
static const struct route *
own_route(const struct operation *op)
{
	pthread_once(&by_operation_once, index_routes);
	return by_operation[op->index];
}

/* What a 2xx answer to the route must be. */
static void
expect(struct request *r, const struct route *rt)
{
	struct check_expect *x = &r->expect;
	int is_file = rt->name && strncmp(rt->name, "files.", 6) == 0;

	memset(x, 0, sizeof(*x));
	if (rt->name == NULL)
		return; /* relayed: not checked */
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

/* The request is on rt, the gateway's route for op, from now on. */
static void
set_route(struct request *r, const struct route *rt, const struct operation *op)
{
	r->route = rt;
	r->spec = op;
	r->operation = op->id;
	r->route_name = rt->name ? rt->name : op->id;
	r->steps = rt->steps;
	expect(r, rt);
}

/* Keeps the path's container and file ids in r, as the gateway's own
 * routes read them; target_read has checked them. */
static void
take_ids(struct request *r, const struct operations_match *m)
{
	size_t i;

	for (i = 0; i < m->nparams; i++) {
		const struct operations_param *p = &m->params[i];
		char *dst = strcmp(p->name, "container_id") == 0 ? r->container_id
		            : strcmp(p->name, "file_id") == 0    ? r->file_id
		                                                 : NULL;

		if (dst) {
			memcpy(dst, p->value, p->len);
			dst[p->len] = '\0';
		}
	}
}

/* The upstream's path: the request's own below /v1 (checked segment by
 * segment), and the query: rebuilt from checked values for the gateway's
 * own routes, as it came for the others. */
static int
upstream_path(const struct target *t, const char *query, char *buf, size_t n)
{
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 1; i < t->nseg; i++) {
		if (o + 1 + t->len[i] >= n)
			return -1;
		buf[o++] = '/';
		text_copyn(buf + o, n - o, t->seg[i], t->len[i]);
		o += t->len[i];
	}
	if (query && *query && text_join(buf + o, n - o, "?", query) >= n - o)
		return -1;
	return 0;
}

/* Refuses the request before its pipeline starts: the driver answers. */
static int refuse(struct request *r, int status, const char *type, const char *code,
                  const char *param, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int
refuse(struct request *r, int status, const char *type, const char *code, const char *param,
       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(&r->error, status, type, code, param, fmt, ap);
	va_end(ap);
	pipeline_fail(r, &r->error);
	return -1;
}

/* Keeps path as r's upstream path. */
static int
keep_upstream_path(struct request *r, const char *path)
{
	free(r->upstream_path);
	r->upstream_path = strdup(path);
	if (r->upstream_path != NULL)
		return 0;
	return refuse(r, 503, ERR_INTERNAL, "out_of_memory", NULL,
	              "the gateway is out of memory; try again shortly");
}

/* Refuses the request's credentials with 401. */
static int
unauthorized(struct request *r, const char *code, const char *message)
{
	return refuse(r, 401, ERR_INVALID, code, NULL, "%s", message);
}

/*
 * A bearer that is a token (auth.jwt): verified with the identity
 * provider's keys in force, its person kept for the record, and its
 * groups naming the tenant in *tenant. A token naming no tenant, or more
 * than one, is refused in either auth.mode: the organization's key goes
 * upstream for it, so someone must have said whose policy it is under.
 */
static int
authenticate_token(struct request *r, const struct tenants *ts, const struct tenant **tenant)
{
	struct jwks_set *set = jwks_get(r->ctx->jwks);
	struct jwt_identity id;
	struct jwt_rules rules;
	char hex[KEYS_HEX_LEN + 1];
	int n, rc;

	/* Until it verifies, a token is known by its digest, as a key is. */
	keys_hash_hex(r->bearer, r->bearer_len, hex);
	snprintf(r->credential, sizeof(r->credential), "jwt:sha256:%.*s", CREDENTIAL_HEX, hex);
	secmem_wipe(hex, sizeof(hex));
	if (set == NULL)
		return refuse(r, 503, ERR_INTERNAL, "jwks_unavailable", NULL,
		              "the gateway has not loaded the identity provider's keys yet, so it "
		              "cannot verify tokens; try again shortly");
	config_jwt_rules(r->cfg, &rules);
	err_clear(&r->error);
	rc = jwt_verify(jwks_set_keys(set), &rules, r->bearer, r->bearer_len, (long long)time(NULL),
	                &id, &r->error);
	jwks_set_release(set);
	if (rc < 0) {
		/* The provider may have published the key since the set was
		 * fetched; this request is refused, a later one may pass. */
		if (strcmp(r->error.code, JWT_UNKNOWN_KEY) == 0)
			jwks_want_refresh(r->ctx->jwks);
		pipeline_fail(r, &r->error);
		return -1;
	}
	snprintf(r->credential, sizeof(r->credential), "jwt:%s#%s", r->cfg->jwt_issuer, id.kid);
	r->person = id.person;
	id.person = NULL;
	r->token = 1;
	/* Nothing of the token goes any further. */
	r->bearer = NULL;
	r->bearer_len = 0;
	n = tenants_by_groups(ts, id.groups, tenant);
	jwt_identity_clear(&id);
	if (n > 1)
		return unauthorized(r, "ambiguous_credentials",
		                    "the token's groups belong to more than one tenant; ask for a "
		                    "token with the groups of one");
	if (n == 0)
		return unauthorized(
		        r, "token_no_tenant",
		        "none of the token's groups is a tenant's (oidc_groups), so no "
		        "policy applies to it; ask your administrator to add your group");
	return 0;
}

/*
 * Who is asking: the tenant whose key digest matches the bearer key,
 * whose oidc_groups hold a verified token's group (auth.jwt), or whose
 * client_cert_subjects name the verified client certificate, or none (the
 * organization's policy applies). The bearer is read as HTTP defines it,
 * whatever its spelling; a key is the only one ever forwarded (call.c),
 * never a token. Credentials that could be read two ways are refused. In
 * gateway_keys mode a tenant is required; the upstream then gets the
 * organization's own key instead, as it does for every token.
 */
static int
authenticate(struct request *r)
{
	const struct policyset *ps = snapshot_policies(r->snap);
	const struct conn_req *http = r->http;
	int gateway_keys = strcmp(r->cfg->auth_mode, "gateway_keys") == 0, token;
	const struct tenant *by_key = NULL, *by_cert = NULL;
	char hex[KEYS_HEX_LEN + 1];
	const char *h;
	size_t len;

	r->tenant = NULL;
	if (httpmsg_header_count(&http->head, "Authorization") > 1)
		return unauthorized(r, "ambiguous_credentials",
		                    "the request has more than one Authorization header; send "
		                    "exactly one: Authorization: Bearer <key>");
	if (httpmsg_header_count(&http->head, "OpenAI-Organization") > 1 ||
	    httpmsg_header_count(&http->head, "OpenAI-Project") > 1)
		return refuse(r, 400, ERR_INVALID, "duplicate_header", NULL,
		              "send OpenAI-Organization and OpenAI-Project at most once each");
	h = httpmsg_header(&http->head, "Authorization", &len);
	if (h && keys_bearer(h, len, &r->bearer, &r->bearer_len) < 0)
		return unauthorized(r, "invalid_api_key",
		                    "the Authorization header must be \"Bearer <key>\": the word "
		                    "Bearer, a space, then the key");
	/* A token has a shape no API key has: three base64url parts. */
	token = r->cfg->jwt && r->bearer && jwt_shape(r->bearer, r->bearer_len);
	/* Longer than any key the upstream issues, and than the line that
	 * would carry it upstream. */
	if (r->bearer && !token && r->bearer_len > BEARER_MAX)
		return unauthorized(
		        r, "invalid_api_key",
		        "the key in the Authorization header is longer than any API key "
		        "(at most 900 characters)");
	if (token && authenticate_token(r, policyset_tenants(ps), &by_key) < 0)
		return -1;
	if (r->bearer && !token) {
		size_t o;

		keys_hash_hex(r->bearer, r->bearer_len, hex);
		by_key = tenants_by_key_digest(policyset_tenants(ps), hex);
		o = text_copy(r->credential, sizeof(r->credential), "key:sha256:");
		text_copyn(r->credential + o, sizeof(r->credential) - o, hex, CREDENTIAL_HEX);
		secmem_wipe(hex, sizeof(hex));
	}
	/* A service may authenticate by its verified client certificate. */
	if (http->peer) {
		const char *const *sans;
		size_t nsans;

		sans = tls_peer_sans(http->peer, &nsans);
		by_cert = tenants_by_cert(policyset_tenants(ps), tls_peer_subject(http->peer), sans,
		                          nsans);
	}
	if (by_key && by_cert && by_key != by_cert)
		return unauthorized(r, "ambiguous_credentials",
		                    token ? "the token and the client certificate belong to "
		                            "different tenants; send the credentials of one"
		                          : "the API key and the client certificate belong to "
		                            "different tenants; send the credentials of one");
	r->tenant = by_key ? by_key : by_cert;
	if (by_cert && !by_key)
		snprintf(r->credential, sizeof(r->credential), "cert:%s",
		         tls_peer_fingerprint(http->peer));
	if (gateway_keys && r->tenant == NULL)
		return unauthorized(r, h ? "invalid_api_key" : "missing_api_key",
		                    h ? "the API key is not one this gateway knows; use the key "
		                        "your organization issued for this gateway"
		                      : "send Authorization: Bearer <key>, with the key your "
		                        "organization issued for this gateway");
	r->policy = r->tenant ? tenant_policy(r->tenant) : policyset_org(ps);
	return 0;
}

/* How a file upload's body is read: JSON naming a file, or a multipart
 * upload streamed through. */
static int
upload_body(struct request *r)
{
	size_t len;
	const char *ct = httpmsg_header(&r->http->head, "Content-Type", &len);

	if (ct && len >= 16 && strncasecmp(ct, "application/json", 16) == 0 &&
	    (len == 16 || ct[16] == ';' || ct[16] == ' '))
		return CONN_BODY_BUFFER;
	if (ct && len >= 19 && strncasecmp(ct, "multipart/form-data", 19) == 0) {
		r->steps = transfer_upload_steps;
		return CONN_BODY_STREAM;
	}
	return refuse(r, 415, ERR_INVALID, "unsupported_media_type", NULL,
	              "POST /v1/containers/{container_id}/files takes multipart/form-data with a "
	              "\"file\" part, or JSON with a \"file_id\"");
}

/* How a create's body is read: a large one (or one of unknown length)
 * streams in, so that its large strings go to the spool rather than
 * memory; the 413 for one past limits.max_body_bytes is the buffered
 * body's. */
static int
spool_body(struct request *r)
{
	const struct httpmsg_head *h = &r->http->head;
	long long max = r->cfg->max_body_bytes;

	if (!h->chunked && h->content_length <= SPOOL_FROM)
		return CONN_BODY_BUFFER;
	if (!h->chunked && h->content_length > max)
		return refuse(r, 413, ERR_INVALID, "request_too_large", NULL,
		              "request body exceeds this gateway's limit of %lld bytes", max);
	r->http->body_limit = (uint64_t)max;
	r->http->body_limit_key = "limits.max_body_bytes";
	r->http->stream_whole = 1;
	return CONN_BODY_STREAM;
}

/* Whether the gateway takes more work now: the audit log can be written
 * (fail_closed: what cannot be recorded is not done) and fewer than
 * limits.max_inflight requests are being handled. */
static int
capacity(struct request *r)
{
	if (!audit_available(r->ctx->audit))
		return refuse(r, 503, ERR_INTERNAL, "audit_unavailable", NULL,
		              "the gateway cannot write its audit log, so it takes no requests; "
		              "try again shortly");
	if (context_inflight(r->ctx) > (size_t)r->cfg->max_inflight)
		return refuse(r, 503, ERR_INTERNAL, "overloaded", NULL,
		              "the gateway is handling its maximum of %lld requests at once; try "
		              "again shortly",
		              r->cfg->max_inflight);
	return 0;
}

/* The operation for the request's method and path, with its parameters
 * checked and kept; NULL with r refused (404, 405, 400). */
static const struct operation *
find_operation(struct request *r, struct target *t)
{
	const struct conn_req *http = r->http;
	const struct operation *op;
	const char *pair;
	char allowed[96];

	switch (target_read(http->method, http->path, http->query, t)) {
	case TARGET_FOUND:
		break;
	case TARGET_FRAGMENT:
		refuse(r, 400, ERR_INVALID, "invalid_path", NULL,
		       "the request target has a fragment ('#'); send the path and query only");
		return NULL;
	case TARGET_BAD_PATH:
		refuse(r, 400, ERR_INVALID, "invalid_path", NULL,
		       "%s; send the path exactly as documented", t->why);
		return NULL;
	case TARGET_NOT_FOUND:
		refuse(r, 404, ERR_INVALID, "not_found", NULL, "no such route: %s %s", http->method,
		       http->path);
		return NULL;
	case TARGET_NO_METHOD:
		refuse(r, 405, ERR_INVALID, "method_not_allowed", NULL,
		       "%s is not allowed on %s; allowed: %s", http->method, http->path,
		       operations_methods_text(t->match.allowed, allowed, sizeof(allowed)));
		return NULL;
	case TARGET_BAD_QUERY:
		op = t->op;
		pair = operation_variant(op)->query;
		set_route(r, own_route(op) ? own_route(op) : &relayed, op);
		refuse(r, 400, ERR_INVALID, "invalid_query", NULL,
		       "the query must give %.*s exactly as %s, once, or not at all; "
		       "another spelling could be read as either operation",
		       (int)strcspn(pair, "="), pair, pair);
		return NULL;
	case TARGET_BAD_PARAM:
	default:
		op = t->op;
		set_route(r, own_route(op) ? own_route(op) : &relayed, op);
		refuse(r, 400, ERR_INVALID, "invalid_path_parameter", t->why,
		       "%s in the path must be 1 to %d letters, digits, '_' or '-'%s", t->why,
		       own_route(op) || target_is_id(t->why) ? REQUEST_ID_MAX : TARGET_PARAM_MAX,
		       own_route(op) ? "" : " (and '.' or ':')");
		return NULL;
	}
	take_ids(r, &t->match);
	return t->op;
}

/* How a relayed operation's body is read: JSON whole (to the body limit),
 * anything else (a file, audio, a multipart upload) passed on as it
 * arrives, to the policy's upload limit. */
static int
relayed_body(struct request *r)
{
	size_t len;
	const char *ct = httpmsg_header(&r->http->head, "Content-Type", &len);

	if (ct == NULL || (len >= 16 && strncasecmp(ct, "application/json", 16) == 0 &&
	                   (len == 16 || ct[16] == ';' || ct[16] == ' ')))
		return CONN_BODY_BUFFER;
	r->http->body_limit = (uint64_t)policy_max_upload_bytes(r->policy);
	r->http->body_limit_key = "files.max_upload_bytes";
	return CONN_BODY_STREAM;
}

/* The head of a request is in: its operation, who is asking, whether the
 * policy lets them use it, its query, and how its body is to be read.
 * Returns a conn_body, or CONN_ANSWERED once refused. */
static int
route(struct request *r)
{
	const struct operation *op;
	const struct route *rt;
	struct target t;
	struct err *shadow;
	char query[1024], up[REQUEST_PATH_MAX];
	const char *q = r->http->query;

	if (capacity(r) < 0)
		return CONN_ANSWERED;
	/* A WebSocket (the Realtime API's, say) would carry traffic no rule
	 * or record of the gateway's could follow: refused, plainly. */
	if (httpmsg_header(&r->http->head, "Upgrade", &(size_t){0})) {
		refuse(r, 400, ERR_INVALID, "upgrade_not_supported", NULL,
		       "this gateway does not tunnel WebSocket or other upgraded connections; use "
		       "the Realtime API over WebRTC (POST /v1/realtime/calls) or plain HTTP "
		       "requests");
		return CONN_ANSWERED;
	}
	if ((op = find_operation(r, &t)) == NULL)
		return CONN_ANSWERED;
	rt = own_route(op);
	set_route(r, rt ? rt : &relayed, op);
	if (authenticate(r) < 0)
		return CONN_ANSWERED;
	switch (policy_route(r->policy, op)) {
	case POLICY_ROUTE_ALLOW:
		break;
	case POLICY_ROUTE_SHADOW_DENY:
		if ((shadow = request_shadow(r)) != NULL)
			err_set(shadow, 403, ERR_POLICY, "route_denied", NULL,
			        "%s would be denied by the policy's routes", r->route_name);
		break;
	default:
		refuse(r, 403, ERR_POLICY, "route_denied", NULL,
		       "%s (%s /v1%s) is not allowed by %s policy", r->route_name,
		       operation_method_name(op->method), op->path, policy_whose(r->policy));
		return CONN_ANSWERED;
	}
	/* The gateway's own routes take the query parameters they know, and
	 * send upstream what they checked; the others pass it as it came. */
	if (rt && rt->query) {
		err_clear(&r->error);
		if (query_check(q, rt->query, query, sizeof(query), &r->error) < 0) {
			pipeline_fail(r, &r->error);
			return CONN_ANSWERED;
		}
		q = query;
	}
	if (upstream_path(&t, q, up, sizeof(up)) < 0) {
		refuse(r, 414, ERR_INVALID, "uri_too_long", NULL, "the request path is too long");
		return CONN_ANSWERED;
	}
	if (keep_upstream_path(r, up) < 0)
		return CONN_ANSWERED;
	if (rt == NULL)
		return relayed_body(r);
	if (rt->body == FRONT_BODY_UPLOAD)
		return upload_body(r);
	if (rt->body == FRONT_BODY_SPOOL)
		return spool_body(r);
	return rt->body == FRONT_BODY_JSON ? CONN_BODY_BUFFER : CONN_BODY_NONE;
}

/* ---- the handler the transport calls ---- */

static void *
on_begin(void *arg, struct conn_req *http)
{
	return request_new(arg, http);
}

static void
on_error(void *ctx, const struct err *e)
{
	pipeline_fail(ctx, e);
}

static int
on_head(void *ctx)
{
	struct request *r = ctx;
	const struct httpmsg_head *h = &r->http->head;
	const char *tp = NULL;
	size_t len = 0;

	/* Two traceparents could be read either way: neither is followed. */
	if (httpmsg_header_count(h, "traceparent") == 1)
		tp = httpmsg_header(h, "traceparent", &len);
	trace_start(&r->trace, tp, len);
	return route(ctx);
}

/* The body is in, or a streamed one starts: the route's pipeline runs. */
static void
on_request(void *ctx)
{
	struct request *r = ctx;

	pipeline_start(r, r->steps);
}

/* Stream events go to the step that streams. Before one does (while the
 * tenant is admitted), a failed body is kept in stream_error, for the
 * upload's first step to answer. */
static void
on_event(void *ctx, int event)
{
	struct request *r = ctx;

	if (r->on_event)
		r->on_event(r, event);
}

const struct conn_handler front_handler = {on_begin, on_error, on_head, on_request, on_event};

void
front_abort(struct context *ctx, const struct err *e)
{
	struct request *r, *next;

	/* Ending one request never ends another, so next stays valid. */
	for (r = ctx->live; r; r = next) {
		next = r->live_next;
		pipeline_fail(r, e);
	}
}
