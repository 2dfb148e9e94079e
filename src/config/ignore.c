/* SPDX-License-Identifier: Apache-2.0 */
/*
 * .mseignore with git's gitignore semantics. See ignore.h for the rules.
 *
 * The matcher follows git 2.39 (dir.c: parse_path_pattern, match_basename,
 * match_pathname, prep_exclude; wildmatch.c) behaviour for behaviour, because
 * users write .mseignore files the way they write .gitignore files and test
 * them with git; tests/unit/test_ignore.c compares every decision with
 * `git check-ignore`. Where git's behaviour is surprising (e.g. `fo**` /bar
 * treats the `**` as a whole segment once the literal prefix is consumed)
 * the surprise is kept on purpose: same file, same answer.
 */
#include "config/ignore.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"

const char mse_ignore_default[] = "# Ignore MSE CLI files/directories\n"
				  "mse.toml\n"
				  "secrets.json\n"
				  ".mseignore\n"
				  "\n"
				  "# Ignore byte-compiled / optimized files\n"
				  "__pycache__/\n"
				  "\n"
				  "# Ignore git files/directories\n"
				  ".git*\n"
				  "\n"
				  "# Ignore IDE files/directories\n"
				  ".vscode/\n"
				  ".idea/\n"
				  "\n"
				  "# Ignore packaging files/directories\n"
				  "*.egg-info/\n"
				  "*.egg\n"
				  "\n"
				  "# Ignore virtual env directories\n"
				  ".venv\n"
				  "\n"
				  "# Ignore files which can contain secrets\n"
				  ".env\n";

/* Pattern flags (git: PATTERN_FLAG_NEGATIVE, _MUSTBEDIR, _NODIR). */
#define PAT_NEGATE 1u   /* "!pattern" */
#define PAT_DIRONLY 2u  /* "pattern/" */
#define PAT_BASENAME 4u /* no '/' left: matched against the basename only */

struct pattern {
	char *text;    /* without '!' and the trailing '/', NUL-terminated */
	size_t len;    /* strlen(text) */
	size_t nowild; /* length of the literal prefix (before * ? [ \) */
	unsigned flags;
	int line; /* 1-based line in the file */
};

struct mse_ignore {
	struct pattern *v;
	size_t n, cap;
};

/* ---- wildmatch --------------------------------------------------------- */

/*
 * Results of one matching attempt. The two aborts prune the search: once
 * the text is exhausted after a '*', no later '*' can do better (ABORT_ALL);
 * once a single '*' would have to cross a '/', only an enclosing '**' can
 * help (ABORT_TO_STARSTAR). This keeps the backtracking polynomial.
 */
enum { WM_MATCH = 0, WM_NOMATCH = 1, WM_ABORT_ALL = -1, WM_ABORT_TO_STARSTAR = -2 };

static int glob_special(unsigned char c)
{
	return c == '*' || c == '?' || c == '[' || c == '\\';
}

/*
 * Git's own ASCII-only ctype ("sane_ctype"): no locale, bytes >= 0x80 are in
 * no class, and space is only HT, LF, CR and SP (not VT, FF).
 */
static int named_class(const unsigned char *name, size_t n, unsigned char c, int *known)
{
	int digit = c >= '0' && c <= '9';
	int upper = c >= 'A' && c <= 'Z';
	int lower = c >= 'a' && c <= 'z';
	int cntrl = c < 0x20 || c == 0x7f;
	int print = c >= 0x20 && c <= 0x7e;
	int space = c == ' ' || c == '\t' || c == '\n' || c == '\r';

	*known = 1;
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(name, lit, n) == 0)
	if (IS("alnum"))
		return digit || upper || lower;
	if (IS("alpha"))
		return upper || lower;
	if (IS("blank"))
		return c == ' ' || c == '\t';
	if (IS("cntrl"))
		return cntrl;
	if (IS("digit"))
		return digit;
	if (IS("graph"))
		return print && c != ' ';
	if (IS("lower"))
		return lower;
	if (IS("print"))
		return print;
	if (IS("punct"))
		return print && c != ' ' && !digit && !upper && !lower;
	if (IS("space"))
		return space;
	if (IS("upper"))
		return upper;
	if (IS("xdigit"))
		return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
#undef IS
	*known = 0;
	return 0;
}

/*
 * A bracket expression. *pp points at '['; on success it is left on the
 * closing ']'. Returns 1 if tc is in the set (negation applied), 0 if not,
 * -1 if the expression is malformed (unterminated, or an unknown
 * [:name:]) — git then abandons the whole match.
 */
