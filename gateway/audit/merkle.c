#include "audit/merkle.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* OpenSSL 3 would look the algorithm up on every call of EVP_sha256(): it
 * is fetched once, and one context is reused. */
struct merkle_hasher {
	EVP_MD *sha256;
	EVP_MD_CTX *ctx;
};

struct merkle_hasher *
merkle_hasher_new(void)
{
	struct merkle_hasher *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	h->ctx = EVP_MD_CTX_new();
	if (h->sha256 == NULL || h->ctx == NULL) {
		merkle_hasher_free(h);
		return NULL;
	}
	return h;
}

void
merkle_hasher_free(struct merkle_hasher *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->sha256);
	free(h);
}

/* SHA-256 of prefix (one byte, or none when -1) and two pieces. */
static int
digest(struct merkle_hasher *h, int prefix, const void *a, size_t alen, const void *b, size_t blen,
       unsigned char out[MERKLE_HASH])
{
	unsigned char p = (unsigned char)prefix;
	unsigned int n = 0;

	return EVP_DigestInit_ex(h->ctx, h->sha256, NULL) == 1 &&
	                       (prefix < 0 || EVP_DigestUpdate(h->ctx, &p, 1) == 1) &&
	                       EVP_DigestUpdate(h->ctx, a, alen) == 1 &&
	                       EVP_DigestUpdate(h->ctx, b, blen) == 1 &&
	                       EVP_DigestFinal_ex(h->ctx, out, &n) == 1 && n == MERKLE_HASH
	               ? 0
	               : -1;
}

int
merkle_leaf(struct merkle_hasher *h, const void *data, size_t len, unsigned char out[MERKLE_HASH])
{
	return digest(h, 0x00, data, len, "", 0, out);
}

int
merkle_node(struct merkle_hasher *h, const unsigned char left[MERKLE_HASH],
            const unsigned char right[MERKLE_HASH], unsigned char out[MERKLE_HASH])
{
	return digest(h, 0x01, left, MERKLE_HASH, right, MERKLE_HASH, out);
}

static int
empty_root(struct merkle_hasher *h, unsigned char out[MERKLE_HASH])
{
	return digest(h, -1, "", 0, "", 0, out);
}

/* --- the frontier -------------------------------------------------------- */

void
merkle_tree_init(struct merkle_tree *t)
{
	t->size = 0;
}

int
merkle_tree_append(struct merkle_hasher *h, struct merkle_tree *t,
                   const unsigned char leaf[MERKLE_HASH])
{
	unsigned char acc[MERKLE_HASH];
	int level = 0;

	if (t->size == UINT64_MAX)
		return -1;
	memcpy(acc, leaf, MERKLE_HASH);
	/* Each trailing one of the size is a full subtree the new one
	 * completes: merge, and carry upward. */
	while ((t->size >> level) & 1) {
		if (merkle_node(h, t->node[level], acc, acc) < 0)
			return -1;
		level++;
	}
	memcpy(t->node[level], acc, MERKLE_HASH);
	t->size++;
	return 0;
}

int
merkle_tree_root(struct merkle_hasher *h, const struct merkle_tree *t,
                 unsigned char out[MERKLE_HASH])
{
	unsigned char acc[MERKLE_HASH];
	int level, started = 0;

	if (t->size == 0)
		return empty_root(h, out);
	/* The smallest subtree is the rightmost: fold right to left. */
	for (level = 0; level < MERKLE_LEVELS; level++) {
		if (!((t->size >> level) & 1))
			continue;
		if (!started) {
			memcpy(acc, t->node[level], MERKLE_HASH);
			started = 1;
		} else if (merkle_node(h, t->node[level], acc, acc) < 0) {
			return -1;
		}
	}
	memcpy(out, acc, MERKLE_HASH);
	return 0;
}

size_t
merkle_tree_nodes(const struct merkle_tree *t, const unsigned char *out[MERKLE_LEVELS])
{
	size_t n = 0;
	int level;

	for (level = MERKLE_LEVELS - 1; level >= 0; level--)
		if ((t->size >> level) & 1)
			out[n++] = t->node[level];
	return n;
}

int
merkle_tree_set(struct merkle_tree *t, uint64_t size, const unsigned char (*nodes)[MERKLE_HASH],
                size_t count)
{
	size_t i = 0;
	int level;

	for (level = MERKLE_LEVELS - 1; level >= 0; level--) {
		if (!((size >> level) & 1))
			continue;
		if (i == count)
			return -1;
		memcpy(t->node[level], nodes[i++], MERKLE_HASH);
	}
	if (i != count)
		return -1;
	t->size = size;
	return 0;
}

