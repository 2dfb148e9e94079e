/* SPDX-License-Identifier: Apache-2.0 */
#include "attest/x509w.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <sodium.h>

int mse_x509w_ossl_err(struct mse_err *err, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return mse_err_set(err, "%s failed%s%s", what, *buf ? ": " : "", buf);
}

EVP_PKEY *mse_x509w_p256_new(struct mse_err *err)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	if (!k)
		mse_x509w_ossl_err(err, "P-256 key generation");
	return k;
}

EVP_PKEY *mse_x509w_rsa_new(int bits, unsigned long e, struct mse_err *err)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *k = NULL;
	BIGNUM *bn = BN_new();

	if (!ctx || !bn || !BN_set_word(bn, e) || EVP_PKEY_keygen_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) <= 0 ||
	    EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, bn) <= 0 || EVP_PKEY_keygen(ctx, &k) <= 0) {
		mse_x509w_ossl_err(err, "RSA key generation");
		k = NULL;
	}
	BN_free(bn);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

X509_NAME *mse_x509w_name_rfc4514(const char *text, struct mse_err *err)
{
	/* Collect the RDNs first, then add them last-first (RFC 4514 §2.1). */
	char *types[32], *values[32];
	size_t n = 0, len = strlen(text), i;
	char *buf = malloc(len + 1), *w;
	const char *s = text;
	X509_NAME *name = NULL;

	if (!buf) {
		mse_err_set(err, "out of memory");
		return NULL;
	}
	w = buf;
	if (len == 0) {
		mse_err_field(err, "subject", "expected an RFC 4514 name like \"CN=localhost\", got \"\"");
		goto out;
	}
	while (*s) {
		if (n == 32) {
			mse_err_field(err, "subject", "more than 32 attributes in \"%s\"", text);
			goto out;
		}
		types[n] = w;
		while (*s && *s != '=' && *s != ',')
			*w++ = *s++;
		*w++ = '\0';
		if (*s != '=' || *types[n] == '\0') {
			mse_err_field(err, "subject",
				      "expected TYPE=value in RFC 4514 name \"%s\" (at offset %zu)", text,
				      (size_t)(s - text));
			goto out;
		}
		s++;
		values[n] = w;
		while (*s && *s != ',') {
			if (*s == '+') {
				mse_err_field(err, "subject",
					      "multi-valued RDN (unescaped '+') not supported in \"%s\"",
					      text);
				goto out;
			}
			if (*s == '\\') {
				s++;
				if (!*s) {
					mse_err_field(err, "subject", "dangling '\\' in \"%s\"", text);
					goto out;
				}
			}
			*w++ = *s++;
		}
		*w++ = '\0';
		n++;
		if (*s == ',') {
			s++;
			if (!*s) {
				mse_err_field(err, "subject", "trailing ',' in \"%s\"", text);
				goto out;
			}
		}
	}
	name = X509_NAME_new();
	if (!name) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	for (i = n; i-- > 0;) {
		if (OBJ_txt2nid(types[i]) == NID_undef ||
		    !X509_NAME_add_entry_by_txt(name, types[i], MBSTRING_UTF8,
						(const unsigned char *)values[i], -1, -1, 0)) {
			ERR_clear_error();
			mse_err_field(err, "subject", "unknown or invalid attribute \"%s=%s\" in \"%s\"",
				      types[i], values[i], text);
			X509_NAME_free(name);
			name = NULL;
			goto out;
		}
	}
out:
	free(buf);
	return name;
}

