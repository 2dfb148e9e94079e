/* SPDX-License-Identifier: Apache-2.0 */
/* src/attest/ratls: quote extraction and key binding on MSE's real RA-TLS certificate. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "attest/quote.h"
#include "attest/ratls.h"
#include "common/hex.h"

/* The evidence's ratls_certificate (PEM), malloc'd. */
static char *evidence_cert(void)
{
	json_error_t je;
	json_t *j = json_load_file(tu_vector("mse-evidence/evidence.json"), 0, &je);
	char *pem;

	assert_non_null(j);
	pem = strdup(json_string_value(json_object_get(j, "ratls_certificate")));
	json_decref(j);
	return pem;
}

static void evidence_cert_binds_its_quote(void **state)
{
	char *pem = evidence_cert();
	struct mse_ratls c;
	struct mse_quote q;
	struct mse_err e = {0};
	uint8_t rd[64], h[32];

	(void)state;
	assert_int_equal(mse_ratls_parse(&c, (const uint8_t *)pem, strlen(pem), &e), 0);
	assert_int_equal(c.point[0], 0x04);
	/* Independent recomputation of the binding hash from the raw point. */
	SHA256(c.point, sizeof(c.point), h);
	assert_memory_equal(h, c.key_hash, 32);
	assert_int_equal(mse_quote_parse(&q, c.quote, c.quote_len, MSE_QUOTE_STRICT, &e), 0);
	assert_int_equal(q.version, 3);
	assert_int_equal(mse_ratls_check_binding(&c, q.body.report_data, &e), 0);
	/* One flipped bit of report_data breaks the binding, and the message shows both. */
	memcpy(rd, q.body.report_data, 64);
	rd[31] ^= 1;
	assert_int_equal(mse_ratls_check_binding(&c, rd, &e), -1);
	assert_string_equal(e.step, "binding");
	assert_non_null(strstr(e.msg, "expected"));
	/* The second half (X25519 key) is not part of the binding. */
	rd[31] ^= 1;
	rd[40] ^= 1;
	assert_int_equal(mse_ratls_check_binding(&c, rd, &e), 0);

	/* DER input gives the same result; PEM re-encoding round-trips. */
	{
		struct mse_ratls d;
		char *pem2;
		size_t n;

		if (mse_ratls_parse(&d, c.der, c.der_len, &e) != 0)
			fail_msg("%s: %s", e.field, e.msg);
		assert_memory_equal(d.key_hash, c.key_hash, 32);
		assert_int_equal(d.quote_len, c.quote_len);
		assert_memory_equal(d.quote, c.quote, c.quote_len);
		assert_int_equal(mse_ratls_pem(&d, &pem2, &n, &e), 0);
		assert_string_equal(pem2, pem);
		free(pem2);
		mse_ratls_free(&d);
		mse_ratls_free(&d); /* idempotent */
	}
	mse_ratls_free(&c);
	free(pem);
}

static void plain_cert_and_garbage_are_refused(void **state)
{
	const char *dir = tu_tmpdir();
	char path[512];
	uint8_t *pem;
	size_t len;
	struct mse_ratls c;
	struct mse_err e = {0};

	(void)state;
	/* A P-256 self-signed certificate without the quote extension (openssl CLI). */
	assert_int_equal(tu_sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
			       "-nodes -keyout k.pem -out c.pem -subj /CN=x -days 1 2>/dev/null",
			       dir),
			 0);
	snprintf(path, sizeof(path), "%s/c.pem", dir);
	pem = tu_read(path, &len);
	assert_int_equal(mse_ratls_parse(&c, pem, len, &e), -1);
	assert_string_equal(e.step, "ratls");
	assert_non_null(strstr(e.msg, "not an RA-TLS certificate"));
	free(pem);
	/* A P-384 key is refused before anything else. */
	assert_int_equal(tu_sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 "
			       "-nodes -keyout k2.pem -out c2.pem -subj /CN=x -days 1 2>/dev/null",
			       dir),
			 0);
	snprintf(path, sizeof(path), "%s/c2.pem", dir);
	pem = tu_read(path, &len);
	assert_int_equal(mse_ratls_parse(&c, pem, len, &e), -1);
	assert_string_equal(e.field, "public_key");
	free(pem);
	assert_int_equal(mse_ratls_parse(&c, (const uint8_t *)"hello", 5, &e), -1);
	assert_int_equal(mse_ratls_parse(&c, NULL, 0, &e), -1);
	mse_ratls_free(&c);
	mse_ratls_free(NULL);
	tu_rmtree(dir);
}

static void fetch_rejects_bad_addresses(void **state)
{
	uint8_t *der;
	size_t n;
	struct mse_err e = {0};

	(void)state;
	assert_int_equal(mse_ratls_fetch("nocolon", 1000, &der, &n, &e), -1);
	assert_string_equal(e.step, "fetch");
	/* Port 1 on loopback: nothing listens there. */
	assert_int_equal(mse_ratls_fetch("127.0.0.1:1", 1000, &der, &n, &e), -1);
	assert_non_null(strstr(e.msg, "cannot connect"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(evidence_cert_binds_its_quote),
		cmocka_unit_test(plain_cert_and_garbage_are_refused),
		cmocka_unit_test(fetch_rejects_bad_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
