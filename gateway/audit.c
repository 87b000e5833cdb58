#include "audit.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "config.h"
#include "log.h"
#include "secmem.h"

#define QUEUE_MAX_LINES 100000
#define QUEUE_MAX_BYTES (64 * 1024 * 1024)
#define RETRY_MS        500
#define TAIL_READ       (1024 * 1024) /* the last line is looked for in this much */

enum entry_kind { E_LINE, E_ROTATE };

struct entry {
	struct entry *next;
	enum entry_kind kind;
	char *line;
	size_t len;
	void (*durable)(void *arg, int ok);
	void *arg;
	int ok;
};

struct audit {
	/* Settings. */
	char *path;
	int to_stdout;
	unsigned char *key;
	size_t keylen;
	struct chain_signer *signer;
	long long checkpoint_every;
	enum audit_fsync fsync;
	long long fsync_interval_ms;
	int fail_open;
	long long max_bytes;

	/* The chain; the loop thread's alone. */
	long long seq;
	char prev[CHAIN_HEX + 1];
	struct chain_digest *digest;
	long long since_checkpoint;
	long long bytes; /* of the current file, as queued */

	/* The file; the writer's alone once it runs. */
	int fd;
	long long last_fsync_ms;

	/* The queue between them. */
	int threaded;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct entry *head, **tail;
	size_t queued, queued_bytes;
	struct entry *done, **done_tail;
	int stop;
	int wake[2];
	struct event *wake_ev;

