/* SPDX-License-Identifier: Apache-2.0 */
/*
 * src/attest/verify: the whole procedure over the real vectors (Intel-signed
 * quotes and collateral no one on this project produced), every policy
 * outcome, the oasis failure cases at their named steps, and the cache.
 * Expected statuses and advisories come from the vectors' READMEs.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "attest/collateral.h"
#include "attest/jspan.h"
#include "attest/quote.h"
#include "attest/ratls.h"
#include "attest/tcb.h"
#include "attest/verify.h"
#include "common/b64.h"
#include "common/hex.h"

static time_t at(const char *iso)
{
	time_t t;

	assert_int_equal(mse_tcb_parse_time(iso, &t), 0);
	return t;
}

static void load_set(const char *set, struct mse_collateral *c, uint8_t **quote, size_t *qlen)
{
	char rel[256];
	struct mse_err e = {0};

	snprintf(rel, sizeof(rel), "dcap-quotes/%s", set);
	assert_int_equal(mse_collateral_load_dir(c, tu_vector(rel), &e), 0);
	snprintf(rel, sizeof(rel), "dcap-quotes/%s/quote.bin", set);
	*quote = tu_read(tu_vector(rel), qlen);
}

static void load_evidence(struct mse_collateral_evidence *ev, struct mse_ratls *cert)
{
	size_t n;
	uint8_t *j = tu_read(tu_vector("mse-evidence/evidence.json"), &n);
	struct mse_err e = {0};

	assert_int_equal(mse_collateral_parse_evidence(ev, j, n, &e), 0);
	assert_int_equal(mse_ratls_parse(cert, ev->ratls_pem.p, ev->ratls_pem.len, &e), 0);
	free(j);
}

/* ---- the cosmian quote: signatures, binding and chain, without collateral ---- */
static void cosmian_signatures_binding_and_chain(void **state)
{
	size_t len, plen;
	uint8_t *q = tu_read(tu_vector("sgx-quote-cosmian/quote.dat"), &len);
	uint8_t *pem;
	struct mse_quote pq;
	struct mse_err e = {0};
	struct mse_collateral none = {0};
	struct mse_verify_policy pol = {0};
	struct mse_verify_result res;
	uint8_t key[64], h[32], buf[64 + 4096];
	BIO *bio;
	X509 *pck;
	BIGNUM *x = NULL, *y = NULL;

	(void)state;
	assert_int_equal(mse_quote_parse(&pq, q, len, MSE_QUOTE_STRICT, &e), 0);
	/*
	 * The leaf is read with OpenSSL's PEM reader from the quote's own chain.
	 * (The vector's separate pck_cert.pem is a different certificate: its key
	 * does not verify this QE report.)
	 */
	plen = pq.cert_len;
	pem = malloc(plen);
	memcpy(pem, pq.cert_data, plen);
	bio = BIO_new_mem_buf(pem, (int)plen);
	pck = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	/* quote signature by the attestation key over header ‖ body */
	assert_true(mse_verify_ecdsa_raw(pq.attest_key, pq.signed_data, pq.signed_len, pq.sig));
	/* QE report signature by the PCK key */
	assert_non_null(pck);
	assert_int_equal(EVP_PKEY_get_bn_param(X509_get0_pubkey(pck), "qx", &x), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(X509_get0_pubkey(pck), "qy", &y), 1);
	assert_int_equal(BN_bn2binpad(x, key, 32), 32);
	assert_int_equal(BN_bn2binpad(y, key + 32, 32), 32);
	assert_true(mse_verify_ecdsa_raw(key, pq.qe_report.raw, MSE_SGX_REPORT_BODY_SIZE, pq.qe_report_sig));
	/* and a wrong key does not verify it */
	assert_false(mse_verify_ecdsa_raw(pq.attest_key, pq.qe_report.raw, MSE_SGX_REPORT_BODY_SIZE, pq.qe_report_sig));
	/* QE binding */
	memcpy(buf, pq.attest_key, 64);
	memcpy(buf + 64, pq.qe_auth, pq.qe_auth_len);
	SHA256(buf, 64 + pq.qe_auth_len, h);
	assert_memory_equal(h, pq.qe_report.report_data, 32);
	/* The chain verifies to the pinned root (at a date inside its windows); the
	 * procedure then stops at the first missing collateral. */
	pol.now = at("2024-01-01T00:00:00Z");
	assert_int_equal(mse_verify_quote(q, len, &none, &pol, NULL, &res, &e), -1);
	assert_int_equal(res.steps[MSE_STEP_PCK_CHAIN], MSE_STEP_OK);
	assert_int_equal(res.steps[MSE_STEP_PCK], MSE_STEP_OK);
	assert_int_equal(res.pck.ca, MSE_PCK_CA_PLATFORM);
	assert_string_equal(e.step, "tcb-info");
	assert_non_null(strstr(e.msg, "missing"));
	BN_free(x);
	BN_free(y);
	X509_free(pck);
	BIO_free(bio);
	free(pem);
	free(q);
}

