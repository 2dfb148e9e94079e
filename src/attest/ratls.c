/* SPDX-License-Identifier: Apache-2.0 */
/* RA-TLS certificate: quote extraction and key binding. See ratls.h. */
#include "attest/ratls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "attest/quote.h"
#include "common/file.h"
#include "common/hex.h"
#include "crypto/seal.h"

static int ratls_fail(struct mse_err *err, const char *step, const char *field, const char *msg)
{
	mse_err_step(err, step);
	return mse_err_field(err, field, "%s", msg);
}

static int key_point_hash(const EVP_PKEY *pkey, uint8_t out[32], uint8_t *point_out, struct mse_err *err)
{
	uint8_t point[MSE_RATLS_POINT_SIZE];
	BIGNUM *x = NULL, *y = NULL;
	char group[32] = "";

	if (!pkey || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
	    EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					   NULL) != 1 ||
	    strcmp(group, "prime256v1") != 0)
		return ratls_fail(err, "ratls", "public_key", "expected an EC P-256 key");
	/* 0x04‖X‖Y whatever encoding the certificate used: the hash is defined on it. */
	if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
	    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 ||
	    BN_bn2binpad(x, point + 1, 32) != 32 || BN_bn2binpad(y, point + 33, 32) != 32) {
		BN_free(x);
		BN_free(y);
		return ratls_fail(err, "ratls", "public_key", "cannot read the P-256 point");
	}
	BN_free(x);
	BN_free(y);
	point[0] = 0x04;
	if (point_out)
		memcpy(point_out, point, sizeof(point));
	SHA256(point, sizeof(point), out);
	return 0;
}

int mse_ratls_key_hash(EVP_PKEY *pkey, uint8_t out[32], struct mse_err *err)
{
	return key_point_hash(pkey, out, NULL, err);
}

int mse_ratls_from_x509(struct mse_ratls *out, X509 *cert, struct mse_err *err)
{
	ASN1_OBJECT *oid = NULL;
	const ASN1_OCTET_STRING *os;
	X509_EXTENSION *ext;
	EVP_PKEY *pkey;
	unsigned char *p;
	int idx, len, ret = -1;

	memset(out, 0, sizeof(*out));
	X509_up_ref(cert);
	out->cert = cert;
	len = i2d_X509(cert, NULL);
	if (len <= 0 || (size_t)len > MSE_RATLS_MAX_SIZE) {
		ratls_fail(err, "ratls", "certificate", "cannot DER-encode the certificate");
		goto out;
	}
	out->der = malloc((size_t)len);
	if (!out->der) {
		ratls_fail(err, "ratls", "certificate", "out of memory");
		goto out;
	}
	p = out->der;
	if (i2d_X509(cert, &p) != len) {
		ratls_fail(err, "ratls", "certificate", "cannot DER-encode the certificate");
		goto out;
	}
	out->der_len = (size_t)len;

	pkey = X509_get0_pubkey(cert);
	if (key_point_hash(pkey, out->key_hash, out->point, err) != 0)
		goto out;

	oid = OBJ_txt2obj(MSE_RATLS_QUOTE_OID, 1);
	if (!oid) {
		ratls_fail(err, "ratls", "extension", "OpenSSL cannot build the quote OID");
		goto out;
	}
	idx = X509_get_ext_by_OBJ(cert, oid, -1);
	if (idx < 0) {
		ratls_fail(err, "ratls", MSE_RATLS_QUOTE_OID,
			   "the certificate has no quote extension: not an RA-TLS certificate");
		goto out;
	}
	if (X509_get_ext_by_OBJ(cert, oid, idx) >= 0) {
		ratls_fail(err, "ratls", MSE_RATLS_QUOTE_OID, "the quote extension appears twice");
		goto out;
	}
	ext = X509_get_ext(cert, idx);
	os = X509_EXTENSION_get_data(ext);
	if (!os || ASN1_STRING_length(os) <= 0) {
		ratls_fail(err, "ratls", MSE_RATLS_QUOTE_OID, "the quote extension is empty");
		goto out;
	}
	/*
	 * Point into our own DER copy rather than OpenSSL's object so the quote
	 * lives exactly as long as the struct: find the bytes by content.
	 */
	{
		const uint8_t *q = ASN1_STRING_get0_data(os);
		size_t qlen = (size_t)ASN1_STRING_length(os);
		const uint8_t *hit = NULL;

		for (size_t i = 0; i + qlen <= out->der_len; i++)
			if (memcmp(out->der + i, q, qlen) == 0) {
				hit = out->der + i;
				break;
			}
		if (!hit) {
			ratls_fail(err, "ratls", MSE_RATLS_QUOTE_OID, "quote bytes not found in the DER");
			goto out;
		}
		out->quote = hit;
		out->quote_len = qlen;
	}
	ret = 0;
out:
	ASN1_OBJECT_free(oid);
	if (ret != 0)
		mse_ratls_free(out);
	return ret;
}

