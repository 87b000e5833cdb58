/*
 * it_pin: the upstream's TLS beyond verification. upstream.pinned_pubkey
 * (libcurl's public key pinning) lets through only the pinned key, as a
 * sha256// hash or a key file; and the gateway offers HTTP/2 by ALPN,
 * which openssl s_server, standing in for the upstream, reports.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(it_pin, .init = hx_init, .fini = hx_fini, .timeout = 60);

#define BODY "{\"name\":\"pinned\"}"

/* Runs a shell command line; its standard output, trimmed. */
static const char *
sh(const char *name, const char *cmd)
{
	struct hx_proc *p = hx_proc_start(name, (const char *const[]){"/bin/sh", "-c", cmd, NULL});
	const char *out;
	size_t n;

	cr_assert_eq(hx_proc_wait(p, 20000), 0, "%s failed:\n%s", cmd,
	             hx_read_file(p->err_path, NULL));
	out = hx_read_file(p->out_path, NULL);
	n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	return hx_fmt("%.*s", (int)n, out);
}

/* The sha256// pin of the dev server certificate's public key. */
static const char *
server_pin(void)
{
	return hx_fmt("sha256//%s",
	              sh("pin", hx_fmt("openssl x509 -in %s/server.pem -pubkey -noout | openssl "
	                               "pkey -pubin -outform der | openssl dgst -sha256 -binary | "
	                               "base64",
	                               hx_certs())));
}

static struct hx_resp *
create(const struct hx_gw *gw)
{
	return hx_http("POST", hx_gw_url(gw, "/v1/containers"), NULL, BODY, strlen(BODY));
}

Test(it_pin, the_pinned_key_is_let_through)
{
	struct hx_gw *gw = hx_gw_start_tls(
	        NULL, hx_fmt("{\"upstream\":{\"pinned_pubkey\":\"%s\"}}", server_pin()), NULL);
	struct hx_resp *r = create(gw);

	cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
	cr_expect_eq(json_array_size(hx_stub_requests()), 1);
}

Test(it_pin, a_key_file_works_as_a_pin)
{
	const char *key = hx_path("server.pub.pem");
	struct hx_gw *gw;
	struct hx_resp *r;

	sh("pubkey", hx_fmt("openssl x509 -in %s/server.pem -pubkey -noout > %s", hx_certs(), key));
	gw = hx_gw_start_tls(NULL, hx_fmt("{\"upstream\":{\"pinned_pubkey\":\"%s\"}}", key), NULL);
	r = create(gw);
	cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
}

Test(it_pin, another_key_is_refused_though_the_certificate_verifies)
{
	/* A valid certificate for localhost from the trusted CA, with its
	 * own key: verification passes, the pin does not. */
	const char *other = hx_cert_issue("other", "DNS:localhost,IP:127.0.0.1");
	struct hx_tls tls = {.cert = other, .key = hx_fmt("%s/other.key", hx_certs())};
	const char *pin = server_pin();
	struct hx_gw *gw = hx_gw_start_tls(
	        NULL, hx_fmt("{\"upstream\":{\"pinned_pubkey\":\"%s\"}}", pin), &tls);
	struct hx_resp *r = create(gw);
	json_t *rec;

	cr_expect_eq(r->status, 502, "%ld %s", r->status, r->body);
	cr_expect_str_eq(hx_str(json_object_get(hx_resp_json(r), "error"), "code"),
	                 "upstream_unreachable", "%s", r->body);
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_str_eq(hx_str(rec, "decision"), "error");
}

Test(it_pin, check_refuses_a_malformed_pin)
{
	const char *cfg = hx_path("gw.json");
	struct hx_proc *p;

	hx_write_file(hx_path("policy.json"), "{}");
	hx_write_file(cfg, "{\"policy_file\":\"policy.json\",\"upstream\":{\"pinned_pubkey\":"
	                   "\"sha256//tooshort=\"}}");
	p = hx_proc_start("check",
	                  (const char *const[]){hx_gw_bin(), "--config", cfg, "--check", NULL});
	cr_assert_eq(hx_proc_wait(p, 10000), 1);
	cr_expect(hx_file_contains(p->err_path, "upstream.pinned_pubkey: must be"), "%s",
	          hx_read_file(p->err_path, NULL));
	hx_write_file(cfg, "{\"policy_file\":\"policy.json\",\"upstream\":{\"pinned_pubkey\":"
	                   "\"no-such.pem\"}}");
	p = hx_proc_start("check2",
	                  (const char *const[]){hx_gw_bin(), "--config", cfg, "--check", NULL});
	cr_assert_eq(hx_proc_wait(p, 10000), 1);
	cr_expect(hx_file_contains(p->err_path, "cannot read the public key file"), "%s",
	          hx_read_file(p->err_path, NULL));
}

Test(it_pin, http2_is_offered_to_the_upstream)
{
	int port = hx_free_port();
	const char *certs = hx_certs();
	struct hx_proc *srv = hx_proc_start(
	        "s_server",
	        (const char *const[]){"openssl", "s_server", "-naccept", "1", "-accept",
	                              hx_fmt("%d", port), "-cert", hx_fmt("%s/server.pem", certs),
	                              "-key", hx_fmt("%s/server.key", certs), "-alpn", "http/1.1",
	                              "-www", NULL});
	struct hx_gw *gw;

	/* It says ACCEPT once it listens (a probe connection would use up its
	 * one accept). */
	for (int i = 0; i < 500 && !hx_file_contains(srv->out_path, "ACCEPT"); i++)
		nanosleep(&(struct timespec){0, 20000000L}, NULL);
	cr_assert(hx_file_contains(srv->out_path, "ACCEPT"), "s_server did not listen:\n%s",
	          hx_read_file(srv->err_path, NULL));
	gw = hx_gw_start(NULL, hx_fmt("{\"upstream\":{\"base_url\":\"https://localhost:%d/v1\","
	                              "\"ca_file\":\"%s/ca.pem\"}}",
	                              port, certs));
	(void)hx_http("GET", hx_gw_url(gw, "/v1/containers"), NULL, NULL, 0);
	cr_assert_eq(hx_proc_wait(srv, 10000), 0, "s_server did not finish:\n%s",
	             hx_read_file(srv->err_path, NULL));
	cr_expect(hx_file_contains(srv->out_path, "ALPN protocols advertised by the client: h2"),
	          "%s", hx_read_file(srv->out_path, NULL));
}
