/*
 * Tests for gateway/domain.c, driven by $GW_DATA/domain/cases.txt (GW_DATA
 * defaults to "tests/data"). Each line of that file is one case, fields
 * separated by tabs:
 *
 *   accept       <input>  <normalized>       accepted with and without wildcards
 *   accept-wild  <input>  <normalized>       accepted only with wildcards
 *   reject       <input>  [<why contains>]   refused with and without wildcards;
 *                                            the why is the one given when
 *                                            wildcards are allowed
 *   match        <pattern>  <name>           domain_match is 1 after both are
 *   nomatch      <pattern>  <name>           normalized (wildcards allowed)
 *
 * Fields take C escapes \t \n \r \\ \xHH so that control bytes and NUL can be
 * written; a field of exactly "" is the empty string. '#' starts a comment
 * line.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/domain.h"
#include "lib/hex.h"

#define CASES_MAX    1024
#define FIELD_MAX    1024
#define LINE_BUF_MAX 4096

enum kind { ACCEPT, ACCEPT_WILD, REJECT, MATCH, NOMATCH };

struct field {
	char b[FIELD_MAX];
	size_t len;
};

struct tcase {
	enum kind kind;
	int line;
	struct field a;
	struct field b;
	int has_b;
};

static struct tcase cases[CASES_MAX];
static size_t ncases;

/* Decodes the escapes in s into f; a bad escape fails the test at its line. */
static void
decode(const char *s, struct field *f, int line)
{
	size_t i = 0;

	f->len = 0;
	if (strcmp(s, "\"\"") == 0)
		return;
	while (s[i] != '\0') {
		char c = s[i++];

		cr_assert_lt(f->len, FIELD_MAX - 1, "cases.txt:%d: field too long", line);
		if (c == '\\') {
			char e = s[i++];

			if (e == 't')
				c = '\t';
			else if (e == 'n')
				c = '\n';
			else if (e == 'r')
				c = '\r';
			else if (e == '\\')
				c = '\\';
			else if (e == 'x' && hex_digit(s[i]) >= 0 && hex_digit(s[i + 1]) >= 0) {
				c = (char)(hex_digit(s[i]) * 16 + hex_digit(s[i + 1]));
				i += 2;
			} else
				cr_assert_fail("cases.txt:%d: bad escape \\%c", line, e);
		}
		f->b[f->len++] = c;
	}
	f->b[f->len] = '\0';
}

static void
load_cases(void)
{
	const char *dir = getenv("GW_DATA");
	char path[1024], buf[LINE_BUF_MAX];
	FILE *fp;
	int line = 0;

	if (dir == NULL || dir[0] == '\0')
		dir = "tests/data";
	snprintf(path, sizeof(path), "%s/domain/cases.txt", dir);
	fp = fopen(path, "r");
	cr_assert_not_null(fp, "cannot open %s (set GW_DATA)", path);
	ncases = 0;
	while (fgets(buf, sizeof(buf), fp) != NULL) {
		size_t n = strlen(buf);
		char *kind, *a, *b, *extra;
		struct tcase *t;

		line++;
		cr_assert(n > 0 && buf[n - 1] == '\n', "%s:%d: line too long or unterminated", path,
		          line);
		buf[--n] = '\0';
		if (n == 0 || buf[0] == '#')
			continue;
		cr_assert_lt(ncases, CASES_MAX, "%s: too many cases", path);
		t = &cases[ncases++];
		t->line = line;
		kind = buf;
		a = strchr(kind, '\t');
		cr_assert_not_null(a, "%s:%d: no input field", path, line);
		*a++ = '\0';
		b = strchr(a, '\t');
		if (b != NULL) {
			*b++ = '\0';
			extra = strchr(b, '\t');
			cr_assert_null(extra, "%s:%d: too many fields", path, line);
		}
		if (strcmp(kind, "accept") == 0)
			t->kind = ACCEPT;
		else if (strcmp(kind, "accept-wild") == 0)
			t->kind = ACCEPT_WILD;
		else if (strcmp(kind, "reject") == 0)
			t->kind = REJECT;
		else if (strcmp(kind, "match") == 0)
			t->kind = MATCH;
		else if (strcmp(kind, "nomatch") == 0)
			t->kind = NOMATCH;
		else
			cr_assert_fail("%s:%d: unknown kind \"%s\"", path, line, kind);
		decode(a, &t->a, line);
		t->has_b = b != NULL;
		if (b != NULL)
			decode(b, &t->b, line);
		cr_assert(t->kind == REJECT || t->has_b, "%s:%d: missing second field", path, line);
	}
	fclose(fp);
}

