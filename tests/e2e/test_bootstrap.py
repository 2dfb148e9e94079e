# SPDX-License-Identifier: Apache-2.0
"""mse-bootstrap end to end, driven by an independent client written the way
MSE's CLI works (stdlib ssl/http.client, python3-nacl, python3-cryptography):
fetch the RA-TLS certificate without trust, check the quote (signatures,
chain to the simulation root), the key binding and the MRENCLAVE recomputed
from the documented encoding, seal secrets to report_data[32:64], POST the
configuration through the pinned certificate, then call the app."""
import base64
import hashlib
import http.client
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import time

import nacl.public
import nacl.secret
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import hostile

import sgxcheck

BOOT = os.environ.get("MSE_BOOTSTRAP", "build/mse-bootstrap")
MSE = os.environ.get("MSE_BIN", "build/mse")
ROOT = os.environ.get("MSE_ROOT", ".")
VECTORS = os.environ.get("MSE_VECTORS", "../shared/vectors")
HAVE_APPSERVER = os.path.exists(os.path.join(ROOT, "src/enclave/appserver.h"))
UUID = "63322f85-1ff8-4483-91ae-f18d7398d157"

APP = b'''
import json, os
from flask import Flask
app = Flask(__name__)

@app.route("/")
def hello():
    return "hello from the enclave"

@app.route("/secrets")
def secrets():
    out = {}
    for var in ("SECRETS_PATH", "SEALED_SECRETS_PATH"):
        try:
            with open(os.environ[var]) as f:
                out[var] = json.load(f)
        except FileNotFoundError:
            out[var] = None
    return out
'''


# ---------------------------------------------------------------- helpers
def u32(n):
    return struct.pack("<I", n)


def tree_hash(d):
    files = []
    for base, _, names in os.walk(d):
        for n in names:
            p = os.path.join(base, n)
            files.append((os.path.relpath(p, d).encode(), hashlib.sha256(open(p, "rb").read()).digest()))
    h = hashlib.sha256(u32(len(files)))
    for path, dg in sorted(files):
        h.update(u32(len(path)) + path + dg)
    return h.digest()


def expected_mrenclave(app_dir, args):
    """docs/simulation.md, written again here."""
    boot = hashlib.sha256(open(BOOT, "rb").read()).digest()
    h = hashlib.sha256(b"mse-c/sim-mrenclave/v1" + boot)
    for a in args:
        a = a.encode()
        h.update(u32(len(a)) + a)
    h.update(tree_hash(app_dir))
    return h.digest()


class Enclave:
    def __init__(self, tmp, simdir, app_dir, mode=("--ratls",), extra=(), env=None, ws=None,
                 exp=None, leaks=True, binary=None):
        self.ws = ws or tmp / "ws"
        self.log = open(tmp / f"boot-{time.monotonic_ns()}.log", "w+")
        self.exp = exp or int(time.time()) + 3600
        self.app_dir = app_dir
        m = list(mode)
        if m == ["--ratls"]:
            m.append(str(self.exp))
        info = self.ws / "bootstrap.json"
        if info.exists():
            info.unlink()
        e = dict(os.environ, MSE_SIM_DIR=str(simdir), **(env or {}))
        if not leaks:
            # LeakSanitizer cannot stop the world under the app server's seccomp filter.
            e["ASAN_OPTIONS"] = e.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
        self.proc = subprocess.Popen(
            [binary or BOOT, "app:app", "--app-dir", str(app_dir), "--id", UUID, "--host", "127.0.0.1",
             "--port", "0", "--workspace", str(self.ws), "--size", "1024", *m, *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env=e)
        deadline = time.time() + 60
        while not info.exists():
            if self.proc.poll() is not None or time.time() > deadline:
                raise AssertionError("bootstrap did not start:\n" + self.output())
            time.sleep(0.05)
        self.info = json.loads(info.read_text())
        self.port = self.info["port"]

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def fetch_cert(self):
        """No trust at all: the quote decides (as MSE's CLI does)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            with ctx.wrap_socket(s) as t:
                der = t.getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der)

    def alpn(self, offer):
        """The protocol TLS ALPN chooses when the client offers `offer`."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(offer)
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            with ctx.wrap_socket(s) as t:
                return t.selected_alpn_protocol()

    def conn(self, cert):
        """A connection that trusts exactly this certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(cadata=cert.public_bytes(serialization.Encoding.PEM).decode())
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=30)

    def request(self, cert, method, path, body=None):
        c = self.conn(cert)
        try:
            c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def post(self, cert, obj):
        return self.request(cert, "POST", "/", json.dumps(obj).encode())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.final_output = self.output()
            self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def simdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "sim"
    subprocess.run([MSE, "sim", "init", "--dir", str(d)], check=True, capture_output=True)
    return d


@pytest.fixture
def app(tmp_path):
    """The package's app: app.py encrypted with a fresh code key (PyNaCl), requirements clear."""
    key = nacl.utils_random = os.urandom(32)
    d = tmp_path / "app"
    d.mkdir()
    (d / "app.py.enc").write_bytes(bytes(nacl.secret.SecretBox(key).encrypt(APP)))
    (d / "requirements.txt").write_text("flask\n")
    return d, key


@pytest.fixture
def enclaves():
    started = []
    yield started
    for e in started:
        e.stop()


def check_ratls(enc, simdir, cert):
    ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(sgxcheck.RATLS_EXT))
    qd = sgxcheck.parse_quote(ext.value.value)
    chain = sgxcheck.verify_quote_signatures(qd)
    root = x509.load_der_x509_certificate((simdir / "root_ca.der").read_bytes())
    sgxcheck.verify_chain(chain[:-1], root)
    rd = qd["body"]["report_data"]
    assert rd[:32] == sgxcheck.ratls_binding(cert)
    return qd, rd[32:]


