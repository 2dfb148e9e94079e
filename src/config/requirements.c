/* SPDX-License-Identifier: Apache-2.0 */
#include "config/requirements.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

extern char **environ;

#include "common/file.h"

static int is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/* p[0..n) is the line without its blanks; col0 is p's 0-based column in the file's line. */
static int parse_line(const char *p, size_t n, int lineno, int col0, const char *filename,
		      struct mse_requirement *r, struct mse_err *err)
{
	size_t i = 0, start, k;

	memset(r, 0, sizeof(*r));
	r->line = lineno;
	if (p[0] == '-')
		return mse_err_at(err, filename, lineno, col0 + 1,
				  "options such as \"%.*s\" are not supported: nothing is installed "
				  "in an enclave, list distribution names only",
				  (int)(n > 40 ? 40 : n), p);
	if (!isalnum((unsigned char)p[0])) {
		char got[64];

		snprintf(got, sizeof(got), "\"%.*s\"", (int)(n > 40 ? 40 : n), p);
		mse_err_at(err, filename, lineno, col0 + 1, "%s", "");
		return mse_err_mismatch(err, "a distribution name", got);
	}
	while (i < n && is_name_char(p[i]))
		i++;
	if (i >= sizeof(r->name))
		return mse_err_at(err, filename, lineno, col0 + 1, "distribution name too long");
	memcpy(r->name, p, i);
	r->name[i] = 0;
	while (i < n && isspace((unsigned char)p[i]))
		i++;
	if (i < n && p[i] == '[') { /* extras: not checked */
		while (i < n && p[i] != ']')
			i++;
		if (i == n)
			return mse_err_at(err, filename, lineno, col0 + (int)i + 1, "unterminated extras '['");
		i++;
	}
	while (i < n && isspace((unsigned char)p[i]))
		i++;
	if (i < n && p[i] == '@')
		return mse_err_at(err, filename, lineno, col0 + (int)i + 1,
				  "%s: direct URL references cannot be installed in an enclave", r->name);
	start = i;
	while (i < n && p[i] != ';')
		i++;
	k = i;
	while (k > start && isspace((unsigned char)p[k - 1]))
		k--;
	if (k - start >= sizeof(r->spec))
		return mse_err_at(err, filename, lineno, col0 + (int)start + 1, "version specifier too long");
	/* p[j] != 0: strchr finds the terminator too, and a NUL would cut the spec short. */
	for (size_t j = start; j < k; j++)
		if (!(isalnum((unsigned char)p[j]) || (p[j] && strchr("<>=!~.*, +-_", p[j]))))
			return mse_err_at(err, filename, lineno, col0 + (int)j + 1,
					  "%s: unexpected character %s%c%s (byte 0x%02x) in the version "
					  "specifier",
					  r->name, isprint((unsigned char)p[j]) ? "'" : "",
					  isprint((unsigned char)p[j]) ? p[j] : '?',
					  isprint((unsigned char)p[j]) ? "'" : "", (unsigned char)p[j]);
	memcpy(r->spec, p + start, k - start);
	r->spec[k - start] = 0;
	return 0;
}

static int parse_utf8(const char *text, size_t len, const char *filename,
		      struct mse_requirement **out, size_t *count, struct mse_err *err)
{
	struct mse_requirement *v = NULL;
	size_t n = 0, cap = 0, pos = 0;
	int lineno = 0;

	*out = NULL;
	*count = 0;
	while (pos < len) {
		const char *line = text + pos;
		size_t ll = 0, a = 0, b;

		while (pos + ll < len && text[pos + ll] != '\n')
			ll++;
		pos += ll + 1;
		lineno++;
		b = ll;
		for (size_t j = 0; j < ll; j++)
			if (line[j] == '#') {
				b = j;
				break;
			}
		while (a < b && isspace((unsigned char)line[a]))
			a++;
		while (b > a && isspace((unsigned char)line[b - 1]))
			b--;
		if (a == b)
			continue;
		if (n == cap) {
			struct mse_requirement *nv = realloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));

