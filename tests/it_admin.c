/*
 * it_admin: the admin listener (admin_listen). /metrics must parse as the
 * Prometheus text format and its counters must move with traffic exactly
 * as the audit log does; /healthz says the process serves; /readyz turns
 * 503 when the audit log cannot be written.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(it_admin, .init = hx_init, .fini = hx_fini, .timeout = 60);

static int admin_port;

/* A gateway with its admin listener on a free port; extra is more config
 * (members of a JSON object, without braces) or NULL. */
static struct hx_gw *
start(const char *policy, const char *extra)
{
	struct hx_gw *gw;

	admin_port = hx_free_port();
	gw = hx_gw_start(policy, hx_fmt("{\"admin_listen\":\"127.0.0.1:%d\"%s%s}", admin_port,
	                                extra ? "," : "", extra ? extra : ""));
	cr_assert_eq(hx_wait_port(admin_port, 5000), 0, "the admin port never opened");
	return gw;
}

static struct hx_resp *
admin(const char *method, const char *path)
{
	return hx_http(method, hx_fmt("http://127.0.0.1:%d%s", admin_port, path), NULL, NULL, 0);
}

/* ---- the Prometheus text format (0.0.4), checked line by line ---- */

static bool
metric_name(const char **p)
{
	const char *s = *p;

	if (!(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
		return false;
	while (isalnum((unsigned char)*s) || *s == '_' || *s == ':')
		s++;
	*p = s;
	return true;
}

/* {name="value",...}: label names as the format allows, values with only
 * \\, \" and \n escaped. */
static bool
labels(const char **p)
{
	const char *s = *p;

	if (*s != '{')
		return true;
	s++;
	while (*s != '}') {
		if (!(isalpha((unsigned char)*s) || *s == '_'))
			return false;
		while (isalnum((unsigned char)*s) || *s == '_')
			s++;
		if (*s++ != '=' || *s++ != '"')
			return false;
		while (*s != '"') {
			if (*s == '\0' || *s == '\n')
				return false;
			if (*s == '\\' && s[1] != '\\' && s[1] != '"' && s[1] != 'n')
				return false;
			s += *s == '\\' ? 2 : 1;
		}
		s++;
		if (*s == ',')
			s++;
		else if (*s != '}')
			return false;
	}
	*p = s + 1;
	return true;
}

static bool
value(const char *s)
{
	char *end;

	if (strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0 || strcmp(s, "NaN") == 0)
		return true;
	errno = 0;
	(void)strtod(s, &end);
	return errno == 0 && end != s && *end == '\0';
}

/* The family a sample belongs to: a histogram's _bucket, _sum and _count
 * are its own. */
static const char *
family(json_t *types, const char *name)
{
	static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
	size_t n = strlen(name);

	for (size_t i = 0; i < 3; i++) {
		size_t k = strlen(suffixes[i]);

		if (n > k && strcmp(name + n - k, suffixes[i]) == 0) {
			const char *base = hx_fmt("%.*s", (int)(n - k), name);

			if (json_object_get(types, base))
				return base;
		}
	}
	return name;
}

/* Parses an exposition; fails the test on any line the format does not
 * allow. Returns {"<name>{<labels>}": value} for every sample. */
static json_t *
parse_metrics(const char *text)
{
	json_t *samples = hx_json("{}"), *types = hx_json("{}");
	char *copy = strdup(text), *line, *save = NULL;
	size_t lineno = 0;

	cr_assert_not_null(copy);
	cr_assert(text[0] && text[strlen(text) - 1] == '\n',
	          "the exposition must end with a newline");
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *p = line, *name_end, *sp;
		const char *name;

		lineno++;
		if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
			p = line + 7;
			cr_assert(metric_name(&p) && *p == ' ', "line %zu: %s", lineno, line);
			if (line[2] == 'T') {
				name = hx_fmt("%.*s", (int)(p - line - 7), line + 7);
				cr_assert(strcmp(p + 1, "counter") == 0 ||
				                  strcmp(p + 1, "gauge") == 0 ||
				                  strcmp(p + 1, "histogram") == 0 ||
				                  strcmp(p + 1, "summary") == 0 ||
				                  strcmp(p + 1, "untyped") == 0,
				          "line %zu: unknown type: %s", lineno, line);
				cr_assert_null(json_object_get(types, name),
				               "line %zu: %s typed twice", lineno, name);
				json_object_set_new(types, name, json_string(p + 1));
			}
			continue;
		}
		cr_assert(line[0] != '#', "line %zu: a comment that is not HELP or TYPE: %s",
		          lineno, line);
		cr_assert(metric_name(&p), "line %zu: no metric name: %s", lineno, line);
		name_end = p;
		cr_assert(labels(&p), "line %zu: bad labels: %s", lineno, line);
		cr_assert(*p == ' ', "line %zu: no value: %s", lineno, line);
		sp = strchr(p + 1, ' ');
		cr_assert(value(sp ? hx_fmt("%.*s", (int)(sp - p - 1), p + 1) : p + 1),
		          "line %zu: bad value: %s", lineno, line);
		name = hx_fmt("%.*s", (int)(name_end - line), line);
		cr_assert_not_null(json_object_get(types, family(types, name)),
		                   "line %zu: %s has no TYPE before it", lineno, name);
		cr_assert_null(json_object_get(samples, hx_fmt("%.*s", (int)(p - line), line)),
		               "line %zu: a repeated series: %s", lineno, line);
		json_object_set_new(samples, hx_fmt("%.*s", (int)(p - line), line),
		                    json_real(strtod(p + 1, NULL)));
	}
	free(copy);
	return samples;
}

