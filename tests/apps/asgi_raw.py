# SPDX-License-Identifier: Apache-2.0
"""Raw ASGI apps that check the server against the ASGI spec itself
(asgi.readthedocs.io: "HTTP & WebSocket ASGI Message Format" 2.3, "Lifespan
Protocol" 2.0): the app asserts what it is given, and reports it.
Used by tests/e2e/test_asgi.py and tests/unit/test_asgi.c."""
import asyncio
import json
import os
import time

STATS = {"produced": 0, "disconnects": [], "shutdown": None}
GATHER = {}


async def _json(send, obj, status=200):
    body = json.dumps(obj, sort_keys=True).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(scope, receive, send):
    assert scope["asgi"]["version"] == "3.0", scope
    state = scope["state"]  # ASGI lifespan 2.0: the server must give a dict
    assert isinstance(state, dict) and not state, state
    msg = await receive()
    assert msg == {"type": "lifespan.startup"}, msg
    state["started"] = True
    state["started_at"] = time.time()
    await send({"type": "lifespan.startup.complete"})
    msg = await receive()
    assert msg == {"type": "lifespan.shutdown"}, msg
    mark = os.environ.get("ASGI_SHUTDOWN_MARK")
    if mark:
        with open(mark, "w") as f:
            json.dump({"produced": STATS["produced"], "done": STATS.get("done", 0)}, f)
    await send({"type": "lifespan.shutdown.complete"})


async def _websocket(scope, receive, send):
    assert (await receive()) == {"type": "websocket.connect"}
    path = scope["path"]
    if path == "/ws/deny":
        await send({"type": "websocket.close", "code": 1008})
        return
    if path == "/ws/scope":
        await send({"type": "websocket.accept", "subprotocol": (scope["subprotocols"] or [None])[0],
                    "headers": [(b"x-ws", b"yes")]})
        await send({"type": "websocket.send", "text": json.dumps({
            "keys": sorted(scope), "scheme": scope["scheme"], "path": scope["path"],
            "query_string": scope["query_string"].decode(), "subprotocols": scope["subprotocols"],
            "state": scope["state"].get("started"), "asgi": scope["asgi"]})})
        await send({"type": "websocket.close", "code": 1000})
        return
    await send({"type": "websocket.accept"})
    while True:  # /ws/echo
        m = await receive()
        if m["type"] == "websocket.disconnect":
            STATS.setdefault("ws_codes", []).append(m["code"])
            return
        if m.get("text") == "close-me":
            await send({"type": "websocket.close", "code": 4001, "reason": "asked to"})
            continue
        if m.get("text") is not None:
            await send({"type": "websocket.send", "text": m["text"]})
        else:
            await send({"type": "websocket.send", "bytes": m["bytes"]})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(scope, receive, send)
    if scope["type"] == "websocket":
        return await _websocket(scope, receive, send)
    assert scope["type"] == "http", scope
    path = scope["path"]
    if path == "/state":
        st = scope["state"]
        seen = st.get("mine")
        st["mine"] = scope["query_string"].decode()  # a shallow copy per request: never seen by the next
        return await _json(send, {"started": st.get("started"), "seen": seen})
    if path.startswith("/scope"):
        h = scope["headers"]
        return await _json(send, {
            "keys": sorted(scope), "asgi": scope["asgi"], "http_version": scope["http_version"],
            "method": scope["method"], "scheme": scope["scheme"], "path": scope["path"],
            "raw_path": scope["raw_path"].decode("latin-1"), "raw_path_bytes": isinstance(scope["raw_path"], bytes),
            "query_string": scope["query_string"].decode("latin-1"),
            "qs_bytes": isinstance(scope["query_string"], bytes), "root_path": scope["root_path"],
            "headers_ok": all(isinstance(k, bytes) and isinstance(v, bytes) and k == k.lower() for k, v in h),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in h],
            "client": list(scope["client"]), "server_port": scope["server"][1]})
    if path == "/chunks":
        sizes, mores = [], []
        while True:
            m = await receive()
            assert m["type"] == "http.request", m
            sizes.append(len(m["body"]))
            mores.append(m["more_body"])
            if not m["more_body"]:
                break
        return await _json(send, {"total": sum(sizes), "n": len(sizes), "max": max(sizes),
                                  "last_more": mores[-1], "all_more_before": all(mores[:-1])})
    if path == "/disconnect":
        while (await receive())["more_body"]:
            pass
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        m = await asyncio.wait_for(receive(), 10)
        STATS["disconnects"].append(m["type"])
        return
    if path == "/wait-disconnect":
        # No response until the client goes: receive() must say http.disconnect.
        t0 = time.time()
        while (await receive())["more_body"]:
            pass
        try:
            m = await asyncio.wait_for(receive(), 10)
            STATS.setdefault("waited", []).append([m["type"], round(time.time() - t0, 2)])
        except asyncio.TimeoutError:
            STATS.setdefault("waited", []).append(["timeout", 10])
        await _json(send, {"too": "late"})
        return
    if path == "/disconnects":
        return await _json(send, {"disconnects": STATS["disconnects"], "produced": STATS["produced"],
                                  "ws_codes": STATS.get("ws_codes", []), "waited": STATS.get("waited", [])})
    if path == "/produce":
        # Streams `mib` MiB as fast as send() lets it: with back-pressure a
        # client that reads nothing stops the app after a bounded amount.
        mib = int(scope["query_string"].decode().partition("=")[2] or "64")
        STATS["produced"] = 0
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(mib << 20).encode())]})
        block = b"p" * (1 << 20)
        for _ in range(mib):
            await send({"type": "http.response.body", "body": block, "more_body": True})
            STATS["produced"] += len(block)
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/sleep":
        await asyncio.sleep(float(scope["query_string"].decode().partition("=")[2] or "1"))
        STATS["done"] = STATS.get("done", 0) + 1
        return await _json(send, {"slept": True})
    if path == "/gather":
        # Waits until n requests of /gather are in the app at once (each
        # server thread waits on the loop for its request): met, or not
        # within 15 s.
        n = int(scope["query_string"].decode().partition("=")[2])
        g = GATHER.setdefault("g", {"in": 0, "peak": 0, "event": asyncio.Event()})
        g["in"] += 1
        g["peak"] = max(g["peak"], g["in"])
        if g["in"] >= n:
            g["event"].set()
        try:
            await asyncio.wait_for(g["event"].wait(), 15)
            met = True
        except asyncio.TimeoutError:
            met = False
        g["in"] -= 1
        return await _json(send, {"met": met, "peak": g["peak"]})
    if path == "/nobody":
        return  # returns without a response: the server answers 500
    if path == "/raise":
        raise ValueError("raised before the response")
    if path == "/badheaders":
        await send({"type": "http.response.start", "status": 200, "headers": [("str", "not bytes")]})
        return
    if path == "/twice":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        return
    await _json(send, {"error": "not found", "path": path}, 404)


class App2:
    """ASGI 2 double callable: App2(scope) -> instance; await instance(receive, send)."""

    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] == "lifespan":
            m = await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await _json(send, {"asgi2": True, "version": self.scope["asgi"]["version"], "path": self.scope["path"]})


async def failing_startup(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable at db:5432"})
        return
    await _json(send, {})


async def raising_startup(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        raise RuntimeError("config file missing: /etc/app.toml")
    await _json(send, {})


async def no_lifespan(scope, receive, send):
    if scope["type"] != "http":
        raise ValueError("only http is supported")
    await _json(send, {"lifespan": False})


def four_args(a, b, c, d):
    return None


async def async_two(scope, receive):
    return None


not_callable = 42
