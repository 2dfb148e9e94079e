/* SPDX-License-Identifier: Apache-2.0 */
#include "codeprovider/deploy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "codeprovider/appverify.h"
#include "codeprovider/apptest.h"
#include "codeprovider/packager.h"
#include "codeprovider/provision.h"
#include "codeprovider/reverify.h"
#include "common/file.h"
#include "common/hex.h"
#include "config/project.h"
#include "config/requirements.h"
#include "operator/instance.h"
#include "operator/spawn.h"
#include "operator/cspawn.h"
#include "operator/roll.h"
#include "codeprovider/coordclient.h"

static const char *const step_names[] = {"",       "check", "package", "spawn", "evidence",
					  "verify", "seal",  "run",     "test"};

const char *mse_deploy_step_name(enum mse_deploy_step s)
{
	return (unsigned)s < sizeof(step_names) / sizeof(step_names[0]) ? step_names[s] : "?";
}

struct run {
	const struct mse_deploy_opts *o;
	enum mse_deploy_step step;
};

static void emit(struct run *r, enum mse_deploy_event_kind kind, const struct mse_err *err,
		 const char *fmt, ...) MSE_PRINTF(4, 5);

static void emit(struct run *r, enum mse_deploy_event_kind kind, const struct mse_err *err,
		 const char *fmt, ...)
{
	struct mse_deploy_event ev = {.kind = kind, .step = r->step, .err = err};
	char text[2048];
	va_list ap;

	if (!r->o->progress)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ev.text = text;
	r->o->progress(r->o->progress_ctx, &ev);
}

static void begin(struct run *r, enum mse_deploy_step s, const char *what)
{
	r->step = s;
	emit(r, MSE_DEPLOY_EV_STEP, NULL, "%s", what);
}

/* Copies the enclave's log (it may hold what the app printed: mode 0600). */
static int copy_log(const char *src, const char *dst)
{
	uint8_t *data = NULL;
	size_t len;
	int rc;

	if (mse_file_read(src, 64u << 20, &data, &len, NULL) != 0)
		return -1;
	rc = mse_file_write_atomic(dst, data, len, 0600, NULL);
	free(data);
	return rc;
}

/*
 * The instances of one deployment: NAME, then NAME.2, NAME.3, ... — each
 * --replace starts the next generation beside the running one. *gen
 * receives the highest generation found (0: none, 1: NAME itself), names
 * (up to max) the instances found.
 */
static int generation_of(const char *base, const char *name)
{
	size_t n = strlen(base);
	char *end;
	long g;

	if (strcmp(name, base) == 0)
		return 1;
	if (strncmp(name, base, n) != 0 || name[n] != '.' || name[n + 1] < '1' || name[n + 1] > '9')
		return 0;
	g = strtol(name + n + 1, &end, 10);
	return *end || g < 2 || g > 1000000 ? 0 : (int)g;
}

static int find_generations(const char *base, int *gen, char found[][MSE_INSTANCE_NAME_MAX + 1],
			    size_t max, size_t *n_found, struct mse_err *err)
{
	char **names = NULL;
	size_t count = 0;

	*gen = 0;
	*n_found = 0;
	if (mse_instance_list(&names, &count, err) != 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		int g = generation_of(base, names[i]);

		if (!g)
			continue;
		if (g > *gen)
			*gen = g;
		if (*n_found < max)
			snprintf(found[(*n_found)++], MSE_INSTANCE_NAME_MAX + 1, "%s", names[i]);
	}
	mse_instance_names_free(names, count);
	return 0;
}

/*
 * A new directory of this run's own: package.<time>, or package.<time>.N
 * when that exists (another deploy in the same second). mkdir either
 * creates it or fails, so the directory is ours alone and only it may be
 * removed on failure — never one another run made.
 */
static int own_package_dir(const char *work, char *out, size_t size, struct mse_err *err)
{
	long long t = (long long)time(NULL);

	for (int i = 0; i < 1000; i++) {
		int n = i ? snprintf(out, size, "%s/package.%lld.%d", work, t, i)
			  : snprintf(out, size, "%s/package.%lld", work, t);

		if (n < 0 || (size_t)n >= size)
			return mse_err_set(err, "%s: path too long", work);
		if (mkdir(out, 0700) == 0)
			return 0;
		if (errno != EEXIST)
			return mse_err_field(err, out, "cannot create: %s", strerror(errno));
	}
	return mse_err_set(err, "%s: cannot find a free package directory name", work);
}

/* Copies a small file atomically (the trusted certificate, the evidence). */
static int install_copy(const char *src, const char *dst, mode_t mode, struct mse_err *err)
{
	uint8_t *data = NULL;
	size_t len;
	int rc;

	if (mse_file_read(src, 16u << 20, &data, &len, err) != 0)
		return -1;
	rc = mse_file_write_atomic(dst, data, len, mode, err);
	free(data);
	return rc;
}

