# SPDX-License-Identifier: Apache-2.0
"""WSGI test apps for mse-c's bridge (unit tests through a fake exchange,
e2e tests through `mse serve`). Each route is a plain WSGI app; the ones
that follow the spec are wrapped in wsgiref.validate.validator with its
warnings turned into errors, so any complaint fails the request (500) and
any complaint at garbage collection is recorded by the unraisable hook and
reported by /unraisable."""
import hashlib
import json
import os
import random
import sys
import threading
import time
import warnings
from wsgiref import validate

warnings.simplefilter("error", validate.WSGIWarning)

UNRAISABLE = []


def _unraisable(info):
    UNRAISABLE.append("%s: %r" % (info.err_msg, info.exc_value))


sys.unraisablehook = _unraisable

STATE = {"closed": 0}
LOCK = threading.Lock()


def text(start_response, body, status="200 OK", ctype="text/plain"):
    body = body.encode() if isinstance(body, str) else body
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def environ_app(environ, start_response):
    keys = [k for k in environ if k.isupper()]
    out = {k: environ[k] for k in keys}
    out["wsgi.version"] = list(environ["wsgi.version"])
    for k in ("wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
              "wsgi.input_terminated"):
        out[k] = environ.get(k)
    return text(start_response, json.dumps(out, sort_keys=True), ctype="application/json")


def sha_app(environ, start_response):
    """Streams the body in read(n) pieces; answers its size and SHA-256."""
    inp = environ["wsgi.input"]
    h = hashlib.sha256()
    n = 0
    while True:
        b = inp.read(65536)
        if not b:
            break
        n += len(b)
        h.update(b)
    return text(start_response, "%d %s" % (n, h.hexdigest()))


def lines_app(environ, start_response):
    inp = environ["wsgi.input"]
    mode = environ["QUERY_STRING"]
    if mode == "readline":
        out = []
        while True:
            line = inp.readline()
            if not line:
                break
            out.append(line.decode("latin-1"))
    elif mode == "readline3":
        out = []
        while True:
            line = inp.readline(3)
            if not line:
                break
            out.append(line.decode("latin-1"))
    elif mode == "readhuge":
        # A terabyte asked for, a few bytes there: nothing is allocated up front.
        out = [inp.read(10 ** 12).decode("latin-1")]
    elif mode == "readlines":
        out = [x.decode("latin-1") for x in inp.readlines()]
    elif mode == "iter":
        out = [x.decode("latin-1") for x in inp]
    else:
        out = [inp.read(1 << 20).decode("latin-1")]
    return text(start_response, json.dumps(out), ctype="application/json")


def read_all_app(environ, start_response):
    data = environ["wsgi.input"].read()
    return text(start_response, "%d %s" % (len(data), hashlib.sha256(data).hexdigest()))


def write_app(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"abc")
    write(b"def")
    return [b"ghi"]


def gen_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    n = int(environ["QUERY_STRING"] or "3")

    def gen():
        for i in range(n):
            yield b""
            yield (b"%08d\n" % i)
    return gen()


class Closing:
    def __init__(self, chunks, fail=False):
        self.chunks = chunks
        self.fail = fail

    def __iter__(self):
        for c in self.chunks:
            yield c
        if self.fail:
            raise RuntimeError("iteration failed on purpose")

    def close(self):
        with LOCK:
            STATE["closed"] += 1


def close_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Closing([b"one", b"two"], fail=environ["QUERY_STRING"] == "fail")


def closed_count_app(environ, start_response):
    return text(start_response, str(STATE["closed"]))


