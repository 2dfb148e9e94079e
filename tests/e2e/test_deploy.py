# SPDX-License-Identifier: Apache-2.0
"""The operator flow and `mse deploy`, end to end, in simulation (issue: the main job).

Every check talks to the enclave with an independent client (Python's
`requests`/`ssl` pinned to the verified certificate) and inspects files on
disk, never trusting mse's own report alone.
"""
import hashlib
import io
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import requests

MSE = os.environ.get("MSE_BIN", "build/mse")


def env_for(tmp: Path):
    e = dict(os.environ)
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    e["HOME"] = str(home)
    e["XDG_STATE_HOME"] = str(home / ".local/state")
    e["XDG_CONFIG_HOME"] = str(home / ".config")
    e["XDG_CACHE_HOME"] = str(home / ".cache")
    e.pop("MSE_SIM_DIR", None)
    # mse-bootstrap runs under a seccomp filter, where LeakSanitizer cannot.
    e["ASAN_OPTIONS"] = e.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    return e


def mse(env, *args, check=True, timeout=300):
    p = subprocess.run([MSE, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"mse {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def state(env, name):
    return json.loads(mse(env, "status", name, "--json", check=False).stdout)


def scaffold(tmp, env, name="demo"):
    p = subprocess.run([MSE, "scaffold", name], cwd=tmp, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return tmp / name


def package(env, project: Path, out: Path):
    mse(env, "package", "--project", str(project), "--output", str(out), "--quiet")
    tar = next(out.glob("package_*.tar"))
    key = next(out.glob("package_*.key"))
    return tar, key


def get(url, ca, **kw):
    return requests.get(url, verify=str(ca), timeout=20, **kw)


def test_deploy_scaffolded_app_end_to_end(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env)
    p = mse(env, "deploy", "--project", str(proj))
    out = p.stdout
    assert "SIMULATION" in out
    assert "tests passed" in out
    port = state(env, "demo")["port"]
    ratls = proj / ".mse/verified/ratls.pem"
    base = f"https://localhost:{port}"
    # The pinned certificate is the one the verified quote binds.
    mrenclave = re.search(r"MRENCLAVE\s+([0-9a-f]{64})", out).group(1)
    v = mse(env, "verify", "--cert", str(ratls), "--allow-simulation", "--json",
            "--mrenclave", mrenclave, check=False)
    assert v.returncode == 0, v.stdout + v.stderr
    secrets = json.loads((proj / "secrets.json").read_text())
    sealed = json.loads((proj / "secrets_to_seal.json").read_text())
    assert get(base + "/health", ratls).status_code == 200
    assert get(base + "/whoami", ratls).text == secrets["login"]
    assert requests.post(base + "/", verify=str(ratls), timeout=20).status_code == 200
    assert get(base + "/", ratls).status_code == 200
    import hmac
    r = get(base + "/sign", ratls, params={"message": "m"})
    assert r.json()["hmac_sha256"] == hmac.new(sealed["api_key"].encode(), b"m", hashlib.sha256).hexdigest()
    # The operator's view: running; the code key never appears in what it holds.
    assert state(env, "demo")["status"] == "running"
    key_hex = next((proj / ".mse").glob("package.*/package_*.key")).read_bytes().hex()
    statedir = Path(env["XDG_STATE_HOME"]) / "mse/demo"
    for f in statedir.rglob("*"):
        if f.is_file() and "workspace" not in f.parts:
            assert key_hex.encode() not in f.read_bytes(), f
    # A restart after provisioning serves again without new secrets.
    mse(env, "restart", "demo")
    newcert = statedir / "ratls.pem"
    assert get(base + "/whoami", newcert).text == secrets["login"]
    # stop --remove leaves nothing.
    mse(env, "stop", "demo", "--remove")
    assert not statedir.exists()
    assert mse(env, "list").stdout.strip().startswith("no enclaves")


def tamper_package(src: Path, dst: Path):
    """What a malicious operator can do: swap one encrypted file, fix the digest."""
    with tarfile.open(src) as t:
        members = {m.name: t.extractfile(m).read() for m in t.getmembers()}
    inner = io.BytesIO(members["app.tar"])
    out = io.BytesIO()
    with tarfile.open(fileobj=inner) as a, tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as b:
        for m in a.getmembers():
            data = a.extractfile(m).read() if m.isfile() else None
            if m.name.endswith("app.py.enc"):
                data = data[:40] + bytes(x ^ 0xFF for x in data[40:48]) + data[48:]
                m.size = len(data)
            b.addfile(m, io.BytesIO(data) if data is not None else None)
    members["app.tar"] = out.getvalue()
    pj = json.loads(members["package.json"])
    for k in list(pj):
        if "sha256" in k:
            pj[k] = hashlib.sha256(members["app.tar"]).hexdigest()
    members["package.json"] = json.dumps(pj).encode()
    with tarfile.open(dst, "w", format=tarfile.GNU_FORMAT) as t:
        for name in ("app.tar", "tests.tar", "mse.toml", "package.json"):
            ti = tarfile.TarInfo(name)
            ti.size = len(members[name])
            t.addfile(ti, io.BytesIO(members[name]))


def waiting(port, cert):
    ctx = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := t.recv(4096):
                data += chunk
    return b"Mse-Status: Waiting" in data


def test_tampered_package_fails_at_measurement_and_nothing_is_sent(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env)
    tar, key = package(env, proj, tmp_path / "pkg")
    bad = tmp_path / "tampered.tar"
    tamper_package(tar, bad)
    # The operator's own check of the package passes: the digest was fixed up.
    mse(env, "spawn", "evil", "--package", str(bad), "--output", str(tmp_path / "ev"))
    try:
        v = mse(env, "verify", "--package", str(tar), "--evidence", str(tmp_path / "ev/evidence.json"),
                "--allow-simulation", "--output", str(tmp_path / "trusted"), check=False)
        assert v.returncode == 1, v.stdout
        assert "measurement" in v.stdout + v.stderr
        assert not (tmp_path / "trusted/ratls.pem").exists()
        # So `mse run` has no trusted certificate to use; with the operator's copy it
        # would be pinning an unverified enclave — the deploy flow never does that.
        st = state(env, "evil")
        assert st["status"] == "waiting secret keys"
        assert waiting(st["port"], tmp_path / "ev/ratls.pem")
        ws = Path(st["workspace"])
        assert not list(ws.rglob("secrets.json")) and not list(ws.rglob("sealed_secrets.json"))
    finally:
        mse(env, "stop", "evil", "--remove", check=False)


def spawn_verified(env, tmp, proj, name):
    tar, key = package(env, proj, tmp / f"pkg-{name}")
    mse(env, "spawn", name, "--package", str(tar), "--output", str(tmp / f"ev-{name}"))
    mse(env, "verify", "--package", str(tar), "--evidence", str(tmp / f"ev-{name}/evidence.json"),
        "--allow-simulation", "--output", str(tmp / f"ok-{name}"))
    return tar, key, tmp / f"ok-{name}/ratls.pem"


def test_wrong_uuid_is_refused_and_nothing_written(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env)
    tar, key, ratls = spawn_verified(env, tmp_path, proj, "u")
    try:
        sf = Path(env["XDG_STATE_HOME"]) / "mse/u/state.json"
        good = json.loads(sf.read_text())
        bad = dict(good, uuid="00000000-0000-4000-8000-000000000000")
        sf.write_text(json.dumps(bad))
        r = mse(env, "run", "u", "--ratls", str(ratls), "--key", str(key),
                "--secrets", str(proj / "secrets.json"), check=False)
        assert r.returncode == 1
        assert "401" in r.stderr
        ws = Path(good["workspace"])
        assert not list(ws.rglob("secrets.json"))
        assert state(env, "u")["status"] == "waiting secret keys"
        # With the right uuid it works, once.
        sf.write_text(json.dumps(good))
        mse(env, "run", "u", "--ratls", str(ratls), "--key", str(key), "--secrets", str(proj / "secrets.json"))
        r = mse(env, "run", "u", "--ratls", str(ratls), "--key", str(key), check=False)
        assert r.returncode == 1 and "not waiting" in r.stderr
    finally:
        mse(env, "stop", "u", "--remove", check=False)


def test_killed_during_provisioning_then_restart_and_run(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env)
    tar, key, ratls = spawn_verified(env, tmp_path, proj, "k")
    before = set(Path("/tmp").iterdir())
    try:
        st = state(env, "k")
        # Start a provisioning request and kill the enclave in the middle of its body.
        ctx = ssl.create_default_context(cafile=str(ratls))
        body = json.dumps({"uuid": st["uuid"], "code_secret_key": key.read_bytes().hex(),
                           "app_secrets": {"login": "KILLED-MARKER"}}).encode()
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", st["port"]), timeout=10),
                            server_hostname="localhost")
        s.sendall(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body[: len(body) // 2])
        time.sleep(0.3)
        os.kill(st["pid"], signal.SIGKILL)
        s.close()
        time.sleep(0.3)
        assert state(env, "k")["status"] == "on error"
        mse(env, "restart", "k")
        # A new start: the code provider verifies the new certificate again.
        mse(env, "evidence", "k", "--output", str(tmp_path / "ev2"))
        mse(env, "verify", "--package", str(tar), "--evidence", str(tmp_path / "ev2/evidence.json"),
            "--allow-simulation", "--output", str(tmp_path / "ok2"))
        mse(env, "run", "k", "--ratls", str(tmp_path / "ok2/ratls.pem"), "--key", str(key),
            "--secrets", str(proj / "secrets.json"))
        port = state(env, "k")["port"]
        for _ in range(100):
            try:
                r = get(f"https://localhost:{port}/whoami", tmp_path / "ok2/ratls.pem")
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert r.text == json.loads((proj / "secrets.json").read_text())["login"]
        # Nothing secret was left outside the workspace.
        statedir = Path(env["XDG_STATE_HOME"]) / "mse/k"
        for f in list(statedir.rglob("*")) + [p for d in set(Path("/tmp").iterdir()) - before
                                              for p in ([d] if d.is_file() else d.rglob("*"))]:
            if f.is_file() and "workspace" not in f.parts:
                try:
                    data = f.read_bytes()
                except OSError:
                    continue
                assert b"KILLED-MARKER" not in data, f
                assert key.read_bytes().hex().encode() not in data, f
    finally:
        mse(env, "stop", "k", "--remove", check=False)


def test_operator_commands_fail_clearly(tmp_path):
    env = env_for(tmp_path)
    r = mse(env, "status", "nope", check=False)
    assert r.returncode == 1 and 'no instance named "nope"' in r.stderr
    r = mse(env, "spawn", "x", "--package", str(tmp_path / "missing.tar"), "--output", str(tmp_path), check=False)
    assert r.returncode == 1 and "missing.tar" in r.stderr
    assert not (Path(env["XDG_STATE_HOME"]) / "mse/x").exists()
    r = mse(env, "spawn", "../x", "--package", "p", "--output", "o", check=False)
    assert r.returncode == 1
    r = mse(env, "run", "x", check=False)
    assert r.returncode == 2
    for cmd in ("spawn", "evidence", "run", "test", "status", "logs", "list", "stop", "restart", "deploy"):
        h = mse(env, cmd, "--help")
        assert h.stdout.startswith("Usage: mse " + cmd), cmd


def test_localtest_runs_the_app_with_enclave_rules(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env, "lt")
    r = mse(env, "localtest", "--project", str(proj))
    assert "tests passed" in r.stdout
    # The enclave's rules apply: a subprocess fails inside the app, cleanly.
    app = proj / "mse_src/app.py"
    app.write_text(app.read_text() + '''

@app.get("/spawn")
def spawn():
    import subprocess
    try:
        subprocess.run(["/bin/true"], check=True)
        return "ran"
    except OSError as e:
        return "refused: %s" % e.__class__.__name__
''')
    (proj / "tests/test_spawn.py").write_text('''
import os, requests
def test_spawn_refused():
    r = requests.get(os.environ["TEST_REMOTE_URL"] + "/spawn", timeout=10)
    assert r.status_code == 200 and r.text.startswith("refused"), r.text
''')
    r = mse(env, "localtest", "--project", str(proj))
    assert "tests passed" in r.stdout
    # A failing test is a failure.
    (proj / "tests/test_fail.py").write_text("def test_fail():\n    assert False\n")
    r = mse(env, "localtest", "--project", str(proj), check=False)
    assert r.returncode == 1
    (proj / "tests/test_fail.py").unlink()
    # A requirement that is not installed is named before anything starts.
    (proj / "mse_src/requirements.txt").write_text("flask\nno_such_dist_for_mse\n")
    r = mse(env, "localtest", "--project", str(proj), check=False)
    assert r.returncode == 1
    assert "requirements.txt:2: no_such_dist_for_mse: not installed" in r.stderr
    assert "python3-no-such-dist-for-mse" in r.stderr
    # deploy stops at step 1 for the same reason, and starts nothing.
    r = mse(env, "deploy", "--project", str(proj), check=False)
    assert r.returncode == 1 and "step 1 (check)" in r.stderr
    assert mse(env, "list").stdout.strip().startswith("no enclaves")


def test_spawn_sgx_without_gramine_renders_the_manifest_and_leaves_nothing(tmp_path):
    env = env_for(tmp_path)
    env["PATH"] = "/usr/bin:/bin"
    if all(Path(d, p).exists() for d in ("/usr/bin",) for p in ("gramine-sgx", "gramine-sgx-sign", "gramine-manifest")):
        pytest.skip("Gramine is installed here")
    proj = scaffold(tmp_path, env)
    tar, _ = package(env, proj, tmp_path / "pkg")
    out = tmp_path / "ev"
    r = mse(env, "spawn", "g", "--sgx", "--size", "2048", "--package", str(tar), "--output", str(out),
            check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Gramine is not installed" in r.stderr and "--simulation" in r.stderr
    # The manifest was generated (in memory) before Gramine was looked for.
    assert re.search(r"rendered the Gramine manifest \(\d+ bytes, sgx.enclave_size 2048M, sgx.max_threads \d+\)", r.stdout), r.stdout
    # No state directory, no output, no simulation root, no process.
    assert not (Path(env["XDG_STATE_HOME"]) / "mse/g").exists()
    assert not out.exists() or not any(out.iterdir())
    assert mse(env, "list").stdout.strip().startswith("no enclaves")


def self_signed(tmp: Path, name="localhost"):
    """An impostor's certificate for the same name, from the openssl CLI."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(tmp / "evil.key"), "-out", str(tmp / "evil.pem"),
                    "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"],
                   check=True, capture_output=True)
    return tmp / "evil.pem", tmp / "evil.key"


def test_run_to_a_swapped_server_sends_nothing(tmp_path):
    import threading
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env)
    tar, key, ratls = spawn_verified(env, tmp_path, proj, "sw")
    cert, ckey = self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(ckey))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    seen = {"connections": 0, "data": b""}
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            seen["connections"] += 1
            c.settimeout(5)
            try:
                with ctx.wrap_socket(c, server_side=True) as t:
                    while chunk := t.recv(65536):
                        seen["data"] += chunk
                    # Had it got this far, it would answer as a configuration server.
                    t.sendall(b"HTTP/1.1 200 OK\r\nMse-Status: Waiting\r\nContent-Length: 0\r\n\r\n")
            except (OSError, ssl.SSLError):
                pass

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    sf = Path(env["XDG_STATE_HOME"]) / "mse/sw/state.json"
    good = json.loads(sf.read_text())
    try:
        # The operator points the instance at another server holding another key.
        sf.write_text(json.dumps(dict(good, port=srv.getsockname()[1])))
        r = mse(env, "run", "sw", "--ratls", str(ratls), "--key", str(key),
                "--secrets", str(proj / "secrets.json"), check=False)
        assert r.returncode == 1, r.stdout
        assert "not the pinned one" in r.stderr, r.stderr
        assert seen["connections"] >= 1          # it did try that server...
        assert seen["data"] == b""               # ...and sent it nothing, not even the GET
        # The real enclave still waits: nothing reached it either.
        sf.write_text(json.dumps(good))
        assert state(env, "sw")["status"] == "waiting secret keys"
    finally:
        stop.set()
        th.join(5)
        srv.close()
        mse(env, "stop", "sw", "--remove", check=False)


def test_deploy_verify_failure_stops_and_removes_the_enclave(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env)
    # The verifier recomputes MRENCLAVE from the mse-bootstrap beside mse: a
    # wrapper directory holds a copy of mse and a bootstrap one byte longer,
    # while MSE_BOOTSTRAP keeps running the real one. Spawn succeeds, the
    # measurement cannot match.
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    real_boot = Path(os.environ.get("MSE_BOOTSTRAP", "build/mse-bootstrap")).resolve()
    (wrap / "mse").write_bytes(Path(MSE).read_bytes())
    (wrap / "mse-bootstrap").write_bytes(real_boot.read_bytes() + b"\0")
    for f in ("mse", "mse-bootstrap"):
        (wrap / f).chmod(0o755)
    env["MSE_BOOTSTRAP"] = str(real_boot)
    p = subprocess.run([str(wrap / "mse"), "deploy", "--project", str(proj), "--no-tests"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "[4/8] evidence" in p.stdout and "[6/8]" not in p.stdout
    assert "step 5 (verify) failed" in p.stderr
    assert "MRENCLAVE" in p.stderr and "measurement" in p.stderr
    # Stopped and removed: no state, no process, nothing listed.
    root = Path(env["XDG_STATE_HOME"]) / "mse"
    assert not (root / "demo").exists()
    assert mse(env, "list").stdout.strip().startswith("no enclaves")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert str(root).encode() not in cmd, cmd
    # Nothing secret was prepared: no sealed secrets, and this run's code key is gone.
    work = proj / ".mse"
    assert not (work / "sealed_secrets.bin").exists()
    assert not list(work.glob("package.*/package_*.key"))
    # The enclave's log was kept for the user, private.
    log = work / "demo-bootstrap.log"
    assert log.exists() and (log.stat().st_mode & 0o777) == 0o600
    assert str(log) in p.stderr
