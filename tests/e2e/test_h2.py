# SPDX-License-Identifier: Apache-2.0
"""HTTP/2 on the app server (net/h2 over libnghttp2), against clients nobody here
wrote: curl --http2, nghttp and h2load (nghttp2-client), python3-httpx with
python3-h2, and raw frames built here from RFC 9113 for the flood shapes.

Digests are computed here with hashlib; HTTP/1.1 answers from the same server
are the reference for the WSGI and ASGI corpora.
"""
import asyncio
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_serve import APPS, Server, plain_build, sanitized  # noqa: E402,F401
from hostile import Trickler  # noqa: E402

httpx = pytest.importorskip("httpx")
h2conn = pytest.importorskip("h2.connection")
h2events = pytest.importorskip("h2.events")
h2config = pytest.importorskip("h2.config")
hpack = pytest.importorskip("hpack")

SKIP = {"date", "server", "connection", "keep-alive", "transfer-encoding"}
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# Frame types and error codes (RFC 9113 §6, §7).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = \
    0, 1, 2, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS = 0x1, 0x4
NO_ERROR, ENHANCE_YOUR_CALM = 0, 11


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tls"))
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def tls_server(tls_files):
    s = Server(tls=tls_files, args=["--log-level", "debug"])
    yield s
    assert s.stop() == 0, s.text()
    assert "ERROR: AddressSanitizer" not in s.output


@pytest.fixture(scope="module")
def plain_server():
    s = Server(args=["--max-body", "1"])
    yield s
    assert s.stop() == 0, s.text()
    assert "ERROR: AddressSanitizer" not in s.output


def curl(*args, data=None):
    r = subprocess.run(["curl", "-sS", "--max-time", "60"] + list(args), input=data,
                       capture_output=True, timeout=90)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def read_frames(sock, until=None, timeout=10):
    """Frames (type, flags, stream, payload) until EOF, a reset, `until` says stop, or timeout."""
    sock.settimeout(timeout)
    buf, out = b"", []
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            b = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not b:
            break
        buf += b
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            f = (buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n])
            out.append(f)
            buf = buf[9 + n:]
        if until and until(out):
            break
    return out


def goaway_codes(frames):
    return [int.from_bytes(p[4:8], "big") for t, _, _, p in frames if t == GOAWAY]


