#include "audit/note.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"
#include "lib/utf8.h"

#define ED25519_PUB 32
#define ED25519_SIG 64
#define KEY_ID      4
#define SIG_TYPE    0x01 /* Ed25519, in the key ID */

/* "— ": U+2014 EM DASH and a space, in UTF-8. */
static const char dash[] = "\xe2\x80\x94 ";
#define DASH_LEN 4

struct note_key {
	EVP_PKEY *pkey;
	unsigned char pub[ED25519_PUB];
	char *name; /* signing name; NULL for a verifier */
	unsigned char id[KEY_ID];
};

int
note_name_valid(const char *name)
{
	size_t i, n = name ? strlen(name) : 0;

	if (n == 0 || n > NOTE_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (name[i] <= ' ' || name[i] > '~' || name[i] == '+')
			return 0;
	return 1;
}

/* SHA-256(name || "\n" || 0x01 || pub)[:4]. */
static int
key_id(const char *name, size_t namelen, const unsigned char pub[ED25519_PUB],
       unsigned char out[KEY_ID])
{
	unsigned char md[32], type = SIG_TYPE;
	unsigned int n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	         EVP_DigestUpdate(ctx, name, namelen) == 1 && EVP_DigestUpdate(ctx, "\n", 1) == 1 &&
	         EVP_DigestUpdate(ctx, &type, 1) == 1 &&
	         EVP_DigestUpdate(ctx, pub, ED25519_PUB) == 1 &&
	         EVP_DigestFinal_ex(ctx, md, &n) == 1;

	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	memcpy(out, md, KEY_ID);
	return 0;
}

struct note_key *
note_key_load(const char *path, int private_key, const char *name, const char **why)
{
	struct note_key *k = NULL;
	size_t publen = ED25519_PUB;
	EVP_PKEY *pkey;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		*why = "cannot open the key file";
		return NULL;
	}
	pkey = private_key ? PEM_read_PrivateKey(f, NULL, NULL, NULL)
	                   : PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
		*why = private_key ? "not a PEM Ed25519 private key"
		                   : "not a PEM Ed25519 public key";
		goto fail;
	}
	if (name && !note_name_valid(name)) {
		*why = "the key name must be printable ASCII without spaces or '+'";
		goto fail;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL || (name && (k->name = strdup(name)) == NULL)) {
		*why = "out of memory";
		goto fail;
	}
	if (EVP_PKEY_get_raw_public_key(pkey, k->pub, &publen) != 1 || publen != ED25519_PUB ||
	    (name && key_id(name, strlen(name), k->pub, k->id) < 0)) {
		*why = "cannot read the public key out of it";
		goto fail;
	}
	k->pkey = pkey;
	return k;
fail:
	if (k)
		free(k->name);
	free(k);
	EVP_PKEY_free(pkey);
	return NULL;
}

void
note_key_free(struct note_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->name);
	free(k);
}

size_t
note_checkpoint(char *out, size_t cap, const char *origin, uint64_t size,
                const unsigned char root[32])
{
	char b64[BASE64_LEN(32) + 1];
	int n;

	base64_encode(root, 32, b64);
	n = snprintf(out, cap, "%s\n%llu\n%s\n", origin, (unsigned long long)size, b64);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* The line at *p (up to end), without its newline; *p moves past it. -1
 * when there is no newline. */
static long
next_line(const char **p, const char *end, const char **line)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));

	if (nl == NULL)
		return -1;
	*line = *p;
	*p = nl + 1;
	return (long)(nl - *line);
}

