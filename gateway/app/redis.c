#include "app/redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/log.h"
#include "lib/secmem.h"

#define RECONNECT_MS 1000
#define READ_MAX     (64 * 1024) /* read in slices, so one big reply cannot hog the loop */

struct redis_cmd {
	struct redis_cmd *next;
	redis_reply_fn fn;
	void *arg;
	int cancelled;
	int internal; /* AUTH or SELECT, sent by the connection itself */
};

enum redis_state { R_DOWN, R_CONNECTING, R_UP };

struct redis {
	struct event_base *base;
	struct evdns_base *dns; /* for a host that is a name */
	struct redis_settings set;
	SSL_CTX *ctx; /* TLS only */
	struct bufferevent *bev;
	redisReader *reader;
	struct redis_cmd *head, *tail;
	enum redis_state state;
	long long next_connect_ms;
	char last_error[200]; /* why the last connection went, for --check */
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- settings ---- */

void
redis_settings_clear(struct redis_settings *s)
{
	if (s->password)
		secmem_free(s->password);
	s->password = NULL;
}

/* The decimal number in [p, end), at most max; -1 for anything else. */
static int
number(const char *p, const char *end, long max)
{
	long v = 0;

	if (p == end)
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
		if (v > max)
			return -1;
	}
	return (int)v;
}

int
redis_parse_url(const char *url, struct redis_settings *s, struct err *e)
{
	const char *p, *at, *host, *colon, *slash, *end;
	size_t n;

	memset(s, 0, sizeof(*s));
	if (strncmp(url, "redis://", 8) == 0) {
		p = url + 8;
	} else if (strncmp(url, "rediss://", 9) == 0) {
		p = url + 9;
		s->tls = 1;
	} else {
		return err_set(e, 500, ERR_INTERNAL, "store", NULL,
		               "store.url must be redis://[user[:password]@]host[:port][/db] or "
		               "rediss://... for TLS");
	}
	end = p + strlen(p);
	slash = memchr(p, '/', (size_t)(end - p));
	/* The last '@' before the path ends the userinfo: a password may hold
	 * one. */
	for (at = NULL, host = p; host < (slash ? slash : end); host++)
		if (*host == '@')
			at = host;
	if (at) {
		/* userinfo: user, or user:password, or :password */
		colon = memchr(p, ':', (size_t)(at - p));
		n = (size_t)((colon ? colon : at) - p);
		if (n >= sizeof(s->user))
			return err_set(e, 500, ERR_INTERNAL, "store", NULL,
			               "store.url: the user name is too long");
		memcpy(s->user, p, n);
		s->user[n] = '\0';
		if (colon && colon + 1 < at) {
			n = (size_t)(at - colon - 1);
			s->password = secmem_alloc(n + 1);
			if (s->password == NULL)
				return err_set(e, 500, ERR_INTERNAL, "store", NULL,
				               "out of memory");
			memcpy(s->password, colon + 1, n);
			s->password[n] = '\0';
		}
		p = at + 1;
	}
	host = p;
	if (*host == '[') { /* an IPv6 literal */
		const char *close = memchr(host, ']', (size_t)(end - host));

		if (close == NULL)
			goto bad;
		n = (size_t)(close - host - 1);
		host++;
		p = close + 1;
	} else {
		p = host;
		while (p < end && *p != ':' && *p != '/')
			p++;
		n = (size_t)(p - host);
	}
	if (n == 0 || n >= sizeof(s->host))
		return err_set(e, 500, ERR_INTERNAL, "store", NULL, "store.url has no host");
	memcpy(s->host, host, n);
	s->host[n] = '\0';
	s->port = 6379;
	if (p < end && *p == ':') {
		colon = p + 1;
		p = colon;
		while (p < end && *p != '/')
			p++;
		s->port = number(colon, p, 65535);
	}
	if (p < end && *p == '/' && p + 1 < end)
		s->db = number(p + 1, end, 1 << 20);
	else if (p < end && *p != '/')
		goto bad;
	if (s->port <= 0 || s->db < 0)
		return err_set(e, 500, ERR_INTERNAL, "store", NULL,
		               "store.url has a bad port or database number");
	return 0;
bad:
	redis_settings_clear(s);
	return err_set(e, 500, ERR_INTERNAL, "store", NULL,
	               "store.url must be redis://[user[:password]@]host[:port][/db]");
}