TestSuite(domain, .init = load_cases);

/*
 * Calls domain_normalize on an exact-size heap copy of the input and an
 * exact-size heap output, so AddressSanitizer sees any byte read past len or
 * written past DOMAIN_MAX + 1. Returns the result; out gets the output.
 */
static int
normalize(const char *in, size_t len, int wild, char *out, const char **why)
{
	char *copy = malloc(len > 0 ? len : 1);
	char *o = malloc(DOMAIN_MAX + 1);
	int rc;

	cr_assert_not_null(copy);
	cr_assert_not_null(o);
	memcpy(copy, in, len);
	*why = NULL;
	rc = domain_normalize(copy, len, wild, o, why);
	memcpy(out, o, DOMAIN_MAX + 1);
	free(copy);
	free(o);
	return rc;
}

/*
 * A refusal reason completes "... is not a plain DNS hostname: <why>", so it
 * is a short lower-case phrase without a final stop. ctx and n say where.
 */
static void
expect_good_why(const char *why, const char *ctx, int n)
{
	size_t len;

	cr_assert_not_null(why, "%s%d: no why", ctx, n);
	len = strlen(why);
	cr_expect_gt(len, 5, "%s%d: why too short: \"%s\"", ctx, n, why);
	cr_expect_lt(len, 100, "%s%d: why too long: \"%s\"", ctx, n, why);
	cr_expect(why[0] >= 'a' && why[0] <= 'z', "%s%d: why not lower case: \"%s\"", ctx, n, why);
	cr_expect(why[len - 1] != '.', "%s%d: why ends with '.': \"%s\"", ctx, n, why);
}

Test(domain, file_has_enough_cases)
{
	size_t i, per[5] = {0};

	for (i = 0; i < ncases; i++)
		per[cases[i].kind]++;
	cr_expect_geq(ncases, 120, "only %zu cases", ncases);
	for (i = 0; i < 5; i++)
		cr_expect_gt(per[i], 0, "no cases of kind %zu", i);
}

Test(domain, accept)
{
	char out[DOMAIN_MAX + 1], again[DOMAIN_MAX + 1];
	const char *why;
	struct in_addr addr;
	size_t i;

	for (i = 0; i < ncases; i++) {
		const struct tcase *t = &cases[i];
		int wild;

		if (t->kind != ACCEPT)
			continue;
		for (wild = 0; wild <= 1; wild++) {
			int rc = normalize(t->a.b, t->a.len, wild, out, &why);

			cr_expect_eq(rc, 0, "cases.txt:%d: refused (wildcards %d): %s", t->line,
			             wild, why ? why : "(null)");
			cr_expect_str_eq(out, t->b.b, "cases.txt:%d: normalized wrong", t->line);
		}
		/* Normalizing is idempotent, and what it lets through is no address. */
		cr_expect_eq(normalize(out, strlen(out), 0, again, &why), 0, "cases.txt:%d",
		             t->line);
		cr_expect_str_eq(again, out, "cases.txt:%d: not idempotent", t->line);
		cr_expect_eq(inet_aton(out, &addr), 0, "cases.txt:%d: inet_aton takes \"%s\"",
		             t->line, out);
		cr_expect_eq(domain_match(out, out), 1, "cases.txt:%d: no self match", t->line);
	}
}

