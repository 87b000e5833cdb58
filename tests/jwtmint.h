/*
 * jwtmint: what an identity provider does, for the tests of tokens
 * (tests/test_jwt.c, tests/it_jwt.c): a key's public JWK, and compact JWS
 * tokens signed with it, written from RFC 7515, 7517, 7518 and 8037 with
 * OpenSSL alone, apart from the gateway's own code, so a test does not
 * check the verifier against itself.
 *
 * Everything returned is malloc'd (free it) or a new JSON reference; a
 * failure aborts, since no test can go on without its token.
 */
#ifndef GW_TESTS_JWTMINT_H
#define GW_TESTS_JWTMINT_H

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void
jm_die(const char *what)
{
	fprintf(stderr, "jwtmint: %s failed\n", what);
	abort();
}

/* base64url without padding (RFC 7515 2). */
static inline char *
jm_b64url(const unsigned char *in, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(n / 3 * 4 + 5);
	size_t i, o = 0;
	unsigned long v;

	if (out == NULL)
		jm_die("malloc");
	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = a[v >> 6 & 63];
		out[o++] = a[v & 63];
	}
	if (n - i == 1) {
		v = (unsigned long)in[i] << 16;
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
	} else if (n - i == 2) {
		v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = a[v >> 6 & 63];
	}
	out[o] = '\0';
	return out;
}

static inline char *
jm_b64url_text(const char *s)
{
	return jm_b64url((const unsigned char *)s, strlen(s));
}

/* A big number's bytes, big-endian without leading zeros, in base64url. */
static inline char *
jm_b64url_bn(const BIGNUM *bn, int pad)
{
	int n = pad ? pad : BN_num_bytes(bn);
	unsigned char *buf = malloc((size_t)n + 1);
	char *out;

	if (buf == NULL || BN_bn2binpad(bn, buf, n) != n)
		jm_die("BN_bn2binpad");
	out = jm_b64url(buf, (size_t)n);
	free(buf);
	return out;
}

/* A new key: "RSA" (2048 bits), "EC" (P-256) or "ED25519". */
static inline EVP_PKEY *
jm_keygen(const char *type)
{
	EVP_PKEY *k = strcmp(type, "RSA") == 0  ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
	              : strcmp(type, "EC") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
	                                        : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

	if (k == NULL)
		jm_die("EVP_PKEY_Q_keygen");
	return k;
}

/* A private key from a PEM file (as `openssl genpkey` writes it). */
static inline EVP_PKEY *
jm_key_file(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	if (k == NULL)
		jm_die(path);
	return k;
}

/* key's public JWK with kid (RFC 7517 4, RFC 7518 6, RFC 8037 2). */
static inline json_t *
jm_jwk(EVP_PKEY *key, const char *kid)
{
	json_t *jwk = json_object();
	BIGNUM *n = NULL, *e = NULL, *x = NULL, *y = NULL;
	unsigned char raw[32];
	size_t len = sizeof(raw);
	char *a, *b;

	json_object_set_new(jwk, "kid", json_string(kid));
	if (EVP_PKEY_is_a(key, "RSA")) {
		if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) ||
		    !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e))
			jm_die("RSA params");
		a = jm_b64url_bn(n, 0);
		b = jm_b64url_bn(e, 0);
		json_object_set_new(jwk, "kty", json_string("RSA"));
		json_object_set_new(jwk, "n", json_string(a));
		json_object_set_new(jwk, "e", json_string(b));
	} else if (EVP_PKEY_is_a(key, "EC")) {
		if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
		    !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y))
			jm_die("EC params");
		a = jm_b64url_bn(x, 32);
		b = jm_b64url_bn(y, 32);
		json_object_set_new(jwk, "kty", json_string("EC"));
		json_object_set_new(jwk, "crv", json_string("P-256"));
		json_object_set_new(jwk, "x", json_string(a));
		json_object_set_new(jwk, "y", json_string(b));
	} else {
		if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1)
			jm_die("raw public key");
		a = jm_b64url(raw, len);
		b = NULL;
		json_object_set_new(jwk, "kty", json_string("OKP"));
		json_object_set_new(jwk, "crv", json_string("Ed25519"));
		json_object_set_new(jwk, "x", json_string(a));
	}
	free(a);
	free(b);
	BN_free(n);
	BN_free(e);
	BN_free(x);
	BN_free(y);
	return jwk;
}

/* v's compact text, malloc'd whatever allocator jansson was given; takes
 * the reference. */
static inline char *
jm_dump(json_t *v)
{
	size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT);
	char *text = malloc(n + 1);

	if (n == 0 || text == NULL || json_dumpb(v, text, n, JSON_COMPACT) != n)
		jm_die("json_dumpb");
	text[n] = '\0';
	json_decref(v);
	return text;
}

/* {"keys": [k1, k2]} as text, taking the references; k2 may be NULL. */
static inline char *
jm_jwks(json_t *k1, json_t *k2)
{
	json_t *set = json_pack("{s:[o]}", "keys", k1);

	if (k2)
		json_array_append_new(json_object_get(set, "keys"), k2);
	return jm_dump(set);
}

/*
 * A compact JWS of header and claims (JSON text, encoded as given) signed
 * by key under alg: "RS256", "ES256" (r || s, RFC 7518 3.4), "EdDSA";
 * "HS256" takes hmac_key instead (a forgery a verifier must refuse);
 * "none" has an empty signature.
 */
static inline char *
jm_sign(const char *header, const char *claims, EVP_PKEY *key, const char *alg,
        const unsigned char *hmac_key, size_t hmac_len)
{
	char *h = jm_b64url_text(header), *c = jm_b64url_text(claims), *input, *s, *token;
	unsigned char sig[1024], rs[64];
	size_t slen = sizeof(sig), n = strlen(h) + strlen(c) + 2;
	unsigned int hl = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const unsigned char *p;
	ECDSA_SIG *es;

	input = malloc(n);
	snprintf(input, n, "%s.%s", h, c);
	if (strcmp(alg, "none") == 0) {
		slen = 0;
	} else if (strcmp(alg, "HS256") == 0) {
		if (HMAC(EVP_sha256(), hmac_key, (int)hmac_len, (const unsigned char *)input,
		         strlen(input), sig, &hl) == NULL)
			jm_die("HMAC");
		slen = hl;
	} else {
		if (EVP_DigestSignInit(md, NULL, strcmp(alg, "EdDSA") == 0 ? NULL : EVP_sha256(),
		                       NULL, key) != 1 ||
		    EVP_DigestSign(md, sig, &slen, (const unsigned char *)input, strlen(input)) !=
		            1)
			jm_die("EVP_DigestSign");
		if (strcmp(alg, "ES256") == 0) {
			p = sig;
			es = d2i_ECDSA_SIG(NULL, &p, (long)slen);
			if (es == NULL || BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32) != 32 ||
			    BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32) != 32)
				jm_die("ECDSA_SIG");
			ECDSA_SIG_free(es);
			memcpy(sig, rs, sizeof(rs));
			slen = sizeof(rs);
		}
	}
	s = jm_b64url(sig, slen);
	n = strlen(input) + strlen(s) + 2;
	token = malloc(n);
	snprintf(token, n, "%s.%s", input, s);
	free(h);
	free(c);
	free(s);
	free(input);
	EVP_MD_CTX_free(md);
	return token;
}

#endif
