/* SPDX-License-Identifier: Apache-2.0 */
/* src/attest/der (DER writer) and x509w (RFC 4514 names): known answers from X.690 and RFC 4514. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509.h>

#include "attest/der.h"
#include "attest/x509w.h"

static void take(struct mse_der *d, const uint8_t *want, size_t want_len)
{
	uint8_t *out = NULL;
	size_t len = 0;

	assert_int_equal(mse_der_take(d, &out, &len), 0);
	assert_int_equal(len, want_len);
	assert_memory_equal(out, want, want_len);
	free(out);
}

static void der_known_answers(void **state)
{
	struct mse_der d;
	/* The SGX extension OID as it appears in Intel's PCK certificates. */
	static const uint8_t oid[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};
	static const uint8_t ints[] = {0x02, 0x01, 0x00, 0x02, 0x01, 0x7f, 0x02, 0x02, 0x00, 0x80,
				       0x02, 0x02, 0x01, 0x00, 0x0a, 0x01, 0x01, 0x01, 0x01, 0xff};
	uint8_t *out = NULL;
	size_t len = 0;

	(void)state;
	mse_der_init(&d);
	mse_der_oid(&d, "1.2.840.113741.1.13.1");
	take(&d, oid, sizeof(oid));

	mse_der_uint(&d, MSE_DER_INTEGER, 0);
	mse_der_uint(&d, MSE_DER_INTEGER, 127);
	mse_der_uint(&d, MSE_DER_INTEGER, 128); /* needs a leading zero to stay positive */
	mse_der_uint(&d, MSE_DER_INTEGER, 256);
	mse_der_uint(&d, MSE_DER_ENUMERATED, 1);
	mse_der_bool(&d, 1);
	take(&d, ints, sizeof(ints));

	/* Long-form lengths, in a constructed value closed after its content grew. */
	{
		uint8_t content[300];
		uint8_t want[4 + 4 + 300];

		memset(content, 0xab, sizeof(content));
		mse_der_begin(&d, MSE_DER_SEQUENCE);
		mse_der_prim(&d, MSE_DER_OCTET_STRING, content, sizeof(content));
		mse_der_end(&d);
		want[0] = 0x30, want[1] = 0x82, want[2] = 0x01, want[3] = 0x30; /* 304 */
		want[4] = 0x04, want[5] = 0x82, want[6] = 0x01, want[7] = 0x2c; /* 300 */
		memcpy(want + 8, content, sizeof(content));
		take(&d, want, sizeof(want));
	}
	{
		uint8_t content[200], want[3 + 200];

		memset(content, 1, sizeof(content));
		mse_der_prim(&d, MSE_DER_OCTET_STRING, content, sizeof(content));
		want[0] = 0x04, want[1] = 0x81, want[2] = 0xc8;
		memcpy(want + 3, content, sizeof(content));
		take(&d, want, sizeof(want));
	}
	/* Unbalanced or malformed input fails at take. */
	mse_der_begin(&d, MSE_DER_SEQUENCE);
	assert_int_equal(mse_der_take(&d, &out, &len), -1);
	mse_der_init(&d);
	mse_der_end(&d);
	assert_int_equal(mse_der_take(&d, &out, &len), -1);
	mse_der_init(&d);
	mse_der_oid(&d, "1.x.3");
	assert_int_equal(mse_der_take(&d, &out, &len), -1);
	mse_der_init(&d);
	mse_der_oid(&d, "7");
	assert_int_equal(mse_der_take(&d, &out, &len), -1);
}

static void entry(X509_NAME *n, int i, int nid, const char *value)
{
	X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
	ASN1_STRING *s;

	assert_non_null(e);
	assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), nid);
	s = X509_NAME_ENTRY_get_data(e);
	assert_int_equal(ASN1_STRING_length(s), (int)strlen(value));
	assert_memory_equal(ASN1_STRING_get0_data(s), value, strlen(value));
}

static void rfc4514_names(void **state)
{
	struct mse_err err;
	X509_NAME *n;

	(void)state;
	mse_err_clear(&err);
	/* RFC 4514 §2.1: the text starts with the last RDN of the DER sequence. */
	n = mse_x509w_name_rfc4514("CN=localhost,O=MyApp Company,C=FR,L=Paris,ST=Ile-de-France", &err);
	assert_non_null(n);
	assert_int_equal(X509_NAME_entry_count(n), 5);
	entry(n, 0, NID_stateOrProvinceName, "Ile-de-France");
	entry(n, 4, NID_commonName, "localhost");
	X509_NAME_free(n);
	/* §2.4 escapes. */
	n = mse_x509w_name_rfc4514("CN=a\\,b\\\\c,O=x", &err);
	assert_non_null(n);
	entry(n, 0, NID_organizationName, "x");
	entry(n, 1, NID_commonName, "a,b\\c");
	X509_NAME_free(n);
	assert_null(mse_x509w_name_rfc4514("", &err));
	assert_null(mse_x509w_name_rfc4514("CN", &err));
	assert_null(mse_x509w_name_rfc4514("CN=a,", &err));
	assert_null(mse_x509w_name_rfc4514("CN=a+O=b", &err));
	assert_null(mse_x509w_name_rfc4514("NOPE=a", &err));
	assert_non_null(strstr(err.msg, "NOPE"));
	assert_null(mse_x509w_name_rfc4514("CN=a\\", &err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(der_known_answers),
		cmocka_unit_test(rfc4514_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
