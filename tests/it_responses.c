/*
 * it_responses: one door to the OpenAI API, through the real gateway and
 * the stand-in upstream. POST /v1/responses (and /compact, and their
 * ?beta=true twins) makes containers through its tools: those over the
 * policy are refused wherever the tool sits, plain or streamed, and never
 * reach the upstream; those within it go up with the policy's defaults. A
 * container the answer names (JSON, or Server-Sent Events as they pass) is
 * its maker's: another tenant can neither see it nor run code in it. An
 * event stream reaches the client as the upstream sends it, a client that
 * leaves cancels the upstream call, and the audit record is written at
 * the stream's end. Every route needs a tenant's key in gateway_keys mode
 * and names its tenant; a batch cannot make containers unless the policy
 * says so; a stored prompt is refused by default.
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

TestSuite(it_responses, .init = hx_init, .fini = hx_fini, .timeout = 120);

#define ALPHA_KEY "sk-alpha-KEY-3310"
#define BETA_KEY  "sk-beta-KEY-8842"
#define SMALL_KEY "sk-small-KEY-1207"
#define ORG_KEY   "sk-org-KEY-5150"

/* The organization allows 4g, one domain, every operation; three tenants,
 * one of them held to 1g, one to a single live container. */
static const char *
policy(const char *extra)
{
	return hx_fmt("{\"memory_limit\":{\"max\":\"4g\",\"default\":\"1g\"},"
	              "\"network_policy\":{\"allowed_domains\":[\"pypi.org\"]},"
	              "\"routes\":{\"default\":\"allow\"},"
	              "\"tenants\":{"
	              "\"alpha\":{\"api_keys_sha256\":[\"%s\"],"
	              "\"rate_limit\":{\"max_live_containers\":1}},"
	              "\"beta\":{\"api_keys_sha256\":[\"%s\"]},"
	              "\"small\":{\"api_keys_sha256\":[\"%s\"],"
	              "\"policy\":{\"memory_limit\":{\"max\":\"1g\"}}}}%s}",
	              hx_key_digest(ALPHA_KEY), hx_key_digest(BETA_KEY), hx_key_digest(SMALL_KEY),
	              extra ? extra : "");
}

/* Long streams: the default 3 s would do, but a shared machine is slow. */
static const char *const config = "{\"upstream\":{\"timeout_ms\":10000}}";

static struct hx_resp *
as(const struct hx_gw *gw, const char *key, const char *method, const char *path, const char *body)
{
	const char *h[3] = {"Content-Type: application/json", NULL, NULL};

	if (key)
		h[1] = hx_fmt("Authorization: Bearer %s", key);
	return hx_http(method, hx_gw_url(gw, path), h, body, body ? strlen(body) : 0);
}

static void
expect_error(struct hx_resp *r, long status, const char *code, const char *param)
{
	json_t *err = json_object_get(hx_resp_json(r), "error");

	cr_assert_eq(r->status, status, "want %ld: %ld %s", status, r->status, r->body);
	cr_expect_str_eq(hx_str(err, "code"), code, "%s", r->body);
	if (param)
		cr_expect_str_eq(hx_str(err, "param"), param, "%s", r->body);
	else
		cr_expect(json_is_null(json_object_get(err, "param")), "%s", r->body);
}

static size_t
upstream_count(void)
{
	return json_array_size(hx_stub_requests());
}

/* The last request the upstream got, its body parsed. */
static json_t *
last_forwarded(void)
{
	json_t *reqs = hx_stub_requests();
	size_t len;
	const char *body;

	cr_assert_gt(json_array_size(reqs), 0, "nothing was forwarded");
	body = hx_record_body(json_array_get(reqs, json_array_size(reqs) - 1), &len);
	cr_assert_not_null(body);
	return hx_json(body);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A Responses answer naming what its tools ran in. */
static const char *
json_answer(const char *items)
{
	return hx_fmt("{\"json\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":"
	              "\"completed\",\"output\":[%s]}}",
	              items);
}

static const char *
code_interpreter_call(const char *cid)
{
	return hx_fmt("{\"type\":\"code_interpreter_call\",\"id\":\"ci_1\",\"container_id\":"
	              "\"%s\",\"code\":\"print(1)\",\"status\":\"completed\",\"outputs\":[]}",
	              cid);
}

static const char *
shell_call(const char *cid)
{
	return hx_fmt("{\"type\":\"shell_call\",\"id\":\"sh_1\",\"call_id\":\"call_1\","
	              "\"status\":\"in_progress\",\"action\":{\"commands\":[\"ls\"]},"
	              "\"environment\":{\"type\":\"container_reference\",\"container_id\":\"%s\"}}",
	              cid);
}

/* A stream of three events, the second naming item; delay_ms apart. */
static const char *
sse_answer(const char *item, int delay_ms)
{
	return hx_fmt(
	        "{\"events\":["
	        "{\"event\":\"response.created\",\"data\":{\"type\":\"response.created\","
	        "\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\","
	        "\"status\":\"in_progress\",\"output\":[]}}},"
	        "{\"event\":\"response.output_item.added\",\"delay_ms\":%d,\"data\":{\"type\":"
	        "\"response.output_item.added\",\"sequence_number\":1,\"output_index\":0,"
	        "\"item\":%s}},"
	        "{\"event\":\"response.completed\",\"delay_ms\":%d,\"data\":{\"type\":"
	        "\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_1\","
	        "\"object\":\"response\",\"status\":\"completed\",\"output\":[%s]}}}]}",
	        delay_ms, item, delay_ms, item);
}

/* ---- tool containers over the policy ---------------------------------- */

static const struct {
	const char *body; /* after "model" (and "stream") */
	const char *param, *code;
} refused[] = {
        {"\"input\":\"hi\",\"tools\":[{\"type\":\"code_interpreter\",\"container\":{\"type\":"
         "\"auto\",\"memory_limit\":\"64g\"}}]",
         "tools[0].container.memory_limit", "memory_limit_exceeded"},
        {"\"input\":\"hi\",\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":"
         "{\"type\":\"object\"}},{\"type\":\"code_interpreter\",\"container\":{\"type\":"
         "\"auto\",\"memory_limit\":\"64g\"}}]",
         "tools[1].container.memory_limit", "memory_limit_exceeded"},
        {"\"input\":\"hi\",\"tools\":[{\"type\":\"shell\",\"environment\":{\"type\":"
         "\"container_auto\",\"memory_limit\":\"64g\"}}]",
         "tools[0].environment.memory_limit", "memory_limit_exceeded"},
        {"\"input\":\"hi\",\"tools\":[{\"type\":\"code_interpreter\",\"container\":{\"type\":"
         "\"auto\",\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":"
         "[\"evil.example.com\"]}}}]",
         "tools[0].container.network_policy.allowed_domains[0]", "domain_not_allowed"},
        {"\"input\":\"hi\",\"tools\":[{\"type\":\"web_search\"},{\"type\":\"shell\","
         "\"environment\":{\"type\":\"container_auto\",\"network_policy\":{\"type\":"
         "\"allowlist\",\"allowed_domains\":[\"pypi.org\",\"evil.example.com\"]}}}]",
         "tools[1].environment.network_policy.allowed_domains[1]", "domain_not_allowed"},
        {"\"input\":[{\"type\":\"message\",\"role\":\"user\",\"content\":\"hi\"},"
         "{\"type\":\"additional_tools\",\"role\":\"developer\",\"tools\":[{\"type\":\"shell\","
         "\"environment\":{\"type\":\"container_auto\",\"memory_limit\":\"64g\"}}]}]",
         "input[1].tools[0].environment.memory_limit", "memory_limit_exceeded"},
        {"\"input\":[{\"type\":\"tool_search_output\",\"execution\":\"client\",\"call_id\":"
         "\"c1\",\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{\"type\":"
         "\"object\"}},{\"type\":\"code_interpreter\",\"container\":{\"type\":\"auto\","
         "\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":[\"evil.example.com\"]"
         "}}}]}]",
         "input[0].tools[1].container.network_policy.allowed_domains[0]", "domain_not_allowed"},
        /* Valid tools first, the refused one last. */
        {"\"input\":\"hi\",\"tools\":[{\"type\":\"code_interpreter\",\"container\":{\"type\":"
         "\"auto\"}},{\"type\":\"shell\",\"environment\":{\"type\":\"local\"}},{\"type\":"
         "\"code_interpreter\",\"container\":{\"type\":\"auto\",\"memory_limit\":\"16g\"}}]",
         "tools[2].container.memory_limit", "memory_limit_exceeded"},
};

static const char *const response_paths[] = {"/v1/responses", "/v1/responses?beta=true",
                                             "/v1/responses/compact",
                                             "/v1/responses/compact?beta=true"};

Test(it_responses, tool_containers_over_the_policy_never_reach_the_upstream)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
	size_t i, s, p, n = 0;
	json_t *recs, *rec;

	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		for (s = 0; s < 2; s++) {
			const char *body = hx_fmt("{\"model\":\"gpt-5\"%s,%s}",
			                          s ? ",\"stream\":true" : "", refused[i].body);
			struct hx_resp *r;

			for (p = 0; p < sizeof(response_paths) / sizeof(response_paths[0]); p++) {
				/* Every case on the plain path, the first on each path. */
				if (p > 0 && i > 0)
					break;
				r = as(gw, ALPHA_KEY, "POST", response_paths[p], body);
				expect_error(r, 403, refused[i].code, refused[i].param);
				cr_expect_eq(upstream_count(), 0, "case %zu%s on %s went up", i,
				             s ? " (stream)" : "", response_paths[p]);
				n++;
			}
		}
	}
	recs = hx_audit_wait(gw, n, 10000);
	cr_assert_eq(json_array_size(recs), n);
	json_array_foreach(recs, i, rec)
	{
		cr_expect_str_eq(hx_str(rec, "decision"), "deny");
		cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 403);
		cr_expect_str_eq(hx_str(rec, "tenant"), "alpha");
		cr_expect(json_is_null(json_object_get(rec, "upstream_status")));
	}
	cr_expect_str_eq(hx_str(json_array_get(recs, 0), "param"), refused[0].param);
	cr_expect_str_eq(hx_str(json_array_get(recs, 1), "operation"), "beta_createResponse");
	cr_expect_str_eq(hx_str(json_array_get(recs, 2), "operation"), "Compactconversation");
	cr_expect_eq(upstream_count(), 0);
}

