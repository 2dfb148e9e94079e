/* SPDX-License-Identifier: Apache-2.0 */
#include "net/sslio.h"

#include <errno.h>
#include <sys/socket.h>

#include <openssl/err.h>

static void set_want(int *want_write, int v)
{
	if (want_write)
		*want_write = v;
}

ssize_t mse_sslio_read(int fd, SSL *ssl, void *buf, size_t n, int *want_write)
{
	set_want(want_write, 0);
	if (ssl) {
		size_t got = 0;
		int rc, e;

		ERR_clear_error();
		rc = SSL_read_ex(ssl, buf, n, &got);
		if (rc == 1)
			return (ssize_t)got;
		e = SSL_get_error(ssl, rc);
		if (e == SSL_ERROR_WANT_READ)
			return MSE_SSLIO_AGAIN;
		if (e == SSL_ERROR_WANT_WRITE) {
			set_want(want_write, 1);
			return MSE_SSLIO_AGAIN;
		}
		ERR_clear_error();
		return e == SSL_ERROR_ZERO_RETURN ? 0 : MSE_SSLIO_ERR;
	}
	for (;;) {
		ssize_t r = recv(fd, buf, n, 0);

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EWOULDBLOCK ? MSE_SSLIO_AGAIN : MSE_SSLIO_ERR;
	}
}

ssize_t mse_sslio_write(int fd, SSL *ssl, const void *buf, size_t n, int *want_write)
{
	set_want(want_write, 1);
	if (ssl) {
		size_t put = 0;
		int rc, e;

		ERR_clear_error();
		rc = SSL_write_ex(ssl, buf, n, &put);
		if (rc == 1)
			return (ssize_t)put;
		e = SSL_get_error(ssl, rc);
		if (e == SSL_ERROR_WANT_WRITE)
			return MSE_SSLIO_AGAIN;
		if (e == SSL_ERROR_WANT_READ) {
			set_want(want_write, 0);
			return MSE_SSLIO_AGAIN;
		}
		ERR_clear_error();
		return MSE_SSLIO_ERR;
	}
	for (;;) {
		/* MSG_NOSIGNAL: a peer gone is an error result, not a SIGPIPE. */
		ssize_t r = send(fd, buf, n, MSG_NOSIGNAL);

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EWOULDBLOCK ? MSE_SSLIO_AGAIN : MSE_SSLIO_ERR;
	}
}
