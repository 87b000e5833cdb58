#include "app/otlp.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "lib/log.h"
#include "lib/secmem.h"

#define QUEUE_MAX 2048 /* spans waiting; past this new ones are dropped */
#define BATCH_MAX 256  /* spans in one POST */
#define TEXT_MAX  128  /* attribute values are cut here */
#define PATH_MAX_ 256

/* What a span says, copied out of the request's audit event. */
struct span {
	char trace_id[33], span_id[17], parent_id[17];
	char name[TEXT_MAX];
	char method[16];
	char path[PATH_MAX_];
	char tenant[TEXT_MAX];
	char decision[16];
	char code[TEXT_MAX];
	char request_id[48];
	int status, upstream_status;
	long long start_ns, end_ns;
};

struct otlp {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int running, stop;
	char *url, *service;
	long timeout_ms, flush_ms;
	struct span *queue; /* a ring of QUEUE_MAX */
	size_t head, n;
	struct otlp_stats st;
};

static void
copy(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
}

void
otlp_span(struct otlp *o, const struct audit_event *ev)
{
	struct timespec now;
	struct span *s;

	if (o == NULL || !ev->sampled || ev->trace_id == NULL || ev->span_id == NULL)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&o->mu);
	if (o->n == QUEUE_MAX) {
		o->st.dropped++;
		pthread_mutex_unlock(&o->mu);
		return;
	}
	s = &o->queue[(o->head + o->n++) % QUEUE_MAX];
	copy(s->trace_id, sizeof(s->trace_id), ev->trace_id);
	copy(s->span_id, sizeof(s->span_id), ev->span_id);
	copy(s->parent_id, sizeof(s->parent_id), ev->parent_span_id);
	copy(s->name, sizeof(s->name), ev->operation ? ev->operation : "unknown route");
	copy(s->method, sizeof(s->method), ev->method);
	copy(s->path, sizeof(s->path), ev->path);
	copy(s->tenant, sizeof(s->tenant), ev->tenant);
	copy(s->decision, sizeof(s->decision), ev->decision);
	copy(s->code, sizeof(s->code), ev->code);
	copy(s->request_id, sizeof(s->request_id), ev->request_id);
	s->status = ev->status;
	s->upstream_status = ev->upstream_status;
	s->end_ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
	s->start_ns = s->end_ns - (long long)(ev->latency_ms * 1e6);
	/* The first span starts the flush clock; a full batch goes at once. */
	if (o->n == 1 || o->n >= BATCH_MAX)
		pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

static json_t *
attr_str(const char *key, const char *v)
{
	return json_pack("{s:s, s:{s:s}}", "key", key, "value", "stringValue", v);
}

static json_t *
attr_int(const char *key, long long v)
{
	char text[32];

	/* OTLP/JSON writes 64-bit integers as strings. */
	snprintf(text, sizeof(text), "%lld", v);
	return json_pack("{s:s, s:{s:s}}", "key", key, "value", "intValue", text);
}

static json_t *
span_json(const struct span *s)
{
	char start[32], end[32];
	json_t *attrs = json_array(), *o;

	snprintf(start, sizeof(start), "%lld", s->start_ns);
	snprintf(end, sizeof(end), "%lld", s->end_ns);
	json_array_append_new(attrs, attr_str("http.request.method", s->method));
	json_array_append_new(attrs, attr_str("url.path", s->path));
	json_array_append_new(attrs, attr_int("http.response.status_code", s->status));
	json_array_append_new(attrs, attr_str("gateway.request_id", s->request_id));
	json_array_append_new(attrs, attr_str("gateway.decision", s->decision));
	if (s->tenant[0])
		json_array_append_new(attrs, attr_str("gateway.tenant", s->tenant));
	if (s->code[0])
		json_array_append_new(attrs, attr_str("gateway.code", s->code));
	if (s->upstream_status)
		json_array_append_new(attrs,
		                      attr_int("gateway.upstream.status_code", s->upstream_status));
	/* kind 2: SERVER; status 2: ERROR for the gateway's or the upstream's
	 * failure (5xx), else unset, as the HTTP conventions ask. */
	o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:{s:i}}", "traceId", s->trace_id,
	              "spanId", s->span_id, "name", s->name, "kind", 2, "startTimeUnixNano", start,
	              "endTimeUnixNano", end, "attributes", attrs, "status", "code",
	              s->status >= 500 ? 2 : 0);
	if (o && s->parent_id[0])
		json_object_set_new(o, "parentSpanId", json_string(s->parent_id));
	return o;
}

