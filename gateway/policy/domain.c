/*
 * domain: network domains as DNS hostnames.
 *
 * Normalization runs in three passes so that a refusal names the most useful
 * reason: first every raw byte is classified (a URL, a port or a NUL byte is
 * what the user needs to hear about, not "bad character"), then the length is
 * checked before anything is written to out, then the lower-cased copy is
 * checked label by label. The byte classes are ASCII by value, never
 * <ctype.h>, so the locale cannot widen what is accepted.
 */
#include "policy/domain.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define DOMAIN_LABEL_MAX 63

/* What the raw bytes contain; each flag feeds one refusal reason. */
struct domain_scan {
	int nul;
	int space;
	int cntrl;
	int high;
	int scheme; /* "://" */
	int at;
	int bracket;
	int slash;
	int query; /* '?' or '#' */
	int percent;
	int backslash;
	int underscore;
	int list; /* ',' or ';' */
	int star;
	int other;
	int ip6chars; /* only hex digits, ':', '.', brackets, and a zone after '%' */
	size_t colons;
};

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static void
scan_bytes(const unsigned char *in, size_t len, struct domain_scan *s)
{
	size_t i;
	int zone = 0;

	memset(s, 0, sizeof(*s));
	s->ip6chars = 1;
	for (i = 0; i < len; i++) {
		unsigned char c = in[i];

		if (c == '%')
			zone = 1;
		else if (!zone && !is_hex(c) && c != ':' && c != '.' && c != '[' && c != ']')
			s->ip6chars = 0;

		if (c == '\0')
			s->nul = 1;
		else if (c == ' ' || (c >= '\t' && c <= '\r'))
			s->space = 1;
		else if (c < 0x20 || c == 0x7f)
			s->cntrl = 1;
		else if (c >= 0x80)
			s->high = 1;
		else if (is_alpha(c) || is_digit(c) || c == '-' || c == '.')
			continue;
		else if (c == ':') {
			s->colons++;
			if (i + 2 < len && in[i + 1] == '/' && in[i + 2] == '/')
				s->scheme = 1;
		} else if (c == '@')
			s->at = 1;
		else if (c == '[' || c == ']')
			s->bracket = 1;
		else if (c == '/')
			s->slash = 1;
		else if (c == '?' || c == '#')
			s->query = 1;
		else if (c == '%')
			s->percent = 1;
		else if (c == '\\')
			s->backslash = 1;
		else if (c == '_')
			s->underscore = 1;
		else if (c == ',' || c == ';')
			s->list = 1;
		else if (c == '*')
			s->star = 1;
		else
			s->other = 1;
	}
}

/*
 * The reason the bytes alone are refused, or NULL. The order puts the
 * invisible and the structural first: "https://u@[::1]:443/" is a URL before
 * it is anything else.
 */
static const char *
scan_why(const struct domain_scan *s, int allow_wildcard)
{
	if (s->nul)
		return "it contains a NUL byte";
	if (s->space)
		return "it contains whitespace";
	if (s->cntrl)
		return "it contains a control character";
	if (s->high)
		return "it contains non-ASCII characters (write them in the xn-- punycode form)";
	if (s->scheme)
		return "it is a URL; give only the hostname";
	if (s->at)
		return "it contains userinfo ('@')";
	if (s->colons >= 2 && s->ip6chars)
		return "it is an IPv6 address";
	if (s->colons > 0)
		return "it contains a port";
	if (s->slash)
		return "it contains a path";
	if (s->query)
		return "it contains a query or fragment ('?' or '#')";
	if (s->percent)
		return "it contains percent-encoding";
	if (s->backslash)
		return "it contains a backslash";
	if (s->underscore)
		return "it contains '_', which hostnames do not allow";
	if (s->list)
		return "it lists more than one domain; give one per entry";
	if (s->bracket || s->other)
		return "it contains characters outside letters, digits, '-' and '.'";
	if (s->star && !allow_wildcard)
		return "wildcards are not allowed here";
	return NULL;
}

