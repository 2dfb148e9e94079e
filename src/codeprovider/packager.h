/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_packager — the code provider packages a project: mse.toml, the code
 * directory that .mseignore keeps, the tests, a code key. This is what
 * `mse package` and the package step of `mse deploy` call, in-process.
 *
 * It loads the configuration (src/config/project.h), lists the code files
 * (src/config/ignore.h), makes or loads the 32-byte code key, and builds
 * the encrypted package (src/crypto/package.h). A new key is written first,
 * mode 0600, to OUTPUT/package_<name>_<ns>.key (a package whose key could
 * not be saved is useless) and removed again if the package fails.
 *
 * Ownership: the opts and result structs are caller-owned; nothing is
 * allocated that outlives the call. The key is wiped before return.
 */
#ifndef MSE_PACKAGER_H
#define MSE_PACKAGER_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "crypto/package.h"

struct mse_packager_opts {
	const char *config;      /* mse.toml (required) */
	const char *code_dir;    /* NULL: from mse.toml ([cloud] code, default mse_src) */
	const char *tests_dir;   /* NULL: mse.toml's tests directory if it exists (only when
				  * code_dir is NULL); else must exist */
	const char *output_dir;  /* required: created if missing */
	const char *key_path;    /* encrypt with this key file; NULL: a new key */
	const char *nonces_path; /* reuse these nonces (.nonces.json or MSE context.toml) */
	mse_package_progress progress; /* may be NULL */
	void *progress_ctx;
};

struct mse_packager_result {
	struct mse_package_result pkg; /* paths of the .tar and .nonces.json, counts, digest */
	char key_path[PATH_MAX];       /* the key used: opts->key_path or the new key file */
	char name[256];                /* the app's name from mse.toml */
};

/*
 * Packages the project. On a configuration error, every error found in
 * mse.toml is appended to errs (when not NULL, caller-initialised and
 * freed) and err holds the first; otherwise err names the file or step at
 * fault.
 */
int mse_packager_build(const struct mse_packager_opts *o, struct mse_packager_result *res,
		       struct mse_errlist *errs, struct mse_err *err) MSE_MUST_CHECK;

#endif