X509 *mse_x509w_cert_new(const X509_NAME *subject, const X509_NAME *issuer, EVP_PKEY *pub,
			 time_t not_before, time_t not_after, struct mse_err *err)
{
	X509 *c = X509_new();
	uint8_t serial[16];
	BIGNUM *bn = NULL;

	randombytes_buf(serial, sizeof(serial));
	serial[0] &= 0x7f; /* positive (RFC 5280 §4.1.2.2) */
	serial[0] |= 0x01; /* and exactly 16 bytes long */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!c || !bn || !X509_set_version(c, X509_VERSION_3) ||
	    !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) ||
	    !X509_set_subject_name(c, subject) || !X509_set_issuer_name(c, issuer) ||
	    !X509_time_adj_ex(X509_getm_notBefore(c), 0, 0, &not_before) ||
	    !X509_time_adj_ex(X509_getm_notAfter(c), 0, 0, &not_after) || !X509_set_pubkey(c, pub)) {
		mse_x509w_ossl_err(err, "certificate creation");
		X509_free(c);
		c = NULL;
	}
	BN_free(bn);
	return c;
}

int mse_x509w_add_ext(X509 *cert, X509 *issuer, int nid, const char *value, struct mse_err *err)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return mse_x509w_ossl_err(err, "certificate extension");
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : mse_x509w_ossl_err(err, "certificate extension");
}

int mse_x509w_add_raw_ext(X509 *cert, const char *oid, int critical, const uint8_t *value,
			  size_t len, struct mse_err *err)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	int rc = -1;

	if (len > INT32_MAX) {
		mse_err_set(err, "extension %s: %zu bytes is too large", oid, len);
		goto out;
	}
	if (!obj || !os || !ASN1_OCTET_STRING_set(os, value, (int)len) ||
	    !(ext = X509_EXTENSION_create_by_OBJ(NULL, obj, critical, os)) ||
	    !X509_add_ext(cert, ext, -1)) {
		mse_x509w_ossl_err(err, "certificate extension");
		goto out;
	}
	rc = 0;
out:
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	return rc;
}

int mse_x509w_sign(X509 *cert, EVP_PKEY *key, struct mse_err *err)
{
	return X509_sign(cert, key, EVP_sha256()) > 0 ? 0 : mse_x509w_ossl_err(err, "signing");
}

X509_CRL *mse_x509w_crl_new(X509 *issuer, EVP_PKEY *issuer_key, time_t now, time_t next_update,
			    long crl_number, const char *const *serials, size_t n_serials,
			    struct mse_err *err)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t1 = ASN1_TIME_set(NULL, now), *t2 = ASN1_TIME_set(NULL, next_update);
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	X509V3_CTX ctx;
	X509_EXTENSION *aki = NULL;
	size_t i;

	if (!crl || !t1 || !t2 || !num || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) ||
	    !X509_CRL_set1_lastUpdate(crl, t1) || !X509_CRL_set1_nextUpdate(crl, t2) ||
	    !ASN1_INTEGER_set(num, crl_number) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0))
		goto fail;
	for (i = 0; i < n_serials; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		BIGNUM *bn = NULL;
		ASN1_INTEGER *sn = NULL;

		if (!r || !BN_hex2bn(&bn, serials[i]) || !(sn = BN_to_ASN1_INTEGER(bn, NULL)) ||
		    !X509_REVOKED_set_serialNumber(r, sn) || !X509_REVOKED_set_revocationDate(r, t1) ||
		    !X509_CRL_add0_revoked(crl, r)) {
			X509_REVOKED_free(r);
			BN_free(bn);
			ASN1_INTEGER_free(sn);
			goto fail;
		}
		BN_free(bn);
		ASN1_INTEGER_free(sn);
	}
	X509V3_set_ctx(&ctx, issuer, NULL, NULL, crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	if (!aki || !X509_CRL_add_ext(crl, aki, -1) || !X509_CRL_sort(crl) ||
	    X509_CRL_sign(crl, issuer_key, EVP_sha256()) <= 0)
		goto fail;
	goto out;
fail:
	mse_x509w_ossl_err(err, "CRL creation");
	X509_CRL_free(crl);
	crl = NULL;
out:
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t1);
	ASN1_TIME_free(t2);
	return crl;
}

