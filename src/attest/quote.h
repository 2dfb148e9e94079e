/*
 * mse_quote — Intel DCAP ECDSA quotes (SGX v3, v4 SGX layout), parsed
 * through the bounded reader. TDX quotes (v4 with tee_type 0x81, v5) are
 * recognised and refused with "TDX is not supported yet", never misparsed.
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
/* Quote signature covers header ‖ report body (DCAP API, "Quote Signature"). */
#define MSE_QUOTE_SIGNED_SIZE (MSE_QUOTE_HEADER_SIZE + MSE_SGX_REPORT_BODY_SIZE)
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
	uint16_t qe_svn;   /* v3 header fields (reserved in v4) */
	uint16_t pce_svn;
	uint8_t qe_vendor_id[16];
	uint8_t user_data[20];
	/* enclave report */
	struct mse_sgx_report body;
	const uint8_t *signed_data; /* header ‖ [v5 body type, size] ‖ body (borrowed) */
	size_t signed_len;          /* 432 for v3/v4, 438 for v5 */
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
 * Parses an SGX quote. Fails (step "parse") on any inconsistent length, an
 * unknown version, a non-ECDSA-P256 attestation key, and on TDX ("TDX is
 * not supported yet"). Trailing bytes are counted in q->trailing, and
 * rejected only with MSE_QUOTE_STRICT.
 */
int mse_quote_parse(struct mse_quote *q, const uint8_t *data, size_t len, unsigned flags,
		    struct mse_err *err) MSE_MUST_CHECK;

/* Decodes a 384-byte SGX report body (never fails on length-checked input). */
void mse_quote_report_decode(struct mse_sgx_report *r, const uint8_t raw[MSE_SGX_REPORT_BODY_SIZE]);

/* 1 if the report's DEBUG attribute is set. */
int mse_quote_is_debug(const struct mse_sgx_report *r);

#endif
