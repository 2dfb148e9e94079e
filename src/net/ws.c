/* SPDX-License-Identifier: Apache-2.0 */
/*
 * WebSocket server side over libwslay's event API. RFC 6455 is cited as
 * "RFC 6455 §x". libwslay reads and writes through the callbacks below,
 * which go to the mse_stream (non-blocking).
 */
#include "net/ws.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <wslay/wslay.h>

struct mse_ws {
	struct mse_stream *s;
	wslay_event_context_ptr ctx;
	struct mse_ws_callbacks cb;
	void *user;
	int paused;
	int broken;   /* the stream failed or ended */
	uint16_t peer_code; /* close code received (0: none yet) */
	int peer_closed;
	size_t queued;
	/*
	 * Frame boundaries, tracked over the bytes handed to libwslay: a control
	 * frame that is fragmented or longer than 125 bytes, or a 64-bit length
	 * with its top bit set (RFC 6455 §5.2, §5.5), makes libwslay close
	 * without a status code; we stop before such a frame and close with
	 * 1002 ourselves.
	 */
	int fphase;         /* 0 first byte, 1 second, 2 extended length, 3 mask, 4 payload */
	unsigned fneed;     /* bytes left in phase 2 or 3 */
	uint8_t fb0;        /* first header byte of the current frame */
	int fmask;
	uint64_t flen;      /* payload length (phase 2: being read) */
	int bad_frame;      /* a bad frame header was found: nothing more goes to libwslay */
	int bad_closed;     /* and the 1002 was queued */
	/* A close asked for while messages wait: libwslay sends control
	 * frames first, so it is queued once they went (§5.5.1: nothing
	 * after the close, and everything before it). */
	int close_later;
	uint16_t close_code;
	uint8_t close_reason[123];
	size_t close_reason_len;
};

/* Feeds bytes to the frame tracker; returns how many precede a bad frame header (n if none). */
static size_t track(struct mse_ws *w, const uint8_t *p, size_t n)
{
	size_t i = 0, frame_start = 0;

	while (i < n) {
		switch (w->fphase) {
		case 0:
			frame_start = i;
			w->fb0 = p[i++];
			w->fphase = 1;
			break;
		case 1: {
			uint8_t b = p[i++], len7 = b & 0x7f;

			w->fmask = b >> 7;
			/* §5.5: control frames (opcode 8..15) are final and carry <= 125 bytes. */
			if ((w->fb0 & 0x08) && (!(w->fb0 & 0x80) || len7 > 125)) {
				w->bad_frame = 1;
				return frame_start;
			}
			w->flen = len7;
			if (len7 >= 126) {
				w->fphase = 2;
				w->fneed = len7 == 126 ? 2 : 8;
				w->flen = 0;
			} else {
				w->fphase = w->fmask ? 3 : 4;
				w->fneed = 4;
			}
			break;
		}
		case 2:
			w->flen = w->flen << 8 | p[i++];
			if (--w->fneed == 0) {
				/* §5.2: the most significant bit of a 64-bit length must be 0. */
				if (w->flen >> 63) {
					w->bad_frame = 1;
					return frame_start;
				}
				w->fphase = w->fmask ? 3 : 4;
				w->fneed = 4;
			}
			break;
		case 3:
			i++;
			if (--w->fneed == 0)
				w->fphase = 4;
			break;
		default: {
			uint64_t k = n - i < w->flen ? n - i : w->flen;

			i += (size_t)k;
			w->flen -= k;
			break;
		}
		}
		if (w->fphase == 4 && w->flen == 0)
			w->fphase = 0;
	}
	return n;
}

/* ---- the handshake ------------------------------------------------------ */

static const struct mse_http_header *find(const struct mse_http_request *q, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < q->num_headers; i++)
		if (q->headers[i].name_len == n && strncasecmp(q->headers[i].name, name, n) == 0)
			return &q->headers[i];
	return NULL;
}

/* Does a comma-separated header value hold this token (case-insensitive)? */
static int has_token(const struct mse_http_request *q, const char *name, const char *tok)
{
	size_t tl = strlen(tok);

	for (size_t i = 0; i < q->num_headers; i++) {
		const struct mse_http_header *h = &q->headers[i];
		const char *p, *end;

		if (h->name_len != strlen(name) || strncasecmp(h->name, name, h->name_len) != 0)
			continue;
		p = h->value;
		end = h->value + h->value_len;
		while (p < end) {
			const char *c = memchr(p, ',', (size_t)(end - p));
			const char *e = c ? c : end;

			while (p < e && (*p == ' ' || *p == '\t'))
				p++;
			while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if ((size_t)(e - p) == tl && strncasecmp(p, tok, tl) == 0)
				return 1;
			p = c ? c + 1 : end;
		}
	}
	return 0;
}

