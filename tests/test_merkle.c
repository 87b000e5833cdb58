/*
 * Tests for gateway/audit/merkle.c: roots against the RFC 6962 test
 * vectors (the eight leaves certificate-transparency's own tests use),
 * the frontier against the tree's recursive definition for every size up
 * to 300, and every inclusion and consistency proof up to 64 leaves both
 * made and verified, including from a store that starts mid-tree, with
 * tampered proofs refused.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "audit/merkle.h"
#include "lib/base64.h"

static struct merkle_hasher *h;

static void
suite_init(void)
{
	h = merkle_hasher_new();
	cr_assert_not_null(h);
}

static void
suite_fini(void)
{
	merkle_hasher_free(h);
}

TestSuite(merkle, .init = suite_init, .fini = suite_fini);

static void
hex(const unsigned char *b, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* The leaves of RFC 6962's test vectors, and the root at each size. */
static const struct {
	const char *bytes;
	size_t len;
} vec[] = {
        {"", 0},
        {"\x00", 1},
        {"\x10", 1},
        {"\x20\x21", 2},
        {"\x30\x31", 2},
        {"\x40\x41\x42\x43", 4},
        {"\x50\x51\x52\x53\x54\x55\x56\x57", 8},
        {"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16},
};
static const char *const roots[] = {
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

Test(merkle, roots_match_the_rfc6962_vectors)
{
	unsigned char leaf[MERKLE_HASH], root[MERKLE_HASH];
	char got[2 * MERKLE_HASH + 1];
	struct merkle_tree t;
	struct merkle_store *s = merkle_store_new(NULL);
	size_t i;

	merkle_tree_init(&t);
	cr_assert_eq(merkle_tree_root(h, &t, root), 0);
	hex(root, MERKLE_HASH, got);
	cr_expect_str_eq(got, roots[0]);
	for (i = 0; i < 8; i++) {
		cr_assert_eq(merkle_leaf(h, vec[i].bytes, vec[i].len, leaf), 0);
		cr_assert_eq(merkle_tree_append(h, &t, leaf), 0);
		cr_assert_eq(merkle_store_add(s, leaf), 0);
		cr_assert_eq(merkle_tree_root(h, &t, root), 0);
		hex(root, MERKLE_HASH, got);
		cr_expect_str_eq(got, roots[i + 1], "frontier, size %zu", i + 1);
		cr_assert_eq(merkle_store_root(h, s, i + 1, root), 0);
		hex(root, MERKLE_HASH, got);
		cr_expect_str_eq(got, roots[i + 1], "store, size %zu", i + 1);
	}
	merkle_store_free(s);
}

/* MTH(D[lo:hi]) straight from RFC 9162's definition. */
static void
mth(unsigned char (*leaves)[MERKLE_HASH], size_t lo, size_t hi, unsigned char out[MERKLE_HASH])
{
	unsigned char l[MERKLE_HASH], r[MERKLE_HASH];
	size_t k = 1;

	if (hi - lo == 1) {
		memcpy(out, leaves[lo], MERKLE_HASH);
		return;
	}
	while (k * 2 < hi - lo)
		k *= 2;
	mth(leaves, lo, lo + k, l);
	mth(leaves, lo + k, hi, r);
	cr_assert_eq(merkle_node(h, l, r, out), 0);
}

#define N 300

static unsigned char leaves[N][MERKLE_HASH];

static void
make_leaves(void)
{
	size_t i;
	char text[32];

	for (i = 0; i < N; i++) {
		snprintf(text, sizeof(text), "leaf %zu", i);
		cr_assert_eq(merkle_leaf(h, text, strlen(text), leaves[i]), 0);
	}
}

Test(merkle, the_frontier_has_the_root_of_the_definition_at_every_size)
{
	unsigned char want[MERKLE_HASH], got[MERKLE_HASH], nodes[MERKLE_LEVELS][MERKLE_HASH];
	const unsigned char *np[MERKLE_LEVELS];
	struct merkle_tree t, copy;
	size_t i, j, n;

	make_leaves();
	merkle_tree_init(&t);
	for (i = 0; i < N; i++) {
		cr_assert_eq(merkle_tree_append(h, &t, leaves[i]), 0);
		mth(leaves, 0, i + 1, want);
		cr_assert_eq(merkle_tree_root(h, &t, got), 0);
		cr_assert(memcmp(want, got, MERKLE_HASH) == 0, "size %zu", i + 1);
		/* Its nodes, written out and read back, are the same tree. */
		n = merkle_tree_nodes(&t, np);
		cr_assert_eq(n, (size_t)__builtin_popcountll(i + 1));
		for (j = 0; j < n; j++)
			memcpy(nodes[j], np[j], MERKLE_HASH);
		cr_assert_eq(merkle_tree_set(&copy, i + 1,
		                             (const unsigned char(*)[MERKLE_HASH])nodes, n),
		             0);
		cr_assert_eq(merkle_tree_root(h, &copy, got), 0);
		cr_assert(memcmp(want, got, MERKLE_HASH) == 0, "size %zu read back", i + 1);
		cr_expect_eq(merkle_tree_set(&copy, i + 1,
		                             (const unsigned char(*)[MERKLE_HASH])nodes, n + 1),
		             -1);
	}
}

/* Every proof up to 64 leaves from a store starting at start. */
static void
all_proofs(size_t start)
{
	unsigned char proof[MERKLE_PROOF_MAX][MERKLE_HASH], root[MERKLE_HASH],
	        old_root[MERKLE_HASH];
	struct merkle_tree t;
	struct merkle_store *s;
	size_t i, n, m, count;
	const unsigned char(*p)[MERKLE_HASH] = (const unsigned char(*)[MERKLE_HASH])proof;

	merkle_tree_init(&t);
	for (i = 0; i < start; i++)
		cr_assert_eq(merkle_tree_append(h, &t, leaves[i]), 0);
	s = merkle_store_new(&t);
	for (i = start; i < 64; i++)
		cr_assert_eq(merkle_store_add(s, leaves[i]), 0);
	for (n = start > 0 ? start : 1; n <= 64; n++) {
		mth(leaves, 0, n, root);
		for (i = 0; i < n; i++) {
			if (i < start) {
				cr_expect_eq(merkle_store_inclusion(h, s, i, n, proof, &count), -1);
				continue;
			}
			cr_assert_eq(merkle_store_inclusion(h, s, i, n, proof, &count), 0,
			             "leaf %zu of %zu from %zu", i, n, start);
			cr_assert(merkle_verify_inclusion(h, leaves[i], i, n, p, count, root),
			          "leaf %zu of %zu from %zu", i, n, start);
			/* Another leaf, index or size does not pass. */
			cr_assert(!merkle_verify_inclusion(h, leaves[i + 1], i, n, p, count, root));
			cr_assert(
			        !merkle_verify_inclusion(h, leaves[i], i ^ 1, n, p, count, root) ||
			        (i ^ 1) >= n || count == 0);
			if (count > 0) {
				proof[count - 1][0] ^= 1;
				cr_assert(!merkle_verify_inclusion(h, leaves[i], i, n, p, count,
				                                   root));
				proof[count - 1][0] ^= 1;
				cr_assert(!merkle_verify_inclusion(h, leaves[i], i, n, p, count - 1,
				                                   root));
			}
		}
		for (m = start; m <= n; m++) {
			if (m == 0)
				memcpy(old_root, root, MERKLE_HASH); /* not looked at */
			else
				mth(leaves, 0, m, old_root);
			cr_assert_eq(merkle_store_consistency(h, s, m, n, proof, &count), 0,
			             "%zu to %zu from %zu", m, n, start);
			cr_assert(merkle_verify_consistency(h, m, n, old_root, root, p, count),
			          "%zu to %zu from %zu", m, n, start);
			if (count > 0) {
				proof[0][5] ^= 1;
				cr_assert(!merkle_verify_consistency(h, m, n, old_root, root, p,
				                                     count),
				          "tampered, %zu to %zu", m, n);
				proof[0][5] ^= 1;
			}
			if (m > 0 && m < n)
				cr_assert(
				        !merkle_verify_consistency(h, m, n, root, root, p, count));
		}
	}
	merkle_store_free(s);
}

Test(merkle, every_proof_up_to_64_leaves_verifies)
{
	make_leaves();
	all_proofs(0);
}

Test(merkle, a_store_that_starts_mid_tree_proves_what_comes_after)
{
	make_leaves();
	all_proofs(13);
	all_proofs(32);
	all_proofs(37);
}

Test(merkle, base64_is_strict)
{
	unsigned char out[8];
	char text[16];

	cr_expect_eq(base64_encode((const unsigned char *)"ab", 2, text), 4);
	cr_expect_str_eq(text, "YWI=");
	cr_expect_eq(base64_decode("YWI=", 4, out, sizeof(out)), 2);
	cr_expect_eq(memcmp(out, "ab", 2), 0);
	cr_expect_eq(base64_decode("YWJj", 4, out, sizeof(out)), 3);
	cr_expect_eq(base64_decode("YQ==", 4, out, sizeof(out)), 1);
	cr_expect_eq(base64_decode("YR==", 4, out, sizeof(out)), -1, "bits left over");
	cr_expect_eq(base64_decode("YWI", 3, out, sizeof(out)), -1, "no padding");
	cr_expect_eq(base64_decode("Y=I=", 4, out, sizeof(out)), -1, "padding inside");
	cr_expect_eq(base64_decode("YW I", 4, out, sizeof(out)), -1, "a space");
	cr_expect_eq(base64_decode("YWJjYWJj", 8, out, 5), -1, "too long for out");
	cr_expect_eq(base64_decode("", 0, out, sizeof(out)), 0);
}
