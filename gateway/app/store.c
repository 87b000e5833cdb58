#include "app/store.h"

#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/config.h"
#include "app/redis.h"
#include "app/statedb.h"
#include "lib/log.h"
#include "lib/secmem.h"

#define KEY_MAX 256
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

/* A key set only if it is not set already; the value it holds is returned
 * either way ("" when this call set it). ARGV: value, ttl_ms. */
static const char lua_claim[] = "local v = redis.call('GET', KEYS[1]) "
                                "if v then return v end "
                                "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
                                "return ''";

/* Budget counters, all or none (store_spend). KEYS: the counters, then
 * the spend's marker; ARGV: amount, then each counter's limit and ttl_ms,
 * then the marker's ttl_ms. Returns {allowed, which (1-based), used...}.
 * What was taken is noted in the marker, for the give-back to return
 * exactly that; a marker there already means the spend was given back
 * before it arrived (its answer timed out), so it takes nothing. */
static const char lua_spend[] =
        "local n = #KEYS - 1 "
        "local amount = tonumber(ARGV[1]) "
        "local used = {} "
        "for i = 1, n do used[i] = tonumber(redis.call('GET', KEYS[i]) or '0') end "
        "local out = {1, 0} "
        "if amount > 0 and redis.call('EXISTS', KEYS[#KEYS]) == 1 then "
        "  for i = 1, n do out[#out + 1] = used[i] end "
        "  return out "
        "end "
        "if amount > 0 then "
        "  for i = 1, n do "
        "    local limit = tonumber(ARGV[2 * i]) "
        "    if limit > 0 and used[i] + amount > limit then "
        "      out = {0, i} "
        "      for j = 1, n do out[#out + 1] = used[j] end "
        "      return out "
        "    end "
        "  end "
        "end "
        "for i = 1, n do "
        "  local k = KEYS[i] "
        "  local v = math.max(0, used[i] + amount) "
        "  if redis.call('EXISTS', k) == 1 then redis.call('SET', k, v, 'KEEPTTL') "
        "  else redis.call('SET', k, v, 'PX', ARGV[2 * i + 1]) end "
        "  out[#out + 1] = v "
        "end "
        "if amount > 0 then redis.call('SET', KEYS[#KEYS], amount, 'PX', ARGV[#ARGV]) end "
        "return out";

/* A give-back (store_give_back): returns what the spend marked as taken,
 * once. The marker is left saying "given back" (x), so a copy sent again
 * after a timeout, or a spend arriving after its give-back, does nothing.
 * KEYS: the counters, then the marker; ARGV: the marker's ttl_ms. */
static const char lua_give_back[] =
        "local taken = redis.call('GET', KEYS[#KEYS]) "
        "redis.call('SET', KEYS[#KEYS], 'x', 'PX', ARGV[1]) "
        "if not taken or taken == 'x' then return 0 end "
        "for i = 1, #KEYS - 1 do "
        "  local v = tonumber(redis.call('GET', KEYS[i]) or 'x') "
        "  if v then "
        "    redis.call('SET', KEYS[i], math.max(0, v - tonumber(taken)), 'KEEPTTL') "
        "  end "
        "end "
        "return 1";

#define GIVE_BACK_FIRST_MS 1000
#define GIVE_BACK_MAX_MS   60000
#define GIVE_BACK_TRIES    70                  /* about an hour at the longest delay */
#define MARKER_TTL_MS      (4 * 3600 * 1000LL) /* outlasts every retry */

enum op_kind { OP_COUNT, OP_GET, OP_DONE, OP_MGET, OP_LIST, OP_SPEND };

struct store_op {
	struct store *s;
	enum op_kind kind;
	store_count_fn count_fn;
	store_get_fn get_fn;
	store_done_fn done_fn;
	store_mget_fn mget_fn;
	store_spend_fn spend_fn;
	void *arg;
	struct event *timer;   /* the answer's deferral, or its timeout */
	int cancelled;         /* the caller no longer wants the answer */
	int answered;          /* the callback ran (or will not) */
	struct redis_cmd *cmd; /* the command sent for it, while redis holds it */

	enum store_status st;
	int allowed;
	long long retry_ms;
	char *value;
	char **values; /* OP_MGET */
	size_t nvalues;
	size_t max;                      /* OP_LIST: the most values kept */
	size_t which;                    /* OP_SPEND: the counter that refused */
	long long used[STORE_SPEND_MAX]; /* OP_SPEND: the counters */
};

