/* SPDX-License-Identifier: Apache-2.0 */
#include "operator/spawn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "attest/ratls.h"
#include "attest/pccs.h"
#include "attest/sim.h"
#include "attest/x509w.h"
#include "common/file.h"
#include "crypto/archive.h"
#include "crypto/package.h"
#include "attest/quote.h"
#include "common/hex.h"
#include "operator/evidence.h"
#include "operator/gramine.h"
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
		if (mse_instance_gone(inst)) {
			mse_instance_log_tail(inst->log_path, 6, tail, sizeof(tail));
			return mse_err_set(err, "mse-bootstrap exited before its configuration server "
						"answered; its last words:\n%s",
					   tail[0] ? tail : "(nothing)");
		}
		if (mse_ratls_fetch(hostport, 1000, &der, &der_len, &ferr) == 0)
			break;
		if (waited >= timeout_s * 1000) {
			char m[2048];

			return mse_err_set(err, "the configuration server did not answer on %s within %d s: %s",
					   hostport, timeout_s, mse_err_message(&ferr, m, sizeof(m)));
		}
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

/*
 * 1 if the quote's PCK chain ends at this machine's simulation root: the
 * evidence then carries the simulation's collateral (whether to trust that
 * root is the verifier's decision, never the operator's).
 */
static int quote_from_sim_root(const uint8_t *quote, size_t len, char *sim_dir, size_t size)
{
	char path[PATH_MAX + 32];
	uint8_t *root = NULL;
	size_t root_len = 0;
	struct mse_quote q;
	int found = 0;

	if (mse_quote_parse(&q, quote, len, 0, NULL) != 0 || !q.cert_data ||
	    mse_sim_dir(sim_dir, size, NULL) != 0 || !mse_sim_exists(sim_dir))
		return 0;
	snprintf(path, sizeof(path), "%s/root_ca.der", sim_dir);
	if (mse_file_read(path, 1 << 20, &root, &root_len, NULL) != 0)
		return 0;
	BIO *b = BIO_new_mem_buf(q.cert_data, (int)q.cert_len);
	X509 *x;

	while (b && !found && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		unsigned char *der = NULL;
		int n = i2d_X509(x, &der);

		found = n > 0 && (size_t)n == root_len && memcmp(der, root, root_len) == 0;
		OPENSSL_free(der);
		X509_free(x);
	}
	ERR_clear_error();
	BIO_free(b);
	free(root);
	return found;
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
	struct mse_evidence_sgx g = {
		.gramine_version = inst->gramine_version,
		.host = inst->host,
		.port = inst->port,
		.threads = inst->threads ? inst->threads : MSE_MANIFEST_APP_THREADS,
		.threads_max = inst->threads_max,
		.metrics = inst->metrics[0] ? inst->metrics : NULL,
		.no_ssl = strcmp(inst->cert_mode, "no-ssl") == 0,
		.isvprodid = inst->isvprodid,
		.isvsvn = inst->isvsvn,
		.mrenclave_hex = inst->mrenclave,
		.mrsigner_hex = inst->mrsigner,
	};
	int rc = -1;

	if (inst->mode == MSE_MODE_SGX)
		a.sgx = &g;
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
		if (mse_ratls_parse(&cert, pem, pem_len, err) != 0)
			goto out;
		if (quote_from_sim_root(cert.quote, cert.quote_len, sim_dir, sizeof(sim_dir))) {
			/* The Gramine stand-in of the tests: its quotes come from the simulation. */
			snprintf(coll, sizeof(coll), "%s/collateral", sim_dir);
			rc = 0;
		} else {
			mse_pccs_opts_init(&po);
			po.url = pccs_url;
			rc = mse_pccs_fetch_for_quote(&po, cert.quote, cert.quote_len, coll, sizeof(coll),
						      &info, err);
		}
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


/*
 * The SGX launch: the manifest (rendered before anything is created), the
 * state directory laid out as operator/manifest.h says, gramine-manifest and
 * gramine-sgx-sign with the operator's key, then gramine-sgx, followed like
 * the simulation's mse-bootstrap. *created and *launched tell the caller
 * what to undo on failure.
 */
static int spawn_sgx(const struct mse_spawn_opts *o, struct mse_instance *inst, const char *bootstrap,
		     int *created, int *launched, struct mse_err *err)
{
	char path[PATH_MAX + 64], exe[PATH_MAX], app[PATH_MAX + 16], *text = NULL;
	struct mse_manifest_opts mo = {
		.args = {.application = inst->application,
			 .uuid = inst->uuid,
			 .host = inst->host,
			 .port = inst->port,
			 .subject = inst->subject,
			 .san = inst->san,
			 .size_mb = inst->size_mb,
			 .expiration = inst->expiration,
			 .no_ssl = o->no_ssl,
			 .threads = inst->threads ? inst->threads : MSE_MANIFEST_APP_THREADS,
			 .threads_max = inst->threads_max,
			 .metrics = inst->metrics[0] ? inst->metrics : NULL},
		.size_mb = inst->size_mb,
		.isvprodid = inst->isvprodid,
		.isvsvn = inst->isvsvn,
	};
	struct mse_gramine_version gv;
	struct mse_package_info info;
	struct mse_sigstruct sig;
	uint8_t mrsigner[32];
	char *argv[3];
	int rc = -1;

	if (o->certificate) {
		mse_err_field(err, "--certificate", "not supported with --sgx yet: the enclave would "
						     "need the chain as a trusted file; use the RA-TLS "
						     "certificate (the default) or --no-ssl");
		goto out;
	}
	if (mse_manifest_render(&mo, &text, err) != 0)
		goto out;
	STEP(o, "rendered the Gramine manifest (%zu bytes, sgx.enclave_size %uM, sgx.max_threads %u)",
	     strlen(text), o->size_mb, mse_manifest_max_threads(&mo.args));
	if (!mse_gramine_available()) {
		mse_err_set(err, "Gramine is not installed on this machine (gramine-manifest, "
				 "gramine-sgx-sign and gramine-sgx not all found on PATH): install "
				 "Gramine 1.9 to run on SGX, or use --simulation. Nothing was started or kept.");
		goto out;
	}
	if (!o->signer_key) {
		mse_err_field(err, "--signer-key", "SGX needs the operator's enclave signer key "
						   "(RSA-3072, exponent 3): make one with 'mse keygen "
						   "--sgx-signer --output FILE'");
		goto out;
	}
	if (mse_gramine_check_signer(o->signer_key, mrsigner, err) != 0 ||
	    mse_gramine_version(&gv, err) != 0)
		goto out;
	STEP(o, "%s; signer %s", gv.text, o->signer_key);
	snprintf(inst->gramine_version, sizeof(inst->gramine_version), "%s", gv.text);
	if (mse_instance_create(inst, err) != 0)
		goto out;
	*created = 1;
	snprintf(path, sizeof(path), "%s/package", inst->dir);
	if (mse_package_extract(o->package, path, &info, err) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/package/app.tar", inst->dir);
	if (mse_tar_extract(path, inst->app_dir, NULL, 0644, err) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/" MSE_MANIFEST_BOOTSTRAP, inst->dir);
	if (mse_gramine_copy(bootstrap, path, err) != 0)
		goto out;
	/*
	 * Host directories behind the encrypted mounts. /mse-app is also
	 * fs.start_dir, so it must exist from the start; mse-bootstrap installs
	 * the code into it (mse_confserver_module_ready: an empty mount point is
	 * not provisioned).
	 */
	for (size_t i = 0; i < 3; i++) {
		static const char *const sub[] = {"root", "key", "mse-app"};

		snprintf(path, sizeof(path), "%s/%s", inst->workspace, sub[i]);
		if (mse_file_mkdirs(path, 0700, err) != 0)
			goto out;
	}
	STEP(o, "gramine-manifest and gramine-sgx-sign in %s", inst->dir);
	if (mse_gramine_build(inst->dir, &mo, o->signer_key, inst->log_path, &sig, err) != 0)
		goto out;
	mse_err_step(err, NULL);
	if (sodium_memcmp(sig.mrsigner, mrsigner, 32) != 0) {
		mse_err_set(err, "the SIGSTRUCT's MRSIGNER is not the signer key's: gramine-sgx-sign "
				 "did not sign with %s",
			    o->signer_key);
		goto out;
	}
	if (sig.isv_prod_id != inst->isvprodid || sig.isv_svn != inst->isvsvn) {
		mse_err_set(err, "the SIGSTRUCT says ISVPRODID %u, ISVSVN %u; the manifest asked for %u, %u",
			    (unsigned)sig.isv_prod_id, (unsigned)sig.isv_svn, (unsigned)inst->isvprodid,
			    (unsigned)inst->isvsvn);
		goto out;
	}
	if (mse_hex_encode(inst->mrenclave, sizeof(inst->mrenclave), sig.mrenclave, 32) != 0 ||
	    mse_hex_encode(inst->mrsigner, sizeof(inst->mrsigner), sig.mrsigner, 32) != 0) {
		mse_err_set(err, "cannot encode the measurement");
		goto out;
	}
	STEP(o, "MRENCLAVE %s, MRSIGNER %s (from %s/" MSE_MANIFEST_NAME ".sig)", inst->mrenclave,
	     inst->mrsigner, inst->dir);
	if (mse_gramine_which("gramine-sgx", exe, sizeof(exe), err) != 0)
		goto out;
	/* gramine(1): the argument is the manifest's path without ".manifest.sgx". */
	snprintf(app, sizeof(app), "%s/" MSE_MANIFEST_NAME, inst->dir);
	argv[0] = "gramine-sgx";
	argv[1] = app;
	argv[2] = NULL;
	STEP(o, "starting gramine-sgx %s on %s:%u, uuid %s", app, inst->host, (unsigned)inst->port,
	     inst->uuid);
	if (mse_instance_launch(inst, exe, argv, err) != 0)
		goto out;
	*launched = 1;
	rc = 0;
out:
	free(text);
	return rc;
}

int mse_spawn(const struct mse_spawn_opts *o, struct mse_spawn_result *res, struct mse_err *err)
{
	char bootstrap[PATH_MAX], pkgdir[PATH_MAX + 16], app_tar[PATH_MAX + 32], port[8], exp[32],
		size[16], reqto[16], nthreads[16], nthreads_max[16], sim_dir[PATH_MAX],
		subject[sizeof(((struct mse_instance *)0)->subject)];
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
	if (inst->mode == MSE_MODE_SGX)
		snprintf(inst->app_dir, sizeof(inst->app_dir), "%.4000s/" MSE_MANIFEST_APP_DIR, inst->dir);
	else
		snprintf(inst->app_dir, sizeof(inst->app_dir), "%.4000s/app", inst->workspace);
	if (o->isvprodid > 65535 || o->isvsvn > 65535)
		return mse_err_field(err, o->isvprodid > 65535 ? "--isvprodid" : "--isvsvn",
				     "expected 1..65535, got %u",
				     o->isvprodid > 65535 ? o->isvprodid : o->isvsvn);
	/* The simulated quoting enclave says ISVPRODID 1, ISVSVN 1: other values need the manifest. */
	if (inst->mode == MSE_MODE_SIMULATION && (o->isvprodid > 1 || o->isvsvn > 1))
		return mse_err_field(err, o->isvprodid > 1 ? "--isvprodid" : "--isvsvn",
				     "sgx.isvprodid and sgx.isvsvn are Gramine manifest values (--sgx); "
				     "a simulated enclave's quote carries 1 and 1, got %u",
				     o->isvprodid > 1 ? o->isvprodid : o->isvsvn);
	inst->isvprodid = (uint16_t)(o->isvprodid ? o->isvprodid : 1);
	inst->isvsvn = (uint16_t)(o->isvsvn ? o->isvsvn : 1);
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
	inst->threads = o->threads;
	inst->threads_max = o->threads_max;
	if (inst->mode == MSE_MODE_SGX && !inst->threads_max) /* measured in loader.argv */
		inst->threads_max = inst->threads > MSE_MANIFEST_APP_THREADS_MAX
					    ? inst->threads
					    : MSE_MANIFEST_APP_THREADS_MAX;
	if (inst->threads_max && inst->threads > inst->threads_max) {
		mse_err_field(err, "--threads-max", "expected at least --threads (%u), got %u",
			      inst->threads, inst->threads_max);
		return -1;
	}
	inst->expiration = (int64_t)time(NULL) + (int64_t)o->days * 86400;
	mse_instance_new_uuid(inst->uuid);
	inst->port = o->port;
	if (!inst->port) {
		if (inst->mode == MSE_MODE_SGX)
			inst->port = 443;
		else if (mse_instance_free_port(o->host, &inst->port, err) != 0)
			return -1;
	}
	if (o->metrics && mse_instance_metrics_addr("--metrics", o->metrics, inst->port, 0,
						    inst->metrics, sizeof(inst->metrics), err) != 0)
		return -1;
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
		if (o->no_ssl) {
			argv[n++] = "--no-ssl";
		} else {
			argv[n++] = "--ratls";
			argv[n++] = exp;
		}
	}
	if (o->no_access_log)
		argv[n++] = "--no-access-log";
	if (o->request_timeout_s > 0) {
		snprintf(reqto, sizeof(reqto), "%d", o->request_timeout_s);
		argv[n++] = "--request-timeout";
		argv[n++] = reqto;
	}
	if (inst->threads) {
		snprintf(nthreads, sizeof(nthreads), "%u", inst->threads);
		argv[n++] = "--threads";
		argv[n++] = nthreads;
	}
	if (inst->threads_max) {
		snprintf(nthreads_max, sizeof(nthreads_max), "%u", inst->threads_max);
		argv[n++] = "--threads-max";
		argv[n++] = nthreads_max;
	}
	if (inst->metrics[0]) {
		argv[n++] = "--metrics";
		argv[n++] = inst->metrics;
	}
	if (inst->mode == MSE_MODE_SIMULATION) {
		argv[n++] = "--simulation";
		argv[n++] = "--workspace";
		argv[n++] = inst->workspace;
	}
	argv[n] = NULL;
	if (inst->mode == MSE_MODE_SGX) {
		if (spawn_sgx(o, inst, bootstrap, &created, &launched, err) != 0)
			goto fail;
		goto ready;
	}
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
ready:
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
