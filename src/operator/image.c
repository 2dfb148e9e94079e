/* SPDX-License-Identifier: Apache-2.0 */
#include "operator/image.h"

#include <ctype.h>
#include <stdarg.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/file.h"
#include "common/hex.h"
#include "config/project.h"
#include "config/requirements.h"
#include "crypto/archive.h"
#include "crypto/package.h"
#include "operator/proc.h"

#define DIST_PACKAGES "/usr/lib/python3/dist-packages"
#define MAX_PKGS 64
#define OUT_MAX (1u << 20)
#define PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* The unprivileged user the images run as (the manifests say runAsNonRoot). */
#define IMAGE_USER "65532:65532"

static void say(const struct mse_image_opts *o, const char *fmt, ...) MSE_PRINTF(2, 3);
static void say(const struct mse_image_opts *o, const char *fmt, ...)
{
	va_list ap;

	if (!o->log)
		return;
	va_start(ap, fmt);
	vfprintf(o->log, fmt, ap);
	va_end(ap);
	fputc('\n', o->log);
	fflush(o->log);
}

/*
 * Runs argv (PATH searched) and collects stdout and stderr together into
 * *out (NUL-terminated, malloc'd, at most OUT_MAX bytes kept). Returns the
 * exit status (128+signal), or -1 if it could not start.
 */
static int run_capture(char *const argv[], char **out, struct mse_err *err)
{
	int p[2], st = 0;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	pid_t pid;

	*out = NULL;
	if (!buf || pipe2(p, O_CLOEXEC) != 0) {
		free(buf);
		return mse_err_set(err, "pipe: %s", strerror(errno));
	}
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		free(buf);
		return mse_err_set(err, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		execvp(argv[0], argv);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap && cap < OUT_MAX) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		if (len + 1 >= cap) {
			char sink[4096];

			n = read(p[0], sink, sizeof(sink));
		} else {
			n = read(p[0], buf + len, cap - len - 1);
			if (n > 0)
				len += (size_t)n;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
	}
	close(p[0]);
	buf[len] = '\0';
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*out = buf;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

/* Runs argv; a non-zero exit is an error quoting the command's last output. */
static int run_ok(char *const argv[], char **out, struct mse_err *err)
{
	char *o = NULL;
	int rc = run_capture(argv, &o, err);

	if (rc < 0)
		return -1;
	if (rc != 0) {
		size_t n = strlen(o);
		const char *tail = n > 600 ? o + n - 600 : o;

		mse_err_set(err, "%s exited with %d: %s", argv[0], rc, tail);
		free(o);
		return -1;
	}
	if (out)
		*out = o;
	else
		free(o);
	return 0;
}

/* ---- Debian packages ------------------------------------------------------ */

struct pkgset {
	char name[MAX_PKGS][128];
	size_t n;
};

static int pkg_add(struct pkgset *s, const char *name, size_t len, struct mse_err *err)
{
	char tmp[128];
	const char *colon = memchr(name, ':', len);

	if (colon)
		len = (size_t)(colon - name); /* "libssl3:amd64" -> "libssl3" */
	if (len == 0 || len >= sizeof(tmp))
		return mse_err_set(err, "bad package name '%.*s'", (int)len, name);
	memcpy(tmp, name, len);
	tmp[len] = '\0';
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->name[i], tmp) == 0)
			return 0;
	if (s->n == MAX_PKGS)
		return mse_err_set(err, "more than %d packages in one image", MAX_PKGS);
	memcpy(s->name[s->n++], tmp, len + 1);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* dpkg -S PATH: the package owning an exact path, or -1. */
static int dpkg_owner(const char *path, char *pkg, size_t size)
{
	char *argv[] = {"dpkg", "-S", (char *)path, NULL}, *out = NULL, *colon;
	struct mse_err e;
	int rc;

	mse_err_clear(&e);
	rc = run_capture(argv, &out, &e);
	if (rc != 0 || !out || !(colon = strstr(out, ": "))) {
		free(out);
		return -1;
	}
	/* "pkg1, pkg2: path" (diversions, shared dirs): the first one */
	snprintf(pkg, size, "%.*s", (int)strcspn(out, ",:"), out);
	free(out);
	return 0;
}

