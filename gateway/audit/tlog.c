#include "audit/tlog.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/note.h"
#include "lib/base64.h"

#define SEGMENT_PREFIX "{\"type\":\"segment\","

/* A checkpoint that checked out against the tree at its size. */
struct seen {
	uint64_t size;
	unsigned char root[MERKLE_HASH];
	const char *file;
	size_t line;
};

struct tlog {
	struct tlog_settings s;
	struct merkle_hasher *h;
	struct merkle_tree tree;
	struct merkle_store *store;
	uint64_t start;
	int started;

	/* The root at tree.size, once asked for. */
	int have_root;
	unsigned char root[MERKLE_HASH];

	struct seen *seen; /* by size, increasing */
	size_t nseen, capseen;
	struct tlog_checkpoint latest;
	int has_latest;
	size_t checkpoints, legacy, unchecked;

	char problem[512];
	int problem_key;
};

int
tlog_is_checkpoint(const char *line, size_t len)
{
	size_t n = sizeof(TLOG_CHECKPOINT_PREFIX) - 1;

	return len >= n && memcmp(line, TLOG_CHECKPOINT_PREFIX, n) == 0;
}

struct tlog *
tlog_new(const struct tlog_settings *s)
{
	struct tlog *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->s = *s;
	merkle_tree_init(&t->tree);
	t->h = merkle_hasher_new();
	if (t->h == NULL || (s->keep_leaves && (t->store = merkle_store_new(NULL)) == NULL)) {
		tlog_free(t);
		return NULL;
	}
	return t;
}

void
tlog_free(struct tlog *t)
{
	if (t == NULL)
		return;
	merkle_hasher_free(t->h);
	merkle_store_free(t->store);
	free(t->seen);
	free(t->latest.note);
	free(t);
}

__attribute__((format(printf, 3, 4))) static enum tlog_result
problem(struct tlog *t, int key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->problem, sizeof(t->problem), fmt, ap);
	va_end(ap);
	t->problem_key = key;
	return TLOG_PROBLEM;
}

static int
current_root(struct tlog *t)
{
	if (!t->have_root && merkle_tree_root(t->h, &t->tree, t->root) == 0)
		t->have_root = 1;
	return t->have_root ? 0 : -1;
}

/* The state pinned by an earlier verification, checked once the tree is
 * that large. */
static enum tlog_result
check_pin(struct tlog *t)
{
	if (t->s.pin_root == NULL || t->tree.size != t->s.pin_size || t->s.pin_size == 0)
		return TLOG_OK;
	if (current_root(t) < 0)
		return problem(t, 0, "out of memory");
	if (memcmp(t->root, t->s.pin_root, MERKLE_HASH) != 0)
		return problem(
		        t, 0,
		        "the first %llu records differ from those verified before (the state "
		        "file): the log was rewritten",
		        (unsigned long long)t->s.pin_size);
	return TLOG_OK;
}

/* A series that begins with a later file: the tree the segment opening
 * it names. */
static enum tlog_result
seed(struct tlog *t, uint64_t size, const json_t *frontier)
{
	unsigned char nodes[MERKLE_LEVELS][MERKLE_HASH];
	const json_t *v;
	size_t i, count = json_array_size(frontier);
	const char *b64;

	if (count > MERKLE_LEVELS)
		return problem(t, 0, "the segment's frontier is malformed: altered");
	json_array_foreach(frontier, i, v)
	{
		b64 = json_string_value(v);
		if (b64 == NULL ||
		    base64_decode(b64, strlen(b64), nodes[i], MERKLE_HASH) != MERKLE_HASH)
			return problem(t, 0, "the segment's frontier is malformed: altered");
	}
	if (merkle_tree_set(&t->tree, size, (const unsigned char(*)[MERKLE_HASH])nodes, count) < 0)
		return problem(t, 0, "the segment's frontier does not fit its tree_size: altered");
	t->start = size;
	t->have_root = 0;
	if (t->store) {
		merkle_store_free(t->store);
		if ((t->store = merkle_store_new(&t->tree)) == NULL)
			return problem(t, 0, "out of memory");
	}
	if (t->s.pin_root && t->s.pin_size > 0 && t->s.pin_size < size)
		return problem(
		        t, 0,
		        "the files given begin after record %llu, which the state file pins: "
		        "give the files from there on",
		        (unsigned long long)t->s.pin_size);
	return check_pin(t);
}

