#include "policy/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/base64.h"
#include "lib/jsondoc.h"

#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 16384
#define P256_BYTES   32
#define ED25519_LEN  32
#define HEADER_MAX   2048 /* a header's base64url text */

enum jwt_alg { ALG_RS256, ALG_ES256, ALG_EDDSA };

static const char *const alg_names[] = {"RS256", "ES256", "EdDSA"};

struct jwt_key {
	char kid[JWT_KID_MAX + 1];
	enum jwt_alg alg;
	EVP_PKEY *pkey;
	size_t index; /* in the JWKS's "keys", for messages */
};

struct jwt_keys {
	size_t n, skipped;
	struct jwt_key *k; /* sorted by kid */
};

/* ---- the key set ---- */

static int jwks_fail(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
jwks_fail(struct err *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(e, 0, ERR_INVALID, "invalid_jwks", NULL, fmt, ap);
	va_end(ap);
	return -1;
}

/* The bytes of the base64url string member name of key, in a new buffer
 * (free it), their count in *n; NULL when it is absent, not a string, not
 * canonical base64url, or longer than max bytes. */
static unsigned char *
member_bytes(const json_t *key, const char *name, size_t max, size_t *n)
{
	const char *text = json_string_value(json_object_get(key, name));
	size_t len = text ? strlen(text) : 0;
	unsigned char *out;
	long got;

	if (text == NULL || len == 0 || len > (max + 2) / 3 * 4)
		return NULL;
	out = malloc(BASE64URL_DECODED_MAX(len));
	if (out == NULL)
		return NULL;
	got = base64url_decode(text, len, out, BASE64URL_DECODED_MAX(len));
	if (got <= 0 || (size_t)got > max) {
		free(out);
		return NULL;
	}
	*n = (size_t)got;
	return out;
}

/* An RSA public key from its modulus and exponent (big-endian bytes). */
static EVP_PKEY *
rsa_key(const unsigned char *n, size_t nlen, const unsigned char *e, size_t elen)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;

	if (bld == NULL || bn == NULL || be == NULL || !BN_is_odd(be) || BN_is_one(be) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pkey;
}

/* A P-256 public key from its coordinates, checked to be on the curve. */
static EVP_PKEY *
p256_key(const unsigned char *x, const unsigned char *y)
{
	unsigned char point[1 + 2 * P256_BYTES];
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL, *check = NULL;
	EVP_PKEY *pkey = NULL;

	point[0] = 0x04; /* uncompressed (SEC 1, 2.3.3) */
	memcpy(point + 1, x, P256_BYTES);
	memcpy(point + 1 + P256_BYTES, y, P256_BYTES);
	if (bld == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0 ||
	    (check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
	    EVP_PKEY_public_check(check) != 1) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

/* Whether key (an object of the JWKS) holds a private part: a JWKS is
 * published, so one that does has leaked it. */
static int
has_private(const json_t *key)
{
	/* A symmetric key ("k") is skipped, not refused: it is never used. */
	static const char *const parts[] = {"d", "p", "q", "dp", "dq", "qi", "oth", NULL};
	size_t i;

	for (i = 0; parts[i]; i++)
		if (json_object_get(key, parts[i]))
			return 1;
	return 0;
}

/* Which algorithm a key of this kty (and crv) verifies, or -1 when the
 * gateway has no use for it. */
static int
key_alg(const json_t *key)
{
	const char *kty = json_string_value(json_object_get(key, "kty"));
	const char *crv = json_string_value(json_object_get(key, "crv"));

	if (strcmp(kty, "RSA") == 0)
		return ALG_RS256;
	if (strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-256") == 0)
		return ALG_ES256;
	if (strcmp(kty, "OKP") == 0 && crv && strcmp(crv, "Ed25519") == 0)
		return ALG_EDDSA;
	return -1;
}

/* Whether "use", "key_ops" and "alg", when present, let the key verify
 * signatures of alg. */
static int
meant_for(const json_t *key, int alg)
{
	const json_t *use = json_object_get(key, "use"), *ops = json_object_get(key, "key_ops");
	const json_t *a = json_object_get(key, "alg"), *v;
	size_t i;
	int verify = 0;

	if (use && !(json_is_string(use) && strcmp(json_string_value(use), "sig") == 0))
		return 0;
	if (a && !(json_is_string(a) && strcmp(json_string_value(a), alg_names[alg]) == 0))
		return 0;
	if (ops == NULL)
		return 1;
	json_array_foreach(ops, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), "verify") == 0)
			verify = 1;
	}
	return verify;
}

/* Builds keys->k[keys->n] from the i-th key; 0 when it was built or
 * skipped, -1 (with e) when the set must be refused for it. */
static int
add_key(struct jwt_keys *keys, const json_t *key, size_t i, struct err *e)
{
	struct jwt_key *k = &keys->k[keys->n];
	const json_t *kid = json_object_get(key, "kid");
	unsigned char *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	int alg, rc = 0;

	if (!json_is_object(key) || !json_is_string(json_object_get(key, "kty")))
		return jwks_fail(e, "keys[%zu] must be an object with a \"kty\"", i);
	if (has_private(key))
		return jwks_fail(e,
		                 "keys[%zu] holds a private key; a JWKS publishes public keys "
		                 "only",
		                 i);
	if ((alg = key_alg(key)) < 0 || !meant_for(key, alg) || kid == NULL) {
		keys->skipped++;
		return 0;
	}
	if (!json_is_string(kid) || json_string_length(kid) == 0 ||
	    json_string_length(kid) > JWT_KID_MAX)
		return jwks_fail(e, "keys[%zu].kid must be a string of 1 to %d characters", i,
		                 JWT_KID_MAX);
	memset(k, 0, sizeof(*k));
	memcpy(k->kid, json_string_value(kid), json_string_length(kid));
	k->alg = (enum jwt_alg)alg;
	k->index = i;
	switch (k->alg) {
	case ALG_RS256:
		a = member_bytes(key, "n", RSA_MAX_BITS / 8 + 1, &alen);
		b = member_bytes(key, "e", 32, &blen);
		if (a == NULL || b == NULL) {
			rc = jwks_fail(e, "keys[%zu]: \"n\" and \"e\" must be base64url integers",
			               i);
			break;
		}
		while (alen > 0 && a[0] == 0)
			memmove(a, a + 1, --alen);
		if (alen * 8 < RSA_MIN_BITS) {
			keys->skipped++; /* too weak to trust: as if absent */
			break;
		}
		if ((k->pkey = rsa_key(a, alen, b, blen)) == NULL)
			rc = jwks_fail(e, "keys[%zu] is not a usable RSA public key", i);
		break;
	case ALG_ES256:
		a = member_bytes(key, "x", P256_BYTES, &alen);
		b = member_bytes(key, "y", P256_BYTES, &blen);
		if (a == NULL || b == NULL || alen != P256_BYTES || blen != P256_BYTES ||
		    (k->pkey = p256_key(a, b)) == NULL)
			rc = jwks_fail(
			        e,
			        "keys[%zu] is not a P-256 public key: \"x\" and \"y\" must be "
			        "32 bytes each, base64url, a point on the curve",
			        i);
		break;
	case ALG_EDDSA:
		a = member_bytes(key, "x", ED25519_LEN, &alen);
		if (a == NULL || alen != ED25519_LEN ||
		    (k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, a, alen)) ==
		            NULL)
			rc = jwks_fail(e,
			               "keys[%zu] is not an Ed25519 public key: \"x\" must be 32 "
			               "bytes, base64url",
			               i);
		break;
	}
	free(a);
	free(b);
	if (k->pkey)
		keys->n++;
	return rc;
}