	atomic_int failing;
	atomic_ulong failures;
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
audit_settings_from(const struct config *cfg, struct audit_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->path = cfg->audit_path;
	s->key = (const unsigned char *)cfg->audit_key;
	s->keylen = cfg->audit_key_len;
	s->signing_key_file = cfg->audit_signing_key_file;
	s->checkpoint_every = cfg->audit_checkpoint_every;
	s->fsync = strcmp(cfg->audit_fsync, "always") == 0  ? AUDIT_FSYNC_ALWAYS
	           : strcmp(cfg->audit_fsync, "never") == 0 ? AUDIT_FSYNC_NEVER
	                                                    : AUDIT_FSYNC_INTERVAL;
	s->fsync_interval_ms = cfg->audit_fsync_interval_ms;
	s->fail_open = strcmp(cfg->audit_on_failure, "fail_open") == 0;
	s->max_bytes = cfg->audit_max_bytes;
}

/* --- writing (the writer thread, or inline without one) --------------- */

/* One whole line, or nothing: a short write is cut back off the file. */
static int
write_line(struct audit *a, const struct entry *e)
{
	struct stat st;
	size_t done = 0;
	ssize_t n;

	if (a->fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (!a->to_stdout && fstat(a->fd, &st) < 0)
		return -1;
	while (done < e->len) {
		n = write(a->fd, e->line + done, e->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int saved = errno;

			if (done > 0 && !a->to_stdout && ftruncate(a->fd, st.st_size) < 0)
				log_error("audit: could not cut back a torn line: %s",
				          strerror(errno));
			errno = saved ? saved : ENOSPC;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

static void
sync_file(struct audit *a)
{
	if (!a->to_stdout && a->fd >= 0)
		(void)fdatasync(a->fd);
	a->last_fsync_ms = now_ms();
}

/* Opens the path (again) for appending, exclusively: two writers would
 * braid two chains into one file. */
static int
open_log(struct audit *a, struct err *e)
{
	if (a->to_stdout) {
		a->fd = STDOUT_FILENO;
		return 0;
	}
	a->fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0)
		return err_set(e, 500, ERR_INTERNAL, "audit_unwritable", NULL,
		               "cannot open audit log %s: %s", a->path, strerror(errno));
	if (flock(a->fd, LOCK_EX | LOCK_NB) < 0) {
		close(a->fd);
		a->fd = -1;
		return err_set(e, 500, ERR_INTERNAL, "audit_in_use", NULL,
		               "audit log %s is being written by another process", a->path);
	}
	return 0;
}

/* Rotation, in line order: the old file is done with, a new one opened at
 * the path (renamed away first when it grew past max_bytes). */
static void
rotate_file(struct audit *a, const struct entry *e)
{
	struct err err;

	sync_file(a);
	if (!a->to_stdout && e->line) {
		if (rename(a->path, e->line) < 0)
			log_error("audit: cannot rename %s to %s: %s", a->path, e->line,
			          strerror(errno));
	}
	if (!a->to_stdout && a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	err_clear(&err);
	if (open_log(a, &err) < 0)
		log_error("audit: %s", err.message);
}

/* Writes the entries in order; returns the first one not written (kept to
 * retry in fail_closed mode), or NULL when all are done. */
static struct entry *
write_batch(struct audit *a, struct entry *batch, struct entry **written)
{
	struct entry *e = batch, **w = written;

	while (e) {
		if (e->kind == E_ROTATE) {
			rotate_file(a, e);
			e->ok = 1;
		} else if (write_line(a, e) == 0) {
			e->ok = 1;
			atomic_store(&a->failing, 0);
		} else {
			if (!atomic_exchange(&a->failing, 1))
				log_error("audit: cannot write to %s: %s", a->path,
				          strerror(errno));
			if (!a->fail_open)
				break;
			atomic_fetch_add(&a->failures, 1);
			e->ok = 0;
		}
		*w = e;
		w = &e->next;
		e = e->next;
	}
	*w = NULL;
	return e;
}

static void
deliver(struct audit *a, struct entry *done)
{
	struct entry *last;

	if (done == NULL)
		return;
	for (last = done; last->next; last = last->next)
		;
	pthread_mutex_lock(&a->mu);
	*a->done_tail = done;
	a->done_tail = &last->next;
	pthread_mutex_unlock(&a->mu);
	(void)!write(a->wake[1], "x", 1);
}

static void *
writer(void *arg)
{
	struct audit *a = arg;
	struct entry *batch, *left, *written;
	size_t nwritten, nbytes;
	struct timespec until;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (a->head == NULL && !a->stop) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&a->cv, &a->mu, &until);
			if (a->fsync == AUDIT_FSYNC_INTERVAL &&
			    now_ms() - a->last_fsync_ms >= a->fsync_interval_ms) {
				pthread_mutex_unlock(&a->mu);
				sync_file(a);
				pthread_mutex_lock(&a->mu);
			}
		}
		if (a->head == NULL && a->stop)
			break;
		batch = a->head;
		a->head = NULL;
		a->tail = &a->head;
		pthread_mutex_unlock(&a->mu);

		left = write_batch(a, batch, &written);
		if (a->fsync == AUDIT_FSYNC_ALWAYS ||
		    (a->fsync == AUDIT_FSYNC_INTERVAL &&
		     now_ms() - a->last_fsync_ms >= a->fsync_interval_ms))
			sync_file(a);
		/* Counted before they are handed over: the loop frees them. */
		nwritten = 0;
		nbytes = 0;
		for (struct entry *e = written; e; e = e->next)
			nwritten++, nbytes += e->len;
		deliver(a, written);

		pthread_mutex_lock(&a->mu);
		a->queued -= nwritten;
		a->queued_bytes -= nbytes;
		if (left) {
			/* fail_closed: keep the unwritten lines, in order, and retry. */
			struct entry *last = left;

			while (last->next)
				last = last->next;
			last->next = a->head;
			if (a->head == NULL)
				a->tail = &last->next;
			a->head = left;
			if (a->stop) {
				/* Stopping with a log that cannot be written: count them. */
				while (a->head) {
					struct entry *e = a->head;

					a->head = e->next;
					atomic_fetch_add(&a->failures, 1);
					free(e->line);
					free(e);
				}
				a->tail = &a->head;
				break;
			}
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += RETRY_MS * 1000000L;
			until.tv_sec += until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&a->cv, &a->mu, &until);
		}
	}
	pthread_mutex_unlock(&a->mu);
	sync_file(a);
	return NULL;
}

/* Durable callbacks run on the loop, in order. */
static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct audit *a = arg;
	struct entry *e, *next;
	char buf[256];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&a->mu);
	e = a->done;
	a->done = NULL;
	a->done_tail = &a->done;
	pthread_mutex_unlock(&a->mu);
	for (; e; e = next) {
		next = e->next;
		if (e->durable)
			e->durable(e->arg, e->ok);
		free(e->line);
		free(e);
	}
}

