/* SPDX-License-Identifier: Apache-2.0 */
#include "attest/quoter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <sodium.h>

#include "attest/quote.h"
#include "attest/sim.h"
#include "attest/x509w.h"
#include "common/file.h"

#define QUOTE_MAX (256 * 1024)

struct mse_quoter {
	int sim;
	char base[4096];          /* Gramine */
	struct mse_sim *simctx;   /* simulation */
	struct mse_sim_enclave enc;
};

static int gpath(const struct mse_quoter *p, const char *name, char *out, size_t size,
		 struct mse_err *err)
{
	if (snprintf(out, size, "%s/%s", p->base, name) >= (int)size)
		return mse_err_set(err, "path too long");
	return 0;
}

int mse_quoter_gramine(const char *base_dir, struct mse_quoter **out, struct mse_err *err)
{
	struct mse_quoter *p = calloc(1, sizeof(*p));
	char path[4200];
	uint8_t *type = NULL;
	size_t len = 0;

	*out = NULL;
	if (!p)
		return mse_err_set(err, "out of memory");
	if (snprintf(p->base, sizeof(p->base), "%s", base_dir) >= (int)sizeof(p->base) ||
	    gpath(p, "attestation_type", path, sizeof(path), err) != 0)
		goto fail;
	if (!mse_file_exists(path)) {
		mse_err_step(err, "provider");
		mse_err_file(err, path);
		mse_err_set(err, "not running under Gramine with SGX attestation: %s does not exist "
				 "(start mse-bootstrap with gramine-sgx and sgx.remote_attestation = "
				 "\"dcap\" in its manifest, or use --simulation)",
			    path);
		goto fail;
	}
	if (mse_file_read(path, 64, &type, &len, err) != 0) {
		mse_err_step(err, "provider");
		mse_err_prefix(err, "not running under Gramine with SGX attestation");
		goto fail;
	}
	while (len && (type[len - 1] == '\n' || type[len - 1] == '\0'))
		len--;
	if (len != 4 || memcmp(type, "dcap", 4) != 0) {
		char got[80];

		/* The bytes as text, controls escaped: the host may have written anything. */
		size_t o = 0;
		for (size_t i = 0; i < len && o + 5 < sizeof(got); i++)
			o += (size_t)snprintf(got + o, sizeof(got) - o,
					      type[i] >= 0x20 && type[i] < 0x7f ? "%c" : "\\x%02x",
					      type[i]);
		got[o] = 0;
		mse_err_step(err, "provider");
		mse_err_file(err, path);
		mse_err_expect(err, "attestation_type", "\"dcap\" (sgx.remote_attestation = \"dcap\")",
			       got[0] ? got : "(empty: sgx.remote_attestation is \"none\")");
		free(type);
		goto fail;
	}
	free(type);
	*out = p;
	return 0;
fail:
	free(p);
	return -1;
}

int mse_quoter_sim(const char *sim_dir, const uint8_t mrenclave[32], struct mse_quoter **out,
		     struct mse_err *err)
{
	struct mse_quoter *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return mse_err_set(err, "out of memory");
	p->sim = 1;
	if (mse_sim_load(sim_dir, &p->simctx, err) != 0) {
		free(p);
		return -1;
	}
	memcpy(p->enc.mrenclave, mrenclave, 32);
	mse_sim_mrsigner(p->simctx, p->enc.mrsigner);
	mse_sim_default_attributes(p->enc.attributes);
	p->enc.isv_prod_id = 1;
	p->enc.isv_svn = 1;
	*out = p;
	return 0;
}

void mse_quoter_free(struct mse_quoter *p)
{
	if (!p)
		return;
	mse_sim_free(p->simctx);
	sodium_memzero(p, sizeof(*p));
	free(p);
}

void mse_quoter_sim_set_isv(struct mse_quoter *p, uint16_t isvprodid, uint16_t isvsvn)
{
	if (p->sim) {
		p->enc.isv_prod_id = isvprodid;
		p->enc.isv_svn = isvsvn;
	}
}

int mse_quoter_is_sim(const struct mse_quoter *p)
{
	return p->sim;
}

static int write_file(const char *path, const uint8_t *data, size_t len, struct mse_err *err)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		mse_err_file(err, path);
		return mse_err_set(err, "cannot open %s: %s", path, strerror(errno));
	}
	do
		n = write(fd, data, len);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n != (ssize_t)len) {
		mse_err_file(err, path);
		return mse_err_set(err, "cannot write %zu bytes to %s", len, path);
	}
	return 0;
}

/*
 * What Gramine's /dev/attestation/quote returned must parse as an SGX DCAP
 * quote (Intel DCAP Quote Library API, A.4): anything else means the
 * interface is not Gramine's, or not working, and would only yield a
 * certificate no verifier accepts. (Its REPORTDATA binding is the
 * verifier's check, not repeated here.)
 */