static int
by_kid(const void *a, const void *b)
{
	return strcmp(((const struct jwt_key *)a)->kid, ((const struct jwt_key *)b)->kid);
}

struct jwt_keys *
jwt_keys_new(const char *text, size_t len, struct err *e)
{
	struct jwt_keys *keys = NULL;
	json_t *doc = NULL, *list, *key;
	struct err pe;
	size_t i;

	err_clear(e);
	if (len > JWT_JWKS_MAX_SIZE) {
		jwks_fail(e, "the JWKS is larger than %d bytes", JWT_JWKS_MAX_SIZE);
		goto fail;
	}
	if ((doc = jsondoc_parse(text, len, &pe)) == NULL) {
		jwks_fail(e, "the JWKS is not strict JSON: %s", pe.message);
		goto fail;
	}
	list = json_object_get(doc, "keys");
	if (!json_is_array(list) || json_array_size(list) > JWT_KEYS_MAX) {
		jwks_fail(e, "a JWKS is {\"keys\": [...]} with at most %d keys", JWT_KEYS_MAX);
		goto fail;
	}
	keys = calloc(1, sizeof(*keys));
	if (keys == NULL ||
	    (keys->k = calloc(json_array_size(list) + 1, sizeof(*keys->k))) == NULL) {
		jwks_fail(e, "out of memory");
		goto fail;
	}
	json_array_foreach(list, i, key)
	{
		if (add_key(keys, key, i, e) < 0)
			goto fail;
	}
	if (keys->n == 0) {
		jwks_fail(e, "the JWKS has no key the gateway can use (RS256 of 2048 bits or more, "
		             "ES256 on P-256, EdDSA on Ed25519, each with a \"kid\", for \"sig\")");
		goto fail;
	}
	qsort(keys->k, keys->n, sizeof(*keys->k), by_kid);
	for (i = 1; i < keys->n; i++)
		if (strcmp(keys->k[i - 1].kid, keys->k[i].kid) == 0) {
			jwks_fail(e, "keys[%zu] and keys[%zu] have the same kid",
			          keys->k[i - 1].index < keys->k[i].index ? keys->k[i - 1].index
			                                                  : keys->k[i].index,
			          keys->k[i - 1].index < keys->k[i].index ? keys->k[i].index
			                                                  : keys->k[i - 1].index);
			goto fail;
		}
	json_decref(doc);
	return keys;
fail:
	json_decref(doc);
	jwt_keys_free(keys);
	return NULL;
}