/* ---- commands ---- */

/* Takes the command at the head of the queue. */
static struct redis_cmd *
pop(struct redis *r)
{
	struct redis_cmd *c = r->head;

	if (c) {
		r->head = c->next;
		if (r->head == NULL)
			r->tail = NULL;
	}
	return c;
}

static void
push(struct redis *r, struct redis_cmd *c)
{
	c->next = NULL;
	if (r->tail)
		r->tail->next = c;
	else
		r->head = c;
	r->tail = c;
}

/* Everything waiting gets no reply: the connection is gone. */
static void
fail_all(struct redis *r)
{
	struct redis_cmd *c;

	while ((c = pop(r)) != NULL) {
		if (!c->cancelled && !c->internal && c->fn)
			c->fn(c->arg, NULL);
		free(c);
	}
}

static void
drop(struct redis *r, const char *why)
{
	if (why)
		snprintf(r->last_error, sizeof(r->last_error), "%s", why);
	if (r->state != R_DOWN && why)
		log_warn("store: lost redis at %s:%d: %s", r->set.host, r->set.port, why);
	if (r->bev) {
		bufferevent_free(r->bev);
		r->bev = NULL;
	}
	if (r->reader) {
		redisReaderFree(r->reader);
		r->reader = NULL;
	}
	r->state = R_DOWN;
	r->next_connect_ms = now_ms() + RECONNECT_MS;
	fail_all(r);
}

/* A reply to AUTH or SELECT; a refusal ends the connection. */
static int
internal_reply(struct redis *r, const redisReply *reply)
{
	if (reply->type != REDIS_REPLY_ERROR)
		return 0;
	/* The server's words name the problem; they never hold the password. */
	snprintf(r->last_error, sizeof(r->last_error), "refused the connection's %s",
	         strncmp(reply->str, "WRONGPASS", 9) == 0 || strncmp(reply->str, "NOAUTH", 6) == 0
	                 ? "password (AUTH)"
	                 : "setup");
	log_error("store: redis at %s:%d refused the connection's %s: %.200s", r->set.host,
	          r->set.port,
	          strncmp(reply->str, "WRONGPASS", 9) == 0 || strncmp(reply->str, "NOAUTH", 6) == 0
	                  ? "password (AUTH)"
	                  : "setup",
	          reply->str);
	return -1;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct redis *r = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char buf[16384];
	void *reply;
	size_t total = 0;
	int n;

	while (total < READ_MAX && (n = evbuffer_remove(in, buf, sizeof(buf))) > 0) {
		total += (size_t)n;
		if (redisReaderFeed(r->reader, buf, (size_t)n) != REDIS_OK) {
			drop(r, "a reply that is not RESP");
			return;
		}
		for (;;) {
			struct redis_cmd *c;

			reply = NULL;
			if (redisReaderGetReply(r->reader, &reply) != REDIS_OK) {
				drop(r, "a reply that is not RESP");
				return;
			}
			if (reply == NULL)
				break;
			c = pop(r);
			if (c && c->internal && internal_reply(r, reply) < 0) {
				freeReplyObject(reply);
				free(c);
				drop(r, NULL);
				return;
			}
			/* The last of AUTH and SELECT is answered: ready. */
			if (c && c->internal && (r->head == NULL || !r->head->internal))
				r->state = R_UP;
			if (c && !c->internal && !c->cancelled && c->fn)
				c->fn(c->arg, reply);
			freeReplyObject(reply);
			free(c);
		}
	}
	/* More than a slice: the rest on the next turn of the loop. */
	if (evbuffer_get_length(in) > 0)
		bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct redis *r = arg;
	char why[256] = "";
	unsigned long e;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		log_info("store: connected to redis at %s:%d%s", r->set.host, r->set.port,
		         r->set.tls ? " (TLS)" : "");
		/* Up once AUTH and SELECT are answered, or now when there are none. */
		if (r->head == NULL || !r->head->internal)
			r->state = R_UP;
		return;
	}
	while (r->bev && (e = bufferevent_get_openssl_error(r->bev)) != 0)
		ERR_error_string_n(e, why, sizeof(why));
	/* A certificate refused: say why in the verifier's words. */
	if (r->set.tls && r->state == R_CONNECTING) {
		SSL *ssl = bufferevent_openssl_get_ssl(r->bev);
		long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;

		if (v != X509_V_OK)
			snprintf(why, sizeof(why), "TLS: certificate verify failed: %s",
			         X509_verify_cert_error_string(v));
	}
	if (!why[0])
		snprintf(why, sizeof(why), "%s",
		         what & BEV_EVENT_EOF
		                 ? "the server closed the connection"
		                 : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	drop(r, why);
}