def raw_conn(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    return s


def request_block(enc, path="/hello", method="GET", extra=()):
    return enc.encode([(":method", method), (":scheme", "http"), (":path", path),
                       (":authority", "127.0.0.1")] + list(extra))


def h2_get(server, path):
    """One request by curl with prior knowledge: (status, body)."""
    out = curl("--http2-prior-knowledge", "-w", "\n%{http_code} %{http_version}",
               "http://127.0.0.1:%d%s" % (server.port, path))
    body, _, tail = out.rpartition(b"\n")
    code, ver = tail.decode().split()
    assert ver == "2"
    return int(code), body


def alpn(server, tls_files, offer):
    ctx = ssl.create_default_context(cafile=tls_files[0])
    ctx.set_alpn_protocols(offer)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.selected_alpn_protocol()


# ---- negotiation -----------------------------------------------------------------------------

def test_alpn_offers_h2_then_http11(tls_server, tls_files):
    url = "https://127.0.0.1:%d/environ" % tls_server.port
    out = curl("--http2", "--cacert", tls_files[0], "-w", "\n%{http_version}", url)
    body, _, ver = out.rpartition(b"\n")
    assert ver == b"2"
    env = json.loads(body)
    assert env["SERVER_PROTOCOL"] == "HTTP/2" and env["wsgi.url_scheme"] == "https"
    assert env["HTTP_HOST"] == "127.0.0.1:%d" % tls_server.port  # from :authority
    out = curl("--http1.1", "--cacert", tls_files[0], "-w", "\n%{http_version}", url)
    assert out.rpartition(b"\n")[2] == b"1.1"
    assert json.loads(out.rpartition(b"\n")[0])["SERVER_PROTOCOL"] == "HTTP/1.1"
    # What ALPN chooses, offered in either order: the server's preference wins.
    for offer, want in ((["h2", "http/1.1"], "h2"), (["http/1.1", "h2"], "h2"), (["h2"], "h2"),
                        (["http/1.1"], "http/1.1"), (["spdy/3"], None)):
        assert alpn(tls_server, tls_files, offer) == want, offer


def test_no_http2_option_keeps_http11_only(tls_files):
    s = Server(tls=tls_files, args=["--no-http2"])
    try:
        out = curl("--http2", "--cacert", tls_files[0], "-w", "\n%{http_version}",
                   "https://127.0.0.1:%d/hello" % s.port)
        assert out == b"hello\n1.1"
        assert alpn(s, tls_files, ["h2", "http/1.1"]) == "http/1.1"
        assert alpn(s, tls_files, ["h2"]) is None
    finally:
        assert s.stop() == 0, s.text()


def test_cleartext_h2_only_with_prior_knowledge(plain_server):
    assert h2_get(plain_server, "/hello") == (200, b"hello")
    env = json.loads(h2_get(plain_server, "/environ")[1])
    assert env["SERVER_PROTOCOL"] == "HTTP/2" and env["wsgi.url_scheme"] == "http"
    # curl --http2 on http:// tries the h2c Upgrade, which is not offered: HTTP/1.1 it stays.
    out = curl("--http2", "-w", "\n%{http_version}", "http://127.0.0.1:%d/hello" % plain_server.port)
    assert out == b"hello\n1.1"
    # A request line that merely starts like the preface is HTTP/1.1's to refuse.
    s = socket.create_connection(("127.0.0.1", plain_server.port), timeout=10)
    s.sendall(b"PRI * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 ")
    s.close()


# ---- streams ---------------------------------------------------------------------------------

def test_many_concurrent_streams_on_one_connection(tls_server, tls_files, tmp_path):
    # Bodies within the initial window for httpx, whose HTTP/2 client stalls on
    # concurrent uploads that must wait for window updates; nghttp and h2load
    # do the large concurrent uploads below.
    bodies = [hashlib.sha256(b"%d" % i).digest() * (1 + i * 10) for i in range(200)]

    async def run():
        # httpx does not wait for a stream slot beyond SETTINGS_MAX_CONCURRENT_STREAMS (32).
        sem = asyncio.Semaphore(30)

        async def one(method, url, **kw):
            async with sem:
                return await c.request(method, url, **kw)

        async with httpx.AsyncClient(http2=True, verify=tls_files[0], timeout=120) as c:
            base = "https://127.0.0.1:%d" % tls_server.port
            rs = await asyncio.gather(*[one("POST", base + "/sha", content=b) for b in bodies])
            envs = await asyncio.gather(*[one("GET", base + "/environ") for _ in range(50)])
            return rs, envs

    rs, envs = asyncio.run(run())
    for b, r in zip(bodies, rs):
        assert r.http_version == "HTTP/2"
        assert r.status_code == 200
        assert r.text == "%d %s" % (len(b), hashlib.sha256(b).hexdigest())
    # All of them on one connection: one client port.
    assert len({r.json()["REMOTE_PORT"] for r in envs}) == 1
    # nghttp: 32 streams at once (the limit the server grants), each answered.
    out = subprocess.run(["nghttp", "-nv", "-m", "32", "https://127.0.0.1:%d/hello" % tls_server.port],
                         capture_output=True, timeout=60).stdout.decode()
    assert out.count(":status: 200") == 32
    assert "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):32" in out
    # 30 uploads of 300 KB at once on one connection (flow control: 32 streams
    # at most, each with a 64 KiB window until a worker takes it).
    up = tmp_path / "up.bin"
    data = hashlib.sha256(b"many").digest() * 9375
    up.write_bytes(data)
    want = "%d %s" % (len(data), hashlib.sha256(data).hexdigest())
    r = subprocess.run(["nghttp", "-m", "30", "-d", str(up), "https://127.0.0.1:%d/sha" % tls_server.port],
                       capture_output=True, timeout=120)
    assert r.stdout.decode() == want * 30, r.stderr
    r = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "32", "-d", str(up),
                        "https://127.0.0.1:%d/sha" % tls_server.port], capture_output=True, timeout=120)
    assert "200 succeeded, 0 failed" in r.stdout.decode(), r.stdout.decode()


