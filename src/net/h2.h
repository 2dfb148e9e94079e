/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_h2 — HTTP/2 (RFC 9113) for mse_server, over libnghttp2.
 *
 * The server (net/server.c) runs the TLS handshake; when ALPN chose "h2"
 * (or, in plain HTTP, the client sent the connection preface: prior
 * knowledge, RFC 9113 §3.3) it hands the connection over with
 * mse_h2_adopt() and forgets it until the release callback. From there:
 *
 * - one thread (the h2 loop, its own epoll) reads and writes every HTTP/2
 *   connection, non-blocking, and runs nghttp2 over memory
 *   (nghttp2_session_mem_recv/mem_send): frames, HPACK, flow control;
 * - a request whose header block is complete goes to the h2 worker
 *   threads once its body ended or its stream window is full (then the
 *   rest is streamed to the handler as it reads, the window reopened as
 *   it consumes: flow control is the app's reading pace); each stream is
 *   one mse_exchange, so WSGI and ASGI bridges serve HTTP/2 unchanged;
 * - the handler's response goes to a bounded per-stream buffer the loop
 *   sends as the peer's window allows; a writer waits (write_timeout_ms)
 *   when it is full.
 *
 * Limits, per stream and per connection (the server's configuration):
 * SETTINGS_MAX_CONCURRENT_STREAMS (h2_max_streams), header lists over
 * max_head_bytes or max_headers answer 431, bodies over max_body 413, a
 * header block not complete within head_timeout_ms and a connection idle
 * for idle_timeout_ms are closed (GOAWAY), a body below min_rate after its
 * grace 408, a handler waiting for body bytes read_timeout_ms fails (408).
 * Memory per connection: header bytes of its open streams (at most
 * H2_CONN_HEAD_FACTOR x max_head_bytes; new streams are refused beyond),
 * body bytes buffered (the connection window, H2_CONN_WINDOW), response
 * bytes buffered (H2_OUT_BUF per stream). With cfg->mem_charge (the memory
 * cap), a stream's body and response buffers are charged before they are
 * allocated: refused, the stream is answered 503.
 *
 * Floods (the offending connection gets GOAWAY ENHANCE_YOUR_CALM and is
 * closed; the others are served): control frames (PING, SETTINGS,
 * RST_STREAM, PRIORITY, CONTINUATION, empty DATA) beyond a token bucket
 * (H2_FLOOD_BURST, refilled H2_FLOOD_RATE per second); rapid reset
 * (CVE-2023-44487): streams the client resets cost their job nothing once
 * reset (a queued job is dropped unrun) and count in the same bucket;
 * CONTINUATION floods (CVE-2024-27316 class): nghttp2's continuation cap
 * and the header-size limit; ack floods: nghttp2's outbound-ack cap while
 * the peer does not read.
 *
 * Stuck handlers: a stream whose handler has not started its response
 * request_timeout_ms after it began is answered 504 and abandoned; its
 * worker stays with the handler and another starts in its place while
 * fewer than `threads` are free (at most max_threads, the server's rule).
 *
 * Worker pool: `threads` at least; while the app is classified blocking
 * (net/pool.h, the rule net/server.c follows: its serving workers asleep
 * outside the GIL, or waiting on another thread's work, exchange.h
 * waiting), a stream queued with no idle worker gets a new one, up to
 * max_threads. A worker above `threads` idle for thread_idle_ms exits. A connection that only
 * abandoned handlers hold is released to the server as soon as its session
 * ends.
 *
 * Shutdown: mse_h2_stop sends GOAWAY (NO_ERROR, the last stream id) on
 * every connection; streams in flight finish, then the connections close
 * and are released. mse_h2_join cuts what remains at its deadline and
 * joins the threads, leaving handlers stuck in the app behind (detached,
 * as net/server.c does for HTTP/1.1).
 */
#ifndef MSE_H2_H
#define MSE_H2_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "common/err.h"
#include "net/exchange.h"
#include "net/server.h"

/* The client connection preface (RFC 9113 §3.4). */
#define MSE_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define MSE_H2_PREFACE_LEN 24

struct mse_h2;

/*
 * An engine serving with the server's configuration cfg (borrowed: it
 * must outlive the engine; the handler, thread hooks, limits, access log
 * and server_name are used). threads = 0 runs no thread at all: the
 * in-memory mode of mse_h2_mem_run (tests, fuzzing). Threads start on the
 * first mse_h2_adopt.
 */
int mse_h2_new(const struct mse_server_config *cfg, int threads, struct mse_h2 **out,
	       struct mse_err *err) MSE_MUST_CHECK;

/*
 * Takes over a connection: fd (non-blocking), ssl (NULL in plain HTTP;
 * handshake done), info (copied), pre: bytes already read from it (the
 * preface in prior knowledge; copied). The engine uses fd and ssl until it
 * calls release(cookie), once, from its loop thread; it never closes or
 * frees them (the caller does, in release). Returns 0, or -1 (nothing
 * taken: the caller closes).
 */
int mse_h2_adopt(struct mse_h2 *h, int fd, SSL *ssl, const struct mse_conn_info *info,
		 const void *pre, size_t pre_len, void (*release)(void *cookie),
		 void *cookie) MSE_MUST_CHECK;

/* Graceful stop: GOAWAY on every connection, no new streams; in-flight
 * streams finish. Any thread, any number of times. */
void mse_h2_stop(struct mse_h2 *h);

/*
 * Waits until every adopted connection was released or deadline_ms
 * (CLOCK_MONOTONIC milliseconds) passes, then cuts the rest (released
 * too: every exchange op fails from then on) and joins the threads. A
 * handler that has not returned a second after the cut (stuck in
 * the app) keeps its thread, detached: returns how many were left behind
 * (then the engine and the server configuration it borrows must stay
 * allocated: mse_h2_free keeps them).
 */
int mse_h2_join(struct mse_h2 *h, int64_t deadline_ms);

/* Handlers left running by mse_h2_join (0 if none, or h NULL). */
int mse_h2_left(const struct mse_h2 *h);

/* Frees the engine (after mse_h2_join, or if it never adopted); does
 * nothing (a warning) if handlers were left running. NULL-safe. */
void mse_h2_free(struct mse_h2 *h);

/*
 * In-memory mode (an engine made with threads = 0): one connection fed
 * in with each of the n pieces in turn, every request run by the calling
 * thread's handler as soon as it is ready (a body read returns what
 * arrived, then its end or -1). Returns the number of bytes the server
 * wrote, or -1 if the session ended with a connection error (GOAWAY). For
 * the fuzzer and unit tests: the same callbacks and limits as a socket.
 */
long mse_h2_mem_run(struct mse_h2 *h, const uint8_t *const *pieces, const size_t *lens,
		    size_t n, void (*out_cb)(const uint8_t *p, size_t n, void *arg), void *arg);

#endif
