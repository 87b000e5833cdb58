/*
 * conn: HTTP/1.1 connections on one event loop, behind a handler.
 *
 * The transport accepts nothing itself: a listener hands it sockets. It
 * reads request heads (httpmsg's strict parser) and bodies, keeps a
 * connection for the next request when both sides allow it, and writes
 * answers; it knows nothing of what it serves. Each request becomes a
 * struct conn_req given to the handler (below), which owns it from then on
 * and answers it exactly once, through conn_reply or the conn_stream_*
 * calls. Framing errors, oversized heads and bodies, slow clients and
 * connections past the limit reach the handler as errors, so the handler
 * answers them in its own shape and records them like any request.
 *
 * Everything here runs on the loop's own thread.
 */
#ifndef GW_CONN_H
#define GW_CONN_H

#include <event2/util.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http/httpmsg.h"
#include "lib/err.h"

struct conn;
struct conn_loop;
struct evbuffer;
struct event_base;
struct sockaddr;
struct tls_server;

struct conn_limits {
	size_t max_head;
	size_t max_body;           /* a buffered body's */
	long header_timeout_ms;    /* to read a whole head, from its first byte */
	long body_timeout_ms;      /* to read a whole body; a streamed one, each 16 KiB */
	long idle_timeout_ms;      /* between requests, and for a client not reading */
	long long max_connections; /* named in the refusal of one past it */
};

/*
 * One request as the transport read it. The transport fills it; the
 * handler reads it and, for a streamed body, sets body_limit and takes
 * bytes from stream_in. Owned by the handler from begin on.
 */
struct conn_req {
	struct conn *conn;     /* NULL once answered, or once the client has gone */
	char client[64];       /* the peer's address */
	struct timespec start; /* CLOCK_MONOTONIC, when the request began */

	/* The head, in memory wiped when freed (it carries credentials).
	 * Empty (method "", path NULL, no headers) when none could be read. */
	char *head_buf;
	struct httpmsg_head head; /* points into head_buf */
	char method[16];
	char *path;  /* the target without its query, NUL-terminated */
	char *query; /* after '?', or NULL */

	/* The client certificate its connection's TLS handshake verified
	 * (tls.h), owned; NULL when none. */
	struct tls_peer *peer;

	/* A buffered body, in memory wiped when freed; NUL-terminated. */
	char *body;
	size_t body_len, body_cap;
	uint64_t body_expect; /* its Content-Length, when the head gave one */

	/* A streamed body: decoded bytes the handler has not taken yet,
	 * whether all have arrived, the most allowed (0: none), and why the
	 * stream stopped when it did. */
	struct evbuffer *stream_in;
	int body_done;
	uint64_t body_limit;
	const char *body_limit_key; /* the setting body_limit is, for the 413 */
	/* Read like a buffered body, though streamed: whole within
	 * body_timeout_ms (not each 16 KiB of it), and wiped as it goes and
	 * when freed (it may carry secrets). Set by the handler's head call. */
	int stream_whole;
	struct err stream_error;

	uint64_t body_seen; /* body bytes received, buffered or streamed */
};

/* How the handler wants a request's body read, from its head call. */
enum conn_body {
	CONN_ANSWERED = -1, /* the handler has answered already */
	CONN_BODY_NONE = 0, /* the request takes no body (one sent is a 400) */
	CONN_BODY_BUFFER,   /* read whole into body, up to max_body, then request */
	CONN_BODY_STREAM,   /* request at once; the body arrives in stream_in */
};

/* What a streamed exchange hears through the handler's event call. */
enum conn_event {
	CONN_EV_BODY,    /* more of a streamed body arrived, or all of it */
	CONN_EV_DRAINED, /* a streamed answer has drained: write more */
	CONN_EV_FAILED,  /* the client is gone or its body cannot be read on:
	                    stream_error says why */
};

