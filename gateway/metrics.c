#include "metrics.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "lib/spool.h"
#include "lib/text.h"

/* Distinct label sets kept; beyond these, counts go to an "other" set.
 * Request series are kept per tenant, so that one tenant's traffic,
 * however varied, cannot push another's counts into "other". */
#define TENANT_REQUEST_SERIES 128
#define DENIAL_SERIES         128
#define LABEL_MAX             64

/* Upper bounds of the latency buckets, in seconds. */
static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct request_series {
	char route[LABEL_MAX];
	char decision[16];
	int status;
	unsigned long long n;
};

struct denial_series {
	char rule[LABEL_MAX];
	unsigned long long n;
};

/* Tenants are few and named by the policy; past TENANT_SERIES, "_other".
 * A tenant's request series grow as its traffic shows them, up to
 * TENANT_REQUEST_SERIES; the rest of its requests count in other_n. */
#define TENANT_SERIES 256
struct tenant_series {
	char tenant[LABEL_MAX]; /* "" for the organization */
	unsigned long long gb_minutes;
	int charged; /* gb_minutes were counted */
	struct request_series *req;
	size_t nreq, capreq;
	unsigned long long other_n;
};

struct histogram {
	unsigned long long le[NBUCKETS]; /* not cumulative; summed when rendered */
	unsigned long long count;
	double sum;
};

/* Workers count into one set of numbers: the mutex is held for a few
 * additions per request, never across I/O. */
struct metrics {
	pthread_mutex_t mu;
	struct denial_series deny[DENIAL_SERIES + 1];
	size_t ndeny;
	struct tenant_series tenants[TENANT_SERIES + 1]; /* the last is "other" */
	size_t ntenants;
	struct histogram request_latency, upstream_latency;
	unsigned long long violations;
	unsigned long long events[METRICS_NEVENTS];
	unsigned long long worker_conns[METRICS_WORKERS_MAX];
	size_t nworkers;
};

struct metrics *
metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	pthread_mutex_init(&m->mu, NULL);
	text_copy(m->deny[DENIAL_SERIES].rule, LABEL_MAX, "other");
	/* No tenant's name begins with '_' (tenant.c), so none shares it. */
	text_copy(m->tenants[TENANT_SERIES].tenant, LABEL_MAX, "_other");
	return m;
}

void
metrics_free(struct metrics *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->ntenants; i++)
		free(m->tenants[i].req);
	free(m->tenants[TENANT_SERIES].req);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

void
metrics_workers(struct metrics *m, size_t n)
{
	m->nworkers = n < METRICS_WORKERS_MAX ? n : METRICS_WORKERS_MAX;
}

void
metrics_accepted(struct metrics *m, size_t worker)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	m->events[METRICS_CONN_ACCEPTED]++;
	if (worker < m->nworkers)
		m->worker_conns[worker]++;
	pthread_mutex_unlock(&m->mu);
}

void
metrics_count(struct metrics *m, enum metrics_event e)
{
	if (m == NULL || e >= METRICS_NEVENTS)
		return;
	pthread_mutex_lock(&m->mu);
	m->events[e]++;
	pthread_mutex_unlock(&m->mu);
}

static void
observe(struct histogram *h, double seconds)
{
	size_t i;

	if (seconds < 0)
		seconds = 0;
	for (i = 0; i < NBUCKETS && seconds > buckets[i]; i++)
		;
	if (i < NBUCKETS)
		h->le[i]++;
	h->count++;
	h->sum += seconds;
}

/* The counter of t's requests with these labels: its own series, or its
 * "other" count once it has TENANT_REQUEST_SERIES of them (or memory
 * runs out). */
static unsigned long long *
request_count(struct tenant_series *t, const char *route, const char *decision, int status)
{
	struct request_series *s;
	size_t i;

	for (i = 0; i < t->nreq; i++) {
		s = &t->req[i];
		if (s->status == status && strcmp(s->route, route) == 0 &&
		    strcmp(s->decision, decision) == 0)
			return &s->n;
	}
	if (t->nreq == TENANT_REQUEST_SERIES || strlen(route) >= LABEL_MAX ||
	    strlen(decision) >= sizeof(s->decision))
		return &t->other_n;
	if (t->nreq == t->capreq) {
		size_t cap = t->capreq ? t->capreq * 2 : 8;

		s = realloc(t->req, cap * sizeof(*s));
		if (s == NULL)
			return &t->other_n;
		t->req = s;
		t->capreq = cap;
	}
	s = &t->req[t->nreq++];
	text_copy(s->route, sizeof(s->route), route);
	text_copy(s->decision, sizeof(s->decision), decision);
	s->status = status;
	s->n = 0;
	return &s->n;
}

