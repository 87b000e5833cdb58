#include "audit/redact.h"

#include <stdint.h>
#include <string.h>

#include "audit/chain.h"
#include "lib/secmem.h"

/* A copy of one secret with its value replaced; built field by field so the
 * value is never copied at all. NULL when memory runs out: a half copy
 * would misstate what was sent. */
static json_t *
redact_secret(const json_t *secret, struct chain_key *fkey)
{
	json_t *out = json_object(), *v;
	char print[12 + CHAIN_HEX + 1];
	const char *key;
	int bad = out == NULL;

	/* Only the name and domain survive, and only as strings; any other
	 * member could be a misplaced secret. */
	json_object_foreach((json_t *)(uintptr_t)secret, key, v)
	{
		if (bad)
			break;
		if ((strcmp(key, "domain") == 0 || strcmp(key, "name") == 0) && json_is_string(v)) {
			bad = json_object_set_new(out, key, json_deep_copy(v)) < 0;
		} else if (strcmp(key, "value") == 0) {
			bad = json_object_set_new(out, key, json_string(REDACT_MARKER)) < 0;
			/* Proof of which value was used, without the value. */
			if (!bad && json_is_string(v) &&
			    chain_fingerprint(fkey, json_string_value(v), json_string_length(v),
			                      print) == 0)
				bad = json_object_set_new(out, "value_fingerprint",
				                          json_string(print)) < 0;
		}
	}
	if (bad) {
		json_decref(out);
		return NULL;
	}
	return out;
}

json_t *
redact_network_policy(const json_t *np)
{
	return redact_network_policy_keyed(np, NULL);
}

/* The redacted form of one member of a network policy. */
static json_t *
redact_member(const char *key, const json_t *v, struct chain_key *fkey)
{
	json_t *list, *s;
	size_t i;

	if (strcmp(key, "domain_secrets") != 0)
		return json_deep_copy(v);
	/* Whatever shape it has, nothing under domain_secrets but names and
	 * domains of well-formed entries is kept. */
	if (!json_is_array(v))
		return json_string(REDACT_MARKER);
	list = json_array();
	json_array_foreach(v, i, s)
	{
		if (list && json_array_append_new(list, json_is_object(s)
		                                                ? redact_secret(s, fkey)
		                                                : json_string(REDACT_MARKER)) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

json_t *
redact_network_policy_keyed(const json_t *np, struct chain_key *fkey)
{
	json_t *out, *v;
	const char *key;

	if (!json_is_object(np))
		return NULL;
	out = json_object();
	json_object_foreach((json_t *)(uintptr_t)np, key, v)
	{
		if (out && json_object_set_new(out, key, redact_member(key, v, fkey)) < 0) {
			json_decref(out);
			out = NULL;
		}
	}
	return out;
}

void
redact_wipe_secrets(json_t *doc)
{
	json_t *secrets, *s, *v;
	size_t i;

	secrets = json_object_get(json_object_get(doc, "network_policy"), "domain_secrets");
	json_array_foreach(secrets, i, s)
	{
		v = json_object_get(s, "value");
		if (json_is_string(v))
			secmem_wipe((void *)(uintptr_t)json_string_value(v), json_string_length(v));
	}
}
