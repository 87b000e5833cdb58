/*
 * it_tls_front: the gateway's own listener over TLS, with certificates made
 * by certs/make-dev-certs.sh (what `make certs` runs, through hx_certs):
 * HTTPS with libcurl and with the curl command line, the protocol floor,
 * client certificates (required, optional, from the wrong CA) and the
 * identity they carry, and a certificate swapped by SIGHUP while a
 * connection made before it stays up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "harness.h"

TestSuite(it_tls_front, .init = hx_init, .fini = hx_fini, .timeout = 60);

#define BODY "{\"name\":\"tls-front\"}"

static const char *
cert(const char *name)
{
	return hx_fmt("%s/%s", hx_certs(), name);
}

/* "sha256:" and the hex SHA-256 of the certificate in the PEM file path. */
static const char *
fingerprint(const char *path)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	cr_assert_not_null(x, "cannot read %s", path);
	cr_assert_eq(X509_digest(x, EVP_sha256(), md, &n), 1);
	X509_free(x);
	for (i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return hx_fmt("sha256:%s", hex);
}

/* A gateway serving TLS with the dev server certificate; extra is more
 * config (a JSON object's members, without braces) or NULL. */
static struct hx_gw *
start_tls(const char *policy, const char *tls_extra, const char *extra)
{
	return hx_gw_start(policy, hx_fmt("{\"tls\":{\"cert\":\"%s\",\"key\":\"%s\"%s%s}%s%s}",
	                                  cert("server.pem"), cert("server.key"),
	                                  tls_extra ? "," : "", tls_extra ? tls_extra : "",
	                                  extra ? "," : "", extra ? extra : ""));
}

static const char *
https(const struct hx_gw *gw, const char *path)
{
	return hx_fmt("https://localhost:%d%s", gw->port, path);
}

/* POST /v1/containers over HTTPS, trusting the dev CA, with a client
 * certificate when name is not NULL (<certs>/<name>.pem and .key). */
static struct hx_resp *
create(const struct hx_gw *gw, const char *name, long ssl_version)
{
	struct hx_req rq = {.method = "POST",
	                    .url = https(gw, "/v1/containers"),
	                    .body = BODY,
	                    .len = strlen(BODY),
	                    .cainfo = cert("ca.pem"),
	                    .ssl_version = ssl_version};

	if (name != NULL) {
		rq.client_cert = cert(hx_fmt("%s.pem", name));
		rq.client_key = cert(hx_fmt("%s.key", name));
	}
	return hx_request(&rq);
}

static void
expect_created(struct hx_resp *r)
{
	cr_assert_eq(r->status, 200, "status %ld: %s%s", r->status, r->error, r->body);
	cr_expect_str_eq(hx_str(hx_resp_json(r), "name"), "tls-front", "%s", r->body);
}

Test(it_tls_front, https_with_libcurl_and_the_dev_certificates)
{
	struct hx_gw *gw = start_tls(NULL, NULL, NULL);
	json_t *rec;

	expect_created(create(gw, NULL, 0));
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_str_eq(hx_str(rec, "decision"), "allow");
	cr_expect_eq(json_array_size(hx_stub_requests()), 1);
}

Test(it_tls_front, https_with_the_curl_command_line)
{
	struct hx_gw *gw = start_tls(NULL, NULL, NULL);
	const char *argv[] = {"curl",
	                      "-sS",
	                      "--cacert",
	                      cert("ca.pem"),
	                      "-H",
	                      "Content-Type: application/json",
	                      "-d",
	                      BODY,
	                      "-w",
	                      "\\nstatus=%{http_code} tls=%{ssl_verify_result}\\n",
	                      https(gw, "/v1/containers"),
	                      NULL};
	struct hx_proc *p = hx_proc_start("curl", argv);
	const char *out;

	cr_assert_eq(hx_proc_wait(p, 20000), 0, "curl failed:\n%s",
	             hx_read_file(p->err_path, NULL));
	out = hx_read_file(p->out_path, NULL);
	cr_expect(strstr(out, "\"name\":\"tls-front\"") != NULL, "%s", out);
	cr_expect(strstr(out, "status=200 tls=0") != NULL, "%s", out);
}

Test(it_tls_front, plain_http_on_the_tls_port_gets_no_answer)
{
	struct hx_gw *gw = start_tls(NULL, NULL, NULL);
	const char *req = "GET /v1/containers HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t n;
	const char *out = hx_raw(gw->port, req, strlen(req), 3000, 0, &n);

	cr_assert_not_null(out);
	cr_expect_null(strstr(out, "HTTP/1.1"), "answered in plain text: %s", out);
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
}

