/*
 * upstream_stub: a stand-in for OpenAI's Containers API, for integration
 * tests that run the real gateway over real sockets.
 *
 *   upstream_stub --port-file FILE [--listen HOST:PORT]
 *                 [--tls-cert FILE --tls-key FILE]
 *
 * Binds (port 0 lets the kernel pick, so parallel tests never share a fixed
 * port), writes the bound port and "\n" to FILE atomically (tmp + rename, so
 * a reader never sees half a number), and serves until SIGTERM or SIGINT,
 * then exits 0.
 *
 * With --tls-cert and --tls-key (PEM: the certificate, then any
 * intermediates; and its private key) it serves HTTPS instead, TLS 1.2 or
 * newer, HTTP/1.1 only (no ALPN), and the control API below is on HTTPS
 * too. It asks for no client certificate. TLS alerts other than
 * close_notify go to stderr as "stub: tls: the client sent ..." (a client
 * refusing the certificate, say) or "stub: tls: the stub sent ...", since
 * such a connection never becomes a request and so leaves no record.
 *
 * Any path prefix before /containers is accepted (/v1/containers and bare
 * /containers alike). The nine operations answer from in-memory state.
 * Every request outside /__stub/ is recorded; /__stub/ is the control API
 * the tests use to read the record and to script the next answers:
 *
 *   GET    /__stub/health    200 "ok"
 *   GET    /__stub/requests  the record: [{"method","uri","headers",
 *                            "body" | "body_b64","body_len","peer_port"},
 *                            ...]; peer_port is the client's port, the
 *                            same for requests on one connection
 *   DELETE /__stub/requests  clears the record
 *   POST   /__stub/next      queues a behaviour (an object, or an array of
 *                            them) for the next "repeat" requests
 *   DELETE /__stub/next      clears the queue
 *
 * A behaviour is {"status","body" | "json","headers","delay_ms","action",
 * "repeat"}. Without "status", "body" and "json" the stateful answer is
 * used, so {"delay_ms":500} just slows the normal answer down and
 * {"headers":{...}} decorates it. "body" is sent as given with no
 * Content-Type unless "headers" names one; "json" is serialized and sent as
 * application/json. "action":"close" drops the connection unanswered;
 * "action":"truncate" sends half the answer, chunked, then drops it;
 * "action":"hang" never answers and lets go when the client does. A record
 * whose client hung up before a held-back answer gets "aborted": true.
 * "action":"reset" sends the head and half the body (the full length
 * announced) and then resets the connection (RST, not FIN). "raw" is a
 * string of bytes written on the connection instead of any HTTP answer
 * (a broken status line, a lying Content-Length), after which the
 * connection is closed. "match" makes a behaviour wait for a request whose
 * URI or body contains that string; requests that do not match pass it by
 * (and take the first behaviour they do match, or none), so a long-running
 * test can keep faults queued for some requests only.
 *
 * "events" answers with Server-Sent Events, paced: {"events": [{"event":
 * "response.created", "data": {...}, "delay_ms": 0}, {"data": "text",
 * "delay_ms": 300}, ...], "status", "headers", "then", "match", "repeat"}.
 * The head goes out at once (chunked, Content-Type text/event-stream and
 * Cache-Control no-cache unless "headers" say otherwise), then each event
 * after its own delay_ms counted from the one before: its "event" and "id"
 * lines, its "data" (a string, one data line per line of it; any other
 * value as compact JSON on one line) and a blank line, or an event's "raw"
 * string as it is; an event's "times" (1 to 100000) sends it that many
 * times, each after its delay_ms, so a test can ask for a long stream
 * without writing it out. After the last event the chunked answer ends; with
 * "then": "close" the connection is dropped instead (a stream broken off).
 * The record tells when, in milliseconds since the epoch (CLOCK_REALTIME,
 * for a test to compare with its own clock): "sse_start_ms" (head sent),
 * "sse_first_ms" and "sse_last_ms" (first and last event written),
 * "sse_sent" (events written), "sse_done_ms" (the end written), or
 * "sse_cut": true; a client that hangs up mid-stream gets "aborted": true
 * and "sse_aborted_ms".
 *
 *   GET /__stub/requests?take=1   the record, cleared in the same step
 *
 * Bounds: bodies over 256 MiB get 413; the record keeps the newest 10,000
 * requests, each body cut at 16 MiB ("body_truncated": true, body_len
 * stays exact); header names are lower-cased, repeats joined with ", ",
 * and a header value or URI that is not UTF-8 has its non-ASCII bytes
 * written as \xNN.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define BODY_MAX        ((size_t)256 << 20) /* larger request bodies get 413 */
#define HEADERS_MAX     ((size_t)1 << 20)
#define RECORDS_MAX     10000
#define RECORD_BODY_MAX ((size_t)16 << 20) /* body kept per record; body_len stays exact */
#define QUEUE_MAX       1000
#define REPEAT_MAX      100000
#define DELAY_MAX_MS    600000
#define CONTAINERS_MAX  10000
#define FILES_MAX       10000             /* per container */
#define STORE_MAX       ((size_t)1 << 30) /* file content held across all containers */
#define ID_MAX          48
#define NAME_MAX_LEN    200
#define LIST_DEFAULT    20
#define LIST_MAX        100

struct file {
	char id[ID_MAX];
	json_t *obj; /* the ContainerFileResource */
	unsigned char *data;
	size_t len;
};

struct container {
	char id[ID_MAX];
	json_t *obj; /* the ContainerResource */
	struct file **files;
	size_t nfiles, cap;
};

enum action { ACT_REPLY, ACT_CLOSE, ACT_HANG, ACT_TRUNCATE, ACT_RESET, ACT_RAW };

/* A request whose answer waits for a timer, or for nothing (hang). */
struct pending {
	struct pending *next;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct event *timer; /* NULL for hang */
	struct event *watch; /* notices the client hanging up; NULL if unsupported */
	json_t *rec;         /* the request's record, marked "aborted" if so */
	enum action action;
	int status;
	struct evbuffer *body;
};

/* An answer of Server-Sent Events being sent, one event per timer. */
struct sse_stream {
	struct sse_stream *next;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct event *timer;
	struct event *watch; /* notices the client hanging up; NULL if unsupported */
	json_t *rec;         /* the request's record: what was sent, and when */
	json_t *events;      /* the behaviour's "events" */
	size_t i;            /* the next event to send */
	size_t again;        /* times event i was sent already */
	size_t sent;         /* events written in all */
	bool cut;            /* "then": "close": drop the connection after the last event */
};

static struct {
	struct event_base *base;
	struct evhttp *http;
	struct container **c; /* in creation order */
	size_t n, cap;
	size_t stored; /* bytes of file content */
	json_t *records;
	json_t *queue; /* validated behaviours, FIFO */
	struct pending *pending;
	struct sse_stream *sse; /* event streams being sent */
	SSL_CTX *tls;           /* NULL: plain HTTP */
	bool stopping;
	uint64_t rng;
} S;

/* ---- small helpers ---- */

static uint64_t
rng_next(void)
{
	uint64_t z = (S.rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* prefix + 32 hex digits; ids only need to be unique within one run. */
static void
make_id(char *dst, size_t n, const char *prefix)
{
	uint64_t a = rng_next(), b = rng_next();

	snprintf(dst, n, "%s%016llx%016llx", prefix, (unsigned long long)a, (unsigned long long)b);
}

static const char *
method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	}
	return "UNKNOWN";
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
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 507:
		return "Insufficient Storage";
	}
	return "Status";
}

/* Strict UTF-8: no overlongs, no surrogates, nothing past U+10FFFF. */
static bool
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* Returns a new JSON string holding s base64-encoded, or NULL. */
static json_t *
base64_json(const unsigned char *s, size_t n)
{
	static const char tab[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t olen = (n + 2) / 3 * 4;
	char *o = malloc(olen + 1);
	size_t j = 0;
	json_t *v;

	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t w = (uint32_t)s[i] << 16;

		if (i + 1 < n)
			w |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			w |= s[i + 2];
		o[j++] = tab[(w >> 18) & 63];
		o[j++] = tab[(w >> 12) & 63];
		o[j++] = i + 1 < n ? tab[(w >> 6) & 63] : '=';
		o[j++] = i + 2 < n ? tab[w & 63] : '=';
	}
	o[j] = '\0';
	v = json_stringn(o, j);
	free(o);
	return v;
}

