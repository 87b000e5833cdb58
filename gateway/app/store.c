#include "app/store.h"

#include <errno.h>
#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* hiredis's libevent adapter is a header of static functions. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <hiredis/adapters/libevent.h>
#pragma GCC diagnostic pop

#include "app/config.h"
#include "lib/log.h"

#define KEY_MAX      256
#define RECONNECT_MS 1000
/* A live set is kept this long after it last changed (30 days): its
 * members leave when they are deleted or found gone, not by a timer. */
#define LIVE_TTL_MS "2592000000"

/* One fixed window per key: INCR, and the window's clock starts with the
 * first hit. Over the limit, the window's remaining time is returned. */
static const char lua_hit[] =
        "local n = redis.call('INCR', KEYS[1]) "
        "if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "
        "if n > tonumber(ARGV[1]) then "
        "  local ttl = redis.call('PTTL', KEYS[1]) "
        "  if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) ttl = tonumber(ARGV[2]) end "
        "  return {0, ttl} "
        "end "
        "return {1, 0}";

/* A slot in a live set, taken only if one is free, in one step so two
 * replicas cannot both take the last one. A pending member (a create not
 * yet answered) counts until its hold runs out; a container counts until
 * it is removed, whatever its expiry hint says. ARGV: now, max, member,
 * expires_at. */
static const char lua_reserve[] =
        "for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do "
        "  if string.sub(m, 1, 8) == 'pending:' then redis.call('ZREM', KEYS[1], m) end "
        "end "
        "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then "
        "  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES') "
        "  local wait = 1000 "
        "  if first[2] then wait = math.max(1000, tonumber(first[2]) - tonumber(ARGV[1])) end "
        "  return {0, wait} "
        "end "
        "redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3]) "
        "redis.call('PEXPIRE', KEYS[1], " LIVE_TTL_MS ") "
        "return {1, 0}";

/* The containers of a live set whose expiry hint has passed, at most
 * ARGV[2] of them. ARGV: now, max. */
static const char lua_stale[] =
        "local out = {} "
        "for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do "
        "  if string.sub(m, 1, 8) ~= 'pending:' then "
        "    out[#out + 1] = m "
        "    if #out >= tonumber(ARGV[2]) then break end "
        "  end "
        "end "
        "return out";

/* ARGV: from, to ("" to remove only), expires_at. */
static const char lua_settle[] =
        "redis.call('ZREM', KEYS[1], ARGV[1]) "
        "if ARGV[2] ~= '' then redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2]) end "
        "return 1";

enum op_kind { OP_COUNT, OP_GET, OP_DONE, OP_MGET, OP_LIST };

struct store_op {
	struct store *s;
	enum op_kind kind;
	store_count_fn count_fn;
	store_get_fn get_fn;
	store_done_fn done_fn;
	store_mget_fn mget_fn;
	void *arg;
	struct event *timer; /* the answer's deferral, or its timeout */
	int cancelled;       /* the caller no longer wants the answer */
	int answered;        /* the callback ran (or will not) */
	int in_flight;       /* hiredis still holds this op */

	enum store_status st;
	int allowed;
	long long retry_ms;
	char *value;
	char **values; /* OP_MGET */
	size_t nvalues;
	size_t max; /* OP_LIST: the most values kept */
};

/* memory: counters {key: [count, window_end]}, live sets {key: {member:
 * expires}}, values {key: [value, expires]}. Shared by the stores of
 * every worker, so a lock is held while they are read or changed. */
struct store_mem {
	pthread_mutex_t mu;
	atomic_int refs;
	json_t *counters, *sets, *values;
};

struct store {
	struct event_base *base;
	int redis;
	long long timeout_ms;
	struct store_mem *mem;

	/* redis */
	redisAsyncContext *ac;
	char host[256];
	int port, db;
	int connected;
	long long next_connect_ms;
	int reachable;
};

long long
store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
store_reachable(const struct store *s)
{
	return !s->redis || s->reachable;
}

