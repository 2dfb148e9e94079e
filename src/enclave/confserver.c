/* SPDX-License-Identifier: Apache-2.0 */
#include "enclave/confserver.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "common/b64.h"
#include "crypto/codefile.h"
#include "crypto/provproof.h"
#include "net/http.h"
#include "common/file.h"
#include "common/hex.h"
#include "common/log.h"

#define CODE_FILE_MAX MSE_CODEFILE_MAX_PLAIN
_Static_assert(MSE_CODEFILE_KEY_BYTES == MSE_CODE_KEY_LEN, "code key is 32 bytes");
_Static_assert(crypto_box_SEALBYTES == 48, "sealed box overhead");

struct mse_confserver {
	struct mse_confserver_config cfg; /* strings below are our copies */
	char *uuid, *app_dir, *module_path, *secrets_path, *sealed_secrets_path;
	char *certificate_pem, *ssl_key_path;
	uint8_t sk[32], pk[32];
	pthread_mutex_t lock; /* serialises provisioning */
	pthread_mutex_t state_lock;
	pthread_cond_t cond;
	int done, cancelled;
	char *ssl_key;
	size_t ssl_key_len;
};

/* ---- parsing (pure) ------------------------------------------------------ */

void mse_confserver_request_free(struct mse_confserver_request *p)
{
	if (!p)
		return;
	if (p->app_secrets)
		sodium_memzero(p->app_secrets, p->app_secrets_len);
	free(p->app_secrets);
	if (p->sealed_secrets)
		sodium_memzero(p->sealed_secrets, p->sealed_secrets_len);
	free(p->sealed_secrets);
	if (p->ssl_private_key)
		sodium_memzero(p->ssl_private_key, p->ssl_private_key_len);
	free(p->ssl_private_key);
	sodium_memzero(p, sizeof(*p));
}

static int bad(int *status, int code, struct mse_err *err, const char *field, const char *msg)
{
	*status = code;
	mse_err_step(err, "provision");
	return mse_err_field(err, field, "%s", msg);
}

static int hex_key(json_t *v, uint8_t out[32])
{
	const char *s;

	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	return mse_hex_decode_exact(out, 32, s, json_string_length(v));
}

int mse_confserver_parse(const struct mse_confserver_config *cfg, const uint8_t *body, size_t len,
			 struct mse_confserver_request *out, int *status, struct mse_err *err)
{
	json_t *root = NULL, *v, *sealed_obj = NULL;
	json_error_t jerr;
	const char *key;
	uint8_t sealed_key[32];
	int has_sealed_key = 0, rc = -1;
	uint8_t *box = NULL, *plain = NULL;
	size_t box_len = 0, uuid_len;

