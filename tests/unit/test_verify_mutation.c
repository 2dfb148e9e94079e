/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Byte-flip mutation of a real quote and its collateral (sgx3-dcapqvl, full
 * collateral with CRLs, and MSE's evidence): each mutated input is verified
 * from scratch. Every mutation must be rejected, or — where the byte is not
 * covered by any signature (PEM line breaks, hex case…) — accepted with
 * exactly the original verdict (measurements, status, advisories). No
 * mutation of a signed region may be accepted. Runs under ASan+UBSan, so an
 * over-read anywhere on these paths also fails the test.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/collateral.h"
#include "attest/jspan.h"
#include "attest/quote.h"
#include "attest/ratls.h"
#include "attest/verify.h"

struct target {
	struct mse_collateral coll;
	uint8_t *quote;
	size_t qlen;
	struct mse_verify_policy pol;
	struct mse_verify_result ref;
	size_t accepted, rejected;
};

static void same_verdict(const struct mse_verify_result *a, const struct mse_verify_result *b, const char *what,
			 size_t off)
{
	if (memcmp(&a->report, &b->report, sizeof(a->report)) != 0 || a->status != b->status ||
	    strcmp(a->advisories, b->advisories) != 0 || a->flags != b->flags)
		fail_msg("%s byte %zu: mutation accepted with a different verdict", what, off);
}

static void run(struct target *t, const char *what, size_t off, int must_reject)
{
	struct mse_verify_result r;
	struct mse_err e = {0};

	if (mse_verify_quote(t->quote, t->qlen, &t->coll, &t->pol, NULL, &r, &e) == 0) {
		if (must_reject)
			fail_msg("%s byte %zu is signed, yet the mutation was accepted", what, off);
		same_verdict(&t->ref, &r, what, off);
		t->accepted++;
	} else {
		if (!e.step[0])
			fail_msg("%s byte %zu: rejected without naming a step", what, off);
		t->rejected++;
	}
}

/* Flips bytes [from, to) with the given stride; must_reject for signed ranges. */
static void flip_quote(struct target *t, size_t from, size_t to, size_t stride, int must_reject)
{
	for (size_t i = from; i < to && i < t->qlen; i += stride) {
		t->quote[i] ^= 0x01;
		run(t, "quote", i, must_reject);
		t->quote[i] ^= 0x01;
	}
}

static void flip_blob(struct target *t, struct mse_blob *b, const char *what, size_t from, size_t to, size_t stride,
		      int must_reject)
{
	for (size_t i = from; i < to && i < b->len; i += stride) {
		b->p[i] ^= 0x01;
		run(t, what, i, must_reject);
		b->p[i] ^= 0x01;
	}
}

static void span_of(struct mse_blob *b, const char *member, size_t *from, size_t *to)
{
	struct mse_jspan sp;
	struct mse_err e = {0};

	assert_int_equal(mse_jspan_member((const char *)b->p, b->len, member, &sp, &e), 0);
	*from = (size_t)(sp.p - (const char *)b->p);
	*to = *from + sp.len;
}

/*
 * Strides: 1 = every byte. The default run (about 4,000 verifications)
 * covers every byte of the quote's signed regions of one set and a dense
 * sample elsewhere; MSE_MUTATION_FULL=1 flips every byte of every signed
 * region of both sets (about 16,000 verifications, ~40 s under ASan).
 */
struct strides {
	size_t quote_signed, quote_pem, span_tcb, span_qe, rest;
};

static void mutate_all(struct target *t, const struct strides *st)
{
	struct mse_quote q;
	struct mse_err e = {0};
	size_t qe_from, qe_to, cert_from, a, b;

	assert_int_equal(mse_verify_quote(t->quote, t->qlen, &t->coll, &t->pol, NULL, &t->ref, &e), 0);
	assert_int_equal(mse_quote_parse(&q, t->quote, t->qlen, 0, &e), 0);
	qe_from = (size_t)(q.qe_report.raw - t->quote);
	qe_to = qe_from + MSE_SGX_REPORT_BODY_SIZE + MSE_QUOTE_SIG_SIZE;
	cert_from = (size_t)(q.cert_data - t->quote);

	/* Signed by the attestation key: header ‖ body; then sig_len, sig, attest key. */
	flip_quote(t, 0, q.signed_len, st->quote_signed, 1);
	flip_quote(t, q.signed_len, qe_from, st->quote_signed, 1);
	/* QE report (signed by the PCK key) and its signature. */
	flip_quote(t, qe_from, qe_to, st->quote_signed, 1);
	/* QE auth data length and bytes, certification data type and length: bound by the QE report. */
	flip_quote(t, qe_to, cert_from, 1, 1);
	/* The PEM chain: a sample (base64 bytes are signed, line breaks are not). */
	flip_quote(t, cert_from, t->qlen, st->quote_pem, 0);

	/* Collateral: every byte of the signed objects, a sample of the rest. */
	span_of(&t->coll.tcb_info, "tcbInfo", &a, &b);
	flip_blob(t, &t->coll.tcb_info, "tcb_info", a, b, st->span_tcb, 1);
	flip_blob(t, &t->coll.tcb_info, "tcb_info", 0, a, 1, 0);
	flip_blob(t, &t->coll.tcb_info, "tcb_info", b, t->coll.tcb_info.len, 1, 0);
	span_of(&t->coll.qe_identity, "enclaveIdentity", &a, &b);
	flip_blob(t, &t->coll.qe_identity, "qe_identity", a, b, st->span_qe, 1);
	flip_blob(t, &t->coll.qe_identity, "qe_identity", 0, a, 1, 0);
	flip_blob(t, &t->coll.qe_identity, "qe_identity", b, t->coll.qe_identity.len, 1, 0);
	flip_blob(t, &t->coll.tcb_chain, "tcb_chain", 0, t->coll.tcb_chain.len, st->rest, 0);
	flip_blob(t, &t->coll.qe_chain, "qe_chain", 0, t->coll.qe_chain.len, st->rest, 0);
	flip_blob(t, &t->coll.pck_crl, "pck_crl", 0, t->coll.pck_crl.len, st->rest, 0);
	flip_blob(t, &t->coll.root_crl, "root_crl", 0, t->coll.root_crl.len, st->rest, 0);
	assert_true(t->rejected > 0);
}

static void dcapqvl_mutations(void **state)
{
	struct target t = {0};
	struct mse_err e = {0};

	(void)state;
	assert_int_equal(mse_collateral_load_dir(&t.coll, tu_vector("dcap-quotes/sgx3-dcapqvl"), &e), 0);
	t.quote = tu_read(tu_vector("dcap-quotes/sgx3-dcapqvl/quote.bin"), &t.qlen);
	assert_int_equal(mse_tcb_parse_time("2025-07-19T10:01:17Z", &t.pol.now), 0);
	t.pol.accept_status = ~0u;
	{
		struct strides st = {1, 13, 4, 2, 13}, full = {1, 1, 1, 1, 3};

		mutate_all(&t, getenv("MSE_MUTATION_FULL") ? &full : &st);
	}
	print_message("sgx3-dcapqvl: %zu mutations rejected, %zu harmless\n", t.rejected, t.accepted);
	free(t.quote);
	mse_collateral_free(&t.coll);
}

static void evidence_mutations(void **state)
{
	struct target t = {0};
	struct mse_collateral_evidence ev;
	struct mse_ratls cert;
	struct mse_err e = {0};
	size_t n;
	uint8_t *j = tu_read(tu_vector("mse-evidence/evidence.json"), &n);

	(void)state;
	assert_int_equal(mse_collateral_parse_evidence(&ev, j, n, &e), 0);
	assert_int_equal(mse_ratls_parse(&cert, ev.ratls_pem.p, ev.ratls_pem.len, &e), 0);
	t.coll = ev.coll;
	t.qlen = cert.quote_len;
	t.quote = malloc(t.qlen);
	memcpy(t.quote, cert.quote, t.qlen);
	assert_int_equal(mse_tcb_parse_time("2023-06-21T00:00:00Z", &t.pol.now), 0);
	t.pol.accept_status = ~0u;
	t.pol.accept_expired_collateral = 1;
	{
		struct strides st = {3, 29, 17, 17, 29}, full = {1, 7, 1, 1, 7};

		mutate_all(&t, getenv("MSE_MUTATION_FULL") ? &full : &st);
	}
	print_message("evidence: %zu mutations rejected, %zu harmless\n", t.rejected, t.accepted);
	free(t.quote);
	mse_ratls_free(&cert);
	mse_collateral_evidence_free(&ev);
	free(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dcapqvl_mutations),
		cmocka_unit_test(evidence_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
