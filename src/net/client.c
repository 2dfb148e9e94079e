/* SPDX-License-Identifier: Apache-2.0 */
#include "net/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "common/b64.h"

size_t mse_client_body_write(char *data, size_t size, size_t nmemb, void *body)
{
	struct mse_client_body *b = body;
	size_t n = size * nmemb;

	if (n > b->max - b->len) {
		b->too_big = 1;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			return 0;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = 0;
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *user)
{
	struct mse_client_resp *r = user;
	size_t n = size * nmemb;
	static const char name[] = "mse-status:";

	if (n > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
		const char *v = data + sizeof(name) - 1;
		size_t k = n - (sizeof(name) - 1);

		while (k && (*v == ' ' || *v == '\t'))
			v++, k--;
		while (k && (v[k - 1] == '\r' || v[k - 1] == '\n' || v[k - 1] == ' '))
			k--;
		if (k >= sizeof(r->mse_status))
			k = sizeof(r->mse_status) - 1;
		memcpy(r->mse_status, v, k);
		r->mse_status[k] = 0;
	}
	return n;
}

int mse_client_spki_pin(const char *pem_path, char *out, size_t size, struct mse_err *err)
{
	unsigned char *der = NULL, hash[SHA256_DIGEST_LENGTH];
	char b64[64];
	X509 *x = NULL;
	FILE *f;
	int len, rc = -1;

	f = fopen(pem_path, "r");
	if (!f)
		return mse_err_field(err, pem_path, "cannot open the pinned certificate");
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x)
		return mse_err_field(err, pem_path, "not a PEM certificate");
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	if (len <= 0) {
		mse_err_field(err, pem_path, "cannot encode the certificate's public key");
		goto out;
	}
	SHA256(der, (size_t)len, hash);
	if (mse_b64_encode(b64, sizeof(b64), hash, sizeof(hash), MSE_B64_STD) != 0 ||
	    snprintf(out, size, "sha256//%s", b64) >= (int)size) {
		mse_err_set(err, "pin buffer too small");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(der);
	X509_free(x);
	return rc;
}

static void host_for_url(const char *name, char *out, size_t size)
{
	/* An IPv6 literal goes in brackets in a URL. */
	if (strchr(name, ':'))
		snprintf(out, size, "[%s]", name);
	else
		snprintf(out, size, "%s", name);
}

int mse_client_request(const struct mse_client_opts *o, const char *method, const char *path,
		       const char *content_type, const void *body, size_t body_len,
		       struct mse_client_resp *resp, struct mse_err *err)
{
	char url[1024], urlhost[300], resolve_entry[600], pin[128], ctype[160];
	const char *name = o->server_name && *o->server_name ? o->server_name : o->host;
	struct curl_slist *resolve = NULL, *headers = NULL;
	struct mse_client_body sink = {.max = o->max_body ? o->max_body : (size_t)16 << 20};
	char curl_err[CURL_ERROR_SIZE] = "";
	CURL *c = NULL;
	CURLcode cc;
	int rc = -1;

	memset(resp, 0, sizeof(*resp));
	if (!o->plain_http && !o->pin_pem && !o->ca_bundle)
		return mse_err_set(err, "refusing an HTTPS request without a pinned certificate or CA");
	if (path[0] != '/')
		return mse_err_field(err, "path", "expected a path starting with '/', got \"%s\"", path);
	/* A truncated URL would be another request (another path, another host): refuse it. */
	if (strlen(name) + 2 >= sizeof(urlhost) || strlen(o->host) + strlen(name) + 8 >= sizeof(resolve_entry))
		return mse_err_field(err, "host", "name too long: \"%.60s...\"", name);
	host_for_url(name, urlhost, sizeof(urlhost));
	if (snprintf(url, sizeof(url), "%s://%s:%u%s", o->plain_http ? "http" : "https", urlhost,
		     (unsigned)o->port, path) >= (int)sizeof(url))
		return mse_err_field(err, "path", "URL too long (%zu-byte path, limit about %zu)",
				     strlen(path), sizeof(url) - strlen(urlhost) - 16);
	c = curl_easy_init();
	if (!c)
		return mse_err_set(err, "libcurl failed to initialise");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms ? o->timeout_ms : 10000L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->timeout_ms ? o->timeout_ms : 10000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mse_client_body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, o->plain_http ? "http" : "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	if (strcmp(name, o->host) != 0) {
		/* Connect to host while checking the certificate against name. */
		snprintf(resolve_entry, sizeof(resolve_entry), "%s:%u:%s", name, (unsigned)o->port,
			 o->host);
		resolve = curl_slist_append(NULL, resolve_entry);
		curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	}
	if (!o->plain_http) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
		curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
		if (o->pin_pem) {
			if (mse_client_spki_pin(o->pin_pem, pin, sizeof(pin), err) != 0)
				goto out;
			curl_easy_setopt(c, CURLOPT_CAINFO, o->pin_pem);
			curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
			curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, pin);
		} else {
			curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_bundle);
		}
	}
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		snprintf(ctype, sizeof(ctype), "Content-Type: %s",
			 content_type ? content_type : "application/octet-stream");
		headers = curl_slist_append(headers, ctype);
		/* No "Expect: 100-continue" round trip for small provisioning bodies. */
		headers = curl_slist_append(headers, "Expect:");
		if (o->extra_header)
			headers = curl_slist_append(headers, o->extra_header);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0) {
		mse_err_field(err, "method", "expected GET, HEAD or POST, got \"%s\"", method);
		goto out;
	}
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		if (sink.too_big)
			mse_err_set(err, "%s: response larger than %zu bytes", url, sink.max);
		else if (cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH || cc == CURLE_PEER_FAILED_VERIFICATION ||
			 cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_SSL_CONNECT_ERROR)
			mse_err_set(err,
				    "%s: the server's certificate is not the pinned one (%s): refusing "
				    "to talk to it",
				    url, curl_err[0] ? curl_err : curl_easy_strerror(cc));
		else
			mse_err_set(err, "%s: %s", url, curl_err[0] ? curl_err : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	resp->body = sink.p ? (char *)sink.p : calloc(1, 1);
	resp->body_len = sink.len;
	sink.p = NULL;
	rc = resp->body ? 0 : mse_err_set(err, "out of memory");
out:
	free(sink.p);
	curl_slist_free_all(resolve);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	return rc;
}

void mse_client_resp_free(struct mse_client_resp *r)
{
	if (!r)
		return;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}
