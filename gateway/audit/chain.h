/*
 * chain: what makes the audit log tamper-evident.
 *
 * Every line of the log ends with "mac": an HMAC-SHA-256, under the audit
 * key, of the line's own text without that member, and names the previous
 * line's mac as "prev", so a changed, removed, inserted or reordered line
 * breaks the chain. Checkpoint lines also carry "digest", a SHA-256 over
 * the exact bytes of every line since the previous checkpoint (chained),
 * and "sig", an Ed25519 signature of the checkpoint, so a verifier holding
 * only the public key can still prove the log up to there is intact.
 *
 * Both suffixes have fixed lengths, so the text they cover is recovered
 * byte for byte, with no re-serialization.
 */
#ifndef GW_CHAIN_H
#define GW_CHAIN_H

#include <stddef.h>

#define CHAIN_HEX     64 /* hex characters of a mac or digest */
#define CHAIN_SIG_B64 88 /* base64 characters of an Ed25519 signature */

/* The suffixes a line ends with: ,"mac":"<64 hex>"} and, on checkpoints,
 * before it, ,"sig":"<88 base64>" */
#define CHAIN_MAC_SUFFIX (8 + CHAIN_HEX + 2)
#define CHAIN_SIG_SUFFIX (8 + CHAIN_SIG_B64 + 1)

/* The previous mac of the first line of a log: 64 zeros. */
extern const char chain_genesis[CHAIN_HEX + 1];

/*
 * The key macs are made under: HMAC-SHA-256 when keylen > 0, plain
 * SHA-256 otherwise (which only detects accidents). Set up once, since
 * OpenSSL 3 would fetch and key the algorithm afresh on every call. The
 * key is copied by OpenSSL, not kept here. Workers share one key: calls
 * take turns on it under a lock.
 */
struct chain_key *chain_key_new(const unsigned char *key, size_t keylen);
void chain_key_free(struct chain_key *k);

/* Whether macs are keyed (HMAC) rather than plain hashes. */
int chain_key_secret(const struct chain_key *k);

/* The mac of text[0..len) followed by extra (NUL-terminated, may be ""),
 * in lower-case hex into out. Returns 0 or -1. */
int chain_mac(struct chain_key *k, const char *text, size_t len, const char *extra,
              char out[CHAIN_HEX + 1]);

/* A fingerprint of a secret value: "hmac-sha256:<hex>" under a secret key
 * (-1 with none: a plain hash of a short token could be guessed); it can
 * prove which value was used without revealing it. */
int chain_fingerprint(struct chain_key *k, const char *value, size_t len,
                      char out[12 + CHAIN_HEX + 1]);

struct chain_key;
struct chain_digest;

/* The running digest over line bytes between checkpoints. */
struct chain_digest *chain_digest_new(const char prev[CHAIN_HEX + 1]);
void chain_digest_free(struct chain_digest *d);
int chain_digest_add(struct chain_digest *d, const char *bytes, size_t len);
/* The digest so far, and a fresh start chained from it. */
int chain_digest_cut(struct chain_digest *d, char out[CHAIN_HEX + 1]);

struct chain_signer;

/* Loads an Ed25519 private key (PEM); NULL with why set when it cannot. */
struct chain_signer *chain_signer_load(const char *path, const char **why);
/* Loads an Ed25519 public key (PEM) for verifying. */
struct chain_signer *chain_verifier_load(const char *path, const char **why);
void chain_signer_free(struct chain_signer *s);

/* Signs text[0..len) + "}"; base64 into out. */
int chain_sign(struct chain_signer *s, const char *text, size_t len, char out[CHAIN_SIG_B64 + 1]);
/* 1 when sig (base64) is the signature of text[0..len) + "}". */
int chain_verify(struct chain_signer *s, const char *text, size_t len, const char *sig_b64);

#endif
