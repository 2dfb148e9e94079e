/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_manifest — the Gramine manifest template for an SGX instance (`mse
 * spawn --sgx`), for Gramine 1.8 and 1.9 (the current stable release):
 * every key below is in the manifest syntax of those versions
 * (Documentation/manifest-syntax.rst; `gramine-manifest` checks it against
 * its schema).
 *
 * `gramine-manifest` renders it (resolving {{ gramine.libos }},
 * {{ gramine.runtimedir() }}, {{ arch_libdir }}, {{ python.stdlib }} and
 * {{ python.distlib }}: the Python tree is the one Gramine's own Python
 * reports, Debian's python3 whose libpython mse-bootstrap embeds),
 * `gramine-sgx-sign` signs it and `gramine-sgx` runs it, all with the
 * instance's state directory as the working directory: every host path in
 * the manifest is relative to it (file:mse-bootstrap, file:app,
 * file:workspace/…), so the manifest, and MRENCLAVE, do not depend on where
 * the operator keeps its state, and the code provider can render the same
 * manifest in a directory of its own to recompute MRENCLAVE.
 *
 * What it pins:
 *   - loader.argv: gramine-sgx ignores its command line, so mse-bootstrap's
 *     arguments (uuid, expiration, names, port) are fixed here, and measured;
 *   - encrypted mounts keyed to MRENCLAVE (`_sgx_mrenclave`) for /root,
 *     /key and /mse-app, so only this exact enclave reads them; tmpfs /tmp;
 *   - fs.start_dir = "/mse-app": the app runs in its code directory;
 *   - sys.disallow_subprocesses; sys.enable_sigterm_injection (mse stop);
 *   - sgx.enclave_size, sgx.max_threads (the app server's workers plus
 *     Gramine's and the bootstrap's own threads), sgx.isvprodid, sgx.isvsvn,
 *     sgx.remote_attestation = "dcap", sgx.debug = false;
 *   - trusted files: the bootstrap, Gramine's runtime, the system libraries,
 *     Python's standard library and dist-packages, CA certificates and the
 *     encrypted code — all measured into MRENCLAVE.
 */
#ifndef MSE_MANIFEST_H
#define MSE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Files in the instance directory (gramine-sgx's working directory). */
#define MSE_MANIFEST_NAME "mse"                 /* mse.manifest.template, .manifest, .manifest.sgx, .sig */
#define MSE_MANIFEST_BOOTSTRAP "mse-bootstrap"  /* a copy of the bootstrap that runs */
#define MSE_MANIFEST_APP_DIR "app"              /* the encrypted code, mounted at /app */
#define MSE_MANIFEST_WORKSPACE "workspace"      /* backs the encrypted mounts */
/* Paths inside the enclave. */
#define MSE_MANIFEST_ENTRY "/mse-bootstrap"
#define MSE_MANIFEST_APP_MOUNT "/app"
/* App server workers under SGX (the floor, and the ceiling they grow to
 * while handlers block), and the thread slots beyond them: the server's
 * event loop, the signal thread, the ASGI event loop, the configuration
 * server's two workers, and Gramine's own helper threads. */
#define MSE_MANIFEST_APP_THREADS 16
#define MSE_MANIFEST_APP_THREADS_MAX 64
#define MSE_MANIFEST_IO_THREADS 2   /* event loop, signal thread */
#define MSE_MANIFEST_ASGI_THREADS 1 /* the ASGI event loop */
#define MSE_MANIFEST_EXTRA_THREADS 16

/* mse-bootstrap's measured arguments under SGX (loader.argv). */
struct mse_manifest_args {
	const char *application; /* module:variable */
	const char *uuid;
	const char *host;
	uint16_t port;
	const char *subject;
	const char *san;
	uint32_t size_mb;
	int64_t expiration;      /* --ratls EXPIRATION */
	int no_ssl;
	unsigned threads;        /* 0: MSE_MANIFEST_APP_THREADS */
	/* --threads-max; 0: not passed (manifests of before it, rendered
	 * again bit for bit to recompute their MRENCLAVE) */
	unsigned threads_max;
	/* --metrics HOST:PORT (docs/metrics.md); NULL: not passed. Never for a
	 * replica: its address is its own, $MSE_REPLICA_METRICS (passthrough). */
	const char *metrics;
	/*
	 * A replica of a coordinator (64 lowercase hex digits): argv holds
	 * --coordinator-mrenclave and only what every replica of the package
	 * shares (application, --san, --size, threads), so all replicas have
	 * one MRENCLAVE; uuid, host, port, subject and expiration are not used.
	 * The coordinator's address, the replica's address and name and the
	 * PCCS come through passthrough environment variables (MSE_COORDINATOR,
	 * MSE_REPLICA_LISTEN, MSE_REPLICA_ID, MSE_REPLICA_METRICS, MSE_PCCS_URL), not
	 * measured.
	 */
	const char *coordinator_mrenclave;
	/*
	 * A replica that also trusts quotes chaining to this simulation root
	 * CA (its DER in lowercase hex: --trust-sim-root, in the measured argv,
	 * so the MRENCLAVE says so). UNSAFE outside tests: the owner's `mse
	 * deploy --replicas N --sgx --accept-simulation-quotes` with the Gramine
	 * stand-in. NULL: none (an SGX replica trusts only Intel's root).
	 */
	const char *sim_root_hex;
};

struct mse_manifest_opts {
	struct mse_manifest_args args;
	uint32_t size_mb;           /* sgx.enclave_size: a power of two, >= 256 */
	unsigned isvprodid, isvsvn; /* 0..65535 */
	int debug;                  /* sgx.debug: never for production (mse verify refuses it) */
};

/*
 * mse-coordinator under SGX (`mse coordinator start --sgx`): the same
 * directory layout (the instance directory is the tools' working directory)
 * with the coordinator's binary, its sealed state in an encrypted mount keyed
 * to MRENCLAVE, and its public files (ratls.pem, coordinator.json) in a plain
 * one the operator reads. loader.argv holds the owner's public key, so
 * MRENCLAVE depends on it (`mse coordinator measure --sgx` recomputes it);
 * the listen address and the PCCS URL are not measured (passthrough
 * environment: MSE_COORDINATOR_LISTEN, MSE_PCCS_URL).
 */
#define MSE_MANIFEST_COORD_ENTRY "/mse-coordinator"
#define MSE_MANIFEST_COORD_BINARY "mse-coordinator" /* a copy of the coordinator that runs */
#define MSE_MANIFEST_COORD_STATE "/state"           /* encrypted, _sgx_mrenclave */
#define MSE_MANIFEST_COORD_INFO "/info"             /* plain: what the operator reads */
#define MSE_MANIFEST_COORD_THREADS 4                /* the API server's workers */
#define MSE_MANIFEST_COORD_SIZE_MB 512

struct mse_manifest_coord_opts {
	const char *owner_key;      /* 64 hex digits, measured */
	const char *sim_root_hex;   /* --trust-sim-root HEX in the measured argv (UNSAFE
				       outside tests; see mse_manifest_args); NULL: none */
	uint32_t size_mb;           /* sgx.enclave_size; 0: MSE_MANIFEST_COORD_SIZE_MB */
	unsigned isvprodid, isvsvn; /* 0: 1 */
	int debug;
};

/* sgx.max_threads for these arguments: threads_max (or threads) + the I/O
 * threads + the ASGI loop + the others (MSE_MANIFEST_*_THREADS). */
unsigned mse_manifest_max_threads(const struct mse_manifest_args *a);
/* Renders the manifest template. *out is malloc'd NUL-terminated text. */
int mse_manifest_render(const struct mse_manifest_opts *o, char **out, struct mse_err *err);
/* The replica's SGX enclave size when none is given (as mse spawn --sgx). */
#define MSE_MANIFEST_REPLICA_SIZE_MB 4096
/*
 * The manifest options of an SGX replica of one package on one coordinator:
 * the one place both the operator (mse coordinator replica --sgx) and the
 * owner (mse coordinator manifest --sgx) take them from, so they measure
 * the same enclave. isvprodid/isvsvn 0: 1; sim_root_hex may be NULL (see
 * mse_manifest_args). The strings are borrowed.
 */
struct mse_manifest_replica {
	const char *application, *san, *coord_mre_hex, *sim_root_hex;
	uint32_t size_mb;
	unsigned isvprodid, isvsvn;
};
void mse_manifest_replica_opts(struct mse_manifest_opts *mo, const struct mse_manifest_replica *r);
/* Renders the coordinator's manifest template. *out is malloc'd NUL-terminated text. */
int mse_manifest_render_coordinator(const struct mse_manifest_coord_opts *o, char **out,
				    struct mse_err *err);

#endif
