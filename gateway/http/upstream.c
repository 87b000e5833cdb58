#include "http/upstream.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/text.h"

#define POOL_MAX 64 /* idle easy handles kept for reuse */

/*
 * Transfers are spread over SHARDS multi handles, each with its own
 * connection cache. libcurl looks for a free connection, and for the oldest
 * idle one to close, by walking every connection to the host: with
 * thousands of requests in flight to an HTTP/1.1 upstream that walk was
 * most of a request's cost. A new transfer goes to the least busy shard, so
 * at light load everything stays on the first and its connections.
 */
#define SHARDS 16

struct shard {
	struct upstream *u;
	CURLM *multi;
	struct event *timer;
	size_t busy; /* transfers under way */
};

struct upstream {
	struct event_base *base;
	struct shard shards[SHARDS];
	char *base_url;
	long timeout_ms, connect_timeout_ms;
	size_t max_response;
	char *ca_file;
	int insecure;
	char *pinned_pubkey;
	CURL *pool[POOL_MAX];
	size_t npool;
};

struct upstream_call {
	struct upstream *u;
	struct shard *sh;
	CURL *easy;
	struct curl_slist *headers;
	char *url;
	char *body;
	size_t len, cap;
	int too_large;
	int malformed;
	int retries;
	struct upstream_res res;
	struct upstream_req req; /* callbacks and flags of the request */
	upstream_done_fn done;
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
};

static void process_done(struct shard *sh);

static void
on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	struct shard *sh = arg;
	int running, flags = 0;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(sh->multi, fd, flags, &running);
	process_done(sh);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct shard *sh = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(sh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	process_done(sh);
}

/* libcurl says which sockets to watch; each gets one persistent event,
 * remembered with curl_multi_assign. */
static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct shard *sh = userp;
	struct event *ev = socketp;
	short kind;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (ev) {
			event_free(ev);
			curl_multi_assign(sh->multi, s, NULL);
		}
		return 0;
	}
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	       ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (ev) {
		event_del(ev);
		event_assign(ev, sh->u->base, s, kind, on_socket_event, sh);
	} else {
		ev = event_new(sh->u->base, s, kind, on_socket_event, sh);
		if (ev == NULL)
			return -1;
		curl_multi_assign(sh->multi, s, ev);
	}
	return event_add(ev, NULL);
}

static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct shard *sh = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0)
		return evtimer_del(sh->timer);
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(sh->timer, &tv);
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct upstream_call *c = userdata;
	size_t n = size * nmemb, cap, took;
	char *grown;

	if (c->res.streamed) {
		took = c->req.on_data(c->arg, ptr, n);
		if (took == UPSTREAM_PAUSE)
			return CURL_WRITEFUNC_PAUSE;
		c->res.bytes += took;
		return took;
	}
	c->res.bytes += n;
	if (c->len + n > c->u->max_response) {
		c->too_large = 1;
		return 0; /* makes libcurl fail the transfer */
	}
	if (c->len + n + 1 > c->cap) {
		cap = c->cap ? c->cap : 4096;
		while (cap < c->len + n + 1)
			cap *= 2;
		if (cap > c->u->max_response + 1)
			cap = c->u->max_response + 1;
		grown = realloc(c->body, cap);
		if (grown == NULL)
			return 0;
		c->body = grown;
		c->cap = cap;
	}
	memcpy(c->body + c->len, ptr, n);
	c->len += n;
	c->body[c->len] = '\0';
	return n;
}

