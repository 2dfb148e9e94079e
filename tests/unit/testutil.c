/* SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/file.h"

const char *tu_vector(const char *rel)
{
	static char buf[4096];
	const char *base = getenv("MSE_VECTORS");

	snprintf(buf, sizeof(buf), "%s/%s", base && *base ? base : "../shared/vectors", rel);
	return buf;
}

uint8_t *tu_read(const char *path, size_t *len)
{
	uint8_t *p = NULL;
	struct mse_err err;

	mse_err_clear(&err);
	if (mse_file_read(path, (size_t)1 << 30, &p, len, &err) != 0)
		fail_msg("cannot read %s: %s", path, err.msg);
	return p;
}

const char *tu_tmpdir(void)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "/tmp/mse-unit.XXXXXX");
	if (!mkdtemp(buf))
		fail_msg("mkdtemp failed");
	return buf;
}

void tu_rmtree(const char *path)
{
	struct mse_err err;

	if (mse_file_remove_tree(path, &err) != 0)
		fail_msg("cannot remove %s", path);
}

void tu_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		fail_msg("cannot write %s", path);
}

int tu_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

const char *tu_python(void)
{
	const char *p = getenv("MSE_PYTHON");

	return p && *p ? p : "/usr/bin/python3";
}
