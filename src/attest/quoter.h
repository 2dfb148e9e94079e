/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_quoter — where the enclave gets its quote and sealing key.
 *
 *   Gramine (SGX): the pseudo-files of Gramine's attestation interface,
 *     under a base directory (normally /dev/attestation; configurable so
 *     tests can point it at a prepared directory):
 *       attestation_type      must read "dcap"
 *       user_report_data      write the 64 bytes of report data...
 *       quote                 ...then read the quote (Gramine docs,
 *                             "Attestation and Secret Provisioning")
 *       keys/_sgx_mrenclave   the 16-byte MRENCLAVE-policy sealing key
 *   Simulation: quotes from the simulated QE (src/attest/sim.h) for a given
 *     MRENCLAVE, sealing key derived from the simulation root secret.
 *
 * The enclave's X25519 key (the one secrets are sealed to) is derived, not
 * stored: HKDF-SHA256(IKM = sealing key, no salt, info =
 * "mse-sgx-enclave-sealing-key", L = 32) is the private key, so a restart
 * of the same enclave on the same machine recovers the same key.
 *
 * Ownership: a provider is created by mse_quoter_gramine/_sim and freed
 * with mse_quoter_free (NULL-safe). Quotes returned are malloc'd, freed by
 * the caller. Private keys written to caller buffers must be wiped by the
 * caller (sodium_memzero).
 */
#ifndef MSE_QUOTER_H
#define MSE_QUOTER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_QUOTER_GRAMINE_DIR "/dev/attestation"
#define MSE_ENCLAVE_KEY_INFO "mse-sgx-enclave-sealing-key"
#define MSE_SEALING_KEY_LEN 16

struct mse_quoter;

/* Checks base_dir/attestation_type reads "dcap". */
int mse_quoter_gramine(const char *base_dir, struct mse_quoter **out,
			 struct mse_err *err) MSE_MUST_CHECK;
/*
 * A simulated enclave with that MRENCLAVE, signed by the simulation signer,
 * quoting through the simulation in sim_dir.
 */
int mse_quoter_sim(const char *sim_dir, const uint8_t mrenclave[32], struct mse_quoter **out,
		     struct mse_err *err) MSE_MUST_CHECK;
void mse_quoter_free(struct mse_quoter *p);
/* 1 for the simulation (every output involving it must say so). */
int mse_quoter_is_sim(const struct mse_quoter *p);
/*
 * Simulation only: the ISVPRODID and ISVSVN the simulated enclave reports
 * (default 1 and 1), as gramine-sgx-sign's SIGSTRUCT would set them under
 * SGX; neither is part of MRENCLAVE nor of the MRENCLAVE-bound sealing key.
 */
void mse_quoter_sim_set_isv(struct mse_quoter *p, uint16_t isvprodid, uint16_t isvsvn);
/* A quote over report_data (malloc'd, caller frees). Thread-unsafe. */
int mse_quoter_quote(struct mse_quoter *p, const uint8_t report_data[64], uint8_t **quote,
		       size_t *len, struct mse_err *err) MSE_MUST_CHECK;
int mse_quoter_sealing_key(struct mse_quoter *p, uint8_t out[MSE_SEALING_KEY_LEN],
			     struct mse_err *err) MSE_MUST_CHECK;
/* The enclave X25519 key pair derived from the sealing key (see above). */
int mse_quoter_enclave_key(struct mse_quoter *p, uint8_t sk[32], uint8_t pk[32],
			     struct mse_err *err) MSE_MUST_CHECK;
/* The derivation alone, for tests and tools. */
int mse_quoter_derive_enclave_key(const uint8_t *sealing_key, size_t len, uint8_t sk[32],
				    uint8_t pk[32], struct mse_err *err) MSE_MUST_CHECK;

#endif