def wait_for_app(enc, cert):
    """Polls until the app (not the configuration server) answers on the same port."""
    deadline = time.time() + 90
    while True:
        try:
            st, h, body = enc.request(cert, "GET", "/")
            if "Mse-Status" not in h:
                return st, h, body
        except (ConnectionError, OSError, ssl.SSLError):
            pass
        assert time.time() < deadline, enc.output()
        time.sleep(0.2)


def nothing_written(ws):
    assert not (ws / "mse-app").exists()
    assert not (ws / "root/.cache/mse/secrets.json").exists()
    assert not (ws / "root/.cache/mse/sealed_secrets.json").exists()
    assert not [p for p in ws.iterdir() if p.name.startswith("mse-app.tmp")]


def seal(pk, obj):
    box = nacl.public.SealedBox(nacl.public.PublicKey(pk)).encrypt(json.dumps(obj).encode())
    return base64.urlsafe_b64encode(box).rstrip(b"=").decode()


# ---------------------------------------------------------------- tests
def test_help_and_usage():
    p = subprocess.run([BOOT, "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "--ratls EXPIRATION" in p.stdout
    for args in ([], ["app:app"], ["app:app", "--app-dir", "x", "--id", "u"],
                 ["app:app", "--app-dir", "x", "--id", "u", "--no-ssl", "--ratls", "5"],
                 ["noColon", "--app-dir", "x", "--id", "u", "--no-ssl"],
                 ["app:app", "--app-dir", "x", "--id", "u", "--no-ssl", "--port", "70000"]):
        assert subprocess.run([BOOT, *args], capture_output=True).returncode == 2, args


def test_full_protocol_and_failures(tmp_path, simdir, app, enclaves):
    app_dir, key = app
    enc = Enclave(tmp_path, simdir, app_dir, leaks=False)
    enclaves.append(enc)
    cert = enc.fetch_cert()
    qd, enclave_pk = check_ratls(enc, simdir, cert)
    # The measurement is the documented one, over this bootstrap, args and app.
    args = ["CN=localhost", "localhost", str(enc.exp), "1024", UUID, "app:app"]
    assert qd["body"]["mrenclave"] == expected_mrenclave(app_dir, args)
    assert qd["body"]["mrsigner"] == sgxcheck.mrsigner_of((simdir / "signer.pem").read_bytes())
    assert enc.info["mrenclave"] == qd["body"]["mrenclave"].hex()
    assert enc.info["input_args"]["expiration_date"] == enc.exp
    # The operator's probe.
    st, h, body = enc.request(cert, "GET", "/health")
    assert st == 200 and h["Mse-Status"] == "Waiting"
    # The configuration server speaks HTTP/1.1 only (it receives the secrets).
    assert enc.alpn(["h2", "http/1.1"]) == "http/1.1"
    assert enc.alpn(["h2"]) is None

    good_sealed = seal(enclave_pk, {"db": "s3cr3t"})
    # Each failure is answered and leaves nothing behind.
    cases = [
        ({"uuid": "wrong", "code_secret_key": key.hex()}, 401),
        ({"code_secret_key": key.hex(), "app_secrets": {"a": 1}}, 401),
        ({"uuid": UUID, "code_secret_key": os.urandom(32).hex()}, 400),
        ({"uuid": UUID, "code_secret_key": key.hex()[:-2]}, 400),
        ({"uuid": UUID, "code_secret_key": key.hex(), "app_sealed_secrets": good_sealed + "="}, 400),
        ({"uuid": UUID, "code_secret_key": key.hex(), "app_sealed_secrets": "!!!"}, 400),
        ({"uuid": UUID, "code_secret_key": key.hex(),
          "app_sealed_secrets": seal(enclave_pk, [1, 2])}, 400),
        ({"uuid": UUID, "code_secret_key": key.hex(),
          "app_sealed_secrets": seal(bytes(nacl.public.PrivateKey.generate().public_key), {"a": 1})}, 400),
    ]
    for obj, want in cases:
        st, h, body = enc.post(cert, obj)
        assert st == want, (obj, st, body)
        nothing_written(enc.ws)
    st, _, body = enc.request(cert, "POST", "/", b"{not json")
    assert st == 400
    st, _, _ = enc.request(cert, "POST", "/", b"{" + b" " * (9 << 20) + b"}")
    assert st == 413
    nothing_written(enc.ws)

    # The real thing: the code key travels inside the sealed secrets.
    sealed = seal(enclave_pk, {"code_secret_key": key.hex(), "db": "s3cr3t"})
    st, h, body = enc.post(cert, {"uuid": UUID, "app_secrets": {"api": "k"}, "app_sealed_secrets": sealed})
    assert st == 200, body
    mod = enc.ws / "mse-app"
    assert (mod / "app.py").read_bytes() == APP
    assert (mod / "requirements.txt").read_text() == "flask\n"
    assert os.stat(mod / "app.py").st_mode & 0o777 == 0o600
    sec = enc.ws / "root/.cache/mse/secrets.json"
    assert json.loads(sec.read_text()) == {"api": "k"}
    assert os.stat(sec).st_mode & 0o777 == 0o600
    sealed_file = enc.ws / "root/.cache/mse/sealed_secrets.json"
    assert json.loads(sealed_file.read_text())["db"] == "s3cr3t"

    if HAVE_APPSERVER:
        # Same port, same certificate, now the app.
        st, h, body = wait_for_app(enc, cert)
        assert st == 200 and body == b"hello from the enclave"
        assert enc.fetch_cert() == cert
        st, _, body = enc.request(cert, "GET", "/secrets")
        got = json.loads(body)
        assert got["SECRETS_PATH"] == {"api": "k"} and got["SEALED_SECRETS_PATH"]["db"] == "s3cr3t"
        # The app server on the same port offers HTTP/2 first.
        assert enc.alpn(["http/1.1", "h2"]) == "h2"
        # A replayed configuration reaches the app, not the configuration server.
        st, h, _ = enc.post(cert, {"uuid": UUID, "code_secret_key": key.hex()})
        assert "Mse-Status" not in h
        assert enc.stop() == 0, enc.final_output
    else:
        assert enc.proc.wait(timeout=30) == 1
        assert "no app server" in enc.output()


def test_restart_skips_provisioning(tmp_path, simdir, app, enclaves):
    # LeakSanitizer stays off once Python runs: CPython's _hashlib keeps references to the
    # EVP_MDs that our own first SHA-256 created (leaks attributed to us, not CPython).
    # Every path before the app is leak-checked by the tests that stop before provisioning
    # and by test_confserver.
    app_dir, key = app
    enc = Enclave(tmp_path, simdir, app_dir, leaks=False)
    enclaves.append(enc)
    cert = enc.fetch_cert()
    _, pk = check_ratls(enc, simdir, cert)
    st, _, body = enc.post(cert, {"uuid": UUID, "code_secret_key": key.hex()})
    assert st == 200, body
    if HAVE_APPSERVER:
        wait_for_app(enc, cert)
    assert enc.stop() == 0, enc.final_output
    # The expiration is an input of the measurement: a restart passes the same one.
    again = Enclave(tmp_path, simdir, app_dir, ws=enc.ws, exp=enc.exp, leaks=False)
    enclaves.append(again)
    # Same enclave on the same machine: the same X25519 key, without storing it.
    assert again.info["enclave_public_key"] == pk.hex()
    deadline = time.time() + 30
    while "already provisioned" not in again.output():
        assert time.time() < deadline, again.output()
        time.sleep(0.1)
    # A new RA-TLS certificate (fresh TLS key), bound to the same enclave key.
    cert2 = again.fetch_cert()
    assert cert2 != cert
    _, pk2 = check_ratls(again, simdir, cert2)
    assert pk2 == pk
    if HAVE_APPSERVER:
        wait_for_app(again, cert2)
        assert again.stop() == 0, again.final_output


def test_timeout(tmp_path, simdir, app):
    app_dir, _ = app
    enc = Enclave(tmp_path, simdir, app_dir, extra=("--timeout", "1"))
    assert enc.proc.wait(timeout=30) == 1
    out = enc.output()
    enc.stop()
    assert "no configuration received within 1 seconds" in out
    nothing_written(enc.ws)


def test_default_sim_dir_is_the_operators(tmp_path, app):
    """Without $MSE_SIM_DIR the simulation is ~/.config/mse/sim of the caller's HOME (the
    one `mse verify --allow-simulation` trusts), not one inside the enclave's HOME."""
    app_dir, _ = app
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MSE_SIM_DIR"}
    env["HOME"] = str(home)
    ws = tmp_path / "ws"
    p = subprocess.Popen([BOOT, "app:app", "--app-dir", str(app_dir), "--id", UUID, "--host",
                          "127.0.0.1", "--port", "0", "--workspace", str(ws), "--no-ssl",
                          "--timeout", "1"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 1, out
    assert (home / ".config/mse/sim/root_ca.der").exists(), out
    assert not (ws / "root/.config").exists()


def test_sigterm_before_provisioning(tmp_path, simdir, app):
    app_dir, _ = app
    enc = Enclave(tmp_path, simdir, app_dir)
    enc.fetch_cert()
    assert enc.stop() == 0, enc.final_output
    nothing_written(enc.ws)


def test_simulation_quote_needs_allow_simulation(tmp_path, simdir, app, enclaves):
    app_dir, _ = app
    enc = Enclave(tmp_path, simdir, app_dir)
    enclaves.append(enc)
    pem = enc.ws / "ratls.pem"
    env = dict(os.environ, MSE_SIM_DIR=str(simdir))
    ok = subprocess.run([MSE, "verify", "--cert", str(pem), "--allow-simulation",
                         "--mrenclave", enc.info["mrenclave"], "--signer-key",
                         str(simdir / "signer.pem")], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "SIMULATION" in ok.stdout + ok.stderr
    no = subprocess.run([MSE, "verify", "--cert", str(pem), "--collateral",
                         str(simdir / "collateral")], capture_output=True, text=True, env=env)
    assert no.returncode == 1, no.stdout + no.stderr
    wrong = subprocess.run([MSE, "verify", "--cert", str(pem), "--allow-simulation",
                            "--mrenclave", "00" * 32], capture_output=True, text=True, env=env)
    assert wrong.returncode == 1


def make_custom_cert(tmp_path):
    k = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app.example")])
    now = __import__("datetime").datetime.utcnow()
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now)
         .not_valid_after(now + __import__("datetime").timedelta(days=1))
         .sign(k, hashes.SHA256()))
    (tmp_path / "chain.pem").write_bytes(c.public_bytes(serialization.Encoding.PEM))
    return c, k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()


def test_custom_certificate_mode(tmp_path, simdir, app, enclaves):
    app_dir, key = app
    custom, custom_key = make_custom_cert(tmp_path)
    enc = Enclave(tmp_path, simdir, app_dir, mode=("--certificate", str(tmp_path / "chain.pem")),
                  leaks=False)
    enclaves.append(enc)
    cert = enc.fetch_cert()
    # The configuration server is on a 10-hour RA-TLS certificate.
    check_ratls(enc, simdir, cert)
    life = cert.not_valid_after - cert.not_valid_before
    assert 9.9 * 3600 < life.total_seconds() < 10.1 * 3600
    assert enc.info["input_args"]["expiration_date"] is None
    st, _, body = enc.post(cert, {"uuid": UUID, "code_secret_key": key.hex()})
    assert st == 400 and b"ssl_private_key" in body
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    st, _, body = enc.post(cert, {"uuid": UUID, "code_secret_key": key.hex(), "ssl_private_key": other})
    assert st == 400 and b"does not match" in body
    nothing_written(enc.ws)
    st, _, body = enc.post(cert, {"uuid": UUID, "code_secret_key": key.hex(), "ssl_private_key": custom_key})
    assert st == 200, body
    kept = enc.ws / "key/ssl_private_key.pem"
    assert kept.read_text() == custom_key and os.stat(kept).st_mode & 0o777 == 0o600
    if HAVE_APPSERVER:
        deadline = time.time() + 60
        while True:
            try:
                if enc.fetch_cert() == custom:
                    break
            except OSError:
                pass
            assert time.time() < deadline, enc.output()
            time.sleep(0.2)
        st, _, body = enc.request(custom, "GET", "/")
        assert body == b"hello from the enclave"


def test_gramine_provider(tmp_path, app, enclaves):
    """The SGX path with a prepared /dev/attestation holding a real quote."""
    app_dir, _ = app
    att = tmp_path / "attestation"
    (att / "keys").mkdir(parents=True)
    (att / "attestation_type").write_text("dcap")
    (att / "user_report_data").write_bytes(b"")
    quote = open(f"{VECTORS}/sgx-quote-cosmian/quote.dat", "rb").read()
    (att / "quote").write_bytes(quote)
    (att / "keys/_sgx_mrenclave").write_bytes(bytes(range(16)))
    paths = {v: str(tmp_path / "enclave" / p) for v, p in [
        ("HOME", "root"), ("MODULE_PATH", "mse-app"), ("KEY_PATH", "key"), ("TMP_PATH", "tmp"),
        ("SECRETS_PATH", "root/s.json"), ("SEALED_SECRETS_PATH", "root/ss.json")]}
    enc = Enclave(tmp_path, tmp_path / "nosim", app_dir, extra=("--attestation-dir", str(att)),
                  env=paths)
    enclaves.append(enc)
    cert = enc.fetch_cert()
    ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(sgxcheck.RATLS_EXT))
    assert ext.value.value == quote
    assert enc.info["simulation"] is False
    assert enc.info["mrenclave"] == "e413a4ed616c7a79634d5ca05a2fda746a1f0c71349a80b25a02828846fab90e"
    # What was asked of Gramine: the binding of this certificate and the derived enclave key.
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    sk = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
              info=b"mse-sgx-enclave-sealing-key").derive(bytes(range(16)))
    pk = bytes(nacl.public.PrivateKey(sk).public_key)
    assert (att / "user_report_data").read_bytes() == sgxcheck.ratls_binding(cert) + pk
    assert not (tmp_path / "nosim").exists(), "no simulation may be created in SGX mode"
    st, h, _ = enc.request(cert, "GET", "/")
    assert st == 200 and h["Mse-Status"] == "Waiting"
    assert enc.stop() == 0, enc.final_output


def test_no_ssl_mode(tmp_path, simdir, app, enclaves):
    """RA-TLS for the configuration, then the app in plain HTTP (behind a TLS proxy)."""
    app_dir, key = app
    enc = Enclave(tmp_path, simdir, app_dir, mode=("--no-ssl",), leaks=False)
    enclaves.append(enc)
    cert = enc.fetch_cert()
    check_ratls(enc, simdir, cert)
    assert enc.info["tls"] == "none" and enc.info["input_args"]["expiration_date"] is None
    st, _, body = enc.post(cert, {"uuid": UUID, "code_secret_key": key.hex()})
    assert st == 200, body
    if not HAVE_APPSERVER:
        return
    deadline = time.time() + 90
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", enc.port, timeout=10)
            c.request("GET", "/")
            r = c.getresponse()
            body = r.read()
            c.close()
            if r.status == 200:
                break
        except (ConnectionError, OSError, http.client.HTTPException):
            pass
        assert time.time() < deadline, enc.output()
        time.sleep(0.2)
    assert body == b"hello from the enclave"
    assert enc.stop() == 0, enc.final_output


# ---------------------------------------------------------------- hostile clients (issue 12)
_attacker = hostile.attacker


def test_provisioning_succeeds_under_slow_body_and_idle_connection_attacks(tmp_path, simdir, app,
                                                                           enclaves):
    # Trickling provisioning POSTs (above the rate floor) on more connections
    # than the 2 provisioning threads, and 300 TCP connections that never
    # start TLS from 20 addresses (more than the 256 slots): the legitimate
    # client on 127.0.0.1 is still served and provisioning succeeds.
    app_dir, key = app
    enc = Enclave(tmp_path, simdir, app_dir, leaks=False)
    enclaves.append(enc)
    cert = enc.fetch_cert()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ts = []
    for i in range(6):
        t = hostile.Trickler(ctx.wrap_socket(_attacker(enc.port, i)),
                             b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
                             1000000, 1500, fill=b"{")
        t.start()
        ts.append(t)
    idle = []
    for i in range(300):
        try:
            idle.append(_attacker(enc.port, 10 + i % 20))
        except OSError:
            pass
    time.sleep(1)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3:
        t = time.monotonic()
        st, h, _ = enc.request(cert, "GET", "/health")
        assert st == 200 and h["Mse-Status"] == "Waiting"
        assert time.monotonic() - t < 5, "not served within 5 s"
    # A large body that is not for this route is refused on its head.
    sock = ctx.wrap_socket(_attacker(enc.port, 40))
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
    assert sock.recv(100).startswith(b"HTTP/1.1 413 ")
    sock.close()
    t = time.monotonic()
    st, h, body = enc.post(cert, {"uuid": UUID, "code_secret_key": key.hex()})
    assert st == 200, body
    assert time.monotonic() - t < 5
    assert all(t.is_alive() for t in ts)
    for t in ts:
        t.stop.set()
    for sock in idle:
        sock.close()
    if HAVE_APPSERVER:
        st, _, body = wait_for_app(enc, cert)
        assert body == b"hello from the enclave"


def _scan(pid, needles):
    """Which needles occur in the readable memory of pid (/proc/PID/mem)."""
    found = set()
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            name = parts[5] if len(parts) > 5 else ""
            if parts[1][0] != "r" or name in ("[vvar]", "[vsyscall]") or hi - lo > (1 << 30):
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except (OSError, ValueError):
                continue
            for n in needles:
                if n in data:
                    found.add(n)
    return found


def test_provisioning_leaves_no_copy_of_the_code_key(tmp_path, simdir, app, enclaves):
    # The non-sanitized mse-bootstrap (ASan's quarantine would hold freed
    # blocks on purpose): after provisioning, neither the code key's hex
    # (the request body) nor its bytes are anywhere in the process, freed
    # heap and TLS record buffers included. The uuid, which stays on
    # purpose, shows the scan sees what is there.
    root = os.path.abspath(ROOT)
    subprocess.run(["make", "-s", "-C", root, "SAN=0", "BUILD=build", "build/mse-bootstrap"],
                   check=True, stdout=subprocess.DEVNULL, timeout=900)
    app_dir, key = app
    enc = Enclave(tmp_path, simdir, app_dir, binary=os.path.join(root, "build", "mse-bootstrap"))
    enclaves.append(enc)
    cert = enc.fetch_cert()
    # A refused configuration first (a wrong key, over several requests on
    # one connection): while the configuration server still waits, nothing
    # has reused the freed buffers yet.
    wrong = os.urandom(32)
    c = enc.conn(cert)
    for _ in range(3):
        c.request("POST", "/", body=json.dumps({"uuid": UUID, "code_secret_key": wrong.hex()}).encode())
        r = c.getresponse()
        r.read()
        assert r.status == 400
    c.close()
    time.sleep(0.5)
    whex = wrong.hex().encode()
    found = _scan(enc.proc.pid, [whex, wrong, UUID.encode()])
    assert found == {UUID.encode()}, "refused key found in memory: %r" % (found - {UUID.encode()})
    st, _, body = enc.post(cert, {"uuid": UUID, "code_secret_key": key.hex(), "app_secrets": {"a": 1}})
    assert st == 200, body
    if HAVE_APPSERVER:
        wait_for_app(enc, cert)
    else:
        time.sleep(1)
    hexkey = key.hex().encode()
    found = _scan(enc.proc.pid, [hexkey, hexkey.upper(), key, UUID.encode()])
    assert UUID.encode() in found
    assert found == {UUID.encode()}, "code key found in memory: %r" % (found - {UUID.encode()})