def excinfo_app(environ, start_response):
    """Starts a 200, fails before the body, replaces it with a 503 (PEP 3333)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("backend down")
    except ValueError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain"),
                                                  ("Content-Length", "5")], sys.exc_info())
    return [b"sorry"]


def excinfo_late_app(environ, start_response):
    """Fails after the headers went out: start_response must re-raise."""
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        yield b"partial"
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                           sys.exc_info())
        yield b"never"
    return gen()


def file_app(environ, start_response):
    """?path=P[&skip=N][&cl=0][&bytesio=1]: the file from offset N through wsgi.file_wrapper."""
    import io
    import urllib.parse
    q = urllib.parse.parse_qs(environ["QUERY_STRING"])
    path = q["path"][0]
    skip = int(q.get("skip", ["0"])[0])
    if q.get("bytesio", ["0"])[0] == "1":
        f = io.BytesIO(open(path, "rb").read())
    else:
        f = open(path, "rb")
    f.read(skip)  # a buffered file reads ahead: the bridge must start at tell()
    headers = [("Content-Type", "application/octet-stream")]
    if q.get("cl", ["1"])[0] == "1":
        headers.append(("Content-Length", str(os.path.getsize(path) - skip)))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 8192)


def errors_app(environ, start_response):
    environ["wsgi.errors"].write("wsgi-errors-line-1\nwsgi-errors-")
    environ["wsgi.errors"].writelines(["line-2\n"])
    environ["wsgi.errors"].flush()
    return text(start_response, "logged")


def slow_read_app(environ, start_response):
    """Blocks in wsgi.input (the fake exchange sleeps): the GIL must be free meanwhile."""
    data = environ["wsgi.input"].read(10)
    return text(start_response, data)


def big_app(environ, start_response):
    n = int(environ["QUERY_STRING"])
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(n))])

    def gen():
        block = b"x" * 65536
        left = n
        while left:
            k = min(left, len(block))
            yield block[:k]
            left -= k
    return gen()


def pattern_bytes(n):
    """n bytes that never repeat a block: a lost, doubled or reordered piece shows."""
    return random.Random(n).randbytes(n)


def pattern_app(environ, start_response):
    """QUERY_STRING "N": N pattern bytes as one piece; "N:K": in pieces of
    K bytes; both with a Content-Length; "N:K:chunked": in pieces of K
    bytes, without (chunked framing)."""
    parts = environ["QUERY_STRING"].split(":")
    body = pattern_bytes(int(parts[0]))
    k = int(parts[1]) if len(parts) > 1 else len(body)
    headers = [("Content-Type", "application/octet-stream")]
    if len(parts) < 3:
        headers.append(("Content-Length", str(len(body))))
    start_response("200 OK", headers)
    return [body[i:i + k] for i in range(0, len(body), k)]


# One bytes object answered by every /held request: the bridge sends the
# last piece of a response straight from the app's bytes (no copy), keeping
# a reference until the worker next holds the GIL; /held-refs shows that
# reference went (sys.getrefcount of SENT_FROM does not grow).
SENT_FROM = pattern_bytes(70001)


def held_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(SENT_FROM)))])
    return [SENT_FROM]


def held_refs_app(environ, start_response):
    return text(start_response, str(sys.getrefcount(SENT_FROM)))


def sleep_app(environ, start_response):
    """Answers in two chunks a delay apart (a request in flight for shutdown tests)."""
    delay = float(environ["QUERY_STRING"] or "1")
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        yield b"first "
        time.sleep(delay)
        yield b"second"
    return gen()


def hang_app(environ, start_response):
    """Does not answer for QUERY_STRING seconds (default 600): a stuck request."""
    time.sleep(float(environ["QUERY_STRING"] or "600"))
    return text(start_response, "woke up")


def hello_app(environ, start_response):
    return text(start_response, "hello")


def head_app(environ, start_response):
    return text(start_response, "body-of-get")


def unraisable_app(environ, start_response):
    return text(start_response, json.dumps(UNRAISABLE), ctype="application/json")


def subprocess_app(environ, start_response):
    import subprocess
    what = environ["QUERY_STRING"]
    try:
        if what == "fork":
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
        elif what == "ctypes-fork":
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            pid = libc.fork()
            if pid == 0:
                libc._exit(0)
            if pid < 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        elif what == "system":
            os.system("true")
        elif what == "popen":
            os.popen("true").read()
        else:
            subprocess.run(["/bin/true"], check=True)
        return text(start_response, "ran")
    except OSError as e:
        return text(start_response, "%s errno=%s %s" % (type(e).__name__, e.errno, e.strerror))


def thread_app(environ, start_response):
    out = []
    t = threading.Thread(target=lambda: out.append(sum(range(1000))))
    t.start()
    t.join()
    return text(start_response, str(out[0]))


def memory_app(environ, start_response):
    mb = int(environ["QUERY_STRING"])
    try:
        blob = bytearray(mb * 1024 * 1024)
        n = len(blob)
        del blob
        return text(start_response, "allocated %d" % n)
    except MemoryError:
        return text(start_response, "MemoryError")


HELD = []
HELD_FREE = threading.Condition()


def fill(environ):
    """Holds memory until the cap refuses more (1 MiB, then 64 KiB, then
    4 KiB blocks), then gives back KEEP KiB (the query; default 32) so that
    Python itself can go on: what is left of the budget is then about KEEP."""
    keep = int(environ["QUERY_STRING"] or "32") * 1024
    for size in (1 << 20, 64 << 10, 4 << 10):
        while True:
            try:
                HELD.append(bytearray(size))
            except MemoryError:
                break
    # Give back KEEP in 4 KiB pieces: a larger block popped whole (when the
    # 4 KiB pass took fewer than KEEP's worth) would leave a block's room.
    freed = 0
    while freed < keep and HELD:
        b = HELD.pop()
        if len(b) > (4 << 10):
            del b
            while True:
                try:
                    HELD.append(bytearray(4 << 10))
                except MemoryError:
                    break
            continue
        freed += len(b)


# Made before any fill: larger than what the bridge gathers before it
# starts the answer, so the answer starts while the hold is still kept.
FILLED = b"filled" * 65536


class HeldUntilClosed:
    """A body whose hold is let go only when the server closes it. It fills
    again just before the server takes the body: room that another thread
    gave back meanwhile is taken too."""

    def __init__(self, environ):
        self.environ = environ

    def __iter__(self):
        # An earlier answer's close() may still be on its way (the client
        # has its last byte before the server closes the body): wait for
        # it, or its clear() would give this answer's hold back too.
        with HELD_FREE:
            HELD_FREE.wait_for(lambda: not HELD, timeout=10)
            fill(self.environ)
        yield FILLED

    def close(self):
        with HELD_FREE:
            HELD.clear()
            HELD_FREE.notify_all()


def fill_answer_app(environ, start_response):
    """Answers while holding all of the budget but KEEP KiB (taken by fill()
    when the server takes the body): the server's buffers for this
    answer must fit in what is left."""
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(FILLED)))])
    return HeldUntilClosed(environ)


def mmap_app(environ, start_response):
    """An anonymous mapping of MB megabytes, every page touched: memory that
    Python's allocator never sees (an enclave of the cap's size refuses it)."""
    import mmap
    mb = int(environ["QUERY_STRING"])
    try:
        m = mmap.mmap(-1, mb * 1024 * 1024)
    except OSError as e:
        return text(start_response, "refused: errno %d" % e.errno)
    try:
        for off in range(0, len(m), 4096):
            m[off] = 1
        return text(start_response, "mapped %d" % len(m))
    finally:
        m.close()


VALID = {
    "/environ": environ_app,
    "/sha": sha_app,
    "/lines": lines_app,
    "/write": write_app,
    "/gen": gen_app,
    "/close": close_app,
    "/closed": closed_count_app,
    "/excinfo": excinfo_app,
    "/file": file_app,
    "/errors": errors_app,
    "/slow": slow_read_app,
    "/big": big_app,
    "/pattern": pattern_app,
    "/held": held_app,
    "/held-refs": held_refs_app,
    "/hello": hello_app,
    "/sleep": sleep_app,
    "/hang": hang_app,
    "/head": head_app,
    "/unraisable": unraisable_app,
    "/subprocess": subprocess_app,
    "/thread": thread_app,
    "/memory": memory_app,
    "/mmap": mmap_app,
    "/fillanswer": fill_answer_app,
}
VALID = {k: validate.validator(v) for k, v in VALID.items()}


# Apps that break the spec on purpose: the bridge itself must catch them.
def read_peak_app(environ, start_response):
    """read() without a size, as werkzeug's get_data() calls it (which
    wsgiref.validate refuses, hence here): the body's size, SHA-256 and the
    peak of memory Python allocated meanwhile (tracemalloc), which shows
    whether the result was allocated at its size or grown and shrunk."""
    import tracemalloc
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        data = environ["wsgi.input"].read()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return text(start_response, "%d %s %d" % (len(data), hashlib.sha256(data).hexdigest(), peak))


def raise_app(environ, start_response):
    raise RuntimeError("boom from the app")


def bad_status_app(environ, start_response):
    start_response(environ["QUERY_STRING"].replace("+", " ") or "200OK", [])
    return [b"x"]


def bad_header_app(environ, start_response):
    what = environ["QUERY_STRING"]
    if what == "crlf":
        h = [("X-Bad", "a\r\nInjected: yes")]
    elif what == "name":
        h = [("Bad Name", "v")]
    elif what == "tuple":
        h = [["X-List", "v"]]
    elif what == "bytes":
        h = [(b"X-Bytes", "v")]
    elif what == "nonlist":
        h = (("X-Tuple", "v"),)
    elif what == "unicode":
        h = [("X-Snow", "\u2603")]
    else:
        h = [("Content-Length", "x1")]
    start_response("200 OK", h)
    return [b"x"]


def keywords_app(environ, start_response):
    """start_response by keyword, with PEP 3333's parameter names."""
    start_response(status="201 Created", response_headers=[("Content-Length", "2")], exc_info=None)
    return [b"kw"]


