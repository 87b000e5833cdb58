/*
 * it_redis: replicas sharing one redis-server enforce one limit and see one
 * ownership map; when redis is gone, store.on_unavailable decides.
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

TestSuite(it_redis, .init = hx_init, .fini = hx_fini, .timeout = 60);

#define TEAM_KEY  "sk-team-KEY-3321"
#define OTHER_KEY "sk-other-KEY-8810"

static const char *
policy(int creates_per_minute)
{
	return hx_fmt("{\"tenants\":{\"team\":{\"api_keys_sha256\":[\"%s\"],"
	              "\"rate_limit\":{\"creates_per_minute\":%d}},"
	              "\"other\":{\"api_keys_sha256\":[\"%s\"]}}}",
	              hx_key_digest(TEAM_KEY), creates_per_minute, hx_key_digest(OTHER_KEY));
}

static const char *
store(int port, const char *on_unavailable)
{
	return hx_fmt("{\"store\":{\"type\":\"redis\",\"url\":\"redis://127.0.0.1:%d/0\","
	              "\"on_unavailable\":\"%s\",\"timeout_ms\":500}}",
	              port, on_unavailable);
}

static struct hx_resp *
as(const struct hx_gw *gw, const char *key, const char *method, const char *path, const char *body)
{
	const char *h[] = {"Content-Type: application/json",
	                   hx_fmt("Authorization: Bearer %s", key), NULL};

	return hx_http(method, hx_gw_url(gw, path), h, body, body ? strlen(body) : 0);
}

/* The team's tenant with its rules (JSON members). */
static const char *
team_policy(const char *rules)
{
	return hx_fmt("{\"tenants\":{\"team\":{\"api_keys_sha256\":[\"%s\"],%s}}}",
	              hx_key_digest(TEAM_KEY), rules);
}

/* A config with the Redis store at port answering within timeout_ms, and
 * more members ("" for none). */
static const char *
redis_config(int port, int timeout_ms, const char *more)
{
	return hx_fmt("{\"store\":{\"type\":\"redis\",\"url\":\"redis://127.0.0.1:%d/0\","
	              "\"timeout_ms\":%d}%s}",
	              port, timeout_ms, more);
}

/* A create of the team's, as raw bytes. */
static const char *
raw_create(void)
{
	return "POST /v1/containers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TEAM_KEY
	       "\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n"
	       "{\"name\":\"b\"}";
}

/* A command to the redis-server at port, from the test's own client: its
 * reply as a number (an integer, or a string holding one), -1 for none. */
static long long
redis_do(int port, const char *cmd)
{
	redisContext *c = redisConnect("127.0.0.1", port);
	redisReply *r;
	long long v = 0;

	cr_assert(c && !c->err, "cannot reach redis on %d", port);
	r = redisCommand(c, cmd);
	cr_assert_not_null(r, "%s", cmd);
	cr_assert_neq(r->type, REDIS_REPLY_ERROR, "%s: %s", cmd, r->str);
	if (r->type == REDIS_REPLY_INTEGER)
		v = r->integer;
	else if (r->type == REDIS_REPLY_STRING)
		v = strtoll(r->str, NULL, 10);
	else if (r->type == REDIS_REPLY_NIL)
		v = -1;
	freeReplyObject(r);
	redisFree(c);
	return v;
}

Test(it_redis, two_replicas_allow_exactly_n_creates_per_minute_between_them)
{
	int port, i, ok = 0, limited = 0;
	struct hx_proc *redis = hx_redis_start(&port);
	struct hx_gw *a = hx_gw_start(policy(5), store(port, "fail_closed"));
	struct hx_gw *b = hx_gw_start_peer(a, "replica", store(port, "fail_closed"));

	for (i = 0; i < 12; i++) {
		struct hx_resp *r = as(i % 2 ? b : a, TEAM_KEY, "POST", "/v1/containers",
		                       hx_fmt("{\"name\":\"r%d\"}", i));

		if (r->status == 200)
			ok++;
		else if (r->status == 429)
			limited++;
	}
	cr_expect_eq(ok, 5, "%d creates went through, %d limited", ok, limited);
	cr_expect_eq(limited, 7);
	cr_expect_eq(json_array_size(hx_stub_requests()), 5);
	(void)redis;
}

