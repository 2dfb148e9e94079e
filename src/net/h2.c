/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP/2 for mse_server over libnghttp2: see net/h2.h for the model.
 *
 * Threads and locks: the engine lock (h->lock) guards the job queue, the
 * list of connections and the "dirty" list (connections the loop must
 * send for); each connection's lock (c->lock) guards its nghttp2 session
 * and every stream of it. Order: c->lock, then h->lock. Socket and TLS
 * I/O happen only on the loop thread, outside c->lock; nghttp2 is only
 * ever called with c->lock held.
 */
#include "net/h2.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>

#include "common/log.h"
#include "net/http.h"
#include "net/metrics.h"
#include "net/pool.h"
#include "net/sslio.h"

/* Stream flow-control window we grant at first: the protocol's default
 * (RFC 9113 §6.9.2; a smaller one would make windows negative for clients
 * that send before our SETTINGS arrive, which some clients do not survive).
 * A body that fits is read whole before the handler runs; a larger one is
 * streamed, the window reopened as the handler reads. Streams waiting for a
 * worker hold at most this each (32 streams x 64 KiB = 2 MiB), so they can
 * never take the whole connection window from the streams being served
 * (which would stall those until their read timeout). */
#define H2_STREAM_WINDOW 65535
#define H2_MAX_STREAMS_DEFAULT 32
/* A stream whose handler runs reads with this window. */
#define H2_RUN_WINDOW (256 * 1024)
/* Connection window: every body byte buffered on one connection. */
#define H2_CONN_WINDOW (4 * 1024 * 1024)
/* Response bytes buffered per stream before the handler's write waits. */
#define H2_OUT_BUF (64 * 1024)
/* Header bytes of one connection's open streams: this many max_head_bytes. */
#define H2_CONN_HEAD_FACTOR 4
/* Control-frame token bucket per connection (floods). */
#define H2_FLOOD_BURST 1000
#define H2_FLOOD_RATE 200 /* per second */
/* nghttp2's own guards (the Debian package carries the backports). */
#define H2_MAX_CONTINUATIONS 8
#define H2_MAX_SETTINGS 32
#define H2_MAX_OUTBOUND_ACK 1000
#define H2_RESET_BURST 1000
#define H2_RESET_RATE 33
/* Socket reads per event before other connections get a turn. */
#define H2_READS_PER_EVENT 16
#define H2_RBUF (16 * 1024)
/* Frames collected for one write (a TLS record holds 16 KiB of them). */
#define H2_WBATCH (16 * 1024)
/* At stop, how long after the cut handlers get to return before their
 * threads are left behind (detached): the cut fails every exchange op, so
 * a handler doing I/O returns at once; one that does not (stuck in Python)
 * must not hold the process. */
#define H2_STOP_GRACE_MS 1000

struct h2c;
struct h2w;

struct h2hdr {
	size_t name, name_len, value, value_len; /* offsets into the arena */
};

struct h2s {
	struct h2c *c;
	int32_t id;
	struct h2s *prev, *next; /* c->streams */
	struct h2s *qnext;       /* the job queue */
	/* Header block: names and values copied to the arena. */
	char *arena;
	size_t alen, acap;
	struct h2hdr *hv;
	size_t nh, hcap;
	long m, p, a; /* :method, :path, :authority entries (index) or -1 */
	int have_host, hdr_status, hdr_done;
	struct mse_http_header *hdrs;
	struct mse_http_request req;
	/* Request body: unconsumed bytes (the stream window bounds them). */
	uint8_t *in;
	size_t in_off, in_len, in_cap;
	uint64_t in_total;
	int in_eof, too_large, body_timeout, body_error;
	/* The rate floor counts only time spent waiting for the client: with
	 * body bytes unread here, or the connection window held by other
	 * streams' unread bytes, the wait is ours (client_ms, per sweep). */
	int64_t body_start, client_ms, rate_tick;
	/* Bytes of in and out charged to the memory cap (cfg->mem_charge);
	 * no_mem: a buffer was refused. */
	size_t charged;
	int no_mem;
	/* Lifecycle: queued/running hold a reference (c->nworking). An
	 * abandoned stream (answered 504, or cut at stop) that still holds one
	 * is counted in c->nabandoned (ab_counted). */
	int queued, running, closed, reset, dispatched, canned, abandoned, handler_done;
	int ab_counted;
	struct h2w *w; /* the worker running its handler (threads only) */
	char *cookie; /* the Cookie crumbs joined (RFC 9113 §8.2.3) */
	int64_t handler_since;
	/* Response. */
	struct mse_exchange x;
	int started, finished, failed, deferred, head_only, status;
	int64_t resp_cl;
	uint64_t body_out;
	uint8_t *out;
	size_t out_off, out_len, out_cap;
};

struct h2c {
	struct mse_h2 *h;
	int fd;
	SSL *ssl;
	struct mse_conn_info info;
	void (*release)(void *cookie);
	void *cookie;
	pthread_mutex_t lock;
	pthread_cond_t cv; /* a stream's body arrived or its output drained */
	nghttp2_session *sess;
	struct h2s *streams;
	size_t head_bytes;
	size_t in_buffered; /* body bytes of all its streams not read yet */
	int nworking; /* streams queued or in a handler */
	int nabandoned; /* of those, abandoned: they do not keep the socket */
	int released;   /* release() was called: fd and ssl are the server's again */
	int dead;     /* I/O over: every op fails */
	int fatal;    /* nghttp2 returned a fatal error: only delete the session */
	int flooded, goaway, rdone;
	int in_dirty;
	struct h2c *dnext;      /* h->dirty */
	struct h2c *prev, *next; /* h->conns */
	/* Loop thread only. */
	uint8_t *pre;
	size_t pre_len;
	uint8_t *wbuf;
	size_t wlen, woff, wcap;
	int want_out, armed_out, requests;
	int64_t created, last_active, hdr_since;
	int64_t tokens, tokens_t; /* flood bucket, in thousandths of a frame */
	/* In-memory mode. */
	void (*out_cb)(const uint8_t *p, size_t n, void *arg);
	void *out_arg;
	long out_total;
};

struct h2w {
	struct mse_h2 *h;
	pthread_t tid;
	pid_t ktid; /* its kernel thread id (net/pool.h: the classifier reads it) */
	int used;   /* a thread was started in it and not joined/detached */
	int exited; /* its thread is ending: join it */
	int stuck;  /* its handler passed request_timeout_ms */
	int busy;   /* in stream_run */
	atomic_int waiting; /* its handler said it waits (exchange.h: waiting) */
};

struct mse_h2 {
	const struct mse_server_config *cfg;
	int threads;
	pthread_mutex_t lock;
	pthread_cond_t cv;   /* workers: a job or exit */
	pthread_cond_t gone; /* a connection was released */
	struct h2s *qhead, *qtail;
	struct h2c *dirty;
	struct h2c *conns;
	size_t nconns;
	int epfd, evfd;
	pthread_t loop_tid;
	/* Worker slots (maxw x 2: a retired worker holds its slot until
	 * joined). nworkers: started and not exiting, at most maxw (the
	 * server's threads-max rule); nstuck: of those, in a handler past
	 * request_timeout_ms; each is replaced while fewer than `threads`
	 * are free. left: handlers still running after the stop (detached).
	 * nidle: workers waiting for a job; qlen: streams queued. While the
	 * app is classified blocking (net/pool.h, as net/server.c does for
	 * HTTP/1.1), a stream queued with no idle worker gets a new one; a
	 * worker above `threads` idle for thread_idle_ms exits. */
	struct h2w *w;
	int nslots, maxw, nworkers, nstuck, left, nidle;
	size_t qlen;
	size_t stack_size;
	int idle_ms;
	struct mse_pool_class cls;
	size_t nlive; /* adopted connections not released yet */
	int started, exiting, cut;
	atomic_int stopping;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
};

static void grow_locked(struct mse_h2 *h);

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wake_loop(struct mse_h2 *h)
{
	uint64_t one = 1;
	ssize_t r;

	if (h->evfd >= 0) {
		r = write(h->evfd, &one, sizeof(one));
		(void)r;
	}
}

/* Set on the loop thread: it drains h->dirty before it sleeps again. */
static _Thread_local int tl_h2_loop;
/* A wake-up of this engine's loop that mark_dirty owes, sent by conn_unlock
 * once c->lock is released: sent under it, the loop would wake only to
 * block on c->lock (two more context switches). */
static _Thread_local struct mse_h2 *tl_wake;

/*
 * Caller holds c->lock: the loop must send for c. The loop is woken only
 * when the list was empty: it drains the whole list after every wake-up,
 * so a connection added to a non-empty one is served by the wake-up that
 * is already on its way (one eventfd write per loop turn, not one per
 * exchange op).
 */
static void mark_dirty(struct h2c *c)
{
	struct mse_h2 *h = c->h;
	int wake = 0;

	pthread_mutex_lock(&h->lock);
	if (!c->in_dirty) {
		wake = !h->dirty && !tl_h2_loop;
		c->in_dirty = 1;
		c->dnext = h->dirty;
		h->dirty = c;
	}
	pthread_mutex_unlock(&h->lock);
	if (wake)
		tl_wake = h;
}

/* Releases c->lock, then wakes the loop if mark_dirty said so. */
static void conn_unlock(struct h2c *c)
{
	struct mse_h2 *h = tl_wake;

	pthread_mutex_unlock(&c->lock);
	if (h) {
		tl_wake = NULL;
		wake_loop(h);
	}
}

