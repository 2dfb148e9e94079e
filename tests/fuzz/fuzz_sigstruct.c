/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer: the SGX SIGSTRUCT parser and verifier (src/attest/sigstruct.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/sigstruct.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mse_sigstruct s;
	struct mse_err e;
	/* An exact-size copy: any over-read lands in ASan's redzone. */
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (mse_sigstruct_parse(&s, copy, size, &e) == 0)
		(void)mse_sigstruct_verify(&s, &e);
	free(copy);
	return 0;
}
