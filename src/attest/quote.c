/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DCAP quote parser. Reads the wire format field by field through mse_buf,
 * so the code follows the layout tables of Intel's "SGX ECDSA Quote Library
 * API" (appendix A, quote v3) and the v4/v5 additions:
 *
 *   header(48) ‖ [v5: body_type u16 ‖ body_size u32] ‖ body ‖
 *   sig_data_len u32 ‖ signature data
 *
 * v3 signature data: sig(64) ‖ attest_key(64) ‖ qe_report(384) ‖
 *   qe_report_sig(64) ‖ qe_auth_len u16 ‖ qe_auth ‖ cert_type u16 ‖
 *   cert_len u32 ‖ cert_data
 * where body is the SGX report body (384), the TD report 1.0 (584) or, in
 * v5 only, the TD report 1.5 (648). The quote signature covers everything
 * before sig_data_len (header, descriptor and body).
 * v4/v5 signature data: sig(64) ‖ attest_key(64) ‖ cert_type=6 u16 ‖ len u32 ‖
 *   { qe_report(384) ‖ qe_report_sig(64) ‖ qe_auth_len u16 ‖ qe_auth ‖
 *     cert_type u16 ‖ cert_len u32 ‖ cert_data }
 */
#include "attest/quote.h"

#include <string.h>

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

void mse_quote_report_decode(struct mse_sgx_report *r, const uint8_t raw[MSE_SGX_REPORT_BODY_SIZE])
{
	memcpy(r->cpu_svn, raw + MSE_RB_CPUSVN, 16);
	r->misc_select = le32(raw + MSE_RB_MISCSELECT);
	memcpy(r->isv_ext_prod_id, raw + MSE_RB_ISVEXTPRODID, 16);
	memcpy(r->attributes, raw + MSE_RB_ATTRIBUTES, 16);
	memcpy(r->mr_enclave, raw + MSE_RB_MRENCLAVE, 32);
	memcpy(r->mr_signer, raw + MSE_RB_MRSIGNER, 32);
	memcpy(r->config_id, raw + MSE_RB_CONFIGID, 64);
	r->isv_prod_id = le16(raw + MSE_RB_ISVPRODID);
	r->isv_svn = le16(raw + MSE_RB_ISVSVN);
	r->config_svn = le16(raw + MSE_RB_CONFIGSVN);
	memcpy(r->isv_family_id, raw + MSE_RB_ISVFAMILYID, 16);
	memcpy(r->report_data, raw + MSE_RB_REPORTDATA, 64);
	r->raw = raw;
}

void mse_quote_td_decode(struct mse_td_report *t, const uint8_t *raw, size_t len)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->tee_tcb_svn, raw + MSE_TD_TEE_TCB_SVN, 16);
	memcpy(t->mr_seam, raw + MSE_TD_MRSEAM, 48);
	memcpy(t->mr_signer_seam, raw + MSE_TD_MRSIGNERSEAM, 48);
	memcpy(t->seam_attributes, raw + MSE_TD_SEAM_ATTRIBUTES, 8);
	memcpy(t->td_attributes, raw + MSE_TD_TD_ATTRIBUTES, 8);
	memcpy(t->xfam, raw + MSE_TD_XFAM, 8);
	memcpy(t->mr_td, raw + MSE_TD_MRTD, 48);
	memcpy(t->mr_config_id, raw + MSE_TD_MRCONFIGID, 48);
	memcpy(t->mr_owner, raw + MSE_TD_MROWNER, 48);
	memcpy(t->mr_owner_config, raw + MSE_TD_MROWNERCONFIG, 48);
	for (int i = 0; i < 4; i++)
		memcpy(t->rtmr[i], raw + MSE_TD_RTMR0 + i * MSE_TD_MR_SIZE, 48);
	memcpy(t->report_data, raw + MSE_TD_REPORTDATA, 64);
	if (len >= MSE_TDX15_REPORT_BODY_SIZE) {
		t->v15 = 1;
		memcpy(t->tee_tcb_svn2, raw + MSE_TD_TEE_TCB_SVN2, 16);
		memcpy(t->mr_service_td, raw + MSE_TD_MRSERVICETD, 48);
	}
}

uint64_t mse_quote_td_attributes(const struct mse_td_report *t)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | t->td_attributes[i];
	return v;
}

int mse_quote_is_tdx(const struct mse_quote *q)
{
	return q->tee_type == MSE_QUOTE_TEE_TDX;
}

int mse_quote_is_debug(const struct mse_sgx_report *r)
{
	return (r->attributes[0] & MSE_SGX_FLAG_DEBUG) != 0;
}

/* Every parse failure names the field and the sizes involved. */
#define FAIL(err, field, ...) (mse_err_step((err), "parse"), mse_err_field((err), (field), __VA_ARGS__))

