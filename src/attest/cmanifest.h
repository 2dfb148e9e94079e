/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_cmanifest — the coordinator's manifest: the owner's policy for one
 * deployment, as JSON (schema in docs/coordinator.md), signed by the owner
 * with Ed25519 (detached, over the exact bytes uploaded: the coordinator
 * never re-serialises before checking).
 *
 *   {
 *     "version": 1,
 *     "deployment_id": "1..64 of [A-Za-z0-9._-]",
 *     "seq": 1,                          1..2^53-1, grows with every update
 *     "app": "name",                     1..255 bytes: the app key's label
 *     "dns_names": ["localhost", "127.0.0.1"],   1..16: the replicas' names
 *     "identities": [                    1..16 accepted enclaves:
 *       {"mrenclave": "64 hex"},
 *       {"mrsigner": "64 hex", "isvprodid": 0, "min_isvsvn": 0}
 *     ],                                 (an MRSIGNER only for a key the owner
 *                                         holds: `mse coordinator manifest
 *                                         --signer-key PRIV` computes it)
 *     "tcb": {"accepted_statuses": ["UpToDate"],
 *             "accept_expired_collateral": false,
 *             "allow_simulation": false},
 *     "plaincode": false,
 *     "sealed": {"code_key": B64URL, "secrets": B64URL, "secrets_to_seal": B64URL},
 *     "recovery_key": "64 hex"           optional: the owner's X25519 public key;
 *                                         the coordinator answers the manifest with
 *                                         its state sealed to it (recovery.bin)
 *   }
 *
 * "sealed" values are crypto_box_seal (src/crypto/seal.h) to the
 * coordinator's X25519 key (report_data[32:64] of its RA-TLS certificate),
 * base64url without padding; "secrets" and "secrets_to_seal" are optional,
 * "code_key" is required unless plaincode. Unknown keys, duplicate keys and
 * wrong types are refused with the field named.
 *
 * Parsing is pure (no I/O) and fuzzed (tests/fuzz/fuzz_cmanifest.c).
 * Ownership: struct mse_cmanifest is caller-owned; mse_cmanifest_parse
 * fills it, mse_cmanifest_free releases it (NULL-safe, idempotent).
 */
#ifndef MSE_CMANIFEST_H
#define MSE_CMANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_CMANIFEST_MAX_SIZE (1u << 20)
#define MSE_CMANIFEST_MAX_DNS 16
#define MSE_CMANIFEST_MAX_IDS 16
#define MSE_CMANIFEST_SIG_LEN 64   /* Ed25519 */
#define MSE_CMANIFEST_OWNER_LEN 32 /* Ed25519 public key */

enum mse_cmanifest_id_kind { MSE_CMANIFEST_MRENCLAVE = 1, MSE_CMANIFEST_MRSIGNER };

struct mse_cmanifest_identity {
	enum mse_cmanifest_id_kind kind;
	uint8_t mrenclave[32];
	uint8_t mrsigner[32];
	uint16_t isvprodid;
	uint16_t min_isvsvn;
};

struct mse_cmanifest {
	char deployment_id[65];
	uint64_t seq;
	char app[256];
	size_t app_len;
	char dns[MSE_CMANIFEST_MAX_DNS][254];
	size_t n_dns;
	struct mse_cmanifest_identity ids[MSE_CMANIFEST_MAX_IDS];
	size_t n_ids;
	unsigned accept_status; /* MSE_TCB_MASK bits (attest/verify.h) */
	int accept_expired_collateral;
	int allow_simulation;
	int plaincode;
	uint8_t *sealed_code_key; /* owned; NULL if absent */
	size_t sealed_code_key_len;
	uint8_t *sealed_secrets;
	size_t sealed_secrets_len;
	uint8_t *sealed_to_seal;
	size_t sealed_to_seal_len;
	int has_recovery_key;     /* "recovery_key": the owner's X25519 recovery public key */
	uint8_t recovery_pk[32];
};

int mse_cmanifest_parse(const uint8_t *json, size_t len, struct mse_cmanifest *out,
			struct mse_err *err) MSE_MUST_CHECK;
void mse_cmanifest_free(struct mse_cmanifest *m);

/* Ed25519 detached signature over exactly json[0:len]. Step "signature". */
int mse_cmanifest_check_sig(const uint8_t *json, size_t len,
			    const uint8_t sig[MSE_CMANIFEST_SIG_LEN],
			    const uint8_t owner_pk[MSE_CMANIFEST_OWNER_LEN],
			    struct mse_err *err) MSE_MUST_CHECK;

/*
 * Does an enclave with these values match one of the identities? Returns the
 * index of the first match, or -1 with err (step "measurement") giving the
 * actual values and what was accepted; step "isvsvn" when an MRSIGNER
 * identity accepts the signer and product but its min_isvsvn is above isvsvn. Constant-time compares.
 */
int mse_cmanifest_match(const struct mse_cmanifest *m, const uint8_t mrenclave[32],
			const uint8_t mrsigner[32], uint16_t isvprodid, uint16_t isvsvn,
			struct mse_err *err);

/* 1 if name is an IPv4/IPv6 literal (certificates carry it as an IP SAN). */
int mse_cmanifest_is_ip(const char *name);

#endif
