/* SPDX-License-Identifier: Apache-2.0 */
/* mse keygen — a symmetric code key, an X25519 key pair, or an SGX enclave signer key. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cli/cli.h"
#include "common/file.h"
#include "common/hex.h"
#include "crypto/codefile.h"
#include "crypto/seal.h"
#include "operator/gramine.h"

static void usage(void)
{
	puts("Usage: mse keygen (--symmetric | --asymmetric | --sgx-signer) --output FILE\n"
	     "                  [--public-output FILE]\n"
	     "\n"
	     "Creates a new random key file (mode 0600; an existing file is never overwritten).\n"
	     "\n"
	     "  --symmetric           32 raw bytes: a code key for `mse package --key` and\n"
	     "                        `mse decrypt` (XSalsa20-Poly1305)\n"
	     "  --asymmetric          64 raw bytes: an X25519 public key || private key, for\n"
	     "                        `mse seal --receiver-public-key` and `mse unseal`\n"
	     "  --sgx-signer          an SGX enclave signer: an RSA-3072 private key with\n"
	     "                        public exponent 3 (PEM), for 'mse spawn --sgx\n"
	     "                        --signer-key' and gramine-sgx-sign; its MRSIGNER is\n"
	     "                        printed in hex on stdout. mse-c has no built-in key.\n"
	     "  --output FILE         where to write the key\n"
	     "  --public-output FILE  with --asymmetric: also write the 32-byte public key\n"
	     "                        (mode 0644), the part to hand to whoever seals to you\n"
	     "  -h, --help            this help\n"
	     "\n"
	     "With --asymmetric the public key is also printed in hex on stdout.\n"
	     "\n"
	     "Exit status: 0 success, 1 failure (e.g. FILE exists), 2 usage error.");
}

int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"symmetric", no_argument, NULL, 's'}, {"asymmetric", no_argument, NULL, 'a'},
		{"sgx-signer", no_argument, NULL, 'g'},
		{"output", required_argument, NULL, 'o'},
		{"public-output", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
	};
	const char *output = NULL, *pub_output = NULL;
	int mode = 0, c, rc = MSE_EXIT_FAIL;
	struct mse_err err;
	uint8_t key[64];

	mse_err_clear(&err);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
		case 'a':
		case 'g':
			if (mode && mode != c)
				return cli_usage_error("keygen", "choose one of --symmetric, "
								 "--asymmetric and --sgx-signer");
			mode = c;
			break;
		case 'o':
			output = optarg;
			break;
		case 'p':
			pub_output = optarg;
			break;
		case 'h':
			usage();
			return MSE_EXIT_OK;
		default:
			return cli_usage_error("keygen", "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("keygen", "unexpected argument '%s'", argv[optind]);
	if (!mode)
		return cli_usage_error("keygen", "--symmetric, --asymmetric or --sgx-signer is required");
	if (!output)
		return cli_usage_error("keygen", "--output FILE is required");
	if (pub_output && mode != 'a')
		return cli_usage_error("keygen", "--public-output needs --asymmetric");
	if (mode == 'g') {
		uint8_t mrsigner[32];
		char hex[65];

		if (mse_gramine_new_signer(output, mrsigner, &err) != 0)
			goto out;
		if (mse_hex_encode(hex, sizeof(hex), mrsigner, 32) == 0)
			printf("%s\n", hex);
		fprintf(stderr, "wrote an SGX enclave signer (RSA-3072, exponent 3) to %s; the line "
				"above is its MRSIGNER\n",
			output);
	} else if (mode == 's') {
		randombytes_buf(key, MSE_CODEFILE_KEY_BYTES);
		if (mse_file_write_new(output, key, MSE_CODEFILE_KEY_BYTES, MSE_MODE_SECRET,
				       &err) != 0)
			goto out;
		fprintf(stderr, "wrote a 32-byte code key to %s\n", output);
	} else {
		struct mse_seal_keypair kp;
		char hex[2 * MSE_SEAL_PK_BYTES + 1];

		mse_seal_keypair_generate(&kp);
		memcpy(key, kp.pk, 32);
		memcpy(key + 32, kp.sk, 32);
		mse_seal_keypair_wipe(&kp);
		if (mse_file_write_new(output, key, 64, MSE_MODE_SECRET, &err) != 0)
			goto out;
		if (pub_output &&
		    mse_file_write_new(pub_output, key, 32, MSE_MODE_PUBLIC, &err) != 0)
			goto out;
		if (mse_hex_encode(hex, sizeof(hex), key, 32) == 0)
			printf("%s\n", hex);
		fprintf(stderr, "wrote an X25519 key pair (public || private, 64 bytes) to %s\n",
			output);
	}
	rc = MSE_EXIT_OK;
out:
	sodium_memzero(key, sizeof(key));
	return rc == MSE_EXIT_OK ? rc : cli_fail("keygen", &err);
}
