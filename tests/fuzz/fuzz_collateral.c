/*
 * libFuzzer: collateral JSON — the span extractor (src/attest/jspan.c), the
 * TCB info / QE identity parsers and evaluation (src/attest/tcb.c), and
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
