/*
 * secmem: keeping secret values out of core dumps and freed memory.
 *
 * Domain secrets and API keys pass through jansson's parser and the buffers
 * around it. Rather than trace every copy, every allocation jansson makes is
 * wiped when it is freed, and the process refuses to dump core.
 */
#ifndef GW_SECMEM_H
#define GW_SECMEM_H

#include <stddef.h>

/*
 * Installs the wiping allocator for jansson. Call once, before any JSON is
 * parsed. jansson 2.14 can corrupt its parser state when one allocation
 * fails and later ones succeed (akheron/jansson#362), so a real allocation
 * failure inside jansson stops the process instead of returning NULL;
 * failures injected with sticky set are returned, for tests.
 */
void secmem_init(void);

/* Allocations that have failed (really, or injected) since start. */
unsigned long secmem_failures(void);

/* No core dumps and no ptrace by other processes of the same user. */
void secmem_harden_process(void);

/* Overwrites n bytes at p in a way the compiler may not elide. */
void secmem_wipe(void *p, size_t n);

/*
 * Test hook: makes the nth allocation from now fail (1 = the next one),
 * and every later one while sticky is set; 0 turns it off. Lets unit tests
 * prove each caller survives an allocation failure.
 */
void secmem_fail_after(unsigned long nth, int sticky);

/* malloc and free with the same wiping and failure hook, for buffers that
 * hold secrets outside jansson. */
void *secmem_alloc(size_t n);
void secmem_free(void *p);

/* The rest of the malloc family, for libraries that take all of it
 * (libcurl); realloc wipes the block it leaves behind. */
void *secmem_calloc(size_t nmemb, size_t size);
void *secmem_realloc(void *p, size_t n);
char *secmem_strdup(const char *s);

/* Frees memory jansson handed out (json_dumps and friends), whichever
 * allocator jansson was given. */
void secmem_json_free(void *p);

#endif
