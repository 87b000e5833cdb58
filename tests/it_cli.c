/*
 * it_cli: the gateway's command line: --check, --version, --help, bad
 * flags, and a config that cannot start.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <sys/stat.h>

#include "harness.h"

TestSuite(it_cli, .init = hx_init, .fini = hx_fini, .timeout = 60);

/* Runs the gateway with args to completion; returns its exit status. */
static int
run(const char *name, const char *const *args, struct hx_proc **out)
{
	const char *argv[8];
	struct hx_proc *p;
	size_t i;
	int rc;

	argv[0] = hx_gw_bin();
	for (i = 0; args[i] && i < 6; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	p = hx_proc_start(name, argv);
	rc = hx_proc_wait(p, 10000);
	*out = p;
	return rc;
}

Test(it_cli, check_accepts_the_shipped_config_and_policies)
{
	static const char *const policies[] = {
	        "policies/default.json", "policies/examples/no-network.json",
	        "policies/examples/data-team.json", "policies/examples/observe-only.json",
	        "policies/examples/allowlist.json"};
	char cwd[512];
	struct hx_proc *p;
	size_t i;

	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	for (i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
		const char *cfg = hx_path(hx_fmt("c%zu.json", i));

		hx_write_file(cfg, hx_fmt("{\"policy_file\":\"%s/%s\"}", cwd, policies[i]));
		cr_expect_eq(run(hx_fmt("check%zu", i),
		                 (const char *[]){"--config", cfg, "--check", NULL}, &p),
		             0, "%s", hx_read_file(p->err_path, NULL));
		cr_expect_str_eq(hx_read_file(p->out_path, NULL), "configuration OK\n");
	}
	cr_expect_eq(run("example",
	                 (const char *[]){"--config", hx_fmt("%s/gateway.example.json", cwd),
	                                  "--check", NULL},
	                 &p),
	             0, "%s", hx_read_file(p->err_path, NULL));
}

Test(it_cli, check_reports_every_error_with_file_and_path)
{
	const char *cfg = hx_path("bad.json"), *pol = hx_path("bad-policy.json");
	struct hx_proc *p;
	const char *err;

	hx_write_file(pol, "{\"memory_limit\":{\"max\":\"8g\"},\"network_policy\":{"
	                   "\"allowed_domains\":[\"ok.example.com\",\"http://x\"]},\"extra\":1}");
	hx_write_file(cfg, "{\"listen\":\"nohost\",\"upstream\":{\"timeout_ms\":-5},"
	                   "\"policy_file\":\"bad-policy.json\"}");
	cr_expect_eq(run("check", (const char *[]){"--config", cfg, "--check", NULL}, &p), 1);
	cr_expect_str_eq(hx_read_file(p->out_path, NULL), "");
	err = hx_read_file(p->err_path, NULL);
	cr_expect_not_null(strstr(err, hx_fmt("%s: upstream.timeout_ms: ", cfg)), "%s", err);
	cr_expect_not_null(strstr(err, hx_fmt("%s: listen: ", cfg)), "%s", err);

	/* With the config fixed, the policy's errors, all of them. */
	hx_write_file(cfg, "{\"policy_file\":\"bad-policy.json\"}");
	cr_expect_eq(run("check2", (const char *[]){"--config", cfg, "--check", NULL}, &p), 1);
	err = hx_read_file(p->err_path, NULL);
	cr_expect_not_null(strstr(err, hx_fmt("%s: memory_limit.max: ", pol)), "%s", err);
	cr_expect_not_null(strstr(err, hx_fmt("%s: network_policy.allowed_domains[1]: ", pol)),
	                   "%s", err);
	cr_expect_not_null(strstr(err, hx_fmt("%s: extra: unknown key", pol)), "%s", err);
}

Test(it_cli, version_help_and_bad_flags)
{
	struct hx_proc *p;

	cr_expect_eq(run("v", (const char *[]){"--version", NULL}, &p), 0);
	cr_expect_eq(strncmp(hx_read_file(p->out_path, NULL), "gateway ", 8), 0);
	cr_expect_eq(run("h", (const char *[]){"--help", NULL}, &p), 0);
	cr_expect_not_null(strstr(hx_read_file(p->out_path, NULL), "--check"));
	cr_expect_eq(run("bad", (const char *[]){"--nope", NULL}, &p), 2);
	cr_expect_not_null(strstr(hx_read_file(p->err_path, NULL), "usage:"));
	cr_expect_eq(run("none", (const char *[]){NULL}, &p), 2);
	cr_expect_eq(run("extra", (const char *[]){"--config", "x", "stray", NULL}, &p), 2);
}

Test(it_cli, a_config_that_cannot_start_says_why)
{
	const char *cfg = hx_path("missing-policy.json");
	struct hx_proc *p;

	hx_write_file(cfg, "{\"policy_file\":\"nowhere.json\",\"listen\":\"127.0.0.1:0\"}");
	cr_expect_eq(run("start", (const char *[]){"--config", cfg, NULL}, &p), 1);
	cr_expect_not_null(strstr(hx_read_file(p->err_path, NULL), "nowhere.json"));
}

/* store.url's port and database are numbers, checked whole: atoi read
 * "6379x" as 6379 and "x" as database 0 (found by clang-tidy). */
Test(it_cli, a_store_url_that_is_not_numbers_says_so)
{
	static const char *const urls[] = {"redis://127.0.0.1:6379x/0", "redis://127.0.0.1:6379/x",
	                                   "redis://127.0.0.1:-1/0", "redis://127.0.0.1:99999/0",
	                                   "redis://127.0.0.1:/0"};
	struct hx_proc *p;
	size_t i;

	hx_write_file(hx_path("policy.json"), "{}");
	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		const char *cfg = hx_path(hx_fmt("store-%zu.json", i));

		hx_write_file(cfg, hx_fmt("{\"policy_file\":\"policy.json\",\"listen\":\"127.0.0."
		                          "1:0\",\"store\":{\"type\":\"redis\",\"url\":\"%s\"}}",
		                          urls[i]));
		cr_expect_eq(
		        run(hx_fmt("store-%zu", i), (const char *[]){"--config", cfg, NULL}, &p), 1,
		        "%s was accepted", urls[i]);
		cr_expect_not_null(strstr(hx_read_file(p->err_path, NULL), "store.url"),
		                   "%s: the error does not name store.url", urls[i]);
	}
}