static void
op_free(struct store_op *op)
{
	size_t i;

	if (op->timer)
		event_free(op->timer);
	free(op->value);
	for (i = 0; op->values && i < op->nvalues; i++)
		free(op->values[i]);
	free(op->values);
	free(op);
}

/* Runs the caller's callback once, unless cancelled. */
static void
answer(struct store_op *op)
{
	if (op->answered)
		return;
	op->answered = 1;
	if (op->cancelled)
		return;
	switch (op->kind) {
	case OP_COUNT:
		op->count_fn(op->arg, op->st, op->allowed, op->retry_ms);
		break;
	case OP_GET:
		op->get_fn(op->arg, op->st, op->value);
		break;
	case OP_MGET:
	case OP_LIST:
		op->mget_fn(op->arg, op->st, op->values, op->nvalues);
		break;
	default:
		if (op->done_fn)
			op->done_fn(op->arg, op->st);
		break;
	}
}

static void
on_op_timer(evutil_socket_t fd, short what, void *arg)
{
	struct store_op *op = arg;

	(void)fd;
	(void)what;
	if (op->in_flight && !op->answered) {
		/* Redis did not answer in time: treat it as unavailable; the late
		 * reply, if any, is dropped. */
		op->st = STORE_UNAVAILABLE;
		op->s->reachable = 0;
		answer(op);
		return;
	}
	answer(op);
	if (!op->in_flight)
		op_free(op);
}

static struct store_op *
op_new(struct store *s, enum op_kind kind, void *fn, void *arg)
{
	struct store_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		return NULL;
	op->s = s;
	op->kind = kind;
	op->arg = arg;
	if (kind == OP_COUNT)
		op->count_fn = (store_count_fn)fn;
	else if (kind == OP_GET)
		op->get_fn = (store_get_fn)fn;
	else if (kind == OP_MGET || kind == OP_LIST)
		op->mget_fn = (store_mget_fn)fn;
	else
		op->done_fn = (store_done_fn)fn;
	op->timer = evtimer_new(s->base, on_op_timer, op);
	if (op->timer == NULL) {
		free(op);
		return NULL;
	}
	return op;
}

/* The answer goes out from the loop, not from inside the call. */
static struct store_op *
defer(struct store_op *op, long long ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

	evtimer_add(op->timer, &tv);
	return op;
}

void
store_cancel(struct store_op *op)
{
	if (op == NULL)
		return;
	op->cancelled = 1;
	if (op->in_flight) {
		if (!op->answered)
			evtimer_del(op->timer);
		op->answered = 1;
		return; /* freed when hiredis lets go of it */
	}
	op_free(op);
}

/* --- memory ------------------------------------------------------------ */

static void
mem_hit(struct store *s, struct store_op *op, const char *key, long long limit, long long window_ms)
{
	long long now = store_now_ms(), n = 0, end = 0;
	json_t *c = json_object_get(s->mem->counters, key);

	if (c) {
		n = json_integer_value(json_array_get(c, 0));
		end = json_integer_value(json_array_get(c, 1));
	}
	if (c == NULL || end <= now) {
		n = 0;
		end = now + window_ms;
	}
	n++;
	json_object_set_new(s->mem->counters, key,
	                    json_pack("[I,I]", (json_int_t)n, (json_int_t)end));
	op->allowed = n <= limit;
	op->retry_ms = op->allowed ? 0 : end - now;
}

static int
pending(const char *member)
{
	return strncmp(member, "pending:", 8) == 0;
}

/* Drops a live set's pending members whose hold ran out; returns the set.
 * Containers stay until they are removed (see lua_reserve). */
static json_t *
mem_live(struct store *s, const char *key, long long now)
{
	json_t *set = json_object_get(s->mem->sets, key), *v;
	const char *m;
	void *tmp;

	if (set == NULL) {
		json_object_set_new(s->mem->sets, key, json_object());
		return json_object_get(s->mem->sets, key);
	}
	json_object_foreach_safe(set, tmp, m, v)
	{
		if (pending(m) && json_integer_value(v) <= now)
			json_object_del(set, m);
	}
	return set;
}

