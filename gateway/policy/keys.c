#include "policy/keys.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/hex.h"
#include "lib/secmem.h"

#define KEY_READ_MAX 4096

void
keys_hash_hex(const char *key, size_t len, char out[KEYS_HEX_LEN + 1])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)key, len, md);
	hex_encode(md, sizeof(md), out);
	secmem_wipe(md, sizeof(md));
}

int
keys_is_digest(const char *s)
{
	size_t i;

	for (i = 0; i < KEYS_HEX_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return s[KEYS_HEX_LEN] == '\0';
}

int
keys_equal(const char *a, const char *b)
{
	char la[KEYS_HEX_LEN], lb[KEYS_HEX_LEN];
	size_t i;

	/* Digests from the policy may be upper case; compare them folded. */
	for (i = 0; i < KEYS_HEX_LEN; i++) {
		la[i] = (char)(a[i] | 0x20);
		lb[i] = (char)(b[i] | 0x20);
	}
	return CRYPTO_memcmp(la, lb, KEYS_HEX_LEN) == 0;
}

static int
token68_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

int
keys_bearer(const char *value, size_t n, const char **token, size_t *len)
{
	static const char scheme[] = "bearer";
	size_t i, start;

	if (n <= sizeof(scheme) - 1)
		return -1;
	for (i = 0; i < sizeof(scheme) - 1; i++)
		if ((value[i] | 0x20) != scheme[i])
			return -1;
	if (value[i] != ' ' && value[i] != '\t')
		return -1;
	while (i < n && (value[i] == ' ' || value[i] == '\t'))
		i++;
	start = i;
	while (i < n && token68_char((unsigned char)value[i]))
		i++;
	if (i == start)
		return -1;
	while (i < n && value[i] == '=')
		i++;
	if (i != n)
		return -1;
	*token = value + start;
	*len = n - start;
	return 0;
}

int
keys_main(int argc, char **argv)
{
	char buf[KEY_READ_MAX + 1], hex[KEYS_HEX_LEN + 1];
	size_t len = 0;
	ssize_t n;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: gateway hash-key < keyfile\n");
		return 2;
	}
	while (len < KEY_READ_MAX && (n = read(STDIN_FILENO, buf + len, KEY_READ_MAX - len)) > 0)
		len += (size_t)n;
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len == 0 || len >= KEY_READ_MAX) {
		fprintf(stderr,
		        "gateway hash-key: expected one key (1 to %d bytes) on standard "
		        "input\n",
		        KEY_READ_MAX - 1);
		secmem_wipe(buf, sizeof(buf));
		return 1;
	}
	keys_hash_hex(buf, len, hex);
	secmem_wipe(buf, sizeof(buf));
	printf("%s\n", hex);
	return 0;
}
