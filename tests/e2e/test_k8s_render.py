# SPDX-License-Identifier: Apache-2.0
"""`mse k8s render`: every object it writes is validated offline against the
Kubernetes API's JSON schemas (npm's kubernetes-models, pinned in
tests/k8s/package-lock.json, installed by scripts/deps.sh into
build/k8s-validate/), unknown fields included (tests/k8s/validate.js walks the
package's declarations), the YAML is yamllint-clean (Debian's yamllint), and
what the objects say is checked against independent sources: the
coordinator's MRENCLAVE against `mse coordinator measure`, the probes against
mse.toml, selectors against the pod labels they must match. The validator and
yamllint are shown to fail on planted mistakes."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(os.environ.get("MSE_ROOT", Path(__file__).resolve().parents[2]))
MSE = os.path.abspath(os.environ.get("MSE_BIN", "build/mse"))
BUILD = Path(os.environ.get("MSE_BUILD", "build/san"))
VALIDATOR = ROOT / "tests/k8s/validate.js"
MODULES = ROOT / "build/k8s-validate/node_modules"
YAMLLINT_CONF = ROOT / "tests/k8s/yamllint.yaml"

pytestmark = pytest.mark.skipif(not (BUILD / "mse-coordinator").exists(),
                                reason="mse-coordinator not built")


def run(*args, check=True, env=None, timeout=120, cwd=None):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env,
                       timeout=timeout, cwd=cwd)
    if check and r.returncode != 0:
        raise AssertionError(f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    d = tmp_path_factory.mktemp("k8s")
    env = dict(os.environ, MSE_COORDINATOR_BIN=str(BUILD / "mse-coordinator"))
    run(MSE, "scaffold", "shop", cwd=d, env=env)
    run(MSE, "coordinator", "keygen", "--out", d / "owner", env=env)
    return d, env


def load(outdir):
    docs = []
    for f in sorted(outdir.glob("*.yaml")):
        for i, o in enumerate(yaml.safe_load_all(f.read_text())):
            if o is not None:
                docs.append({"file": f.name, "index": i, "object": o})
    return docs


def validate(docs, tmp):
    assert MODULES.is_dir(), f"{MODULES} missing: run 'scripts/deps.sh --check' (make check does)"
    src = tmp / "objects.json"
    src.write_text(json.dumps([d for d in docs if d["object"]["kind"] != "Kustomization"]))
    return run("node", VALIDATOR, MODULES, src, check=False)


def yamllint(path):
    return run("yamllint", "-s", "-c", YAMLLINT_CONF, path, check=False)


def by_kind(docs):
    out = {}
    for d in docs:
        out.setdefault(d["object"]["kind"], []).append(d["object"])
    return out


def render(project, out, *extra, check=True):
    d, env = project
    return run(MSE, "k8s", "render", "--project", d / "shop", "--owner-key", d / "owner.pub",
               "--output", out, *extra, env=env, check=check)


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def test_render_default_valid_and_consistent(project, tmp_path):
    out = tmp_path / "out"
    render(project, out, "--replicas", "3", "--namespace", "shop-ns")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "app.yaml", "coordinator.yaml", "kustomization.yaml",
                     "networkpolicy.yaml", "pdb.yaml"]
    lint = yamllint(out)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    docs = load(out)
    v = validate(docs, tmp_path)
    assert v.returncode == 0 and "7 objects valid" in v.stdout, v.stdout + v.stderr
    k = by_kind(docs)
    assert sorted(k) == ["Deployment", "Kustomization", "NetworkPolicy", "PodDisruptionBudget",
                         "Service", "StatefulSet"]
    for o in docs:
        if o["object"]["kind"] != "Kustomization":
            assert o["object"]["metadata"]["namespace"] == "shop-ns"
    kust = k["Kustomization"][0]
    assert kust["namespace"] == "shop-ns"
    assert sorted(kust["resources"]) == sorted(n for n in names if n.endswith(".yaml")
                                               and n != "kustomization.yaml")

    # The coordinator: one replica, a claim for its state, the owner's key in its arguments.
    d, env = project
    owner = (d / "owner.pub").read_text().strip()
    sts = k["StatefulSet"][0]
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "state"
    ccont = sts["spec"]["template"]["spec"]["containers"][0]
    assert ccont["args"][ccont["args"].index("--owner-key") + 1] == owner
    assert {"name": "state", "mountPath": "/var/lib/mse-coordinator"} in ccont["volumeMounts"]
    svc = {s["metadata"]["name"]: s for s in k["Service"]}
    assert sts["spec"]["serviceName"] in svc
    assert matches(svc[sts["spec"]["serviceName"]]["spec"]["selector"],
                   sts["spec"]["template"]["metadata"]["labels"])

    # The replicas: the MRENCLAVE `mse coordinator measure` computes, independently.
    measured = run(MSE, "coordinator", "measure", "--owner-key", d / "owner.pub",
                   env=env).stdout.split()[0]
    dep = k["Deployment"][0]
    assert dep["spec"]["replicas"] == 3
    pod = dep["spec"]["template"]
    c = pod["spec"]["containers"][0]
    args = c["args"]
    assert args[args.index("--coordinator-mrenclave") + 1] == measured
    assert args[0] == "app:app" and "--simulation" in args
    env_vars = {e["name"]: e.get("value") for e in c["env"]}
    assert env_vars["MSE_COORDINATOR"] == f"{sts['metadata']['name']}:7443"
    toml = (d / "shop/mse.toml").read_text()
    health = [l.split("=", 1)[1].strip().strip('"') for l in toml.splitlines()
              if l.startswith("healthcheck_endpoint")][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] == health
        assert c[probe]["httpGet"]["scheme"] == "HTTPS"
    # restricted Pod Security Standard
    psc, csc = pod["spec"]["securityContext"], c["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert csc["allowPrivilegeEscalation"] is False and csc["capabilities"]["drop"] == ["ALL"]
    assert csc["readOnlyRootFilesystem"] is True
    assert c["imagePullPolicy"] == "Never" and c["image"] == "localhost/mse-shop:latest"
    assert not any(r.startswith("sgx.intel.com/") for r in c["resources"]["limits"])
    assert matches(dep["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
    app_svc = svc[dep["metadata"]["name"]]
    assert matches(app_svc["spec"]["selector"], pod["metadata"]["labels"])
    assert not matches(app_svc["spec"]["selector"], sts["spec"]["template"]["metadata"]["labels"])

    # PDB and network policies select what they are meant to.
    pdb = k["PodDisruptionBudget"][0]
    assert matches(pdb["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
    pols = {p["metadata"]["name"]: p for p in k["NetworkPolicy"]}
    cpol = pols[sts["metadata"]["name"]]
    assert matches(cpol["spec"]["podSelector"]["matchLabels"],
                   sts["spec"]["template"]["metadata"]["labels"])
    (rule,) = cpol["spec"]["ingress"]
    assert matches(rule["from"][0]["podSelector"]["matchLabels"], pod["metadata"]["labels"])
    assert rule["ports"] == [{"protocol": "TCP", "port": 7443}]
    apol = pols[dep["metadata"]["name"]]
    assert matches(apol["spec"]["podSelector"]["matchLabels"], pod["metadata"]["labels"])
    assert apol["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8443}]}]
    assert matches(apol["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"],
                   sts["spec"]["template"]["metadata"]["labels"])
    readme = (out / "README.md").read_text()
    assert f"port-forward statefulset/{sts['metadata']['name']} 7443:7443" in readme
    assert "-n shop-ns" in readme and measured in readme


def test_render_sgx_resources_from_enclave_size(project, tmp_path):
    out = tmp_path / "sgx"
    mre = "ab" * 32
    render(project, out, "--replicas", "2", "--sgx", "--size", "2048",
           "--coordinator-mrenclave", mre, "--registry", "registry.example/mse", "--tag", "v2")
    assert yamllint(out).returncode == 0
    docs = load(out)
    v = validate(docs, tmp_path)
    assert v.returncode == 0, v.stdout + v.stderr
    k = by_kind(docs)
    c = k["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]
    lim = c["resources"]["limits"]
    assert lim["sgx.intel.com/epc"] == "2048Mi"
    assert lim["sgx.intel.com/enclave"] == 1 and lim["sgx.intel.com/provision"] == 1
    assert c["args"][c["args"].index("--size") + 1] == "2048"
    assert c["args"][c["args"].index("--coordinator-mrenclave") + 1] == mre
    assert "--simulation" not in c["args"]
    assert not any(v.get("name") == "sim" for v in
                   k["Deployment"][0]["spec"]["template"]["spec"]["volumes"])
    assert c["image"] == "registry.example/mse/mse-shop:v2" and c["imagePullPolicy"] == "IfNotPresent"
    # the replicas may reach the in-cluster PCCS
    pol = [p for p in k["NetworkPolicy"] if p["metadata"]["name"] == "shop"][0]
    assert any(8081 in [p["port"] for p in e["ports"]] for e in pol["spec"]["egress"])


def test_render_podman_variant(project, tmp_path):
    out = tmp_path / "pm"
    render(project, out, "--replicas", "3", "--podman", "--state-dir", "/srv/state",
           "--sim-dir", "/srv/sim")
    assert sorted(p.name for p in out.iterdir()) == ["app.yaml", "coordinator.yaml"]
    assert yamllint(out).returncode == 0
    docs = load(out)
    v = validate(docs, tmp_path)
    assert v.returncode == 0, v.stdout + v.stderr
    k = by_kind(docs)
    assert sorted(k) == ["Deployment", "Pod"]
    pod = k["Pod"][0]
    assert pod["metadata"]["name"] == "shop-coordinator"
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols["state"]["hostPath"]["path"] == "/srv/state"
    assert vols["sim"]["hostPath"]["path"] == "/srv/sim"
    c = k["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]
    assert "readinessProbe" not in c and "livenessProbe" not in c


def test_render_metrics_port(project, tmp_path):
    """--metrics-port: the replicas' metrics address by $MSE_REPLICA_METRICS (never in the
    measured arguments), a containerPort, the prometheus.io annotations Prometheus'
    kubernetes_sd relabelling reads, and a NetworkPolicy rule letting scrapers in."""
    out, plain = tmp_path / "m", tmp_path / "plain"
    render(project, out, "--replicas", "2", "--metrics-port", "9100")
    render(project, plain, "--replicas", "2")
    assert yamllint(out).returncode == 0
    docs = load(out)
    v = validate(docs, tmp_path)
    assert v.returncode == 0 and "7 objects valid" in v.stdout, v.stdout + v.stderr
    k = by_kind(docs)
    pod = k["Deployment"][0]["spec"]["template"]
    ann = pod["metadata"]["annotations"]
    assert ann == {"prometheus.io/scrape": "true", "prometheus.io/port": "9100",
                   "prometheus.io/path": "/metrics"}
    c = pod["spec"]["containers"][0]
    assert {"name": "metrics", "containerPort": 9100} in c["ports"]
    env_vars = {e["name"]: e.get("value") for e in c["env"]}
    assert env_vars["MSE_REPLICA_METRICS"] == "0.0.0.0:9100"
    # The arguments (what the enclave measures) are those of a render without metrics.
    pc = by_kind(load(plain))["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == pc["args"] and "--metrics" not in c["args"]
    assert "MSE_REPLICA_METRICS" not in {e["name"] for e in pc["env"]}
    pol = [p for p in k["NetworkPolicy"] if p["metadata"]["name"] == "shop"][0]
    assert any([p["port"] for p in r["ports"]] == [9100] for r in pol["spec"]["ingress"])
    r = render(project, tmp_path / "e", "--replicas", "2", "--metrics-port", "8443", check=False)
    assert r.returncode == 1 and "--metrics-port" in r.stderr and "8443" in r.stderr, r.stderr
    r = render(project, tmp_path / "e", "--replicas", "2", "--metrics-port", "0", check=False)
    assert r.returncode == 2 and "--metrics-port" in r.stderr, r.stderr


def test_validator_and_yamllint_catch_mistakes(project, tmp_path):
    out = tmp_path / "bad"
    render(project, out, "--replicas", "1")
    docs = load(out)
    dep = [d for d in docs if d["object"]["kind"] == "Deployment"][0]["object"]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    c["imagePullPolicy"] = "Sometimes"              # schema: enum
    c["resources"]["limitz"] = {"cpu": "1"}         # unknown field (the schema allows it)
    dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = "yes"  # type
    v = validate(docs, tmp_path)
    assert v.returncode == 1, v.stdout
    assert "imagePullPolicy: must be equal to one of the allowed values" in v.stdout
    assert "/spec/template/spec/containers/0/resources/limitz: unknown field" in v.stdout
    assert "runAsNonRoot: must be boolean" in v.stdout
    # a kind the API does not have
    v = validate([{"file": "x.yaml", "index": 0,
                   "object": {"apiVersion": "apps/v1", "kind": "Deploymnet",
                              "metadata": {"name": "x"}}}], tmp_path)
    assert v.returncode == 1 and "no schema for apiVersion apps/v1, kind Deploymnet" in v.stdout
    bad = out / "app.yaml"
    bad.write_text(bad.read_text().replace("  replicas: 1", "   replicas: 1"))
    assert yamllint(out).returncode != 0


@pytest.mark.parametrize("args,message", [
    (["--replicas", "0"], "--replicas: expected a number in 1..100, got '0'"),
    (["--replicas", "2", "--sgx"], "--coordinator-mrenclave: required with --sgx"),
    (["--replicas", "2", "--namespace", "Bad_NS"], "--namespace"),
    (["--replicas", "2", "--size", "3000"], "--size: expected a power of two"),
    (["--replicas", "2", "--podman"], "--state-dir"),
    (["--replicas", "2", "--metrics-port", "0"], "--metrics-port: expected a number in 1..65535, got '0'"),
    (["--replicas", "2", "--size", "+8"], "--size: expected a number in 1..1048576, got '+8'"),
])
def test_render_errors_name_the_option(project, tmp_path, args, message):
    r = render(project, tmp_path / "e", *args, check=False)
    assert r.returncode in (1, 2) and message in r.stderr, r.stderr
    assert not (tmp_path / "e").exists()


# ---- mse image build: what it refuses before any mmdebstrap or podman -----

def test_image_sgx_refused_naming_gramine(project, tmp_path):
    d, env = project
    r = run(MSE, "image", "build", "--project", d / "shop", "--sgx", env=env, check=False)
    assert r.returncode == 1 and "--sgx" in r.stderr and "Gramine" in r.stderr, r.stderr


def test_image_unmapped_requirement_named_with_its_line(project, tmp_path):
    """flask maps (dpkg -S on python3-flask's metadata, as dpkg-query says
    independently); a requirement no Debian package provides is named."""
    d, env = project
    proj = tmp_path / "p"
    shutil.copytree(d / "shop", proj)
    run(MSE, "package", "--project", proj, "--output", tmp_path / "pkg", "--quiet", env=env)
    pkg = next((tmp_path / "pkg").glob("*.tar"))
    (proj / "mse_src/requirements.txt").write_text("# deps\nFlask\nnot-a-debian-dist>=2\n")
    r = run(MSE, "image", "build", "--project", proj, "--package", pkg, "--bin-dir",
            BUILD, "--no-load", "--output", tmp_path / "o", "--cache", tmp_path / "cache",
            env=env, check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "requirements.txt:3" in r.stderr and "'not-a-debian-dist'" in r.stderr, r.stderr
    assert "'Flask'" not in r.stderr
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())
    # the package that maps flask, by dpkg's own database
    owner = run("dpkg-query", "-S", "/usr/lib/python3/dist-packages/flask/__init__.py").stdout
    assert owner.startswith("python3-flask:")


def test_image_needs_a_package(project, tmp_path):
    d, env = project
    proj = tmp_path / "p"
    shutil.copytree(d / "shop", proj)
    r = run(MSE, "image", "build", "--project", proj, env=env, check=False)
    assert r.returncode == 1 and "--package" in r.stderr and "mse coordinator manifest" in r.stderr
