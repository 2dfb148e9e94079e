/* SPDX-License-Identifier: Apache-2.0 */
/*
 * src/crypto: code files, nonce maps, sealing, tar archives, packages.
 * Interoperability with PyNaCl and Python's tarfile is tested end to end in
 * tests/e2e/test_crypto.py; here: the MSE vector, the failure cases, and the
 * archive/package invariants.
 */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <sodium.h>

#include "common/file.h"
#include "common/hex.h"
#include "crypto/archive.h"
#include "crypto/codefile.h"
#include "crypto/nonces.h"
#include "crypto/package.h"
#include "attest/ratls.h"
#include "crypto/seal.h"

static void path_join(char *out, size_t size, const char *a, const char *b)
{
	if (snprintf(out, size, "%s/%s", a, b) >= (int)size)
		fail_msg("path too long");
}

static void write_str(const char *dir, const char *rel, const char *text)
{
	char p[1024];

	path_join(p, sizeof(p), dir, rel);
	tu_write(p, text, strlen(text));
}

/* ---- code files -------------------------------------------------------- */

static void codefile_mse_vector_decrypts_exactly(void **state)
{
	uint8_t key[32], *enc, *plain;
	size_t enc_len, plain_len, n = 0;
	struct mse_err err;

	(void)state;
	mse_err_clear(&err);
	assert_int_equal(mse_codefile_load_key(tu_vector("mse-code-secretbox/code.key"), key, &err),
			 0);
	enc = tu_read(tu_vector("mse-code-secretbox/app.py.enc"), &enc_len);
	plain = tu_read(tu_vector("mse-code-secretbox/app.py"), &plain_len);
	assert_int_equal(mse_codefile_open_inplace(key, enc, enc_len, &n, &err), 0);
	assert_int_equal(n, plain_len);
	assert_int_equal(enc_len, plain_len + MSE_CODEFILE_HEADER_BYTES);
	assert_memory_equal(enc + MSE_CODEFILE_HEADER_BYTES, plain, plain_len);
	free(enc);
	free(plain);
}

static void codefile_any_modified_byte_or_wrong_key_fails(void **state)
{
	uint8_t key[32], *enc, *copy;
	size_t enc_len, n;
	struct mse_err err;

	(void)state;
	assert_int_equal(mse_codefile_load_key(tu_vector("mse-code-secretbox/code.key"), key, &err),
			 0);
	enc = tu_read(tu_vector("mse-code-secretbox/app.py.enc"), &enc_len);
	copy = malloc(enc_len);
	/* One flipped bit in the nonce, the tag, the first and last ciphertext byte. */
	size_t where[] = {0, 23, 24, 39, 40, enc_len - 1};
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		memcpy(copy, enc, enc_len);
		copy[where[i]] ^= 0x01;
		mse_err_clear(&err);
		assert_int_equal(mse_codefile_open_inplace(key, copy, enc_len, &n, &err), -1);
		assert_non_null(strstr(err.msg, "wrong key or corrupt"));
		/* A failed open leaves the buffer as given: no unauthenticated plaintext. */
		assert_int_equal(copy[where[i]], enc[where[i]] ^ 0x01);
		copy[where[i]] ^= 0x01;
		assert_memory_equal(copy, enc, enc_len);
	}
	memcpy(copy, enc, enc_len);
	key[0] ^= 1;
	assert_int_equal(mse_codefile_open_inplace(key, copy, enc_len, &n, &err), -1);
	/* Too short for nonce + tag. */
	mse_err_clear(&err);
	assert_int_equal(mse_codefile_open_inplace(key, copy, 39, &n, &err), -1);
	assert_non_null(strstr(err.msg, "expected at least 40"));
	free(copy);
	free(enc);
}

