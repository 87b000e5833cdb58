#include "audit/auditverify.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/chain.h"
#include "audit/note.h"
#include "audit/tlog.h"
#include "lib/base64.h"
#include "lib/secmem.h"

#define LINE_MAX_BYTES (64 * 1024 * 1024)

struct verifier {
	struct chain_key *mac; /* NULL: the chain's macs are not checked */
	struct tlog *tlog;

	const char *file;
	size_t line;
	long long seq;            /* of the last line */
	char prev[CHAIN_HEX + 1]; /* its mac */
	int format;               /* of the macs, as the last segment said (chain.h) */
	int started;
	size_t records;
	size_t torn_line; /* a line that is not a record, pending its declaration */
	size_t torn;
	int key_problem; /* the problem found was the key's, not the log's */
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

/* The line into the tree: a leaf, or a checkpoint checked against it. */
static int
tree_line(struct verifier *v, long long seq, const char *line, size_t len)
{
	long long leaf;

	switch (tlog_line(v->tlog, v->file, v->line, line, len, &leaf)) {
	case TLOG_PROBLEM:
		v->key_problem = tlog_problem_is_key(v->tlog);
		return problem(v, seq, tlog_problem(v->tlog));
	case TLOG_UNREADABLE:
	case TLOG_OK:
		break;
	}
	if (leaf >= 0)
		v->records++;
	return 0;
}

/* The chain of macs, for one line: order first, since it tells removal
 * and reordering apart from change. */
static int
check_chain(struct verifier *v, const json_t *rec, const char *line, size_t len, long long *seqp)
{
	const char *prev, *mac, *type;
	char want[CHAIN_HEX + 1];
	long long seq;

	seq = json_is_integer(json_object_get(rec, "seq"))
	              ? (long long)json_integer_value(json_object_get(rec, "seq"))
	              : -1;
	*seqp = seq;
	prev = json_string_value(json_object_get(rec, "prev"));
	mac = json_string_value(json_object_get(rec, "mac"));
	if (seq < 0 || !prev || !mac || strlen(mac) != CHAIN_HEX || strlen(prev) != CHAIN_HEX ||
	    len < CHAIN_MAC_SUFFIX ||
	    memcmp(line + len - CHAIN_MAC_SUFFIX, ",\"mac\":\"", 8) != 0 || !is_hex(mac, CHAIN_HEX))
		return problem(v, seq, "not a chained record (no seq, prev or mac in place)");
	if (v->started && seq > v->seq + 1) {
		char what[96];

		snprintf(what, sizeof(what),
		         "%lld record(s) missing before this one: removed, or moved (reordered)",
		         seq - v->seq - 1);
		return problem(v, seq, what);
	}
	if (v->started && seq <= v->seq)
		return problem(v, seq, "reordered or inserted: its seq does not follow the last");
	if (v->started && strcmp(prev, v->prev) != 0)
		return problem(v, seq,
		               "altered or inserted: it does not name the previous record's mac");
	/* A segment names the format of its own mac and those after it; one
	 * that does not is of the first format. */
	type = json_string_value(json_object_get(rec, "type"));
	if (type && strcmp(type, "segment") == 0) {
		const json_t *f = json_object_get(rec, "mac_format");
		json_int_t format = f ? json_integer_value(f) : 1;

		if (f && (!json_is_integer(f) || format < 1 || format > CHAIN_FORMAT))
			return problem(v, seq,
			               "a segment names a mac format this verifier does not know");
		v->format = (int)format;
	}
	/* The first line may link to a file rotated away earlier, so its prev
	 * is not checked against the genesis value. */
	if (v->mac && (chain_line_mac(v->mac, v->format, line, len - CHAIN_MAC_SUFFIX, want) < 0 ||
	               strcmp(want, mac) != 0))
		return problem(v, seq, "altered: its mac does not match its content");
	v->seq = seq;
	snprintf(v->prev, sizeof(v->prev), "%s", mac);
	v->started = 1;
	return 0;
}

/* One complete line (without its newline). */
static int
check_line(struct verifier *v, const char *line, size_t len)
{
	json_t *rec;
	const char *type;
	long long seq = -1;
	int rc = 0;

	rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(rec)) {
		json_decref(rec);
		/* Only a torn line the gateway declared right after may be here;
		 * it is a line of the file, so a leaf all the same. */
		if (v->torn_line)
			return problem(v, -1, "not a JSON record: altered or torn");
		v->torn_line = v->line;
		return tree_line(v, -1, line, len);
	}
	type = json_string_value(json_object_get(rec, "type"));
	/* A line that was not a record is only excused by a "torn" segment
	 * right after it. */
	if (v->torn_line && (type == NULL || strcmp(type, "segment") != 0)) {
		v->line = v->torn_line;
		rc = problem(v, -1, "not a JSON record: altered or torn");
		goto out;
	}
	if ((rc = check_chain(v, rec, line, len, &seq)) < 0)
		goto out;
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
	rc = tree_line(v, seq, line, len);
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

/* --- the state: the latest checkpoint verified before ------------------- */

struct state {
	int have;
	unsigned long long size;
	unsigned char root[MERKLE_HASH];
	char origin[NOTE_NAME_MAX + 1];
};

/* Reads the state file; a missing one is a first run. -1 when it exists
 * but is not a state. */
static int
state_read(const char *path, struct state *st)
{
	json_t *doc, *size, *root, *origin;
	FILE *f = fopen(path, "r");
	int rc = -1;

	memset(st, 0, sizeof(*st));
	if (f == NULL)
		return 0;
	doc = json_loadf(f, JSON_REJECT_DUPLICATES, NULL);
	fclose(f);
	size = json_object_get(doc, "tree_size");
	root = json_object_get(doc, "root");
	origin = json_object_get(doc, "origin");
	if (json_is_integer(size) && json_integer_value(size) >= 0 && json_is_string(root) &&
	    base64_decode(json_string_value(root), json_string_length(root), st->root,
	                  MERKLE_HASH) == MERKLE_HASH &&
	    json_is_string(origin) && json_string_length(origin) <= NOTE_NAME_MAX) {
		st->size = (unsigned long long)json_integer_value(size);
		snprintf(st->origin, sizeof(st->origin), "%s", json_string_value(origin));
		st->have = 1;
		rc = 0;
	}
	json_decref(doc);
	return rc;
}

/* Writes the state afresh (a new file renamed over the old). */
static int
state_write(const char *path, const struct tlog_checkpoint *c)
{
	char root[BASE64_LEN(MERKLE_HASH) + 1], *tmp;
	size_t n = strlen(path) + 5;
	json_t *doc;
	int rc = -1;

	tmp = malloc(n);
	if (tmp == NULL)
		return -1;
	snprintf(tmp, n, "%s.tmp", path);
	base64_encode(c->root, MERKLE_HASH, root);
	doc = json_pack("{s:s, s:I, s:s, s:s}", "origin", c->origin, "tree_size",
	                (json_int_t)c->size, "root", root, "note", c->note);
	if (doc && json_dump_file(doc, tmp, JSON_INDENT(2)) == 0 && rename(tmp, path) == 0)
		rc = 0;
	json_decref(doc);
	free(tmp);
	return rc;
}

/* --- keys ---------------------------------------------------------------- */

/* A public key, or a private one (it holds the public key too). */
static struct note_key *
load_either(const char *path, const char **why)
{
	struct note_key *k = note_key_load(path, 0, NULL, why);

	return k ? k : note_key_load(path, 1, NULL, why);
}

int
auditverify_load_key(const char *cmd, const char *config, const char *pub,
                     auditverify_config_fn load_config, struct note_key **key)
{
	static struct errlist errs;
	struct auditverify_keys keys;
	const char *why = "";
	size_t i;

	*key = NULL;
	memset(&keys, 0, sizeof(keys));
	if (pub) {
		if ((*key = load_either(pub, &why)) == NULL) {
			fprintf(stderr, "gateway %s: cannot read the public key %s: %s\n", cmd, pub,
			        why);
			return 2;
		}
		return 0;
	}
	if (config == NULL)
		return 0;
	if (load_config(config, &keys, &errs) < 0) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		return 2;
	}
	if (keys.signing_key_file &&
	    (*key = note_key_load(keys.signing_key_file, 1, NULL, &why)) == NULL)
		fprintf(stderr, "gateway %s: cannot read the public key of %s: %s\n", cmd,
		        keys.signing_key_file, why);
	if (keys.release)
		keys.release(keys.arg);
	return keys.signing_key_file && *key == NULL ? 2 : 0;
}

