/* SPDX-License-Identifier: Apache-2.0 */
#include "enclave/replica.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "attest/collateral.h"
#include "attest/ratls.h"
#include "attest/verify.h"
#include "common/b64.h"
#include "common/hex.h"
#include "common/log.h"

void mse_replica_prov_free(struct mse_replica_prov *p)
{
	if (!p)
		return;
	if (p->app_secrets)
		sodium_memzero(p->app_secrets, p->app_secrets_len);
	free(p->app_secrets);
	free(p->sealed);
	free(p->chain_pem);
	free(p->ca_pem);
	sodium_memzero(p, sizeof(*p));
}

static char *dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

int mse_replica_parse(const uint8_t *body, size_t len, struct mse_replica_prov *p,
		      struct mse_err *err)
{
	json_t *j, *v;
	int rc = -1;

	memset(p, 0, sizeof(*p));
	mse_err_step(err, "provisioning");
	if (len > MSE_REPLICA_MAX_RESPONSE)
		return mse_err_set(err, "response: %zu bytes, too large", len);
	j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!j || !json_is_object(j)) {
		mse_err_expect(err, "response", "a JSON object", "something else");
		goto out;
	}
	v = json_object_get(j, "deployment_id");
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 64) {
		mse_err_expect(err, "deployment_id", "1..64 characters", "another value");
		goto out;
	}
	snprintf(p->deployment_id, sizeof(p->deployment_id), "%s", json_string_value(v));
	v = json_object_get(j, "seq");
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		mse_err_expect(err, "seq", "an integer >= 1", "another value");
		goto out;
	}
	p->seq = (uint64_t)json_integer_value(v);
	v = json_object_get(j, "code_secret_key");
	if (v) {
		if (!json_is_string(v) || json_string_length(v) != 64 ||
		    mse_hex_decode_exact(p->code_key, 32, json_string_value(v), 64) != 0) {
			mse_err_expect(err, "code_secret_key", "64 hex digits", "another value");
			goto out;
		}
		p->has_code_key = 1;
	}
	v = json_object_get(j, "app_key");
	if (!json_is_string(v) || json_string_length(v) != 64 ||
	    mse_hex_decode_exact(p->app_key, 32, json_string_value(v), 64) != 0) {
		mse_err_expect(err, "app_key", "64 hex digits", "another value");
		goto out;
	}
	v = json_object_get(j, "app_secrets");
	if (v && !json_is_null(v)) {
		json_t *o;

		if (!json_is_string(v) ||
		    !(o = json_loadb(json_string_value(v), json_string_length(v), 0, NULL))) {
			mse_err_expect(err, "app_secrets", "JSON text", "another value");
			goto out;
		}
		json_decref(o);
		p->app_secrets_len = json_string_length(v);
		if (!(p->app_secrets = dupn(json_string_value(v), p->app_secrets_len))) {
			mse_err_set(err, "out of memory");
			goto out;
		}
	}
	v = json_object_get(j, "app_sealed_secrets");
	if (v && !json_is_null(v)) {
		size_t n = json_is_string(v) ? json_string_length(v) : 0, cap = n / 4 * 3 + 3;

		if (!json_is_string(v) || !(p->sealed = malloc(cap)) ||
		    mse_b64_decode(p->sealed, cap, &p->sealed_len, json_string_value(v), n,
				   MSE_B64_URL_NOPAD) != 0 ||
		    p->sealed_len <= 48) {
			mse_err_expect(err, "app_sealed_secrets", "base64url of a sealed box",
				       "another value");
			goto out;
		}
	}
	v = json_object_get(j, "certificate_chain");
	if (!json_is_string(v) || !strstr(json_string_value(v), "-----BEGIN CERTIFICATE-----")) {
		mse_err_expect(err, "certificate_chain", "PEM certificates", "another value");
		goto out;
	}
	if (!(p->chain_pem = dupn(json_string_value(v), json_string_length(v))))
		goto oom;
	v = json_object_get(j, "ca");
	if (!json_is_string(v) || !strstr(json_string_value(v), "-----BEGIN CERTIFICATE-----")) {
		mse_err_expect(err, "ca", "a PEM certificate", "another value");
		goto out;
	}
	if (!(p->ca_pem = dupn(json_string_value(v), json_string_length(v))))
		goto oom;
	rc = 0;
	goto out;
oom:
	mse_err_set(err, "out of memory");
out:
	json_decref(j);
	if (rc != 0)
		mse_replica_prov_free(p);
	return rc;
}

