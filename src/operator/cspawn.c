/* SPDX-License-Identifier: Apache-2.0 */
#include "operator/cspawn.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "attest/sim.h"
#include "common/file.h"
#include "common/hex.h"
#include "crypto/archive.h"
#include "crypto/package.h"
#include "operator/gramine.h"
#include "operator/manifest.h"
#include "operator/proc.h"

int mse_cspawn_coordinator_path(char *out, size_t size, struct mse_err *err)
{
	const char *env = getenv("MSE_COORDINATOR_BIN");
	char self[PATH_MAX], *slash;

	if (env && *env) {
		snprintf(out, size, "%s", env);
	} else {
		if (mse_proc_self_exe(self, sizeof(self)) != 0)
			return mse_err_set(err, "cannot find the running executable");
		if ((slash = strrchr(self, '/')))
			*slash = '\0';
		if (snprintf(out, size, "%s/mse-coordinator", self) >= (int)size)
			return mse_err_set(err, "path too long");
	}
	if (access(out, X_OK) != 0)
		return mse_err_field(err, out, "mse-coordinator is not installed here (build it "
					       "with 'make', or set MSE_COORDINATOR_BIN)");
	return 0;
}

static int ensure_sim(struct mse_err *err)
{
	char sim_dir[PATH_MAX];

	if (mse_sim_dir(sim_dir, sizeof(sim_dir), err) != 0)
		return -1;
	return mse_sim_exists(sim_dir) ? 0 : mse_sim_init(sim_dir, 0, err);
}

static void common_fields(const struct mse_cspawn_opts *o, struct mse_instance *inst)
{
	inst->mode = MSE_MODE_SIMULATION;
	snprintf(inst->host, sizeof(inst->host), "%s", o->host ? o->host : "127.0.0.1");
	inst->created = (int64_t)time(NULL);
}

/*
 * SGX: the instance directory as gramine-sgx's working directory, the
 * coordinator's manifest for the owner key, signed with the operator's key;
 * MRENCLAVE and MRSIGNER recorded from the SIGSTRUCT; gramine-sgx started.
 */
