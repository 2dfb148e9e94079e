/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_toml — a strict TOML 1.0.0 parser (https://toml.io/en/v1.0.0).
 *
 * mse_toml_parse() turns a document into a tree of struct mse_toml_value.
 * Every value and every key records the line:col (1-based, columns counted
 * in Unicode code points) where it was written, so that callers such as the
 * mse.toml loader can point the user at the exact spot of a bad setting.
 *
 * Strictness: the input must be valid UTF-8 (a leading BOM is skipped), and
 * everything TOML 1.0 rejects is rejected — control characters, bare CR,
 * duplicate keys, redefined tables, extending inline tables or static arrays,
 * leading zeros, out-of-range dates, 1.1-only syntax (\e, \x escapes, times
 * without seconds, newlines or a trailing comma in inline tables). Errors are
 * reported as `file:line:col: what, got 'offending text'` through struct
 * mse_err. Proven against toml-test (see tests/e2e/test_toml_suite.py).
 *
 * Ownership: mse_toml_parse allocates the whole tree in *out; mse_toml_free
 * releases it (NULL-safe). Every pointer handed out by the getters below
 * (values, keys, strings) borrows from the document and dies with it.
 * The tree is read-only for callers.
 */
#ifndef MSE_TOML_H
#define MSE_TOML_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"

/*
 * Nesting beyond this is refused: no table or array lies deeper than
 * MSE_TOML_MAX_DEPTH levels below the root, however it was nested — arrays,
 * inline tables, dotted keys (a.b.c = 1), table headers ([a.b.c]) and arrays
 * of tables (one array and one table per level) all count. Callers may walk
 * the tree recursively.
 */
#define MSE_TOML_MAX_DEPTH 128

enum mse_toml_type {
	MSE_TOML_STRING,
	MSE_TOML_INTEGER,
	MSE_TOML_FLOAT,
	MSE_TOML_BOOL,
	MSE_TOML_DATETIME,       /* offset date-time: 1979-05-27T07:32:00Z */
	MSE_TOML_DATETIME_LOCAL, /* 1979-05-27T07:32:00 */
	MSE_TOML_DATE_LOCAL,     /* 1979-05-27 */
	MSE_TOML_TIME_LOCAL,     /* 07:32:00 */
	MSE_TOML_ARRAY,
	MSE_TOML_TABLE,
};

/*
 * A TOML date-time of any of the four kinds. Fields a kind does not have are
 * zero. Fractional seconds keep up to 9 digits (TOML 1.0 §Offset Date-Time:
 * extra precision is truncated); frac_digits says how many were written.
 */
struct mse_toml_datetime {
	int year, month, day;
	int hour, minute, second;
	uint32_t nanosecond;
	int frac_digits;
	int offset_minutes; /* east of UTC; only for MSE_TOML_DATETIME */
};

struct mse_toml_pos {
	int line, col;
};

struct mse_toml_value;

/* One key = value of a table, in document order. */
struct mse_toml_kv {
	char *key; /* NUL-terminated; may also contain NUL (use key_len) */
	size_t key_len;
	struct mse_toml_pos pos; /* where the key was written */
	struct mse_toml_value *value;
};

struct mse_toml_value {
	enum mse_toml_type type;
	struct mse_toml_pos pos; /* where the value (or the table header) starts */
	unsigned flags;          /* parser bookkeeping, not for callers */
	union {
		struct {
			char *ptr; /* NUL-terminated; may contain NUL (use len) */
			size_t len;
		} str;
		int64_t integer;
		double flt;
		int boolean;
		struct mse_toml_datetime dt;
		struct {
			struct mse_toml_value **items;
			size_t len, cap;
		} arr;
		struct {
			struct mse_toml_kv *items;
			size_t len, cap;
			/* parser bookkeeping: hash index of items (entry + 1, 0 empty) */
			uint32_t *index;
			size_t index_cap;
		} tab;
	} u;
	struct mse_toml_value *free_next; /* parser bookkeeping: mse_toml_free's work list */
};

struct mse_toml;

/*
 * Parses len bytes of text (need not be NUL-terminated). filename (may be
 * NULL) only labels error messages. Returns 0 and a document in *out, or -1
 * with err filled (file, line, col and a message quoting the bad text).
 */
int mse_toml_parse(const char *text, size_t len, const char *filename, struct mse_toml **out,
		   struct mse_err *err) MSE_MUST_CHECK;
void mse_toml_free(struct mse_toml *doc);

/* The root table of a document. */
const struct mse_toml_value *mse_toml_root(const struct mse_toml *doc);

/* "string", "integer", "float", "boolean", "offset date-time", … */
const char *mse_toml_type_name(enum mse_toml_type t);

/* Looks up key in a table; NULL if absent or if t is not a table. */
const struct mse_toml_value *mse_toml_table_get(const struct mse_toml_value *t, const char *key);
/* As above, also returning the key's entry (its position). */
const struct mse_toml_kv *mse_toml_table_entry(const struct mse_toml_value *t, const char *key);
/* Number of entries of a table or items of an array; 0 for scalars. */
size_t mse_toml_len(const struct mse_toml_value *v);
/* The i-th entry of a table in document order, NULL if out of range. */
const struct mse_toml_kv *mse_toml_table_at(const struct mse_toml_value *t, size_t i);
/* The i-th item of an array, NULL if out of range. */
const struct mse_toml_value *mse_toml_array_at(const struct mse_toml_value *a, size_t i);

/* Typed getters: return 0 and the value, or -1 if v is NULL or another type. */
int mse_toml_get_string(const struct mse_toml_value *v, const char **s, size_t *len);
int mse_toml_get_int(const struct mse_toml_value *v, int64_t *out);
int mse_toml_get_float(const struct mse_toml_value *v, double *out);
int mse_toml_get_bool(const struct mse_toml_value *v, int *out);
/* Any of the four date/time kinds. */
int mse_toml_get_datetime(const struct mse_toml_value *v, struct mse_toml_datetime *out,
			  enum mse_toml_type *kind);

/*
 * Parses a whole string as a TOML date/time literal (RFC 3339 with TOML's
 * extensions: ' ' or 't' as separator, local forms). Returns 0 and the kind,
 * -1 if the string is anything else or has trailing text.
 */
int mse_toml_parse_datetime(const char *s, size_t len, struct mse_toml_datetime *out,
			    enum mse_toml_type *kind) MSE_MUST_CHECK;
/*
 * Formats as RFC 3339 (T separator, 'Z' for a zero offset, fraction as
 * written) according to kind. Returns out.
 */
const char *mse_toml_datetime_format(const struct mse_toml_datetime *dt, enum mse_toml_type kind,
				     char *out, size_t size);

#endif