static int below_rate(const struct mse_server_config *cfg, uint64_t bytes, int64_t elapsed_ms)
{
	return cfg->min_rate && elapsed_ms > cfg->min_rate_grace_ms &&
	       bytes * 1000 < cfg->min_rate * (uint64_t)elapsed_ms;
}

/* ---- streams ------------------------------------------------------------ */

/* Charges n more bytes of st's buffers to the memory cap: 0, or -1 refused. */
static int mem_take(struct h2s *st, size_t n)
{
	const struct mse_server_config *cfg = st->c->h->cfg;

	if (n && cfg->mem_charge && cfg->mem_charge(n, cfg->user) != 0) {
		static _Atomic int64_t last_warn;
		int64_t t = now_ms();

		if (t - atomic_load(&last_warn) >= 1000) {
			atomic_store(&last_warn, t);
			mse_warn("%s:%u: HTTP/2 stream %d: %zu more buffer bytes would go over the "
				 "memory cap: refused",
				 st->c->info.remote_addr, st->c->info.remote_port, st->id, n);
		}
		st->no_mem = 1;
		return -1;
	}
	st->charged += n;
	return 0;
}

/* Gives back n of what st charged. */
static void mem_give(struct h2s *st, size_t n)
{
	const struct mse_server_config *cfg = st->c->h->cfg;

	if (n > st->charged)
		n = st->charged;
	st->charged -= n;
	if (n && cfg->mem_uncharge)
		cfg->mem_uncharge(n, cfg->user);
}

static void stream_free(struct h2s *st)
{
	struct h2c *c = st->c;
	int wipe = c->h->cfg->wipe_buffers;

	if (st->prev)
		st->prev->next = st->next;
	else if (c->streams == st)
		c->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	c->head_bytes -= st->acap;
	c->in_buffered -= st->in_len;
	if (wipe) {
		if (st->arena)
			OPENSSL_cleanse(st->arena, st->acap);
		if (st->in)
			OPENSSL_cleanse(st->in, st->in_cap);
	}
	free(st->arena);
	free(st->hv);
	free(st->hdrs);
	free(st->cookie);
	free(st->in);
	free(st->out);
	mem_give(st, st->charged);
	free(st);
}

/* Appends name\0value\0 to the arena; -1 over the limits. */
static int stream_add_header(struct h2s *st, const uint8_t *name, size_t nl, const uint8_t *value,
			     size_t vl)
{
	const struct mse_server_config *cfg = st->c->h->cfg;
	size_t need = st->alen + nl + vl + 2;

	if (need > cfg->max_head_bytes || st->nh >= cfg->max_headers + 4)
		return -1;
	if (need > st->acap) {
		size_t cap = st->acap ? st->acap : 512;
		size_t conn_max = cfg->max_head_bytes * H2_CONN_HEAD_FACTOR;
		char *p;

		while (cap < need)
			cap *= 2;
		if (cap > cfg->max_head_bytes)
			cap = cfg->max_head_bytes;
		if (st->c->head_bytes - st->acap + cap > conn_max)
			return -1;
		if (!(p = malloc(cap)))
			return -1;
		if (st->alen)
			memcpy(p, st->arena, st->alen);
		if (st->arena && cfg->wipe_buffers)
			OPENSSL_cleanse(st->arena, st->acap);
		free(st->arena);
		st->c->head_bytes += cap - st->acap;
		st->arena = p;
		st->acap = cap;
	}
	if (st->nh == st->hcap) {
		size_t cap = st->hcap ? st->hcap * 2 : 16;
		struct h2hdr *p = realloc(st->hv, cap * sizeof(*p));

		if (!p)
			return -1;
		st->hv = p;
		st->hcap = cap;
	}
	st->hv[st->nh] = (struct h2hdr){st->alen, nl, st->alen + nl + 1, vl};
	memcpy(st->arena + st->alen, name, nl);
	st->arena[st->alen + nl] = 0;
	memcpy(st->arena + st->alen + nl + 1, value, vl);
	st->arena[st->alen + nl + 1 + vl] = 0;
	st->alen = need;
	st->nh++;
	return 0;
}

static int name_is(const struct h2s *st, size_t i, const char *n)
{
	size_t l = strlen(n);

	return st->hv[i].name_len == l && memcmp(st->arena + st->hv[i].name, n, l) == 0;
}

/*
 * The header block is complete: the exchange's request (RFC 9113 §8.3.1
 * pseudo-headers to method/target, :authority to a Host field when none
 * was sent, cookie fields joined with "; " as §8.2.3 asks). 0, or an HTTP
 * status to answer instead.
 */
static int stream_build_request(struct h2s *st)
{
	struct mse_http_request *q = &st->req;
	const struct mse_server_config *cfg = st->c->h->cfg;
	size_t n = 0, cookies = 0, cookie_len = 0;

	if (st->hdr_status)
		return st->hdr_status;
	if (st->m < 0 || st->p < 0)
		return 400;
	if (!(st->hdrs = calloc(st->nh + 1, sizeof(*st->hdrs))))
		return 500;
	memset(q, 0, sizeof(*q));
	q->method = st->arena + st->hv[st->m].value;
	q->method_len = st->hv[st->m].value_len;
	q->target = st->arena + st->hv[st->p].value;
	q->target_len = st->hv[st->p].value_len;
	q->path = q->target;
	q->path_len = q->target_len;
	q->query = "";
	{
		const char *qm = memchr(q->target, '?', q->target_len);

		if (qm) {
			q->path_len = (size_t)(qm - q->target);
			q->query = qm + 1;
			q->query_len = q->target_len - q->path_len - 1;
		}
	}
	q->minor_version = 1;
	q->http2 = 1;
	q->content_length = -1;
	q->keep_alive = 1;
	for (size_t i = 0; i < st->nh; i++) {
		const char *nm = st->arena + st->hv[i].name;

		if (nm[0] == ':')
			continue;
		if (name_is(st, i, "cookie")) {
			cookies++;
			cookie_len += st->hv[i].value_len + 2;
			if (cookies > 1)
				continue;
		}
		if (name_is(st, i, "content-length")) {
			int64_t cl;

			if (mse_http_parse_length(st->arena + st->hv[i].value, st->hv[i].value_len,
						  &cl) != 0)
				return 400;
			q->content_length = cl;
		}
		st->hdrs[n++] = (struct mse_http_header){nm, st->hv[i].name_len,
							 st->arena + st->hv[i].value,
							 st->hv[i].value_len};
	}
	if (cookies > 1) {
		/* One Cookie field, its crumbs joined in order. */
		char *j;
		size_t o = 0;

		if (!(j = st->cookie = malloc(cookie_len)))
			return 500;
		for (size_t i = 0; i < st->nh; i++) {
			if (!name_is(st, i, "cookie"))
				continue;
			if (o) {
				j[o++] = ';';
				j[o++] = ' ';
			}
			memcpy(j + o, st->arena + st->hv[i].value, st->hv[i].value_len);
			o += st->hv[i].value_len;
		}
		for (size_t k = 0; k < n; k++)
			if (st->hdrs[k].name_len == 6 && memcmp(st->hdrs[k].name, "cookie", 6) == 0) {
				st->hdrs[k].value = j;
				st->hdrs[k].value_len = o;
			}
	}
	if (!st->have_host && st->a >= 0)
		st->hdrs[n++] = (struct mse_http_header){"host", 4, st->arena + st->hv[st->a].value,
							 st->hv[st->a].value_len};
	q->headers = st->hdrs;
	q->num_headers = n;
	if (q->method_len == 7 && memcmp(q->method, "CONNECT", 7) == 0)
		return 501;
	if (cfg->max_body && q->content_length > 0 && (uint64_t)q->content_length > cfg->max_body)
		return 413;
	if (cfg->head_check) {
		int s = cfg->head_check(q, cfg->user);

		if (s)
			return s >= 400 && s <= 599 ? s : 400;
	}
	return 0;
}

/* ---- responses (caller holds c->lock) ------------------------------------- */

static ssize_t data_read_cb(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t length,
			    uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2s *st = src->ptr;
	size_t k = st->out_len < length ? st->out_len : length;

	(void)sess;
	(void)id;
	(void)ud;
	if (k) {
		memcpy(buf, st->out + st->out_off, k);
		st->out_off += k;
		st->out_len -= k;
		if (st->out_len == 0)
			st->out_off = 0;
		pthread_cond_broadcast(&st->c->cv);
	}
	if (st->out_len == 0) {
		if (st->finished) {
			*flags |= NGHTTP2_DATA_FLAG_EOF;
			return (ssize_t)k;
		}
		if (k == 0) {
			st->deferred = 1;
			return NGHTTP2_ERR_DEFERRED;
		}
	}
	return (ssize_t)k;
}

/* Counts the status (the same counters as HTTP/1.1's); one Common Log
 * Format line when logging. */
static void access_log(struct h2s *st)
{
	FILE *f = st->c->h->cfg->access_log;

	mse_metrics_status(st->status);
	if (f)
		mse_http_log_line(f, st->c->info.remote_addr, st->req.method ? &st->req : NULL,
				  "HTTP/2.0", st->status, st->head_only ? 0 : st->body_out);
}

