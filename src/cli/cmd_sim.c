/* mse sim — manage the SGX simulation (see src/attest/sim.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "attest/sim.h"
#include "cli/cli.h"
#include "common/file.h"
#include "common/hex.h"

static const char usage_text[] =
	"Usage: mse sim init [--force] [--dir DIR]\n"
	"       mse sim path [--dir DIR]\n"
	"       mse sim quote --out FILE [--mrenclave HEX] [--mrsigner HEX]\n"
	"                     [--report-data HEX] [--isv-prod-id N] [--isv-svn N] [--dir DIR]\n"
	"\n"
	"SGX simulation: a local root CA, PCK chain, signed collateral and quoting enclave,\n"
	"so that attestation runs on machines without SGX. SIMULATION - not confidential.\n"
	"\n"
	"  init          create the simulation directory: root_ca.der/.pem, pck_ca.pem,\n"
	"                pck.pem, tcb_signing.pem, signer.pem, collateral/ (the layout\n"
	"                `mse verify --collateral DIR` reads) and keys/ (0600)\n"
	"  path          print the simulation directory\n"
	"  quote         write a simulated SGX quote v3 (for tests and tools)\n"
	"\n"
	"Options:\n"
	"  --dir DIR         simulation directory (default $MSE_SIM_DIR, else\n"
	"                    ~/.config/mse/sim)\n"
	"  --force           replace an existing simulation (old quotes stop verifying)\n"
	"  --out FILE        where `quote` writes the quote\n"
	"  --mrenclave HEX   32-byte MRENCLAVE (default zeros)\n"
	"  --mrsigner HEX    32-byte MRSIGNER (default: that of the simulation signer key)\n"
	"  --report-data HEX up to 64 bytes of report data (zero-padded)\n"
	"  --isv-prod-id N, --isv-svn N   enclave product ID and SVN (default 0)\n"
	"\n"
	"Exit status: 0 success, 1 failure, 2 usage error.\n";

static int hexarg(const char *name, const char *v, uint8_t *out, size_t max, size_t *n)
{
	size_t len = strlen(v);

	if (mse_hex_decode(out, max, n, v, len) != 0)
		return cli_usage_error("sim", "%s: expected at most %zu bytes of hex, got \"%s\"",
				       name, max, v);
	return 0;
}

int cmd_sim(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},       {"force", no_argument, NULL, 'f'},
		{"dir", required_argument, NULL, 'd'},  {"out", required_argument, NULL, 'o'},
		{"mrenclave", required_argument, NULL, 'e'},
		{"mrsigner", required_argument, NULL, 's'},
		{"report-data", required_argument, NULL, 'r'},
		{"isv-prod-id", required_argument, NULL, 'p'},
		{"isv-svn", required_argument, NULL, 'v'}, {NULL, 0, NULL, 0}};
	char dir[4096] = "";
	const char *sub, *out = NULL;
	int force = 0, c, have_mrsigner = 0;
	struct mse_sim_enclave enc;
	struct mse_err err;
	size_t n;

	mse_err_clear(&err);
	memset(&enc, 0, sizeof(enc));
	if (argc < 2)
		return cli_usage_error("sim", "expected a subcommand: init, path or quote");
	sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		fputs(usage_text, stdout);
		return MSE_EXIT_OK;
	}
	if (strcmp(sub, "init") != 0 && strcmp(sub, "path") != 0 && strcmp(sub, "quote") != 0)
		return cli_usage_error("sim", "unknown subcommand \"%s\" (init, path or quote)", sub);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc - 1, argv + 1, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return MSE_EXIT_OK;
		case 'f':
			force = 1;
			break;
		case 'd':
			if (snprintf(dir, sizeof(dir), "%s", optarg) >= (int)sizeof(dir))
				return cli_usage_error("sim", "--dir: path too long");
			break;
		case 'o':
			out = optarg;
			break;
		case 'e':
			if (hexarg("--mrenclave", optarg, enc.mrenclave, 32, &n) != 0 || n != 32)
				return cli_usage_error("sim", "--mrenclave: expected 64 hex digits");
			break;
		case 's':
			if (hexarg("--mrsigner", optarg, enc.mrsigner, 32, &n) != 0 || n != 32)
				return cli_usage_error("sim", "--mrsigner: expected 64 hex digits");
			have_mrsigner = 1;
			break;
		case 'r':
			if (hexarg("--report-data", optarg, enc.report_data, 64, &n) != 0)
				return MSE_EXIT_USAGE;
			break;
		case 'p':
		case 'v': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (!*optarg || *end || v > 0xffff)
				return cli_usage_error("sim", "%s: expected 0..65535, got \"%s\"",
						       c == 'p' ? "--isv-prod-id" : "--isv-svn",
						       optarg);
			if (c == 'p')
				enc.isv_prod_id = (uint16_t)v;
			else
				enc.isv_svn = (uint16_t)v;
			break;
		}
		default:
			return cli_usage_error("sim", "unknown or incomplete option \"%s\"",
					       argv[optind]);
		}
	}
	if (optind + 1 < argc)
		return cli_usage_error("sim", "unexpected argument \"%s\"", argv[optind + 1]);
	if (!*dir && mse_sim_dir(dir, sizeof(dir), &err) != 0)
		return cli_fail("sim", &err);

	if (strcmp(sub, "path") == 0) {
		puts(dir);
		return MSE_EXIT_OK;
	}
	if (strcmp(sub, "init") == 0) {
		if (mse_sim_init(dir, force, &err) != 0)
			return cli_fail("sim", &err);
		printf("SGX simulation initialised in %s (SIMULATION - not confidential)\n", dir);
		return MSE_EXIT_OK;
	}
	/* quote */
	{
		struct mse_sim *sim = NULL;
		uint8_t *q = NULL;
		size_t qlen = 0;
		int rc = MSE_EXIT_FAIL;

		if (!out)
			return cli_usage_error("sim", "quote: --out FILE is required");
		if (mse_sim_load(dir, &sim, &err) != 0)
			return cli_fail("sim", &err);
		if (!have_mrsigner)
			mse_sim_mrsigner(sim, enc.mrsigner);
		mse_sim_default_attributes(enc.attributes);
		if (mse_sim_quote(sim, &enc, &q, &qlen, &err) != 0 ||
		    mse_file_write_atomic(out, q, qlen, MSE_MODE_PUBLIC, &err) != 0)
			rc = cli_fail("sim", &err);
		else
			rc = MSE_EXIT_OK;
		free(q);
		mse_sim_free(sim);
		return rc;
	}
}
