/* SPDX-License-Identifier: Apache-2.0 */
/* mse-coordinator — attests replicas against the owner's manifest, is their
 * CA and gives them the app key. See src/coordinator/coordinator.h and
 * docs/coordinator.md. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "common/num.h"
#include "attest/collateral.h"
#include "attest/pccs.h"
#include "attest/quoter.h"
#include "attest/ratlscert.h"
#include "attest/sim.h"
#include "attest/simmeasure.h"
#include "common/file.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/version.h"
#include "common/wipe.h"
#include "coordinator/coordinator.h"
#include "crypto/ckeys.h"
#include "net/server.h"
#include "net/tls.h"

static const char usage_text[] =
	"Usage: mse-coordinator --owner-key HEX [--state-dir DIR] [--host ADDR] [--port PORT]\n"
	"                       [--info-dir DIR] [--san NAME] [--subject RFC4514]\n"
	"                       [--collateral DIR | --pccs-url URL]\n"
	"                       [--simulation] [--sim-dir DIR] [--attestation-dir DIR]\n"
	"                       [--trust-sim-root HEX]\n"
	"                       [--rate N] [--threads N] [--log-level LEVEL]\n"
	"\n"
	"Runs in its own enclave (or its simulation): serves the coordinator API over its\n"
	"RA-TLS certificate, accepts the manifest signed by the owner, attests replicas\n"
	"(mutual RA-TLS) and provisions them with the code key, secrets, a certificate\n"
	"from its CA and the app key. docs/coordinator.md has the API.\n"
	"\n"
	"  --owner-key HEX       the owner's Ed25519 public key (64 hex digits); MEASURED:\n"
	"                        the MRENCLAVE depends on it (`mse coordinator measure`)\n"
	"  --state-dir DIR       sealed state, ratls.pem, coordinator.json (default ./coordinator)\n"
	"  --info-dir DIR        where ratls.pem and coordinator.json go instead (SGX: a plain\n"
	"                        mount beside the encrypted state)\n"
	"  --host ADDR           listen address (default 0.0.0.0)\n"
	"  --port PORT           listen port (default 7443; 0 = ephemeral)\n"
	"                        (without --host/--port: $MSE_COORDINATOR_LISTEN=HOST:PORT, not\n"
	"                        measured, when set)\n"
	"  --san NAME            RA-TLS certificate name (default localhost)\n"
	"  --subject RFC4514     RA-TLS certificate subject (default CN=mse-coordinator)\n"
	"  --collateral DIR      collateral to verify replicas' quotes (simulation: the\n"
	"                        simulation's collateral/)\n"
	"  --pccs-url URL        SGX: fetch each replica's collateral from this PCCS (default\n"
	"                        $MSE_PCCS_URL, else the QCNL configuration's pccs_url); a\n"
	"                        replica whose collateral cannot be had is refused [pccs]\n"
	"  --simulation          SGX simulation even if an SGX device exists\n"
	"  --sim-dir DIR         simulation directory (default $MSE_SIM_DIR or ~/.config/mse/sim)\n"
	"  --attestation-dir DIR Gramine attestation interface (default /dev/attestation)\n"
	"  --trust-sim-root HEX  UNSAFE outside tests: outside simulation, also accept\n"
	"                        replicas whose quotes chain to this simulation root CA\n"
	"                        (DER, lowercase hex) when the manifest allows simulation;\n"
	"                        measured under SGX (the tests' Gramine stand-in)\n"
	"  --rate N              requests per second per client address (default 200)\n"
	"  --threads N           worker threads (default 4)\n"
	"  --log-level LEVEL     debug, info (default), warn or error\n"
	"\n"
	"Exit status: 0 after SIGTERM, 1 on failure, 2 usage error.\n";

static int usage_error(const char *fmt, ...) MSE_PRINTF(1, 2);

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = mse_usage_verror("mse-coordinator", fmt, ap);
	va_end(ap);
	return rc;
}


static struct mse_server *volatile g_server;

static void on_signal(int sig)
{
	(void)sig;
	if (g_server)
		mse_server_stop(g_server);
}

/* Replicas are verified from their quote in the handler, not by X.509. */
static int accept_any(int ok, X509_STORE_CTX *ctx)
{
	(void)ok;
	(void)ctx;
	return 1;
}

