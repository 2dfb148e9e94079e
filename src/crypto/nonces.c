/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/nonces.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "common/file.h"
#include "common/hex.h"
#include "config/toml.h"

/* A JSON nonce map is small text; this bounds what we read. */
#define NONCES_MAX_FILE ((size_t)64 << 20)

struct mse_nonces {
	struct mse_nonce_entry *v; /* sorted by path */
	size_t len, cap;
};

struct mse_nonces *mse_nonces_new(void)
{
	return calloc(1, sizeof(struct mse_nonces));
}

void mse_nonces_free(struct mse_nonces *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->len; i++)
		free((char *)n->v[i].path);
	free(n->v);
	free(n);
}

size_t mse_nonces_count(const struct mse_nonces *n)
{
	return n ? n->len : 0;
}

const struct mse_nonce_entry *mse_nonces_at(const struct mse_nonces *n, size_t i)
{
	return n && i < n->len ? &n->v[i] : NULL;
}

/* Index of path, or -(insertion point) - 1. */
static long find(const struct mse_nonces *n, const char *path)
{
	size_t lo = 0, hi = n->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(n->v[mid].path, path);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

const struct mse_nonce_entry *mse_nonces_get(const struct mse_nonces *n, const char *path)
{
	long i;

	if (!n)
		return NULL;
	i = find(n, path);
	return i >= 0 ? &n->v[i] : NULL;
}

int mse_nonces_set(struct mse_nonces *n, const char *path,
		   const uint8_t nonce[MSE_CODEFILE_NONCE_BYTES], const uint8_t *sha256,
		   struct mse_err *err)
{
	struct mse_nonce_entry *e;
	long i;

	i = find(n, path);
	if (i < 0) {
		size_t at = (size_t)(-i - 1);
		char *copy;

		if (n->len == n->cap) {
			size_t cap = n->cap ? n->cap * 2 : 64;
			struct mse_nonce_entry *v = realloc(n->v, cap * sizeof(*v));

			if (!v)
				return mse_err_set(err, "out of memory");
			n->v = v;
			n->cap = cap;
		}
		copy = strdup(path);
		if (!copy)
			return mse_err_set(err, "out of memory");
		memmove(&n->v[at + 1], &n->v[at], (n->len - at) * sizeof(*n->v));
		n->len++;
		e = &n->v[at];
		memset(e, 0, sizeof(*e));
		e->path = copy;
	} else {
		e = &n->v[i];
	}
	memcpy(e->nonce, nonce, MSE_CODEFILE_NONCE_BYTES);
	e->has_sha256 = sha256 != NULL;
	if (sha256)
		memcpy(e->sha256, sha256, MSE_NONCES_SHA256_BYTES);
	else
		memset(e->sha256, 0, MSE_NONCES_SHA256_BYTES);
	return 0;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(((const struct mse_nonce_entry *)a)->path,
		      ((const struct mse_nonce_entry *)b)->path);
}

/* Appends without keeping the order (the caller sorts). */
static int append(struct mse_nonces *n, const char *path, const uint8_t *nonce,
		  const uint8_t *sha256)
{
	struct mse_nonce_entry *e;

	if (n->len == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 64;
		struct mse_nonce_entry *v = realloc(n->v, cap * sizeof(*v));

		if (!v)
			return -1;
		n->v = v;
		n->cap = cap;
	}
	e = &n->v[n->len];
	memset(e, 0, sizeof(*e));
	e->path = strdup(path);
	if (!e->path)
		return -1;
	n->len++;
	memcpy(e->nonce, nonce, MSE_CODEFILE_NONCE_BYTES);
	e->has_sha256 = sha256 != NULL;
	if (sha256)
		memcpy(e->sha256, sha256, MSE_NONCES_SHA256_BYTES);
	return 0;
}

static int cmp_nonce(const void *a, const void *b)
{
	const struct mse_nonce_entry *x = *(const struct mse_nonce_entry *const *)a;
	const struct mse_nonce_entry *y = *(const struct mse_nonce_entry *const *)b;

	return memcmp(x->nonce, y->nonce, MSE_CODEFILE_NONCE_BYTES);
}

int mse_nonces_check_unique(const struct mse_nonces *n, struct mse_err *err)
{
	const struct mse_nonce_entry **by;
	int rc = 0;

	if (!n || n->len < 2)
		return 0;
	/* Nonces are public (they head every .enc file): memcmp is fine. */
	by = malloc(n->len * sizeof(*by));
	if (!by)
		return mse_err_set(err, "out of memory");
	for (size_t i = 0; i < n->len; i++)
		by[i] = &n->v[i];
	qsort(by, n->len, sizeof(*by), cmp_nonce);
	for (size_t i = 1; i < n->len; i++)
		if (memcmp(by[i - 1]->nonce, by[i]->nonce, MSE_CODEFILE_NONCE_BYTES) == 0) {
			rc = mse_err_field(err, by[i]->path,
					   "same nonce as \"%s\": one nonce for two files would "
					   "reuse the XSalsa20 keystream",
					   by[i - 1]->path);
			break;
		}
	free(by);
	return rc;
}

static int hex_field(const char *name, const char *path, const char *what, json_t *v,
		     uint8_t *out, size_t n, struct mse_err *err)
{
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;

	if (!s || mse_hex_decode_exact(out, n, s, json_string_length(v)) != 0) {
		mse_err_file(err, name);
		return mse_err_field(err, path, "%s: expected %zu hex digits, got %s%s%s", what,
				     2 * n, s ? "\"" : "", s ? s : "a non-string",
				     s ? "\"" : "");
	}
	return 0;
}

/* Relative, '/'-separated, no empty, "." or ".." component. */
static int path_ok(const char *p)
{
	const char *c = p;

	if (!*p || *p == '/')
		return 0;
	while (*c) {
		const char *e = strchr(c, '/');
		size_t k = e ? (size_t)(e - c) : strlen(c);

		if (k == 0 || (k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c += k;
		if (*c == '/')
			c++;
		if (e && !*c)
			return 0;
	}
	return 1;
}

int mse_nonces_parse_json(const char *text, size_t len, const char *name, struct mse_nonces **out,
			  struct mse_err *err)
{
	struct mse_nonces *n = NULL;
	json_error_t jerr;
	json_t *root, *v;
	const char *path;
	int rc = -1;

	*out = NULL;
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return mse_err_at(err, name, jerr.line, jerr.column, "invalid JSON: %s", jerr.text);
	if (!json_is_object(root)) {
		mse_err_at(err, name, 1, 1,
			   "expected a JSON object {path: {\"nonce\": hex, \"sha256\": hex}}");
		goto out;
	}
	n = mse_nonces_new();
	if (!n) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	json_object_foreach(root, path, v)
	{
		uint8_t nonce[MSE_CODEFILE_NONCE_BYTES], sha[MSE_NONCES_SHA256_BYTES];
		int has_sha = 0;

		if (!path_ok(path)) {
			mse_err_file(err, name);
			mse_err_field(err, path, "not a relative path inside the code directory");
			goto out;
		}
		if (json_is_string(v)) {
			if (hex_field(name, path, "nonce", v, nonce, sizeof(nonce), err) != 0)
				goto out;
		} else if (json_is_object(v)) {
			json_t *jn = json_object_get(v, "nonce"), *js = json_object_get(v, "sha256");

			if (hex_field(name, path, "nonce", jn, nonce, sizeof(nonce), err) != 0)
				goto out;
			if (js) {
				if (hex_field(name, path, "sha256", js, sha, sizeof(sha), err) != 0)
					goto out;
				has_sha = 1;
			}
		} else {
			mse_err_file(err, name);
			mse_err_field(err, path,
				      "expected a nonce (hex string) or {\"nonce\", \"sha256\"}");
			goto out;
		}
		if (append(n, path, nonce, has_sha ? sha : NULL) != 0) {
			mse_err_set(err, "out of memory");
			goto out;
		}
	}
	/* Jansson keeps insertion order; sort once rather than insert sorted. */
	if (n->len)
		qsort(n->v, n->len, sizeof(*n->v), cmp_path);
	if (mse_nonces_check_unique(n, err) != 0) {
		mse_err_file(err, name);
		goto out;
	}
	*out = n;
	n = NULL;
	rc = 0;
out:
	mse_nonces_free(n);
	json_decref(root);
	return rc;
}

int mse_nonces_load_json(const char *path, struct mse_nonces **out, struct mse_err *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (mse_file_read(path, NONCES_MAX_FILE, &data, &len, err) != 0)
		return -1;
	rc = mse_nonces_parse_json((const char *)data, len, path, out, err);
	free(data);
	return rc;
}

int mse_nonces_load_mse_context(const char *path, struct mse_nonces **out, struct mse_err *err)
{
	struct mse_nonces *n = NULL;
	struct mse_toml *doc = NULL;
	const struct mse_toml_value *tab;
	uint8_t *data = NULL;
	size_t len = 0;
	int rc = -1;

	*out = NULL;
	if (mse_file_read(path, NONCES_MAX_FILE, &data, &len, err) != 0)
		return -1;
	if (mse_toml_parse((const char *)data, len, path, &doc, err) != 0)
		goto out;
	tab = mse_toml_table_get(mse_toml_table_get(mse_toml_root(doc), "instance"), "nonces");
	if (!tab || tab->type != MSE_TOML_TABLE) {
		mse_err_file(err, path);
		mse_err_field(err, "instance.nonces", "no such table (an MSE context.toml has one)");
		goto out;
	}
	n = mse_nonces_new();
	if (!n) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < mse_toml_len(tab); i++) {
		const struct mse_toml_kv *kv = mse_toml_table_at(tab, i);
		uint8_t nonce[MSE_CODEFILE_NONCE_BYTES];
		const char *hex = NULL;
		size_t hex_len = 0;

		if (strlen(kv->key) != kv->key_len || !path_ok(kv->key)) {
			mse_err_at(err, path, kv->pos.line, kv->pos.col,
				   "instance.nonces: \"%s\" is not a relative path inside the code "
				   "directory",
				   kv->key);
			goto out;
		}
		if (mse_toml_get_string(kv->value, &hex, &hex_len) != 0 ||
		    mse_hex_decode_exact(nonce, sizeof(nonce), hex, hex_len) != 0) {
			mse_err_at(err, path, kv->value->pos.line, kv->value->pos.col,
				   "instance.nonces.\"%s\": expected a string of 48 hex digits",
				   kv->key);
			goto out;
		}
		if (append(n, kv->key, nonce, NULL) != 0) {
			mse_err_set(err, "out of memory");
			goto out;
		}
	}
	if (n->len)
		qsort(n->v, n->len, sizeof(*n->v), cmp_path);
	if (mse_nonces_check_unique(n, err) != 0) {
		mse_err_file(err, path);
		goto out;
	}
	*out = n;
	n = NULL;
	rc = 0;
out:
	mse_nonces_free(n);
	mse_toml_free(doc);
	free(data);
	return rc;
}

int mse_nonces_load(const char *path, struct mse_nonces **out, struct mse_err *err)
{
	size_t n = strlen(path);

	if (n > 5 && strcmp(path + n - 5, ".toml") == 0)
		return mse_nonces_load_mse_context(path, out, err);
	return mse_nonces_load_json(path, out, err);
}

int mse_nonces_to_json(const struct mse_nonces *n, char **out, struct mse_err *err)
{
	json_t *root = json_object();
	char hex[2 * MSE_NONCES_SHA256_BYTES + 1];
	int rc = -1;

	*out = NULL;
	if (!root)
		return mse_err_set(err, "out of memory");
	for (size_t i = 0; i < n->len; i++) {
		const struct mse_nonce_entry *e = &n->v[i];
		json_t *o = json_object();

		if (!o || json_object_set_new(root, e->path, o) != 0)
			goto oom;
		if (mse_hex_encode(hex, sizeof(hex), e->nonce, sizeof(e->nonce)) != 0 ||
		    json_object_set_new(o, "nonce", json_string(hex)) != 0)
			goto oom;
		if (e->has_sha256 &&
		    (mse_hex_encode(hex, sizeof(hex), e->sha256, sizeof(e->sha256)) != 0 ||
		     json_object_set_new(o, "sha256", json_string(hex)) != 0))
			goto oom;
	}
	*out = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!*out)
		goto oom;
	rc = 0;
	goto out;
oom:
	mse_err_set(err, "out of memory");
out:
	json_decref(root);
	return rc;
}

int mse_nonces_save_json(const struct mse_nonces *n, const char *path, struct mse_err *err)
{
	char *text = NULL, *withnl;
	size_t len;
	int rc;

	if (mse_nonces_to_json(n, &text, err) != 0)
		return -1;
	len = strlen(text);
	withnl = realloc(text, len + 2);
	if (!withnl) {
		free(text);
		return mse_err_set(err, "out of memory");
	}
	withnl[len++] = '\n';
	withnl[len] = 0;
	rc = mse_file_write_atomic(path, withnl, len, MSE_MODE_PUBLIC, err);
	free(withnl);
	return rc;
}

int mse_nonces_choose(const struct mse_nonces *in, const char *path,
		      const uint8_t sha256[MSE_NONCES_SHA256_BYTES],
		      uint8_t nonce[MSE_CODEFILE_NONCE_BYTES], int *reused, struct mse_err *err)
{
	const struct mse_nonce_entry *e = mse_nonces_get(in, path);

	*reused = 0;
	if (!e) {
		randombytes_buf(nonce, MSE_CODEFILE_NONCE_BYTES);
		return 0;
	}
	if (e->has_sha256 && sodium_memcmp(e->sha256, sha256, MSE_NONCES_SHA256_BYTES) != 0)
		return mse_err_field(err, path,
				     "the file changed since its nonce was recorded: encrypting "
				     "new content under the same key and nonce would reuse the "
				     "XSalsa20 keystream. Remove this entry from the nonce map (or "
				     "package without --nonces) to get a fresh nonce");
	memcpy(nonce, e->nonce, MSE_CODEFILE_NONCE_BYTES);
	*reused = 1;
	return 0;
}
