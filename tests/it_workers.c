/*
 * it_workers: workers: N runs N event loops on one port. Whichever loop
 * takes a connection, the requests share one audit chain, one set of
 * limits, the policy of the last reload, and one drain at SIGTERM.
 */
#include <criterion/criterion.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define KEY "sk-workers-KEY-2291"

TestSuite(it_workers, .init = hx_init, .fini = hx_fini, .timeout = 90);

/* A metric's value from /metrics text, or -1 when absent. */
static double
metric(const char *text, const char *series)
{
	const char *p = text;
	size_t n = strlen(series);

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

/* n creates, each on a connection of its own (the kernel picks a worker
 * per connection); returns how many got status. */
static int
creates(const struct hx_gw *gw, int n, const char *body, const char *const *headers, long status)
{
	int got = 0;

	for (int i = 0; i < n; i++) {
		struct hx_resp *r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), headers, body,
		                            strlen(body));

		got += r->status == status;
		hx_resp_free(r);
	}
	return got;
}

Test(it_workers, connections_spread_over_the_workers_share_one_audit_chain)
{
	int admin = hx_free_port();
	const char *body = "{\"name\":\"w\"}";
	const char *text, *argv[8];
	struct hx_resp *m;
	struct hx_proc *v;
	struct hx_gw *gw;
	json_t *lines, *line;
	size_t i, intents = 0, records = 0;

	setenv("GW_TEST_AUDIT_KEY", "workers-audit-key-0123456789abcdef", 1);
	gw = hx_gw_start(NULL, hx_fmt("{\"workers\":3,\"admin_listen\":\"127.0.0.1:%d\","
	                              "\"audit\":{\"hmac_key_env\":\"GW_TEST_AUDIT_KEY\"}}",
	                              admin));

	cr_assert_eq(creates(gw, 60, body, NULL, 200), 60);

	m = hx_http("GET", hx_fmt("http://127.0.0.1:%d/metrics", admin), NULL, NULL, 0);
	cr_assert_eq(m->status, 200);
	text = m->body;
	cr_expect_eq(metric(text, "gateway_requests_total{route=\"CreateContainer\",decision="
	                          "\"allow\",status=\"200\",tenant=\"\"}"),
	             60, "%s", text);
	/* 60 connections, 3 workers: the kernel's hash leaves none of them
	 * out but for a chance of about 3 in 10^10. */
	for (i = 0; i < 3; i++)
		cr_expect_gt(metric(text, hx_fmt("gateway_worker_connections_accepted_total{worker="
		                                 "\"%zu\"}",
		                                 i)),
		             0, "worker %zu took no connection:\n%s", i, text);
	cr_expect_eq(metric(text, "gateway_connections_accepted_total"), 60 + 1, "%s", text);

	cr_assert_eq(hx_gw_stop(gw), 0);
	/* One chain: every request's intent and record, in order, verified. */
	lines = hx_audit_lines(gw);
	json_array_foreach(lines, i, line)
	{
		const char *type = json_string_value(json_object_get(line, "type"));

		intents += strcmp(type, "intent") == 0;
		records += strcmp(type, "request") == 0;
	}
	cr_expect_eq(intents, 60);
	cr_expect_eq(records, 60);
	argv[0] = hx_gw_bin();
	argv[1] = "audit-verify";
	argv[2] = "--hmac-key-env";
	argv[3] = "GW_TEST_AUDIT_KEY";
	argv[4] = gw->audit_path;
	argv[5] = NULL;
	v = hx_proc_start("verify", argv);
	cr_expect_eq(hx_proc_wait(v, 20000), 0, "%s", hx_read_file(v->err_path, NULL));
	cr_expect(hx_file_contains(v->out_path, "audit OK: "), "%s",
	          hx_read_file(v->out_path, NULL));
}

Test(it_workers, a_rate_limit_counts_every_workers_requests)
{
	const char *policy = hx_fmt("{\"tenants\":{\"team\":{\"api_keys_sha256\":[\"%s\"],"
	                            "\"rate_limit\":{\"creates_per_minute\":7}}}}",
	                            hx_key_digest(KEY));
	struct hx_gw *gw = hx_gw_start(policy, "{\"workers\":2}");
	const char *headers[] = {"Authorization: Bearer " KEY, NULL};
	const char *body = "{\"name\":\"limited\"}";
	json_t *reqs;

	cr_expect_eq(creates(gw, 7, body, headers, 200), 7);
	cr_expect_eq(creates(gw, 13, body, headers, 429), 13);
	reqs = hx_stub_requests();
	cr_expect_eq(json_array_size(reqs), 7, "the upstream saw %zu creates",
	             json_array_size(reqs));
	cr_expect_eq(hx_gw_stop(gw), 0);
}