/* What `mse verify NAME` checks a restarted instance against (codeprovider/reverify.h). */
static void record_deployment(struct run *r, const char *project_dir,
			      const struct mse_deploy_result *res, const char *evdir,
			      const char *verdir)
{
	struct mse_reverify_record rec = {0};
	struct mse_err e = {0};

	snprintf(rec.name, sizeof(rec.name), "%s", res->name);
	snprintf(rec.uuid, sizeof(rec.uuid), "%s", res->uuid);
	snprintf(rec.package, sizeof(rec.package), "%s", res->package_path);
	snprintf(rec.evidence_dir, sizeof(rec.evidence_dir), "%.4000s", evdir);
	snprintf(rec.verified_dir, sizeof(rec.verified_dir), "%.4000s", verdir);
	rec.simulation = res->simulation;
	if (mse_reverify_record(project_dir, &rec, &e) != 0) {
		char m[2048];

		emit(r, MSE_DEPLOY_EV_DETAIL, NULL, "could not record the deployment ('mse verify %s' "
		     "will not work): %s", res->name, mse_err_str(&e, m, sizeof(m)));
	}
}

static void announce_tests(void *ctx, const char *cmd, const char *url)
{
	emit(ctx, MSE_DEPLOY_EV_DETAIL, NULL, "running '%s' against %s", cmd, url);
}

/* ---- the coordinator flow (replicas > 0) ----------------------------------- */

#define MAX_REPLICAS 64

static void roll_said(void *ctx, const char *text)
{
	emit(ctx, MSE_DEPLOY_EV_DETAIL, NULL, "%s", text);
}

/* A coordinator this run started and that never got the owner's manifest: it goes. */
static void drop_coordinator(struct run *r, struct mse_instance *ci)
{
	emit(r, MSE_DEPLOY_EV_CLEANUP, NULL, "stopping and removing the coordinator %s this run "
	     "started (nothing was uploaded to it)", ci->name);
	if (mse_instance_stop(ci, 5000, NULL) != 0 || mse_instance_remove(ci, NULL) != 0)
		emit(r, MSE_DEPLOY_EV_CLEANUP, NULL, "could not clean up %s", ci->dir);
}

/*
 * SGX (sgx): the coordinator and the replicas under Gramine, signed with
 * o->signer_key; the coordinator's expected MRENCLAVE recomputed with
 * gramine-sgx-sign from the installed binary and the owner key (as `mse
 * coordinator measure --sgx`), verified with the PCCS's collateral; the
 * manifest accepts the replicas' SGX MRENCLAVE recomputed from the package
 * (as `mse coordinator manifest --sgx`), and the MRSIGNER of the signer key
 * the owner holds. With o->accept_simulation_quotes (the tests' Gramine
 * stand-in) this machine's simulation root is trusted by the owner and, by
 * --trust-sim-root in their measured argv, by the coordinator and replicas.
 */
static int deploy_replicas(struct run *r, const struct mse_deploy_opts *o,
			   const struct mse_project *proj, const char *name, const char *work,
			   struct mse_deploy_result *res, struct mse_err *err)
{
	char owner[PATH_MAX + 32], pub_hex[65], cname[MSE_INSTANCE_NAME_MAX + 1], bin[PATH_MAX],
		cdir[PATH_MAX + 32], pin[PATH_MAX + 64], manifest[PATH_MAX + 64], mre_hex[65],
		secrets[PATH_MAX + 64], tosel[PATH_MAX + 64], *json = NULL, *st = NULL,
		*ca = NULL, did[65] = "", gramine[128] = "", *sim_root = NULL;
	const char *dns[2];
	uint8_t pk[32], mre[32];
	struct mse_instance ci;
	struct mse_coordclient_manifest_opts mo;
	struct mse_coordclient_conn conn;
	size_t len = 0;
	uint64_t seq = 1;
	unsigned i;
	int rc = -1, sgx = o->sgx || mse_instance_sgx_device(), started = 0,
	    sim_quotes = !sgx || o->accept_simulation_quotes;

