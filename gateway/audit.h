/*
 * audit: one JSON line per request, whatever became of it.
 *
 * The record of a request is written before its reply is sent, with a
 * single write(2) on a file opened for appending, so concurrent writers
 * never interleave within a line.
 */
#ifndef GW_AUDIT_H
#define GW_AUDIT_H

#include <jansson.h>

#include "err.h"

struct audit;

/* Opens path for appending ("-" for standard output). */
struct audit *audit_open(const char *path, struct err *e);
void audit_free(struct audit *a);

/* One request's record. Strings and JSON values are borrowed; NULL or 0
 * fields are written as null. network_policy must already be redacted. */
struct audit_event {
	const char *request_id;
	const char *upstream_request_id;
	const char *tenant; /* NULL: the organization */
	const char *client;
	const char *method;
	const char *path;
	const char *operation; /* the spec's operationId, NULL for unknown routes */
	const char *decision;  /* "allow", "deny" or "error" */
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
	unsigned long long bytes_in;  /* request body bytes */
	unsigned long long bytes_out; /* answer body bytes sent */
};

/* Writes ev as one line. Returns 0, or -1 when the line could not be
 * written whole (the failure is logged and counted). */
int audit_write(struct audit *a, const struct audit_event *ev);

/* Records lost to write errors since start. */
unsigned long audit_failures(const struct audit *a);

#endif