/* Queues an internal command (AUTH, SELECT) ahead of any caller's. */
static int
send_internal(struct redis *r, int argc, const char **argv)
{
	struct redis_cmd *c = calloc(1, sizeof(*c));
	char *out = NULL;
	int len;

	if (c == NULL)
		return -1;
	len = redisFormatCommandArgv(&out, argc, argv, NULL);
	if (len < 0 || bufferevent_write(r->bev, out, (size_t)len) < 0) {
		if (out)
			secmem_wipe(out, (size_t)(len > 0 ? len : 0));
		free(out);
		free(c);
		return -1;
	}
	secmem_wipe(out, (size_t)len); /* AUTH carries the password */
	free(out);
	c->internal = 1;
	push(r, c);
	return 0;
}

/* The TLS session for a new connection: the server's name is checked. */
static SSL *
new_ssl(struct redis *r)
{
	SSL *ssl = SSL_new(r->ctx);
	unsigned char ip[16];
	int literal = inet_pton(AF_INET, r->set.host, ip) == 1 ||
	              inet_pton(AF_INET6, r->set.host, ip) == 1;

	if (ssl == NULL)
		return NULL;
	if (!literal)
		SSL_set_tlsext_host_name(ssl, r->set.host);
	if ((literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), r->set.host)
	             : SSL_set1_host(ssl, r->set.host)) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* Starts a connection: AUTH and SELECT are queued first, so they are the
 * first things the server reads. */
