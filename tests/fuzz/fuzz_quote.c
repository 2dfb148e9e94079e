/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer: the DCAP quote parser (src/attest/quote.c): SGX v3-v5, TDX v4/v5 (TD report 1.0/1.5). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/quote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mse_quote q;
	struct mse_err e;
	/* An exact-size copy so ASan catches any read past the end. */
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (mse_quote_parse(&q, copy, size, 0, &e) == 0) {
		/* Every borrowed span must lie inside the input. */
		if (q.cert_data < copy || q.cert_data + q.cert_len > copy + size || q.qe_auth + q.qe_auth_len > copy + size ||
		    q.len + q.trailing != size)
			abort();
		if (q.signed_data != copy || q.signed_len > size)
			abort();
		if (mse_quote_is_tdx(&q)) {
			/* TDX: a TD report of the size its body type says, never an SGX body. */
			size_t want = q.body_type == MSE_QUOTE_BODY_TD15 ? MSE_TDX15_REPORT_BODY_SIZE
									 : MSE_TDX10_REPORT_BODY_SIZE;

			if (q.td.v15 != (q.body_type == MSE_QUOTE_BODY_TD15) ||
			    q.signed_len != MSE_QUOTE_HEADER_SIZE + (q.version == 5 ? MSE_QUOTE_BODY_DESC_SIZE : 0) + want)
				abort();
			(void)mse_quote_td_attributes(&q.td);
		} else {
			(void)mse_quote_is_debug(&q.body);
		}
	}
	(void)mse_quote_parse(&q, copy, size, MSE_QUOTE_STRICT, &e);
	free(copy);
	return 0;
}
