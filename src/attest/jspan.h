/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_jspan — the exact bytes of a member of a JSON object.
 *
 * Intel signs the TCB info and QE identity as the bytes of the `tcbInfo` /
 * `enclaveIdentity` object exactly as the PCS sent them (PCS API v4,
 * "TCB Info" and "Enclave Identity" response bodies). A JSON library would
 * re-serialise them, so this small RFC 8259 scanner finds the span instead.
 * It validates the whole document's syntax (nesting at most
 * MSE_JSPAN_MAX_DEPTH), only looks at top-level members, and refuses a
 * document where the key appears twice (so what is signed and what is read
 * cannot differ). Keys are compared byte for byte as written (no escapes).
 *
 * Pure function over a buffer; the span borrows the input.
 */
#ifndef MSE_JSPAN_H
#define MSE_JSPAN_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_JSPAN_MAX_DEPTH 64

struct mse_jspan {
	const char *p; /* first byte of the value ('{', '"', digit…) */
	size_t len;    /* through its last byte ('}', closing '"'…) */
};

/*
 * Finds top-level member `key` of the JSON object text json[0:len] and sets
 * *out to the exact bytes of its value. Returns 0, or -1 (step "collateral")
 * if the text is not one valid JSON object, the key is missing, or it
 * appears more than once.
 */
int mse_jspan_member(const char *json, size_t len, const char *key, struct mse_jspan *out,
		     struct mse_err *err) MSE_MUST_CHECK;

#endif
