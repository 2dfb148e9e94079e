/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_ignore — `.mseignore`: which files of a code directory are packaged.
 *
 * MSE documents `.mseignore` as having the syntax of `.gitignore`; this module
 * implements git's semantics exactly (gitignore(5), git 2.39, as one file at
 * the root of the code directory — the same as `.git/info/exclude`), and the
 * tests check it path by path against `git check-ignore` as the oracle:
 *
 *   - one pattern per line; blank lines match nothing; `#` first = comment;
 *     a UTF-8 BOM at the start of the file and a CR before LF are dropped;
 *   - trailing spaces are dropped unless escaped (`foo\ `);
 *   - `!pattern` re-includes what an earlier pattern excluded; the LAST
 *     matching pattern decides; `\!` and `\#` start a literal pattern;
 *   - `pattern/` matches directories only (the slash is not part of it);
 *   - a pattern with no other `/` matches the basename at any depth; one with
 *     a `/` at its start or middle is anchored to the code directory root;
 *   - `*` and `?` do not match `/`, `[...]` is a class (`!`/`^` negates,
 *     ranges, `[:alpha:]`-style classes, ASCII only), `\x` is a literal x;
 *     `**` matches any number of directories when it is a whole segment
 *     (leading `** /x`, trailing `x/ **`, inner `a/ ** /b`, written here
 *     with spaces only because C comments cannot hold them), otherwise it
 *     is an ordinary `*`;
 *   - if a directory is excluded, everything below it is excluded and no
 *     negation can re-include it (git does not even look inside).
 *
 * Paths given to the matcher are relative to the code directory, with `/`
 * separators, without a leading `/` or `./` (one trailing `/` means "this is
 * a directory"). Matching is case-sensitive and byte-wise (no locale).
 *
 * Ownership: mse_ignore_parse/mse_ignore_load allocate a `struct mse_ignore`
 * that the caller frees with mse_ignore_free (NULL-safe). mse_ignore_list
 * fills a caller-owned `struct mse_ignore_files` whose contents the caller
 * frees with mse_ignore_files_free. Matching never allocates and is safe to
 * call from many threads on the same `struct mse_ignore`.
 */
#ifndef MSE_IGNORE_H
#define MSE_IGNORE_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

/* The name of the ignore file at the root of a code directory. */
#define MSE_IGNORE_FILENAME ".mseignore"
/* Largest .mseignore read (it is a short list of patterns). */
#define MSE_IGNORE_MAX_FILE (1024 * 1024)
/* Longest pattern line (bounds the matcher's recursion and time). */
#define MSE_IGNORE_MAX_LINE 4096
/* Walker limits: nesting depth and number of kept files. */
#define MSE_IGNORE_MAX_DEPTH 128
#define MSE_IGNORE_MAX_FILES 200000

/*
 * MSE's default `.mseignore` (mse-cli's template, written by `mse scaffold`,
 * and used by mse_ignore_load when a code directory has none).
 */
extern const char mse_ignore_default[];

struct mse_ignore;

/*
 * Parses .mseignore text (len bytes, need not be NUL-terminated). `source`
 * names the file in error messages (NULL: ".mseignore"). Fails only on a NUL
 * byte or a line longer than MSE_IGNORE_MAX_LINE (file:line:col in err), or
 * out of memory: git accepts those silently, mse-c would rather say so.
 */
int mse_ignore_parse(const char *text, size_t len, const char *source, struct mse_ignore **out,
		     struct mse_err *err) MSE_MUST_CHECK;

/*
 * Loads CODE_DIR/.mseignore; if the code directory has none, the result
 * holds mse_ignore_default (so secrets.json, mse.toml, .env, .git… are never
 * shipped by accident). A .mseignore that exists but cannot be read (or is a
 * directory, or larger than MSE_IGNORE_MAX_FILE) is an error.
 */
int mse_ignore_load(const char *code_dir, struct mse_ignore **out,
		    struct mse_err *err) MSE_MUST_CHECK;

void mse_ignore_free(struct mse_ignore *ign);

/* Number of patterns (comment and blank lines are not patterns). */
size_t mse_ignore_count(const struct mse_ignore *ign);

/* How a path was decided; see mse_ignore_check. */
enum mse_ignore_verdict {
	MSE_IGNORE_NONE = 0,     /* no pattern matches: kept */
	MSE_IGNORE_EXCLUDED = 1, /* the deciding pattern excludes it (or a parent) */
	MSE_IGNORE_INCLUDED = 2, /* the deciding pattern is a negation: kept */
};

/*
 * Decides `relpath` with every rule above, parent directories included: if
 * a parent directory is excluded, the result is EXCLUDED by the pattern that
 * excluded the parent. `is_dir` says whether relpath is a directory (dir/
 * patterns only match directories). If `line` is not NULL it receives the
 * 1-based line in the .mseignore of the deciding pattern (0 for NONE) — the
 * same line `git check-ignore -v` reports.
 */
enum mse_ignore_verdict mse_ignore_check(const struct mse_ignore *ign, const char *relpath,
					 int is_dir, int *line);

/* 1 if relpath is ignored (not packaged), 0 if kept. NULL ign: 0. */
int mse_ignore_match(const struct mse_ignore *ign, const char *relpath, int is_dir);

/* The kept regular files of a code directory. */
struct mse_ignore_files {
	char **paths; /* n paths relative to the code directory, sorted by strcmp */
	size_t n;
};

/*
 * Walks code_dir and returns, sorted, every regular file that `ign` keeps
 * (NULL ign: mse_ignore_load(code_dir)). An excluded directory is not
 * entered. Entries that are kept must be safe to package, else the walk
 * fails with an error naming the path:
 *   - a symlink is followed only if its target resolves inside code_dir;
 *     one that escapes it, dangles, or loops is an error; a symlink to a
 *     file is listed under the link's own path, one to a directory is walked
 *     (matched as a directory);
 *   - a FIFO, socket or device is an error;
 *   - unreadable directories, depth beyond MSE_IGNORE_MAX_DEPTH or more than
 *     MSE_IGNORE_MAX_FILES kept files are errors.
 * Ignored entries are never examined, so e.g. an ignored `.venv/` full of
 * symlinks to /usr is fine. On success *out is filled (free it with
 * mse_ignore_files_free); on failure it is left empty.
 */
int mse_ignore_list(const char *code_dir, const struct mse_ignore *ign,
		    struct mse_ignore_files *out, struct mse_err *err) MSE_MUST_CHECK;

/* Frees the paths and empties *f. NULL-safe, idempotent. */
void mse_ignore_files_free(struct mse_ignore_files *f);

#endif
