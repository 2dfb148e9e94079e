/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigstruct_flip — drives src/attest/sigstruct for tests/e2e/test_sigstruct.py,
 * whose SIGSTRUCTs are written by python3-cryptography.
 *
 *   sigstruct_flip FILE
 *       parses and verifies FILE; on success prints
 *       "mrenclave=HEX mrsigner=HEX isvprodid=N isvsvn=N debug=0|1", then
 *       flips each of the 1808 bytes in turn (XOR 0x01) and prints one line
 *       "accepted OFFSET" for every flip that still parses and verifies.
 *       Exit 1 and the error if FILE itself does not verify.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/sigstruct.h"
#include "common/file.h"
#include "common/hex.h"

int main(int argc, char **argv)
{
	struct mse_sigstruct s;
	struct mse_err err;
	char buf[2048], mre[65], mrs[65];
	uint8_t *data = NULL;
	size_t len = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: sigstruct_flip FILE\n");
		return 2;
	}
	mse_err_clear(&err);
	if (mse_file_read(argv[1], 1 << 16, &data, &len, &err) != 0)
		goto fail;
	if (mse_sigstruct_parse(&s, data, len, &err) != 0 || mse_sigstruct_verify(&s, &err) != 0)
		goto fail;
	if (mse_hex_encode(mre, sizeof(mre), s.mrenclave, 32) != 0 ||
	    mse_hex_encode(mrs, sizeof(mrs), s.mrsigner, 32) != 0)
		goto fail;
	printf("mrenclave=%s mrsigner=%s isvprodid=%u isvsvn=%u debug=%d\n", mre, mrs,
	       (unsigned)s.isv_prod_id, (unsigned)s.isv_svn, mse_sigstruct_is_debug(&s));
	for (size_t i = 0; i < len; i++) {
		data[i] ^= 0x01;
		mse_err_clear(&err);
		if (mse_sigstruct_parse(&s, data, len, &err) == 0 && mse_sigstruct_verify(&s, &err) == 0)
			printf("accepted %zu\n", i);
		data[i] ^= 0x01;
	}
	free(data);
	return 0;
fail:
	free(data);
	fprintf(stderr, "sigstruct_flip: %s\n", mse_err_str(&err, buf, sizeof(buf)));
	return 1;
}
