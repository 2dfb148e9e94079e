/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for what mse_pccs parses from a PCCS answer: the CRL body
 * (DER, hex text or PEM), the percent-encoded issuer-chain header, and the
 * RFC 3339 dates. The first byte picks the parser.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/pccs.h"
#include "attest/tcb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mse_err err;
	uint8_t *out;
	size_t n;

	if (size < 1)
		return 0;
	out = malloc(size + 1);
	if (!out)
		return 0;
	switch (data[0] % 3) {
	case 0:
		(void)mse_pccs_crl_to_der(data + 1, size - 1, out, size, &n, &err);
		break;
	case 1:
		(void)mse_pccs_url_decode((const char *)data + 1, size - 1, (char *)out, size, &n);
		break;
	default: {
		char *s = malloc(size);
		time_t t;

		if (s) {
			memcpy(s, data + 1, size - 1);
			s[size - 1] = '\0';
			(void)mse_tcb_parse_time(s, &t);
			free(s);
		}
		break;
	}
	}
	free(out);
	return 0;
}
