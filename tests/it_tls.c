/*
 * it_tls: the gateway talks to its upstream over real TLS, with
 * certificates made by openssl (certs/make-dev-certs.sh, through
 * hx_certs), and verifies them. The stand-in upstream serves only HTTPS
 * here, so a request it recorded came over TLS; a handshake the gateway
 * refused leaves no record, a 502, one audit line and, in the stub's
 * stderr, the alert the gateway sent.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(it_tls, .init = hx_init, .fini = hx_fini, .timeout = 60);

#define CLIENT_KEY "sk-client-TLS-MARKER-5e81b0"
#define BODY       "{\"name\":\"tls\"}"

static const char *const auth_headers[] = {"Authorization: Bearer " CLIENT_KEY,
                                           "Content-Type: application/json", NULL};

static struct hx_resp *
create(const struct hx_gw *gw)
{
	return hx_http("POST", hx_gw_url(gw, "/v1/containers"), auth_headers, BODY, strlen(BODY));
}

/* The single audit record a test's one request produced. */
static json_t *
only_record(const struct hx_gw *gw)
{
	json_t *recs = hx_audit_wait(gw, 1, 5000);

	cr_assert_eq(json_array_size(recs), 1, "audit log has %zu records, want 1",
	             json_array_size(recs));
	return json_array_get(recs, 0);
}

/* The one request the stub received; it only speaks TLS. */
static json_t *
only_forwarded(void)
{
	json_t *reqs = hx_stub_requests();

	cr_assert_eq(json_array_size(reqs), 1, "the upstream received %zu requests, want 1",
	             json_array_size(reqs));
	return json_array_get(reqs, 0);
}

/* The client key appears in none of the gateway's outputs. */
static void
expect_no_client_key(const struct hx_gw *gw)
{
	cr_expect(!hx_file_contains(gw->audit_path, CLIENT_KEY), "client key in the audit log");
	cr_expect(!hx_file_contains(gw->out_path, CLIENT_KEY), "client key on stdout");
	cr_expect(!hx_file_contains(gw->err_path, CLIENT_KEY), "client key on stderr");
}

/* A 200 that went through the stub, as a container named "tls". */
static void
expect_forwarded(const struct hx_gw *gw, struct hx_resp *r)
{
	json_t *up, *rec;

	cr_assert_eq(r->status, 200, "status %ld, want 200: %s%s", r->status, r->error, r->body);
	cr_expect_str_eq(hx_str(hx_resp_json(r), "object"), "container", "%s", r->body);
	cr_expect_str_eq(hx_str(hx_resp_json(r), "name"), "tls", "%s", r->body);
	up = only_forwarded();
	cr_expect_str_eq(hx_str(up, "method"), "POST");
	cr_expect_str_eq(hx_str(up, "uri"), "/v1/containers");
	cr_expect_str_eq(hx_str(json_object_get(up, "headers"), "host"),
	                 hx_fmt("localhost:%d", gw->stub_port));
	rec = only_record(gw);
	cr_expect_str_eq(hx_str(rec, "decision"), "allow");
	cr_expect_eq(json_integer_value(json_object_get(rec, "upstream_status")), 200);
}

/* The gateway refused the upstream's certificate: a 502 in the error shape,
 * nothing recorded upstream, one audit line that says so. */
static void
expect_refused(const struct hx_gw *gw, struct hx_resp *r)
{
	json_t *err = json_object_get(hx_resp_json(r), "error"), *rec, *reqs;

	cr_assert_eq(r->status, 502, "status %ld, want 502: %s%s", r->status, r->error, r->body);
	cr_assert(json_is_object(err), "not the error shape: %s", r->body);
	cr_expect_str_eq(hx_str(err, "type"), "upstream_error", "%s", r->body);
	cr_expect_str_eq(hx_str(err, "code"), "upstream_unreachable", "%s", r->body);
	cr_expect(json_is_null(json_object_get(err, "param")), "%s", r->body);
	cr_expect_not_null(hx_resp_header(r, "x-request-id"));
	reqs = hx_stub_requests();
	cr_expect_eq(json_array_size(reqs), 0, "the upstream recorded %zu request(s)",
	             json_array_size(reqs));
	rec = only_record(gw);
	cr_expect_str_eq(hx_str(rec, "decision"), "error");
	cr_expect_str_eq(hx_str(rec, "code"), "upstream_unreachable");
	cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 502);
	cr_expect(json_is_null(json_object_get(rec, "upstream_status")));
	expect_no_client_key(gw);
}

