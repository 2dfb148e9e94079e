/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse deploy — the main job for one person on one machine:
 * package -> spawn -> evidence -> verify -> seal -> run -> health -> tests.
 * The flow is mse_deploy() (src/codeprovider/deploy.h); this file parses
 * the options and prints its progress.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "codeprovider/deploy.h"
#include "common/hex.h"

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
	"Nothing secret leaves before step 5 succeeds. On any failure the new enclave is\n"
	"stopped and removed, the end of its log is printed (the app's traceback, e.g. a\n"
	"SyntaxError) and the whole log kept in DIR/.mse/INSTANCE-bootstrap.log; this\n"
	"run's own package directory and code key are deleted (never another one), and\n"
	"the step and reason are printed.\n"
	"\n"
	"Healthy means the health-check path answers a 2xx (not just any answer).\n"
	"\n"
	"Replacing a deployment: the instances of NAME are NAME, then NAME.2, NAME.3...\n"
	"'--replace' starts the new version beside the running one, as the next name,\n"
	"on another port (the URL printed at the end), and stops and removes the old one\n"
	"only once the new one passed verify, provisioning, the health check and the\n"
	"tests. If the new one fails, it is removed and the old one keeps running,\n"
	"untouched, under its name and port. Without --replace, deploying a name that\n"
	"is already deployed is refused.\n"
	"\n"
	"On a machine without SGX the enclave is simulated: SIMULATION — not\n"
	"confidential, and said so. With [cloud.ssl] in mse.toml the app is served\n"
	"with the owner's certificate.\n"
	"\n"
	"Options:\n"
	"  --project DIR    the project (default .)\n"
	"  --name NAME      instance name (default: the app's name)\n"
	"  --san NAME       certificate name (default localhost)\n"
	"  --port N         port (default: a free one; with --replace, not the old one's)\n"
	"  --size MB        enclave size (default 4096)\n"
	"  --days N         certificate validity (default 30)\n"
	"  --threads N      app server workers always running (as mse spawn)\n"
	"  --threads-max N  workers grow to N while all are blocked in handlers\n"
	"                   (default 128; 64 with SGX, measured into sgx.max_threads)\n"
	"  --metrics HOST:PORT  serve the app server's Prometheus metrics (counts only, no\n"
	"                   secrets) in plain HTTP on http://HOST:PORT/metrics (PORT 0: a\n"
	"                   free one; docs/metrics.md); with --replicas each replica takes\n"
	"                   PORT or the first free port above it; with --replace the new\n"
	"                   version needs a port the old one does not hold\n"
	"  --replace        start the new version beside the running one, switch when it\n"
	"                   passes, keep the old one otherwise (see above)\n"
	"  --no-tests       skip running tests_cmd\n"
	"  --no-access-log  no log line per request in 'mse logs NAME'\n"
	"  --json           the tests' output to stderr; one JSON object on stdout:\n"
	"                   {\"ok\": true, \"name\", \"url\", \"host\", \"port\", \"san\", \"uuid\",\n"
	"                   \"mrenclave\", \"tcb_status\", \"advisories\", \"simulation\",\n"
	"                   \"package\", \"key\", \"evidence\", \"certificate\", (--metrics:\n"
	"                   \"metrics\"), (--replicas: \"replicas\", \"sgx\", \"coordinator\", \"ca\",\n"
	"                   \"replica_ports\", \"replica_metrics\"), \"progress\":\n"
	"                   [{\"step\", \"kind\": \"step\"|\"detail\"|\"failed\"|\"cleanup\",\n"
	"                   \"text\"}, ...]} or {\"ok\": false, \"failed_step\", \"log\",\n"
	"                   \"error\": {\"step\", ...}, \"errors\": [...], \"progress\": [...]}\n"
	"  --replicas N     the coordinator flow instead of steps 3-8: start or reuse\n"
	"                   NAME-coordinator with the owner key DIR/.mse/owner.key (made if\n"
	"                   missing), verify it, upload the signed manifest, fetch its CA\n"
	"                   into DIR/.mse/ca.pem, start N replicas NAME-K, each attesting to\n"
	"                   the coordinator, and wait for their health checks through the\n"
	"                   CA; an earlier deploy's replicas are replaced one at a time, each\n"
	"                   new one healthy before an old one stops (docs/coordinator.md).\n"
	"                   SGX: coordinator and replicas under Gramine, signed with\n"
	"                   --signer-key; the coordinator's MRENCLAVE recomputed with\n"
	"                   gramine-sgx-sign (as 'mse coordinator measure --sgx') and\n"
	"                   verified with the PCCS's collateral (--pccs, also given to the\n"
	"                   coordinator and replicas); the manifest accepts the replicas' one\n"
	"                   MRENCLAVE recomputed from the package (as 'mse coordinator\n"
	"                   manifest --sgx') and the signer key's MRSIGNER with --isvprodid\n"
	"                   and ISVSVN >= --isvsvn\n"
	"\n"
	"SGX (Gramine 1.9; see docs/sgx.md):\n"
	"  --sgx            run under Gramine even if no SGX device is seen (default: SGX\n"
	"                   when /dev/sgx_enclave exists)\n"
	"  --signer-key PEM the operator's enclave signer (RSA-3072, exponent 3) for\n"
	"                   gramine-sgx-sign; 'mse keygen --sgx-signer' makes one\n"
	"  --pccs URL       PCCS for Intel's collateral (default: the local PCCS)\n"
	"  --isvprodid N, --isvsvn N   sgx.isvprodid and sgx.isvsvn (default 1 and 1)\n"
	"  --mrenclave HEX  the expected MRENCLAVE; default: recomputed with\n"
	"                   gramine-sgx-sign from the package (never the enclave's word)\n"
	"  --accept-simulation-quotes  UNSAFE outside tests: trust quotes from your own\n"
	"                   simulation root on SGX (the tests' Gramine stand-in); with\n"
	"                   --replicas the coordinator and the replicas trust it too\n"
	"                   (--trust-sim-root in their measured argv) and the manifest\n"
	"                   allows simulation quotes\n"
	"  -h, --help       show this help\n";

