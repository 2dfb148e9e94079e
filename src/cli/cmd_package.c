/* mse package — encrypt the code and build package_<name>_<ns>.tar. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "common/file.h"
#include "common/hex.h"
#include "config/ignore.h"
#include "config/project.h"
#include "crypto/codefile.h"
#include "crypto/nonces.h"
#include "crypto/package.h"

static void usage(void)
{
	puts("Usage: mse package [--project DIR | --code DIR --config FILE [--test DIR]]\n"
	     "                   --output DIR [--key FILE] [--nonces FILE] [--quiet]\n"
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

/* Tests are shipped clear; bytecode caches are not worth shipping. */
static int tests_filter(void *ctx, const char *rel, int is_dir, struct mse_err *err)
{
	const char *base = strrchr(rel, '/');
	size_t n;

	(void)ctx;
	(void)err;
	base = base ? base + 1 : rel;
	n = strlen(base);
	if (is_dir)
		return strcmp(base, "__pycache__") != 0 && strcmp(base, ".pytest_cache") != 0;
	return !(n > 4 && strcmp(base + n - 4, ".pyc") == 0);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int cmd_package(int argc, char **argv)
{
	static const struct option opts[] = {
		{"project", required_argument, NULL, 'p'}, {"code", required_argument, NULL, 'c'},
		{"config", required_argument, NULL, 'f'},  {"test", required_argument, NULL, 't'},
		{"output", required_argument, NULL, 'o'},  {"key", required_argument, NULL, 'k'},
		{"nonces", required_argument, NULL, 'n'},  {"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	const char *project_dir = NULL, *code = NULL, *config = NULL, *test = NULL, *output = NULL,
		   *keyfile = NULL, *nonces_path = NULL;
	char config_buf[4096], keypath[4200], hex[65];
	struct mse_project_opts popts = {0};
	struct mse_project *proj = NULL;
	struct mse_errlist errs = {0};
	struct mse_ignore *ign = NULL;
	struct mse_ignore_files files = {0};
	struct mse_nonces *nonces = NULL;
	struct mse_package_spec spec = {0};
	struct mse_package_result res;
	struct progress prog = {0};
	uint8_t key[MSE_CODEFILE_KEY_BYTES];
	struct mse_err err;
	int quiet = 0, c, rc = -1, key_written = 0;

	mse_err_clear(&err);
	keypath[0] = 0;
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

	/* The configuration: name, python_application, healthcheck, directories. */
	popts.code_dir = code;
	if (mse_project_load(config, &popts, &proj, &errs) != 0) {
		mse_errlist_print(&errs, "mse package", stderr);
		mse_errlist_free(&errs);
		return MSE_EXIT_FAIL;
	}
	if (!test && !code && is_dir(proj->tests_dir))
		test = proj->tests_dir;
	if (test && !is_dir(test)) {
		mse_err_field(&err, test, "tests directory not found");
		goto out;
	}
	/* The files .mseignore keeps (its default list if the code has none). */
	if (mse_ignore_load(proj->code_dir, &ign, &err) != 0 ||
	    mse_ignore_list(proj->code_dir, ign, &files, &err) != 0)
		goto out;
	if (nonces_path && mse_nonces_load(nonces_path, &nonces, &err) != 0)
		goto out;

	spec.ns = now_ns();
	if (keyfile) {
		if (mse_codefile_load_key(keyfile, key, &err) != 0)
			goto out;
	} else {
		/* The key first: a package whose key could not be saved is useless. */
		randombytes_buf(key, sizeof(key));
		if (mse_file_mkdirs(output, 0755, &err) != 0)
			goto out;
		if (mse_package_check_name(proj->name, &err) != 0)
			goto out;
		snprintf(keypath, sizeof(keypath), "%s/package_%s_%llu.key", output, proj->name,
			 (unsigned long long)spec.ns);
		if (mse_file_write_new(keypath, key, sizeof(key), MSE_MODE_SECRET, &err) != 0)
			goto out;
		key_written = 1;
	}
	spec.code_dir = proj->code_dir;
	spec.config_path = proj->path;
	spec.tests_dir = test;
	spec.output_dir = output;
	spec.name = proj->name;
	spec.python_application = proj->python_application;
	spec.healthcheck_endpoint = proj->healthcheck_endpoint;
	spec.key = key;
	spec.nonces = nonces;
	spec.files = (const char *const *)files.paths;
	spec.n_files = files.n;
	spec.tests_filter = tests_filter;
	prog.on = !quiet && cli_is_tty(stderr);
	spec.progress = show_progress;
	spec.progress_ctx = &prog;
	if (mse_package_build(&spec, &res, &err) != 0)
		goto out;
	if (!quiet) {
		if (mse_hex_encode(hex, sizeof(hex), res.app_sha256, 32) != 0)
			hex[0] = 0;
		printf("packaged %zu files (%zu encrypted, %zu with recorded nonces), %llu bytes\n",
		       res.files, res.encrypted, res.reused, (unsigned long long)res.bytes);
		printf("package:        %s\n", res.path);
		printf("app.tar sha256: %s\n", hex);
		printf("nonces:         %s\n", res.nonces_path);
		printf("key:            %s\n", keyfile ? keyfile : keypath);
	}
	rc = 0;
out:
	if (rc != 0 && key_written)
		unlink(keypath);
	sodium_memzero(key, sizeof(key));
	mse_nonces_free(nonces);
	mse_ignore_files_free(&files);
	mse_ignore_free(ign);
	mse_project_free(proj);
	mse_errlist_free(&errs);
	return rc == 0 ? MSE_EXIT_OK : cli_fail("package", &err);
}
