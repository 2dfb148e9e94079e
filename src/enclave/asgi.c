/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ASGI bridge. The ASGI specification (asgi.readthedocs.io, "ASGI
 * (Asynchronous Server Gateway Interface) Specification" 3.0, "HTTP & WebSocket
 * ASGI Message Format" 2.3, "Lifespan Protocol" 2.0) is cited as "ASGI".
 *
 * Two sides meet in struct areq, one per request:
 *   - the server thread (mse_asgi_handle) owns the exchange; it waits on
 *     areq.cv for operations and body requests, and performs them without
 *     the GIL;
 *   - the loop thread (the Python code in driver_src, through the methods of
 *     the Req type below) queues operations and reads body chunks, with the
 *     GIL held, never blocking on the network.
 * areq.mu guards the fields shared by both; the inbox (struct mse_asgi.inbox*)
 * carries events from server threads to the loop. Lock order: areq.mu, then
 * inbox_mu. A server thread never takes the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "enclave/asgi.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "net/ws.h"

/* Events for the loop (areq.evmask). */
#define EV_NEW 1u     /* a request: start the app */
#define EV_BODY 2u    /* a body chunk (or its end, or a read error) is there */
#define EV_DRAINED 4u /* the queued response bytes went below the low mark */
#define EV_GONE 8u    /* response complete or client gone: http.disconnect */

enum op_kind {
	OP_START,     /* http.response.start */
	OP_BODY,      /* http.response.body */
	OP_DONE,      /* the app returned or raised */
	OP_WS_ACCEPT, /* websocket.accept: 101 then the stream (server thread) */
	OP_WS_SEND,   /* websocket.send (WebSocket thread); more = text */
	OP_WS_CLOSE,  /* websocket.close: status = code, data = reason */
};

/* A received WebSocket message, for the loop. */
struct wsmsg {
	struct wsmsg *next;
	int text;
	size_t len;
	char data[];
};

struct op {
	struct op *next;
	enum op_kind kind;
	int status;          /* OP_START */
	int more;            /* OP_BODY: more_body */
	size_t nh;           /* OP_START: headers in h */
	struct mse_http_header *h;
	size_t len;          /* OP_BODY: bytes in data; OP_DONE: traceback length */
	char *tb;            /* OP_DONE: the app's traceback, NULL if it returned */
	char data[];         /* body bytes, or header names and values */
};

/* How often a server thread waiting for a slow app checks that its client is still there. */
#define PEER_CHECK_MS 200

struct chunk {
	struct chunk *next;
	size_t len;
	char data[];
};

struct areq {
	atomic_int refs;
	struct mse_asgi *a;
	pthread_mutex_t mu;
	pthread_cond_t cv;

	/* guarded by mu */
	struct mse_exchange *x; /* NULL once the server thread left */
	struct op *ops, **ops_tail;
	size_t queued;        /* response body bytes in ops */
	int wait_drain;       /* the loop waits for EV_DRAINED */
	int want_body;        /* the loop asks for a chunk */
	int reading;          /* the server thread is in read_body */
	struct chunk *bq, **bq_tail;
	int bq_n;
	int body_eof, body_err;
	int resp_done;        /* the response is complete, or will never be */
	int net_failed;       /* an exchange op failed */
	int app_done;

	/* WebSocket (guarded by mu unless said) */
	int ws;               /* a WebSocket opening handshake (set before EV_NEW) */
	char ws_key[32];      /* Sec-WebSocket-Key */
	int ws_accepted;      /* loop: accept sent (loop thread only) */
	int ws_closing;       /* loop: close sent (loop thread only) */
	struct op *wout, **wout_tail; /* sends and close, for the WebSocket thread */
	size_t wout_bytes;    /* bytes in wout and in the framing queue */
	struct wsmsg *win, **win_tail; /* received messages, for the loop */
	size_t win_bytes;
	int ws_gone;          /* the connection is over: ws_code says why */
	uint16_t ws_code;
	struct mse_ws *wsc;   /* WebSocket thread only, after registration */
	struct mse_ws *ws_handoff; /* guarded by ws_mu: from the server thread after the 101 */
	int ws_new;           /* WebSocket thread only: to register */
	int ws_paused;        /* WebSocket thread only */
	struct areq *ws_all_next, *ws_all_prev; /* WebSocket thread: every live connection */
	int ws_listed;        /* guarded by ws_mu: in the WebSocket thread's work list */
	struct areq *ws_next;

	/* loop thread only (GIL) */
	PyObject *py; /* the Req object, borrowed (it owns a reference to us) */
	int l_started, l_complete, l_eof_said;

	/* server thread only */
	int64_t checked_ms; /* when peer_gone was last asked */
	int upgraded; /* handed to the WebSocket thread */
	int close_conn;
	uint64_t sent;
	int64_t declared;
	int status;

	/* guarded by the inbox lock */
	unsigned evmask;
	unsigned l_ev; /* loop thread: the events of the batch being drained */
	int queued_in_inbox;
	struct areq *next_in_inbox;
};

struct mse_asgi {
	int efd;
	pthread_t thread;
	int thread_started;
	PyObject *mod;     /* the _mse_asgi module given to the driver */
	PyObject *run;     /* the driver's run() */
	PyObject *app;
	enum mse_pyhost_iface iface;
	int debug;
	int drain_ms;
	PyThreadState *main_ts;

	pthread_mutex_t inbox_mu;
	struct areq *inbox, **inbox_tail;
	int stop_posted;

	/* start-up handshake between mse_asgi_init and the loop thread */
	pthread_mutex_t st_mu;
	pthread_cond_t st_cv;
	int st_state; /* 0 starting, 1 serving, -1 failed */
	char st_msg[1024];

	atomic_llong stop_at_ms; /* mse_asgi_stop: when (0: not stopping) */

	/* The WebSocket thread: every upgraded connection, one epoll. */
	pthread_mutex_t ws_mu;
	pthread_t ws_thread;
	int ws_started, ws_stop;
	int ws_ep, ws_efd;
	struct areq *ws_work; /* connections with new work (guarded by ws_mu) */
	struct areq *ws_all;  /* WebSocket thread only */
	uint64_t ws_max_msg;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- requests: references, events --------------------------------------- */

static void areq_unref(struct areq *r)
{
	struct op *o;
	struct chunk *c;

	if (atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	while ((o = r->ops) != NULL) {
		r->ops = o->next;
		free(o->tb);
		free(o);
	}
	while ((c = r->bq) != NULL) {
		r->bq = c->next;
		free(c);
	}
	while ((o = r->wout) != NULL) {
		r->wout = o->next;
		free(o);
	}
	while (r->win) {
		struct wsmsg *m = r->win;

		r->win = m->next;
		free(m);
	}
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}

static void wake_loop(struct mse_asgi *a)
{
	uint64_t one = 1;
	ssize_t n;

	do
		n = write(a->efd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
}

/* Posts events for r to the loop. Any thread; the eventfd is written once per batch. */
static void post(struct areq *r, unsigned ev)
{
	struct mse_asgi *a = r->a;
	int was_empty;

	pthread_mutex_lock(&a->inbox_mu);
	r->evmask |= ev;
	was_empty = !a->inbox && !a->stop_posted;
	if (!r->queued_in_inbox) {
		r->queued_in_inbox = 1;
		atomic_fetch_add(&r->refs, 1);
		r->next_in_inbox = NULL;
		*a->inbox_tail = r;
		a->inbox_tail = &r->next_in_inbox;
	} else {
		was_empty = 0;
	}
	pthread_mutex_unlock(&a->inbox_mu);
	if (was_empty)
		wake_loop(a);
}


/* ---- the WebSocket thread -------------------------------------------------- */

/* Received bytes waiting for the app beyond which a connection stops reading. */
#define WS_IN_LIMIT (1024 * 1024)

static void ws_wake(int efd)
{
	uint64_t one = 1;
	ssize_t n;

	if (efd < 0)
		return; /* not started yet: ws_start wakes it */
	do
		n = write(efd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
}

/* r has work for the WebSocket thread (new, sends, a close, room to read). Any thread, mu not held. */
static void ws_kick(struct areq *r)
{
	struct mse_asgi *a = r->a;
	int was_empty = 0, efd;

	pthread_mutex_lock(&a->ws_mu);
	if (!r->ws_listed) {
		r->ws_listed = 1;
		atomic_fetch_add(&r->refs, 1);
		was_empty = !a->ws_work;
		r->ws_next = a->ws_work;
		a->ws_work = r;
	}
	efd = a->ws_efd;
	pthread_mutex_unlock(&a->ws_mu);
	if (was_empty)
		ws_wake(efd);
}

/* A complete message from the client (WebSocket thread, inside mse_ws_io). */
static void ws_on_message(void *user, int text, const uint8_t *data, size_t len)
{
	struct areq *r = user;
	struct wsmsg *m = malloc(sizeof(*m) + len);

	if (!m) {
		mse_error("asgi: out of memory for a WebSocket message of %zu bytes", len);
		return;
	}
	m->next = NULL;
	m->text = text;
	m->len = len;
	memcpy(m->data, data, len);
	pthread_mutex_lock(&r->mu);
	*r->win_tail = m;
	r->win_tail = &m->next;
	r->win_bytes += len;
	post(r, EV_BODY);
	pthread_mutex_unlock(&r->mu);
}

static void ws_unlink(struct mse_asgi *a, struct areq *r)
{
	if (r->ws_all_prev)
		r->ws_all_prev->ws_all_next = r->ws_all_next;
	else
		a->ws_all = r->ws_all_next;
	if (r->ws_all_next)
		r->ws_all_next->ws_all_prev = r->ws_all_prev;
	r->ws_all_next = r->ws_all_prev = NULL;
}

/* Sends what the app queued, reads what came, tells the loop. WebSocket thread. */
static void ws_service(struct mse_asgi *a, struct areq *r, int force_code)
{
	struct op *list, *o;
	struct epoll_event ev;
	int rc = 0, wants;
	size_t queued;

	if (!r->wsc)
		return;
	pthread_mutex_lock(&r->mu);
	list = r->wout;
	r->wout = NULL;
	r->wout_tail = &r->wout;
	pthread_mutex_unlock(&r->mu);
	while ((o = list) != NULL) {
		list = o->next;
		if (o->kind == OP_WS_SEND)
			mse_ws_send(r->wsc, o->more, o->data, o->len);
		else if (o->kind == OP_WS_CLOSE)
			mse_ws_close(r->wsc, (uint16_t)o->status, o->data, o->len);
		free(o);
	}
	if (force_code) {
		rc = -1;
	} else {
		do
			rc = mse_ws_io(r->wsc);
		while (rc == 0 && !r->ws_paused && mse_ws_pending(r->wsc));
	}
	queued = mse_ws_queued(r->wsc);
	pthread_mutex_lock(&r->mu);
	r->wout_bytes = queued;
	for (o = r->wout; o; o = o->next)
		r->wout_bytes += o->len;
	r->ws_paused = r->win_bytes >= WS_IN_LIMIT;
	if (rc < 0) {
		r->ws_gone = 1;
		r->ws_code = force_code ? (uint16_t)force_code : mse_ws_close_code(r->wsc);
		r->wait_drain = 0;
		post(r, EV_GONE | EV_DRAINED);
	} else if (r->wait_drain && r->wout_bytes <= MSE_ASGI_HIGH_WATER / 2) {
		r->wait_drain = 0;
		post(r, EV_DRAINED);
	}
	pthread_mutex_unlock(&r->mu);
	if (rc < 0) {
		epoll_ctl(a->ws_ep, EPOLL_CTL_DEL, mse_ws_fd(r->wsc), NULL);
		mse_ws_free(r->wsc);
		r->wsc = NULL;
		ws_unlink(a, r);
		areq_unref(r); /* the WebSocket thread's reference */
		return;
	}
	mse_ws_pause(r->wsc, r->ws_paused);
	wants = mse_ws_wants(r->wsc);
	memset(&ev, 0, sizeof(ev));
	ev.events = (wants & 1 ? EPOLLIN : 0) | (wants & 2 ? EPOLLOUT : 0) | EPOLLRDHUP;
	ev.data.ptr = r;
	epoll_ctl(a->ws_ep, EPOLL_CTL_MOD, mse_ws_fd(r->wsc), &ev);
}

static void *ws_main(void *p)
{
	struct mse_asgi *a = p;
	struct epoll_event evs[64];
	int64_t stop_deadline = 0;

	for (;;) {
		struct areq *work, *r, *next;
		int n, stop;

		n = epoll_wait(a->ws_ep, evs, 64, stop_deadline ? 50 : -1);
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr) {
				uint64_t c;

				while (read(a->ws_efd, &c, sizeof(c)) < 0 && errno == EINTR)
					;
				continue;
			}
			ws_service(a, evs[i].data.ptr, 0);
		}
		pthread_mutex_lock(&a->ws_mu);
		work = a->ws_work;
		a->ws_work = NULL;
		stop = a->ws_stop;
		for (r = work; r; r = r->ws_next) {
			r->ws_listed = 0;
			if (r->ws_handoff) {
				r->wsc = r->ws_handoff;
				r->ws_handoff = NULL;
				r->ws_new = 1;
			}
		}
		pthread_mutex_unlock(&a->ws_mu);
		for (r = work; r; r = next) {
			next = r->ws_next;
			if (r->ws_new) {
				r->ws_new = 0;
				/* New: the server thread handed it over after the 101. */
				struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = r};

				r->ws_all_next = a->ws_all;
				if (a->ws_all)
					a->ws_all->ws_all_prev = r;
				a->ws_all = r;
				if (epoll_ctl(a->ws_ep, EPOLL_CTL_ADD, mse_ws_fd(r->wsc), &ev) != 0) {
					mse_error("asgi: epoll_ctl for a WebSocket: %s", strerror(errno));
					ws_service(a, r, 1011);
					areq_unref(r);
					continue;
				}
			}
			ws_service(a, r, 0);
			areq_unref(r);
		}
		if (stop && !stop_deadline) {
			/* RFC 6455 §7.4.1: 1001, the server is going away. */
			stop_deadline = now_ms() + 1000;
			for (r = a->ws_all; r; r = r->ws_all_next)
				mse_ws_close(r->wsc, 1001, NULL, 0);
			for (r = a->ws_all; r; r = next) {
				next = r->ws_all_next;
				ws_service(a, r, 0);
			}
		}
		if (stop_deadline && (!a->ws_all || now_ms() > stop_deadline)) {
			while ((r = a->ws_all) != NULL)
				ws_service(a, r, 1001);
			break;
		}
	}
	return NULL;
}

/* Starts the WebSocket thread on the first upgrade. Server thread. */
static int ws_start(struct mse_asgi *a)
{
	int rc = 0;

	pthread_mutex_lock(&a->ws_mu);
	if (!a->ws_started) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
		sigset_t all, old;

		a->ws_ep = epoll_create1(EPOLL_CLOEXEC);
		a->ws_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (a->ws_ep < 0 || a->ws_efd < 0 ||
		    epoll_ctl(a->ws_ep, EPOLL_CTL_ADD, a->ws_efd, &ev) != 0) {
			mse_error("asgi: cannot set up the WebSocket thread: %s", strerror(errno));
			rc = -1;
		} else {
			sigfillset(&all);
			pthread_sigmask(SIG_SETMASK, &all, &old);
			rc = pthread_create(&a->ws_thread, NULL, ws_main, a) == 0 ? 0 : -1;
			pthread_sigmask(SIG_SETMASK, &old, NULL);
		}
		if (rc == 0) {
			a->ws_started = 1;
			ws_wake(a->ws_efd); /* work queued before the thread existed */
		} else {
			if (a->ws_ep >= 0)
				close(a->ws_ep);
			if (a->ws_efd >= 0)
				close(a->ws_efd);
			a->ws_ep = a->ws_efd = -1;
		}
	}
	pthread_mutex_unlock(&a->ws_mu);
	return rc;
}

/* websocket.accept: the 101 response, then the stream goes to the WebSocket thread. */
static int ws_upgrade(struct areq *r, struct op *o)
{
	struct mse_exchange *x = r->x;
	struct mse_http_header *h = calloc(o->nh + 3, sizeof(*h));
	struct mse_stream *st = NULL;
	struct mse_ws *w;
	struct mse_ws_callbacks cb = {ws_on_message};
	char accept[MSE_WS_ACCEPT_LEN + 1];
	size_t n = 0;

	if (!h || mse_ws_accept(r->ws_key, strlen(r->ws_key), accept) != 0 || ws_start(r->a) != 0) {
		free(h);
		return -1;
	}
	h[n++] = (struct mse_http_header){"Upgrade", 7, "websocket", 9};
	h[n++] = (struct mse_http_header){"Connection", 10, "Upgrade", 7};
	h[n++] = (struct mse_http_header){"Sec-WebSocket-Accept", 20, accept, MSE_WS_ACCEPT_LEN};
	for (size_t i = 0; i < o->nh; i++)
		if (!(o->h[i].name_len == 10 && strncasecmp(o->h[i].name, "connection", 10) == 0))
			h[n++] = o->h[i];
	if (x->ops->upgrade(x, h, n, &st) != 0) {
		free(h);
		return -1;
	}
	free(h);
	w = mse_ws_new(st, r->a->ws_max_msg, &cb, r);
	if (!w) {
		st->ops->close(st);
		return -1;
	}
	atomic_fetch_add(&r->refs, 1); /* the WebSocket thread's, until the connection ends */
	pthread_mutex_lock(&r->a->ws_mu);
	r->ws_handoff = w;
	pthread_mutex_unlock(&r->a->ws_mu);
	return 0;
}

/* ---- the server thread --------------------------------------------------- */

static int hop_by_hop(const char *n, size_t len)
{
	static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
					  "transfer-encoding", "te", "trailer", "upgrade"};

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (strlen(hop[i]) == len && strncasecmp(n, hop[i], len) == 0)
			return 1;
	return 0;
}

