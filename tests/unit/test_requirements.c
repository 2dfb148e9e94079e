/* SPDX-License-Identifier: Apache-2.0 */
/* config/requirements: requirements.txt against Debian's Python. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/requirements.h"

static void parse_names_specs_and_lines(void **state)
{
	static const char text[] = "# deps\n\nflask>=2.0 ; python_version > '3'\n"
				   "  requests[socks] == 2.28.1  # pinned\nPyYAML\n";
	struct mse_requirement *r;
	struct mse_err err = {0};
	size_t n;

	(void)state;
	assert_int_equal(mse_requirements_parse(text, sizeof(text) - 1, "requirements.txt", &r, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(r[0].name, "flask");
	assert_string_equal(r[0].spec, ">=2.0");
	assert_int_equal(r[0].line, 3);
	assert_string_equal(r[1].name, "requests");
	assert_string_equal(r[1].spec, "== 2.28.1");
	assert_int_equal(r[1].line, 4);
	assert_string_equal(r[2].name, "PyYAML");
	assert_string_equal(r[2].spec, "");
	free(r);
}

static void parse_rejects_what_an_enclave_cannot_install(void **state)
{
	struct mse_requirement *r;
	struct mse_err err = {0};
	size_t n;

	(void)state;
	assert_int_equal(mse_requirements_parse("flask\n-r other.txt\n", 20, "req.txt", &r, &n, &err), -1);
	assert_int_equal(err.line, 2);
	assert_string_equal(err.file, "req.txt");
	assert_int_equal(mse_requirements_parse("pkg @ https://x/y.whl\n", 22, "req.txt", &r, &n, &err), -1);
	assert_non_null(strstr(err.msg, "direct URL"));
	assert_int_equal(mse_requirements_parse("flask>=1;\n", 10, "r", &r, &n, &err), 0);
	free(r);
	assert_int_equal(mse_requirements_parse("flask $1\n", 9, "r", &r, &n, &err), -1);
	assert_int_equal(err.col, 7);
}

/* Columns count from the start of the file's line, leading blanks included. */
static void parse_columns_include_leading_blanks(void **state)
{
	struct mse_requirement *r;
	struct mse_err err = {0};
	size_t n;

	(void)state;
	assert_int_equal(mse_requirements_parse("   flask $1\n", 12, "r", &r, &n, &err), -1);
	assert_int_equal(err.line, 1);
	assert_int_equal(err.col, 10);
	assert_int_equal(mse_requirements_parse("\t-e .\n", 6, "r", &r, &n, &err), -1);
	assert_int_equal(err.col, 2);
	/* Found by fuzz_requirements: a NUL in the specifier was taken as allowed. */
	assert_int_equal(mse_requirements_parse("flask>=2.0 \0\0x\n", 15, "r", &r, &n, &err), -1);
	assert_int_equal(err.col, 12);
	assert_non_null(strstr(err.msg, "byte 0x00"));
}