/* A FIFO nobody reads would block the gateway once its buffer filled. */
Test(it_cli, an_audit_log_that_is_a_pipe_is_refused_at_start)
{
	const char *cfg = hx_path("fifo.json");
	struct hx_proc *p;

	hx_write_file(hx_path("policy.json"), "{}");
	cr_assert_eq(mkfifo(hx_path("audit.fifo"), 0600), 0);
	hx_write_file(cfg, "{\"policy_file\":\"policy.json\",\"listen\":\"127.0.0.1:0\","
	                   "\"audit\":{\"path\":\"audit.fifo\"}}");
	cr_expect_eq(run("fifo", (const char *[]){"--config", cfg, NULL}, &p), 1);
	cr_expect(hx_file_contains(p->err_path, "audit.path must be a file"), "%s",
	          hx_read_file(p->err_path, NULL));
}

Test(it_cli, sigterm_stops_cleanly)
{
	struct hx_gw *gw = hx_gw_start(NULL, NULL);

	cr_expect_eq(hx_proc_stop(gw->proc), 0);
}

Test(it_cli, hash_key_prints_the_sha256_of_stdin)
{
	struct hx_proc *p;
	char bin[4096];
	const char *argv[4];

	/* The child runs in the test's temp dir, so the path must be absolute. */
	cr_assert_not_null(realpath(hx_gw_bin(), bin));
	argv[0] = "/bin/sh";
	argv[1] = "-c";
	argv[2] = hx_fmt("printf 'sk-test\\n' | %s hash-key", bin);
	argv[3] = NULL;

	p = hx_proc_start("hash", argv);
	cr_expect_eq(hx_proc_wait(p, 10000), 0);
	/* printf 'sk-test' | sha256sum */
	cr_expect_str_eq(hx_read_file(p->out_path, NULL),
	                 "f3abf2a6cc4f00987743db5f544ba345b4899ae31f326d8ee9c4816de153c9e0\n");
	cr_expect_eq(run("hash-args", (const char *[]){"hash-key", "extra", NULL}, &p), 2);
}