/* QE report ‖ sig ‖ auth data ‖ certification data: common to v3 and v4. */
static int parse_qe_part(struct mse_quote *q, struct mse_buf *r, struct mse_err *err)
{
	const uint8_t *raw;
	uint16_t auth_len;
	uint32_t cert_len;

	if (mse_buf_bytes(r, MSE_SGX_REPORT_BODY_SIZE, &raw) != 0 ||
	    mse_buf_copy(r, q->qe_report_sig, MSE_QUOTE_SIG_SIZE) != 0)
		return FAIL(err, "qe_report", "truncated: need %zu bytes, %zu left",
			    (size_t)MSE_SGX_REPORT_BODY_SIZE + MSE_QUOTE_SIG_SIZE, mse_buf_remaining(r));
	mse_quote_report_decode(&q->qe_report, raw);
	if (mse_buf_u16le(r, &auth_len) != 0 || mse_buf_bytes(r, auth_len, &q->qe_auth) != 0)
		return FAIL(err, "qe_auth_data", "length %zu exceeds the %zu bytes left", (size_t)auth_len,
			    mse_buf_remaining(r));
	q->qe_auth_len = auth_len;
	if (mse_buf_u16le(r, &q->cert_type) != 0 || mse_buf_u32le(r, &cert_len) != 0)
		return FAIL(err, "certification_data", "truncated header: %zu of %zu bytes",
			    mse_buf_remaining(r), (size_t)6);
	if (mse_buf_bytes(r, cert_len, &q->cert_data) != 0)
		return FAIL(err, "certification_data", "length %zu exceeds the %zu bytes left", (size_t)cert_len,
			    mse_buf_remaining(r));
	q->cert_len = cert_len;
	return 0;
}

int mse_quote_parse(struct mse_quote *q, const uint8_t *data, size_t len, unsigned flags,
		    struct mse_err *err)
{
	struct mse_buf r, sig;
	const uint8_t *hdr, *body;
	uint32_t sig_len;
	size_t bsize;

	memset(q, 0, sizeof(*q));
	if (len > MSE_QUOTE_MAX_SIZE)
		return FAIL(err, "quote", "too large: %zu bytes (limit %zu)", len, (size_t)MSE_QUOTE_MAX_SIZE);
	mse_buf_init(&r, data, len);
	if (mse_buf_bytes(&r, MSE_QUOTE_HEADER_SIZE, &hdr) != 0)
		return FAIL(err, "header", "truncated: %zu bytes, expected at least %zu", len,
			    (size_t)MSE_QUOTE_HEADER_SIZE);
	q->version = le16(hdr);
	q->att_key_type = le16(hdr + 2);
	q->tee_type = le32(hdr + 4);
	q->qe_svn = le16(hdr + 8);
	q->pce_svn = le16(hdr + 10);
	memcpy(q->qe_vendor_id, hdr + 12, 16);
	memcpy(q->user_data, hdr + 28, 20);
	if (q->version == 3) {
		q->tee_type = MSE_QUOTE_TEE_SGX; /* v3 has no tee_type: that word is reserved */
	} else if (q->version != 4 && q->version != 5) {
		mse_err_step(err, "parse");
		return mse_err_field(err, "header.version", "expected 3, 4 or 5, got %u", q->version);
	}
	if (q->tee_type != MSE_QUOTE_TEE_SGX && q->tee_type != MSE_QUOTE_TEE_TDX) {
		mse_err_step(err, "parse");
		return mse_err_field(err, "header.tee_type", "expected 0x00 (SGX) or 0x81 (TDX), got 0x%x",
				     (unsigned)q->tee_type);
	}
	if (q->att_key_type != MSE_QUOTE_ATT_KEY_ECDSA_P256) {
		mse_err_step(err, "parse");
		return mse_err_field(err, "header.att_key_type", "expected 2 (ECDSA-256-with-P-256), got %u",
				     q->att_key_type);
	}
	if (q->tee_type == MSE_QUOTE_TEE_TDX && q->version == 3) {
		mse_err_step(err, "parse");
		return mse_err_field(err, "header.version", "TDX quotes are v4 or v5, got 3");
	}
	q->body_type = q->tee_type == MSE_QUOTE_TEE_TDX ? MSE_QUOTE_BODY_TD10 : MSE_QUOTE_BODY_SGX;
	bsize = q->tee_type == MSE_QUOTE_TEE_TDX ? MSE_TDX10_REPORT_BODY_SIZE : MSE_SGX_REPORT_BODY_SIZE;
	if (q->version == 5) {
		/* v5: body descriptor, type 1 = SGX report, 2 = TD report 1.0, 3 = TD report 1.5. */
		uint16_t btype;
		uint32_t dsize;
		size_t want;

		if (mse_buf_u16le(&r, &btype) != 0 || mse_buf_u32le(&r, &dsize) != 0)
			return FAIL(err, "body_descriptor", "truncated: %zu bytes left, need %zu",
				    mse_buf_remaining(&r), (size_t)MSE_QUOTE_BODY_DESC_SIZE);
		if (btype < MSE_QUOTE_BODY_SGX || btype > MSE_QUOTE_BODY_TD15) {
			mse_err_step(err, "parse");
			return mse_err_field(err, "body_type", "expected 1 (SGX), 2 (TD 1.0) or 3 (TD 1.5), got %u",
					     btype);
		}
		if ((btype == MSE_QUOTE_BODY_SGX) != (q->tee_type == MSE_QUOTE_TEE_SGX)) {
			mse_err_step(err, "parse");
			return mse_err_field(err, "body_type", "body type %u does not match tee_type 0x%x", btype,
					     (unsigned)q->tee_type);
		}
		want = btype == MSE_QUOTE_BODY_SGX    ? MSE_SGX_REPORT_BODY_SIZE
		       : btype == MSE_QUOTE_BODY_TD10 ? MSE_TDX10_REPORT_BODY_SIZE
						      : MSE_TDX15_REPORT_BODY_SIZE;
		if (dsize != want)
			return FAIL(err, "body_size", "expected %zu for body type %u, got %zu", want, btype,
				    (size_t)dsize);
		q->body_type = btype;
		bsize = want;
	}
	if (mse_buf_bytes(&r, bsize, &body) != 0)
		return FAIL(err, "report_body", "truncated: need %zu bytes, %zu left", bsize, mse_buf_remaining(&r));
	if (q->tee_type == MSE_QUOTE_TEE_TDX)
		mse_quote_td_decode(&q->td, body, bsize);
	else
		mse_quote_report_decode(&q->body, body);
	q->signed_data = data;
	q->signed_len = r.off;

