/* SPDX-License-Identifier: Apache-2.0 */
#include "attest/ratlscert.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509v3.h>
#include <sodium.h>

#include "attest/ratls.h"
#include "attest/x509w.h"

void mse_ratlscert_free(struct mse_ratlscert *c)
{
	if (!c)
		return;
	EVP_PKEY_free(c->key);
	X509_free(c->cert);
	free(c->cert_pem);
	if (c->key_pem)
		sodium_memzero(c->key_pem, c->key_pem_len);
	free(c->key_pem);
	free(c->quote);
	memset(c, 0, sizeof(*c));
}

int mse_ratlscert_create(struct mse_quoter *prov, const struct mse_ratlscert_params *params,
			 const uint8_t enclave_pk[32], struct mse_ratlscert *out,
			 struct mse_err *err)
{
	X509_NAME *name = NULL;
	time_t now = time(NULL);
	char san[600];
	unsigned char addr[16];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (params->not_after <= (int64_t)now) {
		char got[32];

		snprintf(got, sizeof(got), "%lld", (long long)params->not_after);
		return mse_err_expect(err, "expiration", "a UNIX time in the future", got);
	}
	if (!params->san || !*params->san || strlen(params->san) > 512 ||
	    strpbrk(params->san, ", \t\r\n"))
		return mse_err_expect(err, "san", "one DNS name or IP address",
				      params->san ? params->san : "(none)");
	if (inet_pton(AF_INET, params->san, addr) == 1 || inet_pton(AF_INET6, params->san, addr) == 1)
		snprintf(san, sizeof(san), "IP:%s", params->san);
	else
		snprintf(san, sizeof(san), "DNS:%s", params->san);
	if (!(name = mse_x509w_name_rfc4514(params->subject, err)) ||
	    !(out->key = mse_x509w_p256_new(err)))
		goto out;
	/* report_data binds this key and the enclave's X25519 key to the quote. */
	if (mse_ratls_key_hash(out->key, out->report_data, err) != 0)
		goto out;
	memcpy(out->report_data + 32, enclave_pk, 32);
	if (mse_quoter_quote(prov, out->report_data, &out->quote, &out->quote_len, err) != 0)
		goto out;
	out->cert = mse_x509w_cert_new(name, name, out->key, now - 60, (time_t)params->not_after, err);
	if (!out->cert ||
	    mse_x509w_add_ext(out->cert, NULL, NID_basic_constraints, "critical,CA:TRUE", err) != 0 ||
	    mse_x509w_add_ext(out->cert, NULL, NID_subject_alt_name, san, err) != 0 ||
	    mse_x509w_add_raw_ext(out->cert, MSE_RATLS_QUOTE_OID, 0, out->quote, out->quote_len,
				  err) != 0 ||
	    mse_x509w_sign(out->cert, out->key, err) != 0 ||
	    mse_x509w_cert_pem(out->cert, &out->cert_pem, err) != 0 ||
	    mse_x509w_key_pem(out->key, &out->key_pem, &out->key_pem_len, err) != 0)
		goto out;
	rc = 0;
out:
	X509_NAME_free(name);
	if (rc != 0) {
		mse_err_step(err, "ratls");
		mse_ratlscert_free(out);
	}
	return rc;
}
