/*
 * it_lifecycle: the process's life by signals. SIGTERM stops accepting and
 * lets requests in flight finish (up to shutdown_grace_ms, then 503s), and
 * the gateway exits 0; SIGHUP reloads config and policy, keeping the old
 * ones when the new ones are broken and leaving a request in flight with
 * the policy it started with; SIGUSR1 reopens the log files; the pid file
 * comes and goes with the process.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(it_lifecycle, .init = hx_init, .fini = hx_fini, .timeout = 60);

/* Waits until the stub has recorded n requests. */
static void
wait_upstream(size_t n)
{
	for (int i = 0; i < 500 && json_array_size(hx_stub_requests()) < n; i++)
		hx_sleep_ms(10);
	cr_assert_geq(json_array_size(hx_stub_requests()), n, "the upstream never got the request");
}

/* Whether 127.0.0.1:port refuses connections, polled for a while. */
static bool
refused(int port)
{
	for (int i = 0; i < 250; i++) {
		size_t n;

		if (hx_raw(port, "", 0, 100, HX_RAW_SHUT_WR, &n) == NULL)
			return true;
		hx_sleep_ms(20);
	}
	return false;
}

static const char create_req[] =
        "POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Type: "
        "application/json\r\nContent-Length: 15\r\n\r\n{\"name\":\"slow\"}";

Test(it_lifecycle, sigterm_lets_a_slow_request_finish)
{
	int admin_port = hx_free_port();
	struct hx_gw *gw = hx_gw_start(
	        NULL, hx_fmt("{\"admin_listen\":\"127.0.0.1:%d\",\"shutdown_grace_ms\":30000}",
	                     admin_port));
	const char *out;
	json_t *recs;
	int fd;

	hx_stub_next("{\"delay_ms\":1500}");
	fd = hx_raw_open(gw->port, create_req, strlen(create_req));
	cr_assert_geq(fd, 0);
	wait_upstream(1);
	cr_assert_eq(kill(gw->proc->pid, SIGTERM), 0);

	/* No longer accepting, and no longer ready, while the request runs. */
	cr_expect(refused(gw->port), "still accepting after SIGTERM");
	cr_expect_eq(hx_http("GET", hx_fmt("http://127.0.0.1:%d/readyz", admin_port), NULL, NULL, 0)
	                     ->status,
	             503);
	out = hx_raw_read(fd, 15000, NULL);
	cr_expect(strncmp(out, "HTTP/1.1 200", 12) == 0, "%s", out);
	cr_expect(strstr(out, "Connection: close") != NULL, "%s", out);
	cr_expect(strstr(out, "\"name\":\"slow\"") != NULL, "%s", out);
	cr_expect_eq(hx_proc_wait(gw->proc, 15000), 0, "exit status %d", gw->proc->status);
	recs = hx_audit_records(gw);
	cr_assert_eq(json_array_size(recs), 1);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(recs, 0), "status")), 200);
}

Test(it_lifecycle, past_the_grace_period_requests_get_a_503_and_the_exit_is_clean)
{
	struct hx_gw *gw = hx_gw_start(NULL, "{\"shutdown_grace_ms\":300}");
	const char *out;
	json_t *rec;
	int fd;

	hx_stub_next("{\"action\":\"hang\"}");
	fd = hx_raw_open(gw->port, create_req, strlen(create_req));
	cr_assert_geq(fd, 0);
	wait_upstream(1);
	cr_assert_eq(kill(gw->proc->pid, SIGTERM), 0);
	out = hx_raw_read(fd, 15000, NULL);
	cr_expect(strncmp(out, "HTTP/1.1 503", 12) == 0, "%s", out);
	cr_expect(strstr(out, "\"code\":\"shutting_down\"") != NULL, "%s", out);
	cr_expect_eq(hx_proc_wait(gw->proc, 15000), 0, "exit status %d", gw->proc->status);
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_str_eq(hx_str(rec, "code"), "shutting_down");
	cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 503);
}

Test(it_lifecycle, kept_alive_idle_connections_do_not_hold_up_the_exit)
{
	struct hx_gw *gw = hx_gw_start(
	        NULL, "{\"shutdown_grace_ms\":30000,\"limits\":{\"idle_timeout_ms\":60000}}");
	const char *req = "GET /v1/containers HTTP/1.1\r\nHost: x\r\n\r\n";
	const char *out;
	int fd = hx_raw_open(gw->port, req, strlen(req));

	cr_assert_geq(fd, 0);
	out = hx_raw_read(fd, 1000, NULL);
	cr_assert(strncmp(out, "HTTP/1.1 200", 12) == 0, "%s", out);
	cr_assert_eq(kill(gw->proc->pid, SIGTERM), 0);
	/* Well inside the grace period the idle connection would otherwise
	 * be given. */
	cr_expect_eq(hx_proc_wait(gw->proc, 15000), 0, "exit status %d", gw->proc->status);
}