Test(domain, accept_wild)
{
	char out[DOMAIN_MAX + 1], again[DOMAIN_MAX + 1];
	const char *why;
	size_t i;

	for (i = 0; i < ncases; i++) {
		const struct tcase *t = &cases[i];
		int rc;

		if (t->kind != ACCEPT_WILD)
			continue;
		rc = normalize(t->a.b, t->a.len, 1, out, &why);
		cr_expect_eq(rc, 0, "cases.txt:%d: refused: %s", t->line, why ? why : "(null)");
		cr_expect_str_eq(out, t->b.b, "cases.txt:%d: normalized wrong", t->line);
		cr_expect_eq(normalize(out, strlen(out), 1, again, &why), 0, "cases.txt:%d",
		             t->line);
		cr_expect_str_eq(again, out, "cases.txt:%d: not idempotent", t->line);
		cr_expect_eq(domain_match(out, out), 1, "cases.txt:%d: no self match", t->line);

		rc = normalize(t->a.b, t->a.len, 0, out, &why);
		cr_expect_eq(rc, -1, "cases.txt:%d: wildcard accepted without allow_wildcard",
		             t->line);
		cr_expect_str_eq(why, "wildcards are not allowed here", "cases.txt:%d", t->line);
		cr_expect_str_eq(out, "", "cases.txt:%d: output left on refusal", t->line);
	}
}

Test(domain, reject)
{
	char out[DOMAIN_MAX + 1];
	const char *why;
	size_t i;

	for (i = 0; i < ncases; i++) {
		const struct tcase *t = &cases[i];
		int wild;

		if (t->kind != REJECT)
			continue;
		for (wild = 0; wild <= 1; wild++) {
			int rc = normalize(t->a.b, t->a.len, wild, out, &why);

			cr_expect_eq(rc, -1, "cases.txt:%d: accepted as \"%s\" (wildcards %d)",
			             t->line, out, wild);
			cr_expect_str_eq(out, "", "cases.txt:%d: output left on refusal", t->line);
			expect_good_why(why, "cases.txt:", t->line);
		}
		/* why is from the last call, with wildcards allowed. */
		if (t->has_b && why != NULL)
			cr_expect(strstr(why, t->b.b) != NULL,
			          "cases.txt:%d: why \"%s\" does not mention \"%s\"", t->line, why,
			          t->b.b);
	}
}

Test(domain, match)
{
	char p[DOMAIN_MAX + 1], n[DOMAIN_MAX + 1];
	const char *why;
	size_t i;

	for (i = 0; i < ncases; i++) {
		const struct tcase *t = &cases[i];

		if (t->kind != MATCH && t->kind != NOMATCH)
			continue;
		cr_assert_eq(normalize(t->a.b, t->a.len, 1, p, &why), 0,
		             "cases.txt:%d: pattern refused: %s", t->line, why);
		cr_assert_eq(normalize(t->b.b, t->b.len, 1, n, &why), 0,
		             "cases.txt:%d: name refused: %s", t->line, why);
		cr_expect_eq(domain_match(p, n), t->kind == MATCH, "cases.txt:%d: \"%s\" vs \"%s\"",
		             t->line, p, n);
	}
}

/* The output never grows past DOMAIN_MAX + 1 bytes, whatever the input. */
Test(domain, output_bounded)
{
	struct {
		char out[DOMAIN_MAX + 1];
		unsigned char canary[64];
	} buf;
	char big[1024];
	const char *why;
	size_t i, len, k;
	int wild;

	memset(big, 'a', sizeof(big));
	for (k = 64; k < sizeof(big); k += 64)
		big[k] = '.';
	for (i = 0; i < ncases + sizeof(big); i++) {
		const char *in = i < ncases ? cases[i].a.b : big;

		len = i < ncases ? cases[i].a.len : i - ncases;
		for (wild = 0; wild <= 1; wild++) {
			memset(buf.canary, 0xA5, sizeof(buf.canary));
			domain_normalize(in, len, wild, buf.out, &why);
			for (k = 0; k < sizeof(buf.canary); k++)
				cr_assert_eq(buf.canary[k], 0xA5, "canary hit, input %zu len %zu",
				             i, len);
		}
	}
}

