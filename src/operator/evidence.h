/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_evidence — writes evidence.json in MSE's schema (`mse home evidence`),
 * so that MSE's tools and ours read the same file:
 *
 *   input_args         {subject, subject_alternative_name, expiration_date,
 *                       size, app_id, application}: what the enclave was
 *                       started with (they enter the simulation measurement)
 *   ratls_certificate  PEM
 *   root_ca_crl        PEM
 *   pck_platform_crl   PEM
 *   tcb_info           base64 of the ASCII hex of the PCCS TCB info body,
 *                      with a trailing newline (MSE's quirk, kept as is)
 *   qe_identity        base64 of the PCCS QE identity body
 *   tcb_cert           PEM of the TCB signing certificate
 *   signer_pk          PEM of the enclave signer's RSA-3072 public key
 *   gramine            (SGX only; mse-c's addition) what the code provider
 *                      needs to render the same manifest and recompute
 *                      MRENCLAVE: {version, host, port, threads, no_ssl,
 *                      isvprodid, isvsvn, mrenclave, mrsigner, and when
 *                      given threads_max and metrics} — mrenclave and mrsigner
 *                      as gramine-sgx-sign wrote them, for information only
 *
 * The collateral comes from a collateral directory (the layout of
 * ../shared/vectors/dcap-quotes/README.md): one fetched from a PCCS, or the
 * simulation root's. Nothing here is secret; the file is written atomically.
 */
#ifndef MSE_EVIDENCE_H
#define MSE_EVIDENCE_H

#include <stdint.h>

#include "common/err.h"

struct mse_evidence_args {
	const char *subject;
	const char *san;
	int64_t expiration; /* UNIX seconds */
	uint32_t size_mb;
	const char *app_id; /* the instance uuid */
	const char *application;
	const struct mse_evidence_sgx *sgx; /* NULL in simulation */
};

struct mse_evidence_sgx {
	const char *gramine_version;
	const char *host;
	uint16_t port;
	unsigned threads;
	unsigned threads_max; /* 0: not in the manifest's argv (nor in the evidence) */
	const char *metrics;  /* --metrics HOST:PORT in the manifest's argv; NULL: none (absent) */
	int no_ssl;
	unsigned isvprodid, isvsvn;
	const char *mrenclave_hex, *mrsigner_hex;
};

/*
 * Builds the JSON text (malloc'd, caller frees). ratls_pem is the
 * certificate's PEM text; signer_pk_pem the signer's public key PEM text.
 */
int mse_evidence_build(const struct mse_evidence_args *a, const char *ratls_pem,
		       const char *collateral_dir, const char *signer_pk_pem, char **json_out,
		       struct mse_err *err);
/* mse_evidence_build, then writes it atomically to path (mode 0644). */
int mse_evidence_write(const char *path, const struct mse_evidence_args *a, const char *ratls_pem,
		       const char *collateral_dir, const char *signer_pk_pem, struct mse_err *err);

#endif
