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
	hex_encode(md, sizeof(md), out);
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
