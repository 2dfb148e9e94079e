/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_tls — server-side TLS contexts (OpenSSL 3) for the app server and the
 * configuration server.
 *
 * Policy, the same for every constructor:
 * - TLS 1.2 and 1.3 only (RFC 8446; RFC 8996 deprecates 1.0/1.1);
 * - TLS 1.2 cipher suites: ECDHE with AES-GCM or ChaCha20-Poly1305 only
 *   (forward secrecy, AEAD; RFC 9325 §4.2); TLS 1.3: OpenSSL's defaults;
 * - no renegotiation, no compression; ALPN answers "http/1.1" when offered
 *   (RFC 7301), "h2" first on connections marked with mse_tls_offer_h2,
 *   and a client offering only other protocols gets no ALPN;
 * - the private key must match the certificate (checked at construction).
 *
 * Ownership: each constructor returns a new SSL_CTX the caller frees with
 * mse_tls_ctx_free (NULL-safe). The server takes its own reference
 * (SSL_CTX_up_ref), so the caller may free its context once the server is
 * created. Inputs (X509, EVP_PKEY, chain) stay owned by the caller: the
 * context takes its own references.
 */
#ifndef MSE_TLS_H
#define MSE_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "common/err.h"

/* Certificate (PEM, leaf first then intermediates) and key (PEM) files. */
SSL_CTX *mse_tls_ctx_from_files(const char *cert_path, const char *key_path,
				struct mse_err *err) MSE_MUST_CHECK;
/* The same from PEM text in memory (custom-certificate mode: the key
 * arrives in the configuration POST). */
SSL_CTX *mse_tls_ctx_from_pem(const char *cert_pem, size_t cert_len, const char *key_pem,
			      size_t key_len, struct mse_err *err) MSE_MUST_CHECK;
/* From in-memory objects (the bootstrap's RA-TLS certificate). chain (extra
 * certificates after the leaf) may be NULL. */
SSL_CTX *mse_tls_ctx_from_x509(X509 *cert, STACK_OF(X509) *chain, EVP_PKEY *key,
			       struct mse_err *err) MSE_MUST_CHECK;
void mse_tls_ctx_free(SSL_CTX *ctx);

/*
 * Lets this connection's ALPN choose "h2" (before "http/1.1") when the
 * client offers it: the app server's connections when HTTP/2 is on. The
 * others (the configuration server) never get h2. Returns 0 or -1.
 */
int mse_tls_offer_h2(SSL *ssl);

/* Appends OpenSSL's error queue (then clears it) to err's message. */
void mse_tls_err(struct mse_err *err, const char *what);

#endif
