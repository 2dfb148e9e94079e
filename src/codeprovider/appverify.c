#include "codeprovider/appverify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "attest/collateral.h"
#include "attest/ratls.h"
#include "attest/sim.h"
#include "attest/simmeasure.h"
#include "common/file.h"
#include "common/hex.h"
#include "crypto/package.h"
#include "operator/instance.h"

/* MSE's input_args, kept as strings owned by the JSON document. */
static int read_input_args(const uint8_t *json, size_t len, const char *path,
			   struct mse_sim_args *a, json_t **doc, struct mse_err *err)
{
	json_error_t jerr;
	json_t *ia, *v;

	*doc = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!*doc)
		return mse_err_at(err, path, jerr.line, jerr.column, "%s", jerr.text);
	ia = json_object_get(*doc, "input_args");
	if (!json_is_object(ia))
		return mse_err_at(err, path, 0, 0, "input_args: expected an object");
	memset(a, 0, sizeof(*a));
#define STR(field, key)                                                                  \
	do {                                                                             \
		v = json_object_get(ia, key);                                            \
		if (v && !json_is_string(v))                                             \
			return mse_err_at(err, path, 0, 0, "input_args.%s: expected a string", key); \
		a->field = v ? json_string_value(v) : NULL;                              \
	} while (0)
	STR(subject, "subject");
	STR(san, "subject_alternative_name");
	STR(app_id, "app_id");
	STR(application, "application");
#undef STR
	v = json_object_get(ia, "expiration_date");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
		return mse_err_at(err, path, 0, 0, "input_args.expiration_date: expected UNIX seconds");
	a->expiration = v ? json_integer_value(v) : 0;
	v = json_object_get(ia, "size");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
		return mse_err_at(err, path, 0, 0, "input_args.size: expected megabytes");
	a->size = v ? (uint64_t)json_integer_value(v) : 0;
	if (!a->app_id || !a->application)
		return mse_err_at(err, path, 0, 0, "input_args: app_id and application are required");
	return 0;
}

static void rmtmp(const char *dir)
{
	if (mse_file_remove_tree(dir, NULL) != 0)
		fprintf(stderr, "warning: cannot remove %s\n", dir);
}

int mse_appverify(const struct mse_appverify_opts *o, struct mse_appverify_result *res,
		  struct mse_err *err)
{
	char tmp[] = "/tmp/mse-verify.XXXXXX", pkgdir[64], app_tar[96], bootstrap[PATH_MAX];
	char sim_dir[PATH_MAX], path[PATH_MAX + 32], exp_hex[65], got_hex[65];
	struct mse_collateral_evidence ev = {0};
	struct mse_ratls cert = {0};
	struct mse_verify_policy pol = {0};
	struct mse_package_info info;
	struct mse_sim_args args;
	uint8_t *evjson = NULL, *root = NULL, *signer = NULL, boot_sha[32];
	size_t evlen, root_len = 0, signer_len = 0;
	json_t *doc = NULL;
	int rc = -1, have_tmp = 0;

