/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_metrics — the HTTP server's process-wide counters (relaxed atomics,
 * always on: a few per request) and their Prometheus text exposition
 * (format 0.0.4), served on a separate plain-HTTP listener of its own when
 * asked (`mse-bootstrap --metrics HOST:PORT`, docs/metrics.md):
 *
 *   mse_http_requests_total{class="1xx".."5xx"}   counter
 *   mse_http_request_duration_seconds              histogram (handler time)
 *   mse_http_requests_in_flight                    gauge
 *   mse_http_worker_threads                        gauge
 *   mse_http_open_connections                      gauge
 *
 * Nothing in it is secret: counts and durations only, no paths, no
 * addresses, no headers. The listener answers GET /metrics (404 otherwise),
 * one connection at a time, a 4 KiB request head read within 2 seconds:
 * what one client can make it hold or do is bounded.
 *
 * The hooks are one call each in src/net/server.c.
 */
#ifndef MSE_METRICS_H
#define MSE_METRICS_H

#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

void mse_metrics_conn(int delta);
void mse_metrics_threads(int delta);
/* Returns the start time (monotonic µs) to give to mse_metrics_req_end. */
int64_t mse_metrics_req_begin(void);
/* The handler of the request begun at t0 returned. */
void mse_metrics_req_end(int64_t t0);
/* One answer sent, handled or refused (by status class). */
void mse_metrics_status(int status);

/* The exposition text (malloc'd), or NULL when out of memory. */
char *mse_metrics_render(void);

/* Starts the listener thread on host:port (0: ephemeral; *bound receives it). */
int mse_metrics_listen(const char *host, uint16_t port, uint16_t *bound,
		       struct mse_err *err) MSE_MUST_CHECK;
/* Stops and joins it (no-op when not started). */
void mse_metrics_stop(void);

#endif
