/*
 * tls: the listener's TLS, and who a client certificate says the client is.
 *
 * A server context is built whole from tls.cert and tls.key (and
 * tls.client_ca for mutual TLS): TLS 1.2 and 1.3 only, forward-secret AEAD
 * ciphers, no renegotiation, no compression, ALPN http/1.1. A reload builds
 * a new context and swaps it in; a connection keeps the context it was
 * accepted with, since OpenSSL counts its references.
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stddef.h>
#include <time.h>

#include "lib/err.h"

struct ssl_st;
struct tls_server;
struct tls_peer;

struct tls_settings {
	const char *cert;        /* PEM chain, leaf first */
	const char *key;         /* PEM private key, not encrypted */
	const char *min_version; /* "1.2" or "1.3" */
	const char *client_ca;   /* PEM CAs client certificates must chain to; NULL: none asked */
	int require_client_cert; /* refuse the handshake without one */
};

/* Builds a context; on failure returns NULL with every problem added to
 * errs, cited as file: tls.<key>. */
struct tls_server *tls_server_new(const struct tls_settings *s, const char *file,
                                  struct errlist *errs);
void tls_server_free(struct tls_server *t);

/* A new SSL object in accept state for one connection, or NULL. */
struct ssl_st *tls_server_ssl(struct tls_server *t);

/* When the server certificate stops being valid (0 when unknown). */
time_t tls_server_not_after(const struct tls_server *t);

/*
 * The client certificate of a connection whose handshake is complete, when
 * one was presented and verified against tls.client_ca; NULL otherwise (and
 * when memory runs out). The caller owns it.
 */
struct tls_peer *tls_peer_new(struct ssl_st *ssl);
struct tls_peer *tls_peer_dup(const struct tls_peer *p);
void tls_peer_free(struct tls_peer *p);

/* The certificate's subject in RFC 2253 form, most specific first:
 * "CN=data-team-service,O=Example". */
const char *tls_peer_subject(const struct tls_peer *p);

/* "sha256:" and the hex SHA-256 of the certificate (DER): which of the
 * certificates with this subject it was. Borrowed from p. */
#define TLS_PEER_FINGERPRINT_LEN (7 + 64)
const char *tls_peer_fingerprint(const struct tls_peer *p);

/* Its subject alternative names of type DNS and URI, as "DNS:name" and
 * "URI:uri" (at most TLS_PEER_SANS_MAX; names with NUL bytes are left
 * out); *n receives how many. Borrowed from p. */
#define TLS_PEER_SANS_MAX 16
const char *const *tls_peer_sans(const struct tls_peer *p, size_t *n);

#endif