	if (o->replicas > MAX_REPLICAS)
		return mse_err_field(err, "--replicas", "expected 1..%d, got %u", MAX_REPLICAS,
				     o->replicas);
	if (o->mrenclave)
		return mse_err_field(err, "--mrenclave", "goes with a single enclave: with --replicas "
				     "the replicas' MRENCLAVE is recomputed from the package");
	begin(r, MSE_DEPLOY_SPAWN, sgx ? "the coordinator (SGX, Gramine)"
				       : "the coordinator (SIMULATION — not confidential)");
	if (sgx && o->accept_simulation_quotes) {
		if (mse_coordclient_sim_root_hex(&sim_root, err) != 0)
			return -1;
		emit(r, MSE_DEPLOY_EV_DETAIL, NULL, "UNSAFE --accept-simulation-quotes: the coordinator "
		     "and the replicas trust this machine's simulation root (measured: "
		     "--trust-sim-root)");
	}
	/* The owner's key, kept with the project (never given to the operator). */
	snprintf(owner, sizeof(owner), "%s/owner", work);
	snprintf(cdir, sizeof(cdir), "%s/owner.key", work);
	if (!mse_file_exists(cdir)) {
		if (mse_coordclient_keygen(owner, err) != 0)
			goto out;
		emit(r, MSE_DEPLOY_EV_DETAIL, NULL, "new owner key %s (keep it: it governs the coordinator)",
		     cdir);
	}
	snprintf(cdir, sizeof(cdir), "%s/owner.pub", work);
	if (mse_coordclient_load_pub(cdir, pk, err) != 0 ||
	    mse_hex_encode(pub_hex, sizeof(pub_hex), pk, 32) != 0)
		goto out;
	if (snprintf(cname, sizeof(cname), "%s-coordinator", name) >= (int)sizeof(cname)) {
		mse_err_field(err, "name", "too long for \"%s-coordinator\"", name);
		goto out;
	}
	if (mse_instance_load(&ci, cname, NULL) == 0 && strcmp(ci.role, "coordinator") == 0) {
		if ((ci.mode == MSE_MODE_SGX) != sgx) {
			mse_err_set(err, "%s runs %s, this deploy is %s: remove it first ('mse stop %s "
					 "--remove'; its sealed state, CA and app key go with it)",
				    cname, ci.mode == MSE_MODE_SGX ? "on SGX" : "in simulation",
				    sgx ? "on SGX" : "in simulation", cname);
			goto out;
		}
		if (!mse_instance_alive(&ci)) {
			emit(r, MSE_DEPLOY_EV_DETAIL, NULL, "restarting %s (its sealed state is kept)", cname);
			if (mse_instance_relaunch(&ci, err) != 0)
				goto out;
			for (i = 0; i < 300 && mse_instance_probe(&ci, NULL, 0) != MSE_STATUS_RUNNING; i++)
				usleep(100000);
		} else {
			emit(r, MSE_DEPLOY_EV_DETAIL, NULL, "reusing %s", cname);
		}
	} else {
		struct mse_cspawn_opts so = {.name = cname, .host = "127.0.0.1", .owner_key = pub_hex,
					     .sgx = sgx, .signer_key = o->signer_key,
					     .pccs_url = o->pccs_url, .sim_root_hex = sim_root};

		if (mse_cspawn_coordinator(&so, &ci, err) != 0)
			goto out;
		started = 1;
	}
	snprintf(res->coordinator, sizeof(res->coordinator), "127.0.0.1:%u", (unsigned)ci.port);
	emit(r, MSE_DEPLOY_EV_DETAIL, NULL, "%s listens on %s", cname, res->coordinator);

	/* Verify it: quote, TCB, and the MRENCLAVE of the release binary with OUR key,
	 * computed here (SGX: with gramine-sgx-sign), never what the enclave says. */
	begin(r, MSE_DEPLOY_VERIFY, "the coordinator's quote and MRENCLAVE (binary + owner key)");
	if (mse_cspawn_coordinator_path(bin, sizeof(bin), err) != 0 ||
	    (sgx ? mse_coordclient_measure_sgx(bin, pk, sim_root, mre, gramine, sizeof(gramine), err)
		 : mse_coordclient_measure(bin, pk, mre, err)) != 0 ||
	    mse_hex_encode(mre_hex, sizeof(mre_hex), mre, 32) != 0)
		goto out;
	snprintf(res->measured_from, sizeof(res->measured_from), "%s%s%s: %s with owner key %s",
		 sgx ? "gramine-sgx-sign (" : "the simulation measurement v2",
		 gramine, sgx ? ")" : "", bin, pub_hex);
	emit(r, MSE_DEPLOY_EV_DETAIL, NULL, "expected MRENCLAVE %s from %s", mre_hex,
	     res->measured_from);
	snprintf(cdir, sizeof(cdir), "%s/coordinator", work);
	snprintf(pin, sizeof(pin), "%s/ratls.pem", cdir);
	if (mse_file_mkdirs(cdir, 0700, err) != 0 ||
	    mse_coordclient_verify(res->coordinator, mre, sim_quotes, sgx, o->pccs_url, pin, err) != 0)
		goto out;
	memcpy(res->mrenclave, mre, 32);
	snprintf(res->mrenclave_hex, sizeof(res->mrenclave_hex), "%s", mre_hex);
	res->simulation = sim_quotes;
	res->sgx = sgx;
	emit(r, MSE_DEPLOY_EV_DETAIL, NULL, "coordinator MRENCLAVE %s%s", mre_hex,
	     !sgx ? " (SIMULATION)" : sim_quotes ? " (simulation quotes accepted: not confidential)"
						 : " (SGX)");