struct opts {
	uint8_t owner[32];
	const char *owner_hex, *state_dir, *info_dir, *host, *san, *subject, *collateral, *sim_dir,
		*att_dir, *pccs_url, *trust_sim_root;
	uint16_t port;
	int simulation, threads;
	unsigned rate;
};

static int write_info(const struct opts *o, const char *sim, const uint8_t mre[32],
		      uint16_t port, const char *cert_pem, struct mse_err *err)
{
	char path[4200], m[65];
	json_t *j;
	char *t;
	int rc;

	snprintf(path, sizeof(path), "%s/ratls.pem", o->info_dir);
	if (mse_file_write_atomic(path, cert_pem, strlen(cert_pem), MSE_MODE_PUBLIC, err) != 0)
		return -1;
	if (mse_hex_encode(m, sizeof(m), mre, 32) != 0)
		m[0] = '\0';
	j = json_pack("{s:s,s:s,s:s,s:b,s:i,s:I,s:s,s:s}", "role", "coordinator", "mrenclave", m,
		      "owner_key", o->owner_hex, "simulation", sim != NULL, "port", port, "pid",
		      (json_int_t)getpid(), "ratls_certificate", "ratls.pem", "version",
		      MSE_VERSION);
	t = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (!t)
		return mse_err_set(err, "out of memory");
	snprintf(path, sizeof(path), "%s/coordinator.json", o->info_dir);
	rc = mse_file_write_atomic(path, t, strlen(t), MSE_MODE_PUBLIC, err);
	free(t);
	return rc;
}