Test(it_redis, replicas_share_who_owns_what)
{
	int port;
	struct hx_proc *redis = hx_redis_start(&port);
	struct hx_gw *a = hx_gw_start(policy(100), store(port, "fail_closed"));
	struct hx_gw *b = hx_gw_start_peer(a, "replica", store(port, "fail_closed"));
	struct hx_resp *r;
	const char *id;

	r = as(a, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"shared\"}");
	cr_assert_eq(r->status, 200, "%s", r->body);
	id = hx_str(hx_resp_json(r), "id");
	cr_expect_eq(as(b, TEAM_KEY, "GET", hx_fmt("/v1/containers/%s", id), NULL)->status, 200);
	cr_expect_eq(as(b, OTHER_KEY, "GET", hx_fmt("/v1/containers/%s", id), NULL)->status, 404);
	cr_expect_eq(as(b, TEAM_KEY, "DELETE", hx_fmt("/v1/containers/%s", id), NULL)->status, 200);
	cr_expect_eq(as(a, TEAM_KEY, "GET", hx_fmt("/v1/containers/%s", id), NULL)->status, 404);
	(void)redis;
}

Test(it_redis, redis_gone_fails_closed_by_default)
{
	int port;
	struct hx_proc *redis = hx_redis_start(&port);
	struct hx_gw *gw = hx_gw_start(policy(100), store(port, "fail_closed"));
	struct hx_resp *r;
	json_t *rec;

	cr_expect_eq(as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"before\"}")->status,
	             200);
	cr_expect_eq(hx_proc_stop(redis), 0);
	r = as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"after\"}");
	cr_expect_eq(r->status, 503, "%s", r->body);
	cr_expect_str_eq(hx_str(json_object_get(hx_resp_json(r), "error"), "code"),
	                 "store_unavailable");
	cr_expect_eq(json_array_size(hx_stub_requests()), 1, "nothing went up without the store");
	rec = json_array_get(hx_audit_wait(gw, 2, 5000), 1);
	cr_expect_str_eq(hx_str(rec, "code"), "store_unavailable");
	/* The organization's own requests do not need the store. */
	r = hx_http("GET", hx_gw_url(gw, "/v1/containers"), NULL, NULL, 0);
	cr_expect_eq(r->status, 200, "%s", r->body);
}

Test(it_redis, redis_gone_fails_open_when_configured)
{
	int port;
	struct hx_proc *redis = hx_redis_start(&port);
	struct hx_gw *gw = hx_gw_start(policy(100), store(port, "fail_open"));
	struct hx_resp *r;

	cr_expect_eq(hx_proc_stop(redis), 0);
	r = as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"open\"}");
	cr_expect_eq(r->status, 200, "%s", r->body);
	cr_expect_eq(json_array_size(hx_stub_requests()), 1);
}

Test(it_redis, redis_back_again_is_used_again)
{
	int port;
	struct hx_proc *redis = hx_redis_start(&port);
	struct hx_gw *gw = hx_gw_start(policy(100), store(port, "fail_closed"));
	const char *argv[] = {"/bin/sh", "-c",
	                      hx_fmt("exec redis-server --port %d --bind 127.0.0.1 --save '' "
	                             "--appendonly no",
	                             port),
	                      NULL};
	int i, status = 0;

	cr_expect_eq(hx_proc_stop(redis), 0);
	cr_expect_eq(as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"x\"}")->status, 503);
	redis = hx_proc_start("redis2", argv);
	cr_assert_eq(hx_wait_port(port, 10000), 0);
	/* It reconnects at most once a second. */
	for (i = 0; i < 30 && status != 200; i++) {
		usleep(100 * 1000);
		status =
		        (int)as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"y\"}")->status;
	}
	cr_expect_eq(status, 200);
}

/* The live count follows the upstream's truth through redis too: at the
 * cap, a container past its hint that the upstream no longer has frees
 * its slot for a create at the other replica; one it has keeps counting. */
