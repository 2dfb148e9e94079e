/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_codefile — MSE code files: one source file encrypted whole with
 * XSalsa20-Poly1305 (libsodium crypto_secretbox, NaCl's "secretbox"), stored
 * as
 *
 *     nonce (24) ‖ tag (16) ‖ ciphertext (same length as the plaintext)
 *
 * which is exactly what PyNaCl's SecretBox.encrypt() returns and what MSE
 * writes to `name.enc` (vector: shared/vectors/mse-code-secretbox/).
 *
 * Memory bound. libsodium 1.0.18 has no streaming secretbox, and the tag
 * precedes the ciphertext, so a file cannot be encrypted or authenticated
 * piecewise: it is held whole, once. Encryption and decryption run in place
 * in a single buffer of MSE_CODEFILE_HEADER_BYTES + size bytes, so the peak
 * memory per file is its size plus 40 bytes. Files larger than
 * MSE_CODEFILE_MAX_PLAIN (1 GiB) are refused with a clear error before
 * anything is read.
 *
 * Ownership: buffers returned by mse_codefile_read_file() are malloc'd and
 * freed by the caller with mse_codefile_buf_free() (which wipes them).
 * Keys are borrowed, never copied, never kept.
 */
#ifndef MSE_CODEFILE_H
#define MSE_CODEFILE_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_CODEFILE_KEY_BYTES 32
#define MSE_CODEFILE_NONCE_BYTES 24
#define MSE_CODEFILE_TAG_BYTES 16
#define MSE_CODEFILE_HEADER_BYTES (MSE_CODEFILE_NONCE_BYTES + MSE_CODEFILE_TAG_BYTES)
/* Largest plaintext accepted for one file (see "Memory bound" above). */
#define MSE_CODEFILE_MAX_PLAIN ((size_t)1 << 30)
/* Suffix of an encrypted file: "app.py" -> "app.py.enc". */
#define MSE_CODEFILE_SUFFIX ".enc"

_Static_assert(MSE_CODEFILE_KEY_BYTES == crypto_secretbox_KEYBYTES, "secretbox key size");
_Static_assert(MSE_CODEFILE_NONCE_BYTES == crypto_secretbox_NONCEBYTES, "secretbox nonce size");
_Static_assert(MSE_CODEFILE_TAG_BYTES == crypto_secretbox_MACBYTES, "secretbox tag size");
_Static_assert(MSE_CODEFILE_HEADER_BYTES == 40, "MSE code file header is nonce(24) || tag(16)");

/*
 * Encrypts in place. buf holds MSE_CODEFILE_HEADER_BYTES bytes of room
 * followed by plain_len bytes of plaintext; on return it holds the whole
 * code file (plain_len + 40 bytes). Returns 0, or -1 if plain_len exceeds
 * MSE_CODEFILE_MAX_PLAIN.
 */
int mse_codefile_seal_inplace(const uint8_t key[MSE_CODEFILE_KEY_BYTES],
			      const uint8_t nonce[MSE_CODEFILE_NONCE_BYTES], uint8_t *buf,
			      size_t plain_len) MSE_MUST_CHECK;

/*
 * Opens a code file of enc_len bytes in place: on success the plaintext is
 * at buf + MSE_CODEFILE_HEADER_BYTES, *plain_len bytes long, and 0 is
 * returned. On failure (too short, wrong key, any modified byte) returns -1,
 * fills err (the caller names the file) and wipes nothing it did not write:
 * the buffer is left as given.
 */
int mse_codefile_open_inplace(const uint8_t key[MSE_CODEFILE_KEY_BYTES], uint8_t *buf,
			      size_t enc_len, size_t *plain_len, struct mse_err *err) MSE_MUST_CHECK;

/*
 * Reads the whole file at path into a new buffer, at offset
 * MSE_CODEFILE_HEADER_BYTES, ready for mse_codefile_seal_inplace (or, with
 * header_room = 0, for mse_codefile_open_inplace). Refuses files over
 * max_len bytes with an error naming the file and the bound. *buf receives
 * the buffer (header_room + *len bytes; free with mse_codefile_buf_free).
 */
int mse_codefile_read_file(const char *path, size_t header_room, size_t max_len, uint8_t **buf,
			   size_t *len, struct mse_err *err) MSE_MUST_CHECK;

/* Wipes then frees a buffer from mse_codefile_read_file. NULL-safe. */
void mse_codefile_buf_free(uint8_t *buf, size_t size);

/*
 * Loads a symmetric code key: a file of exactly 32 raw bytes (what
 * `mse package` and `mse keygen --symmetric` write). Wipe key after use.
 */
int mse_codefile_load_key(const char *path, uint8_t key[MSE_CODEFILE_KEY_BYTES],
			  struct mse_err *err) MSE_MUST_CHECK;

/*
 * Decrypts the code file at in_path and writes the plaintext to out_path
 * (mse_file_write_new, mode 0600: never overwrites). A wrong key or a
 * corrupt file fails with an error naming in_path, and nothing is written.
 */
int mse_codefile_decrypt_file(const uint8_t key[MSE_CODEFILE_KEY_BYTES], const char *in_path,
			      const char *out_path, struct mse_err *err) MSE_MUST_CHECK;

#endif
