#include "app/tenancy.h"

#include <stdio.h>
#include <string.h>

#include "app/config.h"
#include "lib/log.h"
#include "app/reply.h"
#include "app/request.h"
#include "server.h"
#include "app/store.h"
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
	        r->audit_container_id[0] ? r->audit_container_id : r->container_id,
	        tenant_name(r->tenant));
}

/* The store could not answer: fail_closed refuses the request, fail_open
 * lets it through unchecked. Returns 1 when the request was answered. */
static int
unavailable(struct request *r)
{
	if (strcmp(server_snapshot_config(r->snap)->store_on_unavailable, "fail_open") == 0)
		return 0;
	reply_error(r, 503, ERR_INTERNAL, NULL, "store_unavailable",
	            "the gateway's shared store cannot be reached, so limits and ownership "
	            "cannot be checked; try again shortly");
	return 1;
}

/* Over a limit: 429 with Retry-After, or only a note in shadow mode.
 * Returns 1 when the request was answered. */
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
	reply_error(r, 429, "rate_limit_error", NULL, "rate_limit_exceeded", what);
	return 1;
}

/* --- every request ---------------------------------------------------- */

static void
on_owner(void *arg, enum store_status st, const char *owner)
{
	struct request *r = arg;
	char msg[256];

	r->store_op = NULL;
	if (st != STORE_OK && unavailable(r))
		return;
	if (st == STORE_OK && (owner == NULL || strcmp(owner, tenant_name(r->tenant)) != 0)) {
		/* Another tenant's container does not exist, as far as this
		 * tenant can tell. */
		snprintf(msg, sizeof(msg), "No container found with id '%s'.", r->container_id);
		reply_error(r, 404, ERR_INVALID, NULL, "not_found", msg);
		return;
	}
	r->next(r);
}

static void
check_owner(struct request *r)
{
	char k[KEY_MAX];

	if (r->container_id[0] == '\0') {
		r->next(r);
		return;
	}
	key(k, sizeof(k), "own", r->container_id);
	r->store_op = store_get(server_store(r->srv), k, on_owner, r);
}

static void reserve_slot(struct request *r);

/* The fixed-window limits, each counted in the store before the stage
 * after it runs. */
enum { RATE_REQUESTS, RATE_CREATES };

static const struct rate {
	const char *kind; /* the store key's */
	long long window_ms;
	const char *what; /* said when it is reached */
	void (*then)(struct request *r);
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

	r->store_op = NULL;
	if (st != STORE_OK && unavailable(r))
		return;
	if (st == STORE_OK && !allowed && over_limit(r, retry_ms, rate->what))
		return;
	rate->then(r);
}

/* Counts r against limit (0: none) and goes on to the rate's next stage,
 * unless the limit is reached. */
static void
count(struct request *r, int which, long long limit)
{
	char k[KEY_MAX];

	r->rate = which;
	if (limit == 0) {
		rates[which].then(r);
		return;
	}
	key(k, sizeof(k), rates[which].kind, tenant_name(r->tenant));
	r->store_op = store_hit(server_store(r->srv), k, limit, rates[which].window_ms, on_rate, r);
}

void
tenancy_admit(struct request *r, tenancy_next_fn next)
{
	if (r->tenant == NULL) {
		next(r);
		return;
	}
	r->next = next;
	count(r, RATE_REQUESTS, tenant_limits(r->tenant)->requests_per_second);
}

/* --- creates ----------------------------------------------------------- */

static void
on_slot(void *arg, enum store_status st, int allowed, long long retry_ms)
{
	struct request *r = arg;
	char msg[160];

	r->store_op = NULL;
	if (st != STORE_OK && unavailable(r))
		return;
	if (st == STORE_OK && allowed)
		r->holds_slot = 1;
	if (st == STORE_OK && !allowed) {
		snprintf(msg, sizeof(msg),
		         "this tenant already has its maximum of %lld live containers; delete one "
		         "or wait for one to expire",
		         tenant_limits(r->tenant)->max_live_containers);
		if (over_limit(r, retry_ms, msg))
			return;
	}
	r->next(r);
}

