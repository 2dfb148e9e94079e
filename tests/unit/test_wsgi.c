/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WSGI bridge through a fake exchange over memory buffers: no socket,
 * no server. The app (tests/apps/wsgi_testapp.py) wraps every well-behaved
 * route in wsgiref.validate.validator with warnings as errors, so a
 * complaint turns into a 500 that these tests would see. Body digests are
 * checked against OpenSSL's SHA-256 here, not against our own output.
 *
 * This process does not install the sandbox, so LeakSanitizer checks the
 * bridge for leaks (libpython's own arenas are suppressed in tests/lsan.supp).
 */
#include "testutil.h"
#include "fake.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "common/log.h"
#include "net/exchange.h"
#include "enclave/wsgi.h"

static struct mse_wsgi *g_wsgi;

/* ---- the fake exchange ---------------------------------------------------- */

static int fake_run(struct fake *f)
{
	struct mse_exchange x = {&fake_ops, &f->req, &f->conn, 0, 0, f};

	return mse_wsgi_handle(&x, g_wsgi);
}

/* The body as a NUL-terminated string (static buffer). */
static const char *body_str(struct fake *f)
{
	static char buf[1 << 16];
	size_t n = f->out_len < sizeof(buf) - 1 ? f->out_len : sizeof(buf) - 1;

	memcpy(buf, f->out, n);
	buf[n] = '\0';
	return buf;
}

static int has_header(struct fake *f, const char *line)
{
	return strstr(f->headers, line) != NULL;
}

/* GET target, expect 200, return the body. */
static const char *get_ok(const char *target)
{
	static struct fake f;

	fake_free(&f);
	fake_init(&f, "GET", target);
	assert_int_equal(fake_run(&f), 0);
	if (f.status != 200)
		fail_msg("%s: status %d, body %s", target, f.status, body_str(&f));
	assert_int_equal(f.nfinish, 1);
	return body_str(&f);
}

static void sha_hex(const uint8_t *p, size_t n, char out[65])
{
	uint8_t d[32];

	SHA256(p, n, d);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* ---- tests ------------------------------------------------------------------ */

static void bad_app_specs_are_refused_before_python_starts(void **state)
{
	static const char *bad[] = {"app", ":app", "app:", "1a:b", "a:b:c", "a..b:c", "a:b.", "a-b:c"};
	struct mse_wsgi_config cfg = {0};
	struct mse_wsgi *w;
	struct mse_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mse_err_clear(&err);
		cfg.app = bad[i];
		assert_int_equal(mse_wsgi_init(&cfg, &w, &err), -1);
		assert_null(w);
		assert_string_equal(err.field, "app");
		/* The mismatch is carried in the error itself (what --json reports). */
		assert_non_null(strstr(err.actual, bad[i]));
		assert_non_null(strstr(err.expected, "module:variable"));
	}
}

static void environ_has_every_cgi_variable(void **state)
{
	struct fake f;
	json_t *j;
	json_error_t je;

	(void)state;
	fake_init(&f, "GET", "/environ/a%20b/%E9t%zz?x=1&y=%20");
	f.conn.is_tls = 1;
	fake_header(&f, "Host", "example.org");
	fake_header(&f, "X-Multi", "1");
	fake_header(&f, "x-multi", "2");
	fake_header(&f, "Cookie", "a=1");
	fake_header(&f, "Cookie", "b=2");
	fake_header(&f, "Content-Type", "text/csv");
	fake_header(&f, "X_Spoof", "evil");
	fake_header(&f, "X-Latin", "caf\xe9");
	fake_body(&f, "", 0, 0);
	assert_int_equal(fake_run(&f), 0);
	assert_int_equal(f.status, 200);
	j = json_loadb((const char *)f.out, f.out_len, 0, &je);
	assert_non_null(j);
#define S(k) json_string_value(json_object_get(j, k))
	assert_string_equal(S("REQUEST_METHOD"), "GET");
	assert_string_equal(S("SCRIPT_NAME"), "");
	/* %E9 is the byte 0xE9, decoded as latin-1 (PEP 3333); a bad escape stays. */
	assert_string_equal(S("PATH_INFO"), "/environ/a b/\xc3\xa9t%zz");
	assert_string_equal(S("QUERY_STRING"), "x=1&y=%20");
	assert_string_equal(S("REQUEST_URI"), "/environ/a%20b/%E9t%zz?x=1&y=%20");
	assert_string_equal(S("SERVER_NAME"), "localhost");
	assert_string_equal(S("SERVER_PORT"), "8443");
	assert_string_equal(S("SERVER_PROTOCOL"), "HTTP/1.1");
	assert_string_equal(S("REMOTE_ADDR"), "127.0.0.1");
	assert_string_equal(S("REMOTE_PORT"), "40000");
	assert_string_equal(S("CONTENT_TYPE"), "text/csv");
	assert_string_equal(S("CONTENT_LENGTH"), "0");
	assert_string_equal(S("HTTP_HOST"), "example.org");
	assert_string_equal(S("HTTP_X_MULTI"), "1, 2");
	assert_string_equal(S("HTTP_COOKIE"), "a=1; b=2");
	assert_string_equal(S("HTTP_X_LATIN"), "caf\xc3\xa9");
	assert_null(json_object_get(j, "HTTP_X_SPOOF"));
	assert_null(json_object_get(j, "HTTP_CONTENT_TYPE"));
	assert_null(json_object_get(j, "HTTP_CONTENT_LENGTH"));
	assert_string_equal(S("wsgi.url_scheme"), "https");
	assert_true(json_is_true(json_object_get(j, "wsgi.multithread")));
	assert_true(json_is_false(json_object_get(j, "wsgi.multiprocess")));
	assert_true(json_is_false(json_object_get(j, "wsgi.run_once")));
	assert_true(json_is_true(json_object_get(j, "wsgi.input_terminated")));
	assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "wsgi.version"), 0)), 1);
