# SPDX-License-Identifier: Apache-2.0
"""The coordinator over time, end to end in simulation (issue 17):

- updates: a higher seq of the same deployment, signed by the owner, replaces the
  manifest and keeps the app key (a file version 1 encrypted with it is read by
  version 2, both provisioned by the coordinator); unsigned, other-key, same/lower
  seq and foreign-deployment manifests are refused and nothing changes (status
  compared before/after);
- the ISVSVN floor: raised by an update, an old replica is refused at its next
  attestation with the step named ([isvsvn]), and GET /status lists which replica
  runs which identity and whether the manifest in force still accepts it;
- rollback detection: an older state.sealed restored by the operator is seen by
  `mse coordinator status --record` (the owner's record of the last seq);
- recovery: a coordinator on "another machine" (another simulation sealing key)
  starts in recovery-needed, refuses everything but `mse coordinator recover`,
  refuses a wrong recovery key or owner key, then serves the same CA (the clients'
  pin, checked with curl) and the same app key; recovery is refused outside that
  state;
- metrics: GET /metrics parsed by the Prometheus text-format rules (a parser
  written here, independent of the C code) counts what the tests did.

Independent checks: the app's own encrypt-then-MAC (Python's hashlib/hmac), curl,
PyNaCl (recovery.bin opened with the recovery key: crypto_box_seal)."""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import http.client
import ssl
from pathlib import Path

import pytest

from test_coordinator import Coordinator, Owner, Replica, run, wait_for  # noqa: E402
from prom_text import parse_prometheus  # noqa: E402

MSE = os.environ.get("MSE_BIN", "build/mse")
BUILD = Path(os.environ.get("MSE_BUILD", "build"))
BOOT = os.environ.get("MSE_BOOTSTRAP", str(BUILD / "mse-bootstrap"))
COORD = str(BUILD / "mse-coordinator")

pytestmark = pytest.mark.skipif(not os.path.exists(COORD), reason=f"{COORD} not built")

APP = '''
import hashlib, hmac, os
from flask import Flask, request
app = Flask(__name__)
VERSION = "%s"

def key():
    with open(os.environ["APP_KEY_PATH"], "rb") as f:
        return f.read()

# Encrypt-then-MAC with the app key, stdlib only: a SHA-256 counter keystream and
# HMAC-SHA256 over nonce and ciphertext (only the same key opens it).
def stream(k, nonce, n):
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(k + nonce + i.to_bytes(8, "big")).digest()
        i += 1
    return out[:n]

@app.route("/health")
def health():
    return "ok"

@app.route("/version")
def version():
    return VERSION

@app.route("/appkey")
def appkey():
    return hashlib.sha256(key()).hexdigest()

@app.route("/write")
def write():
    k, nonce, pt = key(), os.urandom(16), request.args["data"].encode()
    ct = bytes(a ^ b for a, b in zip(pt, stream(k, nonce, len(pt))))
    tag = hmac.new(k, nonce + ct, "sha256").digest()
    with open(request.args["path"], "wb") as f:
        f.write(nonce + tag + ct)
    return "written"

@app.route("/read")
def read():
    k = key()
    with open(request.args["path"], "rb") as f:
        blob = f.read()
    nonce, tag, ct = blob[:16], blob[16:48], blob[48:]
    if not hmac.compare_digest(tag, hmac.new(k, nonce + ct, "sha256").digest()):
        return "does not open with this key", 403
    return bytes(a ^ b for a, b in zip(ct, stream(k, nonce, len(ct)))).decode()
'''


def curl(w, port, path):
    return run("curl", "-sS", "--fail", "--cacert", w["d"] / "ca.pem", "--resolve",
               f"localhost:{port}:127.0.0.1", f"https://localhost:{port}{path}", check=False)


