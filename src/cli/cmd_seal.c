/* SPDX-License-Identifier: Apache-2.0 */
/* mse seal — seal a file to an enclave's (or anyone's) X25519 key. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/file.h"
#include "common/hex.h"
#include "attest/ratls.h"
#include "crypto/seal.h"

static void usage(void)
{
	puts("Usage: mse seal --input FILE (--receiver-enclave RATLS.pem | --receiver-public-key "
	     "KEY)\n"
	     "                --output FILE\n"
	     "\n"
	     "Encrypts FILE so that only the holder of an X25519 private key can read it\n"
	     "(libsodium crypto_box_seal, the format MSE sends as app_sealed_secrets).\n"
	     "\n"
	     "  --input FILE                the secrets to seal (at most 64 MiB)\n"
	     "  --receiver-enclave PEM      an RA-TLS certificate: the key is report_data[32:64]\n"
	     "                              of its quote. Use the trusted ratls.pem written by\n"
	     "                              `mse verify`; seal still checks that report_data[0:32]\n"
	     "                              is SHA-256(0x04||X||Y) of the certificate's key\n"
	     "  --receiver-public-key KEY   a 32-byte public key file, or a 64-byte key pair\n"
	     "                              from `mse keygen --asymmetric`\n"
	     "  --output FILE               the sealed file (never overwritten; mode 0600)\n"
	     "  -h, --help                  this help\n"
	     "\n"
	     "A zero or invalid X25519 key is refused (MSE certificates from before sealing carry\n"
	     "zeros there). The output is 48 bytes longer than the input.\n"
	     "\n"
	     "Exit status: 0 success, 1 failure, 2 usage error.");
}

int cmd_seal(int argc, char **argv)
{
	static const struct option opts[] = {
		{"input", required_argument, NULL, 'i'},
		{"receiver-enclave", required_argument, NULL, 'e'},
		{"receiver-public-key", required_argument, NULL, 'k'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *input = NULL, *enclave = NULL, *pubkey = NULL, *output = NULL;
	struct mse_seal_keypair kp;
	struct mse_err err;
	uint8_t *in = NULL, *sealed = NULL;
	size_t in_len = 0, sealed_len = 0;
	int c, rc = -1;

	mse_err_clear(&err);
	memset(&kp, 0, sizeof(kp));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			input = optarg;
			break;
		case 'e':
			enclave = optarg;
			break;
		case 'k':
			pubkey = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			usage();
			return MSE_EXIT_OK;
		default:
			return cli_usage_error("seal", "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("seal", "unexpected argument '%s'", argv[optind]);
	if (!input || !output)
		return cli_usage_error("seal", "--input and --output are required");
	if (!!enclave == !!pubkey)
		return cli_usage_error("seal", "give exactly one of --receiver-enclave and "
					       "--receiver-public-key");
	if (enclave) {
		if (mse_ratls_seal_pk(enclave, kp.pk, &err) != 0)
			goto out;
	} else if (mse_seal_load_key(pubkey, MSE_SEAL_KEY_PUBLIC, &kp, &err) != 0) {
		goto out;
	}
	if (mse_file_read(input, MSE_SEAL_MAX_INPUT, &in, &in_len, &err) != 0)
		goto out;
	if (mse_seal_seal(kp.pk, in, in_len, &sealed, &sealed_len, &err) != 0 ||
	    mse_file_write_new(output, sealed, sealed_len, MSE_MODE_SECRET, &err) != 0)
		goto out;
	{
		char hex[65];

		if (mse_hex_encode(hex, sizeof(hex), kp.pk, 32) != 0)
			hex[0] = 0;
		fprintf(stderr, "sealed %zu bytes to X25519 key %s into %s\n", in_len, hex,
			output);
	}
	rc = 0;
out:
	mse_seal_keypair_wipe(&kp);
	mse_file_free_secret(in, in_len);
	free(sealed);
	return rc == 0 ? MSE_EXIT_OK : cli_fail("seal", &err);
}
