/* SPDX-License-Identifier: Apache-2.0 */
/*
 * toml_decoder — the toml-test decoder interface for mse_toml: reads TOML on
 * stdin, prints the document as toml-test's tagged JSON on stdout
 * ({"type": "integer", "value": "42"} for scalars, plain objects and arrays
 * for tables and arrays) and exits 0; on a parse error prints the error
 * (file:line:col: message) on stderr and exits 1.
 * See https://github.com/toml-lang/toml-test (README, "Implementing a decoder").
 *
 * `toml_decoder --batch FILE...` decodes many files in one process (the
 * suite test uses it to avoid hundreds of sanitizer start-ups): one JSON
 * line per file, {"file": F, "value": TREE} or {"file": F, "error": MSG}.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config/toml.h"

static json_t *tagged(const char *type, const char *value)
{
	return json_pack("{s:s, s:s}", "type", type, "value", value);
}

static json_t *to_json(const struct mse_toml_value *v)
{
	char buf[128];
	json_t *j;
	size_t i;

	switch (v->type) {
	case MSE_TOML_STRING:
		j = json_object();
		json_object_set_new(j, "type", json_string("string"));
		json_object_set_new(j, "value", json_stringn(v->u.str.ptr, v->u.str.len));
		return j;
	case MSE_TOML_INTEGER:
		snprintf(buf, sizeof(buf), "%lld", (long long)v->u.integer);
		return tagged("integer", buf);
	case MSE_TOML_FLOAT:
		if (isnan(v->u.flt))
			snprintf(buf, sizeof(buf), "nan");
		else if (isinf(v->u.flt))
			snprintf(buf, sizeof(buf), "%sinf", v->u.flt < 0 ? "-" : "");
		else
			snprintf(buf, sizeof(buf), "%.17g", v->u.flt);
		return tagged("float", buf);
	case MSE_TOML_BOOL:
		return tagged("bool", v->u.boolean ? "true" : "false");
	case MSE_TOML_DATETIME:
	case MSE_TOML_DATETIME_LOCAL:
	case MSE_TOML_DATE_LOCAL:
	case MSE_TOML_TIME_LOCAL:
		mse_toml_datetime_format(&v->u.dt, v->type, buf, sizeof(buf));
		return tagged(v->type == MSE_TOML_DATETIME         ? "datetime"
			      : v->type == MSE_TOML_DATETIME_LOCAL ? "datetime-local"
			      : v->type == MSE_TOML_DATE_LOCAL     ? "date-local"
								   : "time-local",
			      buf);
	case MSE_TOML_ARRAY:
		j = json_array();
		for (i = 0; i < mse_toml_len(v); i++)
			json_array_append_new(j, to_json(mse_toml_array_at(v, i)));
		return j;
	case MSE_TOML_TABLE:
		j = json_object();
		for (i = 0; i < mse_toml_len(v); i++) {
			const struct mse_toml_kv *kv = mse_toml_table_at(v, i);

			json_object_setn_new(j, kv->key, kv->key_len, to_json(kv->value));
		}
		return j;
	}
	return json_null();
}

static char *read_all(FILE *f, size_t *len_out)
{
	char *text = NULL, *t;
	size_t len = 0, cap = 0, n;

	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			t = realloc(text, cap);
			if (!t) {
				free(text);
				return NULL;
			}
			text = t;
		}
		n = fread(text + len, 1, cap - len, f);
		if (!n)
			break;
		len += n;
	}
	*len_out = len;
	return text;
}

static int batch(int argc, char **argv)
{
	for (int i = 2; i < argc; i++) {
		struct mse_toml *doc = NULL;
		struct mse_err err;
		char msg[2048], *text;
		size_t len;
		FILE *f = fopen(argv[i], "rb");
		json_t *line;

		if (!f) {
			perror(argv[i]);
			return 2;
		}
		text = read_all(f, &len);
		fclose(f);
		if (!text)
			return 2;
		mse_err_clear(&err);
		if (mse_toml_parse(text, len, "<stdin>", &doc, &err) == 0)
			line = json_pack("{s:s, s:o}", "file", argv[i], "value", to_json(mse_toml_root(doc)));
		else
			line = json_pack("{s:s, s:s}", "file", argv[i], "error", mse_err_str(&err, msg, sizeof(msg)));
		if (!line || json_dumpf(line, stdout, JSON_COMPACT) != 0)
			return 2;
		putchar('\n');
		json_decref(line);
		mse_toml_free(doc);
		free(text);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct mse_toml *doc = NULL;
	struct mse_err err;
	char *text = NULL, msg[2048];
	size_t len = 0;
	json_t *j;
	int rc = 1;

	if (argc > 1 && strcmp(argv[1], "--batch") == 0)
		return batch(argc, argv);
	mse_err_clear(&err);
	text = read_all(stdin, &len);
	if (!text)
		goto out;
	if (mse_toml_parse(text, len, argc > 1 ? argv[1] : "<stdin>", &doc, &err) != 0) {
		fprintf(stderr, "%s\n", mse_err_str(&err, msg, sizeof(msg)));
		goto out;
	}
	j = to_json(mse_toml_root(doc));
	if (json_dumpf(j, stdout, JSON_INDENT(1) | JSON_SORT_KEYS) != 0)
		rc = 1;
	else
		rc = 0;
	putchar('\n');
	json_decref(j);
out:
	mse_toml_free(doc);
	free(text);
	return rc;
}
