/* SPDX-License-Identifier: Apache-2.0 */
#include "enclave/appserver.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "config/appspec.h"
#include "net/server.h"
#include "net/tls.h"
#include "enclave/memcap.h"
#include "enclave/sandbox.h"
#include "enclave/asgi.h"
#include "enclave/gilstate.h"
#include "enclave/pyhost.h"
#include "enclave/wsgi.h"

static struct mse_server *_Atomic g_server;
static struct mse_asgi *_Atomic g_asgi;
static volatile sig_atomic_t g_stop_requested;

void mse_appserver_config_init(struct mse_appserver_config *c)
{
	memset(c, 0, sizeof(*c));
	c->listen_fd = -1;
	c->sandbox = 1;
	c->handle_signals = 1;
}

void mse_appserver_stop(void)
{
	struct mse_server *s = atomic_load(&g_server);

	struct mse_asgi *a = atomic_load(&g_asgi);

	g_stop_requested = 1;
	if (s)
		mse_server_stop(s); /* async-signal-safe (net/server.h) */
	if (a)
		mse_asgi_stop(a); /* async-signal-safe (enclave/asgi.h) */
}

static void on_signal(int sig)
{
	(void)sig;
	mse_appserver_stop();
}

/*
 * The access log: one line per request in the app's log (what `mse logs`
 * shows), written here around the WSGI handler rather than in net/server,
 * so it reports what the app answered:
 *   access: 127.0.0.1 GET /upload 201 1234 B 3.2 ms
 * The query string is never logged (it may carry what the operator must not
 * learn); control bytes in the path are escaped; the path is cut at 256 bytes.
 */
struct logged {
	struct mse_exchange x; /* what the handler sees: ours, forwarding to in */
	struct mse_exchange_ops ops;
	struct mse_exchange *in;
	int status;
};

static ssize_t logged_read(struct mse_exchange *x, void *buf, size_t n)
{
	struct logged *l = (struct logged *)x;

	return l->in->ops->read_body(l->in, buf, n);
}

static int logged_start(struct mse_exchange *x, int status, const char *reason,
			const struct mse_http_header *h, size_t nh)
{
	struct logged *l = (struct logged *)x;
	int rc = l->in->ops->start(l->in, status, reason, h, nh);

	if (rc == 0)
		l->status = status;
	x->started = l->in->started;
	return rc;
}

static int logged_write(struct mse_exchange *x, const void *data, size_t n)
{
	struct logged *l = (struct logged *)x;
	int rc = l->in->ops->write(l->in, data, n);

	x->body_sent = l->in->body_sent;
	return rc;
}

static int logged_finish(struct mse_exchange *x)
{
	struct logged *l = (struct logged *)x;

	return l->in->ops->finish(l->in);
}

static int logged_upgrade(struct mse_exchange *x, const struct mse_http_header *h, size_t nh,
			  struct mse_stream **out)
{
	struct logged *l = (struct logged *)x;
	int rc = l->in->ops->upgrade(l->in, h, nh, out);

	if (rc == 0)
		l->status = 101;
	x->started = l->in->started;
	return rc;
}

static int logged_peer_gone(struct mse_exchange *x)
{
	struct logged *l = (struct logged *)x;

	return l->in->ops->peer_gone(l->in);
}

static void logged_waiting(struct mse_exchange *x, int on)
{
	struct logged *l = (struct logged *)x;

	l->in->ops->waiting(l->in, on);
}

struct handler_ctx {
	mse_exchange_handler inner;
	void *user;
	int access_log;
};

/* out gets s[0..n) with bytes outside printable ASCII as \xHH; cut to fit. */
static void escape_path(char *out, size_t size, const char *s, size_t n)
{
	static const char hexd[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x21 && c < 0x7f && c != '\\') {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hexd[c >> 4];
			out[o++] = hexd[c & 15];
		}
	}
	if (o + 5 >= size && o >= 3)
		memcpy(out + o - 3, "...", 3);
	out[o] = 0;
}

