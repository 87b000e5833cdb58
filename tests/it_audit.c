/*
 * it_audit: the audit log as evidence. A long chain verifies; changing a
 * byte, deleting, swapping or truncating a line is caught at the right
 * line; checkpoints verify with the public key alone; a restart, a
 * rotation and a crash mid-line keep one chain; a full disk refuses
 * requests without losing or tearing a record; secrets appear only as
 * fingerprints.
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

TestSuite(it_audit, .init = hx_init, .fini = hx_fini, .timeout = 120);

#define AUDIT_KEY "audit-HMAC-key-0123456789abcdef"
#define SECRET    "sk-brokered-SECRET-5e2c"

/* Runs a command line through the shell in the test's folder; returns its
 * exit status and its stdout in *out. */
static int
sh(const char *name, const char *cmd, const char **out)
{
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	struct hx_proc *p = hx_proc_start(name, argv);
	int rc = hx_proc_wait(p, 60000);

	if (out)
		*out = hx_read_file(p->out_path, NULL);
	return rc;
}

static const char *
gw_bin(void)
{
	static char bin[4096];

	cr_assert_not_null(realpath(hx_gw_bin(), bin));
	return bin;
}

/* An Ed25519 key pair made with the openssl command line. */
static void
make_keys(void)
{
	cr_assert_eq(sh("keys",
	                "openssl genpkey -algorithm ed25519 -out sign.pem && "
	                "openssl pkey -in sign.pem -pubout -out sign.pub",
	                NULL),
	             0);
}

static struct hx_gw *
start(int checkpoint_every, const char *extra)
{
	setenv("GW_TEST_AUDIT_KEY", AUDIT_KEY, 1);
	make_keys();
	return hx_gw_start("{\"network_policy\":{\"allowed_domains\":[\"api.example.com\"],"
	                   "\"allow_domain_secrets\":true}}",
	                   hx_fmt("{\"audit\":{\"hmac_key_env\":\"GW_TEST_AUDIT_KEY\","
	                          "\"signing_key_file\":\"sign.pem\",\"checkpoint_every\":%d%s}}",
	                          checkpoint_every, extra ? extra : ""));
}

/* Sends n requests, mixed: allowed, invalid, denied. */
static void
traffic(const struct hx_gw *gw, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		const char *body = i % 3 == 0   ? "{\"name\":\"ok\"}"
		                   : i % 3 == 1 ? "{\"name\":1}"
		                                : "{\"name\":\"big\",\"memory_limit\":\"64g\"}";
		struct hx_resp *r =
		        hx_http("POST", hx_gw_url(gw, "/v1/containers"), NULL, body, strlen(body));

		cr_assert(r->status == 200 || r->status == 400 || r->status == 403, "%ld",
		          r->status);
		hx_resp_free(r);
	}
}

/* audit-verify on files (space-separated, in the test's folder). */
static int
verify(const struct hx_gw *gw, const char *how, const char *files, const char **out)
{
	static int n;
	const char *opts = strcmp(how, "config") == 0   ? hx_fmt("--config %s", gw->config_path)
	                   : strcmp(how, "public") == 0 ? "--public-key sign.pub"
	                                                : "--hmac-key-env GW_TEST_AUDIT_KEY";

	return sh(hx_fmt("verify%d", n++), hx_fmt("%s audit-verify %s %s", gw_bin(), opts, files),
	          out);
}

static size_t
count_type(const struct hx_gw *gw, const char *type)
{
	json_t *lines = hx_audit_lines(gw), *l;
	size_t i, n = 0;

	json_array_foreach(lines, i, l)
	{
		if (strcmp(hx_str(l, "type"), type) == 0)
			n++;
	}
	return n;
}

/* A copy of the audit log with one line (1-based) changed by fn. */
static void
tamper(const char *from, const char *to, void (*fn)(char **lines, size_t *n, size_t at), size_t at)
{
	size_t len, n = 0, i;
	char *text = strdup(hx_read_file(from, &len)), *p, *lines[20000];
	FILE *f;

	for (p = strtok(text, "\n"); p && n < 20000; p = strtok(NULL, "\n"))
		lines[n++] = p;
	fn(lines, &n, at - 1);
	f = fopen(to, "w");
	cr_assert_not_null(f);
	for (i = 0; i < n; i++)
		fprintf(f, "%s\n", lines[i]);
	fclose(f);
	free(text);
}

static void
flip_byte(char **lines, size_t *n, size_t at)
{
	char *ts = strstr(lines[at], "\"ts\":\"2");

	(void)n;
	cr_assert_not_null(ts, "%s", lines[at]);
	/* One digit of the time: still JSON, still the same shape. */
	ts[20] = ts[20] == '1' ? '2' : '1';
}

static void
delete_line(char **lines, size_t *n, size_t at)
{
	memmove(&lines[at], &lines[at + 1], (*n - at - 1) * sizeof(*lines));
	(*n)--;
}

