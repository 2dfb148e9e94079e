/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_k8s — the Kubernetes manifests of an app behind its coordinator
 * (docs/kubernetes.md), written as plain YAML:
 *
 *   coordinator.yaml    StatefulSet (1 replica, a PersistentVolumeClaim for the
 *                       sealed state) and its headless Service
 *   app.yaml            Deployment (N replicas of mse-bootstrap, the coordinator's
 *                       MRENCLAVE in the arguments, its address in MSE_COORDINATOR,
 *                       probes on healthcheck_endpoint, restricted securityContext,
 *                       with sgx the sgx.intel.com/{epc,enclave,provision} resources,
 *                       with metrics_port a "metrics" port and prometheus.io
 *                       annotations) and its Service
 *   pdb.yaml            PodDisruptionBudget of the replicas
 *   networkpolicy.yaml  replicas -> coordinator only, clients -> replicas only
 *   kustomization.yaml  the above (and the namespace, if given)
 *   README.md           how the owner reaches the coordinator (port-forward), verifies
 *                       it and uploads the manifest
 *
 * The podman variant (for `podman kube play`, which runs Pods and Deployments
 * but not StatefulSets, Services, PodDisruptionBudgets or NetworkPolicies):
 * the coordinator is a Pod with its state in a host directory, the replicas
 * have no probes (podman turns them into health checks run with curl inside
 * the container, which the image does not have), only coordinator.yaml and
 * app.yaml are written.
 *
 * The coordinator's MRENCLAVE is computed here (simulation, measurement v2:
 * the binary and the owner's key) or given (SGX: Gramine's measurement).
 */
#ifndef MSE_K8S_H
#define MSE_K8S_H

#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

struct mse_k8s_opts {
	const char *project;      /* DIR with mse.toml */
	const char *output;       /* the directory written (created) */
	const char *namespace_;   /* NULL = none set (kubectl's current) */
	const char *owner_key;    /* the owner's public key: 64 hex digits or a file */
	const char *coordinator_mrenclave; /* hex; NULL = measure the coordinator binary */
	const char *coordinator_bin;       /* NULL = beside mse / $MSE_COORDINATOR_BIN */
	const char *registry;     /* image prefix, default "localhost" */
	const char *tag;          /* default "latest" */
	const char *sim_dir;      /* node path of the simulation root (default /var/lib/mse-c/sim) */
	const char *state_dir;    /* podman variant: host path of the coordinator's state */
	const char *dns;          /* the name clients use (default: the app's label) */
	unsigned replicas;        /* 1..100 */
	unsigned size_mb;         /* enclave size, a power of two (default 4096) */
	/* the replicas' Prometheus metrics on 0.0.0.0:PORT ($MSE_REPLICA_METRICS,
	 * not measured), a containerPort "metrics", prometheus.io annotations and
	 * a NetworkPolicy rule letting scrapers in; 0: none */
	unsigned metrics_port;
	int sgx;
	int podman;
};

int mse_k8s_render(const struct mse_k8s_opts *o, struct mse_err *err) MSE_MUST_CHECK;

#endif
