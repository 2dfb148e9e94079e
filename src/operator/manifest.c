#include "operator/manifest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable text buffer for rendering. */
struct text {
	char *p;
	size_t len, cap;
	int oom;
};

__attribute__((format(printf, 2, 3))) static void emit(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = 1;
			return;
		}
		if (t->p && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = (t->cap ? t->cap : 1024);

		while (cap <= t->len + (size_t)n)
			cap *= 2;
		char *np = realloc(t->p, cap);

		if (!np) {
			t->oom = 1;
			return;
		}
		t->p = np;
		t->cap = cap;
	}
}

/* A TOML basic string (TOML 1.0 §String): quotes, backslashes, controls escaped. */
static void emit_str(struct text *t, const char *s)
{
	emit(t, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			emit(t, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			emit(t, "\\u%04x", c);
		else
			emit(t, "%c", c);
	}
	emit(t, "\"");
}

static int path_ok(const char *what, const char *p, struct mse_err *err)
{
	if (!p || p[0] != '/')
		return mse_err_field(err, what, "expected an absolute path, got \"%s\"", p ? p : "");
	if (strstr(p, "{{") || strstr(p, "{%"))
		return mse_err_field(err, what, "must not contain template markers: \"%s\"", p);
	return 0;
}

int mse_manifest_render(const struct mse_manifest_opts *o, char **out, struct mse_err *err)
{
	static const char *const enc_mounts[][2] = {
		{"/root", "root"}, {"/key", "key"}, {"/mse-app", "mse-app"}};
	struct text t = {0};
	char uri[4200];

	*out = NULL;
	if (path_ok("bootstrap", o->bootstrap_path, err) || path_ok("app_dir", o->app_dir, err) ||
	    path_ok("workspace", o->workspace, err))
		return -1;
	if (o->size_mb < 256 || (o->size_mb & (o->size_mb - 1)) != 0)
		return mse_err_field(err, "size",
				     "expected a power of two of at least 256 (MB), got %u: SGX "
				     "enclave sizes are powers of two",
				     o->size_mb);
	emit(&t, "# Gramine manifest template written by mse-c (mse spawn --sgx).\n"
		 "# Render with gramine-manifest, sign with gramine-sgx-sign.\n\n");
	emit(&t, "libos.entrypoint = ");
	emit_str(&t, o->bootstrap_path);
	emit(&t, "\nloader.entrypoint.uri = \"file:{{ gramine.libos }}\"\n"
		 "loader.log_level = \"%s\"\n"
		 "loader.argv_src_file = \"file:argv\"\n"
		 "loader.env.LD_LIBRARY_PATH = \"/lib:{{ arch_libdir }}:/usr/lib\"\n"
		 "loader.env.HOME = \"/root\"\n"
		 "loader.env.TMP_PATH = \"/tmp\"\n"
		 "loader.env.KEY_PATH = \"/key\"\n"
		 "loader.env.MODULE_PATH = \"/mse-app\"\n"
		 "loader.env.SECRETS_PATH = \"/root/.cache/mse/secrets.json\"\n"
		 "loader.env.SEALED_SECRETS_PATH = \"/root/.cache/mse/sealed_secrets.json\"\n"
		 "loader.env.PYTHONDONTWRITEBYTECODE = \"1\"\n"
		 "loader.env.PYTHONUNBUFFERED = \"1\"\n\n"
		 "sys.disallow_subprocesses = true\n"
		 "sys.enable_extra_runtime_domain_names_conf = true\n"
		 "sys.stack.size = \"2M\"\n\n",
	     o->debug ? "warning" : "error");
	emit(&t, "fs.mounts = [\n"
		 "  { path = \"/lib\", uri = \"file:{{ gramine.runtimedir() }}\" },\n"
		 "  { path = \"{{ arch_libdir }}\", uri = \"file:{{ arch_libdir }}\" },\n"
		 "  { path = \"/usr\", uri = \"file:/usr\" },\n"
		 "  { path = \"/etc\", uri = \"file:/etc\" },\n"
		 "  { path = \"/app\", uri = ");
	snprintf(uri, sizeof(uri), "file:%s", o->app_dir);
	emit_str(&t, uri);
	emit(&t, " },\n  { type = \"tmpfs\", path = \"/tmp\" },\n");
	for (size_t i = 0; i < sizeof(enc_mounts) / sizeof(enc_mounts[0]); i++) {
		emit(&t, "  { type = \"encrypted\", path = \"%s\", uri = ", enc_mounts[i][0]);
		snprintf(uri, sizeof(uri), "file:%s/%s", o->workspace, enc_mounts[i][1]);
		emit_str(&t, uri);
		emit(&t, ", key_name = \"_sgx_mrenclave\" },\n");
	}
	emit(&t, "]\n\n");
	emit(&t, "sgx.enclave_size = \"%uM\"\n"
		 "sgx.max_threads = %u\n"
		 "sgx.remote_attestation = \"dcap\"\n"
		 "sgx.debug = %s\n"
		 "sgx.isvprodid = 1\n"
		 "sgx.isvsvn = 1\n\n",
	     o->size_mb, o->max_threads ? o->max_threads : 64, o->debug ? "true" : "false");
	emit(&t, "sgx.trusted_files = [\n  ");
	snprintf(uri, sizeof(uri), "file:%s", o->bootstrap_path);
	emit_str(&t, uri);
	emit(&t, ",\n  \"file:{{ gramine.libos }}\",\n"
		 "  \"file:{{ gramine.runtimedir() }}/\",\n"
		 "  \"file:{{ arch_libdir }}/\",\n"
		 "  \"file:/usr/lib/python3.11/\",\n"
		 "  \"file:/usr/lib/python3/dist-packages/\",\n"
		 "  \"file:/etc/ssl/certs/\",\n  ");
	snprintf(uri, sizeof(uri), "file:%s/", o->app_dir);
	emit_str(&t, uri);
	emit(&t, ",\n  \"file:argv\",\n]\n\n"
		 "sgx.allowed_files = [\n"
		 "  \"file:/etc/hosts\",\n"
		 "  \"file:/etc/resolv.conf\",\n"
		 "  \"file:/etc/nsswitch.conf\",\n"
		 "]\n");
	if (t.oom) {
		free(t.p);
		return mse_err_set(err, "out of memory");
	}
	*out = t.p;
	return 0;
}

int mse_manifest_argv(const char *const *argv, size_t argc, uint8_t **out, size_t *len,
		      struct mse_err *err)
{
	size_t total = 0, off = 0;
	uint8_t *p;

	*out = NULL;
	*len = 0;
	for (size_t i = 0; i < argc; i++)
		total += strlen(argv[i]) + 1;
	p = malloc(total ? total : 1);
	if (!p)
		return mse_err_set(err, "out of memory");
	for (size_t i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]) + 1;

		memcpy(p + off, argv[i], n);
		off += n;
	}
	*out = p;
	*len = total;
	return 0;
}
