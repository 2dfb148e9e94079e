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
		cmocka_unit_test(check_against_the_real_interpreter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
