/* SPDX-License-Identifier: Apache-2.0 */
/*
 * src/config/ignore: the examples of gitignore(5), parse errors, loading,
 * and the walker's refusals (symlinks that escape, loops, special files).
 * The matcher is checked path by path against git itself in
 * tests/e2e/test_ignore_oracle.py; these are the documented cases, kept here
 * so a failure names the rule that broke.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/ignore.h"

static struct mse_ignore *parse(const char *text)
{
	struct mse_ignore *ign = NULL;
	struct mse_err err;

	mse_err_clear(&err);
	if (mse_ignore_parse(text, strlen(text), NULL, &ign, &err) != 0)
		fail_msg("parse failed: %s", err.msg);
	return ign;
}

#define IGN(ign, path, is_dir) assert_int_equal(mse_ignore_match(ign, path, is_dir), 1)
#define KEEP(ign, path, is_dir) assert_int_equal(mse_ignore_match(ign, path, is_dir), 0)

/* gitignore(5), "PATTERN FORMAT" and "EXAMPLES". */
static void gitignore_manual_examples(void **state)
{
	struct mse_ignore *ign;

	(void)state;
	/* "doc/frotz/" matches doc/frotz directory, but not a/doc/frotz directory */
	ign = parse("doc/frotz/\n");
	IGN(ign, "doc/frotz", 1);
	KEEP(ign, "doc/frotz", 0);
	KEEP(ign, "a/doc/frotz", 1);
	IGN(ign, "doc/frotz/x", 0);
	mse_ignore_free(ign);
	/* "frotz/" matches frotz and a/frotz that is a directory */
	ign = parse("frotz/\n");
	IGN(ign, "frotz", 1);
	IGN(ign, "a/frotz", 1);
	KEEP(ign, "a/frotz", 0);
	mse_ignore_free(ign);
	/* "foo/STAR" matches foo/test.json and foo/bar, not foo/bar/hello.c */
	ign = parse("foo/*\n");
	IGN(ign, "foo/test.json", 0);
	IGN(ign, "foo/bar", 1);
	KEEP(ign, "foo", 1);
	/* ... by the pattern itself; it is excluded through its parent foo/bar. */
	IGN(ign, "foo/bar/hello.c", 0);
	mse_ignore_free(ign);
	ign = parse("foo/*.c\n");
	IGN(ign, "foo/hello.c", 0);
	KEEP(ign, "foo/bar/hello.c", 0);
	mse_ignore_free(ign);
	/* "**" forms */
	ign = parse("**/foo\n");
	IGN(ign, "foo", 0);
	IGN(ign, "a/b/foo", 0);
	mse_ignore_free(ign);
	ign = parse("**/foo/bar\n");
	IGN(ign, "foo/bar", 0);
	IGN(ign, "x/foo/bar", 0);
	KEEP(ign, "foo/x/bar", 0);
	mse_ignore_free(ign);
	ign = parse("abc/**\n");
	IGN(ign, "abc/x", 0);
	IGN(ign, "abc/x/y", 0);
	KEEP(ign, "abc", 1);
	mse_ignore_free(ign);
	ign = parse("a/**/b\n");
	IGN(ign, "a/b", 0);
	IGN(ign, "a/x/b", 0);
	IGN(ign, "a/x/y/b", 0);
	KEEP(ign, "x/a/b", 0);
	mse_ignore_free(ign);
	/* Exclude everything except directory foo/bar */
	ign = parse("/*\n!/foo\n/foo/*\n!/foo/bar\n");
	IGN(ign, "x", 0);
	KEEP(ign, "foo", 1);
	IGN(ign, "foo/x", 0);
	KEEP(ign, "foo/bar", 1);
	KEEP(ign, "foo/bar/deep/file", 0);
	mse_ignore_free(ign);
}

