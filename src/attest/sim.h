/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_sim — SGX simulation: a local stand-in for Intel's PKI, collateral
 * service and quoting enclave, so the whole attestation path (PCK chain,
 * CRLs, signed TCB info and QE identity, TCB status, quote signatures) runs
 * on any Linux machine. Nothing here is confidential: a simulation quote
 * proves only that whoever holds this directory's keys produced it.
 *
 * The simulation directory ($MSE_SIM_DIR, default ~/.config/mse/sim):
 *
 *   root_ca.der, root_ca.pem   simulation root CA (the trust anchor that
 *                              `mse verify --allow-simulation` accepts)
 *   pck_ca.pem, pck.pem        PCK Platform CA and PCK leaf (SGX extension
 *                              1.2.840.113741.1.13.1 with PPID, TCB, PCE-ID,
 *                              FMSPC, SGX type, platform instance, config)
 *   tcb_signing.pem            TCB signing certificate
 *   signer.pem                 public RSA-3072 (e=3) enclave signer key
 *   collateral/                exactly the layout `mse verify --collateral`
 *                              reads (shared/vectors/dcap-quotes/README.md):
 *                              tcb_info.json, qe_identity.json,
 *                              tcb_info_issuer_chain.pem,
 *                              qe_identity_issuer_chain.pem, pck_crl.der,
 *                              pck_crl_issuer_chain.pem, root_ca_crl.der
 *   keys/ (0700)               *.key.pem and root_secret, all 0600
 *
 * Quotes follow Intel's "ECDSA Quote Library API" (Appendix A, quote format
 * v3): 48-byte header, 384-byte ISV report body, then the ECDSA quote
 * signature data with certification data type 5 (PCK chain in PEM).
 *
 * Ownership: mse_sim_load returns a struct mse_sim the caller frees with
 * mse_sim_free (NULL-safe; wipes the secrets). mse_sim_quote returns a
 * malloc'd quote the caller frees.
 */
#ifndef MSE_SIM_H
#define MSE_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_SIM_DIR_ENV "MSE_SIM_DIR"
#define MSE_SGX_QUOTE_HEADER_LEN 48
#define MSE_SGX_REPORT_BODY_LEN 384
#define MSE_SGX_QUOTE_V3 3
#define MSE_SGX_ATT_KEY_ECDSA_P256 2
#define MSE_SGX_CERT_TYPE_PCK_CHAIN 5
#define MSE_SGX_SEALING_KEY_LEN 16 /* EGETKEY returns a 128-bit key */
#define MSE_SIM_COLLATERAL_DAYS 365 /* Intel: 30; longer so a dev box stays usable */

/* The simulated platform's TCB (what the PCK certificate certifies). */
#define MSE_SIM_FMSPC "00906ED50000"
#define MSE_SIM_PCE_ID "0000"
#define MSE_SIM_PCESVN 13
#define MSE_SIM_QE_ISVSVN 8
#define MSE_SIM_QE_ISVPRODID 1

struct mse_sim;

/* What the simulated CPU reports about the enclave (ISV report body). */
struct mse_sim_enclave {
	uint8_t mrenclave[32];
	uint8_t mrsigner[32];
	uint8_t attributes[16]; /* flags (LE u64) ‖ xfrm (LE u64) */
	uint16_t isv_prod_id;
	uint16_t isv_svn;
	uint8_t report_data[64];
};

/*
 * The simulation directory: $MSE_SIM_DIR if set, else
 * $HOME/.config/mse/sim. Every module (verify, spawn, bootstrap) must use
 * this function so they agree.
 */
int mse_sim_dir(char *out, size_t size, struct mse_err *err) MSE_MUST_CHECK;
/*
 * --trust-sim-root HEX (mse-coordinator, mse-bootstrap; measured under SGX):
 * a simulation root CA's DER as lowercase hex, at most MSE_SIM_ROOT_HEX_MAX
 * digits (one spelling, one MRENCLAVE). Checks the text and, with der not
 * NULL, decodes it into *der (malloc'd, *len bytes). UNSAFE outside tests.
 */
#define MSE_SIM_ROOT_HEX_MAX 4096
int mse_sim_root_from_hex(const char *hex, uint8_t **der, size_t *len,
			  struct mse_err *err) MSE_MUST_CHECK;
/* 1 if dir holds an initialised simulation (root_ca.der and keys). */
int mse_sim_exists(const char *dir);
/*
 * Creates a fresh simulation in dir (built in a sibling temporary directory
 * then renamed into place). Fails if dir is already initialised unless
 * force, which replaces it (quotes made with the old one stop verifying).
 */
int mse_sim_init(const char *dir, int force, struct mse_err *err) MSE_MUST_CHECK;
int mse_sim_load(const char *dir, struct mse_sim **out, struct mse_err *err) MSE_MUST_CHECK;
void mse_sim_free(struct mse_sim *sim);

/* The MRSIGNER of enclaves signed with the simulation signer key. */
void mse_sim_mrsigner(const struct mse_sim *sim, uint8_t out[32]);
/* The signer's public key (PEM, SubjectPublicKeyInfo), owned by sim. */
const char *mse_sim_signer_pem(const struct mse_sim *sim);
/*
 * MRSIGNER as SGX computes it (SDM Vol. 3D §38.7, SIGSTRUCT): SHA-256 of
 * the RSA-3072 modulus in little-endian (384 bytes). pem is a public or
 * private RSA key in PEM.
 */
int mse_sim_mrsigner_of_pem(const char *pem, size_t len, uint8_t out[32],
			    struct mse_err *err) MSE_MUST_CHECK;
/* Default attributes of a simulated enclave: INIT|MODE64BIT, XFRM x87|SSE. */
void mse_sim_default_attributes(uint8_t attributes[16]);
/* Builds a quote v3 for the enclave, signed by the simulated QE. */
int mse_sim_quote(const struct mse_sim *sim, const struct mse_sim_enclave *enc, uint8_t **quote,
		  size_t *len, struct mse_err *err) MSE_MUST_CHECK;
/*
 * The simulated EGETKEY(SEAL, MRENCLAVE policy): HKDF-SHA256 of the
 * simulation root secret, salt = MRENCLAVE, info "mse-c/sim/sealing-key/v1".
 */
int mse_sim_sealing_key(const struct mse_sim *sim, const uint8_t mrenclave[32],
			uint8_t out[MSE_SGX_SEALING_KEY_LEN], struct mse_err *err) MSE_MUST_CHECK;

#endif
