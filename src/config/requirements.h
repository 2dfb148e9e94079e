/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_requirements — checks an app's requirements.txt against the Python
 * the app will run on.
 *
 * There is no pip inside an enclave and no PyPI here: every requirement must
 * already be installed (from Debian's python3-* packages) for the
 * interpreter mse-c embeds. This reads the distribution names and version
 * specifiers of requirements.txt (PEP 508: `name[extras] spec ; marker`),
 * asks that interpreter (importlib.metadata, packaging.specifiers) what it
 * has, and reports each missing or mismatched one by name and line, before
 * anything starts.
 */
#ifndef MSE_REQUIREMENTS_H
#define MSE_REQUIREMENTS_H

#include <stddef.h>

#include "common/err.h"

struct mse_requirement {
	char name[128];    /* distribution name as written */
	char spec[256];    /* version specifier, "" if none */
	int line;          /* 1-based line in requirements.txt */
};

/*
 * Parses requirements.txt text. *out is malloc'd (free()). Option lines
 * (-r, -e, --index-url…) and URLs are errors: an enclave installs nothing.
 */
int mse_requirements_parse(const char *text, size_t len, const char *filename,
			   struct mse_requirement **out, size_t *count, struct mse_err *err);
/*
 * Checks every requirement of the file at path against `python` (an
 * interpreter path; NULL: $MSE_PYTHON or /usr/bin/python3). Returns 0 when
 * all are satisfied; -1 with err listing every missing or mismatched one.
 * A missing file means no requirements.
 */
int mse_requirements_check(const char *path, const char *python, struct mse_err *err);

#endif
