/*
 * spool: bytes set aside while a request is read, in memory up to a
 * bound and in an unlinked temporary file past it.
 *
 * A create may carry a 64 MiB inline skill; holding it (and its copies)
 * in memory costs the process several times its size for as long as the
 * request lasts. The spool keeps a bounded part in memory (wiped when
 * freed) and the rest in a file nobody else can open: made 0600 in the
 * spool directory and unlinked at once, so it is gone when the spool is
 * freed or the process dies. Its writes go to the page cache and do not
 * wait on the disk, as nginx's client body buffers do.
 */
#ifndef GW_SPOOL_H
#define GW_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct spool;

/* dir: where the file goes once mem_max bytes are held (borrowed for
 * the spool's life); files_max: the most the files of all spools in the
 * process may hold at once (the disk is shared, and a full one fails
 * more than this request). */
struct spool *spool_new(const char *dir, size_t mem_max, uint64_t files_max);
void spool_free(struct spool *s);

/* Appends n bytes; returns 0, or -1 with e filled (503: the spool
 * directory cannot take them, or the files would pass files_max). */
int spool_write(struct spool *s, const char *data, size_t n, struct err *e);

/* Bytes written so far. */
uint64_t spool_size(const struct spool *s);

/* Copies up to n bytes from offset off into buf; returns how many (0 at
 * the end), or -1 when the file cannot be read. */
long spool_read(const struct spool *s, uint64_t off, char *buf, size_t n);

/* Bytes the files of all spools in the process hold now. */
uint64_t spool_files_bytes(void);

/* Whether a spool file can be made in dir: 0, or -1 with why in e. */
int spool_check_dir(const char *dir, struct err *e);

#endif
