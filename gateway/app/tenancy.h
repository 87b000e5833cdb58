/*
 * tenancy: what a tenant may do with the state replicas share: its rate
 * limits, its live containers, and which containers are its own.
 *
 * The calls below are pipeline steps (or a step's part) that ask the
 * store (and, for a tenant at its live-container cap, the upstream about
 * the containers it holds past their expiry): each returns STEP_WAIT and resumes the pipeline once
 * the store has answered, with STEP_NEXT, or STEP_FAIL and r->error saying why: 429 over a limit
 * (r->retry_after set), 404 for another tenant's container, 503 when the store is down and
 * store.on_unavailable is fail_closed. Tenancy never answers a request itself. Requests of the
 * organization itself (no tenant) pass at once.
 */
#ifndef GW_TENANCY_H
#define GW_TENANCY_H

#include <jansson.h>

#include "app/pipeline.h"

struct request;

/* Every request: requests_per_second, and, when the path names a
 * container, that it is the tenant's. */
enum step_result tenancy_admit(struct request *r);

/* A create, once the policy has decided on it: creates_per_minute and
 * max_live_containers (a slot is held for it until tenancy_created). */
enum step_result tenancy_admit_create(struct request *r);

/* The upstream made the container r->rec.container_id: it becomes the
 * tenant's and fills the held slot. It counts until it is deleted or the
 * upstream says it is gone; expires_at_ms (wall clock) is when to ask.
 * A record the store could not keep is logged; the step goes on. */
enum step_result tenancy_created(struct request *r, long long expires_at_ms);

/* The upstream made r->rec.container_id but it breaks what was asked and
 * is withheld from the client: it is no tenant's (another tenant's, as far
 * as this one can tell: not listed, not retrievable, not usable), and the
 * held slot is given back. */
enum step_result tenancy_withheld(struct request *r);

/*
 * Budgets: the request's containers cost gb_minutes (memory in GB times
 * minutes) and usd (the estimate); both go on its record. A tenant with a
 * budget (budget.gb_minutes_per_day, _per_month) has them reserved before
 * anything is forwarded, all windows or none, exactly across replicas: 429
 * budget_exceeded when they do not fit (x-should-retry: false, Retry-After
 * until the window that refused resets), a note in shadow mode. What is
 * reserved goes back if the request ends before tenancy_budget_spent.
 */
enum step_result tenancy_budget(struct request *r, long long gb_minutes, double usd);

/* The upstream made the containers: what was reserved stays spent. */
void tenancy_budget_spent(struct request *r);

/* GB-minutes and the estimated price of one container of memory_limit
 * ("1g" ...) kept for minutes; 0 for a size the API does not have. */
long long tenancy_gb_minutes(const char *memory_limit, long long minutes);
double tenancy_usd(const struct request *r, const char *memory_limit, long long minutes);

/* The create made no container: the held slot is given back. A request
 * that ends without r->forwarded set gives its slot back by itself. */
void tenancy_not_created(struct request *r);

/* The request's container was deleted: it is no longer anyone's. */
enum step_result tenancy_deleted(struct request *r);

/* Keeps, of a page of containers (a JSON array, changed in place), those
 * that are the tenant's own, then calls then(r, 1); then(r, 0) with
 * r->error set when the store could not be asked and fail_closed. */
void tenancy_filter(struct request *r, json_t *items, void (*then)(struct request *r, int ok));

#endif