	memset(out, 0, sizeof(*out));
	*status = 400;
	root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		bad(status, 400, err, "", "the body is not JSON");
		goto out;
	}
	/* The uuid first: nothing else is looked at for an unauthorised caller. */
	v = json_is_object(root) ? json_object_get(root, "uuid") : NULL;
	uuid_len = strlen(cfg->uuid);
	if (!json_is_string(v) || json_string_length(v) != uuid_len ||
	    sodium_memcmp(json_string_value(v), cfg->uuid, uuid_len) != 0) {
		bad(status, 401, err, "uuid", v ? "wrong uuid" : "missing uuid");
		goto out;
	}
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "uuid") != 0 && strcmp(key, "code_secret_key") != 0 &&
		    strcmp(key, "app_secrets") != 0 && strcmp(key, "app_sealed_secrets") != 0 &&
		    strcmp(key, "ssl_private_key") != 0) {
			bad(status, 400, err, key, "unknown field");
			goto out;
		}
	}
	v = json_object_get(root, "code_secret_key");
	if (v && !json_is_null(v)) {
		if (hex_key(v, out->code_key) != 0) {
			bad(status, 400, err, "code_secret_key", "expected 64 hex digits (32 bytes)");
			goto out;
		}
		out->has_code_key = 1;
	}
	v = json_object_get(root, "app_secrets");
	if (v && !json_is_null(v)) {
		out->app_secrets = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
		if (!out->app_secrets) {
			bad(status, 500, err, "app_secrets", "out of memory");
			goto out;
		}
		out->app_secrets_len = strlen(out->app_secrets);
	}
	v = json_object_get(root, "app_sealed_secrets");
	if (v && !json_is_null(v)) {
		size_t tlen;

		if (!json_is_string(v)) {
			bad(status, 400, err, "app_sealed_secrets",
			    "expected a base64url string (no padding)");
			goto out;
		}
		tlen = json_string_length(v);
		box = malloc(tlen * 3 / 4 + 1);
		if (!box) {
			bad(status, 500, err, "app_sealed_secrets", "out of memory");
			goto out;
		}
		if (mse_b64_decode(box, tlen * 3 / 4 + 1, &box_len, json_string_value(v), tlen,
				   MSE_B64_URL_NOPAD) != 0) {
			bad(status, 400, err, "app_sealed_secrets",
			    "not base64url without padding (RFC 4648 §5)");
			goto out;
		}
		if (box_len < crypto_box_SEALBYTES) {
			bad(status, 400, err, "app_sealed_secrets", "too short for a sealed box");
			goto out;
		}
		plain = malloc(box_len - crypto_box_SEALBYTES + 1);
		if (!plain) {
			bad(status, 500, err, "app_sealed_secrets", "out of memory");
			goto out;
		}
		if (crypto_box_seal_open(plain, box, box_len, cfg->enclave_pk, cfg->enclave_sk) != 0) {
			bad(status, 400, err, "app_sealed_secrets",
			    "the sealed box does not open with this enclave's key (sealed to "
			    "another enclave?)");
			goto out;
		}
		out->sealed_secrets_len = box_len - crypto_box_SEALBYTES;
		plain[out->sealed_secrets_len] = '\0';
		out->sealed_secrets = (char *)plain;
		plain = NULL;
		sealed_obj = json_loadb(out->sealed_secrets, out->sealed_secrets_len,
					JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(sealed_obj)) {
			bad(status, 400, err, "app_sealed_secrets",
			    "the opened sealed secrets are not a JSON object");
			goto out;
		}
		v = json_object_get(sealed_obj, "code_secret_key");
		if (v && !json_is_null(v)) {
			if (hex_key(v, sealed_key) != 0) {
				bad(status, 400, err, "app_sealed_secrets.code_secret_key",
				    "expected 64 hex digits (32 bytes)");
				goto out;
			}
			has_sealed_key = 1;
		}
	}
	if (has_sealed_key) {
		if (out->has_code_key && sodium_memcmp(out->code_key, sealed_key, 32) != 0) {
			bad(status, 400, err, "code_secret_key",
			    "differs from the one in app_sealed_secrets");
			goto out;
		}
		memcpy(out->code_key, sealed_key, 32);
		out->has_code_key = 1;
	}
	if (!cfg->plaincode && !out->has_code_key) {
		bad(status, 400, err, "code_secret_key",
		    "missing: the code is encrypted (give code_secret_key, or put it in "
		    "app_sealed_secrets)");
		goto out;
	}
	v = json_object_get(root, "ssl_private_key");
	if (v && !json_is_null(v)) {
		BIO *b;
		EVP_PKEY *k;

		if (!cfg->want_ssl_key) {
			bad(status, 400, err, "ssl_private_key",
			    "not expected: this enclave was not started with --certificate");
			goto out;
		}
		if (!json_is_string(v) || json_string_length(v) > 65536) {
			bad(status, 400, err, "ssl_private_key", "expected a PEM private key");
			goto out;
		}
		b = BIO_new_mem_buf(json_string_value(v), (int)json_string_length(v));
		k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		ERR_clear_error();
		if (!k) {
			bad(status, 400, err, "ssl_private_key", "not a PEM private key");
			goto out;
		}
		if (cfg->certificate_pem) {
			BIO *cb = BIO_new_mem_buf(cfg->certificate_pem, -1);
			X509 *c = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
			int match = c && X509_check_private_key(c, k) == 1;

			X509_free(c);
			BIO_free(cb);
			ERR_clear_error();
			if (!match) {
				EVP_PKEY_free(k);
				bad(status, 400, err, "ssl_private_key",
				    "does not match the certificate this enclave serves");
				goto out;
			}
		}
		EVP_PKEY_free(k);
		out->ssl_private_key_len = json_string_length(v);
		out->ssl_private_key = malloc(out->ssl_private_key_len + 1);
		if (!out->ssl_private_key) {
			bad(status, 500, err, "ssl_private_key", "out of memory");
			goto out;
		}
		memcpy(out->ssl_private_key, json_string_value(v), out->ssl_private_key_len + 1);
	} else if (cfg->want_ssl_key) {
		bad(status, 400, err, "ssl_private_key",
		    "missing: this enclave serves a custom certificate and needs its key");
		goto out;
	}
	*status = 200;
	rc = 0;
