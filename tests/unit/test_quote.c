/* SPDX-License-Identifier: Apache-2.0 */
/* src/attest/quote: DCAP quote parsing over the real vectors, and its failure cases. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "attest/quote.h"
#include "attest/verify.h"
#include "common/hex.h"

static void hexeq(const uint8_t *b, size_t n, const char *want)
{
	char got[256];

	assert_int_equal(mse_hex_encode(got, sizeof(got), b, n), 0);
	assert_string_equal(got, want);
}

static void cosmian_v3_parses_to_known_measurements(void **state)
{
	size_t len;
	uint8_t *q = tu_read(tu_vector("sgx-quote-cosmian/quote.dat"), &len);
	struct mse_quote pq;
	struct mse_err e = {0};

	(void)state;
	assert_int_equal(mse_quote_parse(&pq, q, len, MSE_QUOTE_STRICT, &e), 0);
	assert_int_equal(pq.version, 3);
	assert_int_equal(pq.att_key_type, 2);
	/* Values from the vectors README (checked there with python3-cryptography). */
	hexeq(pq.body.mr_enclave, 32, "e413a4ed616c7a79634d5ca05a2fda746a1f0c71349a80b25a02828846fab90e");
	hexeq(pq.body.mr_signer, 32, "ac2c9fa87e4c91768b1d0c47169466c50d5a98c790639fbaefe7352a59919980");
	assert_int_equal(pq.body.isv_prod_id, 1);
	assert_int_equal(pq.body.isv_svn, 10);
	assert_false(mse_quote_is_debug(&pq.body));
	assert_int_equal(pq.cert_type, MSE_QUOTE_CERT_PCK_CHAIN);
	assert_non_null(memmem(pq.cert_data, pq.cert_len, "-----BEGIN CERTIFICATE-----", 27));
	assert_int_equal(pq.signed_len, 432);
	assert_ptr_equal(pq.signed_data, q);
	assert_int_equal(pq.len, len);
	assert_int_equal(pq.trailing, 0);
	/* Intel's QE vendor ID 939A7233-F79C-4CA9-940A-0DB3957F0607 */
	hexeq(pq.qe_vendor_id, 16, "939a7233f79c4ca9940a0db3957f0607");
	free(q);
}

static void trailing_bytes_tolerated_then_rejected_when_strict(void **state)
{
	size_t len;
	uint8_t *q = tu_read(tu_vector("sgx-quote-cosmian/quote.dat"), &len);
	uint8_t *q2 = malloc(len + 7);
	struct mse_quote pq;
	struct mse_err e = {0};

	(void)state;
	memcpy(q2, q, len);
	memset(q2 + len, 0xAB, 7);
	assert_int_equal(mse_quote_parse(&pq, q2, len + 7, 0, &e), 0);
	assert_int_equal(pq.trailing, 7);
	assert_int_equal(pq.len, len);
	assert_int_equal(mse_quote_parse(&pq, q2, len + 7, MSE_QUOTE_STRICT, &e), -1);
	assert_string_equal(e.step, "parse");
	assert_non_null(strstr(e.msg, "7 trailing bytes"));
	free(q2);
	free(q);
}

static void every_truncation_is_rejected(void **state)
{
	size_t len;
	uint8_t *q = tu_read(tu_vector("sgx-quote-cosmian/quote.dat"), &len);
	struct mse_quote pq;

	(void)state;
	for (size_t n = 0; n < len; n++) {
		/* A copy of exactly n bytes so ASan sees any over-read. */
		uint8_t *c = malloc(n ? n : 1);
		struct mse_err e = {0};

		memcpy(c, q, n);
		assert_int_equal(mse_quote_parse(&pq, c, n, 0, &e), -1);
		assert_string_equal(e.step, "parse");
		free(c);
	}
	free(q);
}

static void inconsistent_lengths_are_rejected(void **state)
{
	size_t len;
	uint8_t *q = tu_read(tu_vector("sgx-quote-cosmian/quote.dat"), &len);
	struct mse_quote pq;
	struct mse_err e = {0};

	(void)state;
	/* signature_data_len one byte short: the contents overflow it. */
	q[432] -= 1;
	assert_int_equal(mse_quote_parse(&pq, q, len, 0, &e), -1);
	q[432] += 1;
	/* QE auth data length (at 432+4+64+64+384+64) past the end of the quote. */
	q[1012] = 0xff;
	q[1013] = 0xff;
	assert_int_equal(mse_quote_parse(&pq, q, len, 0, &e), -1);
	assert_string_equal(e.field, "qe_auth_data");
	free(q);
	q = tu_read(tu_vector("sgx-quote-cosmian/quote.dat"), &len);
	/* unknown version, non-ECDSA key type */
	q[0] = 2;
	assert_int_equal(mse_quote_parse(&pq, q, len, 0, &e), -1);
	assert_string_equal(e.field, "header.version");
	q[0] = 3;
	q[2] = 3;
	assert_int_equal(mse_quote_parse(&pq, q, len, 0, &e), -1);
	assert_string_equal(e.field, "header.att_key_type");
	free(q);
}

/*
 * The real TDX quotes parse: version, body type, TD report fields at the
 * offsets of Intel's layout (read here from the raw bytes), the signed
 * region (header ‖ [descriptor ‖] body), trailing bytes; a body descriptor
 * that contradicts the header, a wrong body size and a TDX v3 are refused.
 */
