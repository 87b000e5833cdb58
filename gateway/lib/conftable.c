#include "lib/conftable.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOT(dst, off, type) ((type *)(void *)((char *)(dst) + (off)))

/* The value at a dotted path, or NULL. */
static json_t *
lookup(const json_t *doc, const char *path)
{
	char part[128];
	const char *p = path, *dot;
	json_t *v = (json_t *)(uintptr_t)doc;
	size_t n;

	while (v && *p) {
		dot = strchr(p, '.');
		n = dot ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof(part) || !json_is_object(v))
			return NULL;
		memcpy(part, p, n);
		part[n] = '\0';
		v = json_object_get(v, part);
		p = dot ? dot + 1 : p + n;
	}
	return v;
}

int
conftable_has(const json_t *doc, const char *path)
{
	return lookup(doc, path) != NULL;
}

/* Whether path names a table key or an object on the way to one. */
static int
known(const struct confkey *tbl, const char *path, int *is_leaf)
{
	size_t n = strlen(path);

	for (; tbl->path; tbl++) {
		if (strcmp(tbl->path, path) == 0) {
			*is_leaf = 1;
			return 1;
		}
		if (strncmp(tbl->path, path, n) == 0 && tbl->path[n] == '.') {
			*is_leaf = 0;
			return 1;
		}
	}
	return 0;
}

static void
find_unknown(const struct confkey *tbl, const json_t *obj, char *path, size_t cap, const char *file,
             struct errlist *errs)
{
	const char *key;
	json_t *v;
	size_t old = strlen(path);
	int leaf;

	json_object_foreach((json_t *)(uintptr_t)obj, key, v)
	{
		if (strcmp(key, "$comment") == 0)
			continue;
		snprintf(path + old, cap - old, "%s%s", old ? "." : "", key);
		if (strchr(key, '.'))
			errlist_add(errs, file, path,
			            "unknown key (write nested keys as nested objects, not dotted "
			            "names)");
		else if (!known(tbl, path, &leaf))
			errlist_add(errs, file, path, "unknown key");
		else if (!leaf && json_is_object(v))
			find_unknown(tbl, v, path, cap, file, errs);
		else if (!leaf)
			errlist_add(errs, file, path, "must be an object");
		path[old] = '\0';
	}
}

static int
read_key(const struct confkey *k, void *dst, const json_t *v, const char *file,
         struct errlist *errs)
{
	json_error_t je;
	size_t i;

	switch (k->type) {
	case CT_STRING:
	case CT_ENUM:
		if (v == NULL) {
			*SLOT(dst, k->offset, char *) = k->def_str ? strdup(k->def_str) : NULL;
			return 0;
		}
		if (!json_is_string(v)) {
			errlist_add(errs, file, k->path, "must be a string");
			return -1;
		}
		if (k->type == CT_ENUM) {
			for (i = 0; k->enumv[i]; i++)
				if (strcmp(k->enumv[i], json_string_value(v)) == 0)
					break;
			if (k->enumv[i] == NULL) {
				char list[256] = "";
				size_t o = 0;

				for (i = 0; k->enumv[i] && o < sizeof(list); i++)
					o += (size_t)snprintf(list + o, sizeof(list) - o,
					                      "%s\"%s\"", i ? ", " : "",
					                      k->enumv[i]);
				errlist_add(errs, file, k->path, "must be one of %s", list);
				return -1;
			}
		}
		*SLOT(dst, k->offset, char *) = strdup(json_string_value(v));
		return 0;
	case CT_INT:
		if (v == NULL) {
			*SLOT(dst, k->offset, long long) = k->def_int;
			return 0;
		}
		if (!json_is_integer(v) || json_integer_value(v) < k->min ||
		    json_integer_value(v) > k->max) {
			errlist_add(errs, file, k->path, "must be an integer from %lld to %lld",
			            k->min, k->max);
			return -1;
		}
		*SLOT(dst, k->offset, long long) = json_integer_value(v);
		return 0;
	case CT_BOOL:
		if (v == NULL) {
			*SLOT(dst, k->offset, int) = (int)k->def_int;
			return 0;
		}
		if (!json_is_boolean(v)) {
			errlist_add(errs, file, k->path, "must be true or false");
			return -1;
		}
		*SLOT(dst, k->offset, int) = json_is_true(v);
		return 0;
	case CT_STRLIST:
		if (v != NULL) {
			if (!json_is_array(v)) {
				errlist_add(errs, file, k->path, "must be an array of strings");
				return -1;
			}
			for (i = 0; i < json_array_size(v); i++) {
				if (!json_is_string(json_array_get(v, i))) {
					char at[200];

					snprintf(at, sizeof(at), "%s[%zu]", k->path, i);
					errlist_add(errs, file, at, "must be a string");
					return -1;
				}
			}
		}
		/* fall through */
	case CT_JSON:
	default:
		/* A copy, so the caller's document is never changed through it. */
		if (v != NULL)
			*SLOT(dst, k->offset, json_t *) = json_deep_copy(v);
		else if (k->def_json)
			*SLOT(dst, k->offset, json_t *) =
			        json_loads(k->def_json, JSON_DECODE_ANY, &je);
		else
			*SLOT(dst, k->offset, json_t *) = NULL;
		return 0;
	}
}

int
conftable_read(const struct confkey *tbl, void *dst, const json_t *doc, const char *file,
               struct errlist *errs)
{
	const struct confkey *k;
	char path[256] = "";
	size_t before = errs->n + errs->dropped;

	for (k = tbl; k->path; k++) {
		/* A parent that is not an object is reported by find_unknown;
		 * the key's default applies meanwhile. */
		(void)read_key(k, dst, lookup(doc, k->path), file, errs);
	}
	find_unknown(tbl, doc, path, sizeof(path), file, errs);
	return errs->n + errs->dropped > before ? -1 : 0;
}

void
conftable_release(const struct confkey *tbl, void *dst)
{
	for (; tbl->path; tbl++) {
		switch (tbl->type) {
		case CT_STRING:
		case CT_ENUM:
			free(*SLOT(dst, tbl->offset, char *));
			*SLOT(dst, tbl->offset, char *) = NULL;
			break;
		case CT_STRLIST:
		case CT_JSON:
			json_decref(*SLOT(dst, tbl->offset, json_t *));
			*SLOT(dst, tbl->offset, json_t *) = NULL;
			break;
		default:
			break;
		}
	}
}
