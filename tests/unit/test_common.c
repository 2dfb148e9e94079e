/* SPDX-License-Identifier: Apache-2.0 */
/* src/common: bounded reader, hex, base64, errors, atomic files. */
#include "testutil.h"

#include <errno.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/file.h"
#include "common/hex.h"
#include "common/num.h"

static void buf_reads_little_endian_and_stops_at_end(void **state)
{
	static const uint8_t data[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};
	struct mse_buf r, sub;
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;
	uint8_t v8;
	const uint8_t *p;

	(void)state;
	mse_buf_init(&r, data, sizeof(data));
	assert_int_equal(mse_buf_u16le(&r, &v16), 0);
	assert_int_equal(v16, 0x0201);
	assert_int_equal(mse_buf_u32le(&r, &v32), 0);
	assert_int_equal(v32, 0x06050403);
	/* 3 bytes left: a u64 must fail and leave the cursor unchanged. */
	assert_int_equal(mse_buf_u64le(&r, &v64), -1);
	assert_int_equal(mse_buf_remaining(&r), 3);
	assert_int_equal(mse_buf_u32le(&r, &v32), -1);
	assert_int_equal(mse_buf_sub(&r, 2, &sub), 0);
	assert_int_equal(mse_buf_u16be(&sub, &v16), 0);
	assert_int_equal(v16, 0x0708);
	assert_int_equal(mse_buf_u8(&sub, &v8), -1);
	assert_int_equal(mse_buf_bytes(&r, 1, &p), 0);
	assert_int_equal(*p, 0x09);
	assert_int_equal(mse_buf_skip(&r, 1), -1);
	assert_int_equal(mse_buf_remaining(&r), 0);
	/* Huge lengths must not wrap around. */
	mse_buf_init(&r, data, sizeof(data));
	assert_int_equal(mse_buf_skip(&r, 4), 0);
	assert_int_equal(mse_buf_skip(&r, SIZE_MAX), -1);
	assert_int_equal(mse_buf_remaining(&r), 5);
}

static void buf_u64_decodes(void **state)
{
	static const uint8_t data[] = {0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01};
	struct mse_buf r;
	uint64_t v;

	(void)state;
	mse_buf_init(&r, data, sizeof(data));
	assert_int_equal(mse_buf_u64le(&r, &v), 0);
	assert_true(v == 0x0123456789abcdefULL);
}

static void hex_round_trip_and_rejects(void **state)
{
	uint8_t out[4];
	char txt[9];
	size_t n;

	(void)state;
	assert_int_equal(mse_hex_decode_exact(out, 4, "DEADbeef", 8), 0);
	assert_memory_equal(out, "\xde\xad\xbe\xef", 4);
	assert_int_equal(mse_hex_encode(txt, sizeof(txt), out, 4), 0);
	assert_string_equal(txt, "deadbeef");
	assert_int_equal(mse_hex_encode(txt, 8, out, 4), -1);
	assert_int_equal(mse_hex_decode_exact(out, 4, "deadbee", 7), -1);
	assert_int_equal(mse_hex_decode_exact(out, 4, "deadbeefaa", 10), -1);
	assert_int_equal(mse_hex_decode_exact(out, 4, "deadbeeg", 8), -1);
	assert_int_equal(mse_hex_decode_exact(out, 4, "dead beef", 9), -1);
	assert_int_equal(mse_hex_decode(out, 4, &n, "0102", 4), 0);
	assert_int_equal(n, 2);
	assert_int_equal(mse_hex_decode(out, 1, &n, "0102", 4), -1);
}