/* `gateway eval` on body, with args (NULL-terminated, after "eval"); the
 * exit status, with the process in *out. */
static int
eval_status(const char *name, const char *const *args, const char *body, struct hx_proc **out)
{
	char bin[4096];
	const char *argv[4], *cmd;
	size_t i;

	cr_assert_not_null(realpath(hx_gw_bin(), bin));
	hx_write_file(hx_path(hx_fmt("%s.body", name)), body);
	cmd = hx_fmt("%s eval", bin);
	for (i = 0; args[i]; i++)
		cmd = hx_fmt("%s '%s'", cmd, args[i]);
	argv[0] = "/bin/sh";
	argv[1] = "-c";
	argv[2] = hx_fmt("%s < %s", cmd, hx_path(hx_fmt("%s.body", name)));
	argv[3] = NULL;
	*out = hx_proc_start(name, argv);
	return hx_proc_wait(*out, 10000);
}

/* What a CI job gates on: 0 allow, 1 a refusal (deny or invalid), 2 no
 * decision, 3 a refusal in shadow mode. */
Test(it_cli, eval_exit_status_tells_the_decision)
{
	static const struct {
		const char *name, *config, *tenant, *body, *decision;
		int status;
	} cases[] = {
	        {"allow", "enforce.json", NULL, "{\"name\":\"a\"}", "allow", 0},
	        {"deny", "enforce.json", NULL, "{\"name\":\"a\",\"memory_limit\":\"64g\"}", "deny",
	         1},
	        {"tenant-deny", "enforce.json", "small", "{\"name\":\"a\",\"memory_limit\":\"4g\"}",
	         "deny", 1},
	        {"invalid", "enforce.json", NULL, "{\"name\":1}", "invalid", 1},
	        {"not-json", "enforce.json", NULL, "{\"name\":", "invalid", 1},
	        {"shadow", "shadow.json", NULL, "{\"name\":\"a\",\"memory_limit\":\"4g\"}",
	         "shadow_deny", 3},
	        {"shadow-allow", "shadow.json", NULL, "{\"name\":\"a\"}", "allow", 0},
	};
	struct hx_proc *p;
	size_t i;

	hx_write_file(hx_path("enforce-policy.json"),
	              hx_fmt("{\"memory_limit\":{\"max\":\"4g\"},\"tenants\":{\"small\":{"
	                     "\"api_keys_sha256\":[\"%s\"],\"policy\":{\"memory_limit\":{"
	                     "\"max\":\"1g\"}}}}}",
	                     hx_key_digest("sk-small")));
	hx_write_file(hx_path("shadow-policy.json"),
	              "{\"memory_limit\":{\"max\":\"1g\",\"mode\":\"shadow\"}}");
	hx_write_file(hx_path("enforce.json"), "{\"policy_file\":\"enforce-policy.json\"}");
	hx_write_file(hx_path("shadow.json"), "{\"policy_file\":\"shadow-policy.json\"}");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[5] = {"--config", hx_path(cases[i].config), NULL, NULL, NULL};
		json_t *out;

		if (cases[i].tenant) {
			args[2] = "--tenant";
			args[3] = cases[i].tenant;
		}
		cr_expect_eq(eval_status(cases[i].name, args, cases[i].body, &p), cases[i].status,
		             "%s: %s", cases[i].name, hx_read_file(p->err_path, NULL));
		out = hx_json(hx_read_file(p->out_path, NULL));
		cr_expect_str_eq(hx_str(out, "decision"), cases[i].decision, "%s", cases[i].name);
	}

	/* No decision: 2, and nothing on standard output. */
	cr_expect_eq(eval_status("no-tenant",
	                         (const char *[]){"--config", hx_path("enforce.json"), "--tenant",
	                                          "nobody", NULL},
	                         "{\"name\":\"a\"}", &p),
	             2);
	cr_expect_not_null(strstr(hx_read_file(p->err_path, NULL), "no tenant named nobody"));
	cr_expect_eq(eval_status("no-config",
	                         (const char *[]){"--config", hx_path("none.json"), NULL},
	                         "{\"name\":\"a\"}", &p),
	             2);
	hx_write_file(hx_path("bad-policy.json"), "{\"memory_limit\":{\"max\":\"3g\"}}");
	hx_write_file(hx_path("bad.json"), "{\"policy_file\":\"bad-policy.json\"}");
	cr_expect_eq(eval_status("bad-policy",
	                         (const char *[]){"--config", hx_path("bad.json"), NULL},
	                         "{\"name\":\"a\"}", &p),
	             2);
	cr_expect_not_null(strstr(hx_read_file(p->err_path, NULL), "memory_limit.max"));
	cr_expect_eq(eval_status("usage", (const char *[]){"--nope", NULL}, "{}", &p), 2);
	cr_expect_not_null(strstr(hx_read_file(p->err_path, NULL), "Exit status: 0 allow"));
	cr_expect_eq(eval_status("usage2", (const char *[]){NULL}, "{}", &p), 2);
	cr_expect_str_eq(hx_read_file(p->out_path, NULL), "");
}

