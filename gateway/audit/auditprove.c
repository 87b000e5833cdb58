#include "audit/auditprove.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/tlog.h"
#include "lib/base64.h"

#define LINE_MAX_BYTES (64 * 1024 * 1024)

/* A request's record, looked for as the files are read. */
struct wanted {
	const char *id;
	size_t idlen;
	long long leaf;     /* the record whose request_id is id */
	long long upstream; /* else the first whose upstream_request_id is */
	const char *file;
	size_t line;
};

/* Whether needle[0..n) occurs in s[0..len); n is short (an id). */
static int
contains(const char *s, size_t len, const char *needle, size_t n)
{
	const char *p = s, *end = s + len;

	while (n > 0 && (size_t)(end - p) >= n && (p = memchr(p, needle[0], (size_t)(end - p)))) {
		if ((size_t)(end - p) >= n && memcmp(p, needle, n) == 0)
			return 1;
		p++;
	}
	return 0;
}

/* Whether the leaf line is the record of w->id. Only lines holding the id
 * are parsed. */
static void
look_for(struct wanted *w, const char *file, size_t lineno, const char *line, size_t len,
         long long leaf)
{
	json_t *rec;
	const char *type, *v;

	if (w->id == NULL || w->leaf >= 0 || !contains(line, len, w->id, w->idlen))
		return;
	rec = json_loadb(line, len, 0, NULL);
	type = json_string_value(json_object_get(rec, "type"));
	if (type && strcmp(type, "request") == 0) {
		v = json_string_value(json_object_get(rec, "request_id"));
		if (v && strcmp(v, w->id) == 0) {
			w->leaf = leaf;
			w->file = file;
			w->line = lineno;
		} else if (w->upstream < 0 &&
		           (v = json_string_value(json_object_get(rec, "upstream_request_id"))) &&
		           strcmp(v, w->id) == 0) {
			w->upstream = leaf;
		}
	}
	json_decref(rec);
}

/* Reads the files through t; 0, or 1 after printing the first problem. */
static int
read_files(struct tlog *t, char **files, size_t nfiles, struct wanted *w)
{
	char *line = NULL;
	size_t cap = 0, i, lineno;
	long long leaf;
	ssize_t n;
	FILE *f;
	int rc = 0;

	for (i = 0; i < nfiles && rc == 0; i++) {
		if ((f = fopen(files[i], "rb")) == NULL) {
			fprintf(stderr, "%s: cannot open\n", files[i]);
			rc = 1;
			break;
		}
		lineno = 0;
		while ((n = getline(&line, &cap, f)) > 0) {
			lineno++;
			/* A torn last line is not part of the log yet. */
			if (line[n - 1] != '\n' || n > LINE_MAX_BYTES)
				break;
			if (tlog_line(t, files[i], lineno, line, (size_t)n - 1, &leaf) ==
			    TLOG_PROBLEM) {
				fprintf(stderr, "%s:%zu: %s\n", files[i], lineno, tlog_problem(t));
				rc = 1;
				break;
			}
			if (leaf >= 0 && w)
				look_for(w, files[i], lineno, line, (size_t)n - 1, leaf);
		}
		fclose(f);
	}
	free(line);
	return rc;
}

/* Prints a proof as a JSON list of base64 hashes. */
static void
print_hashes(const unsigned char (*proof)[MERKLE_HASH], size_t count)
{
	char b64[BASE64_LEN(MERKLE_HASH) + 1];
	size_t i;

	putchar('[');
	for (i = 0; i < count; i++) {
		base64_encode(proof[i], MERKLE_HASH, b64);
		printf("%s\"%s\"", i ? ", " : "", b64);
	}
	putchar(']');
}

/* The options both commands take; the rest of argv is left for them. */
struct common {
	const char *config, *pub;
	const char *consistency;
	struct note_key *key;
};

static int
parse_common(int argc, char **argv, int prove, struct common *c, const char *usage)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"public-key", required_argument, NULL, 'p'},
	        {"consistency", required_argument, NULL, 'o'},
	        {NULL, 0, NULL, 0},
	};
	int opt;

	memset(c, 0, sizeof(*c));
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			c->config = optarg;
			break;
		case 'p':
			c->pub = optarg;
			break;
		case 'o':
			if (prove) {
				c->consistency = optarg;
				break;
			}
			/* fall through */
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (c->config && c->pub) {
		fputs(usage, stderr);
		return 2;
	}
	return 0;
}

static const char checkpoint_usage[] =
        "usage: gateway audit-checkpoint [--config FILE | --public-key PUB] AUDITFILE...\n";

