#include "operator/spawn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "attest/ratls.h"
#include "attest/pccs.h"
#include "attest/sim.h"
#include "attest/x509w.h"
#include "common/file.h"
#include "crypto/archive.h"
#include "crypto/package.h"
#include "operator/evidence.h"
#include "operator/manifest.h"

#define STEP(o, ...)                                         \
	do {                                                 \
		if ((o)->progress) {                         \
			fprintf((o)->progress, "  - " __VA_ARGS__); \
			fputc('\n', (o)->progress);          \
			fflush((o)->progress);               \
		}                                            \
	} while (0)

/* The last lines of the log, to explain why the enclave died. */
int mse_spawn_wait_ready(struct mse_instance *inst, int timeout_s, struct mse_err *err)
{
	char hostport[300], pem_path[PATH_MAX + 16], tail[700];
	const char *host = strcmp(inst->host, "0.0.0.0") == 0 ? "127.0.0.1" : inst->host;
	struct mse_ratls cert = {0};
	uint8_t *der = NULL;
	size_t der_len = 0;
	char *pem = NULL;
	size_t pem_len;
	struct mse_err ferr = {0};
	int rc = -1;

	snprintf(hostport, sizeof(hostport), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
		 (unsigned)inst->port);
	for (int waited = 0;; waited += 100) {
		if (!mse_instance_alive(inst)) {
			mse_instance_log_tail(inst->log_path, 6, tail, sizeof(tail));
			return mse_err_set(err, "mse-bootstrap exited before its configuration server "
						"answered; its last words:\n%s",
					   tail[0] ? tail : "(nothing)");
		}
		if (mse_ratls_fetch(hostport, 1000, &der, &der_len, &ferr) == 0)
			break;
		if (waited >= timeout_s * 1000)
			return mse_err_set(err, "the configuration server did not answer on %s within %d s: %s",
					   hostport, timeout_s, ferr.msg);
		usleep(100 * 1000);
	}
	if (mse_ratls_parse(&cert, der, der_len, err) != 0 ||
	    mse_ratls_pem(&cert, &pem, &pem_len, err) != 0)
		goto out;
	mse_instance_ratls_path(inst, pem_path, sizeof(pem_path));
	if (mse_file_write_atomic(pem_path, pem, pem_len, 0644, err) != 0)
		goto out;
	rc = 0;
out:
	free(der);
	free(pem);
	mse_ratls_free(&cert);
	return rc;
}

/*
 * The signer's public key as PEM, from a public or a private key file (the
 * RSA-3072 key given to gramine-sgx-sign): evidence.json carries only the
 * public part. *out is malloc'd.
 */
static int signer_public_pem(const char *path, char **out, struct mse_err *err)
{
	EVP_PKEY *pk = NULL;
	BIO *b;
	int rc = -1;

	*out = NULL;
	b = BIO_new_file(path, "r");
	if (!b)
		return mse_err_field(err, path, "cannot open the signer key");
	pk = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	if (!pk) {
		(void)BIO_reset(b);
		pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	}
	ERR_clear_error();
	if (!pk || EVP_PKEY_base_id(pk) != EVP_PKEY_RSA)
		mse_err_field(err, path, "expected an RSA signer key (PEM, public or private)");
	else
		rc = mse_x509w_pub_pem(pk, out, err);
	BIO_free(b);
	EVP_PKEY_free(pk);
	return rc;
}

int mse_spawn_write_evidence(const struct mse_instance *inst, const char *dir, const char *pccs_url,
			     const char *signer_key, char *evidence_path, size_t ev_size,
			     char *ratls_path, size_t ratls_size, struct mse_err *err)
{
	char src[PATH_MAX + 16], sim_dir[PATH_MAX], coll[PATH_MAX + 16], signer_path[PATH_MAX + 16];
	uint8_t *pem = NULL;
	char *signer = NULL;
	size_t pem_len;
	struct mse_evidence_args a = {
		.subject = inst->subject,
		.san = inst->san,
		.expiration = inst->expiration,
		.size_mb = inst->size_mb,
		.app_id = inst->uuid,
		.application = inst->application,
	};
	int rc = -1;

	mse_instance_ratls_path(inst, src, sizeof(src));
	if (mse_file_mkdirs(dir, 0755, err) != 0 || mse_file_read(src, 1 << 20, &pem, &pem_len, err) != 0)
		goto out;
	if (inst->mode == MSE_MODE_SGX) {
		/* Intel's collateral for the platform that produced the quote, via the PCCS. */
		struct mse_pccs_opts po;
		struct mse_pccs_info info;
		struct mse_ratls cert = {0};

		if (!signer_key) {
			mse_err_field(err, "--signer-key", "SGX evidence needs the enclave signer's key "
							   "(the RSA key given to gramine-sgx-sign)");
			goto out;
		}
		snprintf(signer_path, sizeof(signer_path), "%s", signer_key);
		mse_pccs_opts_init(&po);
		po.url = pccs_url;
		if (mse_ratls_parse(&cert, pem, pem_len, err) != 0)
			goto out;
		rc = mse_pccs_fetch_for_quote(&po, cert.quote, cert.quote_len, coll, sizeof(coll), &info, err);
		mse_ratls_free(&cert);
		if (rc != 0)
			goto out;
		rc = -1;
	} else {
		if (mse_sim_dir(sim_dir, sizeof(sim_dir), err) != 0)
			goto out;
		snprintf(coll, sizeof(coll), "%s/collateral", sim_dir);
		if (signer_key)
			snprintf(signer_path, sizeof(signer_path), "%s", signer_key);
		else
			snprintf(signer_path, sizeof(signer_path), "%s/signer.pem", sim_dir);
	}
	if (signer_public_pem(signer_path, &signer, err) != 0)
		goto out;
	snprintf(ratls_path, ratls_size, "%s/ratls.pem", dir);
	snprintf(evidence_path, ev_size, "%s/evidence.json", dir);
	if (mse_file_write_atomic(ratls_path, pem, pem_len, 0644, err) != 0 ||
	    mse_evidence_write(evidence_path, &a, (const char *)pem, coll, signer, err) != 0)
		goto out;
	rc = 0;
out:
	free(pem);
	free(signer);
	return rc;
}

