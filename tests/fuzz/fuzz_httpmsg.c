/*
 * libFuzzer harness for gateway/httpmsg.c.
 *
 * Beyond memory errors it aborts on broken promises: a head accepted at n
 * bytes must need more at every shorter prefix; a prefix that is rejected
 * must be rejected with the same status when whole; the chunked decoder must
 * give the same answer and bytes whether fed whole or in pieces. The body
 * after an accepted chunked head is decoded; for every other input the whole
 * input is decoded too, so the decoder gets fuzzed on its own.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Igateway \
 *       tests/fuzz/fuzz_httpmsg.c gateway/httpmsg.c gateway/err.c \
 *       -o build/tests/fuzz_httpmsg
 *   ./build/tests/fuzz_httpmsg -max_total_time=60 build/fuzzcorpus_httpmsg \
 *       tests/fuzz/corpus/httpmsg
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/httpmsg.h"

#define FUZZ_MAX_HEAD 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	char *data;
	size_t len;
	size_t cap;
};

static void
sink_emit(void *arg, const char *d, size_t n)
{
	struct sink *s = arg;

	if (n == 0 || s->len + n > s->cap)
		abort(); /* cap is the input size; decoding never grows data */
	memcpy(s->data + s->len, d, n);
	s->len += n;
}

static ssize_t
parse_copy(const uint8_t *data, size_t n, struct httpmsg_head *h,
           struct httpmsg_header slots[HTTPMSG_MAX_HEADERS], struct err *e)
{
	char *copy = malloc(n ? n : 1);
	ssize_t rc;

	if (!copy)
		abort();
	if (n)
		memcpy(copy, data, n);
	rc = httpmsg_parse(copy, n, FUZZ_MAX_HEAD, h, slots, e);
	free(copy);
	return rc;
}

/* Decodes in[0..len) in pieces of step bytes (len for all at once). */
static int
decode(const char *in, size_t len, size_t step, struct sink *out, size_t *consumed)
{
	struct httpmsg_chunked *c = httpmsg_chunked_new();
	size_t off = 0, used;
	struct err e;
	int rc = 0;

	if (!c)
		abort();
	while (off < len && rc == 0) {
		size_t n = len - off < step ? len - off : step;

		rc = httpmsg_chunked_feed(c, in + off, n, &used, sink_emit, out, &e);
		if (used > n || (rc == 0 && used != n) || (rc < 0 && e.status != 400))
			abort();
		off += used;
	}
	httpmsg_chunked_free(c);
	*consumed = off;
	return rc;
}

static void
check_chunked(const char *in, size_t len)
{
	static const size_t steps[] = {1, 7};
	struct sink whole = {0}, part = {0};
	size_t used_whole, used_part, i;
	int rc;

	whole.cap = part.cap = len;
	whole.data = malloc(len ? len : 1);
	part.data = malloc(len ? len : 1);
	if (!whole.data || !part.data)
		abort();
	rc = decode(in, len, len ? len : 1, &whole, &used_whole);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		part.len = 0;
		if (decode(in, len, steps[i], &part, &used_part) != rc || part.len != whole.len ||
		    memcmp(part.data, whole.data, whole.len) != 0 ||
		    (rc >= 0 && used_part != used_whole))
			abort();
	}
	free(whole.data);
	free(part.data);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct httpmsg_head h, hp;
	static struct httpmsg_header slots[HTTPMSG_MAX_HEADERS], pslots[HTTPMSG_MAX_HEADERS];
	struct err e, ep;
	ssize_t n, pn;
	size_t cut;

	n = parse_copy(data, size, &h, slots, &e);
	if (n > 0) {
		/* The head alone gives the same answer, and no prefix of it is
		 * complete. */
		if ((size_t)n > size || parse_copy(data, (size_t)n, &hp, pslots, &ep) != n ||
		    parse_copy(data, (size_t)n - 1, &hp, pslots, &ep) != 0 ||
		    parse_copy(data, (size_t)n / 2, &hp, pslots, &ep) != 0)
			abort();
		if (h.chunked && h.content_length != -1)
			abort();
	} else if (n < 0 && (e.status < 400 || e.status > 505 || !e.code || !e.message[0])) {
		abort();
	}
	/* A rejected prefix means the whole input is rejected the same way. */
	for (cut = size / 2; cut < size; cut = cut + 1 + (size - cut) / 2) {
		pn = parse_copy(data, cut, &hp, pslots, &ep);
		if (pn < 0 && (n != -1 || ep.status != e.status))
			abort();
	}
	if (n > 0 && h.chunked)
		check_chunked((const char *)data + n, size - (size_t)n);
	else
		check_chunked((const char *)data, size);
	return 0;
}
