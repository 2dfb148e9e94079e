/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_instance — the operator's record of one spawned enclave.
 *
 * Each instance NAME has a state directory, $XDG_STATE_HOME/mse/NAME
 * (default ~/.local/state/mse/NAME), holding:
 *   state.json     what `run`, `status`, `logs`, `stop`, `restart` need (below)
 *   bootstrap.log  the enclave's stdout and stderr
 *   workspace/     the enclave's file system in simulation (HOME, code, keys)
 * state.json is written atomically; it holds no secret (the uuid is not a
 * secret from the operator: MSE's operator chooses it).
 *
 * A struct mse_instance is caller-owned and fixed-size: no allocation.
 */
#ifndef MSE_INSTANCE_H
#define MSE_INSTANCE_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_INSTANCE_NAME_MAX 64

enum mse_instance_mode { MSE_MODE_SIMULATION, MSE_MODE_SGX };

struct mse_instance {
	char name[MSE_INSTANCE_NAME_MAX + 1];
	char dir[PATH_MAX];       /* state directory */
	char workspace[PATH_MAX]; /* enclave workspace (simulation) */
	char package[PATH_MAX];   /* the package it was spawned from */
	char app_dir[PATH_MAX];   /* where the encrypted code was unpacked */
	char log_path[PATH_MAX];
	char host[256];           /* address the enclave listens on */
	char san[256];            /* certificate subject alternative name */
	char subject[512];        /* certificate subject (RFC 4514) */
	char application[256];    /* module:variable */
	char healthcheck[256];    /* health-check path, from the package */
	char uuid[37];
	char cert_mode[16];       /* "ratls", "certificate" or "no-ssl" */
	char certificate[PATH_MAX]; /* full chain, in "certificate" mode */
	enum mse_instance_mode mode;
	uint16_t port;
	pid_t pid;                /* 0 when not running */
	int64_t expiration;       /* certificate expiration, UNIX seconds */
	uint32_t size_mb;         /* enclave size */
	int64_t created;
	/* SGX (from the SIGSTRUCT gramine-sgx-sign wrote; "" in simulation) */
	char mrenclave[65];
	char mrsigner[65];
	char gramine_version[128]; /* `gramine-sgx --version` */
	uint16_t isvprodid, isvsvn;
	/* mse-bootstrap --threads / --threads-max; 0: the defaults (optional
	 * in state.json) */
	unsigned threads, threads_max;
	/*
	 * "" for a stand-alone enclave; "coordinator" (mse-coordinator, its
	 * --state-dir is the workspace, probed on GET /status) or "replica"
	 * (mse-bootstrap --coordinator-mrenclave, probed through the CA the
	 * coordinator gave it, workspace/ca.pem).
	 */
	char role[16];
	char coordinator[300]; /* replica: the coordinator's HOST:PORT ($MSE_COORDINATOR) */
	char pccs_url[512];    /* SGX coordinator: its PCCS ($MSE_PCCS_URL; "" = QCNL's) */
	/*
	 * mse-bootstrap's Prometheus listener, "HOST:PORT" ("[v6]:PORT"), "" for
	 * none (docs/metrics.md). A stand-alone enclave gets it as --metrics (in
	 * the measured loader.argv under SGX); a replica in simulation as
	 * --metrics, under SGX as $MSE_REPLICA_METRICS (per replica: never
	 * measured). Optional in state.json.
	 */
	char metrics[300];
};

/* Validates an instance name: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
int mse_instance_name_ok(const char *name, struct mse_err *err);
/* The root of all state directories ($XDG_STATE_HOME/mse or ~/.local/state/mse). */
int mse_instance_root(char *out, size_t size, struct mse_err *err);
/* Fills inst->dir for NAME (does not create it). */
int mse_instance_locate(struct mse_instance *inst, const char *name, struct mse_err *err);
/* Creates the state directory (0700); fails if it already holds an instance. */
int mse_instance_create(struct mse_instance *inst, struct mse_err *err);
int mse_instance_save(const struct mse_instance *inst, struct mse_err *err);
/* Loads NAME's state.json; a missing instance is an error naming it. */
int mse_instance_load(struct mse_instance *inst, const char *name, struct mse_err *err);
/* 1 if inst->pid is a live mse-bootstrap process (not a recycled pid). */
int mse_instance_alive(const struct mse_instance *inst);
/*
 * 1 if inst's process is gone for good: not alive at four reads 100 ms
 * apart. While a process execs (gramine-sgx's script its loader, an
 * interpreter its program) its command line can read empty for a moment,
 * and one "not alive" then would wrongly count a starting enclave as dead.
 */
int mse_instance_gone(const struct mse_instance *inst);
/*
 * Stops the process: SIGTERM, then SIGKILL after timeout_ms. Clears pid and
 * saves. Not running is not an error.
 */
int mse_instance_stop(struct mse_instance *inst, int timeout_ms, struct mse_err *err);
/* Removes the whole state directory (workspace and logs included). */
int mse_instance_remove(struct mse_instance *inst, struct mse_err *err);
/*
 * Lists instance names, sorted. *names is malloc'd: release it with
 * mse_instance_names_free.
 */
int mse_instance_list(char ***names, size_t *count, struct mse_err *err);
void mse_instance_names_free(char **names, size_t count);
const char *mse_instance_mode_name(enum mse_instance_mode m);

/*
 * Starts the enclave process: `exe` with argv (NULL-terminated, argv[0]
 * included), detached in its own session, in the state directory for SGX
 * (gramine-sgx resolves the manifest's relative file: URIs from there), stdin from /dev/null, stdout and
 * stderr appended to inst->log_path. Records the pid and the argv (in
 * <dir>/argv, NUL-separated, so `restart` can start it again) and saves.
 */
int mse_instance_launch(struct mse_instance *inst, const char *exe, char *const argv[],
			struct mse_err *err);
/* "enclave", "coordinator" or "replica". */
const char *mse_instance_role(const struct mse_instance *inst);
/* Starts it again with the recorded executable and argv (a replica with
 * MSE_COORDINATOR set to inst->coordinator). */
int mse_instance_relaunch(struct mse_instance *inst, struct mse_err *err);

/* What `mse status` reports, as MSE does. */
enum mse_instance_status {
	MSE_STATUS_STOPPED,      /* not running, stopped on purpose */
	MSE_STATUS_ON_ERROR,     /* not running, but it should be: it died */
	MSE_STATUS_INITIALIZING, /* running, not answering yet */
	MSE_STATUS_WAITING,      /* configuration server: waiting secret keys */
	MSE_STATUS_RUNNING,      /* the app answers its health check with a 2xx */
	MSE_STATUS_UNHEALTHY,    /* the app answers its health check, but not with a 2xx */
};
/* Healthy means a 2xx answer on the health-check path: status, deploy, localtest, test. */
int mse_instance_healthy_status(long http_status);
const char *mse_instance_status_name(enum mse_instance_status s);
/*
 * Probes a GET on the health-check path: through the pinned <dir>/ratls.pem
 * (and, after provisioning, the owner's certificate or plain HTTP in those
 * modes). Nothing secret is sent. detail (may be NULL) receives why.
 */
enum mse_instance_status mse_instance_probe(const struct mse_instance *inst, char *detail,
					    size_t size);
/*
 * The last `lines` lines of the enclave's log (at most size - 1 bytes, the
 * end kept), "" if it cannot be read.
 */
void mse_instance_log_tail(const char *log_path, int lines, char *out, size_t size);
/* <dir>/ratls.pem: the certificate captured at spawn (the operator's copy). */
void mse_instance_ratls_path(const struct mse_instance *inst, char *out, size_t size);

/* A random (version 4) UUID, lowercase, 36 characters + NUL. */
void mse_instance_new_uuid(char out[37]);
/* A free TCP port on host (binds port 0 and reads what the kernel chose). */
int mse_instance_free_port(const char *host, uint16_t *port, struct mse_err *err);
/*
 * The metrics address of a new instance from spec "HOST:PORT" (HOST a
 * numeric address; option names the option in errors, e.g. "--metrics"):
 * out receives "HOST:PORT" ("[HOST]:PORT" for IPv6) with a port that can be
 * bound now, is not app_port and, when searching, is no other instance's
 * recorded metrics port. PORT 0: a free one. search (replicas, each its own
 * port): PORT, else the first free one above it (at most 256 tried); without
 * search, PORT itself or an error saying it is in use.
 */
int mse_instance_metrics_addr(const char *option, const char *spec, uint16_t app_port, int search,
			      char *out, size_t size, struct mse_err *err) MSE_MUST_CHECK;
/*
 * The mse-bootstrap to run: $MSE_BOOTSTRAP if set, else the one installed
 * beside the running `mse` executable.
 */
int mse_instance_bootstrap_path(char *out, size_t size, struct mse_err *err);
/*
 * The mse-bootstrap installed beside the running `mse`, whatever
 * $MSE_BOOTSTRAP says: what a verifier expects by default (the variable
 * chooses what an operator runs, never what a code provider trusts).
 */
int mse_instance_installed_bootstrap(char *out, size_t size, struct mse_err *err);
/* 1 if this machine has an SGX device (/dev/sgx_enclave or /dev/sgx/enclave). */
int mse_instance_sgx_device(void);

#endif
