/* SPDX-License-Identifier: Apache-2.0 */
#include "attest/der.h"

#include <stdlib.h>
#include <string.h>

void mse_der_init(struct mse_der *d)
{
	memset(d, 0, sizeof(*d));
}

void mse_der_free(struct mse_der *d)
{
	if (!d)
		return;
	free(d->p);
	memset(d, 0, sizeof(*d));
}

static int reserve(struct mse_der *d, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (d->failed)
		return -1;
	if (n > SIZE_MAX / 2 - d->len) {
		d->failed = 1;
		return -1;
	}
	if (d->len + n <= d->cap)
		return 0;
	cap = d->cap ? d->cap : 64;
	while (cap < d->len + n)
		cap *= 2;
	p = realloc(d->p, cap);
	if (!p) {
		d->failed = 1;
		return -1;
	}
	d->p = p;
	d->cap = cap;
	return 0;
}

static void put(struct mse_der *d, const void *p, size_t n)
{
	if (reserve(d, n) != 0)
		return;
	if (n)
		memcpy(d->p + d->len, p, n);
	d->len += n;
}

/* Definite-length encoding, short or long form (X.690 §8.1.3). */
static size_t len_encode(uint8_t out[9], size_t len)
{
	size_t n = 0, i;
	uint8_t tmp[8];

	if (len < 0x80) {
		out[0] = (uint8_t)len;
		return 1;
	}
	while (len) {
		tmp[n++] = (uint8_t)(len & 0xff);
		len >>= 8;
	}
	out[0] = (uint8_t)(0x80 | n);
	for (i = 0; i < n; i++)
		out[1 + i] = tmp[n - 1 - i];
	return n + 1;
}

void mse_der_prim(struct mse_der *d, uint8_t tag, const void *content, size_t len)
{
	uint8_t l[9];
	size_t ln = len_encode(l, len);

	put(d, &tag, 1);
	put(d, l, ln);
	put(d, content, len);
}

void mse_der_begin(struct mse_der *d, uint8_t tag)
{
	if (d->depth >= MSE_DER_MAX_DEPTH) {
		d->failed = 1;
		return;
	}
	d->open[d->depth++] = d->len;
	/* Tag and a one-byte length placeholder, widened in mse_der_end. */
	put(d, &tag, 1);
	put(d, "\0", 1);
}

void mse_der_end(struct mse_der *d)
{
	size_t start, content, clen, ln;
	uint8_t l[9];

	if (d->failed)
		return;
	if (d->depth <= 0) {
		d->failed = 1;
		return;
	}
	start = d->open[--d->depth];
	content = start + 2;
	clen = d->len - content;
	ln = len_encode(l, clen);
	if (ln > 1) {
		if (reserve(d, ln - 1) != 0)
			return;
		memmove(d->p + content + ln - 1, d->p + content, clen);
		d->len += ln - 1;
	}
	memcpy(d->p + start + 1, l, ln);
}

void mse_der_uint(struct mse_der *d, uint8_t tag, uint64_t v)
{
	uint8_t b[9];
	size_t n = 0, i;
	uint8_t tmp[9];

	do {
		tmp[n++] = (uint8_t)(v & 0xff);
		v >>= 8;
	} while (v);
	/* A leading 0x00 keeps the value positive (X.690 §8.3.2). */
	if (tmp[n - 1] & 0x80)
		tmp[n++] = 0;
	for (i = 0; i < n; i++)
		b[i] = tmp[n - 1 - i];
	mse_der_prim(d, tag, b, n);
}

void mse_der_bool(struct mse_der *d, int v)
{
	uint8_t b = v ? 0xff : 0x00;

	mse_der_prim(d, MSE_DER_BOOLEAN, &b, 1);
}

void mse_der_oid(struct mse_der *d, const char *dotted)
{
	uint8_t out[64];
	size_t n = 0;
	unsigned long arcs[32];
	size_t na = 0, i;
	const char *s = dotted;
	char *end;

	while (*s && na < 32) {
		arcs[na++] = strtoul(s, &end, 10);
		if (end == s || (*end && *end != '.')) {
			d->failed = 1;
			return;
		}
		s = *end ? end + 1 : end;
	}
	if (na < 2 || *s) {
		d->failed = 1;
		return;
	}
	/* X.690 §8.19: first two arcs combined, then base-128 big-endian. */
	arcs[1] += arcs[0] * 40;
	for (i = 1; i < na; i++) {
		uint8_t t[10];
		size_t k = 0;
		unsigned long v = arcs[i];

		do {
			t[k++] = (uint8_t)(v & 0x7f);
			v >>= 7;
		} while (v);
		if (n + k > sizeof(out)) {
			d->failed = 1;
			return;
		}
		while (k) {
			k--;
			out[n++] = (uint8_t)(t[k] | (k ? 0x80 : 0));
		}
	}
	mse_der_prim(d, MSE_DER_OID, out, n);
}

int mse_der_ok(const struct mse_der *d)
{
	return !d->failed;
}

int mse_der_take(struct mse_der *d, uint8_t **out, size_t *len)
{
	if (d->failed || d->depth != 0) {
		mse_der_free(d);
		return -1;
	}
	*out = d->p;
	*len = d->len;
	d->p = NULL;
	d->len = d->cap = 0;
	return 0;
}