/* A segment says how many leaves came before it. */
static enum tlog_result
segment(struct tlog *t, const char *line, size_t len)
{
	json_t *rec = json_loadb(line, len, 0, NULL);
	const json_t *size = json_object_get(rec, "tree_size");
	enum tlog_result r = TLOG_OK;
	json_int_t n;

	/* A segment of the earlier format, or a torn one: just a leaf. */
	if (!json_is_integer(size) || (n = json_integer_value(size)) < 0)
		goto out;
	if (!t->started && t->tree.size == 0) {
		if (n > 0)
			r = seed(t, (uint64_t)n, json_object_get(rec, "frontier"));
	} else if ((uint64_t)n != t->tree.size) {
		r = problem(t, 0,
		            "this segment says %lld records came before it; %llu did in the files "
		            "given: records were removed or added before it, or the files are not "
		            "one series in order",
		            (long long)n, (unsigned long long)t->tree.size);
	}
out:
	json_decref(rec);
	return r;
}

static enum tlog_result
leaf_line(struct tlog *t, const char *line, size_t len, long long *leaf)
{
	unsigned char hash[MERKLE_HASH];
	enum tlog_result r = TLOG_OK;

	if (len >= sizeof(SEGMENT_PREFIX) - 1 &&
	    memcmp(line, SEGMENT_PREFIX, sizeof(SEGMENT_PREFIX) - 1) == 0)
		r = segment(t, line, len);
	t->started = 1;
	if (merkle_leaf(t->h, line, len, hash) < 0 ||
	    merkle_tree_append(t->h, &t->tree, hash) < 0 ||
	    (t->store && merkle_store_add(t->store, hash) < 0))
		return problem(t, 0, "out of memory");
	t->have_root = 0;
	*leaf = (long long)(t->tree.size - 1);
	if (r == TLOG_OK)
		r = check_pin(t);
	return r;
}