/*
 * Whether the n bytes at p are one part of an IPv4 address as inet_aton reads
 * it: strtoul with base 0, so "0x" hex, "0" octal or decimal, at most 2^32 - 1.
 */
static int
ipv4_part(const char *p, size_t n, uint32_t *val)
{
	uint64_t v = 0;
	unsigned base = 10;
	size_t i = 0;

	if (n == 0 || !is_digit((unsigned char)p[0]))
		return 0;
	if (p[0] == '0' && n > 1 && p[1] == 'x') {
		base = 16;
		i = 2;
		if (n == 2)
			return 0; /* strtoul stops at the 'x' */
	} else if (p[0] == '0') {
		base = 8;
	}
	for (; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		unsigned d;

		if (is_digit(c))
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return 0;
		if (d >= base)
			return 0;
		v = v * base + d;
		if (v > UINT32_MAX)
			return 0;
	}
	*val = (uint32_t)v;
	return 1;
}

/* Length of the label that starts at host[at] and runs to the next '.' or to n. */
static size_t
label_len(const char *host, size_t at, size_t n)
{
	size_t end = at;

	while (end < n && host[end] != '.')
		end++;
	return end - at;
}

/*
 * Whether inet_aton would take the lower-case name (n bytes) as an IPv4
 * address: one to four parts, every part but the last a byte, the last
 * filling the rest.
 */
static int
is_ipv4(const char *name, size_t n)
{
	static const uint32_t last_max[4] = {0xffffffffu, 0xffffffu, 0xffffu, 0xffu};
	size_t parts = 0, at, k;
	uint32_t val = 0;

	for (at = 0; at <= n; at += k + 1) {
		k = label_len(name, at, n);
		if (parts == 4 || !ipv4_part(name + at, k, &val))
			return 0;
		parts++;
		if (at + k < n && val > 0xff)
			return 0;
	}
	return val <= last_max[parts - 1];
}

/*
 * Whether a last label reads as a number, which resolvers and URL parsers may
 * take for an address: all digits, or "0x" and hex digits (the WHATWG URL
 * parser reads a bare "0x" as zero).
 */
static int
is_numeric_label(const char *p, size_t n)
{
	size_t i;
	int hex = n >= 2 && p[0] == '0' && p[1] == 'x';

	for (i = hex ? 2 : 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (hex ? !is_hex(c) : !is_digit(c))
			return 0;
	}
	return 1;
}

/*
 * Checks the labels of host (n bytes, lower case, only [a-z0-9.-] left);
 * sets *labels and *last, the offset of the last label. Returns the refusal
 * or NULL.
 */
static const char *
check_labels(const char *host, size_t n, size_t *labels, size_t *last)
{
	size_t at, k;

	*labels = 0;
	*last = 0;
	for (at = 0; at <= n; at += k + 1) {
		k = label_len(host, at, n);
		if (k == 0)
			return "it has an empty label";
		if (k > DOMAIN_LABEL_MAX)
			return "a label is longer than 63 characters";
		if (host[at] == '-' || host[at + k - 1] == '-')
			return "a label starts or ends with '-'";
		(*labels)++;
		*last = at;
	}
	return NULL;
}

