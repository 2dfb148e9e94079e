/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse verify — verify an enclave's quote, collateral and measurements, and
 * save its trusted RA-TLS certificate. All checks are in src/attest/verify.c;
 * this file only gathers inputs (files, evidence.json, a live server), runs
 * mse_verify_* and prints the result. See mse-verify(1) (docs/man/mse-verify.1.scd).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "common/num.h"
#include "codeprovider/appverify.h"
#include "attest/collateral.h"
#include "attest/pccs.h"
#include "attest/quote.h"
#include "attest/ratls.h"
#include "attest/sim.h"
#include "attest/tcb.h"
#include "attest/verify.h"
#include "cli/cli.h"
#include "codeprovider/reverify.h"
#include "cli/verify_sigstruct.h"
#include "common/file.h"
#include "common/hex.h"

static const char usage_text[] =
	"Usage: mse verify (--quote FILE | --cert FILE | --url HOST:PORT | --evidence FILE)\n"
	"                  [--collateral DIR | --pccs URL|QCNL_CONF [--pccs-ca FILE] | --offline]\n"
	"                  [--mrenclave HEX] [--mrsigner HEX | --signer-key PEM]\n"
	"                  [--isvprodid N] [--min-isvsvn N] [--now TIME] [--json]\n"
	"                  [--output DIR [--any-enclave]]\n"
	"                  [--accept-tcb-status LIST] [--accept-expired-collateral]\n"
	"                  [--allow-missing-crl] [--strict] [--allow-simulation] [--sim-root FILE]\n"
	"                  [--mrtd HEX] [--rtmr N=HEX]... [--mrconfigid HEX] [--mrowner HEX]\n"
	"                  [--mrseam HEX] [--allow-debug-td] [--allow-service-td] [--allow-sept-ve]\n"
	"       mse verify --package FILE --evidence FILE [--output DIR] [--bootstrap FILE]\n"
	"                  [--allow-simulation] [policy options]\n"
	"       mse verify NAME [--project DIR] [--json]\n"
	"       mse verify --sigstruct FILE [--mrenclave HEX] [--mrsigner HEX | --signer-key PEM]\n"
	"                  [--isvprodid N] [--min-isvsvn N] [--json]\n"
	"\n"
	"Verify an SGX enclave's or a TDX TD's DCAP quote (SGX v3-v5, TDX v4 and v5) the way\n"
	"Intel's Quote Verification Library does: PCK chain to the pinned Intel SGX Root CA,\n"
	"CRLs, signed TCB info and QE identity, QE report, quote signature, TCB status and\n"
	"advisories (TDX: module identity, TCB level over TEE_TCB_SVN, TD relaunch), then the\n"
	"expected measurements and, for an RA-TLS certificate, that the quote binds its key.\n"
	"\n"
	"A local instance again (after 'mse restart' it has a new certificate):\n"
	"  NAME                fetch the evidence of the running instance NAME, verify it against\n"
	"                      the package recorded when it was deployed from DIR (default .;\n"
	"                      DIR/.mse/deployments/NAME.json) and refresh the pinned\n"
	"                      DIR/.mse/verified/ratls.pem\n"
	"A deployment (the code provider's check before 'mse run'):\n"
	"  --package FILE      the package you built: the expected MRENCLAVE is recomputed from\n"
	"                      its app.tar, the evidence's input arguments and the expected\n"
	"                      mse-bootstrap (simulation; see docs/simulation.md), or given with\n"
	"                      --mrenclave (SGX). MRSIGNER defaults to your simulation signer\n"
	"                      SGX (evidence from 'mse spawn --sgx'): recomputed by running\n"
	"                      gramine-sgx-sign on the same inputs with a throw-away key, which\n"
	"                      needs the same Gramine version (refused otherwise; docs/sgx.md)\n"
	"  --bootstrap FILE    the mse-bootstrap you expect (default: the one beside mse)\n"
	"A signed enclave:\n"
	"  --sigstruct FILE    the .sig gramine-sgx-sign wrote: its RSA-3072 signature, Q1 and\n"
	"                      Q2 are checked, MRENCLAVE, MRSIGNER, ISV values printed; the\n"
	"                      expected values below are checked when given; debug refused\n"
	"What to verify (one):\n"
	"  --quote FILE        a raw quote (quote.bin)\n"
	"  --cert FILE         an RA-TLS certificate, PEM or DER (quote in 1.2.840.113741.1337.6)\n"
	"  --url HOST:PORT     fetch the certificate from a TLS server (no trust: the quote decides)\n"
	"  --evidence FILE     MSE's evidence.json (certificate and collateral)\n"
	"Collateral:\n"
	"  --collateral DIR    tcb_info.json, qe_identity.json, *_issuer_chain.pem, pck_crl.der,\n"
	"                      root_ca_crl.der (default with --evidence: the evidence's own;\n"
	"                      with --allow-simulation: $MSE_SIM_DIR/collateral)\n"
	"  --pccs URL|QCNL_CONF fetch it from this PCCS (or Intel's PCS) for the quote's FMSPC\n"
	"                      and PCK CA, through the cache ~/.cache/mse/collateral/, reused\n"
	"                      until its earliest nextUpdate. A FILE (not http[s]://) is Intel's\n"
	"                      QCNL config, e.g. /etc/sgx_default_qcnl.conf: its pccs_url is used\n"
	"  --pccs-ca FILE      PEM CA bundle for the PCCS's TLS certificate (self-signed PCCS)\n"
	"  --offline           use the collateral cache only, no network; fails if it has no\n"
	"                      current entry for this platform\n"
	"Expected enclave (each checked when given; none given: the measurement is reported\n"
	"\"not checked\" and any genuine enclave running any code passes):\n"
	"  --mrenclave HEX     64 hex digits: exactly this code and configuration\n"
	"  --mrsigner HEX      64 hex digits\n"
	"  --signer-key PEM    the signer's RSA public key (MRSIGNER = SHA-256 of its LE modulus)\n"
	"  --isvprodid N       expected ISVPRODID\n"
	"  --min-isvsvn N      minimum ISVSVN\n"
	"                      A signer identity (MRSIGNER + ISVPRODID + min ISVSVN) is only as\n"
	"                      trustworthy as the custody of the signing key: whoever holds it\n"
	"                      (the SGX operator, if it signed the enclave) can sign any enclave\n"
	"                      running any code. Prefer --mrenclave (or --package).\n"
	"Expected TD (TDX quotes; each optional, 96 hex digits, compared in constant time):\n"
	"  --mrtd HEX          MRTD (the TD's initial contents)\n"
	"  --rtmr N=HEX        RTMR N (0-3); repeat for several\n"
	"  --mrconfigid HEX, --mrowner HEX, --mrseam HEX   MRCONFIGID, MROWNER, MRSEAM (TDX module)\n"
	"  --allow-debug-td    accept a debug TD (refused by default: the host can read it)\n"
	"  --allow-service-td  accept a TD bound to a service TD (non-zero MRSERVICETD)\n"
	"  --allow-sept-ve     accept a TD without SEPT_VE_DISABLE\n"
	"  These are checked after Intel's checks and the TCB status: the failed step says which.\n"
	"Policy:\n"
	"  --accept-tcb-status LIST  comma-separated statuses accepted besides UpToDate:\n"
	"                      SWHardeningNeeded, ConfigurationNeeded, ConfigurationAndSWHardeningNeeded,\n"
	"                      OutOfDate, OutOfDateConfigurationNeeded, Revoked, and for TDX\n"
	"                      TDRelaunchAdvised, TDRelaunchAdvisedConfigurationNeeded\n"
	"  --accept-expired-collateral  collateral (TCB info, QE identity, CRLs, TCB signing\n"
	"                      certificate, the RA-TLS certificate) outside its validity window is\n"
	"                      reported instead of refused\n"
	"  --allow-missing-crl absent CRLs are reported instead of refused\n"
	"  --strict            refuse trailing bytes after the quote\n"
	"  --allow-simulation  accept quotes whose chain ends at the simulation root\n"
	"                      (NOT confidential); root from --sim-root or $MSE_SIM_DIR/root_ca.der\n"
	"                      ($MSE_SIM_DIR defaults to ~/.config/mse/sim)\n"
	"  --sim-root FILE     the simulation root CA (DER or PEM)\n"
	"  --now TIME          verify at TIME (YYYY-MM-DDTHH:MM:SSZ, YYYY-MM-DD or @EPOCH), for audits\n"
	"Output:\n"
	"  --json              print the result as one JSON object on stdout: \"ok\", the\n"
	"                      verified values, \"steps\", and on failure \"error\": {\"step\",\n"
	"                      \"file\", \"line\", \"column\", \"field\", \"expected\", \"actual\",\n"
	"                      \"message\"} (absent members omitted)\n"
	"  --output DIR        on success, write the trusted certificate to DIR/ratls.pem, which\n"
	"                      'mse run --ratls' pins. Needs an expected identity: --package,\n"
	"                      --mrenclave, or --mrsigner/--signer-key with --isvprodid and\n"
	"                      --min-isvsvn (a TD: --mrtd)\n"
	"  --any-enclave       with --output and no expected identity: trust any genuine enclave\n"
	"                      (whatever code it runs); you must then check its identity otherwise\n"
	"\n"
	"Exit status: 0 verified and accepted, 1 refused (the step, expected and actual value are\n"
	"printed), 2 usage error.\n";