			if (!nv) {
				free(v);
				return mse_err_set(err, "out of memory");
			}
			v = nv;
		}
		if (parse_line(line + a, b - a, lineno, (int)a, filename, &v[n], err) != 0) {
			free(v);
			return -1;
		}
		n++;
	}
	*out = v;
	*count = n;
	return 0;
}

/* Appends code point cp as UTF-8 to out (room for 4 bytes is the caller's). */
static size_t put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * UTF-16 or UTF-32 (unit bytes, big- or little-endian) to UTF-8, as pip's
 * auto_decode does after a byte-order mark. *out is malloc'd.
 */
static int decode_wide(const uint8_t *p, size_t len, int unit, int be, const char *enc,
		       const char *filename, char **out, size_t *outlen, struct mse_err *err)
{
	char *u = NULL;
	size_t n = 0, i = 0;

	if (len % (size_t)unit)
		return mse_err_at(err, filename, 1, 1, "%s text with an odd length (%zu bytes): truncated?",
				  enc, len);
	u = malloc(len / (size_t)unit * 4 + 1);
	if (!u)
		return mse_err_set(err, "out of memory");
	while (i < len) {
		uint32_t cp;

		if (unit == 2) {
			cp = be ? (uint32_t)p[i] << 8 | p[i + 1] : (uint32_t)p[i + 1] << 8 | p[i];
			i += 2;
			if (cp >= 0xd800 && cp < 0xdc00 && i + 2 <= len) {
				uint32_t lo = be ? (uint32_t)p[i] << 8 | p[i + 1]
						 : (uint32_t)p[i + 1] << 8 | p[i];

				if (lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					i += 2;
				}
			}
		} else {
			cp = be ? (uint32_t)p[i] << 24 | (uint32_t)p[i + 1] << 16 | (uint32_t)p[i + 2] << 8 |
					  p[i + 3]
				: (uint32_t)p[i + 3] << 24 | (uint32_t)p[i + 2] << 16 |
					  (uint32_t)p[i + 1] << 8 | p[i];
			i += 4;
		}
		if ((cp >= 0xd800 && cp < 0xe000) || cp > 0x10ffff) {
			free(u);
			return mse_err_at(err, filename, 1, 1,
					  "not valid %s: code unit 0x%x at byte %zu (pip cannot read it either)",
					  enc, (unsigned)cp, i - (size_t)unit);
		}
		n += put_utf8(u + n, cp);
	}
	u[n] = 0;
	*out = u;
	*outlen = n;
	return 0;
}

