/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse scaffold NAME [--output DIR] — a new app project, ready for `mse check`,
 * `mse localtest` and `mse deploy`.
 *
 * Everything is written into a fresh temporary directory beside the target
 * (same filesystem), then renamed into place with RENAME_NOREPLACE: the user
 * sees either the whole project or nothing, and an existing NAME/ (even one
 * created meanwhile) is never touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "cli/scaffold_templates.h"
#include "common/file.h"
#include "common/hex.h"
#include "config/ignore.h"
#include "crypto/package.h"

static const char usage[] =
	"Usage: mse scaffold NAME [--output DIR]\n"
	"\n"
	"Create the directory NAME/ holding a new app project:\n"
	"  NAME/mse.toml                 name, python_application = \"app:app\",\n"
	"                                healthcheck_endpoint = \"/health\", tests\n"
	"  NAME/mse_src/app.py           a Flask app: /health, /whoami (reads\n"
	"                                $SECRETS_PATH), POST / and GET / (a file in\n"
	"                                $HOME), /sign (a key from $SEALED_SECRETS_PATH)\n"
	"  NAME/mse_src/requirements.txt flask\n"
	"  NAME/mse_src/.mseignore       MSE's default ignore list (gitignore syntax)\n"
	"  NAME/secrets.json             secrets sent to the verified enclave\n"
	"  NAME/secrets_to_seal.json     a fresh random api_key, to seal to the enclave\n"
	"  NAME/tests/test_app.py        pytest tests against $TEST_REMOTE_URL\n"
	"  NAME/README.md                how to run, test and deploy it\n"
	"\n"
	"NAME is the app's name (mse.toml `name`): 1 to 128 letters, digits, '.',\n"
	"'_' or '-', not starting with '.' (it also names packages and files).\n"
	"Nothing is overwritten: an existing NAME/ is an error. The project is built\n"
	"in a temporary directory beside NAME/ and renamed into place, so a failure\n"
	"leaves nothing behind.\n"
	"\n"
	"Options:\n"
	"  -o, --output DIR  create NAME/ inside DIR (default: the current directory)\n"
	"  -h, --help        this help\n"
	"\n"
	"Example:\n"
	"  mse scaffold hello && cd hello && mse check\n"
	"\n"
	"Exit status: 0 created, 1 failure (nothing created), 2 usage error.\n";

/* One file of the project. */
struct item {
	const char *path; /* relative to the project */
	const char *tmpl;
	mode_t mode;
};

static const struct item items[] = {
	{"mse.toml", tmpl_mse_toml, MSE_MODE_PUBLIC},
	{"mse_src/app.py", tmpl_app_py, MSE_MODE_PUBLIC},
	{"mse_src/requirements.txt", tmpl_requirements_txt, MSE_MODE_PUBLIC},
	{"mse_src/.mseignore", mse_ignore_default, MSE_MODE_PUBLIC},
	{"secrets.json", tmpl_secrets_json, MSE_MODE_SECRET},
	{"secrets_to_seal.json", tmpl_secrets_to_seal_json, MSE_MODE_SECRET},
	{"tests/test_app.py", tmpl_test_app_py, MSE_MODE_PUBLIC},
	{"README.md", tmpl_readme_md, MSE_MODE_PUBLIC},
};

static const char *const dirs[] = {"mse_src", "tests"};

/*
 * Expands "@NAME@" and "@KEY@" in tmpl into a new buffer (caller frees
 * with mse_file_free_secret: it may hold the key). NULL on out of memory.
 */
static char *expand(const char *tmpl, const char *name, const char *key, size_t *len)
{
	size_t cap = strlen(tmpl) + 1, n = 0;
	const char *p;
	char *out;

	for (p = tmpl; (p = strchr(p, '@')) != NULL; p++)
		cap += strlen(name) + strlen(key);
	out = malloc(cap);
	if (!out)
		return NULL;
	for (p = tmpl; *p;) {
		const char *sub = NULL;
		size_t skip = 0;

		if (strncmp(p, "@NAME@", 6) == 0) {
			sub = name;
			skip = 6;
		} else if (strncmp(p, "@KEY@", 5) == 0) {
			sub = key;
			skip = 5;
		}
		if (sub) {
			memcpy(out + n, sub, strlen(sub));
			n += strlen(sub);
			p += skip;
		} else {
			out[n++] = *p++;
		}
	}
	out[n] = 0;
	*len = n;
	return out;
}