static void negation_anchoring_escapes_and_spaces(void **state)
{
	struct mse_ignore *ign;
	int line;

	(void)state;
	ign = parse("# comment\n*.py\n\n!keep.py\n/build\n\\#hash\n\\!bang\ntrail   \nesc\\ \n");
	assert_int_equal(mse_ignore_count(ign), 7);
	assert_int_equal(mse_ignore_check(ign, "a/x.py", 0, &line), MSE_IGNORE_EXCLUDED);
	assert_int_equal(line, 2);
	assert_int_equal(mse_ignore_check(ign, "a/keep.py", 0, &line), MSE_IGNORE_INCLUDED);
	assert_int_equal(line, 4);
	assert_int_equal(mse_ignore_check(ign, "other", 0, &line), MSE_IGNORE_NONE);
	assert_int_equal(line, 0);
	IGN(ign, "build", 1);
	KEEP(ign, "src/build", 1);
	IGN(ign, "#hash", 0);
	KEEP(ign, "# comment", 0);
	IGN(ign, "!bang", 0);
	IGN(ign, "trail", 0);
	KEEP(ign, "trail ", 0);
	IGN(ign, "esc ", 0);
	KEEP(ign, "esc", 0);
	/* A trailing slash on the query means "directory". */
	IGN(ign, "build/", 0);
	mse_ignore_free(ign);

	/* A parent directory excluded: a negation cannot re-include below it. */
	ign = parse("logs/\n!logs/keep.txt\n");
	IGN(ign, "logs/keep.txt", 0);
	assert_int_equal(mse_ignore_check(ign, "logs/keep.txt", 0, &line), MSE_IGNORE_EXCLUDED);
	assert_int_equal(line, 1);
	mse_ignore_free(ign);

	/* Classes, '?', and '*' not crossing '/'. */
	ign = parse("[a-c]?.txt\n[!x]/*.c\nd*/e\n[[:digit:]]*\n");
	IGN(ign, "b1.txt", 0);
	KEEP(ign, "d1.txt", 0);
	IGN(ign, "y/z.c", 0);
	KEEP(ign, "x/z.c", 0);
	KEEP(ign, "y/q/z.c", 0);
	IGN(ign, "dir/e", 0);
	KEEP(ign, "d/x/e", 0);
	IGN(ign, "42", 0);
	mse_ignore_free(ign);

	/* CRLF and a BOM. */
	ign = parse("\xef\xbb\xbf" "one\r\ntwo\r\n");
	IGN(ign, "one", 0);
	IGN(ign, "two", 0);
	mse_ignore_free(ign);

	/* Nothing ignores nothing. */
	ign = parse("");
	assert_int_equal(mse_ignore_count(ign), 0);
	KEEP(ign, "a", 0);
	mse_ignore_free(ign);
	KEEP(NULL, "a", 0);
}

static void parse_errors_say_where(void **state)
{
	struct mse_ignore *ign = (void *)1;
	struct mse_err err;
	char *longline;

	(void)state;
	mse_err_clear(&err);
	assert_int_equal(mse_ignore_parse("a\nb\0c\n", 6, "x/.mseignore", &ign, &err), -1);
	assert_null(ign);
	assert_string_equal(err.file, "x/.mseignore");
	assert_int_equal(err.line, 2);
	assert_int_equal(err.col, 2);
	assert_non_null(strstr(err.msg, "NUL"));

	longline = malloc(MSE_IGNORE_MAX_LINE + 10);
	assert_non_null(longline);
	memcpy(longline, "ok\n", 3);
	memset(longline + 3, 'a', MSE_IGNORE_MAX_LINE + 1);
	mse_err_clear(&err);
	assert_int_equal(
		mse_ignore_parse(longline, MSE_IGNORE_MAX_LINE + 4, NULL, &ign, &err), -1);
	assert_int_equal(err.line, 2);
	assert_non_null(strstr(err.msg, "longer than"));
	/* A comment line is not a pattern, whatever its length. */
	longline[3] = '#';
	assert_int_equal(
		mse_ignore_parse(longline, MSE_IGNORE_MAX_LINE + 4, NULL, &ign, &err), 0);
	assert_int_equal(mse_ignore_count(ign), 1);
	mse_ignore_free(ign);
	free(longline);
}

