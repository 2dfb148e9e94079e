/* SPDX-License-Identifier: Apache-2.0 */
#include "net/http.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"

/* Character classes (RFC 9110 §5.6.2 tchar, §5.5 field-vchar, RFC 3986). */
enum {
	C_TCHAR = 1,  /* token character */
	C_VALUE = 2,  /* field-vchar / obs-text / SP / HTAB */
	C_TARGET = 4, /* allowed in a request-target (visible ASCII but '#') */
	C_HOST = 8,   /* allowed in a Host value (reg-name, IP-literal, port) */
};

static unsigned char g_class[256];
static pthread_once_t g_class_once = PTHREAD_ONCE_INIT;

static void class_build(void)
{
	static const char tchar_extra[] = "!#$%&'*+-.^_`|~";
	static const char host_extra[] = "-._~!$&'()*+,;=:[]%";

	for (int c = 0; c < 256; c++) {
		unsigned char k = 0;
		int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			    (c >= 'A' && c <= 'Z');

		if (alnum || (c && strchr(tchar_extra, c)))
			k |= C_TCHAR;
		if (c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f))
			k |= C_VALUE;
		if (c >= 0x21 && c <= 0x7e && c != '#')
			k |= C_TARGET;
		if (alnum || (c && strchr(host_extra, c)))
			k |= C_HOST;
		g_class[c] = k;
	}
}

static void class_init(void)
{
	pthread_once(&g_class_once, class_build);
}

int mse_http_is_tchar(unsigned char c)
{
	class_init();
	return (g_class[c] & C_TCHAR) != 0;
}

int mse_http_valid_token(const char *s, size_t n)
{
	class_init();
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(g_class[(unsigned char)s[i]] & C_TCHAR))
			return 0;
	return 1;
}

