#include "lib/text.h"

#include <string.h>

size_t
text_copyn(char *dst, size_t n, const char *s, size_t len)
{
	size_t k = len < n ? len : n - 1;

	memcpy(dst, s, k);
	dst[k] = '\0';
	return len;
}

size_t
text_copy(char *dst, size_t n, const char *s)
{
	return text_copyn(dst, n, s, strlen(s));
}

size_t
text_join(char *dst, size_t n, const char *a, const char *b)
{
	size_t k = text_copy(dst, n, a);

	if (k >= n - 1)
		return k + strlen(b);
	return k + text_copy(dst + k, n - k, b);
}

size_t
text_u64(char *dst, unsigned long long v)
{
	char digits[20];
	size_t k = 0, i;

	do
		digits[k++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	for (i = 0; i < k; i++)
		dst[i] = digits[k - 1 - i];
	dst[k] = '\0';
	return k;
}
