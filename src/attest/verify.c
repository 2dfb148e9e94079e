/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DCAP quote verification. The order and the checks follow Intel's Quote
 * Verification Library (QVL: "sgxAttestationVerifyQuote": PCK chain, CRLs,
 * TCB info, QE identity, QE report, quote signature, TCB status); see
 * verify.h for the steps and docs/attestation.md for the reasons.
 */
#include "attest/verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/jspan.h"
#include "common/b64.h"
#include "common/hex.h"

static const char *const step_names[MSE_STEP_COUNT] = {
	"parse",      "pck-chain",  "pck",       "crl",       "tcb-info",        "qe-identity", "qe-report",
	"qe-binding", "quote-signature", "tcb-level", "enclave", "measurement", "tcb-status", "binding",
	"tdx-module", "td-attributes",
};

const char *mse_verify_step_name(enum mse_verify_step s)
{
	return (unsigned)s < MSE_STEP_COUNT ? step_names[s] : "?";
}

/* ------------------------------------------------------------------ */
/* cache                                                               */

#define OBJ_SLOTS 64
#define PLAT_SLOTS 8

enum obj_type { CACHED_X509 = 1, CACHED_CRL = 2, CACHED_TCB_INFO = 3, CACHED_QE_IDENTITY = 4 };

struct obj_entry {
	uint8_t h[32];
	enum obj_type type;
	void *obj;
};

struct plat_entry {
	int used;
	uint8_t key[32];
	time_t from, until; /* the intersection of every validity window checked */
	struct mse_verify_result base;
	EVP_PKEY *attest;
};

struct mse_verify_cache {
	unsigned modes;
	struct obj_entry objs[OBJ_SLOTS];
	size_t next_obj;
	struct plat_entry plat[PLAT_SLOTS];
	size_t next_plat;
};

struct mse_verify_cache *mse_verify_cache_new(unsigned modes)
{
	struct mse_verify_cache *c = calloc(1, sizeof(*c));

	if (c)
		c->modes = modes;
	return c;
}

static void json_free(enum obj_type t, void *o)
{
	if (t == CACHED_TCB_INFO)
		mse_tcb_info_free(o);
	else
		mse_qe_identity_free(o);
	free(o);
}

static void obj_release(struct obj_entry *e)
{
	if (e->type == CACHED_X509)
		X509_free(e->obj);
	else if (e->type == CACHED_CRL)
		X509_CRL_free(e->obj);
	else if (e->type == CACHED_TCB_INFO || e->type == CACHED_QE_IDENTITY)
		json_free(e->type, e->obj);
	memset(e, 0, sizeof(*e));
}

/*
 * Parsed TCB info / QE identity (struct mse_tcb_info / mse_qe_identity on
 * the heap) by the SHA-256 of the exact signed text: taken out of the cache
 * while a verification uses it (so no insertion can evict it meanwhile) and
 * put back after. Without the object cache, json_put frees it.
 */
static void *json_take(struct mse_verify_cache *c, enum obj_type t, const uint8_t h[32])
{
	if (!c || !(c->modes & MSE_VERIFY_CACHE_OBJECTS))
		return NULL;
	for (size_t i = 0; i < OBJ_SLOTS; i++)
		if (c->objs[i].type == t && memcmp(c->objs[i].h, h, 32) == 0) {
			void *o = c->objs[i].obj;

			memset(&c->objs[i], 0, sizeof(c->objs[i]));
			return o;
		}
	return NULL;
}

static void json_put(struct mse_verify_cache *c, enum obj_type t, const uint8_t h[32], void *o)
{
	struct obj_entry *e;

	if (!c || !(c->modes & MSE_VERIFY_CACHE_OBJECTS)) {
		json_free(t, o);
		return;
	}
	e = &c->objs[c->next_obj++ % OBJ_SLOTS];
	obj_release(e);
	memcpy(e->h, h, 32);
	e->type = t;
	e->obj = o;
}

void mse_verify_cache_free(struct mse_verify_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < OBJ_SLOTS; i++)
		obj_release(&c->objs[i]);
	for (size_t i = 0; i < PLAT_SLOTS; i++)
		EVP_PKEY_free(c->plat[i].attest);
	free(c);
}

/* DER certificate → X509 (a new reference), through the object cache if enabled. */
static X509 *x509_from_der(struct mse_verify_cache *c, const uint8_t *der, size_t len, const uint8_t h[32])
{
	const unsigned char *p = der;
	X509 *x;

	if (c && (c->modes & MSE_VERIFY_CACHE_OBJECTS)) {
		for (size_t i = 0; i < OBJ_SLOTS; i++)
			if (c->objs[i].type == CACHED_X509 && memcmp(c->objs[i].h, h, 32) == 0) {
				X509_up_ref(c->objs[i].obj);
				return c->objs[i].obj;
			}
	}
	x = d2i_X509(NULL, &p, (long)len);
	if (!x || p != der + len) {
		X509_free(x);
		return NULL;
	}
	if (c && (c->modes & MSE_VERIFY_CACHE_OBJECTS)) {
		struct obj_entry *e = &c->objs[c->next_obj++ % OBJ_SLOTS];

		obj_release(e);
		memcpy(e->h, h, 32);
		e->type = CACHED_X509;
		e->obj = x;
		X509_up_ref(x);
	}
	return x;
}

static X509_CRL *crl_load(struct mse_verify_cache *c, const struct mse_blob *b, const char *what,
			  struct mse_err *err)
{
	uint8_t h[32];
	X509_CRL *crl;
	int cached = c && (c->modes & MSE_VERIFY_CACHE_OBJECTS);

	if (cached) {
		SHA256(b->p, b->len, h);
		for (size_t i = 0; i < OBJ_SLOTS; i++)
			if (c->objs[i].type == CACHED_CRL && memcmp(c->objs[i].h, h, 32) == 0) {
				X509_CRL_up_ref(c->objs[i].obj);
				return c->objs[i].obj;
			}
	}
	crl = mse_collateral_crl(b->p, b->len, what, err);
	if (crl && cached) {
		struct obj_entry *e = &c->objs[c->next_obj++ % OBJ_SLOTS];

		obj_release(e);
		memcpy(e->h, h, 32);
		e->type = CACHED_CRL;
		e->obj = crl;
		X509_CRL_up_ref(crl);
	}
	return crl;
}

/* ------------------------------------------------------------------ */
/* helpers                                                             */

struct chain {
	X509 *x[8];
	uint8_t h[8][32]; /* SHA-256 of each DER */
	int n;
};

static void chain_free(struct chain *ch)
{
	for (int i = 0; i < ch->n; i++)
		X509_free(ch->x[i]);
	ch->n = 0;
}

/*
 * Splits PEM text into certificates. Decoding the base64 ourselves gives the
 * DER bytes to hash (for the pin and the object cache) without OpenSSL's PEM
 * layer. Returns the count, or -1 on a malformed block or too many.
 */