static void
reserve_slot(struct request *r)
{
	const struct tenant_limits *lim = tenant_limits(r->tenant);
	char k[KEY_MAX], member[64];

	if (lim->max_live_containers == 0) {
		r->next(r);
		return;
	}
	key(k, sizeof(k), "live", tenant_name(r->tenant));
	snprintf(member, sizeof(member), "pending:%s", r->id);
	r->store_op = store_reserve(server_store(r->srv), k, member, lim->max_live_containers,
	                            store_now_ms() + SLOT_HOLD_MS, on_slot, r);
}

void
tenancy_admit_create(struct request *r, tenancy_next_fn next)
{
	if (r->tenant == NULL) {
		next(r);
		return;
	}
	r->next = next;
	count(r, RATE_CREATES, tenant_limits(r->tenant)->creates_per_minute);
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
	r->next(r);
}

static void
on_settled(void *arg, enum store_status st)
{
	struct request *r = arg;
	char k[KEY_MAX];

	r->store_op = NULL;
	if (st != STORE_OK)
		log_store_loss(r);
	key(k, sizeof(k), "own", r->audit_container_id);
	r->store_op = store_set(server_store(r->srv), k, tenant_name(r->tenant), OWNERSHIP_TTL_MS,
	                        on_recorded, r);
}

void
tenancy_created(struct request *r, const char *id, long long minutes, tenancy_next_fn next)
{
	char k[KEY_MAX], member[64];

	if (r->tenant == NULL) {
		next(r);
		return;
	}
	r->next = next;
	key(k, sizeof(k), "live", tenant_name(r->tenant));
	snprintf(member, sizeof(member), "pending:%s", r->id);
	r->holds_slot = 0;
	/* The live set keeps it for its expiry from now: its last activity
	 * is its creation. */
	r->store_op = store_settle(server_store(r->srv), k, member, id,
	                           store_now_ms() + minutes * 60000, on_settled, r);
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
	(void)store_settle(server_store(r->srv), k, member, NULL, 0, NULL, NULL);
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
	r->store_op = store_set(server_store(r->srv), k, NULL, 0, on_recorded, r);
}

void
tenancy_deleted(struct request *r, tenancy_next_fn next)
{
	char k[KEY_MAX];

	if (r->tenant == NULL) {
		next(r);
		return;
	}
	r->next = next;
	key(k, sizeof(k), "live", tenant_name(r->tenant));
	r->store_op =
	        store_settle(server_store(r->srv), k, r->container_id, NULL, 0, on_forgotten, r);
}

/* --- lists ------------------------------------------------------------- */

static void
on_owners(void *arg, enum store_status st, char *const *owners, size_t n)
{
	struct request *r = arg;
	const char *me = tenant_name(r->tenant);
	size_t i;

	r->store_op = NULL;
	if (st != STORE_OK && unavailable(r))
		return;
	if (st == STORE_OK) {
		/* Walk backwards so removing keeps the indexes of the rest. */
		for (i = n; i-- > 0;) {
			if (owners[i] == NULL || strcmp(owners[i], me) != 0)
				json_array_remove(r->list_page, i);
		}
	}
	r->next(r);
}

void
tenancy_filter(struct request *r, json_t *items, tenancy_next_fn next)
{
	const char *keys[100];
	char buf[100][KEY_MAX];
	size_t i, n = json_array_size(items);
	json_t *item;

	if (r->tenant == NULL || n == 0) {
		next(r);
		return;
	}
	if (n > 100)
		n = 100; /* the upstream's page size is at most 100 */
	r->next = next;
	r->list_page = items;
	json_array_foreach(items, i, item)
	{
		if (i >= n)
			break;
		key(buf[i], sizeof(buf[i]), "own", json_string_value(json_object_get(item, "id")));
		keys[i] = buf[i];
	}
	while (json_array_size(items) > n)
		json_array_remove(items, n);
	r->store_op = store_mget(server_store(r->srv), keys, n, on_owners, r);
}