static int bracket(const unsigned char **pp, unsigned char tc)
{
	const unsigned char *p = *pp + 1;
	unsigned char c = *p, prev = 0;
	int negated = 0, hit = 0;

	if (c == '!' || c == '^') {
		negated = 1;
		c = *++p;
	}
	/* The first member may be ']' itself: the test for the end comes after. */
	do {
		if (!c)
			return -1;
		if (c == '\\') {
			c = *++p;
			if (!c)
				return -1;
			if (tc == c)
				hit = 1;
		} else if (c == '-' && prev && p[1] && p[1] != ']') {
			c = *++p;
			if (c == '\\') {
				c = *++p;
				if (!c)
					return -1;
			}
			if (tc >= prev && tc <= c)
				hit = 1;
			c = 0; /* a range end cannot start another range */
		} else if (c == '[' && p[1] == ':') {
			const unsigned char *name = p + 2, *q = name;
			int known;

			while (*q && *q != ']')
				q++;
			if (!*q)
				return -1;
			if (q == name || q[-1] != ':') {
				/* Not "[:name:]": an ordinary '[' member. */
				if (tc == '[')
					hit = 1;
			} else {
				if (named_class(name, (size_t)(q - name - 1), tc, &known))
					hit = 1;
				if (!known)
					return -1;
				p = q;
				c = 0;
			}
		} else if (tc == c) {
			hit = 1;
		}
		prev = c;
		c = *++p;
	} while (c != ']');
	*pp = p;
	return hit != negated;
}

/*
 * Matches NUL-terminated pattern p against text [t, te). `pathname` is
 * git's WM_PATHNAME: '*', '?' and classes do not match '/', and '**' is
 * special only as a whole path segment. `p` is also the start used to
 * decide whether a '**' begins a segment.
 */
static int wild(const unsigned char *p, const unsigned char *t, const unsigned char *te,
		int pathname)
{
	const unsigned char *start = p;

	for (; *p; p++, t++) {
		unsigned char pc = *p, tc = t < te ? *t : 0;
		const unsigned char *first;
		int match_slash, r;

		if (!tc && pc != '*')
			return WM_ABORT_ALL;
		switch (pc) {
		case '\\':
			/* A trailing backslash matches nothing: tc != 0 here. */
			pc = *++p;
			if (tc != pc)
				return WM_NOMATCH;
			continue;
		case '?':
			if (pathname && tc == '/')
				return WM_NOMATCH;
			continue;
		case '[':
			r = bracket(&p, tc);
			if (r < 0)
				return WM_ABORT_ALL;
			if (!r || (pathname && tc == '/'))
				return WM_NOMATCH;
			continue;
		case '*':
			break;
		default:
			if (tc != pc)
				return WM_NOMATCH;
			continue;
		}

		/* One or more '*'. */
		first = p;
		while (p[1] == '*')
			p++;
		p++; /* the byte after the stars */
		if (!pathname) {
			match_slash = 1; /* without WM_PATHNAME, '*' == '**' */
		} else if (p - first >= 2 && (first == start || first[-1] == '/') &&
			   (!*p || *p == '/' || (p[0] == '\\' && p[1] == '/'))) {
			/* A whole-segment double star may match zero directories. */
			if (*p == '/' && wild(p + 1, t, te, pathname) == WM_MATCH)
				return WM_MATCH;
			match_slash = 1;
		} else {
			match_slash = 0;
		}
		if (!*p) {
			/* Trailing "**" matches all; trailing "*" not across '/'. */
			if (!match_slash && memchr(t, '/', (size_t)(te - t)))
				return WM_NOMATCH;
			return WM_MATCH;
		}
		if (!match_slash && *p == '/') {
			/* "*" + "/": the star is the rest of this segment. */
			const unsigned char *slash = memchr(t, '/', (size_t)(te - t));

			if (!slash)
				return WM_NOMATCH;
			t = slash; /* the loop steps over both slashes */
			continue;
		}
		for (;;) {
			if (!tc)
				break;
			if (!glob_special(*p)) {
				/* Skip straight to the next occurrence of the literal. */
				while (t < te && (match_slash || *t != '/') && *t != *p)
					t++;
				tc = t < te ? *t : 0;
				if (tc != *p)
					return WM_NOMATCH;
			}
			r = wild(p, t, te, pathname);
			if (r != WM_NOMATCH) {
				if (!match_slash || r != WM_ABORT_TO_STARSTAR)
					return r;
			} else if (!match_slash && tc == '/') {
				return WM_ABORT_TO_STARSTAR;
			}
			t++;
			tc = t < te ? *t : 0;
		}
		return WM_ABORT_ALL;
	}
	return t < te ? WM_NOMATCH : WM_MATCH;
}

