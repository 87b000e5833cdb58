/*
 * policyset: the organization's policy and its tenants, built together
 * once, and the one owner of both.
 *
 * This is the loader: it reads the policy file and what its tenants name
 * (secret values from environment variables and files, a relative file
 * resolved against the folder of the policy file), then hands what it
 * read to policy.c and tenant.c, which compile without any I/O of their
 * own. A reload builds a new set whole; requests keep the one they
 * started with (see app/snapshot.h).
 */
#ifndef GW_POLICYSET_H
#define GW_POLICYSET_H

#include <jansson.h>

#include "lib/err.h"

struct policy;
struct policyset;
struct tenants;

/* Reads the policy document at path and builds the set. On failure
 * returns NULL with every problem found added to errs. */
struct policyset *policyset_load(const char *path, struct errlist *errs);

/* Builds the set from a parsed document; file names it in errors, and
 * its folder is where relative secret files are found. */
struct policyset *policyset_new(const json_t *doc, const char *file, struct errlist *errs);

void policyset_free(struct policyset *ps);

/* What the set was built from: "sha256:" and the hex SHA-256 of the
 * policy file's bytes (`sha256sum` of the file gives the same digits), or
 * for policyset_new of the document's compact, key-sorted JSON. Secret
 * values read from elsewhere are not in it. Borrowed from the set. */
#define POLICYSET_VERSION_LEN (7 + 64)
const char *policyset_version(const struct policyset *ps);

/* The organization's policy; borrowed from the set. */
const struct policy *policyset_org(const struct policyset *ps);

/* The tenants, or NULL when there are none; borrowed from the set. */
const struct tenants *policyset_tenants(const struct policyset *ps);

#endif
