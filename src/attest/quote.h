/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_quote — Intel DCAP ECDSA quotes, parsed through the bounded reader:
 * SGX v3/v4/v5 (ISV enclave report body) and TDX v4 (tee_type 0x81, TD
 * report 1.0) and v5 (body descriptor type 2 = TD report 1.0, type 3 = TD
 * report 1.5).
 *
 * Layouts: Intel SGX ECDSA Quote Library API (DCAP), appendix A "ECDSA quote
 * format" (v3), and the DCAP 1.15+ quote v4/v5 layout (header, body,
 * signature data with certification data type 6 wrapping the QE report).
 *
 * Ownership: mse_quote_parse fills a caller-owned struct mse_quote whose
 * pointers BORROW the caller's quote buffer (no allocation, nothing to
 * free); keep that buffer alive while the struct is used.
 */
#ifndef MSE_QUOTE_H
#define MSE_QUOTE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_QUOTE_HEADER_SIZE 48
#define MSE_SGX_REPORT_BODY_SIZE 384
#define MSE_TDX10_REPORT_BODY_SIZE 584
#define MSE_TDX15_REPORT_BODY_SIZE 648
#define MSE_QUOTE_SIG_SIZE 64 /* ECDSA P-256 r‖s, big-endian */
#define MSE_QUOTE_KEY_SIZE 64 /* P-256 point X‖Y, big-endian */
#define MSE_QUOTE_BODY_DESC_SIZE 6 /* v5: body_type u16 ‖ body_size u32 */
/* Quote signature covers header ‖ report body (DCAP API, "Quote Signature"). */
#define MSE_QUOTE_SIGNED_SIZE (MSE_QUOTE_HEADER_SIZE + MSE_SGX_REPORT_BODY_SIZE)
/* v5 body types (DCAP quote format v5, "Quote Body Descriptor"). */
#define MSE_QUOTE_BODY_SGX 1
#define MSE_QUOTE_BODY_TD10 2
#define MSE_QUOTE_BODY_TD15 3
/* Largest quote accepted (a PCK chain is ~4 KiB; leave room). */
#define MSE_QUOTE_MAX_SIZE (256 * 1024)

#define MSE_QUOTE_TEE_SGX 0x00000000u
#define MSE_QUOTE_TEE_TDX 0x00000081u
#define MSE_QUOTE_ATT_KEY_ECDSA_P256 2
#define MSE_QUOTE_CERT_PCK_CHAIN 5  /* PCK leaf ‖ intermediate ‖ root, PEM */
#define MSE_QUOTE_CERT_QE_REPORT 6  /* v4: QE report certification data */
#define MSE_QUOTE_CERT_PPID_ENC3 3  /* encrypted PPID (RSA-3072), no chain */

/* SGX REPORTBODY offsets (Intel SDM vol. 3D, 38.15 "REPORT"). */
enum {
	MSE_RB_CPUSVN = 0,
	MSE_RB_MISCSELECT = 16,
	MSE_RB_ISVEXTPRODID = 32,
	MSE_RB_ATTRIBUTES = 48,
	MSE_RB_MRENCLAVE = 64,
	MSE_RB_MRSIGNER = 128,
	MSE_RB_CONFIGID = 192,
	MSE_RB_ISVPRODID = 256,
	MSE_RB_ISVSVN = 258,
	MSE_RB_CONFIGSVN = 260,
	MSE_RB_ISVFAMILYID = 304,
	MSE_RB_REPORTDATA = 320,
};
_Static_assert(MSE_RB_REPORTDATA + 64 == MSE_SGX_REPORT_BODY_SIZE, "SGX report body is 384 bytes");
_Static_assert(MSE_QUOTE_SIGNED_SIZE == 432, "quote signed region is 432 bytes");

/*
 * TD report body offsets (Intel TDX DCAP Quote Generation Library and
 * Quote Verification Library, "TD Quote Body" v4 = TD report 1.0; TD report
 * 1.5 appends TEE_TCB_SVN2 and MRSERVICETD for quote v5 body type 3).
 */
enum {
	MSE_TD_TEE_TCB_SVN = 0,
	MSE_TD_MRSEAM = 16,
	MSE_TD_MRSIGNERSEAM = 64,
	MSE_TD_SEAM_ATTRIBUTES = 112,
	MSE_TD_TD_ATTRIBUTES = 120,
	MSE_TD_XFAM = 128,
	MSE_TD_MRTD = 136,
	MSE_TD_MRCONFIGID = 184,
	MSE_TD_MROWNER = 232,
	MSE_TD_MROWNERCONFIG = 280,
	MSE_TD_RTMR0 = 328,
	MSE_TD_REPORTDATA = 520,
	MSE_TD_TEE_TCB_SVN2 = 584,
	MSE_TD_MRSERVICETD = 600,
};
#define MSE_TD_MR_SIZE 48 /* SHA-384 measurements */
_Static_assert(MSE_TD_RTMR0 + 4 * MSE_TD_MR_SIZE == MSE_TD_REPORTDATA, "RTMR0..3 precede REPORTDATA");
_Static_assert(MSE_TD_REPORTDATA + 64 == MSE_TDX10_REPORT_BODY_SIZE, "TD report 1.0 is 584 bytes");
_Static_assert(MSE_TD_MRSERVICETD + MSE_TD_MR_SIZE == MSE_TDX15_REPORT_BODY_SIZE, "TD report 1.5 is 648 bytes");
_Static_assert(MSE_TD_TEE_TCB_SVN2 == MSE_TDX10_REPORT_BODY_SIZE, "TD report 1.5 extends 1.0");

