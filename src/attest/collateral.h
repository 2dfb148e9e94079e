/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_collateral — what a verifier needs besides the quote: TCB info, QE
 * identity, their issuer chains, the PCK CRL (+ chain) and the Root CA CRL.
 *
 * Two sources, one struct:
 *   - a collateral directory (../shared/vectors/dcap-quotes/README.md):
 *     tcb_info.json, tcb_info_issuer_chain.pem, qe_identity.json,
 *     qe_identity_issuer_chain.pem, pck_crl.der, pck_crl_issuer_chain.pem,
 *     root_ca_crl.der — any may be missing; the verifier reports what is;
 *   - MSE's evidence.json: root_ca_crl, pck_platform_crl (PEM), tcb_cert
 *     (the TCB signing certificate, used as the chain of both JSON bodies),
 *     tcb_info (base64 of the ASCII hex of the PCS body, newline-terminated:
 *     MSE's quirk), qe_identity (base64 of the PCS body), plus the RA-TLS
 *     certificate and the enclave signer's public key.
 * CRLs may be DER, PEM or the hex the PCCS returns (mse_collateral_crl).
 *
 * Ownership: the structs are caller-owned; every buffer in them is malloc'd
 * and released by mse_collateral_free / mse_collateral_evidence_free (NULL-safe).
 * Buffers are NUL-terminated (the NUL not counted in the length).
 */
#ifndef MSE_COLLATERAL_H
#define MSE_COLLATERAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_COLLATERAL_MAX_FILE (4 * 1024 * 1024)

struct mse_blob {
	uint8_t *p; /* NULL when absent */
	size_t len;
};

struct mse_collateral {
	struct mse_blob tcb_info;       /* PCS body {"tcbInfo":{…},"signature":"…"} */
	struct mse_blob tcb_chain;      /* PEM, TCB signing cert first */
	struct mse_blob qe_identity;    /* PCS body {"enclaveIdentity":{…},"signature":"…"} */
	struct mse_blob qe_chain;       /* PEM */
	struct mse_blob pck_crl;        /* DER, PEM or hex */
	struct mse_blob pck_crl_chain;  /* PEM (informative: the PCK CA comes from the quote) */
	struct mse_blob root_crl;       /* DER, PEM or hex */
};

struct mse_collateral_evidence {
	struct mse_collateral coll;
	struct mse_blob ratls_pem; /* the enclave's RA-TLS certificate */
	struct mse_blob signer_pk; /* PEM public key of the enclave signer (RSA-3072), or absent */
};

/* Loads a collateral directory. Fails (step "collateral") only on unreadable files. */
int mse_collateral_load_dir(struct mse_collateral *c, const char *dir, struct mse_err *err) MSE_MUST_CHECK;

/* Parses evidence.json text. Step "collateral"; names the field at fault. */
int mse_collateral_parse_evidence(struct mse_collateral_evidence *ev, const uint8_t *json, size_t len,
		       struct mse_err *err) MSE_MUST_CHECK;

/* Copies data into a blob (NUL-terminated). */
int mse_blob_set(struct mse_blob *b, const void *data, size_t len) MSE_MUST_CHECK;

/* Decodes a CRL given as DER, PEM or hex. NULL (and err, step "crl") on failure. */
X509_CRL *mse_collateral_crl(const uint8_t *data, size_t len, const char *what, struct mse_err *err);

/* Parses every CERTIFICATE in PEM text, in order. NULL (step given) if none or malformed. */
STACK_OF(X509) *mse_collateral_pem_chain(const uint8_t *pem, size_t len, const char *step,
					 const char *what, struct mse_err *err);

void mse_collateral_free(struct mse_collateral *c);
void mse_collateral_evidence_free(struct mse_collateral_evidence *ev);

#endif