static int is_hop_by_hop(const char *n, size_t l)
{
	static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
					  "transfer-encoding", "upgrade"};

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (strlen(hop[i]) == l && strncasecmp(hop[i], n, l) == 0)
			return 1;
	return 0;
}

/*
 * Submits the response head (RFC 9113 §8.3.2: :status, lower-case names,
 * no connection-specific fields). Caller holds c->lock and validated the
 * headers. body: 1 to follow with DATA from st->out.
 */
static int submit_head(struct h2s *st, int status, const struct mse_http_header *headers,
		       size_t num, int body)
{
	const struct mse_server_config *cfg = st->c->h->cfg;
	nghttp2_nv *nva;
	char *names, code[8], date[32];
	size_t nn = 0, total = 0, o = 0;
	int have_date = 0, have_server = 0, rv;
	nghttp2_data_provider prd = {.source.ptr = st, .read_callback = data_read_cb};

	for (size_t i = 0; i < num; i++)
		total += headers[i].name_len;
	nva = calloc(num + 3, sizeof(*nva));
	names = malloc(total + 1);
	if (!nva || !names) {
		free(nva);
		free(names);
		return -1;
	}
	snprintf(code, sizeof(code), "%d", status);
	nva[nn++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)code, 7, strlen(code), 0};
	for (size_t i = 0; i < num; i++) {
		const struct mse_http_header *hd = &headers[i];

		if (is_hop_by_hop(hd->name, hd->name_len))
			continue;
		for (size_t k = 0; k < hd->name_len; k++) {
			char ch = hd->name[k];

			names[o + k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
		}
		have_date |= hd->name_len == 4 && memcmp(names + o, "date", 4) == 0;
		have_server |= hd->name_len == 6 && memcmp(names + o, "server", 6) == 0;
		nva[nn++] = (nghttp2_nv){(uint8_t *)names + o, (uint8_t *)hd->value, hd->name_len,
					 hd->value_len, 0};
		o += hd->name_len;
	}
	if (!have_date) {
		mse_http_date(date);
		nva[nn++] = (nghttp2_nv){(uint8_t *)"date", (uint8_t *)date, 4, strlen(date), 0};
	}
	if (!have_server)
		nva[nn++] = (nghttp2_nv){(uint8_t *)"server", (uint8_t *)cfg->server_name, 6,
					 strlen(cfg->server_name), 0};
	/* nghttp2 copies the fields. */
	rv = nghttp2_submit_response(st->c->sess, st->id, nva, nn, body ? &prd : NULL);
	free(nva);
	free(names);
	st->status = status;
	if (rv != 0)
		return -1;
	mark_dirty(st->c);
	return 0;
}

/* Answers a request the server refuses itself (no handler). Caller holds c->lock. */
static void submit_canned(struct h2s *st, int status)
{
	char body[64], len[16];
	int n;
	struct mse_http_header hs[2] = {{"content-type", 12, "text/plain; charset=utf-8", 25},
					{"content-length", 14, len, 0}};

	if (st->started || st->closed || st->c->dead)
		return;
	n = snprintf(body, sizeof(body), "%d %s\n", status, mse_http_reason(status));
	hs[1].value_len = (size_t)snprintf(len, sizeof(len), "%d", n);
	/* Its own small buffer (never charged: bounded like a header). */
	if (!st->out && !(st->out = malloc(sizeof(body))))
		return;
	st->out_cap = sizeof(body);
	st->head_only = st->req.method_len == 4 && memcmp(st->req.method, "HEAD", 4) == 0;
	if (!st->head_only) {
		memcpy(st->out, body, (size_t)n);
		st->out_off = 0;
		st->out_len = (size_t)n;
		st->body_out = (uint64_t)n;
	}
	st->started = st->finished = st->canned = 1;
	mse_debug("%s:%u: HTTP/2 stream %d: answering %d", st->c->info.remote_addr,
		  st->c->info.remote_port, st->id, status);
	if (submit_head(st, status, hs, 2, !st->head_only) != 0)
		nghttp2_submit_rst_stream(st->c->sess, NGHTTP2_FLAG_NONE, st->id,
					  NGHTTP2_INTERNAL_ERROR);
	access_log(st);
}

/* ---- the exchange ops (worker threads) ----------------------------------- */

static int timed_wait(struct h2c *c, int64_t deadline)
{
	int64_t left = deadline - now_ms();

	if (left <= 0)
		return -1;
	if (tl_wake) {
		/* What this thread marked must go out while it waits. */
		wake_loop(tl_wake);
		tl_wake = NULL;
	}
	mse_pool_cond_wait_ms(&c->cv, &c->lock, left);
	return 0;
}

static int stream_usable(const struct h2s *st)
{
	return !st->closed && !st->c->dead && !st->abandoned;
}

static ssize_t h2_read_body(struct mse_exchange *x, void *buf, size_t n)
{
	struct h2s *st = x->impl;
	struct h2c *c = st->c;
	const struct mse_server_config *cfg = c->h->cfg;
	int64_t deadline = now_ms() + cfg->read_timeout_ms;
	ssize_t r = -1;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (st->abandoned)
			break;
		if (st->in_len && n) {
			size_t k = n < st->in_len ? n : st->in_len;

			memcpy(buf, st->in + st->in_off, k);
			st->in_off += k;
			st->in_len -= k;
			c->in_buffered -= k;
			if (st->in_len == 0)
				st->in_off = 0;
			if (stream_usable(st)) {
				/* Reopens the windows by what the app took (RFC 9113 §5.2). */
				nghttp2_session_consume(c->sess, st->id, k);
				mark_dirty(c);
			}
			r = (ssize_t)k;
			break;
		}
		if (st->too_large || st->body_timeout || st->body_error || st->no_mem) {
			st->body_error = 1;
			break;
		}
		if (st->in_eof || n == 0) {
			r = 0;
			break;
		}
		if (!stream_usable(st) || !c->h->threads) {
			st->body_error = 1;
			break;
		}
		if (timed_wait(c, deadline) != 0) {
			mse_debug("%s:%u: HTTP/2 stream %d: request body read timed out",
				  c->info.remote_addr, c->info.remote_port, st->id);
			st->body_timeout = st->body_error = 1;
			break;
		}
	}
	conn_unlock(c);
	return r;
}

static int h2_start(struct mse_exchange *x, int status, const char *reason,
		    const struct mse_http_header *headers, size_t num)
{
	struct h2s *st = x->impl;
	struct h2c *c = st->c;
	int64_t cl = -1;
	int body, rc = -1;

	(void)reason; /* HTTP/2 has no reason phrase (RFC 9113 §8.3.2) */
	if (status < 200 || status > 999)
		return -1;
	for (size_t i = 0; i < num; i++) {
		const struct mse_http_header *hd = &headers[i];

		if (!mse_http_valid_token(hd->name, hd->name_len) ||
		    !mse_http_valid_field_value(hd->value, hd->value_len))
			return -1;
		if (hd->name_len == 14 && strncasecmp(hd->name, "content-length", 14) == 0) {
			if (cl >= 0 || mse_http_parse_length(hd->value, hd->value_len, &cl) != 0)
				return -1;
		} else if (hd->name_len == 17 && strncasecmp(hd->name, "transfer-encoding", 17) == 0) {
			return -1;
		}
	}
	pthread_mutex_lock(&c->lock);
	if (x->started || st->failed || st->body_error || !stream_usable(st))
		goto out;
	st->head_only = st->req.method_len == 4 && memcmp(st->req.method, "HEAD", 4) == 0;
	body = !st->head_only && status != 204 && status != 304;
	st->resp_cl = body ? cl : -1;
	if (body && mem_take(st, H2_OUT_BUF) != 0) {
		/* Over the memory cap: nothing was sent yet, so the client gets
		 * its answer and the handler an error. */
		submit_canned(st, 503);
		goto out;
	}
	if (body && !(st->out = malloc(H2_OUT_BUF)))
		goto out;
	st->out_cap = body ? H2_OUT_BUF : 0;
	if (submit_head(st, status, headers, num, body) != 0) {
		st->failed = 1;
		goto out;
	}
	st->started = 1;
	x->started = 1;
	if (!body)
		st->finished = 1;
	rc = 0;
out:
	conn_unlock(c);
	return rc;
}

static void stream_fail_locked(struct h2s *st)
{
	st->failed = 1;
	if (stream_usable(st)) {
		nghttp2_submit_rst_stream(st->c->sess, NGHTTP2_FLAG_NONE, st->id,
					  NGHTTP2_INTERNAL_ERROR);
		mark_dirty(st->c);
	}
}

