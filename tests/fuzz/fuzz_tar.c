/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: safe tar reading (mse_tar_reader over memory) as used on
 * packages and app.tar: every entry is validated, then its data read whole.
 * Invariants checked: an accepted name is normalised — relative, without
 * "." or ".." components, empty components or a trailing '/' — so that no
 * two accepted names of one archive are equal (duplicates are refused);
 * an entry's data is exactly its declared size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/archive.h"
#include "crypto/codefile.h"

static void check_name(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || n[0] == '/' || n[len - 1] == '/' || strstr(n, "//") ||
	    strcmp(n, "..") == 0 || strncmp(n, "../", 3) == 0 || strstr(n, "/../") ||
	    (len >= 3 && strcmp(n + len - 3, "/..") == 0) || strcmp(n, ".") == 0 ||
	    strncmp(n, "./", 2) == 0 || strstr(n, "/./") ||
	    (len >= 2 && strcmp(n + len - 2, "/.") == 0))
		abort();
}

/* The names accepted so far (at most lim.max_entries). */
static char *seen[64];
static size_t n_seen;

static void check_unique(const char *n)
{
	for (size_t i = 0; i < n_seen; i++)
		if (strcmp(seen[i], n) == 0)
			abort(); /* two entries for one path got through */
	if (n_seen < sizeof(seen) / sizeof(seen[0]) && (seen[n_seen] = strdup(n)) != NULL)
		n_seen++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mse_tar_limits lim = {.max_entries = 64, .max_entry_size = 1 << 20,
				     .max_total = 4 << 20};
	struct mse_tar_reader *r = NULL;
	struct mse_tar_entry e;
	struct mse_err err;

	mse_err_clear(&err);
	if (mse_tar_reader_open_mem(&r, data, size, "fuzz.tar", &lim, &err) != 0)
		return 0;
	while (mse_tar_reader_next(r, &e, &err) == 1) {
		uint8_t *buf = NULL;
		size_t len = 0;

		check_name(e.name);
		check_unique(e.name);
		if (!e.is_dir && mse_tar_reader_read_all(r, MSE_CODEFILE_HEADER_BYTES, &buf, &len,
							 &err) == 0) {
			if (len != e.size)
				abort();
			mse_codefile_buf_free(buf, len + MSE_CODEFILE_HEADER_BYTES);
		}
	}
	mse_tar_reader_free(r);
	while (n_seen)
		free(seen[--n_seen]);
	return 0;
}
