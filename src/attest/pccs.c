/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_pccs — PCCS/PCS v4 collateral client and cache. See pccs.h.
 *
 * Routes and headers follow Intel's "Provisioning Certification Service for
 * ECDSA Attestation" API v4 (and the PCCS that mirrors it): v3 of that API
 * named the TCB info chain header SGX-TCB-Info-Issuer-Chain, v4 names it
 * TCB-Info-Issuer-Chain; the QE identity header exists as
 * SGX-Enclave-Identity-Issuer-Chain and Enclave-Identity-Issuer-Chain. Header
 * values are the PEM chain, percent-encoded.
 */
#include "attest/pccs.h"
#include "attest/tcb.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attest/collateral.h"
#include "attest/pck.h"
#include "attest/quote.h"
#include "common/file.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/version.h"
#include "net/client.h"

#define FMSPC_HEX_LEN 12

void mse_pccs_opts_init(struct mse_pccs_opts *o)
{
	memset(o, 0, sizeof(*o));
}

/* ---- small parsers ------------------------------------------------------ */

static void fmt_time(time_t t, char *out, size_t size)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, size, "%lld", (long long)t);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int mse_pccs_url_decode(const char *in, size_t len, char *out, size_t out_size, size_t *out_len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)in[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return -1;
			hi = hexval((unsigned char)in[i + 1]);
			lo = hexval((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = hi * 16 + lo;
			i += 2;
		}
		if (o + 1 >= out_size)
			return -1;
		out[o++] = (char)c;
	}
	if (o >= out_size)
		return -1;
	out[o] = '\0';
	if (out_len)
		*out_len = o;
	return 0;
}

static int all_hex_ws(const uint8_t *p, size_t len, size_t *ndigits)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (hexval(p[i]) >= 0)
			n++;
		else if (!isspace(p[i]))
			return 0;
	}
	*ndigits = n;
	return n > 0 && n % 2 == 0;
}

int mse_pccs_crl_to_der(const uint8_t *body, size_t len, uint8_t *out, size_t out_size,
			size_t *out_len, struct mse_err *err)
{
	size_t nd, n = 0;
	const unsigned char *q;
	X509_CRL *crl = NULL;
	int rc = -1;

	if (len == 0)
		return mse_err_set(err, "empty CRL");
	if (body[0] == 0x30) {
		/* DER: an X.509 CRL is a SEQUENCE (RFC 5280 §5.1). */
		if (len > out_size)
			return mse_err_set(err, "CRL of %zu bytes too large", len);
		memcpy(out, body, len);
		n = len;
	} else if (all_hex_ws(body, len, &nd)) {
		/* PCCS API 3.0: the DER as hex text. */
		if (nd / 2 > out_size)
			return mse_err_set(err, "CRL of %zu bytes too large", nd / 2);
		for (size_t i = 0; i < len;) {
			int hi, lo;

			while (i < len && isspace(body[i]))
				i++;
			if (i >= len)
				break;
			hi = hexval(body[i++]);
			while (i < len && isspace(body[i]))
				i++;
			lo = i < len ? hexval(body[i++]) : -1;
			if (hi < 0 || lo < 0)
				return mse_err_set(err, "CRL: malformed hex text");
			out[n++] = (uint8_t)(hi * 16 + lo);
		}
	} else if (len > 10 && memcmp(body, "-----BEGIN", 10) == 0) {
		BIO *b = BIO_new_mem_buf(body, (int)(len > INT_MAX ? INT_MAX : len));
		unsigned char *der = NULL;
		int dl;

		crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		if (!crl) {
			ERR_clear_error();
			return mse_err_set(err, "CRL: PEM text does not hold an X509 CRL");
		}
		dl = i2d_X509_CRL(crl, &der);
		if (dl <= 0 || (size_t)dl > out_size) {
			OPENSSL_free(der);
			X509_CRL_free(crl);
			return mse_err_set(err, "CRL: cannot re-encode PEM CRL as DER");
		}
		memcpy(out, der, (size_t)dl);
		n = (size_t)dl;
		OPENSSL_free(der);
		X509_CRL_free(crl);
		crl = NULL;
	} else {
		char first[8] = "";

		for (size_t i = 0; i < len && i < 3; i++)
			snprintf(first + 2 * i, sizeof(first) - 2 * i, "%02x", body[i]);
		return mse_err_set(err,
				   "CRL: expected DER, hex text or PEM, got %zu bytes starting %s",
				   len, first);
	}
	q = out;
	crl = d2i_X509_CRL(NULL, &q, (long)n);
	if (!crl || (size_t)(q - out) != n) {
		ERR_clear_error();
		mse_err_set(err, "CRL: %zu bytes do not parse as one DER X.509 CRL", n);
		goto out;
	}
	*out_len = n;
	rc = 0;
out:
	X509_CRL_free(crl);
	return rc;
}

