/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: collateral JSON — the span extractor (src/attest/jspan.c), the
 * TCB info (v2, v3 SGX and TDX) / QE identity parsers and evaluation
 * (src/attest/tcb.c, TDX module and relaunch included), and
 * evidence.json (src/attest/collateral.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/collateral.h"
#include "attest/jspan.h"
#include "attest/tcb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * TCB info v3 "TDX": level selection over TEE_TCB_SVN, the module identity
 * and its level, the module merge and the relaunch rule, with TD SVNs taken
 * from the input's first bytes (module major versions 0, 1 and what the
 * input says).
 */
static void fuzz_tdx(const struct mse_tcb_info *ti, const struct mse_pck_info *pck, const uint8_t *in, size_t n)
{
	struct mse_td_report td;
	struct mse_err e;

	memset(&td, 0, sizeof(td));
	for (size_t i = 0; i < 16 && i < n; i++) {
		td.tee_tcb_svn[i] = in[i];
		td.tee_tcb_svn2[i] = in[n - 1 - i];
	}
	td.v15 = n & 1;
	for (int v = 0; v < 3; v++) {
		const struct mse_tdx_module *m;
		enum mse_tcb_status mod, st;
		size_t sl, tl, ml;

		if (v < 2)
			td.tee_tcb_svn[1] = (uint8_t)v;
		if (mse_tdx_module_check(ti, &td, &mod, &m, &ml, &e) == 0) {
			if (m && ml >= m->nlevels)
				abort();
		} else {
			mod = MSE_TCB_OUT_OF_DATE;
		}
		if (mse_tcb_select_tdx(ti, pck, td.tee_tcb_svn, &sl, &tl, &e) == 0) {
			if (sl >= ti->nlevels || tl >= ti->nlevels || sl > tl)
				abort();
			st = mse_tdx_converge_module(ti->levels[tl].status, mod);
			(void)mse_tdx_relaunch(ti, &td, ti->levels[sl].status, st, mod, MSE_TCB_UP_TO_DATE, &st, &e);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {"tcbInfo", "enclaveIdentity", "signature"};
	char *copy = malloc(size ? size : 1);
	struct mse_err e;
	struct mse_jspan sp;
	struct mse_collateral_evidence ev;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	for (size_t k = 0; k < 3; k++)
		if (mse_jspan_member(copy, size, keys[k], &sp, &e) == 0 &&
		    (sp.p < copy || sp.p + sp.len > copy + size || sp.len == 0))
			abort();
	if (mse_jspan_member(copy, size, "tcbInfo", &sp, &e) == 0) {
		struct mse_tcb_info ti;
		struct mse_pck_info pck;
		size_t lvl;

		if (mse_tcb_info_parse(&ti, sp.p, sp.len, &e) == 0) {
			memset(&pck, 0x05, sizeof(pck));
			(void)mse_tcb_select(&ti, &pck, &lvl, &e);
			if (ti.tdx)
				fuzz_tdx(&ti, &pck, (const uint8_t *)copy, size);
			mse_tcb_info_free(&ti);
		}
	}
	if (mse_jspan_member(copy, size, "enclaveIdentity", &sp, &e) == 0) {
		struct mse_qe_identity qi;
		struct mse_sgx_report rep;
		enum mse_tcb_status st;
		size_t lvl;

		if (mse_qe_identity_parse(&qi, sp.p, sp.len, &e) == 0) {
			memset(&rep, 0, sizeof(rep));
			(void)mse_qe_identity_match(&qi, &rep, &st, &lvl, &e);
			mse_qe_identity_free(&qi);
		}
	}
	/* The whole input as a TCB info object too (jansson side), and as evidence. */
	{
		struct mse_tcb_info ti;

		if (mse_tcb_info_parse(&ti, copy, size, &e) == 0)
			mse_tcb_info_free(&ti);
	}
	if (mse_collateral_parse_evidence(&ev, (const uint8_t *)copy, size, &e) == 0) {
		X509_CRL *crl = mse_collateral_crl(ev.coll.pck_crl.p, ev.coll.pck_crl.len, "pck", &e);

		X509_CRL_free(crl);
		mse_collateral_evidence_free(&ev);
	}
	free(copy);
	return 0;
}