static int pem_chain(struct mse_verify_cache *c, const uint8_t *pem, size_t len, struct chain *ch)
{
	static const char b[] = "-----BEGIN CERTIFICATE-----", e[] = "-----END CERTIFICATE-----";
	const uint8_t *p = pem, *end = pem + len;
	uint8_t der[8192];

	ch->n = 0;
	for (;;) {
		const uint8_t *s = memmem(p, (size_t)(end - p), b, sizeof(b) - 1), *t;
		size_t der_len;

		if (!s)
			break;
		s += sizeof(b) - 1;
		t = memmem(s, (size_t)(end - s), e, sizeof(e) - 1);
		if (!t || ch->n == 8)
			goto bad;
		if (mse_b64_decode_ws(der, sizeof(der), &der_len, (const char *)s, (size_t)(t - s), MSE_B64_STD) != 0)
			goto bad;
		SHA256(der, der_len, ch->h[ch->n]);
		ch->x[ch->n] = x509_from_der(c, der, der_len, ch->h[ch->n]);
		if (!ch->x[ch->n])
			goto bad;
		ch->n++;
		p = t + sizeof(e) - 1;
	}
	ERR_clear_error();
	return ch->n;
bad:
	ERR_clear_error();
	chain_free(ch);
	return -1;
}

static int asn1_to_time(const ASN1_TIME *a, time_t *out)
{
	struct tm tm;

	if (!a || ASN1_TIME_to_tm(a, &tm) != 1)
		return -1;
	*out = timegm(&tm);
	return 0;
}

static void hexs(char *out, size_t size, const uint8_t *b, size_t n)
{
	if (mse_hex_encode(out, size, b, n) != 0)
		out[0] = 0;
}

static void subject_cn(X509 *x, char *out, size_t n)
{
	out[0] = 0;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)n) < 0)
		snprintf(out, n, "(no CN)");
	ERR_clear_error();
}

/* ECDSA over SHA-256(msg) with a raw r‖s signature. 1 valid, 0 not. */
static int ecdsa_verify(EVP_PKEY *pk, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	uint8_t der[80], dgst[32];
	unsigned char *p = der;
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
	EVP_PKEY_CTX *ctx = NULL;
	int dl, ok = 0;

	if (!s || !r || !ss || ECDSA_SIG_set0(s, r, ss) != 1) {
		BN_free(r);
		BN_free(ss);
		goto out;
	}
	dl = i2d_ECDSA_SIG(s, &p);
	if (dl <= 0)
		goto out;
	SHA256(msg, len, dgst);
	ctx = EVP_PKEY_CTX_new(pk, NULL);
	ok = ctx && EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_verify(ctx, der, (size_t)dl, dgst, 32) == 1;
out:
	ECDSA_SIG_free(s);
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

static EVP_PKEY *raw_p256_key(const uint8_t key[64])
{
	uint8_t point[65];
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pk = NULL;
	char group[] = "prime256v1";

	point[0] = 0x04;
	memcpy(point + 1, key, 64);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
	params[2] = OSSL_PARAM_construct_end();
	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return pk;
}

int mse_verify_ecdsa_raw(const uint8_t key[64], const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	EVP_PKEY *pk = raw_p256_key(key);
	int ok = pk && ecdsa_verify(pk, msg, len, sig);

	EVP_PKEY_free(pk);
	return ok;
}

/* ------------------------------------------------------------------ */
/* the verification context                                            */

struct vctx {
	const struct mse_verify_policy *pol;
	struct mse_verify_result *res;
	struct mse_err *err;
	struct mse_verify_cache *cache;
	time_t now;
	X509 *root; /* borrowed from the PCK chain */
	time_t from, until;
	int time_flags; /* a window was outside and accepted: result depends on now */
};

static int step_fail(struct vctx *v, enum mse_verify_step s)
{
	v->res->steps[s] = MSE_STEP_FAILED;
	v->res->failed_step = s;
	mse_err_step(v->err, step_names[s]);
	return -1;
}

#define FAILF(v, s, field, ...) (step_fail((v), (s)), mse_err_field((v)->err, (field), __VA_ARGS__))

/* Appends "a b" to the result's notes, once. */
static void note(struct vctx *v, const char *a, const char *b)
{
	char item[256];
	size_t n = strlen(v->res->notes);

	snprintf(item, sizeof(item), "%s %s", a, b);
	if (strstr(v->res->notes, item))
		return;
	if (n + 4 < sizeof(v->res->notes))
		snprintf(v->res->notes + n, sizeof(v->res->notes) - n, "%s%s", n ? "; " : "", item);
}

/*
 * A validity window of a piece of collateral. hard: a certificate of the
 * quote's PCK chain, always an error outside its window (QVL: PCK chain
 * "expired" / "not yet valid"). Otherwise outside the window is an error
 * unless the policy accepts expired collateral; then it is recorded.
 */
static int window(struct vctx *v, enum mse_verify_step s, const char *what, time_t nb, time_t na, int hard)
{
	char a[32], b[32], n[32], msg[128];
	int late = v->now > na, early = v->now < nb;

	if (nb > v->from)
		v->from = nb;
	if (na < v->until)
		v->until = na;
	if (!late && !early)
		return 0;
	mse_tcb_format_time(nb, a);
	mse_tcb_format_time(na, b);
	mse_tcb_format_time(v->now, n);
	if (hard || !v->pol->accept_expired_collateral)
		return FAILF(v, s, what, "%s: valid from %s until %s, now is %s%s", early ? "not yet valid" : "expired",
			     a, b, n, hard ? "" : " (--accept-expired-collateral accepts it)");
	v->time_flags = 1;
	v->res->flags |= early ? MSE_VERIFY_F_COLLATERAL_NOT_YET : MSE_VERIFY_F_COLLATERAL_EXPIRED;
	if (v->res->steps[s] != MSE_STEP_FAILED)
		v->res->steps[s] = MSE_STEP_WARN;
	snprintf(msg, sizeof(msg), "%s (valid %s..%s)", early ? "not yet valid" : "expired", a, b);
	note(v, what, msg);
	return 0;
}

static int cert_window(struct vctx *v, enum mse_verify_step s, X509 *x, const char *what, int hard)
{
	time_t nb, na;

	if (asn1_to_time(X509_get0_notBefore(x), &nb) || asn1_to_time(X509_get0_notAfter(x), &na))
		return FAILF(v, s, what, "unreadable validity dates");
	return window(v, s, what, nb, na, hard);
}

/* child signed by parent, names chained. */
static int link_ok(X509 *child, X509 *parent)
{
	/*
	 * Issuer name = parent's subject, and the signature. (X509_check_issued
	 * would also decode every extension; trust here comes from the pinned
	 * root, and only Intel's root can sign below it.)
	 */
	int ok = X509_NAME_cmp(X509_get_issuer_name(child), X509_get_subject_name(parent)) == 0 &&
		 X509_verify(child, X509_get0_pubkey(parent)) == 1;

	ERR_clear_error();
	return ok;
}

/* ---- [pck-chain] ---- */
static int check_root(struct vctx *v, enum mse_verify_step s, const uint8_t h[32], const char *what)
{
	uint8_t intel[32];
	char got[65];

	if (mse_hex_decode_exact(intel, 32, MSE_INTEL_ROOT_SHA256, 64) != 0)
		return FAILF(v, s, what, "bad pinned hash");
	if (memcmp(h, intel, 32) == 0)
		return 0;
	if (v->pol->allow_simulation && v->pol->sim_root_der) {
		uint8_t sh[32];

		SHA256(v->pol->sim_root_der, v->pol->sim_root_len, sh);
		if (memcmp(h, sh, 32) == 0) {
			v->res->flags |= MSE_VERIFY_F_SIMULATION;
			return 0;
		}
	}
	hexs(got, sizeof(got), h, 32);
	return FAILF(v, s, what,
		     "root CA is not trusted: expected the Intel SGX Root CA (SHA-256 %s)%s, got SHA-256 %s", MSE_INTEL_ROOT_SHA256,
		     v->pol->allow_simulation ? " or the simulation root" : "", got);
}

static int pck_chain(struct vctx *v, const struct mse_quote *q, struct chain *ch)
{
	static const char *const names[] = {"PCK certificate", "PCK CA certificate", "root CA certificate"};

	if (q->cert_type != MSE_QUOTE_CERT_PCK_CHAIN)
		return FAILF(v, MSE_STEP_PCK_CHAIN, "certification_data.type",
			     "expected 5 (PCK certificate chain), got %u: %s", q->cert_type,
			     q->cert_type == MSE_QUOTE_CERT_PPID_ENC3 || q->cert_type < 5
				     ? "the quote carries an encrypted PPID, not its PCK chain; it cannot be verified offline"
				     : "unsupported certification data");
	if (pem_chain(v->cache, q->cert_data, q->cert_len, ch) < 2)
		return FAILF(v, MSE_STEP_PCK_CHAIN, "certification_data",
			     "expected a PEM chain PCK leaf, PCK CA, root CA (%d certificates parsed)", ch->n);
	if (check_root(v, MSE_STEP_PCK_CHAIN, ch->h[ch->n - 1], "root CA certificate"))
		return -1;
	v->root = ch->x[ch->n - 1];
	for (int i = 0; i + 1 < ch->n; i++)
		if (!link_ok(ch->x[i], ch->x[i + 1])) {
			char a[128], b[128];

			subject_cn(ch->x[i], a, sizeof(a));
			subject_cn(ch->x[i + 1], b, sizeof(b));
			return FAILF(v, MSE_STEP_PCK_CHAIN, "certification_data",
				     "\"%s\" is not signed by \"%s\" (broken chain)", a, b);
		}
	for (int i = 0; i < ch->n; i++)
		if (cert_window(v, MSE_STEP_PCK_CHAIN, ch->x[i], names[i == ch->n - 1 ? 2 : i ? 1 : 0], 1))
			return -1;
	v->res->steps[MSE_STEP_PCK_CHAIN] = MSE_STEP_OK;
	return 0;
}

/* ---- [crl] ---- */
static int crl_check(struct vctx *v, const struct mse_blob *b, const char *what, X509 *issuer, X509 *const *subjects,
		     int nsub, int *present)
{
	X509_CRL *crl;
	time_t nb = 0, na = 0;
	int ret = -1;

	*present = 0;
	if (!b->p) {
		v->res->flags |= MSE_VERIFY_F_CRL_MISSING;
		if (!v->pol->allow_missing_crl)
			return FAILF(v, MSE_STEP_CRL, what,
				     "missing: revocation cannot be checked (--allow-missing-crl accepts it)");
		v->time_flags = 1; /* not cacheable either: depends on the policy's leniency */
		note(v, what, "missing (accepted)");
		v->res->steps[MSE_STEP_CRL] = MSE_STEP_WARN;
		return 0;
	}
	*present = 1;
	crl = crl_load(v->cache, b, what, v->err);
	if (!crl)
		return step_fail(v, MSE_STEP_CRL);
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0) {
		char a[128], got[256];

		subject_cn(issuer, a, sizeof(a));
		X509_NAME_oneline(X509_CRL_get_issuer(crl), got, sizeof(got));
		FAILF(v, MSE_STEP_CRL, what, "issuer: expected \"%s\", got \"%s\"", a, got);
		goto out;
	}
	if (X509_CRL_verify(crl, X509_get0_pubkey(issuer)) != 1) {
		ERR_clear_error();
		FAILF(v, MSE_STEP_CRL, what, "signature does not verify with its issuer's key");
		goto out;
	}
	if (asn1_to_time(X509_CRL_get0_lastUpdate(crl), &nb) ||
	    (X509_CRL_get0_nextUpdate(crl) && asn1_to_time(X509_CRL_get0_nextUpdate(crl), &na))) {
		FAILF(v, MSE_STEP_CRL, what, "unreadable thisUpdate/nextUpdate");
		goto out;
	}
	if (!X509_CRL_get0_nextUpdate(crl))
		na = (time_t)0x7fffffff;
	if (window(v, MSE_STEP_CRL, what, nb, na, 0))
		goto out;
	for (int i = 0; i < nsub; i++) {
		X509_REVOKED *rev = NULL;

		if (!subjects[i])
			continue;
		if (X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(subjects[i])) == 1) {
			char a[128];

			subject_cn(subjects[i], a, sizeof(a));
			FAILF(v, MSE_STEP_CRL, what, "\"%s\" is revoked", a);
			goto out;
		}
	}
	ret = 0;
