# SPDX-License-Identifier: Apache-2.0
"""ASGI apps through the whole flow: `mse localtest` and `mse deploy` (simulation)
of a FastAPI and a Quart port of the scaffolded app, checked by the scaffold's
own tests (requests, TLS pinned to the verified certificate) and by us."""
import json
import re
import time

from test_deploy import env_for, get, mse, scaffold, spawn_verified, state

FASTAPI_APP = '''
import hashlib, hmac, json, os
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Response

app = FastAPI()
STARTED = []


@app.on_event("startup")
async def startup():
    STARTED.append(datetime.now())


def read_json(env_var):
    path = os.getenv(env_var)
    if not path or not Path(path).is_file():
        return None
    return json.loads(Path(path).read_text())


def workfile():
    return Path(os.environ["HOME"]) / "date.txt"


@app.get("/health")
async def health():
    return Response("OK" if STARTED else "lifespan did not run", status_code=200 if STARTED else 503)


@app.get("/whoami")
async def whoami():
    secrets = read_json("SECRETS_PATH")
    if secrets is None:
        return Response("No secrets were provided", status_code=404)
    return Response(secrets["login"])


@app.post("/")
async def write_date():
    workfile().write_text(str(datetime.now()))
    return Response(status_code=200)


@app.get("/")
async def read_date():
    path = workfile()
    if not path.exists():
        return Response("You should write before read", status_code=404)
    txt = path.read_text()
    path.unlink()
    return Response(txt)


@app.get("/sign")
async def sign(message: str = ""):
    sealed = read_json("SEALED_SECRETS_PATH")
    if sealed is None:
        return Response("No sealed secrets were provided", status_code=404)
    return {"hmac_sha256": hmac.new(sealed["api_key"].encode(), message.encode(), hashlib.sha256).hexdigest()}


@app.get("/spawn")
async def spawn():
    import subprocess
    try:
        subprocess.run(["true"])
    except Exception as e:
        return {"refused": type(e).__name__}
    return {"refused": None}
'''

QUART_APP = '''
import hashlib, hmac, json, os
from datetime import datetime
from pathlib import Path

from quart import Quart, request

app = Quart(__name__)


def read_json(env_var):
    path = os.getenv(env_var)
    if not path or not Path(path).is_file():
        return None
    return json.loads(Path(path).read_text())


def workfile():
    return Path(os.environ["HOME"]) / "date.txt"


@app.get("/health")
async def health():
    return "OK"


@app.get("/whoami")
async def whoami():
    secrets = read_json("SECRETS_PATH")
    if secrets is None:
        return "No secrets were provided", 404
    return secrets["login"]


@app.post("/")
async def write_date():
    workfile().write_text(str(datetime.now()))
    return ""


@app.get("/")
async def read_date():
    path = workfile()
    if not path.exists():
        return "You should write before read", 404
    txt = path.read_text()
    path.unlink()
    return txt


@app.get("/sign")
async def sign():
    sealed = read_json("SEALED_SECRETS_PATH")
    if sealed is None:
        return "No sealed secrets were provided", 404
    key = sealed["api_key"].encode()
    return {"hmac_sha256": hmac.new(key, request.args.get("message", "").encode(), hashlib.sha256).hexdigest()}
'''

FAILING_APP = '''
from fastapi import FastAPI

app = FastAPI()


@app.on_event("startup")
async def startup():
    raise RuntimeError("cannot reach the database at db:5432")
'''


def asgi_project(tmp, env, name, source, interface=None):
    proj = scaffold(tmp, env, name)
    (proj / "mse_src/app.py").write_text(source)
    if interface:
        toml = proj / "mse.toml"
        toml.write_text(toml.read_text().replace('python_application = "app:app"\n',
                                                 'python_application = "app:app"\napp_interface = "%s"\n' % interface))
    return proj


def test_localtest_fastapi_and_quart(tmp_path):
    env = env_for(tmp_path)
    for name, src in (("fa", FASTAPI_APP), ("qa", QUART_APP)):
        proj = asgi_project(tmp_path, env, name, src)
        r = mse(env, "localtest", "--project", str(proj))
        assert "tests passed" in r.stdout, r.stdout + r.stderr


