/* SPDX-License-Identifier: Apache-2.0 */
#include "common/hex.h"

#include <sodium.h>

int mse_hex_encode(char *out, size_t out_size, const uint8_t *in, size_t len)
{
	if (len > (SIZE_MAX - 1) / 2 || out_size < len * 2 + 1)
		return -1;
	sodium_bin2hex(out, out_size, in, len);
	return 0;
}

int mse_hex_decode(uint8_t *out, size_t out_size, size_t *out_len, const char *hex, size_t hex_len)
{
	const char *end = NULL;
	size_t n = 0;

	if (hex_len % 2 != 0)
		return -1;
	if (sodium_hex2bin(out, out_size, hex, hex_len, NULL, &n, &end) != 0)
		return -1;
	if (end != hex + hex_len)
		return -1;
	*out_len = n;
	return 0;
}

int mse_hex_decode_exact(uint8_t *out, size_t out_len, const char *hex, size_t hex_len)
{
	size_t n = 0;

	if (out_len > SIZE_MAX / 2 || hex_len != out_len * 2)
		return -1;
	if (mse_hex_decode(out, out_len, &n, hex, hex_len) != 0 || n != out_len)
		return -1;
	return 0;
}