/* Serializes v (borrowed) into out as the JSON answer; returns status. */
static int
reply_json(struct evhttp_request *req, struct evbuffer *out, int status, json_t *v)
{
	char *s = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	if (s == NULL) {
		evbuffer_add_printf(out,
		                    "{\"error\":{\"message\":\"stub out of memory\","
		                    "\"type\":\"server_error\",\"param\":null,\"code\":null}}");
		status = 500;
	} else {
		evbuffer_add(out, s, strlen(s));
		free(s);
	}
	evhttp_remove_header(evhttp_request_get_output_headers(req), "Content-Type");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	return status;
}

/* The OpenAI error shape; param may be NULL. Returns status. */
static int
reply_error(struct evhttp_request *req, struct evbuffer *out, int status, const char *type,
            const char *param, const char *msg)
{
	json_t *e = json_pack("{s:{s:s,s:s,s:s?,s:n}}", "error", "message", msg, "type", type,
	                      "param", param, "code");
	int rc = reply_json(req, out, status, e);

	json_decref(e);
	return rc;
}

static int
reply_invalid(struct evhttp_request *req, struct evbuffer *out, const char *param, const char *msg)
{
	return reply_error(req, out, 400, "invalid_request_error", param, msg);
}

static int
reply_not_found(struct evhttp_request *req, struct evbuffer *out, const char *what, const char *id)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "No %s found with id '%.*s'.", what, ID_MAX * 2, id);
	return reply_error(req, out, 404, "invalid_request_error", NULL, msg);
}

/* First occurrence of needle in hay, or NULL (memmem is not in POSIX). */
static const unsigned char *
find(const unsigned char *hay, size_t hl, const char *needle, size_t nl)
{
	if (nl == 0 || hl < nl)
		return NULL;
	for (size_t i = 0; i <= hl - nl; i++) {
		const unsigned char *c = memchr(hay + i, needle[0], hl - nl - i + 1);

		if (c == NULL)
			return NULL;
		i = (size_t)(c - hay);
		if (memcmp(c, needle, nl) == 0)
			return c;
	}
	return NULL;
}

/* Borrows the request body, made contiguous. */
static const unsigned char *
req_body(struct evhttp_request *req, size_t *len)
{
	struct evbuffer *b = evhttp_request_get_input_buffer(req);

	*len = evbuffer_get_length(b);
	if (*len == 0)
		return (const unsigned char *)"";
	return evbuffer_pullup(b, -1);
}

/* ---- recording ---- */

/* A JSON string of s; if s is not UTF-8, its non-ASCII bytes become \xNN. */
static json_t *
text_json(const char *s)
{
	size_t n = strlen(s), j = 0;
	char *esc;
	json_t *v;

	if (utf8_valid((const unsigned char *)s, n))
		return json_stringn(s, n);
	esc = malloc(n * 4 + 1);
	if (esc == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x80)
			esc[j++] = (char)c;
		else
			j += (size_t)snprintf(esc + j, 5, "\\x%02x", c);
	}
	v = json_stringn(esc, j);
	free(esc);
	return v;
}

/* Appends the request to the record; returns the entry (borrowed) or NULL. */
static json_t *
record(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	json_t *rec = json_object(), *hdrs = json_object(), *body;
	const unsigned char *data;
	size_t len, keep;

	if (rec == NULL || hdrs == NULL)
		goto fail;
	for (struct evkeyval *kv = h->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
		char name[256];
		size_t i;
		json_t *old;

		for (i = 0; kv->key[i] != '\0' && i + 1 < sizeof(name); i++)
			name[i] = (char)tolower((unsigned char)kv->key[i]);
		name[i] = '\0';
		/* Repeated headers fold into one value, as HTTP allows. */
		old = json_object_get(hdrs, name);
		if (old != NULL) {
			const char *ov = json_string_value(old);
			size_t n = strlen(ov) + strlen(kv->value) + 3;
			char *joined = malloc(n);

			if (joined == NULL)
				goto fail;
			snprintf(joined, n, "%s, %s", ov, kv->value);
			json_object_set_new(hdrs, name, text_json(joined));
			free(joined);
		} else {
			json_object_set_new(hdrs, name, text_json(kv->value));
		}
	}
	json_object_set_new(rec, "method",
	                    json_string(method_name(evhttp_request_get_command(req))));
	json_object_set_new(rec, "uri", text_json(evhttp_request_get_uri(req)));
	json_object_set_new(rec, "headers", hdrs);
	/* Which connection it came on: tests tell reuse from reconnecting. */
	{
		char *peer = NULL;
		ev_uint16_t port = 0;

		evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &port);
		json_object_set_new(rec, "peer_port", json_integer(port));
	}
	hdrs = NULL;
	data = req_body(req, &len);
	keep = len < RECORD_BODY_MAX ? len : RECORD_BODY_MAX;
	if (utf8_valid(data, keep)) {
		body = json_stringn((const char *)data, keep);
		json_object_set_new(rec, "body", body);
	} else {
		body = base64_json(data, keep);
		json_object_set_new(rec, "body_b64", body);
	}
	if (body == NULL)
		goto fail;
	json_object_set_new(rec, "body_len", json_integer((json_int_t)len));
	if (keep < len)
		json_object_set_new(rec, "body_truncated", json_true());
	if (json_array_size(S.records) >= RECORDS_MAX)
		json_array_remove(S.records, 0);
	json_array_append_new(S.records, rec);
	return rec;
fail:
	fprintf(stderr, "stub: out of memory recording a request\n");
	json_decref(hdrs);
	json_decref(rec);
	return NULL;
}

/* ---- scripted behaviours ---- */