	/* The manifest: this package's replicas, sealed to the coordinator, signed by us. */
	begin(r, MSE_DEPLOY_SEAL, "the manifest: identities, policy, secrets sealed to the coordinator");
	memset(&conn, 0, sizeof(conn));
	conn.url = res->coordinator;
	conn.pin = pin;
	if (mse_coordclient_get(&conn, "/status", &st, &len, err) != 0)
		goto out;
	{
		json_t *j = json_loads(st, 0, NULL);
		const char *d = NULL;
		json_int_t q = 0;

		if (j && json_unpack(j, "{s:s,s:I}", "deployment_id", &d, "seq", &q) == 0) {
			snprintf(did, sizeof(did), "%s", d);
			seq = (uint64_t)q + 1;
		}
		json_decref(j);
	}
	memset(&mo, 0, sizeof(mo));
	snprintf(secrets, sizeof(secrets), "%s/secrets.json", proj->dir);
	snprintf(tosel, sizeof(tosel), "%s/secrets_to_seal.json", proj->dir);
	dns[0] = o->san ? o->san : "localhost";
	dns[1] = "127.0.0.1";
	mo.package = res->package_path;
	mo.code_key = res->key_path;
	mo.secrets = mse_file_exists(secrets) ? secrets : NULL;
	mo.secrets_to_seal = mse_file_exists(tosel) ? tosel : NULL;
	mo.coordinator_cert = pin;
	mo.deployment_id = did[0] ? did : NULL;
	mo.seq = seq;
	mo.dns = dns;
	mo.n_dns = strcmp(dns[0], dns[1]) ? 2 : 1;
	mo.size_mb = o->size_mb;
	mo.allow_simulation = sim_quotes;
	if (sgx) {
		/* The SGX replicas' MRENCLAVE (one for all), recomputed from the package;
		 * and, the owner holding the signer key, its MRSIGNER with these ISV values. */
		mo.no_sim_identity = 1;
		mo.sgx_identity = 1;
		mo.sgx_isvprodid = o->isvprodid;
		mo.sgx_isvsvn = o->isvsvn;
		mo.sgx_sim_root_hex = sim_root;
		mo.signer_key = o->signer_key;
		mo.isvprodid = (uint16_t)(o->isvprodid ? o->isvprodid : 1);
		mo.min_isvsvn = (uint16_t)(o->isvsvn ? o->isvsvn : 1);
	}
	if (mse_coordclient_manifest(&mo, &json, &len, err) != 0)
		goto out;
	snprintf(manifest, sizeof(manifest), "%s/manifest.json", cdir);
	if (mse_file_write_atomic(manifest, json, len, MSE_MODE_SECRET, err) != 0)
		goto out;
	if (sgx) {
		json_t *j = json_loads(json, 0, NULL);
		json_t *id;
		size_t k;

		json_array_foreach(json_object_get(j, "identities"), k, id) {
			if (json_object_get(id, "mrenclave"))
				emit(r, MSE_DEPLOY_EV_DETAIL, NULL, "replicas' MRENCLAVE %s (gramine-sgx-sign "
				     "on the package)", json_string_value(json_object_get(id, "mrenclave")));
			else
				emit(r, MSE_DEPLOY_EV_DETAIL, NULL, "replicas' MRSIGNER %s, ISVPRODID %d, "
				     "ISVSVN >= %d (the signer key %s)",
				     json_string_value(json_object_get(id, "mrsigner")),
				     (int)json_integer_value(json_object_get(id, "isvprodid")),
				     (int)json_integer_value(json_object_get(id, "min_isvsvn")),
				     o->signer_key);
		}
		json_decref(j);
	}
	begin(r, MSE_DEPLOY_RUN, "signing and uploading the manifest, fetching the CA");
	free(st);
	st = NULL;
	snprintf(owner, sizeof(owner), "%s/owner.key", work);
	if (mse_coordclient_set(&conn, manifest, owner, &st, err) != 0)
		goto out;
	started = 0; /* it holds the owner's manifest now: it stays */
	emit(r, MSE_DEPLOY_EV_DETAIL, NULL, "coordinator: %s", st);
	if (mse_coordclient_get(&conn, "/ca", &ca, &len, err) != 0)
		goto out;
	snprintf(res->ca_path, sizeof(res->ca_path), "%s/ca.pem", work);
	if (mse_file_write_atomic(res->ca_path, ca, len, MSE_MODE_PUBLIC, err) != 0)
		goto out;

