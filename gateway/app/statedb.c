#include "app/statedb.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/log.h"

/* Changes queued beyond this are dropped (and counted): a disk that has
 * stopped must not take the process's memory with it. */
#define QUEUE_MAX 1000000

enum change_kind { SET_MEMBER, DEL_MEMBER, SET_VALUE, DEL_VALUE };

struct change {
	struct change *next;
	enum change_kind kind;
	long long expires;
	char *key, *a; /* a: the member, or the value */
};

struct statedb {
	sqlite3 *db;
	sqlite3_stmt *set_member, *del_member, *set_value, *del_value;
	pthread_t thread;
	int running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct change *head, *tail;
	size_t queued;
	int stop;
	atomic_ulong failures;
};

static const char schema[] =
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "CREATE TABLE IF NOT EXISTS gateway_state(version INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS live(key TEXT NOT NULL, member TEXT NOT NULL, "
        "  expires INTEGER NOT NULL, PRIMARY KEY(key, member)) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL, "
        "  expires INTEGER NOT NULL) WITHOUT ROWID;";

static void
change_free(struct change *c)
{
	free(c->key);
	free(c->a);
	free(c);
}

static int
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

/* Applies one change with its prepared statement; 0 or -1. */
static int
apply(struct statedb *d, const struct change *c)
{
	sqlite3_stmt *st = c->kind == SET_MEMBER   ? d->set_member
	                   : c->kind == DEL_MEMBER ? d->del_member
	                   : c->kind == SET_VALUE  ? d->set_value
	                                           : d->del_value;
	int rc = bind_text(st, 1, c->key);

	if (rc == SQLITE_OK &&
	    (c->kind == SET_MEMBER || c->kind == DEL_MEMBER || c->kind == SET_VALUE))
		rc = bind_text(st, 2, c->a);
	if (rc == SQLITE_OK && (c->kind == SET_MEMBER || c->kind == SET_VALUE))
		rc = sqlite3_bind_int64(st, 3, c->expires);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_OK ? 0 : -1;
}

