/*
 * jsonspool: a JSON body read as it arrives, its large strings set aside
 * in a spool.
 *
 * The body goes through a small lexer on its way in. The value of a key
 * the caller names (a create's inline skill "data") is checked as the
 * parser would check a string (UTF-8, escapes, surrogates, control
 * characters) and counted; once its text passes a threshold it goes to
 * the spool instead of memory. What stays in memory is the body with
 * those strings' text taken out, which jsondoc_parse_spooled reads as if
 * it were the whole body: the same document, the same errors at the same
 * places. The rest of the body is left to the parser.
 */
#ifndef GW_JSONSPOOL_H
#define GW_JSONSPOOL_H

#include <stddef.h>

#include "lib/err.h"
#include "lib/jsondoc.h"

struct jsonspool;
struct spool;

/* spool and names (key names, ended by NULL) are borrowed; strings whose
 * text is longer than min bytes are spooled. The rest of the body may
 * hold at most max_text bytes: past them, feeding fails with a 413, so no
 * body, however it is written (other keys, escaped names), holds more. */
struct jsonspool *jsonspool_new(struct spool *spool, const char *const *names, size_t min,
                                size_t max_text);
void jsonspool_free(struct jsonspool *j);

/* The next n bytes of the body; 0, or -1 with e filled (413: past
 * max_text; 503: the spool or memory failed). */
int jsonspool_feed(struct jsonspool *j, const char *data, size_t n, struct err *e);

/* The body has ended. Then the text to parse and its spooled strings, for
 * jsondoc_parse_spooled; both borrowed from j. */
void jsonspool_finish(struct jsonspool *j);
const char *jsonspool_text(const struct jsonspool *j, size_t *len);
const struct jsondoc_ref *jsonspool_refs(const struct jsonspool *j, size_t *n);

#endif
