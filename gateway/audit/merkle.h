/*
 * merkle: the hash tree over the audit log (RFC 6962 hashes, the RFC 9162
 * tree shape).
 *
 * A leaf is SHA-256(0x00 || bytes), a node SHA-256(0x01 || left || right);
 * a tree of n leaves splits at the largest power of two below n, so any
 * size has one root, and a tree of n leaves is a prefix of every larger one.
 *
 * The writer keeps only the tree's right frontier (struct merkle_tree: the
 * roots of the perfect subtrees the binary digits of its size name, at most
 * one per level): appending a leaf merges as many nodes as its size has
 * trailing ones (one on average), and the root folds them, so memory and
 * work per leaf are O(log n) and nothing is allocated. Proofs need the
 * leaves, kept by struct merkle_store for the tools that make them.
 */
#ifndef GW_MERKLE_H
#define GW_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH   32 /* bytes of a hash */
#define MERKLE_LEVELS 64 /* a size has at most 64 binary digits */
/* The most hashes a proof holds (consistency proofs are the longer). */
#define MERKLE_PROOF_MAX (2 * MERKLE_LEVELS)

/* SHA-256, fetched once; one caller at a time. */
struct merkle_hasher;

struct merkle_hasher *merkle_hasher_new(void);
void merkle_hasher_free(struct merkle_hasher *h);

/* The leaf hash of data[0..len), and the hash of two nodes. 0 or -1. */
int merkle_leaf(struct merkle_hasher *h, const void *data, size_t len,
                unsigned char out[MERKLE_HASH]);
int merkle_node(struct merkle_hasher *h, const unsigned char left[MERKLE_HASH],
                const unsigned char right[MERKLE_HASH], unsigned char out[MERKLE_HASH]);

/* A tree as its right frontier: node[k] is the root of a perfect subtree of
 * 2^k leaves for each bit k set in size; plain data, copied freely. */
struct merkle_tree {
	uint64_t size;
	unsigned char node[MERKLE_LEVELS][MERKLE_HASH];
};

void merkle_tree_init(struct merkle_tree *t);

/* Appends the leaf whose hash is leaf. 0 or -1. */
int merkle_tree_append(struct merkle_hasher *h, struct merkle_tree *t,
                       const unsigned char leaf[MERKLE_HASH]);

/* The root (SHA-256 of nothing for the empty tree). 0 or -1. */
int merkle_tree_root(struct merkle_hasher *h, const struct merkle_tree *t,
                     unsigned char out[MERKLE_HASH]);

/* The frontier's nodes left to right, the largest subtree first: as many as
 * size has bits set. Returns that count; the pointers borrow from t. */
size_t merkle_tree_nodes(const struct merkle_tree *t, const unsigned char *out[MERKLE_LEVELS]);

/* A tree of size leaves from its frontier's nodes, left to right. -1 when
 * count is not the number of bits set in size. */
int merkle_tree_set(struct merkle_tree *t, uint64_t size, const unsigned char (*nodes)[MERKLE_HASH],
                    size_t count);

/*
 * The leaves of a tree from some point on, for proofs: the frontier of the
 * first start leaves (those before are not known one by one) and the hash
 * of every leaf after. Proofs that need a node inside the first start
 * leaves cannot be made (-1).
 */
struct merkle_store;

struct merkle_store *merkle_store_new(const struct merkle_tree *start);
void merkle_store_free(struct merkle_store *s);
int merkle_store_add(struct merkle_store *s, const unsigned char leaf[MERKLE_HASH]);
uint64_t merkle_store_size(const struct merkle_store *s);

/* The root of the tree of the first size leaves. 0 or -1. */
int merkle_store_root(struct merkle_hasher *h, const struct merkle_store *s, uint64_t size,
                      unsigned char out[MERKLE_HASH]);

/* The inclusion proof of leaf index in the tree of size leaves (RFC 9162
 * 2.1.3.1), the hash next to the leaf first; *count hashes into proof. */
int merkle_store_inclusion(struct merkle_hasher *h, const struct merkle_store *s, uint64_t index,
                           uint64_t size, unsigned char proof[][MERKLE_HASH], size_t *count);

/* The consistency proof from the tree of old leaves to the tree of size
 * (RFC 9162 2.1.4.1); empty when old is 0 or size. */
int merkle_store_consistency(struct merkle_hasher *h, const struct merkle_store *s, uint64_t old,
                             uint64_t size, unsigned char proof[][MERKLE_HASH], size_t *count);

/* 1 when proof shows the leaf whose hash is leaf at index in the tree of
 * size whose root is root (RFC 9162 2.1.3.2), else 0. */
int merkle_verify_inclusion(struct merkle_hasher *h, const unsigned char leaf[MERKLE_HASH],
                            uint64_t index, uint64_t size,
                            const unsigned char (*proof)[MERKLE_HASH], size_t count,
                            const unsigned char root[MERKLE_HASH]);

/* 1 when proof shows the tree of old leaves (old_root) is a prefix of the
 * tree of size leaves (root) (RFC 9162 2.1.4.2), else 0. */
int merkle_verify_consistency(struct merkle_hasher *h, uint64_t old, uint64_t size,
                              const unsigned char old_root[MERKLE_HASH],
                              const unsigned char root[MERKLE_HASH],
                              const unsigned char (*proof)[MERKLE_HASH], size_t count);

#endif
