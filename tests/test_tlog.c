/*
 * Tests for gateway/audit/tlog.c on lines made here: which lines are
 * leaves; checkpoints that match the tree, and each way one may not (a
 * wrong root, more records than came before it, a second tree of the same
 * size); a segment's count against the tree's; a series read from a later
 * file on, from its segment's frontier; a pinned earlier tree (--state)
 * against a rewritten or shorter log.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/tlog.h"
#include "lib/base64.h"

TestSuite(tlog);

#define NLEAVES 16

static char leaf_text[NLEAVES][64];
static unsigned char leaf_hash[NLEAVES][MERKLE_HASH];

static void
make_leaves(struct merkle_hasher *h)
{
	size_t i;

	for (i = 0; i < NLEAVES; i++) {
		snprintf(leaf_text[i], sizeof(leaf_text[i]), "{\"type\":\"request\",\"n\":%zu}", i);
		cr_assert_eq(merkle_leaf(h, leaf_text[i], strlen(leaf_text[i]), leaf_hash[i]), 0);
	}
}

/* The root of the first n leaves. */
static void
root_of(struct merkle_hasher *h, size_t n, unsigned char out[MERKLE_HASH])
{
	struct merkle_tree t;
	size_t i;

	merkle_tree_init(&t);
	for (i = 0; i < n; i++)
		cr_assert_eq(merkle_tree_append(h, &t, leaf_hash[i]), 0);
	cr_assert_eq(merkle_tree_root(h, &t, out), 0);
}

