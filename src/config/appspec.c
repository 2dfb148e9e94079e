/* SPDX-License-Identifier: Apache-2.0 */
#include "config/appspec.h"

#include <stdio.h>
#include <string.h>

struct cur {
	const char *s;
	size_t i, n;
};

static int ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static int ident_char(unsigned char c)
{
	return ident_start(c) || (c >= '0' && c <= '9');
}

/* Dot-separated identifiers, up to stop (not consumed). 0 or -1. */
static int dotted(struct cur *c)
{
	for (;;) {
		if (c->i >= c->n || !ident_start((unsigned char)c->s[c->i]))
			return -1;
		while (c->i < c->n && ident_char((unsigned char)c->s[c->i]))
			c->i++;
		if (c->i < c->n && c->s[c->i] == '.') {
			c->i++;
			continue;
		}
		return 0;
	}
}

static void ws(struct cur *c)
{
	while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t'))
		c->i++;
}

static int word(struct cur *c, const char *w)
{
	size_t k = strlen(w);

	if (c->n - c->i >= k && memcmp(c->s + c->i, w, k) == 0 &&
	    (c->i + k == c->n || !ident_char((unsigned char)c->s[c->i + k]))) {
		c->i += k;
		return 1;
	}
	return 0;
}

/* A string literal without prefix: '...' or "..." with backslash escapes, one line. */
static int string_lit(struct cur *c)
{
	char q = c->s[c->i++];

	while (c->i < c->n) {
		char ch = c->s[c->i++];

		if (ch == q)
			return 0;
		if (ch == '\n' || ch == '\r')
			return -1;
		if (ch == '\\') {
			if (c->i >= c->n)
				return -1;
			c->i++;
		}
	}
	return -1;
}

/* A number: digits, '.', and the letters of 0x.., 1e-5, 1_000, 2j. */
static int number_lit(struct cur *c)
{
	size_t st = c->i;

	while (c->i < c->n) {
		char ch = c->s[c->i];

		if ((ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || (ch >= 'a' && ch <= 'z') ||
		    (ch >= 'A' && ch <= 'Z'))
			c->i++;
		else if ((ch == '+' || ch == '-') && c->i > st &&
			 (c->s[c->i - 1] == 'e' || c->s[c->i - 1] == 'E'))
			c->i++;
		else
			break;
	}
	return c->i > st ? 0 : -1;
}

static int value(struct cur *c, int depth);

/* Items up to close: value [: value] separated by ',', trailing ',' allowed. */
static int items(struct cur *c, char close, int depth, int dict_ok)
{
	int dict = -1; /* unknown until the first item */

	for (;;) {
		ws(c);
		if (c->i < c->n && c->s[c->i] == close) {
			c->i++;
			return 0;
		}
		if (value(c, depth) != 0)
			return -1;
		ws(c);
		if (dict_ok && dict != 0 && c->i < c->n && c->s[c->i] == ':') {
			c->i++;
			dict = 1;
			if (value(c, depth) != 0)
				return -1;
			ws(c);
		} else if (dict == 1) {
			return -1;
		} else {
			dict = 0;
		}
		if (c->i < c->n && c->s[c->i] == ',') {
			c->i++;
			continue;
		}
		if (c->i < c->n && c->s[c->i] == close) {
			c->i++;
			return 0;
		}
		return -1;
	}
}

static int value(struct cur *c, int depth)
{
	char ch;

	ws(c);
	if (c->i >= c->n)
		return -1;
	ch = c->s[c->i];
	if (ch == '\'' || ch == '"')
		return string_lit(c);
	if (ch == '-' || ch == '+') {
		c->i++;
		ws(c);
		return c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9' ? number_lit(c) : -1;
	}
	if (ch >= '0' && ch <= '9')
		return number_lit(c);
	if (ch == '.' && c->i + 1 < c->n && c->s[c->i + 1] >= '0' && c->s[c->i + 1] <= '9')
		return number_lit(c);
	if (word(c, "True") || word(c, "False") || word(c, "None"))
		return 0;
	if (depth >= MSE_APPSPEC_DEPTH)
		return -1;
	if (ch == '(' || ch == '[' || ch == '{') {
		c->i++;
		return items(c, ch == '(' ? ')' : ch == '[' ? ']' : '}', depth + 1, ch == '{');
	}
	return -1;
}

/* "(" [arg {"," arg} [","]] ")" with positional arguments before NAME=value ones. */
static int call_args(struct cur *c)
{
	int kw = 0;

	c->i++; /* '(' */
	for (;;) {
		size_t save;

		ws(c);
		if (c->i < c->n && c->s[c->i] == ')') {
			c->i++;
			return 0;
		}
		save = c->i;
		if (c->i < c->n && ident_start((unsigned char)c->s[c->i])) {
			while (c->i < c->n && ident_char((unsigned char)c->s[c->i]))
				c->i++;
			ws(c);
			if (c->i < c->n && c->s[c->i] == '=' &&
			    !(c->i + 1 < c->n && c->s[c->i + 1] == '=')) {
				c->i++;
				kw = 1;
			} else {
				c->i = save;
			}
		}
		if (c->i == save && kw)
			return -1; /* a positional argument after a keyword one */
		if (value(c, 1) != 0)
			return -1;
		ws(c);
		if (c->i < c->n && c->s[c->i] == ',') {
			c->i++;
			continue;
		}
		if (c->i < c->n && c->s[c->i] == ')') {
			c->i++;
			return 0;
		}
		return -1;
	}
}

static int bad(struct mse_err *err, const char *spec, size_t at, const char *expected)
{
	char actual[300];

	snprintf(actual, sizeof(actual), "\"%.*s\"", 200, spec);
	mse_err_expect(err, "python_application", expected, actual);
	if (err)
		err->col = (int)at + 1;
	return -1;
}

int mse_appspec_parse(const char *spec, struct mse_appspec *out, struct mse_err *err)
{
	static const char form[] = "\"module:variable\" or \"module:factory(literal arguments)\"";
	struct cur c = {.s = spec, .i = 0, .n = spec ? strlen(spec) : 0};

	memset(out, 0, sizeof(*out));
	if (!spec || !c.n)
		return bad(err, spec ? spec : "", 0, form);
	if (c.n > MSE_APPSPEC_MAX)
		return bad(err, spec, MSE_APPSPEC_MAX, "at most 4096 characters");
	if (dotted(&c) != 0 || c.i >= c.n || spec[c.i] != ':')
		return bad(err, spec, c.i, form);
	out->module_len = c.i++;
	out->attr_off = c.i;
	if (dotted(&c) != 0)
		return bad(err, spec, c.i, form);
	out->attr_len = c.i - out->attr_off;
	out->call_off = c.i;
	if (c.i == c.n)
		return 0;
	if (spec[c.i] != '(')
		return bad(err, spec, c.i, form);
	if (call_args(&c) != 0)
		return bad(err, spec, c.i,
			   "factory arguments that are Python literals (strings, numbers, True, "
			   "False, None, tuples, lists, dicts), positional before NAME=value");
	if (c.i != c.n)
		return bad(err, spec, c.i, "nothing after the factory's closing parenthesis");
	out->call = 1;
	return 0;
}
