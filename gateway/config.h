/*
 * config: the gateway's settings file.
 *
 * Plain data: every key, its default and its bounds are in the table in
 * config.c, and the README's reference is written from it. Relative paths
 * are resolved against the folder of the config file.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include "err.h"

struct config {
	char *file; /* the config file itself */

	char *listen; /* "host:port" */
	char *listen_host;
	int listen_port;

	char *upstream_base_url;
	long long upstream_timeout_ms;
	long long upstream_connect_timeout_ms;
	long long upstream_max_response_bytes;
	char *upstream_ca_file;
	int upstream_insecure_skip_verify;

	char *audit_path;
	char *policy_file;
	char *log_level;

	long long max_body_bytes;
	long long max_header_bytes;
	long long header_timeout_ms;
	long long body_timeout_ms;
	long long idle_timeout_ms;
	long long max_connections;

	int passthrough_unknown;
};

/* Reads path. On failure returns NULL with every problem added to errs. */
struct config *config_load(const char *path, struct errlist *errs);
void config_free(struct config *c);

#endif
