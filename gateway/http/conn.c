#include "http/conn.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "app/config.h"
#include "app/front.h"
#include "http/httpmsg.h"
#include "lib/log.h"
#include "metrics.h"
#include "app/reply.h"
#include "app/request.h"
#include "lib/secmem.h"
#include "server.h"
#include "http/tls.h"

enum conn_state {
	C_HEAD,       /* waiting for or reading a request head */
	C_BODY,       /* reading a request body to hand over whole */
	C_STREAM,     /* passing a request body to its handler as it arrives */
	C_BUSY,       /* the request is being handled or its answer written */
	C_STREAM_OUT, /* an answer is being streamed */
	C_LINGER,     /* answered early; reading and dropping the rest of the body */
};

/* After an early answer (413, 403...) the client may still be sending its
 * body. Closing at once would reset the connection and could destroy the
 * answer before the client reads it, so the gateway stops writing and
 * drops what still comes for a short while first, as nginx does. */
#define LINGER_MS 2000

/* A streamed body or answer is held to about this much in memory: reading
 * stops above STREAM_HIGH and resumes once the handler has taken it down;
 * a streamed answer's handler is told to go on below STREAM_LOW. */
#define STREAM_HIGH (1024 * 1024)
#define STREAM_LOW  (256 * 1024)

/* A streamed body may take long in all, but each STREAM_PROGRESS bytes of
 * it must arrive within limits.body_timeout_ms: a client trickling a byte
 * at a time (slowloris) is cut off like any slow client. */
#define STREAM_PROGRESS (16 * 1024)

/* Input held beyond a head's limit: room for a pipelined request to wait
 * while the one before it is answered. */
#define PIPELINE_SLACK (64 * 1024)

struct conn {
	struct conn *prev, *next;
	struct server *srv;
	const struct conn_limits *limits;
	struct bufferevent *bev;
	struct event *timer;
	struct event *sent; /* an answer written in one go: on_write from the loop */
	char client[64];
	enum conn_state state;
	struct request *req; /* owned while attached */
	struct httpmsg_chunked *chunked;
	uint64_t body_left;
	int body_pending; /* the current request has body bytes not yet read */
	int body_too_large;
	int keep_alive;
	int closing;   /* close once the answer is written */
	int peer_done; /* the client sent its end while an answer was due */
	int head_started;
	int chunked_out;       /* the streamed answer is sent chunked */
	int tls;               /* the bufferevent is a TLS one */
	int handshaken;        /* its handshake is complete */
	int over_limit;        /* accepted beyond limits.max_connections: answered 503 */
	struct tls_peer *peer; /* the verified client certificate, or NULL */
	uint64_t stream_mark;  /* body_seen when the body timer was last armed */
};

/* Each event loop (worker) keeps its own connections; the total is what
 * limits.max_connections counts, across workers. */
static _Thread_local struct conn *live;
static _Thread_local size_t nlive;
static atomic_size_t nall;

size_t
conn_count(void)
{
	return nlive;
}

size_t
conn_total(void)
{
	return atomic_load_explicit(&nall, memory_order_relaxed);
}

