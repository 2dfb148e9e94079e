/* SPDX-License-Identifier: Apache-2.0 */
#include "codeprovider/apptest.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "config/toml.h"
#include "crypto/archive.h"
#include "net/client.h"
#include "operator/proc.h"

/* tests_cmd from the package's mse.toml (default "pytest"). */
static int read_tests_cmd(const char *toml_path, char *out, size_t size, struct mse_err *err)
{
	struct mse_toml *doc = NULL;
	uint8_t *text = NULL;
	size_t len;
	const char *s;
	int rc = -1;

	snprintf(out, size, "pytest");
	if (mse_file_read(toml_path, 1 << 20, &text, &len, err) != 0)
		return -1;
	if (mse_toml_parse((const char *)text, len, toml_path, &doc, err) != 0)
		goto out;
	if (mse_toml_get_string(mse_toml_table_get(mse_toml_root(doc), "tests_cmd"), &s, &len) == 0)
		snprintf(out, size, "%.*s", (int)len, s);
	rc = 0;
out:
	mse_toml_free(doc);
	free(text);
	return rc;
}

/* GET the health-check path through the pinned certificate: a 2xx, or an error saying what came. */
static int health_check(const struct mse_instance *inst, const char *pem, struct mse_err *err)
{
	const char *path = inst->healthcheck[0] ? inst->healthcheck : "/";
	struct mse_client_opts co = {
		.host = inst->host[0] && strcmp(inst->host, "0.0.0.0") != 0 ? inst->host : "127.0.0.1",
		.port = inst->port,
		.server_name = inst->san,
		.timeout_ms = 10000,
		.max_body = 1 << 20,
	};
	struct mse_client_resp r;
	long st;

	if (strcmp(inst->cert_mode, "no-ssl") == 0)
		co.plain_http = 1;
	else if (strcmp(inst->cert_mode, "certificate") == 0)
		co.ca_bundle = pem;
	else
		co.pin_pem = pem;
	if (mse_client_request(&co, "GET", path, NULL, NULL, 0, &r, err) != 0) {
		mse_err_prefix(err, "health check %s", path);
		return -1;
	}
	st = r.status;
	if (strcmp(r.mse_status, "Waiting") == 0) {
		mse_client_resp_free(&r);
		return mse_err_set(err, "the enclave still waits for its secrets (mse run %s): the tests "
					"were not run",
				   inst->name);
	}
	mse_client_resp_free(&r);
	if (!mse_instance_healthy_status(st))
		return mse_err_set(err, "the health check %s answered HTTP %ld: healthy means a 2xx answer; "
					"the tests were not run",
				   path, st);
	return 0;
}

int mse_apptest_run(const struct mse_instance *inst, const struct mse_apptest_opts *o,
		    int *status, struct mse_err *err)
{
	char path[PATH_MAX + 32], cmd[1100], tmp[] = "/tmp/mse-test.XXXXXX", url[400];
	char e_url[500], e_ca[PATH_MAX + 64], e_ca2[PATH_MAX + 64];
	char *env[32];
	size_t k = 0;
	int rc = -1;

	*status = 1;
	snprintf(path, sizeof(path), "%s/package/mse.toml", inst->dir);
	if (read_tests_cmd(path, cmd, sizeof(cmd), err) != 0)
		return -1;
	if (health_check(inst, o->ratls_pem, err) != 0)
		return -1;
	if (!mkdtemp(tmp))
		return mse_err_set(err, "cannot create a temporary directory");
	snprintf(path, sizeof(path), "%s/package/tests.tar", inst->dir);
	snprintf(e_url, sizeof(e_url), "%s/tests", tmp);
	if (mse_tar_extract(path, e_url, NULL, 0644, err) != 0)
		goto out;
	snprintf(url, sizeof(url), "%s://%s:%u", strcmp(inst->cert_mode, "no-ssl") ? "https" : "http",
		 inst->san, (unsigned)inst->port);
	snprintf(e_url, sizeof(e_url), "TEST_REMOTE_URL=%s", url);
	snprintf(e_ca, sizeof(e_ca), "REQUESTS_CA_BUNDLE=%s", o->ratls_pem);
	snprintf(e_ca2, sizeof(e_ca2), "TEST_CA_BUNDLE=%s", o->ratls_pem);
	env[k++] = e_url;
	env[k++] = e_ca;
	env[k++] = e_ca2;
	env[k++] = "PYTHONDONTWRITEBYTECODE=1";
	for (size_t i = 0; o->env_extra && o->env_extra[i] && k + 1 < sizeof(env) / sizeof(env[0]); i++)
		env[k++] = o->env_extra[i];
	env[k] = NULL;
	{
		char *sh[] = {"/bin/sh", "-c", cmd, NULL};

		snprintf(path, sizeof(path), "%s/tests", tmp);
		if (o->announce)
			o->announce(o->announce_ctx, cmd, url);
		if (mse_proc_run(path, sh, env, status, err) != 0)
			goto out;
	}
	rc = 0;
out:
	if (mse_file_remove_tree(tmp, NULL) != 0)
		fprintf(stderr, "warning: cannot remove %s\n", tmp);
	return rc;
}