static void answer_500(struct areq *r, const char *tb)
{
	static const char plain[] = "Internal Server Error";
	struct mse_http_header h[2];
	char len[24], *body = NULL;
	const char *b = plain;
	size_t n = sizeof(plain) - 1;

	if (r->a->debug && tb) {
		size_t tl = strlen(tb);

		body = malloc(n + 2 + tl);
		if (body) {
			memcpy(body, plain, n);
			memcpy(body + n, "\n\n", 2);
			memcpy(body + n + 2, tb, tl);
			b = body;
			n += 2 + tl;
		}
	}
	snprintf(len, sizeof(len), "%zu", n);
	h[0] = (struct mse_http_header){"content-type", 12, "text/plain; charset=utf-8", 25};
	h[1] = (struct mse_http_header){"content-length", 14, len, strlen(len)};
	if (mse_exchange_start(r->x, 500, NULL, h, 2) != 0 ||
	    mse_exchange_write(r->x, b, n) != 0 || mse_exchange_finish(r->x) != 0)
		r->close_conn = 1;
	free(body);
}

/*
 * Performs one operation on the exchange (mu not held). Returns 1 once the
 * exchange is over (the response complete, or broken), else 0.
 */
static int run_op(struct areq *r, struct op *o)
{
	struct mse_exchange *x = r->x;

	switch (o->kind) {
	case OP_START:
		r->status = o->status;
		for (size_t i = 0; i < o->nh; i++) {
			if (o->h[i].name_len == 14 &&
			    strncasecmp(o->h[i].name, "content-length", 14) == 0) {
				char tmp[24];
				size_t l = o->h[i].value_len < 23 ? o->h[i].value_len : 23;

				memcpy(tmp, o->h[i].value, l);
				tmp[l] = '\0';
				r->declared = strtoll(tmp, NULL, 10);
			}
			if (o->h[i].name_len == 10 && strncasecmp(o->h[i].name, "connection", 10) == 0 &&
			    o->h[i].value_len == 5 && strncasecmp(o->h[i].value, "close", 5) == 0)
				r->close_conn = 1;
		}
		if (mse_exchange_start(x, o->status, NULL, o->h, o->nh) != 0)
			return -1;
		return 0;
	case OP_BODY:
		if (o->len) {
			if (mse_exchange_write(x, o->data, o->len) != 0)
				return -1;
			r->sent += o->len;
		}
		if (o->more)
			return 0;
		if (r->declared >= 0 && r->sent < (uint64_t)r->declared &&
		    !(x->req->method_len == 4 && memcmp(x->req->method, "HEAD", 4) == 0) &&
		    r->status != 204 && r->status != 304) {
			/* The client would wait for bytes that never come. */
			mse_warn("app: response body shorter than its content-length (%llu < %lld): "
				 "connection closed",
				 (unsigned long long)r->sent, (long long)r->declared);
			r->close_conn = 1;
			return 1;
		}
		if (mse_exchange_finish(x) != 0)
			return -1;
		return 1;
	case OP_WS_ACCEPT:
		if (ws_upgrade(r, o) != 0) {
			mse_warn("asgi: the WebSocket upgrade of %.*s failed", (int)x->req->target_len,
				 x->req->target);
			r->close_conn = 1;
			return -1;
		}
		r->upgraded = 1;
		ws_kick(r);
		return 1;
	case OP_WS_SEND:
		return 0; /* never queued here */
	case OP_WS_CLOSE:
		/* websocket.close before accept: ASGI says 403. */
		if (mse_exchange_start(x, 403, NULL, NULL, 0) != 0 || mse_exchange_finish(x) != 0)
			return -1;
		return 1;
	case OP_DONE:
		if (!x->started && r->ws && !o->tb) {
			/* The app returned without accepting: refused, as uvicorn does. */
			if (mse_exchange_start(x, 403, NULL, NULL, 0) != 0 ||
			    mse_exchange_finish(x) != 0)
				return -1;
		} else if (!x->started) {
			answer_500(r, o->tb);
		} else {
			/* Half a response went out: only closing tells the client it is broken. */
			r->close_conn = 1;
		}
		return 1;
	}
	return 1;
}

