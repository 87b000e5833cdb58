/*
 * chain: the audit key's HMAC, for secret fingerprints and for the chain
 * of macs an auditor holding the key can check.
 *
 * Every line of the log ends with "mac", a mac under the audit key of the
 * line's own text without that member, and names the previous line's mac
 * as "prev", so a changed, removed, inserted or reordered line breaks the
 * chain at that very line. Two formats, named by the segment line that
 * opens each stretch of the log ("mac_format"; absent means 1):
 *   1: HMAC-SHA-256(key, text)
 *   2: HMAC-SHA-256(key, SHA-256(0x00 || text))
 * where text is the line without its mac member (ending in its '}'). The
 * gateway writes format 2: 0x00 || text is where the line's Merkle leaf
 * hash begins too, so one pass over the line makes both (chain_seal).
 * The log's integrity does not rest on the chain (the Merkle tree and its
 * signed checkpoints prove the log to anyone with the public key, see
 * tlog.h); it only says where, to those who hold the shared key.
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

#define CHAIN_FORMAT 2 /* the format chain_seal writes */

/* The mac of text[0..len) followed by extra (NUL-terminated, may be ""),
 * in lower-case hex into out. Returns 0 or -1. */
int chain_mac(struct chain_key *k, const char *text, size_t len, const char *extra,
              char out[CHAIN_HEX + 1]);

/*
 * The mac a line of the given format (1 or 2) carries: line[0..len) is the
 * line up to its mac member (without the closing '}', which the mac
 * covers). Returns 0, or -1 (an unknown format, or OpenSSL failing).
 */
int chain_line_mac(struct chain_key *k, int format, const char *line, size_t len,
                   char out[CHAIN_HEX + 1]);

/*
 * Seals a line in one pass: open[0..len) is its text up to the mac member,
 * without the closing '}'. Puts its mac (format CHAIN_FORMAT) in hex into
 * mac, and the Merkle leaf hash of the whole line it becomes, open followed
 * by ,"mac":"<mac>"} (merkle.h: SHA-256(0x00 || line)), into leaf.
 * Returns 0 or -1.
 */
int chain_seal(struct chain_key *k, const char *open, size_t len, char mac[CHAIN_HEX + 1],
               unsigned char leaf[32]);

/* A fingerprint of a secret value: "hmac-sha256:<hex>" under a secret key
 * (-1 with none: a plain hash of a short token could be guessed); it can
 * prove which value was used without revealing it. */
int chain_fingerprint(struct chain_key *k, const char *value, size_t len,
                      char out[12 + CHAIN_HEX + 1]);

#endif