Test(it_redis, a_gone_container_frees_its_slot_across_replicas)
{
	int port;
	struct hx_proc *redis = hx_redis_start(&port);
	const char *pol = hx_fmt("{\"tenants\":{\"team\":{\"api_keys_sha256\":[\"%s\"],"
	                         "\"rate_limit\":{\"max_live_containers\":1}}}}",
	                         hx_key_digest(TEAM_KEY));
	struct hx_gw *a = hx_gw_start(pol, store(port, "fail_closed"));
	struct hx_gw *b = hx_gw_start_peer(a, "replica", store(port, "fail_closed"));
	struct hx_resp *r;
	json_t *reqs;

	/* Made long ago, as far as its answer says; the stub does not keep it,
	 * so asked about it answers 404. */
	hx_stub_next("{\"json\":{\"id\":\"cntr_old\",\"object\":\"container\",\"name\":\"o\","
	             "\"created_at\":1,\"status\":\"running\",\"memory_limit\":\"1g\","
	             "\"expires_after\":{\"anchor\":\"last_active_at\",\"minutes\":20},"
	             "\"last_active_at\":1,\"network_policy\":{\"type\":\"disabled\"}}}");
	cr_assert_eq(as(a, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"a\"}")->status, 200);
	r = as(b, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"b\"}");
	cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
	reqs = hx_stub_requests();
	cr_expect_str_eq(hx_str(json_array_get(reqs, 1), "uri"), "/v1/containers/cntr_old");
	/* The new one is fresh: the cap holds with nothing to ask. */
	r = as(a, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"c\"}");
	cr_expect_eq(r->status, 429, "%ld %s", r->status, r->body);
	cr_expect_eq(json_array_size(hx_stub_requests()), 3);
	hx_proc_stop(redis);
}

/* A managed Redis: a password, from store.password_env; an ACL user in
 * the URL; never in a log. A wrong password is said to be one, and
 * fail_closed refuses the tenant's requests. */
Test(it_redis, a_password_protected_redis)
{
	int port;
	struct hx_proc *redis = hx_redis_start_with(&port, "--requirepass 'Redis-PW-7781'");
	struct hx_gw *gw, *bad;
	struct hx_resp *r;

	setenv("GW_TEST_REDIS_PW", "Redis-PW-7781", 1);
	setenv("GW_TEST_REDIS_BAD", "not-the-password", 1);
	gw = hx_gw_start(policy(2),
	                 hx_fmt("{\"store\":{\"type\":\"redis\",\"url\":\"redis://127.0.0.1:%d/3\","
	                        "\"password_env\":\"GW_TEST_REDIS_PW\"}}",
	                        port));
	cr_expect_eq(as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"1\"}")->status, 200);
	cr_expect_eq(as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"2\"}")->status, 200);
	r = as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"3\"}");
	cr_expect_eq(r->status, 429, "the limit is counted in redis: %ld %s", r->status, r->body);
	bad = hx_gw_start_peer(gw, "bad",
	                       hx_fmt("{\"store\":{\"type\":\"redis\",\"url\":"
	                              "\"redis://127.0.0.1:%d/3\",\"password_env\":"
	                              "\"GW_TEST_REDIS_BAD\",\"timeout_ms\":500}}",
	                              port));
	r = as(bad, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"4\"}");
	cr_expect_eq(r->status, 503, "%ld %s", r->status, r->body);
	cr_expect_not_null(strstr(r->body, "store_unavailable"), "%s", r->body);
	cr_expect(hx_wait_contains(bad->err_path, "refused the connection's password", 5000));
	cr_expect(!hx_file_contains(bad->err_path, "not-the-password"));
	cr_expect(!hx_file_contains(gw->err_path, "Redis-PW-7781"));
	hx_proc_stop(redis);
}

Test(it_redis, an_acl_user_in_the_url)
{
	int port;
	struct hx_proc *redis =
	        hx_redis_start_with(&port, "--user gateway on '>Acl-PW-5512' '~gw:*' '&*' '+@all' "
	                                   "--user default off");
	struct hx_gw *gw =
	        hx_gw_start(policy(1), hx_fmt("{\"store\":{\"type\":\"redis\",\"url\":"
	                                      "\"redis://gateway:Acl-PW-5512@127.0.0.1:%d/0\"}}",
	                                      port));

	cr_expect_eq(as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"1\"}")->status, 200);
	cr_expect_eq(as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"2\"}")->status, 429);
	cr_expect(!hx_file_contains(gw->err_path, "Acl-PW-5512"));
	hx_proc_stop(redis);
}

/* rediss://: TLS with the server's certificate checked against
 * store.ca_file and its name; a password too. A server the CA does not
 * vouch for is unreachable, and the log says why. */