struct printer {
	int failed;
	json_t *events; /* --json: every event, in order */
};

static void progress(void *ctx, const struct mse_deploy_event *ev)
{
	static const char *const kinds[] = {"step", "detail", "failed", "cleanup"};
	struct printer *p = ctx;

	if (p->events) {
		json_t *e = json_object();

		json_object_set_new(e, "step", json_string(mse_deploy_step_name(ev->step)));
		json_object_set_new(e, "kind", json_string(kinds[ev->kind]));
		json_object_set_new(e, "text", json_string(ev->text));
		json_array_append_new(p->events, e);
		if (ev->kind == MSE_DEPLOY_EV_FAILED)
			p->failed = 1;
		return;
	}

	switch (ev->kind) {
	case MSE_DEPLOY_EV_STEP:
		printf("[%d/%d] %-9s %s\n", (int)ev->step, MSE_DEPLOY_STEPS,
		       mse_deploy_step_name(ev->step), ev->text);
		break;
	case MSE_DEPLOY_EV_DETAIL:
		printf("          %s\n", ev->text);
		break;
	case MSE_DEPLOY_EV_FAILED:
		p->failed = 1;
		fflush(stdout);
		fprintf(stderr, "mse deploy: %s\n", ev->text);
		break;
	case MSE_DEPLOY_EV_CLEANUP:
		fprintf(stderr, "mse deploy: %s\n", ev->text);
		break;
	case MSE_DEPLOY_EV_LOG: {
		/* the cause, as the app printed it (a traceback, a SyntaxError...) */
		const char *l = ev->text, *e;

		fprintf(stderr, "mse deploy: the enclave's log ends with:\n");
		for (; *l; l = *e ? e + 1 : e) {
			e = strchr(l, '\n');
			if (!e)
				e = l + strlen(l);
			fprintf(stderr, "  | %.*s\n", (int)(e - l), l);
		}
		break;
	}
	}
	fflush(stdout);
}

static int print_json(const struct mse_deploy_result *res, int rc, struct mse_err *err,
		      const struct mse_errlist *errs, json_t *events)
{
	json_t *o = cli_json_new(rc == 0), *all;

	if (rc != 0) {
		if (!err->step[0])
			mse_err_step(err, mse_deploy_step_name(res->failed_step));
		json_object_set_new(o, "failed_step", json_string(mse_deploy_step_name(res->failed_step)));
		cli_json_str(o, "name", res->name);
		cli_json_str(o, "log", res->log_copy);
		if (mse_errlist_count(errs) > 0) {
			json_object_set_new(o, "error", cli_json_error(&errs->items[0]));
			all = json_array();
			for (size_t i = 0; i < errs->len; i++)
				json_array_append_new(all, cli_json_error(&errs->items[i]));
			json_object_set_new(o, "errors", all);
		} else {
			json_object_set_new(o, "error", cli_json_error(err));
		}
	} else {
		cli_json_str(o, "name", res->name);
		cli_json_str(o, "url", res->url);
		cli_json_str(o, "host", res->host);
		json_object_set_new(o, "port", json_integer(res->port));
		cli_json_str(o, "san", res->san);
		cli_json_str(o, "uuid", res->uuid);
		cli_json_str(o, "mrenclave", res->mrenclave_hex);
		cli_json_str(o, "tcb_status", mse_tcb_status_name(res->tcb_status));
		all = json_array();
		for (const char *a = res->advisories; *a;) {
			size_t n = strcspn(a, ", ");

			if (n)
				json_array_append_new(all, json_stringn(a, n));
			a += n;
			a += strspn(a, ", ");
		}
		json_object_set_new(o, "advisories", all);
		json_object_set_new(o, "simulation", json_boolean(res->simulation));
		cli_json_str(o, "package", res->package_path);
		cli_json_str(o, "key", res->key_path);
		cli_json_str(o, "evidence", res->evidence_path);
		cli_json_str(o, "certificate", res->ratls_path);
		if (res->metrics[0])
			cli_json_str(o, "metrics", res->metrics);
		if (res->replicas) {
			json_t *ports = json_array(), *metrics = json_array();

			json_object_set_new(o, "replicas", json_integer(res->replicas));
			json_object_set_new(o, "sgx", json_boolean(res->sgx));
			cli_json_str(o, "coordinator", res->coordinator);
			cli_json_str(o, "ca", res->ca_path);
			for (unsigned i = 0; i < res->replicas; i++) {
				json_array_append_new(ports, json_integer(res->replica_ports[i]));
				json_array_append_new(metrics, res->replica_metrics[i][0]
								       ? json_string(res->replica_metrics[i])
								       : json_null());
			}
			json_object_set_new(o, "replica_ports", ports);
			json_object_set_new(o, "replica_metrics", metrics);
		}
	}
	json_object_set_new(o, "progress", events);
	cli_json_print(o);
	return rc == 0 ? MSE_EXIT_OK : MSE_EXIT_FAIL;
}