static int on_path(const char *program);

/*
 * Renders the Gramine manifest template and argv file in memory, before
 * anything is created: a bad option fails here, and where Gramine is absent
 * nothing is left behind. *text and *av are malloc'd.
 */
static int render_sgx_files(const struct mse_spawn_opts *o, const struct mse_instance *inst,
			    const char *bootstrap, char *const argv[], char **text, uint8_t **av,
			    size_t *av_len, struct mse_err *err)
{
	struct mse_manifest_opts mo = {
		.bootstrap_path = bootstrap,
		.app_dir = inst->app_dir,
		.workspace = inst->workspace,
		.size_mb = o->size_mb,
	};
	size_t argc = 0;

	*text = NULL;
	*av = NULL;
	while (argv[argc])
		argc++;
	if (mse_manifest_render(&mo, text, err) != 0)
		return -1;
	if (mse_manifest_argv((const char *const *)argv, argc, av, av_len, err) != 0) {
		free(*text);
		*text = NULL;
		return -1;
	}
	return 0;
}

/* The SGX path as far as this build goes: the manifest, then Gramine. Always fails. */
static int spawn_sgx(const struct mse_spawn_opts *o, const struct mse_instance *inst,
		     const char *bootstrap, char *const argv[], struct mse_err *err)
{
	char path[PATH_MAX + 32], *text = NULL;
	uint8_t *av = NULL;
	size_t av_len = 0;

	if (render_sgx_files(o, inst, bootstrap, argv, &text, &av, &av_len, err) != 0)
		goto out;
	STEP(o, "rendered the Gramine manifest (%zu bytes, sgx.enclave_size %uM) and argv (%zu bytes)",
	     strlen(text), o->size_mb, av_len);
	if (!on_path("gramine-sgx-sign") || !on_path("gramine-sgx")) {
		mse_err_set(err, "Gramine is not installed on this machine (gramine-sgx-sign and "
				 "gramine-sgx not found on PATH): install Gramine to run on SGX, or use "
				 "--simulation. Nothing was started or kept.");
		goto out;
	}
	/* Leave the manifest where the operator can read it, never in a half-made state directory. */
	snprintf(path, sizeof(path), "%s/mse.manifest.template", o->output_dir);
	if (mse_file_mkdirs(o->output_dir, 0755, err) != 0 ||
	    mse_file_write_atomic(path, text, strlen(text), 0644, err) != 0)
		goto out;
	mse_err_set(err, "running under Gramine is not supported by this build yet: the manifest "
			 "template is in %s; use --simulation",
		    path);
out:
	free(text);
	free(av);
	return -1;
}

/* 1 if PROGRAM is an executable on $PATH. */
static int on_path(const char *program)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	while (path && *path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, program);
		if (access(buf, X_OK) == 0)
			return 1;
		path += n + (path[n] == ':');
	}
	return 0;
}

