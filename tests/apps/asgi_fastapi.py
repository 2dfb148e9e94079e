# SPDX-License-Identifier: Apache-2.0
"""A FastAPI app for the ASGI corpus: the same requests are answered by this app
under uvicorn and under mse serve, and must match (tests/e2e/test_asgi.py)."""
import hashlib
from typing import Optional

from fastapi import BackgroundTasks, Cookie, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel

app = FastAPI()
DONE = []


class Item(BaseModel):
    name: str
    price: float
    tags: list = []


@app.get("/")
async def root():
    return {"hello": "world"}


@app.get("/items/{item_id}")
async def get_item(item_id: int, q: Optional[str] = None, limit: int = 10):
    return {"item_id": item_id, "q": q, "limit": limit}


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "price": item.price, "tags": item.tags}


@app.get("/stream")
async def stream(n: int = 5, size: int = 10):
    async def gen():
        for i in range(n):
            yield (b"%06d:" % i) + b"x" * size + b"\n"
    return StreamingResponse(gen(), media_type="text/plain")


@app.post("/upload")
async def upload(request: Request):
    h = hashlib.sha256()
    n = chunks = 0
    async for chunk in request.stream():
        h.update(chunk)
        n += len(chunk)
        chunks += 1
    return {"size": n, "sha256": h.hexdigest(), "streamed": chunks > 1 or n < 65536}


@app.post("/echo")
async def echo(request: Request):
    return Response(await request.body(), media_type=request.headers.get("content-type"))


def remember(what):
    DONE.append(what)


@app.post("/background/{what}")
async def background(what: str, tasks: BackgroundTasks):
    tasks.add_task(remember, what)
    return {"queued": what}


@app.get("/background")
async def background_done():
    return {"done": DONE}


@app.get("/cookie/set")
async def set_cookie(response: Response):
    response.set_cookie("session", "abc123", httponly=True, max_age=60)
    response.set_cookie("theme", "dark")
    return {"set": True}


@app.get("/cookie/get")
async def get_cookie(session: Optional[str] = Cookie(None), theme: Optional[str] = Cookie(None)):
    return {"session": session, "theme": theme}


@app.get("/redirect")
async def redirect():
    return RedirectResponse("/items/7?q=moved")


@app.get("/redirect/permanent")
async def redirect_permanent():
    return RedirectResponse("/", status_code=301)


@app.get("/headers")
async def headers(request: Request):
    return {"x-custom": request.headers.getlist("x-custom"), "host": request.headers.get("host") is not None,
            "method": request.method, "path": request.url.path, "query": str(request.query_params),
            "raw_path": request.scope["raw_path"].decode("latin-1"), "http_version": request.scope["http_version"],
            "root_path": request.scope["root_path"]}


@app.get("/text", response_class=PlainTextResponse)
async def text():
    return "plain text\n"


@app.get("/fail")
async def fail():
    raise RuntimeError("boom")


from fastapi import WebSocket, WebSocketDisconnect  # noqa: E402

WS_CODES = []


@app.websocket("/ws/echo")
async def ws_echo(ws: WebSocket):
    await ws.accept(subprotocol=(ws.scope["subprotocols"] or [None])[0])
    try:
        while True:
            m = await ws.receive()
            if m["type"] == "websocket.disconnect":
                WS_CODES.append(m["code"])
                return
            if m.get("text") == "close-me":
                await ws.close(code=4001, reason="asked to")
                return
            if m.get("text") is not None:
                await ws.send_text(m["text"])
            else:
                await ws.send_bytes(m["bytes"])
    except WebSocketDisconnect as e:
        WS_CODES.append(e.code)


@app.websocket("/ws/deny")
async def ws_deny(ws: WebSocket):
    await ws.close(code=1008)


@app.get("/ws/codes")
async def ws_codes():
    return {"codes": WS_CODES}