def test_deploy_fastapi_with_explicit_interface(tmp_path):
    env = env_for(tmp_path)
    proj = asgi_project(tmp_path, env, "fdemo", FASTAPI_APP, interface="asgi")
    assert "app_interface = \"asgi\"" in mse(env, "check", "--config", str(proj / "mse.toml")).stdout
    p = mse(env, "deploy", "--project", str(proj))
    assert "tests passed" in p.stdout, p.stdout + p.stderr
    port = state(env, "fdemo")["port"]
    ratls = proj / ".mse/verified/ratls.pem"
    base = f"https://localhost:{port}"
    assert get(base + "/health", ratls).text == "OK"
    assert get(base + "/whoami", ratls).text == json.loads((proj / "secrets.json").read_text())["login"]
    # The enclave's rules hold for ASGI apps too.
    assert get(base + "/spawn", ratls).json()["refused"] is not None
    # The interface is part of what was measured: the package says so.
    pkg = next((proj / ".mse").glob("package.*/package_*.tar"))
    import tarfile
    with tarfile.open(pkg) as t:
        info = json.load(t.extractfile("package.json"))
    assert info["python_application"] == "app:app@asgi"
    log = mse(env, "logs", "fdemo").stdout
    assert "app interface: asgi3" in log
    mse(env, "stop", "fdemo", "--remove")


def test_deploy_quart(tmp_path):
    env = env_for(tmp_path)
    proj = asgi_project(tmp_path, env, "qdemo", QUART_APP)
    p = mse(env, "deploy", "--project", str(proj))
    assert "tests passed" in p.stdout, p.stdout + p.stderr
    port = state(env, "qdemo")["port"]
    ratls = proj / ".mse/verified/ratls.pem"
    assert get(f"https://localhost:{port}/whoami", ratls).text == \
        json.loads((proj / "secrets.json").read_text())["login"]
    assert "app interface: asgi3" in mse(env, "logs", "qdemo").stdout
    mse(env, "stop", "qdemo", "--remove")


def test_deploy_lifespan_failure_stops_the_enclave(tmp_path):
    env = env_for(tmp_path)
    proj = asgi_project(tmp_path, env, "bad", FAILING_APP)
    t0 = time.time()
    p = mse(env, "deploy", "--project", str(proj), "--no-tests", check=False)
    assert p.returncode != 0
    assert time.time() - t0 < 120
    out = p.stdout + p.stderr
    log = (proj / ".mse/bad-bootstrap.log").read_text()
    assert "cannot reach the database at db:5432" in log, log
    assert "cannot reach the database at db:5432" in out, out  # the cause on the console
    assert "lifespan" in log


def test_lifespan_failure_status_on_error(tmp_path):
    """Provisioned, then the app's lifespan startup fails: the enclave stops
    with the app's message in its log, and `mse status` says so."""
    env = env_for(tmp_path)
    proj = asgi_project(tmp_path, env, "bad2", FAILING_APP)
    tar, key, ratls = spawn_verified(env, tmp_path, proj, "bad2")
    try:
        mse(env, "run", "bad2", "--ratls", str(ratls), "--key", str(key), "--secrets", str(proj / "secrets.json"))
        deadline = time.time() + 60
        while state(env, "bad2")["status"] != "on error" and time.time() < deadline:
            time.sleep(0.2)
        assert state(env, "bad2")["status"] == "on error"
        log = mse(env, "logs", "bad2").stdout
        assert "cannot reach the database at db:5432" in log, log
        r = mse(env, "localtest", "--project", str(proj), check=False)
        assert r.returncode != 0
    finally:
        mse(env, "stop", "bad2", "--remove", check=False)


def test_bad_app_interface_is_a_positioned_error(tmp_path):
    env = env_for(tmp_path)
    proj = asgi_project(tmp_path, env, "bi", FASTAPI_APP, interface="cgi")
    r = mse(env, "check", "--config", str(proj / "mse.toml"), check=False)
    assert r.returncode != 0
    assert re.search(r'mse\.toml:5:\d+: app_interface: expected one of "auto", "wsgi", "asgi", "asgi3", '
                     r'"asgi2", got "cgi"', r.stderr), r.stderr