/* ---- URLs and configuration -------------------------------------------- */

int mse_pccs_normalize_url(const char *url, char *out, size_t out_size, struct mse_err *err)
{
	size_t len;
	int n;

	if (!url || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
		return mse_err_expect(err, "pccs_url", "an http:// or https:// URL",
				      url ? url : "nothing");
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' || *p == 0x7f)
			return mse_err_field(err, "pccs_url",
					     "URL '%s' has a space, control character, '?' or '#'",
					     url);
	len = strlen(url);
	if (strstr(url, "/sgx/certification/v"))
		n = snprintf(out, out_size, "%s%s", url, url[len - 1] == '/' ? "" : "/");
	else {
		while (len > 8 && url[len - 1] == '/')
			len--;
		n = snprintf(out, out_size, "%.*s/sgx/certification/v4/", (int)len, url);
	}
	if (n < 0 || (size_t)n >= out_size)
		return mse_err_field(err, "pccs_url", "URL too long");
	return 0;
}

/*
 * QCNL's config is JSON with // and block comments (Intel's sample has
 * both). Blank the comments out — keeping newlines so jansson's line:column
 * still points into the file — and leave strings alone ("https://...").
 */
static void strip_json_comments(char *s, size_t len)
{
	enum { CODE, STR, LINE, BLOCK } st = CODE;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		switch (st) {
		case CODE:
			if (c == '"')
				st = STR;
			else if (c == '/' && i + 1 < len && s[i + 1] == '/') {
				st = LINE;
				s[i] = ' ';
			} else if (c == '/' && i + 1 < len && s[i + 1] == '*') {
				st = BLOCK;
				s[i] = s[i + 1] = ' ';
				i++;
			}
			break;
		case STR:
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '"')
				st = CODE;
			break;
		case LINE:
			if (c == '\n')
				st = CODE;
			else
				s[i] = ' ';
			break;
		case BLOCK:
			if (c == '*' && i + 1 < len && s[i + 1] == '/') {
				s[i] = s[i + 1] = ' ';
				i++;
				st = CODE;
			} else if (c != '\n')
				s[i] = ' ';
			break;
		}
	}
}

