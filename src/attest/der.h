/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_der — a tiny DER writer (ITU-T X.690 §8, §10) for the few structures
 * mse-c builds by hand: the SGX PCK extension (Intel SGX PCK Certificate and
 * CRL Profile, §1.5 "Intel SGX PCK Certificate Extensions"). Parsing is not
 * done here: untrusted DER goes through OpenSSL or src/common/buf.h.
 *
 * A writer owns a growing heap buffer; mse_der_free releases it. Nested
 * values are written by opening a constructed value (mse_der_begin), writing
 * its content, then closing it (mse_der_end), which patches the length.
 * Errors (allocation, unbalanced begin/end) are sticky: check mse_der_ok or
 * the return of mse_der_take once at the end.
 */
#ifndef MSE_DER_H
#define MSE_DER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define MSE_DER_SEQUENCE 0x30
#define MSE_DER_BOOLEAN 0x01
#define MSE_DER_INTEGER 0x02
#define MSE_DER_OCTET_STRING 0x04
#define MSE_DER_OID 0x06
#define MSE_DER_ENUMERATED 0x0a
#define MSE_DER_MAX_DEPTH 8

struct mse_der {
	uint8_t *p;
	size_t len, cap;
	size_t open[MSE_DER_MAX_DEPTH]; /* offsets of the open values' tags */
	int depth;
	int failed;
};

void mse_der_init(struct mse_der *d);
void mse_der_free(struct mse_der *d);
/* Opens a constructed value (SEQUENCE…); content follows until mse_der_end. */
void mse_der_begin(struct mse_der *d, uint8_t tag);
void mse_der_end(struct mse_der *d);
/* A primitive value with the given content bytes. */
void mse_der_prim(struct mse_der *d, uint8_t tag, const void *content, size_t len);
/* A non-negative INTEGER (minimal two's complement) or ENUMERATED. */
void mse_der_uint(struct mse_der *d, uint8_t tag, uint64_t v);
void mse_der_bool(struct mse_der *d, int v);
/* An OBJECT IDENTIFIER from dotted text ("1.2.840.113741.1.13.1"). */
void mse_der_oid(struct mse_der *d, const char *dotted);
int mse_der_ok(const struct mse_der *d);
/*
 * Hands the encoding to the caller (malloc'd; caller frees) and resets the
 * writer. Returns 0, or -1 if any write failed or a value is still open.
 */
int mse_der_take(struct mse_der *d, uint8_t **out, size_t *len) MSE_MUST_CHECK;

#endif
