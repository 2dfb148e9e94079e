/* SPDX-License-Identifier: Apache-2.0 */
/* mse-bootstrap — the enclave side of mse-c. See src/enclave/bootstrap.h and mse-bootstrap(8). */
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "attest/sim.h"
#include "common/num.h"
#include "common/hex.h"
#include "common/wipe.h"
#include "common/log.h"
#include "common/version.h"
#include "enclave/bootstrap.h"
#include "net/metrics.h"

static const char usage_text[] =
	"Usage: mse-bootstrap MODULE:VAR --app-dir DIR --id UUID\n"
	"                     (--ratls EXPIRATION | --certificate FULLCHAIN.pem | --no-ssl)\n"
	"                     [--host ADDR] [--port PORT] [--subject RFC4514] [--san NAME]\n"
	"                     [--timeout SECONDS] [--request-timeout SECONDS]\n"
	"                     [--plaincode] [--simulation]\n"
	"                     [--workspace DIR] [--size MB] [--sim-dir DIR]\n"
	"                     [--threads N] [--threads-max N] [--attestation-dir DIR]\n"
	"                     [--log-level LEVEL] [--metrics HOST:PORT] [--sim-isvsvn N]\n"
	"       mse-bootstrap MODULE:VAR --app-dir DIR --coordinator-mrenclave HEX\n"
	"                     [--id NAME] [--ratls EXPIRATION] [--host ADDR] [--port PORT]\n"
	"                     [--trust-sim-root HEX] ...\n"
	"\n"
	"Runs inside the enclave (or its simulation): creates the enclave key and the RA-TLS\n"
	"certificate, waits on HOST:PORT for the code key and secrets (configuration server),\n"
	"decrypts the code into $MODULE_PATH, then serves MODULE:VAR on the same port.\n"
	"\n"
	"  MODULE:VAR              the WSGI application (e.g. app:app)\n"
	"  --app-dir DIR           the app as packaged (encrypted .enc files)\n"
	"  --id UUID               the uuid the configuration must carry\n"
	"  --ratls EXPIRATION      serve config server and app with the RA-TLS certificate,\n"
	"                          valid until EXPIRATION (UNIX seconds)\n"
	"  --certificate FILE      config server on a 10-hour RA-TLS certificate, then the app\n"
	"                          with this full chain and the received ssl_private_key\n"
	"  --no-ssl                config server on RA-TLS, then the app in plain HTTP\n"
	"  --host ADDR             listen address (default 0.0.0.0)\n"
	"  --port PORT             listen port (default 443; 0 = ephemeral)\n"
	"  --subject RFC4514       certificate subject (default CN=localhost)\n"
	"  --san NAME              certificate subject alternative name (default localhost)\n"
	"  --timeout SECONDS       give up if no configuration arrives in time (exit 1)\n"
	"  --request-timeout SECONDS\n"
	"                          per-request deadline on both servers: past it the client\n"
	"                          gets 504, the request is logged, and a thread is added\n"
	"                          while the stuck one finishes (default: none)\n"
	"  --plaincode             the code is not encrypted (no code key needed)\n"
	"  --simulation            SGX simulation even if an SGX device exists\n"
	"                          (default where /dev/attestation is absent)\n"
	"  --workspace DIR         simulation: root of HOME, KEY_PATH, MODULE_PATH, TMP_PATH\n"
	"                          (default ./workspace); ratls.pem and bootstrap.json go here\n"
	"  --size MB               enclave size (an input argument of the measurement)\n"
	"  --sim-dir DIR           simulation directory (default $MSE_SIM_DIR or\n"
	"                          ~/.config/mse/sim; created if missing)\n"
	"  --threads N             app server workers always running (default 2 x CPUs)\n"
	"  --threads-max N         workers grow to N while all are blocked in handlers\n"
	"                          (default 128); under SGX the manifest's\n"
	"                          sgx.max_threads leaves room for them\n"
	"  --attestation-dir DIR   UNSAFE outside tests: where Gramine's attestation\n"
	"                          interface is (default /dev/attestation, which only\n"
	"                          Gramine provides). A directory of ordinary files is\n"
	"                          whatever the host wrote there: no SGX protection.\n"
	"  --no-sandbox            do not apply the enclave rules (seccomp) to the app\n"
	"  --no-access-log         no log line per request (method, path, status, bytes,\n"
	"                          duration)\n"
	"  --log-level LEVEL       debug, info (default), warn or error\n"
	"  --metrics HOST:PORT     serve Prometheus metrics (request counts by status class,\n"
	"                          latency histogram, in-flight requests, worker threads,\n"
	"                          open connections: no secrets) in plain HTTP on GET\n"
	"                          /metrics at HOST:PORT, apart from the app (docs/metrics.md);\n"
	"                          a replica takes it from $MSE_REPLICA_METRICS when not given\n"
	"                          (per replica, so never in the measured argv)\n"
	"  --sim-isvsvn N          simulation: the ISVSVN the enclave reports (default 1), as\n"
	"                          SIGSTRUCT sets it under SGX; not measured\n"
	"\n"
	"Replica mode: --coordinator-mrenclave HEX (measured) makes this a replica of a\n"
	"coordinator (mse-coordinator) at $MSE_COORDINATOR=HOST:PORT (not measured). It\n"
	"verifies the coordinator's quote and MRENCLAVE before sending anything, is attested\n"
	"by it (mutual RA-TLS), receives the code key, secrets, sealed secrets, a certificate\n"
	"from the coordinator's CA (served instead of the RA-TLS one) and the app key (a\n"
	"0400 file at $APP_KEY_PATH). --id is then only a name for the coordinator's\n"
	"registry; --ratls EXPIRATION sets the RA-TLS certificate's end (default 10 hours);\n"
	"Without --host/--port: $MSE_REPLICA_LISTEN=HOST:PORT; without --id: $MSE_REPLICA_ID;\n"
	"without --metrics: $MSE_REPLICA_METRICS=HOST:PORT, if set (under SGX the argv is\n"
	"measured and the same for every replica; these are not).\n"
	"--trust-sim-root HEX (measured; UNSAFE outside tests): outside simulation, also\n"
	"trust the coordinator's quotes that chain to this simulation root CA (DER, hex):\n"
	"the tests' Gramine stand-in (mse deploy --replicas N --sgx --accept-simulation-quotes).\n"
	"$MSE_COORDINATOR_COLLATERAL: collateral to verify the coordinator outside simulation;\n"
	"without it, Intel's collateral from the PCCS at $MSE_PCCS_URL (else the QCNL\n"
	"configuration's pccs_url), fetched for the coordinator's quote; fail closed [pccs].\n"
	"\n"
	"Exit status: 0 after a graceful stop (SIGTERM), 1 on failure or timeout, 2 usage error.\n";

