/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse.toml loader. The schema and its checks follow Cosmian mse-cli's
 * AppConf/CloudConf/SSLConf (pydantic models: Str255 = 1..255 characters
 * after stripping whitespace, Str16 = 1..16), plus what MSE left to chance:
 * unknown keys, the module file of python_application, unsafe names.
 * Every check runs even after an earlier one failed, so the user sees all
 * problems at once.
 */
#include "config/project.h"

#include "config/appspec.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/file.h"
#include "config/toml.h"

#define MAX_TOML_SIZE (1u << 20)
#define MAX_SECRETS_SIZE (16u << 20)

struct loader {
	const char *file; /* as the user named it, for messages */
	const struct mse_toml_value *root;
	struct mse_errlist *errs;
	size_t nerr;
	time_t now;
};

static const struct mse_toml_pos NOPOS = {0, 0};

__attribute__((format(printf, 4, 5))) static void lerr(struct loader *L, struct mse_toml_pos pos,
						       const char *field, const char *fmt, ...)
{
	struct mse_err e;
	va_list ap;

	mse_err_clear(&e);
	snprintf(e.file, sizeof(e.file), "%s", L->file);
	e.line = pos.line;
	e.col = pos.col;
	snprintf(e.field, sizeof(e.field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	mse_errlist_add(L->errs, &e);
	L->nerr++;
}

/* A mismatch: expected and actual are kept as members (mse_err_expect). */
static void lexp(struct loader *L, struct mse_toml_pos pos, const char *field, const char *expected,
		 const char *actual)
{
	struct mse_err e;

	mse_err_clear(&e);
	snprintf(e.file, sizeof(e.file), "%s", L->file);
	e.line = pos.line;
	e.col = pos.col;
	mse_err_expect(&e, field, expected, actual);
	mse_errlist_add(L->errs, &e);
	L->nerr++;
}

static char *xstrdup(struct loader *L, const char *s)
{
	char *d = strdup(s);

	if (!d)
		lerr(L, NOPOS, "", "out of memory");
	return d;
}

/* ------------------------------------------------------------------ */
/* paths                                                                 */

/*
 * base + "/" + rel (or rel alone if absolute), with "." and ".." segments
 * and repeated slashes removed lexically, like Python's Path.resolve() on a
 * path without symlinks. Returns a new string or NULL (out of memory).
 */
static char *path_join(const char *base, const char *rel)
{
	size_t bl = base ? strlen(base) : 0, rl = strlen(rel), n = 0;
	char *in, *out, *seg, *save = NULL;

	in = malloc(bl + rl + 2);
	out = malloc(bl + rl + 3);
	if (!in || !out) {
		free(in);
		free(out);
		return NULL;
	}
	if (rel[0] == '/' || !base)
		snprintf(in, bl + rl + 2, "%s", rel);
	else
		snprintf(in, bl + rl + 2, "%s/%s", base, rel);
	for (seg = strtok_r(in, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
		size_t sl = strlen(seg);

		if (strcmp(seg, ".") == 0)
			continue;
		if (strcmp(seg, "..") == 0) {
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;
			continue;
		}
		out[n++] = '/';
		memcpy(out + n, seg, sl);
		n += sl;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = 0;
	free(in);
	return out;
}

static int is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * s as a quoted, printable string for messages: control characters escaped
 * (a value must not be able to drive the user's terminal), cut after about
 * 60 bytes on a UTF-8 boundary. Returns out.
 */
static const char *quote(const char *s, size_t len, char *out, size_t size)
{
	size_t n = 0, i = 0;

	if (size < 16)
		return "\"...\"";
	out[n++] = '"';
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;

		if (i >= 60 || n + 8 >= size) {
			memcpy(out + n, "...", 3);
			n += 3;
			break;
		}
		if (c < 0x20 || c == 0x7f) {
			n += (size_t)snprintf(out + n, size - n, c == '\t' ? "\\t" : c == '\n' ? "\\n" : "\\x%02x", c);
			i++;
			continue;
		}
		if (c == '"' || c == '\\')
			out[n++] = '\\';
		if (i + k > len)
			k = len - i;
		memcpy(out + n, s + i, k);
		n += k;
		i += k;
	}
	out[n++] = '"';
	out[n] = 0;
	return out;
}

/* ------------------------------------------------------------------ */
/* "did you mean"                                                        */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[64], prev, tmp;

	if (la >= 64 || lb >= 64)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t best = prev + (a[i - 1] != b[j - 1]);

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

static const char *closest(const char *key, const char *const *known)
{
	const char *best = NULL;
	size_t bd = SIZE_MAX, d, len = strlen(key);

	for (; *known; known++) {
		size_t kl = strlen(*known);

		/* a truncated or extended key ("domain" for "domain_name") */
		if (len >= 3 && kl >= 3 && strncmp(key, *known, len < kl ? len : kl) == 0)
			return *known;
		d = edit_distance(key, *known);
		if (d < bd) {
			bd = d;
			best = *known;
		}
	}
	/* close enough to be a typo: a third of the length, at least 2 edits */
	return bd <= (len / 3 > 2 ? len / 3 : 2) ? best : NULL;
}

/* Every key of t must be in known (NULL-terminated). prefix: "" or "cloud." */
static void check_keys(struct loader *L, const struct mse_toml_value *t, const char *const *known,
		       const char *prefix)
{
	size_t i;

	for (i = 0; i < mse_toml_len(t); i++) {
		const struct mse_toml_kv *kv = mse_toml_table_at(t, i);
		const char *const *k;
		const char *hint;
		char field[160];
		int found = 0;

		for (k = known; *k; k++)
			if (strlen(*k) == kv->key_len && memcmp(*k, kv->key, kv->key_len) == 0)
				found = 1;
		if (found)
			continue;
		{
			char q[100];
			int plain = strlen(kv->key) == kv->key_len;

			for (size_t k = 0; plain && k < kv->key_len; k++)
				if ((unsigned char)kv->key[k] < 0x20 || kv->key[k] == 0x7f || kv->key[k] == '"')
					plain = 0;
			snprintf(field, sizeof(field), "%s%s", prefix,
				 plain ? kv->key : quote(kv->key, kv->key_len, q, sizeof(q)));
		}
		hint = closest(kv->key, known);
		if (hint)
			lerr(L, kv->pos, field, "unknown key (did you mean \"%s\"?)", hint);
		else
			lerr(L, kv->pos, field, "unknown key (expected one of the keys of the mse.toml schema, see `mse check --help`)");
	}
}

/* ------------------------------------------------------------------ */
/* typed fields                                                          */

static void describe(const struct mse_toml_value *v, char *out, size_t size)
{
	const char *s;
	size_t len;

	if (mse_toml_get_string(v, &s, &len) == 0)
		quote(s, len, out, size);
	else if (v->type == MSE_TOML_INTEGER)
		snprintf(out, size, "integer %lld", (long long)v->u.integer);
	else if (v->type == MSE_TOML_BOOL)
		snprintf(out, size, "boolean %s", v->u.boolean ? "true" : "false");
	else
		snprintf(out, size, "%s", mse_toml_type_name(v->type));
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/*
 * A string field. Returns a new string (whitespace-stripped if strip, as
 * pydantic's constr(strip_whitespace=True)) or NULL after recording an error
 * (or when absent and optional). maxlen 0 = unlimited; minlen in characters.
 */
static char *get_str(struct loader *L, const struct mse_toml_value *t, const char *key,
		     const char *field, int required, size_t minlen, size_t maxlen, int strip,
		     struct mse_toml_pos *pos_out)
{
	const struct mse_toml_value *v = mse_toml_table_get(t, key);
	const char *s, *e;
	char got[128], *r;
	size_t len, n;

	if (pos_out)
		*pos_out = v ? v->pos : t->pos;
	if (!v) {
		if (required)
			lerr(L, t == L->root ? NOPOS : t->pos, field, "required key missing");
		return NULL;
	}
	if (mse_toml_get_string(v, &s, &len) != 0) {
		describe(v, got, sizeof(got));
		lerr(L, v->pos, field, "expected a string, got %s", got);
		return NULL;
	}
	if (strlen(s) != len) {
		lerr(L, v->pos, field, "expected a string without NUL characters");
		return NULL;
	}
	e = s + len;
	if (strip) {
		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r' ||
				 e[-1] == '\f' || e[-1] == '\v'))
			e--;
	}
	r = strndup(s, (size_t)(e - s));
	if (!r) {
		lerr(L, v->pos, field, "out of memory");
		return NULL;
	}
	n = utf8_chars(r);
	if (n < minlen || (maxlen && n > maxlen)) {
		describe(v, got, sizeof(got));
		if (maxlen)
			lerr(L, v->pos, field, "expected %zu to %zu characters, got %zu (%s)", minlen, maxlen, n, got);
		else
			lerr(L, v->pos, field, "expected at least %zu character(s), got %s", minlen, got);
		free(r);
		return NULL;
	}
	return r;
}

/* A path field: resolved against dir unless absolute. */
static char *get_path(struct loader *L, const struct mse_toml_value *t, const char *key,
		      const char *field, int required, const char *dir, struct mse_toml_pos *pos)
{
	char *s = get_str(L, t, key, field, required, 1, 0, 0, pos), *r;

	if (!s)
		return NULL;
	r = path_join(dir, s);
	free(s);
	if (!r)
		lerr(L, NOPOS, field, "out of memory");
	return r;
}

/* ------------------------------------------------------------------ */
/* individual checks                                                     */

static void check_name(struct loader *L, const char *name, struct mse_toml_pos pos)
{
	char q[128];
	const char *c;

	/* the name becomes part of file names (package_<name>_<ns>.tar, workspaces) */
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		lexp(L, pos, "name", "a name usable in a file name", quote(name, strlen(name), q, sizeof(q)));
		return;
	}
	for (c = name; *c; c++)
		if (*c == '/' || *c == '\\' || (unsigned char)*c < 0x20 || *c == 0x7f) {
			lexp(L, pos, "name", "no '/', '\\' or control characters",
			     quote(name, strlen(name), q, sizeof(q)));
			return;
		}
}

static void check_python_app(struct loader *L, struct mse_project *p, struct mse_toml_pos pos,
			     const char *code_from)
{
	const char *s = p->python_application;
	char *rel = NULL, *f1 = NULL, *f2 = NULL;
	struct mse_appspec as;
	struct mse_err aerr;
	size_t i, ml;

	mse_err_clear(&aerr);
	if (mse_appspec_parse(s, &as, &aerr) != 0) {
		lexp(L, pos, "python_application", aerr.expected, aerr.actual);
		return;
	}
	ml = as.module_len;
	p->python_module = strndup(s, ml);
	p->python_variable = strndup(s + as.attr_off, as.attr_len);
	if (as.call && !(p->python_call = strdup(s + as.call_off))) {
		lerr(L, pos, "python_application", "out of memory");
		return;
	}
	rel = malloc(ml + sizeof("/__init__.py"));
	if (!p->python_module || !p->python_variable || !rel) {
		lerr(L, pos, "python_application", "out of memory");
		goto out;
	}
	if (!p->code_dir)
		goto out;
	/* module a.b lives in CODE/a/b.py or CODE/a/b/__init__.py */
	for (i = 0; i < ml; i++)
		rel[i] = s[i] == '.' ? '/' : s[i];
	memcpy(rel + ml, ".py", 4);
	f1 = path_join(p->code_dir, rel);
	memcpy(rel + ml, "/__init__.py", sizeof("/__init__.py"));
	f2 = path_join(p->code_dir, rel);
	if (!f1 || !f2) {
		lerr(L, pos, "python_application", "out of memory");
		goto out;
	}
	if (is_file(f1))
		p->module_file = f1, f1 = NULL;
	else if (is_file(f2))
		p->module_file = f2, f2 = NULL;
	else if (!is_dir(p->code_dir))
		lerr(L, pos, "python_application",
		     "module \"%s\" not found: the code directory %s (%s) does not exist", p->python_module,
		     p->code_dir, code_from);
	else
		lerr(L, pos, "python_application",
		     "module \"%s\" not found: expected %s or %s (code directory from %s)", p->python_module,
		     f1, f2, code_from);
out:
	free(rel);
	free(f1);
	free(f2);
}

static void get_tests_requirements(struct loader *L, struct mse_project *p,
				   const struct mse_toml_value *root)
{
	const struct mse_toml_value *v = mse_toml_table_get(root, "tests_requirements");
	char got[128];
	size_t i, n;

	if (!v) {
		lerr(L, NOPOS, "tests_requirements", "required key missing");
		return;
	}
	if (v->type != MSE_TOML_ARRAY) {
		describe(v, got, sizeof(got));
		lerr(L, v->pos, "tests_requirements", "expected an array of strings, got %s", got);
		return;
	}
	n = mse_toml_len(v);
	p->tests_requirements = calloc(n + 1, sizeof(char *));
	if (!p->tests_requirements) {
		lerr(L, v->pos, "tests_requirements", "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		const struct mse_toml_value *it = mse_toml_array_at(v, i);
		const char *s;
		size_t len;

		if (mse_toml_get_string(it, &s, &len) != 0 || strlen(s) != len) {
			describe(it, got, sizeof(got));
			lerr(L, it->pos, "tests_requirements", "item %zu: expected a string, got %s", i + 1, got);
			continue;
		}
		p->tests_requirements[p->n_tests_requirements] = strdup(s);
		if (!p->tests_requirements[p->n_tests_requirements]) {
			lerr(L, it->pos, "tests_requirements", "out of memory");
			return;
		}
		p->n_tests_requirements++;
	}
}

/* struct tm in UTC -> time_t, or in local time when local. */
static time_t dt_to_time(const struct mse_toml_datetime *dt, enum mse_toml_type kind)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = dt->year - 1900;
	tm.tm_mon = dt->month - 1;
	tm.tm_mday = dt->day;
	tm.tm_hour = dt->hour;
	tm.tm_min = dt->minute;
	tm.tm_sec = dt->second;
	if (kind == MSE_TOML_DATETIME)
		return timegm(&tm) - (time_t)dt->offset_minutes * 60;
	/* MSE: "If no timezone, use the local one" */
	tm.tm_isdst = -1;
	return mktime(&tm);
}

static void fmt_time(time_t t, char *out, size_t size)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, size, "@%lld", (long long)t);
}