static json_t *
scrape(void)
{
	struct hx_resp *r = admin("GET", "/metrics");
	const char *ct = hx_resp_header(r, "Content-Type");

	cr_assert_eq(r->status, 200, "/metrics: %ld %s", r->status, r->error);
	cr_assert(ct && strncmp(ct, "text/plain; version=0.0.4", 25) == 0, "Content-Type %s",
	          ct ? ct : "(none)");
	return parse_metrics(r->body);
}

/* A series' value; 0 when absent (a counter not yet seen). */
static double
sample(json_t *m, const char *series)
{
	json_t *v = json_object_get(m, series);

	return v ? json_real_value(v) : 0;
}

#define REQS(route, decision, status)                                                              \
	"gateway_requests_total{route=\"" route "\",decision=\"" decision "\",status=\"" status    \
	"\",tenant=\"\"}"

static struct hx_resp *
create(const struct hx_gw *gw, const char *body)
{
	return hx_http("POST", hx_gw_url(gw, "/v1/containers"), NULL, body, strlen(body));
}

Test(it_admin, metrics_parse_and_move_with_traffic)
{
	struct hx_gw *gw = start(NULL, NULL);
	json_t *before, *after;

	before = scrape();
	cr_expect_eq(sample(before, "gateway_inflight_requests"), 0);
	cr_expect_eq(sample(before, "gateway_ready"), 1);
	cr_expect_eq(sample(before, "gateway_audit_write_failures_total"), 0);

	cr_assert_eq(create(gw, "{\"name\":\"a\"}")->status, 200);
	cr_assert_eq(create(gw, "{\"name\":\"b\"}")->status, 200);
	cr_assert_eq(create(gw, "{\"name\":\"c\",\"memory_limit\":\"4g\"}")->status, 403);
	cr_assert_eq(hx_http("GET", hx_gw_url(gw, "/v1/nothing"), NULL, NULL, 0)->status, 404);
	cr_assert_eq(json_array_size(hx_audit_wait(gw, 4, 5000)), 4);

	after = scrape();
	cr_expect_eq(sample(after, REQS("CreateContainer", "allow", "200")) -
	                     sample(before, REQS("CreateContainer", "allow", "200")),
	             2);
	cr_expect_eq(sample(after, REQS("CreateContainer", "deny", "403")) -
	                     sample(before, REQS("CreateContainer", "deny", "403")),
	             1);
	cr_expect_eq(sample(after, REQS("unknown", "deny", "404")) -
	                     sample(before, REQS("unknown", "deny", "404")),
	             1);
	cr_expect_eq(sample(after, "gateway_policy_denials_total{rule=\"memory_limit_exceeded\"}") -
	                     sample(before,
	                            "gateway_policy_denials_total{rule=\"memory_limit_exceeded\"}"),
	             1);
	/* Only the two allowed creates reached the upstream. */
	cr_expect_eq(sample(after, "gateway_upstream_duration_seconds_count") -
	                     sample(before, "gateway_upstream_duration_seconds_count"),
	             2);
	cr_expect_eq(sample(after, "gateway_upstream_duration_seconds_bucket{le=\"+Inf\"}"),
	             sample(after, "gateway_upstream_duration_seconds_count"));
	cr_expect_eq(sample(after, "gateway_request_duration_seconds_count") -
	                     sample(before, "gateway_request_duration_seconds_count"),
	             4);
	cr_expect_eq(sample(after, "gateway_inflight_requests"), 0);
	cr_expect_eq(sample(after, "gateway_config_reloads_total{result=\"success\"}"), 0);
	cr_expect_gt(sample(after, "gateway_config_last_reload_success_timestamp_seconds"), 0);
	/* The policy in force, by the version its records carry. */
	cr_expect_eq(sample(after, hx_fmt("gateway_policy_info{version=\"%s\"}",
	                                  hx_str(json_array_get(hx_audit_records(gw), 0),
	                                         "policy_version"))),
	             1);

	/* A reload, good then bad, is counted. */
	cr_assert_eq(kill(gw->proc->pid, SIGHUP), 0);
	for (int i = 0; i < 250 && sample(after = scrape(), "gateway_config_reloads_total{result="
	                                                    "\"success\"}") < 1;
	     i++)
		hx_sleep_ms(20);
	cr_expect_eq(sample(after, "gateway_config_reloads_total{result=\"success\"}"), 1);
	hx_write_file(gw->policy_path, "{\"memory_limit\":{\"max\":\"huge\"}}");
	cr_assert_eq(kill(gw->proc->pid, SIGHUP), 0);
	for (int i = 0; i < 250 && sample(after = scrape(), "gateway_config_reloads_total{result="
	                                                    "\"failure\"}") < 1;
	     i++)
		hx_sleep_ms(20);
	cr_expect_eq(sample(after, "gateway_config_reloads_total{result=\"failure\"}"), 1);
}

