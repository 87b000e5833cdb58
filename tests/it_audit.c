/*
 * it_audit: the audit log as evidence. A long chain verifies; changing a
 * byte, deleting, swapping or truncating a line is caught at the right
 * line; checkpoints verify with the public key alone; a restart, a
 * rotation and a crash mid-line keep one chain; a full disk refuses
 * requests without losing or tearing a record; secrets appear only as
 * fingerprints; and, seen through strace, each record is written before
 * its answer goes out and each intent before its request goes upstream.
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

/* A copy of the log with line at changed by fn fails to verify (how, as
 * verify takes it), naming that line and saying what. */
static void
expect_caught(const struct hx_gw *gw, const char *how, const char *name,
              void (*fn)(char **lines, size_t *n, size_t at), size_t at, const char *what)
{
	const char *out;

	tamper(gw->audit_path, hx_path(name), fn, at);
	cr_expect_eq(verify(gw, how, name, &out), 1, "%s", out);
	cr_expect_not_null(strstr(out, hx_fmt("%s:%zu ", name, at)), "%s", out);
	cr_expect_not_null(strstr(out, what), "%s", out);
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

	expect_caught(gw, "config", "flipped.log", flip_byte, 700, "altered");
	/* Without the HMAC key, the signed digest still catches it. */
	cr_expect_eq(verify(gw, "public", "flipped.log", &out), 1);
	cr_expect_not_null(strstr(out, "since the previous checkpoint"), "%s", out);

	expect_caught(gw, "config", "deleted.log", delete_line, 800, "missing");
	expect_caught(gw, "config", "swapped.log", swap_lines, 900, "");

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

/* A stretch of log in the first mac format (chain.h), as gateways before
 * the second wrote it: a segment without "mac_format", then records, each
 * mac the HMAC of the line's own text. Made here with OpenSSL's HMAC. */
static void
write_format1(const char *path, int n)
{
	char prev[65], text[512];
	unsigned char md[32];
	unsigned int mdlen = 0;
	FILE *f = fopen(path, "w");
	int i, j;

	cr_assert_not_null(f);
	memset(prev, '0', 64);
	prev[64] = '\0';
	for (i = 1; i <= n; i++) {
		if (i == 1)
			snprintf(text, sizeof(text),
			         "{\"type\":\"segment\",\"ts\":\"2026-01-01T00:00:00.000Z\","
			         "\"reason\":"
			         "\"start\",\"detail\":null,\"hmac\":true,\"tree_size\":0,"
			         "\"frontier\":[],\"seq\":1,\"prev\":\"%s\"}",
			         prev);
		else
			snprintf(text, sizeof(text),
			         "{\"type\":\"request\",\"ts\":\"2026-01-01T00:00:0%d.000Z\","
			         "\"request_id\":\"req_old%d\",\"status\":200,\"seq\":%d,\"prev\":"
			         "\"%s\"}",
			         i, i, i, prev);
		HMAC(EVP_sha256(), AUDIT_KEY, (int)strlen(AUDIT_KEY), (const unsigned char *)text,
		     strlen(text), md, &mdlen);
		for (j = 0; j < 32; j++)
			snprintf(prev + 2 * j, 3, "%02x", md[j]);
		text[strlen(text) - 1] = '\0'; /* the mac goes before the '}' */
		fprintf(f, "%s,\"mac\":\"%s\"}\n", text, prev);
	}
	fclose(f);
}

/* Logs written before the second mac format still verify, and a gateway
 * that takes over such a file goes on in the second from a new segment. */
Test(it_audit, a_log_of_the_first_mac_format_verifies_and_continues)
{
	struct hx_gw *gw;
	const char *out;

	write_format1(hx_path("audit.log"), 4);
	gw = start(1000, NULL);
	traffic(gw, 9);
	cr_assert_eq(hx_gw_stop(gw), 0);
	cr_expect_not_null(strstr(hx_read_file(gw->audit_path, NULL), "\"mac_format\":2"));
	cr_expect_eq(verify(gw, "key", "audit.log", &out), 0, "%s", out);
	cr_expect_eq(verify(gw, "config", "audit.log", &out), 0, "%s", out);
	cr_expect_not_null(strstr(out, "audit OK: "), "%s", out);
	/* A byte changed in the old stretch, and one in the new, are caught
	 * at their lines. */
	expect_caught(gw, "key", "old.log", flip_byte, 3, "altered");
	expect_caught(gw, "key", "new.log", flip_byte, 8, "altered");
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

/* However large a request, its record says who asked for what and what
 * became of it: a create of 60000 domains (1.2 MB) that a tenant's memory
 * cap refuses is recorded with its tenant, client, path and operation, and
 * its domains as a count, a digest and the first few. */
Test(it_audit, a_huge_request_is_recorded_with_who_and_what)
{
	const size_t n = 60000;
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *rec, *domains;
	const char *h[] = {"Authorization: Bearer sk-audit-tenant-KEY", NULL};
	char *body = malloc(n * 24 + 256), *o;
	size_t i;

	cr_assert_not_null(body);
	gw = hx_gw_start(
	        hx_fmt("{\"memory_limit\":{\"max\":\"4g\"},\"network_policy\":{\"allowed_domains\":"
	               "[\"*\"]},\"tenants\":{\"big\":{\"api_keys_sha256\":[\"%s\"],"
	               "\"policy\":{\"memory_limit\":{\"max\":\"1g\"}}}}}",
	               hx_key_digest("sk-audit-tenant-KEY")),
	        /* 1.4 MB of domains, decided whole (not refused as too large) */
	        "{\"limits\":{\"max_json_bytes\":4194304}}");
	o = body + sprintf(body, "{\"name\":\"huge\",\"memory_limit\":\"4g\",\"network_policy\":"
	                         "{\"type\":\"allowlist\",\"allowed_domains\":[");
	for (i = 0; i < n; i++)
		o += sprintf(o, "%s\"h%06zu.example.com\"", i ? "," : "", i);
	o += sprintf(o, "]}}");
	r = hx_http("POST", hx_gw_url(gw, "/v1/containers"), h, body, (size_t)(o - body));
	cr_expect_eq(r->status, 403, "%ld %s", r->status, r->body);
	free(body);
	rec = json_array_get(hx_audit_wait(gw, 1, 10000), 0);
	cr_assert_not_null(rec);
	cr_expect_str_eq(hx_str(rec, "tenant"), "big");
	cr_expect_str_eq(hx_str(rec, "client"), "127.0.0.1");
	cr_expect_str_eq(hx_str(rec, "method"), "POST");
	cr_expect_str_eq(hx_str(rec, "path"), "/v1/containers");
	cr_expect_str_eq(hx_str(rec, "operation"), "CreateContainer");
	cr_expect_str_eq(hx_str(rec, "decision"), "deny");
	cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 403);
	cr_expect_str_eq(hx_str(rec, "memory_limit"), "4g");
	domains = json_object_get(json_object_get(rec, "network_policy"), "allowed_domains");
	cr_expect_eq(json_integer_value(json_object_get(domains, "count")), (json_int_t)n);
	cr_expect_eq(strlen(hx_str(domains, "sha256") ? hx_str(domains, "sha256") : ""), 64);
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(domains, "first"), 0)),
	                 "h000000.example.com");
	cr_expect_lt(strlen(hx_read_file(gw->audit_path, NULL)), 64 * 1024, "the record is small");
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

