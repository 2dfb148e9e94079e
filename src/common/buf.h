/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_buf — a bounded reader over untrusted bytes.
 *
 * Every parser of wire data (quotes, certificates extensions, tar entries,
 * HTTP) reads through this cursor. A read that would go past the end fails
 * and leaves the cursor where it was; nothing is ever read out of bounds.
 * Multi-byte integers are decoded explicitly little- or big-endian: never
 * cast a packed struct over network bytes.
 *
 * The reader borrows the caller's buffer; it allocates nothing.
 */
#ifndef MSE_BUF_H
#define MSE_BUF_H

#include <stddef.h>
#include <stdint.h>

#define MSE_MUST_CHECK __attribute__((warn_unused_result))

struct mse_buf {
	const uint8_t *p;
	size_t len;
	size_t off;
};

void mse_buf_init(struct mse_buf *r, const void *p, size_t len);
size_t mse_buf_remaining(const struct mse_buf *r);
/* Pointer to the current position (valid for mse_buf_remaining() bytes). */
const uint8_t *mse_buf_cur(const struct mse_buf *r);

/* Each returns 0 on success, -1 if fewer bytes remain than needed. */
int mse_buf_u8(struct mse_buf *r, uint8_t *v) MSE_MUST_CHECK;
int mse_buf_u16le(struct mse_buf *r, uint16_t *v) MSE_MUST_CHECK;
int mse_buf_u32le(struct mse_buf *r, uint32_t *v) MSE_MUST_CHECK;
int mse_buf_u64le(struct mse_buf *r, uint64_t *v) MSE_MUST_CHECK;
int mse_buf_u16be(struct mse_buf *r, uint16_t *v) MSE_MUST_CHECK;
int mse_buf_u32be(struct mse_buf *r, uint32_t *v) MSE_MUST_CHECK;
/* Copies n bytes into out. */
int mse_buf_copy(struct mse_buf *r, void *out, size_t n) MSE_MUST_CHECK;
/* Zero-copy: *out points into the underlying buffer. */
int mse_buf_bytes(struct mse_buf *r, size_t n, const uint8_t **out) MSE_MUST_CHECK;
/* A sub-reader over the next n bytes; the parent advances past them. */
int mse_buf_sub(struct mse_buf *r, size_t n, struct mse_buf *sub) MSE_MUST_CHECK;
int mse_buf_skip(struct mse_buf *r, size_t n) MSE_MUST_CHECK;

#endif