/* The value of one key in memory, expired ones dropped; borrowed. */
static const char *
mem_value(struct store *s, const char *key)
{
	json_t *v = json_object_get(s->mem->values, key);

	if (v && json_integer_value(json_array_get(v, 1)) > store_now_ms())
		return json_string_value(json_array_get(v, 0));
	if (v)
		json_object_del(s->mem->values, key);
	return NULL;
}

/* --- redis ------------------------------------------------------------- */

static void redis_connect(struct store *s);

static void
on_redis_connect(const redisAsyncContext *ac, int status)
{
	struct store *s = ac->data;

	if (status != REDIS_OK) {
		log_warn("store: cannot connect to redis at %s:%d: %s", s->host, s->port,
		         ac->errstr);
		s->ac = NULL; /* hiredis frees the context after this callback */
		s->connected = 0;
		s->reachable = 0;
		return;
	}
	s->connected = 1;
	s->reachable = 1;
	log_info("store: connected to redis at %s:%d", s->host, s->port);
}

static void
on_redis_disconnect(const redisAsyncContext *ac, int status)
{
	struct store *s = ac->data;

	(void)status;
	if (s == NULL)
		return;
	log_warn("store: lost redis at %s:%d", s->host, s->port);
	s->ac = NULL;
	s->connected = 0;
	s->reachable = 0;
}

static void
redis_connect(struct store *s)
{
	long long now = store_now_ms();

	if (s->ac || now < s->next_connect_ms)
		return;
	s->next_connect_ms = now + RECONNECT_MS;
	s->ac = redisAsyncConnect(s->host, s->port);
	if (s->ac == NULL || s->ac->err) {
		if (s->ac)
			redisAsyncFree(s->ac);
		s->ac = NULL;
		return;
	}
	s->ac->data = s;
	redisLibeventAttach(s->ac, s->base);
	redisAsyncSetConnectCallback(s->ac, on_redis_connect);
	redisAsyncSetDisconnectCallback(s->ac, on_redis_disconnect);
	if (s->db)
		redisAsyncCommand(s->ac, NULL, NULL, "SELECT %d", s->db);
}

static void
on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct store_op *op = privdata;
	redisReply *reply = r;

	(void)ac;
	op->in_flight = 0;
	if (op->answered) {
		op_free(op);
		return;
	}
	evtimer_del(op->timer);
	op->st = STORE_OK;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		if (reply)
			log_warn("store: redis said: %s", reply->str);
		op->st = STORE_UNAVAILABLE;
	} else if (op->kind == OP_COUNT) {
		op->allowed = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
		              reply->element[0]->integer == 1;
		op->retry_ms = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
		                       ? reply->element[1]->integer
		                       : 0;
	} else if (op->kind == OP_GET && reply->type == REDIS_REPLY_STRING) {
		op->value = strndup(reply->str, reply->len);
	} else if (op->kind == OP_LIST && reply->type == REDIS_REPLY_ARRAY) {
		size_t i;

		for (i = 0; i < reply->elements && op->nvalues < op->max; i++)
			if (reply->element[i]->type == REDIS_REPLY_STRING)
				op->values[op->nvalues++] =
				        strndup(reply->element[i]->str, reply->element[i]->len);
	} else if (op->kind == OP_MGET && reply->type == REDIS_REPLY_ARRAY) {
		size_t i;

		for (i = 0; i < reply->elements && i < op->nvalues; i++)
			if (reply->element[i]->type == REDIS_REPLY_STRING)
				op->values[i] =
				        strndup(reply->element[i]->str, reply->element[i]->len);
	}
	if (op->st == STORE_OK)
		op->s->reachable = 1;
	answer(op);
	op_free(op);
}

