/*
 * Tests that no stage does work that grows faster than its input (README,
 * Hardening): each stage is run by tests/scale_probe.c on a hostile input
 * of size n, 2n and 4n under callgrind, which counts the instructions of
 * the stage alone (--toggle-collect on probe_stage). Instruction counts do
 * not depend on what else the machine is doing, so the test is stable on a
 * shared machine where wall time is not.
 *
 * With I(k) the count at size k, linear work gives
 * (I(4n) - I(n)) / (I(2n) - I(n)) = 3, n log n a little more (3.2 at these
 * sizes), quadratic 5; the differences cancel whatever the stage costs
 * whatever the size. A ratio above GROWTH_MAX fails: that is a quadratic
 * term a twelfth of the linear one at n, a third of it at 4n.
 *
 * Each input is built so that a nested scan would pay in full: the name a
 * pattern list matches is the last one, a secret's domain is the last in
 * the allowlist, and so on. The probe's verdict is checked too, so an
 * input refused at its first byte cannot pass for a linear stage.
 *
 * Skipped under the sanitizers (GW_SANITIZED, set by `make sanitize`): the
 * count would be ASan's, and valgrind does not run ASan binaries. Needs
 * valgrind (`make deps` installs it) and the probe, $GW_PROBE (default
 * build/tests/scale_probe; `make test-run` sets it).
 */
#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GROWTH_MAX 3.4
#define PATH_LEN   512

/* Writes the hostile input of size n for one case. */
typedef void (*gen_fn)(FILE *f, size_t n);

struct scase {
	const char *name;
	const char *stage; /* scale_probe's */
	gen_fn gen;
	size_t n;
	const char *verdict; /* what the probe must print */
	int verdict_n;       /* followed by " <n>" */
};

static char dir[PATH_LEN];

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/gw-scaling-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(dir), "cannot make a temporary folder");
}

static void
teardown(void)
{
	char cmd[PATH_LEN + 16];

	if (dir[0] && strstr(dir, "gw-scaling-")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		(void)!system(cmd);
	}
}

TestSuite(scaling, .init = setup, .fini = teardown, .timeout = 240);

/* --- inputs --------------------------------------------------------------- */

/* A JSON list of n strings, pre<i>post (i counting down with reverse). */
static void
list(FILE *f, const char *pre, const char *post, size_t n, int reverse)
{
	size_t i;

	fputc('[', f);
	for (i = 0; i < n; i++)
		fprintf(f, "%s\"%s%zu%s\"", i ? "," : "", pre, reverse ? n - 1 - i : i, post);
	fputc(']', f);
}

/* n domain secrets named S<i>, each for the domain h<at>.example.com. */
static void
secrets(FILE *f, size_t n, size_t at)
{
	size_t i;

	fputc('[', f);
	for (i = 0; i < n; i++)
		fprintf(f,
		        "%s{\"domain\":\"h%zu.example.com\",\"name\":\"S%zu\",\"value\":"
		        "\"secret-%zu\"}",
		        i ? "," : "", at, i, i);
	fputc(']', f);
}

/* n skill references to s<i>. */
static void
skill_refs(FILE *f, size_t n)
{
	size_t i;

	fputc('[', f);
	for (i = 0; i < n; i++)
		fprintf(f, "%s{\"type\":\"skill_reference\",\"skill_id\":\"s%zu\"}", i ? "," : "",
		        i);
	fputc(']', f);
}

/* Limits high enough that the rules, not the counts, decide. */
#define HIGH_LIMITS "\"max_domains\":100000,\"max_domain_secrets\":100000"

/* Many keys, strings with escapes, and many small values. */
static void
gen_parse(FILE *f, size_t n)
{
	size_t i;

	fputs("{\"a\":[", f);
	for (i = 0; i < n; i++)
		fprintf(f, "%s\"x\\u00e9\\n%zu\"", i ? "," : "", i);
	fputs("]", f);
	for (i = 0; i < n; i++)
		fprintf(f, ",\"key-%zu\":%zu", i, i);
	fputs("}", f);
}

