/*
 * audit: the record of every request, chained so it can be trusted.
 *
 * One JSON line per request ("type":"request"), whatever became of it,
 * written before its reply is sent; for a request forwarded upstream, an
 * "intent" line first, durable per audit.fsync before anything is sent.
 * Every line but a checkpoint is a leaf of one Merkle tree over the log
 * and its rotated files (tlog.h); "segment" lines mark a start, a rotation
 * or a line torn by a crash and carry the tree so far. "checkpoint" lines
 * hold a signed note of the tree's size and root (note.h), made every
 * audit.checkpoint_every records, at most audit.checkpoint_interval_ms
 * after a record (an "idle" leaf marks an interval with none), and at
 * rotation and shutdown; each is shipped to a witness or Redis (anchor.h)
 * and stored again with a witness's cosignature. Lines also carry "seq",
 * "prev" and "mac" (chain.h), for auditors who hold the HMAC key.
 *
 * Lines are written on the writer's event loop, each in one write(2) (a
 * short write is cut back, so no line is ever half-written), one writer at
 * a time when several workers share the log: that never waits for the
 * disk, and a record written before its reply survives the process dying
 * right after. Waiting for the disk (fdatasync) is a sync thread's job,
 * which hands each callback back to the loop that asked for it. When the
 * log cannot be written, fail_closed makes audit_available say no (the
 * gateway answers 503) and keeps the lines to retry in order; fail_open
 * drops and counts them.
 */
#ifndef GW_AUDIT_H
#define GW_AUDIT_H

#include <jansson.h>
#include <stddef.h>

#include "lib/err.h"

struct audit;
struct event_base;

enum audit_fsync { AUDIT_FSYNC_ALWAYS, AUDIT_FSYNC_INTERVAL, AUDIT_FSYNC_NEVER };

struct audit_settings {
	const char *path;         /* "-": standard output */
	const unsigned char *key; /* HMAC key; NULL: a plain SHA-256 chain */
	size_t keylen;
	const char *signing_key_file; /* Ed25519 PEM; NULL: unsigned checkpoints */
	const char *origin;           /* the checkpoints' origin and key name */
	long long checkpoint_every;
	long long checkpoint_interval_ms; /* 0: no timer */
	const char *witness_url;          /* NULL: none */
	const char *anchor_url;           /* "redis://..."; NULL: none */
	enum audit_fsync fsync;
	long long fsync_interval_ms;
	int fail_open;
	long long max_bytes; /* rotate past this size; 0: never */
};

/*
 * Opens the log and continues its chain and its tree from the lines
 * already there (a torn last line is ended and declared; the tree is read
 * back whole). With base, a sync thread waits for the disk, failed writes
 * are retried from a timer, checkpoints come on a timer too and are
 * shipped; without, syncs happen in the call (tools and tests).
 */
struct audit *audit_open_with(struct event_base *base, const struct audit_settings *s,
                              struct err *e);

/* audit_open_with(NULL, ...) with default settings, for path: no thread,
 * and a failed write is not retried. */
struct audit *audit_open(const char *path, struct err *e);

/* Writes a final checkpoint, flushes and closes. */
void audit_free(struct audit *a);

/* One request's record. Strings and JSON values are borrowed; NULL or 0
 * fields are written as null. network_policy must already be redacted. */
struct audit_event {
	const char *request_id;
	const char *upstream_request_id;
	/* The W3C trace the request belongs to, the gateway's span in it and
	 * the client's span it hangs off ("" when none); sampled: whether the
	 * client wants it traced. */
	const char *trace_id;
	const char *span_id;
	const char *parent_span_id;
	int sampled;
	const char *tenant;         /* NULL: the organization */
	const char *credential;     /* "key:sha256:<prefix>", "cert:sha256:<hex>" or
	                               "jwt:<iss>#<kid>" */
	const json_t *person;       /* a token's {"sub", ...}; NULL: unknown */
	const char *policy_version; /* policyset_version of the rules that decided */
	const char *client;
	const char *method;
	const char *path;
	const char *operation; /* the spec's operationId, NULL for unknown routes */
	const char *decision;  /* "allow", "deny", "shadow_deny" or "error" */
	const char *code;      /* the rule that fired or the error, NULL when allowed */
	const char *param;
	const char *message;
	int status;
	int upstream_status;
	double latency_ms;
	double upstream_ms;
	const char *container_id;
	const char *memory_limit;
	const json_t *network_policy;
	const json_t *adjustments;
	const json_t *violations;
	const json_t *remediation;
	const char *file_id;
	/* A Responses call: the containers its tools make, as decided (each
	 * {"param", "memory_limit", "network_policy"}, secrets redacted), and
	 * the containers the call made or used, by id. NULL otherwise. */
	const json_t *tool_containers;
	const json_t *containers;
	/* What the request's containers cost, when it makes any: memory
	 * times minutes, and the estimate from the price table. */
	int charged;
	long long gb_minutes;
	double cost_usd;
	unsigned long long bytes_in;  /* request body bytes */
	unsigned long long bytes_out; /* answer body bytes sent */
};

/* Writes ev's record (or keeps it to retry, fail_closed). Returns 0, or -1
 * when it is lost (logged and counted). */
int audit_write(struct audit *a, const struct audit_event *ev);

/*
 * Writes the intent line of a request about to be forwarded, from the
 * event loop base (attached, below). Returns 1
 * when it is already as safe as audit.fsync asks (written; on disk for
 * "always"), 0 when durable(arg, 1) will be called from the event loop
 * once it is (on disk, or written after the log failed), -1 when it is
 * lost (fail_open, or no room to keep it).
 */
int audit_intent(struct audit *a, struct event_base *base, const struct audit_event *ev,
                 void (*durable)(void *arg, int ok), void *arg);

/* Another event loop (a worker's) that writes records: durable callbacks
 * of its intents run on it. The loop given to audit_open_with is attached
 * already. Detach before the loop is freed. Returns 0 or -1. */
int audit_attach(struct audit *a, struct event_base *base);
void audit_detach(struct audit *a, struct event_base *base);

/* Forgets durable callbacks for arg (its request is gone). */
void audit_forget(struct audit *a, void *arg);

/* A reload (SIGHUP or the admin API), on record: the policy version in
 * force before and, when it worked, after; when it failed (new_version
 * NULL), the first problem found. Returns 0 or -1. */
int audit_reload(struct audit *a, const char *config_file, const char *old_version,
                 const char *new_version, const char *problem);

/* Whether new requests may be taken: false while records cannot be written
 * and audit.on_failure is fail_closed. */
int audit_available(const struct audit *a);

/* Records lost to write errors since start. */
unsigned long audit_failures(const struct audit *a);

/* Attempts to ship a checkpoint to the witness or anchor that failed. */
unsigned long audit_anchor_failures(const struct audit *a);

/* SIGUSR1: checkpoint the current file, open the path afresh (logrotate
 * has moved the old one), and go on with the chain. Returns 0 or -1. */
int audit_reopen(struct audit *a, struct err *e);

/* The key the chain is made under, for secret fingerprints too. */
struct chain_key *audit_key(const struct audit *a);

#endif
