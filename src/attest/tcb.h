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
	uint16_t pcesvn;
	enum mse_tcb_status status;
	time_t tcb_date;
	char *advisories; /* "INTEL-SA-00586,INTEL-SA-00614" or "" (owned) */
};

struct mse_tcb_info {
	int version;  /* 2 or 3 */
	char id[8];   /* "SGX" (v3), "" for v2 */
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
	char id[8]; /* "QE" */
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

#endif
