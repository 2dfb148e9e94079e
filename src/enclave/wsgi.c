/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WSGI bridge. PEP 3333 is the spec cited throughout ("PEP 3333 §x").
 *
 * Locking: every Python object here is touched only with the GIL held. The
 * GIL is released (Py_BEGIN_ALLOW_THREADS) exactly around the exchange ops,
 * which may block on the network; the buffers handed to them are either
 * private to the request or immutable bytes/str objects we hold a reference
 * to, so no other thread can change them meanwhile.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "enclave/wsgi.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/version.h"
#include "enclave/pyhost.h"
#include "net/http.h"

#define INPUT_BUF 16384
#define ERRLINE_MAX 4096

/* Environ keys built once (interned), indexed by enum env_key. */
enum env_key {
	K_REQUEST_METHOD,
	K_SCRIPT_NAME,
	K_PATH_INFO,
	K_QUERY_STRING,
	K_CONTENT_TYPE,
	K_CONTENT_LENGTH,
	K_SERVER_NAME,
	K_SERVER_PORT,
	K_SERVER_PROTOCOL,
	K_SERVER_SOFTWARE,
	K_REMOTE_ADDR,
	K_REMOTE_PORT,
	K_REQUEST_URI,
	K_RAW_URI,
	K_WSGI_VERSION,
	K_WSGI_URL_SCHEME,
	K_WSGI_INPUT,
	K_WSGI_INPUT_TERMINATED,
	K_WSGI_ERRORS,
	K_WSGI_MULTITHREAD,
	K_WSGI_MULTIPROCESS,
	K_WSGI_RUN_ONCE,
	K_WSGI_FILE_WRAPPER,
	K_COUNT
};

static const char *const env_key_names[K_COUNT] = {
	"REQUEST_METHOD",  "SCRIPT_NAME",	"PATH_INFO",	     "QUERY_STRING",
	"CONTENT_TYPE",	   "CONTENT_LENGTH",	"SERVER_NAME",	     "SERVER_PORT",
	"SERVER_PROTOCOL", "SERVER_SOFTWARE",	"REMOTE_ADDR",	     "REMOTE_PORT",
	"REQUEST_URI",	   "RAW_URI",		"wsgi.version",	     "wsgi.url_scheme",
	"wsgi.input",	   "wsgi.input_terminated", "wsgi.errors",   "wsgi.multithread",
	"wsgi.multiprocess", "wsgi.run_once",	"wsgi.file_wrapper",
};

/* Request methods whose environ value is built once (RFC 9110 §9). */
static const char *const method_names[] = {"GET", "POST", "HEAD", "PUT", "DELETE", "PATCH",
					   "OPTIONS"};
#define N_METHODS (sizeof(method_names) / sizeof(method_names[0]))
/* Request fields whose HTTP_ key is built once (interned); others are
 * spelled per request. Lower case, as compared case-insensitively. */
static const char *const hdr_names[] = {
	"host",		   "user-agent",    "accept",	     "accept-encoding", "accept-language",
	"connection",	   "cookie",	    "authorization", "cache-control",	"origin",
	"referer",	   "x-forwarded-for", "x-forwarded-proto", "x-real-ip",	"x-request-id",
	"if-none-match",   "if-modified-since", "upgrade",   "pragma",		"content-encoding",
	"sec-fetch-mode",  "sec-fetch-site", "sec-fetch-dest", "dnt",		"te",
};
#define N_HDRS (sizeof(hdr_names) / sizeof(hdr_names[0]))

struct mse_wsgi {
	PyObject *app;
	PyObject *methods[N_METHODS];
	PyObject *hkeys[N_HDRS];
	unsigned char hlens[N_HDRS];
	PyObject *file_wrapper; /* class */
	PyObject *errors;	/* the wsgi.errors stream (one, shared) */
	PyObject *keys[K_COUNT];
	PyObject *version; /* (1, 0) */
	PyObject *s_close, *s_http, *s_https, *s_empty, *s_http10, *s_http11, *s_http2, *s_software;
	PyInterpreterState *interp;
	PyThreadState *main_ts;
	pthread_t main_thread;
	struct mse_pyhost *host;
	int own_host; /* started by mse_wsgi_init (no host given): finalised by mse_wsgi_free */
	int debug;
};

/* ---- per-request state (C stack of the handler) ------------------------ */

struct wsgi_req {
	struct mse_exchange *x;
	struct mse_wsgi *w;
	PyObject *status;  /* str given to start_response, NULL before */
	PyObject *headers; /* list of (str, str) given to start_response */
	int headers_sent;
	int64_t declared_len; /* Content-Length the app gave, -1 if none */
	uint64_t sent;	      /* body bytes written */
	int status_code;
	int close_conn; /* close the connection after this exchange */
	int net_failed; /* an exchange op failed: the client is gone */
	int truncated;	/* app wrote past its Content-Length */
	size_t ilen, ioff; /* read-ahead: ibuf[ioff, ilen) */
	uint64_t taken;	   /* body bytes read from the exchange (ibuf included) */
	int eof, body_failed, busy;
	char cl_buf[24]; /* Content-Length we add for one-element results */
	struct deferred *def; /* the last piece, sent once the GIL is released */
	/* A worker thread's slot for the app's bytes object a deferred piece
	 * was sent from (see defer()); NULL: deferred pieces are copied. */
	PyObject **held;
	/* request body read-ahead, for readline; last: not zeroed per request */
	char ibuf[INPUT_BUF];
};

/*
 * What a server thread keeps from one request to the next (worker threads
 * only: created with the thread's Python thread state, freed with it): the
 * request state with its 16 KiB read-ahead buffer, the wsgi.input and
 * start_response objects (reused when the app kept no reference), and the
 * environ strings that repeat between requests. The GIL guards the objects.
 */
struct tcache {
	PyObject *input; /* InputObject */
	PyObject *sr;	 /* StartResponseObject */
	PyObject *server_name, *server_port, *remote_addr;
	/* The bytes object the last response was sent from, without the GIL:
	 * released when the thread next holds it (at its next request or its
	 * end), so at most one response body (<= DEFER_MAX) per thread. */
	PyObject *held;
	char server_name_c[256], remote_addr_c[64];
	unsigned server_port_n;
	int req_busy;
	struct wsgi_req req; /* last: its ibuf is never zeroed */
};

/* ---- thread states ------------------------------------------------------ */

static pthread_key_t g_ts_key;
static pthread_once_t g_ts_once = PTHREAD_ONCE_INIT;
static __thread PyThreadState *t_ts;
static __thread struct tcache *t_cache;

static void tcache_clear(struct tcache *tc)
{
	Py_CLEAR(tc->input);
	Py_CLEAR(tc->sr);
	Py_CLEAR(tc->server_name);
	Py_CLEAR(tc->server_port);
	Py_CLEAR(tc->remote_addr);
	Py_CLEAR(tc->held);
}

/* A server thread ends: drop its Python thread state (needs the GIL). */
static void ts_destroy(void *p)
{
	PyThreadState *ts = p;
	struct tcache *tc = t_cache;

	t_cache = NULL;
	/* After Py_FinalizeEx the interpreter already freed every thread state
	 * (and every object the cache held). */
	if (!ts || !Py_IsInitialized()) {
		free(tc);
		return;
	}
	PyEval_RestoreThread(ts);
	if (tc)
		tcache_clear(tc);
	free(tc);
	PyThreadState_Clear(ts);
	PyThreadState_DeleteCurrent();
}

static void ts_key_create(void)
{
	if (pthread_key_create(&g_ts_key, ts_destroy) != 0)
		abort();
}

/*
 * One Python thread state per server thread, kept for the thread's life:
 * PyGILState_Ensure/Release would create and destroy one per request.
 */
static PyThreadState *thread_state(struct mse_wsgi *w)
{
	if (t_ts)
		return t_ts;
	if (pthread_equal(pthread_self(), w->main_thread))
		return w->main_ts;
	pthread_once(&g_ts_once, ts_key_create);
	t_ts = PyThreadState_New(w->interp);
	if (t_ts)
		pthread_setspecific(g_ts_key, t_ts);
	return t_ts;
}

/* ---- logging of Python exceptions --------------------------------------- */

/* Logs the pending exception with the request it broke; returns the text (caller frees). */
static char *log_exception(struct wsgi_req *r, const char *what)
{
	char *tb = mse_pyhost_traceback();
	const struct mse_http_request *q = r->x->req;

	mse_error("app: %s on %.*s %.*s", what, (int)q->method_len, q->method, (int)q->target_len,
		  q->target);
	mse_pyhost_log_lines(MSE_LOG_ERROR, "app: ", tb ? tb : "(no traceback)");
	return tb;
}

/* ---- wsgi.errors -------------------------------------------------------- */

typedef struct {
	PyObject_HEAD
	char line[ERRLINE_MAX];
	size_t len;
} ErrorsObject;

