/*
 * it_telemetry: what operators watch, from the real binary. A W3C trace
 * goes from the client through the gateway to the upstream and into the
 * audit record; spans reach an OTLP collector (a second stub standing in
 * for one) as OTLP JSON, never with a key or a secret; /metrics counts by
 * tenant; the shipped Grafana dashboard asks only for metrics the gateway
 * has.
 */
#include <criterion/criterion.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

TestSuite(it_telemetry, .init = hx_init, .fini = hx_fini, .timeout = 60);

#define TEAM_KEY  "sk-team-KEY-6610"
#define SECRET    "tel-SECRET-value-7734"
#define CLIENT_TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int admin_port;

static struct hx_gw *
start(const struct hx_stub *collector)
{
	struct hx_gw *gw;

	admin_port = hx_free_port();
	gw = hx_gw_start(hx_fmt("{\"network_policy\":{\"allowed_domains\":[\"pypi.org\"],"
	                        "\"allow_domain_secrets\":true},"
	                        "\"tenants\":{\"team\":{\"api_keys_sha256\":[\"%s\"]}}}",
	                        hx_key_digest(TEAM_KEY)),
	                 hx_fmt("{\"admin_listen\":\"127.0.0.1:%d\",\"telemetry\":{\"otlp_url\":"
	                        "\"%s/v1/traces\",\"flush_ms\":50}}",
	                        admin_port, collector->url));
	cr_assert_eq(hx_wait_port(admin_port, 5000), 0, "the admin port never opened");
	return gw;
}

static struct hx_resp *
create(const struct hx_gw *gw, const char *traceparent)
{
	const char *body = "{\"name\":\"t\",\"network_policy\":{\"type\":\"allowlist\","
	                   "\"allowed_domains\":[\"pypi.org\"],\"domain_secrets\":[{\"domain\":"
	                   "\"pypi.org\",\"name\":\"T\",\"value\":\"" SECRET "\"}]}}";
	const char *h[4] = {"Content-Type: application/json", "Authorization: Bearer " TEAM_KEY,
	                    traceparent ? hx_fmt("traceparent: %s", traceparent) : NULL, NULL};

	return hx_http("POST", hx_gw_url(gw, "/v1/containers"), h, body, strlen(body));
}

/* What the collector was sent: the bodies of its recorded POSTs. */
static json_t *
collected(const struct hx_stub *collector, size_t at_least)
{
	long long waited = 0;
	json_t *reqs = NULL;

	for (; waited < 5000; waited += 50) {
		struct hx_resp *r =
		        hx_http("GET", hx_fmt("%s/__stub/requests", collector->url), NULL, NULL, 0);

		reqs = hx_resp_json(r);
		if (json_array_size(reqs) >= at_least)
			break;
		hx_sleep_ms(50);
	}
	return reqs;
}

/* The spans of every batch the collector got, in one array. */
static json_t *
spans_of(json_t *reqs)
{
	json_t *all = hx_json("[]"), *req, *doc, *rs, *ss; /* the harness's */
	size_t i, len;
	const char *body;

	json_array_foreach(reqs, i, req)
	{
		cr_expect_str_eq(hx_str(req, "uri"), "/v1/traces");
		cr_expect_str_eq(hx_str(json_object_get(req, "headers"), "content-type"),
		                 "application/json");
		body = hx_record_body(req, &len);
		doc = hx_json(hx_fmt("%.*s", (int)len, body));
		rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
		ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
		json_array_extend(all, json_object_get(ss, "spans"));
	}
	return all;
}

static const char *
attr(const json_t *span, const char *key)
{
	json_t *a;
	size_t i;

	json_array_foreach(json_object_get(span, "attributes"), i, a)
	{
		if (strcmp(hx_str(a, "key"), key) == 0) {
			json_t *v = json_object_get(a, "value");

			return json_string_value(json_object_get(v, "stringValue"))
			               ? json_string_value(json_object_get(v, "stringValue"))
			               : json_string_value(json_object_get(v, "intValue"));
		}
	}
	return NULL;
}

