/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A test server: mse_server with C handlers, driven by the end-to-end tests
 * (tests/e2e/test_http_server.py). Prints the port on stdout, serves until
 * SIGTERM/SIGINT (handled by a sigwait thread calling mse_server_stop).
 *
 *   http_server [--tls CERT KEY] [--threads N] [--head-timeout MS]
 *               [--idle-timeout MS] [--read-timeout MS] [--drain-timeout MS]
 *               [--max-body N] [--max-head N] [--max-headers N]
 *               [--min-rate BYTES_PER_S] [--min-rate-grace MS] [--max-connections N]
 *               [--max-per-address N] [--body-buffer N] [--request-timeout MS]
 *               [--max-threads N]
 *               [--access-log FILE] [--handoff] [--debug]
 *
 * Routes: /echo (body back, streamed), /sha256 (digest and length of the
 * body), /download?n=N[&chunked] (N pattern bytes), /info (what the handler
 * sees), /slow?ms=N, /noanswer (no response: the server must answer 500),
 * /short (promises 10 bytes, writes 5), /stop (stops this server: with
 * --handoff a second server then serves the same listening socket),
 * /readhalf (reads 1 byte of the body then answers).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>

#include "common/log.h"
#include "net/exchange.h"
#include "net/server.h"
#include "net/tls.h"

static struct mse_server *g_server;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static void set_server(struct mse_server *s)
{
	pthread_mutex_lock(&g_lock);
	g_server = s;
	pthread_mutex_unlock(&g_lock);
}
static int g_generation; /* 1 = first server, 2 = after handoff */

static atomic_int g_thread_starts, g_thread_stops;

static void on_thread_start(void *user)
{
	(void)user;
	atomic_fetch_add(&g_thread_starts, 1);
}

static void on_thread_stop(void *user)
{
	(void)user;
	atomic_fetch_add(&g_thread_stops, 1);
}

static int answer(struct mse_exchange *x, int status, const char *ctype, const void *body,
		  size_t n)
{
	char len[32];
	struct mse_http_header h[3] = {
		{"Content-Type", 12, ctype, strlen(ctype)},
		{"Content-Length", 14, len, 0},
		{"X-Generation", 12, g_generation == 1 ? "1" : "2", 1},
	};

	h[1].value_len = (size_t)snprintf(len, sizeof(len), "%zu", n);
	if (mse_exchange_start(x, status, NULL, h, 3) != 0)
		return -1;
	if (n && mse_exchange_write(x, body, n) != 0)
		return -1;
	return mse_exchange_finish(x);
}

static long query_num(const struct mse_http_request *r, const char *key, long dflt)
{
	char q[256];
	size_t n = r->query_len < sizeof(q) - 1 ? r->query_len : sizeof(q) - 1;
	char *p;

	memcpy(q, r->query, n);
	q[n] = 0;
	for (p = strtok(q, "&"); p; p = strtok(NULL, "&")) {
		size_t k = strlen(key);

		if (strncmp(p, key, k) == 0 && p[k] == '=')
			return strtol(p + k + 1, NULL, 10);
		if (strcmp(p, key) == 0)
			return 1;
	}
	return dflt;
}

static int path_is(const struct mse_http_request *r, const char *p)
{
	return r->path_len == strlen(p) && memcmp(r->path, p, r->path_len) == 0;
}

static int h_echo(struct mse_exchange *x)
{
	char buf[65536];
	struct mse_http_header h = {"Content-Type", 12, "application/octet-stream", 24};
	ssize_t n;

	/* No Content-Length: chunked on HTTP/1.1, close-delimited on 1.0. */
	while ((n = mse_exchange_read_body(x, buf, sizeof(buf))) > 0) {
		if (!x->started && mse_exchange_start(x, 200, NULL, &h, 1) != 0)
			return -1;
		if (mse_exchange_write(x, buf, (size_t)n) != 0)
			return -1;
	}
	if (n < 0)
		return x->started ? -1 : 0; /* not started: the server answers */
	if (!x->started && mse_exchange_start(x, 200, NULL, &h, 1) != 0)
		return -1;
	return mse_exchange_finish(x);
}