/* The packages of the shared libraries a binary links against (ldd, dpkg -S). */
static int binary_packages(const char *bin, struct pkgset *s, struct mse_err *err)
{
	char *argv[] = {"ldd", (char *)bin, NULL}, *out = NULL, *line, *save = NULL;

	if (run_ok(argv, &out, err) != 0)
		return -1;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char path[PATH_MAX], real[PATH_MAX], alt[PATH_MAX + 8], pkg[160];
		char *p = strstr(line, "=> "), *end;

		p = p ? p + 3 : line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '/')
			continue; /* linux-vdso.so.1 */
		end = strchr(p, ' ');
		snprintf(path, sizeof(path), "%.*s", end ? (int)(end - p) : (int)strlen(p), p);
		if (!realpath(path, real))
			snprintf(real, sizeof(real), "%s", path);
		/* merged /usr: dpkg knows the path as the package shipped it */
		snprintf(alt, sizeof(alt), "%s%s", strncmp(real, "/usr/", 5) == 0 ? "" : "/usr",
			 strncmp(real, "/usr/", 5) == 0 ? real + 4 : real);
		if (dpkg_owner(path, pkg, sizeof(pkg)) != 0 && dpkg_owner(real, pkg, sizeof(pkg)) != 0 &&
		    dpkg_owner(alt, pkg, sizeof(pkg)) != 0) {
			mse_err_field(err, bin, "links against %s, which no Debian package installed here "
						"ships (dpkg -S)", path);
			free(out);
			return -1;
		}
		if (pkg_add(s, pkg, strlen(pkg), err) != 0) {
			free(out);
			return -1;
		}
	}
	free(out);
	return 0;
}

/* PEP 503: lowercase, runs of -_. become one '-'. */
static void pep503(const char *in, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < size; i++) {
		char c = in[i];

		if (c == '-' || c == '_' || c == '.') {
			if (o && out[o - 1] == '-')
				continue;
			out[o++] = '-';
		} else {
			out[o++] = (char)tolower((unsigned char)c);
		}
	}
	out[o] = '\0';
}

int mse_image_requirement_package(const char *name, char *out, size_t size, struct mse_err *err)
{
	const char *dir = getenv("MSE_DIST_PACKAGES");
	char want[160];
	struct dirent *d;
	DIR *dp;
	int found = 0;

	if (!dir || !*dir)
		dir = DIST_PACKAGES;
	pep503(name, strlen(name), want, sizeof(want));
	dp = opendir(dir);
	if (!dp)
		return mse_err_field(err, dir, "%s", strerror(errno));
	while (!found && (d = readdir(dp))) {
		const char *n = d->d_name, *suffix = strrchr(n, '.'), *dash;
		char have[160], path[PATH_MAX];

		if (!suffix || (strcmp(suffix, ".dist-info") != 0 && strcmp(suffix, ".egg-info") != 0))
			continue;
		/* "Name-1.0.dist-info", "Name.egg-info": the name ends at the first '-' */
		dash = strchr(n, '-');
		pep503(n, (size_t)((dash && dash < suffix ? dash : suffix) - n), have, sizeof(have));
		if (strcmp(have, want) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, n);
		if (dpkg_owner(path, out, size) == 0)
			found = 1;
	}
	closedir(dp);
	if (!found)
		return mse_err_field(err, name, "no Debian package installed here provides the Python "
						"distribution '%s' (looked for its metadata in %s, then "
						"dpkg -S): install its python3-* package, or remove it "
						"from requirements.txt", name, dir);
	return 0;
}

static int requirement_packages(const char *code_dir, struct pkgset *s, struct mse_err *err)
{
	char path[PATH_MAX + 32];
	struct mse_requirement *reqs = NULL;
	size_t n = 0, len = 0;
	uint8_t *text = NULL;

	snprintf(path, sizeof(path), "%s/requirements.txt", code_dir);
	if (!mse_file_exists(path))
		return 0;
	if (mse_file_read(path, 1 << 20, &text, &len, err) != 0)
		return -1;
	if (mse_requirements_parse((const char *)text, len, path, &reqs, &n, err) != 0) {
		free(text);
		return -1;
	}
	free(text);
	for (size_t i = 0; i < n; i++) {
		char pkg[160];

		if (mse_image_requirement_package(reqs[i].name, pkg, sizeof(pkg), err) != 0) {
			mse_err_file(err, path);
			err->line = reqs[i].line;
			free(reqs);
			return -1;
		}
		if (pkg_add(s, pkg, strlen(pkg), err) != 0) {
			free(reqs);
			return -1;
		}
	}
	free(reqs);
	return 0;
}

/* ---- files and digests ---------------------------------------------------- */

static int sha256_file(const char *path, char hex[65], uint64_t *size, struct mse_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE], *buf = malloc(1 << 16);
	unsigned mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;
	uint64_t total = 0;

	if (fd < 0 || !c || !buf || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		mse_err_field(err, path, "%s", fd < 0 ? strerror(errno) : "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, 1 << 16);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			mse_err_field(err, path, "%s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (EVP_DigestUpdate(c, buf, (size_t)n) != 1)
			goto out;
	}
	if (EVP_DigestFinal_ex(c, md, &mdlen) != 1 || mse_hex_encode(hex, 65, md, 32) != 0)
		goto out;
	*size = total;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(c);
	free(buf);
	return rc;
}