/* Waits on r->cv; gives up (returns -1) once the server has been stopping too long. */
static int wait_cv(struct areq *r)
{
	struct timespec ts;
	long long stop = atomic_load(&r->a->stop_at_ms);

	if (stop && now_ms() - stop > r->a->drain_ms)
		return -1;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += PEER_CHECK_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	return 0;
}

static int asgi_handle(struct mse_exchange *x, void *user);

/* This thread only waits on the event loop and never takes the GIL: the
 * server counts it as blocked, and starts others for queued requests. */
int mse_asgi_handle(struct mse_exchange *x, void *user)
{
	int rc;

	if (x->ops->waiting)
		x->ops->waiting(x, 1);
	rc = asgi_handle(x, user);
	if (x->ops->waiting)
		x->ops->waiting(x, 0);
	return rc;
}

static int asgi_handle(struct mse_exchange *x, void *user)
{
	struct mse_asgi *a = user;
	struct areq *r = calloc(1, sizeof(*r));
	char *buf = NULL;
	int over = 0, rc;

	if (!r) {
		mse_error("asgi: out of memory for a request");
		return -1;
	}
	atomic_init(&r->refs, 1);
	r->a = a;
	r->x = x;
	r->ops_tail = &r->ops;
	r->bq_tail = &r->bq;
	r->wout_tail = &r->wout;
	r->win_tail = &r->win;
	r->declared = -1;
	r->checked_ms = now_ms();
	if (x->ops->upgrade) {
		const char *key, *bad;
		size_t kl;

		if (mse_ws_is_upgrade(x->req, &key, &kl, &bad)) {
			if (bad) {
				/* RFC 6455 §4.2.1: a bad handshake gets a 400; then close. */
				struct mse_http_header h = {"Content-Type", 12, "text/plain", 10};

				if (mse_exchange_start(x, 400, NULL, &h, 1) == 0 &&
				    mse_exchange_write(x, bad, strlen(bad)) == 0)
					mse_exchange_finish(x);
				free(r);
				return -1;
			}
			r->ws = 1;
			memcpy(r->ws_key, key, kl);
			r->ws_key[kl] = '\0';
		}
	}
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	post(r, EV_NEW);

	pthread_mutex_lock(&r->mu);
	while (!over) {
		if (r->ops) {
			struct op *list = r->ops, *o;
			size_t done_bytes = 0;

			r->ops = NULL;
			r->ops_tail = &r->ops;
			pthread_mutex_unlock(&r->mu);
			for (o = list; o; o = o->next) {
				if (!over) {
					int k = run_op(r, o);

					if (k < 0) {
						r->close_conn = 1;
						over = 1;
					} else if (k > 0) {
						over = 1;
					}
				}
				if (o->kind == OP_BODY)
					done_bytes += o->len;
			}
			while ((o = list) != NULL) {
				list = o->next;
				free(o->tb);
				free(o);
			}
			pthread_mutex_lock(&r->mu);
			r->queued -= done_bytes;
			if (r->wait_drain && (r->queued <= MSE_ASGI_HIGH_WATER / 2 || over)) {
				r->wait_drain = 0;
				post(r, EV_DRAINED);
			}
			continue;
		}
		if (r->want_body && !r->body_eof && !r->body_err && r->bq_n < 2) {
			ssize_t n;

			r->want_body = 0;
			r->reading = 1;
			pthread_mutex_unlock(&r->mu);
			if (!buf)
				buf = malloc(MSE_ASGI_CHUNK);
			n = buf ? mse_exchange_read_body(x, buf, MSE_ASGI_CHUNK) : -1;
			struct chunk *c = n > 0 ? malloc(sizeof(*c) + (size_t)n) : NULL;

			if (c) {
				c->next = NULL;
				c->len = (size_t)n;
				memcpy(c->data, buf, (size_t)n);
			}
			pthread_mutex_lock(&r->mu);
			r->reading = 0;
			if (n == 0) {
				r->body_eof = 1;
			} else if (!c) {
				r->body_err = 1;
				r->close_conn = 1;
			} else {
				*r->bq_tail = c;
				r->bq_tail = &c->next;
				r->bq_n++;
			}
			post(r, EV_BODY);
			continue;
		}
		if (!r->ws && x->ops->peer_gone && (r->body_eof || (x->req->content_length <= 0 && !x->req->chunked)) &&
		    !r->want_body && now_ms() - r->checked_ms >= PEER_CHECK_MS) {
			/* The client may have gone while the app works: http.disconnect. */
			r->checked_ms = now_ms();
			if (x->ops->peer_gone(x)) {
				mse_info("asgi: the client of %.*s %.*s went away", (int)x->req->method_len,
					 x->req->method, (int)x->req->target_len, x->req->target);
				r->close_conn = 1;
				break;
			}
		}
		if (wait_cv(r) != 0) {
			mse_warn("asgi: the app did not answer %.*s %.*s before the drain timeout",
				 (int)x->req->method_len, x->req->method, (int)x->req->target_len,
				 x->req->target);
			r->close_conn = 1;
			break;
		}
	}
	/* The exchange is over for this thread; the app may go on (background tasks). */
	r->x = NULL;
	if (r->upgraded) {
		/* The connection lives on in the WebSocket thread. */
		pthread_mutex_unlock(&r->mu);
		free(buf);
		areq_unref(r);
		return 0;
	}
	r->resp_done = 1;
	if (r->ws) {
		r->ws_gone = 1;
		r->ws_code = 1006;
	}
	if (r->close_conn || r->body_err)
		r->net_failed = 1;
	rc = r->close_conn || r->body_err ? -1 : 0;
	if (r->wait_drain) {
		r->wait_drain = 0;
		post(r, EV_DRAINED | EV_GONE);
	} else {
		post(r, EV_GONE);
	}
	pthread_mutex_unlock(&r->mu);
	free(buf);
	areq_unref(r);
	return rc;
}

