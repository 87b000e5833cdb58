/*
 * it_tlog: the audit log as a transparency log, checked by an independent
 * implementation. tests/audit/verify.py (Python, written from the specs)
 * recomputes the tree of what the real gateway wrote, verifies its signed
 * checkpoints with the public key and the proofs `audit-prove` prints, and
 * catches, with the gateway's own `audit-verify`, an edited record, a
 * reordering, a removed line, a truncated tail (with --state) and a log
 * rewritten to the same size and signed again with the stolen key (with
 * --state). An idle gateway signs every record within
 * checkpoint_interval_ms; a witness's cosignature is stored, and a witness
 * that fails is retried and counted; checkpoints reach Redis; the tree
 * runs across rotated files; a wrong key is named as such.
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TestSuite(it_tlog, .init = hx_init, .fini = hx_fini, .timeout = 120);

#define ORIGIN "test.example/audit"

/* Runs a shell command line in the test's folder and returns its exit
 * status, with its stdout (and stderr, when the command sends it there) in
 * *out. Not through hx_proc_start: a test here runs dozens of commands,
 * more than the harness keeps processes for, and each has ended when this
 * returns. */
static int
run(const char *cmd, const char **out)
{
	static int n;
	const char *file = hx_path(hx_fmt("cmd%d.out", n++));
	int st = system(hx_fmt("cd '%s' && { %s\n} >'%s' 2>>cmd.stderr", hx_tmpdir(), cmd, file));

	if (out)
		*out = hx_read_file(file, NULL);
	cr_assert(st != -1 && WIFEXITED(st), "%s: did not run", cmd);
	return WEXITSTATUS(st);
}

static const char *
gw_bin(void)
{
	static char bin[4096];

	cr_assert_not_null(realpath(hx_gw_bin(), bin));
	return bin;
}

/* python3 tests/audit/verify.py, the independent verifier. */
static const char *
pyverify(void)
{
	static char path[4096];

	cr_assert_not_null(realpath(hx_fmt("%s/../audit/verify.py", hx_data_dir()), path),
	                   "tests/audit/verify.py not found from %s", hx_data_dir());
	return hx_fmt("python3 %s", path);
}

static void
make_keys(void)
{
	cr_assert_eq(run("openssl genpkey -algorithm ed25519 -out sign.pem && "
	                 "openssl pkey -in sign.pem -pubout -out sign.pub && "
	                 "openssl genpkey -algorithm ed25519 -out other.pem && "
	                 "openssl pkey -in other.pem -pubout -out other.pub",
	                 NULL),
	             0);
}

static struct hx_gw *
start(const char *extra)
{
	make_keys();
	return hx_gw_start(
	        "{\"network_policy\":{\"allowed_domains\":[\"api.example.com\"]}}",
	        hx_fmt("{\"audit\":{\"signing_key_file\":\"sign.pem\",\"origin\":\"" ORIGIN
	               "\"%s}}",
	               extra ? extra : ""));
}

/* Sends n requests, mixed (allowed, invalid, denied); the x-request-id of
 * the allowed ones go to ids (room for n), if given. */
static size_t
traffic(const struct hx_gw *gw, int n, const char *tag, const char **ids)
{
	size_t got = 0;
	int i;

	for (i = 0; i < n; i++) {
		const char *body = i % 3 == 0   ? hx_fmt("{\"name\":\"%s-%d\"}", tag, i)
		                   : i % 3 == 1 ? "{\"name\":1}"
		                                : "{\"name\":\"big\",\"memory_limit\":\"64g\"}";
		struct hx_resp *r =
		        hx_http("POST", hx_gw_url(gw, "/v1/containers"), NULL, body, strlen(body));

		cr_assert(r->status == 200 || r->status == 400 || r->status == 403, "%ld",
		          r->status);
		if (ids && r->status == 200 && hx_resp_header(r, "x-request-id"))
			ids[got++] = hx_fmt("%s", hx_resp_header(r, "x-request-id"));
		hx_resp_free(r);
	}
	return got;
}

