/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TOML 1.0.0 parser. Section references (§) are to https://toml.io/en/v1.0.0
 * and its ABNF (toml.abnf in the toml-lang/toml repository, tag 1.0.0).
 *
 * The parser is a single pass over the text with one byte of lookahead (a
 * few more for date-times). UTF-8 is validated up front for the whole
 * document, so the scanner only has to care about ASCII structure and
 * control characters. Table semantics (§Table, §Array of Tables, §Keys on
 * dotted keys) are enforced with per-table flags, see T_* below.
 *
 * Bounds: a text lexer needs lookahead without consuming (is this `'''` or
 * `''`? a date or a number?), which mse_buf does not offer, so the parser
 * has its own cursor: every read goes through peek()/peek_at(), which return
 * -1 at or past the end, or through an explicit `< len` check. The unit test
 * places documents right before an unmapped page, and fuzz_toml runs under
 * ASan, to hold that line.
 */
#include "config/toml.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* How a table came to exist; decides whether it may be defined or extended. */
enum {
	T_IMPLICIT = 1u << 0, /* intermediate of a [a.b.c] header: may be defined later by [a] */
	T_EXPLICIT = 1u << 1, /* defined by a [header] or [[header]]: never again */
	T_DOTTED = 1u << 2,   /* created by a dotted key: extendable by dotted keys only */
	T_INLINE = 1u << 3,   /* inline table: frozen once closed (§Inline Table) */
	A_STATIC = 1u << 4,   /* array value [..]: [[x]] may not append to it */
	A_AOT = 1u << 5,      /* array of tables created by [[x]] */
};

struct mse_toml {
	struct mse_toml_value root;
};

struct parser {
	const char *s;
	size_t len, off;
	const char *file;
	struct mse_err *err;
	int line;          /* line of p->off */
	size_t line_start; /* offset of the first byte of that line */
	/*
	 * Depth below the root of the table or array being filled (root 0):
	 * a value added to it lies at depth + 1. cur_depth is cur's.
	 */
	int depth, cur_depth;
	struct mse_toml_value *cur; /* table receiving key/values */
	/* pos_at's memo: column of byte col_off on the line starting at col_line_start */
	size_t col_off, col_line_start;
	int col;
};

struct sbuf {
	char *p;
	size_t len, cap;
};

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

static int sb_reserve(struct sbuf *b, size_t extra)
{
	size_t want;
	char *n;

	if (b->len + extra + 1 <= b->cap)
		return 0;
	want = b->cap ? b->cap * 2 : 32;
	while (want < b->len + extra + 1)
		want *= 2;
	n = realloc(b->p, want);
	if (!n)
		return -1;
	b->p = n;
	b->cap = want;
	return 0;
}

static int sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (sb_reserve(b, n) != 0)
		return -1;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}

static int peek(const struct parser *p)
{
	return p->off < p->len ? (unsigned char)p->s[p->off] : -1;
}

