/* SPDX-License-Identifier: Apache-2.0 */
/* mse doctor — is this machine ready: SGX, drivers, AESM, PCCS, Gramine, Python, clock. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "operator/doctor.h"

static const char usage[] =
	"Usage: mse doctor [--role codeprovider|operator] [--json] [--root DIR]\n"
	"\n"
	"Check what mse needs on this machine and say, for each, OK, WARN or FAIL\n"
	"with the fix:\n"
	"  cpu            SGX in the CPU: CPUID leaf 7 (SGX, FLC) and 0x12 (SGX1, SGX2,\n"
	"                 EPC size)\n"
	"  sgx_enclave    /dev/sgx_enclave and sgx_provision: present, character\n"
	"  sgx_provision  devices, usable by this user (groups sgx, sgx_prv)\n"
	"  aesm           Intel's AESM socket (/var/run/aesmd/aesm.socket)\n"
	"  qcnl           /etc/sgx_default_qcnl.conf: pccs_url, use_secure_cert\n"
	"  pccs           whether that PCCS answers (GET .../rootcacrl, 3 s)\n"
	"  collateral     the collateral cache (~/.cache/mse/collateral) and its expiry\n"
	"  gramine        gramine-sgx on PATH and its version\n"
	"  python, flask  the Python the enclave embeds and the Flask it will import\n"
	"  simulation     the simulation root ($MSE_SIM_DIR) and its validity\n"
	"  clock          the system clock (against the PCCS's if it answered)\n"
	"On a machine without SGX the missing pieces are warnings: the enclave runs\n"
	"in simulation (SIMULATION — not confidential).\n"
	"\n"
	"Options:\n"
	"  --role R     codeprovider (python, flask, qcnl, pccs, collateral, simulation,\n"
	"               clock) or operator (everything); default: everything\n"
	"  --json       one JSON object on stdout: {\"ok\", \"role\", \"cpu\": {\"sgx\",\n"
	"               \"sgx1\", \"sgx2\", \"flc\", \"epc_bytes\"}, \"checks\": [{\"name\",\n"
	"               \"status\": \"OK\"|\"WARN\"|\"FAIL\", \"detail\", \"fix\"}, ...],\n"
	"               \"fails\", \"warnings\"}; \"ok\" is false (with \"error\") when a check\n"
	"               fails\n"
	"  --root DIR   read the files under DIR instead of / (dev/, var/run/aesmd/, etc/,\n"
	"               usr/lib/python3/dist-packages/): for tests and for inspecting an\n"
	"               image\n"
	"  -h, --help   show this help\n"
	"\n"
	"For tests, MSE_DOCTOR_CPUID=FILE replaces the CPU's CPUID answers with the\n"
	"lines \"LEAF SUBLEAF EAX EBX ECX EDX\" (hex) of FILE.\n"
	"\n"
	"Exit status: 0 nothing failed (warnings allowed), 1 a check failed, 2 usage error.\n";

int cmd_doctor(int argc, char **argv)
{
	static const struct option opts[] = {{"role", required_argument, NULL, 'r'},
					     {"json", no_argument, NULL, 'j'},
					     {"root", required_argument, NULL, 'R'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	struct mse_doctor_opts o = {0};
	struct mse_doctor_report *r;
	struct mse_err err = {0};
	int c, json = 0, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		case 'r':
			if (mse_doctor_parse_role(optarg, &o.role, &err) != 0)
				return cli_usage_error("doctor", "--role: expected codeprovider or operator, got '%s'",
						       optarg);
			break;
		case 'j': json = 1; break;
		case 'R': o.root = optarg; break;
		default:
			return cli_usage_error("doctor", "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("doctor", "unexpected argument '%s'", argv[optind]);
	o.cpuid_file = getenv("MSE_DOCTOR_CPUID");
	if (o.cpuid_file && !o.cpuid_file[0])
		o.cpuid_file = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return cli_failf("doctor", "out of memory");
	if (mse_doctor_run(&o, r, &err) != 0) {
		free(r);
		return json ? cli_json_fail(&err) : cli_fail("doctor", &err);
	}
	if (json) {
		json_t *j = cli_json_new(r->fails == 0), *cpu = json_object(), *all = json_array();

		json_object_set_new(j, "role", json_string(mse_doctor_role_name(o.role)));
		json_object_set_new(cpu, "sgx", json_boolean(r->cpu.sgx));
		json_object_set_new(cpu, "sgx1", json_boolean(r->cpu.sgx1));
		json_object_set_new(cpu, "sgx2", json_boolean(r->cpu.sgx2));
		json_object_set_new(cpu, "flc", json_boolean(r->cpu.flc));
		json_object_set_new(cpu, "epc_bytes", json_integer((json_int_t)r->cpu.epc_bytes));
		json_object_set_new(cpu, "from_file", json_boolean(r->cpu.from_file));
		json_object_set_new(j, "cpu", cpu);
		json_object_set_new(j, "simulation_only", json_boolean(!r->cpu.sgx));
		for (size_t i = 0; i < r->n; i++) {
			const struct mse_doctor_check *k = &r->checks[i];
			json_t *e = json_object();

			json_object_set_new(e, "name", json_string(k->name));
			json_object_set_new(e, "status", json_string(mse_doctor_status_name(k->status)));
			json_object_set_new(e, "detail", json_string(k->detail));
			cli_json_str(e, "fix", k->fix);
			json_array_append_new(all, e);
		}
		json_object_set_new(j, "checks", all);
		cli_json_str(j, "pccs_url", r->pccs_url);
		cli_json_str(j, "python_version", r->python_version);
		cli_json_str(j, "flask_version", r->flask_version);
		cli_json_str(j, "gramine_version", r->gramine_version);
		json_object_set_new(j, "fails", json_integer(r->fails));
		json_object_set_new(j, "warnings", json_integer(r->warns));
		if (r->fails) {
			for (size_t i = 0; i < r->n; i++)
				if (r->checks[i].status == MSE_DOCTOR_FAIL) {
					mse_err_clear(&err);
					mse_err_step(&err, r->checks[i].name);
					mse_err_set(&err, "%s", r->checks[i].detail);
					json_object_set_new(j, "error", cli_json_error(&err));
					break;
				}
		}
		cli_json_print(j);
	} else {
		for (size_t i = 0; i < r->n; i++) {
			const struct mse_doctor_check *k = &r->checks[i];

			printf("%-4s  %-13s %s\n", mse_doctor_status_name(k->status), k->name, k->detail);
			if (k->fix[0])
				printf("      %-13s fix: %s\n", "", k->fix);
		}
		printf("\n%d failed, %d warning%s%s\n", r->fails, r->warns, r->warns == 1 ? "" : "s",
		       r->cpu.sgx ? "" : " — no SGX here: mse runs enclaves in simulation (not confidential)");
	}
	rc = r->fails ? MSE_EXIT_FAIL : MSE_EXIT_OK;
	free(r);
	return rc;
}