out:
	ERR_clear_error();
	X509_CRL_free(crl);
	return ret;
}

/* ---- [tcb-info] / [qe-identity]: chain, signature over the exact span ---- */
/*
 * known/known_chain: a signer already verified from identical chain bytes
 * (Intel signs TCB info and QE identity with the same certificate): its
 * chain is not verified twice.
 */
static int signed_json(struct vctx *v, enum mse_verify_step s, const struct mse_blob *body, const struct mse_blob *chain_pem,
		       const char *member, X509 *known, const struct mse_blob *known_chain, struct mse_jspan *span,
		       X509 **signer_out)
{
	struct chain ch = {0};
	struct mse_jspan sig;
	uint8_t sigb[64];
	X509 *list[8];
	int n = 0, ret = -1;
	char cn[128];

	*signer_out = NULL;
	if (!body->p)
		return FAILF(v, s, member, "missing from the collateral");
	if (!chain_pem->p)
		return FAILF(v, s, member, "no issuer chain: the signing certificate is unknown");
	if (mse_jspan_member((const char *)body->p, body->len, member, span, v->err) != 0 ||
	    mse_jspan_member((const char *)body->p, body->len, "signature", &sig, v->err) != 0)
		return step_fail(v, s);
	if (sig.len != 130 || sig.p[0] != '"' || mse_hex_decode_exact(sigb, 64, sig.p + 1, 128) != 0)
		return FAILF(v, s, "signature", "expected 128 hex digits (ECDSA r||s), got %zu bytes", sig.len);
	if (known && known_chain->p && known_chain->len == chain_pem->len &&
	    memcmp(known_chain->p, chain_pem->p, chain_pem->len) == 0) {
		if (!ecdsa_verify(X509_get0_pubkey(known), (const uint8_t *)span->p, span->len, sigb)) {
			subject_cn(known, cn, sizeof(cn));
			return FAILF(v, s, member, "ECDSA signature over the %s object (%zu bytes) does not verify with \"%s\"",
				     member, span->len, cn);
		}
		X509_up_ref(known);
		*signer_out = known;
		return 0;
	}
	if (pem_chain(v->cache, chain_pem->p, chain_pem->len, &ch) < 1)
		return FAILF(v, s, "issuer chain", "no PEM certificate could be parsed");
	/* The root, if present, must be the same trusted root; it is never taken from here. */
	for (int i = 0; i < ch.n; i++)
		if (X509_cmp(ch.x[i], v->root) != 0)
			list[n++] = ch.x[i];
	if (n == 0) {
		FAILF(v, s, "issuer chain", "contains only the root CA, no signing certificate");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		X509 *parent = i + 1 < n ? list[i + 1] : v->root;

		if (!link_ok(list[i], parent)) {
			char a[128], b[128];

			subject_cn(list[i], a, sizeof(a));
			subject_cn(parent, b, sizeof(b));
			FAILF(v, s, "issuer chain", "\"%s\" is not signed by \"%s\"", a, b);
			goto out;
		}
	}
	if (!ecdsa_verify(X509_get0_pubkey(list[0]), (const uint8_t *)span->p, span->len, sigb)) {
		subject_cn(list[0], cn, sizeof(cn));
		FAILF(v, s, member, "ECDSA signature over the %s object (%zu bytes) does not verify with \"%s\"", member,
		      span->len, cn);
		goto out;
	}
	/*
	 * Only Intel's TCB Signing key may sign TCB info and identities: any
	 * other Intel-rooted key (a platform's PCK) must not (QVL checks the
	 * subject too). The simulation root has its own signer name.
	 */
	subject_cn(list[0], cn, sizeof(cn));
	if (!(v->res->flags & MSE_VERIFY_F_SIMULATION) && strcmp(cn, "Intel SGX TCB Signing") != 0) {
		FAILF(v, s, "issuer chain", "signer: expected \"Intel SGX TCB Signing\", got \"%s\"", cn);
		goto out;
	}
	for (int i = 0; i < n; i++)
		if (cert_window(v, s, list[i], i ? "TCB signing CA certificate" : "TCB signing certificate", 0))
			goto out;
	X509_up_ref(list[0]);
	*signer_out = list[0];
	ret = 0;
out:
	chain_free(&ch);
	return ret;
}