/* --check is the gate: everything the start would check, in one pass,
 * each problem once at its file and path. A file the gateway must write
 * in a folder that does not exist, a signing key that cannot be read,
 * mistakes in the organization's policy (said once, not again under each
 * tenant) and a tenant's own; with --online, a redis store that does not
 * answer. */
Test(it_cli, check_reports_every_start_failure_in_one_pass)
{
	struct hx_proc *p;
	const char *err;
	int port = hx_free_port();

	hx_write_file(hx_path("p.json"),
	              "{\"memory_limit\":{\"max\":\"8g\"},\"network_policy\":{\"allowed_domains\":"
	              "[\"bad domain\"]},\"tenants\":{\"a\":{\"api_keys_sha256\":[\"nothex\"],"
	              "\"upstream\":{\"project\":\"proj "
	              "one\"},\"policy\":{\"skills\":{\"max_count\":-1}}},\"b\":{\"policy\":{}}}}");
	hx_write_file(
	        hx_path("g.json"),
	        hx_fmt("{\"policy_file\":\"p.json\",\"audit\":{\"path\":\"no/such/dir/audit.log\","
	               "\"signing_key_file\":\"nokey.pem\"},\"pid_file\":\"no/such/x.pid\","
	               "\"limits\":{\"spool_dir\":\"no/such/spool\"},"
	               "\"store\":{\"type\":\"redis\",\"url\":\"redis://127.0.0.1:%d/0\","
	               "\"timeout_ms\":500}}",
	               port));
	cr_expect_eq(
	        run("check",
	            (const char *[]){"--config", hx_path("g.json"), "--check", "--online", NULL},
	            &p),
	        1);
	err = hx_read_file(p->err_path, NULL);
	cr_assert_not_null(err);
	cr_expect_not_null(strstr(err, "p.json: memory_limit.max: must be one of"), "%s", err);
	cr_expect_not_null(strstr(err, "p.json: network_policy.allowed_domains[0]:"), "%s", err);
	cr_expect_not_null(strstr(err, "tenants.a.api_keys_sha256[0]: must be a SHA-256"), "%s",
	                   err);
	cr_expect_not_null(strstr(err, "tenants.a.policy.skills.max_count:"), "%s", err);
	cr_expect_not_null(strstr(err, "tenants.a.upstream.project: must be 1 to 128"), "%s", err);
	cr_expect_null(strstr(err, "tenants.b."), "b's only mistakes are the organization's: %s",
	               err);
	cr_expect_null(strstr(err, "tenants.a.policy.memory_limit"), "said once: %s", err);
	cr_expect_not_null(strstr(err, "audit.path: "), "%s", err);
	cr_expect_not_null(strstr(err, "does not exist"), "%s", err);
	cr_expect_not_null(strstr(err, "pid_file: "), "%s", err);
	cr_expect_not_null(strstr(err, "audit.signing_key_file: "), "%s", err);
	cr_expect_not_null(strstr(err, "limits.spool_dir: "), "%s", err);
	cr_expect_not_null(strstr(err, "store.url: the redis store did not answer"), "%s", err);
	cr_expect_null(strstr(err, "\"level\""), "no log lines in --check's output: %s", err);
}

