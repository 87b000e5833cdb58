#include "server.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "app/config.h"
#include "app/context.h"
#include "app/front.h"
#include "app/jwks.h"
#include "app/redis.h"
#include "app/otlp.h"
#include "app/snapshot.h"
#include "app/store.h"
#include "audit/audit.h"
#include "audit/note.h"
#include "http/conn.h"
#include "http/tls.h"
#include "http/upstream.h"
#include "lib/log.h"
#include "lib/secmem.h"
#include "lib/spool.h"
#include "metrics.h"
#include "policy/jwt.h"
#include "policy/policyset.h"

/* Connections past limits.max_connections that are still read far enough
 * to get a 503 with an audit record; past these, sockets are closed as
 * they are accepted. */
#define OVERFLOW_CONNS 64

#define DRAIN_TICK_MS 50
/* After the grace period, how long the 503s to the requests stopped get
 * to reach their clients. */
#define ABORT_FLUSH_MS 1000

/*
 * One per event loop. The first (main) also owns what the workers share:
 * the audit log, the metrics, the signals and the admin listener; each
 * worker has its own loop, thread, listening socket (SO_REUSEPORT),
 * transport, app context, upstream client and store connection, and hears
 * the main loop's reloads and stops through its command pipe.
 */
struct server {
	struct server *main; /* NULL on the main loop */
	size_t index;        /* 0 on the main loop, 1.. for workers */
	struct event_base *base;
	char *config_path;
	struct snapshot *snap; /* in force; the server holds one reference */
	struct upstream *upstream;
	struct store *store;
	struct audit *audit;      /* a worker borrows the main loop's */
	struct jwks *jwks;        /* main: the identity provider's keys */
	unsigned long audit_lost; /* records lost by audit logs since reopened */
	atomic_ulong audit_seen;  /* audit_failures() after the last record */
	atomic_int audit_failing; /* the last record could not be written */
	struct context *ctx;      /* the gateway's requests on this loop */
	struct conn_loop *conns;  /* the client connections on this loop */
	struct evconnlistener *listener;
	struct admin *admin;
	struct metrics *metrics;
	struct otlp *otlp; /* main: spans to the collector; NULL: none */
	struct event *sigint, *sigterm, *sighup, *sigusr1, *drain;
	int draining, aborted;
	long drain_waited_ms, abort_waited_ms;
	atomic_size_t inflight; /* main: every loop's requests */
	char *pid_file;         /* written at start, removed at exit */
	time_t started, loaded;

	/* main: the other loops */
	struct server **workers;
	size_t nworkers;
	/* a worker */
	pthread_t thread;
	int running;        /* its thread was started and not yet joined */
	atomic_int stopped; /* its loop has ended */
	int cmd[2];         /* commands from the main loop, a byte each */
	struct event *cmd_ev;
	pthread_mutex_t mu;    /* guards next */
	struct snapshot *next; /* handed over by a reload */
};

/* Commands to a worker. */
#define CMD_SNAPSHOT 'r' /* take the snapshot in next */
#define CMD_STOP     's' /* drain and stop, as on SIGTERM */
#define CMD_ABORT    'a' /* answer what is left 503 now */

static struct server *
root(const struct server *s)
{
	return s->main ? s->main : (struct server *)(uintptr_t)s;
}

static const struct config *
cfg_of(const struct server *s)
{
	return snapshot_config(s->snap);
}

/* Makes snap (a new reference) the one in force on s's loop: for requests
 * and connections starting from now. */
static void
take_snapshot(struct server *s, struct snapshot *snap)
{
	struct conn_limits limits;

	if (snap != s->snap) {
		snapshot_release(s->snap);
		s->snap = snapshot_ref(snap);
	}
	config_conn_limits(cfg_of(s), &limits);
	if (s->conns) {
		conn_loop_set_limits(s->conns, &limits);
		conn_loop_set_tls(s->conns, snapshot_tls(snap));
	}
	if (s->ctx)
		context_set_snapshot(s->ctx, snap);
}

/* Called once per request, right after its audit record was written:
 * counts it in the metrics and notes whether the audit log still takes
 * records. */
static void
on_request_done(void *arg, const struct audit_event *ev)
{
	struct server *s = arg;
	struct server *m = root(s);
	unsigned long failures = audit_failures(s->audit);

	metrics_request(s->metrics, ev);
	otlp_span(m->otlp, ev);
	atomic_store(&m->audit_failing, failures != atomic_exchange(&m->audit_seen, failures));
}

/* The loop's transport and app context, and its listener, over the parts
 * already made. */
static int
serve_on_loop(struct server *s, struct errlist *errs)
{
	struct conn_limits limits;

	config_conn_limits(cfg_of(s), &limits);
	s->ctx = context_new(s->base, s->upstream, s->store, s->audit, s->snap, &root(s)->inflight);
	if (s->ctx) {
		s->ctx->jwks = root(s)->jwks;
		s->ctx->done = on_request_done;
		s->ctx->done_arg = s;
		s->conns = conn_loop_new(s->base, &front_handler, s->ctx, &limits);
	}
	if (s->ctx == NULL || s->conns == NULL) {
		errlist_add(errs, cfg_of(s)->file, NULL, "out of memory");
		return -1;
	}
	conn_loop_set_tls(s->conns, snapshot_tls(s->snap));
	return 0;
}

/* Ends every request still in flight on s's loop with a 503: the grace
 * period is over. Each gets its answer and audit record, as any other. */
static void
abort_requests(struct server *s)
{
	struct err e;

	s->aborted = 1;
	if (s->ctx == NULL)
		return;
	if (s->ctx->nlive)
		log_warn("stopping %zu request(s) still in flight", s->ctx->nlive);
	err_set(&e, 503, ERR_INTERNAL, "shutting_down", NULL,
	        "the gateway is shutting down and stopped this request; try again");
	front_abort(s->ctx, &e);
}

/* ---- readiness and metrics ---- */

/* Whether the audit log at path can be written now: the file opens for
 * appending, or, if it is gone (rotated), its folder takes a new one. */