static void add_advisories(struct mse_verify_result *r, const char *list)
{
	char buf[1024], *save = NULL, *tok;

	if (!list || !*list)
		return;
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(r->advisories), tl = strlen(tok);
		const char *p = r->advisories;
		int dup = 0;

		while ((p = strstr(p, tok)) != NULL) {
			if ((p == r->advisories || p[-1] == ',') && (p[tl] == 0 || p[tl] == ','))
				dup = 1;
			p += tl;
		}
		if (!dup && n + tl + 2 < sizeof(r->advisories))
			snprintf(r->advisories + n, sizeof(r->advisories) - n, "%s%s", n ? "," : "", tok);
	}
}

/* Sort the advisory list so output does not depend on collateral order. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sort_advisories(struct mse_verify_result *r)
{
	char buf[1024], *items[128], *save = NULL, *tok;
	size_t n = 0, off = 0;

	snprintf(buf, sizeof(buf), "%s", r->advisories);
	for (tok = strtok_r(buf, ",", &save); tok && n < 128; tok = strtok_r(NULL, ",", &save))
		items[n++] = tok;
	qsort(items, n, sizeof(items[0]), cmp_str);
	r->advisories[0] = 0;
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(r->advisories + off, sizeof(r->advisories) - off, "%s%s", i ? "," : "", items[i]);
}

/* [quote-signature] header ‖ [v5 descriptor ‖] body by the attestation key. */
static int quote_signature(struct vctx *v, const struct mse_quote *q, EVP_PKEY *attest)
{
	if (!ecdsa_verify(attest, q->signed_data, q->signed_len, q->sig))
		return FAILF(v, MSE_STEP_QUOTE_SIGNATURE, "signature",
			     "the quote's ECDSA signature over header and %s (%zu bytes) does not verify with the "
			     "attestation key",
			     mse_quote_is_tdx(q) ? "TD report" : "report body", q->signed_len);
	v->res->steps[MSE_STEP_QUOTE_SIGNATURE] = MSE_STEP_OK;
	return 0;
}

/*
 * [tdx-module] and [tcb-level] for a TDX quote (QVL TcbLevelCheck
 * "checkTcbLevel", TdxModuleCheck, TDRelaunchCheck). The QE's status is
 * merged by the caller, as for SGX.
 */
static int tdx_tcb(struct vctx *v, const struct mse_quote *q, const struct mse_tcb_info *ti)
{
	struct mse_verify_result *r = v->res;
	const struct mse_tdx_module *mod;
	enum mse_tcb_status module, tdx;
	size_t mlvl, sl, tl;

	if (mse_tdx_module_check(ti, &q->td, &module, &mod, &mlvl, v->err))
		return step_fail(v, MSE_STEP_TDX_MODULE);
	r->module_status = module;
	snprintf(r->tdx_module_id, sizeof(r->tdx_module_id), "%s", mod ? mod->id : "tdxModule");
	r->steps[MSE_STEP_TDX_MODULE] = module == MSE_TCB_UP_TO_DATE ? MSE_STEP_OK : MSE_STEP_WARN;
	if (mse_tcb_select_tdx(ti, &r->pck, q->td.tee_tcb_svn, &sl, &tl, v->err))
		return step_fail(v, MSE_STEP_TCB_LEVEL);
	r->sgx_status = ti->levels[sl].status;
	r->tdx_level_status = ti->levels[tl].status;
	tdx = mse_tdx_converge_module(r->tdx_level_status, module);
	if (q->td.v15 && tdx != MSE_TCB_REVOKED) {
		r->relaunch_checked = 1;
		if (mse_tdx_relaunch(ti, &q->td, r->sgx_status, tdx, module, r->qe_status, &tdx, v->err))
			return step_fail(v, MSE_STEP_TDX_MODULE);
	}
	r->platform_status = tdx;
	add_advisories(r, ti->levels[tl].advisories);
	if (mod && mlvl < mod->nlevels)
		add_advisories(r, mod->levels[mlvl].advisories);
	return 0;
}

/* ------------------------------------------------------------------ */
/* the platform part: everything that is the same for every quote of one
 * platform (QE, PCK, collateral). */
