/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/package.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sodium.h>

#include "common/file.h"
#include "common/hex.h"
#include "crypto/archive.h"

/* ---- walking a source directory --------------------------------------- */

struct file_item {
	char *rel;
	uint64_t size;
};

struct file_list {
	struct file_item *v;
	size_t len, cap;
	uint64_t bytes;
};

static void file_list_free(struct file_list *l)
{
	for (size_t i = 0; i < l->len; i++)
		free(l->v[i].rel);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int file_list_add(struct file_list *l, const char *rel, uint64_t size)
{
	if (l->len == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct file_item *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->len].rel = strdup(rel);
	if (!l->v[l->len].rel)
		return -1;
	l->v[l->len].size = size;
	l->len++;
	l->bytes += size;
	return 0;
}

static int cmp_item(const void *a, const void *b)
{
	return strcmp(((const struct file_item *)a)->rel, ((const struct file_item *)b)->rel);
}

struct walk {
	const char *root;
	mse_package_filter filter;
	void *ctx;
	uint64_t max_size; /* 0 = no bound */
	struct file_list *out;
};

/* Walks root/rel (rel "" for the root), depth-first. */
static int walk_dir(struct walk *w, const char *rel, int depth, struct mse_err *err)
{
	char path[PATH_MAX], child[PATH_MAX];
	DIR *d;
	struct dirent *de;
	int rc = -1;

	if (depth > 64)
		return mse_err_field(err, rel, "directories nested too deep");
	if (snprintf(path, sizeof(path), "%s%s%s", w->root, *rel ? "/" : "", rel) >=
	    (int)sizeof(path))
		return mse_err_field(err, rel, "path too long");
	d = opendir(path);
	if (!d)
		return mse_err_field(err, path, "cannot open directory: %s", strerror(errno));
	while ((errno = 0, de = readdir(d))) {
		struct stat st;
		int keep;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
		    (int)sizeof(child)) {
			mse_err_field(err, de->d_name, "path too long");
			goto out;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			mse_err_field(err, child, "cannot stat: %s", strerror(errno));
			goto out;
		}
		keep = w->filter ? w->filter(w->ctx, child, S_ISDIR(st.st_mode), err) : 1;
		if (keep < 0)
			goto out;
		if (!keep)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (walk_dir(w, child, depth + 1, err) != 0)
				goto out;
		} else if (S_ISREG(st.st_mode)) {
			if (w->max_size && (uint64_t)st.st_size > w->max_size) {
				mse_err_file(err, w->root);
				mse_err_field(err, child,
					      "%lld bytes, over the limit of %llu bytes per file "
					      "(each file is encrypted whole in memory); add it to "
					      ".mseignore or split it",
					      (long long)st.st_size, (unsigned long long)w->max_size);
				goto out;
			}
			if (file_list_add(w->out, child, (uint64_t)st.st_size) != 0) {
				mse_err_set(err, "out of memory");
				goto out;
			}
		} else {
			mse_err_file(err, w->root);
			mse_err_field(err, child,
				      "%s: only regular files are packaged; add it to .mseignore "
				      "or replace it with the file itself",
				      S_ISLNK(st.st_mode) ? "symbolic link" : "special file");
			goto out;
		}
	}
	if (errno) {
		mse_err_field(err, path, "cannot read directory: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	closedir(d);
	return rc;
}

static int walk_tree(const char *root, mse_package_filter filter, void *ctx, uint64_t max_size,
		     struct file_list *out, struct mse_err *err)
{
	struct walk w = {root, filter, ctx, max_size, out};
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode))
		return mse_err_field(err, root, "not a directory");
	if (walk_dir(&w, "", 0, err) != 0) {
		file_list_free(out);
		return -1;
	}
	if (out->len)
		qsort(out->v, out->len, sizeof(*out->v), cmp_item);
	return 0;
}

