/* SPDX-License-Identifier: Apache-2.0 */
/* SGX PCK certificate extensions. See pck.h for the layout and the spec. */
#include "attest/pck.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>

/* DER encoding of the arc 1.2.840.113741.1.13.1 (without tag and length). */
static const uint8_t sgx_arc[] = {0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01};

enum { TAG_BOOL = 0x01, TAG_INT = 0x02, TAG_OCTETS = 0x04, TAG_OID = 0x06, TAG_ENUM = 0x0A, TAG_SEQ = 0x30 };

#define PCK_FAIL(err, field, ...) (mse_err_step((err), "pck"), mse_err_field((err), (field), __VA_ARGS__))

/* One DER TLV (definite lengths only, as DER requires); v borrows the input. */
static int der_tlv(struct mse_buf *r, uint8_t *tag, struct mse_buf *v)
{
	uint8_t l0, b;
	size_t len = 0;

	if (mse_buf_u8(r, tag) != 0 || (*tag & 0x1f) == 0x1f || mse_buf_u8(r, &l0) != 0)
		return -1;
	if (l0 < 0x80) {
		len = l0;
	} else {
		unsigned n = l0 & 0x7f;

		if (n == 0 || n > 3) /* indefinite, or absurdly long for a certificate extension */
			return -1;
		for (unsigned i = 0; i < n; i++) {
			if (mse_buf_u8(r, &b) != 0)
				return -1;
			len = (len << 8) | b;
		}
		if (len < 0x80) /* DER: minimal length encoding */
			return -1;
	}
	return mse_buf_sub(r, len, v);
}

static int der_expect(struct mse_buf *r, uint8_t want, struct mse_buf *v)
{
	uint8_t tag;

	if (der_tlv(r, &tag, v) != 0 || tag != want)
		return -1;
	return 0;
}

/* Non-negative INTEGER/ENUMERATED up to max. */
static int der_uint(struct mse_buf *v, unsigned long max, unsigned long *out)
{
	unsigned long x = 0;
	size_t n = mse_buf_remaining(v);
	const uint8_t *p;

	if (n == 0 || n > 4 || mse_buf_bytes(v, n, &p) != 0)
		return -1;
	if (p[0] & 0x80) /* negative */
		return -1;
	if (n > 1 && p[0] == 0 && !(p[1] & 0x80)) /* non-minimal */
		return -1;
	for (size_t i = 0; i < n; i++)
		x = (x << 8) | p[i];
	if (x > max)
		return -1;
	*out = x;
	return 0;
}

/* 1 if the OID value is sgx_arc followed by nsub one-byte sub-arcs. */
static int oid_under_sgx(const struct mse_buf *oid, size_t nsub)
{
	return mse_buf_remaining(oid) == sizeof(sgx_arc) + nsub &&
	       memcmp(mse_buf_cur(oid), sgx_arc, sizeof(sgx_arc)) == 0;
}

static int octets_exact(struct mse_buf *v, void *out, size_t n)
{
	return mse_buf_remaining(v) == n ? mse_buf_copy(v, out, n) : -1;
}

static int parse_tcb(struct mse_pck_info *out, struct mse_buf *seq, struct mse_err *err)
{
	unsigned seen = 0; /* bit i-1 for sub-arc .2.i */

	while (mse_buf_remaining(seq)) {
		struct mse_buf pair, oid, val;
		uint8_t tag;
		unsigned long x;
		unsigned idx;
		const uint8_t *o;

		if (der_expect(seq, TAG_SEQ, &pair) != 0 || der_expect(&pair, TAG_OID, &oid) != 0 ||
		    der_tlv(&pair, &tag, &val) != 0 || mse_buf_remaining(&pair) != 0)
			return PCK_FAIL(err, "tcb", "malformed TCB entry in the SGX extension");
		o = mse_buf_cur(&oid);
		if (!oid_under_sgx(&oid, 2) || o[sizeof(sgx_arc)] != 2 || o[sizeof(sgx_arc) + 1] < 1 || o[sizeof(sgx_arc) + 1] > 18)
			return PCK_FAIL(err, "tcb", "unexpected OID inside the TCB sequence");
		idx = o[sizeof(sgx_arc) + 1];
		if (seen & (1u << (idx - 1)))
			return PCK_FAIL(err, "tcb", "TCB entry .2.%u appears twice", idx);
		seen |= 1u << (idx - 1);
		if (idx <= 16) {
			if (tag != TAG_INT || der_uint(&val, 255, &x) != 0)
				return PCK_FAIL(err, "tcb", "component SVN .2.%u: expected INTEGER 0..255", idx);
			out->comp_svn[idx - 1] = (uint8_t)x;
		} else if (idx == 17) {
			if (tag != TAG_INT || der_uint(&val, 65535, &x) != 0)
				return PCK_FAIL(err, "pcesvn", "expected INTEGER 0..65535");
			out->pcesvn = (uint16_t)x;
		} else {
			if (tag != TAG_OCTETS || octets_exact(&val, out->cpusvn, 16) != 0)
				return PCK_FAIL(err, "cpusvn", "expected OCTET STRING of 16 bytes");
		}
	}
	if (seen != 0x3ffffu)
		return PCK_FAIL(err, "tcb", "TCB sequence incomplete: expected 18 entries (mask 0x3ffff), "
			       "got mask 0x%x", seen);
	return 0;
}

