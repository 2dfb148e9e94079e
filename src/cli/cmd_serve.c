/* SPDX-License-Identifier: Apache-2.0 */
/* mse serve — the app server alone: a WSGI or ASGI app over HTTP/1.1 and TLS. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/num.h"
#include "cli/cli.h"
#include "common/file.h"
#include "common/log.h"
#include "enclave/appserver.h"
#include "enclave/pyhost.h"
#include "enclave/sandbox.h"
#include "net/metrics.h"

static const char usage[] =
	"Usage: mse serve MODULE:VARIABLE --code DIR (--cert FILE --key FILE | --no-tls)\n"
	"                 [--host ADDR] [--port N] [--threads N] [--threads-max N]\n"
	"                 [--memory MB] [--debug]\n"
	"                 [--log-level LEVEL] [--access-log FILE] [--timeout S]\n"
	"                 [--idle-timeout S] [--request-timeout S] [--max-body MB]\n"
	"                 [--port-file FILE] [--no-sandbox]\n"
	"                 [--interface auto|wsgi|asgi|asgi3|asgi2] [--no-access-log]\n"
	"                 [--no-http2] [--metrics HOST:PORT]\n"
	"\n"
	"Serve an unmodified Python WSGI app (Flask, Django, ...) or ASGI app (FastAPI,\n"
	"Starlette, Quart, ...) the way it runs in the enclave: HTTP/1.1, HTTP/2 and TLS in C\n"
	"threads, the app in an embedded CPython 3.11 (WSGI: called on the server threads,\n"
	"holding the GIL only while it runs; ASGI: one asyncio event loop in one Python\n"
	"thread, with lifespan startup before the first request and shutdown after the\n"
	"last), fork/exec refused, memory capped.\n"
	"\n"
	"  MODULE:VARIABLE     the app, e.g. app:app (VARIABLE may be dotted), or a WSGI\n"
	"                      factory called with literal arguments: 'app:create_app()'\n"
	"  --code DIR          the app's directory, put first on sys.path (MODULE_PATH);\n"
	"                      the app runs with it as its current directory\n"
	"  --interface I       auto (default: detected from the object), wsgi, asgi (either\n"
	"                      ASGI version, detected), asgi3 or asgi2; mse.toml's\n"
	"                      app_interface\n"
	"  --cert FILE         TLS certificate chain, PEM (leaf first)\n"
	"  --key FILE          its private key, PEM\n"
	"  --no-tls            serve plain HTTP instead (tests, behind a TLS proxy)\n"
	"  --no-http2          HTTP/1.1 only (default: HTTP/2 too, chosen by TLS ALPN \"h2\",\n"
	"                      or with --no-tls by a client sending the HTTP/2 preface)\n"
	"  --host ADDR         address to listen on (default 127.0.0.1; 0.0.0.0 for all)\n"
	"  --port N            port (default 8443; 0 picks a free one, see --port-file)\n"
	"  --threads N         server worker threads always running (default 2 x CPUs)\n"
	"  --threads-max N     more are started, up to N, while every worker is blocked\n"
	"                      in a handler (sleep, database or HTTP call: outside the\n"
	"                      GIL) and requests wait; idle ones exit after 10 s\n"
	"                      (default 128, at least --threads)\n"
	"  --memory MB         memory budget of the process, as an enclave's size: the app\n"
	"                      gets MemoryError beyond it; the log says how much is left\n"
	"                      for the app once the interpreter and libraries are loaded\n"
	"  --debug             put Python tracebacks in 500 responses (never in production)\n"
	"  --log-level LEVEL   debug, info (default), warn or error\n"
	"  --access-log FILE   Common Log Format, one line per request ('-' = stdout)\n"
	"  --timeout S         head, body read and write timeouts (default: the server's)\n"
	"  --idle-timeout S    keep-alive idle timeout (default: the server's)\n"
	"  --request-timeout S per-request deadline: past it the client gets 504 and the\n"
	"                      request is logged; its thread stays with the app and\n"
	"                      another is started in its place (default: none)\n"
	"  --max-body MB       request body limit (default 2048)\n"
	"  --port-file FILE    write the port listened on to FILE once ready\n"
	"  --no-sandbox        do not install the enclave rules (debugging only)\n"
	"  --no-access-log     no \"access:\" line per request in the log (method, path,\n"
	"                      status, bytes, duration; on by default, at info level)\n"
	"  --metrics HOST:PORT Prometheus metrics (requests by status class, a latency\n"
	"                      histogram, in-flight requests, worker threads, open\n"
	"                      connections; counts only, no secrets) in plain HTTP on\n"
	"                      http://HOST:PORT/metrics, apart from the app; PORT 0: a\n"
	"                      free one, logged (docs/metrics.md)\n"
	"\n"
	"SIGTERM or SIGINT: stop accepting, let in-flight requests finish (ASGI: and the\n"
	"app's tasks, then lifespan shutdown), exit 0.\n"
	"\n"
	"Examples:\n"
	"  mse serve app:app --code mse_src --cert cert.pem --key key.pem --port 8443\n"
	"  mse serve app:app --code mse_src --no-tls --port 5000 --memory 512 --debug\n"
	"\n"
	"Exit status: 0 after a graceful stop, 1 on failure (bad certificate, import\n"
	"error, an object that is no WSGI or ASGI app, lifespan startup failed, port in\n"
	"use, metrics address unusable, memory budget too small), 2 on a usage error.\n";

struct ready {
	const char *port_file;
	int failed;
};

static void on_ready(uint16_t port, void *user)
{
	struct ready *r = user;
	struct mse_err err;
	char buf[16];
	int n;

	if (!r->port_file)
		return;
	mse_err_clear(&err);
	n = snprintf(buf, sizeof(buf), "%u\n", (unsigned)port);
	if (mse_file_write_atomic(r->port_file, buf, (size_t)n, MSE_MODE_PUBLIC, &err) != 0) {
		mse_error("--port-file %s: %s", r->port_file, err.msg);
		r->failed = 1;
		mse_appserver_stop();
	}
}

/* A decimal number in [min, max]; -1 if not. */
static long parse_num(const char *s, long min, long max)
{
	uint64_t v;

	return mse_num_parse(s, (uint64_t)min, (uint64_t)max, &v) == 0 ? (long)v : -1;
}

