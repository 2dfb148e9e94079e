/* SPDX-License-Identifier: Apache-2.0 */
#include "codeprovider/provision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "common/b64.h"
#include "common/file.h"
#include "common/hex.h"
#include "crypto/provproof.h"
#include "crypto/seal.h"
#include "net/client.h"

#define MAX_SECRETS (16u << 20)

/*
 * obj (the text of a JSON object, "{...}") with "code_secret_key":"HEX" as
 * its first member. The key goes straight into this buffer, never into a
 * jansson value. The caller wipes and frees the result.
 */
static char *with_key(const char *obj, const char key_hex[65], struct mse_err *err)
{
	size_t n = strlen(obj) + 96;
	char *out;

	if (obj[0] != '{') {
		mse_err_set(err, "internal error: not a JSON object");
		return NULL;
	}
	out = malloc(n);
	if (!out) {
		mse_err_set(err, "out of memory");
		return NULL;
	}
	snprintf(out, n, "{\"code_secret_key\":\"%s\"%s%s", key_hex, strcmp(obj, "{}") ? "," : "",
		 obj + 1);
	return out;
}

/* Wipes and frees a NUL-terminated secret text. NULL-safe. */
static void free_text(char *s)
{
	if (s)
		mse_file_free_secret(s, strlen(s));
}

/* The 32-byte key file as lowercase hex (65 bytes with the NUL). */
static int read_key_hex(const char *path, char hex[65], struct mse_err *err)
{
	uint8_t *key = NULL;
	size_t len = 0;
	int rc = -1;

	if (mse_file_read(path, 64, &key, &len, err) != 0)
		return -1;
	if (len != 32)
		mse_err_field(err, path, "expected a 32-byte code key, got %zu bytes", len);
	else
		rc = mse_hex_encode(hex, 65, key, 32);
	mse_file_free_secret(key, len);
	return rc;
}

int mse_provision_seal(const char *src, const char *key_path, const uint8_t pk[32],
		       const char *out_path, struct mse_err *err)
{
	uint8_t *text = NULL, *sealed = NULL;
	size_t len = 0, sealed_len = 0;
	char hex[65] = "", *obj = NULL, *plain = NULL;
	json_t *o = NULL;
	json_error_t jerr;
	int rc = -1;

	if (mse_file_exists(src)) {
		if (mse_file_read(src, MAX_SECRETS, &text, &len, err) != 0)
			return -1;
		o = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
		if (!o) {
			mse_err_at(err, src, jerr.line, jerr.column, "%s", jerr.text);
			goto out;
		}
		if (!json_is_object(o)) {
			mse_err_field(err, src, "expected a JSON object");
			goto out;
		}
		/* Ours replaces any code_secret_key the file holds. */
		json_object_del(o, "code_secret_key");
	} else {
		o = json_object();
	}
	if (read_key_hex(key_path, hex, err) != 0 || mse_seal_check_public_key(pk, err) != 0)
		goto out;
	obj = json_dumps(o, JSON_COMPACT);
	if (!obj) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	if (!(plain = with_key(obj, hex, err)) ||
	    mse_seal_seal(pk, (const uint8_t *)plain, strlen(plain), &sealed, &sealed_len, err) != 0)
		goto out;
	rc = mse_file_write_atomic(out_path, sealed, sealed_len, 0600, err);
out:
	sodium_memzero(hex, sizeof(hex));
	free_text(obj);
	free_text(plain);
	json_decref(o);
	mse_file_free_secret(text, len);
	free(sealed);
	return rc;
}

int mse_provision(const struct mse_instance *inst, const struct mse_provision_opts *o,
		  struct mse_err *err)
{
	struct mse_client_opts co = {
		.host = strcmp(inst->host, "0.0.0.0") == 0 ? "127.0.0.1" : inst->host,
		.port = inst->port,
		.server_name = inst->san,
		.pin_pem = o->ratls_pem,
		.timeout_ms = o->timeout_ms ? o->timeout_ms : 60000,
		.max_body = 1 << 20,
	};
	uint8_t *secrets = NULL, *sealed = NULL, *sslkey = NULL;
	size_t secrets_len = 0, sealed_len = 0, sslkey_len = 0;
	char key_hex[65] = "", *sealed_b64 = NULL, *body = NULL, *obj = NULL;
	struct mse_client_resp r = {0};
	struct mse_client_session *sess = NULL;
	char nonce[MSE_PROVPROOF_NONCE_HEX + 1], nonce_hdr[80];
	const char *hdrs[] = {nonce_hdr, NULL};
	json_t *o_json = NULL, *sec = NULL;
	json_error_t jerr;
	int rc = -1;

