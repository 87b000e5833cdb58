/*
 * statedb: the memory store's state kept on disk, so ownership and live
 * containers survive a restart.
 *
 * An SQLite database (WAL journal) of the store's live sets and values,
 * read whole at start and then written behind: the store changes its
 * tables in memory as before and hands each change here, and a thread of
 * this module's own writes them in batches, so the event loop never waits
 * for the disk. A change reaches the file within STATEDB_FLUSH_MS; one made
 * just before the process is killed may be lost (the audit log still has
 * it). Rate-limit windows are not kept: they restart with the process.
 */
#ifndef GW_STATEDB_H
#define GW_STATEDB_H

#include "lib/err.h"

#define STATEDB_FLUSH_MS 50

struct statedb;

/* Opens (or creates) the database at path. NULL with e filled when it
 * cannot be opened, is not one of ours, or its folder cannot be written. */
struct statedb *statedb_open(const char *path, struct err *e);

/* Reads every kept member and value, calling member(arg, key, member,
 * expires_ms) and value(arg, key, value, expires_ms); values already
 * expired at now_ms are skipped. Returns 0, or -1 with e filled. */
int statedb_load(struct statedb *db, long long now_ms,
                 void (*member)(void *arg, const char *key, const char *m, long long expires),
                 void (*value)(void *arg, const char *key, const char *v, long long expires),
                 void *arg, struct err *e);

/* A change to write: a live set's member set (expires_ms) or removed
 * (remove), a value set or removed (v NULL). Never blocks on the disk. */
void statedb_member(struct statedb *db, const char *key, const char *m, long long expires_ms,
                    int remove);
void statedb_value(struct statedb *db, const char *key, const char *v, long long expires_ms);

/* Writes what is queued, then closes. NULL is fine. */
void statedb_close(struct statedb *db);

/* Changes that could not be written (the disk failed) since it opened. */
unsigned long statedb_failures(const struct statedb *db);

#endif
