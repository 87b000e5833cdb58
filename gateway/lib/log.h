/*
 * log: the operational log, JSON lines on stderr.
 *
 * Separate from the audit log: this is for operators (start, stop, errors),
 * the audit log is the record of requests. Never pass a secret here.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_QUIET /* nothing */ };

void log_set_level(enum log_level level);

/* Parses "debug", "info", "warn" or "error"; -1 for anything else. */
int log_level_parse(const char *name);

/* The current UTC time as RFC 3339 with milliseconds. */
void log_rfc3339(char *dst, size_t n);

/* request_id may be NULL. */
void log_msg(enum log_level level, const char *request_id, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define log_info(...)  log_msg(LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, NULL, __VA_ARGS__)

#endif