def test_large_bodies_both_ways(tls_server, tls_files, tmp_path):
    up = tmp_path / "up.bin"
    data = hashlib.sha256(b"big").digest() * (24 << 15)  # 24 MiB, not one repeated byte
    up.write_bytes(data)
    want = "%d %s" % (len(data), hashlib.sha256(data).hexdigest())
    url = "https://127.0.0.1:%d" % tls_server.port
    assert curl("--http2", "--cacert", tls_files[0], "--data-binary", "@%s" % up, url + "/sha").decode() == want
    out = subprocess.run(["nghttp", "-d", str(up), url + "/sha"], capture_output=True, timeout=120)
    assert out.stdout.decode() == want, out.stderr
    # Without a content-length (httpx streams a generator): the end of the stream ends the body.
    with httpx.Client(http2=True, verify=tls_files[0], timeout=120) as c:
        r = c.post(url + "/sha", content=iter([data[:1 << 20], data[1 << 20:]]))
        assert r.http_version == "HTTP/2" and r.text == want
        n = 40 << 20
        with c.stream("GET", url + "/big?%d" % n) as r:
            h, got = hashlib.sha256(), 0
            for chunk in r.iter_bytes():
                h.update(chunk)
                got += len(chunk)
        assert got == n and h.hexdigest() == hashlib.sha256(b"x" * n).hexdigest()


def test_client_reset_while_the_app_runs(tls_server, tls_files):
    ctx = ssl.create_default_context(cafile=tls_files[0])
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", tls_server.port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    assert s.selected_alpn_protocol() == "h2"
    c = h2conn.H2Connection(h2config.H2Configuration(client_side=True))
    c.initiate_connection()
    hdrs = [(":method", "GET"), (":scheme", "https"), (":authority", "127.0.0.1"), (":path", "/sleep?3")]
    c.send_headers(1, hdrs, end_stream=True)
    s.sendall(c.data_to_send())
    got_first = False
    while not got_first:
        for ev in c.receive_data(s.recv(65536)):
            if isinstance(ev, h2events.DataReceived) and ev.stream_id == 1:
                got_first = True
        s.sendall(c.data_to_send())
    # The app is sleeping inside its response: cancel it, then use the connection.
    c.reset_stream(1, error_code=8)  # CANCEL
    t0 = time.time()
    c.send_headers(3, hdrs[:3] + [(":path", "/hello")], end_stream=True)
    s.sendall(c.data_to_send())
    body, ended = b"", False
    while not ended:
        for ev in c.receive_data(s.recv(65536)):
            if isinstance(ev, h2events.DataReceived) and ev.stream_id == 3:
                body += ev.data
                c.acknowledge_received_data(len(ev.data), 3)
            if isinstance(ev, h2events.StreamEnded) and ev.stream_id == 3:
                ended = True
        s.sendall(c.data_to_send())
    assert body == b"hello"
    assert time.time() - t0 < 2.5  # not after the cancelled one
    s.close()
    deadline = time.time() + 10
    while "stream 1 reset" not in tls_server.text() and time.time() < deadline:
        time.sleep(0.1)
    log = tls_server.text()
    assert re.search(r"HTTP/2 stream 1 reset \(error 8\) while its handler runs", log), \
        "\n".join(ln for ln in log.splitlines() if "HTTP/2" in ln or "away" in ln)[-3000:]


# ---- limits ------------------------------------------------------------------------------

def exchange_raw(server, blocks, timeout=10):
    """Sends header blocks (list of (stream, hpack bytes, end_stream, data)) and returns frames."""
    s = raw_conn(server)
    out = b""
    for sid, block, data in blocks:
        out += frame(HEADERS, END_HEADERS | (0 if data is not None else END_STREAM), sid, block)
        if data is not None:
            for i in range(0, len(data), 16384):
                last = i + 16384 >= len(data)
                out += frame(DATA, END_STREAM if last else 0, sid, data[i:i + 16384])
    s.sendall(out)
    want = {sid for sid, _, _ in blocks}
    frames = read_frames(s, until=lambda fs: want <= {f[2] for f in fs if f[1] & END_STREAM
                                                      or f[0] == RST_STREAM}, timeout=timeout)
    s.close()
    return frames


