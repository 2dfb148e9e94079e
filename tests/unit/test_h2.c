/* SPDX-License-Identifier: Apache-2.0 */
/*
 * src/net/h2 in-process: the server side driven by frames that
 * libnghttp2's own *client* session builds in memory (the independent
 * implementation: HPACK, framing and the connection preface are its), fed
 * to net/h2's in-memory mode (mse_h2_mem_run), and what the server wrote
 * fed back to that client session, whose callbacks say what a client
 * sees: the server's SETTINGS, statuses, bodies, stream resets, GOAWAY.
 *
 * Covered: the SETTINGS the server announces, the concurrent-stream
 * limit, header-list limits (bytes and count), a stream the client resets
 * before its handler ran (no handler call, the next stream served), and
 * the memory cap hook: stream buffers charged and given back, refusals
 * answered 503.
 */
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "common/log.h"
#include "net/h2.h"

#define MAX_STREAMS 64

/* ---- the server's handler -------------------------------------------------- */

static int g_calls;             /* handler calls */
static char g_paths[16][64];    /* the paths it saw, in order */

/* /hello answers "hello"; /echo answers the body it read (its length
 * first); anything else 404. */
static int handler(struct mse_exchange *x, void *user)
{
	struct mse_http_header ct = {"content-type", 12, "text/plain", 10};
	const struct mse_http_request *q = x->req;
	char buf[4096];
	ssize_t r;
	size_t total = 0;

	(void)user;
	if (g_calls < 16)
		snprintf(g_paths[g_calls], sizeof(g_paths[0]), "%.*s", (int)q->path_len, q->path);
	g_calls++;
	if (q->path_len == 6 && memcmp(q->path, "/hello", 6) == 0) {
		if (mse_exchange_start(x, 200, NULL, &ct, 1) != 0)
			return 0;
		(void)mse_exchange_write(x, "hello", 5);
		return mse_exchange_finish(x);
	}
	if (q->path_len == 5 && memcmp(q->path, "/echo", 5) == 0) {
		char line[32];
		int n;

		while ((r = mse_exchange_read_body(x, buf, sizeof(buf))) > 0)
			total += (size_t)r;
		if (r < 0)
			return 0; /* the server answers the body error */
		if (mse_exchange_start(x, 200, NULL, &ct, 1) != 0)
			return 0;
		n = snprintf(line, sizeof(line), "%zu", total);
		(void)mse_exchange_write(x, line, (size_t)n);
		return mse_exchange_finish(x);
	}
	if (mse_exchange_start(x, 404, NULL, &ct, 1) != 0)
		return 0;
	return mse_exchange_finish(x);
}

/* ---- the memory cap hook ----------------------------------------------------- */

static size_t g_budget, g_charged, g_peak;
static int g_refused;

static int charge(size_t n, void *user)
{
	(void)user;
	if (g_charged + n > g_budget) {
		g_refused++;
		return -1;
	}
	g_charged += n;
	if (g_charged > g_peak)
		g_peak = g_charged;
	return 0;
}

static void uncharge(size_t n, void *user)
{
	(void)user;
	assert_true(n <= g_charged);
	g_charged -= n;
}

/* ---- the client: libnghttp2's session, in memory ------------------------------- */

struct cstream {
	int status;
	char body[256];
	size_t blen;
	int closed;
	uint32_t code; /* RST_STREAM error code, or NO_ERROR */
};

struct client {
	nghttp2_session *s;
	struct cstream st[MAX_STREAMS];
	int goaway;
	uint32_t goaway_code;
	/* the bytes it sent, gathered piece by piece */
	uint8_t *out;
	size_t len, cap;
	/* request body source */
	const uint8_t *src;
	size_t src_len, src_off;
};

static struct cstream *cs(struct client *c, int32_t id)
{
	assert_true(id > 0 && id % 2 == 1 && (id - 1) / 2 < MAX_STREAMS);
	return &c->st[(id - 1) / 2];
}

static int c_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
		       size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	(void)s;
	(void)flags;
	if (f->hd.type == NGHTTP2_HEADERS && nl == 7 && memcmp(name, ":status", 7) == 0) {
		char v[8] = {0};

		memcpy(v, value, vl < 7 ? vl : 7);
		cs(ud, f->hd.stream_id)->status = atoi(v);
	}
	return 0;
}

