# SPDX-License-Identifier: Apache-2.0
"""Daily use (issue 14): --json on every command that reports a result or a
state, `mse verify NAME` after a restart, the app's working directory,
factories, requirements.txt encodings, localtest diagnostics and the access
log. Each JSON answer is parsed with Python's json and compared with what an
independent client sees: hashlib over the package's app.tar, `requests`
pinned to the certificate, the files on disk, the process's exit status."""
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import requests

MSE = os.environ.get("MSE_BIN", "build/mse")

APP_EXTRA = '''

import os as _os
from flask import jsonify as _jsonify, send_from_directory as _send


@app.get("/cwd")
def _cwd():
    return _jsonify(cwd=_os.getcwd(), module_path=_os.environ.get("MODULE_PATH"))


@app.post("/upload/<name>")
def _upload(name):
    _os.makedirs("Upload", exist_ok=True)
    with open(_os.path.join("Upload", name), "wb") as f:
        f.write(b"uploaded " + name.encode())
    return "stored", 201


@app.get("/upload/<name>")
def _download(name):
    return _send("Upload", name)
'''

FACTORY_APP = '''from flask import Flask


def create_app(greeting="hello", excited=False):
    app = Flask(__name__)

    @app.get("/health")
    def health():
        return "OK"

    @app.get("/")
    def index():
        return greeting + ("!" if excited else "")

    return app


def not_an_app():
    return None
'''


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
    e["NO_PROXY"] = e["no_proxy"] = "localhost,127.0.0.1"
    return e