int
auditprove_checkpoint_main(int argc, char **argv, auditverify_config_fn load_config)
{
	struct tlog_settings ts = {0};
	const struct tlog_checkpoint *latest;
	struct tlog *t = NULL;
	struct common c;
	int rc;

	if ((rc = parse_common(argc, argv, 0, &c, checkpoint_usage)) != 0)
		return rc;
	if (optind >= argc) {
		fputs(checkpoint_usage, stderr);
		return 2;
	}
	if ((rc = auditverify_load_key("audit-checkpoint", c.config, c.pub, load_config, &c.key)) !=
	    0)
		return rc;
	ts.key = c.key;
	rc = 1;
	if ((t = tlog_new(&ts)) == NULL ||
	    read_files(t, argv + optind, (size_t)(argc - optind), NULL) != 0)
		goto out;
	if ((latest = tlog_latest(t)) == NULL) {
		fprintf(stderr, "gateway audit-checkpoint: no checkpoint in the files given\n");
		goto out;
	}
	if (fwrite(latest->note, 1, latest->note_len, stdout) != latest->note_len)
		goto out;
	rc = 0;
out:
	tlog_free(t);
	note_key_free(c.key);
	return rc;
}

static const char prove_usage[] =
        "usage: gateway audit-prove [--config FILE | --public-key PUB] AUDITFILE... "
        "REQUEST_ID\n"
        "       gateway audit-prove [--config FILE | --public-key PUB] --consistency "
        "OLD_SIZE AUDITFILE...\n";

int
auditprove_main(int argc, char **argv, auditverify_config_fn load_config)
{
	unsigned char proof[MERKLE_PROOF_MAX][MERKLE_HASH];
	struct tlog_settings ts = {0};
	const struct tlog_checkpoint *latest;
	struct merkle_hasher *h = NULL;
	struct wanted w = {NULL, 0, -1, -1, NULL, 0};
	struct tlog *t = NULL;
	unsigned long long old = 0;
	struct common c;
	size_t nfiles, count;
	char *end;
	int rc;

	if ((rc = parse_common(argc, argv, 1, &c, prove_usage)) != 0)
		return rc;
	nfiles = (size_t)(argc - optind);
	if (c.consistency) {
		old = strtoull(c.consistency, &end, 10);
		if (end == c.consistency || *end != '\0' || c.consistency[0] == '-' || nfiles < 1) {
			fputs(prove_usage, stderr);
			return 2;
		}
	} else {
		if (nfiles < 2) {
			fputs(prove_usage, stderr);
			return 2;
		}
		w.id = argv[argc - 1];
		w.idlen = strlen(w.id);
		nfiles--;
	}
	if ((rc = auditverify_load_key("audit-prove", c.config, c.pub, load_config, &c.key)) != 0)
		return rc;
	ts.key = c.key;
	ts.keep_leaves = 1;
	rc = 1;
	if ((t = tlog_new(&ts)) == NULL || (h = merkle_hasher_new()) == NULL) {
		fprintf(stderr, "gateway audit-prove: out of memory\n");
		goto out;
	}
	if (read_files(t, argv + optind, nfiles, &w) != 0)
		goto out;
	if ((latest = tlog_latest(t)) == NULL) {
		fprintf(stderr, "gateway audit-prove: no checkpoint in the files given\n");
		goto out;
	}
	if (c.consistency) {
		if (old > latest->size) {
			fprintf(stderr,
			        "gateway audit-prove: the latest checkpoint is of %llu records, "
			        "fewer "
			        "than %llu\n",
			        (unsigned long long)latest->size, old);
			goto out;
		}
		if (merkle_store_consistency(h, tlog_store(t), old, latest->size, proof, &count) <
		    0) {
			fprintf(stderr,
			        "gateway audit-prove: the files given begin after record %llu; "
			        "give "
			        "the earlier files of the series too\n",
			        (unsigned long long)tlog_start(t));
			goto out;
		}
		printf("{\"old_size\": %llu, \"tree_size\": %llu, \"consistency\": ", old,
		       (unsigned long long)latest->size);
		print_hashes((const unsigned char(*)[MERKLE_HASH])proof, count);
		printf("}\n");
		rc = 0;
		goto out;
	}
	if (w.leaf < 0)
		w.leaf = w.upstream;
	if (w.leaf < 0) {
		fprintf(stderr, "gateway audit-prove: no record of request %s in the files given\n",
		        w.id);
		goto out;
	}
	if ((uint64_t)w.leaf >= latest->size) {
		fprintf(stderr,
		        "gateway audit-prove: the record of %s (leaf %lld) comes after the latest "
		        "checkpoint (%llu records): no checkpoint covers it yet\n",
		        w.id, w.leaf, (unsigned long long)latest->size);
		goto out;
	}
	if (merkle_store_inclusion(h, tlog_store(t), (uint64_t)w.leaf, latest->size, proof,
	                           &count) < 0) {
		fprintf(stderr, "gateway audit-prove: out of memory\n");
		goto out;
	}
	printf("{\"leaf_index\": %lld, \"tree_size\": %llu, \"inclusion\": ", w.leaf,
	       (unsigned long long)latest->size);
	print_hashes((const unsigned char(*)[MERKLE_HASH])proof, count);
	printf("}\n");
	rc = 0;
out:
	merkle_hasher_free(h);
	tlog_free(t);
	note_key_free(c.key);
	return rc;
}