/* 1 if p[0..len) is valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static int valid_utf8(const uint8_t *p, size_t len, size_t *bad)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];
		size_t k;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			k = 1, cp = c & 0x1f, min = 0x80;
		else if ((c & 0xf0) == 0xe0)
			k = 2, cp = c & 0x0f, min = 0x800;
		else if ((c & 0xf8) == 0xf0)
			k = 3, cp = c & 0x07, min = 0x10000;
		else
			goto bad;
		if (len - i <= k)
			goto bad;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				goto bad;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
			goto bad;
		i += k + 1;
	}
	return 1;
bad:
	*bad = i;
	return 0;
}

int mse_requirements_parse(const char *text, size_t len, const char *filename,
			   struct mse_requirement **out, size_t *count, struct mse_err *err)
{
	const uint8_t *p = (const uint8_t *)text;
	char *wide = NULL;
	size_t wlen = 0, bad = 0, zeros_even = 0, zeros_odd = 0;
	int rc;

	*out = NULL;
	*count = 0;
	/*
	 * pip reads requirements files through auto_decode: a byte-order mark
	 * (UTF-32 before UTF-16, whose LE mark is a prefix of UTF-32's) selects
	 * the encoding; otherwise the text is UTF-8. Editors on Windows save
	 * "UTF-16" (with a mark) and "UTF-8 with BOM": both read as pip does.
	 */
	if (len >= 4 && !memcmp(p, "\xff\xfe\0\0", 4))
		rc = decode_wide(p + 4, len - 4, 4, 0, "UTF-32LE", filename, &wide, &wlen, err);
	else if (len >= 4 && !memcmp(p, "\0\0\xfe\xff", 4))
		rc = decode_wide(p + 4, len - 4, 4, 1, "UTF-32BE", filename, &wide, &wlen, err);
	else if (len >= 2 && !memcmp(p, "\xff\xfe", 2))
		rc = decode_wide(p + 2, len - 2, 2, 0, "UTF-16LE", filename, &wide, &wlen, err);
	else if (len >= 2 && !memcmp(p, "\xfe\xff", 2))
		rc = decode_wide(p + 2, len - 2, 2, 1, "UTF-16BE", filename, &wide, &wlen, err);
	else {
		if (len >= 3 && !memcmp(p, "\xef\xbb\xbf", 3)) {
			text += 3;
			len -= 3;
			p += 3;
		}
		/* UTF-16 without a mark: ASCII text with every other byte NUL. */
		for (size_t i = 0; i < len && i < 512; i++)
			if (!p[i]) {
				if (i % 2)
					zeros_odd++;
				else
					zeros_even++;
			}
		if (len >= 4 && (zeros_odd * 4 >= (len < 512 ? len : 512) ||
				 zeros_even * 4 >= (len < 512 ? len : 512)))
			return mse_err_at(err, filename, 1, 1,
					  "looks like %s without a byte-order mark; pip cannot read it: "
					  "save it as UTF-8",
					  zeros_odd >= zeros_even ? "UTF-16LE" : "UTF-16BE");
		if (!valid_utf8(p, len, &bad)) {
			int line = 1, col = 1;

			for (size_t i = 0; i < bad; i++, col++)
				if (p[i] == '\n')
					line++, col = 0;
			return mse_err_at(err, filename, line, col,
					  "not UTF-8: invalid byte 0x%02x at offset %zu; pip reads "
					  "requirements files as UTF-8 (or UTF-16/32 with a byte-order "
					  "mark): save it as UTF-8",
					  p[bad], bad);
		}
		return parse_utf8(text, len, filename, out, count, err);
	}
	if (rc != 0)
		return -1;
	rc = parse_utf8(wide, wlen, filename, out, count, err);
	free(wide);
	return rc;
}

/*
 * Asks the interpreter about each requirement: one line out per line in,
 * "ok VERSION", "missing", "mismatch VERSION" or "invalid" (a specifier
 * that PEP 440 rejects, e.g. ">>1.0").
 */
static const char check_script[] =
	"import sys, importlib.metadata as md\n"
	"try:\n"
	"    from packaging.specifiers import SpecifierSet, InvalidSpecifier\n"
	"except ImportError:\n"
	"    SpecifierSet = None\n"
	"for line in sys.stdin.read().splitlines():\n"
	"    name, _, spec = line.partition('\\t')\n"
	"    if spec and SpecifierSet is not None:\n"
	"        try:\n"
	"            spec = SpecifierSet(spec)\n"
	"        except InvalidSpecifier:\n"
	"            print('invalid'); continue\n"
	"    try:\n"
	"        v = md.version(name)\n"
	"    except md.PackageNotFoundError:\n"
	"        print('missing'); continue\n"
	"    if spec and SpecifierSet is not None and not spec.contains(v, prereleases=True):\n"
	"        print('mismatch', v); continue\n"
	"    print('ok', v)\n";

/*
 * Runs the check script with in_fd as its stdin and out_fd as its stdout
 * (both unlinked temporary files: no name in /tmp another user could
 * pre-create or swap). Returns the wait status, or -1.
 */
static int run_check(const char *python, int in_fd, int out_fd)
{
	/* No shell: paths are passed as they are. */
	char *argv[] = {(char *)python, "-I", "-c", (char *)check_script, NULL};
	posix_spawn_file_actions_t fa;
	int status = -1;
	pid_t pid;

	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	if (posix_spawn_file_actions_adddup2(&fa, in_fd, 0) == 0 &&
	    posix_spawn_file_actions_adddup2(&fa, out_fd, 1) == 0 &&
	    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0) == 0 &&
	    posix_spawn(&pid, python, &fa, NULL, argv, environ) == 0) {
		while (waitpid(pid, &status, 0) < 0)
			if (errno != EINTR) {
				status = -1;
				break;
			}
	}
	posix_spawn_file_actions_destroy(&fa);
	return status;
}

