/*
 * auditverify: `gateway audit-verify`, the auditor's side of the log.
 *
 *   gateway audit-verify --public-key PUB [--state FILE] AUDITFILE...
 *   gateway audit-verify --config FILE [--state FILE] AUDITFILE...
 *   gateway audit-verify [--hmac-key-env VAR | --hmac-key-file F]
 *                        [--public-key PUB] [--state FILE] AUDITFILE...
 *
 * Reads a log, or a rotated series in order, recomputes its Merkle tree
 * (tlog.h) and checks every checkpoint against it and, with a key, its
 * signature; records after the last checkpoint are reported as not yet
 * covered. With an HMAC key the chain of macs is checked too, which names
 * the very line that changed. With --state it remembers the latest
 * checkpoint verified and fails on a log shorter than it, or whose first
 * records no longer hash to its root. Prints "audit OK: N records, M
 * checkpoints" (exit 0), or the first problem by file and line (exit 1);
 * exit 2 for usage, a key or a state file that cannot be read.
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

/*
 * The checking key of `--config FILE` (its audit.signing_key_file) or of
 * `--public-key PUB` (a public key, or a private one), for the commands
 * that read a log: *key is NULL when neither was given. Returns 0, or the
 * exit status (2) after saying why on stderr.
 */
struct note_key;
int auditverify_load_key(const char *cmd, const char *config, const char *pub,
                         auditverify_config_fn load_config, struct note_key **key);

#endif
