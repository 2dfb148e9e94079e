# SPDX-License-Identifier: Apache-2.0
"""mse-coordinator end to end in simulation: the owner verifies the coordinator
(`mse verify --mrenclave` from `mse coordinator measure`), builds, signs and uploads
the manifest; replicas (mse-bootstrap --coordinator-mrenclave) attest to it and are
provisioned; clients reach any replica with `curl --cacert ca.pem`. Checked with
independent tools: curl, openssl verify, python3-cryptography, the files' modes.
Refusals: a tampered package, a replica expecting another coordinator, a TCB status
or simulation the manifest refuses, another owner's coordinator; each names its step
and nothing is provisioned. Restart keeps the state."""
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from cryptography import x509

MSE = os.environ.get("MSE_BIN", "build/mse")
BUILD = Path(os.environ.get("MSE_BUILD", "build"))
BOOT = os.environ.get("MSE_BOOTSTRAP", str(BUILD / "mse-bootstrap"))
COORD = str(BUILD / "mse-coordinator")

APP = '''
import hashlib, os
from flask import Flask
app = Flask(__name__)

@app.route("/health")
def health():
    return "ok"

@app.route("/appkey")
def appkey():
    with open(os.environ["APP_KEY_PATH"], "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()

@app.route("/secret")
def secret():
    import json
    with open(os.environ["SECRETS_PATH"]) as f:
        s = json.load(f)
    with open(os.environ["SEALED_SECRETS_PATH"]) as f:
        t = json.load(f)
    return {"secrets": s, "sealed": t}
'''

pytestmark = pytest.mark.skipif(not os.path.exists(COORD), reason=f"{COORD} not built")


