/* SPDX-License-Identifier: Apache-2.0 */
/*
 * node/provision: the seal step of `mse deploy`. The sealed box is opened
 * with libsodium directly and parsed by jansson; the check that the code key
 * never reaches the JSON library watches every block jansson frees.
 */
#include "testutil.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/hex.h"
#include "codeprovider/provision.h"

static char g_needle[65];
static int g_leaked;

/* jansson's free: flags any block that still holds the key's hex when released. */
static void watch_free(void *p)
{
	if (p) {
		size_t n = malloc_usable_size(p);

		if (memmem(p, n, g_needle, 64))
			g_leaked = 1;
	}
	free(p);
}

static void seal_keeps_the_code_key_out_of_the_json_library(void **state)
{
	const char *dir = tu_tmpdir();
	char src[256], key[256], out[256];
	uint8_t k[32], pk[32], sk[32], *sealed, plain[4096];
	size_t sealed_len;
	struct mse_err err = {0};
	json_error_t jerr;
	json_t *o;
	struct stat st;

	(void)state;
	randombytes_buf(k, sizeof(k));
	assert_int_equal(mse_hex_encode(g_needle, sizeof(g_needle), k, 32), 0);
	crypto_box_keypair(pk, sk);
	snprintf(src, sizeof(src), "%s/secrets_to_seal.json", dir);
	snprintf(key, sizeof(key), "%s/code.key", dir);
	snprintf(out, sizeof(out), "%s/sealed.bin", dir);
	/* A code_secret_key in the file is replaced by the real one, not duplicated. */
	tu_write(src, "{\"api_key\": \"s3cret\", \"code_secret_key\": \"00\"}", 46);
	tu_write(key, k, 32);
	json_set_alloc_funcs(malloc, watch_free);
	g_leaked = 0;
	assert_int_equal(mse_provision_seal(src, key, pk, out, &err), 0);
	json_set_alloc_funcs(malloc, free);
	assert_int_equal(g_leaked, 0);
	assert_int_equal(stat(out, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	sealed = tu_read(out, &sealed_len);
	assert_true(sealed_len > crypto_box_SEALBYTES && sealed_len - crypto_box_SEALBYTES < sizeof(plain));
	assert_int_equal(crypto_box_seal_open(plain, sealed, sealed_len, pk, sk), 0);
	o = json_loadb((const char *)plain, sealed_len - crypto_box_SEALBYTES, JSON_REJECT_DUPLICATES, &jerr);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "code_secret_key")), g_needle);
	assert_string_equal(json_string_value(json_object_get(o, "api_key")), "s3cret");
	assert_int_equal(json_object_size(o), 2);
	json_decref(o);
	free(sealed);
	/* No file: only the key. A key of the wrong size is named. */
	unlink(src);
	assert_int_equal(mse_provision_seal(src, key, pk, out, &err), 0);
	tu_write(key, k, 31);
	assert_int_equal(mse_provision_seal(src, key, pk, out, &err), -1);
	assert_non_null(strstr(err.msg, "expected a 32-byte code key, got 31 bytes"));
	assert_non_null(strstr(err.field, "code.key"));
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(seal_keeps_the_code_key_out_of_the_json_library),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