int mse_ws_is_upgrade(const struct mse_http_request *req, const char **key, size_t *key_len,
		      const char **bad)
{
	const struct mse_http_header *k, *v;
	unsigned char raw[64];

	*bad = NULL;
	*key = NULL;
	*key_len = 0;
	/* RFC 6455 §4.2.1: a GET, HTTP/1.1 or later, Upgrade: websocket, Connection: Upgrade. */
	if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0 || req->minor_version < 1 ||
	    !has_token(req, "upgrade", "websocket") || !has_token(req, "connection", "upgrade"))
		return 0;
	v = find(req, "sec-websocket-version");
	if (!v || v->value_len != 2 || memcmp(v->value, "13", 2) != 0) {
		*bad = "Sec-WebSocket-Version must be 13";
		return 1;
	}
	k = find(req, "sec-websocket-key");
	/* §4.2.1 item 5: base64 of 16 bytes (24 characters, "==" padded). */
	if (!k || k->value_len != 24 || EVP_DecodeBlock(raw, (const unsigned char *)k->value, 24) != 18 ||
	    k->value[22] != '=' || k->value[23] != '=') {
		*bad = "Sec-WebSocket-Key must be the base64 of 16 bytes";
		return 1;
	}
	*key = k->value;
	*key_len = k->value_len;
	return 1;
}

int mse_ws_accept(const char *key, size_t key_len, char out[MSE_WS_ACCEPT_LEN + 1])
{
	/* §1.3 / §4.2.2: SHA-1 of the key and this GUID, base64. */
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char md[SHA_DIGEST_LENGTH];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) && EVP_DigestUpdate(c, key, key_len) &&
		 EVP_DigestUpdate(c, guid, sizeof(guid) - 1) && EVP_DigestFinal_ex(c, md, NULL);

	EVP_MD_CTX_free(c);
	if (!ok)
		return -1;
	return EVP_EncodeBlock((unsigned char *)out, md, sizeof(md)) == MSE_WS_ACCEPT_LEN ? 0 : -1;
}

/* ---- framing ------------------------------------------------------------- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
		       void *user)
{
	struct mse_ws *w = user;
	ssize_t n;

	(void)flags;
	if (w->bad_frame) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	n = w->s->ops->read(w->s, buf, len);
	if (n > 0) {
		size_t ok = track(w, buf, (size_t)n);

		if (ok == 0 && w->bad_frame) {
			wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
			return -1;
		}
		return (ssize_t)ok;
	}
	if (n == -2) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	w->broken = 1;
	wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *user)
{
	struct mse_ws *w = user;
	ssize_t n;

	(void)flags;
	n = w->s->ops->write(w->s, data, len);
	if (n >= 0) {
		if (n == 0) {
			wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
			return -1;
		}
		return n;
	}
	if (n == -2) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	w->broken = 1;
	wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

/* Strict UTF-8 (RFC 3629 §4): no overlongs, surrogates or code points past U+10FFFF. */
static int utf8_ok(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		size_t len;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
		   void *user)
{
	struct mse_ws *w = user;

	(void)ctx;
	switch (a->opcode) {
	case WSLAY_TEXT_FRAME:
	case WSLAY_BINARY_FRAME:
		if (w->cb.on_message)
			w->cb.on_message(w->user, a->opcode == WSLAY_TEXT_FRAME, a->msg, a->msg_length);
		break;
	case WSLAY_CONNECTION_CLOSE:
		/*
		 * §7.1.5: no status code in the frame reads as 1005. A code a peer
		 * may not send (§7.4.1, §7.4.2: below 1000, 1004-1006, 1012-2999,
		 * 5000 and up) is a protocol error: libwslay answers 1002, and so
		 * do we report it.
		 */
		w->peer_closed = 1;
		if (!a->status_code)
			w->peer_code = 1005;
		else if ((a->status_code >= 1000 && a->status_code <= 1003) ||
			 (a->status_code >= 1007 && a->status_code <= 1011) ||
			 (a->status_code >= 3000 && a->status_code <= 4999))
			w->peer_code = a->status_code;
		else
			w->peer_code = 1002;
		/* §5.5.1: the reason is UTF-8; libwslay checks it only when it had the frame at once. */
		if (a->msg_length > 2 && !utf8_ok(a->msg + 2, a->msg_length - 2))
			w->peer_code = 1007;
		break;
	default: /* ping (answered by the library), pong */
		break;
	}
}

