#include "policy/check.h"

#include <stdint.h>
#include <string.h>

#include "policy/domain.h"
#include "lib/jsondoc.h"
#include "policy/schema.h"

/* Records one violation; -1 when memory runs out, since a violation that
 * cannot be recorded must not let the container through. */
static int
violation(json_t *violations, const char *field, json_t *forwarded, json_t *returned)
{
	return json_array_append_new(violations,
	                             json_pack("{s:s, s:O*, s:O*}", "field", field, "forwarded",
	                                       forwarded, "returned", returned));
}

static int
check_memory(const json_t *fwd, const json_t *got, json_t *violations)
{
	json_t *want = json_object_get(fwd, "memory_limit");
	json_t *have = json_object_get(got, "memory_limit");

	if (json_is_string(have) && !json_equal(want, have))
		return violation(violations, "memory_limit", want, have);
	return 0;
}

static int
check_expiry(const json_t *fwd, const json_t *got, json_t *violations)
{
	json_t *want = json_object_get(json_object_get(fwd, "expires_after"), "minutes");
	json_t *have = json_object_get(json_object_get(got, "expires_after"), "minutes");

	if (json_is_integer(have) && json_integer_value(have) > json_integer_value(want))
		return violation(violations, "expires_after.minutes", want, have);
	return 0;
}

/* Every returned domain must be among those forwarded; compared as
 * hostnames, so case and a trailing dot do not matter. */
static int
check_network(const json_t *fwd, const json_t *got, json_t *violations)
{
	json_t *want = json_object_get(fwd, "network_policy");
	json_t *have = json_object_get(got, "network_policy");
	json_t *want_type = json_object_get(want, "type");
	json_t *returned = json_object_get(have, "allowed_domains"), *d;
	struct domain_set *forwarded = NULL;
	char norm[DOMAIN_MAX + 1], field[64];
	struct err e;
	const char *why;
	size_t i;
	int rc = -1;

	if (!json_is_object(have))
		return 0;
	if (!json_equal(want_type, json_object_get(have, "type")))
		return violation(violations, "network_policy.type", want_type,
		                 json_object_get(have, "type"));
	if (json_array_size(returned) == 0)
		return 0;
	/* The forwarded domains as a set: each returned one is one lookup. */
	forwarded = domain_set_of(json_object_get(want, "allowed_domains"), &e);
	if (forwarded == NULL)
		return -1;
	json_array_foreach(returned, i, d)
	{
		snprintf(field, sizeof(field), "network_policy.allowed_domains[%zu]", i);
		if ((domain_normalize(json_string_value(d), json_string_length(d), 1, norm, &why) <
		             0 ||
		     !domain_set_covers(forwarded, norm)) &&
		    violation(violations, field, NULL, d) < 0)
			goto out;
	}
	rc = 0;
out:
	domain_set_free(forwarded);
	return rc;
}

json_t *
check_create_response(const json_t *forwarded, const char *body, size_t len, json_t *violations,
                      struct err *e)
{
	json_t *got;
	struct err inner;

	err_clear(&inner);
	got = jsondoc_parse(body, len, &inner);
	if (got == NULL && inner.status == 503) {
		*e = inner; /* the gateway's trouble, not the upstream's */
		return NULL;
	}
	if (got == NULL) {
		err_set(e, 502, ERR_UPSTREAM, "bad_upstream_response", NULL,
		        "the upstream answered the create call with something other than a JSON "
		        "object (%s)",
		        inner.message);
		return NULL;
	}
	if (schema_check(&schema_container_resource, got, &inner) < 0) {
		err_set(e, 502, ERR_UPSTREAM, "bad_upstream_response", NULL,
		        "the upstream's answer to the create call is not a container object: %s",
		        inner.message);
		json_decref(got);
		return NULL;
	}
	if (check_memory(forwarded, got, violations) < 0 ||
	    check_expiry(forwarded, got, violations) < 0 ||
	    check_network(forwarded, got, violations) < 0) {
		err_set(e, 503, ERR_INTERNAL, "out_of_memory", NULL,
		        "the gateway ran out of memory checking the upstream's answer, so it "
		        "withheld the container; it may exist upstream");
		json_decref(got);
		return NULL;
	}
	return got;
}

