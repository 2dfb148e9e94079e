/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_nonces — the nonce map that makes code encryption reproducible.
 *
 * A code file is secretbox(key, nonce, plaintext); with the same key, nonce
 * and plaintext the `.enc` bytes are identical, so a third party holding the
 * map (no key in it) can rebuild the exact app.tar and its measurement.
 *
 * Our map, written next to each package as package_<name>_<ns>.nonces.json:
 *
 *     { "app.py": { "nonce": "<48 hex>", "sha256": "<64 hex of the plaintext>" }, ... }
 *
 * Also read: MSE's form, a plain { "path": "<48 hex>" }, and the
 * `[instance.nonces]` table of MSE's context.toml (same pairs, in TOML).
 *
 * Safety: XSalsa20 with a repeated (key, nonce) reuses its keystream, so
 *   - a nonce recorded for a file whose plaintext has changed is refused
 *     (we know it changed from the recorded sha256);
 *   - a map that gives the same nonce to two paths is refused on load.
 *
 * Ownership: struct mse_nonces is opaque, from mse_nonces_new() or a load
 * function, freed with mse_nonces_free() (NULL-safe). Paths are copied.
 */
#ifndef MSE_NONCES_H
#define MSE_NONCES_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "crypto/codefile.h"

#define MSE_NONCES_SHA256_BYTES 32

struct mse_nonces;

struct mse_nonce_entry {
	const char *path; /* relative path of the plaintext file, '/'-separated */
	uint8_t nonce[MSE_CODEFILE_NONCE_BYTES];
	uint8_t sha256[MSE_NONCES_SHA256_BYTES];
	int has_sha256; /* 0 for entries from MSE's path -> nonce maps */
};

struct mse_nonces *mse_nonces_new(void);
void mse_nonces_free(struct mse_nonces *n);
size_t mse_nonces_count(const struct mse_nonces *n);
/* i-th entry in path order (valid until the map is modified or freed). */
const struct mse_nonce_entry *mse_nonces_at(const struct mse_nonces *n, size_t i);
/* Entry for path, or NULL. */
const struct mse_nonce_entry *mse_nonces_get(const struct mse_nonces *n, const char *path);
/*
 * Adds (or replaces) path's entry; sha256 may be NULL. Appending in path
 * order is O(1). Returns 0 or -1 (out of memory).
 */
int mse_nonces_set(struct mse_nonces *n, const char *path,
		   const uint8_t nonce[MSE_CODEFILE_NONCE_BYTES], const uint8_t *sha256,
		   struct mse_err *err) MSE_MUST_CHECK;

/* Fails, naming both paths, if two entries share a nonce. */
int mse_nonces_check_unique(const struct mse_nonces *n, struct mse_err *err) MSE_MUST_CHECK;

/*
 * Parses a map from JSON text (either form above; `name` is used in errors).
 * Each value is checked: 48 hex digits of nonce, 64 of sha256; paths must
 * be relative without ".."; nonces must be unique.
 */
int mse_nonces_parse_json(const char *text, size_t len, const char *name, struct mse_nonces **out,
			  struct mse_err *err) MSE_MUST_CHECK;
/* Reads and parses a JSON map file. */
int mse_nonces_load_json(const char *path, struct mse_nonces **out,
			 struct mse_err *err) MSE_MUST_CHECK;
/*
 * Reads MSE's context.toml (`mse cloud` deploy context): the table
 * [instance.nonces], "path" = "<48 hex>". Errors carry file:line:col.
 */
int mse_nonces_load_mse_context(const char *path, struct mse_nonces **out,
				struct mse_err *err) MSE_MUST_CHECK;
/* Either loader, by name: *.toml is an MSE context, anything else JSON. */
int mse_nonces_load(const char *path, struct mse_nonces **out, struct mse_err *err) MSE_MUST_CHECK;

/* Our JSON form, keys sorted, 2-space indent, trailing newline. Caller frees *out. */
int mse_nonces_to_json(const struct mse_nonces *n, char **out, struct mse_err *err) MSE_MUST_CHECK;
/* Writes our JSON form atomically (mode 0644: it holds no key). */
int mse_nonces_save_json(const struct mse_nonces *n, const char *path,
			 struct mse_err *err) MSE_MUST_CHECK;

/*
 * The nonce to encrypt `path` whose plaintext hashes to sha256:
 *   - the recorded one if `in` has the path and the plaintext is unchanged
 *     (or no hash was recorded: MSE maps; *reused is set to 1);
 *   - an error if the recorded hash differs (keystream reuse);
 *   - a fresh random nonce otherwise (*reused = 0).
 * in may be NULL.
 */
int mse_nonces_choose(const struct mse_nonces *in, const char *path,
		      const uint8_t sha256[MSE_NONCES_SHA256_BYTES],
		      uint8_t nonce[MSE_CODEFILE_NONCE_BYTES], int *reused,
		      struct mse_err *err) MSE_MUST_CHECK;

#endif