struct mse_ws *mse_ws_new(struct mse_stream *s, uint64_t max_msg,
			  const struct mse_ws_callbacks *cb, void *user)
{
	struct wslay_event_callbacks wcb = {
		.recv_callback = recv_cb,
		.send_callback = send_cb,
		.on_msg_recv_callback = msg_cb,
	};
	struct mse_ws *w = calloc(1, sizeof(*w));

	if (!w || wslay_event_context_server_init(&w->ctx, &wcb, w) != 0) {
		free(w);
		return NULL;
	}
	w->s = s;
	w->cb = *cb;
	w->user = user;
	wslay_event_config_set_max_recv_msg_length(w->ctx, max_msg);
	return w;
}

int mse_ws_io(struct mse_ws *w)
{
	if (!w->broken && !w->paused && wslay_event_want_read(w->ctx) &&
	    wslay_event_recv(w->ctx) != 0)
		w->broken = 1;
	if (!w->broken && w->bad_frame && !w->bad_closed) {
		/* The frames before the bad one were delivered; now 1002 (§7.4.1). */
		w->bad_closed = 1;
		wslay_event_queue_close(w->ctx, 1002, NULL, 0);
		wslay_event_shutdown_read(w->ctx);
	}
	if (!w->broken && wslay_event_want_write(w->ctx) && wslay_event_send(w->ctx) != 0)
		w->broken = 1;
	if (!w->broken && w->close_later && wslay_event_get_queued_msg_count(w->ctx) == 0) {
		w->close_later = 0;
		wslay_event_queue_close(w->ctx, w->close_code, w->close_reason, w->close_reason_len);
		if (wslay_event_want_write(w->ctx) && wslay_event_send(w->ctx) != 0)
			w->broken = 1;
	}
	if (w->broken)
		return -1;
	/* Over once both sides closed (§7.1.1: the server then closes the TCP connection). */
	if (!wslay_event_want_read(w->ctx) && !wslay_event_want_write(w->ctx))
		return -1;
	return 0;
}

int mse_ws_send(struct mse_ws *w, int text, const void *data, size_t len)
{
	struct wslay_event_msg m = {text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME, data, len};

	return w->broken || wslay_event_queue_msg(w->ctx, &m) != 0 ? -1 : 0;
}

int mse_ws_close(struct mse_ws *w, uint16_t code, const char *reason, size_t reason_len)
{
	if (reason_len > 123)
		reason_len = 123;
	if (w->broken || w->close_later)
		return -1;
	if (wslay_event_get_queued_msg_count(w->ctx) > 0) {
		w->close_later = 1;
		w->close_code = code;
		if (reason_len)
			memcpy(w->close_reason, reason, reason_len);
		w->close_reason_len = reason_len;
		return 0;
	}
	return w->broken || wslay_event_queue_close(w->ctx, code, (const uint8_t *)reason,
						   reason_len) != 0
		       ? -1
		       : 0;
}

void mse_ws_pause(struct mse_ws *w, int paused)
{
	w->paused = paused;
}

int mse_ws_wants(struct mse_ws *w)
{
	int r = 0;

	if (w->broken)
		return 0;
	if (!w->paused && wslay_event_want_read(w->ctx))
		r |= 1;
	if (wslay_event_want_write(w->ctx) || w->close_later)
		r |= 2;
	return r;
}

size_t mse_ws_queued(struct mse_ws *w)
{
	return wslay_event_get_queued_msg_length(w->ctx);
}

int mse_ws_fd(struct mse_ws *w)
{
	return w->s->ops->fd(w->s);
}

int mse_ws_pending(struct mse_ws *w)
{
	return w->s->ops->pending ? w->s->ops->pending(w->s) > 0 : 0;
}

uint16_t mse_ws_close_code(struct mse_ws *w)
{
	uint16_t sent;

	if (w->peer_closed)
		return w->peer_code;
	sent = wslay_event_get_close_sent(w->ctx) ? wslay_event_get_status_code_sent(w->ctx) : 0;
	if (sent == 1002 || sent == 1009 || sent == 1007)
		return sent;
	if (sent && !w->broken)
		return sent;
	return 1006;
}

void mse_ws_free(struct mse_ws *w)
{
	if (!w)
		return;
	wslay_event_context_free(w->ctx);
	if (w->s)
		w->s->ops->close(w->s);
	free(w);
}
