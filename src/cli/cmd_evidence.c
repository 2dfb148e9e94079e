/* SPDX-License-Identifier: Apache-2.0 */
/* mse evidence NAME --output DIR */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "operator/instance.h"
#include "operator/spawn.h"

static const char usage[] =
	"Usage: mse evidence NAME --output DIR [--pccs URL] [--signer-key PEM] [--json]\n"
	"\n"
	"Write DIR/evidence.json (MSE's schema: input arguments, RA-TLS certificate,\n"
	"CRLs, TCB info, QE identity, TCB signing certificate, signer key) and\n"
	"DIR/ratls.pem for the running enclave NAME, for the code provider to check\n"
	"with 'mse verify'. In simulation the collateral comes from the simulation\n"
	"root; with SGX, from the PCCS.\n"
	"\n"
	"Options:\n"
	"  --output DIR        where to write (required)\n"
	"  --pccs URL          PCCS base URL (sgx)\n"
	"  --signer-key PEM    the enclave signer's public key (default: the simulation's)\n"
	"  --json              one JSON object on stdout: {\"ok\": true, \"name\",\n"
	"                      \"evidence\", \"certificate\", \"mode\", \"simulation\"} or\n"
	"                      {\"ok\": false, \"error\": {\"step\", \"file\", \"field\", ...}}\n"
	"  -h, --help          show this help\n";

int cmd_evidence(int argc, char **argv)
{
	enum { O_OUTPUT = 256, O_PCCS, O_SIGNER };
	static const struct option opts[] = {{"output", required_argument, NULL, O_OUTPUT},
					     {"pccs", required_argument, NULL, O_PCCS},
					     {"signer-key", required_argument, NULL, O_SIGNER},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	const char *out = NULL, *pccs = NULL, *signer = NULL;
	char ev[PATH_MAX], pem[PATH_MAX];
	struct mse_instance inst;
	struct mse_err err = {0};
	int c, json = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		case 'j': json = 1; break;
		case O_OUTPUT: out = optarg; break;
		case O_PCCS: pccs = optarg; break;
		case O_SIGNER: signer = optarg; break;
		default:
			return cli_usage_error("evidence", "unknown option");
		}
	}
	if (optind + 1 != argc || !out)
		return cli_usage_error("evidence", "expected NAME and --output DIR");
	if (mse_instance_load(&inst, argv[optind], &err) != 0)
		return json ? cli_json_fail(&err) : cli_fail("evidence", &err);
	if (!mse_instance_alive(&inst)) {
		if (json)
			return cli_json_failf("status", "%s is not running (see 'mse status %s')", inst.name,
					      inst.name);
		return cli_failf("evidence", "%s is not running (see 'mse status %s')", inst.name, inst.name);
	}
	if (mse_spawn_wait_ready(&inst, 10, &err) != 0 ||
	    mse_spawn_write_evidence(&inst, out, pccs, signer, ev, sizeof(ev), pem, sizeof(pem), &err) != 0)
		return json ? cli_json_fail(&err) : cli_fail("evidence", &err);
	if (json) {
		json_t *o = cli_json_new(1);

		cli_json_str(o, "name", inst.name);
		cli_json_str(o, "evidence", ev);
		cli_json_str(o, "certificate", pem);
		cli_json_str(o, "mode", mse_instance_mode_name(inst.mode));
		json_object_set_new(o, "simulation", json_boolean(inst.mode == MSE_MODE_SIMULATION));
		cli_json_print(o);
		return MSE_EXIT_OK;
	}
	printf("%s\n%s\n", ev, pem);
	if (inst.mode == MSE_MODE_SIMULATION)
		printf("SIMULATION — not confidential\n");
	return MSE_EXIT_OK;
}