static int get_expiration(struct loader *L, const struct mse_toml_value *cloud, time_t *out,
			  struct mse_toml_pos *pos)
{
	const struct mse_toml_value *v = mse_toml_table_get(cloud, "expiration_date");
	struct mse_toml_datetime dt;
	enum mse_toml_type kind;
	const char *s;
	size_t len;
	char got[128];

	if (!v)
		return 0;
	*pos = v->pos;
	if (mse_toml_get_string(v, &s, &len) == 0) {
		if (mse_toml_parse_datetime(s, len, &dt, &kind) != 0 ||
		    (kind != MSE_TOML_DATETIME && kind != MSE_TOML_DATETIME_LOCAL)) {
			describe(v, got, sizeof(got));
			lerr(L, v->pos, "cloud.expiration_date",
			     "expected a date-time like \"2024-03-14T00:00:00Z\" or \"2024-03-14 00:00:00+00:00\", got %s",
			     got);
			return -1;
		}
	} else if (mse_toml_get_datetime(v, &dt, &kind) != 0 ||
		   (kind != MSE_TOML_DATETIME && kind != MSE_TOML_DATETIME_LOCAL)) {
		describe(v, got, sizeof(got));
		lerr(L, v->pos, "cloud.expiration_date",
		     "expected a date-time with a time of day (2024-03-14T00:00:00Z), got %s", got);
		return -1;
	}
	*out = dt_to_time(&dt, kind);
	return 1;
}

