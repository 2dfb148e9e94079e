/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_ckeys — the coordinator's keys, frozen as a wire format (known-answer
 * vectors in tests/vectors/ckeys.json, checked against python3-cryptography
 * by tests/e2e/test_coordinator_keys.py). Changing a label or an encoding
 * changes every replica's app key and the CA: a new label, never an edit.
 *
 *   root secret   32 bytes from the system CSPRNG (randombytes_buf), drawn
 *                 once, when the coordinator accepts its first manifest.
 *
 *   app key       HKDF-SHA256 (RFC 5869) with
 *                   IKM  = root secret
 *                   salt = empty (RFC 5869 §2.2: HashLen zero bytes)
 *                   info = "mse-c/app-key/v1" ‖ u32le(len(name)) ‖ name
 *                   L    = 32
 *                 name is the app name of the manifest (UTF-8, 1..255 bytes).
 *
 *   CA key        a P-256 private scalar d from
 *                   v = OS2IP(HKDF-SHA256(IKM = root secret, salt = empty,
 *                                         info = "mse-c/ca-key/v1", L = 48))
 *                   d = (v mod (n - 1)) + 1
 *                 where n is the order of P-256 (FIPS 186-5 §A.2.1, "key pair
 *                 generation using extra random bits": 128 extra bits make the
 *                 bias below 2^-128 from uniform on [1, n-1]; d is never 0).
 *
 *   state key     HKDF-SHA256(IKM = sealing key, salt = empty,
 *                 info = "mse-c/coordinator/state-key/v1", L = 32): the
 *                 secretbox key of the coordinator's sealed state.
 *
 * No other derivation uses these labels.
 *
 * Ownership: outputs go to caller buffers the caller wipes
 * (sodium_memzero); mse_ckeys_ca_key returns a new EVP_PKEY (EVP_PKEY_free).
 */
#ifndef MSE_CKEYS_H
#define MSE_CKEYS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_CKEYS_ROOT_LEN 32
#define MSE_CKEYS_APP_KEY_LEN 32
#define MSE_CKEYS_STATE_KEY_LEN 32
#define MSE_CKEYS_APP_NAME_MAX 255
#define MSE_CKEYS_APP_KEY_INFO "mse-c/app-key/v1"
#define MSE_CKEYS_CA_KEY_INFO "mse-c/ca-key/v1"
#define MSE_CKEYS_STATE_KEY_INFO "mse-c/coordinator/state-key/v1"
#define MSE_CKEYS_CA_OKM_LEN 48

/* A fresh root secret from the CSPRNG. */
void mse_ckeys_root_new(uint8_t root[MSE_CKEYS_ROOT_LEN]);
/* HKDF-SHA256 with an empty salt (the one primitive below). */
int mse_ckeys_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len,
		   uint8_t *out, size_t out_len, struct mse_err *err) MSE_MUST_CHECK;
/* The app key of app `name` (name_len 1..255). */
int mse_ckeys_app_key(const uint8_t root[MSE_CKEYS_ROOT_LEN], const char *name, size_t name_len,
		      uint8_t out[MSE_CKEYS_APP_KEY_LEN], struct mse_err *err) MSE_MUST_CHECK;
/* The CA's private scalar d, big-endian, 32 bytes. */
int mse_ckeys_ca_scalar(const uint8_t root[MSE_CKEYS_ROOT_LEN], uint8_t d[32],
			struct mse_err *err) MSE_MUST_CHECK;
/* The CA key pair (P-256) from d. NULL on failure. */
EVP_PKEY *mse_ckeys_ca_key(const uint8_t root[MSE_CKEYS_ROOT_LEN], struct mse_err *err);
/* The sealed state's key from the enclave's sealing key. */
int mse_ckeys_state_key(const uint8_t *sealing_key, size_t len,
			uint8_t out[MSE_CKEYS_STATE_KEY_LEN], struct mse_err *err) MSE_MUST_CHECK;

#endif