#define PT_SECRET "pt-brokered-SECRET-5521"

/* `gateway policy test`: a table of cases against a policy with a tenant,
 * each decided as a request would be; which rules of the organization's
 * and the tenant's they exercised; a threshold a CI job fails on. */
Test(it_cli, policy_test_runs_cases_and_reports_rule_coverage)
{
	struct hx_proc *p;
	const char *out;

	setenv("GW_PT_SECRET", PT_SECRET, 1);
	hx_write_file(hx_path("pt-policy.json"),
	              "{\"memory_limit\":{\"max\":\"4g\"},"
	              "\"network_policy\":{\"allowed_domains\":[\"pypi.org\"],"
	              "\"allow_domain_secrets\":true},\"routes\":{\"default\":\"allow\"},"
	              "\"tenants\":{\"ml\":{\"policy\":{\"memory_limit\":{\"max\":\"1g\"}},"
	              "\"allow_client_secrets\":false,"
	              "\"secrets\":[{\"domain\":\"pypi.org\",\"name\":\"T\","
	              "\"value_env\":\"GW_PT_SECRET\"}]}}}");
	/* The policy is found next to the cases file, wherever the command
	 * runs from. */
	hx_write_file(
	        hx_path("pt.cases.json"),
	        "{\"policy\":\"pt-policy.json\",\"cases\":["
	        "{\"name\":\"org 4g\",\"body\":{\"name\":\"a\",\"memory_limit\":\"4g\"},"
	        "\"expect\":{\"decision\":\"allow\",\"forwarded\":{\"memory_limit\":\"4g\"}}},"
	        "{\"name\":\"ml "
	        "4g\",\"tenant\":\"ml\",\"body\":{\"name\":\"a\",\"memory_limit\":\"4g\"},"
	        "\"expect\":{\"decision\":\"deny\",\"code\":\"memory_limit_exceeded\","
	        "\"param\":\"memory_limit\"}},"
	        "{\"name\":\"ml client secret\",\"tenant\":\"ml\",\"body\":{\"name\":\"a\","
	        "\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":[\"pypi.org\"],"
	        "\"domain_secrets\":[{\"domain\":\"pypi.org\",\"name\":\"X\",\"value\":\"v\"}]}},"
	        "\"expect\":{\"decision\":\"deny\",\"code\":\"client_secrets_not_allowed\"}},"
	        "{\"name\":\"ml brokered\",\"tenant\":\"ml\",\"body\":{\"name\":\"a\","
	        "\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":[\"pypi.org\"]}},"
	        "\"expect\":{\"decision\":\"allow\",\"forwarded\":{\"network_policy\":"
	        "{\"domain_secrets\":[{\"name\":\"T\",\"value\":\"" PT_SECRET "\"}]}}}},"
	        "{\"name\":\"a tool's container\",\"operation\":\"createResponse\","
	        "\"body\":{\"model\":\"m\",\"tools\":[{\"type\":\"code_interpreter\","
	        "\"container\":{\"type\":\"auto\",\"memory_limit\":\"16g\"}}]},"
	        "\"expect\":{\"decision\":\"deny\",\"param\":\"tools[0].container.memory_limit\"}}"
	        "]}");
	cr_assert_eq(
	        run("pt", (const char *[]){"policy", "test", hx_path("pt.cases.json"), NULL}, &p),
	        0, "%s%s", hx_read_file(p->out_path, NULL), hx_read_file(p->err_path, NULL));
	out = hx_read_file(p->out_path, NULL);
	cr_expect_not_null(strstr(out, "5 cases, 0 failed"), "%s", out);
	cr_expect_not_null(strstr(out, "tenant \"ml\": 5 of 19 "), "%s", out);
	cr_expect_not_null(strstr(out, "the organization: 3 of 17 "), "%s", out);
	cr_expect_not_null(strstr(out, "not: memory_limit_default"), "%s", out);
	cr_expect_null(strstr(out, PT_SECRET), "%s", out);
	cr_expect_null(strstr(hx_read_file(p->err_path, NULL), PT_SECRET));

	/* Coverage short of the threshold fails the job. */
	cr_expect_eq(run("pt-threshold",
	                 (const char *[]){"policy", "test", "--threshold", "50",
	                                  hx_path("pt.cases.json"), NULL},
	                 &p),
	             1);
	cr_expect_not_null(strstr(hx_read_file(p->out_path, NULL), "below the threshold"));

	/* A case that does not hold fails, saying why. */
	hx_write_file(
	        hx_path("pt-fail.cases.json"),
	        "{\"policy\":\"pt-policy.json\",\"cases\":[{\"name\":\"wrong\",\"tenant\":\"ml\","
	        "\"body\":{\"name\":\"a\",\"memory_limit\":\"4g\"},"
	        "\"expect\":{\"decision\":\"allow\"}}]}");
	cr_expect_eq(run("pt-fail",
	                 (const char *[]){"policy", "test", hx_path("pt-fail.cases.json"), NULL},
	                 &p),
	             1);
	out = hx_read_file(p->out_path, NULL);
	cr_expect_not_null(strstr(out, "FAIL  wrong: want allow, got deny memory_limit_exceeded"),
	                   "%s", out);

	/* Cases that cannot be run are a usage error, not a failure. */
	hx_write_file(
	        hx_path("pt-bad.cases.json"),
	        "{\"policy\":\"pt-policy.json\",\"cases\":[{\"name\":\"x\",\"tenant\":\"nobody\","
	        "\"expect\":{\"decision\":\"allow\"}}]}");
	cr_expect_eq(run("pt-bad",
	                 (const char *[]){"policy", "test", hx_path("pt-bad.cases.json"), NULL},
	                 &p),
	             2);
	cr_expect_not_null(strstr(hx_read_file(p->err_path, NULL), "no tenant nobody"));
	hx_write_file(hx_path("pt-bad2.cases.json"),
	              "{\"policy\":\"pt-policy.json\",\"cases\":[{\"name\":\"x\","
	              "\"expect\":{\"decision\":\"maybe\"}}]}");
	cr_expect_eq(run("pt-bad2",
	                 (const char *[]){"policy", "test", hx_path("pt-bad2.cases.json"), NULL},
	                 &p),
	             2);
	cr_expect_eq(run("pt-usage", (const char *[]){"policy", "check", NULL}, &p), 2);
	cr_expect_eq(run("pt-threshold-bad",
	                 (const char *[]){"policy", "test", "--threshold", "x",
	                                  hx_path("pt.cases.json"), NULL},
	                 &p),
	             2);
}

/* A tenant's secret in a value_file named relative to the policy file is
 * read from the policy's folder, wherever the command runs from (here the
 * repository, not the folder the policy is in). */
Test(it_cli, a_relative_value_file_is_found_beside_the_policy)
{
	struct hx_proc *p;
	char cwd[512];

	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(mkdir(hx_path("pol"), 0700), 0);
	hx_write_file(hx_path("pol/bk.txt"), "file-SECRET-8812\n");
	hx_write_file(hx_path("pol/policy.json"),
	              "{\"network_policy\":{\"allowed_domains\":[\"pypi.org\"],"
	              "\"allow_domain_secrets\":true},"
	              "\"tenants\":{\"ml\":{\"secrets\":[{\"domain\":\"pypi.org\",\"name\":\"T\","
	              "\"value_file\":\"bk.txt\"}]}}}");
	hx_write_file(hx_path("pol/vf.cases.json"),
	              "{\"policy\":\"policy.json\",\"cases\":[{\"name\":\"brokered from the file\","
	              "\"tenant\":\"ml\",\"body\":{\"name\":\"a\",\"network_policy\":{\"type\":"
	              "\"allowlist\",\"allowed_domains\":[\"pypi.org\"]}},\"expect\":{\"decision\":"
	              "\"allow\",\"forwarded\":{\"network_policy\":{\"domain_secrets\":[{\"name\":"
	              "\"T\",\"value\":\"file-SECRET-8812\"}]}}}}]}");
	cr_assert_neq(strcmp(cwd, hx_path("pol")), 0);
	cr_expect_eq(run("vf",
	                 (const char *[]){"policy", "test", hx_path("pol/vf.cases.json"), NULL},
	                 &p),
	             0, "%s%s", hx_read_file(p->out_path, NULL), hx_read_file(p->err_path, NULL));
	cr_expect_null(strstr(hx_read_file(p->out_path, NULL), "file-SECRET-8812"));
}

/* A brokered secret's file that holds a NUL byte or bytes that are not
 * UTF-8 is refused when the policy loads: its value could not go into the
 * forwarded JSON as written (a NUL-led one would even read as a spooled
 * string's stand-in). */
Test(it_cli, a_secret_file_holding_a_nul_or_not_utf8_is_refused)
{
	static const char nul[] = "ab\0cd";
	struct hx_proc *p;
	FILE *f;

	cr_assert_eq(mkdir(hx_path("sec"), 0700), 0);
	f = fopen(hx_path("sec/nul.txt"), "wb");
	cr_assert_not_null(f);
	fwrite(nul, 1, sizeof(nul) - 1, f);
	fclose(f);
	hx_write_file(hx_path("sec/latin1.txt"), "caf\xe9");
	hx_write_file(hx_path("sec/policy.json"),
	              "{\"network_policy\":{\"allowed_domains\":[\"pypi.org\"],"
	              "\"allow_domain_secrets\":true},\"tenants\":{\"ml\":{\"secrets\":["
	              "{\"domain\":\"pypi.org\",\"name\":\"A\",\"value_file\":\"nul.txt\"},"
	              "{\"domain\":\"pypi.org\",\"name\":\"B\",\"value_file\":\"latin1.txt\"}]}}}");
	hx_write_file(hx_path("sec/g.json"), "{\"policy_file\":\"policy.json\"}");
	cr_expect_eq(run("nul",
	                 (const char *[]){"--config", hx_path("sec/g.json"), "--check", NULL}, &p),
	             1);
	cr_expect_not_null(strstr(hx_read_file(p->err_path, NULL), "nul.txt: it holds a NUL byte"),
	                   "%s", hx_read_file(p->err_path, NULL));
	cr_expect_not_null(
	        strstr(hx_read_file(p->err_path, NULL), "latin1.txt: it is not UTF-8 text"), "%s",
	        hx_read_file(p->err_path, NULL));
}

/* workers: "auto" is one event loop per core this process may use: under
 * taskset with one core, one; a word other than "auto" is refused. */
Test(it_cli, workers_auto_follows_the_cores_the_process_may_use)
{
	struct hx_proc *p;
	const char *argv[8];
	char bin[4096];

	cr_assert_not_null(realpath(hx_gw_bin(), bin));
	hx_write_file(
	        hx_path("auto.json"),
	        hx_fmt("{\"listen\":\"127.0.0.1:%d\",\"workers\":\"auto\",\"audit\":{"
	               "\"path\":\"-\"},\"store\":{\"path\":\"\"},\"policy_file\":\"p.json\"}",
	               hx_free_port()));
	hx_write_file(hx_path("p.json"), "{}");
	hx_write_file(hx_path("bad.json"), "{\"workers\":\"many\",\"policy_file\":\"p.json\"}");
	cr_expect_eq(run("auto-check",
	                 (const char *[]){"--config", hx_path("auto.json"), "--check", NULL}, &p),
	             0, "%s", hx_read_file(p->err_path, NULL));
	cr_expect_eq(run("bad-check",
	                 (const char *[]){"--config", hx_path("bad.json"), "--check", NULL}, &p),
	             1);
	cr_expect_not_null(strstr(hx_read_file(p->err_path, NULL), "workers: must be a number"));
	/* Served under taskset on one core: one loop, and the log says so. */
	argv[0] = "/usr/bin/taskset";
	argv[1] = "-c";
	argv[2] = "0";
	argv[3] = bin;
	argv[4] = "--config";
	argv[5] = hx_path("auto.json");
	argv[6] = NULL;
	p = hx_proc_start("auto-serve", argv);
	cr_expect(hx_wait_contains(p->err_path, "workers \\\"auto\\\": 1 event loops", 5000), "%s",
	          hx_read_file(p->err_path, NULL));
	hx_proc_stop(p);
}