static int
problem(json_t *violations, const char *field, const char *what)
{
	return json_array_append_new(violations,
	                             json_pack("{s:s, s:s}", "field", field, "problem", what));
}

/* An id in the answer that differs from the one in the request path. */
static int
check_id(json_t *violations, const json_t *obj, const char *key, const char *want,
         const char *field)
{
	json_t *have = json_object_get(obj, key);

	if (want == NULL || !json_is_string(have) || strcmp(json_string_value(have), want) == 0)
		return 0;
	return json_array_append_new(violations, json_pack("{s:s, s:s, s:O}", "field", field,
	                                                   "requested", want, "returned", have));
}

int
check_response(const struct check_expect *x, const char *body, size_t len, json_t *violations,
               struct err *e)
{
	struct err inner;
	json_t *doc, *item;
	char field[64], why[ERR_MESSAGE_MAX + 64];
	size_t i;
	int rc = 0;

	/* The spec gives deletes no answer schema: an empty answer is fine. */
	if (x->schema == NULL && len == 0)
		return 0;
	err_clear(&inner);
	doc = jsondoc_parse(body, len, &inner);
	if (doc == NULL) {
		snprintf(why, sizeof(why), "the answer is not a JSON object: %s", inner.message);
		rc = problem(violations, "(body)", why);
		goto out;
	}
	if (x->schema && schema_check(x->schema, doc, &inner) < 0 &&
	    problem(violations, inner.param[0] ? inner.param : "(body)", inner.message) < 0)
		rc = -1;
	if (rc == 0 && !x->list) {
		if (check_id(violations, doc, "id", x->id, "id") < 0 ||
		    check_id(violations, doc, "container_id", x->container_id, "container_id") < 0)
			rc = -1;
	}
	json_array_foreach(x->list ? json_object_get(doc, "data") : NULL, i, item)
	{
		snprintf(field, sizeof(field), "data[%zu].container_id", i);
		if (rc == 0 &&
		    check_id(violations, item, "container_id", x->container_id, field) < 0)
			rc = -1;
	}
	json_decref(doc);
out:
	if (rc < 0)
		err_set(e, 503, ERR_INTERNAL, "out_of_memory", NULL,
		        "the gateway ran out of memory checking the upstream's answer, so it "
		        "withheld it");
	return rc;
}

/* Whether o is an item that names the container it ran in. */
static const char *
container_of(const json_t *o)
{
	const char *type = json_string_value(json_object_get(o, "type"));
	const char *id = json_string_value(json_object_get(o, "container_id"));

	if (type == NULL || id == NULL)
		return NULL;
	if (strcmp(type, "code_interpreter_call") == 0 || strcmp(type, "container_reference") == 0)
		return id;
	return NULL;
}

/* Where an answer names the containers a call ran in: a response's
 * "output" items, a stream event's "item" or "response", a shell call's
 * "environment". Nowhere else: the answer also echoes the request's own
 * tools, whose function parameters (like its text format's schema) are
 * any JSON the client wrote, and what it wrote there makes no container
 * the caller's. */
static int
names_containers(const char *key)
{
	return strcmp(key, "output") == 0 || strcmp(key, "item") == 0 ||
	       strcmp(key, "response") == 0 || strcmp(key, "environment") == 0;
}

static size_t
walk(const json_t *v, void (*found)(void *arg, const char *id), void *arg)
{
	const char *key, *id;
	size_t i, n = 0;
	json_t *m, *item;

	if ((id = container_of(v)) != NULL) {
		found(arg, id);
		n++;
	}
	json_object_foreach((json_t *)(uintptr_t)v, key, m)
	{
		if (!names_containers(key))
			continue;
		if (json_is_object(m))
			n += walk(m, found, arg);
		json_array_foreach(json_is_array(m) ? m : NULL, i, item)
		{
			if (json_is_object(item))
				n += walk(item, found, arg);
		}
	}
	return n;
}

size_t
check_containers(const json_t *doc, void (*found)(void *arg, const char *id), void *arg)
{
	return walk(doc, found, arg);
}