/* ---- which came first, as strace saw the gateway's writes ---- */

/* Enough of each string for the id headers of an answer or a forwarded
 * request; audit lines are found by their bytes' place in the file, so
 * they need none of their text printed. */
#define TRACE_STRLEN "1024"
#define NOT_SEEN     ((size_t)-1)

/* One write-like call: the trace lines (1-based) where it began and where
 * it returned, its descriptor as strace -yy names it ("6</tmp/x/audit.log>",
 * "9<TCP:[127.0.0.1:P->127.0.0.1:Q]>"), the rest of its arguments as
 * printed, and what it returned (-1 for an error or not seen). */
struct sys_write {
	int tid;
	size_t entry, exit;
	char *fd;
	char *args;
	long long ret;
};

struct trace {
	struct sys_write *w;
	size_t n;
};

/* The number after a finished call's last ") = ", or -1. */
static long long
returned(const char *line)
{
	const char *p, *at = NULL;
	char *end;
	long long v;

	for (p = strstr(line, ") = "); p; p = strstr(p + 1, ") = "))
		at = p;
	if (at == NULL)
		return -1;
	v = strtoll(at + 4, &end, 10);
	return end == at + 4 ? -1 : v;
}

static bool
ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* Reads strace -f -tt -yy output, "TID TIME call(fd<name>, args) = ret";
 * with several threads a call may be split into "call(args <unfinished
 * ...>" and, later, after other threads' lines, "<... call resumed>) = ret". */