static int wildmatch(const char *pat, const char *text, size_t len, int pathname)
{
	const unsigned char *t = (const unsigned char *)text;

	return wild((const unsigned char *)pat, t, t + len, pathname) == WM_MATCH;
}

/* ---- one pattern against one path ------------------------------------- */

/* A pattern without '/': the basename, at any depth (git: match_basename). */
static int match_basename(const struct pattern *pt, const char *base, size_t blen)
{
	if (pt->nowild == pt->len)
		return blen == pt->len && memcmp(pt->text, base, blen) == 0;
	return wildmatch(pt->text, base, blen, 0);
}

/* A pattern with a '/': the whole path from the root (git: match_pathname). */
static int match_pathname(const struct pattern *pt, const char *path, size_t plen)
{
	const char *pat = pt->text;
	size_t patlen = pt->len, prefix = pt->nowild;

	if (*pat == '/') {
		/* Anchoring slash: the root is implicitly in front. */
		pat++;
		patlen--;
		prefix--;
	}
	if (prefix) {
		if (prefix > plen || memcmp(pat, path, prefix) != 0)
			return 0;
		pat += prefix;
		patlen -= prefix;
		path += prefix;
		plen -= prefix;
		if (!patlen && !plen)
			return 1;
	}
	return wildmatch(pat, path, plen, 1);
}

/* The last pattern matching path[0..plen), ignoring parents; NULL if none. */
static const struct pattern *last_match(const struct mse_ignore *ign, const char *path,
					size_t plen, int is_dir)
{
	const char *base = path + plen;

	while (base > path && base[-1] != '/')
		base--;
	for (size_t i = ign->n; i-- > 0;) {
		const struct pattern *pt = &ign->v[i];

		if ((pt->flags & PAT_DIRONLY) && !is_dir)
			continue;
		if (pt->flags & PAT_BASENAME) {
			if (match_basename(pt, base, (size_t)(path + plen - base)))
				return pt;
		} else if (match_pathname(pt, path, plen)) {
			return pt;
		}
	}
	return NULL;
}

/* For the walker, whose parents are known not to be excluded. */
static int last_match_excludes(const struct mse_ignore *ign, const char *path, size_t plen,
			       int is_dir)
{
	const struct pattern *pt = last_match(ign, path, plen, is_dir);

	return pt && !(pt->flags & PAT_NEGATE);
}

static enum mse_ignore_verdict verdict_of(const struct pattern *pt, int *line)
{
	if (line)
		*line = pt ? pt->line : 0;
	if (!pt)
		return MSE_IGNORE_NONE;
	return (pt->flags & PAT_NEGATE) ? MSE_IGNORE_INCLUDED : MSE_IGNORE_EXCLUDED;
}

enum mse_ignore_verdict mse_ignore_check(const struct mse_ignore *ign, const char *relpath,
					 int is_dir, int *line)
{
	size_t len;

	if (line)
		*line = 0;
	if (!ign || !relpath)
		return MSE_IGNORE_NONE;
	len = strlen(relpath);
	if (len && relpath[len - 1] == '/') {
		len--;
		is_dir = 1;
	}
	if (!len)
		return MSE_IGNORE_NONE;
	/*
	 * An excluded parent directory decides for everything below it: git
	 * never reads inside it (gitignore(5): "It is not possible to re-include
	 * a file if a parent directory of that file is excluded").
	 */
	for (size_t i = 1; i < len; i++) {
		const struct pattern *pt;

		if (relpath[i] != '/')
			continue;
		pt = last_match(ign, relpath, i, 1);
		if (pt && !(pt->flags & PAT_NEGATE))
			return verdict_of(pt, line);
	}
	return verdict_of(last_match(ign, relpath, len, is_dir), line);
}

int mse_ignore_match(const struct mse_ignore *ign, const char *relpath, int is_dir)
{
	return mse_ignore_check(ign, relpath, is_dir, NULL) == MSE_IGNORE_EXCLUDED;
}

/* ---- parsing ------------------------------------------------------------ */

void mse_ignore_free(struct mse_ignore *ign)
{
	if (!ign)
		return;
	for (size_t i = 0; i < ign->n; i++)
		free(ign->v[i].text);
	free(ign->v);
	free(ign);
}

