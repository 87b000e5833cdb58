/*
 * err: the one error convention.
 *
 * A function that can fail returns -1 (or NULL) and fills a caller-owned
 * struct err. For errors a client caused, the struct carries everything the
 * reply needs: the HTTP status, the upstream's error "type", a "code" naming
 * the rule, the JSON path of the offending field ("param") and a message a
 * person can act on. type and code always point at static strings.
 *
 * Configuration checks report every problem rather than the first, so they
 * collect into a bounded struct errlist instead.
 */
#ifndef GW_ERR_H
#define GW_ERR_H

#include <stdarg.h>
#include <stddef.h>

#define ERR_PARAM_MAX   256
#define ERR_MESSAGE_MAX 512

struct err {
	int status;
	const char *type;
	const char *code;
	char param[ERR_PARAM_MAX];
	char message[ERR_MESSAGE_MAX];
};

#define ERR_INVALID  "invalid_request_error"
#define ERR_POLICY   "policy_violation"
#define ERR_UPSTREAM "upstream_error"
#define ERR_INTERNAL "server_error"

void err_clear(struct err *e);

/* Fills e; param may be NULL for none. Returns -1 so callers can
 * `return err_set(...)`. */
int err_set(struct err *e, int status, const char *type, const char *code, const char *param,
            const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * Writes s (len bytes) into dst as a double-quoted, printable-ASCII excerpt
 * for use in messages: at most 64 characters of it, anything outside
 * printable ASCII shown as \xNN, an ellipsis if it was cut. Never pass a
 * secret value here. Returns dst.
 */
/* err_set with a va_list, for functions that wrap it. */
int err_vset(struct err *e, int status, const char *type, const char *code, const char *param,
             const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

char *err_quote(char *dst, size_t n, const char *s, size_t len);

#define ERRLIST_MAX 64

struct errlist {
	size_t n;           /* messages kept */
	size_t dropped;     /* messages beyond ERRLIST_MAX */
	const char *prefix; /* put before every path, for documents within a document */
	char msg[ERRLIST_MAX][ERR_MESSAGE_MAX];
};

/* Adds "file: path: message" (path omitted when NULL or empty), with
 * prefix and a dot before path when prefix is set; with file NULL, just
 * the message (one taken whole from another list). */
void errlist_add(struct errlist *l, const char *file, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

#endif
