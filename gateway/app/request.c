#include "app/request.h"

#include <event2/buffer.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "http/multipart.h"
#include "lib/secmem.h"
#include "server.h"
#include "app/store.h"
#include "http/tls.h"
#include "http/upstream.h"

/* Request ids: a random per-process prefix and a counter, so they are
 * unique without a syscall per request and unguessable across restarts. */
static uint64_t id_prefix;
static atomic_uint_fast64_t id_counter;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;

static void
id_init(void)
{
	if (RAND_bytes((unsigned char *)&id_prefix, sizeof(id_prefix)) != 1)
		id_prefix = (uint64_t)time(NULL) * 2654435761u;
}

static void
make_id(char *dst, size_t n)
{
	pthread_once(&id_once, id_init);
	snprintf(dst, n, "req_%016llx%016llx", (unsigned long long)id_prefix,
	         (unsigned long long)(atomic_fetch_add_explicit(&id_counter, 1,
	                                                        memory_order_relaxed) +
	                              1));
}

struct request *
request_new(struct server *srv, struct conn *conn, const char *client)
{
	struct request *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->srv = srv;
	r->conn = conn;
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	make_id(r->id, sizeof(r->id));
	snprintf(r->client, sizeof(r->client), "%s", client);
	r->snap = server_request_begin(srv, r);
	return r;
}

static const char *
rebase(const char *p, const char *from, char *to)
{
	return p ? to + (p - from) : NULL;
}

int
request_take_head(struct request *r, const char *buf, size_t len, const struct httpmsg_head *h)
{
	const char *q;
	size_t i, plen;

	/* The head holds credentials, so it lives in wiped memory. */
	r->head_buf = secmem_alloc(len + 1);
	if (r->head_buf == NULL)
		return -1;
	memcpy(r->head_buf, buf, len);
	r->head_buf[len] = '\0';
	r->head = *h;
	r->head.method = rebase(h->method, buf, r->head_buf);
	r->head.target = rebase(h->target, buf, r->head_buf);
	for (i = 0; i < h->nheaders; i++) {
		r->head.headers[i].name = rebase(h->headers[i].name, buf, r->head_buf);
		r->head.headers[i].value = rebase(h->headers[i].value, buf, r->head_buf);
	}
	snprintf(r->method, sizeof(r->method), "%.*s", (int)h->method_len, h->method);

	q = memchr(h->target, '?', h->target_len);
	plen = q ? (size_t)(q - h->target) : h->target_len;
	r->path = strndup(h->target, plen);
	if (q)
		r->query = strndup(q + 1, h->target_len - plen - 1);
	if (r->path == NULL || (q && r->query == NULL))
		return -1;
	return 0;
}

int
request_append_body(struct request *r, const char *data, size_t n)
{
	size_t cap;
	char *grown;

	if (r->body_len + n + 1 > r->body_cap) {
		cap = r->body_cap ? r->body_cap : 4096;
		while (cap < r->body_len + n + 1)
			cap *= 2;
		/* Once a client has sent a mebibyte of what its Content-Length
		 * announced, the rest gets room in one step: no more copies, and
		 * no doubling past the size. Before that, room follows the bytes,
		 * so a head alone cannot make the gateway reserve much. */
		if (r->body_expect >= r->body_len + n &&
		    (r->body_len + n >= REQUEST_BODY_STEP || cap > r->body_expect))
			cap = (size_t)r->body_expect + 1;
		grown = secmem_realloc(r->body, cap);
		if (grown == NULL)
			return -1;
		r->body = grown;
		r->body_cap = cap;
	}
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	r->body_seen += n;
	r->body[r->body_len] = '\0';
	return 0;
}

const char *
request_header(const struct request *r, const char *name, char *dst, size_t n)
{
	size_t len;
	const char *v = httpmsg_header(&r->head, name, &len);

	if (v == NULL || len >= n)
		return NULL;
	memcpy(dst, v, len);
	dst[len] = '\0';
	return dst;
}

int
request_keep_answer(struct request *r, const struct upstream_res *res)
{
	free(r->answer);
	r->answer = malloc(res->len + 1);
	if (r->answer == NULL)
		return -1;
	memcpy(r->answer, res->body, res->len);
	r->answer[res->len] = '\0';
	r->answer_len = res->len;
	r->answer_status = res->status;
	snprintf(r->answer_type, sizeof(r->answer_type), "%s",
	         res->content_type[0] ? res->content_type : "application/json");
	return 0;
}

double
request_elapsed_ms(const struct request *r)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - r->start.tv_sec) * 1000.0 +
	       (double)(now.tv_nsec - r->start.tv_nsec) / 1e6;
}

void
request_free(struct request *r)
{
	if (r == NULL)
		return;
	if (r->intent_pending && r->srv)
		audit_forget(server_audit(r->srv), r);
	upstream_cancel(r->call);
	store_cancel(r->store_op);
	/* Uploaded file bytes are the client's data on its way to the
	 * upstream, not secrets the gateway brokers: they are not wiped. */
	if (r->stream_in)
		evbuffer_free(r->stream_in);
	secmem_free(r->head_buf);
	secmem_free(r->body);
	secmem_free(r->forward);
	json_decref(r->doc);
	json_decref(r->audit_network_policy);
	json_decref(r->adjustments);
	json_decref(r->violations);
	json_decref(r->remediation);
	json_decref(r->list_acc);
	free(r->answer);
	multipart_free(r->multipart);
	free(r->path);
	free(r->query);
	free(r->upstream_path);
	free(r->pending.path);
	tls_peer_free(r->client_cert);
	server_request_end(r->srv, r);
	free(r);
}
