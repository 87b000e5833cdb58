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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/httpmsg.h"
#include "http/tls.h"
#include "lib/log.h"
#include "lib/secmem.h"
#include "lib/text.h"

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

/* The most one read takes in while a request is handled (see dispatch);
 * otherwise libevent's default (0 asks for it). */
#define BUSY_READ 256

/* A buffered body past this gets all the room its Content-Length asks for
 * at once. */
#define BODY_STEP (1024 * 1024)

struct conn_loop {
	struct event_base *base;
	const struct conn_handler *h;
	void *arg;
	struct conn_limits limits;
	struct tls_server *tls; /* borrowed; NULL: plain HTTP */
	int draining;
	struct conn *live;
	size_t nlive;
};

struct conn {
	struct conn *prev, *next;
	struct conn_loop *loop;
	struct conn_limits limits; /* as they were when it was accepted */
	struct bufferevent *bev;
	struct event *timer;
	struct event *sent; /* an answer written in one go: on_write from the loop */
	char client[64];
	enum conn_state state;
	struct conn_req *req; /* the current request, until it is answered */
	void *ctx;            /* the handler's for req */
	struct httpmsg_chunked *chunked;
	uint64_t body_left;
	int body_pending; /* the current request has body bytes not yet read */
	int body_too_large;
	int keep_alive;
	int closing;   /* close once the answer is written */
	int peer_done; /* the client sent its end while an answer was due */
	int head_started;
	int chunked_out;              /* the streamed answer is sent chunked */
	int tls;                      /* the bufferevent is a TLS one */
	int handshaken;               /* its handshake is complete */
	int over_limit;               /* accepted beyond limits.max_connections: answered 503 */
	struct tls_peer *peer;        /* the verified client certificate, or NULL */
	uint64_t stream_mark;         /* body_seen when the body timer was last armed */
	long long stream_deadline_ms; /* a stream_whole body's, on the monotonic clock */
};

/* What limits.max_connections counts, across every loop. */
static atomic_size_t nall;
static atomic_ulong tls_failures;

size_t
conn_total(void)
{
	return atomic_load_explicit(&nall, memory_order_relaxed);
}

unsigned long
conn_tls_failures(void)
{
	return atomic_load_explicit(&tls_failures, memory_order_relaxed);
}

/* ---- requests ---- */

static struct conn_req *
req_new(struct conn *c)
{
	struct conn_req *req = calloc(1, sizeof(*req));

	if (req == NULL)
		return NULL;
	req->conn = c;
	clock_gettime(CLOCK_MONOTONIC, &req->start);
	text_copy(req->client, sizeof(req->client), c->client);
	return req;
}

/* Takes req off its connection: what is sent from now on goes nowhere. */
static void
detach(struct conn_req *req)
{
	if (req->conn && req->conn->req == req) {
		req->conn->req = NULL;
		req->conn->ctx = NULL;
	}
	req->conn = NULL;
}

static void drain_wiped(struct evbuffer *in, size_t n);

void
conn_req_free(struct conn_req *req)
{
	if (req == NULL)
		return;
	detach(req);
	/* Uploaded file bytes are the client's data on their way upstream,
	 * not secrets the gateway brokers: they are not wiped. A body read
	 * whole, streamed or not, may carry domain secrets. */
	if (req->stream_in) {
		if (req->stream_whole)
			drain_wiped(req->stream_in, evbuffer_get_length(req->stream_in));
		evbuffer_free(req->stream_in);
	}
	secmem_free(req->head_buf);
	free(req->head.headers);
	secmem_free(req->body);
	free(req->path);
	free(req->query);
	tls_peer_free(req->peer);
	free(req);
}

static const char *
rebase(const char *p, const char *from, char *to)
{
	return p ? to + (p - from) : NULL;
}

