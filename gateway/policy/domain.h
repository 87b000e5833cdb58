/*
 * domain: network domains as DNS hostnames.
 *
 * A requested domain is where an attacker pushes, so it is treated as a
 * hostname, never as a string: normalized (lower case, one trailing dot
 * dropped) and refused unless it is a plain DNS name.
 */
#ifndef GW_DOMAIN_H
#define GW_DOMAIN_H

#include <jansson.h>
#include <stddef.h>

#include "lib/err.h"

#define DOMAIN_MAX 253

/*
 * Normalizes the len bytes at in into out (DOMAIN_MAX + 1 bytes).
 * Only [in, in + len) is read; it need not be NUL-terminated, and a NUL byte
 * inside it is refused. Upper case is lowered and one trailing dot dropped (a
 * second one leaves an empty label).
 * Accepted: two or more labels of [A-Za-z0-9-], each 1..63 long, not
 * starting or ending with '-', 253 bytes at most after normalization, a last
 * label that is not a number (all digits, or "0x" and hex digits), and
 * nothing an IPv4 parser (inet_aton: decimal, octal, hex, fewer than four
 * parts) would read as an address. Punycode ("xn--") labels are plain labels.
 * With allow_wildcard, a leading "*." followed by such a name is accepted
 * too; the "*." counts towards the 253 and "*.com" is refused (the name after
 * "*." needs two labels). '*' anywhere else is refused.
 * Everything else is refused: schemes, ports, paths, userinfo, whitespace,
 * control or non-ASCII bytes, NUL bytes, IP literals of either family, empty
 * labels, single-label names such as "localhost", '_' and other punctuation.
 * Returns 0 with the name in out, or -1 with out set to "" and *why (which
 * must not be NULL) set to a static phrase that completes
 * "domain ... is not a plain DNS hostname: <why>".
 */
int domain_normalize(const char *in, size_t len, int allow_wildcard, char *out, const char **why);

/*
 * Whether the normalized name is covered by the normalized policy pattern:
 * "example.com" covers exactly itself; "*.example.org" covers every name
 * below example.org but not example.org itself. A wildcard name
 * "*.a.example.org" is covered only by a wildcard pattern whose suffix
 * covers it ("*.example.org" or "*.a.example.org"), never by an exact one.
 * Returns 1 or 0; 0 for NULL, empty or over-long arguments.
 */
int domain_match(const char *pattern, const char *name);

/*
 * A set of patterns, answering what domain_match would for each of them in
 * time linear in the name's length, however many patterns it holds: names
 * are kept as a tree of labels from the right, found through one hash table
 * keyed by (parent, label) under a keyed hash (SipHash-1-3, a key drawn at
 * random once per process), so a request that builds a set of its own
 * domains cannot make its lookups collide.
 */
struct domain_set;

/* An empty set, sized for about hint patterns; NULL when memory runs out. */
struct domain_set *domain_set_new(size_t hint);
void domain_set_free(struct domain_set *s);

/*
 * Adds a pattern as domain_match reads it; a pattern domain_match never
 * matches with (NULL, empty, over-long, '*' not followed by '.' and a
 * name) is taken and ignored. Returns 0, or -1 with e filled (503,
 * out_of_memory) when memory runs out.
 */
int domain_set_add(struct domain_set *s, const char *pattern, struct err *e);

/* Whether domain_match(p, name) is 1 for some pattern p added to s; 0 for
 * a NULL set. */
int domain_set_covers(const struct domain_set *s, const char *name);

/* A new set of the strings of a JSON array (other values match nothing, as
 * with domain_match), or NULL with e filled when memory runs out. */
struct domain_set *domain_set_of(const json_t *names, struct err *e);

#endif
