/*
 * otlp: each request's span, exported to an OpenTelemetry collector over
 * OTLP/HTTP with JSON (POST <telemetry.otlp_url>, normally
 * http://collector:4318/v1/traces).
 *
 * One SERVER span per request, named by its operation, with the client's
 * span as its parent when it sent a traceparent (http/trace.h), carrying
 * what the audit record says of who and what (tenant, decision, code,
 * status, the upstream's status) but never a secret, a key or a body.
 * Spans are copied into a bounded queue and sent in batches by a thread
 * of their own, so no request ever waits for the collector: a full queue
 * drops the new span and counts it, a failed batch is dropped and counted.
 * A span the client marked not sampled is not exported.
 */
#ifndef GW_OTLP_H
#define GW_OTLP_H

#include "lib/err.h"

struct audit_event;
struct otlp;

struct otlp_settings {
	const char *url;          /* the collector's traces endpoint */
	const char *service_name; /* resource attribute service.name */
	long timeout_ms;          /* each POST */
	long flush_ms;            /* a batch goes out at least this often */
};

/* Starts the exporting thread; NULL with e set when it cannot. */
struct otlp *otlp_new(const struct otlp_settings *s, struct err *e);

/* Sends what is queued (within the timeout) and stops. NULL is fine. */
void otlp_free(struct otlp *o);

/* Queues the span of a finished request (copied); any thread, never
 * waits. NULL o: nothing is exported. */
void otlp_span(struct otlp *o, const struct audit_event *ev);

struct otlp_stats {
	unsigned long long exported, dropped, failed_batches;
};
void otlp_stats(struct otlp *o, struct otlp_stats *st);

#endif