Test(it_lifecycle, sighup_reloads_the_policy_and_keeps_it_when_the_new_one_is_broken)
{
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	const char *big = "{\"name\":\"big\",\"memory_limit\":\"4g\"}";
	json_t *lines, *line, *reloads[2] = {NULL}, *requests[3] = {NULL};
	struct hx_resp *r;
	size_t i, n = 0, m = 0;

	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), NULL, big, strlen(big));
	cr_assert_eq(r->status, 403, "%s", r->body);

	hx_write_file(gw->policy_path, "{\"memory_limit\":{\"max\":\"4g\"}}");
	cr_assert_eq(kill(gw->proc->pid, SIGHUP), 0);
	cr_assert(hx_wait_contains(gw->err_path, "\"reloaded ", 10000), "%s",
	          hx_read_file(gw->err_path, NULL));
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), NULL, big, strlen(big));
	cr_expect_eq(r->status, 200, "%s", r->body);

	/* Broken: the errors are logged, the policy in force stays. */
	hx_write_file(gw->policy_path, "{\"memory_limit\":{\"max\":\"4g\"},\"nonsense\":1}");
	cr_assert_eq(kill(gw->proc->pid, SIGHUP), 0);
	cr_assert(hx_wait_contains(gw->err_path, "reload failed", 10000), "%s",
	          hx_read_file(gw->err_path, NULL));
	cr_expect(hx_file_contains(gw->err_path, "nonsense: unknown key"), "%s",
	          hx_read_file(gw->err_path, NULL));
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), NULL, big, strlen(big));
	cr_expect_eq(r->status, 200, "%s", r->body);
	cr_expect_eq(hx_gw_stop(gw), 0);

	/* Both reloads are on record, with the policy versions before and
	 * after; each request names the version that decided it. */
	lines = hx_audit_lines(gw);
	json_array_foreach(lines, i, line)
	{
		if (strcmp(hx_str(line, "type"), "reload") == 0)
			reloads[n < 2 ? n++ : 1] = line;
		else if (strcmp(hx_str(line, "type"), "request") == 0)
			requests[m < 3 ? m++ : 2] = line;
	}
	cr_assert_eq(n, 2, "two reload records");
	cr_assert_eq(m, 3, "three request records");
	cr_expect_str_eq(hx_str(reloads[0], "decision"), "allow");
	cr_expect_str_eq(hx_str(reloads[0], "policy_version_old"),
	                 hx_str(requests[0], "policy_version"));
	cr_expect_str_eq(hx_str(reloads[0], "policy_version"),
	                 hx_str(requests[1], "policy_version"));
	cr_expect_str_neq(hx_str(reloads[0], "policy_version"),
	                  hx_str(reloads[0], "policy_version_old"));
	cr_expect_str_eq(hx_str(reloads[1], "decision"), "error");
	cr_expect_not_null(strstr(hx_str(reloads[1], "message"), "nonsense"));
	cr_expect_str_eq(hx_str(reloads[1], "policy_version"),
	                 hx_str(requests[2], "policy_version"));
	cr_expect_str_eq(hx_str(requests[2], "policy_version"),
	                 hx_str(requests[1], "policy_version"));
}

/* A policy broken inside a string (a domain secret's value) is reported by
 * line and column, never by the bytes there: the log and the reload's
 * audit record, which nobody can rewrite, would keep the secret. */
Test(it_lifecycle, a_broken_policy_is_reported_without_its_bytes)
{
	struct hx_gw *gw = hx_gw_start(NULL, NULL);
	json_t *lines, *line;
	const char *message = NULL;
	size_t i;

	hx_write_file(gw->policy_path,
	              "{\"network_policy\":{\"allowed_domains\":[\"a.example.com\"],"
	              "\"allow_domain_secrets\":true,\"default\":{\"type\":\"allowlist\","
	              "\"allowed_domains\":[\"a.example.com\"],\"domain_secrets\":[{\"domain\":"
	              "\"a.example.com\",\"name\":\"T\",\"value\":\"hunter2\\q\"}]}}}");
	cr_assert_eq(kill(gw->proc->pid, SIGHUP), 0);
	cr_assert(hx_wait_contains(gw->err_path, "reload failed", 10000), "%s",
	          hx_read_file(gw->err_path, NULL));
	cr_expect_eq(hx_gw_stop(gw), 0);
	cr_expect(!hx_file_contains(gw->err_path, "hunter2"), "%s",
	          hx_read_file(gw->err_path, NULL));
	lines = hx_audit_lines(gw);
	json_array_foreach(lines, i, line)
	{
		if (strcmp(hx_str(line, "type"), "reload") == 0)
			message = hx_str(line, "message");
	}
	cr_assert_not_null(message, "no reload record");
	cr_expect_not_null(strstr(message, "line 1, column"), "%s", message);
	cr_expect_null(strstr(message, "hunter2"), "%s", message);
}