int mse_ratls_parse(struct mse_ratls *out, const uint8_t *data, size_t len, struct mse_err *err)
{
	static const char pem_tag[] = "-----BEGIN CERTIFICATE-----";
	X509 *cert = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!data || len == 0 || len > MSE_RATLS_MAX_SIZE)
		return ratls_fail(err, "ratls", "certificate", "empty or oversized input");
	/*
	 * DER starts with a SEQUENCE tag. Decide on that, not on finding a PEM
	 * header anywhere: the quote inside a DER RA-TLS certificate carries the
	 * PCK chain in PEM, so a search would pick Intel's PCK certificate.
	 */
	if (data[0] != 0x30) {
		if (!memmem(data, len, pem_tag, sizeof(pem_tag) - 1))
			return ratls_fail(err, "ratls", "certificate", "not a PEM or DER X.509 certificate");
		BIO *bio = BIO_new_mem_buf(data, (int)len);

		if (bio)
			cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
	} else {
		const unsigned char *p = data;

		cert = d2i_X509(NULL, &p, (long)len);
		if (cert && p != data + len) {
			X509_free(cert);
			ERR_clear_error();
			return ratls_fail(err, "ratls", "certificate", "trailing bytes after the DER certificate");
		}
	}
	if (!cert) {
		ERR_clear_error();
		return ratls_fail(err, "ratls", "certificate", "not a PEM or DER X.509 certificate");
	}
	ret = mse_ratls_from_x509(out, cert, err);
	X509_free(cert);
	return ret;
}

int mse_ratls_check_binding(const struct mse_ratls *c, const uint8_t report_data[64], struct mse_err *err)
{
	char want[65], got[65];

	if (CRYPTO_memcmp(c->key_hash, report_data, 32) == 0)
		return 0;
	if (mse_hex_encode(want, sizeof(want), c->key_hash, 32) != 0 ||
	    mse_hex_encode(got, sizeof(got), report_data, 32) != 0)
		want[0] = got[0] = 0;
	mse_err_step(err, "binding");
	mse_err_field(err, "report_data[0:32]",
		      "expected SHA-256(0x04||X||Y) of the certificate key %s, got %s: the quote "
		      "does not belong to this certificate",
		      want, got);
	return -1;
}

int mse_ratls_pem(const struct mse_ratls *c, char **pem, size_t *pem_len, struct mse_err *err)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int ret = -1;

	*pem = NULL;
	if (!bio || PEM_write_bio_X509(bio, c->cert) != 1) {
		ratls_fail(err, "ratls", "certificate", "cannot PEM-encode the certificate");
		goto out;
	}
	n = BIO_get_mem_data(bio, &data);
	*pem = malloc((size_t)n + 1);
	if (!*pem) {
		ratls_fail(err, "ratls", "certificate", "out of memory");
		goto out;
	}
	memcpy(*pem, data, (size_t)n);
	(*pem)[n] = 0;
	if (pem_len)
		*pem_len = (size_t)n;
	ret = 0;
out:
	BIO_free(bio);
	return ret;
}

void mse_ratls_free(struct mse_ratls *c)
{
	if (!c)
		return;
	X509_free(c->cert);
	free(c->der);
	memset(c, 0, sizeof(*c));
}

/* ---- fetching the certificate from a live server (the only I/O here) ---- */

static int connect_timeout(const char *host, const char *port, int timeout_ms, struct mse_err *err)
{
	struct addrinfo hints = {0}, *res = NULL, *ai;
	int fd = -1, rc;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		mse_err_step(err, "fetch");
		mse_err_field(err, "url", "cannot resolve %s: %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0)
			continue;
		rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (rc != 0 && errno == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			rc = poll(&pfd, 1, timeout_ms) == 1 &&
					     getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0
				     ? 0
				     : -1;
			if (rc != 0 && soerr)
				errno = soerr;
			else if (rc != 0)
				errno = ETIMEDOUT;
		}
		if (rc == 0) {
			/* Back to blocking, with timeouts, for the handshake. */
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			break;
		}
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		mse_err_step(err, "fetch");
		mse_err_field(err, "url", "cannot connect to %s:%s: %s", host, port, strerror(errno));
	}
	freeaddrinfo(res);
	return fd;
}

