/* SPDX-License-Identifier: Apache-2.0 */
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
#include "operator/gramine.h"
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

/*
 * evidence.json's "gramine" object (SGX): what, beside the input arguments,
 * went into the manifest. Absent: not an SGX enclave launched by mse-c.
 */
static int read_gramine(json_t *doc, const char *path, const struct mse_sim_args *a,
			struct mse_manifest_opts *mo, const char **version, struct mse_err *err)
{
	json_t *g = json_object_get(doc, "gramine"), *v;
	json_int_t n;

	if (!g)
		return 1;
	if (!json_is_object(g))
		return mse_err_at(err, path, 0, 0, "gramine: expected an object");
	memset(mo, 0, sizeof(*mo));
#define GSTR(out, key)                                                                   \
	do {                                                                             \
		v = json_object_get(g, key);                                             \
		if (!json_is_string(v))                                                  \
			return mse_err_at(err, path, 0, 0, "gramine.%s: expected a string", key); \
		out = json_string_value(v);                                              \
	} while (0)
#define GINT(out, key, max)                                                              \
	do {                                                                             \
		v = json_object_get(g, key);                                             \
		if (!json_is_integer(v) || (n = json_integer_value(v)) < 0 || n > (max))  \
			return mse_err_at(err, path, 0, 0,                               \
					  "gramine.%s: expected an integer in [0, %d]", key, \
					  (int)(max));                                   \
		out = (unsigned)n;                                                       \
	} while (0)
	GSTR(*version, "version");
	GSTR(mo->args.host, "host");
	GINT(mo->args.port, "port", 65535);
	GINT(mo->args.threads, "threads", 1024);
	if (json_object_get(g, "threads_max")) /* absent in evidence of before --threads-max */
		GINT(mo->args.threads_max, "threads_max", 4096);
	if (json_object_get(g, "metrics")) /* only when the enclave was given --metrics */
		GSTR(mo->args.metrics, "metrics");
	GINT(mo->isvprodid, "isvprodid", 65535);
	GINT(mo->isvsvn, "isvsvn", 65535);
#undef GSTR
#undef GINT
	v = json_object_get(g, "no_ssl");
	if (!json_is_boolean(v))
		return mse_err_at(err, path, 0, 0, "gramine.no_ssl: expected true or false");
	mo->args.no_ssl = json_is_true(v);
	mo->args.application = a->application;
	mo->args.uuid = a->app_id;
	mo->args.subject = a->subject ? a->subject : "";
	mo->args.san = a->san ? a->san : "";
	mo->args.size_mb = (uint32_t)a->size;
	mo->args.expiration = a->expiration;
	mo->size_mb = (uint32_t)a->size;
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
	struct mse_manifest_opts mo;
	const char *ev_version = NULL;
	int rc = -1, have_tmp = 0, g;

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
	if (o->bootstrap)
		snprintf(bootstrap, sizeof(bootstrap), "%s", o->bootstrap);
	else if (mse_instance_installed_bootstrap(bootstrap, sizeof(bootstrap), err) != 0)
		goto out;
	g = read_gramine(doc, o->evidence, &args, &mo, &ev_version, err);
	if (g < 0)
		goto out;
	if (o->mrenclave) {
		memcpy(res->expected_mrenclave, o->mrenclave, 32);
		snprintf(res->measured_from, sizeof(res->measured_from), "--mrenclave");
	} else if (g == 0) {
		/* SGX: the same Gramine renders and signs the same manifest over our own inputs. */
		struct mse_gramine_version gv;

		if (mse_gramine_version(&gv, err) != 0) {
			mse_err_prefix(err, "cannot recompute MRENCLAVE (or give it with --mrenclave)");
			goto out;
		}
		if (strcmp(gv.text, ev_version) != 0) {
			mse_err_set(err, "cannot recompute MRENCLAVE: the enclave was signed with \"%s\", "
					 "this machine has \"%s\"; MRENCLAVE depends on Gramine's own "
					 "files, so recompute with the same version (or give the value "
					 "with --mrenclave)",
				    ev_version, gv.text);
			goto out;
		}
		mse_err_step(err, "measurement");
		if (mse_gramine_measure(bootstrap, app_tar, &mo, res->expected_mrenclave, err) != 0) {
			mse_err_prefix(err, "recomputing MRENCLAVE with gramine-sgx-sign");
			goto out;
		}
		snprintf(res->measured_from, sizeof(res->measured_from),
			 "gramine-sgx-sign (%.100s) over %.4000s, the package's app.tar, Python's standard "
			 "library and dist-packages, Gramine's runtime and the input arguments",
			 gv.text, bootstrap);
		res->sgx = 1;
	} else {
		if (!o->allow_simulation) {
			mse_err_set(err, "the expected MRENCLAVE is needed: give it (--mrenclave HEX, from "
					 "gramine-sgx-sign) or, for a simulation enclave, allow simulation");
			goto out;
		}
		if (mse_simmeasure_file_sha256(bootstrap, boot_sha, err) != 0 ||
		    mse_simmeasure_compute(boot_sha, &args, app_tar, res->expected_mrenclave, err) != 0)
			goto out;
		snprintf(res->measured_from, sizeof(res->measured_from),
			 "the simulation measurement of %.4000s, the package's app.tar and the input arguments",
			 bootstrap);
	}
	if (g == 0) {
		/* The ISV identity the manifest asked for is part of the policy. */
		pol.check_isvprodid = 1;
		pol.isvprodid = (uint16_t)mo.isvprodid;
		pol.check_min_isvsvn = 1;
		pol.min_isvsvn = (uint16_t)mo.isvsvn;
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
	if (mse_file_read(path, 1 << 20, &signer, &signer_len, err) != 0) {
		mse_err_prefix(err, "expected signer");
		goto out;
	}
	if (mse_verify_mrsigner_from_key(signer, signer_len, res->expected_mrsigner, err) != 0) {
		/* The operator's own private signer key (deploy on one machine) also names MRSIGNER. */
		struct mse_err e2 = {0};

		if (mse_gramine_check_signer(path, res->expected_mrsigner, &e2) != 0) {
			mse_err_prefix(err, "expected signer");
			goto out;
		}
		mse_err_clear(err);
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
			    memcmp(res->expected_mrenclave, res->vr.report.mr_enclave, 32) != 0) {
				mse_err_field(err, "mrenclave",
					      "the enclave does not run this package, or an input differs "
					      "(expected: from %s; docs/sgx.md: what must match): MRENCLAVE",
					      res->measured_from);
				mse_err_mismatch(err, exp_hex, got_hex);
			}
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
