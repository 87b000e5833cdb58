#include "http/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/hex.h"
#include "lib/log.h"

/* TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3's are all
 * such and keep OpenSSL's default list). */
static const char ciphers12[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* Session resumption with client certificates needs an id for this
 * server's sessions. */
static const unsigned char session_ctx[] = "containers-gateway";

/* A subject longer than this is not an identity anyone configured. */
#define SUBJECT_MAX 1024
#define SAN_MAX     512

struct tls_server {
	SSL_CTX *ctx;
	time_t not_after;
};

struct tls_peer {
	const char *subject;
	const char *sans[TLS_PEER_SANS_MAX];
	size_t nsans;
	char fingerprint[TLS_PEER_FINGERPRINT_LEN + 1];
	size_t size; /* of buf's contents */
	char *buf;   /* subject, then each SAN, NUL-terminated */
};

/* OpenSSL's last error, for a message; clears the queue. */
static const char *
ssl_error(char *dst, size_t n)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(dst, n, "unknown error");
	else
		ERR_error_string_n(e, dst, n);
	ERR_clear_error();
	return dst;
}

/* An encrypted key would make OpenSSL ask for a passphrase on the
 * terminal; this refuses instead. */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return 0;
}

/* Picks http/1.1 when the client offers it: the front end speaks only
 * that. A client offering only other protocols gets no ALPN answer. */
