/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_verify — the whole DCAP ECDSA quote verification, as Intel's Quote
 * Verification Library does it, over buffers (no I/O), with a policy, a
 * result that records every step, and an optional cache.
 *
 * Steps, in the order they run (each failure sets err->step to the name in
 * brackets):
 *   [parse]           quote layout (mse_quote): SGX v3-v5, TDX v4/v5; QE vendor ID
 *   [pck-chain]       PCK leaf → PCK CA → root from the quote's certification
 *                     data (type 5); root pinned by SHA-256 (Intel, or the
 *                     simulation root when allowed); signatures, names,
 *                     validity windows at "now" (never waived)
 *   [pck]             PCK SGX extensions (FMSPC, PCE-ID, TCB components)
 *   [tcb-info]        TCB signing chain → the same root; ECDSA over the exact
 *                     tcbInfo bytes; signer "Intel SGX TCB Signing"; window;
 *                     FMSPC and PCE-ID match the PCK's
 *   [qe-identity]     same for enclaveIdentity
 *   [crl]             Root CA CRL (signed by the root) and PCK CRL (signed by
 *                     the PCK CA): signatures, windows, revocation of the PCK
 *                     CA, the PCK leaf and the TCB signing certificate
 *   [qe-report]       QE report signature by the PCK key
 *   [qe-binding]      qe_report.report_data = SHA-256(attest_key ‖ qe_auth) ‖ 0³²
 *   [qe-identity]     the QE report matches the identity (MRSIGNER, ISVPRODID,
 *                     masked MISCSELECT/ATTRIBUTES) → QE TCB status
 *   [tcb-level]       platform TCB level (PCK components, PCESVN) → status,
 *                     converged with the QE's; advisory IDs (union)
 *   [quote-signature] quote signature by the attestation key over header ‖
 *                     [v5 descriptor ‖] body
 *   [enclave]         debug enclaves refused
 *   [measurement]     expected MRENCLAVE / MRSIGNER / ISVPRODID / min ISVSVN
 *                     ("not checked" when the policy expects none of them)
 *   [tcb-status]      status in the accepted set (default: UpToDate only)
 * TDX quotes (tee_type 0x81) take the same steps with TDX collateral (TCB
 * info v3 id "TDX", QE identity "TD_QE"), and, in this order:
 *   … [qe-identity]   as above, then
 *   [quote-signature] (before the TCB evaluation, as QVL does)
 *   [tdx-module]      the TDX module identity: MRSIGNERSEAM, masked SEAM
 *                     attributes, the module's own TCB level
 *   [tcb-level]       SGX level, TDX level (TEE_TCB_SVN), module status
 *                     merged, TD relaunch (TD report 1.5), QE merged
 *   [tcb-status]      Intel's verdict accepted by the policy — before the
 *                     identity policy, so a refusal says which kind failed
 *   [td-attributes]   debug TD refused, SEPT_VE_DISABLE required, a service
 *                     TD binding (MRSERVICETD != 0) refused, unless allowed
 *   [measurement]     expected MRTD, RTMR0-3, MRCONFIGID, MROWNER, MRSEAM
 *                     (constant-time compares)
 *   [binding]         (RA-TLS) report_data[0:32] binds the certificate key;
 *                     self-signature; the certificate's validity window
 * Collateral outside its validity window and missing CRLs fail at their
 * step unless the policy accepts them; accepted, they are recorded in the
 * result flags (never silent).
 *
 * Ownership: policy and result are caller-owned plain structs (the policy's
 * pointers are borrowed for the call). The cache is opaque: create with
 * mse_verify_cache_new, free with mse_verify_cache_free (NULL-safe). A cache
 * is not thread-safe: use one per thread.
 */
#ifndef MSE_VERIFY_H
#define MSE_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "attest/collateral.h"
#include "attest/pck.h"
#include "attest/quote.h"
#include "attest/ratls.h"
#include "attest/tcb.h"
#include "common/buf.h"
#include "common/err.h"