/* Reads the leaf certificate (first PEM block) of a chain. */
static X509 *read_cert(const char *path)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *x;

	if (!b)
		return NULL;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	return x;
}

static void san_list(X509 *x, char *out, size_t size)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t n = 0;
	int i;

	out[0] = 0;
	for (i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);

		if (g->type != GEN_DNS)
			continue;
		n += (size_t)snprintf(out + n, n < size ? size - n : 0, "%s%.*s", n ? ", " : "",
				      ASN1_STRING_length(g->d.dNSName),
				      (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		if (n >= size)
			break;
	}
	if (!out[0])
		snprintf(out, size, "none");
	GENERAL_NAMES_free(names);
}

static void load_ssl(struct loader *L, struct mse_project *p, const struct mse_toml_value *t,
		     int has_exp, struct mse_toml_pos exp_pos)
{
	struct mse_project_ssl *ssl = calloc(1, sizeof(*ssl));
	struct mse_toml_pos dpos, cpos;
	X509 *x = NULL;
	struct tm tm;
	char a[64], b[64], sans[512], q[128];

	if (!ssl) {
		lerr(L, NOPOS, "cloud.ssl", "out of memory");
		return;
	}
	p->cloud->ssl = ssl;
	check_keys(L, t, (const char *const[]){"domain_name", "private_key", "certificate", NULL},
		   "cloud.ssl.");
	ssl->domain_name = get_str(L, t, "domain_name", "cloud.ssl.domain_name", 1, 1, 255, 1, &dpos);
	/* the private key is only located here: it is read when it is used */
	ssl->private_key = get_path(L, t, "private_key", "cloud.ssl.private_key", 1, p->dir, NULL);
	ssl->certificate = get_path(L, t, "certificate", "cloud.ssl.certificate", 1, p->dir, &cpos);
	if (!ssl->certificate)
		return;
	if (!is_file(ssl->certificate)) {
		lerr(L, cpos, "cloud.ssl.certificate", "expected a PEM certificate file, got %s: %s",
		     ssl->certificate, is_dir(ssl->certificate) ? "a directory" : "no such file");
		return;
	}
	x = read_cert(ssl->certificate);
	if (!x) {
		lerr(L, cpos, "cloud.ssl.certificate", "expected a PEM certificate, got %s: not PEM or not a certificate",
		     ssl->certificate);
		return;
	}
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) {
		lerr(L, cpos, "cloud.ssl.certificate", "cannot read the certificate's notAfter");
		goto out;
	}
	ssl->cert_not_after = timegm(&tm);
	if (ssl->domain_name &&
	    X509_check_host(x, ssl->domain_name, 0,
			    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
			    NULL) != 1) {
		san_list(x, sans, sizeof(sans));
		lerr(L, dpos, "cloud.ssl.domain_name",
		     "expected a name covered by the certificate's subject alternative names (%s), got %s",
		     sans, quote(ssl->domain_name, strlen(ssl->domain_name), q, sizeof(q)));
	}
	if (!has_exp) {
		/* MSE: without expiration_date the app expires with its certificate */
		p->cloud->has_expiration = 1;
		p->cloud->expiration = ssl->cert_not_after;
	} else if (p->cloud->expiration > ssl->cert_not_after) {
		fmt_time(p->cloud->expiration, a, sizeof(a));
		fmt_time(ssl->cert_not_after, b, sizeof(b));
		lerr(L, exp_pos, "cloud.expiration_date",
		     "expected no later than the certificate's notAfter %s (%s), got %s", b,
		     ssl->certificate, a);
	}