/* ---- the connection ------------------------------------------------------------ */

struct vctx {
	const struct mse_replica_opts *o;
	const struct mse_collateral *coll;
	struct mse_collateral fetched; /* from the PCCS (freed by mse_replica_fetch) */
	int done, ok;
	struct mse_err err;
};

/* Replaces X.509 chain building: the coordinator is trusted by its quote. */
static int verify_coordinator(X509_STORE_CTX *xs, void *arg)
{
	struct vctx *v = arg;
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);
	struct mse_ratls r;
	struct mse_verify_policy pol;
	struct mse_verify_result res;

	memset(&r, 0, sizeof(r));
	memset(&pol, 0, sizeof(pol));
	v->done = 1;
	v->ok = 0;
	if (!leaf) {
		mse_err_set(&v->err, "the coordinator sent no certificate");
		return 0;
	}
	if (mse_ratls_from_x509(&r, leaf, &v->err) != 0)
		return 0;
	if (!v->coll) {
		/* Intel's collateral for the coordinator's platform, fetched for its quote. */
		if (mse_pccs_collateral_for_quote(v->o->pccs, r.quote, r.quote_len, &v->fetched,
						  &v->err) != 0) {
			mse_err_prefix(&v->err, "the coordinator's collateral");
			mse_ratls_free(&r);
			return 0;
		}
		v->coll = &v->fetched;
	}
	pol.mrenclave = v->o->coordinator_mrenclave;
	pol.allow_simulation = v->o->allow_simulation;
	pol.sim_root_der = v->o->sim_root_der;
	pol.sim_root_len = v->o->sim_root_len;
	if (mse_verify_ratls(&r, v->coll, &pol, NULL, &res, &v->err) != 0) {
		mse_err_prefix(&v->err, "the coordinator's certificate");
		mse_ratls_free(&r);
		return 0;
	}
	mse_ratls_free(&r);
	v->ok = 1;
	return 1;
}

static int split(const char *hp, char *host, size_t hs, char *port, size_t ps)
{
	const char *c = strrchr(hp, ':');

	if (!c || c == hp || (size_t)(c - hp) >= hs || strlen(c + 1) >= ps || !c[1])
		return -1;
	memcpy(host, hp, (size_t)(c - hp));
	host[c - hp] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	snprintf(port, ps, "%s", c + 1);
	return 0;
}