int mse_spawn(const struct mse_spawn_opts *o, struct mse_spawn_result *res, struct mse_err *err)
{
	char bootstrap[PATH_MAX], pkgdir[PATH_MAX + 16], app_tar[PATH_MAX + 32], port[8], exp[32],
		size[16], sim_dir[PATH_MAX], subject[sizeof(((struct mse_instance *)0)->subject)];
	struct mse_instance *inst = &res->inst;
	struct mse_package_info info;
	struct mse_tar_limits lim;
	int created = 0, launched = 0;
	char *argv[40];
	int n = 0;

	memset(res, 0, sizeof(*res));
	if (mse_instance_locate(inst, o->name, err) != 0)
		return -1;
	inst->mode = o->mode >= 0 ? (enum mse_instance_mode)o->mode
				  : (mse_instance_sgx_device() ? MSE_MODE_SGX : MSE_MODE_SIMULATION);
	if (o->size_mb < 256 || (o->size_mb & (o->size_mb - 1)))
		return mse_err_field(err, "--size", "expected a power of two of at least 256 (MB), got %u",
				     o->size_mb);
	if (mse_instance_bootstrap_path(bootstrap, sizeof(bootstrap), err) != 0)
		return -1;
	STEP(o, "checking %s", o->package);
	if (mse_package_inspect(o->package, &info, err) != 0)
		return -1;
	/* Everything the enclave is started with is settled before anything is created. */
	snprintf(inst->app_dir, sizeof(inst->app_dir), "%.4000s/app", inst->workspace);
	if (!realpath(o->package, inst->package))
		snprintf(inst->package, sizeof(inst->package), "%s", o->package);
	snprintf(inst->application, sizeof(inst->application), "%s", info.python_application);
	snprintf(inst->healthcheck, sizeof(inst->healthcheck), "%s", info.healthcheck_endpoint);
	snprintf(inst->host, sizeof(inst->host), "%s", o->host);
	snprintf(inst->san, sizeof(inst->san), "%s", o->san);
	if (o->subject)
		snprintf(subject, sizeof(subject), "%s", o->subject);
	else
		snprintf(subject, sizeof(subject), "CN=%.200s,O=mse-c", o->san);
	snprintf(inst->subject, sizeof(inst->subject), "%s", subject);
	snprintf(inst->cert_mode, sizeof(inst->cert_mode), "%s",
		 o->certificate ? "certificate" : o->no_ssl ? "no-ssl" : "ratls");
	if (o->certificate && !realpath(o->certificate, inst->certificate))
		return mse_err_field(err, o->certificate, "%s", strerror(errno));
	inst->size_mb = o->size_mb;
	inst->expiration = (int64_t)time(NULL) + (int64_t)o->days * 86400;
	mse_instance_new_uuid(inst->uuid);
	inst->port = o->port;
	if (!inst->port) {
		if (inst->mode == MSE_MODE_SGX)
			inst->port = 443;
		else if (mse_instance_free_port(o->host, &inst->port, err) != 0)
			return -1;
	}
	snprintf(port, sizeof(port), "%u", (unsigned)inst->port);
	snprintf(exp, sizeof(exp), "%lld", (long long)inst->expiration);
	snprintf(size, sizeof(size), "%u", o->size_mb);
	argv[n++] = bootstrap;
	argv[n++] = inst->application;
	argv[n++] = "--app-dir";
	argv[n++] = inst->app_dir;
	argv[n++] = "--id";
	argv[n++] = inst->uuid;
	argv[n++] = "--host";
	argv[n++] = inst->host;
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--subject";
	argv[n++] = inst->subject;
	argv[n++] = "--san";
	argv[n++] = inst->san;
	argv[n++] = "--size";
	argv[n++] = size;
	if (o->certificate) {
		argv[n++] = "--certificate";
		argv[n++] = inst->certificate;
	} else {
		argv[n++] = "--ratls";
		argv[n++] = exp;
		if (o->no_ssl)
			argv[n++] = "--no-ssl";
	}
	if (inst->mode == MSE_MODE_SIMULATION) {
		argv[n++] = "--simulation";
		argv[n++] = "--workspace";
		argv[n++] = inst->workspace;
	}
	argv[n] = NULL;
	if (inst->mode == MSE_MODE_SGX)
		return spawn_sgx(o, inst, bootstrap, argv, err);
	if (mse_sim_dir(sim_dir, sizeof(sim_dir), err) != 0)
		return -1;
	if (!mse_sim_exists(sim_dir)) {
		STEP(o, "creating the simulation root in %s", sim_dir);
		if (mse_sim_init(sim_dir, 0, err) != 0)
			return -1;
	}
	if (mse_instance_create(inst, err) != 0)
		return -1;
	created = 1;
	snprintf(pkgdir, sizeof(pkgdir), "%s/package", inst->dir);
	if (mse_package_extract(o->package, pkgdir, &info, err) != 0)
		goto fail;
	snprintf(app_tar, sizeof(app_tar), "%s/app.tar", pkgdir);
	/* within what the package declares and the enclave could hold, not a 16 GiB default */
	mse_package_app_limits(&info, (uint64_t)o->size_mb << 20, &lim);
	if (mse_tar_extract(app_tar, inst->app_dir, &lim, 0644, err) != 0)
		goto fail;
	STEP(o, "starting mse-bootstrap (%s) on %s:%u, uuid %s", mse_instance_mode_name(inst->mode),
	     inst->host, (unsigned)inst->port, inst->uuid);
	if (mse_instance_launch(inst, bootstrap, argv, err) != 0)
		goto fail;
	launched = 1;
	STEP(o, "waiting for the configuration server");
	if (mse_spawn_wait_ready(inst, o->timeout_s, err) != 0)
		goto fail;
	STEP(o, "writing the evidence into %s", o->output_dir);
	if (mse_spawn_write_evidence(inst, o->output_dir, o->pccs_url, o->signer_key,
				     res->evidence_path, sizeof(res->evidence_path), res->ratls_path,
				     sizeof(res->ratls_path), err) != 0)
		goto fail;
	return 0;
fail:
	if (launched)
		mse_instance_stop(inst, 5000, NULL);
	if (created)
		mse_instance_remove(inst, NULL);
	return -1;
}