out:
	X509_free(x);
}

static void load_cloud(struct loader *L, struct mse_project *p, const struct mse_toml_value *t)
{
	static const char *const known[] = {"code", "tests", "docker", "project", "hardware",
					    "expiration_date", "secrets", "dev_mode", "ssl", NULL};
	struct mse_project_cloud *c = calloc(1, sizeof(*c));
	const struct mse_toml_value *v;
	struct mse_toml_pos exp_pos = NOPOS, spos;
	char got[128], a[64], b[64];
	int has_exp;

	if (!c) {
		lerr(L, NOPOS, "cloud", "out of memory");
		return;
	}
	p->cloud = c;
	check_keys(L, t, known, "cloud.");
	c->code = get_path(L, t, "code", "cloud.code", 1, p->dir, NULL);
	c->tests = get_path(L, t, "tests", "cloud.tests", 1, p->dir, NULL);
	c->docker = get_str(L, t, "docker", "cloud.docker", 1, 1, 0, 0, NULL);
	c->project = get_str(L, t, "project", "cloud.project", 1, 1, 255, 1, NULL);
	c->hardware = get_str(L, t, "hardware", "cloud.hardware", 1, 1, 16, 1, NULL);
	c->secrets = get_path(L, t, "secrets", "cloud.secrets", 0, p->dir, &spos);
	if (c->secrets) {
		/*
		 * Only checked here (the packaging step reads it again to send it):
		 * the raw bytes are wiped; jansson's parse tree is not, but it lives
		 * only in this process, which already holds the plaintext file.
		 */
		struct mse_err fe;
		uint8_t *buf = NULL;
		size_t blen = 0;
		json_error_t je;
		json_t *j;

		mse_err_clear(&fe);
		if (mse_file_read(c->secrets, MAX_SECRETS_SIZE, &buf, &blen, &fe) != 0) {
			lerr(L, spos, "cloud.secrets", "expected a readable JSON file, got %s: %s", c->secrets,
			     fe.msg);
		} else {
			j = json_loadb((const char *)buf, blen, JSON_DECODE_ANY, &je);
			if (!j)
				lerr(L, spos, "cloud.secrets", "expected a JSON file, got %s:%d:%d: %s", c->secrets,
				     je.line, je.column, je.text);
			json_decref(j);
		}
		mse_file_free_secret(buf, blen);
	}
	v = mse_toml_table_get(t, "dev_mode");
	if (v && mse_toml_get_bool(v, &c->dev_mode) != 0) {
		describe(v, got, sizeof(got));
		lerr(L, v->pos, "cloud.dev_mode", "expected a boolean, got %s", got);
	}
	has_exp = get_expiration(L, t, &c->expiration, &exp_pos);
	if (has_exp > 0)
		c->has_expiration = 1;
	v = mse_toml_table_get(t, "ssl");
	if (v && v->type != MSE_TOML_TABLE) {
		describe(v, got, sizeof(got));
		lerr(L, v->pos, "cloud.ssl", "expected a table, got %s", got);
	} else if (v) {
		load_ssl(L, p, v, has_exp != 0, exp_pos);
	}
	if (c->has_expiration && c->expiration <= L->now) {
		fmt_time(c->expiration, a, sizeof(a));
		fmt_time(L->now, b, sizeof(b));
		lerr(L, has_exp > 0 ? exp_pos : NOPOS, "cloud.expiration_date",
		     "expected a date after now (%s), got %s%s", b, a,
		     has_exp > 0 ? "" : " (the certificate's notAfter)");
	}
}