static void codefile_seal_then_open_and_fixed_nonce_is_deterministic(void **state)
{
	uint8_t key[32], nonce[24], a[40 + 5], b[40 + 5];
	size_t n;
	struct mse_err err;

	(void)state;
	randombytes_buf(key, sizeof(key));
	randombytes_buf(nonce, sizeof(nonce));
	memcpy(a + 40, "hello", 5);
	memcpy(b + 40, "hello", 5);
	assert_int_equal(mse_codefile_seal_inplace(key, nonce, a, 5), 0);
	assert_int_equal(mse_codefile_seal_inplace(key, nonce, b, 5), 0);
	assert_memory_equal(a, b, sizeof(a));
	assert_memory_equal(a, nonce, 24);
	assert_int_equal(mse_codefile_open_inplace(key, a, sizeof(a), &n, &err), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(a + 40, "hello", 5);
}

static void codefile_decrypt_file_names_file_and_writes_nothing(void **state)
{
	const char *dir = tu_tmpdir();
	char out[512];
	uint8_t key[32];
	struct mse_err err;

	(void)state;
	path_join(out, sizeof(out), dir, "app.py");
	memset(key, 7, sizeof(key));
	mse_err_clear(&err);
	assert_int_equal(mse_codefile_decrypt_file(key, tu_vector("mse-code-secretbox/app.py.enc"),
						   out, &err),
			 -1);
	assert_non_null(strstr(err.file, "app.py.enc"));
	assert_false(mse_file_exists(out));
	/* A bound smaller than the file is refused before reading. */
	uint8_t *buf;
	size_t len;
	mse_err_clear(&err);
	assert_int_equal(mse_codefile_read_file(tu_vector("mse-code-secretbox/app.py"), 40, 10,
						&buf, &len, &err),
			 -1);
	assert_non_null(strstr(err.msg, "limit 10 bytes"));
	/* A 64-byte file is not a code key. */
	uint8_t pair[64] = {1};
	path_join(out, sizeof(out), dir, "pair.key");
	tu_write(out, pair, sizeof(pair));
	assert_int_equal(mse_codefile_load_key(out, key, &err), -1);
	assert_non_null(strstr(err.msg, "expected 32 raw bytes, got 64"));
	tu_rmtree(dir);
}

/* ---- nonce maps -------------------------------------------------------- */

static const char *N1 = "f33f4a1a1555660f9396aea7811b0ff7b0f19503a7485914";
static const char *N2 = "000102030405060708090a0b0c0d0e0f1011121314151617";

static void nonces_parse_both_forms_and_round_trip(void **state)
{
	char text[1024], *json = NULL;
	struct mse_nonces *n = NULL, *back = NULL;
	const struct mse_nonce_entry *e;
	uint8_t sha[32];
	struct mse_err err;

	(void)state;
	memset(sha, 0xab, sizeof(sha));
	snprintf(text, sizeof(text),
		 "{\"z/b.py\": {\"nonce\": \"%s\", \"sha256\": \"%s\"}, \"app.py\": \"%s\"}", N2,
		 "abababababababababababababababababababababababababababababababab", N1);
	mse_err_clear(&err);
	assert_int_equal(mse_nonces_parse_json(text, strlen(text), "m.json", &n, &err), 0);
	assert_int_equal(mse_nonces_count(n), 2);
	/* Sorted by path. */
	assert_string_equal(mse_nonces_at(n, 0)->path, "app.py");
	e = mse_nonces_get(n, "app.py");
	assert_non_null(e);
	assert_false(e->has_sha256);
	e = mse_nonces_get(n, "z/b.py");
	assert_true(e->has_sha256);
	assert_memory_equal(e->sha256, sha, 32);
	assert_null(mse_nonces_get(n, "missing.py"));
	assert_int_equal(mse_nonces_to_json(n, &json, &err), 0);
	assert_int_equal(mse_nonces_parse_json(json, strlen(json), "back", &back, &err), 0);
	assert_int_equal(mse_nonces_count(back), 2);
	assert_memory_equal(mse_nonces_get(back, "z/b.py")->nonce, mse_nonces_get(n, "z/b.py")->nonce,
			    24);
	free(json);
	mse_nonces_free(back);
	mse_nonces_free(n);
}

static void nonces_refuse_bad_maps(void **state)
{
	static const char *bad[] = {
		"[1]",
		"{\"app.py\": \"abcd\"}",
		"{\"../x.py\": \"f33f4a1a1555660f9396aea7811b0ff7b0f19503a7485914\"}",
		"{\"/abs.py\": \"f33f4a1a1555660f9396aea7811b0ff7b0f19503a7485914\"}",
		"{\"a.py\": {\"nonce\": \"f33f4a1a1555660f9396aea7811b0ff7b0f19503a7485914\", "
		"\"sha256\": \"zz\"}}",
		"{\"a.py\": 5}",
		"{\"a\": \"f33f4a1a1555660f9396aea7811b0ff7b0f19503a7485914\", \"a\": "
		"\"000102030405060708090a0b0c0d0e0f1011121314151617\"}",
		"{\"a\": \"f33f4a1a1555660f9396aea7811b0ff7b0f19503a7485914\", \"b\": "
		"\"f33f4a1a1555660f9396aea7811b0ff7b0f19503a7485914\"}",
		"{not json",
	};
	struct mse_nonces *n;
	struct mse_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mse_err_clear(&err);
		n = (struct mse_nonces *)1;
		assert_int_equal(mse_nonces_parse_json(bad[i], strlen(bad[i]), "m.json", &n, &err),
				 -1);
		assert_null(n);
		assert_true(err.msg[0] != 0);
	}
	/* The reused-nonce message names both files. */
	mse_err_clear(&err);
	assert_int_equal(mse_nonces_parse_json(bad[7], strlen(bad[7]), "m.json", &n, &err), -1);
	assert_non_null(strstr(err.msg, "keystream"));
}