static bool
int_in(json_t *v, json_int_t lo, json_int_t hi)
{
	return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

/* Checks a behaviour's "events": a non-empty array of objects with
 * "event", "id" (strings), "data" (any JSON value), "raw" (a string,
 * instead of the others) and "delay_ms". */
static int
events_check(json_t *events, char *msg, size_t n)
{
	const char *key;
	json_t *ev, *v;
	size_t i;

	if (!json_is_array(events) || json_array_size(events) == 0 ||
	    json_array_size(events) > QUEUE_MAX) {
		snprintf(msg, n, "events must be an array of 1 to %d event objects", QUEUE_MAX);
		return -1;
	}
	json_array_foreach(events, i, ev)
	{
		if (!json_is_object(ev))
			goto bad;
		json_object_foreach(ev, key, v)
		{
			if (strcmp(key, "event") == 0 || strcmp(key, "id") == 0) {
				if (!json_is_string(v) ||
				    strpbrk(json_string_value(v), "\r\n") != NULL)
					goto bad;
			} else if (strcmp(key, "raw") == 0) {
				if (!json_is_string(v))
					goto bad;
			} else if (strcmp(key, "delay_ms") == 0) {
				if (!int_in(v, 0, DELAY_MAX_MS))
					goto bad;
			} else if (strcmp(key, "times") == 0) {
				if (!int_in(v, 1, 100000))
					goto bad;
			} else if (strcmp(key, "data") != 0) {
				goto bad;
			}
		}
		if (json_object_get(ev, "raw") != NULL &&
		    (json_object_get(ev, "event") || json_object_get(ev, "id") ||
		     json_object_get(ev, "data")))
			goto bad;
	}
	return 0;
bad:
	snprintf(msg, n,
	         "events[%zu] must be an object of event, id, data, delay_ms and times, or of "
	         "raw, delay_ms and times",
	         i);
	return -1;
}

/* Checks one behaviour object; fills msg and returns -1 when it is wrong. */
static int
behaviour_check(json_t *b, char *msg, size_t n)
{
	const char *key;
	json_t *v;

	if (!json_is_object(b)) {
		snprintf(msg, n, "a behaviour must be a JSON object");
		return -1;
	}
	json_object_foreach(b, key, v)
	{
		if (strcmp(key, "status") == 0) {
			if (!int_in(v, 100, 599))
				goto bad;
		} else if (strcmp(key, "body") == 0) {
			if (!json_is_string(v))
				goto bad;
		} else if (strcmp(key, "json") == 0) {
			/* any JSON value */
		} else if (strcmp(key, "headers") == 0) {
			const char *hk;
			json_t *hv;

			if (!json_is_object(v))
				goto bad;
			json_object_foreach(v, hk, hv)
			{
				if (!json_is_string(hv) || hk[0] == '\0' ||
				    strpbrk(hk, "\r\n:") != NULL ||
				    strpbrk(json_string_value(hv), "\r\n") != NULL)
					goto bad;
			}
		} else if (strcmp(key, "delay_ms") == 0) {
			if (!int_in(v, 0, DELAY_MAX_MS))
				goto bad;
		} else if (strcmp(key, "action") == 0) {
			const char *a = json_string_value(v);

			if (a == NULL || (strcmp(a, "close") != 0 && strcmp(a, "hang") != 0 &&
			                  strcmp(a, "truncate") != 0 && strcmp(a, "reset") != 0))
				goto bad;
		} else if (strcmp(key, "raw") == 0 || strcmp(key, "match") == 0) {
			if (!json_is_string(v) || json_string_length(v) == 0)
				goto bad;
		} else if (strcmp(key, "repeat") == 0) {
			if (!int_in(v, 1, REPEAT_MAX))
				goto bad;
		} else if (strcmp(key, "events") == 0) {
			if (events_check(v, msg, n) != 0)
				return -1;
		} else if (strcmp(key, "then") == 0) {
			if (!json_is_string(v) || strcmp(json_string_value(v), "close") != 0)
				goto bad;
		} else {
			snprintf(msg, n, "unknown behaviour key '%.64s'", key);
			return -1;
		}
	}
	if (json_object_get(b, "body") != NULL && json_object_get(b, "json") != NULL) {
		snprintf(msg, n, "give either body or json, not both");
		return -1;
	}
	if (json_object_get(b, "raw") != NULL &&
	    (json_object_get(b, "body") || json_object_get(b, "json") ||
	     json_object_get(b, "status") || json_object_get(b, "action"))) {
		snprintf(msg, n, "raw replaces the whole answer: no status, body, json or action");
		return -1;
	}
	if (json_object_get(b, "events") != NULL &&
	    (json_object_get(b, "body") || json_object_get(b, "json") ||
	     json_object_get(b, "raw") || json_object_get(b, "action") ||
	     json_object_get(b, "delay_ms"))) {
		snprintf(msg, n,
		         "events are the whole answer: no body, json, raw, action or delay_ms "
		         "(each event has its own delay_ms)");
		return -1;
	}
	if (json_object_get(b, "then") != NULL && json_object_get(b, "events") == NULL) {
		snprintf(msg, n, "then applies to events only");
		return -1;
	}
	return 0;
bad:
	snprintf(msg, n, "behaviour key '%.64s' has a wrong type or value", key);
	return -1;
}

/* Whether a behaviour's "match", if any, is in the request's URI or body. */
static bool
matches(json_t *b, struct evhttp_request *req)
{
	const char *m = json_string_value(json_object_get(b, "match"));
	size_t len;
	const unsigned char *body;

	if (m == NULL)
		return true;
	if (strstr(evhttp_request_get_uri(req), m) != NULL)
		return true;
	body = req_body(req, &len);
	return find(body, len, m, strlen(m)) != NULL;
}

/* Takes the first behaviour in the queue that this request matches;
 * returns a new reference or NULL. */
static json_t *
queue_pop(struct evhttp_request *req)
{
	json_t *b = NULL, *rep;
	size_t i;

	for (i = 0; i < json_array_size(S.queue); i++) {
		if (matches(json_array_get(S.queue, i), req)) {
			b = json_incref(json_array_get(S.queue, i));
			break;
		}
	}
	if (b == NULL)
		return NULL;
	/* The caller never reads "repeat", so counting down in place is safe. */
	rep = json_object_get(b, "repeat");
	if (json_is_integer(rep) && json_integer_value(rep) > 1)
		json_object_set_new(b, "repeat", json_integer(json_integer_value(rep) - 1));
	else
		json_array_remove(S.queue, i);
	return b;
}

/* ---- containers and files ---- */

static struct container *
container_find(const char *id, size_t *idx)
{
	for (size_t i = 0; i < S.n; i++) {
		if (strcmp(S.c[i]->id, id) == 0) {
			if (idx != NULL)
				*idx = i;
			return S.c[i];
		}
	}
	return NULL;
}

static struct file *
file_find(struct container *c, const char *id, size_t *idx)
{
	for (size_t i = 0; i < c->nfiles; i++) {
		if (strcmp(c->files[i]->id, id) == 0) {
			if (idx != NULL)
				*idx = i;
			return c->files[i];
		}
	}
	return NULL;
}

static void
file_free(struct file *f)
{
	if (f == NULL)
		return;
	S.stored -= f->len;
	json_decref(f->obj);
	free(f->data);
	free(f);
}

static void
container_free(struct container *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nfiles; i++)
		file_free(c->files[i]);
	free(c->files);
	json_decref(c->obj);
	free(c);
}

/* Parses a query parameter as an integer in [lo, hi]; -1 when it is not one. */
static int
parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/*
 * Answers a list page. all holds the resources in creation order (stolen);
 * q holds the decoded query. created_at ties keep creation order, which is
 * what "asc" means here; "desc" is its reverse. An unknown "after" cursor
 * yields an empty page.
 */
static int
list_reply(struct evhttp_request *req, struct evbuffer *out, json_t *all, struct evkeyvalq *q)
{
	const char *lim = evhttp_find_header(q, "limit");
	const char *order = evhttp_find_header(q, "order");
	const char *after = evhttp_find_header(q, "after");
	long limit = LIST_DEFAULT;
	bool desc = true;
	size_t n = json_array_size(all), start = 0, i;
	json_t *data = json_array(), *page = NULL;
	int status;

	if (lim != NULL && parse_int(lim, 1, LIST_MAX, &limit) != 0) {
		status =
		        reply_invalid(req, out, "limit", "limit must be an integer from 1 to 100.");
		goto done;
	}
	if (order != NULL && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
		status = reply_invalid(req, out, "order", "order must be one of 'asc' or 'desc'.");
		goto done;
	}
	if (order != NULL && strcmp(order, "asc") == 0)
		desc = false;
	if (after != NULL) {
		start = n;
		for (i = 0; i < n; i++) {
			json_t *it = json_array_get(all, desc ? n - 1 - i : i);

			if (strcmp(json_string_value(json_object_get(it, "id")), after) == 0) {
				start = i + 1;
				break;
			}
		}
	}
	for (i = start; i < n && json_array_size(data) < (size_t)limit; i++)
		json_array_append(data, json_array_get(all, desc ? n - 1 - i : i));
	page = json_pack("{s:s,s:O,s:O?,s:O?,s:b}", "object", "list", "data", data, "first_id",
	                 json_object_get(json_array_get(data, 0), "id"), "last_id",
	                 json_object_get(json_array_get(data, json_array_size(data) - 1), "id"),
	                 "has_more", i < n);
	status = reply_json(req, out, 200, page);
done:
	json_decref(page);
	json_decref(data);
	json_decref(all);
	return status;
}

