/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_pyhost — the embedded CPython that runs the app, whatever its
 * interface: starts an isolated interpreter, imports "module:variable",
 * and tells what the imported object is (WSGI, ASGI 3, ASGI 2).
 *
 * The WSGI bridge (mse_wsgi_) and the ASGI bridge (mse_asgi_) are built on
 * one host: mse_appserver starts the host, detects the interface, then
 * hands the host to the matching bridge.
 *
 * Threads: mse_pyhost_start and mse_pyhost_free run in the same thread
 * (the main one), before and after every other thread that uses Python.
 * Between them the GIL is released; the bridges take it as they need it.
 */
#ifndef MSE_PYHOST_H
#define MSE_PYHOST_H

#include "common/err.h"
#include "common/log.h"

struct mse_pyhost_config {
	const char *app;         /* "module:variable"; variable may be dotted (a.b) */
	const char *module_path; /* directory put first on sys.path (MODULE_PATH); may be NULL */
	int deny_subprocess;     /* add the enclave's audit hook (mse_sandbox_python_hook) */
};

/* The app's interface: what mse.toml's app_interface and --interface name. */
enum mse_pyhost_iface {
	MSE_IFACE_AUTO = 0, /* detect (only as a request) */
	MSE_IFACE_WSGI,     /* PEP 3333: app(environ, start_response) */
	MSE_IFACE_ASGI3,    /* ASGI 3.0: async app(scope, receive, send) */
	MSE_IFACE_ASGI2,    /* ASGI 2.0: app(scope) -> async instance(receive, send) */
};

struct mse_pyhost;

/*
 * Checks "module:attr.attr" or "module:factory(literal args)"
 * (config/appspec.h). Pure; no Python needed.
 */
int mse_pyhost_check_spec(const char *spec, struct mse_err *err);

/*
 * Parses an interface name: "auto", "wsgi", "asgi" (detect which ASGI
 * version), "asgi3", "asgi2". "asgi" gives MSE_IFACE_AUTO with *asgi_only.
 */
int mse_pyhost_iface_parse(const char *name, enum mse_pyhost_iface *out, int *asgi_only,
			   struct mse_err *err);
const char *mse_pyhost_iface_name(enum mse_pyhost_iface i);

/*
 * Initialises Python (once per process), imports the app and releases the
 * GIL. On failure (bad spec, import error: the traceback is logged and its
 * last line is in err) the interpreter is finalised again and cannot be
 * restarted in this process. On success *out is the caller's
 * (mse_pyhost_free).
 */
int mse_pyhost_start(const struct mse_pyhost_config *cfg, struct mse_pyhost **out,
		     struct mse_err *err);

/*
 * The interface of the imported app. want = MSE_IFACE_AUTO detects (with
 * asgi_only: only the ASGI versions are candidates); anything else is
 * checked against the object (an explicit override is trusted when the
 * object's shape cannot be read, e.g. a C callable). An object that is no
 * app gives -1 and an error naming what was found. Main thread.
 */
int mse_pyhost_detect(struct mse_pyhost *h, enum mse_pyhost_iface want, int asgi_only,
		      enum mse_pyhost_iface *out, struct mse_err *err);

/* Finalises Python (atexit handlers run). After every bridge was freed. NULL-safe. */
void mse_pyhost_free(struct mse_pyhost *h);

/* ---- for the bridges (GIL held unless said) ------------------------------ */

/* The imported app object (a borrowed PyObject *). */
void *mse_pyhost_app(const struct mse_pyhost *h);
/* The thread state of the thread that started the host (GIL released). */
void *mse_pyhost_main_ts(const struct mse_pyhost *h);
/*
 * Formats the pending Python exception as a malloc'd traceback text and
 * clears it; NULL if there is none or even that fails. GIL held.
 */
char *mse_pyhost_traceback(void);
/* The last line of a traceback (the exception), without the newline. */
void mse_pyhost_last_line(const char *tb, const char **line, int *len);
/* Logs a multi-line text one log line each, so the log stays line-oriented. Any thread. */
void mse_pyhost_log_lines(enum mse_log_level lvl, const char *prefix, const char *text);

#endif
