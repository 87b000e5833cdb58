/*
 * Tests for gateway/utf8.c: RFC 3629's rules, at every boundary, for the
 * one validator every module uses.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "lib/hex.h"
#include "lib/utf8.h"

struct seq_case {
	const char *bytes;
	size_t len;
	size_t want; /* utf8_seq's answer for the first sequence */
};

#define C(s, w)                                                                                    \
	{                                                                                          \
		s, sizeof(s) - 1, w                                                                \
	}

static const struct seq_case seq_cases[] = {
        C("a", 1),
        C("\x7f", 1),
        C("\xc2\x80", 2),         /* U+0080, the first two-byte */
        C("\xdf\xbf", 2),         /* U+07FF */
        C("\xc0\x80", 0),         /* overlong NUL */
        C("\xc1\xbf", 0),         /* overlong */
        C("\xe0\xa0\x80", 3),     /* U+0800 */
        C("\xe0\x9f\xbf", 0),     /* overlong U+07FF */
        C("\xed\x9f\xbf", 3),     /* U+D7FF */
        C("\xed\xa0\x80", 0),     /* U+D800, a surrogate */
        C("\xed\xbf\xbf", 0),     /* U+DFFF */
        C("\xee\x80\x80", 3),     /* U+E000 */
        C("\xef\xbf\xbf", 3),     /* U+FFFF */
        C("\xf0\x90\x80\x80", 4), /* U+10000 */
        C("\xf0\x8f\xbf\xbf", 0), /* overlong U+FFFF */
        C("\xf4\x8f\xbf\xbf", 4), /* U+10FFFF, the last */
        C("\xf4\x90\x80\x80", 0), /* past U+10FFFF */
        C("\xf5\x80\x80\x80", 0),
        C("\xff", 0),
        C("\x80", 0),         /* a continuation alone */
        C("\xc3", 0),         /* cut short at the end */
        C("\xe2\x82", 0),     /* cut short */
        C("\xc3\x28", 0),     /* not followed by a continuation */
        C("\xe2\x28\xa1", 0), /* a bad second byte */
};

Test(utf8, sequences_at_every_boundary)
{
	size_t i;

	for (i = 0; i < sizeof(seq_cases) / sizeof(seq_cases[0]); i++) {
		const struct seq_case *c = &seq_cases[i];

		cr_expect_eq(utf8_seq((const unsigned char *)c->bytes, c->len), c->want,
		             "case %zu: utf8_seq = %zu, want %zu", i,
		             utf8_seq((const unsigned char *)c->bytes, c->len), c->want);
		cr_expect_eq(utf8_valid(c->bytes, c->len), c->want == c->len, "case %zu", i);
	}
}

/* Only len bytes count: a sequence that would be whole with the next byte
 * is cut, and a bad byte past len does not matter. */
Test(utf8, only_len_bytes_count)
{
	static const char s[] = "ok \xc3\xa9\xff";

	cr_expect(utf8_valid(s, 5));
	cr_expect_not(utf8_valid(s, 4));
	cr_expect_not(utf8_valid(s, 6));
	cr_expect(utf8_valid("", 0));
}

/* utf8_put writes each code point at every length boundary as the one
 * sequence utf8_seq takes whole; hex_u16 reads \uXXXX's four digits. */
Test(utf8, put_writes_what_seq_reads)
{
	static const unsigned cps[] = {0x1,    0x7f,   0x80,   0x7ff,   0x800,
	                               0xd7ff, 0xe000, 0xffff, 0x10000, 0x10ffff};
	static const size_t lens[] = {1, 1, 2, 2, 3, 3, 3, 3, 4, 4};
	char out[4];
	unsigned v;
	size_t i, n;

	for (i = 0; i < sizeof(cps) / sizeof(cps[0]); i++) {
		n = utf8_put(cps[i], out);
		cr_expect_eq(n, lens[i], "U+%04X took %zu bytes", cps[i], n);
		cr_expect_eq(utf8_seq((const unsigned char *)out, n), n, "U+%04X", cps[i]);
	}
	cr_assert_eq(hex_u16("00e9", &v), 0);
	cr_expect_eq(v, 0xe9);
	cr_assert_eq(hex_u16("D83D", &v), 0);
	cr_expect_eq(v, 0xd83d);
	cr_expect_eq(hex_u16("12G4", &v), -1);
	cr_expect_eq(hex_u16("-123", &v), -1);
}
