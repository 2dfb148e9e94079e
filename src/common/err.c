/* SPDX-License-Identifier: Apache-2.0 */
#include "common/err.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void mse_err_clear(struct mse_err *e)
{
	if (e)
		memset(e, 0, sizeof(*e));
}

__attribute__((format(printf, 2, 0))) static void vset(struct mse_err *e, const char *fmt, va_list ap)
{
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	e->expected[0] = 0;
	e->actual[0] = 0;
}

int mse_err_set(struct mse_err *e, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return -1;
	va_start(ap, fmt);
	vset(e, fmt, ap);
	va_end(ap);
	return -1;
}

int mse_err_at(struct mse_err *e, const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return -1;
	if (file)
		snprintf(e->file, sizeof(e->file), "%s", file);
	e->line = line;
	e->col = col;
	va_start(ap, fmt);
	vset(e, fmt, ap);
	va_end(ap);
	return -1;
}

int mse_err_field(struct mse_err *e, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return -1;
	snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vset(e, fmt, ap);
	va_end(ap);
	return -1;
}

int mse_err_expect(struct mse_err *e, const char *field, const char *expected, const char *actual)
{
	if (!e)
		return -1;
	snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	e->msg[0] = 0;
	return mse_err_mismatch(e, expected, actual);
}

int mse_err_mismatch(struct mse_err *e, const char *expected, const char *actual)
{
	if (!e)
		return -1;
	snprintf(e->expected, sizeof(e->expected), "%s", expected ? expected : "");
	snprintf(e->actual, sizeof(e->actual), "%s", actual ? actual : "");
	return -1;
}

void mse_err_step(struct mse_err *e, const char *step)
{
	if (e)
		snprintf(e->step, sizeof(e->step), "%s", step ? step : "");
}

void mse_err_file(struct mse_err *e, const char *file)
{
	if (e && !e->file[0] && file)
		snprintf(e->file, sizeof(e->file), "%s", file);
}

void mse_err_prefix(struct mse_err *e, const char *fmt, ...)
{
	char out[sizeof(e->msg)];
	size_t n, m;
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(out, sizeof(out), fmt, ap);
	va_end(ap);
	n = strlen(out);
	if (n + 3 < sizeof(out)) {
		memcpy(out + n, ": ", 2);
		n += 2;
		m = strnlen(e->msg, sizeof(out) - n - 1);
		memcpy(out + n, e->msg, m);
		n += m;
	}
	out[n] = 0;
	memcpy(e->msg, out, n + 1);
}

/* Appends s to out[*n..size), always NUL-terminated, truncating. */
static void put(char *out, size_t size, size_t *n, const char *s)
{
	size_t k = strnlen(s, size - 1 - *n);

	memcpy(out + *n, s, k);
	*n += k;
	out[*n] = 0;
}

const char *mse_err_message(const struct mse_err *e, char *out, size_t size)
{
	size_t n = 0, m;

	if (!size)
		return out;
	out[0] = 0;
	put(out, size, &n, e->msg);
	if (e->expected[0] || e->actual[0]) {
		m = strlen(e->msg);
		/* "context: " (mse_err_prefix on an empty message) already ends in a separator. */
		if (m && e->msg[m - 1] != ' ')
			put(out, size, &n, ": ");
		put(out, size, &n, "expected ");
		put(out, size, &n, e->expected[0] ? e->expected : "\"\"");
		put(out, size, &n, ", got ");
		put(out, size, &n, e->actual[0] ? e->actual : "\"\"");
	}
	if (!out[0])
		put(out, size, &n, "unknown error");
	return out;
}

const char *mse_err_str(const struct mse_err *e, char *out, size_t size)
{
	char num[32], msg[2048];
	size_t n = 0;

	if (!size)
		return out;
	out[0] = 0;
	if (e->step[0]) {
		put(out, size, &n, "[");
		put(out, size, &n, e->step);
		put(out, size, &n, "] ");
	}
	if (e->file[0]) {
		put(out, size, &n, e->file);
		if (e->line > 0) {
			snprintf(num, sizeof(num), ":%d", e->line);
			put(out, size, &n, num);
		}
		if (e->col > 0) {
			snprintf(num, sizeof(num), ":%d", e->col);
			put(out, size, &n, num);
		}
		put(out, size, &n, ": ");
	}
	if (e->field[0]) {
		put(out, size, &n, e->field);
		put(out, size, &n, ": ");
	}
	put(out, size, &n, mse_err_message(e, msg, sizeof(msg)));
	return out;
}

void mse_err_print(const struct mse_err *e, const char *prog, FILE *f)
{
	char buf[2048];

	fprintf(f, "%s: %s\n", prog, mse_err_str(e, buf, sizeof(buf)));
}

void mse_errlist_init(struct mse_errlist *l)
{
	memset(l, 0, sizeof(*l));
}

int mse_errlist_add(struct mse_errlist *l, const struct mse_err *e)
{
	if (!l)
		return -1;
	if (l->len == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct mse_err *n = realloc(l->items, cap * sizeof(*n));

		if (!n) {
			l->dropped++;
			return -1;
		}
		l->items = n;
		l->cap = cap;
	}
	l->items[l->len++] = *e;
	return -1;
}

size_t mse_errlist_count(const struct mse_errlist *l)
{
	return l ? l->len + l->dropped : 0;
}

void mse_errlist_print(const struct mse_errlist *l, const char *prog, FILE *f)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->len; i++)
		mse_err_print(&l->items[i], prog, f);
	if (l->dropped)
		fprintf(f, "%s: %zu more error(s) not shown (out of memory)\n", prog, l->dropped);
}

void mse_errlist_free(struct mse_errlist *l)
{
	if (!l)
		return;
	free(l->items);
	memset(l, 0, sizeof(*l));
}
