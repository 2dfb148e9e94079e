/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_apptest — the app's own tests (tests.tar and tests_cmd of its
 * package) run by the code provider against a running enclave: `mse test`
 * and the test step of `mse deploy`.
 *
 * The tests run in a fresh temporary directory (removed afterwards) with
 * /bin/sh -c tests_cmd (default "pytest"), and get:
 *   TEST_REMOTE_URL     https://<san>:<port> (http:// in no-ssl mode)
 *   REQUESTS_CA_BUNDLE  the pinned certificate (also TEST_CA_BUNDLE)
 * plus the caller's env_extra. Their output goes to this process's stdout
 * and stderr. First, the health check must answer a 2xx through the
 * pinned certificate (healthy means a 2xx, as in `mse status`): an app that
 * answers 500 there is not tested as if it were up.
 */
#ifndef MSE_APPTEST_H
#define MSE_APPTEST_H

#include "common/buf.h"
#include "common/err.h"
#include "operator/instance.h"

struct mse_apptest_opts {
	const char *ratls_pem;       /* required: the verified certificate */
	char *const *env_extra;      /* NULL-terminated "NAME=VALUE" list, or NULL */
	/* Called once the command and URL are known, before the tests start. */
	void (*announce)(void *ctx, const char *cmd, const char *url);
	void *announce_ctx;
};

/*
 * Runs the tests. 0 when they could be run, with their exit status in
 * *status (0: passed); -1 with the reason when they could not.
 */
int mse_apptest_run(const struct mse_instance *inst, const struct mse_apptest_opts *o,
		    int *status, struct mse_err *err) MSE_MUST_CHECK;

#endif
