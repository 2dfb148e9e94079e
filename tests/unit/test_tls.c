/* SPDX-License-Identifier: Apache-2.0 */
/*
 * src/net/tls: contexts from files, PEM and in-memory objects, checked by
 * real handshakes with an OpenSSL client over memory BIOs (no sockets).
 */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "net/tls.h"

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

/* A certificate for key, signed by issuer_key (self-signed if NULL). */
static X509 *new_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int ca)
{
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (!ca) {
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

static char *pem_of(int (*write)(BIO *, void *), void *obj, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	assert_int_equal(write(b, obj), 1);
	n = BIO_get_mem_data(b, &p);
	out = malloc((size_t)n + 1);
	memcpy(out, p, (size_t)n);
	out[n] = 0;
	*len = (size_t)n;
	BIO_free(b);
	return out;
}

static int w_cert(BIO *b, void *x)
{
	return PEM_write_bio_X509(b, x);
}

static int w_key(BIO *b, void *k)
{
	return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

/*
 * Handshake between a client trusting `anchor` and a server on ctx, through
 * memory BIOs. Returns the negotiated version or -1; *alpn gets the
 * selected protocol ("" if none).
 */
static int handshake(SSL_CTX *sctx, X509 *anchor, int version, const char *ciphers,
		     char alpn[32], int *chain_len)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *c, *s;
	BIO *c2s_r, *c2s_w, *s2c_r, *s2c_w;
	int rc = -1, cdone = 0, sdone = 0;
	const unsigned char *sel = NULL;
	unsigned sel_len = 0;
	static const unsigned char protos[] = "\x02h2\x08http/1.1";

	assert_non_null(cctx);
	X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), anchor);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_min_proto_version(cctx, version);
	SSL_CTX_set_max_proto_version(cctx, version);
	if (ciphers)
		SSL_CTX_set_cipher_list(cctx, ciphers);
	SSL_CTX_set_alpn_protos(cctx, protos, sizeof(protos) - 1);
	c = SSL_new(cctx);
	s = SSL_new(sctx);
	SSL_set1_host(c, "localhost");
	/* Two BIO pairs: what c writes, s reads, and back. */
	BIO_new_bio_pair(&c2s_w, 0, &c2s_r, 0);
	BIO_new_bio_pair(&s2c_w, 0, &s2c_r, 0);
	SSL_set_bio(c, s2c_r, c2s_w);
	SSL_set_bio(s, c2s_r, s2c_w);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (int i = 0; i < 100 && !(cdone && sdone); i++) {
		int r;

		if (!cdone) {
			r = SSL_do_handshake(c);
			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
				goto out;
		}
		if (!sdone) {
			r = SSL_do_handshake(s);
			if (r == 1)
				sdone = 1;
			else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
				goto out;
		}
	}
	if (cdone && sdone && SSL_get_verify_result(c) == X509_V_OK) {
		rc = SSL_version(c);
		SSL_get0_alpn_selected(c, &sel, &sel_len);
		snprintf(alpn, 32, "%.*s", (int)sel_len, sel ? (const char *)sel : "");
		*chain_len = sk_X509_num(SSL_get_peer_cert_chain(c));
	}
out:
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	return rc;
}

