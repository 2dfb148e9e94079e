/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_provision — the client side of the configuration server protocol
 * (`mse run`, and the run step of `mse deploy`).
 *
 * It talks to the enclave only through the verified, pinned ratls.pem
 * (src/net/client.h), and only once the server answered
 * `Mse-Status: Waiting`: a swapped server cannot complete the handshake, and
 * the already-running app (which serves the same certificate) never gets
 * the uuid, the code key or the secrets. Body (MSE's wire format):
 *   {"uuid": ..., "code_secret_key": hex(32)?, "app_secrets": JSON?,
 *    "app_sealed_secrets": base64url-no-padding(sealed box)?}
 * The code key is wiped from memory once sent. It is never handed to the
 * JSON library (whose copies are freed unwiped): it is spliced into the
 * request text, which is wiped.
 */
#ifndef MSE_PROVISION_H
#define MSE_PROVISION_H

#include <stdint.h>

#include "common/err.h"
#include "operator/instance.h"

struct mse_provision_opts {
	const char *ratls_pem;      /* the trusted certificate from `mse verify` (required) */
	const char *key_path;       /* 32-byte code key file, or NULL */
	const char *secrets_path;   /* JSON file, or NULL */
	const char *sealed_path;    /* sealed box file (`mse seal` output), or NULL */
	const char *ssl_key_path;   /* PEM private key of the owner's certificate, or NULL */
	long timeout_ms;
};

/* Sends the provisioning request. 0 on HTTP 200; -1 with the reason otherwise. */
int mse_provision(const struct mse_instance *inst, const struct mse_provision_opts *o,
		  struct mse_err *err);

/*
 * `mse deploy`'s seal step: the JSON object of src (secrets_to_seal.json; {}
 * if the file does not exist) plus "code_secret_key": hex of the 32-byte key
 * file, sealed (crypto_box_seal) to the enclave's X25519 key pk and written
 * atomically to out_path (0600). The operator never sees the code key.
 */
int mse_provision_seal(const char *src, const char *key_path, const uint8_t pk[32],
		       const char *out_path, struct mse_err *err);

#endif
