/* SPDX-License-Identifier: Apache-2.0 */
/* TDX simulation: TD quotes and TDX collateral. See simtdx.h. */
#include "attest/simtdx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "attest/sim.h"
#include "attest/x509w.h"
#include "common/file.h"
#include "common/hex.h"

#define DAY (24L * 3600L)

static const uint8_t QE_VENDOR_INTEL[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
					    0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};
/* Must match the SGX simulation's PCK certificate (sim.c SIM_CPUSVN, MSE_SIM_PCESVN). */
static const uint8_t SIM_CPUSVN[16] = {14, 14, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void tag(uint8_t *out, size_t n, const char *name)
{
	uint8_t h[SHA384_DIGEST_LENGTH];

	SHA384((const unsigned char *)name, strlen(name), h);
	memcpy(out, h, n < sizeof(h) ? n : sizeof(h));
}

void mse_simtdx_default_td(struct mse_td_report *td)
{
	memset(td, 0, sizeof(*td));
	td->tee_tcb_svn[0] = 5;
	td->tee_tcb_svn[1] = 1;
	td->tee_tcb_svn[2] = 10;
	tag(td->mr_seam, 48, "mse-c/sim/tdx/mrseam");
	tag(td->mr_td, 48, "mse-c/sim/tdx/mrtd");
	for (int i = 0; i < 4; i++) {
		char n[32];

		snprintf(n, sizeof(n), "mse-c/sim/tdx/rtmr%d", i);
		tag(td->rtmr[i], 48, n);
	}
	td->td_attributes[3] = 0x10; /* SEPT_VE_DISABLE (bit 28) */
	td->xfam[0] = 0xe7;
	td->xfam[1] = 0x02;
	td->xfam[2] = 0x06;
	memcpy(td->tee_tcb_svn2, td->tee_tcb_svn, 16);
}

static void td_encode(uint8_t *b, const struct mse_td_report *td)
{
	memcpy(b + MSE_TD_TEE_TCB_SVN, td->tee_tcb_svn, 16);
	memcpy(b + MSE_TD_MRSEAM, td->mr_seam, 48);
	memcpy(b + MSE_TD_MRSIGNERSEAM, td->mr_signer_seam, 48);
	memcpy(b + MSE_TD_SEAM_ATTRIBUTES, td->seam_attributes, 8);
	memcpy(b + MSE_TD_TD_ATTRIBUTES, td->td_attributes, 8);
	memcpy(b + MSE_TD_XFAM, td->xfam, 8);
	memcpy(b + MSE_TD_MRTD, td->mr_td, 48);
	memcpy(b + MSE_TD_MRCONFIGID, td->mr_config_id, 48);
	memcpy(b + MSE_TD_MROWNER, td->mr_owner, 48);
	memcpy(b + MSE_TD_MROWNERCONFIG, td->mr_owner_config, 48);
	for (int i = 0; i < 4; i++)
		memcpy(b + MSE_TD_RTMR0 + i * MSE_TD_MR_SIZE, td->rtmr[i], 48);
	memcpy(b + MSE_TD_REPORTDATA, td->report_data, 64);
	if (td->v15) {
		memcpy(b + MSE_TD_TEE_TCB_SVN2, td->tee_tcb_svn2, 16);
		memcpy(b + MSE_TD_MRSERVICETD, td->mr_service_td, 48);
	}
}

static int path_join(char *out, size_t n, const char *dir, const char *name, struct mse_err *err)
{
	if (snprintf(out, n, "%s/%s", dir, name) >= (int)n)
		return mse_err_set(err, "path too long: %s/%s", dir, name);
	return 0;
}

static int read_file(const char *dir, const char *name, uint8_t **out, size_t *len, struct mse_err *err)
{
	char p[4200];

	if (path_join(p, sizeof(p), dir, name, err))
		return -1;
	return mse_file_read(p, 1 << 20, out, len, err);
}

static EVP_PKEY *load_key(const char *dir, const char *name, struct mse_err *err)
{
	char p[4200];

	if (path_join(p, sizeof(p), dir, name, err))
		return NULL;
	return mse_x509w_load_key(p, err);
}

/* The simulated QE's MRSIGNER (sim.c qe_mrsigner). */
static void qe_mrsigner(uint8_t out[32])
{
	static const char t[] = "mse-c/sim/qe-mrsigner/v1";

	SHA256((const unsigned char *)t, sizeof(t) - 1, out);
}

int mse_simtdx_quote(const char *dir, int version, const struct mse_td_report *td, uint8_t **quote, size_t *len,
		     struct mse_err *err)
{
	EVP_PKEY *pck = NULL, *attest = NULL;
	uint8_t *chain = NULL, *q = NULL, *qe, auth[32], pub[64], h[96], rd[32];
	size_t chain_len = 0, bsize = td->v15 ? MSE_TDX15_REPORT_BODY_SIZE : MSE_TDX10_REPORT_BODY_SIZE;
	size_t hdr = MSE_QUOTE_HEADER_SIZE + (version == 5 ? MSE_QUOTE_BODY_DESC_SIZE : 0);
	size_t qe_part, sig_len, total, off;
	const char *parts[3] = {"pck.pem", "pck_ca.pem", "root_ca.pem"};
	int rc = -1;

	*quote = NULL;
	if (version != 4 && version != 5)
		return mse_err_set(err, "TDX quote version: expected 4 or 5, got %d", version);
	if (version == 4 && td->v15)
		return mse_err_set(err, "TD report 1.5 needs a quote v5");
	if (!mse_sim_exists(dir)) {
		mse_err_file(err, dir);
		return mse_err_set(err, "no simulation in %s: run `mse sim init` first", dir);
	}
	if (!(pck = load_key(dir, "keys/pck.key.pem", err)) || !(attest = load_key(dir, "keys/attestation.key.pem", err)))
		goto out;
	for (int i = 0; i < 3; i++) {
		uint8_t *d = NULL, *g;
		size_t n = 0;

		if (read_file(dir, parts[i], &d, &n, err))
			goto out;
		g = realloc(chain, chain_len + n);
		if (!g) {
			free(d);
			mse_err_set(err, "out of memory");
			goto out;
		}
		chain = g;
		memcpy(chain + chain_len, d, n);
		chain_len += n;
		free(d);
	}
	if (mse_x509w_p256_pub(attest, pub, err))
		goto out;
	for (size_t i = 0; i < sizeof(auth); i++)
		auth[i] = (uint8_t)(0xa0 + i);
	/* v4/v5 signature data: sig ‖ key ‖ cert type 6 { QE report ‖ sig ‖ auth ‖ type 5 chain }. */
	qe_part = MSE_SGX_REPORT_BODY_SIZE + 64 + 2 + sizeof(auth) + 2 + 4 + chain_len;
	sig_len = 64 + 64 + 2 + 4 + qe_part;
	total = hdr + bsize + 4 + sig_len;
	q = calloc(1, total);
	if (!q) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	put16(q, (uint16_t)version);
	put16(q + 2, MSE_QUOTE_ATT_KEY_ECDSA_P256);
	put32(q + 4, MSE_QUOTE_TEE_TDX);
	memcpy(q + 12, QE_VENDOR_INTEL, 16);
	if (version == 5) {
		put16(q + 48, td->v15 ? MSE_QUOTE_BODY_TD15 : MSE_QUOTE_BODY_TD10);
		put32(q + 50, (uint32_t)bsize);
	}
	td_encode(q + hdr, td);
	off = hdr + bsize;
	put32(q + off, (uint32_t)sig_len);
	off += 4;
	if (mse_x509w_sign_raw(attest, q, hdr + bsize, q + off, err))
		goto out;
	off += 64;
	memcpy(q + off, pub, 64);
	off += 64;
	put16(q + off, MSE_QUOTE_CERT_QE_REPORT);
	put32(q + off + 2, (uint32_t)qe_part);
	off += 6;
	/* QE report (SGX report body of the TD QE): report_data = SHA-256(key ‖ auth) ‖ 0^32. */
	qe = q + off;
	memcpy(qe, SIM_CPUSVN, 16);
	qe[48] = 0x11; /* INIT | PROVISIONKEY */
	SHA256((const unsigned char *)"mse-c/sim/td-qe-mrenclave/v1", 28, qe + 64);
	qe_mrsigner(qe + 128);
	put16(qe + 256, MSE_SIMTDX_QE_ISVPRODID);
	put16(qe + 258, MSE_SIM_QE_ISVSVN);
	memcpy(h, pub, 64);
	memcpy(h + 64, auth, 32);
	SHA256(h, sizeof(h), rd);
	memcpy(qe + 320, rd, 32);
	off += MSE_SGX_REPORT_BODY_SIZE;
	if (mse_x509w_sign_raw(pck, qe, MSE_SGX_REPORT_BODY_SIZE, q + off, err))
		goto out;
	off += 64;
	put16(q + off, (uint16_t)sizeof(auth));
	memcpy(q + off + 2, auth, sizeof(auth));
	off += 2 + sizeof(auth);
	put16(q + off, MSE_QUOTE_CERT_PCK_CHAIN);
	put32(q + off + 2, (uint32_t)chain_len);
	off += 6;
	memcpy(q + off, chain, chain_len);
	off += chain_len;
	if (off != total) {
		mse_err_set(err, "internal: TDX quote size %zu != %zu", off, total);
		goto out;
	}
	*quote = q;
	*len = total;
	q = NULL;
	rc = 0;
out:
	free(q);
	free(chain);
	EVP_PKEY_free(pck);
	EVP_PKEY_free(attest);
	return rc;
}

static void iso(char out[32], time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *comps(const uint8_t v[16])
{
	json_t *a = json_array();

	for (int i = 0; i < 16; i++)
		json_array_append_new(a, json_pack("{s:i}", "svn", v[i]));
	return a;
}

static json_t *module_id(const char *id)
{
	static const char zero96[] = "000000000000000000000000000000000000000000000000"
				     "000000000000000000000000000000000000000000000000";
	json_t *m = json_pack("{s:s,s:s,s:s}", "mrsigner", zero96, "attributes", "0000000000000000", "attributesMask",
			      "FFFFFFFFFFFFFFFF");

	if (m && id)
		json_object_set_new(m, "id", json_string(id));
	return m;
}

static json_t *mod_level(int isvsvn, const char *status, const char *adv)
{
	json_t *l = json_pack("{s:{s:i},s:s,s:s}", "tcb", "isvsvn", isvsvn, "tcbDate", "2024-03-13T00:00:00Z",
			      "tcbStatus", status);

	if (l && adv)
		json_object_set_new(l, "advisoryIDs", json_pack("[s]", adv));
	return l;
}

/* Signs text as PCS v4 does: {"NAME":<text>,"signature":"<hex r‖s>"}. */
static int sign_body(EVP_PKEY *key, const char *name, json_t *obj, char **out, struct mse_err *err)
{
	char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER), sighex[129];
	uint8_t sig[64];
	size_t n;
	int rc = -1;

	if (!text)
		return mse_err_set(err, "out of memory");
	if (mse_x509w_sign_raw(key, text, strlen(text), sig, err) || mse_hex_encode(sighex, sizeof(sighex), sig, 64))
		goto out;
	n = strlen(text) + strlen(name) + 160;
	*out = malloc(n);
	if (!*out) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	snprintf(*out, n, "{\"%s\":%s,\"signature\":\"%s\"}", name, text, sighex);
	rc = 0;
out:
	free(text);
	return rc;
}

static int copy_file(const char *dir, const char *out_dir, const char *name, struct mse_err *err)
{
	uint8_t *d = NULL;
	size_t n = 0;
	char p[4200];
	int rc;

	if (read_file(dir, name, &d, &n, err) || path_join(p, sizeof(p), out_dir, strrchr(name, '/') + 1, err)) {
		free(d);
		return -1;
	}
	rc = mse_file_write_atomic(p, d, n, MSE_MODE_PUBLIC, err);
	free(d);
	return rc;
}

int mse_simtdx_collateral(const char *dir, const char *out_dir, struct mse_err *err)
{
	static const struct {
		uint8_t late;
		const char *status, *adv;
	} levels[] = {{10, "UpToDate", NULL},
		      {9, "SWHardeningNeeded", NULL},
		      {8, "ConfigurationNeeded", NULL},
		      {7, "ConfigurationAndSWHardeningNeeded", NULL},
		      {6, "OutOfDate", "INTEL-SA-SIM01"},
		      {5, "OutOfDateConfigurationNeeded", NULL},
		      {4, "Revoked", NULL}};
	static const char *files[] = {"collateral/tcb_info_issuer_chain.pem", "collateral/qe_identity_issuer_chain.pem",
				      "collateral/pck_crl.der", "collateral/pck_crl_issuer_chain.pem",
				      "collateral/root_ca_crl.der"};
	EVP_PKEY *tcb = NULL;
	json_t *info = NULL, *lv, *ids, *qe = NULL;
	char issue[32], next[32], mrs[65], p[4200], *text = NULL;
	uint8_t m[32];
	time_t now = time(NULL);
	int rc = -1;

	if (!mse_sim_exists(dir)) {
		mse_err_file(err, dir);
		return mse_err_set(err, "no simulation in %s: run `mse sim init` first", dir);
	}
	if (mse_file_mkdirs(out_dir, 0755, err))
		return -1;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (copy_file(dir, out_dir, files[i], err))
			return -1;
	if (!(tcb = load_key(dir, "keys/tcb_signing.key.pem", err)))
		return -1;
	iso(issue, now - 60);
	iso(next, now + 365 * DAY);
	lv = json_array();
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		uint8_t tdx[16] = {2, 0, levels[i].late};
		json_t *l = json_pack("{s:{s:o,s:i,s:o},s:s,s:s}", "tcb", "sgxtcbcomponents", comps(SIM_CPUSVN), "pcesvn",
				      MSE_SIM_PCESVN, "tdxtcbcomponents", comps(tdx), "tcbDate", "2024-03-13T00:00:00Z",
				      "tcbStatus", levels[i].status);

		if (l && levels[i].adv)
			json_object_set_new(l, "advisoryIDs", json_pack("[s]", levels[i].adv));
		json_array_append_new(lv, l);
	}
	ids = json_array();
	{
		json_t *m1 = module_id("TDX_01"), *m10 = module_id("TDX_0A");

		json_object_set_new(m1, "tcbLevels",
				    json_pack("[o,o,o]", mod_level(5, "UpToDate", NULL),
					      mod_level(3, "OutOfDate", "INTEL-SA-SIM02"), mod_level(1, "Revoked", NULL)));
		json_object_set_new(m10, "tcbLevels", json_pack("[o]", mod_level(0, "UpToDate", NULL)));
		json_array_append_new(ids, m1);
		json_array_append_new(ids, m10);
	}
	info = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:i,s:i,s:o,s:o,s:o}", "id", "TDX", "version", 3, "issueDate", issue,
			 "nextUpdate", next, "fmspc", MSE_SIM_FMSPC, "pceId", MSE_SIM_PCE_ID, "tcbType", 0,
			 "tcbEvaluationDataNumber", 17, "tdxModule", module_id(NULL), "tdxModuleIdentities", ids,
			 "tcbLevels", lv);
	if (!info) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	if (sign_body(tcb, "tcbInfo", info, &text, err) || path_join(p, sizeof(p), out_dir, "tcb_info.json", err) ||
	    mse_file_write_atomic(p, text, strlen(text), MSE_MODE_PUBLIC, err))
		goto out;
	free(text);
	text = NULL;
	qe_mrsigner(m);
	if (mse_hex_encode(mrs, sizeof(mrs), m, 32)) {
		mse_err_set(err, "hex");
		goto out;
	}
	qe = json_pack("{s:s,s:i,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:i,s:[{s:{s:i},s:s,s:s},{s:{s:i},s:s,s:s}]}", "id",
		       "TD_QE", "version", 2, "issueDate", issue, "nextUpdate", next, "tcbEvaluationDataNumber", 17,
		       "miscselect", "00000000", "miscselectMask", "FFFFFFFF", "attributes",
		       "11000000000000000000000000000000", "attributesMask", "FBFFFFFFFFFFFFFF0000000000000000",
		       "mrsigner", mrs, "isvprodid", MSE_SIMTDX_QE_ISVPRODID, "tcbLevels", "tcb", "isvsvn",
		       MSE_SIM_QE_ISVSVN, "tcbDate", "2024-03-13T00:00:00Z", "tcbStatus", "UpToDate", "tcb", "isvsvn",
		       MSE_SIM_QE_ISVSVN - 2, "tcbDate", "2021-11-10T00:00:00Z", "tcbStatus", "OutOfDate");
	if (!qe) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	if (sign_body(tcb, "enclaveIdentity", qe, &text, err) || path_join(p, sizeof(p), out_dir, "qe_identity.json", err) ||
	    mse_file_write_atomic(p, text, strlen(text), MSE_MODE_PUBLIC, err))
		goto out;
	rc = 0;
out:
	free(text);
	json_decref(info);
	json_decref(qe);
	EVP_PKEY_free(tcb);
	return rc;
}
