/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_package — the package a code provider hands to the operator, and the
 * functions that open it again (spawn, verify, the enclave).
 *
 * package_<name>_<ns>.tar (<ns> = UNIX time in nanoseconds, as MSE) holds
 * exactly four regular files, written in this order (readers must not rely
 * on the order):
 *
 *   app.tar       the code: every file kept, sorted by path (strcmp), each
 *                 encrypted as PATH.enc (mse_codefile), except a top-level
 *                 requirements.txt, stored clear
 *   tests.tar     the tests directory, clear (empty archive if none)
 *   mse.toml      the project configuration, byte for byte
 *   package.json  {"format_version": 1, "name", "python_application",
 *                  "healthcheck_endpoint", "app_sha256": hex SHA-256 of app.tar}
 *                 (keys sorted, 2-space indent, trailing newline); last,
 *                 since it records the digest of app.tar
 *
 * app.tar and tests.tar are streamed into the package (their sizes are
 * predicted exactly), so each byte is written once and no temporary is used.
 * Every tar is written by mse_tar (owner 0, mode 0644, mtime 0), so with the
 * same key and nonce map (mse_nonces) two runs give identical bytes. Next
 * to the package go package_<name>_<ns>.nonces.json (the map, no key; 0644)
 * and, from the CLI when no key was given, package_<name>_<ns>.key.
 *
 * Files in the code directory: either the caller's list (spec->files: the
 * .mseignore walker's output, which follows links that stay inside the
 * code directory), or our own walk with spec->filter, which accepts regular
 * files only: a symbolic link or a special file it keeps is an error (a
 * link could pull in files from outside the project). Each file is
 * encrypted whole in memory: see MSE_CODEFILE_MAX_PLAIN.
 *
 * Ownership: specs and results are caller-owned structs; the key is borrowed.
 */
#ifndef MSE_PACKAGE_H
#define MSE_PACKAGE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/err.h"
#include "crypto/archive.h"
#include "crypto/codefile.h"
#include "crypto/nonces.h"

#define MSE_PACKAGE_FORMAT_VERSION 1
#define MSE_PACKAGE_APP_TAR "app.tar"
#define MSE_PACKAGE_TESTS_TAR "tests.tar"
#define MSE_PACKAGE_CONFIG "mse.toml"
#define MSE_PACKAGE_JSON "package.json"
/* The one file MSE keeps clear (pip reads it before the code key arrives). */
#define MSE_PACKAGE_CLEAR_FILE "requirements.txt"
/* Bounds on the small members when opening a package. */
#define MSE_PACKAGE_MAX_JSON ((size_t)1 << 20)
#define MSE_PACKAGE_MAX_CONFIG ((size_t)1 << 20)

/*
 * Decides whether a path of the code (or tests) directory is packaged:
 * `rel` is '/'-separated relative to the directory, is_dir says whether it
 * is a directory (a skipped directory is not descended). Return 1 to keep,
 * 0 to skip, -1 to fail (after filling err).
 */
typedef int (*mse_package_filter)(void *ctx, const char *rel, int is_dir, struct mse_err *err);
/* Progress: called after each file. */
typedef void (*mse_package_progress)(void *ctx, size_t files_done, size_t files_total,
				     uint64_t bytes_done, uint64_t bytes_total);

struct mse_package_spec {
	const char *code_dir;    /* required */
	const char *config_path; /* required: copied as mse.toml */
	const char *tests_dir;   /* NULL: empty tests.tar */
	const char *output_dir;  /* required: created if missing */
	const char *name;        /* [A-Za-z0-9._-]+, not starting with '.' */
	const char *python_application;
	const char *healthcheck_endpoint;
	const uint8_t *key;                /* MSE_CODEFILE_KEY_BYTES, required */
	const struct mse_nonces *nonces;   /* NULL: a fresh random nonce per file */
	/*
	 * The code files to package, '/'-separated relative to code_dir (e.g.
	 * from mse_ignore_list, which has already applied .mseignore and
	 * checked links). NULL: walk code_dir with `filter` instead.
	 */
	const char *const *files;
	size_t n_files;
	mse_package_filter filter;         /* NULL: keep everything */
	void *filter_ctx;
	mse_package_filter tests_filter;   /* NULL: keep everything */
	void *tests_filter_ctx;
	mse_package_progress progress;     /* may be NULL */
	void *progress_ctx;
	uint64_t ns; /* timestamp in the file names; 0 = now */
};

