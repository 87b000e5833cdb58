#include "policy/policyset.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/sha.h>

#include "lib/hex.h"
#include "lib/jsondoc.h"
#include "lib/secmem.h"
#include "lib/utf8.h"
#include "policy/policy.h"
#include "policy/tenant.h"

#define SECRET_FILE_MAX (10 * 1024 * 1024) /* the contract's longest secret value */

#define POLICY_FILE_MAX (64 * 1024 * 1024)

struct policyset {
	struct policy *org;
	struct tenants *tenants;
	char version[POLICYSET_VERSION_LEN + 1];
};

/* "sha256:" and the hex SHA-256 of data. */
static void
version_of(const void *data, size_t len, char out[POLICYSET_VERSION_LEN + 1])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	snprintf(out, 8, "sha256:");
	hex_encode(md, sizeof(md), out + 7);
}

/* A secret's value from the file named: its bytes, one trailing newline
 * dropped. The buffer is wiped when freed. */
static char *
read_secret_file(const char *path, size_t *len, const char **why)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = fopen(path, "rb");

	if (f == NULL) {
		*why = strerror(errno);
		return NULL;
	}
	buf = secmem_alloc(SECRET_FILE_MAX + 1);
	if (buf)
		n = fread(buf, 1, SECRET_FILE_MAX + 1, f);
	fclose(f);
	if (buf == NULL || n == 0 || n > SECRET_FILE_MAX) {
		*why = buf == NULL ? "out of memory" : n == 0 ? "it is empty" : "it is too large";
		secmem_free(buf);
		return NULL;
	}
	if (buf[n - 1] == '\n')
		n--;
	/* A value goes into the forwarded JSON as a string: one holding a NUL
	 * (which no body the gateway takes holds either, and which would read
	 * as a spooled string's stand-in) or bytes that are not UTF-8 could
	 * not be sent as written. */
	if (memchr(buf, '\0', n) != NULL || !utf8_valid(buf, n)) {
		*why = memchr(buf, '\0', n) ? "it holds a NUL byte" : "it is not UTF-8 text";
		secmem_wipe(buf, n);
		secmem_free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* tenant_secret_fn: arg is the policy file's folder. */
static char *
read_secret(void *arg, const char *env, const char *path, size_t *len, const char **why)
{
	const char *dir = arg, *v;
	char full[4096];
	char *value;

	if (env) {
		v = getenv(env);
		if (v == NULL || *v == '\0') {
			*why = "is not set";
			return NULL;
		}
		if (!utf8_valid(v, strlen(v))) {
			*why = "is not UTF-8 text";
			return NULL;
		}
		*len = strlen(v);
		value = secmem_alloc(*len + 1);
		if (value == NULL) {
			*why = "out of memory";
			return NULL;
		}
		memcpy(value, v, *len + 1);
		return value;
	}
	if (path[0] != '/' && dir[0]) {
		if ((size_t)snprintf(full, sizeof(full), "%s/%s", dir, path) >= sizeof(full)) {
			*why = "the path is too long";
			return NULL;
		}
		path = full;
	}
	return read_secret_file(path, len, why);
}

/* Whether msg, a tenant's ("file: tenants.NAME.policy.PATH: TEXT"), says
 * what one of the organization's own messages (from index from on) says
 * already ("file: PATH: TEXT"): the tenant inherited the mistake. */
static int
repeats_org(const char *msg, const struct errlist *errs, size_t from, const char *file)
{
	size_t flen = strlen(file), i;
	const char *p = msg + flen + 2, *tail;

	if (strncmp(msg, file, flen) != 0 || strncmp(p, "tenants.", 8) != 0)
		return 0;
	tail = strstr(p, ".policy.");
	if (tail == NULL)
		return 0;
	tail += 8;
	for (i = from; i < errs->n; i++)
		if (strncmp(errs->msg[i], file, flen) == 0 &&
		    strcmp(errs->msg[i] + flen + 2, tail) == 0)
			return 1;
	return 0;
}

/* The tenants, their messages added to errs but for those that repeat
 * the organization's own (errs from index from on). */
static struct tenants *
compile_tenants(const json_t *tenants, const json_t *org_doc, const struct policy *org,
                const char *dir, const char *file, struct errlist *errs, size_t from)
{
	struct errlist *mine = calloc(1, sizeof(*mine));
	struct tenants *ts;
	size_t i;

	if (mine == NULL) {
		errlist_add(errs, file, "tenants", "out of memory");
		return NULL;
	}
	ts = tenants_new(tenants, org_doc, org, read_secret, (void *)(uintptr_t)dir, file, mine);
	for (i = 0; i < mine->n; i++)
		if (!repeats_org(mine->msg[i], errs, from, file))
			errlist_add(errs, NULL, NULL, "%s", mine->msg[i]);
	errs->dropped += mine->dropped;
	free(mine);
	return ts;
}

/* The set for doc; version names what it was built from. */
static struct policyset *
build(const json_t *doc, const char *file, const char *version, struct errlist *errs)
{
	struct policyset *ps = calloc(1, sizeof(*ps));
	size_t before = errs->n + errs->dropped, first = errs->n;
	const json_t *tenants = json_object_get(doc, "tenants");
	const char *slash = strrchr(file, '/');
	char dir[4096] = "";
	json_t *org_doc;

	if (ps == NULL) {
		errlist_add(errs, file, NULL, "out of memory");
		return NULL;
	}
	snprintf(ps->version, sizeof(ps->version), "%s", version);
	if (slash && (size_t)(slash - file) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", slash == file ? 1 : (int)(slash - file), file);
	ps->org = policy_new(doc, file, errs);
	/* Tenants are compiled against the organization's document without
	 * its own "tenants", which a tenant's policy may not carry; even when
	 * the organization's did not compile, so one pass shows every
	 * mistake, each once. */
	if (tenants && json_is_object(doc)) {
		org_doc = json_deep_copy(doc);
		if (org_doc == NULL)
			errlist_add(errs, file, "tenants", "out of memory");
		else if (!json_is_object(tenants))
			errlist_add(errs, file, "tenants",
			            "must be an object of tenant name: settings");
		else if (json_object_del(org_doc, "tenants") == 0)
			ps->tenants =
			        compile_tenants(tenants, org_doc, ps->org, dir, file, errs, first);
		json_decref(org_doc);
	}
	if (errs->n + errs->dropped > before) {
		policyset_free(ps);
		return NULL;
	}
	return ps;
}

struct policyset *
policyset_new(const json_t *doc, const char *file, struct errlist *errs)
{
	char version[POLICYSET_VERSION_LEN + 1];
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

	if (text == NULL) {
		errlist_add(errs, file, NULL, "out of memory");
		return NULL;
	}
	version_of(text, strlen(text), version);
	secmem_json_free(text);
	return build(doc, file, version, errs);
}

/* The policy file's bytes, whole (policies hold no secret values, so a
 * plain buffer does). NULL with errs told why. */
static char *
read_policy(const char *path, size_t *len, struct errlist *errs)
{
	FILE *f = fopen(path, "rb");
	const char *why = NULL;
	char *buf = NULL;
	struct stat st;
	size_t n = 0;

	if (f == NULL) {
		errlist_add(errs, path, NULL, "cannot be opened: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode))
		why = "is not a regular file";
	else if (st.st_size > POLICY_FILE_MAX)
		why = "is larger than 64 MiB";
	else if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		why = "out of memory";
	else if ((n = fread(buf, 1, (size_t)st.st_size + 1, f)) > (size_t)st.st_size || ferror(f))
		why = "changed or failed while being read";
	fclose(f);
	if (why) {
		errlist_add(errs, path, NULL, "%s", why);
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

struct policyset *
policyset_load(const char *path, struct errlist *errs)
{
	char version[POLICYSET_VERSION_LEN + 1];
	struct policyset *ps;
	json_error_t je;
	json_t *doc;
	size_t len;
	char *text = read_policy(path, &len, errs), why[JSON_ERROR_TEXT_LENGTH];

	if (text == NULL)
		return NULL;
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	version_of(text, len, version);
	free(text);
	if (doc == NULL) {
		errlist_add(errs, path, NULL, "line %d, column %d: %s", je.line, je.column,
		            jsondoc_file_error(&je, why, sizeof(why)));
		return NULL;
	}
	ps = build(doc, path, version, errs);
	json_decref(doc);
	return ps;
}

void
policyset_free(struct policyset *ps)
{
	if (ps == NULL)
		return;
	tenants_free(ps->tenants);
	policy_free(ps->org);
	free(ps);
}

const struct policy *
policyset_org(const struct policyset *ps)
{
	return ps->org;
}

const struct tenants *
policyset_tenants(const struct policyset *ps)
{
	return ps->tenants;
}

const char *
policyset_version(const struct policyset *ps)
{
	return ps->version;
}
