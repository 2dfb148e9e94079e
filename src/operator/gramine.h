/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_gramine — the Gramine tools, as their manual pages document them
 * (Gramine 1.8 and 1.9; 1.9 is the current stable release):
 *
 *   gramine-sgx --version            "Gramine 1.9 (…)"
 *   gramine-manifest -Darch_libdir=… mse.manifest.template mse.manifest
 *   gramine-sgx-sign --key KEY --manifest mse.manifest --output mse.manifest.sgx
 *                                    (writes the SIGSTRUCT to mse.sig)
 *   gramine-sgx DIR/mse              (reads DIR/mse.manifest.sgx and DIR/mse.sig;
 *                                    ignores further arguments)
 *
 * all run with the instance directory as the working directory (the
 * manifest's file: URIs are relative to it; see operator/manifest.h).
 *
 * The signer key is the operator's: an RSA-3072 private key with public
 * exponent 3, as SGX requires (`mse keygen --sgx-signer` makes one). There
 * is no built-in key. MRENCLAVE does not depend on the signer, so the code
 * provider recomputes it with a throw-away key (mse_gramine_measure).
 */
#ifndef MSE_GRAMINE_H
#define MSE_GRAMINE_H

#include <stddef.h>
#include <stdint.h>

#include "attest/sigstruct.h"
#include "common/err.h"
#include "operator/manifest.h"

#define MSE_GRAMINE_ARCH_LIBDIR "/lib/x86_64-linux-gnu"

struct mse_gramine_version {
	char text[128];          /* the first line of `gramine-sgx --version` */
	unsigned major, minor;
};

/* 1 if gramine-manifest, gramine-sgx-sign and gramine-sgx are all on $PATH. */
int mse_gramine_available(void);
/* The absolute path of PROGRAM on $PATH. */
int mse_gramine_which(const char *program, char *out, size_t size, struct mse_err *err);
/*
 * Runs `gramine-sgx --version` and checks it is a supported release
 * (1.8 or later in the 1.x series); the error says which was found.
 */
int mse_gramine_version(struct mse_gramine_version *v, struct mse_err *err) MSE_MUST_CHECK;
/*
 * Checks an operator signer key: a PEM RSA private key of 3072 bits with
 * exponent 3. mrsigner (may be NULL) receives SHA-256 of its little-endian
 * modulus.
 */
int mse_gramine_check_signer(const char *key_path, uint8_t mrsigner[32],
			     struct mse_err *err) MSE_MUST_CHECK;
/* Writes a new signer key to path (PEM, mode 0600, atomically; never overwrites). */
int mse_gramine_new_signer(const char *path, uint8_t mrsigner[32], struct mse_err *err) MSE_MUST_CHECK;
/* As mse_gramine_build, with the template already rendered (e.g. the coordinator's). */
int mse_gramine_build_text(const char *dir, const char *text, int debug, const char *key_path,
			   const char *log_path, struct mse_sigstruct *sig,
			   struct mse_err *err) MSE_MUST_CHECK;
/* Copies src to dst (mode 0755, atomically): the bootstrap the enclave runs. */
int mse_gramine_copy(const char *src, const char *dst, struct mse_err *err) MSE_MUST_CHECK;
/*
 * In dir (which holds mse-bootstrap and app/): writes mse.manifest.template
 * from mo, runs gramine-manifest and gramine-sgx-sign with key_path, and
 * loads and verifies mse.sig into *sig. The tools' output goes to log_path.
 */
int mse_gramine_build(const char *dir, const struct mse_manifest_opts *mo, const char *key_path,
		      const char *log_path, struct mse_sigstruct *sig, struct mse_err *err) MSE_MUST_CHECK;
/*
 * Recomputes MRENCLAVE for these inputs in a fresh temporary directory:
 * bootstrap copied as mse-bootstrap, app_tar unpacked into app/, a
 * throw-away signer key; removes everything afterwards.
 */
int mse_gramine_measure(const char *bootstrap, const char *app_tar,
			const struct mse_manifest_opts *mo, uint8_t mrenclave[32],
			struct mse_err *err) MSE_MUST_CHECK;

/*
 * The coordinator's MRENCLAVE, as mse_gramine_measure: coordinator copied as
 * mse-coordinator beside its manifest for mo (the owner's key), a throw-away
 * signer key, workspace/{state,info}; removes everything afterwards.
 */
int mse_gramine_measure_coordinator(const char *coordinator, const struct mse_manifest_coord_opts *mo,
				    uint8_t mrenclave[32], struct mse_err *err) MSE_MUST_CHECK;

#endif