static int verify_platform(struct vctx *v, const struct mse_quote *q, const struct mse_collateral *coll,
			   EVP_PKEY **attest_out)
{
	struct mse_verify_result *r = v->res;
	struct chain ch = {0};
	struct mse_jspan tspan, qspan;
	struct mse_tcb_info *ti = NULL;
	struct mse_qe_identity *qi = NULL;
	uint8_t th[32], qh[32];
	X509 *tcb_signer = NULL, *qe_signer = NULL;
	EVP_PKEY *attest = NULL;
	uint8_t h[32];
	size_t lvl, qlvl;
	int present, ret = -1;

	*attest_out = NULL;
	if (pck_chain(v, q, &ch))
		goto out;
	if (mse_pck_from_x509(&r->pck, ch.x[0], v->err)) {
		step_fail(v, MSE_STEP_PCK);
		goto out;
	}
	r->steps[MSE_STEP_PCK] = MSE_STEP_OK;

	/* [tcb-info] and [qe-identity] signatures first: the CRL step needs the TCB signer. */
	if (signed_json(v, MSE_STEP_TCB_INFO, &coll->tcb_info, &coll->tcb_chain, "tcbInfo", NULL, NULL, &tspan,
			&tcb_signer))
		goto out;
	/* Parsed through the object cache, keyed by the exact signed text (its signature was just verified). */
	SHA256((const uint8_t *)tspan.p, tspan.len, th);
	ti = json_take(v->cache, CACHED_TCB_INFO, th);
	if (!ti && (!(ti = calloc(1, sizeof(*ti))) || mse_tcb_info_parse(ti, tspan.p, tspan.len, v->err))) {
		if (!ti)
			mse_err_field(v->err, "tcbInfo", "out of memory");
		free(ti);
		ti = NULL;
		step_fail(v, MSE_STEP_TCB_INFO);
		goto out;
	}
	/* QVL 4.1.2.4.9: the TCB info is for the quote's TEE. */
	if (mse_quote_is_tdx(q) != ti->tdx) {
		step_fail(v, MSE_STEP_TCB_INFO);
		mse_err_expect(v->err, "id", mse_quote_is_tdx(q) ? "\"TDX\" (TCB info v3 for a TDX quote)" : "\"SGX\" or v2",
			       ti->tdx ? "\"TDX\" (a TDX TCB info for an SGX quote)" : ti->version == 3 ? "\"SGX\"" : "v2 (no id)");
		goto out;
	}
	if (memcmp(ti->fmspc, r->pck.fmspc, 6) != 0 || memcmp(ti->pceid, r->pck.pceid, 2) != 0) {
		char a[32], b[32];

		if (memcmp(ti->fmspc, r->pck.fmspc, 6) != 0) {
			hexs(a, sizeof(a), r->pck.fmspc, 6);
			hexs(b, sizeof(b), ti->fmspc, 6);
			step_fail(v, MSE_STEP_TCB_INFO);
			mse_err_expect(v->err, "fmspc (PCK certificate vs TCB info)", a, b);
		} else {
			hexs(a, sizeof(a), r->pck.pceid, 2);
			hexs(b, sizeof(b), ti->pceid, 2);
			step_fail(v, MSE_STEP_TCB_INFO);
			mse_err_expect(v->err, "pceId (PCK certificate vs TCB info)", a, b);
		}
		goto out;
	}
	if (window(v, MSE_STEP_TCB_INFO, "TCB info", ti->issue_date, ti->next_update, 0))
		goto out;
	if (r->steps[MSE_STEP_TCB_INFO] == MSE_STEP_NOT_RUN)
		r->steps[MSE_STEP_TCB_INFO] = MSE_STEP_OK;

	if (signed_json(v, MSE_STEP_QE_IDENTITY, &coll->qe_identity, &coll->qe_chain, "enclaveIdentity", tcb_signer,
			&coll->tcb_chain, &qspan, &qe_signer))
		goto out;
	SHA256((const uint8_t *)qspan.p, qspan.len, qh);
	qi = json_take(v->cache, CACHED_QE_IDENTITY, qh);
	if (!qi && (!(qi = calloc(1, sizeof(*qi))) || mse_qe_identity_parse(qi, qspan.p, qspan.len, v->err))) {
		if (!qi)
			mse_err_field(v->err, "enclaveIdentity", "out of memory");
		free(qi);
		qi = NULL;
		step_fail(v, MSE_STEP_QE_IDENTITY);
		goto out;
	}
	/* QVL 4.1.2.4.14: "TD_QE" for a TDX quote, "QE" for SGX. */
	if (strcmp(qi->id, mse_quote_is_tdx(q) ? "TD_QE" : "QE") != 0) {
		step_fail(v, MSE_STEP_QE_IDENTITY);
		mse_err_expect(v->err, "id", mse_quote_is_tdx(q) ? "\"TD_QE\" (TDX quote)" : "\"QE\" (SGX quote)", qi->id);
		goto out;
	}
	if (window(v, MSE_STEP_QE_IDENTITY, "QE identity", qi->issue_date, qi->next_update, 0))
		goto out;

	/* [crl] root CRL: PCK CA(s) and TCB signers; PCK CRL: the PCK leaf. */
	{
		X509 *subs[10];
		int ns = 0;

		for (int i = 1; i + 1 < ch.n; i++)
			subs[ns++] = ch.x[i];
		subs[ns++] = tcb_signer;
		subs[ns++] = qe_signer;
		if (crl_check(v, &coll->root_crl, "root CA CRL", v->root, subs, ns, &present))
			goto out;
		if (crl_check(v, &coll->pck_crl, "PCK CRL", ch.x[1], &ch.x[0], 1, &present))
			goto out;
		if (r->steps[MSE_STEP_CRL] == MSE_STEP_NOT_RUN)
			r->steps[MSE_STEP_CRL] = MSE_STEP_OK;
	}

	/* [qe-report] the QE report is signed by the PCK key. */
	if (!ecdsa_verify(X509_get0_pubkey(ch.x[0]), q->qe_report.raw, MSE_SGX_REPORT_BODY_SIZE, q->qe_report_sig)) {
		FAILF(v, MSE_STEP_QE_REPORT, "qe_report_signature", "does not verify with the PCK certificate's key");
		goto out;
	}
	r->steps[MSE_STEP_QE_REPORT] = MSE_STEP_OK;

	/* [qe-binding] report_data[0:32] = SHA-256(attestation key ‖ QE authentication data). */
	{
		EVP_MD_CTX *sc = EVP_MD_CTX_new();
		char a[65], b[65];
		int ok = sc && EVP_DigestInit_ex(sc, EVP_sha256(), NULL) == 1 &&
			 EVP_DigestUpdate(sc, q->attest_key, MSE_QUOTE_KEY_SIZE) == 1 &&
			 EVP_DigestUpdate(sc, q->qe_auth, q->qe_auth_len) == 1 && EVP_DigestFinal_ex(sc, h, NULL) == 1;

		EVP_MD_CTX_free(sc);
		if (!ok) {
			FAILF(v, MSE_STEP_QE_BINDING, "qe_report.report_data", "SHA-256 failed");
			goto out;
		}
		if (CRYPTO_memcmp(h, q->qe_report.report_data, 32) != 0) {
			hexs(a, sizeof(a), h, 32);
			hexs(b, sizeof(b), q->qe_report.report_data, 32);
			step_fail(v, MSE_STEP_QE_BINDING);
			mse_err_expect(v->err, "qe_report.report_data[0:32] = SHA-256(attest_key||qe_auth_data)", a, b);
			goto out;
		}
		if (memcmp(q->qe_report.report_data + 32, (const uint8_t[32]){0}, 32) != 0) {
			FAILF(v, MSE_STEP_QE_BINDING, "qe_report.report_data[32:64]", "expected zeros");
			goto out;
		}
		r->steps[MSE_STEP_QE_BINDING] = MSE_STEP_OK;
	}

	/* [qe-identity] the QE is Intel's, and its TCB status. */
	if (mse_qe_identity_match(qi, &q->qe_report, &r->qe_status, &qlvl, v->err)) {
		step_fail(v, MSE_STEP_QE_IDENTITY);
		goto out;
	}
	if (qlvl < qi->nlevels)
		add_advisories(r, qi->levels[qlvl].advisories);
	if (r->steps[MSE_STEP_QE_IDENTITY] == MSE_STEP_NOT_RUN)
		r->steps[MSE_STEP_QE_IDENTITY] = MSE_STEP_OK;

	attest = raw_p256_key(q->attest_key);
	if (!attest) {
		FAILF(v, MSE_STEP_QUOTE_SIGNATURE, "attest_key", "not a valid P-256 point");
		goto out;
	}
	if (mse_quote_is_tdx(q)) {
		/* QVL 4.1.2.4.16 before 4.1.2.4.17: the TD report is signed before it is evaluated. */
		if (quote_signature(v, q, attest) || tdx_tcb(v, q, ti))
			goto out;
	} else {
		/* [tcb-level] */
		if (mse_tcb_select(ti, &r->pck, &lvl, v->err)) {
			step_fail(v, MSE_STEP_TCB_LEVEL);
			goto out;
		}
		r->platform_status = ti->levels[lvl].status;
		add_advisories(r, ti->levels[lvl].advisories);
	}
	sort_advisories(r);
	r->status = mse_tcb_converge(r->platform_status, r->qe_status);
	r->steps[MSE_STEP_TCB_LEVEL] = MSE_STEP_OK;

	*attest_out = attest;
	ret = 0;
out:
	if (ret)
		EVP_PKEY_free(attest);
	X509_free(tcb_signer);
	X509_free(qe_signer);
	if (ti)
		json_put(v->cache, CACHED_TCB_INFO, th, ti);
	if (qi)
		json_put(v->cache, CACHED_QE_IDENTITY, qh, qi);
	chain_free(&ch);
	return ret;
}

