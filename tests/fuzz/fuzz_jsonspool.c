/*
 * libFuzzer target: a body read through jsonspool (its named strings
 * spooled) against the same body parsed whole.
 *
 * The first byte of the input picks how short a spooled string may be
 * (0 to 15 bytes) and how the body is cut into pieces; the rest is the
 * body. Beyond memory errors it aborts when
 *  - jsondoc_parse_spooled accepts what jsondoc_parse refuses, or the
 *    other way round;
 *  - both refuse with another status, code, param or message;
 *  - both accept and a value differs: a stand-in's length, code points or
 *    last two bytes are not its string's, or the dump with the spool's
 *    bytes in its holes does not parse to the same document.
 *
 *   make fuzz FUZZ_TARGETS=jsonspool
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonbuf.h"
#include "lib/jsondoc.h"
#include "lib/jsonspool.h"
#include "lib/secmem.h"
#include "lib/spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {"data", "value", "name", NULL};

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_jsonspool: %s%s%s\n", what, detail ? ": " : "",
	        detail ? detail : "");
	abort();
}

static size_t
code_points(const char *s, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

static void
same_value(const json_t *got, const json_t *want)
{
	struct jsondoc_spooled s;
	const char *key;
	json_t *v;
	size_t i, n;

	if (jsondoc_spooled_of(got, &s)) {
		const char *w = json_string_value(want);

		n = json_string_length(want);
		if (w == NULL || s.len != n || s.chars != code_points(w, n) ||
		    (n >= 2 && s.tail[0] != (unsigned char)w[n - 2]) ||
		    (n >= 1 && s.tail[1] != (unsigned char)w[n - 1]))
			die("a stand-in does not say what its string is", NULL);
		return;
	}
	if (json_typeof(got) != json_typeof(want))
		die("a value of another type", NULL);
	if (json_is_object(want)) {
		if (json_object_size(got) != json_object_size(want))
			die("an object of another size", NULL);
		json_object_foreach((json_t *)(uintptr_t)want, key, v)
		{
			if (json_object_get(got, key) == NULL)
				die("a member is missing", NULL);
			same_value(json_object_get(got, key), v);
		}
	} else if (json_is_array(want)) {
		if (json_array_size(got) != json_array_size(want))
			die("an array of another size", NULL);
		json_array_foreach(want, i, v) same_value(json_array_get(got, i), v);
	} else if (!json_equal(got, want)) {
		die("a value differs", NULL);
	}
}

/* The dump of got with the spool's bytes in its holes parses to want. */
static void
same_text(const json_t *got, const json_t *want, const struct spool *sp)
{
	struct jsonbuf_hole *holes;
	size_t nholes, tlen, k, at = 0, o = 0, total;
	char *text = jsonbuf_dump_spooled(got, 64, 1 << 24, &tlen, &holes, &nholes);
	char *out;
	struct err e;
	json_t *again;

	if (text == NULL)
		die("a document with stand-ins could not be written", NULL);
	total = tlen;
	for (k = 0; k < nholes; k++)
		total += holes[k].len;
	if ((out = malloc(total + 1)) == NULL)
		die("out of memory", NULL);
	for (k = 0; k < nholes; k++) {
		memcpy(out + o, text + at, holes[k].at - at);
		o += holes[k].at - at;
		at = holes[k].at;
		if (spool_read(sp, holes[k].off, out + o, holes[k].len) != (long)holes[k].len)
			die("a hole's bytes could not be read back", NULL);
		o += holes[k].len;
	}
	memcpy(out + o, text + at, tlen - at);
	again = jsondoc_parse(out, total, &e);
	if (again == NULL || !json_equal(again, want))
		die("the dump with its holes filled is another document", NULL);
	json_decref(again);
	free(out);
	free(holes);
	secmem_free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct err e1, e2;
	struct spool *sp;
	struct jsonspool *j;
	const struct jsondoc_ref *refs;
	const char *body, *text;
	size_t len, i = 0, tlen, nrefs, step;
	json_t *want, *got;

	if (!ready) {
		secmem_init();
		ready = 1;
	}
	if (size < 1)
		return 0;
	body = (const char *)data + 1;
	len = size - 1;
	step = 1 + (data[0] >> 4) * 3;
	/* The memory part is bigger than any input here, so the spool's file
	 * (and the disk) stays out of the fuzzer's loop; test_jsonspool
	 * crosses into the file. */
	sp = spool_new("/tmp", 1 << 20, UINT64_MAX);
	j = jsonspool_new(sp, names, data[0] & 15, SIZE_MAX);
	if (sp == NULL || j == NULL)
		die("out of memory", NULL);
	err_clear(&e1);
	err_clear(&e2);
	want = jsondoc_parse(body, len, &e1);
	while (i < len) {
		size_t k = step < len - i ? step : len - i;

		if (jsonspool_feed(j, body + i, k, &e2) < 0)
			die("feeding failed", e2.message);
		i += k;
	}
	jsonspool_finish(j);
	text = jsonspool_text(j, &tlen);
	refs = jsonspool_refs(j, &nrefs);
	got = jsondoc_parse_spooled(text, tlen, refs, nrefs, &e2);
	if (want && !got)
		die("the spooled parse refused what the whole parse accepts", e2.message);
	if (!want && got)
		die("the spooled parse accepted what the whole parse refuses", e1.message);
	if (!want && (e1.status != e2.status || strcmp(e1.code, e2.code) != 0 ||
	              strcmp(e1.param, e2.param) != 0 || strcmp(e1.message, e2.message) != 0))
		die("the two refuse differently", e1.message);
	if (want) {
		same_value(got, want);
		same_text(got, want, sp);
	}
	json_decref(want);
	json_decref(got);
	jsonspool_free(j);
	spool_free(sp);
	return 0;
}
