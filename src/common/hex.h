/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_hex — hexadecimal, constant-time (libsodium's sodium_bin2hex /
 * sodium_hex2bin do not branch on the data), so it is safe for keys.
 */
#ifndef MSE_HEX_H
#define MSE_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Writes 2*len hex digits and a NUL into out (out_size >= 2*len+1). */
int mse_hex_encode(char *out, size_t out_size, const uint8_t *in, size_t len) MSE_MUST_CHECK;
/*
 * Decodes exactly out_len bytes from hex text of exactly 2*out_len digits
 * (upper or lower case, no separators). Returns 0, or -1 on any other input.
 */
int mse_hex_decode_exact(uint8_t *out, size_t out_len, const char *hex, size_t hex_len) MSE_MUST_CHECK;
/* Decodes up to out_size bytes; *out_len receives the count. -1 on bad input. */
int mse_hex_decode(uint8_t *out, size_t out_size, size_t *out_len, const char *hex, size_t hex_len) MSE_MUST_CHECK;

#endif
