/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_doctor — what `mse doctor` checks on this machine before anything is
 * spawned or verified, each with OK / WARN / FAIL and the fix:
 *
 *   cpu            CPUID leaf 7 (SGX, FLC) and leaf 0x12 (SGX1, SGX2, EPC size)
 *   sgx_enclave    /dev/sgx_enclave: a character device we can open read-write
 *   sgx_provision  /dev/sgx_provision: the same (DCAP quotes need it)
 *   aesm           the AESM socket /var/run/aesmd/aesm.socket
 *   qcnl           /etc/sgx_default_qcnl.conf: pccs_url, use_secure_cert
 *   pccs           whether that PCCS answers (GET .../rootcacrl, 3 s)
 *   collateral     the collateral cache (~/.cache/mse/collateral) and expiry
 *   gramine        gramine-sgx on PATH and its version
 *   python         the Python the enclave embeds (libpython), Flask's version
 *   flask
 *   simulation     the simulation root ($MSE_SIM_DIR) and its validity
 *   clock          the system clock (against the PCCS's Date header if any)
 *
 * Roles: the code provider needs python, flask, qcnl/pccs/collateral (to
 * verify), simulation and clock; the operator all of them. A machine without
 * SGX is not a failure: it is told so and pointed to simulation.
 *
 * For tests, the files are read under opts->root (a fake tree: dev/,
 * var/run/aesmd/, etc/, usr/lib/python3/dist-packages/), and CPUID values
 * can come from a file instead of the CPU (opts->cpuid_file, "LEAF SUBLEAF
 * EAX EBX ECX EDX" in hex per line; absent leaves read as zero).
 *
 * Ownership: opts and report are caller-owned; nothing outlives the call.
 */
#ifndef MSE_DOCTOR_H
#define MSE_DOCTOR_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"

enum mse_doctor_role { MSE_DOCTOR_ALL = 0, MSE_DOCTOR_CODEPROVIDER, MSE_DOCTOR_OPERATOR };
enum mse_doctor_status { MSE_DOCTOR_OK = 0, MSE_DOCTOR_WARN, MSE_DOCTOR_FAIL };

#define MSE_DOCTOR_MAX_CHECKS 16

struct mse_doctor_check {
	char name[32];
	enum mse_doctor_status status;
	char detail[768]; /* what was found */
	char fix[512];    /* what to do; "" when OK */
};

struct mse_doctor_cpu {
	int sgx, sgx1, sgx2, flc;
	uint64_t epc_bytes;
	int max_enclave_bits_64; /* log2 of the largest enclave, 64-bit mode */
	int from_file;           /* values read from opts->cpuid_file */
};

struct mse_doctor_opts {
	enum mse_doctor_role role;
	const char *root;       /* prefix of every file read; NULL: "/" */
	const char *cpuid_file; /* test-only CPUID values; NULL: the CPU's */
	int pccs_timeout_s;     /* 0: 3 */
};

struct mse_doctor_report {
	struct mse_doctor_check checks[MSE_DOCTOR_MAX_CHECKS];
	size_t n;
	int fails, warns;
	struct mse_doctor_cpu cpu;
	char pccs_url[512]; /* from the QCNL config, "" if none */
	char python_version[64];
	char flask_version[64];
	char gramine_version[128];
	time_t now;
};

const char *mse_doctor_status_name(enum mse_doctor_status s); /* "OK", "WARN", "FAIL" */
const char *mse_doctor_role_name(enum mse_doctor_role r);     /* "all", "codeprovider", "operator" */
/* "codeprovider" / "operator"; -1 with err otherwise. */
int mse_doctor_parse_role(const char *s, enum mse_doctor_role *out, struct mse_err *err);

/*
 * Runs the checks of the role. 0 when they could be run (whatever they
 * found: see report->fails); -1 with err for a bad option (an unreadable
 * cpuid_file).
 */
int mse_doctor_run(const struct mse_doctor_opts *o, struct mse_doctor_report *r,
		   struct mse_err *err) MSE_MUST_CHECK;

#endif
