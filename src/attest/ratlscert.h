/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_ratlscert — creates the enclave's RA-TLS certificate (the format
 * src/attest/ratls.h parses): a fresh P-256 key, a self-signed X.509 v3
 * certificate with subject and issuer from an RFC 4514 name, one SAN (DNS
 * name, or IP address if it parses as one), validity now → expiration,
 * BasicConstraints CA:TRUE (critical) as MSE's clients expect, and the raw
 * quote in extension 1.2.840.113741.1337.6 (non-critical), where
 *
 *     report_data = SHA-256(0x04 ‖ X ‖ Y of the key) ‖ enclave X25519 pk.
 *
 * Ownership: struct mse_ratlscert is caller-owned; mse_ratlscert_create
 * fills it and mse_ratlscert_free releases everything (NULL-safe,
 * idempotent; the key PEM is wiped).
 */
#ifndef MSE_RATLSCERT_H
#define MSE_RATLSCERT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "common/err.h"
#include "attest/quoter.h"

struct mse_ratlscert_params {
	const char *subject; /* RFC 4514, e.g. "CN=localhost,O=My Co" */
	const char *san;     /* DNS name or IP address */
	int64_t not_after;   /* UNIX seconds */
};

struct mse_ratlscert {
	EVP_PKEY *key;
	X509 *cert;
	char *cert_pem;
	char *key_pem; /* secret */
	size_t key_pem_len;
	uint8_t *quote; /* the quote in the extension */
	size_t quote_len;
	uint8_t report_data[64];
};

int mse_ratlscert_create(struct mse_quoter *prov, const struct mse_ratlscert_params *params,
			 const uint8_t enclave_pk[32], struct mse_ratlscert *out,
			 struct mse_err *err) MSE_MUST_CHECK;
void mse_ratlscert_free(struct mse_ratlscert *c);

#endif
