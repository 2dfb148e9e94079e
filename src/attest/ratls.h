/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_ratls — RA-TLS certificates (Gramine / MSE wire format).
 *
 * An RA-TLS certificate is a self-signed X.509 certificate with a P-256 key
 * whose extension 1.2.840.113741.1337.6 holds, as the OCTET STRING's
 * content, the raw DCAP quote of the enclave that owns the key. The quote's
 * report_data binds the key:
 *
 *     report_data[0:32]  = SHA-256(0x04 ‖ X ‖ Y)   (uncompressed P-256 point)
 *     report_data[32:64] = the enclave's X25519 public key (MSE sealing)
 *
 * Nothing here trusts the certificate: mse_ratls_parse only extracts; the
 * quote must still go through mse_verify, and mse_ratls_check_binding ties
 * the verified report_data to this certificate's key.
 *
 * Ownership: struct mse_ratls is caller-owned; mse_ratls_parse fills it
 * with allocations released by mse_ratls_free (NULL-safe, idempotent).
 */
#ifndef MSE_RATLS_H
#define MSE_RATLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_RATLS_QUOTE_OID "1.2.840.113741.1337.6"
#define MSE_RATLS_POINT_SIZE 65 /* 0x04 ‖ X(32) ‖ Y(32) */
#define MSE_RATLS_MAX_SIZE (1024 * 1024)

struct mse_ratls {
	X509 *cert;                            /* parsed certificate (owned) */
	uint8_t *der;                          /* its DER encoding (owned) */
	size_t der_len;
	const uint8_t *quote;                  /* the quote in the extension (points into der) */
	size_t quote_len;
	uint8_t point[MSE_RATLS_POINT_SIZE];   /* the certificate's public key, uncompressed */
	uint8_t key_hash[32];                  /* SHA-256(point): expected report_data[0:32] */
};

/*
 * Parses a certificate given as PEM (first CERTIFICATE block) or DER, checks
 * its key is P-256 and extracts the quote extension. Step "ratls" on error.
 */
int mse_ratls_parse(struct mse_ratls *out, const uint8_t *data, size_t len,
		    struct mse_err *err) MSE_MUST_CHECK;

/* Same, from an already parsed certificate (the reference is taken: X509_up_ref). */
int mse_ratls_from_x509(struct mse_ratls *out, X509 *cert, struct mse_err *err) MSE_MUST_CHECK;

/*
 * Checks report_data[0:32] == SHA-256(0x04‖X‖Y) of the certificate key
 * (constant-time compare). Step "binding"; the message shows both values.
 */
int mse_ratls_check_binding(const struct mse_ratls *c, const uint8_t report_data[64],
			    struct mse_err *err) MSE_MUST_CHECK;

/*
 * SHA-256 of the uncompressed point of a P-256 key: what an enclave puts in
 * report_data[0:32] when it creates its RA-TLS certificate (bootstrap side).
 */
int mse_ratls_key_hash(EVP_PKEY *pkey, uint8_t out[32], struct mse_err *err) MSE_MUST_CHECK;

/* PEM text of the certificate, NUL-terminated, malloc'd: caller frees. */
int mse_ratls_pem(const struct mse_ratls *c, char **pem, size_t *pem_len,
		  struct mse_err *err) MSE_MUST_CHECK;

/*
 * Connects to HOST:PORT over TLS WITHOUT verifying anything (the point is
 * to fetch the certificate, which is then verified by its quote) and
 * returns the peer's certificate as DER (malloc'd, caller frees). Step
 * "fetch". timeout_ms bounds connect and handshake.
 */
int mse_ratls_fetch(const char *host_port, int timeout_ms, uint8_t **der, size_t *der_len,
		    struct mse_err *err) MSE_MUST_CHECK;

void mse_ratls_free(struct mse_ratls *c);

/*
 * The enclave's X25519 key from an RA-TLS certificate (PEM file): the quote
 * in extension 1.2.840.113741.1337.6 (mse_ratls_parse), its report_data
 * (mse_quote_parse: offset 368 = 48-byte header + 320 into the report body).
 * The quote is parsed, not verified. Checks report_data[0:32] = SHA-256(0x04 ‖ X ‖ Y) of the certificate's
 * P-256 key (the RA-TLS binding) and that report_data[32:64] is a valid
 * public key (mse_seal_check_public_key). The certificate itself must
 * already be trusted: `mse verify` writes that ratls.pem.
 */
int mse_ratls_seal_pk(const char *pem_path, uint8_t pk[32],
			   struct mse_err *err) MSE_MUST_CHECK;
/* As above over an in-memory PEM or DER certificate. */
int mse_ratls_seal_pk_mem(const uint8_t *cert, size_t len, uint8_t pk[32],
			       struct mse_err *err) MSE_MUST_CHECK;

#endif
