/*
 * Tests for gateway/lib/secmem.c's allocator: what it hands out is the
 * caller's alone while it lives, whatever the blocks kept for reuse, from
 * one thread or several, through realloc and calloc; freed blocks are
 * wiped; and a thread's kept blocks are given back when it ends.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "lib/secmem.h"

#define LIVE 512

static void
suite_init(void)
{
	secmem_init();
}

TestSuite(secmem, .init = suite_init);

/* Fills a block with a pattern of its own, and checks it is still there. */
static void
fill(unsigned char *p, size_t n, unsigned tag)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(tag * 31 + i);
}

static int
intact(const unsigned char *p, size_t n, unsigned tag)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != (unsigned char)(tag * 31 + i))
			return 0;
	return 1;
}

/* Random sizes around the kept ones (0 to 300 bytes), allocated, grown,
 * freed and allocated again in a random order: every live block keeps
 * exactly what was written to it. */
static void *
churn(void *arg)
{
	unsigned long long x = (unsigned long long)(uintptr_t)arg * 2654435761u + 1;
	unsigned char *p[LIVE] = {0};
	size_t n[LIVE] = {0};
	unsigned tag[LIVE] = {0};
	int round, i, bad = 0;

	for (round = 0; round < 200000; round++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		i = (int)(x % LIVE);
		if (p[i] && !intact(p[i], n[i], tag[i]))
			bad++;
		switch ((x >> 20) % 4) {
		case 0:
			secmem_free(p[i]);
			p[i] = NULL;
			break;
		case 1:
			if (p[i]) {
				size_t m = (size_t)(x >> 32) % 301;

				p[i] = secmem_realloc(p[i], m);
				if (m < n[i])
					n[i] = m;
				if (p[i] == NULL || !intact(p[i], n[i], tag[i]))
					bad++;
				n[i] = m;
				fill(p[i], n[i], tag[i] = (unsigned)round);
				break;
			}
			/* fall through */
		default:
			secmem_free(p[i]);
			n[i] = (size_t)(x >> 32) % 301;
			p[i] = (x >> 30) & 1 ? secmem_calloc(1, n[i]) : secmem_alloc(n[i]);
			if (p[i] == NULL)
				bad++;
			fill(p[i], n[i], tag[i] = (unsigned)round);
		}
	}
	for (i = 0; i < LIVE; i++) {
		if (p[i] && !intact(p[i], n[i], tag[i]))
			bad++;
		secmem_free(p[i]);
	}
	return (void *)(uintptr_t)bad;
}

Test(secmem, live_blocks_never_share_memory)
{
	cr_expect_eq((uintptr_t)churn((void *)1), 0);
}

Test(secmem, threads_each_keep_their_own_blocks)
{
	pthread_t t[4];
	void *bad;
	int i;

	for (i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 2)), 0);
	for (i = 0; i < 4; i++) {
		cr_assert_eq(pthread_join(t[i], &bad), 0);
		cr_expect_eq((uintptr_t)bad, 0, "thread %d", i);
	}
}

/* A block handed out again holds none of what its last owner wrote
 * (the first word excepted: a kept block is listed through it, which
 * overwrites it anyway). */
Test(secmem, a_freed_block_is_wiped_before_reuse)
{
	static const char secret[] = "sk-SECRET-0123456789abcdef-0123456789abcdef";
	char *a = secmem_alloc(sizeof(secret)), *b;
	size_t i;

	cr_assert_not_null(a);
	memcpy(a, secret, sizeof(secret));
	secmem_free(a);
	b = secmem_alloc(sizeof(secret));
	cr_assert_not_null(b);
	for (i = sizeof(void *); i < sizeof(secret) - 1; i++)
		cr_expect_neq(b[i], secret[i], "byte %zu of the secret is still there", i);
	secmem_free(b);
}
