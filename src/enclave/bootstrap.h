/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_bootstrap — what runs in the enclave before the app (mse-bootstrap):
 *
 *   1. paths: HOME, TMP_PATH, KEY_PATH, MODULE_PATH, SECRETS_PATH,
 *      SEALED_SECRETS_PATH (ARCHITECTURE.md "Enclave paths"), exported to
 *      the app; in simulation they all live under the workspace;
 *   2. the attestation provider: Gramine's /dev/attestation, or the
 *      simulation, whose MRENCLAVE is measured here (src/attest/simmeasure.h)
 *      over this very executable (/proc/self/exe), the input arguments and
 *      the app directory;
 *   3. the enclave X25519 key (from the sealing key) and the RA-TLS
 *      certificate binding it (src/node/ratlscert.h);
 *   4. the listening socket (host:port), then, unless MODULE_PATH already
 *      exists (a restart), the configuration server on it
 *      (src/node/confserver.h) until provisioned, --timeout, or SIGTERM;
 *   5. the hand-over: the same socket to the app server
 *      (src/node/appserver.h) with the certificate of the mode:
 *      RA-TLS (--ratls), the given full chain and the received key
 *      (--certificate), or plain HTTP (--no-ssl).
 *
 * In the workspace (when there is one) it writes ratls.pem (the RA-TLS
 * certificate) and bootstrap.json (input_args as MSE's evidence.json
 * carries them, simulation flag, MRENCLAVE, MRSIGNER, the bootstrap's
 * SHA-256, the port) for the operator's tools.
 *
 * Replica mode (--coordinator-mrenclave) replaces step 4: the replica
 * attests to the coordinator (mutual RA-TLS) and receives the code key,
 * secrets, re-sealed sealed secrets, a certificate from the coordinator's
 * CA and the app key; it re-attests at every start (a restart is
 * provisioned again, without the owner).
 *
 * The options struct is borrowed for the call.
 */
#ifndef MSE_BOOTSTRAP_H
#define MSE_BOOTSTRAP_H

#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

enum mse_bootstrap_tls { MSE_BOOT_RATLS, MSE_BOOT_CERTIFICATE, MSE_BOOT_NO_SSL, MSE_BOOT_COORDINATOR };

#define MSE_BOOT_CONF_CERT_SECONDS (10 * 3600) /* --certificate / --no-ssl: RA-TLS cert lifetime */

struct mse_bootstrap_opts {
	const char *application; /* MODULE:VAR */
	const char *app_dir;
	const char *uuid;
	const char *host; /* default "0.0.0.0" */
	uint16_t port;    /* default 443; 0 = ephemeral */
	const char *subject;
	const char *san;
	enum mse_bootstrap_tls tls_mode;
	int64_t expiration;      /* --ratls EXPIRATION (UNIX seconds) */
	const char *certificate; /* --certificate FULLCHAIN.pem */
	long timeout_s;          /* 0 = wait forever */
	int request_timeout_s;   /* per-request deadline (504), both servers; 0 = none */
	int plaincode;
	int simulation;              /* 1 forced, 0 = auto (simulation if no SGX device) */
	const char *workspace;       /* simulation: where every path lives */
	uint64_t size_mb;            /* --size (an input argument; enclave size under SGX) */
	const char *attestation_dir; /* Gramine interface; default /dev/attestation */
	const char *sim_dir;         /* default mse_sim_dir() */
	int sandbox;                 /* app server enclave rules (default 1) */
	int no_access_log;           /* 1: no log line per request (appserver no_request_log) */
	int threads;                 /* app server workers; 0 = the server's default */
	int threads_max;             /* grown to on demand; 0 = the server's default */
	unsigned sim_isvsvn;         /* simulation: the reported ISVSVN (0: 1), what
					SIGSTRUCT sets under SGX; not measured */
	/*
	 * Replica mode (src/enclave/replica.h): provisioned by the coordinator
	 * whose MRENCLAVE this is (measured, v2: docs/simulation.md) at
	 * `coordinator` (HOST:PORT, from $MSE_COORDINATOR: not measured);
	 * served with the certificate its CA issues (tls_mode
	 * MSE_BOOT_COORDINATOR); the app key is written 0400 at $APP_KEY_PATH.
	 */
	const uint8_t *coordinator_mrenclave;
	const char *coordinator;
	const char *coordinator_collateral; /* default: the simulation's collateral/ */
	/*
	 * Outside simulation, also trust quotes that chain to this simulation
	 * root CA (DER, lowercase hex; --trust-sim-root, in the measured argv):
	 * UNSAFE outside tests (the Gramine stand-in's quotes). NULL: only
	 * Intel's root. A simulation trusts its own root anyway.
	 */
	const char *trust_sim_root_hex;
};

void mse_bootstrap_opts_init(struct mse_bootstrap_opts *o);
/* Runs the whole sequence; returns 0 after the app server stopped gracefully. */
int mse_bootstrap_run(const struct mse_bootstrap_opts *o, struct mse_err *err) MSE_MUST_CHECK;

#endif