def statuses(frames):
    dec = hpack.Decoder()
    out = {}
    for t, _, sid, p in frames:
        if t == HEADERS:
            out[sid] = int(dict(dec.decode(p))[":status"])
    return out


def test_access_log_lines_for_streams(tmp_path):
    """Each stream gets a Common Log Format line with its status and the body bytes sent
    (as curl counted them), the target escaped so no client can forge a line or a field."""
    log = tmp_path / "access.log"
    s = Server(args=["--access-log", str(log)])
    try:
        code, body = h2_get(s, "/hello")
        assert code == 200
        enc = hpack.Encoder()
        frames = exchange_raw(s, [(1, request_block(enc, '/x"y\\z\xe9'), None),
                                  (3, request_block(enc, "/hello", "HEAD"), None),
                                  (5, request_block(enc, "/a\x01b"), None)])
        got = statuses(frames)
    finally:
        assert s.stop() == 0, s.text()
    # nghttp2 resets the stream whose :path holds a control byte: it never reaches the app.
    assert 5 not in got and any(t == RST_STREAM and sid == 5 for t, _, sid, _ in frames)
    lines = log.read_text().splitlines()
    clf = re.compile(r'^127\.0\.0\.1 - - \[\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                     r'"([^"]*)" (\d{3}) (\d+|-)$')
    parsed = [clf.match(line) for line in lines]
    assert all(parsed) and len(parsed) == 3, lines
    by_target = {m.group(1): (int(m.group(2)), m.group(3)) for m in parsed}
    assert by_target["GET /hello HTTP/2.0"] == (200, str(len(body)))
    assert by_target["HEAD /hello HTTP/2.0"] == (got[3], "-")
    odd = "GET /x\\x22y\\x5cz\\xc3\\xa9 HTTP/2.0"  # '"', '\\' and UTF-8 bytes escaped
    assert by_target[odd][0] == got[1], lines


def test_header_list_over_the_limit_is_431(plain_server):
    enc = hpack.Encoder()
    big = request_block(enc, extra=[("x-big", "a" * 70000)])
    ok = request_block(enc, "/hello")
    # The big block spans CONTINUATION frames: HEADERS without END_HEADERS first.
    s = raw_conn(plain_server)
    parts = [big[i:i + 16000] for i in range(0, len(big), 16000)]
    msg = frame(HEADERS, END_STREAM, 1, parts[0])
    for i, p in enumerate(parts[1:], 1):
        msg += frame(CONTINUATION, END_HEADERS if i == len(parts) - 1 else 0, 1, p)
    msg += frame(HEADERS, END_HEADERS | END_STREAM, 3, ok)
    s.sendall(msg)
    fr = read_frames(s, until=lambda fs: {1, 3} <= {f[2] for f in fs if f[1] & END_STREAM})
    s.close()
    assert statuses(fr) == {1: 431, 3: 200}


def test_body_over_max_body_is_413_with_or_without_content_length(plain_server):
    data = b"z" * (1536 * 1024)  # --max-body 1 (MiB)
    url = "http://127.0.0.1:%d/sha" % plain_server.port
    with httpx.Client(http1=False, http2=True, timeout=60) as c:
        # Declared too large: refused before the app runs.
        assert c.post(url, content=data).status_code == 413
        # Not declared (a stream without content-length): refused when it passes the limit.
        r = c.post(url, content=iter([data[:1 << 19], data[1 << 19:]]))
        assert r.status_code == 413
        r = c.post(url, content=b"small")
        assert r.status_code == 200 and r.text.startswith("5 ")


