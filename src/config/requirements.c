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

static int parse_line(const char *p, size_t n, int lineno, const char *filename,
		      struct mse_requirement *r, struct mse_err *err)
{
	size_t i = 0, start, k;

	memset(r, 0, sizeof(*r));
	r->line = lineno;
	if (p[0] == '-')
		return mse_err_at(err, filename, lineno, 1,
				  "options such as \"%.*s\" are not supported: nothing is installed "
				  "in an enclave, list distribution names only",
				  (int)(n > 40 ? 40 : n), p);
	if (!isalnum((unsigned char)p[0]))
		return mse_err_at(err, filename, lineno, 1, "expected a distribution name, got \"%.*s\"",
				  (int)(n > 40 ? 40 : n), p);
	while (i < n && is_name_char(p[i]))
		i++;
	if (i >= sizeof(r->name))
		return mse_err_at(err, filename, lineno, 1, "distribution name too long");
	memcpy(r->name, p, i);
	r->name[i] = 0;
	while (i < n && isspace((unsigned char)p[i]))
		i++;
	if (i < n && p[i] == '[') { /* extras: not checked */
		while (i < n && p[i] != ']')
			i++;
		if (i == n)
			return mse_err_at(err, filename, lineno, (int)i + 1, "unterminated extras '['");
		i++;
	}
	while (i < n && isspace((unsigned char)p[i]))
		i++;
	if (i < n && p[i] == '@')
		return mse_err_at(err, filename, lineno, (int)i + 1,
				  "%s: direct URL references cannot be installed in an enclave", r->name);
	start = i;
	while (i < n && p[i] != ';')
		i++;
	k = i;
	while (k > start && isspace((unsigned char)p[k - 1]))
		k--;
	if (k - start >= sizeof(r->spec))
		return mse_err_at(err, filename, lineno, (int)start + 1, "version specifier too long");
	for (size_t j = start; j < k; j++)
		if (!(isalnum((unsigned char)p[j]) || strchr("<>=!~.*, +-_", p[j])))
			return mse_err_at(err, filename, lineno, (int)j + 1,
					  "%s: unexpected character '%c' in the version specifier",
					  r->name, p[j]);
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
		if (parse_line(line + a, b - a, lineno, filename, &v[n], err) != 0) {
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
 * "ok VERSION", "missing" or "mismatch VERSION".
 */
static const char check_script[] =
	"import sys, importlib.metadata as md\n"
	"try:\n"
	"    from packaging.specifiers import SpecifierSet\n"
	"except ImportError:\n"
	"    SpecifierSet = None\n"
	"for line in sys.stdin.read().splitlines():\n"
	"    name, _, spec = line.partition('\\t')\n"
	"    try:\n"
	"        v = md.version(name)\n"
	"    except md.PackageNotFoundError:\n"
	"        print('missing'); continue\n"
	"    if spec and SpecifierSet is not None and not SpecifierSet(spec).contains(v, prereleases=True):\n"
	"        print('mismatch', v); continue\n"
	"    print('ok', v)\n";

int mse_requirements_check(const char *path, const char *python, struct mse_err *err)
{
	struct mse_requirement *reqs = NULL;
	char tmpl[] = "/tmp/mse-req.XXXXXX", outpath[64];
	uint8_t *text = NULL;
	size_t len, n = 0;
	FILE *in = NULL, *out = NULL;
	int fd, rc = -1, status;
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
	fd = mkstemp(tmpl);
	if (fd < 0 || !(in = fdopen(fd, "w"))) {
		mse_err_set(err, "cannot create a temporary file: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		fprintf(in, "%s\t%s\n", reqs[i].name, reqs[i].spec);
	fclose(in);
	snprintf(outpath, sizeof(outpath), "%s.out", tmpl);
	{
		/* No shell: paths are passed as they are. */
		char *argv[] = {(char *)python, "-I", "-c", (char *)check_script, NULL};
		posix_spawn_file_actions_t fa;
		pid_t pid;

		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 0, tmpl, O_RDONLY, 0);
		posix_spawn_file_actions_addopen(&fa, 1, outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
		if (posix_spawn(&pid, python, &fa, NULL, argv, environ) != 0)
			status = -1;
		else if (waitpid(pid, &status, 0) < 0)
			status = -1;
		posix_spawn_file_actions_destroy(&fa);
	}
	unlink(tmpl);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		unlink(outpath);
		mse_err_set(err, "cannot run %s to check %s", python, path);
		goto out;
	}
	out = fopen(outpath, "r");
	unlink(outpath);
	if (!out) {
		mse_err_set(err, "cannot read the requirement check's output");
		goto out;
	}
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
	fclose(out);
	if (bad) {
		mse_err_set(err, "%zu requirement%s not available (there is no pip in an enclave):\n  %s",
			    bad, bad > 1 ? "s" : "", msg);
		goto out;
	}
	rc = 0;
out:
	free(reqs);
	free(text);
	return rc;
}