static int run(const struct opts *o, struct mse_err *err)
{
	char sim_dir[4096], attfile[4200], path[4200];
	const char *att = o->att_dir ? o->att_dir : MSE_QUOTER_GRAMINE_DIR;
	struct mse_quoter *q = NULL;
	struct mse_ratlscert cert = {0};
	struct mse_ratlscert_params rp;
	struct mse_collateral coll;
	struct mse_pccs_opts pccs;
	struct mse_coord_config cc;
	struct mse_coord *co = NULL;
	struct mse_server_config sc;
	struct mse_server *srv = NULL;
	SSL_CTX *ctx = NULL;
	uint8_t exe[32], mre[32] = {0}, seal[MSE_SEALING_KEY_LEN], *root_der = NULL;
	size_t root_len = 0;
	struct sigaction sa;
	int sim, rc = -1;

	memset(&coll, 0, sizeof(coll));
	memset(&cc, 0, sizeof(cc));
	snprintf(attfile, sizeof(attfile), "%s/attestation_type", att);
	sim = o->simulation || (!o->att_dir && !mse_file_exists(attfile));
	if (mse_file_mkdirs(o->state_dir, 0700, err) != 0 ||
	    mse_file_mkdirs(o->info_dir, 0700, err) != 0)
		goto out;
	if (o->sim_dir)
		snprintf(sim_dir, sizeof(sim_dir), "%s", o->sim_dir);
	else if (mse_sim_dir(sim_dir, sizeof(sim_dir), err) != 0)
		goto out;
	if (sim) {
		mse_warn("SIMULATION - not confidential: no SGX enclave protects this process");
		if (mse_simmeasure_file_sha256("/proc/self/exe", exe, err) != 0)
			goto out;
		mse_simmeasure_coordinator(exe, o->owner, mre);
		if (!mse_sim_exists(sim_dir)) {
			mse_info("no SGX simulation in %s: creating one", sim_dir);
			if (mse_sim_init(sim_dir, 0, err) != 0)
				goto out;
		}
		if (mse_quoter_sim(sim_dir, mre, &q, err) != 0)
			goto out;
	} else if (mse_quoter_gramine(att, &q, err) != 0) {
		goto out;
	}
	if (mse_quoter_enclave_key(q, cc.enclave_sk, cc.enclave_pk, err) != 0 ||
	    mse_quoter_sealing_key(q, seal, err) != 0 ||
	    mse_ckeys_state_key(seal, sizeof(seal), cc.state_key, err) != 0)
		goto out;
	rp = (struct mse_ratlscert_params){o->subject, o->san, (int64_t)time(NULL) + 365L * 86400};
	if (mse_ratlscert_create(q, &rp, cc.enclave_pk, &cert, err) != 0)
		goto out;
	if (cert.quote_len >= 48 + 384)
		memcpy(mre, cert.quote + 48 + 64, 32);
	/* Replicas' collateral: the operator's directory, the simulation's, or
	 * (SGX) Intel's from the PCCS for each replica's platform. */
	mse_pccs_opts_init(&pccs);
	if (o->collateral) {
		if (mse_collateral_load_dir(&coll, o->collateral, err) != 0)
			goto out;
		cc.coll = &coll;
	} else if (sim) {
		snprintf(path, sizeof(path), "%s/collateral", sim_dir);
		if (mse_collateral_load_dir(&coll, path, err) != 0)
			goto out;
		cc.coll = &coll;
	} else {
		char base[512];

		pccs.url = o->pccs_url ? o->pccs_url : getenv("MSE_PCCS_URL");
		if (pccs.url && !*pccs.url)
			pccs.url = NULL;
		/* Fail at start, not at the first replica, when no PCCS is known. */
		if (mse_pccs_base_url(&pccs, base, sizeof(base), err) != 0) {
			mse_err_prefix(err, "outside simulation replicas are verified with Intel's "
					    "collateral from a PCCS (--pccs-url, $MSE_PCCS_URL or "
					    MSE_PCCS_QCNL_CONF ") or --collateral DIR");
			goto out;
		}
		mse_info("replicas' collateral from the PCCS at %s", base);
		cc.pccs = &pccs;
	}
	/* A simulation root is the operator's own key: an enclave trusts one only
	 * when its measured argv names it (--trust-sim-root, tests only). */
	snprintf(path, sizeof(path), "%s/root_ca.der", sim_dir);
	if (sim && mse_file_exists(path) &&
	    mse_file_read(path, 1 << 16, &root_der, &root_len, err) != 0)
		goto out;
	if (!sim && o->trust_sim_root) {
		if (mse_sim_root_from_hex(o->trust_sim_root, &root_der, &root_len, err) != 0)
			goto out;
		mse_warn("UNSAFE: replicas whose quotes chain to the simulation root given by "
			 "--trust-sim-root are accepted when the manifest allows simulation (tests only)");
	}
	memcpy(cc.owner_pk, o->owner, 32);
	cc.state_dir = o->state_dir;
	cc.sim_root_der = root_der;
	cc.sim_root_len = root_len;
	cc.simulation = sim;
	cc.rate_per_sec = o->rate;
	cc.allow_recovery = 1;
	if (mse_coord_new(&cc, &co, err) != 0)
		goto out;
	if (!(ctx = mse_tls_ctx_from_x509(cert.cert, NULL, cert.key, err)))
		goto out;
	/* Ask for a client certificate (replicas send their RA-TLS one; the
	 * owner's tools send none): its quote is verified per request. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any);
	mse_server_config_init(&sc);
	sc.host = o->host;
	sc.port = o->port;
	sc.tls = ctx;
	sc.handler = mse_coord_handle;
	sc.user = co;
	sc.threads = o->threads;
	sc.max_body = MSE_COORD_MAX_RECOVERY;
	sc.max_connections = 1024;
	sc.max_head_bytes = 16384;
	sc.max_headers = 32;
	sc.head_timeout_ms = 10000;
	sc.idle_timeout_ms = 15000;
	if (mse_server_new(&sc, &srv, err) != 0)
		goto out;
	if (write_info(o, sim ? sim_dir : NULL, mre, mse_server_port(srv), cert.cert_pem, err) != 0)
		goto out;
	{
		char m[65];

		if (mse_hex_encode(m, sizeof(m), mre, 32) != 0)
			m[0] = '\0';
		mse_info("coordinator %s listening on %s:%u (mrenclave %s)%s", MSE_VERSION, o->host,
			 (unsigned)mse_server_port(srv), m, sim ? " SIMULATION" : "");
	}
	g_server = srv;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	rc = mse_server_run(srv, err);
	g_server = NULL;
	if (rc == 0)
		mse_info("stopped");
out:
	sodium_memzero(seal, sizeof(seal));
	mse_server_free(srv);
	mse_tls_ctx_free(ctx);
	mse_coord_free(co);
	sodium_memzero(&cc, sizeof(cc));
	mse_collateral_free(&coll);
	free(root_der);
	mse_ratlscert_free(&cert);
	mse_quoter_free(q);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"owner-key", required_argument, NULL, 'o'},
		{"state-dir", required_argument, NULL, 'w'},
		{"info-dir", required_argument, NULL, 'i'},
		{"pccs-url", required_argument, NULL, 'P'},
		{"host", required_argument, NULL, 'H'},
		{"port", required_argument, NULL, 'p'},
		{"san", required_argument, NULL, 'n'},
		{"subject", required_argument, NULL, 's'},
		{"collateral", required_argument, NULL, 'c'},
		{"simulation", no_argument, NULL, 'S'},
		{"sim-dir", required_argument, NULL, 'd'},
		{"attestation-dir", required_argument, NULL, 'A'},
		{"rate", required_argument, NULL, 'r'},
		{"threads", required_argument, NULL, 't'},
		{"log-level", required_argument, NULL, 'l'},
		{"trust-sim-root", required_argument, NULL, 'Z'},
		{NULL, 0, NULL, 0}};
	struct opts o;
	enum mse_log_level level = MSE_LOG_INFO;
	struct mse_err err;
	uint64_t v;
	int c, listen_given = 0;

	memset(&o, 0, sizeof(o));
	o.state_dir = "coordinator";
	o.host = "0.0.0.0";
	o.port = 7443;
	o.san = "localhost";
	o.subject = "CN=mse-coordinator";
	o.threads = 4;
	mse_err_clear(&err);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("mse-coordinator %s\n", MSE_VERSION);
			return 0;
		case 'o':
			if (strlen(optarg) != 64 || mse_hex_decode_exact(o.owner, 32, optarg, 64) != 0)
				return usage_error("--owner-key: expected 64 hex digits (Ed25519 public "
						   "key), got \"%s\"",
						   optarg);
			o.owner_hex = optarg;
			break;
		case 'w':
			o.state_dir = optarg;
			break;
		case 'i':
			o.info_dir = optarg;
			break;
		case 'P':
			o.pccs_url = optarg;
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
		case 'n':
			o.san = optarg;
			break;
		case 's':
			o.subject = optarg;
			break;
		case 'c':
			o.collateral = optarg;
			break;
		case 'S':
			o.simulation = 1;
			break;
		case 'd':
			o.sim_dir = optarg;
			break;
		case 'A':
			o.att_dir = optarg;
			break;
		case 'Z':
			if (mse_sim_root_from_hex(optarg, NULL, NULL, &err) != 0) {
				char m[1400];

				return usage_error("%s", mse_err_str(&err, m, sizeof(m)));
			}
			o.trust_sim_root = optarg;
			break;
		case 'r':
			if (mse_num_parse(optarg, 1, 1000000, &v) != 0)
				return usage_error("--rate: expected 1..1000000, got \"%s\"", optarg);
			o.rate = (unsigned)v;
			break;
		case 't':
			if (mse_num_parse(optarg, 1, 256, &v) != 0)
				return usage_error("--threads: expected 1..256, got \"%s\"", optarg);
			o.threads = (int)v;
			break;
		case 'l':
			if (mse_log_parse_level(optarg, &level) != 0)
				return usage_error("--log-level: expected debug|info|warn|error, got "
						   "\"%s\"",
						   optarg);
			break;
		default:
			return usage_error("unknown or incomplete option \"%s\"", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind]);
	if (!o.owner_hex)
		return usage_error("%s", "--owner-key HEX is required (the owner's Ed25519 public key)");
	if (!o.info_dir)
		o.info_dir = o.state_dir;
	/* Under SGX the argv is measured and fixed: the address comes from outside. */
	if (!listen_given && getenv("MSE_COORDINATOR_LISTEN") && *getenv("MSE_COORDINATOR_LISTEN")) {
		static char host[256];

		if (mse_num_hostport(getenv("MSE_COORDINATOR_LISTEN"), host, sizeof(host), &o.port) != 0)
			return usage_error("MSE_COORDINATOR_LISTEN: expected HOST:PORT, got \"%s\"",
					   getenv("MSE_COORDINATOR_LISTEN"));
		o.host = host;
	}
	for (c = 0; c < 64; c++) /* measured as lowercase hex: normalise */
		if (o.owner_hex[c] >= 'A' && o.owner_hex[c] <= 'F')
			return usage_error("%s", "--owner-key: use lowercase hex (it is measured as given)");
	if (sodium_init() < 0) {
		fputs("mse-coordinator: libsodium failed to initialise\n", stderr);
		return 1;
	}
	mse_wipe_install_jansson();
	mse_log_init("mse-coordinator", level);
	if (run(&o, &err) != 0) {
		mse_err_print(&err, "mse-coordinator", stderr);
		return 1;
	}
	return 0;
}