def test_malformed_content_length_never_reaches_the_app(plain_server):
    """A content-length that is not 1*DIGIT, or too long to be a sane length, fails the
    stream: nghttp2 resets the ones it rejects itself, the server answers 400 to the rest;
    the app never runs and the connection goes on serving."""
    enc = hpack.Encoder()
    bad = ["abc", "-1", "1e3", " 5", "1234567890123456789"]
    blocks = [(2 * i + 1, request_block(enc, "/sha", "POST", [("content-length", v)]), b"")
              for i, v in enumerate(bad)]
    blocks.append((2 * len(bad) + 1, request_block(enc, "/hello"), None))
    frames = exchange_raw(plain_server, blocks)
    got = statuses(frames)
    reset = {sid for t, _, sid, _ in frames if t == RST_STREAM}
    for sid, _, _ in blocks[:-1]:
        assert got.get(sid) == 400 or (sid in reset and sid not in got), (sid, got, reset)
    assert 400 in got.values()  # the 19-digit one passes nghttp2 and is ours to refuse
    assert got[2 * len(bad) + 1] == 200


# ---- floods: the offender is closed, others are served -----------------------------------------

def flood_and_check(server, payload, what):
    s = raw_conn(server)
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass
    t0 = time.time()
    fr = read_frames(s, timeout=10)
    s.close()
    assert time.time() - t0 < 9, "the flooding connection was not closed"
    codes = goaway_codes(fr)
    # The GOAWAY may be lost to the reset of a closed socket that still had input.
    assert not codes or codes[-1] == ENHANCE_YOUR_CALM, codes
    # Our frame budget, or nghttp2's cap on acknowledgements queued for a
    # client that does not read, whichever trips first.
    pat = r"HTTP/2 (%s flood|flood \(frames the client does not read\)): connection closed" % re.escape(what)
    deadline = time.time() + 5
    while not re.search(pat, server.text()) and time.time() < deadline:
        time.sleep(0.05)
    assert re.search(pat, server.text())
    assert h2_get(server, "/hello") == (200, b"hello")


def test_ping_flood(plain_server):
    flood_and_check(plain_server, b"".join(frame(PING, 0, 0, struct.pack(">Q", i)) for i in range(20000)),
                    "PING")


def test_settings_flood(plain_server):
    flood_and_check(plain_server, frame(SETTINGS, 0, 0) * 20000, "SETTINGS")


def test_rapid_reset(plain_server):
    enc = hpack.Encoder()
    msg = b""
    for i in range(5000):
        sid = 1 + 2 * i
        msg += frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block(enc, "/hello"))
        msg += frame(RST_STREAM, 0, sid, struct.pack(">I", 8))
    flood_and_check(plain_server, msg, "RST_STREAM (rapid reset)")


def test_continuation_flood(plain_server):
    enc = hpack.Encoder()
    block = request_block(enc, "/hello")
    # A header block that never ends: HEADERS, then CONTINUATION frames of
    # literal fields, none with END_HEADERS.
    lit = b"\x00\x03x-a\x7f\x81\x7f" + b"b" * 255  # literal without indexing, 382-byte value
    s = raw_conn(plain_server)
    msg = frame(HEADERS, END_STREAM, 1, block)
    msg += b"".join(frame(CONTINUATION, 0, 1, lit) for _ in range(5000))
    try:
        s.sendall(msg)
    except (BrokenPipeError, ConnectionResetError):
        pass
    t0 = time.time()
    read_frames(s, timeout=10)
    s.close()
    assert time.time() - t0 < 9, "the connection was not closed"
    assert h2_get(plain_server, "/hello") == (200, b"hello")


def test_slow_header_block_is_closed(tmp_path):
    s = Server(args=["--timeout", "1"])
    try:
        c = raw_conn(s)
        enc = hpack.Encoder()
        c.sendall(frame(HEADERS, END_STREAM, 1, request_block(enc, "/hello")))  # no END_HEADERS
        t0 = time.time()
        fr = read_frames(c, timeout=10)
        c.close()
        assert time.time() - t0 < 5
        assert ENHANCE_YOUR_CALM in goaway_codes(fr)
        assert h2_get(s, "/hello") == (200, b"hello")
    finally:
        assert s.stop() == 0, s.text()


# ---- shutdown ------------------------------------------------------------------------------