/* --- the leaves, for proofs -------------------------------------------- */

struct merkle_store {
	struct merkle_tree start;
	unsigned char (*leaf)[MERKLE_HASH]; /* leaf start + i */
	uint64_t n, cap;
};

struct merkle_store *
merkle_store_new(const struct merkle_tree *start)
{
	struct merkle_store *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (start)
		s->start = *start;
	else
		merkle_tree_init(&s->start);
	return s;
}

void
merkle_store_free(struct merkle_store *s)
{
	if (s == NULL)
		return;
	free(s->leaf);
	free(s);
}

int
merkle_store_add(struct merkle_store *s, const unsigned char leaf[MERKLE_HASH])
{
	if (s->n == s->cap) {
		uint64_t cap = s->cap ? 2 * s->cap : 1024;
		void *p = cap > SIZE_MAX / MERKLE_HASH ? NULL : realloc(s->leaf, cap * MERKLE_HASH);

		if (p == NULL)
			return -1;
		s->leaf = p;
		s->cap = cap;
	}
	memcpy(s->leaf[s->n++], leaf, MERKLE_HASH);
	return 0;
}

uint64_t
merkle_store_size(const struct merkle_store *s)
{
	return s->start.size + s->n;
}

/* The largest power of two below n (n >= 2). */
static uint64_t
split(uint64_t n)
{
	uint64_t k = 1;

	while (k < n - k)
		k <<= 1;
	return k;
}

/* Where [lo, hi) stands against the start's frontier: 1 when it is one of
 * its nodes (copied to out), -1 when it lies inside one (not known), 0
 * otherwise. */
static int
in_start(const struct merkle_store *s, uint64_t lo, uint64_t hi, unsigned char out[MERKLE_HASH])
{
	uint64_t at = 0, width;
	int level;

	for (level = MERKLE_LEVELS - 1; level >= 0; level--) {
		if (!((s->start.size >> level) & 1))
			continue;
		width = (uint64_t)1 << level;
		if (lo == at && hi == at + width) {
			memcpy(out, s->start.node[level], MERKLE_HASH);
			return 1;
		}
		if (lo >= at && hi <= at + width)
			return -1;
		at += width;
	}
	return 0;
}

/* MTH(D[lo:hi]) of RFC 9162, from the start's nodes and the leaves. */
static int
subtree(struct merkle_hasher *h, const struct merkle_store *s, uint64_t lo, uint64_t hi,
        unsigned char out[MERKLE_HASH])
{
	unsigned char left[MERKLE_HASH], right[MERKLE_HASH];
	uint64_t k;
	int r;

	if (hi == lo)
		return lo == 0 ? empty_root(h, out) : -1;
	if (lo >= s->start.size) {
		if (hi > s->start.size + s->n)
			return -1;
		if (hi - lo == 1) {
			memcpy(out, s->leaf[lo - s->start.size], MERKLE_HASH);
			return 0;
		}
	} else if ((r = in_start(s, lo, hi, out)) != 0) {
		return r > 0 ? 0 : -1;
	}
	k = split(hi - lo);
	if (subtree(h, s, lo, lo + k, left) < 0 || subtree(h, s, lo + k, hi, right) < 0)
		return -1;
	return merkle_node(h, left, right, out);
}

int
merkle_store_root(struct merkle_hasher *h, const struct merkle_store *s, uint64_t size,
                  unsigned char out[MERKLE_HASH])
{
	if (size > merkle_store_size(s))
		return -1;
	return subtree(h, s, 0, size, out);
}

/* Adds one hash to a proof. */
static int
put(unsigned char proof[][MERKLE_HASH], size_t *count, const unsigned char hash[MERKLE_HASH])
{
	if (*count >= MERKLE_PROOF_MAX)
		return -1;
	memcpy(proof[(*count)++], hash, MERKLE_HASH);
	return 0;
}

