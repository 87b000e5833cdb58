/*
 * tlog: the audit log read as a transparency log.
 *
 * Leaves are the log's lines in order, each line's bytes without its
 * newline, except checkpoint lines: a line is a checkpoint, and not a
 * leaf, when it begins with the bytes {"type":"checkpoint", . One tree
 * runs across a rotated series: a file the gateway begins opens with a
 * "segment" line carrying "tree_size" (the leaves before it, in earlier
 * files) and "frontier" (that tree's right frontier, base64 nodes left to
 * right), so a reader handed the later files of a series starts from
 * there, and a reader handed the whole series checks each segment's count
 * against its own.
 *
 * Every checkpoint line's "note" is a signed note (note.h) naming a tree
 * size and root; fed the lines of a series in order, tlog checks each
 * against the tree built so far (and its signature, with a key), and says
 * which is the latest. The gateway reads its own file back through it at
 * start; the audit-verify, audit-checkpoint and audit-prove commands read
 * the files they are given.
 */
#ifndef GW_TLOG_H
#define GW_TLOG_H

#include <stddef.h>
#include <stdint.h>

#include "audit/merkle.h"

struct note_key;

#define TLOG_CHECKPOINT_PREFIX "{\"type\":\"checkpoint\","

/* Whether line[0..len) is a checkpoint line, not a leaf. */
int tlog_is_checkpoint(const char *line, size_t len);

struct tlog_settings {
	const struct note_key *key; /* checkpoints must be signed by it; NULL: not checked */
	int keep_leaves;            /* keep every leaf's hash, for proofs */
	uint64_t pin_size;          /* with pin_root: a tree verified before (--state) */
	const unsigned char *pin_root;
};

struct tlog;

/* NULL when out of memory. */
struct tlog *tlog_new(const struct tlog_settings *s);
void tlog_free(struct tlog *t);

enum tlog_result {
	TLOG_OK,         /* a leaf, or a checkpoint that checks out */
	TLOG_PROBLEM,    /* tlog_problem says what; the line was taken in all the same */
	TLOG_UNREADABLE, /* a checkpoint line that is not JSON: torn, or altered */
};

/*
 * Takes the next line of the series (without its newline), line number
 * lineno of file. *leaf gets the line's leaf index, or -1 for a
 * checkpoint.
 */
enum tlog_result tlog_line(struct tlog *t, const char *file, size_t lineno, const char *line,
                           size_t len, long long *leaf);

/* After the last line: TLOG_PROBLEM when the series is shorter than the
 * pinned tree. */
enum tlog_result tlog_finish(struct tlog *t);

/* The last problem: what is wrong, and whether it is the key's (a
 * checkpoint not signed by the key given) rather than the log's. */
const char *tlog_problem(const struct tlog *t);
int tlog_problem_is_key(const struct tlog *t);

/* The tree so far, and the first leaf the files held (0 unless they began
 * with a later file of a series). */
const struct merkle_tree *tlog_tree(const struct tlog *t);
uint64_t tlog_start(const struct tlog *t);

/* The leaves' hashes (keep_leaves), borrowed. */
const struct merkle_store *tlog_store(const struct tlog *t);

/* The latest checkpoint: the largest tree size, the last line of it (so a
 * copy carrying a witness's cosignature wins). NULL if none. */
struct tlog_checkpoint {
	char *note; /* the signed note, NUL-terminated */
	size_t note_len;
	char origin[256];
	uint64_t size;
	unsigned char root[MERKLE_HASH];
	const char *file; /* borrowed from the caller of tlog_line */
	size_t line;
};
const struct tlog_checkpoint *tlog_latest(const struct tlog *t);

/* Checkpoint lines read; of them, lines in the earlier format (no note)
 * and checkpoints whose size no other checkpoint had while it could be
 * compared (a copy of one in a file not given), left unchecked. */
size_t tlog_checkpoints(const struct tlog *t);
size_t tlog_legacy(const struct tlog *t);
size_t tlog_unchecked(const struct tlog *t);

#endif
