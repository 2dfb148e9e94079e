/* SPDX-License-Identifier: Apache-2.0 */
/* mse decrypt — one .enc file, a directory of them, or an app.tar. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "common/file.h"
#include "crypto/codefile.h"
#include "crypto/package.h"

static void usage(void)
{
	puts("Usage: mse decrypt --key FILE --input PATH --output PATH\n"
	     "\n"
	     "Decrypts MSE code files (XSalsa20-Poly1305: nonce(24) || tag(16) || ciphertext).\n"
	     "\n"
	     "  --key FILE      the 32-byte code key (package_<name>_<ns>.key)\n"
	     "  --input PATH    one NAME.enc file       -> --output is the plaintext file;\n"
	     "                  a directory of .enc files, an app.tar, or a whole package\n"
	     "                  (its app.tar digest is checked against package.json first)\n"
	     "                                          -> --output is a new directory where\n"
	     "                                             each NAME.enc becomes NAME and a\n"
	     "                                             top-level requirements.txt is copied\n"
	     "  --output PATH   must not exist (an empty directory is accepted for directories)\n"
	     "  -h, --help      this help\n"
	     "\n"
	     "A wrong key or a corrupt file fails with an error naming the file, and nothing\n"
	     "is written. Archives are read safely: absolute names, '..', links, devices and\n"
	     "duplicate names are refused. Outputs are mode 0600 (directories 0700).\n"
	     "\n"
	     "Exit status: 0 success, 1 failure, 2 usage error.");
}

/* A tar archive has "ustar" at offset 257 (POSIX.1-1988 ustar header). */
static int looks_like_tar(const char *path)
{
	char magic[5];
	int fd = open(path, O_RDONLY | O_CLOEXEC), ok = 0;

	if (fd < 0)
		return 0;
	if (pread(fd, magic, sizeof(magic), 257) == (ssize_t)sizeof(magic))
		ok = memcmp(magic, "ustar", 5) == 0;
	close(fd);
	return ok;
}

/* A whole package (package.json + app.tar...), as opposed to an app.tar. */
static int is_package(const char *path)
{
	struct mse_package_info info;
	struct mse_err ignored;

	return mse_package_inspect(path, &info, &ignored) == 0;
}

/* Verifies the package (app.tar digest), then decrypts its app.tar. */
static int decrypt_package(const char *pkg, const uint8_t key[MSE_CODEFILE_KEY_BYTES],
			   const char *output, size_t *files, struct mse_err *err)
{
	struct mse_package_info info;
	struct mse_err ignored;
	char tmp[4096], app[4200];
	int rc = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.pkg.XXXXXX", output) >= (int)sizeof(tmp) ||
	    !mkdtemp(tmp))
		return mse_err_field(err, output, "cannot create a temporary directory next to it");
	snprintf(app, sizeof(app), "%s/x", tmp);
	if (mse_package_extract(pkg, app, &info, err) == 0) {
		snprintf(app, sizeof(app), "%s/x/%s", tmp, MSE_PACKAGE_APP_TAR);
		rc = mse_package_decrypt_app(app, key, output, 0600, files, err);
	}
	if (mse_file_remove_tree(tmp, &ignored) != 0)
		fprintf(stderr, "mse decrypt: warning: could not remove %s\n", tmp);
	return rc;
}

int cmd_decrypt(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"input", required_argument, NULL, 'i'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *keyfile = NULL, *input = NULL, *output = NULL;
	uint8_t key[MSE_CODEFILE_KEY_BYTES];
	struct mse_err err;
	struct stat st;
	size_t files = 0;
	int c, rc = -1;

	mse_err_clear(&err);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			keyfile = optarg;
			break;
		case 'i':
			input = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			usage();
			return MSE_EXIT_OK;
		default:
			return cli_usage_error("decrypt", "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("decrypt", "unexpected argument '%s'", argv[optind]);
	if (!keyfile || !input || !output)
		return cli_usage_error("decrypt", "--key, --input and --output are required");
	if (mse_codefile_load_key(keyfile, key, &err) != 0)
		goto out;
	if (stat(input, &st) != 0) {
		mse_err_field(&err, input, "no such file or directory");
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		if (mse_package_decrypt_dir(input, key, output, 0600, &files, &err) != 0)
			goto out;
		fprintf(stderr, "decrypted %zu files into %s\n", files, output);
	} else if (looks_like_tar(input) && is_package(input)) {
		if (decrypt_package(input, key, output, &files, &err) != 0)
			goto out;
		fprintf(stderr, "decrypted %zu files into %s\n", files, output);
	} else if (looks_like_tar(input)) {
		if (mse_package_decrypt_app(input, key, output, 0600, &files, &err) != 0)
			goto out;
		fprintf(stderr, "decrypted %zu files into %s\n", files, output);
	} else {
		if (mse_codefile_decrypt_file(key, input, output, &err) != 0)
			goto out;
		fprintf(stderr, "decrypted %s into %s\n", input, output);
	}
	rc = 0;
out:
	sodium_memzero(key, sizeof(key));
	return rc == 0 ? MSE_EXIT_OK : cli_fail("decrypt", &err);
}