/* Key of the platform cache: everything verify_platform reads. */
static void platform_key(const struct mse_verify_policy *pol, const struct mse_quote *q,
			 const struct mse_collateral *c, uint8_t key[32])
{
	const struct mse_blob *bl[] = {&c->tcb_info, &c->tcb_chain, &c->qe_identity, &c->qe_chain, &c->pck_crl, &c->root_crl};
	uint8_t flags[4] = {(uint8_t)pol->accept_expired_collateral, (uint8_t)pol->allow_missing_crl,
			    (uint8_t)pol->allow_simulation, 1};
	EVP_MD_CTX *sc = EVP_MD_CTX_new();

	memset(key, 0, 32);
	if (!sc || EVP_DigestInit_ex(sc, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(sc);
		return;
	}
	EVP_DigestUpdate(sc, "mse-verify-platform-v1", 22);
	EVP_DigestUpdate(sc, flags, sizeof(flags));
	if (pol->allow_simulation && pol->sim_root_der)
		EVP_DigestUpdate(sc, pol->sim_root_der, pol->sim_root_len);
	for (size_t i = 0; i < sizeof(bl) / sizeof(bl[0]); i++) {
		uint64_t n = bl[i]->p ? bl[i]->len : UINT64_MAX;

		EVP_DigestUpdate(sc, &n, sizeof(n));
		if (bl[i]->p)
			EVP_DigestUpdate(sc, bl[i]->p, bl[i]->len);
	}
	EVP_DigestUpdate(sc, q->cert_data, q->cert_len);
	EVP_DigestUpdate(sc, q->qe_report.raw, MSE_SGX_REPORT_BODY_SIZE);
	EVP_DigestUpdate(sc, q->qe_report_sig, sizeof(q->qe_report_sig));
	EVP_DigestUpdate(sc, q->qe_auth, q->qe_auth_len);
	EVP_DigestUpdate(sc, q->attest_key, sizeof(q->attest_key));
	if (mse_quote_is_tdx(q)) {
		/* The TDX evaluation also reads the module and its SVNs: same platform, same values. */
		EVP_DigestUpdate(sc, "tdx", 3);
		EVP_DigestUpdate(sc, q->td.tee_tcb_svn, 16);
		EVP_DigestUpdate(sc, &q->td.v15, sizeof(q->td.v15));
		EVP_DigestUpdate(sc, q->td.tee_tcb_svn2, 16);
		EVP_DigestUpdate(sc, q->td.mr_signer_seam, 48);
		EVP_DigestUpdate(sc, q->td.seam_attributes, 8);
	}
	EVP_DigestFinal_ex(sc, key, NULL);
	EVP_MD_CTX_free(sc);
}

/* Measurements are compared in constant time (they may be policy secrets of a verifier service). */
static int tdx_policy_given(const struct mse_verify_policy *pol)
{
	return pol->mrtd || pol->rtmr[0] || pol->rtmr[1] || pol->rtmr[2] || pol->rtmr[3] || pol->mrconfigid ||
	       pol->mrowner || pol->mrseam;
}

static int measure_eqn(struct vctx *v, const char *field, const uint8_t *want, const uint8_t *got, size_t n)
{
	char a[97], b[97];

	if (!want || CRYPTO_memcmp(want, got, n) == 0)
		return 0;
	hexs(a, sizeof(a), want, n);
	hexs(b, sizeof(b), got, n);
	step_fail(v, MSE_STEP_MEASUREMENT);
	return mse_err_expect(v->err, field, a, b);
}

static int measure_eq(struct vctx *v, const char *field, const uint8_t *want, const uint8_t *got)
{
	return measure_eqn(v, field, want, got, 32);
}

/* [td-attributes] then [measurement] for a TD: run after [tcb-status]. */
static int td_policy(struct vctx *v, const struct mse_td_report *td)
{
	const struct mse_verify_policy *pol = v->pol;
	uint64_t attr = mse_quote_td_attributes(td);
	static const uint8_t zero[48];
	char name[16], b[97];

	if ((attr & MSE_TD_ATTR_DEBUG) && !pol->allow_debug_td) {
		step_fail(v, MSE_STEP_TD_ATTRIBUTES);
		return mse_err_expect(v->err, "td_attributes.DEBUG", "0 (production TD; --allow-debug-td accepts it)",
				      "1 (debug TD: the host can read and change its memory)");
	}
	if (!(attr & MSE_TD_ATTR_SEPT_VE_DISABLE) && !pol->allow_sept_ve) {
		step_fail(v, MSE_STEP_TD_ATTRIBUTES);
		return mse_err_expect(v->err, "td_attributes.SEPT_VE_DISABLE",
				      "1 (EPT violations on pending pages not delivered to the TD as #VE; "
				      "--allow-sept-ve accepts 0)",
				      "0 (the host can inject #VE through pending pages)");
	}
	if (td->v15 && CRYPTO_memcmp(td->mr_service_td, zero, 48) != 0 && !pol->allow_service_td) {
		hexs(b, sizeof(b), td->mr_service_td, 48);
		step_fail(v, MSE_STEP_TD_ATTRIBUTES);
		return mse_err_expect(v->err, "mr_service_td", "all zeros (no service TD bound; --allow-service-td accepts one)",
				      b);
	}
	v->res->steps[MSE_STEP_TD_ATTRIBUTES] =
		(attr & MSE_TD_ATTR_DEBUG) || !(attr & MSE_TD_ATTR_SEPT_VE_DISABLE) ||
				(td->v15 && CRYPTO_memcmp(td->mr_service_td, zero, 48) != 0)
			? MSE_STEP_WARN
			: MSE_STEP_OK;
	if (pol->mrenclave || pol->mrsigner || pol->check_isvprodid || pol->check_min_isvsvn)
		return FAILF(v, MSE_STEP_MEASUREMENT, pol->mrenclave ? "mrenclave" : pol->mrsigner ? "mrsigner" : "isvprodid",
			     "an SGX enclave identity was expected, but the quote is a TDX TD quote");
	if (measure_eqn(v, "mrtd", pol->mrtd, td->mr_td, 48))
		return -1;
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "rtmr%d", i);
		if (measure_eqn(v, name, pol->rtmr[i], td->rtmr[i], 48))
			return -1;
	}
	if (measure_eqn(v, "mrconfigid", pol->mrconfigid, td->mr_config_id, 48) ||
	    measure_eqn(v, "mrowner", pol->mrowner, td->mr_owner, 48) ||
	    measure_eqn(v, "mrseam", pol->mrseam, td->mr_seam, 48))
		return -1;
	v->res->steps[MSE_STEP_MEASUREMENT] = tdx_policy_given(pol) ? MSE_STEP_OK : MSE_STEP_NOT_CHECKED;
	return 0;
}

