/* SPDX-License-Identifier: Apache-2.0 */
/* mse sim — manage the SGX simulation (see src/attest/sim.h). */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/num.h"
#include "attest/sim.h"
#include "attest/simtdx.h"
#include "cli/cli.h"
#include "common/file.h"
#include "common/hex.h"

static const char usage_text[] =
	"Usage: mse sim init [--force] [--dir DIR]\n"
	"       mse sim path [--dir DIR]\n"
	"       mse sim quote --out FILE [--mrenclave HEX] [--mrsigner HEX]\n"
	"                     [--report-data HEX] [--isv-prod-id N] [--isv-svn N] [--dir DIR]\n"
	"       mse sim tdx-quote --out FILE [--quote-version 4|5] [--td15] [--FIELD HEX]... [--dir DIR]\n"
	"       mse sim tdx-collateral --out DIR [--dir DIR]\n"
	"\n"
	"SGX simulation: a local root CA, PCK chain, signed collateral and quoting enclave,\n"
	"so that attestation runs on machines without SGX. SIMULATION - not confidential.\n"
	"\n"
	"  init          create the simulation directory: root_ca.der/.pem, pck_ca.pem,\n"
	"                pck.pem, tcb_signing.pem, signer.pem, collateral/ (the layout\n"
	"                `mse verify --collateral DIR` reads) and keys/ (0600)\n"
	"  path          print the simulation directory\n"
	"  quote         write a simulated SGX quote v3 (for tests and tools)\n"
	"  tdx-quote     write a simulated TDX quote: v4 (TD report 1.0, default) or v5 (TD\n"
	"                report 1.0, or 1.5 with --td15). Fields (hex, default: a fixed TD that\n"
	"                is UpToDate): --tee-tcb-svn, --tee-tcb-svn2, --mrseam, --mrsignerseam,\n"
	"                --seam-attributes, --td-attributes, --xfam, --mrtd, --mrconfigid,\n"
	"                --mrowner, --mrownerconfig, --rtmr N=HEX, --mrservicetd, --report-data\n"
	"  tdx-collateral  write a collateral directory for those quotes: the simulation's\n"
	"                chains and CRLs, a TDX TCB info v3 and a TD_QE identity whose levels\n"
	"                give every TCB status (see src/attest/simtdx.h)\n"
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

