#include "app/tenancy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/call.h"
#include "app/config.h"
#include "app/context.h"
#include "app/request.h"
#include "app/store.h"
#include "lib/log.h"
#include "policy/tenant.h"

#define SLOT_HOLD_MS     (5 * 60 * 1000)           /* a create's slot, until it is answered */
#define OWNERSHIP_TTL_MS (30LL * 24 * 3600 * 1000) /* kept well past any container */
#define KEY_MAX          320
#define QUOTA_RETRY_S    60 /* a quota refusal's Retry-After */

static void
key(char *dst, size_t n, const char *kind, const char *name)
{
	snprintf(dst, n, "gw:%s:%s", kind, name ? name : "");
}

static void
log_store_loss(const struct request *r)
{
	log_msg(LOG_WARN, r->id, "store: could not record container %s for tenant %s",
	        r->rec.container_id[0] ? r->rec.container_id : r->container_id,
	        tenant_name(r->tenant));
}

/* The store could not answer: fail_closed refuses the request, fail_open
 * lets it through unchecked. Returns 1 when the request is refused. */
static int
unavailable(struct request *r)
{
	if (strcmp(r->cfg->store_on_unavailable, "fail_open") == 0)
		return 0;
	err_set(&r->error, 503, ERR_INTERNAL, "store_unavailable", NULL,
	        "the gateway's shared store cannot be reached, so limits and ownership cannot be "
	        "checked; try again shortly");
	return 1;
}

/* Over a limit: 429 with Retry-After, or only a note in shadow mode.
 * A rate limit clears within its window, so clients may retry after it;
 * a quota (live containers) clears only when the tenant acts, so the
 * answer says not to retry (x-should-retry: false, which the official
 * SDKs honour) and suggests asking again in a minute at the soonest.
 * Returns 1 when the request is refused. */
static int
over_limit(struct request *r, long long retry_ms, const char *what, int quota)
{
	struct err *shadow;
	long long secs = retry_ms > 0 ? (retry_ms + 999) / 1000 : 1;

	if (tenant_limits(r->tenant)->shadow) {
		if ((shadow = request_shadow(r)) != NULL)
			err_set(shadow, 429, "rate_limit_error", "rate_limit_exceeded", NULL,
			        "%s (shadow mode: let through)", what);
		return 0;
	}
	if (quota) {
		secs = QUOTA_RETRY_S;
		r->no_retry = 1;
	}
	if (secs > 86400)
		secs = 86400;
	snprintf(r->retry_after, sizeof(r->retry_after), "%d", (int)secs);
	err_set(&r->error, 429, "rate_limit_error", "rate_limit_exceeded", NULL, "%s", what);
	return 1;
}

/* --- every request ---------------------------------------------------- */

