/* SPDX-License-Identifier: Apache-2.0 */
#include "net/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "common/log.h"
#include "common/version.h"
#include "net/h2.h"
#include "net/http.h"
#include "net/metrics.h"
#include "net/pool.h"
#include "net/sslio.h"
#include "net/tls.h"

/* A connection buffer starts at BUF_INITIAL and doubles while a head needs
 * more, up to max_head_bytes + BODY_SLACK: a slow client with a partial
 * head costs 8 KiB, not the worst case. Chunked body slices are read into
 * the room after the head, at least BODY_ROOM bytes. */
#define BUF_INITIAL (8 * 1024)
#define BODY_SLACK (16 * 1024)
#define BODY_ROOM (4 * 1024)
/* TLS bodies over TLS_RBUF_BODY get an OpenSSL read buffer sized for them,
 * at most TLS_RBUF_MAX (below glibc's default mmap threshold). */
#define TLS_RBUF_BODY (16 * 1024)
#define TLS_RBUF_MAX (120 * 1024)
/* Response bytes gathered before a write (one TLS record's worth). */
#define OUT_BUF (16 * 1024)
/* After a response, unread request body already received (or arriving
 * without a wait) is discarded up to this much to keep the connection;
 * otherwise it is closed: no worker waits for a body nobody reads. */
#define DRAIN_MAX (1024 * 1024)
/* After an error answer, how long unread input is swallowed before close,
 * so the client reads our answer instead of a TCP reset. */
#define LINGER_MS 1000
/* Freed connection buffers worth this much trigger a malloc_trim, so memory
 * a burst of large heads took goes back to the system; at most once every
 * TRIM_EVERY_MS: under a steady stream of 64 KiB uploads (a grown buffer
 * freed per request) a trim every 60 requests gave each request 2-4 page
 * faults and madvise calls back for the same memory. */
#define TRIM_BYTES (4 * 1024 * 1024)
#define TRIM_EVERY_MS 1000
/* Per-address accounting buckets (a chained hash of open counts). */
#define ADDR_BUCKETS 1024

/* CS_STEPPING: a thread (the loop, or the worker polling) is reading it
 * without the lock; sweeps and evictions leave it alone. */
enum conn_state { CS_WAITING, CS_STEPPING, CS_QUEUED, CS_BUSY, CS_DEAD };
/* Where a connection is in reading its next request (loop side). */
enum conn_phase { PH_HANDSHAKE, PH_HEAD, PH_BODY, PH_READY };

/* Open connections of one address (IPv4, or the /64 of an IPv6 address). */
struct addr_count {
	unsigned char key[8 + 1]; /* family tag + 4 or 8 bytes */
	size_t open;
	struct addr_count *next;
};

struct xch;

struct conn {
	struct mse_server *s;
	int fd;
	SSL *ssl;
	enum conn_state state; /* under s->lock */
	enum conn_phase phase;
	struct conn *prev, *next; /* every open connection (s->conns) */
	struct conn *qnext;       /* work queue */
	struct addr_count *addr;  /* this connection's address entry */
	int64_t deadline;         /* while waiting: when the loop acts */
	int64_t accepted;         /* ms */
	int64_t head_start;       /* first byte of the current head; 0 = none */
	int64_t idle_since;       /* end of the last response; 0 = none yet */
	int64_t phase_start;      /* head (first byte) or body start: min_rate */
	uint64_t phase_bytes;     /* bytes received since phase_start */
	int64_t last_byte;        /* body: when a byte last arrived */
	int64_t queued_at;        /* when it went on the work queue */
	int expired;              /* the head deadline passed (answer 408) */
	int reject;               /* answer this status and close (set by the loop) */
	int lingering;            /* closing: swallow input until EOF or deadline */
	int want_write;           /* TLS needs the socket writable to progress */
	int corked;               /* TCP_CORK set for a response's writes (out_put) */
	int big_rbuf;             /* TLS read buffer sized for this request's body */
	unsigned requests;
	size_t parsed_len; /* c->len when the head was last found incomplete */
	/* The request read by the loop: head buf[0, head_len); a Content-Length
	 * body follows it; a chunked body is decoded in place to
	 * buf[head_len, dec_end), its undecoded rest at buf[raw_off, len). */
	size_t head_len;
	int chunked, body_complete, continue_sent;
	uint64_t body_len; /* Content-Length, or 0 */
	struct mse_http_chunked dec;
	size_t dec_end, raw_off;
	int64_t waited_ms; /* this exchange: time blocked on the socket */
	uint64_t moved;    /* this exchange: body bytes read or written */
	char *buf;
	size_t cap, len;
	struct mse_conn_info info;
};

struct mse_server {
	struct mse_server_config cfg;
	char *host;
	char *server_name;
	int lfd, own_lfd;
	uint16_t port;
	/*
	 * Two epoll sets: epfd holds the connections; outer holds the listening
	 * socket, the stop eventfd and epfd itself (one-shot, armed only while
	 * the loop polls the connections). While the app is busy, an idle
	 * worker polls epfd directly (s->poller): it reads the requests that
	 * arrived and serves them itself, with no hand-over between threads
	 * and no wake-up of the loop per request; the loop takes the
	 * connections back when no worker polled them for STALL_MS.
	 */
	int epfd, evfd, outer;
	int inner_armed;          /* epfd armed in outer (under lock) */
	struct worker *poller;    /* the worker in epoll_wait(epfd), or NULL */
	/* Connections the loop closed while a worker polled: the worker may
	 * hold an event for one, so they are freed when it is done. */
	struct conn *grave;
	int64_t last_poll;        /* when a worker's poll last found events */
	/* The loop sleeps past STALL_MS while a worker polls an idle server:
	 * that worker nudges it (nudgefd) when it stops polling to serve. */
	int loop_long, nudgefd;
	/* The app's classification (net/pool.h). cls.blocking: its handlers
	 * were last seen mostly blocked outside the GIL (classify_locked):
	 * workers then take queued work without regard to the one-hot-worker
	 * rule, and more are woken or started at once for work nobody is free
	 * to take. */
	struct mse_pool_class cls;
	int threads;

	pthread_mutex_t lock;
	pthread_cond_t idlecond; /* busy count dropped to 0 */
	struct conn *qhead, *qtail;
	struct conn *conns;
	size_t nconns, nbusy;
	struct addr_count *addrs[ADDR_BUCKETS];
	int workers_exit;
	/*
	 * Worker wake-up policy (see enqueue_locked): idle workers wait on
	 * their own condition variable, stacked most recent first; nactive
	 * counts workers not parked there; last_pick is when a worker last
	 * took a connection off the queue.
	 */
	struct worker *idle, *workers;
	int nactive;
	int nserving;  /* workers between taking a connection and being done */
	int nstarting; /* threads created that have not joined s->workers yet */
	int64_t last_pick;
	int64_t last_take; /* when a worker last took a connection (only that) */
	int64_t last_read_ahead; /* when the loop last read the connections */
	/* Threads started (tids[0, nthreads)), and how many of them are stuck
	 * in a handler past request_timeout_ms. */
	pthread_t *tids;
	int nthreads, max_threads, nstuck;
	size_t stack_size;
	/* Workers that exited idle (above the floor), to be joined by the loop. */
	pthread_t *reap;
	int nreap;
	size_t qlen; /* connections on the queue */
	atomic_int stopping;
	int64_t accept_paused_until;
	int64_t last_full_warning;
	int64_t last_chunk_warning;
	unsigned chunk_warnings_suppressed;
	atomic_size_t freed_bytes; /* buffer bytes freed since the last trim */
	int64_t last_trim;	   /* now_ms() of the last trim (the loop's) */
	struct mse_h2 *h2;         /* HTTP/2 connections (cfg.http2), or NULL */
	/* MSE_SCHED_TRACE set: the loop prints these each second (stderr),
	 * to see how the pool follows the load (bench/README.md, issue 21). */
	struct {
		int on;
		int64_t last;
		long picks, wait_sum, wait_max, qmax, checks, arms, loop_events, wakes, loop_iters;
	} tr;
};

/* An idle worker parked on the stack s->idle. */
struct worker {
	pthread_cond_t cv;
	struct worker *next;      /* on s->idle */
	struct worker *all_next;  /* on s->workers */
	int woken;
	int64_t serving_since;    /* when it took its connection; 0 if none */
	int64_t parked_at;        /* when it last parked on s->idle */
	struct xch *cur;          /* the exchange in its handler, or NULL */
	int64_t handler_since;    /* when that handler was called */
	int stuck;                /* cur passed request_timeout_ms */
	pthread_t tid;
	pid_t ktid;               /* its kernel thread id (/proc/self/task) */
	atomic_int waiting;       /* its handler said it waits (exchange.h: waiting) */
};

/*
 * Workers kept running while the queue has work, before the loop wakes
 * another one. The app is serialised by the GIL: a second runnable worker
 * mostly trades the GIL back and forth (a futex hand-over and a cold cache
 * per request), which measured ~30% slower than one hot worker. Apps
 * classified blocking (classify_locked) are exempt: a worker per request.
 */
#define ACTIVE_WORKERS 1
/*
 * No worker took work off a non-empty queue for this long: the running
 * ones are blocked (sleep, I/O, a slow client), so the loop wakes another.
 */
#define STALL_MS 2
/* While the app is classified blocking, how often the loop looks again
 * (work no longer waits then, so no stall would prompt it). */
#define RECHECK_MS 100
/* A worker's poll found events this recently: traffic flows, and the loop
 * checks every STALL_MS that someone polls. */
#define ACTIVE_WINDOW_MS 100

/* Markers in epoll_event.data.ptr for the two non-connection fds. */
static char g_mark_listen, g_mark_stop, g_mark_inner, g_mark_nudge;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mse_server_config_init(struct mse_server_config *c)
{
	memset(c, 0, sizeof(*c));
	c->host = "127.0.0.1";
	c->listen_fd = -1;
	c->backlog = 511;
	c->max_connections = 10000;
	c->max_head_bytes = MSE_HTTP_MAX_HEAD_BYTES_DEFAULT;
	c->max_headers = MSE_HTTP_MAX_HEADERS_DEFAULT;
	c->max_body = MSE_HTTP_MAX_BODY_DEFAULT;
	c->head_timeout_ms = 10000;
	c->idle_timeout_ms = 30000;
	c->read_timeout_ms = 30000;
	c->write_timeout_ms = 30000;
	c->drain_timeout_ms = 10000;
	c->min_rate = 1024;
	c->min_rate_grace_ms = 2000;
	c->max_per_address = 256;
	c->body_buffer = 1024 * 1024;
	c->thread_idle_ms = 10000;
}

/* ---- socket and TLS I/O ------------------------------------------------ */

/* The results of net/sslio, and one more of the waits below. */
enum { IO_AGAIN = MSE_SSLIO_AGAIN, IO_ERR = MSE_SSLIO_ERR, IO_TIMEOUT = -3 };

/* One non-blocking read: > 0 bytes, 0 end of stream, IO_AGAIN or IO_ERR. */
static ssize_t io_read_nb(struct conn *c, void *buf, size_t n)
{
	return mse_sslio_read(c->fd, c->ssl, buf, n, &c->want_write);
}

static ssize_t io_write_nb(struct conn *c, const void *buf, size_t n)
{
	return mse_sslio_write(c->fd, c->ssl, buf, n, &c->want_write);
}

/* 1 if bytes moved over elapsed_ms are below the configured floor. */
static int below_rate(const struct mse_server_config *cfg, uint64_t bytes, int64_t elapsed_ms)
{
	return cfg->min_rate && elapsed_ms > cfg->min_rate_grace_ms &&
	       bytes * 1000 < cfg->min_rate * (uint64_t)elapsed_ms;
}

/*
 * Waits until the socket can make progress in the direction TLS asked for.
 * Also enforces the min_rate floor on streamed bodies and on responses:
 * slowloris (a byte every read_timeout - 1 ms) would otherwise hold a
 * worker indefinitely.
 */
static int io_wait(struct conn *c, int64_t deadline)
{
	const struct mse_server_config *cfg = &c->s->cfg;
	struct pollfd p = {.fd = c->fd, .events = c->want_write ? POLLOUT : POLLIN};

	if (below_rate(cfg, c->moved, c->waited_ms))
		return IO_TIMEOUT;
	for (;;) {
		int64_t t0 = now_ms(), left = deadline - t0;
		int r;

		if (left <= 0)
			return IO_TIMEOUT;
		r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		c->waited_ms += now_ms() - t0;
		if (r > 0)
			return 0; /* readable, writable, or HUP/ERR: the next op tells */
		if (r < 0 && errno != EINTR)
			return IO_ERR;
	}
}

/* Blocking read with a timeout: > 0 bytes, 0 EOF, IO_ERR or IO_TIMEOUT. */
static ssize_t io_read_timed(struct conn *c, void *buf, size_t n, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		ssize_t r = io_read_nb(c, buf, n);
		int w;

		if (r > 0)
			c->moved += (uint64_t)r;
		if (r != IO_AGAIN)
			return r;
		if ((w = io_wait(c, deadline)) != 0)
			return w;
	}
}

/* Writes everything; the timeout applies to each wait for progress. */
static int io_write_all(struct conn *c, const void *data, size_t n, int timeout_ms)
{
	const char *p = data;

	while (n > 0) {
		ssize_t r = io_write_nb(c, p, n);

		if (r > 0) {
			p += r;
			n -= (size_t)r;
			c->moved += (uint64_t)r;
			continue;
		}
		if (r != IO_AGAIN)
			return -1;
		if (io_wait(c, now_ms() + timeout_ms) != 0)
			return -1;
	}
	return 0;
}

/*
 * Plain HTTP: writes a then b with writev (the response head and a large
 * body in one system call, no copy). Timeout as io_write_all.
 */