static void
swap_lines(char **lines, size_t *n, size_t at)
{
	char *t = lines[at];

	(void)n;
	lines[at] = lines[at + 1];
	lines[at + 1] = t;
}

Test(it_audit, a_long_chain_verifies_and_every_kind_of_tampering_is_caught)
{
	struct hx_gw *gw = start(100, NULL);
	const char *out;
	size_t len;

	traffic(gw, 1500);
	cr_assert_eq(hx_gw_stop(gw), 0);
	cr_assert_eq(verify(gw, "config", "audit.log", &out), 0, "%s", out);
	cr_expect_not_null(strstr(out, "audit OK: "), "%s", out);
	cr_expect_geq(count_type(gw, "checkpoint"), 15);
	cr_expect_eq(json_array_size(hx_audit_records(gw)), 1500);
	cr_expect_eq(count_type(gw, "intent"), 500, "an intent before each forwarded request");
	/* The public key alone proves it up to the last checkpoint (written at
	 * shutdown, so all of it). */
	cr_expect_eq(verify(gw, "public", "audit.log", &out), 0, "%s", out);
	cr_expect_eq(verify(gw, "key", "audit.log", &out), 0, "%s", out);

	tamper(gw->audit_path, hx_path("flipped.log"), flip_byte, 700);
	cr_expect_eq(verify(gw, "config", "flipped.log", &out), 1);
	cr_expect_not_null(strstr(out, "flipped.log:700 "), "%s", out);
	cr_expect_not_null(strstr(out, "altered"), "%s", out);
	/* Without the HMAC key, the signed digest still catches it. */
	cr_expect_eq(verify(gw, "public", "flipped.log", &out), 1);
	cr_expect_not_null(strstr(out, "since the previous checkpoint"), "%s", out);

	tamper(gw->audit_path, hx_path("deleted.log"), delete_line, 800);
	cr_expect_eq(verify(gw, "config", "deleted.log", &out), 1);
	cr_expect_not_null(strstr(out, "deleted.log:800 "), "%s", out);
	cr_expect_not_null(strstr(out, "missing"), "%s", out);

	tamper(gw->audit_path, hx_path("swapped.log"), swap_lines, 900);
	cr_expect_eq(verify(gw, "config", "swapped.log", &out), 1);
	cr_expect_not_null(strstr(out, "swapped.log:900 "), "%s", out);

	/* Cut in the middle of a record, as a crash would leave it. */
	hx_read_file(gw->audit_path, &len);
	cr_assert_eq(sh("cut", hx_fmt("head -c %zu audit.log > cut.log", len - 40), NULL), 0);
	cr_expect_eq(verify(gw, "config", "cut.log", &out), 1);
	cr_expect_not_null(strstr(out, "torn"), "%s", out);
}

Test(it_audit, a_restart_continues_the_chain_and_a_crash_is_declared)
{
	struct hx_gw *gw = start(1000, NULL);
	const char *out;
	size_t len;
	FILE *f;

	traffic(gw, 30);
	cr_assert_eq(hx_proc_stop(gw->proc), 0);
	hx_gw_launch(gw);
	traffic(gw, 30);
	/* A crash mid-write: a line without its end, then a hard kill. */
	gw->proc->must_exit_clean = false;
	cr_assert_eq(kill(gw->proc->pid, SIGKILL), 0);
	hx_proc_wait(gw->proc, 5000);
	f = fopen(gw->audit_path, "a");
	fputs("{\"type\":\"request\",\"request_id\":\"req_torn\",\"dec", f);
	fclose(f);
	hx_gw_launch(gw);
	traffic(gw, 30);
	cr_assert_eq(hx_gw_stop(gw), 0);
	hx_read_file(gw->audit_path, &len);
	cr_expect_eq(verify(gw, "config", "audit.log", &out), 0, "%s", out);
	cr_expect_not_null(strstr(out, "torn by a crash"), "%s", out);
	cr_expect_eq(count_type(gw, "segment"), 3);
}

Test(it_audit, rotation_keeps_one_chain_across_files)
{
	struct hx_gw *gw = start(1000, NULL);
	const char *out;

	traffic(gw, 20);
	/* logrotate's way: move the file, then SIGUSR1. */
	cr_assert_eq(rename(gw->audit_path, hx_path("audit.log.1")), 0);
	cr_assert_eq(kill(gw->proc->pid, SIGUSR1), 0);
	usleep(300 * 1000);
	traffic(gw, 20);
	cr_assert_eq(hx_gw_stop(gw), 0);
	cr_expect_eq(verify(gw, "config", "audit.log.1 audit.log", &out), 0, "%s", out);
	cr_expect_eq(verify(gw, "public", "audit.log.1 audit.log", &out), 0, "%s", out);
	/* Out of order, they do not verify. */
	cr_expect_eq(verify(gw, "config", "audit.log audit.log.1", &out), 1, "%s", out);
}