static int sha256_mem(const void *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return -1;
	return mse_hex_encode(hex, 65, md, 32);
}

static int copy_file(const char *src, const char *dst, mode_t mode, struct mse_err *err)
{
	char *argv[] = {"cp", "--", (char *)src, (char *)dst, NULL};

	if (run_ok(argv, NULL, err) != 0)
		return -1;
	if (chmod(dst, mode) != 0)
		return mse_err_field(err, dst, "chmod: %s", strerror(errno));
	return 0;
}

/* Fixed modes before tar: directories 0755, files 0644 unless executable (0755). */
static int fix_mode(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)f;
	if (type == FTW_D || type == FTW_DP)
		return chmod(path, 0755);
	if (type == FTW_F)
		return chmod(path, (st->st_mode & S_IXUSR) ? 0755 : 0644);
	return 0;
}

/*
 * The layer of our own files: GNU tar, names sorted, 0:0, fixed mtime. The
 * top-level entries are listed (sorted) so "./" (the image's /) is not in it.
 */
static int own_layer(const char *staging, const char *out, long long epoch, struct mse_err *err)
{
	char mtime[32], *argv[24];
	struct dirent **names = NULL;
	int n, a = 0, rc = -1;

	if (nftw(staging, fix_mode, 16, FTW_PHYS) != 0)
		return mse_err_field(err, staging, "chmod: %s", strerror(errno));
	n = scandir(staging, &names, NULL, alphasort);
	if (n < 0)
		return mse_err_field(err, staging, "%s", strerror(errno));
	snprintf(mtime, sizeof(mtime), "--mtime=@%lld", epoch);
	argv[a++] = "tar";
	argv[a++] = "--sort=name";
	argv[a++] = "--format=gnu";
	argv[a++] = "--owner=0";
	argv[a++] = "--group=0";
	argv[a++] = "--numeric-owner";
	argv[a++] = mtime;
	argv[a++] = "-C";
	argv[a++] = (char *)staging;
	argv[a++] = "-cf";
	argv[a++] = (char *)out;
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") == 0 || strcmp(names[i]->d_name, "..") == 0)
			continue;
		if (a >= 22) {
			mse_err_field(err, staging, "too many top-level entries");
			goto out;
		}
		argv[a++] = names[i]->d_name;
	}
	argv[a] = NULL;
	rc = run_ok(argv, NULL, err);
out:
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* ---- the base ------------------------------------------------------------- */

static int cache_dir(const struct mse_image_opts *o, char *out, size_t size, struct mse_err *err)
{
	const char *c = o->cache ? o->cache : getenv("MSE_CACHE"), *x = getenv("XDG_CACHE_HOME"),
		   *h = getenv("HOME");

	if (c && *c)
		snprintf(out, size, "%s", c);
	else if (x && *x)
		snprintf(out, size, "%s/mse-c", x);
	else if (h && *h)
		snprintf(out, size, "%s/.cache/mse-c", h);
	else
		return mse_err_set(err, "no cache directory: set MSE_CACHE or HOME");
	return mse_file_mkdirs(out, 0755, err);
}

static int os_release(const char *key, char *out, size_t size)
{
	FILE *f = fopen("/etc/os-release", "r");
	char line[256];
	size_t kl = strlen(key);

	if (!f)
		return -1;
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) == 0 && line[kl] == '=') {
			char *v = line + kl + 1;

			v[strcspn(v, "\r\n")] = '\0';
			if (*v == '"') {
				v++;
				v[strcspn(v, "\"")] = '\0';
			}
			snprintf(out, size, "%s", v);
		}
	}
	fclose(f);
	return out[0] ? 0 : -1;
}

/*
 * The cached base for a package list: CACHE/image-base-SUITE-KEY.tar, KEY =
 * the first 16 hex digits of SHA-256("SUITE\nPKG\n..."), made by mmdebstrap
 * the first time (docs, man pages and locales left out).
 */
static int base_tar(const struct mse_image_opts *o, struct pkgset *s, char *out, size_t size,
		    struct mse_err *err)
{
	char cache[PATH_MAX], suite[300], list[MAX_PKGS * 130], key[65], include[MAX_PKGS * 130 + 16],
		tmp[PATH_MAX + 8], listfile[PATH_MAX + 400];
	char *argv[32 + 16], debs[PATH_MAX + 400], sde[64], sync_in[PATH_MAX + 500],
		sync_out[PATH_MAX + 500], versions[PATH_MAX + 500];
	size_t off;
	glob_t g;
	int a = 0, rc;

