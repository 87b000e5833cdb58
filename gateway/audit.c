#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "secmem.h"

struct audit {
	int fd;
	int owned;
	unsigned long failures;
};

struct audit *
audit_open(const char *path, struct err *e)
{
	struct audit *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		err_set(e, 500, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
		return NULL;
	}
	if (strcmp(path, "-") == 0) {
		a->fd = STDOUT_FILENO;
		return a;
	}
	a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0) {
		err_set(e, 500, ERR_INTERNAL, "audit_unwritable", NULL,
		        "cannot open audit log %s: %s", path, strerror(errno));
		free(a);
		return NULL;
	}
	a->owned = 1;
	return a;
}

void
audit_free(struct audit *a)
{
	if (a == NULL)
		return;
	if (a->owned)
		close(a->fd);
	free(a);
}

unsigned long
audit_failures(const struct audit *a)
{
	return a->failures;
}

/* Milliseconds to the microsecond: enough for latency, short to read. */
static double
ms3(double ms)
{
	return (double)(long long)(ms * 1000.0 + 0.5) / 1000.0;
}

#define AUDIT_KEYS 25 /* the keys build() sets */

/* Sets key to a string, or null; every key is always present, so each
 * line has the same shape for whatever reads the log. */
static void
put_str(json_t *o, const char *key, const char *v)
{
	json_object_set_new(o, key, v ? json_string(v) : json_null());
}

static void
put_json(json_t *o, const char *key, const json_t *v)
{
	json_object_set_new(o, key, v ? json_deep_copy(v) : json_null());
}

static json_t *
build(const struct audit_event *ev)
{
	json_t *o = json_object();
	char ts[40];

	if (o == NULL)
		return NULL;
	log_rfc3339(ts, sizeof(ts));
	put_str(o, "ts", ts);
	put_str(o, "request_id", ev->request_id);
	put_str(o, "upstream_request_id", ev->upstream_request_id);
	put_str(o, "client", ev->client);
	put_str(o, "tenant", ev->tenant);
	put_str(o, "method", ev->method);
	put_str(o, "path", ev->path);
	put_str(o, "operation", ev->operation);
	put_str(o, "decision", ev->decision);
	put_str(o, "code", ev->code);
	put_str(o, "param", ev->param && *ev->param ? ev->param : NULL);
	put_str(o, "message", ev->message);
	json_object_set_new(o, "status", json_integer(ev->status));
	json_object_set_new(o, "upstream_status",
	                    ev->upstream_status ? json_integer(ev->upstream_status) : json_null());
	json_object_set_new(o, "latency_ms", json_real(ms3(ev->latency_ms)));
	json_object_set_new(o, "upstream_ms",
	                    ev->upstream_status || ev->upstream_ms > 0
	                            ? json_real(ms3(ev->upstream_ms))
	                            : json_null());
	put_str(o, "container_id", ev->container_id);
	put_str(o, "file_id", ev->file_id);
	put_str(o, "memory_limit", ev->memory_limit);
	put_json(o, "network_policy", ev->network_policy);
	put_json(o, "adjustments", ev->adjustments);
	put_json(o, "violations", ev->violations);
	put_json(o, "remediation", ev->remediation);
	json_object_set_new(o, "bytes_in", json_integer((json_int_t)ev->bytes_in));
	json_object_set_new(o, "bytes_out", json_integer((json_int_t)ev->bytes_out));
	/* A key that could not be set (memory) makes the record incomplete. */
	if (json_object_size(o) != AUDIT_KEYS) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int
audit_write(struct audit *a, const struct audit_event *ev)
{
	json_t *rec = build(ev);
	char *line = NULL;
	size_t len;
	ssize_t n;
	int rc = -1;

	/* A record that cannot be built (memory, or a string that is not
	 * UTF-8) still leaves a trace rather than nothing. */
	if (rec == NULL)
		rec = json_pack("{s:s*, s:s*, s:i, s:s}", "request_id", ev->request_id, "decision",
		                ev->decision, "status", ev->status, "code",
		                "audit_record_incomplete");
	if (rec)
		line = json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(12));
	if (line == NULL)
		goto out;
	len = strlen(line);
	line[len] = '\n';
	n = write(a->fd, line, len + 1);
	if (n == (ssize_t)len + 1)
		rc = 0;
out:
	if (rc < 0) {
		a->failures++;
		log_msg(LOG_ERROR, ev->request_id, "audit record not written: %s",
		        line ? strerror(errno) : "out of memory");
	}
	secmem_json_free(line);
	json_decref(rec);
	return rc;
}