	/* The replicas: each attests to the coordinator by itself. Replicas of an
	 * earlier deploy are replaced one at a time, each new one healthy before
	 * an old one stops (operator/roll.h). */
	begin(r, MSE_DEPLOY_TEST, "starting the replicas, waiting for their health checks");
	{
		struct mse_roll_opts ro = {.family = name, .coordinator = res->coordinator,
					   .coordinator_mrenclave = mre_hex,
					   .package = res->package_path, .replicas = o->replicas,
					   .san = dns[0], .size_mb = o->size_mb, .progress = roll_said,
					   .progress_ctx = r, .sgx = sgx, .signer_key = o->signer_key,
					   .pccs_url = o->pccs_url, .sim_root_hex = sim_root,
					   .isvprodid = o->isvprodid, .isvsvn = o->isvsvn,
					   .metrics = o->metrics};
		struct mse_roll_result rr;

		if (mse_roll_replicas(&ro, &rr, err) != 0)
			goto out;
		for (i = 0; i < rr.n && i < MAX_REPLICAS; i++) {
			res->replica_ports[i] = rr.ports[i];
			snprintf(res->replica_metrics[i], sizeof(res->replica_metrics[i]), "%s",
				 rr.metrics[i]);
			emit(r, MSE_DEPLOY_EV_DETAIL, NULL, "%s: https://%s:%u/ answers through the CA",
			     rr.names[i], dns[0], (unsigned)rr.ports[i]);
			if (rr.metrics[i][0])
				emit(r, MSE_DEPLOY_EV_DETAIL, NULL, "%s: metrics on http://%s/metrics",
				     rr.names[i], rr.metrics[i]);
		}
		res->replicas = rr.n;
	}
	snprintf(res->host, sizeof(res->host), "127.0.0.1");
	snprintf(res->san, sizeof(res->san), "%s", dns[0]);
	res->port = res->replica_ports[0];
	rc = 0;
out:
	if (rc != 0 && started)
		drop_coordinator(r, &ci);
	free(json);
	free(st);
	free(ca);
	free(sim_root);
	return rc;
}

int mse_deploy(const struct mse_deploy_opts *o, struct mse_deploy_result *res,
	       struct mse_err *err)
{
	const char *project_dir = o->project_dir ? o->project_dir : ".";
	int sgx = o->sgx || mse_instance_sgx_device();
	char toml[PATH_MAX], work[PATH_MAX + 16], pkgout[PATH_MAX + 32], evdir[PATH_MAX + 64],
		verdir[PATH_MAX + 64], sealed[PATH_MAX + 64], secrets[PATH_MAX + 64],
		tosel[PATH_MAX + 64], detail[1100], inst_name[MSE_INSTANCE_NAME_MAX + 1],
		old[8][MSE_INSTANCE_NAME_MAX + 1], path[PATH_MAX + 64];
	struct mse_spawn_opts so = {.san = o->san ? o->san : "localhost",
				    .size_mb = o->size_mb ? o->size_mb : 4096,
				    .host = "127.0.0.1",
				    .port = o->port,
				    .days = o->days ? o->days : 30,
				    .timeout_s = 120,
				    .mode = -1};
	struct mse_spawn_result sr;
	struct mse_packager_opts pko = {0};
	struct mse_packager_result pkr;
	struct mse_appverify_opts vo = {0};
	struct mse_appverify_result vr;
	struct mse_provision_opts po = {0};
	struct mse_project *proj = NULL;
	struct mse_errlist errs;
	struct run r = {.o = o};
	const char *name;
	int spawned = 0, packaged = 0, gen = 0, unhealthy = 0;
	size_t n_old = 0;
	enum mse_instance_status health = MSE_STATUS_INITIALIZING;

	memset(res, 0, sizeof(*res));
	mse_err_clear(err);
	inst_name[0] = 0;

	/* 1. check */
	begin(&r, MSE_DEPLOY_CHECK, "mse.toml and requirements");
	snprintf(toml, sizeof(toml), "%s/mse.toml", project_dir);
	mse_errlist_init(&errs);
	if (mse_project_load(toml, NULL, &proj, &errs) != 0) {
		/* Every error of the file to the caller's list; err holds the first. */
		for (size_t i = 0; o->errs && i < mse_errlist_count(&errs); i++)
			mse_errlist_add(o->errs, &errs.items[i]);
		if (mse_errlist_count(&errs) > 0)
			*err = errs.items[0];
		else
			mse_err_set(err, "%s: cannot load", toml);
		mse_errlist_free(&errs);
		goto fail;
	}
	mse_errlist_free(&errs);
	name = o->name ? o->name : proj->name;
	snprintf(res->name, sizeof(res->name), "%s", name);
	snprintf(work, sizeof(work), "%s/.mse", proj->dir);
	snprintf(secrets, sizeof(secrets), "%s/requirements.txt", proj->code_dir);
	if (mse_requirements_check(secrets, NULL, err) != 0)
		goto fail;
	if (proj->cloud && proj->cloud->ssl) {
		so.certificate = proj->cloud->ssl->certificate;
		so.san = proj->cloud->ssl->domain_name;
		po.ssl_key_path = proj->cloud->ssl->private_key;
	}
	/*
	 * The deployment's instances are NAME, NAME.2, NAME.3...: --replace
	 * starts the next one beside the running one (another name, another
	 * port) and stops the old one only once the new one passed.
	 */
	if (mse_instance_name_ok(name, err) != 0 ||
	    find_generations(name, &gen, old, sizeof(old) / sizeof(old[0]), &n_old, err) != 0)
		goto fail;
	if (n_old && !o->replace) {
		mse_err_set(err, "%s is already deployed (instance %s); 'mse deploy --replace' starts the new "
				 "version beside it and switches only when it passes",
			    name, old[n_old - 1]);
		goto fail;
	}
	if (gen == 0)
		snprintf(inst_name, sizeof(inst_name), "%s", name);
	else if (snprintf(inst_name, sizeof(inst_name), "%s.%d", name, gen + 1) >= (int)sizeof(inst_name)) {
		mse_err_field(err, "name", "\"%s.%d\" is longer than %d characters", name, gen + 1,
			      MSE_INSTANCE_NAME_MAX);
		goto fail;
	}
	for (size_t i = 0; i < n_old; i++) {
		struct mse_instance oi;

		if (o->port && mse_instance_load(&oi, old[i], NULL) == 0 && oi.port == o->port &&
		    mse_instance_alive(&oi)) {
			mse_err_field(err, "port", "%u is the port of the running %s: the new version starts "
						   "beside it, on another port; omit --port",
				      (unsigned)o->port, old[i]);
			goto fail;
		}
	}
	snprintf(res->name, sizeof(res->name), "%s", inst_name);
	if (n_old)
		emit(&r, MSE_DEPLOY_EV_DETAIL, NULL, "%s keeps running; the new version starts beside it as %s",
		     old[n_old - 1], inst_name);