/* An unsigned checkpoint line of size and root. */
static const char *
checkpoint_line(uint64_t size, const unsigned char root[MERKLE_HASH])
{
	static char line[1024];
	char text[256], escaped[300], *o = escaped;
	size_t i, n = note_checkpoint(text, sizeof(text), "t.example/log", size, root);

	for (i = 0; i < n; i++) {
		if (text[i] == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else {
			*o++ = text[i];
		}
	}
	*o = '\0';
	snprintf(line, sizeof(line), "{\"type\":\"checkpoint\",\"note\":\"%s\",\"signed\":false}",
	         escaped);
	return line;
}

static enum tlog_result
feed(struct tlog *t, size_t lineno, const char *line)
{
	long long leaf;

	return tlog_line(t, "log", lineno, line, strlen(line), &leaf);
}

Test(tlog, checkpoints_are_checked_against_the_tree)
{
	struct merkle_hasher *h = merkle_hasher_new();
	struct tlog_settings ts = {0};
	struct tlog *t = tlog_new(&ts);
	unsigned char root[MERKLE_HASH], bad[MERKLE_HASH];
	long long leaf;
	size_t i;

	make_leaves(h);
	for (i = 0; i < 4; i++) {
		cr_assert_eq(tlog_line(t, "log", i + 1, leaf_text[i], strlen(leaf_text[i]), &leaf),
		             TLOG_OK);
		cr_expect_eq(leaf, (long long)i);
	}
	root_of(h, 4, root);
	cr_expect_eq(feed(t, 5, checkpoint_line(4, root)), TLOG_OK, "%s", tlog_problem(t));
	for (i = 4; i < 10; i++)
		cr_assert_eq(feed(t, i + 2, leaf_text[i]), TLOG_OK);
	root_of(h, 10, root);
	cr_expect_eq(feed(t, 12, checkpoint_line(10, root)), TLOG_OK, "%s", tlog_problem(t));
	/* A copy of the first (as a cosigned one comes later) checks out. */
	root_of(h, 4, root);
	cr_expect_eq(feed(t, 13, checkpoint_line(4, root)), TLOG_OK, "%s", tlog_problem(t));
	cr_expect_eq(tlog_latest(t)->size, 10);
	cr_expect_eq(tlog_latest(t)->line, 12);
	cr_expect_eq(tlog_checkpoints(t), 3);

	/* Another root at a size already signed: a fork. */
	memcpy(bad, root, sizeof(bad));
	bad[0] ^= 1;
	cr_expect_eq(feed(t, 14, checkpoint_line(4, bad)), TLOG_PROBLEM);
	cr_expect(strstr(tlog_problem(t), "fork"), "%s", tlog_problem(t));
	/* A root the records do not hash to. */
	cr_assert_eq(feed(t, 15, leaf_text[10]), TLOG_OK);
	cr_assert_eq(feed(t, 16, leaf_text[11]), TLOG_OK);
	cr_expect_eq(feed(t, 17, checkpoint_line(12, bad)), TLOG_PROBLEM);
	cr_expect(strstr(tlog_problem(t), "since the previous checkpoint (log:12)"), "%s",
	          tlog_problem(t));
	/* More records than came before it. */
	cr_expect_eq(feed(t, 18, checkpoint_line(13, root)), TLOG_PROBLEM);
	cr_expect(strstr(tlog_problem(t), "only 12 come before it"), "%s", tlog_problem(t));
	/* Not JSON: torn or altered, the caller decides. */
	cr_expect_eq(feed(t, 19, "{\"type\":\"checkpoint\",\"no"), TLOG_UNREADABLE);
	cr_expect_eq(tlog_tree(t)->size, 12, "checkpoints are no leaves");
	tlog_free(t);
	merkle_hasher_free(h);
}

/* A segment line carrying the tree of the first n leaves. */
static const char *
segment_line(struct merkle_hasher *h, size_t n)
{
	const unsigned char *nodes[MERKLE_LEVELS];
	static char line[4096];
	char b64[BASE64_LEN(MERKLE_HASH) + 1];
	struct merkle_tree t;
	size_t i, k, at;

	merkle_tree_init(&t);
	for (i = 0; i < n; i++)
		cr_assert_eq(merkle_tree_append(h, &t, leaf_hash[i]), 0);
	at = (size_t)snprintf(line, sizeof(line),
	                      "{\"type\":\"segment\",\"reason\":\"rotated\",\"tree_size\":%zu,"
	                      "\"frontier\":[",
	                      n);
	k = merkle_tree_nodes(&t, nodes);
	for (i = 0; i < k; i++) {
		base64_encode(nodes[i], MERKLE_HASH, b64);
		at += (size_t)snprintf(line + at, sizeof(line) - at, "%s\"%s\"", i ? "," : "", b64);
	}
	snprintf(line + at, sizeof(line) - at, "]}");
	return line;
}

Test(tlog, a_later_file_continues_the_tree_its_segment_names)
{
	struct merkle_hasher *h = merkle_hasher_new();
	struct tlog_settings ts = {.keep_leaves = 1};
	struct tlog *t = tlog_new(&ts);
	unsigned char root[MERKLE_HASH], got[MERKLE_HASH];
	char seg[4096];
	size_t i;

	make_leaves(h);
	/* The series so far was leaves 0..4; this file's segment is leaf 5,
	 * stood in for by leaf_text[5] in the tree of the test. */
	snprintf(seg, sizeof(seg), "%s", segment_line(h, 5));
	cr_assert_eq(merkle_leaf(h, seg, strlen(seg), leaf_hash[5]), 0);
	cr_assert_eq(feed(t, 1, seg), TLOG_OK, "%s", tlog_problem(t));
	cr_expect_eq(tlog_start(t), 5);
	for (i = 6; i < 9; i++)
		cr_assert_eq(feed(t, i - 4, leaf_text[i]), TLOG_OK);
	root_of(h, 9, root);
	cr_expect_eq(feed(t, 5, checkpoint_line(9, root)), TLOG_OK, "%s", tlog_problem(t));
	cr_assert_eq(merkle_store_root(h, tlog_store(t), 9, got), 0);
	cr_expect_eq(memcmp(got, root, MERKLE_HASH), 0);
	/* A later segment whose count is not the tree's. */
	cr_expect_eq(feed(t, 6, segment_line(h, 7)), TLOG_PROBLEM);
	cr_expect(strstr(tlog_problem(t), "records came before it"), "%s", tlog_problem(t));
	tlog_free(t);
	merkle_hasher_free(h);
}

Test(tlog, a_pinned_tree_catches_a_rewritten_or_shorter_log)
{
	struct merkle_hasher *h = merkle_hasher_new();
	unsigned char pin[MERKLE_HASH];
	struct tlog_settings ts = {.pin_size = 6, .pin_root = pin};
	struct tlog *t;
	size_t i;

	make_leaves(h);
	root_of(h, 6, pin);
	t = tlog_new(&ts);
	for (i = 0; i < 8; i++)
		cr_assert_eq(feed(t, i + 1, leaf_text[i]), TLOG_OK, "%s", tlog_problem(t));
	cr_expect_eq(tlog_finish(t), TLOG_OK);
	tlog_free(t);

	/* One record changed before the pinned size. */
	t = tlog_new(&ts);
	for (i = 0; i < 6; i++)
		(void)feed(t, i + 1, i == 2 ? "{\"type\":\"request\",\"n\":99}" : leaf_text[i]);
	cr_expect(strstr(tlog_problem(t), "rewritten"), "%s", tlog_problem(t));
	tlog_free(t);

	/* Cut short. */
	t = tlog_new(&ts);
	for (i = 0; i < 4; i++)
		cr_assert_eq(feed(t, i + 1, leaf_text[i]), TLOG_OK);
	cr_expect_eq(tlog_finish(t), TLOG_PROBLEM);
	cr_expect(strstr(tlog_problem(t), "shorter"), "%s", tlog_problem(t));
	tlog_free(t);
	merkle_hasher_free(h);
}