static void from_x509_with_chain(void **state)
{
	EVP_PKEY *ca_key = new_key(), *key = new_key(), *other = new_key();
	X509 *ca = new_cert(ca_key, "test CA", NULL, NULL, 1);
	X509 *leaf = new_cert(key, "localhost", ca, ca_key, 0);
	STACK_OF(X509) *chain = sk_X509_new_null();
	struct mse_err err;
	SSL_CTX *ctx;
	char alpn[32];
	int n = 0;

	(void)state;
	sk_X509_push(chain, ca);
	ctx = mse_tls_ctx_from_x509(leaf, chain, key, &err);
	assert_non_null(ctx);
	assert_int_equal(handshake(ctx, ca, TLS1_3_VERSION, NULL, alpn, &n), TLS1_3_VERSION);
	assert_string_equal(alpn, "http/1.1");
	assert_int_equal(n, 2); /* leaf + the CA we gave as chain */
	assert_int_equal(handshake(ctx, ca, TLS1_2_VERSION, NULL, alpn, &n), TLS1_2_VERSION);
	/* Old versions and non-forward-secret or CBC suites are refused. */
	assert_int_equal(handshake(ctx, ca, TLS1_1_VERSION, "ALL:@SECLEVEL=0", alpn, &n), -1);
	assert_int_equal(handshake(ctx, ca, TLS1_2_VERSION, "AES128-GCM-SHA256", alpn, &n), -1);
	assert_int_equal(handshake(ctx, ca, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA", alpn, &n),
			 -1);
	mse_tls_ctx_free(ctx);
	/* The context holds its own references: ours can go first. */
	mse_err_clear(&err);
	assert_null(mse_tls_ctx_from_x509(leaf, NULL, other, &err));
	assert_non_null(strstr(err.msg, "does not match"));
	assert_null(mse_tls_ctx_from_x509(NULL, NULL, key, &err));
	mse_tls_ctx_free(NULL);
	sk_X509_free(chain);
	X509_free(leaf);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	EVP_PKEY_free(ca_key);
}

static void from_pem_and_files(void **state)
{
	EVP_PKEY *key = new_key(), *other = new_key();
	X509 *cert = new_cert(key, "localhost", NULL, NULL, 0);
	size_t cl, kl, ol;
	char *cpem = pem_of(w_cert, cert, &cl), *kpem = pem_of(w_key, key, &kl);
	char *opem = pem_of(w_key, other, &ol);
	const char *dir = tu_tmpdir();
	char cpath[256], kpath[256], opath[256];
	struct mse_err err;
	SSL_CTX *ctx;
	char alpn[32];
	int n;

	(void)state;
	ctx = mse_tls_ctx_from_pem(cpem, cl, kpem, kl, &err);
	assert_non_null(ctx);
	assert_int_equal(handshake(ctx, cert, TLS1_3_VERSION, NULL, alpn, &n), TLS1_3_VERSION);
	mse_tls_ctx_free(ctx);
	mse_err_clear(&err);
	assert_null(mse_tls_ctx_from_pem(cpem, cl, opem, ol, &err));
	assert_non_null(strstr(err.msg, "does not match"));
	mse_err_clear(&err);
	assert_null(mse_tls_ctx_from_pem("junk", 4, kpem, kl, &err));
	assert_non_null(strstr(err.msg, "certificate"));

	snprintf(cpath, sizeof(cpath), "%s/cert.pem", dir);
	snprintf(kpath, sizeof(kpath), "%s/key.pem", dir);
	snprintf(opath, sizeof(opath), "%s/other.pem", dir);
	tu_write(cpath, cpem, cl);
	tu_write(kpath, kpem, kl);
	tu_write(opath, opem, ol);
	ctx = mse_tls_ctx_from_files(cpath, kpath, &err);
	assert_non_null(ctx);
	assert_int_equal(handshake(ctx, cert, TLS1_2_VERSION, NULL, alpn, &n), TLS1_2_VERSION);
	mse_tls_ctx_free(ctx);
	mse_err_clear(&err);
	assert_null(mse_tls_ctx_from_files(cpath, opath, &err));
	assert_string_equal(err.file, opath);
	mse_err_clear(&err);
	assert_null(mse_tls_ctx_from_files("/nonexistent/cert.pem", kpath, &err));
	assert_string_equal(err.file, "/nonexistent/cert.pem");
	mse_err_clear(&err);
	assert_null(mse_tls_ctx_from_files(cpath, cpath, &err)); /* a cert is not a key */
	assert_string_equal(err.file, cpath);
	tu_rmtree(dir);
	free(cpem);
	free(kpem);
	free(opem);
	X509_free(cert);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(from_x509_with_chain),
		cmocka_unit_test(from_pem_and_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
