/*
 * Tests for gateway/jsonbuf.c: the JSON text the audit lines and forwarded
 * bodies are written with. jansson is the reference: what jsonbuf writes
 * must parse back to the same value, and for the values the gateway writes
 * be the very bytes json_dumps(JSON_COMPACT) gives.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonbuf.h"
#include "lib/secmem.h"

static void
suite_init(void)
{
	secmem_init();
}

TestSuite(jsonbuf, .init = suite_init);

static json_t *
parse(const char *text, size_t len)
{
	json_error_t je;
	json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);

	cr_assert_not_null(v, "not JSON: %s: %.*s", je.text, (int)len, text);
	return v;
}

/* Dumps text with both writers; they must agree byte for byte. */
static void
same_as_jansson(const char *text)
{
	json_t *v = parse(text, strlen(text));
	char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t len = 0;
	char *got = jsonbuf_dump(v, 16, 1 << 20, &len);

	cr_assert_not_null(got, "%s: jsonbuf_dump failed", text);
	cr_expect_eq(len, strlen(got), "%s: length %zu, text %zu", text, len, strlen(got));
	cr_expect_str_eq(got, want, "%s", text);
	secmem_free(got);
	secmem_json_free(want);
	json_decref(v);
}

Test(jsonbuf, dumps_what_jansson_dumps)
{
	static const char *const docs[] = {
	        "{}",
	        "[]",
	        "null",
	        "[true,false,null]",
	        "{\"name\":\"My Container\",\"memory_limit\":\"4g\"}",
	        "{\"skills\":[{\"type\":\"skill_reference\",\"skill_id\":\"s1\"},"
	        "{\"type\":\"inline\",\"source\":{\"data\":\"QUJD\"}}]}",
	        "{\"expires_after\":{\"anchor\":\"last_active_at\",\"minutes\":20}}",
	        "[0,-1,9223372036854775807,-9223372036854775808]",
	        "[1.5,-0.25,1e300,2.0,0.1]",
	        "{\"quote\":\"a\\\"b\\\\c/d\",\"lines\":\"a\\nb\\rc\\td\"}",
	        "{\"unicode\":\"caf\\u00e9 \\u65e5\\u672c \\ud83d\\ude00\"}",
	        "{\"a\":{\"b\":{\"c\":[[[]],{}]}}}",
	        "{\"z\":1,\"a\":2,\"m\":3}",
	};
	size_t i;

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		same_as_jansson(docs[i]);
}

Test(jsonbuf, control_characters_are_escaped)
{
	json_t *v = json_stringn("a\0b\x01\x1f\x7f", 6);
	size_t len;
	char *got = jsonbuf_dump(v, 0, 1024, &len);
	json_t *back;

	cr_assert_not_null(got);
	cr_expect_str_eq(got, "\"a\\u0000b\\u0001\\u001f\x7f\"");
	back = parse(got, len);
	cr_expect(json_equal(back, v), "does not read back as the same string");
	json_decref(back);
	json_decref(v);
	secmem_free(got);
}

/* Text the gateway did not check (a path, a header) still makes a valid
 * line: each byte that is not UTF-8 becomes U+FFFD. */
Test(jsonbuf, bad_utf8_is_replaced)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	        {"ok", "\"ok\""},
	        {"a\xff"
	         "b",
	         "\"a\xef\xbf\xbd"
	         "b\""},
	        {"\xc3\xa9", "\"\xc3\xa9\""},                                 /* é, valid */
	        {"\xc3", "\"\xef\xbf\xbd\""},                                 /* cut short */
	        {"\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\""},                 /* overlong / */
	        {"\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, /* surrogate */
	        {"\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
	};
	size_t i, len;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct jsonbuf *b = jsonbuf_new(0, 1024);
		char *got;
		json_t *back;

		jsonbuf_str(b, cases[i].in);
		got = jsonbuf_take(b, &len);
		cr_assert_not_null(got);
		cr_expect_str_eq(got, cases[i].want, "case %zu", i);
		back = parse(got, len);
		cr_expect(json_is_string(back), "case %zu does not read back as a string", i);
		json_decref(back);
		secmem_free(got);
	}
}

Test(jsonbuf, members_and_commas)
{
	struct jsonbuf *b = jsonbuf_new(8, 4096);
	json_t *list = parse("[\"x\",1]", 7);
	char *got;
	size_t len;

	jsonbuf_open(b, '{');
	jsonbuf_key(b, "s");
	jsonbuf_str(b, "v");
	jsonbuf_key(b, "n");
	jsonbuf_null(b);
	jsonbuf_key(b, "i");
	jsonbuf_int(b, -42);
	jsonbuf_key(b, "r");
	jsonbuf_real(b, 1.23, 12);
	jsonbuf_key(b, "whole");
	jsonbuf_real(b, 3.0, 12);
	jsonbuf_key(b, "t");
	jsonbuf_bool(b, 1);
	jsonbuf_key(b, "list");
	jsonbuf_json(b, list);
	jsonbuf_key(b, "none");
	jsonbuf_json(b, NULL);
	jsonbuf_key(b, "arr");
	jsonbuf_open(b, '[');
	jsonbuf_int(b, 1);
	jsonbuf_str(b, NULL);
	jsonbuf_open(b, '{');
	jsonbuf_close(b);
	jsonbuf_close(b);
	jsonbuf_close(b);
	got = jsonbuf_take(b, &len);
	cr_assert_not_null(got);
	cr_expect_str_eq(got,
	                 "{\"s\":\"v\",\"n\":null,\"i\":-42,\"r\":1.23,\"whole\":3.0,\"t\":true,"
	                 "\"list\":[\"x\",1],\"none\":null,\"arr\":[1,null,{}]}");
	json_decref(parse(got, len));
	secmem_free(got);
	json_decref(list);
}

