#include "lib/secmem.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

/* Each block carries its size in front so free knows how much to wipe;
 * 16 bytes keeps the user pointer aligned for any type. */
#define HEADER 16

/* fail_countdown is set by unit tests only, before any thread starts. */
static unsigned long fail_countdown;
static atomic_ulong failures;
static int fail_sticky;

unsigned long
secmem_failures(void)
{
	return failures;
}

void *
secmem_alloc(size_t n)
{
	unsigned char *p;

	if (fail_countdown > 0 && --fail_countdown == 0) {
		if (fail_sticky)
			fail_countdown = 1;
		failures++;
		return NULL;
	}
	p = n <= SIZE_MAX - HEADER ? malloc(n + HEADER) : NULL;
	if (p == NULL) {
		failures++;
		return NULL;
	}
	*(size_t *)(void *)p = n;
	return p + HEADER;
}

void
secmem_free(void *ptr)
{
	unsigned char *p;

	if (ptr == NULL)
		return;
	p = (unsigned char *)ptr - HEADER;
	explicit_bzero(ptr, *(size_t *)(void *)p);
	free(p);
}

void *
secmem_calloc(size_t nmemb, size_t size)
{
	void *p;

	if (size && nmemb > SIZE_MAX / size)
		return NULL;
	p = secmem_alloc(nmemb * size);
	if (p)
		memset(p, 0, nmemb * size);
	return p;
}

void *
secmem_realloc(void *old, size_t n)
{
	size_t have;
	void *p;

	if (old == NULL)
		return secmem_alloc(n);
	have = *(size_t *)(void *)((unsigned char *)old - HEADER);
	p = secmem_alloc(n);
	if (p == NULL)
		return NULL;
	memcpy(p, old, have < n ? have : n);
	secmem_free(old);
	return p;
}

char *
secmem_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = secmem_alloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

void
secmem_wipe(void *p, size_t n)
{
	/* explicit_bzero: memset's speed, and the compiler may not drop it. */
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

void
secmem_fail_after(unsigned long nth, int sticky)
{
	fail_countdown = nth;
	fail_sticky = sticky;
}

static void *
json_alloc(size_t n)
{
	static const char msg[] = "gateway: out of memory inside jansson; stopping\n";
	void *p = secmem_alloc(n);

	if (p == NULL && !fail_sticky) {
		(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
		abort();
	}
	return p;
}

void
secmem_init(void)
{
	json_set_alloc_funcs(json_alloc, secmem_free);
}

void
secmem_harden_process(void)
{
	struct rlimit none = {0, 0};

	(void)setrlimit(RLIMIT_CORE, &none);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

void
secmem_json_free(void *p)
{
	json_free_t f;

	json_get_alloc_funcs(NULL, &f);
	f(p);
}