static void
conn_free(struct conn *c)
{
	/* A request still being handled finishes, and is audited, without us;
	 * a handler that streams is told, since it is waiting on us. */
	if (c->req) {
		struct request *r = c->req;

		c->req = NULL;
		r->conn = NULL;
		if (r->on_event && !r->replied) {
			if (r->stream_error.status == 0)
				err_set(&r->stream_error, 400, ERR_INVALID, "client_closed", NULL,
				        "the client closed the connection before the exchange was "
				        "complete");
			r->on_event(r, REQUEST_FAILED);
		}
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	nlive--;
	atomic_fetch_sub_explicit(&nall, 1, memory_order_relaxed);
	httpmsg_chunked_free(c->chunked);
	tls_peer_free(c->peer);
	if (c->timer)
		event_free(c->timer);
	if (c->sent)
		event_free(c->sent);
	if (c->bev)
		bufferevent_free(c->bev);
	free(c);
}

void
conn_close_all(void)
{
	while (live)
		conn_free(live);
}

void
conn_drain(void)
{
	struct conn *c, *next;

	for (c = live; c; c = next) {
		next = c->next;
		if (c->state == C_HEAD && !c->head_started && c->req == NULL)
			conn_free(c);
	}
}

static void
arm(struct conn *c, long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(c->timer, &tv);
}

/* Drops n bytes from the front of in, overwriting them first: heads carry
 * API keys and bodies carry domain secrets. */
static void
drain_wiped(struct evbuffer *in, size_t n)
{
	struct evbuffer_iovec v;
	size_t k;

	while (n > 0 && evbuffer_peek(in, -1, NULL, &v, 1) == 1) {
		k = v.iov_len < n ? v.iov_len : n;
		secmem_wipe(v.iov_base, k);
		evbuffer_drain(in, k);
		n -= k;
	}
}

/* Moves n bytes of body from in into the request. */
static int
take_body(struct conn *c, struct evbuffer *in, size_t n)
{
	struct evbuffer_iovec v;
	size_t k;

	while (n > 0 && evbuffer_peek(in, -1, NULL, &v, 1) == 1) {
		k = v.iov_len < n ? v.iov_len : n;
		if (request_append_body(c->req, v.iov_base, k) < 0)
			return -1;
		secmem_wipe(v.iov_base, k);
		evbuffer_drain(in, k);
		n -= k;
	}
	return 0;
}

/* Writing may be off after an answer that went out in one write. */
static void
continue_100(struct conn *c)
{
	bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	bufferevent_enable(c->bev, EV_WRITE);
}

/* Answers a request the connection cannot continue after. */
static void
refuse(struct conn *c, const struct err *e)
{
	c->closing = 1;
	c->state = C_BUSY;
	bufferevent_disable(c->bev, EV_READ);
	evtimer_del(c->timer);
	reply_err(c->req, e);
}

/* Reading stays on while the request is handled: turning it off and on
 * again costs two epoll_ctl calls a request. What a pipelining client sends
 * meanwhile waits in the input, bounded by the read watermark. */
static void
dispatch(struct conn *c)
{
	c->state = C_BUSY;
	c->body_pending = 0;
	evtimer_del(c->timer);
	front_dispatch(c->req);
}

static void
emit_body(void *arg, const char *data, size_t n)
{
	struct conn *c = arg;
	struct request *r = c->req;

	if (c->state == C_STREAM) {
		if (evbuffer_add(r->stream_in, data, n) < 0)
			c->body_too_large = 1;
		return;
	}
	if (c->body_too_large || r->body_len + n > c->limits->max_body ||
	    request_append_body(r, data, n) < 0)
		c->body_too_large = 1;
}

/* Tells a streaming handler its body failed; it answers. */
static void stream_failed(struct conn *c, int status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void
stream_failed(struct conn *c, int status, const char *code, const char *fmt, ...)
{
	struct request *r = c->req;
	va_list ap;

	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	evtimer_del(c->timer);
	va_start(ap, fmt);
	err_vset(&r->stream_error, status, ERR_INVALID, code, NULL, fmt, ap);
	va_end(ap);
	r->on_event(r, REQUEST_FAILED);
}

/* Moves what has arrived of a streamed body to the handler. Returns 1 once
 * the body is complete or has failed, 0 while more is to come. */
static int
read_stream(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct request *r = c->req;
	size_t avail = evbuffer_get_length(in), before, n, consumed = 0;
	struct err e;
	int rc = 0;

	if (avail == 0)
		return 0;
	before = evbuffer_get_length(r->stream_in);
	if (c->chunked == NULL) {
		n = avail < c->body_left ? avail : (size_t)c->body_left;
		evbuffer_remove_buffer(in, r->stream_in, n);
		c->body_left -= n;
		rc = c->body_left == 0;
	} else {
		err_clear(&e);
		rc = httpmsg_chunked_feed(c->chunked,
		                          (const char *)evbuffer_pullup(in, (ev_ssize_t)avail),
		                          avail, &consumed, emit_body, c, &e);
		evbuffer_drain(in, consumed);
		if (rc < 0) {
			r->stream_error = e;
			c->closing = 1;
			bufferevent_disable(c->bev, EV_READ);
			r->on_event(r, REQUEST_FAILED);
			return 1;
		}
	}
	r->body_seen += evbuffer_get_length(r->stream_in) - before;
	if (c->body_too_large || (r->body_limit && r->body_seen > r->body_limit)) {
		stream_failed(c, 413, "request_too_large",
		              "the upload exceeds this organization's limit of %lld bytes",
		              (long long)r->body_limit);
		return 1;
	}
	if (r->body_seen - c->stream_mark >= STREAM_PROGRESS) {
		c->stream_mark = r->body_seen;
		arm(c, c->limits->body_timeout_ms);
	}
	if (rc == 1) {
		r->body_done = 1;
		c->body_pending = 0;
		c->state = C_BUSY;
		evtimer_del(c->timer);
		bufferevent_disable(c->bev, EV_READ);
	} else if (evbuffer_get_length(r->stream_in) >= STREAM_HIGH) {
		/* Waiting on the upstream, not the client: no timer meanwhile. */
		bufferevent_disable(c->bev, EV_READ);
		evtimer_del(c->timer);
	}
	r->on_event(r, REQUEST_BODY);
	return rc;
}

void
conn_stream_resume(struct conn *c)
{
	if (c->state != C_STREAM || c->req == NULL ||
	    evbuffer_get_length(c->req->stream_in) >= STREAM_HIGH)
		return;
	if (!evtimer_pending(c->timer, NULL)) {
		c->stream_mark = c->req->body_seen;
		arm(c, c->limits->body_timeout_ms);
	}
	bufferevent_enable(c->bev, EV_READ);
	(void)read_stream(c);
}

static void
too_large(struct conn *c)
{
	struct err e;

	err_set(&e, 413, ERR_INVALID, "request_too_large", NULL,
	        "request body exceeds this gateway's limit of %zu bytes", c->limits->max_body);
	refuse(c, &e);
}

/* Returns 1 when the body is complete or refused, 0 when more is needed. */
static int
read_body(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t avail = evbuffer_get_length(in), consumed = 0, n;
	struct err e;
	int rc;

	if (avail == 0)
		return 0;
	if (c->chunked == NULL) {
		n = avail < c->body_left ? avail : (size_t)c->body_left;
		if (take_body(c, in, n) < 0) {
			err_set(&e, 503, ERR_INTERNAL, "out_of_memory", NULL,
			        "the gateway is out of memory; try again");
			refuse(c, &e);
			return 1;
		}
		c->body_left -= n;
		if (c->body_left > 0)
			return 0;
		dispatch(c);
		return 1;
	}
	err_clear(&e);
	rc = httpmsg_chunked_feed(c->chunked, (const char *)evbuffer_pullup(in, (ev_ssize_t)avail),
	                          avail, &consumed, emit_body, c, &e);
	drain_wiped(in, consumed);
	if (c->body_too_large) {
		too_large(c);
		return 1;
	}
	if (rc < 0) {
		refuse(c, &e);
		return 1;
	}
	if (rc == 0)
		return 0;
	dispatch(c);
	return 1;
}

/* A streamed body: the handler starts at once and takes the body as it
 * comes. Returns 1 to go on reading it. */
static int
start_stream(struct conn *c)
{
	const struct httpmsg_head *h = &c->req->head;
	struct err e;

	c->req->stream_in = evbuffer_new();
	if (h->chunked)
		c->chunked = httpmsg_chunked_new();
	else
		c->body_left = (uint64_t)h->content_length;
	if (c->req->stream_in == NULL || (h->chunked && c->chunked == NULL)) {
		err_set(&e, 503, ERR_INTERNAL, "out_of_memory", NULL,
		        "the gateway is out of memory; try again");
		refuse(c, &e);
		return 0;
	}
	c->state = C_STREAM;
	c->body_too_large = 0;
	c->stream_mark = 0;
	arm(c, c->limits->body_timeout_ms);
	front_dispatch(c->req);
	/* The handler may have answered at once (a size over the limit, a bad
	 * multipart type): then the rest of the body is not read. */
	if (c->req == NULL || c->state != C_STREAM)
		return 0;
	if (h->expect_continue && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
		continue_100(c);
	return 1;
}

/* Sets up reading the body the route asked for; 1 to go on reading. */
static int
start_body(struct conn *c, int how)
{
	const struct httpmsg_head *h = &c->req->head;
	struct err e;

	if (!c->body_pending) {
		dispatch(c);
		return 0;
	}
	if (how == FRONT_BODY_NONE) {
		err_set(&e, 400, ERR_INVALID, "unexpected_body", NULL,
		        "%s %s takes no request body", c->req->method, c->req->path);
		refuse(c, &e);
		return 0;
	}
	if (how == FRONT_BODY_STREAM)
		return start_stream(c);
	if (h->content_length > 0 && (uint64_t)h->content_length > c->limits->max_body) {
		too_large(c);
		return 0;
	}
	if (h->chunked) {
		c->chunked = httpmsg_chunked_new();
		if (c->chunked == NULL) {
			err_set(&e, 503, ERR_INTERNAL, "out_of_memory", NULL,
			        "the gateway is out of memory; try again");
			refuse(c, &e);
			return 0;
		}
	} else {
		c->body_left = (uint64_t)h->content_length;
		c->req->body_expect = c->body_left;
	}
	c->state = C_BODY;
	c->body_too_large = 0;
	arm(c, c->limits->body_timeout_ms);
	if (h->expect_continue && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
		continue_100(c);
	return 1;
}

/* Whether the gateway has room for this request; fills e when not. Past
 * limits.max_connections, a connection is read as far as its head, so its
 * refusal is answered and audited like any other. */
static int
over_capacity(struct conn *c, struct err *e)
{
	const struct config *cfg = server_config(c->srv);

	if (c->over_limit)
		return err_set(e, 503, ERR_INTERNAL, "too_many_connections", NULL,
		               "the gateway has its maximum of %lld client connections open; try "
		               "again shortly",
		               cfg->max_connections) != 0;
	if (server_inflight(c->srv) > (size_t)cfg->max_inflight)
		return err_set(e, 503, ERR_INTERNAL, "overloaded", NULL,
		               "the gateway is handling its maximum of %lld requests at once; try "
		               "again shortly",
		               cfg->max_inflight) != 0;
	return 0;
}

/* Returns 1 when the head was read and the body can follow, -1 when the
 * connection is gone (freed). */
static int
read_head(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t avail = evbuffer_get_length(in), look;
	struct httpmsg_head h;
	const char *p;
	struct err e;
	ssize_t n;
	int how;

	if (avail == 0)
		return 0;
	if (!c->head_started) {
		c->head_started = 1;
		arm(c, c->limits->header_timeout_ms);
	}
	look = avail < c->limits->max_head ? avail : c->limits->max_head;
	p = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
	err_clear(&e);
	n = httpmsg_parse(p, look, c->limits->max_head, &h, &e);
	if (n == 0)
		return 0;
	c->req = request_new(c->srv, c, c->client);
	if (c->req == NULL) {
		conn_free(c);
		return -1;
	}
	c->head_started = 0;
	if (n < 0) {
		drain_wiped(in, avail);
		refuse(c, &e);
		return 0;
	}
	if (request_take_head(c->req, p, (size_t)n, &h) < 0) {
		drain_wiped(in, (size_t)n);
		err_set(&e, 503, ERR_INTERNAL, "out_of_memory", NULL,
		        "the gateway is out of memory; try again");
		refuse(c, &e);
		return 0;
	}
	drain_wiped(in, (size_t)n);
	c->keep_alive = h.keep_alive;
	/* Set before routing: an answer given now, with the body unread,
	 * must close the connection rather than parse the body as a head. */
	c->body_pending = h.chunked || h.content_length > 0;
	if (c->peer && (c->req->client_cert = tls_peer_dup(c->peer)) == NULL) {
		err_set(&e, 503, ERR_INTERNAL, "out_of_memory", NULL,
		        "the gateway is out of memory; try again");
		refuse(c, &e);
		return 0;
	}
	if (over_capacity(c, &e)) {
		refuse(c, &e);
		return 0;
	}
	c->state = C_BUSY;
	evtimer_del(c->timer);
	how = front_route(c->req);
	if (how < 0)
		return 0;
	return start_body(c, how);
}

static int
process(struct conn *c)
{
	int rc = c->state == C_HEAD ? read_head(c) : 1;

	if (rc <= 0)
		return rc;
	if (c->state == C_BODY)
		(void)read_body(c);
	else if (c->state == C_STREAM)
		(void)read_stream(c);
	else if (c->state == C_LINGER)
		drain_wiped(bufferevent_get_input(c->bev),
		            evbuffer_get_length(bufferevent_get_input(c->bev)));
	return 0;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	(void)process(arg);
}

static int process(struct conn *c);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void
linger(struct conn *c)
{
	c->state = C_LINGER;
	(void)shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	bufferevent_disable(c->bev, EV_WRITE);
	bufferevent_enable(c->bev, EV_READ);
	arm(c, LINGER_MS);
	(void)process(c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->state == C_STREAM_OUT) {
		if (c->req && c->req->on_event)
			c->req->on_event(c->req, REQUEST_DRAINED);
		return;
	}
	/* Also fires after a 100 Continue, while the request is current. */
	if (c->state != C_BUSY || c->req != NULL)
		return;
	if (c->closing && c->body_pending) {
		linger(c);
		return;
	}
	if (c->closing) {
		conn_free(c);
		return;
	}
	c->state = C_HEAD;
	httpmsg_chunked_free(c->chunked);
	c->chunked = NULL;
	arm(c, c->limits->idle_timeout_ms);
	if (!c->peer_done)
		bufferevent_enable(c->bev, EV_READ);
	if (process(c) < 0) /* a pipelined request may be waiting */
		return;
	/* Nothing more will come to finish what is left. */
	if (c->peer_done && (c->state == C_HEAD || c->state == C_BODY || c->state == C_STREAM))
		on_event(c->bev, BEV_EVENT_EOF | BEV_EVENT_READING, c);
}

static void
on_sent(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	on_write(c->bev, c);
}

/* The TLS handshake is done: note who the client certificate names. */
static void
handshake_done(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	c->handshaken = 1;
	if (ssl == NULL)
		return;
	c->peer = tls_peer_new(ssl);
	if (c->peer) {
		char names[512] = "";
		const char *const *sans;
		size_t n, i, o = 0;

		sans = tls_peer_sans(c->peer, &n);
		for (i = 0; i < n && o < sizeof(names); i++)
			o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", i ? ", " : "",
			                      sans[i]);
		log_msg(LOG_DEBUG, NULL, "client %s: TLS %s, verified certificate %s (%s)",
		        c->client, SSL_get_version(ssl), tls_peer_subject(c->peer),
		        n ? names : "no names");
	}
	/* The head has its own timer from its first byte; until then, the
	 * connection is idle. */
	if (!c->head_started)
		arm(c, c->limits->idle_timeout_ms);
}

static void
handshake_failed(struct conn *c)
{
	unsigned long e;
	char why[256] = "connection closed";

	while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
		ERR_error_string_n(e, why, sizeof(why));
	metrics_count(server_metrics(c->srv), METRICS_TLS_HANDSHAKE_FAILED);
	log_msg(LOG_DEBUG, NULL, "client %s: TLS handshake failed: %s", c->client, why);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct err e;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		handshake_done(c);
		return;
	}
	if (c->tls && !c->handshaken) {
		handshake_failed(c);
		conn_free(c);
		return;
	}
	/* A client that stops sending while its request is handled or its
	 * answer is being written (a half-close, or a reset the answer's write
	 * will meet) still gets the answer, and those to what it pipelined
	 * before; on_write closes once they are out. */
	if ((what & BEV_EVENT_READING) && (c->state == C_BUSY || c->state == C_STREAM_OUT)) {
		c->peer_done = 1;
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	/* A reset, like a close, ends the body the client was sending. */
	if (what & BEV_EVENT_ERROR)
		what |= BEV_EVENT_EOF;
	if (c->state == C_STREAM && c->req && (what & BEV_EVENT_EOF)) {
		stream_failed(c, 400, "incomplete_body",
		              "the client closed the connection after %lld bytes of the body",
		              (long long)c->req->body_seen);
	} else if (c->state == C_BODY && c->req && !c->req->replied && (what & BEV_EVENT_EOF)) {
		/* The client gave up mid-body; the request is still recorded. */
		c->req->conn = NULL;
		err_set(&e, 400, ERR_INVALID, "incomplete_body", NULL,
		        "the client closed the connection before sending the whole body");
		reply_err(c->req, &e);
		c->req = NULL;
	}
	conn_free(c);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct err e;

	(void)fd;
	(void)what;
	if (c->state == C_LINGER) {
		conn_free(c);
		return;
	}
	if (c->state == C_STREAM) {
		stream_failed(c, 408, "request_timeout",
		              "no part of the upload arrived within %lld ms",
		              (long long)c->limits->body_timeout_ms);
		return;
	}
	if (c->state == C_BODY) {
		err_set(&e, 408, ERR_INVALID, "request_timeout", NULL,
		        "the request body did not arrive within %ld ms",
		        c->limits->body_timeout_ms);
	} else if (c->state == C_HEAD && c->head_started) {
		c->req = request_new(c->srv, c, c->client);
		if (c->req == NULL) {
			conn_free(c);
			return;
		}
		err_set(&e, 408, ERR_INVALID, "request_timeout", NULL,
		        "the request head did not arrive within %ld ms",
		        c->limits->header_timeout_ms);
	} else {
		conn_free(c); /* idle keep-alive connection */
		return;
	}
	refuse(c, &e);
}

struct conn *
conn_new(struct server *srv, evutil_socket_t fd, const struct sockaddr *sa, int salen,
         int over_limit)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct tls_server *tls = server_tls(srv);
	SSL *ssl = NULL;
	char host[INET6_ADDRSTRLEN] = "?";
	struct timeval wtv;
	int one = 1;

	(void)salen;
	if (c == NULL) {
		evutil_closesocket(fd);
		return NULL;
	}
	c->srv = srv;
	c->limits = server_limits(srv);
	c->over_limit = over_limit;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, host,
		          sizeof(host));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		          host, sizeof(host));
	snprintf(c->client, sizeof(c->client), "%s", host);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	c->next = live;
	if (live)
		live->prev = c;
	live = c;
	nlive++;
	atomic_fetch_add_explicit(&nall, 1, memory_order_relaxed);

	if (tls) {
		c->tls = 1;
		ssl = tls_server_ssl(tls);
		if (ssl)
			c->bev = bufferevent_openssl_socket_new(server_base(srv), fd, ssl,
			                                        BUFFEREVENT_SSL_ACCEPTING,
			                                        BEV_OPT_CLOSE_ON_FREE);
		/* Clients that close without a TLS close_notify are the norm;
		 * their close reads as an end, not an error. */
		if (c->bev)
			bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	} else {
		c->bev = bufferevent_socket_new(server_base(srv), fd, BEV_OPT_CLOSE_ON_FREE);
	}
	c->timer = evtimer_new(server_base(srv), on_timeout, c);
	c->sent = event_new(server_base(srv), -1, 0, on_sent, c);
	if (c->bev == NULL || c->timer == NULL || c->sent == NULL) {
		if (c->bev == NULL) {
			SSL_free(ssl);
			evutil_closesocket(fd);
		}
		conn_free(c);
		return NULL;
	}
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	/* A client that stops reading its answer is cut off too. */
	wtv.tv_sec = c->limits->idle_timeout_ms / 1000;
	wtv.tv_usec = (c->limits->idle_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(c->bev, NULL, &wtv);
	/* Past a head and a little more, reading pauses until it is used. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, c->limits->max_head + PIPELINE_SLACK);
	bufferevent_enable(c->bev, EV_READ);
	/* A TLS handshake must be done within the time a head gets. */
	arm(c, c->tls ? c->limits->header_timeout_ms : c->limits->idle_timeout_ms);
	return c;
}

static const char *
reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Status";
	}
}