	if (cache_dir(o, cache, sizeof(cache), err) != 0)
		return -1;
	if (os_release("VERSION_CODENAME", suite, sizeof(suite)) != 0)
		return mse_err_field(err, "/etc/os-release", "no VERSION_CODENAME");
	qsort(s->name, s->n, sizeof(s->name[0]), cmp_str);
	off = (size_t)snprintf(list, sizeof(list), "%s\n", suite);
	for (size_t i = 0; i < s->n; i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s\n", s->name[i]);
	if (sha256_mem(list, off, key) != 0)
		return mse_err_set(err, "sha256 failed");
	key[16] = '\0';
	if (snprintf(out, size, "%s/image-base-%s-%s.tar", cache, suite, key) >= (int)size)
		return mse_err_field(err, cache, "path too long");
	snprintf(listfile, sizeof(listfile), "%s/image-base-%s-%s.packages", cache, suite, key);
	if (mse_file_exists(out))
		return 0;
	off = (size_t)snprintf(include, sizeof(include), "--include=");
	for (size_t i = 0; i < s->n; i++)
		off += (size_t)snprintf(include + off, sizeof(include) - off, "%s%s", i ? "," : "",
					s->name[i]);
	say(o, "making the base %s (mmdebstrap: %zu packages, a minute or two the first time)", out,
	    s->n);
	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	/*
	 * The .debs are cached too (CACHE/debs-SUITE, mmdebstrap's documented
	 * sync-in/sync-out pattern), so a base made again uses the same files
	 * where the mirror still selects those versions, and the exact versions
	 * installed are recorded in .versions; SOURCE_DATE_EPOCH makes
	 * mmdebstrap's own output reproducible for the same .debs. The tarball
	 * itself is what the images use, byte for byte, as long as it is cached.
	 */
	if (strchr(cache, '\'') || strchr(listfile, '\''))
		return mse_err_field(err, cache, "a cache path with a single quote is not supported");
	snprintf(debs, sizeof(debs), "%s/debs-%s", cache, suite);
	if (mse_file_mkdirs(debs, 0755, err) != 0)
		return -1;
	snprintf(sde, sizeof(sde), "SOURCE_DATE_EPOCH=%lld", o->epoch);
	snprintf(sync_in, sizeof(sync_in), "--setup-hook=sync-in '%s' /var/cache/apt/archives/", debs);
	snprintf(sync_out, sizeof(sync_out), "--customize-hook=sync-out /var/cache/apt/archives '%s'",
		 debs);
	snprintf(versions, sizeof(versions),
		 "--customize-hook=chroot \"$1\" dpkg-query -W -f '${Package}=${Version}\\n' "
		 "> '%.*s.versions'", (int)(strlen(listfile) - strlen(".packages")), listfile);
	argv[a++] = "env";
	argv[a++] = sde;
	argv[a++] = "mmdebstrap";
	argv[a++] = "--quiet";
	argv[a++] = "--variant=minbase";
	argv[a++] = "--mode=root";
	argv[a++] = "--format=tar";
	argv[a++] = "--skip=download/empty";
	argv[a++] = "--skip=essential/unlink";
	argv[a++] = "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/";
	argv[a++] = sync_in;
	argv[a++] = "--dpkgopt=path-exclude=/usr/share/doc/*";
	argv[a++] = "--dpkgopt=path-include=/usr/share/doc/*/copyright";
	argv[a++] = "--dpkgopt=path-exclude=/usr/share/man/*";
	argv[a++] = "--dpkgopt=path-exclude=/usr/share/locale/*";
	argv[a++] = "--dpkgopt=path-exclude=/usr/share/info/*";
	argv[a++] = "--aptopt=Acquire::Languages \"none\"";
	argv[a++] = sync_out;
	argv[a++] = versions;
	argv[a++] = "--customize-hook=rm -rf \"$1\"/var/cache/apt/* \"$1\"/var/lib/apt/lists/* "
		    "\"$1\"/var/log/* \"$1\"/etc/machine-id \"$1\"/etc/hostname";
	argv[a++] = include;
	argv[a++] = suite;
	argv[a++] = tmp;
	memset(&g, 0, sizeof(g));
	rc = glob("/etc/apt/sources.list.d/*.sources", 0, NULL, &g);
	for (size_t i = 0; rc == 0 && i < g.gl_pathc && a < 46; i++)
		argv[a++] = g.gl_pathv[i];
	if (mse_file_exists("/etc/apt/sources.list")) {
		struct stat st;

		if (stat("/etc/apt/sources.list", &st) == 0 && st.st_size > 0 && a < 47)
			argv[a++] = "/etc/apt/sources.list";
	}
	argv[a] = NULL;
	rc = run_ok(argv, NULL, err);
	globfree(&g);
	if (rc != 0) {
		unlink(tmp);
		mse_err_prefix(err, "mmdebstrap (the image base)");
		return -1;
	}
	if (rename(tmp, out) != 0)
		return mse_err_field(err, out, "rename: %s", strerror(errno));
	return mse_file_write_atomic(listfile, list, off, 0644, err);
}

/* ---- OCI layout and podman ------------------------------------------------ */

static char *json_str(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	json_decref(j);
	return s;
}

static int put_blob(const char *layout, const char *data, size_t len, char hex[65],
		    struct mse_err *err)
{
	char path[PATH_MAX + 100];