static int h2_write(struct mse_exchange *x, const void *data, size_t n)
{
	struct h2s *st = x->impl;
	struct h2c *c = st->c;
	const struct mse_server_config *cfg = c->h->cfg;
	const uint8_t *p = data;
	int64_t deadline = 0;
	int rc = 0;

	if (!x->started)
		return -1;
	pthread_mutex_lock(&c->lock);
	if (st->finished && !st->head_only && st->out_cap) {
		rc = -1;
		goto out;
	}
	x->body_sent += n;
	if (!st->out_cap || n == 0)
		goto out; /* HEAD, 204, 304: the body is not sent */
	if (st->resp_cl >= 0 && st->body_out + n > (uint64_t)st->resp_cl) {
		mse_error("handler wrote more than its Content-Length (%lld)", (long long)st->resp_cl);
		stream_fail_locked(st);
		rc = -1;
		goto out;
	}
	while (n > 0) {
		size_t room, k;

		if (st->failed || !stream_usable(st)) {
			rc = -1;
			break;
		}
		if (st->out_off && st->out_off + st->out_len == st->out_cap) {
			memmove(st->out, st->out + st->out_off, st->out_len);
			st->out_off = 0;
		}
		room = st->out_cap - st->out_off - st->out_len;
		if (room == 0 && !c->h->threads) {
			/* In-memory mode: nobody drains concurrently; grow. */
			uint8_t *q = NULL;

			if (mem_take(st, st->out_cap) == 0 && !(q = realloc(st->out, st->out_cap * 2)))
				mem_give(st, st->out_cap);
			if (!q) {
				stream_fail_locked(st);
				rc = -1;
				break;
			}
			st->out = q;
			st->out_cap *= 2;
			continue;
		}
		if (room == 0) {
			if (!deadline)
				deadline = now_ms() + cfg->write_timeout_ms;
			if (st->deferred) {
				st->deferred = 0;
				nghttp2_session_resume_data(c->sess, st->id);
				mark_dirty(c);
				continue;
			}
			if (timed_wait(c, deadline) != 0) {
				mse_debug("%s:%u: HTTP/2 stream %d: response write timed out",
					  c->info.remote_addr, c->info.remote_port, st->id);
				stream_fail_locked(st);
				rc = -1;
				break;
			}
			continue;
		}
		k = n < room ? n : room;
		memcpy(st->out + st->out_off + st->out_len, p, k);
		deadline = 0;
		st->out_len += k;
		st->body_out += k;
		p += k;
		n -= k;
		if (st->deferred) {
			st->deferred = 0;
			nghttp2_session_resume_data(c->sess, st->id);
		}
		mark_dirty(c);
	}
out:
	conn_unlock(c);
	return rc;
}

static int finish_locked(struct h2s *st)
{
	struct h2c *c = st->c;
	int rc = 0;

	if (st->finished && st->out_cap) {
		rc = -1;
	} else if (st->out_cap) {
		st->finished = 1;
		if (st->resp_cl >= 0 && st->body_out < (uint64_t)st->resp_cl) {
			mse_error("handler wrote %llu bytes of its Content-Length %lld",
				  (unsigned long long)st->body_out, (long long)st->resp_cl);
			stream_fail_locked(st);
			rc = -1;
		} else if (st->failed || !stream_usable(st)) {
			rc = -1;
		} else {
			if (st->deferred) {
				st->deferred = 0;
				nghttp2_session_resume_data(c->sess, st->id);
			}
			mark_dirty(c);
		}
	}
	return rc;
}

static int h2_finish(struct mse_exchange *x)
{
	struct h2s *st = x->impl;
	int rc;

	if (!x->started)
		return -1;
	pthread_mutex_lock(&st->c->lock);
	rc = finish_locked(st);
	conn_unlock(st->c);
	return rc;
}

static int h2_peer_gone(struct mse_exchange *x)
{
	struct h2s *st = x->impl;
	int gone;

	pthread_mutex_lock(&st->c->lock);
	gone = !stream_usable(st) || st->failed;
	conn_unlock(st->c);
	return gone;
}

/* The handler's thread waits on another thread's work (the ASGI bridge on
 * its event loop): the classifier counts it blocked (net/pool.h). */
static void h2_waiting(struct mse_exchange *x, int on)
{
	struct h2s *st = x->impl;

	/* st->w is this thread's own slot (stream_run set it), NULL in memory mode. */
	if (st->w)
		atomic_store_explicit(&st->w->waiting, on, memory_order_relaxed);
}

static const struct mse_exchange_ops g_h2_ops = {
	.read_body = h2_read_body,
	.start = h2_start,
	.write = h2_write,
	.finish = h2_finish,
	.upgrade = NULL, /* no WebSocket over HTTP/2 (RFC 8441 not offered) */
	.peer_gone = h2_peer_gone,
	.waiting = h2_waiting,
};

/* Caller holds c->lock: st is given up on (its handler may run on); it no
 * longer keeps the connection's socket (see conn_end). */
static void stream_abandon_locked(struct h2s *st)
{
	if (st->abandoned)
		return;
	st->abandoned = 1;
	if (st->queued || st->running) {
		st->ab_counted = 1;
		st->c->nabandoned++;
	}
	pthread_cond_broadcast(&st->c->cv);
}

/* Runs one stream's handler on the calling thread (worker self, or NULL in
 * memory mode); drops its reference. */
static void stream_run(struct h2s *st, struct h2w *self)
{
	struct h2c *c = st->c;
	struct mse_h2 *h = c->h;
	const struct mse_server_config *cfg = h->cfg;
	int run;

	/* st stays queued (so never freed under us) until the end. */
	pthread_mutex_lock(&c->lock);
	/* A stream reset while queued (rapid reset) costs nothing more. */
	run = stream_usable(st) && !st->canned;
	if (run) {
		st->running = 1;
		st->w = self;
		st->handler_since = now_ms();
		if (!st->in_eof) {
			/* Its turn: a wider window for the body the handler reads. */
			nghttp2_session_set_local_window_size(c->sess, NGHTTP2_FLAG_NONE, st->id,
							      H2_RUN_WINDOW);
			mark_dirty(c);
		}
	}
	conn_unlock(c);
	if (run) {
		st->x.ops = &g_h2_ops;
		st->x.req = &st->req;
		st->x.conn = &c->info;
		st->x.impl = st;
		{
			int64_t t0 = mse_metrics_req_begin();

			(void)cfg->handler(&st->x, cfg->user);
			mse_metrics_req_end(t0);
		}
		pthread_mutex_lock(&c->lock);
		if (!st->abandoned && !st->started && !st->failed && stream_usable(st)) {
			int status = st->too_large      ? 413
				     : st->no_mem       ? 503
				     : st->body_timeout ? 408
				     : st->body_error   ? 400
							: 500;

			if (status == 500)
				mse_error("handler returned without a response for %.*s %.*s",
					  (int)st->req.method_len, st->req.method,
					  (int)(st->req.target_len > 200 ? 200 : st->req.target_len),
					  st->req.target);
			submit_canned(st, status);
		} else if (!st->abandoned && st->started && !st->finished) {
			(void)finish_locked(st);
		}
		if (!st->canned && !st->abandoned)
			access_log(st);
		/* A body the app left unread is discarded as it comes, its
		 * window reopened: the response may still be on its way, so
		 * the stream is not reset. */
		st->handler_done = 1;
		if (st->in_len && stream_usable(st))
			nghttp2_session_consume(c->sess, st->id, st->in_len);
		c->in_buffered -= st->in_len;
		st->in_len = st->in_off = 0;
		/* The body buffer is done with: its memory (and charge) goes now. */
		if (st->in) {
			if (cfg->wipe_buffers)
				OPENSSL_cleanse(st->in, st->in_cap);
			free(st->in);
			st->in = NULL;
			mem_give(st, st->in_cap);
			st->in_cap = 0;
		}
	} else {
		pthread_mutex_lock(&c->lock);
	}
	/* (c->lock held on both paths: the reference goes in the same hold.) */
	st->queued = st->running = 0;
	st->w = NULL;
	c->nworking--;
	if (st->ab_counted) {
		st->ab_counted = 0;
		c->nabandoned--;
	}
	if (self) {
		pthread_mutex_lock(&h->lock);
		if (self->stuck) {
			self->stuck = 0;
			h->nstuck--;
		}
		pthread_mutex_unlock(&h->lock);
	}
	if (st->closed)
		stream_free(st);
	mark_dirty(c);
	conn_unlock(c);
}

/* Caller holds c->lock: the stream goes to the workers (or runs now, in memory mode). */
static void stream_dispatch(struct h2s *st)
{
	struct h2c *c = st->c;
	struct mse_h2 *h = c->h;

	if (st->dispatched)
		return;
	st->dispatched = 1;
	st->queued = 1;
	c->nworking++;
	c->requests++;
	pthread_mutex_lock(&h->lock);
	st->qnext = NULL;
	if (h->qtail)
		h->qtail->qnext = st;
	else
		h->qhead = st;
	h->qtail = st;
	h->qlen++;
	pthread_cond_signal(&h->cv);
	if (h->threads)
		grow_locked(h);
	pthread_mutex_unlock(&h->lock);
}

/* ---- nghttp2 callbacks (caller holds c->lock) ------------------------------ */

/* 1 if the connection is out of control-frame tokens (a flood). */
static int flood_take(struct h2c *c, const char *what)
{
	int64_t t = now_ms();

	c->tokens += (t - c->tokens_t) * H2_FLOOD_RATE;
	c->tokens_t = t;
	if (c->tokens > (int64_t)H2_FLOOD_BURST * 1000)
		c->tokens = (int64_t)H2_FLOOD_BURST * 1000;
	c->tokens -= 1000;
	if (c->tokens >= 0)
		return 0;
	if (!c->flooded) {
		c->flooded = 1;
		mse_warn("%s:%u: HTTP/2 %s flood: connection closed (GOAWAY ENHANCE_YOUR_CALM)",
			 c->info.remote_addr, c->info.remote_port, what);
		nghttp2_session_terminate_session(c->sess, NGHTTP2_ENHANCE_YOUR_CALM);
	}
	return 1;
}

