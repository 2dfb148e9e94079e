/* SPDX-License-Identifier: Apache-2.0 */
/* mse test NAME — the app's own tests against its running enclave. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "codeprovider/apptest.h"
#include "operator/instance.h"

static const char usage[] =
	"Usage: mse test NAME [--ratls RATLS.pem] [--json]\n"
	"\n"
	"Run the app's tests (tests.tar of its package, with the package's tests_cmd,\n"
	"e.g. pytest) against the running enclave NAME. The tests get:\n"
	"  TEST_REMOTE_URL     https://<san>:<port>\n"
	"  REQUESTS_CA_BUNDLE  the pinned certificate (also TEST_CA_BUNDLE), so Python\n"
	"                      'requests' verifies the enclave's certificate\n"
	"First the health check must answer a 2xx through that certificate (healthy\n"
	"means a 2xx, as in 'mse status'); otherwise the tests are not run.\n"
	"\n"
	"Options:\n"
	"  --ratls FILE   the verified certificate (default: the one captured at spawn)\n"
	"  --json         the tests' output to stderr; one JSON object on stdout:\n"
	"                 {\"ok\", \"name\", \"exit_status\"} (+ \"error\" when they fail)\n"
	"  -h, --help     show this help\n"
	"\n"
	"Exit status: the tests' exit status.\n";

static void announce(void *ctx, const char *cmd, const char *url)
{
	(void)ctx;
	printf("running '%s' against %s\n", cmd, url);
	fflush(stdout);
}

int cmd_test(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ratls", required_argument, NULL, 'r'}, {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'}, {0}};
	char ratls[PATH_MAX + 16];
	const char *ratls_opt = NULL;
	struct mse_apptest_opts ao = {0};
	struct mse_instance inst;
	struct mse_err err = {0};
	int c, status = 1, json = 0, saved, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		}
		if (c == 'j') {
			json = 1;
			continue;
		}
		if (c != 'r')
			return cli_usage_error("test", "unknown option");
		ratls_opt = optarg;
	}
	if (optind + 1 != argc)
		return cli_usage_error("test", "expected one instance NAME");
	if (mse_instance_load(&inst, argv[optind], &err) != 0)
		return json ? cli_json_fail(&err) : cli_fail("test", &err);
	if (ratls_opt && !realpath(ratls_opt, ratls)) {
		mse_err_field(&err, "--ratls", "%s: no such file", ratls_opt);
		return json ? cli_json_fail(&err) : cli_fail("test", &err);
	}
	if (!ratls_opt)
		mse_instance_ratls_path(&inst, ratls, sizeof(ratls));
	ao.ratls_pem = ratls;
	ao.announce = announce;
	/* --json: the tests' own output goes to stderr, the JSON object alone to stdout. */
	saved = json ? cli_stdout_to_stderr() : -1;
	rc = mse_apptest_run(&inst, &ao, &status, &err);
	cli_stdout_restore(saved);
	if (rc != 0)
		return json ? cli_json_fail(&err) : cli_fail("test", &err);
	if (json) {
		json_t *o = cli_json_new(status == 0);

		cli_json_str(o, "name", inst.name);
		json_object_set_new(o, "exit_status", json_integer(status));
		if (status != 0) {
			mse_err_clear(&err);
			mse_err_step(&err, "test");
			mse_err_set(&err, "the tests failed (exit status %d)", status);
			json_object_set_new(o, "error", cli_json_error(&err));
		}
		cli_json_print(o);
		return status == 0 ? MSE_EXIT_OK : MSE_EXIT_FAIL;
	}
	if (status != 0)
		return cli_failf("test", "the tests failed (exit status %d)", status);
	printf("%s: tests passed\n", inst.name);
	return MSE_EXIT_OK;
}
