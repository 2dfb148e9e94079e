/* SPDX-License-Identifier: Apache-2.0 */
#include "operator/manifest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/sim.h"

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

/* Text that gramine-manifest's Jinja would interpret is refused, not escaped. */
static int jinja_free(const char *what, const char *v, struct mse_err *err)
{
	if (strstr(v, "{{") || strstr(v, "{%") || strstr(v, "{#"))
		return mse_err_field(err, what, "must not contain template markers ({{, {%%, {#): \"%s\"",
				     v);
	return 0;
}

unsigned mse_manifest_max_threads(const struct mse_manifest_args *a)
{
	unsigned workers = a->threads ? a->threads : MSE_MANIFEST_APP_THREADS;
	/* The metrics listener's thread; a replica's (not in its measured
	 * manifest) runs in the slack of MSE_MANIFEST_EXTRA_THREADS. */
	unsigned metrics = a->metrics ? 1 : 0;

	if (!a->threads_max)
		return workers + MSE_MANIFEST_EXTRA_THREADS + metrics;
	if (a->threads_max > workers)
		workers = a->threads_max;
	return workers + MSE_MANIFEST_IO_THREADS + MSE_MANIFEST_ASGI_THREADS +
	       MSE_MANIFEST_EXTRA_THREADS + metrics;
}

