/*
 * Tests for gateway/chain.c's macs against published vectors: HMAC-SHA-256
 * from RFC 4231 (test case 2) and SHA-256 from FIPS 180-2 ("abc"). A keyed
 * context is reused for every line of the log, so each vector is computed
 * several times in a row and interleaved with others: a mac that carried
 * state from the one before would differ.
 */
#include <criterion/criterion.h>

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
