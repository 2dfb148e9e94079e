/* SPDX-License-Identifier: Apache-2.0 */
#include "attest/sigstruct.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#include "common/file.h"
#include "common/hex.h"

/* The wire layout (Intel SDM Vol. 3D, Table 34-19), pinned at compile time. */
_Static_assert(MSE_SIGSTRUCT_HEADER_LEN == 16 + 4 + 4 + 16 + 4 + 84, "SIGSTRUCT header is 128 bytes");
_Static_assert(MSE_SIGSTRUCT_MODULUS_OFF + MSE_SIGSTRUCT_KEY_BYTES == MSE_SIGSTRUCT_EXPONENT_OFF,
	       "exponent follows the modulus");
_Static_assert(MSE_SIGSTRUCT_SIGNATURE_OFF + MSE_SIGSTRUCT_KEY_BYTES == MSE_SIGSTRUCT_BODY_OFF,
	       "body follows the signature");
_Static_assert(MSE_SIGSTRUCT_BODY_OFF + 4 + 4 + 4 + 16 + 16 + 16 == MSE_SIGSTRUCT_ENCLAVE_HASH_OFF,
	       "ENCLAVEHASH at 960");
_Static_assert(MSE_SIGSTRUCT_ENCLAVE_HASH_OFF + 32 + 16 + 16 == MSE_SIGSTRUCT_ISV_PROD_ID_OFF,
	       "ISVPRODID at 1024");
_Static_assert(MSE_SIGSTRUCT_ISV_SVN_OFF + 2 == MSE_SIGSTRUCT_BODY_OFF + MSE_SIGSTRUCT_BODY_LEN,
	       "body is 128 bytes");
_Static_assert(MSE_SIGSTRUCT_BODY_OFF + MSE_SIGSTRUCT_BODY_LEN + 12 == MSE_SIGSTRUCT_Q1_OFF, "Q1 at 1040");
_Static_assert(MSE_SIGSTRUCT_Q2_OFF + MSE_SIGSTRUCT_KEY_BYTES == MSE_SIGSTRUCT_SIZE,
	       "enclave_css_t is 1808 bytes");

static const uint8_t HEADER[16] = {0x06, 0x00, 0x00, 0x00, 0xe1, 0x00, 0x00, 0x00,
				   0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00};
static const uint8_t HEADER2[16] = {0x01, 0x01, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00,
				    0x60, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00};

static int fixed(const char *field, size_t off, const uint8_t *got, const uint8_t *want, size_t n,
		 struct mse_err *err)
{
	char g[2 * 16 + 1], w[2 * 16 + 1], name[64];

	if (memcmp(got, want, n) == 0)
		return 0;
	if (mse_hex_encode(g, sizeof(g), got, n) != 0 || mse_hex_encode(w, sizeof(w), want, n) != 0)
		return mse_err_field(err, field, "unexpected value");
	snprintf(name, sizeof(name), "%s (offset %zu)", field, off);
	return mse_err_expect(err, name, w, g);
}

int mse_sigstruct_parse(struct mse_sigstruct *s, const uint8_t *data, size_t len,
			struct mse_err *err)
{
	struct mse_buf r;