static int
containers_create(struct evhttp_request *req, struct evbuffer *out)
{
	size_t len;
	const unsigned char *body = req_body(req, &len);
	json_error_t jerr;
	json_t *in = json_loadb((const char *)body, len, 0, &jerr);
	json_t *obj = NULL, *v, *np, *pol, *type;
	struct container *c = NULL, **grown;
	json_int_t minutes = 20;
	time_t now = time(NULL);
	int status;

	if (!json_is_object(in)) {
		status = reply_invalid(req, out, NULL,
		                       "We could not parse the JSON body of your request.");
		goto done;
	}
	if (S.n >= CONTAINERS_MAX) {
		status = reply_error(req, out, 507, "server_error", NULL, "stub container limit");
		goto done;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto nomem;
	make_id(c->id, sizeof(c->id), "cntr_");
	v = json_object_get(json_object_get(in, "expires_after"), "minutes");
	if (json_is_integer(v))
		minutes = json_integer_value(v);
	np = json_object_get(in, "network_policy");
	type = json_object_get(np, "type");
	pol = json_object();
	if (pol == NULL)
		goto nomem;
	json_object_set_new(pol, "type",
	                    json_is_string(type) ? json_incref(type) : json_string("disabled"));
	if (json_is_string(type) && strcmp(json_string_value(type), "allowlist") == 0 &&
	    json_object_get(np, "allowed_domains") != NULL)
		json_object_set(pol, "allowed_domains", json_object_get(np, "allowed_domains"));
	/* domain_secrets are never echoed, as upstream never does. */
	obj = json_pack("{s:s,s:s,s:I,s:s,s:{s:s,s:I},s:I,s:o}", "id", c->id, "object", "container",
	                "created_at", (json_int_t)now, "status", "running", "expires_after",
	                "anchor", "last_active_at", "minutes", minutes, "last_active_at",
	                (json_int_t)now, "network_policy", pol);
	if (obj == NULL)
		goto nomem;
	v = json_object_get(in, "memory_limit");
	json_object_set_new(obj, "memory_limit", v != NULL ? json_incref(v) : json_string("1g"));
	v = json_object_get(in, "name");
	if (v != NULL)
		json_object_set(obj, "name", v);
	if (S.n == S.cap) {
		size_t cap = S.cap ? S.cap * 2 : 16;

		grown = realloc(S.c, cap * sizeof(*grown));
		if (grown == NULL)
			goto nomem;
		S.c = grown;
		S.cap = cap;
	}
	c->obj = obj;
	obj = NULL;
	S.c[S.n++] = c;
	status = reply_json(req, out, 200, c->obj);
	c = NULL;
	goto done;
nomem:
	status = reply_error(req, out, 500, "server_error", NULL, "stub out of memory");
done:
	container_free(c);
	json_decref(obj);
	json_decref(in);
	return status;
}

static int
containers_list(struct evhttp_request *req, struct evbuffer *out, struct evkeyvalq *q)
{
	const char *name = evhttp_find_header(q, "name");
	json_t *all = json_array();

	for (size_t i = 0; i < S.n; i++) {
		const char *cn = json_string_value(json_object_get(S.c[i]->obj, "name"));

		if (name == NULL || (cn != NULL && strcmp(cn, name) == 0))
			json_array_append(all, S.c[i]->obj);
	}
	return list_reply(req, out, all, q);
}

/* Finds the value of parameter key in a header value like `a; k="v"; x=y`. */
static bool
header_param(const char *h, const char *key, char *dst, size_t n)
{
	size_t klen = strlen(key);
	const char *p = strchr(h, ';');

	while (p != NULL) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t j = 0;

			p += klen + 1;
			if (*p == '"') {
				for (p++; *p != '\0' && *p != '"'; p++) {
					if (*p == '\\' && p[1] != '\0')
						p++;
					if (j + 1 < n)
						dst[j++] = *p;
				}
			} else {
				for (; *p != '\0' && *p != ';' && *p != ' ' && *p != '\t'; p++)
					if (j + 1 < n)
						dst[j++] = *p;
			}
			dst[j] = '\0';
			return true;
		}
		p = strchr(p, ';');
	}
	return false;
}

/*
 * Finds the part named "file" in a multipart/form-data body. Borrows its
 * bytes into *data and *dlen and copies its filename (or "upload"). Returns -1
 * with msg filled when the body is not well-formed multipart.
 */
static int
multipart_file(const char *ctype, const unsigned char *body, size_t len, const unsigned char **data,
               size_t *dlen, char *fname, size_t fnlen, const char **msg)
{
	char boundary[256], delim[262];
	size_t dl;
	const unsigned char *p, *end = body + len;

	if (!header_param(ctype, "boundary", boundary, sizeof(boundary)) || boundary[0] == '\0' ||
	    strlen(boundary) > 200) {
		*msg = "multipart/form-data needs a boundary.";
		return -1;
	}
	dl = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	/* The first delimiter may open the body, so look for it without its CRLF. */
	if (len >= dl - 2 && memcmp(body, delim + 2, dl - 2) == 0)
		p = body + dl - 2;
	else if ((p = find(body, len, delim, dl)) != NULL)
		p += dl;
	else
		goto bad;
	for (;;) {
		const unsigned char *hend, *next;
		char disp[1024] = "", name[256] = "";

		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			break; /* closing delimiter */
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			goto bad;
		p += 2;
		hend = find(p, (size_t)(end - p), "\r\n\r\n", 4);
		if (hend == NULL)
			goto bad;
		/* Headers of this part: only Content-Disposition matters. */
		for (const unsigned char *l = p; l < hend + 2;) {
			const unsigned char *le = find(l, (size_t)(hend + 2 - l), "\r\n", 2);
			size_t ll = (size_t)(le - l);

			if (ll > 20 &&
			    strncasecmp((const char *)l, "content-disposition:", 20) == 0) {
				size_t c = ll < sizeof(disp) - 1 ? ll : sizeof(disp) - 1;

				memcpy(disp, l, c);
				disp[c] = '\0';
			}
			l = le + 2;
		}
		p = hend + 4;
		next = find(p, (size_t)(end - p), delim, dl);
		if (next == NULL)
			goto bad;
		if (header_param(disp, "name", name, sizeof(name)) && strcmp(name, "file") == 0) {
			*data = p;
			*dlen = (size_t)(next - p);
			if (!header_param(disp, "filename", fname, fnlen) || fname[0] == '\0')
				snprintf(fname, fnlen, "upload");
			return 0;
		}
		p = next + dl;
	}
	*msg = "Missing required parameter: 'file'.";
	return -1;
bad:
	*msg = "The multipart/form-data body is malformed.";
	return -1;
}

static int
files_create(struct evhttp_request *req, struct evbuffer *out, struct container *c)
{
	const char *ctype =
	        evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	size_t len, dlen = 0;
	const unsigned char *body = req_body(req, &len), *data = NULL;
	char fname[NAME_MAX_LEN + 1] = "", path[NAME_MAX_LEN + 16];
	const char *msg = NULL, *base;
	json_t *in = NULL;
	struct file *f = NULL, **grown;
	int status;

	if (ctype != NULL && strncasecmp(ctype, "multipart/form-data", 19) == 0) {
		if (multipart_file(ctype, body, len, &data, &dlen, fname, sizeof(fname), &msg) !=
		    0) {
			status = reply_invalid(req, out, "file", msg);
			goto done;
		}
	} else if (ctype != NULL && strncasecmp(ctype, "application/json", 16) == 0) {
		in = json_loadb((const char *)body, len, 0, NULL);
		if (!json_is_object(in)) {
			status = reply_invalid(req, out, NULL,
			                       "We could not parse the JSON body of your request.");
			goto done;
		}
		if (!json_is_string(json_object_get(in, "file_id"))) {
			status = reply_invalid(req, out, "file_id",
			                       "Missing required parameter: 'file_id'.");
			goto done;
		}
		snprintf(fname, sizeof(fname), "%s",
		         json_string_value(json_object_get(in, "file_id")));
	} else {
		status = reply_invalid(
		        req, out, NULL,
		        "Send multipart/form-data with a file, or JSON with a file_id.");
		goto done;
	}
	if (c->nfiles >= FILES_MAX || dlen > STORE_MAX - S.stored) {
		status = reply_error(req, out, 507, "server_error", NULL, "stub storage limit");
		goto done;
	}
	/* Keep only the last path component, as a file system would. */
	base = strrchr(fname, '/');
	base = base != NULL ? base + 1 : fname;
	if (strrchr(base, '\\') != NULL)
		base = strrchr(base, '\\') + 1;
	snprintf(path, sizeof(path), "/mnt/data/%s", base[0] != '\0' ? base : "upload");
	f = calloc(1, sizeof(*f));
	if (f == NULL || (dlen > 0 && (f->data = malloc(dlen)) == NULL))
		goto nomem;
	if (dlen > 0)
		memcpy(f->data, data, dlen);
	f->len = dlen;
	S.stored += dlen;
	make_id(f->id, sizeof(f->id), "cfile_");
	f->obj = json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:s}", "id", f->id, "object", "container.file",
	                   "created_at", (json_int_t)time(NULL), "bytes", (json_int_t)dlen,
	                   "container_id", c->id, "path", path, "source", "user");
	if (f->obj == NULL)
		goto nomem;
	if (c->nfiles == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;

		grown = realloc(c->files, cap * sizeof(*grown));
		if (grown == NULL)
			goto nomem;
		c->files = grown;
		c->cap = cap;
	}
	c->files[c->nfiles++] = f;
	status = reply_json(req, out, 200, f->obj);
	f = NULL;
	goto done;