/* Every single byte in the middle, at the start and at the end of a name. */
Test(domain, every_byte)
{
	char in[32], out[DOMAIN_MAX + 1];
	const char *why;
	int c, rc;

	for (c = 0; c < 256; c++) {
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		         (c >= '0' && c <= '9') || c == '-' || c == '.';

		memcpy(in, "exXample.com", 12);
		in[2] = (char)c;
		rc = normalize(in, 12, 1, out, &why);
		cr_expect_eq(rc, ok ? 0 : -1, "byte 0x%02x in the middle", c);
		if (rc != 0)
			expect_good_why(why, "byte ", c);

		in[0] = (char)c;
		memcpy(in + 1, "example.com", 11);
		rc = normalize(in, 12, 0, out, &why);
		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		cr_expect_eq(rc, ok ? 0 : -1, "byte 0x%02x at the start", c);

		memcpy(in, "example.com", 11);
		in[11] = (char)c;
		rc = normalize(in, 12, 0, out, &why);
		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     c == '.';
		cr_expect_eq(rc, ok ? 0 : -1, "byte 0x%02x at the end", c);
	}
}

/*
 * Names of every length around the limits: labels of lab bytes, the last one
 * taking what is left.
 */
Test(domain, lengths)
{
	char in[600], out[DOMAIN_MAX + 1];
	const char *why;
	size_t total, lab, p;

	for (lab = 1; lab <= 64; lab++) {
		for (total = 1; total <= 300; total++) {
			int rc, ok;

			for (p = 0; p < total; p++)
				in[p] = p % (lab + 1) == lab ? '.' : (char)('a' + p % 26);
			if (in[total - 1] == '.')
				continue; /* would be a trailing dot, tried below */
			ok = total <= DOMAIN_MAX && total > lab && lab <= 63;
			rc = normalize(in, total, 0, out, &why);
			cr_expect_eq(rc, ok ? 0 : -1, "label %zu total %zu: %s", lab, total,
			             rc ? why : out);
			if (rc == 0)
				cr_expect_eq(strlen(out), total);

			/* One trailing dot is free, a second is an empty label. */
			in[total] = '.';
			rc = normalize(in, total + 1, 0, out, &why);
			cr_expect_eq(rc, ok ? 0 : -1, "label %zu total %zu + '.'", lab, total);
			if (rc == 0)
				cr_expect_eq(strlen(out), total);
			in[total + 1] = '.';
			cr_expect_eq(normalize(in, total + 2, 0, out, &why), -1);

			/* "*." counts towards the 253. */
			memmove(in + 2, in, total);
			in[0] = '*';
			in[1] = '.';
			ok = ok && total + 2 <= DOMAIN_MAX;
			rc = normalize(in, total + 2, 1, out, &why);
			cr_expect_eq(rc, ok ? 0 : -1, "label %zu total *.%zu: %s", lab, total,
			             rc ? why : out);
		}
	}
}

/*
 * Whatever the C library's inet_aton reads as an IPv4 address is refused and
 * called one: alone, with a trailing dot, or under a wildcard.
 */
