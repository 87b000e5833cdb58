/*
 * keys: API keys, known only by their SHA-256.
 *
 * The policy lists tenants' keys as SHA-256 hex digests, so a policy file
 * never holds a key. A presented key is hashed and compared in constant
 * time.
 */
#ifndef GW_KEYS_H
#define GW_KEYS_H

#include <stddef.h>

#define KEYS_HEX_LEN 64

/* Writes the lower-case SHA-256 hex of key[0..len) into out (65 bytes). */
void keys_hash_hex(const char *key, size_t len, char out[KEYS_HEX_LEN + 1]);

/* Whether two hex digests are equal, in time that does not depend on
 * where they differ. */
int keys_equal(const char *a, const char *b);

/* Whether s is a SHA-256 hex digest (64 hex digits, either case). */
int keys_is_digest(const char *s);

/*
 * The credential of an Authorization header value (its surrounding
 * whitespace already trimmed) read the way HTTP defines it (RFC 9110
 * 11.4, 11.6.2): the scheme "Bearer" in any case, one or more spaces or
 * tabs, then a token68: letters, digits, "-", ".", "_", "~", "+", "/",
 * then any "=" padding. Returns 0 with *token and *len pointing into
 * value, or -1 when the value is anything else (another scheme, no token,
 * a token with other characters, something after it).
 */
int keys_bearer(const char *value, size_t n, const char **token, size_t *len);

/* `gateway hash-key`: reads a key on standard input (one trailing newline
 * dropped) and prints its SHA-256 hex. Returns the exit status. */
int keys_main(int argc, char **argv);

#endif
