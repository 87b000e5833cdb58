/*
 * Tests for gateway/chain.c's macs against published vectors: HMAC-SHA-256
 * from RFC 4231 (test case 2) and SHA-256 from FIPS 180-2 ("abc"). A keyed
 * context is reused for every line of the log, so each vector is computed
 * several times in a row and interleaved with others: a mac that carried
 * state from the one before would differ.
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string.h>

#include "audit/chain.h"
#include "lib/secmem.h"

#define RFC4231_2 "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
/* HMAC-SHA-256("Jefe", "what do ya want "), from openssl dgst -hmac. */
#define JEFE_PART "b4f901c96804e22a9b5e2e9d945c655c01d5987121cec6f55ff5f5beaed22e4f"
#define SHA_ABC   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void
suite_init(void)
{
	secmem_init();
}

TestSuite(chain, .init = suite_init);

Test(chain, hmac_matches_rfc4231_every_time)
{
	static const char text[] = "what do ya want for nothing?";
	struct chain_key *k = chain_key_new((const unsigned char *)"Jefe", 4);
	char out[CHAIN_HEX + 1];
	int i;

	cr_assert_not_null(k);
	cr_expect(chain_key_secret(k));
	for (i = 0; i < 3; i++) {
		cr_assert_eq(chain_mac(k, text, strlen(text), "", out), 0);
		cr_expect_str_eq(out, RFC4231_2, "round %d", i);
		/* The text split between text and extra gives the same mac. */
		cr_assert_eq(chain_mac(k, text, 16, text + 16, out), 0);
		cr_expect_str_eq(out, RFC4231_2, "split, round %d", i);
		cr_assert_eq(chain_mac(k, text, 16, "", out), 0);
		cr_expect_str_eq(out, JEFE_PART, "prefix, round %d", i);
	}
	chain_key_free(k);
}

Test(chain, unkeyed_is_plain_sha256)
{
	struct chain_key *k = chain_key_new(NULL, 0);
	char out[CHAIN_HEX + 1], print[12 + CHAIN_HEX + 1];
	int i;

	cr_assert_not_null(k);
	cr_expect_not(chain_key_secret(k));
	for (i = 0; i < 3; i++) {
		cr_assert_eq(chain_mac(k, "ab", 2, "c", out), 0);
		cr_expect_str_eq(out, SHA_ABC, "round %d", i);
	}
	/* No fingerprints without a secret key: a hash of a token is a guess
	 * away from the token. */
	cr_expect_eq(chain_fingerprint(k, "sk-x", 4, print), -1);
	cr_expect_eq(chain_fingerprint(NULL, "sk-x", 4, print), -1);
	chain_key_free(k);
}

Test(chain, fingerprint_is_the_hmac_of_the_value)
{
	static const char text[] = "what do ya want for nothing?";
	struct chain_key *k = chain_key_new((const unsigned char *)"Jefe", 4);
	char print[12 + CHAIN_HEX + 1];

	cr_assert_not_null(k);
	cr_assert_eq(chain_fingerprint(k, text, strlen(text), print), 0);
	cr_expect_str_eq(print, "hmac-sha256:" RFC4231_2);
	chain_key_free(k);
}

/* The hex of HMAC-SHA-256(key, SHA-256(0x00 || text)), made here with
 * OpenSSL's one-shot calls, apart from chain.c's contexts. */
static void
format2(const char *key, const char *text, char out[CHAIN_HEX + 1])
{
	unsigned char digest[32], md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int i;

	cr_assert(EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	          EVP_DigestUpdate(c, "", 1) == 1 && EVP_DigestUpdate(c, text, strlen(text)) == 1 &&
	          EVP_DigestFinal_ex(c, digest, NULL) == 1);
	EVP_MD_CTX_free(c);
	if (key == NULL)
		memcpy(md, digest, sizeof(md));
	else
		HMAC(EVP_sha256(), key, (int)strlen(key), digest, sizeof(digest), md, &mdlen);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

Test(chain, line_macs_of_both_formats)
{
	static const char open[] = "{\"type\":\"request\",\"seq\":7,\"prev\":\"ab\"";
	const char *keys[] = {"Jefe", NULL};
	char out[CHAIN_HEX + 1], want[CHAIN_HEX + 1];
	size_t i;

	for (i = 0; i < 2; i++) {
		struct chain_key *k = keys[i] ? chain_key_new((const unsigned char *)keys[i], 4)
		                              : chain_key_new(NULL, 0);

		cr_assert_not_null(k);
		/* 1: the text itself, closed by its '}'. */
		cr_assert_eq(chain_line_mac(k, 1, open, strlen(open), out), 0);
		cr_assert_eq(chain_mac(k, open, strlen(open), "}", want), 0);
		cr_expect_str_eq(out, want);
		/* 2: the SHA-256 of 0x00 and that text. */
		cr_assert_eq(chain_line_mac(k, 2, open, strlen(open), out), 0);
		format2(keys[i], "{\"type\":\"request\",\"seq\":7,\"prev\":\"ab\"}", want);
		cr_expect_str_eq(out, want, "key %s", keys[i] ? keys[i] : "(none)");
		cr_expect_eq(chain_line_mac(k, 3, open, strlen(open), out), -1);
		cr_expect_eq(chain_line_mac(k, 0, open, strlen(open), out), -1);
		chain_key_free(k);
	}
}

/* chain_seal's one pass gives the format-2 mac and the Merkle leaf hash
 * of the very line it makes, every time. */
Test(chain, a_seal_is_the_mac_and_the_leaf_of_its_line)
{
	static const char open[] = "{\"type\":\"intent\",\"seq\":2,\"prev\":\"00\"";
	struct chain_key *k = chain_key_new((const unsigned char *)"Jefe", 4);
	char mac[CHAIN_HEX + 1], want[CHAIN_HEX + 1], line[256];
	unsigned char leaf[32], want_leaf[32];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int i;

	cr_assert_not_null(k);
	for (i = 0; i < 3; i++) {
		cr_assert_eq(chain_seal(k, open, strlen(open), mac, leaf), 0);
		cr_assert_eq(chain_line_mac(k, 2, open, strlen(open), want), 0);
		cr_expect_str_eq(mac, want, "round %d", i);
		snprintf(line, sizeof(line), "%s,\"mac\":\"%s\"}", open, mac);
		cr_assert(EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
		          EVP_DigestUpdate(c, "", 1) == 1 &&
		          EVP_DigestUpdate(c, line, strlen(line)) == 1 &&
		          EVP_DigestFinal_ex(c, want_leaf, NULL) == 1);
		cr_expect_arr_eq(leaf, want_leaf, 32, "round %d", i);
		/* Interleaved with another mac: no state carried over. */
		cr_assert_eq(chain_mac(k, "x", 1, "", want), 0);
	}
	EVP_MD_CTX_free(c);
	chain_key_free(k);
}
