/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: safe tar reading (mse_tar_reader over memory) as used on
 * packages and app.tar: every entry is validated, then its data read whole.
 * Invariant checked: an accepted name is relative, without "..", without
 * empty components.
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
	    (len >= 3 && strcmp(n + len - 3, "/..") == 0))
		abort();
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
		if (!e.is_dir && mse_tar_reader_read_all(r, MSE_CODEFILE_HEADER_BYTES, &buf, &len,
							 &err) == 0) {
			if (len != e.size)
				abort();
			mse_codefile_buf_free(buf, len + MSE_CODEFILE_HEADER_BYTES);
		}
	}
	mse_tar_reader_free(r);
	return 0;
}
