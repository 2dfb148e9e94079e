/* SPDX-License-Identifier: Apache-2.0 */
/* mse unseal — open a sealed file with an X25519 private key. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/file.h"
#include "crypto/seal.h"

static void usage(void)
{
	puts("Usage: mse unseal --input FILE --private-key KEY --output FILE\n"
	     "\n"
	     "Opens a file sealed with `mse seal` (or PyNaCl SealedBox, libsodium\n"
	     "crypto_box_seal).\n"
	     "\n"
	     "  --input FILE        the sealed file\n"
	     "  --private-key KEY   a 32-byte X25519 private key file, or the 64-byte pair\n"
	     "                      (public || private) from `mse keygen --asymmetric`\n"
	     "  --output FILE       the plaintext (never overwritten; mode 0600)\n"
	     "  -h, --help          this help\n"
	     "\n"
	     "A wrong key or a modified file is reported and nothing is written.\n"
	     "\n"
	     "Exit status: 0 success, 1 failure, 2 usage error.");
}

int cmd_unseal(int argc, char **argv)
{
	static const struct option opts[] = {
		{"input", required_argument, NULL, 'i'},
		{"private-key", required_argument, NULL, 'k'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *input = NULL, *keyfile = NULL, *output = NULL;
	struct mse_seal_keypair kp;
	struct mse_err err;
	uint8_t *in = NULL, *plain = NULL;
	size_t in_len = 0, plain_len = 0;
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
		case 'k':
			keyfile = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			usage();
			return MSE_EXIT_OK;
		default:
			return cli_usage_error("unseal", "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("unseal", "unexpected argument '%s'", argv[optind]);
	if (!input || !keyfile || !output)
		return cli_usage_error("unseal", "--input, --private-key and --output are required");
	if (mse_seal_load_key(keyfile, MSE_SEAL_KEY_PRIVATE, &kp, &err) != 0)
		goto out;
	if (mse_file_read(input, MSE_SEAL_MAX_INPUT + MSE_SEAL_OVERHEAD, &in, &in_len, &err) != 0)
		goto out;
	if (mse_seal_open(&kp, in, in_len, &plain, &plain_len, &err) != 0) {
		mse_err_file(&err, input);
		goto out;
	}
	if (mse_file_write_new(output, plain, plain_len, MSE_MODE_SECRET, &err) != 0)
		goto out;
	fprintf(stderr, "unsealed %zu bytes into %s\n", plain_len, output);
	rc = 0;
out:
	mse_seal_keypair_wipe(&kp);
	free(in);
	mse_file_free_secret(plain, plain_len);
	return rc == 0 ? MSE_EXIT_OK : cli_fail("unseal", &err);
}
