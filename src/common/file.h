/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_file — file I/O that never leaves half a file behind.
 *
 * mse_file_write_atomic writes to a temporary file in the same directory,
 * fsyncs it, sets its mode, renames it over the target and fsyncs the
 * directory: a crash leaves either the old file or the new one, never a
 * truncated key or secret.
 */
#ifndef MSE_FILE_H
#define MSE_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_MODE_SECRET 0600
#define MSE_MODE_PUBLIC 0644

/* Writes data atomically with the given mode. Replaces an existing file. */
int mse_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
			  struct mse_err *err) MSE_MUST_CHECK;
/* As above, but fails with EEXIST (and writes nothing) if path exists. */
int mse_file_write_new(const char *path, const void *data, size_t len, mode_t mode,
		       struct mse_err *err) MSE_MUST_CHECK;
/*
 * Reads a whole file into a new malloc'd buffer (NUL-terminated, the NUL not
 * counted in *len). Fails if the file exceeds max bytes. Caller frees *out
 * (with mse_file_free_secret if the content is secret).
 */
int mse_file_read(const char *path, size_t max, uint8_t **out, size_t *len,
		  struct mse_err *err) MSE_MUST_CHECK;
/* Wipes len bytes then frees. NULL-safe. */
void mse_file_free_secret(void *p, size_t len);
/* mkdir -p with the given mode for created directories. */
int mse_file_mkdirs(const char *path, mode_t mode, struct mse_err *err) MSE_MUST_CHECK;
/* Recursively removes path (file or directory); missing is not an error. */
int mse_file_remove_tree(const char *path, struct mse_err *err) MSE_MUST_CHECK;
/* 1 if path exists (any type), 0 otherwise. */
int mse_file_exists(const char *path);
/* fsync a directory (after creating or renaming entries in it). */
int mse_file_sync_dir(const char *dir);

#endif