/* Relative, '/'-separated, no empty, "." or ".." component. */
static int rel_ok(const char *p)
{
	if (!*p || *p == '/')
		return 0;
	for (const char *c = p; *c;) {
		size_t k = strcspn(c, "/");

		if (k == 0 || (k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c += k;
		if (*c == '/' && !*++c)
			return 0;
	}
	return 1;
}

/* The caller's list: each must be a regular file (after links) within the bound. */
static int list_from_paths(const char *root, const char *const *files, size_t n,
			   uint64_t max_size, struct file_list *out, struct mse_err *err)
{
	char path[PATH_MAX];
	struct stat st;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		const char *rel = files[i];

		if (!rel_ok(rel)) {
			mse_err_field(err, rel, "not a relative path inside the code directory");
			goto fail;
		}
		if (snprintf(path, sizeof(path), "%s/%s", root, rel) >= (int)sizeof(path)) {
			mse_err_field(err, rel, "path too long");
			goto fail;
		}
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
			mse_err_file(err, root);
			mse_err_field(err, rel, "not a regular file");
			goto fail;
		}
		if (max_size && (uint64_t)st.st_size > max_size) {
			mse_err_file(err, root);
			mse_err_field(err, rel,
				      "%lld bytes, over the limit of %llu bytes per file (each file "
				      "is encrypted whole in memory); add it to .mseignore or split it",
				      (long long)st.st_size, (unsigned long long)max_size);
			goto fail;
		}
		if (file_list_add(out, rel, (uint64_t)st.st_size) != 0) {
			mse_err_set(err, "out of memory");
			goto fail;
		}
	}
	if (out->len)
		qsort(out->v, out->len, sizeof(*out->v), cmp_item);
	for (size_t i = 1; i < out->len; i++)
		if (strcmp(out->v[i - 1].rel, out->v[i].rel) == 0) {
			mse_err_field(err, out->v[i].rel, "listed twice");
			goto fail;
		}
	return 0;
fail:
	file_list_free(out);
	return -1;
}

/* ---- building ----------------------------------------------------------- */

int mse_package_check_name(const char *name, struct mse_err *err)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 128 || name[0] == '.')
		return mse_err_expect(err, "name", "1 to 128 characters, not starting with '.'",
				      name && *name ? name : "\"\"");
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return mse_err_expect(err, "name", "letters, digits, '.', '_' or '-'",
					      name);
	}
	return 0;
}

/* Exact size of the tar of `files` (encrypted: NAME.enc, 40 more bytes each). */
static uint64_t predict_tar(const struct file_list *files, int encrypted)
{
	uint64_t n = MSE_TAR_END_BYTES;

	for (size_t i = 0; i < files->len; i++) {
		size_t len = strlen(files->v[i].rel);
		int clear = !encrypted || strcmp(files->v[i].rel, MSE_PACKAGE_CLEAR_FILE) == 0;

		n += mse_tar_entry_bytes(clear ? len : len + strlen(MSE_CODEFILE_SUFFIX),
					 files->v[i].size + (clear ? 0 : MSE_CODEFILE_HEADER_BYTES));
	}
	return n;
}

/*
 * Starts member `name` of the package and a tar nested in it. The size is
 * predicted exactly, so the inner tar streams straight into the package:
 * no temporary file, each byte written once.
 */
static int begin_nested(struct mse_tar_writer *pkg, const char *name, uint64_t size,
			struct mse_tar_writer **inner, struct mse_err *err)
{
	if (mse_tar_writer_begin(pkg, name, size, err) != 0)
		return -1;
	return mse_tar_writer_new_nested(inner, pkg, MSE_TAR_HASH, err);
}

static int end_nested(struct mse_tar_writer *inner, const char *name, uint64_t predicted,
		      uint8_t sha[32], struct mse_err *err)
{
	uint64_t total = 0;

	if (mse_tar_writer_finish(inner, sha, &total, err) != 0)
		return -1;
	if (total != predicted)
		return mse_err_field(err, name, "internal: wrote %llu bytes, predicted %llu",
				     (unsigned long long)total, (unsigned long long)predicted);
	return 0;
}

/*
 * Reads a code file into a new buffer after MSE_CODEFILE_HEADER_BYTES of
 * room (for in-place encryption) and hashes it on the way. `expect` is the
 * size the walk saw: a file that changed size since is an error.
 */