void mse_asgi_stop(struct mse_asgi *a)
{
	long long zero = 0;

	if (a)
		atomic_compare_exchange_strong(&a->stop_at_ms, &zero, (long long)now_ms());
}

/* ---- the Req type: what the driver calls (loop thread, GIL held) ---------- */

typedef struct {
	PyObject_HEAD
	struct areq *r;
	PyObject *rfut; /* a future receive() waits on, or None */
	PyObject *wfut; /* a future send() waits on, or None */
	PyObject *task;
} ReqObject;

static void req_dealloc(PyObject *o)
{
	ReqObject *self = (ReqObject *)o;

	Py_CLEAR(self->rfut);
	Py_CLEAR(self->wfut);
	Py_CLEAR(self->task);
	if (self->r) {
		self->r->py = NULL;
		pthread_mutex_lock(&self->r->mu);
		if (!self->r->app_done) {
			/* Never finished (the loop stopped): the server thread must not wait. */
			struct op *o2 = calloc(1, sizeof(*o2));

			self->r->app_done = 1;
			if (o2) {
				o2->kind = OP_DONE;
				*self->r->ops_tail = o2;
				self->r->ops_tail = &o2->next;
			}
			pthread_cond_signal(&self->r->cv);
		}
		pthread_mutex_unlock(&self->r->mu);
		areq_unref(self->r);
	}
	Py_TYPE(o)->tp_free(o);
}

static PyObject *latin1_bytes(const char *s, size_t n)
{
	return PyBytes_FromStringAndSize(s, (Py_ssize_t)n);
}

/*
 * info() -> (method, http_version, scheme, raw_path, query_string, headers,
 * client, server). Only while the server thread holds the exchange (it waits
 * for the app to answer, so it does until the response is complete).
 */