def test_graceful_goaway_on_shutdown():
    srv = Server()
    try:
        s = raw_conn(srv)
        s.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block(hpack.Encoder(), "/sleep?1.5")))
        # The first DATA frame says the app is inside its response: stop the server then.
        first = read_frames(s, until=lambda fs: any(f[0] == DATA for f in fs))
        assert any(f[0] == DATA for f in first)
        srv.proc.send_signal(signal.SIGTERM)
        rest = read_frames(s, timeout=20)
        s.close()
        frames = first + rest
        body = b"".join(p for t, _, sid, p in frames if t == DATA and sid == 1)
        assert body == b"first second"
        assert any(t == DATA and sid == 1 and fl & END_STREAM for t, fl, sid, _ in frames)
        goaways = [(int.from_bytes(p[:4], "big"), int.from_bytes(p[4:8], "big"))
                   for t, _, _, p in frames if t == GOAWAY]
        # RFC 9113 §6.8: GOAWAY NO_ERROR, its last stream id covering the one in flight.
        assert goaways and goaways[0] == (1, NO_ERROR), goaways
        assert srv.proc.wait(20) == 0
    finally:
        assert srv.stop() == 0, srv.text()


# ---- stuck handlers and slow bodies, per stream ------------------------------------------------

def test_stuck_handlers_get_504_and_are_replaced():
    # 2 workers and 3 handlers that never return, on one connection: each
    # stream is answered 504 at the 1 s deadline and a worker is started in
    # each one's place (without that the third never runs and nothing more
    # is served); then new streams on that connection and other connections
    # are served while the three still hang.
    s = Server(args=["--threads", "2", "--request-timeout", "1"])
    try:
        async def run():
            async with httpx.AsyncClient(http1=False, http2=True, timeout=20) as c:
                base = "http://127.0.0.1:%d" % s.port
                t0 = time.monotonic()
                rs = await asyncio.gather(*[c.get(base + "/hang?600") for _ in range(3)])
                took = time.monotonic() - t0
                ok = await asyncio.gather(*[c.get(base + "/hello") for _ in range(8)])
                return rs, took, ok

        rs, took, ok = asyncio.run(run())
        assert [(r.http_version, r.status_code) for r in rs] == [("HTTP/2", 504)] * 3
        assert took < 8, took
        assert [(r.status_code, r.text) for r in ok] == [(200, "hello")] * 8
        assert h2_get(s, "/hello") == (200, b"hello")
        out = subprocess.run(["nghttp", "-n", "-m", "8", "http://127.0.0.1:%d/hello" % s.port],
                             capture_output=True, timeout=30)
        assert out.returncode == 0, out.stderr
    finally:
        assert s.stop() == 0, s.text()
    assert s.output.count("request timed out after 1000 ms: GET /hang?600") == 3, s.output


def test_stop_with_a_stuck_handler_is_bounded():
    # A handler stuck in Python (answered 504, its thread still with it):
    # SIGTERM ends the process within a bound, its thread left behind.
    s = Server(args=["--threads", "2", "--request-timeout", "1"])
    try:
        c = raw_conn(s)
        c.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 1,
                        request_block(hpack.Encoder(), "/hang?600")))
        fr = read_frames(c, until=lambda fs: any(f[0] == HEADERS for f in fs), timeout=10)
        assert statuses(fr) == {1: 504}
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        rc = s.proc.wait(30)
        c.close()
        assert rc == 0
        assert time.monotonic() - t0 < 8
    finally:
        s.stop()
    assert "1 HTTP/2 handler(s) still running" in s.output, s.output


def test_streams_waiting_on_the_app_get_threads():
    # ASGI: each stream's handler thread waits on the event loop (exchange.h:
    # waiting). 24 streams on one connection from a floor of 2 threads are
    # all in the app at once: the HTTP/2 pool grows by the HTTP/1.1 rule
    # (net/pool.h). Before, its 2 threads held 2 streams, the other 22
    # queued behind them and the app's 15 s gather never met.
    s = Server(app="asgi_raw:app", args=["--threads", "2", "--threads-max", "40"])
    try:
        async def run():
            async with httpx.AsyncClient(http1=False, http2=True, timeout=60) as c:
                url = "http://127.0.0.1:%d/gather?n=24" % s.port
                return await asyncio.gather(*[c.get(url) for _ in range(24)])

        rs = asyncio.run(run())
        assert {r.http_version for r in rs} == {"HTTP/2"}
        out = [r.json() for r in rs]
        assert all(o["met"] for o in out), out
        assert max(o["peak"] for o in out) == 24, out
    finally:
        assert s.stop() == 0, s.text()