Test(it_redis, redis_over_tls)
{
	int port;
	struct hx_proc *redis = hx_redis_start_with(&port, "%TLS% --requirepass 'Tls-PW-3390'");
	struct hx_gw *gw, *bad;
	struct hx_resp *r;

	setenv("GW_TEST_REDIS_PW", "Tls-PW-3390", 1);
	gw = hx_gw_start(
	        policy(1),
	        hx_fmt("{\"store\":{\"type\":\"redis\",\"url\":\"rediss://localhost:%d/0\","
	               "\"password_env\":\"GW_TEST_REDIS_PW\",\"ca_file\":\"%s/ca.pem\"}}",
	               port, hx_certs()));
	cr_expect_eq(as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"1\"}")->status, 200);
	r = as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"2\"}");
	cr_expect_eq(r->status, 429, "%ld %s", r->status, r->body);
	/* The system's CAs do not know the development CA. */
	bad = hx_gw_start_peer(gw, "bad",
	                       hx_fmt("{\"store\":{\"type\":\"redis\",\"url\":"
	                              "\"rediss://localhost:%d/0\",\"password_env\":"
	                              "\"GW_TEST_REDIS_PW\",\"timeout_ms\":500}}",
	                              port));
	r = as(bad, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"3\"}");
	cr_expect_eq(r->status, 503, "%ld %s", r->status, r->body);
	cr_expect(hx_wait_contains(bad->err_path, "certificate verify failed", 5000));
	cr_expect(!hx_file_contains(gw->err_path, "Tls-PW-3390"));
	hx_proc_stop(redis);
}

/* A budget two replicas share through Redis: each create reserves memory
 * times minutes before it is forwarded, so the two between them spend the
 * budget exactly to its line and refuse past it, whichever gets the call. */
Test(it_redis, two_replicas_share_a_budget_exactly)
{
	int port, i, ok = 0, refused = 0;
	struct hx_proc *redis = hx_redis_start(&port);
	const char *pol = hx_fmt("{\"tenants\":{\"team\":{\"api_keys_sha256\":[\"%s\"],"
	                         "\"budget\":{\"gb_minutes_per_day\":100}}}}",
	                         hx_key_digest(TEAM_KEY));
	struct hx_gw *a = hx_gw_start(pol, store(port, "fail_closed"));
	struct hx_gw *b = hx_gw_start_peer(a, "replica", store(port, "fail_closed"));
	struct hx_resp *r = NULL;

	/* 1g for 10 minutes: 10 GB-minutes each; ten fit in 100. */
	for (i = 0; i < 14; i++) {
		r = as(i % 2 ? b : a, TEAM_KEY, "POST", "/v1/containers",
		       hx_fmt("{\"name\":\"b%d\",\"memory_limit\":\"1g\",\"expires_after\":{"
		              "\"anchor\":"
		              "\"last_active_at\",\"minutes\":10}}",
		              i));
		if (r->status == 200)
			ok++;
		else if (r->status == 429 &&
		         strcmp(hx_str(json_object_get(hx_resp_json(r), "error"), "code"),
		                "budget_exceeded") == 0)
			refused++;
	}
	cr_expect_eq(ok, 10, "%d allowed", ok);
	cr_expect_eq(refused, 4, "%d refused", refused);
	cr_expect_str_eq(hx_resp_header(r, "x-should-retry"), "false");
	cr_expect_eq(json_array_size(hx_stub_requests()), 10, "only what fit went up");
	hx_proc_stop(redis);
}

/* A create whose intent cannot be audited is not forwarded: it waits for
 * the log to take it. If it ends without going upstream (here the
 * replica stops, and past its grace period answers it 503), the live slot
 * it took is free again at once, not after the 5 minutes a slot is held
 * for a create whose answer never came. Replica a's audit log reaches a
 * file size limit (RLIMIT_FSIZE, as a full disk would) just as the
 * create's intent is written; replica b, sharing the store, writes its
 * own log. */
