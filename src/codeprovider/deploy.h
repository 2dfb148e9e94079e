/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_deploy — the code provider's whole job on one machine, as a library
 * call: `mse deploy` prints its progress; other callers (JSON output, a
 * coordinator, tests) log it or collect it.
 *
 *   step 1 check     mse.toml (mse_project_load), requirements.txt against
 *                    the installed Python (mse_requirements_check)
 *   step 2 package   encrypt the code with a new code key (mse_packager_build)
 *                    into PROJECT/.mse/package.<time>/
 *   step 3 spawn     start the enclave with a fresh uuid (mse_spawn)
 *   step 4 evidence  its RA-TLS certificate and collateral (written by mse_spawn)
 *   step 5 verify    recompute MRENCLAVE from the package, verify quote,
 *                    collateral, TCB status and binding; save the trusted
 *                    ratls.pem in PROJECT/.mse/verified/ (mse_appverify)
 *   step 6 seal      secrets_to_seal.json + code key sealed to the enclave's
 *                    X25519 key (mse_provision_seal)
 *   step 7 run       provisioning through the pinned certificate (mse_provision)
 *   step 8 test      the health check answers, then the app's tests_cmd
 *                    (mse_instance_probe, mse_apptest_run)
 * Nothing secret leaves before step 5 succeeds. With replicas > 0 the
 * coordinator flow replaces steps 3-8 (see mse_deploy_opts.replicas; in
 * simulation or on SGX); the
 * code key and secrets leave only sealed to the verified coordinator. On any
 * failure the new enclave is stopped and removed (the end of its log
 * reported, the whole log copied to PROJECT/.mse/INSTANCE-bootstrap.log),
 * and this run's own package directory (created new by this run, never one
 * it found) and code key are deleted. The trusted certificate and evidence
 * land in PROJECT/.mse/verified/ and .mse/evidence/ only once the new
 * enclave passed.
 *
 * Ownership: opts and result are caller-owned; nothing allocated outlives
 * the call. The progress callback's strings live only during the call.
 */
#ifndef MSE_DEPLOY_H
#define MSE_DEPLOY_H

#include <limits.h>
#include <stdint.h>

#include "attest/tcb.h"
#include "common/buf.h"
#include "common/err.h"

enum mse_deploy_step {
	MSE_DEPLOY_NONE = 0,
	MSE_DEPLOY_CHECK,
	MSE_DEPLOY_PACKAGE,
	MSE_DEPLOY_SPAWN,
	MSE_DEPLOY_EVIDENCE,
	MSE_DEPLOY_VERIFY,
	MSE_DEPLOY_SEAL,
	MSE_DEPLOY_RUN,
	MSE_DEPLOY_TEST,
};
#define MSE_DEPLOY_STEPS 8

/* The step's name: "check", "package", … ("" for MSE_DEPLOY_NONE). */
const char *mse_deploy_step_name(enum mse_deploy_step s);

enum mse_deploy_event_kind {
	MSE_DEPLOY_EV_STEP,   /* a step starts; text says what it does */
	MSE_DEPLOY_EV_DETAIL, /* a fact learnt in the current step (a path, a value) */
	MSE_DEPLOY_EV_FAILED, /* the current step failed; err says why (before clean-up) */
	MSE_DEPLOY_EV_CLEANUP,/* what the clean-up after a failure did or could not do */
	MSE_DEPLOY_EV_LOG,    /* after a failure: the last lines of the enclave's log (text, multi-line) */
};

struct mse_deploy_event {
	enum mse_deploy_event_kind kind;
	enum mse_deploy_step step;
	const char *text;
	const struct mse_err *err; /* MSE_DEPLOY_EV_FAILED only */
};

typedef void (*mse_deploy_progress)(void *ctx, const struct mse_deploy_event *ev);