static void nonces_choose_reuses_only_for_unchanged_plaintext(void **state)
{
	char text[512];
	struct mse_nonces *n = NULL;
	uint8_t sha[32], other[32], nonce[24], want[24];
	int reused;
	struct mse_err err;

	(void)state;
	SHA256((const uint8_t *)"v1", 2, sha);
	SHA256((const uint8_t *)"v2", 2, other);
	{
		char hex[65];

		assert_int_equal(mse_hex_encode(hex, sizeof(hex), sha, 32), 0);
		snprintf(text, sizeof(text),
			 "{\"a.py\": {\"nonce\": \"%s\", \"sha256\": \"%s\"}, \"mse.py\": \"%s\"}",
			 N1, hex, N2);
	}
	assert_int_equal(mse_nonces_parse_json(text, strlen(text), "m", &n, &err), 0);
	assert_int_equal(mse_hex_decode_exact(want, 24, N1, 48), 0);
	assert_int_equal(mse_nonces_choose(n, "a.py", sha, nonce, &reused, &err), 0);
	assert_int_equal(reused, 1);
	assert_memory_equal(nonce, want, 24);
	mse_err_clear(&err);
	assert_int_equal(mse_nonces_choose(n, "a.py", other, nonce, &reused, &err), -1);
	assert_string_equal(err.field, "a.py");
	assert_non_null(strstr(err.msg, "keystream"));
	/* MSE's maps carry no hash: the nonce is reused as MSE does. */
	assert_int_equal(mse_nonces_choose(n, "mse.py", other, nonce, &reused, &err), 0);
	assert_int_equal(reused, 1);
	/* Unknown path: a fresh nonce, different each time. */
	assert_int_equal(mse_nonces_choose(n, "new.py", sha, nonce, &reused, &err), 0);
	assert_int_equal(reused, 0);
	memcpy(want, nonce, 24);
	assert_int_equal(mse_nonces_choose(NULL, "new.py", sha, nonce, &reused, &err), 0);
	assert_memory_not_equal(want, nonce, 24);
	mse_nonces_free(n);
}