void
conn_send(struct conn *c, struct request *r, int status, const char *const *headers,
          size_t nheaders, const char *body, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t i;

	if (r != c->req) {
		log_msg(LOG_ERROR, r->id, "answer for a request that is not the connection's");
		request_free(r);
		return;
	}
	if (!c->keep_alive || c->body_pending || c->state != C_BUSY || server_draining(c->srv))
		c->closing = 1;
	if (c->state == C_STREAM)
		bufferevent_disable(c->bev, EV_READ);
	c->state = C_BUSY;
	/* Off while the answer is put together, so adding to the output does
	 * not ask epoll to watch for writing: most answers go in one write. */
	if (!c->tls)
		bufferevent_disable(c->bev, EV_WRITE);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, reason(status));
	for (i = 0; i < nheaders; i++)
		evbuffer_add_printf(out, "%s\r\n", headers[i]);
	evbuffer_add_printf(out, "Content-Length: %zu\r\n%s\r\n", len,
	                    c->closing ? "Connection: close\r\n" : "");
	if (len)
		evbuffer_add(out, body, len);
	c->req = NULL;
	request_free(r);
	if (!c->tls && evbuffer_write(out, bufferevent_getfd(c->bev)) > 0 &&
	    evbuffer_get_length(out) == 0) {
		event_active(c->sent, EV_WRITE, 1);
		return;
	}
	/* The rest, or an error to report, is the bufferevent's. */
	bufferevent_enable(c->bev, EV_WRITE);
}

