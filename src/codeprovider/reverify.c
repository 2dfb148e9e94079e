/* SPDX-License-Identifier: Apache-2.0 */
#include "codeprovider/reverify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "codeprovider/appverify.h"
#include "common/file.h"
#include "common/hex.h"
#include "operator/instance.h"
#include "operator/spawn.h"

#define RECORD_MAX (64u << 10)

static int record_path(const char *project_dir, const char *name, char *out, size_t n,
		       struct mse_err *err)
{
	if (snprintf(out, n, "%s/.mse/deployments/%s.json", project_dir, name) >= (int)n)
		return mse_err_field(err, "name", "path too long");
	return 0;
}

int mse_reverify_record(const char *project_dir, const struct mse_reverify_record *r,
			struct mse_err *err)
{
	char path[PATH_MAX + 64], dir[PATH_MAX + 32];
	json_t *o;
	char *text;
	int rc;

	if (mse_instance_name_ok(r->name, err) != 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s/.mse/deployments", project_dir);
	if (record_path(project_dir, r->name, path, sizeof(path), err) != 0 ||
	    mse_file_mkdirs(dir, 0700, err) != 0)
		return -1;
	o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:b}", "format_version", 1, "name", r->name,
		      "uuid", r->uuid, "package", r->package, "evidence_dir", r->evidence_dir,
		      "verified_dir", r->verified_dir, "simulation", r->simulation);
	text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (!text)
		return mse_err_set(err, "out of memory");
	rc = mse_file_write_atomic(path, text, strlen(text), 0600, err);
	free(text);
	return rc;
}

static int get_str(json_t *o, const char *key, char *out, size_t n, const char *path,
		   struct mse_err *err)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (!s || !s[0] || strlen(s) >= n) {
		mse_err_clear(err);
		mse_err_file(err, path);
		return mse_err_expect(err, key, "a non-empty string", s ? "too long or empty" : "absent");
	}
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int load_record(const char *path, struct mse_reverify_record *r, struct mse_err *err)
{
	uint8_t *data = NULL;
	size_t len;
	json_error_t je;
	json_t *o;
	int rc = -1;

	if (mse_file_read(path, RECORD_MAX, &data, &len, err) != 0)
		return -1;
	o = json_loadb((const char *)data, len, 0, &je);
	free(data);
	if (!o || !json_is_object(o)) {
		mse_err_at(err, path, o ? 1 : je.line, o ? 1 : je.column, "expected a JSON object%s%s",
			   o ? "" : ": ", o ? "" : je.text);
		json_decref(o);
		return -1;
	}
	if (get_str(o, "name", r->name, sizeof(r->name), path, err) == 0 &&
	    get_str(o, "uuid", r->uuid, sizeof(r->uuid), path, err) == 0 &&
	    get_str(o, "package", r->package, sizeof(r->package), path, err) == 0 &&
	    get_str(o, "evidence_dir", r->evidence_dir, sizeof(r->evidence_dir), path, err) == 0 &&
	    get_str(o, "verified_dir", r->verified_dir, sizeof(r->verified_dir), path, err) == 0) {
		r->simulation = json_is_true(json_object_get(o, "simulation"));
		rc = 0;
	}
	json_decref(o);
	return rc;
}

int mse_reverify(const struct mse_reverify_opts *o, struct mse_reverify_result *res,
		 struct mse_err *err)
{
	const char *project_dir = o->project_dir ? o->project_dir : ".";
	struct mse_appverify_opts vo = {0};
	struct mse_appverify_result vr;
	struct mse_instance inst;
	char pem[PATH_MAX];

	memset(res, 0, sizeof(*res));
	mse_err_clear(err);
	mse_err_step(err, "record");
	if (mse_instance_name_ok(o->name, err) != 0 ||
	    record_path(project_dir, o->name, res->record_path, sizeof(res->record_path), err) != 0)
		return -1;
	if (!mse_file_exists(res->record_path)) {
		mse_err_file(err, res->record_path);
		return mse_err_set(err,
				   "no deployment of %s recorded here: run 'mse verify %s' in the "
				   "project directory it was deployed from (or give --project DIR)",
				   o->name, o->name);
	}
	if (load_record(res->record_path, &res->rec, err) != 0)
		return -1;
	if (strcmp(res->rec.name, o->name) != 0) {
		mse_err_file(err, res->record_path);
		return mse_err_expect(err, "name", o->name, res->rec.name);
	}

	mse_err_step(err, "evidence");
	if (mse_instance_load(&inst, o->name, err) != 0)
		return -1;
	if (!mse_instance_alive(&inst))
		return mse_err_set(err, "%s is not running (see 'mse status %s')", inst.name, inst.name);
	/* The recorded uuid is the one the deploy provisioned: the same enclave, restarted. */
	if (strcmp(inst.uuid, res->rec.uuid) != 0)
		return mse_err_expect(err, "uuid", res->rec.uuid, inst.uuid);
	if (mse_spawn_wait_ready(&inst, 30, err) != 0 ||
	    mse_spawn_write_evidence(&inst, res->rec.evidence_dir, NULL, NULL, res->evidence_path,
				     sizeof(res->evidence_path), pem, sizeof(pem), err) != 0)
		return -1;

	/* The same check as deploy's step 5, against the recorded package. */
	mse_err_step(err, NULL);
	vo.package = res->rec.package;
	vo.evidence = res->evidence_path;
	vo.output_dir = res->rec.verified_dir;
	vo.allow_simulation = res->rec.simulation && !mse_instance_sgx_device();
	if (mse_appverify(&vo, &vr, err) != 0)
		return -1;
	if (strcmp(vr.app_id, res->rec.uuid) != 0) {
		mse_err_step(err, "measurement");
		return mse_err_expect(err, "input_args.app_id", res->rec.uuid, vr.app_id);
	}
	snprintf(res->ratls_path, sizeof(res->ratls_path), "%s", vr.ratls_path);
	if (mse_hex_encode(res->mrenclave_hex, sizeof(res->mrenclave_hex), vr.vr.report.mr_enclave,
			   32) != 0)
		res->mrenclave_hex[0] = 0;
	res->tcb_status = vr.vr.status;
	snprintf(res->advisories, sizeof(res->advisories), "%s", vr.vr.advisories);
	res->simulation = (vr.vr.flags & MSE_VERIFY_F_SIMULATION) != 0;
	return 0;
}
