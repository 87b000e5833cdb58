/*
 * it_jwt: people authenticated by their identity provider's tokens,
 * against the real gateway. Keys are made by `openssl genpkey`, tokens
 * are signed here (tests/jwtmint.h) and their keys served as a JWKS file
 * or by the stub at auth.jwt.jwks_url. A token's groups name its tenant,
 * its person is in every record, the organization's key goes upstream,
 * and each refusal is a 401 that forwards nothing; no token is written
 * anywhere.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "jwtmint.h"

static void fini(void);

TestSuite(it_jwt, .init = hx_init, .fini = fini, .timeout = 90);

#define ISS      "https://login.example.com/tenant-1/v2.0"
#define AUD      "api://containers-gateway"
#define ORG_KEY  "sk-org-UPSTREAM-KEY-jwt-5521"
#define TEAM_KEY "sk-ops-team-KEY-3310"
#define JWKS_URI "/idp/keys.json"
#define CREATE   "{\"name\":\"c\",\"memory_limit\":\"4g\"}"

static EVP_PKEY *rsa, *ec;
static json_t *kept; /* what api_requests handed out */

/* The harness's teardown, and what this file made itself. */
static void
fini(void)
{
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	json_decref(kept);
	rsa = ec = NULL;
	kept = NULL;
	hx_fini();
}

/* A key made by `openssl genpkey` in the test's folder, loaded. */
static EVP_PKEY *
genpkey(const char *name, const char *const *opts)
{
	const char *argv[12] = {"/usr/bin/openssl", "genpkey", "-out", hx_path(name), NULL};
	struct hx_proc *p;
	size_t i = 4;

	for (; *opts; opts++)
		argv[i++] = *opts;
	argv[i] = NULL;
	p = hx_proc_start(name, argv);
	cr_assert_eq(hx_proc_wait(p, 30000), 0, "openssl genpkey: %s",
	             hx_read_file(p->err_path, NULL));
	return jm_key_file(hx_path(name));
}

static void
make_keys(void)
{
	rsa = genpkey("rsa.pem", (const char *[]){"-algorithm", "RSA", "-pkeyopt",
	                                          "rsa_keygen_bits:2048", NULL});
	ec = genpkey("ec.pem", (const char *[]){"-algorithm", "EC", "-pkeyopt",
	                                        "ec_paramgen_curve:P-256", NULL});
}

/* The JWKS: the RSA key as "rsa-1", and with ec the EC key as "ec-1". */
static const char *
jwks(int with_ec)
{
	char *text = jm_jwks(jm_jwk(rsa, "rsa-1"), with_ec ? jm_jwk(ec, "ec-1") : NULL);
	const char *out = hx_fmt("%s", text);

	free(text);
	return out;
}

/* The claims of alice of the data team, valid now, with fields replaced:
 * each of iss, aud, groups (JSON), exp and nbf (seconds from now) when
 * given (NULL, or 0 for the times, keeps the default). */
struct claims {
	const char *sub, *iss, *aud, *groups;
	long exp, nbf;
};

static const char *
claims_of(const struct claims *c)
{
	long long now = (long long)time(NULL);

	return hx_fmt("{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"%s\",\"email\":\"%s@example.com\","
	              "\"groups\":%s,\"iat\":%lld,\"exp\":%lld%s}",
	              c->iss ? c->iss : ISS, c->aud ? c->aud : AUD, c->sub ? c->sub : "alice",
	              c->sub ? c->sub : "alice", c->groups ? c->groups : "[\"data\",\"everyone\"]",
	              now - 5, now + (c->exp ? c->exp : 600),
	              c->nbf ? hx_fmt(",\"nbf\":%lld", now + c->nbf) : "");
}

