/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: what a replica parses from the coordinator's answer
 * (mse_replica_parse: JSON, hex keys, base64url sealed box, PEM presence).
 */
#include <stddef.h>
#include <stdint.h>

#include "enclave/replica.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mse_replica_prov p;
	struct mse_err err;

	mse_err_clear(&err);
	if (mse_replica_parse(data, size, &p, &err) == 0)
		mse_replica_prov_free(&p);
	return 0;
}