static int h_sha256(struct mse_exchange *x)
{
	unsigned char buf[65536], md[32];
	char out[128];
	unsigned long long total = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned mdlen = 0;
	ssize_t n;
	int len;

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((n = mse_exchange_read_body(x, buf, sizeof(buf))) > 0) {
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		total += (unsigned long long)n;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (n < 0)
		return 0;
	len = 0;
	for (unsigned i = 0; i < mdlen; i++)
		len += snprintf(out + len, sizeof(out) - (size_t)len, "%02x", md[i]);
	len += snprintf(out + len, sizeof(out) - (size_t)len, " %llu", total);
	return answer(x, 200, "text/plain", out, (size_t)len);
}

static int h_download(struct mse_exchange *x)
{
	long total = query_num(x->req, "n", 0);
	int chunked = query_num(x->req, "chunked", 0) != 0;
	unsigned char buf[50000];
	char len[32];
	struct mse_http_header h[2] = {{"Content-Type", 12, "application/octet-stream", 24},
				       {"Content-Length", 14, len, 0}};
	long off = 0;

	h[1].value_len = (size_t)snprintf(len, sizeof(len), "%ld", total);
	if (mse_exchange_start(x, 200, NULL, h, chunked ? 1 : 2) != 0)
		return -1;
	while (off < total) {
		size_t k = (size_t)(total - off) < sizeof(buf) ? (size_t)(total - off) : sizeof(buf);

		/* Byte i of the stream is i mod 251: checkable by the client. */
		for (size_t i = 0; i < k; i++)
			buf[i] = (unsigned char)((off + (long)i) % 251);
		if (mse_exchange_write(x, buf, k) != 0)
			return -1;
		off += (long)k;
	}
	return mse_exchange_finish(x);
}

static int h_info(struct mse_exchange *x)
{
	char out[16384];
	size_t o = 0;
	const struct mse_http_request *r = x->req;

#define OUT(...) o += (size_t)snprintf(out + o, sizeof(out) - o, __VA_ARGS__)
	OUT("method=%.*s\n", (int)r->method_len, r->method);
	OUT("target=%.*s\n", (int)r->target_len, r->target);
	OUT("path=%.*s\n", (int)r->path_len, r->path);
	OUT("query=%.*s\n", (int)r->query_len, r->query);
	OUT("version=1.%d\n", r->minor_version);
	OUT("content_length=%lld\n", (long long)r->content_length);
	OUT("chunked=%d\n", r->chunked);
	OUT("keep_alive=%d\n", r->keep_alive);
	OUT("remote=%s\n", x->conn->remote_addr);
	OUT("server_name=%s\n", x->conn->server_name);
	OUT("server_port=%u\n", x->conn->server_port);
	OUT("tls=%d\n", x->conn->is_tls);
	for (size_t i = 0; i < r->num_headers && o < sizeof(out) - 600; i++)
		OUT("h:%.*s=%.*s\n", (int)r->headers[i].name_len, r->headers[i].name,
		    (int)(r->headers[i].value_len > 500 ? 500 : r->headers[i].value_len),
		    r->headers[i].value);
#undef OUT
	return answer(x, 200, "text/plain", out, o);
}

static int handler(struct mse_exchange *x, void *user)
{
	const struct mse_http_request *r = x->req;

	(void)user;
	if (path_is(r, "/echo"))
		return h_echo(x);
	if (path_is(r, "/sha256"))
		return h_sha256(x);
	if (path_is(r, "/download"))
		return h_download(x);
	if (path_is(r, "/info"))
		return h_info(x);
	if (path_is(r, "/slow")) {
		usleep((useconds_t)query_num(r, "ms", 100) * 1000);
		return answer(x, 200, "text/plain", "slept\n", 6);
	}
	if (path_is(r, "/noanswer"))
		return 0;
	if (path_is(r, "/short")) {
		struct mse_http_header h = {"Content-Length", 14, "10", 2};

		if (mse_exchange_start(x, 200, NULL, &h, 1) != 0)
			return -1;
		mse_exchange_write(x, "12345", 5);
		return mse_exchange_finish(x) == 0 ? 0 : -1;
	}
	if (path_is(r, "/readhalf")) {
		char b;

		(void)mse_exchange_read_body(x, &b, 1);
		return answer(x, 200, "text/plain", "ok\n", 3);
	}
	if (path_is(r, "/stop")) {
		mse_server_stop(g_server);
		return answer(x, 200, "text/plain", "stopping\n", 9);
	}
	if (path_is(r, "/badheader")) {
		struct mse_http_header h = {"X-Bad", 5, "a\r\nInjected: 1", 15};

		if (mse_exchange_start(x, 200, NULL, &h, 1) == 0)
			return -1; /* must have been refused */
		return answer(x, 200, "text/plain", "refused\n", 8);
	}
	return answer(x, 404, "text/plain", "not found\n", 10);
}

static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGUSR1)
			break; /* main is done */
		pthread_mutex_lock(&g_lock);
		if (g_server)
			mse_server_stop(g_server);
		pthread_mutex_unlock(&g_lock);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct mse_server_config cfg;
	struct mse_err err;
	SSL_CTX *tls = NULL;
	FILE *alog = NULL;
	sigset_t set;
	pthread_t sig_tid;
	int handoff = 0, rc = 1, lfd = -1;
	struct mse_server *s = NULL;

	mse_log_init("http_server", MSE_LOG_INFO);
	mse_err_clear(&err);
	mse_server_config_init(&cfg);
	cfg.handler = handler;
	cfg.thread_start = on_thread_start;
	cfg.thread_stop = on_thread_stop;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : "0";

		if (strcmp(a, "--tls") == 0 && i + 2 < argc) {
			tls = mse_tls_ctx_from_files(argv[i + 1], argv[i + 2], &err);
			if (!tls) {
				mse_err_print(&err, "http_server", stderr);
				return 1;
			}
			i += 2;
			continue;
		}
		if (strcmp(a, "--handoff") == 0) {
			handoff = 1;
			continue;
		}
		if (strcmp(a, "--debug") == 0) {
			mse_log_set_level(MSE_LOG_DEBUG);
			continue;
		}
		i++;
		if (strcmp(a, "--threads") == 0)
			cfg.threads = atoi(v);
		else if (strcmp(a, "--head-timeout") == 0)
			cfg.head_timeout_ms = atoi(v);
		else if (strcmp(a, "--idle-timeout") == 0)
			cfg.idle_timeout_ms = atoi(v);
		else if (strcmp(a, "--read-timeout") == 0)
			cfg.read_timeout_ms = atoi(v);
		else if (strcmp(a, "--drain-timeout") == 0)
			cfg.drain_timeout_ms = atoi(v);
		else if (strcmp(a, "--max-body") == 0)
			cfg.max_body = strtoull(v, NULL, 10);
		else if (strcmp(a, "--max-head") == 0)
			cfg.max_head_bytes = strtoull(v, NULL, 10);
		else if (strcmp(a, "--max-headers") == 0)
			cfg.max_headers = strtoull(v, NULL, 10);
		else if (strcmp(a, "--min-rate") == 0)
			cfg.min_rate = strtoull(v, NULL, 10);
		else if (strcmp(a, "--max-connections") == 0)
			cfg.max_connections = strtoull(v, NULL, 10);
		else if (strcmp(a, "--max-per-address") == 0)
			cfg.max_per_address = strtoull(v, NULL, 10);
		else if (strcmp(a, "--body-buffer") == 0)
			cfg.body_buffer = strtoull(v, NULL, 10);
		else if (strcmp(a, "--min-rate-grace") == 0)
			cfg.min_rate_grace_ms = atoi(v);
		else if (strcmp(a, "--request-timeout") == 0)
			cfg.request_timeout_ms = atoi(v);
		else if (strcmp(a, "--max-threads") == 0)
			cfg.max_threads = atoi(v);
		else if (strcmp(a, "--access-log") == 0) {
			if (!(alog = fopen(v, "a"))) {
				perror(v);
				return 1;
			}
		} else {
			fprintf(stderr, "http_server: unknown option %s\n", a);
			return 2;
		}
	}
	cfg.tls = tls;
	cfg.access_log = alog;

	/* Signals go to one thread that calls mse_server_stop. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_create(&sig_tid, NULL, signal_thread, &set);

	if (handoff) {
		/* We own the socket, as the bootstrap does, and lend it twice. */
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

		lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
		    listen(lfd, 128) != 0) {
			perror("listen");
			goto out;
		}
		cfg.listen_fd = lfd;
	}
	for (g_generation = 1; g_generation <= (handoff ? 2 : 1); g_generation++) {
		if (mse_server_new(&cfg, &s, &err) != 0) {
			mse_err_print(&err, "http_server", stderr);
			goto out;
		}
		if (g_generation == 1) {
			printf("%u\n", mse_server_port(s));
			fflush(stdout);
		}
		set_server(s);
		if (mse_server_run(s, &err) != 0) {
			mse_err_print(&err, "http_server", stderr);
			goto out;
		}
		set_server(NULL);
		mse_server_free(s);
		s = NULL;
	}
	fprintf(stderr, "worker threads: %d started, %d stopped\n", atomic_load(&g_thread_starts),
		atomic_load(&g_thread_stops));
	rc = 0;
out:
	set_server(NULL);
	mse_server_free(s);
	pthread_kill(sig_tid, SIGUSR1);
	pthread_join(sig_tid, NULL);
	if (lfd >= 0)
		close(lfd);
	mse_tls_ctx_free(tls);
	if (alog)
		fclose(alog);
	return rc;
}
