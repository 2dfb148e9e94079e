/*
 * mse deploy — the main job for one person on one machine:
 * package -> spawn -> evidence -> verify -> seal -> run -> health -> tests.
 * Every secret leaves only after verification, through the pinned
 * certificate; any failure stops what was started.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "attest/appverify.h"
#include "cli/cli.h"
#include "common/file.h"
#include "common/hex.h"
#include "config/project.h"
#include "config/requirements.h"
#include "node/instance.h"
#include "node/proc.h"
#include "node/provision.h"
#include "node/spawn.h"

static const char usage[] =
	"Usage: mse deploy [--project DIR] [options]\n"
	"\n"
	"Deploy the app of DIR (default: the current directory, holding mse.toml) in one go:\n"
	"  1. check     load mse.toml, check requirements.txt against the installed Python\n"
	"  2. package   encrypt the code (new code key, kept in DIR/.mse/, mode 0600)\n"
	"  3. spawn     start the enclave (mse-bootstrap) with a fresh uuid\n"
	"  4. evidence  collect its RA-TLS certificate and collateral\n"
	"  5. verify    recompute MRENCLAVE from the package, verify quote, collateral,\n"
	"               TCB status and certificate binding; save the trusted ratls.pem\n"
	"  6. seal      seal secrets_to_seal.json, with the code key inside, to the\n"
	"               enclave's key: the operator never sees the code key\n"
	"  7. run       send uuid, secrets.json and the sealed secrets, pinned to ratls.pem\n"
	"  8. test      wait for the health check, then run the app's tests_cmd\n"
	"Nothing secret leaves before step 5 succeeds. On any failure the enclave is\n"
	"stopped and removed (its log kept in DIR/.mse/NAME-bootstrap.log), this run's\n"
	"package and code key are deleted, and the step and reason are printed.\n"
	"\n"
	"On a machine without SGX the enclave is simulated: SIMULATION — not\n"
	"confidential, and said so. With [cloud.ssl] in mse.toml the app is served\n"
	"with the owner's certificate.\n"
	"\n"
	"Options:\n"
	"  --project DIR    the project (default .)\n"
	"  --name NAME      instance name (default: the app's name)\n"
	"  --san NAME       certificate name (default localhost)\n"
	"  --port N         port (default: a free one)\n"
	"  --size MB        enclave size (default 4096)\n"
	"  --days N         certificate validity (default 30)\n"
	"  --replace        stop and remove an existing instance of the same name first\n"
	"  --no-tests       skip running tests_cmd\n"
	"  -h, --help       show this help\n";

struct step {
	int n;
	const char *name;
};

static void step(struct step *s, const char *name, const char *what)
{
	s->n++;
	s->name = name;
	printf("[%d/8] %-9s %s\n", s->n, name, what);
	fflush(stdout);
}

/* The package_*.tar and package_*.key that `mse package` wrote into dir. */
static int find_outputs(const char *dir, char *tar, size_t tar_size, char *key, size_t key_size)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	tar[0] = key[0] = 0;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);

		if (strncmp(de->d_name, "package_", 8) != 0)
			continue;
		if (n > 4 && strcmp(de->d_name + n - 4, ".tar") == 0)
			snprintf(tar, tar_size, "%s/%s", dir, de->d_name);
		else if (n > 4 && strcmp(de->d_name + n - 4, ".key") == 0)
			snprintf(key, key_size, "%s/%s", dir, de->d_name);
	}
	closedir(d);
	return tar[0] && key[0] ? 0 : -1;
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