int mse_manifest_render(const struct mse_manifest_opts *o, char **out, struct mse_err *err)
{
	static const char *const enc_mounts[] = {"root", "key", "mse-app"};
	const struct mse_manifest_args *a = &o->args;
	char port[8], size[16], exp[24], threads[16], threads_max[16];
	const char *argv[32];
	struct text t = {0};
	size_t n = 0;

	*out = NULL;
	if (a->coordinator_mrenclave) {
		if (strlen(a->coordinator_mrenclave) != 64 ||
		    strspn(a->coordinator_mrenclave, "0123456789abcdef") != 64)
			return mse_err_expect(err, "coordinator_mrenclave", "64 lowercase hex digits",
					      a->coordinator_mrenclave);
		if (!a->application || !a->san)
			return mse_err_set(err, "manifest: application and san are required");
		if (a->metrics)
			return mse_err_field(err, "metrics", "a replica's metrics address is its own: "
							     "$MSE_REPLICA_METRICS, not the measured argv");
		if (jinja_free("application", a->application, err) || jinja_free("san", a->san, err))
			return -1;
		if (a->sim_root_hex && mse_sim_root_from_hex(a->sim_root_hex, NULL, NULL, err) != 0)
			return -1;
	} else if (!a->application || !a->uuid || !a->host || !a->subject || !a->san) {
		return mse_err_set(err, "manifest: application, uuid, host, subject and san are required");
	} else if ((a->metrics && jinja_free("metrics", a->metrics, err)) ||
		   jinja_free("application", a->application, err) || jinja_free("uuid", a->uuid, err) ||
		   jinja_free("host", a->host, err) || jinja_free("subject", a->subject, err) ||
		   jinja_free("san", a->san, err)) {
		return -1;
	}
	if (o->size_mb < 256 || (o->size_mb & (o->size_mb - 1)) != 0)
		return mse_err_field(err, "size",
				     "expected a power of two of at least 256 (MB), got %u: SGX "
				     "enclave sizes are powers of two",
				     o->size_mb);
	if (o->isvprodid > 65535 || o->isvsvn > 65535)
		return mse_err_field(err, o->isvprodid > 65535 ? "isvprodid" : "isvsvn",
				     "expected 0..65535 (16 bits in SIGSTRUCT), got %u",
				     o->isvprodid > 65535 ? o->isvprodid : o->isvsvn);
	snprintf(port, sizeof(port), "%u", (unsigned)a->port);
	snprintf(size, sizeof(size), "%u", (unsigned)a->size_mb);
	snprintf(exp, sizeof(exp), "%lld", (long long)a->expiration);
	snprintf(threads, sizeof(threads), "%u", a->threads ? a->threads : MSE_MANIFEST_APP_THREADS);
	argv[n++] = MSE_MANIFEST_ENTRY;
	argv[n++] = a->application;
	argv[n++] = "--app-dir";
	argv[n++] = MSE_MANIFEST_APP_MOUNT;
	if (a->coordinator_mrenclave) {
		/* A replica: what all replicas share, nothing per replica. */
		argv[n++] = "--coordinator-mrenclave";
		argv[n++] = a->coordinator_mrenclave;
		argv[n++] = "--san";
		argv[n++] = a->san;
		argv[n++] = "--size";
		argv[n++] = size;
		argv[n++] = "--threads";
		argv[n++] = threads;
		if (a->threads_max) {
			snprintf(threads_max, sizeof(threads_max), "%u", a->threads_max);
			argv[n++] = "--threads-max";
			argv[n++] = threads_max;
		}
		if (a->sim_root_hex) {
			argv[n++] = "--trust-sim-root";
			argv[n++] = a->sim_root_hex;
		}
		goto argv_done;
	}
	argv[n++] = "--id";
	argv[n++] = a->uuid;
	argv[n++] = "--host";
	argv[n++] = a->host;
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--subject";
	argv[n++] = a->subject;
	argv[n++] = "--san";
	argv[n++] = a->san;
	argv[n++] = "--size";
	argv[n++] = size;
	argv[n++] = "--threads";
	argv[n++] = threads;
	if (a->threads_max) {
		snprintf(threads_max, sizeof(threads_max), "%u", a->threads_max);
		argv[n++] = "--threads-max";
		argv[n++] = threads_max;
	}
	if (a->metrics) {
		argv[n++] = "--metrics";
		argv[n++] = a->metrics;
	}
	if (a->no_ssl) {
		argv[n++] = "--no-ssl";
	} else {
		argv[n++] = "--ratls";
		argv[n++] = exp;
	}
argv_done:

	emit(&t, "# Gramine manifest template written by mse-c (mse spawn --sgx), for Gramine 1.8\n"
		 "# or 1.9. Render with gramine-manifest, sign with gramine-sgx-sign, run with\n"
		 "# gramine-sgx, all in this directory: file: URIs are relative to it.\n\n");
	emit(&t, "libos.entrypoint = \"" MSE_MANIFEST_ENTRY "\"\n"
		 "loader.entrypoint.uri = \"file:{{ gramine.libos }}\"\n"
		 "loader.log_level = \"%s\"\n",
	     o->debug ? "warning" : "error");
	/* gramine-sgx ignores its command line: the arguments are here, and measured. */
	emit(&t, "loader.argv = [");
	for (size_t i = 0; i < n; i++) {
		emit(&t, i ? ", " : "");
		emit_str(&t, argv[i]);
	}
	emit(&t, "]\n"
		 "loader.env.LD_LIBRARY_PATH = \"/lib:{{ arch_libdir }}:/usr{{ arch_libdir }}\"\n"
		 "loader.env.HOME = \"/root\"\n"
		 "loader.env.TMP_PATH = \"/tmp\"\n"
		 "loader.env.KEY_PATH = \"/key\"\n"
		 "loader.env.MODULE_PATH = \"/mse-app\"\n"
		 "loader.env.SECRETS_PATH = \"/root/.cache/mse/secrets.json\"\n"
		 "loader.env.SEALED_SECRETS_PATH = \"/root/.cache/mse/sealed_secrets.json\"\n"
		 "loader.env.PYTHONDONTWRITEBYTECODE = \"1\"\n"
		 "loader.env.PYTHONUNBUFFERED = \"1\"\n");
	if (a->coordinator_mrenclave)
		emit(&t, "loader.env.APP_KEY_PATH = \"/key/app.key\"\n"
			 "loader.env.MSE_COORDINATOR = { passthrough = true }\n"
			 "loader.env.MSE_REPLICA_LISTEN = { passthrough = true }\n"
			 "loader.env.MSE_REPLICA_ID = { passthrough = true }\n"
			 "loader.env.MSE_REPLICA_METRICS = { passthrough = true }\n"
			 "loader.env.MSE_PCCS_URL = { passthrough = true }\n"
			 "loader.env.XDG_CACHE_HOME = \"/tmp/cache\"\n");
	emit(&t, "\n"
		 "sys.disallow_subprocesses = true\n"
		 "sys.enable_sigterm_injection = true\n"
		 "sys.enable_extra_runtime_domain_names_conf = true\n"
		 "sys.stack.size = \"2M\"\n\n"
		 "fs.start_dir = \"/mse-app\"\n"
		 "fs.mounts = [\n"
		 "  { path = \"/lib\", uri = \"file:{{ gramine.runtimedir() }}\" },\n"
		 "  { path = \"{{ arch_libdir }}\", uri = \"file:{{ arch_libdir }}\" },\n"
		 "  { path = \"/usr\", uri = \"file:/usr\" },\n"
		 "  { path = \"/etc\", uri = \"file:/etc\" },\n"
		 "  { path = \"" MSE_MANIFEST_ENTRY "\", uri = \"file:" MSE_MANIFEST_BOOTSTRAP "\" },\n"
		 "  { path = \"" MSE_MANIFEST_APP_MOUNT "\", uri = \"file:" MSE_MANIFEST_APP_DIR "\" },\n"
		 "  { type = \"tmpfs\", path = \"/tmp\" },\n");
	for (size_t i = 0; i < sizeof(enc_mounts) / sizeof(enc_mounts[0]); i++)
		emit(&t,
		     "  { type = \"encrypted\", path = \"/%s\", uri = \"file:" MSE_MANIFEST_WORKSPACE
		     "/%s\", key_name = \"_sgx_mrenclave\" },\n",
		     enc_mounts[i], enc_mounts[i]);
	emit(&t, "]\n\n");
	emit(&t, "sgx.enclave_size = \"%uM\"\n"
		 "sgx.max_threads = %u\n"
		 "sgx.remote_attestation = \"dcap\"\n"
		 "sgx.debug = %s\n"
		 "sgx.isvprodid = %u\n"
		 "sgx.isvsvn = %u\n\n",
	     o->size_mb, mse_manifest_max_threads(a), o->debug ? "true" : "false", o->isvprodid,
	     o->isvsvn);
	emit(&t, "sgx.trusted_files = [\n"
		 "  \"file:" MSE_MANIFEST_BOOTSTRAP "\",\n"
		 "  \"file:{{ gramine.libos }}\",\n"
		 "  \"file:{{ gramine.runtimedir() }}/\",\n"
		 "  \"file:{{ arch_libdir }}/\",\n"
		 "  \"file:/usr{{ arch_libdir }}/\",\n"
		 "  \"file:{{ python.stdlib }}/\",\n"
		 "  \"file:{{ python.distlib }}/\",\n"
		 "  \"file:/etc/ssl/certs/\",\n"
		 "  \"file:" MSE_MANIFEST_APP_DIR "/\",\n"
		 "]\n\n"
		 "sgx.allowed_files = [\n"
		 "  \"file:/etc/hosts\",\n"
		 "  \"file:/etc/nsswitch.conf\",\n");
	if (a->coordinator_mrenclave)
		emit(&t, "  \"file:/etc/sgx_default_qcnl.conf\",\n");
	emit(&t, "]\n");
	if (t.oom) {
		free(t.p);
		return mse_err_set(err, "out of memory");
	}
	*out = t.p;
	return 0;
}

