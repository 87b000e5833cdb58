/*
 * Tests for gateway/policy/jwt.c: tokens signed at test time with keys
 * OpenSSL makes (tests/jwtmint.h), verified for each algorithm, and
 * refused for each reason the gateway gives; key sets that are taken,
 * skipped in part, or refused whole. (Tokens against the real binary are
 * tests/it_jwt.c.)
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "jwtmint.h"
#include "lib/base64.h"
#include "lib/secmem.h"
#include "policy/jwt.h"

#define ISS "https://idp.example.com"
#define AUD "containers-gateway"
#define NOW 1800000000LL

static EVP_PKEY *rsa, *ec, *ed;
static struct jwt_keys *keys;
static const char *const person_claims[] = {"email", "name"};
static const char *const groups_claim[] = {"groups"};
static const char *const audiences[] = {AUD};
static const struct jwt_rules rules = {ISS, audiences, 1, 60, groups_claim, 1, person_claims, 2};

static void
setup(void)
{
	json_t *set, *list;
	struct err e;
	char *text;

	/* Before any JSON is made: jansson's allocator is the gateway's. */
	secmem_init();
	set = json_object();
	list = json_array();
	rsa = jm_keygen("RSA");
	ec = jm_keygen("EC");
	ed = jm_keygen("ED25519");
	json_array_append_new(list, jm_jwk(rsa, "r1"));
	json_array_append_new(list, jm_jwk(ec, "e1"));
	json_array_append_new(list, jm_jwk(ed, "d1"));
	json_object_set_new(set, "keys", list);
	text = jm_dump(set);
	keys = jwt_keys_new(text, strlen(text), &e);
	cr_assert_not_null(keys, "%s", e.message);
	free(text);
}

static void
teardown(void)
{
	jwt_keys_free(keys);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
}

TestSuite(jwt, .init = setup, .fini = teardown);

/* The claims of a token that passes, with extra members (JSON text
 * without braces, "" for none) before them: a later duplicate would be
 * refused, so overrides go in place of the defaults below. */
static const char *
claims(const char *iss, const char *aud, long long exp, const char *extra)
{
	static char buf[2048];

	snprintf(buf, sizeof(buf),
	         "{\"iss\":\"%s\",\"aud\":%s,\"sub\":\"alice\",\"email\":\"alice@example.com\","
	         "\"groups\":[\"data\",\"staff\"],\"exp\":%lld,\"iat\":%lld%s%s}",
	         iss, aud, exp, NOW - 10, *extra ? "," : "", extra);
	return buf;
}

#define GOOD claims(ISS, "\"" AUD "\"", NOW + 300, "")

static EVP_PKEY *
key_of(const char *alg)
{
	return strcmp(alg, "RS256") == 0 ? rsa : strcmp(alg, "ES256") == 0 ? ec : ed;
}

static char *
mint(const char *alg, const char *kid, const char *body)
{
	char header[256];

	snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg,
	         kid);
	return jm_sign(header, body, key_of(alg), alg, NULL, 0);
}

/* What verifying token says: "ok", or the refusal's code. */
static const char *
verify(const char *token, struct jwt_identity *id, struct err *e)
{
	struct jwt_identity mine;
	struct err me;

	if (id == NULL)
		id = &mine;
	if (e == NULL)
		e = &me;
	err_clear(e);
	if (jwt_verify(keys, &rules, token, strlen(token), NOW, id, e) < 0) {
		cr_expect_eq(e->status, 401, "%s", e->message);
		cr_expect(strstr(e->message, token) == NULL, "the message quotes the token");
		return e->code;
	}
	if (id == &mine)
		jwt_identity_clear(id);
	return "ok";
}

Test(jwt, each_algorithm_verifies_and_names_the_person_and_groups)
{
	static const char *const algs[][2] = {{"RS256", "r1"}, {"ES256", "e1"}, {"EdDSA", "d1"}};
	struct jwt_identity id;
	size_t i;
	char *t;

	for (i = 0; i < 3; i++) {
		t = mint(algs[i][0], algs[i][1], GOOD);
		cr_assert_str_eq(verify(t, &id, NULL), "ok", "%s", algs[i][0]);
		cr_expect_str_eq(id.kid, algs[i][1]);
		cr_expect_str_eq(json_string_value(json_object_get(id.person, "sub")), "alice");
		cr_expect_str_eq(json_string_value(json_object_get(id.person, "email")),
		                 "alice@example.com");
		cr_expect_null(json_object_get(id.person, "name"), "absent claims are left out");
		cr_expect_eq(json_array_size(id.groups), 2);
		cr_expect_str_eq(json_string_value(json_array_get(id.groups, 1)), "staff");
		jwt_identity_clear(&id);
		free(t);
	}
}