	if (sha256_mem(data, len, hex) != 0)
		return mse_err_set(err, "sha256 failed");
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", layout, hex);
	return mse_file_write_atomic(path, data, len, 0644, err);
}

/* A file into blobs/ under its digest: hard link when possible, else a copy. */
static int put_file_blob(const char *layout, const char *src, const char *hex, struct mse_err *err)
{
	char path[PATH_MAX + 100];

	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", layout, hex);
	if (mse_file_exists(path) || link(src, path) == 0)
		return 0;
	return copy_file(src, path, 0644, err);
}

struct image_spec {
	const char *name;      /* localhost/NAME */
	const char *base;      /* base tarball */
	const char *staging;   /* our files */
	json_t *entrypoint;    /* array (stolen) */
	json_t *labels;        /* object (stolen) */
	const char *base_desc; /* history */
};

static int build_one(const struct mse_image_opts *o, const char *work, const struct image_spec *is,
		     struct mse_image_built *b, struct mse_err *err)
{
	char layout[PATH_MAX], layer[PATH_MAX + 16], base_hex[65], own_hex[65], cfg_hex[65],
		man_hex[65], created[32], arch[32] = "amd64", blobs[PATH_MAX + 32];
	const char *tag = o->tag ? o->tag : "latest";
	uint64_t base_size = 0, own_size = 0;
	char *cfg = NULL, *man = NULL, *idx = NULL, *out = NULL;
	struct tm tm;
	time_t t = (time_t)o->epoch;
	json_t *j;
	int rc = -1;

