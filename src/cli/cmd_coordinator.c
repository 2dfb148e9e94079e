/* SPDX-License-Identifier: Apache-2.0 */
/* mse coordinator — the owner's commands for a coordinator (docs/coordinator.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/num.h"
#include "cli/cli.h"
#include "codeprovider/coordclient.h"
#include "common/file.h"
#include "common/hex.h"
#include "operator/cspawn.h"
#include "operator/gramine.h"
#include "operator/manifest.h"
#include "operator/roll.h"

#define MAX_LIST 16

static void usage(void)
{
	puts("Usage: mse coordinator keygen --out PREFIX\n"
	     "       mse coordinator measure --owner-key PUB [--coordinator BIN]\n"
	     "                               [--sgx [--accept-simulation-quotes]]\n"
	     "       mse coordinator start --name NAME --owner-key PUB [--host ADDR] [--port N]\n"
	     "                             [--sgx --signer-key KEY.pem [--pccs-url URL]\n"
	     "                             [--accept-simulation-quotes]]\n"
	     "       mse coordinator replica --name NAME --package PKG.tar --url HOST:PORT\n"
	     "                               --coordinator-mrenclave HEX [--dns NAME] [--size MB]\n"
	     "                               [--host ADDR] [--port N] [--metrics HOST:PORT]\n"
	     "                               [--sgx --signer-key KEY.pem [--pccs-url URL]\n"
	     "                               [--accept-simulation-quotes]]\n"
	     "       mse coordinator manifest --coordinator-cert RATLS.pem (--project DIR |\n"
	     "                                --package PKG.tar --code-key KEY) [--secrets FILE]\n"
	     "                                [--secrets-to-seal FILE] [--dns NAME]...\n"
	     "                                [--deployment-id ID] [--seq N] [--app NAME]\n"
	     "                                [--mrenclave HEX]... [--no-sim-identity]\n"
	     "                                [--signer-key PRIV.pem --isvprodid N --min-isvsvn N]\n"
	     "                                [--accept-tcb-status LIST] [--allow-simulation]\n"
	     "                                [--accept-expired-collateral] [--bootstrap BIN]\n"
	     "                                [--size MB] [--recovery-key PUB] [--out FILE]\n"
	     "                                [--sgx [--accept-simulation-quotes]]\n"
	     "       mse coordinator set --url HOST:PORT --pin RATLS.pem --manifest FILE\n"
	     "                           --owner-key PRIV [--recovery-out FILE] [--record FILE]\n"
	     "                           [--server-name NAME]\n"
	     "       mse coordinator update --url HOST:PORT --pin RATLS.pem --manifest FILE\n"
	     "                           --owner-key PRIV [--package PKG.tar] [--replicas N]\n"
	     "                           [--recovery-out FILE] [--record FILE] [--server-name NAME]\n"
	     "       mse coordinator ca --url HOST:PORT --pin RATLS.pem [--out FILE]\n"
	     "                           [--server-name NAME]\n"
	     "       mse coordinator status --url HOST:PORT --pin RATLS.pem [--record FILE]\n"
	     "                           [--server-name NAME]\n"
	     "       mse coordinator recover --url HOST:PORT --pin RATLS.pem --recovery-key PRIV\n"
	     "                           --owner-key PRIV [--recovery-file FILE] [--server-name NAME]\n"
	     "\n"
	     "The owner's side of mse-coordinator, which attests replicas against a manifest the\n"
	     "owner signs, is their CA and gives them one app key (docs/coordinator.md).\n"
	     "\n"
	     "  keygen     a new Ed25519 owner key: PREFIX.key (0600, never overwritten) and\n"
	     "             PREFIX.pub, 64 hex digits each\n"
	     "  measure    the MRENCLAVE (simulation, measurement v2) of mse-coordinator started\n"
	     "             with --owner-key PUB; then `mse verify --url HOST:PORT --mrenclave HEX\n"
	     "             --allow-simulation --output DIR` checks a running one and saves the pin\n"
	     "             --sgx: its MRENCLAVE under Gramine, recomputed with gramine-manifest and\n"
	     "             gramine-sgx-sign (a throw-away key) from the binary and its manifest,\n"
	     "             whose loader.argv holds PUB (then verify with --pccs, not\n"
	     "             --allow-simulation)\n"
	     "  start      the operator starts a coordinator as instance NAME (mse status, logs,\n"
	     "             stop, restart follow it); --sgx: under Gramine, its manifest signed\n"
	     "             with --signer-key (the operator's RSA-3072 e=3 key), replicas'\n"
	     "             collateral from --pccs-url (default $MSE_PCCS_URL, else the QCNL\n"
	     "             configuration's pccs_url)\n"
	     "  replica    the operator starts a replica of PKG.tar as instance NAME; it attests\n"
	     "             to the coordinator at --url (expected: --coordinator-mrenclave) and is\n"
	     "             provisioned by it; --dns is its certificate name (the manifest's first\n"
	     "             DNS name). --sgx: under Gramine, one manifest for every replica of the\n"
	     "             package (the coordinator's MRENCLAVE measured; its address, the\n"
	     "             replica's own and the PCCS not), signed with --signer-key\n"	     "  manifest   builds the manifest (JSON, unsigned) from the package: the replicas'\n"
	     "             MRENCLAVE for this coordinator, the TCB policy, the DNS names, and the\n"
	     "             code key and secrets sealed to the coordinator's X25519 key (read from\n"
	     "             its verified RA-TLS certificate). --project DIR takes secrets.json and\n"
	     "             secrets_to_seal.json from DIR when present and, without --package,\n"
	     "             packages DIR/mse.toml's app now into DIR/.mse/package.<time>/\n"
	     "  set        signs the manifest (Ed25519, detached, exact bytes) and uploads it over\n"
	     "             the pinned connection, then checks that GET /status reports its\n"
	     "             deployment_id, seq and SHA-256; records them in --record FILE\n"
	     "             (default: the owner key's name with .seq.json) and, when the manifest\n"
	     "             has a recovery key, writes recovery.bin (--recovery-out; default\n"
	     "             beside the manifest, 0600)\n"
	     "  update     set, then replaces this coordinator's local replicas one at a time\n"
	     "             (each new one healthy before an old one stops), from --package or\n"
	     "             each replica's own package\n"
	     "  ca         the coordinator CA's certificate (PEM), fetched over the pinned\n"
	     "             connection: clients use it with curl --cacert\n"
	     "  status     the coordinator's GET /status (JSON); with --record FILE, exit 1\n"
	     "             unless it reports the deployment, seq and manifest the owner last set\n"
	     "             (a lower seq: an older sealed state was restored, a rollback)\n"
	     "  recover    a coordinator in the \"recovery-needed\" state (its sealed state does\n"
	     "             not open: another machine or coordinator version) gets the state\n"
	     "             back: recovery.bin opened with the X25519 recovery key, sealed to\n"
	     "             the verified coordinator's key, signed with the owner key; it then\n"
	     "             serves the same CA and app key\n"
	     "\n"
	     "  --server-name NAME    set, update, ca, status, recover: the TLS name to check in\n"
	     "                        the coordinator's certificate (default localhost)\n"
	     "  --dns NAME            a name the replicas answer to (repeatable; default localhost)\n"
	     "  --accept-tcb-status L comma-separated TCB statuses replicas may have (default UpToDate)\n"
	     "  --allow-simulation    accept replicas whose quotes are simulated (not confidential)\n"
	     "  --size MB             the replicas' --size (part of their measurement)\n"
	     "  --sgx                 manifest: add the SGX replicas' MRENCLAVE, recomputed with\n"
	     "                        gramine-sgx-sign from the package, --bootstrap, the first\n"
	     "                        --dns name, --size and the coordinator's MRENCLAVE\n"
	     "  --recovery-key KEY    manifest: the owner's X25519 recovery PUBLIC key file (mse\n"
	     "                        keygen --asymmetric); recover: its PRIVATE key file\n"
	     "  --recovery-out FILE   where set/update write recovery.bin\n"
	     "  --recovery-file FILE  recover: the recovery.bin to restore (default recovery.bin)\n"
	     "  --record FILE         the owner's record of the last seq set (rollback check)\n"
	     "  --replicas N          update: how many replicas after the update (default: as now)\n"
	     "  --accept-simulation-quotes  with --sgx (start, replica, measure, manifest): UNSAFE\n"
	     "                        outside tests: the enclave also trusts this machine's\n"
	     "                        simulation root (--trust-sim-root in its measured argv,\n"
	     "                        so measure and manifest need it too), for the tests'\n"
	     "                        Gramine stand-in\n"
	     "  --metrics HOST:PORT   replica: serve its Prometheus metrics (counts only, no\n"
	     "                        secrets) on http://HOST:PORT/metrics (PORT 0: a free one;\n"
	     "                        docs/metrics.md); per replica, so never measured (--sgx:\n"
	     "                        $MSE_REPLICA_METRICS); update keeps each replica's\n"
	     "                        address, the new one taking the next free port; refused\n"
	     "                        with the other subcommands\n"
	     "\n"
	     "Exit status: 0 success, 1 failure, 2 usage error.");
}

enum {
	O_OUT = 1000, O_OWNER, O_COORD, O_CERT, O_PACKAGE, O_KEY, O_PROJECT, O_SECRETS, O_TOSEAL,
	O_DNS, O_DID, O_SEQ, O_APP, O_MRE, O_NOSIM, O_SIGNER, O_PRODID, O_MINSVN, O_ACCEPT,
	O_ALLOWSIM, O_EXPIRED, O_BOOT, O_SIZE, O_URL, O_PIN, O_MANIFEST, O_SERVERNAME, O_HELP,
	O_RECKEY, O_RECOUT, O_RECFILE, O_RECORD, O_REPLICAS, O_SGX, O_NAME, O_HOST, O_PORT, O_PCCS,
	O_COORDMRE, O_ACCEPTSIMQ, O_METRICS
};

static void rolled(void *ctx, const char *text)
{
	(void)ctx;
	fprintf(stderr, "%s\n", text);
}

/* PATH's directory + "/" + file. */
static void beside(char *out, size_t size, const char *path, const char *file)
{
	const char *slash = strrchr(path, '/');

	if (slash)
		snprintf(out, size, "%.*s/%s", (int)(slash - path), path, file);
	else
		snprintf(out, size, "%s", file);
}

