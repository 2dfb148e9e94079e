/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for src/config/ignore: the .mseignore parser and matcher.
 *
 * Input: pattern text, then optionally a NUL and NUL-separated paths to
 * match (a fixed set when none are given). Besides memory errors, it checks
 * two rules that must hold for any input:
 *   - a path below an excluded directory is excluded;
 *   - "path/" is the same query as (path, is_dir=1).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/ignore.h"

static const char *const fixed[] = {
	"a",	       "a/b",	     "a/b/c",	  ".git/config", "__pycache__/x.pyc",
	"mse_src/app.py", "x y/z\\w", "[a]/*?",   "deep/a/b/c/d/e/f", "\xc3\xa9t\xc3\xa9",
};

static void check_path(const struct mse_ignore *ign, const char *path)
{
	size_t len = strlen(path);
	char *copy;

	if (!len || len > 4096)
		return;
	for (int is_dir = 0; is_dir < 2; is_dir++) {
		enum mse_ignore_verdict v = mse_ignore_check(ign, path, is_dir, NULL);

		if (mse_ignore_match(ign, path, is_dir) != (v == MSE_IGNORE_EXCLUDED))
			abort();
		/* Parent excluded => excluded. */
		copy = strdup(path);
		if (!copy)
			return;
		for (size_t i = 1; i < len; i++) {
			if (copy[i] != '/')
				continue;
			copy[i] = 0;
			if (mse_ignore_check(ign, copy, 1, NULL) == MSE_IGNORE_EXCLUDED &&
			    v != MSE_IGNORE_EXCLUDED)
				abort();
			copy[i] = '/';
		}
		free(copy);
	}
	if (path[len - 1] != '/') {
		copy = malloc(len + 2);
		if (!copy)
			return;
		memcpy(copy, path, len);
		copy[len] = '/';
		copy[len + 1] = 0;
		if (mse_ignore_check(ign, copy, 0, NULL) != mse_ignore_check(ign, path, 1, NULL))
			abort();
		free(copy);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	size_t tlen = nul ? (size_t)(nul - text) : size;
	struct mse_ignore *ign = NULL;
	struct mse_err err;

	if (mse_ignore_parse(text, tlen, "fuzz", &ign, &err) != 0)
		return 0;
	if (nul) {
		/* NUL-separated paths follow; copy so each is NUL-terminated. */
		char *rest = malloc(size - tlen);

		if (rest) {
			size_t n = size - tlen - 1, off = 0;

			memcpy(rest, nul + 1, n);
			rest[n] = 0;
			while (off < n) {
				size_t l = strlen(rest + off);

				check_path(ign, rest + off);
				off += l + 1;
			}
			free(rest);
		}
	} else {
		for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
			check_path(ign, fixed[i]);
	}
	mse_ignore_free(ign);
	return 0;
}
