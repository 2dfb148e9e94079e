/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/wipe: every block is zeroed before it goes back to malloc, and
 * jansson, once installed, allocates through it — checked by looking at the
 * bytes of each released block.
 */
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/wipe.h"

static int g_released, g_dirty;

static void inspect_then_free(void *block, size_t len)
{
	const unsigned char *b = block;

	g_released++;
	for (size_t i = 0; i < len; i++)
		if (b[i]) {
			g_dirty++;
			break;
		}
	free(block);
}

static void blocks_are_zero_when_released(void **state)
{
	unsigned char *p;

	(void)state;
	g_released = g_dirty = 0;
	mse_wipe_set_release(inspect_then_free);
	p = mse_wipe_malloc(100);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
	memset(p, 0xa5, 100);
	mse_wipe_free(p);
	mse_wipe_free(NULL);
	assert_int_equal(g_released, 1);
	assert_int_equal(g_dirty, 0);
	mse_wipe_set_release(NULL);
}

static void jansson_copies_of_a_secret_are_wiped(void **state)
{
	static const char secret[] = "correct horse battery staple";
	json_error_t jerr;
	json_t *o;
	char *text;

	(void)state;
	g_released = g_dirty = 0;
	mse_wipe_set_release(inspect_then_free);
	mse_wipe_install_jansson();
	o = json_loads("{\"password\": \"correct horse battery staple\"}", 0, &jerr);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "password")), secret);
	text = json_dumps(o, JSON_COMPACT);
	assert_non_null(strstr(text, secret));
	json_decref(o);
	mse_wipe_free(text); /* json_dumps' buffer comes from the same allocator */
	/* A plain free() of such a buffer stays valid too. */
	o = json_string(secret);
	text = json_dumps(o, JSON_ENCODE_ANY);
	json_decref(o);
	assert_true(g_released >= 3);
	assert_int_equal(g_dirty, 0);
	json_set_alloc_funcs(malloc, free);
	free(text);
	mse_wipe_set_release(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(blocks_are_zero_when_released),
		cmocka_unit_test(jansson_copies_of_a_secret_are_wiped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