int cmd_deploy(int argc, char **argv)
{
	enum { O_PROJECT = 256, O_NAME, O_SAN, O_PORT, O_SIZE, O_DAYS, O_REPLACE, O_NOTESTS, O_SGX,
	       O_SIGNER, O_PCCS, O_ISVPRODID, O_ISVSVN, O_MRENCLAVE, O_ACCEPT_SIM, O_REPLICAS, O_JSON,
	       O_NOACCESS, O_THREADS, O_THREADS_MAX, O_METRICS };
	static const struct option opts[] = {{"project", required_argument, NULL, O_PROJECT},
					     {"name", required_argument, NULL, O_NAME},
					     {"san", required_argument, NULL, O_SAN},
					     {"port", required_argument, NULL, O_PORT},
					     {"size", required_argument, NULL, O_SIZE},
					     {"days", required_argument, NULL, O_DAYS},
					     {"replace", no_argument, NULL, O_REPLACE},
					     {"no-tests", no_argument, NULL, O_NOTESTS},
					     {"json", no_argument, NULL, O_JSON},
					     {"no-access-log", no_argument, NULL, O_NOACCESS},
					     {"threads", required_argument, NULL, O_THREADS},
					     {"threads-max", required_argument, NULL, O_THREADS_MAX},
					     {"metrics", required_argument, NULL, O_METRICS},
					     {"sgx", no_argument, NULL, O_SGX},
					     {"signer-key", required_argument, NULL, O_SIGNER},
					     {"pccs", required_argument, NULL, O_PCCS},
					     {"isvprodid", required_argument, NULL, O_ISVPRODID},
					     {"isvsvn", required_argument, NULL, O_ISVSVN},
					     {"mrenclave", required_argument, NULL, O_MRENCLAVE},
					     {"accept-simulation-quotes", no_argument, NULL, O_ACCEPT_SIM},
					     {"replicas", required_argument, NULL, O_REPLICAS},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	struct mse_deploy_opts o = {0};
	struct mse_deploy_result res;
	struct mse_errlist errs;
	struct mse_err err = {0};
	struct printer pr = {0};
	uint8_t mrenclave[32];
	int c, rc, json = 0, saved, li = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
		uint64_t v = 0;

		if ((c == O_PORT || c == O_SIZE || c == O_DAYS || c == O_ISVPRODID || c == O_ISVSVN ||
		     c == O_REPLICAS || c == O_THREADS || c == O_THREADS_MAX) &&
		    cli_num("deploy", opts[li].name, optarg, 1,
			    c == O_REPLICAS ? 64 : c == O_SIZE || c == O_DAYS ? 1 << 20
			    : c == O_THREADS ? 1024 : c == O_THREADS_MAX ? 4096 : 65535, &v))
			return MSE_EXIT_USAGE;
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		case O_PROJECT: o.project_dir = optarg; break;
		case O_NAME: o.name = optarg; break;
		case O_SAN: o.san = optarg; break;
		case O_PORT: o.port = (uint16_t)v; break;
		case O_REPLICAS: o.replicas = (unsigned)v; break;
		case O_SIZE: o.size_mb = (uint32_t)v; break;
		case O_DAYS: o.days = (int)v; break;
		case O_REPLACE: o.replace = 1; break;
		case O_NOTESTS: o.no_tests = 1; break;
		case O_JSON: json = 1; break;
		case O_NOACCESS: o.no_access_log = 1; break;
		case O_METRICS:
			if (cli_hostport("deploy", "metrics", optarg) != 0)
				return MSE_EXIT_USAGE;
			o.metrics = optarg;
			break;
		case O_THREADS:
		case O_THREADS_MAX:
			if (c == O_THREADS)
				o.threads = (unsigned)v;
			else
				o.threads_max = (unsigned)v;
			break;
		case O_SGX: o.sgx = 1; break;
		case O_SIGNER: o.signer_key = optarg; break;
		case O_PCCS: o.pccs_url = optarg; break;
		case O_ISVPRODID: o.isvprodid = (unsigned)v; break;
		case O_ISVSVN: o.isvsvn = (unsigned)v; break;
		case O_ACCEPT_SIM: o.accept_simulation_quotes = 1; break;
		case O_MRENCLAVE:
			if (mse_hex_decode_exact(mrenclave, 32, optarg, strlen(optarg)) != 0)
				return cli_usage_error("deploy", "--mrenclave: expected 64 hex digits, got '%s'",
						       optarg);
			o.mrenclave = mrenclave;
			break;
		default:
			return cli_usage_error("deploy", "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("deploy", "unexpected argument '%s'", argv[optind]);

	mse_errlist_init(&errs);
	o.errs = &errs;
	o.progress = progress;
	o.progress_ctx = &pr;
	if (json)
		pr.events = json_array();
	/* --json: the app's tests write to stderr; stdout holds the JSON object alone. */
	saved = json ? cli_stdout_to_stderr() : -1;
	rc = mse_deploy(&o, &res, &err);
	cli_stdout_restore(saved);
	if (json) {
		rc = print_json(&res, rc, &err, &errs, pr.events);
		mse_errlist_free(&errs);
		return rc;
	}
	if (rc != 0) {
		/* mse.toml's errors, each with its line; any other failure, its reason. */
		if (mse_errlist_count(&errs) > 0)
			mse_errlist_print(&errs, "mse deploy", stderr);
		else
			cli_fail("deploy", &err);
		mse_errlist_free(&errs);
		return MSE_EXIT_FAIL;
	}
	mse_errlist_free(&errs);
	if (o.replicas) {
		printf("\nDeployed %s: %u replicas behind the coordinator at %s (%s)\n", res.name,
		       res.replicas, res.coordinator,
		       !res.sgx	       ? "SIMULATION — not confidential"
		       : res.simulation ? "SGX, simulation quotes accepted — not confidential"
					: "SGX");
		printf("  coordinator  MRENCLAVE %s (verified, owner key %s/.mse/owner.key)\n",
		       res.mrenclave_hex, o.project_dir ? o.project_dir : ".");
		printf("               (expected value from %s)\n", res.measured_from);
		printf("  CA           %s  (clients pin this, whichever replica answers)\n",
		       res.ca_path);
		for (unsigned i = 0; i < res.replicas; i++) {
			printf("  replica %-4u https://%s:%u/\n", i + 1, res.san,
			       (unsigned)res.replica_ports[i]);
			if (res.replica_metrics[i][0])
				printf("               metrics http://%s/metrics\n",
				       res.replica_metrics[i]);
		}
		printf("Call one:\n  curl --cacert %s https://%s:%u/\n", res.ca_path, res.san,
		       (unsigned)res.replica_ports[0]);
		printf("See them with 'mse list'; stop with 'mse stop NAME --remove'.\n");
		return MSE_EXIT_OK;
	}
	printf("\nDeployed %s%s\n", res.name, res.simulation ? " (SIMULATION — not confidential)" : "");
	for (size_t i = 0; i < res.n_replaced; i++)
		printf("  replaces    %s (stopped and removed): the app now answers on port %u\n",
		       res.replaced[i], (unsigned)res.port);
	printf("  URL          %s\n", res.url);
	printf("  MRENCLAVE    %s\n", res.mrenclave_hex);
	printf("               (expected value from %s)\n", res.measured_from);
	printf("  TCB status   %s\n", mse_tcb_status_name(res.tcb_status));
	if (res.metrics[0])
		printf("  metrics      http://%s/metrics  (Prometheus; counts only)\n", res.metrics);
	printf("  certificate  %s  (pin it: only this enclave holds its key)\n", res.ratls_path);
	printf("  code key     %s  (keep it secret)\n", res.key_path);
	printf("Call it:\n  curl --cacert %s %s\n", res.ratls_path, res.url);
	if (strcmp(res.san, "localhost") != 0)
		printf("  (add --resolve %s:%u:%s if the name does not resolve here)\n", res.san,
		       (unsigned)res.port, res.host);
	printf("Stop it with 'mse stop %s --remove'.\n", res.name);
	return MSE_EXIT_OK;
}