static int io_writev_all(struct conn *c, const void *a, size_t na, const void *b, size_t nb,
			 int timeout_ms)
{
	struct iovec iov[2] = {{(void *)a, na}, {(void *)b, nb}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};

	while (iov[0].iov_len + iov[1].iov_len > 0) {
		ssize_t r = sendmsg(c->fd, &mh, MSG_NOSIGNAL);

		if (r > 0) {
			size_t k = (size_t)r;

			c->moved += k;
			for (int i = 0; i < 2; i++) {
				size_t d = k < iov[i].iov_len ? k : iov[i].iov_len;

				iov[i].iov_base = (char *)iov[i].iov_base + d;
				iov[i].iov_len -= d;
				k -= d;
			}
			if (iov[0].iov_len == 0) {
				mh.msg_iov = &iov[1];
				mh.msg_iovlen = 1;
			}
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return -1;
		c->want_write = 1;
		if (io_wait(c, now_ms() + timeout_ms) != 0)
			return -1;
	}
	return 0;
}

/* ---- connection lifecycle ---------------------------------------------- */

/*
 * A keep-alive connection gives its buffer back between requests (an idle
 * connection must stay cheap), and the next request takes one again: each
 * thread keeps one spare buffer of the initial size, so a request costs no
 * malloc/free pair and freed memory does not pile up for malloc_trim.
 */
static _Thread_local char *tl_spare_buf;
static _Thread_local int tl_spare_ok; /* a server thread: frees it at exit */

/* Frees the connection buffer, wiped first if request bytes are secret. */
static void buf_release(struct conn *c)
{
	if (c->buf) {
		if (c->s->cfg.wipe_buffers)
			OPENSSL_cleanse(c->buf, c->cap);
		if (c->cap == BUF_INITIAL && !tl_spare_buf && tl_spare_ok) {
			tl_spare_buf = c->buf;
		} else {
			free(c->buf);
			atomic_fetch_add(&c->s->freed_bytes, c->cap);
		}
	}
	c->buf = NULL;
	c->cap = 0;
}

/* A server thread ends: its spare buffer goes. */
static void spare_free(void)
{
	free(tl_spare_buf);
	tl_spare_buf = NULL;
	tl_spare_ok = 0;
}

/*
 * Grows the buffer to at least want bytes (doubling, at most max). -1 if it
 * cannot. With wipe_buffers the old block is wiped, not left to realloc.
 */
static int conn_grow_to(struct conn *c, size_t want, size_t max, int exact)
{
	size_t cap = c->cap ? c->cap : BUF_INITIAL;
	char *p;

	while (cap < want)
		cap *= 2;
	/* A Content-Length body asks for exactly what it needs: doubling
	 * would turn 64 KiB into a 128 KiB block, which malloc maps and
	 * unmaps (page faults included) for every request. */
	if (exact && cap > want)
		cap = (want + 4095) & ~(size_t)4095;
	if (cap > max)
		cap = max;
	if (cap < want || cap <= c->cap)
		return -1;
	if (!c->buf && cap == BUF_INITIAL && tl_spare_buf) {
		c->buf = tl_spare_buf;
		c->cap = cap;
		tl_spare_buf = NULL;
		return 0;
	}
	if (c->s->cfg.wipe_buffers) {
		if (!(p = malloc(cap))) {
			mse_error("out of memory for a connection buffer");
			return -1;
		}
		if (c->len)
			memcpy(p, c->buf, c->len);
		buf_release(c);
	} else {
		if (!(p = realloc(c->buf, cap))) {
			mse_error("out of memory for a connection buffer");
			return -1;
		}
		if (c->cap)
			atomic_fetch_add(&c->s->freed_bytes, c->cap);
	}
	c->buf = p;
	c->cap = cap;
	return 0;
}

static int conn_grow(struct conn *c, size_t want, size_t max)
{
	return conn_grow_to(c, want, max, 0);
}

static void conn_free(struct conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	buf_release(c);
	free(c);
}

/* The accounting key of an address: IPv4, or the /64 of IPv6 (one host
 * usually holds a whole /64). */
static void addr_key(const struct sockaddr_storage *ss, unsigned char key[9])
{
	memset(key, 0, 9);
	if (ss->ss_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const unsigned char *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;

		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
			key[0] = 4;
			memcpy(key + 1, a + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, a, 8);
		}
	}
}

static size_t addr_bucket(const unsigned char key[9])
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (int i = 0; i < 9; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % ADDR_BUCKETS;
}

/* Caller holds the lock. The entry for key, created (open = 0) if absent. */
static struct addr_count *addr_get_locked(struct mse_server *s, const unsigned char key[9])
{
	size_t b = addr_bucket(key);
	struct addr_count *a;

	for (a = s->addrs[b]; a; a = a->next)
		if (memcmp(a->key, key, 9) == 0)
			return a;
	if (!(a = calloc(1, sizeof(*a))))
		return NULL;
	memcpy(a->key, key, 9);
	a->next = s->addrs[b];
	s->addrs[b] = a;
	return a;
}

static void addr_put_locked(struct mse_server *s, struct addr_count *a)
{
	struct addr_count **pp;

	if (!a || --a->open > 0)
		return;
	for (pp = &s->addrs[addr_bucket(a->key)]; *pp != a; pp = &(*pp)->next)
		;
	*pp = a->next;
	free(a);
}

/* Unlinks and frees. Caller holds s->lock; c must not be armed in epoll. */
static void conn_destroy_locked(struct mse_server *s, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	mse_metrics_conn(-1);
	addr_put_locked(s, c->addr);
	if (c->state != CS_WAITING) {
		s->nbusy--;
		if (s->nbusy == 0)
			pthread_cond_broadcast(&s->idlecond);
	}
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	conn_free(c);
}

/*
 * Caller holds the lock: closes a WAITING connection some other thread may
 * hold an epoll event for (sweeps, evictions, stop). While a worker polls,
 * the struct outlives its fd until that worker is done (grave_free_locked):
 * conn_event skips it (CS_DEAD).
 */