static int
gw_verify(const char *how, const char *files, const char **out)
{
	return run(hx_fmt("%s audit-verify %s %s 2>&1", gw_bin(), how, files), out);
}

static int
py_verify(const char *how, const char *files, const char **out)
{
	return run(hx_fmt("%s --public-key sign.pub %s %s 2>&1", pyverify(), how, files), out);
}

/* A copy of a log with lines (1-based) changed by fn. */
static void
tamper(const char *from, const char *to, void (*fn)(char **lines, size_t *n, size_t at), size_t at)
{
	size_t len, n = 0, i;
	char *text = strdup(hx_read_file(from, &len)), *p, **lines = calloc(20000, sizeof(char *));
	FILE *f;

	cr_assert(text && lines);
	for (p = strtok(text, "\n"); p && n < 20000; p = strtok(NULL, "\n"))
		lines[n++] = p;
	fn(lines, &n, at - 1);
	f = fopen(to, "w");
	cr_assert_not_null(f);
	for (i = 0; i < n; i++)
		fprintf(f, "%s\n", lines[i]);
	fclose(f);
	free(lines);
	free(text);
}

static void
edit_record(char **lines, size_t *n, size_t at)
{
	char *d = strstr(lines[at], "\"decision\":\"deny\"");

	(void)n;
	cr_assert_not_null(d, "line %zu is not a denial: %s", at + 1, lines[at]);
	/* A denial rewritten as allowed: still JSON, same length. */
	memcpy(d, "\"decision\":\"allo\"", 17);
}

static void
swap_lines(char **lines, size_t *n, size_t at)
{
	char *t = lines[at];

	(void)n;
	lines[at] = lines[at + 1];
	lines[at + 1] = t;
}

static void
delete_line(char **lines, size_t *n, size_t at)
{
	memmove(&lines[at], &lines[at + 1], (*n - at - 1) * sizeof(*lines));
	(*n)--;
}

/* Only the lines before the one at `at`. */
static void
keep_head(char **lines, size_t *n, size_t at)
{
	(void)lines;
	*n = at;
}

/* The 1-based number of the first line of type with decision, after line
 * from; 0 if none. */
static size_t
find_line(const char *path, const char *needle, size_t from)
{
	const char *text = hx_read_file(path, NULL), *p = text, *nl;
	size_t no = 1;

	for (; p && *p; p = nl + 1, no++) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			break;
		if (no > from && strstr(hx_fmt("%.*s", (int)(nl - p), p), needle))
			return no;
	}
	return 0;
}

static size_t
count_lines(const char *path, const char *needle)
{
	const char *text = hx_read_file(path, NULL), *p = text, *nl;
	size_t n = 0;

	for (; p && *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			break;
		n += strstr(hx_fmt("%.*s", (int)(nl - p), p), needle) != NULL;
	}
	return n;
}

