#include "admin.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/conn.h"
#include "lib/log.h"

#define ADMIN_HEAD_MAX   8192
#define ADMIN_CONNS_MAX  32
#define ADMIN_TIMEOUT_MS 5000

struct admin {
	struct admin_source src;
	struct evconnlistener *listener;
	struct conn_loop *conns;
};

/* One request to the admin listener. */
struct admin_req {
	struct admin *admin;
	struct conn_req *req;
};

static void
done(struct admin_req *ar)
{
	conn_req_free(ar->req);
	free(ar);
}

/* Sends the answer (body taken from body, which may be NULL) and ends the
 * request. */
static void
answer(struct admin_req *ar, int status, const char *type, struct evbuffer *body)
{
	size_t len = body ? evbuffer_get_length(body) : 0;
	const char *headers[3];
	char ct[96];
	size_t n = 0;

	snprintf(ct, sizeof(ct), "Content-Type: %s", type);
	headers[n++] = ct;
	headers[n++] = "Cache-Control: no-store";
	if (status == 405)
		headers[n++] = "Allow: GET, HEAD";
	conn_reply(ar->req, status, headers, n,
	           len ? (const char *)evbuffer_pullup(body, (ev_ssize_t)len) : NULL, len);
	done(ar);
}

static void
answer_text(struct admin_req *ar, int status, const char *text)
{
	struct evbuffer *body = evbuffer_new();

	if (body)
		evbuffer_add_printf(body, "%s\n", text);
	answer(ar, status, "text/plain; charset=utf-8", body);
	if (body)
		evbuffer_free(body);
}

static void *
on_begin(void *arg, struct conn_req *req)
{
	struct admin_req *ar = calloc(1, sizeof(*ar));

	if (ar == NULL)
		return NULL;
	ar->admin = arg;
	ar->req = req;
	return ar;
}

static void
on_error(void *ctx, const struct err *e)
{
	answer_text(ctx, e->status ? e->status : 400, e->message);
}

static void
metrics(struct admin_req *ar)
{
	struct evbuffer *body = evbuffer_new();

	if (body == NULL || ar->admin->src.metrics(ar->admin->src.arg, body) < 0) {
		if (body)
			evbuffer_free(body);
		answer_text(ar, 503, "out of memory");
		return;
	}
	answer(ar, 200, "text/plain; version=0.0.4; charset=utf-8", body);
	evbuffer_free(body);
}

static int
on_head(void *ctx)
{
	struct admin_req *ar = ctx;
	const char *path = ar->req->path, *method = ar->req->method;
	char why[512], text[600];

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		answer_text(ar, 405, "only GET and HEAD");
	} else if (strcmp(path, "/metrics") == 0) {
		metrics(ar);
	} else if (strcmp(path, "/healthz") == 0) {
		answer_text(ar, 200, "ok");
	} else if (strcmp(path, "/readyz") == 0) {
		if (ar->admin->src.ready(ar->admin->src.arg, why, sizeof(why))) {
			answer_text(ar, 200, "ready");
		} else {
			snprintf(text, sizeof(text), "not ready: %s", why);
			answer_text(ar, 503, text);
		}
	} else {
		answer_text(ar, 404, "not found; try /metrics, /healthz or /readyz");
	}
	return CONN_ANSWERED;
}

/* Every request is answered from its head. */
static void
on_request(void *ctx)
{
	answer_text(ctx, 400, "the admin listener takes no request bodies");
}

/* The client left before its answer: nothing to send. */
static void
on_event(void *ctx, int event)
{
	if (event == CONN_EV_FAILED)
		done(ctx);
}

static const struct conn_handler admin_handler = {on_begin, on_error, on_head, on_request,
                                                  on_event};

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct admin *a = arg;

	(void)l;
	(void)salen;
	if (conn_loop_count(a->conns) >= ADMIN_CONNS_MAX) {
		evutil_closesocket(fd);
		return;
	}
	conn_accept(a->conns, fd, sa, 0);
}

int
admin_check_addr(const char *addr, const char *file, struct errlist *errs)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len) < 0 ||
	    strrchr(addr, ':') == NULL) {
		errlist_add(errs, file, "admin_listen",
		            "must be an IP address and port, e.g. \"127.0.0.1:9090\" or "
		            "\"[::1]:9090\"");
		return -1;
	}
	return 0;
}

struct admin *
admin_new(const struct admin_source *src, struct event_base *base, const char *addr,
          const char *file, struct errlist *errs)
{
	static const struct conn_limits limits = {
	        .max_head = ADMIN_HEAD_MAX,
	        .max_body = 0,
	        .header_timeout_ms = ADMIN_TIMEOUT_MS,
	        .body_timeout_ms = ADMIN_TIMEOUT_MS,
	        .idle_timeout_ms = ADMIN_TIMEOUT_MS,
	        .max_connections = ADMIN_CONNS_MAX,
	};
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	struct admin *a;

	if (admin_check_addr(addr, file, errs) < 0)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (a == NULL || (a->conns = conn_loop_new(base, &admin_handler, a, &limits)) == NULL) {
		errlist_add(errs, file, "admin_listen", "out of memory");
		free(a);
		return NULL;
	}
	a->src = *src;
	memset(&ss, 0, sizeof(ss));
	(void)evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len);
	a->listener = evconnlistener_new_bind(base, on_accept, a,
	                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                              LEV_OPT_CLOSE_ON_EXEC,
	                                      64, (struct sockaddr *)&ss, len);
	if (a->listener == NULL) {
		errlist_add(errs, file, "admin_listen", "cannot listen on %s: %s", addr,
		            evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		admin_free(a);
		return NULL;
	}
	return a;
}

void
admin_free(struct admin *a)
{
	if (a == NULL)
		return;
	if (a->listener)
		evconnlistener_free(a->listener);
	conn_loop_free(a->conns);
	free(a);
}