static int
connect_now(struct redis *r)
{
	char dbs[16];
	SSL *ssl = NULL;

	r->reader = redisReaderCreate();
	if (r->reader == NULL)
		return -1;
	if (r->set.tls) {
		ssl = new_ssl(r);
		if (ssl)
			r->bev = bufferevent_openssl_socket_new(r->base, -1, ssl,
			                                        BUFFEREVENT_SSL_CONNECTING,
			                                        BEV_OPT_CLOSE_ON_FREE);
		if (r->bev)
			bufferevent_openssl_set_allow_dirty_shutdown(r->bev, 1);
		else
			SSL_free(ssl);
	} else {
		r->bev = bufferevent_socket_new(r->base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	if (r->bev == NULL)
		return -1;
	bufferevent_setcb(r->bev, on_read, NULL, on_event, r);
	bufferevent_enable(r->bev, EV_READ);
	r->state = R_CONNECTING;
	if (r->set.password) {
		const char *auth[] = {"AUTH", r->set.user, r->set.password};

		if (r->set.user[0] ? send_internal(r, 3, auth)
		                   : send_internal(r, 2, (const char *[]){"AUTH", r->set.password}))
			return -1;
	}
	if (r->set.db) {
		snprintf(dbs, sizeof(dbs), "%d", r->set.db);
		if (send_internal(r, 2, (const char *[]){"SELECT", dbs}) < 0)
			return -1;
	}
	if (bufferevent_socket_connect_hostname(r->bev, r->dns, AF_UNSPEC, r->set.host,
	                                        r->set.port) < 0)
		return -1;
	return 0;
}

struct redis_cmd *
redis_command(struct redis *r, int argc, const char **argv, redis_reply_fn fn, void *arg)
{
	struct redis_cmd *c;
	char *out = NULL;
	int len;

	if (r->state == R_DOWN) {
		if (now_ms() < r->next_connect_ms)
			return NULL;
		if (connect_now(r) < 0) {
			drop(r, "cannot start a connection");
			return NULL;
		}
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	len = redisFormatCommandArgv(&out, argc, argv, NULL);
	if (len < 0 || bufferevent_write(r->bev, out, (size_t)len) < 0) {
		free(out);
		free(c);
		return NULL;
	}
	free(out);
	c->fn = fn;
	c->arg = arg;
	push(r, c);
	return c;
}

void
redis_cancel(struct redis_cmd *c)
{
	if (c)
		c->cancelled = 1;
}

int
redis_connected(const struct redis *r)
{
	return r->state == R_UP;
}

const char *
redis_last_error(const struct redis *r)
{
	return r->last_error;
}

/* ---- life ---- */

static SSL_CTX *
tls_context(const struct redis_settings *s, struct err *e)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char why[256] = "";

	if (ctx == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (s->ca_file ? SSL_CTX_load_verify_locations(ctx, s->ca_file, NULL) != 1
	               : SSL_CTX_set_default_verify_paths(ctx) != 1)
		goto fail;
	if (s->cert_file && (SSL_CTX_use_certificate_chain_file(ctx, s->cert_file) != 1 ||
	                     SSL_CTX_use_PrivateKey_file(ctx, s->key_file, SSL_FILETYPE_PEM) != 1 ||
	                     SSL_CTX_check_private_key(ctx) != 1))
		goto fail;
	return ctx;
fail:
	ERR_error_string_n(ERR_get_error(), why, sizeof(why));
	err_set(e, 500, ERR_INTERNAL, "store", NULL, "store TLS settings: %s", why);
	SSL_CTX_free(ctx);
	return NULL;
}

struct redis *
redis_new(struct event_base *base, const struct redis_settings *s, struct err *e)
{
	struct redis *r = calloc(1, sizeof(*r));
	unsigned char ip[16];

	if (r == NULL) {
		err_set(e, 500, ERR_INTERNAL, "store", NULL, "out of memory");
		return NULL;
	}
	r->base = base;
	r->set = *s;
	r->set.password = NULL;
	if (s->password) {
		size_t n = strlen(s->password);

		r->set.password = secmem_alloc(n + 1);
		if (r->set.password == NULL)
			goto oom;
		memcpy(r->set.password, s->password, n + 1);
	}
	if (s->tls && (r->ctx = tls_context(s, e)) == NULL)
		goto fail;
	/* A name is looked up without blocking the loop. */
	if (inet_pton(AF_INET, s->host, ip) != 1 && inet_pton(AF_INET6, s->host, ip) != 1 &&
	    (r->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL) {
		err_set(e, 500, ERR_INTERNAL, "store", NULL,
		        "cannot set up name lookups for store.url's host");
		goto fail;
	}
	return r;
oom:
	err_set(e, 500, ERR_INTERNAL, "store", NULL, "out of memory");
fail:
	redis_free(r);
	return NULL;
}

void
redis_free(struct redis *r)
{
	struct redis_cmd *c;

	if (r == NULL)
		return;
	while ((c = pop(r)) != NULL)
		free(c);
	if (r->bev)
		bufferevent_free(r->bev);
	if (r->reader)
		redisReaderFree(r->reader);
	if (r->dns)
		evdns_base_free(r->dns, 0);
	SSL_CTX_free(r->ctx);
	redis_settings_clear(&r->set);
	free(r);
}
