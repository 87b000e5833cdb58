/*
 * request: one client request and everything allocated for it.
 *
 * Each pipeline step reads and fills this context; it is freed in one
 * place, request_free, whichever way the request ended. It outlives its
 * connection when the client goes away while the upstream is still
 * answering, so the audit record is still written.
 */
#ifndef GW_REQUEST_H
#define GW_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/err.h"
#include "http/httpmsg.h"
#include "http/upstream.h"

/* Longest identifier accepted in a path, and longest upstream path plus
 * query. */
#define REQUEST_ID_MAX    128
#define REQUEST_PATH_MAX  2048
#define REQUEST_BODY_STEP (1024 * 1024) /* a body past this gets all its room at once */

struct conn;
struct evbuffer;
struct server_snapshot;
struct tls_peer;
struct store_op;
struct policy;
struct tenant;
struct multipart;
struct server;
struct upstream_call;
struct route;

struct request {
	struct server *srv;
	struct conn *conn; /* NULL once the client has gone */

	/* Who is asking and under which rules: the tenant its key or
	 * certificate names (NULL: the organization), and that tenant's policy
	 * or the organization's. Set once the route is known. */
	const struct tenant *tenant;
	const struct policy *policy;
	struct err shadow; /* the first denial a rule in shadow mode let pass */

	/* Asking the shared store (tenancy.c): the call under way, what runs
	 * when it is done, whether a create holds a live-container slot, a
	 * Retry-After for the answer, and the page being filtered. */
	struct store_op *store_op;
	void (*next)(struct request *r);
	int rate; /* the limit being counted */
	int holds_slot;
	char retry_after[16];
	json_t *list_page;

	/* An upstream answer kept for after the store has been told, and a
	 * tenant's list being gathered from the upstream's pages. */
	char *answer;
	size_t answer_len;
	int answer_status;
	char answer_type[128];
	json_t *list_acc;

	/* The first upstream call waits for its intent line (proxy.c). */
	int intent_written;
	int intent_pending; /* its durable callback has not run yet */
	struct {
		struct upstream_req up;
		int json_body;
		upstream_done_fn done;
		char *path; /* owned */
	} pending;
	char up_content_type[256];
	int list_pages;
	long list_want;
	int list_more;
	char list_after[REQUEST_ID_MAX + 1];
	struct timespec start;
	char id[40];
	char client[64];
	int replied;

	/* The configuration and policy in force when the request started (a
	 * reference, see server.h): use server_snapshot_config(r->snap) and
	 * server_snapshot_policy(r->snap) so a reload cannot change them
	 * under the request. Its place among the server's requests in flight. */
	struct server_snapshot *snap;
	struct request *live_prev, *live_next;

	/* The client certificate the connection's TLS handshake verified
	 * (mutual TLS), owned; NULL when none. tls_peer_subject() and
	 * tls_peer_sans() (tls.h) say who it names, for tenants_by_cert(). */
	struct tls_peer *client_cert;

	/* The bearer key as authentication read it, pointing into head_buf;
	 * NULL when the request sent none. What goes upstream is built from
	 * this, never from the client's spelling of the header. */
	const char *bearer;
	size_t bearer_len;

	/* The head, copied out of the connection's buffer. */
	char *head_buf;
	struct httpmsg_head head;
	char method[16];
	char *path;  /* target without the query, NUL-terminated */
	char *query; /* after '?', or NULL */

	/* Routing: the path's identifiers, and the upstream's path and query
	 * rebuilt from what was checked. */
	const struct route *route;
	char container_id[REQUEST_ID_MAX + 1];
	char file_id[REQUEST_ID_MAX + 1];
	char *upstream_path; /* owned; at most REQUEST_PATH_MAX - 1 bytes */

	/* The body, in memory that is wiped when freed. */
	char *body;
	size_t body_len, body_cap;
	uint64_t body_expect; /* Content-Length, when the head gave one */

	/* Body bytes received in all (buffered or streamed). A streamed body:
	 * decoded bytes the handler has not taken yet, and whether they all
	 * have arrived. A streamed answer: bytes sent. */
	struct evbuffer *stream_in;
	uint64_t body_seen;
	uint64_t body_limit; /* 0: none; set by the handler */
	int body_done;
	struct err stream_error; /* why the stream stopped, when it did */
	size_t bytes_out;
	int stream_status;           /* status of a streamed answer */
	int paused;                  /* the upstream call waits on us */
	struct multipart *multipart; /* an upload's body, as checked so far */

	/* Set by a handler that streams: told when more body has arrived or
	 * all of it (REQUEST_BODY), when the answer being streamed has drained
	 * (REQUEST_DRAINED), and when the client is gone or the body cannot be
	 * read on (REQUEST_FAILED, stream_error says why). */
	void (*on_event)(struct request *r, int event);

	/* The pipeline's work. */
	json_t *doc;   /* the document to forward */
	char *forward; /* doc serialized, as sent upstream */
	size_t forward_len;
	struct upstream_call *call;

	/* Collected for the audit record. */
	char upstream_request_id[128];
	int upstream_status;
	double upstream_ms;
	char audit_container_id[REQUEST_ID_MAX + 1];
	json_t *remediation;
	char memory_limit[8];
	json_t *audit_network_policy; /* redacted */
	json_t *adjustments;
	json_t *violations;
};

enum { REQUEST_BODY, REQUEST_DRAINED, REQUEST_FAILED };

/* A new request for conn; takes nothing. NULL when memory runs out. */
struct request *request_new(struct server *srv, struct conn *conn, const char *client);

/* Copies the parsed head (which points into buf) into the request. */
int request_take_head(struct request *r, const char *buf, size_t len, const struct httpmsg_head *h);

/* Appends body bytes; -1 when memory runs out. */
int request_append_body(struct request *r, const char *data, size_t n);

/* The first value of a request header, NUL-terminated in *dst (n bytes),
 * or NULL when absent or longer than n - 1. */
const char *request_header(const struct request *r, const char *name, char *dst, size_t n);

struct upstream_res;

/* Copies an upstream answer (status, type, body) into the request, since
 * res lives only during its callback; -1 when memory runs out. */
int request_keep_answer(struct request *r, const struct upstream_res *res);

/* Milliseconds since the request's head arrived. */
double request_elapsed_ms(const struct request *r);

void request_free(struct request *r);

#endif
