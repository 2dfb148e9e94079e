# SPDX-License-Identifier: Apache-2.0
"""A Starlette app for the ASGI corpus (tests/e2e/test_asgi.py): same requests
under uvicorn and mse serve, same answers."""
import hashlib

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

DONE = []


async def root(request):
    return JSONResponse({"hello": "world"})


async def get_item(request):
    return JSONResponse({"item_id": request.path_params["item_id"], "q": request.query_params.get("q")})


async def create_item(request):
    try:
        data = await request.json()
    except ValueError:
        return JSONResponse({"error": "invalid json"}, status_code=422)
    if not isinstance(data, dict) or "name" not in data:
        return JSONResponse({"error": "name required"}, status_code=422)
    return JSONResponse({"name": data["name"]}, status_code=201)


async def stream(request):
    n = int(request.query_params.get("n", "5"))
    size = int(request.query_params.get("size", "10"))

    async def gen():
        for i in range(n):
            yield (b"%06d:" % i) + b"x" * size + b"\n"
    return StreamingResponse(gen(), media_type="text/plain")


async def upload(request):
    h = hashlib.sha256()
    n = 0
    async for chunk in request.stream():
        h.update(chunk)
        n += len(chunk)
    return JSONResponse({"size": n, "sha256": h.hexdigest()})


async def echo(request):
    return Response(await request.body(), media_type=request.headers.get("content-type"))


def remember(what):
    DONE.append(what)


async def background(request):
    what = request.path_params["what"]
    return JSONResponse({"queued": what}, background=BackgroundTask(remember, what))


async def background_done(request):
    return JSONResponse({"done": DONE})


async def set_cookie(request):
    r = JSONResponse({"set": True})
    r.set_cookie("session", "abc123", httponly=True, max_age=60)
    r.set_cookie("theme", "dark")
    return r


async def get_cookie(request):
    return JSONResponse({"session": request.cookies.get("session"), "theme": request.cookies.get("theme")})


async def redirect(request):
    return RedirectResponse("/items/7?q=moved")


async def headers(request):
    return JSONResponse({"x-custom": request.headers.getlist("x-custom"), "method": request.method,
                         "path": request.url.path, "query": str(request.query_params),
                         "raw_path": request.scope["raw_path"].decode("latin-1")})


async def text(request):
    return PlainTextResponse("plain text\n")


async def fail(request):
    raise RuntimeError("boom")


app = Starlette(routes=[
    Route("/", root),
    Route("/items/{item_id:int}", get_item),
    Route("/items", create_item, methods=["POST"]),
    Route("/stream", stream),
    Route("/upload", upload, methods=["POST"]),
    Route("/echo", echo, methods=["POST"]),
    Route("/background/{what}", background, methods=["POST"]),
    Route("/background", background_done),
    Route("/cookie/set", set_cookie),
    Route("/cookie/get", get_cookie),
    Route("/redirect", redirect),
    Route("/headers", headers),
    Route("/text", text),
    Route("/fail", fail),
])
