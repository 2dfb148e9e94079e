/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the coordinator's POST /replica body (mse_coord_parse_replica_req). */
#include <stddef.h>
#include <stdint.h>

#include "coordinator/coordinator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char instance[65];
	struct mse_err err;

	mse_err_clear(&err);
	(void)mse_coord_parse_replica_req(data, size, instance, &err);
	return 0;
}
