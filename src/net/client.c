/* SPDX-License-Identifier: Apache-2.0 */
#include "net/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

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

/* Copies a header's value (trimmed, truncated to size - 1) if the line is "name: value". */
static void header_value(const char *data, size_t n, const char *name, char *out, size_t size)
{
	size_t k = strlen(name);
	const char *v;

	if (n <= k || strncasecmp(data, name, k) != 0)
		return;
	v = data + k;
	k = n - k;
	while (k && (*v == ' ' || *v == '\t'))
		v++, k--;
	while (k && (v[k - 1] == '\r' || v[k - 1] == '\n' || v[k - 1] == ' '))
		k--;
	if (k >= size)
		k = size - 1;
	memcpy(out, v, k);
	out[k] = 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *user)
{
	struct mse_client_resp *r = user;
	size_t n = size * nmemb;

	header_value(data, n, "mse-status:", r->mse_status, sizeof(r->mse_status));
	header_value(data, n, "mse-proof:", r->mse_proof, sizeof(r->mse_proof));
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

struct mse_client_session {
	CURL *c;
	struct mse_client_opts o;
	char name[300], urlhost[300], resolve_entry[600], pin[128];
	struct curl_slist *resolve;
	int one_connection; /* after the first exchange, never open another connection */
	int exchanged;
	int refused_reconnect;
};

/* CURLOPT_OPENSOCKETFUNCTION: with one_connection, a second connection is never opened. */
static curl_socket_t open_socket(void *user, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct mse_client_session *s = user;

	(void)purpose;
	if (s->one_connection && s->exchanged) {
		s->refused_reconnect = 1;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

int mse_client_session_open(struct mse_client_session **out, const struct mse_client_opts *o,
			    int one_connection, struct mse_err *err)
{
	const char *name = o->server_name && *o->server_name ? o->server_name : o->host;
	struct mse_client_session *s;

	*out = NULL;
	if (!o->plain_http && !o->pin_pem && !o->ca_bundle)
		return mse_err_set(err, "refusing an HTTPS request without a pinned certificate or CA");
	/* A truncated URL would be another request (another path, another host): refuse it. */
	if (strlen(name) + 2 >= sizeof(s->urlhost) ||
	    strlen(o->host) + strlen(name) + 8 >= sizeof(s->resolve_entry))
		return mse_err_field(err, "host", "name too long: \"%.60s...\"", name);
	s = calloc(1, sizeof(*s));
	if (!s)
		return mse_err_set(err, "out of memory");
	s->o = *o;
	s->one_connection = one_connection;
	snprintf(s->name, sizeof(s->name), "%s", name);
	host_for_url(name, s->urlhost, sizeof(s->urlhost));
	s->c = curl_easy_init();
	if (!s->c) {
		free(s);
		return mse_err_set(err, "libcurl failed to initialise");
	}
	curl_easy_setopt(s->c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(s->c, CURLOPT_TIMEOUT_MS, o->timeout_ms ? o->timeout_ms : 10000L);
	curl_easy_setopt(s->c, CURLOPT_CONNECTTIMEOUT_MS, o->timeout_ms ? o->timeout_ms : 10000L);
	curl_easy_setopt(s->c, CURLOPT_PROTOCOLS_STR, o->plain_http ? "http" : "https");
	curl_easy_setopt(s->c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(s->c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(s->c, CURLOPT_OPENSOCKETDATA, s);
	curl_easy_setopt(s->c, CURLOPT_MAXCONNECTS, 1L);
	if (strcmp(name, o->host) != 0) {
		/* Connect to host while checking the certificate against name. */
		snprintf(s->resolve_entry, sizeof(s->resolve_entry), "%s:%u:%s", name,
			 (unsigned)o->port, o->host);
		s->resolve = curl_slist_append(NULL, s->resolve_entry);
		curl_easy_setopt(s->c, CURLOPT_RESOLVE, s->resolve);
	}
	if (!o->plain_http) {
		curl_easy_setopt(s->c, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(s->c, CURLOPT_SSL_VERIFYHOST, 2L);
		curl_easy_setopt(s->c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
		if (o->pin_pem) {
			if (mse_client_spki_pin(o->pin_pem, s->pin, sizeof(s->pin), err) != 0) {
				mse_client_session_close(s);
				return -1;
			}
			curl_easy_setopt(s->c, CURLOPT_CAINFO, o->pin_pem);
			curl_easy_setopt(s->c, CURLOPT_CAPATH, NULL);
			curl_easy_setopt(s->c, CURLOPT_PINNEDPUBLICKEY, s->pin);
		} else {
			curl_easy_setopt(s->c, CURLOPT_CAINFO, o->ca_bundle);
		}
	}
	*out = s;
	return 0;
}

void mse_client_session_close(struct mse_client_session *s)
{
	if (!s)
		return;
	curl_easy_cleanup(s->c);
	curl_slist_free_all(s->resolve);
	free(s);
}

int mse_client_session_request(struct mse_client_session *s, const char *method, const char *path,
			       const char *const *headers_in, const char *content_type,
			       const void *body, size_t body_len, struct mse_client_resp *resp,
			       struct mse_err *err)
{
	char url[1024], ctype[160];
	struct curl_slist *headers = NULL;
	struct mse_client_body sink = {.max = s->o.max_body ? s->o.max_body : (size_t)16 << 20};
	char curl_err[CURL_ERROR_SIZE] = "";
	CURL *c = s->c;
	CURLcode cc;
	int rc = -1;

	memset(resp, 0, sizeof(*resp));
	if (path[0] != '/')
		return mse_err_field(err, "path", "expected a path starting with '/', got \"%s\"", path);
	if (snprintf(url, sizeof(url), "%s://%s:%u%s", s->o.plain_http ? "http" : "https", s->urlhost,
		     (unsigned)s->o.port, path) >= (int)sizeof(url))
		return mse_err_field(err, "path", "URL too long (%zu-byte path, limit about %zu)",
				     strlen(path), sizeof(url) - strlen(s->urlhost) - 16);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mse_client_body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	for (size_t i = 0; headers_in && headers_in[i]; i++)
		headers = curl_slist_append(headers, headers_in[i]);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		snprintf(ctype, sizeof(ctype), "Content-Type: %s",
			 content_type ? content_type : "application/octet-stream");
		headers = curl_slist_append(headers, ctype);
		/* No "Expect: 100-continue" round trip for small provisioning bodies. */
		headers = curl_slist_append(headers, "Expect:");
		if (s->o.extra_header)
			headers = curl_slist_append(headers, s->o.extra_header);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else {
		mse_err_field(err, "method", "expected GET, HEAD or POST, got \"%s\"", method);
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	cc = curl_easy_perform(c);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	if (cc != CURLE_OK) {
		if (s->refused_reconnect)
			mse_err_set(err,
				    "%s: the server closed the connection of the previous exchange; a new "
				    "connection could reach another server (the app, after a hand-over), so "
				    "nothing was sent",
				    url);
		else if (sink.too_big)
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
	s->exchanged = 1;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	resp->body = sink.p ? (char *)sink.p : calloc(1, 1);
	resp->body_len = sink.len;
	sink.p = NULL;
	rc = resp->body ? 0 : mse_err_set(err, "out of memory");
out:
	free(sink.p);
	curl_slist_free_all(headers);
	return rc;
}

int mse_client_request(const struct mse_client_opts *o, const char *method, const char *path,
		       const char *content_type, const void *body, size_t body_len,
		       struct mse_client_resp *resp, struct mse_err *err)
{
	struct mse_client_session *s;
	int rc;

	memset(resp, 0, sizeof(*resp));
	if (mse_client_session_open(&s, o, 0, err) != 0)
		return -1;
	rc = mse_client_session_request(s, method, path, NULL, content_type, body, body_len, resp, err);
	mse_client_session_close(s);
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