static void conn_reap_locked(struct mse_server *s, struct conn *c)
{
	if (!s->poller) {
		conn_destroy_locked(s, c);
		return;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	addr_put_locked(s, c->addr);
	c->addr = NULL;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	SSL_free(c->ssl);
	c->ssl = NULL;
	close(c->fd);
	c->fd = -1;
	buf_release(c);
	c->state = CS_DEAD;
	c->prev = NULL;
	c->next = s->grave;
	s->grave = c;
}

static void grave_free_locked(struct mse_server *s)
{
	while (s->grave) {
		struct conn *c = s->grave;

		s->grave = c->next;
		free(c);
	}
}

/* A worker is done with c for now: close it. */
static void conn_close(struct conn *c)
{
	struct mse_server *s = c->s;

	pthread_mutex_lock(&s->lock);
	conn_destroy_locked(s, c);
	pthread_mutex_unlock(&s->lock);
}

/*
 * A worker hands c back to the event loop until it is readable (or
 * writable, for TLS) or deadline passes. Ownership passes to the loop the
 * moment the fd is armed, so everything is done under the lock.
 */
static void conn_wait(struct conn *c, int64_t deadline)
{
	struct mse_server *s = c->s;
	struct epoll_event ev = {
		.events = (c->want_write ? EPOLLOUT : EPOLLIN) | EPOLLONESHOT | EPOLLRDHUP,
		.data.ptr = c,
	};

	if (c->len == 0) /* Idle connections keep no buffer: they must be cheap. */
		buf_release(c);
	pthread_mutex_lock(&s->lock);
	if (atomic_load(&s->stopping) && !c->lingering) {
		conn_destroy_locked(s, c);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	c->state = CS_WAITING;
	c->deadline = deadline;
	s->nbusy--;
	if (s->nbusy == 0)
		pthread_cond_broadcast(&s->idlecond);
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
		mse_warn("epoll_ctl: %s", strerror(errno));
		c->state = CS_BUSY;
		s->nbusy++;
		conn_destroy_locked(s, c);
	}
	pthread_mutex_unlock(&s->lock);
}

/*
 * Closes after an error answer: TLS close_notify, FIN, then the loop swallows
 * whatever the client still sends for LINGER_MS (RFC 9112 §9.6: a server
 * closing while input is unread must avoid the reset that would destroy
 * the response it just sent).
 */
static void conn_linger(struct conn *c)
{
	if (c->ssl) {
		ERR_clear_error();
		SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	shutdown(c->fd, SHUT_WR);
	c->lingering = 1;
	c->want_write = 0;
	c->len = 0;
	conn_wait(c, now_ms() + LINGER_MS);
}

/* ---- response helpers ---------------------------------------------------- */

/* Counts the status; one Common Log Format line when logging. */
static void access_log(struct mse_server *s, const struct conn *c,
		       const struct mse_http_request *req, int status, uint64_t bytes)
{
	char version[16];

	mse_metrics_status(status);
	if (!s->cfg.access_log)
		return;
	snprintf(version, sizeof(version), "HTTP/1.%d", req ? req->minor_version : 1);
	mse_http_log_line(s->cfg.access_log, c->info.remote_addr, req, version, status, bytes);
}

/* Answers a request we refuse, then closes (lingering). */
static void answer_error_and_close(struct conn *c, const struct mse_http_request *req,
				   int status)
{
	struct mse_server *s = c->s;
	char date[32], msg[1024];
	const char *reason = mse_http_reason(status);
	int n, body_len;

	mse_http_date(date);
	c->waited_ms = 0; /* the answer gets its own write timeout */
	c->moved = 0;
	body_len = (int)strlen(reason) + 5;
	n = snprintf(msg, sizeof(msg),
		     "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: %s\r\nContent-Type: text/plain; "
		     "charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%d %s\n",
		     status, reason, date, s->server_name, body_len, status, reason);
	mse_debug("%s:%u: answering %d %s and closing", c->info.remote_addr,
		  c->info.remote_port, status, reason);
	if (n > 0 && (size_t)n < sizeof(msg))
		(void)io_write_all(c, msg, (size_t)n, s->cfg.write_timeout_ms);
	access_log(s, c, req, status, (uint64_t)body_len);
	conn_linger(c);
}

/* ---- one exchange ---------------------------------------------------------- */

enum out_mode { OUT_NONE, OUT_LENGTH, OUT_CHUNKED, OUT_CLOSE };

struct xch {
	struct mse_exchange x;
	struct conn *c;
	struct mse_http_request req;
	size_t head_len;
	/* request body */
	struct mse_http_chunked dec;
	uint64_t body_read;
	size_t raw_off;          /* unread raw bytes: c->buf[raw_off, c->len) */
	size_t dec_off, dec_len; /* decoded chunked bytes ready to hand out */
	int body_done, body_error, body_too_large, body_timeout, body_malformed, continue_sent;
	int nowait, would_block; /* drain: read only what needs no wait */
	/* Every op holds io_lock; the request deadline's watchdog takes it to
	 * answer 504 and sets abandoned, after which every op fails. */
	pthread_mutex_t io_lock;
	int abandoned;
	/* response */
	int status;
	enum out_mode mode;
	int head_only;
	int close_after;
	int finished;
	int failed; /* the connection broke or the framing was violated */
	int upgraded; /* the socket went to the handler after a 101 (xch_upgrade) */
	int64_t resp_cl;
	uint64_t body_out; /* body bytes actually sent */
	size_t outlen;
	char out[OUT_BUF];
};

static int out_flush(struct xch *x)
{
	if (x->outlen == 0)
		return 0;
	if (io_write_all(x->c, x->out, x->outlen, x->c->s->cfg.write_timeout_ms) != 0) {
		x->failed = 1;
		x->outlen = 0;
		return -1;
	}
	x->outlen = 0;
	return 0;
}

/*
 * TCP_CORK (tcp(7)) while one exchange op writes more than one piece (the
 * head then the body, or a body of several TLS records): the kernel sends
 * full segments only, and the rest when uncorked at the end of the op, so
 * the response leaves in one transmission instead of one per write(2) —
 * on loopback each costs the receiver's processing and a wake-up too.
 * Never held past the op: a streaming app's chunk is not delayed.
 */
static void conn_cork(struct conn *c, int on)
{
	if (c->corked == on || c->fd < 0)
		return;
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
	c->corked = on;
}

/*
 * Buffers response bytes; what does not fit goes out in full buffers
 * (full TLS records), the rest is kept for the next write or the finish.
 */
static int out_put(struct xch *x, const void *p, size_t n)
{
	size_t room = sizeof(x->out) - x->outlen;

	if (x->failed)
		return -1;
	if (n <= room) {
		memcpy(x->out + x->outlen, p, n);
		x->outlen += n;
		return 0;
	}
	if (!x->c->ssl && x->outlen) {
		/* Plain HTTP: what is buffered and the new bytes in one writev. */
		if (io_writev_all(x->c, x->out, x->outlen, p, n, x->c->s->cfg.write_timeout_ms) !=
		    0) {
			x->failed = 1;
			x->outlen = 0;
			return -1;
		}
		x->outlen = 0;
		return 0;
	}
	if (x->c->ssl)
		conn_cork(x->c, 1);
	if (x->outlen) {
		/* Fill the buffer first: every record but the last is full. */
		memcpy(x->out + x->outlen, p, room);
		x->outlen += room;
		p = (const char *)p + room;
		n -= room;
		if (out_flush(x) != 0)
			return -1;
	}
	if (n <= sizeof(x->out)) {
		memcpy(x->out, p, n);
		x->outlen = n;
		return 0;
	}
	if (io_write_all(x->c, p, n, x->c->s->cfg.write_timeout_ms) != 0) {
		x->failed = 1;
		return -1;
	}
	return 0;
}

static int out_str(struct xch *x, const char *s)
{
	return out_put(x, s, strlen(s));
}

static int send_continue(struct xch *x)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	x->continue_sent = 1;
	if (io_write_all(x->c, cont, sizeof(cont) - 1, x->c->s->cfg.write_timeout_ms) != 0) {
		x->failed = 1;
		return -1;
	}
	return 0;
}

static ssize_t body_fail(struct xch *x, int too_large, int timeout)
{
	if (!too_large && !timeout && x->nowait && x->would_block)
		return -1; /* not an error: the drain just stops here */
	x->body_error = 1;
	x->body_too_large |= too_large;
	x->body_timeout |= timeout;
	x->close_after = 1;
	return -1;
}

static ssize_t xch_read_body_unlocked(struct mse_exchange *ex, void *buf, size_t n)
{
	struct xch *x = ex->impl;
	struct conn *c = x->c;
	struct mse_server *s = c->s;

	if (x->body_error)
		return -1;
	if (x->body_done || n == 0)
		return 0;
	if (x->req.expect_continue && !x->continue_sent && !x->x.started && send_continue(x) != 0)
		return body_fail(x, 0, 0);
	if (!x->req.chunked) {
		uint64_t left = (uint64_t)x->req.content_length - x->body_read;
		size_t k = n, avail = c->len - x->raw_off;
		ssize_t r;

		if (k > left)
			k = (size_t)left;
		if (avail > 0) {
			if (k > avail)
				k = avail;
			memcpy(buf, c->buf + x->raw_off, k);
			x->raw_off += k;
			r = (ssize_t)k;
		} else {
			if (x->nowait) {
				r = io_read_nb(c, buf, k);
				if (r == IO_AGAIN) {
					x->would_block = 1;
					return -1;
				}
			} else {
				r = io_read_timed(c, buf, k, s->cfg.read_timeout_ms);
			}
			if (r <= 0) {
				mse_debug("%s:%u: request body: %s", c->info.remote_addr,
					  c->info.remote_port,
					  r == IO_TIMEOUT ? "read timed out" : "client went away");
				return body_fail(x, 0, r == IO_TIMEOUT);
			}
		}
		x->body_read += (uint64_t)r;
		if (x->body_read == (uint64_t)x->req.content_length)
			x->body_done = 1;
		return r;
	}
	for (;;) {
		size_t sz;
		long r;

		if (x->dec_len > 0) {
			size_t k = n < x->dec_len ? n : x->dec_len;

			memcpy(buf, c->buf + x->dec_off, k);
			x->dec_off += k;
			x->dec_len -= k;
			x->body_read += k;
			return (ssize_t)k;
		}
		if (mse_http_chunked_done(&x->dec)) {
			x->body_done = 1;
			return 0;
		}
		if (x->raw_off == c->len) {
			ssize_t got;

			/* Reuse the space after the head for the next slice. */
			x->raw_off = c->len = x->head_len;
			if (x->nowait) {
				got = io_read_nb(c, c->buf + c->len, c->cap - c->len);
				if (got == IO_AGAIN) {
					x->would_block = 1;
					return -1;
				}
			} else {
				got = io_read_timed(c, c->buf + c->len, c->cap - c->len,
						    s->cfg.read_timeout_ms);
			}
			if (got <= 0)
				return body_fail(x, 0, got == IO_TIMEOUT);
			c->len += (size_t)got;
		}
		sz = c->len - x->raw_off;
		r = mse_http_chunked_decode(&x->dec, c->buf + x->raw_off, &sz);
		if (r == -1) {
			mse_debug("%s:%u: %s", c->info.remote_addr, c->info.remote_port,
				  x->dec.too_large ? "chunked body over the limit"
						   : "malformed chunked body");
			x->body_malformed = !x->dec.too_large;
			return body_fail(x, x->dec.too_large, 0);
		}
		x->dec_off = x->raw_off;
		x->dec_len = sz;
		if (r >= 0) {
			/* The rest (r bytes) is the next pipelined request. */
			x->raw_off += sz;
			c->len = x->raw_off + (size_t)r;
		} else {
			x->raw_off = c->len = x->raw_off + sz;
		}
	}
}

static int header_is(const struct mse_http_header *h, const char *name)
{
	size_t n = strlen(name);

	if (h->name_len != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int a = (unsigned char)h->name[i];

		if (a >= 'A' && a <= 'Z')
			a += 32;
		if (a != name[i])
			return 0;
	}
	return 1;
}

static int xch_start_unlocked(struct mse_exchange *ex, int status, const char *reason,
		     const struct mse_http_header *headers, size_t num_headers)
{
	struct xch *x = ex->impl;
	struct mse_server *s = x->c->s;
	int have_date = 0, have_server = 0, body_allowed;
	int64_t cl = -1;
	char line[128], date[32];

	if (ex->started || x->failed)
		return -1;
	if (status < 200 || status > 999)
		return -1;
	if (!reason)
		reason = mse_http_reason(status);
	if (!mse_http_valid_field_value(reason, strlen(reason)) || strlen(reason) > 512)
		return -1;
	/* Validate everything before sending anything. */
	for (size_t i = 0; i < num_headers; i++) {
		const struct mse_http_header *h = &headers[i];

		if (!mse_http_valid_token(h->name, h->name_len) ||
		    !mse_http_valid_field_value(h->value, h->value_len))
			return -1;
		if (header_is(h, "content-length")) {
			int64_t v = 0;

			if (h->value_len == 0 || h->value_len > 18 || cl >= 0)
				return -1;
			for (size_t k = 0; k < h->value_len; k++) {
				if (h->value[k] < '0' || h->value[k] > '9')
					return -1;
				v = v * 10 + (h->value[k] - '0');
			}
			cl = v;
		} else if (header_is(h, "transfer-encoding")) {
			return -1; /* framing is ours (PEP 3333: no hop-by-hop headers) */
		}
	}
	x->status = status;
	x->head_only = x->req.method_len == 4 && memcmp(x->req.method, "HEAD", 4) == 0;
	body_allowed = !x->head_only && status != 204 && status != 304;
	if (cl >= 0) {
		x->mode = body_allowed ? OUT_LENGTH : OUT_NONE;
		x->resp_cl = cl;
	} else if (!body_allowed) {
		x->mode = OUT_NONE;
	} else if (x->req.minor_version >= 1) {
		x->mode = OUT_CHUNKED;
	} else {
		x->mode = OUT_CLOSE; /* HTTP/1.0: the close delimits the body */
		x->close_after = 1;
	}
	/* Answering before reading a body the client may still send (or was
	 * told to wait for, Expect: 100-continue): we cannot reuse the stream. */
	if (x->req.expect_continue && !x->continue_sent && !x->body_done)
		x->close_after = 1;
	if (!x->req.keep_alive || atomic_load(&s->stopping))
		x->close_after = 1;

	snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
	out_str(x, line);
	out_str(x, reason);
	out_str(x, "\r\n");
	for (size_t i = 0; i < num_headers; i++) {
		const struct mse_http_header *h = &headers[i];

		if (header_is(h, "connection")) {
			/* Honour the handler's close; our own Connection is sent below. */
			for (size_t k = 0; k + 5 <= h->value_len; k++)
				if (strncasecmp(h->value + k, "close", 5) == 0)
					x->close_after = 1;
			continue;
		}
		if (header_is(h, "keep-alive"))
			continue;
		have_date |= header_is(h, "date");
		have_server |= header_is(h, "server");
		out_put(x, h->name, h->name_len);
		out_str(x, ": ");
		out_put(x, h->value, h->value_len);
		out_str(x, "\r\n");
	}
	if (!have_date) {
		mse_http_date(date);
		out_str(x, "Date: ");
		out_str(x, date);
		out_str(x, "\r\n");
	}
	if (!have_server) {
		out_str(x, "Server: ");
		out_str(x, s->server_name);
		out_str(x, "\r\n");
	}
	if (x->mode == OUT_CHUNKED)
		out_str(x, "Transfer-Encoding: chunked\r\n");
	if (x->close_after)
		out_str(x, "Connection: close\r\n");
	else if (x->req.minor_version == 0)
		out_str(x, "Connection: keep-alive\r\n");
	if (out_str(x, "\r\n") != 0) {
		conn_cork(x->c, 0);
		return -1;
	}
	conn_cork(x->c, 0); /* a head over the buffer (huge fields) corked it */
	ex->started = 1;
	return 0;
}

static int xch_write_unlocked(struct mse_exchange *ex, const void *data, size_t n)
{
	struct xch *x = ex->impl;
	char hdr[24];

	if (!ex->started || x->finished || x->failed)
		return -1;
	ex->body_sent += n;
	if (n == 0 || x->mode == OUT_NONE)
		return 0;
	if (x->mode == OUT_LENGTH) {
		uint64_t room = (uint64_t)x->resp_cl - x->body_out;

		if (n > room) {
			mse_error("handler wrote more than its Content-Length (%lld)",
				  (long long)x->resp_cl);
			if (room)
				out_put(x, data, (size_t)room);
			x->body_out += room;
			x->close_after = 1;
			x->failed = 1;
			return -1;
		}
	}
	if (x->mode == OUT_CHUNKED) {
		snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
		if (out_str(x, hdr) != 0)
			goto fail;
	}
	if (out_put(x, data, n) != 0)
		goto fail;
	if (x->mode == OUT_CHUNKED && out_str(x, "\r\n") != 0)
		goto fail;
	x->body_out += n;
	/* The body is complete: what is buffered goes with what this op
	 * flushed, in the same corked transmission. */
	if (x->c->corked && x->mode == OUT_LENGTH && x->body_out == (uint64_t)x->resp_cl &&
	    out_flush(x) != 0)
		goto fail;
	conn_cork(x->c, 0);
	return 0;
fail:
	conn_cork(x->c, 0);
	return -1;
}

static int xch_finish_unlocked(struct mse_exchange *ex)
{
	struct xch *x = ex->impl;

	if (!ex->started || x->finished)
		return -1;
	x->finished = 1;
	if (x->failed)
		return -1;
	if (x->mode == OUT_CHUNKED && out_str(x, "0\r\n\r\n") != 0)
		return -1;
	if (x->mode == OUT_LENGTH && x->body_out < (uint64_t)x->resp_cl) {
		mse_error("handler wrote %llu bytes of its Content-Length %lld",
			  (unsigned long long)x->body_out, (long long)x->resp_cl);
		x->close_after = 1;
		out_flush(x);
		x->failed = 1;
		return -1;
	}
	if (out_flush(x) != 0)
		return -1;
	conn_cork(x->c, 0);
	return 0;
}

/*
 * The ops as handlers see them: each holds the exchange's io_lock and fails
 * once the request deadline's watchdog abandoned the exchange. A body error
 * is the server's to answer (400, 408 or 413): the handler's own answer is
 * refused then.
 */
static ssize_t xch_read_body(struct mse_exchange *ex, void *buf, size_t n)
{
	struct xch *x = ex->impl;
	ssize_t r = -1;

	pthread_mutex_lock(&x->io_lock);
	if (!x->abandoned)
		r = xch_read_body_unlocked(ex, buf, n);
	pthread_mutex_unlock(&x->io_lock);
	return r;
}

static int xch_start(struct mse_exchange *ex, int status, const char *reason,
		     const struct mse_http_header *headers, size_t num_headers)
{
	struct xch *x = ex->impl;
	int r = -1;

	pthread_mutex_lock(&x->io_lock);
	if (!x->abandoned && !x->body_error)
		r = xch_start_unlocked(ex, status, reason, headers, num_headers);
	pthread_mutex_unlock(&x->io_lock);
	return r;
}

static int xch_write(struct mse_exchange *ex, const void *data, size_t n)
{
	struct xch *x = ex->impl;
	int r = -1;

	pthread_mutex_lock(&x->io_lock);
	if (!x->abandoned)
		r = xch_write_unlocked(ex, data, n);
	pthread_mutex_unlock(&x->io_lock);
	return r;
}

static int xch_finish(struct mse_exchange *ex)
{
	struct xch *x = ex->impl;
	int r = -1;

	pthread_mutex_lock(&x->io_lock);
	if (!x->abandoned)
		r = xch_finish_unlocked(ex);
	pthread_mutex_unlock(&x->io_lock);
	return r;
}

/* The upgrade and peer_gone ops are at the end of this file. */
static int xch_upgrade(struct mse_exchange *xe, const struct mse_http_header *h, size_t n,
		       struct mse_stream **out);
static int xch_peer_gone(struct mse_exchange *xe);
static void xch_waiting(struct mse_exchange *xe, int on);

static const struct mse_exchange_ops g_ops = {
	.read_body = xch_read_body,
	.start = xch_start,
	.write = xch_write,
	.finish = xch_finish,
	.upgrade = xch_upgrade,
	.peer_gone = xch_peer_gone,
	.waiting = xch_waiting,
};

static void set_server_name(struct conn *c, const struct mse_http_request *req)
{
	const struct mse_http_header *h = mse_http_find_header(req, "host");
	size_t n;

	if (!h || h->value_len == 0)
		return; /* keep the listen address set at accept */
	n = h->value_len;
	if (h->value[0] == '[') {
		const char *end = memchr(h->value, ']', n);

		if (end)
			n = (size_t)(end - h->value) + 1;
	} else {
		const char *colon = memchr(h->value, ':', n);

		if (colon)
			n = (size_t)(colon - h->value);
	}
	if (n >= sizeof(c->info.server_name))
		n = sizeof(c->info.server_name) - 1;
	memcpy(c->info.server_name, h->value, n);
	c->info.server_name[n] = 0;
}

/* The worker running this thread (NULL off the worker threads). */
static _Thread_local struct worker *tl_worker;
/* The loop's, or a worker's, field array for the heads it parses. */
static _Thread_local struct mse_http_header *tl_loop_headers;
/* A worker's exchange, kept from one request to the next: its 16 KiB
 * output buffer is neither allocated nor zeroed per request. */
static _Thread_local struct xch *tl_xch;

static struct xch *xch_get(void)
{
	struct xch *x;

	if (!tl_worker)
		return calloc(1, sizeof(struct xch));
	if (!tl_xch && !(tl_xch = malloc(sizeof(*tl_xch))))
		return NULL;
	x = tl_xch;
	memset(x, 0, offsetof(struct xch, out));
	return x;
}

static void xch_put(struct xch *x)
{
	pthread_mutex_destroy(&x->io_lock);
	if (x != tl_xch)
		free(x);
}

/* A worker ends: its exchange goes (wiped: it held response bytes). */
static void xch_cache_free(struct mse_server *s)
{
	if (tl_xch && s->cfg.wipe_buffers)
		OPENSSL_cleanse(tl_xch->out, sizeof(tl_xch->out));
	free(tl_xch);
	tl_xch = NULL;
}

/* Logs a refused chunked body: one line, at most one a second per server. */
static void log_bad_chunked(struct conn *c)
{
	struct mse_server *s = c->s;
	int64_t t = now_ms();
	unsigned skipped;

	pthread_mutex_lock(&s->lock);
	if (t - s->last_chunk_warning < 1000) {
		s->chunk_warnings_suppressed++;
		pthread_mutex_unlock(&s->lock);
		return;
	}
	s->last_chunk_warning = t;
	skipped = s->chunk_warnings_suppressed;
	s->chunk_warnings_suppressed = 0;
	pthread_mutex_unlock(&s->lock);
	if (skipped)
		mse_warn("%s:%u: malformed chunked request body: answered 400 (%u more in the "
			 "last second not logged)",
			 c->info.remote_addr, c->info.remote_port, skipped);
	else
		mse_warn("%s:%u: malformed chunked request body: answered 400",
			 c->info.remote_addr, c->info.remote_port);
}

/*
 * Runs one request whose head is c->buf[0..head_len), its body (or the part
 * the loop read) after it. Returns 0 if the connection may serve another
 * request (pipelined bytes moved to the front of the buffer), -1 if it must
 * close (already answered), -2 if it was handed to lingering close, -3 if
 * the request deadline's watchdog took the connection (close it, silently).
 */
static int handle_request(struct conn *c, const struct mse_http_request *req, size_t head_len)
{
	struct mse_server *s = c->s;
	struct worker *w = tl_worker;
	struct xch *x;
	int rc, keep, abandoned;
	int64_t t0;
	char saved_name[sizeof(c->info.server_name)];

	x = xch_get();
	if (!x) {
		mse_error("out of memory");
		return -1;
	}
	pthread_mutex_init(&x->io_lock, NULL);
	x->c = c;
	x->req = *req;
	x->head_len = head_len;
	x->raw_off = head_len;
	x->continue_sent = c->continue_sent;
	x->x.ops = &g_ops;
	x->x.req = &x->req;
	x->x.conn = &c->info;
	x->x.impl = x;
	c->requests++;
	c->waited_ms = 0;
	c->moved = 0;
	if (x->req.chunked) {
		/* The loop decoded what arrived: buf[head_len, dec_end), the
		 * undecoded rest at buf[raw_off, len). */
		x->dec = c->dec;
		x->dec_off = head_len;
		x->dec_len = c->dec_end - head_len;
		x->raw_off = c->raw_off;
	} else if (x->req.content_length <= 0) {
		x->body_done = 1;
	}

	if (x->req.content_length > 0 && s->cfg.max_body &&
	    (uint64_t)x->req.content_length > s->cfg.max_body) {
		xch_put(x);
		answer_error_and_close(c, req, 413);
		return -2;
	}
	if (x->req.method_len == 7 && memcmp(x->req.method, "CONNECT", 7) == 0) {
		xch_put(x);
		answer_error_and_close(c, req, 501);
		return -2;
	}
	memcpy(saved_name, c->info.server_name, sizeof(saved_name));
	set_server_name(c, req);

	if (w) {
		pthread_mutex_lock(&s->lock);
		w->cur = x;
		w->handler_since = now_ms();
		pthread_mutex_unlock(&s->lock);
	}
	t0 = mse_metrics_req_begin();
	rc = s->cfg.handler(&x->x, s->cfg.user);
	mse_metrics_req_end(t0);
	if (w) {
		pthread_mutex_lock(&s->lock);
		w->cur = NULL;
		if (w->stuck) {
			w->stuck = 0;
			s->nstuck--;
		}
		pthread_mutex_unlock(&s->lock);
	}
	/* The watchdog may be answering 504 right now: wait for it. */
	pthread_mutex_lock(&x->io_lock);
	abandoned = x->abandoned;
	pthread_mutex_unlock(&x->io_lock);
	memcpy(c->info.server_name, saved_name, sizeof(saved_name));
	if (abandoned) {
		mse_info("%s:%u: the handler of a timed-out request returned", c->info.remote_addr,
			 c->info.remote_port);
		xch_put(x);
		return -3;
	}

	if (!x->x.started && !x->failed) {
		/* The handler did not answer: a body error gets its own status. */
		int status = x->body_too_large ? 413
			     : x->body_timeout ? 408
			     : x->body_error   ? 400
					       : 500;

		if (status == 500)
			mse_error("handler returned without a response for %.*s %.*s",
				  (int)x->req.method_len, x->req.method,
				  (int)(x->req.target_len > 200 ? 200 : x->req.target_len),
				  x->req.target);
		if (x->body_malformed)
			log_bad_chunked(c);
		if (status != 500 || rc != 0) {
			xch_put(x);
			answer_error_and_close(c, req, status);
			return -2;
		}
		{
			static const struct mse_http_header ct = {"Content-Type", 12,
								  "text/plain; charset=utf-8", 25};
			static const char body[] = "500 Internal Server Error\n";
			char len[16];
			struct mse_http_header hs[2] = {ct, {"Content-Length", 14, len, 0}};

			hs[1].value_len = (size_t)snprintf(len, sizeof(len), "%zu", sizeof(body) - 1);
			if (xch_start(&x->x, 500, NULL, hs, 2) == 0)
				xch_write(&x->x, body, sizeof(body) - 1);
		}
	}
	if (x->x.started && !x->finished)
		xch_finish(&x->x);
	access_log(s, c, req, x->status, x->head_only ? 0 : x->body_out);
	conn_cork(c, 0); /* an op that failed midway may have left it set */
	if (x->upgraded) {
		/* The handler owns the socket now: close only what is left here. */
		xch_put(x);
		conn_close(c);
		return -2;
	}

	keep = rc == 0 && !x->failed && !x->close_after && x->mode != OUT_CLOSE &&
	       !atomic_load(&s->stopping);
	/*
	 * Discard what the handler left of the body, but only what is here
	 * already or arrives without a wait: a worker never drains a body at
	 * the client's pace (a route that ignores a slow upload would be held
	 * by it). Otherwise the connection closes (lingering, on the loop).
	 */
	if (keep && !x->body_done) {
		char scratch[8192];
		uint64_t drained = 0;
		ssize_t r;

		x->nowait = 1;
		while ((r = xch_read_body(&x->x, scratch, sizeof(scratch))) > 0) {
			drained += (uint64_t)r;
			if (drained > DRAIN_MAX)
				break;
		}
		if (s->cfg.wipe_buffers)
			OPENSSL_cleanse(scratch, sizeof(scratch));
		if (r != 0)
			keep = 0;
	}
	if (keep) {
		/* The next request's bytes, if pipelined, move to the front. */
		size_t rest = c->len - x->raw_off;

		memmove(c->buf, c->buf + x->raw_off, rest);
		c->len = rest;
	}
	xch_put(x);
	return keep ? 0 : -1;
}

/* ---- reading a request (the loop, or the worker that owns c) ------------- */

static int64_t wait_deadline(const struct conn *c)
{
	const struct mse_server_config *cfg = &c->s->cfg;

	if (c->phase == PH_BODY)
		return c->last_byte + cfg->read_timeout_ms;
	if (c->len > 0)
		return c->head_start + cfg->head_timeout_ms;
	if (c->requests == 0)
		return c->accepted + cfg->head_timeout_ms;
	return c->idle_since + cfg->idle_timeout_ms;
}

/* ST_H2: the connection speaks HTTP/2 (ALPN h2, or the preface in plain
 * HTTP): it goes to net/h2 (see conn_event). */
enum step { ST_WAIT, ST_READY, ST_CLOSE, ST_H2 };

/* Sends "100 Continue" without waiting. 0 sent, 1 would block (nothing
 * sent), -1 failed. */
static int send_continue_nb(struct conn *c)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	ssize_t r = io_write_nb(c, cont, sizeof(cont) - 1);

	c->want_write = 0;
	if (r == (ssize_t)sizeof(cont) - 1)
		return 0;
	return r == IO_AGAIN ? 1 : -1;
}

