/*
 * Tests for gateway/audit/note.c: the signed note of Go's
 * golang.org/x/mod/sumdb/note tests (Peter Neumann's, key ID c74f20a3)
 * verifies with its public key, as a note another implementation made;
 * notes signed here verify, another key's signature lines are ignored, a
 * changed byte or a wrong key is told apart; checkpoint texts are read
 * strictly.
 */
#include <criterion/criterion.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/note.h"
#include "lib/base64.h"

TestSuite(note);

/* The public key of "PeterNeumann+c74f20a3+ARpc2QcU...", in a PEM file. */
static const char *
neumann_pub(void)
{
	static char path[] = "/tmp/test_note_XXXXXX";
	unsigned char raw[33];
	EVP_PKEY *k;
	FILE *f;
	int fd;

	cr_assert_eq(
	        base64_decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", 44, raw, sizeof(raw)),
	        33);
	cr_assert_eq(raw[0], 0x01, "an Ed25519 verifier key");
	k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw + 1, 32);
	cr_assert_not_null(k);
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	f = fdopen(fd, "w");
	cr_assert_eq(PEM_write_PUBKEY(f, k), 1);
	fclose(f);
	EVP_PKEY_free(k);
	return path;
}

#define NEUMANN_TEXT                                                                               \
	"If you think cryptography is the answer to your problem,\n"                               \
	"then you don't know what your problem is.\n"
#define NEUMANN_SIG                                                                                \
	"\xe2\x80\x94 PeterNeumann "                                                               \
	"x08go/ZJkuBS9UG/"                                                                         \
	"SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="             \
	"\n"

Test(note, a_note_go_signed_verifies)
{
	const char *why = NULL, *path = neumann_pub();
	struct note_key *k = note_key_load(path, 0, NULL, &why);
	static const char note[] = NEUMANN_TEXT "\n" NEUMANN_SIG;
	char bad[sizeof(note)];
	size_t text_len;

	cr_assert_not_null(k, "%s", why);
	cr_expect_eq(note_verify(k, note, strlen(note), &text_len), NOTE_VERIFIED);
	cr_expect_eq(text_len, strlen(NEUMANN_TEXT));
	memcpy(bad, note, sizeof(note));
	bad[3] ^= 0x20;
	cr_expect_eq(note_verify(k, bad, strlen(bad), &text_len), NOTE_BAD_SIGNATURE);
	note_key_free(k);
	unlink(path);
}

/* An Ed25519 key pair in PEM files: *priv and *pub. */
static void
make_key(char *priv, char *pub)
{
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	FILE *f;
	int fd;

	cr_assert(ctx && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &k) == 1);
	EVP_PKEY_CTX_free(ctx);
	strcpy(priv, "/tmp/test_note_priv_XXXXXX");
	strcpy(pub, "/tmp/test_note_pub_XXXXXX");
	fd = mkstemp(priv);
	f = fdopen(fd, "w");
	cr_assert_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	fd = mkstemp(pub);
	f = fdopen(fd, "w");
	cr_assert_eq(PEM_write_PUBKEY(f, k), 1);
	fclose(f);
	EVP_PKEY_free(k);
}

Test(note, a_checkpoint_signed_here_verifies_and_a_wrong_key_is_named)
{
	char priv[64], pub[64], priv2[64], pub2[64], text[512], note[NOTE_MAX],
	        more[NOTE_MAX + 256];
	char origin[NOTE_NAME_MAX + 1];
	unsigned char root[32], back[32];
	const char *why = NULL;
	struct note_key *signer, *verifier, *other;
	size_t tlen, nlen, text_len;
	uint64_t size;

	make_key(priv, pub);
	make_key(priv2, pub2);
	memset(root, 0xab, sizeof(root));
	signer = note_key_load(priv, 1, "gw.example/audit", &why);
	cr_assert_not_null(signer, "%s", why);
	verifier = note_key_load(pub, 0, NULL, &why);
	other = note_key_load(pub2, 0, NULL, &why);
	cr_assert(verifier && other);
	tlen = note_checkpoint(text, sizeof(text), "gw.example/audit", 1234, root);
	cr_assert_gt(tlen, 0);
	cr_expect_str_eq(text,
	                 "gw.example/audit\n1234\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n");
	nlen = note_sign(signer, text, tlen, note, sizeof(note));
	cr_assert_gt(nlen, tlen);
	cr_expect(strncmp(note + tlen, "\n\xe2\x80\x94 gw.example/audit ", 22) == 0, "%s", note);
	cr_expect_eq(note_verify(verifier, note, nlen, &text_len), NOTE_VERIFIED);
	cr_expect_eq(text_len, tlen);
	/* The private key verifies too. */
	cr_expect_eq(note_verify(signer, note, nlen, &text_len), NOTE_VERIFIED);
	/* Another key: not signed by it, which is not tampering. */
	cr_expect_eq(note_verify(other, note, nlen, &text_len), NOTE_NOT_SIGNED);
	/* A witness's cosignature line is ignored. */
	snprintf(more, sizeof(more),
	         "%s\xe2\x80\x94 witness.example/w1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
	         note);
	cr_expect_eq(note_verify(verifier, more, strlen(more), &text_len), NOTE_VERIFIED);
	cr_expect(note_signature_lines(more + nlen, strlen(more) - nlen));
	cr_expect(!note_signature_lines("hello\n", 6));
	/* A changed size. */
	note[18] = '5';
	cr_expect_eq(note_verify(verifier, note, nlen, &text_len), NOTE_BAD_SIGNATURE);
	note[18] = '2';
	/* Not a note at all. */
	cr_expect_eq(note_verify(verifier, text, tlen, &text_len), NOTE_MALFORMED);
	cr_expect_eq(note_verify(verifier, "a\n\nb\n", 5, &text_len), NOTE_MALFORMED);

	cr_assert_eq(note_checkpoint_parse(text, tlen, origin, &size, back), 0);
	cr_expect_str_eq(origin, "gw.example/audit");
	cr_expect_eq(size, 1234);
	cr_expect_eq(memcmp(back, root, 32), 0);
	note_key_free(signer);
	note_key_free(verifier);
	note_key_free(other);
	unlink(priv);
	unlink(pub);
	unlink(priv2);
	unlink(pub2);
}

Test(note, checkpoint_texts_are_read_strictly)
{
	static const char *const bad[] = {
	        "o\n01\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n",  /* leading zero */
	        "o\n-1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n",  /* a sign */
	        "o\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6=\n",    /* short root */
	        "\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n",    /* no origin */
	        "o\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=",     /* no last newline */
	        "o\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n\n", /* empty extension */
	        "o\n18446744073709551616\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n",
	};
	static const char ext[] = "o\n0\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\next\n";
	char origin[NOTE_NAME_MAX + 1];
	unsigned char root[32];
	uint64_t size;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_expect_eq(note_checkpoint_parse(bad[i], strlen(bad[i]), origin, &size, root), -1,
		             "%s", bad[i]);
	cr_expect_eq(note_checkpoint_parse(ext, strlen(ext), origin, &size, root), 0);
	cr_expect_eq(size, 0);
	cr_expect(note_name_valid("gateway.example/audit"));
	cr_expect(!note_name_valid("a b"));
	cr_expect(!note_name_valid("a+b"));
	cr_expect(!note_name_valid(""));
}
