#include "app/context.h"

#include <stdlib.h>

#include "app/snapshot.h"

struct context *
context_new(struct event_base *base, struct upstream *upstream, struct store *store,
            struct audit *audit, struct snapshot *snap, atomic_size_t *inflight)
{
	struct context *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->base = base;
	c->upstream = upstream;
	c->store = store;
	c->audit = audit;
	c->snap = snapshot_ref(snap);
	if (inflight == NULL) {
		inflight = malloc(sizeof(*inflight));
		if (inflight == NULL) {
			context_free(c);
			return NULL;
		}
		atomic_init(inflight, 0);
		c->own_inflight = 1;
	}
	c->inflight = inflight;
	return c;
}

void
context_free(struct context *c)
{
	if (c == NULL)
		return;
	snapshot_release(c->snap);
	if (c->own_inflight)
		free(c->inflight);
	free(c);
}

void
context_set_snapshot(struct context *c, struct snapshot *snap)
{
	struct snapshot *old = c->snap;

	c->snap = snapshot_ref(snap);
	snapshot_release(old); /* requests still using it keep it alive */
}

size_t
context_inflight(const struct context *c)
{
	return atomic_load_explicit(c->inflight, memory_order_relaxed);
}