struct verify_opts {
	const char *quote, *cert, *url, *evidence;
	const char *collateral, *mrenclave, *mrsigner, *signer_key;
	const char *now, *output, *accept, *sim_root;
	const char *isvprodid, *min_isvsvn;
	int json, accept_expired, allow_missing_crl, strict, allow_sim;
	const char *pccs, *pccs_ca;
	int offline, any_enclave;
	const char *package, *bootstrap;
	const char *mrtd, *rtmr[4], *mrconfigid, *mrowner, *mrseam;
	int allow_debug_td, allow_service_td, allow_sept_ve;
	const char *sigstruct;
};

enum {
	O_QUOTE = 256, O_CERT, O_URL, O_EVIDENCE, O_COLLATERAL, O_MRENCLAVE, O_MRSIGNER, O_SIGNER_KEY, O_NOW,
	O_JSON, O_OUTPUT, O_ACCEPT, O_EXPIRED, O_MISSING_CRL, O_STRICT, O_SIM, O_SIM_ROOT, O_ISVPRODID,
	O_MIN_ISVSVN, O_HELP, O_PCCS, O_PCCS_CA, O_OFFLINE, O_PACKAGE, O_BOOTSTRAP, O_MRTD, O_RTMR, O_MRCONFIGID,
	O_MROWNER, O_MRSEAM, O_DEBUG_TD, O_SERVICE_TD, O_SEPT_VE, O_SIGSTRUCT, O_ANY_ENCLAVE
};

/* Adding an option = one line here, one field above, one case below. */
static const struct option longopts[] = {
	{"quote", required_argument, NULL, O_QUOTE},
	{"cert", required_argument, NULL, O_CERT},
	{"url", required_argument, NULL, O_URL},
	{"evidence", required_argument, NULL, O_EVIDENCE},
	{"collateral", required_argument, NULL, O_COLLATERAL},
	{"mrenclave", required_argument, NULL, O_MRENCLAVE},
	{"mrsigner", required_argument, NULL, O_MRSIGNER},
	{"signer-key", required_argument, NULL, O_SIGNER_KEY},
	{"isvprodid", required_argument, NULL, O_ISVPRODID},
	{"min-isvsvn", required_argument, NULL, O_MIN_ISVSVN},
	{"now", required_argument, NULL, O_NOW},
	{"json", no_argument, NULL, O_JSON},
	{"output", required_argument, NULL, O_OUTPUT},
	{"accept-tcb-status", required_argument, NULL, O_ACCEPT},
	{"accept-expired-collateral", no_argument, NULL, O_EXPIRED},
	{"allow-missing-crl", no_argument, NULL, O_MISSING_CRL},
	{"strict", no_argument, NULL, O_STRICT},
	{"allow-simulation", no_argument, NULL, O_SIM},
	{"sim-root", required_argument, NULL, O_SIM_ROOT},
	{"pccs", required_argument, NULL, O_PCCS},
	{"pccs-ca", required_argument, NULL, O_PCCS_CA},
	{"offline", no_argument, NULL, O_OFFLINE},
	{"package", required_argument, NULL, O_PACKAGE},
	{"bootstrap", required_argument, NULL, O_BOOTSTRAP},
	{"any-enclave", no_argument, NULL, O_ANY_ENCLAVE},
	{"mrtd", required_argument, NULL, O_MRTD},
	{"rtmr", required_argument, NULL, O_RTMR},
	{"mrconfigid", required_argument, NULL, O_MRCONFIGID},
	{"mrowner", required_argument, NULL, O_MROWNER},
	{"mrseam", required_argument, NULL, O_MRSEAM},
	{"allow-debug-td", no_argument, NULL, O_DEBUG_TD},
	{"allow-service-td", no_argument, NULL, O_SERVICE_TD},
	{"allow-sept-ve", no_argument, NULL, O_SEPT_VE},
	{"sigstruct", required_argument, NULL, O_SIGSTRUCT},
	{"help", no_argument, NULL, O_HELP},
	{NULL, 0, NULL, 0},
};