	if (mse_buf_u32le(&r, &sig_len) != 0)
		return FAIL(err, "signature_data_len", "truncated: %zu bytes left, need %zu",
			    mse_buf_remaining(&r), (size_t)4);
	q->sig_data_len = sig_len;
	if (mse_buf_sub(&r, sig_len, &sig) != 0)
		return FAIL(err, "signature_data_len", "length %zu exceeds the %zu bytes left", (size_t)sig_len,
			    mse_buf_remaining(&r));
	if (mse_buf_copy(&sig, q->sig, MSE_QUOTE_SIG_SIZE) != 0 ||
	    mse_buf_copy(&sig, q->attest_key, MSE_QUOTE_KEY_SIZE) != 0)
		return FAIL(err, "signature_data", "truncated: %zu bytes, need at least %zu", (size_t)sig_len,
			    (size_t)2 * MSE_QUOTE_SIG_SIZE);
	if (q->version == 3) {
		if (parse_qe_part(q, &sig, err) != 0)
			return -1;
	} else {
		uint16_t outer_type;
		uint32_t outer_len;
		struct mse_buf inner;

		if (mse_buf_u16le(&sig, &outer_type) != 0 || mse_buf_u32le(&sig, &outer_len) != 0)
			return FAIL(err, "certification_data", "truncated header: %zu of %zu bytes",
				    mse_buf_remaining(&sig), (size_t)6);
		if (outer_type != MSE_QUOTE_CERT_QE_REPORT) {
			mse_err_step(err, "parse");
			return mse_err_field(err, "certification_data.type",
					     "expected 6 (QE report certification data), got %u",
					     outer_type);
		}
		if (mse_buf_sub(&sig, outer_len, &inner) != 0)
			return FAIL(err, "certification_data", "length %zu exceeds the %zu bytes left",
				    (size_t)outer_len, mse_buf_remaining(&sig));
		if (parse_qe_part(q, &inner, err) != 0)
			return -1;
		if (mse_buf_remaining(&inner) != 0)
			return FAIL(err, "certification_data", "%zu unexpected bytes after the QE data (%zu)",
				    mse_buf_remaining(&inner), (size_t)outer_len);
	}
	/* The declared signature data length must match what it contains. */
	if (mse_buf_remaining(&sig) != 0)
		return FAIL(err, "signature_data_len", "%zu bytes inside the signature data (length %zu) "
			    "are not accounted for", mse_buf_remaining(&sig), (size_t)sig_len);
	q->len = r.off;
	q->trailing = mse_buf_remaining(&r);
	if (q->trailing && (flags & MSE_QUOTE_STRICT)) {
		mse_err_step(err, "parse");
		return mse_err_field(err, "quote", "%zu trailing bytes after the signature data "
				     "(rejected in strict mode; the quote proper is %zu bytes)",
				     q->trailing, q->len);
	}
	return 0;
}