size_t mse_ignore_count(const struct mse_ignore *ign)
{
	return ign ? ign->n : 0;
}

/*
 * Drops trailing spaces unless backslash-escaped (git: trim_trailing_spaces).
 * Tabs are not spaces here. Returns the new length.
 */
static size_t trim_trailing_spaces(const char *s, size_t len)
{
	size_t keep = len, i;
	int in_run = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == ' ') {
			if (!in_run)
				keep = i;
			in_run = 1;
			continue;
		}
		if (s[i] == '\\') {
			i++;
			if (i == len)
				return len; /* a trailing lone backslash keeps everything */
		}
		in_run = 0;
	}
	return in_run ? keep : len;
}

static int add_pattern(struct mse_ignore *ign, const char *s, size_t len, int line,
		       struct mse_err *err)
{
	struct pattern pt = {.line = line};

	if (len && s[0] == '!') {
		pt.flags |= PAT_NEGATE;
		s++;
		len--;
	}
	if (len && s[len - 1] == '/') {
		pt.flags |= PAT_DIRONLY;
		len--;
	}
	if (!len)
		return 0; /* "", "!", "/": git keeps them, but they match nothing */
	if (!memchr(s, '/', len))
		pt.flags |= PAT_BASENAME;
	while (pt.nowild < len && !glob_special((unsigned char)s[pt.nowild]))
		pt.nowild++;
	pt.len = len;
	pt.text = malloc(len + 1);
	if (!pt.text)
		return mse_err_set(err, "out of memory");
	memcpy(pt.text, s, len);
	pt.text[len] = 0;
	if (ign->n == ign->cap) {
		size_t cap = ign->cap ? ign->cap * 2 : 16;
		struct pattern *v = realloc(ign->v, cap * sizeof(*v));

		if (!v) {
			free(pt.text);
			return mse_err_set(err, "out of memory");
		}
		ign->v = v;
		ign->cap = cap;
	}
	ign->v[ign->n++] = pt;
	return 0;
}

int mse_ignore_parse(const char *text, size_t len, const char *source, struct mse_ignore **out,
		     struct mse_err *err)
{
	struct mse_ignore *ign;
	const char *nul;
	size_t off = 0;
	int line = 1;

	*out = NULL;
	if (!source)
		source = MSE_IGNORE_FILENAME;
	if (len && !text)
		return mse_err_set(err, "no text");
	nul = len ? memchr(text, '\0', len) : NULL;
	if (nul) {
		int l = 1, col = 1;

		for (const char *c = text; c < nul; c++, col++)
			if (*c == '\n') {
				l++;
				col = 0;
			}
		return mse_err_at(err, source, l, col, "NUL byte in an ignore file (not a text file?)");
	}
	ign = calloc(1, sizeof(*ign));
	if (!ign)
		return mse_err_set(err, "out of memory");
	/* A UTF-8 byte-order mark is not part of the first pattern. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		off = 3;
	while (off < len) {
		const char *s = text + off, *nl = memchr(s, '\n', len - off);
		size_t n = nl ? (size_t)(nl - s) : len - off;

		off += n + (nl ? 1 : 0);
		if (n && s[0] != '#') {
			if (n > MSE_IGNORE_MAX_LINE) {
				mse_err_at(err, source, line, MSE_IGNORE_MAX_LINE + 1,
					   "line longer than %d bytes", MSE_IGNORE_MAX_LINE);
				goto fail;
			}
			if (s[n - 1] == '\r')
				n--; /* CRLF files */
			n = trim_trailing_spaces(s, n);
			if (add_pattern(ign, s, n, line, err) != 0)
				goto fail;
		}
		line++;
	}
	*out = ign;
	return 0;
fail:
	mse_ignore_free(ign);
	return -1;
}

int mse_ignore_load(const char *code_dir, struct mse_ignore **out, struct mse_err *err)
{
	char path[PATH_MAX];
	uint8_t *data = NULL;
	size_t len = 0;
	struct stat st;
	int rc;

	*out = NULL;
	if (snprintf(path, sizeof(path), "%s/%s", code_dir, MSE_IGNORE_FILENAME) >=
	    (int)sizeof(path))
		return mse_err_field(err, code_dir, "path too long");
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return mse_ignore_parse(mse_ignore_default, strlen(mse_ignore_default),
						"(default .mseignore)", out, err);
		return mse_err_field(err, path, "cannot read: %s", strerror(errno));
	}
	if (S_ISDIR(st.st_mode))
		return mse_err_field(err, path, "is a directory, expected a text file of patterns");
	if (mse_file_read(path, MSE_IGNORE_MAX_FILE, &data, &len, err) != 0)
		return -1;
	rc = mse_ignore_parse((const char *)data, len, path, out, err);
	free(data);
	return rc;
}

