/* SPDX-License-Identifier: Apache-2.0 */
/*
 * verify_mutations — runs mse_verify_quote over byte-flipped copies of one
 * collateral-directory set, for tests that compare the C verifier with the
 * Python reference on each mutation.
 *
 * Usage: verify_mutations SET_DIR NOW [OPTION...] < PLAN
 *   OPTION: allow-missing-crl, allow-sept-ve, allow-service-td, allow-debug-td
 *   PLAN lines: "quote|tcb_info|qe_identity OFFSET" (XOR 0x01 at that offset)
 * Prints, per plan line: "FILE OFFSET ok" or "FILE OFFSET refused STEP".
 * Every TCB status is accepted (the comparison is about the checks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/collateral.h"
#include "attest/tcb.h"
#include "attest/verify.h"
#include "common/file.h"

int main(int argc, char **argv)
{
	struct mse_collateral c = {0};
	struct mse_verify_policy pol = {0};
	struct mse_err e = {0};
	uint8_t *quote = NULL;
	size_t qlen = 0;
	char path[4200], what[32];
	size_t off;

	if (argc < 3) {
		fprintf(stderr, "usage: verify_mutations SET_DIR NOW [OPTION...] < PLAN\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/quote.bin", argv[1]);
	if (mse_collateral_load_dir(&c, argv[1], &e) || mse_file_read(path, 1 << 20, &quote, &qlen, &e) ||
	    mse_tcb_parse_time(argv[2], &pol.now)) {
		fprintf(stderr, "verify_mutations: %s %s\n", e.field, e.msg);
		return 2;
	}
	pol.accept_status = ~0u;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "allow-missing-crl"))
			pol.allow_missing_crl = 1;
		else if (!strcmp(argv[i], "allow-sept-ve"))
			pol.allow_sept_ve = 1;
		else if (!strcmp(argv[i], "allow-service-td"))
			pol.allow_service_td = 1;
		else if (!strcmp(argv[i], "allow-debug-td"))
			pol.allow_debug_td = 1;
		else
			return 2;
	}
	while (scanf("%31s %zu", what, &off) == 2) {
		struct mse_verify_result r;
		uint8_t *p = NULL;
		size_t n = 0;

		if (!strcmp(what, "quote"))
			p = quote, n = qlen;
		else if (!strcmp(what, "tcb_info"))
			p = c.tcb_info.p, n = c.tcb_info.len;
		else if (!strcmp(what, "qe_identity"))
			p = c.qe_identity.p, n = c.qe_identity.len;
		if (!p || off >= n) {
			fprintf(stderr, "verify_mutations: bad plan line %s %zu\n", what, off);
			return 2;
		}
		p[off] ^= 0x01;
		memset(&e, 0, sizeof(e));
		if (mse_verify_quote(quote, qlen, &c, &pol, NULL, &r, &e) == 0)
			printf("%s %zu ok\n", what, off);
		else
			printf("%s %zu refused %s\n", what, off, e.step[0] ? e.step : "?");
		p[off] ^= 0x01;
	}
	free(quote);
	mse_collateral_free(&c);
	return 0;
}