static int on_begin_frame(nghttp2_session *sess, const nghttp2_frame_hd *hd, void *ud)
{
	struct h2c *c = ud;
	const char *what = NULL;

	(void)sess;
	switch (hd->type) {
	case NGHTTP2_PING:
		what = hd->flags & NGHTTP2_FLAG_ACK ? NULL : "PING";
		break;
	case NGHTTP2_SETTINGS:
		what = hd->flags & NGHTTP2_FLAG_ACK ? NULL : "SETTINGS";
		break;
	case NGHTTP2_RST_STREAM:
		what = "RST_STREAM (rapid reset)";
		break;
	case NGHTTP2_PRIORITY:
		what = "PRIORITY";
		break;
	case NGHTTP2_CONTINUATION:
		what = "CONTINUATION";
		break;
	case NGHTTP2_DATA:
	case NGHTTP2_HEADERS:
		if (hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM))
			what = "empty frame";
		break;
	default:
		break;
	}
	if (c->flooded)
		return 0;
	if (what)
		(void)flood_take(c, what);
	return 0;
}

static int on_begin_headers(nghttp2_session *sess, const nghttp2_frame *f, void *ud)
{
	struct h2c *c = ud;
	struct h2s *st;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (c->flooded || !(st = calloc(1, sizeof(*st))))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->c = c;
	st->id = f->hd.stream_id;
	st->m = st->p = st->a = -1;
	st->resp_cl = -1;
	st->next = c->streams;
	if (c->streams)
		c->streams->prev = st;
	c->streams = st;
	c->hdr_since = now_ms();
	nghttp2_session_set_stream_user_data(sess, st->id, st);
	return 0;
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *f, const uint8_t *name,
		     size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	struct h2s *st;

	(void)flags;
	(void)ud;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* trailers: not passed on */
	st = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
	if (!st || st->hdr_status)
		return 0;
	if (stream_add_header(st, name, nl, value, vl) != 0) {
		/* Over max_head_bytes or max_headers (nghttp2 still decodes the
		 * rest of the block: HPACK state must stay in step). */
		st->hdr_status = 431;
		return 0;
	}
	if (nl == 7 && memcmp(name, ":method", 7) == 0)
		st->m = (long)st->nh - 1;
	else if (nl == 5 && memcmp(name, ":path", 5) == 0)
		st->p = (long)st->nh - 1;
	else if (nl == 10 && memcmp(name, ":authority", 10) == 0)
		st->a = (long)st->nh - 1;
	else if (nl == 4 && memcmp(name, "host", 4) == 0)
		st->have_host = 1;
	return 0;
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *f, void *ud)
{
	struct h2c *c = ud;
	struct h2s *st;
	int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	c->last_active = now_ms();
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	st = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);
	if (!st)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		int status;

		c->hdr_since = 0;
		st->hdr_done = 1;
		status = stream_build_request(st);
		if (status) {
			submit_canned(st, status);
			return 0;
		}
		st->body_start = st->rate_tick = c->last_active;
		if (end) {
			st->in_eof = 1;
			stream_dispatch(st);
		} else if (st->req.content_length < 0 ||
			   st->req.content_length > H2_STREAM_WINDOW) {
			/* Will not fit the window: streamed to the handler. */
			stream_dispatch(st);
		}
		return 0;
	}
	if (end && st->hdr_done && !st->canned) {
		st->in_eof = 1;
		stream_dispatch(st);
		pthread_cond_broadcast(&c->cv);
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *ud)
{
	struct h2c *c = ud;
	struct h2s *st = nghttp2_session_get_stream_user_data(sess, id);
	const struct mse_server_config *cfg = c->h->cfg;

	(void)flags;
	if (!st || st->canned || st->abandoned || st->too_large || st->no_mem || !st->hdr_done ||
	    st->handler_done) {
		nghttp2_session_consume(sess, id, len);
		return 0;
	}
	st->in_total += len;
	if (cfg->max_body && st->in_total > cfg->max_body) {
		st->too_large = 1;
		nghttp2_session_consume(sess, id, len);
		if (!st->dispatched)
			submit_canned(st, 413);
		pthread_cond_broadcast(&c->cv);
		return 0;
	}
	if (st->in_off + st->in_len + len > st->in_cap) {
		size_t cap = st->in_cap ? st->in_cap : 16384;
		uint8_t *p;

		if (st->in_off) {
			memmove(st->in, st->in + st->in_off, st->in_len);
			st->in_off = 0;
		}
		while (cap < st->in_len + len)
			cap *= 2;
		if (cap > st->in_cap) {
			if (mem_take(st, cap - st->in_cap) != 0) {
				/* Over the memory cap: this body goes no further. */
				nghttp2_session_consume(sess, id, len);
				if (!st->dispatched)
					submit_canned(st, 503);
				pthread_cond_broadcast(&c->cv);
				return 0;
			}
			if (!(p = malloc(cap)))
				return NGHTTP2_ERR_CALLBACK_FAILURE;
			if (st->in_len)
				memcpy(p, st->in, st->in_len);
			if (st->in && cfg->wipe_buffers)
				OPENSSL_cleanse(st->in, st->in_cap);
			free(st->in);
			st->in = p;
			st->in_cap = cap;
		}
	}
	memcpy(st->in + st->in_off + st->in_len, data, len);
	st->in_len += len;
	c->in_buffered += len;
	pthread_cond_broadcast(&c->cv);
	return 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t id, uint32_t code, void *ud)
{
	struct h2c *c = ud;
	struct h2s *st = nghttp2_session_get_stream_user_data(sess, id);

	if (!st)
		return 0;
	st->closed = 1;
	if (code != NGHTTP2_NO_ERROR) {
		st->reset = 1;
		mse_debug("%s:%u: HTTP/2 stream %d reset (error %u)%s", c->info.remote_addr,
			  c->info.remote_port, id, code,
			  st->running ? " while its handler runs" : "");
	}
	/* Unread body bytes go back to the connection window. */
	if (st->in_len)
		nghttp2_session_consume_connection(sess, st->in_len);
	pthread_cond_broadcast(&c->cv);
	if (!st->queued && !st->running)
		stream_free(st);
	return 0;
}

/* ---- connections (loop thread) -------------------------------------------- */

static int session_new(struct h2c *c)
{
	struct mse_h2 *h = c->h;
	const struct mse_server_config *cfg = h->cfg;
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
		 cfg->h2_max_streams ? cfg->h2_max_streams : H2_MAX_STREAMS_DEFAULT},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->max_head_bytes},
	};

	if (nghttp2_session_server_new2(&c->sess, h->cbs, c, h->opt) != 0)
		return -1;
	if (nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) !=
		    0 ||
	    nghttp2_session_set_local_window_size(c->sess, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) !=
		    0)
		return -1;
	c->tokens = (int64_t)H2_FLOOD_BURST * 1000;
	c->tokens_t = c->created = c->last_active = now_ms();
	return 0;
}

enum { IO_AGAIN = MSE_SSLIO_AGAIN, IO_ERR = MSE_SSLIO_ERR };

static ssize_t sock_read(struct h2c *c, void *buf, size_t n)
{
	int want_write = 0;
	ssize_t r = mse_sslio_read(c->fd, c->ssl, buf, n, &want_write);

	if (want_write)
		c->want_out = 1; /* TLS must send before it reads on */
	return r;
}

static ssize_t sock_write(struct h2c *c, const void *buf, size_t n)
{
	if (c->out_cb) {
		c->out_cb(buf, n, c->out_arg);
		c->out_total += (long)n;
		return (ssize_t)n;
	}
	return mse_sslio_write(c->fd, c->ssl, buf, n, NULL);
}

/* Writes what wbuf holds; 0 all written, 1 would block, -1 broken. */
static int flush_wbuf(struct h2c *c)
{
	while (c->woff < c->wlen) {
		ssize_t r = sock_write(c, c->wbuf + c->woff, c->wlen - c->woff);

		if (r == IO_AGAIN)
			return 1;
		if (r <= 0)
			return -1;
		c->woff += (size_t)r;
	}
	c->woff = c->wlen = 0;
	return 0;
}

/* Feeds bytes to the session (caller holds c->lock); -1 on a connection error. */
static int feed(struct h2c *c, const uint8_t *p, size_t n)
{
	ssize_t rv;

	if (c->flooded || c->rdone)
		return 0;
	rv = nghttp2_session_mem_recv(c->sess, p, n);
	if (rv < 0) {
		mse_debug("%s:%u: HTTP/2 connection error: %s", c->info.remote_addr,
			  c->info.remote_port, nghttp2_strerror((int)rv));
		if (rv == NGHTTP2_ERR_FLOODED && !c->flooded)
			mse_warn("%s:%u: HTTP/2 flood (frames the client does not read): connection "
				 "closed",
				 c->info.remote_addr, c->info.remote_port);
		c->rdone = c->fatal = 1;
		return -1;
	}
	if (c->flooded)
		c->rdone = 1; /* read no more: only the GOAWAY goes out */
	return 0;
}

/*
 * Caller holds c->lock, wbuf is empty: collects the session's frames into
 * wbuf, up to H2_WBATCH bytes (past it by at most one frame). 0, or -1 on
 * a session error or no memory.
 */
static int collect_locked(struct h2c *c)
{
	while (!c->dead && !c->fatal && c->wlen < H2_WBATCH) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->sess, &data);

		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (c->wlen + (size_t)n > c->wcap) {
			size_t cap = c->wcap ? c->wcap : 4096;
			uint8_t *p;

			while (cap < c->wlen + (size_t)n)
				cap *= 2;
			if (!(p = realloc(c->wbuf, cap)))
				return -1;
			c->wbuf = p;
			c->wcap = cap;
		}
		memcpy(c->wbuf + c->wlen, data, (size_t)n);
		c->wlen += (size_t)n;
	}
	return 0;
}

