#include "lib/secmem.h"

#include <jansson.h>
#include <pthread.h>
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

/*
 * Small blocks, wiped, are kept for reuse by the thread that freed them:
 * a request makes and frees some 170 (jansson's values, libcurl's
 * strings), more of one size than glibc's per-thread cache holds (7), so
 * past it each went through malloc's slower bins. Blocks of up to
 * CACHE_MAX bytes are rounded up to a multiple of CACHE_STEP, and each
 * size keeps at most CACHE_DEPTH; a thread's cache goes back to malloc
 * when it ends. Sanitizer builds keep none, so a use after free or a
 * double free is still caught.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CACHE_MAX 0
#else
#define CACHE_MAX 256
#endif
#define CACHE_STEP    16
#define CACHE_CLASSES (CACHE_MAX / CACHE_STEP)
#define CACHE_DEPTH   64

struct cache {
	void *top[CACHE_CLASSES + 1]; /* a list through each block's first bytes */
	unsigned n[CACHE_CLASSES + 1];
	int registered;
};

static _Thread_local struct cache cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

/* The class of a block of n bytes (0 for none: not cached). */
static size_t
cache_class(size_t n)
{
#if CACHE_MAX > 0
	return n <= CACHE_MAX ? (n + CACHE_STEP - 1) / CACHE_STEP + (n == 0) : 0;
#else
	(void)n;
	return 0;
#endif
}

static void
cache_drain(void *arg)
{
	struct cache *c = arg;
	size_t k;

	for (k = 1; k <= CACHE_CLASSES; k++)
		while (c->top[k]) {
			void *next = *(void **)c->top[k];

			free((unsigned char *)c->top[k] - HEADER);
			c->top[k] = next;
		}
	memset(c->n, 0, sizeof(c->n));
	/* What the thread frees from here on, as it ends, goes to malloc. */
	c->registered = -1;
}

static void
cache_key_make(void)
{
	(void)pthread_key_create(&cache_key, cache_drain);
}

/* A thread's first cached block arranges for its cache to be drained
 * when the thread ends; 0, or -1 when it cannot be (nothing is kept). */
static int
cache_register(void)
{
	if (cache.registered)
		return cache.registered > 0 ? 0 : -1;
	(void)pthread_once(&cache_once, cache_key_make);
	cache.registered = pthread_setspecific(cache_key, &cache) == 0 ? 1 : -1;
	return cache.registered > 0 ? 0 : -1;
}

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
	size_t k;

	if (fail_countdown > 0 && --fail_countdown == 0) {
		if (fail_sticky)
			fail_countdown = 1;
		failures++;
		return NULL;
	}
	k = cache_class(n);
	if (k && cache.top[k]) {
		p = (unsigned char *)cache.top[k] - HEADER;
		cache.top[k] = *(void **)cache.top[k];
		cache.n[k]--;
		*(size_t *)(void *)p = n;
		return p + HEADER;
	}
	if (k)
		p = malloc(k * CACHE_STEP + HEADER);
	else
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
	size_t n, k;

	if (ptr == NULL)
		return;
	p = (unsigned char *)ptr - HEADER;
	n = *(size_t *)(void *)p;
	explicit_bzero(ptr, n);
	k = cache_class(n);
	if (k && cache.n[k] < CACHE_DEPTH && cache_register() == 0) {
		*(void **)ptr = cache.top[k];
		cache.top[k] = ptr;
		cache.n[k]++;
		return;
	}
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