/* Within the policy the call goes up, each container it makes filled in
 * with the policy's defaults, the rest of the body as it came. */
Test(it_responses, tool_containers_within_the_policy_go_up_with_its_defaults)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
	const char *tools =
	        "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{\"type\":"
	        "\"object\",\"properties\":{\"memory_limit\":{\"type\":\"string\"}}}},"
	        "{\"type\":\"code_interpreter\",\"container\":{\"type\":\"auto\"}},"
	        "{\"type\":\"shell\",\"environment\":{\"type\":\"container_auto\","
	        "\"memory_limit\":\"4g\",\"network_policy\":{\"type\":\"allowlist\","
	        "\"allowed_domains\":[\"PyPI.org.\"]}}}]";
	json_t *up, *want, *rec;
	struct hx_resp *r;
	int s;

	for (s = 0; s < 2; s++) {
		hx_stub_next(s ? sse_answer("{\"type\":\"message\"}", 0) : json_answer(""));
		r = as(gw, ALPHA_KEY, "POST", "/v1/responses",
		       hx_fmt("{\"model\":\"gpt-5\",\"input\":\"hi\"%s,%s}",
		              s ? ",\"stream\":true" : "", tools));
		cr_assert_eq(r->status, 200, "%s", r->body);
		if (s) {
			cr_expect_str_eq(hx_resp_header(r, "content-type"), "text/event-stream");
			cr_expect_not_null(strstr(r->body, "event: response.completed"), "%s",
			                   r->body);
		}
		up = last_forwarded();
		want = hx_json(hx_fmt(
		        "{\"model\":\"gpt-5\",\"input\":\"hi\"%s,"
		        "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":"
		        "{\"type\":\"object\",\"properties\":{\"memory_limit\":{\"type\":"
		        "\"string\"}}}},"
		        "{\"type\":\"code_interpreter\",\"container\":{\"type\":\"auto\","
		        "\"memory_limit\":\"1g\",\"network_policy\":{\"type\":\"disabled\"}}},"
		        "{\"type\":\"shell\",\"environment\":{\"type\":\"container_auto\","
		        "\"memory_limit\":\"4g\",\"network_policy\":{\"type\":\"allowlist\","
		        "\"allowed_domains\":[\"pypi.org\"]}}}]}",
		        s ? ",\"stream\":true" : ""));
		cr_expect(json_equal(up, want), "forwarded %s", json_dumps(up, JSON_COMPACT));
	}
	rec = json_array_get(hx_audit_wait(gw, 2, 5000), 0);
	cr_expect_str_eq(hx_str(rec, "decision"), "allow");
	cr_expect_eq(json_array_size(json_object_get(rec, "tool_containers")), 2);
	cr_expect_str_eq(
	        hx_str(json_array_get(json_object_get(rec, "tool_containers"), 0), "memory_limit"),
	        "1g");
	cr_expect_gt(json_array_size(json_object_get(rec, "adjustments")), 0);
}

/* A tenant's own narrower policy holds in its tools as in its creates. */
Test(it_responses, a_tenants_narrower_limits_hold_in_its_tools)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
#define NARROW_BODY                                                                                \
	"{\"model\":\"gpt-5\",\"input\":\"hi\",\"tools\":[{\"type\":\"code_interpreter\","         \
	"\"container\":{\"type\":\"auto\",\"memory_limit\":\"4g\"}}]%s}"
	struct hx_resp *r;

	r = as(gw, SMALL_KEY, "POST", "/v1/responses", hx_fmt(NARROW_BODY, ""));
	expect_error(r, 403, "memory_limit_exceeded", "tools[0].container.memory_limit");
	cr_expect_not_null(strstr(r->body, "\\\"1g\\\""), "names the tenant's max: %s", r->body);
	r = as(gw, SMALL_KEY, "POST", "/v1/responses", hx_fmt(NARROW_BODY, ",\"stream\":true"));
	expect_error(r, 403, "memory_limit_exceeded", "tools[0].container.memory_limit");
	cr_expect_eq(upstream_count(), 0);

	/* The organization's 4g is fine for another. */
	hx_stub_next(json_answer(""));
	r = as(gw, BETA_KEY, "POST", "/v1/responses", hx_fmt(NARROW_BODY, ""));
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_str_eq(
	        hx_str(json_object_get(
	                       json_array_get(json_object_get(last_forwarded(), "tools"), 0),
	                       "container"),
	               "memory_limit"),
	        "4g");
#undef NARROW_BODY
}

/* ---- containers made by a call are its maker's ------------------------ */