static int launch_sgx(const struct mse_cspawn_opts *o, struct mse_instance *inst, const char *exe,
		      const char *port, struct mse_err *err)
{
	struct mse_manifest_coord_opts mo = {.owner_key = o->owner_key,
					     .sim_root_hex = o->sim_root_hex};
	struct mse_gramine_version gv;
	struct mse_sigstruct sig;
	char path[PATH_MAX + 64], gsgx[PATH_MAX], app[PATH_MAX + 16], listen[300], *text = NULL;
	char *argv[3];
	uint8_t mrsigner[32];
	int rc = -1;

	if (mse_gramine_check_signer(o->signer_key, mrsigner, err) != 0 ||
	    mse_gramine_version(&gv, err) != 0)
		return -1;
	snprintf(inst->gramine_version, sizeof(inst->gramine_version), "%s", gv.text);
	inst->isvprodid = inst->isvsvn = 1;
	if (o->pccs_url)
		snprintf(inst->pccs_url, sizeof(inst->pccs_url), "%s", o->pccs_url);
	snprintf(path, sizeof(path), "%s/" MSE_MANIFEST_COORD_BINARY, inst->dir);
	if (mse_gramine_copy(exe, path, err) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/state", inst->workspace);
	if (mse_file_mkdirs(path, 0700, err) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/info", inst->workspace);
	if (mse_file_mkdirs(path, 0700, err) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/info/coordinator.json", inst->workspace);
	(void)unlink(path); /* a stale one must not pass for this start */
	if (mse_manifest_render_coordinator(&mo, &text, err) != 0 ||
	    mse_gramine_build_text(inst->dir, text, 0, o->signer_key, inst->log_path, &sig, err) != 0)
		goto out;
	if (sodium_memcmp(sig.mrsigner, mrsigner, 32) != 0) {
		mse_err_set(err, "the SIGSTRUCT's MRSIGNER is not the signer key's: gramine-sgx-sign "
				 "did not sign with %s",
			    o->signer_key);
		goto out;
	}
	if (mse_hex_encode(inst->mrenclave, sizeof(inst->mrenclave), sig.mrenclave, 32) != 0 ||
	    mse_hex_encode(inst->mrsigner, sizeof(inst->mrsigner), sig.mrsigner, 32) != 0) {
		mse_err_set(err, "cannot encode the measurement");
		goto out;
	}
	if (mse_gramine_which("gramine-sgx", gsgx, sizeof(gsgx), err) != 0)
		goto out;
	/* Not measured: where it listens, and which PCCS it asks. */
	snprintf(listen, sizeof(listen), strchr(inst->host, ':') ? "[%s]:%s" : "%s:%s", inst->host,
		 port);
	if (setenv("MSE_COORDINATOR_LISTEN", listen, 1) != 0 ||
	    (o->pccs_url && setenv("MSE_PCCS_URL", o->pccs_url, 1) != 0)) {
		mse_err_set(err, "setenv: %s", strerror(errno));
		goto out;
	}
	snprintf(app, sizeof(app), "%s/" MSE_MANIFEST_NAME, inst->dir);
	argv[0] = "gramine-sgx";
	argv[1] = app;
	argv[2] = NULL;
	rc = mse_instance_launch(inst, gsgx, argv, err);
out:
	free(text);
	return rc;
}

int mse_cspawn_coordinator(const struct mse_cspawn_opts *o, struct mse_instance *inst,
			   struct mse_err *err)
{
	char exe[PATH_MAX], port[8], info[PATH_MAX + 32], src[PATH_MAX + 32], dst[PATH_MAX + 32];
	char *argv[16];
	int n = 0, created = 0;
	time_t end;

	memset(inst, 0, sizeof(*inst));
	if (mse_instance_locate(inst, o->name, err) != 0 ||
	    mse_cspawn_coordinator_path(exe, sizeof(exe), err) != 0 || (!o->sgx && ensure_sim(err) != 0))
		return -1;
	if (o->sgx && !mse_gramine_available())
		return mse_err_set(err, "Gramine is not installed on this machine (gramine-manifest, "
					"gramine-sgx-sign and gramine-sgx not all found on PATH): "
					"install Gramine 1.9 to run the coordinator on SGX");
	if (o->sgx && !o->signer_key)
		return mse_err_field(err, "--signer-key", "SGX needs the operator's enclave signer "
							  "key (RSA-3072, exponent 3): make one with "
							  "'mse keygen --sgx-signer --output FILE'");
	common_fields(o, inst);
	if (o->sgx)
		inst->mode = MSE_MODE_SGX;
	snprintf(inst->role, sizeof(inst->role), "coordinator");
	snprintf(inst->cert_mode, sizeof(inst->cert_mode), "ratls");
	snprintf(inst->san, sizeof(inst->san), "localhost");
	snprintf(inst->application, sizeof(inst->application), "mse-coordinator");
	snprintf(inst->healthcheck, sizeof(inst->healthcheck), "/status");
	inst->port = o->port;
	if (!inst->port && mse_instance_free_port(inst->host, &inst->port, err) != 0)
		return -1;
	snprintf(port, sizeof(port), "%u", (unsigned)inst->port);
	if (mse_instance_create(inst, err) != 0)
		return -1;
	created = 1;
	if (o->sgx) {
		if (launch_sgx(o, inst, exe, port, err) != 0)
			goto fail;
		snprintf(info, sizeof(info), "%s/info/coordinator.json", inst->workspace);
		goto wait;
	}
	argv[n++] = exe;
	argv[n++] = "--owner-key";
	argv[n++] = (char *)o->owner_key;
	argv[n++] = "--state-dir";
	argv[n++] = inst->workspace;
	argv[n++] = "--host";
	argv[n++] = inst->host;
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--simulation";
	argv[n] = NULL;
	if (mse_instance_launch(inst, exe, argv, err) != 0)
		goto fail;
	snprintf(info, sizeof(info), "%s/coordinator.json", inst->workspace);
wait:
	end = time(NULL) + (o->timeout_s > 0 ? o->timeout_s : 60);
	for (;;) {
		json_t *j = json_load_file(info, 0, NULL);
		json_int_t pid = 0;

		/* Inside Gramine the process sees its own pid namespace: there the
		 * file is new (removed before the start) and that suffices. */
		if (j && json_unpack(j, "{s:I}", "pid", &pid) == 0 &&
		    (pid == inst->pid || inst->mode == MSE_MODE_SGX)) {
			json_decref(j);
			break;
		}
		json_decref(j);
		if (mse_instance_gone(inst)) {
			mse_err_set(err, "mse-coordinator exited; see 'mse logs %s'", inst->name);
			goto fail;
		}
		if (time(NULL) > end) {
			mse_err_set(err, "mse-coordinator did not start in time; see 'mse logs %s'",
				    inst->name);
			goto fail;
		}
		usleep(100000);
	}
	/* The operator's copy of its certificate (as spawn keeps an enclave's). */
	snprintf(src, sizeof(src), inst->mode == MSE_MODE_SGX ? "%s/info/ratls.pem" : "%s/ratls.pem",
		 inst->workspace);
	mse_instance_ratls_path(inst, dst, sizeof(dst));
	{
		uint8_t *pem = NULL;
		size_t len = 0;

		if (mse_file_read(src, 1 << 20, &pem, &len, err) != 0 ||
		    mse_file_write_atomic(dst, pem, len, MSE_MODE_PUBLIC, err) != 0) {
			free(pem);
			goto fail;
		}
		free(pem);
	}
	return mse_instance_save(inst, err);
fail:
	if (created) {
		struct mse_err e2;

		mse_err_clear(&e2);
		(void)mse_instance_stop(inst, 3000, &e2);
	}
	return -1;
}

/*
 * SGX: the replica's manifest (operator/manifest.h: what every replica of the
 * package shares, so one MRENCLAVE for all), signed with the operator's key;
 * gramine-sgx with the per-replica values in its environment.
 */
static int replica_sgx(const struct mse_cspawn_opts *o, struct mse_instance *inst,
		       const char *boot, const struct mse_package_info *info, const char *port,
		       struct mse_err *err)
{
	struct mse_manifest_opts mo;
	struct mse_gramine_version gv;
	struct mse_sigstruct sig;
	char path[PATH_MAX + 64], gsgx[PATH_MAX], app[PATH_MAX + 16], listen[300], cm[65];
	char *argv[3];
	uint8_t mrsigner[32], cmre[32];

	if (!o->coordinator_mrenclave || strlen(o->coordinator_mrenclave) != 64 ||
	    mse_hex_decode_exact(cmre, 32, o->coordinator_mrenclave, 64) != 0 ||
	    mse_hex_encode(cm, sizeof(cm), cmre, 32) != 0)
		return mse_err_expect(err, "coordinator MRENCLAVE", "64 hex digits",
				      o->coordinator_mrenclave ? o->coordinator_mrenclave : "(none)");
	if (mse_gramine_check_signer(o->signer_key, mrsigner, err) != 0 ||
	    mse_gramine_version(&gv, err) != 0)
		return -1;
	snprintf(inst->gramine_version, sizeof(inst->gramine_version), "%s", gv.text);
	{
		struct mse_manifest_replica r = {.application = info->python_application,
						 .san = inst->san, .coord_mre_hex = cm,
						 .sim_root_hex = o->sim_root_hex,
						 .size_mb = o->size_mb, .isvprodid = o->isvprodid,
						 .isvsvn = o->isvsvn};

		mse_manifest_replica_opts(&mo, &r);
	}
	inst->size_mb = mo.size_mb;
	inst->isvprodid = mo.isvprodid;
	inst->isvsvn = mo.isvsvn;
	inst->threads = mo.args.threads;
	inst->threads_max = mo.args.threads_max;
	if (o->pccs_url)
		snprintf(inst->pccs_url, sizeof(inst->pccs_url), "%s", o->pccs_url);
	snprintf(path, sizeof(path), "%s/" MSE_MANIFEST_BOOTSTRAP, inst->dir);
	if (mse_gramine_copy(boot, path, err) != 0)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		static const char *const sub[] = {"root", "key", "mse-app"};

		snprintf(path, sizeof(path), "%s/%s", inst->workspace, sub[i]);
		if (mse_file_mkdirs(path, 0700, err) != 0)
			return -1;
	}
	if (mse_gramine_build(inst->dir, &mo, o->signer_key, inst->log_path, &sig, err) != 0)
		return -1;
	if (sodium_memcmp(sig.mrsigner, mrsigner, 32) != 0)
		return mse_err_set(err, "the SIGSTRUCT's MRSIGNER is not the signer key's: "
					"gramine-sgx-sign did not sign with %s",
				   o->signer_key);
	if (mse_hex_encode(inst->mrenclave, sizeof(inst->mrenclave), sig.mrenclave, 32) != 0 ||
	    mse_hex_encode(inst->mrsigner, sizeof(inst->mrsigner), sig.mrsigner, 32) != 0)
		return mse_err_set(err, "cannot encode the measurement");
	if (mse_gramine_which("gramine-sgx", gsgx, sizeof(gsgx), err) != 0)
		return -1;
	snprintf(listen, sizeof(listen), strchr(inst->host, ':') ? "[%s]:%s" : "%s:%s", inst->host,
		 port);
	if (setenv("MSE_COORDINATOR", o->coordinator, 1) != 0 ||
	    setenv("MSE_REPLICA_LISTEN", listen, 1) != 0 ||
	    setenv("MSE_REPLICA_ID", inst->name, 1) != 0 ||
	    (inst->metrics[0] ? setenv("MSE_REPLICA_METRICS", inst->metrics, 1)
			      : unsetenv("MSE_REPLICA_METRICS")) != 0 ||
	    (o->pccs_url && setenv("MSE_PCCS_URL", o->pccs_url, 1) != 0))
		return mse_err_set(err, "setenv: %s", strerror(errno));
	snprintf(app, sizeof(app), "%s/" MSE_MANIFEST_NAME, inst->dir);
	argv[0] = "gramine-sgx";
	argv[1] = app;
	argv[2] = NULL;
	return mse_instance_launch(inst, gsgx, argv, err);
}

int mse_cspawn_replica(const struct mse_cspawn_opts *o, struct mse_instance *inst,
		       struct mse_err *err)
{
	char boot[PATH_MAX], port[8], size[16], pkgdir[PATH_MAX + 16], app_tar[PATH_MAX + 32];
	struct mse_package_info info;
	char *argv[32];
	int n = 0;

	memset(inst, 0, sizeof(*inst));
	if (mse_instance_locate(inst, o->name, err) != 0 ||
	    mse_instance_bootstrap_path(boot, sizeof(boot), err) != 0 ||
	    (!o->sgx && ensure_sim(err) != 0))
		return -1;
	if (o->sgx && !mse_gramine_available())
		return mse_err_set(err, "Gramine is not installed on this machine (gramine-manifest, "
					"gramine-sgx-sign and gramine-sgx not all found on PATH): "
					"install Gramine 1.9 to run replicas on SGX");
	if (o->sgx && !o->signer_key)
		return mse_err_field(err, "--signer-key", "SGX needs the operator's enclave signer "
							  "key (RSA-3072, exponent 3): make one with "
							  "'mse keygen --sgx-signer --output FILE'");
	if (mse_package_inspect(o->package, &info, err) != 0)
		return -1;
	common_fields(o, inst);
	if (o->sgx)
		inst->mode = MSE_MODE_SGX;
	snprintf(inst->role, sizeof(inst->role), "replica");
	snprintf(inst->coordinator, sizeof(inst->coordinator), "%s", o->coordinator);
	snprintf(inst->cert_mode, sizeof(inst->cert_mode), "coordinator");
	snprintf(inst->san, sizeof(inst->san), "%s", o->san ? o->san : "localhost");
	snprintf(inst->application, sizeof(inst->application), "%s", info.python_application);
	snprintf(inst->healthcheck, sizeof(inst->healthcheck), "%s", info.healthcheck_endpoint);
	if (!realpath(o->package, inst->package))
		snprintf(inst->package, sizeof(inst->package), "%s", o->package);
	snprintf(inst->uuid, sizeof(inst->uuid), "%.36s", o->name);
	inst->size_mb = o->size_mb;
	inst->port = o->port;
	if (!inst->port && mse_instance_free_port(inst->host, &inst->port, err) != 0)
		return -1;
	if (o->metrics && mse_instance_metrics_addr("--metrics", o->metrics, inst->port,
						    o->metrics_search, inst->metrics,
						    sizeof(inst->metrics), err) != 0)
		return -1;
	if (o->sgx)
		snprintf(inst->app_dir, sizeof(inst->app_dir), "%.4000s/" MSE_MANIFEST_APP_DIR,
			 inst->dir);
	else
		snprintf(inst->app_dir, sizeof(inst->app_dir), "%.4000s/app", inst->workspace);
	snprintf(port, sizeof(port), "%u", (unsigned)inst->port);
	snprintf(size, sizeof(size), "%u", o->size_mb);
	if (mse_instance_create(inst, err) != 0)
		return -1;
	snprintf(pkgdir, sizeof(pkgdir), "%s/package", inst->dir);
	snprintf(app_tar, sizeof(app_tar), "%s/app.tar", pkgdir);
	if (mse_package_extract(o->package, pkgdir, &info, err) != 0 ||
	    mse_tar_extract(app_tar, inst->app_dir, NULL, 0644, err) != 0)
		return -1;
	if (o->sgx)
		return replica_sgx(o, inst, boot, &info, port, err);
	argv[n++] = boot;
	argv[n++] = inst->application;
	argv[n++] = "--app-dir";
	argv[n++] = inst->app_dir;
	argv[n++] = "--coordinator-mrenclave";
	argv[n++] = (char *)o->coordinator_mrenclave;
	argv[n++] = "--id";
	argv[n++] = inst->name;
	argv[n++] = "--host";
	argv[n++] = inst->host;
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--san";
	argv[n++] = inst->san;
	if (o->size_mb) {
		argv[n++] = "--size";
		argv[n++] = size;
	}
	if (inst->metrics[0]) { /* per replica: not in the measurement v2 */
		argv[n++] = "--metrics";
		argv[n++] = inst->metrics;
	}
	argv[n++] = "--simulation";
	argv[n++] = "--workspace";
	argv[n++] = inst->workspace;
	argv[n] = NULL;
	if (setenv("MSE_COORDINATOR", o->coordinator, 1) != 0)
		return mse_err_set(err, "setenv: %s", strerror(errno));
	return mse_instance_launch(inst, boot, argv, err);
}