	snprintf(b->ref, sizeof(b->ref), "%s:%s", is->name, tag);
	snprintf(b->base, sizeof(b->base), "%s", is->base);
	if (o->out_dir)
		snprintf(layout, sizeof(layout), "%s/%s", o->out_dir, strrchr(is->name, '/') + 1);
	else
		snprintf(layout, sizeof(layout), "%s/%s", work, strrchr(is->name, '/') + 1);
	snprintf(layer, sizeof(layer), "%s.layer.tar", layout);
	snprintf(blobs, sizeof(blobs), "%s/blobs/sha256", layout);
	if (mse_file_exists(layout) && mse_file_remove_tree(layout, err) != 0)
		goto out;
	if (mse_file_mkdirs(blobs, 0755, err) != 0 || own_layer(is->staging, layer, o->epoch, err) != 0 ||
	    sha256_file(is->base, base_hex, &base_size, err) != 0 ||
	    sha256_file(layer, own_hex, &own_size, err) != 0 ||
	    put_file_blob(layout, is->base, base_hex, err) != 0 ||
	    put_file_blob(layout, layer, own_hex, err) != 0)
		goto out;
	unlink(layer);
	{
		char *argv[] = {"dpkg", "--print-architecture", NULL};

		if (run_ok(argv, &out, err) != 0)
			goto out;
		snprintf(arch, sizeof(arch), "%.*s", (int)strcspn(out, "\n"), out);
	}
	gmtime_r(&t, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	j = json_pack("{s:s, s:s, s:s, s:{s:o, s:[s, s], s:s, s:s, s:o}, s:{s:s, s:[s, s]}, "
		      "s:[{s:s, s:s}, {s:s, s:s}]}",
		      "architecture", arch, "os", "linux", "created", created, "config", "Entrypoint",
		      is->entrypoint, "Env", PATH_ENV, "LANG=C.UTF-8", "User", IMAGE_USER,
		      "WorkingDir", "/", "Labels", is->labels, "rootfs", "type", "layers", "diff_ids",
		      (char[80]){0}, (char[80]){0}, "history", "created", created, "created_by",
		      is->base_desc, "created", created, "created_by", "mse image build");
	if (!j) {
		mse_err_set(err, "building the image config failed");
		goto out;
	}
	{
		json_t *ids = json_object_get(json_object_get(j, "rootfs"), "diff_ids");
		char d[80];

		snprintf(d, sizeof(d), "sha256:%s", base_hex);
		json_array_set_new(ids, 0, json_string(d));
		snprintf(d, sizeof(d), "sha256:%s", own_hex);
		json_array_set_new(ids, 1, json_string(d));
	}
	cfg = json_str(j);
	if (!cfg || put_blob(layout, cfg, strlen(cfg), cfg_hex, err) != 0)
		goto out;
	{
		char c[80], l0[80], l1[80];

		snprintf(c, sizeof(c), "sha256:%s", cfg_hex);
		snprintf(l0, sizeof(l0), "sha256:%s", base_hex);
		snprintf(l1, sizeof(l1), "sha256:%s", own_hex);
		man = json_str(json_pack(
			"{s:i, s:s, s:{s:s, s:s, s:I}, s:[{s:s, s:s, s:I}, {s:s, s:s, s:I}]}",
			"schemaVersion", 2, "mediaType", "application/vnd.oci.image.manifest.v1+json",
			"config", "mediaType", "application/vnd.oci.image.config.v1+json", "digest", c,
			"size", (json_int_t)strlen(cfg), "layers", "mediaType",
			"application/vnd.oci.image.layer.v1.tar", "digest", l0, "size",
			(json_int_t)base_size, "mediaType", "application/vnd.oci.image.layer.v1.tar",
			"digest", l1, "size", (json_int_t)own_size));
	}
	if (!man || put_blob(layout, man, strlen(man), man_hex, err) != 0)
		goto out;
	{
		char m[80];

		snprintf(m, sizeof(m), "sha256:%s", man_hex);
		idx = json_str(json_pack("{s:i, s:[{s:s, s:s, s:I, s:{s:s}}]}", "schemaVersion", 2,
					 "manifests", "mediaType",
					 "application/vnd.oci.image.manifest.v1+json", "digest", m,
					 "size", (json_int_t)strlen(man), "annotations",
					 "org.opencontainers.image.ref.name", b->ref));
	}
	{
		char p[PATH_MAX + 32];
		static const char layout_json[] = "{\"imageLayoutVersion\":\"1.0.0\"}";

		snprintf(p, sizeof(p), "%s/index.json", layout);
		if (!idx || mse_file_write_atomic(p, idx, strlen(idx), 0644, err) != 0)
			goto out;
		snprintf(p, sizeof(p), "%s/oci-layout", layout);
		if (mse_file_write_atomic(p, layout_json, strlen(layout_json), 0644, err) != 0)
			goto out;
	}
	snprintf(b->id, sizeof(b->id), "sha256:%s", cfg_hex);
	snprintf(b->manifest, sizeof(b->manifest), "sha256:%s", man_hex);
	if (!o->no_load) {
		char src[PATH_MAX + 16];
		char *load[] = {"podman", "load", "-q", "-i", src, NULL};
		char *tagv[] = {"podman", "tag", b->id + 7, b->ref, NULL};

		/* podman load takes an OCI archive: the layout as one tar. */
		snprintf(src, sizeof(src), "%s.oci.tar", layout);
		{
			char *tarv[] = {"tar", "--sort=name", "--format=gnu", "-C", layout,
					"-cf", src, "oci-layout", "index.json", "blobs", NULL};

			if (run_ok(tarv, NULL, err) != 0)
				goto out;
		}
		say(o, "loading %s into podman", b->ref);
		free(out);
		out = NULL;
		if (run_ok(load, &out, err) != 0 || run_ok(tagv, NULL, err) != 0) {
			unlink(src);
			goto out;
		}
		unlink(src);
	}
	rc = 0;
out:
	if (rc != 0)
		unlink(layer);
	if (!o->out_dir && mse_file_exists(layout)) {
		struct mse_err e2;

		mse_err_clear(&e2);
		if (mse_file_remove_tree(layout, &e2) != 0)
			{ /* a temporary directory left behind */ }
	}
	free(cfg);
	free(man);
	free(idx);
	free(out);
	return rc;
}

/* ---- the two images ------------------------------------------------------- */

static int find_package(const char *project, char *out, size_t size, struct mse_err *err)
{
	char pat[PATH_MAX + 64];
	glob_t g;
	time_t best = 0;

	snprintf(pat, sizeof(pat), "%s/.mse/package.*/package_*.tar", project);
	memset(&g, 0, sizeof(g));
	if (glob(pat, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			struct stat st;

			if (stat(g.gl_pathv[i], &st) == 0 && st.st_mtime >= best) {
				best = st.st_mtime;
				snprintf(out, size, "%s", g.gl_pathv[i]);
			}
		}
	}
	globfree(&g);
	if (!best)
		return mse_err_field(err, "--package",
				     "no package in %s/.mse/package.*/: make one with 'mse coordinator "
				     "manifest --project %s' (or 'mse package'), or pass --package",
				     project, project);
	return 0;
}

static int bin_path(const struct mse_image_opts *o, const char *name, char *out, size_t size,
		    struct mse_err *err)
{
	char self[PATH_MAX], *slash;

