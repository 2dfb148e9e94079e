/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the TOML parser: any bytes must either parse into a
 * tree that can be walked and freed, or fail with a positioned error —
 * never crash, leak, hang or read out of bounds. Also feeds the same bytes
 * to mse_toml_parse_datetime.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"

static size_t walk(const struct mse_toml_value *v, int depth)
{
	size_t n = 1, i;
	char buf[64];

	if (depth > MSE_TOML_MAX_DEPTH + 64)
		abort(); /* deeper than the parser allows */
	switch (v->type) {
	case MSE_TOML_TABLE:
		for (i = 0; i < mse_toml_len(v); i++) {
			const struct mse_toml_kv *kv = mse_toml_table_at(v, i);

			/* every key can be found again by name (unless it holds a NUL) */
			if (strlen(kv->key) == kv->key_len && mse_toml_table_get(v, kv->key) == NULL)
				abort();
			if (kv->pos.line < 1 || kv->pos.col < 1)
				abort();
			n += walk(kv->value, depth + 1);
		}
		break;
	case MSE_TOML_ARRAY:
		for (i = 0; i < mse_toml_len(v); i++)
			n += walk(mse_toml_array_at(v, i), depth + 1);
		break;
	case MSE_TOML_DATETIME:
	case MSE_TOML_DATETIME_LOCAL:
	case MSE_TOML_DATE_LOCAL:
	case MSE_TOML_TIME_LOCAL: {
		struct mse_toml_datetime dt;
		enum mse_toml_type kind;

		/* what we print reads back as the same value */
		mse_toml_datetime_format(&v->u.dt, v->type, buf, sizeof(buf));
		if (mse_toml_parse_datetime(buf, strlen(buf), &dt, &kind) != 0 || kind != v->type ||
		    memcmp(&dt, &v->u.dt, sizeof(dt)) != 0)
			abort();
		break;
	}
	default:
		break;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mse_toml *doc = NULL;
	struct mse_toml_datetime dt;
	enum mse_toml_type kind;
	struct mse_err err;

	if (mse_toml_parse((const char *)data, size, "fuzz.toml", &doc, &err) == 0) {
		walk(mse_toml_root(doc), 0);
		mse_toml_free(doc);
	} else if (err.line < 1 || err.col < 1) {
		abort(); /* every error names a position */
	}
	if (size < 64)
		(void)!mse_toml_parse_datetime((const char *)data, size, &dt, &kind);
	return 0;
}
