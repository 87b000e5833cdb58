/*
 * conn: one client connection speaking HTTP/1.1.
 *
 * Reads a request head, then its body, into a struct request, hands it to
 * the front, and writes the one answer back; keeps the connection for the
 * next request when both sides allow it. Framing errors, oversized heads
 * and bodies and slow clients are answered here, in the error shape.
 */
#ifndef GW_CONN_H
#define GW_CONN_H

#include <event2/util.h>
#include <stddef.h>

struct server;
struct request;
struct sockaddr;

struct conn_limits {
	size_t max_head;
	size_t max_body;
	long header_timeout_ms; /* to read a whole head, from its first byte */
	long body_timeout_ms;   /* to read a whole body */
	long idle_timeout_ms;   /* between requests on a kept-alive connection */
};

/* Serves the accepted socket fd (taken over) until either side closes,
 * over TLS when the server has a TLS context. over_limit: accepted past
 * limits.max_connections; its request is answered 503 once its head is in. */
struct conn *conn_new(struct server *srv, evutil_socket_t fd, const struct sockaddr *sa, int salen,
                      int over_limit);

/* Live connections on the calling thread's event loop, for shutdown. */
size_t conn_count(void);

/* Live connections in the process, every worker's, for limits. */
size_t conn_total(void);

/* Closes the calling loop's connections that are idle between requests
 * (at shutdown);
 * the others close once their answer is written. */
void conn_drain(void);

/* Closes every connection of the calling loop at once (at exit); requests in flight are
 * abandoned. */
void conn_close_all(void);

/* Sends the answer to r, which must be the connection's current request,
 * and frees r once it has been written. headers are "Name: value" lines. */
void conn_send(struct conn *c, struct request *r, int status, const char *const *headers,
               size_t nheaders, const char *body, size_t len);

/* Reading a streamed body resumes once its handler has taken enough. */
void conn_stream_resume(struct conn *c);

/*
 * A streamed answer to the current request: the head (content_length -1
 * sends the body chunked), then the body as it comes, then the end, which
 * frees r (complete 0 closes the connection, so the client can tell the
 * answer was cut). While it streams, the request's on_event hears
 * REQUEST_DRAINED whenever the output has drained; conn_stream_full says
 * when to stop writing until then.
 */
void conn_stream_begin(struct conn *c, int status, const char *const *headers, size_t nheaders,
                       long long content_length);
size_t conn_stream_write(struct conn *c, const char *data, size_t n);
int conn_stream_full(const struct conn *c);
void conn_stream_end(struct conn *c, struct request *r, int complete);

#endif
