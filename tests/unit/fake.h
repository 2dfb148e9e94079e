/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_ — an exchange (net/exchange.h) over memory buffers for the bridges'
 * unit tests: no socket, no server.
 */
#ifndef MSE_TEST_FAKE_H
#define MSE_TEST_FAKE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/exchange.h"

struct fake {
	struct mse_http_request req;
	struct mse_conn_info conn;
	struct mse_http_header hdrs[16];
	const uint8_t *body;
	size_t body_len, body_off;
	size_t piece;	    /* most bytes one read_body returns (0 = any) */
	long fail_read_at;  /* read_body fails once this many bytes were read (-1 never) */
	int read_sleep_ms;  /* read_body sleeps first (GIL must be released) */
	int fail_write;	    /* write() fails */
	/* what the handler answered */
	int status;
	char reason[128];
	char headers[4096]; /* "name: value\n" each */
	int nstart, nfinish;
	uint8_t *out;
	size_t out_len, out_cap;
};

ssize_t fake_read(struct mse_exchange *x, void *buf, size_t n);
int fake_start(struct mse_exchange *x, int status, const char *reason,
	       const struct mse_http_header *h, size_t nh);
int fake_write(struct mse_exchange *x, const void *data, size_t n);
int fake_finish(struct mse_exchange *x);
/* read, start, write, finish above (no upgrade). */
extern const struct mse_exchange_ops fake_ops;

/* A request line: method and target ("/path?query"), HTTP/1.1, keep-alive. */
void fake_init(struct fake *f, const char *method, const char *target);
/* Adds a header (at most 16; the strings are not copied). */
void fake_header(struct fake *f, const char *name, const char *value);
/* The request body (not copied), with Content-Length or chunked. */
void fake_body(struct fake *f, const void *body, size_t len, int chunked);
/* Frees what the answer kept. */
void fake_free(struct fake *f);

#endif
