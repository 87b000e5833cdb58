#include "lib/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
base64_encode(const unsigned char *in, size_t n, char *out)
{
	size_t i, o = 0;
	unsigned long v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
		out[o++] = alphabet[v & 63];
	}
	if (i < n) {
		v = (unsigned long)in[i] << 16 | (i + 1 < n ? (unsigned long)in[i + 1] << 8 : 0);
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

/* The value of one character, or -1. */
static int
sextet(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long
base64_decode(const char *text, size_t len, unsigned char *out, size_t cap)
{
	size_t i, o = 0, pad = 0;
	unsigned long v;
	int k, s;

	if (len % 4 != 0)
		return -1;
	if (len > 0 && text[len - 1] == '=')
		pad = len > 1 && text[len - 2] == '=' ? 2 : 1;
	if (len / 4 * 3 - pad > cap)
		return -1;
	for (i = 0; i < len; i += 4) {
		v = 0;
		for (k = 0; k < 4; k++) {
			/* Padding only at the very end. */
			if (i + 4 == len && k >= 4 - (int)pad) {
				v <<= 6;
				continue;
			}
			if ((s = sextet(text[i + (size_t)k])) < 0)
				return -1;
			v = v << 6 | (unsigned long)s;
		}
		out[o++] = (unsigned char)(v >> 16);
		if (i + 4 < len || pad < 2)
			out[o++] = (unsigned char)(v >> 8 & 255);
		if (i + 4 < len || pad < 1)
			out[o++] = (unsigned char)(v & 255);
		/* The bits padding stands for must be zero. */
		if (i + 4 == len &&
		    ((pad == 1 && (v & 255) != 0) || (pad == 2 && (v & 0xffff) != 0)))
			return -1;
	}
	return (long)o;
}

/* The value of one base64url character, or -1. */
static int
sextet_url(char c)
{
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	if (c == '+' || c == '/')
		return -1;
	return sextet(c);
}

long
base64url_decode(const char *text, size_t len, unsigned char *out, size_t cap)
{
	size_t i, o = 0, tail = len % 4;
	unsigned long v = 0;
	int s, bits = 0;

	/* One character alone holds six bits: no byte. */
	if (tail == 1 || len / 4 * 3 + (tail ? tail - 1 : 0) > cap)
		return -1;
	for (i = 0; i < len; i++) {
		if ((s = sextet_url(text[i])) < 0)
			return -1;
		v = (v << 6 | (unsigned long)s) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits & 255);
		}
	}
	/* The bits left over stand for no byte and must be zero. */
	if ((v & ((1UL << bits) - 1)) != 0)
		return -1;
	return (long)o;
}