/* What another tenant may not do with cid, and what its maker may. */
static void
expect_owned_by_alpha(const struct hx_gw *gw, const char *cid)
{
	size_t before = upstream_count();
	struct hx_resp *r;

	expect_error(as(gw, BETA_KEY, "GET", hx_fmt("/v1/containers/%s", cid), NULL), 404,
	             "not_found", NULL);
	expect_error(as(gw, BETA_KEY, "DELETE", hx_fmt("/v1/containers/%s", cid), NULL), 404,
	             "not_found", NULL);
	r = as(gw, BETA_KEY, "POST", "/v1/responses",
	       hx_fmt("{\"model\":\"gpt-5\",\"input\":\"hi\",\"tools\":[{\"type\":"
	              "\"code_interpreter\",\"container\":\"%s\"}]}",
	              cid));
	expect_error(r, 404, "not_found", "tools[0].container");
	r = as(gw, BETA_KEY, "POST", "/v1/responses",
	       hx_fmt("{\"model\":\"gpt-5\",\"input\":\"hi\",\"stream\":true,\"tools\":["
	              "{\"type\":\"function\",\"name\":\"f\"},{\"type\":\"shell\","
	              "\"environment\":{\"type\":\"container_reference\",\"container_id\":"
	              "\"%s\"}}]}",
	              cid));
	expect_error(r, 404, "not_found", "tools[1].environment.container_id");
	r = as(gw, BETA_KEY, "POST", "/v1/responses",
	       hx_fmt("{\"model\":\"gpt-5\",\"input\":[{\"type\":\"additional_tools\","
	              "\"role\":\"developer\",\"tools\":[{\"type\":\"code_interpreter\","
	              "\"container\":\"%s\"}]}]}",
	              cid));
	expect_error(r, 404, "not_found", "input[0].tools[0].container");
	cr_expect_eq(upstream_count(), before, "another tenant's calls went up");

	/* Its maker reaches it, by retrieve and by running code in it. */
	hx_stub_next(hx_fmt("{\"json\":{\"id\":\"%s\",\"object\":\"container\",\"name\":\"r\","
	                    "\"created_at\":1,\"status\":\"running\"}}",
	                    cid));
	r = as(gw, ALPHA_KEY, "GET", hx_fmt("/v1/containers/%s", cid), NULL);
	cr_expect_eq(r->status, 200, "%s", r->body);
	cr_expect_str_eq(hx_str(json_array_get(hx_stub_requests(), (json_int_t)before), "uri"),
	                 hx_fmt("/v1/containers/%s", cid));
	hx_stub_next(json_answer(code_interpreter_call(cid)));
	r = as(gw, ALPHA_KEY, "POST", "/v1/responses",
	       hx_fmt("{\"model\":\"gpt-5\",\"input\":\"hi\",\"tools\":[{\"type\":"
	              "\"code_interpreter\",\"container\":\"%s\"}]}",
	              cid));
	cr_expect_eq(r->status, 200, "%s", r->body);
	cr_expect_eq(upstream_count(), before + 2);
}

/* The maker is at its cap of one live container: the one it made counts. */
static void
expect_counted_as_live(const struct hx_gw *gw)
{
	size_t before = upstream_count();
	struct hx_resp *r = as(gw, ALPHA_KEY, "POST", "/v1/containers", "{\"name\":\"second\"}");

	expect_error(r, 429, "rate_limit_exceeded", NULL);
	cr_expect_str_eq(hx_resp_header(r, "x-should-retry"), "false");
	r = as(gw, ALPHA_KEY, "POST", "/v1/responses",
	       "{\"model\":\"gpt-5\",\"input\":\"hi\",\"tools\":[{\"type\":\"code_interpreter\","
	       "\"container\":{\"type\":\"auto\"}}]}");
	expect_error(r, 429, "rate_limit_exceeded", NULL);
	cr_expect_eq(upstream_count(), before);
}

static json_t *
record_of(const struct hx_gw *gw, const char *request_id)
{
	json_t *recs, *rec;
	size_t i;
	long long end = now_ms() + 5000;

	do {
		recs = hx_audit_records(gw);
		json_array_foreach(recs, i, rec)
		{
			if (hx_str(rec, "request_id") &&
			    strcmp(hx_str(rec, "request_id"), request_id) == 0)
				return rec;
		}
		hx_sleep_ms(50);
	} while (now_ms() < end);
	cr_assert_fail("no audit record for %s", request_id);
	return NULL;
}

Test(it_responses, a_container_a_json_answer_names_is_its_makers)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
	struct hx_resp *r;
	json_t *rec;

	hx_stub_next(json_answer(code_interpreter_call("cntr_madeJSON1")));
	r = as(gw, ALPHA_KEY, "POST", "/v1/responses",
	       "{\"model\":\"gpt-5\",\"input\":\"hi\",\"tools\":[{\"type\":\"code_interpreter\","
	       "\"container\":{\"type\":\"auto\"}}]}");
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_not_null(strstr(r->body, "cntr_madeJSON1"));
	rec = record_of(gw, hx_resp_header(r, "x-request-id"));
	cr_expect_str_eq(hx_str(rec, "tenant"), "alpha");
	cr_expect_eq(json_array_size(json_object_get(rec, "containers")), 1, "%s",
	             json_dumps(rec, JSON_COMPACT));
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(rec, "containers"), 0)),
	                 "cntr_madeJSON1");
	expect_owned_by_alpha(gw, "cntr_madeJSON1");
	expect_counted_as_live(gw);
}

Test(it_responses, a_container_an_event_stream_names_is_its_makers)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
	struct hx_resp *r;
	json_t *rec;

	hx_stub_next(sse_answer(shell_call("cntr_madeSSE2"), 50));
	r = as(gw, ALPHA_KEY, "POST", "/v1/responses",
	       "{\"model\":\"gpt-5\",\"input\":\"hi\",\"stream\":true,\"tools\":[{\"type\":"
	       "\"shell\",\"environment\":{\"type\":\"container_auto\"}}]}");
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_not_null(strstr(r->body, "cntr_madeSSE2"));
	rec = record_of(gw, hx_resp_header(r, "x-request-id"));
	cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 200);
	cr_expect_eq(json_array_size(json_object_get(rec, "containers")), 1, "%s",
	             json_dumps(rec, JSON_COMPACT));
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(rec, "containers"), 0)),
	                 "cntr_madeSSE2");
	expect_owned_by_alpha(gw, "cntr_madeSSE2");
	expect_counted_as_live(gw);
}

/* A stream the upstream breaks off after it named a container (its
 * connection lost, or silent past upstream.timeout_ms while the code runs)
 * still makes that container the tenant's and counts it, as when the
 * client leaves: the container was made. Else it would be nobody's, and a
 * tenant could run containers past its live cap and its budget by making
 * its code outlast the timeout. */