static void
trace_load(const char *path, struct trace *t)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *rest, *paren, *fd_end;
	size_t cap = 0, alloc = 0, lineno = 0, i;
	ssize_t len;
	int tid, off;

	cr_assert_not_null(f, "cannot read the trace %s", path);
	memset(t, 0, sizeof(*t));
	while ((len = getline(&line, &cap, f)) >= 0) {
		struct sys_write *w;
		bool unfinished;

		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		off = 0;
		if (sscanf(line, "%d %*s %n", &tid, &off) != 1 || off == 0)
			continue;
		rest = line + off;
		if (strncmp(rest, "<... ", 5) == 0) {
			for (i = t->n; i-- > 0;) {
				if (t->w[i].tid == tid && t->w[i].exit == NOT_SEEN) {
					t->w[i].exit = lineno;
					t->w[i].ret = returned(rest);
					break;
				}
			}
			continue;
		}
		/* Signals and exits have no descriptor. */
		paren = strchr(rest, '(');
		fd_end = paren ? strstr(paren, ">, ") : NULL;
		if (fd_end == NULL)
			continue;
		if (t->n == alloc) {
			alloc = alloc ? 2 * alloc : 64;
			t->w = realloc(t->w, alloc * sizeof(*t->w));
			cr_assert_not_null(t->w);
		}
		w = &t->w[t->n++];
		unfinished = ends_with(line, (size_t)len, " <unfinished ...>");
		w->tid = tid;
		w->entry = lineno;
		w->exit = unfinished ? NOT_SEEN : lineno;
		w->ret = unfinished ? -1 : returned(rest);
		w->fd = strndup(paren + 1, (size_t)(fd_end + 1 - (paren + 1)));
		w->args = strdup(fd_end + 3);
		cr_assert(w->fd && w->args);
	}
	free(line);
	fclose(f);
}

static void
trace_free(struct trace *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->w[i].fd);
		free(t->w[i].args);
	}
	free(t->w);
}

/* A line of the audit log and the trace line where its last byte was
 * written. */
struct logged {
	json_t *rec;
	size_t done;
};

/*
 * Places every line of gw's audit log in the trace. The audit writes are
 * added up by what they returned, in order (they are made one at a time,
 * under the log's lock): a line is whole once the running total passes its
 * last byte, so a line written in pieces counts from its last piece. Fails
 * the test unless the writes add up to the file exactly, since a write the
 * trace missed would put every later line in the wrong place. Returns an
 * array the caller frees, of *n lines.
 */