/* ------------------------------------------------------------------ */

/*
 * Puts the errors appended since index `from` in document order (file-level
 * errors, line 0, first). Insertion sort: stable, and the lists are short.
 */
static void sort_errors(struct mse_errlist *l, size_t from)
{
	size_t i, j;

	for (i = from + 1; i < l->len; i++) {
		struct mse_err e = l->items[i];

		for (j = i; j > from && (l->items[j - 1].line > e.line ||
					 (l->items[j - 1].line == e.line && l->items[j - 1].col > e.col));
		     j--)
			l->items[j] = l->items[j - 1];
		l->items[j] = e;
	}
}

void mse_project_free(struct mse_project *p)
{
	size_t i;

	if (!p)
		return;
	if (p->cloud) {
		if (p->cloud->ssl) {
			free(p->cloud->ssl->domain_name);
			free(p->cloud->ssl->private_key);
			free(p->cloud->ssl->certificate);
			free(p->cloud->ssl);
		}
		free(p->cloud->code);
		free(p->cloud->tests);
		free(p->cloud->docker);
		free(p->cloud->project);
		free(p->cloud->hardware);
		free(p->cloud->secrets);
		free(p->cloud);
	}
	for (i = 0; i < p->n_tests_requirements; i++)
		free(p->tests_requirements[i]);
	free(p->tests_requirements);
	free(p->path);
	free(p->dir);
	free(p->name);
	free(p->python_application);
	free(p->app_interface);
	free(p->python_module);
	free(p->python_variable);
	free(p->python_call);
	free(p->module_file);
	free(p->healthcheck_endpoint);
	free(p->tests_cmd);
	free(p->code_dir);
	free(p->tests_dir);
	free(p);
}

