/* SPDX-License-Identifier: Apache-2.0 */
/* mse stop NAME [--remove] */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "operator/instance.h"

static const char usage[] =
	"Usage: mse stop NAME [--remove]\n"
	"\n"
	"Stop the enclave NAME: SIGTERM (the app server finishes in-flight requests),\n"
	"then SIGKILL after 10 seconds. Its state directory stays, so 'mse restart NAME'\n"
	"can start it again; a provisioned enclave then serves again without new secrets.\n"
	"\n"
	"Options:\n"
	"  --remove    also delete its state directory: workspace (decrypted code,\n"
	"              secrets), keys, logs. Nothing of the instance is left.\n"
	"  -h, --help  show this help\n";

int cmd_stop(int argc, char **argv)
{
	static const struct option opts[] = {
		{"remove", no_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'}, {0}};
	struct mse_instance inst;
	struct mse_err err = {0};
	int remove = 0, c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		}
		if (c == 'r')
			remove = 1;
		else
			return cli_usage_error("stop", "unknown option");
	}
	if (optind + 1 != argc)
		return cli_usage_error("stop", "expected one instance NAME");
	if (mse_instance_load(&inst, argv[optind], &err) != 0)
		return cli_fail("stop", &err);
	if (mse_instance_stop(&inst, 10000, &err) != 0)
		return cli_fail("stop", &err);
	if (remove) {
		if (mse_instance_remove(&inst, &err) != 0)
			return cli_fail("stop", &err);
		printf("%s: stopped and removed (%s)\n", inst.name, inst.dir);
	} else {
		printf("%s: stopped\n", inst.name);
	}
	return MSE_EXIT_OK;
}