int mse_http_valid_field_value(const char *s, size_t n)
{
	class_init();
	for (size_t i = 0; i < n; i++)
		if (!(g_class[(unsigned char)s[i]] & C_VALUE))
			return 0;
	return 1;
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int ieq(const char *a, size_t an, const char *b)
{
	size_t bn = strlen(b);

	if (an != bn)
		return 0;
	for (size_t i = 0; i < an; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

const struct mse_http_header *mse_http_find_header(const struct mse_http_request *req,
						   const char *name)
{
	for (size_t i = 0; i < req->num_headers; i++)
		if (ieq(req->headers[i].name, req->headers[i].name_len, name))
			return &req->headers[i];
	return NULL;
}

const char *mse_http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/*
 * The request parser. A cursor (mse_buf) walks the head; each step returns
 * 0 (done), -1 (malformed) or -2 (ran out of bytes while still valid).
 */
struct parse {
	struct mse_buf r;
	int status; /* answer for -1 */
};

static int bad(struct parse *p, int status)
{
	p->status = status;
	return -1;
}

/* Takes bytes of class cls up to (not including) stop. */
static int take_until(struct parse *p, unsigned cls, unsigned char stop, const char **s, size_t *n)
{
	const uint8_t *cur = mse_buf_cur(&p->r);
	size_t avail = mse_buf_remaining(&p->r);
	size_t i;

	for (i = 0; i < avail; i++) {
		if (cur[i] == stop)
			break;
		if (!(g_class[cur[i]] & cls))
			return bad(p, 400);
	}
	if (i == avail)
		return -2;
	*s = (const char *)cur;
	*n = i;
	return mse_buf_skip(&p->r, i + 1) == 0 ? 0 : bad(p, 400);
}

/* Expects exactly CRLF. */
static int crlf(struct parse *p)
{
	const uint8_t *cur = mse_buf_cur(&p->r);
	size_t avail = mse_buf_remaining(&p->r);

	if (avail < 1)
		return -2;
	if (cur[0] != '\r')
		return bad(p, 400);
	if (avail < 2)
		return -2;
	if (cur[1] != '\n')
		return bad(p, 400);
	return mse_buf_skip(&p->r, 2) == 0 ? 0 : bad(p, 400);
}

static int parse_version(struct parse *p, int *minor)
{
	static const char prefix[] = "HTTP/";
	const uint8_t *cur = mse_buf_cur(&p->r);
	size_t avail = mse_buf_remaining(&p->r);
	size_t i;

	for (i = 0; i < 5; i++) {
		if (i == avail)
			return -2;
		if (cur[i] != (uint8_t)prefix[i])
			return bad(p, 400);
	}
	/* HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3). */
	if (avail < 6)
		return -2;
	if (cur[5] < '0' || cur[5] > '9')
		return bad(p, 400);
	if (avail < 7)
		return -2;
	if (cur[6] != '.')
		return bad(p, 400);
	if (avail < 8)
		return -2;
	if (cur[7] < '0' || cur[7] > '9')
		return bad(p, 400);
	if (cur[5] != '1')
		return bad(p, 505);
	*minor = cur[7] - '0';
	if (mse_buf_skip(&p->r, 8) != 0)
		return bad(p, 400);
	return crlf(p);
}

int mse_http_parse_length(const char *s, size_t n, int64_t *out)
{
	int64_t v = 0;

	if (n == 0 || n > 18) /* 18 digits cannot overflow int64 */
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/*
 * Walks a comma-separated list (RFC 9110 §5.6.1), calling fn on each
 * non-empty element trimmed of OWS. Returns fn's first nonzero result.
 */
typedef int (*list_fn)(const char *s, size_t n, void *ctx);

static int each_element(const char *s, size_t n, list_fn fn, void *ctx)
{
	size_t i = 0;

	while (i <= n) {
		size_t start = i, end;
		int rc;

		while (i < n && s[i] != ',')
			i++;
		end = i;
		while (start < end && (s[start] == ' ' || s[start] == '\t'))
			start++;
		while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
			end--;
		if (end > start && (rc = fn(s + start, end - start, ctx)) != 0)
			return rc;
		i++;
	}
	return 0;
}

struct semantics {
	int64_t cl;
	int cl_bad;
	int te_seen, te_chunked_count, te_last_chunked, te_other, te_elements;
	int conn_close, conn_keep_alive;
	int expect_continue, expect_other;
};

static int on_cl(const char *s, size_t n, void *ctx)
{
	struct semantics *m = ctx;
	int64_t v;

	if (mse_http_parse_length(s, n, &v) != 0 || (m->cl >= 0 && m->cl != v)) {
		m->cl_bad = 1;
		return 1;
	}
	m->cl = v;
	return 0;
}

static int on_te(const char *s, size_t n, void *ctx)
{
	struct semantics *m = ctx;

	m->te_elements++;
	if (ieq(s, n, "chunked")) {
		m->te_chunked_count++;
		m->te_last_chunked = 1;
	} else {
		m->te_other++;
		m->te_last_chunked = 0;
	}
	return 0;
}

static int on_connection(const char *s, size_t n, void *ctx)
{
	struct semantics *m = ctx;

	if (ieq(s, n, "close"))
		m->conn_close = 1;
	else if (ieq(s, n, "keep-alive"))
		m->conn_keep_alive = 1;
	return 0;
}

static int on_expect(const char *s, size_t n, void *ctx)
{
	struct semantics *m = ctx;

	if (ieq(s, n, "100-continue"))
		m->expect_continue = 1;
	else
		m->expect_other = 1;
	return 0;
}

static int parse_target(struct parse *p, struct mse_http_request *req)
{
	const char *t = req->target;
	size_t n = req->target_len;
	size_t path_start = 0, q;

	if (n == 0)
		return bad(p, 400);
	if (t[0] == '/') {
		path_start = 0;
	} else if (n == 1 && t[0] == '*') {
		/* asterisk-form, OPTIONS only (RFC 9112 §3.2.4) */
		if (!ieq(req->method, req->method_len, "OPTIONS"))
			return bad(p, 400);
	} else if (ieq(req->method, req->method_len, "CONNECT")) {
		/* authority-form (§3.2.3): host:port, no path */
		for (size_t i = 0; i < n; i++)
			if (!(g_class[(unsigned char)t[i]] & C_HOST))
				return bad(p, 400);
		req->path = t;
		req->path_len = n;
		req->query = "";
		req->query_len = 0;
		return 0;
	} else {
		/* absolute-form (§3.2.2): http(s)://authority[/path][?query] */
		size_t skip;

		if (n >= 7 && ieq(t, 7, "http://"))
			skip = 7;
		else if (n >= 8 && ieq(t, 8, "https://"))
			skip = 8;
		else
			return bad(p, 400);
		path_start = skip;
		while (path_start < n && t[path_start] != '/' && t[path_start] != '?')
			path_start++;
		if (path_start == skip)
			return bad(p, 400); /* empty authority */
	}
	q = path_start;
	while (q < n && t[q] != '?')
		q++;
	if (q == path_start && t[0] != '*') {
		req->path = "/";
		req->path_len = 1;
	} else {
		req->path = t + path_start;
		req->path_len = q - path_start;
	}
	if (q < n) {
		req->query = t + q + 1;
		req->query_len = n - q - 1;
	} else {
		req->query = "";
		req->query_len = 0;
	}
	return 0;
}

static int parse_head(struct parse *p, struct mse_http_request *req,
		      struct mse_http_header *headers, size_t max_headers)
{
	struct semantics m = {.cl = -1};
	int rc, hosts = 0;

	/* RFC 9112 §2.2: ignore empty lines received before the request-line. */
	for (;;) {
		const uint8_t *cur = mse_buf_cur(&p->r);
		size_t avail = mse_buf_remaining(&p->r);

		if (avail == 0)
			return -2;
		if (cur[0] != '\r')
			break;
		if ((rc = crlf(p)) != 0)
			return rc;
	}
	if ((rc = take_until(p, C_TCHAR, ' ', &req->method, &req->method_len)) != 0)
		return rc;
	if (req->method_len == 0)
		return bad(p, 400);
	if ((rc = take_until(p, C_TARGET, ' ', &req->target, &req->target_len)) != 0)
		return rc;
	if ((rc = parse_version(p, &req->minor_version)) != 0)
		return rc;
	if ((rc = parse_target(p, req)) != 0)
		return rc;

	req->num_headers = 0;
	req->headers = headers;
	for (;;) {
		const uint8_t *cur = mse_buf_cur(&p->r);
		size_t avail = mse_buf_remaining(&p->r);
		struct mse_http_header h;
		const char *v;
		size_t vn;

		if (avail == 0)
			return -2;
		if (cur[0] == '\r') {
			if ((rc = crlf(p)) != 0)
				return rc;
			break;
		}
		/* A line starting with whitespace is obs-fold (RFC 9112 §5.2). */
		if ((rc = take_until(p, C_TCHAR, ':', &h.name, &h.name_len)) != 0)
			return rc;
		if (h.name_len == 0)
			return bad(p, 400);
		if ((rc = take_until(p, C_VALUE, '\r', &v, &vn)) != 0)
			return rc;
		/* take_until consumed the CR: the LF must follow. */
		cur = mse_buf_cur(&p->r);
		if (mse_buf_remaining(&p->r) == 0)
			return -2;
		if (cur[0] != '\n' || mse_buf_skip(&p->r, 1) != 0)
			return bad(p, 400);
		while (vn && (v[0] == ' ' || v[0] == '\t'))
			v++, vn--;
		while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
			vn--;
		h.value = v;
		h.value_len = vn;
		if (req->num_headers == max_headers)
			return bad(p, 431);
		headers[req->num_headers++] = h;

		if (ieq(h.name, h.name_len, "content-length")) {
			if (each_element(v, vn, on_cl, &m) != 0 || m.cl_bad || m.cl < 0)
				return bad(p, 400);
		} else if (ieq(h.name, h.name_len, "transfer-encoding")) {
			m.te_seen = 1;
			each_element(v, vn, on_te, &m);
		} else if (ieq(h.name, h.name_len, "host")) {
			if (++hosts > 1)
				return bad(p, 400);
			for (size_t i = 0; i < vn; i++)
				if (!(g_class[(unsigned char)v[i]] & C_HOST))
					return bad(p, 400);
		} else if (ieq(h.name, h.name_len, "connection")) {
			each_element(v, vn, on_connection, &m);
		} else if (ieq(h.name, h.name_len, "expect")) {
			each_element(v, vn, on_expect, &m);
			if (vn == 0)
				m.expect_other = 1;
		}
	}

	if (req->minor_version >= 1 && hosts == 0)
		return bad(p, 400);
	req->content_length = m.cl;
	req->chunked = 0;
	if (m.te_seen) {
		/* RFC 9112 §6.1: TE with CL, or on HTTP/1.0, is a smuggling attempt. */
		if (m.cl >= 0 || req->minor_version == 0 || m.te_elements == 0)
			return bad(p, 400);
		if (!m.te_last_chunked || m.te_chunked_count != 1)
			return bad(p, 400);
		if (m.te_other)
			return bad(p, 501);
		req->chunked = 1;
	}
	/* RFC 9110 §10.1.1: ignore 100-continue from HTTP/1.0 clients. */
	if (m.expect_other)
		return bad(p, 417);
	req->expect_continue = m.expect_continue && req->minor_version >= 1;
	if (m.conn_close)
		req->keep_alive = 0;
	else
		req->keep_alive = req->minor_version >= 1 || m.conn_keep_alive;
	return 0;
}

int mse_http_parse_request(const char *buf, size_t len, size_t max_head_bytes,
			   struct mse_http_request *req, struct mse_http_header *headers,
			   size_t max_headers, int *status)
{
	struct parse p;
	size_t limit = len;
	int rc;

	class_init();
	if (max_head_bytes > (size_t)1 << 30)
		max_head_bytes = (size_t)1 << 30; /* the result must fit an int */
	if (limit > max_head_bytes)
		limit = max_head_bytes;
	memset(req, 0, sizeof(*req));
	mse_buf_init(&p.r, buf, limit);
	p.status = 400;
	rc = parse_head(&p, req, headers, max_headers);
	if (rc == 0)
		return (int)p.r.off;
	if (rc == -2 && len >= max_head_bytes) {
		/* Out of room: 414 while still in the request line, else 431. */
		*status = req->headers == NULL ? 414 : 431;
		return -1;
	}
	if (rc == -1)
		*status = p.status;
	return rc;
}

/* ---- chunked decoder ------------------------------------------------- */

enum {
	CH_SIZE_FIRST, /* first hex digit of a chunk-size */
	CH_SIZE,       /* more hex digits, or BWS / ';' / CR */
	CH_BWS,        /* whitespace before ';' */
	CH_EXT,        /* chunk extensions up to CR */
	CH_SIZE_LF,    /* LF after the size line */
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TRAILER_START, /* start of a trailer line, or CR of the final CRLF */
	CH_TRAILER_NAME,
	CH_TRAILER_VALUE,
	CH_TRAILER_LF,
	CH_END_LF,
	CH_DONE,
	CH_ERROR,
};

void mse_http_chunked_init(struct mse_http_chunked *d, uint64_t max_total)
{
	memset(d, 0, sizeof(*d));
	d->state = CH_SIZE_FIRST;
	d->max_total = max_total;
}

int mse_http_chunked_done(const struct mse_http_chunked *d)
{
	return d->state == CH_DONE;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (unsigned char)lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static long chunked_fail(struct mse_http_chunked *d)
{
	d->state = CH_ERROR;
	return -1;
}

long mse_http_chunked_decode(struct mse_http_chunked *d, char *buf, size_t *len)
{
	size_t n = *len, i = 0, o = 0;

	class_init();
	if (d->state == CH_ERROR)
		return -1;
	while (i < n && d->state != CH_DONE) {
		unsigned char c = (unsigned char)buf[i];

		if (d->state == CH_DATA) {
			size_t k = n - i;

			if (k > d->chunk_left)
				k = (size_t)d->chunk_left;
			if (o != i)
				memmove(buf + o, buf + i, k);
			o += k;
			i += k;
			d->chunk_left -= k;
			if (d->chunk_left == 0)
				d->state = CH_DATA_CR;
			continue;
		}
		i++;
		switch (d->state) {
		case CH_SIZE_FIRST:
		case CH_SIZE: {
			int h = hexval(c);

			if (h >= 0) {
				/* 16 digits fill a uint64; more would overflow. */
				if (++d->digits > 16)
					return chunked_fail(d);
				d->chunk_left = (d->chunk_left << 4) | (uint64_t)h;
				d->state = CH_SIZE;
			} else if (d->state == CH_SIZE_FIRST) {
				return chunked_fail(d);
			} else if (c == '\r') {
				d->state = CH_SIZE_LF;
			} else if (c == ';') {
				d->state = CH_EXT;
			} else if (c == ' ' || c == '\t') {
				d->state = CH_BWS; /* BWS ";" ext (RFC 9112 §7.1.1) */
			} else {
				return chunked_fail(d);
			}
			if (++d->line_bytes > MSE_HTTP_MAX_CHUNK_LINE)
				return chunked_fail(d);
			break;
		}
		case CH_BWS:
			if (c == ';')
				d->state = CH_EXT;
			else if (c != ' ' && c != '\t')
				return chunked_fail(d);
			if (++d->line_bytes > MSE_HTTP_MAX_CHUNK_LINE)
				return chunked_fail(d);
			break;
		case CH_EXT:
			if (c == '\r')
				d->state = CH_SIZE_LF;
			else if (!(g_class[c] & C_VALUE))
				return chunked_fail(d);
			if (++d->line_bytes > MSE_HTTP_MAX_CHUNK_LINE)
				return chunked_fail(d);
			break;
		case CH_SIZE_LF:
			if (c != '\n')
				return chunked_fail(d);
			d->line_bytes = 0;
			d->digits = 0;
			if (d->chunk_left == 0) {
				d->state = CH_TRAILER_START;
				break;
			}
			if (d->max_total &&
			    (d->chunk_left > d->max_total || d->total > d->max_total - d->chunk_left)) {
				d->too_large = 1;
				return chunked_fail(d);
			}
			d->total += d->chunk_left;
			d->state = CH_DATA;
			break;
		case CH_DATA_CR:
			if (c != '\r')
				return chunked_fail(d);
			d->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (c != '\n')
				return chunked_fail(d);
			d->state = CH_SIZE_FIRST;
			break;
		case CH_TRAILER_START:
			if (c == '\r') {
				d->state = CH_END_LF;
				break;
			}
			if (!(g_class[c] & C_TCHAR))
				return chunked_fail(d);
			d->state = CH_TRAILER_NAME;
			break;
		case CH_TRAILER_NAME:
			if (c == ':')
				d->state = CH_TRAILER_VALUE;
			else if (!(g_class[c] & C_TCHAR))
				return chunked_fail(d);
			break;
		case CH_TRAILER_VALUE:
			if (c == '\r')
				d->state = CH_TRAILER_LF;
			else if (!(g_class[c] & C_VALUE))
				return chunked_fail(d);
			break;
		case CH_TRAILER_LF:
			if (c != '\n')
				return chunked_fail(d);
			d->state = CH_TRAILER_START;
			break;
		case CH_END_LF:
			if (c != '\n')
				return chunked_fail(d);
			d->state = CH_DONE;
			break;
		default:
			return chunked_fail(d);
		}
		if (d->state >= CH_TRAILER_START && d->state <= CH_END_LF &&
		    ++d->trailer_bytes > MSE_HTTP_MAX_TRAILER_BYTES)
			return chunked_fail(d);
	}
	*len = o;
	if (d->state != CH_DONE)
		return -2;
	if (o != i)
		memmove(buf + o, buf + i, n - i);
	return (long)(n - i);
}

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void mse_http_date(char out[32])
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	/* Formatted once a second per thread, not once per response. */
	static _Thread_local time_t last;
	static _Thread_local char text[32];
	time_t t = time(NULL);

	if (t != last || !text[0]) {
		struct tm tm;

		gmtime_r(&t, &tm);
		snprintf(text, sizeof(text), "%s, %02d %s %04d %02d:%02d:%02d GMT",
			 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
			 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
		last = t;
	}
	memcpy(out, text, 32);
}

/* Appends s[0..n) to line[*o..cap), escaped; stops short of the end. */
static void log_escape(char *line, size_t cap, size_t *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n && *o + 5 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
			line[(*o)++] = '\\';
			line[(*o)++] = 'x';
			line[(*o)++] = hex[ch >> 4];
			line[(*o)++] = hex[ch & 15];
		} else {
			line[(*o)++] = (char)ch;
		}
	}
}

void mse_http_log_line(FILE *f, const char *remote, const struct mse_http_request *req,
		       const char *version, int status, uint64_t bytes)
{
	char line[2048];
	size_t o = 0;
	time_t t = time(NULL);
	struct tm tm;

	if (req && req->method) {
		log_escape(line, sizeof(line) - 24, &o, req->method, req->method_len);
		line[o++] = ' ';
		log_escape(line, sizeof(line) - 24, &o, req->target, req->target_len);
		snprintf(line + o, sizeof(line) - o, " %s", version);
	} else {
		snprintf(line, sizeof(line), "-");
	}
	gmtime_r(&t, &tm);
	flockfile(f);
	fprintf(f, "%s - - [%02d/%s/%04d:%02d:%02d:%02d +0000] \"%s\" %d ", remote, tm.tm_mday,
		months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, line,
		status);
	if (bytes)
		fprintf(f, "%llu\n", (unsigned long long)bytes);
	else
		fputs("-\n", f);
	fflush(f);
	funlockfile(f);
}