/* A complete head at buf[0, head_len): decides how its body is read. */
static enum step head_complete(struct conn *c, const struct mse_http_request *req, size_t head_len)
{
	const struct mse_server_config *cfg = &c->s->cfg;
	int st;

	c->head_len = head_len;
	c->chunked = req->chunked;
	c->body_len = req->content_length > 0 ? (uint64_t)req->content_length : 0;
	c->body_complete = 0;
	c->continue_sent = 0;
	c->dec_end = c->raw_off = head_len;
	if (cfg->head_check && (st = cfg->head_check(req, cfg->user)) != 0) {
		c->reject = st >= 400 && st <= 599 ? st : 400;
		return ST_READY;
	}
	if (cfg->max_body && c->body_len > cfg->max_body) {
		c->reject = 413;
		return ST_READY;
	}
	if (c->chunked)
		mse_http_chunked_init(&c->dec, cfg->max_body);
	if (!c->chunked && c->body_len == 0) {
		c->body_complete = 1;
		c->phase = PH_READY;
		return ST_READY;
	}
	if (c->ssl && (c->chunked || c->body_len > TLS_RBUF_BODY)) {
		/* TLS read-ahead fills OpenSSL's read buffer in one read(2):
		 * sized for the body it expects (up to TLS_RBUF_MAX), a 64 KiB
		 * upload takes one system call instead of one per record. The
		 * buffer is still released whenever it is drained
		 * (SSL_MODE_RELEASE_BUFFERS): an idle connection holds none. */
		uint64_t want = c->chunked ? TLS_RBUF_MAX : c->body_len + c->body_len / 64 + 512;

		SSL_set_default_read_buffer_len(c->ssl, want > TLS_RBUF_MAX ? TLS_RBUF_MAX
									 : (size_t)want);
		c->big_rbuf = 1;
	}
	if (!c->chunked && c->body_len > cfg->body_buffer) {
		c->phase = PH_READY; /* streamed to the handler as it reads */
		return ST_READY;
	}
	if (req->expect_continue) {
		int r = send_continue_nb(c);

		if (r < 0)
			return ST_CLOSE;
		if (r > 0) {
			c->phase = PH_READY; /* the worker sends it, then streams */
			return ST_READY;
		}
		c->continue_sent = 1;
	}
	c->phase = PH_BODY;
	c->phase_start = c->last_byte = now_ms();
	c->phase_bytes = 0;
	return ST_WAIT; /* the caller goes on reading */
}

/*
 * Chunked body bytes at buf[raw_off, len) are decoded in place to follow
 * the body so far (buf[head_len, dec_end)). Returns ST_READY when the body
 * ended, was refused, or outgrew body_buffer (then it is streamed), else
 * ST_WAIT for more.
 */
static enum step chunked_advance(struct conn *c)
{
	size_t sz = c->len - c->raw_off;
	long r;

	if (sz == 0)
		return ST_WAIT;
	r = mse_http_chunked_decode(&c->dec, c->buf + c->raw_off, &sz);
	if (r == -1) {
		c->reject = c->dec.too_large ? 413 : 400;
		if (!c->dec.too_large)
			log_bad_chunked(c);
		return ST_READY;
	}
	memmove(c->buf + c->dec_end, c->buf + c->raw_off, sz);
	c->dec_end += sz;
	if (r >= 0) {
		/* The rest (r bytes) is the next pipelined request. */
		memmove(c->buf + c->dec_end, c->buf + c->raw_off + sz, (size_t)r);
		c->raw_off = c->dec_end;
		c->len = c->dec_end + (size_t)r;
		c->body_complete = 1;
		c->phase = PH_READY;
		return ST_READY;
	}
	c->raw_off = c->len = c->dec_end;
	if (c->dec_end - c->head_len >= c->s->cfg.body_buffer) {
		c->phase = PH_READY;
		return ST_READY;
	}
	return ST_WAIT;
}

/*
 * Advances c as far as the bytes at hand allow, never blocking: the TLS
 * handshake, the head, then the body up to body_buffer. ST_READY: a
 * request for a worker (complete, or to stream, or c->reject to answer);
 * ST_WAIT: wait for the socket (c->want_write says which way); ST_CLOSE:
 * close without an answer. headers has room for max_headers.
 */
static enum step conn_step(struct conn *c, struct mse_http_header *headers)
{
	struct mse_server *s = c->s;
	const struct mse_server_config *cfg = &s->cfg;
	size_t head_max = cfg->max_head_bytes + BODY_SLACK;