out:
	sodium_memzero(sealed_key, sizeof(sealed_key));
	json_decref(sealed_obj);
	json_decref(root);
	free(box);
	free(plain);
	if (rc != 0)
		mse_confserver_request_free(out);
	return rc;
}

/* ---- applying (I/O) ------------------------------------------------------ */

static int is_enc(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && strcmp(name + n - 4, ".enc") == 0;
}

/* Copies or decrypts src_root/rel into dst_root/rel, recursively. */
static int install_tree(const char *src_root, const char *dst_root, const char *rel,
			const struct mse_confserver_request *p, int plaincode, int depth, int *status,
			struct mse_err *err)
{
	char src[4096], dst[4096], sub[4096];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (depth > 64)
		return mse_err_set(err, "app directory nested too deep");
	snprintf(src, sizeof(src), "%s%s%s", src_root, *rel ? "/" : "", rel);
	d = opendir(src);
	if (!d) {
		*status = 500;
		return mse_err_set(err, "cannot read %s: %s", src, strerror(errno));
	}
	while (rc == 0 && (de = readdir(d))) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
			    (int)sizeof(sub) ||
		    snprintf(src, sizeof(src), "%s/%s", src_root, sub) >= (int)sizeof(src) ||
		    snprintf(dst, sizeof(dst), "%s/%s", dst_root, sub) >= (int)sizeof(dst)) {
			rc = mse_err_set(err, "path too long: %s", de->d_name);
			break;
		}
		if (lstat(src, &st) != 0) {
			*status = 500;
			rc = mse_err_set(err, "cannot stat %s: %s", src, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			if (mkdir(dst, 0700) != 0) {
				*status = 500;
				rc = mse_err_set(err, "cannot create %s: %s", dst, strerror(errno));
			} else {
				rc = install_tree(src_root, dst_root, sub, p, plaincode, depth + 1,
						  status, err);
			}
		} else if (!S_ISREG(st.st_mode)) {
			*status = 500;
			rc = mse_err_field(err, sub, "not a regular file");
		} else if (!plaincode && is_enc(de->d_name)) {
			/* src/crypto/codefile; a wrong key or corrupt file is the client's: 400. */
			dst[strlen(dst) - 4] = '\0';
			rc = mse_codefile_decrypt_file(p->code_key, src, dst, err);
			if (rc != 0)
				*status = mse_file_exists(dst) ? 500 : 400;
		} else {
			uint8_t *data = NULL;
			size_t len = 0;

			if (mse_file_read(src, CODE_FILE_MAX, &data, &len, err) != 0) {
				*status = 500;
				rc = -1;
			} else {
				rc = mse_file_write_new(dst, data, len, MSE_MODE_SECRET, err);
				if (rc != 0)
					*status = 500;
			}
			mse_file_free_secret(data, len);
		}
	}
	closedir(d);
	return rc;
}

static int parent_dir(const char *path, char *out, size_t size)
{
	char *slash;

	if (snprintf(out, size, "%s", path) >= (int)size)
		return -1;
	slash = strrchr(out, '/');
	if (!slash)
		snprintf(out, size, ".");
	else if (slash == out)
		out[1] = '\0';
	else
		*slash = '\0';
	return 0;
}

static int write_secret_file(const char *path, const char *data, size_t len, struct mse_err *err)
{
	char dir[4096];

	if (parent_dir(path, dir, sizeof(dir)) != 0)
		return mse_err_set(err, "path too long");
	if (mse_file_mkdirs(dir, 0700, err) != 0)
		return -1;
	return mse_file_write_atomic(path, data, len, MSE_MODE_SECRET, err);
}

