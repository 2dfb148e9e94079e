# SPDX-License-Identifier: Apache-2.0
"""The images and the manifests, run: `make k8s-check` (scripts/k8s-check.sh).

1. `mse image build` twice from the cached base: the same image IDs and
   manifest digests (reproducible); podman's own `image inspect` agrees; the
   app image holds the encrypted code only; an unmapped requirement is an
   error naming it.
2. `podman kube play` of `mse k8s render --podman` on a podman network with
   DNS: the coordinator Pod comes up, the owner verifies it and uploads the
   signed manifest, three replicas (a Deployment) attest and answer through the
   coordinator's CA (Python's ssl, pinning the CA only, from a client container
   on the same network); a replica whose process is killed is restarted by the
   engine, attests again and serves, without the owner; a new app version (a
   higher manifest seq, new images) rolls out with `kube play --replace` and
   the replicas keep the app key.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("MSE_ROOT", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("MSE_BUILD", ROOT / "build"))
MSE = str(BUILD / "mse")
BOOT = str(BUILD / "mse-bootstrap")
COORD = str(BUILD / "mse-coordinator")
UID = 65532

APP = '''
import hashlib, os
from flask import Flask
app = Flask(__name__)
VERSION = "%s"

@app.route("/health")
def health():
    return "ok"

@app.route("/version")
def version():
    return VERSION

@app.route("/appkey")
def appkey():
    with open(os.environ["APP_KEY_PATH"], "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
'''

# A client in a container on the pods' network: Python's ssl with the CA only,
# the name the CA certified (kapp) checked against each pod's answer.
CLIENT = '''
import json, socket, ssl, sys
ctx = ssl.create_default_context(cafile="/ca/ca.pem")
out = {}
for host in sys.argv[2:]:
    try:
        with socket.create_connection((host, 8443), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=sys.argv[1]) as t:
                res = {}
                for path in ("/health", "/version", "/appkey"):
                    t2 = ctx.wrap_socket(socket.create_connection((host, 8443), timeout=10),
                                         server_hostname=sys.argv[1])
                    t2.sendall(("GET %s HTTP/1.1\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n"
                                % (path, sys.argv[1])).encode())
                    data = b""
                    while True:
                        b = t2.recv(65536)
                        if not b:
                            break
                        data += b
                    t2.close()
                    head, _, body = data.partition(b"\\r\\n\\r\\n")
                    res[path] = [head.split(b" ")[1].decode(), body.decode()]
                out[host] = res
    except Exception as e:
        out[host] = {"error": repr(e)}
print(json.dumps(out))
'''


def run(*args, check=True, env=None, timeout=300, cwd=None):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env,
                       timeout=timeout, cwd=cwd)
    if check and r.returncode != 0:
        raise AssertionError(f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def wait_for(pred, timeout=90, what="condition"):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        last = pred()
        if last:
            return last
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what} (last: {last})")


def podman(*args, check=True, timeout=300):
    return run("podman", *args, check=check, timeout=timeout)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    if not shutil.which("podman"):
        pytest.fail("podman missing: scripts/deps.sh --k8s installs it")
    assert os.environ.get("CONTAINERS_CONF"), "run through scripts/k8s-check.sh"
    d = tmp_path_factory.mktemp("k8s")
    tag = uuid.uuid4().hex[:8]
    net = f"mse-k8s-{tag}"
    env = dict(os.environ, MSE_SIM_DIR=str(d / "sim"), MSE_COORDINATOR_BIN=COORD)
    run(MSE, "sim", "init", env=env)
    run(MSE, "scaffold", "kapp", env=env, cwd=d)
    proj = d / "kapp"
    (proj / "mse_src/app.py").write_text(APP % "v1")
    run(MSE, "coordinator", "keygen", "--out", d / "owner", env=env)
    run(MSE, "package", "--project", proj, "--output", d / "pkg1", "--quiet", env=env)
    w = dict(d=d, env=env, proj=proj, tag=tag, net=net, pkg1=next((d / "pkg1").glob("*.tar")),
             key=next((d / "pkg1").glob("*.key")), plays=[])
    # What the pods mount: the simulated platform (read-only) and the coordinator's state.
    for sub in ("sim", "state"):
        (d / sub).mkdir(exist_ok=True)
        for root, dirs, files in os.walk(d / sub):
            for n in dirs + files + [""]:
                os.chown(os.path.join(root, n), UID, UID)
    os.chmod(d, 0o755)
    for p in d.parents:
        if str(p).startswith("/tmp/") and p != Path("/tmp"):
            os.chmod(p, os.stat(p).st_mode | 0o005)
    podman("network", "create", net)
    yield w
    for f in reversed(w["plays"]):
        podman("kube", "down", f, check=False)
    podman("network", "rm", "-f", net, check=False)
    # This run's tags (the layers stay: the base is shared with the next run).
    refs = [f"localhost/{name}:{tag}-{suffix}" for suffix in ("a", "b", "v2")
            for name in ("mse-kapp", "mse-coordinator")]
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    for ref in refs:
        if ref in listed:
            r = podman("rmi", ref, check=False)
            if r.returncode != 0:
                print(f"podman rmi {ref}: {r.stderr.strip()}")


def build(w, pkg, tag):
    r = run(MSE, "image", "build", "--project", w["proj"], "--package", pkg, "--tag", tag,
            "--bin-dir", BUILD, "--json", env=w["env"], timeout=900)
    return json.loads(r.stdout)


def test_images_are_reproducible(world):
    w = world
    a = build(w, w["pkg1"], f"{w['tag']}-a")
    b = build(w, w["pkg1"], f"{w['tag']}-b")
    for img in ("app", "coordinator"):
        assert a[img]["id"] == b[img]["id"], (a, b)
        assert a[img]["manifest"] == b[img]["manifest"], (a, b)
        # podman's own view of what it loaded
        ins = json.loads(podman("image", "inspect", a[img]["ref"]).stdout)[0]
        assert "sha256:" + ins["Id"] == a[img]["id"]
        assert ins["Config"]["User"] == f"{UID}:{UID}"
    ref = a["app"]["ref"]
    assert ref == f"localhost/mse-kapp:{w['tag']}-a"
    # The app image carries the encrypted code, never the clear one.
    out = podman("run", "--rm", "--entrypoint", "/usr/bin/python3", ref, "-c",
                 "import os; print(sorted(os.listdir('/opt/mse/app')))").stdout
    names = json.loads(out.replace("'", '"'))
    assert "app.py.enc" in names and "app.py" not in names, names
    assert "requirements.txt" in names
    # flask came from Debian's python3-flask (dpkg -S), and imports in the image
    podman("run", "--rm", "--entrypoint", "/usr/bin/python3", ref, "-c", "import flask")
    w["v1"] = a


def test_unmapped_requirement_is_named(world, tmp_path):
    w = world
    proj = tmp_path / "p"
    shutil.copytree(w["proj"], proj)
    (proj / "mse_src/requirements.txt").write_text("flask\nno-such-dist-xyz>=1\n")
    r = run(MSE, "image", "build", "--project", proj, "--package", w["pkg1"], "--bin-dir", BUILD,
            "--no-load", "--output", tmp_path / "o", env=w["env"], check=False)
    assert r.returncode == 1
    assert "requirements.txt:2" in r.stderr and "no-such-dist-xyz" in r.stderr, r.stderr
    assert "dpkg -S" in r.stderr


def render(w, tag, out):
    run(MSE, "k8s", "render", "--project", w["proj"], "--replicas", "3", "--owner-key",
        w["d"] / "owner.pub", "--output", out, "--podman", "--state-dir", w["d"] / "state",
        "--sim-dir", w["d"] / "sim", "--tag", tag, "--dns", "kapp", env=w["env"])


def play(w, f, replace=False):
    args = ["kube", "play", "--network", w["net"]] + (["--replace"] if replace else []) + [f]
    podman(*args, timeout=300)
    if f not in w["plays"]:
        w["plays"].append(f)


def coord_status(w):
    r = run(MSE, "coordinator", "status", "--url", "127.0.0.1:7443", "--pin", w["pin"],
            env=w["env"], check=False, timeout=30)
    return json.loads(r.stdout) if r.returncode == 0 else None


def set_manifest(w, pkg, key, seq, extra=()):
    m = w["d"] / f"manifest{seq}.json"
    run(MSE, "coordinator", "manifest", "--coordinator-cert", w["pin"], "--package", pkg,
        "--code-key", key, "--project", w["proj"], "--dns", "kapp", "--deployment-id",
        "k8s-e2e", "--seq", seq, "--bootstrap", BOOT, "--size", "4096", "--allow-simulation",
        *extra, "--out", m, env=w["env"])
    run(MSE, "coordinator", "set", "--url", "127.0.0.1:7443", "--pin", w["pin"], "--manifest", m,
        "--owner-key", w["d"] / "owner.key", "--record", w["d"] / "owner.seq.json", env=w["env"])


def replica_pods(w):
    """The running replica pods (kube play names them kapp-pod-0, -1, ...)."""
    out = podman("ps", "--pod", "--format", "json").stdout
    return sorted(c["PodName"] for c in json.loads(out or "[]")
                  if c["Names"][0].endswith("-app") and c.get("PodName", "").startswith("kapp-pod-")
                  and c["State"] == "running")


def ask(w, hosts):
    r = podman("run", "--rm", "--network", w["net"], "-v", f"{w['d']}/ca:/ca:ro",
               "--entrypoint", "/usr/bin/python3", w["v1"]["app"]["ref"], "-c", CLIENT, "kapp",
               *hosts, timeout=120)
    return json.loads(r.stdout)


def all_serve(w, hosts, version):
    res = ask(w, hosts)
    ok = all(v.get("/health", [None])[0] == "200" and v.get("/version", [None, None])[1] == version
             for v in res.values())
    return res if ok else None


def diagnostics():
    """What podman saw: every kapp container's state and last log lines."""
    out = [podman("ps", "-a", "--format", "{{.Names}} {{.Status}}", check=False).stdout]
    names = [n.split()[0] for n in out[0].splitlines() if n.startswith("kapp")]
    for n in names:
        if not n.endswith("-infra"):
            r = podman("logs", "--tail", "15", n, check=False)
            out.append(f"--- {n}\n{r.stdout}{r.stderr}")
    return "\n".join(out)