static PyObject *req_info(PyObject *o, PyObject *unused)
{
	ReqObject *self = (ReqObject *)o;
	struct areq *r = self->r;
	const struct mse_http_request *q;
	const struct mse_conn_info *c;
	PyObject *headers = NULL, *res = NULL;
	char lname[256];

	(void)unused;
	pthread_mutex_lock(&r->mu);
	if (!r->x) {
		pthread_mutex_unlock(&r->mu);
		PyErr_SetString(PyExc_RuntimeError, "the request is over");
		return NULL;
	}
	q = r->x->req;
	c = r->x->conn;
	headers = PyList_New((Py_ssize_t)q->num_headers);
	for (size_t i = 0; headers && i < q->num_headers; i++) {
		const struct mse_http_header *h = &q->headers[i];
		size_t n = h->name_len < sizeof(lname) ? h->name_len : sizeof(lname);
		PyObject *t;

		/* ASGI: header names are lower-cased. */
		for (size_t k = 0; k < n; k++) {
			char ch = h->name[k];

			lname[k] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
		}
		t = Py_BuildValue("(y#y#)", lname, (Py_ssize_t)n, h->value,
				  (Py_ssize_t)h->value_len);
		if (!t) {
			Py_CLEAR(headers);
			break;
		}
		PyList_SET_ITEM(headers, (Py_ssize_t)i, t);
	}
	if (headers) {
		PyObject *method = PyUnicode_DecodeLatin1(q->method, (Py_ssize_t)q->method_len, NULL);
		PyObject *path = latin1_bytes(q->path, q->path_len);
		PyObject *query = latin1_bytes(q->query, q->query_len);

		if (method && path && query)
			res = Py_BuildValue("(NsNNN(si)(si))", method,
					    q->http2 ? "2" : q->minor_version == 0 ? "1.0" : "1.1", path, query,
					    headers, c->remote_addr, (int)c->remote_port,
					    c->server_name, (int)c->server_port);
		else {
			Py_XDECREF(method);
			Py_XDECREF(path);
			Py_XDECREF(query);
			Py_DECREF(headers);
		}
		headers = NULL;
		if (res) {
			/* is_tls gives the scheme; inserted in position 2. */
			PyObject *t = PyTuple_New(8);

			if (t) {
				PyObject *scheme = PyUnicode_FromString(c->is_tls ? "https" : "http");

				for (int i = 0, j = 0; i < 8; i++) {
					PyObject *v = i == 2 ? scheme : PyTuple_GET_ITEM(res, j++);

					if (i != 2)
						Py_INCREF(v);
					PyTuple_SET_ITEM(t, i, v);
				}
				if (!scheme)
					Py_CLEAR(t);
			}
			Py_SETREF(res, t);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return res;
}

/*
 * body() -> (bytes, more_body): a chunk; None: wait for rfut (EV_BODY or
 * EV_GONE) and call again; False: http.disconnect.
 */
static PyObject *req_body(PyObject *o, PyObject *unused)
{
	ReqObject *self = (ReqObject *)o;
	struct areq *r = self->r;
	PyObject *res;

	(void)unused;
	pthread_mutex_lock(&r->mu);
	if (r->bq) {
		struct chunk *c = r->bq;
		int more;

		r->bq = c->next;
		if (!r->bq)
			r->bq_tail = &r->bq;
		r->bq_n--;
		/* Read one chunk ahead while the app works on this one. */
		if (!r->body_eof && !r->body_err && !r->reading && r->x) {
			r->want_body = 1;
			pthread_cond_signal(&r->cv);
		}
		more = !(r->body_eof && !r->bq);
		pthread_mutex_unlock(&r->mu);
		res = Py_BuildValue("(y#O)", c->data, (Py_ssize_t)c->len, more ? Py_True : Py_False);
		free(c);
		return res;
	}
	if (r->body_eof) {
		if (!r->l_eof_said) {
			/* The end of the body, said once. */
			r->l_eof_said = 1;
			pthread_mutex_unlock(&r->mu);
			return Py_BuildValue("(y#O)", "", (Py_ssize_t)0, Py_False);
		}
		if (r->resp_done || r->net_failed || !r->x) {
			pthread_mutex_unlock(&r->mu);
			Py_RETURN_FALSE;
		}
		pthread_mutex_unlock(&r->mu);
		Py_RETURN_NONE;
	}
	if (r->body_err || !r->x) {
		pthread_mutex_unlock(&r->mu);
		Py_RETURN_FALSE;
	}
	if (!r->reading) {
		r->want_body = 1;
		pthread_cond_signal(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	Py_RETURN_NONE;
}

/* Queues an operation (mu held by the caller). */
static void push_op(struct areq *r, struct op *o)
{
	o->next = NULL;
	*r->ops_tail = o;
	r->ops_tail = &o->next;
	pthread_cond_signal(&r->cv);
}

static const char *bytes_like(PyObject *v, Py_ssize_t *n)
{
	if (PyBytes_Check(v)) {
		*n = PyBytes_GET_SIZE(v);
		return PyBytes_AS_STRING(v);
	}
	if (PyByteArray_Check(v)) {
		*n = PyByteArray_GET_SIZE(v);
		return PyByteArray_AS_STRING(v);
	}
	return NULL;
}

static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/*
 * Checks an ASGI header list (byte pairs, token names, no CR/LF/NUL in
 * values) and copies it into one operation; hop-by-hop headers are dropped
 * (Connection: close is kept as a marker for the server thread). NULL with
 * a Python exception if the list breaks the rules.
 */
static struct op *headers_op(PyObject *headers)
{
	PyObject *seq = NULL;
	struct op *op = NULL;
	size_t total = 0, nh = 0, off;

	seq = PySequence_Fast(headers, "ASGI: headers must be an iterable of [name, value] pairs");
	if (!seq)
		return NULL;
	/* Two passes: check and measure, then copy into one allocation. */
	for (int pass = 0; pass < 2; pass++) {
		char *p = op ? op->data + sizeof(struct mse_http_header) * PySequence_Fast_GET_SIZE(seq)
			     : NULL;

		nh = 0;
		for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
			PyObject *pair = PySequence_Fast_GET_ITEM(seq, i), *k, *v;
			const char *ks, *vs;
			Py_ssize_t kn, vn;

			if (!PySequence_Check(pair) || PySequence_Size(pair) != 2) {
				PyErr_Format(PyExc_TypeError,
					     "ASGI: header %zd must be a [name, value] pair of bytes, "
					     "got %R",
					     i, pair);
				goto fail;
			}
			k = PySequence_GetItem(pair, 0);
			v = PySequence_GetItem(pair, 1);
			ks = k ? bytes_like(k, &kn) : NULL;
			vs = v ? bytes_like(v, &vn) : NULL;
			if (!ks || !vs) {
				PyErr_Format(PyExc_TypeError,
					     "ASGI: header %zd must be a [name, value] pair of bytes, "
					     "got %R",
					     i, pair);
				Py_XDECREF(k);
				Py_XDECREF(v);
				goto fail;
			}
			if (pass == 0) {
				int bad = kn == 0;

				for (Py_ssize_t j = 0; j < kn && !bad; j++)
					bad = !is_tchar((unsigned char)ks[j]);
				for (Py_ssize_t j = 0; j < vn && !bad; j++)
					bad = vs[j] == '\r' || vs[j] == '\n' || vs[j] == '\0';
				if (bad) {
					PyErr_Format(PyExc_ValueError,
						     "ASGI: invalid header name or value %R", pair);
					Py_DECREF(k);
					Py_DECREF(v);
					goto fail;
				}
				total += (size_t)kn + (size_t)vn;
			} else if (!hop_by_hop(ks, (size_t)kn) ||
				   (kn == 10 && strncasecmp(ks, "connection", 10) == 0)) {
				/* Connection is kept for run_op (close), dropped below. */
				struct mse_http_header *h = &op->h[nh++];

				memcpy(p, ks, (size_t)kn);
				h->name = p;
				h->name_len = (size_t)kn;
				p += kn;
				memcpy(p, vs, (size_t)vn);
				h->value = p;
				h->value_len = (size_t)vn;
				p += vn;
			}
			Py_DECREF(k);
			Py_DECREF(v);
		}
		if (pass == 0) {
			size_t n = (size_t)PySequence_Fast_GET_SIZE(seq);

			op = calloc(1, sizeof(*op) + n * sizeof(struct mse_http_header) + total);
			if (!op) {
				PyErr_NoMemory();
				goto fail;
			}
			op->h = (struct mse_http_header *)op->data;
		}
	}
	Py_DECREF(seq);
	/* The connection header itself is the server's to send. */
	off = 0;
	for (size_t i = 0; i < nh; i++) {
		struct mse_http_header *h = &op->h[i];

		if (h->name_len == 10 && strncasecmp(h->name, "connection", 10) == 0) {
			if (h->value_len == 5 && strncasecmp(h->value, "close", 5) == 0) {
				/* Keep it as a marker the server thread reads, then drops. */
				op->h[off++] = *h;
			}
			continue;
		}
		op->h[off++] = *h;
	}
	op->nh = off;
	return op;
fail:
	Py_XDECREF(seq);
	free(op);
	return NULL;
}

/* start(status, headers): http.response.start (ASGI HTTP "Response Start"). */
static PyObject *req_start(PyObject *o, PyObject *args)
{
	ReqObject *self = (ReqObject *)o;
	struct areq *r = self->r;
	PyObject *status_o, *headers;
	struct op *op;
	long status;

	if (!PyArg_ParseTuple(args, "OO", &status_o, &headers))
		return NULL;
	if (r->l_started) {
		PyErr_SetString(PyExc_RuntimeError,
				"ASGI: 'http.response.start' sent twice for one request");
		return NULL;
	}
	if (!PyLong_Check(status_o) || (status = PyLong_AsLong(status_o)) < 100 || status > 599) {
		PyErr_Format(PyExc_TypeError,
			     "ASGI: 'http.response.start' status must be an int in 100..599, got %R",
			     status_o);
		return NULL;
	}
	op = headers_op(headers);
	if (!op)
		return NULL;
	op->kind = OP_START;
	op->status = (int)status;
	r->l_started = 1;
	pthread_mutex_lock(&r->mu);
	if (r->x)
		push_op(r, op);
	else
		free(op);
	pthread_mutex_unlock(&r->mu);
	Py_RETURN_NONE;
}

/*
 * send(body, more_body) -> True when the caller must wait for wfut (the
 * queue is over the high-water mark), else False.
 */
static PyObject *req_send(PyObject *o, PyObject *args)
{
	ReqObject *self = (ReqObject *)o;
	struct areq *r = self->r;
	PyObject *body;
	const char *data;
	Py_ssize_t n;
	int more, wait = 0;
	struct op *op;

	if (!PyArg_ParseTuple(args, "Op", &body, &more))
		return NULL;
	if (!r->l_started) {
		PyErr_SetString(PyExc_RuntimeError,
				"ASGI: 'http.response.body' sent before 'http.response.start'");
		return NULL;
	}
	if (r->l_complete) {
		PyErr_SetString(PyExc_RuntimeError,
				"ASGI: 'http.response.body' sent after the response was complete");
		return NULL;
	}
	data = bytes_like(body, &n);
	if (!data) {
		PyErr_Format(PyExc_TypeError, "ASGI: 'http.response.body' body must be bytes, got %s",
			     Py_TYPE(body)->tp_name);
		return NULL;
	}
	if (!more)
		r->l_complete = 1;
	pthread_mutex_lock(&r->mu);
	if (!r->x || r->net_failed) {
		/* The client is gone: dropped, as uvicorn does (receive() says disconnect). */
		pthread_mutex_unlock(&r->mu);
		Py_RETURN_FALSE;
	}
	pthread_mutex_unlock(&r->mu);
	op = malloc(sizeof(*op) + (size_t)n);
	if (!op)
		return PyErr_NoMemory();
	memset(op, 0, sizeof(*op));
	op->kind = OP_BODY;
	op->more = more;
	op->len = (size_t)n;
	memcpy(op->data, data, (size_t)n);
	pthread_mutex_lock(&r->mu);
	if (r->x) {
		push_op(r, op);
		r->queued += (size_t)n;
		if (more && r->queued > MSE_ASGI_HIGH_WATER) {
			r->wait_drain = 1;
			wait = 1;
		}
	} else {
		free(op);
	}
	pthread_mutex_unlock(&r->mu);
	return PyBool_FromLong(wait);
}

static PyObject *ws_done(struct areq *r, const char *tb);

/* done(traceback or None): the app returned (or raised). */
static PyObject *req_done(PyObject *o, PyObject *tb_o)
{
	ReqObject *self = (ReqObject *)o;
	struct areq *r = self->r;
	const char *tb = NULL;
	struct op *op;

	if (tb_o != Py_None && !(tb = PyUnicode_AsUTF8(tb_o)))
		return NULL;
	if (r->ws)
		return ws_done(r, tb);
	if (tb) {
		mse_pyhost_log_lines(MSE_LOG_ERROR, "app: ", tb);
	} else if (!r->l_started) {
		mse_error("app: returned without sending a response");
	} else if (!r->l_complete) {
		mse_error("app: returned before its response was complete");
	}
	op = calloc(1, sizeof(*op));
	if (op) {
		op->kind = OP_DONE;
		if (tb)
			op->tb = strdup(tb);
	}
	pthread_mutex_lock(&r->mu);
	r->app_done = 1;
	if (op && r->x && (!r->l_complete || tb)) {
		push_op(r, op);
	} else if (op) {
		free(op->tb);
		free(op);
	}
	pthread_mutex_unlock(&r->mu);
	Py_RETURN_NONE;
}


/* ---- WebSocket methods (loop thread, GIL held) ---------------------------- */

static PyObject *req_ws(PyObject *o, PyObject *unused)
{
	(void)unused;
	return PyBool_FromLong(((ReqObject *)o)->r->ws);
}

/* ws_accept(headers): websocket.accept (the subprotocol is among the headers). */
static PyObject *req_ws_accept(PyObject *o, PyObject *headers)
{
	struct areq *r = ((ReqObject *)o)->r;
	struct op *op;

	if (r->ws_accepted || r->ws_closing) {
		PyErr_SetString(PyExc_RuntimeError, r->ws_accepted
							    ? "ASGI: 'websocket.accept' sent twice"
							    : "ASGI: 'websocket.accept' after 'websocket.close'");
		return NULL;
	}
	op = headers_op(headers);
	if (!op)
		return NULL;
	op->kind = OP_WS_ACCEPT;
	r->ws_accepted = 1;
	pthread_mutex_lock(&r->mu);
	if (r->x)
		push_op(r, op);
	else
		free(op);
	pthread_mutex_unlock(&r->mu);
	Py_RETURN_NONE;
}

/* Queues a send or close for the WebSocket thread. */
static int ws_queue(struct areq *r, struct op *op, int *wait)
{
	int kick = 0;

	pthread_mutex_lock(&r->mu);
	if (r->ws_gone) {
		free(op);
	} else {
		op->next = NULL;
		*r->wout_tail = op;
		r->wout_tail = &op->next;
		r->wout_bytes += op->len;
		if (wait && r->wout_bytes > MSE_ASGI_HIGH_WATER) {
			r->wait_drain = 1;
			*wait = 1;
		}
		kick = 1;
	}
	pthread_mutex_unlock(&r->mu);
	if (kick)
		ws_kick(r); /* before the upgrade the thread finds no stream yet: the server thread kicks again */
	return 0;
}

/* ws_send(text, data) -> True when the caller must wait for wfut. */
static PyObject *req_ws_send(PyObject *o, PyObject *args)
{
	struct areq *r = ((ReqObject *)o)->r;
	const char *data;
	Py_ssize_t n;
	int text, wait = 0;
	struct op *op;

	if (!PyArg_ParseTuple(args, "py#", &text, &data, &n))
		return NULL;
	if (!r->ws_accepted) {
		PyErr_SetString(PyExc_RuntimeError,
				"ASGI: 'websocket.send' before 'websocket.accept'");
		return NULL;
	}
	if (r->ws_closing) {
		PyErr_SetString(PyExc_RuntimeError, "ASGI: 'websocket.send' after 'websocket.close'");
		return NULL;
	}
	op = malloc(sizeof(*op) + (size_t)n);
	if (!op)
		return PyErr_NoMemory();
	memset(op, 0, sizeof(*op));
	op->kind = OP_WS_SEND;
	op->more = text;
	op->len = (size_t)n;
	memcpy(op->data, data, (size_t)n);
	ws_queue(r, op, &wait);
	return PyBool_FromLong(wait);
}

/* ws_close(code, reason): websocket.close (before accept: a 403). */
static PyObject *req_ws_close(PyObject *o, PyObject *args)
{
	struct areq *r = ((ReqObject *)o)->r;
	const char *reason;
	Py_ssize_t n;
	int code;
	struct op *op;

	if (!PyArg_ParseTuple(args, "iy#", &code, &reason, &n))
		return NULL;
	if (code < 1000 || code > 4999 || code == 1005 || code == 1006 || code == 1015) {
		PyErr_Format(PyExc_ValueError, "ASGI: 'websocket.close' code %d cannot be sent "
			     "(RFC 6455 §7.4: 1000..4999 but 1005, 1006, 1015)", code);
		return NULL;
	}
	if (r->ws_closing)
		Py_RETURN_NONE;
	if (n > 123)
		n = 123; /* a control frame carries 125 bytes: the code and 123 of reason */
	op = malloc(sizeof(*op) + (size_t)n);
	if (!op)
		return PyErr_NoMemory();
	memset(op, 0, sizeof(*op));
	op->kind = OP_WS_CLOSE;
	op->status = code;
	op->len = (size_t)n;
	memcpy(op->data, reason, (size_t)n);
	r->ws_closing = 1;
	if (!r->ws_accepted) {
		pthread_mutex_lock(&r->mu);
		if (r->x)
			push_op(r, op);
		else
			free(op);
		pthread_mutex_unlock(&r->mu);
		Py_RETURN_NONE;
	}
	op->len = (size_t)n;
	ws_queue(r, op, NULL);
	Py_RETURN_NONE;
}

/* The app of a WebSocket scope returned or raised. */
static PyObject *ws_done(struct areq *r, const char *tb)
{
	struct op *op;

	if (tb)
		mse_pyhost_log_lines(MSE_LOG_ERROR, "app: ", tb);
	if (r->ws_accepted) {
		/* Returned without closing: close it, 1000 (1011 if it raised). */
		if (!r->ws_closing) {
			op = calloc(1, sizeof(*op));
			if (op) {
				op->kind = OP_WS_CLOSE;
				op->status = tb ? 1011 : 1000;
				ws_queue(r, op, NULL);
			}
			r->ws_closing = 1;
			ws_kick(r);
		}
		pthread_mutex_lock(&r->mu);
		r->app_done = 1;
		pthread_mutex_unlock(&r->mu);
		Py_RETURN_NONE;
	}
	op = calloc(1, sizeof(*op));
	if (op) {
		op->kind = OP_DONE;
		if (tb)
			op->tb = strdup(tb);
	}
	pthread_mutex_lock(&r->mu);
	r->app_done = 1;
	if (op && r->x) {
		push_op(r, op);
	} else if (op) {
		free(op->tb);
		free(op);
	}
	pthread_mutex_unlock(&r->mu);
	Py_RETURN_NONE;
}

/*
 * ws_recv() -> (text, bytes) a message; None: wait for rfut; an int: the
 * connection is over with that code (websocket.disconnect).
 */
static PyObject *req_ws_recv(PyObject *o, PyObject *unused)
{
	struct areq *r = ((ReqObject *)o)->r;
	struct wsmsg *m;
	PyObject *res;
	int kick = 0;

	(void)unused;
	pthread_mutex_lock(&r->mu);
	m = r->win;
	if (!m) {
		int gone = r->ws_gone || (!r->x && !r->wsc && !r->upgraded && r->resp_done);
		uint16_t code = r->ws_code ? r->ws_code : 1006;

		pthread_mutex_unlock(&r->mu);
		if (gone)
			return PyLong_FromLong(code);
		Py_RETURN_NONE;
	}
	r->win = m->next;
	if (!r->win)
		r->win_tail = &r->win;
	/* Reading was paused on a full queue: room again. */
	kick = r->win_bytes >= WS_IN_LIMIT && r->win_bytes - m->len < WS_IN_LIMIT;
	r->win_bytes -= m->len;
	pthread_mutex_unlock(&r->mu);
	if (kick)
		ws_kick(r);
	res = Py_BuildValue("(Oy#)", m->text ? Py_True : Py_False, m->data, (Py_ssize_t)m->len);
	free(m);
	return res;
}

static PyMethodDef req_methods[] = {
	{"info", req_info, METH_NOARGS, NULL},
	{"body", req_body, METH_NOARGS, NULL},
	{"start", req_start, METH_VARARGS, NULL},
	{"send", req_send, METH_VARARGS, NULL},
	{"done", req_done, METH_O, NULL},
	{"ws", req_ws, METH_NOARGS, NULL},
	{"ws_accept", req_ws_accept, METH_O, NULL},
	{"ws_send", req_ws_send, METH_VARARGS, NULL},
	{"ws_close", req_ws_close, METH_VARARGS, NULL},
	{"ws_recv", req_ws_recv, METH_NOARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyMemberDef req_members[] = {
	{"rfut", T_OBJECT, offsetof(ReqObject, rfut), 0, NULL},
	{"wfut", T_OBJECT, offsetof(ReqObject, wfut), 0, NULL},
	{"task", T_OBJECT, offsetof(ReqObject, task), 0, NULL},
	{NULL, 0, 0, 0, NULL},
};

static PyTypeObject ReqType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_mse_asgi.Req",
	.tp_basicsize = sizeof(ReqObject),
	.tp_dealloc = req_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_methods = req_methods,
	.tp_members = req_members,
};

/* ---- the _mse_asgi module: the loop's side of the inbox ------------------- */

/* One bridge per process (Python is initialised once). */
static struct mse_asgi *g_asgi;

/*
 * drain() -> ([(req, events), ...], stopping): everything the server
 * threads posted since the last call, in one batch.
 */
static PyObject *mod_drain(PyObject *m, PyObject *unused)
{
	struct mse_asgi *a = g_asgi;
	struct areq *list, *r, *next;
	PyObject *out, *res;
	uint64_t cnt;
	int stopping;

	(void)m;
	(void)unused;
	while (read(a->efd, &cnt, sizeof(cnt)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&a->inbox_mu);
	list = a->inbox;
	a->inbox = NULL;
	a->inbox_tail = &a->inbox;
	stopping = a->stop_posted;
	for (r = list; r; r = r->next_in_inbox) {
		r->queued_in_inbox = 0;
		/* evmask moves to the loop's copy: the server thread may post again. */
		r->l_ev = r->evmask;
		r->evmask = 0;
	}
	pthread_mutex_unlock(&a->inbox_mu);

	out = PyList_New(0);
	for (r = list; r; r = next) {
		PyObject *t;

		next = r->next_in_inbox;
		if (out && (r->l_ev & EV_NEW)) {
			ReqObject *o = PyObject_New(ReqObject, &ReqType);

			if (o) {
				o->r = r; /* takes the inbox's reference */
				atomic_fetch_add(&r->refs, 1);
				o->rfut = Py_NewRef(Py_None);
				o->wfut = Py_NewRef(Py_None);
				o->task = Py_NewRef(Py_None);
				r->py = (PyObject *)o;
			} else {
				/* Cannot even start: the server thread answers 500. */
				PyErr_Clear();
				pthread_mutex_lock(&r->mu);
				struct op *op = calloc(1, sizeof(*op));

				if (op) {
					op->kind = OP_DONE;
					push_op(r, op);
				}
				pthread_mutex_unlock(&r->mu);
			}
		}
		if (out && r->py) {
			t = Py_BuildValue("(OI)", r->py, r->l_ev);
			if (!t || PyList_Append(out, t) != 0)
				Py_CLEAR(out);
			Py_XDECREF(t);
			if (r->l_ev & EV_NEW)
				Py_DECREF(r->py); /* the list holds it now */
		}
		areq_unref(r);
	}
	if (!out)
		return NULL;
	res = Py_BuildValue("(NO)", out, stopping ? Py_True : Py_False);
	return res;
}

/* started(ok, message): lifespan startup is over; mse_asgi_init may return. */
static PyObject *mod_started(PyObject *m, PyObject *args)
{
	struct mse_asgi *a = g_asgi;
	int ok;
	const char *msg = NULL;

	(void)m;
	if (!PyArg_ParseTuple(args, "pz", &ok, &msg))
		return NULL;
	pthread_mutex_lock(&a->st_mu);
	a->st_state = ok ? 1 : -1;
	snprintf(a->st_msg, sizeof(a->st_msg), "%s", msg ? msg : "");
	pthread_cond_broadcast(&a->st_cv);
	pthread_mutex_unlock(&a->st_mu);
	Py_RETURN_NONE;
}

/* log(level, text): 0 info, 1 warning, 2 error; one log line per text line. */
static PyObject *mod_log(PyObject *m, PyObject *args)
{
	int lvl;
	const char *text;

	(void)m;
	if (!PyArg_ParseTuple(args, "is", &lvl, &text))
		return NULL;
	mse_pyhost_log_lines(lvl == 0 ? MSE_LOG_INFO : lvl == 1 ? MSE_LOG_WARN : MSE_LOG_ERROR,
			     "app: ", text);
	Py_RETURN_NONE;
}

static PyMethodDef mod_methods[] = {
	{"drain", mod_drain, METH_NOARGS, NULL},
	{"started", mod_started, METH_VARARGS, NULL},
	{"log", mod_log, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef mod_def = {
	PyModuleDef_HEAD_INIT, "_mse_asgi", NULL, -1, mod_methods, NULL, NULL, NULL, NULL,
};

/*
 * The loop, in Python: lifespan, one task per request, receive() and send()
 * over the Req methods. `m` is the _mse_asgi module (fd, drain, started,
 * log); ver is 2 or 3 (the app's ASGI version).
 */
static const char driver_src[] =
	"import asyncio, traceback\n"
	"from urllib.parse import unquote\n"
	"BODY, DRAINED, GONE = 2, 4, 8\n"
	"def _last(tb):\n"
	"    lines = [l for l in (tb or '').splitlines() if l.strip()]\n"
	"    return lines[-1] if lines else 'unknown error'\n"
	"class _Lifespan:\n"
	"    def __init__(self, app, ver, state):\n"
	"        self.app, self.ver, self.state = app, ver, state\n"
	"        self.inq, self.outq = asyncio.Queue(), asyncio.Queue()\n"
	"        self.sent = self.received = False\n"
	"        self.error = None\n"
	"    async def receive(self):\n"
	"        m = await self.inq.get()\n"
	"        self.received = True\n"
	"        return m\n"
	"    async def send(self, msg):\n"
	"        self.sent = True\n"
	"        await self.outq.put(msg)\n"
	"    async def main(self):\n"
	"        scope = {'type': 'lifespan', 'asgi': {'version': '%d.0' % self.ver,\n"
	"                 'spec_version': '2.0'}, 'state': self.state}\n"
	"        try:\n"
	"            if self.ver == 2:\n"
	"                await self.app(scope)(self.receive, self.send)\n"
	"            else:\n"
	"                await self.app(scope, self.receive, self.send)\n"
	"        except BaseException:\n"
	"            self.error = traceback.format_exc()\n"
	"        finally:\n"
	"            await self.outq.put(None)\n"
	"    async def step(self, what):\n"
	"        await self.inq.put({'type': 'lifespan.' + what})\n"
	"        msg = await self.outq.get()\n"
	"        if msg is None:\n"
	"            if what == 'startup' and not self.sent and not self.received:\n"
	"                return 'unsupported', self.error\n"
	"            if self.error:\n"
	"                return 'failed', self.error\n"
	"            return 'failed', 'the app returned during lifespan.%s' % what\n"
	"        t = msg.get('type') if isinstance(msg, dict) else None\n"
	"        if t == 'lifespan.%s.complete' % what:\n"
	"            return 'ok', None\n"
	"        if t == 'lifespan.%s.failed' % what:\n"
	"            return 'failed', str(msg.get('message', ''))\n"
	"        return 'failed', 'unexpected ASGI message %r during lifespan.%s' % (t, what)\n"
	"async def _http(m, loop, req, app, ver, state):\n"
	"    try:\n"
	"        method, hv, scheme, raw_path, qs, headers, client, server = req.info()\n"
	"        scope = {'type': 'http', 'asgi': {'version': '%d.0' % ver, 'spec_version': '2.3'},\n"
	"                 'http_version': hv, 'method': method, 'scheme': scheme,\n"
	"                 'path': unquote(raw_path.decode('latin-1')), 'raw_path': raw_path,\n"
	"                 'query_string': qs, 'root_path': '', 'headers': headers,\n"
	"                 'client': client, 'server': server}\n"
	"        if state is not None:\n"
	"            scope['state'] = state.copy()\n"
	"        async def receive():\n"
	"            while True:\n"
	"                r = req.body()\n"
	"                if r is None:\n"
	"                    f = req.rfut\n"
	"                    if f is None or f.done():\n"
	"                        f = req.rfut = loop.create_future()\n"
	"                    await f\n"
	"                    continue\n"
	"                if r is False:\n"
	"                    return {'type': 'http.disconnect'}\n"
	"                return {'type': 'http.request', 'body': r[0], 'more_body': r[1]}\n"
	"        async def send(message):\n"
	"            t = message['type']\n"
	"            if t == 'http.response.body':\n"
	"                if req.send(message.get('body', b''), message.get('more_body', False)):\n"
	"                    f = req.wfut = loop.create_future()\n"
	"                    await f\n"
	"            elif t == 'http.response.start':\n"
	"                req.start(message['status'], message.get('headers', ()))\n"
	"            else:\n"
	"                raise RuntimeError('ASGI: unexpected message %r on an http scope' % (t,))\n"
	"        if ver == 2:\n"
	"            await app(scope)(receive, send)\n"
	"        else:\n"
	"            await app(scope, receive, send)\n"
	"    except BaseException as e:\n"
	"        req.done(traceback.format_exc())\n"
	"        if not isinstance(e, Exception):\n"
	"            raise\n"
	"    else:\n"
	"        req.done(None)\n"
	"async def _ws(m, loop, req, app, ver, state):\n"
	"    try:\n"
	"        method, hv, scheme, raw_path, qs, headers, client, server = req.info()\n"
	"        subs = []\n"
	"        for k, v in headers:\n"
	"            if k == b'sec-websocket-protocol':\n"
	"                subs += [p.strip() for p in v.decode('latin-1').split(',') if p.strip()]\n"
	"        scope = {'type': 'websocket', 'asgi': {'version': '%d.0' % ver, 'spec_version': '2.3'},\n"
	"                 'http_version': hv, 'scheme': 'wss' if scheme == 'https' else 'ws',\n"
	"                 'path': unquote(raw_path.decode('latin-1')), 'raw_path': raw_path,\n"
	"                 'query_string': qs, 'root_path': '', 'headers': headers,\n"
	"                 'client': client, 'server': server, 'subprotocols': subs}\n"
	"        if state is not None:\n"
	"            scope['state'] = state.copy()\n"
	"        connected = False\n"
	"        async def receive():\n"
	"            nonlocal connected\n"
	"            if not connected:\n"
	"                connected = True\n"
	"                return {'type': 'websocket.connect'}\n"
	"            while True:\n"
	"                r = req.ws_recv()\n"
	"                if r is None:\n"
	"                    f = req.rfut\n"
	"                    if f is None or f.done():\n"
	"                        f = req.rfut = loop.create_future()\n"
	"                    await f\n"
	"                    continue\n"
	"                if isinstance(r, int):\n"
	"                    return {'type': 'websocket.disconnect', 'code': r}\n"
	"                if r[0]:\n"
	"                    try:\n"
	"                        return {'type': 'websocket.receive', 'text': r[1].decode('utf-8')}\n"
	"                    except UnicodeDecodeError:\n"
	"                        req.ws_close(1007, b'invalid UTF-8')\n"
	"                        return {'type': 'websocket.disconnect', 'code': 1007}\n"
	"                return {'type': 'websocket.receive', 'bytes': r[1]}\n"
	"        async def send(message):\n"
	"            t = message['type']\n"
	"            if t == 'websocket.send':\n"
	"                text, data = message.get('text'), message.get('bytes')\n"
	"                if text is not None:\n"
	"                    w = req.ws_send(True, text.encode('utf-8'))\n"
	"                elif data is not None:\n"
	"                    w = req.ws_send(False, data)\n"
	"                else:\n"
	"                    raise RuntimeError(\"ASGI: 'websocket.send' needs 'text' or 'bytes'\")\n"
	"                if w:\n"
	"                    f = req.wfut = loop.create_future()\n"
	"                    await f\n"
	"            elif t == 'websocket.accept':\n"
	"                hdrs = list(message.get('headers') or ())\n"
	"                sub = message.get('subprotocol')\n"
	"                if sub is not None:\n"
	"                    hdrs.append((b'sec-websocket-protocol', sub.encode('latin-1')))\n"
	"                req.ws_accept(hdrs)\n"
	"            elif t == 'websocket.close':\n"
	"                reason = message.get('reason') or ''\n"
	"                req.ws_close(message.get('code', 1000), reason.encode('utf-8'))\n"
	"            else:\n"
	"                raise RuntimeError('ASGI: unexpected message %r on a websocket scope' % (t,))\n"
	"        if ver == 2:\n"
	"            await app(scope)(receive, send)\n"
	"        else:\n"
	"            await app(scope, receive, send)\n"
	"    except BaseException as e:\n"
	"        req.done(traceback.format_exc())\n"
	"        if not isinstance(e, Exception):\n"
	"            raise\n"
	"    else:\n"
	"        req.done(None)\n"
	"async def _serve(m, loop, app, ver, drain_s):\n"
	"    state = {}\n"
	"    ls = _Lifespan(app, ver, state)\n"
	"    ls_task = loop.create_task(ls.main())\n"
	"    kind, msg = await ls.step('startup')\n"
	"    if kind == 'unsupported':\n"
	"        m.log(0, 'lifespan: not supported by the app (%s): serving without it' % _last(msg))\n"
	"        ls = None\n"
	"    elif kind == 'failed':\n"
	"        if ls.error:\n"
	"            m.log(2, ls.error)\n"
	"        m.started(False, _last(msg) if ls.error else msg)\n"
	"        await asyncio.wait([ls_task], timeout=1)\n"
	"        return\n"
	"    tasks = set()\n"
	"    stop = loop.create_future()\n"
	"    def wake():\n"
	"        reqs, stopping = m.drain()\n"
	"        for req, ev in reqs:\n"
	"            if ev & 1:\n"
	"                h = _ws if req.ws() else _http\n"
	"                t = req.task = loop.create_task(h(m, loop, req, app, ver, state))\n"
	"                tasks.add(t)\n"
	"                t.add_done_callback(tasks.discard)\n"
	"            if ev & (BODY | GONE):\n"
	"                f = req.rfut\n"
	"                if f is not None and not f.done():\n"
	"                    f.set_result(None)\n"
	"            if ev & (DRAINED | GONE):\n"
	"                f = req.wfut\n"
	"                if f is not None and not f.done():\n"
	"                    f.set_result(None)\n"
	"        if stopping and not stop.done():\n"
	"            stop.set_result(None)\n"
	"    loop.add_reader(m.fd, wake)\n"
	"    m.started(True, None)\n"
	"    await stop\n"
	"    if tasks:\n"
	"        m.log(0, 'waiting for %d app task(s) to finish' % len(tasks))\n"
	"        done, pending = await asyncio.wait(set(tasks), timeout=drain_s)\n"
	"        for t in pending:\n"
	"            t.cancel()\n"
	"        if pending:\n"
	"            m.log(1, '%d app task(s) cancelled at shutdown' % len(pending))\n"
	"            await asyncio.wait(pending, timeout=1)\n"
	"    loop.remove_reader(m.fd)\n"
	"    if ls is not None:\n"
	"        try:\n"
	"            kind, msg = await asyncio.wait_for(ls.step('shutdown'), drain_s)\n"
	"        except asyncio.TimeoutError:\n"
	"            kind, msg = 'failed', 'no answer to lifespan.shutdown in %g s' % drain_s\n"
	"        if kind != 'ok':\n"
	"            m.log(1, 'lifespan shutdown: %s' % (msg,))\n"
	"        await asyncio.wait([ls_task], timeout=1)\n"
	"def run(m, app, ver, drain_s):\n"
	"    loop = asyncio.new_event_loop()\n"
	"    asyncio.set_event_loop(loop)\n"
	"    try:\n"
	"        loop.run_until_complete(_serve(m, loop, app, ver, drain_s))\n"
	"        loop.run_until_complete(loop.shutdown_asyncgens())\n"
	"    finally:\n"
	"        asyncio.set_event_loop(None)\n"
	"        loop.close()\n";

static void *loop_main(void *p)
{
	struct mse_asgi *a = p;
	PyThreadState *ts = PyThreadState_New(PyThreadState_GetInterpreter(a->main_ts));
	PyObject *res;

	if (!ts) {
		pthread_mutex_lock(&a->st_mu);
		a->st_state = -1;
		snprintf(a->st_msg, sizeof(a->st_msg), "cannot create the loop's Python thread");
		pthread_cond_broadcast(&a->st_cv);
		pthread_mutex_unlock(&a->st_mu);
		return NULL;
	}
	PyEval_RestoreThread(ts);
	res = PyObject_CallFunction(a->run, "OOid", a->mod, a->app,
				    a->iface == MSE_IFACE_ASGI2 ? 2 : 3, a->drain_ms / 1000.0);
	if (!res) {
		char *tb = mse_pyhost_traceback();
		const char *last;
		int n;

		mse_pyhost_log_lines(MSE_LOG_ERROR, "asgi loop: ", tb ? tb : "(no traceback)");
		mse_pyhost_last_line(tb, &last, &n);
		pthread_mutex_lock(&a->st_mu);
		if (a->st_state == 0) {
			a->st_state = -1;
			snprintf(a->st_msg, sizeof(a->st_msg), "the event loop failed: %.*s", n, last);
		}
		pthread_cond_broadcast(&a->st_cv);
		pthread_mutex_unlock(&a->st_mu);
		free(tb);
	} else if (a->st_state == 0) {
		pthread_mutex_lock(&a->st_mu);
		a->st_state = -1;
		snprintf(a->st_msg, sizeof(a->st_msg), "the event loop ended before serving");
		pthread_cond_broadcast(&a->st_cv);
		pthread_mutex_unlock(&a->st_mu);
	}
	Py_XDECREF(res);
	PyThreadState_Clear(ts);
	PyThreadState_DeleteCurrent();
	return NULL;
}

static void clear_python(struct mse_asgi *a)
{
	Py_CLEAR(a->run);
	Py_CLEAR(a->mod);
	Py_CLEAR(a->app);
}

int mse_asgi_init(const struct mse_asgi_config *cfg, struct mse_asgi **out, struct mse_err *err)
{
	struct mse_asgi *a;
	PyObject *ns = NULL, *rv = NULL;
	sigset_t all, old;
	int rc = -1;

	*out = NULL;
	if (g_asgi)
		return mse_err_set(err, "the ASGI bridge runs once per process");
	if (cfg->iface != MSE_IFACE_ASGI3 && cfg->iface != MSE_IFACE_ASGI2)
		return mse_err_field(err, "app_interface", "the ASGI bridge serves asgi3 or asgi2, "
				     "not %s", mse_pyhost_iface_name(cfg->iface));
	a = calloc(1, sizeof(*a));
	if (!a)
		return mse_err_set(err, "out of memory");
	a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->efd < 0) {
		mse_err_set(err, "eventfd: %s", strerror(errno));
		free(a);
		return -1;
	}
	pthread_mutex_init(&a->inbox_mu, NULL);
	pthread_mutex_init(&a->ws_mu, NULL);
	a->ws_ep = a->ws_efd = -1;
	a->ws_max_msg = cfg->ws_max_msg ? cfg->ws_max_msg : MSE_ASGI_WS_MAX_MSG;
	pthread_mutex_init(&a->st_mu, NULL);
	pthread_cond_init(&a->st_cv, NULL);
	a->inbox_tail = &a->inbox;
	a->iface = cfg->iface;
	a->debug = cfg->debug;
	a->drain_ms = cfg->drain_timeout_ms > 0 ? cfg->drain_timeout_ms : 10000;
	atomic_init(&a->stop_at_ms, 0);
	g_asgi = a;

	PyEval_RestoreThread(mse_pyhost_main_ts(cfg->host));
	a->app = mse_pyhost_app(cfg->host);
	Py_INCREF(a->app);
	if (PyType_Ready(&ReqType) < 0 || !(a->mod = PyModule_Create(&mod_def)) ||
	    PyModule_AddIntConstant(a->mod, "fd", a->efd) != 0)
		goto pyfail;
	ns = PyDict_New();
	if (!ns || PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) != 0 ||
	    PyDict_SetItemString(ns, "__name__", PyModule_GetNameObject(a->mod)) != 0)
		goto pyfail;
	rv = PyRun_String(driver_src, Py_file_input, ns, ns);
	if (!rv || !(a->run = PyDict_GetItemString(ns, "run")))
		goto pyfail;
	Py_INCREF(a->run);
	Py_CLEAR(rv);
	Py_CLEAR(ns);
	a->main_ts = PyEval_SaveThread();

	/* The loop thread takes no signal: the server's handler owns SIGTERM/SIGINT. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&a->thread, NULL, loop_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		mse_err_set(err, "cannot start the event loop thread: %s", strerror(rc));
		rc = -1;
		goto fail;
	}
	a->thread_started = 1;
	pthread_mutex_lock(&a->st_mu);
	while (a->st_state == 0)
		pthread_cond_wait(&a->st_cv, &a->st_mu);
	pthread_mutex_unlock(&a->st_mu);
	if (a->st_state < 0) {
		mse_err_step(err, "lifespan");
		mse_err_set(err, "the app failed to start (lifespan.startup): %s", a->st_msg);
		rc = -1;
		goto fail;
	}
	*out = a;
	return 0;
pyfail: {
	char *tb = mse_pyhost_traceback();

	mse_err_set(err, "python setup of the ASGI bridge failed: %s", tb ? tb : "unknown error");
	free(tb);
	Py_XDECREF(rv);
	Py_XDECREF(ns);
	a->main_ts = PyEval_SaveThread();
}
fail:
	mse_asgi_free(a);
	return -1;
}

void mse_asgi_free(struct mse_asgi *a)
{
	if (!a)
		return;
	/* WebSockets first: their apps see websocket.disconnect (1001) and end. */
	pthread_mutex_lock(&a->ws_mu);
	a->ws_stop = 1;
	pthread_mutex_unlock(&a->ws_mu);
	if (a->ws_started) {
		ws_wake(a->ws_efd);
		pthread_join(a->ws_thread, NULL);
		close(a->ws_ep);
		close(a->ws_efd);
	}
	if (a->thread_started) {
		pthread_mutex_lock(&a->inbox_mu);
		a->stop_posted = 1;
		pthread_mutex_unlock(&a->inbox_mu);
		wake_loop(a);
		pthread_join(a->thread, NULL);
	}
	PyEval_RestoreThread(a->main_ts);
	clear_python(a);
	a->main_ts = PyEval_SaveThread();
	close(a->efd);
	pthread_mutex_destroy(&a->inbox_mu);
	pthread_mutex_destroy(&a->ws_mu);
	pthread_mutex_destroy(&a->st_mu);
	pthread_cond_destroy(&a->st_cv);
	g_asgi = NULL;
	free(a);
}