/* Copies a header's value into dst if the line is that header. */
static void
take_header(const char *line, size_t n, const char *name, char *dst, size_t cap)
{
	size_t k = strlen(name), v;

	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return;
	line += k + 1;
	n -= k + 1;
	while (n && (*line == ' ' || *line == '\t'))
		line++, n--;
	while (n && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
		n--;
	v = n < cap - 1 ? n : cap - 1;
	memcpy(dst, line, v);
	dst[v] = '\0';
}

/* Headers of the upstream's answer a client of the API reads, passed
 * back as they came: rate limits, processing time, retry advice. */
static const char *const relayed_headers[] = {
        "openai-processing-ms",
        "openai-version",
        "retry-after-ms",
        "x-should-retry",
        "x-ratelimit-", /* a prefix: every rate-limit header */
        NULL,
};

/* Keeps line (a header of n bytes) in res->relayed when a client reads
 * it, as "name: value" lines; those that do not fit are left out. */
static void
keep_relayed(struct upstream_res *res, const char *line, size_t n)
{
	size_t i, k, have = strlen(res->relayed);
	const char *colon = memchr(line, ':', n);

	if (colon == NULL)
		return;
	k = (size_t)(colon - line);
	for (i = 0; relayed_headers[i]; i++) {
		size_t m = strlen(relayed_headers[i]);

		if ((relayed_headers[i][m - 1] == '-' ? k > m : k == m) &&
		    strncasecmp(line, relayed_headers[i], m) == 0)
			break;
	}
	if (relayed_headers[i] == NULL)
		return;
	while (n && (line[n - 1] == '\r' || line[n - 1] == '\n'))
		n--;
	if (have + n + 2 > sizeof(res->relayed))
		return;
	memcpy(res->relayed + have, line, n);
	res->relayed[have + n] = '\n';
	res->relayed[have + n + 1] = '\0';
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct upstream_call *c = userdata;
	size_t n = size * nmemb;

	char length[32] = "";
	long status = 0;

	/* A new status line (after 100 Continue, say) starts a new answer. */
	if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
		c->res.content_type[0] = '\0';
		c->res.request_id[0] = '\0';
		c->res.retry_after[0] = '\0';
		c->res.relayed[0] = '\0';
		c->res.content_length = -1;
		return n;
	}
	/* The empty line: the head of a final answer is complete. */
	if ((n == 2 && ptr[0] == '\r') || (n == 1 && ptr[0] == '\n')) {
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
		c->res.status = (int)status;
		if (status >= 200 && c->req.on_head)
			c->res.streamed = c->req.on_head(c->arg, &c->res) == 1;
		return n;
	}
	keep_relayed(&c->res, ptr, n);
	take_header(ptr, n, "content-type", c->res.content_type, sizeof(c->res.content_type));
	take_header(ptr, n, "x-request-id", c->res.request_id, sizeof(c->res.request_id));
	take_header(ptr, n, "retry-after", c->res.retry_after, sizeof(c->res.retry_after));
	take_header(ptr, n, "content-length", length, sizeof(length));
	/* Two lengths that differ leave the rest of the connection's bytes
	 * open to two readings (response smuggling): the answer is refused,
	 * and returning short makes libcurl drop the connection. */
	if (length[0] && c->res.content_length >= 0 &&
	    strtoll(length, NULL, 10) != c->res.content_length) {
		c->malformed = 1;
		return 0;
	}
	if (length[0])
		c->res.content_length = strtoll(length, NULL, 10);
	return n;
}

static void
release(struct upstream_call *c)
{
	struct upstream *u = c->u;

	if (c->easy) {
		if (c->sh) {
			curl_multi_remove_handle(c->sh->multi, c->easy);
			c->sh->busy--;
		}
		if (u->npool < POOL_MAX) {
			curl_easy_reset(c->easy);
			u->pool[u->npool++] = c->easy;
		} else {
			curl_easy_cleanup(c->easy);
		}
	}
	curl_slist_free_all(c->headers);
	free(c->url);
	free(c->body);
	free(c);
}

static size_t
on_read(char *buf, size_t size, size_t nmemb, void *userdata)
{
	struct upstream_call *c = userdata;
	size_t n = c->req.read(c->arg, buf, size * nmemb);

	if (n == UPSTREAM_PAUSE)
		return CURL_READFUNC_PAUSE;
	if (n == UPSTREAM_ABORT)
		return CURL_READFUNC_ABORT;
	return n;
}