Test(it_tls_front, min_version_1_3_refuses_a_tls_1_2_client)
{
	struct hx_gw *gw = start_tls(NULL, "\"min_version\":\"1.3\"", NULL);
	struct hx_resp *r;

	r = create(gw, NULL, CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2);
	cr_expect_eq(r->status, 0, "a TLS 1.2 client got %ld", r->status);
	expect_created(create(gw, NULL, CURL_SSLVERSION_TLSv1_3));
}

Test(it_tls_front, tls_1_2_is_served_by_default)
{
	struct hx_gw *gw = start_tls(NULL, NULL, NULL);

	expect_created(create(gw, NULL, CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2));
}

Test(it_tls_front, a_required_client_certificate_is_checked)
{
	struct hx_gw *gw = start_tls(
	        NULL, hx_fmt("\"client_ca\":\"%s\",\"require_client_cert\":true", cert("ca.pem")),
	        "\"log\":{\"level\":\"debug\"}");
	const char *other = hx_path("other-ca");
	struct hx_proc *p;
	struct hx_resp *r;

	/* The dev client certificate: served, and who it names is known. */
	expect_created(create(gw, "client", 0));
	cr_expect(hx_wait_contains(gw->err_path, "verified certificate CN=data-team-service", 5000),
	          "no identity in the log:\n%s", hx_read_file(gw->err_path, NULL));

	/* None at all: the handshake is refused; nothing is forwarded. */
	r = create(gw, NULL, 0);
	cr_expect_eq(r->status, 0, "a client without a certificate got %ld", r->status);

	/* One from another CA: refused too. */
	p = hx_proc_start("other-certs",
	                  (const char *const[]){"certs/make-dev-certs.sh", other, NULL});
	cr_assert_eq(hx_proc_wait(p, 20000), 0, "make-dev-certs.sh failed");
	{
		struct hx_req rq = {.method = "POST",
		                    .url = https(gw, "/v1/containers"),
		                    .body = BODY,
		                    .len = strlen(BODY),
		                    .cainfo = cert("ca.pem"),
		                    .client_cert = hx_fmt("%s/client.pem", other),
		                    .client_key = hx_fmt("%s/client.key", other)};

		r = hx_request(&rq);
		cr_expect_eq(r->status, 0, "a certificate from another CA got %ld", r->status);
	}
	cr_expect_eq(json_array_size(hx_stub_requests()), 1);
	cr_expect_eq(json_array_size(hx_audit_records(gw)), 1);
}

Test(it_tls_front, an_optional_client_certificate_names_its_holder)
{
	struct hx_gw *gw = start_tls(NULL, hx_fmt("\"client_ca\":\"%s\"", cert("ca.pem")),
	                             "\"log\":{\"level\":\"debug\"}");

	hx_client_cert_issue("ml", "/O=Example/CN=ml-batch",
	                     "DNS:ml.internal,URI:spiffe://example.org/ml", NULL);
	expect_created(create(gw, NULL, 0));
	expect_created(create(gw, "ml", 0));
	cr_expect(hx_wait_contains(gw->err_path,
	                           "verified certificate CN=ml-batch,O=Example (DNS:ml.internal, "
	                           "URI:spiffe://example.org/ml)",
	                           5000),
	          "no identity in the log:\n%s", hx_read_file(gw->err_path, NULL));
	cr_expect_eq(json_array_size(hx_audit_wait(gw, 2, 5000)), 2);
}

/* Writes gw->config back to its file, for a reload. */
static void
write_config(const struct hx_gw *gw)
{
	char *text = json_dumps(gw->config, JSON_INDENT(2));

	cr_assert_not_null(text);
	hx_write_file(gw->config_path, text);
	free(text);
}

/* ---- a TLS client by hand, to hold one connection across a reload ---- */

struct tconn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

static void
tconn_free(struct tconn *t)
{
	if (t->ssl)
		SSL_free(t->ssl);
	if (t->ctx)
		SSL_CTX_free(t->ctx);
	if (t->fd >= 0)
		close(t->fd);
}

