# SPDX-License-Identifier: Apache-2.0
"""`mse scaffold NAME`: the project it writes, and that the project works.

Checked independently of mse-c's own code: the TOML with Python's tomllib,
the app with Flask's test client behind wsgiref.validate, the HMAC with
Python's hmac, the generated tests by running them with pytest against the
app served over HTTP and over HTTPS (a CA made here with
python3-cryptography), and the whole project with `mse check` and
`mse package`.
"""

import datetime
import hashlib
import hmac
import importlib.util
import ipaddress
import json
import os
import re
import resource
import signal
import ssl
import subprocess
import tarfile
import threading
import tomllib
from pathlib import Path
from wsgiref.validate import validator

import pytest

MSE = os.path.abspath(os.environ.get("MSE_BIN", "build/mse"))
VECTORS = Path(os.environ.get("MSE_VECTORS", "../shared/vectors"))
PY = os.environ.get("MSE_PYTHON", "/usr/bin/python3")

FILES = {
    "mse.toml": 0o644,
    "mse_src/app.py": 0o644,
    "mse_src/requirements.txt": 0o644,
    "mse_src/.mseignore": 0o644,
    "secrets.json": 0o600,
    "secrets_to_seal.json": 0o600,
    "tests/test_app.py": 0o644,
    "README.md": 0o644,
}


def mse(*args, cwd=None, **kw):
    return subprocess.run([MSE, *args], cwd=cwd, capture_output=True, text=True, **kw)


def scaffold(tmp_path, name="hello"):
    r = mse("scaffold", name, "--output", str(tmp_path))
    assert r.returncode == 0, r.stderr
    return tmp_path / name


def tree(d):
    return sorted(str(p.relative_to(d)) for p in Path(d).rglob("*"))


def test_writes_every_file_with_its_mode(tmp_path):
    proj = scaffold(tmp_path)
    assert tree(tmp_path) == sorted(["hello", "hello/mse_src", "hello/tests"] +
                                    [f"hello/{f}" for f in FILES])
    for rel, mode in FILES.items():
        assert (proj / rel).stat().st_mode & 0o777 == mode, rel
    conf = tomllib.loads((proj / "mse.toml").read_text())
    assert conf == {
        "name": "hello",
        "python_application": "app:app",
        "healthcheck_endpoint": "/health",
        "tests_cmd": "pytest",
        "tests_requirements": ["pytest", "requests"],
    }
    assert (proj / "mse_src/requirements.txt").read_text().split() == ["flask"]
    # MSE's default .mseignore, byte for byte (plus a final newline).
    want = (VECTORS / "mse-cli-config/.mseignore").read_bytes()
    assert (proj / "mse_src/.mseignore").read_bytes().rstrip(b"\n") == want.rstrip(b"\n")
    assert json.loads((proj / "secrets.json").read_text())["login"]
    key = json.loads((proj / "secrets_to_seal.json").read_text())["api_key"]
    assert len(bytes.fromhex(key)) == 32
    # A fresh key per project, never a shared default.
    other = scaffold(tmp_path, "other")
    assert json.loads((other / "secrets_to_seal.json").read_text())["api_key"] != key
    assert "# hello" in (proj / "README.md").read_text()
    # The generated tests never turn TLS verification off.
    assert "verify=False" not in (proj / "tests/test_app.py").read_text()


