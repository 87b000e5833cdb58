/*
 * hex: bytes as lower-case hexadecimal, as digests are shown (sha256sum,
 * openssl's fingerprints without colons).
 */
#ifndef GW_HEX_H
#define GW_HEX_H

#include <stddef.h>

/* Writes the 2 * n hex digits of in[0..n) and a NUL to out (2 * n + 1
 * bytes); returns 2 * n. */
size_t hex_encode(const unsigned char *in, size_t n, char *out);

/* The value of one hex digit, either case; -1 for anything else. */
int hex_digit(int c);

/* The value of the four hex digits at p (a JSON \uXXXX escape's) in *v;
 * 0, or -1 when one is not a hex digit. */
int hex_u16(const char *p, unsigned *v);

#endif
