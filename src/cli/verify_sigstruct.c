/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse verify --sigstruct FILE — the SIGSTRUCT gramine-sgx-sign wrote (the
 * .sig file): parsed and its signature, Q1 and Q2 checked
 * (src/attest/sigstruct.h), then the expected values when given. A debug
 * enclave is refused, as in quote verification.
 */
#include "cli/verify_sigstruct.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "attest/sigstruct.h"
#include "attest/verify.h"
#include "cli/cli.h"
#include "common/file.h"
#include "common/hex.h"
#include "operator/gramine.h"

static void hex(char out[65], const uint8_t *b)
{
	if (mse_hex_encode(out, 65, b, 32) != 0)
		out[0] = 0;
}

/* MRSIGNER of a signer key file: a public key PEM, or the operator's private key. */
static int key_mrsigner(const char *path, uint8_t out[32], struct mse_err *err)
{
	uint8_t *pem = NULL;
	size_t len = 0;
	int rc;

	if (mse_file_read(path, 1 << 20, &pem, &len, err) != 0)
		return -1;
	rc = mse_verify_mrsigner_from_key(pem, len, out, err);
	free(pem);
	if (rc != 0) {
		mse_err_clear(err);
		rc = mse_gramine_check_signer(path, out, err);
	}
	return rc;
}

static int expect32(const char *field, const uint8_t *want, const uint8_t *got, struct mse_err *err)
{
	char w[65], g[65];

	if (sodium_memcmp(want, got, 32) == 0)
		return 0;
	hex(w, want);
	hex(g, got);
	mse_err_step(err, "measurement");
	return mse_err_expect(err, field, w, g);
}

int cli_verify_sigstruct(const struct verify_sigstruct_opts *o)
{
	struct mse_sigstruct s;
	struct mse_err err = {0};
	uint8_t signer[32];
	char mre[65] = "", mrs[65] = "", buf[2048];
	int ok = 0, parsed;

	parsed = mse_sigstruct_load(o->path, &s, &err) == 0;
	if (parsed) {
		hex(mre, s.mrenclave);
		hex(mrs, s.mrsigner);
		if (mse_sigstruct_is_debug(&s)) {
			mse_err_step(&err, "enclave");
			mse_err_set(&err, "DEBUG enclave (ATTRIBUTES.FLAGS bit 1): its memory is readable by "
					  "the host; refused");
		} else if (o->mrenclave && expect32("MRENCLAVE", o->mrenclave, s.mrenclave, &err) != 0) {
		} else if (o->mrsigner && expect32("MRSIGNER", o->mrsigner, s.mrsigner, &err) != 0) {
		} else if (o->signer_key && (key_mrsigner(o->signer_key, signer, &err) != 0 ||
					     expect32("MRSIGNER", signer, s.mrsigner, &err) != 0)) {
		} else if (o->check_isvprodid && s.isv_prod_id != o->isvprodid) {
			mse_err_step(&err, "enclave");
			mse_err_set(&err, "ISVPRODID: expected %u, got %u", (unsigned)o->isvprodid,
				    (unsigned)s.isv_prod_id);
		} else if (o->check_min_isvsvn && s.isv_svn < o->min_isvsvn) {
			mse_err_step(&err, "enclave");
			mse_err_set(&err, "ISVSVN: expected at least %u, got %u", (unsigned)o->min_isvsvn,
				    (unsigned)s.isv_svn);
		} else {
			ok = 1;
		}
		if (!ok)
			mse_err_file(&err, o->path);
	}
	if (o->json) {
		json_t *j = json_object();
		char *text;

		json_object_set_new(j, "ok", json_boolean(ok));
		json_object_set_new(j, "file", json_string(o->path));
		if (parsed) {
			json_object_set_new(j, "mrenclave", json_string(mre));
			json_object_set_new(j, "mrsigner", json_string(mrs));
			json_object_set_new(j, "isvprodid", json_integer(s.isv_prod_id));
			json_object_set_new(j, "isvsvn", json_integer(s.isv_svn));
			json_object_set_new(j, "debug", json_boolean(mse_sigstruct_is_debug(&s)));
			json_object_set_new(j, "date", json_sprintf("%04x-%02x-%02x", s.date >> 16,
								    (s.date >> 8) & 0xff, s.date & 0xff));
			json_object_set_new(j, "vendor", json_integer(s.vendor));
			json_object_set_new(j, "attributes_flags", json_sprintf("0x%llx",
				(unsigned long long)s.attr_flags));
			json_object_set_new(j, "attributes_xfrm", json_sprintf("0x%llx",
				(unsigned long long)s.attr_xfrm));
			json_object_set_new(j, "misc_select", json_integer(s.misc_select));
		}
		if (!ok) {
			json_object_set_new(j, "step", json_string(err.step));
			json_object_set_new(j, "error", json_string(mse_err_str(&err, buf, sizeof(buf))));
		}
		text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (text)
			puts(text);
		free(text);
		json_decref(j);
	} else if (parsed) {
		printf("sigstruct:    %s (signature, Q1 and Q2 verified)\n", o->path);
		printf("mrenclave:    %s\nmrsigner:     %s\n", mre, mrs);
		printf("isvprodid:    %u\nisvsvn:       %u\n", (unsigned)s.isv_prod_id,
		       (unsigned)s.isv_svn);
		printf("debug:        %s\n", mse_sigstruct_is_debug(&s) ? "yes" : "no");
		printf("date:         %04x-%02x-%02x\n", s.date >> 16, (s.date >> 8) & 0xff,
		       s.date & 0xff);
		printf("attributes:   flags 0x%llx, xfrm 0x%llx, miscselect 0x%x\n",
		       (unsigned long long)s.attr_flags, (unsigned long long)s.attr_xfrm,
		       (unsigned)s.misc_select);
	}
	if (!ok) {
		if (!o->json)
			cli_fail("verify", &err);
		return MSE_EXIT_FAIL;
	}
	if (!o->json)
		printf("result:       OK\n");
	return MSE_EXIT_OK;
}