Test(jwt, an_audience_array_and_a_single_group_string_are_read)
{
	struct jwt_identity id;
	char *t = mint("ES256", "e1",
	               "{\"iss\":\"" ISS "\",\"aud\":[\"other\",\"" AUD "\"],\"sub\":\"bob\","
	               "\"groups\":\"data\",\"exp\":1800000300}");

	cr_assert_str_eq(verify(t, &id, NULL), "ok");
	cr_expect_eq(json_array_size(id.groups), 1);
	cr_expect_str_eq(json_string_value(json_array_get(id.groups, 0)), "data");
	cr_expect_null(json_object_get(id.person, "email"));
	jwt_identity_clear(&id);
	free(t);
}

/* A groups claim nested in objects (Keycloak puts roles under
 * "realm_access"): found by its path, and nothing when a step of the path
 * is missing or not an object. The flat "groups" is not read then. */
Test(jwt, groups_are_found_by_a_path_through_nested_objects)
{
	static const char *const path[] = {"realm_access", "roles"};
	struct jwt_rules nested = rules;
	struct jwt_identity id;
	struct err e;
	char *t;

	nested.groups_path = path;
	nested.ngroups_path = 2;
	t = mint("ES256", "e1",
	         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"bob\","
	         "\"groups\":[\"flat\"],\"realm_access\":{\"roles\":[\"data\",\"ops\"]},"
	         "\"exp\":1800000300}");
	cr_assert_eq(jwt_verify(keys, &nested, t, strlen(t), NOW, &id, &e), 0, "%s", e.message);
	cr_expect_eq(json_array_size(id.groups), 2);
	cr_expect_str_eq(json_string_value(json_array_get(id.groups, 1)), "ops");
	jwt_identity_clear(&id);
	free(t);

	/* "realm_access" a list, not an object: no groups, and no crash. */
	t = mint("ES256", "e1",
	         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"bob\","
	         "\"realm_access\":[\"roles\"],\"exp\":1800000300}");
	cr_assert_eq(jwt_verify(keys, &nested, t, strlen(t), NOW, &id, &e), 0, "%s", e.message);
	cr_expect_eq(json_array_size(id.groups), 0);
	jwt_identity_clear(&id);
	free(t);

	/* The flat claim, under the default path, is what the other rules read. */
	t = mint("ES256", "e1",
	         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"bob\","
	         "\"realm_access\":{\"roles\":[\"data\"]},\"exp\":1800000300}");
	cr_assert_str_eq(verify(t, &id, NULL), "ok");
	cr_expect_eq(json_array_size(id.groups), 0);
	jwt_identity_clear(&id);
	free(t);
}

Test(jwt, alg_none_is_refused)
{
	char *t = jm_sign("{\"alg\":\"none\",\"kid\":\"r1\"}", GOOD, NULL, "none", NULL, 0);
	struct err e;

	cr_expect(jwt_shape(t, strlen(t)), "an unsigned token still looks like one");
	cr_expect_str_eq(verify(t, NULL, &e), JWT_ALG);
	cr_expect(strstr(e.message, "none"), "%s", e.message);
	free(t);
	/* Nor any other spelling of no algorithm. */
	t = jm_sign("{\"alg\":\"None\",\"kid\":\"r1\"}", GOOD, NULL, "none", NULL, 0);
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_ALG);
	free(t);
}

/* The classic confusion: HS256 keyed with the RSA key's public bytes,
 * under the RSA key's kid. */
Test(jwt, hmac_tokens_are_refused_even_keyed_with_a_public_key)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(rsa, &der);
	static const char *const hs[] = {"HS256", "HS384", "HS512"};
	char header[64], *t;
	size_t i;

	cr_assert_gt(n, 0);
	for (i = 0; i < 3; i++) {
		snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"kid\":\"r1\"}", hs[i]);
		t = jm_sign(header, GOOD, NULL, "HS256", der, (size_t)n);
		cr_expect_str_eq(verify(t, NULL, NULL), JWT_ALG, "%s", hs[i]);
		free(t);
	}
	OPENSSL_free(der);
}

