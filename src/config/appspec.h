/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_appspec — the app named by python_application, as gunicorn accepts it:
 *
 *   MODULE:VARIABLE              app:app, pkg.web:api.app
 *   MODULE:FACTORY(ARGUMENTS)    app:create_app(), app:create_app("prod", debug=False)
 *
 * MODULE is dot-separated Python identifiers, VARIABLE/FACTORY a dotted
 * attribute path, ARGUMENTS Python literals only (strings, numbers, True,
 * False, None, and tuples, lists, dicts and sets of them), positional then
 * NAME=literal; nothing is evaluated here. The WSGI loader calls FACTORY
 * with them (ast.literal_eval) at start-up and serves what it returns.
 *
 * A pure function over a string: `mse check`, `mse serve`, mse-bootstrap and
 * the WSGI loader use the same one.
 */
#ifndef MSE_APPSPEC_H
#define MSE_APPSPEC_H

#include <stddef.h>

#include "common/err.h"

#define MSE_APPSPEC_MAX 4096   /* longest python_application accepted */
#define MSE_APPSPEC_DEPTH 16   /* nesting of ( [ { in the arguments */

struct mse_appspec {
	size_t module_len; /* spec[0, module_len) is MODULE */
	size_t attr_off;   /* spec[attr_off, attr_off + attr_len) is VARIABLE or FACTORY */
	size_t attr_len;
	size_t call_off;   /* spec[call_off, len) is "(ARGUMENTS)"; call_off == len: no call */
	int call;          /* 1: FACTORY(...) */
};

/*
 * Parses spec (NUL-terminated). 0 on success; -1 with err naming the field
 * "python_application", what was expected, and the offending text (col is
 * the 1-based offset of the first bad character).
 */
int mse_appspec_parse(const char *spec, struct mse_appspec *out, struct mse_err *err);

#endif
