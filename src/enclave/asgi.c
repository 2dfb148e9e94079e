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
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* Events for the loop (areq.evmask). */
#define EV_NEW 1u     /* a request: start the app */
#define EV_BODY 2u    /* a body chunk (or its end, or a read error) is there */
#define EV_DRAINED 4u /* the queued response bytes went below the low mark */
#define EV_GONE 8u    /* response complete or client gone: http.disconnect */

enum op_kind { OP_START, OP_BODY, OP_DONE };

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

	/* loop thread only (GIL) */
	PyObject *py; /* the Req object, borrowed (it owns a reference to us) */
	int l_started, l_complete, l_eof_said;

	/* server thread only */
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
	case OP_DONE:
		if (!x->started) {
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
	ts.tv_sec += 1;
	pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	return 0;
}

int mse_asgi_handle(struct mse_exchange *x, void *user)
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
	r->declared = -1;
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
	r->resp_done = 1;
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
					    q->minor_version == 0 ? "1.0" : "1.1", path, query,
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

/* start(status, headers): http.response.start (ASGI HTTP "Response Start"). */
static PyObject *req_start(PyObject *o, PyObject *args)
{
	ReqObject *self = (ReqObject *)o;
	struct areq *r = self->r;
	PyObject *status_o, *headers, *seq = NULL;
	struct op *op = NULL;
	size_t total = 0, nh = 0, off;
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
	seq = PySequence_Fast(headers, "ASGI: 'http.response.start' headers must be iterable");
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
	op->kind = OP_START;
	op->status = (int)status;
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
	r->l_started = 1;
	pthread_mutex_lock(&r->mu);
	if (r->x)
		push_op(r, op);
	else
		free(op);
	pthread_mutex_unlock(&r->mu);
	Py_RETURN_NONE;
fail:
	Py_XDECREF(seq);
	free(op);
	return NULL;
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

/* done(traceback or None): the app returned (or raised). */
static PyObject *req_done(PyObject *o, PyObject *tb_o)
{
	ReqObject *self = (ReqObject *)o;
	struct areq *r = self->r;
	const char *tb = NULL;
	struct op *op;

	if (tb_o != Py_None && !(tb = PyUnicode_AsUTF8(tb_o)))
		return NULL;
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

static PyMethodDef req_methods[] = {
	{"info", req_info, METH_NOARGS, NULL},
	{"body", req_body, METH_NOARGS, NULL},
	{"start", req_start, METH_VARARGS, NULL},
	{"send", req_send, METH_VARARGS, NULL},
	{"done", req_done, METH_O, NULL},
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
	"                t = req.task = loop.create_task(_http(m, loop, req, app, ver, state))\n"
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
	pthread_mutex_destroy(&a->st_mu);
	pthread_cond_destroy(&a->st_cv);
	g_asgi = NULL;
	free(a);
}
