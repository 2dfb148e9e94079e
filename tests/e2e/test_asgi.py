# SPDX-License-Identifier: Apache-2.0
"""`mse serve` with ASGI apps, end to end.

- The same FastAPI, Starlette and Quart apps (tests/apps/asgi_*.py) answer a
  corpus of requests under uvicorn (Debian's, `--loop asyncio --http h11`)
  and under mse serve: status, headers (but date/server/connection) and body
  must be identical. uvicorn and h11 are the independent implementation.
- tests/apps/asgi_raw.py asserts the ASGI spec itself (scope fields,
  lifespan state, chunked receive(), http.disconnect), and reports.
- Detection: ASGI 3, ASGI 2, an override, clear errors for what is no app;
  lifespan failures stop the server with the app's message.
Servers listen on 127.0.0.1 only.
"""
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_serve import APPS, MSE, Server  # noqa: E402

PY = os.environ.get("MSE_PYTHON", "/usr/bin/python3")
SKIP_HEADERS = {"date", "server", "connection", "keep-alive"}
UPLOAD_MIB = 50


class Uvicorn:
    """uvicorn on a socket we bound (--fd): the port is known, no race."""

    def __init__(self, app, code=APPS):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [PY, "-m", "uvicorn", "--loop", "asyncio", "--http", "h11", "--fd", str(self.sock.fileno()),
             "--app-dir", code, "--log-level", "warning", app],
            pass_fds=[self.sock.fileno()], stdout=self.log, stderr=subprocess.STDOUT)
        self.sock.close()
        deadline = time.time() + 30
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/__probe__")
                c.getresponse().read()
                c.close()
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.log.seek(0)
                    raise AssertionError("uvicorn did not start: " + self.log.read().decode())
                time.sleep(0.05)

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def exchange(server, method, path, body=None, headers=None, chunked=False):
    c = server.conn()
    c.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
    r = c.getresponse()
    data = r.read()
    c.close()
    port = str(server.port).encode()
    # Cookie expiry times are "now + max-age": the second may differ between runs.
    hdrs = sorted((k.lower(), re.sub(r"(?i)expires=[^;]*", "expires=T", v.replace(str(server.port), "PORT")))
                  for k, v in r.getheaders() if k.lower() not in SKIP_HEADERS)
    return r.status, hdrs, data.replace(port, b"PORT")


def big_body(mib):
    block = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB, not all one byte
    return b"".join(block for _ in range(mib))


def corpus(framework):
    big = big_body(UPLOAD_MIB)
    c = [
        ("GET", "/", None, {}),
        ("HEAD", "/", None, {}),
        ("GET", "/items/42?q=hello%20world&limit=3", None, {}),
        ("GET", "/items/%34%32", None, {}),
        ("GET", "/items/abc", None, {}),
        ("GET", "/nope", None, {}),
        ("POST", "/items", json.dumps({"name": "pen", "price": 1.5, "tags": ["a"]}),
         {"content-type": "application/json"}),
        ("POST", "/items", "{not json", {"content-type": "application/json"}),
        ("POST", "/items", json.dumps({"price": "free"}), {"content-type": "application/json"}),
        ("GET", "/stream", None, {}),
        ("GET", "/stream?n=300&size=4000", None, {}),
        ("POST", "/upload", big, {"content-type": "application/octet-stream"}),
        ("POST", "/echo", b"x" * 100000, {"content-type": "application/x-test"}),
        ("POST", "/echo", b"", {"content-type": "text/plain"}),
        ("GET", "/cookie/set", None, {}),
        ("GET", "/cookie/get", None, {"cookie": "session=s3cr3t; theme=light"}),
        ("GET", "/redirect", None, {}),
        ("GET", "/headers?a=1&b=%C3%A9", None, {"x-custom": "one"}),
        ("GET", "/text", None, {}),
        ("GET", "/fail", None, {}),
        ("POST", "/background/first", b"", {}),
    ]
    if framework == "fastapi":
        c.append(("GET", "/redirect/permanent", None, {}))
    return c


