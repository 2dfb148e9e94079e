/* SPDX-License-Identifier: Apache-2.0 */
#include "common/b64.h"

#include <sodium.h>

static int variant(enum mse_b64_variant v)
{
	return v == MSE_B64_URL_NOPAD ? sodium_base64_VARIANT_URLSAFE_NO_PADDING
				      : sodium_base64_VARIANT_ORIGINAL;
}

size_t mse_b64_encoded_size(size_t len, enum mse_b64_variant v)
{
	return sodium_base64_ENCODED_LEN(len, variant(v));
}

int mse_b64_encode(char *out, size_t out_size, const uint8_t *in, size_t len,
		   enum mse_b64_variant v)
{
	if (len > SIZE_MAX / 4 * 3 - 3 || out_size < mse_b64_encoded_size(len, v))
		return -1;
	sodium_bin2base64(out, out_size, in, len, variant(v));
	return 0;
}

static int decode(uint8_t *out, size_t out_size, size_t *out_len, const char *text,
		  size_t text_len, enum mse_b64_variant v, const char *ignore)
{
	const char *end = NULL;
	size_t n = 0;

	if (sodium_base642bin(out, out_size, text, text_len, ignore, &n, &end, variant(v)) != 0)
		return -1;
	if (end != text + text_len)
		return -1;
	*out_len = n;
	return 0;
}

int mse_b64_decode(uint8_t *out, size_t out_size, size_t *out_len, const char *text,
		   size_t text_len, enum mse_b64_variant v)
{
	return decode(out, out_size, out_len, text, text_len, v, NULL);
}

int mse_b64_decode_ws(uint8_t *out, size_t out_size, size_t *out_len, const char *text,
		      size_t text_len, enum mse_b64_variant v)
{
	return decode(out, out_size, out_len, text, text_len, v, " \t\r\n");
}