/* ---- MSE's evidence: OutOfDate, advisories, expired collateral ---- */
#define EVIDENCE_ADVISORIES                                                                                     \
	"INTEL-SA-00586,INTEL-SA-00614,INTEL-SA-00615,INTEL-SA-00657,INTEL-SA-00730,INTEL-SA-00738,INTEL-SA-00767"

static void evidence_outofdate_policy(void **state)
{
	struct mse_collateral_evidence ev;
	struct mse_ratls cert;
	struct mse_verify_policy pol = {0};
	struct mse_verify_result res;
	struct mse_err e = {0};
	uint8_t mrsigner[32];

	(void)state;
	load_evidence(&ev, &cert);
	/* 2023-06-21: everything current except the PCK CRL (nextUpdate 2023-06-15). */
	pol.now = at("2023-06-21T00:00:00Z");
	assert_int_equal(mse_verify_ratls(&cert, &ev.coll, &pol, NULL, &res, &e), -1);
	assert_string_equal(e.step, "crl");
	assert_non_null(strstr(e.msg, "expired"));
	assert_non_null(strstr(e.field, "PCK CRL"));
	/* Accepting expired collateral: every signature verifies, status is OutOfDate, refused by default. */
	pol.accept_expired_collateral = 1;
	memset(&e, 0, sizeof(e));
	assert_int_equal(mse_verify_ratls(&cert, &ev.coll, &pol, NULL, &res, &e), -1);
	assert_string_equal(e.step, "tcb-status");
	assert_int_equal(res.status, MSE_TCB_OUT_OF_DATE);
	assert_int_equal(res.qe_status, MSE_TCB_UP_TO_DATE);
	assert_string_equal(res.advisories, EVIDENCE_ADVISORIES);
	assert_non_null(strstr(e.msg, "OutOfDate"));
	for (int s = MSE_STEP_PARSE; s < MSE_STEP_TCB_STATUS; s++)
		if (s != MSE_STEP_MEASUREMENT)
			assert_true(res.steps[s] == MSE_STEP_OK || res.steps[s] == MSE_STEP_WARN);
	/* nothing was expected: the measurement is "not checked", never "ok" */
	assert_int_equal(res.steps[MSE_STEP_MEASUREMENT], MSE_STEP_NOT_CHECKED);
	assert_string_equal(mse_verify_step_state_name(res.steps[MSE_STEP_MEASUREMENT]), "not-checked");
	assert_true(res.flags & MSE_VERIFY_F_COLLATERAL_EXPIRED);
	assert_non_null(strstr(res.notes, "PCK CRL expired"));
	/* --accept-tcb-status OutOfDate accepts it, MRSIGNER from signer_pk matches. */
	assert_int_equal(mse_verify_parse_status_list("OutOfDate", &pol.accept_status, &e), 0);
	assert_int_equal(mse_verify_mrsigner_from_key(ev.signer_pk.p, ev.signer_pk.len, mrsigner, &e), 0);
	pol.mrsigner = mrsigner;
	memset(&e, 0, sizeof(e));
	assert_int_equal(mse_verify_ratls(&cert, &ev.coll, &pol, NULL, &res, &e), 0);
	assert_true(res.ok);
	assert_int_equal(res.steps[MSE_STEP_MEASUREMENT], MSE_STEP_OK);
	assert_false(res.flags & MSE_VERIFY_F_SIMULATION);
	/* Wrong expectations fail at [measurement] with expected vs actual. */
	mrsigner[0] ^= 1;
	assert_int_equal(mse_verify_ratls(&cert, &ev.coll, &pol, NULL, &res, &e), -1);
	assert_string_equal(e.step, "measurement");
	assert_string_equal(e.field, "mrsigner");
	/* Both are members of the error (--json reports them), in hex. */
	assert_int_equal(strlen(e.expected), 64);
	assert_int_equal(strlen(e.actual), 64);
	assert_string_not_equal(e.expected, e.actual);
	pol.mrsigner = NULL;
	pol.check_min_isvsvn = 1;
	pol.min_isvsvn = 11;
	assert_int_equal(mse_verify_ratls(&cert, &ev.coll, &pol, NULL, &res, &e), -1);
	assert_string_equal(e.field, "isvsvn");
	pol.min_isvsvn = 10;
	pol.check_isvprodid = 1;
	pol.isvprodid = 2;
	assert_int_equal(mse_verify_ratls(&cert, &ev.coll, &pol, NULL, &res, &e), -1);
	assert_string_equal(e.field, "isvprodid");
	pol.isvprodid = 1;
	assert_int_equal(mse_verify_ratls(&cert, &ev.coll, &pol, NULL, &res, &e), 0);
	/* Missing CRL: refused unless allowed, then recorded. */
	{
		struct mse_blob saved = ev.coll.root_crl;

		ev.coll.root_crl.p = NULL;
		assert_int_equal(mse_verify_ratls(&cert, &ev.coll, &pol, NULL, &res, &e), -1);
		assert_string_equal(e.step, "crl");
		assert_non_null(strstr(e.msg, "missing"));
		pol.allow_missing_crl = 1;
		assert_int_equal(mse_verify_ratls(&cert, &ev.coll, &pol, NULL, &res, &e), 0);
		assert_true(res.flags & MSE_VERIFY_F_CRL_MISSING);
		ev.coll.root_crl = saved;
	}
	mse_ratls_free(&cert);
	mse_collateral_evidence_free(&ev);
}