static struct logged *
place_lines(const struct hx_gw *gw, const struct trace *t, size_t *n)
{
	char real[4096];
	const char *text, *tag, *p, *nl;
	size_t len, wi = 0, lines = 0, last = NOT_SEEN, alloc = 0;
	long long total = 0;
	struct logged *out = NULL;

	cr_assert_not_null(realpath(gw->audit_path, real));
	tag = hx_fmt("<%s>", real);
	text = hx_read_file(gw->audit_path, &len);
	cr_assert_not_null(text);
	for (p = text; p < text + len; p = nl + 1) {
		long long end;

		nl = memchr(p, '\n', (size_t)(text + len - p));
		cr_assert_not_null(nl, "the audit log ends mid-line");
		end = (long long)(nl + 1 - text);
		for (; total < end && wi < t->n; wi++) {
			if (strstr(t->w[wi].fd, tag) == NULL)
				continue;
			total += t->w[wi].ret > 0 ? t->w[wi].ret : 0;
			last = t->w[wi].exit;
		}
		cr_assert_geq(total, end,
		              "the trace shows %lld bytes written to %s, the file has %zu", total,
		              real, len);
		if (lines == alloc) {
			alloc = alloc ? 2 * alloc : 32;
			out = realloc(out, alloc * sizeof(*out));
			cr_assert_not_null(out);
		}
		out[lines].rec = hx_json(hx_fmt("%.*s", (int)(nl - p), p));
		out[lines++].done = last;
	}
	for (; wi < t->n; wi++)
		if (strstr(t->w[wi].fd, tag) != NULL)
			total += t->w[wi].ret > 0 ? t->w[wi].ret : 0;
	cr_assert_eq(total, (long long)len,
	             "the trace shows %lld bytes written to %s, the file has %zu", total, real,
	             len);
	*n = lines;
	return out;
}

/* The line of the given type whose key is id, or NULL. */
static const struct logged *
find_line(const struct logged *l, size_t n, const char *type, const char *key, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const char *v = hx_str(l[i].rec, key);

		if (strcmp(hx_str(l[i].rec, "type"), type) == 0 && v && strcmp(v, id) == 0)
			return &l[i];
	}
	return NULL;
}

/* Whether a write's first string starts an answer (not an interim 100). */
static bool
starts_answer(const struct sys_write *w)
{
	const char *q = strchr(w->args, '"');

	return q && strncmp(q + 1, "HTTP/1.1 ", 9) == 0 && strncmp(q + 1, "HTTP/1.1 100 ", 13) != 0;
}

/* The trace line where the answer carrying x-request-id id began to go to
 * a client of port: the write on that connection that starts an answer, at
 * or before the one with the id's header (the same one unless the head went
 * out in pieces). NOT_SEEN if there is none. */
static size_t
answer_at(const struct trace *t, int port, const char *id)
{
	const char *client = hx_fmt("<TCP:[127.0.0.1:%d->", port);
	const char *header = hx_fmt("x-request-id: %s\\r\\n", id);
	size_t i, j;

	for (i = 0; i < t->n; i++) {
		if (strstr(t->w[i].fd, client) == NULL || strstr(t->w[i].args, header) == NULL)
			continue;
		for (j = i + 1; j-- > 0;)
			if (strcmp(t->w[j].fd, t->w[i].fd) == 0 && starts_answer(&t->w[j]))
				return t->w[j].entry;
		return NOT_SEEN;
	}
	return NOT_SEEN;
}

/* The trace line where the request with gateway id gid began to go
 * upstream (the gateway names it in X-Gateway-Request-Id), or NOT_SEEN. */
static size_t
forward_at(const struct trace *t, const char *gid)
{
	const char *header = hx_fmt("X-Gateway-Request-Id: %s\\r\\n", gid);
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strstr(t->w[i].fd, "<TCP:[") && strstr(t->w[i].args, header))
			return t->w[i].entry;
	return NOT_SEEN;
}

/*
 * Launches gw's gateway under strace, which logs every write-like call of
 * every thread with the file or socket it went to. gw->proc becomes
 * strace's process, which exits with the gateway's status. Returns the
 * gateway's own pid, to stop it by: strace holds off SIGTERM while it runs
 * a program with -o. Fails the test, saying so, if strace cannot run.
 */
