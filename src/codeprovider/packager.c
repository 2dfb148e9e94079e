/* SPDX-License-Identifier: Apache-2.0 */
#include "codeprovider/packager.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/file.h"
#include "config/ignore.h"
#include "config/project.h"
#include "crypto/codefile.h"
#include "crypto/nonces.h"

/* Tests are shipped clear; bytecode caches are not worth shipping. */
static int tests_filter(void *ctx, const char *rel, int is_dir, struct mse_err *err)
{
	const char *base = strrchr(rel, '/');
	size_t n;

	(void)ctx;
	(void)err;
	base = base ? base + 1 : rel;
	n = strlen(base);
	if (is_dir)
		return strcmp(base, "__pycache__") != 0 && strcmp(base, ".pytest_cache") != 0;
	return !(n > 4 && strcmp(base + n - 4, ".pyc") == 0);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int mse_packager_build(const struct mse_packager_opts *o, struct mse_packager_result *res,
		       struct mse_errlist *errs, struct mse_err *err)
{
	struct mse_project_opts popts = {0};
	struct mse_project *proj = NULL;
	struct mse_errlist own;
	struct mse_ignore *ign = NULL;
	struct mse_ignore_files files = {0};
	struct mse_nonces *nonces = NULL;
	struct mse_package_spec spec = {0};
	uint8_t key[MSE_CODEFILE_KEY_BYTES];
	const char *tests = o->tests_dir;
	char app_spec[300];
	int rc = -1, key_written = 0;

	memset(res, 0, sizeof(*res));
	if (!o->config || !o->output_dir)
		return mse_err_set(err, "packager: a configuration and an output directory are needed");

	/* The configuration: name, python_application, healthcheck, directories. */
	mse_errlist_init(&own);
	popts.code_dir = o->code_dir;
	if (mse_project_load(o->config, &popts, &proj, &own) != 0) {
		if (mse_errlist_count(&own) > 0)
			*err = own.items[0];
		else
			mse_err_set(err, "%s: cannot load", o->config);
		for (size_t i = 0; errs && i < mse_errlist_count(&own); i++)
			mse_errlist_add(errs, &own.items[i]);
		mse_errlist_free(&own);
		return -1;
	}
	mse_errlist_free(&own);
	snprintf(res->name, sizeof(res->name), "%s", proj->name);
	if (!tests && !o->code_dir && is_dir(proj->tests_dir))
		tests = proj->tests_dir;
	if (tests && !is_dir(tests)) {
		mse_err_field(err, tests, "tests directory not found");
		goto out;
	}
	/* The files .mseignore keeps (its default list if the code has none). */
	if (mse_ignore_load(proj->code_dir, &ign, err) != 0 ||
	    mse_ignore_list(proj->code_dir, ign, &files, err) != 0)
		goto out;
	if (o->nonces_path && mse_nonces_load(o->nonces_path, &nonces, err) != 0)
		goto out;

	spec.ns = now_ns();
	if (o->key_path) {
		if (mse_codefile_load_key(o->key_path, key, err) != 0)
			goto out;
		snprintf(res->key_path, sizeof(res->key_path), "%s", o->key_path);
	} else {
		/* The key first: a package whose key could not be saved is useless. */
		randombytes_buf(key, sizeof(key));
		if (mse_file_mkdirs(o->output_dir, 0755, err) != 0 ||
		    mse_package_check_name(proj->name, err) != 0)
			goto out;
		if (snprintf(res->key_path, sizeof(res->key_path), "%s/package_%s_%llu.key",
			     o->output_dir, proj->name,
			     (unsigned long long)spec.ns) >= (int)sizeof(res->key_path)) {
			mse_err_set(err, "%s: output path too long", o->output_dir);
			goto out;
		}
		if (mse_file_write_new(res->key_path, key, sizeof(key), MSE_MODE_SECRET, err) != 0)
			goto out;
		key_written = 1;
	}
	spec.code_dir = proj->code_dir;
	spec.config_path = proj->path;
	spec.tests_dir = tests;
	spec.output_dir = o->output_dir;
	spec.name = proj->name;
	/*
	 * An explicit app_interface travels with the app spec ("main:app@asgi"):
	 * package.json, the bootstrap's argument and so the measurement carry it.
	 */
	if (proj->app_interface && strcmp(proj->app_interface, "auto") != 0) {
		if (snprintf(app_spec, sizeof(app_spec), "%s@%s", proj->python_application,
			     proj->app_interface) >= (int)sizeof(app_spec)) {
			mse_err_field(err, "python_application", "too long with app_interface");
			goto out;
		}
		spec.python_application = app_spec;
	} else {
		spec.python_application = proj->python_application;
	}
	spec.healthcheck_endpoint = proj->healthcheck_endpoint;
	spec.key = key;
	spec.nonces = nonces;
	spec.files = (const char *const *)files.paths;
	spec.n_files = files.n;
	spec.tests_filter = tests_filter;
	spec.progress = o->progress;
	spec.progress_ctx = o->progress_ctx;
	if (mse_package_build(&spec, &res->pkg, err) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0 && key_written) {
		unlink(res->key_path);
		res->key_path[0] = 0;
	}
	sodium_memzero(key, sizeof(key));
	mse_nonces_free(nonces);
	mse_ignore_files_free(&files);
	mse_ignore_free(ign);
	mse_project_free(proj);
	return rc;
}