static int connect_to(const char *host, const char *port, int timeout_ms, struct mse_err *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int fd = -1, e = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return mse_err_expect(err, MSE_REPLICA_ENV, "HOST:PORT of the coordinator", host);
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return mse_err_set(err, "cannot connect to the coordinator at %s:%s: %s", host, port,
				   strerror(e));
	return fd;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static int exchange(SSL *ssl, const char *instance, uint8_t **out, size_t *out_len, int *status,
		    struct mse_err *err)
{
	char req[512], body[128];
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;
	int bl, rl;

	bl = instance && *instance ? snprintf(body, sizeof(body), "{\"instance\":\"%.64s\"}", instance)
				   : snprintf(body, sizeof(body), "{}");
	rl = snprintf(req, sizeof(req),
		      "POST /replica HTTP/1.1\r\nHost: coordinator\r\nContent-Type: "
		      "application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		      bl, body);
	if (SSL_write(ssl, req, rl) != rl)
		return mse_err_set(err, "sending the request to the coordinator failed");
	for (;;) {
		int r;

		if (n == cap) {
			uint8_t *nb = NULL;

			cap = cap ? cap * 2 : 16384;
			if (cap <= MSE_REPLICA_MAX_RESPONSE + 65536)
				nb = malloc(cap);
			if (!nb) {
				if (buf)
					sodium_memzero(buf, n);
				free(buf);
				return mse_err_set(err, "the coordinator's answer is too large");
			}
			/* Copy then wipe: realloc would leave secrets in the old block. */
			if (n)
				memcpy(nb, buf, n);
			if (buf)
				sodium_memzero(buf, n);
			free(buf);
			buf = nb;
		}
		r = SSL_read(ssl, buf + n, (int)(cap - n));
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	{
		uint8_t *hdr_end = NULL;
		size_t i;
		int maj, min, st;

		for (i = 0; i + 3 < n; i++)
			if (!memcmp(buf + i, "\r\n\r\n", 4)) {
				hdr_end = buf + i + 4;
				break;
			}
		if (!hdr_end || sscanf((const char *)buf, "HTTP/%d.%d %d", &maj, &min, &st) != 3) {
			sodium_memzero(buf, n);
			free(buf);
			return mse_err_set(err, "the coordinator's answer is not HTTP (%zu bytes)", n);
		}
		*status = st;
		*out_len = n - (size_t)(hdr_end - buf);
		memmove(buf, hdr_end, *out_len);
		sodium_memzero(buf + *out_len, n - *out_len);
		*out = buf;
	}
	return 0;
}

int mse_replica_fetch(const struct mse_replica_opts *o, struct mse_replica_prov *out,
		      struct mse_err *err)
{
	char host[256], port[16];
	struct mse_collateral coll;
	struct vctx v;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	uint8_t *body = NULL;
	size_t bl = 0;
	long timeout = o->timeout_ms > 0 ? o->timeout_ms : 60000, deadline = now_ms() + timeout;
	int fd = -1, rc = -1, status = 0, attempt = 0;

	memset(&coll, 0, sizeof(coll));
	memset(out, 0, sizeof(*out));
	memset(&v, 0, sizeof(v));
	mse_err_step(err, "coordinator-connect");
	if (!o->coordinator || split(o->coordinator, host, sizeof(host), port, sizeof(port)) != 0)
		return mse_err_expect(err, MSE_REPLICA_ENV, "HOST:PORT of the coordinator",
				      o->coordinator ? o->coordinator : "(not set)");
	if (o->collateral_dir) {
		if (mse_collateral_load_dir(&coll, o->collateral_dir, err) != 0)
			return -1;
		v.coll = &coll;
	} else if (!o->pccs) {
		mse_err_step(err, "collateral");
		return mse_err_set(err, "no collateral to verify the coordinator with (neither a "
					"directory nor a PCCS)");
	}
	v.o = o;
	if (!(ctx = SSL_CTX_new(TLS_client_method())) ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate(ctx, o->cert) != 1 || SSL_CTX_use_PrivateKey(ctx, o->key) != 1) {
		mse_err_set(err, "TLS client context failed");
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, verify_coordinator, &v);
	for (;;) {
		long left = deadline - now_ms();

		fd = connect_to(host, port, left > 10000 ? 10000 : (int)(left > 100 ? left : 100), err);
		if (fd >= 0)
			break;
		if (now_ms() >= deadline)
			goto out;
		if (attempt++ == 0)
			mse_info("coordinator %s not reachable yet (%s): retrying", o->coordinator,
				 err->msg);
		usleep(200000);
	}
	if (!(ssl = SSL_new(ctx)) || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_set_tlsext_host_name(ssl, "localhost") != 1) {
		mse_err_set(err, "TLS setup failed");
		goto out;
	}
	if (SSL_connect(ssl) != 1) {
		if (v.done && !v.ok) {
			/* Our refusal: the step is the verifier's. */
			*err = v.err;
			if (!err->step[0])
				mse_err_step(err, "coordinator");
			mse_err_prefix(err, "coordinator refused by this replica, nothing sent");
		} else {
			unsigned long e = ERR_get_error();
			char b[256];

			ERR_error_string_n(e, b, sizeof(b));
			mse_err_step(err, "coordinator-tls");
			mse_err_set(err, "TLS handshake with the coordinator failed: %s", e ? b : "closed");
		}
		ERR_clear_error();
		goto out;
	}
	if (!v.ok) {
		mse_err_step(err, "coordinator");
		mse_err_set(err, "the coordinator's certificate was not verified");
		goto out;
	}
	mse_err_step(err, "coordinator-exchange");
	if (exchange(ssl, o->instance, &body, &bl, &status, err) != 0)
		goto out;
	if (status != 200) {
		json_t *j = json_loadb((const char *)body, bl, 0, NULL);
		const char *step = NULL, *msg = NULL;

		if (j && json_unpack(j, "{s:s,s:s}", "step", &step, "error", &msg) == 0) {
			mse_err_step(err, step);
			mse_err_set(err, "refused by the coordinator (HTTP %d): %s", status, msg);
		} else {
			mse_err_set(err, "refused by the coordinator (HTTP %d)", status);
		}
		json_decref(j);
		goto out;
	}
	if (mse_replica_parse(body, bl, out, err) != 0)
		goto out;
	rc = 0;
out:
	if (body) {
		sodium_memzero(body, bl);
		free(body);
	}
	if (ssl) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	if (fd >= 0)
		close(fd);
	SSL_CTX_free(ctx);
	mse_collateral_free(&coll);
	mse_collateral_free(&v.fetched);
	return rc;
}
