/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_pck — the SGX extensions of an Intel PCK certificate.
 *
 * Intel "SGX PCK Certificate and CRL Profile Specification", section 1.5:
 * extension 1.2.840.113741.1.13.1 is a SEQUENCE of { OID, value } pairs:
 *   .1 PPID (OCTET STRING 16)      .2 TCB: .2.1-.2.16 component SVNs
 *   .3 PCE-ID (OCTET STRING 2)        (INTEGER), .2.17 PCESVN (INTEGER),
 *   .4 FMSPC (OCTET STRING 6)         .2.18 CPUSVN (OCTET STRING 16)
 *   .5 SGX type (ENUMERATED)       .6 platform instance ID, .7 configuration
 *                                     (both optional, Platform CA only)
 * The DER is read with a small bounded TLV reader (mse_buf): every length is
 * checked, nothing is trusted.
 *
 * Ownership: struct mse_pck_info is caller-owned, plain data, nothing to free.
 */
#ifndef MSE_PCK_H
#define MSE_PCK_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_PCK_SGX_EXT_OID "1.2.840.113741.1.13.1"
#define MSE_PCK_COMPONENTS 16

enum mse_pck_ca { MSE_PCK_CA_UNKNOWN = 0, MSE_PCK_CA_PLATFORM, MSE_PCK_CA_PROCESSOR };

struct mse_pck_info {
	uint8_t ppid[16];
	uint8_t comp_svn[MSE_PCK_COMPONENTS]; /* TCB components .2.1 … .2.16 */
	uint16_t pcesvn;
	uint8_t cpusvn[16];
	uint8_t pceid[2];
	uint8_t fmspc[6];
	int sgx_type;          /* 0 standard, 1 scalable, 2 scalable with integrity */
	enum mse_pck_ca ca;    /* from the issuer's CN (mse_pck_from_x509 only) */
};

/*
 * Parses the DER value of the SGX extension (the OCTET STRING's content).
 * PPID, TCB (all 18 entries), PCE-ID, FMSPC and SGX type are required.
 * Step "pck" on error, naming the OID at fault.
 */
int mse_pck_parse_ext(struct mse_pck_info *out, const uint8_t *der, size_t len,
		      struct mse_err *err) MSE_MUST_CHECK;

/* Finds the extension in a PCK certificate, parses it, and sets ca from the issuer CN. */
int mse_pck_from_x509(struct mse_pck_info *out, X509 *cert, struct mse_err *err) MSE_MUST_CHECK;

const char *mse_pck_ca_name(enum mse_pck_ca ca); /* "platform", "processor", "unknown" */

#endif
