/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ignore_check — drives src/config/ignore for the git oracle test
 * (tests/e2e/test_ignore_oracle.py).
 *
 *   ignore_check check ROOT PATTERNS  < NUL-separated paths
 *       for each path (relative to ROOT; is_dir from lstat, as git does)
 *       prints "LINE VERDICT PATH\0", VERDICT being n (no match),
 *       x (excluded) or i (re-included by a negation)
 *   ignore_check list ROOT [PATTERNS]
 *       prints mse_ignore_list(ROOT) as "PATH\0" (without PATTERNS: ROOT's
 *       own .mseignore or the default); exit 1 and the error on failure
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/file.h"
#include "config/ignore.h"

static struct mse_ignore *load(const char *path)
{
	struct mse_ignore *ign = NULL;
	struct mse_err err;
	uint8_t *data;
	size_t len;
	char buf[2048];

	mse_err_clear(&err);
	if (mse_file_read(path, MSE_IGNORE_MAX_FILE, &data, &len, &err) != 0 ||
	    mse_ignore_parse((const char *)data, len, path, &ign, &err) != 0) {
		fprintf(stderr, "ignore_check: %s\n", mse_err_str(&err, buf, sizeof(buf)));
		exit(1);
	}
	free(data);
	return ign;
}

static int check(const char *root, const char *patterns)
{
	struct mse_ignore *ign = load(patterns);
	char *line = NULL, full[8192];
	size_t cap = 0;
	ssize_t n;

	while ((n = getdelim(&line, &cap, '\0', stdin)) > 0) {
		struct stat st;
		int is_dir, lineno;
		enum mse_ignore_verdict v;

		if (line[n - 1] == '\0')
			n--;
		line[n] = 0;
		snprintf(full, sizeof(full), "%s/%s", root, line);
		is_dir = lstat(full, &st) == 0 && S_ISDIR(st.st_mode);
		v = mse_ignore_check(ign, line, is_dir, &lineno);
		printf("%d %c %s%c", lineno,
		       v == MSE_IGNORE_NONE ? 'n' : v == MSE_IGNORE_EXCLUDED ? 'x' : 'i', line, 0);
	}
	free(line);
	mse_ignore_free(ign);
	return 0;
}

static int list(const char *root, const char *patterns)
{
	struct mse_ignore *ign = patterns ? load(patterns) : NULL;
	struct mse_ignore_files files;
	struct mse_err err;
	char buf[2048];
	int rc = 0;

	mse_err_clear(&err);
	if (mse_ignore_list(root, ign, &files, &err) != 0) {
		fprintf(stderr, "ignore_check: %s\n", mse_err_str(&err, buf, sizeof(buf)));
		rc = 1;
	} else {
		for (size_t i = 0; i < files.n; i++)
			printf("%s%c", files.paths[i], 0);
	}
	mse_ignore_files_free(&files);
	mse_ignore_free(ign);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "check") == 0)
		return check(argv[2], argv[3]);
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "list") == 0)
		return list(argv[2], argc == 4 ? argv[3] : NULL);
	fputs("usage: ignore_check check ROOT PATTERNS < paths\n"
	      "       ignore_check list ROOT [PATTERNS]\n",
	      stderr);
	return 2;
}
