/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/seal.h"

#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/hex.h"

void mse_seal_keypair_generate(struct mse_seal_keypair *kp)
{
	crypto_box_keypair(kp->pk, kp->sk);
	kp->has_sk = 1;
}

void mse_seal_keypair_wipe(struct mse_seal_keypair *kp)
{
	if (kp)
		sodium_memzero(kp, sizeof(*kp));
}

int mse_seal_load_key(const char *path, enum mse_seal_key_use use, struct mse_seal_keypair *kp,
		      struct mse_err *err)
{
	uint8_t *data = NULL, derived[MSE_SEAL_PK_BYTES];
	size_t len = 0;
	int rc = -1;

	memset(kp, 0, sizeof(*kp));
	if (mse_file_read(path, 4096, &data, &len, err) != 0) {
		if (err && strstr(err->msg, "too large"))
			mse_err_field(err, path,
				      "not a key file: expected 32 or 64 bytes, got more");
		return -1;
	}
	if (len == 64) {
		memcpy(kp->pk, data, 32);
		memcpy(kp->sk, data + 32, 32);
		kp->has_sk = 1;
		/* The pair must belong together, else a typo seals to nobody. */
		crypto_scalarmult_base(derived, kp->sk);
		if (sodium_memcmp(derived, kp->pk, sizeof(derived)) != 0) {
			mse_err_field(err, path,
				      "the 64-byte key file is not a matching public key || "
				      "private key pair");
			goto out;
		}
	} else if (len == 32 && use == MSE_SEAL_KEY_PUBLIC) {
		memcpy(kp->pk, data, 32);
	} else if (len == 32) {
		memcpy(kp->sk, data, 32);
		kp->has_sk = 1;
		crypto_scalarmult_base(kp->pk, kp->sk);
	} else {
		mse_err_field(err, path, "not a key file: expected 32 or 64 bytes, got %zu", len);
		goto out;
	}
	if (mse_seal_check_public_key(kp->pk, err) != 0) {
		mse_err_file(err, path);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(derived, sizeof(derived));
	mse_file_free_secret(data, len);
	if (rc != 0)
		mse_seal_keypair_wipe(kp);
	return rc;
}

int mse_seal_check_public_key(const uint8_t pk[MSE_SEAL_PK_BYTES], struct mse_err *err)
{
	uint8_t sk[MSE_SEAL_SK_BYTES], shared[32];
	int rc;

	if (sodium_is_zero(pk, MSE_SEAL_PK_BYTES))
		return mse_err_set(err, "the X25519 public key is all zeros: this enclave has no "
					"sealing key (certificates from before sealing carry zeros "
					"in report_data[32:64])");
	/*
	 * crypto_scalarmult refuses points of small order (the result would be
	 * all zeros whatever our scalar): exactly the keys a box cannot use.
	 */
	randombytes_buf(sk, sizeof(sk));
	rc = crypto_scalarmult(shared, sk, pk);
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(shared, sizeof(shared));
	if (rc != 0) {
		char hex[2 * MSE_SEAL_PK_BYTES + 1];

		if (mse_hex_encode(hex, sizeof(hex), pk, MSE_SEAL_PK_BYTES) != 0)
			hex[0] = 0;
		return mse_err_set(err, "invalid X25519 public key %s (a point of small order)",
				   hex);
	}
	return 0;
}

int mse_seal_seal(const uint8_t pk[MSE_SEAL_PK_BYTES], const uint8_t *in, size_t len,
		  uint8_t **out, size_t *out_len, struct mse_err *err)
{
	uint8_t *c;

	*out = NULL;
	*out_len = 0;
	if (len > MSE_SEAL_MAX_INPUT)
		return mse_err_set(err, "too large to seal: %zu bytes, limit %zu", len,
				   MSE_SEAL_MAX_INPUT);
	if (mse_seal_check_public_key(pk, err) != 0)
		return -1;
	c = malloc(len + MSE_SEAL_OVERHEAD);
	if (!c)
		return mse_err_set(err, "out of memory");
	if (crypto_box_seal(c, in, len, pk) != 0) {
		free(c);
		return mse_err_set(err, "crypto_box_seal failed (invalid public key)");
	}
	*out = c;
	*out_len = len + MSE_SEAL_OVERHEAD;
	return 0;
}

int mse_seal_open(const struct mse_seal_keypair *kp, const uint8_t *in, size_t len,
		  uint8_t **out, size_t *out_len, struct mse_err *err)
{
	uint8_t *m;

	*out = NULL;
	*out_len = 0;
	if (!kp->has_sk)
		return mse_err_set(err, "no private key to open a sealed file");
	if (len < MSE_SEAL_OVERHEAD)
		return mse_err_set(err,
				   "not a sealed file: %zu bytes, expected at least %d "
				   "(ephemeral key 32 + tag 16)",
				   len, MSE_SEAL_OVERHEAD);
	if (len - MSE_SEAL_OVERHEAD > MSE_SEAL_MAX_INPUT)
		return mse_err_set(err, "sealed file too large: %zu bytes", len);
	m = malloc(len - MSE_SEAL_OVERHEAD + 1);
	if (!m)
		return mse_err_set(err, "out of memory");
	if (crypto_box_seal_open(m, in, len, kp->pk, kp->sk) != 0) {
		free(m);
		return mse_err_set(err, "cannot open: wrong private key or corrupt sealed file");
	}
	*out = m;
	*out_len = len - MSE_SEAL_OVERHEAD;
	return 0;
}