static int
on_seek(void *userdata, curl_off_t offset, int origin)
{
	struct upstream_call *c = userdata;

	if (offset != 0 || origin != SEEK_SET || c->req.rewind(c->arg) < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	return CURL_SEEKFUNC_OK;
}

/* A connection that could not be made carried nothing, so a request that
 * is safe to repeat is tried once more. */
static int
retry(struct upstream_call *c, CURLcode rc)
{
	if (rc != CURLE_COULDNT_CONNECT || !c->req.retry_connect || c->retries++ > 0)
		return 0;
	curl_multi_remove_handle(c->sh->multi, c->easy);
	c->len = 0;
	c->res.bytes = 0;
	c->errbuf[0] = '\0';
	log_msg(LOG_INFO, NULL, "upstream connection failed before sending; retrying once");
	return curl_multi_add_handle(c->sh->multi, c->easy) == CURLM_OK;
}

static void
finish(struct upstream_call *c, CURLcode rc)
{
	long status = 0, sent = 0;
	double total = 0;

	if (retry(c, rc))
		return;
	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c->easy, CURLINFO_REQUEST_SIZE, &sent);
	c->res.sent = sent > 0;
	curl_easy_getinfo(c->easy, CURLINFO_TOTAL_TIME, &total);
	c->res.status = (int)status;
	c->res.ms = total * 1000.0;
	c->res.body = c->body ? c->body : "";
	c->res.len = c->len;
	c->res.error = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
	if (rc == CURLE_OK)
		c->res.failure = UPSTREAM_OK;
	else if (c->too_large)
		c->res.failure = UPSTREAM_TOO_LARGE;
	else if (c->malformed)
		c->res.failure = UPSTREAM_MALFORMED;
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		c->res.failure = UPSTREAM_TIMEOUT;
	else
		c->res.failure = UPSTREAM_UNREACHABLE;
	c->done(&c->res, c->arg);
	release(c);
}

static void
process_done(struct shard *sh)
{
	struct upstream_call *c;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(sh->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
		finish(c, msg->data.result);
	}
}

