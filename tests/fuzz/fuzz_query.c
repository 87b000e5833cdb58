/*
 * libFuzzer target: query strings (query.c), checked against the parameter
 * lists of the list routes.
 *
 * The lists are restated from front.c (where they are static). Beyond
 * memory errors it aborts when
 *  - a rebuilt query is not canonical: checking it again must give it back
 *    byte for byte;
 *  - it holds anything but unreserved bytes, '%XX' escapes, '=' and '&',
 *    a name the route does not know or one twice, or an escaped control
 *    byte;
 *  - a limit in it is outside 1..100;
 *  - a failure is not in the error shape.
 *
 *   make fuzz FUZZ_TARGETS=query
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "http/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const orders[] = {"asc", "desc", NULL};

static const struct query_param list_containers[] = {
        {"limit", QUERY_INT, 1, 100},
        {"order", QUERY_ENUM, .enumv = orders},
        {"after", QUERY_ID},
        {"name", QUERY_STRING, .max = 256},
        {NULL},
};

static const struct query_param list_files[] = {
        {"limit", QUERY_INT, 1, 100},
        {"order", QUERY_ENUM, .enumv = orders},
        {"after", QUERY_ID},
        {NULL},
};

static const struct query_param none[] = {{NULL}};

static const struct query_param *const lists[] = {list_containers, list_files, none};

static void
die(const char *what, const char *in, const char *out)
{
	fprintf(stderr, "fuzz_query: %s: in \"%s\" out \"%s\"\n", what, in, out ? out : "");
	abort();
}

static int
hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* The rebuilt query, read without query.c. */
static void
canonical(const struct query_param *allowed, const char *in, const char *out)
{
	char seen[8] = {0};
	const char *p = out, *amp, *eq;
	size_t i, n;

	while (*p) {
		amp = strchr(p, '&');
		n = amp ? (size_t)(amp - p) : strlen(p);
		eq = memchr(p, '=', n);
		if (eq == NULL)
			die("a parameter without '='", in, out);
		for (i = 0; allowed[i].name; i++)
			if (strlen(allowed[i].name) == (size_t)(eq - p) &&
			    memcmp(allowed[i].name, p, (size_t)(eq - p)) == 0)
				break;
		if (allowed[i].name == NULL || seen[i]++)
			die("an unknown or repeated name", in, out);
		for (const char *v = eq + 1; v < p + n; v++) {
			char c = *v;

			if (c == '%') {
				if (!hex(v[1]) || !hex(v[2]) || (v[1] < '2' && v[1] >= '0') ||
				    (v[1] == '7' && v[2] == 'F'))
					die("a bad or control escape", in, out);
				v += 2;
			} else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			             (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
			             c == '~')) {
				die("a byte that is not unreserved", in, out);
			}
		}
		if (allowed[i].type == QUERY_INT) {
			long v = strtol(eq + 1, NULL, 10);

			if (v < allowed[i].min || v > allowed[i].max)
				die("a limit out of range", in, out);
		}
		p = amp ? amp + 1 : p + n;
		if (amp && *p == '\0')
			die("a trailing '&'", in, out);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), out[1024], again[1024];
	struct err e;
	size_t i;

	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		err_clear(&e);
		if (query_check(in, lists[i], out, sizeof(out), &e) < 0) {
			if (e.status != 400 || e.code == NULL || e.message[0] == '\0')
				die("a failure not in the error shape", in, e.message);
			continue;
		}
		if (strlen(out) >= sizeof(out))
			die("overlong", in, out);
		canonical(lists[i], in, out);
		err_clear(&e);
		if (query_check(out, lists[i], again, sizeof(again), &e) < 0 ||
		    strcmp(again, out) != 0)
			die("the rebuilt query does not check to itself", out, again);
	}
	free(in);
	return 0;
}
