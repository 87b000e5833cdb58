#include "app/jwks.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/config.h"
#include "http/upstream.h"
#include "lib/log.h"
#include "policy/jwt.h"

#define FETCH_TIMEOUT_MS   10000
#define CONNECT_TIMEOUT_MS 5000
/* After a failed fetch: 1 s, doubling to a minute (or refresh_ms). */
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000

struct jwks_set {
	atomic_ulong refs;
	struct jwt_keys *keys;
};

struct jwks {
	struct event_base *base;
	pthread_mutex_t mu; /* guards set */
	struct jwks_set *set;
	atomic_int needed;   /* auth.jwt is on */
	atomic_int from_url; /* the keys are fetched: a kick means a fetch */
	atomic_llong kicked; /* when an unknown kid last asked for a fetch */
	int kick[2];         /* a byte per kick, to the main loop */
	struct event *kick_ev, *timer;

	/* The main loop's alone. */
	char *url, *ca_file;
	long long refresh_ms, retry_ms;
	struct upstream *fetcher;
	struct upstream_call *call;
};

static void
set_release(struct jwks_set *s)
{
	if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) > 1)
		return;
	jwt_keys_free(s->keys);
	free(s);
}

/* Puts keys (taken; NULL: none) in force for requests starting now. */
static int
swap(struct jwks *j, struct jwt_keys *keys)
{
	struct jwks_set *s = NULL, *old;

	if (keys && (s = calloc(1, sizeof(*s))) == NULL) {
		jwt_keys_free(keys);
		return -1;
	}
	if (s) {
		atomic_init(&s->refs, 1);
		s->keys = keys;
	}
	pthread_mutex_lock(&j->mu);
	old = j->set;
	j->set = s;
	pthread_mutex_unlock(&j->mu);
	set_release(old); /* requests verifying with it keep it alive */
	return 0;
}

static void
schedule(struct jwks *j, long long ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};

	evtimer_add(j->timer, &tv);
}

/* Tries again after a failure, sooner than a refresh. */
static void
retry_later(struct jwks *j, const char *why)
{
	j->retry_ms = j->retry_ms ? j->retry_ms * 2 : RETRY_MIN_MS;
	if (j->retry_ms > RETRY_MAX_MS)
		j->retry_ms = RETRY_MAX_MS;
	if (j->retry_ms > j->refresh_ms)
		j->retry_ms = j->refresh_ms;
	log_warn("auth.jwt: cannot use the JWKS at %s: %s; %s; trying again in %lld ms", j->url,
	         why,
	         jwks_ready(j) ? "the keys in force are kept" : "tokens are refused until then",
	         j->retry_ms);
	schedule(j, j->retry_ms);
}

static void
on_fetched(const struct upstream_res *res, void *arg)
{
	struct jwks *j = arg;
	struct jwt_keys *keys;
	char why[ERR_MESSAGE_MAX + 64];
	struct err e;
	size_t n;

	j->call = NULL;
	if (res->failure != UPSTREAM_OK) {
		snprintf(why, sizeof(why), "%s", res->error ? res->error : "no answer");
		retry_later(j, why);
		return;
	}
	if (res->status != 200) {
		snprintf(why, sizeof(why), "it answered %d", res->status);
		retry_later(j, why);
		return;
	}
	if ((keys = jwt_keys_new(res->body, res->len, &e)) == NULL) {
		retry_later(j, e.message);
		return;
	}
	n = jwt_keys_count(keys);
	log_info("auth.jwt: %zu key(s) in force from %s (%zu skipped)", n, j->url,
	         jwt_keys_skipped(keys));
	if (swap(j, keys) < 0) {
		retry_later(j, "out of memory");
		return;
	}
	j->retry_ms = 0;
	schedule(j, j->refresh_ms);
}

/* Fetches the URL now, unless a fetch is under way. */
static void
fetch(struct jwks *j)
{
	static const char *const headers[] = {"Accept: application/json",
	                                      "User-Agent: containers-gateway/" GW_VERSION};
	struct upstream_req req = {.method = "GET", .path = "", .headers = headers, .nheaders = 2};
	struct err e;

	if (j->fetcher == NULL || j->call)
		return;
	err_clear(&e);
	j->call = upstream_start(j->fetcher, &req, on_fetched, j, &e);
	if (j->call == NULL)
		retry_later(j, e.message);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	fetch(arg);
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	char buf[64];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	fetch(arg);
}