int mse_ratls_fetch(const char *host_port, int timeout_ms, uint8_t **der, size_t *der_len,
		    struct mse_err *err)
{
	char host[256], port[16];
	const char *hp = host_port, *colon;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	X509 *peer = NULL;
	int fd = -1, ret = -1, n;
	size_t hlen;

	*der = NULL;
	*der_len = 0;
	if (strncmp(hp, "https://", 8) == 0)
		hp += 8;
	colon = strrchr(hp, ':');
	if (!colon || colon == hp || strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(port) ||
	    strspn(colon + 1, "0123456789/") != strlen(colon + 1)) {
		mse_err_step(err, "fetch");
		return mse_err_field(err, "url", "expected HOST:PORT, got \"%s\"", host_port);
	}
	hlen = (size_t)(colon - hp);
	if (hp[0] == '[' && hlen >= 2 && hp[hlen - 1] == ']') { /* [::1]:443 */
		hp++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		mse_err_step(err, "fetch");
		return mse_err_field(err, "url", "host name too long");
	}
	memcpy(host, hp, hlen);
	host[hlen] = 0;
	snprintf(port, sizeof(port), "%.*s", (int)strcspn(colon + 1, "/"), colon + 1);

	fd = connect_timeout(host, port, timeout_ms > 0 ? timeout_ms : 10000, err);
	if (fd < 0)
		goto out;
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		goto tls_fail;
	/* No verification on purpose: trust comes from the quote, checked afterwards. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	ssl = SSL_new(ctx);
	if (!ssl || SSL_set_fd(ssl, fd) != 1)
		goto tls_fail;
	SSL_set_tlsext_host_name(ssl, host);
	if (SSL_connect(ssl) != 1)
		goto tls_fail;
	peer = SSL_get1_peer_certificate(ssl);
	if (!peer)
		goto tls_fail;
	n = i2d_X509(peer, NULL);
	if (n <= 0 || (*der = malloc((size_t)n)) == NULL)
		goto tls_fail;
	{
		unsigned char *w = *der;

		if (i2d_X509(peer, &w) != n) {
			free(*der);
			*der = NULL;
			goto tls_fail;
		}
	}
	*der_len = (size_t)n;
	SSL_shutdown(ssl);
	ret = 0;
	goto out;
tls_fail: {
	char e[256];

	ERR_error_string_n(ERR_get_error(), e, sizeof(e));
	mse_err_step(err, "fetch");
	mse_err_field(err, "url", "TLS handshake with %s:%s failed: %s", host, port, e);
}
out:
	ERR_clear_error();
	X509_free(peer);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	return ret;
}

int mse_ratls_seal_pk_mem(const uint8_t *cert, size_t len, uint8_t pk[MSE_SEAL_PK_BYTES],
			       struct mse_err *err)
{
	struct mse_ratls c;
	struct mse_quote q;
	int rc = -1;

	memset(&c, 0, sizeof(c));
	/*
	 * The quote is only parsed here, not verified: the certificate is the
	 * ratls.pem that `mse verify` already checked. The binding is checked
	 * again so that a certificate swapped after verification is caught.
	 */
	if (mse_ratls_parse(&c, cert, len, err) != 0)
		goto out;
	if (mse_quote_parse(&q, c.quote, c.quote_len, 0, err) != 0) {
		mse_err_prefix(err, "RA-TLS quote");
		goto out;
	}
	if (mse_ratls_check_binding(&c, q.body.report_data, err) != 0)
		goto out;
	/* report_data[32:64]: the enclave's X25519 key (MSE sealing). */
	if (mse_seal_check_public_key(q.body.report_data + 32, err) != 0)
		goto out;
	memcpy(pk, q.body.report_data + 32, MSE_SEAL_PK_BYTES);
	rc = 0;
out:
	mse_ratls_free(&c);
	return rc;
}

int mse_ratls_seal_pk(const char *pem_path, uint8_t pk[MSE_SEAL_PK_BYTES],
			   struct mse_err *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	if (mse_file_read(pem_path, (size_t)1 << 20, &data, &len, err) != 0)
		return -1;
	rc = mse_ratls_seal_pk_mem(data, len, pk, err);
	if (rc != 0)
		mse_err_file(err, pem_path);
	free(data);
	return rc;
}