Test(it_responses, a_container_a_broken_off_stream_named_is_still_its_makers)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
	struct hx_resp *r;
	json_t *rec;

	hx_stub_next(
	        hx_fmt("{\"events\":[{\"event\":\"response.output_item.added\",\"data\":{\"type\":"
	               "\"response.output_item.added\",\"sequence_number\":0,\"output_index\":0,"
	               "\"item\":%s}}],\"then\":\"close\"}",
	               code_interpreter_call("cntr_brokenSSE")));
	r = as(gw, ALPHA_KEY, "POST", "/v1/responses",
	       "{\"model\":\"gpt-5\",\"input\":\"hi\",\"stream\":true,\"tools\":[{\"type\":"
	       "\"code_interpreter\",\"container\":{\"type\":\"auto\"}}]}");
	(void)r;
	rec = json_array_get(hx_audit_wait(gw, 1, 8000), 0);
	cr_expect_str_eq(hx_str(rec, "code"), "upstream_stream_failed", "%s",
	                 json_dumps(rec, JSON_COMPACT));
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(rec, "containers"), 0)),
	                 "cntr_brokenSSE", "%s", json_dumps(rec, JSON_COMPACT));
	expect_owned_by_alpha(gw, "cntr_brokenSSE");
	expect_counted_as_live(gw);
}

/* An answer that names another tenant's container (an upstream mistaken
 * or lying) neither moves it to this tenant nor counts against this
 * tenant's live containers. */
Test(it_responses, an_answer_naming_another_tenants_container_takes_nothing_from_it)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
	const char *body = "{\"model\":\"gpt-5\",\"input\":\"hi\",\"tools\":[{\"type\":"
	                   "\"code_interpreter\",\"container\":{\"type\":\"auto\"}}]}";
	struct hx_resp *r;
	const char *theirs;

	r = as(gw, BETA_KEY, "POST", "/v1/containers", "{\"name\":\"beta's\"}");
	cr_assert_eq(r->status, 200, "%s", r->body);
	theirs = hx_str(hx_resp_json(r), "id");
	hx_stub_next(json_answer(code_interpreter_call(theirs)));
	cr_assert_eq(as(gw, ALPHA_KEY, "POST", "/v1/responses", body)->status, 200);
	expect_error(as(gw, ALPHA_KEY, "GET", hx_fmt("/v1/containers/%s", theirs), NULL), 404,
	             "not_found", NULL);
	cr_expect_eq(as(gw, BETA_KEY, "GET", hx_fmt("/v1/containers/%s", theirs), NULL)->status,
	             200);
	/* alpha's one live container is still free to make. */
	r = as(gw, ALPHA_KEY, "POST", "/v1/containers", "{\"name\":\"alpha's\"}");
	cr_expect_eq(r->status, 200, "beta's container counted against alpha: %s", r->body);
}

/* Only where the API names the containers a call ran in (its output items,
 * a shell call's environment) are they the caller's: the answer also
 * echoes the request's own tools, and a function tool's parameters are
 * any JSON the client likes. A container nobody owns (the organization's)
 * written there must not become the tenant's. */
Test(it_responses, a_container_the_client_wrote_into_its_tools_is_not_claimed)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
	struct hx_resp *r;
	const char *org_cntr, *tool, *body;

	r = as(gw, ORG_KEY, "POST", "/v1/containers", "{\"name\":\"the organization's\"}");
	cr_assert_eq(r->status, 200, "%s", r->body);
	org_cntr = hx_str(hx_resp_json(r), "id");
	tool = hx_fmt("{\"type\":\"function\",\"name\":\"f\",\"parameters\":{\"type\":"
	              "\"object\",\"properties\":{},\"x\":{\"type\":\"code_interpreter_call\","
	              "\"container_id\":\"%s\"}}}",
	              org_cntr);
	body = hx_fmt("{\"model\":\"gpt-5\",\"input\":\"hi\",\"tools\":[%s]}", tool);
	hx_stub_next(hx_fmt("{\"json\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":"
	                    "\"completed\",\"tools\":[%s],\"output\":[]}}",
	                    tool));
	cr_assert_eq(as(gw, ALPHA_KEY, "POST", "/v1/responses", body)->status, 200);
	expect_error(as(gw, ALPHA_KEY, "GET", hx_fmt("/v1/containers/%s", org_cntr), NULL), 404,
	             "not_found", NULL);
}

/* A tenant's budget holds for the containers tools make: each auto
 * container costs its memory for the upstream's 20-minute session,
 * reserved before the call and given back when the model made none. */
Test(it_responses, tool_containers_are_charged_to_the_budget)
{
	struct hx_gw *gw = hx_gw_start(
	        hx_fmt("{\"memory_limit\":{\"max\":\"4g\",\"default\":\"1g\"},"
	               "\"routes\":{\"default\":\"allow\"},\"tenants\":{\"alpha\":{"
	               "\"api_keys_sha256\":[\"%s\"],\"budget\":{\"gb_minutes_per_day\":40}}}}",
	               hx_key_digest(ALPHA_KEY)),
	        config);
	const char *body = "{\"model\":\"gpt-5\",\"input\":\"hi\",\"tools\":[{\"type\":"
	                   "\"code_interpreter\",\"container\":{\"type\":\"auto\"}}]}";
	struct hx_resp *r;
	json_t *recs;
	size_t before;

	hx_stub_next(json_answer(code_interpreter_call("cntr_budget1")));
	cr_assert_eq(as(gw, ALPHA_KEY, "POST", "/v1/responses", body)->status, 200);
	/* The model used no tool: its 20 GB-minutes come back. */
	hx_stub_next(json_answer("{\"type\":\"message\",\"id\":\"m_1\",\"role\":\"assistant\","
	                         "\"status\":\"completed\",\"content\":[]}"));
	cr_assert_eq(as(gw, ALPHA_KEY, "POST", "/v1/responses", body)->status, 200);
	hx_sleep_ms(100);
	hx_stub_next(json_answer(code_interpreter_call("cntr_budget2")));
	r = as(gw, ALPHA_KEY, "POST", "/v1/responses", body);
	cr_expect_eq(r->status, 200, "the unused reservation was kept: %s", r->body);
	before = upstream_count();
	expect_error(as(gw, ALPHA_KEY, "POST", "/v1/responses", body), 429, "budget_exceeded",
	             NULL);
	cr_expect_eq(upstream_count(), before, "a refused call went up");
	recs = hx_audit_wait(gw, 4, 5000);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(recs, 0), "gb_minutes")),
	             20);
}

/* A body whose tools would make more containers than the policy allows
 * (responses.max_tool_containers, 16 by default) is refused whole, before
 * any is decided or forwarded; at the limit it goes through. */
Test(it_responses, more_tool_containers_than_the_policy_allows_are_refused)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
	const char *one = "{\"type\":\"code_interpreter\",\"container\":{\"type\":\"auto\"}}";
	const char *tools = one;
	size_t before;
	int i;

	for (i = 1; i < 16; i++)
		tools = hx_fmt("%s,%s", tools, one);
	hx_stub_next(json_answer(""));
	cr_expect_eq(as(gw, ORG_KEY, "POST", "/v1/responses",
	                hx_fmt("{\"model\":\"gpt-5\",\"input\":\"hi\",\"tools\":[%s]}", tools))
	                     ->status,
	             200);
	before = upstream_count();
	expect_error(
	        as(gw, ORG_KEY, "POST", "/v1/responses",
	           hx_fmt("{\"model\":\"gpt-5\",\"input\":\"hi\",\"tools\":[%s,%s]}", tools, one)),
	        403, "too_many_tool_containers", "tools");
	cr_expect_eq(upstream_count(), before, "a refused body went up");
}

/* A background call is answered before its model runs ("status":
 * "queued"): the containers its tools make are never named to the
 * gateway, so what they were charged must stay spent, or a tenant could
 * run containers past its budget by asking for them in the background. */