#undef S
	json_decref(j);
	fake_free(&f);

	/* HTTP/1.0, plain http, no body: no CONTENT_LENGTH at all. */
	fake_init(&f, "GET", "/environ");
	f.req.minor_version = 0;
	assert_int_equal(fake_run(&f), 0);
	j = json_loadb((const char *)f.out, f.out_len, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "SERVER_PROTOCOL")), "HTTP/1.0");
	assert_string_equal(json_string_value(json_object_get(j, "wsgi.url_scheme")), "http");
	assert_null(json_object_get(j, "CONTENT_LENGTH"));
	json_decref(j);
	fake_free(&f);
}

/* A body in odd-sized pieces, read with read(65536): digest must match. */
static void input_streams_the_body(void **state)
{
	size_t n = 3 * 1024 * 1024 + 7;
	uint8_t *body = malloc(n);
	char hex[65], want[128];
	struct fake f;

	(void)state;
	for (size_t i = 0; i < n; i++)
		body[i] = (uint8_t)(i * 7 + (i >> 13));
	sha_hex(body, n, hex);
	snprintf(want, sizeof(want), "%zu %s", n, hex);
	for (int chunked = 0; chunked < 2; chunked++) {
		fake_init(&f, "POST", "/sha");
		fake_body(&f, body, n, chunked);
		f.piece = 1000 + 333 * (size_t)chunked;
		assert_int_equal(fake_run(&f), 0);
		assert_int_equal(f.status, 200);
		assert_string_equal(body_str(&f), want);
		assert_int_equal(f.body_off, n);
		fake_free(&f);
		/* read() with no size: the app asked for all of it. */
		fake_init(&f, "POST", "/readall");
		fake_body(&f, body, n, chunked);
		f.piece = 4096;
		assert_int_equal(fake_run(&f), 0);
		assert_string_equal(body_str(&f), want);
		fake_free(&f);
	}
	free(body);
}