/* --- the command ----------------------------------------------------------- */

static const char usage[] =
        "usage: gateway audit-verify --public-key PUB [--state FILE] AUDITFILE...\n"
        "       gateway audit-verify --config FILE [--state FILE] AUDITFILE...\n"
        "       gateway audit-verify [--hmac-key-env VAR | --hmac-key-file FILE]\n"
        "                            [--public-key PUB] [--state FILE] AUDITFILE...\n";

/* The HMAC key of --hmac-key-env or --hmac-key-file, in wiped memory. */
static char *
read_hmac_key(const char *env, const char *file, size_t *n)
{
	const char *val = env ? getenv(env) : NULL;
	char *key = secmem_alloc(4096);
	FILE *f;

	*n = 0;
	if (key && file && (f = fopen(file, "r")) != NULL) {
		*n = fread(key, 1, 4095, f);
		fclose(f);
		while (*n > 0 && (key[*n - 1] == '\n' || key[*n - 1] == '\r'))
			(*n)--;
	} else if (key && val && strlen(val) < 4096) {
		*n = strlen(val);
		memcpy(key, val, *n);
	}
	return key;
}

/* What the run proved, after "audit OK". */
static void
summary(const struct verifier *v, int signatures)
{
	const struct tlog_checkpoint *c = tlog_latest(v->tlog);
	const struct merkle_tree *t = tlog_tree(v->tlog);
	uint64_t uncovered = c ? t->size - c->size : t->size - tlog_start(v->tlog);

	if (c)
		printf("tree: %llu records, the latest checkpoint (%s:%zu, origin %s) covers %llu; "
		       "signatures %s\n",
		       (unsigned long long)t->size, c->file, c->line, c->origin,
		       (unsigned long long)c->size,
		       signatures ? "verified with the key given" : "not checked (no key given)");
	if (uncovered && c)
		printf("note: the last %llu records follow the last checkpoint: no checkpoint "
		       "covers them yet%s\n",
		       (unsigned long long)uncovered, v->mac ? " (their macs were checked)" : "");
	else if (uncovered)
		printf("note: these files hold no checkpoint: none covers their %llu records%s\n",
		       (unsigned long long)uncovered, v->mac ? " (their macs were checked)" : "");
	if (tlog_legacy(v->tlog))
		printf("note: %zu checkpoint(s) of the earlier format (no note) were not checked "
		       "against the tree\n",
		       tlog_legacy(v->tlog));
	if (tlog_unchecked(v->tlog))
		printf("note: %zu checkpoint(s) name a tree size these files do not reach back to, "
		       "or no earlier checkpoint had: not compared\n",
		       tlog_unchecked(v->tlog));
}

