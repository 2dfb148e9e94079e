/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_verify — throughput of mse_verify_quote on a real quote with full
 * collateral (default: sgx3-dcapqvl at its "now"), in four configurations:
 *   (a) per-platform cache: chain, CRLs, collateral and QE checks verified
 *       once; each quote still gets parse + quote signature + policy;
 *   (b) everything each time, without any cache;
 *   (b') everything each time, parsed certificates/CRLs (and TCB info / QE
 *       identity) cached by the SHA-256 of their bytes;
 *   (d) the ECDSA verifications of one full verification alone (OpenSSL,
 *       objects pre-parsed): the floor (b) is measured against.
 * Times are CPU time of the benchmarking thread.
 * Usage: bench_verify [SET_DIR NOW] [SECONDS_PER_MODE]
 * Prints one line per mode, then the ratios; machine-readable "key=value".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attest/collateral.h"
#include "attest/jspan.h"
#include "attest/quote.h"
#include "attest/tcb.h"
#include "attest/verify.h"
#include "common/file.h"
#include "common/hex.h"

static double now_s(void)
{
	struct timespec ts;

	/*
	 * CPU time of this thread: the machine is shared, wall time would
	 * measure the neighbours. (openssl speed also reports CPU time.)
	 */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double secs_per_mode = 1.0;

/* Runs verify until secs_per_mode elapsed; returns microseconds per quote. */
static double run_verify(const uint8_t *q, size_t n, const struct mse_collateral *c, const struct mse_verify_policy *pol,
			 unsigned cache_modes, long *iters)
{
	struct mse_verify_cache *cache = cache_modes ? mse_verify_cache_new(cache_modes) : NULL;
	struct mse_verify_result res;
	struct mse_err e;
	double t0 = now_s(), t;
	long i = 0;

	do {
		for (int k = 0; k < 20; k++, i++)
			if (mse_verify_quote(q, n, c, pol, cache, &res, &e) != 0) {
				fprintf(stderr, "bench_verify: verification failed: [%s] %s: %s\n", e.step, e.field, e.msg);
				exit(1);
			}
		t = now_s() - t0;
	} while (t < secs_per_mode);
	mse_verify_cache_free(cache);
	*iters = i;
	return t * 1e6 / (double)i;
}

static EVP_PKEY *raw_key(const uint8_t k[64])
{
	/* via a tiny SubjectPublicKeyInfo: the fixed P-256 prefix ‖ 0x04 ‖ X ‖ Y */
	static const uint8_t spki[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
				       0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};
	uint8_t der[sizeof(spki) + 64];
	const unsigned char *p = der;

	memcpy(der, spki, sizeof(spki));
	memcpy(der + sizeof(spki), k, 64);
	return d2i_PUBKEY(NULL, &p, (long)sizeof(der));
}

static int ecdsa(EVP_PKEY *pk, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	uint8_t der[80], *p = der;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int dl, ok;

	ECDSA_SIG_set0(s, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
	dl = i2d_ECDSA_SIG(s, &p);
	ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk) == 1 &&
	     EVP_DigestVerify(ctx, der, (size_t)dl, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	ECDSA_SIG_free(s);
	return ok;
}

static STACK_OF(X509) *chain(const uint8_t *pem, size_t len)
{
	struct mse_err e;

	return mse_collateral_pem_chain(pem, len, "bench", "chain", &e);
}

/*
 * (d): the nine ECDSA verifications one full verification performs (quote,
 * QE report, TCB info, QE identity, PCK leaf, PCK CA, TCB signing cert,
 * root CA CRL, PCK CRL), objects pre-parsed.
 */
static double run_ecdsa(const uint8_t *qb, size_t n, const struct mse_collateral *c, long *iters, int *count)
{
	struct mse_quote q;
	struct mse_err e;
	struct mse_jspan ts, tsig, qs, qsig;
	uint8_t tsb[64], qsb[64];
	STACK_OF(X509) *pck, *tcb;
	X509_CRL *rootcrl, *pckcrl;
	EVP_PKEY *attest;
	double t0, t;
	long i = 0;

	if (mse_quote_parse(&q, qb, n, 0, &e) || mse_jspan_member((char *)c->tcb_info.p, c->tcb_info.len, "tcbInfo", &ts, &e) ||
	    mse_jspan_member((char *)c->tcb_info.p, c->tcb_info.len, "signature", &tsig, &e) ||
	    mse_jspan_member((char *)c->qe_identity.p, c->qe_identity.len, "enclaveIdentity", &qs, &e) ||
	    mse_jspan_member((char *)c->qe_identity.p, c->qe_identity.len, "signature", &qsig, &e) ||
	    mse_hex_decode_exact(tsb, 64, tsig.p + 1, 128) || mse_hex_decode_exact(qsb, 64, qsig.p + 1, 128)) {
		fprintf(stderr, "bench_verify: cannot prepare (d)\n");
		exit(1);
	}
	pck = chain(q.cert_data, q.cert_len);
	tcb = chain(c->tcb_chain.p, c->tcb_chain.len);
	rootcrl = mse_collateral_crl(c->root_crl.p, c->root_crl.len, "root", &e);
	pckcrl = mse_collateral_crl(c->pck_crl.p, c->pck_crl.len, "pck", &e);
	attest = raw_key(q.attest_key);
	if (!pck || !tcb || !rootcrl || !pckcrl || !attest || sk_X509_num(pck) < 3) {
		fprintf(stderr, "bench_verify: (d) needs the full collateral\n");
		exit(1);
	}
	{
		X509 *leaf = sk_X509_value(pck, 0), *ca = sk_X509_value(pck, 1), *root = sk_X509_value(pck, 2);
		X509 *signer = sk_X509_value(tcb, 0);
		int ok = 1;

		*count = 9;
		t0 = now_s();
		do {
			ok &= ecdsa(attest, q.signed_data, q.signed_len, q.sig);                         /* quote */
			ok &= ecdsa(X509_get0_pubkey(leaf), q.qe_report.raw, 384, q.qe_report_sig);       /* QE report */
			ok &= ecdsa(X509_get0_pubkey(signer), (const uint8_t *)ts.p, ts.len, tsb);        /* TCB info */
			ok &= ecdsa(X509_get0_pubkey(signer), (const uint8_t *)qs.p, qs.len, qsb);        /* QE identity */
			ok &= X509_verify(leaf, X509_get0_pubkey(ca)) == 1;                              /* PCK chain */
			ok &= X509_verify(ca, X509_get0_pubkey(root)) == 1;
			ok &= X509_verify(signer, X509_get0_pubkey(root)) == 1;                          /* TCB chain */
			ok &= X509_CRL_verify(rootcrl, X509_get0_pubkey(root)) == 1;                     /* CRLs */
			ok &= X509_CRL_verify(pckcrl, X509_get0_pubkey(ca)) == 1;
			i++;
			t = now_s() - t0;
		} while (t < secs_per_mode);
		if (!ok) {
			fprintf(stderr, "bench_verify: an ECDSA verification failed in (d)\n");
			exit(1);
		}
	}
	sk_X509_pop_free(pck, X509_free);
	sk_X509_pop_free(tcb, X509_free);
	X509_CRL_free(rootcrl);
	X509_CRL_free(pckcrl);
	EVP_PKEY_free(attest);
	*iters = i;
	return t * 1e6 / (double)i;
}

int main(int argc, char **argv)
{
	const char *vec = getenv("MSE_VECTORS");
	char dir[4096], qpath[4200];
	const char *now_txt = "2025-07-19T10:01:17Z";
	struct mse_collateral c;
	struct mse_verify_policy pol = {0};
	struct mse_err e = {0};
	uint8_t *q;
	size_t n;
	long ia, ib, ibc, id;
	int nd;
	double a, b, bc, d;

	if (argc >= 3) {
		snprintf(dir, sizeof(dir), "%s", argv[1]);
		now_txt = argv[2];
	} else {
		snprintf(dir, sizeof(dir), "%s/dcap-quotes/sgx3-dcapqvl", vec ? vec : "../shared/vectors");
	}
	if (argc >= 4)
		secs_per_mode = atof(argv[3]);
	else if (argc == 2)
		secs_per_mode = atof(argv[1]);
	if (secs_per_mode <= 0)
		secs_per_mode = 1.0;
	snprintf(qpath, sizeof(qpath), "%s/quote.bin", dir);
	if (mse_collateral_load_dir(&c, dir, &e) || mse_file_read(qpath, 1 << 20, &q, &n, &e) ||
	    mse_tcb_parse_time(now_txt, &pol.now)) {
		fprintf(stderr, "bench_verify: cannot load %s: %s\n", dir, e.msg);
		return 1;
	}
	pol.accept_status = ~0u;

	a = run_verify(q, n, &c, &pol, MSE_VERIFY_CACHE_PLATFORM | MSE_VERIFY_CACHE_OBJECTS, &ia);
	b = run_verify(q, n, &c, &pol, 0, &ib);
	bc = run_verify(q, n, &c, &pol, MSE_VERIFY_CACHE_OBJECTS, &ibc);
	d = run_ecdsa(q, n, &c, &id, &nd);

	printf("set=%s\n", dir);
	printf("a_cached_us=%.1f a_quotes_per_s=%.0f iters=%ld\n", a, 1e6 / a, ia);
	printf("b_full_nocache_us=%.1f b_quotes_per_s=%.0f iters=%ld\n", b, 1e6 / b, ib);
	printf("b_full_certcache_us=%.1f b_certcache_quotes_per_s=%.0f iters=%ld\n", bc, 1e6 / bc, ibc);
	printf("d_ecdsa_only_us=%.1f ecdsa_per_verify=%d iters=%ld\n", d, nd, id);
	printf("ratio_b_over_d=%.2f ratio_bcache_over_d=%.2f\n", b / d, bc / d);
	free(q);
	mse_collateral_free(&c);
	return 0;
}
