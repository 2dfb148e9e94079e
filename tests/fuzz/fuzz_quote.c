/* libFuzzer: the DCAP quote parser (src/attest/quote.c). */
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
		(void)mse_quote_is_debug(&q.body);
	}
	(void)mse_quote_parse(&q, copy, size, MSE_QUOTE_STRICT, &e);
	free(copy);
	return 0;
}
