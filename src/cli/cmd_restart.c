/* SPDX-License-Identifier: Apache-2.0 */
/* mse restart NAME — start a stopped (or dead) enclave again, same arguments. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "operator/instance.h"
#include "operator/spawn.h"

static const char usage[] =
	"Usage: mse restart NAME [--timeout SECONDS]\n"
	"\n"
	"Stop the enclave NAME if it runs, then start mse-bootstrap again with the\n"
	"arguments it was spawned with (same uuid, port and workspace). Its keys are\n"
	"derived from the sealing key, so it comes back with the same X25519 key (sealed\n"
	"secrets still open) but a new TLS key and certificate, to verify again. An\n"
	"enclave that was provisioned serves its app again without new secrets; one\n"
	"that was not waits for 'mse run' again.\n"
	"\n"
	"Options:\n"
	"  --timeout S   how long to wait for it to answer (default 60)\n"
	"  -h, --help    show this help\n";

int cmd_restart(int argc, char **argv)
{
	static const struct option opts[] = {
		{"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'}, {0}};
	struct mse_instance inst;
	struct mse_err err = {0};
	enum mse_instance_status st = MSE_STATUS_INITIALIZING;
	char detail[1100];
	long timeout = 60;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		uint64_t v;

		if (c == 'h') {
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		}
		if (c != 't')
			return cli_usage_error("restart", "unknown option");
		if (cli_num("restart", "timeout", optarg, 1, 3600, &v))
			return MSE_EXIT_USAGE;
		timeout = (long)v;
	}
	if (optind + 1 != argc)
		return cli_usage_error("restart", "expected one instance NAME");
	if (mse_instance_load(&inst, argv[optind], &err) != 0)
		return cli_fail("restart", &err);
	if (mse_instance_stop(&inst, 10000, &err) != 0 || mse_instance_relaunch(&inst, &err) != 0)
		return cli_fail("restart", &err);
	/* A new start means a new RA-TLS key: capture the new certificate first
	 * (a replica serves its CA's certificate; a coordinator rewrites its own). */
	if (!inst.role[0] && mse_spawn_wait_ready(&inst, (int)timeout, &err) != 0)
		return cli_fail("restart", &err);
	for (long waited = 0, gone = 0; waited < timeout * 10; waited++) {
		st = mse_instance_probe(&inst, detail, sizeof(detail));
		/* While gramine-sgx execs its loader (or the stand-in its program) the
		 * process can look gone for a moment: confirmed before it counts. */
		if (st == MSE_STATUS_ON_ERROR && ++gone < 4) {
			usleep(100 * 1000);
			continue;
		}
		if (st != MSE_STATUS_ON_ERROR)
			gone = 0;
		if (st != MSE_STATUS_INITIALIZING)
			break;
		usleep(100 * 1000);
	}
	printf("%s: %s (pid %d)\n", inst.name, mse_instance_status_name(st), (int)inst.pid);
	if (!strcmp(inst.role, "replica"))
		printf("It attested to the coordinator at %s again and was provisioned by it.\n",
		       inst.coordinator);
	else if (!strcmp(inst.role, "coordinator"))
		printf("It restored its sealed state. Its RA-TLS certificate is new (same MRENCLAVE):\n"
		       "the owner verifies it again before 'mse coordinator set' or 'ca'.\n");
	else
		printf("Its RA-TLS certificate is new (a fresh TLS key; the sealing key is the same): the\n"
		       "pinned ratls.pem no longer matches. Verify it again and refresh the pin with\n"
		       "  mse verify %s        (in the project directory it was deployed from)\n"
		       "or, for a package deployed by hand, 'mse evidence %s --output DIR' then\n"
		       "'mse verify --package ... --evidence DIR/evidence.json --output ...'.\n",
		       inst.name, inst.name);
	if (st == MSE_STATUS_RUNNING || st == MSE_STATUS_WAITING)
		return MSE_EXIT_OK;
	return cli_failf("restart", "%s did not come back: %s (see 'mse logs %s')", inst.name,
			 detail, inst.name);
}