static pid_t
launch_traced(struct hx_gw *gw, const char *trace)
{
	const char *version[] = {"strace", "-V", NULL};
	const char *argv[] = {"strace", "-f", "-tt", "-yy", "-s", TRACE_STRLEN, "-e",
	                      "trace=write,writev,sendmsg,sendto", "-o", trace,
	                      /* The shell leaves its pid, which exec keeps. */
	                      "/bin/sh", "-c", "echo $$ >gateway.pid && exec \"$@\"", "sh",
	                      gw_bin(), "--config", gw->config_path, NULL};
	struct hx_proc *p = hx_proc_start("strace-version", version);
	const char *pid_text;
	char *end;
	long pid;
	int i;

	cr_assert_eq(hx_proc_wait(p, 10000), 0,
	             "strace cannot run (status %d: %s); this test needs it to see the order of "
	             "the gateway's writes: install it (.ci/deps lists it, `make deps`)",
	             p->status, hx_read_file(p->err_path, NULL));
	/* LeakSanitizer stops the process with ptrace at exit, which a traced
	 * process cannot allow. */
	setenv("ASAN_OPTIONS",
	       getenv("ASAN_OPTIONS") ? hx_fmt("%s:detect_leaks=0", getenv("ASAN_OPTIONS"))
	                              : "detect_leaks=0",
	       1);
	gw->proc = hx_proc_start(gw->proc_name, argv);
	gw->proc->must_exit_clean = true;
	for (i = 0; hx_wait_port(gw->port, 20) != 0; i++) {
		cr_assert(hx_proc_alive(gw->proc) && i < 1500,
		          "the gateway under strace did not listen on %d (status %d):\n%s",
		          gw->port, gw->proc->status, hx_read_file(gw->err_path, NULL));
	}
	cr_assert_eq(hx_wait_file(hx_path("gateway.pid"), 5000), 0);
	pid_text = hx_read_file(hx_path("gateway.pid"), NULL);
	pid = strtol(pid_text, &end, 10);
	cr_assert(end != pid_text && *end == '\n' && pid > 0, "gateway.pid: %s", pid_text);
	return (pid_t)pid;
}

/* Sends a request and returns the x-request-id of its answer. */
static const char *
ask(const struct hx_gw *gw, const char *method, const char *path, const char *body, long want)
{
	struct hx_resp *r =
	        hx_http(method, hx_gw_url(gw, path), NULL, body, body ? strlen(body) : 0);
	const char *id = hx_resp_header(r, "x-request-id");

	cr_assert_eq(r->status, want, "%s %s: %ld %s%s", method, path, r->status, r->error,
	             r->body);
	cr_assert_not_null(id, "%s %s: no x-request-id", method, path);
	return id;
}

/*
 * The audit record is written before the client hears back, and a
 * forwarded request's intent before it goes upstream, on every path. The
 * trace gives the order of the write calls themselves. For one request the
 * record and the answer are written by the same worker thread, and strace
 * prints one thread's calls in the order it made them: a gateway that
 * answered first fails here every time, not when a race goes one way.
 * It sees the answer's write(2), not the call that queues it: conn_send
 * only queues (libevent freezes a socket bufferevent's output to outside
 * writes), and the answer leaves from the loop once finish() returns.
 */