@pytest.mark.parametrize("framework", ["fastapi", "starlette", "quart"])
def test_same_answers_as_uvicorn(framework):
    app = "asgi_%s:app" % framework
    results = {}
    for name in ("uvicorn", "mse"):
        srv = Uvicorn(app) if name == "uvicorn" else Server(app=app)
        try:
            out = []
            for method, path, body, headers in corpus(framework):
                out.append(exchange(srv, method, path, body, headers))
            # A chunked request body (no content-length).
            out.append(exchange(srv, "POST", "/echo", iter([b"abc", b"def" * 5000]),
                                {"content-type": "text/plain"}, chunked=True))
            # Background tasks ran after their response.
            deadline = time.time() + 10
            while True:
                st, h, b = exchange(srv, "GET", "/background")
                if b"first" in b or time.time() > deadline:
                    break
                time.sleep(0.05)
            out.append((st, h, b))
            results[name] = out
        finally:
            if name == "uvicorn":
                srv.stop()
            else:
                assert srv.stop() == 0, srv.text()
    reqs = corpus(framework) + [("POST", "/echo chunked", None, {}), ("GET", "/background", None, {})]
    for (method, path, _, _), u, m in zip(reqs, results["uvicorn"], results["mse"]):
        assert m == u, "%s %s differs:\nuvicorn %r\nmse     %r" % (method, path, u[:2] + (u[2][:300],),
                                                                  m[:2] + (m[2][:300],))
    # The corpus did exercise what it says.
    by_path = {(r[0], r[1]): o for r, o in zip(reqs, results["mse"])}
    up = json.loads(by_path[("POST", "/upload")][2])
    assert up["size"] == UPLOAD_MIB << 20
    assert up["sha256"] == hashlib.sha256(big_body(UPLOAD_MIB)).hexdigest()
    assert ("transfer-encoding", "chunked") in by_path[("GET", "/stream?n=300&size=4000")][1]
    assert by_path[("GET", "/items/abc")][0] in (404, 422)
    if framework == "fastapi":
        assert by_path[("GET", "/items/abc")][0] == 422
        assert by_path[("POST", "/items")][0] == 422
        assert up["streamed"] is True
    assert any(k == "set-cookie" for k, _ in by_path[("GET", "/cookie/set")][1])


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    mark = str(tmp_path_factory.mktemp("mark") / "shutdown.json")
    s = Server(app="asgi_raw:app", env={"ASGI_SHUTDOWN_MARK": mark})
    s.mark = mark
    yield s
    s.stop()


def get_json(server, path, **kw):
    r, data = server.request("GET", path, **kw)
    assert r.status == 200, (path, r.status, data)
    return json.loads(data)


