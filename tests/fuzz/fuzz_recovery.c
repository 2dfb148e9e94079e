/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the recovery blob a coordinator in the recovery-needed
 * state parses (POST /recover, mse_coord_recover). The input is the blob's
 * JSON; the harness seals it to the coordinator's key and signs it with the
 * owner's key, as `mse coordinator recover` does, so every input reaches the
 * parser behind those two checks.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/file.h"
#include "coordinator/coordinator.h"
#include "crypto/seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mse_coord *g_co;
static uint8_t g_sk[64], g_epk[32];

static int setup(void)
{
	static char dir[] = "/tmp/fuzz-recovery.XXXXXX";
	struct mse_coord_config c;
	char path[128];
	FILE *f;

	if (sodium_init() < 0 || !mkdtemp(dir))
		return -1;
	memset(&c, 0, sizeof(c));
	crypto_sign_keypair(c.owner_pk, g_sk);
	crypto_box_keypair(c.enclave_pk, c.enclave_sk);
	memcpy(g_epk, c.enclave_pk, 32);
	randombytes_buf(c.state_key, 32);
	c.state_dir = dir;
	c.allow_recovery = 1;
	/* A state sealed elsewhere: it does not open, recovery is needed. */
	snprintf(path, sizeof(path), "%s/%s", dir, MSE_COORD_STATE_FILE);
	if (!(f = fopen(path, "wb")))
		return -1;
	for (int i = 0; i < 64; i++)
		fputc(i, f);
	fclose(f);
	return mse_coord_new(&c, &g_co, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *body = NULL, sig[64];
	size_t bl = 0;
	struct mse_err err;
	int st;

	if (!g_co && setup() != 0)
		abort();
	if (size > (1u << 20))
		return 0;
	mse_err_clear(&err);
	if (mse_seal_seal(g_epk, data, size, &body, &bl, &err) != 0)
		return 0;
	crypto_sign_detached(sig, NULL, body, bl, g_sk);
	(void)mse_coord_recover(g_co, body, bl, sig, &st, &err);
	free(body);
	return 0;
}