Test(domain, inet_aton_agrees)
{
	static const char *const part[] = {
	        "0",          "1",        "00",       "08",         "010",
	        "0377",       "0400",     "255",      "256",        "0x",
	        "0x0",        "0xff",     "0x100",    "0X7f",       "65535",
	        "65536",      "16777215", "16777216", "4294967295", "4294967296",
	        "0xffffffff", "a",        "1a",       "0x1g",       "077777777777"};
	const size_t np = sizeof(part) / sizeof(part[0]);
	char in[128], out[DOMAIN_MAX + 1];
	const char *why;
	struct in_addr addr;
	size_t parts, idx, lim, k, hits = 0;

	for (parts = 1, lim = np; parts <= 4; parts++, lim *= np) {
		for (idx = 0; idx < lim; idx++) {
			size_t n = 2, v = idx;

			memcpy(in, "*.", 2);
			for (k = 0; k < parts; k++, v /= np)
				n += (size_t)snprintf(in + n, sizeof(in) - n, "%s%s", k ? "." : "",
				                      part[v % np]);
			if (!inet_aton(in + 2, &addr))
				continue;
			hits++;
			cr_expect_eq(normalize(in + 2, n - 2, 0, out, &why), -1, "\"%s\"", in + 2);
			cr_expect_str_eq(why, "it is an IP address", "\"%s\"", in + 2);
			cr_expect_eq(normalize(in, n, 1, out, &why), -1, "\"%s\"", in);
			cr_expect_str_eq(why, "it is an IP address", "\"%s\"", in);
			in[n] = '.';
			cr_expect_eq(normalize(in + 2, n - 1, 0, out, &why), -1, "\"%s\"", in + 2);
		}
	}
	cr_expect_gt(hits, 1000, "only %zu addresses tried", hits);
}

/*
 * Random strings over the bytes that matter: whatever is accepted is lower
 * case [a-z0-9.-] (and a leading "*."), fits, survives a second pass
 * unchanged and is no address. A fixed seed keeps failures reproducible.
 */
Test(domain, random_properties)
{
	/* Mostly hostname bytes, so that enough is accepted; sometimes anything. */
	static const char host[] = "abfxAZ0179-...*";
	static const char any[] = "aZ09-..**:/@%_\\[] \t\x00\x80\xff"
	                          "0x";
	char in[300], out[DOMAIN_MAX + 1], again[DOMAIN_MAX + 1];
	const char *why;
	struct in_addr addr;
	uint32_t seed = 12345;
	size_t iter, i, len, accepted = 0;

	for (iter = 0; iter < 200000; iter++) {
		seed = seed * 1103515245u + 12345u;
		len = (seed >> 8) % 24;
		if (iter % 100 == 0)
			len = (seed >> 8) % sizeof(in);
		for (i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = iter % 4 ? host[(seed >> 16) % (sizeof(host) - 1)]
			                 : any[(seed >> 16) % (sizeof(any) - 1)];
		}
		if (domain_normalize(in, len, (int)(iter & 1), out, &why) != 0) {
			cr_assert(why != NULL && why[0] != '\0');
			continue;
		}
		accepted++;
		for (i = 0; out[i] != '\0'; i++)
			cr_assert((out[i] >= 'a' && out[i] <= 'z') ||
			                  (out[i] >= '0' && out[i] <= '9') || out[i] == '-' ||
			                  out[i] == '.' || (i == 0 && out[i] == '*'),
			          "\"%s\" has byte %d", out, out[i]);
		cr_assert_leq(i, DOMAIN_MAX);
		cr_assert_eq(domain_normalize(out, i, 1, again, &why), 0);
		cr_assert_str_eq(again, out);
		cr_assert_eq(inet_aton(out[0] == '*' ? out + 2 : out, &addr), 0, "\"%s\"", out);
	}
	cr_expect_gt(accepted, 5000, "only %zu accepted", accepted);
}

Test(domain, match_defensive)
{
	cr_expect_eq(domain_match(NULL, "a.com"), 0);
	cr_expect_eq(domain_match("a.com", NULL), 0);
	cr_expect_eq(domain_match("", ""), 0);
	cr_expect_eq(domain_match("*.", "a."), 0);
	cr_expect_eq(domain_match("*", "a.com"), 0);
	cr_expect_eq(domain_match("*.a.com", ".a.com"), 0);
	cr_expect_eq(domain_match("*.a.com", "*.a.com"), 1);
	cr_expect_eq(domain_match("a.com", "a.com"), 1);
}