	memset(res, 0, sizeof(*res));
	if (mse_file_read(o->evidence, 16u << 20, &evjson, &evlen, err) != 0)
		return -1;
	mse_err_step(err, "parse");
	if (mse_collateral_parse_evidence(&ev, evjson, evlen, err) != 0) {
		mse_err_file(err, o->evidence);
		goto out;
	}
	if (read_input_args(evjson, evlen, o->evidence, &args, &doc, err) != 0)
		goto out;
	snprintf(res->app_id, sizeof(res->app_id), "%s", args.app_id);
	if (!ev.ratls_pem.p) {
		mse_err_at(err, o->evidence, 0, 0, "ratls_certificate: missing");
		goto out;
	}
	if (mse_ratls_parse(&cert, ev.ratls_pem.p, ev.ratls_pem.len, err) != 0)
		goto out;
	/* The package: its digest is checked before anything in it is used. */
	mse_err_step(err, "package");
	if (!mkdtemp(tmp)) {
		mse_err_set(err, "cannot create a temporary directory");
		goto out;
	}
	have_tmp = 1;
	snprintf(pkgdir, sizeof(pkgdir), "%s/pkg", tmp);
	if (mse_package_extract(o->package, pkgdir, &info, err) != 0)
		goto out;
	if (strcmp(info.python_application, args.application) != 0) {
		mse_err_expect(err, "input_args.application", info.python_application, args.application);
		goto out;
	}
	snprintf(app_tar, sizeof(app_tar), "%s/app.tar", pkgdir);
	mse_err_step(err, "measurement");
	if (o->mrenclave) {
		memcpy(res->expected_mrenclave, o->mrenclave, 32);
		res->mrenclave_from = "given with --mrenclave";
	} else {
		if (!o->allow_simulation) {
			mse_err_set(err, "the expected MRENCLAVE is needed: give it (--mrenclave HEX, from "
					 "gramine-sgx-sign) or, for a simulation enclave, allow simulation");
			goto out;
		}
		if (o->bootstrap)
			snprintf(bootstrap, sizeof(bootstrap), "%s", o->bootstrap);
		else if (mse_instance_installed_bootstrap(bootstrap, sizeof(bootstrap), err) != 0)
			goto out;
		if (mse_simmeasure_file_sha256(bootstrap, boot_sha, err) != 0 ||
		    mse_simmeasure_compute(boot_sha, &args, app_tar, res->expected_mrenclave, err) != 0)
			goto out;
		res->mrenclave_from = "recomputed from the package, the bootstrap and the input arguments";
	}
	/* The signer and the simulation root: the code provider's own, never the evidence's. */
	if (o->allow_simulation || !o->signer_key) {
		if (mse_sim_dir(sim_dir, sizeof(sim_dir), err) != 0)
			goto out;
	}
	if (o->signer_key)
		snprintf(path, sizeof(path), "%s", o->signer_key);
	else
		snprintf(path, sizeof(path), "%s/signer.pem", sim_dir);
	if (mse_file_read(path, 1 << 20, &signer, &signer_len, err) != 0 ||
	    mse_verify_mrsigner_from_key(signer, signer_len, res->expected_mrsigner, err) != 0) {
		mse_err_prefix(err, "expected signer");
		goto out;
	}
	res->mrsigner_from = o->signer_key ? "from --signer-key" : "your simulation signer";
	if (o->allow_simulation) {
		if (o->sim_root)
			snprintf(path, sizeof(path), "%s", o->sim_root);
		else
			snprintf(path, sizeof(path), "%s/root_ca.der", sim_dir);
		if (mse_file_read(path, 1 << 20, &root, &root_len, err) != 0) {
			mse_err_prefix(err, "simulation root (run 'mse sim init' first)");
			goto out;
		}
		pol.allow_simulation = 1;
		pol.sim_root_der = root;
		pol.sim_root_len = root_len;
	}
	pol.mrenclave = res->expected_mrenclave;
	pol.mrsigner = res->expected_mrsigner;
	pol.accept_status = o->accept_status;
	pol.accept_expired_collateral = o->accept_expired_collateral;
	pol.now = o->now;
	mse_err_step(err, NULL);
	if (mse_verify_ratls(&cert, &ev.coll, &pol, NULL, &res->vr, err) != 0) {
		if (strcmp(err->step, "measurement") == 0 || strcmp(err->step, "enclave") == 0) {
			if (mse_hex_encode(exp_hex, sizeof(exp_hex), res->expected_mrenclave, 32) == 0 &&
			    mse_hex_encode(got_hex, sizeof(got_hex), res->vr.report.mr_enclave, 32) == 0 &&
			    memcmp(res->expected_mrenclave, res->vr.report.mr_enclave, 32) != 0)
				mse_err_set(err,
					    "MRENCLAVE: expected %s (recomputed from the package, the "
					    "bootstrap and the input arguments), got %s: the enclave does not "
					    "run this package",
					    exp_hex, got_hex);
		}
		goto out;
	}
	memcpy(res->enclave_pk, res->vr.report.report_data + 32, 32);
	if (o->output_dir) {
		char *pem = NULL;
		size_t pem_len;

		if (mse_file_mkdirs(o->output_dir, 0755, err) != 0 ||
		    mse_ratls_pem(&cert, &pem, &pem_len, err) != 0)
			goto out;
		snprintf(res->ratls_path, sizeof(res->ratls_path), "%.4000s/ratls.pem", o->output_dir);
		rc = mse_file_write_atomic(res->ratls_path, pem, pem_len, 0644, err);
		free(pem);
		if (rc != 0) {
			res->ratls_path[0] = 0;
			goto out;
		}
	}
	rc = 0;
out:
	if (have_tmp)
		rmtmp(tmp);
	json_decref(doc);
	mse_ratls_free(&cert);
	mse_collateral_evidence_free(&ev);
	free(evjson);
	free(root);
	free(signer);
	return rc;
}
