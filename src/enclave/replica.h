/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_replica — a replica's side of the coordinator (mse-bootstrap
 * --coordinator-mrenclave HEX, address in $MSE_COORDINATOR).
 *
 *   1. TLS to the coordinator with the replica's RA-TLS certificate as client
 *      certificate. The coordinator's certificate is checked inside the
 *      handshake (OpenSSL's certificate verification callback, which runs on
 *      the server's Certificate message, before the client sends its own
 *      certificate or any byte of a request): full quote verification against
 *      the collateral, the expected MRENCLAVE, the TCB policy (UpToDate), the
 *      report_data binding. A failure aborts the handshake: nothing is sent.
 *   2. POST /replica {"instance": NAME}; the coordinator verifies this
 *      replica's quote against the manifest and answers 200 with the
 *      provisioning, or 403 {"step", "error"}.
 *
 * The response parser is pure and fuzzed (tests/fuzz/fuzz_replica.c).
 * Ownership: struct mse_replica_prov is caller-owned; mse_replica_prov_free
 * wipes and frees it (NULL-safe, idempotent).
 */
#ifndef MSE_REPLICA_H
#define MSE_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "attest/pccs.h"
#include "common/err.h"

#define MSE_REPLICA_ENV "MSE_COORDINATOR"
#define MSE_REPLICA_MAX_RESPONSE (8u << 20)

struct mse_replica_opts {
	const char *coordinator;              /* HOST:PORT */
	const uint8_t *coordinator_mrenclave; /* 32 bytes */
	const char *collateral_dir;           /* to verify the coordinator's quote */
	/* SGX: when collateral_dir is NULL, the coordinator's collateral comes
	 * from this PCCS for its quote's platform (step "pccs" if it cannot). */
	const struct mse_pccs_opts *pccs;
	const uint8_t *sim_root_der;          /* trusted if allow_simulation */
	size_t sim_root_len;
	int allow_simulation;                 /* the replica is simulated itself */
	X509 *cert;                           /* the replica's RA-TLS certificate… */
	EVP_PKEY *key;                        /* …and its key */
	const char *instance;                 /* a name for the coordinator's registry, or NULL */
	long timeout_ms;                      /* connect retries and the exchange; 0: 60 s */
};

struct mse_replica_prov {
	char deployment_id[65];
	uint64_t seq;
	int has_code_key;
	uint8_t code_key[32];
	char *app_secrets; /* JSON text or NULL */
	size_t app_secrets_len;
	uint8_t *sealed; /* app_sealed_secrets, decoded (sealed to this replica), or NULL */
	size_t sealed_len;
	char *chain_pem; /* leaf for this replica's key, then the CA */
	char *ca_pem;
	uint8_t app_key[32];
};

int mse_replica_parse(const uint8_t *body, size_t len, struct mse_replica_prov *out,
		      struct mse_err *err) MSE_MUST_CHECK;
int mse_replica_fetch(const struct mse_replica_opts *o, struct mse_replica_prov *out,
		      struct mse_err *err) MSE_MUST_CHECK;
void mse_replica_prov_free(struct mse_replica_prov *p);

#endif