/* memory: counters {key: [count, window_end]}, live sets {key: {member:
 * expires}}, values {key: [value, expires]}. Shared by the stores of
 * every worker, so a lock is held while they are read or changed. */
struct store_mem {
	pthread_mutex_t mu;
	atomic_int refs;
	json_t *counters, *sets, *values;
	struct statedb *db; /* the sets and values on disk (statedb.h); NULL: not kept */
};

struct store {
	struct event_base *base;
	int redis;
	long long timeout_ms;
	struct store_mem *mem;

	/* redis */
	struct redis_settings rs;
	struct redis *rc;
	int reachable;
	struct give_back *give_backs; /* not yet taken */
};

struct give_back {
	struct store *s;
	char *keys[STORE_SPEND_MAX + 1]; /* the counters, then once_key */
	size_t nkeys;
	long long amount, delay_ms;
	int tries;
	struct event *timer;
	struct store_op *op;
	struct give_back *next;
};

long long
store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void probe(struct store *s);

int
store_reachable(struct store *s)
{
	if (!s->redis)
		return 1;
	/* A lost connection is made again when asked: readiness asks too, so
	 * an idle gateway does not stay unready after Redis comes back. */
	if (!redis_connected(s->rc))
		probe(s);
	return s->reachable && redis_connected(s->rc);
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
	case OP_SPEND:
		if (op->spend_fn)
			op->spend_fn(op->arg, op->st, op->allowed, op->which, op->used);
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
	if (op->cmd) {
		/* Redis did not answer in time: treat it as unavailable; the late
		 * reply, if any, is dropped. */
		redis_cancel(op->cmd);
		op->cmd = NULL;
		op->st = STORE_UNAVAILABLE;
		op->s->reachable = 0;
	}
	answer(op);
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
	else if (kind == OP_SPEND)
		op->spend_fn = (store_spend_fn)fn;
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
	/* Its reply, if one comes, is read and dropped by the connection. */
	redis_cancel(op->cmd);
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

static void
on_reply(void *arg, const redisReply *reply)
{
	struct store_op *op = arg;

	op->cmd = NULL;
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
	} else if (op->kind == OP_SPEND) {
		size_t i;

		if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
		    reply->elements - 2 > STORE_SPEND_MAX) {
			op->st = STORE_UNAVAILABLE;
		} else {
			op->allowed = reply->element[0]->integer == 1;
			op->which = reply->element[1]->integer > 0
			                    ? (size_t)reply->element[1]->integer - 1
			                    : 0;
			for (i = 2; i < reply->elements; i++)
				op->used[i - 2] = reply->element[i]->integer;
		}
	} else if (op->kind == OP_MGET && reply->type == REDIS_REPLY_ARRAY) {
		size_t i;

		for (i = 0; i < reply->elements && i < op->nvalues; i++)
			if (reply->element[i]->type == REDIS_REPLY_STRING)
				op->values[i] =
				        strndup(reply->element[i]->str, reply->element[i]->len);
	}
	op->s->reachable = op->st == STORE_OK;
	answer(op);
	op_free(op);
}

/* Sends a command; an unreachable redis answers at once (from the loop). */
static struct store_op *
redis_send(struct store *s, struct store_op *op, int argc, const char **argv)
{
	struct timeval tv = {(time_t)(s->timeout_ms / 1000),
	                     (suseconds_t)((s->timeout_ms % 1000) * 1000)};

	op->cmd = redis_command(s->rc, argc, argv, on_reply, op);
	if (op->cmd == NULL) {
		op->st = STORE_UNAVAILABLE;
		s->reachable = 0;
		return defer(op, 0);
	}
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
		/* Pending slots are holds for a moment; containers are kept. */
		if (!pending(from) && (to == NULL || strcmp(to, from) != 0))
			statedb_member(s->mem->db, key, from, 0, 1);
		if (to && !pending(to))
			statedb_member(s->mem->db, key, to, expires_at_ms, 0);
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
store_claim(struct store *s, const char *key, const char *value, long long ttl_ms, store_get_fn fn,
            void *arg)
{
	struct store_op *op = op_new(s, OP_GET, (void *)fn, arg);
	char ttl[32];
	const char *argv[] = {"EVAL", lua_claim, "1", key, value, ttl};
	const char *v;

	if (op == NULL)
		return NULL;
	if (!s->redis) {
		pthread_mutex_lock(&s->mem->mu);
		v = mem_value(s, key);
		if (v) {
			op->value = strdup(v);
		} else {
			json_object_set_new(
			        s->mem->values, key,
			        json_pack("[s,I]", value, (json_int_t)(store_now_ms() + ttl_ms)));
			statedb_value(s->mem->db, key, value, store_now_ms() + ttl_ms);
		}
		pthread_mutex_unlock(&s->mem->mu);
		return defer(op, 0);
	}
	snprintf(ttl, sizeof(ttl), "%lld", ttl_ms);
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
		statedb_value(s->mem->db, key, value, store_now_ms() + ttl_ms);
		pthread_mutex_unlock(&s->mem->mu);
		return defer(op, 0);
	}
	snprintf(ttl, sizeof(ttl), "%lld", ttl_ms > 0 ? ttl_ms : 1);
	return value ? redis_send(s, op, 5, set_argv) : redis_send(s, op, 2, del_argv);
}