Test(it_tlog, python_verifies_the_tree_the_checkpoints_and_the_proofs)
{
	struct hx_gw *gw = start(",\"checkpoint_every\":40");
	const char *ids[200], *out, *note, *cfg;
	size_t n, i;
	static const int olds[] = {0, 1, 7, 64, 100};

	n = traffic(gw, 150, "a", ids);
	cr_assert_geq(n, 40);
	cr_assert_eq(hx_gw_stop(gw), 0);
	cfg = hx_fmt("--config %s", gw->config_path);

	cr_expect_eq(gw_verify("--public-key sign.pub", "audit.log", &out), 0, "%s", out);
	cr_expect_not_null(strstr(out, "audit OK: "), "%s", out);
	cr_expect_null(strstr(out, "no checkpoint covers"),
	               "the shutdown checkpoint covers all: %s", out);
	cr_expect_eq(py_verify("", "audit.log", &out), 0, "%s", out);
	cr_expect_not_null(strstr(out, "OK "), "%s", out);

	/* The latest checkpoint, exactly the note's bytes. */
	cr_assert_eq(run(hx_fmt("%s audit-checkpoint %s audit.log", gw_bin(), cfg), &note), 0);
	cr_expect_eq(strncmp(note, ORIGIN "\n", strlen(ORIGIN) + 1), 0, "%s", note);
	cr_expect_not_null(strstr(note, "\n\n\xe2\x80\x94 " ORIGIN " "), "%s", note);
	cr_expect_eq(note[strlen(note) - 1], '\n');

	/* Inclusion proofs of some requests, checked by Python. */
	for (i = 0; i < n; i += n / 5) {
		cr_assert_eq(run(hx_fmt("%s audit-prove %s audit.log %s > proof.json", gw_bin(),
		                        cfg, ids[i]),
		                 NULL),
		             0, "audit-prove %s", ids[i]);
		cr_expect_not_null(
		        strstr(hx_read_file(hx_path("proof.json"), NULL), "\"leaf_index\""));
		cr_expect_eq(py_verify(hx_fmt("--inclusion proof.json --request-id %s", ids[i]),
		                       "audit.log", &out),
		             0, "%s: %s", ids[i], out);
		cr_expect_not_null(strstr(out, "inclusion of leaf"), "%s", out);
	}
	/* A request nobody made. */
	cr_expect_eq(run(hx_fmt("%s audit-prove %s audit.log req_nobody", gw_bin(), cfg), NULL), 1);

	/* Consistency from earlier sizes to the latest checkpoint. */
	for (i = 0; i < sizeof(olds) / sizeof(*olds); i++) {
		cr_assert_eq(run(hx_fmt("%s audit-prove %s --consistency %d audit.log > cons.json",
		                        gw_bin(), cfg, olds[i]),
		                 NULL),
		             0);
		cr_expect_eq(py_verify("--consistency cons.json", "audit.log", &out), 0,
		             "from %d: %s", olds[i], out);
	}
}

Test(it_tlog, an_edit_a_reordering_or_a_removal_is_caught_with_the_public_key_alone)
{
	struct hx_gw *gw = start(",\"checkpoint_every\":25");
	const char *out;
	size_t at;

	traffic(gw, 90, "b", NULL);
	cr_assert_eq(hx_gw_stop(gw), 0);
	at = find_line(gw->audit_path, "\"decision\":\"deny\"", 30);
	cr_assert_gt(at, 0);

	tamper(gw->audit_path, hx_path("edited.log"), edit_record, at);
	cr_expect_eq(gw_verify("--public-key sign.pub", "edited.log", &out), 1, "%s", out);
	cr_expect_not_null(strstr(out, "since the previous checkpoint"), "%s", out);
	cr_expect_null(strstr(out, "not signed by this key"), "%s", out);
	cr_expect_eq(py_verify("", "edited.log", &out), 1, "%s", out);
	cr_expect_not_null(strstr(out, "does not match"), "%s", out);

	tamper(gw->audit_path, hx_path("swapped.log"), swap_lines, at);
	cr_expect_eq(gw_verify("--public-key sign.pub", "swapped.log", &out), 1, "%s", out);
	cr_expect_eq(py_verify("", "swapped.log", &out), 1, "%s", out);
	cr_expect_not_null(strstr(out, "does not match"), "%s", out);

	tamper(gw->audit_path, hx_path("removed.log"), delete_line, at);
	cr_expect_eq(gw_verify("--public-key sign.pub", "removed.log", &out), 1, "%s", out);
	cr_expect_eq(py_verify("", "removed.log", &out), 1, "%s", out);
}

