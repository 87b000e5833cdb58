/*
 * snapshot: the configuration, policy and TLS context in force, together.
 *
 * A reload builds a new snapshot whole and swaps it in; each request holds
 * the one in force when it started, so a reload never changes or frees
 * what a request in flight is using. References are counted atomically:
 * every worker's requests hold them.
 */
#ifndef GW_SNAPSHOT_H
#define GW_SNAPSHOT_H

struct config;
struct policyset;
struct snapshot;
struct tls_server;

/* Takes cfg, the policy set and tls (NULL: plain HTTP); the caller holds
 * the one reference. NULL when memory runs out (nothing is taken then). */
struct snapshot *snapshot_new(struct config *cfg, struct policyset *policies,
                              struct tls_server *tls);

/* Another reference to snap. */
struct snapshot *snapshot_ref(struct snapshot *snap);

/* Drops a reference; the last one frees it all. NULL is fine. */
void snapshot_release(struct snapshot *snap);

/* Borrowed from the snapshot, for as long as a reference is held. */
const struct config *snapshot_config(const struct snapshot *snap);
const struct policyset *snapshot_policies(const struct snapshot *snap);
struct tls_server *snapshot_tls(const struct snapshot *snap);

#endif