/* A budget counter in memory: its value, or 0. */
static long long
mem_counter(struct store *s, const char *key)
{
	const char *v = mem_value(s, key);

	return v ? strtoll(v, NULL, 10) : 0;
}

static void
mem_spend(struct store *s, struct store_op *op, const char *const *keys, const long long *limits,
          const long long *ttl_ms, size_t n, long long amount)
{
	long long now = store_now_ms(), v;
	json_t *old;
	char text[32];
	size_t i;

	for (i = 0; i < n; i++)
		op->used[i] = mem_counter(s, keys[i]);
	for (i = 0; amount > 0 && i < n; i++)
		if (limits[i] > 0 && op->used[i] + amount > limits[i]) {
			op->which = i;
			return;
		}
	op->allowed = 1;
	for (i = 0; i < n; i++) {
		long long expires = now + ttl_ms[i];

		v = op->used[i] + amount > 0 ? op->used[i] + amount : 0;
		old = json_object_get(s->mem->values, keys[i]);
		if (old)
			expires = json_integer_value(json_array_get(old, 1));
		snprintf(text, sizeof(text), "%lld", v);
		json_object_set_new(s->mem->values, keys[i],
		                    json_pack("[s,I]", text, (json_int_t)expires));
		statedb_value(s->mem->db, keys[i], text, expires);
		op->used[i] = v;
	}
}

struct store_op *
store_spend(struct store *s, const char *const *keys, const long long *limits,
            const long long *ttl_ms, size_t n, long long amount, const char *marker,
            store_spend_fn fn, void *arg)
{
	struct store_op *op = op_new(s, OP_SPEND, (void *)fn, arg);
	const char *argv[6 + 3 * STORE_SPEND_MAX];
	char nums[2 + 2 * STORE_SPEND_MAX][32];
	char nkeys[8];
	size_t i, a = 0;

	if (op == NULL)
		return NULL;
	if (n == 0 || n > STORE_SPEND_MAX) {
		op->allowed = 1;
		return defer(op, 0);
	}
	if (!s->redis) {
		pthread_mutex_lock(&s->mem->mu);
		mem_spend(s, op, keys, limits, ttl_ms, n, amount);
		pthread_mutex_unlock(&s->mem->mu);
		return defer(op, 0);
	}
	snprintf(nkeys, sizeof(nkeys), "%zu", n + 1);
	argv[a++] = "EVAL";
	argv[a++] = lua_spend;
	argv[a++] = nkeys;
	for (i = 0; i < n; i++)
		argv[a++] = keys[i];
	argv[a++] = marker;
	snprintf(nums[0], sizeof(nums[0]), "%lld", amount);
	argv[a++] = nums[0];
	for (i = 0; i < n; i++) {
		snprintf(nums[1 + 2 * i], sizeof(nums[0]), "%lld", limits[i]);
		snprintf(nums[2 + 2 * i], sizeof(nums[0]), "%lld", ttl_ms[i]);
		argv[a++] = nums[1 + 2 * i];
		argv[a++] = nums[2 + 2 * i];
	}
	snprintf(nums[1 + 2 * n], sizeof(nums[0]), "%lld", MARKER_TTL_MS);
	argv[a++] = nums[1 + 2 * n];
	return redis_send(s, op, (int)a, argv);
}

static void
give_back_free(struct give_back *g)
{
	struct give_back **at;
	size_t i;

	for (at = &g->s->give_backs; *at != NULL; at = &(*at)->next)
		if (*at == g) {
			*at = g->next;
			break;
		}
	store_cancel(g->op);
	if (g->timer)
		event_free(g->timer);
	for (i = 0; i < g->nkeys; i++)
		free(g->keys[i]);
	free(g);
}