Test(it_tlog, a_truncated_tail_and_a_log_rewritten_to_the_same_size_are_caught_with_state)
{
	struct hx_gw *gw = start(",\"checkpoint_every\":20");
	const char *out;
	size_t cut;

	traffic(gw, 60, "c", NULL);
	/* The gateway only: the stub stays for the second run. */
	cr_assert_eq(hx_proc_stop(gw->proc), 0);
	cr_assert_eq(gw_verify("--public-key sign.pub --state gw.state", "audit.log", &out), 0,
	             "%s", out);
	cr_expect_not_null(strstr(out, "state: gw.state now holds"), "%s", out);
	cr_assert_eq(py_verify("--state py.state", "audit.log", &out), 0, "%s", out);
	cr_assert_eq(
	        run("cp gw.state gw1.state && cp gw.state gw2.state && cp py.state py1.state && "
	            "cp py.state py2.state",
	            NULL),
	        0);

	/* The tail cut off after an earlier checkpoint: on its own the log
	 * still verifies, so only the state can tell. */
	cut = find_line(gw->audit_path, "\"type\":\"checkpoint\"", 0);
	cr_assert_gt(cut, 0);
	tamper(gw->audit_path, hx_path("cut.log"), keep_head, cut + 1);
	cr_expect_eq(gw_verify("--public-key sign.pub", "cut.log", &out), 0, "%s", out);
	cr_expect_eq(py_verify("", "cut.log", &out), 0, "%s", out);
	cr_expect_eq(gw_verify("--public-key sign.pub --state gw1.state", "cut.log", &out), 1, "%s",
	             out);
	cr_expect_not_null(strstr(out, "shorter"), "%s", out);
	cr_expect_eq(py_verify("--state py1.state", "cut.log", &out), 1, "%s", out);
	cr_expect_not_null(strstr(out, "shorter"), "%s", out);

	/* Whoever holds the disk and the signing key writes another log of as
	 * many records and signs it: it verifies with the public key, but not
	 * against what was verified before. The gateway itself forges it. */
	cr_assert_eq(rename(gw->audit_path, hx_path("first.log")), 0);
	hx_gw_launch(gw);
	traffic(gw, 60, "forged", NULL);
	cr_assert_eq(hx_gw_stop(gw), 0);
	cr_expect_eq(gw_verify("--public-key sign.pub", "audit.log", &out), 0, "%s", out);
	cr_expect_eq(py_verify("", "audit.log", &out), 0, "%s", out);
	cr_expect_eq(gw_verify("--public-key sign.pub --state gw2.state", "audit.log", &out), 1,
	             "%s", out);
	cr_expect_not_null(strstr(out, "rewritten"), "%s", out);
	cr_expect_eq(py_verify("--state py2.state", "audit.log", &out), 1, "%s", out);
	cr_expect_not_null(strstr(out, "rewritten"), "%s", out);
	/* The state moves on only with a log that extends it. */
	cr_expect_eq(gw_verify("--public-key sign.pub --state gw.state", "first.log", &out), 0,
	             "%s", out);
}

Test(it_tlog, an_idle_gateway_signs_every_record_within_the_interval)
{
	struct hx_gw *gw = start(",\"checkpoint_interval_ms\":300");
	const char *out;
	int i;

	traffic(gw, 5, "d", NULL);
	hx_sleep_ms(1000);
	/* A still copy of the live log: the gateway is stopped meanwhile, so
	 * no line is half-written in it. A tick writes an idle line, then its
	 * checkpoint: a copy taken between the two is taken again. */
	for (i = 0; i < 20; i++) {
		cr_assert_eq(kill(gw->proc->pid, SIGSTOP), 0);
		cr_assert_eq(run("cp audit.log live.log", NULL), 0);
		cr_assert_eq(kill(gw->proc->pid, SIGCONT), 0);
		if (run("tail -n 1 live.log | grep -q '^{\"type\":\"checkpoint\",'", NULL) == 0)
			break;
		hx_sleep_ms(50);
	}
	cr_expect_gt(count_lines(hx_path("live.log"), "\"type\":\"idle\""), 0,
	             "an idle interval is marked");
	cr_expect_eq(gw_verify("--public-key sign.pub", "live.log", &out), 0, "%s", out);
	cr_expect_null(strstr(out, "no checkpoint covers"), "%s", out);
	cr_expect_eq(py_verify("", "live.log", &out), 0, "%s", out);
	cr_expect_null(strstr(out, "not yet covered"), "%s", out);
	cr_assert_eq(hx_gw_stop(gw), 0);
}

