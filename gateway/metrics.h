/*
 * metrics: the numbers behind the admin listener's /metrics, rendered in
 * the Prometheus text format (version 0.0.4).
 *
 * Each finished request is counted once, from its audit record, so the
 * numbers and the audit log agree. Every label set is bounded: label
 * values come from fixed sets (routes, decisions, codes, statuses), and
 * past a fixed number of series the rest are counted under "other"; a
 * tenant's request series are bounded apart from the others'.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>
#include <time.h>

struct audit_event;
struct evbuffer;
struct metrics;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Counts one finished request: by route, decision and status; a policy
 * denial (403 or 429) by its code; the upstream's latency when it was
 * called; the violations found in its answer. */
void metrics_request(struct metrics *m, const struct audit_event *ev);

enum metrics_event {
	METRICS_CONN_ACCEPTED,
	METRICS_CONN_OVER_LIMIT, /* beyond limits.max_connections: answered 503 */
	METRICS_CONN_DROPPED,    /* beyond that too: closed at accept */
	METRICS_RELOAD_OK,
	METRICS_RELOAD_FAILED,
	METRICS_NEVENTS
};

void metrics_count(struct metrics *m, enum metrics_event e);

/* How many workers count connections (set once, before they start), and
 * one connection accepted within limits by worker i. */
#define METRICS_WORKERS_MAX 64
void metrics_workers(struct metrics *m, size_t n);
void metrics_accepted(struct metrics *m, size_t worker);

/* What is read from the rest of the gateway when metrics are scraped. */
struct metrics_state {
	size_t connections;                  /* client connections open */
	size_t inflight;                     /* requests being handled */
	unsigned long audit_failures;        /* audit records lost since start */
	unsigned long audit_anchor_failures; /* checkpoints a witness or anchor did not take */
	unsigned long tls_handshake_failures;
	time_t started;             /* process start */
	time_t last_reload_ok;      /* last successful load of config and policy */
	const char *policy_version; /* the policy set in force (policyset.h) */
	unsigned long long spans_exported, spans_dropped, span_batches_failed; /* otlp.h */
	time_t cert_not_after; /* the listener's certificate; 0: no TLS */
	int ready;             /* what /readyz says */
};

/* Appends every metric to out; -1 when memory runs out. */
int metrics_render(struct metrics *m, const struct metrics_state *st, struct evbuffer *out);

#endif
