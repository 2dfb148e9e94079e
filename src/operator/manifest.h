/*
 * mse_manifest — the Gramine manifest template and argv file for an SGX
 * instance (`mse spawn --sgx`).
 *
 * The template is rendered by `gramine-manifest` (it resolves
 * {{ gramine.libos }}, {{ gramine.runtimedir() }} and {{ arch_libdir }}),
 * signed by `gramine-sgx-sign` and run by `gramine-sgx`. What it pins, per
 * ../shared/ARCHITECTURE.md:
 *   - encrypted mounts keyed to MRENCLAVE (`_sgx_mrenclave`) for $HOME
 *     (/root), /key and /mse-app, so only this exact enclave reads them;
 *   - a tmpfs /tmp;
 *   - sys.disallow_subprocesses (an enclave cannot fork or exec);
 *   - sgx.enclave_size from --size; sgx.remote_attestation = "dcap";
 *   - trusted files: the bootstrap, Gramine's runtime, the system and
 *     Python libraries, the encrypted code and the argv file — all measured
 *     into MRENCLAVE.
 * See https://gramine.readthedocs.io/en/stable/manifest-syntax.html.
 */
#ifndef MSE_MANIFEST_H
#define MSE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct mse_manifest_opts {
	const char *bootstrap_path; /* absolute path of mse-bootstrap */
	const char *app_dir;        /* host directory of the encrypted code (mounted at /app) */
	const char *workspace;      /* host directory backing the encrypted mounts */
	uint32_t size_mb;           /* enclave size, a power of two, >= 256 */
	unsigned max_threads;       /* 0: default 64 */
	int debug;                  /* sgx.debug: never for production */
};

/* Renders the manifest template. *out is malloc'd NUL-terminated text. */
int mse_manifest_render(const struct mse_manifest_opts *o, char **out, struct mse_err *err);
/*
 * Gramine's argv file (loader.argv_src_file): each argument followed by a
 * NUL byte, as `gramine-argv-serializer` writes it. *out is malloc'd.
 */
int mse_manifest_argv(const char *const *argv, size_t argc, uint8_t **out, size_t *len,
		      struct mse_err *err);

#endif