def test_blocking_wsgi_streams_get_threads_within_threads_max():
    # WSGI handlers asleep outside the GIL (the kernel says so: /proc): 12
    # streams of a 1 s sleep on one connection from a floor of 2 threads end
    # together (one 1 s round, not six); --threads-max 4 bounds the pool:
    # then they take three rounds.
    for tmax, lo, hi in ((40, 0.9, 2.8), (4, 2.9, 20)):
        s = Server(args=["--threads", "2", "--threads-max", str(tmax)])
        try:
            async def run():
                async with httpx.AsyncClient(http1=False, http2=True, timeout=60) as c:
                    url = "http://127.0.0.1:%d/hang?1" % s.port
                    assert (await c.get(url)).status_code == 200  # warm: the app is loaded
                    t0 = time.monotonic()
                    rs = await asyncio.gather(*[c.get(url) for _ in range(12)])
                    return rs, time.monotonic() - t0

            rs, took = asyncio.run(run())
            assert [(r.http_version, r.status_code, r.text) for r in rs] == \
                [("HTTP/2", 200, "woke up")] * 12
            assert lo < took < hi, (tmax, took)
        finally:
            assert s.stop() == 0, s.text()


def test_slow_body_is_408_per_stream():
    # Two uploads trickled below the rate floor (1024 B/s after 2 s) on one
    # connection: one streamed to its handler (larger than the stream
    # window), one still waiting to be read whole. Each gets 408; the
    # connection still serves a new stream.
    s = Server()
    try:
        c = raw_conn(s)
        enc = hpack.Encoder()
        c.sendall(frame(HEADERS, END_HEADERS, 1,
                        request_block(enc, "/sha", "POST", [("content-length", "200000")])) +
                  frame(HEADERS, END_HEADERS, 3,
                        request_block(enc, "/sha", "POST", [("content-length", "5000")])))
        # 2 DATA frames of 25 bytes every 0.1 s: 250 B/s for each stream.
        fill = frame(DATA, 0, 1, b"x" * 25) + frame(DATA, 0, 3, b"y" * 25)
        t = Trickler(c, b"", 100, 10, fill=fill)
        t0 = time.monotonic()
        t.start()
        fr = read_frames(c, until=lambda fs: {1, 3} <= set(statuses(fs)), timeout=15)
        took = time.monotonic() - t0
        assert statuses(fr) == {1: 408, 3: 408}, fr
        assert took < 10, took
        t.stop.set()
        t.join(5)
        c.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 5, request_block(enc, "/hello")))
        fr = read_frames(c, until=lambda fs: any(f[2] == 5 and f[1] & END_STREAM for f in fs))
        assert b"".join(p for ty, _, sid, p in fr if ty == DATA and sid == 5) == b"hello"
        c.close()
    finally:
        assert s.stop() == 0, s.text()


def test_memory_cap_counts_stream_buffers():
    # Non-sanitizer build (as test_serve's memory cap test). The app takes
    # all of its budget but 16 KiB and answers while it still holds it all
    # (it lets go when the server closes the body). Over HTTP/1.1, whose
    # buffers are not charged, that answer goes out; over HTTP/2 the stream's
    # 64 KiB response buffer does not fit what is left: 503. Then HTTP/2 is
    # served again.
    binary = plain_build()
    if not binary:
        pytest.skip("cannot build build/mse")
    s = Server(binary=binary, args=["--memory", "256", "--threads", "2"])
    try:
        assert s.get("/fillanswer?16") == b"filled" * 65536
        assert h2_get(s, "/fillanswer?16")[0] == 503
        assert h2_get(s, "/hello") == (200, b"hello")
        assert s.get("/fillanswer?16") == b"filled" * 65536
    finally:
        assert s.stop() == 0, s.text()
    assert "would go over the memory cap: refused" in s.output, s.output


# ---- the corpora: the same answers over HTTP/2 as over HTTP/1.1 ------------------------------

