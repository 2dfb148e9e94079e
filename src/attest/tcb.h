/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_tcb — TCB info and QE identity (Intel PCS API v4 bodies): parsing
 * their signed JSON objects, selecting the platform's TCB level and the QE's
 * TCB level, and converging both into one status.
 *
 * Spec: Intel "PCS API v4" (TCB Info v2/v3 and Enclave Identity v2
 * schemas) and the DCAP Quote Verification Library's evaluation rules
 * (TCB level = first level, in the order given, whose 16 SGX components and
 * PCESVN are all <= the PCK certificate's; QE level = first level whose
 * isvsvn <= the QE's ISVSVN; convergence: a QE OutOfDate degrades the
 * platform status, a QE Revoked revokes it).
 *
 * Ownership: mse_tcb_info_parse / mse_qe_identity_parse fill caller-owned
 * structs with heap arrays; release with mse_tcb_info_free /
 * mse_qe_identity_free (NULL-safe, idempotent).
 */
#ifndef MSE_TCB_H
#define MSE_TCB_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "attest/pck.h"
#include "attest/quote.h"
#include "common/buf.h"
#include "common/err.h"

enum mse_tcb_status {
	MSE_TCB_UNKNOWN = 0,
	MSE_TCB_UP_TO_DATE,
	MSE_TCB_SW_HARDENING_NEEDED,
	MSE_TCB_CONFIGURATION_NEEDED,
	MSE_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
	MSE_TCB_OUT_OF_DATE,
	MSE_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
	MSE_TCB_REVOKED,
	/* TDX with TD report 1.5 only: computed by the verifier, never in collateral. */
	MSE_TCB_TD_RELAUNCH_ADVISED,
	MSE_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED,
	MSE_TCB_STATUS_COUNT
};

/* "UpToDate", … as Intel spells them; "Unknown" for MSE_TCB_UNKNOWN. */
const char *mse_tcb_status_name(enum mse_tcb_status s);
/* Exact (case-sensitive) Intel spelling → status; -1 if unknown. */
int mse_tcb_status_parse(const char *name, enum mse_tcb_status *out) MSE_MUST_CHECK;

/* "YYYY-MM-DDTHH:MM:SSZ" (optionally with .fraction) → time_t (UTC). -1 on bad input. */
int mse_tcb_parse_time(const char *s, time_t *out) MSE_MUST_CHECK;
/* time_t → "YYYY-MM-DDTHH:MM:SSZ" (21 bytes with NUL). */
void mse_tcb_format_time(time_t t, char out[32]);

struct mse_tcb_level {
	uint8_t comp[16];
	uint8_t tdx_comp[16]; /* TDX TCB info: tdxtcbcomponents[].svn */
	uint16_t pcesvn;
	enum mse_tcb_status status;
	time_t tcb_date;
	char *advisories; /* "INTEL-SA-00586,INTEL-SA-00614" or "" (owned) */
};

/* A TDX module identity (TCB info v3 "tdxModuleIdentities"), or the base "tdxModule". */
struct mse_tdx_module_level {
	uint8_t isvsvn;
	enum mse_tcb_status status;
	time_t tcb_date;
	char *advisories; /* owned */
};

struct mse_tdx_module {
	char id[16];                 /* "TDX_01", as written; "" for the base tdxModule */
	uint8_t mrsigner[48];
	uint8_t attributes[8], attributes_mask[8];
	size_t nlevels;
	struct mse_tdx_module_level *levels; /* owned; none for the base tdxModule */
};

struct mse_tcb_info {
	int version;  /* 2 or 3 */
	char id[8];   /* "SGX" or "TDX" (v3), "" for v2 */
	int tdx;      /* id "TDX": levels carry tdx_comp, the module fields below are set */
	struct mse_tdx_module module;      /* tdxModule */
	size_t nmodules;
	struct mse_tdx_module *modules;    /* tdxModuleIdentities (owned, may be 0) */
	time_t issue_date, next_update;
	uint8_t fmspc[6];
	uint8_t pceid[2];
	int tcb_type;
	int eval_num;
	size_t nlevels;
	struct mse_tcb_level *levels; /* owned */
};

struct mse_qe_level {
	uint16_t isvsvn;
	enum mse_tcb_status status;
	char *advisories; /* owned */
};

struct mse_qe_identity {
	int version;
	char id[8]; /* "QE" (SGX) or "TD_QE" (TDX) */
	time_t issue_date, next_update;
	int eval_num;
	uint32_t miscselect, miscselect_mask;
	uint8_t attributes[16], attributes_mask[16];
	uint8_t mrsigner[32];
	uint16_t isvprodid;
	size_t nlevels;
	struct mse_qe_level *levels; /* owned */
};