Test(it_audit, every_record_is_written_before_its_answer_goes_out)
{
	struct hx_gw *gw = hx_gw_prepare(NULL, "{\"workers\":2}");
	const char *trace = hx_path("gateway.trace");
	const char *bad = "GET /v1/containers HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n";
	struct probe {
		const char *what;
		const char *id; /* the answer's x-request-id */
		bool forwarded;
	} p[8];
	const struct logged *rec, *intent;
	struct logged *lines;
	struct trace t;
	const char *raw, *at;
	size_t n = 0, nlines, i, answer, forward;
	pid_t pid = launch_traced(gw, trace);

	p[n++] = (struct probe){"an allowed create",
	                        ask(gw, "POST", "/v1/containers", "{\"name\":\"ok\"}", 200), true};
	/* The upstream's id replaces the gateway's in the answer. */
	hx_stub_next("{\"headers\":{\"x-request-id\":\"up_audit_order\"}}");
	p[n++] = (struct probe){"an allowed create the upstream names",
	                        ask(gw, "POST", "/v1/containers", "{\"name\":\"up\"}", 200), true};
	p[n++] = (struct probe){"a policy denial",
	                        ask(gw, "POST", "/v1/containers",
	                            "{\"name\":\"big\",\"memory_limit\":\"64g\"}", 403),
	                        false};
	p[n++] = (struct probe){"an invalid body",
	                        ask(gw, "POST", "/v1/containers", "{\"name\":1}", 400), false};
	p[n++] = (struct probe){"no such route", ask(gw, "GET", "/v1/nope", NULL, 404), false};
	/* Twice: libcurl tries a reused connection that closed once more. */
	hx_stub_next("{\"action\":\"close\",\"repeat\":2}");
	p[n++] = (struct probe){"an upstream failure",
	                        ask(gw, "POST", "/v1/containers", "{\"name\":\"x\"}", 502), true};
	raw = hx_raw(gw->port, bad, strlen(bad), 5000, 0, NULL);
	cr_assert(raw && strncmp(raw, "HTTP/1.1 400 ", 13) == 0, "%s", raw ? raw : "no answer");
	at = strstr(raw, "x-request-id: ");
	cr_assert_not_null(at, "%s", raw);
	p[n++] = (struct probe){"a malformed request",
	                        hx_fmt("%.*s", (int)strcspn(at + 14, "\r\n"), at + 14), false};

	/* strace writes its last lines as the gateway exits. */
	cr_assert_eq(kill(pid, SIGTERM), 0);
	cr_assert_eq(hx_proc_wait(gw->proc, 20000), 0, "%s", hx_read_file(gw->err_path, NULL));
	cr_assert_eq(hx_gw_stop(gw), 0);

	trace_load(trace, &t);
	lines = place_lines(gw, &t, &nlines);
	for (i = 0; i < n; i++) {
		rec = find_line(lines, nlines, "request", "request_id", p[i].id);
		if (rec == NULL)
			rec = find_line(lines, nlines, "request", "upstream_request_id", p[i].id);
		cr_assert_not_null(rec, "%s (%s): no audit record", p[i].what, p[i].id);
		answer = answer_at(&t, gw->port, p[i].id);
		cr_assert_neq(answer, NOT_SEEN,
		              "%s (%s): no answer in the trace %s (GW_KEEP=1 keeps it)", p[i].what,
		              p[i].id, trace);
		cr_expect_lt(
		        rec->done, answer,
		        "%s (%s): the answer went out at line %zu of the trace, before its audit "
		        "record was written (line %zu); GW_KEEP=1 keeps %s",
		        p[i].what, p[i].id, answer, rec->done, trace);
		forward = forward_at(&t, hx_str(rec->rec, "request_id"));
		if (!p[i].forwarded) {
			cr_expect_eq(forward, NOT_SEEN, "%s (%s) went upstream", p[i].what,
			             p[i].id);
			continue;
		}
		intent = find_line(lines, nlines, "intent", "request_id",
		                   hx_str(rec->rec, "request_id"));
		cr_assert_not_null(intent, "%s (%s): no intent line", p[i].what, p[i].id);
		cr_assert_neq(forward, NOT_SEEN, "%s (%s): not seen going upstream", p[i].what,
		              p[i].id);
		cr_expect_lt(
		        intent->done, forward,
		        "%s (%s): went upstream at line %zu of the trace, before its intent was "
		        "written (line %zu); GW_KEEP=1 keeps %s",
		        p[i].what, p[i].id, forward, intent->done, trace);
	}
	free(lines);
	trace_free(&t);
}