def test_scope_fields(raw):
    s = get_json(raw, "/scope?x=%41&y", headers={"X-Mixed-Case": "V1", "x-mixed-case": "v2"})
    assert s["keys"] == sorted(["type", "asgi", "http_version", "method", "scheme", "path", "raw_path",
                                "query_string", "root_path", "headers", "client", "server", "state"])
    assert s["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert s["http_version"] == "1.1" and s["method"] == "GET" and s["scheme"] == "http"
    assert s["path"] == "/scope" and s["raw_path"] == "/scope" and s["raw_path_bytes"]
    assert s["query_string"] == "x=%41&y" and s["qs_bytes"] and s["root_path"] == ""
    assert s["headers_ok"]
    assert ["x-mixed-case", "V1"] in s["headers"] and ["x-mixed-case", "v2"] in s["headers"]
    assert s["client"][0] == "127.0.0.1" and s["server_port"] == raw.port
    s = get_json(raw, "/scope/%E2%82%AC%20x")
    assert s["path"] == "/scope/\u20ac x" and s["raw_path"] == "/scope/%E2%82%AC%20x"


def test_lifespan_state(raw):
    a = get_json(raw, "/state?first")
    b = get_json(raw, "/state?second")
    assert a["started"] is True and b["started"] is True
    # Each request gets a shallow copy: what one request wrote, the next does not see.
    assert a["seen"] is None and b["seen"] is None


def test_body_in_chunks(raw):
    body = os.urandom(3 << 20)
    r, data = raw.request("POST", "/chunks", body=body)
    d = json.loads(data)
    assert d["total"] == len(body)
    assert d["n"] >= 3 * 1024 * 1024 // (64 * 1024)  # never the whole body at once
    assert d["max"] <= 64 * 1024 and d["last_more"] is False and d["all_more_before"] is True
    r, data = raw.request("POST", "/chunks", body=iter([b"a" * 10, b"b" * 70000]), chunked=True)
    assert json.loads(data)["total"] == 70010


def test_disconnect_after_response(raw):
    r, data = raw.request("POST", "/disconnect", body=b"123")
    assert data == b"ok"
    deadline = time.time() + 10
    while time.time() < deadline:
        d = get_json(raw, "/disconnects")
        if d["disconnects"]:
            break
        time.sleep(0.05)
    assert d["disconnects"] == ["http.disconnect"]


def test_disconnect_while_the_app_waits(raw):
    """The client goes away before any response: receive() says http.disconnect."""
    s = socket.create_connection(("127.0.0.1", raw.port))
    s.sendall(b"GET /wait-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.5)
    s.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        waited = get_json(raw, "/disconnects")["waited"]
        if waited:
            break
        time.sleep(0.05)
    assert waited and waited[0][0] == "http.disconnect" and waited[0][1] < 3, waited


def test_back_pressure(raw):
    """A client that reads nothing holds the app back: send() waits."""
    s = socket.create_connection(("127.0.0.1", raw.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /produce?mib=256 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(1.5)
    produced = get_json(raw, "/disconnects")["produced"]
    # Queue high-water mark (256 KiB) + socket buffers: far below 256 MiB.
    assert produced < (48 << 20), produced
    got = 0
    s.settimeout(30)
    while got < (256 << 20):
        b = s.recv(1 << 20)
        if not b:
            break
        got += len(b)
    s.close()
    assert got > (256 << 20)  # the whole body (and the head) arrived
    assert get_json(raw, "/disconnects")["produced"] == 256 << 20


def test_app_errors(raw):
    r, data = raw.request("GET", "/nobody")
    assert r.status == 500
    r, data = raw.request("GET", "/raise")
    assert r.status == 500 and b"Internal Server Error" in data
    r, data = raw.request("GET", "/badheaders")
    assert r.status == 500
    r, data = raw.request("GET", "/twice")
    assert r.status == 200  # the first start went out; the second raised
    time.sleep(0.2)
    log = raw.text()
    assert "raised before the response" in log
    assert "header 0 must be a [name, value] pair of bytes" in log
    assert "'http.response.start' sent twice" in log
    assert "returned without sending a response" in log


def test_requests_waiting_on_the_app_get_threads():
    # Each request holds a server thread while it waits on the event loop
    # (the thread never takes the GIL): 24 of them, from a floor of 2
    # threads, are all in the app at once. Before, such threads counted as
    # waiting for the GIL, the pool never grew, and 2 were in the app.
    s = Server(app="asgi_raw:app", args=["--threads", "2", "--threads-max", "40"])
    try:
        out = []

        def one():
            out.append(get_json(s, "/gather?n=24"))
        threads = [threading.Thread(target=one) for _ in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(out) == 24 and all(o["met"] for o in out), out
        assert max(o["peak"] for o in out) == 24, out
    finally:
        assert s.stop() == 0, s.text()


def test_tls():
    d = tempfile.mkdtemp()
    cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-subj", "/CN=localhost", "-keyout", key, "-out", cert, "-days", "2"],
                   check=True, capture_output=True)
    s = Server(app="asgi_raw:app", tls=(cert, key))
    try:
        assert get_json(s, "/scope")["scheme"] == "https"
    finally:
        assert s.stop() == 0


def test_asgi2_double_callable():
    s = Server(app="asgi_raw:App2")
    try:
        d = get_json(s, "/x")
        assert d == {"asgi2": True, "version": "2.0", "path": "/x"}
        assert "app interface: asgi2" in s.text()
    finally:
        assert s.stop() == 0


def test_override(tmp_path):
    # A WSGI app forced to ASGI is refused, naming what was found.
    out = subprocess.run([MSE, "serve", "wsgi_testapp:app", "--code", APPS, "--no-tls", "--port", "0",
                          "--interface", "asgi3"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    assert out.returncode == 1
    assert "asgi3 was asked for, but the app is a callable" in out.stderr + out.stdout
    out = subprocess.run([MSE, "serve", "asgi_raw:app", "--code", APPS, "--no-tls", "--interface", "cgi"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--interface" in out.stderr
    s = Server(app="asgi_raw:App2", args=["--interface", "asgi2"])
    try:
        assert get_json(s, "/y")["asgi2"] is True
    finally:
        assert s.stop() == 0


@pytest.mark.parametrize("app,msg", [
    ("asgi_raw:four_args", "found a callable (function) taking 4 arguments"),
    ("asgi_raw:async_two", "an async callable (function) taking 2 arguments"),
    ("asgi_raw:not_callable", "asgi_raw:not_callable is a int, not a callable WSGI or ASGI app"),
    ("asgi_raw:failing_startup", "lifespan.startup): database unreachable at db:5432"),
    ("asgi_raw:raising_startup", "RuntimeError: config file missing: /etc/app.toml"),
])
def test_start_up_errors(app, msg):
    out = subprocess.run([MSE, "serve", app, "--code", APPS, "--no-tls", "--port", "0"],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    assert out.returncode == 1, out
    assert msg in out.stderr + out.stdout, out.stderr + out.stdout
    assert "listening" not in out.stderr + out.stdout


def test_no_lifespan_is_served():
    s = Server(app="asgi_raw:no_lifespan")
    try:
        assert get_json(s, "/")["lifespan"] is False
        assert "lifespan: not supported by the app" in s.text()
    finally:
        assert s.stop() == 0


def test_shutdown_after_drain(tmp_path):
    mark = str(tmp_path / "mark.json")
    s = Server(app="asgi_raw:app", env={"ASGI_SHUTDOWN_MARK": mark})
    res = {}

    def slow():
        res["r"] = s.request("GET", "/sleep?s=1.5")

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    rc = s.stop()
    t.join()
    assert rc == 0, s.output
    assert res["r"][0].status == 200  # the in-flight request finished
    # lifespan.shutdown ran after it (the app counted it done before writing the mark).
    assert json.load(open(mark))["done"] == 1