/* Copies the parsed head, which points into buf, into req. */
static int
take_head(struct conn_req *req, const char *buf, size_t len, const struct httpmsg_head *h)
{
	struct httpmsg_header *lines;
	const char *q;
	size_t i, plen;

	/* Just the lines the head has, not the parser's HTTPMSG_MAX_HEADERS. */
	lines = calloc(h->nheaders ? h->nheaders : 1, sizeof(*lines));
	req->head_buf = secmem_alloc(len + 1);
	if (lines == NULL || req->head_buf == NULL) {
		free(lines); /* req->head stays empty: nothing points into buf */
		return -1;
	}
	memcpy(req->head_buf, buf, len);
	req->head_buf[len] = '\0';
	req->head = *h;
	req->head.headers = lines;
	req->head.method = rebase(h->method, buf, req->head_buf);
	req->head.target = rebase(h->target, buf, req->head_buf);
	for (i = 0; i < h->nheaders; i++) {
		req->head.headers[i] = h->headers[i];
		req->head.headers[i].name = rebase(h->headers[i].name, buf, req->head_buf);
		req->head.headers[i].value = rebase(h->headers[i].value, buf, req->head_buf);
	}
	text_copyn(req->method, sizeof(req->method), h->method, h->method_len);
	q = memchr(h->target, '?', h->target_len);
	plen = q ? (size_t)(q - h->target) : h->target_len;
	req->path = strndup(h->target, plen);
	if (q)
		req->query = strndup(q + 1, h->target_len - plen - 1);
	if (req->path == NULL || (q && req->query == NULL))
		return -1;
	return 0;
}

/* Appends buffered body bytes; -1 when memory runs out. */
static int
append_body(struct conn_req *req, const char *data, size_t n)
{
	size_t cap;
	char *grown;

	if (req->body_len + n + 1 > req->body_cap) {
		cap = req->body_cap ? req->body_cap : 4096;
		while (cap < req->body_len + n + 1)
			cap *= 2;
		/* Once a client has sent a mebibyte of what its Content-Length
		 * announced, the rest gets room in one step: no more copies, and
		 * no doubling past the size. Before that, room follows the bytes,
		 * so a head alone cannot make the gateway reserve much. */
		if (req->body_expect >= req->body_len + n &&
		    (req->body_len + n >= BODY_STEP || cap > req->body_expect))
			cap = (size_t)req->body_expect + 1;
		grown = secmem_realloc(req->body, cap);
		if (grown == NULL)
			return -1;
		req->body = grown;
		req->body_cap = cap;
	}
	memcpy(req->body + req->body_len, data, n);
	req->body_len += n;
	req->body_seen += n;
	req->body[req->body_len] = '\0';
	return 0;
}

const char *
conn_req_header(const struct conn_req *req, const char *name, char *dst, size_t n)
{
	size_t len;
	const char *v = httpmsg_header(&req->head, name, &len);

	if (v == NULL || len >= n)
		return NULL;
	memcpy(dst, v, len);
	dst[len] = '\0';
	return dst;
}

double
conn_req_elapsed_ms(const struct conn_req *req)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - req->start.tv_sec) * 1000.0 +
	       (double)(now.tv_nsec - req->start.tv_nsec) / 1e6;
}

/* A new request on c, handed to the handler; -1 when memory ran out (c is
 * freed then). */
static int conn_begin(struct conn *c);

/* ---- connections ---- */

