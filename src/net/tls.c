/* SPDX-License-Identifier: Apache-2.0 */
#include "net/tls.h"

#include <pthread.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

void mse_tls_err(struct mse_err *err, const char *what)
{
	char detail[512] = "";
	unsigned long e;
	size_t used = 0;

	while ((e = ERR_get_error()) != 0) {
		char one[256];

		ERR_error_string_n(e, one, sizeof(one));
		if (used + strlen(one) + 3 < sizeof(detail)) {
			used += (size_t)snprintf(detail + used, sizeof(detail) - used, "%s%s",
						 used ? "; " : "", one);
		}
	}
	if (detail[0])
		mse_err_set(err, "%s: %s", what, detail);
	else
		mse_err_set(err, "%s", what);
}

static pthread_once_t g_h2_once = PTHREAD_ONCE_INIT;
static int g_h2_index = -1;

static void h2_index_init(void)
{
	g_h2_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

int mse_tls_offer_h2(SSL *ssl)
{
	static char mark;

	pthread_once(&g_h2_once, h2_index_init);
	if (g_h2_index < 0 || SSL_set_ex_data(ssl, g_h2_index, &mark) != 1)
		return -1;
	return 0;
}

/* ALPN (RFC 7301 §3.2): the server's preference, h2 (when this connection
 * may speak it) then http/1.1; no ALPN if the client offers neither. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char h1[] = "\x08http/1.1";
	static const unsigned char both[] = "\x02h2\x08http/1.1";
	const unsigned char *ours = h1;
	unsigned int ours_len = sizeof(h1) - 1;
	unsigned char *sel;

	(void)arg;
	pthread_once(&g_h2_once, h2_index_init);
	if (g_h2_index >= 0 && SSL_get_ex_data(ssl, g_h2_index)) {
		ours = both;
		ours_len = sizeof(both) - 1;
	}
	if (SSL_select_next_proto(&sel, outlen, ours, ours_len, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *ctx_base(struct mse_err *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx) {
		mse_tls_err(err, "cannot create a TLS context");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL") != 1) {
		mse_tls_err(err, "cannot set the TLS versions and ciphers");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Partial writes let the server's timed write loop resume after EAGAIN. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	return ctx;
}

static int ctx_check(SSL_CTX *ctx, struct mse_err *err)
{
	if (SSL_CTX_check_private_key(ctx) != 1) {
		mse_err_step(err, "tls");
		mse_tls_err(err, "the private key does not match the certificate");
		return -1;
	}
	return 0;
}

/* Installs key after the certificate, saying plainly when they do not match. */
static int use_key(SSL_CTX *ctx, EVP_PKEY *key, struct mse_err *err)
{
	X509 *cert = SSL_CTX_get0_certificate(ctx);

	if (!cert || X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		mse_err_step(err, "tls");
		mse_err_set(err, "the private key does not match the certificate");
		return -1;
	}
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || ctx_check(ctx, err) != 0) {
		mse_tls_err(err, "cannot install the private key");
		return -1;
	}
	return 0;
}

SSL_CTX *mse_tls_ctx_from_files(const char *cert_path, const char *key_path,
				struct mse_err *err)
{
	SSL_CTX *ctx = ctx_base(err);
	EVP_PKEY *key = NULL;
	BIO *b = NULL;

	if (!ctx)
		return NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
		mse_err_file(err, cert_path);
		mse_tls_err(err, "cannot load the certificate chain (PEM)");
		goto fail;
	}
	if (!(b = BIO_new_file(key_path, "r")) ||
	    !(key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL))) {
		mse_err_file(err, key_path);
		mse_tls_err(err, "cannot load the private key (PEM)");
		goto fail;
	}
	if (use_key(ctx, key, err) != 0) {
		mse_err_file(err, key_path);
		goto fail;
	}
	BIO_free(b);
	EVP_PKEY_free(key);
	return ctx;
fail:
	BIO_free(b);
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *mse_tls_ctx_from_x509(X509 *cert, STACK_OF(X509) *chain, EVP_PKEY *key,
			       struct mse_err *err)
{
	SSL_CTX *ctx;

	if (!cert || !key) {
		mse_err_set(err, "TLS context: a certificate and a key are required");
		return NULL;
	}
	if (!(ctx = ctx_base(err)))
		return NULL;
	/* SSL_CTX_use_* and set1_chain take their own references. */
	if (SSL_CTX_use_certificate(ctx, cert) != 1 ||
	    (chain && SSL_CTX_set1_chain(ctx, chain) != 1)) {
		mse_tls_err(err, "cannot install the certificate");
		goto fail;
	}
	if (use_key(ctx, key, err) != 0)
		goto fail;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *mse_tls_ctx_from_pem(const char *cert_pem, size_t cert_len, const char *key_pem,
			      size_t key_len, struct mse_err *err)
{
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = NULL, *x;
	EVP_PKEY *key = NULL;
	SSL_CTX *ctx = NULL;
	BIO *b = NULL;

	if (cert_len > (size_t)1 << 24 || key_len > (size_t)1 << 24) {
		mse_err_set(err, "TLS context: PEM input too large");
		return NULL;
	}
	if (!(b = BIO_new_mem_buf(cert_pem, (int)cert_len)) ||
	    !(leaf = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		mse_tls_err(err, "cannot parse the certificate (PEM)");
		goto out;
	}
	if (!(chain = sk_X509_new_null()))
		goto out;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(chain, x)) {
			X509_free(x);
			goto out;
		}
	ERR_clear_error(); /* the loop ends on "no start line" */
	BIO_free(b);
	if (!(b = BIO_new_mem_buf(key_pem, (int)key_len)) ||
	    !(key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL))) {
		mse_tls_err(err, "cannot parse the private key (PEM)");
		goto out;
	}
	ctx = mse_tls_ctx_from_x509(leaf, sk_X509_num(chain) ? chain : NULL, key, err);
out:
	BIO_free(b);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	return ctx;
}

void mse_tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}