/* Sends a command; an unreachable redis answers at once (from the loop). */
static struct store_op *
redis_send(struct store *s, struct store_op *op, int argc, const char **argv)
{
	struct timeval tv = {(time_t)(s->timeout_ms / 1000),
	                     (suseconds_t)((s->timeout_ms % 1000) * 1000)};

	redis_connect(s);
	if (s->ac == NULL ||
	    redisAsyncCommandArgv(s->ac, on_reply, op, argc, argv, NULL) != REDIS_OK) {
		op->st = STORE_UNAVAILABLE;
		s->reachable = 0;
		return defer(op, 0);
	}
	op->in_flight = 1;
	evtimer_add(op->timer, &tv);
	return op;
}

/* --- the interface ----------------------------------------------------- */

struct store_op *
store_hit(struct store *s, const char *key, long long limit, long long window_ms, store_count_fn fn,
          void *arg)
{
	struct store_op *op = op_new(s, OP_COUNT, (void *)fn, arg);
	char lim[32], win[32];
	const char *argv[] = {"EVAL", lua_hit, "1", key, lim, win};

	if (op == NULL)
		return NULL;
	if (!s->redis) {
		pthread_mutex_lock(&s->mem->mu);
		mem_hit(s, op, key, limit, window_ms);
		pthread_mutex_unlock(&s->mem->mu);
		return defer(op, 0);
	}
	snprintf(lim, sizeof(lim), "%lld", limit);
	snprintf(win, sizeof(win), "%lld", window_ms);
	return redis_send(s, op, 6, argv);
}

struct store_op *
store_reserve(struct store *s, const char *key, const char *member, long long max,
              long long expires_at_ms, store_count_fn fn, void *arg)
{
	struct store_op *op = op_new(s, OP_COUNT, (void *)fn, arg);
	long long now = store_now_ms(), soonest = 0;
	char nows[32], maxs[32], exp[32];
	const char *argv[] = {"EVAL", lua_reserve, "1", key, nows, maxs, member, exp};
	const char *m;
	json_t *set, *v;

	if (op == NULL)
		return NULL;
	if (!s->redis) {
		pthread_mutex_lock(&s->mem->mu);
		set = mem_live(s, key, now);
		op->allowed = (long long)json_object_size(set) < max;
		if (op->allowed) {
			json_object_set_new(set, member, json_integer(expires_at_ms));
		} else {
			json_object_foreach(set, m, v)
			{
				if (soonest == 0 || json_integer_value(v) < soonest)
					soonest = json_integer_value(v);
			}
			op->retry_ms = soonest > now + 1000 ? soonest - now : 1000;
		}
		pthread_mutex_unlock(&s->mem->mu);
		return defer(op, 0);
	}
	snprintf(nows, sizeof(nows), "%lld", now);
	snprintf(maxs, sizeof(maxs), "%lld", max);
	snprintf(exp, sizeof(exp), "%lld", expires_at_ms);
	return redis_send(s, op, 8, argv);
}

struct store_op *
store_settle(struct store *s, const char *key, const char *from, const char *to,
             long long expires_at_ms, store_done_fn fn, void *arg)
{
	struct store_op *op = op_new(s, OP_DONE, (void *)fn, arg);
	char exp[32];
	const char *argv[] = {"EVAL", lua_settle, "1", key, from, to ? to : "", exp};
	json_t *set;

	if (op == NULL)
		return NULL;
	if (!s->redis) {
		pthread_mutex_lock(&s->mem->mu);
		set = mem_live(s, key, store_now_ms());
		json_object_del(set, from);
		if (to)
			json_object_set_new(set, to, json_integer(expires_at_ms));
		pthread_mutex_unlock(&s->mem->mu);
		return defer(op, 0);
	}
	snprintf(exp, sizeof(exp), "%lld", expires_at_ms);
	return redis_send(s, op, 7, argv);
}