static void status_list(unsigned mask, char *out, size_t n)
{
	size_t off = 0;

	out[0] = 0;
	for (int s = 1; s < MSE_TCB_STATUS_COUNT; s++)
		if (mask & MSE_TCB_MASK(s))
			off += (size_t)snprintf(out + off, n - off, "%s%s", off ? "," : "", mse_tcb_status_name(s));
}

/* [tcb-status] the converged status is in the accepted set (default: UpToDate only). */
static int tcb_status_check(struct vctx *v)
{
	struct mse_verify_result *res = v->res;
	unsigned mask = v->pol->accept_status ? v->pol->accept_status : MSE_TCB_MASK(MSE_TCB_UP_TO_DATE);
	char acc[256];

	if (!(mask & MSE_TCB_MASK(res->status))) {
		status_list(mask, acc, sizeof(acc));
		return FAILF(v, MSE_STEP_TCB_STATUS, "tcbStatus",
			     "expected one of %s, got %s (platform %s, QE %s; advisories: %s); "
			     "--accept-tcb-status %s accepts it",
			     acc, mse_tcb_status_name(res->status), mse_tcb_status_name(res->platform_status),
			     mse_tcb_status_name(res->qe_status), res->advisories[0] ? res->advisories : "none",
			     mse_tcb_status_name(res->status));
	}
	res->steps[MSE_STEP_TCB_STATUS] = res->status == MSE_TCB_UP_TO_DATE ? MSE_STEP_OK : MSE_STEP_WARN;
	return 0;
}

int mse_verify_quote(const uint8_t *quote, size_t len, const struct mse_collateral *coll,
		     const struct mse_verify_policy *pol, struct mse_verify_cache *cache,
		     struct mse_verify_result *res, struct mse_err *err)
{
	struct vctx v = {pol, res, err, cache, pol->now ? pol->now : time(NULL), NULL, 0, (time_t)0x7fffffffffffffffLL, 0};
	struct mse_quote q;
	struct plat_entry *hit = NULL;
	EVP_PKEY *attest = NULL;
	uint8_t key[32], vendor[16];
	int ret = -1;

	memset(res, 0, sizeof(*res));
	res->now = v.now;
	if (mse_quote_parse(&q, quote, len, pol->strict ? MSE_QUOTE_STRICT : 0, err)) {
		step_fail(&v, MSE_STEP_PARSE);
		return -1;
	}
	res->quote_version = q.version;
	res->report = q.body;
	res->report.raw = NULL;
	res->tdx = mse_quote_is_tdx(&q);
	res->body_type = q.body_type;
	res->td = q.td;
	res->trailing = q.trailing;
	if (q.trailing) {
		char t[48];

		res->flags |= MSE_VERIFY_F_TRAILING;
		snprintf(t, sizeof(t), "%zu bytes (tolerated)", q.trailing);
		note(&v, "trailing data after the quote:", t);
	}
	if (mse_hex_decode_exact(vendor, 16, MSE_INTEL_QE_VENDOR_ID, 32) != 0 || memcmp(vendor, q.qe_vendor_id, 16) != 0) {
		char got[33];

		hexs(got, sizeof(got), q.qe_vendor_id, 16);
		step_fail(&v, MSE_STEP_PARSE);
		return mse_err_expect(err, "header.qe_vendor_id", MSE_INTEL_QE_VENDOR_ID " (Intel QE)", got);
	}
	res->steps[MSE_STEP_PARSE] = res->trailing ? MSE_STEP_WARN : MSE_STEP_OK;

	if (cache && (cache->modes & MSE_VERIFY_CACHE_PLATFORM)) {
		platform_key(pol, &q, coll, key);
		for (size_t i = 0; i < PLAT_SLOTS; i++) {
			struct plat_entry *e = &cache->plat[i];

			if (e->used && memcmp(e->key, key, 32) == 0 && v.now >= e->from && v.now <= e->until) {
				hit = e;
				break;
			}
		}
	}
	if (hit) {
		/* Same platform, collateral and policy, "now" inside every window: reuse. */
		unsigned keep = res->flags;
		char notes[sizeof(res->notes)];

		memcpy(notes, res->notes, sizeof(notes));
		res->pck = hit->base.pck;
		res->sgx_status = hit->base.sgx_status;
		res->tdx_level_status = hit->base.tdx_level_status;
		res->module_status = hit->base.module_status;
		res->relaunch_checked = hit->base.relaunch_checked;
		memcpy(res->tdx_module_id, hit->base.tdx_module_id, sizeof(res->tdx_module_id));
		res->steps[MSE_STEP_TDX_MODULE] = hit->base.steps[MSE_STEP_TDX_MODULE];
		res->platform_status = hit->base.platform_status;
		res->qe_status = hit->base.qe_status;
		res->status = hit->base.status;
		memcpy(res->advisories, hit->base.advisories, sizeof(res->advisories));
		for (int s = MSE_STEP_PCK_CHAIN; s <= MSE_STEP_TCB_LEVEL; s++)
			res->steps[s] = hit->base.steps[s];
		/* The quote's own signature is never taken from the cache. */
		res->steps[MSE_STEP_QUOTE_SIGNATURE] = MSE_STEP_NOT_RUN;
		res->flags = keep | hit->base.flags | MSE_VERIFY_F_CACHED;
		memcpy(res->notes, notes, sizeof(notes));
		attest = hit->attest;
		EVP_PKEY_up_ref(attest);
	} else {
		if (verify_platform(&v, &q, coll, &attest))
			goto out;
		if (cache && (cache->modes & MSE_VERIFY_CACHE_PLATFORM) && !v.time_flags) {
			struct plat_entry *e = &cache->plat[cache->next_plat++ % PLAT_SLOTS];

			EVP_PKEY_free(e->attest);
			e->used = 1;
			memcpy(e->key, key, 32);
			e->from = v.from;
			e->until = v.until;
			e->base = *res;
			/* Per-quote facts are not part of the platform's entry. */
			e->base.flags &= ~(MSE_VERIFY_F_TRAILING | MSE_VERIFY_F_CACHED);
			e->base.steps[MSE_STEP_QUOTE_SIGNATURE] = MSE_STEP_NOT_RUN;
			e->attest = attest;
			EVP_PKEY_up_ref(attest);
		}
	}