static void give_back_send(struct give_back *g);

static void
give_back_later(struct give_back *g)
{
	struct timeval tv = {(time_t)(g->delay_ms / 1000),
	                     (suseconds_t)((g->delay_ms % 1000) * 1000)};

	if (g->tries >= GIVE_BACK_TRIES) {
		log_warn("store: gave up giving back %lld to %s after %d tries", g->amount,
		         g->keys[0], g->tries);
		give_back_free(g);
		return;
	}
	evtimer_add(g->timer, &tv);
	g->delay_ms = g->delay_ms * 2 < GIVE_BACK_MAX_MS ? g->delay_ms * 2 : GIVE_BACK_MAX_MS;
}

static void
on_given_back(void *arg, enum store_status st)
{
	struct give_back *g = arg;

	g->op = NULL;
	if (st == STORE_OK)
		give_back_free(g);
	else
		give_back_later(g);
}

static void
on_give_back_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	give_back_send(arg);
}

static void
give_back_send(struct give_back *g)
{
	const char *argv[5 + STORE_SPEND_MAX];
	char nkeys[8], ttl[32];
	struct store_op *op;
	size_t i, a = 0;

	g->tries++;
	(void)store_reachable(g->s); /* a lost connection is made again when asked */
	op = op_new(g->s, OP_DONE, (void *)on_given_back, g);
	if (op == NULL) {
		give_back_later(g);
		return;
	}
	snprintf(nkeys, sizeof(nkeys), "%zu", g->nkeys);
	snprintf(ttl, sizeof(ttl), "%lld", MARKER_TTL_MS);
	argv[a++] = "EVAL";
	argv[a++] = lua_give_back;
	argv[a++] = nkeys;
	for (i = 0; i < g->nkeys; i++)
		argv[a++] = g->keys[i];
	argv[a++] = ttl;
	g->op = redis_send(g->s, op, (int)a, argv);
}

