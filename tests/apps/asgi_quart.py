# SPDX-License-Identifier: Apache-2.0
"""A Quart app for the ASGI corpus (tests/e2e/test_asgi.py): same requests
under uvicorn and mse serve, same answers."""
import hashlib

from quart import Quart, jsonify, make_response, redirect as quart_redirect, request

app = Quart(__name__)
app.config["MAX_CONTENT_LENGTH"] = 64 << 20  # the corpus uploads 50 MiB (default 16 MiB)
DONE = []


@app.route("/")
async def root():
    return jsonify(hello="world")


@app.route("/items/<int:item_id>")
async def get_item(item_id):
    return jsonify(item_id=item_id, q=request.args.get("q"))


@app.route("/items", methods=["POST"])
async def create_item():
    data = await request.get_json(silent=True)
    if not isinstance(data, dict) or "name" not in data:
        return jsonify(error="name required"), 422
    return jsonify(name=data["name"]), 201


@app.route("/stream")
async def stream():
    n = int(request.args.get("n", "5"))
    size = int(request.args.get("size", "10"))

    async def gen():
        for i in range(n):
            yield (b"%06d:" % i) + b"x" * size + b"\n"
    return gen(), 200, {"content-type": "text/plain"}


@app.route("/upload", methods=["POST"])
async def upload():
    h = hashlib.sha256()
    n = 0
    async for chunk in request.body:
        h.update(chunk)
        n += len(chunk)
    return jsonify(size=n, sha256=h.hexdigest())


@app.route("/echo", methods=["POST"])
async def echo():
    data = await request.get_data()
    return data, 200, {"content-type": request.headers.get("content-type", "application/octet-stream")}


def remember(what):
    DONE.append(what)


@app.route("/background/<what>", methods=["POST"])
async def background(what):
    app.add_background_task(remember, what)
    return jsonify(queued=what)


@app.route("/background")
async def background_done():
    return jsonify(done=DONE)


@app.route("/cookie/set")
async def set_cookie():
    r = await make_response(jsonify(set=True))
    r.set_cookie("session", "abc123", httponly=True, max_age=60)
    r.set_cookie("theme", "dark")
    return r


@app.route("/cookie/get")
async def get_cookie():
    return jsonify(session=request.cookies.get("session"), theme=request.cookies.get("theme"))


@app.route("/redirect")
async def redirect():
    return quart_redirect("/items/7?q=moved")


@app.route("/headers")
async def headers():
    return jsonify({"x-custom": request.headers.getlist("x-custom"), "method": request.method,
                    "path": request.path, "query": request.query_string.decode()})


@app.route("/text")
async def text():
    return "plain text\n", 200, {"content-type": "text/plain; charset=utf-8"}


@app.route("/fail")
async def fail():
    raise RuntimeError("boom")