static void input_readline_readlines_iter(void **state)
{
	static const char body[] = "first\nsecond line\n\nlast-no-newline";
	static const struct {
		const char *mode, *want;
	} cases[] = {
		{"readline", "[\"first\\n\", \"second line\\n\", \"\\n\", \"last-no-newline\"]"},
		{"readlines", "[\"first\\n\", \"second line\\n\", \"\\n\", \"last-no-newline\"]"},
		{"iter", "[\"first\\n\", \"second line\\n\", \"\\n\", \"last-no-newline\"]"},
		{"readline3", "[\"fir\", \"st\\n\", \"sec\", \"ond\", \" li\", \"ne\\n\", \"\\n\", "
			      "\"las\", \"t-n\", \"o-n\", \"ewl\", \"ine\"]"},
		{"read", "[\"first\\nsecond line\\n\\nlast-no-newline\"]"},
		{"readhuge", "[\"first\\nsecond line\\n\\nlast-no-newline\"]"},
	};
	char target[64];
	struct fake f;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (size_t piece = 1; piece <= 7; piece += 6) {
			snprintf(target, sizeof(target), "/lines?%s", cases[i].mode);
			fake_init(&f, "POST", target);
			fake_body(&f, body, strlen(body), 0);
			f.piece = piece;
			assert_int_equal(fake_run(&f), 0);
			assert_int_equal(f.status, 200);
			assert_string_equal(body_str(&f), cases[i].want);
			fake_free(&f);
		}
}

static void body_read_failure_gives_the_app_an_oserror(void **state)
{
	static uint8_t body[100000];
	struct fake f;

	(void)state;
	fake_init(&f, "POST", "/sha");
	fake_body(&f, body, sizeof(body), 0);
	f.fail_read_at = 50000;
	/* The connection must close: the rest of the body is unreadable. */
	assert_int_equal(fake_run(&f), -1);
	assert_int_equal(f.status, 500);
	assert_null(strstr(body_str(&f), "OSError")); /* no traceback without debug */
	fake_free(&f);
}

static void response_shapes(void **state)
{
	struct fake f;

	(void)state;
	/* write() callable, then the iterable. */
	fake_init(&f, "GET", "/write");
	assert_int_equal(fake_run(&f), 0);
	assert_string_equal(body_str(&f), "abcdefghi");
	assert_false(has_header(&f, "Content-Length"));
	fake_free(&f);
	/* A generator with empty chunks: headers once, no Content-Length (server chunks). */
	fake_init(&f, "GET", "/gen?5");
	assert_int_equal(fake_run(&f), 0);
	assert_int_equal(f.nstart, 1);
	assert_string_equal(body_str(&f), "00000000\n00000001\n00000002\n00000003\n00000004\n");
	assert_false(has_header(&f, "Content-Length"));
	fake_free(&f);
	/* Only empty chunks: headers still go out, with Content-Length: 0. */
	fake_init(&f, "GET", "/gen?0");
	assert_int_equal(fake_run(&f), 0);
	assert_int_equal(f.nstart, 1);
	assert_int_equal(f.nfinish, 1);
	assert_int_equal(f.out_len, 0);
	assert_true(has_header(&f, "Content-Length: 0\n"));
	fake_free(&f);
	/* start_response by keyword (PEP 3333 names). */
	fake_init(&f, "GET", "/kw");
	assert_int_equal(fake_run(&f), 0);
	assert_int_equal(f.status, 201);
	assert_string_equal(body_str(&f), "kw");
	fake_free(&f);
	/* The reason phrase is passed through. */
	fake_init(&f, "GET", "/nowhere");
	assert_int_equal(fake_run(&f), 0);
	assert_int_equal(f.status, 404);
	assert_string_equal(f.reason, "Not Found");
	fake_free(&f);
}