void
jwt_keys_free(struct jwt_keys *keys)
{
	size_t i;

	if (keys == NULL)
		return;
	for (i = 0; keys->k && i < keys->n; i++)
		EVP_PKEY_free(keys->k[i].pkey);
	free(keys->k);
	free(keys);
}

size_t
jwt_keys_count(const struct jwt_keys *keys)
{
	return keys ? keys->n : 0;
}

size_t
jwt_keys_skipped(const struct jwt_keys *keys)
{
	return keys ? keys->skipped : 0;
}

static const struct jwt_key *
find_key(const struct jwt_keys *keys, const char *kid)
{
	struct jwt_key want = {0};

	if (keys == NULL || strlen(kid) > JWT_KID_MAX)
		return NULL;
	snprintf(want.kid, sizeof(want.kid), "%s", kid);
	return bsearch(&want, keys->k, keys->n, sizeof(*keys->k), by_kid);
}

/* ---- tokens ---- */

static int
url_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int
jwt_shape(const char *token, size_t len)
{
	size_t i, dots = 0, part = 0;

	for (i = 0; i < len; i++) {
		if (token[i] == '.') {
			if (part == 0 && dots < 2)
				return 0; /* an empty header or claims */
			dots++;
			part = 0;
		} else if (url_char((unsigned char)token[i])) {
			part++;
		} else {
			return 0;
		}
	}
	return dots == 2;
}

void
jwt_identity_clear(struct jwt_identity *id)
{
	json_decref(id->person);
	json_decref(id->groups);
	memset(id, 0, sizeof(*id));
}