	/* 2. package, in-process, into a fresh directory of this run's own. */
	begin(&r, MSE_DEPLOY_PACKAGE, "encrypting the code");
	if (mse_file_mkdirs(work, 0700, err) != 0 || own_package_dir(work, pkgout, sizeof(pkgout), err) != 0)
		goto fail;
	packaged = 1;
	pko.config = toml;
	pko.output_dir = pkgout;
	if (mse_packager_build(&pko, &pkr, NULL, err) != 0)
		goto fail;
	snprintf(res->package_path, sizeof(res->package_path), "%s", pkr.pkg.path);
	snprintf(res->key_path, sizeof(res->key_path), "%s", pkr.key_path);
	emit(&r, MSE_DEPLOY_EV_DETAIL, NULL, "%s", res->package_path);

	if (o->replicas > 0) {
		if (deploy_replicas(&r, o, proj, name, work, res, err) != 0)
			goto fail;
		mse_project_free(proj);
		return 0;
	}

	/* 3-4. spawn and evidence */
	begin(&r, MSE_DEPLOY_SPAWN,
	      sgx ? "starting the enclave (SGX, Gramine)"
		  : "starting the enclave (SIMULATION — not confidential: no SGX here)");
	/* this run's evidence and certificate: installed in .mse/ only once it passed */
	snprintf(evdir, sizeof(evdir), "%s/evidence", pkgout);
	so.name = inst_name;
	so.no_access_log = o->no_access_log;
	so.threads = o->threads;
	so.threads_max = o->threads_max;
	so.metrics = o->metrics;
	so.package = res->package_path;
	so.output_dir = evdir;
	so.mode = sgx ? MSE_MODE_SGX : MSE_MODE_SIMULATION;
	so.signer_key = o->signer_key;
	so.pccs_url = o->pccs_url;
	so.isvprodid = o->isvprodid;
	so.isvsvn = o->isvsvn;
	if (mse_spawn(&so, &sr, err) != 0)
		goto fail;
	spawned = 1;
	snprintf(res->host, sizeof(res->host), "%s", sr.inst.host);
	snprintf(res->san, sizeof(res->san), "%s", sr.inst.san);
	snprintf(res->uuid, sizeof(res->uuid), "%s", sr.inst.uuid);
	res->port = sr.inst.port;
	snprintf(res->metrics, sizeof(res->metrics), "%s", sr.inst.metrics);
	snprintf(res->evidence_path, sizeof(res->evidence_path), "%s", sr.evidence_path);
	emit(&r, MSE_DEPLOY_EV_DETAIL, NULL, "%s listens on %s:%u, uuid %s", inst_name, sr.inst.host,
	     (unsigned)sr.inst.port, sr.inst.uuid);
	if (sr.inst.metrics[0])
		emit(&r, MSE_DEPLOY_EV_DETAIL, NULL, "metrics on http://%s/metrics", sr.inst.metrics);
	begin(&r, MSE_DEPLOY_EVIDENCE, sr.evidence_path);