/* The default record: OWNER.key -> OWNER.seq.json. */
static void default_record(char *out, size_t size, const char *owner_key)
{
	size_t n = strlen(owner_key);

	if (n > 4 && strcmp(owner_key + n - 4, ".key") == 0)
		snprintf(out, size, "%.*s.seq.json", (int)(n - 4), owner_key);
	else
		snprintf(out, size, "%s.seq.json", owner_key);
}

static int parse_num(const char *s, unsigned long long max, unsigned long long *v)
{
	uint64_t u;

	if (mse_num_parse(s, 0, max, &u) != 0)
		return -1;
	*v = u;
	return 0;
}

/* --accept-simulation-quotes: this machine's simulation root in hex (freed by cmd_coordinator). */
static char *g_sim_root;

static int coordinator(int argc, char **argv)
{
	static const struct option opts[] = {
		{"out", required_argument, NULL, O_OUT},
		{"owner-key", required_argument, NULL, O_OWNER},
		{"coordinator", required_argument, NULL, O_COORD},
		{"coordinator-cert", required_argument, NULL, O_CERT},
		{"package", required_argument, NULL, O_PACKAGE},
		{"code-key", required_argument, NULL, O_KEY},
		{"project", required_argument, NULL, O_PROJECT},
		{"secrets", required_argument, NULL, O_SECRETS},
		{"secrets-to-seal", required_argument, NULL, O_TOSEAL},
		{"dns", required_argument, NULL, O_DNS},
		{"deployment-id", required_argument, NULL, O_DID},
		{"seq", required_argument, NULL, O_SEQ},
		{"app", required_argument, NULL, O_APP},
		{"mrenclave", required_argument, NULL, O_MRE},
		{"no-sim-identity", no_argument, NULL, O_NOSIM},
		{"signer-key", required_argument, NULL, O_SIGNER},
		{"isvprodid", required_argument, NULL, O_PRODID},
		{"min-isvsvn", required_argument, NULL, O_MINSVN},
		{"accept-tcb-status", required_argument, NULL, O_ACCEPT},
		{"allow-simulation", no_argument, NULL, O_ALLOWSIM},
		{"accept-expired-collateral", no_argument, NULL, O_EXPIRED},
		{"bootstrap", required_argument, NULL, O_BOOT},
		{"size", required_argument, NULL, O_SIZE},
		{"url", required_argument, NULL, O_URL},
		{"pin", required_argument, NULL, O_PIN},
		{"manifest", required_argument, NULL, O_MANIFEST},
		{"server-name", required_argument, NULL, O_SERVERNAME},
		{"recovery-key", required_argument, NULL, O_RECKEY},
		{"recovery-out", required_argument, NULL, O_RECOUT},
		{"recovery-file", required_argument, NULL, O_RECFILE},
		{"record", required_argument, NULL, O_RECORD},
		{"replicas", required_argument, NULL, O_REPLICAS},
		{"help", no_argument, NULL, O_HELP},
		{"sgx", no_argument, NULL, O_SGX},
		{"name", required_argument, NULL, O_NAME},
		{"host", required_argument, NULL, O_HOST},
		{"port", required_argument, NULL, O_PORT},
		{"pccs-url", required_argument, NULL, O_PCCS},
		{"coordinator-mrenclave", required_argument, NULL, O_COORDMRE},
		{"accept-simulation-quotes", no_argument, NULL, O_ACCEPTSIMQ},
		{"metrics", required_argument, NULL, O_METRICS},
		{NULL, 0, NULL, 0},
	};
	struct mse_coordclient_manifest_opts mo;
	struct mse_coordclient_conn conn;
	const char *sub, *out = NULL, *owner = NULL, *coord = NULL, *project = NULL,
			 *manifest = NULL, *dns[MAX_LIST], *reckey = NULL, *recout = NULL,
			 *recfile = "recovery.bin", *record = NULL, *name = NULL, *host = NULL,
			 *pccs = NULL, *coord_mre = NULL, *metrics = NULL;
	int sgx = 0, accept_simq = 0;
	uint16_t port = 0;
	char recout_buf[4200], record_buf[4200];
	unsigned replicas = 0;
	uint8_t mres[MAX_LIST][32];
	char secrets[4200], toseal[4200];
	struct mse_err err;
	unsigned long long v;
	int c;

	mse_err_clear(&err);
	memset(&mo, 0, sizeof(mo));
	memset(&conn, 0, sizeof(conn));
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage();
		return argc < 2 ? MSE_EXIT_USAGE : MSE_EXIT_OK;
	}
	sub = argv[1];
	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_OUT: out = optarg; break;
		case O_OWNER: owner = optarg; break;
		case O_COORD: coord = optarg; break;
		case O_CERT: mo.coordinator_cert = optarg; break;
		case O_PACKAGE: mo.package = optarg; break;
		case O_KEY: mo.code_key = optarg; break;
		case O_PROJECT: project = optarg; break;
		case O_SECRETS: mo.secrets = optarg; break;
		case O_TOSEAL: mo.secrets_to_seal = optarg; break;
		case O_DNS:
			if (mo.n_dns == MAX_LIST)
				return cli_usage_error("coordinator", "--dns: at most %d names", MAX_LIST);
			dns[mo.n_dns++] = optarg;
			break;
		case O_DID: mo.deployment_id = optarg; break;
		case O_SEQ:
			if (parse_num(optarg, 9007199254740991ULL, &v) != 0 || v == 0)
				return cli_usage_error("coordinator", "--seq: expected 1..2^53-1, got \"%s\"", optarg);
			mo.seq = v;
			break;
		case O_APP: mo.app = optarg; break;
		case O_MRE:
			if (mo.n_mrenclaves == MAX_LIST || strlen(optarg) != 64 ||
			    mse_hex_decode_exact(mres[mo.n_mrenclaves], 32, optarg, 64) != 0)
				return cli_usage_error("coordinator", "--mrenclave: expected 64 hex digits, got \"%s\"", optarg);
			mo.n_mrenclaves++;
			break;
		case O_NOSIM: mo.no_sim_identity = 1; break;
		case O_SIGNER: mo.signer_key = optarg; break;
		case O_PRODID:
			if (parse_num(optarg, 65535, &v) != 0)
				return cli_usage_error("coordinator", "--isvprodid: expected 0..65535, got \"%s\"", optarg);
			mo.isvprodid = (uint16_t)v;
			break;
		case O_MINSVN:
			if (parse_num(optarg, 65535, &v) != 0)
				return cli_usage_error("coordinator", "--min-isvsvn: expected 0..65535, got \"%s\"", optarg);
			mo.min_isvsvn = (uint16_t)v;
			break;
		case O_ACCEPT: mo.accept_status = optarg; break;
		case O_ALLOWSIM: mo.allow_simulation = 1; break;
		case O_EXPIRED: mo.accept_expired_collateral = 1; break;
		case O_BOOT: mo.bootstrap = optarg; break;
		case O_SIZE:
			if (parse_num(optarg, 4294967295ULL, &v) != 0 || v == 0)
				return cli_usage_error("coordinator", "--size: expected megabytes > 0, got \"%s\"", optarg);
			mo.size_mb = v;
			break;
		case O_URL: conn.url = optarg; break;
		case O_PIN: conn.pin = optarg; break;
		case O_MANIFEST: manifest = optarg; break;
		case O_SERVERNAME: conn.server_name = optarg; break;
		case O_SGX: sgx = 1; break;
		case O_NAME: name = optarg; break;
		case O_HOST: host = optarg; break;
		case O_PCCS: pccs = optarg; break;
		case O_COORDMRE: coord_mre = optarg; break;
		case O_ACCEPTSIMQ: accept_simq = 1; break;
		case O_METRICS:
			if (cli_hostport("coordinator", "metrics", optarg) != 0)
				return MSE_EXIT_USAGE;
			metrics = optarg;
			break;
		case O_PORT:
			if (parse_num(optarg, 65535, &v) != 0 || v == 0)
				return cli_usage_error("coordinator", "--port: expected 1..65535, got \"%s\"", optarg);
			port = (uint16_t)v;
			break;
		case O_RECKEY: reckey = optarg; break;
		case O_RECOUT: recout = optarg; break;
		case O_RECFILE: recfile = optarg; break;
		case O_RECORD: record = optarg; break;
		case O_REPLICAS:
			if (parse_num(optarg, 64, &v) != 0 || v == 0)
				return cli_usage_error("coordinator", "--replicas: expected 1..64, got \"%s\"", optarg);
			replicas = (unsigned)v;
			break;
		case O_HELP:
		case 'h':
			usage();
			return MSE_EXIT_OK;
		default:
			return cli_usage_error("coordinator", "unknown or incomplete option \"%s\"",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("coordinator", "unexpected argument \"%s\"", argv[optind]);
	mo.dns = dns;
	mo.mrenclaves = (const uint8_t(*)[32])mres;
	if (metrics && strcmp(sub, "replica"))
		return cli_usage_error("coordinator", "--metrics: a replica's option (mse coordinator "
						      "replica ... --metrics HOST:PORT), not %s's", sub);
	if (accept_simq && strcmp(sub, "start") && strcmp(sub, "replica") && strcmp(sub, "measure") &&
	    strcmp(sub, "manifest"))
		return cli_usage_error("coordinator", "--accept-simulation-quotes: an option of start, "
						      "replica, measure and manifest, not %s", sub);
	if (accept_simq && !sgx)
		return cli_usage_error("coordinator", "--accept-simulation-quotes goes with --sgx");
	if (accept_simq) {
		/* The enclaves trust this machine's simulation root: --trust-sim-root, measured. */
		if (mse_coordclient_sim_root_hex(&g_sim_root, &err) != 0)
			return cli_fail("coordinator", &err);
		mo.sgx_sim_root_hex = g_sim_root;
	}

	if (!strcmp(sub, "keygen")) {
		if (!out)
			return cli_usage_error("coordinator", "keygen: --out PREFIX is required");
		if (mse_coordclient_keygen(out, &err) != 0)
			return cli_fail("coordinator", &err);
		printf("%s.key (private, keep it), %s.pub (give it to the operator)\n", out, out);
		return MSE_EXIT_OK;
	}
	if (!strcmp(sub, "measure")) {
		uint8_t pk[32], mre[32];
		char bin[4096], hex[65];

		if (!owner)
			return cli_usage_error("coordinator", "measure: --owner-key PUB is required");
		if (mse_coordclient_load_pub(owner, pk, &err) != 0)
			return cli_fail("coordinator", &err);
		if (coord)
			snprintf(bin, sizeof(bin), "%s", coord);
		else if (mse_cspawn_coordinator_path(bin, sizeof(bin), &err) != 0)
			return cli_fail("coordinator", &err);
		if (sgx) {
			char gv[128], pkhex[65];

			if (mse_coordclient_measure_sgx(bin, pk, g_sim_root, mre, gv, sizeof(gv), &err) != 0 ||
			    mse_hex_encode(hex, sizeof(hex), mre, 32) != 0 ||
			    mse_hex_encode(pkhex, sizeof(pkhex), pk, 32) != 0)
				return cli_fail("coordinator", &err);
			fprintf(stderr, "hashed with %s: %s, its manifest (loader.argv with owner key "
					"%s), Gramine's runtime and the system libraries\n",
				gv, bin, pkhex);
			printf("%s\n", hex);
			return MSE_EXIT_OK;
		}
		if (mse_coordclient_measure(bin, pk, mre, &err) != 0 ||
		    mse_hex_encode(hex, sizeof(hex), mre, 32) != 0)
			return cli_fail("coordinator", &err);
		printf("%s\n", hex);
		return MSE_EXIT_OK;
	}
	if (!strcmp(sub, "replica")) {
		struct mse_cspawn_opts so;
		struct mse_instance inst;

		if (!name || !mo.package || !conn.url || !coord_mre)
			return cli_usage_error("coordinator", "replica: --name, --package, --url and "
					       "--coordinator-mrenclave are required");
		if (!sgx && (mo.signer_key || pccs))
			return cli_usage_error("coordinator", "replica: --signer-key and --pccs-url go with --sgx");
		memset(&so, 0, sizeof(so));
		so.name = name;
		so.host = host;
		so.port = port;
		so.package = mo.package;
		so.coordinator = conn.url;
		so.coordinator_mrenclave = coord_mre;
		so.san = mo.n_dns ? dns[0] : NULL;
		so.size_mb = (uint32_t)mo.size_mb;
		so.sgx = sgx;
		so.signer_key = mo.signer_key;
		so.pccs_url = pccs;
		so.sim_root_hex = g_sim_root;
		so.metrics = metrics;
		if (mse_cspawn_replica(&so, &inst, &err) != 0)
			return cli_fail("coordinator", &err);
		printf("replica %s started on %s:%u (%s), attesting to %s\n", inst.name, inst.host,
		       (unsigned)inst.port, sgx ? "SGX" : "SIMULATION - not confidential", conn.url);
		if (inst.metrics[0])
			printf("metrics on http://%s/metrics\n", inst.metrics);
		if (inst.mrenclave[0])
			printf("MRENCLAVE %s\nMRSIGNER %s (from its SIGSTRUCT; the owner's manifest "
			       "accepts it with `mse coordinator manifest --sgx`)\n",
			       inst.mrenclave, inst.mrsigner);
		return MSE_EXIT_OK;
	}
	if (!strcmp(sub, "start")) {
		struct mse_cspawn_opts so;
		struct mse_instance inst;
		uint8_t pk[32];
		char pkhex[65];

		if (!name || !owner)
			return cli_usage_error("coordinator", "start: --name NAME and --owner-key PUB are required");
		if (!sgx && (mo.signer_key || pccs))
			return cli_usage_error("coordinator", "start: --signer-key and --pccs-url go with --sgx");
		if (mse_coordclient_load_pub(owner, pk, &err) != 0 ||
		    mse_hex_encode(pkhex, sizeof(pkhex), pk, 32) != 0)
			return cli_fail("coordinator", &err);
		memset(&so, 0, sizeof(so));
		so.name = name;
		so.host = host;
		so.port = port;
		so.owner_key = pkhex;
		so.sgx = sgx;
		so.signer_key = mo.signer_key;
		so.pccs_url = pccs;
		so.sim_root_hex = g_sim_root;
		if (mse_cspawn_coordinator(&so, &inst, &err) != 0)
			return cli_fail("coordinator", &err);
		printf("coordinator %s listening on %s:%u (%s)\n", inst.name, inst.host, (unsigned)inst.port,
		       sgx ? "SGX" : "SIMULATION - not confidential");
		if (inst.mrenclave[0])
			printf("MRENCLAVE %s\nMRSIGNER %s (from its SIGSTRUCT; the owner checks MRENCLAVE "
			       "with `mse coordinator measure --sgx`)\n",
			       inst.mrenclave, inst.mrsigner);
		return MSE_EXIT_OK;
	}
	if (!strcmp(sub, "manifest")) {
		char *json = NULL;
		size_t len = 0;
		int rc;

		char made[4096] = "";

		if (!mo.coordinator_cert || (!mo.package && !project) || (mo.package && !mo.code_key))
			return cli_usage_error("coordinator", "manifest: --coordinator-cert and --project DIR, "
					       "or --package with --code-key, are required");
		mo.project_dir = project;
		mo.made_package = made;
		mo.sgx_identity = sgx;
		mo.recovery_key = reckey;
		if (project) {
			snprintf(secrets, sizeof(secrets), "%s/secrets.json", project);
			snprintf(toseal, sizeof(toseal), "%s/secrets_to_seal.json", project);
			if (!mo.secrets && mse_file_exists(secrets))
				mo.secrets = secrets;
			if (!mo.secrets_to_seal && mse_file_exists(toseal))
				mo.secrets_to_seal = toseal;
		}
		if (mse_coordclient_manifest(&mo, &json, &len, &err) != 0)
			return cli_fail("coordinator", &err);
		if (made[0])
			fprintf(stderr, "packaged %s (its code key beside it, 0600): run the replicas "
					"from this package\n",
				made);
		if (out) {
			rc = mse_file_write_atomic(out, json, len, MSE_MODE_SECRET, &err);
			if (rc == 0)
				fprintf(stderr, "manifest written to %s (sign and upload it with `mse coordinator set`)\n", out);
		} else {
			rc = fwrite(json, 1, len, stdout) == len ? 0 : -1;
			putchar('\n');
		}
		free(json);
		return rc == 0 ? MSE_EXIT_OK : cli_fail("coordinator", &err);
	}
	if (!conn.url || !conn.pin)
		return cli_usage_error("coordinator", "%s: --url HOST:PORT and --pin RATLS.pem are required "
				       "(the pin is the ratls.pem `mse verify --output` saved)", sub);
	if (!strcmp(sub, "set") || !strcmp(sub, "update")) {
		char *st = NULL;
		int has_rk = 0;

		if (!manifest || !owner)
			return cli_usage_error("coordinator", "%s: --manifest FILE and --owner-key PRIV are required", sub);
		{
			/* Does the manifest carry a recovery key? Then recovery.bin comes back. */
			uint8_t *mt = NULL;
			size_t ml = 0;

			if (mse_file_read(manifest, 1u << 20, &mt, &ml, &err) != 0)
				return cli_fail("coordinator", &err);
			has_rk = memmem(mt, ml, "\"recovery_key\"", 14) != NULL;
			free(mt);
		}
		if (!recout)
			beside(recout_buf, sizeof(recout_buf), manifest, "recovery.bin");
		if (!record)
			default_record(record_buf, sizeof(record_buf), owner);
		conn.recovery_out = has_rk ? (recout ? recout : recout_buf) : NULL;
		conn.record = record ? record : record_buf;
		if (mse_coordclient_set(&conn, manifest, owner, &st, &err) != 0)
			return cli_fail("coordinator", &err);
		printf("%s\n", st);
		free(st);
		if (conn.recovery_out)
			fprintf(stderr, "recovery.bin written to %s (0600): keep it, with the recovery "
					"key, away from the operator\n",
				conn.recovery_out);
		fprintf(stderr, "seq recorded in %s (mse coordinator status --record)\n", conn.record);
		if (!strcmp(sub, "update")) {
			struct mse_roll_opts ro = {.coordinator = conn.url, .package = mo.package,
						   .replicas = replicas, .progress = rolled};
			struct mse_roll_result rr;
			uint8_t *pin = NULL, mre[32];
			size_t pl = 0;
			char mre_hex[65];
			unsigned i;

			/* The replicas expect the coordinator the owner verified: its MRENCLAVE from the pin. */
			if (mse_file_read(conn.pin, 1u << 20, &pin, &pl, &err) != 0 ||
			    mse_coordclient_pin_mrenclave(pin, pl, mre, &err) != 0 ||
			    mse_hex_encode(mre_hex, sizeof(mre_hex), mre, 32) != 0) {
				free(pin);
				return cli_fail("coordinator", &err);
			}
			free(pin);
			ro.coordinator_mrenclave = mre_hex;
			if (mse_roll_replicas(&ro, &rr, &err) != 0)
				return cli_fail("coordinator", &err);
			for (i = 0; i < rr.n; i++)
				printf("replica %s https://localhost:%u/\n", rr.names[i], (unsigned)rr.ports[i]);
			fprintf(stderr, "%u replaced, %u removed\n", rr.replaced, rr.removed);
		}
		return MSE_EXIT_OK;
	}
	if (!strcmp(sub, "recover")) {
		char *st = NULL;

		if (!reckey || !owner)
			return cli_usage_error("coordinator", "recover: --recovery-key PRIV and --owner-key PRIV are required");
		if (mse_coordclient_recover(&conn, recfile, reckey, owner, &st, &err) != 0)
			return cli_fail("coordinator", &err);
		printf("%s\n", st);
		free(st);
		return MSE_EXIT_OK;
	}
	if (!strcmp(sub, "ca") || !strcmp(sub, "status")) {
		char *body = NULL;
		size_t len = 0;
		int rc = 0;

		if (mse_coordclient_get(&conn, !strcmp(sub, "ca") ? "/ca" : "/status", &body, &len, &err) != 0)
			return cli_fail("coordinator", &err);
		if (out)
			rc = mse_file_write_atomic(out, body, len, MSE_MODE_PUBLIC, &err);
		else
			fwrite(body, 1, len, stdout);
		if (!out && !strcmp(sub, "status"))
			putchar('\n');
		if (rc == 0 && record && !strcmp(sub, "status") &&
		    mse_coordclient_check_record(record, body, &err) != 0)
			rc = -1;
		free(body);
		return rc == 0 ? MSE_EXIT_OK : cli_fail("coordinator", &err);
	}
	return cli_usage_error("coordinator", "unknown subcommand \"%s\" (keygen, measure, start, replica, manifest, set, update, ca, status, recover)", sub);
}

int cmd_coordinator(int argc, char **argv)
{
	int rc = coordinator(argc, argv);

	free(g_sim_root);
	g_sim_root = NULL;
	return rc;
}