static void evidence_today(void **state)
{
	struct mse_collateral_evidence ev;
	struct mse_ratls cert;
	struct mse_verify_policy pol = {0};
	struct mse_verify_result res;
	struct mse_err e = {0};

	(void)state;
	load_evidence(&ev, &cert);
	/* now = the real clock: the 2023 collateral (and the TCB signing certificate) expired. */
	assert_int_equal(mse_verify_ratls(&cert, &ev.coll, &pol, NULL, &res, &e), -1);
	assert_non_null(strstr(e.msg, "expired"));
	pol.accept_expired_collateral = 1;
	pol.accept_status = MSE_TCB_MASK(MSE_TCB_OUT_OF_DATE);
	memset(&e, 0, sizeof(e));
	assert_int_equal(mse_verify_ratls(&cert, &ev.coll, &pol, NULL, &res, &e), 0);
	assert_true(res.flags & MSE_VERIFY_F_COLLATERAL_EXPIRED);
	assert_non_null(strstr(res.notes, "TCB info expired"));
	assert_non_null(strstr(res.notes, "RA-TLS certificate expired"));
	assert_int_equal(res.steps[MSE_STEP_BINDING], MSE_STEP_WARN);
	assert_int_equal(res.status, MSE_TCB_OUT_OF_DATE);
	mse_ratls_free(&cert);
	mse_collateral_evidence_free(&ev);
}

