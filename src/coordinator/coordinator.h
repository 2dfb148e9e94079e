/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_coord — the coordinator's API (mse-coordinator, docs/coordinator.md):
 * one deployment's policy (the owner-signed manifest), its root secret, CA
 * and replica registry, served over the coordinator's RA-TLS certificate.
 *
 *   GET  /status    {"state", "owner_key", "deployment_id", "seq",
 *                    "manifest_sha256", "replicas", "attestations_accepted",
 *                    "attestations_refused", "simulation"}
 *   GET  /ca        the CA certificate (PEM); 503 before the first manifest
 *   GET  /metrics   Prometheus text format (docs/metrics.md): no secrets
 *   POST /recover   only in the recovery-needed state (mse_coord_recover)
 *   POST /manifest  body: the manifest's exact bytes (<= 1 MiB), header
 *                   Mse-Owner-Signature: 128 hex digits (Ed25519, detached);
 *                   403 signature, 400 manifest (field named), 409 seq not
 *                   higher or another deployment_id, 200 {"deployment_id",
 *                   "seq", "manifest_sha256"}
 *   POST /replica   mutual RA-TLS: the client certificate is the replica's
 *                   RA-TLS certificate, verified with the full verifier
 *                   against the manifest (TCB policy, identities, binding);
 *                   body {"instance": NAME} (<= 4 KiB, optional); 403 with
 *                   {"step", "error"} and nothing else on refusal; 200 with
 *                   the provisioning (see mse_coord_provision).
 * Every client address gets at most rate_per_sec requests per second (429
 * beyond). Bodies over their route's limit get 413.
 *
 * State (root secret, manifest and signature, owner key, CA certificate,
 * replica registry) is kept in STATE_DIR/state.sealed: nonce(24) ‖
 * crypto_secretbox(JSON) under the state key (src/crypto/ckeys.h), written
 * atomically (0600) after every change, loaded at start.
 *
 * Ownership: the config is borrowed for mse_coord_new (keys copied, the
 * collateral and sim root borrowed for the coordinator's life);
 * mse_coord_free wipes and frees (NULL-safe).
 */
#ifndef MSE_COORD_H
#define MSE_COORD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "attest/collateral.h"
#include "attest/pccs.h"
#include "common/buf.h"
#include "common/err.h"
#include "net/exchange.h"

#define MSE_COORD_MAX_MANIFEST (1u << 20)
#define MSE_COORD_MAX_SMALL_BODY 4096
#define MSE_COORD_MAX_RECOVERY (3u << 20)
#define MSE_COORD_RATE_DEFAULT 200
#define MSE_COORD_LEAF_DAYS 90
#define MSE_COORD_SIG_HEADER "Mse-Owner-Signature"
#define MSE_COORD_STATE_FILE "state.sealed"

struct mse_coord_config {
	uint8_t owner_pk[32];
	const char *state_dir;
	uint8_t enclave_sk[32], enclave_pk[32]; /* X25519: what secrets are sealed to */
	uint8_t state_key[32];
	const struct mse_collateral *coll; /* collateral for replicas' quotes */
	/* SGX: when set (and coll is NULL), each replica's collateral is fetched
	 * from this PCCS for its quote's platform; no collateral, no replica. */
	const struct mse_pccs_opts *pccs;
	const uint8_t *sim_root_der;       /* simulation root, trusted if the manifest allows */
	size_t sim_root_len;
	int simulation;                    /* the coordinator itself is simulated */
	unsigned rate_per_sec;             /* 0: MSE_COORD_RATE_DEFAULT */
	int allow_recovery;                /* a state that does not open: start in
					      "recovery-needed" instead of failing */
};

struct mse_coord;

/* Loads STATE_DIR/state.sealed if present (fails if it does not open). */
int mse_coord_new(const struct mse_coord_config *c, struct mse_coord **out,
		  struct mse_err *err) MSE_MUST_CHECK;
void mse_coord_free(struct mse_coord *co);
/* 1 when the sealed state did not open and only POST /recover is accepted. */
int mse_coord_recovery_needed(struct mse_coord *co);
/*
 * Recovery (POST /recover, only in the recovery-needed state): body is
 * crypto_box_seal(the coordinator's X25519 key, the recovery blob JSON the
 * owner opened from recovery.bin), sig the owner's Ed25519 signature over
 * body. The blob's owner key and manifest signature are checked, then the
 * state (root secret, CA, manifest, opened secrets) is installed and sealed
 * with this coordinator's sealing key. *status: 200, 403 signature/owner,
 * 400 blob, 409 not in recovery-needed.
 */
int mse_coord_recover(struct mse_coord *co, const uint8_t *body, size_t len,
		      const uint8_t sig[64], int *status, struct mse_err *err) MSE_MUST_CHECK;
/*
 * The recovery blob sealed to the manifest's recovery_key (recovery.bin),
 * malloc'd; fails when the manifest has no recovery_key.
 */
int mse_coord_recovery_bin(struct mse_coord *co, uint8_t **out, size_t *len,
			   struct mse_err *err) MSE_MUST_CHECK;
/* The Prometheus text exposition of the coordinator's metrics (malloc'd). */
char *mse_coord_metrics(struct mse_coord *co);
/* The HTTP handler (an mse_exchange_handler, user = the coordinator). */
int mse_coord_handle(struct mse_exchange *x, void *user);

/* The pure parts, fuzzed: the replica request body and the signature header. */
int mse_coord_parse_replica_req(const uint8_t *body, size_t len, char instance[65],
				struct mse_err *err) MSE_MUST_CHECK;
int mse_coord_parse_sig(const char *hex, size_t len, uint8_t sig[64],
			struct mse_err *err) MSE_MUST_CHECK;

/*
 * Accepts a signed manifest (what POST /manifest does). *status is the HTTP
 * status to answer. On the first manifest the root secret is drawn.
 */
int mse_coord_set_manifest(struct mse_coord *co, const uint8_t *bytes, size_t len,
			   const uint8_t sig[64], int *status, struct mse_err *err) MSE_MUST_CHECK;
/*
 * Verifies a replica's RA-TLS certificate against the manifest and, if it
 * passes, returns in *resp (malloc'd JSON, secret: the caller wipes it with
 * mse_file_free_secret) {"deployment_id", "seq", "app", "code_secret_key"
 * (hex, absent in plaincode), "app_secrets" (JSON text or null),
 * "app_sealed_secrets" (base64url, sealed to the replica's X25519 key, or
 * null), "certificate_chain" (PEM: a leaf for the replica's key and the
 * manifest's DNS names, then the CA), "ca" (PEM), "app_key" (hex)}. On
 * refusal err names the step (verifier steps, "measurement", "policy").
 */
int mse_coord_provision(struct mse_coord *co, X509 *peer, const char *remote,
			const char *instance, char **resp, size_t *resp_len, int *status,
			struct mse_err *err) MSE_MUST_CHECK;

#endif