Test(it_tlog, a_witness_cosigns_and_one_that_fails_is_retried_and_counted)
{
	/* A cosignature line of some witness key: base64 of 72 bytes. */
	const char *cosig =
	        "\xe2\x80\x94 witness.example/w1 "
	        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7"
	        "PD0+P0BBQkNERUZH\n";
	int admin = hx_free_port();
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *reqs, *req, *cfg, *body = json_string(cosig);
	const char *out, *ct;
	char *body_json = json_dumps(body, JSON_ENCODE_ANY);
	size_t i, posts = 0;

	make_keys();
	gw = hx_gw_prepare(NULL, hx_fmt("{\"admin_listen\":\"127.0.0.1:%d\",\"audit\":{"
	                                "\"signing_key_file\":\"sign.pem\",\"origin\":\"" ORIGIN
	                                "\",\"checkpoint_every\":10}}",
	                                admin));
	/* The stub is the witness too: its URL is known only now. */
	cfg = json_load_file(gw->config_path, 0, NULL);
	cr_assert_not_null(cfg);
	json_object_set_new(json_object_get(cfg, "audit"), "witness_url",
	                    json_string(hx_fmt("%s/witness", gw->stub->url)));
	cr_assert_eq(json_dump_file(cfg, gw->config_path, 0), 0);
	json_decref(cfg);
	hx_stub_next(hx_fmt("[{\"match\":\"/witness\",\"status\":503,\"body\":\"busy\"},"
	                    "{\"match\":\"/witness\",\"status\":200,\"body\":%s,\"repeat\":100}]",
	                    body_json));
	free(body_json);
	json_decref(body);
	hx_gw_launch(gw);
	traffic(gw, 12, "w", NULL);
	/* The first POST fails; the next, a second later, is cosigned. */
	cr_expect(hx_wait_contains(gw->audit_path, "\"cosigned\":true", 8000),
	          "no cosigned checkpoint: %s", hx_read_file(gw->err_path, NULL));
	r = hx_http("GET", hx_fmt("http://127.0.0.1:%d/metrics", admin), NULL, NULL, 0);
	cr_expect_not_null(strstr(r->body, "gateway_audit_anchor_failures_total 1\n"), "%s",
	                   r->body);
	cr_assert_eq(hx_proc_stop(gw->proc), 0);
	cr_expect(hx_file_contains(gw->err_path, "the witness (audit.witness_url) did not take"),
	          "%s", hx_read_file(gw->err_path, NULL));

	reqs = hx_stub_requests();
	json_array_foreach(reqs, i, req)
	{
		if (strstr(hx_str(req, "uri"), "/witness") == NULL)
			continue;
		posts++;
		cr_expect_str_eq(hx_str(req, "method"), "POST");
		ct = hx_str(json_object_get(req, "headers"), "content-type");
		cr_expect(ct && strncmp(ct, "text/plain", 10) == 0, "%s", ct ? ct : "none");
		cr_expect_eq(strncmp(hx_str(req, "body"), ORIGIN "\n", strlen(ORIGIN) + 1), 0, "%s",
		             hx_str(req, "body"));
	}
	cr_expect_geq(posts, 2);
	/* The stored copy carries the witness's line; both verifiers ignore
	 * it (not their key) and still verify the gateway's. */
	cr_expect_eq(gw_verify("--public-key sign.pub", "audit.log", &out), 0, "%s", out);
	cr_expect_eq(py_verify("", "audit.log", &out), 0, "%s", out);
	cr_assert_eq(
	        run(hx_fmt("%s audit-checkpoint --public-key sign.pub audit.log", gw_bin()), &out),
	        0);
	cr_expect_not_null(strstr(out, cosig), "the latest checkpoint is the cosigned one: %s",
	                   out);
}

