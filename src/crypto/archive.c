/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/archive.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "common/file.h"
#include "crypto/codefile.h"

#define COPY_CHUNK ((size_t)256 << 10)
#define DEFAULT_MAX_ENTRIES 1000000ULL
#define DEFAULT_MAX_TOTAL (16ULL << 30)

/* ---- writing ---------------------------------------------------------- */

struct mse_tar_writer {
	struct archive *a;
	struct archive_entry *entry;
	EVP_MD_CTX *sha;
	int fd;                          /* -1 when nested in `parent` */
	struct mse_tar_writer *parent;   /* nested: our bytes are its current entry */
	uint64_t total;
	int io_errno;
	uint8_t *chunk;
};

/* Appends to the parent's current entry (the parent checks its declared size). */
static int parent_data(struct mse_tar_writer *parent, const uint8_t *p, size_t n)
{
	while (n) {
		la_ssize_t k = archive_write_data(parent->a, p, n);

		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Piece size for hashing and writing: both passes run while it is in cache. */
#define W_PIECE ((size_t)256 << 10)

static ssize_t w_write(struct archive *a, void *ctx, const void *buf, size_t n)
{
	struct mse_tar_writer *w = ctx;
	const uint8_t *p = buf;

	for (size_t off = 0; off < n;) {
		size_t piece = n - off < W_PIECE ? n - off : W_PIECE, left = piece;
		const uint8_t *q = p + off;

		if (w->sha && EVP_DigestUpdate(w->sha, q, piece) != 1) {
			archive_set_error(a, EIO, "SHA-256 failed");
			return -1;
		}
		if (w->parent) {
			if (parent_data(w->parent, q, piece) != 0) {
				archive_set_error(a, EIO, "%s", archive_error_string(w->parent->a));
				return -1;
			}
			left = 0;
		}
		while (left) {
			ssize_t k = write(w->fd, q, left);

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				w->io_errno = errno;
				archive_set_error(a, errno, "write failed");
				return -1;
			}
			q += k;
			left -= (size_t)k;
		}
		off += piece;
	}
	w->total += n;
	return (ssize_t)n;
}

static int w_fail(struct mse_tar_writer *w, const char *name, struct mse_err *err)
{
	const char *why = w->io_errno ? strerror(w->io_errno) : archive_error_string(w->a);

	return mse_err_field(err, name, "cannot write to the archive: %s", why ? why : "unknown");
}

static int writer_new(struct mse_tar_writer **out, int fd, struct mse_tar_writer *parent,
		      unsigned flags, struct mse_err *err)
{
	struct mse_tar_writer *w = calloc(1, sizeof(*w));

	*out = NULL;
	if (!w)
		return mse_err_set(err, "out of memory");
	w->fd = fd;
	w->parent = parent;
	w->a = archive_write_new();
	w->entry = archive_entry_new();
	if (flags & MSE_TAR_HASH)
		w->sha = EVP_MD_CTX_new();
	if (!w->a || !w->entry || ((flags & MSE_TAR_HASH) && !w->sha) ||
	    (w->sha && EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL) != 1)) {
		mse_tar_writer_free(w);
		return mse_err_set(err, "out of memory");
	}
	/*
	 * GNU tar format: plain headers, long names as ././@LongLink entries,
	 * names stored as the bytes given (no conversion through the process
	 * locale, unlike pax, whose UTF-8 path records would make the archive
	 * depend on LANG). Python's tarfile, GNU tar and libarchive read it.
	 * bytes_in_last_block = 1: no padding after the end-of-archive blocks,
	 * so the size is exactly what mse_tar_predict_size says.
	 */
	if (archive_write_set_format_gnutar(w->a) != ARCHIVE_OK ||
	    archive_write_add_filter_none(w->a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(w->a, 1) != ARCHIVE_OK ||
	    archive_write_open(w->a, w, NULL, w_write, NULL) != ARCHIVE_OK) {
		mse_err_set(err, "cannot start a tar archive: %s", archive_error_string(w->a));
		mse_tar_writer_free(w);
		return -1;
	}
	*out = w;
	return 0;
}

int mse_tar_writer_new(struct mse_tar_writer **out, int fd, unsigned flags, struct mse_err *err)
{
	return writer_new(out, fd, NULL, flags, err);
}

int mse_tar_writer_new_nested(struct mse_tar_writer **out, struct mse_tar_writer *parent,
			      unsigned flags, struct mse_err *err)
{
	return writer_new(out, -1, parent, flags, err);
}

static uint64_t round512(uint64_t n)
{
	return (n + 511) & ~(uint64_t)511;
}

uint64_t mse_tar_entry_bytes(size_t name_len, uint64_t size)
{
	/* libarchive's GNU writer: a ././@LongLink entry (header + name + NUL) above 100 bytes. */
	uint64_t n = 512 + round512(size);

	if (name_len > 100)
		n += 512 + round512((uint64_t)name_len + 1);
	return n;
}

static int w_header(struct mse_tar_writer *w, const char *name, uint64_t size,
		    struct mse_err *err)
{
	struct archive_entry *e = w->entry;

	if (!*name || strlen(name) > MSE_TAR_MAX_NAME || size > INT64_MAX)
		return mse_err_field(err, name, "cannot be stored in a tar archive");
	archive_entry_clear(e);
	/* Bytes as given (see the format choice in mse_tar_writer_new). */
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_mtime(e, 0, 0);
	if (archive_write_header(w->a, e) != ARCHIVE_OK)
		return w_fail(w, name, err);
	return 0;
}

int mse_tar_writer_begin(struct mse_tar_writer *w, const char *name, uint64_t size,
			 struct mse_err *err)
{
	return w_header(w, name, size, err);
}

int mse_tar_writer_add(struct mse_tar_writer *w, const char *name, const void *data, size_t len,
		       struct mse_err *err)
{
	const uint8_t *p = data;

	if (w_header(w, name, len, err) != 0)
		return -1;
	while (len) {
		la_ssize_t k = archive_write_data(w->a, p, len);

		if (k <= 0)
			return w_fail(w, name, err);
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

int mse_tar_writer_add_fd(struct mse_tar_writer *w, const char *name, int fd, uint64_t size,
			  struct mse_err *err)
{
	uint64_t left = size;

	if (!w->chunk && !(w->chunk = malloc(COPY_CHUNK)))
		return mse_err_set(err, "out of memory");
	if (w_header(w, name, size, err) != 0)
		return -1;
	while (left) {
		size_t want = left < COPY_CHUNK ? (size_t)left : COPY_CHUNK;
		ssize_t k = read(fd, w->chunk, want);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return mse_err_field(err, name, "cannot read: %s",
					     k < 0 ? strerror(errno) : "file shrank");
		for (ssize_t done = 0; done < k;) {
			la_ssize_t n = archive_write_data(w->a, w->chunk + done, (size_t)(k - done));

			if (n <= 0)
				return w_fail(w, name, err);
			done += n;
		}
		left -= (uint64_t)k;
	}
	return 0;
}

int mse_tar_writer_finish(struct mse_tar_writer *w, uint8_t sha256[MSE_TAR_SHA256_BYTES],
			  uint64_t *total, struct mse_err *err)
{
	unsigned int n = 0;
	uint8_t md[EVP_MAX_MD_SIZE];

	if (archive_write_close(w->a) != ARCHIVE_OK)
		return w_fail(w, "end of archive", err);
	if (sha256 && !w->sha)
		return mse_err_set(err, "internal: writer created without MSE_TAR_HASH");
	if (sha256) {
		if (EVP_DigestFinal_ex(w->sha, md, &n) != 1 || n != MSE_TAR_SHA256_BYTES)
			return mse_err_set(err, "SHA-256 failed");
		memcpy(sha256, md, MSE_TAR_SHA256_BYTES);
	}
	if (total)
		*total = w->total;
	return 0;
}

void mse_tar_writer_free(struct mse_tar_writer *w)
{
	if (!w)
		return;
	if (w->a)
		archive_write_free(w->a);
	archive_entry_free(w->entry);
	EVP_MD_CTX_free(w->sha);
	free(w->chunk);
	free(w);
}

/* ---- reading ---------------------------------------------------------- */

/* A set of names (open addressing, FNV-1a) to refuse duplicates. */
struct nameset {
	char **slot;
	size_t cap, len;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return h;
}

/* 1 if added, 0 if already present, -1 out of memory. */
static int nameset_add(struct nameset *s, const char *name)
{
	size_t i;

	if ((s->len + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		char **slot = calloc(cap, sizeof(*slot));

		if (!slot)
			return -1;
		for (size_t k = 0; k < s->cap; k++) {
			if (!s->slot[k])
				continue;
			for (i = fnv1a(s->slot[k]) & (cap - 1); slot[i]; i = (i + 1) & (cap - 1))
				;
			slot[i] = s->slot[k];
		}
		free(s->slot);
		s->slot = slot;
		s->cap = cap;
	}
	for (i = fnv1a(name) & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
		if (strcmp(s->slot[i], name) == 0)
			return 0;
	s->slot[i] = strdup(name);
	if (!s->slot[i])
		return -1;
	s->len++;
	return 1;
}

static void nameset_free(struct nameset *s)
{
	for (size_t k = 0; k < s->cap; k++)
		free(s->slot[k]);
	free(s->slot);
}

struct mse_tar_reader {
	struct archive *a;
	struct mse_tar_limits lim;
	struct nameset names;
	char label[PATH_MAX];
	char name[MSE_TAR_MAX_NAME + 1];
	uint64_t entries, total, cur_size;
	int have_data;
};

static void limits_init(struct mse_tar_limits *dst, const struct mse_tar_limits *src)
{
	memset(dst, 0, sizeof(*dst));
	if (src)
		*dst = *src;
	if (!dst->max_entries)
		dst->max_entries = DEFAULT_MAX_ENTRIES;
	if (!dst->max_total)
		dst->max_total = DEFAULT_MAX_TOTAL;
	if (!dst->max_entry_size || dst->max_entry_size > dst->max_total)
		dst->max_entry_size = dst->max_total;
}

static struct mse_tar_reader *reader_new(const char *label, const struct mse_tar_limits *lim)
{
	struct mse_tar_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	limits_init(&r->lim, lim);
	snprintf(r->label, sizeof(r->label), "%s", label ? label : "archive");
	r->a = archive_read_new();
	if (!r->a || archive_read_support_format_tar(r->a) != ARCHIVE_OK ||
	    archive_read_support_filter_none(r->a) != ARCHIVE_OK) {
		mse_tar_reader_free(r);
		return NULL;
	}
	return r;
}

int mse_tar_reader_open_file(struct mse_tar_reader **out, const char *path,
			     const struct mse_tar_limits *lim, struct mse_err *err)
{
	struct mse_tar_reader *r = reader_new(path, lim);

	*out = NULL;
	if (!r)
		return mse_err_set(err, "out of memory");
	if (archive_read_open_filename(r->a, path, COPY_CHUNK) != ARCHIVE_OK) {
		mse_err_file(err, path);
		mse_err_set(err, "cannot open as a tar archive: %s", archive_error_string(r->a));
		mse_tar_reader_free(r);
		return -1;
	}
	*out = r;
	return 0;
}

int mse_tar_reader_open_mem(struct mse_tar_reader **out, const void *data, size_t len,
			    const char *label, const struct mse_tar_limits *lim,
			    struct mse_err *err)
{
	struct mse_tar_reader *r = reader_new(label, lim);

	*out = NULL;
	if (!r)
		return mse_err_set(err, "out of memory");
	if (archive_read_open_memory(r->a, data, len) != ARCHIVE_OK) {
		mse_err_file(err, r->label);
		mse_err_set(err, "cannot open as a tar archive: %s", archive_error_string(r->a));
		mse_tar_reader_free(r);
		return -1;
	}
	*out = r;
	return 0;
}

/*
 * Normalises an entry name into out: drops every leading "./" and every
 * trailing '/', so that two names for the same path compare equal.
 * Returns 1 for the archive root itself ("." or "./"), 0 for a name, -1
 * (with *why) for a name that could leave the destination.
 */
static int normalise(const char *in, char *out, size_t size, const char **why)
{
	size_t n, depth = 0;
	const char *c;

	while (in[0] == '.' && in[1] == '/')
		in += 2;
	if (!*in || strcmp(in, ".") == 0)
		return 1;
	if (in[0] == '/') {
		*why = "absolute path";
		return -1;
	}
	n = strlen(in);
	if (n >= size) {
		*why = "name too long";
		return -1;
	}
	memcpy(out, in, n + 1);
	/* "d/", "d//": every trailing '/' goes, so "d" and "d//" are one name for duplicates */
	while (n > 0 && out[n - 1] == '/')
		out[--n] = 0;
	for (c = out; *c;) {
		const char *e = strchr(c, '/');
		size_t k = e ? (size_t)(e - c) : strlen(c);

		if (k == 0) {
			*why = "empty path component";
			return -1;
		}
		if (k == 2 && c[0] == '.' && c[1] == '.') {
			*why = "\"..\" path component";
			return -1;
		}
		if (k == 1 && c[0] == '.') {
			*why = "\".\" path component";
			return -1;
		}
		if (++depth > MSE_TAR_MAX_DEPTH) {
			*why = "nested too deep";
			return -1;
		}
		c += k;
		if (*c == '/')
			c++;
	}
	return 0;
}

static int refuse(struct mse_tar_reader *r, const char *name, struct mse_err *err,
		  const char *why)
{
	mse_err_file(err, r->label);
	return mse_err_field(err, name, "refused: %s", why);
}

int mse_tar_reader_next(struct mse_tar_reader *r, struct mse_tar_entry *e, struct mse_err *err)
{
	struct archive_entry *ae;
	const char *raw, *why = NULL;
	int rc, type, norm;

	memset(e, 0, sizeof(*e));
	for (;;) {
		/* Skip whatever data the caller did not read. */
		rc = archive_read_next_header(r->a, &ae);
		if (rc == ARCHIVE_EOF)
			return 0;
		if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
			mse_err_file(err, r->label);
			return mse_err_set(err, "malformed tar archive after %llu entries: %s",
					   (unsigned long long)r->entries,
					   archive_error_string(r->a));
		}
		raw = archive_entry_pathname_utf8(ae);
		if (!raw)
			raw = archive_entry_pathname(ae);
		if (!raw) {
			mse_err_file(err, r->label);
			return mse_err_set(err, "entry %llu has no name",
					   (unsigned long long)r->entries + 1);
		}
		if (++r->entries > r->lim.max_entries)
			return refuse(r, raw, err, "too many entries in the archive");
		type = archive_entry_filetype(ae);
		if (archive_entry_hardlink(ae))
			return refuse(r, raw, err, "hard link (links are never extracted)");
		if (type == AE_IFLNK)
			return refuse(r, raw, err, "symbolic link (links are never extracted)");
		if (type == AE_IFCHR || type == AE_IFBLK)
			return refuse(r, raw, err, "device file");
		if (type == AE_IFIFO || type == AE_IFSOCK)
			return refuse(r, raw, err, "FIFO or socket");
		if (type != AE_IFREG && type != AE_IFDIR)
			return refuse(r, raw, err, "not a regular file or a directory");
		/*
		 * A sparse entry (GNU 'S' or pax GNU.sparse.*) declares a size its
		 * data does not carry: a few KB of archive would expand to gigabytes
		 * of zeros. Our writer never makes one.
		 */
		if (archive_entry_sparse_count(ae) > 0)
			return refuse(r, raw, err, "sparse file (its declared size is not in the archive)");
		norm = normalise(raw, r->name, sizeof(r->name), &why);
		if (norm < 0)
			return refuse(r, raw, err, why);
		if (norm == 1) {
			if (type == AE_IFDIR)
				continue; /* "./": the root itself */
			return refuse(r, raw, err, "a file named like the archive root");
		}
		break;
	}
	rc = nameset_add(&r->names, r->name);
	if (rc < 0)
		return mse_err_set(err, "out of memory");
	if (rc == 0)
		return refuse(r, r->name, err, "duplicate name in the archive");
	e->name = r->name;
	e->is_dir = type == AE_IFDIR;
	if (!e->is_dir) {
		la_int64_t sz = archive_entry_size(ae);

		if (sz < 0)
			return refuse(r, r->name, err, "negative size");
		if ((uint64_t)sz > r->lim.max_entry_size) {
			char why2[128];

			snprintf(why2, sizeof(why2), "%lld bytes, over the limit of %llu",
				 (long long)sz, (unsigned long long)r->lim.max_entry_size);
			return refuse(r, r->name, err, why2);
		}
		if ((uint64_t)sz > r->lim.max_total - r->total) {
			char why2[160];

			snprintf(why2, sizeof(why2),
				 "%lld more bytes would exceed the limit of %llu for the whole archive "
				 "(%llu so far)",
				 (long long)sz, (unsigned long long)r->lim.max_total,
				 (unsigned long long)r->total);
			return refuse(r, r->name, err, why2);
		}
		r->total += (uint64_t)sz;
		e->size = (uint64_t)sz;
	}
	r->cur_size = e->size;
	r->have_data = !e->is_dir;
	return 1;
}

int mse_tar_reader_read_all(struct mse_tar_reader *r, size_t header_room, uint8_t **buf,
			    size_t *len, struct mse_err *err)
{
	uint8_t *p;
	size_t size, got = 0;

	*buf = NULL;
	*len = 0;
	if (!r->have_data)
		return mse_err_field(err, r->name, "no data to read");
	if (r->cur_size > SIZE_MAX - header_room - 1)
		return mse_err_field(err, r->name, "too large");
	size = (size_t)r->cur_size;
	p = malloc(header_room + size + 1);
	if (!p)
		return mse_err_field(err, r->name, "out of memory for %zu bytes", size);
	while (got < size) {
		la_ssize_t k = archive_read_data(r->a, p + header_room + got, size - got);

		if (k <= 0) {
			mse_codefile_buf_free(p, header_room + size + 1);
			mse_err_file(err, r->label);
			return mse_err_field(err, r->name, "truncated entry: %s",
					     k < 0 ? archive_error_string(r->a) : "unexpected end");
		}
		got += (size_t)k;
	}
	r->have_data = 0;
	*buf = p;
	*len = size;
	return 0;
}

ssize_t mse_tar_reader_read(struct mse_tar_reader *r, void *buf, size_t n, struct mse_err *err)
{
	la_ssize_t k;

	if (!r->have_data || n == 0)
		return 0;
	k = archive_read_data(r->a, buf, n);
	if (k < 0) {
		mse_err_file(err, r->label);
		mse_err_field(err, r->name, "truncated entry: %s", archive_error_string(r->a));
		return -1;
	}
	if (k == 0)
		r->have_data = 0;
	return (ssize_t)k;
}

int mse_tar_reader_copy_to_fd(struct mse_tar_reader *r, int fd, struct mse_err *err)
{
	uint8_t *chunk;
	uint64_t left = r->cur_size;
	int rc = -1;

	if (!r->have_data)
		return mse_err_field(err, r->name, "no data to read");
	chunk = malloc(COPY_CHUNK);
	if (!chunk)
		return mse_err_set(err, "out of memory");
	while (left) {
		la_ssize_t k = archive_read_data(r->a, chunk, left < COPY_CHUNK ? left : COPY_CHUNK);

		if (k <= 0) {
			mse_err_file(err, r->label);
			mse_err_field(err, r->name, "truncated entry: %s",
				      k < 0 ? archive_error_string(r->a) : "unexpected end");
			goto out;
		}
		for (la_ssize_t done = 0; done < k;) {
			ssize_t n = write(fd, chunk + done, (size_t)(k - done));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				mse_err_field(err, r->name, "cannot write: %s", strerror(errno));
				goto out;
			}
			done += n;
		}
		left -= (uint64_t)k;
	}
	r->have_data = 0;
	rc = 0;
out:
	free(chunk);
	return rc;
}

void mse_tar_reader_free(struct mse_tar_reader *r)
{
	if (!r)
		return;
	if (r->a)
		archive_read_free(r->a);
	nameset_free(&r->names);
	free(r);
}

/* ---- extraction --------------------------------------------------------- */

/* Creates dest/name's parent directories (mode 0700). */
static int make_parents(const char *dest, const char *name, struct mse_err *err)
{
	char path[PATH_MAX];
	const char *slash = strrchr(name, '/');

	if (!slash)
		return 0;
	if (snprintf(path, sizeof(path), "%s/%.*s", dest, (int)(slash - name), name) >=
	    (int)sizeof(path))
		return mse_err_field(err, name, "path too long");
	return mse_file_mkdirs(path, 0700, err);
}

int mse_tar_extract(const char *tar_path, const char *dest, const struct mse_tar_limits *lim,
		    mode_t file_mode, struct mse_err *err)
{
	struct mse_tar_reader *r = NULL;
	struct mse_tar_entry e;
	char path[PATH_MAX];
	int rc = -1, made = 0, k;

	if (mkdir(dest, 0700) != 0)
		return mse_err_field(err, dest, "cannot create the destination: %s",
				     errno == EEXIST ? "already exists" : strerror(errno));
	made = 1;
	if (mse_tar_reader_open_file(&r, tar_path, lim, err) != 0)
		goto out;
	while ((k = mse_tar_reader_next(r, &e, err)) == 1) {
		int fd;

		if (snprintf(path, sizeof(path), "%s/%s", dest, e.name) >= (int)sizeof(path)) {
			mse_err_field(err, e.name, "path too long");
			goto out;
		}
		if (make_parents(dest, e.name, err) != 0)
			goto out;
		if (e.is_dir) {
			if (mkdir(path, 0700) != 0 && errno != EEXIST) {
				mse_err_field(err, e.name, "cannot create: %s", strerror(errno));
				goto out;
			}
			continue;
		}
		/* We made dest and never create links: O_NOFOLLOW is belt and braces. */
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			  file_mode ? file_mode : 0600);
		if (fd < 0) {
			mse_err_file(err, tar_path);
			mse_err_field(err, e.name, "cannot create: %s", strerror(errno));
			goto out;
		}
		k = mse_tar_reader_copy_to_fd(r, fd, err);
		if (close(fd) != 0 && k == 0)
			k = mse_err_field(err, e.name, "cannot write: %s", strerror(errno));
		if (k != 0)
			goto out;
	}
	if (k < 0)
		goto out;
	rc = 0;
out:
	mse_tar_reader_free(r);
	if (rc != 0 && made) {
		struct mse_err ignored;

		if (mse_file_remove_tree(dest, &ignored) != 0)
			mse_err_prefix(err, "(could not remove %s)", dest);
	}
	return rc;
}