#define INSTALL_PREFIX ".mse-install-"

/* -1 not a directory (or unreadable), else 1 if it has an entry, 0 if empty; *install: an interrupted install. */
static int dir_state(const char *path, int *install)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int any = 0;

	*install = 0;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		any = 1;
		if (strncmp(de->d_name, INSTALL_PREFIX, strlen(INSTALL_PREFIX)) == 0)
			*install = 1;
	}
	closedir(d);
	return any;
}

int mse_confserver_module_ready(const char *module_path)
{
	struct stat st;
	int install, s;

	if (lstat(module_path, &st) != 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return 1;
	s = dir_state(module_path, &install);
	return s != 0 && !install;
}

/* Empties an existing, unprovisioned module directory (what an interrupted install left). */
static int empty_dir(const char *path, struct mse_err *err)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char p[4600];
	int rc = 0;

	if (!d)
		return mse_err_set(err, "cannot open %s: %s", path, strerror(errno));
	while (rc == 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(p, sizeof(p), "%.4200s/%s", path, de->d_name) >= sizeof(p)) {
			rc = mse_err_set(err, "path too long under %s", path);
			break;
		}
		rc = mse_file_remove_tree(p, err);
	}
	closedir(d);
	return rc;
}

/* Moves every entry of tmp into dir, then removes tmp: the in-place commit. */
static int move_up(const char *tmp, const char *dir, struct mse_err *err)
{
	DIR *d = opendir(tmp);
	struct dirent *de;
	char from[4600], to[4600];
	int rc = 0;

	if (!d)
		return mse_err_set(err, "cannot open %s: %s", tmp, strerror(errno));
	while (rc == 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(from, sizeof(from), "%.4200s/%s", tmp, de->d_name) >= sizeof(from) ||
		    (size_t)snprintf(to, sizeof(to), "%.4200s/%s", dir, de->d_name) >= sizeof(to)) {
			rc = mse_err_set(err, "path too long under %s", dir);
			break;
		}
		if (rename(from, to) != 0)
			rc = mse_err_set(err, "cannot move %s to %s: %s", from, to, strerror(errno));
	}
	closedir(d);
	if (rc == 0 && rmdir(tmp) != 0)
		rc = mse_err_set(err, "cannot remove %s: %s", tmp, strerror(errno));
	return rc;
}