static int parse_opts(int argc, char **argv, struct verify_opts *o)
{
	int c, sources;

	memset(o, 0, sizeof(*o));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_QUOTE: o->quote = optarg; break;
		case O_CERT: o->cert = optarg; break;
		case O_URL: o->url = optarg; break;
		case O_EVIDENCE: o->evidence = optarg; break;
		case O_COLLATERAL: o->collateral = optarg; break;
		case O_PCCS: o->pccs = optarg; break;
		case O_PCCS_CA: o->pccs_ca = optarg; break;
		case O_OFFLINE: o->offline = 1; break;
		case O_MRENCLAVE: o->mrenclave = optarg; break;
		case O_MRSIGNER: o->mrsigner = optarg; break;
		case O_SIGNER_KEY: o->signer_key = optarg; break;
		case O_ISVPRODID: o->isvprodid = optarg; break;
		case O_MIN_ISVSVN: o->min_isvsvn = optarg; break;
		case O_NOW: o->now = optarg; break;
		case O_JSON: o->json = 1; break;
		case O_OUTPUT: o->output = optarg; break;
		case O_ACCEPT: o->accept = optarg; break;
		case O_EXPIRED: o->accept_expired = 1; break;
		case O_MISSING_CRL: o->allow_missing_crl = 1; break;
		case O_STRICT: o->strict = 1; break;
		case O_SIM: o->allow_sim = 1; break;
		case O_SIM_ROOT: o->sim_root = optarg; break;
		case O_PACKAGE: o->package = optarg; break;
		case O_BOOTSTRAP: o->bootstrap = optarg; break;
		case O_ANY_ENCLAVE: o->any_enclave = 1; break;
		case O_MRTD: o->mrtd = optarg; break;
		case O_MRCONFIGID: o->mrconfigid = optarg; break;
		case O_MROWNER: o->mrowner = optarg; break;
		case O_MRSEAM: o->mrseam = optarg; break;
		case O_DEBUG_TD: o->allow_debug_td = 1; break;
		case O_SERVICE_TD: o->allow_service_td = 1; break;
		case O_SEPT_VE: o->allow_sept_ve = 1; break;
		case O_SIGSTRUCT: o->sigstruct = optarg; break;
		case O_RTMR:
			if (optarg[0] < '0' || optarg[0] > '3' || optarg[1] != '=')
				return cli_usage_error("verify", "--rtmr: expected N=HEX with N in 0..3, got \"%s\"", optarg);
			if (o->rtmr[optarg[0] - '0'])
				return cli_usage_error("verify", "--rtmr %c given twice", optarg[0]);
			o->rtmr[optarg[0] - '0'] = optarg + 2;
			break;
		case 'h':
		case O_HELP: fputs(usage_text, stdout); return 1;
		case ':': return cli_usage_error("verify", "option %s needs a value", argv[optind - 1]);
		default: return cli_usage_error("verify", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("verify", "unexpected argument '%s'", argv[optind]);
	if (o->package && (!o->evidence || o->quote || o->cert || o->url))
		return cli_usage_error("verify", "--package goes with --evidence (and no --quote, --cert, --url)");
	if (o->bootstrap && !o->package)
		return cli_usage_error("verify", "--bootstrap goes with --package");
	sources = !!o->quote + !!o->cert + !!o->url + !!o->evidence;
	if (o->sigstruct && sources == 0 && !o->package)
		return 0; /* a .sig alone: checked in verify_sigstruct */
	if (sources != 1)
		return cli_usage_error("verify", "give exactly one of --quote, --cert, --url, --evidence");
	if (o->collateral && (o->pccs || o->pccs_ca || o->offline))
		return cli_usage_error("verify", "--collateral excludes --pccs, --pccs-ca and --offline");
	if (!o->collateral && !o->pccs && !o->offline && !o->evidence && !o->allow_sim)
		return cli_usage_error("verify", "no collateral: give --collateral DIR, --pccs URL|QCNL_CONF "
					       "or --offline");
	if (o->pccs_ca && !o->pccs)
		return cli_usage_error("verify", "--pccs-ca needs --pccs");
	if (o->offline && (o->pccs || o->pccs_ca))
		return cli_usage_error("verify", "--offline uses the cache only: drop --pccs/--pccs-ca");
	if (o->mrsigner && o->signer_key)
		return cli_usage_error("verify", "--mrsigner and --signer-key are exclusive");
	if (o->output && o->quote)
		return cli_usage_error("verify", "--output needs a certificate (--cert, --url or --evidence)");
	if (o->any_enclave && (!o->output || o->package))
		return cli_usage_error("verify", "--any-enclave only goes with --output (and not with --package, "
					       "which names the enclave)");
	return 0;
}

static int parse_now(const char *s, time_t *out)
{
	char buf[40];
	char *end;

	if (s[0] == '@') {
		long long v = strtoll(s + 1, &end, 10);

		if (*end || end == s + 1 || v <= 0)
			return -1;
		*out = (time_t)v;
		return 0;
	}
	if (strlen(s) == 10) { /* YYYY-MM-DD: midnight UTC */
		snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
		s = buf;
	}
	return mse_tcb_parse_time(s, out);
}

static int parse_u16(const char *s, uint16_t *out)
{
	uint64_t v;

	if (mse_num_parse(s, 0, 65535, &v) != 0)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* The simulation directory, resolved as every module does (mse_sim_dir). */
static const char *sim_dir(char *buf, size_t n)
{
	struct mse_err e = {0};

	if (mse_sim_dir(buf, n, &e) != 0)
		snprintf(buf, n, ".");
	return buf;
}

/* Root CA for simulation, as DER (PEM accepted). */
static int load_sim_root(const char *path, int explicit_path, uint8_t **der, size_t *len, struct mse_err *err)
{
	uint8_t *raw = NULL;
	size_t n;
	int ret;

	*der = NULL;
	*len = 0;
	if (!explicit_path && !mse_file_exists(path))
		return 0;
	if (mse_file_read(path, 1 << 20, &raw, &n, err))
		return -1;
	if (n && raw[0] == 0x30) {
		*der = raw;
		*len = n;
		return 0;
	}
	{
		BIO *bio = BIO_new_mem_buf(raw, (int)n);
		X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
		int dl = x ? i2d_X509(x, NULL) : -1;

		ret = -1;
		if (dl > 0 && (*der = malloc((size_t)dl)) != NULL) {
			unsigned char *p = *der;

			*len = (size_t)i2d_X509(x, &p);
			ret = 0;
		}
		X509_free(x);
		BIO_free(bio);
	}
	free(raw);
	if (ret) {
		mse_err_step(err, "pck-chain");
		mse_err_field(err, "sim-root", "%s: not a DER or PEM certificate", path);
	}
	return ret;
}

static void hex32(char out[65], const uint8_t *b)
{
	if (mse_hex_encode(out, 65, b, 32) != 0)
		out[0] = 0;
}

static void hexn(char *out, size_t size, const uint8_t *b, size_t n)
{
	if (mse_hex_encode(out, size, b, n) != 0)
		out[0] = 0;
}

/* TDATTRIBUTES bits by name (TDX module ABI), "" if none set. */
static void td_attr_names(uint64_t a, char *out, size_t n)
{
	static const struct {
		uint64_t bit;
		const char *name;
	} bits[] = {{MSE_TD_ATTR_DEBUG, "DEBUG"},     {MSE_TD_ATTR_SEPT_VE_DISABLE, "SEPT_VE_DISABLE"},
		    {MSE_TD_ATTR_MIGRATABLE, "MIGRATABLE"}, {MSE_TD_ATTR_PKS, "PKS"},
		    {MSE_TD_ATTR_KL, "KL"},           {MSE_TD_ATTR_PERFMON, "PERFMON"}};
	uint64_t known = 0;

	out[0] = 0;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		known |= bits[i].bit;
		if (a & bits[i].bit)
			snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? "," : "", bits[i].name);
	}
	if (a & ~known)
		snprintf(out + strlen(out), n - strlen(out), "%sother:%016llx", out[0] ? "," : "",
			 (unsigned long long)(a & ~known));
}