static int
audit_path_writable(const char *path, char *why, size_t n)
{
	char *dir, *slash;
	int fd, ok;

	if (strcmp(path, "-") == 0)
		return 1;
	fd = open(path, O_WRONLY | O_APPEND | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 1;
	}
	if (errno != ENOENT) {
		snprintf(why, n, "audit log %s cannot be opened for writing: %s", path,
		         strerror(errno));
		return 0;
	}
	dir = strdup(path);
	if (dir == NULL) {
		snprintf(why, n, "out of memory");
		return 0;
	}
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	ok = access(dir, W_OK | X_OK) == 0;
	if (!ok)
		snprintf(why, n, "audit log %s is gone and its folder cannot be written: %s", path,
		         strerror(errno));
	free(dir);
	return ok;
}

int
server_ready(struct server *s, char *why, size_t n)
{
	char reason[300];
	size_t o = 0;
	int ready = 1;

	why[0] = '\0';
#define NOT_READY(...)                                                                             \
	do {                                                                                       \
		ready = 0;                                                                         \
		if (o < n)                                                                         \
			o += (size_t)snprintf(why + o, n - o, "%s", o ? "; " : "");                \
		if (o < n)                                                                         \
			o += (size_t)snprintf(why + o, n - o, __VA_ARGS__);                        \
	} while (0)
	if (s->draining)
		NOT_READY("shutting down");
	if (s->audit_failing || !audit_available(s->audit))
		NOT_READY("the last audit record could not be written");
	if (!audit_path_writable(cfg_of(s)->audit_path, reason, sizeof(reason)))
		NOT_READY("%s", reason);
	if (s->store && !store_reachable(s->store))
		NOT_READY("the %s store is unreachable", cfg_of(s)->store_type);
	if (!jwks_ready(root(s)->jwks))
		NOT_READY("the identity provider's keys (auth.jwt.jwks_url) are not fetched yet");
#undef NOT_READY
	return ready;
}

int
server_render_metrics(struct server *s, struct evbuffer *out)
{
	struct metrics_state st;
	char why[512];

	st.connections = conn_total();
	st.inflight = atomic_load_explicit(&root(s)->inflight, memory_order_relaxed);
	st.audit_failures = s->audit_lost + audit_failures(s->audit);
	st.audit_anchor_failures = audit_anchor_failures(s->audit);
	st.tls_handshake_failures = conn_tls_failures();
	st.started = s->started;
	st.last_reload_ok = s->loaded;
	st.policy_version = policyset_version(snapshot_policies(s->snap));
	{
		struct otlp_stats os;

		otlp_stats(root(s)->otlp, &os);
		st.spans_exported = os.exported;
		st.spans_dropped = os.dropped;
		st.span_batches_failed = os.failed_batches;
	}
	st.cert_not_after = tls_server_not_after(snapshot_tls(s->snap));
	st.ready = server_ready(s, why, sizeof(why));
	return metrics_render(s->metrics, &st, out);
}

static int
ready_of(void *arg, char *why, size_t n)
{
	return server_ready(arg, why, n);
}

static int
metrics_of(void *arg, struct evbuffer *out)
{
	return server_render_metrics(arg, out);
}

/* ---- building from a config ---- */

static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* The listener's TLS context for c into *out (NULL when c asks for none). */
static int
tls_build(const struct config *c, struct tls_server **out, struct errlist *errs)
{
	struct tls_settings t = {c->tls_cert, c->tls_key, c->tls_min_version, c->tls_client_ca,
	                         c->tls_require_client_cert};

	*out = NULL;
	if (!c->tls_cert && !c->tls_key && !c->tls_client_ca && !c->tls_require_client_cert)
		return 0;
	*out = tls_server_new(&t, c->file, errs);
	return *out ? 0 : -1;
}

/* upstream.pinned_pubkey: sha256// hashes of the base64 length a SHA-256
 * has, or a key file that can be read. */
