/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_b64 — base64 (RFC 4648 §4) and base64url without padding (§5, as MSE
 * sends sealed secrets), constant-time through libsodium.
 */
#ifndef MSE_B64_H
#define MSE_B64_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum mse_b64_variant {
	MSE_B64_STD,        /* '+', '/', '=' padding */
	MSE_B64_URL_NOPAD,  /* '-', '_', no padding */
};

/* Size of the encoding of len bytes, NUL included. */
size_t mse_b64_encoded_size(size_t len, enum mse_b64_variant v);
int mse_b64_encode(char *out, size_t out_size, const uint8_t *in, size_t len,
		   enum mse_b64_variant v) MSE_MUST_CHECK;
/*
 * Decodes the whole of text (no whitespace allowed) into out. Returns 0 and
 * sets *out_len, or -1 if the text is not valid in that variant or does not
 * fit. Decoded size is at most text_len * 3 / 4.
 */
int mse_b64_decode(uint8_t *out, size_t out_size, size_t *out_len, const char *text,
		   size_t text_len, enum mse_b64_variant v) MSE_MUST_CHECK;
/* As mse_b64_decode, but skips ASCII whitespace (PEM bodies, JSON blobs). */
int mse_b64_decode_ws(uint8_t *out, size_t out_size, size_t *out_len, const char *text,
		      size_t text_len, enum mse_b64_variant v) MSE_MUST_CHECK;

#endif