static void
conn_free(struct conn *c)
{
	struct conn_loop *l = c->loop;

	/* A request still being handled finishes, and is recorded, without
	 * us; the handler hears of it, since a stream waits on us. */
	if (c->req) {
		struct conn_req *req = c->req;
		void *ctx = c->ctx;

		detach(req);
		if (req->stream_error.status == 0)
			err_set(&req->stream_error, 400, ERR_INVALID, "client_closed", NULL,
			        "the client closed the connection before the exchange was "
			        "complete");
		l->h->event(ctx, CONN_EV_FAILED);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		l->live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	l->nlive--;
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

static void
arm(struct conn *c, long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(c->timer, &tv);
}

static long long
mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* How long a paused stream's timer may run when reading resumes: the rest
 * of a stream_whole body's deadline (at least 1 ms), else a fresh
 * body_timeout_ms for the next 16 KiB. */
static long
stream_time_left(const struct conn *c)
{
	long long left = c->stream_deadline_ms - mono_ms();

	if (!c->req->stream_whole)
		return c->limits.body_timeout_ms;
	return left > 1 ? (long)left : 1;
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
		if (append_body(c->req, v.iov_base, k) < 0)
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

/* The handler answers a request the connection cannot continue after. */
static void
refuse(struct conn *c, const struct err *e)
{
	c->closing = 1;
	c->state = C_BUSY;
	bufferevent_disable(c->bev, EV_READ);
	evtimer_del(c->timer);
	c->loop->h->error(c->ctx, e);
}

static void
refuse_oom(struct conn *c)
{
	struct err e;

	err_set(&e, 503, ERR_INTERNAL, "out_of_memory", NULL,
	        "the gateway is out of memory; try again");
	refuse(c, &e);
}

/* Reading stays on while the request is handled: turning it off and on
 * again costs two epoll_ctl calls a request. What a pipelining client sends
 * meanwhile waits in the input, bounded by the read watermark, and is read
 * in small pieces: libevent gives a read room for what FIONREAD reports,
 * or 4 KiB when it reports nothing, as it does at a client's close, so
 * every client that left while its request was handled held an empty 8 KiB
 * chain until then (some 70 MB when 9,000 left at once). */
static void
dispatch(struct conn *c)
{
	bufferevent_set_max_single_read(c->bev, BUSY_READ);
	c->state = C_BUSY;
	c->body_pending = 0;
	evtimer_del(c->timer);
	c->loop->h->request(c->ctx);
}

static void
emit_body(void *arg, const char *data, size_t n)
{
	struct conn *c = arg;
	struct conn_req *req = c->req;

	if (c->state == C_STREAM) {
		if (evbuffer_add(req->stream_in, data, n) < 0)
			c->body_too_large = 1;
		return;
	}
	if (c->body_too_large || req->body_len + n > c->limits.max_body ||
	    append_body(req, data, n) < 0)
		c->body_too_large = 1;
}

/* Tells a streaming handler its body failed; it answers. */
static void stream_failed(struct conn *c, int status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void
stream_failed(struct conn *c, int status, const char *code, const char *fmt, ...)
{
	struct conn_req *req = c->req;
	va_list ap;

	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	evtimer_del(c->timer);
	va_start(ap, fmt);
	err_vset(&req->stream_error, status, ERR_INVALID, code, NULL, fmt, ap);
	va_end(ap);
	c->loop->h->event(c->ctx, CONN_EV_FAILED);
}

/* Moves what has arrived of a streamed body to the handler. Returns 1 once
 * the body is complete or has failed, 0 while more is to come. */
static int
read_stream(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct conn_req *req = c->req;
	size_t avail = evbuffer_get_length(in), before, n, consumed = 0;
	struct err e;
	int rc = 0;

	if (avail == 0)
		return 0;
	before = evbuffer_get_length(req->stream_in);
	if (c->chunked == NULL) {
		n = avail < c->body_left ? avail : (size_t)c->body_left;
		evbuffer_remove_buffer(in, req->stream_in, n);
		c->body_left -= n;
		rc = c->body_left == 0;
	} else {
		err_clear(&e);
		rc = httpmsg_chunked_feed(c->chunked,
		                          (const char *)evbuffer_pullup(in, (ev_ssize_t)avail),
		                          avail, &consumed, emit_body, c, &e);
		if (req->stream_whole)
			drain_wiped(in, consumed);
		else
			evbuffer_drain(in, consumed);
		if (rc < 0) {
			req->stream_error = e;
			c->closing = 1;
			bufferevent_disable(c->bev, EV_READ);
			c->loop->h->event(c->ctx, CONN_EV_FAILED);
			return 1;
		}
	}
	req->body_seen += evbuffer_get_length(req->stream_in) - before;
	if (c->body_too_large || (req->body_limit && req->body_seen > req->body_limit)) {
		stream_failed(c, 413, "request_too_large",
		              "the request body exceeds the limit of %lld bytes (%s)",
		              (long long)req->body_limit,
		              req->body_limit_key ? req->body_limit_key : "this gateway's");
		return 1;
	}
	if (!req->stream_whole && req->body_seen - c->stream_mark >= STREAM_PROGRESS) {
		c->stream_mark = req->body_seen;
		arm(c, c->limits.body_timeout_ms);
	}
	if (rc == 1) {
		req->body_done = 1;
		c->body_pending = 0;
		c->state = C_BUSY;
		evtimer_del(c->timer);
		bufferevent_disable(c->bev, EV_READ);
	} else if (evbuffer_get_length(req->stream_in) >= STREAM_HIGH) {
		/* Waiting on the upstream, not the client: no timer meanwhile. */
		bufferevent_disable(c->bev, EV_READ);
		evtimer_del(c->timer);
	}
	c->loop->h->event(c->ctx, CONN_EV_BODY);
	return rc;
}

void
conn_stream_resume(struct conn_req *req)
{
	struct conn *c = req->conn;

	if (c == NULL || c->state != C_STREAM || evbuffer_get_length(req->stream_in) >= STREAM_HIGH)
		return;
	if (!evtimer_pending(c->timer, NULL)) {
		c->stream_mark = req->body_seen;
		arm(c, stream_time_left(c));
	}
	bufferevent_enable(c->bev, EV_READ);
	(void)read_stream(c);
}

static void
too_large(struct conn *c)
{
	struct err e;

	err_set(&e, 413, ERR_INVALID, "request_too_large", NULL,
	        "request body exceeds this gateway's limit of %zu bytes", c->limits.max_body);
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
			refuse_oom(c);
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
	struct conn_req *req = c->req;

	req->stream_in = evbuffer_new();
	if (h->chunked)
		c->chunked = httpmsg_chunked_new();
	else
		c->body_left = (uint64_t)h->content_length;
	if (req->stream_in == NULL || (h->chunked && c->chunked == NULL)) {
		refuse_oom(c);
		return 0;
	}
	c->state = C_STREAM;
	c->body_too_large = 0;
	c->stream_mark = 0;
	c->stream_deadline_ms = mono_ms() + c->limits.body_timeout_ms;
	arm(c, c->limits.body_timeout_ms);
	c->loop->h->request(c->ctx);
	/* The handler may have answered at once (a size over the limit, a bad
	 * multipart type): then the rest of the body is not read. */
	if (c->req != req || c->state != C_STREAM)
		return 0;
	if (h->expect_continue && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
		continue_100(c);
	return 1;
}

/* Sets up reading the body the handler asked for; 1 to go on reading. */
static int
start_body(struct conn *c, int how)
{
	const struct httpmsg_head *h = &c->req->head;
	struct err e;

	if (!c->body_pending) {
		dispatch(c);
		return 0;
	}
	if (how == CONN_BODY_NONE) {
		err_set(&e, 400, ERR_INVALID, "unexpected_body", NULL,
		        "%s %s takes no request body", c->req->method, c->req->path);
		refuse(c, &e);
		return 0;
	}
	if (how == CONN_BODY_STREAM)
		return start_stream(c);
	if (h->content_length > 0 && (uint64_t)h->content_length > c->limits.max_body) {
		too_large(c);
		return 0;
	}
	if (h->chunked) {
		c->chunked = httpmsg_chunked_new();
		if (c->chunked == NULL) {
			refuse_oom(c);
			return 0;
		}
	} else {
		c->body_left = (uint64_t)h->content_length;
		c->req->body_expect = c->body_left;
	}
	c->state = C_BODY;
	c->body_too_large = 0;
	arm(c, c->limits.body_timeout_ms);
	if (h->expect_continue && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
		continue_100(c);
	return 1;
}

static int
conn_begin(struct conn *c)
{
	struct conn_req *req = req_new(c);
	void *ctx = req ? c->loop->h->begin(c->loop->arg, req) : NULL;

	if (ctx == NULL) {
		conn_req_free(req);
		conn_free(c);
		return -1;
	}
	c->req = req;
	c->ctx = ctx;
	return 0;
}

/* Returns 1 when the head was read and the body can follow, -1 when the
 * connection is gone (freed). */
static int
read_head(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t avail = evbuffer_get_length(in), look;
	struct httpmsg_header slots[HTTPMSG_MAX_HEADERS];
	struct httpmsg_head h;
	const char *p;
	struct err e;
	ssize_t n;
	int how;

	if (avail == 0)
		return 0;
	if (!c->head_started) {
		c->head_started = 1;
		arm(c, c->limits.header_timeout_ms);
	}
	look = avail < c->limits.max_head ? avail : c->limits.max_head;
	p = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
	err_clear(&e);
	n = httpmsg_parse(p, look, c->limits.max_head, &h, slots, &e);
	if (n == 0)
		return 0;
	if (conn_begin(c) < 0)
		return -1;
	c->head_started = 0;
	if (n < 0) {
		drain_wiped(in, avail);
		refuse(c, &e);
		return 0;
	}
	if (take_head(c->req, p, (size_t)n, &h) < 0) {
		drain_wiped(in, (size_t)n);
		refuse_oom(c);
		return 0;
	}
	drain_wiped(in, (size_t)n);
	c->keep_alive = h.keep_alive;
	/* Set before the handler sees it: an answer given now, with the body
	 * unread, must close the connection rather than parse the body as a
	 * head. */
	c->body_pending = h.chunked || h.content_length > 0;
	if (c->peer && (c->req->peer = tls_peer_dup(c->peer)) == NULL) {
		refuse_oom(c);
		return 0;
	}
	/* Past limits.max_connections, a connection is read as far as its
	 * head, so its refusal is answered and recorded like any other. */
	if (c->over_limit) {
		err_set(&e, 503, ERR_INTERNAL, "too_many_connections", NULL,
		        "the gateway has its maximum of %lld client connections open; try again "
		        "shortly",
		        c->limits.max_connections);
		refuse(c, &e);
		return 0;
	}
	c->state = C_BUSY;
	evtimer_del(c->timer);
	how = c->loop->h->head(c->ctx);
	if (how == CONN_ANSWERED || c->req == NULL)
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

static void on_event(struct bufferevent *bev, short what, void *arg);

static void
linger(struct conn *c)
{
	c->state = C_LINGER;
	bufferevent_set_max_single_read(c->bev, 0);
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
		if (c->req)
			c->loop->h->event(c->ctx, CONN_EV_DRAINED);
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
	bufferevent_set_max_single_read(c->bev, 0);
	httpmsg_chunked_free(c->chunked);
	c->chunked = NULL;
	arm(c, c->limits.idle_timeout_ms);
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
		arm(c, c->limits.idle_timeout_ms);
}

static void
handshake_failed(struct conn *c)
{
	unsigned long e;
	char why[256] = "connection closed";

	while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
		ERR_error_string_n(e, why, sizeof(why));
	atomic_fetch_add_explicit(&tls_failures, 1, memory_order_relaxed);
	log_msg(LOG_DEBUG, NULL, "client %s: TLS handshake failed: %s", c->client, why);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct conn_req *req;
	void *ctx;
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
	} else if (c->state == C_BODY && c->req && (what & BEV_EVENT_EOF)) {
		/* The client gave up mid-body; the request is still recorded. */
		req = c->req;
		ctx = c->ctx;
		detach(req);
		err_set(&e, 400, ERR_INVALID, "incomplete_body", NULL,
		        "the client closed the connection before sending the whole body");
		c->loop->h->error(ctx, &e);
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
	if (c->state == C_STREAM && c->req->stream_whole) {
		stream_failed(c, 408, "request_timeout",
		              "the request body did not arrive within %ld ms",
		              c->limits.body_timeout_ms);
		return;
	}
	if (c->state == C_STREAM) {
		stream_failed(c, 408, "request_timeout",
		              "no part of the upload arrived within %lld ms",
		              (long long)c->limits.body_timeout_ms);
		return;
	}
	if (c->state == C_BODY) {
		err_set(&e, 408, ERR_INVALID, "request_timeout", NULL,
		        "the request body did not arrive within %ld ms", c->limits.body_timeout_ms);
	} else if (c->state == C_HEAD && c->head_started) {
		if (conn_begin(c) < 0)
			return;
		err_set(&e, 408, ERR_INVALID, "request_timeout", NULL,
		        "the request head did not arrive within %ld ms",
		        c->limits.header_timeout_ms);
	} else {
		conn_free(c); /* idle keep-alive connection */
		return;
	}
	refuse(c, &e);
}

void
conn_accept(struct conn_loop *l, evutil_socket_t fd, const struct sockaddr *sa, int over_limit)
{
	struct conn *c = calloc(1, sizeof(*c));
	SSL *ssl = NULL;
	char host[INET6_ADDRSTRLEN] = "?";
	struct timeval wtv;
	int one = 1;

	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->loop = l;
	c->limits = l->limits;
	c->over_limit = over_limit;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, host,
		          sizeof(host));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		          host, sizeof(host));
	snprintf(c->client, sizeof(c->client), "%s", host);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	c->next = l->live;
	if (l->live)
		l->live->prev = c;
	l->live = c;
	l->nlive++;
	atomic_fetch_add_explicit(&nall, 1, memory_order_relaxed);

	if (l->tls) {
		c->tls = 1;
		ssl = tls_server_ssl(l->tls);
		if (ssl)
			c->bev = bufferevent_openssl_socket_new(
			        l->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		/* Clients that close without a TLS close_notify are the norm;
		 * their close reads as an end, not an error. */
		if (c->bev)
			bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	} else {
		c->bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	c->timer = evtimer_new(l->base, on_timeout, c);
	c->sent = event_new(l->base, -1, 0, on_sent, c);
	if (c->bev == NULL || c->timer == NULL || c->sent == NULL) {
		if (c->bev == NULL) {
			SSL_free(ssl);
			evutil_closesocket(fd);
		}
		conn_free(c);
		return;
	}
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	/* A client that stops reading its answer is cut off too. */
	wtv.tv_sec = c->limits.idle_timeout_ms / 1000;
	wtv.tv_usec = (c->limits.idle_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(c->bev, NULL, &wtv);
	/* Past a head and a little more, reading pauses until it is used. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, c->limits.max_head + PIPELINE_SLACK);
	bufferevent_enable(c->bev, EV_READ);
	/* A TLS handshake must be done within the time a head gets. */
	arm(c, c->tls ? c->limits.header_timeout_ms : c->limits.idle_timeout_ms);
}

/* ---- the loop ---- */

struct conn_loop *
conn_loop_new(struct event_base *base, const struct conn_handler *handler, void *arg,
              const struct conn_limits *limits)
{
	struct conn_loop *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->base = base;
	l->h = handler;
	l->arg = arg;
	l->limits = *limits;
	return l;
}

void
conn_loop_free(struct conn_loop *l)
{
	if (l == NULL)
		return;
	while (l->live)
		conn_free(l->live);
	free(l);
}

void
conn_loop_set_limits(struct conn_loop *l, const struct conn_limits *limits)
{
	l->limits = *limits;
}

void
conn_loop_set_tls(struct conn_loop *l, struct tls_server *tls)
{
	l->tls = tls;
}

void
conn_loop_drain(struct conn_loop *l)
{
	struct conn *c, *next;

	l->draining = 1;
	for (c = l->live; c; c = next) {
		next = c->next;
		if (c->state == C_HEAD && !c->head_started && c->req == NULL)
			conn_free(c);
	}
}

size_t
conn_loop_count(const struct conn_loop *l)
{
	return l->nlive;
}

/* ---- answers ---- */

const char *
conn_reason(int status)
{
	static const struct {
		int status;
		const char *reason;
	} reasons[] = {
	        {100, "Continue"},
	        {200, "OK"},
	        {201, "Created"},
	        {202, "Accepted"},
	        {204, "No Content"},
	        {206, "Partial Content"},
	        {301, "Moved Permanently"},
	        {302, "Found"},
	        {304, "Not Modified"},
	        {307, "Temporary Redirect"},
	        {308, "Permanent Redirect"},
	        {400, "Bad Request"},
	        {401, "Unauthorized"},
	        {402, "Payment Required"},
	        {403, "Forbidden"},
	        {404, "Not Found"},
	        {405, "Method Not Allowed"},
	        {406, "Not Acceptable"},
	        {408, "Request Timeout"},
	        {409, "Conflict"},
	        {410, "Gone"},
	        {411, "Length Required"},
	        {412, "Precondition Failed"},
	        {413, "Content Too Large"},
	        {414, "URI Too Long"},
	        {415, "Unsupported Media Type"},
	        {416, "Range Not Satisfiable"},
	        {417, "Expectation Failed"},
	        {422, "Unprocessable Content"},
	        {425, "Too Early"},
	        {426, "Upgrade Required"},
	        {428, "Precondition Required"},
	        {429, "Too Many Requests"},
	        {431, "Request Header Fields Too Large"},
	        {500, "Internal Server Error"},
	        {501, "Not Implemented"},
	        {502, "Bad Gateway"},
	        {503, "Service Unavailable"},
	        {504, "Gateway Timeout"},
	        {505, "HTTP Version Not Supported"},
	};
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Status";
}

/* The connection closes after this answer: the client asked, the body was
 * not read, or the loop is stopping. */
static void
decide_close(struct conn *c)
{
	if (!c->keep_alive || c->body_pending || c->loop->draining)
		c->closing = 1;
}

static void
add_head(struct evbuffer *out, int status, const char *const *headers, size_t nheaders)
{
	size_t i;

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, conn_reason(status));
	for (i = 0; i < nheaders; i++)
		evbuffer_add_printf(out, "%s\r\n", headers[i]);
}

/* Writes what it can of out now, from the caller's turn of the loop
 * rather than the next. A socket bufferevent keeps the start of its output
 * frozen against everyone but itself, so it is thawed for this write as
 * the bufferevent does for its own. Returns 1 when something was written. */
static int
write_now(struct conn *c, struct evbuffer *out)
{
	int n;

	evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, bufferevent_getfd(c->bev));
	evbuffer_freeze(out, 1);
	return n > 0;
}

void
conn_reply(struct conn_req *req, int status, const char *const *headers, size_t nheaders,
           const char *body, size_t len)
{
	struct conn *c = req->conn;
	struct evbuffer *out;

	if (c == NULL || c->req != req)
		return;
	out = bufferevent_get_output(c->bev);
	decide_close(c);
	if (c->state != C_BUSY)
		c->closing = 1;
	if (c->state == C_STREAM)
		bufferevent_disable(c->bev, EV_READ);
	c->state = C_BUSY;
	/* Off while the answer is put together, so adding to the output does
	 * not ask epoll to watch for writing: most answers go in one write. */
	if (!c->tls)
		bufferevent_disable(c->bev, EV_WRITE);
	add_head(out, status, headers, nheaders);
	evbuffer_add_printf(out, "Content-Length: %zu\r\n%s\r\n", len,
	                    c->closing ? "Connection: close\r\n" : "");
	/* An answer to HEAD has the head a GET would get, and no body. */
	if (len && strcmp(req->method, "HEAD") != 0)
		evbuffer_add(out, body, len);
	detach(req);
	if (!c->tls && write_now(c, out) && evbuffer_get_length(out) == 0) {
		event_active(c->sent, EV_WRITE, 1);
		return;
	}
	/* The rest, or an error to report, is the bufferevent's. */
	bufferevent_enable(c->bev, EV_WRITE);
}

int
conn_stream_begin(struct conn_req *req, int status, const char *const *headers, size_t nheaders,
                  long long content_length)
{
	struct conn *c = req->conn;
	struct evbuffer *out;

	if (c == NULL || c->req != req)
		return -1;
	out = bufferevent_get_output(c->bev);
	decide_close(c);
	c->state = C_STREAM_OUT;
	c->chunked_out = content_length < 0;
	add_head(out, status, headers, nheaders);
	if (c->chunked_out)
		evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
	else
		evbuffer_add_printf(out, "Content-Length: %lld\r\n", content_length);
	evbuffer_add_printf(out, "%s\r\n", c->closing ? "Connection: close\r\n" : "");
	/* The write callback now says when the answer has drained enough. */
	bufferevent_setwatermark(c->bev, EV_WRITE, STREAM_LOW, 0);
	bufferevent_enable(c->bev, EV_WRITE);
	return 0;
}

void
conn_stream_write(struct conn_req *req, const char *data, size_t n)
{
	struct conn *c = req->conn;
	struct evbuffer *out;

	if (c == NULL || n == 0)
		return;
	out = bufferevent_get_output(c->bev);
	if (c->chunked_out)
		evbuffer_add_printf(out, "%zx\r\n", n);
	evbuffer_add(out, data, n);
	if (c->chunked_out)
		evbuffer_add(out, "\r\n", 2);
}

int
conn_stream_full(const struct conn_req *req)
{
	return req->conn == NULL ||
	       evbuffer_get_length(bufferevent_get_output(req->conn->bev)) >= STREAM_HIGH;
}

void
conn_stream_end(struct conn_req *req, int complete)
{
	struct conn *c = req->conn;

	if (c == NULL || c->req != req)
		return;
	if (complete && c->chunked_out)
		evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
	/* A cut answer can only be told by the connection closing early. */
	if (!complete)
		c->closing = 1;
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	c->state = C_BUSY;
	detach(req);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		on_write(c->bev, c);
}
