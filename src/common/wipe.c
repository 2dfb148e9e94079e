/* SPDX-License-Identifier: Apache-2.0 */
#include "common/wipe.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>
#include <sodium.h>

/*
 * No header: blocks are plain malloc blocks, so a caller that releases a
 * json_dumps() result with free() (as jansson's documentation says) stays
 * correct; the wipe uses the allocator's own record of the block's size.
 */
static void (*g_release)(void *block, size_t len);

void mse_wipe_set_release(void (*release)(void *block, size_t len))
{
	g_release = release;
}

void *mse_wipe_malloc(size_t size)
{
	return malloc(size ? size : 1);
}

void mse_wipe_free(void *ptr)
{
	size_t len;

	if (!ptr)
		return;
	len = malloc_usable_size(ptr);
	sodium_memzero(ptr, len);
	if (g_release)
		g_release(ptr, len);
	else
		free(ptr);
}

void mse_wipe_install_jansson(void)
{
	json_set_alloc_funcs(mse_wipe_malloc, mse_wipe_free);
}
