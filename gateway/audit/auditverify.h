/*
 * auditverify: `gateway audit-verify`, the auditor's side of the chain.
 *
 *   gateway audit-verify --config FILE AUDITFILE...
 *   gateway audit-verify [--hmac-key-env VAR | --hmac-key-file F]
 *                        [--public-key F] AUDITFILE...
 *
 * Reads a log, or a rotated series in order, and reports the first line
 * that was altered, removed, inserted or reordered, or a torn last line,
 * by line number and seq (exit 1); or "audit OK: N records, M checkpoints"
 * (exit 0). With only a public key, lines are proven by the signed
 * checkpoints and the prev links; lines after the last checkpoint by their
 * links only.
 */
#ifndef GW_AUDITVERIFY_H
#define GW_AUDITVERIFY_H

#include <stddef.h>

#include "lib/err.h"

/* The keys a config names, lent for the run: release(arg) when done. */
struct auditverify_keys {
	const unsigned char *key; /* the HMAC key; NULL: a plain SHA-256 chain */
	size_t keylen;
	const char *signing_key_file; /* Ed25519 PEM; NULL: none */
	void (*release)(void *arg);
	void *arg;
};

/* Reads the config at path for its audit keys; -1 with errs filled. */
typedef int (*auditverify_config_fn)(const char *path, struct auditverify_keys *keys,
                                     struct errlist *errs);

/* `gateway audit-verify`; --config is read through load_config. Returns
 * the exit status. */
int auditverify_main(int argc, char **argv, auditverify_config_fn load_config);

#endif