/* The maximum holds however the text grows, and the error sticks. */
Test(jsonbuf, max_is_a_hard_limit)
{
	struct jsonbuf *b = jsonbuf_new(4, 32);
	size_t len;

	jsonbuf_open(b, '[');
	jsonbuf_str(b, "0123456789");
	jsonbuf_str(b, "0123456789");
	cr_expect_not_null(jsonbuf_text(b, &len), "24 bytes fit in 32");
	jsonbuf_str(b, "0123456789");
	cr_expect_null(jsonbuf_text(b, &len), "36 bytes do not fit in 32");
	jsonbuf_close(b);
	jsonbuf_raw(b, "x", 1);
	cr_expect_null(jsonbuf_take(b, &len));

	/* Exactly the maximum is allowed. */
	b = jsonbuf_new(0, 4);
	jsonbuf_raw(b, "abcd", 4);
	cr_expect_not_null(jsonbuf_text(b, &len));
	jsonbuf_raw(b, "e", 1);
	cr_expect_null(jsonbuf_text(b, &len));
	jsonbuf_free(b);
}

Test(jsonbuf, deep_values_fail_cleanly)
{
	json_t *v = json_array(), *inner = v;
	size_t i, len;
	char *got;

	/* As deep as the parser reads is written; deeper fails. */
	for (i = 0; i < 2100; i++) {
		json_t *next = json_array();

		json_array_append_new(inner, next);
		inner = next;
		if (i == 2046) {
			got = jsonbuf_dump(v, 0, 1 << 20, &len);
			cr_expect_not_null(got, "2048 levels, as jansson parses, are written");
			secmem_free(got);
		}
	}
	got = jsonbuf_dump(v, 0, 1 << 20, &len);
	cr_expect_null(got, "2101 levels are more than jsonbuf writes");
	json_decref(v);
}

Test(jsonbuf, out_of_memory_is_reported)
{
	json_t *v = parse("{\"a\":\"0123456789012345678901234567890123456789\"}", 48);
	size_t len;
	char *got;
	unsigned long nth;

	/* Fail each allocation in turn: the dump is NULL or whole, never cut. */
	for (nth = 1; nth <= 3; nth++) {
		secmem_fail_after(nth, 1);
		got = jsonbuf_dump(v, 0, 4096, &len);
		secmem_fail_after(0, 0);
		if (got) {
			cr_expect_str_eq(got,
			                 "{\"a\":\"0123456789012345678901234567890123456789\"}");
			secmem_free(got);
		}
	}
	secmem_fail_after(1, 1);
	got = jsonbuf_dump(v, 0, 4096, &len);
	secmem_fail_after(0, 0);
	cr_expect_null(got, "no memory at all gives no text");
	json_decref(v);
}

/* One number through a writer, as its text. */
static char *
number_text(double v, int places, int decimal)
{
	struct jsonbuf *b = jsonbuf_new(0, 256);
	static const double scale[] = {1, 10, 100, 1000, 1e4, 1e5, 1e6};
	size_t len;

	if (decimal)
		jsonbuf_decimal(b, v, places);
	else
		/* As the audit wrote numbers before: rounded, then %.12g. */
		jsonbuf_real(b,
		             (double)(long long)(v * scale[places] + (v < 0 ? -0.5 : 0.5)) /
		                     scale[places],
		             12);
	return jsonbuf_take(b, &len);
}

/* jsonbuf_decimal writes what rounding and jsonbuf_real wrote, without
 * printf, wherever the number has at most 12 digits. */
Test(jsonbuf, decimal_matches_the_rounded_real)
{
	static const double fixed[] = {0,          0.0004,    0.0005, 0.001,   0.12,
	                               1,          80,        63.498, 100.5,   999.9995,
	                               123456.789, 0.1 + 0.2, -0.12,  -63.498, 999999.999};
	unsigned long long x = 88172645463325252ull;
	char *big;
	size_t i;
	int places;

	for (places = 1; places <= 6; places++) {
		for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
			char *a = number_text(fixed[i], places, 1),
			     *b = number_text(fixed[i], places, 0);

			cr_expect_str_eq(a, b, "%.17g to %d places", fixed[i], places);
			secmem_free(a);
			secmem_free(b);
		}
		for (i = 0; i < 20000; i++) {
			double v;
			char *a, *b;

			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			/* Up to 6 digits before the point, so 12 digits in all. */
			v = (double)(x % 1000000000000ull) / 1e6;
			a = number_text(v, places, 1);
			b = number_text(v, places, 0);
			cr_assert_str_eq(a, b, "%.17g to %d places", v, places);
			secmem_free(a);
			secmem_free(b);
		}
	}
	/* Past 12 digits, or not finite, it is jsonbuf_real's. */
	big = number_text(1e15, 3, 1);
	cr_expect_str_eq(big, "1e15");
	secmem_free(big);
}