struct store_op *
store_stale(struct store *s, const char *key, size_t max, store_mget_fn fn, void *arg)
{
	struct store_op *op = op_new(s, OP_LIST, (void *)fn, arg);
	long long now = store_now_ms();
	char nows[32], maxs[32];
	const char *argv[] = {"EVAL", lua_stale, "1", key, nows, maxs};
	const char *m;
	json_t *set, *v;

	if (op == NULL)
		return NULL;
	op->max = max;
	op->values = calloc(max + 1, sizeof(*op->values));
	if (op->values == NULL) {
		op_free(op);
		return NULL;
	}
	if (!s->redis) {
		pthread_mutex_lock(&s->mem->mu);
		set = mem_live(s, key, now);
		json_object_foreach(set, m, v)
		{
			if (op->nvalues == max)
				break;
			if (!pending(m) && json_integer_value(v) <= now)
				op->values[op->nvalues++] = strdup(m);
		}
		pthread_mutex_unlock(&s->mem->mu);
		return defer(op, 0);
	}
	snprintf(nows, sizeof(nows), "%lld", now);
	snprintf(maxs, sizeof(maxs), "%zu", max);
	return redis_send(s, op, 6, argv);
}

struct store_op *
store_get(struct store *s, const char *key, store_get_fn fn, void *arg)
{
	struct store_op *op = op_new(s, OP_GET, (void *)fn, arg);
	const char *argv[] = {"GET", key};
	const char *v;

	if (op == NULL)
		return NULL;
	if (!s->redis) {
		pthread_mutex_lock(&s->mem->mu);
		v = mem_value(s, key);
		op->value = v ? strdup(v) : NULL;
		pthread_mutex_unlock(&s->mem->mu);
		return defer(op, 0);
	}
	return redis_send(s, op, 2, argv);
}

struct store_op *
store_mget(struct store *s, const char *const *keys, size_t n, store_mget_fn fn, void *arg)
{
	struct store_op *op = op_new(s, OP_MGET, (void *)fn, arg);
	const char **argv;
	const char *v;
	size_t i;

	if (op == NULL)
		return NULL;
	op->nvalues = n;
	op->values = calloc(n + 1, sizeof(*op->values));
	if (op->values == NULL) {
		op_free(op);
		return NULL;
	}
	if (!s->redis || n == 0) {
		pthread_mutex_lock(&s->mem->mu);
		for (i = 0; i < n; i++)
			if ((v = mem_value(s, keys[i])) != NULL)
				op->values[i] = strdup(v);
		pthread_mutex_unlock(&s->mem->mu);
		return defer(op, 0);
	}
	argv = calloc(n + 1, sizeof(*argv));
	if (argv == NULL) {
		op_free(op);
		return NULL;
	}
	argv[0] = "MGET";
	for (i = 0; i < n; i++)
		argv[i + 1] = keys[i];
	op = redis_send(s, op, (int)n + 1, argv);
	free(argv);
	return op;
}

struct store_op *
store_set(struct store *s, const char *key, const char *value, long long ttl_ms, store_done_fn fn,
          void *arg)
{
	struct store_op *op = op_new(s, OP_DONE, (void *)fn, arg);
	char ttl[32];
	const char *set_argv[] = {"SET", key, value, "PX", ttl};
	const char *del_argv[] = {"DEL", key};

	if (op == NULL)
		return NULL;
	if (!s->redis) {
		pthread_mutex_lock(&s->mem->mu);
		if (value)
			json_object_set_new(
			        s->mem->values, key,
			        json_pack("[s,I]", value, (json_int_t)(store_now_ms() + ttl_ms)));
		else
			json_object_del(s->mem->values, key);
		pthread_mutex_unlock(&s->mem->mu);
		return defer(op, 0);
	}
	snprintf(ttl, sizeof(ttl), "%lld", ttl_ms > 0 ? ttl_ms : 1);
	return value ? redis_send(s, op, 5, set_argv) : redis_send(s, op, 2, del_argv);
}

/* The decimal number in [p, end), at most max; -1 when it is anything
 * else (empty, signed, trailing bytes, too big). */
