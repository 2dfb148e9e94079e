/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_simtdx — TDX in the simulation: TD quotes v4 and v5 signed by the
 * simulated quoting enclave (the PCK chain and attestation key of the SGX
 * simulation in $MSE_SIM_DIR, see sim.h), and TDX collateral (TCB info v3 id
 * "TDX", QE identity "TD_QE") signed by its TCB signing key. Nothing here
 * is confidential: it exists so that every TDX status and every TD policy
 * failure can be tested without TDX hardware.
 *
 * The simulated TDX TCB info (mse_simtdx_collateral) selects its level by
 * TEE_TCB_SVN[2] (the "TDX late microcode" component):
 *   >= 10 UpToDate, 9 SWHardeningNeeded, 8 ConfigurationNeeded,
 *   7 ConfigurationAndSWHardeningNeeded, 6 OutOfDate (INTEL-SA-SIM01),
 *   5 OutOfDateConfigurationNeeded, 4 Revoked, below 4: not supported;
 * TEE_TCB_SVN[0..1] must be >= 2, 0 for module major version 0 (the base
 * tdxModule). Module identities: "TDX_01" with levels isvsvn 5 UpToDate,
 * 3 OutOfDate (INTEL-SA-SIM02), 1 Revoked; "TDX_0A" isvsvn 0 UpToDate; no
 * other major version. Every module's MRSIGNER is zero (as Intel's), its
 * attributes 0 under mask FFFFFFFFFFFFFFFF. The TD QE identity has isvsvn
 * 8 UpToDate and 6 OutOfDate. TD relaunch: the latest level is the first.
 *
 * Ownership: quotes and texts are malloc'd, freed by the caller.
 */
#ifndef MSE_SIMTDX_H
#define MSE_SIMTDX_H

#include <stddef.h>
#include <stdint.h>

#include "attest/quote.h"
#include "common/buf.h"
#include "common/err.h"

#define MSE_SIMTDX_QE_ISVPRODID 2 /* Intel's TD QE */

/* A default TD: every measurement a distinct tag, SEPT_VE_DISABLE set, UpToDate SVNs. */
void mse_simtdx_default_td(struct mse_td_report *td);

/*
 * Builds a TDX quote: version 4 (TD report 1.0) or 5 (body type 2 when
 * !td->v15, 3 when td->v15), signed by the simulation in dir.
 */
int mse_simtdx_quote(const char *dir, int version, const struct mse_td_report *td, uint8_t **quote, size_t *len,
		     struct mse_err *err) MSE_MUST_CHECK;

/*
 * Writes a complete collateral directory for TDX quotes of the simulation in
 * dir into out_dir (created): the simulation's chains and CRLs, and the TDX
 * TCB info and TD QE identity described above, valid for a year from now.
 */
int mse_simtdx_collateral(const char *dir, const char *out_dir, struct mse_err *err) MSE_MUST_CHECK;

#endif