static void tdx_quotes_parse(void **state)
{
	static const struct {
		const char *set;
		uint16_t version, body_type;
		size_t signed_len, trailing;
	} sets[] = {{"tdx4-dcapqvl", 4, MSE_QUOTE_BODY_TD10, 48 + 584, 70},
		    {"tdx4-oasis", 4, MSE_QUOTE_BODY_TD10, 48 + 584, 0},
		    {"tdx4-gotdx-notsupported", 4, MSE_QUOTE_BODY_TD10, 48 + 584, 39},
		    {"tdx5-oe-outofdate", 5, MSE_QUOTE_BODY_TD15, 48 + 6 + 648, 0},
		    {"tdx5-oe-relaunch", 5, MSE_QUOTE_BODY_TD15, 48 + 6 + 648, 0}};
	(void)state;
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		char rel[128];
		size_t len, body;
		uint8_t *q;
		struct mse_quote pq;
		struct mse_err e = {0};

		snprintf(rel, sizeof(rel), "dcap-quotes/%s/quote.bin", sets[i].set);
		q = tu_read(tu_vector(rel), &len);
		assert_int_equal(mse_quote_parse(&pq, q, len, 0, &e), 0);
		assert_true(mse_quote_is_tdx(&pq));
		assert_int_equal(pq.version, sets[i].version);
		assert_int_equal(pq.body_type, sets[i].body_type);
		assert_int_equal(pq.signed_len, sets[i].signed_len);
		assert_ptr_equal(pq.signed_data, q);
		assert_int_equal(pq.trailing, sets[i].trailing);
		assert_int_equal(pq.td.v15, sets[i].body_type == MSE_QUOTE_BODY_TD15);
		body = sets[i].version == 5 ? 54 : 48;
		assert_memory_equal(pq.td.tee_tcb_svn, q + body, 16);
		assert_memory_equal(pq.td.mr_seam, q + body + 16, 48);
		assert_memory_equal(pq.td.mr_signer_seam, q + body + 64, 48);
		assert_memory_equal(pq.td.td_attributes, q + body + 120, 8);
		assert_memory_equal(pq.td.mr_td, q + body + 136, 48);
		assert_memory_equal(pq.td.rtmr[3], q + body + 328 + 3 * 48, 48);
		assert_memory_equal(pq.td.report_data, q + body + 520, 64);
		if (pq.td.v15) {
			assert_memory_equal(pq.td.tee_tcb_svn2, q + body + 584, 16);
			assert_memory_equal(pq.td.mr_service_td, q + body + 600, 48);
		}
		/* the quote signature verifies over exactly the signed region */
		assert_true(mse_verify_ecdsa_raw(pq.attest_key, q, pq.signed_len, pq.sig));
		assert_false(mse_verify_ecdsa_raw(pq.attest_key, q, pq.signed_len - 1, pq.sig));
		if (sets[i].version == 5) {
			/* descriptor: type 2 (TD 1.0) with a 648-byte body, then a wrong size */
			q[48] = 2;
			assert_int_equal(mse_quote_parse(&pq, q, len, 0, &e), -1);
			assert_string_equal(e.field, "body_size");
			q[48] = 1; /* SGX body under a TDX header */
			assert_int_equal(mse_quote_parse(&pq, q, len, 0, &e), -1);
			assert_string_equal(e.field, "body_type");
			q[48] = 4;
			assert_int_equal(mse_quote_parse(&pq, q, len, 0, &e), -1);
			assert_string_equal(e.field, "body_type");
			q[48] = 3;
		} else {
			q[0] = 3; /* TDX has no v3 */
			assert_int_equal(mse_quote_parse(&pq, q, len, 0, &e), -1);
			assert_string_equal(e.step, "parse");
			q[0] = 4;
			q[4] = 0x82; /* unknown TEE */
			assert_int_equal(mse_quote_parse(&pq, q, len, 0, &e), -1);
			assert_string_equal(e.field, "header.tee_type");
		}
		free(q);
	}
}

static void sgx_sets_parse_and_eppid_has_no_chain(void **state)
{
	static const char *sets[] = {"sgx3-dcapqvl", "sgx3-automata", "sgx3-oasis"};
	size_t len;
	uint8_t *q;
	struct mse_quote pq;
	struct mse_err e = {0};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		char rel[128];

		snprintf(rel, sizeof(rel), "dcap-quotes/%s/quote.bin", sets[i]);
		q = tu_read(tu_vector(rel), &len);
		assert_int_equal(mse_quote_parse(&pq, q, len, 0, &e), 0);
		assert_int_equal(pq.cert_type, MSE_QUOTE_CERT_PCK_CHAIN);
		free(q);
	}
	q = tu_read(tu_vector("dcap-quotes/sgx3-oasis/negative/quote_v3_eppid.bin"), &len);
	assert_int_equal(mse_quote_parse(&pq, q, len, 0, &e), 0);
	assert_int_equal(pq.cert_type, MSE_QUOTE_CERT_PPID_ENC3);
	free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cosmian_v3_parses_to_known_measurements),
		cmocka_unit_test(trailing_bytes_tolerated_then_rejected_when_strict),
		cmocka_unit_test(every_truncation_is_rejected),
		cmocka_unit_test(inconsistent_lengths_are_rejected),
		cmocka_unit_test(tdx_quotes_parse),
		cmocka_unit_test(sgx_sets_parse_and_eppid_has_no_chain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