Test(it_responses, a_background_call_keeps_its_budget_charge)
{
	struct hx_gw *gw = hx_gw_start(
	        hx_fmt("{\"memory_limit\":{\"max\":\"4g\",\"default\":\"1g\"},"
	               "\"routes\":{\"default\":\"allow\"},\"tenants\":{\"alpha\":{"
	               "\"api_keys_sha256\":[\"%s\"],\"budget\":{\"gb_minutes_per_day\":40}}}}",
	               hx_key_digest(ALPHA_KEY)),
	        config);
	const char *body = "{\"model\":\"gpt-5\",\"input\":\"hi\",\"background\":true,\"tools\":[{"
	                   "\"type\":\"code_interpreter\",\"container\":{\"type\":\"auto\"}}]}";
	const char *queued = "{\"json\":{\"id\":\"resp_bg\",\"object\":\"response\","
	                     "\"status\":\"queued\",\"background\":true,\"output\":[]}}";
	size_t before;
	int i;

	for (i = 0; i < 2; i++) {
		hx_stub_next(queued);
		cr_assert_eq(as(gw, ALPHA_KEY, "POST", "/v1/responses", body)->status, 200);
	}
	hx_sleep_ms(100);
	before = upstream_count();
	hx_stub_next(queued);
	expect_error(as(gw, ALPHA_KEY, "POST", "/v1/responses", body), 429, "budget_exceeded",
	             NULL);
	cr_expect_eq(upstream_count(), before, "a third 20 GB-minutes went up past a budget of 40");
}

/* ---- streams as they pass ---------------------------------------------- */

/* Reads from fd, appending to *buf, until it holds needle; the time it
 * did, or -1 on timeout or close. */
static long long
read_until(int fd, char **buf, size_t *len, const char *needle, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	while (*buf == NULL || strstr(*buf, needle) == NULL) {
		struct pollfd pfd = {fd, POLLIN, 0};
		char chunk[4096];
		ssize_t n;
		long long left = end - now_ms();

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return -1;
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n <= 0)
			return -1;
		*buf = realloc(*buf, *len + (size_t)n + 1);
		cr_assert_not_null(*buf);
		memcpy(*buf + *len, chunk, (size_t)n);
		*len += (size_t)n;
		(*buf)[*len] = '\0';
	}
	return now_ms();
}

static int
open_stream(const struct hx_gw *gw, const char *key, const char *body)
{
	const char *req = hx_fmt("POST /v1/responses HTTP/1.1\r\nHost: gw\r\n"
	                         "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
	                         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
	                         key, strlen(body), body);
	int fd = hx_raw_open(gw->port, req, strlen(req));

	cr_assert_geq(fd, 0, "cannot connect");
	return fd;
}

static const char *const stream_body =
        "{\"model\":\"gpt-5\",\"input\":\"hi\",\"stream\":true,\"tools\":[{\"type\":"
        "\"code_interpreter\",\"container\":{\"type\":\"auto\"}}]}";

Test(it_responses, an_event_stream_reaches_the_client_as_the_upstream_sends_it)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
	char *buf = NULL;
	size_t len = 0;
	long long first, last_sent, end;
	json_t *up, *recs, *rec;
	int fd;

	hx_stub_next(sse_answer(code_interpreter_call("cntr_paced3"), 700));
	fd = open_stream(gw, ALPHA_KEY, stream_body);
	first = read_until(fd, &buf, &len, "event: response.created", 10000);
	cr_assert_gt(first, 0, "no first event: %s", buf ? buf : "(nothing)");
	cr_expect_not_null(strstr(buf, "text/event-stream"), "%s", buf);
	cr_expect_null(strstr(buf, "response.output_item.added"), "the second came at once");
	/* While the stream is open, its call has an intent and no record. */
	recs = hx_audit_records(gw);
	cr_expect_eq(json_array_size(recs), 0, "a record while the stream is open");
	end = read_until(fd, &buf, &len, "\r\n0\r\n\r\n", 10000);
	cr_assert_gt(end, 0, "the stream did not end: %s", buf);
	cr_expect_not_null(strstr(buf, "response.output_item.added"));
	cr_expect_not_null(strstr(buf, "event: response.completed"));

	up = json_array_get(hx_stub_requests(), 0);
	last_sent = json_integer_value(json_object_get(up, "sse_last_ms"));
	cr_assert_gt(last_sent, 0, "the stub did not finish: %s", json_dumps(up, JSON_COMPACT));
	cr_expect_lt(first + 700, last_sent,
	             "the first event arrived at %lld, only %lld ms before the last was sent",
	             first, last_sent - first);
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 200);
	cr_expect_str_eq(hx_str(rec, "decision"), "allow");
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(rec, "containers"), 0)),
	                 "cntr_paced3");
	cr_expect_gt(json_integer_value(json_object_get(rec, "bytes_out")), 0);
	free(buf);
}

/* Reads fd to its end (the chunked answer's last chunk, or close); the
 * bytes read. Keeps only a tail, so a long stream reads in linear time. */
static size_t
drain(int fd, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	char chunk[65536], tail[16] = "";
	size_t total = 0, t;

	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		long long left = end - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return total;
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n <= 0)
			return total;
		total += (size_t)n;
		t = (size_t)n < sizeof(tail) - 1 ? (size_t)n : sizeof(tail) - 1;
		memmove(tail, tail + t, sizeof(tail) - 1 - t);
		memcpy(tail + sizeof(tail) - 1 - t, chunk + n - (ssize_t)t, t);
		tail[sizeof(tail) - 1] = '\0';
		if (strstr(tail, "\r\n0\r\n\r\n"))
			return total;
	}
}

/* A client that stops reading holds the upstream back instead of growing
 * the gateway: 30 MB of events wait in the upstream and the sockets, not
 * in the gateway's memory, and all of them arrive once the client reads. */
Test(it_responses, a_client_that_stops_reading_holds_the_upstream_back)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
	char data[3001], *buf = NULL;
	size_t len = 0, got;
	long before, during;
	json_t *rec;
	int fd;

	memset(data, 'x', sizeof(data) - 1);
	data[sizeof(data) - 1] = '\0';
	hx_stub_next(hx_fmt("{\"events\":[{\"event\":\"response.created\",\"data\":{\"type\":"
	                    "\"response.created\"}},{\"data\":\"%s\",\"delay_ms\":0,"
	                    "\"times\":10000},{\"event\":\"response.completed\",\"data\":"
	                    "{\"type\":\"response.completed\"}}]}",
	                    data));
	fd = open_stream(gw, ALPHA_KEY, stream_body);
	cr_assert_gt(read_until(fd, &buf, &len, "event: response.created", 10000), 0, "%s",
	             buf ? buf : "(nothing)");
	before = hx_proc_kb(gw->proc->pid, "VmRSS");
	/* The stub sends on, 30 MB in all, while nothing is read. */
	hx_sleep_ms(3000);
	during = hx_proc_kb(gw->proc->pid, "VmRSS");
	/* Under ASan (make sanitize sets GW_SANITIZED) every chunk relayed
	 * before the client's socket filled stays in the quarantine once
	 * freed, some 12 MB of it here; still well under the 30 MB held back. */
	cr_expect_lt(during - before, (getenv("GW_SANITIZED") ? 20 : 12) * 1024,
	             "the gateway grew by %ld kB while its client did not read", during - before);
	got = drain(fd, 60000);
	cr_expect_gt(got, (size_t)10000 * 3000, "only %zu bytes arrived", got);
	hx_raw_close(fd);
	rec = json_array_get(hx_audit_wait(gw, 1, 10000), 0);
	cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 200);
	cr_expect_gt(json_integer_value(json_object_get(rec, "bytes_out")), 10000LL * 3000);
	free(buf);
}