	/* 5. verify: nothing secret has left yet. */
	begin(&r, MSE_DEPLOY_VERIFY, "quote, collateral, TCB status, MRENCLAVE, certificate binding");
	snprintf(verdir, sizeof(verdir), "%s/verified", pkgout);
	vo.package = res->package_path;
	vo.evidence = sr.evidence_path;
	vo.output_dir = verdir;
	vo.allow_simulation = sgx ? o->accept_simulation_quotes : !mse_instance_sgx_device();
	/*
	 * SGX: the expected MRENCLAVE is the caller's, or recomputed by
	 * mse_appverify with Gramine from our own package and bootstrap; never
	 * what the instance recorded from the operator's SIGSTRUCT.
	 */
	vo.mrenclave = o->mrenclave;
	if (sgx) {
		/* The signer is the operator's; its public part is what MRSIGNER must be. */
		vo.signer_key = o->signer_key;
	}
	if (mse_appverify(&vo, &vr, err) != 0)
		goto fail;
	snprintf(res->measured_from, sizeof(res->measured_from), "%s", vr.measured_from);
	emit(&r, MSE_DEPLOY_EV_DETAIL, NULL, "expected MRENCLAVE from %s", vr.measured_from);
	/* The enclave we are about to provision is the one that was measured. */
	if (strcmp(vr.app_id, sr.inst.uuid) != 0) {
		mse_err_expect(err, "input_args.app_id", sr.inst.uuid, vr.app_id);
		goto fail;
	}
	memcpy(res->mrenclave, vr.vr.report.mr_enclave, 32);
	if (mse_hex_encode(res->mrenclave_hex, sizeof(res->mrenclave_hex), res->mrenclave, 32) != 0)
		res->mrenclave_hex[0] = 0;
	res->tcb_status = vr.vr.status;
	snprintf(res->advisories, sizeof(res->advisories), "%s", vr.vr.advisories);
	res->simulation = (vr.vr.flags & MSE_VERIFY_F_SIMULATION) != 0;
	snprintf(res->ratls_path, sizeof(res->ratls_path), "%s", vr.ratls_path);
	emit(&r, MSE_DEPLOY_EV_DETAIL, NULL, "MRENCLAVE %s", res->mrenclave_hex);
	emit(&r, MSE_DEPLOY_EV_DETAIL, NULL, "TCB status %s%s%s", mse_tcb_status_name(res->tcb_status),
	     res->advisories[0] ? ", advisories " : "", res->advisories);
	if (res->simulation)
		emit(&r, MSE_DEPLOY_EV_DETAIL, NULL, "SIMULATION — not confidential");

	/* 6. seal: the code key travels inside, so the operator never sees it. */
	begin(&r, MSE_DEPLOY_SEAL, "secrets_to_seal.json + code key, to the enclave's X25519 key");
	snprintf(tosel, sizeof(tosel), "%s/secrets_to_seal.json", proj->dir);
	snprintf(sealed, sizeof(sealed), "%s/sealed_secrets.bin", pkgout);
	if (mse_provision_seal(tosel, res->key_path, vr.enclave_pk, sealed, err) != 0)
		goto fail;

	/* 7. run */
	begin(&r, MSE_DEPLOY_RUN, "provisioning through the pinned certificate");
	snprintf(secrets, sizeof(secrets), "%s/secrets.json", proj->dir);
	po.ratls_pem = res->ratls_path;
	po.secrets_path = mse_file_exists(secrets) ? secrets : NULL;
	po.sealed_path = sealed;
	if (mse_provision(&sr.inst, &po, err) != 0)
		goto fail;