/* The checkpoint of that size that checked out, or NULL. */
static const struct seen *
seen_at(const struct tlog *t, uint64_t size)
{
	size_t lo = 0, hi = t->nseen, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (t->seen[mid].size == size)
			return &t->seen[mid];
		if (t->seen[mid].size < size)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int
remember(struct tlog *t, uint64_t size, const unsigned char root[MERKLE_HASH], const char *file,
         size_t lineno)
{
	if (t->nseen > 0 && t->seen[t->nseen - 1].size == size)
		return 0;
	if (t->nseen == t->capseen) {
		size_t cap = t->capseen ? 2 * t->capseen : 64;
		void *p = realloc(t->seen, cap * sizeof(*t->seen));

		if (p == NULL)
			return -1;
		t->seen = p;
		t->capseen = cap;
	}
	t->seen[t->nseen].size = size;
	memcpy(t->seen[t->nseen].root, root, MERKLE_HASH);
	t->seen[t->nseen].file = file;
	t->seen[t->nseen].line = lineno;
	t->nseen++;
	return 0;
}

/* The checkpoint's root against the tree at its size. */
static enum tlog_result
check_root(struct tlog *t, uint64_t size, const unsigned char root[MERKLE_HASH], const char *file,
           size_t lineno)
{
	const struct seen *prev, *same;

	if (size > t->tree.size)
		return problem(t, 0,
		               "this checkpoint counts %llu records, but only %llu come before it: "
		               "records were removed, or a file of the series is missing or out of "
		               "order",
		               (unsigned long long)size, (unsigned long long)t->tree.size);
	if (size < t->start) {
		t->unchecked++;
		return TLOG_OK;
	}
	/* A size signed before (a cosigned copy comes later) must have the
	 * same root. */
	same = seen_at(t, size);
	if (same && memcmp(same->root, root, MERKLE_HASH) != 0)
		return problem(
		        t, 0,
		        "this checkpoint's root differs from that of the checkpoint of the same "
		        "size at %s:%zu: two different trees were signed (a fork)",
		        same->file, same->line);
	if (same)
		return TLOG_OK;
	if (size < t->tree.size) {
		t->unchecked++;
		return TLOG_OK;
	}
	if (current_root(t) < 0)
		return problem(t, 0, "out of memory");
	if (memcmp(root, t->root, MERKLE_HASH) == 0)
		return remember(t, size, root, file, lineno) < 0 ? problem(t, 0, "out of memory")
		                                                 : TLOG_OK;
	/* Sizes only grow: the last one checked is the one before. */
	prev = t->nseen > 0 ? &t->seen[t->nseen - 1] : NULL;
	if (prev)
		return problem(
		        t, 0,
		        "this checkpoint's root does not match the %llu records before it: a "
		        "record since the previous checkpoint (%s:%zu) was altered, removed, "
		        "inserted or reordered",
		        (unsigned long long)size, prev->file, prev->line);
	return problem(t, 0,
	               "this checkpoint's root does not match the %llu records before it: a record "
	               "before it was altered, removed, inserted or reordered",
	               (unsigned long long)size);
}

static enum tlog_result
checkpoint_line(struct tlog *t, const char *file, size_t lineno, const char *line, size_t len)
{
	char origin[NOTE_NAME_MAX + 1];
	unsigned char root[MERKLE_HASH], field_root[MERKLE_HASH];
	json_t *rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	const json_t *jnote, *jsize, *jroot;
	enum tlog_result r = TLOG_OK;
	enum note_verdict verdict = NOTE_NOT_SIGNED;
	const char *note;
	size_t note_len, text_len = 0;
	uint64_t size;
	char *copy;

	if (!json_is_object(rec)) {
		json_decref(rec);
		return TLOG_UNREADABLE;
	}
	t->checkpoints++;
	jnote = json_object_get(rec, "note");
	if (jnote == NULL) {
		/* The earlier format: a digest of lines, no tree. */
		t->legacy++;
		goto out;
	}
	note = json_string_value(jnote);
	note_len = json_string_length(jnote);
	if (note == NULL) {
		r = problem(t, 0, "the checkpoint's note is not a string: altered");
		goto out;
	}
	if (t->s.key) {
		verdict = note_verify(t->s.key, note, note_len, &text_len);
	} else if (note_verify(NULL, note, note_len, &text_len) == NOTE_MALFORMED) {
		verdict = NOTE_MALFORMED;
	}
	/* A checkpoint made without a signing key is the text alone. */
	if (verdict == NOTE_MALFORMED && text_len == 0 &&
	    json_is_false(json_object_get(rec, "signed")))
		verdict = NOTE_NOT_SIGNED, text_len = note_len;
	if (verdict == NOTE_MALFORMED ||
	    note_checkpoint_parse(note, text_len, origin, &size, root) < 0) {
		r = problem(t, 0, "the checkpoint's note is not a signed checkpoint: altered");
		goto out;
	}
	jsize = json_object_get(rec, "tree_size");
	jroot = json_object_get(rec, "root");
	if ((jsize && (!json_is_integer(jsize) || (uint64_t)json_integer_value(jsize) != size)) ||
	    (jroot && (!json_is_string(jroot) ||
	               base64_decode(json_string_value(jroot), json_string_length(jroot),
	                             field_root, MERKLE_HASH) != MERKLE_HASH ||
	               memcmp(field_root, root, MERKLE_HASH) != 0))) {
		r = problem(t, 0,
		            "the checkpoint's tree_size or root differ from its note: altered");
		goto out;
	}
	if (t->s.key && verdict == NOTE_NOT_SIGNED) {
		r = problem(t, 1, "the checkpoint at line %zu is not signed by this key", lineno);
		goto out;
	}
	if (verdict == NOTE_BAD_SIGNATURE) {
		r = problem(t, 0,
		            "the checkpoint's signature does not verify: its note was altered");
		goto out;
	}
	if ((r = check_root(t, size, root, file, lineno)) != TLOG_OK)
		goto out;
	if (!t->has_latest || size >= t->latest.size) {
		if ((copy = malloc(note_len + 1)) == NULL) {
			r = problem(t, 0, "out of memory");
			goto out;
		}
		memcpy(copy, note, note_len);
		copy[note_len] = '\0';
		free(t->latest.note);
		t->latest.note = copy;
		t->latest.note_len = note_len;
		snprintf(t->latest.origin, sizeof(t->latest.origin), "%s", origin);
		t->latest.size = size;
		memcpy(t->latest.root, root, MERKLE_HASH);
		t->latest.file = file;
		t->latest.line = lineno;
		t->has_latest = 1;
	}
out:
	json_decref(rec);
	return r;
}

enum tlog_result
tlog_line(struct tlog *t, const char *file, size_t lineno, const char *line, size_t len,
          long long *leaf)
{
	*leaf = -1;
	if (tlog_is_checkpoint(line, len))
		return checkpoint_line(t, file, lineno, line, len);
	return leaf_line(t, line, len, leaf);
}

enum tlog_result
tlog_finish(struct tlog *t)
{
	if (t->s.pin_root && t->tree.size < t->s.pin_size)
		return problem(
		        t, 0,
		        "the log is shorter than when it was last verified (the state file): "
		        "%llu records then, %llu now: its tail was cut off",
		        (unsigned long long)t->s.pin_size, (unsigned long long)t->tree.size);
	return TLOG_OK;
}

const char *
tlog_problem(const struct tlog *t)
{
	return t->problem;
}

int
tlog_problem_is_key(const struct tlog *t)
{
	return t->problem_key;
}

const struct merkle_tree *
tlog_tree(const struct tlog *t)
{
	return &t->tree;
}

uint64_t
tlog_start(const struct tlog *t)
{
	return t->start;
}

const struct merkle_store *
tlog_store(const struct tlog *t)
{
	return t->store;
}

const struct tlog_checkpoint *
tlog_latest(const struct tlog *t)
{
	return t->has_latest ? &t->latest : NULL;
}

size_t
tlog_checkpoints(const struct tlog *t)
{
	return t->checkpoints;
}

size_t
tlog_legacy(const struct tlog *t)
{
	return t->legacy;
}

size_t
tlog_unchecked(const struct tlog *t)
{
	return t->unchecked;
}
