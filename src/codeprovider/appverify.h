/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_appverify — the code provider's verification of a deployment
 * (`mse verify --package FILE --evidence FILE`, and the verify step of
 * `mse deploy`).
 *
 * It recomputes what the enclave must measure from what the code provider
 * holds, never from what the operator says:
 *   - simulation: MRENCLAVE = the documented hash (docs/simulation.md) of
 *     the expected mse-bootstrap (by default the one installed beside
 *     `mse`), the evidence's input arguments and the package's app.tar —
 *     so a swapped code file, bootstrap or argument changes it;
 *     MRSIGNER = the simulation signer of the code provider's own
 *     simulation directory; the trusted root is that directory's root CA
 *     (never a root carried by the evidence);
 *   - SGX (evidence.json has mse-c's "gramine" object): the caller's
 *     --mrenclave, or else the same Gramine version (`gramine-sgx
 *     --version`, compared with the evidence's, refused if it differs)
 *     renders and signs the same manifest over the code provider's own
 *     mse-bootstrap, the package's app.tar and its own Python tree, with a
 *     throw-away key (mse_gramine_measure); ISVPRODID and a minimum ISVSVN
 *     from the manifest are checked too. The signer key is the caller's.
 * Then it verifies the RA-TLS certificate's quote against the evidence's
 * collateral (mse_verify_ratls: every signature, chain, CRL, TCB status,
 * report_data binding) and, on success only, writes the trusted ratls.pem.
 */
#ifndef MSE_APPVERIFY_H
#define MSE_APPVERIFY_H

#include <limits.h>
#include <stdint.h>
#include <time.h>

#include "attest/verify.h"
#include "common/err.h"

struct mse_appverify_opts {
	const char *package;        /* package_<name>_<ns>.tar (required) */
	const char *evidence;       /* evidence.json (required) */
	const char *output_dir;     /* where the trusted ratls.pem goes; NULL: not written */
	const char *bootstrap;      /* expected mse-bootstrap binary; NULL: beside `mse`
				     * (never $MSE_BOOTSTRAP: the operator's choice) */
	const uint8_t *mrenclave;   /* expected MRENCLAVE (SGX); NULL: recompute (simulation) */
	const char *signer_key;     /* expected signer public key PEM; NULL: the simulation's */
	int allow_simulation;
	const char *sim_root;       /* DER/PEM root; NULL: $MSE_SIM_DIR/root_ca.der */
	unsigned accept_status;     /* MSE_TCB_MASK bits; 0: UpToDate only */
	int accept_expired_collateral;
	time_t now;                 /* 0: now */
};

struct mse_appverify_result {
	struct mse_verify_result vr;
	uint8_t expected_mrenclave[32];
	uint8_t expected_mrsigner[32];
	/* where the expected MRSIGNER came from; NULL when none was reached (nothing compared) */
	const char *mrsigner_from;
	uint8_t enclave_pk[32];     /* report_data[32:64]: where to seal secrets */
	char ratls_path[PATH_MAX];  /* the trusted certificate written, "" if none */
	char app_id[64];            /* the instance uuid from the input arguments */
	char measured_from[4400];   /* what the expected MRENCLAVE was computed from; "" if none was */
	int sgx;                    /* 1: recomputed with Gramine */
};

int mse_appverify(const struct mse_appverify_opts *o, struct mse_appverify_result *res,
		  struct mse_err *err) MSE_MUST_CHECK;

#endif
