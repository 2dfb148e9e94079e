/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_reverify — `mse verify NAME`: after `mse restart` an enclave has a new
 * TLS key and certificate, so the ratls.pem pinned at deploy no longer
 * matches. This fetches the running instance's evidence again and verifies
 * it against the package recorded when it was deployed (MRENCLAVE
 * recomputed from that package, the bootstrap and the input arguments, the
 * uuid the deploy provisioned), then replaces the pinned ratls.pem.
 *
 * The record is the code provider's own: `mse deploy` writes
 * PROJECT/.mse/deployments/NAME.json (mse_reverify_record), never the
 * operator's state directory, so the expected package is not the operator's
 * to choose.
 *
 * Ownership: opts and result are caller-owned; nothing outlives the call.
 */
#ifndef MSE_REVERIFY_H
#define MSE_REVERIFY_H

#include <limits.h>

#include "attest/tcb.h"
#include "common/buf.h"
#include "common/err.h"

struct mse_reverify_record {
	char name[65];
	char uuid[37];
	char package[PATH_MAX];      /* the package deployed */
	char evidence_dir[PATH_MAX + 32]; /* where evidence.json is refreshed */
	char verified_dir[PATH_MAX + 32]; /* where the trusted ratls.pem is */
	int simulation;              /* deployed in simulation (allowed again) */
};

/* Writes PROJECT_DIR/.mse/deployments/NAME.json (0600, atomically). */
int mse_reverify_record(const char *project_dir, const struct mse_reverify_record *r,
			struct mse_err *err) MSE_MUST_CHECK;

struct mse_reverify_opts {
	const char *name;        /* the instance (required) */
	const char *project_dir; /* where it was deployed from; NULL: "." */
};

struct mse_reverify_result {
	struct mse_reverify_record rec;
	char record_path[PATH_MAX + 64];
	char evidence_path[PATH_MAX];
	char ratls_path[PATH_MAX];
	char mrenclave_hex[65];
	enum mse_tcb_status tcb_status;
	char advisories[1024];
	int simulation;
};

/* 0: verified and ratls.pem refreshed; -1 with err (step set) otherwise. */
int mse_reverify(const struct mse_reverify_opts *o, struct mse_reverify_result *res,
		 struct mse_err *err) MSE_MUST_CHECK;

#endif
