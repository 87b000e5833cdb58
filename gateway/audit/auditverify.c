#include "audit/auditverify.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/chain.h"
#include "lib/secmem.h"

#define LINE_MAX_BYTES (64 * 1024 * 1024)

struct verifier {
	struct chain_key *mac;    /* NULL: the chain's macs are not checked */
	struct chain_signer *pub; /* NULL: checkpoint signatures are not checked */
	struct chain_digest *digest;

	const char *file;
	size_t line;
	long long seq;            /* of the last line */
	char prev[CHAIN_HEX + 1]; /* its mac */
	int started;
	size_t records, checkpoints, since_checkpoint;
	size_t torn_line; /* a line that is not a record, pending its declaration */
	size_t torn;
};

/* Reports the first problem found: where, and what. */
static int
problem(const struct verifier *v, long long seq, const char *what)
{
	if (seq >= 0)
		printf("%s:%zu (seq %lld): %s\n", v->file, v->line, seq, what);
	else
		printf("%s:%zu: %s\n", v->file, v->line, what);
	return -1;
}

static int
is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* One complete line (without its newline). */
static int
check_line(struct verifier *v, const char *line, size_t len)
{
	json_error_t je;
	json_t *rec;
	const char *type, *prev, *mac, *sig;
	char want[CHAIN_HEX + 1];
	size_t text_len;
	long long seq;
	int rc = 0;

	rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(rec)) {
		json_decref(rec);
		/* Only a torn line the gateway declared right after may be here. */
		if (v->torn_line)
			return problem(v, -1, "not a JSON record: altered or torn");
		v->torn_line = v->line;
		return 0;
	}
	type = json_string_value(json_object_get(rec, "type"));
	/* A line that was not a record is only excused by a "torn" segment
	 * right after it. */
	if (v->torn_line && (type == NULL || strcmp(type, "segment") != 0)) {
		json_decref(rec);
		v->line = v->torn_line;
		return problem(v, -1, "not a JSON record: altered or torn");
	}
	seq = json_is_integer(json_object_get(rec, "seq"))
	              ? (long long)json_integer_value(json_object_get(rec, "seq"))
	              : -1;
	prev = json_string_value(json_object_get(rec, "prev"));
	mac = json_string_value(json_object_get(rec, "mac"));
	if (seq < 0 || !prev || !mac || strlen(mac) != CHAIN_HEX || strlen(prev) != CHAIN_HEX ||
	    len < CHAIN_MAC_SUFFIX ||
	    memcmp(line + len - CHAIN_MAC_SUFFIX, ",\"mac\":\"", 8) != 0 ||
	    !is_hex(mac, CHAIN_HEX)) {
		rc = problem(v, seq, "not a chained record (no seq, prev or mac in place)");
		goto out;
	}
	text_len = len - CHAIN_MAC_SUFFIX;

	/* Order first: it tells removal and reordering apart from change. */
	if (v->started && seq > v->seq + 1) {
		char what[96];

		snprintf(what, sizeof(what),
		         "%lld record(s) missing before this one: removed, or moved (reordered)",
		         seq - v->seq - 1);
		rc = problem(v, seq, what);
		goto out;
	}
	if (v->started && seq <= v->seq) {
		rc = problem(v, seq, "reordered or inserted: its seq does not follow the last");
		goto out;
	}
	if (v->started && strcmp(prev, v->prev) != 0) {
		rc = problem(v, seq,
		             "altered or inserted: it does not name the previous record's mac");
		goto out;
	}
	/* The first line may link to a file rotated away earlier, so its prev
	 * is not checked against the genesis value. */
	if (v->mac) {
		if (chain_mac(v->mac, line, text_len, "}", want) < 0 || strcmp(want, mac) != 0) {
			rc = problem(v, seq, "altered: its mac does not match its content");
			goto out;
		}
	}
	if (type && strcmp(type, "segment") == 0) {
		/* A new stretch: the digest starts over with it. */
		chain_digest_free(v->digest);
		v->digest = chain_digest_new(chain_genesis);
		if (v->digest == NULL) {
			rc = problem(v, seq, "out of memory");
			goto out;
		}
		if (v->torn_line) {
			const char *reason = json_string_value(json_object_get(rec, "reason"));

			if (reason == NULL || strcmp(reason, "torn") != 0) {
				v->line = v->torn_line;
				rc = problem(v, -1, "not a JSON record: altered or torn");
				goto out;
			}
			printf("note: %s:%zu was torn by a crash while it was written; the gateway "
			       "declared it and went on\n",
			       v->file, v->torn_line);
			v->torn_line = 0;
			v->torn++;
		}
		v->records++;
		v->since_checkpoint++;
	} else if (type && strcmp(type, "checkpoint") == 0) {
		const char *digest = json_string_value(json_object_get(rec, "digest"));
		char got[CHAIN_HEX + 1];

		sig = json_string_value(json_object_get(rec, "sig"));
		if (chain_digest_cut(v->digest, got) < 0 || digest == NULL ||
		    strcmp(got, digest) != 0) {
			rc = problem(
			        v, seq,
			        "the lines since the previous checkpoint were altered, removed or "
			        "inserted (its digest does not match)");
			goto out;
		}
		if (v->pub) {
			if (sig == NULL || text_len < CHAIN_SIG_SUFFIX ||
			    !chain_verify(v->pub, line, text_len - CHAIN_SIG_SUFFIX, sig)) {
				rc = problem(v, seq, "the checkpoint's signature does not verify");
				goto out;
			}
		}
		v->checkpoints++;
		v->since_checkpoint = 0;
	} else {
		v->records++;
		v->since_checkpoint++;
	}
	/* The checkpoint's own bytes open the next stretch. */
	chain_digest_add(v->digest, line, len);
	chain_digest_add(v->digest, "\n", 1);
	v->seq = seq;
	snprintf(v->prev, sizeof(v->prev), "%s", mac);
	v->started = 1;