/* The head of a streamed answer; content_length -1 sends it chunked. */
void
conn_stream_begin(struct conn *c, int status, const char *const *headers, size_t nheaders,
                  long long content_length)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t i;

	if (!c->keep_alive || c->body_pending || server_draining(c->srv))
		c->closing = 1;
	c->state = C_STREAM_OUT;
	c->chunked_out = content_length < 0;
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, reason(status));
	for (i = 0; i < nheaders; i++)
		evbuffer_add_printf(out, "%s\r\n", headers[i]);
	if (c->chunked_out)
		evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
	else
		evbuffer_add_printf(out, "Content-Length: %lld\r\n", content_length);
	evbuffer_add_printf(out, "%s\r\n", c->closing ? "Connection: close\r\n" : "");
	/* The write callback now says when the answer has drained enough. */
	bufferevent_setwatermark(c->bev, EV_WRITE, STREAM_LOW, 0);
	bufferevent_enable(c->bev, EV_WRITE);
}

size_t
conn_stream_write(struct conn *c, const char *data, size_t n)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (n == 0)
		return evbuffer_get_length(out);
	if (c->chunked_out)
		evbuffer_add_printf(out, "%zx\r\n", n);
	evbuffer_add(out, data, n);
	if (c->chunked_out)
		evbuffer_add(out, "\r\n", 2);
	return evbuffer_get_length(out);
}

int
conn_stream_full(const struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) >= STREAM_HIGH;
}

void
conn_stream_end(struct conn *c, struct request *r, int complete)
{
	if (r != c->req) {
		request_free(r);
		return;
	}
	if (complete && c->chunked_out)
		evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
	/* A cut answer can only be told by the connection closing early. */
	if (!complete)
		c->closing = 1;
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	c->state = C_BUSY;
	c->req = NULL;
	request_free(r);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		on_write(c->bev, c);
}