nomem:
	status = reply_error(req, out, 500, "server_error", NULL, "stub out of memory");
done:
	file_free(f);
	json_decref(in);
	return status;
}

/* Answers from the in-memory state; segs are the path segments after "containers". */
static int
api(struct evhttp_request *req, struct evbuffer *out, char **segs, size_t n, struct evkeyvalq *q)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	struct container *c = NULL;
	struct file *f;
	size_t ci = 0, fi = 0;
	json_t *v;
	int status;

	if (n >= 1 && (c = container_find(segs[0], &ci)) == NULL)
		return reply_not_found(req, out, "container", segs[0]);
	if (n == 0 && m == EVHTTP_REQ_POST)
		return containers_create(req, out);
	if (n == 0 && m == EVHTTP_REQ_GET)
		return containers_list(req, out, q);
	if (n == 1 && m == EVHTTP_REQ_GET)
		return reply_json(req, out, 200, c->obj);
	if (n == 1 && m == EVHTTP_REQ_DELETE) {
		v = json_pack("{s:s,s:s,s:b}", "id", c->id, "object", "container.deleted",
		              "deleted", 1);
		status = reply_json(req, out, 200, v);
		json_decref(v);
		memmove(&S.c[ci], &S.c[ci + 1], (S.n - ci - 1) * sizeof(*S.c));
		S.n--;
		container_free(c);
		return status;
	}
	if (n >= 2 && strcmp(segs[1], "files") != 0)
		goto not_found;
	if (n == 2 && m == EVHTTP_REQ_POST)
		return files_create(req, out, c);
	if (n == 2 && m == EVHTTP_REQ_GET) {
		json_t *all = json_array();

		for (size_t i = 0; i < c->nfiles; i++)
			json_array_append(all, c->files[i]->obj);
		return list_reply(req, out, all, q);
	}
	if (n < 3)
		goto bad_method;
	f = file_find(c, segs[2], &fi);
	if (f == NULL)
		return reply_not_found(req, out, "container file", segs[2]);
	if (n == 3 && m == EVHTTP_REQ_GET)
		return reply_json(req, out, 200, f->obj);
	if (n == 3 && m == EVHTTP_REQ_DELETE) {
		v = json_pack("{s:s,s:s,s:b}", "id", f->id, "object", "container.file.deleted",
		              "deleted", 1);
		status = reply_json(req, out, 200, v);
		json_decref(v);
		memmove(&c->files[fi], &c->files[fi + 1], (c->nfiles - fi - 1) * sizeof(*c->files));
		c->nfiles--;
		file_free(f);
		return status;
	}
	if (n == 4 && strcmp(segs[3], "content") != 0)
		goto not_found;
	if (n == 4 && m == EVHTTP_REQ_GET) {
		evbuffer_add(out, f->data, f->len);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
		                  "application/octet-stream");
		return 200;
	}
	if (n > 4)
		goto not_found;
bad_method:
	return reply_error(req, out, 405, "invalid_request_error", NULL,
	                   "Method not allowed for this path.");
not_found:
	return reply_error(req, out, 404, "invalid_request_error", NULL, "Unknown path.");
}

/*
 * Routes a request outside /__stub/ to the state. segs borrows pieces of a
 * decoded copy of the path; at most 8 are looked at.
 */
static int
route(struct evhttp_request *req, struct evbuffer *out)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u != NULL ? evhttp_uri_get_path(u) : NULL;
	const char *query = u != NULL ? evhttp_uri_get_query(u) : NULL;
	struct evkeyvalq q = {0};
	char *copy = NULL, *segs[8], *tok, *save = NULL;
	size_t n = 0;
	bool found = false;
	int status;

	TAILQ_INIT(&q);
	if (path == NULL || (copy = evhttp_uridecode(path, 0, NULL)) == NULL) {
		status = reply_invalid(req, out, NULL, "Malformed request path.");
		goto done;
	}
	if (query != NULL && evhttp_parse_query_str(query, &q) != 0) {
		status = reply_invalid(req, out, NULL, "Malformed query string.");
		goto done;
	}
	for (tok = strtok_r(copy, "/", &save); tok != NULL; tok = strtok_r(NULL, "/", &save)) {
		if (!found) {
			/* Anything before "containers" is a prefix, e.g. /v1. */
			found = strcmp(tok, "containers") == 0;
			continue;
		}
		if (n == sizeof(segs) / sizeof(segs[0])) {
			status = reply_error(req, out, 404, "invalid_request_error", NULL,
			                     "Unknown path.");
			goto done;
		}
		segs[n++] = tok;
	}
	if (!found)
		status = reply_error(req, out, 404, "invalid_request_error", NULL, "Unknown path.");
	else
		status = api(req, out, segs, n, &q);
done:
	evhttp_clear_headers(&q);
	free(copy);
	return status;
}

/* ---- answering, now or later ---- */

static void
pending_unlink(struct pending *p)
{
	for (struct pending **pp = &S.pending; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

static void
pending_free(struct pending *p)
{
	if (p->timer != NULL)
		event_free(p->timer);
	if (p->watch != NULL)
		event_free(p->watch);
	json_decref(p->rec);
	if (p->body != NULL)
		evbuffer_free(p->body);
	free(p);
}

static void
drop_connection(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evhttp_connection_free(arg);
}

/*
 * Writes bytes straight to the connection's socket and closes it: for
 * "raw", the behaviour's bytes; for "reset", a head announcing the whole
 * body and half of it, then a close that resets (SO_LINGER 0). Nothing of
 * this request has been written through libevent yet, so the bytes are
 * the first the client sees of its answer.
 */
static void
write_raw(struct evhttp_request *req, enum action act, int status, struct evbuffer *body)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	size_t len = evbuffer_get_length(body);
	const char *data = (const char *)evbuffer_pullup(body, -1);
	struct linger lg = {1, 0};
	char head[256];
	int n;

	if (fd < 0) {
		evhttp_request_free(req);
		return;
	}
	if (act == ACT_RESET) {
		n = snprintf(head, sizeof(head),
		             "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
		             "Content-Length: %zu\r\n\r\n",
		             status, reason(status), len);
		(void)!send(fd, head, (size_t)n, MSG_NOSIGNAL);
		(void)!send(fd, data, len / 2, MSG_NOSIGNAL);
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		fprintf(stderr, "stub: resetting the connection mid-answer\n");
	} else if (len > 0) {
		(void)!send(fd, data, len, MSG_NOSIGNAL);
		fprintf(stderr, "stub: wrote %zu raw bytes\n", len);
	}
	/* Freeing the connection frees the request it still holds. */
	evhttp_connection_free(evcon);
}

/* Sends the answer, or drops the connection; takes body. "truncate"
 * starts a chunked answer, sends half the body and drops the connection
 * a moment later, as an upstream failing mid-stream would. */
static void
finish(struct evhttp_request *req, enum action act, int status, struct evbuffer *body)
{
	if (act == ACT_RESET || act == ACT_RAW) {
		write_raw(req, act, status, body);
		evbuffer_free(body);
		return;
	}
	if (act == ACT_TRUNCATE) {
		struct evhttp_connection *evcon = evhttp_request_get_connection(req);
		struct evbuffer *half = evbuffer_new();
		struct timeval later = {0, 200000};

		fprintf(stderr, "stub: truncating the answer\n");
		evbuffer_remove_buffer(body, half, evbuffer_get_length(body) / 2);
		evhttp_send_reply_start(req, status, reason(status));
		evhttp_send_reply_chunk(req, half);
		evbuffer_free(half);
		event_base_once(S.base, -1, EV_TIMEOUT, drop_connection, evcon, &later);
		evbuffer_free(body);
		return;
	}
	if (act == ACT_CLOSE) {
		struct evhttp_connection *evcon = evhttp_request_get_connection(req);

		fprintf(stderr, "stub: closing the connection unanswered\n");
		/* Freeing the connection frees the request it still holds. */
		if (evcon != NULL)
			evhttp_connection_free(evcon);
		else
			evhttp_request_free(req);
	} else {
		evhttp_send_reply(req, status, reason(status), body);
	}
	evbuffer_free(body);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	struct evbuffer *body = p->body;

	(void)fd;
	(void)what;
	pending_unlink(p);
	p->body = NULL;
	/* Unlinked first: finish may free the connection, which runs on_close. */
	finish(p->req, p->action, p->status, body);
	pending_free(p);
}

/* ---- event streams ---- */

/* Milliseconds since the epoch: what tests compare their own clock with. */
static json_int_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sse_unlink(struct sse_stream *st)
{
	for (struct sse_stream **pp = &S.sse; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == st) {
			*pp = st->next;
			return;
		}
	}
}