/* An unlinked temporary file, open read-write; NULL on error. */
static FILE *anon_tmp(void)
{
	char tmpl[] = "/tmp/mse-req.XXXXXX";
	int fd = mkostemp(tmpl, O_CLOEXEC);
	FILE *f;

	if (fd < 0)
		return NULL;
	unlink(tmpl);
	f = fdopen(fd, "w+");
	if (!f)
		close(fd);
	return f;
}

int mse_requirements_check(const char *path, const char *python, struct mse_err *err)
{
	struct mse_requirement *reqs = NULL;
	uint8_t *text = NULL;
	size_t len, n = 0;
	FILE *in = NULL, *out = NULL;
	int rc = -1, status;
	size_t bad = 0;
	char msg[4096] = "";

	if (!python)
		python = getenv("MSE_PYTHON") && *getenv("MSE_PYTHON") ? getenv("MSE_PYTHON")
								      : "/usr/bin/python3";
	if (!mse_file_exists(path))
		return 0;
	if (mse_file_read(path, 1 << 20, &text, &len, err) != 0)
		return -1;
	if (mse_requirements_parse((const char *)text, len, path, &reqs, &n, err) != 0)
		goto out;
	if (n == 0) {
		rc = 0;
		goto out;
	}
	if (!(in = anon_tmp()) || !(out = anon_tmp())) {
		mse_err_set(err, "cannot create a temporary file: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		fprintf(in, "%s\t%s\n", reqs[i].name, reqs[i].spec);
	if (fflush(in) != 0 || fseek(in, 0, SEEK_SET) != 0) {
		mse_err_set(err, "cannot write a temporary file: %s", strerror(errno));
		goto out;
	}
	status = run_check(python, fileno(in), fileno(out));
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		mse_err_set(err, "cannot run %s to check %s", python, path);
		goto out;
	}
	rewind(out);
	for (size_t i = 0; i < n; i++) {
		char line[256] = "", what[1400];
		size_t ml = strlen(msg);

		if (!fgets(line, sizeof(line), out))
			snprintf(line, sizeof(line), "missing");
		line[strcspn(line, "\n")] = 0;
		if (strncmp(line, "ok", 2) == 0)
			continue;
		bad++;
		if (strncmp(line, "mismatch", 8) == 0)
			snprintf(what, sizeof(what), "%s:%d: %s: installed %s does not satisfy \"%s\"",
				 path, reqs[i].line, reqs[i].name, line + 9, reqs[i].spec);
		else if (strcmp(line, "invalid") == 0)
			snprintf(what, sizeof(what),
				 "%s:%d: %s: \"%s\" is not a valid version specifier (PEP 440)", path,
				 reqs[i].line, reqs[i].name, reqs[i].spec);
		else {
			char deb[128];
			size_t j;

			/* Debian names Python packages python3-<lowercase name, '_' as '-'>. */
			for (j = 0; reqs[i].name[j] && j < sizeof(deb) - 1; j++)
				deb[j] = reqs[i].name[j] == '_' ? '-' : (char)tolower((unsigned char)reqs[i].name[j]);
			deb[j] = 0;
			snprintf(what, sizeof(what),
				 "%s:%d: %s: not installed for %s (on Debian: apt-get install "
				 "python3-%s)",
				 path, reqs[i].line, reqs[i].name, python, deb);
		}
		snprintf(msg + ml, sizeof(msg) - ml, "%s%s", ml ? "\n  " : "", what);
	}
	if (bad) {
		mse_err_set(err, "%zu requirement%s not available (there is no pip in an enclave):\n  %s",
			    bad, bad > 1 ? "s" : "", msg);
		goto out;
	}
	rc = 0;
out:
	if (in)
		fclose(in);
	if (out)
		fclose(out);
	free(reqs);
	free(text);
	return rc;
}
