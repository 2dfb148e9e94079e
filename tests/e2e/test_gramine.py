# SPDX-License-Identifier: Apache-2.0
"""The SGX launch with Gramine, end to end through the Gramine stand-in
(tests/gramine-standin/: gramine-manifest, gramine-sgx-sign, gramine-sgx on
PATH, checking what reaches them as Gramine 1.9 documents it).

`mse deploy --sgx` runs its real SGX path: manifest, gramine-manifest,
gramine-sgx-sign with the operator's key, gramine-sgx, evidence, and the
code provider's MRENCLAVE recomputed by running gramine-sgx-sign again on
its own inputs with a throw-away key, never taken from the enclave. The
quotes are simulation quotes (the stand-in's quoting helper), so the
verifier trusts them only through --accept-simulation-quotes.

Independent checks: Python's tomllib reads the manifest, python3-cryptography
reads the SIGSTRUCT (tests/helpers/sigstruct_py.py), requests calls the app
pinned to the verified certificate.
"""
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "helpers"))
import sigstruct_py  # noqa: E402
from prom_text import parse_prometheus  # noqa: E402

MSE = os.environ.get("MSE_BIN", "build/mse")
STANDIN = Path(__file__).resolve().parent.parent / "gramine-standin"


def env_for(tmp: Path):
    e = dict(os.environ)
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    e["HOME"] = str(home)
    e["XDG_STATE_HOME"] = str(home / ".local/state")
    e["XDG_CONFIG_HOME"] = str(home / ".config")
    e["XDG_CACHE_HOME"] = str(home / ".cache")
    e.pop("MSE_SIM_DIR", None)
    e["ASAN_OPTIONS"] = e.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    e["PATH"] = f"{STANDIN}:{e['PATH']}"
    e["GRAMINE_STANDIN_LOG"] = str(tmp / "gramine-calls.jsonl")
    e["GRAMINE_STANDIN_MSE"] = str(Path(MSE).resolve())
    return e