/* SHA-256 of the DER of the Intel SGX Root CA (dcap-quotes README). */
#define MSE_INTEL_ROOT_SHA256 "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
/* Intel's QE vendor ID 939A7233-F79C-4CA9-940A-0DB3957F0607 (DCAP API). */
#define MSE_INTEL_QE_VENDOR_ID "939a7233f79c4ca9940a0db3957f0607"

#define MSE_TCB_MASK(s) (1u << (s))

struct mse_verify_policy {
	unsigned accept_status;       /* MSE_TCB_MASK bits; 0 means UpToDate only */
	const uint8_t *mrenclave;     /* 32 bytes, or NULL: not checked */
	const uint8_t *mrsigner;      /* 32 bytes, or NULL */
	int check_isvprodid;
	uint16_t isvprodid;
	int check_min_isvsvn;
	uint16_t min_isvsvn;
	time_t now;                   /* 0: the current time */
	int strict;                   /* trailing bytes after the quote are an error */
	int accept_expired_collateral;/* collateral outside its window: record, do not fail */
	int allow_missing_crl;        /* absent CRLs: record, do not fail */
	int allow_simulation;         /* accept a chain ending at sim_root */
	const uint8_t *sim_root_der;  /* the simulation root CA (DER), trusted only if allowed */
	size_t sim_root_len;
	/* TDX (each 48 bytes or NULL: not checked). Given for an SGX quote, or
	 * mrenclave & co for a TDX quote: refused at [measurement]. */
	const uint8_t *mrtd;
	const uint8_t *rtmr[4];
	const uint8_t *mrconfigid;
	const uint8_t *mrowner;
	const uint8_t *mrseam;
	int allow_debug_td;           /* TDATTRIBUTES.DEBUG accepted */
	int allow_service_td;         /* a non-zero MRSERVICETD accepted */
	int allow_sept_ve;            /* SEPT_VE_DISABLE clear accepted */
};

/* Result flags: what was accepted by policy rather than verified clean. */
#define MSE_VERIFY_F_SIMULATION 0x01u          /* chain ends at the simulation root */
#define MSE_VERIFY_F_COLLATERAL_EXPIRED 0x02u  /* some collateral past its end */
#define MSE_VERIFY_F_COLLATERAL_NOT_YET 0x04u  /* some collateral not yet valid */
#define MSE_VERIFY_F_CRL_MISSING 0x08u         /* a CRL was absent */
#define MSE_VERIFY_F_TRAILING 0x10u            /* trailing bytes after the quote */
#define MSE_VERIFY_F_CACHED 0x20u              /* platform checks came from the cache */

enum mse_verify_step {
	MSE_STEP_PARSE,
	MSE_STEP_PCK_CHAIN,
	MSE_STEP_PCK,
	MSE_STEP_CRL,
	MSE_STEP_TCB_INFO,
	MSE_STEP_QE_IDENTITY,
	MSE_STEP_QE_REPORT,
	MSE_STEP_QE_BINDING,
	MSE_STEP_QUOTE_SIGNATURE,
	MSE_STEP_TCB_LEVEL,
	MSE_STEP_ENCLAVE,
	MSE_STEP_MEASUREMENT,
	MSE_STEP_TCB_STATUS,
	MSE_STEP_BINDING, /* mse_verify_ratls only */
	MSE_STEP_TDX_MODULE,   /* TDX only */
	MSE_STEP_TD_ATTRIBUTES,/* TDX only */
	MSE_STEP_COUNT
};

/*
 * MSE_STEP_NOT_CHECKED: the step ran but the policy expected nothing
 * ([measurement] without MRENCLAVE, MRSIGNER, ISVPRODID or ISVSVN): any
 * genuine enclave passes it, so it must never be reported as "ok".
 */
enum mse_step_state {
	MSE_STEP_NOT_RUN = 0,
	MSE_STEP_OK,
	MSE_STEP_FAILED,
	MSE_STEP_WARN,
	MSE_STEP_NOT_CHECKED,
};

/* "not-run", "ok", "failed", "accepted", "not-checked". */
const char *mse_verify_step_state_name(enum mse_step_state s);