struct conn_handler {
	/* A request began: its head arrived, or its connection failed before
	 * one could be read. Returns the handler's context for it, passed to
	 * the calls below; NULL when memory ran out (the connection closes
	 * and req is freed). req is the handler's from now on. */
	void *(*begin)(void *arg, struct conn_req *req);
	/* The request cannot go on (a malformed or oversized head or body,
	 * a timeout, the connection limit): answer with e's status. */
	void (*error)(void *ctx, const struct err *e);
	/* The head is in: returns a conn_body. */
	int (*head)(void *ctx);
	/* The buffered body is in, or a streamed body starts. */
	void (*request)(void *ctx);
	/* A conn_event; CONN_EV_FAILED also when the client leaves while
	 * the request is handled. */
	void (*event)(void *ctx, int event);
};

/* The connections of one event loop and how they are served; handler and
 * arg are borrowed and must outlive it. */
struct conn_loop *conn_loop_new(struct event_base *base, const struct conn_handler *handler,
                                void *arg, const struct conn_limits *limits);

/* Frees the loop's connections at once; requests in flight are told
 * CONN_EV_FAILED and go on without them. */
void conn_loop_free(struct conn_loop *l);

/* New connections from now on use these limits, and speak TLS with tls
 * (borrowed while connections are accepted; NULL: plain HTTP). */
void conn_loop_set_limits(struct conn_loop *l, const struct conn_limits *limits);
void conn_loop_set_tls(struct conn_loop *l, struct tls_server *tls);

/* Stopping: idle kept-alive connections close now, the others once their
 * answer is written, and every answer says Connection: close. */
void conn_loop_drain(struct conn_loop *l);

/* Connections open on this loop. */
size_t conn_loop_count(const struct conn_loop *l);

/* Serves the accepted socket fd (taken over) until either side closes.
 * over_limit: accepted past limits.max_connections; its request gets the
 * handler's error (503 too_many_connections) once its head is in. */
void conn_accept(struct conn_loop *l, evutil_socket_t fd, const struct sockaddr *sa,
                 int over_limit);

/* Connections open in the process, every loop's, for the limit. */
size_t conn_total(void);

/* TLS handshakes that failed, in the process. */
unsigned long conn_tls_failures(void);

/*
 * The one answer to req: status, header lines ("Name: value"), body. It
 * is written as soon as it can be, and req is no longer its connection's
 * (req->conn is NULL after); when the client has gone already, nothing
 * is sent. Content-Length and, when the connection will close,
 * Connection: close are added.
 */
void conn_reply(struct conn_req *req, int status, const char *const *headers, size_t nheaders,
                const char *body, size_t len);

/*
 * A streamed answer: the head (content_length -1 sends the body chunked),
 * the body as it comes, then the end (complete 0 closes the connection, so
 * the client can tell the answer was cut). begin returns -1 when the
 * client has gone. While it streams, the handler hears CONN_EV_DRAINED
 * whenever the output has drained; conn_stream_full says when to stop
 * writing until then (1 also when the client has gone).
 */
int conn_stream_begin(struct conn_req *req, int status, const char *const *headers, size_t nheaders,
                      long long content_length);
void conn_stream_write(struct conn_req *req, const char *data, size_t n);
int conn_stream_full(const struct conn_req *req);
void conn_stream_end(struct conn_req *req, int complete);

/* Reading a streamed body resumes once the handler has taken enough. */
void conn_stream_resume(struct conn_req *req);

/* Frees a request the handler is done with; NULL is fine. A request still
 * on its connection (never answered) is taken off it first. */
void conn_req_free(struct conn_req *req);

/* The first value of a header, NUL-terminated in dst (n bytes), or NULL
 * when absent or longer than n - 1. */
const char *conn_req_header(const struct conn_req *req, const char *name, char *dst, size_t n);

/* Milliseconds since the request began. */
double conn_req_elapsed_ms(const struct conn_req *req);

/* The reason phrase for a status code (RFC 9110), "Status" for unknown. */
const char *conn_reason(int status);

#endif
