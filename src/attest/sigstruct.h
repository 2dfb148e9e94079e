/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_sigstruct — the SGX enclave signature structure (SIGSTRUCT), as
 * `gramine-sgx-sign` writes it into the `.sig` file: the SGX SDK's
 * `enclave_css_t`, 1,808 bytes (Intel SDM Vol. 3D, 34.14 "Enclave
 * Signature Structure"; Intel SGX SDK arch.h):
 *
 *   header   0..127    header[16] (0), vendor u32 (16), date u32 BCD (20),
 *                      header2[16] (24), swdefined u32 (40), reserved[84]
 *   key      128..899  modulus[384] (128), exponent u32 (512),
 *                      signature[384] (516)
 *   body     900..1027 misc_select u32 (900), misc_mask u32 (904),
 *                      reserved[4], isv_family_id[16] (912),
 *                      attributes[16] (928), attribute_mask[16] (944),
 *                      enclave_hash[32] (960) = MRENCLAVE, reserved[16],
 *                      isvext_prod_id[16] (1008), isv_prod_id u16 (1024),
 *                      isv_svn u16 (1026)
 *   buffer   1028..1807 reserved[12], q1[384] (1040), q2[384] (1424)
 *
 * Integers are little-endian, and so are the modulus, the signature, Q1 and
 * Q2 (unlike PKCS #1). The signature is RSASSA-PKCS1-v1_5 with SHA-256 over
 * bytes 0..127 ‖ 900..1027, with a 3072-bit key and public exponent 3.
 * Q1 = floor(s² / n) and Q2 = floor((s³ − Q1·s·n) / n) let the CPU check it
 * without division; EINIT refuses a SIGSTRUCT whose Q1/Q2 are wrong, so they
 * are checked too. MRSIGNER = SHA-256 of the 384 little-endian modulus bytes.
 *
 * mse_sigstruct_parse reads the fields through a bounded reader and checks
 * the fixed headers; mse_sigstruct_verify checks the key size, exponent,
 * signature and Q1/Q2 and computes MRSIGNER. Neither allocates anything the
 * caller frees: struct mse_sigstruct is caller-owned and fixed-size.
 */
#ifndef MSE_SIGSTRUCT_H
#define MSE_SIGSTRUCT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_SIGSTRUCT_SIZE 1808
#define MSE_SIGSTRUCT_KEY_BYTES 384 /* RSA-3072 */
#define MSE_SIGSTRUCT_EXPONENT 3
#define MSE_SIGSTRUCT_HEADER_OFF 0
#define MSE_SIGSTRUCT_HEADER_LEN 128
#define MSE_SIGSTRUCT_MODULUS_OFF 128
#define MSE_SIGSTRUCT_EXPONENT_OFF 512
#define MSE_SIGSTRUCT_SIGNATURE_OFF 516
#define MSE_SIGSTRUCT_BODY_OFF 900
#define MSE_SIGSTRUCT_BODY_LEN 128
#define MSE_SIGSTRUCT_ENCLAVE_HASH_OFF 960
#define MSE_SIGSTRUCT_ISV_PROD_ID_OFF 1024
#define MSE_SIGSTRUCT_ISV_SVN_OFF 1026
#define MSE_SIGSTRUCT_Q1_OFF 1040
#define MSE_SIGSTRUCT_Q2_OFF 1424
/* ATTRIBUTES.FLAGS bit 1: a debug enclave. */
#define MSE_SIGSTRUCT_FLAG_DEBUG 0x2u

struct mse_sigstruct {
	uint8_t header[16];
	uint32_t vendor;       /* 0 or 0x8086 (Intel) */
	uint32_t date;         /* BCD yyyymmdd, e.g. 0x20261203 */
	uint8_t header2[16];
	uint32_t swdefined;
	uint8_t modulus[MSE_SIGSTRUCT_KEY_BYTES];   /* little-endian */
	uint32_t exponent;
	uint8_t signature[MSE_SIGSTRUCT_KEY_BYTES]; /* little-endian */
	uint32_t misc_select, misc_mask;
	uint8_t isv_family_id[16];
	uint64_t attr_flags, attr_xfrm;             /* ATTRIBUTES */
	uint64_t attr_flags_mask, attr_xfrm_mask;   /* ATTRIBUTEMASK */
	uint8_t mrenclave[32];                      /* ENCLAVEHASH */
	uint8_t isvext_prod_id[16];
	uint16_t isv_prod_id, isv_svn;
	uint8_t q1[MSE_SIGSTRUCT_KEY_BYTES], q2[MSE_SIGSTRUCT_KEY_BYTES]; /* little-endian */
	uint8_t signed_data[MSE_SIGSTRUCT_HEADER_LEN + MSE_SIGSTRUCT_BODY_LEN];
	uint8_t mrsigner[32];  /* set by mse_sigstruct_verify */
};

/*
 * Parses a SIGSTRUCT of exactly MSE_SIGSTRUCT_SIZE bytes. Errors name the
 * field, the offset and the expected and actual values.
 */
int mse_sigstruct_parse(struct mse_sigstruct *s, const uint8_t *data, size_t len,
			struct mse_err *err) MSE_MUST_CHECK;
/*
 * Checks a parsed SIGSTRUCT: a 3072-bit modulus, exponent 3, the signature
 * over header ‖ body, Q1 and Q2; then sets s->mrsigner. err's step is
 * "sigstruct".
 */
int mse_sigstruct_verify(struct mse_sigstruct *s, struct mse_err *err) MSE_MUST_CHECK;
/* Reads, parses and verifies a .sig file (at most MSE_SIGSTRUCT_SIZE + 1 bytes read). */
int mse_sigstruct_load(const char *path, struct mse_sigstruct *s, struct mse_err *err) MSE_MUST_CHECK;
/* 1 if the SIGSTRUCT asks for a debug enclave (ATTRIBUTES.FLAGS.DEBUG). */
int mse_sigstruct_is_debug(const struct mse_sigstruct *s);

#endif
