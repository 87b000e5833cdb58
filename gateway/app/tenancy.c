#include "app/tenancy.h"

#include <stdio.h>
#include <string.h>

#include "app/config.h"
#include "app/context.h"
#include "app/request.h"
#include "app/store.h"
#include "lib/log.h"
#include "policy/tenant.h"

#define SLOT_HOLD_MS     (5 * 60 * 1000)           /* a create's slot, until it is answered */
#define OWNERSHIP_TTL_MS (30LL * 24 * 3600 * 1000) /* kept well past any container */
#define KEY_MAX          320

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
 * Returns 1 when the request is refused. */
static int
over_limit(struct request *r, long long retry_ms, const char *what)
{
	long long secs = retry_ms > 0 ? (retry_ms + 999) / 1000 : 1;

	if (tenant_limits(r->tenant)->shadow) {
		if (r->shadow.status == 0)
			err_set(&r->shadow, 429, "rate_limit_error", "rate_limit_exceeded", NULL,
			        "%s (shadow mode: let through)", what);
		return 0;
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
		 * tenant can tell. */
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
	r->store_op = store_get(r->ctx->store, k, on_owner, r);
	return STEP_WAIT;
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
	    (st == STORE_OK && !allowed && over_limit(r, retry_ms, rate->what))) {
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
	return STEP_WAIT;
}

enum step_result
tenancy_admit(struct request *r)
{
	if (r->tenant == NULL)
		return STEP_NEXT;
	return count(r, RATE_REQUESTS, tenant_limits(r->tenant)->requests_per_second);
}

/* --- creates ----------------------------------------------------------- */

static void
on_slot(void *arg, enum store_status st, int allowed, long long retry_ms)
{
	struct request *r = arg;
	char msg[160];

	r->store_op = NULL;
	if (st != STORE_OK && unavailable(r)) {
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	if (st == STORE_OK && allowed)
		r->holds_slot = 1;
	if (st == STORE_OK && !allowed) {
		snprintf(msg, sizeof(msg),
		         "this tenant already has its maximum of %lld live containers; delete one "
		         "or wait for one to expire",
		         tenant_limits(r->tenant)->max_live_containers);
		if (over_limit(r, retry_ms, msg)) {
			pipeline_resume(r, STEP_FAIL);
			return;
		}
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
	return STEP_WAIT;
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
}

enum step_result
tenancy_created(struct request *r, long long minutes)
{
	char k[KEY_MAX], member[64];

	if (r->tenant == NULL)
		return STEP_NEXT;
	key(k, sizeof(k), "live", tenant_name(r->tenant));
	snprintf(member, sizeof(member), "pending:%s", r->id);
	r->holds_slot = 0;
	/* The live set keeps it for its expiry from now: its last activity
	 * is its creation. */
	r->store_op = store_settle(r->ctx->store, k, member, r->rec.container_id,
	                           store_now_ms() + minutes * 60000, on_settled, r);
	return STEP_WAIT;
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
	return STEP_WAIT;
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
}

enum step_result
tenancy_deleted(struct request *r)
{
	char k[KEY_MAX];

	if (r->tenant == NULL)
		return STEP_NEXT;
	key(k, sizeof(k), "live", tenant_name(r->tenant));
	r->store_op = store_settle(r->ctx->store, k, r->container_id, NULL, 0, on_forgotten, r);
	return STEP_WAIT;
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
}
