#include "lib/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set by a reload on the main thread, read by every worker. */
static _Atomic int threshold = LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

void
log_set_level(enum log_level level)
{
	atomic_store_explicit(&threshold, (int)level, memory_order_relaxed);
}

int
log_level_parse(const char *name)
{
	int i;

	for (i = 0; i < 4; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

void
log_rfc3339(char *dst, size_t n)
{
	/* Each thread keeps the text of the second it last wrote: only the
	 * milliseconds change between the records of one second. */
	static _Thread_local time_t second = -1;
	static _Thread_local char prefix[32];
	static _Thread_local int plen;
	struct timespec now;
	struct tm tm;
	long ms;

	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec != second) {
		gmtime_r(&now.tv_sec, &tm);
		plen = snprintf(prefix, sizeof(prefix), "%04d-%02d-%02dT%02d:%02d:%02d.",
		                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		                tm.tm_sec);
		second = plen > 0 && (size_t)plen < sizeof(prefix) ? now.tv_sec : -1;
	}
	ms = now.tv_nsec / 1000000;
	if (second < 0 || (size_t)plen + 5 > n) {
		snprintf(dst, n, "(no time)");
		return;
	}
	memcpy(dst, prefix, (size_t)plen);
	dst[plen] = (char)('0' + ms / 100);
	dst[plen + 1] = (char)('0' + ms / 10 % 10);
	dst[plen + 2] = (char)('0' + ms % 10);
	dst[plen + 3] = 'Z';
	dst[plen + 4] = '\0';
}

void
log_msg(enum log_level level, const char *request_id, const char *fmt, ...)
{
	char msg[1024], ts[40], line[2048];
	va_list ap;
	json_t *rec;
	size_t n = 0;

	if ((int)level < atomic_load_explicit(&threshold, memory_order_relaxed))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_rfc3339(ts, sizeof(ts));
	rec = json_pack("{s:s, s:s, s:s*, s:s}", "ts", ts, "level", names[level], "request_id",
	                request_id, "msg", msg);
	if (rec)
		n = json_dumpb(rec, line, sizeof(line) - 1, JSON_COMPACT);
	json_decref(rec);
	if (n == 0 || n >= sizeof(line) - 1)
		n = (size_t)snprintf(line, sizeof(line),
		                     "{\"level\":\"%s\",\"msg\":\"(unloggable)\"}", names[level]);
	line[n] = '\n';
	(void)!write(STDERR_FILENO, line, n + 1);
}