static void nonces_read_mse_context_toml(void **state)
{
	struct mse_nonces *n = NULL;
	uint8_t want[24];
	struct mse_err err;
	const char *dir = tu_tmpdir();
	char p[512];

	(void)state;
	mse_err_clear(&err);
	if (mse_nonces_load(tu_vector("mse-evidence/context.toml"), &n, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(mse_nonces_count(n), 1);
	assert_int_equal(mse_hex_decode_exact(want, 24, N1, 48), 0);
	assert_memory_equal(mse_nonces_get(n, "app.py")->nonce, want, 24);
	mse_nonces_free(n);
	/* A bad nonce is reported at its line and column. */
	path_join(p, sizeof(p), dir, "context.toml");
	write_str(dir, "context.toml", "[instance]\nid = \"x\"\n\n[instance.nonces]\n\"a.py\" = \"00\"\n");
	mse_err_clear(&err);
	assert_int_equal(mse_nonces_load(p, &n, &err), -1);
	assert_int_equal(err.line, 5);
	assert_int_equal(err.col, 10);
	write_str(dir, "context.toml", "[config]\nname = \"x\"\n");
	assert_int_equal(mse_nonces_load(p, &n, &err), -1);
	tu_rmtree(dir);
}

/* ---- sealing ----------------------------------------------------------- */

static void seal_round_trip_and_wrong_key(void **state)
{
	struct mse_seal_keypair kp, other;
	uint8_t *c = NULL, *m = NULL;
	size_t clen, mlen;
	struct mse_err err;

	(void)state;
	mse_seal_keypair_generate(&kp);
	mse_seal_keypair_generate(&other);
	assert_int_equal(mse_seal_seal(kp.pk, (const uint8_t *)"{\"a\":1}", 7, &c, &clen, &err), 0);
	assert_int_equal(clen, 7 + 48);
	assert_int_equal(mse_seal_open(&kp, c, clen, &m, &mlen, &err), 0);
	assert_int_equal(mlen, 7);
	assert_memory_equal(m, "{\"a\":1}", 7);
	free(m);
	mse_err_clear(&err);
	assert_int_equal(mse_seal_open(&other, c, clen, &m, &mlen, &err), -1);
	assert_null(m);
	assert_non_null(strstr(err.msg, "wrong private key"));
	c[clen - 1] ^= 1;
	assert_int_equal(mse_seal_open(&kp, c, clen, &m, &mlen, &err), -1);
	assert_int_equal(mse_seal_open(&kp, c, 47, &m, &mlen, &err), -1);
	free(c);
	mse_seal_keypair_wipe(&kp);
	mse_seal_keypair_wipe(&other);
}

static void seal_refuses_zero_and_small_order_keys(void **state)
{
	uint8_t pk[32] = {0}, *c = NULL;
	size_t clen;
	struct mse_err err;

	(void)state;
	mse_err_clear(&err);
	assert_int_equal(mse_seal_seal(pk, (const uint8_t *)"x", 1, &c, &clen, &err), -1);
	assert_non_null(strstr(err.msg, "all zeros"));
	/* u = 1 is a point of order 4 on Curve25519 (RFC 7748 §6.1 low-order inputs). */
	pk[0] = 1;
	mse_err_clear(&err);
	assert_int_equal(mse_seal_seal(pk, (const uint8_t *)"x", 1, &c, &clen, &err), -1);
	assert_non_null(strstr(err.msg, "small order"));
	assert_null(c);
}

static void seal_key_files_32_and_64_bytes(void **state)
{
	const char *dir = tu_tmpdir();
	struct mse_seal_keypair kp, got;
	uint8_t pair[65] = {0};
	char p[512];
	struct mse_err err;

	(void)state;
	mse_seal_keypair_generate(&kp);
	memcpy(pair, kp.pk, 32);
	memcpy(pair + 32, kp.sk, 32);
	path_join(p, sizeof(p), dir, "pair");
	tu_write(p, pair, 64);
	assert_int_equal(mse_seal_load_key(p, MSE_SEAL_KEY_PRIVATE, &got, &err), 0);
	assert_true(got.has_sk);
	assert_memory_equal(got.pk, kp.pk, 32);
	assert_int_equal(mse_seal_load_key(p, MSE_SEAL_KEY_PUBLIC, &got, &err), 0);
	assert_memory_equal(got.pk, kp.pk, 32);
	/* 32 bytes: a public key to seal, a private key to open. */
	path_join(p, sizeof(p), dir, "sk");
	tu_write(p, kp.sk, 32);
	assert_int_equal(mse_seal_load_key(p, MSE_SEAL_KEY_PRIVATE, &got, &err), 0);
	assert_memory_equal(got.pk, kp.pk, 32);
	path_join(p, sizeof(p), dir, "pk");
	tu_write(p, kp.pk, 32);
	assert_int_equal(mse_seal_load_key(p, MSE_SEAL_KEY_PUBLIC, &got, &err), 0);
	assert_false(got.has_sk);
	/* Mismatched halves, wrong sizes. */
	pair[0] ^= 1;
	path_join(p, sizeof(p), dir, "bad");
	tu_write(p, pair, 64);
	mse_err_clear(&err);
	assert_int_equal(mse_seal_load_key(p, MSE_SEAL_KEY_PRIVATE, &got, &err), -1);
	assert_non_null(strstr(err.msg, "not a matching"));
	tu_write(p, pair, 33);
	mse_err_clear(&err);
	assert_int_equal(mse_seal_load_key(p, MSE_SEAL_KEY_PUBLIC, &got, &err), -1);
	assert_non_null(strstr(err.msg, "expected 32 or 64 bytes, got 33"));
	tu_write(p, pair, 65);
	assert_int_equal(mse_seal_load_key(p, MSE_SEAL_KEY_PUBLIC, &got, &err), -1);
	mse_seal_keypair_wipe(&kp);
	tu_rmtree(dir);
}

/* MSE's evidence certificate: the binding holds, the sealing key is zeros. */
static void seal_ratls_evidence_cert_binds_but_has_no_key(void **state)
{
	json_error_t jerr;
	json_t *ev = json_load_file(tu_vector("mse-evidence/evidence.json"), 0, &jerr);
	const char *pem;
	uint8_t pk[32];
	struct mse_err err;

	(void)state;
	assert_non_null(ev);
	pem = json_string_value(json_object_get(ev, "ratls_certificate"));
	assert_non_null(pem);
	mse_err_clear(&err);
	assert_int_equal(mse_ratls_seal_pk_mem((const uint8_t *)pem, strlen(pem), pk, &err),
			 -1);
	assert_non_null(strstr(err.msg, "all zeros"));
	/* Not a certificate at all. */
	mse_err_clear(&err);
	assert_int_equal(mse_ratls_seal_pk_mem((const uint8_t *)"nope", 4, pk, &err), -1);
	/* A plain certificate without the quote extension. */
	uint8_t *le;
	size_t le_len;
	le = tu_read(tu_vector("mse-cli-config/cert.pem"), &le_len);
	mse_err_clear(&err);
	assert_int_equal(mse_ratls_seal_pk_mem(le, le_len, pk, &err), -1);
	assert_true(err.msg[0] != 0);
	free(le);
	json_decref(ev);
}

/* ---- tar --------------------------------------------------------------- */

static void tar_write(const char *path, uint8_t sha[32])
{
	struct mse_tar_writer *w;
	struct mse_err err;
	char longname[300];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	memset(longname, 'n', sizeof(longname));
	memcpy(longname, "deep/", 5);
	longname[sizeof(longname) - 1] = 0;
	assert_int_equal(mse_tar_writer_new(&w, fd, MSE_TAR_HASH, &err), 0);
	assert_int_equal(mse_tar_writer_add(w, "a.py", "print(1)\n", 9, &err), 0);
	assert_int_equal(mse_tar_writer_add(w, "dir/b.txt", "", 0, &err), 0);
	assert_int_equal(mse_tar_writer_add(w, "d\xc3\xa9j\xc3\xa0.py", "x", 1, &err), 0);
	assert_int_equal(mse_tar_writer_add(w, longname, "long", 4, &err), 0);
	assert_int_equal(mse_tar_writer_finish(w, sha, NULL, &err), 0);
	mse_tar_writer_free(w);
	close(fd);
}

static void tar_writer_is_deterministic_and_reads_back(void **state)
{
	const char *dir = tu_tmpdir();
	char a[512], b[512];
	uint8_t sha_a[32], sha_b[32], digest[32], *da, *db;
	size_t la, lb;
	struct mse_tar_reader *r;
	struct mse_tar_entry e;
	struct mse_err err;
	int n = 0;

	(void)state;
	path_join(a, sizeof(a), dir, "a.tar");
	path_join(b, sizeof(b), dir, "b.tar");
	tar_write(a, sha_a);
	sleep(1); /* nothing time-dependent may leak in */
	tar_write(b, sha_b);
	da = tu_read(a, &la);
	db = tu_read(b, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(da, db, la);
	SHA256(da, la, digest);
	assert_memory_equal(digest, sha_a, 32);
	assert_int_equal(mse_tar_reader_open_file(&r, a, NULL, &err), 0);
	while (mse_tar_reader_next(r, &e, &err) == 1) {
		if (n == 0) {
			uint8_t *buf;
			size_t len;

			assert_string_equal(e.name, "a.py");
			assert_int_equal(mse_tar_reader_read_all(r, 40, &buf, &len, &err), 0);
			assert_int_equal(len, 9);
			assert_memory_equal(buf + 40, "print(1)\n", 9);
			mse_codefile_buf_free(buf, len + 40);
		}
		if (n == 2)
			assert_string_equal(e.name, "d\xc3\xa9j\xc3\xa0.py");
		if (n == 3)
			assert_int_equal(strlen(e.name), 299);
		n++;
	}
	assert_int_equal(n, 4);
	mse_tar_reader_free(r);
	free(da);
	free(db);
	tu_rmtree(dir);
}

/* Builds a one-entry tar with libarchive's own writer (not ours). */
static void evil_tar(const char *path, const char *name, int type, const char *link,
		     const char *name2)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();

	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (int i = 0; i < (name2 ? 2 : 1); i++) {
		archive_entry_clear(e);
		archive_entry_set_pathname(e, i ? name2 : name);
		archive_entry_set_filetype(e, (unsigned)type);
		archive_entry_set_perm(e, 0644);
		if (type == AE_IFLNK)
			archive_entry_set_symlink(e, link);
		else if (link)
			archive_entry_set_hardlink(e, link);
		if (type == AE_IFCHR)
			archive_entry_set_rdev(e, 0x0103);
		archive_entry_set_size(e, type == AE_IFREG && !link ? 1 : 0);
		assert_true(archive_write_header(a, e) >= ARCHIVE_WARN);
		if (type == AE_IFREG && !link)
			assert_int_equal(archive_write_data(a, "x", 1), 1);
	}
	archive_write_close(a);
	archive_write_free(a);
	archive_entry_free(e);
}

static void tar_reader_refuses_unsafe_entries(void **state)
{
	struct {
		const char *name;
		int type;
		const char *link;
		const char *name2;
		const char *why;
	} cases[] = {
		{"/etc/passwd", AE_IFREG, NULL, NULL, "absolute"},
		{"../escape.py", AE_IFREG, NULL, NULL, "\"..\""},
		{"a/../../escape.py", AE_IFREG, NULL, NULL, "\"..\""},
		{"a//b", AE_IFREG, NULL, NULL, "empty path component"},
		{"link", AE_IFLNK, "/etc/passwd", NULL, "symbolic link"},
		{"inside", AE_IFLNK, "a.py", NULL, "symbolic link"},
		{"hard", AE_IFREG, "a.py", NULL, "hard link"},
		{"null", AE_IFCHR, NULL, NULL, "device"},
		{"fifo", AE_IFIFO, NULL, NULL, "FIFO"},
		{"a.py", AE_IFREG, NULL, "./a.py", "duplicate"},
		{"d", AE_IFDIR, NULL, "d/", "duplicate"},
	};
	const char *dir = tu_tmpdir();
	char tar[512], dest[512];
	struct mse_err err;

	(void)state;
	path_join(tar, sizeof(tar), dir, "evil.tar");
	path_join(dest, sizeof(dest), dir, "out");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unlink(tar);
		evil_tar(tar, cases[i].name, cases[i].type, cases[i].link, cases[i].name2);
		mse_err_clear(&err);
		assert_int_equal(mse_tar_extract(tar, dest, NULL, 0, &err), -1);
		if (!strstr(err.msg, cases[i].why))
			fail_msg("case %zu (%s): got \"%s\"", i, cases[i].name, err.msg);
		assert_false(mse_file_exists(dest));
	}
	/* Limits: too many entries, too large an entry. */
	struct mse_tar_limits one = {.max_entries = 1}, small = {.max_entry_size = 0};
	unlink(tar);
	evil_tar(tar, "a", AE_IFREG, NULL, "b");
	assert_int_equal(mse_tar_extract(tar, dest, &one, 0, &err), -1);
	assert_non_null(strstr(err.msg, "too many entries"));
	small.max_total = 1;
	assert_int_equal(mse_tar_extract(tar, dest, &small, 0, &err), -1);
	assert_false(mse_file_exists(dest));
	/* A clean one extracts, and "./" prefixes are normalised. */
	unlink(tar);
	evil_tar(tar, "./x/a.py", AE_IFREG, NULL, "x/b.py");
	assert_int_equal(mse_tar_extract(tar, dest, NULL, 0, &err), 0);
	path_join(tar, sizeof(tar), dest, "x/b.py");
	assert_true(mse_file_exists(tar));
	/* Garbage is malformed, not a crash. */
	path_join(tar, sizeof(tar), dir, "garbage.tar");
	tu_write(tar, "definitely not a tar archive, just some bytes....", 49);
	path_join(dest, sizeof(dest), dir, "out2");
	assert_int_equal(mse_tar_extract(tar, dest, NULL, 0, &err), -1);
	tu_rmtree(dir);
}

/* ---- packages ---------------------------------------------------------- */

static void make_project(const char *root)
{
	char p[1024];

	path_join(p, sizeof(p), root, "code");
	assert_int_equal(mkdir(p, 0755), 0);
	path_join(p, sizeof(p), root, "code/pkg");
	assert_int_equal(mkdir(p, 0755), 0);
	path_join(p, sizeof(p), root, "tests");
	assert_int_equal(mkdir(p, 0755), 0);
	write_str(root, "code/app.py", "from flask import Flask\napp = Flask(__name__)\n");
	write_str(root, "code/pkg/__init__.py", "");
	write_str(root, "code/pkg/util.py", "X = 1\n");
	write_str(root, "code/requirements.txt", "flask\n");
	write_str(root, "code/secrets.json", "{\"never\": \"packaged\"}\n");
	write_str(root, "tests/test_app.py", "def test(): pass\n");
	/*
	 * Names around the 100-byte limit of a tar header, clear and with
	 * ".enc" appended: the build checks its size prediction on each.
	 */
	for (int len = 95; len <= 102; len++) {
		char name[160];

		snprintf(name, sizeof(name), "code/%.*s", len, "NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN");
		write_str(root, name, "x");
		snprintf(name, sizeof(name), "tests/%.*s", len, "TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT");
		write_str(root, name, "");
	}
	write_str(root, "mse.toml", "name = \"demo\"\npython_application = \"app:app\"\n");
}

static int skip_secrets(void *ctx, const char *rel, int is_dir, struct mse_err *err)
{
	(void)ctx;
	(void)is_dir;
	(void)err;
	return strcmp(rel, "secrets.json") != 0;
}

static void spec_init(struct mse_package_spec *s, const char *root, char bufs[4][1024],
		      const uint8_t *key, const char *out)
{
	memset(s, 0, sizeof(*s));
	path_join(bufs[0], 1024, root, "code");
	path_join(bufs[1], 1024, root, "mse.toml");
	path_join(bufs[2], 1024, root, "tests");
	path_join(bufs[3], 1024, root, out);
	s->code_dir = bufs[0];
	s->config_path = bufs[1];
	s->tests_dir = bufs[2];
	s->output_dir = bufs[3];
	s->name = "demo";
	s->python_application = "app:app";
	s->healthcheck_endpoint = "/health";
	s->key = key;
	s->filter = skip_secrets;
	s->ns = 1700000000123456789ULL;
}

static void package_build_inspect_decrypt(void **state)
{
	const char *root = tu_tmpdir();
	char bufs[4][1024], p[1024], dest[1024];
	uint8_t key[32], *data;
	size_t len, files;
	struct mse_package_spec s;
	struct mse_package_result res, res2;
	struct mse_package_info info;
	struct mse_err err;

	(void)state;
	make_project(root);
	randombytes_buf(key, 32);
	spec_init(&s, root, bufs, key, "out");
	mse_err_clear(&err);
	if (mse_package_build(&s, &res, &err) != 0)
		fail_msg("build: %s", err.msg);
	assert_non_null(strstr(res.path, "package_demo_1700000000123456789.tar"));
	assert_int_equal(res.files, 4 + 8);
	assert_int_equal(res.encrypted, 3 + 8);
	assert_true(mse_file_exists(res.nonces_path));
	/* Never overwritten. */
	mse_err_clear(&err);
	assert_int_equal(mse_package_build(&s, &res2, &err), -1);
	assert_non_null(strstr(err.msg, "already exists"));

	mse_err_clear(&err);
	if (mse_package_inspect(res.path, &info, &err) != 0)
		fail_msg("inspect: %s", err.msg);
	assert_string_equal(info.name, "demo");
	assert_string_equal(info.python_application, "app:app");
	assert_string_equal(info.healthcheck_endpoint, "/health");
	assert_memory_equal(info.app_sha256, res.app_sha256, 32);

	path_join(dest, sizeof(dest), root, "extracted");
	assert_int_equal(mse_package_extract(res.path, dest, &info, &err), 0);
	path_join(p, sizeof(p), dest, "mse.toml");
	data = tu_read(p, &len);
	assert_memory_equal(data, "name = \"demo\"", 13);
	free(data);

	/*
	 * The limits spawn extracts app.tar with: its own size (the tar's real
	 * size, as the reader counted it) holds all the entries; an enclave
	 * smaller than the code refuses it, naming the limit.
	 */
	{
		struct mse_tar_limits lim;
		char x[1024];
		struct stat st;

		path_join(p, sizeof(p), dest, "app.tar");
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(info.app_tar_bytes, (uint64_t)st.st_size);
		mse_package_app_limits(&info, 256ULL << 20, &lim);
		assert_int_equal(lim.max_total, info.app_tar_bytes);
		assert_int_equal(lim.max_entries, info.app_tar_bytes / 512 + 1);
		path_join(x, sizeof(x), root, "app-extracted");
		if (mse_tar_extract(p, x, &lim, 0644, &err) != 0)
			fail_msg("extract: %s", err.msg);
		mse_package_app_limits(&info, 64, &lim);
		assert_int_equal(lim.max_total, 64);
		path_join(x, sizeof(x), root, "app-extracted2");
		mse_err_clear(&err);
		assert_int_equal(mse_tar_extract(p, x, &lim, 0644, &err), -1);
		assert_non_null(strstr(err.msg, "exceed the limit of 64"));
		assert_false(mse_file_exists(x));
	}

	/* Decrypt the app.tar: the tree comes back, secrets.json was never packaged. */
	path_join(p, sizeof(p), dest, "app.tar");
	path_join(dest, sizeof(dest), root, "plain");
	if (mse_package_decrypt_app(p, key, dest, 0, &files, &err) != 0)
		fail_msg("decrypt: %s", err.msg);
	assert_int_equal(files, 4 + 8);
	path_join(p, sizeof(p), dest, "pkg/util.py");
	data = tu_read(p, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(data, "X = 1\n", 6);
	free(data);
	path_join(p, sizeof(p), dest, "secrets.json");
	assert_false(mse_file_exists(p));

	/* Wrong key: nothing written, the error names the entry. */
	path_join(p, sizeof(p), root, "extracted/app.tar");
	path_join(dest, sizeof(dest), root, "plain2");
	key[3] ^= 1;
	mse_err_clear(&err);
	assert_int_equal(mse_package_decrypt_app(p, key, dest, 0, &files, &err), -1);
	assert_non_null(strstr(err.field, ".enc"));
	assert_false(mse_file_exists(dest));
	/* An existing empty directory is emptied again on failure. */
	assert_int_equal(mkdir(dest, 0700), 0);
	assert_int_equal(mse_package_decrypt_app(p, key, dest, 0, &files, &err), -1);
	assert_true(mse_file_exists(dest));
	tu_rmtree(root);
}

static void package_reproducible_with_nonces_and_refuses_changed_file(void **state)
{
	const char *root = tu_tmpdir();
	char bufs[4][1024], bufs2[4][1024], path2[1024];
	uint8_t key[32], *a, *b;
	size_t la, lb;
	struct mse_package_spec s, s2;
	struct mse_package_result r1, r2;
	struct mse_nonces *map = NULL;
	struct mse_err err;

	(void)state;
	make_project(root);
	randombytes_buf(key, 32);
	spec_init(&s, root, bufs, key, "out1");
	assert_int_equal(mse_package_build(&s, &r1, &err), 0);
	assert_int_equal(mse_nonces_load_json(r1.nonces_path, &map, &err), 0);
	assert_int_equal(mse_nonces_count(map), 3 + 8); /* requirements.txt is clear */
	spec_init(&s2, root, bufs2, key, "out2");
	s2.nonces = map;
	s2.ns = 42;
	assert_int_equal(mse_package_build(&s2, &r2, &err), 0);
	assert_int_equal(r2.reused, 3 + 8);
	a = tu_read(r1.path, &la);
	b = tu_read(r2.path, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	free(a);
	free(b);
	/* Without the map, fresh nonces: a different app.tar. */
	spec_init(&s2, root, bufs2, key, "out3");
	assert_int_equal(mse_package_build(&s2, &r2, &err), 0);
	assert_memory_not_equal(r1.app_sha256, r2.app_sha256, 32);
	/* Change a file: reusing its nonce is refused, nothing is written. */
	write_str(root, "code/pkg/util.py", "X = 2\n");
	spec_init(&s2, root, bufs2, key, "out4");
	s2.nonces = map;
	mse_err_clear(&err);
	assert_int_equal(mse_package_build(&s2, &r2, &err), -1);
	assert_string_equal(err.field, "pkg/util.py");
	assert_non_null(strstr(err.msg, "keystream"));
	path_join(path2, sizeof(path2), root, "out4");
	{
		char cmd[1200];

		snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s)\"", path2);
		assert_int_equal(tu_sh("%s", cmd), 0);
	}
	mse_nonces_free(map);
	tu_rmtree(root);
}

static void package_inspect_detects_tampering(void **state)
{
	const char *root = tu_tmpdir();
	char bufs[4][1024], dir[1024], p[1024], evil[1024];
	uint8_t key[32];
	struct mse_package_spec s;
	struct mse_package_result res;
	struct mse_package_info info;
	struct mse_err err;

	(void)state;
	make_project(root);
	randombytes_buf(key, 32);
	spec_init(&s, root, bufs, key, "out");
	assert_int_equal(mse_package_build(&s, &res, &err), 0);
	path_join(dir, sizeof(dir), root, "x");
	assert_int_equal(mse_package_extract(res.path, dir, &info, &err), 0);
	/* Swap app.tar for another (valid) one: the digest no longer matches. */
	path_join(p, sizeof(p), dir, "app.tar");
	path_join(evil, sizeof(evil), root, "evil.tar");
	assert_int_equal(tu_sh("cd %s && cp -r code code2 && echo 'X = 3' > code2/pkg/util.py && "
			       "tar --format=gnu -cf %s/other.tar -C %s/code2 . && "
			       "cd %s && cp %s/other.tar app.tar && "
			       "tar --format=gnu -cf %s package.json mse.toml app.tar tests.tar",
			       root, root, root, dir, root, evil),
			 0);
	mse_err_clear(&err);
	assert_int_equal(mse_package_inspect(evil, &info, &err), -1);
	assert_non_null(strstr(err.msg, "does not match package.json"));
	/* Extra or missing members. */
	assert_int_equal(tu_sh("cd %s && rm -f %s && tar -cf %s package.json mse.toml tests.tar",
			       dir, evil, evil),
			 0);
	mse_err_clear(&err);
	assert_int_equal(mse_package_inspect(evil, &info, &err), -1);
	assert_non_null(strstr(err.msg, "missing app.tar"));
	assert_int_equal(tu_sh("cd %s && rm -f %s && echo x > extra && tar -cf %s package.json "
			       "mse.toml app.tar tests.tar extra",
			       dir, evil, evil),
			 0);
	mse_err_clear(&err);
	assert_int_equal(mse_package_inspect(evil, &info, &err), -1);
	tu_rmtree(root);
}

static void package_refuses_symlinks_and_bad_names(void **state)
{
	const char *root = tu_tmpdir();
	char bufs[4][1024], p[1024];
	uint8_t key[32] = {0};
	struct mse_package_spec s;
	struct mse_package_result res;
	struct mse_err err;

	(void)state;
	make_project(root);
	path_join(p, sizeof(p), root, "code/passwd");
	assert_int_equal(symlink("/etc/passwd", p), 0);
	spec_init(&s, root, bufs, key, "out");
	mse_err_clear(&err);
	assert_int_equal(mse_package_build(&s, &res, &err), -1);
	assert_string_equal(err.field, "passwd");
	assert_non_null(strstr(err.msg, "symbolic link"));
	spec_init(&s, root, bufs, key, "out");
	s.name = "../evil";
	assert_int_equal(mse_package_build(&s, &res, &err), -1);
	tu_rmtree(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(codefile_mse_vector_decrypts_exactly),
		cmocka_unit_test(codefile_any_modified_byte_or_wrong_key_fails),
		cmocka_unit_test(codefile_seal_then_open_and_fixed_nonce_is_deterministic),
		cmocka_unit_test(codefile_decrypt_file_names_file_and_writes_nothing),
		cmocka_unit_test(nonces_parse_both_forms_and_round_trip),
		cmocka_unit_test(nonces_refuse_bad_maps),
		cmocka_unit_test(nonces_choose_reuses_only_for_unchanged_plaintext),
		cmocka_unit_test(nonces_read_mse_context_toml),
		cmocka_unit_test(seal_round_trip_and_wrong_key),
		cmocka_unit_test(seal_refuses_zero_and_small_order_keys),
		cmocka_unit_test(seal_key_files_32_and_64_bytes),
		cmocka_unit_test(seal_ratls_evidence_cert_binds_but_has_no_key),
		cmocka_unit_test(tar_writer_is_deterministic_and_reads_back),
		cmocka_unit_test(tar_reader_refuses_unsafe_entries),
		cmocka_unit_test(package_build_inspect_decrypt),
		cmocka_unit_test(package_reproducible_with_nonces_and_refuses_changed_file),
		cmocka_unit_test(package_inspect_detects_tampering),
		cmocka_unit_test(package_refuses_symlinks_and_bad_names),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
