/*
 * utf8: the one check of UTF-8 text (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), for every module that takes text.
 */
#ifndef GW_UTF8_H
#define GW_UTF8_H

#include <stddef.h>

/* Length of the valid sequence at s (n bytes left, n >= 1), or 0. */
size_t utf8_seq(const unsigned char *s, size_t n);

/* Whether s[0..n) is valid UTF-8. */
int utf8_valid(const char *s, size_t n);

/* Writes code point cp (at most U+10FFFF, not a surrogate) as UTF-8 to
 * out (room for 4 bytes); returns how many bytes. */
size_t utf8_put(unsigned cp, char *out);

#endif