/* A create body with n of everything the contract lists. */
static void
gen_schema(FILE *f, size_t n)
{
	fputs("{\"name\":\"c\",\"file_ids\":", f);
	list(f, "file-", "", n, 0);
	fputs(",\"skills\":", f);
	skill_refs(f, n);
	fputs(",\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":", f);
	list(f, "h", ".example.com", n, 0);
	fputs(",\"domain_secrets\":", f);
	secrets(f, n, n - 1);
	fputs("}}", f);
}

/* n exact patterns in the policy; request domain i matches pattern i, so
 * a scan of the patterns walks i of them. */
static void
gen_policy_domains(FILE *f, size_t n)
{
	fprintf(f, "{\"policy\":{\"network_policy\":{" HIGH_LIMITS ",\"allowed_domains\":");
	list(f, "h", ".example.com", n, 0);
	fputs("}},\"request\":{\"name\":\"c\",\"network_policy\":{\"type\":\"allowlist\","
	      "\"allowed_domains\":",
	      f);
	list(f, "H", ".Example.com.", n, 0);
	fputs("}}}", f);
}

/* n domains and n secrets, every secret for the last domain. */
static void
gen_policy_secrets(FILE *f, size_t n)
{
	fputs("{\"policy\":{\"network_policy\":{" HIGH_LIMITS ",\"allowed_domains\":"
	      "[\"*.example.com\"],\"allow_domain_secrets\":true}},"
	      "\"request\":{\"name\":\"c\",\"network_policy\":{\"type\":\"allowlist\","
	      "\"allowed_domains\":",
	      f);
	list(f, "h", ".example.com", n, 0);
	fputs(",\"domain_secrets\":", f);
	secrets(f, n, n - 1);
	fputs("}}}", f);
}

/* n allowed skill ids and n references, reference i to the ith id. */
static void
gen_policy_skills(FILE *f, size_t n)
{
	fputs("{\"policy\":{\"skills\":{\"max_count\":100000,\"allowed_skill_ids\":", f);
	list(f, "s", "", n, 0);
	fputs("}},\"request\":{\"name\":\"c\",\"skills\":", f);
	skill_refs(f, n);
	fputs("}}", f);
}

/* A Responses body of n tools, each a container made or used, against a
 * policy of n patterns: of the first n - 1, a third code_interpreter
 * containers with a domain (to normalize), a secret and a file each, a
 * third shell environments with a domain and a skill (and memory left to
 * the default), a third container ids; then one shell environment of n
 * domains and n secrets for the last of them. */
static void
gen_tools(FILE *f, size_t n)
{
	size_t i;

	fputs("{\"policy\":{\"memory_limit\":{\"max\":\"64g\"},\"network_policy\":{" HIGH_LIMITS
	      ",\"allow_domain_secrets\":true,\"allowed_domains\":",
	      f);
	list(f, "h", ".example.com", n, 0);
	fputs("},\"skills\":{\"max_count\":100000,\"allowed_skill_ids\":", f);
	list(f, "s", "", n, 0);
	/* Past the default 16 containers, so each one is decided. */
	fputs("},\"responses\":{\"max_tool_containers\":100000}},\"request\":{\"model\":\"m\","
	      "\"input\":\"hi\",\"tools\":[",
	      f);
	for (i = 0; i + 1 < n; i++) {
		if (i % 3 == 0)
			fprintf(f,
			        "{\"type\":\"code_interpreter\",\"container\":{\"type\":\"auto\","
			        "\"memory_limit\":\"4g\",\"file_ids\":[\"file-%zu\"],"
			        "\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":"
			        "[\"H%zu.Example.com.\"],\"domain_secrets\":[{\"domain\":"
			        "\"h%zu.example.com\",\"name\":\"S\",\"value\":\"v\"}]}}},",
			        i, i, i);
		else if (i % 3 == 1)
			fprintf(f,
			        "{\"type\":\"shell\",\"environment\":{\"type\":\"container_auto\","
			        "\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":"
			        "[\"h%zu.example.com\"]},\"skills\":[{\"type\":\"skill_reference\","
			        "\"skill_id\":\"s%zu\"}]}},",
			        i, i);
		else
			fprintf(f, "{\"type\":\"code_interpreter\",\"container\":\"cntr_%zu\"},",
			        i);
	}
	fputs("{\"type\":\"shell\",\"environment\":{\"type\":\"container_auto\","
	      "\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":",
	      f);
	list(f, "h", ".example.com", n, 0);
	fputs(",\"domain_secrets\":", f);
	secrets(f, n, n - 1);
	fputs("}}}]}}", f);
}

/* The finding: a create body of n domains and n secrets, whole. */
static void
gen_create(FILE *f, size_t n)
{
	gen_policy_secrets(f, n);
}

/* n domains forwarded; the answer lists them backwards, so a scan of the
 * forwarded ones for each walks nearly all of them. */
static void
gen_check(FILE *f, size_t n)
{
	fputs("{\"forwarded\":{\"name\":\"c\",\"memory_limit\":\"1g\",\"expires_after\":"
	      "{\"anchor\":\"last_active_at\",\"minutes\":20},\"network_policy\":{\"type\":"
	      "\"allowlist\",\"allowed_domains\":",
	      f);
	list(f, "h", ".example.com", n, 0);
	fputs("}},\"answer\":{\"id\":\"cntr_1\",\"object\":\"container\",\"name\":\"c\","
	      "\"created_at\":1,\"status\":\"running\",\"memory_limit\":\"1g\","
	      "\"expires_after\":{\"anchor\":\"last_active_at\",\"minutes\":20},"
	      "\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":",
	      f);
	list(f, "H", ".example.COM.", n, 1);
	fputs("}}}", f);
}

/* A network policy of n domains and n secrets. */
static void
gen_network_policy(FILE *f, size_t n)
{
	fputs("{\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":", f);
	list(f, "h", ".example.com", n, 0);
	fputs(",\"domain_secrets\":", f);
	secrets(f, n, n - 1);
	fputs("}}", f);
}

/* A tenant with n brokered secrets, for domain i each, and a decided
 * request whose allowlist has the n domains and whose client secrets
 * carry the same n names. */
static void
gen_inject(FILE *f, size_t n)
{
	size_t i;

	fputs("{\"tenant\":\"t\",\"policy\":{\"network_policy\":{" HIGH_LIMITS
	      ",\"allowed_domains\":[\"*.example.com\"],\"allow_domain_secrets\":true},"
	      "\"tenants\":{\"t\":{\"secrets\":[",
	      f);
	for (i = 0; i < n; i++)
		fprintf(f,
		        "%s{\"domain\":\"h%zu.example.com\",\"name\":\"S%zu\","
		        "\"value_env\":\"PROBE_SECRET\"}",
		        i ? "," : "", i, i);
	fputs("]}}},\"request\":{\"name\":\"c\",\"network_policy\":{\"type\":\"allowlist\","
	      "\"allowed_domains\":",
	      f);
	list(f, "h", ".example.com", n, 0);
	fputs(",\"domain_secrets\":[", f);
	for (i = 0; i < n; i++)
		fprintf(f, "%s{\"domain\":\"h%zu.example.com\",\"name\":\"S%zu\",\"value\":\"v\"}",
		        i ? "," : "", i, i);
	fputs("]}}}", f);
}

/* An organization of n domains and n skills, a tenant narrowing it to all
 * of them (listed backwards), and two tenants of n/2 keys each. */
static void
gen_policy_load(FILE *f, size_t n)
{
	size_t i, t;

	fputs("{\"network_policy\":{" HIGH_LIMITS ",\"allowed_domains\":", f);
	list(f, "h", ".example.com", n, 0);
	fputs("},\"skills\":{\"allowed_skill_ids\":", f);
	list(f, "s", "", n, 0);
	fputs("},\"tenants\":{", f);
	for (t = 0; t < 2; t++) {
		fprintf(f, "%s\"t%zu\":{\"api_keys_sha256\":[", t ? "," : "", t);
		for (i = 0; i < n / 2; i++)
			fprintf(f, "%s\"%064zx\"", i ? "," : "", t * n + i);
		fputs("],\"policy\":{\"network_policy\":{\"allowed_domains\":", f);
		list(f, "h", ".example.com", n, 1);
		fputs("},\"skills\":{\"allowed_skill_ids\":", f);
		list(f, "s", "", n, 1);
		fputs("}}}", f);
	}
	fputs("}}", f);
}

/* A file part whose data is n lines that nearly hold the delimiter. */
static void
gen_multipart(FILE *f, size_t n)
{
	size_t i;

	fputs("--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; "
	      "filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n",
	      f);
	for (i = 0; i < n; i++)
		fputs("\r\n--BOUNDAR\n--BOUNDARX\r--B", f);
	fputs("\r\n--BOUNDARY--\r\n", f);
}

/* Known parameters, then a name of n escapes: read to its end, refused. */
static void
gen_query(FILE *f, size_t n)
{
	size_t i;

	fputs("limit=10&order=asc&after=cntr_1&name=", f);
	for (i = 0; i < n; i++)
		fputs("%41", f);
}

/* One event whose data is a single line of 64n bytes, a few of them
 * mentioning "container", so the helper reads it all. */
static void
gen_sse_line(FILE *f, size_t n)
{
	size_t i;

	fputs("event: response.output_item.done\ndata: ", f);
	for (i = 0; i < n; i++)
		fputs(i % 1000 == 999
		              ? "{\"container_id\":\"cntr_1\"}0123456789012345678901234567"
		              : "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd",
		      f);
	fputs("\n\n", f);
}

/* n tiny events, with comments and empty events between them. */
static void
gen_sse_events(FILE *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fputs(i % 10 == 0 ? ":\n\ndata:x\n\n" : "data:x\n\n", f);
}

/* CR line ends only, fed a byte at a time: one event of a 16n-byte data
 * line and n short ones, then n empty events. */
static void
gen_sse_cr(FILE *f, size_t n)
{
	size_t i;

	fputs("data: ", f);
	for (i = 0; i < n; i++)
		fputs("0123456789abcdef", f);
	fputs("\r", f);
	for (i = 0; i < n; i++)
		fputs("data:y\r", f);
	for (i = 0; i <= n; i++)
		fputs("\r", f);
}

/* n inline skills' data, each past the spool's threshold, with escapes,
 * a surrogate pair and UTF-8 in it, between keys and values that stay. */
static void
gen_spool(FILE *f, size_t n)
{
	size_t i;

	fputs("{\"skills\":[", f);
	for (i = 0; i < n; i++)
		fprintf(f,
		        "%s{\"name\":\"s%zu\",\"source\":{\"data\":\"UEsDBAoAAAAAAA\\u00e9\\/\\n"
		        "\xc3\xa9\\ud83d\\ude00ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		        "0123456789+/%zu==\"}}",
		        i ? "," : "", i, i);
	fputs("]}", f);
}

/* n one-byte chunks, every tenth with an extension, then the last chunk
 * and a trailer field. */
static void
gen_chunked(FILE *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fputs(i % 10 == 0 ? "1;ext=value\r\nx\r\n" : "1\r\nx\r\n", f);
	fputs("0\r\nX-Trailer: t\r\n\r\n", f);
}

/* --- measuring ---------------------------------------------------------- */

static const char *
probe_path(void)
{
	const char *p = getenv("GW_PROBE");

	return p && *p ? p : "build/tests/scale_probe";
}

static void
skip_if_sanitized(void)
{
	if (getenv("GW_SANITIZED"))
		cr_skip_test("instruction counts are measured in the plain build only");
	cr_assert_eq(access(probe_path(), X_OK), 0,
	             "%s is missing; build it with make test-run (or set GW_PROBE)", probe_path());
	cr_assert_eq(system("valgrind --version >/dev/null 2>&1"), 0,
	             "valgrind is not installed; `make deps` installs it");
}

static void
read_line(const char *path, char *dst, size_t n)
{
	FILE *f = fopen(path, "r");

	dst[0] = '\0';
	if (f && fgets(dst, (int)n, f))
		dst[strcspn(dst, "\n")] = '\0';
	if (f)
		fclose(f);
}

/* Runs the probe on case c at size n under callgrind: the instructions of
 * the stage alone, and its verdict in verdict. */
static unsigned long long
measure(const struct scase *c, size_t n, char *verdict, size_t vn)
{
	char in[PATH_LEN + 64], out[PATH_LEN + 64], cg[PATH_LEN + 64], log[PATH_LEN + 64],
	        audit[PATH_LEN + 64], cmd[6 * PATH_LEN], line[256];
	unsigned long long ir = 0;
	FILE *f;
	int rc;

	snprintf(in, sizeof(in), "%s/%s-%zu.in", dir, c->name, n);
	snprintf(out, sizeof(out), "%s/%s-%zu.out", dir, c->name, n);
	snprintf(cg, sizeof(cg), "%s/%s-%zu.callgrind", dir, c->name, n);
	snprintf(log, sizeof(log), "%s/%s-%zu.log", dir, c->name, n);
	snprintf(audit, sizeof(audit), "%s/%s-%zu.audit", dir, c->name, n);
	f = fopen(in, "w");
	cr_assert_not_null(f, "cannot write %s", in);
	c->gen(f, n);
	cr_assert_eq(fclose(f), 0);

	/* Without fastbins, glibc's malloc does no batched consolidation,
	 * whose steps otherwise show as a bump of up to 10% at one size. */
	snprintf(cmd, sizeof(cmd),
	         "GLIBC_TUNABLES=glibc.malloc.mxfast=0 valgrind --tool=callgrind "
	         "--collect-atstart=no --toggle-collect=probe_stage "
	         "--callgrind-out-file='%s' '%s' %s '%s' '%s' >'%s' 2>'%s'",
	         cg, probe_path(), c->stage, in, audit, out, log);
	rc = system(cmd);
	read_line(out, verdict, vn);
	cr_assert_eq(rc, 0, "%s at n=%zu: the probe failed (%d); see %s", c->name, n, rc, log);

	f = fopen(cg, "r");
	cr_assert_not_null(f, "%s at n=%zu: no callgrind output", c->name, n);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "summary:", 8) == 0)
			ir = strtoull(line + 8, NULL, 10);
	fclose(f);
	cr_assert_gt(ir, 0, "%s at n=%zu: callgrind counted nothing", c->name, n);
	return ir;
}

