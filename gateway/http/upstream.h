/*
 * upstream: calls to the upstream API on libcurl's multi interface.
 *
 * libcurl runs on the gateway's own libevent loop through its socket and
 * timer callbacks: no thread per request and no blocking call. Easy handles
 * are pooled and connections are kept alive by the multi handle's cache.
 */
#ifndef GW_UPSTREAM_H
#define GW_UPSTREAM_H

#include <stddef.h>

#include "lib/err.h"

struct event_base;
struct upstream;
struct upstream_call;

struct upstream_settings {
	const char *base_url; /* no trailing slash */
	long timeout_ms;
	long connect_timeout_ms;
	size_t max_response_bytes;
	long max_idle_connections; /* kept open for reuse */
	long max_inflight;         /* requests the server handles at once */
	const char *ca_file;       /* NULL for the system store */
	int insecure_skip_verify;
	/* libcurl's CURLOPT_PINNEDPUBLICKEY: "sha256//<base64>[;sha256//...]"
	 * or a PEM/DER public key file; NULL for none. */
	const char *pinned_pubkey;
};

struct upstream *upstream_new(struct event_base *base, const struct upstream_settings *s,
                              struct err *e);
void upstream_free(struct upstream *u);

struct upstream_res;

/* Returned by a streaming read or data callback to hold the transfer until
 * upstream_resume; UPSTREAM_ABORT from read fails it. */
#define UPSTREAM_PAUSE ((size_t)-1)
#define UPSTREAM_ABORT ((size_t)-2)

/* A request. Everything is borrowed until the call completes. */
struct upstream_req {
	const char *method;
	const char *path;           /* appended to base_url, e.g. "/containers" */
	const char *const *headers; /* "Name: value" lines */
	size_t nheaders;
	const char *body;
	size_t body_len;

	/* A body streamed instead: read fills buf with up to n bytes and
	 * returns how many, 0 at the end, or UPSTREAM_PAUSE / UPSTREAM_ABORT.
	 * body_size is its length, or -1 when unknown (sent chunked). */
	size_t (*read)(void *arg, char *buf, size_t n);
	long long body_size;
	/* Starts read over from the body's first byte, for libcurl to send it
	 * again on a fresh connection when a kept one turned out closed;
	 * returns 0, or -1 when it cannot (NULL: it never can). */
	int (*rewind)(void *arg);

	/* An answer streamed instead of buffered: on_head runs once the
	 * answer's head is in (res has status and headers); returning 1 sends
	 * the body to on_data as it arrives (which returns n, or
	 * UPSTREAM_PAUSE), 0 buffers it as usual. */
	int (*on_head)(void *arg, const struct upstream_res *res);
	size_t (*on_data)(void *arg, const char *data, size_t n);

	/* Retry once when the connection could not be made at all; only for
	 * requests that are safe to repeat. */
	int retry_connect;
};

enum upstream_failure {
	UPSTREAM_OK,          /* an HTTP answer arrived, whatever its status */
	UPSTREAM_UNREACHABLE, /* no answer: refused, reset, DNS, TLS */
	UPSTREAM_TIMEOUT,     /* no complete answer in time */
	UPSTREAM_TOO_LARGE,   /* answer larger than max_response_bytes */
	UPSTREAM_MALFORMED,   /* a head whose framing is ambiguous (the connection is dropped) */
};

#define UPSTREAM_HEADER_MAX 128

/* A finished call; valid only during the done callback. */
struct upstream_res {
	enum upstream_failure failure;
	int status;
	const char *body;
	size_t len;
	char content_type[UPSTREAM_HEADER_MAX];
	char request_id[UPSTREAM_HEADER_MAX];
	char retry_after[32];
	/* The headers a client of the API reads (rate limits, processing
	 * time, retry advice), as "name: value" lines each ended by '\n'. */
	char relayed[1024];
	long long content_length; /* -1 when not given */
	int streamed;             /* the body went to on_data, not into body */
	int sent;                 /* the request (its head at least) went out */
	size_t bytes;             /* body bytes received */
	double ms;                /* time from start to the end of the answer */
	const char *error;        /* libcurl's description when failure != UPSTREAM_OK */
};

typedef void (*upstream_done_fn)(const struct upstream_res *res, void *arg);

/* Starts a call; done runs exactly once, from the event loop, unless the
 * call is cancelled first. Returns NULL with e filled when it cannot start. */
struct upstream_call *upstream_start(struct upstream *u, const struct upstream_req *req,
                                     upstream_done_fn done, void *arg, struct err *e);

/* Abandons a call; done will not run. */
void upstream_cancel(struct upstream_call *c);

/* Continues a call paused by UPSTREAM_PAUSE. */
void upstream_resume(struct upstream_call *c);

#endif
