#include "lib/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/secmem.h"

struct spool {
	const char *dir;
	char *mem; /* the first mem_len bytes */
	size_t mem_len, mem_cap, mem_max;
	int fd; /* the rest, from offset mem_max on; -1 until needed */
	uint64_t file_len, files_max;
	uint64_t counted; /* in files_bytes, given back when freed */
};

/* What every spool's file holds, across the process's loops. */
static _Atomic uint64_t files_bytes;

struct spool *
spool_new(const char *dir, size_t mem_max, uint64_t files_max)
{
	struct spool *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->dir = dir;
	s->mem_max = mem_max;
	s->files_max = files_max;
	s->fd = -1;
	return s;
}

void
spool_free(struct spool *s)
{
	if (s == NULL)
		return;
	if (s->mem)
		secmem_wipe(s->mem, s->mem_len);
	secmem_free(s->mem);
	if (s->fd >= 0)
		close(s->fd);
	atomic_fetch_sub(&files_bytes, s->counted);
	free(s);
}

uint64_t
spool_files_bytes(void)
{
	return atomic_load(&files_bytes);
}

/* An unlinked file in dir, open for reading and writing; -1 with errno. */
static int
open_unlinked(const char *dir)
{
	char path[4096];
	int fd;

	if (snprintf(path, sizeof(path), "%s/gateway-spool-XXXXXX", dir) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* mkstemp makes the file 0600 whatever the umask. */
	fd = mkstemp(path);
	if (fd >= 0) {
		unlink(path);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	return fd;
}

static int
spool_failed(struct err *e, const char *dir, int errnum)
{
	return err_set(e, 503, ERR_INTERNAL, "spool_unavailable", NULL,
	               "the gateway cannot set this request's body aside (limits.spool_dir %s: "
	               "%s); try again later",
	               dir, strerror(errnum));
}

static int
write_all(int fd, const char *data, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, data, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		data += k;
		n -= (size_t)k;
	}
	return 0;
}

int
spool_write(struct spool *s, const char *data, size_t n, struct err *e)
{
	size_t k = s->mem_max - s->mem_len < n ? s->mem_max - s->mem_len : n;

	if (k > 0) {
		if (s->mem_len + k > s->mem_cap) {
			size_t cap = s->mem_cap ? s->mem_cap * 2 : 16384;
			char *p;

			while (cap < s->mem_len + k)
				cap *= 2;
			if (cap > s->mem_max)
				cap = s->mem_max;
			if ((p = secmem_realloc(s->mem, cap)) == NULL)
				return err_set(e, 503, ERR_INTERNAL, "out_of_memory", NULL,
				               "the gateway is out of memory; try again");
			s->mem = p;
			s->mem_cap = cap;
		}
		memcpy(s->mem + s->mem_len, data, k);
		s->mem_len += k;
		data += k;
		n -= k;
	}
	if (n == 0)
		return 0;
	/* Counted before it is written, so spools writing at once on other
	 * loops cannot all pass the bound together. */
	if (atomic_fetch_add(&files_bytes, n) + n > s->files_max) {
		atomic_fetch_sub(&files_bytes, n);
		return err_set(e, 503, ERR_INTERNAL, "spool_full", NULL,
		               "the gateway is setting aside as many large bodies as it may "
		               "(limits.max_spool_bytes %llu); try again shortly",
		               (unsigned long long)s->files_max);
	}
	s->counted += n;
	if (s->fd < 0 && (s->fd = open_unlinked(s->dir)) < 0)
		return spool_failed(e, s->dir, errno);
	if (write_all(s->fd, data, n) < 0)
		return spool_failed(e, s->dir, errno ? errno : EIO);
	s->file_len += n;
	return 0;
}

uint64_t
spool_size(const struct spool *s)
{
	return s->mem_len + s->file_len;
}

long
spool_read(const struct spool *s, uint64_t off, char *buf, size_t n)
{
	ssize_t k;

	if (off >= spool_size(s) || n == 0)
		return 0;
	if (off < s->mem_len) {
		size_t m = s->mem_len - (size_t)off < n ? s->mem_len - (size_t)off : n;

		memcpy(buf, s->mem + off, m);
		return (long)m;
	}
	if (n > spool_size(s) - off)
		n = (size_t)(spool_size(s) - off);
	do
		k = pread(s->fd, buf, n, (off_t)(off - s->mem_len));
	while (k < 0 && errno == EINTR);
	return k < 0 ? -1 : (long)k;
}

int
spool_check_dir(const char *dir, struct err *e)
{
	int fd = open_unlinked(dir);

	if (fd < 0)
		return err_set(e, 0, NULL, NULL, NULL, "%s: %s", dir, strerror(errno));
	close(fd);
	return 0;
}