/* No more fetching: the call under way is abandoned. */
static void
stop_fetching(struct jwks *j)
{
	atomic_store(&j->from_url, 0);
	upstream_cancel(j->call);
	j->call = NULL;
	upstream_free(j->fetcher);
	j->fetcher = NULL;
	free(j->url);
	free(j->ca_file);
	j->url = j->ca_file = NULL;
	j->retry_ms = 0;
	if (j->timer)
		evtimer_del(j->timer);
}

struct jwks *
jwks_new(struct event_base *base, const char *file, struct errlist *errs)
{
	struct jwks *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		errlist_add(errs, file, "auth.jwt", "out of memory");
		return NULL;
	}
	j->base = base;
	j->kick[0] = j->kick[1] = -1;
	pthread_mutex_init(&j->mu, NULL);
	atomic_init(&j->needed, 0);
	atomic_init(&j->from_url, 0);
	atomic_init(&j->kicked, 0);
	/* Both ends non-blocking: a worker never waits to ask. */
	if (pipe(j->kick) < 0 || fcntl(j->kick[0], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(j->kick[1], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(j->kick[0], F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(j->kick[1], F_SETFD, FD_CLOEXEC) < 0 ||
	    (j->kick_ev = event_new(base, j->kick[0], EV_READ | EV_PERSIST, on_kick, j)) == NULL ||
	    event_add(j->kick_ev, NULL) < 0 ||
	    (j->timer = evtimer_new(base, on_timer, j)) == NULL) {
		errlist_add(errs, file, "auth.jwt", "cannot set up the JWKS fetcher: %s",
		            strerror(errno));
		jwks_free(j);
		return NULL;
	}
	return j;
}

void
jwks_free(struct jwks *j)
{
	if (j == NULL)
		return;
	stop_fetching(j);
	swap(j, NULL);
	if (j->kick_ev)
		event_free(j->kick_ev);
	if (j->timer)
		event_free(j->timer);
	if (j->kick[0] >= 0)
		close(j->kick[0]);
	if (j->kick[1] >= 0)
		close(j->kick[1]);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

struct jwt_keys *
jwks_read_file(const char *path, const char *cfg_file, struct errlist *errs)
{
	struct jwt_keys *keys = NULL;
	char *text = NULL;
	struct stat st;
	struct err e;
	ssize_t got;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0 || fstat(fd, &st) < 0) {
		errlist_add(errs, cfg_file, "auth.jwt.jwks_file", "cannot read %s: %s", path,
		            strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > JWT_JWKS_MAX_SIZE) {
		errlist_add(errs, cfg_file, "auth.jwt.jwks_file",
		            "%s must be a regular file of at most %d bytes", path,
		            JWT_JWKS_MAX_SIZE);
		goto done;
	}
	text = malloc((size_t)st.st_size + 1);
	while (text && len < (size_t)st.st_size &&
	       (got = read(fd, text + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)got;
	if (text == NULL || len != (size_t)st.st_size) {
		errlist_add(errs, cfg_file, "auth.jwt.jwks_file", "cannot read %s", path);
		goto done;
	}
	if ((keys = jwt_keys_new(text, len, &e)) == NULL)
		errlist_add(errs, cfg_file, "auth.jwt.jwks_file", "%s: %s", path, e.message);
done:
	if (fd >= 0)
		close(fd);
	free(text);
	return keys;
}

/* The fetcher's settings for cfg's jwks_url. */
static void
fetch_settings(const struct config *cfg, struct upstream_settings *us)
{
	memset(us, 0, sizeof(*us));
	us->base_url = cfg->jwt_jwks_url;
	us->timeout_ms = FETCH_TIMEOUT_MS;
	us->connect_timeout_ms = CONNECT_TIMEOUT_MS;
	us->max_response_bytes = JWT_JWKS_MAX_SIZE;
	us->max_idle_connections = 1;
	us->max_inflight = 1;
	us->ca_file = cfg->jwt_ca_file;
}

struct url_check {
	struct event_base *base;
	int done;
	char why[ERR_MESSAGE_MAX + 64];
};

static void
on_checked(const struct upstream_res *res, void *arg)
{
	struct url_check *c = arg;
	struct jwt_keys *keys;
	struct err e;

	c->done = 1;
	if (res->failure != UPSTREAM_OK)
		snprintf(c->why, sizeof(c->why), "%s", res->error ? res->error : "no answer");
	else if (res->status != 200)
		snprintf(c->why, sizeof(c->why), "it answered %d", res->status);
	else if ((keys = jwt_keys_new(res->body, res->len, &e)) == NULL)
		snprintf(c->why, sizeof(c->why), "%s", e.message);
	else
		jwt_keys_free(keys);
	event_base_loopbreak(c->base);
}

void
jwks_check_url(const struct config *cfg, struct errlist *errs)
{
	static const char *const headers[] = {"Accept: application/json",
	                                      "User-Agent: containers-gateway/" GW_VERSION};
	struct upstream_req req = {.method = "GET", .path = "", .headers = headers, .nheaders = 2};
	struct upstream_settings us;
	struct upstream *u = NULL;
	struct upstream_call *call = NULL;
	struct url_check c = {0};
	struct err e;

	err_clear(&e);
	fetch_settings(cfg, &us);
	c.base = event_base_new();
	if (c.base != NULL && (u = upstream_new(c.base, &us, &e)) != NULL)
		call = upstream_start(u, &req, on_checked, &c, &e);
	if (call != NULL)
		while (!c.done && event_base_dispatch(c.base) == 0)
			;
	if (call == NULL)
		snprintf(c.why, sizeof(c.why), "%s", e.status ? e.message : "out of memory");
	else if (!c.done)
		snprintf(c.why, sizeof(c.why), "no answer");
	if (c.why[0])
		errlist_add(errs, cfg->file, "auth.jwt.jwks_url", "no usable key set at %s: %s",
		            cfg->jwt_jwks_url, c.why);
	upstream_free(u);
	if (c.base != NULL)
		event_base_free(c.base);
}

static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* Fetches from cfg's jwks_url from now on. */
static int
fetch_from(struct jwks *j, const struct config *cfg, struct errlist *errs)
{
	struct upstream_settings us;
	struct err e;

	stop_fetching(j);
	swap(j, NULL); /* keys from elsewhere vouch for nothing here */
	fetch_settings(cfg, &us);
	err_clear(&e);
	j->url = strdup(cfg->jwt_jwks_url);
	j->ca_file = cfg->jwt_ca_file ? strdup(cfg->jwt_ca_file) : NULL;
	if (j->url == NULL || (cfg->jwt_ca_file && j->ca_file == NULL) ||
	    (j->fetcher = upstream_new(j->base, &us, &e)) == NULL) {
		errlist_add(errs, cfg->file, "auth.jwt.jwks_url", "cannot set up the fetcher: %s",
		            e.status ? e.message : "out of memory");
		stop_fetching(j);
		return -1;
	}
	atomic_store(&j->from_url, 1);
	fetch(j);
	return 0;
}

int
jwks_configure(struct jwks *j, const struct config *cfg, struct jwt_keys *keys,
               struct errlist *errs)
{
	atomic_store(&j->needed, cfg->jwt);
	if (!cfg->jwt || cfg->jwt_jwks_file) {
		stop_fetching(j);
		if (swap(j, cfg->jwt ? keys : NULL) < 0) {
			errlist_add(errs, cfg->file, "auth.jwt", "out of memory");
			return -1;
		}
		if (!cfg->jwt)
			jwt_keys_free(keys);
		return 0;
	}
	jwt_keys_free(keys);
	j->refresh_ms = cfg->jwt_refresh_ms;
	if (j->fetcher && same(j->url, cfg->jwt_jwks_url) && same(j->ca_file, cfg->jwt_ca_file))
		return 0; /* the next refresh is on its way */
	return fetch_from(j, cfg, errs);
}

struct jwks_set *
jwks_get(struct jwks *j)
{
	struct jwks_set *s;

	if (j == NULL)
		return NULL;
	pthread_mutex_lock(&j->mu);
	s = j->set;
	if (s)
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&j->mu);
	return s;
}

const struct jwt_keys *
jwks_set_keys(const struct jwks_set *s)
{
	return s->keys;
}

void
jwks_set_release(struct jwks_set *s)
{
	set_release(s);
}

void
jwks_want_refresh(struct jwks *j)
{
	long long now = (long long)time(NULL), last;

	if (j == NULL || !atomic_load(&j->from_url))
		return;
	last = atomic_load(&j->kicked);
	if (now - last < JWKS_KICK_S || !atomic_compare_exchange_strong(&j->kicked, &last, now))
		return;
	if (write(j->kick[1], "k", 1) != 1)
		log_warn("auth.jwt: cannot ask for a new JWKS: %s", strerror(errno));
}

int
jwks_ready(struct jwks *j)
{
	int ready;

	if (j == NULL || !atomic_load(&j->needed))
		return 1;
	pthread_mutex_lock(&j->mu);
	ready = j->set != NULL;
	pthread_mutex_unlock(&j->mu);
	return ready;
}