/* Read as pip's auto_decode does: BOMs select UTF-8/16/32; no BOM is UTF-8. */
static void parse_honours_byte_order_marks(void **state)
{
	/* "flask>=2\nrequests\n" as Notepad saves it: UTF-8 with BOM, UTF-16 LE/BE with BOM. */
	static const char u8bom[] = "\xef\xbb\xbf" "flask>=2\nrequests\n";
	static const char u16le[] = "\xff\xfe" "f\0l\0a\0s\0k\0>\0=\0" "2\0\n\0r\0e\0q\0u\0e\0s\0t\0s\0\n\0";
	static const char u16be[] = "\xfe\xff" "\0f\0l\0a\0s\0k\0>\0=\0" "2\0\n\0r\0e\0q\0u\0e\0s\0t\0s\0\n";
	static const char u32le[] = "\xff\xfe\0\0" "f\0\0\0l\0\0\0a\0\0\0s\0\0\0k\0\0\0\n\0\0\0";
	const struct {
		const char *t;
		size_t n, count;
	} ok[] = {{u8bom, sizeof(u8bom) - 1, 2}, {u16le, sizeof(u16le) - 1, 2},
		  {u16be, sizeof(u16be) - 1, 2}, {u32le, sizeof(u32le) - 1, 1}};
	struct mse_requirement *r;
	struct mse_err err = {0};
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(mse_requirements_parse(ok[i].t, ok[i].n, "r", &r, &n, &err), 0);
		assert_int_equal(n, ok[i].count);
		assert_string_equal(r[0].name, "flask");
		if (n > 1) {
			assert_string_equal(r[0].spec, ">=2");
			assert_string_equal(r[1].name, "requests");
			assert_int_equal(r[1].line, 2);
		}
		free(r);
	}
	/* UTF-16 without a mark: refused, naming the encoding (pip would fail too). */
	assert_int_equal(mse_requirements_parse(u16le + 2, sizeof(u16le) - 3, "r", &r, &n, &err), -1);
	assert_non_null(strstr(err.msg, "UTF-16LE without a byte-order mark"));
	assert_int_equal(mse_requirements_parse(u16be + 2, sizeof(u16be) - 3, "r", &r, &n, &err), -1);
	assert_non_null(strstr(err.msg, "UTF-16BE"));
	/* Latin-1: not UTF-8, with the byte and where. */
	assert_int_equal(mse_requirements_parse("caf\xe9\n", 5, "r", &r, &n, &err), -1);
	assert_non_null(strstr(err.msg, "not UTF-8: invalid byte 0xe9 at offset 3"));
	/* An odd-length UTF-16 text is named as such. */
	assert_int_equal(mse_requirements_parse(u16le, sizeof(u16le) - 2, "r", &r, &n, &err), -1);
	assert_non_null(strstr(err.msg, "UTF-16LE"));
	/* The mismatch is carried in the error itself. */
	assert_int_equal(mse_requirements_parse("==1\n", 4, "r", &r, &n, &err), -1);
	assert_string_equal(err.expected, "a distribution name");
	assert_string_equal(err.actual, "\"==1\"");
}

static void check_against_the_real_interpreter(void **state)
{
	const char *dir = tu_tmpdir();
	struct mse_err err = {0};
	char path[256];

	(void)state;
	snprintf(path, sizeof(path), "%s/requirements.txt", dir);
	/* python3-flask is a dependency of the project: present. */
	tu_write(path, "flask\nFlask>=1.0\n", 17);
	assert_int_equal(mse_requirements_check(path, tu_python(), &err), 0);
	/* Missing and mismatched ones are each named with their line. */
	tu_write(path, "flask<1.0\nno_such_dist_xyz\n", 27);
	assert_int_equal(mse_requirements_check(path, tu_python(), &err), -1);
	assert_non_null(strstr(err.msg, "2 requirements not available"));
	assert_non_null(strstr(err.msg, "requirements.txt:1: flask: installed"));
	assert_non_null(strstr(err.msg, "requirements.txt:2: no_such_dist_xyz: not installed"));
	assert_non_null(strstr(err.msg, "python3-no-such-dist-xyz"));
	/* A specifier PEP 440 rejects is named with its line, not "cannot run python". */
	tu_write(path, "flask\nflask >>1.0\n", 17);
	assert_int_equal(mse_requirements_check(path, tu_python(), &err), -1);
	assert_non_null(strstr(err.msg, "requirements.txt:2: flask: \">>1.0\" is not a valid version specifier"));
	/* No file: nothing required. */
	snprintf(path, sizeof(path), "%s/none.txt", dir);
	assert_int_equal(mse_requirements_check(path, tu_python(), &err), 0);
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_names_specs_and_lines),
		cmocka_unit_test(parse_rejects_what_an_enclave_cannot_install),
		cmocka_unit_test(parse_columns_include_leading_blanks),
		cmocka_unit_test(parse_honours_byte_order_marks),
		cmocka_unit_test(check_against_the_real_interpreter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