static struct denial_series *
denial_series(struct metrics *m, const char *rule)
{
	struct denial_series *s;
	size_t i;

	for (i = 0; i < m->ndeny; i++)
		if (strcmp(m->deny[i].rule, rule) == 0)
			return &m->deny[i];
	if (m->ndeny == DENIAL_SERIES || strlen(rule) >= LABEL_MAX)
		return &m->deny[DENIAL_SERIES];
	s = &m->deny[m->ndeny++];
	text_copy(s->rule, sizeof(s->rule), rule);
	return s;
}

static struct tenant_series *
tenant_series(struct metrics *m, const char *tenant)
{
	size_t i;

	for (i = 0; i < m->ntenants; i++)
		if (strcmp(m->tenants[i].tenant, tenant) == 0)
			return &m->tenants[i];
	if (m->ntenants == TENANT_SERIES || strlen(tenant) >= LABEL_MAX)
		return &m->tenants[TENANT_SERIES];
	text_copy(m->tenants[m->ntenants].tenant, LABEL_MAX, tenant);
	return &m->tenants[m->ntenants++];
}

void
metrics_request(struct metrics *m, const struct audit_event *ev)
{
	const char *decision = ev->decision ? ev->decision : "unknown";
	struct tenant_series *t;

	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	t = tenant_series(m, ev->tenant ? ev->tenant : "");
	(*request_count(t, ev->operation ? ev->operation : "unknown", decision, ev->status))++;
	if (ev->charged && ev->status >= 200 && ev->status < 300) {
		t->gb_minutes += (unsigned long long)ev->gb_minutes;
		t->charged = 1;
	}
	if (strcmp(decision, "deny") == 0 && (ev->status == 403 || ev->status == 429))
		denial_series(m, ev->code ? ev->code : "unknown")->n++;
	observe(&m->request_latency, ev->latency_ms / 1000.0);
	if (ev->upstream_status != 0 || ev->upstream_ms > 0)
		observe(&m->upstream_latency, ev->upstream_ms / 1000.0);
	if (json_is_array(ev->violations))
		m->violations += json_array_size(ev->violations);
	pthread_mutex_unlock(&m->mu);
}

/* A label value with \, " and newline escaped, as the format asks. */
static const char *
escape(char *dst, size_t n, const char *s)
{
	size_t o = 0;

	for (; *s && o + 3 < n; s++) {
		if (*s == '\\' || *s == '"') {
			dst[o++] = '\\';
			dst[o++] = *s;
		} else if (*s == '\n') {
			dst[o++] = '\\';
			dst[o++] = 'n';
		} else {
			dst[o++] = *s;
		}
	}
	dst[o] = '\0';
	return dst;
}

struct out {
	struct evbuffer *buf;
	int failed;
};

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (evbuffer_add_vprintf(o->buf, fmt, ap) < 0)
		o->failed = 1;
	va_end(ap);
}

static void
head(struct out *o, const char *name, const char *type, const char *help)
{
	out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
scalar(struct out *o, const char *name, const char *type, const char *help, double v)
{
	head(o, name, type, help);
	out_printf(o, "%s %.17g\n", name, v);
}

static void
histogram(struct out *o, const char *name, const char *help, const struct histogram *h)
{
	unsigned long long cum = 0;
	size_t i;

	head(o, name, "histogram", help);
	for (i = 0; i < NBUCKETS; i++) {
		cum += h->le[i];
		out_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, buckets[i], cum);
	}
	out_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.17g\n%s_count %llu\n", name, h->count,
	           name, h->sum, name, h->count);
}