static const char *body_name(uint16_t t)
{
	return t == MSE_QUOTE_BODY_TD15 ? "TD report 1.5" : t == MSE_QUOTE_BODY_TD10 ? "TD report 1.0" : "SGX report";
}

static void print_td_text(const struct mse_verify_result *r)
{
	const struct mse_td_report *t = &r->td;
	uint64_t a = mse_quote_td_attributes(t);
	char h[129], names[160];

	printf("quote:        TDX v%u, %s%s\n", r->quote_version, body_name(r->body_type),
	       r->trailing ? " (trailing bytes tolerated)" : "");
	hexn(h, sizeof(h), t->mr_td, 48);
	printf("mrtd:         %s\n", h);
	for (int i = 0; i < 4; i++) {
		hexn(h, sizeof(h), t->rtmr[i], 48);
		printf("rtmr%d:        %s\n", i, h);
	}
	hexn(h, sizeof(h), t->mr_config_id, 48);
	printf("mrconfigid:   %s\n", h);
	hexn(h, sizeof(h), t->mr_owner, 48);
	printf("mrowner:      %s\n", h);
	hexn(h, sizeof(h), t->mr_owner_config, 48);
	printf("mrownerconfig:%s\n", h);
	hexn(h, sizeof(h), t->mr_seam, 48);
	printf("mrseam:       %s\n", h);
	hexn(h, sizeof(h), t->mr_signer_seam, 48);
	printf("mrsignerseam: %s\n", h);
	hexn(h, sizeof(h), t->seam_attributes, 8);
	printf("seam_attributes: %s\n", h);
	td_attr_names(a, names, sizeof(names));
	hexn(h, sizeof(h), t->td_attributes, 8);
	printf("td_attributes: %s (%s)\n", h, names[0] ? names : "none");
	hexn(h, sizeof(h), t->xfam, 8);
	printf("xfam:         %s\n", h);
	hexn(h, sizeof(h), t->tee_tcb_svn, 16);
	printf("tee_tcb_svn:  %s\n", h);
	if (t->v15) {
		hexn(h, sizeof(h), t->tee_tcb_svn2, 16);
		printf("tee_tcb_svn2: %s\n", h);
		hexn(h, sizeof(h), t->mr_service_td, 48);
		printf("mrservicetd:  %s\n", h);
	}
	hexn(h, sizeof(h), t->report_data, 64);
	printf("report_data:  %s\n", h);
}

static void td_json(json_t *j, const struct mse_verify_result *r)
{
	const struct mse_td_report *t = &r->td;
	json_t *td = json_object(), *rt = json_array(), *attr = json_object();
	uint64_t a = mse_quote_td_attributes(t);
	char h[129], names[160];

	json_object_set_new(j, "tee", json_string("TDX"));
	json_object_set_new(j, "quote_version", json_integer(r->quote_version));
	json_object_set_new(j, "body_type", json_integer(r->body_type));
	json_object_set_new(j, "body", json_string(body_name(r->body_type)));
#define HEXF(key, p, n) (hexn(h, sizeof(h), (p), (n)), json_object_set_new(td, (key), json_string(h)))
	HEXF("mrtd", t->mr_td, 48);
	for (int i = 0; i < 4; i++) {
		hexn(h, sizeof(h), t->rtmr[i], 48);
		json_array_append_new(rt, json_string(h));
	}
	json_object_set_new(td, "rtmr", rt);
	HEXF("mrconfigid", t->mr_config_id, 48);
	HEXF("mrowner", t->mr_owner, 48);
	HEXF("mrownerconfig", t->mr_owner_config, 48);
	HEXF("mrseam", t->mr_seam, 48);
	HEXF("mrsignerseam", t->mr_signer_seam, 48);
	HEXF("seam_attributes", t->seam_attributes, 8);
	HEXF("td_attributes", t->td_attributes, 8);
	HEXF("xfam", t->xfam, 8);
	HEXF("tee_tcb_svn", t->tee_tcb_svn, 16);
	if (t->v15) {
		HEXF("tee_tcb_svn2", t->tee_tcb_svn2, 16);
		HEXF("mrservicetd", t->mr_service_td, 48);
	}
	HEXF("report_data", t->report_data, 64);
#undef HEXF
	json_object_set_new(attr, "debug", json_boolean(a & MSE_TD_ATTR_DEBUG));
	json_object_set_new(attr, "sept_ve_disable", json_boolean(a & MSE_TD_ATTR_SEPT_VE_DISABLE));
	json_object_set_new(attr, "migratable", json_boolean(a & MSE_TD_ATTR_MIGRATABLE));
	json_object_set_new(attr, "pks", json_boolean(a & MSE_TD_ATTR_PKS));
	json_object_set_new(attr, "kl", json_boolean(a & MSE_TD_ATTR_KL));
	json_object_set_new(attr, "perfmon", json_boolean(a & MSE_TD_ATTR_PERFMON));
	td_attr_names(a, names, sizeof(names));
	json_object_set_new(attr, "names", json_string(names));
	json_object_set_new(td, "td_attributes_decoded", attr);
	json_object_set_new(j, "td", td);
	json_object_set_new(j, "debug", json_boolean(a & MSE_TD_ATTR_DEBUG));
	json_object_set_new(j, "trailing_bytes", json_integer((json_int_t)r->trailing));
}