static void
sse_free(struct sse_stream *st)
{
	if (st->timer != NULL)
		event_free(st->timer);
	if (st->watch != NULL)
		event_free(st->watch);
	json_decref(st->rec);
	json_decref(st->events);
	free(st);
}

/* The connection of a stream still being sent is going away: the client
 * left mid-stream (the record says "aborted"), or the stub is stopping. */
static void
sse_closed(struct evhttp_connection *evcon)
{
	struct sse_stream **pp = &S.sse;

	while (*pp != NULL) {
		struct sse_stream *st = *pp;

		if (st->evcon != evcon) {
			pp = &st->next;
			continue;
		}
		*pp = st->next;
		if (!S.stopping) {
			fprintf(stderr, "stub: %s: the client went away after %zu event(s)\n",
			        evhttp_request_get_uri(st->req), st->i);
			json_object_set_new(st->rec, "aborted", json_true());
			json_object_set_new(st->rec, "sse_aborted_ms", json_integer(now_ms()));
		}
		/* Mid-answer, libevent lets go of the request: then it is ours. */
		if (evhttp_request_get_connection(st->req) == NULL)
			evhttp_request_free(st->req);
		sse_free(st);
	}
}

/*
 * The connection of a delayed or hanging request is going away. When
 * libevent has detached the request it is ours to free; otherwise freeing
 * the connection frees it.
 */
static void
on_close(struct evhttp_connection *evcon, void *arg)
{
	struct pending **pp = &S.pending;

	(void)arg;
	sse_closed(evcon);
	while (*pp != NULL) {
		struct pending *p = *pp;

		if (p->evcon != evcon) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		if (!S.stopping) {
			fprintf(stderr, "stub: %s: the client went away before the answer\n",
			        evhttp_request_get_uri(p->req));
			json_object_set_new(p->rec, "aborted", json_true());
		}
		/* After its last use: a request libevent let go of is ours. */
		if (evhttp_request_get_connection(p->req) == NULL)
			evhttp_request_free(p->req);
		pending_free(p);
	}
}

/*
 * The client hung up while its answer was held back. libevent does not read
 * a connection whose request is being answered, so it would not notice;
 * dropping the connection here runs on_close, which frees p.
 */
static void
on_peer_closed(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;

	(void)fd;
	(void)what;
	evhttp_connection_free(p->evcon);
}

/* Holds the answer back (delay or hang); takes body; borrows rec. */
static void
defer(struct evhttp_request *req, json_t *rec, enum action act, int status, struct evbuffer *body,
      long ms)
{
	struct pending *p = calloc(1, sizeof(*p));
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (p == NULL)
		goto fail;
	p->req = req;
	p->evcon = evhttp_request_get_connection(req);
	p->action = act;
	p->status = status;
	p->body = body;
	p->rec = json_incref(rec);
	if (act != ACT_HANG) {
		p->timer = evtimer_new(S.base, on_timer, p);
		if (p->timer == NULL || evtimer_add(p->timer, &tv) != 0)
			goto fail;
	}
	/* EV_CLOSED needs epoll's RDHUP; elsewhere a hang lasts until shutdown. */
	if (event_base_get_features(S.base) & EV_FEATURE_EARLY_CLOSE) {
		struct bufferevent *bev = evhttp_connection_get_bufferevent(p->evcon);

		p->watch = event_new(S.base, bufferevent_getfd(bev), EV_CLOSED | EV_PERSIST,
		                     on_peer_closed, p);
		if (p->watch == NULL || event_add(p->watch, NULL) != 0)
			goto fail;
	}
	evhttp_connection_set_closecb(p->evcon, on_close, NULL);
	p->next = S.pending;
	S.pending = p;
	return;
fail:
	fprintf(stderr, "stub: cannot defer an answer; answering now\n");
	if (p != NULL) {
		p->body = NULL;
		pending_free(p);
	}
	finish(req, act == ACT_HANG ? ACT_CLOSE : act, status, body);
}

/* One event of a behaviour's "events", as the standard writes it: its
 * "event" and "id" fields, its "data" (a string, a line per data field;
 * anything else as compact JSON on one line) and the blank line that ends
 * it; or "raw", written as it is. */
static void
sse_format(struct evbuffer *buf, json_t *ev)
{
	json_t *data = json_object_get(ev, "data"), *raw = json_object_get(ev, "raw");
	const char *v;

	if (raw != NULL) {
		evbuffer_add(buf, json_string_value(raw), json_string_length(raw));
		return;
	}
	if ((v = json_string_value(json_object_get(ev, "event"))) != NULL)
		evbuffer_add_printf(buf, "event: %s\n", v);
	if ((v = json_string_value(json_object_get(ev, "id"))) != NULL)
		evbuffer_add_printf(buf, "id: %s\n", v);
	if (json_is_string(data)) {
		const char *p = json_string_value(data), *nl;

		do {
			nl = strchr(p, '\n');
			evbuffer_add_printf(buf, "data: %.*s\n",
			                    (int)(nl ? nl - p : (long)strlen(p)), p);
			p = nl ? nl + 1 : NULL;
		} while (p != NULL);
	} else if (data != NULL) {
		char *text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);

		evbuffer_add_printf(buf, "data: %s\n", text ? text : "null");
		free(text);
	}
	evbuffer_add(buf, "\n", 1);
}

static void
sse_schedule(struct sse_stream *st)
{
	long ms = (long)json_integer_value(
	        json_object_get(json_array_get(st->events, st->i), "delay_ms"));
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(st->timer, &tv);
}

/* Sends the next event; after the last, ends the answer (or, with "then":
 * "close", drops the connection as an upstream failing mid-stream would). */
static void
sse_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sse_stream *st = arg;
	struct evbuffer *buf = evbuffer_new();
	json_int_t now, times;

	(void)fd;
	(void)what;
	if (buf != NULL) {
		sse_format(buf, json_array_get(st->events, st->i));
		evhttp_send_reply_chunk(st->req, buf);
		evbuffer_free(buf);
	}
	st->sent++;
	times = json_integer_value(json_object_get(json_array_get(st->events, st->i), "times"));
	if (++st->again >= (size_t)(times > 0 ? times : 1)) {
		st->i++;
		st->again = 0;
	}
	now = now_ms();
	if (st->sent == 1)
		json_object_set_new(st->rec, "sse_first_ms", json_integer(now));
	json_object_set_new(st->rec, "sse_last_ms", json_integer(now));
	json_object_set_new(st->rec, "sse_sent", json_integer((json_int_t)st->sent));
	if (st->i < json_array_size(st->events)) {
		sse_schedule(st);
		return;
	}
	sse_unlink(st);
	if (st->cut) {
		struct timeval later = {0, 100000};

		fprintf(stderr, "stub: dropping the stream after its last event\n");
		json_object_set_new(st->rec, "sse_cut", json_true());
		event_base_once(S.base, -1, EV_TIMEOUT, drop_connection, st->evcon, &later);
	} else {
		evhttp_send_reply_end(st->req);
		json_object_set_new(st->rec, "sse_done_ms", json_integer(now_ms()));
	}
	sse_free(st);
}

