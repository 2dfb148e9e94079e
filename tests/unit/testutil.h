/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the cmocka unit tests (linked into each of them).
 * Tests run from the repository root; vectors come from $MSE_VECTORS
 * (default ../shared/vectors).
 */
#ifndef MSE_TESTUTIL_H
#define MSE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Path of a vector file: tu_vector("mse-code-secretbox/code.key"). Static buffer. */
const char *tu_vector(const char *rel);
/* Reads a whole file or fails the test. Caller frees. */
uint8_t *tu_read(const char *path, size_t *len);
/* Creates a fresh temporary directory (removed by tu_rmtree). Static buffer. */
const char *tu_tmpdir(void);
void tu_rmtree(const char *path);
/* Writes a file or fails the test. */
void tu_write(const char *path, const void *data, size_t len);
/* Runs a shell command, returns its exit status. */
int tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* /usr/bin/python3 unless $MSE_PYTHON is set. */
const char *tu_python(void);

#endif