static int
select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
            unsigned int inlen, void *arg)
{
	static const unsigned char h1[] = "http/1.1";
	unsigned int i = 0;

	(void)ssl;
	(void)arg;
	while (i < inlen) {
		unsigned int n = in[i];

		if (i + 1 + n > inlen)
			break;
		if (n == sizeof(h1) - 1 && memcmp(in + i + 1, h1, n) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

static time_t
cert_not_after(SSL_CTX *ctx)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (x == NULL || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return 0;
	return timegm(&tm);
}

static void
warn_key_mode(const char *key)
{
	struct stat st;

	if (stat(key, &st) == 0 && (st.st_mode & 077))
		log_warn("tls.key %s can be read by other users (mode %03o); chmod 600 it", key,
		         (unsigned)(st.st_mode & 0777));
}

struct tls_server *
tls_server_new(const struct tls_settings *s, const char *file, struct errlist *errs)
{
	struct tls_server *t = NULL;
	STACK_OF(X509_NAME) *names = NULL;
	size_t before = errs->n + errs->dropped;
	char why[256];

	if (s->cert == NULL || s->key == NULL) {
		errlist_add(errs, file, s->cert ? "tls.key" : "tls.cert",
		            "tls needs both tls.cert and tls.key");
		goto fail;
	}
	if (s->require_client_cert && s->client_ca == NULL)
		errlist_add(errs, file, "tls.require_client_cert",
		            "needs tls.client_ca, the CA client certificates are checked against");
	t = calloc(1, sizeof(*t));
	if (t == NULL || (t->ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		errlist_add(errs, file, "tls", "cannot create a TLS context: %s",
		            ssl_error(why, sizeof(why)));
		goto fail;
	}
	ERR_clear_error();
	SSL_CTX_set_min_proto_version(t->ctx, s->min_version && strcmp(s->min_version, "1.3") == 0
	                                              ? TLS1_3_VERSION
	                                              : TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(t->ctx, TLS1_3_VERSION);
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                                    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(t->ctx, session_ctx, sizeof(session_ctx) - 1);
	SSL_CTX_set_default_passwd_cb(t->ctx, no_passphrase);
	SSL_CTX_set_alpn_select_cb(t->ctx, select_alpn, NULL);
	if (SSL_CTX_set_cipher_list(t->ctx, ciphers12) != 1)
		errlist_add(errs, file, "tls", "no usable cipher: %s", ssl_error(why, sizeof(why)));
	if (SSL_CTX_use_certificate_chain_file(t->ctx, s->cert) != 1) {
		errlist_add(errs, file, "tls.cert",
		            "cannot load a PEM certificate chain from %s: %s", s->cert,
		            ssl_error(why, sizeof(why)));
	} else if (SSL_CTX_use_PrivateKey_file(t->ctx, s->key, SSL_FILETYPE_PEM) != 1) {
		if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
			errlist_add(errs, file, "tls.key",
			            "%s is not the key of the certificate in %s", s->key, s->cert);
		else
			errlist_add(errs, file, "tls.key",
			            "cannot load an unencrypted PEM private key from %s: %s",
			            s->key, ssl_error(why, sizeof(why)));
		ERR_clear_error();
	} else if (SSL_CTX_check_private_key(t->ctx) != 1) {
		errlist_add(errs, file, "tls.key", "%s is not the key of the certificate in %s",
		            s->key, s->cert);
		ERR_clear_error();
	} else {
		warn_key_mode(s->key);
		t->not_after = cert_not_after(t->ctx);
		if (t->not_after && t->not_after < time(NULL))
			log_warn("the certificate in tls.cert %s has expired", s->cert);
	}
	if (s->client_ca) {
		if (SSL_CTX_load_verify_locations(t->ctx, s->client_ca, NULL) != 1 ||
		    (names = SSL_load_client_CA_file(s->client_ca)) == NULL) {
			errlist_add(errs, file, "tls.client_ca", "cannot load PEM CAs from %s: %s",
			            s->client_ca, ssl_error(why, sizeof(why)));
		} else {
			SSL_CTX_set_client_CA_list(t->ctx, names);
			SSL_CTX_set_verify(t->ctx,
			                   SSL_VERIFY_PEER |
			                           (s->require_client_cert
			                                    ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
			                                    : 0),
			                   NULL);
			SSL_CTX_set_verify_depth(t->ctx, 8);
		}
	}
	if (errs->n + errs->dropped > before)
		goto fail;
	return t;
fail:
	tls_server_free(t);
	return NULL;
}

void
tls_server_free(struct tls_server *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

struct ssl_st *
tls_server_ssl(struct tls_server *t)
{
	return SSL_new(t->ctx);
}

time_t
tls_server_not_after(const struct tls_server *t)
{
	return t ? t->not_after : 0;
}

/* Appends s (n bytes, no NUL among them) and a NUL to buf at *used;
 * returns where it went, or NULL when it does not fit. */
static const char *
put(char *buf, size_t size, size_t *used, const char *prefix, const char *s, size_t n)
{
	size_t k = strlen(prefix);
	char *at = buf + *used;

	if (memchr(s, '\0', n) != NULL || *used + k + n + 1 > size)
		return NULL;
	memcpy(at, prefix, k);
	memcpy(at + k, s, n);
	at[k + n] = '\0';
	*used += k + n + 1;
	return at;
}

/* The subject in RFC 2253 form into a new string, or NULL. */
static char *
subject_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (b == NULL)
		return NULL;
	if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_get_mem_data(b, &data);
		if (n >= 0 && n <= SUBJECT_MAX && memchr(data, '\0', (size_t)n) == NULL)
			out = strndup(data, (size_t)n);
	}
	BIO_free(b);
	return out;
}

/* "sha256:" and the lower-case hex of the DER certificate's SHA-256, as
 * `openssl x509 -fingerprint -sha256` shows it (without colons). */
static int
fingerprint_of(X509 *x, char out[TLS_PEER_FINGERPRINT_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32)
		return -1;
	snprintf(out, 8, "sha256:");
	hex_encode(md, n, out + 7);
	return 0;
}

struct tls_peer *
tls_peer_new(struct ssl_st *ssl)
{
	X509 *x = SSL_get0_peer_certificate(ssl);
	GENERAL_NAMES *gens = NULL;
	struct tls_peer *p = NULL;
	char *subject = NULL;
	size_t used = 0, i;
	int count;

	if (x == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	subject = subject_of(x);
	p = calloc(1, sizeof(*p));
	if (subject == NULL || p == NULL)
		goto fail;
	p->size = strlen(subject) + 1 + TLS_PEER_SANS_MAX * (SAN_MAX + 5);
	p->buf = malloc(p->size);
	if (p->buf == NULL)
		goto fail;
	p->subject = put(p->buf, p->size, &used, "", subject, strlen(subject));
	if (fingerprint_of(x, p->fingerprint) < 0)
		goto fail;
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	count = gens ? sk_GENERAL_NAME_num(gens) : 0;
	for (i = 0; i < (size_t)count && p->nsans < TLS_PEER_SANS_MAX; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, (int)i);
		const ASN1_IA5STRING *v;
		const char *kind, *at;

		if (g->type == GEN_DNS) {
			v = g->d.dNSName;
			kind = "DNS:";
		} else if (g->type == GEN_URI) {
			v = g->d.uniformResourceIdentifier;
			kind = "URI:";
		} else {
			continue;
		}
		if (ASN1_STRING_length(v) <= 0 || ASN1_STRING_length(v) > SAN_MAX)
			continue;
		at = put(p->buf, p->size, &used, kind, (const char *)ASN1_STRING_get0_data(v),
		         (size_t)ASN1_STRING_length(v));
		if (at)
			p->sans[p->nsans++] = at;
	}
	GENERAL_NAMES_free(gens);
	free(subject);
	p->size = used;
	return p;
fail:
	free(subject);
	tls_peer_free(p);
	return NULL;
}

struct tls_peer *
tls_peer_dup(const struct tls_peer *p)
{
	struct tls_peer *d;
	size_t i;

	if (p == NULL || (d = malloc(sizeof(*d))) == NULL)
		return NULL;
	*d = *p;
	d->buf = malloc(p->size);
	if (d->buf == NULL) {
		free(d);
		return NULL;
	}
	memcpy(d->buf, p->buf, p->size);
	d->subject = d->buf + (p->subject - p->buf);
	for (i = 0; i < p->nsans; i++)
		d->sans[i] = d->buf + (p->sans[i] - p->buf);
	return d;
}

void
tls_peer_free(struct tls_peer *p)
{
	if (p == NULL)
		return;
	free(p->buf);
	free(p);
}

const char *
tls_peer_fingerprint(const struct tls_peer *p)
{
	return p->fingerprint;
}

const char *
tls_peer_subject(const struct tls_peer *p)
{
	return p->subject;
}

const char *const *
tls_peer_sans(const struct tls_peer *p, size_t *n)
{
	*n = p->nsans;
	return p->sans;
}