static int peek_at(const struct parser *p, size_t k)
{
	return p->off + k < p->len ? (unsigned char)p->s[p->off + k] : -1;
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int is_hex(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_bare(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '-';
}

/* §Spec: control characters other than tab are not allowed in strings/comments. */
static int is_ctrl(int c)
{
	return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

/*
 * Position of byte offset off; columns count code points. Offsets on the
 * current line are counted on from the last one asked for (the parser asks
 * in increasing order), so a long line costs linear time, not quadratic.
 */
static struct mse_toml_pos pos_at(struct parser *p, size_t off)
{
	struct mse_toml_pos pos;
	size_t start, i;
	int line;

	if (off > p->len)
		off = p->len;
	if (off >= p->line_start) {
		line = p->line;
		start = p->line_start;
		pos.col = 1;
		if (p->col_line_start == start && p->col_off <= off && p->col > 0) {
			start = p->col_off;
			pos.col = p->col;
		}
		for (i = start; i < off; i++)
			if (((unsigned char)p->s[i] & 0xc0) != 0x80)
				pos.col++;
		p->col_line_start = p->line_start;
		p->col_off = off;
		p->col = pos.col;
		pos.line = line;
		return pos;
	}
	/* before the current line: only for messages about earlier text */
	line = 1;
	start = 0;
	for (i = 0; i < off; i++)
		if (p->s[i] == '\n') {
			line++;
			start = i + 1;
		}
	pos.line = line;
	pos.col = 1;
	for (i = start; i < off; i++)
		if (((unsigned char)p->s[i] & 0xc0) != 0x80)
			pos.col++;
	return pos;
}

/* A printable excerpt of the text at off, for "got '...'" in messages. */
static void excerpt(const struct parser *p, size_t off, char *out, size_t size)
{
	size_t n = 0, i = off, k;

	while (i < p->len && i - off < 24) {
		unsigned char c = (unsigned char)p->s[i];

		if (c == '\n')
			break;
		if (c < 0x20 || c == 0x7f) {
			if (n + 5 > size)
				break;
			n += (size_t)snprintf(out + n, size - n, "\\x%02x", c);
			i++;
			continue;
		}
		/* whole UTF-8 sequences only (the text was validated) */
		k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		if (i + k > p->len || n + k + 1 > size)
			break;
		memcpy(out + n, p->s + i, k);
		n += k;
		i += k;
	}
	out[n] = 0;
}

__attribute__((format(printf, 3, 4))) static int fail(struct parser *p, size_t off, const char *fmt,
						      ...)
{
	struct mse_toml_pos pos = pos_at(p, off);
	char msg[512], ex[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (off >= p->len)
		mse_err_at(p->err, p->file, pos.line, pos.col, "%s, got end of file", msg);
	else if (p->s[off] == '\n' || (p->s[off] == '\r' && off + 1 < p->len && p->s[off + 1] == '\n'))
		mse_err_at(p->err, p->file, pos.line, pos.col, "%s, got end of line", msg);
	else {
		excerpt(p, off, ex, sizeof(ex));
		mse_err_at(p->err, p->file, pos.line, pos.col, "%s, got '%s'", msg, ex);
	}
	return -1;
}

static int oom(struct parser *p)
{
	struct mse_toml_pos pos = pos_at(p, p->off);

	return mse_err_at(p->err, p->file, pos.line, pos.col, "out of memory");
}

/* Consumes a newline (LF or CRLF) at p->off if there is one; 1 if consumed. */
static int eat_newline(struct parser *p)
{
	size_t n = 0;

	if (peek(p) == '\n')
		n = 1;
	else if (peek(p) == '\r' && peek_at(p, 1) == '\n')
		n = 2;
	if (!n)
		return 0;
	p->off += n;
	p->line++;
	p->line_start = p->off;
	return 1;
}

static void skip_ws(struct parser *p)
{
	while (peek(p) == ' ' || peek(p) == '\t')
		p->off++;
}

/* A comment runs to the end of the line; it may not hold control chars. */
static int skip_comment(struct parser *p)
{
	if (peek(p) != '#')
		return 0;
	p->off++;
	while (p->off < p->len && p->s[p->off] != '\n') {
		int c = (unsigned char)p->s[p->off];

		if (c == '\r' && peek_at(p, 1) == '\n')
			break;
		if (is_ctrl(c))
			return fail(p, p->off, "control character in comment");
		p->off++;
	}
	return 0;
}

/* Whitespace, comments and newlines (inside arrays). */
static int skip_ws_nl(struct parser *p)
{
	for (;;) {
		skip_ws(p);
		if (skip_comment(p) != 0)
			return -1;
		if (!eat_newline(p))
			return 0;
	}
}

/* ------------------------------------------------------------------ */
/* UTF-8 (RFC 3629 §4): no overlongs, no surrogates, nothing past U+10FFFF */

static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t need, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		cp = c & 0x07;
	} else
		return 0;
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

static int validate_utf8(struct parser *p)
{
	size_t i = 0, k;

	while (i < p->len) {
		k = utf8_len((const unsigned char *)p->s + i, p->len - i);
		if (!k) {
			/* positions before this byte are valid UTF-8: pos_at works */
			struct mse_toml_pos pos = pos_at(p, i);

			return mse_err_at(p->err, p->file, pos.line, pos.col,
					  "invalid UTF-8 byte 0x%02x", (unsigned char)p->s[i]);
		}
		i += k;
	}
	return 0;
}

static int put_utf8(struct sbuf *b, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return sb_put(b, u, n);
}

/* ------------------------------------------------------------------ */
/* tree                                                                  */

/*
 * Frees v and everything under it without recursion: containers are
 * threaded onto a work list through free_next, so the stack never depends
 * on the depth of the tree.
 */
static void value_free(struct mse_toml_value *v)
{
	struct mse_toml_value *todo = v;
	size_t i;

	if (v)
		v->free_next = NULL;
	while (todo) {
		v = todo;
		todo = v->free_next;
		switch (v->type) {
		case MSE_TOML_STRING:
			free(v->u.str.ptr);
			break;
		case MSE_TOML_ARRAY:
			for (i = 0; i < v->u.arr.len; i++) {
				v->u.arr.items[i]->free_next = todo;
				todo = v->u.arr.items[i];
			}
			free(v->u.arr.items);
			break;
		case MSE_TOML_TABLE:
			for (i = 0; i < v->u.tab.len; i++) {
				free(v->u.tab.items[i].key);
				v->u.tab.items[i].value->free_next = todo;
				todo = v->u.tab.items[i].value;
			}
			free(v->u.tab.items);
			free(v->u.tab.index);
			break;
		default:
			break;
		}
		free(v);
	}
}

static struct mse_toml_value *value_new(enum mse_toml_type t, struct mse_toml_pos pos)
{
	struct mse_toml_value *v = calloc(1, sizeof(*v));

	if (v) {
		v->type = t;
		v->pos = pos;
	}
	return v;
}

/*
 * Key lookup. Small tables are scanned; from TAB_INDEX_MIN entries on, a
 * table keeps an open-addressing index (linear probing, at most half full)
 * keyed by SipHash-2-4 under a per-process random key, so lookups stay
 * constant time even for keys chosen to collide.
 */
#define TAB_INDEX_MIN 16

static unsigned char tab_hash_key[crypto_shorthash_KEYBYTES];
static pthread_once_t tab_hash_once = PTHREAD_ONCE_INIT;

static void tab_hash_init(void)
{
	if (sodium_init() < 0)
		abort(); /* libsodium cannot run at all: nothing else would either */
	randombytes_buf(tab_hash_key, sizeof(tab_hash_key));
}

static size_t tab_hash(const char *key, size_t len)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t x = 0;
	size_t i;

	pthread_once(&tab_hash_once, tab_hash_init);
	crypto_shorthash(h, (const unsigned char *)key, len, tab_hash_key);
	for (i = 0; i < sizeof(x); i++)
		x |= (uint64_t)h[i] << (8 * i);
	return (size_t)x;
}

/* (Re)builds the index for all entries; -1 on allocation failure. */
static int tab_reindex(struct mse_toml_value *t, size_t cap)
{
	uint32_t *idx = calloc(cap, sizeof(*idx));
	size_t i, j;

	if (!idx)
		return -1;
	for (i = 0; i < t->u.tab.len; i++) {
		struct mse_toml_kv *kv = &t->u.tab.items[i];

		for (j = tab_hash(kv->key, kv->key_len) & (cap - 1); idx[j]; j = (j + 1) & (cap - 1))
			;
		idx[j] = (uint32_t)(i + 1);
	}
	free(t->u.tab.index);
	t->u.tab.index = idx;
	t->u.tab.index_cap = cap;
	return 0;
}

static struct mse_toml_kv *tab_find(const struct mse_toml_value *t, const char *key, size_t len)
{
	size_t i, cap = t->u.tab.index_cap;

	if (t->u.tab.index) {
		for (i = tab_hash(key, len) & (cap - 1); t->u.tab.index[i]; i = (i + 1) & (cap - 1)) {
			struct mse_toml_kv *kv = &t->u.tab.items[t->u.tab.index[i] - 1];

			if (kv->key_len == len && memcmp(kv->key, key, len) == 0)
				return kv;
		}
		return NULL;
	}
	for (i = 0; i < t->u.tab.len; i++) {
		struct mse_toml_kv *kv = &t->u.tab.items[i];

		if (kv->key_len == len && memcmp(kv->key, key, len) == 0)
			return kv;
	}
	return NULL;
}

/* Adds key (copied) = v; the table takes v only on success. */
static int tab_add(struct mse_toml_value *t, const char *key, size_t key_len,
		   struct mse_toml_pos pos, struct mse_toml_value *v)
{
	struct mse_toml_kv *kv;
	char *k;

	if (t->u.tab.len == t->u.tab.cap) {
		size_t cap = t->u.tab.cap ? t->u.tab.cap * 2 : 8;
		struct mse_toml_kv *n = realloc(t->u.tab.items, cap * sizeof(*n));

		if (!n)
			return -1;
		t->u.tab.items = n;
		t->u.tab.cap = cap;
	}
	k = malloc(key_len + 1);
	if (!k)
		return -1;
	memcpy(k, key, key_len);
	k[key_len] = 0;
	if (t->u.tab.len + 1 >= UINT32_MAX) {
		free(k);
		return -1;
	}
	kv = &t->u.tab.items[t->u.tab.len++];
	kv->key = k;
	kv->key_len = key_len;
	kv->pos = pos;
	kv->value = v;
	if (t->u.tab.len >= TAB_INDEX_MIN) {
		size_t cap = t->u.tab.index_cap;

		if (t->u.tab.len * 2 > cap) {
			if (tab_reindex(t, cap ? cap * 2 : 2 * TAB_INDEX_MIN) != 0) {
				t->u.tab.len--; /* the caller still owns k's copy and v */
				free(k);
				return -1;
			}
		} else {
			size_t j;

			for (j = tab_hash(k, key_len) & (cap - 1); t->u.tab.index[j]; j = (j + 1) & (cap - 1))
				;
			t->u.tab.index[j] = (uint32_t)t->u.tab.len;
		}
	}
	return 0;
}

static int arr_add(struct mse_toml_value *a, struct mse_toml_value *v)
{
	if (a->u.arr.len == a->u.arr.cap) {
		size_t cap = a->u.arr.cap ? a->u.arr.cap * 2 : 8;
		struct mse_toml_value **n = realloc(a->u.arr.items, cap * sizeof(*n));

		if (!n)
			return -1;
		a->u.arr.items = n;
		a->u.arr.cap = cap;
	}
	a->u.arr.items[a->u.arr.len++] = v;
	return 0;
}

/* ------------------------------------------------------------------ */
/* strings (§String)                                                     */

static int hexval(int c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

/* p->off is at the backslash. */
static int parse_escape(struct parser *p, struct sbuf *b)
{
	size_t start = p->off;
	int c = peek_at(p, 1), n, i;
	uint32_t cp = 0;
	char ch;

	switch (c) {
	case 'b': ch = '\b'; break;
	case 't': ch = '\t'; break;
	case 'n': ch = '\n'; break;
	case 'f': ch = '\f'; break;
	case 'r': ch = '\r'; break;
	case '"': ch = '"'; break;
	case '\\': ch = '\\'; break;
	case 'u':
	case 'U':
		n = c == 'u' ? 4 : 8;
		for (i = 0; i < n; i++) {
			int h = peek_at(p, 2 + (size_t)i);

			if (h < 0 || !is_hex(h))
				return fail(p, start, "expected %d hex digits after \\%c", n, c);
			cp = (cp << 4) | (uint32_t)hexval(h);
		}
		if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return fail(p, start, "escape is not a Unicode scalar value");
		p->off += 2 + (size_t)n;
		return put_utf8(b, cp) == 0 ? 0 : oom(p);
	default:
		return fail(p, start, "invalid escape sequence (TOML 1.0 allows \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)");
	}
	p->off += 2;
	return sb_put(b, &ch, 1) == 0 ? 0 : oom(p);
}

/*
 * Parses a string of any of the four kinds at p->off into a new buffer.
 * multiline_ok is 0 for keys (§Keys: quoted keys are single-line strings).
 */
static int parse_string(struct parser *p, int multiline_ok, char **out, size_t *out_len)
{
	struct sbuf b = {0};
	size_t start = p->off;
	int quote = peek(p), literal = quote == '\'', multi = 0;
	int c;

	if (peek_at(p, 1) == quote && peek_at(p, 2) == quote) {
		if (!multiline_ok)
			return fail(p, start, "a key may not be a multi-line string");
		multi = 1;
		p->off += 3;
		/* §String: a newline right after the opening delimiter is trimmed */
		eat_newline(p);
	} else {
		p->off++;
	}
	/* an empty string still gets its NUL */
	if (sb_reserve(&b, 0) != 0)
		return oom(p);
	b.p[0] = 0;
	for (;;) {
		c = peek(p);
		if (c < 0)
			goto unterminated;
		if (c == quote) {
			if (!multi) {
				p->off++;
				break;
			}
			if (peek_at(p, 1) == quote && peek_at(p, 2) == quote) {
				/* up to two quotes may sit right before the closing three */
				size_t run = 3;

				while (run < 6 && peek_at(p, run) == quote)
					run++;
				if (run == 6)
					goto too_many_quotes;
				if (sb_put(&b, p->s + p->off, run - 3) != 0)
					goto nomem;
				p->off += run;
				break;
			}
			if (sb_put(&b, p->s + p->off, 1) != 0)
				goto nomem;
			p->off++;
			continue;
		}
		if (c == '\n' || c == '\r') {
			if (!multi) {
				fail(p, p->off, "newline in single-line string");
				goto fail;
			}
			if (c == '\r' && peek_at(p, 1) != '\n') {
				fail(p, p->off, "bare carriage return in string");
				goto fail;
			}
			if (sb_put(&b, "\n", 1) != 0)
				goto nomem;
			eat_newline(p);
			continue;
		}
		if (c == '\\' && !literal) {
			if (multi) {
				/* §String: a line-ending backslash trims whitespace and newlines */
				size_t k = 1;

				while (peek_at(p, k) == ' ' || peek_at(p, k) == '\t')
					k++;
				if (peek_at(p, k) == '\n' || (peek_at(p, k) == '\r' && peek_at(p, k + 1) == '\n')) {
					p->off += k;
					for (;;) {
						skip_ws(p);
						if (!eat_newline(p))
							break;
					}
					continue;
				}
			}
			if (parse_escape(p, &b) != 0)
				goto fail;
			continue;
		}
		if (is_ctrl(c)) {
			fail(p, p->off, "control character in string");
			goto fail;
		}
		if (sb_put(&b, p->s + p->off, 1) != 0)
			goto nomem;
		p->off++;
	}
	*out = b.p;
	*out_len = b.len;
	return 0;
unterminated:
	fail(p, start, "unterminated string");
	goto fail;
too_many_quotes:
	fail(p, p->off, "too many quotes at the end of a multi-line string");
	goto fail;
nomem:
	oom(p);
fail:
	free(b.p);
	return -1;
}

/* ------------------------------------------------------------------ */
/* keys (§Keys)                                                          */

struct keyseg {
	char *s;
	size_t len;
	struct mse_toml_pos pos;
	size_t off;
};

struct keypath {
	struct keyseg *seg;
	size_t n, cap;
	size_t dropped; /* segments past the depth bound, not kept */
};

static void keypath_free(struct keypath *k)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		free(k->seg[i].s);
	free(k->seg);
	k->seg = NULL;
	k->n = k->cap = k->dropped = 0;
}

/* Formats a key path for messages: a.b."c d" */
static void keypath_str(const struct keypath *k, size_t upto, char *out, size_t size)
{
	size_t n = 0, i, j;

	out[0] = 0;
	for (i = 0; i < upto && i < k->n; i++) {
		int bare = k->seg[i].len > 0;

		for (j = 0; j < k->seg[i].len; j++)
			if (!is_bare((unsigned char)k->seg[i].s[j]))
				bare = 0;
		n += (size_t)snprintf(out + n, n < size ? size - n : 0, bare ? "%s%.*s" : "%s\"%.*s\"",
				      i ? "." : "", (int)k->seg[i].len, k->seg[i].s);
		if (n >= size) {
			out[size - 1] = 0;
			return;
		}
	}
}

static int parse_key(struct parser *p, struct keypath *k)
{
	for (;;) {
		struct keyseg seg = {0};
		int c;

		skip_ws(p);
		seg.off = p->off;
		seg.pos = pos_at(p, p->off);
		c = peek(p);
		if (c == '"' || c == '\'') {
			if (parse_string(p, 0, &seg.s, &seg.len) != 0)
				return -1;
		} else if (c >= 0 && is_bare(c)) {
			size_t st = p->off;

			while (peek(p) >= 0 && is_bare(peek(p)))
				p->off++;
			seg.len = p->off - st;
			seg.s = malloc(seg.len + 1);
			if (!seg.s)
				return oom(p);
			memcpy(seg.s, p->s + st, seg.len);
			seg.s[seg.len] = 0;
		} else {
			return fail(p, p->off, "expected a key");
		}
		/*
		 * Every segment nests one level, so the walk over the key refuses it
		 * before segment MSE_TOML_MAX_DEPTH + 1: later ones are scanned (the
		 * syntax is still checked) but not kept.
		 */
		if (k->n > MSE_TOML_MAX_DEPTH + 1) {
			free(seg.s);
			k->dropped++;
			goto next;
		}
		if (k->n == k->cap) {
			size_t cap = k->cap ? k->cap * 2 : 4;
			struct keyseg *n = realloc(k->seg, cap * sizeof(*n));

			if (!n) {
				free(seg.s);
				return oom(p);
			}
			k->seg = n;
			k->cap = cap;
		}
		k->seg[k->n++] = seg;
	next:
		skip_ws(p);
		if (peek(p) != '.')
			return 0;
		p->off++;
	}
}

/* ------------------------------------------------------------------ */
/* date-times (§Offset Date-Time … §Local Time, RFC 3339 §5.6)           */

static int days_in_month(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

/* Reads exactly n digits at s[*i]; -1 if not all digits. */
static int digits(const char *s, size_t len, size_t *i, int n)
{
	int v = 0, k;

	for (k = 0; k < n; k++) {
		if (*i >= len || !is_digit((unsigned char)s[*i]))
			return -1;
		v = v * 10 + (s[*i] - '0');
		(*i)++;
	}
	return v;
}

static int parse_time_part(const char *s, size_t len, size_t *i, struct mse_toml_datetime *dt)
{
	dt->hour = digits(s, len, i, 2);
	if (dt->hour < 0 || *i >= len || s[*i] != ':')
		return -1;
	(*i)++;
	dt->minute = digits(s, len, i, 2);
	/* TOML 1.0 requires the seconds (1.1 makes them optional) */
	if (dt->minute < 0 || *i >= len || s[*i] != ':')
		return -1;
	(*i)++;
	dt->second = digits(s, len, i, 2);
	if (dt->second < 0)
		return -1;
	/* second 60 is a leap second (RFC 3339 §5.7) */
	if (dt->hour > 23 || dt->minute > 59 || dt->second > 60)
		return -1;
	if (*i < len && s[*i] == '.') {
		(*i)++;
		if (*i >= len || !is_digit((unsigned char)s[*i]))
			return -1;
		while (*i < len && is_digit((unsigned char)s[*i])) {
			if (dt->frac_digits < 9) {
				dt->nanosecond = dt->nanosecond * 10 + (uint32_t)(s[*i] - '0');
				dt->frac_digits++;
			}
			(*i)++;
		}
		for (int k = dt->frac_digits; k < 9; k++)
			dt->nanosecond *= 10;
	}
	return 0;
}

/*
 * Scans a date-time literal at the start of s. Returns the bytes used, or 0
 * if s does not hold a valid one. Used both by the value parser (which
 * checks what follows) and mse_toml_parse_datetime.
 */
static size_t scan_datetime(const char *s, size_t len, struct mse_toml_datetime *dt,
			    enum mse_toml_type *kind)
{
	size_t i = 0;

	memset(dt, 0, sizeof(*dt));
	if (len >= 3 && is_digit((unsigned char)s[0]) && is_digit((unsigned char)s[1]) && s[2] == ':') {
		if (parse_time_part(s, len, &i, dt) != 0)
			return 0;
		*kind = MSE_TOML_TIME_LOCAL;
		return i;
	}
	dt->year = digits(s, len, &i, 4);
	if (dt->year < 0 || i >= len || s[i] != '-')
		return 0;
	i++;
	dt->month = digits(s, len, &i, 2);
	if (dt->month < 0 || i >= len || s[i] != '-')
		return 0;
	i++;
	dt->day = digits(s, len, &i, 2);
	if (dt->day < 0 || dt->month < 1 || dt->month > 12 || dt->day < 1 ||
	    dt->day > days_in_month(dt->year, dt->month))
		return 0;
	*kind = MSE_TOML_DATE_LOCAL;
	/* §Offset Date-Time: T, t or a space separates date and time */
	if (i < len && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
		if (s[i] == ' ' && !(i + 1 < len && is_digit((unsigned char)s[i + 1])))
			return i; /* a date followed by whitespace */
		i++;
		if (parse_time_part(s, len, &i, dt) != 0)
			return 0;
		*kind = MSE_TOML_DATETIME_LOCAL;
		if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
			i++;
			*kind = MSE_TOML_DATETIME;
		} else if (i < len && (s[i] == '+' || s[i] == '-')) {
			int sign = s[i] == '-' ? -1 : 1, oh, om;

			i++;
			oh = digits(s, len, &i, 2);
			if (oh < 0 || i >= len || s[i] != ':')
				return 0;
			i++;
			om = digits(s, len, &i, 2);
			if (om < 0 || oh > 23 || om > 59)
				return 0;
			dt->offset_minutes = sign * (oh * 60 + om);
			*kind = MSE_TOML_DATETIME;
		}
	}
	return i;
}

int mse_toml_parse_datetime(const char *s, size_t len, struct mse_toml_datetime *out,
			    enum mse_toml_type *kind)
{
	size_t n = scan_datetime(s, len, out, kind);

	return n && n == len ? 0 : -1;
}

const char *mse_toml_datetime_format(const struct mse_toml_datetime *dt, enum mse_toml_type kind,
				     char *out, size_t size)
{
	char frac[16] = "";
	size_t n = 0;

	if (!size)
		return out;
	out[0] = 0;
	if (dt->frac_digits > 0) {
		uint32_t ns = dt->nanosecond;

		for (int k = dt->frac_digits; k < 9; k++)
			ns /= 10;
		snprintf(frac, sizeof(frac), ".%0*u", dt->frac_digits, (unsigned)ns);
	}
	if (kind != MSE_TOML_TIME_LOCAL)
		n = (size_t)snprintf(out, size, "%04d-%02d-%02d", dt->year, dt->month, dt->day);
	if (n >= size || kind == MSE_TOML_DATE_LOCAL)
		return out;
	n += (size_t)snprintf(out + n, size - n, "%s%02d:%02d:%02d%s", kind == MSE_TOML_TIME_LOCAL ? "" : "T",
			      dt->hour, dt->minute, dt->second, frac);
	if (n >= size || kind != MSE_TOML_DATETIME)
		return out;
	if (dt->offset_minutes == 0)
		snprintf(out + n, size - n, "Z");
	else
		snprintf(out + n, size - n, "%c%02d:%02d", dt->offset_minutes < 0 ? '-' : '+',
			 abs(dt->offset_minutes) / 60, abs(dt->offset_minutes) % 60);
	return out;
}

/* ------------------------------------------------------------------ */
/* numbers (§Integer, §Float)                                            */

/*
 * Checks digits with single underscores between them (§Integer: "each
 * underscore must be surrounded by at least one digit") in s[*i..end),
 * accepting digits for which ok() holds. Appends the digits to b.
 */
static int digit_run(const char *s, size_t end, size_t *i, int (*ok)(int), char *b, size_t *bn,
		     size_t bsize)
{
	size_t start = *i;

	while (*i < end) {
		int c = (unsigned char)s[*i];

		if (ok(c)) {
			if (*bn + 1 < bsize)
				b[(*bn)++] = (char)c;
		} else if (c == '_') {
			if (*i == start || *i + 1 >= end || !ok((unsigned char)s[*i + 1]))
				return -1;
		} else {
			break;
		}
		(*i)++;
	}
	return *i > start ? 0 : -1;
}

static int ok_dec(int c)
{
	return is_digit(c);
}
static int ok_hex(int c)
{
	return is_hex(c);
}
static int ok_oct(int c)
{
	return c >= '0' && c <= '7';
}
static int ok_bin(int c)
{
	return c == '0' || c == '1';
}

static int is_num_char(int c)
{
	return is_bare(c) || c == '+' || c == '.';
}

static int parse_number(struct parser *p, struct mse_toml_value *v)
{
	size_t start = p->off, end, i;
	const char *s = p->s;
	char b[512];
	size_t bn = 0;
	int neg = 0, is_float = 0;

	while (p->off < p->len && is_num_char((unsigned char)s[p->off]))
		p->off++;
	end = p->off;
	i = start;
	if (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-';
		i++;
	}
	/* §Float: special values */
	if (end - i == 3 && (memcmp(s + i, "inf", 3) == 0 || memcmp(s + i, "nan", 3) == 0)) {
		v->type = MSE_TOML_FLOAT;
		if (s[i] == 'i')
			v->u.flt = neg ? -INFINITY : INFINITY;
		else
			v->u.flt = neg ? -NAN : NAN;
		return 0;
	}
	if (end - i >= 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'o' || s[i + 1] == 'b')) {
		int (*ok)(int) = s[i + 1] == 'x' ? ok_hex : s[i + 1] == 'o' ? ok_oct : ok_bin;
		unsigned shift = s[i + 1] == 'x' ? 4 : s[i + 1] == 'o' ? 3 : 1;
		uint64_t val = 0;

		if (i != start)
			return fail(p, start, "a sign is not allowed on hex, octal or binary integers");
		i += 2;
		if (digit_run(s, end, &i, ok, b, &bn, sizeof(b)) != 0 || i != end)
			return fail(p, start, "invalid integer");
		for (size_t k = 0; k < bn; k++) {
			if (val >> (63 - shift))
				return fail(p, start, "integer does not fit in 64 bits");
			val = (val << shift) | (uint64_t)hexval((unsigned char)b[k]);
		}
		if (val > INT64_MAX)
			return fail(p, start, "integer does not fit in 64 bits");
		v->type = MSE_TOML_INTEGER;
		v->u.integer = (int64_t)val;
		return 0;
	}
	if (neg)
		b[bn++] = '-';
	{
		size_t int_start = i;

		if (digit_run(s, end, &i, ok_dec, b, &bn, sizeof(b)) != 0)
			return fail(p, start, "invalid number");
		/* §Integer: leading zeros are not allowed */
		if (s[int_start] == '0' && i - int_start > 1)
			return fail(p, start, "leading zeros are not allowed");
	}
	if (i < end && s[i] == '.') {
		is_float = 1;
		if (bn + 1 < sizeof(b))
			b[bn++] = '.';
		i++;
		if (digit_run(s, end, &i, ok_dec, b, &bn, sizeof(b)) != 0)
			return fail(p, start, "invalid float: expected digits after the decimal point");
	}
	if (i < end && (s[i] == 'e' || s[i] == 'E')) {
		is_float = 1;
		if (bn + 1 < sizeof(b))
			b[bn++] = 'e';
		i++;
		if (i < end && (s[i] == '+' || s[i] == '-')) {
			if (bn + 1 < sizeof(b))
				b[bn++] = s[i];
			i++;
		}
		if (digit_run(s, end, &i, ok_dec, b, &bn, sizeof(b)) != 0)
			return fail(p, start, "invalid float: expected digits in the exponent");
	}
	if (i != end)
		return fail(p, start, "invalid number");
	if (bn + 1 >= sizeof(b))
		return fail(p, start, "number too long");
	b[bn] = 0;
	if (is_float) {
		v->type = MSE_TOML_FLOAT;
		v->u.flt = strtod(b, NULL);
		return 0;
	}
	errno = 0;
	v->type = MSE_TOML_INTEGER;
	v->u.integer = strtoll(b, NULL, 10);
	if (errno == ERANGE)
		return fail(p, start, "integer does not fit in 64 bits");
	return 0;
}

/* ------------------------------------------------------------------ */
/* values                                                                */

static int parse_value(struct parser *p, struct mse_toml_value **out);
static int parse_keyval(struct parser *p, struct mse_toml_value *table);

static int parse_array(struct parser *p, struct mse_toml_value *a)
{
	p->off++; /* [ */
	for (;;) {
		struct mse_toml_value *item;

		if (skip_ws_nl(p) != 0)
			return -1;
		if (peek(p) == ']') {
			p->off++;
			return 0;
		}
		if (parse_value(p, &item) != 0)
			return -1;
		if (arr_add(a, item) != 0) {
			value_free(item);
			return oom(p);
		}
		if (skip_ws_nl(p) != 0)
			return -1;
		if (peek(p) == ',') {
			p->off++;
			continue;
		}
		if (peek(p) == ']') {
			p->off++;
			return 0;
		}
		return fail(p, p->off, "expected ',' or ']' in array");
	}
}

/* §Inline Table: one line, no trailing comma (TOML 1.0). */
static int parse_inline_table(struct parser *p, struct mse_toml_value *t)
{
	p->off++; /* { */
	skip_ws(p);
	if (peek(p) == '}') {
		p->off++;
		return 0;
	}
	for (;;) {
		if (parse_keyval(p, t) != 0)
			return -1;
		skip_ws(p);
		if (peek(p) == ',') {
			p->off++;
			skip_ws(p);
			if (peek(p) == '}')
				return fail(p, p->off, "trailing comma in inline table (not allowed in TOML 1.0)");
			continue;
		}
		if (peek(p) == '}') {
			p->off++;
			return 0;
		}
		return fail(p, p->off, "expected ',' or '}' in inline table (inline tables are one line)");
	}
}

static int parse_value(struct parser *p, struct mse_toml_value **out)
{
	struct mse_toml_value *v;
	size_t start = p->off;
	int c = peek(p), rc = -1;

	*out = NULL;
	v = value_new(MSE_TOML_BOOL, pos_at(p, start));
	if (!v)
		return oom(p);
	if (c == '"' || c == '\'') {
		v->type = MSE_TOML_STRING;
		rc = parse_string(p, 1, &v->u.str.ptr, &v->u.str.len);
	} else if (c == 't' || c == 'f') {
		const char *w = c == 't' ? "true" : "false";
		size_t n = strlen(w);

		if (p->len - p->off >= n && memcmp(p->s + p->off, w, n) == 0 &&
		    !(p->off + n < p->len && is_bare((unsigned char)p->s[p->off + n]))) {
			v->u.boolean = c == 't';
			p->off += n;
			rc = 0;
		} else {
			rc = fail(p, start, "expected a value");
		}
	} else if (c == '[' || c == '{') {
		if (p->depth >= MSE_TOML_MAX_DEPTH) {
			rc = fail(p, start, "nesting deeper than %d", MSE_TOML_MAX_DEPTH);
		} else {
			p->depth++;
			if (c == '[') {
				v->type = MSE_TOML_ARRAY;
				v->flags = A_STATIC;
				rc = parse_array(p, v);
			} else {
				v->type = MSE_TOML_TABLE;
				rc = parse_inline_table(p, v);
				v->flags = T_INLINE;
			}
			p->depth--;
		}
	} else if (c >= 0 && is_digit(c) && (is_digit(peek_at(p, 1)) && (peek_at(p, 2) == ':' ||
			     (is_digit(peek_at(p, 2)) && is_digit(peek_at(p, 3)) && peek_at(p, 4) == '-')))) {
		enum mse_toml_type kind;
		size_t n = scan_datetime(p->s + p->off, p->len - p->off, &v->u.dt, &kind);

		if (!n) {
			rc = fail(p, start, "invalid date or time");
		} else if (p->off + n < p->len && is_num_char((unsigned char)p->s[p->off + n])) {
			rc = fail(p, start, "invalid date or time");
		} else {
			v->type = kind;
			p->off += n;
			rc = 0;
		}
	} else if (c >= 0 && (is_digit(c) || c == '+' || c == '-' || c == 'i' || c == 'n')) {
		rc = parse_number(p, v);
	} else {
		rc = fail(p, start, "expected a value");
	}
	if (rc != 0) {
		value_free(v);
		return -1;
	}
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------ */
/* key/value pairs and table headers (§Keys, §Table, §Array of Tables)   */

static const char *what(const struct mse_toml_value *v)
{
	if (v->type == MSE_TOML_TABLE)
		return v->flags & T_INLINE ? "an inline table" : "a table";
	if (v->type == MSE_TOML_ARRAY)
		return v->flags & A_AOT ? "an array of tables" : "an array";
	return "a value";
}

static int parse_keyval(struct parser *p, struct mse_toml_value *table)
{
	struct keypath k = {0};
	struct mse_toml_value *t = table, *v = NULL;
	char name[256];
	int rc = -1, depth = p->depth; /* table's depth */
	size_t i;

	if (parse_key(p, &k) != 0)
		goto out;
	/* the tables of a dotted key lie at depth + 1 … depth + n - 1 */
	if (k.n + k.dropped - 1 > (size_t)(MSE_TOML_MAX_DEPTH - depth)) {
		fail(p, k.seg[MSE_TOML_MAX_DEPTH - depth].off, "nesting deeper than %d", MSE_TOML_MAX_DEPTH);
		goto out;
	}
	if (peek(p) != '=') {
		fail(p, p->off, "expected '=' after a key");
		goto out;
	}
	p->off++;
	skip_ws(p);
	p->depth = depth + (int)k.n - 1;
	rc = parse_value(p, &v);
	p->depth = depth;
	if (rc != 0) {
		rc = -1;
		goto out;
	}
	rc = -1;
	for (i = 0; i + 1 < k.n; i++) {
		struct mse_toml_kv *kv = tab_find(t, k.seg[i].s, k.seg[i].len);

		if (!kv) {
			struct mse_toml_value *n = value_new(MSE_TOML_TABLE, k.seg[i].pos);

			if (!n || tab_add(t, k.seg[i].s, k.seg[i].len, k.seg[i].pos, n) != 0) {
				free(n);
				oom(p);
				goto out;
			}
			n->flags = T_DOTTED;
			t = n;
			continue;
		}
		/*
		 * §Keys: dotted keys "create and define a table for each key part
		 * before the last one, provided that such tables were not previously
		 * created" and may not redefine a table defined by a [header]. So they
		 * extend tables that dotted keys created, and tables a header only
		 * created implicitly (as tomllib and toml-test's reference decoder
		 * do) — which are then defined, and cannot be opened by [header].
		 */
		if (kv->value->type == MSE_TOML_TABLE && kv->value->flags == T_IMPLICIT)
			kv->value->flags = T_DOTTED;
		if (kv->value->type != MSE_TOML_TABLE || !(kv->value->flags & T_DOTTED) ||
		    (kv->value->flags & T_INLINE)) {
			keypath_str(&k, i + 1, name, sizeof(name));
			fail(p, k.seg[i].off, "cannot add keys to '%s': already defined as %s at line %d",
			     name, what(kv->value), kv->pos.line);
			goto out;
		}
		t = kv->value;
	}
	{
		struct keyseg *last = &k.seg[k.n - 1];
		struct mse_toml_kv *kv = tab_find(t, last->s, last->len);

		if (kv) {
			keypath_str(&k, k.n, name, sizeof(name));
			fail(p, last->off, "duplicate key '%s' (first defined at line %d)", name, kv->pos.line);
			goto out;
		}
		if (tab_add(t, last->s, last->len, last->pos, v) != 0) {
			oom(p);
			goto out;
		}
		v = NULL;
	}
	rc = 0;
out:
	value_free(v);
	keypath_free(&k);
	return rc;
}

static int parse_header(struct parser *p, struct mse_toml_value *root)
{
	struct keypath k = {0};
	struct mse_toml_value *t = root;
	size_t start = p->off, i;
	int aot = peek_at(p, 1) == '[';
	struct mse_toml_pos hpos = pos_at(p, start);
	char name[256];
	int rc = -1, depth = 0; /* t's depth */

	p->off += aot ? 2 : 1;
	if (parse_key(p, &k) != 0)
		goto out;
	if (peek(p) != ']' || (aot && peek_at(p, 1) != ']')) {
		fail(p, p->off, aot ? "expected ']]' to close the array-of-tables header"
				    : "expected ']' to close the table header");
		goto out;
	}
	p->off += aot ? 2 : 1;
	for (i = 0; i < k.n + k.dropped; i++) {
		struct keyseg *seg = &k.seg[i];
		struct mse_toml_kv *kv;
		int last = i + 1 == k.n + k.dropped;
		struct mse_toml_value *n = NULL, *e = NULL;

		/*
		 * depth is t's; the next table lies one deeper, or two when it is
		 * the element of an array of tables. A segment kept by parse_key is
		 * always reached first: each one nests at least one level.
		 */
		kv = tab_find(t, seg->s, seg->len);
		if (depth + ((kv && kv->value->type == MSE_TOML_ARRAY) || (!kv && last && aot) ? 2 : 1) >
		    MSE_TOML_MAX_DEPTH) {
			fail(p, seg->off, "nesting deeper than %d", MSE_TOML_MAX_DEPTH);
			goto out;
		}
		depth += (kv && kv->value->type == MSE_TOML_ARRAY) || (!kv && last && aot) ? 2 : 1;
		if (!kv) {
			if (last && aot) {
				n = value_new(MSE_TOML_ARRAY, hpos);
				e = value_new(MSE_TOML_TABLE, hpos);
				if (!n || !e || arr_add(n, e) != 0 ||
				    tab_add(t, seg->s, seg->len, seg->pos, n) != 0) {
					free(e);
					value_free(n);
					oom(p);
					goto out;
				}
				n->flags = A_AOT;
				e->flags = T_EXPLICIT;
				t = e;
				break;
			}
			n = value_new(MSE_TOML_TABLE, last ? hpos : seg->pos);
			if (!n || tab_add(t, seg->s, seg->len, seg->pos, n) != 0) {
				free(n);
				oom(p);
				goto out;
			}
			n->flags = last ? T_EXPLICIT : T_IMPLICIT;
			t = n;
			continue;
		}
		keypath_str(&k, i + 1, name, sizeof(name));
		if (!last) {
			if (kv->value->type == MSE_TOML_TABLE && !(kv->value->flags & T_INLINE)) {
				t = kv->value;
			} else if (kv->value->type == MSE_TOML_ARRAY && (kv->value->flags & A_AOT)) {
				/* §Array of Tables: sub-tables go to the most recent element */
				t = kv->value->u.arr.items[kv->value->u.arr.len - 1];
			} else {
				fail(p, seg->off, "cannot define a table under '%s': already defined as %s at line %d",
				     name, what(kv->value), kv->pos.line);
				goto out;
			}
			continue;
		}
		if (aot) {
			if (kv->value->type != MSE_TOML_ARRAY || !(kv->value->flags & A_AOT)) {
				fail(p, seg->off, "cannot append to '%s' with [[...]]: already defined as %s at line %d",
				     name, what(kv->value), kv->pos.line);
				goto out;
			}
			e = value_new(MSE_TOML_TABLE, hpos);
			if (!e || arr_add(kv->value, e) != 0) {
				free(e);
				oom(p);
				goto out;
			}
			e->flags = T_EXPLICIT;
			t = e;
		} else {
			/* §Table: a table may be defined once; [a.b] after a.b = … or a.b.c = … is a redefinition */
			if (kv->value->type != MSE_TOML_TABLE || (kv->value->flags & ~T_IMPLICIT)) {
				fail(p, seg->off, "table '%s' is already defined as %s at line %d", name,
				     what(kv->value), kv->value->pos.line);
				goto out;
			}
			kv->value->flags = T_EXPLICIT;
			kv->value->pos = hpos;
			t = kv->value;
		}
	}
	p->cur = t;
	p->cur_depth = depth;
	rc = 0;
out:
	keypath_free(&k);
	return rc;
}

/* After a key/value or a header: only whitespace and a comment to the end of the line. */
static int end_of_line(struct parser *p)
{
	skip_ws(p);
	if (skip_comment(p) != 0)
		return -1;
	if (peek(p) < 0 || eat_newline(p))
		return 0;
	return fail(p, p->off, "expected a newline or end of file");
}

int mse_toml_parse(const char *text, size_t len, const char *filename, struct mse_toml **out,
		   struct mse_err *err)
{
	struct parser p = {0};
	struct mse_toml *doc;

	*out = NULL;
	p.s = text;
	p.len = len;
	p.file = filename ? filename : "";
	p.err = err;
	p.line = 1;
	if (validate_utf8(&p) != 0)
		return -1;
	/* a UTF-8 byte order mark is allowed at the very start only */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		p.off = p.line_start = 3;
	doc = calloc(1, sizeof(*doc));
	if (!doc)
		return oom(&p);
	doc->root.type = MSE_TOML_TABLE;
	doc->root.flags = T_EXPLICIT;
	doc->root.pos.line = doc->root.pos.col = 1;
	p.cur = &doc->root;
	while (p.off < p.len) {
		int c;

		skip_ws(&p);
		c = peek(&p);
		if (c < 0)
			break;
		if (c == '#') {
			if (end_of_line(&p) != 0)
				goto fail;
		} else if (eat_newline(&p)) {
			continue;
		} else if (c == '[') {
			if (parse_header(&p, &doc->root) != 0 || end_of_line(&p) != 0)
				goto fail;
		} else if (c == '\r') {
			fail(&p, p.off, "bare carriage return");
			goto fail;
		} else {
			p.depth = p.cur_depth;
			if (parse_keyval(&p, p.cur) != 0 || end_of_line(&p) != 0)
				goto fail;
		}
	}
	*out = doc;
	return 0;
fail:
	mse_toml_free(doc);
	return -1;
}

void mse_toml_free(struct mse_toml *doc)
{
	struct mse_toml_value *root;

	if (!doc)
		return;
	/* the root is embedded in doc: hand its contents to a heap table */
	root = calloc(1, sizeof(*root));
	if (root) {
		root->type = MSE_TOML_TABLE;
		root->u.tab = doc->root.u.tab;
		value_free(root);
	} else {
		size_t i;

		for (i = 0; i < doc->root.u.tab.len; i++) {
			free(doc->root.u.tab.items[i].key);
			value_free(doc->root.u.tab.items[i].value);
		}
		free(doc->root.u.tab.items);
		free(doc->root.u.tab.index);
	}
	free(doc);
}

/* ------------------------------------------------------------------ */
/* accessors                                                             */

const struct mse_toml_value *mse_toml_root(const struct mse_toml *doc)
{
	return doc ? &doc->root : NULL;
}

const char *mse_toml_type_name(enum mse_toml_type t)
{
	switch (t) {
	case MSE_TOML_STRING: return "string";
	case MSE_TOML_INTEGER: return "integer";
	case MSE_TOML_FLOAT: return "float";
	case MSE_TOML_BOOL: return "boolean";
	case MSE_TOML_DATETIME: return "offset date-time";
	case MSE_TOML_DATETIME_LOCAL: return "local date-time";
	case MSE_TOML_DATE_LOCAL: return "local date";
	case MSE_TOML_TIME_LOCAL: return "local time";
	case MSE_TOML_ARRAY: return "array";
	case MSE_TOML_TABLE: return "table";
	}
	return "?";
}

const struct mse_toml_kv *mse_toml_table_entry(const struct mse_toml_value *t, const char *key)
{
	if (!t || t->type != MSE_TOML_TABLE || !key)
		return NULL;
	return tab_find(t, key, strlen(key));
}

const struct mse_toml_value *mse_toml_table_get(const struct mse_toml_value *t, const char *key)
{
	const struct mse_toml_kv *kv = mse_toml_table_entry(t, key);

	return kv ? kv->value : NULL;
}

size_t mse_toml_len(const struct mse_toml_value *v)
{
	if (!v)
		return 0;
	if (v->type == MSE_TOML_TABLE)
		return v->u.tab.len;
	if (v->type == MSE_TOML_ARRAY)
		return v->u.arr.len;
	return 0;
}

const struct mse_toml_kv *mse_toml_table_at(const struct mse_toml_value *t, size_t i)
{
	if (!t || t->type != MSE_TOML_TABLE || i >= t->u.tab.len)
		return NULL;
	return &t->u.tab.items[i];
}

const struct mse_toml_value *mse_toml_array_at(const struct mse_toml_value *a, size_t i)
{
	if (!a || a->type != MSE_TOML_ARRAY || i >= a->u.arr.len)
		return NULL;
	return a->u.arr.items[i];
}

int mse_toml_get_string(const struct mse_toml_value *v, const char **s, size_t *len)
{
	if (!v || v->type != MSE_TOML_STRING)
		return -1;
	*s = v->u.str.ptr;
	if (len)
		*len = v->u.str.len;
	return 0;
}

int mse_toml_get_int(const struct mse_toml_value *v, int64_t *out)
{
	if (!v || v->type != MSE_TOML_INTEGER)
		return -1;
	*out = v->u.integer;
	return 0;
}

int mse_toml_get_float(const struct mse_toml_value *v, double *out)
{
	if (!v || v->type != MSE_TOML_FLOAT)
		return -1;
	*out = v->u.flt;
	return 0;
}

int mse_toml_get_bool(const struct mse_toml_value *v, int *out)
{
	if (!v || v->type != MSE_TOML_BOOL)
		return -1;
	*out = v->u.boolean;
	return 0;
}

int mse_toml_get_datetime(const struct mse_toml_value *v, struct mse_toml_datetime *out,
			  enum mse_toml_type *kind)
{
	if (!v || v->type < MSE_TOML_DATETIME || v->type > MSE_TOML_TIME_LOCAL)
		return -1;
	*out = v->u.dt;
	if (kind)
		*kind = v->type;
	return 0;
}
