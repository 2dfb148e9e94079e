/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_wsgi — the WSGI bridge (PEP 3333): an mse_exchange handler that calls
 * an unmodified Python WSGI app in an embedded CPython 3.11.
 *
 * Threads: mse_wsgi_init() runs once per process, in the main thread,
 * before server threads exist. It initialises an isolated interpreter
 * (no environment variables, no user site, no pyenv leaking in from PATH;
 * Debian's /usr/lib/python3.11 and dist-packages), puts module_path first
 * on sys.path, imports `module:variable`, then releases the GIL. After that,
 * mse_wsgi_handle() may run on any number of threads at once: each request
 * takes the GIL only to call into Python, and releases it while it reads
 * the request body from, or writes response bytes to, the network.
 *
 * What the app sees (PEP 3333, "environ Variables"): REQUEST_METHOD,
 * SCRIPT_NAME (""), PATH_INFO (percent-decoded, as latin-1), QUERY_STRING,
 * CONTENT_TYPE, CONTENT_LENGTH, SERVER_NAME, SERVER_PORT, SERVER_PROTOCOL,
 * SERVER_SOFTWARE, REMOTE_ADDR, REMOTE_PORT, REQUEST_URI and RAW_URI (the
 * target as sent), every header as HTTP_* (repeated headers joined with
 * ", ", Cookie with "; "; names containing '_' are dropped so they cannot
 * pose as another header), and wsgi.version, wsgi.url_scheme, wsgi.input
 * (streamed from the exchange: read/readline/readlines/iteration, never the
 * whole body unless the app asks for it), wsgi.input_terminated (True: the
 * stream ends at the end of the body, chunked or not), wsgi.errors (lines
 * go to the error log), wsgi.multithread (True), wsgi.multiprocess,
 * wsgi.run_once (False), wsgi.file_wrapper.
 *
 * start_response validates the status ("NNN reason", 200..599, no control
 * characters) and headers (a list of (str, str), token names, latin-1
 * values without CR/LF), follows exc_info semantics (a second call needs
 * exc_info; after headers were sent it re-raises) and drops hop-by-hop
 * headers (Connection: close is honoured by closing the connection).
 * Headers are sent with the first non-empty body chunk; a one-element
 * result without Content-Length gets one. result.close() is always called.
 * An exception before anything was sent gives a 500 whose body holds the
 * traceback only when debug is set; the traceback always goes to the log.
 * An exception after the headers were sent closes the connection.
 */
#ifndef MSE_WSGI_H
#define MSE_WSGI_H

#include "common/err.h"
#include "net/exchange.h"

struct mse_pyhost;

struct mse_wsgi_config {
	const char *app;         /* "module:variable" (variable may be dotted: a.b) or
				    "module:factory(literal args)": config/appspec.h */
	const char *module_path; /* directory put first on sys.path (MODULE_PATH); may be NULL */
	int debug;               /* put tracebacks in 500 responses */
	int deny_subprocess;     /* add the enclave's audit hook (mse_sandbox_python_hook) */
	/* A started host (mse_pyhost_start), borrowed: app, module_path and
	 * deny_subprocess are then the host's. NULL: mse_wsgi_init starts one
	 * and mse_wsgi_free finalises it. */
	struct mse_pyhost *host;
};

struct mse_wsgi;

/*
 * Initialises Python and imports the app (or uses cfg->host's). Once per
 * process, main thread.
 * On success *out is owned by the caller (mse_wsgi_free) and the GIL is
 * released. On failure (bad spec, import error: the traceback is logged and
 * summarised in err) Python is finalised again and cannot be restarted in
 * this process: exit.
 */
int mse_wsgi_init(const struct mse_wsgi_config *cfg, struct mse_wsgi **out, struct mse_err *err);

/* An mse_exchange_handler: user is the struct mse_wsgi *. Any thread. */
int mse_wsgi_handle(struct mse_exchange *x, void *user);

/*
 * Releases the bridge, and finalises Python (atexit handlers run) if it
 * started it. Call from the thread that called mse_wsgi_init, after every
 * server thread has stopped. NULL-safe.
 */
void mse_wsgi_free(struct mse_wsgi *w);

#endif