/*
 * 1 when the policy names the enclave: an MRENCLAVE, or a signer (MRSIGNER)
 * together with an ISVPRODID and a minimum ISVSVN (a signer alone admits
 * every enclave its key ever signed, any product, any version), or for a TD
 * its MRTD.
 */
int mse_verify_policy_names_enclave(const struct mse_verify_policy *pol);

/* "parse", "pck-chain", … (the err->step names). */
const char *mse_verify_step_name(enum mse_verify_step s);

struct mse_verify_result {
	int ok;                          /* 1 when every step passed the policy */
	enum mse_step_state steps[MSE_STEP_COUNT];
	enum mse_verify_step failed_step;/* valid when !ok and a step ran */
	unsigned flags;                  /* MSE_VERIFY_F_* */
	enum mse_tcb_status status;      /* converged status */
	enum mse_tcb_status platform_status, qe_status;
	char advisories[1024];           /* "INTEL-SA-…,…" union, "" if none */
	char notes[1024];                /* what was accepted by policy, human-readable */
	struct mse_sgx_report report;    /* the enclave's report (raw = NULL); zero for TDX */
	uint16_t quote_version;
	/* TDX (tdx = 1): the TD report and the parts of the TCB evaluation */
	int tdx;
	uint16_t body_type;              /* MSE_QUOTE_BODY_* */
	struct mse_td_report td;
	enum mse_tcb_status sgx_status;  /* the SGX TCB level's status */
	enum mse_tcb_status tdx_level_status; /* the TDX TCB level's status */
	enum mse_tcb_status module_status;    /* the TDX module's (UpToDate for major version 0) */
	char tdx_module_id[16];          /* "TDX_01", or "tdxModule" for major version 0 */
	int relaunch_checked;            /* TD report 1.5: the relaunch rule ran */
	struct mse_pck_info pck;
	size_t trailing;
	time_t now;
};

/* Cache modes. */
#define MSE_VERIFY_CACHE_PLATFORM 0x1u /* whole per-platform verification */
#define MSE_VERIFY_CACHE_OBJECTS 0x2u  /* parsed certificates, CRLs, TCB info and QE identity by SHA-256 of their bytes */

struct mse_verify_cache;
struct mse_verify_cache *mse_verify_cache_new(unsigned modes);
void mse_verify_cache_free(struct mse_verify_cache *c);

/*
 * Verifies a quote against collateral and policy. Returns 0 if accepted;
 * -1 otherwise, with err naming step, field, expected and actual. The
 * result is filled as far as verification went in both cases. cache may be
 * NULL.
 */
int mse_verify_quote(const uint8_t *quote, size_t len, const struct mse_collateral *coll,
		     const struct mse_verify_policy *pol, struct mse_verify_cache *cache,
		     struct mse_verify_result *res, struct mse_err *err) MSE_MUST_CHECK;

/*
 * Verifies an RA-TLS certificate: its quote (as above), then the binding of
 * report_data[0:32] to the certificate key (step "binding"), and the
 * certificate's own validity window (expired = collateral-expired family).
 */
int mse_verify_ratls(const struct mse_ratls *cert, const struct mse_collateral *coll,
		     const struct mse_verify_policy *pol, struct mse_verify_cache *cache,
		     struct mse_verify_result *res, struct mse_err *err) MSE_MUST_CHECK;

/* MRSIGNER of an RSA signer key: SHA-256 of its modulus, little-endian (SDM 38.13). */
int mse_verify_mrsigner_from_key(const uint8_t *pem, size_t len, uint8_t out[32],
				 struct mse_err *err) MSE_MUST_CHECK;

/* "UpToDate,OutOfDate" → MSE_TCB_MASK bits. -1 on an unknown name (err names it). */
int mse_verify_parse_status_list(const char *list, unsigned *mask, struct mse_err *err) MSE_MUST_CHECK;

/* ECDSA P-256 over SHA-256(msg): sig is r‖s, key is X‖Y. 1 valid, 0 not. */
int mse_verify_ecdsa_raw(const uint8_t key[64], const uint8_t *msg, size_t len, const uint8_t sig[64]);

#endif