Test(jwt, other_algorithms_and_an_algorithm_the_key_does_not_verify_are_refused)
{
	char *t = jm_sign("{\"alg\":\"PS256\",\"kid\":\"r1\"}", GOOD, rsa, "RS256", NULL, 0);

	cr_expect_str_eq(verify(t, NULL, NULL), JWT_ALG);
	free(t);
	/* Signed by the EC key, but naming the RSA key. */
	t = mint("ES256", "r1", GOOD);
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_ALG);
	free(t);
}

Test(jwt, expired_and_not_yet_valid_tokens_are_refused_past_the_skew)
{
	char *t;

	t = mint("RS256", "r1", claims(ISS, "\"" AUD "\"", NOW - 61, ""));
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_EXPIRED);
	free(t);
	t = mint("RS256", "r1", claims(ISS, "\"" AUD "\"", NOW - 30, ""));
	cr_expect_str_eq(verify(t, NULL, NULL), "ok", "within the skew");
	free(t);
	t = mint("RS256", "r1", claims(ISS, "\"" AUD "\"", NOW + 300, "\"nbf\":1800000100"));
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_NOT_YET_VALID);
	free(t);
	t = mint("RS256", "r1", claims(ISS, "\"" AUD "\"", NOW + 300, "\"nbf\":1800000030"));
	cr_expect_str_eq(verify(t, NULL, NULL), "ok", "nbf within the skew");
	free(t);
	t = mint("RS256", "r1",
	         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":1800000300,"
	         "\"iat\":1800000200}");
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_NOT_YET_VALID, "issued in the future");
	free(t);
	t = mint("RS256", "r1", "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\"}");
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_INVALID, "no exp: never expires");
	free(t);
}

Test(jwt, the_wrong_issuer_or_audience_is_refused)
{
	char *t;

	t = mint("EdDSA", "d1", claims("https://evil.example.com", "\"" AUD "\"", NOW + 300, ""));
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_WRONG_ISSUER);
	free(t);
	t = mint("EdDSA", "d1", claims(ISS "/", "\"" AUD "\"", NOW + 300, ""));
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_WRONG_ISSUER, "compared exactly");
	free(t);
	t = mint("EdDSA", "d1", claims(ISS, "\"another-app\"", NOW + 300, ""));
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_WRONG_AUD);
	free(t);
	t = mint("EdDSA", "d1", claims(ISS, "[\"a\",\"b\"]", NOW + 300, ""));
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_WRONG_AUD);
	free(t);
}

/* A gateway with several audiences takes a token naming any one of them,
 * as a string or in a list, and no other; the refusal says how many it has
 * without naming a client's audience it did not ask for. */
Test(jwt, any_of_several_audiences_is_taken)
{
	static const char *const several[] = {"cli-app", AUD, "web-app"};
	struct jwt_rules many = rules;
	struct jwt_identity id;
	struct err e;
	char *t;

	many.audiences = several;
	many.naudiences = 3;
	t = mint("EdDSA", "d1", claims(ISS, "\"web-app\"", NOW + 300, ""));
	cr_expect_eq(jwt_verify(keys, &many, t, strlen(t), NOW, &id, &e), 0, "%s", e.message);
	jwt_identity_clear(&id);
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_WRONG_AUD, "one audience: web-app is not it");
	free(t);
	t = mint("EdDSA", "d1", claims(ISS, "[\"x\",\"cli-app\"]", NOW + 300, ""));
	cr_expect_eq(jwt_verify(keys, &many, t, strlen(t), NOW, &id, &e), 0, "%s", e.message);
	jwt_identity_clear(&id);
	free(t);
	t = mint("EdDSA", "d1", claims(ISS, "[\"x\",\"cli-app-2\"]", NOW + 300, ""));
	cr_expect_eq(jwt_verify(keys, &many, t, strlen(t), NOW, &id, &e), -1);
	cr_expect_str_eq(e.code, JWT_WRONG_AUD);
	cr_expect(strstr(e.message, "none of this gateway's 3 audiences"), "%s", e.message);
	free(t);
}

