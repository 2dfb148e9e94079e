/* SPDX-License-Identifier: Apache-2.0 */
/* mse k8s — Kubernetes manifests for an app behind its coordinator (docs/kubernetes.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/num.h"
#include "codeprovider/k8s.h"

static const char usage[] =
	"Usage: mse k8s render --project DIR --replicas N --owner-key PUB --output DIR\n"
	"                      [--sgx] [--namespace NS] [--size MB] [--dns NAME]\n"
	"                      [--registry PREFIX] [--tag TAG] [--coordinator-mrenclave HEX]\n"
	"                      [--coordinator BIN] [--sim-dir PATH] [--podman --state-dir PATH]\n"
	"                      [--metrics-port N]\n"
	"\n"
	"Writes plain YAML for the app's replicas behind its coordinator:\n"
	"  coordinator.yaml    StatefulSet (one replica, a PersistentVolumeClaim for the\n"
	"                      sealed state) and its Service\n"
	"  app.yaml            Deployment of N replicas (the coordinator's MRENCLAVE in the\n"
	"                      arguments, its address in MSE_COORDINATOR, readiness and\n"
	"                      liveness probes on healthcheck_endpoint, a restricted\n"
	"                      securityContext, with --sgx the sgx.intel.com/epc, /enclave\n"
	"                      and /provision resources sized from --size) and its Service\n"
	"  pdb.yaml            PodDisruptionBudget (one replica down at a time)\n"
	"  networkpolicy.yaml  replicas <-> coordinator, clients -> replicas only\n"
	"  kustomization.yaml  all of them (kubectl apply -k DIR)\n"
	"  README.md           the owner's port-forward, verification and manifest upload\n"
	"\n"
	"  --project DIR        the app's project (DIR/mse.toml)\n"
	"  --replicas N         replicas of the app (1..100)\n"
	"  --owner-key PUB      the owner's public key (64 hex digits or a file): the\n"
	"                       coordinator's --owner-key, part of its measurement\n"
	"  --output DIR         where to write (created)\n"
	"  --sgx                SGX nodes (Intel's device plugin); default: simulation\n"
	"  --namespace NS       put every object in NS\n"
	"  --size MB            the enclave size, a power of two (default 4096): the\n"
	"                       replicas' --size and their sgx.intel.com/epc request\n"
	"  --dns NAME           the name clients use, in the CA's certificates (default:\n"
	"                       the Service's name)\n"
	"  --registry PREFIX    image prefix (default localhost: imagePullPolicy Never)\n"
	"  --tag TAG            image tag (default latest)\n"
	"  --coordinator-mrenclave HEX\n"
	"                       the coordinator's MRENCLAVE (required with --sgx); default:\n"
	"                       measured from the coordinator binary and the owner's key\n"
	"  --coordinator BIN    the mse-coordinator binary to measure (default: beside mse)\n"
	"  --sim-dir PATH       simulation: the node's directory with the simulation root\n"
	"                       (default /var/lib/mse-c/sim), mounted read-only\n"
	"  --metrics-port N     the replicas serve Prometheus metrics (counts only, no\n"
	"                       secrets) in plain HTTP on 0.0.0.0:N/metrics, given by\n"
	"                       $MSE_REPLICA_METRICS (never measured); a containerPort\n"
	"                       \"metrics\", prometheus.io/scrape, /port and /path pod\n"
	"                       annotations, and a NetworkPolicy rule admitting scrapers\n"
	"                       (docs/metrics.md)\n"
	"  --podman             the variant `podman kube play` runs: the coordinator as a\n"
	"                       Pod (hostPort 7443 on 127.0.0.1), its state in --state-dir,\n"
	"                       no probes; only coordinator.yaml and app.yaml\n"
	"  --state-dir PATH     with --podman: the host directory of the coordinator's state\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit status: 0 written, 1 failure, 2 usage error.\n";

enum {
	O_PROJECT = 1000, O_REPLICAS, O_OWNER, O_OUTPUT, O_SGX, O_NS, O_SIZE, O_DNS, O_REG, O_TAG,
	O_MRE, O_COORD, O_SIM, O_PODMAN, O_STATE, O_METRICS
};

int cmd_k8s(int argc, char **argv)
{
	static const struct option opts[] = {
		{"project", required_argument, NULL, O_PROJECT},
		{"replicas", required_argument, NULL, O_REPLICAS},
		{"owner-key", required_argument, NULL, O_OWNER},
		{"output", required_argument, NULL, O_OUTPUT},
		{"sgx", no_argument, NULL, O_SGX},
		{"namespace", required_argument, NULL, O_NS},
		{"size", required_argument, NULL, O_SIZE},
		{"dns", required_argument, NULL, O_DNS},
		{"registry", required_argument, NULL, O_REG},
		{"tag", required_argument, NULL, O_TAG},
		{"coordinator-mrenclave", required_argument, NULL, O_MRE},
		{"coordinator", required_argument, NULL, O_COORD},
		{"sim-dir", required_argument, NULL, O_SIM},
		{"podman", no_argument, NULL, O_PODMAN},
		{"state-dir", required_argument, NULL, O_STATE},
		{"metrics-port", required_argument, NULL, O_METRICS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct mse_k8s_opts o = {.size_mb = 4096, .sim_dir = "/var/lib/mse-c/sim"};
	struct mse_err err;
	uint64_t n;
	int c, have_replicas = 0;

	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs(usage, stdout);
		return MSE_EXIT_OK;
	}
	if (argc < 2 || strcmp(argv[1], "render") != 0)
		return cli_usage_error("k8s", "expected the subcommand 'render', got '%s'",
				       argc < 2 ? "" : argv[1]);
	argc--;
	argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_PROJECT: o.project = optarg; break;
		case O_REPLICAS:
			if (cli_num("k8s", "replicas", optarg, 1, 100, &n) != 0)
				return MSE_EXIT_USAGE;
			o.replicas = (unsigned)n;
			have_replicas = 1;
			break;
		case O_OWNER: o.owner_key = optarg; break;
		case O_OUTPUT: o.output = optarg; break;
		case O_SGX: o.sgx = 1; break;
		case O_NS: o.namespace_ = optarg; break;
		case O_SIZE:
			if (cli_num("k8s", "size", optarg, 1, 1u << 20, &n) != 0)
				return MSE_EXIT_USAGE;
			o.size_mb = (unsigned)n;
			break;
		case O_DNS: o.dns = optarg; break;
		case O_REG: o.registry = optarg; break;
		case O_TAG: o.tag = optarg; break;
		case O_MRE: o.coordinator_mrenclave = optarg; break;
		case O_COORD: o.coordinator_bin = optarg; break;
		case O_SIM: o.sim_dir = optarg; break;
		case O_PODMAN: o.podman = 1; break;
		case O_STATE: o.state_dir = optarg; break;
		case O_METRICS:
			if (cli_num("k8s", "metrics-port", optarg, 1, 65535, &n) != 0)
				return MSE_EXIT_USAGE;
			o.metrics_port = (unsigned)n;
			break;
		case 'h': fputs(usage, stdout); return MSE_EXIT_OK;
		default: return cli_usage_error("k8s", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("k8s", "unexpected argument '%s'", argv[optind]);
	if (!o.project || !o.output || !have_replicas)
		return cli_usage_error("k8s", "render needs --project DIR, --replicas N and --output DIR");
	mse_err_clear(&err);
	if (mse_k8s_render(&o, &err) != 0)
		return cli_fail("k8s", &err);
	printf("wrote %s/%s\n", o.output,
	       o.podman ? "{coordinator,app}.yaml (podman kube play variant)"
			: "{coordinator,app,pdb,networkpolicy,kustomization}.yaml and README.md");
	return MSE_EXIT_OK;
}