/* ---- the walker ----------------------------------------------------------- */

struct dir_id {
	dev_t dev;
	ino_t ino;
};

struct walk {
	const struct mse_ignore *ign;
	const char *code_dir;
	char root_real[PATH_MAX]; /* realpath(code_dir) */
	size_t root_len;
	struct dir_id stack[MSE_IGNORE_MAX_DEPTH + 1]; /* directories being walked */
	int depth;
	struct mse_ignore_files *out;
	size_t cap;
	struct mse_err *err;
};

/* Reports path (as code_dir/rel) in the error's field. Returns -1. */
static int walk_fail(struct walk *w, const char *rel, const char *fmt, ...) MSE_PRINTF(3, 4);

static int walk_fail(struct walk *w, const char *rel, const char *fmt, ...)
{
	char where[PATH_MAX + 64], msg[sizeof(w->err->msg)];
	va_list ap;

	if (!w->err)
		return -1;
	snprintf(where, sizeof(where), "%s/%s", w->code_dir, rel);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return mse_err_field(w->err, where, "%s", msg);
}

static int add_file(struct walk *w, const char *rel)
{
	char *copy;

	if (w->out->n >= MSE_IGNORE_MAX_FILES)
		return walk_fail(w, rel, "more than %d files to package; list what is not part of "
					 "the app in .mseignore",
				 MSE_IGNORE_MAX_FILES);
	if (w->out->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		char **v = realloc(w->out->paths, cap * sizeof(*v));

		if (!v)
			return mse_err_set(w->err, "out of memory");
		w->out->paths = v;
		w->cap = cap;
	}
	copy = strdup(rel);
	if (!copy)
		return mse_err_set(w->err, "out of memory");
	w->out->paths[w->out->n++] = copy;
	return 0;
}

static int on_stack(const struct walk *w, const struct stat *st)
{
	for (int i = 0; i < w->depth; i++)
		if (w->stack[i].dev == st->st_dev && w->stack[i].ino == st->st_ino)
			return 1;
	return 0;
}

static int walk_dir(struct walk *w, int dfd, char *rel, size_t rel_len);

/*
 * A symlink that is not ignored: it must resolve inside the code directory
 * (the package would otherwise carry files the CP never meant to ship, and
 * the enclave would see a different tree than `mse package` listed).
 */
