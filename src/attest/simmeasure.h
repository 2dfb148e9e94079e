/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_simmeasure — the simulation MRENCLAVE (docs/simulation.md has the
 * exact encoding, which is a wire format: the bootstrap computes it over
 * itself, and `mse verify --package` recomputes it from the package).
 *
 *   MRENCLAVE = SHA-256( "mse-c/sim-mrenclave/v1"
 *                        ‖ SHA-256(mse-bootstrap executable)
 *                        ‖ for each input argument, in evidence.json order
 *                          (subject, subject_alternative_name,
 *                          expiration_date, size, app_id, application):
 *                          u32le(len) ‖ UTF-8 text
 *                        ‖ tree hash of the app )
 *
 *   tree hash = SHA-256( u32le(number of files)
 *                        ‖ for each regular file, sorted bytewise by its
 *                          relative path ("dir/name", no "./"):
 *                          u32le(len(path)) ‖ path ‖ SHA-256(content) )
 *
 * The tree hash is the same whether computed from a directory (what the
 * bootstrap's --app-dir holds) or from a tar (the package's app.tar):
 * directories are implied, empty ones ignored; symlinks, devices and
 * paths that are absolute or contain ".." are refused.
 *
 * Nothing here allocates anything the caller must free.
 */
#ifndef MSE_SIMMEASURE_H
#define MSE_SIMMEASURE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_SIMMEASURE_TAG "mse-c/sim-mrenclave/v1"
#define MSE_SIMMEASURE_MAX_FILES 100000

/*
 * MSE's evidence.json input_args. Absent values are NULL (encoded as the
 * empty string); numbers are encoded as decimal text without sign or
 * leading zeros, 0 meaning absent (e.g. expiration_date in --certificate
 * mode).
 */
struct mse_sim_args {
	const char *subject;          /* RFC 4514, as given on the command line */
	const char *san;              /* subject_alternative_name */
	int64_t expiration;           /* expiration_date, UNIX seconds; 0 = absent */
	uint64_t size;                /* enclave size in MB; 0 = absent */
	const char *app_id;           /* the uuid */
	const char *application;      /* "module:variable" */
};

/* SHA-256 of a file's bytes (e.g. "/proc/self/exe" or the installed mse-bootstrap). */
int mse_simmeasure_file_sha256(const char *path, uint8_t out[32], struct mse_err *err) MSE_MUST_CHECK;
int mse_simmeasure_tree_dir(const char *dir, uint8_t out[32], struct mse_err *err) MSE_MUST_CHECK;
int mse_simmeasure_tree_tar(const char *tar_path, uint8_t out[32], struct mse_err *err) MSE_MUST_CHECK;
/* MRENCLAVE from its three parts. */
void mse_simmeasure_combine(const uint8_t bootstrap_sha256[32], const struct mse_sim_args *args,
			    const uint8_t tree_hash[32], uint8_t mrenclave[32]);
/*
 * MRENCLAVE of a bootstrap with that hash, those arguments and the app at
 * app_dir_or_tar (a directory, or a tar file such as the package's app.tar).
 */
int mse_simmeasure_compute(const uint8_t bootstrap_sha256[32], const struct mse_sim_args *args,
			   const char *app_dir_or_tar, uint8_t mrenclave[32],
			   struct mse_err *err) MSE_MUST_CHECK;

/*
 * Measurement v2 (docs/simulation.md), for the coordinator and its replicas:
 * replicas of one package must share one MRENCLAVE, so per-replica values
 * (uuid, expiration, subject, addresses) are not measured, and the identity
 * the enclave expects (the coordinator's MRENCLAVE, or the owner's key for
 * the coordinator itself) is:
 *
 *   MRENCLAVE = SHA-256( "mse-c/sim-mrenclave/v2"
 *                        ‖ SHA-256(executable)
 *                        ‖ u32le(number of arguments)
 *                        ‖ for each (name, value), in the order below:
 *                          u32le(len(name)) ‖ name ‖ u32le(len(value)) ‖ value
 *                        ‖ tree hash of the app, or 32 zero bytes if none )
 *
 *   replica (mse-bootstrap --coordinator-mrenclave):
 *     role=replica, application=MODULE:VAR, size=decimal MB or "",
 *     coordinator_mrenclave=64 lowercase hex digits; tree hash of the app
 *   coordinator (mse-coordinator --owner-key):
 *     role=coordinator, owner_key=64 lowercase hex digits (Ed25519); no app
 */
#define MSE_SIMMEASURE_TAG_V2 "mse-c/sim-mrenclave/v2"

struct mse_sim_arg {
	const char *name;
	const char *value;
};

void mse_simmeasure_v2(const uint8_t exe_sha256[32], const struct mse_sim_arg *args, size_t n,
		       const uint8_t *tree_hash /* 32 bytes or NULL */, uint8_t mrenclave[32]);
/* The replica's v2 MRENCLAVE; app_dir_or_tar as for mse_simmeasure_compute. */
int mse_simmeasure_replica(const uint8_t exe_sha256[32], const char *application,
			   uint64_t size_mb, const uint8_t coordinator_mrenclave[32],
			   const char *app_dir_or_tar, uint8_t mrenclave[32],
			   struct mse_err *err) MSE_MUST_CHECK;
/* The coordinator's v2 MRENCLAVE. */
void mse_simmeasure_coordinator(const uint8_t exe_sha256[32], const uint8_t owner_pk[32],
				uint8_t mrenclave[32]);

#endif