/* Parses the text of the tcbInfo object (the signed span). Step "tcb-info". */
int mse_tcb_info_parse(struct mse_tcb_info *out, const char *json, size_t len,
		       struct mse_err *err) MSE_MUST_CHECK;
void mse_tcb_info_free(struct mse_tcb_info *t);

/* Parses the text of the enclaveIdentity object. Step "qe-identity". */
int mse_qe_identity_parse(struct mse_qe_identity *out, const char *json, size_t len,
			  struct mse_err *err) MSE_MUST_CHECK;
void mse_qe_identity_free(struct mse_qe_identity *q);

/*
 * Selects the platform's TCB level from the PCK certificate's components
 * and PCESVN. Step "tcb-level"; fails with "TCB level not supported" when no
 * level is low enough (the platform is older than every level Intel lists).
 */
int mse_tcb_select(const struct mse_tcb_info *t, const struct mse_pck_info *pck, size_t *level,
		   struct mse_err *err) MSE_MUST_CHECK;

/*
 * Matches the QE report against the identity (MRSIGNER, ISVPRODID, masked
 * MISCSELECT and ATTRIBUTES; step "qe-identity", expected vs actual) and
 * gives the QE's TCB status (Revoked if its ISVSVN is below every level).
 * *level is set to the matching level or to nlevels if none.
 */
int mse_qe_identity_match(const struct mse_qe_identity *q, const struct mse_sgx_report *qe,
			  enum mse_tcb_status *status, size_t *level, struct mse_err *err) MSE_MUST_CHECK;

/* Converges the platform status with the QE's (QVL's rules, see above). */
enum mse_tcb_status mse_tcb_converge(enum mse_tcb_status platform, enum mse_tcb_status qe);

/*
 * TDX TCB level selection (QVL TcbLevelCheck "matchTcbLevels"): the SGX
 * level is the first whose SGX components and PCESVN are <= the PCK's; the
 * TDX level the first that also has every TDX component <= tee_tcb_svn,
 * where bytes 0 and 1 (module SVN and major version) are skipped when the
 * module's major version tee_tcb_svn[1] is non-zero (those are judged by
 * the module identity instead). Step "tcb-level", "TCB level not supported".
 */
int mse_tcb_select_tdx(const struct mse_tcb_info *t, const struct mse_pck_info *pck, const uint8_t tee_tcb_svn[16],
		       size_t *sgx_level, size_t *tdx_level, struct mse_err *err) MSE_MUST_CHECK;

/*
 * The TDX module: for major version tee_tcb_svn[1] = 0 the base tdxModule,
 * else the tdxModuleIdentities entry "TDX_%02X" (case-insensitive); its
 * MRSIGNER must equal MRSIGNERSEAM and SEAMATTRIBUTES & attributesMask its
 * attributes (step "tdx-module", expected vs actual). *status is the
 * module's TCB status: UpToDate for major version 0, else that of the first
 * identity level whose isvsvn <= tee_tcb_svn[0] ("TCB level not supported"
 * if none). *mod is the identity used (NULL for the base module), *level
 * the index of its level.
 */
int mse_tdx_module_check(const struct mse_tcb_info *t, const struct mse_td_report *td, enum mse_tcb_status *status,
			 const struct mse_tdx_module **mod, size_t *level, struct mse_err *err) MSE_MUST_CHECK;

/* QVL convergeTcbStatusWithTdxModuleStatus: module OutOfDate degrades, Revoked revokes. */
enum mse_tcb_status mse_tdx_converge_module(enum mse_tcb_status tdx, enum mse_tcb_status module);

/*
 * QVL TDRelaunchCheck for TD report 1.5: when the QE is current, the SGX
 * status is not OutOfDate/Revoked, the TDX status and the module status are
 * OutOfDate, and tee_tcb_svn2 (the module the TD would get on relaunch)
 * reaches the latest TCB level's TDX component 2 and the latest module
 * level (component 0 of that level when tee_tcb_svn2[1] = 0), the status
 * becomes TDRelaunchAdvised (…ConfigurationNeeded when SGX or TDX needs
 * configuration). Otherwise tdx is returned unchanged. -1 (step
 * "tdx-module") when tee_tcb_svn2 names a module absent from the TCB info.
 */
int mse_tdx_relaunch(const struct mse_tcb_info *t, const struct mse_td_report *td, enum mse_tcb_status sgx,
		     enum mse_tcb_status tdx, enum mse_tcb_status module, enum mse_tcb_status qe,
		     enum mse_tcb_status *out, struct mse_err *err) MSE_MUST_CHECK;

#endif