static int read_and_hash(const char *path, uint64_t expect, EVP_MD_CTX *md, uint8_t **out,
			 size_t *len, uint8_t sha[32], struct mse_err *err)
{
	const size_t piece = (size_t)256 << 10;
	struct stat st;
	uint8_t *buf = NULL;
	size_t size, got = 0;
	unsigned int n = 0;
	int fd, rc = -1;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mse_err_field(err, path, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != expect ||
	    expect > MSE_CODEFILE_MAX_PLAIN) {
		mse_err_field(err, path, "changed while packaging (or not a regular file)");
		goto out;
	}
	size = (size_t)expect;
	buf = malloc(MSE_CODEFILE_HEADER_BYTES + size + 1);
	if (!buf || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		mse_err_field(err, path, "out of memory for %zu bytes", size);
		goto out;
	}
	while (got < size) {
		uint8_t *p = buf + MSE_CODEFILE_HEADER_BYTES + got;
		ssize_t k = read(fd, p, size - got < piece ? size - got : piece);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			mse_err_field(err, path, "cannot read: %s",
				      k < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		if (EVP_DigestUpdate(md, p, (size_t)k) != 1) {
			mse_err_set(err, "SHA-256 failed");
			goto out;
		}
		got += (size_t)k;
	}
	if (EVP_DigestFinal_ex(md, sha, &n) != 1 || n != 32) {
		mse_err_set(err, "SHA-256 failed");
		goto out;
	}
	*out = buf;
	*len = size;
	buf = NULL;
	rc = 0;
out:
	mse_codefile_buf_free(buf, buf ? MSE_CODEFILE_HEADER_BYTES + got : 0);
	close(fd);
	return rc;
}

static int write_app_tar(const struct mse_package_spec *s, const struct file_list *files,
			 struct mse_tar_writer *pkg, struct mse_nonces *out_nonces,
			 struct mse_package_result *res, struct mse_err *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct mse_tar_writer *w = NULL;
	char path[PATH_MAX], name[PATH_MAX];
	uint64_t done_bytes = 0, predicted = predict_tar(files, 1);
	int rc = -1;

	if (!md) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	if (begin_nested(pkg, MSE_PACKAGE_APP_TAR, predicted, &w, err) != 0)
		goto out;
	for (size_t i = 0; i < files->len; i++) {
		const char *rel = files->v[i].rel;
		uint8_t *buf = NULL, sha[SHA256_DIGEST_LENGTH], nonce[MSE_CODEFILE_NONCE_BYTES];
		size_t len = 0;
		int reused = 0, sealed = 0, k;

		if (snprintf(path, sizeof(path), "%s/%s", s->code_dir, rel) >= (int)sizeof(path)) {
			mse_err_field(err, rel, "path too long");
			goto out;
		}
		/*
		 * The hash of the plaintext goes into the nonce map so that a later
		 * run can tell whether the file changed (nonce reuse); it is taken
		 * while reading, each piece still in cache.
		 */
		if (read_and_hash(path, files->v[i].size, md, &buf, &len, sha, err) != 0)
			goto out;
		if (strcmp(rel, MSE_PACKAGE_CLEAR_FILE) == 0) {
			k = mse_tar_writer_add(w, rel, buf + MSE_CODEFILE_HEADER_BYTES, len, err);
		} else {
			k = mse_nonces_choose(s->nonces, rel, sha, nonce, &reused, err);
			if (k == 0)
				k = mse_nonces_set(out_nonces, rel, nonce, sha, err);
			if (k == 0 && mse_codefile_seal_inplace(s->key, nonce, buf, len) != 0)
				k = mse_err_field(err, rel, "cannot encrypt");
			sealed = k == 0;
			if (k == 0 && snprintf(name, sizeof(name), "%s%s", rel,
					       MSE_CODEFILE_SUFFIX) >= (int)sizeof(name))
				k = mse_err_field(err, rel, "path too long");
			if (k == 0)
				k = mse_tar_writer_add(w, name, buf, len + MSE_CODEFILE_HEADER_BYTES,
						       err);
			if (k == 0) {
				res->encrypted++;
				res->reused += (size_t)reused;
			}
		}
		/* Once sealed in place the buffer holds only ciphertext: no wipe needed. */
		if (sealed)
			free(buf);
		else
			mse_codefile_buf_free(buf, len + MSE_CODEFILE_HEADER_BYTES);
		if (k != 0) {
			mse_err_file(err, s->code_dir);
			goto out;
		}
		res->files++;
		done_bytes += len;
		if (s->progress)
			s->progress(s->progress_ctx, i + 1, files->len, done_bytes, files->bytes);
	}
	res->bytes = done_bytes;
	if (end_nested(w, MSE_PACKAGE_APP_TAR, predicted, res->app_sha256, err) != 0)
		goto out;
	res->app_tar_bytes = predicted;
	rc = 0;
out:
	mse_tar_writer_free(w);
	EVP_MD_CTX_free(md);
	return rc;
}

static int write_clear_tar(const char *dir, const struct file_list *files,
			   struct mse_tar_writer *pkg, struct mse_err *err)
{
	struct mse_tar_writer *w = NULL;
	char path[PATH_MAX];
	uint64_t predicted = predict_tar(files, 0);
	int rc = -1;

	if (begin_nested(pkg, MSE_PACKAGE_TESTS_TAR, predicted, &w, err) != 0)
		goto out;
	for (size_t i = 0; i < files->len; i++) {
		int in;

		if (snprintf(path, sizeof(path), "%s/%s", dir, files->v[i].rel) >=
		    (int)sizeof(path)) {
			mse_err_field(err, files->v[i].rel, "path too long");
			goto out;
		}
		in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (in < 0) {
			mse_err_field(err, path, "cannot open: %s", strerror(errno));
			goto out;
		}
		if (mse_tar_writer_add_fd(w, files->v[i].rel, in, files->v[i].size, err) != 0) {
			close(in);
			mse_err_file(err, dir);
			goto out;
		}
		close(in);
	}
	if (end_nested(w, MSE_PACKAGE_TESTS_TAR, predicted, NULL, err) != 0)
		goto out;
	rc = 0;
out:
	mse_tar_writer_free(w);
	return rc;
}

/* package.json: the fields spawn and verify read, in a canonical form. */
static char *package_json(const struct mse_package_spec *s, const uint8_t sha[32],
			  struct mse_err *err)
{
	char hex[65], *text = NULL, *withnl = NULL;
	json_t *o;

	if (mse_hex_encode(hex, sizeof(hex), sha, 32) != 0)
		return NULL;
	o = json_pack("{s:i, s:s, s:s, s:s, s:s}", "format_version", MSE_PACKAGE_FORMAT_VERSION,
		      "name", s->name, "python_application",
		      s->python_application ? s->python_application : "",
		      "healthcheck_endpoint",
		      s->healthcheck_endpoint ? s->healthcheck_endpoint : "/", "app_sha256", hex);
	if (o)
		text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	if (text && (withnl = malloc(strlen(text) + 2)))
		sprintf(withnl, "%s\n", text);
	free(text);
	if (!withnl)
		mse_err_set(err, "cannot build package.json (invalid UTF-8 in a field?)");
	return withnl;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int mse_package_build(const struct mse_package_spec *s, struct mse_package_result *res,
		      struct mse_err *err)
{
	struct file_list code = {0}, tests = {0};
	struct mse_nonces *out_nonces = NULL;
	struct mse_tar_writer *w = NULL;
	uint8_t *config = NULL;
	size_t config_len = 0;
	char *pjson = NULL;
	char tmp_pkg[PATH_MAX];
	int pkg_fd = -1, rc = -1, linked = 0;

	memset(res, 0, sizeof(*res));
	tmp_pkg[0] = 0;
	if (!s->code_dir || !s->config_path || !s->output_dir || !s->key)
		return mse_err_set(err, "internal: incomplete package spec");
	if (mse_package_check_name(s->name, err) != 0)
		return -1;
	res->ns = s->ns ? s->ns : now_ns();
	if (snprintf(res->stem, sizeof(res->stem), "%s/package_%s_%llu", s->output_dir, s->name,
		     (unsigned long long)res->ns) >= (int)sizeof(res->stem) - 16)
		return mse_err_field(err, s->output_dir, "path too long");
	if (snprintf(res->path, sizeof(res->path), "%s.tar", res->stem) >= (int)sizeof(res->path) ||
	    snprintf(res->nonces_path, sizeof(res->nonces_path), "%s.nonces.json", res->stem) >=
		    (int)sizeof(res->nonces_path))
		return mse_err_field(err, s->output_dir, "path too long");

	if (mse_file_read(s->config_path, MSE_PACKAGE_MAX_CONFIG, &config, &config_len, err) != 0)
		goto out;
	if (s->files ? list_from_paths(s->code_dir, s->files, s->n_files, MSE_CODEFILE_MAX_PLAIN,
				       &code, err) != 0
		     : walk_tree(s->code_dir, s->filter, s->filter_ctx, MSE_CODEFILE_MAX_PLAIN,
				 &code, err) != 0)
		goto out;
	if (code.len == 0) {
		mse_err_field(err, s->code_dir, "no file to package (all ignored?)");
		goto out;
	}
	if (s->tests_dir &&
	    walk_tree(s->tests_dir, s->tests_filter, s->tests_filter_ctx, 0, &tests, err) != 0)
		goto out;
	if (mse_file_mkdirs(s->output_dir, 0755, err) != 0)
		goto out;
	out_nonces = mse_nonces_new();
	if (!out_nonces) {
		mse_err_set(err, "out of memory");
		goto out;
	}

	/* The package: a new temporary file, linked into place only when whole. */
	if (snprintf(tmp_pkg, sizeof(tmp_pkg), "%s.tar.tmp.XXXXXX", res->stem) >=
	    (int)sizeof(tmp_pkg)) {
		tmp_pkg[0] = 0;
		mse_err_field(err, s->output_dir, "path too long");
		goto out;
	}
	pkg_fd = mkstemp(tmp_pkg);
	if (pkg_fd < 0) {
		mse_err_field(err, tmp_pkg, "cannot create: %s", strerror(errno));
		tmp_pkg[0] = 0;
		goto out;
	}
	/* package.json comes last: it records the digest of app.tar, known only then. */
	if (fchmod(pkg_fd, MSE_MODE_PUBLIC) != 0 || mse_tar_writer_new(&w, pkg_fd, 0, err) != 0 ||
	    write_app_tar(s, &code, w, out_nonces, res, err) != 0 ||
	    write_clear_tar(s->tests_dir, &tests, w, err) != 0 ||
	    mse_tar_writer_add(w, MSE_PACKAGE_CONFIG, config, config_len, err) != 0)
		goto out;
	pjson = package_json(s, res->app_sha256, err);
	if (!pjson || mse_tar_writer_add(w, MSE_PACKAGE_JSON, pjson, strlen(pjson), err) != 0 ||
	    mse_tar_writer_finish(w, NULL, NULL, err) != 0)
		goto out;
	if (fsync(pkg_fd) != 0) {
		mse_err_field(err, tmp_pkg, "cannot write: %s", strerror(errno));
		goto out;
	}
	/* link() refuses an existing target: a package is never overwritten. */
	if (link(tmp_pkg, res->path) != 0) {
		mse_err_field(err, res->path, "%s",
			      errno == EEXIST ? "already exists, not overwriting" : strerror(errno));
		goto out;
	}
	linked = 1;
	if (mse_nonces_save_json(out_nonces, res->nonces_path, err) != 0)
		goto out;
	mse_file_sync_dir(s->output_dir);
	rc = 0;
out:
	if (rc != 0 && linked)
		unlink(res->path);
	if (tmp_pkg[0])
		unlink(tmp_pkg);
	mse_tar_writer_free(w);
	if (pkg_fd >= 0)
		close(pkg_fd);
	mse_nonces_free(out_nonces);
	file_list_free(&code);
	file_list_free(&tests);
	free(config);
	free(pjson);
	return rc;
}

/* ---- opening ------------------------------------------------------------ */

static int copy_str(char *dst, size_t size, json_t *o, const char *key, const char *file,
		    struct mse_err *err)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v) || json_string_length(v) >= size ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		mse_err_file(err, file);
		return mse_err_field(err, key, "expected a string (under %zu bytes)", size);
	}
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int parse_package_json(const uint8_t *text, size_t len, struct mse_package_info *info,
			      struct mse_err *err)
{
	const char *f = MSE_PACKAGE_JSON;
	json_error_t jerr;
	json_t *o, *v;
	int rc = -1;