static int handle(struct mse_exchange *x, void *user)
{
	struct handler_ctx *h = user;
	struct logged l;
	struct timespec t0, t1;
	char method[24], path[260];
	double ms;
	int rc;

	if (!h->access_log)
		return h->inner(x, h->user);
	memset(&l, 0, sizeof(l));
	/* The optional operations stay absent when the server has none (exchange.h). */
	l.ops.read_body = logged_read;
	l.ops.start = logged_start;
	l.ops.write = logged_write;
	l.ops.finish = logged_finish;
	l.ops.upgrade = x->ops->upgrade ? logged_upgrade : NULL;
	l.ops.peer_gone = x->ops->peer_gone ? logged_peer_gone : NULL;
	l.ops.waiting = x->ops->waiting ? logged_waiting : NULL;
	l.x.ops = &l.ops;
	l.x.req = x->req;
	l.x.conn = x->conn;
	l.in = x;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = h->inner(&l.x, h->user);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	escape_path(method, sizeof(method), x->req->method, x->req->method_len);
	escape_path(path, sizeof(path), x->req->path, x->req->path_len);
	if (l.status)
		mse_info("access: %s %s %s %d %llu B %.1f ms", x->conn->remote_addr, method, path,
			 l.status, (unsigned long long)x->body_sent, ms);
	else /* no answer from the app: the server answers 500, or the client is gone */
		mse_info("access: %s %s %s %s 0 B %.1f ms", x->conn->remote_addr, method, path,
			 rc == 0 ? "500" : "-", ms);
	return rc;
}

static SSL_CTX *make_tls(const struct mse_appserver_config *c, struct mse_err *err)
{
	if (c->tls) {
		if (SSL_CTX_up_ref(c->tls) != 1) {
			mse_err_set(err, "cannot reference the TLS context");
			return NULL;
		}
		return c->tls;
	}
	if (c->cert && c->key)
		return mse_tls_ctx_from_x509(c->cert, NULL, c->key, err);
	if (c->cert_pem && c->key_pem)
		return mse_tls_ctx_from_pem(c->cert_pem, c->cert_pem_len, c->key_pem,
					    c->key_pem_len, err);
	if (c->cert_file && c->key_file)
		return mse_tls_ctx_from_files(c->cert_file, c->key_file, err);
	mse_err_field(err, "tls", "no certificate and key given (and plain HTTP not asked for)");
	return NULL;
}

/* Descriptors kept aside from connections: the app's files and sockets,
 * Python's, the listening socket, epoll, eventfds, logs. */
#define FD_RESERVE 256
/* Open connections the app server holds (the server's default is 10,000). */
#define APP_MAX_CONNECTIONS 16384

/*
 * Raises the soft RLIMIT_NOFILE to the hard limit (the default soft limit,
 * often 1024, would refuse the 1,000th connection), and if the hard limit
 * cannot hold max_connections plus FD_RESERVE, says so naming the limit and
 * lowers max_connections to fit: past it, connections are refused (or an
 * idle one closed) instead of accept failing with EMFILE.
 */
static void fit_nofile(struct mse_server_config *sc)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)sc->max_connections + FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			mse_warn("cannot raise the open files limit (RLIMIT_NOFILE) from %llu to its "
				 "hard limit %llu: %s",
				 (unsigned long long)was, (unsigned long long)rl.rlim_max,
				 strerror(errno));
			rl.rlim_cur = was;
		} else {
			mse_debug("open files limit (RLIMIT_NOFILE) raised from %llu to %llu",
				  (unsigned long long)was, (unsigned long long)rl.rlim_cur);
		}
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		size_t fit = rl.rlim_cur > 2 * FD_RESERVE ? (size_t)(rl.rlim_cur - FD_RESERVE)
							   : (size_t)rl.rlim_cur / 2;

		mse_warn("the open files limit (RLIMIT_NOFILE) is %llu (hard limit %llu), lower "
			 "than the %llu that %zu connections need: serving at most %zu connections; "
			 "raise the hard limit (ulimit -Hn, systemd LimitNOFILE=, docker --ulimit "
			 "nofile=) to hold them all",
			 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
			 (unsigned long long)want, sc->max_connections, fit);
		sc->max_connections = fit ? fit : 1;
	}
}

/* The worker pool grows only while the GIL is free (server.h: app_busy). */
static int gil_busy(void *user)
{
	static unsigned long last_switch; /* called by the server's loop only */

	(void)user;
	return mse_gil_busy(&last_switch);
}

/* HTTP/2 stream buffers count against the --memory budget (net/server.h). */
static int mem_charge(size_t n, void *user)
{
	(void)user;
	return mse_memcap_charge(n);
}