int mse_project_load(const char *path, const struct mse_project_opts *opts, struct mse_project **out,
		     struct mse_errlist *errs)
{
	static const char *const known[] = {"name", "python_application", "app_interface",
					    "healthcheck_endpoint", "tests_cmd", "tests_requirements",
					    "cloud", NULL};
	static const char *const ifaces[] = {"auto", "wsgi", "asgi", "asgi3", "asgi2"};
	struct mse_toml_pos ipos;
	struct loader L = {0};
	struct mse_project *p = NULL;
	struct mse_toml *doc = NULL;
	const struct mse_toml_value *root, *v;
	struct mse_toml_pos napos, papos, hpos;
	struct mse_err e;
	uint8_t *text = NULL;
	size_t len = 0;
	char cwd[PATH_MAX], *abs = NULL, *slash;
	const char *code_from = "the default " MSE_PROJECT_DEFAULT_CODE "/";
	char got[128];
	size_t first;

	*out = NULL;
	first = errs ? errs->len : 0;
	L.file = path;
	L.errs = errs;
	L.now = opts && opts->now ? opts->now : time(NULL);
	mse_err_clear(&e);
	if (mse_file_read(path, MAX_TOML_SIZE, &text, &len, &e) != 0) {
		mse_err_file(&e, path);
		mse_errlist_add(errs, &e);
		return -1;
	}
	if (mse_toml_parse((const char *)text, len, path, &doc, &e) != 0) {
		mse_errlist_add(errs, &e);
		goto fail;
	}
	p = calloc(1, sizeof(*p));
	if (!p || !getcwd(cwd, sizeof(cwd))) {
		lerr(&L, NOPOS, "", "%s", p ? "cannot get the current directory" : "out of memory");
		goto fail;
	}
	abs = path_join(cwd, path);
	if (!abs || !(slash = strrchr(abs, '/'))) {
		lerr(&L, NOPOS, "", "out of memory");
		goto fail;
	}
	p->path = abs;
	p->dir = slash == abs ? strdup("/") : strndup(abs, (size_t)(slash - abs));
	if (!p->dir) {
		lerr(&L, NOPOS, "", "out of memory");
		goto fail;
	}
	root = mse_toml_root(doc);
	L.root = root;
	check_keys(&L, root, known, "");
	p->name = get_str(&L, root, "name", "name", 1, 1, 255, 1, &napos);
	if (p->name)
		check_name(&L, p->name, napos);
	p->python_application = get_str(&L, root, "python_application", "python_application", 1, 1, 255, 1, &papos);
	p->app_interface = get_str(&L, root, "app_interface", "app_interface", 0, 1, 16, 1, &ipos);
	if (p->app_interface) {
		size_t k = 0;

		while (k < sizeof(ifaces) / sizeof(ifaces[0]) && strcmp(ifaces[k], p->app_interface))
			k++;
		if (k == sizeof(ifaces) / sizeof(ifaces[0]))
			lerr(&L, ipos, "app_interface",
			     "expected one of \"auto\", \"wsgi\", \"asgi\", \"asgi3\", \"asgi2\", got %s",
			     quote(p->app_interface, strlen(p->app_interface), got, sizeof(got)));
	}
	p->healthcheck_endpoint = get_str(&L, root, "healthcheck_endpoint", "healthcheck_endpoint", 1, 1, 255, 1, &hpos);
	if (p->healthcheck_endpoint && p->healthcheck_endpoint[0] != '/')
		lexp(&L, hpos, "healthcheck_endpoint", "a path starting with \"/\"",
		     quote(p->healthcheck_endpoint, strlen(p->healthcheck_endpoint), got, sizeof(got)));
	p->tests_cmd = get_str(&L, root, "tests_cmd", "tests_cmd", 1, 0, 0, 0, NULL);
	get_tests_requirements(&L, p, root);
	v = mse_toml_table_get(root, "cloud");
	if (v && v->type != MSE_TOML_TABLE) {
		describe(v, got, sizeof(got));
		lerr(&L, v->pos, "cloud", "expected a table, got %s", got);
	} else if (v) {
		load_cloud(&L, p, v);
	}
	/* the code directory: --code, else [cloud] code, else DIR/mse_src */
	if (opts && opts->code_dir) {
		p->code_dir = path_join(cwd, opts->code_dir);
		code_from = "--code";
	} else if (p->cloud) {
		/* NULL when [cloud] code is missing or bad: already reported, no module check */
		if (p->cloud->code)
			p->code_dir = xstrdup(&L, p->cloud->code);
		code_from = "[cloud] code";
	} else {
		p->code_dir = path_join(p->dir, MSE_PROJECT_DEFAULT_CODE);
	}
	if (p->cloud && p->cloud->tests)
		p->tests_dir = xstrdup(&L, p->cloud->tests);
	else
		p->tests_dir = path_join(p->dir, MSE_PROJECT_DEFAULT_TESTS);
	if (p->python_application)
		check_python_app(&L, p, papos, code_from);
	if (L.nerr)
		goto fail;
	if (!p->code_dir || !p->tests_dir) {
		lerr(&L, NOPOS, "", "out of memory");
		goto fail;
	}
	mse_toml_free(doc);
	free(text);
	*out = p;
	return 0;
fail:
	if (errs)
		sort_errors(errs, first);
	mse_project_free(p);
	mse_toml_free(doc);
	free(text);
	return -1;
}