def run(*args, check=True, env=None, timeout=120, cwd=None):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env,
                       timeout=timeout, cwd=cwd)
    if check and r.returncode != 0:
        raise AssertionError(f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def wait_for(pred, timeout=60, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Coordinator:
    def __init__(self, d, owner_pub, env):
        self.d, self.owner_pub, self.env = Path(d), owner_pub, env
        self.proc = None
        self.extra = []
        self.d.mkdir(parents=True, exist_ok=True)

    def start(self):
        info = self.d / "state/coordinator.json"
        if info.exists():
            info.unlink()
        self.log = open(self.d / "coord.log", "a")
        self.proc = subprocess.Popen([COORD, "--owner-key", self.owner_pub, "--state-dir",
                                      self.d / "state", "--host", "127.0.0.1", "--port", "0",
                                      *self.extra],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        wait_for(lambda: info.exists() or self.proc.poll() is not None, what="coordinator.json")
        assert self.proc.poll() is None, self.logtext()
        self.port = json.loads(info.read_text())["port"]
        self.url = f"127.0.0.1:{self.port}"
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
            # A clean exit (under ASan: nothing leaked, no error) after serving.
            assert self.proc.returncode == 0, self.logtext()[-3000:]
        self.log.close()

    def logtext(self):
        return (self.d / "coord.log").read_text()


class Owner:
    def __init__(self, d, env):
        self.d, self.env = Path(d), env
        run(MSE, "coordinator", "keygen", "--out", self.d / "owner", env=env)
        self.pub = (self.d / "owner.pub").read_text().strip()
        self.key = self.d / "owner.key"

    def verify(self, coord, out):
        mre = run(MSE, "coordinator", "measure", "--owner-key", self.pub, "--coordinator", COORD,
                  env=self.env).stdout.strip()
        run(MSE, "verify", "--url", coord.url, "--mrenclave", mre, "--allow-simulation",
            "--output", out, env=self.env)
        return mre, Path(out) / "ratls.pem"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("coord")
    env = dict(os.environ, MSE_SIM_DIR=str(d / "sim"))
    run(MSE, "sim", "init", env=env)
    run(os.path.abspath(MSE), "scaffold", "app1", env=env, cwd=d)
    (d / "app1/mse_src/app.py").write_text(APP)
    (d / "app1/secrets.json").write_text('{"api": "s3cret"}')
    (d / "app1/secrets_to_seal.json").write_text('{"sealed": "only-in-enclave"}')
    run(MSE, "package", "--project", d / "app1", "--output", d / "pkg", "--quiet", env=env)
    pkg = next((d / "pkg").glob("*.tar"))
    key = next((d / "pkg").glob("*.key"))
    appdir = d / "appdir"
    with tarfile.open(pkg) as t:
        t.extract("app.tar", d / "x")
    with tarfile.open(d / "x/app.tar") as t:
        t.extractall(appdir)
    owner = Owner(d, env)
    coord = Coordinator(d / "c1", owner.pub, env).start()
    mre, pin = owner.verify(coord, d / "c1/verified")
    w = dict(d=d, env=env, pkg=pkg, key=key, appdir=appdir, owner=owner, coord=coord,
             mre=mre, pin=pin, replicas=[], deployment="dep-e2e", seq=0)
    set_manifest(w, ("--allow-simulation",))
    run(MSE, "coordinator", "ca", "--url", coord.url, "--pin", pin, "--out", d / "ca.pem", env=env)
    yield w
    for r in w["replicas"]:
        r.stop()
    coord.stop()


def set_manifest(w, extra=(), expect_ok=True, coord=None, pin=None):
    coord = coord or w["coord"]
    pin = pin or w["pin"]
    w["seq"] += 1
    m = w["d"] / f"manifest{w['seq']}.json"
    run(MSE, "coordinator", "manifest", "--coordinator-cert", pin, "--package", w["pkg"],
        "--code-key", w["key"], "--project", w["d"] / "app1", "--dns", "localhost", "--dns",
        "127.0.0.1", "--deployment-id", w["deployment"], "--seq", w["seq"], "--bootstrap", BOOT,
        *extra, "--out", m, env=w["env"])
    return run(MSE, "coordinator", "set", "--url", coord.url, "--pin", pin, "--manifest", m,
               "--owner-key", w["owner"].key, env=w["env"], check=expect_ok)


class Replica:
    def __init__(self, w, name, appdir=None, coord_mre=None, coord=None):
        self.ws = w["d"] / "replicas" / name
        self.ws.mkdir(parents=True)
        self.name = name
        env = dict(w["env"], MSE_COORDINATOR=(coord or w["coord"]).url)
        self.logf = open(self.ws.parent / f"{name}.log", "w")
        self.proc = subprocess.Popen(
            [BOOT, "app:app", "--app-dir", appdir or w["appdir"], "--coordinator-mrenclave",
             coord_mre or w["mre"], "--id", name, "--host", "127.0.0.1", "--port", "0",
             "--workspace", self.ws / "ws", "--no-sandbox", "--timeout", "20"],
            stdout=self.logf, stderr=subprocess.STDOUT, env=env)

    def log(self):
        return (self.ws.parent / f"{self.name}.log").read_text()

    def wait_serving(self):
        m = wait_for(lambda: re.search(r"listening on https://127\.0\.0\.1:(\d+)", self.log())
                     or self.proc.poll() is not None, what=f"{self.name} serving")
        assert self.proc.poll() is None, self.log()
        self.port = int(m.group(1))
        return self

    def wait_exit(self):
        self.proc.wait(timeout=60)
        return self.proc.returncode

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.logf.close()


def curl(w, port, path, host="localhost"):
    return run("curl", "-sS", "--fail", "--cacert", w["d"] / "ca.pem", "--resolve",
               f"{host}:{port}:127.0.0.1", f"https://{host}:{port}{path}", check=False)


def status(w, coord=None, pin=None):
    coord = coord or w["coord"]
    return json.loads(run(MSE, "coordinator", "status", "--url", coord.url, "--pin",
                          pin or w["pin"], env=w["env"]).stdout)


def test_three_replicas_one_app_key_one_ca(world):
    w = world
    reps = [Replica(w, f"r{i}") for i in range(3)]
    w["replicas"].extend(reps)
    for r in reps:
        r.wait_serving()
    keys = set()
    ca = x509.load_pem_x509_certificate((w["d"] / "ca.pem").read_bytes())
    for r in reps:
        kp = r.ws / "ws/key/app.key"
        assert stat.S_IMODE(kp.stat().st_mode) == 0o400
        keys.add(kp.read_bytes())
        # Clients pin the CA only: both names of the manifest work, on every replica.
        for host in ("localhost", "127.0.0.1"):
            res = curl(w, r.port, "/health", host)
            assert res.returncode == 0 and res.stdout == "ok", res.stderr
        served = curl(w, r.port, "/appkey")
        assert served.stdout == hashlib.sha256(kp.read_bytes()).hexdigest()
        sec = json.loads(curl(w, r.port, "/secret").stdout)
        assert sec == {"secrets": {"api": "s3cret"}, "sealed": {"sealed": "only-in-enclave"}}
        # The served leaf is issued by the CA (openssl, independently).
        leaf = run("openssl", "s_client", "-connect", f"127.0.0.1:{r.port}", "-servername",
                   "localhost", "-showcerts", check=False, timeout=30).stdout
        pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", leaf, re.S)
        (r.ws / "leaf.pem").write_text(pem.group(0) + "\n")
        v = run("openssl", "verify", "-CAfile", w["d"] / "ca.pem", r.ws / "leaf.pem", check=False)
        assert v.returncode == 0, v.stdout + v.stderr
        cert = x509.load_pem_x509_certificate(pem.group(0).encode())
        assert cert.issuer == ca.subject
    assert len(keys) == 1 and len(next(iter(keys))) == 32
    st = status(w)
    assert st["replicas"] >= 3 and st["attestations_accepted"] >= 3
    # A plain curl without the CA does not trust the replica.
    bad = run("curl", "-sS", "--fail", "--resolve", f"localhost:{reps[0].port}:127.0.0.1",
              f"https://localhost:{reps[0].port}/health", check=False)
    assert bad.returncode != 0


def refused_nothing_provisioned(r):
    ws = r.ws / "ws"
    assert not (ws / "mse-app").exists()
    assert not (ws / "key/app.key").exists()
    assert not (ws / "root/.cache/mse/secrets.json").exists()


def test_tampered_package_is_refused(world):
    w = world
    bad = w["d"] / "tampered"
    shutil.copytree(w["appdir"], bad)
    enc = next(bad.rglob("*.enc"))
    data = bytearray(enc.read_bytes())
    data[-1] ^= 1
    enc.write_bytes(bytes(data))
    before = status(w)["attestations_refused"]
    r = Replica(w, "tampered", appdir=bad)
    assert r.wait_exit() == 1
    log = r.log()
    assert "[measurement] refused by the coordinator" in log, log
    assert "refused at [measurement]" in w["coord"].logtext()
    assert status(w)["attestations_refused"] == before + 1
    refused_nothing_provisioned(r)
    r.stop()


def test_replica_expecting_another_coordinator_sends_nothing(world):
    w = world
    st = status(w)
    other = hashlib.sha256(b"another coordinator").hexdigest()
    r = Replica(w, "elsewhere", coord_mre=other)
    assert r.wait_exit() == 1
    log = r.log()
    assert "[measurement]" in log and "nothing sent" in log, log
    assert other in log
    # The coordinator never saw a request from it: no refusal, no acceptance, no log line.
    st2 = status(w)
    assert st2["attestations_refused"] == st["attestations_refused"]
    assert st2["attestations_accepted"] == st["attestations_accepted"]
    assert "elsewhere" not in w["coord"].logtext()
    refused_nothing_provisioned(r)
    r.stop()


def out_of_date_collateral(w, dest):
    """The simulation's collateral with the platform's TCB level marked OutOfDate,
    re-signed with the simulation's TCB signing key (PCS v4 layout: ECDSA-P256-SHA256
    over the exact tcbInfo bytes, r||s in hex)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    sim = w["d"] / "sim"
    shutil.copytree(sim / "collateral", dest)
    info = json.loads((dest / "tcb_info.json").read_text())["tcbInfo"]
    lvl = info["tcbLevels"][0]
    assert lvl["tcbStatus"] == "UpToDate"
    lvl["tcbStatus"] = "OutOfDate"
    lvl["advisoryIDs"] = ["INTEL-SA-00999"]
    text = json.dumps(info, separators=(",", ":"))
    key = serialization.load_pem_private_key((sim / "keys/tcb_signing.key.pem").read_bytes(), None)
    r, s_ = decode_dss_signature(key.sign(text.encode(), ec.ECDSA(hashes.SHA256())))
    sig = r.to_bytes(32, "big").hex() + s_.to_bytes(32, "big").hex()
    (dest / "tcb_info.json").write_text('{"tcbInfo":' + text + ',"signature":"' + sig + '"}')


def test_tcb_status_the_manifest_refuses(world, tmp_path):
    w = world
    out_of_date_collateral(w, tmp_path / "coll")
    c3 = Coordinator(tmp_path / "c3", w["owner"].pub, w["env"])
    c3.extra = ["--collateral", tmp_path / "coll"]
    c3.start()
    try:
        _, pin3 = w["owner"].verify(c3, tmp_path / "v3")
        saved = w["seq"]
        set_manifest(w, ("--allow-simulation",), coord=c3, pin=pin3)
        r = Replica(w, "tcb", coord=c3)
        assert r.wait_exit() == 1
        log = r.log()
        assert "[tcb-status] refused by the coordinator" in log and "OutOfDate" in log, log
        assert "refused at [tcb-status]" in c3.logtext()
        refused_nothing_provisioned(r)
        r.stop()
        # The same platform is accepted once the owner accepts OutOfDate.
        set_manifest(w, ("--allow-simulation", "--accept-tcb-status", "UpToDate,OutOfDate"),
                     coord=c3, pin=pin3)
        Replica(w, "tcb-ok", coord=c3).wait_serving().stop()
        w["seq"] = saved
    finally:
        c3.stop()


def test_simulation_refused_unless_the_manifest_allows_it(world):
    w = world
    try:
        set_manifest(w)  # no --allow-simulation
        r = Replica(w, "nosim")
        assert r.wait_exit() == 1
        log = r.log()
        assert "[pck-chain] refused by the coordinator" in log, log
        assert "simulation quotes are refused by the manifest" in log, log
        refused_nothing_provisioned(r)
        r.stop()
    finally:
        set_manifest(w, ("--allow-simulation",))
    Replica(w, "again").wait_serving().stop()


def test_other_owner_key_coordinator_refuses_the_manifest(world, tmp_path):
    w = world
    other = Owner(tmp_path, w["env"])
    c2 = Coordinator(tmp_path / "c2", other.pub, w["env"]).start()
    try:
        # The owner checks what it runs: the measurement says another owner key.
        mine = run(MSE, "coordinator", "measure", "--owner-key", w["owner"].pub, "--coordinator",
                   COORD, env=w["env"]).stdout.strip()
        r = run(MSE, "verify", "--url", c2.url, "--mrenclave", mine, "--allow-simulation",
                env=w["env"], check=False)
        assert r.returncode != 0 and "measurement" in r.stdout + r.stderr
        # Pinned anyway (say, the operator's word): the coordinator refuses the owner's manifest.
        _, pin2 = other.verify(c2, tmp_path / "v2")
        saved = w["seq"]
        res = set_manifest(w, ("--allow-simulation",), expect_ok=False, coord=c2, pin=pin2)
        w["seq"] = saved
        assert res.returncode == 1
        assert "[signature]" in res.stderr and "403" in res.stderr, res.stderr
        assert status(w, c2, pin2)["state"] == "waiting-manifest"
    finally:
        c2.stop()


def test_restart_keeps_state(world):
    w = world
    before = status(w)
    ca_before = (w["d"] / "ca.pem").read_text()
    key_before = (w["replicas"][0].ws / "ws/key/app.key").read_bytes()
    state = w["coord"].d / "state/state.sealed"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert b"s3cret" not in state.read_bytes() and b"dep-e2e" not in state.read_bytes()
    w["coord"].stop()
    w["coord"].start()
    # A new RA-TLS key: the owner verifies again (same MRENCLAVE).
    mre, w["pin"] = w["owner"].verify(w["coord"], w["d"] / "c1/verified-again")
    assert mre == w["mre"]
    after = status(w)
    for k in ("deployment_id", "seq", "manifest_sha256", "state"):
        assert after[k] == before[k]
    ca = run(MSE, "coordinator", "ca", "--url", w["coord"].url, "--pin", w["pin"],
             env=w["env"]).stdout
    assert ca == ca_before
    r = Replica(w, "after-restart")
    w["replicas"].append(r)
    r.wait_serving()
    assert (r.ws / "ws/key/app.key").read_bytes() == key_before
    assert curl(w, r.port, "/health").stdout == "ok"


def test_api_bounds_sizes_and_rates(world, tmp_path):
    """Bodies over their route's limit get 413 (nothing parsed); a client over --rate
    requests per second gets 429 with Retry-After; the coordinator keeps serving."""
    import http.client
    import ssl
    w = world
    c = Coordinator(tmp_path / "c4", w["owner"].pub, w["env"])
    c.extra = ["--rate", "5"]
    c.start()
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # bounds, not trust, are under test here

        def req(method, path, body=None, headers=None):
            h = http.client.HTTPSConnection("127.0.0.1", c.port, context=ctx, timeout=30)
            try:
                h.request(method, path, body, headers or {})
                r = h.getresponse()
                return r.status, dict(r.getheaders()), r.read()
            finally:
                h.close()

        st, _, _ = req("POST", "/manifest", b"{" + b" " * (1 << 20) + b"}",
                       {"Mse-Owner-Signature": "00" * 64})
        assert st == 413
        time.sleep(1.1)
        st, _, _ = req("POST", "/replica", b'{"instance":"' + b"a" * 5000 + b'"}')
        assert st == 413
        time.sleep(1.1)
        statuses = [req("GET", "/status") for _ in range(12)]
        codes = [s for s, _, _ in statuses]
        assert codes[:5] == [200] * 5 and 429 in codes, codes
        assert any(h.get("Retry-After") == "1" for s, h, _ in statuses if s == 429)
        time.sleep(1.1)
        assert req("GET", "/status")[0] == 200
        # No client certificate: POST /replica is refused with the step named.
        st, _, body = req("POST", "/replica", b"{}")
        assert st == 503 or (st == 403 and b"client-certificate" in body), (st, body)
    finally:
        c.stop()


def test_manifest_from_the_project_alone(world):
    """`mse coordinator manifest --project DIR` packages DIR/mse.toml's app itself; the
    identity it lists is that package's (recomputed here from the package it made)."""
    w = world
    r = run(MSE, "coordinator", "manifest", "--coordinator-cert", w["pin"], "--project",
            w["d"] / "app1", "--allow-simulation", "--bootstrap", BOOT, env=w["env"])
    m = json.loads(r.stdout)
    made = re.search(r"packaged (\S+\.tar)", r.stderr).group(1)
    assert Path(made).exists() and Path(made[:-4] + ".key").exists()
    assert stat.S_IMODE(Path(made[:-4] + ".key").stat().st_mode) == 0o600
    again = json.loads(run(MSE, "coordinator", "manifest", "--coordinator-cert", w["pin"],
                           "--package", made, "--code-key", made[:-4] + ".key",
                           "--allow-simulation", "--bootstrap", BOOT, env=w["env"]).stdout)
    assert m["identities"] == again["identities"] and len(m["identities"]) == 1
    assert m["app"] == "app1" and m["sealed"]["code_key"]
    bad = run(MSE, "coordinator", "manifest", "--coordinator-cert", w["pin"], env=w["env"],
              check=False)
    assert bad.returncode == 2 and "--project" in bad.stderr
