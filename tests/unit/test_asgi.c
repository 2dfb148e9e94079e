/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ASGI bridge through a fake exchange over memory buffers: no socket,
 * no server. The app is tests/apps/asgi_raw.py, which asserts the ASGI
 * spec itself (scope fields, lifespan state, receive() chunks) and reports
 * in JSON; the JSON is read here with jansson and checked against the
 * request this test built. Unsandboxed: LeakSanitizer checks the bridge.
 */
#include "testutil.h"
#include "fake.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "net/exchange.h"
#include "net/ws.h"
#include "enclave/asgi.h"
#include "enclave/pyhost.h"

static struct mse_asgi *g_asgi;

/* ---- the fake exchange ---------------------------------------------------- */

static int run(struct fake *f)
{
	struct mse_exchange x = {.ops = &fake_ops, .req = &f->req, .conn = &f->conn, .impl = f};

	return mse_asgi_handle(&x, g_asgi);
}

static json_t *body_json(struct fake *f)
{
	json_error_t je;
	json_t *j = json_loadb((const char *)f->out, f->out_len, 0, &je);

	if (!j)
		fail_msg("not JSON (%s): %.*s", je.text, (int)f->out_len, (const char *)f->out);
	return j;
}

static void scope_is_complete(void **state)
{
	struct fake f;
	json_t *j, *h;

	(void)state;
	fake_init(&f, "GET", "/scope/caf%C3%A9?a=%41&b");
	fake_header(&f, "Host", "example.org");
	fake_header(&f, "X-Twice", "1");
	fake_header(&f, "x-twice", "2");
	assert_int_equal(run(&f), 0);
	assert_int_equal(f.status, 200);
	assert_int_equal(f.nfinish, 1);
	j = body_json(&f);
	assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
	assert_string_equal(json_string_value(json_object_get(j, "path")), "/scope/caf\xc3\xa9");
	assert_string_equal(json_string_value(json_object_get(j, "raw_path")), "/scope/caf%C3%A9");
	assert_string_equal(json_string_value(json_object_get(j, "query_string")), "a=%41&b");
	assert_string_equal(json_string_value(json_object_get(j, "scheme")), "http");
	assert_string_equal(json_string_value(json_object_get(j, "http_version")), "1.1");
	assert_true(json_is_true(json_object_get(j, "headers_ok")));
	h = json_object_get(j, "headers");
	assert_int_equal(json_array_size(h), 3);
	assert_string_equal(json_string_value(json_array_get(json_array_get(h, 0), 0)), "host");
	assert_string_equal(json_string_value(json_array_get(json_array_get(h, 2), 1)), "2");
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "client"), 0)),
			    "127.0.0.1");
	assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "client"), 1)), 40000);
	assert_int_equal(json_integer_value(json_object_get(j, "server_port")), 8443);
	json_decref(j);
	fake_free(&f);
}

static void lifespan_state_reaches_requests(void **state)
{
	struct fake f;
	json_t *j;

	(void)state;
	for (int i = 0; i < 2; i++) {
		fake_init(&f, "GET", i ? "/state?two" : "/state?one");
		assert_int_equal(run(&f), 0);
		j = body_json(&f);
		assert_true(json_is_true(json_object_get(j, "started")));
		assert_true(json_is_null(json_object_get(j, "seen"))); /* a copy per request */
		json_decref(j);
		fake_free(&f);
	}
}

