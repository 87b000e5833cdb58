/*
 * libFuzzer harness for gateway/multipart.c.
 *
 * An input is a Content-Type value, a newline, then the body. Beyond memory
 * errors it aborts on broken promises: the body must give the same result,
 * error, completed parts and filenames whether it is fed whole, byte by
 * byte, at a cut derived from the input, or in pieces whose sizes come from
 * the input; once a feed returns 1 or -1 every later feed returns the same;
 * errors are 400 with a known code and a message (415 only from
 * multipart_new).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Igateway \
 *       tests/fuzz/fuzz_multipart.c gateway/multipart.c gateway/err.c \
 *       -o build/tests/fuzz_multipart
 *   mkdir -p build/fuzzcorpus_multipart
 *   ./build/tests/fuzz_multipart -max_total_time=60 build/fuzzcorpus_multipart \
 *       tests/fuzz/corpus/multipart
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/multipart.h"

#define NALLOWED  2
#define BYTES_MAX 4096 /* bodies up to this size are also fed byte by byte */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const allowed[NALLOWED + 1] = {"file", "file_id", NULL};

struct outcome {
	int rc;
	struct err e;
	int has[NALLOWED];
	char *fn[NALLOWED]; /* copies, or NULL */
};

enum split { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_CUT, SPLIT_SIZES };

static char *
copy(const void *p, size_t n)
{
	char *c = malloc(n ? n : 1);

	if (c == NULL)
		abort();
	if (n)
		memcpy(c, p, n);
	return c;
}

static int
same_err(const struct err *a, const struct err *b)
{
	return a->status == b->status && a->type == b->type && a->code == b->code &&
	       strcmp(a->param, b->param) == 0 && strcmp(a->message, b->message) == 0;
}

static void
check_err(const struct err *e)
{
	if (e->status != 400 || e->type == NULL || strcmp(e->type, ERR_INVALID) != 0 ||
	    e->code == NULL || e->message[0] == '\0')
		abort();
	if (strcmp(e->code, "invalid_multipart") != 0 &&
	    strcmp(e->code, "unknown_parameter") != 0 &&
	    strcmp(e->code, "duplicate_parameter") != 0)
		abort();
}

/* Feeds body[0..len) in pieces chosen by how: at cut arg for SPLIT_CUT,
 * sized by the bytes of sizes (1 + byte % 64) for SPLIT_SIZES. */
static void
run(const char *ct, size_t ctlen, const char *body, size_t len, enum split how, size_t arg,
    const uint8_t *sizes, size_t nsizes, struct outcome *o)
{
	struct err e;
	struct multipart *m = multipart_new(ct, ctlen, allowed, &e);
	size_t off = 0, k = 0, i;
	int rc = 0, r;

	if (m == NULL)
		abort(); /* the caller checked it is accepted */
	memset(o, 0, sizeof(*o));
	err_clear(&o->e);
	while (off < len) {
		size_t n = len - off;
		char *piece;

		if (how == SPLIT_BYTES)
			n = 1;
		else if (how == SPLIT_CUT && off < arg)
			n = arg - off;
		else if (how == SPLIT_SIZES && nsizes > 0)
			n = 1 + sizes[k++ % nsizes] % 64;
		if (n > len - off)
			n = len - off;
		piece = copy(body + off, n);
		r = multipart_feed(m, piece, n, &e);
		free(piece);
		off += n;
		if (r < -1 || r > 1 || (rc != 0 && r != rc))
			abort();
		if (rc < 0 && !same_err(&e, &o->e))
			abort();
		if (rc == 0 && r < 0) {
			check_err(&e);
			o->e = e;
		}
		rc = r;
	}
	r = multipart_feed(m, "--", 2, &e);
	if (rc != 0 && r != rc)
		abort();
	o->rc = rc;
	for (i = 0; i < NALLOWED; i++) {
		const char *fn = multipart_filename(m, allowed[i]);

		o->has[i] = multipart_has(m, allowed[i]);
		o->fn[i] = fn ? copy(fn, strlen(fn) + 1) : NULL;
		if (o->has[i] != 0 && o->has[i] != 1)
			abort();
	}
	multipart_free(m);
}

static void
outcome_free(struct outcome *o)
{
	size_t i;

	for (i = 0; i < NALLOWED; i++)
		free(o->fn[i]);
}

static void
expect_same(const struct outcome *a, const struct outcome *b)
{
	size_t i;

	if (a->rc != b->rc || !same_err(&a->e, &b->e))
		abort();
	for (i = 0; i < NALLOWED; i++) {
		if (a->has[i] != b->has[i] || (a->fn[i] == NULL) != (b->fn[i] == NULL))
			abort();
		if (a->fn[i] && strcmp(a->fn[i], b->fn[i]) != 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t ctlen = nl ? (size_t)(nl - data) : size;
	const char *body = nl ? (const char *)nl + 1 : "";
	size_t len = nl ? size - ctlen - 1 : 0;
	struct outcome whole, other;
	struct multipart *m;
	struct err e;
	char *ct = copy(data, ctlen);

	m = multipart_new(ct, ctlen, allowed, &e);
	if (m == NULL) {
		if ((e.status != 400 && e.status != 415) || e.message[0] == '\0' || e.code == NULL)
			abort();
		free(ct);
		return 0;
	}
	multipart_free(m);

	run(ct, ctlen, body, len, SPLIT_WHOLE, 0, NULL, 0, &whole);
	if (len <= BYTES_MAX) {
		run(ct, ctlen, body, len, SPLIT_BYTES, 0, NULL, 0, &other);
		expect_same(&whole, &other);
		outcome_free(&other);
	}
	if (len > 1) {
		run(ct, ctlen, body, len, SPLIT_CUT, 1 + (size_t)data[size - 1] * 31 % (len - 1),
		    NULL, 0, &other);
		expect_same(&whole, &other);
		outcome_free(&other);
		run(ct, ctlen, body, len, SPLIT_CUT, len / 2, NULL, 0, &other);
		expect_same(&whole, &other);
		outcome_free(&other);
	}
	run(ct, ctlen, body, len, SPLIT_SIZES, 0, (const uint8_t *)body, len < 32 ? len : 32,
	    &other);
	expect_same(&whole, &other);
	outcome_free(&other);
	outcome_free(&whole);
	free(ct);
	return 0;
}
