/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_cspawn — the operator starts a coordinator or a replica as an instance
 * (src/operator/instance.h) with a role, so `mse status`, `list`, `logs`,
 * `stop` and `restart` know them.
 *
 *   coordinator: mse-coordinator (beside mse, or $MSE_COORDINATOR_BIN)
 *                --owner-key HEX --state-dir <dir>/workspace --host --port
 *                (simulation); with sgx: <dir>/mse.manifest.template for
 *                the owner key (operator/manifest.h), gramine-manifest,
 *                gramine-sgx-sign with the operator's signer key, then
 *                gramine-sgx <dir>/mse with MSE_COORDINATOR_LISTEN=HOST:PORT;
 *                its public files in <dir>/workspace/info, its sealed state
 *                in <dir>/workspace/state (encrypted, _sgx_mrenclave)
 *   replica:     mse-bootstrap APP --app-dir <workspace>/app
 *                --coordinator-mrenclave HEX --id NAME --host --port
 *                --san --size [--metrics HOST:PORT] --simulation
 *                --workspace <dir>/workspace,
 *                with MSE_COORDINATOR=HOST:PORT in its environment
 *                (recorded in state.json for `mse restart`)
 *
 * Ownership: opts borrowed; the instance is caller-owned.
 */
#ifndef MSE_CSPAWN_H
#define MSE_CSPAWN_H

#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "operator/instance.h"

struct mse_cspawn_opts {
	const char *name;
	const char *host;        /* default 127.0.0.1 */
	uint16_t port;           /* 0: a free one */
	/* coordinator */
	const char *owner_key;   /* 64 hex digits */
	int sgx;                 /* under Gramine (gramine-sgx) */
	const char *signer_key;  /* sgx: the operator's RSA-3072 e=3 key */
	const char *pccs_url;    /* sgx: the PCCS for replicas' collateral (not measured) */
	const char *sim_root_hex;/* sgx: --trust-sim-root in the measured argv (UNSAFE outside
				    tests: operator/manifest.h); NULL: none */
	/* replica */
	const char *package;
	const char *coordinator; /* HOST:PORT */
	const char *coordinator_mrenclave; /* 64 hex digits */
	const char *san;         /* the first of the manifest's DNS names; default localhost */
	uint32_t size_mb;        /* 0: not given (not measured) */
	unsigned isvprodid, isvsvn; /* sgx replica: sgx.isvprodid/isvsvn; 0: 1 */
	int timeout_s;           /* wait for readiness; 0: 60 */
	/* replica: its Prometheus listener, "HOST:PORT" (docs/metrics.md); NULL:
	 * none. PORT 0: a free one; metrics_search: PORT or the first free one
	 * above it (replicas started together, each its own). Simulation:
	 * --metrics; SGX: $MSE_REPLICA_METRICS (never measured). */
	const char *metrics;
	int metrics_search;
};

/* Starts a coordinator and waits until it listens (its coordinator.json). */
int mse_cspawn_coordinator(const struct mse_cspawn_opts *o, struct mse_instance *inst,
			   struct mse_err *err) MSE_MUST_CHECK;
/* Starts a replica (does not wait: see mse_instance_probe). */
int mse_cspawn_replica(const struct mse_cspawn_opts *o, struct mse_instance *inst,
		       struct mse_err *err) MSE_MUST_CHECK;
/* The mse-coordinator to run: $MSE_COORDINATOR_BIN, else beside `mse`. */
int mse_cspawn_coordinator_path(char *out, size_t size, struct mse_err *err) MSE_MUST_CHECK;

#endif