int mse_pccs_qcnl_url(const char *path, char *out, size_t out_size, struct mse_err *err)
{
	uint8_t *text = NULL;
	size_t len;
	json_t *root = NULL, *v;
	json_error_t jerr;
	const char *url = NULL, *key = "pccs_url";
	int rc = -1;

	if (mse_file_read(path, 1u << 20, &text, &len, err) != 0) {
		mse_err_prefix(err, "QCNL config (the PCCS URL; or pass --pccs URL)");
		return -1;
	}
	strip_json_comments((char *)text, len);
	root = json_loadb((const char *)text, len, 0, &jerr);
	if (!root) {
		mse_err_at(err, path, jerr.line, jerr.column, "invalid JSON: %s", jerr.text);
		goto out;
	}
	/* Intel: collateral_service, when set, serves verification collateral. */
	v = json_object_get(root, "collateral_service");
	if (json_is_string(v) && json_string_length(v) > 0) {
		url = json_string_value(v);
		key = "collateral_service";
	} else {
		v = json_object_get(root, "pccs_url");
		if (json_is_string(v))
			url = json_string_value(v);
	}
	if (!url) {
		mse_err_file(err, path);
		mse_err_field(err, "pccs_url", "no \"pccs_url\" string in the QCNL config");
		goto out;
	}
	if (mse_pccs_normalize_url(url, out, out_size, err) != 0) {
		mse_err_file(err, path);
		if (err)
			snprintf(err->field, sizeof(err->field), "%s", key);
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	free(text);
	return rc;
}

int mse_pccs_root_crl_url(const char *base, char *out, size_t out_size, struct mse_err *err)
{
	static const char pcs[] = "https://api.trustedservices.intel.com/";
	int n;

	/*
	 * Intel's PCS has no rootcacrl route (a PCCS does): the Intel SGX Root CA
	 * CRL is published at the CRL distribution point its certificates name.
	 */
	if (strncasecmp(base, pcs, sizeof(pcs) - 1) == 0)
		n = snprintf(out, out_size, "%s", MSE_PCCS_INTEL_ROOT_CRL_URL);
	else
		n = snprintf(out, out_size, "%srootcacrl", base);
	if (n < 0 || (size_t)n >= out_size)
		return mse_err_set(err, "URL too long: %srootcacrl", base);
	return 0;
}

int mse_pccs_base_url(const struct mse_pccs_opts *o, char *out, size_t out_size,
		      struct mse_err *err)
{
	if (o->url && *o->url)
		return mse_pccs_normalize_url(o->url, out, out_size, err);
	return mse_pccs_qcnl_url(o->qcnl_conf ? o->qcnl_conf : MSE_PCCS_QCNL_CONF, out, out_size,
				 err);
}

static int check_key(const char *fmspc_hex, const char *ca, char fmspc[FMSPC_HEX_LEN + 1],
		     const char **ca_norm, struct mse_err *err)
{
	if (!fmspc_hex || strlen(fmspc_hex) != FMSPC_HEX_LEN)
		return mse_err_expect(err, "fmspc", "12 hex digits", fmspc_hex ? fmspc_hex : "");
	for (int i = 0; i < FMSPC_HEX_LEN; i++) {
		if (hexval((unsigned char)fmspc_hex[i]) < 0)
			return mse_err_expect(err, "fmspc", "12 hex digits", fmspc_hex);
		fmspc[i] = (char)tolower((unsigned char)fmspc_hex[i]);
	}
	fmspc[FMSPC_HEX_LEN] = '\0';
	if (ca && strcasecmp(ca, "platform") == 0)
		*ca_norm = "platform";
	else if (ca && strcasecmp(ca, "processor") == 0)
		*ca_norm = "processor";
	else
		return mse_err_expect(err, "ca", "\"platform\" or \"processor\"", ca ? ca : "");
	return 0;
}

int mse_pccs_cache_path(const struct mse_pccs_opts *o, const char *fmspc_hex, const char *ca,
			char *out, size_t out_size, struct mse_err *err)
{
	char fmspc[FMSPC_HEX_LEN + 1];
	const char *ca_norm, *xdg, *home;
	int n;

	if (check_key(fmspc_hex, ca, fmspc, &ca_norm, err) != 0)
		return -1;
	if (o->cache_dir && *o->cache_dir)
		n = snprintf(out, out_size, "%s/%s-%s", o->cache_dir, fmspc, ca_norm);
	else if ((xdg = getenv("XDG_CACHE_HOME")) && xdg[0] == '/')
		/* XDG Base Directory spec: a relative value is invalid, ignore it. */
		n = snprintf(out, out_size, "%s/mse/collateral/%s-%s", xdg, fmspc, ca_norm);
	else {
		home = getenv("HOME");
		if (!home || !*home) {
			struct passwd *pw = getpwuid(getuid());

			home = pw ? pw->pw_dir : NULL;
		}
		if (!home)
			return mse_err_set(
			    err, "no cache directory: neither XDG_CACHE_HOME nor HOME is set");
		n = snprintf(out, out_size, "%s/.cache/mse/collateral/%s-%s", home, fmspc, ca_norm);
	}
	if (n < 0 || (size_t)n >= out_size)
		return mse_err_set(err, "cache path too long");
	return 0;
}

/* ---- dates of a collateral directory ------------------------------------ */

static int json_next_update(const uint8_t *text, size_t len, const char *obj_key, time_t *out,
			    struct mse_err *err)
{
	json_error_t jerr;
	json_t *root = json_loadb((const char *)text, len, 0, &jerr), *obj, *nu;
	int rc = -1;

	if (!root) {
		mse_err_at(err, NULL, jerr.line, jerr.column, "invalid JSON: %s", jerr.text);
		return -1;
	}
	obj = json_object_get(root, obj_key);
	if (!json_is_object(obj)) {
		mse_err_field(err, obj_key, "no \"%s\" object", obj_key);
		goto out;
	}
	nu = json_object_get(obj, "nextUpdate");
	if (!json_is_string(nu) || mse_tcb_parse_time(json_string_value(nu), out) != 0) {
		mse_err_expect(err, "nextUpdate", "a date like 2025-01-31T12:00:00Z",
			       json_is_string(nu) ? json_string_value(nu) : "nothing");
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

static int crl_next_update(const uint8_t *der, size_t len, time_t *out, struct mse_err *err)
{
	const unsigned char *q = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &q, (long)len);
	const ASN1_TIME *nu;
	struct tm tm;
	int rc = -1;

	if (!crl) {
		ERR_clear_error();
		return mse_err_set(err, "not a DER X.509 CRL");
	}
	nu = X509_CRL_get0_nextUpdate(crl);
	if (!nu || ASN1_TIME_to_tm(nu, &tm) != 1) {
		mse_err_set(err, "CRL has no nextUpdate");
		goto out;
	}
	*out = timegm(&tm);
	rc = 0;
out:
	X509_CRL_free(crl);
	return rc;
}

static const char *const dated_pieces[] = {"tcb_info.json", "qe_identity.json", "pck_crl.der",
					   "root_ca_crl.der"};
static const char *const chain_pieces[] = {
    "tcb_info_issuer_chain.pem", "qe_identity_issuer_chain.pem", "pck_crl_issuer_chain.pem"};

int mse_pccs_dir_next_update(const char *dir, time_t *out, char *which, size_t which_size,
			     struct mse_err *err)
{
	time_t best = 0;
	int have = 0;

	for (size_t i = 0; i < sizeof(dated_pieces) / sizeof(dated_pieces[0]); i++) {
		char path[PATH_MAX];
		uint8_t *data = NULL;
		size_t len;
		time_t t;
		int r;

		if (snprintf(path, sizeof(path), "%s/%s", dir, dated_pieces[i]) >=
		    (int)sizeof(path))
			return mse_err_set(err, "path too long");
		if (mse_file_read(path, MSE_PCCS_MAX_BODY, &data, &len, err) != 0)
			return -1;
		if (i == 0)
			r = json_next_update(data, len, "tcbInfo", &t, err);
		else if (i == 1)
			r = json_next_update(data, len, "enclaveIdentity", &t, err);
		else
			r = crl_next_update(data, len, &t, err);
		free(data);
		if (r != 0) {
			mse_err_file(err, path);
			return -1;
		}
		if (!have || t < best) {
			best = t;
			have = 1;
			if (which)
				snprintf(which, which_size, "%s", dated_pieces[i]);
		}
	}
	*out = best;
	return 0;
}

/* ---- HTTP --------------------------------------------------------------- */

struct resp {
	struct mse_client_body b; /* b.max = MSE_PCCS_MAX_BODY */
	const char *const *want; /* header names of interest, NULL-terminated */
	char *hdr;		 /* value of the first of them seen (malloc'd) */
	char hdr_name[64];
};

static void resp_reset(struct resp *r)
{
	free(r->b.p);
	free(r->hdr);
	memset(&r->b, 0, sizeof(r->b));
	r->b.max = MSE_PCCS_MAX_BODY;
	r->hdr = NULL;
	r->hdr_name[0] = '\0';
}

static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t len = size * n, name_len, vs, ve;
	const char *colon;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* A new response (after a 100 or a redirect): forget the previous headers. */
		free(r->hdr);
		r->hdr = NULL;
		r->hdr_name[0] = '\0';
		return len;
	}
	colon = memchr(p, ':', len);
	if (!colon || r->hdr)
		return len;
	name_len = (size_t)(colon - p);
	for (size_t i = 0; r->want && r->want[i]; i++) {
		if (strlen(r->want[i]) != name_len || strncasecmp(p, r->want[i], name_len) != 0)
			continue;
		vs = name_len + 1;
		while (vs < len && (p[vs] == ' ' || p[vs] == '\t'))
			vs++;
		ve = len;
		while (ve > vs && (p[ve - 1] == '\r' || p[ve - 1] == '\n' || p[ve - 1] == ' ' ||
				   p[ve - 1] == '\t'))
			ve--;
		r->hdr = strndup(p + vs, ve - vs);
		snprintf(r->hdr_name, sizeof(r->hdr_name), "%s", r->want[i]);
		break;
	}
	return len;
}

