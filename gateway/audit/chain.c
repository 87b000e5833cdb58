#include "audit/chain.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "lib/hex.h"
#include "lib/secmem.h"

const char chain_genesis[CHAIN_HEX + 1] =
        "0000000000000000000000000000000000000000000000000000000000000000";

/* One context, keyed once and re-initialized per mac; workers share the
 * key (chain and fingerprints), so a mac is computed under its lock. */
struct chain_key {
	pthread_mutex_t mu;
	EVP_MAC_CTX *hmac; /* NULL with no key */
	EVP_MD *sha256;
	EVP_MD_CTX *md;   /* a plain mac; a line's pass in chain_seal */
	EVP_MD_CTX *fork; /* the line's text, forked off that pass */
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
	}
	k->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	k->md = EVP_MD_CTX_new();
	k->fork = EVP_MD_CTX_new();
	if (k->sha256 == NULL || k->md == NULL || k->fork == NULL) {
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
	EVP_MD_CTX_free(k->fork);
	EVP_MD_free(k->sha256);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

int
chain_key_secret(const struct chain_key *k)
{
	return k->hmac != NULL;
}

/* The raw mac of two pieces, under k's lock. */
static int
mac_locked(struct chain_key *k, const void *a, size_t alen, const void *b, size_t blen,
           unsigned char md[32])
{
	size_t mdlen = 32;
	unsigned int dlen = 0;

	if (k->hmac)
		/* A NULL key starts over under the key already set. */
		return EVP_MAC_init(k->hmac, NULL, 0, NULL) == 1 &&
		                       EVP_MAC_update(k->hmac, a, alen) == 1 &&
		                       EVP_MAC_update(k->hmac, b, blen) == 1 &&
		                       EVP_MAC_final(k->hmac, md, &mdlen, 32) == 1 && mdlen == 32
		               ? 0
		               : -1;
	return EVP_DigestInit_ex(k->md, k->sha256, NULL) == 1 &&
	                       EVP_DigestUpdate(k->md, a, alen) == 1 &&
	                       EVP_DigestUpdate(k->md, b, blen) == 1 &&
	                       EVP_DigestFinal_ex(k->md, md, &dlen) == 1 && dlen == 32
	               ? 0
	               : -1;
}

int
chain_mac(struct chain_key *k, const char *text, size_t len, const char *extra,
          char out[CHAIN_HEX + 1])
{
	unsigned char md[32];
	int rc;

	pthread_mutex_lock(&k->mu);
	rc = mac_locked(k, text, len, extra, strlen(extra), md);
	pthread_mutex_unlock(&k->mu);
	if (rc < 0)
		return -1;
	hex_encode(md, sizeof(md), out);
	return 0;
}

/* Format 2 from a context holding 0x00 || line: forks it, closes the
 * text with its '}', and macs the digest. The context is left as it was. */
static int
mac_forked(struct chain_key *k, EVP_MD_CTX *line, unsigned char md[32])
{
	unsigned char digest[32];
	unsigned int dlen = 0;

	if (EVP_MD_CTX_copy_ex(k->fork, line) != 1 || EVP_DigestUpdate(k->fork, "}", 1) != 1 ||
	    EVP_DigestFinal_ex(k->fork, digest, &dlen) != 1 || dlen != sizeof(digest))
		return -1;
	if (k->hmac == NULL) {
		memcpy(md, digest, sizeof(digest));
		return 0;
	}
	return mac_locked(k, digest, sizeof(digest), "", 0, md);
}

int
chain_line_mac(struct chain_key *k, int format, const char *line, size_t len,
               char out[CHAIN_HEX + 1])
{
	unsigned char md[32];
	int rc = -1;

	if (format == 1)
		return chain_mac(k, line, len, "}", out);
	if (format != 2)
		return -1;
	pthread_mutex_lock(&k->mu);
	if (EVP_DigestInit_ex(k->md, k->sha256, NULL) == 1 && EVP_DigestUpdate(k->md, "", 1) == 1 &&
	    EVP_DigestUpdate(k->md, line, len) == 1)
		rc = mac_forked(k, k->md, md);
	pthread_mutex_unlock(&k->mu);
	if (rc < 0)
		return -1;
	hex_encode(md, sizeof(md), out);
	return 0;
}

int
chain_seal(struct chain_key *k, const char *open, size_t len, char mac[CHAIN_HEX + 1],
           unsigned char leaf[32])
{
	unsigned char md[32];
	unsigned int dlen = 0;
	int ok;

	pthread_mutex_lock(&k->mu);
	/* "" is one byte: the leaf's 0x00 prefix. */
	ok = EVP_DigestInit_ex(k->md, k->sha256, NULL) == 1 &&
	     EVP_DigestUpdate(k->md, "", 1) == 1 && EVP_DigestUpdate(k->md, open, len) == 1 &&
	     mac_forked(k, k->md, md) == 0;
	if (ok) {
		hex_encode(md, sizeof(md), mac);
		ok = EVP_DigestUpdate(k->md, ",\"mac\":\"", 8) == 1 &&
		     EVP_DigestUpdate(k->md, mac, CHAIN_HEX) == 1 &&
		     EVP_DigestUpdate(k->md, "\"}", 2) == 1 &&
		     EVP_DigestFinal_ex(k->md, leaf, &dlen) == 1 && dlen == 32;
	}
	pthread_mutex_unlock(&k->mu);
	return ok ? 0 : -1;
}

int
chain_fingerprint(struct chain_key *k, const char *value, size_t len, char out[12 + CHAIN_HEX + 1])
{
	if (k == NULL || !chain_key_secret(k))
		return -1;
	memcpy(out, "hmac-sha256:", 12);
	return chain_mac(k, value, len, "", out + 12);
}
