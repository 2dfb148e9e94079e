/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_wipe — allocation that wipes on free, for libraries that copy our
 * secrets into memory they own.
 *
 * jansson keeps copies of every string it parses or builds (secrets.json,
 * sealed secrets once opened, the provisioning request) and frees them
 * without wiping. mse_wipe_install_jansson() makes both executables give
 * jansson a free that zeroes the whole block (its malloc_usable_size) with
 * sodium_memzero before returning it to malloc. Blocks stay ordinary malloc
 * blocks, so free() on a json_dumps() result remains valid (it just is not
 * wiped: wipe such buffers yourself when they hold secrets).
 */
#ifndef MSE_WIPE_H
#define MSE_WIPE_H

#include <stddef.h>

/* malloc (a block free() also accepts). */
void *mse_wipe_malloc(size_t size);
/* Zeroes the whole block, then frees it. NULL-safe. */
void mse_wipe_free(void *p);
/*
 * Tests only: what receives each wiped block (header included) instead of
 * free(); NULL restores free(). Lets a test check the bytes really are zero.
 */
void mse_wipe_set_release(void (*release)(void *block, size_t len));
/* json_set_alloc_funcs(mse_wipe_malloc, mse_wipe_free). */
void mse_wipe_install_jansson(void);

#endif