static int c_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
		     size_t len, void *ud)
{
	struct cstream *st = cs(ud, id);

	(void)s;
	(void)flags;
	if (st->blen + len <= sizeof(st->body)) {
		memcpy(st->body + st->blen, data, len);
		st->blen += len;
	}
	return 0;
}

static int c_on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct cstream *st = cs(ud, id);

	(void)s;
	st->closed = 1;
	st->code = code;
	return 0;
}

static int c_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct client *c = ud;

	(void)s;
	if (f->hd.type == NGHTTP2_GOAWAY) {
		c->goaway = 1;
		c->goaway_code = f->goaway.error_code;
	}
	return 0;
}

static ssize_t c_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
		      uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct client *c = ud;
	size_t k = c->src_len - c->src_off;

	(void)s;
	(void)id;
	(void)src;
	if (k > length)
		k = length;
	memcpy(buf, c->src + c->src_off, k);
	c->src_off += k;
	if (c->src_off == c->src_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)k;
}

static void client_init(struct client *c)
{
	nghttp2_session_callbacks *cb;

	memset(c, 0, sizeof(*c));
	assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame);
	assert_int_equal(nghttp2_session_client_new(&c->s, cb, c), 0);
	nghttp2_session_callbacks_del(cb);
	/* The client's own SETTINGS (empty): the preface goes out with it. */
	assert_int_equal(nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

static void client_free(struct client *c)
{
	nghttp2_session_del(c->s);
	free(c->out);
}

/* Everything the client session wants to send now, appended to c->out;
 * returns the offset where it starts. */
static size_t client_flush(struct client *c)
{
	size_t start = c->len;
	const uint8_t *p;
	ssize_t n;

	while ((n = nghttp2_session_mem_send(c->s, &p)) > 0) {
		if (c->len + (size_t)n > c->cap) {
			c->cap = (c->len + (size_t)n) * 2;
			c->out = realloc(c->out, c->cap);
			assert_non_null(c->out);
		}
		memcpy(c->out + c->len, p, (size_t)n);
		c->len += (size_t)n;
	}
	assert_true(n == 0);
	return start;
}

static int32_t client_get(struct client *c, const char *path, const nghttp2_nv *extra, size_t n)
{
	nghttp2_nv nv[32] = {
		{(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
		{(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
		{(uint8_t *)":authority", (uint8_t *)"unit", 10, 4, 0},
		{(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
	};
	int32_t id;

	assert_true(n <= 28);
	if (n)
		memcpy(nv + 4, extra, n * sizeof(*nv));
	id = nghttp2_submit_request(c->s, NULL, nv, 4 + n, NULL, NULL);
	assert_true(id > 0);
	return id;
}

static int32_t client_post(struct client *c, const char *path, const uint8_t *body, size_t len,
			   int with_length)
{
	char cl[24];
	nghttp2_nv nv[5] = {
		{(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
		{(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
		{(uint8_t *)":authority", (uint8_t *)"unit", 10, 4, 0},
		{(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
		{(uint8_t *)"content-length", (uint8_t *)cl, 14, 0, 0},
	};
	nghttp2_data_provider prd = {.read_callback = c_body};
	int32_t id;

	nv[4].valuelen = (size_t)snprintf(cl, sizeof(cl), "%zu", len);
	c->src = body;
	c->src_len = len;
	c->src_off = 0;
	id = nghttp2_submit_request(c->s, NULL, nv, with_length ? 5 : 4, &prd, NULL);
	assert_true(id > 0);
	return id;
}

/* ---- running the server ---------------------------------------------------------- */

struct sbuf {
	uint8_t *p;
	size_t len, cap;
};

static void sink(const uint8_t *p, size_t n, void *arg)
{
	struct sbuf *b = arg;

	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static struct mse_server_config g_cfg;

static void cfg_init(void)
{
	mse_server_config_init(&g_cfg);
	g_cfg.handler = handler;
	g_cfg.server_name = "unit";
	g_calls = 0;
	memset(g_paths, 0, sizeof(g_paths));
	g_budget = g_charged = g_peak = 0;
	g_refused = 0;
}

/*
 * The client's bytes, cut at the offsets in cuts (n of them, ascending,
 * the last being c->len), through a fresh engine; then the server's bytes
 * through the client session. Returns mse_h2_mem_run's result.
 */
static long serve(struct client *c, const size_t *cuts, size_t n)
{
	struct mse_h2 *h = NULL;
	struct mse_err err;
	const uint8_t *pieces[8];
	size_t lens[8], prev = 0;
	struct sbuf out = {0};
	long rc;
	ssize_t r;

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		pieces[i] = c->out + prev;
		lens[i] = cuts[i] - prev;
		prev = cuts[i];
	}
	assert_int_equal(mse_h2_new(&g_cfg, 0, &h, &err), 0);
	rc = mse_h2_mem_run(h, pieces, lens, n, sink, &out);
	mse_h2_free(h);
	r = nghttp2_session_mem_recv(c->s, out.p, out.len);
	assert_int_equal(r, (ssize_t)out.len);
	free(out.p);
	return rc;
}

static long serve_all(struct client *c)
{
	size_t cut = c->len;

	return serve(c, &cut, 1);
}

/* ---- tests ---------------------------------------------------------------------- */

static void settings_announced_and_a_request_served(void **state)
{
	struct client c;

	(void)state;
	cfg_init();
	g_cfg.h2_max_streams = 7;
	g_cfg.max_head_bytes = 3000;
	client_init(&c);
	client_get(&c, "/hello", NULL, 0);
	client_flush(&c);
	assert_true(serve_all(&c) > 0);
	/* RFC 9113 §6.5.2: what the server's SETTINGS frame said. */
	assert_int_equal(
		nghttp2_session_get_remote_settings(c.s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 7);
	assert_int_equal(
		nghttp2_session_get_remote_settings(c.s, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE), 3000);
	assert_int_equal(c.st[0].status, 200);
	assert_int_equal(c.st[0].blen, 5);
	assert_memory_equal(c.st[0].body, "hello", 5);
	assert_true(c.st[0].closed);
	assert_int_equal(c.st[0].code, NGHTTP2_NO_ERROR);
	/* The end of the input is the stop: GOAWAY NO_ERROR. */
	assert_true(c.goaway);
	assert_int_equal(c.goaway_code, NGHTTP2_NO_ERROR);
	assert_int_equal(g_calls, 1);
	client_free(&c);
}

static void streams_beyond_the_limit_are_refused(void **state)
{
	struct client c;

	(void)state;
	cfg_init();
	g_cfg.h2_max_streams = 2;
	client_init(&c);
	/* Sent before the server's SETTINGS could arrive: the client does
	 * not know the limit yet; the server enforces it on its own. */
	for (int i = 0; i < 4; i++)
		client_get(&c, "/hello", NULL, 0);
	client_flush(&c);
	assert_true(serve_all(&c) > 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(c.st[i].status, 200);
		assert_int_equal(c.st[i].code, NGHTTP2_NO_ERROR);
	}
	for (int i = 2; i < 4; i++) {
		assert_int_equal(c.st[i].status, 0);
		assert_true(c.st[i].closed);
		assert_int_equal(c.st[i].code, NGHTTP2_REFUSED_STREAM);
	}
	assert_int_equal(g_calls, 2);
	client_free(&c);
}

static void header_lists_over_the_limits_are_431(void **state)
{
	struct client c;
	char big[1500];
	nghttp2_nv one = {(uint8_t *)"x-big", (uint8_t *)big, 5, sizeof(big), 0};
	nghttp2_nv many[12];
	char names[12][8];

	(void)state;
	cfg_init();
	g_cfg.max_head_bytes = 1024;
	g_cfg.max_headers = 8;
	memset(big, 'a', sizeof(big));
	for (int i = 0; i < 12; i++) {
		snprintf(names[i], sizeof(names[i]), "x-h%d", i);
		many[i] = (nghttp2_nv){(uint8_t *)names[i], (uint8_t *)"v", strlen(names[i]), 1, 0};
	}
	client_init(&c);
	client_get(&c, "/hello", &one, 1);   /* bytes over max_head_bytes */
	client_get(&c, "/hello", many, 12);  /* fields over max_headers */
	client_get(&c, "/hello", many, 4);   /* within both */
	client_flush(&c);
	assert_true(serve_all(&c) > 0);
	assert_int_equal(c.st[0].status, 431);
	assert_int_equal(c.st[1].status, 431);
	assert_int_equal(c.st[2].status, 200);
	/* The refused ones never reached the app; HPACK stayed in step for the third. */
	assert_int_equal(g_calls, 1);
	client_free(&c);
}

static void a_stream_reset_before_its_handler_costs_nothing(void **state)
{
	struct client c;
	size_t cuts[2];
	int32_t id;

	(void)state;
	cfg_init();
	client_init(&c);
	id = client_get(&c, "/reset-me", NULL, 0);
	client_flush(&c);
	/* HEADERS then RST_STREAM in one piece: reset before a worker took it. */
	assert_int_equal(nghttp2_submit_rst_stream(c.s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL), 0);
	client_flush(&c);
	cuts[0] = c.len;
	client_get(&c, "/hello", NULL, 0);
	client_flush(&c);
	cuts[1] = c.len;
	assert_true(serve(&c, cuts, 2) > 0);
	assert_int_equal(g_calls, 1);
	assert_string_equal(g_paths[0], "/hello");
	assert_int_equal(c.st[0].status, 0);
	assert_int_equal(c.st[0].code, NGHTTP2_CANCEL);
	assert_int_equal(c.st[1].status, 200);
	assert_memory_equal(c.st[1].body, "hello", 5);
	client_free(&c);
}

static uint8_t g_body[40000];

static void stream_buffers_count_in_the_memory_cap(void **state)
{
	struct client c;

	(void)state;
	memset(g_body, 'b', sizeof(g_body));
	/* Room for everything: charged while held, all given back. */
	cfg_init();
	g_cfg.mem_charge = charge;
	g_cfg.mem_uncharge = uncharge;
	g_budget = 1 << 20;
	client_init(&c);
	client_post(&c, "/echo", g_body, sizeof(g_body), 1);
	client_flush(&c);
	assert_true(serve_all(&c) > 0);
	assert_int_equal(c.st[0].status, 200);
	assert_int_equal(c.st[0].blen, 5);
	assert_memory_equal(c.st[0].body, "40000", 5);
	/* The 40000-byte body buffered whole (a 64 KiB buffer) plus the
	 * 64 KiB response buffer, at once. */
	assert_true(g_peak >= 40000 + 65536);
	assert_int_equal(g_charged, 0);
	assert_int_equal(g_refused, 0);
	client_free(&c);

	/* A body that would outgrow the budget: 503, never the handler. */
	cfg_init();
	g_cfg.mem_charge = charge;
	g_cfg.mem_uncharge = uncharge;
	g_budget = 20000;
	client_init(&c);
	client_post(&c, "/echo", g_body, sizeof(g_body), 1);
	client_flush(&c);
	assert_true(serve_all(&c) > 0);
	assert_int_equal(c.st[0].status, 503);
	assert_int_equal(g_calls, 0);
	assert_true(g_refused > 0);
	assert_int_equal(g_charged, 0);
	client_free(&c);

	/* A response buffer over the budget: the handler ran (it read its
	 * 30000 bytes, a 32 KiB buffer), its start is refused (64 KiB more),
	 * the client gets 503. */
	cfg_init();
	g_cfg.mem_charge = charge;
	g_cfg.mem_uncharge = uncharge;
	g_budget = 65536 + 16384;
	client_init(&c);
	client_post(&c, "/echo", g_body, 30000, 1);
	client_flush(&c);
	assert_true(serve_all(&c) > 0);
	assert_int_equal(c.st[0].status, 503);
	assert_int_equal(g_calls, 1);
	assert_int_equal(g_charged, 0);
	client_free(&c);

	/* The response buffer alone: exactly the budget fits, a byte less not. */
	for (int k = 0; k < 2; k++) {
		cfg_init();
		g_cfg.mem_charge = charge;
		g_cfg.mem_uncharge = uncharge;
		g_budget = 65536 - (size_t)k;
		client_init(&c);
		client_get(&c, "/hello", NULL, 0);
		client_flush(&c);
		assert_true(serve_all(&c) > 0);
		assert_int_equal(c.st[0].status, k ? 503 : 200);
		assert_int_equal(g_calls, 1);
		assert_int_equal(g_charged, 0);
		client_free(&c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(settings_announced_and_a_request_served),
		cmocka_unit_test(streams_beyond_the_limit_are_refused),
		cmocka_unit_test(header_lists_over_the_limits_are_431),
		cmocka_unit_test(a_stream_reset_before_its_handler_costs_nothing),
		cmocka_unit_test(stream_buffers_count_in_the_memory_cap),
	};

	mse_log_init("test_h2", MSE_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