static int check_gramine_quote(const uint8_t *quote, size_t len, const char *path,
			       struct mse_err *err)
{
	struct mse_quote q;

	mse_err_step(err, "provider");
	if (len < MSE_QUOTE_SIGNED_SIZE) {
		mse_err_file(err, path);
		return mse_err_set(err, "quote of %zu bytes is too short: an SGX quote has at least "
					"%d (header and report body)",
				   len, MSE_QUOTE_SIGNED_SIZE);
	}
	if (mse_quote_parse(&q, quote, len, 0, err) != 0) {
		mse_err_step(err, "provider");
		mse_err_file(err, path);
		mse_err_prefix(err, "malformed quote from Gramine");
		return -1;
	}
	return 0;
}

int mse_quoter_quote(struct mse_quoter *p, const uint8_t report_data[64], uint8_t **quote,
		       size_t *len, struct mse_err *err)
{
	char path[4200];

	*quote = NULL;
	if (p->sim) {
		memcpy(p->enc.report_data, report_data, 64);
		return mse_sim_quote(p->simctx, &p->enc, quote, len, err);
	}
	if (gpath(p, "user_report_data", path, sizeof(path), err) != 0 ||
	    write_file(path, report_data, 64, err) != 0 ||
	    gpath(p, "quote", path, sizeof(path), err) != 0 ||
	    mse_file_read(path, QUOTE_MAX, quote, len, err) != 0) {
		mse_err_step(err, "provider");
		return -1;
	}
	if (check_gramine_quote(*quote, *len, path, err) != 0) {
		free(*quote);
		*quote = NULL;
		*len = 0;
		return -1;
	}
	return 0;
}

int mse_quoter_sealing_key(struct mse_quoter *p, uint8_t out[MSE_SEALING_KEY_LEN],
			     struct mse_err *err)
{
	char path[4200];
	uint8_t *k = NULL;
	size_t len = 0;

	if (p->sim)
		return mse_sim_sealing_key(p->simctx, p->enc.mrenclave, out, err);
	if (gpath(p, "keys/_sgx_mrenclave", path, sizeof(path), err) != 0)
		return -1;
	if (!mse_file_exists(path)) {
		mse_err_step(err, "provider");
		mse_err_file(err, path);
		return mse_err_set(err, "no MRENCLAVE sealing key: %s does not exist (Gramine 1.8 or "
					"later provides it under SGX)",
				   path);
	}
	if (mse_file_read(path, 64, &k, &len, err) != 0) {
		mse_err_step(err, "provider");
		return -1;
	}
	if (len != MSE_SEALING_KEY_LEN) {
		mse_file_free_secret(k, len);
		mse_err_step(err, "provider");
		mse_err_file(err, path);
		return mse_err_set(err, "sealing key: expected %d bytes, got %zu",
				   MSE_SEALING_KEY_LEN, len);
	}
	memcpy(out, k, MSE_SEALING_KEY_LEN);
	mse_file_free_secret(k, len);
	return 0;
}

int mse_quoter_derive_enclave_key(const uint8_t *sealing_key, size_t len, uint8_t sk[32],
				    uint8_t pk[32], struct mse_err *err)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t n = 32;
	int rc = -1;

	/* RFC 5869 with no salt (a string of HashLen zeros). */
	if (!c || EVP_PKEY_derive_init(c) <= 0 || EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set1_hkdf_key(c, sealing_key, (int)len) <= 0 ||
	    EVP_PKEY_CTX_add1_hkdf_info(c, (const unsigned char *)MSE_ENCLAVE_KEY_INFO,
					(int)strlen(MSE_ENCLAVE_KEY_INFO)) <= 0 ||
	    EVP_PKEY_derive(c, sk, &n) <= 0 || n != 32) {
		mse_x509w_ossl_err(err, "HKDF");
		goto out;
	}
	if (crypto_scalarmult_base(pk, sk) != 0) {
		sodium_memzero(sk, 32);
		mse_err_set(err, "X25519 public key derivation failed");
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_CTX_free(c);
	return rc;
}

int mse_quoter_enclave_key(struct mse_quoter *p, uint8_t sk[32], uint8_t pk[32],
			     struct mse_err *err)
{
	uint8_t seal[MSE_SEALING_KEY_LEN];
	int rc;

	if (mse_quoter_sealing_key(p, seal, err) != 0)
		return -1;
	rc = mse_quoter_derive_enclave_key(seal, sizeof(seal), sk, pk, err);
	sodium_memzero(seal, sizeof(seal));
	return rc;
}