int mse_manifest_render_coordinator(const struct mse_manifest_coord_opts *o, char **out,
				    struct mse_err *err)
{
	uint32_t size = o->size_mb ? o->size_mb : MSE_MANIFEST_COORD_SIZE_MB;
	unsigned prodid = o->isvprodid ? o->isvprodid : 1, svn = o->isvsvn ? o->isvsvn : 1;
	struct text t = {0};
	size_t klen = o->owner_key ? strlen(o->owner_key) : 0;

	*out = NULL;
	/* One spelling of the key, one MRENCLAVE: lowercase hex, as `mse coordinator keygen` writes. */
	if (klen != 64 || strspn(o->owner_key, "0123456789abcdef") != 64)
		return mse_err_expect(err, "owner_key", "64 lowercase hex digits (an Ed25519 public key)",
				      o->owner_key ? o->owner_key : "(none)");
	if (size < 256 || (size & (size - 1)) != 0)
		return mse_err_field(err, "size",
				     "expected a power of two of at least 256 (MB), got %u: SGX "
				     "enclave sizes are powers of two",
				     size);
	if (prodid > 65535 || svn > 65535)
		return mse_err_field(err, prodid > 65535 ? "isvprodid" : "isvsvn",
				     "expected 1..65535 (16 bits in SIGSTRUCT), got %u",
				     prodid > 65535 ? prodid : svn);
	if (o->sim_root_hex && mse_sim_root_from_hex(o->sim_root_hex, NULL, NULL, err) != 0)
		return -1;
	emit(&t, "# Gramine manifest template of mse-coordinator written by mse-c (mse coordinator\n"
		 "# start --sgx), for Gramine 1.8 or 1.9. Render with gramine-manifest, sign with\n"
		 "# gramine-sgx-sign, run with gramine-sgx, all in this directory.\n\n");
	emit(&t, "libos.entrypoint = \"" MSE_MANIFEST_COORD_ENTRY "\"\n"
		 "loader.entrypoint.uri = \"file:{{ gramine.libos }}\"\n"
		 "loader.log_level = \"%s\"\n",
	     o->debug ? "warning" : "error");
	/* Measured: the owner's key is what makes this coordinator the owner's. */
	emit(&t, "loader.argv = [\"" MSE_MANIFEST_COORD_ENTRY "\", \"--owner-key\", \"%s\", "
		 "\"--state-dir\", \"" MSE_MANIFEST_COORD_STATE "\", \"--info-dir\", \""
		 MSE_MANIFEST_COORD_INFO "\", \"--threads\", \"%u\"%s%s%s]\n",
	     o->owner_key, (unsigned)MSE_MANIFEST_COORD_THREADS,
	     o->sim_root_hex ? ", \"--trust-sim-root\", \"" : "",
	     o->sim_root_hex ? o->sim_root_hex : "", o->sim_root_hex ? "\"" : "");
	emit(&t, "loader.env.LD_LIBRARY_PATH = \"/lib:{{ arch_libdir }}:/usr{{ arch_libdir }}\"\n"
		 "loader.env.HOME = \"" MSE_MANIFEST_COORD_STATE "\"\n"
		 "loader.env.XDG_CACHE_HOME = \"/tmp/cache\"\n"
		 "loader.env.MSE_COORDINATOR_LISTEN = { passthrough = true }\n"
		 "loader.env.MSE_PCCS_URL = { passthrough = true }\n\n"
		 "sys.disallow_subprocesses = true\n"
		 "sys.enable_sigterm_injection = true\n"
		 "sys.enable_extra_runtime_domain_names_conf = true\n\n"
		 "fs.mounts = [\n"
		 "  { path = \"/lib\", uri = \"file:{{ gramine.runtimedir() }}\" },\n"
		 "  { path = \"{{ arch_libdir }}\", uri = \"file:{{ arch_libdir }}\" },\n"
		 "  { path = \"/usr\", uri = \"file:/usr\" },\n"
		 "  { path = \"/etc\", uri = \"file:/etc\" },\n"
		 "  { path = \"" MSE_MANIFEST_COORD_ENTRY "\", uri = \"file:" MSE_MANIFEST_COORD_BINARY
		 "\" },\n"
		 "  { type = \"tmpfs\", path = \"/tmp\" },\n"
		 "  { type = \"encrypted\", path = \"" MSE_MANIFEST_COORD_STATE "\", uri = \"file:"
		 MSE_MANIFEST_WORKSPACE "/state\", key_name = \"_sgx_mrenclave\" },\n"
		 "  { path = \"" MSE_MANIFEST_COORD_INFO "\", uri = \"file:" MSE_MANIFEST_WORKSPACE
		 "/info\" },\n"
		 "]\n\n");
	emit(&t, "sgx.enclave_size = \"%uM\"\n"
		 "sgx.max_threads = %u\n"
		 "sgx.remote_attestation = \"dcap\"\n"
		 "sgx.debug = %s\n"
		 "sgx.isvprodid = %u\n"
		 "sgx.isvsvn = %u\n\n",
	     (unsigned)size,
	     (unsigned)(MSE_MANIFEST_COORD_THREADS + MSE_MANIFEST_IO_THREADS +
			MSE_MANIFEST_EXTRA_THREADS),
	     o->debug ? "true" : "false", prodid, svn);
	emit(&t, "sgx.trusted_files = [\n"
		 "  \"file:" MSE_MANIFEST_COORD_BINARY "\",\n"
		 "  \"file:{{ gramine.libos }}\",\n"
		 "  \"file:{{ gramine.runtimedir() }}/\",\n"
		 "  \"file:{{ arch_libdir }}/\",\n"
		 "  \"file:/usr{{ arch_libdir }}/\",\n"
		 "  \"file:/etc/ssl/certs/\",\n"
		 "]\n\n"
		 "# Unauthenticated on purpose: name resolution, the PCCS's address (the\n"
		 "# collateral it serves is signed by Intel and checked), and the public\n"
		 "# files the operator reads (the RA-TLS certificate is checked by its quote).\n"
		 "sgx.allowed_files = [\n"
		 "  \"file:/etc/hosts\",\n"
		 "  \"file:/etc/nsswitch.conf\",\n"
		 "  \"file:/etc/sgx_default_qcnl.conf\",\n"
		 "  \"file:" MSE_MANIFEST_WORKSPACE "/info/\",\n"
		 "]\n");
	if (t.oom) {
		free(t.p);
		return mse_err_set(err, "out of memory");
	}
	*out = t.p;
	return 0;
}

void mse_manifest_replica_opts(struct mse_manifest_opts *mo, const struct mse_manifest_replica *r)
{
	memset(mo, 0, sizeof(*mo));
	mo->args.application = r->application;
	mo->args.san = r->san;
	mo->args.size_mb = r->size_mb ? r->size_mb : MSE_MANIFEST_REPLICA_SIZE_MB;
	mo->args.threads = MSE_MANIFEST_APP_THREADS;
	mo->args.threads_max = MSE_MANIFEST_APP_THREADS_MAX;
	mo->args.coordinator_mrenclave = r->coord_mre_hex;
	mo->args.sim_root_hex = r->sim_root_hex;
	mo->size_mb = mo->args.size_mb;
	mo->isvprodid = r->isvprodid ? r->isvprodid : 1;
	mo->isvsvn = r->isvsvn ? r->isvsvn : 1;
}
