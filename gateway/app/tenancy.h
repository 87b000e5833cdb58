/*
 * tenancy: what a tenant may do with the state replicas share: its rate
 * limits, its live containers, and which containers are its own.
 *
 * Each step asks the store and then either calls next(r) or answers the
 * request itself (429 over a limit, 404 for another tenant's container,
 * 503 when the store is down and store.on_unavailable is fail_closed).
 * Requests of the organization itself (no tenant) pass untouched.
 */
#ifndef GW_TENANCY_H
#define GW_TENANCY_H

#include <jansson.h>

struct request;

typedef void (*tenancy_next_fn)(struct request *r);

/* Every request: requests_per_second, and, when the path names a
 * container, that it is the tenant's. */
void tenancy_admit(struct request *r, tenancy_next_fn next);

/* A create, once the policy has decided on it: creates_per_minute and
 * max_live_containers (a slot is held for it until tenancy_created). */
void tenancy_admit_create(struct request *r, tenancy_next_fn next);

/* The upstream made container id for a create: it becomes the tenant's
 * and fills the held slot until it expires (minutes from now). */
void tenancy_created(struct request *r, const char *id, long long minutes, tenancy_next_fn next);

/* The create made no container: the held slot is given back. */
void tenancy_not_created(struct request *r);

/* The request's container was deleted: it is no longer anyone's. */
void tenancy_deleted(struct request *r, tenancy_next_fn next);

/* Keeps, of a page of containers (a JSON array, changed in place), those
 * that are the tenant's own, then calls next. */
void tenancy_filter(struct request *r, json_t *items, tenancy_next_fn next);

#endif