def mse(env, *args, check=True, timeout=300, cwd=None):
    p = subprocess.run([MSE, *args], env=env, capture_output=True, text=True, timeout=timeout,
                       cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(f"mse {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def js(env, *args, rc=0, cwd=None):
    """Runs a --json command: stdout must be exactly one JSON object."""
    p = mse(env, *args, "--json", check=False, cwd=cwd)
    assert p.returncode == rc, (args, p.returncode, p.stdout, p.stderr)
    d = json.loads(p.stdout)
    assert isinstance(d, dict) and d["ok"] is (rc == 0), d
    if rc != 0:
        assert set(d["error"]) <= {"step", "file", "line", "column", "field", "expected",
                                   "actual", "message"}, d["error"]
        assert d["error"]["message"]
        assert all(v != "" for v in d["error"].values()), d["error"]
    return d


def scaffold(tmp, env, name):
    mse(env, "scaffold", name, cwd=tmp)
    return tmp / name


def get(url, ca, **kw):
    return requests.get(url, verify=str(ca), timeout=20, **kw)


# ---- --json: check and package -------------------------------------------------

def test_check_json_success_and_every_error(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env, "chk")
    d = js(env, "check", "--config", str(proj / "mse.toml"))
    assert d["name"] == "chk" and d["python_application"] == "app:app"
    assert d["module_file"] == str(proj / "mse_src/app.py")
    assert d["tests_requirements"] == ["pytest", "requests"]
    (proj / "mse.toml").write_text(
        'name = "x"\npython_application = "app"\nhealthcheck_endpoint = "health"\n'
        'tests_cmd = "pytest"\ntests_requirements = []\nnmae = 1\n')
    d = js(env, "check", "--config", str(proj / "mse.toml"), rc=1)
    assert len(d["errors"]) == 3 and d["error"] == d["errors"][0]
    e = d["errors"][0]
    assert (e["file"], e["line"], e["column"], e["field"]) == (str(proj / "mse.toml"), 2, 22,
                                                              "python_application")
    assert e["actual"] == '"app"' and "module:variable" in e["expected"]
    e = d["errors"][1]
    assert e["field"] == "healthcheck_endpoint" and e["line"] == 3
    assert e["actual"] == '"health"' and e["expected"] == 'a path starting with "/"'
    assert d["errors"][2]["field"] == "nmae" and "expected" not in d["errors"][2]
    # Text output unchanged in substance: the same errors, one per line.
    p = mse(env, "check", "--config", str(proj / "mse.toml"), check=False)
    assert p.returncode == 1 and p.stdout == ""
    assert 'python_application: expected "module:variable"' in p.stderr


def test_package_json_matches_the_archive(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env, "pkg")
    d = js(env, "package", "--project", str(proj), "--output", str(tmp_path / "out"))
    with tarfile.open(d["package"]) as t:
        app_tar = t.extractfile("app.tar").read()
        names = tarfile.open(fileobj=io.BytesIO(app_tar)).getnames()
    assert d["app_sha256"] == hashlib.sha256(app_tar).hexdigest()
    assert d["files"] == len(names) and d["encrypted"] == sum(n.endswith(".enc") for n in names)
    assert os.stat(d["key"]).st_mode & 0o777 == 0o600 and os.path.getsize(d["key"]) == 32
    assert Path(d["nonces"]).exists()
    d = js(env, "package", "--project", str(tmp_path / "nope"), "--output", str(tmp_path / "o2"),
           rc=1)
    assert "nope" in d["error"]["message"]


# ---- the whole flow by hand and with deploy ---------------------------------------

def test_operator_flow_json(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env, "flow")
    pk = js(env, "package", "--project", str(proj), "--output", str(tmp_path / "pkg"))
    sp = js(env, "spawn", "flow", "--package", pk["package"], "--output", str(tmp_path / "ev"))
    try:
        assert sp["mode"] == "simulation" and sp["simulation"] is True
        assert Path(sp["evidence"]).exists() and sp["port"] > 0
        ev = js(env, "evidence", "flow", "--output", str(tmp_path / "ev2"))
        assert json.loads(Path(ev["evidence"]).read_text())["input_args"]["app_id"] == sp["uuid"]
        v = js(env, "verify", "--package", pk["package"], "--evidence", ev["evidence"],
               "--allow-simulation", "--output", str(tmp_path / "verified"))
        assert v["simulation"] is True and v["tcb_status"] == "UpToDate"
        ratls = tmp_path / "verified/ratls.pem"
        st = js(env, "status", "flow")
        assert st["status"] == "waiting secret keys" and st["uuid"] == sp["uuid"]
        r = js(env, "run", "flow", "--ratls", str(ratls), "--key", pk["key"], "--secrets",
               str(proj / "secrets.json"))
        assert r["url"] == f"https://localhost:{sp['port']}"
        for _ in range(300):
            if js(env, "status", "flow", rc=None if False else 0)["status"] == "running":
                break
            time.sleep(0.1)
        assert get(f"{r['url']}/health", ratls).text == "OK"
        t = js(env, "test", "flow", "--ratls", str(ratls))
        assert t["exit_status"] == 0 and t["name"] == "flow"
        lst = js(env, "list")
        assert [i["name"] for i in lst["instances"]] == ["flow"]
        assert lst["instances"][0]["status"] == "running" and lst["instances"][0]["port"] == sp["port"]
        # A wrong package: refused with expected and actual MRENCLAVE as members.
        other = scaffold(tmp_path, env, "other")
        (other / "mse_src/app.py").write_text((other / "mse_src/app.py").read_text() + "\n# changed\n")
        pk2 = js(env, "package", "--project", str(other), "--output", str(tmp_path / "pkg2"))
        bad = js(env, "verify", "--package", pk2["package"], "--evidence", ev["evidence"],
                 "--allow-simulation", rc=1)
        e = bad["error"]
        assert e["field"] == "mrenclave" and e["step"] == "measurement"
        assert e["actual"] == bad["mrenclave"] == v["mrenclave"]
        assert len(e["expected"]) == 64 and e["expected"] != e["actual"]
        assert "text" not in e  # migrated: the whole text is "message"
    finally:
        mse(env, "stop", "flow", "--remove", check=False)
    st = js(env, "status", "flow", rc=1)
    assert "flow" in st["error"]["message"]


def test_deploy_json_restart_verify_cwd_and_access_log(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env, "daily")
    with open(proj / "mse_src/app.py", "a") as f:
        f.write(APP_EXTRA)
    d = js(env, "deploy", "--project", str(proj))
    assert d["name"] == "daily" and d["simulation"] is True
    kinds = [(e["step"], e["kind"]) for e in d["progress"]]
    assert [s for s, k in kinds if k == "step"] == ["check", "package", "spawn", "evidence",
                                                      "verify", "seal", "run", "test"]
    assert any("tests passed" in e["text"] for e in d["progress"])
    ratls = Path(d["certificate"])
    base = f"https://localhost:{d['port']}"
    assert d["url"] == base + "/health"
    # The app's working directory is its code directory, in the clear nowhere else.
    c = get(base + "/cwd", ratls).json()
    assert c["cwd"] == c["module_path"]
    assert requests.post(base + "/upload/a.txt", verify=str(ratls), timeout=20).status_code == 201
    assert get(base + "/upload/a.txt", ratls).text == "uploaded a.txt"
    assert Path(c["module_path"], "Upload/a.txt").exists()
    # One access line per request, with method, path, status, bytes and duration.
    logs = mse(env, "logs", "daily").stdout
    line = [x for x in logs.splitlines() if "access:" in x and "GET /upload/a.txt" in x][-1]
    assert " 200 14 B " in line and line.endswith(" ms")
    assert any("POST /upload/a.txt 201" in x for x in logs.splitlines())

    # Restart from another directory: a new certificate, the same working directory.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    p = mse(env, "restart", "daily", cwd=elsewhere)
    assert "mse verify daily" in p.stdout
    with pytest.raises(requests.exceptions.SSLError):
        get(base + "/health", ratls)
    v = js(env, "verify", "daily", cwd=proj)
    assert v["mrenclave"] == d["mrenclave"] and v["uuid"] == d["uuid"]
    assert v["certificate"] == str(ratls)
    assert get(base + "/health", ratls).text == "OK"
    c2 = get(base + "/cwd", ratls).json()
    assert c2 == c and not any(elsewhere.iterdir())
    # Not from the project directory: says where to run it.
    e = js(env, "verify", "daily", cwd=elsewhere, rc=1)["error"]
    assert e["step"] == "record" and "deployed from" in e["message"]
    mse(env, "stop", "daily", "--remove")


def test_deploy_json_failure_and_no_access_log(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env, "quiet")
    d = js(env, "deploy", "--project", str(proj), "--no-access-log", "--no-tests")
    base = f"https://localhost:{d['port']}"
    for _ in range(3):
        assert get(base + "/health", d["certificate"]).status_code == 200
    assert "access:" not in mse(env, "logs", "quiet").stdout
    mse(env, "stop", "quiet", "--remove")
    (proj / "mse.toml").write_text((proj / "mse.toml").read_text().replace(
        'healthcheck_endpoint = "/health"', 'healthcheck_endpoint = "health"'))
    d = js(env, "deploy", "--project", str(proj), rc=1)
    assert d["failed_step"] == "check" and d["error"]["field"] == "healthcheck_endpoint"
    assert d["error"]["actual"] == '"health"'
    assert d["progress"][-1]["kind"] == "failed"


# ---- factories, requirements, localtest ----------------------------------------

def test_factory_app_localtest_and_start_up_errors(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env, "fact")
    (proj / "mse_src/app.py").write_text(FACTORY_APP)
    (proj / "tests/test_app.py").write_text(
        "import os, requests\n\n"
        "def test_index():\n"
        "    r = requests.get(os.environ['TEST_REMOTE_URL'] + '/', timeout=10)\n"
        "    assert r.text == 'hi!'\n")
    toml = proj / "mse.toml"
    toml.write_text(toml.read_text().replace('"app:app"',
                                             "'''app:create_app(\"hi\", excited=True)'''"))
    assert js(env, "check", "--config", str(toml))["python_call"] == '("hi", excited=True)'
    p = mse(env, "localtest", "--project", str(proj), "--timeout", "30", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    # A factory named without (): said at start-up, with the fix.
    code = proj / "mse_src"
    p = subprocess.run([MSE, "serve", "app:create_app", "--code", str(code), "--no-tls",
                        "--port", "0"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "taking 2 arguments" not in p.stderr
    p = subprocess.run([MSE, "serve", "app:not_an_app", "--code", str(code), "--no-tls",
                        "--port", "0"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and 'call it: "app:not_an_app()"' in p.stderr, p.stderr
    p = subprocess.run([MSE, "serve", "app:not_an_app()", "--code", str(code), "--no-tls",
                        "--port", "0"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "returned a NoneType" in p.stderr, p.stderr
    p = subprocess.run([MSE, "serve", "app:create_app(open('x'))", "--code", str(code),
                        "--no-tls", "--port", "0"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 or p.returncode == 1
    assert "literals" in p.stderr


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le"])
def test_requirements_encodings(tmp_path, encoding):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env, "req")
    (proj / "mse_src/requirements.txt").write_bytes("flask\nrequests>=2\n".encode(encoding))
    p = mse(env, "localtest", "--project", str(proj), "--timeout", "30", check=False)
    if encoding == "utf-16-le":  # no byte-order mark: pip cannot read it either
        assert p.returncode == 1
        assert "looks like UTF-16LE without a byte-order mark" in p.stderr, p.stderr
    else:
        assert p.returncode == 0, p.stdout + p.stderr


def test_localtest_reports_exit_at_once_with_the_log_tail(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env, "crash")
    with open(proj / "mse_src/app.py", "a") as f:
        f.write("\nimport sys\nfor i in range(40000):\n    print('noise', i, file=sys.stderr)\n"
                "raise SystemExit('the app gave up')\n")
    t0 = time.monotonic()
    p = mse(env, "localtest", "--project", str(proj), check=False)
    took = time.monotonic() - t0
    assert p.returncode == 1
    assert took < 30, took  # not the 60 s health-check wait
    assert "the app server exited with status 1" in p.stderr
    # The log is far over 64 KiB: its end is shown, not nothing.
    assert "noise 39999" in p.stderr and "noise 100\n" not in p.stderr
    assert "the app gave up" in p.stderr


def test_localtest_reports_the_last_health_answer(tmp_path):
    env = env_for(tmp_path)
    proj = scaffold(tmp_path, env, "sick")
    app = proj / "mse_src/app.py"
    app.write_text(app.read_text().replace('return Response(response="OK", status=HTTPStatus.OK)',
                                           'return Response(response="starting", status=503)'))
    p = mse(env, "localtest", "--project", str(proj), "--timeout", "10", check=False)
    assert p.returncode == 1
    assert "/health did not answer 2xx within 10 s (last: HTTP 503)" in p.stderr, p.stderr
    assert "GET /health 503 8 B" in p.stderr  # the access log, in the tail shown