/* PATH(m, D[lo:hi]) of RFC 9162. */
static int
path(struct merkle_hasher *h, const struct merkle_store *s, uint64_t m, uint64_t lo, uint64_t hi,
     unsigned char proof[][MERKLE_HASH], size_t *count)
{
	unsigned char sibling[MERKLE_HASH];
	uint64_t k;

	if (hi - lo <= 1)
		return 0;
	k = split(hi - lo);
	if (m < k) {
		if (path(h, s, m, lo, lo + k, proof, count) < 0 ||
		    subtree(h, s, lo + k, hi, sibling) < 0)
			return -1;
	} else if (path(h, s, m - k, lo + k, hi, proof, count) < 0 ||
	           subtree(h, s, lo, lo + k, sibling) < 0) {
		return -1;
	}
	return put(proof, count, sibling);
}

int
merkle_store_inclusion(struct merkle_hasher *h, const struct merkle_store *s, uint64_t index,
                       uint64_t size, unsigned char proof[][MERKLE_HASH], size_t *count)
{
	*count = 0;
	if (index >= size || size > merkle_store_size(s) || index < s->start.size)
		return -1;
	return path(h, s, index, 0, size, proof, count);
}

/* SUBPROOF(m, D[lo:hi], whole) of RFC 9162. */
static int
subproof(struct merkle_hasher *h, const struct merkle_store *s, uint64_t m, uint64_t lo,
         uint64_t hi, int whole, unsigned char proof[][MERKLE_HASH], size_t *count)
{
	unsigned char node[MERKLE_HASH];
	uint64_t k;

	if (m == hi - lo) {
		if (whole)
			return 0;
		return subtree(h, s, lo, hi, node) < 0 ? -1 : put(proof, count, node);
	}
	k = split(hi - lo);
	if (m <= k) {
		if (subproof(h, s, m, lo, lo + k, whole, proof, count) < 0 ||
		    subtree(h, s, lo + k, hi, node) < 0)
			return -1;
	} else if (subproof(h, s, m - k, lo + k, hi, 0, proof, count) < 0 ||
	           subtree(h, s, lo, lo + k, node) < 0) {
		return -1;
	}
	return put(proof, count, node);
}

int
merkle_store_consistency(struct merkle_hasher *h, const struct merkle_store *s, uint64_t old,
                         uint64_t size, unsigned char proof[][MERKLE_HASH], size_t *count)
{
	*count = 0;
	if (old > size || size > merkle_store_size(s))
		return -1;
	if (old == 0 || old == size)
		return 0;
	return subproof(h, s, old, 0, size, 1, proof, count);
}

/* --- verifying ------------------------------------------------------------ */

int
merkle_verify_inclusion(struct merkle_hasher *h, const unsigned char leaf[MERKLE_HASH],
                        uint64_t index, uint64_t size, const unsigned char (*proof)[MERKLE_HASH],
                        size_t count, const unsigned char root[MERKLE_HASH])
{
	unsigned char r[MERKLE_HASH];
	uint64_t fn = index, sn;
	size_t i;

	if (index >= size)
		return 0;
	sn = size - 1;
	memcpy(r, leaf, MERKLE_HASH);
	for (i = 0; i < count; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			if (merkle_node(h, proof[i], r, r) < 0)
				return 0;
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else if (merkle_node(h, r, proof[i], r) < 0) {
			return 0;
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(r, root, MERKLE_HASH) == 0;
}

int
merkle_verify_consistency(struct merkle_hasher *h, uint64_t old, uint64_t size,
                          const unsigned char old_root[MERKLE_HASH],
                          const unsigned char root[MERKLE_HASH],
                          const unsigned char (*proof)[MERKLE_HASH], size_t count)
{
	unsigned char fr[MERKLE_HASH], sr[MERKLE_HASH];
	uint64_t fn, sn;
	size_t i = 0;

	if (old > size)
		return 0;
	if (old == size)
		return count == 0 && memcmp(old_root, root, MERKLE_HASH) == 0;
	if (old == 0)
		return count == 0;
	if (count == 0)
		return 0;
	fn = old - 1;
	sn = size - 1;
	/* An old tree that is a perfect subtree is its own first node. */
	if ((old & (old - 1)) == 0) {
		memcpy(fr, old_root, MERKLE_HASH);
	} else {
		memcpy(fr, proof[i++], MERKLE_HASH);
	}
	memcpy(sr, fr, MERKLE_HASH);
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < count; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			if (merkle_node(h, proof[i], fr, fr) < 0 ||
			    merkle_node(h, proof[i], sr, sr) < 0)
				return 0;
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else if (merkle_node(h, sr, proof[i], sr) < 0) {
			return 0;
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(fr, old_root, MERKLE_HASH) == 0 &&
	       memcmp(sr, root, MERKLE_HASH) == 0;
}
