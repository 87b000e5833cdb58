/*
 * libFuzzer target: jsondoc_parse against jansson's json_loadb.
 *
 * jsondoc has its own JSON parser, for speed; jansson's is the reference.
 * Beyond memory errors it aborts when
 *  - one accepts a body the other refuses (an array counts as refused, as
 *    jsondoc wants an object; jansson's reading of a NUL byte after a
 *    number, which is not JSON, is set aside);
 *  - both accept it and read different values;
 *  - a refusal is not a 400 invalid_json or duplicate_key, or its message
 *    or param is not valid UTF-8.
 *
 *   make fuzz FUZZ_TARGETS=jsondoc
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsondoc.h"
#include "lib/secmem.h"
#include "lib/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_jsondoc: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	const char *b = (const char *)data;
	json_error_t je;
	struct err e;
	json_t *got, *want;

	if (!ready) {
		secmem_init();
		ready = 1;
	}
	err_clear(&e);
	got = jsondoc_parse(b, size, &e);
	want = json_loadb(b, size, JSON_REJECT_DUPLICATES, &je);
	if (want && (!json_is_object(want) || memchr(b, '\0', size) != NULL)) {
		json_decref(want);
		want = NULL;
	}
	if (got && !want)
		die("jsondoc accepted what jansson refuses", je.text);
	if (!got && want)
		die("jsondoc refused what jansson accepts", e.message);
	if (got && !json_equal(got, want))
		die("jsondoc and jansson read different values", NULL);
	if (!got) {
		if (e.status != 400 ||
		    (strcmp(e.code, "invalid_json") != 0 && strcmp(e.code, "duplicate_key") != 0))
			die("a refusal that is not a 400 invalid_json or duplicate_key", e.code);
		if (!utf8_valid(e.message, strlen(e.message)) ||
		    !utf8_valid(e.param, strlen(e.param)))
			die("an error that is not UTF-8", NULL);
	}
	json_decref(got);
	json_decref(want);
	return 0;
}
