/*
 * multipart: a multipart/form-data body checked as it streams past.
 *
 * File uploads are forwarded as they arrive, never buffered whole, so the
 * body is checked incrementally: well-formed delimiters, bounded part
 * headers, a Content-Disposition naming each part, and only the parts the
 * contract knows. The bytes themselves are not changed; the caller forwards
 * exactly what it fed in.
 */
#ifndef GW_MULTIPART_H
#define GW_MULTIPART_H

#include <stddef.h>

#include "lib/err.h"

struct multipart;

/*
 * Reads the boundary from a Content-Type header value ("multipart/form-data;
 * boundary=..."; the boundary may be quoted; 1..70 characters of the RFC 2046
 * bchars). allowed is a NULL-terminated list of part names the body may
 * carry (each at most once). Returns NULL with e filled (status 400, or 415
 * when the type is not multipart/form-data) when the header is unusable.
 */
struct multipart *multipart_new(const char *content_type, size_t len, const char *const *allowed,
                                struct err *e);
void multipart_free(struct multipart *m);

/*
 * Feeds the next len bytes of the body. Returns 0 while the body is fine so
 * far, 1 once the close delimiter has been read (bytes after it are the
 * epilogue and are ignored), -1 with e filled (status 400, param the part
 * name when there is one) when the body is malformed or carries a part that
 * is not allowed, a part twice, or part headers over 8 KiB.
 */
int multipart_feed(struct multipart *m, const char *data, size_t len, struct err *e);

/* Whether a part of this name was seen complete (its data and the
 * delimiter after it). */
int multipart_has(const struct multipart *m, const char *name);

/* The filename given for a part in its Content-Disposition, or NULL. The
 * pointer is owned by m. */
const char *multipart_filename(const struct multipart *m, const char *name);

#endif