int
note_checkpoint_parse(const char *text, size_t len, char *origin, uint64_t *size,
                      unsigned char root[32])
{
	const char *p = text, *end = text + len, *line;
	unsigned long long v = 0;
	long n, i;

	/* The origin. */
	n = next_line(&p, end, &line);
	if (n <= 0 || n > NOTE_NAME_MAX)
		return -1;
	memcpy(origin, line, (size_t)n);
	origin[n] = '\0';
	/* The size: decimal, no leading zero but for 0 itself. */
	n = next_line(&p, end, &line);
	if (n <= 0 || n > 20 || (n > 1 && line[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (line[i] < '0' || line[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (unsigned long long)(line[i] - '0');
	}
	*size = v;
	/* The root. */
	n = next_line(&p, end, &line);
	if (n != BASE64_LEN(32) || base64_decode(line, (size_t)n, root, 32) != 32)
		return -1;
	/* Extension lines, if any, are not empty. */
	while (p < end)
		if (next_line(&p, end, &line) <= 0)
			return -1;
	return 0;
}

size_t
note_sign(struct note_key *k, const char *text, size_t len, char *out, size_t cap)
{
	unsigned char sig[KEY_ID + ED25519_SIG];
	char b64[BASE64_LEN(sizeof(sig)) + 1];
	size_t siglen = ED25519_SIG, need;
	EVP_MD_CTX *ctx;
	int ok;

	if (k->name == NULL || len == 0 || text[len - 1] != '\n')
		return 0;
	ctx = EVP_MD_CTX_new();
	ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
	     EVP_DigestSign(ctx, sig + KEY_ID, &siglen, (const unsigned char *)text, len) == 1 &&
	     siglen == ED25519_SIG;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return 0;
	memcpy(sig, k->id, KEY_ID);
	base64_encode(sig, sizeof(sig), b64);
	need = len + 1 + DASH_LEN + strlen(k->name) + 1 + strlen(b64) + 1;
	if (need >= cap)
		return 0;
	memcpy(out, text, len);
	snprintf(out + len, cap - len, "\n%s%s %s\n", dash, k->name, b64);
	return need;
}

/* One signature line (without its newline): its name and decoded bytes.
 * Returns the number of bytes, or -1 when it is not a signature line. */
static long
signature_line(const char *line, size_t len, const char **name, size_t *namelen, unsigned char *sig,
               size_t cap)
{
	const char *sp;

	if (len <= DASH_LEN || memcmp(line, dash, DASH_LEN) != 0)
		return -1;
	line += DASH_LEN;
	len -= DASH_LEN;
	sp = memchr(line, ' ', len);
	if (sp == NULL || sp == line)
		return -1;
	*name = line;
	*namelen = (size_t)(sp - line);
	return base64_decode(sp + 1, len - *namelen - 1, sig, cap);
}

/* Text a note may hold: UTF-8, no control character but the newline. */
static int
note_chars_valid(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 && s[i] != '\n')
			return 0;
	return utf8_valid(s, len);
}

int
note_signature_lines(const char *s, size_t len)
{
	unsigned char sig[NOTE_MAX];
	const char *p = s, *end = s + len, *line, *name;
	size_t namelen;
	long n;

	if (len == 0 || len >= NOTE_MAX || !note_chars_valid(s, len))
		return 0;
	while (p < end) {
		if ((n = next_line(&p, end, &line)) < 0 ||
		    signature_line(line, (size_t)n, &name, &namelen, sig, sizeof(sig)) <= KEY_ID)
			return 0;
	}
	return 1;
}

enum note_verdict
note_verify(const struct note_key *k, const char *note, size_t len, size_t *text_len)
{
	unsigned char sig[NOTE_MAX], id[KEY_ID];
	const char *p, *end = note + len, *line, *name, *blank = NULL;
	size_t namelen, i;
	long n;
	int found = 0;
	EVP_MD_CTX *ctx;

	*text_len = 0;
	if (len < 2 || len > NOTE_MAX || note[len - 1] != '\n' || !note_chars_valid(note, len))
		return NOTE_MALFORMED;
	/* The text ends at the last blank line. */
	for (i = len - 1; i > 0; i--) {
		if (note[i] == '\n' && note[i - 1] == '\n') {
			blank = note + i;
			break;
		}
	}
	if (blank == NULL || blank == note + 1)
		return NOTE_MALFORMED;
	*text_len = (size_t)(blank - note);
	for (p = blank + 1; p < end;) {
		if ((n = next_line(&p, end, &line)) < 0)
			return NOTE_MALFORMED;
		n = signature_line(line, (size_t)n, &name, &namelen, sig, sizeof(sig));
		if (n <= KEY_ID)
			return NOTE_MALFORMED;
		/* Another key's (a witness's): not ours to check. */
		if (k == NULL || key_id(name, namelen, k->pub, id) < 0 ||
		    memcmp(id, sig, KEY_ID) != 0 || n != KEY_ID + ED25519_SIG)
			continue;
		ctx = EVP_MD_CTX_new();
		if (ctx == NULL || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) != 1 ||
		    EVP_DigestVerify(ctx, sig + KEY_ID, ED25519_SIG, (const unsigned char *)note,
		                     *text_len) != 1) {
			EVP_MD_CTX_free(ctx);
			return NOTE_BAD_SIGNATURE;
		}
		EVP_MD_CTX_free(ctx);
		found = 1;
	}
	return found ? NOTE_VERIFIED : NOTE_NOT_SIGNED;
}
