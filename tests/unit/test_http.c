/* SPDX-License-Identifier: Apache-2.0 */
/*
 * src/net/http: the request parser and the chunked decoder.
 *
 * Every input is also parsed placed right before a PROT_NONE page, so a read
 * one byte past the end crashes the test instead of passing silently.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "net/http.h"

/* ---- guard page ------------------------------------------------------------ */

struct guarded {
	char *map;
	size_t map_len;
	char *p; /* n bytes ending exactly at the guard page */
};

static struct guarded guard(const void *data, size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t pages = (n + pg - 1) / pg + 1;
	struct guarded g;

	g.map_len = (pages + 1) * pg;
	g.map = mmap(NULL, g.map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(g.map != MAP_FAILED);
	assert_int_equal(mprotect(g.map + pages * pg, pg, PROT_NONE), 0);
	g.p = g.map + pages * pg - n;
	if (n)
		memcpy(g.p, data, n);
	return g;
}

static void unguard(struct guarded *g)
{
	munmap(g->map, g->map_len);
}

static int parse_n(const char *s, size_t n, struct mse_http_request *req,
		   struct mse_http_header *hs, size_t max_headers, size_t max_head, int *status)
{
	struct guarded g = guard(s, n);
	int r;

	*status = 0;
	r = mse_http_parse_request(g.p, n, max_head, req, hs, max_headers, status);
	/* Pointers into the guarded copy must not outlive it: rebase them. */
	if (r > 0) {
		ptrdiff_t d = s - g.p;

		req->method += d;
		req->target += d;
		if (req->path >= g.p && req->path < g.p + n)
			req->path += d;
		if (req->query >= g.p && req->query < g.p + n)
			req->query += d;
		for (size_t i = 0; i < req->num_headers; i++) {
			hs[i].name += d;
			hs[i].value += d;
		}
	}
	unguard(&g);
	return r;
}

static struct mse_http_header g_hs[MSE_HTTP_MAX_HEADERS_DEFAULT];

static int parse(const char *s, struct mse_http_request *req, int *status)
{
	return parse_n(s, strlen(s), req, g_hs, MSE_HTTP_MAX_HEADERS_DEFAULT,
		       MSE_HTTP_MAX_HEAD_BYTES_DEFAULT, status);
}

static int status_of(const char *s)
{
	struct mse_http_request req;
	int status, r = parse(s, &req, &status);

	if (r == -1)
		return status;
	return r > 0 ? 0 : r;
}

#define assert_span(p, n, str)                                                          \
	do {                                                                            \
		assert_int_equal((n), strlen(str));                                     \
		assert_memory_equal((p), (str), (n));                                   \
	} while (0)

/* ---- request parser ------------------------------------------------------- */

static void parses_a_request(void **state)
{
	static const char req_s[] = "POST /a/b%20c?x=1&y=%2F HTTP/1.1\r\n"
				    "Host: example.com:8443\r\n"
				    "Content-Length:  12 \r\n"
				    "X-Empty:\r\n"
				    "X-Tab:\tv a l\t\r\n"
				    "\r\n"
				    "hello world!";
	struct mse_http_request req;
	int status;

	(void)state;
	assert_int_equal(parse(req_s, &req, &status), (int)(strlen(req_s) - 12));
	assert_span(req.method, req.method_len, "POST");
	assert_span(req.target, req.target_len, "/a/b%20c?x=1&y=%2F");
	assert_span(req.path, req.path_len, "/a/b%20c");
	assert_span(req.query, req.query_len, "x=1&y=%2F");
	assert_int_equal(req.minor_version, 1);
	assert_int_equal(req.num_headers, 4);
	assert_span(req.headers[0].name, req.headers[0].name_len, "Host");
	assert_span(req.headers[0].value, req.headers[0].value_len, "example.com:8443");
	assert_span(req.headers[1].value, req.headers[1].value_len, "12");
	assert_span(req.headers[2].name, req.headers[2].name_len, "X-Empty");
	assert_int_equal(req.headers[2].value_len, 0);
	assert_span(req.headers[3].value, req.headers[3].value_len, "v a l");
	assert_true(req.content_length == 12);
	assert_int_equal(req.chunked, 0);
	assert_int_equal(req.keep_alive, 1);
	assert_int_equal(req.expect_continue, 0);
	assert_non_null(mse_http_find_header(&req, "content-LENGTH"));
	assert_null(mse_http_find_header(&req, "cookie"));
}

static void no_query_and_other_target_forms(void **state)
{
	struct mse_http_request req;
	int status;

	(void)state;
	assert_true(parse("GET / HTTP/1.0\r\n\r\n", &req, &status) > 0);
	assert_span(req.path, req.path_len, "/");
	assert_int_equal(req.query_len, 0);
	assert_non_null(req.query);
	assert_int_equal(req.keep_alive, 0); /* HTTP/1.0 default */
	assert_true(req.content_length == -1);

	assert_true(parse("GET http://h.example/p/q?z HTTP/1.1\r\nHost: h.example\r\n\r\n", &req,
			  &status) > 0);
	assert_span(req.path, req.path_len, "/p/q");
	assert_span(req.query, req.query_len, "z");
	assert_true(parse("GET HTTPS://h.example HTTP/1.1\r\nHost: h.example\r\n\r\n", &req,
			  &status) > 0);
	assert_span(req.path, req.path_len, "/");
	assert_true(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &req, &status) > 0);
	assert_span(req.path, req.path_len, "*");
	assert_true(parse("CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n", &req,
			  &status) > 0);
	assert_span(req.path, req.path_len, "h.example:443");
	/* Empty lines before the request-line are skipped (RFC 9112 §2.2). */
	assert_int_equal(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", &req, &status), 31);
	assert_span(req.method, req.method_len, "GET");
}

static void connection_and_expect(void **state)
{
	struct mse_http_request req;
	int status;

	(void)state;
	assert_true(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n",
			  &req, &status) > 0);
	assert_int_equal(req.keep_alive, 0);
	assert_true(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req, &status) > 0);
	assert_int_equal(req.keep_alive, 1);
	assert_true(parse("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: "
			  "3\r\n\r\n",
			  &req, &status) > 0);
	assert_int_equal(req.expect_continue, 1);
	/* RFC 9110 §10.1.1: a 1.0 client's 100-continue is ignored. */
	assert_true(parse("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
			  &req, &status) > 0);
	assert_int_equal(req.expect_continue, 0);
	assert_int_equal(status_of("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n"), 417);
	assert_int_equal(status_of("PUT / HTTP/1.1\r\nHost: h\r\nExpect:\r\n\r\n"), 417);
}

