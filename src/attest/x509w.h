/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_x509w — small helpers to build X.509 certificates and CRLs with
 * OpenSSL 3 (RFC 5280), shared by the SGX simulation (src/attest/sim.c) and
 * the RA-TLS certificate (src/node/ratlscert.c).
 *
 * Ownership: functions returning OpenSSL objects (EVP_PKEY *, X509 *,
 * X509_NAME *) hand a new reference to the caller, who frees it with the
 * OpenSSL free function. char ** outputs are malloc'd NUL-terminated text
 * that the caller frees (mse_file_free_secret for private keys).
 */
#ifndef MSE_X509W_H
#define MSE_X509W_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_P256_SIG_LEN 64 /* r ‖ s, 32 bytes each, big-endian (Intel DCAP) */
#define MSE_P256_PUB_LEN 64 /* X ‖ Y, without the 0x04 prefix */

/* A new P-256 key pair. */
EVP_PKEY *mse_x509w_p256_new(struct mse_err *err);
/* An RSA key of `bits` bits with public exponent e. */
EVP_PKEY *mse_x509w_rsa_new(int bits, unsigned long e, struct mse_err *err);
/*
 * Parses an RFC 4514 distinguished name ("CN=localhost,O=My Co,C=FR";
 * backslash escapes; no multi-valued RDNs). As RFC 4514 §2.1 says, the text
 * lists the RDNs last-first, so the DER order is the reverse of the text.
 */
X509_NAME *mse_x509w_name_rfc4514(const char *text, struct mse_err *err);
/* A v3 certificate with a random positive 16-byte serial, not yet signed. */
X509 *mse_x509w_cert_new(const X509_NAME *subject, const X509_NAME *issuer, EVP_PKEY *pub,
			 time_t not_before, time_t not_after, struct mse_err *err);
/*
 * Adds an extension in OpenSSL's config syntax (e.g. NID_basic_constraints,
 * "critical,CA:TRUE"); issuer may be NULL for self-signed (needed for
 * "keyid:always" authority key identifiers).
 */
int mse_x509w_add_ext(X509 *cert, X509 *issuer, int nid, const char *value,
		      struct mse_err *err) MSE_MUST_CHECK;
/* Adds an extension whose extnValue OCTET STRING holds `value` as is. */
int mse_x509w_add_raw_ext(X509 *cert, const char *oid, int critical, const uint8_t *value,
			  size_t len, struct mse_err *err) MSE_MUST_CHECK;
int mse_x509w_sign(X509 *cert, EVP_PKEY *key, struct mse_err *err) MSE_MUST_CHECK;
/*
 * A signed v2 CRL (RFC 5280 §5) with a CRL number and the issuer's authority
 * key identifier, valid from now to next_update, revoking `serials` (hex).
 */
X509_CRL *mse_x509w_crl_new(X509 *issuer, EVP_PKEY *issuer_key, time_t now, time_t next_update,
			    long crl_number, const char *const *serials, size_t n_serials,
			    struct mse_err *err);
/*
 * ECDSA-P256-SHA256 over msg, returned as raw r ‖ s (the form DCAP quotes and
 * Intel's collateral JSON use).
 */
int mse_x509w_sign_raw(EVP_PKEY *key, const void *msg, size_t len, uint8_t sig[MSE_P256_SIG_LEN],
		       struct mse_err *err) MSE_MUST_CHECK;
/* The raw X ‖ Y of a P-256 public key. */
int mse_x509w_p256_pub(EVP_PKEY *key, uint8_t pub[MSE_P256_PUB_LEN],
		       struct mse_err *err) MSE_MUST_CHECK;
/* PEM encodings (malloc'd text). */
int mse_x509w_cert_pem(X509 *cert, char **out, struct mse_err *err) MSE_MUST_CHECK;
int mse_x509w_key_pem(EVP_PKEY *key, char **out, size_t *len, struct mse_err *err) MSE_MUST_CHECK;
int mse_x509w_pub_pem(EVP_PKEY *key, char **out, struct mse_err *err) MSE_MUST_CHECK;
int mse_x509w_cert_der(X509 *cert, uint8_t **out, size_t *len, struct mse_err *err) MSE_MUST_CHECK;
/* Loads a PEM private key / certificate from a file. */
EVP_PKEY *mse_x509w_load_key(const char *path, struct mse_err *err);
X509 *mse_x509w_load_cert(const char *path, struct mse_err *err);
/* Records OpenSSL's last error queue entry into err's message. Returns -1. */
int mse_x509w_ossl_err(struct mse_err *err, const char *what);

#endif