static int apply(const struct mse_confserver_config *cfg, const struct mse_confserver_request *p,
		 int *status, struct mse_err *err)
{
	char tmp[4200], dir[4096];
	int rc = -1, wrote_secrets = 0, wrote_sealed = 0, wrote_key = 0, in_place = 0, install;
	struct mse_err ignored;

	*status = 500;
	if (mse_confserver_module_ready(cfg->module_path)) {
		*status = 409;
		return mse_err_set(err, "%s already exists: already provisioned", cfg->module_path);
	}
	/* An existing directory that is not provisioned: Gramine's encrypted mount point. */
	if (dir_state(cfg->module_path, &install) >= 0) {
		in_place = 1;
		if (empty_dir(cfg->module_path, err) != 0)
			return -1;
	}
	if (in_place) {
		if (snprintf(dir, sizeof(dir), "%s", cfg->module_path) >= (int)sizeof(dir) ||
		    snprintf(tmp, sizeof(tmp), "%s/" INSTALL_PREFIX "XXXXXX", cfg->module_path) >=
			    (int)sizeof(tmp))
			return mse_err_set(err, "path too long");
	} else if (parent_dir(cfg->module_path, dir, sizeof(dir)) != 0 ||
		   snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", cfg->module_path) >= (int)sizeof(tmp))
		return mse_err_set(err, "path too long");
	if (mse_file_mkdirs(dir, 0700, err) != 0)
		return -1;
	if (!mkdtemp(tmp))
		return mse_err_set(err, "cannot create %s: %s", tmp, strerror(errno));
	if (install_tree(cfg->app_dir, tmp, "", p, cfg->plaincode, 0, status, err) != 0)
		goto out;
	*status = 500;
	if (p->app_secrets) {
		if (write_secret_file(cfg->secrets_path, p->app_secrets, p->app_secrets_len, err) != 0)
			goto out;
		wrote_secrets = 1;
	}
	if (p->sealed_secrets) {
		if (write_secret_file(cfg->sealed_secrets_path, p->sealed_secrets,
				      p->sealed_secrets_len, err) != 0)
			goto out;
		wrote_sealed = 1;
	}
	if (p->ssl_private_key && cfg->ssl_key_path) {
		if (write_secret_file(cfg->ssl_key_path, p->ssl_private_key, p->ssl_private_key_len,
				      err) != 0)
			goto out;
		wrote_key = 1;
	}
	/* The commit point: MODULE_PATH appears whole or not at all. */
	if (in_place) {
		if (move_up(tmp, cfg->module_path, err) != 0)
			goto out;
	} else if (rename(tmp, cfg->module_path) != 0) {
		mse_err_set(err, "cannot rename %s to %s: %s", tmp, cfg->module_path,
			    strerror(errno));
		goto out;
	}
	(void)mse_file_sync_dir(dir);
	*status = 200;
	rc = 0;
out:
	if (rc != 0) {
		if (in_place ? empty_dir(cfg->module_path, &ignored) != 0
			     : mse_file_remove_tree(tmp, &ignored) != 0)
			mse_warn("cannot remove %s", in_place ? cfg->module_path : tmp);
		if (wrote_secrets && unlink(cfg->secrets_path) != 0)
			mse_warn("cannot remove %s", cfg->secrets_path);
		if (wrote_sealed && unlink(cfg->sealed_secrets_path) != 0)
			mse_warn("cannot remove %s", cfg->sealed_secrets_path);
		if (wrote_key && unlink(cfg->ssl_key_path) != 0)
			mse_warn("cannot remove %s", cfg->ssl_key_path);
	}
	return rc;
}

int mse_confserver_apply(const struct mse_confserver_config *cfg, const struct mse_confserver_request *p,
			 struct mse_err *err)
{
	int status;

	return apply(cfg, p, &status, err);
}

/* ---- the server ---------------------------------------------------------- */

static char *dup_or_null(const char *s, int *fail)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*fail = 1;
	return d;
}

int mse_confserver_new(const struct mse_confserver_config *cfg, struct mse_confserver **out,
		       struct mse_err *err)
{
	struct mse_confserver *cs;
	int fail = 0;

	*out = NULL;
	if (!cfg->uuid || !*cfg->uuid || !cfg->app_dir || !cfg->module_path ||
	    !cfg->secrets_path || !cfg->sealed_secrets_path || !cfg->enclave_sk || !cfg->enclave_pk)
		return mse_err_set(err, "configuration server: incomplete configuration");
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return mse_err_set(err, "out of memory");
	cs->cfg = *cfg;
	cs->uuid = dup_or_null(cfg->uuid, &fail);
	cs->app_dir = dup_or_null(cfg->app_dir, &fail);
	cs->module_path = dup_or_null(cfg->module_path, &fail);
	cs->secrets_path = dup_or_null(cfg->secrets_path, &fail);
	cs->sealed_secrets_path = dup_or_null(cfg->sealed_secrets_path, &fail);
	cs->certificate_pem = dup_or_null(cfg->certificate_pem, &fail);
	cs->ssl_key_path = dup_or_null(cfg->ssl_key_path, &fail);
	cs->cfg.certificate_pem = cs->certificate_pem;
	cs->cfg.ssl_key_path = cs->ssl_key_path;
	memcpy(cs->sk, cfg->enclave_sk, 32);
	memcpy(cs->pk, cfg->enclave_pk, 32);
	cs->cfg.uuid = cs->uuid;
	cs->cfg.app_dir = cs->app_dir;
	cs->cfg.module_path = cs->module_path;
	cs->cfg.secrets_path = cs->secrets_path;
	cs->cfg.sealed_secrets_path = cs->sealed_secrets_path;
	cs->cfg.enclave_sk = cs->sk;
	cs->cfg.enclave_pk = cs->pk;
	if (!cs->cfg.max_body)
		cs->cfg.max_body = MSE_CONFSERVER_MAX_BODY_DEFAULT;
	pthread_mutex_init(&cs->lock, NULL);
	pthread_mutex_init(&cs->state_lock, NULL);
	pthread_cond_init(&cs->cond, NULL);
	if (fail) {
		mse_confserver_free(cs);
		return mse_err_set(err, "out of memory");
	}
	*out = cs;
	return 0;
}

