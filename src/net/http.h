/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_http — a strict HTTP/1.1 request parser and chunked-body decoder.
 *
 * Pure functions over buffers (no I/O, no allocation, no copies of the
 * head): the server reads bytes, calls these, and answers. The return
 * contract is picohttpparser's:
 *     > 0   bytes consumed (a whole request head)
 *     -1    malformed: *status says which answer to send (400, 414, 431, 417,
 *           501, 505); the connection must then be closed
 *     -2    incomplete: call again with more bytes (the prefix is valid so far)
 *
 * Strictness (RFC 9112 and RFC 9110), chosen because a lenient parser behind
 * or in front of another one is how request smuggling happens:
 * - lines end in CRLF; a bare CR or bare LF is malformed (RFC 9112 §2.2 lets
 *   us refuse bare LF); obsolete line folding is refused (§5.2);
 * - request-line is exactly `method SP target SP HTTP/1.x CRLF` (§3); empty
 *   lines before it are skipped (§2.2); HTTP/2+ gives 505;
 * - field names are tokens, no whitespace before the colon (§5.1); values are
 *   VCHAR/obs-text with SP/HTAB inside, trimmed of OWS (RFC 9110 §5.5);
 * - Host: exactly one on HTTP/1.1 (RFC 9112 §3.2), at most one on 1.0;
 * - Content-Length: digits only; repeated identical values are accepted,
 *   differing ones refused (RFC 9110 §8.6);
 * - Transfer-Encoding with Content-Length, on HTTP/1.0, with `chunked` not
 *   last or repeated: 400 (RFC 9112 §6.1, §6.3); any other coding: 501;
 * - Expect other than 100-continue: 417 (RFC 9110 §10.1.1).
 */
#ifndef MSE_HTTP_H
#define MSE_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "net/exchange.h"

/* Default limit on the request head (request line + fields + CRLF). */
#define MSE_HTTP_MAX_HEAD_BYTES_DEFAULT (64 * 1024)
/* Default limit on a request body (2 GiB). */
#define MSE_HTTP_MAX_BODY_DEFAULT ((uint64_t)2 << 30)
/* Chunk-size line with extensions, and the whole trailer section. */
#define MSE_HTTP_MAX_CHUNK_LINE 4096
#define MSE_HTTP_MAX_TRAILER_BYTES (16 * 1024)

/*
 * Parses one request head from buf[0..len). headers is caller storage for
 * up to max_headers fields (more gives 431); req->headers points to it.
 * max_head_bytes bounds the head: an incomplete head that already reaches it
 * is refused (414 while still in the request line, else 431).
 * On success every pointer in *req points into buf (or to static strings:
 * query "" when absent, path "/" for an absolute-form target without path).
 * Returns bytes consumed, -1 (with *status set) or -2.
 */
int mse_http_parse_request(const char *buf, size_t len, size_t max_head_bytes,
			   struct mse_http_request *req, struct mse_http_header *headers,
			   size_t max_headers, int *status);

/*
 * The current time as an RFC 9110 §5.6.7 IMF-fixdate ("Sun, 06 Nov 1994
 * 08:49:37 GMT"), independent of the C locale, for the Date header.
 * Formatted once a second per thread.
 */
void mse_http_date(char out[32]);

/*
 * Writes one Common Log Format line to f (one locked write, flushed):
 *   remote - - [03/Dec/2026:18:00:00 +0000] "GET /x HTTP/1.1" 200 1234
 * The method and target are escaped (\xNN for controls, non-ASCII, '"' and
 * '\\') so a client cannot forge a line or a field; req NULL (or without a
 * method: nothing parsed) logs "-"; version is the protocol as written
 * ("HTTP/1.1", "HTTP/2.0"); bytes 0 logs "-".
 */
void mse_http_log_line(FILE *f, const char *remote, const struct mse_http_request *req,
		       const char *version, int status, uint64_t bytes);

/* Parses a decimal Content-Length value s[0..n) (1*DIGIT, at most 18 digits:
 * no overflow); -1 on anything else. */
int mse_http_parse_length(const char *s, size_t n, int64_t *out);

/* Case-insensitive lookup of the first field named name; NULL if none. */
const struct mse_http_header *mse_http_find_header(const struct mse_http_request *req,
						   const char *name);

/* 1 if c is an RFC 9110 §5.6.2 tchar. */
int mse_http_is_tchar(unsigned char c);
/* 1 if s[0..n) is a valid field value to send (no CR, LF, NUL, CTL but HTAB). */
int mse_http_valid_field_value(const char *s, size_t n);
/* 1 if s[0..n) is a non-empty token. */
int mse_http_valid_token(const char *s, size_t n);
/* Standard reason phrase for a status code ("Unknown" if none). */
const char *mse_http_reason(int status);

/*
 * Chunked transfer coding decoder (RFC 9112 §7.1), streaming and in place:
 * framing is removed and the decoded data moved to the front of buf, so it
 * works on whatever slice of the body the socket gave. State is kept across
 * calls: a size line or trailer split across reads is fine.
 * Chunk extensions are checked for syntax and ignored; trailer fields are
 * checked and discarded (WSGI has no use for them).
 */
struct mse_http_chunked {
	int state;
	int digits;          /* hex digits of the current size */
	uint64_t chunk_left; /* data bytes left in the current chunk */
	uint64_t total;      /* decoded bytes so far */
	uint64_t max_total;  /* body limit; 0 = none */
	size_t line_bytes;   /* bytes of the current size or trailer line */
	size_t trailer_bytes;
	int too_large; /* set when -1 was returned because of max_total */
};

void mse_http_chunked_init(struct mse_http_chunked *d, uint64_t max_total);
/*
 * Decodes buf[0..*len). On return *len is the number of decoded body bytes,
 * now at buf[0..*len). Returns:
 *     >= 0  the body ended: that many bytes followed it (the next pipelined
 *           request), now at buf[*len .. *len + ret)
 *     -1    malformed (or over max_total: d->too_large is set)
 *     -2    the body continues: every input byte was consumed
 */
long mse_http_chunked_decode(struct mse_http_chunked *d, char *buf, size_t *len);
/* 1 once the terminating chunk and trailer section were decoded. */
int mse_http_chunked_done(const struct mse_http_chunked *d);

#endif