/* TDATTRIBUTES bits (TDX module ABI, "TD Parameters: ATTRIBUTES"), as a LE u64. */
#define MSE_TD_ATTR_DEBUG (1ull << 0)
#define MSE_TD_ATTR_SEPT_VE_DISABLE (1ull << 28)
#define MSE_TD_ATTR_MIGRATABLE (1ull << 29)
#define MSE_TD_ATTR_PKS (1ull << 30)
#define MSE_TD_ATTR_KL (1ull << 31)
#define MSE_TD_ATTR_PERFMON (1ull << 63)

struct mse_td_report {
	int v15; /* 1 for TD report 1.5 (tee_tcb_svn2 and mr_service_td are valid) */
	uint8_t tee_tcb_svn[16];
	uint8_t mr_seam[48];
	uint8_t mr_signer_seam[48];
	uint8_t seam_attributes[8];
	uint8_t td_attributes[8];
	uint8_t xfam[8];
	uint8_t mr_td[48];
	uint8_t mr_config_id[48];
	uint8_t mr_owner[48];
	uint8_t mr_owner_config[48];
	uint8_t rtmr[4][48];
	uint8_t report_data[64];
	uint8_t tee_tcb_svn2[16];
	uint8_t mr_service_td[48];
};

/* Decodes a TD report body of len 584 (1.0) or 648 (1.5) bytes. */
void mse_quote_td_decode(struct mse_td_report *t, const uint8_t *raw, size_t len);
/* TDATTRIBUTES as a little-endian u64. */
uint64_t mse_quote_td_attributes(const struct mse_td_report *t);

/* SGX ATTRIBUTES.FLAGS bit 1: DEBUG (SDM 38.7.1). */
#define MSE_SGX_FLAG_DEBUG 0x02u

struct mse_sgx_report {
	uint8_t cpu_svn[16];
	uint32_t misc_select;
	uint8_t isv_ext_prod_id[16];
	uint8_t attributes[16]; /* FLAGS (8, LE) ‖ XFRM (8, LE) */
	uint8_t mr_enclave[32];
	uint8_t mr_signer[32];
	uint8_t config_id[64];
	uint16_t isv_prod_id;
	uint16_t isv_svn;
	uint16_t config_svn;
	uint8_t isv_family_id[16];
	uint8_t report_data[64];
	const uint8_t *raw; /* the 384 bytes as received (borrowed) */
};

struct mse_quote {
	/* header */
	uint16_t version;
	uint16_t att_key_type;
	uint32_t tee_type; /* v4+; 0 (SGX) for v3 */
	uint16_t body_type; /* MSE_QUOTE_BODY_*: given by v5, implied by tee_type before */
	uint16_t qe_svn;   /* v3 header fields (reserved in v4) */
	uint16_t pce_svn;
	uint8_t qe_vendor_id[16];
	uint8_t user_data[20];
	/* enclave report (SGX) or TD report (TDX: body_type 2 or 3) */
	struct mse_sgx_report body;
	struct mse_td_report td;
	const uint8_t *signed_data; /* header ‖ [v5 body type, size] ‖ body (borrowed) */
	size_t signed_len;          /* 432 SGX v3/v4, 438 SGX v5, 632 TDX v4, 638/702 TDX v5 */
	/* signature data */
	uint32_t sig_data_len;
	uint8_t sig[MSE_QUOTE_SIG_SIZE];
	uint8_t attest_key[MSE_QUOTE_KEY_SIZE];
	struct mse_sgx_report qe_report;
	uint8_t qe_report_sig[MSE_QUOTE_SIG_SIZE];
	const uint8_t *qe_auth; /* QE authentication data (borrowed) */
	size_t qe_auth_len;
	uint16_t cert_type;        /* innermost certification data type (5 expected) */
	const uint8_t *cert_data;  /* borrowed */
	size_t cert_len;
	/* framing */
	size_t len;      /* bytes consumed by the quote proper */
	size_t trailing; /* bytes after the signature data (tolerated unless strict) */
};

/* Parse flags. */
#define MSE_QUOTE_STRICT 1u /* reject trailing bytes after the signature data */

/*
 * Parses an SGX or TDX quote. Fails (step "parse") on any inconsistent
 * length, an unknown version, tee_type or body type, a body type that does
 * not match the tee_type, and a non-ECDSA-P256 attestation key. Trailing
 * bytes are counted in q->trailing, and rejected only with MSE_QUOTE_STRICT.
 */
int mse_quote_parse(struct mse_quote *q, const uint8_t *data, size_t len, unsigned flags,
		    struct mse_err *err) MSE_MUST_CHECK;

/* Decodes a 384-byte SGX report body (never fails on length-checked input). */
void mse_quote_report_decode(struct mse_sgx_report *r, const uint8_t raw[MSE_SGX_REPORT_BODY_SIZE]);

/* 1 for a TDX quote (tee_type 0x81). */
int mse_quote_is_tdx(const struct mse_quote *q);

/* 1 if the report's DEBUG attribute is set. */
int mse_quote_is_debug(const struct mse_sgx_report *r);

#endif
