/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_exchange — one HTTP request/response exchange, as a handler sees it.
 *
 * This is the contract between the server (src/net/server.*, which owns
 * sockets, TLS, parsing, keep-alive and limits) and the code that answers
 * requests (the WSGI bridge in src/node/wsgi.*, the configuration server in
 * src/node/). A handler never touches a socket: it reads the request body
 * and writes the response through the ops below, so it can be tested with a
 * fake exchange over memory buffers.
 *
 * Lifetime: the exchange and every pointer in it are valid only during the
 * handler call. Strings are NOT NUL-terminated unless stated (they point into
 * the server's receive buffer): use the _len fields.
 */
#ifndef MSE_EXCHANGE_H
#define MSE_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MSE_HTTP_MAX_HEADERS_DEFAULT 100

struct mse_http_header {
	const char *name;
	size_t name_len;
	const char *value; /* leading/trailing whitespace removed */
	size_t value_len;
};

struct mse_http_request {
	const char *method;
	size_t method_len;
	const char *target; /* request-target as sent: "/path?query" */
	size_t target_len;
	const char *path; /* target up to '?' (still percent-encoded) */
	size_t path_len;
	const char *query; /* after '?', "" if none */
	size_t query_len;
	int minor_version; /* HTTP/1.x */
	const struct mse_http_header *headers;
	size_t num_headers;
	int64_t content_length; /* -1 if absent */
	int chunked;            /* Transfer-Encoding: chunked */
	int expect_continue;    /* Expect: 100-continue */
	int keep_alive;         /* connection may be reused after this exchange */
	int http2;              /* an HTTP/2 stream (net/h2.h): minor_version is 1 then */
};

struct mse_conn_info {
	char remote_addr[64]; /* numeric, NUL-terminated */
	uint16_t remote_port;
	char server_name[256]; /* Host header without port, or the listen address */
	uint16_t server_port;
	int is_tls;
	/* The connection's SSL * (NULL in plain HTTP), for handlers that need
	 * the peer's certificate (the coordinator's mutual RA-TLS). Borrowed:
	 * never freed, shut down or read from by the handler. */
	void *tls;
};

struct mse_exchange;

/*
 * A connection taken over by its handler after "101 Switching Protocols"
 * (a WebSocket, RFC 6455): the raw byte stream, TLS removed, bytes the
 * client sent after the request head first. Non-blocking: the owner polls
 * fd() (and calls read again while pending() says TLS holds bytes).
 * The stream outlives the exchange; close() releases it.
 */
struct mse_stream;

struct mse_stream_ops {
	/* > 0 bytes read, 0 at the end of the stream, -1 error, -2 would block. */
	ssize_t (*read)(struct mse_stream *s, void *buf, size_t n);
	/* >= 0 bytes written (maybe fewer than n), -1 error, -2 would block. */
	ssize_t (*write)(struct mse_stream *s, const void *buf, size_t n);
	/* The socket to poll. */
	int (*fd)(struct mse_stream *s);
	/* Bytes that read() can return without waiting on the socket. */
	size_t (*pending)(struct mse_stream *s);
	/* Closes the connection (TLS close_notify when possible) and frees s. */
	void (*close)(struct mse_stream *s);
};

struct mse_stream {
	const struct mse_stream_ops *ops;
	void *impl;
};

struct mse_exchange_ops {
	/*
	 * Reads up to n bytes of the request body (decoded: chunked framing is
	 * removed). The server has usually read the whole body before the
	 * handler runs (net/server.h: body_buffer); a larger one is streamed,
	 * and then "100 Continue", if expected, is sent on the first call.
	 * Returns bytes read, 0 at the end of the body, -1 on error (client
	 * gone, timeout, malformed chunk, body over the limit): the server
	 * then answers 400/408/413 itself, refusing the handler's start().
	 */
	ssize_t (*read_body)(struct mse_exchange *x, void *buf, size_t n);
	/*
	 * Sends the status line and headers. The server adds Date and Server,
	 * and Transfer-Encoding: chunked when the handler gives no
	 * Content-Length on HTTP/1.1 (HTTP/1.0: the connection closes instead).
	 * For HEAD, the body written afterwards is discarded. reason may be
	 * NULL (the standard phrase is used). Returns 0 or -1.
	 */
	int (*start)(struct mse_exchange *x, int status, const char *reason,
		     const struct mse_http_header *headers, size_t num_headers);
	/* Writes body bytes (start must have been called). Returns 0 or -1. */
	int (*write)(struct mse_exchange *x, const void *data, size_t n);
	/* Ends the response (flushes, writes the last chunk). Returns 0 or -1. */
	int (*finish)(struct mse_exchange *x);
	/*
	 * Optional (NULL when the server cannot): sends "101 Switching
	 * Protocols" with these headers (the handler gives Upgrade and
	 * Connection) and hands the connection over as a stream (*out, the
	 * caller's). The server forgets the connection: after the handler
	 * returns it neither reads, writes nor closes it. Returns 0 or -1.
	 */
	int (*upgrade)(struct mse_exchange *x, const struct mse_http_header *headers,
		       size_t num_headers, struct mse_stream **out);
	/*
	 * Optional: has the client gone (its end of the connection closed or
	 * broken) while the handler works? Never blocks; does not consume
	 * bytes. 1 gone, 0 not that we know.
	 */
	int (*peer_gone)(struct mse_exchange *x);
	/*
	 * Optional: the handler's thread waits (on = 1) on another thread's
	 * work, holding and wanting no lock the app's code runs under (the
	 * ASGI bridge: the app runs on its event loop, the server thread only
	 * waits for its answer), or is done waiting (on = 0). The server counts
	 * the thread as blocked, as one asleep in its handler: requests queued
	 * meanwhile get other threads (net/server.h: threads).
	 */
	void (*waiting)(struct mse_exchange *x, int on);
};

struct mse_exchange {
	const struct mse_exchange_ops *ops;
	const struct mse_http_request *req;
	const struct mse_conn_info *conn;
	int started;        /* set by the server once start() succeeded */
	uint64_t body_sent; /* bytes written through write() */
	void *impl;         /* the server's (or a fake's) private state */
};

/*
 * A request handler. It must answer every request it is given (start +
 * finish) unless the connection failed; if it returns without starting a
 * response, the server answers 500. Returns 0, or -1 to close the connection.
 * Handlers run on server threads, several at once.
 */
typedef int (*mse_exchange_handler)(struct mse_exchange *x, void *user);

static inline ssize_t mse_exchange_read_body(struct mse_exchange *x, void *buf, size_t n)
{
	return x->ops->read_body(x, buf, n);
}

static inline int mse_exchange_start(struct mse_exchange *x, int status, const char *reason,
				     const struct mse_http_header *headers, size_t num_headers)
{
	return x->ops->start(x, status, reason, headers, num_headers);
}

static inline int mse_exchange_write(struct mse_exchange *x, const void *data, size_t n)
{
	return x->ops->write(x, data, n);
}

static inline int mse_exchange_finish(struct mse_exchange *x)
{
	return x->ops->finish(x);
}

#endif