int
auditverify_main(int argc, char **argv, auditverify_config_fn load_config)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"hmac-key-env", required_argument, NULL, 'e'},
	        {"hmac-key-file", required_argument, NULL, 'f'},
	        {"public-key", required_argument, NULL, 'p'},
	        {"state", required_argument, NULL, 's'},
	        {NULL, 0, NULL, 0},
	};
	static struct errlist errs;
	const char *config = NULL, *key_env = NULL, *key_file = NULL, *pub = NULL, *state = NULL;
	struct tlog_settings ts;
	struct note_key *nkey = NULL;
	struct verifier v;
	struct auditverify_keys keys;
	struct state st;
	char *key = NULL;
	size_t i, n = 0;
	int opt, rc = 1;

	memset(&v, 0, sizeof(v));
	v.format = 1;
	memset(&keys, 0, sizeof(keys));
	memset(&ts, 0, sizeof(ts));
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
		case 's':
			state = optarg;
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
	if (state && state_read(state, &st) < 0) {
		fprintf(stderr, "gateway audit-verify: %s is not a state file this command wrote\n",
		        state);
		return 2;
	}
	if (state && st.have) {
		ts.pin_size = st.size;
		ts.pin_root = st.root;
	}
	if (config) {
		if (load_config(config, &keys, &errs) < 0) {
			for (i = 0; i < errs.n; i++)
				fprintf(stderr, "%s\n", errs.msg[i]);
			return 2;
		}
		if ((v.mac = chain_key_new(keys.key, keys.keylen)) == NULL)
			goto out;
	} else if (key_env || key_file) {
		key = read_hmac_key(key_env, key_file, &n);
		if (n == 0) {
			fprintf(stderr, "gateway audit-verify: no key in %s\n",
			        key_env ? key_env : key_file);
			rc = 2;
			goto out;
		}
		if ((v.mac = chain_key_new((const unsigned char *)key, n)) == NULL)
			goto out;
	} else if (pub == NULL) {
		/* A chain written without a key. */
		if ((v.mac = chain_key_new(NULL, 0)) == NULL)
			goto out;
	}
	if (pub || (config && keys.signing_key_file)) {
		const char *why = "";

		nkey = pub ? load_either(pub, &why)
		           : note_key_load(keys.signing_key_file, 1, NULL, &why);
		if (nkey == NULL) {
			fprintf(stderr, "gateway audit-verify: cannot read the public key %s: %s\n",
			        pub ? pub : keys.signing_key_file, why);
			rc = 2;
			goto out;
		}
	}
	ts.key = nkey;
	if ((v.tlog = tlog_new(&ts)) == NULL)
		goto out;
	for (i = (size_t)optind; i < (size_t)argc; i++)
		if (check_file(&v, argv[i]) < 0)
			goto out;
	if (v.torn_line) {
		v.line = v.torn_line;
		problem(&v, -1, "not a JSON record: altered or torn");
		goto out;
	}
	if (tlog_finish(v.tlog) != TLOG_OK) {
		printf("%s: %s\n", state, tlog_problem(v.tlog));
		goto out;
	}
	if (state && st.have && tlog_latest(v.tlog) &&
	    strcmp(st.origin, tlog_latest(v.tlog)->origin) != 0) {
		printf("%s: the state is of the log \"%s\", these files are of \"%s\"\n", state,
		       st.origin, tlog_latest(v.tlog)->origin);
		goto out;
	}
	printf("audit OK: %zu records, %zu checkpoints\n", v.records, tlog_checkpoints(v.tlog));
	summary(&v, nkey != NULL);
	if (state && tlog_latest(v.tlog) && (!st.have || tlog_latest(v.tlog)->size >= st.size)) {
		if (state_write(state, tlog_latest(v.tlog)) < 0) {
			fprintf(stderr, "gateway audit-verify: cannot write the state to %s\n",
			        state);
			rc = 2;
			goto out;
		}
		printf("state: %s now holds the checkpoint of %llu records\n", state,
		       (unsigned long long)tlog_latest(v.tlog)->size);
	}
	rc = 0;
out:
	tlog_free(v.tlog);
	note_key_free(nkey);
	chain_key_free(v.mac);
	secmem_free(key);
	if (keys.release)
		keys.release(keys.arg);
	return rc;
}