static int refuse(struct err *e, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int
refuse(struct err *e, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(e, 401, ERR_INVALID, code, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

/* A base64url part of the token parsed as a JSON object; NULL when it is
 * not one. */
static json_t *
part_json(const char *text, size_t len, int *oom)
{
	unsigned char *buf = malloc(BASE64URL_DECODED_MAX(len) + 1);
	json_t *doc = NULL;
	struct err pe;
	long n;

	*oom = buf == NULL;
	if (buf && (n = base64url_decode(text, len, buf, BASE64URL_DECODED_MAX(len))) > 0) {
		doc = jsondoc_parse((const char *)buf, (size_t)n, &pe);
		*oom = doc == NULL && pe.status == 503;
	}
	free(buf);
	return doc;
}

/* JOSE's ES256 signature, r and s as 32 bytes each (RFC 7518 3.4), as the
 * DER ECDSA-Sig-Value OpenSSL verifies; its length, or -1. */
static int
ecdsa_der(const unsigned char *sig, unsigned char **der)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, P256_BYTES, NULL),
	       *ss = BN_bin2bn(sig + P256_BYTES, P256_BYTES, NULL);
	int n = -1;

	if (s && r && ss && ECDSA_SIG_set0(s, r, ss) == 1) {
		r = ss = NULL; /* s owns them */
		n = i2d_ECDSA_SIG(s, der);
	}
	BN_free(r);
	BN_free(ss);
	ECDSA_SIG_free(s);
	return n;
}

/* Whether sig is k's signature of msg under k's algorithm. */
static int
signature_ok(const struct jwt_key *k, const char *msg, size_t n, const unsigned char *sig,
             size_t slen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *der = NULL;
	int ok = 0, dlen;

	if (md == NULL)
		return 0;
	switch (k->alg) {
	case ALG_RS256:
		ok = slen == (size_t)EVP_PKEY_get_size(k->pkey) &&
		     EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
		     EVP_DigestVerify(md, sig, slen, (const unsigned char *)msg, n) == 1;
		break;
	case ALG_ES256:
		ok = slen == 2 * P256_BYTES && (dlen = ecdsa_der(sig, &der)) > 0 &&
		     EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
		     EVP_DigestVerify(md, der, (size_t)dlen, (const unsigned char *)msg, n) == 1;
		break;
	case ALG_EDDSA:
		ok = slen == 64 && EVP_DigestVerifyInit(md, NULL, NULL, NULL, k->pkey) == 1 &&
		     EVP_DigestVerify(md, sig, slen, (const unsigned char *)msg, n) == 1;
		break;
	}
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	return ok;
}

/* The algorithm the header names, or -1 with e saying why it is refused. */
static int
header_alg(const json_t *header, struct err *e)
{
	const char *alg = json_string_value(json_object_get(header, "alg"));
	char q[80];
	size_t i;

	if (alg == NULL)
		return refuse(e, JWT_INVALID, "the token's header has no \"alg\"");
	for (i = 0; i < sizeof(alg_names) / sizeof(alg_names[0]); i++)
		if (strcmp(alg, alg_names[i]) == 0)
			return (int)i;
	if (strcmp(alg, "none") == 0 || alg[0] == '\0')
		return refuse(e, JWT_ALG,
		              "the token is unsigned (\"alg\": \"none\"); only tokens signed with "
		              "RS256, ES256 or EdDSA are accepted");
	if (alg[0] == 'H' && alg[1] == 'S')
		return refuse(e, JWT_ALG,
		              "HMAC-signed tokens (%s) are not accepted; only tokens signed with "
		              "RS256, ES256 or EdDSA are",
		              err_quote(q, sizeof(q), alg, strlen(alg)));
	return refuse(e, JWT_ALG,
	              "the token's algorithm %s is not accepted; only RS256, ES256 and EdDSA are",
	              err_quote(q, sizeof(q), alg, strlen(alg)));
}

/* A NumericDate claim (RFC 7519 2): -1 when absent, 0 when present (in
 * *t), -2 when not a number. */
static int
date_claim(const json_t *claims, const char *name, double *t)
{
	const json_t *v = json_object_get(claims, name);

	if (v == NULL)
		return -1;
	if (!json_is_number(v))
		return -2;
	*t = json_number_value(v);
	return 0;
}

static const char *
utc(double t, char *buf, size_t n)
{
	time_t s = t > 0 && t < 253402300800.0 ? (time_t)t : 0;
	struct tm tm;

	if (gmtime_r(&s, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, n, "%.0f", t);
	return buf;
}

/* Whether v is a string naming one of the gateway's audiences. */
static int
ours(const struct jwt_rules *rules, const json_t *v)
{
	size_t i;

	for (i = 0; json_is_string(v) && i < rules->naudiences; i++)
		if (strcmp(json_string_value(v), rules->audiences[i]) == 0)
			return 1;
	return 0;
}

/* iss, aud and the times, once the signature is good. */
static int
check_claims(const json_t *claims, const struct jwt_rules *rules, long long now, struct err *e)
{
	const char *iss = json_string_value(json_object_get(claims, "iss"));
	const json_t *aud = json_object_get(claims, "aud"), *v;
	double exp, nbf, iat, skew = (double)rules->skew_s, t = (double)now;
	char q[80], when[32];
	size_t i;
	int found = 0, rc;

	if (iss == NULL || strcmp(iss, rules->issuer) != 0)
		return refuse(
		        e, JWT_WRONG_ISSUER,
		        "the token was issued by %s; this gateway accepts tokens issued by %s",
		        iss ? err_quote(q, sizeof(q), iss, strlen(iss)) : "nobody (no \"iss\")",
		        rules->issuer);
	found = ours(rules, aud);
	json_array_foreach(aud, i, v)
	{
		if (!found)
			found = ours(rules, v);
	}
	if (!found && rules->naudiences == 1)
		return refuse(e, JWT_WRONG_AUD,
		              "the token's audience (\"aud\") does not include %s, this gateway's",
		              rules->audiences[0]);
	if (!found)
		return refuse(e, JWT_WRONG_AUD,
		              "the token's audience (\"aud\") includes none of this gateway's %zu "
		              "audiences (auth.jwt.audience)",
		              rules->naudiences);
	if ((rc = date_claim(claims, "exp", &exp)) < 0)
		return refuse(e, JWT_INVALID,
		              rc == -1 ? "the token has no expiry (\"exp\"); tokens that never "
		                         "expire are not accepted"
		                       : "the token's \"exp\" is not a number of seconds");
	if (t >= exp + skew)
		return refuse(e, JWT_EXPIRED,
		              "the token expired at %s; get a new one from the identity provider",
		              utc(exp, when, sizeof(when)));
	if ((rc = date_claim(claims, "nbf", &nbf)) == -2)
		return refuse(e, JWT_INVALID, "the token's \"nbf\" is not a number of seconds");
	if (rc == 0 && nbf > t + skew)
		return refuse(e, JWT_NOT_YET_VALID, "the token is not valid before %s",
		              utc(nbf, when, sizeof(when)));
	if ((rc = date_claim(claims, "iat", &iat)) == -2)
		return refuse(e, JWT_INVALID, "the token's \"iat\" is not a number of seconds");
	if (rc == 0 && iat > t + skew)
		return refuse(e, JWT_NOT_YET_VALID,
		              "the token says it was issued at %s, which is still to come",
		              utc(iat, when, sizeof(when)));
	return 0;
}

/* A claim's string value when it is one of 1 to JWT_CLAIM_MAX bytes. */
static const char *
short_string(const json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0 &&
	                       json_string_length(v) <= JWT_CLAIM_MAX
	               ? json_string_value(v)
	               : NULL;
}

/* The claim at the end of path (n names) through nested objects; NULL
 * when any step is missing or not an object. */
static const json_t *
claim_at(const json_t *claims, const char *const *path, size_t n)
{
	const json_t *v = claims;
	size_t i;

	for (i = 0; i < n && v != NULL; i++)
		v = json_is_object(v) ? json_object_get(v, path[i]) : NULL;
	return n > 0 ? v : NULL;
}

/* The person and the groups a verified token names, into id. */
static int
take_identity(const json_t *claims, const struct jwt_rules *rules, struct jwt_identity *id,
              struct err *e)
{
	const char *sub = short_string(json_object_get(claims, "sub")), *s;
	const json_t *g = claim_at(claims, rules->groups_path, rules->ngroups_path);
	const json_t *v;
	size_t i;

	if (sub == NULL)
		return refuse(e, JWT_INVALID,
		              "the token names no subject (\"sub\", 1 to %d characters)",
		              JWT_CLAIM_MAX);
	id->person = json_pack("{s:s}", "sub", sub);
	id->groups = json_array();
	if (id->person == NULL || id->groups == NULL)
		goto oom;
	for (i = 0; i < rules->nperson; i++) {
		s = short_string(json_object_get(claims, rules->person_claims[i]));
		if (s && strcmp(rules->person_claims[i], "sub") != 0 &&
		    json_object_set_new(id->person, rules->person_claims[i], json_string(s)) < 0)
			goto oom;
	}
	/* One group may come as a string; a group too long to be any
	 * tenant's, or past the first JWT_GROUPS_MAX, names nothing. */
	if ((s = short_string(g)) != NULL && json_array_append_new(id->groups, json_string(s)) < 0)
		goto oom;
	json_array_foreach(g, i, v)
	{
		if (i >= JWT_GROUPS_MAX)
			break;
		if ((s = short_string(v)) && json_array_append_new(id->groups, json_string(s)) < 0)
			goto oom;
	}
	return 0;
oom:
	err_set(e, 503, ERR_INTERNAL, "out_of_memory", NULL,
	        "the gateway ran out of memory reading the token; try again");
	return -1;
}

int
jwt_verify(const struct jwt_keys *keys, const struct jwt_rules *rules, const char *token,
           size_t len, long long now, struct jwt_identity *id, struct err *e)
{
	const char *dot1, *dot2, *kid;
	json_t *header = NULL, *claims = NULL;
	const struct jwt_key *k;
	unsigned char *sig = NULL;
	size_t hlen, plen, slen;
	long n = 0;
	int alg, oom = 0, rc = -1;
	char q[JWT_KID_MAX + 16];

	memset(id, 0, sizeof(*id));
	if (len > JWT_MAX) {
		refuse(e, JWT_INVALID, "the token is longer than %d characters", JWT_MAX);
		goto done;
	}
	if (!jwt_shape(token, len)) {
		refuse(e, JWT_INVALID,
		       "a token is three base64url parts (header, claims, signature) joined by "
		       "dots");
		goto done;
	}
	dot1 = memchr(token, '.', len);
	dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
	hlen = (size_t)(dot1 - token);
	plen = (size_t)(dot2 - dot1 - 1);
	slen = len - (size_t)(dot2 + 1 - token);
	if (hlen > HEADER_MAX || (header = part_json(token, hlen, &oom)) == NULL) {
		if (!oom)
			refuse(e, JWT_INVALID,
			       "the token's header is not a JSON object in base64url without "
			       "padding");
		goto done;
	}
	if ((alg = header_alg(header, e)) < 0)
		goto done;
	if (json_object_get(header, "crit")) {
		refuse(e, JWT_INVALID,
		       "the token's header lists critical extensions (\"crit\"), which this "
		       "gateway does not implement");
		goto done;
	}
	kid = json_string_value(json_object_get(header, "kid"));
	if (kid == NULL || *kid == '\0' || strlen(kid) > JWT_KID_MAX) {
		refuse(e, JWT_INVALID,
		       "the token's header names no key (\"kid\", 1 to %d characters)",
		       JWT_KID_MAX);
		goto done;
	}
	if ((k = find_key(keys, kid)) == NULL) {
		refuse(e, JWT_UNKNOWN_KEY,
		       "no key of the identity provider has the id (\"kid\") %s",
		       err_quote(q, sizeof(q), kid, strlen(kid)));
		goto done;
	}
	if (k->alg != (enum jwt_alg)alg) {
		refuse(e, JWT_ALG, "key %s verifies %s signatures, not %s",
		       err_quote(q, sizeof(q), kid, strlen(kid)), alg_names[k->alg],
		       alg_names[alg]);
		goto done;
	}
	sig = malloc(BASE64URL_DECODED_MAX(slen) + 1);
	if (sig == NULL) {
		oom = 1;
		goto done;
	}
	if (slen == 0 ||
	    (n = base64url_decode(dot2 + 1, slen, sig, BASE64URL_DECODED_MAX(slen))) <= 0 ||
	    !signature_ok(k, token, (size_t)(dot2 - token), sig, (size_t)n)) {
		refuse(e, JWT_BAD_SIGNATURE, "the token's signature does not verify with key %s",
		       err_quote(q, sizeof(q), kid, strlen(kid)));
		goto done;
	}
	if ((claims = part_json(dot1 + 1, plen, &oom)) == NULL) {
		if (!oom)
			refuse(e, JWT_INVALID,
			       "the token's claims are not a JSON object in base64url without "
			       "padding");
		goto done;
	}
	if (check_claims(claims, rules, now, e) < 0 || take_identity(claims, rules, id, e) < 0)
		goto done;
	snprintf(id->kid, sizeof(id->kid), "%s", kid);
	rc = 0;
done:
	if (oom)
		err_set(e, 503, ERR_INTERNAL, "out_of_memory", NULL,
		        "the gateway ran out of memory reading the token; try again");
	if (rc < 0)
		jwt_identity_clear(id);
	json_decref(header);
	json_decref(claims);
	free(sig);
	return rc;
}