Test(it_tlog, checkpoints_reach_redis)
{
	int port;
	struct hx_proc *redis = hx_redis_start(&port);
	struct hx_gw *gw = start(
	        hx_fmt(",\"checkpoint_every\":10,\"anchor\":\"redis://127.0.0.1:%d/0\"", port));
	redisContext *c;
	redisReply *r;
	const char *note;

	traffic(gw, 30, "r", NULL);
	cr_assert_eq(hx_gw_stop(gw), 0);
	cr_assert_eq(
	        run(hx_fmt("%s audit-checkpoint --public-key sign.pub audit.log", gw_bin()), &note),
	        0);
	c = redisConnect("127.0.0.1", port);
	cr_assert(c && !c->err);
	r = redisCommand(c, "LRANGE gateway:audit:checkpoints:" ORIGIN " -1 -1");
	cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
	/* The last one pushed is the log's latest checkpoint. */
	cr_expect_str_eq(r->element[0]->str, note);
	freeReplyObject(r);
	redisFree(c);
	(void)redis;
}

Test(it_tlog, the_tree_runs_across_rotated_files)
{
	struct hx_gw *gw = start(",\"checkpoint_every\":15");
	const char *ids[60], *out, *whole, *part;
	size_t n;

	traffic(gw, 30, "e", NULL);
	cr_assert_eq(rename(gw->audit_path, hx_path("audit.log.1")), 0);
	cr_assert_eq(kill(gw->proc->pid, SIGUSR1), 0);
	hx_sleep_ms(300);
	n = traffic(gw, 30, "f", ids);
	cr_assert_gt(n, 0);
	cr_assert_eq(hx_gw_stop(gw), 0);

	cr_expect_eq(gw_verify("--public-key sign.pub", "audit.log.1 audit.log", &out), 0, "%s",
	             out);
	cr_expect_eq(py_verify("", "audit.log.1 audit.log", &out), 0, "%s", out);
	/* The later file alone continues the tree from its first segment. */
	cr_expect_eq(gw_verify("--public-key sign.pub", "audit.log", &out), 0, "%s", out);
	/* Out of order, the segments' counts disagree. */
	cr_expect_eq(gw_verify("--public-key sign.pub", "audit.log audit.log.1", &out), 1, "%s",
	             out);

	/* A record of the second file, proved from the whole series and from
	 * that file alone: the same proof, which Python checks. */
	cr_assert_eq(run(hx_fmt("%s audit-prove --public-key sign.pub audit.log.1 audit.log %s",
	                        gw_bin(), ids[0]),
	                 &whole),
	             0);
	cr_assert_eq(
	        run(hx_fmt("%s audit-prove --public-key sign.pub audit.log %s", gw_bin(), ids[0]),
	            &part),
	        0);
	cr_expect_str_eq(whole, part);
	hx_write_file(hx_path("proof.json"), whole);
	cr_expect_eq(py_verify(hx_fmt("--inclusion proof.json --request-id %s", ids[0]),
	                       "audit.log.1 audit.log", &out),
	             0, "%s", out);
}

Test(it_tlog, a_wrong_or_missing_key_is_named_not_taken_for_tampering)
{
	struct hx_gw *gw = start(NULL);
	const char *out;

	traffic(gw, 6, "k", NULL);
	cr_assert_eq(hx_gw_stop(gw), 0);
	cr_expect_eq(gw_verify("--public-key other.pub", "audit.log", &out), 1, "%s", out);
	cr_expect_not_null(strstr(out, "is not signed by this key"), "%s", out);
	cr_expect_null(strstr(out, "altered"), "%s", out);
	cr_expect_eq(gw_verify("--public-key missing.pub", "audit.log", &out), 2, "%s", out);
	cr_expect_not_null(strstr(out, "cannot read the public key"), "%s", out);
	cr_expect_eq(run(hx_fmt("%s --public-key other.pub audit.log 2>&1", pyverify()), &out), 1);
	cr_expect_not_null(strstr(out, "not signed by this key"), "%s", out);
}