Test(it_lifecycle, a_request_in_flight_keeps_the_policy_it_started_with)
{
	struct hx_gw *gw = hx_gw_start("{\"memory_limit\":{\"max\":\"4g\"}}", NULL);
	const char *body = "{\"name\":\"inflight\",\"memory_limit\":\"4g\"}";
	const char *head = hx_fmt("POST /v1/containers HTTP/1.1\r\nHost: x\r\nContent-Type: "
	                          "application/json\r\nContent-Length: %zu\r\nConnection: "
	                          "close\r\n\r\n",
	                          strlen(body));
	const char *out;
	struct hx_resp *r;
	json_t *up;
	int fd;

	/* The head and half the body, then a reload that lowers the cap. */
	fd = hx_raw_open(gw->port, head, strlen(head));
	cr_assert_geq(fd, 0);
	cr_assert_eq(hx_raw_send(fd, body, 10), 0);
	hx_sleep_ms(200);
	hx_write_file(gw->policy_path, "{\"memory_limit\":{\"max\":\"1g\"}}");
	cr_assert_eq(kill(gw->proc->pid, SIGHUP), 0);
	cr_assert(hx_wait_contains(gw->err_path, "\"reloaded ", 10000), "%s",
	          hx_read_file(gw->err_path, NULL));
	/* A request that starts now gets the new policy... */
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), NULL, body, strlen(body));
	cr_expect_eq(r->status, 403, "%s", r->body);
	/* ...the one in flight is decided by the policy it started with. */
	cr_assert_eq(hx_raw_send(fd, body + 10, strlen(body) - 10), 0);
	out = hx_raw_read(fd, 10000, NULL);
	cr_expect(strncmp(out, "HTTP/1.1 200", 12) == 0, "%s", out);
	up = json_array_get(hx_stub_requests(), 0);
	cr_assert_not_null(up);
	cr_expect(strstr(hx_str(up, "body"), "\"memory_limit\":\"4g\"") != NULL, "%s",
	          hx_str(up, "body"));
}

Test(it_lifecycle, sigusr1_reopens_the_audit_and_operational_logs)
{
	struct hx_gw *gw = hx_gw_start(NULL, "{\"log\":{\"path\":\"gateway.log\"}}");
	const char *log = hx_path("gateway.log");
	struct hx_resp *r;

	r = hx_http("GET", hx_gw_url(gw, "/v1/containers"), NULL, NULL, 0);
	cr_assert_eq(r->status, 200);
	cr_assert_eq(json_array_size(hx_audit_wait(gw, 1, 5000)), 1);
	cr_assert(hx_wait_contains(log, "listening on", 5000), "no operational log in %s", log);

	/* What logrotate does: move the files, then signal. */
	cr_assert_eq(rename(gw->audit_path, hx_path("audit.log.1")), 0);
	cr_assert_eq(rename(log, hx_path("gateway.log.1")), 0);
	cr_assert_eq(kill(gw->proc->pid, SIGUSR1), 0);
	cr_assert(hx_wait_contains(log, "reopened the log files", 5000), "%s",
	          hx_read_file(hx_path("gateway.log.1"), NULL));
	r = hx_http("GET", hx_gw_url(gw, "/v1/containers"), NULL, NULL, 0);
	cr_assert_eq(r->status, 200);
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 1, 5000)), 1);
	cr_expect(hx_file_contains(hx_path("audit.log.1"), "\"status\":200"));
	cr_expect(!hx_file_contains(hx_path("gateway.log.1"), "reopened the log files"));
	/* Each line of the operational log is one JSON object. */
	{
		char *text = strdup(hx_read_file(log, NULL)), *save = NULL;

		for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			json_t *o = hx_json(l);

			cr_expect(hx_str(o, "ts") && hx_str(o, "level") && hx_str(o, "msg"), "%s",
			          l);
		}
		free(text);
	}
}

Test(it_lifecycle, the_pid_file_comes_and_goes_with_the_process)
{
	struct hx_gw *gw = hx_gw_start(NULL, "{\"pid_file\":\"gateway.pid\"}");
	const char *pid_path = hx_path("gateway.pid");
	struct hx_gw *second;
	const char *text;

	text = hx_read_file(pid_path, NULL);
	cr_assert_not_null(text);
	cr_expect_eq(strtol(text, NULL, 10), (long)gw->proc->pid, "%s", text);

	/* A second gateway with the same pid file refuses to start (its own
	 * audit log: the first's is locked, which would refuse it sooner). */
	second = hx_gw_prepare(
	        NULL, "{\"pid_file\":\"gateway.pid\",\"audit\":{\"path\":\"second.log\"}}");
	{
		const char *argv[] = {hx_gw_bin(), "--config", second->config_path, NULL};
		struct hx_proc *p = hx_proc_start("second", argv);

		cr_expect_eq(hx_proc_wait(p, 10000), 1);
		cr_expect(hx_file_contains(p->err_path, "another gateway?"), "%s",
		          hx_read_file(p->err_path, NULL));
	}
	cr_expect_eq(hx_proc_stop(gw->proc), 0);
	cr_expect(access(pid_path, F_OK) != 0, "the pid file outlived the process");
}
