/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_client — the code provider's and operator's HTTPS client, pinned to a
 * verified certificate.
 *
 * Every request that can carry a secret goes through here with `pin_pem`
 * set to the trusted ratls.pem that `mse verify` wrote: the TLS handshake
 * must present a certificate that chains to exactly that certificate (it is
 * its own trust store) AND whose public key is that certificate's key
 * (libcurl's public-key pinning), and whose name matches `server_name`.
 * There is no option to turn verification off: MSE's client did, and a
 * swapped server could then have received the code key.
 *
 * Responses are read into memory (bounded by max_body).
 */
#ifndef MSE_CLIENT_H
#define MSE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

struct mse_client_opts {
	const char *host;        /* address to connect to: "127.0.0.1", "::1", a name */
	uint16_t port;
	const char *server_name; /* TLS name checked against the certificate (SAN); NULL: host */
	const char *pin_pem;     /* trust exactly this certificate (PEM file) and pin its key */
	const char *ca_bundle;   /* or: a CA bundle (the owner's certificate mode) */
	int plain_http;          /* no TLS (apps behind a TLS-terminating proxy); never for secrets */
	long timeout_ms;         /* whole request; 0: 10 s */
	size_t max_body;         /* 0: 16 MiB */
	const char *extra_header; /* POST: one more "Name: value" line, or NULL */
};

struct mse_client_resp {
	long status;
	char mse_status[64]; /* the Mse-Status header, "" if absent */
	char mse_proof[80];  /* the Mse-Proof header (crypto/provproof.h), "" if absent */
	char *body;          /* malloc'd, NUL-terminated */
	size_t body_len;
};

/*
 * A bounded, growing, NUL-terminated response body, and the libcurl
 * CURLOPT_WRITEFUNCTION that fills it (CURLOPT_WRITEDATA: the body). Past
 * max bytes the transfer is aborted and too_big set. The caller owns p.
 */
struct mse_client_body {
	uint8_t *p;
	size_t len, cap, max;
	int too_big;
};
size_t mse_client_body_write(char *data, size_t size, size_t nmemb, void *body);

/*
 * Sends one request (method "GET", "POST", "HEAD") and reads the response.
 * Returns 0 when a response arrived (whatever its status), -1 on a transport
 * or TLS failure (err says which: connection refused, certificate mismatch…).
 * Release the response with mse_client_resp_free.
 */
int mse_client_request(const struct mse_client_opts *o, const char *method, const char *path,
		       const char *content_type, const void *body, size_t body_len,
		       struct mse_client_resp *resp, struct mse_err *err);
void mse_client_resp_free(struct mse_client_resp *r);

/*
 * A session: several requests over one keep-alive connection (libcurl
 * reuses it). With one_connection, once a request has been answered the
 * session never opens another connection: if the server closed it, the next
 * request fails before sending anything. The provisioning exchange uses it
 * so that its POST goes to the server whose GET answered "Waiting", never
 * to whatever answers a new connection (the app after a hand-over).
 * headers (may be NULL) is a NULL-terminated list of "Name: value" lines.
 */
struct mse_client_session;
int mse_client_session_open(struct mse_client_session **s, const struct mse_client_opts *o,
			    int one_connection, struct mse_err *err) MSE_MUST_CHECK;
int mse_client_session_request(struct mse_client_session *s, const char *method, const char *path,
			       const char *const *headers, const char *content_type,
			       const void *body, size_t body_len, struct mse_client_resp *resp,
			       struct mse_err *err) MSE_MUST_CHECK;
void mse_client_session_close(struct mse_client_session *s);
/* sha256//BASE64 of the SubjectPublicKeyInfo of the first certificate in a PEM file. */
int mse_client_spki_pin(const char *pem_path, char *out, size_t size, struct mse_err *err);

#endif