	if (c->phase == PH_HANDSHAKE) {
		if (c->ssl) {
			int rc, e;

			ERR_clear_error();
			rc = SSL_do_handshake(c->ssl);
			if (rc != 1) {
				e = SSL_get_error(c->ssl, rc);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
					c->want_write = e == SSL_ERROR_WANT_WRITE;
					return ST_WAIT;
				} else {
					unsigned long err = ERR_peek_error();
					char msg[256] = "connection closed";

					if (err)
						ERR_error_string_n(err, msg, sizeof(msg));
					mse_debug("%s:%u: TLS handshake failed: %s",
						  c->info.remote_addr, c->info.remote_port, msg);
					ERR_clear_error();
					return ST_CLOSE;
				}
			}
			if (s->h2) {
				const unsigned char *p = NULL;
				unsigned int n = 0;

				SSL_get0_alpn_selected(c->ssl, &p, &n);
				if (n == 2 && memcmp(p, "h2", 2) == 0) {
					c->phase = PH_HEAD;
					return ST_H2;
				}
			}
		}
		c->phase = PH_HEAD;
	}
	if (c->phase == PH_READY)
		return ST_READY;
	for (;;) {
		size_t room_want;
		ssize_t n;
		int h2_maybe = 0;

		if (s->h2 && !c->ssl && c->requests == 0 && c->phase == PH_HEAD && c->len > 0) {
			/* Prior knowledge (RFC 9113 §3.3): the preface, or its start. */
			size_t k = c->len < MSE_H2_PREFACE_LEN ? c->len : MSE_H2_PREFACE_LEN;

			h2_maybe = memcmp(c->buf, MSE_H2_PREFACE, k) == 0;
			if (h2_maybe && c->len >= MSE_H2_PREFACE_LEN)
				return ST_H2;
		}
		if (c->phase == PH_HEAD && c->len > 0 && !h2_maybe &&
		    (c->parsed_len == 0 || c->len >= cfg->max_head_bytes ||
		     memchr(c->buf + c->parsed_len, '\n', c->len - c->parsed_len))) {
			/*
			 * Parse the first bytes, then again only when a line ended
			 * (or the limit was reached): re-parsing a head on every
			 * byte of a trickle would cost O(n^2) CPU (picohttpparser's
			 * last_len idea).
			 */
			struct mse_http_request req;
			int status = 400, r;

			r = mse_http_parse_request(c->buf, c->len, cfg->max_head_bytes, &req,
						   headers, cfg->max_headers, &status);
			c->parsed_len = r == -2 ? c->len : 0;
			if (r == -1) {
				mse_debug("%s:%u: bad request (%d)", c->info.remote_addr,
					  c->info.remote_port, status);
				c->reject = status;
				return ST_READY;
			}
			if (r > 0) {
				enum step st = head_complete(c, &req, (size_t)r);

				if (st != ST_WAIT)
					return st;
			}
		}
		if (c->phase == PH_BODY) {
			if (c->chunked) {
				enum step st = chunked_advance(c);

				if (st != ST_WAIT)
					return st;
			} else if (c->len - c->head_len >= c->body_len) {
				c->body_complete = 1;
				c->phase = PH_READY;
				return ST_READY;
			}
		}
		/* Room for the next read. */
		if (c->phase == PH_HEAD) {
			if (!c->buf && conn_grow(c, BUF_INITIAL, head_max) != 0)
				return ST_CLOSE;
			if (c->len == c->cap && conn_grow(c, c->cap * 2, head_max) != 0) {
				/* At the maximum the parser has refused already. */
				c->reject = 431;
				return ST_READY;
			}
		} else {
			room_want = c->chunked ? c->len + BODY_ROOM
					       : c->head_len + (size_t)c->body_len + BODY_ROOM;
			if (c->cap - c->len < BODY_ROOM || c->cap < room_want) {
				size_t max = c->head_len + cfg->body_buffer + BODY_SLACK;

				if (room_want > max)
					room_want = max;
				if (c->cap < room_want &&
				    conn_grow_to(c, room_want, max, !c->chunked) != 0)
					return ST_CLOSE;
			}
			if (c->len == c->cap) {
				c->phase = PH_READY; /* stream the rest */
				return ST_READY;
			}
		}
		n = io_read_nb(c, c->buf + c->len, c->cap - c->len);
		if (n > 0) {
			int64_t t = now_ms();

			if (c->phase == PH_HEAD && c->len == 0) {
				c->head_start = c->phase_start = t;
				c->phase_bytes = 0;
			}
			c->len += (size_t)n;
			c->phase_bytes += (uint64_t)n;
			c->last_byte = t;
			continue;
		}
		if (n == IO_AGAIN)
			return ST_WAIT;
		/* EOF or error: a partial request is simply dropped. */
		return ST_CLOSE;
	}
}

/* A request is done: what the connection reads next is a head. */
static void conn_next_request(struct conn *c)
{
	if (c->big_rbuf) {
		SSL_set_default_read_buffer_len(c->ssl, 0); /* back to one record */
		c->big_rbuf = 0;
	}
	c->phase = PH_HEAD;
	c->head_len = 0;
	c->chunked = c->body_complete = c->continue_sent = 0;
	c->body_len = 0;
	c->parsed_len = 0;
	c->idle_since = now_ms();
	c->head_start = c->phase_start = c->len > 0 ? c->idle_since : 0;
	c->phase_bytes = c->len;
}

/* Serves c while it has complete requests; then closes it or hands it back
 * to the loop. */
static void conn_serve(struct conn *c)
{
	struct mse_server *s = c->s;
	struct mse_http_header *headers = NULL;

	if (c->expired) {
		/* Head or body deadline (or rate floor) passed mid-request. */
		answer_error_and_close(c, NULL, 408);
		return;
	}
	if (atomic_load(&s->stopping)) {
		conn_close(c);
		return;
	}
	/* The worker's own array (it polls with it, never while serving). */
	headers = tl_loop_headers ? tl_loop_headers
				  : malloc(s->cfg.max_headers * sizeof(*headers));
	if (!headers) {
		conn_close(c);
		return;
	}
	for (;;) {
		struct mse_http_request req;
		int status = 400, r, hr;
		enum step st;

		if (c->reject) {
			int code = c->reject;

			c->reject = 0;
			answer_error_and_close(c, NULL, code);
			goto out;
		}
		/* The loop found this head complete; the buffer may have moved
		 * since, so parse it again for pointers into it. */
		r = mse_http_parse_request(c->buf, c->head_len, s->cfg.max_head_bytes, &req,
					   headers, s->cfg.max_headers, &status);
		if (r != (int)c->head_len) {
			answer_error_and_close(c, NULL, r == -1 ? status : 400);
			goto out;
		}
		hr = handle_request(c, &req, c->head_len);
		if (hr == -2)
			goto out;
		if (hr == -3) {
			conn_close(c);
			goto out;
		}
		if (hr != 0) {
			/* Not a bare close: input the client already sent (say,
			 * a pipelined request) would turn it into a reset that
			 * can destroy the end of the response we just wrote. */
			conn_linger(c);
			goto out;
		}
		conn_next_request(c);
		st = conn_step(c, headers);
		if (st == ST_READY && !atomic_load(&s->stopping))
			continue;
		if (st == ST_CLOSE || st == ST_READY)
			conn_close(c);
		else
			conn_wait(c, wait_deadline(c));
		goto out;
	}
out:
	if (headers != tl_loop_headers)
		free(headers);
}

/* Caller holds the lock: unparks the most recently idled worker, if any. */
static int wake_one_locked(struct mse_server *s)
{
	struct worker *w = s->idle;

	if (!w)
		return 0;
	s->idle = w->next;
	w->next = NULL;
	w->woken = 1;
	s->nactive++;
	s->tr.wakes++;
	pthread_cond_signal(&w->cv);
	return 1;
}

/*
 * Caller holds the lock. 1 if enough other workers are serving and made
 * progress recently that self should park rather than take more work:
 * runnable workers beyond ACTIVE_WORKERS only contend for the GIL. One
 * serving for STALL_MS or more is presumed blocked and does not count.
 */
static int surplus_locked(struct mse_server *s, const struct worker *self, int64_t t)
{
	int fresh = 0;

	/* Handlers that block release the GIL within a few hundred µs: a
	 * worker that took work 1 ms ago is asleep, not contending. */
	if (s->cls.blocking)
		return 0;
	for (const struct worker *w = s->workers; w; w = w->all_next)
		if (w != self && w->serving_since && t - w->serving_since < STALL_MS &&
		    ++fresh >= ACTIVE_WORKERS)
			return 1;
	return 0;
}

/* Caller holds the lock: takes w off the idle stack (it timed out there). */
static void unpark_self_locked(struct mse_server *s, struct worker *w)
{
	struct worker **pp;

	for (pp = &s->idle; *pp && *pp != w; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = w->next;
	w->next = NULL;
	s->nactive++;
}

/*
 * Caller holds the lock. Parks self until woken, or until it has been idle
 * thread_idle_ms while more than the floor of workers exist: then returns
 * 1 (self is unparked and must exit).
 */
static int park_locked(struct mse_server *s, struct worker *self)
{
	self->next = s->idle;
	s->idle = self;
	s->nactive--;
	self->parked_at = now_ms();
	while (!self->woken) {
		int64_t left;

		if (s->nthreads <= s->threads || s->workers_exit) {
			pthread_cond_wait(&self->cv, &s->lock);
			continue;
		}
		left = self->parked_at + s->cfg.thread_idle_ms - now_ms();
		if (left <= 0) {
			unpark_self_locked(s, self);
			return 1;
		}
		mse_pool_cond_wait_ms(&self->cv, &s->lock, left);
	}
	self->woken = 0;
	return 0;
}

/* Caller holds the lock: self leaves the pool (idle above the floor); its
 * thread is joined by the loop (reap_workers). */
static void retire_self_locked(struct mse_server *s)
{
	pthread_t me = pthread_self();

	for (int i = 0; i < s->nthreads; i++)
		if (pthread_equal(s->tids[i], me)) {
			s->tids[i] = s->tids[--s->nthreads];
			mse_metrics_threads(-1);
			s->reap[s->nreap++] = me;
			break;
		}
}

static void poll_locked(struct mse_server *s, struct worker *self);

static void *worker_main(void *arg)
{
	struct mse_server *s = arg;
	struct worker self = {.next = NULL, .woken = 0};
	struct worker **pp;
	int retire = 0;

	{
		/* park_locked's deadline is CLOCK_MONOTONIC: a default
		 * (CLOCK_REALTIME) condition would see it long past and
		 * return at once, so every parked worker above the floor
		 * would spin on futex calls instead of sleeping. */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&self.cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	self.tid = pthread_self();
	self.ktid = (pid_t)syscall(SYS_gettid);
	tl_worker = &self;
	tl_spare_ok = 1;
	/* For the connections this worker reads while it polls. */
	tl_loop_headers = malloc(s->cfg.max_headers * sizeof(*tl_loop_headers));
	if (s->cfg.thread_start)
		s->cfg.thread_start(s->cfg.user);
	pthread_mutex_lock(&s->lock);
	s->nactive++;
	s->nstarting--;
	self.all_next = s->workers;
	s->workers = &self;
	for (;;) {
		struct conn *c;

		while (!s->workers_exit && (!s->qhead || surplus_locked(s, &self, now_ms()))) {
			/* Nothing queued and nobody polling: read what arrived
			 * and serve it here, rather than sleep until the loop
			 * hands it over. */
			if (!s->qhead && !s->poller && tl_loop_headers &&
			    !atomic_load(&s->stopping)) {
				poll_locked(s, &self);
				continue;
			}
			/* Park on top of the stack: the next wake-up goes to the
			 * thread whose caches (and Python state) are warmest, and
			 * the ones at the bottom, idle longest, retire. */
			if (park_locked(s, &self)) {
				retire = 1;
				break;
			}
		}
		if (retire) {
			retire_self_locked(s);
			break;
		}
		if (!s->qhead)
			break;
		c = s->qhead;
		s->qhead = c->qnext;
		if (!s->qhead)
			s->qtail = NULL;
		s->qlen--;
		c->qnext = NULL;
		c->state = CS_BUSY;
		s->last_take = s->last_pick = self.serving_since = now_ms();
		s->nserving++;
		if (s->tr.on) {
			int64_t wq = s->last_pick - c->queued_at;

			s->tr.picks++;
			s->tr.wait_sum += wq;
			if (wq > s->tr.wait_max)
				s->tr.wait_max = wq;
		}
		pthread_mutex_unlock(&s->lock);
		conn_serve(c);
		pthread_mutex_lock(&s->lock);
		self.serving_since = 0;
		s->nserving--;
	}
	s->nactive--;
	for (pp = &s->workers; *pp != &self; pp = &(*pp)->all_next)
		;
	*pp = self.all_next;
	pthread_mutex_unlock(&s->lock);
	if (s->cfg.thread_stop)
		s->cfg.thread_stop(s->cfg.user);
	pthread_cond_destroy(&self.cv);
	free(tl_loop_headers);
	tl_loop_headers = NULL;
	spare_free();
	xch_cache_free(s);
	return NULL;
}

/* ---- the event loop ---------------------------------------------------------- */

static int add_worker_locked(struct mse_server *s);

/*
 * Caller holds the lock; the app is classified blocking. Wakes parked
 * workers, or starts new ones (up to max_threads), until every queued
 * connection has a worker free to take it: handlers that wait on the world
 * (a sleep, a database, an HTTP call) each hold a thread, and a request
 * queued behind them waits for a thread, not for them.
 */
static void serve_queue_locked(struct mse_server *s)
{
	int free = s->nactive + s->nstarting - s->nserving;

	for (size_t k = free > 0 ? (size_t)free : 0; k < s->qlen; k++)
		if (!wake_one_locked(s) && add_worker_locked(s) != 0)
			break;
}

/*
 * Caller holds the lock; c is WAITING and disarmed. CPU-bound (the default):
 * a worker is woken only when fewer than ACTIVE_WORKERS are running: a
 * running worker takes the next connection off the queue itself when it is
 * done, with no sleep and no hand-over; stall_check_locked wakes more when
 * they do not. Blocking: a worker for each queued connection, at once.
 */
static void enqueue_locked(struct mse_server *s, struct conn *c)
{
	c->state = CS_QUEUED;
	c->queued_at = now_ms();
	s->nbusy++;
	c->qnext = NULL;
	if (s->qtail)
		s->qtail->qnext = c;
	else
		s->qhead = c;
	s->qtail = c;
	s->qlen++;
	if ((long)s->qlen > s->tr.qmax)
		s->tr.qmax = (long)s->qlen;
	if (s->nactive < ACTIVE_WORKERS)
		wake_one_locked(s);
	else if (s->cls.blocking)
		serve_queue_locked(s);
}

/*
 * Caller holds the lock. Classifies the app (s->cls.blocking) from what its
 * serving workers do, at most every MSE_POOL_CHECK_MS (the cached answer
 * otherwise), and returns it. The kernel says what each is blocked on: a
 * sleep or I/O (in its handler, or on a slow client), or the GIL, a lock,
 * or a CPU on a loaded machine. Mostly blocked outside the GIL: the app
 * waits on the world, and the few waiting for the GIL (handlers that just
 * woke) cannot take queued work. Mostly on the GIL or running: CPU-bound,
 * and another thread would only queue for the GIL. The answer corrects
 * itself: workers let loose on a CPU-bound app are seen running next time.
 */
static int classify_locked(struct mse_server *s, int64_t t)
{
	struct mse_pool_probe p[MSE_POOL_SAMPLE];
	int n = 0;

	if (t - s->cls.last_check < MSE_POOL_CHECK_MS)
		return s->cls.blocking;
	s->tr.checks++;
	for (const struct worker *w = s->workers; w && n < MSE_POOL_SAMPLE; w = w->all_next)
		if (w->serving_since)
			p[n++] = (struct mse_pool_probe){
				w->ktid, atomic_load_explicit(&w->waiting, memory_order_relaxed)};
	return mse_pool_classify(&s->cls, t, p, n, s->cfg.app_busy, s->cfg.user);
}

/*
 * Caller holds the lock. Queued work not picked up for STALL_MS (all running
 * workers are blocked: a handler sleeping or waiting on I/O outside the
 * GIL, or on a slow client; or only preempted): if the app blocks, a worker
 * for each queued connection (woken or started, up to max_threads);
 * CPU-bound, one more worker woken. Returns the epoll timeout (ms) after
 * which to check again, or -1 if none is needed.
 */
static int stall_check_locked(struct mse_server *s, int64_t t)
{
	/* Blocking: nothing waits, so nothing prompts a look; look anyway. */
	if (s->cls.blocking && s->nserving && t - s->cls.last_check >= RECHECK_MS)
		classify_locked(s, t);
	if (!s->qhead || (!s->idle && s->nthreads >= s->max_threads))
		return s->cls.blocking && s->nserving ? RECHECK_MS : -1;
	if (s->nactive == 0 || t - s->last_pick >= STALL_MS ||
	    (!s->idle && t - s->qhead->queued_at >= STALL_MS)) {
		/* A worker polling takes what it queued as soon as it is back. */
		if (!s->poller && classify_locked(s, t))
			serve_queue_locked(s);
		else
			wake_one_locked(s);
		/* Give the woken worker time to take the head. */
		s->last_pick = t;
	}
	return STALL_MS;
}

/* Caller holds the lock: one line of s->tr (MSE_SCHED_TRACE), then resets it. */
static void trace_locked(struct mse_server *s, int64_t t)
{
	int idle = 0;

	for (const struct worker *w = s->idle; w; w = w->next)
		idle++;
	fprintf(stderr,
		"sched: %s, threads %d (serving %d, parked %d), queue %zu (max %ld), "
		"%ld picked (waited avg %.1f ms, max %ld), %ld checks, arms %ld, loop events %ld, wakes %ld, iters %ld\n",
		s->cls.blocking ? "blocking" : "cpu-bound", s->nthreads, s->nserving, idle, s->qlen,
		s->tr.qmax, s->tr.picks, s->tr.picks ? (double)s->tr.wait_sum / s->tr.picks : 0.0,
		s->tr.wait_max, s->tr.checks, s->tr.arms, s->tr.loop_events, s->tr.wakes, s->tr.loop_iters);
	memset(&s->tr, 0, sizeof(s->tr));
	s->tr.on = 1;
	s->tr.last = t;
}

/* The loop joins workers that retired idle (never under the lock). */
static void reap_workers(struct mse_server *s)
{
	pthread_t batch[16];
	int n;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		n = s->nreap < 16 ? s->nreap : 16;
		s->nreap -= n;
		memcpy(batch, s->reap + s->nreap, (size_t)n * sizeof(*batch));
		pthread_mutex_unlock(&s->lock);
		if (n == 0)
			return;
		for (int i = 0; i < n; i++)
			pthread_join(batch[i], NULL);
	}
}

static void fill_addr(char *out, size_t size, uint16_t *port, const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)size);
		*port = ntohs(a->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, out, (socklen_t)size);
		*port = ntohs(a->sin6_port);
	} else {
		snprintf(out, size, "unix");
		*port = 0;
	}
}