static void
events(struct out *o, const struct metrics *m, const struct metrics_state *st)
{
	size_t i;

	scalar(o, "gateway_connections_accepted_total", "counter", "Client connections accepted.",
	       (double)m->events[METRICS_CONN_ACCEPTED]);
	if (m->nworkers > 1) {
		head(o, "gateway_worker_connections_accepted_total", "counter",
		     "Client connections accepted, by worker (event loop; 0 is the main one).");
		for (i = 0; i < m->nworkers; i++)
			out_printf(
			        o,
			        "gateway_worker_connections_accepted_total{worker=\"%zu\"} %llu\n",
			        i, m->worker_conns[i]);
	}
	head(o, "gateway_connections_rejected_total", "counter",
	     "Client connections beyond limits.max_connections: answered 503, or closed at "
	     "once when even the overflow was full.");
	out_printf(o, "gateway_connections_rejected_total{action=\"503\"} %llu\n",
	           m->events[METRICS_CONN_OVER_LIMIT]);
	out_printf(o, "gateway_connections_rejected_total{action=\"closed\"} %llu\n",
	           m->events[METRICS_CONN_DROPPED]);
	scalar(o, "gateway_tls_handshake_failures_total", "counter",
	       "TLS handshakes with clients that failed (including refused client certificates).",
	       (double)st->tls_handshake_failures);
	head(o, "gateway_config_reloads_total", "counter",
	     "Reloads of the config and policy (SIGHUP), by result.");
	out_printf(o, "gateway_config_reloads_total{result=\"success\"} %llu\n",
	           m->events[METRICS_RELOAD_OK]);
	out_printf(o, "gateway_config_reloads_total{result=\"failure\"} %llu\n",
	           m->events[METRICS_RELOAD_FAILED]);
}

static void
request_line(struct out *o, const char *route, const char *decision, int status, const char *tenant,
             unsigned long long n)
{
	char a[2 * LABEL_MAX], b[2 * LABEL_MAX], c[2 * LABEL_MAX];

	out_printf(o,
	           "gateway_requests_total{route=\"%s\",decision=\"%s\",status=\"%d\","
	           "tenant=\"%s\"} %llu\n",
	           escape(a, sizeof(a), route), escape(b, sizeof(b), decision), status,
	           escape(c, sizeof(c), tenant), n);
}

static void
tenant_requests(struct out *o, const struct tenant_series *t)
{
	size_t i;

	for (i = 0; i < t->nreq; i++)
		request_line(o, t->req[i].route, t->req[i].decision, t->req[i].status, t->tenant,
		             t->req[i].n);
	if (t->other_n > 0)
		request_line(o, "other", "other", 0, t->tenant, t->other_n);
}

static void render(const struct metrics *m, const struct metrics_state *st, struct out *o);

/* A copy of m's numbers, taken under its lock, with its request series in
 * one block (*series, freed by the caller with the copy): rendering the
 * copy (up to 257 tenants x 129 series, tens of thousands of lines) then
 * holds no worker up. NULL when memory runs out. */
static struct metrics *
snapshot(struct metrics *m, struct request_series **series)
{
	struct metrics *c = malloc(sizeof(*c));
	struct request_series *all = NULL;
	size_t i, total = 0, at = 0;

	*series = NULL;
	if (c == NULL)
		return NULL;
	pthread_mutex_lock(&m->mu);
	memcpy(c, m, sizeof(*c));
	for (i = 0; i <= TENANT_SERIES; i++)
		total += m->tenants[i].nreq; /* 0 for the slots not in use */
	if (total > 0 && (all = malloc(total * sizeof(*all))) == NULL) {
		pthread_mutex_unlock(&m->mu);
		free(c);
		return NULL;
	}
	for (i = 0; i <= TENANT_SERIES; i++) {
		c->tenants[i].req = all ? all + at : NULL;
		if (m->tenants[i].nreq > 0)
			memcpy(all + at, m->tenants[i].req, m->tenants[i].nreq * sizeof(*all));
		at += m->tenants[i].nreq;
	}
	pthread_mutex_unlock(&m->mu);
	*series = all;
	return c;
}

int
metrics_render(struct metrics *m, const struct metrics_state *st, struct evbuffer *buf)
{
	struct out o = {buf, 0};
	struct request_series *series;
	struct metrics *c = snapshot(m, &series);

	if (c == NULL) { /* no memory for a copy: rendered under the lock */
		pthread_mutex_lock(&m->mu);
		render(m, st, &o);
		pthread_mutex_unlock(&m->mu);
		return o.failed ? -1 : 0;
	}
	render(c, st, &o);
	free(series);
	free(c);
	return o.failed ? -1 : 0;
}

