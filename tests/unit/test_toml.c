/* SPDX-License-Identifier: Apache-2.0 */
/*
 * src/config/toml: the API around the parser — positions, lookups, order,
 * getters, date-times, error positions, bounds. (Conformance is proven by
 * tests/e2e/test_toml_suite.py over toml-test.)
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "config/toml.h"

static struct mse_toml *parse_ok(const char *text)
{
	struct mse_toml *doc = NULL;
	struct mse_err err;
	char msg[2048];

	mse_err_clear(&err);
	if (mse_toml_parse(text, strlen(text), "t.toml", &doc, &err) != 0)
		fail_msg("parse failed: %s", mse_err_str(&err, msg, sizeof(msg)));
	return doc;
}

/* Parses text that must fail; checks line, col and that msg contains want. */
static void parse_bad(const char *text, size_t len, int line, int col, const char *want)
{
	struct mse_toml *doc = NULL;
	struct mse_err err;
	char msg[2048];

	mse_err_clear(&err);
	assert_int_equal(mse_toml_parse(text, len, "t.toml", &doc, &err), -1);
	assert_null(doc);
	mse_err_str(&err, msg, sizeof(msg));
	if (err.line != line || err.col != col || !strstr(msg, want))
		fail_msg("for %s: expected %d:%d '%s', got %s", text, line, col, want, msg);
	assert_string_equal(err.file, "t.toml");
}

static void positions_are_line_and_codepoint_column(void **state)
{
	struct mse_toml *doc;
	const struct mse_toml_value *root, *t, *v;
	const struct mse_toml_kv *kv;

	(void)state;
	doc = parse_ok("# c\n"
		       "name = \"é\"  \n"
		       "\"é\" = 1\r\n"
		       "[tab]\n"
		       "  k = [1,\n"
		       "    2]\n"
		       "ml = \"\"\"\n"
		       "x\n"
		       "\"\"\"\n"
		       "after = true\n");
	root = mse_toml_root(doc);
	kv = mse_toml_table_entry(root, "name");
	assert_non_null(kv);
	assert_int_equal(kv->pos.line, 2);
	assert_int_equal(kv->pos.col, 1);
	assert_int_equal(kv->value->pos.line, 2);
	assert_int_equal(kv->value->pos.col, 8);
	/* "é" is 2 bytes but one column; the value after it is at col 7 */
	kv = mse_toml_table_at(root, 1);
	assert_int_equal(kv->key_len, 2);
	assert_int_equal(kv->value->pos.line, 3);
	assert_int_equal(kv->value->pos.col, 7);
	t = mse_toml_table_get(root, "tab");
	assert_non_null(t);
	assert_int_equal(t->pos.line, 4);
	v = mse_toml_table_get(t, "k");
	assert_int_equal(v->pos.line, 5);
	assert_int_equal(v->pos.col, 7);
	assert_int_equal(mse_toml_array_at(v, 1)->pos.line, 6);
	assert_int_equal(mse_toml_array_at(v, 1)->pos.col, 5);
	/* lines keep counting through multi-line strings */
	v = mse_toml_table_get(t, "after");
	assert_non_null(v);
	assert_int_equal(v->pos.line, 10);
	assert_int_equal(v->pos.col, 9);
	mse_toml_free(doc);
}

