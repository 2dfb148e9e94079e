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


def test_sparse_package_refused_by_spawn_before_writing(tmp_path):
    """A ~30 KB package whose app.tar declares a 1 GiB file (a GNU sparse
    entry: only the non-zero blocks are stored) made spawn write 1.1 GiB."""
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env)
    tar, _ = package(env, proj, tmp_path / "pkg")
    with tarfile.open(tar) as t:
        members = {m.name: t.extractfile(m).read() for m in t.getmembers()}
    src = tmp_path / "sparse"
    src.mkdir()
    with open(src / "big.py.enc", "wb") as f:
        f.truncate(1 << 30)
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(tmp_path / "app.tar"), "-C", str(src),
                    "big.py.enc"], check=True)
    members["app.tar"] = (tmp_path / "app.tar").read_bytes()
    pj = json.loads(members["package.json"])
    pj["app_sha256"] = hashlib.sha256(members["app.tar"]).hexdigest()
    members["package.json"] = json.dumps(pj).encode()
    bad = tmp_path / "sparse.tar"
    with tarfile.open(bad, "w", format=tarfile.GNU_FORMAT) as t:
        for name in ("app.tar", "tests.tar", "mse.toml", "package.json"):
            ti = tarfile.TarInfo(name)
            ti.size = len(members[name])
            t.addfile(ti, io.BytesIO(members[name]))
    assert bad.stat().st_size < 64 << 10
    with tarfile.open(fileobj=io.BytesIO(members["app.tar"])) as t:  # oracle: what it declares
        assert t.getmember("big.py.enc").size == 1 << 30
    p = mse(env, "spawn", "sparse", "--package", str(bad), "--output", str(tmp_path / "ev"), check=False)
    assert p.returncode != 0
    assert "big.py.enc: refused: sparse file" in p.stderr, p.stderr
    state_root = Path(env["XDG_STATE_HOME"]) / "mse"
    assert not (state_root / "sparse").exists()
    written = sum(f.stat().st_size for f in state_root.rglob("*") if f.is_file()) if state_root.exists() else 0
    assert written < 1 << 20


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
        # The GET's proof is bound to the uuid: another uuid stops before the POST.
        assert "not the configuration server of this instance" in r.stderr, r.stderr
        assert "Nothing was sent" in r.stderr
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
        # /tmp is shared: what other processes remove meanwhile is skipped
        # (os.walk ignores errors; rglob raised on a vanished directory).
        new = [d for d in set(Path("/tmp").iterdir()) - before]
        files = [Path(r, n) for d in new for r, _, ns in os.walk(d) for n in ns]
        for f in list(statedir.rglob("*")) + [d for d in new if d.is_file()] + files:
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


# ---- issue 12: healthy means a 2xx; a failed deploy says why; --replace keeps the old one ----

HEALTH_OK = 'return Response(response="OK", status=HTTPStatus.OK)'


def set_health(proj: Path, status: str):
    app = proj / "mse_src/app.py"
    text = app.read_text()
    assert HEALTH_OK in text or "HEALTH-" in text
    import re as _re
    text = _re.sub(r'return Response\(response="(OK|HEALTH-\w+)", status=HTTPStatus\.\w+\)',
                   f'return Response(response="HEALTH-{status}", status=HTTPStatus.{status})', text)
    app.write_text(text)


def test_health_answering_500_is_not_healthy_anywhere(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env, "sick")
    set_health(proj, "INTERNAL_SERVER_ERROR")
    # localtest: not healthy, so the tests are not run
    r = mse(env, "localtest", "--project", str(proj), check=False)
    assert r.returncode == 1
    assert "/health did not answer 2xx" in r.stderr and "(last: HTTP 500)" in r.stderr, r.stderr
    assert "healthy means a 2xx" in r.stderr
    assert "tests passed" not in r.stdout
    # deploy --no-tests: refused at the health check, nothing left running
    t0 = time.monotonic()
    r = mse(env, "deploy", "--project", str(proj), "--no-tests", check=False)
    assert r.returncode == 1, r.stdout
    assert "Deployed" not in r.stdout
    assert "step 8 (test) failed" in r.stderr and "HTTP 500" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 120
    assert mse(env, "list").stdout.strip().startswith("no enclaves")
    # status and test on a provisioned instance whose /health answers 500
    tar, key, ratls = spawn_verified(env, tmp_path, proj, "s5")
    try:
        mse(env, "run", "s5", "--ratls", str(ratls), "--key", str(key),
            "--secrets", str(proj / "secrets.json"))
        base = f"https://localhost:{state(env, 's5')['port']}"
        for _ in range(100):  # the independent client sees the 500
            try:
                if get(base + "/health", ratls).status_code == 500:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        assert get(base + "/health", ratls).status_code == 500
        st = mse(env, "status", "s5", check=False)
        assert st.returncode == 1, st.stdout
        assert "unhealthy" in st.stdout and "HTTP 500" in st.stdout, st.stdout
        assert "running" not in st.stdout
        assert state(env, "s5")["status"] == "unhealthy"
        t = mse(env, "test", "s5", "--ratls", str(ratls), check=False)
        assert t.returncode == 1
        assert "answered HTTP 500" in t.stderr and "tests were not run" in t.stderr, t.stderr
        assert "tests passed" not in t.stdout
    finally:
        mse(env, "stop", "s5", "--remove", check=False)