static void
on_owner(void *arg, enum store_status st, const char *owner)
{
	struct request *r = arg;

	r->store_op = NULL;
	if (st != STORE_OK && unavailable(r)) {
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	if (st == STORE_OK && (owner == NULL || strcmp(owner, tenant_name(r->tenant)) != 0)) {
		/* Another tenant's container does not exist, as far as this
		 * tenant can tell; the record says when it was another's. */
		r->audit_code = owner ? "ownership_denied" : NULL;
		err_set(&r->error, 404, ERR_INVALID, "not_found", NULL,
		        "No container found with id '%s'.", r->container_id);
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	pipeline_resume(r, STEP_NEXT);
}

static enum step_result
check_owner(struct request *r)
{
	char k[KEY_MAX];

	if (r->container_id[0] == '\0')
		return STEP_NEXT;
	key(k, sizeof(k), "own", r->container_id);
	return pipeline_wait(r, (r->store_op = store_get(r->ctx->store, k, on_owner, r)) != NULL);
}

static enum step_result reserve_slot(struct request *r);

/* The fixed-window limits, each counted in the store before the stage
 * after it runs. */
enum { RATE_REQUESTS, RATE_CREATES };

static const struct rate {
	const char *kind; /* the store key's */
	long long window_ms;
	const char *what; /* said when it is reached */
	enum step_result (*then)(struct request *r);
} rates[] = {
        [RATE_REQUESTS] = {"rps", 1000, "this tenant's requests_per_second limit is reached",
                           check_owner},
        [RATE_CREATES] = {"cpm", 60000, "this tenant's creates_per_minute limit is reached",
                          reserve_slot},
};

static void
on_rate(void *arg, enum store_status st, int allowed, long long retry_ms)
{
	struct request *r = arg;
	const struct rate *rate = &rates[r->rate];
	enum step_result res;

	r->store_op = NULL;
	if ((st != STORE_OK && unavailable(r)) ||
	    (st == STORE_OK && !allowed && over_limit(r, retry_ms, rate->what, 0))) {
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	res = rate->then(r);
	if (res != STEP_WAIT)
		pipeline_resume(r, res);
}

/* Counts r against limit (0: none) and goes on to the rate's next stage,
 * unless the limit is reached. */
static enum step_result
count(struct request *r, int which, long long limit)
{
	char k[KEY_MAX];

	r->rate = which;
	if (limit == 0)
		return rates[which].then(r);
	key(k, sizeof(k), rates[which].kind, tenant_name(r->tenant));
	r->store_op = store_hit(r->ctx->store, k, limit, rates[which].window_ms, on_rate, r);
	return pipeline_wait(r, r->store_op != NULL);
}

enum step_result
tenancy_admit(struct request *r)
{
	if (r->tenant == NULL)
		return STEP_NEXT;
	return count(r, RATE_REQUESTS, tenant_limits(r->tenant)->requests_per_second);
}

/* --- creates ----------------------------------------------------------- */

static void reconcile(struct request *r, long long retry_ms);

/* At the cap for good: 429, or a note in shadow mode. */
static void
at_cap(struct request *r, long long retry_ms)
{
	char msg[160];

	snprintf(msg, sizeof(msg),
	         "this tenant already has its maximum of %lld live containers; delete one or wait "
	         "for one to expire",
	         tenant_limits(r->tenant)->max_live_containers);
	pipeline_resume(r, over_limit(r, retry_ms, msg, 1) ? STEP_FAIL : STEP_NEXT);
}

static void give_back(struct request *r);

static void
on_slot(void *arg, enum store_status st, int allowed, long long retry_ms)
{
	struct request *r = arg;

	r->store_op = NULL;
	if (st != STORE_OK && unavailable(r)) {
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	if (st == STORE_OK && allowed) {
		r->holds_slot = 1;
		r->unwind = give_back;
	}
	if (st == STORE_OK && !allowed) {
		/* The set may hold containers the upstream has let go: ask it
		 * about those due, once, before refusing. */
		if (r->reconcile == NULL) {
			reconcile(r, retry_ms);
			return;
		}
		at_cap(r, retry_ms);
		return;
	}
	pipeline_resume(r, STEP_NEXT);
}

static enum step_result
reserve_slot(struct request *r)
{
	const struct tenant_limits *lim = tenant_limits(r->tenant);
	char k[KEY_MAX], member[64];

	if (lim->max_live_containers == 0)
		return STEP_NEXT;
	key(k, sizeof(k), "live", tenant_name(r->tenant));
	snprintf(member, sizeof(member), "pending:%s", r->id);
	r->store_op = store_reserve(r->ctx->store, k, member, lim->max_live_containers,
	                            store_now_ms() + SLOT_HOLD_MS, on_slot, r);
	return pipeline_wait(r, r->store_op != NULL);
}

/* --- the upstream's truth about live containers ----------------------- */

#define RECONCILE_MAX 16    /* containers asked about for one create */
#define RECHECK_MS    60000 /* an alive container is asked about again after this */

/* A tenant at its cap asks the upstream about the containers its live set
 * holds past their expiry hint: one gone (404, or expired or deleted) is
 * removed; one alive gets a new hint from its last activity. */
struct tenancy_reconcile {
	char ids[RECONCILE_MAX][REQUEST_ID_MAX + 1];
	size_t n, i, gone;
	char path[REQUEST_ID_MAX + 16];
	long long retry_ms;
};

static void ask_next(struct request *r);

static void
on_hinted(void *arg, enum store_status st)
{
	struct request *r = arg;

	(void)st; /* a hint not kept is asked about again next time */
	r->store_op = NULL;
	r->reconcile->i++;
	ask_next(r);
}

/* When to ask again about a container the upstream says is alive: its
 * expiry from its last activity, and not before RECHECK_MS from now. */
static long long
next_hint(const char *body, size_t len)
{
	json_t *c = json_loadb(body, len, 0, NULL);
	long long last = json_integer_value(json_object_get(c, "last_active_at"));
	long long minutes =
	        json_integer_value(json_object_get(json_object_get(c, "expires_after"), "minutes"));
	long long hint = last * 1000 + minutes * 60000, soonest = store_now_ms() + RECHECK_MS;

	json_decref(c);
	return hint > soonest ? hint : soonest;
}

static int
gone(const struct upstream_res *res)
{
	json_t *c;
	const char *status;
	int g;

	if (res->failure != UPSTREAM_OK)
		return 0;
	if (res->status == 404)
		return 1;
	if (res->status < 200 || res->status > 299)
		return 0;
	c = json_loadb(res->body, res->len, 0, NULL);
	status = json_string_value(json_object_get(c, "status"));
	g = status && (strcmp(status, "expired") == 0 || strcmp(status, "deleted") == 0);
	json_decref(c);
	return g;
}

static void
on_asked(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;
	struct tenancy_reconcile *rc = r->reconcile;
	const char *id = rc->ids[rc->i];
	char k[KEY_MAX];

	r->call = NULL;
	key(k, sizeof(k), "live", tenant_name(r->tenant));
	if (gone(res)) {
		rc->gone++;
		r->store_op = store_settle(r->ctx->store, k, id, NULL, 0, on_hinted, r);
		pipeline_wait_more(r, r->store_op != NULL);
	} else if (call_succeeded(res)) {
		r->store_op = store_settle(r->ctx->store, k, id, id, next_hint(res->body, res->len),
		                           on_hinted, r);
		pipeline_wait_more(r, r->store_op != NULL);
	} else {
		/* The upstream could not say: it still counts. */
		rc->i++;
		ask_next(r);
	}
}

/* The next container to ask about, or, once all are asked, the slot is
 * tried again. */
static void
ask_next(struct request *r)
{
	struct tenancy_reconcile *rc = r->reconcile;
	struct upstream_req up = {0};
	char note[160];
	enum step_result res;

	if (rc->i < rc->n) {
		snprintf(rc->path, sizeof(rc->path), "/containers/%s", rc->ids[rc->i]);
		up.method = "GET";
		up.path = rc->path;
		up.retry_connect = 1;
		if (call_start(r, &up, 0, NULL, on_asked) == STEP_WAIT)
			return;
		rc->n = rc->i; /* no upstream to ask: what was learnt stands */
	}
	snprintf(note, sizeof(note),
	         "at the live-container cap: asked the upstream about %zu containers past "
	         "their expiry, %zu of them gone",
	         rc->n, rc->gone);
	if (r->rec.adjustments == NULL)
		r->rec.adjustments = json_array();
	json_array_append_new(r->rec.adjustments, json_string(note));
	if (rc->gone == 0) {
		at_cap(r, rc->retry_ms);
		return;
	}
	res = reserve_slot(r);
	if (res != STEP_WAIT)
		pipeline_resume(r, res);
}

static void
on_stale(void *arg, enum store_status st, char *const *ids, size_t n)
{
	struct request *r = arg;
	struct tenancy_reconcile *rc = r->reconcile;
	size_t i;

	r->store_op = NULL;
	if (st != STORE_OK || n == 0) {
		at_cap(r, rc->retry_ms);
		return;
	}
	for (i = 0; i < n && i < RECONCILE_MAX; i++)
		snprintf(rc->ids[i], sizeof(rc->ids[i]), "%s", ids[i]);
	rc->n = i;
	ask_next(r);
}

static void
reconcile(struct request *r, long long retry_ms)
{
	char k[KEY_MAX];

	r->reconcile = calloc(1, sizeof(*r->reconcile));
	if (r->reconcile == NULL) {
		err_set(&r->error, 503, ERR_INTERNAL, "out_of_memory", NULL,
		        "the gateway is out of memory; try again");
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	r->reconcile->retry_ms = retry_ms;
	key(k, sizeof(k), "live", tenant_name(r->tenant));
	r->store_op = store_stale(r->ctx->store, k, RECONCILE_MAX, on_stale, r);
}

enum step_result
tenancy_admit_create(struct request *r)
{
	if (r->tenant == NULL)
		return STEP_NEXT;
	return count(r, RATE_CREATES, tenant_limits(r->tenant)->creates_per_minute);
}

static void
on_recorded(void *arg, enum store_status st)
{
	struct request *r = arg;

	r->store_op = NULL;
	/* The container exists either way; a lost record is only logged, and
	 * the answer still goes out. */
	if (st != STORE_OK)
		log_store_loss(r);
	pipeline_resume(r, STEP_NEXT);
}

static void
on_settled(void *arg, enum store_status st)
{
	struct request *r = arg;
	char k[KEY_MAX];

	r->store_op = NULL;
	if (st != STORE_OK)
		log_store_loss(r);
	key(k, sizeof(k), "own", r->rec.container_id);
	r->store_op = store_set(r->ctx->store, k, tenant_name(r->tenant), OWNERSHIP_TTL_MS,
	                        on_recorded, r);
	pipeline_wait_more(r, r->store_op != NULL);
}

enum step_result
tenancy_created(struct request *r, long long expires_at_ms)
{
	char k[KEY_MAX], member[64];

	if (r->tenant == NULL)
		return STEP_NEXT;
	key(k, sizeof(k), "live", tenant_name(r->tenant));
	snprintf(member, sizeof(member), "pending:%s", r->id);
	r->holds_slot = 0;
	r->store_op = store_settle(r->ctx->store, k, member, r->rec.container_id, expires_at_ms,
	                           on_settled, r);
	return pipeline_wait(r, r->store_op != NULL);
}

/* A withheld container's owner in the store: no tenant's name can be it. */
#define WITHHELD "!withheld"

static void
on_withheld(void *arg, enum store_status st)
{
	struct request *r = arg;
	char k[KEY_MAX];

	r->store_op = NULL;
	if (st != STORE_OK)
		log_store_loss(r);
	key(k, sizeof(k), "own", r->rec.container_id);
	r->store_op = store_set(r->ctx->store, k, WITHHELD, OWNERSHIP_TTL_MS, on_recorded, r);
	pipeline_wait_more(r, r->store_op != NULL);
}

enum step_result
tenancy_withheld(struct request *r)
{
	char k[KEY_MAX], member[64];

	if (r->tenant == NULL)
		return STEP_NEXT;
	key(k, sizeof(k), "live", tenant_name(r->tenant));
	snprintf(member, sizeof(member), "pending:%s", r->id);
	r->holds_slot = 0;
	r->store_op = store_settle(r->ctx->store, k, member, NULL, 0, on_withheld, r);
	return pipeline_wait(r, r->store_op != NULL);
}

void
tenancy_not_created(struct request *r)
{
	char k[KEY_MAX], member[64];

	if (r->tenant == NULL || !r->holds_slot)
		return;
	r->holds_slot = 0;
	key(k, sizeof(k), "live", tenant_name(r->tenant));
	snprintf(member, sizeof(member), "pending:%s", r->id);
	/* Nobody waits on this; the request may be gone when it lands. */
	(void)store_settle(r->ctx->store, k, member, NULL, 0, NULL, NULL);
}

static void
on_forgotten(void *arg, enum store_status st)
{
	struct request *r = arg;
	char k[KEY_MAX];

	r->store_op = NULL;
	if (st != STORE_OK)
		log_store_loss(r);
	key(k, sizeof(k), "own", r->container_id);
	r->store_op = store_set(r->ctx->store, k, NULL, 0, on_recorded, r);
	pipeline_wait_more(r, r->store_op != NULL);
}

enum step_result
tenancy_deleted(struct request *r)
{
	char k[KEY_MAX];

	if (r->tenant == NULL)
		return STEP_NEXT;
	key(k, sizeof(k), "live", tenant_name(r->tenant));
	r->store_op = store_settle(r->ctx->store, k, r->container_id, NULL, 0, on_forgotten, r);
	return pipeline_wait(r, r->store_op != NULL);
}

/* --- lists ------------------------------------------------------------- */

static void
on_owners(void *arg, enum store_status st, char *const *owners, size_t n)
{
	struct request *r = arg;
	const char *me = tenant_name(r->tenant);
	json_t *items = r->filtering.items;
	size_t i;

	r->store_op = NULL;
	if (st != STORE_OK && unavailable(r)) {
		r->filtering.then(r, 0);
		return;
	}
	if (st == STORE_OK) {
		/* Walk backwards so removing keeps the indexes of the rest. */
		for (i = n; i-- > 0;) {
			if (owners[i] == NULL || strcmp(owners[i], me) != 0)
				json_array_remove(items, i);
		}
	}
	r->filtering.then(r, 1);
}

void
tenancy_filter(struct request *r, json_t *items, void (*then)(struct request *r, int ok))
{
	const char *keys[100];
	char buf[100][KEY_MAX];
	size_t i, n = json_array_size(items);
	json_t *item;

	if (r->tenant == NULL || n == 0) {
		then(r, 1);
		return;
	}
	if (n > 100)
		n = 100; /* the upstream's page size is at most 100 */
	r->filtering.items = items;
	r->filtering.then = then;
	json_array_foreach(items, i, item)
	{
		if (i >= n)
			break;
		key(buf[i], sizeof(buf[i]), "own", json_string_value(json_object_get(item, "id")));
		keys[i] = buf[i];
	}
	while (json_array_size(items) > n)
		json_array_remove(items, n);
	r->store_op = store_mget(r->ctx->store, keys, n, on_owners, r);
	if (r->store_op == NULL) {
		(void)pipeline_wait(r, 0); /* the 503 */
		then(r, 0);
	}
}

/* --- budgets ------------------------------------------------------------ */

#define DAY_TTL_MS   (2LL * 24 * 3600 * 1000)  /* a day's counter, past its day */
#define MONTH_TTL_MS (32LL * 24 * 3600 * 1000) /* a month's, past its month */

static const char *const sizes[] = {"1g", "4g", "16g", "64g"};
static const long long size_gb[] = {1, 4, 16, 64};
/* Minutes charged at most: an expiry only watched (shadow mode) may be any
 * 64-bit number, and its cost must neither overflow nor wrap around below
 * zero, where no budget would see it. Past every budget (budget.* are at
 * most 10^12), and far from overflowing a counter. */
#define CHARGE_MINUTES_MAX 1000000000000LL

static int
size_index(const char *memory_limit)
{
	int i;

	for (i = 0; memory_limit && i < 4; i++)
		if (strcmp(memory_limit, sizes[i]) == 0)
			return i;
	return -1;
}

long long
tenancy_gb_minutes(const char *memory_limit, long long minutes)
{
	int i = size_index(memory_limit);

	if (i < 0 || minutes <= 0)
		return 0;
	return size_gb[i] * (minutes < CHARGE_MINUTES_MAX ? minutes : CHARGE_MINUTES_MAX);
}

double
tenancy_usd(const struct request *r, const char *memory_limit, long long minutes)
{
	int i = size_index(memory_limit);

	if (i < 0 || minutes <= 0)
		return 0;
	if (minutes > CHARGE_MINUTES_MAX)
		minutes = CHARGE_MINUTES_MAX;
	return r->cfg->session_usd[i] * (double)minutes / (double)r->cfg->session_minutes;
}

/* The UTC day and month at now, as the counters' keys name them, and when
 * each resets (Unix seconds). */
static void
windows(const struct request *r, time_t now, char *day, size_t dn, char *month, size_t mn,
        time_t *day_end, time_t *month_end)
{
	struct tm tm, next;

	gmtime_r(&now, &tm);
	snprintf(day, dn, "gw:budget:%s:d:%04d%02d%02d", tenant_name(r->tenant), tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday);
	snprintf(month, mn, "gw:budget:%s:m:%04d%02d", tenant_name(r->tenant), tm.tm_year + 1900,
	         tm.tm_mon + 1);
	next = tm;
	next.tm_hour = next.tm_min = next.tm_sec = 0;
	next.tm_mday++;
	*day_end = timegm(&next);
	next = tm;
	next.tm_hour = next.tm_min = next.tm_sec = 0;
	next.tm_mday = 1;
	next.tm_mon++;
	*month_end = timegm(&next);
}

/* The budget reserved for r's containers goes back to the windows it was
 * reserved in: what its spend took (the store sends it until Redis takes
 * it, once, and nothing if the spend never landed). */
static void
give_back_budget(struct request *r, long long amount)
{
	char day[KEY_MAX], month[KEY_MAX], marker[KEY_MAX];
	const char *keys[2] = {day, month};
	const long long ttl[2] = {DAY_TTL_MS, MONTH_TTL_MS};
	time_t day_end, month_end;

	windows(r, r->budget.at, day, sizeof(day), month, sizeof(month), &day_end, &month_end);
	key(marker, sizeof(marker), "spent", r->id);
	store_give_back(r->ctx->store, keys, ttl, 2, amount, marker);
}

/* At the request's end, what it held and did not use goes back: the
 * budget it reserved, and the live slot of a create that ended before
 * anything went upstream (its intent never audited, the gateway
 * stopping), which would otherwise count for SLOT_HOLD_MS. Nobody waits
 * on the store's answer; the request is gone when it lands. */
static void
give_back(struct request *r)
{
	r->unwind = NULL;
	if (r->budget.held > 0)
		give_back_budget(r, r->budget.held);
	r->budget.held = 0;
	if (!r->forwarded)
		tenancy_not_created(r);
}

void
tenancy_budget_spent(struct request *r)
{
	r->budget.held = 0;
}

static void
on_spent(void *arg, enum store_status st, int allowed, size_t which, const long long *used)
{
	struct request *r = arg;
	const struct tenant_limits *lim = tenant_limits(r->tenant);
	long long limit = which == 0 ? lim->gb_minutes_per_day : lim->gb_minutes_per_month;
	char day[KEY_MAX], month[KEY_MAX], at[32], msg[ERR_MESSAGE_MAX];
	time_t day_end, month_end, reset;
	struct err *shadow;
	struct tm tm;

	r->store_op = NULL;
	if (st != STORE_OK) {
		/* No answer is no refusal: Redis may still take the spend (it
		 * timed out, or the connection broke after sending it). Whether
		 * the request fails or goes on uncharged (fail_open), what the
		 * spend took, if it lands, is given back. */
		give_back_budget(r, r->budget.gb_minutes);
		if (unavailable(r)) {
			tenancy_not_created(r);
			pipeline_resume(r, STEP_FAIL);
			return;
		}
		pipeline_resume(r, STEP_NEXT);
		return;
	}
	if (allowed) {
		r->budget.held = r->budget.gb_minutes;
		r->unwind = give_back;
		pipeline_resume(r, STEP_NEXT);
		return;
	}
	windows(r, r->budget.at, day, sizeof(day), month, sizeof(month), &day_end, &month_end);
	reset = which == 0 ? day_end : month_end;
	gmtime_r(&reset, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(msg, sizeof(msg),
	         "this request's containers need %lld GB-minutes, and tenant \"%s\"'s budget of "
	         "%lld GB-minutes per %s has %lld left (%lld used); it resets at %s",
	         r->budget.gb_minutes, tenant_name(r->tenant), limit, which == 0 ? "day" : "month",
	         limit > used[which] ? limit - used[which] : 0, used[which], at);
	if (lim->budget_shadow) {
		if ((shadow = request_shadow(r)) != NULL)
			err_set(shadow, 429, "rate_limit_error", "budget_exceeded", NULL,
			        "%s (shadow mode: let through)", msg);
		pipeline_resume(r, STEP_NEXT);
		return;
	}
	/* It clears only at the reset: the SDKs are told not to retry
	 * before then (x-should-retry: false, Retry-After to the reset). */
	snprintf(r->retry_after, sizeof(r->retry_after), "%lld",
	         (long long)(reset - time(NULL) > 1 ? reset - time(NULL) : 1));
	r->no_retry = 1;
	err_set(&r->error, 429, "rate_limit_error", "budget_exceeded", NULL, "%s", msg);
	/* Refused before anything went up: the live slot the create took is
	 * free again now, not when its hold runs out. */
	tenancy_not_created(r);
	pipeline_resume(r, STEP_FAIL);
}

enum step_result
tenancy_budget(struct request *r, long long gb_minutes, double usd)
{
	const struct tenant_limits *lim;
	char day[KEY_MAX], month[KEY_MAX], marker[KEY_MAX];
	const char *keys[2] = {day, month};
	long long limits[2], ttl[2] = {DAY_TTL_MS, MONTH_TTL_MS};
	time_t day_end, month_end;

	r->budget.gb_minutes = gb_minutes;
	r->budget.usd = usd;
	r->budget.charged = 1;
	if (r->tenant == NULL || gb_minutes <= 0)
		return STEP_NEXT;
	lim = tenant_limits(r->tenant);
	if (lim->gb_minutes_per_day == 0 && lim->gb_minutes_per_month == 0)
		return STEP_NEXT;
	r->budget.at = time(NULL);
	windows(r, r->budget.at, day, sizeof(day), month, sizeof(month), &day_end, &month_end);
	limits[0] = lim->gb_minutes_per_day;
	limits[1] = lim->gb_minutes_per_month;
	key(marker, sizeof(marker), "spent", r->id);
	r->store_op =
	        store_spend(r->ctx->store, keys, limits, ttl, 2, gb_minutes, marker, on_spent, r);
	return pipeline_wait(r, r->store_op != NULL);
}