/* Runs openssl s_client against the stub at one protocol version; its exit status. */
static int
handshake(const struct hx_stub *s, const char *version)
{
	const char *argv[] = {"openssl",
	                      "s_client",
	                      "-connect",
	                      hx_fmt("127.0.0.1:%d", s->port),
	                      version,
	                      "-cipher",
	                      "DEFAULT:@SECLEVEL=0",
	                      "-CAfile",
	                      s->ca_file,
	                      "-verify_return_error",
	                      NULL};
	struct hx_proc *p = hx_proc_start(hx_fmt("s_client%s", version), argv);
	int st = hx_proc_wait(p, 10000);

	cr_assert_neq(st, -1, "openssl s_client %s did not finish", version);
	return st;
}

Test(it_tls, the_stub_speaks_only_https_from_tls_1_2_up)
{
	struct hx_stub *s = hx_stub_start_tls(NULL, NULL);
	struct hx_req untrusted = {.url = hx_fmt("%s/__stub/health", s->url)};
	struct hx_resp *r;

	cr_expect_eq(strncmp(s->url, "https://", 8), 0, "%s", s->url);
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
	r = hx_http("GET", hx_fmt("http://127.0.0.1:%d/__stub/health", s->port), NULL, NULL, 0);
	cr_expect_eq(r->status, 0, "plain HTTP got %ld %s", r->status, r->body);
	r = hx_request(&untrusted);
	cr_expect_eq(r->status, 0, "HTTPS without the dev CA got %ld", r->status);
	cr_expect_eq(handshake(s, "-tls1_2"), 0, "TLS 1.2 was refused");
	cr_expect_eq(handshake(s, "-tls1_3"), 0, "TLS 1.3 was refused");
	cr_expect_neq(handshake(s, "-tls1_1"), 0, "TLS 1.1 was accepted");
	cr_expect(hx_wait_contains(s->proc->err_path,
	                           "the stub sent fatal alert \"protocol version\"", 5000),
	          "the stub did not refuse TLS 1.1 itself");
	cr_expect_eq(hx_proc_stop(s->proc), 0, "the stub exited badly:\n%s",
	             hx_read_file(s->proc->err_path, NULL));
}

Test(it_tls, verified_against_the_dev_ca_the_request_goes_through)
{
	struct hx_gw *gw = hx_gw_start_tls("{}", NULL, NULL);
	json_t *up = json_object_get(gw->config, "upstream");

	cr_assert_eq(strncmp(hx_str(up, "base_url"), "https://localhost:", 18), 0, "%s",
	             hx_str(up, "base_url"));
	cr_assert_str_eq(hx_str(up, "ca_file"), hx_fmt("%s/ca.pem", hx_certs()));
	cr_assert(json_object_get(up, "insecure_skip_verify") == NULL);
	expect_forwarded(gw, create(gw));
	cr_expect(!hx_file_contains(gw->err_path, "insecure_skip_verify"),
	          "a verification warning although verification is on");
	cr_expect_eq(hx_gw_stop(gw), 0);
}

Test(it_tls, the_system_store_does_not_trust_the_dev_ca)
{
	struct hx_gw *gw = hx_gw_start_tls("{}", "{\"upstream\":{\"ca_file\":null}}", NULL);

	cr_assert_null(json_object_get(json_object_get(gw->config, "upstream"), "ca_file"));
	expect_refused(gw, create(gw));
	cr_expect(hx_wait_contains(gw->stub->proc->err_path,
	                           "the client sent fatal alert \"unknown CA\"", 5000),
	          "the gateway sent no unknown-CA alert:\n%s",
	          hx_read_file(gw->stub->proc->err_path, NULL));
	cr_expect_eq(hx_gw_stop(gw), 0);
}

