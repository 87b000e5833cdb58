/*
 * Tests for gateway/lib/spool.c: memory up to its bound, then a file
 * (reads across the seam), the refusal when the folder cannot take the
 * file, and the bound on what all spools' files hold together.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include "lib/secmem.h"
#include "lib/spool.h"

static void
suite_init(void)
{
	secmem_init();
}

TestSuite(spool, .init = suite_init);

Test(spool, memory_then_file_and_reads_across_the_seam)
{
	struct spool *sp = spool_new("/tmp", 10, UINT64_MAX);
	char buf[32];
	struct err e;

	cr_assert_eq(spool_write(sp, "0123456789abcdef", 16, &e), 0);
	cr_assert_eq(spool_write(sp, "ghij", 4, &e), 0);
	cr_assert_eq(spool_size(sp), 20);
	cr_assert_eq(spool_read(sp, 8, buf, 8), 2, "a read stops at the seam");
	cr_assert_eq(spool_read(sp, 10, buf, 32), 10);
	cr_assert(memcmp(buf, "abcdefghij", 10) == 0);
	cr_assert_eq(spool_read(sp, 20, buf, 4), 0);
	spool_free(sp);
}

Test(spool, a_directory_that_cannot_take_files_is_a_503)
{
	struct spool *sp = spool_new("/nonexistent/spool", 4, UINT64_MAX);
	struct err e;

	err_clear(&e);
	cr_assert_eq(spool_write(sp, "abcd", 4, &e), 0);
	cr_assert_eq(spool_write(sp, "e", 1, &e), -1);
	cr_assert_eq(e.status, 503);
	cr_assert_str_eq(e.code, "spool_unavailable");
	cr_assert_eq(spool_check_dir("/nonexistent/spool", &e), -1);
	cr_assert_eq(spool_check_dir("/tmp", &e), 0);
	spool_free(sp);
}

/* The files of all spools together stay under their bound: a write that
 * would pass it is a 503, and a freed spool gives its bytes back. */
Test(spool, all_files_together_stay_under_their_bound)
{
	struct spool *a = spool_new("/tmp", 0, 100), *b = spool_new("/tmp", 0, 100);
	char buf[80];
	struct err e;

	memset(buf, 'x', sizeof(buf));
	cr_assert_eq(spool_write(a, buf, 80, &e), 0);
	cr_assert_eq(spool_files_bytes(), 80);
	cr_assert_eq(spool_write(b, buf, 30, &e), -1);
	cr_assert_eq(e.status, 503);
	cr_assert_str_eq(e.code, "spool_full");
	cr_assert_eq(spool_files_bytes(), 80, "a refused write is not counted");
	spool_free(a);
	cr_assert_eq(spool_files_bytes(), 0);
	cr_assert_eq(spool_write(b, buf, 30, &e), 0);
	spool_free(b);
	cr_assert_eq(spool_files_bytes(), 0);
}