Test(domain, empty_and_null_input)
{
	char out[DOMAIN_MAX + 1] = "junk";
	const char *why = NULL;

	cr_expect_eq(domain_normalize(NULL, 0, 1, out, &why), -1);
	cr_expect_str_eq(why, "it is empty");
	cr_expect_str_eq(out, "");
	/* len, not the NUL, bounds the input */
	cr_expect_eq(domain_normalize("a.com", 0, 1, out, &why), -1);
	cr_expect_eq(domain_normalize("a.comXYZ", 5, 0, out, &why), 0);
	cr_expect_str_eq(out, "a.com");
}

/* --- domain_set ----------------------------------------------------------- */

static uint32_t rng = 2463534242u;

static uint32_t
next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/*
 * A random pattern or name: mostly labels from a small pool, so that names
 * and patterns meet often, behind "*." now and then; sometimes raw bytes
 * that no normalizer would let through (empty labels, stray '*', upper
 * case), since domain_set must agree with domain_match on anything.
 */
static void
random_name(char *dst, size_t cap)
{
	static const char *const labels[] = {"a", "b", "ab", "x-y", "com", "org", "B", "", "*"};
	static const char raw[] = "ab.*A";
	size_t n = 0, k, i, len;
	uint32_t r = next_random();

	if (r % 8 == 0) {
		len = next_random() % 12;
		for (i = 0; i < len && n + 1 < cap; i++)
			dst[n++] = raw[next_random() % (sizeof(raw) - 1)];
		dst[n] = '\0';
		return;
	}
	if (r % 3 == 0 && n + 2 < cap) {
		dst[n++] = '*';
		dst[n++] = '.';
	}
	k = 1 + next_random() % 4;
	for (i = 0; i < k; i++) {
		const char *l = labels[next_random() % (i == 0 ? 9 : 8)];

		len = strlen(l);
		if (n + len + 2 >= cap)
			break;
		if (i > 0)
			dst[n++] = '.';
		memcpy(dst + n, l, len);
		n += len;
	}
	dst[n] = '\0';
}

/* What domain_set_covers must say: domain_match against each pattern. */
static int
covered_by_any(char patterns[][64], size_t np, const char *name)
{
	size_t i;

	for (i = 0; i < np; i++)
		if (domain_match(patterns[i], name))
			return 1;
	return 0;
}

/* A set answers as domain_match does over its patterns, on random sets of
 * random patterns and random names. A fixed seed keeps failures
 * reproducible. */
Test(domain, set_agrees_with_match)
{
	static char patterns[24][64];
	char name[64];
	struct domain_set *s;
	struct err e;
	size_t iter, i, np, q, yes = 0, no = 0;

	for (iter = 0; iter < 3000; iter++) {
		np = next_random() % 24;
		s = domain_set_new(iter % 2 ? np : 0);
		cr_assert_not_null(s);
		for (i = 0; i < np; i++) {
			random_name(patterns[i], sizeof(patterns[i]));
			cr_assert_eq(domain_set_add(s, patterns[i], &e), 0);
		}
		for (q = 0; q < 60; q++) {
			int want, got;

			/* Half the names are patterns, so exact hits are tried. */
			if (q % 2 && np > 0)
				snprintf(name, sizeof(name), "%s", patterns[next_random() % np]);
			else
				random_name(name, sizeof(name));
			want = covered_by_any(patterns, np, name);
			got = domain_set_covers(s, name);
			cr_assert_eq(got, want,
			             "set of %zu patterns (first \"%s\") says %d for \"%s\"", np,
			             np ? patterns[0] : "", got, name);
			if (want)
				yes++;
			else
				no++;
		}
		domain_set_free(s);
	}
	cr_expect_gt(yes, 10000, "only %zu names covered", yes);
	cr_expect_gt(no, 10000, "only %zu names not covered", no);
}

/* Names at and past DOMAIN_MAX, with many labels, and a set large enough to
 * grow its table many times. */