Test(it_responses, a_client_leaving_mid_stream_cancels_the_upstream_call)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
	char *buf = NULL;
	size_t len = 0;
	json_t *up = NULL, *rec;
	long long end;
	int fd;

	hx_stub_next("{\"events\":[{\"event\":\"response.created\",\"data\":{\"type\":"
	             "\"response.created\"}},{\"data\":\"two\",\"delay_ms\":1000},"
	             "{\"data\":\"three\",\"delay_ms\":1000},{\"data\":\"four\",\"delay_ms\":1000},"
	             "{\"data\":\"five\",\"delay_ms\":1000}]}");
	fd = open_stream(gw, ALPHA_KEY, stream_body);
	cr_assert_gt(read_until(fd, &buf, &len, "event: response.created", 10000), 0, "%s",
	             buf ? buf : "(nothing)");
	hx_raw_close(fd);
	end = now_ms() + 4000;
	while (now_ms() < end) {
		up = json_array_get(hx_stub_requests(), 0);
		if (json_is_true(json_object_get(up, "aborted")))
			break;
		hx_sleep_ms(50);
	}
	cr_expect(json_is_true(json_object_get(up, "aborted")), "the upstream call went on: %s",
	          json_dumps(up, JSON_COMPACT));
	cr_expect_lt(json_integer_value(json_object_get(up, "sse_sent")), 4, "%s",
	             json_dumps(up, JSON_COMPACT));
	cr_expect_null(json_object_get(up, "sse_done_ms"));
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_str_eq(hx_str(rec, "code"), "client_closed", "%s", json_dumps(rec, JSON_COMPACT));
	free(buf);
}

/* ---- every route ---------------------------------------------------------- */

static const struct {
	const char *method, *path, *body, *operation;
} sample[] = {
        {"GET", "/v1/models", NULL, "listModels"},
        {"GET", "/v1/models/gpt-4o", NULL, "retrieveModel"},
        {"POST", "/v1/chat/completions",
         "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
         "createChatCompletion"},
        {"POST", "/v1/embeddings", "{\"model\":\"text-embedding-3-small\",\"input\":\"hi\"}",
         "createEmbedding"},
        {"POST", "/v1/files", "", "createFile"}, /* multipart, below */
        {"DELETE", "/v1/files/file-abc", NULL, "deleteFile"},
        {"POST", "/v1/responses", "{\"model\":\"gpt-5\",\"input\":\"hi\"}", "createResponse"},
        {"GET", "/v1/responses/resp_1", NULL, "getResponse"},
        {"POST", "/v1/batches",
         "{\"input_file_id\":\"file-1\",\"endpoint\":\"/v1/chat/completions\","
         "\"completion_window\":\"24h\"}",
         "createBatch"},
        {"GET", "/v1/vector_stores", NULL, "listVectorStores"},
        {"POST", "/v1/vector_stores", "{\"name\":\"docs\"}", "createVectorStore"},
        {"POST", "/v1/containers", "{\"name\":\"c\"}", "CreateContainer"},
        {"GET", "/v1/containers", NULL, "ListContainers"},
};

#define NSAMPLE (sizeof(sample) / sizeof(sample[0]))

static struct hx_resp *
call_sample(const struct hx_gw *gw, size_t i, const char *auth)
{
	const char *h[3] = {auth, NULL, NULL};

	if (strcmp(sample[i].path, "/v1/files") == 0) {
		struct hx_part parts[2] = {{"purpose", NULL, NULL, "assistants", 10},
		                           {"file", "a.txt", "text/plain", "hello", 5}};
		struct hx_req rq = {.method = "POST",
		                    .url = hx_gw_url(gw, sample[i].path),
		                    .headers = h,
		                    .parts = parts,
		                    .nparts = 2};

		return hx_request(&rq);
	}
	if (sample[i].body) {
		h[auth ? 1 : 0] = "Content-Type: application/json";
		return hx_http(sample[i].method, hx_gw_url(gw, sample[i].path), h, sample[i].body,
		               strlen(sample[i].body));
	}
	return hx_http(sample[i].method, hx_gw_url(gw, sample[i].path), h, NULL, 0);
}

/* Each sample with the tenant's key: forwarded, audited under its
 * operation and naming the tenant. */
static void
expect_forwarded_as(const struct hx_gw *gw, const char *key, const char *upstream_auth,
                    size_t records_before)
{
	size_t i, before = upstream_count();
	json_t *recs, *rec, *reqs;

	for (i = 0; i < NSAMPLE; i++) {
		struct hx_resp *r = call_sample(gw, i, hx_fmt("Authorization: Bearer %s", key));

		/* The stub answers what it does not know with 404. */
		cr_expect(r->status == 200 || r->status == 404, "%s %s: %ld %s", sample[i].method,
		          sample[i].path, r->status, r->body);
		cr_expect_null(strstr(r->body, "missing_api_key"));
	}
	reqs = hx_stub_requests();
	cr_expect_eq(json_array_size(reqs), before + NSAMPLE, "each went up once");
	for (i = before; i < json_array_size(reqs); i++)
		cr_expect_str_eq(hx_str(json_object_get(json_array_get(reqs, i), "headers"),
		                        "authorization"),
		                 upstream_auth);
	recs = hx_audit_wait(gw, records_before + NSAMPLE, 10000);
	cr_assert_eq(json_array_size(recs), records_before + NSAMPLE);
	for (i = 0; i < NSAMPLE; i++) {
		rec = json_array_get(recs, records_before + i);
		cr_expect_str_eq(hx_str(rec, "tenant"), "alpha", "%s",
		                 json_dumps(rec, JSON_COMPACT));
		cr_expect_str_eq(hx_str(rec, "operation"), sample[i].operation);
		cr_expect_str_eq(hx_str(rec, "decision"), "allow", "%s",
		                 json_dumps(rec, JSON_COMPACT));
	}
}

Test(it_responses, every_route_needs_a_tenants_key_and_names_its_tenant)
{
	struct hx_gw *gw;
	size_t i;
	json_t *recs;

	setenv("GW_TEST_ORG_KEY", ORG_KEY, 1);
	gw = hx_gw_start(policy(NULL), "{\"auth\":{\"mode\":\"gateway_keys\"},"
	                               "\"upstream\":{\"api_key_env\":\"GW_TEST_ORG_KEY\"}}");
	for (i = 0; i < NSAMPLE; i++) {
		expect_error(call_sample(gw, i, NULL), 401, "missing_api_key", NULL);
		expect_error(call_sample(gw, i, "Authorization: Bearer sk-nobody-KEY"), 401,
		             "invalid_api_key", NULL);
		expect_error(call_sample(gw, i, "Authorization: Basic YWxwaGE6eA=="), 401,
		             "invalid_api_key", NULL);
	}
	cr_expect_eq(upstream_count(), 0, "a request without a tenant's key went up");
	recs = hx_audit_wait(gw, 3 * NSAMPLE, 10000);
	cr_assert_eq(json_array_size(recs), 3 * NSAMPLE);
	for (i = 0; i < 3 * NSAMPLE; i++)
		cr_expect_eq(json_integer_value(json_object_get(json_array_get(recs, i), "status")),
		             401);
	expect_forwarded_as(gw, ALPHA_KEY, "Bearer " ORG_KEY, 3 * NSAMPLE);
	cr_expect_eq(hx_gw_stop(gw), 0);
	cr_expect(!hx_file_contains(gw->audit_path, ALPHA_KEY));
	cr_expect(!hx_file_contains(gw->audit_path, ORG_KEY));
}

