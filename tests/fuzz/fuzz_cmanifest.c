/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the coordinator's POST /manifest body
 * (mse_cmanifest_parse: JSON, every field, base64url sealed boxes) and the
 * signature header (mse_coord_parse_sig, from the input's first 128 bytes).
 */
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "attest/cmanifest.h"
#include "coordinator/coordinator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mse_cmanifest m;
	struct mse_err err;
	uint8_t sig[64];

	mse_err_clear(&err);
	if (mse_cmanifest_parse(data, size, &m, &err) == 0) {
		uint8_t a[32] = {0};

		(void)mse_cmanifest_match(&m, a, a, 0, 0, &err);
		mse_cmanifest_free(&m);
	}
	(void)mse_coord_parse_sig((const char *)data, size < 128 ? size : 128, sig, &err);
	return 0;
}
