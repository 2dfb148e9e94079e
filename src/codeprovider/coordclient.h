/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_coordclient — the owner's side of the coordinator (`mse coordinator
 * keygen|measure|manifest|set|ca|status`, and `mse deploy --replicas`).
 *
 * Owner keys are Ed25519, as text files of 64 lowercase hex digits: the
 * private file (0600) holds the 32-byte seed, the public file the public
 * key (what `mse-coordinator --owner-key` takes, and what is measured).
 *
 * Every request goes to the coordinator through its RA-TLS certificate that
 * `mse verify` checked and saved (the pin): the CA (`ca`) is never read from
 * a file the operator hands over.
 *
 * Ownership: outputs are malloc'd and freed by the caller; secrets read
 * (code key, owner seed) are wiped before return.
 */
#ifndef MSE_COORDCLIENT_H
#define MSE_COORDCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* Writes PREFIX.key (0600, new file) and PREFIX.pub. */
int mse_coordclient_keygen(const char *prefix, struct mse_err *err) MSE_MUST_CHECK;
/* A public key: 64 hex digits, or a file holding them. */
int mse_coordclient_load_pub(const char *arg, uint8_t pk[32], struct mse_err *err) MSE_MUST_CHECK;
/* The signing key (libsodium's 64-byte form) from a private key file. */
int mse_coordclient_load_priv(const char *path, uint8_t sk[64], struct mse_err *err) MSE_MUST_CHECK;
/* Simulation MRENCLAVE (measurement v2) of the coordinator binary (mse_cspawn_coordinator_path) started with pk. */
int mse_coordclient_measure(const char *binary, const uint8_t pk[32], uint8_t mre[32],
			    struct mse_err *err) MSE_MUST_CHECK;
/*
 * SGX MRENCLAVE of that coordinator under Gramine started with pk (and, if
 * not NULL, --trust-sim-root sim_root_hex): its manifest rendered and signed
 * with a throw-away key by this machine's gramine-manifest and
 * gramine-sgx-sign (operator/gramine.h), never read from an enclave.
 * gramine (may be NULL) receives the Gramine release that measured it.
 */
int mse_coordclient_measure_sgx(const char *binary, const uint8_t pk[32], const char *sim_root_hex,
				uint8_t mre[32], char *gramine, size_t gramine_size,
				struct mse_err *err) MSE_MUST_CHECK;
/*
 * This machine's simulation root CA (root_ca.der of mse_sim_dir) as
 * lowercase hex, *hex malloc'd: what --accept-simulation-quotes on SGX has
 * the enclaves trust (operator/manifest.h, --trust-sim-root).
 */
int mse_coordclient_sim_root_hex(char **hex, struct mse_err *err) MSE_MUST_CHECK;

struct mse_coordclient_manifest_opts {
	const char *package;          /* package_<name>_<ns>.tar; NULL: package project_dir now */
	const char *code_key;         /* its 32-byte key file (with package) */
	const char *project_dir;      /* with no package: PROJECT/mse.toml is packaged into
					 PROJECT/.mse/package.<time>/ (new code key, 0600) */
	char *made_package;           /* out, with project_dir: the package made (PATH_MAX) */
	const char *secrets;          /* secrets.json, or NULL */
	const char *secrets_to_seal;  /* secrets_to_seal.json, or NULL */
	const char *coordinator_cert; /* the coordinator's verified ratls.pem (required):
					 its X25519 key and its MRENCLAVE */
	const char *deployment_id;    /* NULL: a new random one */
	uint64_t seq;                 /* 0: 1 */
	const char *app;              /* NULL: the package's app name */
	const char *const *dns;       /* the replicas' names; none: "localhost" */
	size_t n_dns;
	const char *bootstrap;        /* expected mse-bootstrap; NULL: beside mse */
	uint64_t size_mb;             /* the replicas' --size (measured) */
	const uint8_t (*mrenclaves)[32]; /* more accepted MRENCLAVEs (SGX) */
	size_t n_mrenclaves;
	int no_sim_identity;          /* do not add the simulation MRENCLAVE */
	int sgx_identity;             /* add the SGX replicas' MRENCLAVE, recomputed with
					 gramine-sgx-sign (operator/manifest.h's replica
					 manifest for the first DNS name and --size) */
	unsigned sgx_isvprodid, sgx_isvsvn; /* sgx_identity: the replicas' sgx.isvprodid
					 and sgx.isvsvn (measured); 0: 1 */
	const char *sgx_sim_root_hex; /* sgx_identity: replicas started with
					 --trust-sim-root HEX (UNSAFE outside tests,
					 operator/manifest.h); NULL: none */
	const char *signer_key;       /* PRIVATE RSA key the owner holds → an MRSIGNER identity */
	uint16_t isvprodid, min_isvsvn;
	const char *accept_status;    /* "UpToDate,SWHardeningNeeded"; NULL: UpToDate */
	int allow_simulation;
	int accept_expired_collateral;
	const char *recovery_key;     /* X25519 public key file (32 bytes, or mse keygen
					 --asymmetric's 64): "recovery_key" */
};
/* Builds the manifest JSON (unsigned); *json is malloc'd. */
int mse_coordclient_manifest(const struct mse_coordclient_manifest_opts *o, char **json,
			     size_t *len, struct mse_err *err) MSE_MUST_CHECK;

struct mse_coordclient_conn {
	const char *url;         /* HOST:PORT */
	const char *pin;         /* the coordinator's verified ratls.pem */
	const char *server_name; /* NULL: localhost */
	long timeout_ms;
	/* set: */
	const char *recovery_out; /* write the answer's recovery.bin here (0600); NULL: not */
	const char *record;       /* write {deployment_id, seq, manifest_sha256} here (the
				     owner's side of the rollback check); NULL: not */
};
/* GET path; *body malloc'd (NUL-terminated). Fails unless 200. */
int mse_coordclient_get(const struct mse_coordclient_conn *c, const char *path, char **body,
			size_t *len, struct mse_err *err) MSE_MUST_CHECK;
/*
 * Signs the manifest file with the owner's key, uploads it, then reads
 * GET /status over the same pinned channel and checks that it reports this
 * deployment_id, seq and SHA-256. *status_json (may be NULL) receives it.
 */
int mse_coordclient_set(const struct mse_coordclient_conn *c, const char *manifest_path,
			const char *owner_key_path, char **status_json,
			struct mse_err *err) MSE_MUST_CHECK;

/*
 * The rollback check: the coordinator's GET /status (status_json) must report
 * the deployment, seq and manifest SHA-256 the owner last set (the record
 * `set` wrote). Step "rollback"; a lower seq is named ROLLBACK.
 */
int mse_coordclient_check_record(const char *record, const char *status_json,
				 struct mse_err *err) MSE_MUST_CHECK;

/* The MRENCLAVE in a pinned RA-TLS certificate (PEM). */
int mse_coordclient_pin_mrenclave(const uint8_t *pin, size_t len, uint8_t mre[32],
				  struct mse_err *err) MSE_MUST_CHECK;

#define MSE_COORD_RECOVERY_MAX (4u << 20)
/*
 * Recovery: opens recovery.bin with the owner's X25519 recovery key, seals
 * the blob to the coordinator's key (from the pin), signs it with the owner
 * key and POSTs /recover. *status_json: the coordinator's status after.
 */
int mse_coordclient_recover(const struct mse_coordclient_conn *c, const char *recovery_bin,
			    const char *recovery_key, const char *owner_key, char **status_json,
			    struct mse_err *err) MSE_MUST_CHECK;

/*
 * Fetches the coordinator's RA-TLS certificate at url (HOST:PORT), verifies
 * it (the full verifier) against the expected MRENCLAVE, and on success
 * only writes it to pin_out (the pin for the other calls). Collateral: with
 * sgx and not allow_simulation, Intel's from the PCCS for the quote's
 * platform (pccs_url; NULL: the QCNL configuration's pccs_url);
 * otherwise the simulation's. The simulation root is trusted only with
 * allow_simulation.
 */
int mse_coordclient_verify(const char *url, const uint8_t mrenclave[32], int allow_simulation,
			   int sgx, const char *pccs_url, const char *pin_out,
			   struct mse_err *err) MSE_MUST_CHECK;

#endif