Test(it_redis, a_create_that_could_not_be_audited_frees_its_slot)
{
	int port, fd, i;
	struct hx_proc *redis = hx_redis_start(&port);
	struct hx_gw *a = hx_gw_prepare(team_policy("\"rate_limit\":{\"max_live_containers\":1}"),
	                                redis_config(port, 500, ",\"shutdown_grace_ms\":200"));
	const char *h[] = {"Authorization: Bearer " TEAM_KEY, NULL};
	struct hx_gw *b;
	struct hx_resp *r;

	hx_gw_launch_capped(a, 64 * 1024);
	b = hx_gw_start_peer(a, "replica", store(port, "fail_closed"));
	/* Less than 1,000 bytes left, where a create's intent (1.2 KB) is not. */
	hx_audit_fill(a, h, 64 * 1024, 1000);
	fd = hx_raw_open(a->port, raw_create(), strlen(raw_create()));
	cr_assert_geq(fd, 0);
	hx_sleep_ms(300);
	cr_expect_eq(json_array_size(hx_stub_requests()), 0, "forwarded without an intent");
	cr_expect_eq(as(b, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"b\"}")->status, 429,
	             "the waiting create holds no slot");
	/* Stopped, a answers what waits, and what it held goes back. The log
	 * that could not be written makes its exit status a failure. */
	(void)hx_proc_stop(a->proc);
	hx_raw_close(fd);
	for (i = 0; i < 50; i++) {
		r = as(b, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"b\"}");
		if (r->status != 429)
			break;
		hx_sleep_ms(20);
	}
	cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
	/* The cap still holds for the one b made. */
	r = as(b, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"c\"}");
	cr_expect_eq(r->status, 429, "%ld %s", r->status, r->body);
	hx_proc_stop(redis);
}

/* A create the upstream refused gives its reserved budget back, and the
 * store sends it until Redis takes it, exactly once. 1g for 20 minutes is
 * 20 GB-minutes; the tenant has 60 a day. A is made (20 spent).
 * B is reserved (40), refused upstream, and its give-back queued in a
 * Redis that has paused writes; the gateway's connection is then killed,
 * which drops it (before, it was lost there: 40 stayed spent). C is
 * reserved (40), refused, and its give-back times out while Redis holds
 * it, and again: once Redis resumes, every copy runs, and only the first
 * may count (or 0 would be spent). So D and E fit, and F does not. */
Test(it_redis, a_refund_reaches_redis_once_though_redis_stalls)
{
	static const char refused[] =
	        "{\"status\":500,\"json\":{\"error\":{\"message\":\"no\",\"type\":"
	        "\"server_error\",\"param\":null,\"code\":null}},\"delay_ms\":600}";
	int port, fd;
	struct hx_proc *redis = hx_redis_start(&port);
	struct hx_gw *gw = hx_gw_start(team_policy("\"budget\":{\"gb_minutes_per_day\":60}"),
	                               redis_config(port, 300, ""));
	struct hx_resp *r;

	cr_assert_eq(as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"a\"}")->status, 200);

	hx_stub_next(refused);
	fd = hx_raw_open(gw->port, raw_create(), strlen(raw_create()));
	cr_assert_geq(fd, 0);
	hx_sleep_ms(200);
	redis_do(port, "CLIENT PAUSE 5000 WRITE");
	hx_sleep_ms(700); /* B's answer came at 600 ms; its give-back waits */
	cr_expect_geq(redis_do(port, "CLIENT KILL TYPE normal SKIPME yes"), 1);
	redis_do(port, "CLIENT UNPAUSE");
	hx_raw_close(fd);
	hx_sleep_ms(2500); /* sent again within a second or two */

	hx_stub_next(refused);
	fd = hx_raw_open(gw->port, raw_create(), strlen(raw_create()));
	cr_assert_geq(fd, 0);
	hx_sleep_ms(200);
	redis_do(port, "CLIENT PAUSE 2500 WRITE");
	/* C's give-back at 600 ms times out at 900, is sent again at 1,900
	 * and times out; at 2,700 Redis runs both; the third goes at 3,900. */
	hx_sleep_ms(4500);
	hx_raw_close(fd);

	r = as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"d\"}");
	cr_expect_eq(r->status, 200, "a give-back was lost: %ld %s", r->status, r->body);
	r = as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"e\"}");
	cr_expect_eq(r->status, 200, "a give-back was lost: %ld %s", r->status, r->body);
	r = as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"f\"}");
	cr_expect_eq(r->status, 429, "a give-back counted twice: %ld %s", r->status, r->body);
	hx_proc_stop(redis);
}