Test(it_audit, max_bytes_rotates_by_itself)
{
	struct hx_gw *gw = start(1000, ",\"max_bytes\":20000");
	const char *out, *files;

	traffic(gw, 200);
	cr_assert_eq(hx_gw_stop(gw), 0);
	cr_assert_eq(sh("ls", "ls audit.log.* | sort | tr '\\n' ' '", &files), 0);
	cr_expect_gt(strlen(files), 0, "no rotated files");
	cr_expect_eq(verify(gw, "config", hx_fmt("%s audit.log", files), &out), 0, "%s", out);
}

Test(it_audit, a_secret_appears_only_as_its_fingerprint)
{
	struct hx_gw *gw = start(1000, NULL);
	unsigned char md[32];
	unsigned int mdlen = 0;
	char want[80] = "hmac-sha256:";
	struct hx_resp *r;
	json_t *rec, *s;
	size_t i;

	r = hx_http(
	        "POST", hx_gw_url(gw, "/v1/containers"), NULL,
	        "{\"name\":\"s\",\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":"
	        "[\"api.example.com\"],\"domain_secrets\":[{\"domain\":\"api.example.com\","
	        "\"name\":\"T\",\"value\":\"" SECRET "\"}]}}",
	        strlen("{\"name\":\"s\",\"network_policy\":{\"type\":\"allowlist\","
	               "\"allowed_domains\":[\"api.example.com\"],\"domain_secrets\":[{"
	               "\"domain\":\"api.example.com\",\"name\":\"T\",\"value\":\"" SECRET
	               "\"}]}}"));
	cr_assert_eq(r->status, 200, "%s", r->body);
	cr_assert_eq(hx_gw_stop(gw), 0);
	HMAC(EVP_sha256(), AUDIT_KEY, (int)strlen(AUDIT_KEY), (const unsigned char *)SECRET,
	     strlen(SECRET), md, &mdlen);
	for (i = 0; i < mdlen; i++)
		snprintf(want + 12 + 2 * i, 3, "%02x", md[i]);
	rec = json_array_get(hx_audit_records(gw), 0);
	s = json_array_get(
	        json_object_get(json_object_get(rec, "network_policy"), "domain_secrets"), 0);
	cr_expect_str_eq(hx_str(s, "value"), "[REDACTED]");
	cr_expect_str_eq(hx_str(s, "value_fingerprint"), want);
	cr_expect(!hx_file_contains(gw->audit_path, SECRET));
	cr_expect(!hx_file_contains(gw->err_path, SECRET));
	cr_expect(!hx_file_contains(gw->out_path, SECRET));
}

Test(it_audit, a_full_disk_refuses_requests_and_loses_no_record)
{
	struct hx_gw *gw;
	const char *out;
	struct hx_resp *r;
	int i, refused = 0;

	setenv("GW_TEST_AUDIT_KEY", AUDIT_KEY, 1);
	make_keys();
	gw = hx_gw_prepare(NULL, "{\"audit\":{\"hmac_key_env\":\"GW_TEST_AUDIT_KEY\","
	                         "\"signing_key_file\":\"sign.pem\",\"fsync\":\"always\"}}");
	hx_gw_launch(gw);
	traffic(gw, 10);
	/* The disk fills: the file may not grow past what it has now (plus a
	 * few bytes, so the next line is cut short mid-write). */
	hx_read_file(gw->audit_path, NULL);
	/* Only the soft limit: raising it back needs no privilege. */
	cr_assert_eq(
	        sh("full",
	           hx_fmt("prlimit --pid %d --fsize=$(( $(stat -c %%s audit.log) + 50 )):unlimited",
	                  (int)gw->proc->pid),
	           NULL),
	        0);
	for (i = 0; i < 10; i++) {
		r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), NULL, "{\"name\":\"x\"}", 12);
		refused += r->status == 503;
		usleep(50 * 1000);
	}
	cr_expect_geq(refused, 8, "%d of 10 refused", refused);
	cr_expect_eq(json_array_size(hx_stub_requests()), 4, "nothing unrecorded went up");
	/* Space again: the kept records go out, whole. */
	cr_assert_eq(sh("space",
	                hx_fmt("prlimit --pid %d --fsize=unlimited:unlimited", (int)gw->proc->pid),
	                NULL),
	             0);
	usleep(1200 * 1000);
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), NULL, "{\"name\":\"y\"}", 12);
	cr_expect_eq(r->status, 200, "%s", r->body);
	cr_assert_eq(hx_gw_stop(gw), 0);
	cr_expect_eq(verify(gw, "config", "audit.log", &out), 0, "%s", out);
	/* Every answered request has its record: 10 + 10 refused + 1. */
	cr_expect_eq(json_array_size(hx_audit_records(gw)), 21);
}
