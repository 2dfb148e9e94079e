/* SPDX-License-Identifier: Apache-2.0 */
#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mse_file_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int dir_of(const char *path, char *out, size_t size)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -1;
	return snprintf(out, size, "%s", dirname(tmp)) >= (int)size ? -1 : 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_atomic(const char *path, const void *data, size_t len, mode_t mode, int excl,
			struct mse_err *err)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int fd = -1, rc = -1;

	if (dir_of(path, dir, sizeof(dir)) != 0 ||
	    snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
		return mse_err_field(err, path, "path too long");
	fd = mkstemp(tmp);
	if (fd < 0)
		return mse_err_field(err, path, "cannot create a temporary file: %s", strerror(errno));
	if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		mse_err_field(err, path, "cannot write: %s", strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		mse_err_field(err, path, "cannot write: %s", strerror(errno));
		goto out;
	}
	fd = -1;
	if (excl) {
		/* link() fails if the target exists: no race with another writer. */
		if (link(tmp, path) != 0) {
			mse_err_field(err, path, "%s", errno == EEXIST ? "already exists, not overwriting"
								       : strerror(errno));
			goto out;
		}
		unlink(tmp);
	} else if (rename(tmp, path) != 0) {
		mse_err_field(err, path, "cannot rename into place: %s", strerror(errno));
		goto out;
	}
	tmp[0] = 0;
	mse_file_sync_dir(dir);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp[0])
		unlink(tmp);
	return rc;
}

int mse_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
			  struct mse_err *err)
{
	return write_atomic(path, data, len, mode, 0, err);
}

int mse_file_write_new(const char *path, const void *data, size_t len, mode_t mode,
		       struct mse_err *err)
{
	return write_atomic(path, data, len, mode, 1, err);
}

int mse_file_read(const char *path, size_t max, uint8_t **out, size_t *len, struct mse_err *err)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t cap, n = 0;
	int fd;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mse_err_field(err, path, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
		close(fd);
		return mse_err_field(err, path, "not a regular file");
	}
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
	if (cap - 1 > max) {
		close(fd);
		return mse_err_field(err, path, "too large: %lld bytes, limit %zu",
				     (long long)st.st_size, max);
	}
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		return mse_err_field(err, path, "out of memory");
	}
	for (;;) {
		ssize_t k;

		if (n + 1 >= cap) {
			uint8_t *nb;

			if (cap - 1 >= max) {
				mse_err_field(err, path, "too large: limit %zu bytes", max);
				goto fail;
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			nb = realloc(buf, cap);
			if (!nb) {
				mse_err_field(err, path, "out of memory");
				goto fail;
			}
			buf = nb;
		}
		k = read(fd, buf + n, cap - 1 - n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			mse_err_field(err, path, "cannot read: %s", strerror(errno));
			goto fail;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
fail:
	close(fd);
	mse_file_free_secret(buf, cap);
	return -1;
}

void mse_file_free_secret(void *p, size_t len)
{
	if (!p)
		return;
	sodium_memzero(p, len);
	free(p);
}

int mse_file_mkdirs(const char *path, mode_t mode, struct mse_err *err)
{
	char tmp[PATH_MAX];
	size_t n;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return mse_err_field(err, path, "path too long");
	n = strlen(tmp);
	while (n > 1 && tmp[n - 1] == '/')
		tmp[--n] = 0;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return mse_err_field(err, tmp, "cannot create directory: %s", strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return mse_err_field(err, tmp, "cannot create directory: %s", strerror(errno));
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p) != 0 && errno != ENOENT ? -1 : 0;
}

int mse_file_remove_tree(const char *path, struct mse_err *err)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : mse_err_field(err, path, "%s", strerror(errno));
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) != 0)
		return mse_err_field(err, path, "cannot remove: %s", strerror(errno));
	return 0;
}

int mse_file_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}