struct client {
	CURL *curl;
	char base[512];
	const struct mse_pccs_opts *o;
	char errbuf[CURL_ERROR_SIZE];
	char url[1024]; /* of the last request, for error messages */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void snippet(const uint8_t *p, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 2 < size && i < 160; i++)
		out[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '.';
	out[o] = '\0';
}

/* GET base+path into r; anything but 200 is an error naming the URL. */
static int http_get(struct client *c, const char *path, const char *const *want, struct resp *r,
		    struct mse_err *err)
{
	char *url = c->url;
	long status = 0;
	CURLcode rc;

	resp_reset(r);
	r->want = want;
	/* path is relative to the base URL, or a whole URL (the root CA CRL on PCS). */
	if (snprintf(url, sizeof(c->url), "%s%s", strncmp(path, "http", 4) == 0 ? "" : c->base,
		     path) >= (int)sizeof(c->url))
		return mse_err_set(err, "URL too long: %s%s", c->base, path);
	c->errbuf[0] = '\0';
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &r->b);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, r);
	mse_debug("pccs: GET %s", url);
	rc = curl_easy_perform(c->curl);
	if (r->b.too_big)
		return mse_err_set(err, "GET %s: response larger than %u bytes", url,
				   MSE_PCCS_MAX_BODY);
	if (rc != CURLE_OK)
		return mse_err_set(err, "GET %s: %s", url,
				   c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		char body[200];

		snippet(r->b.p, r->b.len, body, sizeof(body));
		return mse_err_set(err, "GET %s: HTTP %ld (expected 200)%s%s%s", url, status,
				   status == 404 ? ", not found on this PCCS" : "",
				   r->b.len ? ": " : "", body);
	}
	return 0;
}

