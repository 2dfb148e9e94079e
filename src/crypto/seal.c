#include "crypto/seal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "common/file.h"
#include "common/hex.h"

/*
 * Intel SGX DCAP quote v3/v4 (Intel SGX ECDSA Quote Library API, appendix A
 * "Quote format"): a 48-byte header, then the 384-byte ISV enclave report
 * body whose report_data field is its last 64 bytes (offset 320).
 */
#define QUOTE_HEADER_BYTES 48
#define REPORT_BODY_BYTES 384
#define REPORT_DATA_OFFSET_IN_BODY 320
#define REPORT_DATA_BYTES 64
#define QUOTE_REPORT_DATA_OFFSET (QUOTE_HEADER_BYTES + REPORT_DATA_OFFSET_IN_BODY)
_Static_assert(QUOTE_REPORT_DATA_OFFSET == 368, "report_data offset in a DCAP quote");
_Static_assert(REPORT_DATA_OFFSET_IN_BODY + REPORT_DATA_BYTES == REPORT_BODY_BYTES,
	       "report_data ends the report body");
/* RA-TLS (Gramine, MSE): the quote is the extension's OCTET STRING. */
#define RATLS_QUOTE_OID "1.2.840.113741.1337.6"

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

/* 0x04 ‖ X ‖ Y (SEC 1 §2.3.3 uncompressed point) of a P-256 key. */
static int p256_point(EVP_PKEY *pkey, uint8_t out[65], struct mse_err *err)
{
	char group[64];
	BIGNUM *x = NULL, *y = NULL;
	int rc = -1;

	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
	    !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
					    sizeof(group), NULL) ||
	    strcmp(group, "prime256v1") != 0)
		return mse_err_set(err, "RA-TLS certificate key is not ECDSA P-256");
	if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
	    !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) ||
	    BN_bn2binpad(x, out + 1, 32) != 32 || BN_bn2binpad(y, out + 33, 32) != 32) {
		mse_err_set(err, "cannot read the certificate's P-256 public key");
		goto out;
	}
	out[0] = 0x04;
	rc = 0;
out:
	BN_free(x);
	BN_free(y);
	return rc;
}

int mse_seal_pk_from_ratls_mem(const uint8_t *cert, size_t len, uint8_t pk[MSE_SEAL_PK_BYTES],
			       struct mse_err *err)
{
	X509 *x = NULL;
	BIO *bio = NULL;
	ASN1_OBJECT *oid = NULL;
	const ASN1_OCTET_STRING *val;
	const uint8_t *quote, *rd, *p;
	struct mse_buf r;
	uint8_t point[65], digest[SHA256_DIGEST_LENGTH];
	int idx, rc = -1;

	if (len > 0 && len <= INT32_MAX && memmem(cert, len, "-----BEGIN", 10)) {
		bio = BIO_new_mem_buf(cert, (int)len);
		x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	} else if (len <= INT32_MAX) {
		p = cert;
		x = d2i_X509(NULL, &p, (long)len);
	}
	if (!x) {
		mse_err_set(err, "not an X.509 certificate (PEM or DER)");
		goto out;
	}
	oid = OBJ_txt2obj(RATLS_QUOTE_OID, 1);
	idx = oid ? X509_get_ext_by_OBJ(x, oid, -1) : -1;
	if (idx < 0) {
		mse_err_set(err, "not an RA-TLS certificate: no quote extension %s",
			    RATLS_QUOTE_OID);
		goto out;
	}
	val = X509_EXTENSION_get_data(X509_get_ext(x, idx));
	mse_buf_init(&r, ASN1_STRING_get0_data(val), (size_t)ASN1_STRING_length(val));
	if (mse_buf_bytes(&r, QUOTE_REPORT_DATA_OFFSET, &quote) != 0 ||
	    mse_buf_bytes(&r, REPORT_DATA_BYTES, &rd) != 0) {
		mse_err_set(err, "RA-TLS quote too short: %zu bytes, report_data ends at %d",
			    r.len, QUOTE_REPORT_DATA_OFFSET + REPORT_DATA_BYTES);
		goto out;
	}
	if (p256_point(X509_get0_pubkey(x), point, err) != 0)
		goto out;
	SHA256(point, sizeof(point), digest);
	if (CRYPTO_memcmp(digest, rd, sizeof(digest)) != 0) {
		char want[65], got[65];

		if (mse_hex_encode(want, sizeof(want), digest, 32) != 0 ||
		    mse_hex_encode(got, sizeof(got), rd, 32) != 0)
			want[0] = got[0] = 0;
		mse_err_step(err, "binding");
		mse_err_expect(err, "report_data[0:32]", want, got);
		mse_err_prefix(err, "the quote is not bound to this certificate's key "
				    "(SHA-256 of 0x04||X||Y)");
		goto out;
	}
	if (mse_seal_check_public_key(rd + 32, err) != 0)
		goto out;
	memcpy(pk, rd + 32, MSE_SEAL_PK_BYTES);
	rc = 0;
out:
	ASN1_OBJECT_free(oid);
	X509_free(x);
	BIO_free(bio);
	return rc;
}

int mse_seal_pk_from_ratls(const char *pem_path, uint8_t pk[MSE_SEAL_PK_BYTES],
			   struct mse_err *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	if (mse_file_read(pem_path, (size_t)1 << 20, &data, &len, err) != 0)
		return -1;
	rc = mse_seal_pk_from_ratls_mem(data, len, pk, err);
	if (rc != 0)
		mse_err_file(err, pem_path);
	free(data);
	return rc;
}