Test(it_admin, upstream_violations_are_counted)
{
	struct hx_gw *gw = start("{\"on_upstream_violation\":\"log\"}", NULL);
	json_t *m;

	/* The upstream answers with more memory than was forwarded. */
	hx_stub_next("{\"status\":200,\"json\":{\"id\":\"cntr_v\",\"object\":\"container\","
	             "\"created_at\":1,\"status\":\"running\",\"name\":\"v\","
	             "\"memory_limit\":\"16g\",\"expires_after\":{\"anchor\":\"last_active_at\","
	             "\"minutes\":20},\"network_policy\":{\"type\":\"disabled\"}}}");
	cr_assert_eq(create(gw, "{\"name\":\"v\"}")->status, 200);
	cr_assert_eq(json_array_size(hx_audit_wait(gw, 1, 5000)), 1);
	m = scrape();
	cr_expect_geq(sample(m, "gateway_upstream_violations_total"), 1, "%s",
	              hx_read_file(gw->audit_path, NULL));
}

Test(it_admin, health_and_the_admin_port_are_apart_from_clients)
{
	struct hx_gw *gw = start(NULL, NULL);
	struct hx_resp *r;

	r = admin("GET", "/healthz");
	cr_expect_eq(r->status, 200);
	cr_expect_str_eq(r->body, "ok\n");
	r = admin("GET", "/readyz");
	cr_expect_eq(r->status, 200);
	cr_expect_str_eq(r->body, "ready\n");
	r = admin("HEAD", "/healthz");
	cr_expect_eq(r->status, 200);
	cr_expect_eq(r->len, 0);
	cr_expect_eq(admin("POST", "/metrics")->status, 405);
	cr_expect_eq(admin("GET", "/v1/containers")->status, 404);
	/* The client port knows nothing of them. */
	r = hx_http("GET", hx_gw_url(gw, "/metrics"), NULL, NULL, 0);
	cr_expect_eq(r->status, 404);
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
}