static void
run_case(const struct scase *c)
{
	unsigned long long ir[3];
	char verdict[3][256], want[128];
	double ratio;
	size_t k;

	skip_if_sanitized();
	for (k = 0; k < 3; k++) {
		ir[k] = measure(c, c->n << k, verdict[k], sizeof(verdict[k]));
		snprintf(want, sizeof(want), "%s", c->verdict);
		if (c->verdict_n)
			snprintf(want, sizeof(want), "%s %zu", c->verdict, c->n << k);
		cr_assert_str_eq(verdict[k], want, "%s at n=%zu: the stage did not do its work",
		                 c->name, c->n << k);
	}
	cr_assert_gt(ir[1], ir[0], "%s: more input took no more work", c->name);
	ratio = (double)(ir[2] - ir[0]) / (double)(ir[1] - ir[0]);
	fprintf(stderr,
	        "scaling %-15s n=%-6zu I(n)=%-11llu I(2n)=%-11llu I(4n)=%-11llu ratio %.2f\n",
	        c->name, c->n, ir[0], ir[1], ir[2], ratio);
	cr_expect_leq(ratio, GROWTH_MAX,
	              "%s grows faster than its input: instructions %llu, %llu, %llu at n = %zu, "
	              "%zu, %zu; (I(4n) - I(n)) / (I(2n) - I(n)) = %.2f (linear 3, quadratic 5, "
	              "at most %.1f)",
	              c->name, ir[0], ir[1], ir[2], c->n, 2 * c->n, 4 * c->n, ratio, GROWTH_MAX);
}

