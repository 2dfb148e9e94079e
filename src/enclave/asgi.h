/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_asgi — the ASGI bridge (ASGI 3.0, HTTP spec 2.3, lifespan 2.0): an
 * mse_exchange handler that runs an unmodified ASGI app (FastAPI,
 * Starlette, Quart; ASGI 2 double callables too) in the embedded CPython.
 *
 * Threads. One asyncio event loop runs in one Python thread, started by
 * mse_asgi_init; it alone holds the GIL for the app. Server threads never
 * take the GIL: mse_asgi_handle queues its exchange in a C inbox and
 * writes an eventfd only when the inbox was empty (so one wake-up carries
 * a batch); the loop watches the eventfd (loop.add_reader), takes the
 * whole inbox at once, and starts one task per request. What the app
 * sends comes back to the server thread as a queue of operations (start,
 * body, end) that it performs on the exchange without the GIL.
 *
 * Bodies. receive() gives the request body in chunks of at most
 * MSE_ASGI_CHUNK bytes as the server thread reads them (one chunk read
 * ahead, never the whole body); once the body is over, receive() waits
 * until the response is complete or the client is gone, then returns
 * http.disconnect. send() copies each body message into the queue and
 * returns at once while less than MSE_ASGI_HIGH_WATER bytes wait for the
 * network, else it waits until half of them went out: a slow client
 * holds at most that much of a response in memory.
 *
 * The server thread is released as soon as the response is complete
 * (more_body False); what the app does afterwards (Starlette's background
 * tasks) runs on in the loop, and mse_asgi_free waits for it.
 *
 * Lifespan (ASGI lifespan 2.0): mse_asgi_init runs startup before it
 * returns, with a `state` dict that each request's scope gets a shallow
 * copy of. lifespan.startup.failed, or an exception after startup began,
 * makes mse_asgi_init fail with the app's message; an app that raises on
 * the lifespan scope before it received lifespan.startup does not support it (logged,
 * served anyway, as uvicorn's "auto"). mse_asgi_free runs shutdown after
 * the server drained.
 *
 * Scope (ASGI HTTP connection scope): type, asgi {version, spec_version
 * "2.3"}, http_version, method, scheme, path (percent-decoded, UTF-8),
 * raw_path, query_string, root_path "", headers (lower-cased names, byte
 * pairs, in order), client, server, state.
 */
#ifndef MSE_ASGI_H
#define MSE_ASGI_H

#include "common/err.h"
#include "net/exchange.h"
#include "enclave/pyhost.h"

#define MSE_ASGI_CHUNK (64 * 1024)
#define MSE_ASGI_HIGH_WATER (256 * 1024)
#define MSE_ASGI_WS_MAX_MSG (16u << 20) /* uvicorn's default ws_max_size */

struct mse_asgi_config {
	struct mse_pyhost *host;    /* started, app imported (borrowed) */
	enum mse_pyhost_iface iface; /* MSE_IFACE_ASGI3 or MSE_IFACE_ASGI2 */
	int debug;                  /* tracebacks in 500 responses */
	int drain_timeout_ms;       /* how long mse_asgi_free waits for app tasks; 0 = 10 s */
	uint64_t ws_max_msg;        /* largest WebSocket message accepted (1009 beyond); 0 = 16 MiB */
};

struct mse_asgi;

/*
 * Starts the event loop thread and runs lifespan startup. Main thread (the
 * host's), GIL released. On failure nothing is left running and err holds
 * the app's message (step "lifespan").
 */
int mse_asgi_init(const struct mse_asgi_config *cfg, struct mse_asgi **out, struct mse_err *err);

/* An mse_exchange_handler: user is the struct mse_asgi *. Any server thread. */
int mse_asgi_handle(struct mse_exchange *x, void *user);

/*
 * The server is stopping: a server thread still waiting for the app after
 * the drain timeout gives up. Async-signal-safe.
 */
void mse_asgi_stop(struct mse_asgi *a);

/*
 * After the server stopped: waits for the app's remaining tasks, runs
 * lifespan shutdown, stops the loop thread. Main thread. NULL-safe.
 */
void mse_asgi_free(struct mse_asgi *a);

#endif