/* A token signed by key under alg with kid. */
static const char *
token(EVP_PKEY *key, const char *alg, const char *kid, const struct claims *c)
{
	char *t = jm_sign(hx_fmt("{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg, kid),
	                  claims_of(c), key, alg, NULL, 0);
	const char *out = hx_fmt("%s", t);

	free(t);
	return out;
}

#define RS256(...) token(rsa, "RS256", "rsa-1", &(struct claims){__VA_ARGS__})
#define ES256(...) token(ec, "ES256", "ec-1", &(struct claims){__VA_ARGS__})

/* data-team (group "data"), ml (group "ml-eng", held to 1g) and ops
 * (a key, no group). */
static const char *
policy(void)
{
	return hx_fmt("{\"memory_limit\":{\"max\":\"16g\"},\"tenants\":{"
	              "\"data-team\":{\"oidc_groups\":[\"data\"],"
	              "\"upstream\":{\"project\":\"proj_data\"}},"
	              "\"ml\":{\"oidc_groups\":[\"ml-eng\"],"
	              "\"policy\":{\"memory_limit\":{\"max\":\"1g\"}}},"
	              "\"ops\":{\"api_keys_sha256\":[\"%s\"]}}}",
	              hx_key_digest(TEAM_KEY));
}

/* A gateway in mode whose auth.jwt takes its keys from source (JSON
 * members: "jwks_file": ... or "jwks_url": ...), written but not started. */
static struct hx_gw *
prepare(const char *mode, const char *source)
{
	setenv("GW_TEST_ORG_KEY", ORG_KEY, 1);
	return hx_gw_prepare(policy(),
	                     hx_fmt("{\"auth\":{\"mode\":\"%s\",\"jwt\":{\"issuer\":\"" ISS "\","
	                            "\"audience\":\"" AUD "\",%s}},"
	                            "\"upstream\":{\"api_key_env\":\"GW_TEST_ORG_KEY\"}}",
	                            mode, source));
}

/* Writes gw's config as it stands now. */
static void
write_config(const struct hx_gw *gw)
{
	char *text = json_dumps(gw->config, JSON_INDENT(1));

	hx_write_file(gw->config_path, text);
	free(text);
}

static struct hx_gw *
start(const char *mode, const char *source)
{
	struct hx_gw *gw = prepare(mode, source);

	hx_gw_launch(gw);
	return gw;
}

static struct hx_gw *
start_with_file(const char *mode)
{
	hx_write_file(hx_path("jwks.json"), jwks(1));
	return start(mode, "\"jwks_file\":\"jwks.json\"");
}

static struct hx_resp *
call(const struct hx_gw *gw, const char *bearer, const char *body)
{
	const char *h[3] = {"Content-Type: application/json",
	                    bearer ? hx_fmt("Authorization: Bearer %s", bearer) : NULL, NULL};

	return hx_http(body ? "POST" : "GET", hx_gw_url(gw, "/v1/containers"), h, body,
	               body ? strlen(body) : 0);
}

static const char *
code_of(struct hx_resp *r)
{
	return hx_str(json_object_get(hx_resp_json(r), "error"), "code");
}

/* The requests that reached the API (not the JWKS fetches); kept until
 * teardown. */
static json_t *
api_requests(void)
{
	json_t *all = hx_stub_requests(), *out = json_array(), *q;
	size_t i;

	if (kept == NULL)
		kept = json_array();
	json_array_append_new(kept, out);

	json_array_foreach(all, i, q)
	{
		if (strncmp(hx_str(q, "uri"), "/v1/", 4) == 0)
			json_array_append(out, q);
	}
	return out;
}

static const char *
header_of(json_t *q, const char *name)
{
	return hx_str(json_object_get(q, "headers"), name);
}

/* Neither the token nor its signature is in any file the gateway writes. */
static void
nowhere(const struct hx_gw *gw, const char *t)
{
	const char *sig = strrchr(t, '.') + 1;

	cr_expect(!hx_file_contains(gw->audit_path, t), "the token is in the audit log");
	cr_expect(!hx_file_contains(gw->out_path, t), "the token is on stdout");
	cr_expect(!hx_file_contains(gw->err_path, t), "the token is on stderr");
	if (strlen(sig) > 16) {
		cr_expect(!hx_file_contains(gw->audit_path, sig),
		          "its signature is in the audit log");
		cr_expect(!hx_file_contains(gw->err_path, sig), "its signature is on stderr");
	}
}

Test(it_jwt, rs256_and_es256_tokens_name_the_tenant_and_the_person)
{
	const char *alice, *bob;
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *recs, *rec, *reqs;

	make_keys();
	gw = start_with_file("gateway_keys");
	alice = RS256(.sub = "alice");
	bob = ES256(.sub = "bob", .groups = "[\"ml-eng\"]");

	r = call(gw, alice, CREATE);
	cr_assert_eq(r->status, 200, "%s", r->body);
	/* ml's policy holds bob to 1g: the token named his tenant. */
	r = call(gw, bob, CREATE);
	cr_expect_eq(r->status, 403, "%s", r->body);
	cr_expect_str_eq(code_of(r), "memory_limit_exceeded");
	r = call(gw, bob, NULL);
	cr_expect_eq(r->status, 200, "%s", r->body);

	/* The organization's key went upstream, billed to the tenant's project. */
	reqs = api_requests();
	cr_assert_eq(json_array_size(reqs), 2);
	cr_expect_str_eq(header_of(json_array_get(reqs, 0), "authorization"), "Bearer " ORG_KEY);
	cr_expect_str_eq(header_of(json_array_get(reqs, 0), "openai-project"), "proj_data");
	cr_expect_str_eq(header_of(json_array_get(reqs, 1), "authorization"), "Bearer " ORG_KEY);

	recs = hx_audit_wait(gw, 3, 5000);
	rec = json_array_get(recs, 0);
	cr_expect_str_eq(hx_str(rec, "tenant"), "data-team");
	cr_expect_str_eq(hx_str(rec, "credential"), "jwt:" ISS "#rsa-1");
	cr_expect_str_eq(hx_str(json_object_get(rec, "person"), "sub"), "alice");
	cr_expect_str_eq(hx_str(json_object_get(rec, "person"), "email"), "alice@example.com");
	rec = json_array_get(recs, 1);
	cr_expect_str_eq(hx_str(rec, "tenant"), "ml");
	cr_expect_str_eq(hx_str(rec, "credential"), "jwt:" ISS "#ec-1");
	cr_expect_str_eq(hx_str(json_object_get(rec, "person"), "sub"), "bob");
	cr_expect_str_eq(hx_str(rec, "code"), "memory_limit_exceeded");
	cr_expect_str_eq(hx_str(json_object_get(json_array_get(recs, 2), "person"), "sub"), "bob");
	/* The intent lines say who too. */
	{
		json_t *lines = hx_audit_lines(gw), *l;
		size_t i, intents = 0;

		json_array_foreach(lines, i, l)
		{
			if (strcmp(hx_str(l, "type"), "intent") != 0)
				continue;
			intents++;
			cr_expect_not_null(hx_str(json_object_get(l, "person"), "sub"));
		}
		cr_expect_eq(intents, 2);
	}
	nowhere(gw, alice);
	nowhere(gw, bob);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

/* auth.jwt.groups_claim as a path: the groups nested in an object of the
 * token (here "groups": {"roles": [...]}, as Keycloak's "realm_access")
 * name the tenant; a token whose claim is not shaped so names none. */
Test(it_jwt, a_nested_groups_claim_names_the_tenant)
{
	struct hx_gw *gw;
	struct hx_resp *r;

	make_keys();
	hx_write_file(hx_path("jwks.json"), jwks(1));
	gw = start("gateway_keys",
	           "\"jwks_file\":\"jwks.json\",\"groups_claim\":[\"groups\",\"roles\"]");
	r = call(gw, RS256(.groups = "{\"roles\":[\"ml-eng\"]}"),
	         "{\"name\":\"n\",\"memory_limit\":\"4g\"}");
	cr_expect_eq(r->status, 403, "ml is held to 1g: %s", r->body);
	r = call(gw, RS256(.groups = "{\"roles\":[\"data\"]}"), "{\"name\":\"n\"}");
	cr_expect_eq(r->status, 200, "%s", r->body);
	r = call(gw, RS256(.groups = "[\"data\"]"), "{\"name\":\"n\"}");
	cr_expect_eq(r->status, 401, "%s", r->body);
	cr_expect_str_eq(code_of(r), "token_no_tenant");
	cr_expect_str_eq(hx_str(json_array_get(hx_audit_wait(gw, 3, 5000), 1), "tenant"),
	                 "data-team");
	cr_expect_eq(json_array_size(api_requests()), 1);
}

/* auth.jwt.audience as a list: a token for any one of them is taken, one
 * for another application is not. */
Test(it_jwt, any_of_several_audiences_is_taken)
{
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *jwt;

	make_keys();
	hx_write_file(hx_path("jwks.json"), jwks(1));
	gw = prepare("gateway_keys", "\"jwks_file\":\"jwks.json\"");
	jwt = json_object_get(json_object_get(gw->config, "auth"), "jwt");
	json_object_set_new(jwt, "audience", json_pack("[s,s]", "cli-app", AUD));
	write_config(gw);
	hx_gw_launch(gw);
	r = call(gw, RS256(0), NULL);
	cr_expect_eq(r->status, 200, "%s", r->body);
	r = call(gw, RS256(.aud = "cli-app"), NULL);
	cr_expect_eq(r->status, 200, "%s", r->body);
	r = call(gw, RS256(.aud = "web-app"), NULL);
	cr_expect_eq(r->status, 401, "%s", r->body);
	cr_expect_str_eq(code_of(r), "token_wrong_audience");
}

/* A key's record names no person; a tenant's key still works beside
 * tokens. */
Test(it_jwt, a_keys_record_has_no_person)
{
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *rec;

	make_keys();
	gw = start_with_file("gateway_keys");
	r = call(gw, TEAM_KEY, NULL);
	cr_assert_eq(r->status, 200, "%s", r->body);
	rec = json_array_get(hx_audit_wait(gw, 1, 5000), 0);
	cr_expect_str_eq(hx_str(rec, "tenant"), "ops");
	cr_expect(strncmp(hx_str(rec, "credential"), "key:sha256:", 11) == 0);
	cr_expect(json_is_null(json_object_get(rec, "person")));
	cr_expect_str_eq(header_of(json_array_get(api_requests(), 0), "authorization"),
	                 "Bearer " ORG_KEY);
}

/* A token the gateway must refuse, and the code it says why with. */
struct refusal {
	const char *what, *token, *code;
};

Test(it_jwt, each_refusal_is_a_401_that_forwards_nothing)
{
	struct refusal cases[16];
	unsigned char *der = NULL;
	int derlen;
	EVP_PKEY *other;
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *recs, *rec;
	size_t i, n;
	char *t;

	make_keys();
	other = jm_keygen("RSA");
	derlen = i2d_PUBKEY(rsa, &der);
	cr_assert_gt(derlen, 0);
	gw = start_with_file("gateway_keys");

	n = 0;
	t = jm_sign("{\"alg\":\"none\",\"kid\":\"rsa-1\"}", claims_of(&(struct claims){0}), NULL,
	            "none", NULL, 0);
	cases[n++] = (struct refusal){"alg none", hx_fmt("%s", t), "token_algorithm_not_allowed"};
	free(t);
	/* HS256 keyed with the RSA key's public bytes: the confusion attack. */
	t = jm_sign("{\"alg\":\"HS256\",\"kid\":\"rsa-1\"}", claims_of(&(struct claims){0}), NULL,
	            "HS256", der, (size_t)derlen);
	cases[n++] = (struct refusal){"HS256", hx_fmt("%s", t), "token_algorithm_not_allowed"};
	free(t);
	cases[n++] = (struct refusal){"expired", RS256(.exp = -120), "token_expired"};
	cases[n++] = (struct refusal){"nbf to come", ES256(.nbf = 600), "token_not_yet_valid"};
	cases[n++] = (struct refusal){"wrong iss", RS256(.iss = "https://evil.example.com"),
	                              "token_wrong_issuer"};
	cases[n++] = (struct refusal){"wrong aud", ES256(.aud = "api://another-app"),
	                              "token_wrong_audience"};
	cases[n++] =
	        (struct refusal){"unknown kid", token(rsa, "RS256", "rsa-2", &(struct claims){0}),
	                         "token_unknown_key"};
	cases[n++] = (struct refusal){"another key under rsa-1",
	                              token(other, "RS256", "rsa-1", &(struct claims){0}),
	                              "token_bad_signature"};
	{
		/* alice's signature over mallory's claims: one group more. */
		const char *good = RS256(0), *dot1 = strchr(good, '.'), *dot2 = strrchr(good, '.');
		char *forged = jm_b64url_text(
		        claims_of(&(struct claims){.groups = "[\"data\",\"ml-eng\",\"admins\"]"}));

		cases[n++] = (struct refusal){
		        "tampered claims",
		        hx_fmt("%.*s.%s%s", (int)(dot1 - good), good, forged, dot2),
		        "token_bad_signature"};
		free(forged);
	}
	cases[n++] = (struct refusal){"no tenant's group", RS256(.groups = "[\"nobody\"]"),
	                              "token_no_tenant"};
	cases[n++] =
	        (struct refusal){"two tenants' groups", ES256(.groups = "[\"data\",\"ml-eng\"]"),
	                         "ambiguous_credentials"};

	for (i = 0; i < n; i++) {
		r = call(gw, cases[i].token, CREATE);
		cr_expect_eq(r->status, 401, "%s: %ld %s", cases[i].what, r->status, r->body);
		cr_expect_str_eq(code_of(r), cases[i].code, "%s: %s", cases[i].what, r->body);
		cr_expect_str_eq(hx_str(json_object_get(hx_resp_json(r), "error"), "type"),
		                 "invalid_request_error");
		cr_expect(json_is_null(
		        json_object_get(json_object_get(hx_resp_json(r), "error"), "param")));
		cr_expect(strstr(r->body, cases[i].token) == NULL, "%s: the answer quotes it",
		          cases[i].what);
	}
	cr_expect_eq(json_array_size(api_requests()), 0, "a refused token was forwarded");

	recs = hx_audit_wait(gw, n, 5000);
	for (i = 0; i < n; i++) {
		rec = json_array_get(recs, i);
		cr_expect_eq(json_integer_value(json_object_get(rec, "status")), 401);
		cr_expect_str_eq(hx_str(rec, "code"), cases[i].code, "%s", cases[i].what);
		/* A refused token is named by its digest; a verified one by
		 * its issuer and key, with its person. */
		if (strcmp(cases[i].code, "token_no_tenant") == 0 ||
		    strcmp(cases[i].code, "ambiguous_credentials") == 0) {
			cr_expect_str_eq(hx_str(json_object_get(rec, "person"), "sub"), "alice");
			cr_expect(strncmp(hx_str(rec, "credential"), "jwt:" ISS "#",
			                  5 + strlen(ISS)) == 0);
		} else {
			cr_expect(json_is_null(json_object_get(rec, "person")), "%s",
			          cases[i].what);
			cr_expect(strncmp(hx_str(rec, "credential"), "jwt:sha256:", 11) == 0, "%s",
			          hx_str(rec, "credential"));
		}
		cr_expect(json_is_null(json_object_get(rec, "tenant")), "%s", cases[i].what);
	}
	for (i = 0; i < n; i++)
		nowhere(gw, cases[i].token);
	OPENSSL_free(der);
	EVP_PKEY_free(other);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

/* In passthrough mode a client's own key goes upstream as before; a token
 * is no upstream key, so the organization's goes for it, with the
 * tenant's project and none of the client's. */
Test(it_jwt, passthrough_sends_the_organizations_key_for_a_token_only)
{
	const char *h[4] = {NULL, "OpenAI-Project: proj_mine", NULL, NULL};
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *reqs;

	make_keys();
	gw = start_with_file("passthrough");
	h[0] = hx_fmt("Authorization: Bearer %s", RS256(0));
	r = hx_http("GET", hx_gw_url(gw, "/v1/containers"), h, NULL, 0);
	cr_assert_eq(r->status, 200, "%s", r->body);
	h[0] = "Authorization: Bearer sk-clients-OWN-key-1";
	r = hx_http("GET", hx_gw_url(gw, "/v1/containers"), h, NULL, 0);
	cr_assert_eq(r->status, 200, "%s", r->body);
	/* No token at all: the organization's policy, as before. */
	r = call(gw, NULL, NULL);
	cr_expect_eq(r->status, 200, "%s", r->body);
	r = call(gw, RS256(.groups = "[\"nobody\"]"), NULL);
	cr_expect_eq(r->status, 401, "%s", r->body);
	cr_expect_str_eq(code_of(r), "token_no_tenant");

	reqs = api_requests();
	cr_assert_eq(json_array_size(reqs), 3);
	cr_expect_str_eq(header_of(json_array_get(reqs, 0), "authorization"), "Bearer " ORG_KEY);
	cr_expect_str_eq(header_of(json_array_get(reqs, 0), "openai-project"), "proj_data");
	cr_expect_str_eq(header_of(json_array_get(reqs, 1), "authorization"),
	                 "Bearer sk-clients-OWN-key-1");
	cr_expect_str_eq(header_of(json_array_get(reqs, 1), "openai-project"), "proj_mine");
	cr_expect_null(header_of(json_array_get(reqs, 2), "authorization"));
	cr_expect_str_eq(hx_str(json_array_get(hx_audit_wait(gw, 4, 5000), 0), "tenant"),
	                 "data-team");
}

/* Polls until a token is taken (the keys have been fetched): the status
 * of the last try. */
static long
until_taken(const struct hx_gw *gw, const char *t, int timeout_ms)
{
	struct hx_resp *r = NULL;
	int waited;

	for (waited = 0; waited <= timeout_ms; waited += 100) {
		r = call(gw, t, NULL);
		if (r->status == 200)
			break;
		hx_sleep_ms(100);
	}
	return r ? r->status : 0;
}

/* The stub serves the JWKS at auth.jwt.jwks_url: refused once (tokens
 * wait, 503, meanwhile), then served; a key the set lacks makes the
 * gateway fetch it again at once, not at the next refresh. */
Test(it_jwt, jwks_url_is_fetched_off_the_request_path_and_again_for_a_new_kid)
{
	struct hx_gw *gw;
	struct hx_resp *r;
	json_t *reqs, *q, *jwt;
	size_t i, fetches = 0;
	int admin;

	make_keys();
	/* The upstream's stub is the provider too. */
	gw = prepare("gateway_keys", "\"refresh_ms\":600000");
	admin = hx_free_port();
	json_object_set_new(gw->config, "admin_listen", json_string(hx_fmt("127.0.0.1:%d", admin)));
	jwt = json_object_get(json_object_get(gw->config, "auth"), "jwt");
	json_object_set_new(jwt, "jwks_url", json_string(hx_fmt("%s" JWKS_URI, gw->stub->url)));
	write_config(gw);
	hx_stub_next(hx_fmt("[{\"match\":\"" JWKS_URI "\",\"status\":503,\"json\":{},\"repeat\":2},"
	                    "{\"match\":\"" JWKS_URI "\",\"json\":%s,\"repeat\":1000}]",
	                    jwks(0)));
	hx_gw_launch(gw);
	/* Two failures: about 3 s before the keys are in. Keys work meanwhile;
	 * tokens wait, and readiness says why. */
	r = call(gw, RS256(0), NULL);
	cr_expect_eq(r->status, 503, "%s", r->body);
	cr_expect_str_eq(code_of(r), "jwks_unavailable");
	r = call(gw, TEAM_KEY, NULL);
	cr_expect_eq(r->status, 200, "%s", r->body);
	r = hx_http("GET", hx_fmt("http://127.0.0.1:%d/readyz", admin), NULL, NULL, 0);
	cr_expect_eq(r->status, 503, "%s", r->body);
	cr_expect_not_null(strstr(r->body, "auth.jwt.jwks_url"), "%s", r->body);
	cr_assert_eq(until_taken(gw, RS256(0), 15000), 200);
	r = hx_http("GET", hx_fmt("http://127.0.0.1:%d/readyz", admin), NULL, NULL, 0);
	cr_expect_eq(r->status, 200, "%s", r->body);

	/* The provider adds the EC key; the first token naming it is refused
	 * and brings the new set. */
	hx_stub_next_clear();
	hx_stub_next(hx_fmt("{\"match\":\"" JWKS_URI "\",\"json\":%s,\"repeat\":1000}", jwks(1)));
	r = call(gw, ES256(0), NULL);
	cr_expect_eq(r->status, 401, "%s", r->body);
	cr_expect_str_eq(code_of(r), "token_unknown_key");
	cr_expect_eq(until_taken(gw, ES256(0), 5000), 200);

	reqs = hx_stub_requests();
	json_array_foreach(reqs, i, q)
	{
		if (strcmp(hx_str(q, "uri"), JWKS_URI) == 0) {
			fetches++;
			cr_expect_str_eq(hx_str(q, "method"), "GET");
			cr_expect_null(header_of(q, "authorization"),
			               "no key goes to the provider");
		}
	}
	cr_expect_eq(fetches, 4, "two failures, the first set, the new one: %zu", fetches);
	cr_expect(hx_file_contains(gw->err_path, "trying again"), "%s",
	          hx_read_file(gw->err_path, NULL));
	cr_expect_eq(hx_gw_stop(gw), 0);
}

/* jwks_file is read again on SIGHUP; one that does not parse keeps the
 * keys in force. */
Test(it_jwt, sighup_reads_the_jwks_file_again)
{
	struct hx_gw *gw;
	struct hx_resp *r;

	make_keys();
	hx_write_file(hx_path("jwks.json"), jwks(0));
	gw = start("gateway_keys", "\"jwks_file\":\"jwks.json\"");
	r = call(gw, ES256(0), NULL);
	cr_expect_str_eq(code_of(r), "token_unknown_key", "%s", r->body);

	hx_write_file(hx_path("jwks.json"),
	              "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"x\",\"k\":\"AA\"}]}");
	cr_assert_eq(kill(gw->proc->pid, SIGHUP), 0);
	cr_assert(hx_wait_contains(gw->err_path, "reload failed", 10000));
	cr_expect(hx_file_contains(gw->err_path, "auth.jwt.jwks_file"), "%s",
	          hx_read_file(gw->err_path, NULL));
	r = call(gw, RS256(0), NULL);
	cr_expect_eq(r->status, 200, "the keys in force stay: %s", r->body);

	hx_write_file(hx_path("jwks.json"), jwks(1));
	cr_assert_eq(kill(gw->proc->pid, SIGHUP), 0);
	cr_assert(hx_wait_contains(gw->err_path, "\"reloaded ", 10000));
	r = call(gw, ES256(0), NULL);
	cr_expect_eq(r->status, 200, "%s", r->body);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

/* --check names every problem of auth.jwt in one pass. */
Test(it_jwt, check_reports_every_problem_of_auth_jwt)
{
	const char *argv[5] = {NULL, "--config", NULL, "--check", NULL};
	struct hx_proc *p;
	const char *err;

	hx_write_file(
	        hx_path("policy.json"),
	        "{\"tenants\":{\"a\":{\"oidc_groups\":[\"g\"]},\"b\":{\"oidc_groups\":[\"g\"]}}}");
	hx_write_file(hx_path("bad-jwks.json"), "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
	                                        "\"kid\":\"k\",\"x\":\"AA\",\"y\":\"AA\"}]}");
	hx_write_file(hx_path("g.json"),
	              "{\"policy_file\":\"policy.json\",\"audit\":{\"path\":\"audit.log\"},"
	              "\"auth\":{\"jwt\":{\"audience\":\"x\",\"jwks_url\":\"http://idp.example.com/"
	              "k\"}}}");
	argv[0] = hx_gw_bin();
	argv[2] = hx_path("g.json");
	p = hx_proc_start("check", argv);
	cr_assert_eq(hx_proc_wait(p, 10000), 1);
	err = hx_read_file(p->err_path, NULL);
	cr_expect_not_null(strstr(err, "auth.jwt.issuer: is required"), "%s", err);
	cr_expect_not_null(strstr(err, "auth.jwt.jwks_url: must be an https:// URL"), "%s", err);
	cr_expect_not_null(strstr(err, "a token is no upstream key"), "%s", err);

	hx_write_file(hx_path("g.json"),
	              "{\"policy_file\":\"policy.json\",\"audit\":{\"path\":\"audit.log\"},"
	              "\"upstream\":{\"api_key_env\":\"HOME\"},"
	              "\"auth\":{\"jwt\":{\"issuer\":\"i\",\"audience\":\"x\","
	              "\"jwks_file\":\"bad-jwks.json\"}}}");
	p = hx_proc_start("check2", argv);
	cr_assert_eq(hx_proc_wait(p, 10000), 1);
	err = hx_read_file(p->err_path, NULL);
	cr_expect_not_null(strstr(err, "auth.jwt.jwks_file: "), "%s", err);
	cr_expect_not_null(strstr(err, "keys[0] is not a P-256 public key"), "%s", err);
	cr_expect_not_null(strstr(err, "tenants a and b share an OIDC group"), "%s", err);
}

/* --check --online fetches auth.jwt.jwks_url once, as the gateway would:
 * a set with no usable key, an error status and an address where nothing
 * listens are each named at auth.jwt.jwks_url; a good set passes. */
Test(it_jwt, check_online_fetches_the_jwks_url)
{
	const char *argv[6] = {NULL, "--config", NULL, "--check", "--online", NULL};
	struct hx_gw *gw;
	struct hx_proc *p;
	json_t *jwt;
	const char *err;

	make_keys();
	gw = prepare("gateway_keys", "\"refresh_ms\":600000");
	jwt = json_object_get(json_object_get(gw->config, "auth"), "jwt");
	json_object_set_new(jwt, "jwks_url", json_string(hx_fmt("%s" JWKS_URI, gw->stub->url)));
	write_config(gw);
	argv[0] = hx_gw_bin();
	argv[2] = gw->config_path;

	hx_stub_next("{\"match\":\"" JWKS_URI "\",\"json\":{\"keys\":[{\"kty\":\"EC\"}]}}");
	p = hx_proc_start("check-bad-set", argv);
	cr_expect_eq(hx_proc_wait(p, 20000), 1);
	err = hx_read_file(p->err_path, NULL);
	cr_expect_not_null(strstr(err, "auth.jwt.jwks_url: no usable key set at "), "%s", err);

	hx_stub_next("{\"match\":\"" JWKS_URI "\",\"status\":503,\"json\":{}}");
	p = hx_proc_start("check-503", argv);
	cr_expect_eq(hx_proc_wait(p, 20000), 1);
	err = hx_read_file(p->err_path, NULL);
	cr_expect_not_null(strstr(err, "it answered 503"), "%s", err);

	hx_stub_next(hx_fmt("{\"match\":\"" JWKS_URI "\",\"json\":%s}", jwks(1)));
	p = hx_proc_start("check-good", argv);
	cr_expect_eq(hx_proc_wait(p, 20000), 0, "%s", hx_read_file(p->err_path, NULL));
	cr_expect_not_null(strstr(hx_read_file(p->out_path, NULL), "configuration OK"));
	cr_expect_eq(json_array_size(hx_stub_requests()), 3, "one fetch per check");

	/* Without --online nothing is fetched. */
	argv[4] = NULL;
	p = hx_proc_start("check-offline", argv);
	cr_expect_eq(hx_proc_wait(p, 20000), 0, "%s", hx_read_file(p->err_path, NULL));
	cr_expect_eq(json_array_size(hx_stub_requests()), 3);

	json_object_set_new(jwt, "jwks_url",
	                    json_string(hx_fmt("http://127.0.0.1:%d/jwks", hx_free_port())));
	write_config(gw);
	argv[4] = "--online";
	p = hx_proc_start("check-nobody", argv);
	cr_expect_eq(hx_proc_wait(p, 20000), 1);
	err = hx_read_file(p->err_path, NULL);
	cr_expect_not_null(strstr(err, "auth.jwt.jwks_url: no usable key set at "), "%s", err);
}

/* Workers verify with the set the main loop fetched, and ask it for a new
 * one from their own threads (make tsan runs this too). */
Test(it_jwt, every_worker_verifies_with_the_set_in_force)
{
	struct hx_gw *gw;
	json_t *jwt, *recs;
	size_t i, ok = 0;

	make_keys();
	gw = prepare("gateway_keys", "\"refresh_ms\":600000");
	json_object_set_new(gw->config, "workers", json_integer(3));
	jwt = json_object_get(json_object_get(gw->config, "auth"), "jwt");
	json_object_set_new(jwt, "jwks_url", json_string(hx_fmt("%s" JWKS_URI, gw->stub->url)));
	write_config(gw);
	hx_stub_next(hx_fmt("{\"match\":\"" JWKS_URI "\",\"json\":%s,\"repeat\":1000}", jwks(0)));
	hx_gw_launch(gw);
	cr_assert_eq(until_taken(gw, RS256(0), 10000), 200);
	hx_stub_next_clear();
	hx_stub_next(hx_fmt("{\"match\":\"" JWKS_URI "\",\"json\":%s,\"repeat\":1000}", jwks(1)));
	cr_assert_eq(until_taken(gw, ES256(0), 10000), 200);
	for (i = 0; i < 24; i++)
		ok += call(gw, i % 2 ? ES256(.sub = "w") : RS256(.sub = "w"), NULL)->status == 200;
	cr_expect_eq(ok, 24);
	recs = hx_audit_records(gw);
	cr_expect_str_eq(
	        hx_str(json_object_get(json_array_get(recs, json_array_size(recs) - 1), "person"),
	               "sub"),
	        "w");
	cr_expect_eq(hx_gw_stop(gw), 0);
}