int mse_x509w_sign_raw(EVP_PKEY *key, const void *msg, size_t len, uint8_t sig[MSE_P256_SIG_LEN],
		       struct mse_err *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t der[80];
	size_t der_len = sizeof(der);
	const uint8_t *p = der;
	ECDSA_SIG *s = NULL;
	int rc = -1;

	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) <= 0 ||
	    EVP_DigestSign(md, der, &der_len, msg, len) <= 0 ||
	    !(s = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) ||
	    BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32) != 32 ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32) != 32) {
		mse_x509w_ossl_err(err, "ECDSA signature");
		goto out;
	}
	rc = 0;
out:
	ECDSA_SIG_free(s);
	EVP_MD_CTX_free(md);
	return rc;
}

int mse_x509w_p256_pub(EVP_PKEY *key, uint8_t pub[MSE_P256_PUB_LEN], struct mse_err *err)
{
	uint8_t pt[65];
	size_t n = 0;

	if (!EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt),
					     &n) ||
	    n != 65 || pt[0] != 0x04)
		return mse_x509w_ossl_err(err, "reading the P-256 public key");
	memcpy(pub, pt + 1, 64);
	return 0;
}

static int bio_take(BIO *b, char **out, size_t *len, struct mse_err *err)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);

	*out = malloc((size_t)n + 1);
	if (!*out)
		return mse_err_set(err, "out of memory");
	memcpy(*out, data, (size_t)n);
	(*out)[n] = '\0';
	if (len)
		*len = (size_t)n;
	return 0;
}

int mse_x509w_cert_pem(X509 *cert, char **out, struct mse_err *err)
{
	BIO *b = BIO_new(BIO_s_mem());
	int rc = -1;

	if (!b || !PEM_write_bio_X509(b, cert))
		mse_x509w_ossl_err(err, "PEM encoding");
	else
		rc = bio_take(b, out, NULL, err);
	BIO_free(b);
	return rc;
}

int mse_x509w_key_pem(EVP_PKEY *key, char **out, size_t *len, struct mse_err *err)
{
	BIO *b = BIO_new(BIO_s_secmem());
	int rc = -1;

	if (!b || !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
		mse_x509w_ossl_err(err, "PEM encoding");
	else
		rc = bio_take(b, out, len, err);
	BIO_free(b);
	return rc;
}

int mse_x509w_pub_pem(EVP_PKEY *key, char **out, struct mse_err *err)
{
	BIO *b = BIO_new(BIO_s_mem());
	int rc = -1;

	if (!b || !PEM_write_bio_PUBKEY(b, key))
		mse_x509w_ossl_err(err, "PEM encoding");
	else
		rc = bio_take(b, out, NULL, err);
	BIO_free(b);
	return rc;
}

int mse_x509w_cert_der(X509 *cert, uint8_t **out, size_t *len, struct mse_err *err)
{
	unsigned char *p = NULL;
	int n = i2d_X509(cert, &p);

	if (n <= 0)
		return mse_x509w_ossl_err(err, "DER encoding");
	*out = malloc((size_t)n);
	if (!*out) {
		OPENSSL_free(p);
		return mse_err_set(err, "out of memory");
	}
	memcpy(*out, p, (size_t)n);
	OPENSSL_free(p);
	*len = (size_t)n;
	return 0;
}

EVP_PKEY *mse_x509w_load_key(const char *path, struct mse_err *err)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k = NULL;

	if (!f) {
		mse_err_file(err, path);
		mse_err_set(err, "cannot open private key %s", path);
		return NULL;
	}
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!k) {
		mse_err_file(err, path);
		mse_x509w_ossl_err(err, "reading the private key");
	}
	return k;
}

X509 *mse_x509w_load_cert(const char *path, struct mse_err *err)
{
	FILE *f = fopen(path, "r");
	X509 *c = NULL;

	if (!f) {
		mse_err_file(err, path);
		mse_err_set(err, "cannot open certificate %s", path);
		return NULL;
	}
	c = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!c) {
		mse_err_file(err, path);
		mse_x509w_ossl_err(err, "reading the certificate");
	}
	return c;
}