static int client_open(struct client *c, const struct mse_pccs_opts *o, struct mse_err *err)
{
	long timeout = o->timeout_s > 0 ? o->timeout_s : MSE_PCCS_DEFAULT_TIMEOUT;

	memset(c, 0, sizeof(*c));
	c->o = o;
	if (mse_pccs_base_url(o, c->base, sizeof(c->base), err) != 0)
		return -1;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return mse_err_set(err, "libcurl: %s", curl_easy_strerror(curl_init_rc));
	c->curl = curl_easy_init();
	if (!c->curl)
		return mse_err_set(err, "libcurl: cannot create a handle");
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, timeout < 10 ? timeout : 10L);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_file && *o->ca_file)
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, o->ca_file);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "mse/" MSE_VERSION);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, mse_client_body_write);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, header_cb);
	return 0;
}

/* ---- validating and storing the pieces ---------------------------------- */

struct piece {
	const char *name; /* file name in the collateral directory */
	uint8_t *data;	  /* malloc'd */
	size_t len;
};

/* The URL-decoded issuer chain must hold at least one PEM certificate. */
static int take_chain(struct resp *r, const char *url_path, struct piece *pc, struct mse_err *err)
{
	char *dec = NULL;
	size_t dl;
	BIO *b = NULL;
	X509 *x;
	int n = 0, rc = -1;

	if (!r->hdr) {
		mse_err_set(err, "GET %s: no issuer chain header (%s%s%s)", url_path, r->want[0],
			    r->want[1] ? " or " : "", r->want[1] ? r->want[1] : "");
		return -1;
	}
	dec = malloc(strlen(r->hdr) + 1);
	if (!dec)
		return mse_err_set(err, "out of memory");
	if (mse_pccs_url_decode(r->hdr, strlen(r->hdr), dec, strlen(r->hdr) + 1, &dl) != 0) {
		mse_err_field(err, r->hdr_name, "GET %s: header is not valid percent-encoding",
			      url_path);
		goto out;
	}
	b = BIO_new_mem_buf(dec, (int)dl);
	while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	if (n == 0) {
		mse_err_field(err, r->hdr_name, "GET %s: header holds no PEM certificate",
			      url_path);
		goto out;
	}
	pc->data = (uint8_t *)dec;
	pc->len = dl;
	dec = NULL;
	rc = 0;
out:
	BIO_free(b);
	free(dec);
	return rc;
}

static int take_json(struct resp *r, const char *url_path, const char *obj_key, const char *fmspc,
		     struct piece *pc, struct mse_err *err)
{
	json_error_t jerr;
	json_t *root = json_loadb((const char *)r->b.p, r->b.len, 0, &jerr), *obj, *f;
	time_t t;
	int rc = -1;

