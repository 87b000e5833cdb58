#include "redact.h"

#include <stdint.h>
#include <string.h>

#include "secmem.h"

/* A copy of one secret with its value replaced; built field by field so the
 * value is never copied at all. */
static json_t *
redact_secret(const json_t *secret)
{
	json_t *out = json_object(), *v;
	const char *key;

	if (out == NULL)
		return NULL;
	/* Only the name and domain survive, and only as strings; any other
	 * member could be a misplaced secret. */
	json_object_foreach((json_t *)(uintptr_t)secret, key, v)
	{
		if ((strcmp(key, "domain") == 0 || strcmp(key, "name") == 0) && json_is_string(v))
			json_object_set_new(out, key, json_deep_copy(v));
		else if (strcmp(key, "value") == 0)
			json_object_set_new(out, key, json_string(REDACT_MARKER));
	}
	return out;
}

json_t *
redact_network_policy(const json_t *np)
{
	json_t *out, *v, *list, *s;
	const char *key;
	size_t i;

	if (!json_is_object(np))
		return NULL;
	out = json_object();
	if (out == NULL)
		return NULL;
	json_object_foreach((json_t *)(uintptr_t)np, key, v)
	{
		if (strcmp(key, "domain_secrets") != 0) {
			json_object_set_new(out, key, json_deep_copy(v));
			continue;
		}
		/* Whatever shape it has, nothing under domain_secrets but names
		 * and domains of well-formed entries is kept. */
		if (!json_is_array(v)) {
			json_object_set_new(out, key, json_string(REDACT_MARKER));
			continue;
		}
		list = json_array();
		json_array_foreach(v, i, s)
		{
			json_array_append_new(list, json_is_object(s) ? redact_secret(s)
			                                              : json_string(REDACT_MARKER));
		}
		json_object_set_new(out, key, list);
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
