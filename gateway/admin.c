#include "admin.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/httpmsg.h"
#include "lib/log.h"
#include "server.h"

#define ADMIN_HEAD_MAX  8192
#define ADMIN_CONNS_MAX 32
#define ADMIN_TIMEOUT_S 5

struct admin_conn {
	struct admin_conn *prev, *next;
	struct admin *admin;
	struct bufferevent *bev;
};

struct admin {
	struct server *srv;
	struct evconnlistener *listener;
	struct admin_conn *conns;
	size_t nconns;
};

static void
conn_close(struct admin_conn *c)
{
	struct admin *a = c->admin;

	if (c->prev)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	a->nconns--;
	bufferevent_free(c->bev);
	free(c);
}

static void
on_written(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_close(arg);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	conn_close(arg);
}

static const char *
reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 503:
		return "Service Unavailable";
	default:
		return "Bad Request";
	}
}

/* Sends the answer (body taken from body, which may be NULL) and closes
 * once it is written. */
static void
answer(struct admin_conn *c, int status, const char *type, struct evbuffer *body, int head_only)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len = body ? evbuffer_get_length(body) : 0;

	bufferevent_disable(c->bev, EV_READ);
	evbuffer_add_printf(out,
	                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	                    "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
	                    status, reason(status), type, len,
	                    status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (body && !head_only)
		evbuffer_add_buffer(out, body);
	bufferevent_setcb(c->bev, NULL, on_written, on_event, c);
	bufferevent_enable(c->bev, EV_WRITE);
}

static void
serve(struct admin_conn *c, const struct httpmsg_head *h)
{
	struct evbuffer *body = evbuffer_new();
	int head_only = h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0;
	const char *q = memchr(h->target, '?', h->target_len);
	size_t plen = q ? (size_t)(q - h->target) : h->target_len;
	char path[32] = "", why[512];
	int status = 200;

	if (body == NULL) {
		conn_close(c);
		return;
	}
	if (plen < sizeof(path))
		memcpy(path, h->target, plen);
	if (!head_only && !(h->method_len == 3 && memcmp(h->method, "GET", 3) == 0)) {
		status = 405;
		evbuffer_add_printf(body, "only GET and HEAD\n");
	} else if (strcmp(path, "/metrics") == 0) {
		if (server_render_metrics(c->admin->srv, body) < 0) {
			status = 503;
			evbuffer_drain(body, evbuffer_get_length(body));
			evbuffer_add_printf(body, "out of memory\n");
		}
		answer(c, status,
		       status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
		                     : "text/plain; charset=utf-8",
		       body, head_only);
		evbuffer_free(body);
		return;
	} else if (strcmp(path, "/healthz") == 0) {
		evbuffer_add_printf(body, "ok\n");
	} else if (strcmp(path, "/readyz") == 0) {
		if (server_ready(c->admin->srv, why, sizeof(why))) {
			evbuffer_add_printf(body, "ready\n");
		} else {
			status = 503;
			evbuffer_add_printf(body, "not ready: %s\n", why);
		}
	} else {
		status = 404;
		evbuffer_add_printf(body, "not found; try /metrics, /healthz or /readyz\n");
	}
	answer(c, status, "text/plain; charset=utf-8", body, head_only);
	evbuffer_free(body);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct admin_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t avail = evbuffer_get_length(in);
	size_t look = avail < ADMIN_HEAD_MAX ? avail : ADMIN_HEAD_MAX;
	struct httpmsg_head h;
	struct evbuffer *body;
	struct err e;
	ssize_t n;

	err_clear(&e);
	n = httpmsg_parse((const char *)evbuffer_pullup(in, (ev_ssize_t)look), look, ADMIN_HEAD_MAX,
	                  &h, &e);
	if (n == 0)
		return;
	if (n > 0) {
		serve(c, &h);
		return;
	}
	body = evbuffer_new();
	if (body == NULL) {
		conn_close(c);
		return;
	}
	evbuffer_add_printf(body, "%s\n", e.message);
	answer(c, e.status ? e.status : 400, "text/plain; charset=utf-8", body, 0);
	evbuffer_free(body);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct admin *a = arg;
	struct admin_conn *c;
	struct timeval tv = {ADMIN_TIMEOUT_S, 0};

	(void)l;
	(void)sa;
	(void)salen;
	if (a->nconns >= ADMIN_CONNS_MAX || (c = calloc(1, sizeof(*c))) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->admin = a;
	c->bev = bufferevent_socket_new(server_base(a->srv), fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->next = a->conns;
	if (a->conns)
		a->conns->prev = c;
	a->conns = c;
	a->nconns++;
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setwatermark(c->bev, EV_READ, 0, ADMIN_HEAD_MAX);
	bufferevent_enable(c->bev, EV_READ);
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
admin_new(struct server *srv, const char *addr, const char *file, struct errlist *errs)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	struct admin *a;

	if (admin_check_addr(addr, file, errs) < 0)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		errlist_add(errs, file, "admin_listen", "out of memory");
		return NULL;
	}
	a->srv = srv;
	memset(&ss, 0, sizeof(ss));
	(void)evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len);
	a->listener = evconnlistener_new_bind(server_base(srv), on_accept, a,
	                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                              LEV_OPT_CLOSE_ON_EXEC,
	                                      64, (struct sockaddr *)&ss, len);
	if (a->listener == NULL) {
		errlist_add(errs, file, "admin_listen", "cannot listen on %s: %s", addr,
		            evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		free(a);
		return NULL;
	}
	return a;
}

void
admin_free(struct admin *a)
{
	if (a == NULL)
		return;
	while (a->conns)
		conn_close(a->conns);
	evconnlistener_free(a->listener);
	free(a);
}