/* The client hung up mid-stream; dropping the connection runs on_close,
 * which marks the record and frees st. */
static void
sse_peer_closed(evutil_socket_t fd, short what, void *arg)
{
	struct sse_stream *st = arg;

	(void)fd;
	(void)what;
	evhttp_connection_free(st->evcon);
}

/* Starts answering with the behaviour's events: the head at once (chunked,
 * text/event-stream unless its headers say otherwise), then each event
 * after its delay_ms. Borrows rec and b. */
static void
sse_start(struct evhttp_request *req, json_t *rec, json_t *b)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	struct sse_stream *st = calloc(1, sizeof(*st));
	json_t *status = json_object_get(b, "status");
	int code = status != NULL ? (int)json_integer_value(status) : 200;
	const char *then = json_string_value(json_object_get(b, "then"));

	if (st == NULL || (st->timer = evtimer_new(S.base, sse_tick, st)) == NULL) {
		fprintf(stderr, "stub: out of memory starting an event stream\n");
		free(st);
		evhttp_send_error(req, 500, "stub out of memory");
		return;
	}
	st->req = req;
	st->evcon = evhttp_request_get_connection(req);
	st->rec = json_incref(rec);
	st->events = json_incref(json_object_get(b, "events"));
	st->cut = then != NULL && strcmp(then, "close") == 0;
	if (evhttp_find_header(oh, "Content-Type") == NULL)
		evhttp_add_header(oh, "Content-Type", "text/event-stream");
	if (evhttp_find_header(oh, "Cache-Control") == NULL)
		evhttp_add_header(oh, "Cache-Control", "no-cache");
	if (event_base_get_features(S.base) & EV_FEATURE_EARLY_CLOSE) {
		struct bufferevent *bev = evhttp_connection_get_bufferevent(st->evcon);

		st->watch = event_new(S.base, bufferevent_getfd(bev), EV_CLOSED | EV_PERSIST,
		                      sse_peer_closed, st);
		if (st->watch != NULL)
			event_add(st->watch, NULL);
	}
	evhttp_connection_set_closecb(st->evcon, on_close, NULL);
	st->next = S.sse;
	S.sse = st;
	evhttp_send_reply_start(req, code, reason(code));
	json_object_set_new(rec, "sse_start_ms", json_integer(now_ms()));
	sse_schedule(st);
}

/* Applies a scripted behaviour's status and body; false when it has neither. */
static bool
scripted(struct evhttp_request *req, json_t *b, struct evbuffer *out, int *status)
{
	json_t *st = json_object_get(b, "status"), *body = json_object_get(b, "body");
	json_t *js = json_object_get(b, "json");

	json_t *raw = json_object_get(b, "raw");

	if (raw != NULL) {
		evbuffer_add(out, json_string_value(raw), json_string_length(raw));
		*status = 0;
		return true;
	}
	if (st == NULL && body == NULL && js == NULL)
		return false;
	*status = st != NULL ? (int)json_integer_value(st) : 200;
	if (js != NULL)
		*status = reply_json(req, out, *status, js);
	else if (body != NULL)
		evbuffer_add(out, json_string_value(body), json_string_length(body));
	return true;
}

static void
serve(struct evhttp_request *req)
{
	json_t *b, *rec;
	struct evbuffer *out = evbuffer_new();
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	enum action act = ACT_REPLY;
	const char *a, *k;
	json_t *v;
	long delay;
	int status;

	if (out == NULL) {
		evhttp_send_error(req, 500, "stub out of memory");
		return;
	}
	rec = record(req);
	b = queue_pop(req);
	if (json_object_get(b, "events") != NULL) {
		json_object_foreach(json_object_get(b, "headers"), k, v)
		{
			evhttp_remove_header(oh, k);
			evhttp_add_header(oh, k, json_string_value(v));
		}
		fprintf(stderr, "stub: %s %s -> %zu event(s) (scripted)\n",
		        method_name(evhttp_request_get_command(req)), evhttp_request_get_uri(req),
		        json_array_size(json_object_get(b, "events")));
		sse_start(req, rec, b);
		json_decref(b);
		evbuffer_free(out);
		return;
	}
	if (!scripted(req, b, out, &status))
		status = route(req, out);
	json_object_foreach(json_object_get(b, "headers"), k, v)
	{
		evhttp_remove_header(oh, k);
		evhttp_add_header(oh, k, json_string_value(v));
	}
	a = json_string_value(json_object_get(b, "action"));
	if (a != NULL)
		act = strcmp(a, "hang") == 0       ? ACT_HANG
		      : strcmp(a, "truncate") == 0 ? ACT_TRUNCATE
		      : strcmp(a, "reset") == 0    ? ACT_RESET
		                                   : ACT_CLOSE;
	if (json_object_get(b, "raw") != NULL)
		act = ACT_RAW;
	delay = (long)json_integer_value(json_object_get(b, "delay_ms"));
	fprintf(stderr, "stub: %s %s -> %s%d%s\n", method_name(evhttp_request_get_command(req)),
	        evhttp_request_get_uri(req),
	        act == ACT_HANG    ? "hang "
	        : act == ACT_CLOSE ? "close "
	        : act == ACT_RESET ? "reset "
	        : act == ACT_RAW   ? "raw "
	                           : "",
	        status, b != NULL ? " (scripted)" : "");
	json_decref(b);
	/* Closing waits for the loop too: never free a connection inside its own callback. */
	if (act != ACT_REPLY || delay > 0)
		defer(req, rec, act, status, out, delay);
	else
		finish(req, act, status, out);
}

/* ---- control API ---- */

static int
control(struct evhttp_request *req, const char *path, struct evbuffer *out)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	json_t *v;
	int status;

	if (strcmp(path, "/__stub/health") == 0 && m == EVHTTP_REQ_GET) {
		evbuffer_add(out, "ok", 2);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
		                  "text/plain");
		return 200;
	}
	if (strcmp(path, "/__stub/requests") == 0 && m == EVHTTP_REQ_GET) {
		const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));

		status = reply_json(req, out, 200, S.records);
		if (q != NULL && strcmp(q, "take=1") == 0)
			json_array_clear(S.records);
		return status;
	}
	if (strcmp(path, "/__stub/requests") == 0 && m == EVHTTP_REQ_DELETE) {
		json_array_clear(S.records);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
		                  "application/json");
		evbuffer_add(out, "{}", 2);
		return 200;
	}
	if (strcmp(path, "/__stub/next") == 0 && m == EVHTTP_REQ_DELETE) {
		json_array_clear(S.queue);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
		                  "application/json");
		evbuffer_add(out, "{}", 2);
		return 200;
	}
	if (strcmp(path, "/__stub/next") == 0 && m == EVHTTP_REQ_POST) {
		size_t len, i;
		const unsigned char *body = req_body(req, &len);
		json_error_t jerr;
		json_t *in = json_loadb((const char *)body, len, 0, &jerr), *list, *it;
		char msg[256];

		if (in == NULL) {
			snprintf(msg, sizeof(msg), "invalid JSON: %s", jerr.text);
			return reply_invalid(req, out, NULL, msg);
		}
		list = json_is_array(in) ? json_incref(in) : json_pack("[O]", in);
		json_decref(in);
		if (list == NULL)
			return reply_error(req, out, 500, "server_error", NULL,
			                   "stub out of memory");
		if (json_array_size(S.queue) + json_array_size(list) > QUEUE_MAX) {
			json_decref(list);
			return reply_invalid(req, out, NULL, "the behaviour queue is full");
		}
		json_array_foreach(list, i, it)
		{
			if (behaviour_check(it, msg, sizeof(msg)) != 0) {
				json_decref(list);
				return reply_invalid(req, out, NULL, msg);
			}
		}
		json_array_extend(S.queue, list);
		json_decref(list);
		v = json_pack("{s:I}", "queued", (json_int_t)json_array_size(S.queue));
		status = reply_json(req, out, 200, v);
		json_decref(v);
		return status;
	}
	return reply_error(req, out, 404, "invalid_request_error", NULL, "Unknown stub control.");
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u != NULL ? evhttp_uri_get_path(u) : NULL;
	struct evbuffer *out;
	int status;

	(void)arg;
	if (path == NULL || strncmp(path, "/__stub/", 8) != 0) {
		serve(req);
		return;
	}
	out = evbuffer_new();
	if (out == NULL) {
		evhttp_send_error(req, 500, "stub out of memory");
		return;
	}
	status = control(req, path, out);
	evhttp_send_reply(req, status, reason(status), out);
	evbuffer_free(out);
}