def package(w, name, version, key=None):
    proj = w["d"] / name
    run(os.path.abspath(MSE), "scaffold", name, env=w["env"], cwd=w["d"])
    (proj / "mse_src/app.py").write_text(APP % version)
    # One app name for both versions: the app key is HKDF(root, app name).
    toml = (proj / "mse.toml").read_text()
    (proj / "mse.toml").write_text(re.sub(r'(?m)^name = ".*"$', 'name = "store"', toml))
    out = w["d"] / f"pkg-{version}"
    args = ["--key", key] if key else []
    run(MSE, "package", "--project", proj, "--output", out, "--quiet", *args, env=w["env"])
    pkg = next(out.glob("*.tar"))
    k = key or next(out.glob("*.key"))
    appdir = w["d"] / f"appdir-{version}"
    with tarfile.open(pkg) as t:
        t.extract("app.tar", w["d"] / f"x-{version}")
    with tarfile.open(w["d"] / f"x-{version}/app.tar") as t:
        t.extractall(appdir)
    return pkg, Path(k), appdir


def manifest(w, seq, pkg, key, extra=(), deployment="dep-upd", pin=None, name=None):
    m = w["d"] / (name or f"m{seq}.json")
    run(MSE, "coordinator", "manifest", "--coordinator-cert", pin or w["pin"], "--package", pkg,
        "--code-key", key, "--dns", "localhost", "--deployment-id", deployment, "--seq", seq,
        "--bootstrap", BOOT, "--allow-simulation", "--recovery-key", w["rec_pub"], *extra,
        "--out", m, env=w["env"])
    return m


def cset(w, m, owner_key=None, check=True, coord=None, pin=None):
    coord = coord or w["coord"]
    return run(MSE, "coordinator", "set", "--url", coord.url, "--pin", pin or w["pin"],
               "--manifest", m, "--owner-key", owner_key or w["owner"].key, env=w["env"],
               check=check)


def status(w, coord=None, pin=None):
    coord = coord or w["coord"]
    return json.loads(run(MSE, "coordinator", "status", "--url", coord.url, "--pin",
                          pin or w["pin"], env=w["env"]).stdout)


