/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the HTTP request parser and the chunked decoder.
 *
 * Besides "no crash, no over-read" (each input is copied to a buffer of its
 * exact size, so ASan sees any byte read past it), it checks the parsers'
 * contracts:
 * - a request head accepted at length n is -2 on every shorter prefix tried,
 *   and the same n on the whole input however much follows;
 * - decoding a chunked body in two pieces gives the same bytes and result as
 *   decoding it in one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"

static struct mse_http_header g_hs[16];

static void check_request(const uint8_t *data, size_t size)
{
	struct mse_http_request req;
	char *buf = malloc(size ? size : 1);
	int status = 0, r;

	memcpy(buf, data, size);
	r = mse_http_parse_request(buf, size, 4096, &req, g_hs, 16, &status);
	if (r == -1 && (status < 400 || status > 505))
		abort();
	if (r > 0) {
		size_t cuts[3] = {0, (size_t)r / 2, (size_t)r - 1};

		if ((size_t)r > size || req.num_headers > 16)
			abort();
		for (int k = 0; k < 3; k++) {
			char *p = malloc(cuts[k] ? cuts[k] : 1);
			int s2;

			memcpy(p, data, cuts[k]);
			if (mse_http_parse_request(p, cuts[k], 4096, &req, g_hs, 16, &s2) != -2)
				abort();
			free(p);
		}
	}
	free(buf);
}

static void check_chunked(const uint8_t *data, size_t size)
{
	struct mse_http_chunked d1, d2;
	size_t n = size ? size : 1;
	char *one = malloc(n), *two = malloc(n), *out2 = malloc(n);
	size_t len1 = size, cut = size ? data[0] % (size + 1) : 0;
	size_t la = cut, lb = size - cut, dec2 = 0, o = 0;
	long r1, r2;

	memcpy(one, data, size);
	memcpy(two, data, size);
	mse_http_chunked_init(&d1, 1 << 20);
	mse_http_chunked_init(&d2, 1 << 20);
	r1 = mse_http_chunked_decode(&d1, one, &len1);
	/* The same input in two pieces, [0, cut) then [cut, size); out2 gets
	 * the decoded bytes followed by the leftover, as one[] does. */
	r2 = mse_http_chunked_decode(&d2, two, &la);
	if (r2 >= 0) {
		memcpy(out2, two, la + (size_t)r2);
		memcpy(out2 + la + (size_t)r2, data + cut, size - cut);
		dec2 = la;
		r2 += (long)(size - cut);
	} else if (r2 == -2) {
		memcpy(out2, two, la);
		o = la;
		r2 = mse_http_chunked_decode(&d2, two + cut, &lb);
		if (r2 != -1) {
			memcpy(out2 + o, two + cut, lb + (r2 > 0 ? (size_t)r2 : 0));
			dec2 = la + lb;
		}
	}
	if ((r1 == -1) != (r2 == -1))
		abort();
	if (r1 != -1 && (r1 != r2 || len1 != dec2 ||
			 memcmp(one, out2, len1 + (r1 > 0 ? (size_t)r1 : 0)) != 0))
		abort();
	free(one);
	free(two);
	free(out2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_request(data, size);
	check_chunked(data, size);
	return 0;
}