/* ---- startup ---- */

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	event_base_loopexit(S.base, NULL);
}

/* Writes "port\n" to path through a temporary file and rename. */
static int
write_port_file(const char *path, int port)
{
	char tmp[PATH_MAX];
	FILE *f;
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());

	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	if (fprintf(f, "%d\n", port) < 0 || fclose(f) != 0) {
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* ---- TLS ---- */

/* Writes "stub: what[: file]" and OpenSSL's queued errors to stderr, clearing them. */
static void
tls_errors(const char *what, const char *file)
{
	unsigned long e;
	char buf[256];

	fprintf(stderr, "stub: %s%s%s\n", what, file != NULL ? ": " : "", file != NULL ? file : "");
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, "stub:   %s\n", buf);
	}
}

/* Logs the alerts either side sends: a refused handshake shows up nowhere else. */
static void
on_tls_info(const SSL *ssl, int where, int ret)
{
	(void)ssl;
	if (!(where & SSL_CB_ALERT) || (ret & 0xff) == SSL_AD_CLOSE_NOTIFY)
		return;
	fprintf(stderr, "stub: tls: %s %s alert \"%s\"\n",
	        (where & SSL_CB_READ) ? "the client sent" : "the stub sent",
	        SSL_alert_type_string_long(ret), SSL_alert_desc_string_long(ret));
}

/* A server context for TLS 1.2+ with cert_file's chain and key_file's key, or NULL. */
static SSL_CTX *
tls_new(const char *cert_file, const char *key_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		tls_errors("cannot make a TLS context", NULL);
		goto fail;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		tls_errors("cannot require TLS 1.2", NULL);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		tls_errors("cannot load the certificate", cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_errors("cannot load the key, or it does not match the certificate", key_file);
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* A bare connect and close (a readiness probe) is not worth an alert. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	SSL_CTX_set_info_callback(ctx, on_tls_info);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * evhttp's bufferevent factory: every accepted connection gets its own SSL
 * in accepting state, freed with the bufferevent (BEV_OPT_CLOSE_ON_FREE).
 * Returning NULL makes evhttp drop the connection.
 */
static struct bufferevent *
on_new_bev(struct event_base *base, void *arg)
{
	SSL_CTX *ctx = arg;
	SSL *ssl = SSL_new(ctx);
	struct bufferevent *bev;

	if (ssl == NULL) {
		tls_errors("cannot make a TLS session", NULL);
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		fprintf(stderr, "stub: cannot make a TLS bufferevent\n");
		SSL_free(ssl);
		return NULL;
	}
	/* A client that closes without close_notify (curl often does) is just done. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* Splits "HOST:PORT" or "[V6]:PORT" into host and port. */
static int
parse_listen(const char *s, char *host, size_t n, int *port)
{
	const char *colon = strrchr(s, ':');
	const char *h = s;
	size_t hl;
	long p;

	if (colon == NULL || parse_int(colon + 1, 0, 65535, &p) != 0)
		return -1;
	hl = (size_t)(colon - s);
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= n)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (int)p;
	return 0;
}

int
main(int argc, char **argv)
{
	const char *port_file = NULL, *listen_at = "127.0.0.1:0";
	const char *tls_cert = NULL, *tls_key = NULL;
	char host[256];
	int port, rc = 1;
	struct evhttp_bound_socket *bound;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct event *sigterm = NULL, *sigint = NULL;

	bool usage = false;

	for (int i = 1; i < argc && !usage; i++) {
		if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
			port_file = argv[++i];
		else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			listen_at = argv[++i];
		else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc)
			tls_cert = argv[++i];
		else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc)
			tls_key = argv[++i];
		else
			usage = true;
	}
	if (usage || port_file == NULL || (tls_cert == NULL) != (tls_key == NULL) ||
	    parse_listen(listen_at, host, sizeof(host), &port) != 0) {
		fprintf(stderr,
		        "usage: %s --port-file FILE [--listen HOST:PORT] "
		        "[--tls-cert FILE --tls-key FILE]\n",
		        argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	S.rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&S;
	S.records = json_array();
	S.queue = json_array();
	/* Precise timers: libevent otherwise reads CLOCK_MONOTONIC_COARSE, whose
	 * tick (a few ms) lets a delay_ms answer go out a little early, and
	 * tests measure delays with the precise clock. */
	{
		struct event_config *ec = event_config_new();

		S.base = NULL;
		if (ec) {
			event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
			S.base = event_base_new_with_config(ec);
			event_config_free(ec);
		}
	}
	S.http = S.base != NULL ? evhttp_new(S.base) : NULL;
	if (S.records == NULL || S.queue == NULL || S.http == NULL) {
		fprintf(stderr, "stub: out of memory\n");
		goto done;
	}
	evhttp_set_max_body_size(S.http, (ev_ssize_t)BODY_MAX);
	evhttp_set_max_headers_size(S.http, (ev_ssize_t)HEADERS_MAX);
	evhttp_set_allowed_methods(S.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                           EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                           EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	/* A scripted "body" goes out with exactly the headers it was given. */
	evhttp_set_default_content_type(S.http, NULL);
	evhttp_set_gencb(S.http, on_request, NULL);
	if (tls_cert != NULL) {
		S.tls = tls_new(tls_cert, tls_key);
		if (S.tls == NULL)
			goto done;
		evhttp_set_bevcb(S.http, on_new_bev, S.tls);
	}
	bound = evhttp_bind_socket_with_handle(S.http, host, (ev_uint16_t)port);
	if (bound == NULL) {
		fprintf(stderr, "stub: cannot listen on %s\n", listen_at);
		goto done;
	}
	/* evhttp listens with a backlog of 128; tests open hundreds of upstream
	 * connections at once, and a SYN the queue drops waits a second or more
	 * for its retry. Linux takes a second listen() as a new backlog. */
	if (listen(evhttp_bound_socket_get_fd(bound), 4096) != 0) {
		perror("stub: listen");
		goto done;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) != 0) {
		perror("stub: getsockname");
		goto done;
	}
	port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                      : ((struct sockaddr_in *)&ss)->sin_port);
	sigterm = evsignal_new(S.base, SIGTERM, on_signal, NULL);
	sigint = evsignal_new(S.base, SIGINT, on_signal, NULL);
	if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) != 0 ||
	    evsignal_add(sigint, NULL) != 0) {
		fprintf(stderr, "stub: cannot handle signals\n");
		goto done;
	}
	if (write_port_file(port_file, port) != 0) {
		fprintf(stderr, "stub: cannot write %s: %s\n", port_file, strerror(errno));
		goto done;
	}
	fprintf(stderr, "stub: listening on %s port %d%s\n", host, port,
	        S.tls != NULL ? " (TLS)" : "");
	if (event_base_dispatch(S.base) != 0)
		goto done;
	rc = 0;
done:
	/* Freeing the server frees its connections, and their requests with them. */
	S.stopping = true;
	if (S.http != NULL)
		evhttp_free(S.http);
	while (S.pending != NULL) {
		struct pending *p = S.pending;

		S.pending = p->next;
		pending_free(p);
	}
	while (S.sse != NULL) {
		struct sse_stream *st = S.sse;

		S.sse = st->next;
		sse_free(st);
	}
	if (sigterm != NULL)
		event_free(sigterm);
	if (sigint != NULL)
		event_free(sigint);
	if (S.base != NULL)
		event_base_free(S.base);
	SSL_CTX_free(S.tls);
	for (size_t i = 0; i < S.n; i++)
		container_free(S.c[i]);
	free(S.c);
	json_decref(S.records);
	json_decref(S.queue);
	libevent_global_shutdown();
	return rc;
}