	if (!root) {
		mse_err_set(err, "GET %s: body is not JSON (%d:%d: %s)", url_path, jerr.line,
			    jerr.column, jerr.text);
		return -1;
	}
	obj = json_object_get(root, obj_key);
	if (!json_is_object(obj) || !json_is_string(json_object_get(root, "signature"))) {
		mse_err_set(err, "GET %s: expected {\"%s\":{...},\"signature\":\"...\"}", url_path,
			    obj_key);
		goto out;
	}
	f = json_object_get(obj, "nextUpdate");
	if (!json_is_string(f) || mse_tcb_parse_time(json_string_value(f), &t) != 0) {
		mse_err_set(err, "GET %s: %s.nextUpdate is not a date", url_path, obj_key);
		goto out;
	}
	if (fmspc) {
		/* Some TCB infos carry the FMSPC in lower case: compare without case. */
		f = json_object_get(obj, "fmspc");
		if (!json_is_string(f) || strcasecmp(json_string_value(f), fmspc) != 0) {
			mse_err_set(err, "GET %s: tcbInfo.fmspc: expected %s, got %s", url_path,
				    fmspc, json_is_string(f) ? json_string_value(f) : "nothing");
			goto out;
		}
	}
	pc->data = r->b.p;
	pc->len = r->b.len;
	r->b.p = NULL;
	r->b.len = r->b.cap = 0;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

static int take_crl(struct resp *r, const char *url_path, struct piece *pc, struct mse_err *err)
{
	uint8_t *der = malloc(r->b.len ? r->b.len : 1);

	if (!der)
		return mse_err_set(err, "out of memory");
	if (mse_pccs_crl_to_der(r->b.p, r->b.len, der, r->b.len, &pc->len, err) != 0) {
		free(der);
		mse_err_prefix(err, "GET %s", url_path);
		return -1;
	}
	pc->data = der;
	return 0;
}

enum { P_TCB, P_TCB_CHAIN, P_QE, P_QE_CHAIN, P_PCK_CRL, P_PCK_CHAIN, P_ROOT_CRL, P_COUNT };

static int download(struct client *c, const char *fmspc_upper, const char *ca,
		    struct piece pcs[P_COUNT], struct mse_err *err)
{
	static const char *const tcb_hdr[] = {"TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain",
					      NULL};
	static const char *const qe_hdr[] = {"SGX-Enclave-Identity-Issuer-Chain",
					     "Enclave-Identity-Issuer-Chain", NULL};
	static const char *const crl_hdr[] = {"SGX-PCK-CRL-Issuer-Chain", NULL};
	struct resp r = {0};
	char path[128];
	int rc = -1;

	snprintf(path, sizeof(path), "tcb?fmspc=%s", fmspc_upper);
	if (http_get(c, path, tcb_hdr, &r, err) != 0 ||
	    take_json(&r, c->url, "tcbInfo", fmspc_upper, &pcs[P_TCB], err) != 0 ||
	    take_chain(&r, c->url, &pcs[P_TCB_CHAIN], err) != 0)
		goto out;
	if (http_get(c, "qe/identity", qe_hdr, &r, err) != 0 ||
	    take_json(&r, c->url, "enclaveIdentity", NULL, &pcs[P_QE], err) != 0 ||
	    take_chain(&r, c->url, &pcs[P_QE_CHAIN], err) != 0)
		goto out;
	snprintf(path, sizeof(path), "pckcrl?ca=%s&encoding=der", ca);
	if (http_get(c, path, crl_hdr, &r, err) != 0 ||
	    take_crl(&r, c->url, &pcs[P_PCK_CRL], err) != 0 ||
	    take_chain(&r, c->url, &pcs[P_PCK_CHAIN], err) != 0)
		goto out;
	if (mse_pccs_root_crl_url(c->base, path, sizeof(path), err) != 0 ||
	    http_get(c, path, NULL, &r, err) != 0 ||
	    take_crl(&r, c->url, &pcs[P_ROOT_CRL], err) != 0)
		goto out;
	rc = 0;
out:
	resp_reset(&r);
	return rc;
}

/*
 * Writes the pieces into a fresh directory beside final, then puts it in
 * place: rename() when final does not exist, else an atomic exchange
 * (renameat2 RENAME_EXCHANGE, Linux 3.15) and the old one is removed.
 */
static int store(const char *final, struct piece pcs[P_COUNT], struct mse_err *err)
{
	char tmp[PATH_MAX], parent[PATH_MAX], path[PATH_MAX];
	const char *slash = strrchr(final, '/');
	int rc = -1, made = 0;

	if (!slash ||
	    snprintf(parent, sizeof(parent), "%.*s", (int)(slash - final), final) >=
		(int)sizeof(parent) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp-XXXXXX", parent, slash + 1) >= (int)sizeof(tmp))
		return mse_err_set(err, "cache path too long: %s", final);
	if (mse_file_mkdirs(parent, 0700, err) != 0)
		return -1;
	if (!mkdtemp(tmp))
		return mse_err_set(err, "cannot create a directory in %s: %s", parent,
				   strerror(errno));
	made = 1;
	for (int i = 0; i < P_COUNT; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", tmp, pcs[i].name) >= (int)sizeof(path)) {
			mse_err_set(err, "path too long: %s", tmp);
			goto out;
		}
		if (mse_file_write_new(path, pcs[i].data, pcs[i].len, MSE_MODE_PUBLIC, err) != 0)
			goto out;
	}
	if (chmod(tmp, 0755) != 0 || mse_file_sync_dir(tmp) != 0) {
		mse_err_set(err, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, final) == 0) {
		made = 0;
	} else if ((errno == ENOTEMPTY || errno == EEXIST) &&
		   renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) == 0) {
		/* tmp now holds the previous cache entry. */
	} else {
		mse_err_set(err, "cannot move %s to %s: %s", tmp, final, strerror(errno));
		goto out;
	}
	mse_file_sync_dir(parent);
	rc = 0;
out:
	if (made) {
		struct mse_err ignore;

		if (mse_file_remove_tree(tmp, &ignore) != 0)
			mse_warn("pccs: cannot remove %s", tmp);
	}
	return rc;
}

