/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_appserver — the app server as one call: enclave rules, memory cap,
 * embedded Python with the WSGI or ASGI app (detected, mse_pyhost_detect), TLS, the HTTP server, and a graceful
 * stop on SIGTERM. `mse serve`, `mse-bootstrap` (after provisioning) and
 * `mse localtest` all call mse_appserver_run().
 *
 * Order (each step needs the previous one):
 *   1. the Python allocator accounting (--memory), before Python allocates;
 *   2. SIGTERM/SIGINT blocked, so every later thread inherits the mask and
 *      only the signal thread receives them;
 *   3. the seccomp filter (no fork/exec), before any thread exists, and the
 *      Python audit hook;
 *   4. Python initialised, the app imported (import-time code is already
 *      sandboxed and capped), its interface detected; for an ASGI app the
 *      event loop thread starts and lifespan startup runs (a failure
 *      returns -1 with the app's message, step "lifespan");
 *   5. the memory budget committed: what is resident now is the
 *      interpreter, the libraries and the app's imports; the rest is the
 *      app's, and the log says how much;
 *   6. TLS context, listening socket, server threads, signal thread;
 *   7. on SIGTERM/SIGINT or mse_appserver_stop(): stop accepting, drain
 *      in-flight requests, join, (ASGI: let app tasks finish, lifespan
 *      shutdown), finalise Python, return 0.
 *
 * Once per process (Python cannot be re-initialised; the sandbox is
 * irreversible). The configuration is borrowed for the call.
 */
#ifndef MSE_APPSERVER_H
#define MSE_APPSERVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/ssl.h>

#include "common/err.h"

struct mse_appserver_config {
	const char *app;      /* "module:variable" */
	const char *code_dir; /* MODULE_PATH: put first on sys.path */
	/* The app's interface: NULL or "auto" detects; "wsgi", "asgi" (either
	 * ASGI version, detected), "asgi3", "asgi2" (mse.toml's app_interface). */
	const char *interface;

	/* TLS, the first that is set: */
	SSL_CTX *tls;                 /* a ready context (borrowed; the server takes a reference) */
	X509 *cert;                   /* in memory, e.g. the RA-TLS certificate (borrowed) */
	EVP_PKEY *key;                /*   and its key (borrowed) */
	const char *cert_pem;         /* PEM text in memory (custom-certificate mode) */
	size_t cert_pem_len;
	const char *key_pem;
	size_t key_pem_len;
	const char *cert_file;        /* PEM files */
	const char *key_file;
	int no_tls;                   /* plain HTTP: must be said explicitly */
	/* 1: HTTP/1.1 only. Default 0: HTTP/2 too (net/h2.h), by ALPN "h2" over
	 * TLS, by prior knowledge (the preface) in plain HTTP. */
	int no_http2;

	const char *host; /* default "127.0.0.1" */
	uint16_t port;    /* 0 = ephemeral */
	int listen_fd;    /* >= 0: an already-listening socket (not closed); default -1 */

	int threads;          /* server workers; 0 = the server's default */
	int threads_max;      /* workers grow to this many; 0 = the server's default */
	uint64_t memory_mb;   /* the app's memory budget (--memory); 0 = none */
	int debug;            /* tracebacks in 500 responses */
	int sandbox;          /* enclave rules (seccomp + audit hook); default 1 */
	int handle_signals;   /* SIGTERM/SIGINT stop the server; default 1 */
	int timeout_ms;       /* head, body read and write timeouts; 0 = the server's */
	int idle_timeout_ms;  /* keep-alive idle timeout; 0 = the server's */
	int drain_timeout_ms; /* graceful stop deadline; 0 = the server's */
	uint64_t max_body;    /* request body limit, bytes; 0 = the server's default */
	int request_timeout_ms; /* per-request deadline: 504 and logged (--request-timeout); 0 = none */
	FILE *access_log;     /* Common Log Format; NULL = none (borrowed) */
	int no_request_log;   /* 1: no "access: ADDR METHOD PATH STATUS BYTES B MS ms" line
				 per request in the log (default: one, at info level) */

	/* Called once listening (the port is known), before serving. May be NULL. */
	void (*on_ready)(uint16_t port, void *user);
	void *ready_user;
};

/* Defaults: listen_fd -1, sandbox 1, handle_signals 1, everything else 0/NULL. */
void mse_appserver_config_init(struct mse_appserver_config *c);

/* Serves until stopped. Returns 0 after a graceful stop, -1 with err on failure. */
int mse_appserver_run(const struct mse_appserver_config *c, struct mse_err *err);

/* Asks a running mse_appserver_run to stop gracefully. Any thread; async-signal-safe. */
void mse_appserver_stop(void);

#endif
