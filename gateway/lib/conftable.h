/*
 * conftable: JSON settings read through a table of keys.
 *
 * The gateway config and the policy document are both JSON objects of known
 * keys. Each is described once, as a table giving every key's dotted path,
 * type, bounds, default and where it lands in a C struct, so defaults live
 * in one place and every error names the file and the JSON path.
 */
#ifndef GW_CONFTABLE_H
#define GW_CONFTABLE_H

#include <jansson.h>
#include <stddef.h>

#include "lib/err.h"

enum conftype {
	CT_STRING,  /* char *, owned by the struct */
	CT_INT,     /* long long, within [min, max] */
	CT_BOOL,    /* int */
	CT_ENUM,    /* char * holding one of enumv */
	CT_STRLIST, /* json_t * array of strings (a new reference) */
	CT_JSON,    /* json_t * of any type (a new reference), checked by the caller */
};

struct confkey {
	const char *path; /* "upstream.timeout_ms" */
	enum conftype type;
	size_t offset; /* where the value lands in the destination struct */
	const char *def_str;
	long long def_int; /* also the default for CT_BOOL */
	long long min, max;
	const char *const *enumv;
	const char *def_json; /* CT_JSON and CT_STRLIST default, as JSON text */
};

/*
 * Fills dst from doc per the table (which ends with a NULL path), applying
 * defaults for absent keys. Keys of doc that the table does not know are
 * errors, except "$comment" at any level. Every problem is added to errs,
 * prefixed with file. Returns 0 when none was found, else -1. Whatever was
 * filled must be released with conftable_release, even after -1.
 */
int conftable_read(const struct confkey *tbl, void *dst, const json_t *doc, const char *file,
                   struct errlist *errs);

/* Frees the strings and JSON values conftable_read stored in dst. */
void conftable_release(const struct confkey *tbl, void *dst);

/* Whether doc sets the key at path (dotted) at all. */
int conftable_has(const json_t *doc, const char *path);

#endif
