/* SPDX-License-Identifier: Apache-2.0 */
#include "operator/evidence.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attest/x509w.h"
#include "common/b64.h"
#include "common/file.h"
#include "common/hex.h"

#define MAX_COLLATERAL (4u << 20)

static int read_coll(const char *dir, const char *name, uint8_t **data, size_t *len,
		     struct mse_err *err)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return mse_err_set(err, "collateral path too long");
	return mse_file_read(path, MAX_COLLATERAL, data, len, err);
}

/* A DER (or already PEM) CRL as PEM text. */
static char *crl_pem(const uint8_t *data, size_t len, const char *name, struct mse_err *err)
{
	const unsigned char *p = data;
	X509_CRL *crl = NULL;
	BIO *b = NULL;
	char *out = NULL, *mem;
	long n;

	if (len > 10 && memcmp(data, "-----BEGIN", 10) == 0) {
		b = BIO_new_mem_buf(data, (int)len);
		crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
	} else {
		crl = d2i_X509_CRL(NULL, &p, (long)len);
	}
	if (!crl) {
		mse_err_field(err, name, "not a CRL (DER or PEM)");
		return NULL;
	}
	b = BIO_new(BIO_s_mem());
	if (b && PEM_write_bio_X509_CRL(b, crl) == 1 && (n = BIO_get_mem_data(b, &mem)) > 0 &&
	    (out = malloc((size_t)n + 1))) {
		memcpy(out, mem, (size_t)n);
		out[n] = 0;
	} else {
		mse_err_field(err, name, "cannot encode the CRL");
	}
	BIO_free(b);
	X509_CRL_free(crl);
	return out;
}

/* The first certificate of a PEM chain, as PEM. */
static char *first_cert_pem(const uint8_t *data, size_t len, const char *name, struct mse_err *err)
{
	BIO *b = BIO_new_mem_buf(data, (int)len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	char *out = NULL;

	BIO_free(b);
	if (!x) {
		mse_err_field(err, name, "no PEM certificate");
		return NULL;
	}
	if (mse_x509w_cert_pem(x, &out, err) != 0)
		mse_err_prefix(err, "%s", name);
	X509_free(x);
	return out;
}

static char *b64(const uint8_t *data, size_t len)
{
	size_t n = mse_b64_encoded_size(len, MSE_B64_STD);
	char *out = malloc(n);

	if (out && mse_b64_encode(out, n, data, len, MSE_B64_STD) != 0) {
		free(out);
		out = NULL;
	}
	return out;
}

int mse_evidence_build(const struct mse_evidence_args *a, const char *ratls_pem,
		       const char *collateral_dir, const char *signer_pk_pem, char **json_out,
		       struct mse_err *err)
{
	uint8_t *root_crl = NULL, *pck_crl = NULL, *tcb = NULL, *qe = NULL, *chain = NULL;
	size_t root_crl_len, pck_crl_len, tcb_len, qe_len, chain_len;
	char *root_pem = NULL, *pck_pem = NULL, *tcb_hex = NULL, *tcb_b64 = NULL, *qe_b64 = NULL;
	char *tcb_cert = NULL;
	json_t *o = NULL;
	int rc = -1;

	*json_out = NULL;
	if (read_coll(collateral_dir, "root_ca_crl.der", &root_crl, &root_crl_len, err) ||
	    read_coll(collateral_dir, "pck_crl.der", &pck_crl, &pck_crl_len, err) ||
	    read_coll(collateral_dir, "tcb_info.json", &tcb, &tcb_len, err) ||
	    read_coll(collateral_dir, "qe_identity.json", &qe, &qe_len, err) ||
	    read_coll(collateral_dir, "tcb_info_issuer_chain.pem", &chain, &chain_len, err))
		goto out;
	if (!(root_pem = crl_pem(root_crl, root_crl_len, "root_ca_crl.der", err)) ||
	    !(pck_pem = crl_pem(pck_crl, pck_crl_len, "pck_crl.der", err)) ||
	    !(tcb_cert = first_cert_pem(chain, chain_len, "tcb_info_issuer_chain.pem", err)))
		goto out;
	/* MSE's tcb_info: base64 of the hex of the body, newline-terminated. */
	tcb_hex = malloc(tcb_len * 2 + 2);
	if (!tcb_hex || mse_hex_encode(tcb_hex, tcb_len * 2 + 1, tcb, tcb_len) != 0) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	tcb_hex[tcb_len * 2] = '\n';
	if (!(tcb_b64 = b64((const uint8_t *)tcb_hex, tcb_len * 2 + 1)) || !(qe_b64 = b64(qe, qe_len))) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	o = json_pack("{s:{s:s, s:s, s:I, s:I, s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
		      "input_args", "subject", a->subject, "subject_alternative_name", a->san,
		      "expiration_date", (json_int_t)a->expiration, "size", (json_int_t)a->size_mb,
		      "app_id", a->app_id, "application", a->application, "ratls_certificate",
		      ratls_pem, "root_ca_crl", root_pem, "pck_platform_crl", pck_pem, "tcb_info",
		      tcb_b64, "qe_identity", qe_b64, "tcb_cert", tcb_cert, "signer_pk", signer_pk_pem);
	if (o && a->sgx) {
		const struct mse_evidence_sgx *g = a->sgx;

		if (json_object_set_new(o, "gramine",
					json_pack("{s:s, s:s, s:i, s:i, s:b, s:i, s:i, s:s, s:s}", "version",
						  g->gramine_version, "host", g->host, "port", (int)g->port,
						  "threads", (int)g->threads, "no_ssl", g->no_ssl,
						  "isvprodid", (int)g->isvprodid, "isvsvn", (int)g->isvsvn,
						  "mrenclave", g->mrenclave_hex, "mrsigner",
						  g->mrsigner_hex)) != 0 ||
		    (g->threads_max &&
		     json_object_set_new(json_object_get(o, "gramine"), "threads_max",
					 json_integer(g->threads_max)) != 0) ||
		    (g->metrics && json_object_set_new(json_object_get(o, "gramine"), "metrics",
						       json_string(g->metrics)) != 0)) {
			json_decref(o);
			o = NULL;
		}
	}
	if (!o) {
		mse_err_set(err, "cannot build evidence.json (a field is not valid UTF-8?)");
		goto out;
	}
	*json_out = json_dumps(o, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	rc = *json_out ? 0 : mse_err_set(err, "out of memory");
out:
	json_decref(o);
	free(root_crl);
	free(pck_crl);
	free(tcb);
	free(qe);
	free(chain);
	free(root_pem);
	free(pck_pem);
	free(tcb_hex);
	free(tcb_b64);
	free(qe_b64);
	free(tcb_cert);
	return rc;
}

int mse_evidence_write(const char *path, const struct mse_evidence_args *a, const char *ratls_pem,
		       const char *collateral_dir, const char *signer_pk_pem, struct mse_err *err)
{
	char *text = NULL;
	int rc;

	if (mse_evidence_build(a, ratls_pem, collateral_dir, signer_pk_pem, &text, err) != 0)
		return -1;
	rc = mse_file_write_atomic(path, text, strlen(text), 0644, err);
	free(text);
	return rc;
}