int cmd_serve(int argc, char **argv)
{
	enum {
		O_CODE = 256, O_CERT, O_KEY, O_NO_TLS, O_HOST, O_PORT, O_THREADS, O_THREADS_MAX, O_MEMORY,
		O_DEBUG, O_LOG_LEVEL, O_ACCESS_LOG, O_TIMEOUT, O_IDLE, O_MAX_BODY, O_PORT_FILE,
		O_NO_SANDBOX, O_INTERFACE, O_REQTO, O_NO_ACCESS_LOG, O_NO_HTTP2, O_METRICS, O_HELP
	};
	static const struct option opts[] = {
		{"code", required_argument, NULL, O_CODE},
		{"no-access-log", no_argument, NULL, O_NO_ACCESS_LOG},
		{"cert", required_argument, NULL, O_CERT},
		{"key", required_argument, NULL, O_KEY},
		{"no-tls", no_argument, NULL, O_NO_TLS},
		{"no-http2", no_argument, NULL, O_NO_HTTP2},
		{"host", required_argument, NULL, O_HOST},
		{"port", required_argument, NULL, O_PORT},
		{"threads", required_argument, NULL, O_THREADS},
		{"threads-max", required_argument, NULL, O_THREADS_MAX},
		{"memory", required_argument, NULL, O_MEMORY},
		{"debug", no_argument, NULL, O_DEBUG},
		{"log-level", required_argument, NULL, O_LOG_LEVEL},
		{"access-log", required_argument, NULL, O_ACCESS_LOG},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"idle-timeout", required_argument, NULL, O_IDLE},
		{"request-timeout", required_argument, NULL, O_REQTO},
		{"max-body", required_argument, NULL, O_MAX_BODY},
		{"port-file", required_argument, NULL, O_PORT_FILE},
		{"no-sandbox", no_argument, NULL, O_NO_SANDBOX},
		{"interface", required_argument, NULL, O_INTERFACE},
		{"metrics", required_argument, NULL, O_METRICS},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	struct mse_appserver_config c;
	struct ready ready = {0};
	enum mse_log_level level = MSE_LOG_INFO;
	const char *access_path = NULL;
	char cwd[PATH_MAX], port_file[PATH_MAX + 1], metrics_host[256];
	const char *metrics = NULL;
	uint16_t metrics_port = 0;
	FILE *access = NULL;
	struct mse_err err;
	long v;
	int o, rc;

	mse_appserver_config_init(&c);
	c.port = 8443;
	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case O_CODE:
			c.code_dir = optarg;
			break;
		case O_CERT:
			c.cert_file = optarg;
			break;
		case O_KEY:
			c.key_file = optarg;
			break;
		case O_NO_TLS:
			c.no_tls = 1;
			break;
		case O_HOST:
			c.host = optarg;
			break;
		case O_PORT:
			if ((v = parse_num(optarg, 0, 65535)) < 0)
				return cli_usage_error("serve", "--port: expected 0-65535, got '%s'",
						       optarg);
			c.port = (uint16_t)v;
			break;
		case O_THREADS:
			if ((v = parse_num(optarg, 1, 1024)) < 0)
				return cli_usage_error("serve", "--threads: expected 1-1024, got '%s'",
						       optarg);
			c.threads = (int)v;
			break;
		case O_THREADS_MAX:
			if ((v = parse_num(optarg, 1, 4096)) < 0)
				return cli_usage_error("serve", "--threads-max: expected 1-4096, got '%s'",
						       optarg);
			c.threads_max = (int)v;
			break;
		case O_MEMORY:
			if ((v = parse_num(optarg, 16, 1 << 24)) < 0)
				return cli_usage_error(
					"serve", "--memory: expected a size in MiB >= 16, got '%s'", optarg);
			c.memory_mb = (uint64_t)v;
			break;
		case O_DEBUG:
			c.debug = 1;
			break;
		case O_LOG_LEVEL:
			if (mse_log_parse_level(optarg, &level) != 0)
				return cli_usage_error(
					"serve", "--log-level: expected debug, info, warn or error, got '%s'",
					optarg);
			break;
		case O_ACCESS_LOG:
			access_path = optarg;
			break;
		case O_TIMEOUT:
			if ((v = parse_num(optarg, 1, 86400)) < 0)
				return cli_usage_error("serve", "--timeout: expected seconds 1-86400, got '%s'",
						       optarg);
			c.timeout_ms = (int)v * 1000;
			break;
		case O_IDLE:
			if ((v = parse_num(optarg, 1, 86400)) < 0)
				return cli_usage_error(
					"serve", "--idle-timeout: expected seconds 1-86400, got '%s'", optarg);
			c.idle_timeout_ms = (int)v * 1000;
			break;
		case O_REQTO:
			if ((v = parse_num(optarg, 1, 86400)) < 0)
				return cli_usage_error(
					"serve", "--request-timeout: expected seconds 1-86400, got '%s'",
					optarg);
			c.request_timeout_ms = (int)v * 1000;
			break;
		case O_MAX_BODY:
			if ((v = parse_num(optarg, 1, 1L << 30)) < 0)
				return cli_usage_error("serve", "--max-body: expected MiB >= 1, got '%s'",
						       optarg);
			c.max_body = (uint64_t)v << 20;
			break;
		case O_PORT_FILE:
			ready.port_file = optarg;
			break;
		case O_NO_SANDBOX:
			c.sandbox = 0;
			break;
		case O_NO_ACCESS_LOG:
			c.no_request_log = 1;
			break;
		case O_NO_HTTP2:
			c.no_http2 = 1;
			break;
		case O_METRICS:
			if (cli_hostport("serve", "metrics", optarg) != 0 ||
			    mse_num_hostport(optarg, metrics_host, sizeof(metrics_host),
					     &metrics_port) != 0)
				return MSE_EXIT_USAGE;
			metrics = optarg;
			break;
		case O_INTERFACE: {
			enum mse_pyhost_iface i;
			int asgi_only;

			mse_err_clear(&err);
			if (mse_pyhost_iface_parse(optarg, &i, &asgi_only, &err) != 0)
				return cli_usage_error("serve", "--interface: expected auto, wsgi, "
							"asgi, asgi3 or asgi2, got '%s'", optarg);
			c.interface = optarg;
			break;
		}
		case 'h':
		case O_HELP:
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		default:
			return cli_usage_error("serve", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("serve", optind >= argc ? "missing MODULE:VARIABLE"
							      : "expected one MODULE:VARIABLE, got more");
	c.app = argv[optind];
	if (!c.code_dir)
		return cli_usage_error("serve", "--code DIR is required");
	if (c.no_tls && (c.cert_file || c.key_file))
		return cli_usage_error("serve", "--no-tls cannot be combined with --cert/--key");
	if (!c.no_tls && (!c.cert_file || !c.key_file))
		return cli_usage_error("serve", "give --cert FILE and --key FILE, or --no-tls");

	if (ready.port_file && ready.port_file[0] != '/') {
		/* The app server makes the code directory current before it is ready. */
		if (!getcwd(cwd, sizeof(cwd)) ||
		    snprintf(port_file, sizeof(port_file), "%s/%s", cwd, ready.port_file) >=
			    (int)sizeof(port_file))
			return cli_failf("serve", "--port-file %s: path too long", ready.port_file);
		ready.port_file = port_file;
	}
	if (metrics && metrics_port && metrics_port == c.port)
		return cli_usage_error("serve", "--metrics: port %u is the app's --port%s: the metrics "
						"need a port of their own",
				       (unsigned)c.port, c.port == 8443 ? " (default 8443)" : "");
	mse_log_init("mse serve", level);
	if (access_path) {
		access = strcmp(access_path, "-") == 0 ? stdout : fopen(access_path, "a");
		if (!access)
			return cli_failf("serve", "--access-log %s: %s", access_path, strerror(errno));
		/* One line per request, visible at once (tail -f, a pipe to a collector). */
		setvbuf(access, NULL, _IOLBF, 0);
		c.access_log = access;
	}
	c.on_ready = on_ready;
	c.ready_user = &ready;
	mse_err_clear(&err);
	if (metrics) {
		/* Counts only (net/metrics.h), apart from the app, before the sandbox. */
		uint16_t bound = 0;

		if (mse_metrics_listen(metrics_host, metrics_port, &bound, &err) != 0) {
			if (access && access != stdout)
				fclose(access);
			return cli_fail("serve", &err);
		}
		mse_info("metrics on http://%s%s%s:%u/metrics", strchr(metrics_host, ':') ? "[" : "",
			 metrics_host, strchr(metrics_host, ':') ? "]" : "", (unsigned)bound);
	}
	rc = mse_appserver_run(&c, &err) == 0 && !ready.failed ? MSE_EXIT_OK : MSE_EXIT_FAIL;
	mse_metrics_stop();
	if (rc != MSE_EXIT_OK && (err.msg[0] || err.expected[0] || err.field[0]))
		cli_fail("serve", &err);
	if (access && access != stdout)
		fclose(access);
	/* Under LeakSanitizer, a sandboxed process must skip the exit-time check. */
	mse_sandbox_exit(rc);
}
