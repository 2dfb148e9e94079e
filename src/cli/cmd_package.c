/* SPDX-License-Identifier: Apache-2.0 */
/* mse package — encrypt the code and build package_<name>_<ns>.tar. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/cli.h"
#include "common/file.h"
#include "common/hex.h"
#include "codeprovider/packager.h"

static void usage(void)
{
	puts("Usage: mse package [--project DIR | --code DIR --config FILE [--test DIR]]\n"
	     "                   --output DIR [--key FILE] [--nonces FILE] [--quiet] [--json]\n"
	     "\n"
	     "Encrypts every file of the code directory that .mseignore keeps (XSalsa20-Poly1305,\n"
	     "one NAME.enc per file; requirements.txt stays clear) and writes\n"
	     "  DIR/package_<name>_<ns>.tar          app.tar, tests.tar, mse.toml, package.json\n"
	     "  DIR/package_<name>_<ns>.nonces.json  the nonce of each file (no key): rebuilds the\n"
	     "                                       same package with --nonces\n"
	     "  DIR/package_<name>_<ns>.key          a new 32-byte code key (mode 0600), unless\n"
	     "                                       --key is given\n"
	     "<ns> is the UNIX time in nanoseconds. Nothing is ever overwritten.\n"
	     "\n"
	     "  --project DIR   the project directory: DIR/mse.toml, its code directory ([cloud]\n"
	     "                  code, default DIR/mse_src) and tests ([cloud] tests, default\n"
	     "                  DIR/tests; skipped if missing)\n"
	     "  --code DIR      the code directory (with --config)\n"
	     "  --config FILE   the mse.toml to check and ship (with --code)\n"
	     "  --test DIR      the tests directory (shipped clear as tests.tar; must exist)\n"
	     "  --output DIR    where to write (created if missing)\n"
	     "  --key FILE      encrypt with this 32-byte key instead of a new one\n"
	     "  --nonces FILE   reuse the nonces of a previous package (its .nonces.json, or an\n"
	     "                  MSE context.toml with [instance.nonces]): with the same key and\n"
	     "                  code, the package is byte-identical. A file whose content changed\n"
	     "                  since is refused (its nonce would reuse the keystream)\n"
	     "  -q, --quiet     no progress bar, no summary\n"
	     "  --json          no progress bar; one JSON object on stdout: {\"ok\": true,\n"
	     "                  \"package\", \"nonces\", \"key\" (the key used), \"app_sha256\",\n"
	     "                  \"files\", \"encrypted\", \"reused_nonces\", \"bytes\"} or\n"
	     "                  {\"ok\": false, \"error\": {...}, \"errors\": [...]}\n"
	     "  -h, --help      this help\n"
	     "\n"
	     "Each file is encrypted whole in memory: files above 1 GiB are refused.\n"
	     "The summary (files, bytes, SHA-256 of app.tar, paths) goes to stdout.\n"
	     "\n"
	     "Exit status: 0 success, 1 failure, 2 usage error.");
}

struct progress {
	int on;
	time_t last;
};

static void show_progress(void *ctx, size_t done, size_t total, uint64_t bytes, uint64_t all)
{
	struct progress *p = ctx;
	time_t now = time(NULL);
	int width = 30, fill;

	if (!p->on || (done != total && now == p->last))
		return;
	p->last = now;
	fill = all ? (int)((double)bytes / (double)all * width) : width;
	fprintf(stderr, "\r[%.*s%*s] %3d%%  %zu/%zu files", fill,
		"##############################", width - fill, "",
		all ? (int)(bytes * 100 / all) : 100, done, total);
	if (done == total)
		fputc('\n', stderr);
	fflush(stderr);
}

int cmd_package(int argc, char **argv)
{
	static const struct option opts[] = {
		{"project", required_argument, NULL, 'p'}, {"code", required_argument, NULL, 'c'},
		{"config", required_argument, NULL, 'f'},  {"test", required_argument, NULL, 't'},
		{"output", required_argument, NULL, 'o'},  {"key", required_argument, NULL, 'k'},
		{"nonces", required_argument, NULL, 'n'},  {"quiet", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'j'},          {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *project_dir = NULL, *code = NULL, *config = NULL, *test = NULL, *output = NULL,
		   *keyfile = NULL, *nonces_path = NULL;
	char config_buf[4096], hex[65];
	struct mse_packager_opts po = {0};
	struct mse_packager_result res;
	struct mse_errlist errs;
	struct progress prog = {0};
	struct mse_err err;
	int quiet = 0, json = 0, c;

	mse_err_clear(&err);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			project_dir = optarg;
			break;
		case 'c':
			code = optarg;
			break;
		case 'f':
			config = optarg;
			break;
		case 't':
			test = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'n':
			nonces_path = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage();
			return MSE_EXIT_OK;
		default:
			return cli_usage_error("package", "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("package", "unexpected argument '%s'", argv[optind]);
	if (!output)
		return cli_usage_error("package", "--output DIR is required");
	if (project_dir && (code || config || test))
		return cli_usage_error("package", "--project excludes --code, --config and --test");
	if (!project_dir && !(code && config))
		return cli_usage_error("package", "give --project DIR, or --code DIR and --config "
						  "FILE");
	if (project_dir) {
		if (snprintf(config_buf, sizeof(config_buf), "%s/mse.toml", project_dir) >=
		    (int)sizeof(config_buf))
			return cli_usage_error("package", "--project path too long");
		config = config_buf;
	}

	po.config = config;
	po.code_dir = code;
	po.tests_dir = test;
	po.output_dir = output;
	po.key_path = keyfile;
	po.nonces_path = nonces_path;
	prog.on = !quiet && !json && cli_is_tty(stderr);
	po.progress = show_progress;
	po.progress_ctx = &prog;
	mse_errlist_init(&errs);
	if (mse_packager_build(&po, &res, &errs, &err) != 0) {
		if (json) {
			mse_err_step(&err, "package");
			c = cli_json_fail_list(&errs, &err);
			mse_errlist_free(&errs);
			return c;
		}
		if (mse_errlist_count(&errs) > 0) {
			mse_errlist_print(&errs, "mse package", stderr);
			mse_errlist_free(&errs);
			return MSE_EXIT_FAIL;
		}
		mse_errlist_free(&errs);
		return cli_fail("package", &err);
	}
	mse_errlist_free(&errs);
	if (mse_hex_encode(hex, sizeof(hex), res.pkg.app_sha256, 32) != 0)
		hex[0] = 0;
	if (json) {
		json_t *o = cli_json_new(1);

		cli_json_str(o, "package", res.pkg.path);
		cli_json_str(o, "nonces", res.pkg.nonces_path);
		cli_json_str(o, "key", res.key_path);
		cli_json_str(o, "app_sha256", hex);
		json_object_set_new(o, "files", json_integer((json_int_t)res.pkg.files));
		json_object_set_new(o, "encrypted", json_integer((json_int_t)res.pkg.encrypted));
		json_object_set_new(o, "reused_nonces", json_integer((json_int_t)res.pkg.reused));
		json_object_set_new(o, "bytes", json_integer((json_int_t)res.pkg.bytes));
		cli_json_print(o);
	} else if (!quiet) {
		printf("packaged %zu files (%zu encrypted, %zu with recorded nonces), %llu bytes\n",
		       res.pkg.files, res.pkg.encrypted, res.pkg.reused,
		       (unsigned long long)res.pkg.bytes);
		printf("package:        %s\n", res.pkg.path);
		printf("app.tar sha256: %s\n", hex);
		printf("nonces:         %s\n", res.pkg.nonces_path);
		printf("key:            %s\n", res.key_path);
	}
	return MSE_EXIT_OK;
}