static int cache_complete(const char *dir)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(chain_pieces) / sizeof(chain_pieces[0]); i++) {
		if (snprintf(path, sizeof(path), "%s/%s", dir, chain_pieces[i]) >=
			(int)sizeof(path) ||
		    access(path, R_OK) != 0)
			return 0;
	}
	return 1;
}

int mse_pccs_fetch(const struct mse_pccs_opts *o, const char *fmspc_hex, const char *ca,
		   char *out_dir, size_t out_size, struct mse_err *err)
{
	return mse_pccs_fetch_info(o, fmspc_hex, ca, out_dir, out_size, NULL, err);
}

int mse_pccs_fetch_info(const struct mse_pccs_opts *o, const char *fmspc_hex, const char *ca,
			char *out_dir, size_t out_size, struct mse_pccs_info *info,
			struct mse_err *err)
{
	char dir[PATH_MAX], fmspc[FMSPC_HEX_LEN + 1], upper[FMSPC_HEX_LEN + 1], when[32];
	char which[32] = "";
	const char *ca_norm;
	struct mse_pccs_info dummy;
	struct piece pcs[P_COUNT] = {
	    {"tcb_info.json"},	  {"tcb_info_issuer_chain.pem"},
	    {"qe_identity.json"}, {"qe_identity_issuer_chain.pem"},
	    {"pck_crl.der"},	  {"pck_crl_issuer_chain.pem"},
	    {"root_ca_crl.der"},
	};
	struct client c = {0};
	struct mse_err cerr;
	time_t now = o->now ? o->now : time(NULL), next = 0;
	int rc = -1, have_cache = 0;

	if (!info)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	mse_err_step(err, "pccs");
	if (check_key(fmspc_hex, ca, fmspc, &ca_norm, err) != 0 ||
	    mse_pccs_cache_path(o, fmspc, ca_norm, dir, sizeof(dir), err) != 0)
		return -1;
	for (int i = 0; i <= FMSPC_HEX_LEN; i++)
		upper[i] = (char)toupper((unsigned char)fmspc[i]);