def load_app(proj):
    spec = importlib.util.spec_from_file_location(
        f"scaffold_app_{id(proj)}", proj / "mse_src" / "app.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.app


def test_app_endpoints_with_flask_test_client(tmp_path, monkeypatch):
    proj = scaffold(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SECRETS_PATH", raising=False)
    monkeypatch.delenv("SEALED_SECRETS_PATH", raising=False)
    app = load_app(proj)
    app.testing = True
    app.wsgi_app = validator(app.wsgi_app)  # PEP 3333 conformance of every call
    client = app.test_client()

    class c:  # buffered: the response iterator is closed, as validator requires
        get = staticmethod(lambda path, **kw: client.open(path, method="GET", buffered=True, **kw))
        post = staticmethod(lambda path, **kw: client.open(path, method="POST", buffered=True,
                                                           **kw))

    r = c.get("/health")
    assert (r.status_code, r.text) == (200, "OK")
    # Before the secrets are provisioned: a clear 404, not a crash.
    assert c.get("/whoami").status_code == 404
    assert c.get("/sign?message=x").status_code == 404

    monkeypatch.setenv("SECRETS_PATH", str(proj / "secrets.json"))
    monkeypatch.setenv("SEALED_SECRETS_PATH", str(proj / "secrets_to_seal.json"))
    login = json.loads((proj / "secrets.json").read_text())["login"]
    r = c.get("/whoami")
    assert (r.status_code, r.text) == (200, login)

    # POST / writes a date in $HOME, GET / reads and removes it.
    assert c.get("/").status_code == 404
    before = datetime.datetime.now()
    assert c.post("/").status_code == 200
    assert (home / "date.txt").exists()
    r = c.get("/")
    assert r.status_code == 200
    written = datetime.datetime.fromisoformat(r.text)
    assert before <= written <= datetime.datetime.now()
    assert not (home / "date.txt").exists()
    assert c.get("/").status_code == 404

    key = json.loads((proj / "secrets_to_seal.json").read_text())["api_key"].encode()
    for message in ["hello", "", "ünïcode & spaces"]:
        r = c.get("/sign", query_string={"message": message})
        assert r.status_code == 200
        want = hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
        assert r.get_json() == {"hmac_sha256": want}
    assert c.get("/nope").status_code == 404


def make_ca_and_cert(d):
    """A CA and a server certificate for 127.0.0.1 (python3-cryptography)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scaffold test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return d / "ca.pem"


class Server:
    """The generated app, served by werkzeug on 127.0.0.1, port 0."""

    def __init__(self, proj, home, tls_dir=None):
        from werkzeug.serving import make_server

        os.environ["HOME"] = str(home)
        os.environ["SECRETS_PATH"] = str(proj / "secrets.json")
        os.environ["SEALED_SECRETS_PATH"] = str(proj / "secrets_to_seal.json")
        ctx = None
        if tls_dir:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_dir / "cert.pem", tls_dir / "key.pem")
        self.srv = make_server("127.0.0.1", 0, load_app(proj), threaded=True, ssl_context=ctx)
        scheme = "https" if tls_dir else "http"
        self.url = f"{scheme}://127.0.0.1:{self.srv.server_port}"
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.srv.shutdown()
        self.thread.join()


def run_generated_tests(proj, env_extra, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TEST_", "REQUESTS_CA", "SSL_CERT", "CURL_CA"))}
    env.update(env_extra)
    return subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
                          cwd=proj / "tests", env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def clean_env():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_generated_tests_pass_against_the_running_app(tmp_path, clean_env):
    proj = scaffold(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    secrets = {"TEST_SECRET_JSON": str(proj / "secrets.json"),
               "TEST_SEALED_SECRET_JSON": str(proj / "secrets_to_seal.json")}
    with Server(proj, home) as s:
        r = run_generated_tests(proj, {"TEST_REMOTE_URL": s.url, **secrets}, tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "4 passed" in r.stdout
        # Without the secret files the secret checks skip, the rest pass.
        r = run_generated_tests(proj, {"TEST_REMOTE_URL": s.url}, tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "2 passed, 2 skipped" in r.stdout
        # A wrong sealed key: the HMAC check catches it.
        bad = tmp_path / "bad_seal.json"
        bad.write_text(json.dumps({"api_key": "not the key"}))
        r = run_generated_tests(proj, {"TEST_REMOTE_URL": s.url, **secrets,
                                       "TEST_SEALED_SECRET_JSON": str(bad)}, tmp_path)
        assert r.returncode != 0
        assert "1 failed, 3 passed" in r.stdout


def test_generated_tests_verify_tls(tmp_path, clean_env):
    proj = scaffold(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    tls = tmp_path / "tls"
    tls.mkdir()
    ca = make_ca_and_cert(tls)
    with Server(proj, home, tls) as s:
        assert s.url.startswith("https://")
        r = run_generated_tests(proj, {"TEST_REMOTE_URL": s.url, "TEST_CA_BUNDLE": str(ca)},
                                tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "2 passed, 2 skipped" in r.stdout
        # REQUESTS_CA_BUNDLE is the fallback.
        r = run_generated_tests(proj, {"TEST_REMOTE_URL": s.url,
                                       "REQUESTS_CA_BUNDLE": str(ca)}, tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        # No bundle: the system CAs do not know this CA, so the tests must fail.
        r = run_generated_tests(proj, {"TEST_REMOTE_URL": s.url}, tmp_path)
        assert r.returncode != 0
        assert "CERTIFICATE_VERIFY_FAILED" in r.stdout + r.stderr


def test_result_loads_with_mse_check_and_packages(tmp_path):
    proj = scaffold(tmp_path)
    r = mse("check", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert 'name = "hello"' in r.stdout
    assert f'module_file = "{proj}/mse_src/app.py"' in r.stdout
    out = tmp_path / "out"
    r = mse("package", "--project", str(proj), "--output", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    [pkg] = out.glob("package_hello_*.tar")
    with tarfile.open(pkg) as t:
        app = tarfile.open(fileobj=t.extractfile("app.tar"))
        # .mseignore keeps app.py and requirements.txt, and drops itself.
        assert sorted(app.getnames()) == ["app.py.enc", "requirements.txt"]


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../x", "a b", "x" * 129, "\u00e9",
                                  "semi;colon", "q\"uote", "..", "."])
def test_bad_names_create_nothing(tmp_path, name):
    r = mse("scaffold", "--output", str(tmp_path), "--", name)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "name" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_refuses_an_existing_directory_or_file(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    r = mse("scaffold", "taken", "--output", str(tmp_path))
    assert r.returncode == 1
    assert "already exists" in r.stderr
    assert tree(tmp_path) == ["taken", "taken/mine.txt"]
    (tmp_path / "empty").mkdir()
    assert mse("scaffold", "empty", "-o", str(tmp_path)).returncode == 1
    assert tree(tmp_path / "empty") == []
    (tmp_path / "file").write_text("x")
    assert mse("scaffold", "file", "-o", str(tmp_path)).returncode == 1
    (tmp_path / "link").symlink_to("nowhere")
    assert mse("scaffold", "link", "-o", str(tmp_path)).returncode == 1
    assert tree(tmp_path) == ["empty", "file", "link", "taken", "taken/mine.txt"]


def test_failure_half_way_leaves_nothing(tmp_path):
    """Writes fail after the first files (file size limit): no NAME/, no temp dir."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

    r = subprocess.run([MSE, "scaffold", "big", "-o", str(tmp_path)], capture_output=True,
                       text=True, preexec_fn=limit)
    assert r.returncode == 1, r.stderr
    assert "app.py" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_usage_and_output_errors(tmp_path):
    r = mse("scaffold", "--help")
    assert r.returncode == 0 and r.stdout.startswith("Usage: mse scaffold NAME")
    r = mse("help", "scaffold")
    assert r.returncode == 0 and "--output" in r.stdout
    assert mse("scaffold").returncode == 2
    assert mse("scaffold", "a", "b", "-o", str(tmp_path)).returncode == 2
    assert mse("scaffold", "--bogus", "a").returncode == 2
    assert mse("scaffold", "a", "--output").returncode == 2
    r = mse("scaffold", "a", "--output", str(tmp_path / "missing"))
    assert r.returncode == 1 and "missing" in r.stderr
    (tmp_path / "f").write_text("")
    r = mse("scaffold", "a", "--output", str(tmp_path / "f"))
    assert r.returncode == 1 and "not a directory" in r.stderr
    assert tree(tmp_path) == ["f"]
    # Options may follow the name; the default output is the current directory.
    r = mse("scaffold", "here", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "here" / "mse.toml").is_file()


def test_scaffold_then_deploy_end_to_end(tmp_path):
    """The project as generated deploys (simulation) and answers as documented."""
    import urllib.request

    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), XDG_STATE_HOME=str(home / ".local/state"),
               XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
    proj = scaffold(tmp_path, "e2e-app")
    try:
        r = subprocess.run([MSE, "deploy", "--project", str(proj), "--san", "localhost"],
                           capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        # The generated tests ran with the pinned certificate and the secrets, and passed.
        assert "4 passed" in r.stdout, r.stdout
        url = re.search(r"URL\s+(https://\S+)/health", r.stdout).group(1)
        ca = proj / ".mse" / "verified" / "ratls.pem"
        ctx = ssl.create_default_context(cafile=str(ca))

        def get(path, method="GET"):
            req = urllib.request.Request(url + path, method=method)
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
                return resp.status, resp.read().decode()

        login = json.loads((proj / "secrets.json").read_text())["login"]
        assert get("/whoami") == (200, login)
        key = json.loads((proj / "secrets_to_seal.json").read_text())["api_key"].encode()
        st, body = get("/sign?message=hi")
        assert st == 200
        assert json.loads(body)["hmac_sha256"] == hmac.new(key, b"hi", hashlib.sha256).hexdigest()
        assert get("/", "POST")[0] == 200
        st, body = get("/")
        assert st == 200 and datetime.datetime.fromisoformat(body)
        # The generated tests with the secret files: all four pass.
        r = subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                           cwd=proj / "tests", capture_output=True, text=True, timeout=120,
                           env=dict(env, TEST_REMOTE_URL=url, TEST_CA_BUNDLE=str(ca),
                                    TEST_SECRET_JSON=str(proj / "secrets.json"),
                                    TEST_SEALED_SECRET_JSON=str(proj / "secrets_to_seal.json")))
        assert r.returncode == 0 and "4 passed" in r.stdout, r.stdout + r.stderr
    finally:
        subprocess.run([MSE, "stop", "e2e-app", "--remove"], capture_output=True, env=env,
                       timeout=120)
