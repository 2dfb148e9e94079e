/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enclavetool — exposes the enclave-side building blocks (simulation
 * measurement, enclave key derivation, RA-TLS certificate creation, quote
 * providers) to the Python tests, which check the results independently.
 *
 *   enclavetool treehash PATH
 *   enclavetool measure BOOT_SHA256_HEX SUBJECT SAN EXPIRATION SIZE APP_ID APPLICATION PATH
 *   enclavetool filehash PATH
 *   enclavetool enclave-key SEALING_KEY_HEX          -> "sk_hex pk_hex"
 *   enclavetool ratls (gramine DIR | sim DIR MRENCLAVE_HEX) SUBJECT SAN EXPIRATION OUT_CERT OUT_KEY
 *       (the enclave key comes from the provider's sealing key; prints pk hex)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "attest/simmeasure.h"
#include "common/file.h"
#include "common/hex.h"
#include "attest/quoter.h"
#include "attest/ratlscert.h"

static void print_hex(const uint8_t *p, size_t n)
{
	char h[257];

	if (mse_hex_encode(h, sizeof(h), p, n) == 0)
		fputs(h, stdout);
}

static int fail(const struct mse_err *e)
{
	mse_err_print(e, "enclavetool", stderr);
	return 1;
}

int main(int argc, char **argv)
{
	struct mse_err err;
	uint8_t h[32];

	mse_err_clear(&err);
	if (sodium_init() < 0 || argc < 2)
		return 2;
	if (strcmp(argv[1], "treehash") == 0 && argc == 3) {
		struct stat st;

		if (stat(argv[2], &st) != 0)
			return 1;
		if ((S_ISDIR(st.st_mode) ? mse_simmeasure_tree_dir(argv[2], h, &err)
					 : mse_simmeasure_tree_tar(argv[2], h, &err)) != 0)
			return fail(&err);
		print_hex(h, 32);
		putchar('\n');
		return 0;
	}
	if (strcmp(argv[1], "filehash") == 0 && argc == 3) {
		if (mse_simmeasure_file_sha256(argv[2], h, &err) != 0)
			return fail(&err);
		print_hex(h, 32);
		putchar('\n');
		return 0;
	}
	if (strcmp(argv[1], "measure") == 0 && argc == 10) {
		uint8_t boot[32];
		struct mse_sim_args a = {argv[3], argv[4], strtoll(argv[5], NULL, 10),
					 strtoull(argv[6], NULL, 10), argv[7], argv[8]};

		if (mse_hex_decode_exact(boot, 32, argv[2], strlen(argv[2])) != 0)
			return 2;
		if (mse_simmeasure_compute(boot, &a, argv[9], h, &err) != 0)
			return fail(&err);
		print_hex(h, 32);
		putchar('\n');
		return 0;
	}
	if (strcmp(argv[1], "enclave-key") == 0 && argc == 3) {
		uint8_t seal[64], sk[32], pk[32];
		size_t n;

		if (mse_hex_decode(seal, sizeof(seal), &n, argv[2], strlen(argv[2])) != 0)
			return 2;
		if (mse_quoter_derive_enclave_key(seal, n, sk, pk, &err) != 0)
			return fail(&err);
		print_hex(sk, 32);
		putchar(' ');
		print_hex(pk, 32);
		putchar('\n');
		return 0;
	}
	if (strcmp(argv[1], "ratls") == 0 && argc >= 8) {
		struct mse_quoter *p = NULL;
		struct mse_ratlscert c;
		uint8_t sk[32], pk[32], mre[32];
		int i = 3, rc = 1;

		if (strcmp(argv[2], "gramine") == 0) {
			if (mse_quoter_gramine(argv[i++], &p, &err) != 0)
				return fail(&err);
		} else if (strcmp(argv[2], "sim") == 0 && argc == 10) {
			if (mse_hex_decode_exact(mre, 32, argv[4], strlen(argv[4])) != 0)
				return 2;
			if (mse_quoter_sim(argv[3], mre, &p, &err) != 0)
				return fail(&err);
			i = 5;
		} else {
			return 2;
		}
		if (argc != i + 5) {
			mse_quoter_free(p);
			return 2;
		}
		struct mse_ratlscert_params prm = {argv[i], argv[i + 1], strtoll(argv[i + 2], NULL, 10)};
		if (mse_quoter_enclave_key(p, sk, pk, &err) != 0 ||
		    mse_ratlscert_create(p, &prm, pk, &c, &err) != 0) {
			mse_quoter_free(p);
			return fail(&err);
		}
		if (mse_file_write_atomic(argv[i + 3], c.cert_pem, strlen(c.cert_pem), 0644, &err) ==
			    0 &&
		    mse_file_write_atomic(argv[i + 4], c.key_pem, c.key_pem_len, 0600, &err) == 0) {
			print_hex(pk, 32);
			putchar('\n');
			rc = 0;
		} else {
			fail(&err);
		}
		sodium_memzero(sk, sizeof(sk));
		mse_ratlscert_free(&c);
		mse_quoter_free(p);
		return rc;
	}
	fputs("enclavetool: bad usage (see the source)\n", stderr);
	return 2;
}