static void body_arrives_in_chunks(void **state)
{
	static uint8_t body[300000];
	struct fake f;
	json_t *j;

	(void)state;
	memset(body, 'b', sizeof(body));
	fake_init(&f, "POST", "/chunks");
	f.body = body;
	f.body_len = sizeof(body);
	f.piece = 7000;
	f.req.content_length = (int64_t)sizeof(body);
	assert_int_equal(run(&f), 0);
	j = body_json(&f);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), (json_int_t)sizeof(body));
	assert_true(json_integer_value(json_object_get(j, "max")) <= 7000);
	assert_true(json_integer_value(json_object_get(j, "n")) >= (json_int_t)(sizeof(body) / 7000));
	assert_true(json_is_false(json_object_get(j, "last_more")));
	json_decref(j);
	fake_free(&f);

	/* A body that fails half-way: receive() says http.disconnect; the exchange closes. */
	fake_init(&f, "POST", "/chunks");
	f.body = body;
	f.body_len = sizeof(body);
	f.fail_read_at = 100000;
	f.req.content_length = (int64_t)sizeof(body);
	assert_int_equal(run(&f), -1);
	fake_free(&f);
}

static void errors_become_500(void **state)
{
	static const char *const paths[] = {"/raise", "/nobody", "/badheaders"};
	struct fake f;

	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		fake_init(&f, "GET", paths[i]);
		run(&f);
		assert_int_equal(f.status, 500);
		assert_int_equal(f.nstart, 1);
		assert_memory_equal(f.out, "Internal Server Error", 21);
		fake_free(&f);
	}
	/* Headers went out, then the app broke the protocol: the connection closes. */
	fake_init(&f, "GET", "/twice");
	assert_int_equal(run(&f), -1);
	assert_int_equal(f.status, 200);
	fake_free(&f);
}

static void large_response_streams(void **state)
{
	struct fake f;

	(void)state;
	fake_init(&f, "GET", "/produce?mib=8");
	assert_int_equal(run(&f), 0);
	assert_int_equal(f.out_len, 8 << 20);
	for (size_t i = 0; i < f.out_len; i += 4096)
		assert_int_equal(f.out[i], 'p');
	fake_free(&f);
	/* The client goes away: the app's sends are dropped, the exchange closes. */
	fake_init(&f, "GET", "/produce?mib=8");
	f.fail_write = 1;
	assert_int_equal(run(&f), -1);
	fake_free(&f);
}

struct sleeper {
	struct fake f;
	pthread_t t;
	int rc;
};

static void *sleep_thread(void *p)
{
	struct sleeper *s = p;

	s->rc = run(&s->f);
	return NULL;
}

