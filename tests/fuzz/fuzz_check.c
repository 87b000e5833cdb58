/*
 * libFuzzer target: the response audit (check.c), on any bytes an upstream
 * could answer with.
 *
 * Each input is checked as the answer to a create, against each of a few
 * forwarded documents (one of them with 2000 domains, so that holding
 * every returned domain against every forwarded one would time out), and
 * as the answer to every other kind of operation.
 * Beyond memory errors it aborts when
 *  - a create answer passes with no violation although, read here
 *    independently, it shows more memory, another network policy type, a
 *    domain not among those forwarded, or a longer expiry than forwarded;
 *  - an accepted container lacks what ContainerResource requires;
 *  - a retrieve or file answer passes with no violation although its id or
 *    container_id is not the one asked for;
 *  - a failure is not in the error shape.
 *
 *   make fuzz FUZZ_TARGETS=check
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/check.h"
#include "lib/err.h"
#include "invariant.h"
#include "policy/schema.h"
#include "lib/secmem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Documents as the gateway forwards them: decided, every field present. */
static const char *const forwarded_texts[] = {
        "{\"name\":\"a\",\"memory_limit\":\"1g\",\"expires_after\":{\"anchor\":\"last_active_at\","
        "\"minutes\":20},\"network_policy\":{\"type\":\"disabled\"}}",
        "{\"name\":\"b\",\"memory_limit\":\"4g\",\"expires_after\":{\"anchor\":\"last_active_at\","
        "\"minutes\":60},\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":["
        "\"api.buildkite.com\",\"*.example.org\"]}}",
        "{\"name\":\"c\",\"memory_limit\":\"64g\",\"expires_after\":{\"anchor\":\"last_active_at\","
        "\"minutes\":1},\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":["
        "\"pypi.org\"]}}",
};

#define NFORWARDED (sizeof(forwarded_texts) / sizeof(forwarded_texts[0]))
#define NDOCS      (NFORWARDED + 1) /* and the long allowlist */
#define NLONG      2000

static json_t *forwarded[NDOCS];
static json_t *forwarded_sets[NDOCS]; /* each one's domains, for held_to */

static const struct check_expect expects[] = {
        {&schema_container_list_resource, NULL, NULL, 1},
        {&schema_container_resource, "cntr_1", NULL, 0},
        {NULL, "cntr_1", NULL, 0},
        {&schema_container_file_resource, "file_1", "cntr_1", 0},
        {&schema_container_file_list_resource, NULL, "cntr_1", 1},
        {NULL, "file_1", "cntr_1", 0},
};

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_check: %s: %s\n", what, detail ? detail : "");
	abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	json_error_t je;
	json_t *domains;
	char name[64];
	size_t i;

	(void)argc;
	(void)argv;
	secmem_init();
	for (i = 0; i < NFORWARDED; i++)
		if ((forwarded[i] = json_loads(forwarded_texts[i], 0, &je)) == NULL)
			die("built-in document", je.text);
	forwarded[NFORWARDED] = json_deep_copy(forwarded[1]);
	domains = json_array();
	for (i = 0; domains && i < NLONG; i++) {
		snprintf(name, sizeof(name), "h%zu.example.net", i);
		json_array_append_new(domains, json_string(name));
	}
	if (forwarded[NFORWARDED] == NULL || domains == NULL ||
	    json_object_set_new(json_object_get(forwarded[NFORWARDED], "network_policy"),
	                        "allowed_domains", domains) < 0)
		die("built-in document", "out of memory");
	for (i = 0; i < NDOCS; i++)
		if ((forwarded_sets[i] = inv_domain_set(json_object_get(
		             json_object_get(forwarded[i], "network_policy"), "allowed_domains"))) ==
		    NULL)
			die("built-in document", "out of memory");
	return 0;
}

static const char *
size_of(const json_t *o)
{
	return json_string_value(json_object_get(o, "memory_limit"));
}

static int
rank(const char *s)
{
	static const char *const sizes[] = {"1g", "4g", "16g", "64g", NULL};
	int i;

	for (i = 0; s && sizes[i]; i++)
		if (strcmp(s, sizes[i]) == 0)
			return i;
	return -1;
}

/* What the answer must not show when no violation was recorded. */
static void
held_to(const json_t *fwd, const json_t *fset, const json_t *got)
{
	const json_t *np = json_object_get(got, "network_policy"), *d;
	const json_t *fnp = json_object_get(fwd, "network_policy");
	const json_t *mins = json_object_get(json_object_get(got, "expires_after"), "minutes");
	char name[512];
	size_t i;

	if (json_is_string(json_object_get(got, "memory_limit")) &&
	    rank(size_of(got)) != rank(size_of(fwd)))
		die("another memory_limit passed", size_of(got));
	if (json_is_integer(mins) &&
	    json_integer_value(mins) > json_integer_value(json_object_get(
	                                       json_object_get(fwd, "expires_after"), "minutes")))
		die("a longer expiry passed", "");
	if (!json_is_object(np))
		return;
	if (!json_equal(json_object_get(np, "type"), json_object_get(fnp, "type")))
		die("another network policy type passed", "");
	json_array_foreach(json_object_get(np, "allowed_domains"), i, d)
	{
		if (!json_is_string(d))
			die("a domain that is not a string passed", "");
		inv_domain_fold(json_string_value(d), json_string_length(d), name, sizeof(name));
		/* A NUL inside the name would cut the folded copy short. */
		if (!inv_domain_set_covers(fset, name) ||
		    memchr(json_string_value(d), '\0', json_string_length(d)))
			die("a domain not forwarded passed", json_string_value(d));
	}
}

static void
container_shape(const json_t *c)
{
	if (!json_is_object(c) || !json_is_string(json_object_get(c, "id")) ||
	    !json_is_string(json_object_get(c, "object")) ||
	    !json_is_string(json_object_get(c, "name")) ||
	    !json_is_integer(json_object_get(c, "created_at")) ||
	    !json_is_string(json_object_get(c, "status")))
		die("accepted a container without its required fields", "");
}

static void
check_other(const struct check_expect *x, const char *body, size_t len)
{
	json_t *v = json_array(), *doc;
	json_error_t je;
	struct err e;
	const char *id;

	if (v == NULL)
		die("out of memory", "");
	err_clear(&e);
	if (check_response(x, body, len, v, &e) < 0) {
		if (e.status != 503 || e.code == NULL)
			die("a failure not in the error shape", e.message);
		json_decref(v);
		return;
	}
	if (json_array_size(v) == 0 && !(x->schema == NULL && len == 0)) {
		doc = json_loadb(body, len, 0, &je);
		if (!json_is_object(doc))
			die("an answer that is not a JSON object passed", "");
		id = json_string_value(json_object_get(doc, "id"));
		if (!x->list && x->id && id && strcmp(id, x->id) != 0)
			die("another id passed", id);
		id = json_string_value(json_object_get(doc, "container_id"));
		if (!x->list && x->container_id && id && strcmp(id, x->container_id) != 0)
			die("another container_id passed", id);
		json_decref(doc);
	}
	json_decref(v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = malloc(size ? size : 1);
	json_t *v, *got;
	struct err e;
	size_t i;

	if (body == NULL)
		return 0;
	/* An exactly-sized copy, so reading past the end is caught. */
	memcpy(body, data, size);
	for (i = 0; i < NDOCS; i++) {
		v = json_array();
		err_clear(&e);
		got = check_create_response(forwarded[i], body, size, v, &e);
		if (got == NULL) {
			if ((e.status != 502 && e.status != 503) || e.code == NULL ||
			    e.message[0] == '\0')
				die("a failure not in the error shape", e.message);
		} else {
			container_shape(got);
			if (json_array_size(v) == 0)
				held_to(forwarded[i], forwarded_sets[i], got);
			json_decref(got);
		}
		json_decref(v);
	}
	for (i = 0; i < sizeof(expects) / sizeof(expects[0]); i++)
		check_other(&expects[i], body, size);
	free(body);
	return 0;
}