	memset(s, 0, sizeof(*s));
	mse_err_step(err, "sigstruct");
	if (len != MSE_SIGSTRUCT_SIZE)
		return mse_err_field(err, "SIGSTRUCT", "expected %d bytes (enclave_css_t), got %zu",
				     MSE_SIGSTRUCT_SIZE, len);
	mse_buf_init(&r, data, len);
	/* header: 0..127 */
	if (mse_buf_copy(&r, s->header, 16) || mse_buf_u32le(&r, &s->vendor) ||
	    mse_buf_u32le(&r, &s->date) || mse_buf_copy(&r, s->header2, 16) ||
	    mse_buf_u32le(&r, &s->swdefined) || mse_buf_skip(&r, 84) ||
	    /* key: 128..899 */
	    mse_buf_copy(&r, s->modulus, sizeof(s->modulus)) || mse_buf_u32le(&r, &s->exponent) ||
	    mse_buf_copy(&r, s->signature, sizeof(s->signature)) ||
	    /* body: 900..1027 */
	    mse_buf_u32le(&r, &s->misc_select) || mse_buf_u32le(&r, &s->misc_mask) ||
	    mse_buf_skip(&r, 4) || mse_buf_copy(&r, s->isv_family_id, 16) ||
	    mse_buf_u64le(&r, &s->attr_flags) || mse_buf_u64le(&r, &s->attr_xfrm) ||
	    mse_buf_u64le(&r, &s->attr_flags_mask) || mse_buf_u64le(&r, &s->attr_xfrm_mask) ||
	    mse_buf_copy(&r, s->mrenclave, 32) || mse_buf_skip(&r, 16) ||
	    mse_buf_copy(&r, s->isvext_prod_id, 16) || mse_buf_u16le(&r, &s->isv_prod_id) ||
	    mse_buf_u16le(&r, &s->isv_svn) ||
	    /* buffer: 1028..1807 */
	    mse_buf_skip(&r, 12) || mse_buf_copy(&r, s->q1, sizeof(s->q1)) ||
	    mse_buf_copy(&r, s->q2, sizeof(s->q2)) || mse_buf_remaining(&r) != 0)
		return mse_err_field(err, "SIGSTRUCT", "truncated");
	memcpy(s->signed_data, data + MSE_SIGSTRUCT_HEADER_OFF, MSE_SIGSTRUCT_HEADER_LEN);
	memcpy(s->signed_data + MSE_SIGSTRUCT_HEADER_LEN, data + MSE_SIGSTRUCT_BODY_OFF,
	       MSE_SIGSTRUCT_BODY_LEN);
	if (fixed("HEADER", 0, s->header, HEADER, 16, err) ||
	    fixed("HEADER2", 24, s->header2, HEADER2, 16, err))
		return -1;
	if (s->vendor != 0 && s->vendor != 0x8086)
		return mse_err_field(err, "VENDOR (offset 16)", "expected 0 or 0x8086, got 0x%x",
				     (unsigned)s->vendor);
	return 0;
}

/* A little-endian byte string as a BIGNUM (NULL when out of memory). */
static BIGNUM *le_bn(const uint8_t *p, size_t n)
{
	return BN_lebin2bn(p, (int)n, NULL);
}

