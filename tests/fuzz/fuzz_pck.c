/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer: the PCK certificate SGX extension parser (src/attest/pck.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/pck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mse_pck_info info;
	struct mse_err e;
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	(void)mse_pck_parse_ext(&info, copy, size, &e);
	free(copy);
	return 0;
}
