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

static json_t *
build(const struct audit_event *ev)
{
	char ts[40];

	log_rfc3339(ts, sizeof(ts));
	/* Every key is always present, null when it does not apply, so each
	 * line has the same shape for whatever reads the log. */
	return json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:i,"
	                 " s:o, s:f, s:o, s:s?, s:s?, s:O?, s:O?, s:O?}",
	                 "ts", ts, "request_id", ev->request_id, "upstream_request_id",
	                 ev->upstream_request_id, "client", ev->client, "method", ev->method,
	                 "path", ev->path, "operation", ev->operation, "decision", ev->decision,
	                 "code", ev->code, "param", ev->param && *ev->param ? ev->param : NULL,
	                 "message", ev->message, "status", ev->status, "upstream_status",
	                 ev->upstream_status ? json_integer(ev->upstream_status) : json_null(),
	                 "latency_ms", ms3(ev->latency_ms), "upstream_ms",
	                 ev->upstream_status || ev->upstream_ms > 0
	                         ? json_real(ms3(ev->upstream_ms))
	                         : json_null(),
	                 "container_id", ev->container_id, "memory_limit", ev->memory_limit,
	                 "network_policy", ev->network_policy, "adjustments", ev->adjustments,
	                 "violations", ev->violations);
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