void mse_confserver_free(struct mse_confserver *cs)
{
	if (!cs)
		return;
	pthread_mutex_destroy(&cs->lock);
	pthread_mutex_destroy(&cs->state_lock);
	pthread_cond_destroy(&cs->cond);
	free(cs->uuid);
	free(cs->app_dir);
	free(cs->module_path);
	free(cs->secrets_path);
	free(cs->sealed_secrets_path);
	free(cs->certificate_pem);
	free(cs->ssl_key_path);
	if (cs->ssl_key)
		sodium_memzero(cs->ssl_key, cs->ssl_key_len);
	free(cs->ssl_key);
	sodium_memzero(cs, sizeof(*cs));
	free(cs);
}

/*
 * Answers; with a state (Mse-Status), also the Mse-Proof bound to our uuid
 * and the request's Mse-Nonce (crypto/provproof.h), which the app that
 * takes the port over never sends: a client can tell who answered.
 */
static int respond(const struct mse_confserver *cs, struct mse_exchange *x, int status,
		   const char *state, const char *msg)
{
	char len[32], body[1400], nonce[MSE_PROVPROOF_NONCE_HEX + 1] = "",
					  proof[MSE_PROVPROOF_HEX + 1];
	struct mse_http_header h[5];
	size_t n = 0, blen;

	snprintf(body, sizeof(body), "%s\n", msg);
	blen = strlen(body);
	snprintf(len, sizeof(len), "%zu", blen);
	h[n++] = (struct mse_http_header){"Content-Type", 12, "text/plain; charset=utf-8", 25};
	h[n++] = (struct mse_http_header){"Content-Length", 14, len, strlen(len)};
	if (state) {
		const struct mse_http_header *nh =
			x->req ? mse_http_find_header(x->req, MSE_PROVPROOF_NONCE_HEADER) : NULL;

		h[n++] = (struct mse_http_header){MSE_CONFSERVER_STATUS_HEADER,
						  strlen(MSE_CONFSERVER_STATUS_HEADER), state,
						  strlen(state)};
		if (nh && mse_provproof_nonce_ok(nh->value, nh->value_len)) {
			memcpy(nonce, nh->value, nh->value_len);
			nonce[nh->value_len] = 0;
		}
		mse_provproof_compute(cs->uuid, state, nonce, proof);
		h[n++] = (struct mse_http_header){MSE_PROVPROOF_HEADER, strlen(MSE_PROVPROOF_HEADER),
						  proof, strlen(proof)};
	}
	if (status == 405)
		h[n++] = (struct mse_http_header){"Allow", 5, "GET, HEAD, POST", 15};
	if (mse_exchange_start(x, status, NULL, h, n) != 0 ||
	    mse_exchange_write(x, body, blen) != 0 || mse_exchange_finish(x) != 0)
		return -1;
	return 0;
}

static int method_is(const struct mse_http_request *r, const char *m)
{
	return r->method_len == strlen(m) && memcmp(r->method, m, r->method_len) == 0;
}

int mse_confserver_provisioned(struct mse_confserver *cs)
{
	int d;

	pthread_mutex_lock(&cs->state_lock);
	d = cs->done;
	pthread_mutex_unlock(&cs->state_lock);
	return d;
}

int mse_confserver_head_check(const struct mse_http_request *r, void *user)
{
	struct mse_confserver *cs = user;

	if (method_is(r, "GET") || method_is(r, "HEAD"))
		return 0;
	if (!method_is(r, "POST"))
		return 405;
	if (r->path_len != 1 || r->path[0] != '/')
		return 404;
	if (r->content_length > (int64_t)cs->cfg.max_body)
		return 413;
	return 0;
}