WSGI_CORPUS = [
    ("GET", "/hello", None), ("HEAD", "/head", None), ("GET", "/head", None),
    ("POST", "/sha", b"abc" * 100000), ("POST", "/sha", b""), ("GET", "/lines", None),
    ("GET", "/write", None), ("GET", "/gen", None), ("GET", "/close", None),
    ("GET", "/excinfo", None), ("GET", "/big?300000", None), ("GET", "/nope", None),
    ("GET", "/raise", None), ("GET", "/badstatus", None), ("GET", "/badheader", None),
    ("GET", "/twice", None), ("GET", "/nostart", None), ("GET", "/hop", None),
    ("GET", "/short", None), ("GET", "/long", None), ("GET", "/strbody", None),
    ("GET", "/environ?a=1&b=%C3%A9", None),
]


def norm(status, headers, body, port):
    hs = sorted((k.lower(), v.replace(str(port), "PORT")) for k, v in headers if k.lower() not in SKIP)
    return status, hs, body.replace(str(port).encode(), b"PORT")


def h1_exchange(server, method, path, body, headers, tls_files=None):
    if tls_files:
        ctx = ssl.create_default_context(cafile=tls_files[0])
        c = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=60)
    else:
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return norm(r.status, r.getheaders(), r.read(), server.port)
    except (http.client.HTTPException, OSError) as e:
        return ("broken", type(e).__name__)
    finally:
        c.close()


def h2_exchange(client, server, scheme, method, path, body, headers):
    try:
        r = client.request(method, "%s://127.0.0.1:%d%s" % (scheme, server.port, path),
                           content=body, headers=headers)
        assert r.http_version == "HTTP/2"
        return norm(r.status_code, r.headers.multi_items(), r.content, server.port)
    except httpx.HTTPError as e:
        return ("broken", type(e).__name__)


def test_wsgi_corpus_same_answers(tls_server, tls_files):
    hdrs = {"accept": "*/*", "user-agent": "corpus", "accept-encoding": "identity"}
    with httpx.Client(http2=True, verify=tls_files[0], timeout=60) as c:
        for method, path, body in WSGI_CORPUS:
            a = h1_exchange(tls_server, method, path, body, hdrs, tls_files)
            b = h2_exchange(c, tls_server, "https", method, path, body, hdrs)
            if path.startswith("/environ"):
                e1, e2 = json.loads(a[2]), json.loads(b[2])
                assert (e1.pop("SERVER_PROTOCOL"), e2.pop("SERVER_PROTOCOL")) == ("HTTP/1.1", "HTTP/2")
                for e in (e1, e2):
                    e.pop("REMOTE_PORT")
                assert e1 == e2
                continue
            if a[0] == "broken":
                # A response the app broke mid-body: HTTP/2 resets the stream instead.
                assert b[0] == "broken" or b[0] == 200, (path, a, b)
                continue
            assert a == b, "%s %s differs:\nh1 %r\nh2 %r" % (method, path, a, b)


@pytest.mark.parametrize("framework", ["fastapi", "starlette"])
def test_asgi_corpus_same_answers(framework):
    from test_asgi import corpus
    srv = Server(app="asgi_%s:app" % framework)
    try:
        with httpx.Client(http1=False, http2=True, timeout=120) as c:
            for method, path, body, headers in corpus(framework):
                if path.startswith("/background"):
                    continue  # stateful across requests
                hdrs = dict(headers, **{"user-agent": "corpus", "accept": "*/*",
                                        "accept-encoding": "identity"})
                if isinstance(body, str):
                    body = body.encode()
                a = h1_exchange(srv, method, path, body, hdrs)
                b = h2_exchange(c, srv, "http", method, path, body, hdrs)
                if b"http_version" in a[2]:  # the scope says which protocol it was
                    assert b'"http_version":"2"' in b[2]
                    body = b[2].replace(b'"http_version":"2"', b'"http_version":"1.1"')
                    hs = [(k, str(len(body)) if k == "content-length" else v) for k, v in b[1]]
                    b = (b[0], hs, body)
                assert a == b, "%s %s differs:\nh1 %r\nh2 %r" % (method, path, a[:2], b[:2])
            r = c.get("http://127.0.0.1:%d/" % srv.port)
            assert r.http_version == "HTTP/2"
    finally:
        assert srv.stop() == 0, srv.text()