Test(it_telemetry, a_trace_runs_from_the_client_to_the_upstream_the_record_and_the_collector)
{
	struct hx_stub *collector = hx_stub_start();
	struct hx_gw *gw = start(collector);
	json_t *up, *rec, *spans, *span, *reqs;
	const char *tp, *span_id;
	size_t i, len;

	cr_assert_eq(create(gw, CLIENT_TP)->status, 200);
	/* The upstream hears of the gateway's span as the parent. */
	up = json_array_get(hx_stub_requests(), 0);
	tp = hx_str(json_object_get(up, "headers"), "traceparent");
	cr_assert_not_null(tp, "no traceparent went up");
	cr_expect_eq(strncmp(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36), 0, "%s", tp);
	cr_expect_neq(strncmp(tp + 36, "00f067aa0ba902b7", 16), 0, "the client's span went up");
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_str_eq(hx_str(rec, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
	span_id = hx_str(rec, "span_id");
	cr_assert_not_null(span_id);
	cr_expect_eq(strncmp(tp + 36, span_id, 16), 0, "the record names another span");

	/* The collector gets the span, the client's as its parent. */
	reqs = collected(collector, 1);
	spans = spans_of(reqs);
	cr_assert_eq(json_array_size(spans), 1, "%s", json_dumps(reqs, 0));
	span = json_array_get(spans, 0);
	cr_expect_str_eq(hx_str(span, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
	cr_expect_str_eq(hx_str(span, "spanId"), span_id);
	cr_expect_str_eq(hx_str(span, "parentSpanId"), "00f067aa0ba902b7");
	cr_expect_str_eq(hx_str(span, "name"), "CreateContainer");
	cr_expect_eq(json_integer_value(json_object_get(span, "kind")), 2);
	cr_expect_str_eq(attr(span, "gateway.tenant"), "team");
	cr_expect_str_eq(attr(span, "http.response.status_code"), "200");
	cr_expect_str_eq(attr(span, "gateway.decision"), "allow");

	/* Without a traceparent a new trace starts; a client that asks for
	 * no sampling gets none exported, and its trace is still followed. */
	cr_assert_eq(create(gw, NULL)->status, 200);
	cr_assert_eq(create(gw, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")->status,
	             200);
	up = json_array_get(hx_stub_requests(), 2);
	cr_expect_eq(strncmp(hx_str(json_object_get(up, "headers"), "traceparent"),
	                     "00-0af7651916cd43dd8448eb211c80319c-", 36),
	             0);
	cr_expect_str_eq(hx_str(json_object_get(up, "headers"), "traceparent") + 52, "-00");
	hx_sleep_ms(300);
	spans = spans_of(collected(collector, 2));
	cr_expect_eq(json_array_size(spans), 2, "the unsampled trace was exported");
	cr_expect_str_neq(hx_str(json_array_get(spans, 1), "traceId"),
	                  "4bf92f3577b34da6a3ce929d0e0e4736");

	/* No key and no secret ever reaches the collector. */
	reqs = collected(collector, 2);
	json_array_foreach(reqs, i, up)
	{
		const char *body = hx_record_body(up, &len);
		const char *text = hx_fmt("%.*s", (int)len, body);

		cr_expect_null(strstr(text, TEAM_KEY));
		cr_expect_null(strstr(text, SECRET));
	}
	cr_expect_eq(hx_gw_stop(gw), 0);
}

/* /metrics counts each tenant's requests and container GB-minutes, and
 * every metric the shipped dashboard asks for is there. */
Test(it_telemetry, metrics_by_tenant_and_the_dashboard_asks_only_for_what_exists)
{
	struct hx_stub *collector = hx_stub_start();
	struct hx_gw *gw = start(collector);
	const char *dash = hx_read_file("deploy/grafana/gateway.json", NULL), *p, *text;
	struct hx_resp *m;
	regex_t re;
	regmatch_t mt;
	char name[128];
	size_t n;

	cr_assert_eq(create(gw, NULL)->status, 200);
	hx_audit_wait(gw, 1, 5000);
	m = hx_http("GET", hx_fmt("http://127.0.0.1:%d/metrics", admin_port), NULL, NULL, 0);
	cr_assert_eq(m->status, 200);
	text = m->body;
	cr_expect_not_null(strstr(text, "gateway_requests_total{route=\"CreateContainer\","
	                                "decision=\"allow\",status=\"200\",tenant=\"team\"} 1"),
	                   "%s", text);
	/* A create's default expiry (20 minutes) of its default 1g. */
	cr_expect_not_null(strstr(text, "gateway_container_gb_minutes_total{tenant=\"team\"} 20"),
	                   "%s", text);

	cr_assert_not_null(dash, "deploy/grafana/gateway.json is missing");
	cr_assert_not_null(hx_json(dash));
	cr_assert_eq(regcomp(&re, "gateway_[a-z_]+", REG_EXTENDED), 0);
	for (p = dash, n = 0; regexec(&re, p, 1, &mt, 0) == 0; p += mt.rm_eo, n++) {
		size_t len = (size_t)(mt.rm_eo - mt.rm_so);

		snprintf(name, sizeof(name), "%.*s", (int)len, p + mt.rm_so);
		/* A histogram's series are its name's _bucket, _count and _sum. */
		if (len > 7 && strcmp(name + strlen(name) - 7, "_bucket") == 0)
			name[strlen(name) - 7] = '\0';
		cr_expect_not_null(strstr(text, hx_fmt("# TYPE %s ", name)),
		                   "the dashboard asks for %s, which /metrics does not have", name);
	}
	regfree(&re);
	cr_expect_gt(n, 10, "the dashboard names only %zu metrics", n);
}