static void tables_keep_document_order_and_getters_check_types(void **state)
{
	struct mse_toml *doc;
	const struct mse_toml_value *root, *v;
	const char *s;
	size_t len;
	int64_t i;
	double f;
	int b;
	static const char *const order[] = {"z", "a", "m", "sub"};

	(void)state;
	doc = parse_ok("z = 'lit'\na = -9223372036854775808\nm = 1e3\nsub.x = false\nsub.y = 0x7fffffffffffffff\n");
	root = mse_toml_root(doc);
	assert_int_equal(mse_toml_len(root), 4);
	for (size_t k = 0; k < 4; k++)
		assert_string_equal(mse_toml_table_at(root, k)->key, order[k]);
	assert_null(mse_toml_table_at(root, 4));
	assert_int_equal(mse_toml_get_string(mse_toml_table_get(root, "z"), &s, &len), 0);
	assert_string_equal(s, "lit");
	assert_int_equal(len, 3);
	assert_int_equal(mse_toml_get_int(mse_toml_table_get(root, "a"), &i), 0);
	assert_true(i == INT64_MIN);
	assert_int_equal(mse_toml_get_float(mse_toml_table_get(root, "m"), &f), 0);
	assert_true(f == 1000.0);
	v = mse_toml_table_get(root, "sub");
	assert_int_equal(v->type, MSE_TOML_TABLE);
	assert_int_equal(mse_toml_get_bool(mse_toml_table_get(v, "x"), &b), 0);
	assert_int_equal(b, 0);
	assert_int_equal(mse_toml_get_int(mse_toml_table_get(v, "y"), &i), 0);
	assert_true(i == INT64_MAX);
	/* wrong types and absent keys */
	assert_int_equal(mse_toml_get_int(mse_toml_table_get(root, "z"), &i), -1);
	assert_int_equal(mse_toml_get_string(mse_toml_table_get(root, "a"), &s, &len), -1);
	assert_int_equal(mse_toml_get_bool(NULL, &b), -1);
	assert_null(mse_toml_table_get(root, "nope"));
	assert_null(mse_toml_table_get(mse_toml_table_get(root, "z"), "x"));
	assert_null(mse_toml_array_at(root, 0));
	assert_string_equal(mse_toml_type_name(MSE_TOML_DATETIME), "offset date-time");
	mse_toml_free(doc);
	mse_toml_free(NULL);
}

