/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer: RA-TLS certificates (src/attest/ratls.c), then the quote inside. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/quote.h"
#include "attest/ratls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mse_ratls c;
	struct mse_quote q;
	struct mse_err e;
	uint8_t rd[64] = {0};
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (mse_ratls_parse(&c, copy, size, &e) == 0) {
		if (c.quote < c.der || c.quote + c.quote_len > c.der + c.der_len)
			abort();
		if (mse_quote_parse(&q, c.quote, c.quote_len, 0, &e) == 0)
			memcpy(rd, q.body.report_data, 64);
		(void)mse_ratls_check_binding(&c, rd, &e);
		mse_ratls_free(&c);
	}
	free(copy);
	return 0;
}