def test_failed_deploy_prints_the_cause_and_names_the_kept_log(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env, "syn")
    app = proj / "mse_src/app.py"
    app.write_text(app.read_text() + "\n\ndef broken(:\n    pass\n")
    r = mse(env, "deploy", "--project", str(proj), "--no-tests", check=False)
    assert r.returncode == 1, r.stdout
    assert "SyntaxError" in r.stderr, r.stderr           # the cause, on the console
    log = proj / ".mse/syn-bootstrap.log"
    assert f"kept in {log}" in r.stderr
    assert log.exists() and "SyntaxError" in log.read_text()
    assert "mse logs" not in r.stderr + r.stdout          # it no longer exists
    assert mse(env, "list").stdout.strip().startswith("no enclaves")


def test_failed_deploy_removes_only_its_own_package_directory(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env, "own")
    set_health(proj, "INTERNAL_SERVER_ERROR")
    # Package directories of other runs, named as deploy names its own (package.<time>):
    # one may be deployed elsewhere with its code key.
    work = proj / ".mse"
    work.mkdir()
    now = int(time.time())
    others = []
    for t in range(now - 1, now + 90):
        d = work / f"package.{t}"
        d.mkdir()
        (d / "package_own_1.key").write_bytes(b"k" * 32)
        others.append(d)
    r = mse(env, "deploy", "--project", str(proj), "--no-tests", check=False)
    assert r.returncode == 1
    for d in others:
        assert (d / "package_own_1.key").read_bytes() == b"k" * 32, d
    # and its own directory is gone
    assert sorted(work.glob("package.*")) == sorted(others)


def test_replace_keeps_the_old_instance_until_the_new_one_passes(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env, "rep")
    p = mse(env, "deploy", "--project", str(proj))
    assert "Deployed rep" in p.stdout
    old = state(env, "rep")
    ratls = proj / ".mse/verified/ratls.pem"
    old_pem = ratls.read_bytes()
    base = f"https://localhost:{old['port']}"
    assert get(base + "/health", ratls).text == "OK"
    # Without --replace a second deploy is refused, naming the instance.
    r = mse(env, "deploy", "--project", str(proj), check=False)
    assert r.returncode == 1 and "already deployed" in r.stderr and "--replace" in r.stderr
    # A new version whose tests fail: the old one keeps serving, untouched.
    (proj / "tests/test_fail.py").write_text("def test_fail():\n    assert False\n")
    r = mse(env, "deploy", "--project", str(proj), "--replace", check=False)
    assert r.returncode == 1, r.stdout
    assert "step 8 (test) failed" in r.stderr
    assert "rep.2" in r.stdout + r.stderr                 # the new one had its own name
    assert "rep is unchanged: still running" in r.stderr
    assert state(env, "rep")["status"] == "running"
    assert state(env, "rep")["pid"] == old["pid"] and state(env, "rep")["port"] == old["port"]
    assert ratls.read_bytes() == old_pem                  # the pinned certificate is still the old one's
    assert get(base + "/health", ratls).text == "OK"
    assert mse(env, "status", "rep.2", check=False).returncode != 0
    assert "rep.2" not in mse(env, "list").stdout
    # A new version that passes: it starts beside (rep.2, another port), then the switch.
    (proj / "tests/test_fail.py").unlink()
    set_health(proj, "OK")  # same answer, new code
    (proj / "mse_src/app.py").write_text((proj / "mse_src/app.py").read_text() + "\n# v2\n")
    p = mse(env, "deploy", "--project", str(proj), "--replace")
    assert "Deployed rep.2" in p.stdout and "replaces    rep" in p.stdout
    new = state(env, "rep.2")
    assert new["status"] == "running" and new["port"] != old["port"]
    assert ratls.read_bytes() != old_pem
    assert get(f"https://localhost:{new['port']}/health", ratls).text == "HEALTH-OK"
    names = mse(env, "list").stdout
    assert "rep.2" in names and not re.search(r"^rep\s", names, re.M)
    with pytest.raises(requests.ConnectionError):
        requests.get(base + "/health", verify=False, timeout=5)
    mse(env, "stop", "rep.2", "--remove")