Test(jwt, an_unknown_kid_and_a_bad_signature_are_refused)
{
	EVP_PKEY *other = jm_keygen("RSA");
	char *t, *c;
	size_t n;

	t = mint("RS256", "r2", GOOD);
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_UNKNOWN_KEY);
	free(t);
	/* Another key, claiming to be r1. */
	t = jm_sign("{\"alg\":\"RS256\",\"kid\":\"r1\"}", GOOD, other, "RS256", NULL, 0);
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_BAD_SIGNATURE);
	free(t);
	EVP_PKEY_free(other);
	/* A signature cut short, and none at all. */
	t = mint("ES256", "e1", GOOD);
	n = strlen(t);
	t[n - 4] = '\0';
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_BAD_SIGNATURE);
	*(strrchr(t, '.') + 1) = '\0';
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_BAD_SIGNATURE);
	free(t);
	/* The claims of another token, under this one's signature. */
	t = mint("EdDSA", "d1", GOOD);
	c = jm_b64url_text(claims(ISS, "\"" AUD "\"", NOW + 3000, ""));
	{
		char *dot1 = strchr(t, '.'), *dot2 = strrchr(t, '.');
		char forged[4096];

		snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(dot1 - t), t, c, dot2);
		cr_expect_str_eq(verify(forged, NULL, NULL), JWT_BAD_SIGNATURE);
	}
	free(c);
	free(t);
}

/* JOSE's ES256 signature is r || s; the DER OpenSSL makes is not one. */
Test(jwt, an_es256_signature_in_der_is_refused)
{
	char *h = jm_b64url_text("{\"alg\":\"ES256\",\"kid\":\"e1\"}"), *c = jm_b64url_text(GOOD);
	char input[4096], token[8192], *s;
	unsigned char sig[128];
	size_t slen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	snprintf(input, sizeof(input), "%s.%s", h, c);
	cr_assert_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, ec), 1);
	cr_assert_eq(EVP_DigestSign(md, sig, &slen, (unsigned char *)input, strlen(input)), 1);
	s = jm_b64url(sig, slen);
	snprintf(token, sizeof(token), "%s.%s", input, s);
	cr_expect_str_eq(verify(token, NULL, NULL), JWT_BAD_SIGNATURE);
	EVP_MD_CTX_free(md);
	free(h);
	free(c);
	free(s);
}

Test(jwt, malformed_tokens_are_invalid)
{
	char *t;

	cr_expect_str_eq(verify("abc.def", NULL, NULL), JWT_INVALID);
	cr_expect_str_eq(verify("abc.def.ghi.jkl", NULL, NULL), JWT_INVALID);
	cr_expect_str_eq(verify("eyJhbGciOiJSUzI1NiJ9=.e30.c2ln", NULL, NULL), JWT_INVALID);
	cr_expect_str_eq(verify("bm90IGpzb24.e30.c2ln", NULL, NULL), JWT_INVALID);
	/* A duplicate claim is read two ways: refused, even signed. */
	t = mint("RS256", "r1",
	         "{\"iss\":\"" ISS "\",\"iss\":\"x\",\"aud\":\"" AUD "\",\"sub\":\"a\","
	         "\"exp\":1800000300}");
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_INVALID);
	free(t);
	t = jm_sign("{\"alg\":\"RS256\",\"kid\":\"r1\",\"crit\":[\"exp\"]}", GOOD, rsa, "RS256",
	            NULL, 0);
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_INVALID, "crit");
	free(t);
	t = jm_sign("{\"alg\":\"RS256\"}", GOOD, rsa, "RS256", NULL, 0);
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_INVALID, "no kid");
	free(t);
	t = mint("RS256", "r1", "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000300}");
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_INVALID, "no sub");
	free(t);
	t = mint("RS256", "r1",
	         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a\",\"exp\":\"soon\"}");
	cr_expect_str_eq(verify(t, NULL, NULL), JWT_INVALID, "exp not a number");
	free(t);
}

Test(jwt, the_shape_of_a_token)
{
	cr_expect(jwt_shape("a.b.c", 5));
	cr_expect(jwt_shape("a.b.", 4));
	cr_expect(!jwt_shape("sk-proj-abc_DEF", 15), "an API key");
	cr_expect(!jwt_shape(".b.c", 4));
	cr_expect(!jwt_shape("a..c", 4));
	cr_expect(!jwt_shape("a.b.c.d", 7));
	cr_expect(!jwt_shape("a.b+.c", 6));
	cr_expect(!jwt_shape("a.b.c=", 6));
}

