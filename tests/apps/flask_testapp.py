# SPDX-License-Identifier: Apache-2.0
"""A Flask app exercising what real apps lean on: JSON bodies, multipart
uploads (werkzeug reads wsgi.input in pieces), send_file (werkzeug uses
wsgi.file_wrapper), streamed responses, errors and redirects."""
import hashlib
import os

from flask import Flask, Response, jsonify, redirect, request, send_file, stream_with_context

app = Flask(__name__)


@app.post("/json")
def echo_json():
    data = request.get_json()
    return jsonify(received=data, n=len(data))


@app.post("/upload")
def upload():
    out = {}
    for name, f in request.files.items():
        h = hashlib.sha256()
        n = 0
        while True:
            b = f.stream.read(65536)
            if not b:
                break
            n += len(b)
            h.update(b)
        out[name] = [f.filename, n, h.hexdigest()]
    out["fields"] = dict(request.form)
    return jsonify(out)


@app.get("/download")
def download():
    return send_file(request.args["path"], mimetype="application/octet-stream")


@app.get("/stream")
def stream():
    n = int(request.args.get("n", "10"))

    def gen():
        for i in range(n):
            yield "line %d\n" % i
    return Response(stream_with_context(gen()), mimetype="text/plain")


@app.get("/redirect")
def go():
    return redirect("/json")


@app.get("/fail")
def fail():
    raise KeyError("flask failure")


@app.get("/env")
def env():
    return jsonify(scheme=request.scheme, host=request.host, path=request.path,
                   args=request.args.to_dict(), remote=request.remote_addr,
                   ua=request.headers.get("User-Agent"), pid=os.getpid())
