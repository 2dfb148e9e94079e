/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_server — a threaded HTTP/1.1 server (plain or TLS) that calls a
 * handler through the exchange contract (net/exchange.h).
 *
 * Design (the I/O model, docs/http.md): the thread that calls
 * mse_server_run() runs an epoll loop that owns every connection while it
 * waits for the client: it accepts, runs the TLS handshake, reads the
 * request head and then the body (up to body_buffer; chunked bodies are
 * decoded as they arrive), all non-blocking. Only a complete request goes
 * on the queue to the N worker threads that run the handler; a body larger
 * than body_buffer is streamed to the handler as it reads, under the same
 * rate floor. After the answer the worker serves pipelined requests that
 * are complete already and hands the connection back to the loop. So slow
 * or idle clients cost a connection slot and a buffer, never a worker:
 * heads have a deadline from their first byte (slowloris), heads and bodies
 * a minimum transfer rate from their first seconds, idle connections an
 * idle timeout, and one address a bounded share of the connection slots.
 * An optional per-request deadline answers 504 for a handler that does not
 * return and adds a worker so the others keep being served.
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

	/* Worker threads: `threads` always run (the floor; 0 = 2 x online
	 * CPUs). While the serving workers are mostly blocked in their
	 * handlers (a sleep, a database or HTTP call, a slow client's body),
	 * each queued request gets a worker at once, woken or started, up to
	 * max_threads (0 = MSE_SERVER_THREADS_MAX_DEFAULT, at least threads);
	 * otherwise one worker serves back to back (docs/http.md: worker
	 * pool). A worker beyond the floor idle for thread_idle_ms exits.
	 * Requests are taken first in, first out. Threads stuck past
	 * request_timeout_ms are replaced within the same bound. */
	int threads;
	int max_threads;
	int thread_idle_ms;      /* default 10 s */
	/* Optional: 1 if the app is running code that more threads would only
	 * queue behind (the embedded Python holds its GIL). Asked only where
	 * /proc/self/task cannot tell what the workers do (Gramine): the app
	 * counts as blocking when this said 0 at two checks in a row. */
	int (*app_busy)(void *user);
	size_t stack_size;       /* each worker's stack; 0 = MSE_SERVER_STACK_DEFAULT */
	size_t max_connections;  /* open connections; default 10000 */
	/* Open connections from one address (IPv4, or an IPv6 /64); default 256.
	 * At either limit, the connection of the address holding the most that
	 * is idle (no request bytes pending) is closed to make room. */
	size_t max_per_address;
	size_t max_head_bytes;   /* request line + fields; default 64 KiB */
	size_t max_headers;      /* default 100 */
	uint64_t max_body;       /* default 2 GiB; 0 = no limit */
	/* Bodies up to this size are read in full by the event loop before the
	 * handler runs (no worker waits on the client); a larger body is
	 * streamed to the handler as it reads. Default 1 MiB. */
	size_t body_buffer;
	int head_timeout_ms;     /* first byte of a head (or accept) to its end; default 10 s */
	int idle_timeout_ms;     /* keep-alive wait for the next request; default 30 s */
	int read_timeout_ms;     /* one body read; default 30 s */
	int write_timeout_ms;    /* one write making no progress; default 30 s */
	int drain_timeout_ms;    /* graceful stop: wait for in-flight requests; default 10 s */
	/* Slow-client floor, for heads and bodies both ways: from
	 * min_rate_grace_ms after a head's first byte (or a body's start), the
	 * client must have moved min_rate bytes per second on average (time the
	 * handler itself spends does not count), or the request fails with 408.
	 * Default 1024 B/s after 2 s; 0 = off. */
	uint64_t min_rate;
	int min_rate_grace_ms;
	/* Per-request deadline from the complete request to the start of the
	 * response: past it the client gets 504, the request is logged, and a
	 * worker is added (up to max_threads) while the handler's thread stays
	 * with it. A response that started is not cut (write timeouts bound a
	 * client that stops reading). 0 = none. */
	int request_timeout_ms;
	/* Optional, run on the event loop for each complete head, before any
	 * body is read: returns 0 to go on, or an HTTP status (>= 400) that is
	 * answered at once with Connection: close, the body left unread. */
	int (*head_check)(const struct mse_http_request *req, void *user);
	/* Request bytes are secret: every buffer that held them is wiped before
	 * it is freed, and TLS records too (SSL_OP_CLEANSE_PLAINTEXT). */
	int wipe_buffers;

	/* HTTP/2 (net/h2.h): 1 offers "h2" before "http/1.1" in TLS ALPN, and in
	 * plain HTTP takes a connection that opens with the HTTP/2 preface
	 * (prior knowledge, RFC 9113 §3.3). Default 0: HTTP/1.1 only. */
	int http2;
	uint32_t h2_max_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS; default 32 */
	/* Optional: the memory cap. HTTP/2 stream buffers (a request body
	 * buffered for its handler, a response waiting for the client's
	 * window) are charged here before they are allocated: mem_charge
	 * returns 0, or -1 to refuse (that stream is answered 503, or reset if
	 * its response started); mem_uncharge gives back what was charged.
	 * Any thread. */
	int (*mem_charge)(size_t n, void *user);
	void (*mem_uncharge)(size_t n, void *user);
	FILE *access_log;        /* Common Log Format lines; NULL = none (not closed) */
	const char *server_name; /* Server header; default "mse-c/VERSION" */
};

struct mse_server;

#define MSE_SERVER_THREADS_MAX_DEFAULT 128
/* A modest, explicit worker stack (not RLIMIT_STACK's 8 MiB or more): only
 * touched pages cost memory, but under SGX every thread's stack is enclave
 * memory. CPython 3.11 runs its default recursion limit in far less. */
#define MSE_SERVER_STACK_DEFAULT ((size_t)1 << 20)

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
/* Worker threads running now (between the floor and max_threads). */
int mse_server_threads(struct mse_server *s);
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
