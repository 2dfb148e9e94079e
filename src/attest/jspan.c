/* SPDX-License-Identifier: Apache-2.0 */
/* JSON span extractor: an RFC 8259 scanner that records where values are. */
#include "attest/jspan.h"

#include <string.h>

struct scan {
	const char *s;
	size_t len, pos;
};

static void ws(struct scan *c)
{
	while (c->pos < c->len &&
	       (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' || c->s[c->pos] == '\n' || c->s[c->pos] == '\r'))
		c->pos++;
}

static int hexdig(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* RFC 8259 §7: a string; c->pos on the opening quote. */
static int string(struct scan *c)
{
	c->pos++;
	while (c->pos < c->len) {
		unsigned char ch = (unsigned char)c->s[c->pos++];

		if (ch == '"')
			return 0;
		if (ch < 0x20)
			return -1;
		if (ch == '\\') {
			if (c->pos >= c->len)
				return -1;
			ch = (unsigned char)c->s[c->pos++];
			if (ch == 'u') {
				if (c->len - c->pos < 4)
					return -1;
				for (int i = 0; i < 4; i++)
					if (!hexdig(c->s[c->pos + (size_t)i]))
						return -1;
				c->pos += 4;
			} else if (!strchr("\"\\/bfnrt", ch) || ch == 0) {
				return -1;
			}
		}
	}
	return -1;
}

static int digits(struct scan *c)
{
	size_t start = c->pos;

	while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9')
		c->pos++;
	return c->pos > start ? 0 : -1;
}

/* RFC 8259 §6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int number(struct scan *c)
{
	if (c->pos < c->len && c->s[c->pos] == '-')
		c->pos++;
	if (c->pos < c->len && c->s[c->pos] == '0')
		c->pos++;
	else if (digits(c) != 0)
		return -1;
	if (c->pos < c->len && c->s[c->pos] == '.') {
		c->pos++;
		if (digits(c) != 0)
			return -1;
	}
	if (c->pos < c->len && (c->s[c->pos] == 'e' || c->s[c->pos] == 'E')) {
		c->pos++;
		if (c->pos < c->len && (c->s[c->pos] == '+' || c->s[c->pos] == '-'))
			c->pos++;
		if (digits(c) != 0)
			return -1;
	}
	return 0;
}

static int literal(struct scan *c, const char *word)
{
	size_t n = strlen(word);

	if (c->len - c->pos < n || memcmp(c->s + c->pos, word, n) != 0)
		return -1;
	c->pos += n;
	return 0;
}

struct want {
	const char *key;
	size_t key_len;
	struct mse_jspan *out;
	int hits;
};

static int value(struct scan *c, int depth, struct want *w);

/* Object or array; w is non-NULL only for the top-level object. */
static int container(struct scan *c, int depth, struct want *w)
{
	char close = c->s[c->pos] == '{' ? '}' : ']';
	int obj = close == '}';

	if (depth >= MSE_JSPAN_MAX_DEPTH)
		return -1;
	c->pos++;
	ws(c);
	if (c->pos < c->len && c->s[c->pos] == close) {
		c->pos++;
		return 0;
	}
	for (;;) {
		size_t kstart = 0, kend = 0, vstart;

		if (obj) {
			if (c->pos >= c->len || c->s[c->pos] != '"')
				return -1;
			kstart = c->pos + 1;
			if (string(c) != 0)
				return -1;
			kend = c->pos - 1;
			ws(c);
			if (c->pos >= c->len || c->s[c->pos] != ':')
				return -1;
			c->pos++;
			ws(c);
		}
		vstart = c->pos;
		if (value(c, depth + 1, NULL) != 0)
			return -1;
		if (w && kend - kstart == w->key_len && memcmp(c->s + kstart, w->key, w->key_len) == 0) {
			w->hits++;
			w->out->p = c->s + vstart;
			w->out->len = c->pos - vstart;
		}
		ws(c);
		if (c->pos >= c->len)
			return -1;
		if (c->s[c->pos] == ',') {
			c->pos++;
			ws(c);
			continue;
		}
		if (c->s[c->pos] == close) {
			c->pos++;
			return 0;
		}
		return -1;
	}
}

static int value(struct scan *c, int depth, struct want *w)
{
	if (c->pos >= c->len)
		return -1;
	switch (c->s[c->pos]) {
	case '{':
	case '[':
		return container(c, depth, w);
	case '"':
		return string(c);
	case 't':
		return literal(c, "true");
	case 'f':
		return literal(c, "false");
	case 'n':
		return literal(c, "null");
	default:
		return number(c);
	}
}

int mse_jspan_member(const char *json, size_t len, const char *key, struct mse_jspan *out,
		     struct mse_err *err)
{
	struct scan c = {json, json ? len : 0, 0};
	struct want w = {key, strlen(key), out, 0};

	out->p = NULL;
	out->len = 0;
	ws(&c);
	if (c.pos >= c.len || json[c.pos] != '{' || container(&c, 0, &w) != 0) {
		out->p = NULL;
		out->len = 0;
		mse_err_step(err, "collateral");
		return mse_err_field(err, key, "not a valid JSON object (syntax error near byte %zu)", c.pos);
	}
	ws(&c);
	if (c.pos != c.len) {
		out->p = NULL;
		out->len = 0;
		mse_err_step(err, "collateral");
		return mse_err_field(err, key, "unexpected bytes after the JSON object at byte %zu", c.pos);
	}
	if (w.hits != 1) {
		mse_err_step(err, "collateral");
		out->p = NULL;
		out->len = 0;
		return mse_err_field(err, key, w.hits ? "member appears %d times: ambiguous, refused"
						      : "member missing (%d)", w.hits);
	}
	return 0;
}