/* mse sim tdx-quote / tdx-collateral */
static int sim_tdx(int argc, char **argv, int quote)
{
	enum { T_DIR = 256, T_OUT, T_VER, T_TD15, T_RTMR, T_FIELD };
	static const struct {
		const char *name;
		size_t off, len;
	} fields[] = {
		{"tee-tcb-svn", offsetof(struct mse_td_report, tee_tcb_svn), 16},
		{"tee-tcb-svn2", offsetof(struct mse_td_report, tee_tcb_svn2), 16},
		{"mrseam", offsetof(struct mse_td_report, mr_seam), 48},
		{"mrsignerseam", offsetof(struct mse_td_report, mr_signer_seam), 48},
		{"seam-attributes", offsetof(struct mse_td_report, seam_attributes), 8},
		{"td-attributes", offsetof(struct mse_td_report, td_attributes), 8},
		{"xfam", offsetof(struct mse_td_report, xfam), 8},
		{"mrtd", offsetof(struct mse_td_report, mr_td), 48},
		{"mrconfigid", offsetof(struct mse_td_report, mr_config_id), 48},
		{"mrowner", offsetof(struct mse_td_report, mr_owner), 48},
		{"mrownerconfig", offsetof(struct mse_td_report, mr_owner_config), 48},
		{"mrservicetd", offsetof(struct mse_td_report, mr_service_td), 48},
		{"report-data", offsetof(struct mse_td_report, report_data), 64},
	};
	enum { NF = sizeof(fields) / sizeof(fields[0]) };
	struct option opts[NF + 6];
	struct mse_td_report td;
	struct mse_err err;
	char dir[4096] = "";
	const char *out = NULL;
	int c, idx, version = 4, svn2 = 0;

	mse_err_clear(&err);
	mse_simtdx_default_td(&td);
	for (int i = 0; i < NF; i++)
		opts[i] = (struct option){fields[i].name, required_argument, NULL, T_FIELD};
	opts[NF] = (struct option){"dir", required_argument, NULL, T_DIR};
	opts[NF + 1] = (struct option){"out", required_argument, NULL, T_OUT};
	opts[NF + 2] = (struct option){"quote-version", required_argument, NULL, T_VER};
	opts[NF + 3] = (struct option){"td15", no_argument, NULL, T_TD15};
	opts[NF + 4] = (struct option){"rtmr", required_argument, NULL, T_RTMR};
	opts[NF + 5] = (struct option){NULL, 0, NULL, 0};
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", opts, &idx)) != -1) {
		size_t n;

		switch (c) {
		case T_DIR:
			if (snprintf(dir, sizeof(dir), "%s", optarg) >= (int)sizeof(dir))
				return cli_usage_error("sim", "--dir: path too long");
			break;
		case T_OUT: out = optarg; break;
		case T_VER:
			if (strcmp(optarg, "4") && strcmp(optarg, "5"))
				return cli_usage_error("sim", "--quote-version: expected 4 or 5, got \"%s\"", optarg);
			version = optarg[0] - '0';
			break;
		case T_TD15: td.v15 = 1; break;
		case T_RTMR:
			if (optarg[0] < '0' || optarg[0] > '3' || optarg[1] != '=' ||
			    mse_hex_decode(td.rtmr[optarg[0] - '0'], 48, &n, optarg + 2, strlen(optarg + 2)) != 0 || n != 48)
				return cli_usage_error("sim", "--rtmr: expected N=HEX (N 0-3, 96 hex digits), got \"%s\"", optarg);
			break;
		case T_FIELD: {
			uint8_t *dst = (uint8_t *)&td + fields[idx].off;

			if (mse_hex_decode(dst, fields[idx].len, &n, optarg, strlen(optarg)) != 0 || n != fields[idx].len)
				return cli_usage_error("sim", "--%s: expected %zu hex digits, got \"%s\"", fields[idx].name,
						       2 * fields[idx].len, optarg);
			if (strcmp(fields[idx].name, "tee-tcb-svn2") == 0)
				svn2 = 1;
			break;
		}
		default:
			return cli_usage_error("sim", "unknown or incomplete option \"%s\"", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("sim", "unexpected argument \"%s\"", argv[optind]);
	if (!out)
		return cli_usage_error("sim", "--out is required");
	if (!quote && (td.v15 || version != 4 || svn2))
		return cli_usage_error("sim", "tdx-collateral takes only --out and --dir");
	if (td.v15 && version != 5)
		return cli_usage_error("sim", "--td15 needs --quote-version 5");
	if (!svn2)
		memcpy(td.tee_tcb_svn2, td.tee_tcb_svn, 16);
	if (!*dir && mse_sim_dir(dir, sizeof(dir), &err) != 0)
		return cli_fail("sim", &err);
	if (quote) {
		uint8_t *q = NULL;
		size_t qlen = 0;
		int rc = MSE_EXIT_OK;

		if (mse_simtdx_quote(dir, version, &td, &q, &qlen, &err) != 0 ||
		    mse_file_write_atomic(out, q, qlen, MSE_MODE_PUBLIC, &err) != 0)
			rc = cli_fail("sim", &err);
		free(q);
		return rc;
	}
	if (mse_simtdx_collateral(dir, out, &err) != 0)
		return cli_fail("sim", &err);
	printf("TDX simulation collateral written to %s (SIMULATION - not confidential)\n", out);
	return MSE_EXIT_OK;
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
	if (strcmp(sub, "tdx-quote") == 0 || strcmp(sub, "tdx-collateral") == 0)
		return sim_tdx(argc - 1, argv + 1, strcmp(sub, "tdx-quote") == 0);
	if (strcmp(sub, "init") != 0 && strcmp(sub, "path") != 0 && strcmp(sub, "quote") != 0)
		return cli_usage_error("sim", "unknown subcommand \"%s\" (init, path, quote, tdx-quote or "
				       "tdx-collateral)", sub);
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
			uint64_t v;

			if (mse_num_parse(optarg, 0, 0xffff, &v) != 0)
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