int
domain_normalize(const char *in, size_t len, int allow_wildcard, char *out, const char **why)
{
	struct domain_scan s;
	const char *reason = NULL;
	const char *host, *star;
	size_t n, i, hn, labels, last;

	out[0] = '\0';
	if (in == NULL || len == 0) {
		reason = "it is empty";
		goto fail;
	}
	scan_bytes((const unsigned char *)in, len, &s);
	if ((reason = scan_why(&s, allow_wildcard)) != NULL)
		goto fail;

	/* The root's dot is the only one that may go; a second is an empty label. */
	n = len;
	if (in[n - 1] == '.')
		n--;
	if (n > DOMAIN_MAX) {
		reason = "it is longer than 253 characters";
		goto fail;
	}
	for (i = 0; i < n; i++) {
		char c = in[i];

		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[n] = '\0';

	host = out;
	star = memchr(out, '*', n);
	if (star != NULL) {
		if (star != out || n < 2 || out[1] != '.' || memchr(out + 1, '*', n - 1) != NULL) {
			reason = "a wildcard must be a leading \"*.\" label, as in "
			         "\"*.example.com\"";
			goto fail;
		}
		host = out + 2;
	}
	hn = n - (size_t)(host - out);
	if ((reason = check_labels(host, hn, &labels, &last)) != NULL)
		goto fail;
	if (is_ipv4(host, hn)) {
		reason = "it is an IP address";
		goto fail;
	}
	if (labels < 2) {
		reason = host == out ? "it has only one label"
		                     : "a wildcard must cover two or more labels, as in "
		                       "\"*.example.com\"";
		goto fail;
	}
	if (is_numeric_label(host + last, hn - last)) {
		reason = "its last label is a number";
		goto fail;
	}
	return 0;

fail:
	out[0] = '\0';
	*why = reason;
	return -1;
}

/* Length of s, or max + 1 if it is longer than max. */
static size_t
bounded_len(const char *s, size_t max)
{
	size_t n = 0;

	while (n <= max && s[n] != '\0')
		n++;
	return n;
}

int
domain_match(const char *pattern, const char *name)
{
	size_t plen, nlen, slen;

	if (pattern == NULL || name == NULL)
		return 0;
	plen = bounded_len(pattern, DOMAIN_MAX);
	nlen = bounded_len(name, DOMAIN_MAX);
	if (plen == 0 || nlen == 0 || plen > DOMAIN_MAX || nlen > DOMAIN_MAX)
		return 0;
	/* An exact pattern never starts with '*', so it cannot equal a wildcard name. */
	if (pattern[0] != '*')
		return plen == nlen && memcmp(pattern, name, nlen) == 0;
	if (plen < 3 || pattern[1] != '.')
		return 0;
	/*
	 * "*.example.org" covers what ends in ".example.org" with at least one
	 * byte before it. A wildcard name "*.a.example.org" ends that way too,
	 * so it is covered by exactly the wildcard patterns that cover all of
	 * its names.
	 */
	slen = plen - 1;
	return nlen > slen && memcmp(name + nlen - slen, pattern + 1, slen) == 0;
}

/* --- Sets of patterns ---------------------------------------------------- */

/*
 * One label of a name read from the right: the root (index 0) stands for
 * the empty sequence, and a node for the labels from the end of a name up
 * to its own. "a.example.org" is org, then example under it, then a.
 */
struct ds_node {
	uint64_t hash;   /* of (parent, label), kept for growing the table */
	uint32_t parent; /* index in nodes */
	uint32_t off;    /* the label's bytes in text */
	uint16_t len;
	uint8_t exact; /* the pattern is this whole name */
	uint8_t wild;  /* "*." and this name is the pattern */
};

struct domain_set {
	struct ds_node *nodes;
	size_t nnodes, capnodes;
	uint32_t *slots; /* open addressing: node index, 0 for empty */
	size_t nslots;   /* a power of two, at least twice nnodes */
	char *text;
	size_t ntext, captext;
};

static uint64_t sip_key[2];
static pthread_once_t sip_once = PTHREAD_ONCE_INIT;

/* The hash key, drawn once. Without the kernel's randomness, the clock and
 * an address still keep it from being known in advance. */
static void
sip_init(void)
{
	struct timespec ts;

	if (getrandom(sip_key, sizeof(sip_key), 0) == (ssize_t)sizeof(sip_key))
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sip_key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)&ts;
	sip_key[1] = (uint64_t)ts.tv_sec * 0xc2b2ae3d27d4eb4fULL ^ (uint64_t)(uintptr_t)sip_init;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void
sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = ROTL(v[1], 13);
	v[1] ^= v[0];
	v[0] = ROTL(v[0], 32);
	v[2] += v[3];
	v[3] = ROTL(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = ROTL(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = ROTL(v[1], 17);
	v[1] ^= v[2];
	v[2] = ROTL(v[2], 32);
}

/* SipHash-1-3 of the n bytes at p under sip_key. */
static uint64_t
siphash13(const unsigned char *p, size_t n)
{
	uint64_t v[4] = {sip_key[0] ^ 0x736f6d6570736575ULL, sip_key[1] ^ 0x646f72616e646f6dULL,
	                 sip_key[0] ^ 0x6c7967656e657261ULL, sip_key[1] ^ 0x7465646279746573ULL};
	uint64_t m;
	size_t i, k;

	for (i = 0; i + 8 <= n; i += 8) {
		for (m = 0, k = 0; k < 8; k++)
			m |= (uint64_t)p[i + k] << (8 * k);
		v[3] ^= m;
		sip_round(v);
		v[0] ^= m;
	}
	for (m = (uint64_t)n << 56, k = 0; i + k < n; k++)
		m |= (uint64_t)p[i + k] << (8 * k);
	v[3] ^= m;
	sip_round(v);
	v[0] ^= m;
	v[2] ^= 0xff;
	sip_round(v);
	sip_round(v);
	sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* The hash of a label under its parent. */
static uint64_t
label_hash(uint32_t parent, const char *label, size_t len)
{
	unsigned char buf[4 + DOMAIN_MAX];

	memcpy(buf, &parent, 4);
	memcpy(buf + 4, label, len);
	return siphash13(buf, 4 + len);
}

/* The node for label under parent, or 0. */
static uint32_t
ds_find(const struct domain_set *s, uint32_t parent, const char *label, size_t len, uint64_t hash)
{
	size_t mask = s->nslots - 1, i = (size_t)hash & mask;
	uint32_t k;

	while ((k = s->slots[i]) != 0) {
		const struct ds_node *n = &s->nodes[k];

		if (n->hash == hash && n->parent == parent && n->len == len &&
		    memcmp(s->text + n->off, label, len) == 0)
			return k;
		i = (i + 1) & mask;
	}
	return 0;
}

static void
ds_place(struct domain_set *s, uint32_t k)
{
	size_t mask = s->nslots - 1, i = (size_t)s->nodes[k].hash & mask;

	while (s->slots[i] != 0)
		i = (i + 1) & mask;
	s->slots[i] = k;
}

/* Room for one more node: arrays doubled as needed, so adding stays
 * linear in all. Returns 0 or -1. */
static int
ds_reserve(struct domain_set *s, size_t label_len)
{
	size_t i;

	if (s->nnodes >= UINT32_MAX - 1 || s->ntext > UINT32_MAX - label_len)
		return -1;
	if (s->nnodes == s->capnodes) {
		struct ds_node *n = realloc(s->nodes, 2 * s->capnodes * sizeof(*n));

		if (n == NULL)
			return -1;
		s->nodes = n;
		s->capnodes *= 2;
	}
	if (s->ntext + label_len > s->captext) {
		size_t cap = 2 * s->captext + label_len;
		char *t = realloc(s->text, cap);

		if (t == NULL)
			return -1;
		s->text = t;
		s->captext = cap;
	}
	if (2 * (s->nnodes + 1) > s->nslots) {
		uint32_t *slots = calloc(2 * s->nslots, sizeof(*slots));

		if (slots == NULL)
			return -1;
		free(s->slots);
		s->slots = slots;
		s->nslots *= 2;
		for (i = 1; i < s->nnodes; i++)
			ds_place(s, (uint32_t)i);
	}
	return 0;
}

struct domain_set *
domain_set_new(size_t hint)
{
	struct domain_set *s = calloc(1, sizeof(*s));
	size_t slots = 16;

	if (s == NULL)
		return NULL;
	pthread_once(&sip_once, sip_init);
	/* A pattern is a few labels; most share their last ones. */
	while (slots < 4 * hint && slots < ((size_t)1 << 24))
		slots *= 2;
	s->capnodes = slots / 2;
	s->captext = 8 * s->capnodes;
	s->nslots = slots;
	s->nodes = calloc(s->capnodes, sizeof(*s->nodes));
	s->text = malloc(s->captext);
	s->slots = calloc(s->nslots, sizeof(*s->slots));
	if (s->nodes == NULL || s->text == NULL || s->slots == NULL) {
		domain_set_free(s);
		return NULL;
	}
	s->nnodes = 1; /* the root */
	return s;
}

void
domain_set_free(struct domain_set *s)
{
	if (s == NULL)
		return;
	free(s->nodes);
	free(s->slots);
	free(s->text);
	free(s);
}

/* Where the label that ends at end (exclusive) starts in name. */
static size_t
label_start(const char *name, size_t end)
{
	while (end > 0 && name[end - 1] != '.')
		end--;
	return end;
}

int
domain_set_add(struct domain_set *s, const char *pattern, struct err *e)
{
	size_t plen, nlen, start, end;
	const char *name;
	uint32_t node = 0, child;
	int wild;

	if (pattern == NULL)
		return 0;
	plen = bounded_len(pattern, DOMAIN_MAX);
	if (plen == 0 || plen > DOMAIN_MAX)
		return 0;
	wild = pattern[0] == '*';
	if (wild && (plen < 3 || pattern[1] != '.'))
		return 0;
	name = wild ? pattern + 2 : pattern;
	nlen = wild ? plen - 2 : plen;
	for (end = nlen;; end = start - 1) {
		uint64_t h;

		start = label_start(name, end);
		h = label_hash(node, name + start, end - start);
		child = ds_find(s, node, name + start, end - start, h);
		if (child == 0) {
			struct ds_node *n;

			if (ds_reserve(s, end - start) < 0)
				return err_set(e, 503, ERR_INTERNAL, "out_of_memory", NULL,
				               "the gateway ran out of memory building a set of "
				               "domains; try again");
			child = (uint32_t)s->nnodes++;
			n = &s->nodes[child];
			memset(n, 0, sizeof(*n));
			n->hash = h;
			n->parent = node;
			n->off = (uint32_t)s->ntext;
			n->len = (uint16_t)(end - start);
			memcpy(s->text + s->ntext, name + start, end - start);
			s->ntext += end - start;
			ds_place(s, child);
		}
		node = child;
		if (start == 0)
			break;
	}
	if (wild)
		s->nodes[node].wild = 1;
	else
		s->nodes[node].exact = 1;
	return 0;
}

int
domain_set_covers(const struct domain_set *s, const char *name)
{
	size_t nlen, start, end;
	uint32_t node = 0;

	if (s == NULL || name == NULL)
		return 0;
	nlen = bounded_len(name, DOMAIN_MAX);
	if (nlen == 0 || nlen > DOMAIN_MAX)
		return 0;
	/*
	 * Label by label from the right. After each, the node stands for the
	 * name's end from start on: a wildcard pattern there covers the name
	 * when at least one byte comes before the '.' ahead of it (as
	 * domain_match asks), an exact one only when that end is all of it.
	 */
	for (end = nlen;; end = start - 1) {
		start = label_start(name, end);
		node = ds_find(s, node, name + start, end - start,
		               label_hash(node, name + start, end - start));
		if (node == 0)
			return 0;
		if (start == 0)
			return s->nodes[node].exact;
		if (s->nodes[node].wild && start >= 2)
			return 1;
	}
}

struct domain_set *
domain_set_of(const json_t *names, struct err *e)
{
	struct domain_set *s = domain_set_new(json_array_size(names));
	const json_t *v;
	size_t i;

	if (s == NULL) {
		err_set(e, 503, ERR_INTERNAL, "out_of_memory", NULL,
		        "the gateway ran out of memory building a set of domains; try again");
		return NULL;
	}
	json_array_foreach(names, i, v)
	{
		if (domain_set_add(s, json_string_value(v), e) < 0) {
			domain_set_free(s);
			return NULL;
		}
	}
	return s;
}