static int
url_number(const char *p, const char *end, long max)
{
	char buf[16], *stop;
	size_t n = (size_t)(end - p);
	long v;

	if (n == 0 || n >= sizeof(buf) || *p < '0' || *p > '9')
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &stop, 10);
	if (errno != 0 || *stop != '\0' || v > max)
		return -1;
	return (int)v;
}

/* redis://host[:port][/db] */
static int
parse_url(struct store *s, const char *url, struct err *e)
{
	const char *p = url + 8, *colon, *slash;
	size_t n;

	if (strncmp(url, "redis://", 8) != 0)
		return err_set(e, 500, ERR_INTERNAL, "store", NULL,
		               "store.url must look like redis://host:port/db");
	slash = strchr(p, '/');
	colon = strchr(p, ':');
	if (colon && slash && colon > slash)
		colon = NULL;
	n = (size_t)((colon ? colon : slash ? slash : p + strlen(p)) - p);
	if (n == 0 || n >= sizeof(s->host))
		return err_set(e, 500, ERR_INTERNAL, "store", NULL, "store.url has no host");
	memcpy(s->host, p, n);
	s->host[n] = '\0';
	s->port = colon ? url_number(colon + 1, slash ? slash : p + strlen(p), 65535) : 6379;
	s->db = slash && slash[1] ? url_number(slash + 1, slash + strlen(slash), 1 << 20) : 0;
	if (s->port <= 0 || s->db < 0)
		return err_set(e, 500, ERR_INTERNAL, "store", NULL,
		               "store.url has a bad port or database number");
	return 0;
}

static struct store_mem *
mem_new(void)
{
	struct store_mem *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	pthread_mutex_init(&m->mu, NULL);
	atomic_init(&m->refs, 1);
	m->counters = json_object();
	m->sets = json_object();
	m->values = json_object();
	if (!m->counters || !m->sets || !m->values) {
		json_decref(m->counters);
		json_decref(m->sets);
		json_decref(m->values);
		pthread_mutex_destroy(&m->mu);
		free(m);
		return NULL;
	}
	return m;
}

static void
mem_release(struct store_mem *m)
{
	if (m == NULL || atomic_fetch_sub(&m->refs, 1) > 1)
		return;
	json_decref(m->counters);
	json_decref(m->sets);
	json_decref(m->values);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* A store on base, sharing mem (NULL: new tables). */
static struct store *
make(struct event_base *base, struct store_mem *mem, int redis, long long timeout_ms, struct err *e)
{
	struct store *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		err_set(e, 500, ERR_INTERNAL, "store", NULL, "out of memory");
		return NULL;
	}
	s->base = base;
	s->timeout_ms = timeout_ms;
	s->redis = redis;
	if (mem)
		atomic_fetch_add(&mem->refs, 1);
	s->mem = mem ? mem : mem_new();
	if (s->mem == NULL) {
		err_set(e, 500, ERR_INTERNAL, "store", NULL, "out of memory");
		free(s);
		return NULL;
	}
	return s;
}

struct store *
store_new(struct event_base *base, const struct config *cfg, struct err *e)
{
	struct store *s =
	        make(base, NULL, strcmp(cfg->store_type, "redis") == 0, cfg->store_timeout_ms, e);

	if (s == NULL)
		return NULL;
	if (s->redis && parse_url(s, cfg->store_url, e) < 0) {
		store_free(s);
		return NULL;
	}
	if (s->redis)
		redis_connect(s);
	return s;
}

struct store *
store_clone(struct store *like, struct event_base *base, struct err *e)
{
	struct store *s = make(base, like->mem, like->redis, like->timeout_ms, e);

	if (s == NULL)
		return NULL;
	memcpy(s->host, like->host, sizeof(s->host));
	s->port = like->port;
	s->db = like->db;
	if (s->redis)
		redis_connect(s);
	return s;
}

void
store_free(struct store *s)
{
	if (s == NULL)
		return;
	if (s->ac) {
		s->ac->data = NULL;
		redisAsyncFree(s->ac);
	}
	mem_release(s->mem);
	free(s);
}
