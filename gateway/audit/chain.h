/*
 * chain: the audit key's HMAC, for secret fingerprints and for the chain
 * of macs an auditor holding the key can check.
 *
 * Every line of the log ends with "mac": an HMAC-SHA-256, under the audit
 * key, of the line's own text without that member, and names the previous
 * line's mac as "prev", so a changed, removed, inserted or reordered line
 * breaks the chain at that very line. The log's integrity does not rest on
 * it (the Merkle tree and its signed checkpoints prove the log to anyone
 * with the public key, see tlog.h); the chain only says where, to those
 * who hold the shared key.
 *
 * The suffix has a fixed length, so the text it covers is recovered byte
 * for byte, with no re-serialization.
 */
#ifndef GW_CHAIN_H
#define GW_CHAIN_H

#include <stddef.h>

#define CHAIN_HEX 64 /* hex characters of a mac */

/* The suffix a line ends with: ,"mac":"<64 hex>"} */
#define CHAIN_MAC_SUFFIX (8 + CHAIN_HEX + 2)

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

#endif