int mse_confserver_handle(struct mse_exchange *x, void *user)
{
	struct mse_confserver *cs = user;
	const struct mse_http_request *r = x->req;
	struct mse_confserver_request prov;
	struct mse_err err;
	uint8_t *body = NULL;
	size_t len = 0, cap = cs->cfg.max_body + 1;
	int status, rc;
	char msg[1300];

	mse_err_clear(&err);
	if (method_is(r, "GET") || method_is(r, "HEAD")) {
		if (mse_confserver_provisioned(cs))
			return respond(cs, x, 200, "Provisioned", "provisioned; the app is starting");
		return respond(cs, x, 200, "Waiting",
			       "waiting for the code key and secrets (mse-c configuration server)");
	}
	if (!method_is(r, "POST"))
		return respond(cs, x, 405, NULL, "method not allowed");
	if (r->path_len != 1 || r->path[0] != '/')
		return respond(cs, x, 404, NULL, "not found: POST the configuration to /");
	if (r->content_length > (int64_t)cs->cfg.max_body) {
		respond(cs, x, 413, NULL, "request body too large");
		return -1; /* the body is left unread: close the connection */
	}
	body = malloc(cap);
	if (!body)
		return respond(cs, x, 500, NULL, "out of memory");
	for (;;) {
		ssize_t n = mse_exchange_read_body(x, body + len, cap - len);

		if (n < 0) {
			mse_file_free_secret(body, len);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			mse_file_free_secret(body, len);
			respond(cs, x, 413, NULL, "request body too large");
			return -1; /* the rest of the body is unread: close */
		}
	}
	pthread_mutex_lock(&cs->lock);
	if (mse_confserver_provisioned(cs)) {
		status = 409;
		snprintf(msg, sizeof(msg), "already provisioned");
	} else if (mse_confserver_parse(&cs->cfg, body, len, &prov, &status, &err) != 0) {
		mse_err_str(&err, msg, sizeof(msg));
	} else {
		if (apply(&cs->cfg, &prov, &status, &err) != 0) {
			mse_err_str(&err, msg, sizeof(msg));
		} else {
			snprintf(msg, sizeof(msg), "provisioned");
			pthread_mutex_lock(&cs->state_lock);
			if (prov.ssl_private_key) {
				cs->ssl_key = prov.ssl_private_key;
				cs->ssl_key_len = prov.ssl_private_key_len;
				prov.ssl_private_key = NULL;
			}
			cs->done = 1;
			pthread_cond_broadcast(&cs->cond);
			pthread_mutex_unlock(&cs->state_lock);
		}
		mse_confserver_request_free(&prov);
	}
	pthread_mutex_unlock(&cs->lock);
	mse_file_free_secret(body, len);
	if (status == 200)
		mse_info("configuration received from %s: code decrypted, secrets written",
			 x->conn ? x->conn->remote_addr : "?");
	else
		mse_warn("configuration from %s refused (%d): %s",
			 x->conn ? x->conn->remote_addr : "?", status, msg);
	rc = respond(cs, x, status, status == 200 || status == 409 ? "Provisioned" : "Waiting", msg);
	return rc;
}

int mse_confserver_wait(struct mse_confserver *cs, long timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (timeout_ms >= 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&cs->state_lock);
	while (!cs->done && !cs->cancelled) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&cs->cond, &cs->state_lock);
		} else if (pthread_cond_timedwait(&cs->cond, &cs->state_lock, &ts) == ETIMEDOUT) {
			break;
		}
	}
	rc = cs->done ? 1 : cs->cancelled ? -1 : 0;
	pthread_mutex_unlock(&cs->state_lock);
	return rc;
}

void mse_confserver_cancel(struct mse_confserver *cs)
{
	pthread_mutex_lock(&cs->state_lock);
	cs->cancelled = 1;
	pthread_cond_broadcast(&cs->cond);
	pthread_mutex_unlock(&cs->state_lock);
}

const char *mse_confserver_ssl_key(struct mse_confserver *cs, size_t *len)
{
	const char *k;

	pthread_mutex_lock(&cs->state_lock);
	k = cs->ssl_key;
	if (len)
		*len = cs->ssl_key_len;
	pthread_mutex_unlock(&cs->state_lock);
	return k;
}
