/*
 * it_readme: the README's examples, as written, against a stand-in upstream.
 * The snippets are read from README.md (the tests run from the repository's
 * root): the files its heredocs write are written, and its curl commands
 * are run with /bin/sh and the curl command line, only the port changed.
 * What the README says comes back (its "# {...}" comments) must come back.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "jwtmint.h"

TestSuite(it_readme, .init = hx_init, .fini = hx_fini, .timeout = 60);

#define CLIENT_KEY "sk-readme-CLIENT-KEY-5521"
#define ORG_KEY    "sk-readme-ORG-KEY-7730"

/* The text of the README section under heading (a whole line, "## ..."),
 * up to the next heading of level 2 or 3. */
static const char *
section(const char *heading)
{
	const char *text = hx_read_file("README.md", NULL), *start, *end, *h3;

	cr_assert_not_null(text, "README.md cannot be read from the working dir");
	start = strstr(text, hx_fmt("\n%s\n", heading));
	cr_assert_not_null(start, "README.md has no section %s", heading);
	start += strlen(heading) + 2;
	end = strstr(start, "\n## ");
	h3 = strstr(start, "\n### ");
	if (end == NULL || (h3 && h3 < end))
		end = h3;
	return hx_fmt("%.*s", (int)(end ? end - start : (long)strlen(start)), start);
}

/* The first ```sh block of text that holds needle. */
static const char *
sh_block(const char *text, const char *needle)
{
	const char *p = text, *end;

	while ((p = strstr(p, "```sh\n")) != NULL) {
		p += 6;
		end = strstr(p, "\n```");
		cr_assert_not_null(end, "an unterminated ```sh block");
		const char *b = hx_fmt("%.*s\n", (int)(end - p), p);

		if (strstr(b, needle))
			return b;
		p = end;
	}
	cr_assert_fail("no ```sh block holds %s", needle);
	return NULL;
}

/* What `cat > name <<'EOF'` writes in block. */
static const char *
heredoc(const char *block, const char *name)
{
	const char *start = strstr(block, hx_fmt("cat > %s <<'EOF'\n", name)), *end;

	cr_assert_not_null(start, "no heredoc writes %s", name);
	start = strchr(start, '\n') + 1;
	end = strstr(start, "\nEOF\n");
	cr_assert_not_null(end, "the heredoc of %s has no EOF", name);
	return hx_fmt("%.*s\n", (int)(end - start), start);
}

/* The block's commands that start with prefix, continuation lines joined;
 * fills cmds (at most max) and returns how many. */
static size_t
commands(const char *block, const char *prefix, const char **cmds, size_t max)
{
	const char *line = block, *nl;
	const char *cmd = NULL;
	size_t n = 0;

	for (; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			break;
		if (cmd == NULL && strncmp(line, prefix, strlen(prefix)) != 0)
			continue;
		if (nl > line && nl[-1] == '\\') {
			cmd = hx_fmt("%s%.*s", cmd ? cmd : "", (int)(nl - line - 1), line);
			continue;
		}
		cmd = hx_fmt("%s%.*s", cmd ? cmd : "", (int)(nl - line), line);
		cr_assert_lt(n, max);
		cmds[n++] = cmd;
		cmd = NULL;
	}
	return n;
}

/* The JSON the README shows as an answer: the "# {" comment lines after
 * after (the last command's text), joined. */
static json_t *
shown_answer(const char *block, const char *after)
{
	const char *p = strstr(block, after), *nl;
	const char *json = "";

	cr_assert_not_null(p);
	p = strstr(p, "\n# {");
	cr_assert_not_null(p, "the README shows no answer after %s", after);
	for (p++; strncmp(p, "#", 1) == 0; p = nl + 1) {
		nl = strchr(p, '\n');
		p++;
		while (*p == ' ')
			p++;
		json = hx_fmt("%s%.*s", json, (int)(nl - p), p);
	}
	return hx_json(json);
}

