/* SPDX-License-Identifier: Apache-2.0 */
#include "common/buf.h"

#include <string.h>

void mse_buf_init(struct mse_buf *r, const void *p, size_t len)
{
	r->p = p;
	r->len = p ? len : 0;
	r->off = 0;
}

size_t mse_buf_remaining(const struct mse_buf *r)
{
	return r->len - r->off;
}

const uint8_t *mse_buf_cur(const struct mse_buf *r)
{
	return r->p ? r->p + r->off : NULL;
}

int mse_buf_bytes(struct mse_buf *r, size_t n, const uint8_t **out)
{
	if (n > mse_buf_remaining(r))
		return -1;
	*out = r->p + r->off;
	r->off += n;
	return 0;
}

int mse_buf_skip(struct mse_buf *r, size_t n)
{
	const uint8_t *p;

	return mse_buf_bytes(r, n, &p);
}

int mse_buf_copy(struct mse_buf *r, void *out, size_t n)
{
	const uint8_t *p;

	if (mse_buf_bytes(r, n, &p) != 0)
		return -1;
	if (n)
		memcpy(out, p, n);
	return 0;
}

int mse_buf_sub(struct mse_buf *r, size_t n, struct mse_buf *sub)
{
	const uint8_t *p;

	if (mse_buf_bytes(r, n, &p) != 0)
		return -1;
	mse_buf_init(sub, p, n);
	return 0;
}

int mse_buf_u8(struct mse_buf *r, uint8_t *v)
{
	return mse_buf_copy(r, v, 1);
}

int mse_buf_u16le(struct mse_buf *r, uint16_t *v)
{
	const uint8_t *p;

	if (mse_buf_bytes(r, 2, &p) != 0)
		return -1;
	*v = (uint16_t)(p[0] | (uint16_t)p[1] << 8);
	return 0;
}

int mse_buf_u32le(struct mse_buf *r, uint32_t *v)
{
	const uint8_t *p;

	if (mse_buf_bytes(r, 4, &p) != 0)
		return -1;
	*v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	return 0;
}

int mse_buf_u64le(struct mse_buf *r, uint64_t *v)
{
	uint32_t lo, hi;
	size_t save = r->off;

	if (mse_buf_u32le(r, &lo) != 0 || mse_buf_u32le(r, &hi) != 0) {
		r->off = save;
		return -1;
	}
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

int mse_buf_u16be(struct mse_buf *r, uint16_t *v)
{
	const uint8_t *p;

	if (mse_buf_bytes(r, 2, &p) != 0)
		return -1;
	*v = (uint16_t)((uint16_t)p[0] << 8 | p[1]);
	return 0;
}

int mse_buf_u32be(struct mse_buf *r, uint32_t *v)
{
	const uint8_t *p;

	if (mse_buf_bytes(r, 4, &p) != 0)
		return -1;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
	return 0;
}
