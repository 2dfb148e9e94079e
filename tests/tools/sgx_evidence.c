/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test driver for the SGX branch of mse_spawn_write_evidence, which needs an
 * SGX machine to be reached through `mse spawn`: it builds the instance
 * record of an SGX enclave whose captured certificate is STATE_DIR/ratls.pem
 * and writes OUT_DIR/evidence.json with collateral fetched from PCCS_URL.
 *
 *   sgx_evidence STATE_DIR OUT_DIR PCCS_URL SIGNER_PEM
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "operator/instance.h"
#include "operator/spawn.h"

int main(int argc, char **argv)
{
	struct mse_instance inst;
	struct mse_err err = {0};
	char ev[4096], pem[4096];

	if (argc != 5 || sodium_init() < 0) {
		fputs("usage: sgx_evidence STATE_DIR OUT_DIR PCCS_URL SIGNER_PEM\n", stderr);
		return 2;
	}
	memset(&inst, 0, sizeof(inst));
	snprintf(inst.name, sizeof(inst.name), "sgx");
	snprintf(inst.dir, sizeof(inst.dir), "%s", argv[1]);
	snprintf(inst.subject, sizeof(inst.subject), "CN=localhost,O=mse-c");
	snprintf(inst.san, sizeof(inst.san), "localhost");
	snprintf(inst.uuid, sizeof(inst.uuid), "63322f85-1ff8-4483-91ae-f18d7398d157");
	snprintf(inst.application, sizeof(inst.application), "app:app");
	inst.mode = MSE_MODE_SGX;
	inst.expiration = 1714058115;
	inst.size_mb = 4096;
	if (mse_spawn_write_evidence(&inst, argv[2], argv[3], argv[4], ev, sizeof(ev), pem,
				     sizeof(pem), &err) != 0) {
		mse_err_print(&err, "sgx_evidence", stderr);
		return 1;
	}
	printf("%s\n", ev);
	return 0;
}