out:
	json_decref(rec);
	return rc;
}

static int
check_file(struct verifier *v, const char *path)
{
	FILE *f = fopen(path, "rb");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	v->file = path;
	v->line = 0;
	if (f == NULL) {
		printf("%s: cannot open\n", path);
		return -1;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		v->line++;
		if (line[n - 1] != '\n') {
			rc = problem(v, -1,
			             "torn: the last line was cut off mid-record (a crash while "
			             "writing)");
			break;
		}
		if (n > LINE_MAX_BYTES || check_line(v, line, (size_t)n - 1) < 0) {
			rc = -1;
			break;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

static const char usage[] =
        "usage: gateway audit-verify --config FILE AUDITFILE...\n"
        "       gateway audit-verify [--hmac-key-env VAR | --hmac-key-file FILE]\n"
        "                            [--public-key FILE] AUDITFILE...\n";

int
auditverify_main(int argc, char **argv, auditverify_config_fn load_config)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"hmac-key-env", required_argument, NULL, 'e'},
	        {"hmac-key-file", required_argument, NULL, 'f'},
	        {"public-key", required_argument, NULL, 'p'},
	        {NULL, 0, NULL, 0},
	};
	static struct errlist errs;
	const char *config = NULL, *key_env = NULL, *key_file = NULL, *pub = NULL, *why = NULL;
	struct verifier v;
	struct auditverify_keys keys;
	char *key = NULL;
	size_t i;
	int opt, rc = 1;

	memset(&v, 0, sizeof(v));
	memset(&keys, 0, sizeof(keys));
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'e':
			key_env = optarg;
			break;
		case 'f':
			key_file = optarg;
			break;
		case 'p':
			pub = optarg;
			break;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind >= argc || (config && (key_env || key_file)) || (key_env && key_file)) {
		fputs(usage, stderr);
		return 2;
	}
	if (config) {
		if (load_config(config, &keys, &errs) < 0) {
			for (i = 0; i < errs.n; i++)
				fprintf(stderr, "%s\n", errs.msg[i]);
			return 1;
		}
		v.mac = chain_key_new(keys.key, keys.keylen);
		if (v.mac == NULL)
			goto out;
		if (pub == NULL && keys.signing_key_file)
			v.pub = chain_signer_load(keys.signing_key_file, &why);
	} else if (key_env || key_file) {
		const char *val = key_env ? getenv(key_env) : NULL;
		FILE *f;
		size_t n = 0;

		key = secmem_alloc(4096);
		if (key && key_file && (f = fopen(key_file, "r")) != NULL) {
			n = fread(key, 1, 4095, f);
			fclose(f);
			while (n > 0 && (key[n - 1] == '\n' || key[n - 1] == '\r'))
				n--;
		} else if (key && val && strlen(val) < 4096) {
			n = strlen(val);
			memcpy(key, val, n);
		}
		if (n == 0) {
			fprintf(stderr, "gateway audit-verify: no key in %s\n",
			        key_env ? key_env : key_file);
			goto out;
		}
		if ((v.mac = chain_key_new((const unsigned char *)key, n)) == NULL)
			goto out;
	} else if (pub == NULL) {
		/* A chain written without a key. */
		if ((v.mac = chain_key_new(NULL, 0)) == NULL)
			goto out;
	}
	if (pub && (v.pub = chain_verifier_load(pub, &why)) == NULL &&
	    (v.pub = chain_signer_load(pub, &why)) == NULL) {
		fprintf(stderr, "gateway audit-verify: %s: %s\n", pub, why);
		goto out;
	}
	v.digest = chain_digest_new(chain_genesis);
	if (v.digest == NULL)
		goto out;
	for (i = (size_t)optind; i < (size_t)argc; i++)
		if (check_file(&v, argv[i]) < 0)
			goto out;
	if (v.torn_line) {
		v.line = v.torn_line;
		problem(&v, -1, "not a JSON record: altered or torn");
		goto out;
	}
	printf("audit OK: %zu records, %zu checkpoints\n", v.records, v.checkpoints);
	if (!v.mac && v.since_checkpoint)
		printf("note: the last %zu records follow the last checkpoint; without the HMAC "
		       "key "
		       "only their order and links were checked\n",
		       v.since_checkpoint);
	rc = 0;
out:
	chain_digest_free(v.digest);
	chain_signer_free(v.pub);
	chain_key_free(v.mac);
	secmem_free(key);
	if (keys.release)
		keys.release(keys.arg);
	return rc;
}
