/* SPDX-License-Identifier: Apache-2.0 */
#include "codeprovider/k8s.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codeprovider/coordclient.h"
#include "common/file.h"
#include "common/hex.h"
#include "config/project.h"
#include "operator/cspawn.h"
#include "operator/image.h"

#define COORD_PORT 7443
#define APP_PORT 8443
#define IMAGE_UID 65532
#define STATE_MOUNT "/var/lib/mse-coordinator"
#define SIM_MOUNT "/var/lib/mse-sim"
#define WORKSPACE_MOUNT "/var/lib/mse"

struct ctx {
	const struct mse_k8s_opts *o;
	const struct mse_project *p;
	char name[64];       /* the app's label: Deployment, Service */
	char coord[80];      /* NAME-coordinator */
	char mre[65];        /* coordinator MRENCLAVE, hex */
	char owner[65];      /* owner public key, hex */
	char app_image[400], coord_image[400];
	const char *pull;    /* imagePullPolicy */
};

/* A YAML double-quoted scalar (YAML 1.2 §7.3.1): only " and \ and controls need escapes. */
static void q(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void metadata(FILE *f, const struct ctx *c, const char *name, const char *component,
		     int indent)
{
	fprintf(f, "%*smetadata:\n%*sname: %s\n", indent, "", indent + 2, "", name);
	if (c->o->namespace_ && indent == 0)
		fprintf(f, "  namespace: %s\n", c->o->namespace_);
	fprintf(f, "%*slabels:\n", indent + 2, "");
	fprintf(f, "%*sapp.kubernetes.io/name: %s\n", indent + 4, "", c->name);
	fprintf(f, "%*sapp.kubernetes.io/component: %s\n", indent + 4, "", component);
	fprintf(f, "%*sapp.kubernetes.io/part-of: mse-c\n", indent + 4, "");
}

static void selector_labels(FILE *f, const struct ctx *c, const char *component, int indent)
{
	fprintf(f, "%*sapp.kubernetes.io/name: %s\n", indent, "", c->name);
	fprintf(f, "%*sapp.kubernetes.io/component: %s\n", indent, "", component);
}

/* The restricted Pod Security Standard, pod and container levels. */
static void pod_security(FILE *f, int indent)
{
	fprintf(f,
		"%*ssecurityContext:\n"
		"%*srunAsNonRoot: true\n"
		"%*srunAsUser: %d\n"
		"%*srunAsGroup: %d\n"
		"%*sfsGroup: %d\n"
		"%*sseccompProfile:\n"
		"%*stype: RuntimeDefault\n",
		indent, "", indent + 2, "", indent + 2, "", IMAGE_UID, indent + 2, "", IMAGE_UID,
		indent + 2, "", IMAGE_UID, indent + 2, "", indent + 4, "");
}

static void container_security(FILE *f, int indent)
{
	fprintf(f,
		"%*ssecurityContext:\n"
		"%*sallowPrivilegeEscalation: false\n"
		"%*sreadOnlyRootFilesystem: true\n"
		"%*scapabilities:\n"
		"%*sdrop:\n"
		"%*s- ALL\n",
		indent, "", indent + 2, "", indent + 2, "", indent + 2, "", indent + 4, "",
		indent + 4, "");
}

static void sim_env(FILE *f, const struct ctx *c, int indent)
{
	if (c->o->sgx)
		return;
	fprintf(f, "%*s- name: MSE_SIM_DIR\n%*svalue: %s\n", indent, "", indent + 2, "",
		SIM_MOUNT);
}

static void sim_volume(FILE *f, const struct ctx *c, int indent)
{
	if (c->o->sgx)
		return;
	fprintf(f, "%*s- name: sim\n%*shostPath:\n%*spath: ", indent, "", indent + 2, "",
		indent + 4, "");
	q(f, c->o->sim_dir);
	fprintf(f, "\n%*stype: Directory\n", indent + 4, "");
}

/* The coordinator's pod spec (under a StatefulSet template, or a Pod). */
static void coordinator_pod_spec(FILE *f, const struct ctx *c, int in)
{
	fprintf(f, "%*sspec:\n", in, "");
	in += 2;
	fprintf(f, "%*sautomountServiceAccountToken: false\n", in, "");
	if (c->o->podman)
		fprintf(f, "%*srestartPolicy: Always\n", in, "");
	pod_security(f, in);
	fprintf(f, "%*scontainers:\n%*s- name: coordinator\n", in, "", in, "");
	in += 2;
	fprintf(f, "%*simage: %s\n%*simagePullPolicy: %s\n", in, "", c->coord_image, in, "",
		c->pull);
	fprintf(f, "%*sargs:\n", in, "");
	fprintf(f, "%*s- --owner-key\n%*s- \"%s\"\n", in, "", in, "", c->owner);
	fprintf(f, "%*s- --state-dir\n%*s- %s\n", in, "", in, "", STATE_MOUNT);
	fprintf(f, "%*s- --host\n%*s- 0.0.0.0\n", in, "", in, "");
	fprintf(f, "%*s- --port\n%*s- \"%d\"\n", in, "", in, "", COORD_PORT);
	/* The owner's tools reach it through a port-forward, as localhost; the
	 * replicas check its MRENCLAVE, not its name. */
	fprintf(f, "%*s- --san\n%*s- localhost\n", in, "", in, "");
	if (!c->o->sgx)
		fprintf(f, "%*s- --simulation\n", in, "");
	if (!c->o->sgx) {
		fprintf(f, "%*senv:\n", in, "");
		sim_env(f, c, in);
	}
	fprintf(f, "%*sports:\n%*s- name: coordinator\n%*scontainerPort: %d\n", in, "", in, "",
		in + 2, "", COORD_PORT);
	if (c->o->podman) /* the owner's way in: podman has no port-forward */
		fprintf(f, "%*shostPort: %d\n%*shostIP: 127.0.0.1\n", in + 2, "", COORD_PORT,
			in + 2, "");
	if (!c->o->podman) {
		/* Alive and listening: a TCP probe (its TLS needs an attesting client). */
		fprintf(f, "%*sreadinessProbe:\n%*stcpSocket:\n%*sport: %d\n%*speriodSeconds: 5\n",
			in, "", in + 2, "", in + 4, "", COORD_PORT, in + 2, "");
		fprintf(f, "%*slivenessProbe:\n%*stcpSocket:\n%*sport: %d\n"
			   "%*sinitialDelaySeconds: 10\n%*speriodSeconds: 20\n",
			in, "", in + 2, "", in + 4, "", COORD_PORT, in + 2, "", in + 2, "");
	}
	fprintf(f, "%*sresources:\n%*srequests:\n%*scpu: 100m\n%*smemory: 128Mi\n"
		   "%*slimits:\n%*smemory: 512Mi\n",
		in, "", in + 2, "", in + 4, "", in + 4, "", in + 2, "", in + 4, "");
	if (c->o->sgx)
		fprintf(f, "%*ssgx.intel.com/epc: 64Mi\n%*ssgx.intel.com/enclave: 1\n"
			   "%*ssgx.intel.com/provision: 1\n",
			in + 4, "", in + 4, "", in + 4, "");
	container_security(f, in);
	fprintf(f, "%*svolumeMounts:\n%*s- name: state\n%*smountPath: %s\n", in, "", in, "",
		in + 2, "", STATE_MOUNT);
	if (!c->o->sgx)
		fprintf(f, "%*s- name: sim\n%*smountPath: %s\n%*sreadOnly: true\n", in, "",
			in + 2, "", SIM_MOUNT, in + 2, "");
	in -= 2;
	if (c->o->podman || !c->o->sgx)
		fprintf(f, "%*svolumes:\n", in, "");
	if (c->o->podman) {
		fprintf(f, "%*s- name: state\n%*shostPath:\n%*spath: ", in, "", in + 2, "", in + 4, "");
		q(f, c->o->state_dir);
		fprintf(f, "\n%*stype: Directory\n", in + 4, "");
	}
	sim_volume(f, c, in);
}

static void write_coordinator(FILE *f, const struct ctx *c)
{
	fprintf(f, "# The coordinator of %s: attests the replicas, is their CA,\n"
		   "# gives them the app key. The owner verifies it and uploads the\n"
		   "# signed manifest first (README.md).\n",
		c->name);
	if (c->o->podman) {
		fprintf(f, "apiVersion: v1\nkind: Pod\n");
		metadata(f, c, c->coord, "coordinator", 0);
		coordinator_pod_spec(f, c, 0);
		return;
	}
	fprintf(f, "apiVersion: v1\nkind: Service\n");
	metadata(f, c, c->coord, "coordinator", 0);
	fprintf(f, "spec:\n  clusterIP: None\n  selector:\n");
	selector_labels(f, c, "coordinator", 4);
	fprintf(f, "  ports:\n  - name: coordinator\n    port: %d\n    targetPort: coordinator\n",
		COORD_PORT);
	fprintf(f, "---\napiVersion: apps/v1\nkind: StatefulSet\n");
	metadata(f, c, c->coord, "coordinator", 0);
	fprintf(f, "spec:\n  serviceName: %s\n  replicas: 1\n  selector:\n    matchLabels:\n",
		c->coord);
	selector_labels(f, c, "coordinator", 6);
	fprintf(f, "  template:\n");
	metadata(f, c, c->coord, "coordinator", 4);
	coordinator_pod_spec(f, c, 4);
	fprintf(f, "  volumeClaimTemplates:\n  - metadata:\n      name: state\n    spec:\n"
		   "      accessModes:\n      - ReadWriteOnce\n      resources:\n"
		   "        requests:\n          storage: 64Mi\n");
}

static void write_app(FILE *f, const struct ctx *c)
{
	const struct mse_k8s_opts *o = c->o;
	const char *dns = o->dns ? o->dns : c->name;
	int in = 8;

	fprintf(f, "# %s: %u replicas of mse-bootstrap. The coordinator attests each\n"
		   "# and gives it the code key, the secrets, the app key and a\n"
		   "# certificate from its CA for %s.\n",
		c->name, o->replicas, dns);
	fprintf(f, "apiVersion: apps/v1\nkind: Deployment\n");
	metadata(f, c, c->name, "replica", 0);
	fprintf(f, "spec:\n  replicas: %u\n", o->replicas);
	fprintf(f, "  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 1\n"
		   "      maxUnavailable: 0\n");
	fprintf(f, "  selector:\n    matchLabels:\n");
	selector_labels(f, c, "replica", 6);
	fprintf(f, "  template:\n");
	metadata(f, c, c->name, "replica", 4);
	if (o->metrics_port)
		/* The convention Prometheus' kubernetes_sd pod relabelling reads. */
		fprintf(f, "      annotations:\n        prometheus.io/scrape: \"true\"\n"
			   "        prometheus.io/port: \"%u\"\n        prometheus.io/path: /metrics\n",
			o->metrics_port);
	fprintf(f, "    spec:\n      automountServiceAccountToken: false\n");
	if (o->podman)
		fprintf(f, "      restartPolicy: Always\n");
	pod_security(f, 6);
	fprintf(f, "      containers:\n      - name: app\n");
	fprintf(f, "%*simage: %s\n%*simagePullPolicy: %s\n", in, "", c->app_image, in, "", c->pull);
	fprintf(f, "%*sargs:\n%*s- ", in, "", in, "");
	q(f, c->p->python_application);
	fprintf(f, "\n%*s- --app-dir\n%*s- /opt/mse/app\n", in, "", in, "");
	fprintf(f, "%*s- --coordinator-mrenclave\n%*s- \"%s\"\n", in, "", in, "", c->mre);
	fprintf(f, "%*s- --host\n%*s- 0.0.0.0\n", in, "", in, "");
	fprintf(f, "%*s- --port\n%*s- \"%d\"\n", in, "", in, "", APP_PORT);
	fprintf(f, "%*s- --san\n%*s- ", in, "", in, "");
	q(f, dns);
	fprintf(f, "\n%*s- --size\n%*s- \"%u\"\n", in, "", in, "", o->size_mb);
	fprintf(f, "%*s- --workspace\n%*s- %s/workspace\n", in, "", in, "", WORKSPACE_MOUNT);
	if (!o->sgx)
		fprintf(f, "%*s- --simulation\n", in, "");
	fprintf(f, "%*senv:\n%*s- name: MSE_COORDINATOR\n%*svalue: \"%s:%d\"\n", in, "", in, "",
		in + 2, "", c->coord, COORD_PORT);
	/* Per replica, hence by the environment: never in the measured argv. */
	if (o->metrics_port)
		fprintf(f, "%*s- name: MSE_REPLICA_METRICS\n%*svalue: \"0.0.0.0:%u\"\n", in, "",
			in + 2, "", o->metrics_port);
	sim_env(f, c, in);
	/* podman kube play publishes every containerPort on the host: N replicas
	 * would fight for it, so its variant declares none (the pods' network
	 * reaches them all the same). */
	if (!o->podman) {
		fprintf(f, "%*sports:\n%*s- name: https\n%*scontainerPort: %d\n", in, "", in, "",
			in + 2, "", APP_PORT);
		if (o->metrics_port)
			fprintf(f, "%*s- name: metrics\n%*scontainerPort: %u\n", in, "", in + 2, "",
				o->metrics_port);
	}
	if (!o->podman) {
		fprintf(f, "%*sreadinessProbe:\n%*shttpGet:\n%*sscheme: HTTPS\n%*spath: ", in, "",
			in + 2, "", in + 4, "", in + 4, "");
		q(f, c->p->healthcheck_endpoint);
		fprintf(f, "\n%*sport: https\n%*speriodSeconds: 5\n%*sfailureThreshold: 3\n",
			in + 4, "", in + 2, "", in + 2, "");
		fprintf(f, "%*slivenessProbe:\n%*shttpGet:\n%*sscheme: HTTPS\n%*spath: ", in, "",
			in + 2, "", in + 4, "", in + 4, "");
		q(f, c->p->healthcheck_endpoint);
		fprintf(f, "\n%*sport: https\n%*sinitialDelaySeconds: 30\n%*speriodSeconds: 20\n"
			   "%*sfailureThreshold: 3\n",
			in + 4, "", in + 2, "", in + 2, "", in + 2, "");
	}
	fprintf(f, "%*sresources:\n%*srequests:\n%*scpu: 250m\n%*smemory: 256Mi\n%*slimits:\n",
		in, "", in + 2, "", in + 4, "", in + 4, "", in + 2, "");
	if (o->sgx) {
		/* The EPC the enclave commits: its whole size (Gramine's sgx.enclave_size). */
		fprintf(f, "%*smemory: %uMi\n%*ssgx.intel.com/epc: %uMi\n%*ssgx.intel.com/enclave: 1\n"
			   "%*ssgx.intel.com/provision: 1\n",
			in + 4, "", o->size_mb + 512, in + 4, "", o->size_mb, in + 4, "", in + 4, "");
	} else {
		fprintf(f, "%*smemory: %uMi\n", in + 4, "", o->size_mb + 512);
	}
	container_security(f, in);
	fprintf(f, "%*svolumeMounts:\n%*s- name: workspace\n%*smountPath: %s\n", in, "", in, "",
		in + 2, "", WORKSPACE_MOUNT);
	fprintf(f, "%*s- name: tmp\n%*smountPath: /tmp\n", in, "", in + 2, "");
	if (!o->sgx)
		fprintf(f, "%*s- name: sim\n%*smountPath: %s\n%*sreadOnly: true\n", in, "", in + 2, "",
			SIM_MOUNT, in + 2, "");
	fprintf(f, "      volumes:\n      - name: workspace\n        emptyDir: {}\n"
		   "      - name: tmp\n        emptyDir:\n          medium: Memory\n");
	sim_volume(f, c, 6);
	if (o->podman)
		return;
	fprintf(f, "---\napiVersion: v1\nkind: Service\n");
	metadata(f, c, c->name, "replica", 0);
	fprintf(f, "spec:\n  selector:\n");
	selector_labels(f, c, "replica", 4);
	fprintf(f, "  ports:\n  - name: https\n    port: 443\n    targetPort: https\n");
}

static void write_pdb(FILE *f, const struct ctx *c)
{
	fprintf(f, "# Voluntary disruptions (drains) take one replica at a time.\n"
		   "apiVersion: policy/v1\nkind: PodDisruptionBudget\n");
	metadata(f, c, c->name, "replica", 0);
	fprintf(f, "spec:\n  maxUnavailable: 1\n  selector:\n    matchLabels:\n");
	selector_labels(f, c, "replica", 6);
}

static void write_netpol(FILE *f, const struct ctx *c)
{
	fprintf(f, "# The coordinator takes connections from the replicas only (the\n"
		   "# owner comes through kubectl port-forward, which the kubelet\n"
		   "# makes, not the pod network).\n");
	fprintf(f, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n");
	metadata(f, c, c->coord, "coordinator", 0);
	fprintf(f, "spec:\n  podSelector:\n    matchLabels:\n");
	selector_labels(f, c, "coordinator", 6);
	fprintf(f, "  policyTypes:\n  - Ingress\n  ingress:\n  - from:\n    - podSelector:\n"
		   "        matchLabels:\n");
	selector_labels(f, c, "replica", 10);
	fprintf(f, "    ports:\n    - protocol: TCP\n      port: %d\n", COORD_PORT);
	fprintf(f, "---\n# Clients reach the replicas on their HTTPS port only%s; the\n"
		   "# replicas reach the coordinator and the cluster DNS%s,\n# nothing else.\n",
		c->o->metrics_port ? "\n# (scrapers: their metrics port)" : "",
		c->o->sgx ? " and the in-cluster PCCS" : "");
	fprintf(f, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n");
	metadata(f, c, c->name, "replica", 0);
	fprintf(f, "spec:\n  podSelector:\n    matchLabels:\n");
	selector_labels(f, c, "replica", 6);
	fprintf(f, "  policyTypes:\n  - Ingress\n  - Egress\n  ingress:\n  - ports:\n"
		   "    - protocol: TCP\n      port: %d\n",
		APP_PORT);
	if (c->o->metrics_port)
		fprintf(f, "  # Prometheus scrapes the metrics port (counts only, plain HTTP):\n"
			   "  # add a 'from' here to admit only its namespace.\n"
			   "  - ports:\n    - protocol: TCP\n      port: %u\n",
			c->o->metrics_port);
	fprintf(f, "  egress:\n  - to:\n    - podSelector:\n        matchLabels:\n");
	selector_labels(f, c, "coordinator", 10);
	fprintf(f, "    ports:\n    - protocol: TCP\n      port: %d\n", COORD_PORT);
	fprintf(f, "  - to:\n    - namespaceSelector: {}\n      podSelector:\n        matchLabels:\n"
		   "          k8s-app: kube-dns\n    ports:\n    - protocol: UDP\n      port: 53\n"
		   "    - protocol: TCP\n      port: 53\n");
	if (c->o->sgx)
		fprintf(f, "  - to:\n    - podSelector:\n        matchLabels:\n"
			   "          app.kubernetes.io/name: pccs\n    ports:\n"
			   "    - protocol: TCP\n      port: 8081\n");
}

static void write_kustomization(FILE *f, const struct ctx *c)
{
	fprintf(f, "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n");
	if (c->o->namespace_)
		fprintf(f, "namespace: %s\n", c->o->namespace_);
	fprintf(f, "resources:\n- coordinator.yaml\n- app.yaml\n- pdb.yaml\n- networkpolicy.yaml\n");
}

static void write_readme(FILE *f, const struct ctx *c)
{
	const char *ns = c->o->namespace_;
	char nsopt[128] = "";

	if (ns)
		snprintf(nsopt, sizeof(nsopt), " -n %s", ns);
	fprintf(f, "# %s on Kubernetes (rendered by mse k8s render)\n\n", c->name);
	fprintf(f, "Images: `%s`, `%s` (`mse image build --project DIR`).\n\n", c->app_image,
		c->coord_image);
	fprintf(f, "1. `kubectl apply -k .` (or `kubectl apply -f .`, skipping this file)\n");
	fprintf(f, "2. The owner reaches the coordinator from outside the cluster through the API "
		   "server:\n\n       kubectl%s port-forward statefulset/%s %d:%d\n\n",
		nsopt, c->coord, COORD_PORT, COORD_PORT);
	fprintf(f, "3. and verifies it (its quote, and the MRENCLAVE of mse-coordinator with the "
		   "owner's key):\n\n       mse coordinator measure --owner-key owner.pub   # %s\n"
		   "       mse verify --url localhost:%d --mrenclave %s%s --output v\n\n",
		c->mre, COORD_PORT, c->mre, c->o->sgx ? "" : " --allow-simulation");
	fprintf(f, "4. then uploads the signed manifest (the replicas attest and serve once it is "
		   "there), for the package and mse-bootstrap in the image:\n\n"
		   "       mse coordinator manifest --coordinator-cert v/ratls.pem "
		   "--package P.tar --code-key P.key --dns %s --size %u%s --out m.json\n"
		   "       mse coordinator set --url localhost:%d --pin v/ratls.pem --manifest m.json "
		   "--owner-key owner.key\n"
		   "       mse coordinator ca --url localhost:%d --pin v/ratls.pem --out ca.pem\n\n",
		c->o->dns ? c->o->dns : c->name, c->o->size_mb,
		c->o->sgx ? "" : " --allow-simulation", COORD_PORT, COORD_PORT);
	fprintf(f, "5. Clients: `curl --cacert ca.pem https://%s/` (the Service `%s`, port 443).\n",
		c->o->dns ? c->o->dns : c->name, c->name);
}

typedef void (*writer)(FILE *, const struct ctx *);

static int emit(const struct ctx *c, const char *file, writer w, struct mse_err *err)
{
	char path[PATH_MAX + 64], *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	if (!f)
		return mse_err_set(err, "open_memstream: %s", strerror(errno));
	if (strstr(file, ".yaml"))
		fprintf(f, "---\n# SPDX-License-Identifier: Apache-2.0\n# Rendered by mse k8s render.\n");
	w(f, c);
	if (fclose(f) != 0) {
		free(buf);
		return mse_err_set(err, "writing %s failed", file);
	}
	snprintf(path, sizeof(path), "%s/%s", c->o->output, file);
	rc = mse_file_write_atomic(path, buf, len, 0644, err);
	free(buf);
	return rc;
}

static int dns_label(const char *field, const char *s, size_t max, struct mse_err *err)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || s[0] == '-' || s[n - 1] == '-' ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
		return mse_err_expect(err, field, "a DNS-1123 label (a-z, 0-9, '-', not at the ends)",
				      s);
	return 0;
}

int mse_k8s_render(const struct mse_k8s_opts *o, struct mse_err *err)
{
	char toml[PATH_MAX + 16], bin[PATH_MAX];
	struct mse_project *p = NULL;
	struct ctx c = {.o = o};
	const char *reg = o->registry ? o->registry : "localhost", *tag = o->tag ? o->tag : "latest";
	uint8_t pk[32], mre[32];
	int rc = -1;

	if (o->replicas < 1 || o->replicas > 100)
		return mse_err_field(err, "--replicas", "expected 1..100, got %u", o->replicas);
	if (o->size_mb < 64 || (o->size_mb & (o->size_mb - 1)))
		return mse_err_field(err, "--size", "expected a power of two >= 64 (MB), got %u",
				     o->size_mb);
	if (o->namespace_ && dns_label("--namespace", o->namespace_, 63, err) != 0)
		return -1;
	if (o->metrics_port > 65535 || o->metrics_port == APP_PORT)
		return mse_err_field(err, "--metrics-port", "expected 1..65535 other than the app's "
							    "%d, got %u",
				     APP_PORT, o->metrics_port);
	if (o->podman && o->sgx)
		return mse_err_field(err, "--podman", "podman has no SGX device plugin: the podman "
						      "variant is simulation only");
	if (o->podman && (!o->state_dir || o->state_dir[0] != '/'))
		return mse_err_field(err, "--state-dir", "the podman variant needs an absolute host "
							 "directory for the coordinator's state");
	if (!o->sgx && (!o->sim_dir || o->sim_dir[0] != '/'))
		return mse_err_field(err, "--sim-dir", "expected an absolute path on the node, got "
						       "'%s'", o->sim_dir ? o->sim_dir : "");
	if (!o->owner_key)
		return mse_err_field(err, "--owner-key", "required: the owner's public key (64 hex "
							 "digits or a file; mse coordinator keygen)");
	if (mse_coordclient_load_pub(o->owner_key, pk, err) != 0)
		return -1;
	if (mse_hex_encode(c.owner, sizeof(c.owner), pk, 32) != 0)
		return mse_err_set(err, "hex");
	if (o->coordinator_mrenclave) {
		if (strlen(o->coordinator_mrenclave) != 64 ||
		    mse_hex_decode_exact(mre, 32, o->coordinator_mrenclave, 64) != 0)
			return mse_err_expect(err, "--coordinator-mrenclave", "64 hex digits",
					      o->coordinator_mrenclave);
	} else if (o->sgx) {
		return mse_err_field(err, "--coordinator-mrenclave",
				     "required with --sgx: the coordinator's MRENCLAVE is Gramine's "
				     "measurement of its signed manifest, not computed here");
	} else {
		if (o->coordinator_bin)
			snprintf(bin, sizeof(bin), "%s", o->coordinator_bin);
		else if (mse_cspawn_coordinator_path(bin, sizeof(bin), err) != 0)
			return -1;
		if (mse_coordclient_measure(bin, pk, mre, err) != 0)
			return -1;
	}
	if (mse_hex_encode(c.mre, sizeof(c.mre), mre, 32) != 0)
		return mse_err_set(err, "hex");
	snprintf(toml, sizeof(toml), "%s/mse.toml", o->project);
	if (mse_project_load_first(toml, NULL, &p, err) != 0)
		return -1;
	c.p = p;
	if (mse_image_name(p->name, c.name, 52, err) != 0)
		goto out;
	if (o->dns && strspn(o->dns, "abcdefghijklmnopqrstuvwxyz0123456789-.") != strlen(o->dns)) {
		mse_err_expect(err, "--dns", "a DNS name (a-z, 0-9, '-', '.')", o->dns);
		goto out;
	}
	snprintf(c.coord, sizeof(c.coord), "%s-coordinator", c.name);
	snprintf(c.app_image, sizeof(c.app_image), "%s/mse-%s:%s", reg, c.name, tag);
	snprintf(c.coord_image, sizeof(c.coord_image), "%s/mse-coordinator:%s", reg, tag);
	c.pull = strcmp(reg, "localhost") == 0 ? "Never" : "IfNotPresent";
	if (mse_file_mkdirs(o->output, 0755, err) != 0 ||
	    emit(&c, "coordinator.yaml", write_coordinator, err) != 0 ||
	    emit(&c, "app.yaml", write_app, err) != 0)
		goto out;
	if (!o->podman &&
	    (emit(&c, "pdb.yaml", write_pdb, err) != 0 ||
	     emit(&c, "networkpolicy.yaml", write_netpol, err) != 0 ||
	     emit(&c, "kustomization.yaml", write_kustomization, err) != 0 ||
	     emit(&c, "README.md", write_readme, err) != 0))
		goto out;
	rc = 0;
out:
	mse_project_free(p);
	return rc;
}