int mse_pck_parse_ext(struct mse_pck_info *out, const uint8_t *der, size_t len, struct mse_err *err)
{
	struct mse_buf r, top;
	unsigned seen = 0;

	memset(out, 0, sizeof(*out));
	mse_buf_init(&r, der, len);
	if (der_expect(&r, TAG_SEQ, &top) != 0 || mse_buf_remaining(&r) != 0)
		return PCK_FAIL(err, MSE_PCK_SGX_EXT_OID, "expected one DER SEQUENCE");
	while (mse_buf_remaining(&top)) {
		struct mse_buf pair, oid, val;
		uint8_t tag, sub;
		unsigned long x;

		if (der_expect(&top, TAG_SEQ, &pair) != 0 || der_expect(&pair, TAG_OID, &oid) != 0 ||
		    der_tlv(&pair, &tag, &val) != 0 || mse_buf_remaining(&pair) != 0)
			return PCK_FAIL(err, MSE_PCK_SGX_EXT_OID, "malformed { OID, value } entry");
		if (!oid_under_sgx(&oid, 1))
			return PCK_FAIL(err, MSE_PCK_SGX_EXT_OID, "unexpected OID in the SGX extension");
		sub = mse_buf_cur(&oid)[sizeof(sgx_arc)];
		if (sub >= 1 && sub <= 7) {
			if (seen & (1u << sub))
				return PCK_FAIL(err, MSE_PCK_SGX_EXT_OID, "entry .%u appears twice", sub);
			seen |= 1u << sub;
		}
		switch (sub) {
		case 1:
			if (tag != TAG_OCTETS || octets_exact(&val, out->ppid, 16) != 0)
				return PCK_FAIL(err, "ppid", "expected OCTET STRING of 16 bytes");
			break;
		case 2:
			if (tag != TAG_SEQ || parse_tcb(out, &val, err) != 0)
				return tag != TAG_SEQ ? PCK_FAIL(err, "tcb", "expected SEQUENCE") : -1;
			break;
		case 3:
			if (tag != TAG_OCTETS || octets_exact(&val, out->pceid, 2) != 0)
				return PCK_FAIL(err, "pceid", "expected OCTET STRING of 2 bytes");
			break;
		case 4:
			if (tag != TAG_OCTETS || octets_exact(&val, out->fmspc, 6) != 0)
				return PCK_FAIL(err, "fmspc", "expected OCTET STRING of 6 bytes");
			break;
		case 5:
			if (tag != TAG_ENUM || der_uint(&val, 2, &x) != 0)
				return PCK_FAIL(err, "sgx_type", "expected ENUMERATED 0..2");
			out->sgx_type = (int)x;
			break;
		default:
			/* .6 platform instance ID, .7 configuration, future entries: not used. */
			break;
		}
	}
	if ((seen & 0x3e) != 0x3e)
		return PCK_FAIL(err, MSE_PCK_SGX_EXT_OID,
			       "missing entries: expected PPID, TCB, PCE-ID, FMSPC and SGX type "
			       "(mask 0x3e), got mask 0x%x", seen & 0x3e);
	return 0;
}

const char *mse_pck_ca_name(enum mse_pck_ca ca)
{
	switch (ca) {
	case MSE_PCK_CA_PLATFORM: return "platform";
	case MSE_PCK_CA_PROCESSOR: return "processor";
	default: return "unknown";
	}
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int mse_pck_from_x509(struct mse_pck_info *out, X509 *cert, struct mse_err *err)
{
	ASN1_OBJECT *oid = OBJ_txt2obj(MSE_PCK_SGX_EXT_OID, 1);
	const ASN1_OCTET_STRING *os;
	char cn[128] = "";
	int idx, ret;

	memset(out, 0, sizeof(*out));
	if (!oid)
		return PCK_FAIL(err, MSE_PCK_SGX_EXT_OID, "OpenSSL cannot build the OID");
	idx = X509_get_ext_by_OBJ(cert, oid, -1);
	if (idx >= 0 && X509_get_ext_by_OBJ(cert, oid, idx) >= 0)
		idx = -2;
	ASN1_OBJECT_free(oid);
	if (idx < 0)
		return PCK_FAIL(err, MSE_PCK_SGX_EXT_OID, idx == -2 ? "the SGX extension appears twice"
								: "the PCK certificate has no SGX extension");
	os = X509_EXTENSION_get_data(X509_get_ext(cert, idx));
	ret = mse_pck_parse_ext(out, ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os), err);
	if (ret != 0)
		return ret;
	X509_NAME_get_text_by_NID(X509_get_issuer_name(cert), NID_commonName, cn, sizeof(cn));
	ERR_clear_error();
	/*
	 * Intel's CNs are "Intel SGX PCK Platform CA" / "... Processor CA"; the
	 * simulation's end the same way. The name only selects which CRL to
	 * fetch: the chain itself is verified elsewhere.
	 */
	if (ends_with(cn, "SGX PCK Platform CA"))
		out->ca = MSE_PCK_CA_PLATFORM;
	else if (ends_with(cn, "SGX PCK Processor CA"))
		out->ca = MSE_PCK_CA_PROCESSOR;
	return 0;
}
