/* SPDX-License-Identifier: Apache-2.0 */
/* Collateral loading: directory layout and MSE's evidence.json. See collateral.h. */
#include "attest/collateral.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "common/b64.h"
#include "common/file.h"
#include "common/hex.h"

#define CFAIL(err, field, ...) (mse_err_step((err), "collateral"), mse_err_field((err), (field), __VA_ARGS__))

int mse_blob_set(struct mse_blob *b, const void *data, size_t len)
{
	free(b->p);
	b->p = malloc(len + 1);
	b->len = 0;
	if (!b->p)
		return -1;
	memcpy(b->p, data, len);
	b->p[len] = 0;
	b->len = len;
	return 0;
}

static void blob_free(struct mse_blob *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
}

void mse_collateral_free(struct mse_collateral *c)
{
	if (!c)
		return;
	blob_free(&c->tcb_info);
	blob_free(&c->tcb_chain);
	blob_free(&c->qe_identity);
	blob_free(&c->qe_chain);
	blob_free(&c->pck_crl);
	blob_free(&c->pck_crl_chain);
	blob_free(&c->root_crl);
}

void mse_collateral_evidence_free(struct mse_collateral_evidence *ev)
{
	if (!ev)
		return;
	mse_collateral_free(&ev->coll);
	blob_free(&ev->ratls_pem);
	blob_free(&ev->signer_pk);
}

static int load_opt(struct mse_blob *b, const char *dir, const char *name, struct mse_err *err)
{
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return CFAIL(err, name, "path too long");
	if (!mse_file_exists(path))
		return 0;
	return mse_file_read(path, MSE_COLLATERAL_MAX_FILE, &b->p, &b->len, err);
}

int mse_collateral_load_dir(struct mse_collateral *c, const char *dir, struct mse_err *err)
{
	memset(c, 0, sizeof(*c));
	if (!mse_file_exists(dir))
		return CFAIL(err, "collateral", "no such directory: %s", dir);
	if (load_opt(&c->tcb_info, dir, "tcb_info.json", err) || load_opt(&c->tcb_chain, dir, "tcb_info_issuer_chain.pem", err) ||
	    load_opt(&c->qe_identity, dir, "qe_identity.json", err) ||
	    load_opt(&c->qe_chain, dir, "qe_identity_issuer_chain.pem", err) ||
	    load_opt(&c->pck_crl, dir, "pck_crl.der", err) ||
	    load_opt(&c->pck_crl_chain, dir, "pck_crl_issuer_chain.pem", err) ||
	    load_opt(&c->root_crl, dir, "root_ca_crl.der", err)) {
		mse_collateral_free(c);
		return -1;
	}
	return 0;
}

static int is_hex_text(const uint8_t *p, size_t n)
{
	size_t digits = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t ch = p[i];

		if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'))
			digits++;
		else if (ch != '\n' && ch != '\r' && ch != ' ' && ch != '\t')
			return 0;
	}
	return digits > 0 && digits % 2 == 0;
}

/* Hex text (whitespace allowed only around it) → bytes into b. */
static int hex_to_blob(struct mse_blob *b, const uint8_t *p, size_t n)
{
	size_t s = 0, e = n, out_len;
	uint8_t *out;

	while (s < e && (p[s] == ' ' || p[s] == '\n' || p[s] == '\r' || p[s] == '\t'))
		s++;
	while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\n' || p[e - 1] == '\r' || p[e - 1] == '\t'))
		e--;
	out = malloc((e - s) / 2 + 1);
	if (!out)
		return -1;
	if (mse_hex_decode(out, (e - s) / 2, &out_len, (const char *)p + s, e - s) != 0) {
		free(out);
		return -1;
	}
	out[out_len] = 0;
	free(b->p);
	b->p = out;
	b->len = out_len;
	return 0;
}

static const char *get_str(json_t *j, const char *k, size_t *len)
{
	json_t *v = json_object_get(j, k);

	if (!json_is_string(v))
		return NULL;
	*len = json_string_length(v);
	return json_string_value(v);
}

/* base64 field → blob; the tcb_info quirk is undone when hex_inside. */
static int b64_field(struct mse_blob *b, json_t *j, const char *k, int hex_inside, struct mse_err *err)
{
	size_t n, out_len;
	const char *s = get_str(j, k, &n);
	uint8_t *tmp;

	if (!s)
		return CFAIL(err, k, "missing (expected a base64 string)");
	tmp = malloc(n / 4 * 3 + 4);
	if (!tmp)
		return CFAIL(err, k, "out of memory");
	if (mse_b64_decode_ws(tmp, n / 4 * 3 + 4, &out_len, s, n, MSE_B64_STD) != 0) {
		free(tmp);
		return CFAIL(err, k, "not valid base64");
	}
	/*
	 * MSE stores tcb_info as base64(hex(body) + "\n"). Undo the hex layer
	 * when the decoded text is hex only, so a plain base64 body works too.
	 */
	if (hex_inside && is_hex_text(tmp, out_len)) {
		int rc = hex_to_blob(b, tmp, out_len);

		free(tmp);
		return rc ? CFAIL(err, k, "base64 of invalid hex") : 0;
	}
	if (mse_blob_set(b, tmp, out_len) != 0) {
		free(tmp);
		return CFAIL(err, k, "out of memory");
	}
	free(tmp);
	return 0;
}