/* Hands a line to the writer (or writes it now). Takes line. */
static int
enqueue(struct audit *a, enum entry_kind kind, char *line, size_t len, void (*durable)(void *, int),
        void *arg)
{
	struct entry *e = calloc(1, sizeof(*e)), *written;

	if (e == NULL) {
		free(line);
		return -1;
	}
	e->kind = kind;
	e->line = line;
	e->len = len;
	e->durable = durable;
	e->arg = arg;
	if (!a->threaded) {
		if (write_batch(a, e, &written) != NULL) {
			atomic_fetch_add(&a->failures, 1);
			e->ok = 0;
		}
		if (a->fsync == AUDIT_FSYNC_ALWAYS)
			sync_file(a);
		if (durable)
			durable(arg, e->ok);
		free(e->line);
		free(e);
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	if (a->queued >= QUEUE_MAX_LINES || a->queued_bytes + len > QUEUE_MAX_BYTES) {
		pthread_mutex_unlock(&a->mu);
		atomic_fetch_add(&a->failures, 1);
		free(line);
		free(e);
		return -1;
	}
	*a->tail = e;
	a->tail = &e->next;
	a->queued++;
	a->queued_bytes += len;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

/* --- the chain (the loop thread) -------------------------------------- */

/*
 * Seals a record: seq and prev are added, the text is serialized, its mac
 * appended, and the line goes into the running digest. A checkpoint is
 * signed over its text before the mac. Returns the line (with its
 * newline), or NULL.
 */
static char *
seal(struct audit *a, json_t *rec, int sign, size_t *len)
{
	char mac[CHAIN_HEX + 1], sig[CHAIN_SIG_B64 + 1];
	char *text, *line;
	size_t n, o;

	if (json_object_set_new(rec, "seq", json_integer(a->seq + 1)) < 0 ||
	    json_object_set_new(rec, "prev", json_string(a->prev)) < 0)
		return NULL;
	text = json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(12));
	if (text == NULL)
		return NULL;
	n = strlen(text) - 1; /* without the closing brace */
	line = malloc(n + CHAIN_SIG_SUFFIX + CHAIN_MAC_SUFFIX + 2);
	if (line == NULL) {
		secmem_json_free(text);
		return NULL;
	}
	memcpy(line, text, n);
	secmem_json_free(text);
	o = n;
	if (sign && a->signer) {
		if (chain_sign(a->signer, line, n, sig) < 0) {
			free(line);
			return NULL;
		}
		o += (size_t)sprintf(line + o, ",\"sig\":\"%s\"", sig);
	}
	if (chain_mac(a->key, a->keylen, line, o, "}", mac) < 0) {
		free(line);
		return NULL;
	}
	o += (size_t)sprintf(line + o, ",\"mac\":\"%s\"}\n", mac);
	a->seq++;
	memcpy(a->prev, mac, sizeof(a->prev));
	*len = o;
	return line;
}

/* Sets key to a string, or null: every key is always present, so each
 * line has the same shape for whatever reads the log. A key that cannot be
 * set (memory, or a string that is not UTF-8) is counted in *bad. */
static void
put(json_t *o, const char *key, json_t *v, int *bad)
{
	if (json_object_set_new(o, key, v ? v : json_null()) < 0)
		(*bad)++;
}

static void
put_str(json_t *o, const char *key, const char *v)
{
	json_object_set_new(o, key, v ? json_string(v) : json_null());
}

static json_t *
record(const char *type)
{
	json_t *o = json_object();
	char ts[40];

	if (o == NULL)
		return NULL;
	log_rfc3339(ts, sizeof(ts));
	put_str(o, "type", type);
	put_str(o, "ts", ts);
	return o;
}

/* Seals rec and queues it; counts it toward the next checkpoint unless it
 * is one. Takes rec. */
static int
emit(struct audit *a, json_t *rec, int checkpoint, void (*durable)(void *, int), void *arg)
{
	size_t len = 0;
	char *line = rec ? seal(a, rec, checkpoint, &len) : NULL;

	json_decref(rec);
	if (line == NULL) {
		atomic_fetch_add(&a->failures, 1);
		return -1;
	}
	if (checkpoint) {
		/* The checkpoint's own bytes open the next stretch. */
		a->since_checkpoint = 0;
	} else {
		a->since_checkpoint++;
	}
	chain_digest_add(a->digest, line, len);
	a->bytes += (long long)len;
	return enqueue(a, E_LINE, line, len, durable, arg);
}

static int
checkpoint(struct audit *a)
{
	char digest[CHAIN_HEX + 1];
	json_t *rec = record("checkpoint");

	if (rec == NULL || chain_digest_cut(a->digest, digest) < 0) {
		json_decref(rec);
		return -1;
	}
	json_object_set_new(rec, "head", json_string(a->prev));
	json_object_set_new(rec, "records", json_integer(a->since_checkpoint));
	json_object_set_new(rec, "digest", json_string(digest));
	json_object_set_new(rec, "signed", json_boolean(a->signer != NULL));
	return emit(a, rec, 1, NULL, NULL);
}

/* A new stretch of the chain: at a start, after a rotation, or after a
 * torn line. The digest starts over with it. */
static int
segment(struct audit *a, const char *reason, const char *detail)
{
	json_t *rec = record("segment");

	if (rec == NULL)
		return -1;
	put_str(rec, "reason", reason);
	put_str(rec, "detail", detail);
	json_object_set_new(rec, "hmac", json_boolean(a->keylen > 0));
	chain_digest_free(a->digest);
	a->digest = chain_digest_new(chain_genesis);
	if (a->digest == NULL) {
		json_decref(rec);
		return -1;
	}
	a->since_checkpoint = 0;
	return emit(a, rec, 0, NULL, NULL);
}

/* Where the chain left off in an existing file: the last line's seq and
 * mac. A last line without its newline was torn by a crash: it is ended,
 * so it stands alone, and declared by the segment that follows. */
static const char *
resume(struct audit *a)
{
	char *buf = NULL, *end, *start;
	struct stat st;
	json_t *last;
	off_t from;
	ssize_t n;
	const char *reason = "start";

	a->seq = 0;
	memcpy(a->prev, chain_genesis, sizeof(a->prev));
	if (a->to_stdout || fstat(a->fd, &st) < 0 || st.st_size == 0)
		return reason;
	a->bytes = st.st_size;
	from = st.st_size > TAIL_READ ? st.st_size - TAIL_READ : 0;
	buf = malloc(TAIL_READ + 1);
	if (buf == NULL)
		return reason;
	n = pread(a->fd, buf, (size_t)(st.st_size - from), from);
	if (n <= 0) {
		free(buf);
		return reason;
	}
	buf[n] = '\0';
	end = buf + n;
	if (end[-1] != '\n') {
		reason = "torn";
		if (write(a->fd, "\n", 1) != 1)
			log_error("audit: cannot end the torn last line of %s", a->path);
		while (end > buf && end[-1] != '\n')
			end--;
	}
	/* end is just past the last complete line's newline. */
	if (end > buf) {
		end[-1] = '\0';
		start = strrchr(buf, '\n');
		start = start ? start + 1 : buf;
		last = json_loads(start, 0, NULL);
		if (json_is_integer(json_object_get(last, "seq")) &&
		    json_is_string(json_object_get(last, "mac")) &&
		    strlen(json_string_value(json_object_get(last, "mac"))) == CHAIN_HEX) {
			a->seq = (long long)json_integer_value(json_object_get(last, "seq"));
			memcpy(a->prev, json_string_value(json_object_get(last, "mac")),
			       CHAIN_HEX + 1);
		} else if (strcmp(reason, "torn") != 0) {
			reason = "unchained";
		}
		json_decref(last);
	}
	free(buf);
	return reason;
}

struct audit *
audit_open_with(struct event_base *base, const struct audit_settings *s, struct err *e)
{
	struct audit *a = calloc(1, sizeof(*a));
	const char *why = NULL, *reason;

	if (a == NULL) {
		err_set(e, 500, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
		return NULL;
	}
	a->fd = -1;
	a->wake[0] = a->wake[1] = -1;
	a->head = NULL;
	a->tail = &a->head;
	a->done_tail = &a->done;
	a->path = strdup(s->path);
	a->to_stdout = strcmp(s->path, "-") == 0;
	a->checkpoint_every = s->checkpoint_every > 0 ? s->checkpoint_every : 1000;
	a->fsync = s->fsync;
	a->fsync_interval_ms = s->fsync_interval_ms > 0 ? s->fsync_interval_ms : 1000;
	a->fail_open = s->fail_open;
	a->max_bytes = s->max_bytes;
	a->last_fsync_ms = now_ms();
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (s->keylen) {
		a->key = secmem_alloc(s->keylen);
		if (a->key)
			memcpy(a->key, s->key, s->keylen);
		a->keylen = s->keylen;
	}
	if (s->signing_key_file &&
	    (a->signer = chain_signer_load(s->signing_key_file, &why)) == NULL) {
		err_set(e, 500, ERR_INTERNAL, "audit_key", NULL, "audit.signing_key_file %s: %s",
		        s->signing_key_file, why);
		goto fail;
	}
	if (a->path == NULL || (s->keylen && a->key == NULL) || open_log(a, e) < 0)
		goto fail;
	reason = resume(a);
	a->digest = chain_digest_new(chain_genesis);
	if (a->digest == NULL)
		goto fail;
	if (base) {
		if (pipe(a->wake) < 0 || fcntl(a->wake[0], F_SETFL, O_NONBLOCK) < 0 ||
		    fcntl(a->wake[1], F_SETFL, O_NONBLOCK) < 0 ||
		    (a->wake_ev = event_new(base, a->wake[0], EV_READ | EV_PERSIST, on_wake, a)) ==
		            NULL ||
		    event_add(a->wake_ev, NULL) < 0 ||
		    pthread_create(&a->thread, NULL, writer, a) != 0) {
			err_set(e, 500, ERR_INTERNAL, "audit_thread", NULL,
			        "cannot start the audit writer");
			goto fail;
		}
		a->threaded = 1;
	}
	if (segment(a, reason,
	            strcmp(reason, "torn") == 0
	                    ? "the previous line was cut off mid-write (a crash); it is not part "
	                      "of the chain"
	                    : NULL) < 0) {
		err_set(e, 500, ERR_INTERNAL, "audit_unwritable", NULL,
		        "cannot write to audit log %s", a->path);
		goto fail;
	}
	return a;
fail:
	if (e->status == 0)
		err_set(e, 500, ERR_INTERNAL, "audit_unwritable", NULL, "cannot open audit log %s",
		        s->path);
	audit_free(a);
	return NULL;
}

struct audit *
audit_open(const char *path, struct err *e)
{
	struct audit_settings s;

	memset(&s, 0, sizeof(s));
	s.path = path;
	s.checkpoint_every = 1000;
	s.fsync = AUDIT_FSYNC_INTERVAL;
	s.fsync_interval_ms = 1000;
	return audit_open_with(NULL, &s, e);
}

void
audit_free(struct audit *a)
{
	if (a == NULL)
		return;
	if (a->digest && a->fd >= 0)
		(void)checkpoint(a);
	if (a->threaded) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
		a->threaded = 0;
		on_wake(a->wake[0], 0, a);
	} else if (a->fd >= 0) {
		sync_file(a);
	}
	if (a->wake_ev)
		event_free(a->wake_ev);
	if (a->wake[0] >= 0)
		close(a->wake[0]);
	if (a->wake[1] >= 0)
		close(a->wake[1]);
	if (a->fd >= 0 && !a->to_stdout)
		close(a->fd);
	chain_digest_free(a->digest);
	chain_signer_free(a->signer);
	secmem_free(a->key);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a->path);
	free(a);
}