static int rsa_verify(const struct mse_sigstruct *s, const BIGNUM *n, struct mse_err *err)
{
	uint8_t be_sig[MSE_SIGSTRUCT_KEY_BYTES];
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *kctx = NULL;
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *md = NULL;
	BIGNUM *e = BN_new();
	int rc = -1, v;

	for (size_t i = 0; i < sizeof(be_sig); i++)
		be_sig[i] = s->signature[sizeof(be_sig) - 1 - i];
	if (!bld || !e || !BN_set_word(e, s->exponent) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)) ||
	    !(kctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) ||
	    EVP_PKEY_fromdata_init(kctx) <= 0 ||
	    EVP_PKEY_fromdata(kctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0 ||
	    !(md = EVP_MD_CTX_new()) ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) <= 0) {
		mse_err_set(err, "cannot set up the RSA verification");
		goto out;
	}
	/* EVP_DigestVerify's default RSA padding is PKCS #1 v1.5. */
	v = EVP_DigestVerify(md, be_sig, sizeof(be_sig), s->signed_data, sizeof(s->signed_data));
	if (v != 1) {
		mse_err_field(err, "SIGNATURE (offset 516)",
			      "RSASSA-PKCS1-v1_5 SHA-256 over header ‖ body does not verify with "
			      "the SIGSTRUCT's own modulus");
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(kctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(e);
	return rc;
}

/* Q1 = floor(s² / n), Q2 = floor((s³ − Q1·s·n) / n), compared with the stored values. */
static int check_q(const struct mse_sigstruct *s, const BIGNUM *n, const BIGNUM *sig,
		   struct mse_err *err)
{
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *t = BN_new(), *q1 = BN_new(), *q2 = BN_new(), *rem = BN_new(), *u = BN_new();
	uint8_t le[MSE_SIGSTRUCT_KEY_BYTES];
	int rc = -1;

	if (!ctx || !t || !q1 || !q2 || !rem || !u) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	/* t = s²; q1 = t / n; u = s³ − q1·s·n = s·(t − q1·n) = s·rem; q2 = u / n */
	if (!BN_sqr(t, sig, ctx) || !BN_div(q1, rem, t, n, ctx) || !BN_mul(u, rem, sig, ctx) ||
	    !BN_div(q2, NULL, u, n, ctx)) {
		mse_err_set(err, "Q1/Q2 arithmetic failed");
		goto out;
	}
	if (BN_bn2lebinpad(q1, le, sizeof(le)) != (int)sizeof(le) ||
	    CRYPTO_memcmp(le, s->q1, sizeof(le)) != 0) {
		mse_err_field(err, "Q1 (offset 1040)", "expected floor(signature² / modulus)");
		goto out;
	}
	if (BN_bn2lebinpad(q2, le, sizeof(le)) != (int)sizeof(le) ||
	    CRYPTO_memcmp(le, s->q2, sizeof(le)) != 0) {
		mse_err_field(err, "Q2 (offset 1424)",
			      "expected floor((signature³ − Q1·signature·modulus) / modulus)");
		goto out;
	}
	rc = 0;
out:
	BN_CTX_free(ctx);
	BN_free(t);
	BN_free(q1);
	BN_free(q2);
	BN_free(rem);
	BN_free(u);
	return rc;
}

int mse_sigstruct_verify(struct mse_sigstruct *s, struct mse_err *err)
{
	BIGNUM *n = le_bn(s->modulus, sizeof(s->modulus));
	BIGNUM *sig = le_bn(s->signature, sizeof(s->signature));
	int rc = -1;

	mse_err_step(err, "sigstruct");
	memset(s->mrsigner, 0, sizeof(s->mrsigner));
	if (!n || !sig) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	if (BN_num_bits(n) != 8 * MSE_SIGSTRUCT_KEY_BYTES) {
		mse_err_field(err, "MODULUS (offset 128)", "expected a 3072-bit RSA modulus, got %d bits",
			      BN_num_bits(n));
		goto out;
	}
	if (s->exponent != MSE_SIGSTRUCT_EXPONENT) {
		mse_err_field(err, "EXPONENT (offset 512)", "expected %d, got %u", MSE_SIGSTRUCT_EXPONENT,
			      (unsigned)s->exponent);
		goto out;
	}
	if (BN_cmp(sig, n) >= 0) {
		mse_err_field(err, "SIGNATURE (offset 516)", "not less than the modulus");
		goto out;
	}
	if (rsa_verify(s, n, err) != 0 || check_q(s, n, sig, err) != 0)
		goto out;
	SHA256(s->modulus, sizeof(s->modulus), s->mrsigner);
	rc = 0;
out:
	BN_free(n);
	BN_free(sig);
	return rc;
}

int mse_sigstruct_load(const char *path, struct mse_sigstruct *s, struct mse_err *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	if (mse_file_read(path, MSE_SIGSTRUCT_SIZE + 1, &data, &len, err) != 0)
		return -1;
	rc = mse_sigstruct_parse(s, data, len, err) == 0 && mse_sigstruct_verify(s, err) == 0 ? 0 : -1;
	if (rc != 0)
		mse_err_file(err, path);
	free(data);
	return rc;
}

int mse_sigstruct_is_debug(const struct mse_sigstruct *s)
{
	return (s->attr_flags & MSE_SIGSTRUCT_FLAG_DEBUG) != 0;
}
