/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the configuration server's POST body handling
 * (mse_confserver_parse: JSON, uuid, hex key, base64url sealed box, sealed
 * JSON object, PEM key). The enclave key is fixed so that seeds can carry
 * real sealed boxes; the uuid is the corpus's.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "enclave/confserver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t sk[32], pk[32];
	static int init;
	struct mse_confserver_config cfg = {
		"63322f85-1ff8-4483-91ae-f18d7398d157", "/nonexistent", "/nonexistent/m",
		"/nonexistent/s", "/nonexistent/ss", sk, pk, 0, (int)(size & 1), 0};
	struct mse_confserver_request p;
	struct mse_err err;
	int status;

	if (!init) {
		if (sodium_init() < 0)
			return 0;
		/* sk = 0x01 * 32, the key the seed corpus was sealed to. */
		memset(sk, 1, sizeof(sk));
		crypto_scalarmult_base(pk, sk);
		init = 1;
	}
	mse_err_clear(&err);
	if (mse_confserver_parse(&cfg, data, size, &p, &status, &err) == 0)
		mse_confserver_request_free(&p);
	return 0;
}