/*
 * Moves frames from the session to the socket until it would block or
 * nothing is left: the frames one turn produced (several streams' HEADERS
 * and DATA, SETTINGS and WINDOW_UPDATE acks) go out in one write (one TLS
 * record, one send) rather than one per frame. Returns -1 if the
 * connection is over (error, or the session wants neither to read nor to
 * write).
 */
static int pump(struct h2c *c)
{
	int fr;

	for (;;) {
		int rc;

		fr = flush_wbuf(c);
		if (fr < 0)
			return -1;
		if (fr > 0)
			return 0;
		pthread_mutex_lock(&c->lock);
		rc = collect_locked(c);
		pthread_cond_broadcast(&c->cv);
		conn_unlock(c);
		if (rc < 0)
			return -1;
		if (c->wlen == 0)
			break;
	}
	pthread_mutex_lock(&c->lock);
	fr = c->fatal || (!nghttp2_session_want_read(c->sess) &&
			  !nghttp2_session_want_write(c->sess) && c->nworking == c->nabandoned);
	if (c->rdone && (c->fatal || !nghttp2_session_want_write(c->sess)))
		fr = 1;
	conn_unlock(c);
	return fr ? -1 : 0;
}

/* Reads what the socket has and feeds it; -1 when the peer is gone. */
static int conn_read(struct h2c *c)
{
	uint8_t buf[H2_RBUF];

	if (c->pre_len) {
		int r;

		pthread_mutex_lock(&c->lock);
		r = feed(c, c->pre, c->pre_len);
		conn_unlock(c);
		free(c->pre);
		c->pre = NULL;
		c->pre_len = 0;
		if (r != 0)
			return -1;
	}
	for (int k = 0; k < H2_READS_PER_EVENT && !c->rdone; k++) {
		ssize_t n = sock_read(c, buf, sizeof(buf));
		int r;

		if (n == IO_AGAIN)
			return 0;
		if (n <= 0)
			return -1;
		pthread_mutex_lock(&c->lock);
		r = feed(c, buf, (size_t)n);
		conn_unlock(c);
		if (c->h->cfg->wipe_buffers)
			OPENSSL_cleanse(buf, (size_t)n);
		if (r != 0)
			return -1;
		/* Drained (nothing buffered in TLS, less than asked from TCP): no
		 * read that would only say EAGAIN; the socket is level-triggered,
		 * so bytes that arrive meanwhile bring the next event. */
		if (c->ssl ? !SSL_has_pending(c->ssl) : (size_t)n < sizeof(buf))
			return 0;
	}
	if (!c->rdone && c->ssl && SSL_has_pending(c->ssl)) {
		pthread_mutex_lock(&c->lock);
		mark_dirty(c); /* more to read: come back after the others */
		conn_unlock(c);
	}
	return 0;
}

static void conn_arm(struct h2c *c)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
	int out = c->woff < c->wlen || c->want_out;

	if (out == c->armed_out || c->fd < 0 || c->out_cb)
		return;
	if (out)
		ev.events |= EPOLLOUT;
	epoll_ctl(c->h->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->armed_out = out;
}

/* Gives fd and ssl back to the server (release), once. Loop thread (or the
 * joining thread once the loop is gone), c dead: nothing does I/O on it. */
static void conn_release(struct h2c *c)
{
	struct mse_h2 *h = c->h;

	if (c->released)
		return;
	c->released = 1;
	c->fd = -1;
	c->ssl = NULL;
	if (c->release)
		c->release(c->cookie);
	pthread_mutex_lock(&h->lock);
	if (!c->out_cb)
		h->nlive--;
	pthread_cond_broadcast(&h->gone);
	pthread_mutex_unlock(&h->lock);
}

/*
 * Marks c dead (ops fail, workers wake); frees it once no worker holds a
 * stream. When only abandoned handlers hold it (answered 504, or cut at
 * stop: they may never return), the socket goes back to the server now
 * and c is freed when the last of them returns. Returns 1 if c was freed.
 * Loop thread.
 */
static int conn_end(struct h2c *c)
{
	struct mse_h2 *h = c->h;
	int busy, held;

	pthread_mutex_lock(&c->lock);
	if (!c->dead && c->fd >= 0) {
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		shutdown(c->fd, SHUT_RDWR);
	}
	c->dead = 1;
	pthread_cond_broadcast(&c->cv);
	busy = c->nworking > 0;
	held = busy && c->nworking == c->nabandoned;
	conn_unlock(c);
	if (held)
		conn_release(c);
	if (busy)
		return 0;
	/* No worker holds a stream: nobody else can reach c now but the dirty list. */
	pthread_mutex_lock(&h->lock);
	if (c->in_dirty) {
		struct h2c **pp;

		for (pp = &h->dirty; *pp && *pp != c; pp = &(*pp)->dnext)
			;
		if (*pp)
			*pp = c->dnext;
		c->in_dirty = 0;
	}
	if (c->prev)
		c->prev->next = c->next;
	else if (h->conns == c)
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->nconns--;
	pthread_mutex_unlock(&h->lock);
	while (c->streams)
		stream_free(c->streams);
	nghttp2_session_del(c->sess);
	free(c->pre);
	free(c->wbuf);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cv);
	conn_release(c);
	free(c);
	return 1;
}

/* Caller holds c->lock: 1 if no stream is open (held ones may still run). */
static int conn_idle_locked(const struct h2c *c)
{
	for (const struct h2s *st = c->streams; st; st = st->next)
		if (!st->closed)
			return 0;
	return c->nworking == c->nabandoned;
}

static int add_worker_locked(struct mse_h2 *h);
static void workers_tend(struct mse_h2 *h);

/* Timeouts, the body rate floor, the request deadline and the stop. */
static void conn_sweep(struct h2c *c, int64_t t)
{
	struct mse_h2 *h = c->h;
	const struct mse_server_config *cfg = h->cfg;
	int idle_ms;

	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		conn_unlock(c);
		return;
	}
	if (atomic_load(&h->stopping) && !c->goaway) {
		/* RFC 9113 §6.8: streams up to the last one we saw still finish. */
		c->goaway = 1;
		nghttp2_submit_goaway(c->sess, NGHTTP2_FLAG_NONE,
				      nghttp2_session_get_last_proc_stream_id(c->sess),
				      NGHTTP2_NO_ERROR, NULL, 0);
		mark_dirty(c);
	}
	if (c->hdr_since && t - c->hdr_since > cfg->head_timeout_ms && !c->goaway) {
		mse_debug("%s:%u: HTTP/2 header block not complete in time: closing",
			  c->info.remote_addr, c->info.remote_port);
		c->goaway = 1;
		nghttp2_session_terminate_session(c->sess, NGHTTP2_ENHANCE_YOUR_CALM);
		c->rdone = 1;
		mark_dirty(c);
	}
	idle_ms = c->requests ? cfg->idle_timeout_ms : cfg->head_timeout_ms;
	if (!c->goaway && conn_idle_locked(c) && t - c->last_active > idle_ms) {
		mse_debug("%s:%u: HTTP/2 connection idle: closing", c->info.remote_addr,
			  c->info.remote_port);
		c->goaway = 1;
		nghttp2_session_terminate_session(c->sess, NGHTTP2_NO_ERROR);
		mark_dirty(c);
	}
	for (struct h2s *st = c->streams; st; st = st->next) {
		if (!st->hdr_done || st->closed)
			continue;
		/* A stream not dispatched yet waits for its whole body: that wait
		 * is always the client's, whatever it buffered so far. */
		if (!st->in_eof && (st->in_len == 0 || !st->dispatched) &&
		    c->in_buffered < H2_CONN_WINDOW / 2)
			st->client_ms += t - st->rate_tick;
		st->rate_tick = t;
		if (!st->in_eof && !st->canned && !st->too_large && !st->body_timeout &&
		    below_rate(cfg, st->in_total, st->client_ms)) {
			mse_debug("%s:%u: HTTP/2 stream %d: body below the minimum rate",
				  c->info.remote_addr, c->info.remote_port, st->id);
			st->body_timeout = 1;
			if (!st->dispatched)
				submit_canned(st, 408);
			pthread_cond_broadcast(&c->cv);
		}
		if (cfg->request_timeout_ms && st->running && !st->started && !st->abandoned &&
		    t - st->handler_since > cfg->request_timeout_ms) {
			/* The handler keeps its worker; the client gets its answer. */
			mse_warn("request timed out after %d ms: %.*s %.*s from %s:%u (HTTP/2); "
				 "answered 504; its handler still runs",
				 cfg->request_timeout_ms, (int)st->req.method_len, st->req.method,
				 (int)(st->req.target_len > 200 ? 200 : st->req.target_len),
				 st->req.target, c->info.remote_addr, c->info.remote_port);
			submit_canned(st, 504);
			stream_abandon_locked(st);
			/* Its worker is stuck with it: start one in its place, as
			 * net/server.c does for HTTP/1.1 (within threads-max). */
			pthread_mutex_lock(&h->lock);
			if (st->w && !st->w->stuck) {
				st->w->stuck = 1;
				h->nstuck++;
				if (h->nworkers - h->nstuck < h->threads)
					(void)add_worker_locked(h);
			}
			pthread_mutex_unlock(&h->lock);
		}
	}
	conn_unlock(c);
}