/* s with every from replaced by to. */
static const char *
replace(const char *s, const char *from, const char *to)
{
	const char *out = "", *hit;

	while ((hit = strstr(s, from)) != NULL) {
		out = hx_fmt("%s%.*s%s", out, (int)(hit - s), s, to);
		s = hit + strlen(from);
	}
	return hx_fmt("%s%s", out, s);
}

/* Runs a shell command line in the test's temp dir; returns its standard
 * output and fails the test if it does not exit 0. */
static const char *
run(const char *name, const char *cmd)
{
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	struct hx_proc *p = hx_proc_start(name, argv);

	cr_assert_eq(hx_proc_wait(p, 20000), 0, "%s failed: %s", cmd,
	             hx_read_file(p->err_path, NULL));
	return hx_read_file(p->out_path, NULL);
}

static void
expect_error(const char *out, json_t *shown)
{
	json_t *got = json_object_get(hx_json(out), "error"),
	       *want = json_object_get(shown, "error");
	const char *k;
	json_t *v;

	cr_assert_not_null(want);
	json_object_foreach(want, k, v)
	{
		cr_expect(json_equal(json_object_get(got, k), v), "%s: the README shows %s, got %s",
		          k, json_dumps(v, JSON_ENCODE_ANY), out);
	}
}

/* Quick start: `make run` serves gateway.example.json; the curl shown is
 * refused with the answer shown, and nothing reaches the upstream. */
Test(it_readme, quick_start_curl_is_refused_as_shown)
{
	const char *block = sh_block(section("## Quick start"), "curl"), *cmds[4];
	json_t *example = hx_json(hx_read_file("gateway.example.json", NULL));
	char cwd[1024], *dump;
	struct hx_gw *gw;
	json_t *recs;

	cr_assert_eq(commands(block, "curl ", cmds, 4), 1);
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	/* The example's own settings, but the harness's listener, upstream and
	 * audit file. */
	json_object_del(example, "listen");
	json_object_del(example, "upstream");
	json_object_del(example, "audit");
	json_object_set_new(example, "policy_file",
	                    json_string(hx_fmt("%s/%s", cwd, hx_str(example, "policy_file"))));
	dump = json_dumps(example, 0);
	gw = hx_gw_start(NULL, dump);
	free(dump);
	setenv("OPENAI_API_KEY", CLIENT_KEY, 1);
	expect_error(
	        run("quick", replace(cmds[0], "127.0.0.1:8080", hx_fmt("127.0.0.1:%d", gw->port))),
	        shown_answer(block, cmds[0] + strlen(cmds[0]) - 20));
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
	recs = hx_audit_wait(gw, 1, 5000);
	cr_expect_str_eq(hx_str(json_array_get(recs, 0), "decision"), "deny");
}

/* TLS and mutual TLS: the heredocs' config and policy, the certificates of
 * `make certs`, and the three curls: the organization with its key, the
 * tenant named by its certificate with the key still forwarded, and the
 * tenant held to its policy with the answer shown. */