struct mse_deploy_opts {
	const char *project_dir; /* holds mse.toml; NULL: "." */
	const char *name;        /* instance name; NULL: the app's name */
	const char *san;         /* certificate name; NULL: localhost */
	uint16_t port;           /* 0: a free one */
	uint32_t size_mb;        /* enclave size; 0: 4096 */
	int days;                /* certificate validity; 0: 30 */
	/*
	 * Replace the running deployment of this name (instance NAME or NAME.N):
	 * the new one starts beside it as NAME.<N+1>, on another port; once it
	 * passed (verify, provisioning, health, tests) the old one is stopped and
	 * removed; if it fails, the old one is left as it was.
	 */
	int replace;
	int no_tests;            /* skip tests_cmd */
	int no_access_log;       /* the enclave logs no line per request */
	unsigned threads, threads_max; /* mse spawn --threads / --threads-max; 0: defaults */
	/*
	 * The app server's Prometheus metrics, "HOST:PORT" (docs/metrics.md);
	 * NULL: none. One enclave: that address (PORT 0: a free one). Replicas:
	 * each its own port, PORT or the first free one above it; NULL keeps
	 * what the replaced replicas had.
	 */
	const char *metrics;
	mse_deploy_progress progress; /* may be NULL */
	void *progress_ctx;
	struct mse_errlist *errs; /* every error of mse.toml goes here too; may be NULL */
	/* SGX (Gramine). Default: SGX if this machine has an SGX device. */
	int sgx;                 /* 1: SGX even without a device (e.g. the tests' Gramine stand-in) */
	const char *signer_key;  /* the operator's RSA-3072 e=3 key for gramine-sgx-sign (SGX) */
	const char *pccs_url;    /* collateral (SGX); NULL: the default PCCS */
	unsigned isvprodid, isvsvn; /* 0: 1 */
	const uint8_t *mrenclave;/* expected MRENCLAVE; NULL: recomputed (never the enclave's own) */
	int accept_simulation_quotes; /* UNSAFE outside tests: trust the local simulation root on SGX */
	/*
	 * replicas > 0: the coordinator flow instead of steps 3-8: spawn (or
	 * reuse) NAME-coordinator with the owner key of PROJECT/.mse/owner.key
	 * (made if missing), verify it against the MRENCLAVE measured from the
	 * installed mse-coordinator and that key, upload a manifest signed by
	 * that key (a higher seq when the coordinator already serves this
	 * deployment), fetch its CA into PROJECT/.mse/ca.pem, start
	 * NAME-1..NAME-N (replacing existing ones) and wait for each health
	 * check through the CA. SGX (sgx or a device): all under Gramine signed
	 * with signer_key; the coordinator's MRENCLAVE recomputed with
	 * gramine-sgx-sign and verified with the PCCS's collateral (pccs_url);
	 * the manifest accepts the replicas' SGX MRENCLAVE recomputed from the
	 * package and the signer key's MRSIGNER (isvprodid, isvsvn: the
	 * replicas' values, measured); accept_simulation_quotes as above, and
	 * the enclaves get --trust-sim-root (measured) for this machine's
	 * simulation root. mrenclave is refused (a single enclave's).
	 */
	unsigned replicas;
};

struct mse_deploy_result {
	enum mse_deploy_step failed_step; /* MSE_DEPLOY_NONE on success */
	char name[65];
	char host[256];
	char san[256];
	uint16_t port;
	char url[600];             /* https://SAN:PORT/HEALTHCHECK */
	char uuid[37];
	uint8_t mrenclave[32];
	char mrenclave_hex[65];
	char measured_from[4400];  /* where the expected MRENCLAVE came from */
	enum mse_tcb_status tcb_status;
	char advisories[1024];
	int simulation;            /* 1: simulated enclave, not confidential */
	char package_path[PATH_MAX];
	char key_path[PATH_MAX];
	char evidence_path[PATH_MAX];
	char ratls_path[PATH_MAX];
	char log_copy[PATH_MAX + 128]; /* the enclave's log kept after a failure, or "" */
	char log_tail[2048];       /* its last lines after a failure, or "" */
	/* the instances --replace stopped and removed once the new one passed */
	char replaced[8][65];
	size_t n_replaced;
	/* replicas > 0 */
	char ca_path[PATH_MAX + 32];    /* the coordinator's CA: curl --cacert */
	char coordinator[300];          /* HOST:PORT */
	uint16_t replica_ports[64];
	unsigned replicas;
	int sgx;                        /* under Gramine (coordinator and replicas) */
	char metrics[300];              /* the enclave's metrics address, "" for none */
	char replica_metrics[64][300];  /* each replica's, "" for none */
};

/*
 * Deploys the project. 0 on success (res filled); -1 with err holding the
 * reason and res->failed_step the step. Either way, every event went to
 * opts->progress first.
 */
int mse_deploy(const struct mse_deploy_opts *o, struct mse_deploy_result *res,
	       struct mse_err *err) MSE_MUST_CHECK;

#endif