static void close_is_always_called(void **state)
{
	struct fake f;
	int before;

	(void)state;
	before = atoi(get_ok("/closed"));
	get_ok("/close");
	fake_init(&f, "GET", "/close?fail");
	/* Failed after "onetwo" went out: the connection must close, unfinished. */
	assert_int_equal(fake_run(&f), -1);
	assert_string_equal(body_str(&f), "onetwo");
	assert_int_equal(f.nfinish, 0);
	fake_free(&f);
	/* Client gone while sending: close() still runs. */
	fake_init(&f, "GET", "/close");
	f.fail_write = 1;
	assert_int_equal(fake_run(&f), -1);
	fake_free(&f);
	assert_int_equal(atoi(get_ok("/closed")), before + 3);
}

static void exc_info_semantics(void **state)
{
	struct fake f;

	(void)state;
	/* Before headers were sent: the second call replaces status and headers. */
	fake_init(&f, "GET", "/excinfo");
	assert_int_equal(fake_run(&f), 0);
	assert_int_equal(f.status, 503);
	assert_string_equal(body_str(&f), "sorry");
	fake_free(&f);
	/* After: start_response re-raises, the response is cut, the connection closes. */
	fake_init(&f, "GET", "/excinfo-late");
	assert_int_equal(fake_run(&f), -1);
	assert_int_equal(f.status, 200);
	assert_string_equal(body_str(&f), "partial");
	assert_int_equal(f.nfinish, 0);
	fake_free(&f);
	/* A second call without exc_info is an error. */
	fake_init(&f, "GET", "/twice");
	assert_int_equal(fake_run(&f), 0);
	assert_int_equal(f.status, 500);
	fake_free(&f);
}

static void invalid_responses_become_500(void **state)
{
	static const char *targets[] = {
		"/raise",		"/badstatus",		  "/badstatus?600+Huh",
		"/badstatus?20+OK",	"/badstatus?100+Continue",	"/badstatus?200+OK\x01", "/badheader?crlf",
		"/badheader?name",	"/badheader?tuple",	  "/badheader?bytes",
		"/badheader?nonlist",	"/badheader?unicode",	  "/badheader?cl",
		"/strbody",		"/nostart",
	};
	struct fake f;

	(void)state;
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		fake_init(&f, "GET", targets[i]);
		assert_int_equal(fake_run(&f), 0);
		if (f.status != 500)
			fail_msg("%s: status %d", targets[i], f.status);
		assert_int_equal(f.nstart, 1);
		assert_int_equal(f.nfinish, 1);
		assert_string_equal(body_str(&f), "Internal Server Error\n");
		assert_null(strstr(f.headers, "Injected"));
		fake_free(&f);
	}
	/* An exception after the headers: cut, closed. */
	fake_init(&f, "GET", "/late-raise");
	assert_int_equal(fake_run(&f), -1);
	assert_string_equal(body_str(&f), "partial");
	assert_int_equal(f.nfinish, 0);
	fake_free(&f);
	/* close() raising after a complete body: the connection closes. */
	fake_init(&f, "GET", "/close-raises");
	assert_int_equal(fake_run(&f), -1);
	fake_free(&f);
}

static void headers_hop_by_hop_and_lengths(void **state)
{
	struct fake f;

	(void)state;
	/* Hop-by-hop headers dropped; Connection: close honoured. */
	fake_init(&f, "GET", "/hop");
	assert_int_equal(fake_run(&f), -1);
	assert_int_equal(f.status, 200);
	assert_true(has_header(&f, "X-Kept: yes\n"));
	assert_false(has_header(&f, "Connection"));
	assert_false(has_header(&f, "Keep-Alive"));
	assert_int_equal(f.nfinish, 1);
	fake_free(&f);
	/* Shorter than its Content-Length: the client would hang, so close. */
	fake_init(&f, "GET", "/short");
	assert_int_equal(fake_run(&f), -1);
	fake_free(&f);
	/* HEAD: the app's body is discarded by the server, no mismatch. */
	fake_init(&f, "HEAD", "/short");
	assert_int_equal(fake_run(&f), 0);
	assert_int_equal(f.nfinish, 1);
	fake_free(&f);
	/* Longer: truncated to the declared length, then closed. */
	fake_init(&f, "GET", "/long");
	assert_int_equal(fake_run(&f), -1);
	assert_string_equal(body_str(&f), "123");
	fake_free(&f);
	/* A one-element list gets its Content-Length from the bridge. */
	fake_init(&f, "GET", "/hello");
	assert_int_equal(fake_run(&f), 0);
	assert_true(has_header(&f, "Content-Length: 5\n"));
	fake_free(&f);
}