def mse(env, *args, check=True, timeout=300):
    p = subprocess.run([MSE, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"mse {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def calls(env, tool):
    path = Path(env["GRAMINE_STANDIN_LOG"])
    if not path.exists():
        return []
    return [c for c in map(json.loads, path.read_text().splitlines()) if c["tool"] == tool]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mrsigner_of(pem: Path):
    key = sigstruct_py.load_key(pem)
    return sigstruct_py.mrsigner(key)


def test_deploy_on_sgx_through_gramine(tmp_path):
    env = env_for(tmp_path)
    subprocess.run([MSE, "scaffold", "demo"], cwd=tmp_path, env=env, check=True, capture_output=True)
    proj = tmp_path / "demo"
    signer = tmp_path / "signer.pem"
    k = mse(env, "keygen", "--sgx-signer", "--output", str(signer))
    assert os.stat(signer).st_mode & 0o777 == 0o600
    assert k.stdout.strip() == mrsigner_of(signer).hex()
    port = free_port()
    metrics = f"127.0.0.1:{free_port()}"
    p = mse(env, "deploy", "--project", str(proj), "--sgx", "--signer-key", str(signer),
            "--accept-simulation-quotes", "--port", str(port), "--isvprodid", "7", "--isvsvn", "3",
            "--metrics", metrics)
    out = p.stdout
    assert "starting the enclave (SGX, Gramine)" in out and "tests passed" in out, out
    mrenclave = re.search(r"MRENCLAVE\s+([0-9a-f]{64})", out).group(1)
    assert "expected MRENCLAVE from gramine-sgx-sign (Gramine 1.9" in out
    statedir = Path(env["XDG_STATE_HOME"]) / "mse/demo"

    # What reached Gramine, command by command, as its manual pages ask.
    (man,) = calls(env, "gramine-manifest")[:1]
    assert man["argv"] == ["-Darch_libdir=/lib/x86_64-linux-gnu", "mse.manifest.template", "mse.manifest"]
    assert man["cwd"] == str(statedir)
    signs = calls(env, "gramine-sgx-sign")
    assert len(signs) == 2, signs
    op, recompute = signs
    assert op["cwd"] == str(statedir)
    assert op["argv"] == ["--key", str(signer), "--manifest", "mse.manifest", "--output", "mse.manifest.sgx"]
    # The code provider's recomputation: elsewhere, with a throw-away key, never the operator's.
    assert recompute["cwd"] != str(statedir) and recompute["cwd"].startswith("/tmp/mse-measure.")
    assert recompute["argv"][0] == "--key" and recompute["argv"][1] != str(signer)
    assert not Path(recompute["cwd"]).exists(), "the recomputation cleans up"
    results = calls(env, "gramine-sgx-sign:result")
    assert [r["mrenclave"] for r in results] == [mrenclave, mrenclave]
    (run,) = calls(env, "gramine-sgx")
    assert run["argv"] == [str(statedir / "mse")] and run["cwd"] == str(statedir)
    (started,) = calls(env, "gramine-sgx:run")
    # fs.start_dir: the app runs in its code directory, the host side of /mse-app.
    assert started["start_dir"] == str(statedir / "workspace/mse-app")
    assert (statedir / "workspace/mse-app/app.py").exists()

    # The manifest, read by an independent TOML parser.
    m = tomllib.loads((statedir / "mse.manifest").read_text())
    ev = json.loads((proj / ".mse/evidence/evidence.json").read_text())
    ia = ev["input_args"]
    assert m["libos"]["entrypoint"] == "/mse-bootstrap"
    assert m["fs"]["start_dir"] == "/mse-app"
    assert m["sys"]["disallow_subprocesses"] is True
    sgx = m["sgx"]
    assert sgx["debug"] is False and sgx["remote_attestation"] == "dcap"
    assert sgx["isvprodid"] == 7 and sgx["isvsvn"] == 3
    assert sgx["max_threads"] >= 16 + 4 and sgx["enclave_size"] == "4096M"
    argv = m["loader"]["argv"]
    assert argv[argv.index("--id") + 1] == ia["app_id"]
    assert argv[argv.index("--ratls") + 1] == str(ia["expiration_date"])
    assert argv[argv.index("--port") + 1] == str(port)
    assert argv[argv.index("--threads") + 1] == "16"
    # --metrics: a stand-alone enclave's address is in the measured argv, and in the
    # evidence so that the code provider's recomputation renders the same manifest
    # (the verify step of the deploy above passed with it).
    assert argv[argv.index("--metrics") + 1] == metrics
    assert ev["gramine"]["metrics"] == metrics
    mounts = {x["path"]: x for x in m["fs"]["mounts"]}
    for p_ in ("/root", "/key", "/mse-app"):
        assert mounts[p_]["type"] == "encrypted" and mounts[p_]["key_name"] == "_sgx_mrenclave"
    assert mounts["/tmp"]["type"] == "tmpfs"
    assert "file:app/" in sgx["trusted_files"] and "file:mse-bootstrap" in sgx["trusted_files"]
    assert any(t.endswith("/python3.11/") for t in sgx["trusted_files"])

    # The SIGSTRUCT, read with python3-cryptography: it is what was recorded and deployed.
    sig = sigstruct_py.parse((statedir / "mse.sig").read_bytes())
    assert sig["mrenclave"].hex() == mrenclave
    assert sig["mrsigner"] == mrsigner_of(signer)
    assert (sig["isvprodid"], sig["isvsvn"], sig["debug"]) == (7, 3, False)
    st = json.loads((statedir / "state.json").read_text())
    assert st["mrenclave"] == mrenclave and st["mrsigner"] == sig["mrsigner"].hex()
    assert st["gramine_version"].startswith("Gramine 1.9")
    g = ev["gramine"]
    assert g["mrenclave"] == mrenclave and g["mrsigner"] == sig["mrsigner"].hex()
    assert (g["isvprodid"], g["isvsvn"], g["port"]) == (7, 3, port)
    v = mse(env, "verify", "--sigstruct", str(statedir / "mse.sig"), "--signer-key", str(signer),
            "--mrenclave", mrenclave, "--isvprodid", "7", "--json")
    j = json.loads(v.stdout)
    assert j["ok"] and j["mrenclave"] == mrenclave and j["isvsvn"] == 3

    # The app, through the pinned certificate.
    ratls = proj / ".mse/verified/ratls.pem"
    base = f"https://localhost:{port}"
    sealed = json.loads((proj / "secrets_to_seal.json").read_text())
    assert requests.get(base + "/health", verify=str(ratls), timeout=20).status_code == 200
    assert requests.post(base + "/", verify=str(ratls), timeout=20).status_code == 200
    scraped = requests.get(f"http://{metrics}/metrics", timeout=20).text
    assert parse_prometheus(scraped)["mse_http_requests_total"]["samples"], scraped

    # The code provider's check, by hand: the recomputation refuses what differs.
    pkg = next((proj / ".mse").glob("package.*/package_*.tar"))
    evp = proj / ".mse/evidence/evidence.json"
    ok = mse(env, "verify", "--package", str(pkg), "--evidence", str(evp), "--signer-key", str(signer),
             "--allow-simulation")
    assert f"expected:     MRENCLAVE {mrenclave}" in ok.stdout and "gramine-sgx-sign" in ok.stdout
    other = dict(env, GRAMINE_STANDIN_VERSION="Gramine 1.8 (other)")
    r = mse(other, "verify", "--package", str(pkg), "--evidence", str(evp), "--signer-key", str(signer),
            "--allow-simulation", check=False)
    assert r.returncode == 1
    assert 'signed with "Gramine 1.9 (mse-c test stand-in)"' in r.stderr + r.stdout
    assert '"Gramine 1.8 (other)"' in r.stderr + r.stdout
    fake = tmp_path / "mse-bootstrap"
    fake.write_bytes(Path(os.environ.get("MSE_BOOTSTRAP", "build/mse-bootstrap")).read_bytes() + b"\0")
    r = mse(env, "verify", "--package", str(pkg), "--evidence", str(evp), "--signer-key", str(signer),
            "--allow-simulation", "--bootstrap", str(fake), check=False)
    assert r.returncode == 1 and "MRENCLAVE: expected" in r.stdout + r.stderr, r.stdout + r.stderr
    r = mse(env, "verify", "--package", str(pkg), "--evidence", str(evp), "--signer-key", str(signer),
            "--allow-simulation", "--mrenclave", "00" * 32, check=False)
    assert r.returncode == 1 and "00" * 32 in r.stdout + r.stderr
    # Without the simulation root the stand-in's quotes are not trusted.
    r = mse(env, "verify", "--package", str(pkg), "--evidence", str(evp), "--signer-key", str(signer),
            check=False)
    assert r.returncode == 1

    # restart: the same enclave (same MRENCLAVE, same sealing key) finds its sealed data.
    mse(env, "restart", "demo")
    newcert = statedir / "ratls.pem"
    r = requests.get(base + "/sign", verify=str(newcert), params={"message": "m"}, timeout=20)
    assert r.json()["hmac_sha256"] == hmac.new(sealed["api_key"].encode(), b"m", hashlib.sha256).hexdigest()
    assert requests.get(base + "/", verify=str(newcert), timeout=20).status_code == 200, \
        "the file written before the restart is still in the encrypted /root"
    assert len(calls(env, "gramine-sgx")) == 2
    mse(env, "stop", "demo", "--remove")
    assert not statedir.exists()


def test_spawn_sgx_refuses_without_a_proper_signer_key(tmp_path):
    env = env_for(tmp_path)
    subprocess.run([MSE, "scaffold", "demo"], cwd=tmp_path, env=env, check=True, capture_output=True)
    mse(env, "package", "--project", str(tmp_path / "demo"), "--output", str(tmp_path / "pkg"), "--quiet")
    tar = next((tmp_path / "pkg").glob("package_*.tar"))
    base = ["spawn", "s", "--sgx", "--package", str(tar), "--output", str(tmp_path / "ev")]
    r = mse(env, *base, check=False)
    assert r.returncode == 1 and "--signer-key" in r.stderr and "mse keygen --sgx-signer" in r.stderr
    # ISV values are the manifest's: a simulated quote could not carry them.
    r = mse(env, "spawn", "s", "--simulation", "--isvsvn", "2", "--package", str(tar), "--output",
            str(tmp_path / "ev"), check=False)
    assert r.returncode == 1 and "--isvsvn" in r.stderr and "carries 1 and 1, got 2" in r.stderr, r.stderr
    # An RSA key with the usual exponent is not an SGX signer.
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072",
                    "-out", str(tmp_path / "e65537.pem")], check=True, capture_output=True)
    r = mse(env, *base, "--signer-key", str(tmp_path / "e65537.pem"), check=False)
    assert r.returncode == 1 and "exponent 3" in r.stderr and "65537" in r.stderr, r.stderr
    assert not (Path(env["XDG_STATE_HOME"]) / "mse/s").exists()
    assert calls(env, "gramine-sgx-sign") == [] and calls(env, "gramine-sgx") == []
    # An unsupported Gramine is named before anything is created.
    mse(env, "keygen", "--sgx-signer", "--output", str(tmp_path / "k.pem"))
    old = dict(env, GRAMINE_STANDIN_VERSION="Gramine 1.7 (v1.7)")
    r = mse(old, *base, "--signer-key", str(tmp_path / "k.pem"), check=False)
    assert r.returncode == 1 and "Gramine 1.7 (v1.7) is not supported" in r.stderr, r.stderr
    assert not (Path(env["XDG_STATE_HOME"]) / "mse/s").exists()