static void
check_pin(const struct config *c, struct errlist *errs)
{
	const char *p = c->upstream_pinned_pubkey, *end;
	size_t n;

	if (p == NULL)
		return;
	if (strncmp(p, "sha256//", 8) != 0) {
		if (access(p, R_OK) != 0)
			errlist_add(errs, c->file, "upstream.pinned_pubkey",
			            "cannot read the public key file %s: %s", p, strerror(errno));
		return;
	}
	for (; *p; p = *end ? end + 1 : end) {
		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (n != 8 + 44 || strncmp(p, "sha256//", 8) != 0 || p[n - 1] != '=' ||
		    strspn(p + 8,
		           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") !=
		            43) {
			errlist_add(errs, c->file, "upstream.pinned_pubkey",
			            "must be \"sha256//<base64 of the key's SHA-256>\" (several "
			            "separated by \";\"), or the path of a PEM or DER public key");
			return;
		}
	}
}

/* Sends the operational log (stderr) to path, appended to; "-" leaves it
 * on stderr. Reopening the same path after rotation starts a new file. */
static int
open_log(const char *path, char *why, size_t n)
{
	int fd;

	if (path == NULL || strcmp(path, "-") == 0)
		return 0;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(why, n, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fd != STDERR_FILENO && dup2(fd, STDERR_FILENO) < 0) {
		snprintf(why, n, "cannot write the log to %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (fd != STDERR_FILENO)
		close(fd);
	return 0;
}

/* Writes our pid to path, unless a live process already holds it. */
static int
write_pid_file(struct server *s, const char *path, struct errlist *errs)
{
	const char *file = cfg_of(s)->file;
	char buf[32];
	ssize_t n;
	long pid;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[n > 0 ? n : 0] = '\0';
		pid = strtol(buf, NULL, 10);
		if (pid > 0 && pid != (long)getpid() &&
		    (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
			errlist_add(errs, file, "pid_file",
			            "%s names process %ld, which is running: another gateway?",
			            path, pid);
			return -1;
		}
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (fd < 0 || write(fd, buf, (size_t)n) != n) {
		errlist_add(errs, file, "pid_file", "cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	s->pid_file = strdup(path);
	return 0;
}

static struct evconnlistener *listen_on(struct server *s, struct errlist *errs);

/* Settings only a restart applies: a reload says so when they changed. */
static void
warn_restart_only(const struct config *a, const struct config *b)
{
	if (!same(a->listen, b->listen))
		log_warn("reload: listen changed; it takes effect on restart");
	if (a->workers != b->workers)
		log_warn("reload: workers changed; it takes effect on restart");
	if (!same(a->admin_listen, b->admin_listen))
		log_warn("reload: admin_listen changed; it takes effect on restart");
	if (!same(a->pid_file, b->pid_file))
		log_warn("reload: pid_file changed; it takes effect on restart");
	if (!same(a->upstream_base_url, b->upstream_base_url) ||
	    a->upstream_timeout_ms != b->upstream_timeout_ms ||
	    a->upstream_connect_timeout_ms != b->upstream_connect_timeout_ms ||
	    a->upstream_max_response_bytes != b->upstream_max_response_bytes ||
	    !same(a->upstream_ca_file, b->upstream_ca_file) ||
	    a->upstream_insecure_skip_verify != b->upstream_insecure_skip_verify ||
	    !same(a->upstream_pinned_pubkey, b->upstream_pinned_pubkey))
		log_warn("reload: upstream settings changed; they take effect on restart");
	if (!same(a->otlp_url, b->otlp_url) || !same(a->otlp_service_name, b->otlp_service_name))
		log_warn("reload: telemetry settings changed; they take effect on restart");
	if (!same(a->store_type, b->store_type) || !same(a->store_url, b->store_url) ||
	    !same(a->store_on_unavailable, b->store_on_unavailable) ||
	    a->store_timeout_ms != b->store_timeout_ms)
		log_warn("reload: store settings changed; they take effect on restart");
	/* A new audit.path opens a new log; the rest of the audit settings go
	 * with the log they were opened with. */
	if (same(a->audit_path, b->audit_path) &&
	    (a->audit_key_len != b->audit_key_len ||
	     (a->audit_key_len && memcmp(a->audit_key, b->audit_key, a->audit_key_len) != 0) ||
	     !same(a->audit_signing_key_file, b->audit_signing_key_file) ||
	     !same(a->audit_origin, b->audit_origin) ||
	     !same(a->audit_witness_url, b->audit_witness_url) ||
	     !same(a->audit_anchor, b->audit_anchor) ||
	     a->audit_checkpoint_interval_ms != b->audit_checkpoint_interval_ms ||
	     !same(a->audit_fsync, b->audit_fsync) ||
	     !same(a->audit_on_failure, b->audit_on_failure) ||
	     a->audit_checkpoint_every != b->audit_checkpoint_every ||
	     a->audit_fsync_interval_ms != b->audit_fsync_interval_ms ||
	     a->audit_max_bytes != b->audit_max_bytes))
		log_warn(
		        "reload: audit settings changed; they take effect on restart or with a new "
		        "audit.path");
}

/* Sends a worker a one-byte command; its loop acts on it. */
static void
command(struct server *w, char cmd)
{
	if (write(w->cmd[1], &cmd, 1) != 1)
		log_error("cannot reach worker: %s", strerror(errno));
}

/* Gives a worker a reference to snap, to take at its next turn. */
static void
hand_snapshot(struct server *w, struct snapshot *snap)
{
	struct snapshot *old;

	pthread_mutex_lock(&w->mu);
	old = w->next;
	w->next = snapshot_ref(snap);
	pthread_mutex_unlock(&w->mu);
	snapshot_release(old);
	command(w, CMD_SNAPSHOT);
}

/* SIGHUP: build the new config, policy and TLS context whole; swap them in
 * only if all of it worked, else keep what is in force and say why. */
static void
reload(struct server *s)
{
	struct errlist *errs = calloc(1, sizeof(*errs));
	const struct config *old = cfg_of(s);
	struct snapshot *snap = NULL;
	struct config *cfg = NULL;
	struct policyset *policy = NULL;
	struct tls_server *tls = NULL;
	struct audit *audit = NULL;
	struct jwt_keys *keys = NULL;
	const char *was = policyset_version(snapshot_policies(s->snap));
	char why[300];
	struct err e;
	size_t i;

	if (errs == NULL) {
		log_error("reload failed: out of memory; the configuration in force is kept");
		metrics_count(s->metrics, METRICS_RELOAD_FAILED);
		(void)audit_reload(s->audit, s->config_path, was, NULL, "out of memory");
		return;
	}
	cfg = config_load(s->config_path, errs);
	if (cfg == NULL)
		goto fail;
	policy = policyset_load(cfg->policy_file, errs);
	if (tls_build(cfg, &tls, errs) == 0 && (tls == NULL) != (snapshot_tls(s->snap) == NULL))
		errlist_add(errs, cfg->file, "tls", "turning TLS on or off needs a restart");
	if (cfg->admin_listen)
		(void)admin_check_addr(cfg->admin_listen, cfg->file, errs);
	check_pin(cfg, errs);
	/* A jwks_file is read again with the rest; a jwks_url is fetched
	 * once this configuration is in force. */
	if (cfg->jwt && cfg->jwt_jwks_file)
		keys = jwks_read_file(cfg->jwt_jwks_file, cfg->file, errs);
	if (errs->n + errs->dropped > 0 || policy == NULL)
		goto fail;
	if (!same(cfg->audit_path, old->audit_path) && s->nworkers > 0) {
		errlist_add(errs, cfg->file, "audit.path",
		            "a new audit log needs a restart when workers is more than 1");
		goto fail;
	}
	if (!same(cfg->audit_path, old->audit_path)) {
		struct audit_settings as;

		err_clear(&e);
		config_audit_settings(cfg, &as);
		audit = audit_open_with(s->base, &as, &e);
		if (audit == NULL) {
			errlist_add(errs, cfg->file, "audit.path", "%s", e.message);
			goto fail;
		}
	}
	snap = snapshot_new(cfg, policy, tls);
	if (snap == NULL) {
		errlist_add(errs, cfg->file, NULL, "out of memory");
		goto fail;
	}
	tls = NULL;
	warn_restart_only(old, cfg);
	if (!same(cfg->log_path, old->log_path) && open_log(cfg->log_path, why, sizeof(why)) < 0)
		log_error("log.path: %s; the log stays where it was", why);
	if (audit) {
		s->audit_lost += audit_failures(s->audit);
		audit_free(s->audit);
		s->audit = audit;
		s->ctx->audit = audit;
		s->audit_seen = 0;
		s->audit_failing = 0;
	}
	(void)audit_reload(s->audit, cfg->file, was, policyset_version(policy), NULL);
	take_snapshot(s, snap);
	if (jwks_configure(s->jwks, cfg, keys, errs) < 0)
		log_error("reload: %s", errs->msg[0]);
	for (i = 0; i < s->nworkers; i++)
		hand_snapshot(s->workers[i], snap);
	snapshot_release(snap); /* the server and the workers hold theirs */
	log_set_level((enum log_level)log_level_parse(cfg->log_level));
	s->loaded = time(NULL);
	metrics_count(s->metrics, METRICS_RELOAD_OK);
	log_info("reloaded %s (policy %s, %s%s)", cfg->file, cfg->policy_file,
	         policyset_version(snapshot_policies(s->snap)),
	         snapshot_tls(s->snap) ? ", TLS certificate and key" : "");
	free(errs);
	return;
fail:
	for (i = 0; i < errs->n; i++)
		log_error("reload failed, the configuration in force is kept: %s", errs->msg[i]);
	if (errs->n == 0)
		log_error("reload failed, the configuration in force is kept");
	(void)audit_reload(s->audit, s->config_path, was, NULL,
	                   errs->n ? errs->msg[0] : "the configuration could not be loaded");
	metrics_count(s->metrics, METRICS_RELOAD_FAILED);
	audit_free(audit);
	tls_server_free(tls);
	jwt_keys_free(keys);
	if (snap == NULL) {
		policyset_free(policy);
		config_free(cfg);
	}
	free(errs);
}

/* Whether the folder dir could be made: its parent exists and takes it. */
static int
can_make(const char *dir)
{
	char parent[4096];
	const char *slash = strrchr(dir, '/');

	if (slash == NULL)
		return access(".", W_OK | X_OK) == 0;
	if ((size_t)(slash - dir) >= sizeof(parent))
		return 0;
	snprintf(parent, sizeof(parent), "%.*s", slash == dir ? 1 : (int)(slash - dir), dir);
	return access(parent, W_OK | X_OK) == 0;
}

/* A file the gateway will write at path: it can be (it exists and is a
 * regular file we may write, or its folder takes a new one; with
 * makes_folder, a missing folder will be made in a parent that takes it). */
static void
check_writable(const struct config *cfg, const char *path, const char *key, int makes_folder,
               struct errlist *errs)
{
	char *dir, *slash;
	struct stat st;

	if (path == NULL || *path == '\0' || strcmp(path, "-") == 0)
		return;
	if (stat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			errlist_add(errs, cfg->file, key, "%s is not a regular file", path);
		else if (access(path, W_OK) != 0)
			errlist_add(errs, cfg->file, key, "%s cannot be written: %s", path,
			            strerror(errno));
		return;
	}
	if ((dir = strdup(path)) == NULL)
		return;
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	if (access(dir, W_OK | X_OK) != 0 && !(errno == ENOENT && makes_folder && can_make(dir)))
		errlist_add(errs, cfg->file, key, "%s cannot be made: its folder %s %s", path, dir,
		            errno == ENOENT ? "does not exist" : strerror(errno));
	free(dir);
}

/* --check --online: whether the redis store answers a PING, through the
 * connection the gateway itself would use (password, TLS), within
 * store.timeout_ms. */
struct ping {
	struct event_base *base;
	int done, ok;
	char why[200];
};

static void
on_check_ping(void *arg, const redisReply *reply)
{
	struct ping *p = arg;

	p->done = 1;
	p->ok = reply && reply->type != REDIS_REPLY_ERROR;
	if (reply && reply->type == REDIS_REPLY_ERROR)
		snprintf(p->why, sizeof(p->why), "%.150s", reply->str);
	event_base_loopbreak(p->base);
}

static void
check_store_online(const struct config *cfg, struct errlist *errs)
{
	struct redis_settings rs;
	struct redis *rc = NULL;
	struct ping p = {0};
	struct timeval tv = {(time_t)(cfg->store_timeout_ms / 1000),
	                     (suseconds_t)((cfg->store_timeout_ms % 1000) * 1000)};
	const char *argv[] = {"PING"};
	struct err e;

	err_clear(&e);
	if (redis_parse_url(cfg->store_url, &rs, &e) < 0)
		return; /* reported by the config already */
	if (cfg->store_password) {
		redis_settings_clear(&rs);
		rs.password = secmem_alloc(cfg->store_password_len + 1);
		if (rs.password)
			memcpy(rs.password, cfg->store_password, cfg->store_password_len + 1);
	}
	rs.ca_file = cfg->store_ca_file;
	rs.cert_file = cfg->store_cert_file;
	rs.key_file = cfg->store_key_file;
	p.base = event_base_new();
	if (p.base)
		rc = redis_new(p.base, &rs, &e);
	if (rc && redis_command(rc, 1, argv, on_check_ping, &p)) {
		event_base_loopexit(p.base, &tv);
		event_base_dispatch(p.base);
	}
	if (!p.ok && !p.why[0] && rc && redis_last_error(rc)[0])
		snprintf(p.why, sizeof(p.why), "%s", redis_last_error(rc));
	if (!p.ok)
		errlist_add(errs, cfg->file, "store.url", "the redis store did not answer%s%s%s",
		            p.why[0] || e.status ? ": " : "", p.why,
		            e.status ? e.message
		                     : (p.done || p.why[0] ? "" : " within store.timeout_ms"));
	redis_free(rc);
	redis_settings_clear(&rs);
	if (p.base)
		event_base_free(p.base);
}

int
server_check(const char *config_path, int online, struct errlist *errs)
{
	struct tls_server *tls = NULL;
	struct config *cfg;
	struct policyset *p;
	const char *why = NULL;
	struct note_key *signer;
	size_t before = errs->n + errs->dropped;
	struct err e;

	cfg = config_load(config_path, errs);
	if (cfg == NULL)
		return -1;
	p = policyset_load(cfg->policy_file, errs);
	(void)tls_build(cfg, &tls, errs);
	check_pin(cfg, errs);
	if (cfg->admin_listen)
		(void)admin_check_addr(cfg->admin_listen, cfg->file, errs);
	/* What the start would open or write, checked now. */
	check_writable(cfg, cfg->audit_path, "audit.path", 0, errs);
	check_writable(cfg, cfg->log_path, "log.path", 0, errs);
	check_writable(cfg, cfg->pid_file, "pid_file", 0, errs);
	if (strcmp(cfg->store_type, "memory") == 0)
		check_writable(cfg, cfg->store_path, "store.path", 1, errs);
	if (spool_check_dir(cfg->spool_dir, &e) < 0)
		errlist_add(errs, cfg->file, "limits.spool_dir",
		            "%s: a large create's body cannot be set aside there", e.message);
	if (cfg->jwt && cfg->jwt_jwks_file)
		jwt_keys_free(jwks_read_file(cfg->jwt_jwks_file, cfg->file, errs));
	if (cfg->audit_signing_key_file) {
		signer = note_key_load(cfg->audit_signing_key_file, 1, NULL, &why);
		if (signer == NULL)
			errlist_add(errs, cfg->file, "audit.signing_key_file", "%s: %s",
			            cfg->audit_signing_key_file, why);
		note_key_free(signer);
	}
	/* What the store or the identity provider says is in the problem
	 * reported, not a log. */
	if (online)
		log_set_level(LOG_QUIET);
	if (online && strcmp(cfg->store_type, "redis") == 0)
		check_store_online(cfg, errs);
	if (online && cfg->jwt && cfg->jwt_jwks_url)
		jwks_check_url(cfg, errs);
	tls_server_free(tls);
	policyset_free(p);
	config_free(cfg);
	return errs->n + errs->dropped > before ? -1 : 0;
}

/* ---- accepting ---- */

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct server *s = arg;
	size_t max = (size_t)cfg_of(s)->max_connections, n = conn_total();

	(void)l;
	(void)salen;
	if (n >= max + OVERFLOW_CONNS) {
		metrics_count(s->metrics, METRICS_CONN_DROPPED);
		evutil_closesocket(fd);
		return;
	}
	if (n >= max)
		metrics_count(s->metrics, METRICS_CONN_OVER_LIMIT);
	else
		metrics_accepted(s->metrics, s->index);
	conn_accept(s->conns, fd, sa, n >= max);
}

static void
on_accept_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	log_warn("accept failed: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static struct evconnlistener *
listen_on(struct server *s, struct errlist *errs)
{
	const struct config *c = cfg_of(s);
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char addr[300];
	struct evconnlistener *l;

	snprintf(addr, sizeof(addr), "%s%s%s:%d", strchr(c->listen_host, ':') ? "[" : "",
	         c->listen_host, strchr(c->listen_host, ':') ? "]" : "", c->listen_port);
	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len) < 0) {
		errlist_add(errs, c->file, "listen", "not an IP address and port: %s", c->listen);
		return NULL;
	}
	/* Several workers each listen on the port; the kernel spreads the
	 * connections between them. */
	l = evconnlistener_new_bind(s->base, on_accept, s,
	                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                    LEV_OPT_CLOSE_ON_EXEC |
	                                    (c->workers > 1 ? LEV_OPT_REUSEABLE_PORT : 0),
	                            1024, (struct sockaddr *)&ss, len);
	if (l == NULL) {
		errlist_add(errs, c->file, "listen", "cannot listen on %s: %s", c->listen,
		            evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return NULL;
	}
	evconnlistener_set_error_cb(l, on_accept_error);
	return l;
}

/* ---- signals ---- */

/* Whether every worker's loop has ended. */
static int
workers_stopped(const struct server *s)
{
	size_t i;

	for (i = 0; i < s->nworkers; i++)
		if (!atomic_load(&s->workers[i]->stopped))
			return 0;
	return 1;
}

static size_t
loop_requests(const struct server *s)
{
	return s->ctx ? s->ctx->nlive : 0;
}

static size_t
loop_connections(const struct server *s)
{
	return s->conns ? conn_loop_count(s->conns) : 0;
}

/* Once stopping, checks every DRAIN_TICK_MS whether the last request is
 * done and Redis has taken every budget give-back; past the grace period,
 * stops what is left. The main loop ends last, since the audit log's
 * retries run on it. */
static void
on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	struct timeval tick = {0, DRAIN_TICK_MS * 1000};

	(void)fd;
	(void)what;
	if (s->conns)
		conn_loop_drain(s->conns);
	if (s->aborted) {
		if ((loop_connections(s) == 0 || s->abort_waited_ms >= ABORT_FLUSH_MS) &&
		    workers_stopped(s)) {
			event_base_loopexit(s->base, NULL);
			return;
		}
		s->abort_waited_ms += DRAIN_TICK_MS;
	} else if (loop_requests(s) == 0 && loop_connections(s) == 0 && workers_stopped(s) &&
	           (s->store == NULL || store_give_backs(s->store) == 0)) {
		event_base_loopexit(s->base, NULL);
		return;
	} else if (s->drain_waited_ms >= cfg_of(s)->shutdown_grace_ms) {
		abort_requests(s);
	} else {
		s->drain_waited_ms += DRAIN_TICK_MS;
	}
	evtimer_add(s->drain, &tick);
}

/* Stops taking connections and starts draining this loop. */
static void
drain(struct server *s)
{
	s->draining = 1;
	/* Closed rather than paused, so new connections are refused at once
	 * instead of waiting in the kernel's queue. */
	if (s->listener) {
		evconnlistener_free(s->listener);
		s->listener = NULL;
	}
	on_drain_tick(-1, 0, s);
}

static void
on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;
	size_t i;

	(void)what;
	if (s->draining) {
		if (!s->aborted) {
			log_info("signal %d again: stopping the requests left now", (int)sig);
			for (i = 0; i < s->nworkers; i++)
				command(s->workers[i], CMD_ABORT);
			abort_requests(s);
		}
		return;
	}
	log_info("signal %d: no longer accepting; finishing %zu request(s) for at most %lld ms",
	         (int)sig, atomic_load_explicit(&s->inflight, memory_order_relaxed),
	         cfg_of(s)->shutdown_grace_ms);
	for (i = 0; i < s->nworkers; i++)
		command(s->workers[i], CMD_STOP);
	drain(s);
}

/* A worker's commands from the main loop. */
static void
on_command(evutil_socket_t fd, short what, void *arg)
{
	struct server *w = arg;
	struct snapshot *snap;
	char cmds[64];
	ssize_t n, i;

	(void)what;
	while ((n = read(fd, cmds, sizeof(cmds))) > 0) {
		for (i = 0; i < n; i++) {
			switch (cmds[i]) {
			case CMD_SNAPSHOT:
				pthread_mutex_lock(&w->mu);
				snap = w->next;
				w->next = NULL;
				pthread_mutex_unlock(&w->mu);
				if (snap) {
					take_snapshot(w, snap);
					snapshot_release(snap);
				}
				break;
			case CMD_STOP:
				if (!w->draining)
					drain(w);
				break;
			case CMD_ABORT:
				if (!w->aborted)
					abort_requests(w);
				break;
			}
		}
	}
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;

	(void)sig;
	(void)what;
	if (s->draining) {
		log_info("SIGHUP while stopping: not reloading");
		return;
	}
	reload(s);
}

/* SIGUSR1: logrotate moved the log files; start new ones at their paths. */
static void
on_usr1(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;
	const struct config *c = cfg_of(s);
	char why[300];
	struct err e;

	(void)sig;
	(void)what;
	if (open_log(c->log_path, why, sizeof(why)) < 0)
		log_error("log.path: %s", why);
	err_clear(&e);
	/* The chain goes on in the new file: a checkpoint ends the old one. */
	if (audit_reopen(s->audit, &e) < 0) {
		log_error("cannot reopen the audit log, still writing the old one: %s", e.message);
		return;
	}
	s->audit_seen = audit_failures(s->audit);
	s->audit_failing = 0;
	log_info("reopened the log files");
}

static struct event *
add_signal(struct server *s, int sig, event_callback_fn fn)
{
	struct event *ev = evsignal_new(s->base, sig, fn, s);

	if (ev && evsignal_add(ev, NULL) < 0) {
		event_free(ev);
		return NULL;
	}
	return ev;
}

/* ---- workers ---- */

/* A worker's own loop and the parts that live on it; the shared ones are
 * borrowed from the main loop m. */
static struct server *
worker_new(struct server *m, struct errlist *errs)
{
	const struct config *c = cfg_of(m);
	struct upstream_settings us;
	struct server *w = calloc(1, sizeof(*w));
	struct err e;

	if (w == NULL) {
		errlist_add(errs, c->file, "workers", "out of memory");
		return NULL;
	}
	err_clear(&e);
	w->main = m;
	w->index = m->nworkers + 1;
	w->cmd[0] = w->cmd[1] = -1;
	pthread_mutex_init(&w->mu, NULL);
	w->snap = snapshot_ref(m->snap);
	w->audit = m->audit;
	w->metrics = m->metrics;
	w->base = event_base_new();
	/* Both ends non-blocking: the main loop never waits on a worker. */
	if (w->base == NULL || pipe(w->cmd) < 0 || fcntl(w->cmd[0], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(w->cmd[1], F_SETFL, O_NONBLOCK) < 0 ||
	    (w->cmd_ev = event_new(w->base, w->cmd[0], EV_READ | EV_PERSIST, on_command, w)) ==
	            NULL ||
	    event_add(w->cmd_ev, NULL) < 0 ||
	    (w->drain = evtimer_new(w->base, on_drain_tick, w)) == NULL ||
	    audit_attach(w->audit, w->base) < 0) {
		errlist_add(errs, c->file, "workers", "cannot set up a worker's event loop");
		goto fail;
	}
	config_upstream_settings(c, &us);
	w->upstream = upstream_new(w->base, &us, &e);
	if (w->upstream == NULL) {
		errlist_add(errs, c->file, "upstream", "%s", e.message);
		goto fail;
	}
	w->store = store_clone(m->store, w->base, &e);
	if (w->store == NULL) {
		errlist_add(errs, c->file, "store", "%s", e.message);
		goto fail;
	}
	if (serve_on_loop(w, errs) < 0)
		goto fail;
	w->listener = listen_on(w, errs);
	if (w->listener == NULL)
		goto fail;
	return w;
fail:
	server_free(w);
	return NULL;
}

/* workers - 1 more loops beside the main one. */
static int
add_workers(struct server *s, struct errlist *errs)
{
	size_t n = (size_t)cfg_of(s)->workers - 1;

	if (cfg_of(s)->workers_auto)
		log_info("workers \"auto\": %lld event loops, one per core this process may use",
		         cfg_of(s)->workers);
	if (n == 0)
		return 0;
	metrics_workers(s->metrics, n + 1);
	s->workers = calloc(n, sizeof(struct server *));
	if (s->workers == NULL) {
		errlist_add(errs, cfg_of(s)->file, "workers", "out of memory");
		return -1;
	}
	for (; s->nworkers < n; s->nworkers++)
		if ((s->workers[s->nworkers] = worker_new(s, errs)) == NULL)
			return -1;
	return 0;
}

/* What a loop leaves when it ends, on its own thread (own_thread) or when
 * it never ran: what is in flight is ended and answered, connections
 * close, and the parts that live on the loop go. */
static void
loop_end(struct server *s, int own_thread)
{
	if (s->listener) {
		evconnlistener_free(s->listener);
		s->listener = NULL;
	}
	if (loop_requests(s))
		abort_requests(s);
	if (own_thread || s->main == NULL) {
		conn_loop_free(s->conns);
		s->conns = NULL;
	}
	context_free(s->ctx);
	s->ctx = NULL;
	upstream_free(s->upstream);
	s->upstream = NULL;
	store_free(s->store);
	s->store = NULL;
}

static void *
worker_run(void *arg)
{
	struct server *w = arg;

	if (event_base_dispatch(w->base) < 0)
		log_error("a worker's event loop failed");
	loop_end(w, 1);
	audit_detach(w->audit, w->base);
	atomic_store(&w->stopped, 1);
	return NULL;
}

/* The signals the main loop handles are blocked in workers, so the
 * kernel delivers them to the main thread. */
static int
start_workers(struct server *s)
{
	static const int handled[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGPIPE, SIGXFSZ};
	sigset_t set, old;
	size_t i;
	int rc = 0;

	sigemptyset(&set);
	for (i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
		sigaddset(&set, handled[i]);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	for (i = 0; i < s->nworkers && rc == 0; i++) {
		if (pthread_create(&s->workers[i]->thread, NULL, worker_run, s->workers[i]) != 0)
			rc = -1;
		else
			s->workers[i]->running = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* Stops the workers still running and waits for them. */
static void
stop_workers(struct server *s)
{
	size_t i;

	for (i = 0; i < s->nworkers; i++) {
		if (!s->workers[i]->running)
			continue;
		if (!atomic_load(&s->workers[i]->stopped)) {
			command(s->workers[i], CMD_STOP);
			command(s->workers[i], CMD_ABORT);
		}
		pthread_join(s->workers[i]->thread, NULL);
		s->workers[i]->running = 0;
	}
}

/* ---- life ---- */

/*
 * Room for the descriptors the connections allowed need, two each (the
 * client's and its upstream's): the open-files limit is raised towards it
 * as far as the hard limit lets, and the kernel's descriptor table is
 * grown to it now. The kernel grows that table by doubling as higher
 * numbers are used, and in a threaded process each growth waits out an
 * RCU grace period inside the accept(2) or socket(2) that needed it:
 * 10-20 ms during which that loop's connections all wait (seen at the
 * 256th, 512th and 1024th descriptor as a burst of streams opened).
 */
static void
presize_descriptors(long long connections)
{
	rlim_t want = (rlim_t)connections * 2 + 64;
	struct rlimit rl;
	int fd, high;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur =
		        rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		if (rl.rlim_cur > was && setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_info("open-files limit raised from %llu to %llu for "
			         "limits.max_connections "
			         "%lld",
			         (unsigned long long)was, (unsigned long long)rl.rlim_cur,
			         connections);
		else
			rl.rlim_cur = was;
		if (rl.rlim_cur < want)
			log_warn("the open-files limit (%llu; hard limit %llu) is below the %llu "
			         "descriptors limits.max_connections %lld may need",
			         (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
			         (unsigned long long)want, connections);
	}
	if (rl.rlim_cur != RLIM_INFINITY && want > rl.rlim_cur)
		want = rl.rlim_cur;
	if (want < 65 || want > INT_MAX || (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		return;
	high = fcntl(fd, F_DUPFD_CLOEXEC, (int)want - 1);
	if (high >= 0)
		close(high);
	close(fd);
}

struct server *
server_new(const char *config_path, struct errlist *errs)
{
	struct upstream_settings us;
	struct audit_settings as;
	struct config *cfg = NULL;
	struct policyset *policy = NULL;
	struct tls_server *tls = NULL;
	struct server *s;
	char why[300];
	struct err e;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	err_clear(&e);
	atomic_init(&s->inflight, 0);
	s->started = time(NULL);
	s->config_path = strdup(config_path);
	s->metrics = metrics_new();
	if (s->config_path == NULL || s->metrics == NULL) {
		errlist_add(errs, config_path, NULL, "out of memory");
		goto fail;
	}
	cfg = config_load(config_path, errs);
	if (cfg == NULL)
		goto fail;
	if (open_log(cfg->log_path, why, sizeof(why)) < 0)
		errlist_add(errs, cfg->file, "log.path", "%s", why);
	log_set_level((enum log_level)log_level_parse(cfg->log_level));
	presize_descriptors(cfg->max_connections);
	policy = policyset_load(cfg->policy_file, errs);
	if (policy == NULL || tls_build(cfg, &tls, errs) < 0)
		goto fail;
	s->snap = snapshot_new(cfg, policy, tls);
	if (s->snap == NULL) {
		errlist_add(errs, config_path, NULL, "out of memory");
		goto fail;
	}
	cfg = NULL;
	policy = NULL;
	tls = NULL;
	s->loaded = time(NULL);
	s->base = event_base_new();
	if (s->base == NULL) {
		errlist_add(errs, config_path, NULL, "cannot create the event loop");
		goto fail;
	}
	config_audit_settings(cfg_of(s), &as);
	s->audit = audit_open_with(s->base, &as, &e);
	if (s->audit == NULL) {
		errlist_add(errs, config_path, "audit.path", "%s", e.message);
		goto fail;
	}
	check_pin(cfg_of(s), errs);
	if (errs->n + errs->dropped > 0)
		goto fail;
	if (cfg_of(s)->upstream_pinned_pubkey &&
	    strncmp(cfg_of(s)->upstream_base_url, "http://", 7) == 0)
		log_warn("upstream.pinned_pubkey is set but upstream.base_url is plain http://: "
		         "there is no key to pin");
	config_upstream_settings(cfg_of(s), &us);
	s->upstream = upstream_new(s->base, &us, &e);
	if (s->upstream == NULL) {
		errlist_add(errs, config_path, "upstream", "%s", e.message);
		goto fail;
	}
	s->store = store_new(s->base, cfg_of(s), &e);
	if (s->store == NULL) {
		errlist_add(errs, config_path, "store", "%s", e.message);
		goto fail;
	}
	if (cfg_of(s)->otlp_url) {
		struct otlp_settings os = {cfg_of(s)->otlp_url, cfg_of(s)->otlp_service_name,
		                           (long)cfg_of(s)->otlp_timeout_ms,
		                           (long)cfg_of(s)->otlp_flush_ms};

		if ((s->otlp = otlp_new(&os, &e)) == NULL) {
			errlist_add(errs, config_path, "telemetry", "%s", e.message);
			goto fail;
		}
	}
	/* A jwks_file must load to start; a jwks_url is fetched from now on,
	 * and tokens wait for it (503) while requests with keys are served. */
	s->jwks = jwks_new(s->base, config_path, errs);
	if (s->jwks == NULL)
		goto fail;
	if (cfg_of(s)->jwt && cfg_of(s)->jwt_jwks_file) {
		struct jwt_keys *keys = jwks_read_file(cfg_of(s)->jwt_jwks_file, config_path, errs);

		if (keys == NULL || jwks_configure(s->jwks, cfg_of(s), keys, errs) < 0)
			goto fail;
	} else if (jwks_configure(s->jwks, cfg_of(s), NULL, errs) < 0) {
		goto fail;
	}
	if (serve_on_loop(s, errs) < 0)
		goto fail;
	/* Signals first: once the port listens, a client (or an orchestrator)
	 * may already send SIGTERM, which must drain, not kill. */
	s->sigint = add_signal(s, SIGINT, on_stop_signal);
	s->sigterm = add_signal(s, SIGTERM, on_stop_signal);
	s->sighup = add_signal(s, SIGHUP, on_hup);
	s->sigusr1 = add_signal(s, SIGUSR1, on_usr1);
	s->drain = evtimer_new(s->base, on_drain_tick, s);
	if (!s->sigint || !s->sigterm || !s->sighup || !s->sigusr1 || !s->drain) {
		errlist_add(errs, config_path, NULL, "cannot set up signal handling");
		goto fail;
	}
	s->listener = listen_on(s, errs);
	if (s->listener == NULL)
		goto fail;
	if (cfg_of(s)->admin_listen) {
		struct admin_source src = {ready_of, metrics_of, s};

		s->admin = admin_new(&src, s->base, cfg_of(s)->admin_listen, cfg_of(s)->file, errs);
		if (s->admin == NULL)
			goto fail;
	}
	if (add_workers(s, errs) < 0)
		goto fail;
	if (cfg_of(s)->pid_file && write_pid_file(s, cfg_of(s)->pid_file, errs) < 0)
		goto fail;
	if (errs->n + errs->dropped > 0)
		goto fail;
	return s;
fail:
	tls_server_free(tls);
	policyset_free(policy);
	config_free(cfg);
	server_free(s);
	return NULL;
}

int
server_run(struct server *s)
{
	const struct config *c = cfg_of(s);
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
	int rc;

	log_info("listening on %s%s, forwarding to %s, policy %s (%s)", c->listen,
	         snapshot_tls(s->snap) ? " (TLS)" : "", c->upstream_base_url, c->policy_file,
	         policyset_version(snapshot_policies(s->snap)));
	if (c->admin_listen)
		log_info("admin listener (metrics, health) on %s", c->admin_listen);
	if (!(cv->features & CURL_VERSION_HTTP2))
		log_warn("libcurl %s has no HTTP/2: the upstream is reached over HTTP/1.1",
		         cv->version);
	if (start_workers(s) < 0) {
		log_error("cannot start the worker threads");
		stop_workers(s);
		return 1;
	}
	if (s->nworkers)
		log_info("%zu workers, each with its own event loop and upstream connections",
		         s->nworkers + 1);
	rc = event_base_dispatch(s->base);
	stop_workers(s);
	if (rc < 0)
		return 1;
	log_info("stopped");
	return 0;
}

/* A worker, after its thread was joined (or never started). */
static void
worker_free(struct server *w)
{
	if (!atomic_load(&w->stopped)) {
		loop_end(w, 0); /* its loop never ran: nothing is on it */
		audit_detach(w->audit, w->base);
	}
	if (w->cmd_ev)
		event_free(w->cmd_ev);
	if (w->drain)
		event_free(w->drain);
	if (w->cmd[0] >= 0)
		close(w->cmd[0]);
	if (w->cmd[1] >= 0)
		close(w->cmd[1]);
	snapshot_release(w->snap);
	snapshot_release(w->next);
	pthread_mutex_destroy(&w->mu);
	if (w->base)
		event_base_free(w->base);
	free(w);
}

void
server_free(struct server *s)
{
	size_t i;

	if (s == NULL)
		return;
	if (s->main) {
		worker_free(s);
		return;
	}
	stop_workers(s);
	for (i = 0; i < s->nworkers; i++)
		worker_free(s->workers[i]);
	free(s->workers);
	/* Whatever is still in flight is answered and audited before its
	 * connection goes. */
	loop_end(s, 1);
	admin_free(s->admin);
	if (s->sigint)
		event_free(s->sigint);
	if (s->sigterm)
		event_free(s->sigterm);
	if (s->sighup)
		event_free(s->sighup);
	if (s->sigusr1)
		event_free(s->sigusr1);
	if (s->drain)
		event_free(s->drain);
	/* Spans of the last requests go out before the exit. */
	otlp_free(s->otlp);
	jwks_free(s->jwks);
	audit_free(s->audit);
	if (s->pid_file) {
		(void)unlink(s->pid_file);
		free(s->pid_file);
	}
	snapshot_release(s->snap);
	metrics_free(s->metrics);
	free(s->config_path);
	if (s->base)
		event_base_free(s->base);
	free(s);
}