Test(it_workers, a_reload_reaches_every_worker)
{
	struct hx_gw *gw = hx_gw_start("{\"memory_limit\":{\"max\":\"4g\"}}", "{\"workers\":3}");
	const char *big = "{\"name\":\"big\",\"memory_limit\":\"4g\"}";

	cr_assert_eq(creates(gw, 12, big, NULL, 200), 12);
	hx_write_file(gw->policy_path, "{\"memory_limit\":{\"max\":\"1g\"}}");
	cr_assert_eq(kill(gw->proc->pid, SIGHUP), 0);
	cr_assert(hx_wait_contains(gw->err_path, "\"reloaded ", 10000), "%s",
	          hx_read_file(gw->err_path, NULL));
	/* Each worker takes the new policy at its loop's next turn. */
	hx_sleep_ms(100);
	cr_expect_eq(creates(gw, 30, big, NULL, 403), 30);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

Test(it_workers, a_new_audit_log_on_reload_needs_a_restart)
{
	struct hx_gw *gw = hx_gw_start("{\"memory_limit\":{\"max\":\"4g\"}}", "{\"workers\":2}");
	json_t *cfg = json_deep_copy(gw->config);
	const char *big = "{\"name\":\"big\",\"memory_limit\":\"4g\"}";
	char *text;

	json_object_set_new(json_object_get(cfg, "audit"), "path", json_string("other.log"));
	text = json_dumps(cfg, 0);
	hx_write_file(gw->config_path, text);
	free(text);
	json_decref(cfg);
	hx_write_file(gw->policy_path, "{\"memory_limit\":{\"max\":\"1g\"}}");
	cr_assert_eq(kill(gw->proc->pid, SIGHUP), 0);
	cr_assert(hx_wait_contains(gw->err_path, "reload failed", 10000), "%s",
	          hx_read_file(gw->err_path, NULL));
	cr_expect(hx_file_contains(gw->err_path, "audit.path: a new audit log needs a restart"),
	          "%s", hx_read_file(gw->err_path, NULL));
	/* The policy in force stays, on every worker. */
	cr_expect_eq(creates(gw, 10, big, NULL, 200), 10);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

static const char create_req[] =
        "POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Type: "
        "application/json\r\nContent-Length: 15\r\n\r\n{\"name\":\"slow\"}";

Test(it_workers, sigterm_drains_the_requests_of_every_worker)
{
	struct hx_gw *gw = hx_gw_start(NULL, "{\"workers\":2,\"shutdown_grace_ms\":30000}");
	int fds[12];
	size_t i;

	hx_stub_next("{\"delay_ms\":1000,\"repeat\":12}");
	for (i = 0; i < 12; i++) {
		fds[i] = hx_raw_open(gw->port, create_req, strlen(create_req));
		cr_assert_geq(fds[i], 0);
	}
	for (int waited = 0; json_array_size(hx_stub_requests()) < 12 && waited < 10000;
	     waited += 20)
		hx_sleep_ms(20);
	cr_assert_eq(json_array_size(hx_stub_requests()), 12);
	cr_assert_eq(kill(gw->proc->pid, SIGTERM), 0);
	for (i = 0; i < 12; i++) {
		const char *out = hx_raw_read(fds[i], 15000, NULL);

		cr_expect(strncmp(out, "HTTP/1.1 200", 12) == 0, "connection %zu: %s", i, out);
	}
	cr_expect_eq(hx_proc_wait(gw->proc, 15000), 0, "exit status %d", gw->proc->status);
	cr_expect_eq(json_array_size(hx_audit_records(gw)), 12);
}

/* Many clients at once on every worker: under ThreadSanitizer (make tsan)
 * this is where unsynchronized shared state would show. */
Test(it_workers, concurrent_clients_on_every_worker_are_each_answered_and_audited)
{
	static const char keep[] =
	        "POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Type: "
	        "application/json\r\nContent-Length: 15\r\n\r\n{\"name\":\"many\"}";
	static const char last[] =
	        "POST /v1/containers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	        "Content-Type: application/json\r\nContent-Length: 15\r\n\r\n"
	        "{\"name\":\"many\"}";
	enum { ROUNDS = 4, CLIENTS = 64, EACH = 32 }; /* the stub keeps 10,000 containers */
	struct hx_gw *gw = hx_gw_start(NULL, "{\"workers\":4}");
	char req[EACH * sizeof(last)];
	int fds[CLIENTS], answered = 0;
	size_t i, n = 0;

	for (i = 0; i + 1 < EACH; i++)
		n += (size_t)snprintf(req + n, sizeof(req) - n, "%s", keep);
	n += (size_t)snprintf(req + n, sizeof(req) - n, "%s", last);
	for (int round = 0; round < ROUNDS; round++) {
		for (i = 0; i < CLIENTS; i++) {
			fds[i] = hx_raw_open(gw->port, req, n);
			cr_assert_geq(fds[i], 0);
		}
		for (i = 0; i < CLIENTS; i++) {
			const char *out = hx_raw_read(fds[i], 30000, NULL);

			for (const char *p = out; (p = strstr(p, "HTTP/1.1 200 ")) != NULL; p++)
				answered++;
			hx_raw_close(fds[i]);
		}
	}
	cr_expect_eq(answered, ROUNDS * CLIENTS * EACH);
	cr_expect_eq(hx_gw_stop(gw), 0);
	cr_expect_eq(json_array_size(hx_audit_records(gw)), ROUNDS * CLIENTS * EACH);
}

Test(it_workers, check_refuses_a_worker_count_out_of_range)
{
	struct hx_gw *gw = hx_gw_prepare(NULL, "{\"workers\":0}");
	const char *argv[] = {hx_gw_bin(), "--config", gw->config_path, "--check", NULL};
	struct hx_proc *p = hx_proc_start("check", argv);

	cr_expect_eq(hx_proc_wait(p, 10000), 1);
	cr_expect(hx_file_contains(p->err_path, "workers"), "%s", hx_read_file(p->err_path, NULL));
}