static void conn_service(struct h2c *c)
{
	if (pump(c) != 0) {
		conn_end(c);
		return;
	}
	conn_arm(c);
}

static void *loop_main(void *arg)
{
	struct mse_h2 *h = arg;
	struct epoll_event evs[64];
	int64_t next_sweep = now_ms() + 250;

	tl_h2_loop = 1;

	for (;;) {
		int n = epoll_wait(h->epfd, evs, 64, 100);
		int64_t t;
		struct h2c *d;

		for (int i = 0; i < n; i++) {
			struct h2c *c = evs[i].data.ptr;
			uint64_t v;

			if (!c) {
				ssize_t r = read(h->evfd, &v, sizeof(v));

				(void)r;
				continue;
			}
			c->want_out = 0;
			if ((evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) || c->pre_len) {
				if (conn_read(c) != 0) {
					/* Send what is left (a GOAWAY) before closing. */
					(void)pump(c);
					conn_end(c);
					evs[i].data.ptr = NULL;
					continue;
				}
			}
			conn_service(c);
		}
		/* Connections with something to send (workers wrote, windows opened). */
		for (;;) {
			pthread_mutex_lock(&h->lock);
			d = h->dirty;
			if (d) {
				h->dirty = d->dnext;
				d->in_dirty = 0;
			}
			pthread_mutex_unlock(&h->lock);
			if (!d)
				break;
			pthread_mutex_lock(&d->lock);
			if (d->dead) {
				conn_unlock(d);
				conn_end(d);
				continue;
			}
			conn_unlock(d);
			if (d->ssl && SSL_has_pending(d->ssl) && conn_read(d) != 0) {
				(void)pump(d);
				conn_end(d);
				continue;
			}
			conn_service(d);
		}
		t = now_ms();
		if (t >= next_sweep || atomic_load(&h->stopping)) {
			struct h2c *c, *next;

			pthread_mutex_lock(&h->lock);
			c = h->conns;
			pthread_mutex_unlock(&h->lock);
			for (; c; c = next) {
				pthread_mutex_lock(&h->lock);
				next = c->next;
				pthread_mutex_unlock(&h->lock);
				if (h->cut) {
					/* Every stream is given up on: the sockets go back now,
					 * whatever the handlers do. */
					pthread_mutex_lock(&c->lock);
					for (struct h2s *st = c->streams; st; st = st->next)
						stream_abandon_locked(st);
					conn_unlock(c);
					conn_end(c);
					continue;
				}
				conn_sweep(c, t);
			}
			next_sweep = t + 250;
			if (!h->cut)
				workers_tend(h);
		}
		pthread_mutex_lock(&h->lock);
		if (h->cut && h->nlive == 0) {
			pthread_mutex_unlock(&h->lock);
			break;
		}
		pthread_mutex_unlock(&h->lock);
	}
	return NULL;
}

static void *worker_main(void *arg)
{
	struct h2w *self = arg;
	struct mse_h2 *h = self->h;

	self->ktid = (pid_t)syscall(SYS_gettid);
	if (h->cfg->thread_start)
		h->cfg->thread_start(h->cfg->user);
	pthread_mutex_lock(&h->lock);
	for (;;) {
		struct h2s *st;
		int64_t since = now_ms();

		h->nidle++;
		while (!h->qhead && !h->exiting) {
			/* Above the floor (grown for a blocking app, or in a stuck
			 * one's place), a worker idle for idle_ms leaves. */
			if (h->nworkers - h->nstuck > h->threads) {
				int64_t left = since + h->idle_ms - now_ms();

				if (left <= 0)
					break;
				mse_pool_cond_wait_ms(&h->cv, &h->lock, left);
			} else {
				pthread_cond_wait(&h->cv, &h->lock);
			}
		}
		h->nidle--;
		if (!h->qhead)
			break;
		st = h->qhead;
		h->qhead = st->qnext;
		if (!h->qhead)
			h->qtail = NULL;
		h->qlen--;
		self->busy = 1;
		pthread_mutex_unlock(&h->lock);
		stream_run(st, self);
		atomic_store_explicit(&self->waiting, 0, memory_order_relaxed);
		pthread_mutex_lock(&h->lock);
		self->busy = 0;
		/* Above the floor while the app is (now) CPU-bound: another
		 * runnable thread only queues for the GIL, so the surplus goes
		 * as each is done (the waiters on h->cv are woken in turn, so
		 * none would ever sit idle long enough to retire). */
		if (!h->exiting && !h->cls.blocking && h->nworkers - h->nstuck > h->threads)
			break;
	}
	h->nworkers--;
	pthread_mutex_unlock(&h->lock);
	if (h->cfg->thread_stop)
		h->cfg->thread_stop(h->cfg->user);
	pthread_mutex_lock(&h->lock);
	self->exited = 1;
	pthread_cond_broadcast(&h->gone);
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* Caller holds h->lock: one more worker (signals blocked), within maxw. */
static int add_worker_locked(struct mse_h2 *h)
{
	struct h2w *w = NULL;
	int rc;

	if (h->exiting || h->cut || h->nworkers >= h->maxw)
		return -1;
	for (int i = 0; i < h->nslots && !w; i++)
		if (!h->w[i].used)
			w = &h->w[i];
	if (!w)
		return -1; /* retired workers not joined yet: the next sweep */
	*w = (struct h2w){.h = h, .used = 1};
	/* The server's workers' explicit stack (net/pool.h), not the default 8 MiB. */
	rc = mse_pool_thread_create(&w->tid, h->stack_size, worker_main, w);
	if (rc != 0) {
		w->used = 0;
		mse_warn("HTTP/2: cannot start another worker thread (%d running): %s",
			 h->nworkers, strerror(rc));
		return -1;
	}
	h->nworkers++;
	return 0;
}

/*
 * Caller holds h->lock. Streams are queued with no idle worker to take
 * them: if the app is classified blocking (its serving workers wait on the
 * world or on the event loop: net/pool.h, the rule net/server.c follows
 * for HTTP/1.1), a worker is started for each, within maxw. CPU-bound,
 * none: another thread would only queue for the GIL.
 */
static void grow_locked(struct mse_h2 *h)
{
	struct mse_pool_probe p[MSE_POOL_SAMPLE];
	int n = 0;
	int64_t t;

	if (h->qlen <= (size_t)h->nidle || h->nworkers >= h->maxw || h->exiting || h->cut)
		return;
	t = now_ms();
	if (t - h->cls.last_check >= MSE_POOL_CHECK_MS)
		for (int i = 0; i < h->nslots && n < MSE_POOL_SAMPLE; i++) {
			const struct h2w *w = &h->w[i];

			if (w->used && !w->exited && w->busy && !w->stuck)
				p[n++] = (struct mse_pool_probe){
					w->ktid, atomic_load_explicit(&w->waiting, memory_order_relaxed)};
		}
	if (!mse_pool_classify(&h->cls, t, p, n, h->cfg->app_busy, h->cfg->user))
		return;
	for (size_t k = (size_t)h->nidle; k < h->qlen; k++)
		if (add_worker_locked(h) != 0)
			break;
}

/* Loop thread: joins retired workers, replaces stuck ones (as they are
 * answered, a failed start is retried here). */
static void workers_tend(struct mse_h2 *h)
{
	pthread_mutex_lock(&h->lock);
	for (int i = 0; i < h->nslots; i++) {
		struct h2w *w = &h->w[i];

		if (w->used && w->exited) {
			pthread_t tid = w->tid;

			pthread_mutex_unlock(&h->lock);
			pthread_join(tid, NULL);
			pthread_mutex_lock(&h->lock);
			w->used = 0;
		}
	}
	while (h->nworkers - h->nstuck < h->threads && add_worker_locked(h) == 0)
		;
	grow_locked(h);
	pthread_mutex_unlock(&h->lock);
}

/* ---- public API --------------------------------------------------------------- */

int mse_h2_new(const struct mse_server_config *cfg, int threads, struct mse_h2 **out,
	       struct mse_err *err)
{
	struct mse_h2 *h;
	nghttp2_session_callbacks *cb;

	*out = NULL;
	if (!(h = calloc(1, sizeof(*h))))
		return mse_err_set(err, "out of memory");
	h->cfg = cfg;
	h->threads = threads;
	h->epfd = h->evfd = -1;
	h->stack_size = mse_pool_stack_size(cfg->stack_size);
	h->idle_ms = cfg->thread_idle_ms > 0 ? cfg->thread_idle_ms : 10000;
	pthread_mutex_init(&h->lock, NULL);
	{
		/* Both are waited on with CLOCK_MONOTONIC deadlines. */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&h->cv, &ca);
		pthread_cond_init(&h->gone, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&h->opt) != 0) {
		mse_h2_free(h);
		return mse_err_set(err, "out of memory");
	}
	h->cbs = cb;
	nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	/* Windows reopen as the app reads, not as bytes arrive. */
	nghttp2_option_set_no_auto_window_update(h->opt, 1);
	nghttp2_option_set_max_settings(h->opt, H2_MAX_SETTINGS);
	nghttp2_option_set_max_outbound_ack(h->opt, H2_MAX_OUTBOUND_ACK);
	nghttp2_option_set_stream_reset_rate_limit(h->opt, H2_RESET_BURST, H2_RESET_RATE);
	nghttp2_option_set_max_continuations(h->opt, H2_MAX_CONTINUATIONS);
	nghttp2_option_set_no_rfc9113_leading_and_trailing_ws_validation(h->opt, 0);
	if (threads > 0) {
		h->epfd = epoll_create1(EPOLL_CLOEXEC);
		h->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		h->maxw = cfg->max_threads ? cfg->max_threads : MSE_SERVER_THREADS_MAX_DEFAULT;
		if (h->maxw < threads)
			h->maxw = threads;
		h->nslots = 2 * h->maxw;
		h->w = calloc((size_t)h->nslots, sizeof(*h->w));
		if (h->epfd < 0 || h->evfd < 0 || !h->w) {
			mse_h2_free(h);
			return mse_err_set(err, "HTTP/2: epoll/eventfd: %s", strerror(errno));
		}
		{
			struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

			if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->evfd, &ev) != 0) {
				mse_h2_free(h);
				return mse_err_set(err, "HTTP/2: epoll_ctl: %s", strerror(errno));
			}
		}
	}
	*out = h;
	return 0;
}