/*
 * Caller holds the lock. Closes one idle connection (no request bytes
 * pending: waiting for TLS or a first head, or keep-alive between
 * requests) to make room: of `only` if given, else of the address holding
 * the most connections, the one idle longest. 0 if one was closed.
 */
static int evict_idle_locked(struct mse_server *s, const struct addr_count *only)
{
	struct conn *victim = NULL;

	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->state != CS_WAITING || c->lingering || c->len > 0 ||
		    (c->phase != PH_HANDSHAKE && c->phase != PH_HEAD) || (only && c->addr != only))
			continue;
		if (!victim || c->addr->open > victim->addr->open ||
		    (c->addr->open == victim->addr->open &&
		     /* <=: the list is newest first, so ties go to the oldest */
		     (c->idle_since ? c->idle_since : c->accepted) <=
			     (victim->idle_since ? victim->idle_since : victim->accepted)))
			victim = c;
	}
	if (!victim)
		return -1;
	mse_debug("%s:%u: idle connection closed to make room", victim->info.remote_addr,
		  victim->info.remote_port);
	conn_reap_locked(s, victim);
	return 0;
}

/* Rate-limited warning that a limit refused a connection. */
static void warn_full(struct mse_server *s, const char *what, size_t limit, const char *addr)
{
	int64_t t = now_ms();

	if (t - s->last_full_warning > 1000) {
		mse_warn("%s (%zu) reached%s%s and no idle connection to close: refusing "
			 "connections",
			 what, limit, addr ? " by " : "", addr ? addr : "");
		s->last_full_warning = t;
	}
}

static void accept_ready(struct mse_server *s)
{
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage ss, local;
		socklen_t sl = sizeof(ss), ll = sizeof(local);
		struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT | EPOLLRDHUP};
		struct conn *c;
		struct addr_count *ac;
		unsigned char key[9];
		int fd, one = 1, refuse = 0;
		char addr[64];
		uint16_t rport;

		fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Out of descriptors: pause accepting so we do not spin. */
				mse_warn("accept: %s; pausing 100 ms", strerror(errno));
				epoll_ctl(s->outer, EPOLL_CTL_DEL, s->lfd, NULL);
				s->accept_paused_until = now_ms() + 100;
			}
			return;
		}
		fill_addr(addr, sizeof(addr), &rport, &ss);
		addr_key(&ss, key);
		pthread_mutex_lock(&s->lock);
		ac = addr_get_locked(s, key);
		if (ac)
			ac->open++; /* reserved now: an eviction below cannot free it */
		if (!ac) {
			refuse = 1;
		} else if (s->cfg.max_per_address && ac->open > s->cfg.max_per_address &&
			   evict_idle_locked(s, ac) != 0) {
			warn_full(s, "per-address connection limit", s->cfg.max_per_address, addr);
			refuse = 1;
		} else if (s->nconns >= s->cfg.max_connections && evict_idle_locked(s, NULL) != 0) {
			warn_full(s, "connection limit", s->cfg.max_connections, NULL);
			refuse = 1;
		}
		if (refuse) {
			addr_put_locked(s, ac);
			pthread_mutex_unlock(&s->lock);
			close(fd);
			continue;
		}
		pthread_mutex_unlock(&s->lock);
		c = calloc(1, sizeof(*c));
		if (!c) {
			pthread_mutex_lock(&s->lock);
			addr_put_locked(s, ac);
			pthread_mutex_unlock(&s->lock);
			close(fd);
			continue;
		}
		c->s = s;
		mse_metrics_conn(1);
		c->fd = fd;
		c->addr = ac;
		c->accepted = now_ms();
		c->state = CS_WAITING;
		c->phase = PH_HANDSHAKE;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		memcpy(c->info.remote_addr, addr, sizeof(addr));
		c->info.remote_port = rport;
		if (getsockname(fd, (struct sockaddr *)&local, &ll) == 0) {
			uint16_t lport;

			fill_addr(c->info.server_name, sizeof(c->info.server_name), &lport, &local);
		}
		c->info.server_port = s->port;
		c->info.is_tls = s->cfg.tls != NULL;
		if (s->cfg.tls) {
			if (!(c->ssl = SSL_new(s->cfg.tls)) || SSL_set_fd(c->ssl, fd) != 1) {
				ERR_clear_error();
				pthread_mutex_lock(&s->lock);
				addr_put_locked(s, ac);
				pthread_mutex_unlock(&s->lock);
				conn_free(c);
				continue;
			}
			SSL_set_options(c->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
			/* Read what the socket has in one read(2), not a record
			 * header then its body: half the reads per request. Safe
			 * because every reader here goes on until WANT_READ (the
			 * buffer is empty) before it waits on the socket. */
			SSL_set_read_ahead(c->ssl, 1);
#ifdef SSL_OP_CLEANSE_PLAINTEXT
			/* OpenSSL 3: wipe decrypted record bytes once read. */
			if (s->cfg.wipe_buffers)
				SSL_set_options(c->ssl, SSL_OP_CLEANSE_PLAINTEXT);
#endif
			SSL_set_accept_state(c->ssl);
			if (s->h2)
				(void)mse_tls_offer_h2(c->ssl);
			c->info.tls = c->ssl;
		}
		c->deadline = c->accepted + s->cfg.head_timeout_ms;
		ev.data.ptr = c;
		pthread_mutex_lock(&s->lock);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			mse_warn("epoll_ctl: %s", strerror(errno));
			conn_destroy_locked(s, c);
		}
		pthread_mutex_unlock(&s->lock);
	}
}

/* Reads and discards input of a lingering connection; 1 when it can go. */
static int linger_drain(struct conn *c)
{
	char scratch[4096];

	for (int k = 0; k < 16; k++) {
		ssize_t r = recv(c->fd, scratch, sizeof(scratch), 0);

		if (r == 0)
			return 1;
		if (r < 0)
			return !(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
	}
	return 0;
}

/* net/h2 is done with an adopted connection (its loop thread). */
static void h2_release(void *cookie)
{
	conn_close(cookie);
}

/*
 * Hands an HTTP/2 connection to net/h2: it stays in the server's books
 * (busy, so drains wait for it and limits count it) until h2_release.
 */
static void h2_adopt(struct mse_server *s, struct conn *c)
{
	pthread_mutex_lock(&s->lock);
	c->state = CS_BUSY;
	s->nbusy++;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	pthread_mutex_unlock(&s->lock);
	c->requests++;
	if (mse_h2_adopt(s->h2, c->fd, c->ssl, &c->info, c->buf, c->len, h2_release, c) != 0)
		conn_close(c);
}

static void conn_event(struct mse_server *s, struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT | EPOLLRDHUP, .data.ptr = c};
	enum step st;

	pthread_mutex_lock(&s->lock);
	if (c->state != CS_WAITING) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (c->lingering) {
		if (linger_drain(c) || epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
			conn_destroy_locked(s, c);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	/* Disarmed (one-shot) and STEPPING: only this thread touches c now
	 * (the loop or the polling worker; sweeps skip it). */
	c->state = CS_STEPPING;
	pthread_mutex_unlock(&s->lock);
	st = conn_step(c, tl_loop_headers);
	if (st == ST_H2) {
		h2_adopt(s, c);
		return;
	}
	pthread_mutex_lock(&s->lock);
	c->state = CS_WAITING;
	if (st == ST_READY) {
		enqueue_locked(s, c);
	} else if (st == ST_CLOSE) {
		conn_destroy_locked(s, c);
	} else {
		if (c->len == 0)
			buf_release(c); /* idle: no buffer */
		c->deadline = wait_deadline(c);
		ev.events = (c->want_write ? EPOLLOUT : EPOLLIN) | EPOLLONESHOT | EPOLLRDHUP;
		if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
			conn_destroy_locked(s, c);
	}
	pthread_mutex_unlock(&s->lock);
}

/* How long a polling worker waits in epoll_wait before it looks again
 * (stop, idle retirement of others): events wake it at once. */
#define POLL_WAIT_MS 1000

/*
 * Caller holds the lock; self becomes the poller: takes the connections'
 * epoll set from the loop (disarming it there, once per hand-over), waits
 * for events and reads them as the loop would (conn_event: complete
 * requests go on the queue, which this worker then serves itself). Returns
 * with the lock held, no longer the poller.
 */
static void poll_locked(struct mse_server *s, struct worker *self)
{
	struct epoll_event evs[64];
	int n, stop = 0;

	s->poller = self;
	if (s->inner_armed) {
		struct epoll_event ev = {.events = 0, .data.ptr = &g_mark_inner};

		epoll_ctl(s->outer, EPOLL_CTL_MOD, s->epfd, &ev);
		s->inner_armed = 0;
	}
	pthread_mutex_unlock(&s->lock);
	n = epoll_wait(s->epfd, evs, 64, POLL_WAIT_MS);
	for (int i = 0; i < n; i++) {
		if (evs[i].data.ptr == &g_mark_stop)
			stop = 1;
		else
			conn_event(s, evs[i].data.ptr);
	}
	pthread_mutex_lock(&s->lock);
	s->poller = NULL;
	if (n > 0) {
		/* Traffic: the loop watches the gap while this worker serves
		 * (every STALL_MS); wake it if it sleeps longer, idle till now. */
		s->last_poll = now_ms();
		if (s->loop_long) {
			uint64_t one = 1;
			ssize_t w = write(s->nudgefd, &one, sizeof(one));

			(void)w;
			s->loop_long = 0;
		}
	}
	grave_free_locked(s);
	(void)stop; /* the caller sees s->stopping */
}

/*
 * Caller holds the lock. 1 if a CPU-bound app's worker took a request
 * within STALL_MS: it keeps taking queued work, and polls the connections
 * itself once the queue is empty. The loop then reads requests ahead (on
 * the other core, so the worker finds them parsed) in batches, at most once
 * per STALL_MS, not as each arrives: armed all the time it woke once per
 * request (0.5 context switches and ~25 us of CPU per hello request with 64
 * clients); not reading ahead at all cost 8 % of the rate and doubled the
 * p99 (bench/README.md, issue 21).
 */
static int workers_flow_locked(const struct mse_server *s, int64_t t)
{
	return !s->cls.blocking && s->nserving && t - s->last_take < STALL_MS;
}

/*
 * Caller holds the lock (the loop). Gives the connections back to the loop
 * when no worker polled them for STALL_MS (all are serving, or blocked).
 */
static void inner_check_locked(struct mse_server *s, int64_t t)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = &g_mark_inner};

	if (s->inner_armed || s->poller || t - s->last_poll < STALL_MS ||
	    (workers_flow_locked(s, t) && t - s->last_read_ahead < STALL_MS))
		return;
	if (epoll_ctl(s->outer, EPOLL_CTL_MOD, s->epfd, &ev) == 0)
		s->inner_armed = 1;
	s->tr.arms++;
}

/* A request the watchdog abandoned, answered after the lock is released. */
struct stuck_req {
	struct xch *x;
	char what[300];
};

/*
 * Caller holds the lock. Finds handlers past request_timeout_ms and takes
 * their exchanges (io_lock held on return, abandoned set): at most n.
 */