Test(it_responses, in_passthrough_mode_every_route_names_its_tenant)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), NULL);

	expect_forwarded_as(gw, ALPHA_KEY, "Bearer " ALPHA_KEY, 0);
}

/* ---- batches and stored prompts ------------------------------------------ */

Test(it_responses, a_batch_of_responses_is_refused_unless_the_policy_allows_it)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), NULL);
#define BATCH_BODY                                                                                 \
	"{\"input_file_id\":\"file-1\",\"endpoint\":\"%s\",\"completion_window\":\"24h\"}"
	struct hx_resp *r;
	json_t *rec;
	size_t len;

	r = as(gw, ALPHA_KEY, "POST", "/v1/batches", hx_fmt(BATCH_BODY, "/v1/responses"));
	expect_error(r, 403, "batch_endpoint_not_allowed", "endpoint");
	r = as(gw, ALPHA_KEY, "POST", "/v1/batches", hx_fmt(BATCH_BODY, "\\/v1\\/responses"));
	expect_error(r, 403, "batch_endpoint_not_allowed", "endpoint");
	r = as(gw, ALPHA_KEY, "POST", "/v1/batches", hx_fmt(BATCH_BODY, "\\u002fv1/responses"));
	expect_error(r, 403, "batch_endpoint_not_allowed", "endpoint");
	r = as(gw, ALPHA_KEY, "POST", "/v1/batches",
	       "{\"input_file_id\":\"file-1\",\"endpoint\":\"/v1/chat/completions\","
	       "\"endpoint\":\"/v1/responses\",\"completion_window\":\"24h\"}");
	expect_error(r, 400, "duplicate_key", "endpoint");
	cr_expect_eq(upstream_count(), 0);
	rec = json_array_get(hx_audit_wait(gw, 4, 5000), 0);
	cr_expect_str_eq(hx_str(rec, "operation"), "createBatch");
	cr_expect_str_eq(hx_str(rec, "code"), "batch_endpoint_not_allowed");

	/* Other endpoints pass, the body as it came. */
	r = as(gw, ALPHA_KEY, "POST", "/v1/batches", hx_fmt(BATCH_BODY, "/v1/chat/completions"));
	cr_expect_eq(r->status, 404, "the stub's own answer: %ld %s", r->status, r->body);
	cr_assert_eq(upstream_count(), 1);
	cr_expect_str_eq(hx_record_body(json_array_get(hx_stub_requests(), 0), &len),
	                 hx_fmt(BATCH_BODY, "/v1/chat/completions"));
	cr_expect_str_eq(hx_str(json_array_get(hx_stub_requests(), 0), "uri"), "/v1/batches");
	cr_expect_eq(hx_gw_stop(gw), 0);

	gw = hx_gw_start(policy(",\"batches\":{\"allow_container_endpoints\":true}"), NULL);
	r = as(gw, ALPHA_KEY, "POST", "/v1/batches", hx_fmt(BATCH_BODY, "/v1/responses"));
	cr_expect_eq(r->status, 404, "the stub's own answer: %ld %s", r->status, r->body);
	cr_expect_eq(upstream_count(), 1);
#undef BATCH_BODY
}

Test(it_responses, a_stored_prompt_is_refused_by_default)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
#define PROMPT_BODY "{\"model\":\"gpt-5\",\"prompt\":{\"id\":\"pmpt_abc123\",\"version\":\"2\"}%s}"
	struct hx_resp *r;

	r = as(gw, ALPHA_KEY, "POST", "/v1/responses", hx_fmt(PROMPT_BODY, ""));
	expect_error(r, 403, "stored_prompt_not_allowed", "prompt");
	r = as(gw, ALPHA_KEY, "POST", "/v1/responses", hx_fmt(PROMPT_BODY, ",\"stream\":true"));
	expect_error(r, 403, "stored_prompt_not_allowed", "prompt");
	r = as(gw, NULL, "POST", "/v1/responses?beta=true", hx_fmt(PROMPT_BODY, ""));
	expect_error(r, 403, "stored_prompt_not_allowed", "prompt");
	cr_expect_eq(upstream_count(), 0);
	cr_expect_eq(hx_gw_stop(gw), 0);

	gw = hx_gw_start(policy(",\"responses\":{\"allow_stored_prompts\":true}"), config);
	hx_stub_next(json_answer(""));
	r = as(gw, ALPHA_KEY, "POST", "/v1/responses", hx_fmt(PROMPT_BODY, ""));
	cr_expect_eq(r->status, 200, "%s", r->body);
	cr_expect_eq(upstream_count(), 1);
#undef PROMPT_BODY
}

/* A client that leaves once the stream has named the container it made
 * does not take it out of its tenant's hands, nor out of its count: the
 * upstream may well have made it. */
Test(it_responses, a_container_named_before_the_client_left_is_still_its_makers)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
	char *buf = NULL;
	size_t len = 0;
	json_t *up = NULL, *rec;
	long long end;
	int fd;

	hx_stub_next(hx_fmt("{\"events\":[{\"event\":\"response.created\",\"data\":{\"type\":"
	                    "\"response.created\"}},{\"event\":\"response.output_item.added\","
	                    "\"delay_ms\":200,\"data\":{\"type\":\"response.output_item.added\","
	                    "\"item\":%s}},{\"data\":\"3\",\"delay_ms\":700},{\"data\":\"4\","
	                    "\"delay_ms\":700},{\"data\":\"5\",\"delay_ms\":700},{\"data\":\"6\","
	                    "\"delay_ms\":700}]}",
	                    code_interpreter_call("cntr_left4")));
	fd = open_stream(gw, ALPHA_KEY, stream_body);
	cr_assert_gt(read_until(fd, &buf, &len, "cntr_left4", 10000), 0, "%s",
	             buf ? buf : "(nothing)");
	hx_raw_close(fd);
	end = now_ms() + 4000;
	while (now_ms() < end) {
		up = json_array_get(hx_stub_requests(), 0);
		if (json_is_true(json_object_get(up, "aborted")))
			break;
		hx_sleep_ms(50);
	}
	cr_expect(json_is_true(json_object_get(up, "aborted")), "%s", json_dumps(up, JSON_COMPACT));
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_str_eq(hx_str(rec, "code"), "client_closed", "%s", json_dumps(rec, JSON_COMPACT));
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(rec, "containers"), 0)),
	                 "cntr_left4", "%s", json_dumps(rec, JSON_COMPACT));
	expect_owned_by_alpha(gw, "cntr_left4");
	expect_counted_as_live(gw);
	free(buf);
}

/* The gateway reads "stream" as the boolean the contract says it is; an
 * upstream that answers with events anyway (a "stream" of another type it
 * took as true) still has its containers read from them. */
Test(it_responses, an_event_stream_the_gateway_did_not_ask_for_still_names_its_containers)
{
	struct hx_gw *gw = hx_gw_start(policy(NULL), config);
	struct hx_resp *r;
	json_t *rec;

	hx_stub_next(sse_answer(code_interpreter_call("cntr_unasked5"), 0));
	r = as(gw, ALPHA_KEY, "POST", "/v1/responses",
	       "{\"model\":\"gpt-5\",\"input\":\"hi\",\"stream\":\"true\",\"tools\":[{\"type\":"
	       "\"code_interpreter\",\"container\":{\"type\":\"auto\"}}]}");
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_expect_not_null(strstr(r->body, "event: response.completed"), "%s", r->body);
	rec = record_of(gw, hx_resp_header(r, "x-request-id"));
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(rec, "containers"), 0)),
	                 "cntr_unasked5", "%s", json_dumps(rec, JSON_COMPACT));
	expect_owned_by_alpha(gw, "cntr_unasked5");
}