void
store_give_back(struct store *s, const char *const *keys, const long long *ttl_ms, size_t n,
                long long amount, const char *marker)
{
	static const long long none[STORE_SPEND_MAX];
	struct store_op op;
	struct give_back *g;
	size_t i;

	if (amount <= 0 || n == 0 || n > STORE_SPEND_MAX)
		return;
	if (!s->redis) {
		/* In this process: applied now, and only now. */
		memset(&op, 0, sizeof(op));
		pthread_mutex_lock(&s->mem->mu);
		mem_spend(s, &op, keys, none, ttl_ms, n, -amount);
		pthread_mutex_unlock(&s->mem->mu);
		return;
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		goto lost;
	g->s = s;
	g->amount = amount;
	g->delay_ms = GIVE_BACK_FIRST_MS;
	g->next = s->give_backs;
	s->give_backs = g;
	g->timer = evtimer_new(s->base, on_give_back_timer, g);
	for (i = 0; i <= n; i++) {
		g->keys[i] = strdup(i < n ? keys[i] : marker);
		if (g->keys[i] == NULL)
			break;
		g->nkeys++;
	}
	if (g->timer == NULL || g->nkeys != n + 1) {
		give_back_free(g);
		goto lost;
	}
	give_back_send(g);
	return;
lost:
	log_warn("store: out of memory: %lld not given back to %s", amount, keys[0]);
}

size_t
store_give_backs(const struct store *s)
{
	const struct give_back *g;
	size_t n = 0;

	for (g = s->give_backs; g != NULL; g = g->next)
		n++;
	return n;
}

/* statedb_load's callbacks: what the file kept goes back in the tables. */
static void
load_member(void *arg, const char *key, const char *m, long long expires)
{
	struct store_mem *mem = arg;
	json_t *set = json_object_get(mem->sets, key);

	if (set == NULL && json_object_set_new(mem->sets, key, json_object()) == 0)
		set = json_object_get(mem->sets, key);
	if (set)
		json_object_set_new(set, m, json_integer(expires));
}

static void
load_value(void *arg, const char *key, const char *v, long long expires)
{
	struct store_mem *mem = arg;

	json_object_set_new(mem->values, key, json_pack("[s,I]", v, (json_int_t)expires));
}

static void mem_release(struct store_mem *m);

/* New tables; with path, kept in and read back from that file. */
static struct store_mem *
mem_new(const char *path, struct err *e)
{
	struct store_mem *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		err_set(e, 500, ERR_INTERNAL, "store", NULL, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&m->mu, NULL);
	atomic_init(&m->refs, 1);
	m->counters = json_object();
	m->sets = json_object();
	m->values = json_object();
	if (!m->counters || !m->sets || !m->values) {
		err_set(e, 500, ERR_INTERNAL, "store", NULL, "out of memory");
		mem_release(m);
		return NULL;
	}
	if (path && *path &&
	    ((m->db = statedb_open(path, e)) == NULL ||
	     statedb_load(m->db, store_now_ms(), load_member, load_value, m, e) < 0)) {
		mem_release(m);
		return NULL;
	}
	return m;
}

static void
mem_release(struct store_mem *m)
{
	if (m == NULL || atomic_fetch_sub(&m->refs, 1) > 1)
		return;
	statedb_close(m->db);
	json_decref(m->counters);
	json_decref(m->sets);
	json_decref(m->values);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* A store on base, sharing mem (NULL: new tables, kept at path unless
 * path is NULL or ""). */
static struct store *
make(struct event_base *base, struct store_mem *mem, int redis, long long timeout_ms,
     const char *path, struct err *e)
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
	s->mem = mem ? mem : mem_new(redis ? NULL : path, e);
	if (s->mem == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

/* The reply to a connection's first command: the store is reachable. */
static void
on_ping(void *arg, const redisReply *reply)
{
	struct store *s = arg;

	s->reachable = reply && reply->type != REDIS_REPLY_ERROR;
}

/* Connects now (a PING), so readiness knows before the first request. */
static void
probe(struct store *s)
{
	const char *argv[] = {"PING"};

	if (redis_command(s->rc, 1, argv, on_ping, s) == NULL)
		s->reachable = 0;
}

static int
connect_redis(struct store *s, struct err *e)
{
	s->rc = redis_new(s->base, &s->rs, e);
	if (s->rc == NULL)
		return -1;
	probe(s);
	return 0;
}

struct store *
store_new(struct event_base *base, const struct config *cfg, struct err *e)
{
	struct store *s = make(base, NULL, strcmp(cfg->store_type, "redis") == 0,
	                       cfg->store_timeout_ms, cfg->store_path, e);

	if (s == NULL || !s->redis)
		return s;
	if (redis_parse_url(cfg->store_url, &s->rs, e) < 0)
		goto fail;
	/* A password from store.password_env or _file wins over the URL's. */
	if (cfg->store_password) {
		redis_settings_clear(&s->rs);
		s->rs.password = secmem_alloc(cfg->store_password_len + 1);
		if (s->rs.password == NULL) {
			err_set(e, 500, ERR_INTERNAL, "store", NULL, "out of memory");
			goto fail;
		}
		memcpy(s->rs.password, cfg->store_password, cfg->store_password_len + 1);
	}
	s->rs.ca_file = cfg->store_ca_file;
	s->rs.cert_file = cfg->store_cert_file;
	s->rs.key_file = cfg->store_key_file;
	if (connect_redis(s, e) < 0)
		goto fail;
	return s;
fail:
	store_free(s);
	return NULL;
}

struct store *
store_clone(struct store *like, struct event_base *base, struct err *e)
{
	struct store *s = make(base, like->mem, like->redis, like->timeout_ms, NULL, e);

	if (s == NULL || !s->redis)
		return s;
	s->rs = like->rs;
	s->rs.password = NULL;
	if (like->rs.password) {
		size_t n = strlen(like->rs.password);

		if ((s->rs.password = secmem_alloc(n + 1)) == NULL) {
			err_set(e, 500, ERR_INTERNAL, "store", NULL, "out of memory");
			store_free(s);
			return NULL;
		}
		memcpy(s->rs.password, like->rs.password, n + 1);
	}
	if (connect_redis(s, e) < 0) {
		store_free(s);
		return NULL;
	}
	return s;
}

void
store_free(struct store *s)
{
	struct give_back *g;

	if (s == NULL)
		return;
	if (s->give_backs != NULL)
		log_warn("store: stopping with budget give-backs Redis has not taken; they are "
		         "lost");
	while ((g = s->give_backs) != NULL) {
		s->give_backs = g->next;
		give_back_free(g);
	}
	redis_free(s->rc);
	redis_settings_clear(&s->rs);
	mem_release(s->mem);
	free(s);
}