/* A reservation whose answer never came is given back, though the request
 * failed: A is made (20 spent); Redis then sleeps (DEBUG SLEEP, as a
 * long script or a slow disk would hold it), so B's reservation times out
 * (503: fail_closed), and is applied when Redis wakes (40). Its
 * give-back returns what it took: the day's counter ends at 20 (40
 * before: B was charged for nothing until the window's reset), and its
 * marker says it was given back. */
Test(it_redis, a_reservation_whose_answer_timed_out_is_given_back)
{
	static const char sleep_cmd[] = "DEBUG SLEEP 1.2\r\n";
	int port, fd;
	struct hx_proc *redis = hx_redis_start_with(&port, "--enable-debug-command yes");
	struct hx_gw *gw = hx_gw_start(team_policy("\"budget\":{\"gb_minutes_per_day\":600}"),
	                               redis_config(port, 300, ""));
	char key[64];
	time_t now = time(NULL);
	struct tm tm;
	struct hx_resp *r;
	json_t *recs;
	const char *id;
	size_t i;

	gmtime_r(&now, &tm);
	strftime(key, sizeof(key), "gw:budget:team:d:%Y%m%d", &tm);
	cr_assert_eq(as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"a\"}")->status, 200);
	cr_assert_eq(redis_do(port, hx_fmt("GET %s", key)), 20);
	fd = hx_raw_open(port, sleep_cmd, sizeof(sleep_cmd) - 1);
	cr_assert_geq(fd, 0);
	hx_sleep_ms(100);
	r = as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"b\"}");
	cr_assert_eq(r->status, 503, "%ld %s", r->status, r->body);
	hx_sleep_ms(3000);
	hx_raw_close(fd);
	cr_expect_eq(redis_do(port, hx_fmt("GET %s", key)), 20,
	             "the late reservation was not given back");
	recs = hx_audit_wait(gw, 2, 5000);
	id = NULL;
	for (i = 0; i < json_array_size(recs); i++)
		if (json_integer_value(json_object_get(json_array_get(recs, i), "status")) == 503)
			id = hx_str(json_array_get(recs, i), "request_id");
	cr_assert_not_null(id);
	cr_expect_eq(redis_do(port, hx_fmt("EXISTS gw:spent:%s", id)), 1);
	hx_proc_stop(redis);
}

/* A stop waits (up to shutdown_grace_ms) for the budget give-backs Redis
 * has not taken yet, rather than dropping them. A is made (20 spent); B
 * is reserved (40) and refused upstream while Redis's writes are paused,
 * so its give-back waits; the gateway is stopped meanwhile, and when it
 * has exited the day's counter is back at 20 (40 before: the give-back
 * was dropped at the stop). */
Test(it_redis, a_stop_waits_for_the_give_backs_redis_has_not_taken)
{
	int port, fd;
	struct hx_proc *redis = hx_redis_start(&port);
	struct hx_gw *gw = hx_gw_start(team_policy("\"budget\":{\"gb_minutes_per_day\":60}"),
	                               redis_config(port, 300, ""));
	char key[64];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(key, sizeof(key), "gw:budget:team:d:%Y%m%d", &tm);
	cr_assert_eq(as(gw, TEAM_KEY, "POST", "/v1/containers", "{\"name\":\"a\"}")->status, 200);
	cr_assert_eq(redis_do(port, hx_fmt("GET %s", key)), 20);
	hx_stub_next("{\"status\":500,\"json\":{\"error\":{\"message\":\"no\",\"type\":"
	             "\"server_error\",\"param\":null,\"code\":null}},\"delay_ms\":400}");
	fd = hx_raw_open(gw->port, raw_create(), strlen(raw_create()));
	cr_assert_geq(fd, 0);
	hx_sleep_ms(150);
	cr_assert_eq(redis_do(port, hx_fmt("GET %s", key)), 40, "B is reserved");
	redis_do(port, "CLIENT PAUSE 2000 WRITE");
	hx_sleep_ms(450); /* B was refused at 400 ms; its give-back waits */
	hx_raw_close(fd);
	cr_expect_eq(hx_proc_stop(gw->proc), 0);
	cr_expect_eq(redis_do(port, hx_fmt("GET %s", key)), 20,
	             "the give-back was dropped at the stop");
	hx_proc_stop(redis);
}