int
audit_available(const struct audit *a)
{
	return a->fail_open || !atomic_load(&a->failing);
}

unsigned long
audit_failures(const struct audit *a)
{
	return atomic_load(&a->failures);
}

const unsigned char *
audit_key(const struct audit *a, size_t *len)
{
	*len = a->keylen;
	return a->keylen ? a->key : NULL;
}

void
audit_forget(struct audit *a, void *arg)
{
	struct entry *e;

	pthread_mutex_lock(&a->mu);
	for (e = a->head; e; e = e->next)
		if (e->arg == arg)
			e->durable = NULL;
	for (e = a->done; e; e = e->next)
		if (e->arg == arg)
			e->durable = NULL;
	pthread_mutex_unlock(&a->mu);
}

/* Rotation: a checkpoint closes the old file, then the writer renames it
 * (to rename_to, when set) and opens the path; a segment opens the new. */
static int
rotate(struct audit *a, const char *rename_to, const char *reason)
{
	char *to = rename_to ? strdup(rename_to) : NULL;

	if (checkpoint(a) < 0 || enqueue(a, E_ROTATE, to, 0, NULL, NULL) < 0)
		return -1;
	a->bytes = 0;
	return segment(a, reason, rename_to);
}

int
audit_reopen(struct audit *a, struct err *e)
{
	if (a->to_stdout)
		return 0;
	if (rotate(a, NULL, "reopened") < 0)
		return err_set(e, 500, ERR_INTERNAL, "audit_unwritable", NULL,
		               "cannot reopen audit log %s", a->path);
	return 0;
}