static void file_wrapper_streams_a_file(void **state)
{
	/* route, skip, Content-Length given, BytesIO instead of a file */
	static const struct {
		const char *route;
		size_t skip;
		int cl, bytesio;
	} cases[] = {
		{"/file", 0, 1, 0},    {"/rawfile", 0, 1, 0}, {"/rawfile", 12345, 1, 0},
		{"/rawfile", 7, 0, 0}, {"/rawfile", 100, 1, 1}, {"/file", 5000, 0, 1},
		{"/rawfile", 300000, 1, 0},
	};
	const char *dir = tu_tmpdir();
	char path[256], target[400];
	size_t n = 300000;
	uint8_t *data = malloc(n);
	uint8_t d[32], got[32];
	struct fake f;

	(void)state;
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i % 251);
	snprintf(path, sizeof(path), "%s/blob", dir);
	tu_write(path, data, n);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(target, sizeof(target), "%s?path=%s&skip=%zu&cl=%d&bytesio=%d", cases[i].route,
			 path, cases[i].skip, cases[i].cl, cases[i].bytesio);
		fake_init(&f, "GET", target);
		assert_int_equal(fake_run(&f), 0);
		assert_int_equal(f.status, 200);
		assert_int_equal(f.nfinish, 1);
		assert_int_equal(f.out_len, n - cases[i].skip);
		SHA256(data + cases[i].skip, n - cases[i].skip, d);
		SHA256(f.out, f.out_len, got);
		assert_memory_equal(d, got, 32);
		fake_free(&f);
	}
	free(data);
	tu_rmtree(dir);
}

static void objects_kept_after_the_request_fail_cleanly(void **state)
{
	(void)state;
	get_ok("/keep");
	assert_string_equal(get_ok("/use-kept"), "ValueError RuntimeError");
}

static void wsgi_errors_reach_the_log(void **state)
{
	char path[] = "/tmp/mse-wsgi-log.XXXXXX";
	int fd = mkstemp(path);
	FILE *log = fdopen(fd, "w+");
	char buf[8192];
	size_t n;

	(void)state;
	assert_non_null(log);
	mse_log_set_file(log);
	assert_string_equal(get_ok("/errors"), "logged");
	mse_log_set_file(NULL);
	rewind(log);
	n = fread(buf, 1, sizeof(buf) - 1, log);
	buf[n] = '\0';
	fclose(log);
	unlink(path);
	assert_non_null(strstr(buf, "error: app: wsgi-errors-line-1\n"));
	assert_non_null(strstr(buf, "error: app: wsgi-errors-line-2\n"));
}

static void traceback_goes_to_the_log(void **state)
{
	char path[] = "/tmp/mse-wsgi-log.XXXXXX";
	int fd = mkstemp(path);
	FILE *log = fdopen(fd, "w+");
	char buf[16384];
	struct fake f;
	size_t n;

	(void)state;
	mse_log_set_file(log);
	fake_init(&f, "GET", "/raise");
	assert_int_equal(fake_run(&f), 0);
	mse_log_set_file(NULL);
	fake_free(&f);
	rewind(log);
	n = fread(buf, 1, sizeof(buf) - 1, log);
	buf[n] = '\0';
	fclose(log);
	unlink(path);
	assert_non_null(strstr(buf, "app: exception on GET /raise"));
	assert_non_null(strstr(buf, "app: Traceback (most recent call last):"));
	assert_non_null(strstr(buf, "app: RuntimeError: boom from the app"));
}