/* Writes a batch in one transaction. */
static void
write_batch(struct statedb *d, struct change *batch)
{
	struct change *c, *next;
	unsigned long lost = 0;
	int ok = sqlite3_exec(d->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;

	for (c = batch; c; c = next) {
		next = c->next;
		if (!ok || apply(d, c) < 0)
			lost++;
		change_free(c);
	}
	if (ok && sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		(void)sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
		ok = 0;
	}
	if (!ok || lost) {
		atomic_fetch_add(&d->failures, 1);
		log_msg(LOG_ERROR, NULL, "store: cannot write its state to disk: %s",
		        sqlite3_errmsg(d->db));
	}
}

static void *
writer(void *arg)
{
	struct statedb *d = arg;
	struct change *batch;
	struct timespec until;
	int stop;

	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (d->head == NULL && !d->stop)
			pthread_cond_wait(&d->cv, &d->mu);
		/* Gathers what comes in the next moment into the same batch. */
		if (!d->stop) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += STATEDB_FLUSH_MS * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			while (!d->stop && pthread_cond_timedwait(&d->cv, &d->mu, &until) == 0)
				;
		}
		batch = d->head;
		d->head = d->tail = NULL;
		d->queued = 0;
		stop = d->stop;
		pthread_mutex_unlock(&d->mu);
		if (batch)
			write_batch(d, batch);
		pthread_mutex_lock(&d->mu);
		if (stop && d->head == NULL)
			break;
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

static void
queue(struct statedb *d, enum change_kind kind, const char *key, const char *a, long long expires)
{
	struct change *c;

	if (d == NULL)
		return;
	c = calloc(1, sizeof(*c));
	if (c) {
		c->kind = kind;
		c->expires = expires;
		c->key = strdup(key);
		c->a = a ? strdup(a) : NULL;
	}
	if (c == NULL || c->key == NULL || (a && c->a == NULL)) {
		if (c)
			change_free(c);
		atomic_fetch_add(&d->failures, 1);
		return;
	}
	pthread_mutex_lock(&d->mu);
	if (d->queued >= QUEUE_MAX) {
		pthread_mutex_unlock(&d->mu);
		change_free(c);
		atomic_fetch_add(&d->failures, 1);
		return;
	}
	if (d->tail)
		d->tail->next = c;
	else
		d->head = c;
	d->tail = c;
	d->queued++;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

void
statedb_member(struct statedb *db, const char *key, const char *m, long long expires_ms, int remove)
{
	queue(db, remove ? DEL_MEMBER : SET_MEMBER, key, m, expires_ms);
}

void
statedb_value(struct statedb *db, const char *key, const char *v, long long expires_ms)
{
	queue(db, v ? SET_VALUE : DEL_VALUE, key, v, expires_ms);
}

unsigned long
statedb_failures(const struct statedb *db)
{
	return db ? atomic_load(&db->failures) : 0;
}

int
statedb_load(struct statedb *d, long long now_ms,
             void (*member)(void *arg, const char *key, const char *m, long long expires),
             void (*value)(void *arg, const char *key, const char *v, long long expires), void *arg,
             struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(d->db, "SELECT key, member, expires FROM live", -1, &st, NULL) !=
	    SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		member(arg, (const char *)sqlite3_column_text(st, 0),
		       (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2));
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto fail;
	if (sqlite3_prepare_v2(d->db, "SELECT key, value, expires FROM kv WHERE expires > ?1", -1,
	                       &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, now_ms) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		value(arg, (const char *)sqlite3_column_text(st, 0),
		      (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	/* What expired while the gateway was down goes from the file too. */
	if (sqlite3_prepare_v2(d->db, "DELETE FROM kv WHERE expires <= ?1", -1, &st, NULL) !=
	            SQLITE_OK ||
	    sqlite3_bind_int64(st, 1, now_ms) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	return 0;
fail:
	sqlite3_finalize(st);
	return err_set(e, 500, ERR_INTERNAL, "store", NULL, "cannot read the store's state: %s",
	               sqlite3_errmsg(d->db));
}

/* The state's own folder, made when it is missing (mode 0700: it holds
 * who owns what), as systemd's StateDirectory would; its parent must be
 * there. */
static void
make_folder(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');

	if (slash == NULL || slash == path || (size_t)(slash - path) >= sizeof(dir))
		return;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if (mkdir(dir, 0700) == 0)
		log_info("store.path: made the folder %s", dir);
}

struct statedb *
statedb_open(const char *path, struct err *e)
{
	struct statedb *d = calloc(1, sizeof(*d));
	char *msg = NULL;

	if (d == NULL) {
		err_set(e, 500, ERR_INTERNAL, "store", NULL, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	make_folder(path);
	if (sqlite3_open_v2(path, &d->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(d->db, 1000) != SQLITE_OK ||
	    sqlite3_exec(d->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		err_set(e, 500, ERR_INTERNAL, "store", NULL, "cannot open the store's state %s: %s",
		        path,
		        msg     ? msg
		        : d->db ? sqlite3_errmsg(d->db)
		                : "out of memory");
		goto fail;
	}
	if (sqlite3_prepare_v2(d->db,
	                       "INSERT INTO live(key, member, expires) VALUES(?1, ?2, ?3) "
	                       "ON CONFLICT(key, member) DO UPDATE SET expires = excluded.expires",
	                       -1, &d->set_member, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(d->db, "DELETE FROM live WHERE key = ?1 AND member = ?2", -1,
	                       &d->del_member, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(d->db,
	                       "INSERT INTO kv(key, value, expires) VALUES(?1, ?2, ?3) "
	                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
	                       "expires = excluded.expires",
	                       -1, &d->set_value, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(d->db, "DELETE FROM kv WHERE key = ?1", -1, &d->del_value, NULL) !=
	            SQLITE_OK) {
		err_set(e, 500, ERR_INTERNAL, "store", NULL, "cannot use the store's state %s: %s",
		        path, sqlite3_errmsg(d->db));
		goto fail;
	}
	if (pthread_create(&d->thread, NULL, writer, d) != 0) {
		err_set(e, 500, ERR_INTERNAL, "store", NULL, "cannot start the store's writer");
		goto fail;
	}
	d->running = 1;
	return d;
fail:
	sqlite3_free(msg);
	statedb_close(d);
	return NULL;
}

void
statedb_close(struct statedb *d)
{
	struct change *c, *next;

	if (d == NULL)
		return;
	if (d->running) {
		pthread_mutex_lock(&d->mu);
		d->stop = 1;
		pthread_cond_signal(&d->cv);
		pthread_mutex_unlock(&d->mu);
		pthread_join(d->thread, NULL);
	}
	for (c = d->head; c; c = next) {
		next = c->next;
		change_free(c);
	}
	sqlite3_finalize(d->set_member);
	sqlite3_finalize(d->del_member);
	sqlite3_finalize(d->set_value);
	sqlite3_finalize(d->del_value);
	sqlite3_close(d->db);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	free(d);
}
