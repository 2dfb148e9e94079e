/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/codefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"

int mse_codefile_seal_inplace(const uint8_t key[MSE_CODEFILE_KEY_BYTES],
			      const uint8_t nonce[MSE_CODEFILE_NONCE_BYTES], uint8_t *buf,
			      size_t plain_len)
{
	uint8_t *m = buf + MSE_CODEFILE_HEADER_BYTES;

	if (plain_len > MSE_CODEFILE_MAX_PLAIN)
		return -1;
	/*
	 * crypto_secretbox_detached allows the ciphertext to overlap the
	 * message exactly (libsodium documents in-place operation), and the
	 * nonce is copied first so it may not alias buf.
	 */
	memmove(buf, nonce, MSE_CODEFILE_NONCE_BYTES);
	return crypto_secretbox_detached(m, buf + MSE_CODEFILE_NONCE_BYTES, m, plain_len, buf,
					 key) == 0
		       ? 0
		       : -1;
}

int mse_codefile_open_inplace(const uint8_t key[MSE_CODEFILE_KEY_BYTES], uint8_t *buf,
			      size_t enc_len, size_t *plain_len, struct mse_err *err)
{
	struct mse_buf r;
	const uint8_t *nonce, *tag, *ct;
	size_t n;

	*plain_len = 0;
	mse_buf_init(&r, buf, enc_len);
	if (mse_buf_bytes(&r, MSE_CODEFILE_NONCE_BYTES, &nonce) != 0 ||
	    mse_buf_bytes(&r, MSE_CODEFILE_TAG_BYTES, &tag) != 0)
		return mse_err_set(err,
				   "not an MSE code file: %zu bytes, expected at least %d "
				   "(nonce 24 + tag 16)",
				   enc_len, MSE_CODEFILE_HEADER_BYTES);
	n = mse_buf_remaining(&r);
	if (n > MSE_CODEFILE_MAX_PLAIN)
		return mse_err_set(err, "code file too large: %zu bytes, limit %zu", n,
				   MSE_CODEFILE_MAX_PLAIN);
	if (mse_buf_bytes(&r, n, &ct) != 0)
		return mse_err_set(err, "internal: short code file");
	/* In place: m == c. On failure libsodium writes nothing to m. */
	if (crypto_secretbox_open_detached((uint8_t *)ct, ct, tag, n, nonce, key) != 0)
		return mse_err_set(err, "cannot decrypt: wrong key or corrupt file "
					"(XSalsa20-Poly1305 tag does not verify)");
	*plain_len = n;
	return 0;
}

int mse_codefile_read_file(const char *path, size_t header_room, size_t max_len, uint8_t **buf,
			   size_t *len, struct mse_err *err)
{
	struct stat st;
	uint8_t *p = NULL;
	size_t size, got = 0;
	int fd, rc = -1;

	*buf = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mse_err_field(err, path, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		mse_err_field(err, path, "not a regular file");
		goto out;
	}
	if ((uint64_t)st.st_size > max_len) {
		mse_err_field(err, path,
			      "too large: %lld bytes, limit %zu bytes (a code file is encrypted "
			      "whole in memory)",
			      (long long)st.st_size, max_len);
		goto out;
	}
	size = (size_t)st.st_size;
	p = malloc(header_room + size + 1);
	if (!p) {
		mse_err_field(err, path, "out of memory for %zu bytes", size);
		goto out;
	}
	while (got < size) {
		ssize_t k = read(fd, p + header_room + got, size - got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			mse_err_field(err, path, "cannot read: %s", strerror(errno));
			goto out;
		}
		if (k == 0) {
			mse_err_field(err, path, "file shrank while being read");
			goto out;
		}
		got += (size_t)k;
	}
	*buf = p;
	*len = size;
	p = NULL;
	rc = 0;
out:
	if (p)
		mse_codefile_buf_free(p, header_room + got);
	close(fd);
	return rc;
}

void mse_codefile_buf_free(uint8_t *buf, size_t size)
{
	if (!buf)
		return;
	sodium_memzero(buf, size);
	free(buf);
}

int mse_codefile_decrypt_file(const uint8_t key[MSE_CODEFILE_KEY_BYTES], const char *in_path,
			      const char *out_path, struct mse_err *err)
{
	uint8_t *buf = NULL;
	size_t len = 0, plain = 0;
	int rc = -1;

	if (mse_codefile_read_file(in_path, 0, MSE_CODEFILE_MAX_PLAIN + MSE_CODEFILE_HEADER_BYTES,
				   &buf, &len, err) != 0)
		return -1;
	if (mse_codefile_open_inplace(key, buf, len, &plain, err) != 0) {
		mse_err_file(err, in_path);
		goto out;
	}
	if (mse_file_write_new(out_path, buf + MSE_CODEFILE_HEADER_BYTES, plain, MSE_MODE_SECRET,
			       err) != 0)
		goto out;
	rc = 0;
out:
	mse_codefile_buf_free(buf, len);
	return rc;
}

int mse_codefile_load_key(const char *path, uint8_t key[MSE_CODEFILE_KEY_BYTES],
			  struct mse_err *err)
{
	uint8_t *data = NULL;
	size_t len = 0;

	if (mse_file_read(path, 4096, &data, &len, err) != 0)
		return -1;
	if (len != MSE_CODEFILE_KEY_BYTES) {
		mse_file_free_secret(data, len);
		return mse_err_field(err, path,
				     "not a code key: expected %d raw bytes, got %zu%s",
				     MSE_CODEFILE_KEY_BYTES, len,
				     len == 64 ? " (an X25519 key pair? code keys are symmetric)"
					       : "");
	}
	memcpy(key, data, MSE_CODEFILE_KEY_BYTES);
	mse_file_free_secret(data, len);
	return 0;
}
