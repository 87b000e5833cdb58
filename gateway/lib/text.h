/*
 * text: bounded copies and joins of strings into fixed buffers, for the
 * places on every request's path where snprintf's "%s" would do, at a
 * fraction of its cost (a create made a dozen such calls).
 */
#ifndef GW_TEXT_H
#define GW_TEXT_H

#include <stddef.h>

/* Copies s[0..len) into dst (n > 0 bytes), cut to n - 1 bytes, with a NUL
 * after; returns len, so a result of n or more says it was cut, as
 * snprintf's does. */
size_t text_copyn(char *dst, size_t n, const char *s, size_t len);

/* The string s, likewise. */
size_t text_copy(char *dst, size_t n, const char *s);

/* The string a followed by the string b, likewise; returns the length of
 * both. */
size_t text_join(char *dst, size_t n, const char *a, const char *b);

/* v in decimal, NUL-terminated, into dst (room for 21 bytes); returns the
 * number of digits. */
size_t text_u64(char *dst, unsigned long long v);

#endif
