#include "audit/anchor.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/note.h"
#include "lib/log.h"

#define ANSWER_MAX     65536 /* a witness's answer */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000

enum { WITNESS, REDIS, NDEST };

/* Where checkpoints go, and the newest one waiting for it. */
struct dest {
	int on;
	char *note;
	size_t len;
	long long due_ms;
	long backoff_ms;
	int final_done; /* tried once more after the stop */
};

/* A cosigned note on its way back to the loop. */
struct result {
	struct result *next;
	char *note;
	size_t len;
};

struct anchor {
	char *witness_url;
	char *redis_host;
	int redis_port, redis_db;
	char *redis_key;
	long timeout_ms;
	anchor_cosigned_fn cosigned;
	void *arg;

	pthread_t thread;
	int running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct dest dest[NDEST];
	struct result *results, **results_tail;
	int stop;
	atomic_ulong failures;

	int wake[2];
	struct event *wake_ev;

	/* The thread's own. */
	CURL *curl;
	redisContext *redis;
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the witness ---------------------------------------------------------- */

struct answer {
	char *text;
	size_t len;
	int too_big;
};

static size_t
on_answer(char *data, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = size * n;
	char *p;

	if (a->len + len > ANSWER_MAX) {
		a->too_big = 1;
		return 0;
	}
	p = realloc(a->text, a->len + len + 1);
	if (p == NULL)
		return 0;
	memcpy(p + a->len, data, len);
	a->text = p;
	a->len += len;
	p[a->len] = '\0';
	return len;
}

/* POSTs the note; on a 2xx answer, *cosigned gets the note with the
 * witness's signature lines, if it sent some. 0 or -1 (why filled). */
static int
post_witness(struct anchor *an, const char *note, size_t len, char **cosigned, size_t *cosigned_len,
             char *why, size_t n)
{
	struct curl_slist *headers = NULL;
	struct answer a = {NULL, 0, 0};
	long status = 0;
	CURLcode rc;
	int ok = -1;

	*cosigned = NULL;
	if (an->curl == NULL && (an->curl = curl_easy_init()) == NULL) {
		snprintf(why, n, "cannot set up an HTTP client");
		return -1;
	}
	curl_easy_reset(an->curl);
	headers = curl_slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
	curl_easy_setopt(an->curl, CURLOPT_URL, an->witness_url);
	curl_easy_setopt(an->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(an->curl, CURLOPT_POSTFIELDS, note);
	curl_easy_setopt(an->curl, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(an->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(an->curl, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(an->curl, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(an->curl, CURLOPT_TIMEOUT_MS, an->timeout_ms);
	curl_easy_setopt(an->curl, CURLOPT_CONNECTTIMEOUT_MS, an->timeout_ms);
	curl_easy_setopt(an->curl, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(an->curl);
	curl_slist_free_all(headers);
	if (rc != CURLE_OK) {
		snprintf(why, n, "%s",
		         a.too_big ? "its answer is too large" : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(an->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		snprintf(why, n, "it answered HTTP %ld", status);
		goto out;
	}
	ok = 0;
	if (a.len == 0)
		goto out;
	if (!note_signature_lines(a.text, a.len)) {
		log_warn("audit: the witness took the checkpoint but its answer holds no signature "
		         "lines; nothing is appended");
		goto out;
	}
	if (len + a.len < NOTE_MAX && (*cosigned = malloc(len + a.len + 1)) != NULL) {
		memcpy(*cosigned, note, len);
		memcpy(*cosigned + len, a.text, a.len);
		(*cosigned)[len + a.len] = '\0';
		*cosigned_len = len + a.len;
	}
out:
	free(a.text);
	return ok;
}

/* --- Redis ------------------------------------------------------------------ */

/* "redis://host[:port][/db]". */
static int
parse_redis_url(struct anchor *an, const char *url)
{
	const char *p, *host, *colon, *slash;
	char *end;
	long v;

	if (strncmp(url, "redis://", 8) != 0)
		return -1;
	host = url + 8;
	slash = strchr(host, '/');
	colon = memchr(host, ':', slash ? (size_t)(slash - host) : strlen(host));
	p = colon ? colon : slash ? slash : host + strlen(host);
	if (p == host || (an->redis_host = strndup(host, (size_t)(p - host))) == NULL)
		return -1;
	an->redis_port = 6379;
	if (colon) {
		v = strtol(colon + 1, &end, 10);
		if (end == colon + 1 || v < 1 || v > 65535 || (*end != '\0' && *end != '/'))
			return -1;
		an->redis_port = (int)v;
	}
	if (slash && slash[1] != '\0') {
		v = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end != '\0' || v < 0 || v > 1000000)
			return -1;
		an->redis_db = (int)v;
	}
	return 0;
}

static int
redis_ok(redisReply *r, char *why, size_t n)
{
	int ok = r && r->type != REDIS_REPLY_ERROR;

	if (!ok)
		snprintf(why, n, "%s", r && r->str ? r->str : "no answer");
	freeReplyObject(r);
	return ok;
}

static int
push_redis(struct anchor *an, const char *note, size_t len, char *why, size_t n)
{
	struct timeval tv = {an->timeout_ms / 1000, (an->timeout_ms % 1000) * 1000};

	if (an->redis == NULL) {
		an->redis = redisConnectWithTimeout(an->redis_host, an->redis_port, tv);
		if (an->redis == NULL || an->redis->err) {
			snprintf(why, n, "cannot connect: %s",
			         an->redis ? an->redis->errstr : "out of memory");
			goto fail;
		}
		if (redisSetTimeout(an->redis, tv) != REDIS_OK ||
		    (an->redis_db &&
		     !redis_ok(redisCommand(an->redis, "SELECT %d", an->redis_db), why, n)))
			goto fail;
	}
	if (redis_ok(redisCommand(an->redis, "RPUSH %s %b", an->redis_key, note, len), why, n))
		return 0;
	if (an->redis->err)
		snprintf(why, n, "%s", an->redis->errstr);
fail:
	/* Connect afresh next time. */
	redisFree(an->redis);
	an->redis = NULL;
	return -1;
}

/* --- the thread ------------------------------------------------------------- */

/* Wakes the loop for the results (mu held). */
static void
hand_back(struct anchor *an, char *note, size_t len)
{
	struct result *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		free(note);
		return;
	}
	r->note = note;
	r->len = len;
	*an->results_tail = r;
	an->results_tail = &r->next;
	if (an->wake[1] >= 0)
		(void)!write(an->wake[1], "x", 1);
}

/* The destination due first (or, once stopping, not yet tried again). */
static struct dest *
next_due(struct anchor *an, long long now, long long *wait_until)
{
	int i;

	*wait_until = -1;
	for (i = 0; i < NDEST; i++) {
		struct dest *d = &an->dest[i];

		if (!d->on || d->note == NULL)
			continue;
		if (an->stop ? !d->final_done : d->due_ms <= now)
			return d;
		if (!an->stop && (*wait_until < 0 || d->due_ms < *wait_until))
			*wait_until = d->due_ms;
	}
	return NULL;
}

static void
wait_until(struct anchor *an, long long until)
{
	struct timespec ts;

	if (until < 0) {
		pthread_cond_wait(&an->cv, &an->mu);
		return;
	}
	ts.tv_sec = (time_t)(until / 1000);
	ts.tv_nsec = (long)(until % 1000) * 1000000L;
	(void)pthread_cond_timedwait(&an->cv, &an->mu, &ts);
}

static void *
run(void *arg)
{
	struct anchor *an = arg;
	char why[256], *note, *cosigned;
	size_t len, cosigned_len = 0;
	struct dest *d;
	long long until;
	int which, rc;

	pthread_mutex_lock(&an->mu);
	for (;;) {
		d = next_due(an, now_ms(), &until);
		if (d == NULL) {
			if (an->stop)
				break;
			wait_until(an, until);
			continue;
		}
		which = (int)(d - an->dest);
		note = d->note;
		len = d->len;
		d->note = NULL;
		if (an->stop)
			d->final_done = 1;
		pthread_mutex_unlock(&an->mu);

		why[0] = '\0';
		cosigned = NULL;
		rc = which == WITNESS ? post_witness(an, note, len, &cosigned, &cosigned_len, why,
		                                     sizeof(why))
		                      : push_redis(an, note, len, why, sizeof(why));

		pthread_mutex_lock(&an->mu);
		if (rc == 0) {
			d->backoff_ms = 0;
			free(note);
			if (cosigned)
				hand_back(an, cosigned, cosigned_len);
			continue;
		}
		an->failures++;
		d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : BACKOFF_MIN_MS;
		if (d->backoff_ms > BACKOFF_MAX_MS)
			d->backoff_ms = BACKOFF_MAX_MS;
		d->due_ms = now_ms() + d->backoff_ms;
		log_error("audit: the %s did not take the checkpoint: %s; trying again in %ld s",
		          which == WITNESS ? "witness (audit.witness_url)"
		                           : "anchor (audit.anchor)",
		          why, d->backoff_ms / 1000);
		/* Kept to try again, unless a newer one came meanwhile. */
		if (d->note == NULL && !d->final_done) {
			d->note = note;
			d->len = len;
		} else {
			free(note);
		}
	}
	pthread_mutex_unlock(&an->mu);
	if (an->curl)
		curl_easy_cleanup(an->curl);
	redisFree(an->redis);
	return NULL;
}

/* Hands the cosigned notes to the callback, in order. */
static void
run_results(struct anchor *an)
{
	struct result *r, *next;
	char buf[64];

	if (an->wake[0] >= 0)
		while (read(an->wake[0], buf, sizeof(buf)) > 0)
			;
	pthread_mutex_lock(&an->mu);
	r = an->results;
	an->results = NULL;
	an->results_tail = &an->results;
	pthread_mutex_unlock(&an->mu);
	for (; r; r = next) {
		next = r->next;
		an->cosigned(an->arg, r->note, r->len);
		free(r->note);
		free(r);
	}
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_results(arg);
}

struct anchor *
anchor_new(struct event_base *base, const struct anchor_settings *s, anchor_cosigned_fn cosigned,
           void *arg, struct err *e)
{
	struct anchor *an = calloc(1, sizeof(*an));
	pthread_condattr_t ca;
	size_t keylen;

	if (an == NULL) {
		err_set(e, 500, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
		return NULL;
	}
	an->wake[0] = an->wake[1] = -1;
	an->results_tail = &an->results;
	an->cosigned = cosigned;
	an->arg = arg;
	an->timeout_ms = s->timeout_ms > 0 ? s->timeout_ms : 5000;
	pthread_mutex_init(&an->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&an->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (s->witness_url) {
		an->dest[WITNESS].on = 1;
		if ((an->witness_url = strdup(s->witness_url)) == NULL)
			goto nomem;
	}
	if (s->redis_url) {
		an->dest[REDIS].on = 1;
		if (parse_redis_url(an, s->redis_url) < 0) {
			err_set(e, 500, ERR_INTERNAL, "audit_anchor", NULL,
			        "audit.anchor must be \"redis://host[:port][/db]\"");
			goto fail;
		}
		keylen = strlen("gateway:audit:checkpoints:") + strlen(s->origin) + 1;
		if ((an->redis_key = malloc(keylen)) == NULL)
			goto nomem;
		snprintf(an->redis_key, keylen, "gateway:audit:checkpoints:%s", s->origin);
	}
	if (base) {
		if (pipe(an->wake) < 0 || fcntl(an->wake[0], F_SETFL, O_NONBLOCK) < 0 ||
		    fcntl(an->wake[1], F_SETFL, O_NONBLOCK) < 0 ||
		    (an->wake_ev = event_new(base, an->wake[0], EV_READ | EV_PERSIST, on_wake,
		                             an)) == NULL ||
		    event_add(an->wake_ev, NULL) < 0) {
			err_set(e, 500, ERR_INTERNAL, "audit_anchor", NULL,
			        "cannot set up the checkpoint shipping: %s", strerror(errno));
			goto fail;
		}
	}
	if (pthread_create(&an->thread, NULL, run, an) != 0) {
		err_set(e, 500, ERR_INTERNAL, "audit_anchor", NULL,
		        "cannot start the checkpoint shipping thread");
		goto fail;
	}
	an->running = 1;
	return an;
nomem:
	err_set(e, 500, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
fail:
	anchor_free(an);
	return NULL;
}

void
anchor_free(struct anchor *an)
{
	int i;

	if (an == NULL)
		return;
	if (an->running) {
		pthread_mutex_lock(&an->mu);
		an->stop = 1;
		pthread_cond_signal(&an->cv);
		pthread_mutex_unlock(&an->mu);
		pthread_join(an->thread, NULL);
	}
	run_results(an);
	if (an->wake_ev)
		event_free(an->wake_ev);
	if (an->wake[0] >= 0)
		close(an->wake[0]);
	if (an->wake[1] >= 0)
		close(an->wake[1]);
	for (i = 0; i < NDEST; i++)
		free(an->dest[i].note);
	pthread_mutex_destroy(&an->mu);
	pthread_cond_destroy(&an->cv);
	free(an->witness_url);
	free(an->redis_host);
	free(an->redis_key);
	free(an);
}

void
anchor_ship(struct anchor *an, const char *note, size_t len)
{
	int i;

	pthread_mutex_lock(&an->mu);
	for (i = 0; i < NDEST; i++) {
		struct dest *d = &an->dest[i];
		char *copy;

		if (!d->on || (copy = malloc(len + 1)) == NULL)
			continue;
		memcpy(copy, note, len);
		copy[len] = '\0';
		free(d->note);
		d->note = copy;
		d->len = len;
		/* While it fails, the wait between attempts stands. */
		if (d->backoff_ms == 0)
			d->due_ms = 0;
	}
	pthread_cond_signal(&an->cv);
	pthread_mutex_unlock(&an->mu);
}

unsigned long
anchor_failures(const struct anchor *an)
{
	return an->failures;
}
