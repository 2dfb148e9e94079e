/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_provproof — proof that an answer comes from the configuration server
 * that waits for (or accepted) this instance's provisioning, not from the
 * app that took over the port after another client provisioned it.
 *
 * The client sends a fresh random nonce in the request header Mse-Nonce
 * (32 lowercase hex digits); the configuration server answers with
 *
 *   Mse-Proof: hex(HMAC-SHA256(key = SHA-256(uuid),
 *                               "mse-c provisioning v1\n" || state || "\n" || nonce))
 *
 * where state is its Mse-Status ("Waiting" or "Provisioned"). Only a
 * configuration server started with this uuid computes it, and only for
 * this request; the app never sends it. The uuid is not a secret from the
 * operator, but the operator cannot answer inside the pinned TLS session:
 * the proof tells the code provider's client which server answered, the
 * pinned certificate that it runs in the verified enclave.
 */
#ifndef MSE_PROVPROOF_H
#define MSE_PROVPROOF_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_PROVPROOF_NONCE_HEADER "Mse-Nonce"
#define MSE_PROVPROOF_HEADER "Mse-Proof"
#define MSE_PROVPROOF_NONCE_HEX 32 /* 16 random bytes */
#define MSE_PROVPROOF_HEX 64

/* A fresh nonce: MSE_PROVPROOF_NONCE_HEX lowercase hex digits and a NUL. */
void mse_provproof_nonce(char out[MSE_PROVPROOF_NONCE_HEX + 1]);
/* 1 if s (len bytes) is a well-formed nonce, else 0. */
int mse_provproof_nonce_ok(const char *s, size_t len);
/* The proof for uuid, state and nonce (nonce may be "" when none was sent). */
void mse_provproof_compute(const char *uuid, const char *state, const char *nonce,
			   char out[MSE_PROVPROOF_HEX + 1]);
/* 1 if proof (proof_len bytes) is the proof for uuid/state/nonce (constant time), else 0. */
int mse_provproof_check(const char *uuid, const char *state, const char *nonce, const char *proof,
			size_t proof_len);

#endif
