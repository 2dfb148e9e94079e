/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX through src/attest/verify: the five real TDX sets (Intel-signed quotes
 * v4 and v5 and their collateral, from dcap-qvl, oasis-core, go-tdx-guest
 * and openenclave) at their README "now" give the outcome their source
 * asserts; each is refused at the named step when the option it needs is
 * left out; collateral of the other TEE is refused; strict parsing refuses
 * trailing bytes; the TD policy compares against bytes read at the offsets
 * of Intel's TD report layout; and every byte of the signed regions of a
 * v4 and a v5 quote and of their TCB info and QE identity text, flipped,
 * is rejected with a step named (under ASan+UBSan: never a crash).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/collateral.h"
#include "attest/jspan.h"
#include "attest/quote.h"
#include "attest/ratls.h"
#include "attest/sim.h"
#include "attest/simtdx.h"
#include "attest/tcb.h"
#include "attest/verify.h"
#include "attest/x509w.h"

static time_t at(const char *iso)
{
	time_t t;

	if (strlen(iso) == 10) {
		char b[32];

		snprintf(b, sizeof(b), "%sT00:00:00Z", iso);
		assert_int_equal(mse_tcb_parse_time(b, &t), 0);
	} else {
		assert_int_equal(mse_tcb_parse_time(iso, &t), 0);
	}
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

/* The README's table: set, now, options it needs, expected outcome. */
struct set_case {
	const char *set, *now;
	int missing_crl, sept_ve, service_td;
	unsigned accept;
	enum mse_tcb_status status; /* MSE_TCB_UNKNOWN: refused */
	const char *advisories;
	size_t trailing;
	uint16_t version, body_type;
};

static const struct set_case cases[] = {
	{"tdx4-dcapqvl", "2025-07-19T10:00:34Z", 0, 0, 0, 0, MSE_TCB_UP_TO_DATE, "", 70, 4, MSE_QUOTE_BODY_TD10},
	{"tdx4-oasis", "2024-09-02T07:43:52Z", 1, 0, 0, 0, MSE_TCB_UP_TO_DATE, "", 0, 4, MSE_QUOTE_BODY_TD10},
	{"tdx4-gotdx-notsupported", "2023-07-01T01:00:00Z", 0, 1, 0, 0, MSE_TCB_UNKNOWN, NULL, 39, 4,
	 MSE_QUOTE_BODY_TD10},
	{"tdx5-oe-relaunch", "2025-03-01", 0, 0, 0, MSE_TCB_MASK(MSE_TCB_TD_RELAUNCH_ADVISED),
	 MSE_TCB_TD_RELAUNCH_ADVISED, "INTEL-SA-01036,INTEL-SA-01099", 0, 5, MSE_QUOTE_BODY_TD15},
	{"tdx5-oe-outofdate", "2026-06-20", 0, 0, 1, MSE_TCB_MASK(MSE_TCB_OUT_OF_DATE), MSE_TCB_OUT_OF_DATE, NULL, 0, 5,
	 MSE_QUOTE_BODY_TD15},
};

static int run_case(const struct set_case *c, const struct mse_verify_policy *pol, struct mse_verify_result *res,
		    struct mse_err *e)
{
	struct mse_collateral coll;
	uint8_t *q;
	size_t n;
	int rc;

	load_set(c->set, &coll, &q, &n);
	rc = mse_verify_quote(q, n, &coll, pol, NULL, res, e);
	free(q);
	mse_collateral_free(&coll);
	return rc;
}

static void policy_for(const struct set_case *c, struct mse_verify_policy *pol)
{
	memset(pol, 0, sizeof(*pol));
	pol->now = at(c->now);
	pol->allow_missing_crl = c->missing_crl;
	pol->allow_sept_ve = c->sept_ve;
	pol->allow_service_td = c->service_td;
	pol->accept_status = c->accept ? c->accept | MSE_TCB_MASK(MSE_TCB_UP_TO_DATE) : 0;
}

static void real_sets_give_their_known_outcome(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct set_case *c = &cases[i];
		struct mse_verify_policy pol;
		struct mse_verify_result res;
		struct mse_err e = {0};
		int rc;

		policy_for(c, &pol);
		rc = run_case(c, &pol, &res, &e);
		print_message("%s: rc %d status %s step %s %s\n", c->set, rc, mse_tcb_status_name(res.status), e.step, e.msg);
		assert_true(res.tdx);
		assert_int_equal(res.quote_version, c->version);
		assert_int_equal(res.body_type, c->body_type);
		assert_int_equal(res.trailing, c->trailing);
		if (c->status == MSE_TCB_UNKNOWN) {
			/* go-tdx-guest: "TCB level not supported", every signature and CRL valid. */
			assert_int_equal(rc, -1);
			assert_string_equal(e.step, "tcb-level");
			assert_non_null(strstr(e.msg, "TCB level not supported"));
			for (int s = MSE_STEP_PCK_CHAIN; s <= MSE_STEP_QUOTE_SIGNATURE; s++)
				assert_int_equal(res.steps[s], MSE_STEP_OK);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(res.status, c->status);
		if (c->advisories)
			assert_string_equal(res.advisories, c->advisories);
		assert_int_equal(res.qe_status, MSE_TCB_UP_TO_DATE);
		assert_string_equal(res.tdx_module_id, "TDX_01");
	}
}

/* Leaving out the option a set needs: refused, at the step that names it. */
static void each_needed_option_is_named_when_missing(void **state)
{
	static const struct {
		size_t set;
		const char *what, *step, *field;
	} drop[] = {
		{0, "now", "tcb-info", NULL},                   /* collateral expired today */
		{1, "missing_crl", "crl", "root CA CRL"},
		{3, "accept", "tcb-status", "tcbStatus"},
		{4, "accept", "tcb-status", "tcbStatus"},
		{4, "service_td", "td-attributes", "mr_service_td"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
		const struct set_case *c = &cases[drop[i].set];
		struct mse_verify_policy pol;
		struct mse_verify_result res;
		struct mse_err e = {0};

		policy_for(c, &pol);
		if (strcmp(drop[i].what, "now") == 0)
			pol.now = 0;
		else if (strcmp(drop[i].what, "missing_crl") == 0)
			pol.allow_missing_crl = 0;
		else if (strcmp(drop[i].what, "accept") == 0)
			pol.accept_status = 0;
		else
			pol.allow_service_td = 0;
		assert_int_equal(run_case(c, &pol, &res, &e), -1);
		assert_string_equal(e.step, drop[i].step);
		if (drop[i].field)
			assert_string_equal(e.field, drop[i].field);
	}
}

/*
 * TDATTRIBUTES read at the layout's offset (body + 120): oasis's TD has
 * SEPT_VE_DISABLE and passes [td-attributes]; gotdx's has only PKS (its
 * refusal by name is tested on simulated quotes, tests/e2e/test_verify_tdx.py).
 */
static void td_attribute_bits_of_real_quotes(void **state)
{
	struct mse_verify_policy pol;
	struct mse_verify_result res;
	struct mse_err e = {0};
	struct mse_collateral coll;
	uint8_t *q;
	size_t n;

	(void)state;
	/* tdx4-oasis carries SEPT_VE_DISABLE: its bit 28 of TDATTRIBUTES at body offset 120. */
	load_set("tdx4-oasis", &coll, &q, &n);
	assert_int_equal(q[48 + 120 + 3] & 0x10, 0x10);
	policy_for(&cases[1], &pol);
	assert_int_equal(mse_verify_quote(q, n, &coll, &pol, NULL, &res, &e), 0);
	assert_int_equal(res.steps[MSE_STEP_TD_ATTRIBUTES], MSE_STEP_OK);
	free(q);
	mse_collateral_free(&coll);
	/* gotdx: the bit is clear (PKS only). */
	load_set("tdx4-gotdx-notsupported", &coll, &q, &n);
	assert_int_equal(q[48 + 120 + 3], 0x40);
	free(q);
	mse_collateral_free(&coll);
}

/* Expected measurements: right ones pass, a changed byte fails at [measurement] naming the register. */
static void td_measurements_policy(void **state)
{
	struct mse_verify_policy pol;
	struct mse_verify_result res;
	struct mse_err e = {0};
	struct mse_collateral coll;
	uint8_t *q, mrtd[48], rtmr2[48], owner[48], seam[48];
	size_t n, body = 48; /* v4: the TD report follows the 48-byte header */

	(void)state;
	load_set("tdx4-dcapqvl", &coll, &q, &n);
	/* Offsets of Intel's TD report 1.0: MRSEAM 16, MRTD 136, MROWNER 232, RTMR2 328 + 2 * 48. */
	memcpy(mrtd, q + body + 136, 48);
	memcpy(rtmr2, q + body + 328 + 96, 48);
	memcpy(owner, q + body + 232, 48);
	memcpy(seam, q + body + 16, 48);
	policy_for(&cases[0], &pol);
	pol.mrtd = mrtd;
	pol.rtmr[2] = rtmr2;
	pol.mrowner = owner;
	pol.mrseam = seam;
	assert_int_equal(mse_verify_quote(q, n, &coll, &pol, NULL, &res, &e), 0);
	assert_int_equal(res.steps[MSE_STEP_MEASUREMENT], MSE_STEP_OK);
	rtmr2[47] ^= 1;
	assert_int_equal(mse_verify_quote(q, n, &coll, &pol, NULL, &res, &e), -1);
	assert_string_equal(e.step, "measurement");
	assert_string_equal(e.field, "rtmr2");
	/* Intel's checks passed and were recorded before the identity policy ran. */
	assert_int_equal(res.steps[MSE_STEP_TCB_STATUS], MSE_STEP_OK);
	rtmr2[47] ^= 1;
	mrtd[0] ^= 0x80;
	assert_int_equal(mse_verify_quote(q, n, &coll, &pol, NULL, &res, &e), -1);
	assert_string_equal(e.field, "mrtd");
	mrtd[0] ^= 0x80;
	/* An SGX identity for a TD, and a TD identity for an SGX quote: refused by name. */
	{
		uint8_t mre[32] = {0};
		struct mse_verify_policy p2 = pol;
		struct mse_collateral sc;
		uint8_t *sq;
		size_t sn;

		p2.mrenclave = mre;
		assert_int_equal(mse_verify_quote(q, n, &coll, &p2, NULL, &res, &e), -1);
		assert_string_equal(e.step, "measurement");
		assert_string_equal(e.field, "mrenclave");
		load_set("sgx3-dcapqvl", &sc, &sq, &sn);
		memset(&p2, 0, sizeof(p2));
		p2.now = at("2025-07-19T10:01:17Z");
		p2.accept_status = ~0u;
		p2.mrtd = mrtd;
		assert_int_equal(mse_verify_quote(sq, sn, &sc, &p2, NULL, &res, &e), -1);
		assert_string_equal(e.step, "measurement");
		assert_string_equal(e.field, "mrtd");
		free(sq);
		mse_collateral_free(&sc);
	}
	free(q);
	mse_collateral_free(&coll);
}

/* A TDX quote with SGX collateral and the reverse, a QE identity of the other TEE. */
static void collateral_of_the_other_tee_is_refused(void **state)
{
	struct mse_collateral sgx, tdx;
	uint8_t *sq, *tq;
	size_t sn, tn;
	struct mse_verify_policy pol = {0};
	struct mse_verify_result res;
	struct mse_err e = {0};
	struct mse_blob b;

	(void)state;
	load_set("sgx3-dcapqvl", &sgx, &sq, &sn);
	load_set("tdx4-dcapqvl", &tdx, &tq, &tn);
	pol.now = at("2025-07-19T10:00:34Z");
	pol.accept_status = ~0u;
	/* TDX quote, SGX TCB info (Intel-signed, same window): refused at tcb-info on the id. */
	b = tdx.tcb_info;
	tdx.tcb_info = sgx.tcb_info;
	assert_int_equal(mse_verify_quote(tq, tn, &tdx, &pol, NULL, &res, &e), -1);
	assert_string_equal(e.step, "tcb-info");
	assert_string_equal(e.field, "id");
	tdx.tcb_info = b;
	/* TDX quote, SGX QE identity ("QE"): refused at qe-identity on the id. */
	b = tdx.qe_identity;
	tdx.qe_identity = sgx.qe_identity;
	assert_int_equal(mse_verify_quote(tq, tn, &tdx, &pol, NULL, &res, &e), -1);
	assert_string_equal(e.step, "qe-identity");
	assert_string_equal(e.field, "id");
	tdx.qe_identity = b;
	/* SGX quote, TDX TCB info: refused at tcb-info on the id. */
	b = sgx.tcb_info;
	sgx.tcb_info = tdx.tcb_info;
	pol.now = at("2025-07-19T10:01:17Z");
	assert_int_equal(mse_verify_quote(sq, sn, &sgx, &pol, NULL, &res, &e), -1);
	assert_string_equal(e.step, "tcb-info");
	assert_string_equal(e.field, "id");
	sgx.tcb_info = b;
	/* SGX quote, TD_QE identity. */
	b = sgx.qe_identity;
	sgx.qe_identity = tdx.qe_identity;
	assert_int_equal(mse_verify_quote(sq, sn, &sgx, &pol, NULL, &res, &e), -1);
	assert_string_equal(e.step, "qe-identity");
	sgx.qe_identity = b;
	free(sq);
	free(tq);
	mse_collateral_free(&sgx);
	mse_collateral_free(&tdx);
}

static void strict_refuses_trailing_bytes(void **state)
{
	struct mse_collateral coll;
	uint8_t *q, *neg;
	size_t n, nn;
	struct mse_verify_policy pol;
	struct mse_verify_result res;
	struct mse_err e = {0};

	(void)state;
	load_set("tdx4-oasis", &coll, &q, &n);
	neg = tu_read(tu_vector("dcap-quotes/tdx4-oasis/negative/quote_trailing.bin"), &nn);
	policy_for(&cases[1], &pol);
	/*
	 * oasis's negative quote is another TD's quote (its PCK is not yet
	 * valid at the set's "now") followed by 70 bytes: tolerated by default,
	 * so verification goes on to the PCK chain; strict mode stops at parse.
	 */
	assert_int_equal(mse_verify_quote(neg, nn, &coll, &pol, NULL, &res, &e), -1);
	assert_string_equal(e.step, "pck-chain");
	assert_int_equal(res.trailing, 70);
	pol.strict = 1;
	assert_int_equal(mse_verify_quote(q, n, &coll, &pol, NULL, &res, &e), 0);
	assert_int_equal(mse_verify_quote(neg, nn, &coll, &pol, NULL, &res, &e), -1);
	assert_string_equal(e.step, "parse");
	assert_non_null(strstr(e.msg, "trailing"));
	free(neg);
	free(q);
	mse_collateral_free(&coll);
	/* go-tdx-guest's set: quote.bin = quote_trimmed.bin + 39 bytes. */
	q = tu_read(tu_vector("dcap-quotes/tdx4-gotdx-notsupported/quote.bin"), &n);
	neg = tu_read(tu_vector("dcap-quotes/tdx4-gotdx-notsupported/quote_trimmed.bin"), &nn);
	{
		struct mse_quote pq;

		assert_int_equal(mse_quote_parse(&pq, neg, nn, MSE_QUOTE_STRICT, &e), 0);
		assert_int_equal(mse_quote_parse(&pq, q, n, MSE_QUOTE_STRICT, &e), -1);
		assert_int_equal(mse_quote_parse(&pq, q, n, 0, &e), 0);
		assert_int_equal(pq.trailing, 39);
	}
	free(neg);
	free(q);
}

/* The platform cache returns the same TDX verdict and still checks each quote's signature. */
static void cache_is_transparent_for_tdx(void **state)
{
	struct mse_verify_cache *cache = mse_verify_cache_new(MSE_VERIFY_CACHE_PLATFORM | MSE_VERIFY_CACHE_OBJECTS);
	struct mse_verify_policy pol;
	struct mse_verify_result a, b;
	struct mse_err e = {0};
	struct mse_collateral coll;
	uint8_t *q;
	size_t n;

	(void)state;
	load_set("tdx5-oe-relaunch", &coll, &q, &n);
	policy_for(&cases[3], &pol);
	assert_int_equal(mse_verify_quote(q, n, &coll, &pol, cache, &a, &e), 0);
	assert_int_equal(mse_verify_quote(q, n, &coll, &pol, cache, &b, &e), 0);
	assert_true(b.flags & MSE_VERIFY_F_CACHED);
	assert_int_equal(a.status, b.status);
	assert_int_equal(b.status, MSE_TCB_TD_RELAUNCH_ADVISED);
	assert_string_equal(a.advisories, b.advisories);
	assert_int_equal(b.steps[MSE_STEP_QUOTE_SIGNATURE], MSE_STEP_OK);
	q[54 + 136] ^= 1; /* MRTD: same platform, a forged TD */
	assert_int_equal(mse_verify_quote(q, n, &coll, &pol, cache, &b, &e), -1);
	assert_string_equal(e.step, "quote-signature");
	q[54 + 136] ^= 1;
	mse_verify_cache_free(cache);
	/*
	 * The object cache alone (parsed certificates, CRLs, TCB info and QE
	 * identity by the SHA-256 of their bytes): same verdict every time, and a
	 * changed tcbInfo text is parsed and its signature checked again.
	 */
	cache = mse_verify_cache_new(MSE_VERIFY_CACHE_OBJECTS);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(mse_verify_quote(q, n, &coll, &pol, cache, &b, &e), 0);
		assert_false(b.flags & MSE_VERIFY_F_CACHED);
		assert_int_equal(b.status, a.status);
		assert_string_equal(b.advisories, a.advisories);
		assert_string_equal(b.tdx_module_id, a.tdx_module_id);
	}
	{
		char *t = strstr((char *)coll.tcb_info.p, "\"tcbEvaluationDataNumber\":18");

		assert_non_null(t);
		t[27] = '9';
		assert_int_equal(mse_verify_quote(q, n, &coll, &pol, cache, &b, &e), -1);
		assert_string_equal(e.step, "tcb-info");
		t[27] = '8';
		assert_int_equal(mse_verify_quote(q, n, &coll, &pol, cache, &b, &e), 0);
	}
	free(q);
	mse_collateral_free(&coll);
	mse_verify_cache_free(cache);
}

/*
 * An RA-TLS certificate carrying a simulated TDX quote whose report data
 * binds its key: verified through mse_verify_ratls, the TD's report data
 * checked; a certificate with another key is refused at [binding].
 */
static void ratls_with_a_td_quote(void **state)
{
	const char *tmp = tu_tmpdir();
	char sim[4200], coll[4200];
	struct mse_err e = {0};
	struct mse_td_report td;
	struct mse_collateral c;
	struct mse_verify_policy pol = {0};
	struct mse_verify_result res;
	uint8_t *q = NULL, *der = NULL, *root = NULL;
	size_t qlen, der_len, root_len;
	time_t now = time(NULL);

	(void)state;
	snprintf(sim, sizeof(sim), "%s/sim", tmp);
	snprintf(coll, sizeof(coll), "%s/coll", tmp);
	assert_int_equal(mse_sim_init(sim, 0, &e), 0);
	assert_int_equal(mse_simtdx_collateral(sim, coll, &e), 0);
	assert_int_equal(mse_collateral_load_dir(&c, coll, &e), 0);
	{
		char p[4300];

		snprintf(p, sizeof(p), "%s/root_ca.der", sim);
		root = tu_read(p, &root_len);
	}
	pol.allow_simulation = 1;
	pol.sim_root_der = root;
	pol.sim_root_len = root_len;
	for (int wrong = 0; wrong < 2; wrong++) {
		EVP_PKEY *k = mse_x509w_p256_new(&e), *other = mse_x509w_p256_new(&e);
		X509_NAME *n = mse_x509w_name_rfc4514("CN=td", &e);
		X509 *x;
		struct mse_ratls r;

		assert_non_null(k);
		mse_simtdx_default_td(&td);
		assert_int_equal(mse_ratls_key_hash(wrong ? other : k, td.report_data, &e), 0);
		assert_int_equal(mse_simtdx_quote(sim, 4, &td, &q, &qlen, &e), 0);
		x = mse_x509w_cert_new(n, n, k, now - 60, now + 3600, &e);
		assert_non_null(x);
		assert_int_equal(mse_x509w_add_raw_ext(x, MSE_RATLS_QUOTE_OID, 0, q, qlen, &e), 0);
		assert_int_equal(mse_x509w_sign(x, k, &e), 0);
		assert_int_equal(mse_x509w_cert_der(x, &der, &der_len, &e), 0);
		assert_int_equal(mse_ratls_parse(&r, der, der_len, &e), 0);
		if (!wrong) {
			assert_int_equal(mse_verify_ratls(&r, &c, &pol, NULL, &res, &e), 0);
			assert_true(res.tdx && (res.flags & MSE_VERIFY_F_SIMULATION));
			assert_int_equal(res.steps[MSE_STEP_BINDING], MSE_STEP_OK);
			assert_memory_equal(res.td.report_data, r.key_hash, 32);
		} else {
			assert_int_equal(mse_verify_ratls(&r, &c, &pol, NULL, &res, &e), -1);
			assert_string_equal(e.step, "binding");
		}
		mse_ratls_free(&r);
		X509_free(x);
		X509_NAME_free(n);
		EVP_PKEY_free(k);
		EVP_PKEY_free(other);
		free(der);
		free(q);
	}
	free(root);
	mse_collateral_free(&c);
	tu_rmtree(tmp);
}

/* ---- byte-flip mutation of the signed regions ---- */

struct target {
	struct mse_collateral coll;
	uint8_t *quote;
	size_t qlen;
	struct mse_verify_policy pol;
	size_t rejected;
};

static void must_reject(struct target *t, const char *what, size_t off)
{
	struct mse_verify_result r;
	struct mse_err e = {0};

	if (mse_verify_quote(t->quote, t->qlen, &t->coll, &t->pol, NULL, &r, &e) == 0)
		fail_msg("%s byte %zu is signed, yet the mutation was accepted", what, off);
	if (!e.step[0])
		fail_msg("%s byte %zu: rejected without naming a step", what, off);
	t->rejected++;
}

static void flip_signed(struct target *t, uint8_t *p, size_t from, size_t to, const char *what)
{
	for (size_t i = from; i < to; i++) {
		p[i] ^= 0x01;
		must_reject(t, what, i);
		p[i] ^= 0x01;
	}
}

static void mutate_set(const struct set_case *c)
{
	struct target t = {0};
	struct mse_verify_result r;
	struct mse_err e = {0};
	struct mse_quote q;
	struct mse_jspan sp;
	size_t qe_end, a;

	load_set(c->set, &t.coll, &t.quote, &t.qlen);
	policy_for(c, &t.pol);
	t.pol.accept_status = ~0u;
	assert_int_equal(mse_verify_quote(t.quote, t.qlen, &t.coll, &t.pol, NULL, &r, &e), 0);
	assert_int_equal(mse_quote_parse(&q, t.quote, t.qlen, 0, &e), 0);
	/*
	 * Quote: header ‖ [descriptor ‖] TD report (signed by the attestation
	 * key), the signature data length, signature, key, certification data
	 * header, QE report and its signature (signed by the PCK key), QE auth
	 * data (bound by the QE report), and the chain's header.
	 */
	qe_end = (size_t)(q.cert_data - t.quote);
	flip_signed(&t, t.quote, 0, qe_end, "quote");
	/* The TCB info and QE identity objects (signed by the TCB signing key). */
	assert_int_equal(mse_jspan_member((const char *)t.coll.tcb_info.p, t.coll.tcb_info.len, "tcbInfo", &sp, &e), 0);
	a = (size_t)(sp.p - (const char *)t.coll.tcb_info.p);
	flip_signed(&t, t.coll.tcb_info.p, a, a + sp.len, "tcb_info");
	assert_int_equal(
		mse_jspan_member((const char *)t.coll.qe_identity.p, t.coll.qe_identity.len, "enclaveIdentity", &sp, &e), 0);
	a = (size_t)(sp.p - (const char *)t.coll.qe_identity.p);
	flip_signed(&t, t.coll.qe_identity.p, a, a + sp.len, "qe_identity");
	print_message("%s: %zu mutations of signed bytes, all rejected\n", c->set, t.rejected);
	free(t.quote);
	mse_collateral_free(&t.coll);
}

static void every_signed_byte_of_v4(void **state)
{
	(void)state;
	mutate_set(&cases[0]);
}

static void every_signed_byte_of_v5(void **state)
{
	(void)state;
	mutate_set(&cases[3]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(real_sets_give_their_known_outcome),
		cmocka_unit_test(each_needed_option_is_named_when_missing),
		cmocka_unit_test(td_attribute_bits_of_real_quotes),
		cmocka_unit_test(td_measurements_policy),
		cmocka_unit_test(collateral_of_the_other_tee_is_refused),
		cmocka_unit_test(strict_refuses_trailing_bytes),
		cmocka_unit_test(cache_is_transparent_for_tdx),
		cmocka_unit_test(ratls_with_a_td_quote),
		cmocka_unit_test(every_signed_byte_of_v4),
		cmocka_unit_test(every_signed_byte_of_v5),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