static void
render(const struct metrics *m, const struct metrics_state *st, struct out *o)
{
	char a[2 * LABEL_MAX];
	size_t i;

	head(o, "gateway_build_info", "gauge", "The gateway's version.");
	out_printf(o, "gateway_build_info{version=\"%s\"} 1\n", escape(a, sizeof(a), GW_VERSION));
	scalar(o, "gateway_start_time_seconds", "gauge", "When the process started (Unix time).",
	       (double)st->started);
	scalar(o, "gateway_ready", "gauge", "1 when /readyz answers 200, else 0.", st->ready);

	head(o, "gateway_requests_total", "counter",
	     "Requests answered, by route (the spec's operationId), decision, status and tenant "
	     "(\"\" for the organization).");
	for (i = 0; i < m->ntenants; i++)
		tenant_requests(o, &m->tenants[i]);
	tenant_requests(o, &m->tenants[TENANT_SERIES]);
	head(o, "gateway_container_gb_minutes_total", "counter",
	     "Container memory times minutes asked by allowed requests, by tenant (a Responses "
	     "call whose model made no container counts here, though its budget gets it back).");
	for (i = 0; i <= TENANT_SERIES; i++) {
		if ((i >= m->ntenants && i < TENANT_SERIES) || !m->tenants[i].charged)
			continue;
		out_printf(o, "gateway_container_gb_minutes_total{tenant=\"%s\"} %llu\n",
		           escape(a, sizeof(a), m->tenants[i].tenant), m->tenants[i].gb_minutes);
	}
	head(o, "gateway_policy_denials_total", "counter",
	     "Requests the policy refused (403 and 429), by the rule that fired.");
	for (i = 0; i <= DENIAL_SERIES; i++) {
		if ((i >= m->ndeny && i < DENIAL_SERIES) ||
		    (i == DENIAL_SERIES && m->deny[i].n == 0))
			continue;
		out_printf(o, "gateway_policy_denials_total{rule=\"%s\"} %llu\n",
		           escape(a, sizeof(a), m->deny[i].rule), m->deny[i].n);
	}
	histogram(o, "gateway_request_duration_seconds",
	          "Time from a request's head to its answer (or, streamed, its end).",
	          &m->request_latency);
	histogram(o, "gateway_upstream_duration_seconds",
	          "Time the upstream took to answer, for requests that reached it.",
	          &m->upstream_latency);
	scalar(o, "gateway_upstream_violations_total", "counter",
	       "Ways the upstream's answers differed from what was forwarded or from the spec.",
	       (double)m->violations);
	scalar(o, "gateway_inflight_requests", "gauge", "Requests being handled now.",
	       (double)st->inflight);
	scalar(o, "gateway_open_connections", "gauge", "Client connections open now.",
	       (double)st->connections);
	scalar(o, "gateway_spool_bytes", "gauge",
	       "Bytes of large create bodies set aside in limits.spool_dir now.",
	       (double)spool_files_bytes());
	scalar(o, "gateway_audit_write_failures_total", "counter",
	       "Audit records that could not be written.", (double)st->audit_failures);
	scalar(o, "gateway_audit_anchor_failures_total", "counter",
	       "Attempts to ship an audit checkpoint to the witness or anchor that failed.",
	       (double)st->audit_anchor_failures);
	events(o, m, st);
	scalar(o, "gateway_config_last_reload_success_timestamp_seconds", "gauge",
	       "When the config and policy in force were loaded (Unix time).",
	       (double)st->last_reload_ok);
	head(o, "gateway_policy_info", "gauge",
	     "The policy in force: its version, as every audit record names it.");
	out_printf(o, "gateway_policy_info{version=\"%s\"} 1\n",
	           escape(a, sizeof(a), st->policy_version ? st->policy_version : ""));
	scalar(o, "gateway_trace_spans_exported_total", "counter",
	       "Spans the OTLP collector took (telemetry.otlp_url).", (double)st->spans_exported);
	scalar(o, "gateway_trace_spans_dropped_total", "counter",
	       "Spans dropped: the export queue was full, or the gateway stopped with the "
	       "collector unreachable.",
	       (double)st->spans_dropped);
	scalar(o, "gateway_trace_batches_failed_total", "counter",
	       "Batches of spans the collector did not take.", (double)st->span_batches_failed);
	if (st->cert_not_after)
		scalar(o, "gateway_tls_certificate_expiry_timestamp_seconds", "gauge",
		       "When the listener's TLS certificate expires (Unix time).",
		       (double)st->cert_not_after);
}