static void content_length_and_chunked(void **state)
{
	struct mse_http_request req;
	int status;

	(void)state;
	assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", &req,
			  &status) > 0);
	assert_int_equal(req.chunked, 1);
	assert_true(req.content_length == -1);
	assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , CHUNKED ,\r\n\r\n",
			  &req, &status) > 0);
	assert_int_equal(req.chunked, 1);
	/* Identical repeated lengths are one length (RFC 9110 §8.6). */
	assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\nContent-Length: "
			  "7, 7\r\n\r\n",
			  &req, &status) > 0);
	assert_true(req.content_length == 7);
	assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 000\r\n\r\n", &req,
			  &status) > 0);
	assert_true(req.content_length == 0);
}

static void smuggling_is_refused(void **state)
{
#define C(s, st) {s, sizeof(s) - 1, st}
	static const struct {
		const char *in;
		size_t len;
		int status;
	} cases[] = {
		/* CL.TE / TE.CL: both framings at once */
		C("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: "
		 "chunked\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: "
		 "5\r\n\r\n", 400),
		/* differing lengths */
		C("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", 400),
		/* lengths that are not 1*DIGIT */
		C("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
		/* chunked not last, repeated, unknown or empty codings, HTTP/1.0 */
		C("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
		 "chunked\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
		C("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
		/* whitespace around field names, obs-fold, bare CR/LF, NUL */
		C("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nHost: h\r\n Transfer-Encoding: chunked\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nHost: h\nX: a\r\n\r\n", 400),
		C("GET / HTTP/1.1\nHost: h\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nHost: h\r\n\n", 400),
		C("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nHost: h\r\nX(y): 1\r\n\r\n", 400),
		/* Host: required once on 1.1, well-formed */
		C("GET / HTTP/1.1\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
		/* request line */
		C("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		C("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400),
		C("GET /\tx HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		C("GET /#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		C("GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		C("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		C(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		C("GET x HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		C("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		C("GET http:// HTTP/1.1\r\nHost: h\r\n\r\n", 400),
		C("GET / http/1.1\r\nHost: h\r\n\r\n", 400),
		C("GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 400),
		C("GET / HTTP/11\r\nHost: h\r\n\r\n", 400),
		C("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
		C("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505),
		C("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = cases[i].len; /* the NUL case needs its real length */
		struct mse_http_request req;
		int status, r;

		r = parse_n(cases[i].in, n, &req, g_hs, MSE_HTTP_MAX_HEADERS_DEFAULT,
			    MSE_HTTP_MAX_HEAD_BYTES_DEFAULT, &status);
		if (r != -1 || status != cases[i].status)
			fail_msg("case %zu: %s: got %d/%d, want -1/%d", i, cases[i].in, r, status,
				 cases[i].status);
	}
#undef C
}

static void limits(void **state)
{
	char big[4096];
	struct mse_http_header hs[4];
	struct mse_http_request req;
	int status;
	static const char five[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";

	(void)state;
	/* Four fields fit four slots; five do not: 431. */
	assert_int_equal(parse_n(five, strlen(five), &req, hs, 4, 65536, &status), -1);
	assert_int_equal(status, 431);
	assert_int_equal(parse_n(five, strlen(five) - 9, &req, hs, 5, 65536, &status), -2);
	/* A head that reaches the byte limit while incomplete: 431 (414 if still
	 * in the request line). */
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\nX: %0600d\r\n\r\n", 0);
	assert_true(parse_n(big, strlen(big), &req, g_hs, 100, 1024, &status) > 0);
	assert_int_equal(parse_n(big, strlen(big), &req, g_hs, 100, 512, &status), -1);
	assert_int_equal(status, 431);
	assert_int_equal(parse_n(big, 511, &req, g_hs, 100, 512, &status), -2);
	snprintf(big, sizeof(big), "GET /%0600d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
	assert_int_equal(parse_n(big, strlen(big), &req, g_hs, 100, 512, &status), -1);
	assert_int_equal(status, 414);
	/* Exactly at the limit is fine. */
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_int_equal(parse_n(big, strlen(big), &req, g_hs, 100, strlen(big), &status),
			 (int)strlen(big));
}

/* Every prefix of a valid request is -2; the whole is its length. Two
 * pipelined requests: every split point gives -2 until the first is whole,
 * then exactly the first's length. */
static void every_split_point(void **state)
{
	static const char *reqs[] = {
		"GET /a?b=c HTTP/1.1\r\nHost: h\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n",
		("\r\nPOST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: "
		 "100-continue\r\n\r\n"),
		"GET / HTTP/1.0\r\n\r\n",
	};
	char both[1024];

	(void)state;
	for (size_t k = 0; k < 3; k++) {
		size_t n1 = strlen(reqs[k]);
		size_t n = (size_t)snprintf(both, sizeof(both), "%s%s", reqs[k], reqs[(k + 1) % 3]);

		for (size_t cut = 0; cut <= n; cut++) {
			struct mse_http_request req;
			int status, r = parse_n(both, cut, &req, g_hs, 100, 65536, &status);

			if (cut < n1 && r != -2)
				fail_msg("req %zu cut %zu: got %d (status %d), want -2", k, cut, r,
					 status);
			if (cut >= n1 && r != (int)n1)
				fail_msg("req %zu cut %zu: got %d, want %zu", k, cut, r, n1);
		}
		/* The second request parses from where the first ended. */
		{
			struct mse_http_request req;
			int status;

			assert_int_equal(parse_n(both + n1, n - n1, &req, g_hs, 100, 65536, &status),
					 (int)(n - n1));
		}
	}
}

/* A malformed prefix is reported as soon as it is seen, not after more bytes. */
static void malformed_prefix_is_early(void **state)
{
	struct mse_http_request req;
	int status;

	(void)state;
	assert_int_equal(parse_n("GET /\x01", 6, &req, g_hs, 100, 65536, &status), -1);
	assert_int_equal(parse_n("GET / HTTP/1.1\r\nHo st", 21, &req, g_hs, 100, 65536, &status),
			 -1);
	assert_int_equal(parse_n("GET / HTTP/1.1\r\nHost: h\r\nX: \x7f", 29, &req, g_hs, 100,
				 65536, &status),
			 -1);
	assert_int_equal(parse_n("GET / HTTP/1.1\rX", 16, &req, g_hs, 100, 65536, &status), -1);
}

static void helpers(void **state)
{
	(void)state;
	assert_true(mse_http_valid_token("X-Foo_bar!", 10));
	assert_false(mse_http_valid_token("X Foo", 5));
	assert_false(mse_http_valid_token("", 0));
	assert_true(mse_http_valid_field_value("a b\tc\xff", 6));
	assert_false(mse_http_valid_field_value("a\r\nb", 4));
	assert_false(mse_http_valid_field_value("a\0b", 3));
	assert_string_equal(mse_http_reason(431), "Request Header Fields Too Large");
	assert_string_equal(mse_http_reason(299), "Unknown");
}

/* ---- chunked decoder ---------------------------------------------------------------- */

/* Decodes in pieces split at cut (cut may be n: one piece), against a guard
 * page each time. Returns the decoded bytes and the leftover count. */
static long decode_split(const char *in, size_t n, size_t cut, uint64_t max, char *out,
			 size_t *out_len, struct mse_http_chunked *d)
{
	size_t pieces[2][2] = {{0, cut}, {cut, n - cut}};
	long r = -2;

	mse_http_chunked_init(d, max);
	*out_len = 0;
	for (int k = 0; k < 2 && r == -2; k++) {
		struct guarded g = guard(in + pieces[k][0], pieces[k][1]);
		size_t len = pieces[k][1];

		if (len == 0 && k == 0) {
			unguard(&g);
			continue;
		}
		r = mse_http_chunked_decode(d, g.p, &len);
		if (r != -1) {
			memcpy(out + *out_len, g.p, len);
			*out_len += len;
			if (r >= 0) {
				memcpy(out + *out_len, g.p + len, (size_t)r);
				/* Done in the first piece: the second is all leftover. */
				if (k == 0) {
					memcpy(out + *out_len + r, in + cut, n - cut);
					r += (long)(n - cut);
				}
			}
		}
		unguard(&g);
	}
	return r;
}

static void chunked_decodes_at_every_split(void **state)
{
	static const char in[] = "5\r\nhello\r\n"
				 "1;name=value;q=\"x y\"\r\n \r\n"
				 "A \t;ext\r\n0123456789\r\n"
				 "00000\r\n"
				 "Trailer-One: 1\r\nTrailer-Two: two words\r\n"
				 "\r\n"
				 "GET /next";
	static const char want[] = "hello 0123456789";
	size_t n = strlen(in);
	char out[256];
	size_t out_len;
	struct mse_http_chunked d;

	(void)state;
	for (size_t cut = 0; cut <= n; cut++) {
		long r = decode_split(in, n, cut, 0, out, &out_len, &d);

		if (r != 9)
			fail_msg("cut %zu: got %ld, want 9 leftover bytes", cut, r);
		assert_int_equal(out_len, strlen(want));
		assert_memory_equal(out, want, out_len);
		assert_memory_equal(out + out_len, "GET /next", 9);
		assert_true(mse_http_chunked_done(&d));
		assert_true(d.total == strlen(want));
	}
	/* Incomplete input: -2 for every proper prefix, never done. */
	for (size_t cut = 0; cut < n - 9; cut++) {
		char buf[256];
		size_t len = cut;

		memcpy(buf, in, cut);
		mse_http_chunked_init(&d, 0);
		if (mse_http_chunked_decode(&d, buf, &len) != -2)
			fail_msg("prefix %zu: not -2", cut);
		assert_false(mse_http_chunked_done(&d));
	}
}

static void chunked_refuses_malformed(void **state)
{
	static const char *bad[] = {
		"x\r\n",                 /* not hex */
		"\r\n",                  /* no size */
		"5\nhello\r\n0\r\n\r\n", /* bare LF */
		"5\r\nhello\n0\r\n\r\n",
		"5\r\nhelloX\r\n",   /* data longer than its size */
		"5 x\r\nhello\r\n",  /* junk after BWS */
		"-5\r\n",            /* sign */
		"0x5\r\n",           /* prefix */
		"11111111111111111\r\n", /* 17 digits: overflow */
		"0\r\nBad Trailer: x\r\n\r\n",
		"0\r\nT: \x01\r\n\r\n",
		"0\r\n\rX",
		"5;a\x01\r\n",
	};
	char buf[64], out[64];
	size_t len;
	struct mse_http_chunked d;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long r = decode_split(bad[i], strlen(bad[i]), strlen(bad[i]), 0, out, &len, &d);

		if (r != -1)
			fail_msg("case %zu (%s): got %ld, want -1", i, bad[i], r);
		assert_false(d.too_large);
	}
	/* Once failed, always failed. */
	len = 2;
	memcpy(buf, "0\r", 2);
	assert_int_equal(mse_http_chunked_decode(&d, buf, &len), -1);
}

static void chunked_limits(void **state)
{
	static const char ok[] = "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
	static const char over[] = "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n";
	char out[256], line[MSE_HTTP_MAX_CHUNK_LINE + 64];
	size_t len;
	struct mse_http_chunked d;

	(void)state;
	/* 10 bytes allowed: 5 + 5 fits, 5 + 6 does not. */
	assert_int_equal(decode_split(ok, sizeof(ok) - 1, sizeof(ok) - 1, 10, out, &len, &d), 0);
	assert_int_equal(len, 10);
	assert_int_equal(decode_split(over, sizeof(over) - 1, sizeof(over) - 1, 10, out, &len, &d),
			 -1);
	assert_true(d.too_large);
	/* A huge announced size is refused before any data is read. */
	assert_int_equal(decode_split("ffffffffffffffff\r\n", 18, 18, 10, out, &len, &d), -1);
	assert_true(d.too_large);
	/* An endless extension is refused. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "1;", 2);
	assert_int_equal(decode_split(line, sizeof(line), sizeof(line), 0, out, &len, &d), -1);
	assert_false(d.too_large);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_a_request),
		cmocka_unit_test(no_query_and_other_target_forms),
		cmocka_unit_test(connection_and_expect),
		cmocka_unit_test(content_length_and_chunked),
		cmocka_unit_test(smuggling_is_refused),
		cmocka_unit_test(limits),
		cmocka_unit_test(every_split_point),
		cmocka_unit_test(malformed_prefix_is_early),
		cmocka_unit_test(helpers),
		cmocka_unit_test(chunked_decodes_at_every_split),
		cmocka_unit_test(chunked_refuses_malformed),
		cmocka_unit_test(chunked_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