static void print_text(const struct mse_verify_result *r, const struct mse_err *err, int ok, const char *signer_note)
{
	char h[129], t[32];

	if (r->flags & MSE_VERIFY_F_SIMULATION)
		puts("SIMULATION — not confidential: the quote is signed by the local simulation root, not Intel");
	printf("result:       %s\n", ok ? "verified" : "REFUSED");
	if (!ok) {
		char buf[2048];

		printf("failed step:  %s\n", err->step[0] ? err->step : "?");
		printf("reason:       %s\n", mse_err_str(err, buf, sizeof(buf)));
	}
	if (r->tdx && (r->steps[MSE_STEP_PARSE] == MSE_STEP_OK || r->steps[MSE_STEP_PARSE] == MSE_STEP_WARN)) {
		print_td_text(r);
	} else if (r->steps[MSE_STEP_PARSE] == MSE_STEP_OK || r->steps[MSE_STEP_PARSE] == MSE_STEP_WARN) {
		printf("quote:        SGX v%u%s\n", r->quote_version, r->trailing ? " (trailing bytes tolerated)" : "");
		hex32(h, r->report.mr_enclave);
		printf("mrenclave:    %s\n", h);
		hex32(h, r->report.mr_signer);
		printf("mrsigner:     %s\n", h);
		printf("isvprodid:    %u\nisvsvn:       %u\n", r->report.isv_prod_id, r->report.isv_svn);
		if (mse_hex_encode(h, sizeof(h), r->report.report_data, 64) == 0)
			printf("report_data:  %s\n", h);
	}
	if (signer_note)
		printf("signer_pk:    %s\n", signer_note);
	if (r->steps[MSE_STEP_PCK] == MSE_STEP_OK) {
		char f[13], p[5];

		if (mse_hex_encode(f, sizeof(f), r->pck.fmspc, 6) == 0 && mse_hex_encode(p, sizeof(p), r->pck.pceid, 2) == 0)
			printf("platform:     FMSPC %s, PCE-ID %s, PCK %s CA\n", f, p, mse_pck_ca_name(r->pck.ca));
	}
	if (r->steps[MSE_STEP_TCB_LEVEL] == MSE_STEP_OK) {
		printf("tcb status:   %s (platform %s, QE %s)\n", mse_tcb_status_name(r->status),
		       mse_tcb_status_name(r->platform_status), mse_tcb_status_name(r->qe_status));
		printf("advisories:   %s\n", r->advisories[0] ? r->advisories : "none");
		if (r->tdx)
			printf("tdx tcb:      SGX level %s, TDX level %s, module %s %s%s\n", mse_tcb_status_name(r->sgx_status),
			       mse_tcb_status_name(r->tdx_level_status), r->tdx_module_id, mse_tcb_status_name(r->module_status),
			       r->relaunch_checked ? ", TD relaunch rule applied (TD report 1.5)" : "");
	}
	if (r->steps[MSE_STEP_MEASUREMENT] == MSE_STEP_NOT_CHECKED)
		puts("measurement:  NOT CHECKED — no expected MRENCLAVE, MRSIGNER, ISVPRODID or ISVSVN was "
		     "given: any genuine enclave running any code passes");
	if (r->notes[0])
		printf("accepted:     %s\n", r->notes);
	mse_tcb_format_time(r->now, t);
	printf("verified at:  %s\n", t);
	printf("steps:       ");
	for (int s = 0; s < MSE_STEP_COUNT; s++) {
		static const char *const st[] = {"-", "ok", "FAILED", "accepted", "not-checked"};

		printf(" %s=%s", mse_verify_step_name(s), st[r->steps[s]]);
	}
	putchar('\n');
}

static void print_json(const struct mse_verify_result *r, const struct mse_err *err, int ok, const char *signer_note)
{
	json_t *j = json_object(), *steps = json_object(), *adv = json_array();
	char h[129], t[32];
	char *s;

	json_object_set_new(j, "ok", json_boolean(ok));
	json_object_set_new(j, "simulation", json_boolean(r->flags & MSE_VERIFY_F_SIMULATION));
	if (r->flags & MSE_VERIFY_F_SIMULATION)
		json_object_set_new(j, "warning", json_string("SIMULATION — not confidential"));
	if (!ok) /* the shape every --json uses (cli.h) */
		json_object_set_new(j, "error", cli_json_error(err));
	if (r->tdx && (r->steps[MSE_STEP_PARSE] == MSE_STEP_OK || r->steps[MSE_STEP_PARSE] == MSE_STEP_WARN)) {
		td_json(j, r);
	} else if (r->steps[MSE_STEP_PARSE] == MSE_STEP_OK || r->steps[MSE_STEP_PARSE] == MSE_STEP_WARN) {
		json_object_set_new(j, "tee", json_string("SGX"));
		json_object_set_new(j, "quote_version", json_integer(r->quote_version));
		hex32(h, r->report.mr_enclave);
		json_object_set_new(j, "mrenclave", json_string(h));
		hex32(h, r->report.mr_signer);
		json_object_set_new(j, "mrsigner", json_string(h));
		json_object_set_new(j, "isvprodid", json_integer(r->report.isv_prod_id));
		json_object_set_new(j, "isvsvn", json_integer(r->report.isv_svn));
		json_object_set_new(j, "debug", json_boolean(r->report.attributes[0] & MSE_SGX_FLAG_DEBUG));
		if (mse_hex_encode(h, sizeof(h), r->report.report_data, 64) == 0)
			json_object_set_new(j, "report_data", json_string(h));
		json_object_set_new(j, "trailing_bytes", json_integer((json_int_t)r->trailing));
	}
	if (r->steps[MSE_STEP_PCK] == MSE_STEP_OK) {
		char f[13], p[5];

		if (mse_hex_encode(f, sizeof(f), r->pck.fmspc, 6) == 0 && mse_hex_encode(p, sizeof(p), r->pck.pceid, 2) == 0) {
			json_object_set_new(j, "fmspc", json_string(f));
			json_object_set_new(j, "pceid", json_string(p));
		}
		json_object_set_new(j, "pck_ca", json_string(mse_pck_ca_name(r->pck.ca)));
	}
	if (r->steps[MSE_STEP_TCB_LEVEL] == MSE_STEP_OK) {
		char buf[1024], *save = NULL, *tok;

		json_object_set_new(j, "tcb_status", json_string(mse_tcb_status_name(r->status)));
		json_object_set_new(j, "platform_tcb_status", json_string(mse_tcb_status_name(r->platform_status)));
		json_object_set_new(j, "qe_tcb_status", json_string(mse_tcb_status_name(r->qe_status)));
		if (r->tdx) {
			json_object_set_new(j, "sgx_tcb_status", json_string(mse_tcb_status_name(r->sgx_status)));
			json_object_set_new(j, "tdx_tcb_status", json_string(mse_tcb_status_name(r->tdx_level_status)));
			json_object_set_new(j, "tdx_module", json_string(r->tdx_module_id));
			json_object_set_new(j, "tdx_module_tcb_status", json_string(mse_tcb_status_name(r->module_status)));
			json_object_set_new(j, "td_relaunch_checked", json_boolean(r->relaunch_checked));
		}
		snprintf(buf, sizeof(buf), "%s", r->advisories);
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			json_array_append_new(adv, json_string(tok));
	}
	json_object_set_new(j, "advisories", adv);
	json_object_set_new(j, "collateral_expired", json_boolean(r->flags & MSE_VERIFY_F_COLLATERAL_EXPIRED));
	json_object_set_new(j, "collateral_not_yet_valid", json_boolean(r->flags & MSE_VERIFY_F_COLLATERAL_NOT_YET));
	json_object_set_new(j, "crl_missing", json_boolean(r->flags & MSE_VERIFY_F_CRL_MISSING));
	json_object_set_new(j, "accepted", json_string(r->notes));
	if (signer_note)
		json_object_set_new(j, "signer_pk", json_string(signer_note));
	mse_tcb_format_time(r->now, t);
	json_object_set_new(j, "now", json_string(t));
	for (int i = 0; i < MSE_STEP_COUNT; i++) {
		json_object_set_new(steps, mse_verify_step_name(i),
				    json_string(mse_verify_step_state_name(r->steps[i])));
	}
	json_object_set_new(j, "steps", steps);
	s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		puts(s);
	free(s);
	json_decref(j);
}

