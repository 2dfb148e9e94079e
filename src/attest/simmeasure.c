/* SPDX-License-Identifier: Apache-2.0 */
#include "attest/simmeasure.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

struct entry {
	char *path;
	uint8_t digest[32];
};

struct list {
	struct entry *v;
	size_t n, cap;
};

static void list_free(struct list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

static int list_add(struct list *l, const char *path, const uint8_t digest[32], struct mse_err *err)
{
	if (l->n >= MSE_SIMMEASURE_MAX_FILES)
		return mse_err_set(err, "app has more than %d files", MSE_SIMMEASURE_MAX_FILES);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct entry *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return mse_err_set(err, "out of memory");
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].path = strdup(path);
	if (!l->v[l->n].path)
		return mse_err_set(err, "out of memory");
	memcpy(l->v[l->n].digest, digest, 32);
	l->n++;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

static void put_u32(EVP_MD_CTX *h, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	EVP_DigestUpdate(h, b, 4);
}

static int list_hash(struct list *l, uint8_t out[32], struct mse_err *err)
{
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	size_t i;

	if (!h)
		return mse_err_set(err, "out of memory");
	qsort(l->v, l->n, sizeof(*l->v), cmp_entry);
	for (i = 1; i < l->n; i++)
		if (strcmp(l->v[i - 1].path, l->v[i].path) == 0) {
			EVP_MD_CTX_free(h);
			return mse_err_field(err, l->v[i].path, "the app lists this file twice");
		}
	EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	put_u32(h, (uint32_t)l->n);
	for (i = 0; i < l->n; i++) {
		put_u32(h, (uint32_t)strlen(l->v[i].path));
		EVP_DigestUpdate(h, l->v[i].path, strlen(l->v[i].path));
		EVP_DigestUpdate(h, l->v[i].digest, 32);
	}
	EVP_DigestFinal_ex(h, out, NULL);
	EVP_MD_CTX_free(h);
	return 0;
}

static int hash_fd(int fd, uint8_t out[32])
{
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	uint8_t buf[65536];
	ssize_t n;

	if (!h)
		return -1;
	EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			EVP_MD_CTX_free(h);
			return -1;
		}
		EVP_DigestUpdate(h, buf, (size_t)n);
	}
	EVP_DigestFinal_ex(h, out, NULL);
	EVP_MD_CTX_free(h);
	return 0;
}

int mse_simmeasure_file_sha256(const char *path, uint8_t out[32], struct mse_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0) {
		mse_err_file(err, path);
		return mse_err_set(err, "cannot open %s: %s", path, strerror(errno));
	}
	rc = hash_fd(fd, out);
	close(fd);
	if (rc != 0) {
		mse_err_file(err, path);
		return mse_err_set(err, "cannot read %s: %s", path, strerror(errno));
	}
	return 0;
}

static int walk(const char *root, const char *rel, struct list *l, int depth, struct mse_err *err)
{
	char path[4096], sub[4096];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (depth > 64)
		return mse_err_set(err, "app directory nested too deep at %s", rel);
	if (snprintf(path, sizeof(path), "%s%s%s", root, *rel ? "/" : "", rel) >= (int)sizeof(path))
		return mse_err_set(err, "path too long: %s", rel);
	d = opendir(path);
	if (!d) {
		mse_err_file(err, path);
		return mse_err_set(err, "cannot read directory %s: %s", path, strerror(errno));
	}
	while (rc == 0 && (de = readdir(d))) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
			    (int)sizeof(sub) ||
		    snprintf(path, sizeof(path), "%s/%s", root, sub) >= (int)sizeof(path)) {
			rc = mse_err_set(err, "path too long: %s", de->d_name);
			break;
		}
		if (lstat(path, &st) != 0) {
			rc = mse_err_set(err, "cannot stat %s: %s", path, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			rc = walk(root, sub, l, depth + 1, err);
		} else if (S_ISREG(st.st_mode)) {
			uint8_t dg[32];

			rc = mse_simmeasure_file_sha256(path, dg, err);
			if (rc == 0)
				rc = list_add(l, sub, dg, err);
		} else {
			rc = mse_err_field(err, sub,
					   "not a regular file or directory (symlinks and devices "
					   "are not part of an app)");
		}
	}
	closedir(d);
	return rc;
}