static int walk_symlink(struct walk *w, int dfd, const char *name, char *rel, size_t rel_len,
			const struct stat *target)
{
	char link_path[PATH_MAX], real[PATH_MAX];
	ssize_t n;

	if (snprintf(link_path, sizeof(link_path), "%s/%s", w->root_real, rel) >=
	    (int)sizeof(link_path))
		return walk_fail(w, rel, "path too long");
	if (!realpath(link_path, real)) {
		char to[PATH_MAX];

		n = readlinkat(dfd, name, to, sizeof(to) - 1);
		to[n > 0 ? n : 0] = 0;
		return walk_fail(w, rel, "symlink to '%s' cannot be resolved: %s", to,
				 strerror(errno));
	}
	if (strncmp(real, w->root_real, w->root_len) != 0 ||
	    (real[w->root_len] != '/' && real[w->root_len] != 0))
		return walk_fail(w, rel,
				 "symlink points outside the code directory (to %s); copy the "
				 "file in, or list the link in .mseignore",
				 real);
	if (S_ISREG(target->st_mode))
		return add_file(w, rel);
	if (S_ISDIR(target->st_mode)) {
		int sub, rc;

		if (on_stack(w, target))
			return walk_fail(w, rel, "symlink loop (points to %s, a parent of itself)",
					 real);
		sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sub < 0)
			return walk_fail(w, rel, "cannot open directory: %s", strerror(errno));
		rc = walk_dir(w, sub, rel, rel_len);
		return rc;
	}
	return walk_fail(w, rel, "symlink to a special file (%s), which cannot be packaged", real);
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walks the open directory dfd (consumed) whose relative path is rel[0..rel_len). */
static int walk_dir(struct walk *w, int dfd, char *rel, size_t rel_len)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int rc = -1;

	if (fstat(dfd, &st) != 0) {
		close(dfd);
		return walk_fail(w, rel, "cannot stat: %s", strerror(errno));
	}
	if (w->depth >= MSE_IGNORE_MAX_DEPTH) {
		close(dfd);
		return walk_fail(w, rel, "directories nested deeper than %d levels",
				 MSE_IGNORE_MAX_DEPTH);
	}
	w->stack[w->depth].dev = st.st_dev;
	w->stack[w->depth].ino = st.st_ino;
	w->depth++;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		walk_fail(w, rel, "cannot read directory: %s", strerror(errno));
		goto out_nodir;
	}
	for (;;) {
		const char *name;
		size_t nlen, clen;
		int is_dir, sub;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno) {
				walk_fail(w, rel, "cannot read directory: %s", strerror(errno));
				goto out;
			}
			break;
		}
		name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		nlen = strlen(name);
		clen = rel_len ? rel_len + 1 + nlen : nlen;
		if (clen >= PATH_MAX) {
			walk_fail(w, rel, "path too long under this directory");
			goto out;
		}
		if (rel_len)
			rel[rel_len] = '/';
		memcpy(rel + (rel_len ? rel_len + 1 : 0), name, nlen + 1);
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			walk_fail(w, rel, "cannot stat: %s", strerror(errno));
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			struct stat target;
			int ok = fstatat(dirfd(d), name, &target, 0) == 0, e = errno;

			/* Matched as what it points to: a link to a dir is walked as one. */
			is_dir = ok && S_ISDIR(target.st_mode);
			if (!last_match_excludes(w->ign, rel, clen, is_dir)) {
				if (!ok) {
					walk_fail(w, rel, "symlink cannot be followed: %s",
						  strerror(e));
					goto out;
				}
				if (walk_symlink(w, dirfd(d), name, rel, clen, &target) != 0)
					goto out;
			}
		} else if (S_ISDIR(st.st_mode)) {
			if (!last_match_excludes(w->ign, rel, clen, 1)) {
				sub = openat(dirfd(d), name,
					     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (sub < 0) {
					walk_fail(w, rel, "cannot open directory: %s",
						  strerror(errno));
					goto out;
				}
				if (walk_dir(w, sub, rel, clen) != 0)
					goto out;
			}
		} else if (S_ISREG(st.st_mode)) {
			if (!last_match_excludes(w->ign, rel, clen, 0) && add_file(w, rel) != 0)
				goto out;
		} else if (!last_match_excludes(w->ign, rel, clen, 0)) {
			walk_fail(w, rel,
				  "special file (%s) cannot be packaged; remove it or list it "
				  "in .mseignore",
				  S_ISFIFO(st.st_mode)   ? "FIFO"
				  : S_ISSOCK(st.st_mode) ? "socket"
							 : "device");
			goto out;
		}
		rel[rel_len] = 0;
	}
	rc = 0;
out:
	rel[rel_len] = 0;
	closedir(d);
out_nodir:
	w->depth--;
	return rc;
}

int mse_ignore_list(const char *code_dir, const struct mse_ignore *ign,
		    struct mse_ignore_files *out, struct mse_err *err)
{
	struct mse_ignore *loaded = NULL;
	struct walk *w = NULL;
	char rel[PATH_MAX];
	int fd, rc = -1;

	out->paths = NULL;
	out->n = 0;
	if (!ign) {
		if (mse_ignore_load(code_dir, &loaded, err) != 0)
			return -1;
		ign = loaded;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	w->ign = ign;
	w->code_dir = code_dir;
	w->out = out;
	w->err = err;
	if (!realpath(code_dir, w->root_real)) {
		mse_err_field(err, code_dir, "code directory: %s", strerror(errno));
		goto out;
	}
	w->root_len = strlen(w->root_real);
	if (w->root_len == 1)
		w->root_len = 0; /* "/": every path is inside */
	fd = open(code_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		mse_err_field(err, code_dir, "code directory: %s", strerror(errno));
		goto out;
	}
	rel[0] = 0;
	if (walk_dir(w, fd, rel, 0) != 0)
		goto out;
	if (out->n > 1)
		qsort(out->paths, out->n, sizeof(*out->paths), entry_cmp);
	rc = 0;
out:
	if (rc != 0)
		mse_ignore_files_free(out);
	free(w);
	mse_ignore_free(loaded);
	return rc;
}

void mse_ignore_files_free(struct mse_ignore_files *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		free(f->paths[i]);
	free(f->paths);
	f->paths = NULL;
	f->n = 0;
}