/* --sigstruct: the enclave as signed (src/cli/verify_sigstruct.c). */
static int verify_sigstruct(const struct verify_opts *o)
{
	struct verify_sigstruct_opts so = {.path = o->sigstruct, .signer_key = o->signer_key,
					   .json = o->json};
	uint8_t mrenclave[32], mrsigner[32];

	if (o->quote || o->cert || o->url || o->evidence || o->collateral || o->pccs || o->output)
		return cli_usage_error("verify", "--sigstruct checks a .sig file alone");
	if (o->mrenclave) {
		if (mse_hex_decode_exact(mrenclave, 32, o->mrenclave, strlen(o->mrenclave)) != 0)
			return cli_usage_error("verify", "--mrenclave: expected 64 hex digits, got \"%s\"", o->mrenclave);
		so.mrenclave = mrenclave;
	}
	if (o->mrsigner) {
		if (mse_hex_decode_exact(mrsigner, 32, o->mrsigner, strlen(o->mrsigner)) != 0)
			return cli_usage_error("verify", "--mrsigner: expected 64 hex digits, got \"%s\"", o->mrsigner);
		so.mrsigner = mrsigner;
	}
	if (o->isvprodid) {
		if (parse_u16(o->isvprodid, &so.isvprodid))
			return cli_usage_error("verify", "--isvprodid: expected 0..65535, got \"%s\"", o->isvprodid);
		so.check_isvprodid = 1;
	}
	if (o->min_isvsvn) {
		if (parse_u16(o->min_isvsvn, &so.min_isvsvn))
			return cli_usage_error("verify", "--min-isvsvn: expected 0..65535, got \"%s\"", o->min_isvsvn);
		so.check_min_isvsvn = 1;
	}
	return cli_verify_sigstruct(&so);
}

/* --package: recompute the expected enclave from what the code provider holds. */
static int verify_package(const struct verify_opts *o)
{
	struct mse_appverify_opts ao = {0};
	struct mse_appverify_result ar;
	struct mse_err err = {0};
	uint8_t mrenclave[32];
	char note[200], note2[200], note3[420], hex[65];
	int ok;

	if (o->collateral || o->pccs || o->offline || o->mrsigner)
		return cli_usage_error("verify", "with --package the collateral is the evidence's and "
						 "the signer comes from --signer-key");
	if (o->mrenclave) {
		if (mse_hex_decode_exact(mrenclave, 32, o->mrenclave, strlen(o->mrenclave)) != 0)
			return cli_usage_error("verify", "--mrenclave: expected 64 hex digits, got \"%s\"", o->mrenclave);
		ao.mrenclave = mrenclave;
	}
	if (o->now && parse_now(o->now, &ao.now) != 0)
		return cli_usage_error("verify", "--now: expected YYYY-MM-DDTHH:MM:SSZ, YYYY-MM-DD or @EPOCH, got \"%s\"", o->now);
	if (o->accept && mse_verify_parse_status_list(o->accept, &ao.accept_status, &err) != 0)
		return cli_usage_error("verify", "--accept-tcb-status: %s", err.msg);
	ao.package = o->package;
	ao.evidence = o->evidence;
	ao.output_dir = o->output;
	ao.bootstrap = o->bootstrap;
	ao.signer_key = o->signer_key;
	ao.allow_simulation = o->allow_sim;
	ao.sim_root = o->sim_root;
	ao.accept_expired_collateral = o->accept_expired;
	ok = mse_appverify(&ao, &ar, &err) == 0;
	/* what was really compared: nothing is shown as expected unless it was */
	if (ar.measured_from[0]) {
		hex32(hex, ar.expected_mrenclave);
		snprintf(note, sizeof(note), "MRENCLAVE %s (%s)", hex,
			 o->mrenclave ? "given" : ar.sgx ? "recomputed with gramine-sgx-sign" : "recomputed from the package");
	} else {
		snprintf(note, sizeof(note), "no MRENCLAVE (none given, none recomputed: nothing was compared)");
	}
	if (ar.mrsigner_from) {
		hex32(hex, ar.expected_mrsigner);
		snprintf(note2, sizeof(note2), "MRSIGNER %s (%s)", hex, ar.mrsigner_from);
	} else {
		snprintf(note2, sizeof(note2), "no MRSIGNER (nothing was compared)");
	}
	if (o->json) {
		snprintf(note3, sizeof(note3), "expected %s; %s", note, note2);
		print_json(&ar.vr, &err, ok, note3);
	} else {
		printf("expected:     %s\n", note);
		printf("              %s\n", note2);
		if (ar.measured_from[0])
			printf("measured from: %s\n", ar.measured_from);
		print_text(&ar.vr, &err, ok, NULL);
	}
	if (ok && ar.ratls_path[0] && !o->json)
		printf("trusted certificate: %s\n", ar.ratls_path);
	return ok ? MSE_EXIT_OK : MSE_EXIT_FAIL;
}