struct mse_package_result {
	char path[PATH_MAX];        /* .../package_<name>_<ns>.tar */
	char nonces_path[PATH_MAX]; /* .../package_<name>_<ns>.nonces.json */
	char stem[PATH_MAX];        /* .../package_<name>_<ns> (for the .key file) */
	uint64_t ns;
	size_t files;       /* files in app.tar */
	size_t encrypted;   /* of which encrypted */
	size_t reused;      /* nonces taken from spec->nonces */
	uint64_t bytes;     /* plaintext bytes of the code */
	uint64_t app_tar_bytes;
	uint8_t app_sha256[32];
};

/* 0 if name is usable in package file names, else -1 with the reason. */
int mse_package_check_name(const char *name, struct mse_err *err) MSE_MUST_CHECK;

/*
 * Builds the package (see above). Never overwrites: the package, nonce map
 * and every temporary are created new, and on failure nothing is left in
 * output_dir.
 */
int mse_package_build(const struct mse_package_spec *spec, struct mse_package_result *res,
		      struct mse_err *err) MSE_MUST_CHECK;

/* What package.json says, checked against the archive. */
struct mse_package_info {
	int format_version;
	char name[256];
	char python_application[256];
	char healthcheck_endpoint[256];
	uint8_t app_sha256[32]; /* as recorded, and verified equal to app.tar's */
	uint64_t app_tar_bytes;
	uint64_t tests_tar_bytes;
	uint64_t config_bytes;
};

/*
 * Reads a package without extracting it: parses package.json and checks
 * that the SHA-256 of app.tar matches app_sha256. The archive must hold
 * exactly the four members (no links, duplicates, or extra names). Spawn
 * and verify call this before trusting anything in the package.
 */
int mse_package_inspect(const char *package_path, struct mse_package_info *info,
			struct mse_err *err) MSE_MUST_CHECK;

/*
 * Limits for extracting or decrypting a package's app.tar, derived from the
 * package itself and the enclave: the entries' sizes add up to less than
 * app.tar's own size (whose digest package.json records; a tar carries
 * every byte it declares, sparse entries being refused), there is at most
 * one entry per 512-byte header, and nothing larger than the enclave
 * (enclave_bytes; 0 = no enclave bound) can be run in it.
 */
void mse_package_app_limits(const struct mse_package_info *info, uint64_t enclave_bytes,
			    struct mse_tar_limits *lim);

/*
 * As mse_package_inspect, then writes the four members into dest (a new
 * directory, mode 0700; files 0644): dest/app.tar, dest/tests.tar,
 * dest/mse.toml, dest/package.json. On failure dest is removed.
 */
int mse_package_extract(const char *package_path, const char *dest,
			struct mse_package_info *info, struct mse_err *err) MSE_MUST_CHECK;

/*
 * Decrypts the code of an app.tar into dest: each NAME.enc becomes NAME and
 * a top-level requirements.txt is copied; any other clear file, a wrong key
 * or a corrupt entry fails with an error naming the entry. dest must not
 * exist (it is built under a temporary name and renamed into place) or be
 * an empty directory (e.g. a mount point such as /mse-app, emptied again on
 * failure). Either way nothing decrypted is left behind on failure. Files
 * get file_mode (0 = 0600), directories 0700. *files (may be NULL) receives
 * the number of files written.
 */
int mse_package_decrypt_app(const char *app_tar, const uint8_t key[MSE_CODEFILE_KEY_BYTES],
			    const char *dest, mode_t file_mode, size_t *files,
			    struct mse_err *err) MSE_MUST_CHECK;

/* As mse_package_decrypt_app over a directory of .enc files (as MSE leaves them). */
int mse_package_decrypt_dir(const char *src_dir, const uint8_t key[MSE_CODEFILE_KEY_BYTES],
			    const char *dest, mode_t file_mode, size_t *files,
			    struct mse_err *err) MSE_MUST_CHECK;

#endif