def test_kube_play_attest_restart_rollout(world):
    try:
        kube_play_flow(world)
    except AssertionError as e:
        raise AssertionError(f"{e}\n\npodman:\n{diagnostics()}") from None


def kube_play_flow(world):
    w = world
    assert "v1" in w, "the image test did not run"
    tag = f"{w['tag']}-a"
    out = w["d"] / "m1"
    render(w, tag, out)
    # The coordinator, verified by the owner over its published port.
    play(w, out / "coordinator.yaml")
    mre = run(MSE, "coordinator", "measure", "--owner-key", w["d"] / "owner.pub",
              env=w["env"]).stdout.split()[0]
    wait_for(lambda: run(MSE, "verify", "--url", "127.0.0.1:7443", "--mrenclave", mre,
                         "--allow-simulation", "--output", w["d"] / "verified", env=w["env"],
                         check=False, timeout=30).returncode == 0, 90, "the coordinator to verify")
    w["pin"] = w["d"] / "verified/ratls.pem"
    set_manifest(w, w["pkg1"], w["key"], 1)
    (w["d"] / "ca").mkdir()
    run(MSE, "coordinator", "ca", "--url", "127.0.0.1:7443", "--pin", w["pin"], "--out",
        w["d"] / "ca/ca.pem", env=w["env"])
    os.chmod(w["d"] / "ca", 0o755)

    # Three replicas attest and serve through the CA.
    play(w, out / "app.yaml")
    pods = wait_for(lambda: (lambda p: p if len(p) == 3 else None)(replica_pods(w)), 60, "3 pods")
    res = wait_for(lambda: all_serve(w, pods, "v1"), 120, "3 replicas serving")
    keys = {v["/appkey"][1] for v in res.values()}
    assert len(keys) == 1, res
    st = coord_status(w)
    assert st["state"] == "ready" and st["attestations_accepted"] >= 3, st

    # A replica's process dies: the engine restarts it, it attests again, no owner involved.
    victim = pods[1]
    cname = f"{victim}-app"
    before = coord_status(w)["attestations_accepted"]
    pid = int(podman("inspect", "--format", "{{.State.Pid}}", cname).stdout.strip())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: coord_status(w)["attestations_accepted"] > before, 90,
             "the restarted replica to attest again")
    res = wait_for(lambda: all_serve(w, [victim], "v1"), 60, "the restarted replica serving")
    assert res[victim]["/appkey"][1] in keys
    restarts = json.loads(podman("inspect", cname).stdout)[0].get("RestartCount", 0)
    assert restarts >= 1

    # A new version: the same code key, a new package and images, a higher seq
    # (the old identity kept while the old replicas run), kube play --replace.
    (w["proj"] / "mse_src/app.py").write_text(APP % "v2")
    run(MSE, "package", "--project", w["proj"], "--output", w["d"] / "pkg2", "--key", w["key"],
        "--quiet", env=w["env"])
    pkg2 = next((w["d"] / "pkg2").glob("*.tar"))
    v2 = build(w, pkg2, f"{w['tag']}-v2")
    assert v2["app"]["id"] != w["v1"]["app"]["id"]
    assert v2["coordinator"]["id"] == w["v1"]["coordinator"]["id"]
    m1 = json.loads((w["d"] / "manifest1.json").read_text())
    old = [i["mrenclave"] for i in m1.get("identities", []) if "mrenclave" in i]
    assert len(old) == 1, m1
    set_manifest(w, pkg2, w["key"], 2, [x for m in old for x in ("--mrenclave", m)])
    out2 = w["d"] / "m2"
    render(w, f"{w['tag']}-v2", out2)
    play(w, out2 / "app.yaml", replace=True)
    pods2 = wait_for(lambda: (lambda p: p if len(p) == 3 else None)(replica_pods(w)), 90,
                     "3 new pods")
    res = wait_for(lambda: all_serve(w, pods2, "v2"), 120, "3 v2 replicas serving")
    assert {v["/appkey"][1] for v in res.values()} == keys, res
    st = coord_status(w)
    assert st["seq"] == 2, st
    # The owner's record of what it set (issue 17's rollback check) agrees.
    run(MSE, "coordinator", "status", "--url", "127.0.0.1:7443", "--pin", w["pin"], "--record",
        w["d"] / "owner.seq.json", env=w["env"])
