# SPDX-License-Identifier: Apache-2.0
"""WebSockets (RFC 6455) through mse serve, with python3-websockets as the
client: echo, 1 MiB messages, fragmented messages, ping/pong, a client that
vanishes, invalid frames (1002), oversize (1009); and the same FastAPI app
under uvicorn (whose WebSockets are python3-websockets too) answering the
same script identically. Servers listen on 127.0.0.1 only."""
import asyncio
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import time

import pytest
import websockets

sys.path.insert(0, os.path.dirname(__file__))
from test_asgi import Uvicorn, get_json  # noqa: E402
from test_serve import Server  # noqa: E402


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


async def script(url):
    """What the comparison with uvicorn runs: the transcript of answers."""
    out = []
    async with websockets.connect(url + "/ws/echo", subprotocols=["chat", "other"], max_size=None) as ws:
        out.append(("subprotocol", ws.subprotocol))
        await ws.send("hello")
        out.append(("text", await ws.recv()))
        await ws.send(b"\x00\x01binary")
        out.append(("bytes", await ws.recv()))
        await ws.send(["frag", "mented ", "text"])  # one message in three frames
        out.append(("fragmented", await ws.recv()))
        big = os.urandom(1 << 20)
        await ws.send(big)
        out.append(("1MiB", (await ws.recv()) == big))
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 10)
        out.append(("pong", True))
        await ws.send("close-me")
        try:
            await ws.recv()
        except websockets.ConnectionClosed as e:
            out.append(("closed by app", e.code, e.reason))
    try:
        async with websockets.connect(url + "/ws/deny") as ws:
            out.append(("deny", "accepted?!"))
    except websockets.InvalidStatusCode as e:
        out.append(("deny", e.status_code))
    async with websockets.connect(url + "/ws/echo") as ws:
        await ws.close(code=4321, reason="bye")
        out.append(("client close", ws.close_code))
    return out


def test_same_transcript_as_uvicorn():
    results = {}
    for name in ("uvicorn", "mse"):
        srv = Uvicorn("asgi_fastapi:app") if name == "uvicorn" else Server(app="asgi_fastapi:app")
        try:
            results[name] = run(script("ws://127.0.0.1:%d" % srv.port))
            time.sleep(0.3)
            c = srv.conn()
            c.request("GET", "/ws/codes")
            results[name].append(("codes seen by the app", json.loads(c.getresponse().read())["codes"]))
        finally:
            if name == "uvicorn":
                srv.stop()
            else:
                assert srv.stop() == 0, srv.text()
    assert results["mse"] == results["uvicorn"]
    assert ("1MiB", True) in results["mse"]
    assert ("closed by app", 4001, "asked to") in results["mse"]
    assert ("deny", 403) in results["mse"]


@pytest.fixture(scope="module")
def raw():
    s = Server(app="asgi_raw:app")
    yield s
    s.stop()


def frame(op, payload, fin=True, mask=True):
    b = bytes([(0x80 if fin else 0) | op])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        b += bytes([m | n])
    elif n < 65536:
        b += bytes([m | 126]) + struct.pack(">H", n)
    else:
        b += bytes([m | 127]) + struct.pack(">Q", n)
    if mask:
        k = os.urandom(4)
        b += k + bytes(c ^ k[i % 4] for i, c in enumerate(payload))
    else:
        b += payload
    return b


def handshake(port, path="/ws/echo"):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % path).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head  # RFC 6455 §1.3's example
    return s


def read_frame(s):
    def need(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise EOFError
            b += c
        return b
    h = need(2)
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", need(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", need(8))[0]
    return h[0] & 0x0F, need(n)


def test_invalid_frames_close_1002(raw):
    for bad in (frame(1, b"unmasked", mask=False), frame(3, b"reserved opcode"),
                frame(9, b"p" * 126), frame(9, b"fragmented ping", fin=False)):
        s = handshake(raw.port)
        s.sendall(bad)
        op, payload = read_frame(s)
        assert op == 8 and struct.unpack(">H", payload[:2])[0] == 1002, (bad[:4], payload)
        s.close()


def test_oversize_closes_1009(raw):
    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/ws/echo" % raw.port, max_size=None) as ws:
            with pytest.raises(websockets.ConnectionClosed) as e:
                await ws.send(b"x" * ((16 << 20) + 1))
                await ws.recv()
            return e.value.code
    assert run(go()) == 1009


def test_vanished_client(raw):
    s = handshake(raw.port)
    s.sendall(frame(1, b"one"))
    assert read_frame(s) == (1, b"one")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # RST: no close frame
    deadline = time.time() + 10
    while time.time() < deadline:
        codes = get_json(raw, "/disconnects")["ws_codes"]
        if 1006 in codes:
            break
        time.sleep(0.05)
    assert 1006 in codes


def test_many_sockets_one_loop(raw):
    async def go():
        conns = [await websockets.connect("ws://127.0.0.1:%d/ws/echo" % raw.port) for _ in range(200)]
        for i, ws in enumerate(conns):
            await ws.send("m%d" % i)
        got = [await ws.recv() for ws in conns]
        for ws in conns:
            await ws.close()
        return got
    assert run(go()) == ["m%d" % i for i in range(200)]


def test_wss_and_shutdown_going_away(tmp_path):
    cert, key = str(tmp_path / "c.pem"), str(tmp_path / "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-subj", "/CN=localhost", "-keyout", key, "-out", cert, "-days", "2"],
                   check=True, capture_output=True)
    s = Server(app="asgi_raw:app", tls=(cert, key))
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False

    async def go():
        async with websockets.connect("wss://127.0.0.1:%d/ws/scope" % s.port, ssl=ctx) as ws:
            scope = json.loads(await ws.recv())
        assert scope["scheme"] == "wss"
        ws = await websockets.connect("wss://127.0.0.1:%d/ws/echo" % s.port, ssl=ctx)
        await ws.send("x")
        assert await ws.recv() == "x"
        s.proc.send_signal(15)  # SIGTERM: the server goes away, 1001
        with pytest.raises(websockets.ConnectionClosed) as e:
            await ws.recv()
        return e.value.code
    try:
        assert run(go()) == 1001
    finally:
        assert s.stop() == 0, s.text()
