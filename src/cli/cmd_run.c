/* SPDX-License-Identifier: Apache-2.0 */
/* mse run NAME — send the code key and secrets to a verified enclave. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "operator/instance.h"
#include "codeprovider/provision.h"

static const char usage[] =
	"Usage: mse run NAME --ratls RATLS.pem [--key FILE] [--secrets FILE]\n"
	"               [--sealed-secrets FILE] [--ssl-key FILE]\n"
	"\n"
	"Provision the enclave NAME: send its uuid with the code key and secrets to its\n"
	"configuration server, which decrypts the code and starts the app on the same\n"
	"port. The connection is pinned to RATLS.pem, the trusted certificate that\n"
	"'mse verify' wrote: a server with any other key is refused before anything is\n"
	"sent. Nothing is sent either unless the server answers 'Mse-Status: Waiting'\n"
	"(an already running app never receives the uuid or the secrets).\n"
	"\n"
	"Options:\n"
	"  --ratls FILE           the verified certificate (required)\n"
	"  --key FILE             the 32-byte code key (from 'mse package'); omit it when\n"
	"                         the sealed secrets carry code_secret_key, so the\n"
	"                         operator never sees it\n"
	"  --secrets FILE         JSON written to $SECRETS_PATH (readable by the operator)\n"
	"  --sealed-secrets FILE  output of 'mse seal': opened inside the enclave only,\n"
	"                         written to $SEALED_SECRETS_PATH\n"
	"  --ssl-key FILE         private key of the owner's certificate ('--certificate' mode)\n"
	"  --timeout S            request timeout (default 60)\n"
	"  --json                 one JSON object on stdout: {\"ok\": true, \"name\", \"url\"}\n"
	"                         or {\"ok\": false, \"error\": {...}}\n"
	"  -h, --help             show this help\n";

int cmd_run(int argc, char **argv)
{
	enum { O_RATLS = 256, O_KEY, O_SECRETS, O_SEALED, O_SSLKEY, O_TIMEOUT };
	static const struct option opts[] = {{"ratls", required_argument, NULL, O_RATLS},
					     {"key", required_argument, NULL, O_KEY},
					     {"secrets", required_argument, NULL, O_SECRETS},
					     {"sealed-secrets", required_argument, NULL, O_SEALED},
					     {"ssl-key", required_argument, NULL, O_SSLKEY},
					     {"timeout", required_argument, NULL, O_TIMEOUT},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	struct mse_provision_opts po = {0};
	struct mse_instance inst;
	struct mse_err err = {0};
	int c, json = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		uint64_t v;

		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		case 'j': json = 1; break;
		case O_RATLS: po.ratls_pem = optarg; break;
		case O_KEY: po.key_path = optarg; break;
		case O_SECRETS: po.secrets_path = optarg; break;
		case O_SEALED: po.sealed_path = optarg; break;
		case O_SSLKEY: po.ssl_key_path = optarg; break;
		case O_TIMEOUT:
			if (cli_num("run", "timeout", optarg, 1, 86400, &v))
				return MSE_EXIT_USAGE;
			po.timeout_ms = (long)v * 1000;
			break;
		default:
			return cli_usage_error("run", "unknown option");
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("run", "expected one instance NAME");
	if (!po.ratls_pem)
		return cli_usage_error("run", "--ratls is required: the ratls.pem that 'mse verify' wrote");
	if (mse_instance_load(&inst, argv[optind], &err) != 0)
		return json ? cli_json_fail(&err) : cli_fail("run", &err);
	if (!mse_instance_alive(&inst)) {
		if (json)
			return cli_json_failf("status", "%s is not running (see 'mse status %s')", inst.name,
					      inst.name);
		return cli_failf("run", "%s is not running (see 'mse status %s')", inst.name, inst.name);
	}
	if (mse_provision(&inst, &po, &err) != 0)
		return json ? cli_json_fail(&err) : cli_fail("run", &err);
	if (json) {
		json_t *o = cli_json_new(1);
		char url[600];

		snprintf(url, sizeof(url), "https://%s:%u", inst.san, (unsigned)inst.port);
		cli_json_str(o, "name", inst.name);
		cli_json_str(o, "url", url);
		cli_json_print(o);
		return MSE_EXIT_OK;
	}
	printf("%s: provisioned; the app starts on https://%s:%u\n", inst.name, inst.san,
	       (unsigned)inst.port);
	return MSE_EXIT_OK;
}