	o = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return mse_err_at(err, f, jerr.line, jerr.column, "invalid JSON: %s", jerr.text);
	if (!json_is_object(o)) {
		mse_err_at(err, f, 1, 1, "expected a JSON object");
		goto out;
	}
	v = json_object_get(o, "format_version");
	if (!json_is_integer(v) || json_integer_value(v) != MSE_PACKAGE_FORMAT_VERSION) {
		char got[32];

		snprintf(got, sizeof(got), "%lld",
			 json_is_integer(v) ? (long long)json_integer_value(v) : -1LL);
		mse_err_file(err, f);
		mse_err_expect(err, "format_version", "1", json_is_integer(v) ? got : "missing");
		goto out;
	}
	info->format_version = MSE_PACKAGE_FORMAT_VERSION;
	if (copy_str(info->name, sizeof(info->name), o, "name", f, err) != 0 ||
	    copy_str(info->python_application, sizeof(info->python_application), o,
		     "python_application", f, err) != 0 ||
	    copy_str(info->healthcheck_endpoint, sizeof(info->healthcheck_endpoint), o,
		     "healthcheck_endpoint", f, err) != 0)
		goto out;
	v = json_object_get(o, "app_sha256");
	if (!json_is_string(v) || mse_hex_decode_exact(info->app_sha256, 32, json_string_value(v),
						      json_string_length(v)) != 0) {
		mse_err_file(err, f);
		mse_err_field(err, "app_sha256", "expected 64 hex digits");
		goto out;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

enum { M_JSON = 1, M_CONFIG = 2, M_APP = 4, M_TESTS = 8, M_ALL = 15 };

/* Reads the package; if dest is set, also writes each member there. */
static int open_package(const char *pkg, const char *dest, struct mse_package_info *info,
			struct mse_err *err)
{
	struct mse_tar_limits lim = {.max_entries = 4};
	struct mse_tar_reader *r = NULL;
	struct mse_tar_entry e;
	EVP_MD_CTX *sha = NULL;
	uint8_t *chunk = NULL, digest[32];
	unsigned int dlen = 0;
	char path[PATH_MAX];
	int seen = 0, rc = -1, k, fd = -1;
	struct stat st;

	memset(info, 0, sizeof(*info));
	/* the members carry their bytes (no sparse entries): never more than the file */
	if (stat(pkg, &st) == 0 && st.st_size > 0)
		lim.max_total = (uint64_t)st.st_size;
	sha = EVP_MD_CTX_new();
	chunk = malloc(256 << 10);
	if (!sha || !chunk || EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	if (mse_tar_reader_open_file(&r, pkg, &lim, err) != 0)
		goto out;
	while ((k = mse_tar_reader_next(r, &e, err)) == 1) {
		int m = strcmp(e.name, MSE_PACKAGE_JSON) == 0      ? M_JSON
			: strcmp(e.name, MSE_PACKAGE_CONFIG) == 0  ? M_CONFIG
			: strcmp(e.name, MSE_PACKAGE_APP_TAR) == 0 ? M_APP
			: strcmp(e.name, MSE_PACKAGE_TESTS_TAR) == 0 ? M_TESTS
								     : 0;

		if (!m || e.is_dir) {
			mse_err_file(err, pkg);
			mse_err_field(err, e.name,
				      "unexpected member (a package holds package.json, mse.toml, "
				      "app.tar and tests.tar)");
			goto out;
		}
		seen |= m;
		if (dest) {
			if (snprintf(path, sizeof(path), "%s/%s", dest, e.name) >= (int)sizeof(path)) {
				mse_err_field(err, dest, "path too long");
				goto out;
			}
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				  MSE_MODE_PUBLIC);
			if (fd < 0) {
				mse_err_field(err, path, "cannot create: %s", strerror(errno));
				goto out;
			}
		}
		if (m == M_JSON) {
			uint8_t *text = NULL;
			size_t len = 0;

			if (e.size > MSE_PACKAGE_MAX_JSON) {
				mse_err_file(err, pkg);
				mse_err_field(err, e.name, "too large: %llu bytes",
					      (unsigned long long)e.size);
				goto out;
			}
			if (mse_tar_reader_read_all(r, 0, &text, &len, err) != 0)
				goto out;
			k = parse_package_json(text, len, info, err);
			if (k == 0 && fd >= 0) {
				ssize_t n = write(fd, text, len);

				if (n != (ssize_t)len)
					k = mse_err_field(err, path, "cannot write");
			}
			free(text);
			if (k != 0)
				goto out;
		} else {
			uint64_t total = 0;
			ssize_t n;

			while ((n = mse_tar_reader_read(r, chunk, 256 << 10, err)) > 0) {
				total += (uint64_t)n;
				if (m == M_APP && EVP_DigestUpdate(sha, chunk, (size_t)n) != 1) {
					mse_err_set(err, "SHA-256 failed");
					goto out;
				}
				if (fd >= 0 && write(fd, chunk, (size_t)n) != n) {
					mse_err_field(err, path, "cannot write: %s",
						      strerror(errno));
					goto out;
				}
			}
			if (n < 0)
				goto out;
			if (m == M_APP)
				info->app_tar_bytes = total;
			else if (m == M_TESTS)
				info->tests_tar_bytes = total;
			else
				info->config_bytes = total;
		}
		if (fd >= 0) {
			if (close(fd) != 0) {
				fd = -1;
				mse_err_field(err, path, "cannot write: %s", strerror(errno));
				goto out;
			}
			fd = -1;
		}
	}
	if (k < 0)
		goto out;
	if (seen != M_ALL) {
		mse_err_file(err, pkg);
		mse_err_set(err, "incomplete package: missing %s%s%s%s",
			    seen & M_JSON ? "" : "package.json ", seen & M_CONFIG ? "" : "mse.toml ",
			    seen & M_APP ? "" : "app.tar ", seen & M_TESTS ? "" : "tests.tar");
		goto out;
	}
	if (EVP_DigestFinal_ex(sha, digest, &dlen) != 1 || dlen != 32) {
		mse_err_set(err, "SHA-256 failed");
		goto out;
	}
	if (CRYPTO_memcmp(digest, info->app_sha256, 32) != 0) {
		char want[65], got[65];

		if (mse_hex_encode(want, sizeof(want), info->app_sha256, 32) != 0 ||
		    mse_hex_encode(got, sizeof(got), digest, 32) != 0)
			want[0] = got[0] = 0;
		mse_err_file(err, pkg);
		mse_err_expect(err, "app.tar SHA-256", want, got);
		mse_err_prefix(err, "app.tar does not match package.json");
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	mse_tar_reader_free(r);
	EVP_MD_CTX_free(sha);
	free(chunk);
	return rc;
}

void mse_package_app_limits(const struct mse_package_info *info, uint64_t enclave_bytes,
			    struct mse_tar_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->max_total = info->app_tar_bytes ? info->app_tar_bytes : 1;
	if (enclave_bytes && enclave_bytes < lim->max_total)
		lim->max_total = enclave_bytes;
	lim->max_entries = info->app_tar_bytes / 512 + 1;
}

int mse_package_inspect(const char *package_path, struct mse_package_info *info,
			struct mse_err *err)
{
	return open_package(package_path, NULL, info, err);
}

int mse_package_extract(const char *package_path, const char *dest,
			struct mse_package_info *info, struct mse_err *err)
{
	struct mse_err ignored;

	if (mkdir(dest, 0700) != 0)
		return mse_err_field(err, dest, "cannot create: %s",
				     errno == EEXIST ? "already exists" : strerror(errno));
	if (open_package(package_path, dest, info, err) != 0) {
		if (mse_file_remove_tree(dest, &ignored) != 0)
			mse_err_prefix(err, "(could not remove %s)", dest);
		return -1;
	}
	mse_file_sync_dir(dest);
	return 0;
}

/* ---- decrypting the code --------------------------------------------- */

struct sink {
	const uint8_t *key;
	const char *dir;   /* where files go (staging or the empty target) */
	const char *label; /* the archive or directory, for errors */
	mode_t mode;
	size_t files;
};

/*
 * Writes one entry: buf holds len bytes of an entry named `name` (no header
 * room needed: decryption is in place).
 */
static int sink_file(struct sink *k, const char *name, uint8_t *buf, size_t len,
		     struct mse_err *err)
{
	char path[PATH_MAX], out_name[PATH_MAX];
	const uint8_t *data = buf;
	size_t n = strlen(name), slen = strlen(MSE_CODEFILE_SUFFIX), plain = len;
	int fd;

	if (n > slen && strcmp(name + n - slen, MSE_CODEFILE_SUFFIX) == 0) {
		if (mse_codefile_open_inplace(k->key, buf, len, &plain, err) != 0) {
			mse_err_file(err, k->label);
			return mse_err_field(err, name, "%s", "cannot decrypt: wrong key or corrupt "
								  "file (XSalsa20-Poly1305 tag does "
								  "not verify)");
		}
		data = buf + MSE_CODEFILE_HEADER_BYTES;
		snprintf(out_name, sizeof(out_name), "%.*s", (int)(n - slen), name);
	} else if (strcmp(name, MSE_PACKAGE_CLEAR_FILE) == 0) {
		snprintf(out_name, sizeof(out_name), "%s", name);
	} else {
		mse_err_file(err, k->label);
		return mse_err_field(err, name,
				     "clear file in encrypted code: only a top-level "
				     "requirements.txt may be clear, everything else is NAME.enc");
	}
	if (snprintf(path, sizeof(path), "%s/%s", k->dir, out_name) >= (int)sizeof(path))
		return mse_err_field(err, name, "path too long");
	{
		char *slash = strrchr(path, '/');

		*slash = 0;
		if (strlen(path) > strlen(k->dir) && mse_file_mkdirs(path, 0700, err) != 0)
			return -1;
		*slash = '/';
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, k->mode);
	if (fd < 0) {
		mse_err_file(err, k->label);
		return mse_err_field(err, out_name, "cannot create: %s", strerror(errno));
	}
	for (size_t done = 0; done < plain;) {
		ssize_t w = write(fd, data + done, plain - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			close(fd);
			return mse_err_field(err, out_name, "cannot write: %s", strerror(errno));
		}
		done += (size_t)w;
	}
	if (close(fd) != 0)
		return mse_err_field(err, out_name, "cannot write: %s", strerror(errno));
	k->files++;
	return 0;
}

/* Empties a directory (keeps it: it may be a mount point). */
static void empty_dir(const char *dir)
{
	char path[PATH_MAX];
	struct mse_err ignored;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) < (int)sizeof(path) &&
		    mse_file_remove_tree(path, &ignored) != 0) {
			/* Best effort: the caller reports the original error. */
		}
	}
	closedir(d);
}

