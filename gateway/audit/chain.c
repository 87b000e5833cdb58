#include "audit/chain.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "lib/secmem.h"

const char chain_genesis[CHAIN_HEX + 1] =
        "0000000000000000000000000000000000000000000000000000000000000000";

static void
to_hex(const unsigned char *md, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * n] = '\0';
}

/* One context, keyed once and re-initialized per mac; workers share the
 * key (chain and fingerprints), so a mac is computed under its lock. */
struct chain_key {
	pthread_mutex_t mu;
	EVP_MAC_CTX *hmac;
	EVP_MD *sha256; /* with no key */
	EVP_MD_CTX *md;
};

struct chain_key *
chain_key_new(const unsigned char *key, size_t keylen)
{
	struct chain_key *k = calloc(1, sizeof(*k));
	char digest[] = "SHA256";
	OSSL_PARAM params[2];
	EVP_MAC *mac;

	if (k == NULL)
		return NULL;
	pthread_mutex_init(&k->mu, NULL);
	if (keylen > 0) {
		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
		params[1] = OSSL_PARAM_construct_end();
		mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		k->hmac = mac ? EVP_MAC_CTX_new(mac) : NULL;
		EVP_MAC_free(mac); /* the context holds its own reference */
		if (k->hmac == NULL || EVP_MAC_init(k->hmac, key, keylen, params) != 1) {
			chain_key_free(k);
			return NULL;
		}
		return k;
	}
	k->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	k->md = EVP_MD_CTX_new();
	if (k->sha256 == NULL || k->md == NULL) {
		chain_key_free(k);
		return NULL;
	}
	return k;
}

void
chain_key_free(struct chain_key *k)
{
	if (k == NULL)
		return;
	EVP_MAC_CTX_free(k->hmac);
	EVP_MD_CTX_free(k->md);
	EVP_MD_free(k->sha256);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

int
chain_key_secret(const struct chain_key *k)
{
	return k->hmac != NULL;
}

int
chain_mac(struct chain_key *k, const char *text, size_t len, const char *extra,
          char out[CHAIN_HEX + 1])
{
	unsigned char md[32];
	size_t mdlen = sizeof(md);
	unsigned int dlen = 0;
	int ok;

	pthread_mutex_lock(&k->mu);
	if (k->hmac)
		/* A NULL key starts over under the key already set. */
		ok = EVP_MAC_init(k->hmac, NULL, 0, NULL) == 1 &&
		     EVP_MAC_update(k->hmac, (const unsigned char *)text, len) == 1 &&
		     EVP_MAC_update(k->hmac, (const unsigned char *)extra, strlen(extra)) == 1 &&
		     EVP_MAC_final(k->hmac, md, &mdlen, sizeof(md)) == 1 && mdlen == sizeof(md);
	else
		ok = EVP_DigestInit_ex(k->md, k->sha256, NULL) == 1 &&
		     EVP_DigestUpdate(k->md, text, len) == 1 &&
		     EVP_DigestUpdate(k->md, extra, strlen(extra)) == 1 &&
		     EVP_DigestFinal_ex(k->md, md, &dlen) == 1 && dlen == sizeof(md);
	pthread_mutex_unlock(&k->mu);
	if (!ok)
		return -1;
	to_hex(md, sizeof(md), out);
	return 0;
}

int
chain_fingerprint(struct chain_key *k, const char *value, size_t len, char out[12 + CHAIN_HEX + 1])
{
	if (k == NULL || !chain_key_secret(k))
		return -1;
	memcpy(out, "hmac-sha256:", 12);
	return chain_mac(k, value, len, "", out + 12);
}

struct chain_digest {
	EVP_MD_CTX *ctx;
};

static int
digest_start(struct chain_digest *d, const char prev[CHAIN_HEX + 1])
{
	return EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) == 1 &&
	                       EVP_DigestUpdate(d->ctx, prev, CHAIN_HEX) == 1
	               ? 0
	               : -1;
}

struct chain_digest *
chain_digest_new(const char prev[CHAIN_HEX + 1])
{
	struct chain_digest *d = calloc(1, sizeof(*d));

	if (d == NULL || (d->ctx = EVP_MD_CTX_new()) == NULL || digest_start(d, prev) < 0) {
		chain_digest_free(d);
		return NULL;
	}
	return d;
}

void
chain_digest_free(struct chain_digest *d)
{
	if (d == NULL)
		return;
	EVP_MD_CTX_free(d->ctx);
	free(d);
}

int
chain_digest_add(struct chain_digest *d, const char *bytes, size_t len)
{
	return EVP_DigestUpdate(d->ctx, bytes, len) == 1 ? 0 : -1;
}

int
chain_digest_cut(struct chain_digest *d, char out[CHAIN_HEX + 1])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(d->ctx, md, &n) != 1)
		return -1;
	to_hex(md, 32, out);
	return digest_start(d, out);
}

struct chain_signer {
	EVP_PKEY *key;
};

static struct chain_signer *
load(const char *path, int private, const char **why)
{
	struct chain_signer *s;
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	if (f == NULL) {
		*why = "cannot open the key file";
		return NULL;
	}
	k = private ? PEM_read_PrivateKey(f, NULL, NULL, NULL)
	            : PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL || EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519) {
		*why = private ? "not a PEM Ed25519 private key" : "not a PEM Ed25519 public key";
		EVP_PKEY_free(k);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		EVP_PKEY_free(k);
		*why = "out of memory";
		return NULL;
	}
	s->key = k;
	return s;
}

struct chain_signer *
chain_signer_load(const char *path, const char **why)
{
	return load(path, 1, why);
}

struct chain_signer *
chain_verifier_load(const char *path, const char **why)
{
	return load(path, 0, why);
}

void
chain_signer_free(struct chain_signer *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);
	free(s);
}

/* Ed25519 signs a whole message at once: text + "}" is put together. */
static unsigned char *
closed(const char *text, size_t len)
{
	unsigned char *m = malloc(len + 1);

	if (m) {
		memcpy(m, text, len);
		m[len] = '}';
	}
	return m;
}

int
chain_sign(struct chain_signer *s, const char *text, size_t len, char out[CHAIN_SIG_B64 + 1])
{
	unsigned char sig[64], *m = closed(text, len);
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = -1;

	if (m && ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key) == 1 &&
	    EVP_DigestSign(ctx, sig, &siglen, m, len + 1) == 1 && siglen == 64 &&
	    EVP_EncodeBlock((unsigned char *)out, sig, 64) == CHAIN_SIG_B64)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	free(m);
	return rc;
}

int
chain_verify(struct chain_signer *s, const char *text, size_t len, const char *sig_b64)
{
	unsigned char sig[66], *m = closed(text, len);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = 0;

	/* 88 base64 characters decode to 66 bytes, two of them padding. */
	if (m && ctx && EVP_DecodeBlock(sig, (const unsigned char *)sig_b64, CHAIN_SIG_B64) == 66 &&
	    EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, s->key) == 1 &&
	    EVP_DigestVerify(ctx, sig, 64, m, len + 1) == 1)
		ok = 1;
	EVP_MD_CTX_free(ctx);
	free(m);
	return ok;
}