static void errors_emit(ErrorsObject *self)
{
	if (self->len)
		mse_error("app: %.*s", (int)self->len, self->line);
	self->len = 0;
}

/* Buffers until a newline so one print() is one log line (GIL held: no race). */
static int errors_put(ErrorsObject *self, PyObject *s)
{
	Py_ssize_t n;
	const char *p;

	if (!PyUnicode_Check(s)) {
		PyErr_Format(PyExc_TypeError, "wsgi.errors.write() needs str, not %.100s",
			     Py_TYPE(s)->tp_name);
		return -1;
	}
	p = PyUnicode_AsUTF8AndSize(s, &n);
	if (!p)
		return -1;
	for (Py_ssize_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			errors_emit(self);
			continue;
		}
		if (self->len == sizeof(self->line))
			errors_emit(self);
		self->line[self->len++] = p[i];
	}
	return 0;
}

static PyObject *errors_write(PyObject *self, PyObject *s)
{
	if (errors_put((ErrorsObject *)self, s) != 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *errors_writelines(PyObject *self, PyObject *seq)
{
	PyObject *it = PyObject_GetIter(seq), *item;

	if (!it)
		return NULL;
	while ((item = PyIter_Next(it)) != NULL) {
		int rc = errors_put((ErrorsObject *)self, item);

		Py_DECREF(item);
		if (rc != 0) {
			Py_DECREF(it);
			return NULL;
		}
	}
	Py_DECREF(it);
	if (PyErr_Occurred())
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *errors_flush(PyObject *self, PyObject *unused)
{
	(void)unused;
	errors_emit((ErrorsObject *)self);
	Py_RETURN_NONE;
}

static PyMethodDef errors_methods[] = {
	{"write", errors_write, METH_O, "Write a str to the server's error log."},
	{"writelines", errors_writelines, METH_O, "Write each str of a sequence."},
	{"flush", errors_flush, METH_NOARGS, "Emit a pending partial line."},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject ErrorsType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mse.ErrorStream",
	.tp_basicsize = sizeof(ErrorsObject),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "wsgi.errors: lines go to the error log",
	.tp_methods = errors_methods,
	.tp_new = NULL,
};

/* ---- wsgi.input ----------------------------------------------------------- */

typedef struct {
	PyObject_HEAD
	struct wsgi_req *r; /* NULL once the request is over */
} InputObject;

static struct wsgi_req *input_req(InputObject *self)
{
	if (!self->r) {
		PyErr_SetString(PyExc_ValueError, "wsgi.input used after its request ended");
		return NULL;
	}
	if (self->r->busy) {
		PyErr_SetString(PyExc_RuntimeError, "wsgi.input read from two threads at once");
		return NULL;
	}
	return self->r;
}

/*
 * Reads up to n bytes straight from the exchange, GIL released. With fill
 * (read() and readinto(), which wait for n bytes anyway) it reads on until
 * n bytes came or the body ended, the GIL released once for all of them:
 * a streamed TLS body arrives one 16 KiB record per read, and every
 * hand-over of the GIL may be a switch to another server thread and back.
 * Without fill (readline), what one read gives. Returns the count, 0 at
 * the end of the body, -1 with an exception set (the body failed: what was
 * read of it is dropped, the server answers 400, 408 or 413).
 */
static Py_ssize_t body_read_raw(struct wsgi_req *r, char *dst, size_t n, int fill)
{
	ssize_t got = 0, k;

	if (r->eof)
		return 0;
	r->busy = 1;
	Py_BEGIN_ALLOW_THREADS
	do {
		k = mse_exchange_read_body(r->x, dst + got, n - (size_t)got);
		if (k <= 0)
			break;
		got += k;
	} while (fill && (size_t)got < n);
	Py_END_ALLOW_THREADS
	r->busy = 0;
	if (k < 0) {
		r->eof = 1;
		r->body_failed = 1;
		r->close_conn = 1;
		PyErr_SetString(PyExc_OSError,
				"request body: the client went away, timed out or sent a bad chunk");
		return -1;
	}
	if (k == 0)
		r->eof = 1;
	r->taken += (uint64_t)got;
	return got;
}

/* Refills the read-ahead buffer if empty; returns bytes available, 0 at end, -1. */
static Py_ssize_t body_fill(struct wsgi_req *r)
{
	Py_ssize_t got;

	if (r->ioff < r->ilen)
		return (Py_ssize_t)(r->ilen - r->ioff);
	r->ioff = r->ilen = 0;
	got = body_read_raw(r, r->ibuf, sizeof(r->ibuf), 0);
	if (got > 0)
		r->ilen = (size_t)got;
	return got;
}

/* Parses the optional size argument: None or negative means "no limit".
 * METH_FASTCALL: no argument tuple is built per call. */
static int parse_size(const char *name, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t *size)
{
	PyObject *o = nargs > 0 ? args[0] : Py_None;

	if (nargs > 1) {
		PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (%zd given)", name,
			     nargs);
		return -1;
	}
	if (o == Py_None) {
		*size = -1;
		return 0;
	}
	*size = PyNumber_AsSsize_t(o, PyExc_OverflowError);
	if (*size == -1 && PyErr_Occurred())
		return -1;
	return 0;
}

/* read(size=-1): up to size bytes (fewer only at the end of the body). */
static PyObject *input_read(PyObject *o, PyObject *const *args, Py_ssize_t nargs)
{
	struct wsgi_req *r = input_req((InputObject *)o);
	Py_ssize_t size, have = 0, cap;
	PyObject *out;

	if (!r || parse_size("read", args, nargs, &size) != 0)
		return NULL;
	/*
	 * A body of known length (Content-Length, not chunked): read() or a
	 * read past its end takes exactly what is left, so the result is
	 * allocated at its size and no read waits for an end already known
	 * (Flask's get_data() is read(): a 64 KiB body was read into 64 KiB,
	 * grown to 128 KiB for the empty read that found the end, then shrunk).
	 */
	if (!r->x->req->chunked && r->x->req->content_length >= 0) {
		uint64_t cl = (uint64_t)r->x->req->content_length;
		uint64_t left = (cl > r->taken ? cl - r->taken : 0) + (r->ilen - r->ioff);

		if (left < (uint64_t)PY_SSIZE_T_MAX && (size < 0 || (uint64_t)size > left))
			size = (Py_ssize_t)left;
	}
	/*
	 * Grow as the bytes come, whatever size was asked: read(10**9) on a
	 * small body (or a client lying about its Content-Length) must not
	 * allocate 1 GB up front.
	 */
	cap = size >= 0 && size < 4 * INPUT_BUF ? size : 4 * INPUT_BUF;
	out = PyBytes_FromStringAndSize(NULL, cap);
	if (!out)
		return NULL;
	for (;;) {
		Py_ssize_t got;

		if (size >= 0 && have == size)
			break;
		if (have == cap) {
			cap = cap * 2;
			if (size >= 0 && cap > size)
				cap = size;
			if (_PyBytes_Resize(&out, cap) != 0)
				return NULL;
		}
		if (r->ioff < r->ilen) {
			got = (Py_ssize_t)(r->ilen - r->ioff);
			if (got > cap - have)
				got = cap - have;
			memcpy(PyBytes_AS_STRING(out) + have, r->ibuf + r->ioff, (size_t)got);
			r->ioff += (size_t)got;
		} else {
			/* Large reads go straight into the result: no extra copy. */
			got = body_read_raw(r, PyBytes_AS_STRING(out) + have, (size_t)(cap - have), 1);
			if (got < 0) {
				Py_DECREF(out);
				return NULL;
			}
			if (got == 0)
				break;
		}
		have += got;
	}
	if (have != cap && _PyBytes_Resize(&out, have) != 0)
		return NULL;
	return out;
}

/*
 * readinto(b): fills the writable buffer b (a bytearray, memoryview, numpy
 * array...) from the body, fewer bytes only at its end; returns the count,
 * 0 at the end. One copy: the body goes from the connection (TLS record or
 * socket) straight into b, the GIL released meanwhile, so an app that
 * reuses one buffer streams any size at memory speed without allocating.
 */
static PyObject *input_readinto(PyObject *o, PyObject *arg)
{
	struct wsgi_req *r = input_req((InputObject *)o);
	Py_buffer view;
	Py_ssize_t have = 0;

	if (!r)
		return NULL;
	if (PyObject_GetBuffer(arg, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) != 0)
		return NULL;
	while (have < view.len) {
		Py_ssize_t got;

		if (r->ioff < r->ilen) {
			got = (Py_ssize_t)(r->ilen - r->ioff);
			if (got > view.len - have)
				got = view.len - have;
			memcpy((char *)view.buf + have, r->ibuf + r->ioff, (size_t)got);
			r->ioff += (size_t)got;
		} else {
			got = body_read_raw(r, (char *)view.buf + have, (size_t)(view.len - have), 1);
			if (got < 0) {
				PyBuffer_Release(&view);
				return NULL;
			}
			if (got == 0)
				break;
		}
		have += got;
	}
	PyBuffer_Release(&view);
	return PyLong_FromSsize_t(have);
}

/* readline(size=-1): up to and including the next b"\n", at most size bytes. */
static PyObject *input_readline_impl(struct wsgi_req *r, Py_ssize_t size)
{
	Py_ssize_t have = 0, cap = 256;
	PyObject *out = PyBytes_FromStringAndSize(NULL, cap);

	if (!out)
		return NULL;
	while (size < 0 || have < size) {
		Py_ssize_t avail = body_fill(r), take;
		const char *src, *nl;

		if (avail < 0) {
			Py_DECREF(out);
			return NULL;
		}
		if (avail == 0)
			break;
		src = r->ibuf + r->ioff;
		take = avail;
		if (size >= 0 && take > size - have)
			take = size - have;
		nl = memchr(src, '\n', (size_t)take);
		if (nl)
			take = nl - src + 1;
		if (have + take > cap) {
			while (have + take > cap)
				cap *= 2;
			if (_PyBytes_Resize(&out, cap) != 0)
				return NULL;
		}
		memcpy(PyBytes_AS_STRING(out) + have, src, (size_t)take);
		have += take;
		r->ioff += (size_t)take;
		if (nl)
			break;
	}
	if (_PyBytes_Resize(&out, have) != 0)
		return NULL;
	return out;
}

static PyObject *input_readline(PyObject *o, PyObject *const *args, Py_ssize_t nargs)
{
	struct wsgi_req *r = input_req((InputObject *)o);
	Py_ssize_t size;

	if (!r || parse_size("readline", args, nargs, &size) != 0)
		return NULL;
	return input_readline_impl(r, size);
}

/* readlines(hint=-1): lines until the end, or until hint bytes were read. */
static PyObject *input_readlines(PyObject *o, PyObject *const *args, Py_ssize_t nargs)
{
	struct wsgi_req *r = input_req((InputObject *)o);
	Py_ssize_t hint, total = 0;
	PyObject *list;

	if (!r || parse_size("readlines", args, nargs, &hint) != 0)
		return NULL;
	list = PyList_New(0);
	if (!list)
		return NULL;
	for (;;) {
		PyObject *line = input_readline_impl(r, -1);

		if (!line) {
			Py_DECREF(list);
			return NULL;
		}
		if (PyBytes_GET_SIZE(line) == 0) {
			Py_DECREF(line);
			break;
		}
		total += PyBytes_GET_SIZE(line);
		if (PyList_Append(list, line) != 0) {
			Py_DECREF(line);
			Py_DECREF(list);
			return NULL;
		}
		Py_DECREF(line);
		if (hint > 0 && total >= hint)
			break;
	}
	return list;
}

static PyObject *input_iter(PyObject *o)
{
	Py_INCREF(o);
	return o;
}

static PyObject *input_next(PyObject *o)
{
	struct wsgi_req *r = input_req((InputObject *)o);
	PyObject *line;

	if (!r)
		return NULL;
	line = input_readline_impl(r, -1);
	if (line && PyBytes_GET_SIZE(line) == 0) {
		Py_DECREF(line);
		return NULL; /* StopIteration */
	}
	return line;
}

static PyMethodDef input_methods[] = {
	{"read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL, "read(size=-1) -> bytes"},
	{"readinto", input_readinto, METH_O, "readinto(buffer) -> number of bytes read"},
	{"readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL,
	 "readline(size=-1) -> bytes"},
	{"readlines", (PyCFunction)(void (*)(void))input_readlines, METH_FASTCALL,
	 "readlines(hint=-1) -> list of bytes"},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject InputType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mse.InputStream",
	.tp_basicsize = sizeof(InputObject),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "wsgi.input: the request body, streamed from the connection",
	.tp_iter = input_iter,
	.tp_iternext = input_next,
	.tp_methods = input_methods,
};

/* ---- response: status and headers -------------------------------------- */

/* RFC 9110 §5.5 field-value characters: VCHAR, obs-text, SP, HTAB. */
static int is_vchar_or_ws(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* A str holding only latin-1 code points: its data is the wire bytes (PEP 393). */
static const char *latin1_data(PyObject *s, Py_ssize_t *len)
{
	if (!PyUnicode_Check(s) || PyUnicode_READY(s) != 0 ||
	    PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND)
		return NULL;
	*len = PyUnicode_GET_LENGTH(s);
	return (const char *)PyUnicode_1BYTE_DATA(s);
}

static int hop_by_hop(const char *name, Py_ssize_t n)
{
	/* RFC 9110 §7.6.1; PEP 3333 forbids apps to send them. */
	static const char *const hop[] = {"connection",		 "keep-alive", "proxy-authenticate",
					  "proxy-authorization", "te",	       "trailer",
					  "trailers",		 "transfer-encoding", "upgrade"};

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if ((size_t)n == strlen(hop[i]) && strncasecmp(name, hop[i], (size_t)n) == 0)
			return 1;
	return 0;
}

/* Validates status "NNN reason"; returns the code or -1 with an exception. */
static int check_status(PyObject *status)
{
	Py_ssize_t n;
	const char *s;
	int code;

	if (!PyUnicode_Check(status)) {
		PyErr_Format(PyExc_TypeError, "status must be str, not %.100s",
			     Py_TYPE(status)->tp_name);
		return -1;
	}
	s = latin1_data(status, &n);
	/* 1xx are interim responses (RFC 9110 §15.2): never a WSGI app's final one. */
	if (!s || n < 4 || s[3] != ' ' || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' ||
	    s[2] < '0' || s[2] > '9') {
		PyErr_Format(PyExc_ValueError,
			     "status must look like \"200 OK\" (3 digits 200-599, a space, a "
			     "reason), got %R",
			     status);
		return -1;
	}
	for (Py_ssize_t i = 4; i < n; i++)
		if (!is_vchar_or_ws((unsigned char)s[i]) || s[i] == '\t') {
			PyErr_Format(PyExc_ValueError, "status reason has a control character: %R",
				     status);
			return -1;
		}
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	return code;
}

/*
 * Validates the header list (PEP 3333 "The start_response() Callable") and
 * returns a new list without hop-by-hop headers; reports Content-Length and
 * Connection: close. NULL with an exception on bad input.
 */
static PyObject *check_headers(PyObject *headers, int64_t *declared, int *close_conn)
{
	PyObject *out;
	Py_ssize_t n, dropped = 0;

	*declared = -1;
	*close_conn = 0;
	if (!PyList_Check(headers)) {
		PyErr_Format(PyExc_TypeError, "response_headers must be a list, not %.100s",
			     Py_TYPE(headers)->tp_name);
		return NULL;
	}
	n = PyList_GET_SIZE(headers);
	/* Filled as checked: the common list without hop-by-hop fields is
	 * copied whole (one allocation, no append per field). */
	out = PyList_New(n);
	if (!out)
		return NULL;
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *t = PyList_GET_ITEM(headers, i);
		Py_ssize_t nl, vl;
		const char *name, *value;

		if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 2) {
			PyErr_Format(PyExc_TypeError,
				     "response header %zd must be a (name, value) tuple, got %R", i,
				     t);
			goto fail;
		}
		name = latin1_data(PyTuple_GET_ITEM(t, 0), &nl);
		value = latin1_data(PyTuple_GET_ITEM(t, 1), &vl);
		if (!name || !value) {
			PyErr_Format(PyExc_TypeError,
				     "response header %R: name and value must be latin-1 str", t);
			goto fail;
		}
		if (nl == 0) {
			PyErr_SetString(PyExc_ValueError, "response header with an empty name");
			goto fail;
		}
		if (!mse_http_valid_token(name, (size_t)nl)) {
			PyErr_Format(PyExc_ValueError,
				     "response header name %R has a character not allowed in a "
				     "token (RFC 9110 §5.6.2)",
				     PyTuple_GET_ITEM(t, 0));
			goto fail;
		}
		for (Py_ssize_t k = 0; k < vl; k++)
			if (!is_vchar_or_ws((unsigned char)value[k])) {
				PyErr_Format(PyExc_ValueError,
					     "response header %R: value has a control character "
					     "(CR, LF or NUL are never allowed)",
					     PyTuple_GET_ITEM(t, 0));
				goto fail;
			}
		if (hop_by_hop(name, nl)) {
			if (nl == 10 && vl == 5 && strncasecmp(value, "close", 5) == 0)
				*close_conn = 1;
			mse_debug("app: dropped hop-by-hop response header %.*s", (int)nl, name);
			dropped++;
			continue;
		}
		if (nl == 14 && strncasecmp(name, "content-length", 14) == 0) {
			int64_t v = 0;

			if (vl == 0 || vl > 18 || *declared >= 0)
				goto bad_cl;
			for (Py_ssize_t k = 0; k < vl; k++) {
				if (value[k] < '0' || value[k] > '9')
					goto bad_cl;
				v = v * 10 + (value[k] - '0');
			}
			*declared = v;
		}
		Py_INCREF(t);
		PyList_SET_ITEM(out, i - dropped, t);
	}
	if (dropped && PyList_SetSlice(out, n - dropped, n, NULL) != 0)
		goto fail;
	return out;
bad_cl:
	PyErr_SetString(PyExc_ValueError,
			"Content-Length must be one decimal number of at most 18 digits");
fail:
	Py_DECREF(out);
	return NULL;
}

/*
 * The last piece of a response whose length is known, kept out of Python
 * so it can be sent after the GIL is released for good: a typical request
 * then takes the GIL once and hands it over once, instead of once per
 * write (each hand-over is a context switch between server threads).
 */
#define DEFER_MAX (256 * 1024)

struct deferred {
	int need_start;
	int status;
	const char *reason;
	struct mse_http_header *hdrs;
	size_t nh;
	const char *body;
	size_t len;
	/* The bytes object body points into (a reference), or NULL: the body
	 * was copied after the headers. */
	PyObject *owner;
	/* headers, then the strings (and the copied body) they point to */
};

/*
 * Copies status and headers into one allocation; the body too, unless
 * owner (an exact bytes object holding it: immutable, so its buffer can be
 * read without the GIL) can be kept alive until it is sent: on a worker
 * thread (r->held) the body is sent straight from the app's buffer, no
 * copy. NULL if out of memory.
 */
static struct deferred *defer(struct wsgi_req *r, int need_start, const char *reason,
			      const struct mse_http_header *hdrs, size_t nh, const char *data,
			      size_t len, PyObject *owner)
{
	size_t size = sizeof(struct deferred) + nh * sizeof(*hdrs), rl = 0;
	struct deferred *d;
	char *p;

	if (reason)
		rl = strlen(reason) + 1;
	if (!r->held || !owner || !PyBytes_CheckExact(owner))
		owner = NULL;
	if (!owner)
		size += len;
	size += rl;
	for (size_t i = 0; i < nh; i++)
		size += hdrs[i].name_len + hdrs[i].value_len;
	d = malloc(size);
	if (!d)
		return NULL;
	d->need_start = need_start;
	d->status = r->status_code;
	d->hdrs = (struct mse_http_header *)(d + 1);
	d->nh = nh;
	p = (char *)(d->hdrs + nh);
	for (size_t i = 0; i < nh; i++) {
		d->hdrs[i].name = memcpy(p, hdrs[i].name, hdrs[i].name_len);
		d->hdrs[i].name_len = hdrs[i].name_len;
		p += hdrs[i].name_len;
		d->hdrs[i].value = memcpy(p, hdrs[i].value, hdrs[i].value_len);
		d->hdrs[i].value_len = hdrs[i].value_len;
		p += hdrs[i].value_len;
	}
	d->reason = reason ? memcpy(p, reason, rl) : NULL;
	p += rl;
	if (owner) {
		Py_INCREF(owner);
		d->body = data;
	} else {
		d->body = len ? memcpy(p, data, len) : p;
	}
	d->owner = owner;
	d->len = len;
	return d;
}

/* Sends what was deferred. GIL released. 0 or -1 (connection failed). */
static int flush_deferred(struct wsgi_req *r)
{
	struct deferred *d = r->def;
	int rc = 0;

	if (!d)
		return 0;
	r->def = NULL;
	if (d->need_start)
		rc = mse_exchange_start(r->x, d->status, d->reason, d->hdrs, d->nh);
	if (rc == 0 && d->len > 0)
		rc = mse_exchange_write(r->x, d->body, d->len);
	/* The thread drops it when it next holds the GIL (no hand-over now). */
	if (d->owner)
		*r->held = d->owner;
	free(d);
	if (rc != 0) {
		r->net_failed = 1;
		r->close_conn = 1;
	}
	return rc;
}

/* 1 once the body the app announced is complete (PEP 3333: stop iterating then). */
static int body_complete(const struct wsgi_req *r)
{
	return r->declared_len >= 0 && r->sent >= (uint64_t)r->declared_len;
}

/*
 * Sends the headers (if not sent yet) then data, GIL released around the
 * exchange — or, for the last piece of a known length, defers both to
 * after the app is done. add_len >= 0 adds a Content-Length the app did
 * not give. Returns 0, or -1 if the connection failed (no exception set).
 */
static int send_body(struct wsgi_req *r, const char *data, size_t len, int64_t add_len,
		     PyObject *owner)
{
	struct mse_http_header stack_hdrs[32], *hdrs = stack_hdrs;
	size_t nh = 0, cap = sizeof(stack_hdrs) / sizeof(stack_hdrs[0]);
	const char *reason = NULL;
	int need_start = !r->headers_sent, rc = 0;

	if (r->net_failed)
		return -1;
	if (r->declared_len >= 0 && r->sent + len > (uint64_t)r->declared_len) {
		/* PEP 3333: never send more than the Content-Length allows. */
		if (!r->truncated)
			mse_warn("app: response body longer than its Content-Length %lld: "
				 "truncated, connection closed",
				 (long long)r->declared_len);
		r->truncated = 1;
		r->close_conn = 1;
		len = (size_t)((uint64_t)r->declared_len - r->sent);
	}
	if (need_start) {
		Py_ssize_t n = PyList_GET_SIZE(r->headers), sl;
		const char *s = latin1_data(r->status, &sl);

		if ((size_t)n + 1 > cap) {
			cap = (size_t)n + 1;
			hdrs = malloc(cap * sizeof(*hdrs));
			if (!hdrs)
				return -1;
		}
		for (Py_ssize_t i = 0; i < n; i++) {
			PyObject *t = PyList_GET_ITEM(r->headers, i);
			Py_ssize_t nl, vl;

			hdrs[nh].name = latin1_data(PyTuple_GET_ITEM(t, 0), &nl);
			hdrs[nh].value = latin1_data(PyTuple_GET_ITEM(t, 1), &vl);
			hdrs[nh].name_len = (size_t)nl;
			hdrs[nh].value_len = (size_t)vl;
			nh++;
		}
		if (add_len >= 0 && r->declared_len < 0) {
			int k = snprintf(r->cl_buf, sizeof(r->cl_buf), "%lld", (long long)add_len);

			hdrs[nh].name = "Content-Length";
			hdrs[nh].name_len = 14;
			hdrs[nh].value = r->cl_buf;
			hdrs[nh].value_len = (size_t)k;
			nh++;
			r->declared_len = add_len;
		}
		/* The reason follows "NNN " and is NUL-terminated (PEP 393 data). */
		reason = sl > 4 ? s + 4 : NULL;
	}
	if (!r->def && len <= DEFER_MAX && r->declared_len >= 0 &&
	    r->sent + len == (uint64_t)r->declared_len) {
		r->def = defer(r, need_start, reason, hdrs, nh, data, len, owner);
		if (r->def) {
			if (hdrs != stack_hdrs)
				free(hdrs);
			r->headers_sent = 1;
			r->sent += len;
			return 0;
		}
	}
	Py_BEGIN_ALLOW_THREADS
	if (need_start)
		rc = mse_exchange_start(r->x, r->status_code, reason, hdrs, nh);
	if (rc == 0 && len > 0)
		rc = mse_exchange_write(r->x, data, len);
	Py_END_ALLOW_THREADS
	if (hdrs != stack_hdrs)
		free(hdrs);
	if (need_start)
		r->headers_sent = 1;
	if (rc != 0) {
		r->net_failed = 1;
		r->close_conn = 1;
		return -1;
	}
	r->sent += len;
	return 0;
}

/* ---- start_response and write() ----------------------------------------- */

/* The legacy write() callable (PEP 3333 "The write() Callable"): its own
 * object, so start_response can hand out the same one on every call
 * instead of a new bound method, and no reference cycle forms. */
typedef struct {
	PyObject_HEAD
	struct wsgi_req *r; /* NULL once the request is over */
} WriteObject;

typedef struct {
	PyObject_HEAD
	vectorcallfunc vectorcall;
	struct wsgi_req *r; /* NULL once the request is over */
	PyObject *write;    /* WriteObject, owned */
} StartResponseObject;

static PyObject *wr_call(PyObject *o, PyObject *args, PyObject *kwds)
{
	struct wsgi_req *r = ((WriteObject *)o)->r;
	PyObject *data;

	if (!PyArg_ParseTuple(args, "O:write", &data) ||
	    (kwds && PyDict_GET_SIZE(kwds) != 0 &&
	     (PyErr_SetString(PyExc_TypeError, "write() takes no keyword arguments"), 1)))
		return NULL;
	if (!r) {
		PyErr_SetString(PyExc_RuntimeError, "write() called after its request ended");
		return NULL;
	}
	if (!r->status) {
		PyErr_SetString(PyExc_AssertionError, "write() called before start_response()");
		return NULL;
	}
	if (!PyBytes_Check(data)) {
		PyErr_Format(PyExc_TypeError, "write() needs bytes, not %.100s",
			     Py_TYPE(data)->tp_name);
		return NULL;
	}
	if (send_body(r, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data), -1, data) != 0) {
		PyErr_SetString(PyExc_OSError, "write(): the client connection is gone");
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyTypeObject WriteType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mse.Write",
	.tp_basicsize = sizeof(WriteObject),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "write(data): send body bytes now",
	.tp_call = wr_call,
};

static int sr_impl(StartResponseObject *self, PyObject *status, PyObject *headers,
		   PyObject *exc_info)
{
	struct wsgi_req *r = self->r;
	PyObject *checked;
	int64_t declared;
	int code, close_conn;

	if (!r) {
		PyErr_SetString(PyExc_RuntimeError, "start_response() called after its request ended");
		return -1;
	}
	if (exc_info != Py_None) {
		/* PEP 3333: with exc_info, after headers went out, re-raise it. */
		if (r->headers_sent) {
			PyObject *t, *v, *tb;

			if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
				PyErr_SetString(PyExc_TypeError, "exc_info must be a 3-tuple");
				return -1;
			}
			t = PyTuple_GET_ITEM(exc_info, 0);
			v = PyTuple_GET_ITEM(exc_info, 1);
			tb = PyTuple_GET_ITEM(exc_info, 2);
			Py_INCREF(t);
			Py_INCREF(v);
			if (tb == Py_None)
				tb = NULL;
			Py_XINCREF(tb);
			PyErr_Restore(t, v, tb);
			return -1;
		}
	} else if (r->status) {
		PyErr_SetString(PyExc_AssertionError,
				"start_response() called a second time without exc_info");
		return -1;
	}
	code = check_status(status);
	if (code < 0)
		return -1;
	checked = check_headers(headers, &declared, &close_conn);
	if (!checked)
		return -1;
	Py_INCREF(status);
	Py_XSETREF(r->status, status);
	Py_XSETREF(r->headers, checked);
	r->status_code = code;
	r->declared_len = declared;
	if (close_conn)
		r->close_conn = 1;
	return 0;
}

/*
 * start_response(status, response_headers, exc_info=None), called through
 * vectorcall: no argument tuple or keyword dict per request.
 */
static PyObject *sr_vectorcall(PyObject *o, PyObject *const *args, size_t nargsf,
			       PyObject *kwnames)
{
	static const char *const names[3] = {"status", "response_headers", "exc_info"};
	StartResponseObject *self = (StartResponseObject *)o;
	Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	PyObject *a[3] = {NULL, NULL, Py_None};

	if (nargs > 3) {
		PyErr_Format(PyExc_TypeError,
			     "start_response() takes at most 3 arguments (%zd given)", nargs);
		return NULL;
	}
	for (Py_ssize_t i = 0; i < nargs; i++)
		a[i] = args[i];
	for (Py_ssize_t k = 0; k < nkw; k++) {
		PyObject *name = PyTuple_GET_ITEM(kwnames, k);
		int j = 0;

		while (j < 3 && PyUnicode_CompareWithASCIIString(name, names[j]) != 0)
			j++;
		if (j == 3 || j < nargs) {
			PyErr_Format(PyExc_TypeError,
				     j == 3 ? "start_response() got an unexpected keyword argument %R"
					    : "start_response() got multiple values for argument %R",
				     name);
			return NULL;
		}
		a[j] = args[nargs + k];
	}
	if (!a[0] || !a[1]) {
		PyErr_SetString(PyExc_TypeError,
				"start_response() missing required argument 'status' or "
				"'response_headers'");
		return NULL;
	}
	if (sr_impl(self, a[0], a[1], a[2]) != 0)
		return NULL;
	Py_INCREF(self->write);
	return self->write;
}

/* Kept for callers that look for it: start_response.write is write(). */
static PyObject *sr_get_write(PyObject *o, void *unused)
{
	(void)unused;
	Py_INCREF(((StartResponseObject *)o)->write);
	return ((StartResponseObject *)o)->write;
}

static PyGetSetDef sr_getset[] = {
	{"write", sr_get_write, NULL, "write(data): send body bytes now", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static void sr_dealloc(PyObject *o)
{
	Py_XDECREF(((StartResponseObject *)o)->write);
	PyObject_Free(o);
}

static PyTypeObject StartResponseType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mse.StartResponse",
	.tp_basicsize = sizeof(StartResponseObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
	.tp_doc = "start_response(status, headers, exc_info=None)",
	.tp_vectorcall_offset = offsetof(StartResponseObject, vectorcall),
	.tp_call = PyVectorcall_Call,
	.tp_dealloc = sr_dealloc,
	.tp_getset = sr_getset,
};

/* A new start_response (and its write), not tied to a request yet. */
static StartResponseObject *sr_new(void)
{
	StartResponseObject *sr = PyObject_New(StartResponseObject, &StartResponseType);
	WriteObject *wr;

	if (!sr)
		return NULL;
	sr->vectorcall = sr_vectorcall;
	sr->r = NULL;
	sr->write = NULL;
	wr = PyObject_New(WriteObject, &WriteType);
	if (!wr) {
		Py_DECREF(sr);
		return NULL;
	}
	wr->r = NULL;
	sr->write = (PyObject *)wr;
	return sr;
}

static void sr_bind(StartResponseObject *sr, struct wsgi_req *r)
{
	sr->r = r;
	((WriteObject *)sr->write)->r = r;
}

/* ---- environ ------------------------------------------------------------ */

static int env_put(PyObject *env, PyObject *key, PyObject *value)
{
	int rc;

	if (!value)
		return -1;
	rc = PyDict_SetItem(env, key, value);
	Py_DECREF(value);
	return rc;
}

static PyObject *latin1(const char *s, size_t n)
{
	return PyUnicode_DecodeLatin1(s, (Py_ssize_t)n, NULL);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * PATH_INFO: the path percent-decoded, bytes as latin-1 (PEP 3333 "Unicode
 * Issues"; WSGI servers decode it, CGI-style). An absolute-form target
 * (RFC 9112 §3.2.2) loses its scheme and authority.
 */
static PyObject *path_info(const char *p, size_t n)
{
	char stack[512], *buf = stack;
	size_t o = 0;
	PyObject *s;

	if (n > 7 && (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0)) {
		const char *a = memchr(p, ':', n) + 3, *slash;

		slash = memchr(a, '/', n - (size_t)(a - p));
		if (!slash)
			return PyUnicode_FromString("/");
		n -= (size_t)(slash - p);
		p = slash;
	}
	if (n == 0)
		return PyUnicode_FromString("");
	if (!memchr(p, '%', n))
		return latin1(p, n); /* nothing to decode: no copy */
	if (n > sizeof(stack)) {
		buf = malloc(n);
		if (!buf)
			return PyErr_NoMemory();
	}
	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (p[i] == '%' && i + 2 < n && (hi = hexval(p[i + 1])) >= 0 &&
		    (lo = hexval(p[i + 2])) >= 0) {
			buf[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			buf[o++] = p[i];
		}
	}
	s = latin1(buf, o);
	if (buf != stack)
		free(buf);
	return s;
}

/* Adds one request header as HTTP_NAME (or CONTENT_TYPE), joining repeats. */
static int env_header(struct mse_wsgi *w, PyObject *env, const struct mse_http_header *h,
		      int *have_ctype)
{
	char stack[128], *key = stack;
	size_t kl = 5 + h->name_len;
	PyObject *k = NULL, *v = NULL, *old;
	int rc = -1, is_cookie;

	for (size_t i = 0; i < h->name_len; i++)
		if (h->name[i] == '_')
			return 0; /* would alias the '-' spelling (header spoofing) */
	if (h->name_len == 14 && strncasecmp(h->name, "content-length", 14) == 0)
		return 0; /* CONTENT_LENGTH comes from the parsed request */
	if (h->name_len == 12 && strncasecmp(h->name, "content-type", 12) == 0) {
		if (*have_ctype)
			return 0;
		*have_ctype = 1;
		v = latin1(h->value, h->value_len);
		if (!v)
			return -1;
		rc = PyDict_SetItem(env, w->keys[K_CONTENT_TYPE], v);
		Py_DECREF(v);
		return rc;
	}
	for (size_t i = 0; i < N_HDRS && !k; i++)
		if (w->hlens[i] == h->name_len &&
		    strncasecmp(h->name, hdr_names[i], h->name_len) == 0) {
			k = w->hkeys[i];
			Py_INCREF(k);
		}
	if (!k) {
		if (kl > sizeof(stack)) {
			key = malloc(kl);
			if (!key) {
				PyErr_NoMemory();
				return -1;
			}
		}
		memcpy(key, "HTTP_", 5);
		for (size_t i = 0; i < h->name_len; i++) {
			char c = h->name[i];

			key[5 + i] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
		}
		k = latin1(key, kl);
	}
	v = latin1(h->value, h->value_len);
	if (!k || !v)
		goto out;
	old = PyDict_GetItemWithError(env, k);
	if (old) {
		/* RFC 9110 §5.3: repeats combine with ", "; cookies with "; " (RFC 6265 §5.4). */
		PyObject *joined;

		is_cookie = h->name_len == 6 && strncasecmp(h->name, "cookie", 6) == 0;
		joined = PyUnicode_FromFormat("%U%s%U", old, is_cookie ? "; " : ", ", v);
		if (!joined)
			goto out;
		Py_SETREF(v, joined);
	} else if (PyErr_Occurred()) {
		goto out;
	}
	rc = PyDict_SetItem(env, k, v);
out:
	Py_XDECREF(k);
	Py_XDECREF(v);
	if (key != stack)
		free(key);
	return rc;
}

/* A str for a decimal number. */
static PyObject *decimal(unsigned long long v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%llu", v);

	return latin1(num, (size_t)n);
}

/* The cached str for a C string that repeats between requests (the Host
 * name, the client address), rebuilt when it changed. New reference. */
static PyObject *cached_str(PyObject **obj, char *cache, size_t cap, const char *v)
{
	size_t n = strlen(v);

	if (n >= cap)
		return latin1(v, n); /* too long to remember */
	if (!*obj || strcmp(cache, v) != 0) {
		PyObject *o = latin1(v, n);

		if (!o)
			return NULL;
		Py_XSETREF(*obj, o);
		memcpy(cache, v, n + 1);
	}
	Py_INCREF(*obj);
	return *obj;
}

/* The request method: a prebuilt str for the common ones. New reference. */
static PyObject *method_str(struct mse_wsgi *w, const char *m, size_t n)
{
	for (size_t i = 0; i < N_METHODS; i++)
		if (strlen(method_names[i]) == n && memcmp(m, method_names[i], n) == 0) {
			Py_INCREF(w->methods[i]);
			return w->methods[i];
		}
	return latin1(m, n);
}

/*
 * PEP 3333 "environ Variables". Strings that do not depend on the request
 * are built once (keys interned, constants prebuilt), and tc (the thread's
 * cache, or NULL) keeps those that repeat from request to request.
 */
static PyObject *build_environ(struct wsgi_req *r, PyObject *input, struct tcache *tc)
{
	struct mse_wsgi *w = r->w;
	const struct mse_http_request *q = r->x->req;
	const struct mse_conn_info *c = r->x->conn;
	PyObject **K = w->keys, *env, *target = NULL, *v;
	int have_ctype = 0;

	/* Presized: 23 keys and the fields, no rehash while it fills. */
	env = _PyDict_NewPresized((Py_ssize_t)(K_COUNT + q->num_headers));
	if (!env)
		return NULL;
	target = latin1(q->target, q->target_len);
	if (!target)
		goto fail;
	if (env_put(env, K[K_REQUEST_METHOD], method_str(w, q->method, q->method_len)) ||
	    PyDict_SetItem(env, K[K_SCRIPT_NAME], w->s_empty) ||
	    env_put(env, K[K_PATH_INFO], path_info(q->path, q->path_len)) ||
	    (q->query_len ? env_put(env, K[K_QUERY_STRING], latin1(q->query, q->query_len))
			  : PyDict_SetItem(env, K[K_QUERY_STRING], w->s_empty)) ||
	    PyDict_SetItem(env, K[K_REQUEST_URI], target) ||
	    PyDict_SetItem(env, K[K_RAW_URI], target))
		goto fail;
	if (tc)
		v = cached_str(&tc->server_name, tc->server_name_c, sizeof(tc->server_name_c),
			       c->server_name);
	else
		v = latin1(c->server_name, strlen(c->server_name));
	if (env_put(env, K[K_SERVER_NAME], v))
		goto fail;
	if (tc) {
		if (!tc->server_port || tc->server_port_n != c->server_port) {
			Py_XSETREF(tc->server_port, decimal(c->server_port));
			tc->server_port_n = c->server_port;
			if (!tc->server_port)
				goto fail;
		}
		Py_INCREF(tc->server_port);
		v = tc->server_port;
	} else {
		v = decimal(c->server_port);
	}
	if (env_put(env, K[K_SERVER_PORT], v))
		goto fail;
	if (tc)
		v = cached_str(&tc->remote_addr, tc->remote_addr_c, sizeof(tc->remote_addr_c),
			       c->remote_addr);
	else
		v = latin1(c->remote_addr, strlen(c->remote_addr));
	if (env_put(env, K[K_REMOTE_ADDR], v) ||
	    env_put(env, K[K_REMOTE_PORT], decimal(c->remote_port)) ||
	    PyDict_SetItem(env, K[K_SERVER_PROTOCOL],
			   q->http2 ? w->s_http2 : q->minor_version ? w->s_http11 : w->s_http10) ||
	    PyDict_SetItem(env, K[K_SERVER_SOFTWARE], w->s_software) ||
	    PyDict_SetItem(env, K[K_WSGI_VERSION], w->version) ||
	    PyDict_SetItem(env, K[K_WSGI_URL_SCHEME], c->is_tls ? w->s_https : w->s_http) ||
	    PyDict_SetItem(env, K[K_WSGI_INPUT], input) ||
	    PyDict_SetItem(env, K[K_WSGI_INPUT_TERMINATED], Py_True) ||
	    PyDict_SetItem(env, K[K_WSGI_ERRORS], w->errors) ||
	    PyDict_SetItem(env, K[K_WSGI_MULTITHREAD], Py_True) ||
	    PyDict_SetItem(env, K[K_WSGI_MULTIPROCESS], Py_False) ||
	    PyDict_SetItem(env, K[K_WSGI_RUN_ONCE], Py_False) ||
	    PyDict_SetItem(env, K[K_WSGI_FILE_WRAPPER], w->file_wrapper))
		goto fail;
	if (q->content_length >= 0 &&
	    env_put(env, K[K_CONTENT_LENGTH], decimal((unsigned long long)q->content_length)))
		goto fail;
	for (size_t i = 0; i < q->num_headers; i++)
		if (env_header(w, env, &q->headers[i], &have_ctype) != 0)
			goto fail;
	Py_DECREF(target);
	return env;
fail:
	Py_XDECREF(target);
	Py_DECREF(env);
	return NULL;
}

/* ---- one request ---------------------------------------------------------- */

enum app_outcome {
	APP_OK,	    /* response complete, finish() still to call */
	APP_FAILED, /* exception before anything was sent: answer 500 */
	APP_BROKEN, /* exception or network error after the headers: close */
};

/* Sends one body chunk from the app; 0, or -1 with an exception set. */
static int send_item(struct wsgi_req *r, PyObject *item, int64_t add_len)
{
	if (!PyBytes_Check(item)) {
		PyErr_Format(PyExc_TypeError,
			     "the response iterable must yield bytes, it yielded %.100s",
			     Py_TYPE(item)->tp_name);
		return -1;
	}
	if (!r->status) {
		PyErr_SetString(PyExc_AssertionError,
				"the app returned body data without calling start_response()");
		return -1;
	}
	/* PEP 3333: headers wait for the first non-empty chunk. */
	if (PyBytes_GET_SIZE(item) == 0)
		return 0;
	if (send_body(r, PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item), add_len, item) !=
	    0) {
		PyErr_SetString(PyExc_OSError, "the client connection is gone");
		return -1;
	}
	return 0;
}

/*
 * wsgi.file_wrapper over a regular file (PEP 3333 "Optional Platform-Specific
 * File Handling"): after the headers, the file goes out from its current
 * position without the GIL at all, so a large download does not hand the
 * GIL back and forth per block. Returns 1 if it handled the response, 0 if
 * the object is not such a file (iterate it normally), -1 with an exception.
 */
static int send_file_wrapper(struct wsgi_req *r, PyObject *result)
{
	PyObject *filelike = NULL, *o = NULL;
	long long pos;
	uint64_t left;
	struct stat st;
	int fd, rc = 0, net = 0;
	char *buf;

	if (!PyObject_TypeCheck(result, (PyTypeObject *)r->w->file_wrapper) || !r->status)
		return 0;
	filelike = PyObject_GetAttrString(result, "filelike");
	if (!filelike)
		goto fallback;
	o = PyObject_CallMethod(filelike, "fileno", NULL);
	fd = o ? (int)PyLong_AsLong(o) : -1;
	Py_CLEAR(o);
	if (fd < 0 || PyErr_Occurred() || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto fallback;
	/* tell() is the logical position, whatever Python's buffer holds. */
	o = PyObject_CallMethod(filelike, "tell", NULL);
	pos = o ? PyLong_AsLongLong(o) : -1;
	Py_CLEAR(o);
	if (pos < 0 || PyErr_Occurred())
		goto fallback;
	Py_CLEAR(filelike);
	left = pos < st.st_size ? (uint64_t)(st.st_size - pos) : 0;
	if (r->declared_len >= 0 && left > (uint64_t)r->declared_len - r->sent)
		left = (uint64_t)r->declared_len - r->sent;
	/* Headers now (with the length if the app gave none), then the bytes. */
	if (send_body(r, NULL, 0, r->declared_len < 0 ? (int64_t)left : -1, NULL) != 0 || r->def) {
		if (r->net_failed) {
			PyErr_SetString(PyExc_OSError, "the client connection is gone");
			return -1;
		}
		return 1; /* an empty file: deferred headers carry it all */
	}
	buf = malloc(65536);
	if (!buf) {
		PyErr_NoMemory();
		return -1;
	}
	mse_debug("wsgi.file_wrapper: %llu bytes from offset %lld, without the GIL",
		  (unsigned long long)left, pos);
	Py_BEGIN_ALLOW_THREADS
	while (left > 0) {
		ssize_t n = pread(fd, buf, left < 65536 ? (size_t)left : 65536, (off_t)pos);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			rc = -1; /* shorter than it was: the Content-Length cannot be met */
			break;
		}
		if (mse_exchange_write(r->x, buf, (size_t)n) != 0) {
			net = 1;
			break;
		}
		pos += n;
		left -= (uint64_t)n;
		r->sent += (uint64_t)n;
	}
	Py_END_ALLOW_THREADS
	free(buf);
	if (net) {
		r->net_failed = 1;
		r->close_conn = 1;
		PyErr_SetString(PyExc_OSError, "the client connection is gone");
		return -1;
	}
	if (rc != 0) {
		PyErr_SetFromErrno(PyExc_OSError);
		return -1;
	}
	return 1;
fallback:
	PyErr_Clear();
	Py_XDECREF(filelike);
	return 0;
}

static int iterate(struct wsgi_req *r, PyObject *result)
{
	PyObject *it, *item;
	int fw;

	fw = send_file_wrapper(r, result);
	if (fw != 0)
		return fw < 0 ? -1 : 0;

	/* A one-element list or tuple has a known length (PEP 3333 "Handling the Content-Length Header"). */
	if ((PyList_CheckExact(result) || PyTuple_CheckExact(result)) &&
	    PySequence_Fast_GET_SIZE(result) == 1) {
		item = PySequence_Fast_GET_ITEM(result, 0);
		if (PyBytes_Check(item) && r->declared_len < 0) {
			int rc;

			Py_INCREF(item);
			rc = send_item(r, item, PyBytes_GET_SIZE(item));
			Py_DECREF(item);
			return rc;
		}
	}
	it = PyObject_GetIter(result);
	if (!it)
		return -1;
	while (!body_complete(r) && (item = PyIter_Next(it)) != NULL) {
		int rc = send_item(r, item, -1);

		Py_DECREF(item);
		if (rc != 0) {
			Py_DECREF(it);
			return -1;
		}
	}
	Py_DECREF(it);
	return PyErr_Occurred() ? -1 : 0;
}

/* Calls result.close() if it has one (PEP 3333: always, even after an error). */
static int call_close(struct mse_wsgi *w, PyObject *result)
{
	PyObject *close, *rv;

	if (PyList_CheckExact(result) || PyTuple_CheckExact(result))
		return 0;
	if (_PyObject_LookupAttr(result, w->s_close, &close) < 0)
		return -1;
	if (!close)
		return 0;
	rv = PyObject_CallNoArgs(close);
	Py_DECREF(close);
	if (!rv)
		return -1;
	Py_DECREF(rv);
	return 0;
}

/*
 * The thread's cached object in *slot if only the cache holds it (the app
 * kept no reference from an earlier request), else a new one (the cache
 * drops the old). New reference, or NULL.
 */
static PyObject *reuse(PyObject **slot, PyObject *(*make)(void))
{
	/* A start_response is reused only with its write(): an app that kept
	 * write() alone must not see it bound to a later request. */
	if (!*slot || Py_REFCNT(*slot) != 1 ||
	    (Py_IS_TYPE(*slot, &StartResponseType) &&
	     Py_REFCNT(((StartResponseObject *)*slot)->write) != 1)) {
		PyObject *o = make();

		if (!o)
			return NULL;
		Py_XSETREF(*slot, o);
	}
	Py_INCREF(*slot);
	return *slot;
}

static PyObject *input_make(void)
{
	InputObject *o = PyObject_New(InputObject, &InputType);

	if (o)
		o->r = NULL;
	return (PyObject *)o;
}

static PyObject *sr_make(void)
{
	return (PyObject *)sr_new();
}

/* Runs the app with the GIL held. *tb receives a traceback to show in debug. */
static enum app_outcome run_app(struct wsgi_req *r, char **tb, struct tcache *tc)
{
	struct mse_wsgi *w = r->w;
	InputObject *input = NULL;
	StartResponseObject *sr = NULL;
	PyObject *env = NULL, *result = NULL;
	enum app_outcome out = APP_OK;
	int failed = 0;

	if (tc) {
		input = (InputObject *)reuse(&tc->input, input_make);
		sr = (StartResponseObject *)reuse(&tc->sr, sr_make);
	} else {
		input = (InputObject *)input_make();
		sr = sr_new();
	}
	if (!input || !sr)
		goto error;
	input->r = r;
	sr_bind(sr, r);
	env = build_environ(r, (PyObject *)input, tc);
	if (!env)
		goto error;
	{
		PyObject *args[2] = {env, (PyObject *)sr};

		result = PyObject_Vectorcall(w->app, args, 2, NULL);
	}
	if (!result)
		goto error;
	if (iterate(r, result) != 0)
		failed = 1;
	if (failed && r->body_failed) {
		/* The request body failed (client gone, too slow, malformed
		 * chunk): the server answers 400/408/413 and logs one line. */
		PyErr_Clear();
	} else if (failed && !r->net_failed) {
		free(*tb);
		*tb = log_exception(r, "exception while sending the response");
	} else if (failed) {
		PyErr_Clear();
		mse_info("app: client went away during %.*s %.*s", (int)r->x->req->method_len,
			 r->x->req->method, (int)r->x->req->target_len, r->x->req->target);
	}
	if (call_close(w, result) != 0) {
		free(*tb);
		*tb = log_exception(r, "exception in the response's close()");
		failed = 1;
	}
	if (failed)
		goto failed;
	/* An empty body: the headers still go out (PEP 3333). */
	if (!r->headers_sent) {
		if (!r->status) {
			PyErr_SetString(PyExc_AssertionError,
					"the app returned without calling start_response()");
			*tb = log_exception(r, "protocol error");
			goto failed;
		}
		if (send_body(r, NULL, 0, 0, NULL) != 0)
			goto failed;
	}
	goto out;
error:
	if (r->body_failed)
		PyErr_Clear(); /* as above: the server's answer, no traceback */
	else
		*tb = log_exception(r, "exception");
	if (result && call_close(w, result) != 0) {
		char *t2 = log_exception(r, "exception in the response's close()");

		free(t2);
	}
failed:
	out = r->headers_sent || r->net_failed ? APP_BROKEN : APP_FAILED;
out:
	/* Objects the app kept must not reach this stack frame later. */
	if (input)
		input->r = NULL;
	if (sr)
		sr_bind(sr, NULL);
	Py_XDECREF(result);
	Py_XDECREF(env);
	Py_XDECREF((PyObject *)input);
	Py_XDECREF((PyObject *)sr);
	Py_CLEAR(r->status);
	Py_CLEAR(r->headers);
	/* An app that kept wsgi.errors half a line long: emit it now. */
	errors_emit((ErrorsObject *)w->errors);
	return out;
}

/* 500 Internal Server Error; the traceback only in debug mode. GIL released. */
static void answer_500(struct wsgi_req *r, const char *tb)
{
	static const char plain[] = "Internal Server Error\n";
	struct mse_http_header h[2];
	char len[24], *body = NULL;
	const char *b = plain;
	size_t n = sizeof(plain) - 1;

	if (r->w->debug && tb) {
		size_t tl = strlen(tb);

		body = malloc(n + 1 + tl);
		if (body) {
			memcpy(body, plain, n);
			body[n] = '\n';
			memcpy(body + n + 1, tb, tl);
			b = body;
			n += 1 + tl;
		}
	}
	snprintf(len, sizeof(len), "%zu", n);
	h[0] = (struct mse_http_header){"Content-Type", 12, "text/plain; charset=utf-8", 25};
	h[1] = (struct mse_http_header){"Content-Length", 14, len, strlen(len)};
	if (mse_exchange_start(r->x, 500, NULL, h, 2) != 0 || mse_exchange_write(r->x, b, n) != 0 ||
	    mse_exchange_finish(r->x) != 0)
		r->close_conn = 1;
	free(body);
}

int mse_wsgi_handle(struct mse_exchange *x, void *user)
{
	struct mse_wsgi *w = user;
	struct wsgi_req *r;
	struct tcache *tc;
	PyThreadState *ts;
	enum app_outcome out;
	char *tb = NULL;
	int rc;

	ts = thread_state(w);
	if (!ts) {
		mse_error("wsgi: out of memory for a request");
		return -1;
	}
	/* A worker thread keeps its request state (16 KiB with the read-ahead
	 * buffer, too big for small thread stacks) from one request to the
	 * next; other threads allocate one per request. */
	if (ts == t_ts && !t_cache)
		t_cache = calloc(1, sizeof(*t_cache));
	tc = ts == t_ts && t_cache && !t_cache->req_busy ? t_cache : NULL;
	r = tc ? &tc->req : malloc(sizeof(*r));
	if (!r) {
		mse_error("wsgi: out of memory for a request");
		return -1;
	}
	memset(r, 0, offsetof(struct wsgi_req, ibuf));
	if (tc)
		tc->req_busy = 1;
	r->x = x;
	r->w = w;
	r->declared_len = -1;
	PyEval_RestoreThread(ts);
	if (tc) {
		Py_CLEAR(tc->held); /* the last response's body, sent */
		r->held = &tc->held;
	}
	out = run_app(r, &tb, tc);
	PyEval_SaveThread();
	if (r->def)
		flush_deferred(r);

	switch (out) {
	case APP_OK:
		if (r->net_failed) {
			r->close_conn = 1;
			break;
		}
		if (r->declared_len >= 0 && r->sent < (uint64_t)r->declared_len &&
		    !(x->req->method_len == 4 && memcmp(x->req->method, "HEAD", 4) == 0) &&
		    r->status_code != 204 && r->status_code != 304) {
			/* The client would wait for bytes that never come. */
			mse_warn("app: response body shorter than its Content-Length (%llu < "
				 "%lld): connection closed",
				 (unsigned long long)r->sent, (long long)r->declared_len);
			r->close_conn = 1;
			break;
		}
		if (mse_exchange_finish(x) != 0)
			r->close_conn = 1;
		break;
	case APP_FAILED:
		answer_500(r, tb);
		break;
	case APP_BROKEN:
		/* Half a response went out: only closing tells the client it is broken. */
		r->close_conn = 1;
		break;
	}
	rc = r->close_conn || r->body_failed ? -1 : 0;
	free(tb);
	if (tc)
		tc->req_busy = 0;
	else
		free(r);
	return rc;
}

/* ---- initialisation ------------------------------------------------------- */

/* PEP 3333 "Optional Platform-Specific File Handling". */
static const char file_wrapper_src[] =
	"class FileWrapper:\n"
	"    def __init__(self, filelike, blksize=65536):\n"
	"        self.filelike = filelike\n"
	"        self.blksize = blksize\n"
	"        if hasattr(filelike, 'close'):\n"
	"            self.close = filelike.close\n"
	"    def __iter__(self):\n"
	"        return self\n"
	"    def __next__(self):\n"
	"        data = self.filelike.read(self.blksize)\n"
	"        if data:\n"
	"            return data\n"
	"        raise StopIteration\n";

static int setup_objects(struct mse_wsgi *w, struct mse_err *err)
{
	PyObject *ns = NULL, *rv = NULL;
	int rc = -1;

	if (PyType_Ready(&ErrorsType) < 0 || PyType_Ready(&InputType) < 0 ||
	    PyType_Ready(&StartResponseType) < 0 || PyType_Ready(&WriteType) < 0)
		goto pyfail;
	for (int i = 0; i < K_COUNT; i++) {
		w->keys[i] = PyUnicode_InternFromString(env_key_names[i]);
		if (!w->keys[i])
			goto pyfail;
	}
	for (size_t i = 0; i < N_METHODS; i++)
		if (!(w->methods[i] = PyUnicode_InternFromString(method_names[i])))
			goto pyfail;
	for (size_t i = 0; i < N_HDRS; i++) {
		char key[64] = "HTTP_";
		size_t n = strlen(hdr_names[i]);

		for (size_t k = 0; k < n; k++) {
			char ch = hdr_names[i][k];

			key[5 + k] = ch == '-' ? '_' : ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch;
		}
		w->hlens[i] = (unsigned char)n;
		if (!(w->hkeys[i] = PyUnicode_InternFromString(key)))
			goto pyfail;
	}
	w->version = Py_BuildValue("(ii)", 1, 0);
	w->s_close = PyUnicode_InternFromString("close");
	w->s_http = PyUnicode_InternFromString("http");
	w->s_https = PyUnicode_InternFromString("https");
	w->s_empty = PyUnicode_FromString("");
	w->s_http10 = PyUnicode_InternFromString("HTTP/1.0");
	w->s_http11 = PyUnicode_InternFromString("HTTP/1.1");
	w->s_http2 = PyUnicode_InternFromString("HTTP/2");
	w->s_software = PyUnicode_FromString("mse-c/" MSE_VERSION);
	w->errors = (PyObject *)PyObject_New(ErrorsObject, &ErrorsType);
	if (!w->version || !w->s_close || !w->s_http || !w->s_https || !w->s_empty || !w->s_http10 ||
	    !w->s_http11 || !w->s_http2 || !w->s_software || !w->errors)
		goto pyfail;
	((ErrorsObject *)w->errors)->len = 0;
	ns = PyDict_New();
	if (!ns || PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) != 0 ||
	    PyDict_SetItemString(ns, "__name__", w->s_software) != 0)
		goto pyfail;
	rv = PyRun_String(file_wrapper_src, Py_file_input, ns, ns);
	if (!rv)
		goto pyfail;
	w->file_wrapper = PyDict_GetItemString(ns, "FileWrapper");
	Py_XINCREF(w->file_wrapper);
	if (!w->file_wrapper)
		goto pyfail;
	rc = 0;
	goto out;
pyfail: {
	char *tb = mse_pyhost_traceback();

	mse_err_set(err, "python setup failed: %s", tb ? tb : "unknown error");
	free(tb);
}
out:
	Py_XDECREF(rv);
	Py_XDECREF(ns);
	return rc;
}

static void clear_objects(struct mse_wsgi *w)
{
	Py_CLEAR(w->app);
	Py_CLEAR(w->file_wrapper);
	if (w->errors)
		errors_emit((ErrorsObject *)w->errors);
	Py_CLEAR(w->errors);
	for (int i = 0; i < K_COUNT; i++)
		Py_CLEAR(w->keys[i]);
	for (size_t i = 0; i < N_METHODS; i++)
		Py_CLEAR(w->methods[i]);
	for (size_t i = 0; i < N_HDRS; i++)
		Py_CLEAR(w->hkeys[i]);
	Py_CLEAR(w->version);
	Py_CLEAR(w->s_close);
	Py_CLEAR(w->s_http);
	Py_CLEAR(w->s_https);
	Py_CLEAR(w->s_empty);
	Py_CLEAR(w->s_http10);
	Py_CLEAR(w->s_http11);
	Py_CLEAR(w->s_http2);
	Py_CLEAR(w->s_software);
}

int mse_wsgi_init(const struct mse_wsgi_config *cfg, struct mse_wsgi **out, struct mse_err *err)
{
	struct mse_pyhost_config hc = {cfg->app, cfg->module_path, cfg->deny_subprocess};
	struct mse_pyhost *host = cfg->host;
	struct mse_wsgi *w;
	int rc;

	*out = NULL;
	if (!host && mse_pyhost_start(&hc, &host, err) != 0)
		return -1;
	w = calloc(1, sizeof(*w));
	if (!w) {
		if (!cfg->host)
			mse_pyhost_free(host);
		return mse_err_set(err, "out of memory");
	}
	w->debug = cfg->debug;
	w->main_thread = pthread_self();
	w->host = host;
	w->own_host = !cfg->host;
	PyEval_RestoreThread(mse_pyhost_main_ts(host));
	w->interp = PyInterpreterState_Get();
	w->app = mse_pyhost_app(host);
	Py_INCREF(w->app);
	rc = setup_objects(w, err);
	w->main_ts = PyEval_SaveThread();
	if (rc != 0) {
		mse_err_step(err, "import");
		mse_wsgi_free(w);
		return -1;
	}
	*out = w;
	return 0;
}

void mse_wsgi_free(struct mse_wsgi *w)
{
	if (!w)
		return;
	PyEval_RestoreThread(w->main_ts);
	clear_objects(w);
	PyEval_SaveThread();
	if (w->own_host)
		mse_pyhost_free(w->host);
	free(w);
}
