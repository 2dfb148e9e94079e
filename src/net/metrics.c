/* SPDX-License-Identifier: Apache-2.0 */
#include "net/metrics.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* Upper bounds of the latency buckets, in microseconds (+Inf implied). */
static const int64_t bounds_us[] = {1000,   2500,   5000,    10000,   25000,   50000,	100000,
				    250000, 500000, 1000000, 2500000, 5000000, 10000000};
#define NB (sizeof(bounds_us) / sizeof(bounds_us[0]))

static _Atomic int64_t g_conns, g_threads, g_inflight;
static _Atomic uint64_t g_class[5];
static _Atomic uint64_t g_bucket[NB + 1]; /* not cumulative: rendered cumulative */
static _Atomic uint64_t g_sum_us;

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void mse_metrics_conn(int delta)
{
	atomic_fetch_add_explicit(&g_conns, delta, memory_order_relaxed);
}

void mse_metrics_threads(int delta)
{
	atomic_fetch_add_explicit(&g_threads, delta, memory_order_relaxed);
}

int64_t mse_metrics_req_begin(void)
{
	atomic_fetch_add_explicit(&g_inflight, 1, memory_order_relaxed);
	return now_us();
}

void mse_metrics_req_end(int64_t t0)
{
	int64_t d = now_us() - t0;
	size_t i;

	if (d < 0)
		d = 0;
	for (i = 0; i < NB && d > bounds_us[i]; i++)
		;
	atomic_fetch_add_explicit(&g_bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&g_sum_us, (uint64_t)d, memory_order_relaxed);
	atomic_fetch_sub_explicit(&g_inflight, 1, memory_order_relaxed);
}

void mse_metrics_status(int status)
{
	if (status >= 100 && status <= 599)
		atomic_fetch_add_explicit(&g_class[status / 100 - 1], 1, memory_order_relaxed);
}

char *mse_metrics_render(void)
{
	char *out = NULL;
	size_t size = 0, i;
	uint64_t cum = 0, b[NB + 1], count = 0, sum;
	FILE *f = open_memstream(&out, &size);

	if (!f)
		return NULL;
	fputs("# HELP mse_http_requests_total HTTP requests answered, by status class.\n"
	      "# TYPE mse_http_requests_total counter\n",
	      f);
	for (i = 0; i < 5; i++)
		fprintf(
		    f, "mse_http_requests_total{class=\"%zuxx\"} %llu\n", i + 1,
		    (unsigned long long)atomic_load_explicit(&g_class[i], memory_order_relaxed));
	/* One snapshot of the buckets; _count is their total so the +Inf bucket equals it. */
	for (i = 0; i <= NB; i++) {
		b[i] = atomic_load_explicit(&g_bucket[i], memory_order_relaxed);
		count += b[i];
	}
	sum = atomic_load_explicit(&g_sum_us, memory_order_relaxed);
	fputs("# HELP mse_http_request_duration_seconds Time from a request's head to the end of "
	      "its answer.\n"
	      "# TYPE mse_http_request_duration_seconds histogram\n",
	      f);
	for (i = 0; i < NB; i++) {
		cum += b[i];
		fprintf(f, "mse_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
			(double)bounds_us[i] / 1e6, (unsigned long long)cum);
	}
	fprintf(f,
		"mse_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
		"mse_http_request_duration_seconds_sum %.6f\n"
		"mse_http_request_duration_seconds_count %llu\n",
		(unsigned long long)count, (double)sum / 1e6, (unsigned long long)count);
	fprintf(f,
		"# HELP mse_http_requests_in_flight Requests being handled now.\n"
		"# TYPE mse_http_requests_in_flight gauge\n"
		"mse_http_requests_in_flight %lld\n"
		"# HELP mse_http_worker_threads Worker threads of the HTTP server.\n"
		"# TYPE mse_http_worker_threads gauge\n"
		"mse_http_worker_threads %lld\n"
		"# HELP mse_http_open_connections Client connections open now.\n"
		"# TYPE mse_http_open_connections gauge\n"
		"mse_http_open_connections %lld\n",
		(long long)atomic_load_explicit(&g_inflight, memory_order_relaxed),
		(long long)atomic_load_explicit(&g_threads, memory_order_relaxed),
		(long long)atomic_load_explicit(&g_conns, memory_order_relaxed));
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* ---- the listener ------------------------------------------------------------ */

#define HEAD_MAX 4096
#define DEADLINE_MS 2000

static int g_fd = -1;
static pthread_t g_tid;
static atomic_int g_stop;

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void serve_one(int fd)
{
	char head[HEAD_MAX + 1], hdr[256];
	size_t n = 0;
	int64_t deadline = now_us() + (int64_t)DEADLINE_MS * 1000;
	char *body = NULL;
	const char *status = "404 Not Found";
	size_t bl;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = (deadline - now_us()) / 1000;
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return; /* too slow: dropped */
		r = recv(fd, head + n, HEAD_MAX - n, 0);
		if (r <= 0)
			return;
		n += (size_t)r;
		head[n] = '\0';
		if (strstr(head, "\r\n\r\n") || strstr(head, "\n\n"))
			break;
		if (n == HEAD_MAX)
			return; /* head too large */
	}
	if (strncmp(head, "GET /metrics ", 13) == 0 || strncmp(head, "GET /metrics?", 13) == 0) {
		body = mse_metrics_render();
		status = body ? "200 OK" : "500 Internal Server Error";
	}
	bl = body ? strlen(body) : 0;
	snprintf(hdr, sizeof(hdr),
		 "HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		 "Content-Length: %zu\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
		 status, bl);
	write_all(fd, hdr, strlen(hdr));
	if (body)
		write_all(fd, body, bl);
	free(body);
}

static void *listener_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&g_stop)) {
		struct pollfd p = {.fd = g_fd, .events = POLLIN};
		int c;

		if (poll(&p, 1, 250) <= 0)
			continue;
		c = accept(g_fd, NULL, NULL);
		if (c < 0)
			continue;
		serve_one(c);
		close(c);
	}
	return NULL;
}

int mse_metrics_listen(const char *host, uint16_t port, uint16_t *bound, struct mse_err *err)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ps[8];
	int fd = -1, one = 1, rc;

	if (g_fd >= 0)
		return mse_err_set(err, "metrics: already listening");
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(ps, sizeof(ps), "%u", (unsigned)port);
	if ((rc = getaddrinfo(host, ps, &hints, &ai)) != 0)
		return mse_err_field(err, "--metrics", "cannot resolve \"%s\": %s", host,
				     gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
		mse_err_field(err, "--metrics", "cannot listen on %s:%u: %s", host, (unsigned)port,
			      strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	if (bound) {
		*bound = port;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			*bound =
			    ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							   : ((struct sockaddr_in *)&ss)->sin_port);
	}
	g_fd = fd;
	atomic_store(&g_stop, 0);
	if (pthread_create(&g_tid, NULL, listener_main, NULL) != 0) {
		close(fd);
		g_fd = -1;
		return mse_err_set(err, "metrics: cannot start the listener thread");
	}
	return 0;
}

void mse_metrics_stop(void)
{
	if (g_fd < 0)
		return;
	atomic_store(&g_stop, 1);
	pthread_join(g_tid, NULL);
	close(g_fd);
	g_fd = -1;
}