def provproof(uuid: str, state: str, nonce: str) -> str:
    """Mse-Proof as the configuration server computes it (crypto/provproof.h), here with
    Python's hmac: HMAC-SHA256(SHA-256(uuid), "mse-c provisioning v1\\n" state "\\n" nonce)."""
    import hmac
    key = hashlib.sha256(uuid.encode()).digest()
    return hmac.new(key, b"mse-c provisioning v1\n" + state.encode() + b"\n" + nonce.encode(),
                    hashlib.sha256).hexdigest()


def self_signed_ca(tmp: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime
    k = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(k, hashes.SHA256()))
    (tmp / "stub.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "stub.key").write_bytes(k.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    return tmp / "stub.pem", tmp / "stub.key"


@pytest.mark.parametrize("mode", ["closes-after-waiting", "app-answers-the-post"])
def test_run_detects_a_post_answered_after_the_hand_over(tmp_path, mode):
    """The configuration server answers the GET (Waiting, with its proof); then
    another client's provisioning hands the port over to the app, whose own
    POST / answers 200. Either the connection of the GET is gone (a new one
    would reach the app: never opened, nothing sent), or the POST on it is
    answered by the app: a 200 without the configuration server's proof is
    'not provisioned'."""
    import threading
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env)
    tar, key = package(env, proj, tmp_path / "pkg")
    mse(env, "spawn", "ho", "--package", str(tar), "--output", str(tmp_path / "ev"))
    sf = Path(env["XDG_STATE_HOME"]) / "mse/ho/state.json"
    good = json.loads(sf.read_text())
    uuid = good["uuid"]
    cert, certkey = self_signed_ca(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(certkey))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    seen = {"gets": 0, "posts": 0, "conns": 0}
    stop = threading.Event()

    def read_request(t):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = t.recv(4096)
            if not chunk:
                return None
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
        n = int(hdrs.get("content-length", "0"))
        while len(rest) < n:
            rest += t.recv(4096)
        return lines[0].split(" ")[0], hdrs, rest

    def serve():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            seen["conns"] += 1
            try:
                c.settimeout(5)
                t = ctx.wrap_socket(c, server_side=True)
                while True:
                    req = read_request(t)
                    if req is None:
                        break
                    method, hdrs, body = req
                    if method == "GET":
                        seen["gets"] += 1
                        proof = provproof(uuid, "Waiting", hdrs.get("mse-nonce", ""))
                        last = mode == "closes-after-waiting"
                        t.sendall(b"HTTP/1.1 200 OK\r\nMse-Status: Waiting\r\nMse-Proof: " + proof.encode() +
                                  (b"\r\nConnection: close" if last else b"") + b"\r\nContent-Length: 0\r\n\r\n")
                        if last:
                            break
                    else:  # the app's own POST /: 200, no proof
                        seen["posts"] += 1
                        t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                t.close()
            except (OSError, ssl.SSLError):
                pass

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        sf.write_text(json.dumps(dict(good, port=srv.getsockname()[1])))
        r = mse(env, "run", "ho", "--ratls", str(cert), "--key", str(key),
                "--secrets", str(proj / "secrets.json"), check=False)
        assert r.returncode == 1, r.stdout + r.stderr
        assert seen["gets"] == 1                           # the Waiting check passed (proof ok)
        if mode == "closes-after-waiting":
            assert "nothing was sent" in r.stderr, r.stderr
            assert seen["conns"] == 1 and seen["posts"] == 0
        else:
            assert "not provisioned" in r.stderr and "proof" in r.stderr, r.stderr
            assert seen["conns"] == 1 and seen["posts"] == 1
    finally:
        stop.set()
        th.join(5)
        srv.close()
        sf.write_text(json.dumps(good))
        mse(env, "stop", "ho", "--remove", check=False)