int cmd_deploy(int argc, char **argv)
{
	enum { O_PROJECT = 256, O_NAME, O_SAN, O_PORT, O_SIZE, O_DAYS, O_REPLACE, O_NOTESTS };
	static const struct option opts[] = {{"project", required_argument, NULL, O_PROJECT},
					     {"name", required_argument, NULL, O_NAME},
					     {"san", required_argument, NULL, O_SAN},
					     {"port", required_argument, NULL, O_PORT},
					     {"size", required_argument, NULL, O_SIZE},
					     {"days", required_argument, NULL, O_DAYS},
					     {"replace", no_argument, NULL, O_REPLACE},
					     {"no-tests", no_argument, NULL, O_NOTESTS},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	const char *project_dir = ".", *name = NULL;
	char toml[PATH_MAX], work[PATH_MAX + 16], pkgout[PATH_MAX + 32], tar[PATH_MAX + 300],
		key[PATH_MAX + 300], evdir[PATH_MAX + 32], verdir[PATH_MAX + 32], sealed[PATH_MAX + 64],
		secrets[PATH_MAX + 64], tosel[PATH_MAX + 64], exe[PATH_MAX], hex[65], detail[1100];
	struct mse_spawn_opts so = {.san = "localhost", .size_mb = 4096, .host = "127.0.0.1",
				    .days = 30, .timeout_s = 120, .mode = -1};
	struct mse_spawn_result sr;
	struct mse_appverify_opts vo = {0};
	struct mse_appverify_result vr;
	struct mse_provision_opts po = {0};
	struct mse_project *proj = NULL;
	struct mse_errlist errs;
	struct mse_err err = {0};
	struct step st = {0};
	int replace = 0, no_tests = 0, spawned = 0, packaged = 0, c, status;
	enum mse_instance_status health = MSE_STATUS_INITIALIZING;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end = NULL;
		long v = 0;

		if (c == O_PORT || c == O_SIZE || c == O_DAYS) {
			v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || v > (c == O_PORT ? 65535 : 1 << 20))
				return cli_usage_error("deploy", "expected a positive number, got '%s'", optarg);
		}
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		case O_PROJECT: project_dir = optarg; break;
		case O_NAME: name = optarg; break;
		case O_SAN: so.san = optarg; break;
		case O_PORT: so.port = (uint16_t)v; break;
		case O_SIZE: so.size_mb = (uint32_t)v; break;
		case O_DAYS: so.days = (int)v; break;
		case O_REPLACE: replace = 1; break;
		case O_NOTESTS: no_tests = 1; break;
		default:
			return cli_usage_error("deploy", "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("deploy", "unexpected argument '%s'", argv[optind]);
	if (mse_proc_self_exe(exe, sizeof(exe)) != 0)
		return cli_failf("deploy", "cannot find the mse executable");

	/* 1. check */
	step(&st, "check", "mse.toml and requirements");
	snprintf(toml, sizeof(toml), "%s/mse.toml", project_dir);
	mse_errlist_init(&errs);
	if (mse_project_load(toml, NULL, &proj, &errs) != 0) {
		mse_errlist_print(&errs, "mse deploy", stderr);
		mse_errlist_free(&errs);
		return MSE_EXIT_FAIL;
	}
	mse_errlist_free(&errs);
	name = name ? name : proj->name;
	snprintf(work, sizeof(work), "%s/.mse", proj->dir);
	snprintf(secrets, sizeof(secrets), "%s/requirements.txt", proj->code_dir);
	if (mse_requirements_check(secrets, NULL, &err) != 0)
		goto fail;
	if (proj->cloud && proj->cloud->ssl) {
		so.certificate = proj->cloud->ssl->certificate;
		so.san = proj->cloud->ssl->domain_name;
		po.ssl_key_path = proj->cloud->ssl->private_key;
	}
	if (replace) {
		struct mse_instance old;

		if (mse_instance_load(&old, name, NULL) == 0 &&
		    (mse_instance_stop(&old, 10000, &err) != 0 || mse_instance_remove(&old, &err) != 0))
			goto fail;
	}

	/* 2. package, by the same code as `mse package`, into a fresh directory. */
	step(&st, "package", "encrypting the code");
	if (mse_file_mkdirs(work, 0700, &err) != 0)
		goto fail;
	snprintf(pkgout, sizeof(pkgout), "%s/package.%lld", work, (long long)time(NULL));
	if (mse_file_remove_tree(pkgout, &err) != 0)
		goto fail;
	packaged = 1;
	{
		char *pargv[] = {exe, "package", "--project", (char *)project_dir, "--output", pkgout,
				 "--quiet", NULL};

		if (mse_proc_run(NULL, pargv, NULL, &status, &err) != 0)
			goto fail;
		if (status != 0) {
			mse_err_set(&err, "mse package failed (exit %d)", status);
			goto fail;
		}
	}
	if (find_outputs(pkgout, tar, sizeof(tar), key, sizeof(key)) != 0) {
		mse_err_set(&err, "mse package left no package and key in %s", pkgout);
		goto fail;
	}
	printf("          %s\n", tar);

	/* 3-4. spawn and evidence */
	step(&st, "spawn", mse_instance_sgx_device() ? "starting the enclave (SGX)"
						      : "starting the enclave (SIMULATION — not confidential: no SGX here)");
	snprintf(evdir, sizeof(evdir), "%s/evidence", work);
	so.name = name;
	so.package = tar;
	so.output_dir = evdir;
	if (mse_spawn(&so, &sr, &err) != 0)
		goto fail;
	spawned = 1;
	printf("          %s listens on %s:%u, uuid %s\n", name, sr.inst.host, (unsigned)sr.inst.port,
	       sr.inst.uuid);
	step(&st, "evidence", sr.evidence_path);

	/* 5. verify: nothing secret has left yet. */
	step(&st, "verify", "quote, collateral, TCB status, MRENCLAVE, certificate binding");
	snprintf(verdir, sizeof(verdir), "%s/verified", work);
	vo.package = tar;
	vo.evidence = sr.evidence_path;
	vo.output_dir = verdir;
	vo.allow_simulation = sr.inst.mode == MSE_MODE_SIMULATION && !mse_instance_sgx_device();
	if (mse_appverify(&vo, &vr, &err) != 0)
		goto fail;
	/* The enclave we are about to provision is the one that was measured. */
	if (strcmp(vr.app_id, sr.inst.uuid) != 0) {
		mse_err_expect(&err, "input_args.app_id", sr.inst.uuid, vr.app_id);
		goto fail;
	}
	if (mse_hex_encode(hex, sizeof(hex), vr.vr.report.mr_enclave, 32) != 0)
		hex[0] = 0;
	printf("          MRENCLAVE %s\n          TCB status %s%s%s\n", hex,
	       mse_tcb_status_name(vr.vr.status), vr.vr.advisories[0] ? ", advisories " : "",
	       vr.vr.advisories);
	if (vr.vr.flags & MSE_VERIFY_F_SIMULATION)
		printf("          SIMULATION — not confidential\n");

	/* 6. seal: the code key travels inside, so the operator never sees it. */
	step(&st, "seal", "secrets_to_seal.json + code key, to the enclave's X25519 key");
	snprintf(tosel, sizeof(tosel), "%s/secrets_to_seal.json", proj->dir);
	snprintf(sealed, sizeof(sealed), "%s/sealed_secrets.bin", work);
	if (mse_provision_seal(tosel, key, vr.enclave_pk, sealed, &err) != 0)
		goto fail;

	/* 7. run */
	step(&st, "run", "provisioning through the pinned certificate");
	snprintf(secrets, sizeof(secrets), "%s/secrets.json", proj->dir);
	po.ratls_pem = vr.ratls_path;
	po.secrets_path = mse_file_exists(secrets) ? secrets : NULL;
	po.sealed_path = sealed;
	if (mse_provision(&sr.inst, &po, &err) != 0)
		goto fail;

	/* 8. health, then the app's tests */
	step(&st, "test", "waiting for the health check");
	for (int i = 0; i < 600; i++) {
		health = mse_instance_probe(&sr.inst, detail, sizeof(detail));
		if (health == MSE_STATUS_RUNNING || health == MSE_STATUS_ON_ERROR)
			break;
		usleep(100 * 1000);
	}
	if (health != MSE_STATUS_RUNNING) {
		mse_err_set(&err, "the app did not become healthy: %s: %s",
			    mse_instance_status_name(health), detail);
		goto fail;
	}
	if (!no_tests) {
		char *targv[] = {exe, "test", (char *)name, "--ratls", vr.ratls_path, NULL};
		char e_sec[PATH_MAX + 160], e_sealed[PATH_MAX + 160];
		char *tenv[3] = {NULL, NULL, NULL};
		int k = 0;

		/* The scaffold's tests compare answers with the secrets they were given. */
		if (po.secrets_path) {
			snprintf(e_sec, sizeof(e_sec), "TEST_SECRET_JSON=%s", secrets);
			tenv[k++] = e_sec;
		}
		if (mse_file_exists(tosel)) {
			snprintf(e_sealed, sizeof(e_sealed), "TEST_SEALED_SECRET_JSON=%s", tosel);
			tenv[k++] = e_sealed;
		}
		if (mse_proc_run(NULL, targv, tenv, &status, &err) != 0)
			goto fail;
		if (status != 0) {
			mse_err_set(&err, "the app's tests failed (exit status %d)", status);
			goto fail;
		}
	}
	printf("\nDeployed %s%s\n", name,
	       sr.inst.mode == MSE_MODE_SIMULATION ? " (SIMULATION — not confidential)" : "");
	printf("  URL          https://%s:%u%s\n", sr.inst.san, (unsigned)sr.inst.port,
	       proj->healthcheck_endpoint);
	printf("  MRENCLAVE    %s\n", hex);
	printf("  TCB status   %s\n", mse_tcb_status_name(vr.vr.status));
	printf("  certificate  %s  (pin it: only this enclave holds its key)\n", vr.ratls_path);
	printf("  code key     %s  (keep it secret)\n", key);
	printf("Call it:\n  curl --cacert %s https://%s:%u%s\n", vr.ratls_path, sr.inst.san,
	       (unsigned)sr.inst.port, proj->healthcheck_endpoint);
	if (strcmp(sr.inst.san, "localhost") != 0)
		printf("  (add --resolve %s:%u:%s if the name does not resolve here)\n", sr.inst.san,
		       (unsigned)sr.inst.port, sr.inst.host);
	printf("Stop it with 'mse stop %s --remove'.\n", name);
	mse_project_free(proj);
	return MSE_EXIT_OK;
fail:
	fprintf(stderr, "mse deploy: step %d (%s) failed\n", st.n, st.name ? st.name : "?");
	cli_fail("deploy", &err);
	if (spawned) {
		/* Its log goes with the state directory: keep a copy for the user. */
		snprintf(sealed, sizeof(sealed), "%s/%s-bootstrap.log", work, name);
		if (copy_log(sr.inst.log_path, sealed) == 0)
			fprintf(stderr, "mse deploy: the enclave's log is in %s\n", sealed);
		fprintf(stderr, "mse deploy: stopping and removing %s\n", name);
		if (mse_instance_stop(&sr.inst, 5000, NULL) != 0 || mse_instance_remove(&sr.inst, NULL) != 0)
			fprintf(stderr, "mse deploy: could not clean up %s\n", sr.inst.dir);
	}
	/* This run's package and code key belong to no enclave now. */
	if (packaged && mse_file_remove_tree(pkgout, NULL) != 0)
		fprintf(stderr, "mse deploy: could not remove %s\n", pkgout);
	mse_project_free(proj);
	return MSE_EXIT_FAIL;
}