static int dir_is_empty(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int empty = 1;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

/* Staging: a new sibling directory, renamed to dest on success; or dest itself if empty. */
static int stage_begin(const char *dest, char *staging, size_t size, int *in_place,
		       struct mse_err *err)
{
	struct stat st;

	*in_place = 0;
	if (stat(dest, &st) == 0) {
		if (!S_ISDIR(st.st_mode) || !dir_is_empty(dest))
			return mse_err_field(err, dest, "already exists and is not an empty "
							"directory, not overwriting");
		*in_place = 1;
		snprintf(staging, size, "%s", dest);
		return 0;
	}
	if (snprintf(staging, size, "%s.tmp.XXXXXX", dest) >= (int)size)
		return mse_err_field(err, dest, "path too long");
	if (!mkdtemp(staging))
		return mse_err_field(err, dest, "cannot create a directory next to it: %s",
				     strerror(errno));
	return 0;
}

static int stage_end(const char *dest, const char *staging, int in_place, int ok,
		     struct mse_err *err)
{
	struct mse_err ignored;

	if (in_place) {
		if (!ok)
			empty_dir(dest);
		return ok ? 0 : -1;
	}
	if (ok && rename(staging, dest) != 0) {
		mse_err_field(err, dest, "cannot rename into place: %s", strerror(errno));
		ok = 0;
	}
	if (!ok) {
		if (mse_file_remove_tree(staging, &ignored) != 0) {
			/* Nothing better to do; the error already says what failed. */
		}
		return -1;
	}
	return 0;
}

int mse_package_decrypt_app(const char *app_tar, const uint8_t key[MSE_CODEFILE_KEY_BYTES],
			    const char *dest, mode_t file_mode, size_t *files, struct mse_err *err)
{
	struct mse_tar_limits lim = {.max_entry_size =
					     MSE_CODEFILE_MAX_PLAIN + MSE_CODEFILE_HEADER_BYTES};
	struct mse_tar_reader *r = NULL;
	struct mse_tar_entry e;
	char staging[PATH_MAX];
	struct sink k = {key, staging, app_tar, file_mode ? file_mode : 0600, 0};
	int in_place = 0, ok = 0, n;

	if (files)
		*files = 0;
	if (mse_tar_reader_open_file(&r, app_tar, &lim, err) != 0)
		return -1;
	if (stage_begin(dest, staging, sizeof(staging), &in_place, err) != 0) {
		mse_tar_reader_free(r);
		return -1;
	}
	while ((n = mse_tar_reader_next(r, &e, err)) == 1) {
		uint8_t *buf = NULL;
		size_t len = 0;
		int rc;

		if (e.is_dir)
			continue; /* made on demand for the files in it */
		if (mse_tar_reader_read_all(r, 0, &buf, &len, err) != 0)
			break;
		rc = sink_file(&k, e.name, buf, len, err);
		mse_codefile_buf_free(buf, len);
		if (rc != 0)
			break;
	}
	ok = n == 0;
	mse_tar_reader_free(r);
	if (stage_end(dest, staging, in_place, ok, err) != 0)
		return -1;
	if (files)
		*files = k.files;
	return 0;
}

int mse_package_decrypt_dir(const char *src_dir, const uint8_t key[MSE_CODEFILE_KEY_BYTES],
			    const char *dest, mode_t file_mode, size_t *files, struct mse_err *err)
{
	struct file_list list = {0};
	char staging[PATH_MAX], path[PATH_MAX];
	struct sink k = {key, staging, src_dir, file_mode ? file_mode : 0600, 0};
	int in_place = 0, ok = 1;

	if (files)
		*files = 0;
	if (walk_tree(src_dir, NULL, NULL, MSE_CODEFILE_MAX_PLAIN + MSE_CODEFILE_HEADER_BYTES,
		      &list, err) != 0)
		return -1;
	if (stage_begin(dest, staging, sizeof(staging), &in_place, err) != 0) {
		file_list_free(&list);
		return -1;
	}
	for (size_t i = 0; ok && i < list.len; i++) {
		uint8_t *buf = NULL;
		size_t len = 0;

		if (snprintf(path, sizeof(path), "%s/%s", src_dir, list.v[i].rel) >=
		    (int)sizeof(path)) {
			mse_err_field(err, list.v[i].rel, "path too long");
			ok = 0;
			break;
		}
		if (mse_codefile_read_file(path, 0, MSE_CODEFILE_MAX_PLAIN + MSE_CODEFILE_HEADER_BYTES,
					   &buf, &len, err) != 0) {
			ok = 0;
			break;
		}
		if (sink_file(&k, list.v[i].rel, buf, len, err) != 0)
			ok = 0;
		mse_codefile_buf_free(buf, len);
	}
	file_list_free(&list);
	if (stage_end(dest, staging, in_place, ok, err) != 0)
		return -1;
	if (files)
		*files = k.files;
	return 0;
}
