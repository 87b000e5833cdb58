#include "server.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "audit.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "policy.h"
#include "upstream.h"

#define SHUTDOWN_GRACE_MS 10000

struct server {
	struct event_base *base;
	struct config *cfg;
	struct policy *policy;
	struct upstream *upstream;
	struct audit *audit;
	struct evconnlistener *listener;
	struct conn_limits limits;
	struct event *sigint, *sigterm, *drain;
	int draining;
	long drain_waited_ms;
};

struct event_base *
server_base(const struct server *s)
{
	return s->base;
}

const struct config *
server_config(const struct server *s)
{
	return s->cfg;
}

const struct policy *
server_policy(const struct server *s)
{
	return s->policy;
}

struct upstream *
server_upstream(const struct server *s)
{
	return s->upstream;
}

struct audit *
server_audit(const struct server *s)
{
	return s->audit;
}

const struct conn_limits *
server_limits(const struct server *s)
{
	return &s->limits;
}

int
server_check(const char *config_path, struct errlist *errs)
{
	struct config *cfg;
	struct policy *p;
	size_t before = errs->n + errs->dropped;

	cfg = config_load(config_path, errs);
	if (cfg == NULL)
		return -1;
	p = policy_load(cfg->policy_file, errs);
	policy_free(p);
	config_free(cfg);
	return errs->n + errs->dropped > before ? -1 : 0;
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct server *s = arg;

	(void)l;
	if (conn_count() >= (size_t)s->cfg->max_connections) {
		evutil_closesocket(fd);
		return;
	}
	(void)conn_new(s, fd, sa, salen);
}

static void
on_accept_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	log_warn("accept failed: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* Once stopping, checks every 50 ms whether the last request is done. */
static void
on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	struct timeval tick = {0, 50000};

	(void)fd;
	(void)what;
	s->drain_waited_ms += 50;
	if (conn_count() == 0 || s->drain_waited_ms >= SHUTDOWN_GRACE_MS) {
		event_base_loopexit(s->base, NULL);
		return;
	}
	evtimer_add(s->drain, &tick);
}

static void
on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;

	(void)what;
	if (s->draining) {
		event_base_loopexit(s->base, NULL);
		return;
	}
	log_info("signal %d: no longer accepting; finishing %zu connection(s)", (int)sig,
	         conn_count());
	s->draining = 1;
	evconnlistener_disable(s->listener);
	on_drain_tick(-1, 0, s);
}

static struct evconnlistener *
listen_on(struct server *s, struct errlist *errs)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char addr[300];
	struct evconnlistener *l;

	snprintf(addr, sizeof(addr), "%s%s%s:%d", strchr(s->cfg->listen_host, ':') ? "[" : "",
	         s->cfg->listen_host, strchr(s->cfg->listen_host, ':') ? "]" : "",
	         s->cfg->listen_port);
	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len) < 0) {
		errlist_add(errs, s->cfg->file, "listen", "not an IP address and port: %s",
		            s->cfg->listen);
		return NULL;
	}
	l = evconnlistener_new_bind(s->base, on_accept, s,
	                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                    LEV_OPT_CLOSE_ON_EXEC,
	                            1024, (struct sockaddr *)&ss, len);
	if (l == NULL) {
		errlist_add(errs, s->cfg->file, "listen", "cannot listen on %s: %s", s->cfg->listen,
		            evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return NULL;
	}
	evconnlistener_set_error_cb(l, on_accept_error);
	return l;
}

struct server *
server_new(const char *config_path, struct errlist *errs)
{
	struct upstream_settings us;
	struct server *s;
	struct err e;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	err_clear(&e);
	s->cfg = config_load(config_path, errs);
	if (s->cfg == NULL)
		goto fail;
	log_set_level((enum log_level)log_level_parse(s->cfg->log_level));
	s->policy = policy_load(s->cfg->policy_file, errs);
	if (s->policy == NULL)
		goto fail;
	s->base = event_base_new();
	if (s->base == NULL) {
		errlist_add(errs, config_path, NULL, "cannot create the event loop");
		goto fail;
	}
	s->audit = audit_open(s->cfg->audit_path, &e);
	if (s->audit == NULL) {
		errlist_add(errs, config_path, "audit.path", "%s", e.message);
		goto fail;
	}
	us.base_url = s->cfg->upstream_base_url;
	us.timeout_ms = (long)s->cfg->upstream_timeout_ms;
	us.connect_timeout_ms = (long)s->cfg->upstream_connect_timeout_ms;
	us.max_response_bytes = (size_t)s->cfg->upstream_max_response_bytes;
	us.ca_file = s->cfg->upstream_ca_file;
	us.insecure_skip_verify = s->cfg->upstream_insecure_skip_verify;
	s->upstream = upstream_new(s->base, &us, &e);
	if (s->upstream == NULL) {
		errlist_add(errs, config_path, "upstream", "%s", e.message);
		goto fail;
	}
	s->limits.max_head = (size_t)s->cfg->max_header_bytes;
	s->limits.max_body = (size_t)s->cfg->max_body_bytes;
	s->limits.header_timeout_ms = (long)s->cfg->header_timeout_ms;
	s->limits.body_timeout_ms = (long)s->cfg->body_timeout_ms;
	s->limits.idle_timeout_ms = (long)s->cfg->idle_timeout_ms;
	s->listener = listen_on(s, errs);
	if (s->listener == NULL)
		goto fail;
	s->sigint = evsignal_new(s->base, SIGINT, on_stop_signal, s);
	s->sigterm = evsignal_new(s->base, SIGTERM, on_stop_signal, s);
	s->drain = evtimer_new(s->base, on_drain_tick, s);
	if (!s->sigint || !s->sigterm || !s->drain || evsignal_add(s->sigint, NULL) < 0 ||
	    evsignal_add(s->sigterm, NULL) < 0) {
		errlist_add(errs, config_path, NULL, "cannot set up signal handling");
		goto fail;
	}
	return s;
fail:
	server_free(s);
	return NULL;
}

int
server_run(struct server *s)
{
	log_info("listening on %s, forwarding to %s, policy %s", s->cfg->listen,
	         s->cfg->upstream_base_url, s->cfg->policy_file);
	if (event_base_dispatch(s->base) < 0)
		return 1;
	log_info("stopped");
	return 0;
}

void
server_free(struct server *s)
{
	if (s == NULL)
		return;
	if (s->listener)
		evconnlistener_free(s->listener);
	conn_close_all();
	if (s->sigint)
		event_free(s->sigint);
	if (s->sigterm)
		event_free(s->sigterm);
	if (s->drain)
		event_free(s->drain);
	upstream_free(s->upstream);
	audit_free(s->audit);
	policy_free(s->policy);
	config_free(s->cfg);
	if (s->base)
		event_base_free(s->base);
	free(s);
}