/* mse verify NAME [--project DIR] [--json]: a local instance against its recorded deployment. */
static int verify_instance(int argc, char **argv)
{
	static const struct option opts[] = {{"project", required_argument, NULL, 'p'},
					     {"json", no_argument, NULL, 'j'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	struct mse_reverify_opts ro = {0};
	struct mse_reverify_result rr;
	struct mse_err err = {0};
	int c, json = 0;

	ro.name = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			return MSE_EXIT_OK;
		}
		if (c == 'p')
			ro.project_dir = optarg;
		else if (c == 'j')
			json = 1;
		else
			return cli_usage_error("verify", "with NAME, only --project DIR and --json");
	}
	if (optind != argc)
		return cli_usage_error("verify", "unexpected argument '%s'", argv[optind]);
	if (mse_reverify(&ro, &rr, &err) != 0)
		return json ? cli_json_fail(&err) : cli_fail("verify", &err);
	if (json) {
		json_t *o = cli_json_new(1), *adv = json_array();
		char buf[1024], *save = NULL, *tok;

		cli_json_str(o, "name", rr.rec.name);
		cli_json_str(o, "uuid", rr.rec.uuid);
		json_object_set_new(o, "simulation", json_boolean(rr.simulation));
		cli_json_str(o, "mrenclave", rr.mrenclave_hex);
		cli_json_str(o, "tcb_status", mse_tcb_status_name(rr.tcb_status));
		snprintf(buf, sizeof(buf), "%s", rr.advisories);
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			json_array_append_new(adv, json_string(tok));
		json_object_set_new(o, "advisories", adv);
		cli_json_str(o, "package", rr.rec.package);
		cli_json_str(o, "evidence", rr.evidence_path);
		cli_json_str(o, "certificate", rr.ratls_path);
		cli_json_print(o);
		return MSE_EXIT_OK;
	}
	printf("%s: verified against %s\n", rr.rec.name, rr.rec.package);
	printf("  MRENCLAVE    %s\n", rr.mrenclave_hex);
	printf("  TCB status   %s%s%s\n", mse_tcb_status_name(rr.tcb_status),
	       rr.advisories[0] ? ", advisories " : "", rr.advisories);
	if (rr.simulation)
		printf("  SIMULATION — not confidential\n");
	printf("  certificate  %s  (refreshed: pin it again)\n", rr.ratls_path);
	return MSE_EXIT_OK;
}