static void one_loop_serves_many_at_once(void **state)
{
	enum { N = 24 };
	struct sleeper *s = calloc(N, sizeof(*s));
	struct timespec a, b;
	double secs;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < N; i++) {
		fake_init(&s[i].f, "GET", "/sleep?s=0.5");
		assert_int_equal(pthread_create(&s[i].t, NULL, sleep_thread, &s[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(s[i].t, NULL);
		assert_int_equal(s[i].rc, 0);
		assert_int_equal(s[i].f.status, 200);
		fake_free(&s[i].f);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	/* 24 x 0.5 s one after the other would be 12 s: they overlap in the loop. */
	assert_true(secs < 4.0);
	free(s);
}


/* ---- WebSockets: the upgrade hands a socketpair end over as the stream ---- */

struct pstream {
	struct mse_stream s;
	int fd;
};

static ssize_t ps_read(struct mse_stream *s, void *buf, size_t n)
{
	ssize_t r = read(((struct pstream *)s)->fd, buf, n);

	return r < 0 ? (errno == EAGAIN ? -2 : -1) : r;
}

static ssize_t ps_write(struct mse_stream *s, const void *buf, size_t n)
{
	ssize_t r = write(((struct pstream *)s)->fd, buf, n);

	return r < 0 ? (errno == EAGAIN ? -2 : -1) : r;
}

static int ps_fd(struct mse_stream *s)
{
	return ((struct pstream *)s)->fd;
}

static size_t ps_pending(struct mse_stream *s)
{
	(void)s;
	return 0;
}

static void ps_close(struct mse_stream *s)
{
	close(((struct pstream *)s)->fd);
	free(s);
}

static const struct mse_stream_ops ps_ops = {ps_read, ps_write, ps_fd, ps_pending, ps_close};

static int g_peer = -1; /* the client's end */
static char g_upgrade_headers[1024];

static int fake_upgrade(struct mse_exchange *x, const struct mse_http_header *h, size_t nh,
			struct mse_stream **out)
{
	struct pstream *p = calloc(1, sizeof(*p));
	int sv[2];
	size_t o = 0;

	assert_non_null(p);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	for (size_t i = 0; i < nh; i++)
		o += (size_t)snprintf(g_upgrade_headers + o, sizeof(g_upgrade_headers) - o,
				      "%.*s: %.*s\n", (int)h[i].name_len, h[i].name,
				      (int)h[i].value_len, h[i].value);
	p->s.ops = &ps_ops;
	p->fd = sv[0];
	g_peer = sv[1];
	x->started = 1;
	*out = &p->s;
	return 0;
}

static const struct mse_exchange_ops fake_ws_ops = {fake_read, fake_start, fake_write, fake_finish,
						     fake_upgrade};

/* RFC 6455 §1.3's example key and its accept value. */
#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static int ws_open(struct fake *f, const char *path)
{
	struct mse_exchange x = {.ops = &fake_ws_ops, .req = &f->req, .conn = &f->conn, .impl = f};

	fake_init(f, "GET", path);
	fake_header(f, "Host", "localhost");
	fake_header(f, "Upgrade", "websocket");
	fake_header(f, "Connection", "keep-alive, Upgrade");
	fake_header(f, "Sec-WebSocket-Key", KEY);
	fake_header(f, "Sec-WebSocket-Version", "13");
	fake_header(f, "Sec-WebSocket-Protocol", "chat, superchat");
	g_peer = -1;
	g_upgrade_headers[0] = '\0';
	return mse_asgi_handle(&x, g_asgi);
}

/* A masked client frame (RFC 6455 §5.2). */
static void ws_put(int fd, int fin, int opcode, const void *data, size_t n, int masked)
{
	uint8_t *b = malloc(n + 14), mask[4] = {0x12, 0x34, 0x56, 0x78};
	size_t o = 0;

	b[o++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
	if (n < 126) {
		b[o++] = (uint8_t)((masked ? 0x80 : 0) | n);
	} else if (n < 65536) {
		b[o++] = (uint8_t)((masked ? 0x80 : 0) | 126);
		b[o++] = (uint8_t)(n >> 8);
		b[o++] = (uint8_t)n;
	} else {
		b[o++] = (uint8_t)((masked ? 0x80 : 0) | 127);
		for (int i = 7; i >= 0; i--)
			b[o++] = (uint8_t)((uint64_t)n >> (8 * i));
	}
	if (masked) {
		memcpy(b + o, mask, 4);
		o += 4;
	}
	for (size_t i = 0; i < n; i++)
		b[o + i] = (uint8_t)(((const uint8_t *)data)[i] ^ (masked ? mask[i % 4] : 0));
	for (size_t w = 0; w < o + n;) {
		ssize_t r = write(fd, b + w, o + n - w);

		if (r < 0 && errno == EPIPE)
			break; /* the server closed first (1009 before the whole frame) */
		assert_true(r > 0);
		w += (size_t)r;
	}
	free(b);
}

static void read_full(int fd, void *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t r;

		assert_int_equal(poll(&p, 1, 10000), 1);
		r = read(fd, (char *)buf + got, n - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
}

/* Reads one server frame (unmasked): returns the opcode, payload in *data (malloc'd). */
static int ws_get(int fd, uint8_t **data, size_t *n)
{
	uint8_t h[2], ext[8];
	uint64_t len;

	read_full(fd, h, 2);
	assert_int_equal(h[1] & 0x80, 0); /* §5.1: a server never masks */
	len = h[1] & 0x7f;
	if (len == 126) {
		read_full(fd, ext, 2);
		len = (uint64_t)ext[0] << 8 | ext[1];
	} else if (len == 127) {
		read_full(fd, ext, 8);
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | ext[i];
	}
	*data = malloc(len + 1);
	read_full(fd, *data, len);
	*n = len;
	return h[0] & 0x0f;
}

static uint16_t close_code(const uint8_t *d, size_t n)
{
	return n >= 2 ? (uint16_t)(d[0] << 8 | d[1]) : 0;
}

static void websocket_echo(void **state)
{
	struct fake f;
	uint8_t *d, *big;
	size_t n;

	(void)state;
	assert_int_equal(ws_open(&f, "/ws/echo"), 0);
	assert_int_equal(f.nstart, 0); /* no HTTP response: a 101 through upgrade() */
	assert_non_null(strstr(g_upgrade_headers, "Sec-WebSocket-Accept: " ACCEPT "\n"));
	ws_put(g_peer, 1, 1, "hello", 5, 1);
	assert_int_equal(ws_get(g_peer, &d, &n), 1);
	assert_int_equal(n, 5);
	assert_memory_equal(d, "hello", 5);
	free(d);
	/* Fragmented: "fra" + "gment" (§5.4), a ping in the middle (§5.5.2: pong). */
	ws_put(g_peer, 0, 2, "fra", 3, 1);
	ws_put(g_peer, 1, 9, "pi", 2, 1);
	ws_put(g_peer, 1, 0, "gment", 5, 1);
	assert_int_equal(ws_get(g_peer, &d, &n), 10);
	assert_memory_equal(d, "pi", 2);
	free(d);
	assert_int_equal(ws_get(g_peer, &d, &n), 2);
	assert_int_equal(n, 8);
	assert_memory_equal(d, "fragment", 8);
	free(d);
	/* 1 MiB binary. */
	big = malloc(1 << 20);
	for (size_t i = 0; i < (1u << 20); i++)
		big[i] = (uint8_t)(i * 7);
	ws_put(g_peer, 1, 2, big, 1 << 20, 1);
	assert_int_equal(ws_get(g_peer, &d, &n), 2);
	assert_int_equal(n, 1 << 20);
	assert_memory_equal(d, big, 1 << 20);
	free(d);
	free(big);
	/* A normal close: the server answers with the same code. */
	ws_put(g_peer, 1, 8, "\x03\xe8", 2, 1);
	assert_int_equal(ws_get(g_peer, &d, &n), 8);
	assert_int_equal(close_code(d, n), 1000);
	free(d);
	close(g_peer);
	fake_free(&f);
}

static void websocket_protocol_errors(void **state)
{
	static uint8_t big[(1 << 20) + 10];
	struct fake f;
	uint8_t *d;
	size_t n;

	(void)state;
	/* An unmasked client frame (§5.1): 1002. */
	assert_int_equal(ws_open(&f, "/ws/echo"), 0);
	ws_put(g_peer, 1, 1, "hi", 2, 0);
	assert_int_equal(ws_get(g_peer, &d, &n), 8);
	assert_int_equal(close_code(d, n), 1002);
	free(d);
	close(g_peer);
	fake_free(&f);
	/* A reserved opcode: 1002. */
	assert_int_equal(ws_open(&f, "/ws/echo"), 0);
	ws_put(g_peer, 1, 3, "x", 1, 1);
	assert_int_equal(ws_get(g_peer, &d, &n), 8);
	assert_int_equal(close_code(d, n), 1002);
	free(d);
	close(g_peer);
	fake_free(&f);
	/* Over the limit (1 MiB here): 1009. */
	assert_int_equal(ws_open(&f, "/ws/echo"), 0);
	ws_put(g_peer, 1, 2, big, sizeof(big), 1);
	assert_int_equal(ws_get(g_peer, &d, &n), 8);
	assert_int_equal(close_code(d, n), 1009);
	free(d);
	close(g_peer);
	fake_free(&f);
}

static void websocket_deny_and_scope(void **state)
{
	struct fake f;
	uint8_t *d;
	size_t n;
	json_t *j;

	(void)state;
	/* websocket.close before accept: HTTP 403 (ASGI). */
	ws_open(&f, "/ws/deny");
	assert_int_equal(f.status, 403);
	assert_int_equal(g_peer, -1);
	fake_free(&f);
	assert_int_equal(ws_open(&f, "/ws/scope?x=1"), 0);
	assert_non_null(strstr(g_upgrade_headers, "sec-websocket-protocol: chat\n"));
	assert_non_null(strstr(g_upgrade_headers, "x-ws: yes\n"));
	assert_int_equal(ws_get(g_peer, &d, &n), 1);
	j = json_loadb((const char *)d, n, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "scheme")), "ws");
	assert_string_equal(json_string_value(json_object_get(j, "path")), "/ws/scope");
	assert_string_equal(json_string_value(json_object_get(j, "query_string")), "x=1");
	assert_int_equal(json_array_size(json_object_get(j, "subprotocols")), 2);
	assert_true(json_is_true(json_object_get(j, "state")));
	json_decref(j);
	free(d);
	assert_int_equal(ws_get(g_peer, &d, &n), 8);
	assert_int_equal(close_code(d, n), 1000);
	free(d);
	close(g_peer);
	fake_free(&f);
	/* A bad handshake (version 8): 400, no app. */
	fake_init(&f, "GET", "/ws/echo");
	fake_header(&f, "Upgrade", "websocket");
	fake_header(&f, "Connection", "Upgrade");
	fake_header(&f, "Sec-WebSocket-Key", KEY);
	fake_header(&f, "Sec-WebSocket-Version", "8");
	{
		struct mse_exchange x = {.ops = &fake_ws_ops, .req = &f.req, .conn = &f.conn, .impl = &f};

		assert_int_equal(mse_asgi_handle(&x, g_asgi), -1);
	}
	assert_int_equal(f.status, 400);
	fake_free(&f);
}

static void websocket_accept_vector(void **state)
{
	char out[MSE_WS_ACCEPT_LEN + 1];

	(void)state;
	assert_int_equal(mse_ws_accept(KEY, strlen(KEY), out), 0);
	assert_string_equal(out, ACCEPT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(scope_is_complete),
		cmocka_unit_test(lifespan_state_reaches_requests),
		cmocka_unit_test(body_arrives_in_chunks),
		cmocka_unit_test(errors_become_500),
		cmocka_unit_test(large_response_streams),
		cmocka_unit_test(one_loop_serves_many_at_once),
		cmocka_unit_test(websocket_accept_vector),
		cmocka_unit_test(websocket_echo),
		cmocka_unit_test(websocket_protocol_errors),
		cmocka_unit_test(websocket_deny_and_scope),
	};
	struct mse_pyhost_config hc = {.app = "asgi_raw:app", .module_path = "tests/apps"};
	struct mse_pyhost *host = NULL;
	struct mse_asgi_config ac = {0};
	enum mse_pyhost_iface iface;
	struct mse_err err;
	int rc;

	mse_log_init("test_asgi", MSE_LOG_INFO);
	signal(SIGPIPE, SIG_IGN); /* as the server does: a closed peer is an error, not a signal */
	mse_err_clear(&err);
	if (mse_pyhost_start(&hc, &host, &err) != 0 ||
	    mse_pyhost_detect(host, MSE_IFACE_AUTO, 0, &iface, &err) != 0) {
		fprintf(stderr, "host: %s\n", err.msg);
		mse_pyhost_free(host);
		return 1;
	}
	if (iface != MSE_IFACE_ASGI3) {
		fprintf(stderr, "asgi_raw:app detected as %s\n", mse_pyhost_iface_name(iface));
		mse_pyhost_free(host);
		return 1;
	}
	ac.host = host;
	ac.iface = iface;
	ac.ws_max_msg = 1 << 20;
	if (mse_asgi_init(&ac, &g_asgi, &err) != 0) {
		fprintf(stderr, "mse_asgi_init: %s\n", err.msg);
		mse_pyhost_free(host);
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	mse_asgi_free(g_asgi);
	mse_pyhost_free(host);
	return rc;
}
