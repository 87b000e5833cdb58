#include "app/snapshot.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "app/config.h"
#include "http/tls.h"
#include "policy/policyset.h"

struct snapshot {
	atomic_ulong refs;
	struct config *cfg;
	struct policyset *policies;
	struct tls_server *tls;
};

struct snapshot *
snapshot_new(struct config *cfg, struct policyset *policies, struct tls_server *tls)
{
	struct snapshot *snap = calloc(1, sizeof(*snap));

	if (snap == NULL)
		return NULL;
	atomic_init(&snap->refs, 1);
	snap->cfg = cfg;
	snap->policies = policies;
	snap->tls = tls;
	return snap;
}

struct snapshot *
snapshot_ref(struct snapshot *snap)
{
	atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
	return snap;
}

void
snapshot_release(struct snapshot *snap)
{
	if (snap == NULL || atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) > 1)
		return;
	tls_server_free(snap->tls);
	policyset_free(snap->policies);
	config_free(snap->cfg);
	free(snap);
}

const struct config *
snapshot_config(const struct snapshot *snap)
{
	return snap->cfg;
}

const struct policyset *
snapshot_policies(const struct snapshot *snap)
{
	return snap->policies;
}

struct tls_server *
snapshot_tls(const struct snapshot *snap)
{
	return snap->tls;
}
