#include "audit/audit.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/anchor.h"
#include "audit/chain.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/tlog.h"
#include "lib/base64.h"
#include "lib/jsonbuf.h"
#include "lib/log.h"
#include "lib/secmem.h"

#define PENDING_MAX_BYTES (64 * 1024 * 1024) /* kept while the log cannot be written */
#define RETRY_MS          500
#define LINE_MAX_BYTES    (1024 * 1024) /* a record past it is written incomplete */
#define AUDIT_LIST_MAX    32            /* items of a list a record holds whole */
#define AUDIT_LIST_FIRST  8             /* items a summarized list keeps */
#define AUDIT_TEXT_MAX    2048          /* bytes of a client's string a record holds */
#define TAIL_READ         (1024 * 1024) /* the last line is looked for in this much */
#define DEFAULT_ORIGIN    "gateway/audit"
#define ANCHOR_TIMEOUT_MS 5000
#define REOPEN_PROBLEMS   3 /* problems logged when the log is read back at start */

/* A line not written yet, or written and waiting for the disk. */
struct line {
	struct line *next;
	char *text;
	size_t len;
	unsigned char leaf[MERKLE_HASH]; /* its leaf hash, made as it was sealed */
	void (*durable)(void *arg, int ok);
	void *arg;
	struct audit_port *port; /* the loop durable runs on */
	int ok;
};

/* An event loop that writes records: durable callbacks of its requests
 * are handed back to it through its wake pipe. */
struct audit_port {
	struct audit_port *next;
	struct audit *a;
	struct event_base *base;
	int wake[2];
	struct event *wake_ev;
	struct line *synced, **synced_tail; /* on disk: callbacks to run */
};

struct audit {
	/* Settings. */
	char *path;
	int to_stdout;
	struct chain_key *key;
	struct note_key *signer;
	char *origin;
	long long checkpoint_every;
	long long checkpoint_interval_ms;
	enum audit_fsync fsync;
	long long fsync_interval_ms;
	int fail_open;
	long long max_bytes;
	struct event_base *base;

	/* The chain and the writing, under wmu: every worker writes. Lines
	 * are written right away, on the writer's loop: a write(2) to the
	 * page cache does not wait for the disk, and a record written before
	 * its reply survives the process crashing right after. */
	pthread_mutex_t wmu;
	long long seq;
	char prev[CHAIN_HEX + 1];
	long long bytes;                      /* of the current file */
	struct line *pending, **pending_tail; /* not written: the log failed */
	size_t pending_bytes;
	struct event *retry_ev;
	atomic_int failing;
	atomic_ulong failures;

	/* The tree over the lines written (or kept to write, in order), as its
	 * right frontier; checkpoints sign its root. Under wmu too. */
	struct merkle_hasher *hasher;
	struct merkle_tree tree;
	uint64_t checkpointed; /* the tree size the last checkpoint names */
	uint64_t ticked;       /* the tree size at the last tick */
	int checkpoint_due;    /* one was asked for while lines waited */
	int opened;            /* audit_open_with succeeded: the log is ours to close */
	struct event *tick_ev; /* every checkpoint_interval_ms, on base */
	struct anchor *anchor; /* ships checkpoints off the host */

	/* What waits on the disk goes to the sync thread, which calls
	 * fdatasync and hands callbacks back through the wake pipe. */
	int fd; /* changed only with fd_mu held */
	pthread_mutex_t fd_mu;
	int threaded;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct line *waiting, **waiting_tail; /* written, waiting for a sync */
	struct line *syncing;                 /* the sync thread's batch */
	int dirty;                            /* written since the last sync */
	int stop;
	/* Changed under both wmu and mu; the first is base's. */
	struct audit_port *ports;
};

static void
line_free(struct line *l)
{
	secmem_free(l->text);
	free(l);
}

/* --- the file ---------------------------------------------------------- */

/* One whole line, or nothing: a short write is cut back off the file.
 * Where the line began is found only then (the file is ours alone, by
 * flock, and appended to), which spares a stat per line. */