	mse_err_clear(&cerr);
	if (mse_file_exists(dir)) {
		if (!cache_complete(dir))
			mse_err_set(&cerr, "incomplete cache entry");
		else if (mse_pccs_dir_next_update(dir, &next, which, sizeof(which), &cerr) == 0)
			have_cache = 1;
	}
	if (have_cache && now < next && !o->refresh) {
		mse_debug("pccs: using cached collateral %s", dir);
		info->from_cache = 1;
		goto done;
	}
	if (o->offline) {
		if (!mse_file_exists(dir))
			return mse_err_set(
			    err,
			    "offline: no cached collateral for FMSPC %s (%s CA) in %s; "
			    "fetch it once without --offline",
			    fmspc, ca_norm, dir);
		if (!have_cache) {
			char m[sizeof(cerr.msg) + 300];

			mse_err_str(&cerr, m, sizeof(m));
			return mse_err_set(
			    err, "offline: cached collateral in %s is unusable: %.900s", dir, m);
		}
		if (o->refresh)
			return mse_err_set(err, "offline and refresh are contradictory");
		fmt_time(next, when, sizeof(when));
		return mse_err_set(
		    err,
		    "offline: cached collateral in %s expired at %s (%s nextUpdate); "
		    "fetch it again without --offline, or pass --collateral %s to "
		    "verify with the expired collateral explicitly",
		    dir, when, which, dir);
	}
	if (client_open(&c, o, err) != 0)
		goto out;
	snprintf(info->base_url, sizeof(info->base_url), "%s", c.base);
	if (download(&c, upper, ca_norm, pcs, err) != 0 || store(dir, pcs, err) != 0)
		goto out;
	if (mse_pccs_dir_next_update(dir, &next, which, sizeof(which), err) != 0)
		goto out;
	if (now >= next) {
		fmt_time(next, when, sizeof(when));
		mse_warn("pccs: %s serves collateral that expired at %s (%s nextUpdate)", c.base,
			 when, which);
	}
	mse_debug("pccs: stored collateral in %s", dir);
done:
	if (snprintf(out_dir, out_size, "%s", dir) >= (int)out_size) {
		mse_err_set(err, "output buffer too small for %s", dir);
		goto out;
	}
	info->next_update = next;
	snprintf(info->next_piece, sizeof(info->next_piece), "%s", which);
	rc = 0;
out:
	for (int i = 0; i < P_COUNT; i++)
		free(pcs[i].data);
	if (c.curl)
		curl_easy_cleanup(c.curl);
	return rc;
}

int mse_pccs_fetch_for_quote(const struct mse_pccs_opts *o, const uint8_t *quote, size_t len,
			     char *out_dir, size_t out_size, struct mse_pccs_info *info,
			     struct mse_err *err)
{
	struct mse_quote q;
	struct mse_pck_info pck;
	STACK_OF(X509) *chain = NULL;
	char fmspc[2 * sizeof(pck.fmspc) + 1];
	int rc = -1;

	if (mse_quote_parse(&q, quote, len, 0, err) != 0)
		return -1;
	mse_err_step(err, "pccs");
	if (q.cert_type != MSE_QUOTE_CERT_PCK_CHAIN)
		return mse_err_set(
		    err,
		    "the quote's certification data is type %u, not a PCK chain (5): "
		    "its FMSPC is unknown, so no collateral can be fetched for it",
		    q.cert_type);
	chain = mse_collateral_pem_chain(q.cert_data, q.cert_len, "pccs", "quote PCK chain", err);
	if (!chain)
		return -1;
	if (mse_pck_from_x509(&pck, sk_X509_value(chain, 0), err) != 0)
		goto out;
	if (pck.ca == MSE_PCK_CA_UNKNOWN) {
		mse_err_step(err, "pccs");
		mse_err_set(err,
			    "the PCK certificate's issuer is neither the Intel SGX PCK Platform "
			    "CA nor the Processor CA: cannot tell which PCK CRL to fetch");
		goto out;
	}
	if (mse_hex_encode(fmspc, sizeof(fmspc), pck.fmspc, sizeof(pck.fmspc)) != 0) {
		mse_err_set(err, "cannot encode the FMSPC");
		goto out;
	}
	rc = mse_pccs_fetch_info(o, fmspc, mse_pck_ca_name(pck.ca), out_dir, out_size, info, err);
out:
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

int mse_pccs_collateral_for_quote(const struct mse_pccs_opts *o, const uint8_t *quote, size_t len,
				  struct mse_collateral *coll, struct mse_err *err)
{
	char dir[PATH_MAX];

	memset(coll, 0, sizeof(*coll));
	if (mse_pccs_fetch_for_quote(o, quote, len, dir, sizeof(dir), NULL, err) != 0)
		return -1;
	if (mse_collateral_load_dir(coll, dir, err) != 0) {
		mse_err_step(err, "pccs");
		return -1;
	}
	return 0;
}