/* Past max_bytes the file is renamed with the time and a new one begun. */
static void
maybe_rotate(struct audit *a)
{
	char to[4096], ts[40];

	if (a->max_bytes <= 0 || a->to_stdout || a->bytes < a->max_bytes)
		return;
	log_rfc3339(ts, sizeof(ts));
	snprintf(to, sizeof(to), "%s.%s", a->path, ts);
	if (rotate(a, to, "rotated") < 0)
		log_error("audit: rotation of %s failed", a->path);
}

/* --- records ------------------------------------------------------------ */

/* Milliseconds to the microsecond: enough for latency, short to read. */
static double
ms3(double ms)
{
	return (double)(long long)(ms * 1000.0 + 0.5) / 1000.0;
}

static json_t *
build(const char *type, const struct audit_event *ev)
{
	json_t *o = record(type);
	int bad = 0;

#define STR(v)  ((v) ? json_string(v) : json_null())
#define JSON(v) ((v) ? json_deep_copy(v) : json_null())
	if (o == NULL)
		return NULL;
	put(o, "request_id", STR(ev->request_id), &bad);
	put(o, "upstream_request_id", STR(ev->upstream_request_id), &bad);
	put(o, "client", STR(ev->client), &bad);
	put(o, "tenant", STR(ev->tenant), &bad);
	put(o, "method", STR(ev->method), &bad);
	put(o, "path", STR(ev->path), &bad);
	put(o, "operation", STR(ev->operation), &bad);
	put(o, "decision", STR(ev->decision), &bad);
	put(o, "code", STR(ev->code), &bad);
	put(o, "param", ev->param && *ev->param ? json_string(ev->param) : json_null(), &bad);
	put(o, "message", STR(ev->message), &bad);
	put(o, "status", json_integer(ev->status), &bad);
	put(o, "upstream_status", ev->upstream_status ? json_integer(ev->upstream_status) : NULL,
	    &bad);
	put(o, "latency_ms", json_real(ms3(ev->latency_ms)), &bad);
	put(o, "upstream_ms",
	    ev->upstream_status || ev->upstream_ms > 0 ? json_real(ms3(ev->upstream_ms)) : NULL,
	    &bad);
	put(o, "container_id", STR(ev->container_id), &bad);
	put(o, "file_id", STR(ev->file_id), &bad);
	put(o, "memory_limit", STR(ev->memory_limit), &bad);
	put(o, "network_policy", JSON(ev->network_policy), &bad);
	put(o, "adjustments", JSON(ev->adjustments), &bad);
	put(o, "violations", JSON(ev->violations), &bad);
	put(o, "remediation", JSON(ev->remediation), &bad);
	put(o, "bytes_in", json_integer((json_int_t)ev->bytes_in), &bad);
	put(o, "bytes_out", json_integer((json_int_t)ev->bytes_out), &bad);
#undef STR
#undef JSON
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int
emit_event(struct audit *a, const char *type, const struct audit_event *ev,
           void (*durable)(void *, int), void *arg)
{
	json_t *rec = build(type, ev);
	int rc;

	/* A record that cannot be built (memory, or a string that is not
	 * UTF-8) still leaves a trace rather than nothing. */
	if (rec == NULL)
		rec = json_pack("{s:s, s:s*, s:s*, s:i, s:s}", "type", type, "request_id",
		                ev->request_id, "decision", ev->decision, "status", ev->status,
		                "code", "audit_record_incomplete");
	rc = emit(a, rec, 0, durable, arg);
	if (rc < 0)
		log_msg(LOG_ERROR, ev->request_id, "audit record not written");
	if (a->since_checkpoint >= a->checkpoint_every)
		(void)checkpoint(a);
	maybe_rotate(a);
	return rc;
}

int
audit_write(struct audit *a, const struct audit_event *ev)
{
	return emit_event(a, "request", ev, NULL, NULL);
}

int
audit_intent(struct audit *a, const struct audit_event *ev, void (*durable)(void *arg, int ok),
             void *arg)
{
	/* Only "always" waits for the disk; otherwise the line is as safe as
	 * the settings promise once it is queued. */
	if (a->fsync != AUDIT_FSYNC_ALWAYS || !a->threaded) {
		if (emit_event(a, "intent", ev, NULL, NULL) < 0)
			return -1;
		return 1;
	}
	return emit_event(a, "intent", ev, durable, arg) < 0 ? -1 : 0;
}
