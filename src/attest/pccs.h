/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_pccs — fetch SGX verification collateral from a PCCS (or Intel's PCS)
 * and keep it in a local cache, in the collateral-directory layout the
 * verifier reads (see ../shared/vectors/dcap-quotes/README.md):
 *
 *     tcb_info.json               body of GET tcb?fmspc=FMSPC, byte for byte
 *     tcb_info_issuer_chain.pem   header TCB-Info-Issuer-Chain (v4) or
 *                                 SGX-TCB-Info-Issuer-Chain (v3), URL-decoded
 *     qe_identity.json            body of GET qe/identity
 *     qe_identity_issuer_chain.pem header SGX-Enclave-Identity-Issuer-Chain or
 *                                 Enclave-Identity-Issuer-Chain, URL-decoded
 *     pck_crl.der                 GET pckcrl?ca=platform|processor&encoding=der
 *     pck_crl_issuer_chain.pem    header SGX-PCK-CRL-Issuer-Chain
 *     root_ca_crl.der             GET rootcacrl (on Intel's PCS, which lacks
 *                                 it: MSE_PCCS_INTEL_ROOT_CRL_URL)
 *
 * (Intel "Provisioning Certification Service API v4" and the PCCS
 * `/sgx/certification/v4/` routes; a PCCS answers CRLs as DER or, in its
 * legacy 3.0 API, as hex text of the DER — both are stored as DER.)
 *
 * Cache: $XDG_CACHE_HOME/mse/collateral/<fmspc>-<ca>/ (default
 * ~/.cache/mse/collateral/), one directory per FMSPC and PCK CA type. A
 * directory is reused until the earliest nextUpdate of its four dated pieces
 * (TCB info, QE identity, PCK CRL, root CA CRL); it is replaced as a whole
 * (a new directory is written aside, then swapped in with
 * renameat2(RENAME_EXCHANGE)), so a reader never sees a mix of two fetches.
 *
 * Nothing here checks a signature: the collateral is authenticated by the
 * verifier (Intel's signatures, chained to the pinned Intel root). This
 * module only checks that each piece is well-formed, so that garbage from a
 * server is reported with its URL instead of being cached.
 *
 * Ownership: every function writes into caller-owned buffers; nothing is
 * left allocated.
 */
#ifndef MSE_PCCS_H
#define MSE_PCCS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"

/* Intel's QCNL configuration, where the PCCS URL of the machine lives. */
#define MSE_PCCS_QCNL_CONF "/etc/sgx_default_qcnl.conf"
/* Largest response accepted (a platform CA CRL is a few hundred KiB at most). */
#define MSE_PCCS_MAX_BODY (4u << 20)
#define MSE_PCCS_DEFAULT_TIMEOUT 30L
/* Where Intel publishes the Root CA CRL (the CRL distribution point of its certificates). */
#define MSE_PCCS_INTEL_ROOT_CRL_URL                                                                \
	"https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"

struct mse_pccs_opts {
	const char *url;       /* PCCS base URL; NULL: read from the QCNL config */
	const char *qcnl_conf; /* NULL: MSE_PCCS_QCNL_CONF */
	const char *ca_file;   /* PEM CA bundle for the PCCS's TLS cert; NULL: system CAs */
	const char *cache_dir; /* NULL: $XDG_CACHE_HOME/mse/collateral or ~/.cache/... */
	int offline;	       /* use the cache only; fail if missing or expired */
	int refresh;	       /* ignore a valid cache entry and fetch again */
	long timeout_s;	       /* whole-transfer timeout per request; 0: default */
	time_t now;	       /* expiry reference; 0: time(NULL) (tests and --now pin it) */
};

/* What mse_pccs_fetch_info did. */
struct mse_pccs_info {
	int from_cache;	     /* 1 if the cached directory was reused */
	time_t next_update;  /* earliest nextUpdate of the pieces */
	char next_piece[32]; /* which piece gives it, e.g. "pck_crl.der" */
	char base_url[512];  /* the PCCS base used ("" when from cache) */
};

/* Zeroes *o (all defaults). */
void mse_pccs_opts_init(struct mse_pccs_opts *o);

/*
 * Makes sure a current collateral directory exists for this FMSPC (12 hex
 * digits, any case) and PCK CA type ("platform" or "processor"), fetching it
 * from the PCCS when the cache has none or it has expired (or o->refresh),
 * and writes its path into out_dir. Offline: the cache only. Errors carry
 * step "pccs", the URL and HTTP status, or the cache path and what expired.
 * Collateral fetched fresh but already past its nextUpdate (a stale PCCS) is
 * stored and returned all the same: the verifier reports it as expired.
 */
int mse_pccs_fetch(const struct mse_pccs_opts *o, const char *fmspc_hex, const char *ca,
		   char *out_dir, size_t out_size, struct mse_err *err) MSE_MUST_CHECK;
/* As mse_pccs_fetch; info (may be NULL) says whether the cache was used. */
int mse_pccs_fetch_info(const struct mse_pccs_opts *o, const char *fmspc_hex, const char *ca,
			char *out_dir, size_t out_size, struct mse_pccs_info *info,
			struct mse_err *err) MSE_MUST_CHECK;

/*
 * As mse_pccs_fetch_info, for the platform that produced this quote: its
 * FMSPC and PCK CA type are read from the PCK certificate in the quote's
 * certification data (type 5). The chain is not verified here — it only
 * says what to fetch; the verifier checks everything afterwards.
 */
int mse_pccs_fetch_for_quote(const struct mse_pccs_opts *o, const uint8_t *quote, size_t len,
			     char *out_dir, size_t out_size, struct mse_pccs_info *info,
			     struct mse_err *err) MSE_MUST_CHECK;

/*
 * mse_pccs_fetch_for_quote, then the directory loaded into *coll (caller
 * frees with mse_collateral_free): the collateral to verify this quote, as
 * the coordinator and its replicas get it under SGX. Fails closed, step
 * "pccs" (nothing is verified without Intel's collateral).
 */
struct mse_collateral;
int mse_pccs_collateral_for_quote(const struct mse_pccs_opts *o, const uint8_t *quote, size_t len,
				  struct mse_collateral *coll, struct mse_err *err) MSE_MUST_CHECK;

/* ---- building blocks, exposed for the CLI and the tests ---------------- */

/*
 * The PCCS base URL to use: o->url if set, otherwise `collateral_service`
 * (when set) or `pccs_url` of the QCNL config. Normalised: a URL that already
 * names an API path (".../sgx/certification/vN/") is kept with a trailing
 * '/'; a bare host URL gets "/sgx/certification/v4/" appended. Only http://
 * and https:// are accepted.
 */
int mse_pccs_base_url(const struct mse_pccs_opts *o, char *out, size_t out_size,
		      struct mse_err *err) MSE_MUST_CHECK;
/*
 * Reads the PCCS URL from a QCNL config file (JSON with // and block
 * comments). Errors carry file:line:col.
 */
int mse_pccs_qcnl_url(const char *path, char *out, size_t out_size,
		      struct mse_err *err) MSE_MUST_CHECK;
/* Normalises url as mse_pccs_base_url does. */
int mse_pccs_normalize_url(const char *url, char *out, size_t out_size,
			   struct mse_err *err) MSE_MUST_CHECK;
/*
 * URL of the root CA CRL for a normalised base URL: base + "rootcacrl" on a
 * PCCS; MSE_PCCS_INTEL_ROOT_CRL_URL when base is Intel's PCS
 * (api.trustedservices.intel.com), which has no such route.
 */
int mse_pccs_root_crl_url(const char *base, char *out, size_t out_size,
			  struct mse_err *err) MSE_MUST_CHECK;
/* The cache directory for this FMSPC and CA (not created). */
int mse_pccs_cache_path(const struct mse_pccs_opts *o, const char *fmspc_hex, const char *ca,
			char *out, size_t out_size, struct mse_err *err) MSE_MUST_CHECK;
/*
 * Percent-decodes in[0..len) (RFC 3986 §2.1; '+' is kept: base64 uses it)
 * into out, NUL-terminated. out_size >= len + 1 always suffices. -1 on a
 * malformed escape or %00.
 */
int mse_pccs_url_decode(const char *in, size_t len, char *out, size_t out_size,
			size_t *out_len) MSE_MUST_CHECK;
/*
 * A CRL body as a PCCS sends it — DER, hex text of the DER (PCCS API 3.0),
 * or PEM — to DER in out (out_size >= len suffices). Checks it parses as
 * an X.509 CRL.
 */
int mse_pccs_crl_to_der(const uint8_t *body, size_t len, uint8_t *out, size_t out_size,
			size_t *out_len, struct mse_err *err) MSE_MUST_CHECK;
/*
 * Earliest nextUpdate among the dated pieces of a collateral directory; the
 * name of that piece goes to which (may be NULL). Fails if a piece is
 * missing or unreadable.
 */
int mse_pccs_dir_next_update(const char *dir, time_t *out, char *which, size_t which_size,
			     struct mse_err *err) MSE_MUST_CHECK;

#endif