struct thread_arg {
	const char *target;
	int count, ok;
	struct timespec done;
};

static void *hammer(void *p)
{
	struct thread_arg *a = p;

	for (int i = 0; i < a->count; i++) {
		struct fake f;

		fake_init(&f, "GET", a->target);
		if (fake_run(&f) == 0 && f.status == 200 && f.out_len == 5 &&
		    memcmp(f.out, "hello", 5) == 0)
			a->ok++;
		fake_free(&f);
	}
	clock_gettime(CLOCK_MONOTONIC, &a->done);
	return NULL;
}

static void *slow_reader(void *p)
{
	struct thread_arg *a = p;
	struct fake f;

	fake_init(&f, "POST", "/slow");
	fake_body(&f, "0123456789", 10, 0);
	f.read_sleep_ms = 400;
	if (fake_run(&f) == 0 && f.status == 200 && f.out_len == 10)
		a->ok = 1;
	fake_free(&f);
	clock_gettime(CLOCK_MONOTONIC, &a->done);
	return NULL;
}

static double secs(struct timespec t)
{
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Many threads at once; one blocked in wsgi.input must not hold the GIL. */
static void threads_share_the_interpreter(void **state)
{
	struct thread_arg a[4] = {{"/hello", 200, 0, {0}}, {"/hello", 200, 0, {0}},
				  {"/hello", 200, 0, {0}}, {"/hello", 200, 0, {0}}};
	struct thread_arg slow = {"/slow", 1, 0, {0}}, quick = {"/hello", 3, 0, {0}};
	pthread_t t[4], ts, tq;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &a[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].ok, a[i].count);
	}
	assert_int_equal(pthread_create(&ts, NULL, slow_reader, &slow), 0);
	usleep(100 * 1000);
	assert_int_equal(pthread_create(&tq, NULL, hammer, &quick), 0);
	pthread_join(tq, NULL);
	pthread_join(ts, NULL);
	assert_int_equal(slow.ok, 1);
	assert_int_equal(quick.ok, 3);
	/* The quick requests finished while the slow one was still reading. */
	assert_true(secs(quick.done) < secs(slow.done));
	/* Python threads started by the app work too. */
	assert_string_equal(get_ok("/thread"), "499500");
}

/* Last: wsgiref.validate never complained at garbage collection either. */
static void validator_never_complained(void **state)
{
	(void)state;
	assert_string_equal(get_ok("/unraisable"), "[]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_app_specs_are_refused_before_python_starts),
		cmocka_unit_test(environ_has_every_cgi_variable),
		cmocka_unit_test(input_streams_the_body),
		cmocka_unit_test(input_readline_readlines_iter),
		cmocka_unit_test(body_read_failure_gives_the_app_an_oserror),
		cmocka_unit_test(response_shapes),
		cmocka_unit_test(close_is_always_called),
		cmocka_unit_test(exc_info_semantics),
		cmocka_unit_test(invalid_responses_become_500),
		cmocka_unit_test(headers_hop_by_hop_and_lengths),
		cmocka_unit_test(file_wrapper_streams_a_file),
		cmocka_unit_test(objects_kept_after_the_request_fail_cleanly),
		cmocka_unit_test(wsgi_errors_reach_the_log),
		cmocka_unit_test(traceback_goes_to_the_log),
		cmocka_unit_test(threads_share_the_interpreter),
		cmocka_unit_test(validator_never_complained),
	};
	struct mse_wsgi_config cfg = {.app = "wsgi_testapp:app", .module_path = "tests/apps"};
	struct mse_err err;
	int rc;

	mse_log_init("test_wsgi", MSE_LOG_INFO);
	mse_err_clear(&err);
	if (mse_wsgi_init(&cfg, &g_wsgi, &err) != 0) {
		fprintf(stderr, "mse_wsgi_init: %s\n", err.msg);
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	mse_wsgi_free(g_wsgi);
	return rc;
}