int mse_simmeasure_tree_dir(const char *dir, uint8_t out[32], struct mse_err *err)
{
	struct list l = {0};
	int rc = walk(dir, "", &l, 0, err);

	if (rc == 0)
		rc = list_hash(&l, out, err);
	list_free(&l);
	return rc;
}

/* "./a//b/" -> "a/b"; -1 for absolute paths or "..". */
static int normalize(const char *in, char *out, size_t size)
{
	size_t o = 0;
	const char *s = in;

	if (*s == '/')
		return -1;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		if (n == 2 && s[0] == '.' && s[1] == '.')
			return -1;
		if (n && !(n == 1 && s[0] == '.')) {
			if (o + n + 2 > size)
				return -1;
			if (o)
				out[o++] = '/';
			memcpy(out + o, s, n);
			o += n;
		}
		s += n;
		if (*s == '/')
			s++;
	}
	out[o] = '\0';
	return 0;
}

int mse_simmeasure_tree_tar(const char *tar_path, uint8_t out[32], struct mse_err *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	struct list l = {0};
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	int rc = -1, r;

	if (!a || !h) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	if (archive_read_open_filename(a, tar_path, 65536) != ARCHIVE_OK) {
		mse_err_file(err, tar_path);
		mse_err_set(err, "cannot open tar %s: %s", tar_path, archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		char norm[4096];
		const char *name = archive_entry_pathname(e);
		mode_t type = archive_entry_filetype(e);
		uint8_t dg[32], buf[65536];
		la_ssize_t n;

		if (!name || normalize(name, norm, sizeof(norm)) != 0) {
			mse_err_file(err, tar_path);
			mse_err_field(err, name ? name : "", "unsafe path in tar");
			goto out;
		}
		if (type == AE_IFDIR)
			continue;
		if (type != AE_IFREG || !*norm) {
			mse_err_file(err, tar_path);
			mse_err_field(err, name, "not a regular file or directory");
			goto out;
		}
		EVP_DigestInit_ex(h, EVP_sha256(), NULL);
		while ((n = archive_read_data(a, buf, sizeof(buf))) > 0)
			EVP_DigestUpdate(h, buf, (size_t)n);
		if (n < 0) {
			mse_err_file(err, tar_path);
			mse_err_set(err, "reading %s: %s", name, archive_error_string(a));
			goto out;
		}
		EVP_DigestFinal_ex(h, dg, NULL);
		if (list_add(&l, norm, dg, err) != 0)
			goto out;
	}
	if (r != ARCHIVE_EOF) {
		mse_err_file(err, tar_path);
		mse_err_set(err, "corrupt tar %s: %s", tar_path, archive_error_string(a));
		goto out;
	}
	rc = list_hash(&l, out, err);
out:
	EVP_MD_CTX_free(h);
	list_free(&l);
	archive_read_free(a);
	return rc;
}

static void put_field(EVP_MD_CTX *h, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	put_u32(h, (uint32_t)n);
	if (n)
		EVP_DigestUpdate(h, s, n);
}

void mse_simmeasure_combine(const uint8_t bootstrap_sha256[32], const struct mse_sim_args *args,
			    const uint8_t tree_hash[32], uint8_t mrenclave[32])
{
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	char num[32];

	if (!h) {
		/* Out of memory: fail closed with a value nothing can match. */
		memset(mrenclave, 0, 32);
		return;
	}
	EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	EVP_DigestUpdate(h, MSE_SIMMEASURE_TAG, strlen(MSE_SIMMEASURE_TAG));
	EVP_DigestUpdate(h, bootstrap_sha256, 32);
	put_field(h, args->subject);
	put_field(h, args->san);
	if (args->expiration > 0)
		snprintf(num, sizeof(num), "%" PRId64, args->expiration);
	else
		num[0] = '\0';
	put_field(h, num);
	if (args->size > 0)
		snprintf(num, sizeof(num), "%" PRIu64, args->size);
	else
		num[0] = '\0';
	put_field(h, num);
	put_field(h, args->app_id);
	put_field(h, args->application);
	EVP_DigestUpdate(h, tree_hash, 32);
	EVP_DigestFinal_ex(h, mrenclave, NULL);
	EVP_MD_CTX_free(h);
}

int mse_simmeasure_compute(const uint8_t bootstrap_sha256[32], const struct mse_sim_args *args,
			   const char *app_dir_or_tar, uint8_t mrenclave[32], struct mse_err *err)
{
	struct stat st;
	uint8_t tree[32];

	if (stat(app_dir_or_tar, &st) != 0) {
		mse_err_file(err, app_dir_or_tar);
		return mse_err_set(err, "cannot stat %s: %s", app_dir_or_tar, strerror(errno));
	}
	if (S_ISDIR(st.st_mode) ? mse_simmeasure_tree_dir(app_dir_or_tar, tree, err)
				: mse_simmeasure_tree_tar(app_dir_or_tar, tree, err))
		return -1;
	mse_simmeasure_combine(bootstrap_sha256, args, tree, mrenclave);
	return 0;
}

void mse_simmeasure_v2(const uint8_t exe_sha256[32], const struct mse_sim_arg *args, size_t n,
		       const uint8_t *tree_hash, uint8_t mrenclave[32])
{
	static const uint8_t zero[32];
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	size_t i;

	if (!h) {
		memset(mrenclave, 0, 32);
		return;
	}
	EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	EVP_DigestUpdate(h, MSE_SIMMEASURE_TAG_V2, strlen(MSE_SIMMEASURE_TAG_V2));
	EVP_DigestUpdate(h, exe_sha256, 32);
	put_u32(h, (uint32_t)n);
	for (i = 0; i < n; i++) {
		put_field(h, args[i].name);
		put_field(h, args[i].value);
	}
	EVP_DigestUpdate(h, tree_hash ? tree_hash : zero, 32);
	EVP_DigestFinal_ex(h, mrenclave, NULL);
	EVP_MD_CTX_free(h);
}

int mse_simmeasure_replica(const uint8_t exe_sha256[32], const char *application,
			   uint64_t size_mb, const uint8_t coordinator_mrenclave[32],
			   const char *app_dir_or_tar, uint8_t mrenclave[32], struct mse_err *err)
{
	struct stat st;
	uint8_t tree[32];
	char size[32], coord[65];
	static const char hx[] = "0123456789abcdef";
	struct mse_sim_arg a[4];
	int i;

	if (stat(app_dir_or_tar, &st) != 0) {
		mse_err_file(err, app_dir_or_tar);
		return mse_err_set(err, "cannot stat %s: %s", app_dir_or_tar, strerror(errno));
	}
	if (S_ISDIR(st.st_mode) ? mse_simmeasure_tree_dir(app_dir_or_tar, tree, err)
				: mse_simmeasure_tree_tar(app_dir_or_tar, tree, err))
		return -1;
	if (size_mb > 0)
		snprintf(size, sizeof(size), "%" PRIu64, size_mb);
	else
		size[0] = '\0';
	for (i = 0; i < 32; i++) {
		coord[2 * i] = hx[coordinator_mrenclave[i] >> 4];
		coord[2 * i + 1] = hx[coordinator_mrenclave[i] & 15];
	}
	coord[64] = '\0';
	a[0] = (struct mse_sim_arg){"role", "replica"};
	a[1] = (struct mse_sim_arg){"application", application};
	a[2] = (struct mse_sim_arg){"size", size};
	a[3] = (struct mse_sim_arg){"coordinator_mrenclave", coord};
	mse_simmeasure_v2(exe_sha256, a, 4, tree, mrenclave);
	return 0;
}

void mse_simmeasure_coordinator(const uint8_t exe_sha256[32], const uint8_t owner_pk[32],
				uint8_t mrenclave[32])
{
	static const char hx[] = "0123456789abcdef";
	char owner[65];
	struct mse_sim_arg a[2];
	int i;

	for (i = 0; i < 32; i++) {
		owner[2 * i] = hx[owner_pk[i] >> 4];
		owner[2 * i + 1] = hx[owner_pk[i] & 15];
	}
	owner[64] = '\0';
	a[0] = (struct mse_sim_arg){"role", "coordinator"};
	a[1] = (struct mse_sim_arg){"owner_key", owner};
	mse_simmeasure_v2(exe_sha256, a, 2, NULL, mrenclave);
}