/* ------------------------------------------------------------------ */

/* A TOML basic string (§String), so the output reads back as TOML. */
static void put_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void line(FILE *f, const char *key, const char *val)
{
	fprintf(f, "%s = ", key);
	put_str(f, val);
	fputc('\n', f);
}

void mse_project_print(const struct mse_project *p, FILE *f)
{
	char t[64];
	size_t i;

	line(f, "config", p->path);
	line(f, "name", p->name);
	line(f, "python_application", p->python_application);
	line(f, "python_module", p->python_module);
	line(f, "python_variable", p->python_variable);
	if (p->python_call)
		line(f, "python_call", p->python_call);
	if (p->app_interface)
		line(f, "app_interface", p->app_interface);
	line(f, "module_file", p->module_file);
	line(f, "healthcheck_endpoint", p->healthcheck_endpoint);
	line(f, "tests_cmd", p->tests_cmd);
	fputs("tests_requirements = [", f);
	for (i = 0; i < p->n_tests_requirements; i++) {
		fputs(i ? ", " : "", f);
		put_str(f, p->tests_requirements[i]);
	}
	fputs("]\n", f);
	line(f, "code_dir", p->code_dir);
	line(f, "tests_dir", p->tests_dir);
	if (!p->cloud)
		return;
	fputs("\n[cloud]\n", f);
	line(f, "code", p->cloud->code);
	line(f, "tests", p->cloud->tests);
	line(f, "docker", p->cloud->docker);
	line(f, "project", p->cloud->project);
	line(f, "hardware", p->cloud->hardware);
	if (p->cloud->has_expiration) {
		fmt_time(p->cloud->expiration, t, sizeof(t));
		fprintf(f, "expiration_date = %s\n", t);
	}
	if (p->cloud->secrets)
		line(f, "secrets", p->cloud->secrets);
	fprintf(f, "dev_mode = %s\n", p->cloud->dev_mode ? "true" : "false");
	if (!p->cloud->ssl)
		return;
	fputs("\n[cloud.ssl]\n", f);
	line(f, "domain_name", p->cloud->ssl->domain_name);
	line(f, "private_key", p->cloud->ssl->private_key);
	line(f, "certificate", p->cloud->ssl->certificate);
	fmt_time(p->cloud->ssl->cert_not_after, t, sizeof(t));
	fprintf(f, "certificate_not_after = %s\n", t);
}

int mse_project_load_first(const char *path, const struct mse_project_opts *opts,
			   struct mse_project **out, struct mse_err *err)
{
	struct mse_errlist errs;
	int rc;

	mse_errlist_init(&errs);
	rc = mse_project_load(path, opts, out, &errs);
	if (rc != 0) {
		if (mse_errlist_count(&errs) > 0)
			*err = errs.items[0];
		else
			mse_err_set(err, "%s: cannot load", path);
	}
	mse_errlist_free(&errs);
	return rc;
}
