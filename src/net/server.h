/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_server — a threaded HTTP/1.1 server (plain or TLS) that calls a
 * handler through the exchange contract (net/exchange.h).
 *
 * Design: the thread that calls mse_server_run() runs an epoll loop that
 * accepts connections and watches every connection that is waiting for
 * bytes (new, idle keep-alive, or with a partial request head); N worker
 * threads take connections that became readable, parse and answer requests
 * (pipelined ones back to back), and hand the connection back to the loop
 * as soon as no complete request is buffered. A waiting connection costs a
 * small struct and no thread, so thousands of idle keep-alive clients and
 * slow-header senders cannot starve the workers; request heads have a
 * deadline from their first byte (slowloris), idle connections an idle
 * timeout, and body reads and writes a per-operation timeout.
 *
 * Errors: 400 (malformed), 413 (body over the limit), 414/431 (request line
 * or head over the limit), 408 (head not complete in time), 417, 501, 505
 * are answered with `Connection: close` and the connection is closed; the
 * server itself is unharmed. A handler that returns without answering gets
 * a 500.
 *
 * Logs: errors and lifecycle through mse_log (common/log.h); one Common Log
 * Format line per answered request to config.access_log when set.
 *
 * Ownership: mse_server_new copies the configuration (strings included) and
 * takes its own reference on the SSL_CTX; mse_server_free releases all.
 * An adopted listen_fd is never closed by the server.
 */
#ifndef MSE_SERVER_H
#define MSE_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/ssl.h>

#include "common/buf.h"
#include "common/err.h"
#include "net/exchange.h"

struct mse_server_config {
	/* Where to listen: listen_fd >= 0 adopts that listening socket (not
	 * closed by the server, so the caller can hand it to another server);
	 * else host:port is bound (port 0 = ephemeral, see mse_server_port). */
	const char *host; /* default "127.0.0.1" */
	uint16_t port;
	int listen_fd; /* default -1 */
	int backlog;   /* default 511 */

	SSL_CTX *tls; /* NULL = plain HTTP */

	mse_exchange_handler handler;
	void *user;
	/* Optional: called in each worker thread when it starts and before it
	 * exits (e.g. to keep one Python thread state per worker instead of
	 * creating one per request). */
	void (*thread_start)(void *user);
	void (*thread_stop)(void *user);

	int threads;             /* workers; 0 = 2 x online CPUs */
	size_t max_connections;  /* open connections; default 10000 */
	size_t max_head_bytes;   /* request line + fields; default 64 KiB */
	size_t max_headers;      /* default 100 */
	uint64_t max_body;       /* default 2 GiB; 0 = no limit */
	int head_timeout_ms;     /* first byte of a head (or accept) to its end; default 10 s */
	int idle_timeout_ms;     /* keep-alive wait for the next request; default 30 s */
	int read_timeout_ms;     /* one body read; default 30 s */
	int write_timeout_ms;    /* one write making no progress; default 30 s */
	int drain_timeout_ms;    /* graceful stop: wait for in-flight requests; default 10 s */
	/* Slow-client floor for bodies (both ways): once the server has spent
	 * more than read_timeout_ms in total waiting on one exchange's socket,
	 * it must average min_rate bytes per second of that waiting, or the
	 * exchange fails as a timeout. Time the handler itself spends (an app
	 * streaming slowly) does not count. Default 1024; 0 = off. */
	uint64_t min_rate;

	FILE *access_log;        /* Common Log Format lines; NULL = none (not closed) */
	const char *server_name; /* Server header; default "mse-c/VERSION" */
};

struct mse_server;

/* Fills every field with its default (listen_fd = -1). Call before setting fields. */
void mse_server_config_init(struct mse_server_config *c);

/*
 * Validates the configuration and binds/adopts the listening socket now, so
 * the port is known before mse_server_run. Returns 0 and *out, or -1.
 */
int mse_server_new(const struct mse_server_config *c, struct mse_server **out,
		   struct mse_err *err) MSE_MUST_CHECK;
/* The port actually listened on. */
uint16_t mse_server_port(const struct mse_server *s);
/*
 * Serves until mse_server_stop: starts the workers, runs the event loop on
 * the calling thread, then drains and joins. Returns 0, or -1 if it could not
 * start. The worker threads block every signal (handle signals in a
 * dedicated thread with sigwait, or in the main thread).
 */
int mse_server_run(struct mse_server *s, struct mse_err *err) MSE_MUST_CHECK;
/*
 * Graceful stop: stop accepting (an owned listening socket is closed, an
 * adopted one left open), close idle connections, let in-flight requests
 * finish (their responses carry Connection: close) until drain_timeout_ms,
 * then cut what remains; mse_server_run then returns. Callable from any
 * thread, a handler, or a signal handler (async-signal-safe), before or
 * during run, any number of times.
 */
void mse_server_stop(struct mse_server *s);
/* Frees the server (after run returned, or if run was never called). NULL-safe. */
void mse_server_free(struct mse_server *s);

#endif