def twice_app(environ, start_response):
    start_response("200 OK", [])
    start_response("200 OK", [])
    return [b"x"]


def str_body_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["a str, not bytes"]


def no_start_app(environ, start_response):
    return [b"no start_response"]


def hop_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close"),
                              ("Keep-Alive", "timeout=5"), ("X-Kept", "yes"),
                              ("Content-Length", "2")])
    return [b"ok"]


def short_app(environ, start_response):
    start_response("200 OK", [("Content-Length", "10")])
    return [b"12345"]


def long_app(environ, start_response):
    start_response("200 OK", [("Content-Length", "3")])
    return [b"12345"]


def late_raise_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        yield b"partial"
        raise RuntimeError("late boom")
    return gen()


def close_raises_app(environ, start_response):
    class R:
        def __iter__(self):
            return iter([b"x"])

        def close(self):
            raise RuntimeError("close boom")
    start_response("200 OK", [("Content-Length", "1")])
    return R()


def keep_objects_app(environ, start_response):
    STATE["kept"] = (environ["wsgi.input"], start_response)
    return text(start_response, "kept")


def use_kept_app(environ, start_response):
    inp, sr = STATE["kept"]
    out = []
    for f in (lambda: inp.read(1), lambda: sr("200 OK", [])):
        try:
            f()
            out.append("no error")
        except Exception as e:
            out.append(type(e).__name__)
    return text(start_response, " ".join(out))


