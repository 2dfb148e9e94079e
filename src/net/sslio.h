/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_sslio — one non-blocking read or write on a connection that is TLS
 * (ssl != NULL, handshake done) or plain TCP (ssl == NULL): the single
 * place where the app server's HTTP/1.1 path (net/server.c) and its
 * HTTP/2 loop (net/h2.c) turn SSL_read_ex/SSL_write_ex, recv and send
 * into one result code.
 *
 * Both calls return > 0 bytes moved, 0 end of stream (read only: the peer
 * closed, or sent close_notify), MSE_SSLIO_AGAIN (would block: wait for
 * the socket, in the direction *want_write says) or MSE_SSLIO_ERR (broken;
 * OpenSSL's error queue is cleared). EINTR is retried.
 *
 * want_write (may be NULL) says which way the next wait goes: set to 1
 * when progress needs the socket writable, 0 when it needs it readable.
 * TLS can ask for the other direction than the call's own (a read may
 * have to send, a write to receive: RFC 8446 key updates, OpenSSL's
 * internal records), which is why callers that wait must ask it. A read
 * sets it to 0 unless TLS wants to write; a write sets it to 1 unless TLS
 * wants to read.
 *
 * Nothing is owned: fd and ssl stay the caller's; no allocation.
 */
#ifndef MSE_SSLIO_H
#define MSE_SSLIO_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

enum { MSE_SSLIO_AGAIN = -2, MSE_SSLIO_ERR = -1 };

ssize_t mse_sslio_read(int fd, SSL *ssl, void *buf, size_t n, int *want_write);
ssize_t mse_sslio_write(int fd, SSL *ssl, const void *buf, size_t n, int *want_write);

#endif