	if (o->bin_dir) {
		if (snprintf(out, size, "%s/%s", o->bin_dir, name) >= (int)size)
			return mse_err_set(err, "path too long");
	} else {
		if (mse_proc_self_exe(self, sizeof(self)) != 0)
			return mse_err_set(err, "cannot find the running executable");
		if ((slash = strrchr(self, '/')))
			*slash = '\0';
		if (snprintf(out, size, "%s/%s", self, name) >= (int)size)
			return mse_err_set(err, "path too long");
	}
	if (access(out, X_OK) != 0)
		return mse_err_field(err, out, "%s is not there (build it with 'make', or pass "
					       "--bin-dir)", name);
	return 0;
}

int mse_image_name(const char *in, char *out, size_t size, struct mse_err *err)
{
	size_t o = 0;

	for (size_t i = 0; in[i] && o + 1 < size; i++) {
		unsigned char c = (unsigned char)in[i];

		if (isalnum(c))
			out[o++] = (char)tolower(c);
		else if (o && out[o - 1] != '-')
			out[o++] = '-';
	}
	while (o && out[o - 1] == '-')
		o--;
	out[o] = '\0';
	if (!o)
		return mse_err_field(err, "name", "no letter or digit for an image name in '%s'", in);
	return 0;
}

int mse_image_build(const struct mse_image_opts *o, struct mse_image_result *res,
		    struct mse_err *err)
{
	char toml[PATH_MAX + 16], package[PATH_MAX], boot[PATH_MAX], coord[PATH_MAX],
		work[] = "/tmp/mse-image.XXXXXX", stage[PATH_MAX + 16], pkgdir[PATH_MAX + 16],
		p[PATH_MAX + 64], app_base[PATH_MAX], coord_base[PATH_MAX], name[128], ref[160],
		desc[MAX_PKGS * 130 + 64];
	struct mse_project *proj = NULL;
	struct mse_package_info info;
	struct pkgset app = {0}, cs = {0};
	int rc = -1, have_work = 0;

	memset(res, 0, sizeof(*res));
	if (o->sgx)
		return mse_err_field(err, "--sgx",
				     "the SGX image also needs Gramine (gramine-sgx, its signed "
				     "manifest and the SGX PSW/DCAP libraries), which is not packaged "
				     "in Debian and cannot be built here; build the simulation image, "
				     "or add Gramine to the image on a machine that has it "
				     "(docs/kubernetes.md)");
	if (o->no_load && !o->out_dir)
		return mse_err_field(err, "--no-load", "needs --output DIR");
	snprintf(toml, sizeof(toml), "%s/mse.toml", o->project);
	if (mse_project_load_first(toml, NULL, &proj, err) != 0)
		return -1;
	if (mse_image_name(proj->name, name, sizeof(name), err) != 0)
		goto out;
	if (o->package)
		snprintf(package, sizeof(package), "%s", o->package);
	else if (find_package(o->project, package, sizeof(package), err) != 0)
		goto out;
	if (mse_package_inspect(package, &info, err) != 0 ||
	    bin_path(o, "mse-bootstrap", boot, sizeof(boot), err) != 0 ||
	    bin_path(o, "mse-coordinator", coord, sizeof(coord), err) != 0)
		goto out;
	say(o, "package   %s", package);
	/* What the app image needs: python3, the bootstrap's libraries, the requirements. */
	if (pkg_add(&app, "python3", 7, err) != 0 || pkg_add(&app, "ca-certificates", 15, err) != 0 ||
	    binary_packages(boot, &app, err) != 0 ||
	    requirement_packages(proj->code_dir, &app, err) != 0 ||
	    pkg_add(&cs, "ca-certificates", 15, err) != 0 || binary_packages(coord, &cs, err) != 0)
		goto out;
	/*
	 * One base for both images (their libraries are the same but for Python
	 * and the requirements): one mmdebstrap run, one cached tarball, one
	 * layer podman stores once.
	 */
	for (size_t i = 0; i < cs.n; i++)
		if (pkg_add(&app, cs.name[i], strlen(cs.name[i]), err) != 0)
			goto out;
	if (base_tar(o, &app, app_base, sizeof(app_base), err) != 0)
		goto out;
	snprintf(coord_base, sizeof(coord_base), "%s", app_base);
	if (!mkdtemp(work)) {
		mse_err_set(err, "mkdtemp: %s", strerror(errno));
		goto out;
	}
	have_work = 1;