Test(it_readme, mtls_example_names_the_tenant_and_forwards_the_key)
{
	const char *block = sh_block(section("### TLS and mutual TLS"), "make certs"), *cmds[4];
	const char *port;
	struct hx_gw *gw;
	json_t *reqs, *recs, *rec;
	size_t i, n;

	cr_assert_not_null(strstr(block, "build/gateway --config tls.json"));
	hx_certs(); /* <tmp>/certs, what `make certs` makes in certs/ */
	hx_write_file(hx_path("mtls-policy.json"), heredoc(block, "mtls-policy.json"));
	gw = hx_gw_start(NULL, heredoc(block, "tls.json"));
	port = hx_fmt("localhost:%d", gw->port);
	setenv("OPENAI_API_KEY", CLIENT_KEY, 1);
	n = commands(block, "curl ", cmds, 4);
	cr_assert_eq(n, 3, "the README shows %zu curls", n);

	run("org", replace(cmds[0], "localhost:8080", port));
	reqs = hx_stub_requests();
	cr_assert_eq(json_array_size(reqs), 1, "%s", json_dumps(reqs, 0));
	cr_expect_str_eq(
	        hx_str(json_object_get(json_array_get(reqs, 0), "headers"), "authorization"),
	        "Bearer " CLIENT_KEY);

	run("tenant", replace(cmds[1], "localhost:8080", port));
	reqs = hx_stub_requests();
	cr_assert_gt(json_array_size(reqs), 1, "the tenant's list was not forwarded");
	for (i = 1; i < json_array_size(reqs); i++)
		cr_expect_str_eq(hx_str(json_object_get(json_array_get(reqs, i), "headers"),
		                        "authorization"),
		                 "Bearer " CLIENT_KEY,
		                 "a tenant's request went upstream without its key");
	n = json_array_size(reqs);

	expect_error(run("refused", replace(cmds[2], "localhost:8080", port)),
	             shown_answer(block, "memory_limit\": \"4g\"}'"));
	cr_expect_eq(json_array_size(hx_stub_requests()), n, "the refused create was forwarded");

	recs = hx_audit_wait(gw, 3, 5000);
	rec = json_array_get(recs, 0);
	cr_expect(json_is_null(json_object_get(rec, "tenant")), "no certificate, no tenant");
	cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 200);
	rec = json_array_get(recs, 1);
	cr_expect_str_eq(hx_str(rec, "tenant"), "data-team");
	cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 200);
	rec = json_array_get(recs, 2);
	cr_expect_str_eq(hx_str(rec, "tenant"), "data-team");
	cr_expect_str_eq(hx_str(rec, "code"), "memory_limit_exceeded");
}

/* The gateway_keys variant the README describes: the certificate alone
 * names the tenant and the organization's key goes upstream; no
 * certificate and no key is 401. */
Test(it_readme, mtls_in_gateway_keys_mode_sends_the_organizations_key)
{
	const char *text = section("### TLS and mutual TLS");
	const char *block = sh_block(text, "make certs"), *cmds[4], *port, *cmd, *out;
	json_t *cfg = hx_json(heredoc(block, "tls.json")), *reqs, *recs;
	struct hx_gw *gw;
	char *dump;
	size_t i;

	cr_assert_not_null(strstr(text,
	                          "add `\"auth\": {\"mode\": \"gateway_keys\"}, \"upstream\": "
	                          "{\"api_key_env\":\n\"OPENAI_API_KEY\"}` to `tls.json`"),
	                   "the README no longer says what this test does");
	json_object_set_new(cfg, "auth", json_pack("{s:s}", "mode", "gateway_keys"));
	json_object_set_new(cfg, "upstream", json_pack("{s:s}", "api_key_env", "OPENAI_API_KEY"));
	hx_certs();
	hx_write_file(hx_path("mtls-policy.json"), heredoc(block, "mtls-policy.json"));
	setenv("OPENAI_API_KEY", ORG_KEY, 1);
	dump = json_dumps(cfg, 0);
	gw = hx_gw_start(NULL, dump);
	free(dump);
	port = hx_fmt("localhost:%d", gw->port);
	cr_assert_eq(commands(block, "curl ", cmds, 4), 3);

	/* The second curl, with the certificate and without the key. */
	cmd = replace(cmds[1], " -H \"Authorization: Bearer $OPENAI_API_KEY\"", "");
	cr_assert(strstr(cmd, "Authorization") == NULL, "%s", cmd);
	run("cert-only", replace(cmd, "localhost:8080", port));
	reqs = hx_stub_requests();
	cr_assert_gt(json_array_size(reqs), 0, "the tenant's list was not forwarded");
	for (i = 0; i < json_array_size(reqs); i++)
		cr_expect_str_eq(hx_str(json_object_get(json_array_get(reqs, i), "headers"),
		                        "authorization"),
		                 "Bearer " ORG_KEY);

	/* The first curl without its key: no tenant, 401. */
	cmd = replace(cmds[0], "-H \"Authorization: Bearer $OPENAI_API_KEY\"", "");
	out = run("nothing", replace(cmd, "localhost:8080", port));
	cr_expect_str_eq(hx_str(json_object_get(hx_json(out), "error"), "code"), "missing_api_key",
	                 "%s", out);
	recs = hx_audit_wait(gw, 2, 5000);
	cr_expect_str_eq(hx_str(json_array_get(recs, 0), "tenant"), "data-team");
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(recs, 1), "status")), 401);
}