	if (!o->ratls_pem)
		return mse_err_set(err, "the trusted ratls.pem written by 'mse verify' is required");
	if (!o->key_path && !o->secrets_path && !o->sealed_path && !o->ssl_key_path)
		return mse_err_set(err, "nothing to send: give a code key, secrets or sealed secrets");
	/* Read and check every input before any byte goes out. */
	if (o->key_path && read_key_hex(o->key_path, key_hex, err) != 0)
		goto out;
	if (o->secrets_path) {
		if (mse_file_read(o->secrets_path, MAX_SECRETS, &secrets, &secrets_len, err) != 0)
			goto out;
		sec = json_loadb((const char *)secrets, secrets_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
		if (!sec) {
			mse_err_at(err, o->secrets_path, jerr.line, jerr.column, "not JSON: %s", jerr.text);
			goto out;
		}
	}
	if (o->sealed_path) {
		size_t n;

		if (mse_file_read(o->sealed_path, MAX_SECRETS, &sealed, &sealed_len, err) != 0)
			goto out;
		if (sealed_len <= crypto_box_SEALBYTES) {
			mse_err_field(err, o->sealed_path, "too short for a sealed box (%zu bytes)", sealed_len);
			goto out;
		}
		n = mse_b64_encoded_size(sealed_len, MSE_B64_URL_NOPAD);
		sealed_b64 = malloc(n);
		if (!sealed_b64 || mse_b64_encode(sealed_b64, n, sealed, sealed_len, MSE_B64_URL_NOPAD) != 0) {
			mse_err_set(err, "out of memory");
			goto out;
		}
	}
	if (o->ssl_key_path && mse_file_read(o->ssl_key_path, 1 << 20, &sslkey, &sslkey_len, err) != 0)
		goto out;
	/*
	 * Only the configuration server that waits for this uuid may receive
	 * anything, and the POST goes over the very connection whose GET it
	 * answered (one_connection: never a new one, which the app could
	 * answer after another client's provisioning). Each answer must carry
	 * the proof bound to our uuid and a fresh nonce (crypto/provproof.h).
	 */
	if (mse_client_session_open(&sess, &co, 1, err) != 0)
		goto out;
	mse_provproof_nonce(nonce);
	snprintf(nonce_hdr, sizeof(nonce_hdr), "%s: %s", MSE_PROVPROOF_NONCE_HEADER, nonce);
	if (mse_client_session_request(sess, "GET", "/", hdrs, NULL, NULL, 0, &r, err) != 0)
		goto out;
	if (strcmp(r.mse_status, "Waiting") != 0) {
		mse_err_set(err,
			    "%s:%u is not waiting for secrets (HTTP %ld, no 'Mse-Status: Waiting'): "
			    "already provisioned, or not an mse-bootstrap configuration server. Nothing was sent.",
			    co.host, (unsigned)co.port, r.status);
		goto out;
	}
	if (r.status != 200 ||
	    !mse_provproof_check(inst->uuid, "Waiting", nonce, r.mse_proof, strlen(r.mse_proof))) {
		mse_err_set(err,
			    "%s:%u answered 'Mse-Status: Waiting' (HTTP %ld) without the proof of the "
			    "configuration server started with uuid %s (Mse-Proof %s): not the "
			    "configuration server of this instance. Nothing was sent.",
			    co.host, (unsigned)co.port, r.status, inst->uuid,
			    r.mse_proof[0] ? "wrong" : "missing");
		goto out;
	}
	mse_client_resp_free(&r);
	o_json = json_object();
	json_object_set_new(o_json, "uuid", json_string(inst->uuid));
	if (sec)
		json_object_set(o_json, "app_secrets", sec);
	if (sealed_b64)
		json_object_set_new(o_json, "app_sealed_secrets", json_string(sealed_b64));
	if (sslkey)
		json_object_set_new(o_json, "ssl_private_key", json_stringn((const char *)sslkey, sslkey_len));
	obj = json_dumps(o_json, JSON_COMPACT);
	if (!obj) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	if (!o->key_path) {
		body = obj;
		obj = NULL;
	} else if (!(body = with_key(obj, key_hex, err))) {
		goto out;
	}
	mse_provproof_nonce(nonce);
	snprintf(nonce_hdr, sizeof(nonce_hdr), "%s: %s", MSE_PROVPROOF_NONCE_HEADER, nonce);
	if (mse_client_session_request(sess, "POST", "/", hdrs, "application/json", body, strlen(body),
				       &r, err) != 0) {
		mse_err_prefix(err, "not provisioned");
		goto out;
	}
	if (r.status != 200) {
		mse_err_set(err, "the enclave refused the provisioning: HTTP %ld%s%.300s", r.status,
			    r.body && r.body[0] ? ": " : "", r.body ? r.body : "");
		goto out;
	}
	/* A 200 is not enough: the app's own POST / answers 200 too. */
	if (strcmp(r.mse_status, "Provisioned") != 0 ||
	    !mse_provproof_check(inst->uuid, "Provisioned", nonce, r.mse_proof, strlen(r.mse_proof))) {
		mse_err_set(err,
			    "not provisioned: the POST was answered HTTP 200 without the configuration "
			    "server's proof (Mse-Status '%s', Mse-Proof %s): another server, such as the "
			    "app after a hand-over, answered it",
			    r.mse_status, r.mse_proof[0] ? "wrong" : "missing");
		goto out;
	}
	rc = 0;
out:
	mse_client_resp_free(&r);
	mse_client_session_close(sess);
	free_text(body);
	free_text(obj);
	json_decref(o_json);
	json_decref(sec);
	sodium_memzero(key_hex, sizeof(key_hex));
	mse_file_free_secret(secrets, secrets_len);
	mse_file_free_secret(sealed, sealed_len);
	mse_file_free_secret(sslkey, sslkey_len);
	free(sealed_b64);
	return rc;
}