Test(it_tls, a_certificate_for_another_name_is_refused)
{
	/* Signed by the CA the gateway trusts, for a name it does not dial. */
	const char *pem = hx_cert_issue("wrong", "DNS:wrong.example");
	struct hx_tls tls = {
	        .cert = pem, .key = hx_fmt("%s/wrong.key", hx_certs()), .name = "wrong.example"};
	struct hx_gw *gw = hx_gw_start_tls("{}", NULL, &tls);

	/* The harness's own calls verify it as wrong.example: the chain is good. */
	cr_assert_str_eq(gw->stub->url, hx_fmt("https://wrong.example:%d", gw->stub_port));
	cr_assert_not_null(json_object_get(json_object_get(gw->config, "upstream"), "ca_file"));
	expect_refused(gw, create(gw));
	cr_expect_eq(hx_gw_stop(gw), 0);
}

Test(it_tls, an_address_the_certificate_does_not_name_is_refused)
{
	/* A name for localhost is no name for 127.0.0.1, though both are this host. */
	const char *pem = hx_cert_issue("nameonly", "DNS:localhost");
	struct hx_tls tls = {.cert = pem,
	                     .key = hx_fmt("%s/nameonly.key", hx_certs()),
	                     .name = "localhost",
	                     .upstream_host = "127.0.0.1"};
	struct hx_gw *gw = hx_gw_start_tls("{}", NULL, &tls);

	expect_refused(gw, create(gw));
	cr_expect_eq(hx_gw_stop(gw), 0);
}

Test(it_tls, insecure_skip_verify_goes_through_and_warns)
{
	struct hx_gw *gw = hx_gw_start_tls(
	        "{}", "{\"upstream\":{\"ca_file\":null,\"insecure_skip_verify\":true}}", NULL);
	const char *err;
	bool warned = false;

	cr_assert_null(json_object_get(json_object_get(gw->config, "upstream"), "ca_file"));
	expect_forwarded(gw, create(gw));
	cr_expect_eq(hx_gw_stop(gw), 0);
	/* The log is a JSON object per line; the warning is one at level warn. */
	err = hx_read_file(gw->err_path, NULL);
	cr_assert_not_null(err);
	for (const char *line = err; *line != '\0' && !warned;) {
		const char *nl = strchr(line, '\n');
		size_t n = nl != NULL ? (size_t)(nl - line) : strlen(line);
		json_t *v = json_loadb(line, n, 0, NULL);
		const char *msg = hx_str(v, "msg");

		warned = msg != NULL && strstr(msg, "insecure_skip_verify") != NULL &&
		         strstr(msg, "NOT verified") != NULL &&
		         strcmp(hx_str(v, "level") != NULL ? hx_str(v, "level") : "", "warn") == 0;
		json_decref(v);
		line += n + (nl != NULL);
	}
	cr_expect(warned, "no warning that verification is off on stderr:\n%s", err);
}

Test(it_tls, the_client_key_reaches_the_upstream_over_tls_and_no_log)
{
	struct hx_gw *gw = hx_gw_start_tls("{}", "{\"log\":{\"level\":\"debug\"}}", NULL);
	struct hx_resp *r = create(gw);
	json_t *up;

	cr_assert_eq(r->status, 200, "%ld %s%s", r->status, r->error, r->body);
	up = only_forwarded();
	cr_expect_str_eq(hx_str(json_object_get(up, "headers"), "authorization"),
	                 "Bearer " CLIENT_KEY);
	only_record(gw);
	/* Stopped first, so everything the gateway was going to write is written. */
	cr_expect_eq(hx_gw_stop(gw), 0);
	expect_no_client_key(gw);
	cr_expect(hx_file_contains(gw->stub->proc->err_path, "(TLS)"),
	          "the stub was not serving TLS");
}
