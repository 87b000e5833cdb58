/*
 * jwt: JSON Web Tokens, verified as pure functions.
 *
 * A token is a compact JWS (RFC 7515): three base64url parts, header,
 * claims and signature, read strictly (no padding, bounded sizes, JSON
 * without duplicate keys). Only RS256, ES256 and EdDSA over Ed25519 (RFC
 * 7518, 8037) are accepted, each only with a key of its own type; "none"
 * and the HMAC algorithms never are, since a shared secret would let the
 * gateway's own configuration forge tokens. The signature is checked
 * before any claim is read as true; then the issuer, the audience, and
 * the time (exp, nbf, iat, within a configured skew).
 *
 * The keys come from a JWKS (RFC 7517) parsed once into OpenSSL keys
 * (jwt_keys_new); finding, fetching and refreshing it is the app's
 * (app/jwks.c). Nothing here does I/O or reads the clock: the time is an
 * argument.
 */
#ifndef GW_JWT_H
#define GW_JWT_H

#include <jansson.h>
#include <stddef.h>

#include "lib/err.h"

/* The longest token read: well above what identity providers issue
 * with a few dozen groups, and within the default head limit. */
#define JWT_MAX 8192

/* The longest "kid" a key or a token may have. */
#define JWT_KID_MAX 128

/* A claim value kept for the record (sub, email, a group) is at most
 * this long; a longer sub is refused, a longer person claim left out. */
#define JWT_CLAIM_MAX 256

/* The most groups a token's groups claim may hold. */
#define JWT_GROUPS_MAX 256

/* The most keys a JWKS may hold, and its largest text. */
#define JWT_KEYS_MAX      256
#define JWT_JWKS_MAX_SIZE (1024 * 1024)

/* The codes a refusal carries (err.code), one per reason. */
#define JWT_INVALID       "invalid_token"
#define JWT_ALG           "token_algorithm_not_allowed"
#define JWT_UNKNOWN_KEY   "token_unknown_key"
#define JWT_BAD_SIGNATURE "token_bad_signature"
#define JWT_EXPIRED       "token_expired"
#define JWT_NOT_YET_VALID "token_not_yet_valid"
#define JWT_WRONG_ISSUER  "token_wrong_issuer"
#define JWT_WRONG_AUD     "token_wrong_audience"

struct jwt_keys;

/*
 * Parses a JWKS ({"keys": [...]}, at most JWT_JWKS_MAX_SIZE bytes) and
 * builds an OpenSSL key for each key it can use: "kty" RSA (n, e; at
 * least 2048 bits), EC on P-256 (x, y) or OKP Ed25519 (x), with a "kid",
 * "use" absent or "sig", "alg" absent or the one its type verifies, and
 * "key_ops" absent or holding "verify". Other keys (encryption keys,
 * symmetric keys, other curves) are skipped and counted. A key of a type
 * it uses that is malformed, one holding a private part, or two usable
 * keys with one kid make the whole set refused, as does a set with no
 * usable key. Returns NULL with e (status 0, code "invalid_jwks", a
 * message naming the key as "keys[i]") on failure.
 */
struct jwt_keys *jwt_keys_new(const char *text, size_t len, struct err *e);
void jwt_keys_free(struct jwt_keys *k);

/* How many keys the set can verify with, and how many it skipped. */
size_t jwt_keys_count(const struct jwt_keys *k);
size_t jwt_keys_skipped(const struct jwt_keys *k);

/* What a token must say, and what is kept of it. Borrowed. */
struct jwt_rules {
	const char *issuer; /* "iss" must be exactly this */
	/* "aud" (a string or an array) must hold one of these */
	const char *const *audiences;
	size_t naudiences;
	long long skew_s; /* clock difference allowed either way */
	/* The claim holding the person's groups: its name, or the names
	 * leading to it through nested objects (Keycloak's "realm_access",
	 * "roles"); none when ngroups_path is 0. */
	const char *const *groups_path;
	size_t ngroups_path;
	const char *const *person_claims; /* claims kept beside "sub" (e.g. "email") */
	size_t nperson;
};

/* Who a verified token names. json values are owned: jwt_identity_clear. */
struct jwt_identity {
	char kid[JWT_KID_MAX + 1]; /* the key that signed it */
	json_t *person;            /* {"sub": ..., and each person claim present} */
	json_t *groups;            /* an array of strings, maybe empty */
};

void jwt_identity_clear(struct jwt_identity *id);

/* Whether token[0..len) has the shape of a compact JWS: two dots, a
 * header and claims of base64url characters, a signature of base64url
 * characters or none (as "alg": "none" sends). API keys never have it. */
int jwt_shape(const char *token, size_t len);

/*
 * Verifies token[0..len) against keys and rules at the time now (seconds
 * since the epoch). Returns 0 with *id filled, or -1 with e filled:
 * status 401, type invalid_request_error, one of the codes above and a
 * message saying what was wrong that never quotes the token; 503
 * out_of_memory when memory ran out. The checks go in this order, so no
 * claim is judged before the signature proves who wrote it: the form,
 * the algorithm, the key (by "kid"), the signature, then iss, aud, exp,
 * nbf and iat. On -1 with code JWT_UNKNOWN_KEY, the caller may fetch the
 * set again: the key may be new.
 */
int jwt_verify(const struct jwt_keys *keys, const struct jwt_rules *rules, const char *token,
               size_t len, long long now, struct jwt_identity *id, struct err *e);

#endif