def raw(coord, method, path, body=None, headers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # refusals and metrics, not trust, are under test here
    h = http.client.HTTPSConnection("127.0.0.1", coord.port, context=ctx, timeout=30)
    try:
        h.request(method, path, body, headers or {})
        r = h.getresponse()
        return r.status, r.read()
    finally:
        h.close()


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    d = tmp_path_factory.mktemp("coordupd")
    env = dict(os.environ, MSE_SIM_DIR=str(d / "sim"))
    run(MSE, "sim", "init", env=env)
    w = dict(d=d, env=env, replicas=[])
    rk = run(MSE, "keygen", "--asymmetric", "--output", d / "recovery.key", "--public-output",
             d / "recovery.pub", env=env)
    w["rec_pub"] = d / "recovery.pub"
    w["rec_key"] = d / "recovery.key"
    assert re.fullmatch(r"[0-9a-f]{64}", rk.stdout.strip())
    w["v1"] = package(w, "appv1", "v1")
    w["v2"] = package(w, "appv2", "v2", key=w["v1"][1])
    w["owner"] = Owner(d, env)
    w["coord"] = Coordinator(d / "c1", w["owner"].pub, env).start()
    w["mre"], w["pin"] = w["owner"].verify(w["coord"], d / "c1/verified")
    m1 = manifest(w, 1, w["v1"][0], w["v1"][1])
    cset(w, m1)
    run(MSE, "coordinator", "ca", "--url", w["coord"].url, "--pin", w["pin"], "--out",
        d / "ca.pem", env=env)
    yield w
    for r in w["replicas"]:
        r.stop()
    w["coord"].stop()


class ReplicaX(Replica):
    """A replica with more mse-bootstrap options (test_coordinator's Replica has none)."""

    def __init__(self, w, name, appdir, extra):
        self.ws = w["d"] / "replicas" / name
        self.ws.mkdir(parents=True)
        self.name = name
        env = dict(w["env"], MSE_COORDINATOR=w["coord"].url)
        self.logf = open(self.ws.parent / f"{name}.log", "w")
        self.proc = subprocess.Popen(
            [BOOT, "app:app", "--app-dir", appdir, "--coordinator-mrenclave", w["mre"], "--id",
             name, "--host", "127.0.0.1", "--port", "0", "--workspace", self.ws / "ws",
             "--no-sandbox", "--timeout", "20", *extra],
            stdout=self.logf, stderr=subprocess.STDOUT, env=env)


def start(w, name, version, coord=None):
    r = Replica(w, name, appdir=w[version][2], coord=coord)
    w["replicas"].append(r)
    return r


def test_update_keeps_the_app_key(w):
    r1 = start(w, "v1-a", "v1").wait_serving()
    assert curl(w, r1.port, "/version").stdout == "v1"
    data = w["d"] / "shared.bin"
    assert curl(w, r1.port, f"/write?path={data}&data=written-by-v1").stdout == "written"
    # Version 2: its identity added, version 1's kept (replicas of both run during a roll).
    v1_mre = json.loads((w["d"] / "m1.json").read_text())["identities"][0]["mrenclave"]
    m2 = manifest(w, 2, w["v2"][0], w["v2"][1], ("--mrenclave", v1_mre))
    before = status(w)
    cset(w, m2)
    after = status(w)
    assert after["seq"] == 2 and after["deployment_id"] == before["deployment_id"]
    assert after["manifest_sha256"] == hashlib.sha256(m2.read_bytes()).hexdigest()
    r2 = start(w, "v2-a", "v2").wait_serving()
    assert curl(w, r2.port, "/version").stdout == "v2"
    # The file version 1 encrypted opens in version 2: the same app key.
    assert curl(w, r2.port, f"/read?path={data}").stdout == "written-by-v1"
    k1 = (r1.ws / "ws/key/app.key").read_bytes()
    assert (r2.ws / "ws/key/app.key").read_bytes() == k1
    # The CA did not change either (clients' pins keep working).
    ca = run(MSE, "coordinator", "ca", "--url", w["coord"].url, "--pin", w["pin"],
             env=w["env"]).stdout
    assert ca == (w["d"] / "ca.pem").read_text()
    # The status tells which replica runs which identity.
    ids = {e["instance"]: e for e in after["replica_list"] + status(w)["replica_list"]}
    assert ids["v1-a"]["mrenclave"] == v1_mre
    v2_mre = json.loads(m2.read_text())["identities"][0]["mrenclave"]
    assert status(w)["replica_list"][-1]["mrenclave"] == v2_mre
    assert all(e["accepted_now"] for e in status(w)["replica_list"])


def test_signed_requests_refused_before_their_body(w):
    """POST /manifest and POST /recover read the owner's signature the same way: none or a
    malformed one is a 403 at [signature] naming what the owner signs, and a declared body
    over the limit a 413, before anything is read or parsed."""
    import time
    before = status(w)
    for path, what, limit in (("/manifest", "manifest", 1 << 20), ("/recover", "recovery", 3 << 20)):
        st, body = raw(w["coord"], "POST", path, b"{}")
        err = json.loads(body)
        assert st == 403 and err["step"] == "signature", body
        assert f"missing: the owner signs the {what}" in err["error"], body
        st, body = raw(w["coord"], "POST", path, b"{}", {"Mse-Owner-Signature": "zz"})
        assert st == 403 and json.loads(body)["step"] == "signature", body
        time.sleep(1.1)  # the API's rate limit
        st, body = raw(w["coord"], "POST", path, b"",
                       {"Mse-Owner-Signature": "00" * 64, "Content-Length": str(limit + 1)})
        assert st == 413, (st, body)
        # (/recover: its limit is the server's own, 3 MiB, which answers before the route)
        if limit <= 1 << 20:
            assert body == f"{what} too large\n".encode(), body
        time.sleep(1.1)
    assert status(w)["seq"] == before["seq"]


def test_refused_manifests_change_nothing(w, tmp_path):
    before = status(w)
    seq = before["seq"]
    pkg, key, _ = w["v2"]
    # Unsigned: no signature header at all.
    m = manifest(w, seq + 1, pkg, key, name="unsigned.json")
    st, body = raw(w["coord"], "POST", "/manifest", m.read_bytes())
    assert st == 403 and json.loads(body)["step"] == "signature", body
    # Signed by another key.
    other = Owner(tmp_path, w["env"])
    r = cset(w, m, owner_key=other.key, check=False)
    assert r.returncode == 1 and "[signature]" in r.stderr and "403" in r.stderr, r.stderr
    # The same seq, and a lower one (an older manifest replayed: m1, correctly signed).
    for s in (seq, seq - 1):
        r = cset(w, manifest(w, s, pkg, key, name=f"seq{s}.json"), check=False)
        assert r.returncode == 1 and "409" in r.stderr and "seq" in r.stderr, r.stderr
    r = cset(w, w["d"] / "m1.json", check=False)
    assert r.returncode == 1 and "409" in r.stderr, r.stderr
    # A manifest of another deployment of the same owner, replayed here.
    r = cset(w, manifest(w, seq + 5, pkg, key, deployment="dep-other", name="foreign.json"),
             check=False)
    assert r.returncode == 1 and "409" in r.stderr and "deployment_id" in r.stderr, r.stderr
    after = status(w)
    for k in ("deployment_id", "seq", "manifest_sha256", "state"):
        assert after[k] == before[k], k
    # The owner's record still matches (the refusals did not touch it either).
    rec = w["owner"].key.with_name("owner.seq.json")
    run(MSE, "coordinator", "status", "--url", w["coord"].url, "--pin", w["pin"], "--record",
        rec, env=w["env"])


def test_isvsvn_floor_refuses_old_replicas_at_next_attestation(w):
    sim = w["d"] / "sim"
    signer = sim / "keys/signer.key.pem"
    seq = status(w)["seq"]
    pkg, key, _ = w["v2"]
    # Identity by signer: the simulation's enclaves have isvprodid 1, isvsvn 1.
    m = manifest(w, seq + 1, pkg, key, ("--no-sim-identity", "--signer-key", signer,
                                        "--isvprodid", "1", "--min-isvsvn", "1"))
    cset(w, m)
    r = start(w, "svn-a", "v2").wait_serving()
    assert curl(w, r.port, "/health").stdout == "ok"
    r.stop()
    # The floor raised: the same replica, restarted, is refused at its next attestation.
    m = manifest(w, seq + 2, pkg, key, ("--no-sim-identity", "--signer-key", signer,
                                        "--isvprodid", "1", "--min-isvsvn", "2"))
    cset(w, m)
    r2 = start(w, "svn-b", "v2")
    assert r2.wait_exit() == 1
    log = r2.log()
    assert "[isvsvn] refused by the coordinator" in log, log
    assert "at least 2" in log and "got 1" in log, log
    assert "refused at [isvsvn]" in w["coord"].logtext()
    assert not (r2.ws / "ws/key/app.key").exists()
    # The new version (the same signer, ISVSVN 2, as its SIGSTRUCT would say) is accepted.
    r3 = ReplicaX(w, "svn-c", w["v2"][2], ("--sim-isvsvn", "2"))
    w["replicas"].append(r3)
    r3.wait_serving()
    assert curl(w, r3.port, "/health").stdout == "ok"
    st = status(w)
    svn_a = [e for e in st["replica_list"] if e["instance"] == "svn-a"][0]
    assert svn_a["isvsvn"] == 1 and svn_a["accepted_now"] is False
    svn_c = [e for e in st["replica_list"] if e["instance"] == "svn-c"][0]
    assert svn_c["isvsvn"] == 2 and svn_c["accepted_now"] is True
    assert svn_c["mrenclave"] == svn_a["mrenclave"]  # ISVSVN is not measured
    # The refusal is counted by its step in the coordinator's metrics.
    m = prom(w["coord"])
    assert m[("mse_coordinator_attestations_refused_total", (("step", "isvsvn"),))] == 1
    assert m[("mse_coordinator_attestations_total", (("result", "refused"),))] == \
        st["attestations_refused"]
    # Back to the version identities for the tests that follow.
    v1_mre = json.loads((w["d"] / "m1.json").read_text())["identities"][0]["mrenclave"]
    cset(w, manifest(w, seq + 3, pkg, key, ("--mrenclave", v1_mre)))


def test_rollback_is_detected_by_the_owner(w):
    c = w["coord"]
    state = c.d / "state/state.sealed"
    old = state.read_bytes()
    seq = status(w)["seq"]
    pkg, key, _ = w["v2"]
    cset(w, manifest(w, seq + 1, pkg, key, name="rb.json"))
    rec = w["owner"].key.with_name("owner.seq.json")
    assert json.loads(rec.read_text())["seq"] == seq + 1
    # The operator restores the older sealed state: it opens (same machine, same key).
    c.stop()
    state.write_bytes(old)
    c.start()
    w["mre"], w["pin"] = w["owner"].verify(c, w["d"] / "c1/verified-rb")
    r = run(MSE, "coordinator", "status", "--url", c.url, "--pin", w["pin"], "--record", rec,
            env=w["env"], check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "ROLLBACK" in r.stderr and f"seq {seq}" in r.stderr and f"seq {seq + 1}" in r.stderr
    assert json.loads(r.stdout)["seq"] == seq
    # The owner sets the newest manifest again (a higher seq): the check passes. (With
    # update: these replicas are not instances of this machine, nothing to roll.)
    r = run(MSE, "coordinator", "update", "--url", c.url, "--pin", w["pin"], "--manifest",
            manifest(w, seq + 2, pkg, key, name="rb2.json"), "--owner-key", w["owner"].key,
            env=w["env"])
    assert "nothing to roll" in r.stderr, r.stderr
    run(MSE, "coordinator", "status", "--url", c.url, "--pin", w["pin"], "--record", rec,
        env=w["env"])


def another_machine(w, dest):
    """The same simulated platform (collateral, PCK chain), another sealing key."""
    shutil.copytree(w["d"] / "sim", dest)
    (dest / "keys/root_secret").write_bytes(os.urandom(32))


def test_recovery_on_another_machine(w, tmp_path):
    from nacl.public import PrivateKey, SealedBox
    c = w["coord"]
    ca_before = (w["d"] / "ca.pem").read_text()
    key_before = (w["replicas"][0].ws / "ws/key/app.key").read_bytes()
    rb = w["d"] / "recovery.bin"
    assert rb.exists() and (rb.stat().st_mode & 0o777) == 0o600
    # Independently: recovery.bin opens with the recovery key (PyNaCl) and holds the root.
    sk = PrivateKey(w["rec_key"].read_bytes()[32:])
    blob = json.loads(SealedBox(sk).decrypt(rb.read_bytes()))
    assert blob["owner_key"] == w["owner"].pub and len(blob["root_secret"]) == 64
    assert blob["ca_cert"] == ca_before
    # The state moves to another machine: it does not open there.
    sim2 = tmp_path / "sim2"
    another_machine(w, sim2)
    c2 = Coordinator(tmp_path / "c2", w["owner"].pub, w["env"])
    (tmp_path / "c2/state").mkdir(parents=True)
    shutil.copy(c.d / "state/state.sealed", tmp_path / "c2/state/state.sealed")
    c2.extra = ["--sim-dir", sim2]
    c2.start()
    try:
        assert "RECOVERY NEEDED" in c2.logtext()
        mre2, pin2 = w["owner"].verify(c2, tmp_path / "v2")
        assert mre2 == w["mre"]  # the same binary and owner key: the same identity
        assert status(w, c2, pin2)["state"] == "recovery-needed"
        # Nothing else is accepted in that state.
        assert raw(c2, "GET", "/ca")[0] == 503
        m = manifest(w, 99, w["v2"][0], w["v2"][1], pin=pin2, name="during-recovery.json")
        r = cset(w, m, coord=c2, pin=pin2, check=False)
        assert r.returncode == 1 and "[recovery]" in r.stderr, r.stderr
        r = Replica(w, "during-recovery", appdir=w["v2"][2], coord=c2)
        assert r.wait_exit() == 1 and "recovery" in r.log()
        r.stop()
        # A wrong recovery key: recovery.bin does not open, nothing is sent.
        run(MSE, "keygen", "--asymmetric", "--output", tmp_path / "wrong.key", env=w["env"])
        r = run(MSE, "coordinator", "recover", "--url", c2.url, "--pin", pin2, "--recovery-key",
                tmp_path / "wrong.key", "--owner-key", w["owner"].key, "--recovery-file", rb,
                env=w["env"], check=False)
        assert r.returncode == 1 and "does not open with the recovery key" in r.stderr, r.stderr
        # A wrong owner key: the coordinator refuses the signature.
        (tmp_path / "o2").mkdir()
        other = Owner(tmp_path / "o2", w["env"])
        r = run(MSE, "coordinator", "recover", "--url", c2.url, "--pin", pin2, "--recovery-key",
                w["rec_key"], "--owner-key", other.key, "--recovery-file", rb, env=w["env"],
                check=False)
        assert r.returncode == 1 and "[signature]" in r.stderr and "403" in r.stderr, r.stderr
        assert status(w, c2, pin2)["state"] == "recovery-needed"
        # The owner's recovery.
        r = run(MSE, "coordinator", "recover", "--url", c2.url, "--pin", pin2, "--recovery-key",
                w["rec_key"], "--owner-key", w["owner"].key, "--recovery-file", rb, env=w["env"])
        st = json.loads(r.stdout)
        assert st["state"] == "ready" and st["deployment_id"] == "dep-upd"
        ca2 = run(MSE, "coordinator", "ca", "--url", c2.url, "--pin", pin2, env=w["env"]).stdout
        assert ca2 == ca_before
        # Replicas attested by the recovered coordinator: same app key, and clients'
        # pin (the CA) works with curl.
        r = Replica(w, "after-recovery", appdir=w["v2"][2], coord=c2)
        w["replicas"].append(r)
        r.wait_serving()
        assert (r.ws / "ws/key/app.key").read_bytes() == key_before
        assert curl(w, r.port, "/health").stdout == "ok"
        assert curl(w, r.port, f"/read?path={w['d'] / 'shared.bin'}").stdout == "written-by-v1"
        # Recovery is refused outside the recovery-needed state, nothing changed.
        r = run(MSE, "coordinator", "recover", "--url", c2.url, "--pin", pin2, "--recovery-key",
                w["rec_key"], "--owner-key", w["owner"].key, "--recovery-file", rb, env=w["env"],
                check=False)
        assert r.returncode == 1 and "409" in r.stderr and "not in the recovery-needed" in r.stderr
        # It restarts from its own sealed state now (sealed with its key).
        c2.stop()
        c2.start()
        _, pin3 = w["owner"].verify(c2, tmp_path / "v3")
        assert status(w, c2, pin3)["state"] == "ready"
        m = prom(c2)
        assert m[("mse_coordinator_recoveries_total", ())] == 0  # a new process
        assert m[("mse_coordinator_recovery_needed", ())] == 0
    finally:
        c2.stop()


def prom(coord):
    st, body = raw(coord, "GET", "/metrics")
    assert st == 200
    fams = parse_prometheus(body.decode())
    return {(name, tuple(sorted(labels.items()))): v
            for f in fams.values() for name, labels, v in f["samples"]}


def test_coordinator_metrics_count_what_happened(w):
    st = status(w)
    m = prom(w["coord"])
    acc = m[("mse_coordinator_attestations_total", (("result", "accepted"),))]
    ref = m[("mse_coordinator_attestations_total", (("result", "refused"),))]
    # The coordinator restarted in the rollback test: counters since then.
    assert acc == st["attestations_accepted"] and ref == st["attestations_refused"]
    assert m[("mse_coordinator_manifest_seq", ())] == st["seq"]
    by_id = {dict(k[1])["mrenclave"]: v for k, v in m.items()
             if k[0] == "mse_coordinator_replicas"}
    assert sum(by_id.values()) == st["replicas"]
    for e in st["replica_list"]:
        assert by_id[e["mrenclave"]] >= 1
    assert m[("mse_coordinator_state_writes_total", (("result", "ok"),))] >= 1
    assert m[("mse_coordinator_recovery_needed", ())] == 0
    # Something to count now: one refusal at [isvsvn]-free step, one more manifest.
    before = m.get(("mse_coordinator_manifests_total", (("result", "refused"),)), 0)
    cset(w, w["d"] / "m1.json", check=False)
    m2 = prom(w["coord"])
    assert m2[("mse_coordinator_manifests_total", (("result", "refused"),))] == before + 1


def test_app_server_metrics(w):
    """mse-bootstrap --metrics HOST:PORT: plain HTTP, apart from the app; the counts
    match the requests made here (curl), the histogram follows the format's rules."""
    import socket
    import time
    import urllib.error
    import urllib.request
    v1_mre = json.loads((w["d"] / "m1.json").read_text())["identities"][0]["mrenclave"]
    cset(w, manifest(w, status(w)["seq"] + 1, w["v2"][0], w["v2"][1], ("--mrenclave", v1_mre),
                     name="metrics.json"))
    ws = w["d"] / "replicas/metrics"
    ws.mkdir(parents=True)
    logp = w["d"] / "replicas/metrics.log"
    env = dict(w["env"], MSE_COORDINATOR=w["coord"].url)
    with open(logp, "w") as logf:
        p = subprocess.Popen(
            [BOOT, "app:app", "--app-dir", w["v2"][2], "--coordinator-mrenclave", w["mre"],
             "--id", "metrics", "--host", "127.0.0.1", "--port", "0", "--workspace", ws / "ws",
             "--no-sandbox", "--timeout", "20", "--metrics", "127.0.0.1:0"],
            stdout=logf, stderr=subprocess.STDOUT, env=env)
    try:
        m = wait_for(lambda: re.search(r"listening on https://127\.0\.0\.1:(\d+)",
                                       logp.read_text()) or p.poll() is not None,
                     what="replica serving")
        assert p.poll() is None, logp.read_text()
        port = int(m.group(1))
        mport = int(re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics",
                              logp.read_text()).group(1))
        for _ in range(3):
            assert curl(w, port, "/health").stdout == "ok"
        for _ in range(2):
            assert curl(w, port, "/nope").returncode != 0

        def scrape():
            with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10) as r:
                assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                return r.read().decode()

        text = scrape()
        fams = parse_prometheus(text)
        req = {s[1]["class"]: s[2] for s in fams["mse_http_requests_total"]["samples"]}
        assert req == {"1xx": 0, "2xx": 3, "3xx": 0, "4xx": 2, "5xx": 0}, req
        assert fams["mse_http_requests_total"]["type"] == "counter"
        h = fams["mse_http_request_duration_seconds"]
        assert h["type"] == "histogram"
        count = [v for n, _, v in h["samples"] if n.endswith("_count")][0]
        assert count == 5
        one = lambda n: fams[n]["samples"][0][2]  # noqa: E731
        assert one("mse_http_requests_in_flight") == 0
        assert one("mse_http_worker_threads") >= 1
        assert one("mse_http_open_connections") >= 0
        for n in ("mse_http_requests_in_flight", "mse_http_worker_threads",
                  "mse_http_open_connections"):
            assert fams[n]["type"] == "gauge" and fams[n]["help"]
        # No secrets: not the app key, not a path or an address.
        key = (ws / "ws/key/app.key").read_bytes()
        assert key.hex() not in text and "/health" not in text and "127.0.0.1" not in text
        # Only /metrics; and a client that sends nothing is dropped within seconds.
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{mport}/other", timeout=10)
        assert e.value.code == 404
        idle = socket.create_connection(("127.0.0.1", mport))
        t = time.monotonic()
        scrape()
        assert time.monotonic() - t < 8
        idle.close()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    # A clean stop. Under ASan the embedded Python's hashlib leaves OpenSSL digest
    # objects behind at exit (LeakSanitizer, allocated in libcrypto): tolerated here
    # as in the other replica tests, but nothing may come from the metrics code.
    log = logp.read_text()
    assert "ERROR: AddressSanitizer" not in log and "runtime error" not in log, log[-3000:]
    assert "net/metrics.c" not in log, log[-3000:]
    assert p.returncode == 0 or "ERROR: LeakSanitizer" in log, log[-3000:]