int cmd_verify(int argc, char **argv)
{
	struct verify_opts o;
	struct mse_verify_policy pol = {0};
	struct mse_verify_result res = {0};
	struct mse_collateral coll = {0};
	struct mse_collateral_evidence ev = {0};
	struct mse_ratls cert = {0};
	struct mse_err err = {0};
	uint8_t mrenclave[32], mrsigner[32], tdm[8][48], *input = NULL, *sim_root = NULL, *der = NULL;
	size_t input_len = 0, sim_len = 0, der_len = 0;
	const struct mse_collateral *use = &coll;
	char signer_note[200], signer_hex[65], simbuf[4096];
	const char *signer = NULL;
	int rc, ok = 0, have_cert = 0;

	if (argc >= 2 && argv[1][0] != '-')
		return verify_instance(argc, argv);
	rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc == 1 ? MSE_EXIT_OK : rc;
	if (o.package)
		return verify_package(&o);
	if (o.sigstruct)
		return verify_sigstruct(&o);

	/* ---- policy ---- */
	if (o.mrenclave) {
		if (mse_hex_decode_exact(mrenclave, 32, o.mrenclave, strlen(o.mrenclave)) != 0)
			return cli_usage_error("verify", "--mrenclave: expected 64 hex digits, got \"%s\"", o.mrenclave);
		pol.mrenclave = mrenclave;
	}
	if (o.mrsigner) {
		if (mse_hex_decode_exact(mrsigner, 32, o.mrsigner, strlen(o.mrsigner)) != 0)
			return cli_usage_error("verify", "--mrsigner: expected 64 hex digits, got \"%s\"", o.mrsigner);
		pol.mrsigner = mrsigner;
	}
	if (o.isvprodid) {
		if (parse_u16(o.isvprodid, &pol.isvprodid))
			return cli_usage_error("verify", "--isvprodid: expected 0..65535, got \"%s\"", o.isvprodid);
		pol.check_isvprodid = 1;
	}
	if (o.min_isvsvn) {
		if (parse_u16(o.min_isvsvn, &pol.min_isvsvn))
			return cli_usage_error("verify", "--min-isvsvn: expected 0..65535, got \"%s\"", o.min_isvsvn);
		pol.check_min_isvsvn = 1;
	}
	{
		const char *names[] = {"--mrtd", "--rtmr 0", "--rtmr 1", "--rtmr 2", "--rtmr 3", "--mrconfigid", "--mrowner",
				       "--mrseam"};
		const char *vals[] = {o.mrtd, o.rtmr[0], o.rtmr[1], o.rtmr[2], o.rtmr[3], o.mrconfigid, o.mrowner, o.mrseam};
		const uint8_t **dst[] = {&pol.mrtd, &pol.rtmr[0], &pol.rtmr[1], &pol.rtmr[2], &pol.rtmr[3],
					 &pol.mrconfigid, &pol.mrowner, &pol.mrseam};

		for (int i = 0; i < 8; i++) {
			if (!vals[i])
				continue;
			if (mse_hex_decode_exact(tdm[i], 48, vals[i], strlen(vals[i])) != 0)
				return cli_usage_error("verify", "%s: expected 96 hex digits (48 bytes), got \"%s\"", names[i],
						       vals[i]);
			*dst[i] = tdm[i];
		}
		pol.allow_debug_td = o.allow_debug_td;
		pol.allow_service_td = o.allow_service_td;
		pol.allow_sept_ve = o.allow_sept_ve;
	}
	if (o.now && parse_now(o.now, &pol.now))
		return cli_usage_error("verify", "--now: expected YYYY-MM-DDTHH:MM:SSZ, YYYY-MM-DD or @EPOCH, got \"%s\"",
				       o.now);
	if (o.accept && mse_verify_parse_status_list(o.accept, &pol.accept_status, &err))
		return cli_usage_error("verify", "--%s: %s", err.field, err.msg);
	pol.strict = o.strict;
	pol.accept_expired_collateral = o.accept_expired;
	pol.allow_missing_crl = o.allow_missing_crl;
	if (o.sim_root && !o.allow_sim)
		return cli_usage_error("verify", "--sim-root needs --allow-simulation");
	if (o.allow_sim) {
		char path[4200];

		pol.allow_simulation = 1;
		if (o.sim_root)
			snprintf(path, sizeof(path), "%s", o.sim_root);
		else
			snprintf(path, sizeof(path), "%s/root_ca.der", sim_dir(simbuf, sizeof(simbuf)));
		if (load_sim_root(path, o.sim_root != NULL, &sim_root, &sim_len, &err))
			goto fail;
		pol.sim_root_der = sim_root;
		pol.sim_root_len = sim_len;
	}
	if (o.signer_key) {
		uint8_t *pem;
		size_t n;

		if (mse_file_read(o.signer_key, 1 << 20, &pem, &n, &err))
			goto fail;
		rc = mse_verify_mrsigner_from_key(pem, n, mrsigner, &err);
		free(pem);
		if (rc)
			goto fail;
		pol.mrsigner = mrsigner;
	}

	/*
	 * --output writes the certificate `mse run` pins: it must name the
	 * enclave, or the user says explicitly that any genuine enclave will do.
	 */
	if (o.output && !o.any_enclave && !mse_verify_policy_names_enclave(&pol)) {
		rc = cli_usage_error("verify", "--output writes the certificate 'mse run --ratls' will trust, so "
					       "say which enclave you expect: --mrenclave HEX, or --mrsigner/--signer-key "
					       "with --isvprodid and --min-isvsvn (got %s), or use --package (a TD: "
					       "--mrtd HEX); "
					       "--any-enclave trusts any genuine enclave running any code",
				     pol.mrsigner ? (pol.check_isvprodid ? "a signer and an ISVPRODID, no --min-isvsvn"
									 : "a signer, no --isvprodid")
						  : "no expected identity");
		goto out;
	}
	if (o.output && o.any_enclave && !mse_verify_policy_names_enclave(&pol))
		fputs("mse verify: --any-enclave: the certificate written trusts any genuine enclave, "
		      "whatever code it runs\n", stderr);

	/* ---- inputs ---- */
	if (o.evidence) {
		if (mse_file_read(o.evidence, MSE_COLLATERAL_MAX_FILE, &input, &input_len, &err) ||
		    mse_collateral_parse_evidence(&ev, input, input_len, &err)) {
			mse_err_file(&err, o.evidence);
			goto fail;
		}
		if (mse_ratls_parse(&cert, ev.ratls_pem.p, ev.ratls_pem.len, &err))
			goto fail;
		have_cert = 1;
		use = &ev.coll;
		if (ev.signer_pk.p) {
			uint8_t h[32];
			struct mse_err e2 = {0};

			if (mse_verify_mrsigner_from_key(ev.signer_pk.p, ev.signer_pk.len, h, &e2) == 0) {
				hex32(signer_hex, h);
				signer = signer_hex;
			}
		}
	} else if (o.cert) {
		if (mse_file_read(o.cert, MSE_RATLS_MAX_SIZE, &input, &input_len, &err) ||
		    mse_ratls_parse(&cert, input, input_len, &err)) {
			mse_err_file(&err, o.cert);
			goto fail;
		}
		have_cert = 1;
	} else if (o.url) {
		if (mse_ratls_fetch(o.url, 10000, &der, &der_len, &err) || mse_ratls_parse(&cert, der, der_len, &err))
			goto fail;
		have_cert = 1;
	} else {
		if (mse_file_read(o.quote, MSE_QUOTE_MAX_SIZE, &input, &input_len, &err)) {
			mse_err_file(&err, o.quote);
			goto fail;
		}
	}
	if (o.pccs || o.pccs_ca || o.offline) {
		/* Collateral from a PCCS, through the cache (mse-verify(1), "Collateral"). */
		struct mse_pccs_opts po;
		char dir[4200];
		const uint8_t *qb = have_cert ? cert.quote : input;
		size_t ql = have_cert ? cert.quote_len : input_len;

		mse_pccs_opts_init(&po);
		/* Not a URL: the QCNL config file that names the machine's PCCS. */
		if (o.pccs && strncmp(o.pccs, "http://", 7) != 0 && strncmp(o.pccs, "https://", 8) != 0)
			po.qcnl_conf = o.pccs;
		else
			po.url = o.pccs;
		po.ca_file = o.pccs_ca;
		po.offline = o.offline;
		po.now = pol.now;
		if (mse_pccs_fetch_for_quote(&po, qb, ql, dir, sizeof(dir), NULL, &err) ||
		    mse_collateral_load_dir(&coll, dir, &err))
			goto fail;
		use = &coll;
	} else if (o.collateral || (!o.evidence && o.allow_sim)) {
		char dir[4200];

		if (o.collateral)
			snprintf(dir, sizeof(dir), "%s", o.collateral);
		else
			snprintf(dir, sizeof(dir), "%s/collateral", sim_dir(simbuf, sizeof(simbuf)));
		if (mse_collateral_load_dir(&coll, dir, &err))
			goto fail;
		use = &coll;
	}

	/* ---- verify ---- */
	if (have_cert)
		rc = mse_verify_ratls(&cert, use, &pol, NULL, &res, &err);
	else
		rc = mse_verify_quote(input, input_len, use, &pol, NULL, &res, &err);
	ok = rc == 0;
	if (signer) {
		/* The evidence's signer_pk is the operator's claim: show whether it matches. */
		char hx[65];

		hex32(hx, res.report.mr_signer);
		snprintf(signer_note, sizeof(signer_note), "%s MRSIGNER (evidence key, informative; use --signer-key to enforce)",
			 strcmp(hx, signer) == 0 ? "matches" : "does NOT match");
	}
	if (ok && o.output) {
		char path[4200], *pem = NULL;
		size_t pem_len;

		snprintf(path, sizeof(path), "%s/ratls.pem", o.output);
		if (mse_file_mkdirs(o.output, 0755, &err) || mse_ratls_pem(&cert, &pem, &pem_len, &err) ||
		    mse_file_write_atomic(path, pem, pem_len, MSE_MODE_PUBLIC, &err)) {
			free(pem);
			ok = 0;
		}
		free(pem);
	}
	if (o.json)
		print_json(&res, &err, ok, signer ? signer_note : NULL);
	else
		print_text(&res, &err, ok, signer ? signer_note : NULL);
	if (!ok) {
		if (res.flags & MSE_VERIFY_F_SIMULATION)
			fputs("mse verify: SIMULATION — not confidential\n", stderr);
		rc = cli_fail("verify", &err);
	} else {
		if (res.flags & MSE_VERIFY_F_SIMULATION)
			fputs("mse verify: SIMULATION — not confidential\n", stderr);
		rc = MSE_EXIT_OK;
	}
	goto out;
fail:
	if (o.json)
		print_json(&res, &err, 0, NULL);
	rc = cli_fail("verify", &err);
out:
	mse_ratls_free(&cert);
	mse_collateral_evidence_free(&ev);
	mse_collateral_free(&coll);
	free(input);
	free(der);
	free(sim_root);
	return rc;
}
