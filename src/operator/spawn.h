/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_spawn — the operator's side of starting an enclave (`mse spawn`, and
 * the spawn step of `mse deploy`).
 *
 * 1. checks the package (mse_package_inspect: package.json's digest of
 *    app.tar) and settles every argument (uuid, port, expiration);
 * 2. with SGX, renders the Gramine manifest in memory (a bad option fails
 *    before anything is created), checks Gramine (version) and the
 *    operator's signer key, claims the state directory, unpacks the package,
 *    copies mse-bootstrap beside it, then runs gramine-manifest and
 *    gramine-sgx-sign there (operator/gramine.h) and records MRENCLAVE and
 *    MRSIGNER from the SIGSTRUCT in the instance; in simulation, makes sure
 *    the simulation root exists ('mse sim init'), claims the state directory
 *    and unpacks the package into it;
 * 3. starts mse-bootstrap (SGX: gramine-sgx STATE/mse, in STATE) with a
 *    fresh uuid and expiration, detached, its output in the instance log;
 * 4. waits until its configuration server answers, fetches its RA-TLS
 *    certificate (untrusted: the code provider verifies it), and writes
 *    evidence.json and ratls.pem into the output directory.
 * Any failure stops what was started and removes the state directory.
 */
#ifndef MSE_SPAWN_H
#define MSE_SPAWN_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "operator/instance.h"

struct mse_spawn_opts {
	const char *name;
	const char *package;
	const char *output_dir;
	const char *san;
	const char *subject;     /* NULL: CN=<san>,O=mse-c */
	uint32_t size_mb;
	const char *host;
	uint16_t port;           /* 0: a free port (simulation) or 443 (sgx) */
	int days;
	const char *certificate; /* owner's full chain, or NULL */
	int no_ssl;
	int mode;                /* MSE_MODE_SIMULATION, MSE_MODE_SGX, or -1: auto */
	const char *pccs_url;
	const char *signer_key;  /* sgx: the operator's RSA-3072 e=3 private key (required) */
	unsigned isvprodid;      /* sgx.isvprodid, 1..65535; 0: 1 */
	unsigned isvsvn;         /* sgx.isvsvn, 1..65535; 0: 1 */
	int timeout_s;
	int request_timeout_s;   /* passed as mse-bootstrap --request-timeout; 0 = none */
	FILE *progress;          /* step lines go here; NULL: silent */
	int no_access_log;       /* mse-bootstrap --no-access-log: no line per request */
	/* mse-bootstrap --threads / --threads-max; 0: the defaults (under SGX
	 * MSE_MANIFEST_APP_THREADS and MSE_MANIFEST_APP_THREADS_MAX, measured) */
	unsigned threads, threads_max;
	/* mse-bootstrap --metrics HOST:PORT (docs/metrics.md); NULL: none. PORT 0:
	 * a free one. Recorded in the instance (inst.metrics, the port chosen). */
	const char *metrics;
};

struct mse_spawn_result {
	struct mse_instance inst;
	char evidence_path[PATH_MAX];
	char ratls_path[PATH_MAX];
};

int mse_spawn(const struct mse_spawn_opts *o, struct mse_spawn_result *res, struct mse_err *err);

/*
 * Waits until the instance's configuration server answers and captures its
 * certificate into <state>/ratls.pem. Fails early if the process exits.
 */
int mse_spawn_wait_ready(struct mse_instance *inst, int timeout_s, struct mse_err *err);

/*
 * Writes <dir>/evidence.json and <dir>/ratls.pem for a running instance:
 * collateral from the simulation root, or from pccs_url (sgx).
 */
int mse_spawn_write_evidence(const struct mse_instance *inst, const char *dir, const char *pccs_url,
			     const char *signer_key, char *evidence_path, size_t ev_size,
			     char *ratls_path, size_t ratls_size, struct mse_err *err);

#endif