static bool
tconn_open(struct tconn *t, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

	t->fd = -1;
	t->ssl = NULL;
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (t->ctx == NULL || SSL_CTX_load_verify_locations(t->ctx, cert("ca.pem"), NULL) != 1)
		return false;
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (t->fd < 0 || connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return false;
	t->ssl = SSL_new(t->ctx);
	if (t->ssl == NULL)
		return false;
	SSL_set_tlsext_host_name(t->ssl, "localhost");
	SSL_set1_host(t->ssl, "localhost");
	SSL_set_fd(t->ssl, t->fd);
	return SSL_connect(t->ssl) == 1;
}

/* The CN of the certificate the server showed. */
static const char *
tconn_server_cn(struct tconn *t)
{
	X509 *x = SSL_get1_peer_certificate(t->ssl);
	char cn[128] = "";

	if (x == NULL)
		return "";
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	X509_free(x);
	return hx_fmt("%s", cn);
}

/* One GET on the connection, kept alive; the status, or 0 when the
 * connection failed. */
static int
tconn_get(struct tconn *t)
{
	const char *req = "GET /v1/containers HTTP/1.1\r\nHost: localhost\r\n\r\n";
	char buf[65536];
	size_t n = 0;
	int status = 0, len = -1;
	const char *end, *cl;

	if (SSL_write(t->ssl, req, (int)strlen(req)) <= 0)
		return 0;
	for (;;) {
		int r = SSL_read(t->ssl, buf + n, (int)(sizeof(buf) - 1 - n));

		if (r <= 0)
			return 0;
		n += (size_t)r;
		buf[n] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end == NULL)
			continue;
		cl = strstr(buf, "Content-Length: ");
		if (cl == NULL)
			return 0;
		len = atoi(cl + 16);
		if (n >= (size_t)(end + 4 - buf) + (size_t)len)
			break;
	}
	sscanf(buf, "HTTP/1.1 %d", &status);
	return status;
}

Test(it_tls_front, sighup_swaps_the_certificate_without_dropping_connections)
{
	struct hx_gw *gw = start_tls(NULL, NULL, NULL);
	struct tconn before, after, bad;
	json_t *tls;

	cr_assert(tconn_open(&before, gw->port), "no TLS connection");
	cr_assert_eq(tconn_get(&before), 200);
	cr_expect_str_eq(tconn_server_cn(&before), "localhost");

	/* A new certificate (CN "renewed") for the same names. */
	hx_cert_issue("renewed", "DNS:localhost,IP:127.0.0.1");
	tls = json_object_get(gw->config, "tls");
	json_object_set_new(tls, "cert", json_string(cert("renewed.pem")));
	json_object_set_new(tls, "key", json_string(cert("renewed.key")));
	write_config(gw);
	cr_assert_eq(kill(gw->proc->pid, SIGHUP), 0);
	cr_assert(hx_wait_contains(gw->err_path, "reloaded", 10000), "no reload:\n%s",
	          hx_read_file(gw->err_path, NULL));

	/* The connection made before carries on, with the old certificate. */
	cr_expect_eq(tconn_get(&before), 200, "the old connection was dropped");
	/* A new one sees the new certificate. */
	cr_assert(tconn_open(&after, gw->port), "no TLS connection after the reload");
	cr_expect_str_eq(tconn_server_cn(&after), "renewed");
	cr_expect_eq(tconn_get(&after), 200);

	/* A key that does not match: the reload fails, the renewed
	 * certificate stays in force. */
	json_object_set_new(tls, "key", json_string(cert("server.key")));
	write_config(gw);
	cr_assert_eq(kill(gw->proc->pid, SIGHUP), 0);
	cr_assert(hx_wait_contains(gw->err_path, "reload failed", 10000), "no failed reload:\n%s",
	          hx_read_file(gw->err_path, NULL));
	cr_expect(hx_file_contains(gw->err_path, "tls.key"), "%s",
	          hx_read_file(gw->err_path, NULL));
	cr_assert(tconn_open(&bad, gw->port), "no TLS connection after the failed reload");
	cr_expect_str_eq(tconn_server_cn(&bad), "renewed");
	cr_expect_eq(tconn_get(&bad), 200);
	tconn_free(&before);
	tconn_free(&after);
	tconn_free(&bad);
}

Test(it_tls_front, check_reports_bad_tls_settings)
{
	const char *cfg = hx_path("bad.json");
	struct hx_proc *p;
	const char *err;

	hx_write_file(hx_path("policy.json"), "{}");
	hx_write_file(cfg,
	              hx_fmt("{\"policy_file\":\"policy.json\",\"tls\":{\"cert\":\"%s\",\"key\":"
	                     "\"%s\",\"require_client_cert\":true,\"min_version\":\"1.1\"}}",
	                     cert("server.pem"), cert("client.key")));
	p = hx_proc_start("check",
	                  (const char *const[]){hx_gw_bin(), "--config", cfg, "--check", NULL});
	cr_assert_eq(hx_proc_wait(p, 10000), 1);
	err = hx_read_file(p->err_path, NULL);
	cr_expect(strstr(err, "tls.min_version: must be one of \"1.2\", \"1.3\"") != NULL, "%s",
	          err);
	hx_write_file(cfg,
	              hx_fmt("{\"policy_file\":\"policy.json\",\"tls\":{\"cert\":\"%s\",\"key\":"
	                     "\"%s\",\"require_client_cert\":true}}",
	                     cert("server.pem"), cert("client.key")));
	p = hx_proc_start("check2",
	                  (const char *const[]){hx_gw_bin(), "--config", cfg, "--check", NULL});
	cr_assert_eq(hx_proc_wait(p, 10000), 1);
	err = hx_read_file(p->err_path, NULL);
	cr_expect(strstr(err, "tls.require_client_cert: needs tls.client_ca") != NULL, "%s", err);
	cr_expect(strstr(err, "tls.key: ") != NULL && strstr(err, "is not the key of") != NULL,
	          "%s", err);
}