static int str_field(struct mse_blob *b, json_t *j, const char *k, int required, struct mse_err *err)
{
	size_t n;
	const char *s = get_str(j, k, &n);

	if (!s)
		return required ? CFAIL(err, k, "missing (expected a PEM string)") : 0;
	return mse_blob_set(b, s, n) ? CFAIL(err, k, "out of memory") : 0;
}

int mse_collateral_parse_evidence(struct mse_collateral_evidence *ev, const uint8_t *json, size_t len, struct mse_err *err)
{
	json_error_t je;
	json_t *j;
	int ret = -1;

	memset(ev, 0, sizeof(*ev));
	j = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &je);
	if (!j || !json_is_object(j)) {
		mse_err_step(err, "collateral");
		if (j)
			mse_err_field(err, "evidence", "expected a JSON object");
		else
			mse_err_at(err, "", je.line, je.column, "evidence: invalid JSON: %s", je.text);
		goto out;
	}
	if (str_field(&ev->ratls_pem, j, "ratls_certificate", 1, err) ||
	    str_field(&ev->coll.root_crl, j, "root_ca_crl", 0, err) ||
	    str_field(&ev->coll.pck_crl, j, "pck_platform_crl", 0, err) ||
	    str_field(&ev->coll.tcb_chain, j, "tcb_cert", 0, err) ||
	    b64_field(&ev->coll.tcb_info, j, "tcb_info", 1, err) ||
	    b64_field(&ev->coll.qe_identity, j, "qe_identity", 0, err) ||
	    str_field(&ev->signer_pk, j, "signer_pk", 0, err))
		goto out;
	/* MSE's one TCB signing certificate signs both bodies. */
	if (ev->coll.tcb_chain.p && mse_blob_set(&ev->coll.qe_chain, ev->coll.tcb_chain.p, ev->coll.tcb_chain.len)) {
		CFAIL(err, "tcb_cert", "out of memory");
		goto out;
	}
	if (!ev->coll.pck_crl.p)
		str_field(&ev->coll.pck_crl, j, "pck_processor_crl", 0, err);
	ret = 0;
out:
	json_decref(j);
	if (ret)
		mse_collateral_evidence_free(ev);
	return ret;
}

X509_CRL *mse_collateral_crl(const uint8_t *data, size_t len, const char *what, struct mse_err *err)
{
	static const char tag[] = "-----BEGIN X509 CRL-----";
	X509_CRL *crl = NULL;

	if (!data || len == 0 || len > MSE_COLLATERAL_MAX_FILE) {
		mse_err_step(err, "crl");
		mse_err_field(err, what, "empty");
		return NULL;
	}
	if (data[0] == 0x30) {
		const unsigned char *p = data;

		crl = d2i_X509_CRL(NULL, &p, (long)len);
		if (crl && p != data + len) {
			X509_CRL_free(crl);
			crl = NULL;
		}
	} else if (len >= sizeof(tag) - 1 && memmem(data, len, tag, sizeof(tag) - 1)) {
		BIO *bio = BIO_new_mem_buf(data, (int)len);

		if (bio)
			crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		BIO_free(bio);
	} else if (is_hex_text(data, len)) {
		struct mse_blob b = {0};

		if (hex_to_blob(&b, data, len) == 0 && b.len && b.p[0] == 0x30) {
			const unsigned char *p = b.p;

			crl = d2i_X509_CRL(NULL, &p, (long)b.len);
			if (crl && p != b.p + b.len) {
				X509_CRL_free(crl);
				crl = NULL;
			}
		}
		blob_free(&b);
	}
	ERR_clear_error();
	if (!crl) {
		mse_err_step(err, "crl");
		mse_err_field(err, what, "not a CRL in DER, PEM or hex");
	}
	return crl;
}

STACK_OF(X509) *mse_collateral_pem_chain(const uint8_t *pem, size_t len, const char *step, const char *what,
					 struct mse_err *err)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *bio;
	X509 *x;

	if (!sk || !pem || len == 0 || len > MSE_COLLATERAL_MAX_FILE) {
		sk_X509_free(sk);
		mse_err_step(err, step);
		mse_err_field(err, what, "no certificate chain");
		return NULL;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			break;
		}
	BIO_free(bio);
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		mse_err_step(err, step);
		mse_err_field(err, what, "no PEM certificate found");
		return NULL;
	}
	return sk;
}