/* The built-in default is byte for byte MSE's own .mseignore. */
static void default_is_mse_default(void **state)
{
	size_t len;
	uint8_t *want = tu_read(tu_vector("mse-cli-config/.mseignore"), &len);
	size_t have = strlen(mse_ignore_default);

	(void)state;
	/* MSE's file has no final newline; ours has one. */
	assert_true(have == len || (have == len + 1 && mse_ignore_default[len] == '\n'));
	assert_memory_equal(mse_ignore_default, want, len);
	free(want);
}

static void mkfile(const char *dir, const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	tu_write(path, "x", 1);
}

static void mkdir_in(const char *dir, const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static void symlink_in(const char *dir, const char *target, const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_int_equal(symlink(target, path), 0);
}

static int list(const char *dir, const char *patterns, struct mse_ignore_files *f,
		struct mse_err *err)
{
	struct mse_ignore *ign = patterns ? parse(patterns) : NULL;
	int rc;

	mse_err_clear(err);
	rc = mse_ignore_list(dir, ign, f, err);
	mse_ignore_free(ign);
	return rc;
}

static void walker_lists_sorted_and_uses_the_default(void **state)
{
	char *dir = strdup(tu_tmpdir());
	struct mse_ignore_files f;
	struct mse_err err;

	(void)state;
	mkfile(dir, "app.py");
	mkfile(dir, "mse.toml");
	mkfile(dir, "secrets.json");
	mkfile(dir, ".env");
	mkdir_in(dir, "__pycache__");
	mkfile(dir, "__pycache__/app.cpython-311.pyc");
	mkdir_in(dir, "pkg");
	mkfile(dir, "pkg/z.py");
	mkfile(dir, "pkg/a.py");
	mkfile(dir, "pkg.py");
	mkdir_in(dir, ".git");
	mkfile(dir, ".git/config");
	/* No .mseignore: MSE's defaults apply. */
	assert_int_equal(list(dir, NULL, &f, &err), 0);
	assert_int_equal(f.n, 4);
	assert_string_equal(f.paths[0], "app.py");
	assert_string_equal(f.paths[1], "pkg.py");
	assert_string_equal(f.paths[2], "pkg/a.py");
	assert_string_equal(f.paths[3], "pkg/z.py");
	mse_ignore_files_free(&f);
	mse_ignore_files_free(&f); /* idempotent */
	/* A .mseignore of its own replaces the default (and is itself listed). */
	mkfile(dir, ".mseignore");
	assert_int_equal(list(dir, NULL, &f, &err), 0);
	assert_int_equal(f.n, 10); /* all ten files */
	mse_ignore_files_free(&f);
	/* An explicit list wins over the file. */
	assert_int_equal(list(dir, "*\n!*.py\n!pkg/\npkg/z*\n", &f, &err), 0);
	assert_int_equal(f.n, 3);
	assert_string_equal(f.paths[0], "app.py");
	assert_string_equal(f.paths[1], "pkg.py");
	assert_string_equal(f.paths[2], "pkg/a.py");
	mse_ignore_files_free(&f);
	tu_rmtree(dir);
	free(dir);
}

static void walker_refuses_unsafe_entries_unless_ignored(void **state)
{
	char *dir = strdup(tu_tmpdir());
	char path[512];
	struct mse_ignore_files f;
	struct mse_err err;

	(void)state;
	mkfile(dir, "app.py");
	mkdir_in(dir, "lib");
	mkfile(dir, "lib/m.py");
	/* Symlinks that stay inside are followed. */
	symlink_in(dir, "app.py", "alias.py");
	symlink_in(dir, "lib", "lib2");
	assert_int_equal(list(dir, "", &f, &err), 0);
	assert_int_equal(f.n, 4);
	assert_string_equal(f.paths[0], "alias.py");
	assert_string_equal(f.paths[1], "app.py");
	assert_string_equal(f.paths[2], "lib/m.py");
	assert_string_equal(f.paths[3], "lib2/m.py");
	mse_ignore_files_free(&f);
	/* A dir/ pattern applies to a symlink to a directory. */
	assert_int_equal(list(dir, "lib2/\n", &f, &err), 0);
	assert_int_equal(f.n, 3);
	mse_ignore_files_free(&f);

	/* Escaping symlink: an error naming it, and nothing returned... */
	symlink_in(dir, "/etc/passwd", "lib/passwd");
	assert_int_equal(list(dir, "", &f, &err), -1);
	assert_null(f.paths);
	assert_int_equal(f.n, 0);
	assert_non_null(strstr(err.field, "/passwd")); /* lib/ or lib2/ */
	assert_non_null(strstr(err.msg, "outside the code directory"));
	/* ...unless it is ignored (its directory is not even entered). */
	assert_int_equal(list(dir, "passwd\n", &f, &err), 0);
	mse_ignore_files_free(&f);
	assert_int_equal(list(dir, "/lib/\n/lib2/\n", &f, &err), 0);
	mse_ignore_files_free(&f);
	snprintf(path, sizeof(path), "%s/lib/passwd", dir);
	unlink(path);
	symlink_in(dir, "../..", "lib/up");
	assert_int_equal(list(dir, "", &f, &err), -1);
	assert_non_null(strstr(err.msg, "outside the code directory"));
	unlink(path);
	snprintf(path, sizeof(path), "%s/lib/up", dir);
	unlink(path);

	/* A loop back to a parent. */
	symlink_in(dir, "..", "lib/loop");
	assert_int_equal(list(dir, "", &f, &err), -1);
	assert_non_null(strstr(err.field, "/loop"));
	assert_non_null(strstr(err.msg, "loop"));
	unlink(path);
	snprintf(path, sizeof(path), "%s/lib/loop", dir);
	unlink(path);

	/* Dangling. */
	symlink_in(dir, "nowhere", "dangling");
	assert_int_equal(list(dir, "", &f, &err), -1);
	assert_non_null(strstr(err.field, "dangling"));
	assert_int_equal(list(dir, "dangling\n", &f, &err), 0);
	mse_ignore_files_free(&f);
	snprintf(path, sizeof(path), "%s/dangling", dir);
	unlink(path);

	/* A FIFO. */
	snprintf(path, sizeof(path), "%s/lib/pipe", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(list(dir, "", &f, &err), -1);
	assert_non_null(strstr(err.field, "/pipe"));
	assert_non_null(strstr(err.msg, "FIFO"));
	assert_int_equal(list(dir, "pipe\n", &f, &err), 0);
	mse_ignore_files_free(&f);

	/* Not a directory / missing. */
	snprintf(path, sizeof(path), "%s/app.py", dir);
	assert_int_equal(list(path, "", &f, &err), -1);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(list(path, "", &f, &err), -1);
	assert_non_null(strstr(err.field, "missing"));

	/* A .mseignore that is a directory is an error, not "no patterns". */
	mkdir_in(dir, ".mseignore");
	assert_int_equal(list(dir, NULL, &f, &err), -1);
	assert_non_null(strstr(err.msg, "directory"));
	tu_rmtree(dir);
	free(dir);
}

static void walker_depth_limit(void **state)
{
	char *dir = strdup(tu_tmpdir());
	char path[8192];
	size_t n;
	struct mse_ignore_files f;
	struct mse_err err;

	(void)state;
	n = (size_t)snprintf(path, sizeof(path), "%s", dir);
	for (int i = 0; i < MSE_IGNORE_MAX_DEPTH + 2; i++) {
		n += (size_t)snprintf(path + n, sizeof(path) - n, "/d");
		assert_int_equal(mkdir(path, 0755), 0);
	}
	assert_int_equal(list(dir, "", &f, &err), -1);
	assert_non_null(strstr(err.msg, "deeper"));
	/* Ignoring the deep part makes it fine. */
	assert_int_equal(list(dir, "/d/d/d/\n", &f, &err), 0);
	assert_int_equal(f.n, 0);
	mse_ignore_files_free(&f);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gitignore_manual_examples),
		cmocka_unit_test(negation_anchoring_escapes_and_spaces),
		cmocka_unit_test(parse_errors_say_where),
		cmocka_unit_test(default_is_mse_default),
		cmocka_unit_test(walker_lists_sorted_and_uses_the_default),
		cmocka_unit_test(walker_refuses_unsafe_entries_unless_ignored),
		cmocka_unit_test(walker_depth_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
