/* SPDX-License-Identifier: Apache-2.0 */
#include "config/requirements.h"

#include <ctype.h>
#include <errno.h>
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
	if (!isalnum((unsigned char)p[0]))
		return mse_err_at(err, filename, lineno, col0 + 1, "expected a distribution name, got \"%.*s\"",
				  (int)(n > 40 ? 40 : n), p);
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

int mse_requirements_parse(const char *text, size_t len, const char *filename,
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
