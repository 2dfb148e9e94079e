/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/ckeys.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <sodium.h>

static int ossl_fail(struct mse_err *err, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return mse_err_set(err, "%s: %s", what, e ? buf : "failed");
}

void mse_ckeys_root_new(uint8_t root[MSE_CKEYS_ROOT_LEN])
{
	randombytes_buf(root, MSE_CKEYS_ROOT_LEN);
}

int mse_ckeys_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len,
		   uint8_t *out, size_t out_len, struct mse_err *err)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t n = out_len;
	int rc = -1;

	/* No salt set: OpenSSL uses HashLen zero bytes, as RFC 5869 §2.2 says. */
	if (!c || EVP_PKEY_derive_init(c) <= 0 || EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set1_hkdf_key(c, ikm, (int)ikm_len) <= 0 ||
	    EVP_PKEY_CTX_add1_hkdf_info(c, info, (int)info_len) <= 0 ||
	    EVP_PKEY_derive(c, out, &n) <= 0 || n != out_len) {
		ossl_fail(err, "HKDF-SHA256");
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_CTX_free(c);
	return rc;
}

int mse_ckeys_app_key(const uint8_t root[MSE_CKEYS_ROOT_LEN], const char *name, size_t name_len,
		      uint8_t out[MSE_CKEYS_APP_KEY_LEN], struct mse_err *err)
{
	uint8_t info[sizeof(MSE_CKEYS_APP_KEY_INFO) - 1 + 4 + MSE_CKEYS_APP_NAME_MAX];
	size_t l = sizeof(MSE_CKEYS_APP_KEY_INFO) - 1;

	if (name_len == 0 || name_len > MSE_CKEYS_APP_NAME_MAX)
		return mse_err_field(err, "app name", "expected 1..%d bytes, got %zu",
				     MSE_CKEYS_APP_NAME_MAX, name_len);
	memcpy(info, MSE_CKEYS_APP_KEY_INFO, l);
	info[l++] = (uint8_t)name_len;
	info[l++] = (uint8_t)(name_len >> 8);
	info[l++] = (uint8_t)(name_len >> 16);
	info[l++] = (uint8_t)(name_len >> 24);
	memcpy(info + l, name, name_len);
	l += name_len;
	return mse_ckeys_hkdf(root, MSE_CKEYS_ROOT_LEN, info, l, out, MSE_CKEYS_APP_KEY_LEN, err);
}

int mse_ckeys_ca_scalar(const uint8_t root[MSE_CKEYS_ROOT_LEN], uint8_t d[32], struct mse_err *err)
{
	uint8_t okm[MSE_CKEYS_CA_OKM_LEN];
	EC_GROUP *g = NULL;
	BIGNUM *v = NULL, *nm1 = NULL;
	BN_CTX *bc = NULL;
	int rc = -1;

	if (mse_ckeys_hkdf(root, MSE_CKEYS_ROOT_LEN, (const uint8_t *)MSE_CKEYS_CA_KEY_INFO,
			   strlen(MSE_CKEYS_CA_KEY_INFO), okm, sizeof(okm), err) != 0)
		return -1;
	if (!(g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) || !(bc = BN_CTX_new()) ||
	    !(v = BN_secure_new()) || !(nm1 = BN_dup(EC_GROUP_get0_order(g))) ||
	    !BN_bin2bn(okm, sizeof(okm), v) || !BN_sub_word(nm1, 1) ||
	    !BN_mod(v, v, nm1, bc) || !BN_add_word(v, 1) || BN_bn2binpad(v, d, 32) != 32) {
		ossl_fail(err, "CA scalar");
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(okm, sizeof(okm));
	BN_clear_free(v);
	BN_free(nm1);
	BN_CTX_free(bc);
	EC_GROUP_free(g);
	return rc;
}

EVP_PKEY *mse_ckeys_ca_key(const uint8_t root[MSE_CKEYS_ROOT_LEN], struct mse_err *err)
{
	uint8_t d[32], pub[65];
	EC_GROUP *g = NULL;
	EC_POINT *p = NULL;
	BIGNUM *bd = NULL;
	OSSL_PARAM_BLD *b = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *c = NULL;
	EVP_PKEY *key = NULL;

	if (mse_ckeys_ca_scalar(root, d, err) != 0)
		return NULL;
	if (!(g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) || !(p = EC_POINT_new(g)) ||
	    !(bd = BN_secure_new()) || !BN_bin2bn(d, 32, bd) ||
	    !EC_POINT_mul(g, p, bd, NULL, NULL, NULL) ||
	    EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, pub, sizeof(pub), NULL) != 65 ||
	    !(b = OSSL_PARAM_BLD_new()) ||
	    !OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, bd) ||
	    !OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)) ||
	    !(params = OSSL_PARAM_BLD_to_param(b)) ||
	    !(c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) || EVP_PKEY_fromdata_init(c) <= 0 ||
	    EVP_PKEY_fromdata(c, &key, EVP_PKEY_KEYPAIR, params) <= 0) {
		ossl_fail(err, "CA key");
		EVP_PKEY_free(key);
		key = NULL;
	}
	sodium_memzero(d, sizeof(d));
	OSSL_PARAM_free(params) /* built from a secure BIGNUM: secure heap, cleared on free */;
	OSSL_PARAM_BLD_free(b);
	EVP_PKEY_CTX_free(c);
	BN_clear_free(bd);
	EC_POINT_free(p);
	EC_GROUP_free(g);
	return key;
}

int mse_ckeys_state_key(const uint8_t *sealing_key, size_t len,
			uint8_t out[MSE_CKEYS_STATE_KEY_LEN], struct mse_err *err)
{
	return mse_ckeys_hkdf(sealing_key, len, (const uint8_t *)MSE_CKEYS_STATE_KEY_INFO,
			      strlen(MSE_CKEYS_STATE_KEY_INFO), out, MSE_CKEYS_STATE_KEY_LEN, err);
}