/* ---- the ?beta=true twins ------------------------------------------------ */

/* Sends target raw (curl would drop a fragment itself); the status. */
static long
raw_post(const struct hx_gw *gw, const char *target, const char **body_out)
{
	static const char body[] = "{\"model\":\"gpt-5\",\"input\":\"hi\"}";
	const char *req = hx_fmt("POST %s HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"
	                         "Content-Type: application/json\r\nContent-Length: %zu\r\n"
	                         "Connection: close\r\n\r\n%s",
	                         target, ALPHA_KEY, strlen(body), body);
	size_t n;
	const char *out = hx_raw(gw->port, req, strlen(req), 5000, 0, &n);

	cr_assert_not_null(out, "cannot connect");
	if (body_out)
		*body_out = out;
	return strncmp(out, "HTTP/1.1 ", 9) == 0 ? strtol(out + 9, NULL, 10) : 0;
}

/* A policy can deny one twin and allow the other: no spelling of the
 * query gets a request past that. The query goes upstream as it came, so
 * any spelling the upstream could read as beta=true (or not) while the
 * gateway reads it the other way is refused. */
Test(it_responses, no_spelling_of_the_query_crosses_from_one_twin_to_the_other)
{
	static const char *const ambiguous[] = {
	        "/v1/responses?beta=%74rue",
	        "/v1/responses?%62eta=true",
	        "/v1/responses?BETA=true",
	        "/v1/responses?Beta=true",
	        "/v1/responses?beta=TRUE",
	        "/v1/responses?beta=1",
	        "/v1/responses?beta=false",
	        "/v1/responses?beta=",
	        "/v1/responses?beta",
	        "/v1/responses?beta=true&beta=false",
	        "/v1/responses?beta=false&beta=true",
	        "/v1/responses?beta=true&beta=true",
	        "/v1/responses?beta=true;x=1",
	        "/v1/responses?x=1;beta=true",
	        "/v1/responses?beta=true%00",
	        "/v1/responses?beta+=true",
	        "/v1/responses/compact?beta=%74rue",
	};
	struct hx_gw *gw =
	        hx_gw_start("{\"routes\":{\"default\":\"allow\",\"beta_createResponse\":\"deny\","
	                    "\"beta_Compactconversation\":\"deny\",\"beta_getResponse\":\"deny\"}}",
	                    config);
	const char *out;
	size_t i;

	cr_expect_eq(raw_post(gw, "/v1/responses?beta=true", &out), 403, "%s", out);
	cr_expect_not_null(strstr(out, "route_denied"), "%s", out);
	cr_expect_eq(raw_post(gw, "/v1/responses?x=1&beta=true", &out), 403, "%s", out);
	for (i = 0; i < sizeof(ambiguous) / sizeof(ambiguous[0]); i++) {
		cr_expect_eq(raw_post(gw, ambiguous[i], &out), 400, "%s: %s", ambiguous[i], out);
		cr_expect_not_null(strstr(out, "invalid_query"), "%s: %s", ambiguous[i], out);
	}
	/* A fragment never reaches the upstream, so what follows '#' is not
	 * the query the upstream would read. */
	cr_expect_eq(raw_post(gw, "/v1/responses?beta=true#x", &out), 400, "%s", out);
	cr_expect_eq(raw_post(gw, "/v1/responses?x=1#&beta=true", &out), 400, "%s", out);
	cr_expect_eq(raw_post(gw, "/v1/responses#x", &out), 400, "%s", out);
	cr_expect_eq(as(gw, ALPHA_KEY, "GET", "/v1/responses/resp_1?beta=%74rue", NULL)->status,
	             400);
	cr_expect_eq(upstream_count(), 0, "%s", json_dumps(hx_stub_requests(), JSON_COMPACT));

	/* What is neither goes up as createResponse, its query as it came. */
	hx_stub_next(json_answer(""));
	cr_expect_eq(raw_post(gw, "/v1/responses?betas=true&x=beta", &out), 200, "%s", out);
	cr_expect_str_eq(hx_str(json_array_get(hx_stub_requests(), 0), "uri"),
	                 "/v1/responses?betas=true&x=beta");
	cr_expect_str_eq(hx_str(json_array_get(hx_audit_wait(gw, 24, 5000), 23), "operation"),
	                 "createResponse");
	cr_expect_eq(hx_gw_stop(gw), 0);

	/* The other way round: only the beta twin allowed. */
	gw = hx_gw_start("{\"routes\":{\"default\":\"allow\",\"createResponse\":\"deny\"}}",
	                 config);
	cr_expect_eq(raw_post(gw, "/v1/responses", &out), 403, "%s", out);
	cr_expect_eq(raw_post(gw, "/v1/responses?beta=true&beta=false", &out), 400, "%s", out);
	cr_expect_eq(raw_post(gw, "/v1/responses?beta=false&beta=true", &out), 400, "%s", out);
	cr_expect_eq(upstream_count(), 0);
	hx_stub_next(json_answer(""));
	cr_expect_eq(raw_post(gw, "/v1/responses?beta=true", &out), 200, "%s", out);
	cr_expect_str_eq(hx_str(json_array_get(hx_stub_requests(), 0), "uri"),
	                 "/v1/responses?beta=true");
}

/* What goes up may be much larger than what came: every container made
 * gets the policy's default allowlist. A body of many small tools under a
 * policy with a long default is still forwarded whole. */
Test(it_responses, defaults_may_make_the_forwarded_body_far_larger_than_the_request)
{
	struct hx_gw *gw;
	char domains[4096] = "", tools[64 * 400] = "";
	struct hx_resp *r;
	json_t *up;
	size_t i;

	for (i = 0; i < 40; i++)
		snprintf(domains + strlen(domains), sizeof(domains) - strlen(domains),
		         "%s\"host-%02zu.packages.example.com\"", i ? "," : "", i);
	for (i = 0; i < 300; i++)
		snprintf(tools + strlen(tools), sizeof(tools) - strlen(tools),
		         "%s{\"type\":\"code_interpreter\",\"container\":{\"type\":\"auto\"}}",
		         i ? "," : "");
	gw = hx_gw_start(hx_fmt("{\"network_policy\":{\"allowed_domains\":[%s],\"default\":"
	                        "{\"type\":\"allowlist\",\"allowed_domains\":[%s]}},"
	                        "\"routes\":{\"default\":\"allow\"},"
	                        "\"responses\":{\"max_tool_containers\":300}}",
	                        domains, domains),
	                 config);
	hx_stub_next(json_answer(""));
	r = as(gw, NULL, "POST", "/v1/responses",
	       hx_fmt("{\"model\":\"gpt-5\",\"input\":\"hi\",\"tools\":[%s]}", tools));
	cr_assert_eq(r->status, 200, "%s", r->body);
	up = json_object_get(last_forwarded(), "tools");
	cr_expect_eq(json_array_size(up), 300);
	cr_expect_eq(json_array_size(json_object_get(
	                     json_object_get(json_object_get(json_array_get(up, 299), "container"),
	                                     "network_policy"),
	                     "allowed_domains")),
	             40);
}
