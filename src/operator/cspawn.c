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

#include "attest/sim.h"
#include "common/file.h"
#include "crypto/archive.h"
#include "crypto/package.h"
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

int mse_cspawn_coordinator(const struct mse_cspawn_opts *o, struct mse_instance *inst,
			   struct mse_err *err)
{
	char exe[PATH_MAX], port[8], info[PATH_MAX + 32], src[PATH_MAX + 32], dst[PATH_MAX + 32];
	char *argv[16];
	int n = 0, created = 0;
	time_t end;

	memset(inst, 0, sizeof(*inst));
	if (mse_instance_locate(inst, o->name, err) != 0 ||
	    mse_cspawn_coordinator_path(exe, sizeof(exe), err) != 0 || ensure_sim(err) != 0)
		return -1;
	common_fields(o, inst);
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
	end = time(NULL) + (o->timeout_s > 0 ? o->timeout_s : 60);
	for (;;) {
		json_t *j = json_load_file(info, 0, NULL);
		json_int_t pid = 0;

		if (j && json_unpack(j, "{s:I}", "pid", &pid) == 0 && pid == inst->pid) {
			json_decref(j);
			break;
		}
		json_decref(j);
		if (!mse_instance_alive(inst)) {
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
	snprintf(src, sizeof(src), "%s/ratls.pem", inst->workspace);
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

int mse_cspawn_replica(const struct mse_cspawn_opts *o, struct mse_instance *inst,
		       struct mse_err *err)
{
	char boot[PATH_MAX], port[8], size[16], pkgdir[PATH_MAX + 16], app_tar[PATH_MAX + 32];
	struct mse_package_info info;
	char *argv[32];
	int n = 0;

	memset(inst, 0, sizeof(*inst));
	if (mse_instance_locate(inst, o->name, err) != 0 ||
	    mse_instance_bootstrap_path(boot, sizeof(boot), err) != 0 || ensure_sim(err) != 0)
		return -1;
	if (mse_package_inspect(o->package, &info, err) != 0)
		return -1;
	common_fields(o, inst);
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
	argv[n++] = "--simulation";
	argv[n++] = "--workspace";
	argv[n++] = inst->workspace;
	argv[n] = NULL;
	if (setenv("MSE_COORDINATOR", o->coordinator, 1) != 0)
		return mse_err_set(err, "setenv: %s", strerror(errno));
	return mse_instance_launch(inst, boot, argv, err);
}