/* RFC 4648 §10 test vectors. */
static void b64_rfc4648_vectors(void **state)
{
	static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	static const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	char txt[32];
	uint8_t out[16];
	size_t n;

	(void)state;
	for (int i = 0; i < 7; i++) {
		size_t len = strlen(plain[i]);

		assert_int_equal(mse_b64_encode(txt, sizeof(txt), (const uint8_t *)plain[i], len, MSE_B64_STD), 0);
		assert_string_equal(txt, std[i]);
		assert_int_equal(mse_b64_encode(txt, sizeof(txt), (const uint8_t *)plain[i], len, MSE_B64_URL_NOPAD), 0);
		assert_string_equal(txt, url[i]);
		assert_int_equal(mse_b64_decode(out, sizeof(out), &n, std[i], strlen(std[i]), MSE_B64_STD), 0);
		assert_int_equal(n, len);
		assert_memory_equal(out, plain[i], len);
		assert_int_equal(mse_b64_decode(out, sizeof(out), &n, url[i], strlen(url[i]), MSE_B64_URL_NOPAD), 0);
		assert_int_equal(n, len);
	}
	/* URL alphabet differs: 0xfb 0xff -> "-_8" url, "+/8=" std. */
	assert_int_equal(mse_b64_encode(txt, sizeof(txt), (const uint8_t *)"\xfb\xff", 2, MSE_B64_URL_NOPAD), 0);
	assert_string_equal(txt, "-_8");
	assert_int_equal(mse_b64_decode(out, sizeof(out), &n, "+/8=", 4, MSE_B64_URL_NOPAD), -1);
	assert_int_equal(mse_b64_decode(out, sizeof(out), &n, "Zg=", 3, MSE_B64_STD), -1);
	assert_int_equal(mse_b64_decode(out, sizeof(out), &n, "Zm9v\n", 5, MSE_B64_STD), -1);
	assert_int_equal(mse_b64_decode_ws(out, sizeof(out), &n, "Zm\n9v\n", 6, MSE_B64_STD), 0);
	assert_int_equal(n, 3);
	assert_int_equal(mse_b64_decode(out, 2, &n, "Zm9v", 4, MSE_B64_STD), -1);
}

