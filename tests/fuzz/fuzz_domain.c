/*
 * libFuzzer target: domain_normalize and domain_match.
 *
 * The input is a name, or a pattern and a name split at the first newline.
 * Beyond memory errors it aborts when
 *  - an accepted name is not a plain hostname by tests/fuzz/invariant.c's
 *    own reading (lower case, [a-z0-9-] labels of 1..63, two or more, a last
 *    label that is not a number), or libc's inet_aton or inet_pton reads it
 *    as an address;
 *  - normalizing did more than lower-case and drop one trailing dot, or
 *    normalizing the result changes it;
 *  - a name accepted without wildcards is refused, or normalized otherwise,
 *    with them;
 *  - domain_match disagrees with invariant.c's matcher on two accepted
 *    names, or says yes for a name it was never given whole;
 *  - a domain_set of the pattern disagrees with domain_match, on any bytes,
 *    or invariant.c's set with its own matcher.
 *
 *   make fuzz FUZZ_TARGETS=domain
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/domain.h"
#include "invariant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
die(const char *what, const char *a, const char *b)
{
	fprintf(stderr, "fuzz_domain: %s: \"%s\" \"%s\"\n", what, a, b ? b : "");
	abort();
}

/* Checks one normalization; returns whether in was accepted. */
static int
normalize(const char *in, size_t len, int wild, char *out)
{
	char again[DOMAIN_MAX + 1], plain[DOMAIN_MAX + 1], folded[DOMAIN_MAX + 2], why[256];
	const char *reason = NULL, *r2 = NULL;
	struct in6_addr a6;
	struct in_addr a4;
	char *copy;
	int rc, rc_plain;

	/* An exactly-sized copy, so reading past len is caught. */
	copy = malloc(len ? len : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, in, len);
	rc = domain_normalize(copy, len, wild, out, &reason);
	if (rc < 0) {
		if (out[0] != '\0' || reason == NULL || reason[0] == '\0')
			die("a refusal without a reason, or with output", out, NULL);
		free(copy);
		return 0;
	}
	if (strlen(out) > DOMAIN_MAX)
		die("accepted name longer than 253", out, NULL);
	if (inv_check_name(out, wild, why, sizeof(why)) < 0)
		die(why, out, NULL);
	if (inet_aton(out[0] == '*' ? out + 2 : out, &a4) != 0 ||
	    inet_pton(AF_INET6, out, &a6) == 1)
		die("accepted an address", out, NULL);
	if (len > DOMAIN_MAX + 1)
		die("accepted an input longer than 254 bytes", out, NULL);
	inv_domain_fold(in, len, folded, sizeof(folded));
	if (strlen(folded) != len - (in[len - 1] == '.') || strcmp(folded, out) != 0)
		die("normalizing did more than fold case and the root's dot", out, folded);
	if (domain_normalize(out, strlen(out), wild, again, &r2) < 0 || strcmp(again, out) != 0)
		die("normalizing is not idempotent", out, again);
	if (!wild) {
		rc_plain = domain_normalize(copy, len, 1, plain, &r2);
		if (rc_plain < 0 || strcmp(plain, out) != 0)
			die("allowing wildcards refused a plain name", out, plain);
	}
	free(copy);
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *nl = memchr(data, '\n', size);
	char pat[DOMAIN_MAX + 1], name[DOMAIN_MAX + 1], wname[DOMAIN_MAX + 1], raw[512];
	size_t plen = nl ? (size_t)(nl - in) : 0;
	const char *nstart = nl ? nl + 1 : in;
	size_t nlen = size - (size_t)(nstart - in);
	int have_pat, have_name, have_wname, got, want;

	have_name = normalize(nstart, nlen, 0, name);
	have_wname = normalize(nstart, nlen, 1, wname);
	if (!nl)
		return 0;
	have_pat = normalize(in, plen, 1, pat);
	if (have_pat && (have_name || have_wname)) {
		const char *n = have_name ? name : wname;

		json_t *list = json_pack("[s]", pat), *iset = inv_domain_set(list);

		got = domain_match(pat, n);
		want = inv_domain_covers(pat, n);
		if (got != want)
			die(got ? "domain_match covers what it should not" : "domain_match misses",
			    pat, n);
		if (iset && inv_domain_set_covers(iset, n) != want)
			die("invariant.c's set disagrees with its matcher", pat, n);
		json_decref(iset);
		json_decref(list);
	}
	/* Raw, unnormalized bytes up to a NUL: a match must still be exact
	 * (no reading past either string, nothing but byte equality or a
	 * suffix). */
	if (plen < sizeof(raw) && nlen < sizeof(raw)) {
		char rawname[512];

		memcpy(raw, in, plen);
		raw[plen] = '\0';
		memcpy(rawname, nstart, nlen);
		rawname[nlen] = '\0';
		struct domain_set *set = domain_set_new(1);
		struct err e;

		if (domain_match(raw, rawname) && strcmp(raw, rawname) != 0 &&
		    !(raw[0] == '*' && raw[1] == '.' && strlen(rawname) > strlen(raw) - 1 &&
		      strcmp(rawname + strlen(rawname) - (strlen(raw) - 1), raw + 1) == 0))
			die("domain_match matched unrelated strings", raw, rawname);
		if (set && domain_set_add(set, raw, &e) == 0 &&
		    domain_set_covers(set, rawname) != domain_match(raw, rawname))
			die("domain_set disagrees with domain_match", raw, rawname);
		domain_set_free(set);
	}
	return 0;
}
