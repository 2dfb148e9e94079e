/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_tar — tar archives through libarchive: deterministic writing and
 * safe reading/extraction of untrusted archives.
 *
 * Writing (GNU tar format: ustar-like headers, ././@LongLink for names over
 * 100 bytes, names stored as given bytes whatever the locale; no padding
 * after the end blocks, so sizes are predictable). Every entry is a regular file with owner 0:0, no
 * user/group names, mode 0644 and mtime 0, so the bytes depend only on the
 * names and contents given, in the order given: the caller sorts. With
 * MSE_TAR_HASH the writer hashes everything it writes (SHA-256), so a
 * package records the digest of its app.tar without reading it again.
 *
 * Reading refuses, naming the entry:
 *   - absolute names, any ".." component, empty components ("a//b");
 *   - links of any kind: symbolic and hard. (A link that stays inside the
 *     root can be chained with another to escape it, and our writer never
 *     produces links, so none is accepted.)
 *   - device files, FIFOs, sockets;
 *   - sparse files (GNU or pax): their declared size is not in the archive,
 *     so a small archive could expand to any size;
 *   - a name that appears twice (file or directory);
 *   - more entries, or larger entries, than the limits given.
 * Leading "./" and trailing '/' are dropped ("./d//" is "d") and a bare "."
 * directory entry is skipped, as tar -C dir . writes them. Only the tar family of formats is read, with no
 * compression filter.
 *
 * Ownership: writers and readers are opaque, created by _new/_open, freed by
 * _free (NULL-safe). The fd given to a writer stays the caller's. Entry
 * names returned by the reader are valid until the next call on it.
 */
#ifndef MSE_ARCHIVE_H
#define MSE_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_TAR_SHA256_BYTES 32
/* Longest entry name accepted (bytes), deepest nesting. */
#define MSE_TAR_MAX_NAME 4095
#define MSE_TAR_MAX_DEPTH 64

/* ---- writing ---------------------------------------------------------- */

struct mse_tar_writer;

/* Flag: hash everything written (SHA-256, returned by mse_tar_writer_finish). */
#define MSE_TAR_HASH 1u

/* A writer appending to fd (which stays open and owned by the caller). */
int mse_tar_writer_new(struct mse_tar_writer **w, int fd, unsigned flags,
		       struct mse_err *err) MSE_MUST_CHECK;
/*
 * A writer whose archive becomes the data of parent's current entry (begun
 * with mse_tar_writer_begin and the exact size, see mse_tar_entry_bytes): a
 * tar inside a tar, streamed, without a temporary file. Free it before
 * adding the parent's next entry.
 */
int mse_tar_writer_new_nested(struct mse_tar_writer **w, struct mse_tar_writer *parent,
			      unsigned flags, struct mse_err *err) MSE_MUST_CHECK;
/*
 * Exact size of what the writer produces: the sum of mse_tar_entry_bytes
 * over the entries, plus MSE_TAR_END_BYTES (two zero blocks; no padding to
 * a record size).
 */
uint64_t mse_tar_entry_bytes(size_t name_len, uint64_t size);
#define MSE_TAR_END_BYTES 1024
/* Starts a regular file entry of `size` bytes, written with mse_tar_writer_new_nested. */
int mse_tar_writer_begin(struct mse_tar_writer *w, const char *name, uint64_t size,
			 struct mse_err *err) MSE_MUST_CHECK;
/* Adds a regular file `name` holding len bytes of data. */
int mse_tar_writer_add(struct mse_tar_writer *w, const char *name, const void *data, size_t len,
		       struct mse_err *err) MSE_MUST_CHECK;
/* Adds a regular file `name` streamed from fd (exactly size bytes from its position). */
int mse_tar_writer_add_fd(struct mse_tar_writer *w, const char *name, int fd, uint64_t size,
			  struct mse_err *err) MSE_MUST_CHECK;
/*
 * Writes the end-of-archive blocks. sha256 (may be NULL; needs MSE_TAR_HASH)
 * receives the digest of every byte written, *total (may be NULL) their count.
 */
int mse_tar_writer_finish(struct mse_tar_writer *w, uint8_t sha256[MSE_TAR_SHA256_BYTES],
			  uint64_t *total, struct mse_err *err) MSE_MUST_CHECK;
void mse_tar_writer_free(struct mse_tar_writer *w);

/* ---- reading ---------------------------------------------------------- */

struct mse_tar_limits {
	uint64_t max_entries;    /* 0 = 1,000,000 */
	uint64_t max_entry_size; /* 0 = no bound beyond max_total */
	uint64_t max_total;      /* sum of entry sizes; 0 = 16 GiB */
};

struct mse_tar_entry {
	const char *name; /* normalised: relative, no "./", no trailing '/' */
	int is_dir;
	uint64_t size; /* 0 for directories */
};

struct mse_tar_reader;

/* Opens a tar file (its path names it in errors). */
int mse_tar_reader_open_file(struct mse_tar_reader **r, const char *path,
			     const struct mse_tar_limits *lim, struct mse_err *err) MSE_MUST_CHECK;
/* Opens an in-memory tar (borrowed until _free). */
int mse_tar_reader_open_mem(struct mse_tar_reader **r, const void *data, size_t len,
			    const char *label, const struct mse_tar_limits *lim,
			    struct mse_err *err) MSE_MUST_CHECK;
/* Next entry: 1 and *e filled, 0 at the end, -1 on a refused or malformed entry. */
int mse_tar_reader_next(struct mse_tar_reader *r, struct mse_tar_entry *e,
			struct mse_err *err) MSE_MUST_CHECK;
/*
 * Reads the current entry's data into a new buffer with header_room bytes
 * free in front (for in-place decryption): *buf holds header_room + *len
 * bytes. Free with mse_codefile_buf_free (it wipes).
 */
int mse_tar_reader_read_all(struct mse_tar_reader *r, size_t header_room, uint8_t **buf,
			    size_t *len, struct mse_err *err) MSE_MUST_CHECK;
/* Reads up to n bytes of the current entry: bytes read, 0 at its end, -1 on error. */
ssize_t mse_tar_reader_read(struct mse_tar_reader *r, void *buf, size_t n,
			    struct mse_err *err) MSE_MUST_CHECK;
/* Streams the current entry's data to fd. */
int mse_tar_reader_copy_to_fd(struct mse_tar_reader *r, int fd,
			      struct mse_err *err) MSE_MUST_CHECK;
void mse_tar_reader_free(struct mse_tar_reader *r);

/*
 * Extracts a whole tar file into dest, a directory that must not exist yet
 * (created with mode 0700; files 0600 unless file_mode says otherwise).
 * On any refusal the partial directory is removed: nothing is left.
 */
int mse_tar_extract(const char *tar_path, const char *dest, const struct mse_tar_limits *lim,
		    mode_t file_mode, struct mse_err *err) MSE_MUST_CHECK;

#endif