static void err_formats_position_field_and_step(void **state)
{
	struct mse_err e;
	char buf[512];

	(void)state;
	mse_err_clear(&e);
	assert_int_equal(mse_err_at(&e, "mse.toml", 3, 22, "x"), -1);
	assert_int_equal(mse_err_expect(&e, "python_application", "\"module:variable\"", "\"app\""), -1);
	assert_string_equal(mse_err_str(&e, buf, sizeof(buf)),
			    "mse.toml:3:22: python_application: expected \"module:variable\", got \"app\"");
	mse_err_clear(&e);
	mse_err_step(&e, "signature");
	mse_err_set(&e, "quote signature does not verify");
	mse_err_prefix(&e, "quote");
	assert_string_equal(mse_err_str(&e, buf, sizeof(buf)), "[signature] quote: quote signature does not verify");
	/* A NULL error is allowed everywhere. */
	assert_int_equal(mse_err_set(NULL, "ignored"), -1);
	/* Truncation never overflows. */
	mse_err_clear(&e);
	memset(e.msg, 'a', sizeof(e.msg) - 1);
	mse_err_str(&e, buf, 16);
	assert_int_equal(strlen(buf), 15);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void file_atomic_write_mode_and_no_temp_left(void **state)
{
	const char *dir = tu_tmpdir();
	char path[256];
	struct mse_err e;
	struct stat st;
	uint8_t *data;
	size_t len;

	(void)state;
	mse_err_clear(&e);
	snprintf(path, sizeof(path), "%s/key", dir);
	assert_int_equal(mse_file_write_atomic(path, "secret", 6, MSE_MODE_SECRET, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(mse_file_read(path, 100, &data, &len, &e), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(data, "secret", 6);
	assert_int_equal(data[6], 0);
	free(data);
	/* Replace. */
	assert_int_equal(mse_file_write_atomic(path, "new", 3, MSE_MODE_PUBLIC, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(st.st_size, 3);
	/* write_new never overwrites, and leaves no temporary file behind. */
	assert_int_equal(mse_file_write_new(path, "other", 5, MSE_MODE_SECRET, &e), -1);
	assert_non_null(strstr(e.msg, "already exists"));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 3);
	assert_int_equal(count_entries(dir), 1);
	/* Too large for the limit. */
	assert_int_equal(mse_file_read(path, 2, &data, &len, &e), -1);
	assert_null(data);
	/* Writing into a missing directory fails cleanly. */
	snprintf(path, sizeof(path), "%s/missing/key", dir);
	assert_int_equal(mse_file_write_atomic(path, "x", 1, MSE_MODE_SECRET, &e), -1);
	assert_non_null(strstr(e.field, "missing/key"));
	assert_int_equal(count_entries(dir), 1);
	tu_rmtree(dir);
}

static void file_mkdirs_and_remove_tree(void **state)
{
	const char *dir = tu_tmpdir();
	char path[256];
	struct mse_err e;

	(void)state;
	snprintf(path, sizeof(path), "%s/a/b/c/", dir);
	assert_int_equal(mse_file_mkdirs(path, 0700, &e), 0);
	assert_true(mse_file_exists(path));
	snprintf(path, sizeof(path), "%s/a/b/c/f", dir);
	tu_write(path, "x", 1);
	snprintf(path, sizeof(path), "%s/a", dir);
	assert_int_equal(mse_file_remove_tree(path, &e), 0);
	assert_false(mse_file_exists(path));
	assert_int_equal(mse_file_remove_tree(path, &e), 0);
	tu_rmtree(dir);
}

static void num_accepts_decimal_in_range_only(void **state)
{
	static const char *const bad[] = {"", "-1", "+1", " 1", "1 ", "1x", "0x10", "1e3", "1.0",
					  "18446744073709551616", "99999999999999999999999"};
	uint64_t v = 7;
	size_t i;

	(void)state;
	assert_int_equal(mse_num_parse("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(mse_num_parse("010", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(mse_num_parse("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		assert_int_equal(mse_num_parse(bad[i], 0, UINT64_MAX, &v), -1);
		assert_int_equal(v, 7); /* untouched */
	}
	assert_int_equal(mse_num_parse("11", 0, 10, &v), -1);
	assert_int_equal(mse_num_parse("0", 1, 10, &v), -1);
	assert_int_equal(mse_num_parse(NULL, 0, 10, &v), -1);
}

/* HOST:PORT from the environment (MSE_COORDINATOR_LISTEN, MSE_REPLICA_LISTEN). */
static void num_hostport_splits_and_refuses(void **state)
{
	static const char *const bad[] = {"", "host", ":80", "h:", "h:65536", "h:-1", "h:8 0",
					  "::1:80", "[::1]", "[]:80", "[::1:80", "a]:80", "h:0x10", "[a]b]:80"};
	char host[16];
	uint16_t port = 1;

	(void)state;
	assert_int_equal(mse_num_hostport("127.0.0.1:7443", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 7443);
	assert_int_equal(mse_num_hostport("[::1]:0", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 0);
	assert_int_equal(mse_num_hostport("localhost:65535", host, sizeof(host), &port), 0);
	assert_int_equal(port, 65535);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(mse_num_hostport(bad[i], host, sizeof(host), &port), -1);
	/* 15 characters fit 16 bytes with the NUL, 16 do not. */
	assert_int_equal(mse_num_hostport("abcdefghijklmno:1", host, sizeof(host), &port), 0);
	assert_int_equal(mse_num_hostport("abcdefghijklmnop:1", host, sizeof(host), &port), -1);
	assert_int_equal(mse_num_hostport(NULL, host, sizeof(host), &port), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_reads_little_endian_and_stops_at_end),
		cmocka_unit_test(buf_u64_decodes),
		cmocka_unit_test(hex_round_trip_and_rejects),
		cmocka_unit_test(num_accepts_decimal_in_range_only),
		cmocka_unit_test(num_hostport_splits_and_refuses),
		cmocka_unit_test(b64_rfc4648_vectors),
		cmocka_unit_test(err_formats_position_field_and_step),
		cmocka_unit_test(file_atomic_write_mode_and_no_temp_left),
		cmocka_unit_test(file_mkdirs_and_remove_tree),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