static int find_stuck_locked(struct mse_server *s, int64_t t, struct stuck_req *out, int n)
{
	int k = 0;

	if (!s->cfg.request_timeout_ms)
		return 0;
	for (struct worker *w = s->workers; w && k < n; w = w->all_next) {
		struct xch *x = w->cur;
		struct conn *c;

		if (!x || w->stuck || t - w->handler_since < s->cfg.request_timeout_ms)
			continue;
		/* Busy means inside an op (a body read, a write): those have
		 * their own timeouts. Try again on the next sweep. */
		if (pthread_mutex_trylock(&x->io_lock) != 0)
			continue;
		if (x->x.started) {
			/* Answering (a long download, an event stream): not stuck;
			 * the write timeouts bound a client that stops reading. */
			pthread_mutex_unlock(&x->io_lock);
			continue;
		}
		c = x->c;
		x->abandoned = 1;
		w->stuck = 1;
		s->nstuck++;
		snprintf(out[k].what, sizeof(out[k].what), "%.*s %.*s from %s:%u",
			 (int)(x->req.method_len > 16 ? 16 : x->req.method_len), x->req.method,
			 (int)(x->req.target_len > 200 ? 200 : x->req.target_len), x->req.target,
			 c->info.remote_addr, c->info.remote_port);
		out[k++].x = x;
	}
	return k;
}

/* Answers 504 for an abandoned exchange (its response had not started). */
static void answer_stuck(struct mse_server *s, struct stuck_req *r, int stuck, int threads)
{
	struct xch *x = r->x;
	struct conn *c = x->c;

	{
		char date[32], msg[512];
		int n;

		mse_http_date(date);
		n = snprintf(msg, sizeof(msg),
			     "HTTP/1.1 504 Gateway Timeout\r\nDate: %s\r\nServer: %s\r\n"
			     "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 20\r\n"
			     "Connection: close\r\n\r\n504 Gateway Timeout\n",
			     date, s->server_name);
		c->waited_ms = 0;
		c->moved = 0;
		if (n > 0 && (size_t)n < sizeof(msg))
			(void)io_write_all(c, msg, (size_t)n, 200);
		access_log(s, c, &x->req, 504, 20);
		if (c->ssl) {
			ERR_clear_error();
			SSL_shutdown(c->ssl);
			ERR_clear_error();
		}
		shutdown(c->fd, SHUT_WR);
	}
	x->failed = 1;
	mse_warn("request timed out after %d ms: %s; answered 504; its handler still runs on "
		 "its thread (%d of %d threads stuck)",
		 s->cfg.request_timeout_ms, r->what, stuck, threads);
	pthread_mutex_unlock(&x->io_lock);
}

static void *worker_main(void *arg);

/* Caller holds the lock: starts one more worker (signals blocked), with
 * its explicit stack size. */
static int add_worker_locked(struct mse_server *s)
{
	int rc;

	if (s->nthreads >= s->max_threads || s->nthreads + s->nreap >= s->max_threads)
		return -1;
	rc = mse_pool_thread_create(&s->tids[s->nthreads], s->stack_size, worker_main, s);
	if (rc != 0) {
		int64_t t = now_ms();

		if (t - s->last_full_warning > 1000) {
			mse_warn("cannot start another worker thread (%d running): %s", s->nthreads,
				 strerror(rc));
			s->last_full_warning = t;
		}
		return -1;
	}
	s->nthreads++;
	s->nstarting++;
	mse_metrics_threads(1);
	return 0;
}

/*
 * Closes idle connections past their deadline; hands partial requests (head
 * or body late, or below the rate floor) to a worker for a 408; answers 504
 * for handlers past the request deadline; gives freed memory back.
 */
static void sweep(struct mse_server *s)
{
	int64_t t = now_ms();
	struct conn *c, *next;
	struct stuck_req stuck[8];
	int nstuck, total_stuck, nthreads;

	pthread_mutex_lock(&s->lock);
	for (c = s->conns; c; c = next) {
		int slow;

		next = c->next;
		if (c->state != CS_WAITING)
			continue;
		slow = !c->lingering && (c->phase == PH_BODY || (c->phase == PH_HEAD && c->len > 0)) &&
		       below_rate(&s->cfg, c->phase_bytes, t - c->phase_start);
		if (t < c->deadline && !slow)
			continue;
		if (c->lingering || c->len == 0) {
			if (!c->lingering)
				mse_debug("%s:%u: %s timed out", c->info.remote_addr,
					  c->info.remote_port,
					  c->requests ? "idle connection" : "connection without request");
			conn_reap_locked(s, c);
		} else {
			struct epoll_event ev = {.events = 0, .data.ptr = c};

			/* Disarm before a worker owns it (see conn_event). */
			epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
			mse_debug("%s:%u: request %s %s", c->info.remote_addr, c->info.remote_port,
				  c->phase == PH_BODY ? "body" : "head",
				  slow ? "below the minimum transfer rate" : "timed out");
			c->expired = 1;
			enqueue_locked(s, c);
		}
	}
	nstuck = find_stuck_locked(s, t, stuck, 8);
	/* Each stuck handler keeps its thread: start a worker in its place. */
	for (int i = 0; i < nstuck; i++)
		if (s->nthreads - s->nstuck < s->threads)
			add_worker_locked(s);
	total_stuck = s->nstuck;
	nthreads = s->nthreads;
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < nstuck; i++)
		answer_stuck(s, &stuck[i], total_stuck, nthreads);
	reap_workers(s);
	if (atomic_load(&s->freed_bytes) >= TRIM_BYTES && t - s->last_trim >= TRIM_EVERY_MS) {
		atomic_store(&s->freed_bytes, 0);
		s->last_trim = t;
		malloc_trim(0);
	}
}

static int min_timeout(const struct mse_server_config *c)
{
	int m = c->head_timeout_ms;

	if (c->idle_timeout_ms < m)
		m = c->idle_timeout_ms;
	if (LINGER_MS < m)
		m = LINGER_MS;
	m /= 4;
	return m < 20 ? 20 : m > 1000 ? 1000 : m;
}

/* ---- public API --------------------------------------------------------------- */

static int open_listener(struct mse_server *s, struct mse_err *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL, *ai;
	char port[8];
	int rc, fd = -1, one = 1, saved = 0;

	snprintf(port, sizeof(port), "%u", s->cfg.port);
	rc = getaddrinfo(s->host, port, &hints, &res);
	if (rc != 0)
		return mse_err_field(err, "host", "cannot resolve \"%s\": %s", s->host,
				     gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, s->cfg.backlog) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return mse_err_field(err, "port", "cannot listen on %s:%u: %s", s->host,
				     s->cfg.port, strerror(saved));
	s->lfd = fd;
	s->own_lfd = 1;
	return 0;
}

int mse_server_new(const struct mse_server_config *cfg, struct mse_server **out,
		   struct mse_err *err)
{
	struct mse_server *s = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int flags, acc = 0;
	socklen_t al = sizeof(acc);
	char addr[64];
	uint16_t port;

	*out = NULL;
	if (!cfg->handler)
		return mse_err_field(err, "handler", "a request handler is required");
	if (cfg->max_head_bytes < 256 || cfg->max_head_bytes > ((size_t)1 << 30))
		return mse_err_field(err, "max_head_bytes", "expected 256..1 GiB, got %zu",
				     cfg->max_head_bytes);
	if (cfg->max_headers < 1 || cfg->max_headers > 100000)
		return mse_err_field(err, "max_headers", "expected 1..100000, got %zu",
				     cfg->max_headers);
	if (cfg->head_timeout_ms <= 0 || cfg->idle_timeout_ms <= 0 || cfg->read_timeout_ms <= 0 ||
	    cfg->write_timeout_ms <= 0 || cfg->drain_timeout_ms < 0)
		return mse_err_field(err, "timeout", "timeouts must be positive");
	if (cfg->threads < 0 || cfg->threads > 1024)
		return mse_err_field(err, "threads", "expected 0..1024, got %d", cfg->threads);
	if (cfg->max_threads < 0 || cfg->max_threads > 4096)
		return mse_err_field(err, "max_threads", "expected 0..4096, got %d", cfg->max_threads);
	if (cfg->thread_idle_ms < 0)
		return mse_err_field(err, "thread_idle_ms", "must not be negative, got %d",
				     cfg->thread_idle_ms);
	if (cfg->stack_size && (cfg->stack_size < 64 * 1024 || cfg->stack_size > ((size_t)1 << 30)))
		return mse_err_field(err, "stack_size", "expected 64 KiB..1 GiB, got %zu",
				     cfg->stack_size);
	if (cfg->request_timeout_ms < 0 || cfg->min_rate_grace_ms < 0)
		return mse_err_field(err, "timeout", "request_timeout_ms and min_rate_grace_ms "
				     "must not be negative");
	if (!(s = calloc(1, sizeof(*s))))
		return mse_err_set(err, "out of memory");
	s->cfg = *cfg;
	s->tr.on = getenv("MSE_SCHED_TRACE") != NULL;
	s->lfd = s->epfd = s->evfd = s->outer = s->nudgefd = -1;
	pthread_mutex_init(&s->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&s->idlecond, &ca);
		pthread_condattr_destroy(&ca);
	}
	s->host = strdup(cfg->host ? cfg->host : "127.0.0.1");
	s->server_name = strdup(cfg->server_name ? cfg->server_name : "mse-c/" MSE_VERSION);
	if (!s->host || !s->server_name) {
		mse_err_set(err, "out of memory");
		goto fail;
	}
	if (!mse_http_valid_field_value(s->server_name, strlen(s->server_name))) {
		mse_err_field(err, "server_name", "not a valid header value");
		goto fail;
	}
	s->cfg.host = s->host;
	s->cfg.server_name = s->server_name;
	if (s->cfg.max_connections == 0)
		s->cfg.max_connections = 10000;
	s->threads = cfg->threads;
	if (s->threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		s->threads = (int)(n > 0 && n < 256 ? 2 * n : 4);
	}
	s->max_threads = cfg->max_threads ? cfg->max_threads : MSE_SERVER_THREADS_MAX_DEFAULT;
	if (s->max_threads < s->threads)
		s->max_threads = s->threads;
	if (s->cfg.thread_idle_ms == 0)
		s->cfg.thread_idle_ms = 10000;
	s->stack_size = mse_pool_stack_size(cfg->stack_size);
	if (cfg->tls && SSL_CTX_up_ref(cfg->tls) != 1) {
		s->cfg.tls = NULL;
		mse_err_set(err, "cannot reference the TLS context");
		goto fail;
	}
	if (cfg->listen_fd >= 0) {
		if (getsockopt(cfg->listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) != 0 || !acc) {
			mse_err_field(err, "listen_fd", "fd %d is not a listening socket",
				      cfg->listen_fd);
			goto fail;
		}
		s->lfd = cfg->listen_fd;
		s->own_lfd = 0;
	} else if (open_listener(s, err) != 0) {
		goto fail;
	}
	/* The loop accepts until EAGAIN, which needs a non-blocking socket. */
	flags = fcntl(s->lfd, F_GETFL);
	if (flags < 0 || fcntl(s->lfd, F_SETFL, flags | O_NONBLOCK) != 0) {
		mse_err_set(err, "fcntl(listen fd): %s", strerror(errno));
		goto fail;
	}
	if (getsockname(s->lfd, (struct sockaddr *)&ss, &sl) != 0) {
		mse_err_set(err, "getsockname: %s", strerror(errno));
		goto fail;
	}
	fill_addr(addr, sizeof(addr), &port, &ss);
	s->port = port;
	if (s->cfg.http2 && mse_h2_new(&s->cfg, s->threads, &s->h2, err) != 0)
		goto fail;
	s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->outer = epoll_create1(EPOLL_CLOEXEC);
	s->nudgefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->evfd < 0 || s->epfd < 0 || s->outer < 0 || s->nudgefd < 0) {
		mse_err_set(err, "epoll/eventfd: %s", strerror(errno));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	mse_server_free(s);
	return -1;
}

uint16_t mse_server_port(const struct mse_server *s)
{
	return s->port;
}

int mse_server_threads(struct mse_server *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->nthreads;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void mse_server_stop(struct mse_server *s)
{
	uint64_t one = 1;
	ssize_t r;

	/* Async-signal-safe: an atomic store and a write(2). */
	atomic_store(&s->stopping, 1);
	r = write(s->evfd, &one, sizeof(one));
	(void)r;
}

static void drain_and_join(struct mse_server *s)
{
	int64_t deadline = now_ms() + s->cfg.drain_timeout_ms;
	struct conn *c, *next;
	int n;

	pthread_mutex_lock(&s->lock);
	/* Waiting connections are the loop's: close them now. */
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->state == CS_WAITING)
			conn_reap_locked(s, c);
	}
	s->workers_exit = 1;
	while (wake_one_locked(s))
		;
	for (int64_t left; s->nbusy > 0 && (left = deadline - now_ms()) > 0;)
		mse_pool_cond_wait_ms(&s->idlecond, &s->lock, left);
	if (s->nbusy > 0) {
		mse_warn("stop: %zu connection(s) still busy after %d ms: cutting them", s->nbusy,
			 s->cfg.drain_timeout_ms);
		/* Wakes any worker blocked on these sockets; the handler's next
		 * read or write fails and it returns. */
		for (c = s->conns; c; c = c->next)
			shutdown(c->fd, SHUT_RDWR);
	}
	/* A handler stuck past the request deadline may never return: its
	 * thread is left running (detached), the others joined. */
	n = s->nthreads;
	for (int i = 0; i < n; i++) {
		int stuck = 0;

		for (struct worker *w = s->workers; w; w = w->all_next)
			if (w->stuck && pthread_equal(w->tid, s->tids[i]))
				stuck = 1;
		if (stuck) {
			pthread_detach(s->tids[i]);
			continue;
		}
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->tids[i], NULL);
		pthread_mutex_lock(&s->lock);
	}
	mse_metrics_threads(-n);
	if (s->nstuck)
		mse_warn("stop: %d handler(s) past the request deadline still running; left "
			 "behind", s->nstuck);
	pthread_mutex_unlock(&s->lock);
	reap_workers(s);
	pthread_mutex_lock(&s->lock);
	/* Lingering connections handed back during the drain. */
	while (s->conns) {
		c = s->conns;
		if (c->state != CS_WAITING && s->nstuck) {
			/* Still a stuck handler's: unlink only. */
			s->conns = c->next;
			if (s->conns)
				s->conns->prev = NULL;
			c->prev = c->next = NULL;
			continue;
		}
		conn_destroy_locked(s, c);
	}
	grave_free_locked(s);
	pthread_mutex_unlock(&s->lock);
}