static int
shard_init(struct shard *sh, struct upstream *u, const struct upstream_settings *s)
{
	/* libcurl's cache counts connections in use too, and when it is full
	 * a finished transfer's connection is closed rather than kept: room
	 * for this shard's share of the requests in flight, and the idle
	 * connections asked for, keeps it from closing what is needed again a
	 * moment later (a connect and a TLS handshake each time). */
	long keep = (s->max_idle_connections + s->max_inflight) / SHARDS + 64;

	sh->u = u;
	sh->multi = curl_multi_init();
	sh->timer = evtimer_new(u->base, on_timer, sh);
	if (sh->multi == NULL || sh->timer == NULL)
		return -1;
	curl_multi_setopt(sh->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(sh->multi, CURLMOPT_SOCKETDATA, sh);
	curl_multi_setopt(sh->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(sh->multi, CURLMOPT_TIMERDATA, sh);
	curl_multi_setopt(sh->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(sh->multi, CURLMOPT_MAXCONNECTS, keep);
	return 0;
}

static struct shard *
least_busy(struct upstream *u)
{
	struct shard *best = &u->shards[0];
	size_t i;

	for (i = 1; i < SHARDS && best->busy > 0; i++)
		if (u->shards[i].busy < best->busy)
			best = &u->shards[i];
	return best;
}

struct upstream *
upstream_new(struct event_base *base, const struct upstream_settings *s, struct err *e)
{
	struct upstream *u = calloc(1, sizeof(*u));
	size_t i;

	if (u == NULL)
		goto fail;
	u->base = base;
	u->timeout_ms = s->timeout_ms;
	u->connect_timeout_ms = s->connect_timeout_ms;
	u->max_response = s->max_response_bytes;
	u->insecure = s->insecure_skip_verify;
	u->base_url = strdup(s->base_url);
	u->ca_file = s->ca_file ? strdup(s->ca_file) : NULL;
	u->pinned_pubkey = s->pinned_pubkey ? strdup(s->pinned_pubkey) : NULL;
	if (u->base_url == NULL || (s->ca_file && u->ca_file == NULL) ||
	    (s->pinned_pubkey && u->pinned_pubkey == NULL))
		goto fail;
	for (i = 0; i < SHARDS; i++)
		if (shard_init(&u->shards[i], u, s) < 0)
			goto fail;
	if (u->insecure)
		log_warn("upstream.insecure_skip_verify is set: the upstream's TLS certificate "
		         "is NOT verified");
	return u;
fail:
	err_set(e, 500, ERR_INTERNAL, "upstream_init", NULL, "cannot set up the upstream client");
	upstream_free(u);
	return NULL;
}

void
upstream_free(struct upstream *u)
{
	size_t i;

	if (u == NULL)
		return;
	for (i = 0; i < u->npool; i++)
		curl_easy_cleanup(u->pool[i]);
	for (i = 0; i < SHARDS; i++) {
		if (u->shards[i].multi)
			curl_multi_cleanup(u->shards[i].multi);
		if (u->shards[i].timer)
			event_free(u->shards[i].timer);
	}
	free(u->base_url);
	free(u->ca_file);
	free(u->pinned_pubkey);
	free(u);
}

static int
configure(struct upstream_call *c, const struct upstream_req *req)
{
	struct upstream *u = c->u;
	CURL *h = c->easy;
	struct curl_slist *l;
	size_t i;

	for (i = 0; i < req->nheaders; i++) {
		if ((l = curl_slist_append(c->headers, req->headers[i])) == NULL)
			return -1;
		c->headers = l;
	}
	/* No 100-continue round trip: the body is already validated. */
	if ((l = curl_slist_append(c->headers, "Expect:")) == NULL)
		return -1;
	c->headers = l;

	curl_easy_setopt(h, CURLOPT_URL, c->url);
	curl_easy_setopt(h, CURLOPT_PRIVATE, c);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* A streamed answer (a download, Server-Sent Events) may take as long
	 * as it keeps moving: it fails when nothing arrives for the timeout
	 * instead of after it in all. */
	if (req->on_data) {
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
		                 u->timeout_ms / 1000 > 0 ? u->timeout_ms / 1000 : 1L);
	} else {
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, u->timeout_ms);
	}
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, u->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	/* The answers that are read whole are small JSON; libcurl's 16 KiB
	 * receive buffer is kept for those streamed through (downloads). */
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, req->on_data ? 16384L : 4096L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, u->insecure ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, u->insecure ? 0L : 2L);
	if (u->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, u->ca_file);
	if (u->pinned_pubkey)
		curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, u->pinned_pubkey);
	if (req->read) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, c);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_size);
		if (req->rewind) {
			curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
			curl_easy_setopt(h, CURLOPT_SEEKDATA, c);
		}
	} else if (req->body || strcmp(req->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	return 0;
}

struct upstream_call *
upstream_start(struct upstream *u, const struct upstream_req *req, upstream_done_fn done, void *arg,
               struct err *e)
{
	struct upstream_call *c = calloc(1, sizeof(*c));
	struct shard *sh;
	size_t n;

	if (c == NULL)
		goto fail;
	c->u = u;
	c->done = done;
	c->arg = arg;
	c->req = *req;
	c->res.content_length = -1;
	n = strlen(u->base_url) + strlen(req->path) + 1;
	c->url = malloc(n);
	if (c->url == NULL)
		goto fail;
	text_join(c->url, n, u->base_url, req->path);
	c->easy = u->npool ? u->pool[--u->npool] : curl_easy_init();
	if (c->easy == NULL || configure(c, req) < 0)
		goto fail;
	sh = least_busy(u);
	if (curl_multi_add_handle(sh->multi, c->easy) != CURLM_OK)
		goto fail;
	c->sh = sh;
	sh->busy++;
	return c;
fail:
	if (c) {
		if (c->easy) {
			curl_easy_cleanup(c->easy);
			c->easy = NULL;
		}
		release(c);
	}
	err_set(e, 500, ERR_INTERNAL, "upstream_start", NULL,
	        "the gateway could not start the upstream call");
	return NULL;
}

void
upstream_cancel(struct upstream_call *c)
{
	if (c)
		release(c);
}

void
upstream_resume(struct upstream_call *c)
{
	if (c)
		curl_easy_pause(c->easy, CURLPAUSE_CONT);
}