static void mem_uncharge(size_t n, void *user)
{
	(void)user;
	mse_memcap_uncharge(n);
}

int mse_appserver_run(const struct mse_appserver_config *c, struct mse_err *err)
{
	struct mse_wsgi_config wc = {0};
	struct mse_pyhost_config hc = {0};
	struct mse_asgi_config ac = {0};
	struct mse_pyhost *host = NULL;
	struct mse_asgi *a = NULL;
	enum mse_pyhost_iface want = MSE_IFACE_AUTO, iface;
	int asgi_only = 0;
	const char *at;
	char app_spec[MSE_APPSPEC_MAX + 16];
	struct mse_server_config sc;
	struct mse_memcap_report rep;
	struct mse_wsgi *w = NULL;
	struct mse_server *s = NULL;
	struct handler_ctx hctx;
	char code_dir[PATH_MAX];
	struct sigaction sa, old_term, old_int;
	SSL_CTX *tls = NULL;
	struct stat st;
	int rc = -1, signals_set = 0;

	if (!c->app || !c->code_dir)
		return mse_err_set(err, "the app (MODULE:VARIABLE) and its code directory are required");
	if (stat(c->code_dir, &st) != 0)
		return mse_err_field(err, "code", "%s: %s", c->code_dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return mse_err_field(err, "code", "%s: not a directory", c->code_dir);
	if (!realpath(c->code_dir, code_dir))
		return mse_err_field(err, "code", "%s: %s", c->code_dir, strerror(errno));
	if (c->interface && mse_pyhost_iface_parse(c->interface, &want, &asgi_only, err) != 0)
		return -1;
	/* "module:var@iface": mse.toml's app_interface as packaged (codeprovider/packager). */
	at = strrchr(c->app, '@');
	/* Only a trailing interface name: a factory's string argument may hold an '@'. */
	if (at && strspn(at + 1, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(at + 1))
		at = NULL;
	if (at) {
		enum mse_pyhost_iface w2;
		int a2;

		if (mse_pyhost_iface_parse(at + 1, &w2, &a2, err) != 0)
			return -1;
		if (c->interface && (w2 != want || a2 != asgi_only))
			return mse_err_field(err, "app_interface", "%s in the app spec, %s asked for",
					     at + 1, c->interface);
		want = w2;
		asgi_only = a2;
		if ((size_t)(at - c->app) >= sizeof(app_spec))
			return mse_err_field(err, "app", "too long: %s", c->app);
		memcpy(app_spec, c->app, (size_t)(at - c->app));
		app_spec[at - c->app] = '\0';
	} else {
		snprintf(app_spec, sizeof(app_spec), "%s", c->app);
	}
	if (!c->no_tls) {
		/* Load the certificate first: a wrong path should fail before Python starts. */
		mse_err_step(err, "tls");
		tls = make_tls(c, err);
		if (!tls)
			return -1;
		/* TLS 1.3 resumption uses stateless tickets: no server-side
		 * session store growing with the connections (thousands of idle
		 * ones must stay cheap). */
		SSL_CTX_set_session_cache_mode(tls, SSL_SESS_CACHE_SERVER |
							    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	}
	/*
	 * The app's current directory is its code directory, as under gunicorn
	 * started there: an unmodified app that writes ./Upload/x or serves
	 * send_from_directory("static") must not touch whatever directory the
	 * operator ran the command in. (After the TLS files, which may be
	 * relative paths, are loaded.)
	 */
	if (chdir(code_dir) != 0) {
		mse_err_field(err, "code", "%s: cannot make it the current directory: %s", code_dir,
			      strerror(errno));
		goto out;
	}
	if (c->memory_mb) {
		/* glibc's per-thread arenas would grow outside the budget; two are plenty. */
		mallopt(M_ARENA_MAX, 2);
		mse_memcap_install();
	}
	if (c->sandbox) {
		mse_err_step(err, "sandbox");
		if (mse_sandbox_install(err) != 0)
			goto out;
		mse_info("enclave rules: fork, exec and subprocesses are refused");
	}
	mse_err_step(err, "import");
	hc.app = app_spec;
	hc.module_path = code_dir;
	hc.deny_subprocess = c->sandbox;
	if (mse_pyhost_start(&hc, &host, err) != 0)
		goto out;
	mse_info("app %s imported from %s (the current directory)", c->app, code_dir);
	mse_err_step(err, "interface");
	if (mse_pyhost_detect(host, want, asgi_only, &iface, err) != 0)
		goto out;
	if (iface == MSE_IFACE_WSGI) {
		wc.debug = c->debug;
		wc.host = host;
		if (mse_wsgi_init(&wc, &w, err) != 0)
			goto out;
	} else {
		/* Lifespan startup runs here: a failure stops us before we listen. */
		mse_err_step(err, "lifespan");
		ac.host = host;
		ac.iface = iface;
		ac.debug = c->debug;
		ac.drain_timeout_ms = c->drain_timeout_ms;
		if (mse_asgi_init(&ac, &a, err) != 0)
			goto out;
		atomic_store(&g_asgi, a);
	}
	if (c->memory_mb) {
		mse_err_step(err, "memory");
		if (mse_memcap_commit(c->memory_mb << 20, &rep, err) != 0)
			goto out;
		mse_info("memory: %llu MiB for the app server; the interpreter, libraries and "
			 "imports use %llu MiB; %llu MiB left for the app",
			 (unsigned long long)c->memory_mb, (unsigned long long)(rep.resident >> 20),
			 (unsigned long long)(rep.left >> 20));
	}

	mse_err_step(err, "listen");
	mse_server_config_init(&sc);
	if (c->host)
		sc.host = c->host;
	sc.port = c->port;
	sc.listen_fd = c->listen_fd;
	sc.tls = tls;
	sc.http2 = !c->no_http2;
	hctx.inner = a ? mse_asgi_handle : mse_wsgi_handle;
	hctx.user = a ? (void *)a : (void *)w;
	hctx.access_log = !c->no_request_log;
	sc.handler = handle;
	sc.user = &hctx;
	if (c->threads > 0)
		sc.threads = c->threads;
	if (c->threads_max > 0)
		sc.max_threads = c->threads_max;
	if (c->timeout_ms > 0) {
		sc.head_timeout_ms = c->timeout_ms;
		sc.read_timeout_ms = c->timeout_ms;
		sc.write_timeout_ms = c->timeout_ms;
	}
	if (c->idle_timeout_ms > 0)
		sc.idle_timeout_ms = c->idle_timeout_ms;
	if (c->drain_timeout_ms > 0)
		sc.drain_timeout_ms = c->drain_timeout_ms;
	if (c->max_body)
		sc.max_body = c->max_body;
	sc.request_timeout_ms = c->request_timeout_ms;
	sc.access_log = c->access_log;
	sc.app_busy = gil_busy;
	if (c->memory_mb) {
		sc.mem_charge = mem_charge;
		sc.mem_uncharge = mem_uncharge;
	}
	/* 10,000 idle keep-alive clients, and room to answer new ones. */
	sc.max_connections = APP_MAX_CONNECTIONS;
	fit_nofile(&sc);
	if (mse_server_new(&sc, &s, err) != 0)
		goto out;
	mse_info("listening on %s://%s:%u (%s)", tls ? "https" : "http",
		 c->host ? c->host : "127.0.0.1", (unsigned)mse_server_port(s),
		 sc.http2 ? "HTTP/1.1 and HTTP/2" : "HTTP/1.1");

	if (c->handle_signals) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, &old_term);
		sigaction(SIGINT, &sa, &old_int);
		signals_set = 1;
	}
	atomic_store(&g_server, s);
	if (g_stop_requested)
		mse_server_stop(s);
	if (c->on_ready)
		c->on_ready(mse_server_port(s), c->ready_user);
	mse_err_step(err, "serve");
	if (mse_server_run(s, err) != 0)
		goto out;
	mse_info("stopped: in-flight requests drained");
	rc = 0;
out:
	atomic_store(&g_server, NULL);
	mse_server_free(s);
	atomic_store(&g_asgi, NULL);
	/* After the server drained: app tasks finish, then lifespan shutdown. */
	mse_asgi_free(a);
	mse_wsgi_free(w);
	mse_pyhost_free(host);
	mse_tls_ctx_free(tls);
	/* Restored last: a second SIGTERM while Python finalises must not kill us. */
	if (signals_set) {
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGINT, &old_int, NULL);
	}
	return rc;
}