/* ---- the dcap-quotes sets ---- */
static void dcapqvl_known_status(void **state)
{
	struct mse_collateral c;
	uint8_t *q;
	size_t n;
	struct mse_verify_policy pol = {0};
	struct mse_verify_result res;
	struct mse_err e = {0};

	(void)state;
	load_set("sgx3-dcapqvl", &c, &q, &n);
	pol.now = at("2025-07-19T10:01:17Z");
	assert_int_equal(mse_verify_quote(q, n, &c, &pol, NULL, &res, &e), -1);
	assert_string_equal(e.step, "tcb-status");
	assert_int_equal(res.status, MSE_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
	assert_string_equal(res.advisories, "INTEL-SA-00289,INTEL-SA-00615");
	assert_int_equal(res.pck.ca, MSE_PCK_CA_PROCESSOR);
	assert_int_equal(mse_verify_parse_status_list("ConfigurationAndSWHardeningNeeded", &pol.accept_status, &e), 0);
	assert_int_equal(mse_verify_quote(q, n, &c, &pol, NULL, &res, &e), 0);
	assert_int_equal(res.flags & ~MSE_VERIFY_F_CACHED, 0);
	free(q);
	mse_collateral_free(&c);
}

static void automata_verifies(void **state)
{
	struct mse_collateral c;
	uint8_t *q;
	size_t n;
	struct mse_verify_policy pol = {0};
	struct mse_verify_result res;
	struct mse_err e = {0};

	(void)state;
	load_set("sgx3-automata", &c, &q, &n);
	pol.now = at("2025-08-15T05:45:00Z");
	pol.accept_status = ~0u;
	assert_int_equal(mse_verify_quote(q, n, &c, &pol, NULL, &res, &e), 0);
	assert_int_equal(res.pck.ca, MSE_PCK_CA_PLATFORM);
	assert_int_equal(res.flags, 0);
	free(q);
	mse_collateral_free(&c);
}

/* Verifies sgx3-oasis with one change and checks the step that fails. */
static void oasis_expect(const char *now, const char *quote_rel, const char *chain_rel, int tcb_byte, int qe_byte,
			 const char *step, const char *needle)
{
	struct mse_collateral c;
	uint8_t *q;
	size_t n;
	struct mse_verify_policy pol = {0};
	struct mse_verify_result res;
	struct mse_err e = {0};
	struct mse_jspan sp;

	load_set("sgx3-oasis", &c, &q, &n);
	if (quote_rel) {
		free(q);
		q = tu_read(tu_vector(quote_rel), &n);
	}
	if (chain_rel) {
		free(c.tcb_chain.p);
		c.tcb_chain.p = NULL;
		c.tcb_chain.len = 0;
		if (*chain_rel)
			c.tcb_chain.p = tu_read(tu_vector(chain_rel), &c.tcb_chain.len);
	}
	if (tcb_byte >= 0) {
		assert_int_equal(mse_jspan_member((char *)c.tcb_info.p, c.tcb_info.len, "tcbInfo", &sp, &e), 0);
		/* change one digit of the text: still valid JSON, different bytes */
		for (size_t i = (size_t)tcb_byte; i < sp.len; i++)
			if (sp.p[i] >= '1' && sp.p[i] <= '8') {
				c.tcb_info.p[sp.p - (char *)c.tcb_info.p + (long)i]++;
				break;
			}
	}
	if (qe_byte >= 0) {
		assert_int_equal(mse_jspan_member((char *)c.qe_identity.p, c.qe_identity.len, "enclaveIdentity", &sp, &e), 0);
		for (size_t i = (size_t)qe_byte; i < sp.len; i++)
			if (sp.p[i] >= '1' && sp.p[i] <= '8') {
				c.qe_identity.p[sp.p - (char *)c.qe_identity.p + (long)i]++;
				break;
			}
	}
	pol.now = at(now);
	pol.allow_missing_crl = 1; /* the set has no CRLs */
	pol.accept_status = ~0u;
	memset(&e, 0, sizeof(e));
	if (!step) {
		if (mse_verify_quote(q, n, &c, &pol, NULL, &res, &e) != 0)
			fail_msg("expected success, got [%s] %s: %s", e.step, e.field, e.msg);
		assert_true(res.flags & MSE_VERIFY_F_CRL_MISSING);
	} else {
		assert_int_equal(mse_verify_quote(q, n, &c, &pol, NULL, &res, &e), -1);
		if (strcmp(e.step, step) != 0 || !strstr(e.msg, needle))
			fail_msg("expected [%s] ...%s..., got [%s] %s: %s", step, needle, e.step, e.field, e.msg);
	}
	free(q);
	mse_collateral_free(&c);
}

static void oasis_cases(void **state)
{
	(void)state;
	oasis_expect("2022-12-20T00:50:04Z", NULL, NULL, -1, -1, NULL, NULL);
	oasis_expect("2029-12-05T11:12:02Z", NULL, NULL, -1, -1, "pck-chain", "expired");
	oasis_expect("2022-12-05T11:12:00Z", NULL, NULL, -1, -1, "pck-chain", "not yet valid");
	oasis_expect("2022-12-16T12:45:35Z", NULL, NULL, -1, -1, "tcb-info", "not yet valid");
	oasis_expect("2023-01-15T12:45:37Z", NULL, NULL, -1, -1, "qe-identity", "expired");
	oasis_expect("2022-12-20T00:50:04Z", NULL, NULL, 200, -1, "tcb-info", "signature");
	oasis_expect("2022-12-20T00:50:04Z", NULL, NULL, -1, 150, "qe-identity", "signature");
	oasis_expect("2022-12-20T00:50:04Z", NULL, "dcap-quotes/sgx3-oasis/negative/tcb_info_issuer_chain_bad.pem", -1, -1,
		     "tcb-info", "signature");
	oasis_expect("2022-12-20T00:50:04Z", NULL, "", -1, -1, "tcb-info", "no issuer chain");
	oasis_expect("2022-12-20T00:50:04Z", "dcap-quotes/sgx3-oasis/negative/quote_v3_eppid.bin", NULL, -1, -1,
		     "pck-chain", "cannot be verified offline");
}

/* ---- the cache gives the same answers, and never skips the per-quote checks ---- */
static void cache_is_transparent(void **state)
{
	struct mse_collateral c;
	uint8_t *q;
	size_t n;
	struct mse_verify_policy pol = {0};
	struct mse_verify_result r1, r2;
	struct mse_err e = {0};
	struct mse_verify_cache *cache = mse_verify_cache_new(MSE_VERIFY_CACHE_PLATFORM | MSE_VERIFY_CACHE_OBJECTS);

	(void)state;
	load_set("sgx3-dcapqvl", &c, &q, &n);
	pol.now = at("2025-07-19T10:01:17Z");
	pol.accept_status = ~0u;
	assert_int_equal(mse_verify_quote(q, n, &c, &pol, cache, &r1, &e), 0);
	assert_false(r1.flags & MSE_VERIFY_F_CACHED);
	assert_int_equal(mse_verify_quote(q, n, &c, &pol, cache, &r2, &e), 0);
	assert_true(r2.flags & MSE_VERIFY_F_CACHED);
	assert_int_equal(r1.status, r2.status);
	assert_string_equal(r1.advisories, r2.advisories);
	assert_memory_equal(&r1.report, &r2.report, sizeof(r1.report));
	/* a changed report body still fails its signature with a warm cache */
	q[MSE_QUOTE_HEADER_SIZE + MSE_RB_MRENCLAVE] ^= 1;
	assert_int_equal(mse_verify_quote(q, n, &c, &pol, cache, &r2, &e), -1);
	assert_string_equal(e.step, "quote-signature");
	q[MSE_QUOTE_HEADER_SIZE + MSE_RB_MRENCLAVE] ^= 1;
	/* outside the cached windows the platform is checked again, and fails */
	pol.now = at("2025-08-01T00:00:00Z");
	assert_int_equal(mse_verify_quote(q, n, &c, &pol, cache, &r2, &e), -1);
	assert_non_null(strstr(e.msg, "expired"));
	/* a per-quote fact (trailing bytes) does not leak into the platform entry */
	{
		struct mse_verify_cache *c2 = mse_verify_cache_new(MSE_VERIFY_CACHE_PLATFORM);
		uint8_t *qt = malloc(n + 3);

		memcpy(qt, q, n);
		memset(qt + n, 0, 3);
		pol.now = at("2025-07-19T10:01:17Z");
		assert_int_equal(mse_verify_quote(qt, n + 3, &c, &pol, c2, &r2, &e), 0);
		assert_true(r2.flags & MSE_VERIFY_F_TRAILING);
		assert_int_equal(mse_verify_quote(q, n, &c, &pol, c2, &r2, &e), 0);
		assert_true(r2.flags & MSE_VERIFY_F_CACHED);
		assert_false(r2.flags & MSE_VERIFY_F_TRAILING);
		free(qt);
		mse_verify_cache_free(c2);
	}
	/* a stricter policy is not served from a lenient entry */
	pol.now = at("2025-07-19T10:01:17Z");
	pol.accept_status = 0;
	assert_int_equal(mse_verify_quote(q, n, &c, &pol, cache, &r2, &e), -1);
	assert_string_equal(e.step, "tcb-status");
	mse_verify_cache_free(cache);
	mse_verify_cache_free(NULL);
	free(q);
	mse_collateral_free(&c);
}

/* ---- simulation: a foreign root is refused unless allowed, and allowing it does not
 * change how Intel-rooted quotes verify ---- */
static void simulation_root_only_when_allowed(void **state)
{
	struct mse_collateral c;
	uint8_t *q, *intel;
	size_t n, ilen;
	struct mse_verify_policy pol = {0};
	struct mse_verify_result res;
	struct mse_err e = {0};
	static const uint8_t fake_root[] = {0x30, 0x03, 0x02, 0x01, 0x00};

	(void)state;
	load_set("sgx3-dcapqvl", &c, &q, &n);
	pol.now = at("2025-07-19T10:01:17Z");
	pol.accept_status = ~0u;
	pol.allow_simulation = 1;
	pol.sim_root_der = fake_root;
	pol.sim_root_len = sizeof(fake_root);
	assert_int_equal(mse_verify_quote(q, n, &c, &pol, NULL, &res, &e), 0);
	assert_false(res.flags & MSE_VERIFY_F_SIMULATION);
	/* The Intel root given as the "simulation root" is still Intel: the pin is checked first. */
	intel = tu_read(tu_vector("dcap-quotes/intel_sgx_root_ca.der"), &ilen);
	pol.sim_root_der = intel;
	pol.sim_root_len = ilen;
	assert_int_equal(mse_verify_quote(q, n, &c, &pol, NULL, &res, &e), 0);
	assert_false(res.flags & MSE_VERIFY_F_SIMULATION);
	free(intel);
	free(q);
	mse_collateral_free(&c);
}

/* evidence.json: the base64-of-hex tcb_info quirk, plain base64 too, and bad fields named. */
static void evidence_forms(void **state)
{
	size_t n;
	uint8_t *raw = tu_read(tu_vector("mse-evidence/evidence.json"), &n);
	json_error_t je;
	json_t *j = json_loadb((char *)raw, n, 0, &je);
	struct mse_collateral_evidence a, b;
	struct mse_err e = {0};
	char *text, *b64;
	size_t blen;

	(void)state;
	assert_non_null(j);
	assert_int_equal(mse_collateral_parse_evidence(&a, raw, n, &e), 0);
	/* the quirk undone: a JSON body starting with {"tcbInfo" */
	assert_memory_equal(a.coll.tcb_info.p, "{\"tcbInfo\"", 10);
	assert_memory_equal(a.coll.qe_identity.p, "{\"enclaveIdentity\"", 18);
	/* the same body as plain base64 gives the same bytes */
	blen = a.coll.tcb_info.len / 3 * 4 + 8;
	b64 = malloc(blen);
	assert_int_equal(mse_b64_encode(b64, blen, a.coll.tcb_info.p, a.coll.tcb_info.len, MSE_B64_STD), 0);
	json_object_set_new(j, "tcb_info", json_string(b64));
	text = json_dumps(j, 0);
	assert_int_equal(mse_collateral_parse_evidence(&b, (uint8_t *)text, strlen(text), &e), 0);
	assert_int_equal(b.coll.tcb_info.len, a.coll.tcb_info.len);
	assert_memory_equal(b.coll.tcb_info.p, a.coll.tcb_info.p, a.coll.tcb_info.len);
	mse_collateral_evidence_free(&b);
	free(text);
	/* broken fields are named */
	json_object_set_new(j, "tcb_info", json_string("***"));
	text = json_dumps(j, 0);
	assert_int_equal(mse_collateral_parse_evidence(&b, (uint8_t *)text, strlen(text), &e), -1);
	assert_string_equal(e.field, "tcb_info");
	assert_string_equal(e.step, "collateral");
	free(text);
	json_object_del(j, "ratls_certificate");
	text = json_dumps(j, 0);
	assert_int_equal(mse_collateral_parse_evidence(&b, (uint8_t *)text, strlen(text), &e), -1);
	assert_string_equal(e.field, "ratls_certificate");
	free(text);
	assert_int_equal(mse_collateral_parse_evidence(&b, (const uint8_t *)"[1]", 3, &e), -1);
	assert_int_equal(mse_collateral_parse_evidence(&b, (const uint8_t *)"{", 1, &e), -1);
	free(b64);
	mse_collateral_evidence_free(&a);
	json_decref(j);
	free(raw);
}

static void status_list_parsing(void **state)
{
	unsigned m;
	struct mse_err e = {0};

	(void)state;
	assert_int_equal(mse_verify_parse_status_list("OutOfDate,SWHardeningNeeded", &m, &e), 0);
	assert_int_equal(m, MSE_TCB_MASK(MSE_TCB_OUT_OF_DATE) | MSE_TCB_MASK(MSE_TCB_SW_HARDENING_NEEDED) |
				    MSE_TCB_MASK(MSE_TCB_UP_TO_DATE));
	assert_int_equal(mse_verify_parse_status_list("OutOfdate", &m, &e), -1);
	assert_non_null(strstr(e.msg, "OutOfdate"));
	assert_int_equal(mse_verify_parse_status_list("", &m, &e), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cosmian_signatures_binding_and_chain),
		cmocka_unit_test(evidence_outofdate_policy),
		cmocka_unit_test(evidence_today),
		cmocka_unit_test(dcapqvl_known_status),
		cmocka_unit_test(automata_verifies),
		cmocka_unit_test(oasis_cases),
		cmocka_unit_test(cache_is_transparent),
		cmocka_unit_test(simulation_root_only_when_allowed),
		cmocka_unit_test(evidence_forms),
		cmocka_unit_test(status_list_parsing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
