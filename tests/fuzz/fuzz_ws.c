/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: WebSocket input (what a client sends after the 101)
 * through the server's framing layer (net/ws over libwslay), from a memory
 * stream that returns the input in pieces and then its end.
 *
 * Contracts checked besides "no crash, no over-read":
 * - the messages delivered do not depend on how the input is cut into
 *   reads (whole, or pieces of 1..8 bytes), nor does the close code when
 *   both runs saw a clean close: libwslay checks UTF-8, close codes and
 *   truncation (1007, 1002, 1006) in an order that depends on how much of
 *   a frame it had at once, so for broken input only the messages must
 *   agree;
 * - messages never hold more bytes than the input, and none is over the
 *   limit (64 KiB here);
 * - the close code is one RFC 6455 §7.4 allows to report.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/ws.h"

#define LIMIT 65536

struct mem {
	struct mse_stream s;
	const uint8_t *p;
	size_t n, off, piece;
	int wouldblock; /* alternate "would block" with data, as a socket does */
};

struct seen {
	uint64_t hash;
	size_t count, bytes;
};

static ssize_t m_read(struct mse_stream *s, void *buf, size_t n)
{
	struct mem *m = (struct mem *)s;
	size_t k = m->n - m->off;

	if (m->wouldblock ^= 1)
		return -2;
	if (!k)
		return 0;
	if (k > m->piece)
		k = m->piece;
	if (k > n)
		k = n;
	memcpy(buf, m->p + m->off, k);
	m->off += k;
	return (ssize_t)k;
}

static ssize_t m_write(struct mse_stream *s, const void *buf, size_t n)
{
	(void)s;
	(void)buf;
	return (ssize_t)n;
}

static int m_fd(struct mse_stream *s)
{
	(void)s;
	return -1;
}

static size_t m_pending(struct mse_stream *s)
{
	(void)s;
	return 0;
}

static void m_close(struct mse_stream *s)
{
	(void)s;
}

static const struct mse_stream_ops m_ops = {m_read, m_write, m_fd, m_pending, m_close};

static void on_message(void *user, int text, const uint8_t *d, size_t n)
{
	struct seen *s = user;

	if (n > LIMIT)
		abort();
	s->count++;
	s->bytes += n;
	s->hash = s->hash * 1000003u ^ (uint64_t)(text + 1);
	for (size_t i = 0; i < n; i++)
		s->hash = s->hash * 31u + d[i];
}

static uint16_t run(const uint8_t *data, size_t size, size_t piece, struct seen *seen)
{
	struct mem m = {{&m_ops, NULL}, data, size, 0, piece, 0};
	struct mse_ws_callbacks cb = {on_message};
	struct mse_ws *w = mse_ws_new(&m.s, LIMIT, &cb, seen);
	uint16_t code;
	int guard = 0;

	if (!w)
		abort();
	while (mse_ws_io(w) == 0 && guard++ < 4 * (int)size + 16)
		;
	code = mse_ws_close_code(w);
	mse_ws_free(w);
	return code;
}

/* What mse_ws_close_code may report (RFC 6455 §7.4). */
static int ok_code(uint16_t c)
{
	return (c >= 1000 && c <= 1003) || (c >= 1005 && c <= 1011) || (c >= 3000 && c <= 4999);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen a = {0}, b = {0};
	uint8_t *copy = malloc(size ? size : 1);
	uint16_t ca, cb;

	memcpy(copy, data, size);
	ca = run(copy, size, size ? size : 1, &a);
	cb = run(copy, size, 1 + (size ? data[0] % 8 : 0), &b);
	if (!ok_code(ca) || !ok_code(cb))
		abort();
	if (ca == 1007 || ca == 1006 || cb == 1007 || cb == 1006 || ca == 1002 || cb == 1002)
		ca = cb = 0; /* broken input: either side may have seen it first */
	if (ca != cb || a.hash != b.hash || a.count != b.count || a.bytes != b.bytes)
		abort();
	if (a.bytes > size)
		abort();
	free(copy);
	return 0;
}
