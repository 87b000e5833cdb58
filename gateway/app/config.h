/*
 * config: the gateway's settings file.
 *
 * Plain data: every key, its default and its bounds are in the table in
 * config.c, and the README's reference is written from it. Relative paths
 * are resolved against the folder of the config file.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <jansson.h>

#include "lib/err.h"

#include <jansson.h>

struct config {
	char *file; /* the config file itself */

	char *listen; /* "host:port" */
	char *listen_host;
	int listen_port;

	char *upstream_base_url;
	long long upstream_timeout_ms;
	long long upstream_connect_timeout_ms;
	long long upstream_max_response_bytes;
	long long upstream_max_idle_connections;
	char *upstream_ca_file;
	int upstream_insecure_skip_verify;

	char *audit_path;
	char *audit_hmac_key_env;
	char *audit_hmac_key_file;
	char *audit_key; /* loaded from one of those; wiped when freed */
	size_t audit_key_len;
	char *audit_signing_key_file;
	char *audit_origin; /* the checkpoints' origin; "<hostname>/audit" when unset */
	long long audit_checkpoint_every;
	long long audit_checkpoint_interval_ms;
	char *audit_witness_url; /* checkpoints are POSTed there */
	char *audit_anchor;      /* "redis://...": checkpoints are pushed there */
	char *audit_fsync;       /* "always", "interval" or "never" */
	long long audit_fsync_interval_ms;
	long long audit_intent_timeout_ms; /* an intent not durable by then: 503 */
	char *audit_on_failure;            /* "fail_closed" or "fail_open" */
	long long audit_max_bytes;
	char *policy_file;
	char *log_level;

	long long max_body_bytes;
	/* Where a large create body's large strings are set aside (spool.h):
	 * limits.spool_dir, else $TMPDIR, else /tmp. */
	char *spool_dir;
	long long max_spool_bytes; /* what all spools' files may hold at once */
	long long max_json_bytes;  /* a create's JSON besides what is spooled */
	long long max_header_bytes;
	long long header_timeout_ms;
	long long body_timeout_ms;
	long long idle_timeout_ms;
	long long max_connections;

	int passthrough_unknown;

	/* The listener's TLS (all NULL: plain HTTP) and mutual TLS. */
	char *tls_cert;
	char *tls_key;
	char *tls_min_version; /* "1.2" or "1.3" */
	char *tls_client_ca;
	int tls_require_client_cert;
	char *upstream_pinned_pubkey; /* "sha256//..." or a key file */

	/* Operations. */
	char *admin_listen; /* "host:port", or NULL for none */
	char *log_path;     /* "-": stderr */
	char *pid_file;
	long long shutdown_grace_ms;
	long long max_inflight;
	long long workers;   /* event loops, each on its own thread */
	json_t *workers_doc; /* as written: a number or "auto" */
	int workers_auto;    /* "auto": one per usable core */

	char *auth_mode; /* "passthrough" or "gateway_keys" */
	char *upstream_api_key_env;
	char *upstream_api_key_file;
	char *upstream_api_key;      /* loaded from one of those; wiped when freed */
	char *upstream_organization; /* sent as OpenAI-Organization in gateway_keys mode */
	char *upstream_project;      /* sent as OpenAI-Project in gateway_keys mode */
	size_t upstream_api_key_len;

	/* auth.jwt: bearer tokens of an identity provider, off when jwt is 0.
	 * Its keys come from jwks_url (fetched, then refreshed) or jwks_file. */
	int jwt;
	char *jwt_issuer;
	json_t *jwt_audience;       /* a string, or an array of them */
	const char **jwt_audiences; /* the same as C strings, borrowed */
	size_t jwt_naudiences;
	char *jwt_jwks_url;
	char *jwt_jwks_file;
	char *jwt_ca_file; /* https jwks_url: the CAs; NULL: the system's */
	long long jwt_refresh_ms;
	long long jwt_clock_skew_s;
	json_t *jwt_groups_claim; /* a claim's name, or the names leading to it */
	const char **jwt_groups;  /* the same as a path of C strings, borrowed */
	size_t jwt_ngroups;
	json_t *jwt_person_claims; /* strings, e.g. ["email"] */
	const char **jwt_person;   /* the same as C strings, borrowed from it */
	size_t jwt_nperson;

	char *store_type; /* "memory" or "redis" */
	char *store_url;
	char *store_on_unavailable;
	long long store_timeout_ms;
	char *store_path; /* "memory": where its state is kept; "": nowhere */
	char *store_password_env;
	char *store_password_file;
	char *store_password; /* loaded from one of those; wiped when freed */
	size_t store_password_len;
	char *store_ca_file; /* rediss://: the CAs the server is checked against */
	char *store_cert_file, *store_key_file; /* rediss://: a client certificate */

	/* What a container costs (pricing.*): the upstream's session, and its
	 * price per session for each memory size, in the order 1g, 4g, 16g,
	 * 64g; for budgets and the audit record's estimate. */
	long long session_minutes;

	/* Tracing (telemetry.*): where spans go over OTLP/HTTP; NULL: nowhere. */
	char *otlp_url;
	char *otlp_service_name;
	long long otlp_timeout_ms, otlp_flush_ms;
	json_t *prices_doc;
	double session_usd[4];
};

/* Reads path. On failure returns NULL with every problem added to errs. */
struct config *config_load(const char *path, struct errlist *errs);
void config_free(struct config *c);

struct audit_settings;
struct conn_limits;
struct jwt_rules;
struct upstream_settings;

/* What the config says, in the terms of the parts it sets up: the audit
 * log, the upstream client, the client connections. Strings are
 * borrowed from cfg. */
void config_audit_settings(const struct config *cfg, struct audit_settings *s);
void config_upstream_settings(const struct config *cfg, struct upstream_settings *s);
void config_conn_limits(const struct config *cfg, struct conn_limits *l);

/* What auth.jwt asks of a token, for jwt_verify; borrowed from cfg. */
void config_jwt_rules(const struct config *cfg, struct jwt_rules *rules);

#endif
