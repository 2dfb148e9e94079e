/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fake exchange over memory buffers, for the WSGI and ASGI bridges'
 * unit tests: the request comes from fields the test sets, the answer is
 * kept for the test to check.
 */
#include "fake.h"

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ssize_t fake_read(struct mse_exchange *x, void *buf, size_t n)
{
	struct fake *f = x->impl;
	size_t left = f->body_len - f->body_off;

	if (f->read_sleep_ms)
		usleep((useconds_t)f->read_sleep_ms * 1000);
	if (f->fail_read_at >= 0 && f->body_off >= (size_t)f->fail_read_at)
		return -1;
	if (n > left)
		n = left;
	if (f->piece && n > f->piece)
		n = f->piece;
	memcpy(buf, f->body + f->body_off, n);
	f->body_off += n;
	return (ssize_t)n;
}

int fake_start(struct mse_exchange *x, int status, const char *reason,
		      const struct mse_http_header *h, size_t nh)
{
	struct fake *f = x->impl;
	size_t o = 0;

	f->nstart++;
	f->status = status;
	snprintf(f->reason, sizeof(f->reason), "%s", reason ? reason : "(null)");
	for (size_t i = 0; i < nh; i++)
		o += (size_t)snprintf(f->headers + o, sizeof(f->headers) - o, "%.*s: %.*s\n",
				      (int)h[i].name_len, h[i].name, (int)h[i].value_len, h[i].value);
	x->started = 1;
	return 0;
}

int fake_write(struct mse_exchange *x, const void *data, size_t n)
{
	struct fake *f = x->impl;

	assert_true(x->started);
	if (f->fail_write)
		return -1;
	if (f->out_len + n > f->out_cap) {
		f->out_cap = (f->out_len + n) * 2;
		f->out = realloc(f->out, f->out_cap);
		assert_non_null(f->out);
	}
	memcpy(f->out + f->out_len, data, n);
	f->out_len += n;
	x->body_sent += n;
	return 0;
}

int fake_finish(struct mse_exchange *x)
{
	struct fake *f = x->impl;

	f->nfinish++;
	return 0;
}

const struct mse_exchange_ops fake_ops = {fake_read, fake_start, fake_write, fake_finish};

void fake_init(struct fake *f, const char *method, const char *target)
{
	const char *q;

	memset(f, 0, sizeof(*f));
	f->fail_read_at = -1;
	f->req.method = method;
	f->req.method_len = strlen(method);
	f->req.target = target;
	f->req.target_len = strlen(target);
	q = strchr(target, '?');
	f->req.path = target;
	f->req.path_len = q ? (size_t)(q - target) : strlen(target);
	f->req.query = q ? q + 1 : "";
	f->req.query_len = strlen(f->req.query);
	f->req.minor_version = 1;
	f->req.headers = f->hdrs;
	f->req.content_length = -1;
	f->req.keep_alive = 1;
	snprintf(f->conn.remote_addr, sizeof(f->conn.remote_addr), "127.0.0.1");
	f->conn.remote_port = 40000;
	snprintf(f->conn.server_name, sizeof(f->conn.server_name), "localhost");
	f->conn.server_port = 8443;
}

void fake_header(struct fake *f, const char *name, const char *value)
{
	struct mse_http_header *h = &f->hdrs[f->req.num_headers++];

	h->name = name;
	h->name_len = strlen(name);
	h->value = value;
	h->value_len = strlen(value);
}

void fake_body(struct fake *f, const void *body, size_t len, int chunked)
{
	f->body = body;
	f->body_len = len;
	if (chunked)
		f->req.chunked = 1;
	else
		f->req.content_length = (int64_t)len;
}

void fake_free(struct fake *f)
{
	free(f->out);
	f->out = NULL;
}