/* Caller holds h->lock: the loop and the workers, signals blocked. */
static int start_threads_locked(struct mse_h2 *h)
{
	sigset_t all, old;
	int ok = 1;

	if (h->started)
		return 0;
	h->started = 1;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&h->loop_tid, NULL, loop_main, h) != 0) {
		h->started = 0;
		ok = 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (int i = 0; ok && i < h->threads; i++)
		if (add_worker_locked(h) != 0)
			break;
	if (!ok || h->nworkers == 0) {
		mse_error("HTTP/2: cannot start threads");
		return -1;
	}
	mse_info("HTTP/2 serving with %d threads", h->nworkers);
	return 0;
}

static struct h2c *conn_new(struct mse_h2 *h, int fd, SSL *ssl, const struct mse_conn_info *info,
			    const void *pre, size_t pre_len)
{
	struct h2c *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->h = h;
	c->fd = fd;
	c->ssl = ssl;
	if (info)
		c->info = *info;
	pthread_mutex_init(&c->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (session_new(c) != 0 || (pre_len && !(c->pre = malloc(pre_len)))) {
		nghttp2_session_del(c->sess);
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->cv);
		free(c);
		return NULL;
	}
	if (pre_len)
		memcpy(c->pre, pre, pre_len);
	c->pre_len = pre_len;
	return c;
}

int mse_h2_adopt(struct mse_h2 *h, int fd, SSL *ssl, const struct mse_conn_info *info,
		 const void *pre, size_t pre_len, void (*release)(void *cookie), void *cookie)
{
	struct h2c *c;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP};

	if (h->threads <= 0 || atomic_load(&h->stopping))
		return -1;
	if (!(c = conn_new(h, fd, ssl, info, pre, pre_len)))
		return -1;
	c->release = release;
	c->cookie = cookie;
	c->armed_out = 1;
	ev.data.ptr = c;
	pthread_mutex_lock(&h->lock);
	if (start_threads_locked(h) != 0 || h->cut) {
		pthread_mutex_unlock(&h->lock);
		goto fail;
	}
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	h->nconns++;
	h->nlive++;
	/* Logged first: once in the epoll set, the loop may end and free c. */
	mse_debug("%s:%u: HTTP/2", c->info.remote_addr, c->info.remote_port);
	/* The preface (or bytes after it) may be here already: the loop feeds them. */
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		h->conns = c->next;
		if (c->next)
			c->next->prev = NULL;
		h->nconns--;
		h->nlive--;
		pthread_mutex_unlock(&h->lock);
		goto fail;
	}
	pthread_mutex_unlock(&h->lock);
	return 0;
fail:
	nghttp2_session_del(c->sess);
	free(c->pre);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cv);
	free(c);
	return -1;
}

void mse_h2_stop(struct mse_h2 *h)
{
	if (!h)
		return;
	atomic_store(&h->stopping, 1);
	wake_loop(h);
}

/* Caller holds h->lock: waits on h->gone until woken or deadline (ms). */
static void wait_gone_locked(struct mse_h2 *h, int64_t deadline)
{
	int64_t left = deadline - now_ms();

	if (left > 100)
		left = 100;
	if (left > 0)
		mse_pool_cond_wait_ms(&h->gone, &h->lock, left);
}

/* Caller holds h->lock: workers started and not ended yet. */
static int workers_running_locked(const struct mse_h2 *h)
{
	int n = 0;

	for (int i = 0; i < h->nslots; i++)
		n += h->w[i].used && !h->w[i].exited;
	return n;
}

int mse_h2_join(struct mse_h2 *h, int64_t deadline_ms)
{
	int64_t grace;

	if (!h)
		return 0;
	mse_h2_stop(h);
	pthread_mutex_lock(&h->lock);
	if (!h->started) {
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	while (h->nlive > 0 && now_ms() < deadline_ms)
		wait_gone_locked(h, deadline_ms);
	if (h->nlive > 0)
		mse_warn("stop: %zu HTTP/2 connection(s) still busy: cutting them", h->nlive);
	h->cut = 1;
	pthread_mutex_unlock(&h->lock);
	wake_loop(h);
	pthread_join(h->loop_tid, NULL);
	pthread_mutex_lock(&h->lock);
	h->exiting = 1;
	pthread_cond_broadcast(&h->cv);
	/* The cut failed every op: handlers doing I/O return now. One stuck in
	 * the app (past request_timeout_ms, or in a loop that never reads or
	 * writes) is left behind on its detached thread, as net/server.c
	 * leaves its stuck HTTP/1.1 workers: the stop must not wait for it. */
	grace = now_ms() + H2_STOP_GRACE_MS;
	while (workers_running_locked(h) > h->nstuck && now_ms() < grace)
		wait_gone_locked(h, grace);
	for (int i = 0; i < h->nslots; i++) {
		struct h2w *w = &h->w[i];

		if (!w->used)
			continue;
		if (w->exited) {
			pthread_t tid = w->tid;

			pthread_mutex_unlock(&h->lock);
			pthread_join(tid, NULL);
			pthread_mutex_lock(&h->lock);
			w->used = 0;
		} else {
			pthread_detach(w->tid);
			h->left++;
		}
	}
	if (h->left)
		mse_warn("stop: %d HTTP/2 handler(s) still running (past the request deadline, "
			 "or not returning); left behind",
			 h->left);
	h->started = 0;
	pthread_mutex_unlock(&h->lock);
	if (!h->left) {
		/* Every worker is gone: connections their handlers held go now. */
		while (h->conns)
			(void)conn_end(h->conns);
	}
	return h->left;
}

int mse_h2_left(const struct mse_h2 *h)
{
	return h ? h->left : 0;
}

void mse_h2_free(struct mse_h2 *h)
{
	if (!h)
		return;
	if (h->left) {
		/* A left-behind handler's thread still points here. */
		mse_warn("HTTP/2 engine not freed: %d handler(s) still running", h->left);
		return;
	}
	if (h->cbs)
		nghttp2_session_callbacks_del(h->cbs);
	nghttp2_option_del(h->opt);
	if (h->epfd >= 0)
		close(h->epfd);
	if (h->evfd >= 0)
		close(h->evfd);
	free(h->w);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cv);
	pthread_cond_destroy(&h->gone);
	free(h);
}

/* ---- in-memory mode ------------------------------------------------------------- */

/* Runs every queued stream on this thread (in-memory mode). */
static void run_queue(struct mse_h2 *h)
{
	for (;;) {
		struct h2s *st;

		pthread_mutex_lock(&h->lock);
		st = h->qhead;
		if (st) {
			h->qhead = st->qnext;
			if (!h->qhead)
				h->qtail = NULL;
			h->qlen--;
		}
		pthread_mutex_unlock(&h->lock);
		if (!st)
			return;
		stream_run(st, NULL);
	}
}

long mse_h2_mem_run(struct mse_h2 *h, const uint8_t *const *pieces, const size_t *lens,
		    size_t n, void (*out_cb)(const uint8_t *p, size_t n, void *arg), void *arg)
{
	struct h2c *c;
	int failed = 0;
	long total;

	if (h->threads != 0)
		return -1;
	if (!(c = conn_new(h, -1, NULL, NULL, NULL, 0)))
		return -1;
	snprintf(c->info.remote_addr, sizeof(c->info.remote_addr), "memory");
	c->out_cb = out_cb;
	c->out_arg = arg;
	pthread_mutex_lock(&h->lock);
	h->conns = c;
	h->nconns = 1;
	pthread_mutex_unlock(&h->lock);
	for (size_t i = 0; i < n && !failed; i++) {
		pthread_mutex_lock(&c->lock);
		failed = feed(c, pieces[i], lens[i]) != 0;
		conn_unlock(c);
		run_queue(h);
		conn_sweep(c, now_ms());
		if (pump(c) != 0)
			break;
		h->dirty = NULL;
		c->in_dirty = 0;
	}
	/* The end of the input: the client is gone. */
	atomic_store(&h->stopping, 1);
	conn_sweep(c, now_ms());
	(void)pump(c);
	run_queue(h);
	h->dirty = NULL;
	c->in_dirty = 0;
	atomic_store(&h->stopping, 0);
	total = c->out_total;
	conn_end(c);
	return failed ? -1 : total;
}
