/* SPDX-License-Identifier: Apache-2.0 */
/* mse spawn NAME --package FILE — the operator starts an enclave for a package. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/ratls.h"
#include "attest/sim.h"
#include <jansson.h>

#include "cli/cli.h"
#include "operator/spawn.h"
#include "common/file.h"
#include "crypto/archive.h"
#include "crypto/package.h"
#include "operator/evidence.h"
#include "operator/instance.h"
#include "operator/manifest.h"

static const char usage[] =
	"Usage: mse spawn NAME --package FILE --output DIR [options]\n"
	"\n"
	"Start an enclave (mse-bootstrap) for an encrypted package, as the SGX operator.\n"
	"It checks the package (package.json digest of app.tar), prepares the instance's\n"
	"state directory ($XDG_STATE_HOME/mse/NAME), starts mse-bootstrap with a fresh\n"
	"uuid and certificate expiration, waits for its configuration server, and writes\n"
	"DIR/evidence.json and DIR/ratls.pem for the code provider to verify.\n"
	"The enclave then waits for 'mse run NAME' to send the code key and secrets.\n"
	"\n"
	"Options:\n"
	"  --package FILE         the package_<name>_<ns>.tar from 'mse package' (required)\n"
	"  --output DIR           where to write evidence.json and ratls.pem (required)\n"
	"  --san NAME             certificate subject alternative name (default localhost)\n"
	"  --subject RFC4514      certificate subject (default CN=<san>,O=mse-c)\n"
	"  --size MB              enclave size, a power of two (default 4096)\n"
	"  --host ADDR            address to listen on (default 127.0.0.1)\n"
	"  --port N               port (default: a free one in simulation, 443 with SGX)\n"
	"  --days N               RA-TLS certificate validity in days (default 30)\n"
	"  --certificate FILE     serve the app with this full chain (its key comes from\n"
	"                         the code provider through 'mse run'); the configuration\n"
	"                         server keeps a 10-hour RA-TLS certificate\n"
	"  --no-ssl               serve the app in plain HTTP (behind a TLS proxy)\n"
	"  --simulation | --sgx   attestation mode (default: sgx if this machine has an\n"
	"                         SGX device, simulation otherwise)\n"
	"  --pccs URL             PCCS for the collateral (sgx mode)\n"
	"  --signer-key PEM       the operator's enclave signer: an RSA-3072 private key\n"
	"                         with exponent 3, given to gramine-sgx-sign (required\n"
	"                         with --sgx; 'mse keygen --sgx-signer' makes one)\n"
	"  --isvprodid N          sgx.isvprodid, 1..65535 (default 1; 1 in simulation)\n"
	"  --isvsvn N             sgx.isvsvn, 1..65535 (default 1; 1 in simulation)\n"
	"  --timeout S            how long to wait for the configuration server (default 60)\n"
	"  --request-timeout S    per-request deadline in the enclave (configuration server\n"
	"                         and app): 504 and a log line past it (default: none)\n"
	"  --no-access-log        no log line per request in 'mse logs NAME' (method,\n"
	"                         path, status, bytes, duration; on by default)\n"
	"  --threads N            app server workers always running (default 2 x CPUs;\n"
	"                         16 with --sgx)\n"
	"  --threads-max N        workers grow to N while all are blocked in handlers\n"
	"                         (default 128; 64 with --sgx, where sgx.max_threads is\n"
	"                         N + the I/O threads + the ASGI loop + 16, measured)\n"
	"  --metrics HOST:PORT    serve the app server's Prometheus metrics (counts only, no\n"
	"                         secrets) in plain HTTP on http://HOST:PORT/metrics, apart\n"
	"                         from the app; PORT 0: a free one (docs/metrics.md). With\n"
	"                         --sgx it is in the measured loader.argv\n"
	"  --json                 progress to stderr; one JSON object on stdout: {\"ok\": true,\n"
	"                         \"name\", \"mode\", \"simulation\", \"host\", \"port\", \"pid\",\n"
	"                         \"uuid\", \"evidence\", \"certificate\", \"metrics\" (with\n"
	"                         --metrics)} or {\"ok\": false,\n"
	"                         \"error\": {...}}\n"
	"  -h, --help             show this help\n"
	"\n"
	"With --sgx (Gramine 1.9): the manifest (mse.manifest.template, loader.argv\n"
	"fixed and measured) is rendered by gramine-manifest and signed by\n"
	"gramine-sgx-sign in the state directory; MRENCLAVE and MRSIGNER from the\n"
	"SIGSTRUCT are recorded in the instance and evidence.json; gramine-sgx runs it.\n"
	"See docs/sgx.md.\n"
	"\n"
	"In simulation the attestation root is the local simulation CA ('mse sim init',\n"
	"created on first use): SIMULATION — not confidential.\n";

int cmd_spawn(int argc, char **argv)
{
	enum { O_PACKAGE = 256, O_OUTPUT, O_SAN, O_SUBJECT, O_SIZE, O_HOST, O_PORT, O_DAYS,
	       O_CERT, O_NOSSL, O_SIM, O_SGX, O_PCCS, O_SIGNER, O_TIMEOUT, O_ISVPRODID, O_ISVSVN,
	       O_REQTO, O_JSON, O_NOACCESS, O_THREADS, O_THREADS_MAX, O_METRICS };
	static const struct option opts[] = {
		{"package", required_argument, NULL, O_PACKAGE},
		{"output", required_argument, NULL, O_OUTPUT},
		{"san", required_argument, NULL, O_SAN},
		{"subject", required_argument, NULL, O_SUBJECT},
		{"size", required_argument, NULL, O_SIZE},
		{"host", required_argument, NULL, O_HOST},
		{"port", required_argument, NULL, O_PORT},
		{"days", required_argument, NULL, O_DAYS},
		{"certificate", required_argument, NULL, O_CERT},
		{"no-ssl", no_argument, NULL, O_NOSSL},
		{"simulation", no_argument, NULL, O_SIM},
		{"sgx", no_argument, NULL, O_SGX},
		{"pccs", required_argument, NULL, O_PCCS},
		{"signer-key", required_argument, NULL, O_SIGNER},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"isvprodid", required_argument, NULL, O_ISVPRODID},
		{"isvsvn", required_argument, NULL, O_ISVSVN},
		{"request-timeout", required_argument, NULL, O_REQTO},
		{"json", no_argument, NULL, O_JSON},
		{"no-access-log", no_argument, NULL, O_NOACCESS},
		{"threads", required_argument, NULL, O_THREADS},
		{"threads-max", required_argument, NULL, O_THREADS_MAX},
		{"metrics", required_argument, NULL, O_METRICS},
		{"help", no_argument, NULL, 'h'},
		{0}};
	struct mse_spawn_opts so = {.san = "localhost", .size_mb = 4096, .host = "127.0.0.1",
				    .days = 30, .timeout_s = 60, .mode = -1};
	struct mse_spawn_result res;
	struct mse_err err = {0};
	int c, json = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		uint64_t v;

		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		case O_PACKAGE: so.package = optarg; break;
		case O_OUTPUT: so.output_dir = optarg; break;
		case O_SAN: so.san = optarg; break;
		case O_SUBJECT: so.subject = optarg; break;
		case O_HOST: so.host = optarg; break;
		case O_CERT: so.certificate = optarg; break;
		case O_NOSSL: so.no_ssl = 1; break;
		case O_SIM: so.mode = MSE_MODE_SIMULATION; break;
		case O_SGX: so.mode = MSE_MODE_SGX; break;
		case O_PCCS: so.pccs_url = optarg; break;
		case O_SIGNER: so.signer_key = optarg; break;
		case O_JSON: json = 1; break;
		case O_NOACCESS: so.no_access_log = 1; break;
		case O_METRICS:
			if (cli_hostport("spawn", "metrics", optarg) != 0)
				return MSE_EXIT_USAGE;
			so.metrics = optarg;
			break;
		case O_SIZE:
		case O_PORT:
		case O_DAYS:
		case O_TIMEOUT:
		case O_ISVPRODID:
		case O_ISVSVN:
		case O_REQTO:
		case O_THREADS:
		case O_THREADS_MAX:
			if (cli_num("spawn", opts[c - O_PACKAGE].name, optarg, 1,
				    c == O_SIZE ? 1 << 20 : c == O_DAYS ? 3650 : c == O_TIMEOUT ? 3600
				    : c == O_REQTO ? 86400 : c == O_THREADS ? 1024
				    : c == O_THREADS_MAX ? 4096 : 65535, &v))
				return MSE_EXIT_USAGE;
			if (c == O_SIZE)
				so.size_mb = (uint32_t)v;
			else if (c == O_PORT)
				so.port = (uint16_t)v;
			else if (c == O_DAYS)
				so.days = (int)v;
			else if (c == O_ISVPRODID)
				so.isvprodid = (unsigned)v;
			else if (c == O_ISVSVN)
				so.isvsvn = (unsigned)v;
			else if (c == O_TIMEOUT)
				so.timeout_s = (int)v;
			else if (c == O_THREADS)
				so.threads = (unsigned)v;
			else if (c == O_THREADS_MAX)
				so.threads_max = (unsigned)v;
			else
				so.request_timeout_s = (int)v;
			break;
		default:
			return cli_usage_error("spawn", "unknown option");
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("spawn", "expected one instance NAME");
	so.name = argv[optind];
	if (!so.package || !so.output_dir)
		return cli_usage_error("spawn", "--package and --output are required");
	if (so.certificate && so.no_ssl)
		return cli_usage_error("spawn", "--certificate and --no-ssl exclude each other");
	so.progress = json ? stderr : stdout;
	if (mse_spawn(&so, &res, &err) != 0)
		return json ? cli_json_fail(&err) : cli_fail("spawn", &err);
	if (json) {
		json_t *o = cli_json_new(1);

		cli_json_str(o, "name", so.name);
		cli_json_str(o, "mode", mse_instance_mode_name(res.inst.mode));
		json_object_set_new(o, "simulation", json_boolean(res.inst.mode == MSE_MODE_SIMULATION));
		cli_json_str(o, "host", res.inst.host);
		json_object_set_new(o, "port", json_integer(res.inst.port));
		json_object_set_new(o, "pid", json_integer((json_int_t)res.inst.pid));
		cli_json_str(o, "uuid", res.inst.uuid);
		cli_json_str(o, "evidence", res.evidence_path);
		cli_json_str(o, "certificate", res.ratls_path);
		if (res.inst.metrics[0])
			cli_json_str(o, "metrics", res.inst.metrics);
		cli_json_print(o);
		return MSE_EXIT_OK;
	}
	printf("\n%s is waiting for its code key and secrets on https://%s:%u (pid %d)\n", so.name,
	       res.inst.host, (unsigned)res.inst.port, (int)res.inst.pid);
	printf("  evidence     %s\n  certificate  %s\n", res.evidence_path, res.ratls_path);
	if (res.inst.metrics[0])
		printf("  metrics      http://%s/metrics\n", res.inst.metrics);
	if (res.inst.mode == MSE_MODE_SIMULATION)
		printf("  mode         SIMULATION — not confidential\n");
	else
		printf("  MRENCLAVE    %s\n  MRSIGNER     %s\n  Gramine      %s\n", res.inst.mrenclave,
		       res.inst.mrsigner, res.inst.gramine_version);
	printf("Next: the code provider runs 'mse verify --package %s --evidence %s --output DIR',\n"
	       "then 'mse run %s --ratls DIR/ratls.pem ...'.\n",
	       so.package, res.evidence_path, so.name);
	return MSE_EXIT_OK;
}