def keep_write_app(environ, start_response):
    """Keeps only the write() start_response returned (not start_response)."""
    STATE["kept_write"] = start_response("200 OK", [("Content-Type", "text/plain"),
                                                    ("Content-Length", "4")])
    return [b"kept"]


def use_kept_write_app(environ, start_response):
    """Calls the write() kept from an earlier request: it must refuse, never
    write into this response."""
    try:
        STATE["kept_write"](b"INJECTED")
        out = "no error"
    except Exception as e:
        out = type(e).__name__
    return text(start_response, out)


def shainto_app(environ, start_response):
    """Streams the body with readinto() into one reused buffer (QUERY_STRING:
    its size, default 65536; odd sizes cross every boundary); answers its size
    and SHA-256."""
    inp = environ["wsgi.input"]
    buf = bytearray(int(environ["QUERY_STRING"] or "65536"))
    view = memoryview(buf)
    h = hashlib.sha256()
    n = 0
    while True:
        k = inp.readinto(buf)
        if not k:
            break
        n += k
        h.update(view[:k])
    return text(start_response, "%d %s" % (n, h.hexdigest()))


# Unvalidated: read() without a size is allowed by PEP 3333 ("a server
# should allow read() to be called without an argument") but not by the validator.
INVALID = {
    "/readall": read_all_app,
    # The validator's input wrapper has no readinto (PEP 3333 asks for read,
    # readline, readlines and __iter__ only): the bridge offers it too.
    "/shainto": shainto_app,
    # Unwrapped, the bridge sees its own FileWrapper (the validator would hide it).
    "/rawfile": file_app,
    "/raise": raise_app,
    "/badstatus": bad_status_app,
    "/badheader": bad_header_app,
    "/twice": twice_app,
    "/kw": keywords_app,
    "/excinfo-late": excinfo_late_app,
    "/strbody": str_body_app,
    "/nostart": no_start_app,
    "/read-peak": read_peak_app,
    "/hop": hop_app,
    "/short": short_app,
    "/long": long_app,
    "/late-raise": late_raise_app,
    "/close-raises": close_raises_app,
    "/keep": keep_objects_app,
    "/use-kept": use_kept_app,
    "/keep-write": keep_write_app,
    "/use-kept-write": use_kept_write_app,
}


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    target = VALID.get(path) or INVALID.get(path)
    if target is None:
        if path.startswith("/environ"):
            target = VALID["/environ"]
        else:
            return text(start_response, "no route " + path, status="404 Not Found")
    return target(environ, start_response)