static int write_project(const char *root, const char *name, struct mse_err *err)
{
	uint8_t raw[32];
	char key[65], path[PATH_MAX + 64];
	int rc = -1;

	/* A fresh key per project: a template must not ship a shared secret. */
	randombytes_buf(raw, sizeof(raw));
	if (mse_hex_encode(key, sizeof(key), raw, sizeof(raw)) != 0) {
		mse_err_set(err, "cannot encode the api_key");
		goto out;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (snprintf(path, sizeof(path), "%s/%s", root, dirs[i]) >= (int)sizeof(path)) {
			mse_err_field(err, root, "path too long");
			goto out;
		}
		if (mkdir(path, 0777) != 0) {
			mse_err_field(err, path, "cannot create: %s", strerror(errno));
			goto out;
		}
	}
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		size_t len = 0;
		char *text = expand(items[i].tmpl, name, key, &len);
		int w;

		if (!text) {
			mse_err_set(err, "out of memory");
			goto out;
		}
		if (snprintf(path, sizeof(path), "%s/%s", root, items[i].path) >=
		    (int)sizeof(path)) {
			mse_file_free_secret(text, len);
			mse_err_field(err, root, "path too long");
			goto out;
		}
		w = mse_file_write_new(path, text, len, items[i].mode, err);
		mse_file_free_secret(text, len);
		if (w != 0)
			goto out;
	}
	rc = 0;
out:
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(key, sizeof(key));
	return rc;
}

/* The mode a plain mkdir would give: 0777 minus the umask. */
static mode_t dir_mode(void)
{
	mode_t m = umask(0);

	umask(m);
	return 0777 & ~m;
}

static int scaffold(const char *name, const char *outdir, char *target, size_t tsize,
		    struct mse_err *err)
{
	char tmp[PATH_MAX];
	struct stat st;
	int made = 0, rc = -1;

	/*
	 * The name must load as mse.toml `name` AND name a package
	 * (package_<name>_<ns>.tar): the package rule is the stricter one.
	 */
	if (mse_package_check_name(name, err) != 0)
		return -1;
	if (stat(outdir, &st) != 0)
		return mse_err_field(err, outdir, "output directory: %s", strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return mse_err_field(err, outdir, "output directory: not a directory");
	if (snprintf(target, tsize, "%s/%s", outdir, name) >= (int)tsize ||
	    snprintf(tmp, sizeof(tmp), "%s/.mse-scaffold.XXXXXX", outdir) >= (int)sizeof(tmp))
		return mse_err_field(err, outdir, "path too long");
	if (lstat(target, &st) == 0)
		return mse_err_field(err, target, "already exists; not overwriting it");
	if (errno != ENOENT)
		return mse_err_field(err, target, "%s", strerror(errno));
	if (!mkdtemp(tmp))
		return mse_err_field(err, outdir, "cannot create a directory here: %s",
				     strerror(errno));
	made = 1;
	if (chmod(tmp, dir_mode()) != 0) {
		mse_err_field(err, tmp, "chmod: %s", strerror(errno));
		goto out;
	}
	if (write_project(tmp, name, err) != 0)
		goto out;
	/* RENAME_NOREPLACE: never replace a NAME/ created since the check. */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_NOREPLACE) != 0) {
		mse_err_field(err, target, "%s",
			      errno == EEXIST ? "already exists; not overwriting it"
					      : strerror(errno));
		goto out;
	}
	made = 0;
	mse_file_sync_dir(outdir);
	rc = 0;
out:
	if (made) {
		struct mse_err ignored;

		if (mse_file_remove_tree(tmp, &ignored) != 0)
			fprintf(stderr, "mse scaffold: could not remove %s\n", tmp);
	}
	return rc;
}

int cmd_scaffold(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *outdir = ".", *name;
	char target[PATH_MAX];
	struct mse_err err;
	int c;

	mse_err_clear(&err);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			outdir = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		default:
			if (optopt == 'o')
				return cli_usage_error("scaffold", "--output needs a directory");
			return cli_usage_error("scaffold", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage_error("scaffold", "missing NAME");
	if (optind + 1 < argc)
		return cli_usage_error("scaffold", "one NAME only, got '%s' too", argv[optind + 1]);
	name = argv[optind];
	if (scaffold(name, outdir, target, sizeof(target), &err) != 0)
		return cli_fail("scaffold", &err);
	printf("Created %s/\n"
	       "  mse.toml, mse_src/{app.py,requirements.txt,.mseignore},\n"
	       "  secrets.json, secrets_to_seal.json, tests/test_app.py, README.md\n"
	       "Next: cd %s && mse check && mse localtest\n",
	       target, target);
	return MSE_EXIT_OK;
}
