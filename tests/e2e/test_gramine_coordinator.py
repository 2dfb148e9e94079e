# SPDX-License-Identifier: Apache-2.0
"""mse-coordinator on SGX, through the Gramine stand-in (tests/gramine-standin/).

`mse coordinator start --sgx` writes the coordinator's Gramine manifest (no
Python; the owner's key in loader.argv, measured; its sealed state in an
encrypted mount keyed to MRENCLAVE), signs it with the operator's key and runs
gramine-sgx; `mse coordinator measure --sgx` recomputes MRENCLAVE from the
release binary and the owner's key with a throw-away signer, never from what
the enclave says. Independent checks: Python's tomllib reads the manifest,
python3-cryptography reads the SIGSTRUCT (tests/helpers/sigstruct_py.py), the
stand-in's own call log and MRENCLAVE, and `mse verify` on the quote.

What the stand-in cannot show (real EINIT, real DCAP quotes, a real PCCS) is
scripts/sgx-acceptance.sh's, on SGX hardware.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "helpers"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gramine-standin"))
import sigstruct_py  # noqa: E402
import standin  # noqa: E402

MSE = os.environ.get("MSE_BIN", "build/mse")
BUILD = Path(os.environ.get("MSE_BUILD", "build"))
BOOT = os.environ.get("MSE_BOOTSTRAP", str(BUILD / "mse-bootstrap"))
COORD = BUILD / "mse-coordinator"
STANDIN = Path(__file__).resolve().parent.parent / "gramine-standin"

pytestmark = pytest.mark.skipif(not COORD.exists(), reason=f"{COORD} not built")


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(tmp: Path, pccs=None):
    e = dict(os.environ)
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    e.update(HOME=str(home), XDG_STATE_HOME=str(home / ".local/state"),
             XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
    e.pop("MSE_SIM_DIR", None)
    e.pop("MSE_PCCS_URL", None)
    e["ASAN_OPTIONS"] = e.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    e["PATH"] = f"{STANDIN}:{e['PATH']}"
    e["GRAMINE_STANDIN_LOG"] = str(tmp / "gramine-calls.jsonl")
    e["GRAMINE_STANDIN_MSE"] = str(Path(MSE).resolve())
    e["MSE_COORDINATOR_BIN"] = str(COORD.resolve())
    return e


def mse(env, *args, check=True, timeout=300, cwd=None):
    p = subprocess.run([MSE, *map(str, args)], env=env, capture_output=True, text=True,
                       timeout=timeout, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(f"mse {' '.join(map(str, args))} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def calls(env, tool):
    path = Path(env["GRAMINE_STANDIN_LOG"])
    if not path.exists():
        return []
    return [c for c in map(json.loads, path.read_text().splitlines()) if c["tool"] == tool]


def state(env, name):
    return json.loads((Path(env["XDG_STATE_HOME"]) / "mse" / name / "state.json").read_text())


def wait_for(pred, timeout=60, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("sgxcoord")
    pccs_port = closed_port()  # nothing listens: the PCCS is unreachable
    env = env_for(d)
    mse(env, "coordinator", "keygen", "--out", d / "owner")
    mse(env, "keygen", "--sgx-signer", "--output", d / "signer.pem")
    mse(env, "sim", "init")  # what the stand-in's quoting helper quotes with
    started = mse(env, "coordinator", "start", "--name", "c1", "--owner-key", d / "owner.pub",
                  "--sgx", "--signer-key", d / "signer.pem", "--pccs-url",
                  f"http://127.0.0.1:{pccs_port}")
    w = dict(d=d, env=env, started=started.stdout, pub=(d / "owner.pub").read_text().strip(),
             sdir=Path(env["XDG_STATE_HOME"]) / "mse/c1", pccs_port=pccs_port)
    w["url"] = f"127.0.0.1:{state(env, 'c1')['port']}"
    yield w
    mse(env, "stop", "c1", check=False)


def test_manifest_is_the_coordinators_and_measures_the_owner_key(world):
    w = world
    m = tomllib.loads((w["sdir"] / "mse.manifest").read_text())
    assert standin.check_manifest(m) == []
    assert m["libos"]["entrypoint"] == "/mse-coordinator"
    # The owner's key is in the measured argv; nothing per-instance is.
    assert m["loader"]["argv"] == ["/mse-coordinator", "--owner-key", w["pub"], "--state-dir",
                                   "/state", "--info-dir", "/info", "--threads", "4"]
    env = m["loader"]["env"]
    assert env["MSE_COORDINATOR_LISTEN"] == {"passthrough": True}
    assert env["MSE_PCCS_URL"] == {"passthrough": True}
    mounts = {x["path"]: x for x in m["fs"]["mounts"]}
    assert mounts["/state"] == {"type": "encrypted", "path": "/state", "uri": "file:workspace/state",
                                "key_name": "_sgx_mrenclave"}
    assert mounts["/info"] == {"path": "/info", "uri": "file:workspace/info"}
    assert mounts["/tmp"]["type"] == "tmpfs"
    assert m["sgx"]["debug"] is False and m["sgx"]["remote_attestation"] == "dcap"
    assert m["sys"]["disallow_subprocesses"] is True
    # No Python in the coordinator's enclave.
    text = (w["sdir"] / "mse.manifest.template").read_text()
    assert "python" not in text.lower()
    trusted = m["sgx"]["trusted_files"]
    assert "file:mse-coordinator" in trusted
    assert not any("python" in t for t in trusted)
    # The sealed state is not readable to the operator's tools as a plain file
    # is: it lives only under the encrypted mount's host directory.
    assert (w["sdir"] / "workspace/info/ratls.pem").exists()
    assert not (w["sdir"] / "workspace/info/state.sealed").exists()


def test_what_reached_gramine(world):
    w, env = world, world["env"]
    (man,) = [c for c in calls(env, "gramine-manifest") if c["cwd"] == str(w["sdir"])]
    assert man["argv"] == ["-Darch_libdir=/lib/x86_64-linux-gnu", "mse.manifest.template", "mse.manifest"]
    (sign,) = [c for c in calls(env, "gramine-sgx-sign") if c["cwd"] == str(w["sdir"])]
    assert sign["argv"] == ["--key", str(w["d"] / "signer.pem"), "--manifest", "mse.manifest",
                            "--output", "mse.manifest.sgx"]
    (run,) = calls(env, "gramine-sgx")[:1]
    assert run["argv"] == [str(w["sdir"] / "mse")] and run["cwd"] == str(w["sdir"])
    (started,) = calls(env, "gramine-sgx:run")[:1]
    assert started["argv"][0] == str(w["sdir"] / "mse-coordinator")
    assert started["env"]["MSE_COORDINATOR_LISTEN"] == w["url"]
    assert started["env"]["MSE_PCCS_URL"] == f"http://127.0.0.1:{w['pccs_port']}"


def test_measure_equals_the_signed_enclave_and_the_quote(world):
    w, env = world, world["env"]
    sig = sigstruct_py.parse((w["sdir"] / "mse.sig").read_bytes())
    st = state(env, "c1")
    assert st["mrenclave"] == sig["mrenclave"].hex()
    assert st["role"] == "coordinator" and st["mode"] == "sgx"
    assert sig["mrsigner"] == sigstruct_py.mrsigner(sigstruct_py.load_key(w["d"] / "signer.pem"))
    p = mse(env, "coordinator", "measure", "--owner-key", w["d"] / "owner.pub", "--sgx")
    expected = p.stdout.strip()
    assert expected == sig["mrenclave"].hex()
    assert "hashed with Gramine 1.9" in p.stderr and str(COORD.resolve()) in p.stderr
    # The recomputation ran elsewhere, with a throw-away key, and cleaned up.
    rec = [c for c in calls(env, "gramine-sgx-sign") if c["cwd"].startswith("/tmp/mse-measure.")]
    assert rec and all(c["argv"][1] != str(w["d"] / "signer.pem") for c in rec)
    assert not any(Path(c["cwd"]).exists() for c in rec)
    # The owner verifies the running coordinator's quote against it.
    v = mse(env, "verify", "--url", w["url"], "--mrenclave", expected, "--allow-simulation",
            "--output", w["d"] / "verified")
    assert re.search(rf"mrenclave:\s+{expected}", v.stdout), v.stdout
    w["mre"], w["pin"] = expected, w["d"] / "verified/ratls.pem"


def test_another_owner_key_is_another_mrenclave(world):
    w, env = world, world["env"]
    mse(env, "coordinator", "keygen", "--out", w["d"] / "other")
    other = mse(env, "coordinator", "measure", "--owner-key", w["d"] / "other.pub", "--sgx").stdout.strip()
    mine = mse(env, "coordinator", "measure", "--owner-key", w["d"] / "owner.pub", "--sgx").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", other) and other != mine
    # The coordinator the operator runs is not the other owner's: verify refuses it.
    v = mse(env, "verify", "--url", w["url"], "--mrenclave", other, "--allow-simulation", check=False)
    assert v.returncode != 0
    assert "measurement" in (v.stdout + v.stderr)


def test_replica_is_refused_without_collateral_from_the_pccs(world):
    """SGX coordinator, unreachable PCCS: the replica is refused at [pccs], nothing sent."""
    w, env = world, world["env"]
    if "pin" not in w:
        pytest.skip("needs the verified coordinator")
    d = w["d"]
    subprocess.run([os.path.abspath(MSE), "scaffold", "app1"], cwd=d, env=env, check=True,
                   capture_output=True)
    mse(env, "package", "--project", d / "app1", "--output", d / "pkg", "--quiet")
    pkg = next((d / "pkg").glob("*.tar"))
    key = next((d / "pkg").glob("*.key"))
    mse(env, "coordinator", "manifest", "--coordinator-cert", w["pin"], "--package", pkg,
        "--code-key", key, "--dns", "localhost", "--bootstrap", BOOT, "--allow-simulation",
        "--out", d / "m.json")
    mse(env, "coordinator", "set", "--url", w["url"], "--pin", w["pin"], "--manifest", d / "m.json",
        "--owner-key", d / "owner.key")
    with tarfile.open(pkg) as t:
        t.extract("app.tar", d / "x")
    with tarfile.open(d / "x/app.tar") as t:
        t.extractall(d / "appdir")
    renv = dict(env, MSE_COORDINATOR=w["url"])
    r = subprocess.run([BOOT, "app:app", "--app-dir", d / "appdir", "--coordinator-mrenclave",
                        w["mre"], "--id", "r1", "--host", "127.0.0.1", "--port", "0",
                        "--workspace", d / "r1", "--no-sandbox", "--timeout", "20"],
                       env=renv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "[pccs] refused by the coordinator" in r.stderr, r.stderr
    assert f"127.0.0.1:{w['pccs_port']}" in r.stderr
    assert not (d / "r1/key/app.key").exists() and not (d / "r1/mse-app").exists()
    st = json.loads(mse(env, "coordinator", "status", "--url", w["url"], "--pin", w["pin"]).stdout)
    assert st["attestations_refused"] >= 1 and st["attestations_accepted"] == 0
    assert st["simulation"] is False
    log = (w["sdir"] / "bootstrap.log").read_text()
    assert "refused at [pccs]" in log, log[-2000:]
    w["deployment_id"] = st["deployment_id"]


def test_status_stop_restart_keeps_the_sealed_state(world):
    w, env = world, world["env"]
    assert mse(env, "status", "c1").stdout.startswith("c1: running")
    assert re.search(r"c1\s+coordinator\s+sgx", mse(env, "list").stdout)
    mse(env, "stop", "c1")
    assert mse(env, "status", "c1", check=False).stdout.startswith("c1: stopped")
    mse(env, "restart", "c1")
    wait_for(lambda: mse(env, "status", "c1", check=False).stdout.startswith("c1: running"),
             what="the coordinator running again")
    # A new RA-TLS certificate, the same MRENCLAVE: the owner verifies it again.
    if "mre" in w:
        shutil.rmtree(w["d"] / "verified2", ignore_errors=True)
        mse(env, "verify", "--url", w["url"], "--mrenclave", w["mre"], "--allow-simulation",
            "--output", w["d"] / "verified2")
        if "deployment_id" in w:
            st = json.loads(mse(env, "coordinator", "status", "--url", w["url"], "--pin",
                                w["d"] / "verified2/ratls.pem").stdout)
            assert st["state"] == "ready" and st["deployment_id"] == w["deployment_id"]
    assert (w["sdir"] / "workspace/state/state.sealed").exists() or "deployment_id" not in w


def test_refusals_without_gramine_or_signer_or_pccs(tmp_path):
    env = env_for(tmp_path)
    mse(env, "coordinator", "keygen", "--out", tmp_path / "o")
    p = mse(env, "coordinator", "start", "--name", "x", "--owner-key", tmp_path / "o.pub", "--sgx",
            check=False)
    assert p.returncode == 1 and "--signer-key" in p.stderr, p.stderr
    p = mse(env, "coordinator", "start", "--name", "x", "--owner-key", tmp_path / "o.pub",
            "--signer-key", tmp_path / "k.pem", check=False)
    assert p.returncode == 2 and "go with --sgx" in p.stderr
    nogramine = dict(env, PATH="/usr/bin:/bin")
    p = mse(nogramine, "coordinator", "measure", "--owner-key", tmp_path / "o.pub", "--sgx", check=False)
    assert p.returncode == 1 and "Gramine is not on PATH" in p.stderr
    mse(env, "keygen", "--sgx-signer", "--output", tmp_path / "s.pem")
    p = mse(nogramine, "coordinator", "start", "--name", "x", "--owner-key", tmp_path / "o.pub",
            "--sgx", "--signer-key", tmp_path / "s.pem", check=False)
    assert p.returncode == 1 and "Gramine is not installed" in p.stderr
    # No PCCS known (no --pccs-url, no $MSE_PCCS_URL, no QCNL configuration): it does not start.
    if not os.path.exists("/etc/sgx_default_qcnl.conf"):
        mse(env, "sim", "init")
        p = mse(env, "coordinator", "start", "--name", "nopccs", "--owner-key", tmp_path / "o.pub",
                "--sgx", "--signer-key", tmp_path / "s.pem", check=False)
        assert p.returncode == 1, p.stdout
        log = (Path(env["XDG_STATE_HOME"]) / "mse/nopccs/bootstrap.log").read_text()
        assert "replicas are verified with Intel's collateral from a PCCS" in log, log


def test_sgx_replicas_share_the_mrenclave_the_owner_recomputes(tmp_path):
    """Two SGX replicas of one package: one manifest (nothing per replica in the measured
    argv), one MRENCLAVE, equal to the one `mse coordinator manifest --sgx` recomputes
    with gramine-sgx-sign; each verifies the coordinator with the PCCS's collateral and,
    the PCCS unreachable, refuses it at [pccs] before sending anything."""
    env = env_for(tmp_path)
    d = tmp_path
    mse(env, "coordinator", "keygen", "--out", d / "owner")
    mse(env, "keygen", "--sgx-signer", "--output", d / "signer.pem")
    mse(env, "sim", "init")
    mse(env, "coordinator", "start", "--name", "c", "--owner-key", d / "owner.pub")
    url = f"127.0.0.1:{state(env, 'c')['port']}"
    try:
        cmre = mse(env, "coordinator", "measure", "--owner-key", d / "owner.pub").stdout.strip()
        mse(env, "verify", "--url", url, "--mrenclave", cmre, "--allow-simulation", "--output", d / "v")
        subprocess.run([os.path.abspath(MSE), "scaffold", "app1"], cwd=d, env=env, check=True,
                       capture_output=True)
        mse(env, "package", "--project", d / "app1", "--output", d / "pkg", "--quiet")
        pkg = next((d / "pkg").glob("*.tar"))
        key = next((d / "pkg").glob("*.key"))
        mse(env, "coordinator", "manifest", "--coordinator-cert", d / "v/ratls.pem", "--package", pkg,
            "--code-key", key, "--dns", "app.example", "--bootstrap", BOOT, "--sgx",
            "--no-sim-identity", "--out", d / "m.json")
        ids = json.loads((d / "m.json").read_text())["identities"]
        assert len(ids) == 1
        expected = ids[0]["mrenclave"]
        before = json.loads(mse(env, "coordinator", "status", "--url", url, "--pin",
                                d / "v/ratls.pem").stdout)
        pccs = closed_port()
        # Each its own metrics address: per replica, so never in the measured argv.
        metrics = {"r1": f"127.0.0.1:{closed_port()}", "r2": f"127.0.0.1:{closed_port()}"}
        for r in ("r1", "r2"):
            p = mse(env, "coordinator", "replica", "--name", r, "--package", pkg, "--url", url,
                    "--coordinator-mrenclave", cmre.upper(), "--dns", "app.example", "--sgx",
                    "--signer-key", d / "signer.pem", "--pccs-url", f"http://127.0.0.1:{pccs}",
                    "--metrics", metrics[r])
            assert f"MRENCLAVE {expected}" in p.stdout, p.stdout
            assert f"metrics on http://{metrics[r]}/metrics" in p.stdout, p.stdout
        sdir = Path(env["XDG_STATE_HOME"]) / "mse"
        for r in ("r1", "r2"):
            sig = sigstruct_py.parse((sdir / r / "mse.sig").read_bytes())
            assert sig["mrenclave"].hex() == expected
            m = tomllib.loads((sdir / r / "mse.manifest").read_text())
            assert standin.check_manifest(m) == []
            assert m["loader"]["argv"] == [
                "/mse-bootstrap", "app:app", "--app-dir", "/app", "--coordinator-mrenclave", cmre,
                "--san", "app.example", "--size", "4096", "--threads", "16", "--threads-max", "64"]
            for k in ("MSE_COORDINATOR", "MSE_REPLICA_LISTEN", "MSE_REPLICA_ID",
                      "MSE_REPLICA_METRICS", "MSE_PCCS_URL"):
                assert m["loader"]["env"][k] == {"passthrough": True}
            log = sdir / r / "bootstrap.log"
            wait_for(lambda: "nothing sent" in log.read_text(), what=f"{r} refusing the coordinator")
            text = log.read_text()
            assert f"[pccs] coordinator refused by this replica, nothing sent" in text, text
            assert f"127.0.0.1:{pccs}" in text
        runs = calls(env, "gramine-sgx:run")
        assert {c["env"]["MSE_REPLICA_ID"] for c in runs} == {"r1", "r2"}
        assert {c["env"]["MSE_REPLICA_ID"]: c["env"]["MSE_REPLICA_METRICS"] for c in runs} == metrics
        for r in ("r1", "r2"):
            assert state(env, r)["metrics"] == metrics[r]
        assert all(c["env"]["MSE_COORDINATOR"] == url for c in runs)
        # The coordinator never heard from them.
        after = json.loads(mse(env, "coordinator", "status", "--url", url, "--pin",
                               d / "v/ratls.pem").stdout)
        assert after["attestations_refused"] == before["attestations_refused"]
        assert after["attestations_accepted"] == before["attestations_accepted"] == 0
    finally:
        for n in ("r1", "r2", "c"):
            mse(env, "stop", n, check=False)


# ---- mse deploy --replicas N --sgx: the owner's one command under Gramine ----------------

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pccs_stub import PccsStub  # noqa: E402


def instances(env):
    lst = mse(env, "list", check=False).stdout
    return [l.split()[0] for l in lst.splitlines()[1:] if l.strip()]


def stop_all(env, extra=()):
    for n in sorted(set(instances(env)) | set(extra)):
        mse(env, "stop", n, "--remove", check=False)
    assert instances(env) == [], mse(env, "list", check=False).stdout


def sgx_project(env, d, name):
    """What each deploy --replicas --sgx test starts from: the operator's signer key
    d/signer.pem, this machine's simulation (the stand-in quotes with it) and a
    scaffolded project d/NAME, returned."""
    mse(env, "keygen", "--sgx-signer", "--output", d / "signer.pem")
    mse(env, "sim", "init")
    subprocess.run([os.path.abspath(MSE), "scaffold", name], cwd=d, env=env, check=True,
                   capture_output=True)
    return d / name


def sim_pccs(env):
    """A PCCS serving this machine's simulation collateral (its PCK CA is a "Platform" one):
    what the stand-in's SGX enclaves fetch, as real ones fetch Intel's."""
    sim = Path(mse(env, "sim", "path").stdout.strip())
    return PccsStub(sim / "collateral", ca="platform"), sim


def deploy_sgx(env, proj, signer, pccs, *extra, check=True):
    return mse(env, "deploy", "--project", proj, "--replicas", "2", "--sgx", "--signer-key", signer,
               "--pccs", pccs.url, "--accept-simulation-quotes", "--no-tests", *extra, check=check,
               timeout=900)


def test_deploy_replicas_sgx_end_to_end(tmp_path):
    """`mse deploy --replicas 2 --sgx` (stand-in, simulation quotes accepted): the coordinator
    and both replicas run under gramine-sgx; the coordinator's MRENCLAVE the owner recomputed
    is the one its SIGSTRUCT (python3-cryptography) and its quote carry; the manifest accepts
    the replicas' one MRENCLAVE, which is theirs, and the signer's MRSIGNER with --isvprodid 7
    and ISVSVN >= 3, the values their SIGSTRUCTs carry; both answer curl --cacert ca.pem; a replica of
    a tampered package (signed by another key) is refused by the coordinator at [measurement];
    a second deploy of a changed project rolls the replicas, same CA."""
    env = env_for(tmp_path)
    d = tmp_path
    proj = sgx_project(env, d, "app2")
    sdir = Path(env["XDG_STATE_HOME"]) / "mse"
    stub, sim = sim_pccs(env)
    root_hex = (sim / "root_ca.der").read_bytes().hex()
    with stub as pccs:
        try:
            isv = ("--isvprodid", "7", "--isvsvn", "3")
            p = deploy_sgx(env, proj, d / "signer.pem", pccs, *isv)
            out = p.stdout
            assert "2 replicas behind the coordinator" in out, out
            assert "SGX, simulation quotes accepted" in out, out
            assert "[3/8] spawn     the coordinator (SGX, Gramine)" in out, out
            assert set(instances(env)) == {"app2-coordinator", "app2-1", "app2-2"}
            cst = state(env, "app2-coordinator")
            assert cst["mode"] == "sgx" and cst["role"] == "coordinator"
            # The coordinator's manifest: the owner's key and the trusted root, measured.
            owner = (proj / ".mse/owner.pub").read_text().strip()
            m = tomllib.loads((sdir / "app2-coordinator/mse.manifest").read_text())
            assert standin.check_manifest(m) == []
            assert m["loader"]["argv"][1:3] == ["--owner-key", owner]
            assert m["loader"]["argv"][-2:] == ["--trust-sim-root", root_hex]
            # The MRENCLAVE the owner verified: its own recomputation, equal to the SIGSTRUCT's.
            cmre = re.search(r"coordinator  MRENCLAVE ([0-9a-f]{64})", out).group(1)
            sig = sigstruct_py.parse((sdir / "app2-coordinator/mse.sig").read_bytes())
            assert sig["mrenclave"].hex() == cmre
            rec = [c for c in calls(env, "gramine-sgx-sign") if c["cwd"].startswith("/tmp/mse-measure.")]
            assert rec and all(c["argv"][1] != str(d / "signer.pem") for c in rec)
            # The manifest the owner signed: the replicas' MRENCLAVE, the signer's MRSIGNER.
            man = json.loads((proj / ".mse/coordinator/manifest.json").read_text())
            ids = man["identities"]
            mrs = sigstruct_py.mrsigner(sigstruct_py.load_key(d / "signer.pem")).hex()
            assert {"mrsigner": mrs, "isvprodid": 7, "min_isvsvn": 3} in ids
            (rmre,) = [i["mrenclave"] for i in ids if "mrenclave" in i]
            assert man["tcb"]["allow_simulation"] is True
            ports = []
            for r in ("app2-1", "app2-2"):
                st = state(env, r)
                assert st["mode"] == "sgx" and st["role"] == "replica"
                rsig = sigstruct_py.parse((sdir / r / "mse.sig").read_bytes())
                assert rsig["mrenclave"].hex() == rmre and rsig["mrsigner"].hex() == mrs
                assert (rsig["isvprodid"], rsig["isvsvn"]) == (7, 3)
                rm = tomllib.loads((sdir / r / "mse.manifest").read_text())
                assert (rm["sgx"]["isvprodid"], rm["sgx"]["isvsvn"]) == (7, 3)
                assert rm["loader"]["argv"][5] == cmre and rm["loader"]["argv"][-2:] == [
                    "--trust-sim-root", root_hex]
                ports.append(st["port"])
            assert sorted(ports) == sorted(int(x) for x in re.findall(
                r"replica \d+\s+https://localhost:(\d+)/", out))
            ca = proj / ".mse/ca.pem"
            for port in ports:
                c = subprocess.run(["curl", "-sS", "--fail", "--cacert", str(ca),
                                    f"https://localhost:{port}/health"], capture_output=True,
                                   text=True, timeout=30)
                assert c.returncode == 0, c.stderr
            pin = proj / ".mse/coordinator/ratls.pem"
            url = f"127.0.0.1:{cst['port']}"
            st = json.loads(mse(env, "coordinator", "status", "--url", url, "--pin", pin).stdout)
            assert st["attestations_accepted"] >= 2 and st["simulation"] is False
            assert pccs.total_hits() > 0, "the enclaves took their collateral from the PCCS"

            # The operator tampers with the package and signs with its own key: refused.
            (proj / "mse_src/app.py").write_text((proj / "mse_src/app.py").read_text() + "\n# tampered\n")
            mse(env, "package", "--project", proj, "--output", d / "evil", "--quiet")
            mse(env, "keygen", "--sgx-signer", "--output", d / "evil.pem")
            evil = next((d / "evil").glob("*.tar"))
            mse(env, "coordinator", "replica", "--name", "evil", "--package", evil, "--url", url,
                "--coordinator-mrenclave", cmre, "--dns", "localhost", "--sgx", "--signer-key",
                d / "evil.pem", "--pccs-url", pccs.url, "--accept-simulation-quotes")
            log = sdir / "evil/bootstrap.log"
            wait_for(lambda: "refused by the coordinator" in log.read_text(), what="the refusal")
            assert "[measurement] refused by the coordinator" in log.read_text(), log.read_text()
            assert not (sdir / "evil/workspace/key/app.key").exists()
            after = json.loads(mse(env, "coordinator", "status", "--url", url, "--pin", pin).stdout)
            assert after["attestations_refused"] > st["attestations_refused"]
            assert after["attestations_accepted"] == st["attestations_accepted"]
            mse(env, "stop", "evil", "--remove")

            # A changed project: deploy again, the replicas roll, the CA stays.
            ca_before = ca.read_text()
            j = json.loads(deploy_sgx(env, proj, d / "signer.pem", pccs, "--json", *isv).stdout)
            assert j["ok"] and j["sgx"] is True and j["simulation"] is True and j["replicas"] == 2
            assert j["mrenclave"] == cmre and j["ca"] == str(ca)
            out = "\n".join(e["text"] for e in j["progress"])
            assert "reusing app2-coordinator" in out and '"seq":2' in out, out
            assert ca.read_text() == ca_before
            assert "stopping and removing app2-1 (replaced)" in out, out
            assert set(instances(env)) == {"app2-coordinator", "app2-3", "app2-4"}
            for port in (state(env, "app2-3")["port"], state(env, "app2-4")["port"]):
                c = subprocess.run(["curl", "-sS", "--fail", "--cacert", str(ca),
                                    f"https://localhost:{port}/health"], capture_output=True,
                                   text=True, timeout=30)
                assert c.returncode == 0, c.stderr
        finally:
            stop_all(env, ("app2-coordinator", "app2-1", "app2-2", "evil"))


def test_deploy_replicas_sgx_refuses_another_owners_coordinator(tmp_path):
    """The operator runs NAME-coordinator for another owner key: deploy recomputes the
    MRENCLAVE for the owner's key, verify refuses it, nothing is uploaded, no replica starts."""
    env = env_for(tmp_path)
    d = tmp_path
    proj = sgx_project(env, d, "app4")
    mse(env, "coordinator", "keygen", "--out", d / "other")
    stub, _ = sim_pccs(env)
    with stub as pccs:
        try:
            mse(env, "coordinator", "start", "--name", "app4-coordinator", "--owner-key",
                d / "other.pub", "--sgx", "--signer-key", d / "signer.pem", "--pccs-url", pccs.url,
                "--accept-simulation-quotes")
            theirs = state(env, "app4-coordinator")["mrenclave"]
            p = deploy_sgx(env, proj, d / "signer.pem", pccs, check=False)
            assert p.returncode == 1, p.stdout + p.stderr
            assert "step 5 (verify) failed" in p.stderr, p.stderr
            assert theirs in p.stderr and "mrenclave" in p.stderr.lower(), p.stderr
            expected = re.search(r"expected MRENCLAVE ([0-9a-f]{64})", p.stdout).group(1)
            assert expected != theirs and expected in p.stderr
            # Nothing uploaded: the coordinator still waits for a manifest; no replica, no CA.
            assert instances(env) == ["app4-coordinator"]
            assert not (proj / ".mse/ca.pem").exists()
            assert not (proj / ".mse/coordinator/ratls.pem").exists()
            assert not list((proj / ".mse").glob("package.*"))
            mse(env, "verify", "--url", f"127.0.0.1:{state(env, 'app4-coordinator')['port']}",
                "--mrenclave", theirs, "--allow-simulation", "--output", d / "v")
            st = json.loads(mse(env, "coordinator", "status", "--url",
                                f"127.0.0.1:{state(env, 'app4-coordinator')['port']}", "--pin",
                                d / "v/ratls.pem").stdout)
            assert st["state"] == "waiting-manifest" and st["owner_key"] != (
                proj / ".mse/owner.pub").read_text().strip()
        finally:
            stop_all(env, ("app4-coordinator",))