	/* [quote-signature] (already done by verify_platform for TDX, unless cached). */
	if (res->steps[MSE_STEP_QUOTE_SIGNATURE] != MSE_STEP_OK && quote_signature(&v, &q, attest))
		goto out;
	if (res->tdx) {
		/* Intel's verdict first, then the TD's identity and attributes. */
		if (tcb_status_check(&v))
			goto out;
		if (td_policy(&v, &q.td))
			goto out;
		res->ok = 1;
		ret = 0;
		goto out;
	}
	if (tdx_policy_given(pol)) {
		FAILF(&v, MSE_STEP_MEASUREMENT, pol->mrtd ? "mrtd" : "rtmr",
		      "a TDX TD identity was expected, but the quote is an SGX enclave quote");
		goto out;
	}

	/* [enclave] */
	if (mse_quote_is_debug(&q.body)) {
		step_fail(&v, MSE_STEP_ENCLAVE);
		mse_err_expect(err, "attributes.DEBUG", "0 (production enclave)", "1 (debug enclave: its memory is readable)");
		goto out;
	}
	res->steps[MSE_STEP_ENCLAVE] = MSE_STEP_OK;

	/* [measurement] */
	if (measure_eq(&v, "mrenclave", pol->mrenclave, q.body.mr_enclave) ||
	    measure_eq(&v, "mrsigner", pol->mrsigner, q.body.mr_signer))
		goto out;
	if (pol->check_isvprodid && q.body.isv_prod_id != pol->isvprodid) {
		char a[16], b[16];

		snprintf(a, sizeof(a), "%u", pol->isvprodid);
		snprintf(b, sizeof(b), "%u", q.body.isv_prod_id);
		step_fail(&v, MSE_STEP_MEASUREMENT);
		mse_err_expect(err, "isvprodid", a, b);
		goto out;
	}
	if (pol->check_min_isvsvn && q.body.isv_svn < pol->min_isvsvn) {
		char a[16], b[16];

		snprintf(a, sizeof(a), ">= %u", pol->min_isvsvn);
		snprintf(b, sizeof(b), "%u", q.body.isv_svn);
		step_fail(&v, MSE_STEP_MEASUREMENT);
		mse_err_expect(err, "isvsvn", a, b);
		goto out;
	}
	res->steps[MSE_STEP_MEASUREMENT] =
		pol->mrenclave || pol->mrsigner || pol->check_isvprodid || pol->check_min_isvsvn
			? MSE_STEP_OK
			: MSE_STEP_NOT_CHECKED;

	/* [tcb-status] */
	if (tcb_status_check(&v))
		goto out;
	res->ok = 1;
	ret = 0;
out:
	EVP_PKEY_free(attest);
	return ret;
}

int mse_verify_ratls(const struct mse_ratls *cert, const struct mse_collateral *coll,
		     const struct mse_verify_policy *pol, struct mse_verify_cache *cache,
		     struct mse_verify_result *res, struct mse_err *err)
{
	struct vctx v = {pol, res, err, cache, 0, NULL, 0, (time_t)0x7fffffffffffffffLL, 0};

	if (mse_verify_quote(cert->quote, cert->quote_len, coll, pol, cache, res, err) != 0)
		return -1;
	v.now = res->now;
	res->ok = 0;
	if (mse_ratls_check_binding(cert, res->tdx ? res->td.report_data : res->report.report_data, err) != 0)
		return step_fail(&v, MSE_STEP_BINDING);
	/* Self-signed by its own key: a certificate assembled from parts is refused. */
	if (X509_verify(cert->cert, X509_get0_pubkey(cert->cert)) != 1) {
		ERR_clear_error();
		return FAILF(&v, MSE_STEP_BINDING, "certificate", "the RA-TLS certificate's self-signature does not verify");
	}
	if (cert_window(&v, MSE_STEP_BINDING, cert->cert, "RA-TLS certificate", 0) != 0)
		return -1;
	if (res->steps[MSE_STEP_BINDING] == MSE_STEP_NOT_RUN)
		res->steps[MSE_STEP_BINDING] = MSE_STEP_OK;
	res->ok = 1;
	return 0;
}

const char *mse_verify_step_state_name(enum mse_step_state s)
{
	static const char *const names[] = {"not-run", "ok", "failed", "accepted", "not-checked"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

int mse_verify_policy_names_enclave(const struct mse_verify_policy *pol)
{
	return pol->mrenclave || (pol->mrsigner && pol->check_isvprodid && pol->check_min_isvsvn) ||
	       pol->mrtd;
}

int mse_verify_mrsigner_from_key(const uint8_t *pem, size_t len, uint8_t out[32], struct mse_err *err)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	BIGNUM *n = NULL;
	uint8_t le[512];
	int nb, ret = -1;

	if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA || EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) != 1) {
		mse_err_step(err, "measurement");
		mse_err_field(err, "signer-key", "expected a PEM RSA public key");
		goto out;
	}
	nb = BN_num_bytes(n);
	if (nb <= 0 || nb > (int)sizeof(le) || BN_bn2lebinpad(n, le, nb) != nb) {
		mse_err_step(err, "measurement");
		mse_err_field(err, "signer-key", "unsupported RSA modulus size");
		goto out;
	}
	/* SGX SIGSTRUCT stores the modulus little-endian; MRSIGNER hashes those bytes. */
	SHA256(le, (size_t)nb, out);
	ret = 0;
out:
	ERR_clear_error();
	BN_free(n);
	EVP_PKEY_free(pk);
	BIO_free(bio);
	return ret;
}

int mse_verify_parse_status_list(const char *list, unsigned *mask, struct mse_err *err)
{
	char buf[512], *save = NULL, *tok;

	*mask = 0;
	if (strlen(list) >= sizeof(buf)) {
		mse_err_field(err, "accept-tcb-status", "list too long");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		enum mse_tcb_status s;

		if (mse_tcb_status_parse(tok, &s) != 0) {
			mse_err_field(err, "accept-tcb-status",
				      "unknown status \"%s\": expected UpToDate, SWHardeningNeeded, ConfigurationNeeded, "
				      "ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded, Revoked, "
				      "TDRelaunchAdvised or TDRelaunchAdvisedConfigurationNeeded",
				      tok);
			return -1;
		}
		*mask |= MSE_TCB_MASK(s);
	}
	if (!*mask) {
		mse_err_field(err, "accept-tcb-status", "empty list");
		return -1;
	}
	*mask |= MSE_TCB_MASK(MSE_TCB_UP_TO_DATE);
	return 0;
}