static int
write_text(struct audit *a, const char *text, size_t len)
{
	struct stat st;
	size_t done = 0;
	ssize_t n;

	if (a->fd < 0) {
		errno = EBADF;
		return -1;
	}
	while (done < len) {
		n = write(a->fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int saved = errno;

			if (done > 0 && !a->to_stdout &&
			    (fstat(a->fd, &st) < 0 || st.st_size < (off_t)done ||
			     ftruncate(a->fd, st.st_size - (off_t)done) < 0))
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
sync_fd(struct audit *a)
{
	pthread_mutex_lock(&a->fd_mu);
	if (!a->to_stdout && a->fd >= 0)
		(void)fdatasync(a->fd);
	pthread_mutex_unlock(&a->fd_mu);
}

/* Opens the path (again) for appending, exclusively: two writers would
 * braid two chains into one file. */
static int
open_log(struct audit *a, struct err *e)
{
	struct stat st;
	int fd;

	if (a->to_stdout) {
		a->fd = STDOUT_FILENO;
		return 0;
	}
	/* O_NONBLOCK only so a FIFO cannot hold up the open; it is refused
	 * below, and on a file the flag changes nothing. */
	fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0)
		return err_set(e, 500, ERR_INTERNAL, "audit_unwritable", NULL,
		               "cannot open audit log %s: %s", a->path, strerror(errno));
	/* A pipe or socket with nobody reading would block the writing loop
	 * once full, and cannot be synced or cut back. */
	if (fstat(fd, &st) < 0 || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
		close(fd);
		return err_set(e, 500, ERR_INTERNAL, "audit_unwritable", NULL,
		               "audit log %s is a pipe or socket; audit.path must be a file (or "
		               "\"-\" for standard output)",
		               a->path);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return err_set(e, 500, ERR_INTERNAL, "audit_in_use", NULL,
		               "audit log %s is being written by another process", a->path);
	}
	pthread_mutex_lock(&a->fd_mu);
	a->fd = fd;
	pthread_mutex_unlock(&a->fd_mu);
	return 0;
}

/* Done with the current file: synced, closed, renamed to rename_to when
 * set; then a new one at the path. */
static void
switch_file(struct audit *a, const char *rename_to)
{
	struct err e;
	int old;

	if (a->to_stdout)
		return;
	pthread_mutex_lock(&a->fd_mu);
	old = a->fd;
	a->fd = -1;
	pthread_mutex_unlock(&a->fd_mu);
	if (old >= 0) {
		(void)fdatasync(old);
		close(old);
	}
	if (rename_to && rename(a->path, rename_to) < 0)
		log_error("audit: cannot rename %s to %s: %s", a->path, rename_to, strerror(errno));
	err_clear(&e);
	if (open_log(a, &e) < 0)
		log_error("audit: %s", e.message);
}

/* --- the sync thread ---------------------------------------------------- */

/* Queues l's callback for its loop, and wakes it (mu held). */
static void
hand_back(struct line *l)
{
	struct audit_port *p = l->port;

	l->next = NULL;
	*p->synced_tail = l;
	p->synced_tail = &l->next;
	(void)!write(p->wake[1], "x", 1);
}

static void *
syncer(void *arg)
{
	struct audit *a = arg;
	struct line *batch;
	struct timespec until;
	int due;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (a->fsync_interval_ms % 1000) * 1000000L;
		until.tv_sec += a->fsync_interval_ms / 1000 + until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (a->waiting == NULL && !a->stop) {
			if (pthread_cond_timedwait(&a->cv, &a->mu, &until) != 0)
				break; /* the interval is up */
		}
		due = a->dirty && a->fsync == AUDIT_FSYNC_INTERVAL;
		if (a->waiting == NULL && !due && a->stop)
			break;
		if (a->waiting == NULL && !due)
			continue;
		/* The batch stays where audit_forget and audit_detach see it. */
		a->syncing = a->waiting;
		a->waiting = NULL;
		a->waiting_tail = &a->waiting;
		a->dirty = 0;
		pthread_mutex_unlock(&a->mu);

		/* One sync for every line written so far: a group commit. */
		sync_fd(a);

		pthread_mutex_lock(&a->mu);
		batch = a->syncing;
		a->syncing = NULL;
		while (batch) {
			struct line *l = batch;

			batch = l->next;
			if (l->durable && l->port)
				hand_back(l);
			else
				line_free(l); /* its request is gone */
		}
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* Callbacks of lines now on disk run on their loop, in order. */
static void
run_synced(struct audit *a, struct audit_port *p)
{
	struct line *l, *next;
	char buf[256];

	while (read(p->wake[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&a->mu);
	l = p->synced;
	p->synced = NULL;
	p->synced_tail = &p->synced;
	pthread_mutex_unlock(&a->mu);
	for (; l; l = next) {
		next = l->next;
		if (l->durable)
			l->durable(l->arg, l->ok);
		line_free(l);
	}
}

/* --- writing ------------------------------------------------------------ */

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct audit_port *p = arg;

	(void)fd;
	(void)what;
	run_synced(p->a, p);
}

/* A wake pipe and its event on base, for durable callbacks. */
static struct audit_port *
port_new(struct audit *a, struct event_base *base)
{
	struct audit_port *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->a = a;
	p->base = base;
	p->synced_tail = &p->synced;
	if (pipe(p->wake) < 0) {
		free(p);
		return NULL;
	}
	if (fcntl(p->wake[0], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(p->wake[1], F_SETFL, O_NONBLOCK) < 0 ||
	    (p->wake_ev = event_new(base, p->wake[0], EV_READ | EV_PERSIST, on_wake, p)) == NULL ||
	    event_add(p->wake_ev, NULL) < 0) {
		if (p->wake_ev)
			event_free(p->wake_ev);
		close(p->wake[0]);
		close(p->wake[1]);
		free(p);
		return NULL;
	}
	return p;
}

/* Runs what is left for p's loop and closes it; p is off the list. */
static void
port_free(struct audit *a, struct audit_port *p)
{
	run_synced(a, p);
	event_free(p->wake_ev);
	close(p->wake[0]);
	close(p->wake[1]);
	free(p);
}

/* Done with a line as safe as the settings ask; a caller who was told to
 * wait (deferred) hears it from its own loop. */
static int
done_with(struct audit *a, struct line *l, int deferred)
{
	if (deferred && l->durable && l->port) {
		pthread_mutex_lock(&a->mu);
		hand_back(l);
		pthread_mutex_unlock(&a->mu);
		return 1;
	}
	if (deferred && l->durable)
		l->durable(l->arg, 1);
	line_free(l);
	return 1;
}

/* A line is written: done with, or waiting for the disk. Returns 1 when it
 * is as safe as the settings ask already, 0 when its callback will say. */
static int
written(struct audit *a, struct line *l, int deferred)
{
	l->ok = 1;
	if (!a->threaded || a->fsync == AUDIT_FSYNC_NEVER) {
		if (a->fsync == AUDIT_FSYNC_ALWAYS)
			sync_fd(a);
		return done_with(a, l, deferred);
	}
	pthread_mutex_lock(&a->mu);
	a->dirty = 1;
	if (l->durable == NULL || a->fsync != AUDIT_FSYNC_ALWAYS) {
		pthread_mutex_unlock(&a->mu);
		return done_with(a, l, deferred);
	}
	*a->waiting_tail = l;
	a->waiting_tail = &l->next;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

static void
arm_retry(struct audit *a)
{
	struct timeval tv = {0, RETRY_MS * 1000};

	if (a->retry_ev)
		evtimer_add(a->retry_ev, &tv);
}

static int checkpoint(struct audit *a);

/* Writes what could not be written before, oldest first. */
static void
flush_pending(struct audit *a)
{
	struct line *l;

	while ((l = a->pending) != NULL) {
		if (write_text(a, l->text, l->len) < 0) {
			arm_retry(a);
			return;
		}
		a->pending = l->next;
		if (a->pending == NULL)
			a->pending_tail = &a->pending;
		a->pending_bytes -= l->len;
		l->next = NULL;
		(void)written(a, l, 1);
	}
	if (a->failing) {
		log_info("audit: writing to %s again", a->path);
		a->failing = 0;
	}
	if (a->checkpoint_due)
		(void)checkpoint(a);
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct audit *a = arg;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&a->wmu);
	flush_pending(a);
	pthread_mutex_unlock(&a->wmu);
}

/* A line joins the tree as its next leaf. */
static void
add_leaf(struct audit *a, const unsigned char hash[MERKLE_HASH])
{
	if (merkle_tree_append(a->hasher, &a->tree, hash) < 0)
		log_error("audit: cannot hash a line into the tree; checkpoints will not verify");
}

/*
 * Writes a line (takes text). A leaf joins the tree once it is written or
 * kept to write, in order, so the tree is always that of the file as it
 * will be. Returns 1 when it is as safe as the settings ask, 0 when durable
 * will be called, -1 when it is lost (fail_open, or nothing left to keep
 * it with).
 */
static int
put_line(struct audit *a, char *text, size_t len, const unsigned char *leaf,
         struct audit_port *port, void (*durable)(void *, int), void *arg)
{
	struct line *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		secmem_free(text);
		a->failures++;
		return -1;
	}
	l->text = text;
	l->len = len;
	if (leaf)
		memcpy(l->leaf, leaf, MERKLE_HASH);
	l->durable = durable;
	l->arg = arg;
	l->port = port;
	/* Order is kept: nothing new goes out before what is waiting. */
	if (a->pending == NULL && write_text(a, text, len) == 0) {
		if (leaf)
			add_leaf(a, leaf);
		return written(a, l, 0);
	}
	if (!a->failing) {
		log_error("audit: cannot write to %s: %s", a->path, strerror(errno));
		a->failing = 1;
	}
	if (a->fail_open || a->pending_bytes + len > PENDING_MAX_BYTES) {
		a->failures++;
		line_free(l);
		return -1;
	}
	if (leaf)
		add_leaf(a, leaf);
	*a->pending_tail = l;
	a->pending_tail = &l->next;
	a->pending_bytes += len;
	arm_retry(a);
	/* fail_closed: the caller waits (an intent) or has it kept. */
	return durable ? 0 : 1;
}

/* --- the chain (the loop thread) -------------------------------------- */

/*
 * Seals a record: seq and prev are added, the text is serialized and its
 * mac appended, and its leaf hash put in leaf. Returns the line (with its
 * newline), or NULL.
 */
static char *
seal(struct audit *a, struct jsonbuf *b, size_t *len, unsigned char leaf[MERKLE_HASH])
{
	char mac[CHAIN_HEX + 1];
	const char *text;
	char *line;
	size_t n;

	jsonbuf_key(b, "seq");
	jsonbuf_int(b, a->seq + 1);
	jsonbuf_key(b, "prev");
	jsonbuf_str(b, a->prev);
	/* The text is open: its closing brace comes after the mac. */
	if ((text = jsonbuf_text(b, &n)) == NULL)
		goto fail;
	if (chain_seal(a->key, text, n, mac, leaf) < 0)
		goto fail;
	jsonbuf_raw(b, ",\"mac\":\"", 8);
	jsonbuf_raw(b, mac, CHAIN_HEX);
	jsonbuf_raw(b, "\"}\n", 3);
	line = jsonbuf_take(b, len);
	if (line == NULL)
		return NULL;
	a->seq++;
	memcpy(a->prev, mac, sizeof(a->prev));
	return line;
fail:
	jsonbuf_free(b);
	return NULL;
}

static void
field(struct jsonbuf *b, const char *key, const char *v)
{
	jsonbuf_key(b, key);
	jsonbuf_str(b, v);
}

/* Every record opens with its type and time; every key is always present,
 * null when it does not apply, so each line has the same shape. */
static struct jsonbuf *
record(const char *type)
{
	struct jsonbuf *b = jsonbuf_new(1024, LINE_MAX_BYTES);
	char ts[40];

	if (b == NULL)
		return NULL;
	log_rfc3339(ts, sizeof(ts));
	jsonbuf_open(b, '{');
	field(b, "type", type);
	field(b, "ts", ts);
	return b;
}

/* Seals rec and queues it; every line but a checkpoint is a leaf of the
 * tree. Takes rec. */
static int
emit(struct audit *a, struct jsonbuf *rec, int is_checkpoint, struct audit_port *port,
     void (*durable)(void *, int), void *arg)
{
	unsigned char leaf[MERKLE_HASH];
	size_t len = 0;
	char *line = rec ? seal(a, rec, &len, leaf) : NULL;

	if (line == NULL) {
		a->failures++;
		return -1;
	}
	a->bytes += (long long)len;
	return put_line(a, line, len, is_checkpoint ? NULL : leaf, port, durable, arg);
}

/* A checkpoint line: the tree's size and root, and the note that says so
 * (signed, with a signing key), for the JSON readers and for the tools. */
static struct jsonbuf *
checkpoint_record(const char *origin, uint64_t size, const unsigned char root[MERKLE_HASH],
                  const char *note, int is_signed, int cosigned)
{
	char root64[BASE64_LEN(MERKLE_HASH) + 1];
	struct jsonbuf *rec = record("checkpoint");

	if (rec == NULL)
		return NULL;
	base64_encode(root, MERKLE_HASH, root64);
	field(rec, "origin", origin);
	jsonbuf_key(rec, "tree_size");
	jsonbuf_int(rec, (long long)size);
	field(rec, "root", root64);
	field(rec, "note", note);
	jsonbuf_key(rec, "signed");
	jsonbuf_bool(rec, is_signed);
	if (cosigned) {
		jsonbuf_key(rec, "cosigned");
		jsonbuf_bool(rec, 1);
	}
	return rec;
}

/*
 * Signs the tree as it is, if it grew since the last checkpoint, and ships
 * the note. Only once every line before it is written: while lines wait
 * (the log failing, fail_closed), the checkpoint is put off until they are
 * out, so no checkpoint ever names a leaf the file does not hold.
 */
static int
checkpoint(struct audit *a)
{
	char text[NOTE_NAME_MAX + 128], note[NOTE_MAX];
	unsigned char root[MERKLE_HASH];
	struct jsonbuf *rec;
	size_t tlen, nlen;
	int rc;

	if (a->pending) {
		a->checkpoint_due = 1;
		return 0;
	}
	a->checkpoint_due = 0;
	if (a->tree.size == a->checkpointed)
		return 0;
	if (merkle_tree_root(a->hasher, &a->tree, root) < 0 ||
	    (tlen = note_checkpoint(text, sizeof(text), a->origin, a->tree.size, root)) == 0)
		return -1;
	if (a->signer) {
		if ((nlen = note_sign(a->signer, text, tlen, note, sizeof(note))) == 0)
			return -1;
	} else {
		memcpy(note, text, tlen + 1);
		nlen = tlen;
	}
	rec = checkpoint_record(a->origin, a->tree.size, root, note, a->signer != NULL, 0);
	rc = emit(a, rec, 1, NULL, NULL, NULL);
	if (rc < 0)
		return -1;
	a->checkpointed = a->tree.size;
	if (a->anchor && a->signer)
		anchor_ship(a->anchor, note, nlen);
	return 0;
}

/* A witness's cosignature came back: the checkpoint it signed is stored
 * again, with it. */
static void
on_cosigned(void *arg, const char *note, size_t len)
{
	char origin[NOTE_NAME_MAX + 1];
	unsigned char root[MERKLE_HASH];
	struct audit *a = arg;
	size_t text_len = 0;
	uint64_t size;

	if (note_verify(NULL, note, len, &text_len) == NOTE_MALFORMED ||
	    note_checkpoint_parse(note, text_len, origin, &size, root) < 0) {
		log_error("audit: a cosigned checkpoint does not read back; not stored");
		return;
	}
	pthread_mutex_lock(&a->wmu);
	(void)emit(a, checkpoint_record(origin, size, root, note, 1, 1), 1, NULL, NULL, NULL);
	pthread_mutex_unlock(&a->wmu);
}

/* Nothing was written for a whole checkpoint_interval_ms: an "idle" leaf
 * says so, and the checkpoint after it proves the quiet. */
static void
idle(struct audit *a)
{
	struct jsonbuf *rec = record("idle");

	if (rec == NULL)
		return;
	jsonbuf_key(rec, "interval_ms");
	jsonbuf_int(rec, a->checkpoint_interval_ms);
	(void)emit(a, rec, 0, NULL, NULL, NULL);
}

/* Every checkpoint_interval_ms, on the loop the log was opened with: the
 * records since the last checkpoint are signed, so none waits longer than
 * that for one, and a quiet stretch is marked. */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct audit *a = arg;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&a->wmu);
	if (a->pending == NULL && !a->failing) {
		if (a->tree.size == a->ticked)
			idle(a);
		(void)checkpoint(a);
		a->ticked = a->tree.size;
	}
	pthread_mutex_unlock(&a->wmu);
}

/* A new stretch of the chain: at a start, after a rotation, or after a
 * torn line. It carries the tree so far (its size and right frontier), so
 * a file read on its own continues the tree of the series. */
static int
segment(struct audit *a, const char *reason, const char *detail)
{
	const unsigned char *nodes[MERKLE_LEVELS];
	char b64[BASE64_LEN(MERKLE_HASH) + 1];
	struct jsonbuf *rec = record("segment");
	size_t i, n;

	if (rec == NULL)
		return -1;
	field(rec, "reason", reason);
	field(rec, "detail", detail);
	jsonbuf_key(rec, "hmac");
	jsonbuf_bool(rec, chain_key_secret(a->key));
	jsonbuf_key(rec, "mac_format");
	jsonbuf_int(rec, CHAIN_FORMAT);
	jsonbuf_key(rec, "tree_size");
	jsonbuf_int(rec, (long long)a->tree.size);
	jsonbuf_key(rec, "frontier");
	jsonbuf_open(rec, '[');
	n = merkle_tree_nodes(&a->tree, nodes);
	for (i = 0; i < n; i++) {
		base64_encode(nodes[i], MERKLE_HASH, b64);
		jsonbuf_str(rec, b64);
	}
	jsonbuf_close(rec);
	return emit(a, rec, 0, NULL, NULL, NULL);
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

/*
 * The tree of the file as it is: every line read back through tlog (the
 * leaves hashed again, linear in the file), from the tree state its first
 * segment carries when it continues a rotated series. A checkpoint that
 * does not match the lines before it means the file changed while nobody
 * was writing it: that is logged, and the tree goes on from the file as it
 * is, which the next checkpoints then sign (a verifier that saw the earlier
 * ones, or a witness, will see they do not agree).
 */
static void
recover_tree(struct audit *a)
{
	struct tlog_settings ts = {0};
	const struct tlog_checkpoint *latest;
	struct tlog *t = NULL;
	struct stat st;
	char *line = NULL;
	size_t cap = 0, lineno = 0, problems = 0;
	long long leaf;
	off_t left;
	ssize_t n;
	FILE *f;

	/* Only a regular file has lines to read back (/dev/full reads as
	 * endless zeros), and only as many bytes as it has now. */
	if (a->to_stdout || fstat(a->fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
	    (f = fopen(a->path, "r")) == NULL)
		return;
	left = st.st_size;
	t = tlog_new(&ts);
	while (t && left > 0 && (n = getline(&line, &cap, f)) > 0) {
		lineno++;
		left -= n;
		if (line[n - 1] != '\n')
			break;
		if (tlog_line(t, a->path, lineno, line, (size_t)n - 1, &leaf) == TLOG_PROBLEM &&
		    problems++ < REOPEN_PROBLEMS)
			log_error("audit: %s:%zu: %s (found as the log was reopened)", a->path,
			          lineno, tlog_problem(t));
	}
	if (t) {
		a->tree = *tlog_tree(t);
		latest = tlog_latest(t);
		a->checkpointed = latest ? latest->size : 0;
	} else {
		log_error("audit: out of memory reading %s back; its tree starts afresh", a->path);
	}
	free(line);
	fclose(f);
	tlog_free(t);
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
	a->pending_tail = &a->pending;
	a->waiting_tail = &a->waiting;
	a->base = base;
	a->path = strdup(s->path);
	a->to_stdout = strcmp(s->path, "-") == 0;
	a->checkpoint_every = s->checkpoint_every > 0 ? s->checkpoint_every : 1000;
	a->checkpoint_interval_ms = s->checkpoint_interval_ms;
	a->origin = strdup(s->origin ? s->origin : DEFAULT_ORIGIN);
	merkle_tree_init(&a->tree);
	a->fsync = s->fsync;
	a->fsync_interval_ms = s->fsync_interval_ms > 0 ? s->fsync_interval_ms : 1000;
	a->fail_open = s->fail_open;
	a->max_bytes = s->max_bytes;
	pthread_mutex_init(&a->wmu, NULL);
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->fd_mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	a->key = chain_key_new(s->key, s->keylen);
	a->hasher = merkle_hasher_new();
	if (a->path == NULL || a->origin == NULL || a->key == NULL || a->hasher == NULL)
		goto fail;
	if (!note_name_valid(a->origin)) {
		err_set(e, 500, ERR_INTERNAL, "audit_origin", NULL,
		        "audit.origin \"%s\" must be printable ASCII without spaces or '+'",
		        a->origin);
		goto fail;
	}
	if (s->signing_key_file &&
	    (a->signer = note_key_load(s->signing_key_file, 1, a->origin, &why)) == NULL) {
		err_set(e, 500, ERR_INTERNAL, "audit_key", NULL, "audit.signing_key_file %s: %s",
		        s->signing_key_file, why);
		goto fail;
	}
	if (open_log(a, e) < 0)
		goto fail;
	reason = resume(a);
	recover_tree(a);
	if (base) {
		a->retry_ev = evtimer_new(base, on_retry, a);
		a->ports = port_new(a, base);
		if (a->retry_ev == NULL || a->ports == NULL)
			goto fail;
		if (a->checkpoint_interval_ms > 0) {
			struct timeval tv = {(time_t)(a->checkpoint_interval_ms / 1000),
			                     (suseconds_t)(a->checkpoint_interval_ms % 1000) *
			                             1000};

			a->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, a);
			if (a->tick_ev == NULL || event_add(a->tick_ev, &tv) < 0)
				goto fail;
		}
		if ((s->witness_url || s->anchor_url) && a->signer) {
			struct anchor_settings as = {s->witness_url, s->anchor_url, a->origin,
			                             ANCHOR_TIMEOUT_MS};

			if ((a->anchor = anchor_new(base, &as, on_cosigned, a, e)) == NULL)
				goto fail;
		}
	}
	/* Syncing waits for the disk, so it has its own thread. */
	if (base && a->fsync != AUDIT_FSYNC_NEVER) {
		if (pthread_create(&a->thread, NULL, syncer, a) != 0) {
			err_set(e, 500, ERR_INTERNAL, "audit_thread", NULL,
			        "cannot start the audit sync thread");
			goto fail;
		}
		a->threaded = 1;
	}
	/* A start the log cannot take is still a start: fail_closed keeps the
	 * segment to write when it can. */
	(void)segment(a, reason,
	              strcmp(reason, "torn") == 0
	                      ? "the previous line was cut off mid-write (a crash); it is not part "
	                        "of the chain"
	                      : NULL);
	a->ticked = a->tree.size;
	a->opened = 1;
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
	struct audit_port *p;
	struct line *l;

	if (a == NULL)
		return;
	if (a->tick_ev)
		event_free(a->tick_ev);
	/* What waits goes out first, then the checkpoint that covers it. */
	if (a->opened && a->fd >= 0) {
		flush_pending(a);
		(void)checkpoint(a);
	}
	/* The last checkpoint is offered once more; a cosignature that comes
	 * back is stored while the file is still open. */
	anchor_free(a->anchor);
	if (a->threaded) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
		a->threaded = 0;
	}
	sync_fd(a);
	/* Lines the log never took: lost, and counted. */
	while ((l = a->pending) != NULL) {
		a->pending = l->next;
		a->failures++;
		line_free(l);
	}
	if (a->retry_ev)
		event_free(a->retry_ev);
	while ((p = a->ports) != NULL) {
		a->ports = p->next;
		port_free(a, p);
	}
	if (a->fd >= 0 && !a->to_stdout)
		close(a->fd);
	merkle_hasher_free(a->hasher);
	note_key_free(a->signer);
	chain_key_free(a->key);
	pthread_mutex_destroy(&a->wmu);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->fd_mu);
	pthread_cond_destroy(&a->cv);
	free(a->path);
	free(a->origin);
	free(a);
}

int
audit_available(const struct audit *a)
{
	return a->fail_open || !a->failing;
}

unsigned long
audit_failures(const struct audit *a)
{
	return a->failures;
}

unsigned long
audit_anchor_failures(const struct audit *a)
{
	return a->anchor ? anchor_failures(a->anchor) : 0;
}

struct chain_key *
audit_key(const struct audit *a)
{
	return a->key;
}

void
audit_forget(struct audit *a, void *arg)
{
	struct audit_port *p;
	struct line *l;

	pthread_mutex_lock(&a->wmu);
	for (l = a->pending; l; l = l->next)
		if (l->arg == arg)
			l->durable = NULL;
	pthread_mutex_unlock(&a->wmu);
	pthread_mutex_lock(&a->mu);
	for (l = a->waiting; l; l = l->next)
		if (l->arg == arg)
			l->durable = NULL;
	for (l = a->syncing; l; l = l->next)
		if (l->arg == arg)
			l->durable = NULL;
	for (p = a->ports; p; p = p->next)
		for (l = p->synced; l; l = l->next)
			if (l->arg == arg)
				l->durable = NULL;
	pthread_mutex_unlock(&a->mu);
}

int
audit_attach(struct audit *a, struct event_base *base)
{
	struct audit_port *p = port_new(a, base);

	if (p == NULL)
		return -1;
	pthread_mutex_lock(&a->wmu);
	pthread_mutex_lock(&a->mu);
	p->next = a->ports ? a->ports->next : NULL;
	if (a->ports)
		a->ports->next = p;
	else
		a->ports = p;
	pthread_mutex_unlock(&a->mu);
	pthread_mutex_unlock(&a->wmu);
	return 0;
}

void
audit_detach(struct audit *a, struct event_base *base)
{
	struct audit_port **pp, *p = NULL;

	struct line *l;

	pthread_mutex_lock(&a->wmu);
	pthread_mutex_lock(&a->mu);
	for (pp = &a->ports; *pp; pp = &(*pp)->next) {
		if ((*pp)->base == base) {
			p = *pp;
			*pp = p->next;
			break;
		}
	}
	/* Lines still kept or syncing no longer have a loop to call back. */
	for (l = a->pending; p && l; l = l->next)
		if (l->port == p)
			l->port = NULL;
	for (l = a->waiting; p && l; l = l->next)
		if (l->port == p)
			l->port = NULL;
	for (l = a->syncing; p && l; l = l->next)
		if (l->port == p)
			l->port = NULL;
	pthread_mutex_unlock(&a->mu);
	pthread_mutex_unlock(&a->wmu);
	if (p)
		port_free(a, p);
}

/* Rotation: a checkpoint closes the old file, which is renamed (to
 * rename_to, when set) and replaced by a new one at the path, opened by a
 * segment. */
static int
rotate(struct audit *a, const char *rename_to, const char *reason)
{
	(void)checkpoint(a);
	switch_file(a, rename_to);
	a->bytes = 0;
	return segment(a, reason, rename_to);
}

int
audit_reopen(struct audit *a, struct err *e)
{
	int rc;

	if (a->to_stdout)
		return 0;
	pthread_mutex_lock(&a->wmu);
	rc = rotate(a, NULL, "reopened");
	pthread_mutex_unlock(&a->wmu);
	if (rc < 0)
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

static void
number(struct jsonbuf *b, const char *key, long long v, int present)
{
	jsonbuf_key(b, key);
	if (present)
		jsonbuf_int(b, v);
	else
		jsonbuf_null(b);
}

/* Milliseconds to the microsecond: enough for latency, short to read. */
static void
millis(struct jsonbuf *b, const char *key, double ms, int present)
{
	jsonbuf_key(b, key);
	if (present)
		jsonbuf_decimal(b, ms, 3);
	else
		jsonbuf_null(b);
}

static void
value(struct jsonbuf *b, const char *key, const json_t *v)
{
	jsonbuf_key(b, key);
	jsonbuf_json(b, v);
}

/* A list past AUDIT_LIST_MAX items as {"count", "sha256", "first"}: how
 * many, a SHA-256 of the whole list's compact JSON, and the first
 * AUDIT_LIST_FIRST items. A record then stays small however large the
 * request or the answer, so it always has room for who and what. */
static void
list(struct jsonbuf *b, const json_t *v)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	size_t i, len;
	char *text;

	if (!json_is_array(v) || json_array_size(v) <= AUDIT_LIST_MAX) {
		jsonbuf_json(b, v);
		return;
	}
	jsonbuf_open(b, '{');
	jsonbuf_key(b, "count");
	jsonbuf_int(b, (long long)json_array_size(v));
	jsonbuf_key(b, "sha256");
	text = jsonbuf_dump(v, 4096, (size_t)1 << 30, &len);
	if (text) {
		SHA256((const unsigned char *)text, len, md);
		for (i = 0; i < sizeof(md); i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		jsonbuf_str(b, hex);
	} else {
		jsonbuf_null(b);
	}
	secmem_free(text);
	jsonbuf_key(b, "first");
	jsonbuf_open(b, '[');
	for (i = 0; i < AUDIT_LIST_FIRST; i++)
		jsonbuf_json(b, json_array_get(v, i));
	jsonbuf_close(b);
	jsonbuf_close(b);
}

/* key: a list, summarized past its bound. */
static void
bounded(struct jsonbuf *b, const char *key, const json_t *v)
{
	jsonbuf_key(b, key);
	list(b, v);
}

/* key: an object whose lists (a network policy's allowed_domains and
 * domain_secrets) are summarized past their bound. */
static void
bounded_members(struct jsonbuf *b, const char *key, const json_t *v)
{
	const char *k;
	json_t *m;

	jsonbuf_key(b, key);
	if (!json_is_object(v)) {
		jsonbuf_json(b, v);
		return;
	}
	jsonbuf_open(b, '{');
	json_object_foreach((json_t *)(uintptr_t)v, k, m)
	{
		jsonbuf_key(b, k);
		list(b, m);
	}
	jsonbuf_close(b);
}

/* A string the client chose (the path), cut at AUDIT_TEXT_MAX bytes with
 * a note of how long it was. */
static void
text_field(struct jsonbuf *b, const char *key, const char *v)
{
	char cut[AUDIT_TEXT_MAX + 64];
	size_t n = v ? strlen(v) : 0;

	if (n <= AUDIT_TEXT_MAX) {
		field(b, key, v);
		return;
	}
	snprintf(cut, sizeof(cut), "%.*s...(%zu bytes)", AUDIT_TEXT_MAX, v, n);
	field(b, key, cut);
}

/* Who asked for what, and what became of it: in every record, complete
 * or not. */
static void
who_and_what(struct jsonbuf *b, const struct audit_event *ev)
{
	field(b, "request_id", ev->request_id);
	field(b, "upstream_request_id", ev->upstream_request_id);
	field(b, "trace_id", ev->trace_id);
	field(b, "span_id", ev->span_id);
	field(b, "client", ev->client);
	field(b, "tenant", ev->tenant);
	field(b, "credential", ev->credential);
	value(b, "person", ev->person);
	field(b, "policy_version", ev->policy_version);
	field(b, "method", ev->method);
	text_field(b, "path", ev->path);
	field(b, "operation", ev->operation);
	field(b, "decision", ev->decision);
}

static struct jsonbuf *
build(const char *type, const struct audit_event *ev)
{
	struct jsonbuf *b = record(type);
	size_t len;

	if (b == NULL)
		return NULL;
	who_and_what(b, ev);
	field(b, "code", ev->code);
	field(b, "param", ev->param && *ev->param ? ev->param : NULL);
	field(b, "message", ev->message);
	number(b, "status", ev->status, 1);
	number(b, "upstream_status", ev->upstream_status, ev->upstream_status != 0);
	millis(b, "latency_ms", ev->latency_ms, 1);
	millis(b, "upstream_ms", ev->upstream_ms, ev->upstream_status || ev->upstream_ms > 0);
	field(b, "container_id", ev->container_id);
	field(b, "file_id", ev->file_id);
	field(b, "memory_limit", ev->memory_limit);
	bounded_members(b, "network_policy", ev->network_policy);
	bounded(b, "adjustments", ev->adjustments);
	bounded(b, "violations", ev->violations);
	value(b, "remediation", ev->remediation);
	bounded(b, "tool_containers", ev->tool_containers);
	bounded(b, "containers", ev->containers);
	number(b, "gb_minutes", ev->gb_minutes, ev->charged);
	jsonbuf_key(b, "cost_usd");
	/* To the micro-dollar, where that fits the conversion (a price table
	 * can make any amount, even past a double). */
	if (ev->charged && isfinite(ev->cost_usd))
		jsonbuf_decimal(b, ev->cost_usd, 6);
	else
		jsonbuf_null(b);
	number(b, "bytes_in", (long long)ev->bytes_in, 1);
	number(b, "bytes_out", (long long)ev->bytes_out, 1);
	if (jsonbuf_text(b, &len) == NULL) {
		jsonbuf_free(b);
		return NULL;
	}
	return b;
}

/* What is left of a record that could not be built (memory ran out):
 * still who, what and the outcome. */
static struct jsonbuf *
incomplete(const char *type, const struct audit_event *ev)
{
	struct jsonbuf *b = record(type);

	if (b == NULL)
		return NULL;
	who_and_what(b, ev);
	field(b, "code", "audit_record_incomplete");
	number(b, "status", ev->status, 1);
	field(b, "container_id", ev->container_id);
	field(b, "memory_limit", ev->memory_limit);
	return b;
}

/* The record is built outside the lock; only sealing and writing, which
 * need the chain's head, are serialized between workers. */
static int
emit_event(struct audit *a, const char *type, const struct audit_event *ev, struct event_base *base,
           void (*durable)(void *, int), void *arg)
{
	struct jsonbuf *rec = build(type, ev);
	struct audit_port *port;
	int rc;

	if (rec == NULL)
		rec = incomplete(type, ev);
	pthread_mutex_lock(&a->wmu);
	for (port = a->ports; port && port->base != base; port = port->next)
		;
	rc = emit(a, rec, 0, port, durable, arg);
	if (a->tree.size - a->checkpointed >= (uint64_t)a->checkpoint_every)
		(void)checkpoint(a);
	maybe_rotate(a);
	pthread_mutex_unlock(&a->wmu);
	if (rc < 0)
		log_msg(LOG_ERROR, ev->request_id, "audit record not written");
	return rc;
}

int
audit_write(struct audit *a, const struct audit_event *ev)
{
	return emit_event(a, "request", ev, NULL, NULL, NULL) < 0 ? -1 : 0;
}

int
audit_intent(struct audit *a, struct event_base *base, const struct audit_event *ev,
             void (*durable)(void *arg, int ok), void *arg)
{
	return emit_event(a, "intent", ev, base, durable, arg);
}

int
audit_reload(struct audit *a, const char *config_file, const char *old_version,
             const char *new_version, const char *problem)
{
	struct jsonbuf *rec = record("reload");
	int rc;

	if (rec) {
		field(rec, "config", config_file);
		field(rec, "decision", new_version ? "allow" : "error");
		field(rec, "policy_version_old", old_version);
		field(rec, "policy_version", new_version ? new_version : old_version);
		field(rec, "message", problem);
	}
	pthread_mutex_lock(&a->wmu);
	rc = emit(a, rec, 0, NULL, NULL, NULL);
	pthread_mutex_unlock(&a->wmu);
	if (rc < 0)
		log_error("audit: the reload's record was not written");
	return rc < 0 ? -1 : 0;
}
