/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_confserver — the configuration server that waits, on the app's port,
 * for the code key and secrets (MSE wire format, ARCHITECTURE.md):
 *
 *   GET  any path  -> 200, "Mse-Status: Waiting" (the operator's probe)
 *   POST /         JSON {uuid, code_secret_key?, app_secrets?,
 *                  app_sealed_secrets?, ssl_private_key?}
 *        401  uuid missing or wrong (checked FIRST: nothing else is looked at)
 *        400  anything else malformed (bad hex, bad base64url, sealed box that
 *             does not open, sealed payload not a JSON object, wrong code key,
 *             corrupt code file, missing key...); nothing is written
 *        409  already provisioned
 *        413  body over the limit
 *        200  provisioned: code decrypted into MODULE_PATH, secrets written
 *   other methods -> 405, POST elsewhere -> 404
 *
 * It is a pure handler over mse_exchange (src/net/exchange.h): no sockets.
 * Parsing (mse_confserver_parse) is separate from the I/O that applies a
 * provisioning (mse_confserver_apply) so the parser can be fuzzed.
 *
 * Provisioning is all or nothing: every .enc file of the app directory is
 * decrypted (MSE code format: XSalsa20-Poly1305 secretbox, nonce(24) ‖
 * tag(16) ‖ ciphertext) into a temporary directory beside MODULE_PATH,
 * other files are copied as they are, the secret files are written
 * atomically (0600), and the temporary directory is renamed to MODULE_PATH
 * last, which is the commit point (a restart that finds MODULE_PATH skips
 * provisioning). On failure everything written is removed. POSTs are
 * serialised; once one succeeded, every later one gets 409.
 *
 * Ownership: mse_confserver_new copies the configuration (strings and keys)
 * into the server; mse_confserver_free wipes and frees it (NULL-safe).
 * struct mse_confserver_request is caller-owned, released by mse_confserver_request_free.
 */
#ifndef MSE_CONFSERVER_H
#define MSE_CONFSERVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "net/exchange.h"

/* A provisioning body is a uuid, a code key and the secrets: 1 MiB is
 * plenty, and every connection may hold that much while it arrives. */
#define MSE_CONFSERVER_MAX_BODY_DEFAULT (1u << 20)
#define MSE_CODE_KEY_LEN 32
#define MSE_CONFSERVER_STATUS_HEADER "Mse-Status"

struct mse_confserver_config {
	const char *uuid;                /* expected uuid (required) */
	const char *app_dir;             /* the app as spawned (.enc files) */
	const char *module_path;         /* MODULE_PATH: created on success */
	const char *secrets_path;        /* SECRETS_PATH */
	const char *sealed_secrets_path; /* SEALED_SECRETS_PATH */
	const uint8_t *enclave_sk;       /* 32 bytes: opens app_sealed_secrets */
	const uint8_t *enclave_pk;       /* 32 bytes */
	int plaincode;                   /* code is not encrypted: no key needed */
	int want_ssl_key;                /* --certificate mode: ssl_private_key required */
	size_t max_body;                 /* 0 = MSE_CONFSERVER_MAX_BODY_DEFAULT */
	const char *certificate_pem;     /* want_ssl_key: the key must match this
					    certificate (leaf first); may be NULL */
	const char *ssl_key_path;        /* want_ssl_key: where the key is kept
					    (0600) for restarts; may be NULL */
};

struct mse_confserver_request {
	int has_code_key;
	uint8_t code_key[MSE_CODE_KEY_LEN];
	char *app_secrets; /* JSON text, NULL if absent */
	size_t app_secrets_len;
	char *sealed_secrets; /* opened JSON object text, NULL if absent */
	size_t sealed_secrets_len;
	char *ssl_private_key; /* PEM, NULL if absent */
	size_t ssl_private_key_len;
};

struct mse_confserver;

/*
 * Parses and checks a POST body without any I/O. On failure returns -1 with
 * *status the HTTP status to answer (401 for the uuid, 400 otherwise) and
 * err saying why; out holds nothing.
 */
int mse_confserver_parse(const struct mse_confserver_config *cfg, const uint8_t *body, size_t len,
			 struct mse_confserver_request *out, int *status, struct mse_err *err) MSE_MUST_CHECK;
void mse_confserver_request_free(struct mse_confserver_request *p);
/* Decrypts the code and writes the secrets (all or nothing, see above). */
int mse_confserver_apply(const struct mse_confserver_config *cfg, const struct mse_confserver_request *p,
			 struct mse_err *err) MSE_MUST_CHECK;

int mse_confserver_new(const struct mse_confserver_config *cfg, struct mse_confserver **out,
		       struct mse_err *err) MSE_MUST_CHECK;
void mse_confserver_free(struct mse_confserver *cs);
/*
 * The server's head_check (net/server.h), run on the event loop before any
 * body byte is read: GET and HEAD pass; POST only to "/" with a body
 * within max_body; anything else is answered 404, 405 or 413 without
 * reading the body. user = the confserver.
 */
int mse_confserver_head_check(const struct mse_http_request *r, void *user);
/* The request handler (an mse_exchange_handler; user = the confserver). */
int mse_confserver_handle(struct mse_exchange *x, void *user);
/*
 * Waits until a provisioning succeeded (returns 1) or timeout_ms passed
 * (returns 0; < 0 waits forever) or mse_confserver_cancel was called (-1).
 */
int mse_confserver_wait(struct mse_confserver *cs, long timeout_ms);
void mse_confserver_cancel(struct mse_confserver *cs);
int mse_confserver_provisioned(struct mse_confserver *cs);
/*
 * 1 if module_path holds provisioned code: it exists and is not an empty
 * directory nor one holding an interrupted install (".mse-install-*").
 * Under Gramine MODULE_PATH is an encrypted mount point (/mse-app, also
 * fs.start_dir), so it exists, empty, before provisioning: the code is then
 * installed into it (".mse-install-XXXXXX" inside, its entries moved up,
 * the temporary directory's removal being the commit point) instead of
 * renamed over it.
 */
int mse_confserver_module_ready(const char *module_path);
/*
 * After success in want_ssl_key mode: the received private key PEM, owned
 * by cs (valid until mse_confserver_free), or NULL.
 */
const char *mse_confserver_ssl_key(struct mse_confserver *cs, size_t *len);

#endif
