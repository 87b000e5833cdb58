#include "http/trace.h"

#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/hex.h"

/* n lower-case hex digits, not all zeros. */
static int
id_ok(const char *s, size_t n)
{
	int nonzero = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
		nonzero |= s[i] != '0';
	}
	return nonzero;
}

static int
hex2(const char *s)
{
	return ((s[0] >= '0' && s[0] <= '9') || (s[0] >= 'a' && s[0] <= 'f')) &&
	       ((s[1] >= '0' && s[1] <= '9') || (s[1] >= 'a' && s[1] <= 'f'));
}

static int
flag_bits(const char *s)
{
	int hi = s[0] <= '9' ? s[0] - '0' : s[0] - 'a' + 10;
	int lo = s[1] <= '9' ? s[1] - '0' : s[1] - 'a' + 10;

	return hi * 16 + lo;
}

int
trace_parse(const char *v, size_t len, struct trace_context *t)
{
	if (v == NULL || len < TRACE_HEADER || !hex2(v) || memcmp(v, "ff", 2) == 0 || v[2] != '-' ||
	    v[35] != '-' || v[52] != '-' || !hex2(v + 53))
		return -1;
	/* Version 00 is exactly this long; a later one may carry more, after
	 * a dash. */
	if (memcmp(v, "00", 2) == 0 ? len != TRACE_HEADER
	                            : len > TRACE_HEADER && v[TRACE_HEADER] != '-')
		return -1;
	if (!id_ok(v + 3, TRACE_ID_HEX) || !id_ok(v + 36, TRACE_SPAN_HEX))
		return -1;
	memcpy(t->trace_id, v + 3, TRACE_ID_HEX);
	t->trace_id[TRACE_ID_HEX] = '\0';
	memcpy(t->parent_id, v + 36, TRACE_SPAN_HEX);
	t->parent_id[TRACE_SPAN_HEX] = '\0';
	t->sampled = flag_bits(v + 53) & 1;
	return 0;
}

/* Trace ids must be unlikely to collide, not secret (they travel in
 * headers and records): xoshiro256** per thread, seeded once from the
 * system's random source, costs a few instructions where OpenSSL's DRBG
 * costs thousands per request. */
static _Thread_local uint64_t rng[4];
static _Thread_local int rng_seeded;

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
next64(void)
{
	uint64_t result, t;

	if (!rng_seeded) {
		if (RAND_bytes((unsigned char *)rng, sizeof(rng)) != 1 ||
		    (rng[0] | rng[1] | rng[2] | rng[3]) == 0)
			rng[0] = (uint64_t)(uintptr_t)&rng ^ 0x9e3779b97f4a7c15ULL;
		rng_seeded = 1;
	}
	result = rotl(rng[1] * 5, 7) * 9;
	t = rng[1] << 17;
	rng[2] ^= rng[0];
	rng[3] ^= rng[1];
	rng[1] ^= rng[2];
	rng[0] ^= rng[3];
	rng[2] ^= t;
	rng[3] = rotl(rng[3], 45);
	return result;
}

void
trace_start(struct trace_context *t, const char *value, size_t len)
{
	unsigned char b[TRACE_ID_HEX / 2 + TRACE_SPAN_HEX / 2];
	uint64_t w[3] = {next64(), next64(), next64()};
	int follow;

	memcpy(b, w, sizeof(b));
	memset(t, 0, sizeof(*t));
	follow = trace_parse(value, len, t) == 0;
	if (!follow)
		memset(t, 0, sizeof(*t));
	/* Never all zeros, which means "no id"; a failed draw still gives a
	 * valid one. */
	b[0] |= 1;
	b[sizeof(b) - 1] |= 1;
	if (!follow) {
		hex_encode(b + TRACE_SPAN_HEX / 2, TRACE_ID_HEX / 2, t->trace_id);
		t->sampled = 1;
	}
	hex_encode(b, TRACE_SPAN_HEX / 2, t->span_id);
}

void
trace_header(const struct trace_context *t, char dst[TRACE_HEADER + 1])
{
	unsigned char flags = (unsigned char)t->sampled;

	/* "00-" trace id "-" span id "-" flags: fixed widths, so no printf. */
	dst[0] = '0';
	dst[1] = '0';
	dst[2] = '-';
	memcpy(dst + 3, t->trace_id, TRACE_ID_HEX);
	dst[3 + TRACE_ID_HEX] = '-';
	memcpy(dst + 4 + TRACE_ID_HEX, t->span_id, TRACE_SPAN_HEX);
	dst[4 + TRACE_ID_HEX + TRACE_SPAN_HEX] = '-';
	hex_encode(&flags, 1, dst + 5 + TRACE_ID_HEX + TRACE_SPAN_HEX);
}
