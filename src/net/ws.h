/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_ws — WebSocket (RFC 6455) for the server side: the opening
 * handshake checks and the framing of one connection over an mse_stream,
 * with Debian's libwslay doing the frame parsing (masking, fragmentation,
 * control frames, close codes).
 *
 * Limits: a message over max_msg bytes closes the connection with 1009
 * (message too big); a protocol error (bad opcode, unmasked client frame,
 * RSV bits, a fragmented or oversized control frame...) with 1002. Pings
 * are answered with pongs by the library. Text is not checked for UTF-8
 * here: the caller does (1007).
 *
 * Threads: one connection is used by one thread at a time (the caller's
 * I/O thread). Ownership: mse_ws_new takes the stream; mse_ws_free closes
 * and frees it.
 */
#ifndef MSE_WS_H
#define MSE_WS_H

#include <stddef.h>
#include <stdint.h>

#include "net/exchange.h"

#define MSE_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

/*
 * Is this request a WebSocket opening handshake (RFC 6455 §4.2.1: GET,
 * HTTP/1.1, Upgrade: websocket, Connection: upgrade)? 1 yes, 0 no. When it
 * is, *key points at Sec-WebSocket-Key; *bad names what is wrong with an
 * otherwise-upgrade request (version not 13, key not 16 bytes of base64),
 * NULL if nothing is.
 */
int mse_ws_is_upgrade(const struct mse_http_request *req, const char **key, size_t *key_len,
		      const char **bad);

/* Sec-WebSocket-Accept for a key (§4.2.2 step 5.4): out gets 28 chars + NUL. */
int mse_ws_accept(const char *key, size_t key_len, char out[MSE_WS_ACCEPT_LEN + 1]);

struct mse_ws_callbacks {
	/* A complete message (fragments joined): text (opcode 1) or binary (2). */
	void (*on_message)(void *user, int text, const uint8_t *data, size_t len);
};

struct mse_ws;

/* Takes s. max_msg: the largest message accepted (> 0). Returns NULL if out of memory. */
struct mse_ws *mse_ws_new(struct mse_stream *s, uint64_t max_msg,
			  const struct mse_ws_callbacks *cb, void *user);

/*
 * Reads what the stream has and dispatches complete messages; then writes
 * what can be written. Returns 0 while the connection lives, -1 once it is
 * over (closed both ways, or broken): then mse_ws_close_code tells why.
 */
int mse_ws_io(struct mse_ws *w);

/* Queues a message (copied). 0, or -1 if the connection is closing. */
int mse_ws_send(struct mse_ws *w, int text, const void *data, size_t len);
/* Queues a close frame (code 1000..4999, reason up to 123 bytes). */
int mse_ws_close(struct mse_ws *w, uint16_t code, const char *reason, size_t reason_len);
/* Stops reading (the receiver is full); mse_ws_resume starts again. */
void mse_ws_pause(struct mse_ws *w, int paused);

/* What to poll for: bit 1 readable, bit 2 writable. */
int mse_ws_wants(struct mse_ws *w);
/* Bytes of queued outgoing messages. */
size_t mse_ws_queued(struct mse_ws *w);
/* The stream's socket and whether it holds readable bytes already. */
int mse_ws_fd(struct mse_ws *w);
int mse_ws_pending(struct mse_ws *w);
/*
 * Why the connection ended, as ASGI's websocket.disconnect says it: the
 * code the peer sent (1005 if none), the code we sent after a protocol
 * error (1002) or an oversized message (1009), 1006 if the stream broke.
 */
uint16_t mse_ws_close_code(struct mse_ws *w);

/* Closes the stream and frees everything. NULL-safe. */
void mse_ws_free(struct mse_ws *w);

#endif