Test(jwt, base64url_is_decoded_strictly)
{
	unsigned char out[16];

	cr_expect_eq(base64url_decode("AQAB", 4, out, sizeof(out)), 3);
	cr_expect(out[0] == 1 && out[1] == 0 && out[2] == 1);
	cr_expect_eq(base64url_decode("-_8", 3, out, sizeof(out)), 2);
	cr_expect(out[0] == 0xfb && out[1] == 0xff);
	cr_expect_eq(base64url_decode("-_9", 3, out, sizeof(out)), -1, "bits left over");
	cr_expect_eq(base64url_decode("AQ==", 4, out, sizeof(out)), -1, "padding");
	cr_expect_eq(base64url_decode("+/8", 3, out, sizeof(out)), -1, "the other alphabet");
	cr_expect_eq(base64url_decode("AQABA", 5, out, sizeof(out)), -1, "a lone character");
	cr_expect_eq(base64url_decode("AQAB", 4, out, 2), -1, "does not fit");
}

/* ---- key sets ---- */

static struct jwt_keys *
set_of(const char *text, struct err *e)
{
	return jwt_keys_new(text, strlen(text), e);
}

Test(jwt, keys_the_gateway_cannot_use_are_skipped)
{
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	json_t *list = json_array(), *k;
	struct jwt_keys *s;
	struct err e;
	char *text;

	json_array_append_new(
	        list, json_pack("{s:s, s:s, s:s}", "kty", "oct", "kid", "h1", "k", "c2VjcmV0"));
	k = jm_jwk(rsa, "enc");
	json_object_set_new(k, "use", json_string("enc"));
	json_array_append_new(list, k);
	k = jm_jwk(rsa, "ps");
	json_object_set_new(k, "alg", json_string("PS256"));
	json_array_append_new(list, k);
	json_array_append_new(list, jm_jwk(small, "weak"));
	k = jm_jwk(ec, "nokid");
	json_object_del(k, "kid");
	json_array_append_new(list, k);
	json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "kid",
	                                      "p384", "crv", "P-384", "x", "AA", "y", "AA"));
	k = jm_jwk(ed, "good");
	json_object_set_new(k, "alg", json_string("EdDSA"));
	json_object_set_new(k, "use", json_string("sig"));
	json_array_append_new(list, k);
	text = jm_dump(json_pack("{s:o}", "keys", list));
	s = set_of(text, &e);
	cr_assert_not_null(s, "%s", e.message);
	cr_expect_eq(jwt_keys_count(s), 1);
	cr_expect_eq(jwt_keys_skipped(s), 6);
	jwt_keys_free(s);
	free(text);
	EVP_PKEY_free(small);
}

Test(jwt, a_set_is_refused_whole_for_a_private_key_a_shared_kid_or_a_bad_key)
{
	json_t *k;
	struct err e;
	char *text;

	k = jm_jwk(ec, "e1");
	json_object_set_new(k, "d", json_string("AAAA"));
	text = jm_jwks(k, NULL);
	cr_expect_null(set_of(text, &e));
	cr_expect(strstr(e.message, "private"), "%s", e.message);
	free(text);

	text = jm_jwks(jm_jwk(rsa, "same"), jm_jwk(ed, "same"));
	cr_expect_null(set_of(text, &e));
	cr_expect(strstr(e.message, "same kid"), "%s", e.message);
	free(text);

	/* A point that is not on the curve. */
	k = jm_jwk(ec, "e1");
	json_object_set_new(k, "y",
	                    json_object_get(k, "x") ? json_copy(json_object_get(k, "x")) : NULL);
	text = jm_jwks(k, NULL);
	cr_expect_null(set_of(text, &e));
	cr_expect(strstr(e.message, "P-256"), "%s", e.message);
	free(text);

	k = jm_jwk(rsa, "r1");
	json_object_set_new(k, "n", json_string("AQAB=="));
	text = jm_jwks(k, NULL);
	cr_expect_null(set_of(text, &e), "padded base64url");
	free(text);

	text = jm_jwks(json_pack("{s:s, s:s, s:s}", "kty", "oct", "kid", "h", "k", "c2VjcmV0"),
	               NULL);
	cr_expect_null(set_of(text, &e), "no usable key");
	cr_expect(strstr(e.message, "no key"), "%s", e.message);
	free(text);

	cr_expect_null(set_of("{\"keys\":{}}", &e));
	cr_expect_null(set_of("{\"keys\":[],\"keys\":[]}", &e), "duplicate members");
	cr_expect_null(set_of("[]", &e));
}
