/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: HTTP/2 input (what a client sends after the connection
 * preface, which the harness prepends) through the server's nghttp2
 * session and callbacks (net/h2's in-memory mode): frames, HPACK, header
 * and body limits, flow control, the flood budget, the request building,
 * a handler that reads the body and answers with it, and the GOAWAY at the
 * end.
 *
 * The input is fed twice: whole, then cut in pieces of 1..16 bytes (the
 * first input byte picks the size). Contracts checked besides "no crash,
 * no over-read, no leak":
 * - the server writes something (its SETTINGS at least) whatever it gets;
 * - a request the handler saw never has a header list over the limit
 *   (small here: 1 KiB, 16 fields) nor a body over max_body (4 KiB).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/h2.h"

#define MAX_HEAD 1024
#define MAX_HEADERS 16
#define MAX_BODY 4096

static int handler(struct mse_exchange *x, void *user)
{
	char buf[512];
	size_t head = 0, total = 0;
	ssize_t r;
	struct mse_http_header h = {"content-type", 12, "text/plain", 10};

	(void)user;
	if (x->req->num_headers > MAX_HEADERS + 1)
		abort();
	for (size_t i = 0; i < x->req->num_headers; i++)
		head += x->req->headers[i].name_len + x->req->headers[i].value_len;
	if (head > MAX_HEAD)
		abort();
	if (mse_exchange_start(x, 200, NULL, &h, 1) != 0)
		return 0;
	while ((r = mse_exchange_read_body(x, buf, sizeof(buf))) > 0) {
		total += (size_t)r;
		if (total > MAX_BODY)
			abort();
		if (mse_exchange_write(x, buf, (size_t)r) != 0)
			break;
	}
	(void)mse_exchange_finish(x);
	return 0;
}

static void sink(const uint8_t *p, size_t n, void *arg)
{
	(void)p;
	*(size_t *)arg += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mse_server_config cfg;
	static struct mse_h2 *h;
	uint8_t *in;
	size_t n = MSE_H2_PREFACE_LEN + size, out = 0, piece, k = 0;
	const uint8_t *pieces[1];
	size_t lens[1];
	const uint8_t **many;
	size_t *many_lens;

	if (!h) {
		struct mse_err err;

		mse_server_config_init(&cfg);
		cfg.handler = handler;
		cfg.max_head_bytes = MAX_HEAD;
		cfg.max_headers = MAX_HEADERS;
		cfg.max_body = MAX_BODY;
		cfg.server_name = "fuzz";
		cfg.http2 = 1;
		if (mse_h2_new(&cfg, 0, &h, &err) != 0)
			abort();
	}
	if (!(in = malloc(n ? n : 1)))
		return 0;
	memcpy(in, MSE_H2_PREFACE, MSE_H2_PREFACE_LEN);
	if (size)
		memcpy(in + MSE_H2_PREFACE_LEN, data, size);
	pieces[0] = in;
	lens[0] = n;
	(void)mse_h2_mem_run(h, pieces, lens, 1, sink, &out);
	if (out == 0)
		abort(); /* at least our SETTINGS */

	piece = 1 + (size ? data[0] % 16 : 0);
	many = malloc((n / piece + 1) * sizeof(*many));
	many_lens = malloc((n / piece + 1) * sizeof(*many_lens));
	if (many && many_lens) {
		for (size_t off = 0; off < n; off += piece, k++) {
			many[k] = in + off;
			many_lens[k] = n - off < piece ? n - off : piece;
		}
		out = 0;
		(void)mse_h2_mem_run(h, many, many_lens, k, sink, &out);
		if (out == 0)
			abort();
	}
	free(many);
	free(many_lens);
	free(in);
	return 0;
}
