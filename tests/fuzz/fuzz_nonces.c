/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer: nonce map JSON (mse_nonces_parse_json), then a round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/nonces.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mse_nonces *n = NULL, *back = NULL;
	struct mse_err err;
	char *json = NULL;

	mse_err_clear(&err);
	if (mse_nonces_parse_json((const char *)data, size, "fuzz.json", &n, &err) != 0)
		return 0;
	/* What we accept, we can write, and read back to the same map. */
	if (mse_nonces_to_json(n, &json, &err) != 0 ||
	    mse_nonces_parse_json(json, strlen(json), "back", &back, &err) != 0 ||
	    mse_nonces_count(back) != mse_nonces_count(n))
		abort();
	for (size_t i = 0; i < mse_nonces_count(n); i++) {
		const struct mse_nonce_entry *a = mse_nonces_at(n, i), *b = mse_nonces_at(back, i);

		if (strcmp(a->path, b->path) || memcmp(a->nonce, b->nonce, sizeof(a->nonce)) ||
		    a->has_sha256 != b->has_sha256)
			abort();
	}
	free(json);
	mse_nonces_free(back);
	mse_nonces_free(n);
	return 0;
}