	/* The app: mse-bootstrap, the encrypted code as the replica's --app-dir, package.json. */
	snprintf(stage, sizeof(stage), "%s/app-root", work);
	snprintf(pkgdir, sizeof(pkgdir), "%s/package", work);
	snprintf(p, sizeof(p), "%s/usr/local/bin", stage);
	if (mse_file_mkdirs(p, 0755, err) != 0)
		goto out;
	snprintf(p, sizeof(p), "%s/usr/local/bin/mse-bootstrap", stage);
	if (copy_file(boot, p, 0755, err) != 0 ||
	    mse_package_extract(package, pkgdir, &info, err) != 0)
		goto out;
	snprintf(p, sizeof(p), "%s/opt/mse", stage);
	if (mse_file_mkdirs(p, 0755, err) != 0)
		goto out;
	{
		char src[PATH_MAX + 32], dst[PATH_MAX + 96];

		snprintf(src, sizeof(src), "%s/app.tar", pkgdir);
		snprintf(dst, sizeof(dst), "%s/opt/mse/app", stage);
		if (mse_tar_extract(src, dst, NULL, 0644, err) != 0)
			goto out;
		snprintf(src, sizeof(src), "%s/package.json", pkgdir);
		snprintf(dst, sizeof(dst), "%s/opt/mse/package.json", stage);
		if (copy_file(src, dst, 0644, err) != 0)
			goto out;
	}
	{
		char sha[65], sdesc[256];
		size_t off = (size_t)snprintf(desc, sizeof(desc), "mmdebstrap --variant=minbase");
		struct image_spec is = {.base = app_base, .staging = stage, .base_desc = desc};

		for (size_t i = 0; i < app.n; i++)
			off += (size_t)snprintf(desc + off, sizeof(desc) - off, " %s", app.name[i]);
		if (mse_hex_encode(sha, sizeof(sha), info.app_sha256, 32) != 0)
			goto out;
		snprintf(ref, sizeof(ref), "localhost/mse-%s", name);
		snprintf(sdesc, sizeof(sdesc), "%s", info.python_application);
		is.name = ref;
		is.entrypoint = json_pack("[s]", "/usr/local/bin/mse-bootstrap");
		is.labels = json_pack("{s:s, s:s, s:s, s:s, s:s}", "org.opencontainers.image.title",
				      proj->name, "io.mse-c.app-sha256", sha,
				      "io.mse-c.python-application", sdesc,
				      "io.mse-c.healthcheck-endpoint", info.healthcheck_endpoint,
				      "io.mse-c.app-dir", "/opt/mse/app");
		if (build_one(o, work, &is, &res->app, err) != 0)
			goto out;
	}

	/* The coordinator: mse-coordinator alone. */
	snprintf(stage, sizeof(stage), "%s/coordinator-root", work);
	snprintf(p, sizeof(p), "%s/usr/local/bin", stage);
	if (mse_file_mkdirs(p, 0755, err) != 0)
		goto out;
	snprintf(p, sizeof(p), "%s/usr/local/bin/mse-coordinator", stage);
	if (copy_file(coord, p, 0755, err) != 0)
		goto out;
	{
		size_t off = (size_t)snprintf(desc, sizeof(desc), "mmdebstrap --variant=minbase");
		struct image_spec is = {.name = "localhost/mse-coordinator", .base = coord_base,
					.staging = stage, .base_desc = desc};

		for (size_t i = 0; i < app.n; i++)
			off += (size_t)snprintf(desc + off, sizeof(desc) - off, " %s", app.name[i]);
		is.entrypoint = json_pack("[s]", "/usr/local/bin/mse-coordinator");
		is.labels = json_pack("{s:s}", "org.opencontainers.image.title", "mse-coordinator");
		if (build_one(o, work, &is, &res->coordinator, err) != 0)
			goto out;
	}
	rc = 0;
out:
	if (have_work) {
		struct mse_err e2;

		mse_err_clear(&e2);
		if (mse_file_remove_tree(work, &e2) != 0)
			{ /* a temporary directory left behind */ }
	}
	mse_project_free(proj);
	return rc;
}