def test_standin_checks_the_manifest_as_documented(tmp_path):
    """The stand-in is a test oracle: it must refuse what Gramine 1.9 refuses."""
    env = env_for(tmp_path)
    t = tmp_path / "x.manifest.template"
    good = ('libos.entrypoint = "/x"\nloader.entrypoint.uri = "file:{{ gramine.libos }}"\n'
            'fs.mounts = [{ path = "/x", uri = "file:x" }]\n')
    t.write_text(good)
    r = subprocess.run([str(STANDIN / "gramine-manifest"), str(t), str(tmp_path / "x.manifest")],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for bad, why in ((good + "sgx.bogus = 1\n", "sgx.bogus: unknown"),
                     (good + "sgx.debug = \"no\"\n", "sgx.debug: expected true or false"),
                     (good + 'sgx.remote_attestation = "epid"\n', "expected one of"),
                     (good + "loader.argv = [\"a\"]\nloader.argv_src_file = \"file:a\"\n", "mutually exclusive"),
                     (good + "x = {{ undefined_var }}\n", "undefined_var")):
        t.write_text(bad)
        r = subprocess.run([str(STANDIN / "gramine-manifest"), str(t), str(tmp_path / "x.manifest")],
                           env=env, capture_output=True, text=True)
        assert r.returncode != 0 and why in r.stderr, (bad, r.stderr)


def test_acceptance_script_with_the_standin(tmp_path):
    """scripts/sgx-acceptance.sh runs every step (with the stand-in, and says so)."""
    env = env_for(tmp_path)
    env["MSE"] = str(Path(MSE).resolve())
    env["MSE_ACCEPTANCE_STANDIN"] = "1"
    root = Path(os.environ.get("MSE_ROOT", ".")).resolve()
    p = subprocess.run([str(root / "scripts/sgx-acceptance.sh")], env=env, capture_output=True,
                       text=True, timeout=600)
    out = p.stdout
    assert p.returncode == 0, out[-4000:] + p.stderr
    assert "STAND-IN RUN" in out and "NOT an SGX result" in out
    for s in ("deploy --sgx", "verify the restarted enclave", "sealed key survived the restart",
              "file in /root survived the restart", "mse stop --remove"):
        assert re.search(r"^PASS  " + re.escape(s), out, re.M), (s, out[-3000:])
    for s in ("mse coordinator start --sgx", "coordinator MRENCLAVE recomputed by the owner",
              "verify the coordinator", "coordinator set", "verify the restarted coordinator",
              "sealed state survived the restart (GET /status: ready)"):
        assert re.search(r"^PASS  " + re.escape(s), out, re.M), (s, out[-3000:])
    assert re.search(r"^SKIP  2 SGX replicas \(the stand-in", out, re.M)
    for s in ("mse deploy --replicas 2 --sgx (coordinator verified, manifest set, replicas attested)",
              "deploy replica 1 answers through the CA", "deploy replica 2 answers through the CA",
              "the deployed coordinator accepted both replicas",
              "mse stop --remove (the deploy's coordinator and replicas)"):
        assert re.search(r"^PASS  " + re.escape(s), out, re.M), (s, out[-3000:])
    assert "RESULT: all steps passed" in out
    assert not list(Path(env["XDG_STATE_HOME"], "mse").glob("mse-accept-*"))
    # Without a device and without the stand-in switch it refuses to pretend.
    env.pop("MSE_ACCEPTANCE_STANDIN")
    if not Path("/dev/sgx_enclave").exists():
        p = subprocess.run([str(root / "scripts/sgx-acceptance.sh")], env=env, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 2 and "no /dev/sgx_enclave" in p.stderr
