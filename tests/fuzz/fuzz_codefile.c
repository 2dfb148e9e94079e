/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: MSE code file parsing (mse_codefile_open_inplace).
 * Input: key (32 bytes) ‖ code file bytes. Most inputs fail authentication;
 * the point is that no length, no prefix and no tag ever reads out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/codefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t key[MSE_CODEFILE_KEY_BYTES], *buf;
	size_t plain = 0;
	struct mse_err err;

	if (sodium_init() < 0 || size < sizeof(key))
		return 0;
	memcpy(key, data, sizeof(key));
	/* Exactly sized copy so ASan sees any over-read. */
	buf = malloc(size - sizeof(key) + 1);
	if (!buf)
		return 0;
	memcpy(buf, data + sizeof(key), size - sizeof(key));
	mse_err_clear(&err);
	if (mse_codefile_open_inplace(key, buf, size - sizeof(key), &plain, &err) == 0 &&
	    plain + MSE_CODEFILE_HEADER_BYTES != size - sizeof(key))
		abort();
	free(buf);
	return 0;
}
