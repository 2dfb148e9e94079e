/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/provproof.h"

#include <string.h>

#include <sodium.h>

#include "common/hex.h"

#define LABEL "mse-c provisioning v1\n"

void mse_provproof_nonce(char out[MSE_PROVPROOF_NONCE_HEX + 1])
{
	unsigned char b[MSE_PROVPROOF_NONCE_HEX / 2];

	randombytes_buf(b, sizeof(b));
	if (mse_hex_encode(out, MSE_PROVPROOF_NONCE_HEX + 1, b, sizeof(b)) != 0)
		out[0] = 0;
}

int mse_provproof_nonce_ok(const char *s, size_t len)
{
	if (len != MSE_PROVPROOF_NONCE_HEX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

void mse_provproof_compute(const char *uuid, const char *state, const char *nonce,
			   char out[MSE_PROVPROOF_HEX + 1])
{
	unsigned char key[crypto_auth_hmacsha256_KEYBYTES], mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;

	crypto_hash_sha256(key, (const unsigned char *)uuid, strlen(uuid));
	crypto_auth_hmacsha256_init(&st, key, sizeof(key));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)LABEL, strlen(LABEL));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)state, strlen(state));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)"\n", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)nonce, strlen(nonce));
	crypto_auth_hmacsha256_final(&st, mac);
	if (mse_hex_encode(out, MSE_PROVPROOF_HEX + 1, mac, sizeof(mac)) != 0)
		out[0] = 0;
	sodium_memzero(&st, sizeof(st));
}

int mse_provproof_check(const char *uuid, const char *state, const char *nonce, const char *proof,
			size_t proof_len)
{
	char want[MSE_PROVPROOF_HEX + 1];

	if (proof_len != MSE_PROVPROOF_HEX)
		return 0;
	mse_provproof_compute(uuid, state, nonce, want);
	return want[0] && sodium_memcmp(want, proof, MSE_PROVPROOF_HEX) == 0;
}