/* Identity: the heredocs' policy and config, with jwks_url pointed at the
 * stand-in provider (the stub serves the JWKS), and the curl with a token
 * the provider would issue: refused as shown, and recorded with the
 * tenant, the person and the credential the README names. */
Test(it_readme, identity_example_names_the_tenant_and_the_person)
{
	const char *text = section("### Identity");
	const char *block = sh_block(text, "idp.json"), *cmds[4], *jwks_path = "/idp/jwks.json";
	json_t *cfg = hx_json(heredoc(block, "idp.json")), *jwt, *recs, *rec;
	EVP_PKEY *key = jm_keygen("EC");
	long long now = (long long)time(NULL);
	const char *iss, *aud, *token;
	struct hx_gw *gw;
	char *t;

	cr_assert_not_null(strstr(block, "build/gateway --config idp.json"));
	jwt = json_object_get(json_object_get(cfg, "auth"), "jwt");
	iss = hx_fmt("%s", hx_str(jwt, "issuer"));
	aud = hx_fmt("%s", hx_str(jwt, "audience"));
	hx_write_file(hx_path("idp-policy.json"), heredoc(block, "idp-policy.json"));
	setenv("OPENAI_API_KEY", ORG_KEY, 1);
	t = json_dumps(cfg, 0);
	gw = hx_gw_prepare(NULL, t);
	free(t);
	json_object_set_new(json_object_get(json_object_get(gw->config, "auth"), "jwt"), "jwks_url",
	                    json_string(hx_fmt("%s%s", gw->stub->url, jwks_path)));
	t = json_dumps(gw->config, 0);
	hx_write_file(gw->config_path, t);
	free(t);
	t = jm_jwks(jm_jwk(key, "idp-key-1"), NULL);
	hx_stub_next(hx_fmt("{\"match\":\"%s\",\"json\":%s,\"repeat\":100}", jwks_path, t));
	free(t);
	hx_gw_launch(gw);

	t = jm_sign("{\"alg\":\"ES256\",\"kid\":\"idp-key-1\",\"typ\":\"JWT\"}",
	            hx_fmt("{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"u-4821\","
	                   "\"email\":\"dana@example.com\",\"groups\":[\"data-engineers\"],"
	                   "\"iat\":%lld,\"exp\":%lld}",
	                   iss, aud, now, now + 600),
	            key, "ES256", NULL, 0);
	token = hx_fmt("%s", t);
	free(t);
	setenv("TOKEN", token, 1);
	cr_assert_eq(commands(block, "curl ", cmds, 4), 1);
	/* The first fetch of the keys is under way as the gateway starts. */
	cr_assert(hx_wait_contains(gw->err_path, "key(s) in force", 5000), "%s",
	          hx_read_file(gw->err_path, NULL));
	expect_error(
	        run("token", replace(cmds[0], "127.0.0.1:8080", hx_fmt("127.0.0.1:%d", gw->port))),
	        shown_answer(block, "memory_limit\": \"4g\"}'"));
	recs = hx_audit_wait(gw, 1, 5000);
	rec = json_array_get(recs, 0);
	cr_expect_str_eq(hx_str(rec, "tenant"), "data-team");
	cr_expect_str_eq(hx_str(rec, "credential"), hx_fmt("jwt:%s#idp-key-1", iss));
	cr_expect_str_eq(hx_str(json_object_get(rec, "person"), "sub"), "u-4821");
	cr_expect_str_eq(hx_str(json_object_get(rec, "person"), "email"), "dana@example.com");
	cr_expect(!hx_file_contains(gw->audit_path, token));
	cr_expect(strstr(text, "\"tenant\":\"data-team\"") != NULL, "the README names the record");
	EVP_PKEY_free(key);
}