Test(domain, set_lengths_and_growth)
{
	char name[DOMAIN_MAX + 8], pat[DOMAIN_MAX + 8];
	struct domain_set *s = domain_set_new(0);
	struct err e;
	size_t len, i;

	cr_assert_not_null(s);
	for (len = DOMAIN_MAX - 4; len <= DOMAIN_MAX + 2; len++) {
		/* "a.a.a...": 127 labels at 253 bytes. */
		for (i = 0; i < len; i++)
			name[i] = i % 2 ? '.' : 'a';
		name[len] = '\0';
		snprintf(pat, sizeof(pat), "*%s", name + 1);
		cr_assert_eq(domain_set_add(s, name, &e), 0);
		cr_assert_eq(domain_set_add(s, pat, &e), 0);
		cr_expect_eq(domain_set_covers(s, name), domain_match(name, name), "len %zu", len);
	}
	for (i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), i % 2 ? "h%zu.example.com" : "*.z%zu.example.org", i);
		cr_assert_eq(domain_set_add(s, name, &e), 0);
	}
	for (i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), i % 2 ? "h%zu.example.com" : "q.z%zu.example.org", i);
		cr_assert(domain_set_covers(s, name), "%s", name);
		snprintf(name, sizeof(name), i % 2 ? "x.h%zu.example.com" : "z%zu.example.org", i);
		cr_assert_not(domain_set_covers(s, name), "%s", name);
	}
	domain_set_free(s);
}

Test(domain, set_defensive)
{
	struct domain_set *s = domain_set_new(4);
	struct err e;

	cr_assert_not_null(s);
	cr_expect_eq(domain_set_covers(NULL, "a.com"), 0);
	cr_expect_eq(domain_set_covers(s, NULL), 0);
	cr_expect_eq(domain_set_covers(s, ""), 0);
	cr_expect_eq(domain_set_add(s, NULL, &e), 0);
	cr_expect_eq(domain_set_add(s, "", &e), 0);
	cr_expect_eq(domain_set_add(s, "*", &e), 0);
	cr_expect_eq(domain_set_add(s, "*.", &e), 0);
	cr_expect_eq(domain_set_covers(s, "a."), 0);
	cr_expect_eq(domain_set_covers(s, "*"), 0, "\"*\" is no pattern to domain_match");
	cr_expect_eq(domain_set_add(s, "*.a.com", &e), 0);
	cr_expect_eq(domain_set_covers(s, ".a.com"), 0);
	cr_expect_eq(domain_set_covers(s, "a.com"), 0);
	cr_expect_eq(domain_set_covers(s, "*.a.com"), 1);
	cr_expect_eq(domain_set_covers(s, "*.b.a.com"), 1);
	cr_expect_eq(domain_set_covers(s, "b.a.com"), 1);
	cr_expect_eq(domain_set_add(s, "a.com", &e), 0);
	cr_expect_eq(domain_set_covers(s, "a.com"), 1);
	cr_expect_eq(domain_set_covers(s, "A.com"), 0, "byte for byte, as domain_match");
	domain_set_free(s);
	domain_set_free(NULL);
}

Test(domain, set_of_a_json_list)
{
	json_t *list = json_pack("[s, i, n, s]", "a.com", 7, "*.b.org");
	struct domain_set *s;
	struct err e;

	cr_assert_not_null(list);
	s = domain_set_of(list, &e);
	cr_assert_not_null(s);
	cr_expect_eq(domain_set_covers(s, "a.com"), 1);
	cr_expect_eq(domain_set_covers(s, "x.b.org"), 1);
	cr_expect_eq(domain_set_covers(s, "b.org"), 0);
	cr_expect_eq(domain_set_covers(s, "7"), 0, "values that are not strings match nothing");
	domain_set_free(s);
	json_decref(list);

	s = domain_set_of(NULL, &e);
	cr_assert_not_null(s, "no list is an empty set");
	cr_expect_eq(domain_set_covers(s, "a.com"), 0);
	domain_set_free(s);
}
