/*
 * base64: the standard alphabet with padding (RFC 4648, section 4), as
 * transparency logs write hashes and signatures, and the URL-safe alphabet
 * without padding (section 5), as JSON Web Tokens and keys write theirs.
 * Decoding is strict: no whitespace, no missing or extra padding, no bits
 * left over, so one value has exactly one text.
 */
#ifndef GW_BASE64_H
#define GW_BASE64_H

#include <stddef.h>

/* Characters base64 needs for n bytes, without the NUL. */
#define BASE64_LEN(n) ((((n) + 2) / 3) * 4)

/* Writes the text of in[0..n) and a NUL to out (BASE64_LEN(n) + 1 bytes);
 * returns its length. */
size_t base64_encode(const unsigned char *in, size_t n, char *out);

/* Decodes text[0..len) into out (room for cap bytes); returns the number of
 * bytes, or -1 when the text is not canonical base64 or does not fit. */
long base64_decode(const char *text, size_t len, unsigned char *out, size_t cap);

/* Bytes base64url text of len characters decodes to, at most. */
#define BASE64URL_DECODED_MAX(len) ((len) / 4 * 3 + 2)

/* Decodes base64url text[0..len) (RFC 4648 section 5, '-' and '_', no
 * padding, as RFC 7515 writes JWS parts) into out (room for cap bytes);
 * returns the number of bytes, or -1 when the text is not canonical (a
 * character outside the alphabet, '=', a length that leaves bits over,
 * bits set that no byte holds) or does not fit. */
long base64url_decode(const char *text, size_t len, unsigned char *out, size_t cap);

#endif