def test_deploy_replicas_sgx_without_simulation_trust_refuses_the_standins_quote(tmp_path):
    """Without --accept-simulation-quotes the owner verifies the SGX coordinator as on
    hardware: Intel's collateral from the PCCS (asked: the stub counts), the quote's PCK
    chain must end at Intel's root; the stand-in's does not, so step 5 (verify) refuses, and
    the coordinator this run started is stopped and removed with nothing uploaded."""
    env = env_for(tmp_path)
    d = tmp_path
    proj = sgx_project(env, d, "app5")
    stub, _ = sim_pccs(env)
    with stub as pccs:
        try:
            p = mse(env, "deploy", "--project", proj, "--replicas", "2", "--sgx", "--signer-key",
                    d / "signer.pem", "--pccs", pccs.url, "--no-tests", check=False, timeout=600)
            assert p.returncode == 1, p.stdout + p.stderr
            assert "step 5 (verify) failed" in p.stderr, p.stderr
            j = json.loads(mse(env, "deploy", "--project", proj, "--replicas", "2", "--sgx",
                               "--signer-key", d / "signer.pem", "--pccs", pccs.url, "--no-tests",
                               "--json", check=False, timeout=600).stdout)
            assert j["ok"] is False and j["failed_step"] == "verify", j
            assert j["error"]["step"] == "pck-chain" and j["error"]["field"] == "root CA certificate", j["error"]
            assert "Intel" in p.stderr and "root" in p.stderr, p.stderr
            assert pccs.hits.get("tcb", 0) >= 1, pccs.hits
            assert "stopping and removing the coordinator app5-coordinator this run started" in p.stderr
            assert instances(env) == []
            assert not (proj / ".mse/ca.pem").exists()
            assert not (proj / ".mse/coordinator/ratls.pem").exists()
            # The coordinator's manifest had no --trust-sim-root: a production enclave.
            starts = [c for c in calls(env, "gramine-sgx:run")
                      if c["argv"][0].endswith("mse-coordinator")]
            assert starts and all("--trust-sim-root" not in c["argv"] for c in starts)
        finally:
            stop_all(env, ("app5-coordinator",))


@pytest.mark.parametrize("bad,actual", [("30g1", "'g' (byte 0x67) at offset 2"),
                                        ("308", "3 digits"), ("AB", "'A' (byte 0x41) at offset 0"),
                                        ("ab" * 2049, "4098 digits")])
def test_trust_sim_root_usage_error_names_expected_and_actual(bad, actual):
    """A malformed --trust-sim-root is a usage error that says what was expected and what
    was given, from both programs (they printed an empty message: the check set only
    expected/actual and the programs printed the message part)."""
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    for argv in ([str(COORD), "--owner-key", "ab" * 32],
                 [str(BUILD / "mse-bootstrap"), "app:app", "--app-dir", "/nonexistent",
                  "--coordinator-mrenclave", "cd" * 32]):
        r = subprocess.run(argv + ["--trust-sim-root", bad], capture_output=True, text=True,
                           env=env, timeout=30)
        first = r.stderr.splitlines()[0] if r.stderr else ""
        assert r.returncode == 2, r.stderr
        assert "--trust-sim-root" in first and "lowercase hex" in first and actual in first, first