/* Polls /readyz until it answers want, for up to two seconds: the audit
 * writer finds out about a full disk on its own thread. */
static struct hx_resp *
ready_becomes(long want)
{
	struct hx_resp *r = NULL;
	int i;

	for (i = 0; i < 100; i++) {
		r = admin("GET", "/readyz");
		if (r->status == want)
			break;
		usleep(20 * 1000);
	}
	return r;
}

Test(it_admin, readyz_turns_503_when_the_audit_log_cannot_be_written)
{
	/* /dev/full opens, and every write to it fails (ENOSPC): a full disk.
	 * The first line (the chain's segment) already fails. */
	struct hx_gw *gw = start(NULL, "\"audit\":{\"path\":\"/dev/full\"}");
	struct hx_resp *r;
	json_t *m;

	r = ready_becomes(503);
	cr_expect_eq(r->status, 503);
	cr_expect(strstr(r->body, "audit record could not be written") != NULL, "%s", r->body);
	m = scrape();
	cr_expect_eq(sample(m, "gateway_ready"), 0);
	/* fail_closed (the default): what cannot be recorded is not done. */
	r = create(gw, "{\"name\":\"a\"}");
	cr_expect_eq(r->status, 503, "%s", r->body);
	cr_expect(strstr(r->body, "audit_unavailable") != NULL, "%s", r->body);
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
	/* Liveness is another matter. */
	cr_expect_eq(admin("GET", "/healthz")->status, 200);
}

Test(it_admin, fail_open_goes_on_and_counts_what_was_lost)
{
	struct hx_gw *gw =
	        start(NULL, "\"audit\":{\"path\":\"/dev/full\",\"on_failure\":\"fail_open\"}");
	json_t *m;
	int i;

	cr_expect_eq(create(gw, "{\"name\":\"a\"}")->status, 200);
	cr_expect_eq(json_array_size(hx_stub_requests()), 1);
	for (i = 0; i < 100; i++) {
		m = scrape();
		if (sample(m, "gateway_audit_write_failures_total") >= 2)
			break;
		usleep(20 * 1000);
	}
	/* The segment, the intent and the request's record at least. */
	cr_expect_geq(sample(m, "gateway_audit_write_failures_total"), 2);
}

Test(it_admin, readyz_follows_the_audit_folder)
{
	const char *logs = hx_path("logs");
	struct hx_resp *r;

	cr_assert_eq(mkdir(logs, 0700), 0);
	start(NULL, "\"audit\":{\"path\":\"logs/audit.log\"}");
	cr_assert_eq(admin("GET", "/readyz")->status, 200);
	/* Rotated away: a new file can still be made. */
	cr_assert_eq(unlink(hx_fmt("%s/audit.log", logs)), 0);
	cr_expect_eq(admin("GET", "/readyz")->status, 200);
	/* The folder gone too: nowhere to write. */
	cr_assert_eq(rmdir(logs), 0);
	r = admin("GET", "/readyz");
	cr_expect_eq(r->status, 503);
	cr_expect(strstr(r->body, "audit log") != NULL, "%s", r->body);
	cr_assert_eq(mkdir(logs, 0700), 0);
	cr_expect_eq(admin("GET", "/readyz")->status, 200);
}

Test(it_admin, inflight_requests_are_a_gauge)
{
	struct hx_gw *gw = start(NULL, NULL);
	const char *req = "GET /v1/containers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	const char *out;
	double inflight = 0;
	int fd;

	(void)gw;
	hx_stub_next("{\"delay_ms\":1500}");
	fd = hx_raw_open(gw->port, req, strlen(req));
	cr_assert_geq(fd, 0);
	for (int i = 0; i < 250 && (inflight = sample(scrape(), "gateway_inflight_requests")) < 1;
	     i++)
		hx_sleep_ms(10);
	cr_expect_eq(inflight, 1);
	out = hx_raw_read(fd, 10000, NULL);
	cr_expect(strncmp(out, "HTTP/1.1 200", 12) == 0, "%s", out);
	cr_expect_eq(sample(scrape(), "gateway_inflight_requests"), 0);
}
