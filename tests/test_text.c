/*
 * Tests for gateway/lib/text.c: copies and joins are cut to the buffer,
 * always terminated, and return what snprintf would have ("%s", "%s%s",
 * "%.*s"), which every case here is checked against; numbers are printed
 * as "%llu" prints them.
 */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "lib/text.h"

Test(text, copies_and_joins_as_snprintf_would)
{
	static const char *const strs[] = {"", "a", "abc", "0123456789abcdef", "key:sha256:"};
	static const size_t sizes[] = {1, 2, 3, 4, 11, 12, 16, 17, 64};
	char got[80], want[80];
	size_t i, j, k, len;

	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
		for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
			size_t n = sizes[k];

			memset(got, '#', sizeof(got));
			len = text_copy(got, n, strs[i]);
			cr_expect_eq(len, (size_t)snprintf(want, n, "%s", strs[i]));
			cr_expect_str_eq(got, want, "copy \"%s\" into %zu", strs[i], n);
			cr_expect_eq(got[n], '#', "copy wrote past %zu bytes", n);
			for (j = 0; j < sizeof(strs) / sizeof(strs[0]); j++) {
				memset(got, '#', sizeof(got));
				len = text_join(got, n, strs[i], strs[j]);
				cr_expect_eq(len,
				             (size_t)snprintf(want, n, "%s%s", strs[i], strs[j]));
				cr_expect_str_eq(got, want, "join \"%s\" \"%s\" into %zu", strs[i],
				                 strs[j], n);
				cr_expect_eq(got[n], '#', "join wrote past %zu bytes", n);
			}
			memset(got, '#', sizeof(got));
			len = text_copyn(got, n, strs[i], strlen(strs[i]) / 2);
			cr_expect_eq(len, (size_t)snprintf(want, n, "%.*s",
			                                   (int)(strlen(strs[i]) / 2), strs[i]));
			cr_expect_str_eq(got, want, "copyn half of \"%s\" into %zu", strs[i], n);
		}
}

Test(text, numbers_as_printf_prints_them)
{
	static const unsigned long long v[] = {0,         1, 9, 10, 99, 100, 12345, 4294967296ull,
	                                       ULLONG_MAX};
	char got[21], want[32];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		cr_expect_eq(text_u64(got, v[i]),
		             (size_t)snprintf(want, sizeof(want), "%llu", v[i]));
		cr_expect_str_eq(got, want);
	}
}