#define SCALING(case_name, stage, gen, n, verdict, verdict_n)                                      \
	Test(scaling, case_name)                                                                   \
	{                                                                                          \
		static const struct scase c = {#case_name, stage, gen, n, verdict, verdict_n};     \
		run_case(&c);                                                                      \
	}

SCALING(parse, "parse", gen_parse, 10000, "parsed", 0)
SCALING(schema, "schema", gen_schema, 4000, "valid", 0)
SCALING(policy_domains, "policy", gen_policy_domains, 2000, "allow", 0)
SCALING(policy_secrets, "policy", gen_policy_secrets, 2000, "allow", 0)
SCALING(policy_skills, "policy", gen_policy_skills, 2000, "allow", 0)
SCALING(create, "create", gen_create, 2000, "allow", 0)
SCALING(tools, "tools", gen_tools, 1500, "allow", 1)
SCALING(check, "check", gen_check, 2000, "violations 0", 0)
SCALING(redact, "redact", gen_network_policy, 2000, "redacted", 0)
SCALING(audit, "audit", gen_network_policy, 1000, "written", 0)
SCALING(inject, "inject", gen_inject, 1000, "injected", 1)
SCALING(policy_load, "policy_load", gen_policy_load, 1000, "compiled", 0)
SCALING(multipart, "multipart", gen_multipart, 20000, "complete", 0)
SCALING(query, "query", gen_query, 1000, "invalid invalid_query", 0)
SCALING(sse_line, "sse", gen_sse_line, 8000, "events 1", 0)
SCALING(sse_events, "sse", gen_sse_events, 250000, "events", 1)
SCALING(sse_cr_bytes, "sse_bytes", gen_sse_cr, 10000, "events 1", 0)
SCALING(chunked, "chunked", gen_chunked, 50000, "decoded", 1)
SCALING(spool, "spool", gen_spool, 4000, "spooled", 1)
SCALING(spool_bytes, "spool_bytes", gen_spool, 1000, "spooled", 1)
SCALING(chunked_bytes, "chunked_bytes", gen_chunked, 10000, "decoded", 1)