static void strings_may_hold_nul(void **state)
{
	struct mse_toml *doc;
	const char *s;
	size_t len;

	(void)state;
	doc = parse_ok("s = \"a\\u0000b\"\n");
	assert_int_equal(mse_toml_get_string(mse_toml_table_get(mse_toml_root(doc), "s"), &s, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "a\0b", 4);
	mse_toml_free(doc);
}

static void datetimes_parse_and_format(void **state)
{
	struct mse_toml_datetime dt;
	enum mse_toml_type kind;
	char buf[64];

	(void)state;
	assert_int_equal(mse_toml_parse_datetime("2024-03-14 00:00:00+00:00", 25, &dt, &kind), 0);
	assert_int_equal(kind, MSE_TOML_DATETIME);
	assert_string_equal(mse_toml_datetime_format(&dt, kind, buf, sizeof(buf)), "2024-03-14T00:00:00Z");
	assert_int_equal(mse_toml_parse_datetime("2025-01-01T00:00:00.000Z", 24, &dt, &kind), 0);
	assert_int_equal(dt.frac_digits, 3);
	assert_string_equal(mse_toml_datetime_format(&dt, kind, buf, sizeof(buf)), "2025-01-01T00:00:00.000Z");
	assert_int_equal(mse_toml_parse_datetime("1979-05-27t07:32:00.9999999999-07:30", 36, &dt, &kind), 0);
	assert_int_equal(dt.nanosecond, 999999999);
	assert_int_equal(dt.offset_minutes, -450);
	assert_string_equal(mse_toml_datetime_format(&dt, kind, buf, sizeof(buf)),
			    "1979-05-27T07:32:00.999999999-07:30");
	assert_int_equal(mse_toml_parse_datetime("2000-02-29", 10, &dt, &kind), 0);
	assert_int_equal(kind, MSE_TOML_DATE_LOCAL);
	assert_int_equal(mse_toml_parse_datetime("23:59:60", 8, &dt, &kind), 0);
	assert_int_equal(kind, MSE_TOML_TIME_LOCAL);
	assert_int_equal(mse_toml_parse_datetime("2024-01-01T10:00:00", 19, &dt, &kind), 0);
	assert_int_equal(kind, MSE_TOML_DATETIME_LOCAL);
	/* rejected: 1900 is not a leap year, trailing text, no seconds, bad offset */
	assert_int_equal(mse_toml_parse_datetime("1900-02-29", 10, &dt, &kind), -1);
	assert_int_equal(mse_toml_parse_datetime("2024-01-01 x", 12, &dt, &kind), -1);
	assert_int_equal(mse_toml_parse_datetime("2024-01-01T10:00", 16, &dt, &kind), -1);
	assert_int_equal(mse_toml_parse_datetime("2024-01-01T10:00:00+24:00", 25, &dt, &kind), -1);
	assert_int_equal(mse_toml_parse_datetime("", 0, &dt, &kind), -1);
}

static void errors_name_line_column_and_text(void **state)
{
	(void)state;
	parse_bad("a = 1\nb = 2\nb = 3\n", 18, 3, 1, "duplicate key 'b' (first defined at line 2)");
	parse_bad("x = 0777\n", 9, 1, 5, "leading zeros are not allowed, got '0777'");
	parse_bad("[t]\n[t]\n", 8, 2, 2, "table 't' is already defined");
	parse_bad("s = \"abc\n", 9, 1, 9, "newline in single-line string, got end of line");
	parse_bad("s = \"a\\qb\"\n", 11, 1, 7, "invalid escape sequence");
	parse_bad("t = {a = 1,}\n", 13, 1, 12, "trailing comma");
	parse_bad("a.b = 1\n[a.b]\n", 14, 2, 4, "already defined");
	parse_bad("x = 1 2\n", 8, 1, 7, "expected a newline or end of file, got '2'");
	parse_bad("k = \"\xc3\x28\"\n", 8, 1, 6, "invalid UTF-8 byte 0xc3");
	parse_bad("é = 1\n", 7, 1, 1, "expected a key, got 'é = 1'");
	parse_bad("k = \"ok\"\nx = 1\x01\n", 16, 2, 6, "got '\\x01'");
	parse_bad("a = [1,\n2,\n", 11, 3, 1, "got end of file");
	parse_bad("n = 9223372036854775808\n", 24, 1, 5, "does not fit in 64 bits");
	parse_bad("d = 2023-02-29\n", 15, 1, 5, "invalid date or time");
	parse_bad("a = \"x\"\0\n", 9, 1, 8, "expected a newline or end of file, got '\\x00'");
}

static void nesting_is_bounded(void **state)
{
	size_t n = 100000, i;
	char *s = malloc(n * 2 + 16);

	(void)state;
	memcpy(s, "a = ", 4);
	for (i = 0; i < n; i++)
		s[4 + i] = '[';
	for (i = 0; i < n; i++)
		s[4 + n + i] = ']';
	parse_bad(s, 4 + 2 * n, 1, 4 + MSE_TOML_MAX_DEPTH + 1, "nesting deeper than");
	/* exactly the limit is fine */
	{
		struct mse_toml *doc = NULL;
		struct mse_err err;
		size_t d = MSE_TOML_MAX_DEPTH;

		for (i = 0; i < d; i++)
			s[4 + i] = '[';
		for (i = 0; i < d; i++)
			s[4 + d + i] = ']';
		assert_int_equal(mse_toml_parse(s, 4 + 2 * d, NULL, &doc, &err), 0);
		mse_toml_free(doc);
	}
	free(s);
}

/*
 * Input placed right before an unmapped page: any read past len faults.
 * Every prefix of a document exercises each "unexpected end" path.
 */
static void never_reads_past_the_end(void **state)
{
	static const char text[] = "a = \"\"\"x\\\n y\"\"\" # c\n[[t.u]]\nb = {c = [1, 0x1f, 1e-3, inf],"
				   " d.e = 1979-05-27T07:32:00.5-01:00}\nf = 07:32:00\ng = '''z'''\n";
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *map;
	size_t n;

	(void)state;
	map = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(map != MAP_FAILED);
	assert_int_equal(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
	for (n = 0; n <= sizeof(text) - 1; n++) {
		struct mse_toml *doc = NULL;
		struct mse_err err;
		char *at = (char *)map + pg - n;

		memcpy(at, text, n);
		if (mse_toml_parse(at, n, NULL, &doc, &err) == 0)
			mse_toml_free(doc);
		else
			assert_true(err.line >= 1 && err.col >= 1);
	}
	/* the whole document parses */
	{
		struct mse_toml *doc = NULL;
		struct mse_err err;
		const struct mse_toml_value *t;

		assert_int_equal(mse_toml_parse((char *)map + pg - (sizeof(text) - 1), sizeof(text) - 1, NULL,
						&doc, &err),
				 0);
		t = mse_toml_table_get(mse_toml_root(doc), "t");
		assert_non_null(t);
		assert_int_equal(mse_toml_len(mse_toml_table_get(t, "u")), 1);
		mse_toml_free(doc);
	}
	munmap(map, (size_t)pg * 2);
}

/* Builds "pre" + n times "rep" + "post" in a fresh buffer; *len is its length. */
static char *repeat(const char *pre, const char *rep, size_t n, const char *post, size_t *len)
{
	size_t lp = strlen(pre), lr = strlen(rep), lq = strlen(post), i;
	char *s = malloc(lp + lr * n + lq + 1);

	assert_non_null(s);
	memcpy(s, pre, lp);
	for (i = 0; i < n; i++)
		memcpy(s + lp + i * lr, rep, lr);
	memcpy(s + lp + lr * n, post, lq + 1);
	*len = lp + lr * n + lq;
	return s;
}

/*
 * Every way of nesting counts towards the one bound: table headers
 * [a.a.a…] (the crash input: 25,000 deep, freed recursively), dotted keys,
 * headers plus dotted keys under them, and inline tables holding dotted keys.
 */
static void dotted_keys_and_headers_are_bounded(void **state)
{
	struct mse_toml *doc = NULL;
	struct mse_err err;
	size_t len;
	char *s;

	(void)state;
	/* [a.a.a…a]: the 129th segment is refused at its column */
	s = repeat("[a", ".a", 25000, "]\n", &len);
	parse_bad(s, len, 1, 2 + 2 * MSE_TOML_MAX_DEPTH, "nesting deeper than 128");
	free(s);
	s = repeat("a", ".a", 25000, " = 1\n", &len);
	parse_bad(s, len, 1, 1 + 2 * MSE_TOML_MAX_DEPTH, "nesting deeper than 128");
	free(s);
	/* 128 tables deep is fine, for headers and for dotted keys alike */
	s = repeat("[a", ".a", MSE_TOML_MAX_DEPTH - 1, "]\nk = 1\n", &len);
	assert_int_equal(mse_toml_parse(s, len, NULL, &doc, &err), 0);
	mse_toml_free(doc);
	free(s);
	s = repeat("a", ".a", MSE_TOML_MAX_DEPTH - 1, ".k = 1\n", &len);
	assert_int_equal(mse_toml_parse(s, len, NULL, &doc, &err), 0);
	mse_toml_free(doc);
	free(s);
	/* a header 100 deep, then a dotted key 40 deep under it: 140 */
	{
		size_t l1, l2;
		char *h = repeat("[a", ".a", 99, "]\n", &l1);
		char *k = repeat("b", ".b", 39, " = 1\n", &l2);

		s = malloc(l1 + l2 + 1);
		memcpy(s, h, l1);
		memcpy(s + l1, k, l2 + 1);
		parse_bad(s, l1 + l2, 2, 1 + 2 * (MSE_TOML_MAX_DEPTH - 100), "nesting deeper than 128");
		free(s);
		free(h);
		free(k);
	}
	/* arrays of tables nest an array and a table per level */
	s = repeat("[[a", ".a", 25000, "]]\n", &len);
	parse_bad(s, len, 1, 3 + 2 * MSE_TOML_MAX_DEPTH, "nesting deeper than 128");
	free(s);
	/* inline tables holding dotted keys: 100 inline levels, then 40 dotted */
	{
		size_t l1, l2, l3;
		char *a = repeat("x = ", "{y = ", 99, "{", &l1);
		char *b = repeat("b", ".b", 39, " = 1", &l2);
		char *c = repeat("", "}", 100, "\n", &l3);

		s = malloc(l1 + l2 + l3 + 1);
		memcpy(s, a, l1);
		memcpy(s + l1, b, l2);
		memcpy(s + l1 + l2, c, l3 + 1);
		assert_int_equal(mse_toml_parse(s, l1 + l2 + l3, "t.toml", &doc, &err), -1);
		assert_non_null(strstr(err.msg, "nesting deeper than 128"));
		free(s);
		free(a);
		free(b);
		free(c);
	}
}

/*
 * 800 KB documents of the shapes that were quadratic (one long line of
 * values or keys: columns were recounted from the line start; one table
 * with 60,000 keys or headers: keys were found by a linear scan). Linear
 * work takes well under a second even under ASan; the bound is generous
 * (a loaded CI machine), the quadratic parser took minutes.
 */
static void large_documents_parse_in_linear_time(void **state)
{
	static const struct {
		const char *pre, *head, *tail, *post;
		int numbered; /* a counter between head and tail keeps keys apart */
	} shapes[] = {
		{"a = [", "1,", "", "1]\n", 0},
		{"a = {", "k", " = 1, ", "z = 1}\n", 1},
		{"", "k", " = 1\n", "", 1},
		{"", "[t", "]\n", "", 1},
		{"", "t.k", " = 1\n", "", 1},
		{"", "[[t]]\n", "", "", 0},
	};
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct mse_toml *doc = NULL;
		struct mse_err err;
		size_t cap = 820 * 1000, len = 0;
		char *s = malloc(cap + 64);
		struct timespec t0, t1;
		double secs;

		assert_non_null(s);
		len = (size_t)snprintf(s, cap, "%s", shapes[i].pre);
		for (j = 0; len < 800 * 1000; j++) {
			if (shapes[i].numbered)
				len += (size_t)snprintf(s + len, cap - len, "%s%06zu%s", shapes[i].head, j,
							shapes[i].tail);
			else
				len += (size_t)snprintf(s + len, cap - len, "%s%s", shapes[i].head, shapes[i].tail);
		}
		len += (size_t)snprintf(s + len, cap + 64 - len, "%s", shapes[i].post);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (mse_toml_parse(s, len, "big.toml", &doc, &err) != 0)
			fail_msg("shape %zu: %s", i, err.msg);
		mse_toml_free(doc);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (secs > 10.0)
			fail_msg("shape %zu ('%s'): %zu bytes took %.1f s", i, shapes[i].head, len, secs);
		free(s);
	}
}

/* Dotted keys and tables a header only created implicitly (TOML 1.0 §Keys, §Table). */
static void dotted_keys_and_implicit_tables(void **state)
{
	struct mse_toml *doc;
	const struct mse_toml_value *b;

	(void)state;
	doc = parse_ok("[a.b.x]\nz = 9\n[a]\nb.c.t = 1\n[a.b.y]\n");
	b = mse_toml_table_get(mse_toml_table_get(mse_toml_root(doc), "a"), "b");
	assert_int_equal(mse_toml_len(b), 3); /* x, c, y */
	assert_non_null(mse_toml_table_get(mse_toml_table_get(b, "c"), "t"));
	mse_toml_free(doc);
	/* ... but then a.b is defined: no [a.b] header afterwards */
	parse_bad("[a.b.x]\n[a]\nb.c = 1\n[a.b]\n", 26, 4, 4, "table 'a.b' is already defined");
	/* and a header-defined table is never extended by dotted keys */
	parse_bad("[a.b.c]\n[a]\nb.c.t = 1\n", 22, 3, 3, "cannot add keys to 'b.c'");
}

static void special_floats(void **state)
{
	struct mse_toml *doc;
	const struct mse_toml_value *r;
	double f;

	(void)state;
	doc = parse_ok("a = -inf\nb = +nan\nc = -0.0\nd = 6.626e-34\n");
	r = mse_toml_root(doc);
	assert_int_equal(mse_toml_get_float(mse_toml_table_get(r, "a"), &f), 0);
	assert_true(isinf(f) && f < 0);
	assert_int_equal(mse_toml_get_float(mse_toml_table_get(r, "b"), &f), 0);
	assert_true(isnan(f));
	assert_int_equal(mse_toml_get_float(mse_toml_table_get(r, "c"), &f), 0);
	assert_true(f == 0.0 && signbit(f));
	assert_int_equal(mse_toml_get_float(mse_toml_table_get(r, "d"), &f), 0);
	assert_true(f == 6.626e-34);
	mse_toml_free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(positions_are_line_and_codepoint_column),
		cmocka_unit_test(tables_keep_document_order_and_getters_check_types),
		cmocka_unit_test(strings_may_hold_nul),
		cmocka_unit_test(datetimes_parse_and_format),
		cmocka_unit_test(errors_name_line_column_and_text),
		cmocka_unit_test(nesting_is_bounded),
		cmocka_unit_test(never_reads_past_the_end),
		cmocka_unit_test(special_floats),
		cmocka_unit_test(dotted_keys_and_implicit_tables),
		cmocka_unit_test(dotted_keys_and_headers_are_bounded),
		cmocka_unit_test(large_documents_parse_in_linear_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