/*
 * The mTLS -> tenant mapping end to end: a certificate's subject or one of
 * its SANs, listed in a tenant's client_cert_subjects, makes the request
 * that tenant's (its policy applies, the audit record names it); no key is
 * sent. front.c's authenticate() looks the certificate up with
 * tenants_by_cert().
 */
Test(it_tls_front, an_mtls_client_maps_to_its_tenant)
{
	struct hx_gw *gw = start_tls(
	        "{\"memory_limit\":{\"max\":\"16g\"},\"tenants\":{"
	        "\"data-team\":{\"client_cert_subjects\":[\"CN=data-team-service\"]},"
	        "\"ml\":{\"client_cert_subjects\":[\"URI:spiffe://example.org/ml\"],"
	        "\"policy\":{\"memory_limit\":{\"max\":\"1g\"}}}}}",
	        hx_fmt("\"client_ca\":\"%s\",\"require_client_cert\":true", cert("ca.pem")), NULL);
	const char *big = "{\"name\":\"tls-front\",\"memory_limit\":\"4g\"}";
	struct hx_req rq = {.method = "POST",
	                    .url = https(gw, "/v1/containers"),
	                    .body = big,
	                    .len = strlen(big),
	                    .cainfo = cert("ca.pem")};
	struct hx_resp *r;
	json_t *recs;

	hx_client_cert_issue("ml", "/CN=ml-batch", "DNS:ml.internal,URI:spiffe://example.org/ml",
	                     NULL);
	rq.client_cert = cert("client.pem");
	rq.client_key = cert("client.key");
	r = hx_request(&rq);
	cr_expect_eq(r->status, 200, "data-team: %ld %s", r->status, r->body);
	rq.client_cert = cert("ml.pem");
	rq.client_key = cert("ml.key");
	r = hx_request(&rq);
	cr_expect_eq(r->status, 403, "ml is held to 1g: %ld %s", r->status, r->body);
	recs = hx_audit_wait(gw, 2, 5000);
	cr_expect_str_eq(hx_str(json_array_get(recs, 0), "tenant"), "data-team");
	cr_expect_str_eq(hx_str(json_array_get(recs, 1), "tenant"), "ml");
	/* Which certificate it was: its fingerprint, as openssl shows it. */
	cr_expect_str_eq(hx_str(json_array_get(recs, 0), "credential"),
	                 hx_fmt("cert:%s", fingerprint(cert("client.pem"))));
	cr_expect_str_eq(hx_str(json_array_get(recs, 1), "credential"),
	                 hx_fmt("cert:%s", fingerprint(cert("ml.pem"))));
}

/* A key and a client certificate that name different tenants could be
 * read either way: refused with 401, never forwarded. The same two naming
 * one tenant are fine. */
Test(it_tls_front, a_key_and_a_certificate_of_different_tenants_are_refused)
{
	struct hx_gw *gw = start_tls(
	        hx_fmt("{\"tenants\":{"
	               "\"data-team\":{\"client_cert_subjects\":[\"CN=data-team-service\"],"
	               "\"api_keys_sha256\":[\"%s\"]},"
	               "\"ml\":{\"api_keys_sha256\":[\"%s\"]}}}",
	               hx_key_digest("sk-data-KEY-1"), hx_key_digest("sk-ml-KEY-2")),
	        hx_fmt("\"client_ca\":\"%s\"", cert("ca.pem")), NULL);
	const char *h[] = {"Authorization: Bearer sk-ml-KEY-2", NULL};
	struct hx_req rq = {.url = https(gw, "/v1/containers"),
	                    .headers = h,
	                    .cainfo = cert("ca.pem"),
	                    .client_cert = cert("client.pem"),
	                    .client_key = cert("client.key")};
	struct hx_resp *r;

	r = hx_request(&rq);
	cr_expect_eq(r->status, 401, "%ld %s", r->status, r->body);
	cr_expect_str_eq(hx_str(json_object_get(hx_resp_json(r), "error"), "code"),
	                 "ambiguous_credentials", "%s", r->body);
	cr_expect_eq(json_array_size(hx_stub_requests()), 0);
	h[0] = "Authorization: Bearer sk-data-KEY-1";
	r = hx_request(&rq);
	cr_expect_eq(r->status, 200, "%ld %s", r->status, r->body);
}