int mse_server_run(struct mse_server *s, struct mse_err *err)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct epoll_event evs[64];
	int started = 0, rc = 0, tick = min_timeout(&s->cfg);
	int64_t next_sweep = now_ms() + tick;
	sigset_t pipe_set, old_mask;
	const struct timespec zero = {0, 0};


	s->tids = calloc((size_t)s->max_threads, sizeof(*s->tids));
	s->reap = calloc((size_t)s->max_threads, sizeof(*s->reap));
	tl_loop_headers = malloc(s->cfg.max_headers * sizeof(*tl_loop_headers));
	if (!s->tids || !s->reap || !tl_loop_headers) {
		free(tl_loop_headers);
		tl_loop_headers = NULL;
		return mse_err_set(err, "out of memory");
	}
	/* The stop eventfd in both sets: a polling worker wakes at stop too. */
	ev.data.ptr = &g_mark_stop;
	if (epoll_ctl(s->outer, EPOLL_CTL_ADD, s->evfd, &ev) != 0 ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ev) != 0) {
		free(tl_loop_headers);
		tl_loop_headers = NULL;
		return mse_err_set(err, "epoll_ctl: %s", strerror(errno));
	}
	ev.events = EPOLLIN | EPOLLONESHOT;
	ev.data.ptr = &g_mark_inner;
	if (epoll_ctl(s->outer, EPOLL_CTL_ADD, s->epfd, &ev) != 0) {
		free(tl_loop_headers);
		tl_loop_headers = NULL;
		return mse_err_set(err, "epoll_ctl: %s", strerror(errno));
	}
	s->inner_armed = 1;
	ev.events = EPOLLIN;
	ev.data.ptr = &g_mark_nudge;
	if (epoll_ctl(s->outer, EPOLL_CTL_ADD, s->nudgefd, &ev) != 0) {
		free(tl_loop_headers);
		tl_loop_headers = NULL;
		return mse_err_set(err, "epoll_ctl: %s", strerror(errno));
	}
	ev.data.ptr = &g_mark_listen;
	if (epoll_ctl(s->outer, EPOLL_CTL_ADD, s->lfd, &ev) != 0) {
		free(tl_loop_headers);
		tl_loop_headers = NULL;
		return mse_err_set(err, "epoll_ctl(listen): %s", strerror(errno));
	}
	tl_spare_ok = 1;
	/* Workers block every signal: SIGPIPE from a TLS write to a closed
	 * socket becomes EPIPE, and process signals go to the caller's threads. */
	/*
	 * The loop writes too (TLS handshakes, 100 Continue, 504): a peer that
	 * went away must give EPIPE, not a process-killing SIGPIPE. Blocked
	 * here, and any pending one consumed before the mask is restored.
	 */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
	s->workers_exit = 0;
	pthread_mutex_lock(&s->lock);
	while (s->nthreads < s->threads && add_worker_locked(s) == 0)
		;
	started = s->nthreads;
	pthread_mutex_unlock(&s->lock);
	if (started == 0) {
		rc = mse_err_set(err, "cannot start worker threads");
		atomic_store(&s->stopping, 1);
	}
	mse_info("serving %s on port %u with %d threads", s->cfg.tls ? "HTTPS" : "HTTP", s->port,
		 started);

	while (!atomic_load(&s->stopping)) {
		int64_t t = now_ms();
		int wait = next_sweep > t ? (int)(next_sweep - t) : 0, st;
		int n;

		pthread_mutex_lock(&s->lock);
		if (s->tr.on && t - s->tr.last >= 1000)
			trace_locked(s, t);
		st = stall_check_locked(s, t);
		inner_check_locked(s, t);
		s->loop_long = 0;
		if (!s->inner_armed && (st < 0 || st > STALL_MS)) {
			/* A worker polls: look again soon while traffic flows;
			 * on an idle server sleep, the worker nudges. */
			if (!s->poller || t - s->last_poll < ACTIVE_WINDOW_MS)
				st = STALL_MS;
			else
				s->loop_long = 1;
		}
		pthread_mutex_unlock(&s->lock);
		if (st >= 0 && st < wait)
			wait = st;
		n = epoll_wait(s->outer, evs, 64, wait);
		s->tr.loop_iters++;

		if (n < 0 && errno != EINTR) {
			mse_error("epoll_wait: %s", strerror(errno));
			break;
		}
		int listen_ready = 0, inner_ready = 0;

		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &g_mark_listen)
				listen_ready = 1;
			else if (p == &g_mark_inner)
				inner_ready = 1;
			else if (p == &g_mark_nudge) {
				uint64_t v;
				ssize_t r = read(s->nudgefd, &v, sizeof(v));

				(void)r;
			}
		}
		if (inner_ready) {
			/* The connections' set fired (one-shot): read what is ready,
			 * then re-arm it unless a worker polls it meanwhile. */
			int k = epoll_wait(s->epfd, evs, 64, 0);
			struct epoll_event iev = {.events = EPOLLIN | EPOLLONESHOT,
						  .data.ptr = &g_mark_inner};

			s->tr.loop_events += k;
			for (int i = 0; i < k; i++)
				if (evs[i].data.ptr != &g_mark_stop)
					conn_event(s, evs[i].data.ptr);
			pthread_mutex_lock(&s->lock);
			s->inner_armed = 0;
			s->last_read_ahead = now_ms();
			if (!s->poller && !workers_flow_locked(s, s->last_read_ahead) &&
			    epoll_ctl(s->outer, EPOLL_CTL_MOD, s->epfd, &iev) == 0)
				s->inner_armed = 1;
			pthread_mutex_unlock(&s->lock);
		}
		/* After the batch: accepting may close an idle connection to make
		 * room, which must not have an event still pending in evs. */
		if (listen_ready)
			accept_ready(s);
		t = now_ms();
		if (t >= next_sweep) {
			sweep(s);
			next_sweep = t + tick;
		}
		if (s->accept_paused_until && t >= s->accept_paused_until) {
			s->accept_paused_until = 0;
			ev.data.ptr = &g_mark_listen;
			epoll_ctl(s->outer, EPOLL_CTL_ADD, s->lfd, &ev);
		}
	}
	mse_info("stopping: no new connections; finishing requests in flight");
	epoll_ctl(s->outer, EPOLL_CTL_DEL, s->lfd, NULL);
	if (s->own_lfd) {
		close(s->lfd);
		s->lfd = -1;
	}
	/* HTTP/2: GOAWAY, streams in flight finish (HTTP/1.1 ones meanwhile too). */
	mse_h2_join(s->h2, now_ms() + s->cfg.drain_timeout_ms);
	drain_and_join(s);
	free(tl_loop_headers);
	tl_loop_headers = NULL;
	spare_free();
	while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	mse_info("stopped");
	return rc;
}

void mse_server_free(struct mse_server *s)
{
	if (!s)
		return;
	while (s->conns) /* only if run was never called or failed early */
		conn_destroy_locked(s, s->conns);
	grave_free_locked(s);
	if (s->own_lfd && s->lfd >= 0)
		close(s->lfd);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->outer >= 0)
		close(s->outer);
	if (s->nudgefd >= 0)
		close(s->nudgefd);
	if (s->evfd >= 0)
		close(s->evfd);
	if (s->nstuck || mse_h2_left(s->h2)) {
		/* A stuck handler's thread still points here: leave it be. */
		mse_warn("server not freed: %d handler(s) still running",
			 s->nstuck + mse_h2_left(s->h2));
		return;
	}
	SSL_CTX_free(s->cfg.tls);
	mse_h2_free(s->h2);
	free(s->tids);
	free(s->reap);
	for (int i = 0; i < ADDR_BUCKETS; i++)
		while (s->addrs[i]) {
			struct addr_count *a = s->addrs[i];

			s->addrs[i] = a->next;
			free(a);
		}
	free(s->host);
	free(s->server_name);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idlecond);
	free(s);
}

/* ---- a connection handed over after 101 (exchange.h: upgrade) ------------ */

/*
 * The stream owns the socket and the TLS session from the 101 on; it keeps
 * a private struct conn with only fd and ssl set, so io_read_nb and
 * io_write_nb serve it as they serve the server's connections, and it never
 * touches the server (which may be freed first).
 */
struct hstream {
	struct mse_stream s;
	struct conn io;
	char *pre; /* bytes the client sent after the request head */
	size_t pre_len, pre_off;
};

static ssize_t hs_read(struct mse_stream *st, void *buf, size_t n)
{
	struct hstream *h = (struct hstream *)st;
	ssize_t r;

	if (h->pre_off < h->pre_len) {
		size_t k = h->pre_len - h->pre_off < n ? h->pre_len - h->pre_off : n;

		memcpy(buf, h->pre + h->pre_off, k);
		h->pre_off += k;
		return (ssize_t)k;
	}
	r = io_read_nb(&h->io, buf, n);
	return r == IO_AGAIN ? -2 : r < 0 ? -1 : r;
}

static ssize_t hs_write(struct mse_stream *st, const void *buf, size_t n)
{
	ssize_t r = io_write_nb(&((struct hstream *)st)->io, buf, n);

	return r == IO_AGAIN ? -2 : r < 0 ? -1 : r;
}

static int hs_fd(struct mse_stream *st)
{
	return ((struct hstream *)st)->io.fd;
}

static size_t hs_pending(struct mse_stream *st)
{
	struct hstream *h = (struct hstream *)st;

	/* SSL_has_pending: read-ahead bytes not yet decrypted count too. */
	return h->pre_len - h->pre_off +
	       (h->io.ssl ? (SSL_pending(h->io.ssl) > 0 ? (size_t)SSL_pending(h->io.ssl)
						       : (size_t)SSL_has_pending(h->io.ssl))
			  : 0);
}

static void hs_close(struct mse_stream *st)
{
	struct hstream *h = (struct hstream *)st;

	if (h->io.ssl) {
		ERR_clear_error();
		SSL_shutdown(h->io.ssl); /* close_notify if the socket takes it now; never waits */
		SSL_free(h->io.ssl);
		ERR_clear_error();
	}
	if (h->io.fd >= 0)
		close(h->io.fd);
	free(h->pre);
	free(h);
}

static const struct mse_stream_ops hs_ops = {hs_read, hs_write, hs_fd, hs_pending, hs_close};

/*
 * Sends "101 Switching Protocols" and the handler's headers (RFC 9110
 * §15.2.2), then hands the socket and TLS session over: from here the
 * server forgets them (handle_request closes only the husk).
 */
static int xch_upgrade_unlocked(struct mse_exchange *xe, const struct mse_http_header *h,
				size_t n, struct mse_stream **out);

/* As the other ops: under the exchange's io_lock, refused once abandoned. */
static int xch_upgrade(struct mse_exchange *xe, const struct mse_http_header *h, size_t n,
		       struct mse_stream **out)
{
	struct xch *x = xe->impl;
	int r = -1;

	*out = NULL;
	pthread_mutex_lock(&x->io_lock);
	if (!x->abandoned)
		r = xch_upgrade_unlocked(xe, h, n, out);
	pthread_mutex_unlock(&x->io_lock);
	return r;
}

static int xch_upgrade_unlocked(struct mse_exchange *xe, const struct mse_http_header *h,
				size_t n, struct mse_stream **out)
{
	struct xch *x = xe->impl;
	struct conn *c = x->c;
	struct hstream *hs;
	char *head;
	size_t len = 0, cap = 64;
	size_t rest = c->len - x->raw_off;

	*out = NULL;
	if (xe->started || x->failed || !x->body_done)
		return -1;
	for (size_t i = 0; i < n; i++)
		cap += h[i].name_len + h[i].value_len + 4;
	head = malloc(cap);
	hs = calloc(1, sizeof(*hs));
	if (!head || !hs || (rest && !(hs->pre = malloc(rest)))) {
		free(head);
		free(hs);
		return -1;
	}
	len = (size_t)snprintf(head, cap, "HTTP/1.1 101 Switching Protocols\r\n");
	for (size_t i = 0; i < n; i++) {
		memcpy(head + len, h[i].name, h[i].name_len);
		len += h[i].name_len;
		head[len++] = ':';
		head[len++] = ' ';
		memcpy(head + len, h[i].value, h[i].value_len);
		len += h[i].value_len;
		head[len++] = '\r';
		head[len++] = '\n';
	}
	head[len++] = '\r';
	head[len++] = '\n';
	if (io_write_all(c, head, len, c->s->cfg.write_timeout_ms) != 0) {
		free(head);
		free(hs->pre);
		free(hs);
		x->failed = 1;
		return -1;
	}
	free(head);
	if (rest)
		memcpy(hs->pre, c->buf + x->raw_off, rest);
	hs->pre_len = rest;
	hs->s.ops = &hs_ops;
	hs->io.fd = c->fd;
	hs->io.ssl = c->ssl;
	/* The connection keeps neither: closing it now only frees its buffers. */
	epoll_ctl(c->s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->fd = -1;
	c->ssl = NULL;
	c->len = x->raw_off;
	xe->started = 1;
	x->status = 101;
	x->finished = 1;
	x->upgraded = 1;
	*out = &hs->s;
	return 0;
}

/* Has the client closed or broken its end? A peek: no byte is consumed. */
static void xch_waiting(struct mse_exchange *xe, int on)
{
	(void)xe;
	/* Called by the handler, on its worker's thread. */
	if (tl_worker)
		atomic_store_explicit(&tl_worker->waiting, on, memory_order_relaxed);
}

static int xch_peer_gone(struct mse_exchange *xe)
{
	struct xch *x = xe->impl;
	char b;
	ssize_t r;

	if (x->failed)
		return 1;
	if (x->c->fd < 0)
		return 0;
	r = recv(x->c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (r == 0)
		return 1;
	return r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}