/* The batch as an ExportTraceServiceRequest. */
static char *
batch_json(const struct otlp *o, const struct span *spans, size_t n)
{
	json_t *list = json_array(), *doc;
	char *text;
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(list, span_json(&spans[i]));
	doc = json_pack("{s:[{s:{s:[o]}, s:[{s:{s:s, s:s}, s:o}]}]}", "resourceSpans", "resource",
	                "attributes", attr_str("service.name", o->service), "scopeSpans", "scope",
	                "name", "containers-gateway", "version", GW_VERSION, "spans", list);
	text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	return text;
}

static size_t
discard(char *data, size_t size, size_t nmemb, void *arg)
{
	(void)data;
	(void)arg;
	return size * nmemb;
}

/* One POST of the batch; 0 when the collector took it. */
static int
post(struct otlp *o, CURL *curl, const char *body)
{
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	long status = 0;
	CURLcode rc;

	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, o->url);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, o->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, o->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(curl);
	curl_slist_free_all(headers);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK || status < 200 || status > 299) {
		log_warn("telemetry: the collector did not take %s: %s", "a batch of spans",
		         rc != CURLE_OK ? curl_easy_strerror(rc)
		                        : "it answered with an error status");
		return -1;
	}
	return 0;
}

/* Waits for spans: a full batch, flush_ms after the first, or the stop. */
static size_t
take(struct otlp *o, struct span *out)
{
	struct timespec until;
	size_t n, i;

	while (o->n == 0 && !o->stop)
		pthread_cond_wait(&o->cv, &o->mu);
	if (o->n < BATCH_MAX && !o->stop) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += o->flush_ms / 1000;
		until.tv_nsec += (o->flush_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (o->n < BATCH_MAX && !o->stop &&
		       pthread_cond_timedwait(&o->cv, &o->mu, &until) != ETIMEDOUT)
			;
	}
	n = o->n < BATCH_MAX ? o->n : BATCH_MAX;
	for (i = 0; i < n; i++)
		out[i] = o->queue[(o->head + i) % QUEUE_MAX];
	o->head = (o->head + n) % QUEUE_MAX;
	o->n -= n;
	return n;
}

static void *
run(void *arg)
{
	struct otlp *o = arg;
	struct span *batch = malloc(BATCH_MAX * sizeof(*batch));
	CURL *curl = curl_easy_init();
	char *body;
	size_t n;

	pthread_mutex_lock(&o->mu);
	while (batch && curl && (n = take(o, batch)) > 0) {
		pthread_mutex_unlock(&o->mu);
		body = batch_json(o, batch, n);
		n = body && post(o, curl, body) == 0 ? n : 0;
		secmem_json_free(body);
		pthread_mutex_lock(&o->mu);
		if (n)
			o->st.exported += n;
		else
			o->st.failed_batches++;
		/* Stopping, and the collector did not take a batch: the rest
		 * would only hold up the exit. */
		if (!n && o->stop) {
			o->st.dropped += o->n;
			o->n = 0;
		}
	}
	pthread_mutex_unlock(&o->mu);
	if (curl)
		curl_easy_cleanup(curl);
	free(batch);
	return NULL;
}

struct otlp *
otlp_new(const struct otlp_settings *s, struct err *e)
{
	struct otlp *o = calloc(1, sizeof(*o));
	pthread_condattr_t ca;

	if (o == NULL || (o->queue = calloc(QUEUE_MAX, sizeof(*o->queue))) == NULL ||
	    (o->url = strdup(s->url)) == NULL ||
	    (o->service = strdup(s->service_name ? s->service_name : "containers-gateway")) ==
	            NULL) {
		otlp_free(o);
		err_set(e, 500, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
		return NULL;
	}
	o->timeout_ms = s->timeout_ms > 0 ? s->timeout_ms : 5000;
	o->flush_ms = s->flush_ms > 0 ? s->flush_ms : 1000;
	pthread_mutex_init(&o->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&o->thread, NULL, run, o) != 0) {
		err_set(e, 500, ERR_INTERNAL, "telemetry", NULL,
		        "cannot start the span exporting thread");
		otlp_free(o);
		return NULL;
	}
	o->running = 1;
	return o;
}

void
otlp_free(struct otlp *o)
{
	if (o == NULL)
		return;
	if (o->running) {
		pthread_mutex_lock(&o->mu);
		o->stop = 1;
		pthread_cond_signal(&o->cv);
		pthread_mutex_unlock(&o->mu);
		pthread_join(o->thread, NULL);
		pthread_mutex_destroy(&o->mu);
		pthread_cond_destroy(&o->cv);
	}
	free(o->queue);
	free(o->url);
	free(o->service);
	free(o);
}

void
otlp_stats(struct otlp *o, struct otlp_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (o == NULL)
		return;
	pthread_mutex_lock(&o->mu);
	*st = o->st;
	pthread_mutex_unlock(&o->mu);
}