	/* 8. health, then the app's tests */
	begin(&r, MSE_DEPLOY_TEST, "waiting for the health check");
	/* Healthy means a 2xx; an app that answers something else for 10 s is not starting up. */
	for (int i = 0; i < 600 && unhealthy < 100; i++) {
		health = mse_instance_probe(&sr.inst, detail, sizeof(detail));
		if (health == MSE_STATUS_RUNNING || health == MSE_STATUS_ON_ERROR)
			break;
		unhealthy = health == MSE_STATUS_UNHEALTHY ? unhealthy + 1 : 0;
		usleep(100 * 1000);
	}
	if (health == MSE_STATUS_ON_ERROR) {
		mse_err_set(err, "the enclave exited before the app answered its health check (the end of "
				 "its log is above)");
		goto fail;
	}
	if (health != MSE_STATUS_RUNNING) {
		mse_err_set(err, "the app is not healthy: %s: %s", mse_instance_status_name(health), detail);
		goto fail;
	}
	if (!o->no_tests) {
		char e_sec[PATH_MAX + 160], e_sealed[PATH_MAX + 160];
		char *tenv[3] = {NULL, NULL, NULL};
		struct mse_apptest_opts ao = {.ratls_pem = res->ratls_path, .env_extra = tenv,
					      .announce = announce_tests, .announce_ctx = &r};
		int status, k = 0;

		/* The scaffold's tests compare answers with the secrets they were given. */
		if (po.secrets_path) {
			snprintf(e_sec, sizeof(e_sec), "TEST_SECRET_JSON=%s", secrets);
			tenv[k++] = e_sec;
		}
		if (mse_file_exists(tosel)) {
			snprintf(e_sealed, sizeof(e_sealed), "TEST_SEALED_SECRET_JSON=%s", tosel);
			tenv[k++] = e_sealed;
		}
		if (mse_apptest_run(&sr.inst, &ao, &status, err) != 0)
			goto fail;
		if (status != 0) {
			mse_err_set(err, "the app's tests failed (exit status %d)", status);
			goto fail;
		}
		emit(&r, MSE_DEPLOY_EV_DETAIL, NULL, "%s: tests passed", inst_name);
	}
	/* It passed: its certificate and evidence become the project's, then the switch. */
	snprintf(path, sizeof(path), "%s/verified", work);
	if (mse_file_mkdirs(path, 0755, err) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/verified/ratls.pem", work);
	if (install_copy(res->ratls_path, path, 0644, err) != 0)
		goto fail;
	snprintf(res->ratls_path, sizeof(res->ratls_path), "%.4000s", path);
	snprintf(path, sizeof(path), "%s/evidence", work);
	if (mse_file_mkdirs(path, 0755, err) == 0) {
		snprintf(path, sizeof(path), "%s/evidence/evidence.json", work);
		if (install_copy(res->evidence_path, path, 0644, NULL) == 0)
			snprintf(res->evidence_path, sizeof(res->evidence_path), "%.4000s", path);
	}
	for (size_t i = 0; i < n_old; i++) {
		struct mse_instance oi;

		if (mse_instance_load(&oi, old[i], NULL) != 0)
			continue;
		emit(&r, MSE_DEPLOY_EV_DETAIL, NULL, "%s passed: stopping and removing %s (port %u)",
		     inst_name, old[i], (unsigned)oi.port);
		if (mse_instance_stop(&oi, 10000, NULL) != 0 || mse_instance_remove(&oi, NULL) != 0)
			emit(&r, MSE_DEPLOY_EV_DETAIL, NULL, "could not remove %s (%s): remove it with "
							     "'mse stop %s --remove'",
			     old[i], oi.dir, old[i]);
		snprintf(res->replaced[res->n_replaced++], sizeof(res->replaced[0]), "%.64s", old[i]);
	}
	snprintf(res->url, sizeof(res->url), "https://%s:%u%s", sr.inst.san, (unsigned)sr.inst.port,
		 proj->healthcheck_endpoint);
	/* the directories 'mse verify NAME' refreshes: the project's, installed above */
	snprintf(evdir, sizeof(evdir), "%s/evidence", work);
	snprintf(verdir, sizeof(verdir), "%s/verified", work);
	record_deployment(&r, proj->dir, res, evdir, verdir);
	mse_project_free(proj);
	return 0;
fail:
	res->failed_step = r.step;
	emit(&r, MSE_DEPLOY_EV_FAILED, err, "step %d (%s) failed", (int)r.step,
	     mse_deploy_step_name(r.step));
	if (spawned) {
		/*
		 * Its log goes with the state directory: say how it ends (the app's
		 * traceback, e.g. a SyntaxError) and keep a copy for the user.
		 */
		if (r.step >= MSE_DEPLOY_RUN) /* let it finish writing what it died of */
			usleep(300 * 1000);
		mse_instance_log_tail(sr.inst.log_path, 12, res->log_tail, sizeof(res->log_tail));
		if (res->log_tail[0])
			emit(&r, MSE_DEPLOY_EV_LOG, NULL, "%s", res->log_tail);
		snprintf(res->log_copy, sizeof(res->log_copy), "%s/%s-bootstrap.log", work, inst_name);
		if (copy_log(sr.inst.log_path, res->log_copy) == 0)
			emit(&r, MSE_DEPLOY_EV_CLEANUP, NULL, "the enclave's whole log is kept in %s",
			     res->log_copy);
		else
			res->log_copy[0] = 0;
		emit(&r, MSE_DEPLOY_EV_CLEANUP, NULL, "stopping and removing the new instance %s", inst_name);
		if (mse_instance_stop(&sr.inst, 5000, NULL) != 0 || mse_instance_remove(&sr.inst, NULL) != 0)
			emit(&r, MSE_DEPLOY_EV_CLEANUP, NULL, "could not clean up %s", sr.inst.dir);
	}
	for (size_t i = 0; o->replace && i < n_old; i++) {
		struct mse_instance oi;

		if (mse_instance_load(&oi, old[i], NULL) == 0)
			emit(&r, MSE_DEPLOY_EV_CLEANUP, NULL, "%s is unchanged: %s on %s:%u", old[i],
			     mse_instance_alive(&oi) ? "still running" : "not running", oi.host,
			     (unsigned)oi.port);
	}
	/* This run's package and code key belong to no enclave now: only its own directory goes. */
	if (packaged && mse_file_remove_tree(pkgout, NULL) != 0)
		emit(&r, MSE_DEPLOY_EV_CLEANUP, NULL, "could not remove %s", pkgout);
	if (packaged) {
		res->package_path[0] = 0;
		res->key_path[0] = 0;
	}
	mse_project_free(proj);
	return -1;
}