static int usage_error(const char *fmt, ...) MSE_PRINTF(1, 2);

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = mse_usage_verror("mse-bootstrap", fmt, ap);
	va_end(ap);
	return rc;
}


int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"app-dir", required_argument, NULL, 'a'},
		{"id", required_argument, NULL, 'i'},
		{"host", required_argument, NULL, 'H'},
		{"port", required_argument, NULL, 'p'},
		{"subject", required_argument, NULL, 's'},
		{"san", required_argument, NULL, 'n'},
		{"ratls", required_argument, NULL, 'r'},
		{"certificate", required_argument, NULL, 'c'},
		{"no-ssl", no_argument, NULL, 'N'},
		{"timeout", required_argument, NULL, 't'},
		{"request-timeout", required_argument, NULL, 'R'},
		{"plaincode", no_argument, NULL, 'P'},
		{"simulation", no_argument, NULL, 'S'},
		{"workspace", required_argument, NULL, 'w'},
		{"size", required_argument, NULL, 'z'},
		{"sim-dir", required_argument, NULL, 'd'},
		{"attestation-dir", required_argument, NULL, 'A'},
		{"threads", required_argument, NULL, 'T'},
		{"threads-max", required_argument, NULL, 'M'},
		{"no-sandbox", no_argument, NULL, 'X'},
		{"no-access-log", no_argument, NULL, 'L'},
		{"log-level", required_argument, NULL, 'l'},
		{"coordinator-mrenclave", required_argument, NULL, 'C'},
		{"metrics", required_argument, NULL, 'm'},
		{"sim-isvsvn", required_argument, NULL, 'I'},
		{"trust-sim-root", required_argument, NULL, 'Z'},
		{NULL, 0, NULL, 0}};
	uint8_t coord_mre[32];
	char metrics_host[256] = "";
	const char *metrics = NULL, *metrics_from = "--metrics";
	uint16_t metrics_port = 0;
	int rc;
	struct mse_bootstrap_opts o;
	enum mse_log_level level = MSE_LOG_INFO;
	struct mse_err err;
	int c, modes = 0, listen_given = 0;
	uint64_t v;

	mse_bootstrap_opts_init(&o);
	mse_err_clear(&err);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("mse-bootstrap %s\n", MSE_VERSION);
			return 0;
		case 'a':
			o.app_dir = optarg;
			break;
		case 'i':
			o.uuid = optarg;
			break;
		case 'L':
			o.no_access_log = 1;
			break;
		case 'H':
			o.host = optarg;
			listen_given = 1;
			break;
		case 'p':
			listen_given = 1;
			if (mse_num_parse(optarg, 0, 65535, &v) != 0)
				return usage_error("--port: expected 0..65535, got \"%s\"", optarg);
			o.port = (uint16_t)v;
			break;
		case 's':
			o.subject = optarg;
			break;
		case 'n':
			o.san = optarg;
			break;
		case 'r':
			if (mse_num_parse(optarg, 1, INT64_MAX, &v) != 0)
				return usage_error("--ratls: expected UNIX seconds, got \"%s\"", optarg);
			o.expiration = (int64_t)v;
			o.tls_mode = MSE_BOOT_RATLS;
			modes++;
			break;
		case 'c':
			o.certificate = optarg;
			o.tls_mode = MSE_BOOT_CERTIFICATE;
			modes++;
			break;
		case 'N':
			o.tls_mode = MSE_BOOT_NO_SSL;
			modes++;
			break;
		case 't':
			if (mse_num_parse(optarg, 1, 100L * 365 * 24 * 3600, &v) != 0)
				return usage_error("--timeout: expected seconds > 0, got \"%s\"",
						   optarg);
			o.timeout_s = (long)v;
			break;
		case 'R':
			if (mse_num_parse(optarg, 1, 86400, &v) != 0)
				return usage_error("--request-timeout: expected seconds 1-86400, got \"%s\"",
						   optarg);
			o.request_timeout_s = (int)v;
			break;
		case 'P':
			o.plaincode = 1;
			break;
		case 'S':
			o.simulation = 1;
			break;
		case 'w':
			o.workspace = optarg;
			break;
		case 'z':
			if (mse_num_parse(optarg, 1, UINT32_MAX, &v) != 0)
				return usage_error("--size: expected megabytes > 0, got \"%s\"", optarg);
			o.size_mb = v;
			break;
		case 'd':
			o.sim_dir = optarg;
			break;
		case 'A':
			o.attestation_dir = optarg;
			break;
		case 'T':
			if (mse_num_parse(optarg, 1, 1024, &v) != 0)
				return usage_error("--threads: expected 1..1024, got \"%s\"", optarg);
			o.threads = (int)v;
			break;
		case 'M':
			if (mse_num_parse(optarg, 1, 4096, &v) != 0)
				return usage_error("--threads-max: expected 1..4096, got \"%s\"", optarg);
			o.threads_max = (int)v;
			break;
		case 'X':
			o.sandbox = 0;
			break;
		case 'I':
			if (mse_num_parse(optarg, 1, 65535, &v) != 0)
				return usage_error("--sim-isvsvn: expected 1..65535, got \"%s\"", optarg);
			o.sim_isvsvn = (unsigned)v;
			break;
		case 'm':
			if (mse_num_hostport(optarg, metrics_host, sizeof(metrics_host),
					     &metrics_port) != 0)
				return usage_error("--metrics: expected HOST:PORT, got \"%s\"", optarg);
			metrics = optarg;
			break;
		case 'C':
			if (strlen(optarg) != 64 || mse_hex_decode_exact(coord_mre, 32, optarg, 64) != 0)
				return usage_error("--coordinator-mrenclave: expected 64 hex digits, got "
						   "\"%s\"",
						   optarg);
			o.coordinator_mrenclave = coord_mre;
			break;
		case 'Z':
			if (mse_sim_root_from_hex(optarg, NULL, NULL, &err) != 0) {
				char m[1400];

				return usage_error("%s", mse_err_str(&err, m, sizeof(m)));
			}
			o.trust_sim_root_hex = optarg;
			break;
		case 'l':
			if (mse_log_parse_level(optarg, &level) != 0)
				return usage_error("--log-level: expected debug|info|warn|error, got \"%s\"",
						   optarg);
			break;
		default:
			return usage_error("unknown or incomplete option \"%s\"", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("%s", "expected MODULE:VAR (e.g. app:app)");
	o.application = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind]);
	if (!strchr(o.application, ':') || o.application[0] == ':' ||
	    o.application[strlen(o.application) - 1] == ':')
		return usage_error("expected MODULE:VAR, got \"%s\"", o.application);
	if (!o.app_dir)
		return usage_error("%s", "--app-dir DIR is required");
	if (o.trust_sim_root_hex && !o.coordinator_mrenclave)
		return usage_error("%s", "--trust-sim-root goes with --coordinator-mrenclave (a replica)");
	if (o.coordinator_mrenclave) {
		const char *e = getenv("MSE_COORDINATOR");

		if (modes > 1 || (modes == 1 && o.tls_mode != MSE_BOOT_RATLS))
			return usage_error("%s", "a replica (--coordinator-mrenclave) is served with the "
						 "coordinator CA's certificate: no --certificate or --no-ssl");
		if (!e || !*e)
			return usage_error("%s", "--coordinator-mrenclave needs MSE_COORDINATOR=HOST:PORT "
						 "in the environment");
		o.coordinator = e;
		o.coordinator_collateral = getenv("MSE_COORDINATOR_COLLATERAL");
		o.tls_mode = MSE_BOOT_COORDINATOR;
		/* Under SGX the argv is measured and shared by every replica: the
		 * replica's own address and name come by the environment. */
		e = getenv("MSE_REPLICA_LISTEN");
		if (!listen_given && e && *e) {
			static char host[256];

			if (mse_num_hostport(e, host, sizeof(host), &o.port) != 0)
				return usage_error("MSE_REPLICA_LISTEN: expected HOST:PORT, got \"%s\"", e);
			o.host = host;
		}
		e = getenv("MSE_REPLICA_METRICS");
		if (!metrics && e && *e) {
			if (mse_num_hostport(e, metrics_host, sizeof(metrics_host), &metrics_port) != 0)
				return usage_error("MSE_REPLICA_METRICS: expected HOST:PORT, got \"%s\"", e);
			metrics = e;
			metrics_from = "MSE_REPLICA_METRICS";
		}
		if (!o.uuid && getenv("MSE_REPLICA_ID"))
			o.uuid = getenv("MSE_REPLICA_ID");
		if (!o.uuid)
			o.uuid = "";
	} else {
		if (!o.uuid || !*o.uuid)
			return usage_error("%s", "--id UUID is required");
		if (modes != 1)
			return usage_error("%s", "exactly one of --ratls, --certificate, --no-ssl is "
						 "required");
	}
	if (metrics && metrics_port && metrics_port == o.port)
		return usage_error("%s: port %u is also the app's port: the metrics need a port of "
				   "their own", metrics_from, (unsigned)o.port);
	if (sodium_init() < 0) {
		fputs("mse-bootstrap: libsodium failed to initialise\n", stderr);
		return 1;
	}
	/* The configuration server parses secrets with jansson: wipe its copies. */
	mse_wipe_install_jansson();
	mse_log_init("mse-bootstrap", level);
	if (metrics) {
		/* Counts only (net/metrics.h): served apart from the app, in plain HTTP. */
		uint16_t bound = 0;

		if (mse_metrics_listen(metrics_host, metrics_port, &bound, &err) != 0) {
			mse_err_print(&err, "mse-bootstrap", stderr);
			return 1;
		}
		mse_info("metrics on http://%s:%u/metrics", metrics_host, (unsigned)bound);
	}
	rc = mse_bootstrap_run(&o, &err);
	mse_metrics_stop();
	if (rc != 0) {
		mse_err_print(&err, "mse-bootstrap", stderr);
		return 1;
	}
	return 0;
}
