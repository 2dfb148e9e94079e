/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_seal — sealed secrets: libsodium crypto_box_seal (an anonymous sender
 * encrypts to an X25519 public key; only the private key opens it), as MSE
 * seals `secrets_to_seal.json` to the enclave key in report_data[32:64].
 *
 * A sealed file is the raw crypto_box_seal output:
 *     ephemeral public key (32) ‖ tag (16) ‖ ciphertext
 * which is what PyNaCl's SealedBox.encrypt() returns.
 *
 * Key files (mse keygen) are raw bytes:
 *   - 32 bytes: for sealing, the receiver's public key; for opening, the
 *     private key (the public key is derived from it);
 *   - 64 bytes: public key ‖ private key (mse keygen --asymmetric); opening
 *     checks that the two halves belong together.
 *
 * Ownership: struct mse_seal_keypair is caller-owned; wipe it with
 * mse_seal_keypair_wipe(). Sealed/opened buffers are malloc'd and freed by
 * the caller (opened plaintext with mse_file_free_secret).
 */
#ifndef MSE_SEAL_H
#define MSE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_SEAL_PK_BYTES 32
#define MSE_SEAL_SK_BYTES 32
#define MSE_SEAL_OVERHEAD 48 /* ephemeral pk 32 + Poly1305 tag 16 */
/* Largest file seal/unseal accept: secrets, not bulk data (held in memory). */
#define MSE_SEAL_MAX_INPUT ((size_t)64 << 20)

_Static_assert(MSE_SEAL_PK_BYTES == crypto_box_PUBLICKEYBYTES, "X25519 public key");
_Static_assert(MSE_SEAL_SK_BYTES == crypto_box_SECRETKEYBYTES, "X25519 private key");
_Static_assert(MSE_SEAL_OVERHEAD == crypto_box_SEALBYTES, "crypto_box_seal overhead");

struct mse_seal_keypair {
	uint8_t pk[MSE_SEAL_PK_BYTES];
	uint8_t sk[MSE_SEAL_SK_BYTES];
	int has_sk; /* 0 when loaded from a 32-byte public key file */
};

/* New random X25519 key pair. */
void mse_seal_keypair_generate(struct mse_seal_keypair *kp);
void mse_seal_keypair_wipe(struct mse_seal_keypair *kp);

enum mse_seal_key_use {
	MSE_SEAL_KEY_PUBLIC,  /* to seal: a 32-byte file is a public key */
	MSE_SEAL_KEY_PRIVATE, /* to open: a 32-byte file is a private key */
};

/*
 * Loads a 32- or 64-byte key file (see above). For MSE_SEAL_KEY_PRIVATE the
 * private key must be present; a 64-byte file whose halves do not match is
 * refused. Any other size is refused with the size found.
 */
int mse_seal_load_key(const char *path, enum mse_seal_key_use use, struct mse_seal_keypair *kp,
		      struct mse_err *err) MSE_MUST_CHECK;

/*
 * Checks that pk is usable as a receiver key: not all zeros (MSE's
 * certificates from before sealing existed carry zeros in report_data[32:64])
 * and not a low-order point (the shared secret would be all zeros).
 */
int mse_seal_check_public_key(const uint8_t pk[MSE_SEAL_PK_BYTES],
			      struct mse_err *err) MSE_MUST_CHECK;

/* Seals len bytes to pk into a new buffer of len + 48 bytes (*out). */
int mse_seal_seal(const uint8_t pk[MSE_SEAL_PK_BYTES], const uint8_t *in, size_t len,
		  uint8_t **out, size_t *out_len, struct mse_err *err) MSE_MUST_CHECK;
/*
 * Opens a sealed buffer with kp (which must have its private key) into a new
 * buffer (*out, len - 48 bytes; free with mse_file_free_secret).
 */
int mse_seal_open(const struct mse_seal_keypair *kp, const uint8_t *in, size_t len,
		  uint8_t **out, size_t *out_len, struct mse_err *err) MSE_MUST_CHECK;

#endif
