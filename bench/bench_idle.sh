#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# 10,000 idle keep-alive TLS connections (issue 21): `mse serve` (Flask
# hello-world, P-256 certificate, --idle-timeout 600 so they stay) is sent
# N connections, each makes one request over TLS 1.3 and stays open, idle.
# Reports the server's RSS per idle connection ((RSS with N open - RSS
# before) / N), then, with the N still open, the latency of NEW connections
# (connect + TLS handshake + GET + answer, one after the other, 200 of
# them): p50 and p99; finally that a sample of the idle ones still answers.
# Clients bind to 127.0.0.2..127.0.0.51 (at most 200 per address: the
# server bounds connections per address, 256 by default).
#
#   bench/bench_idle.sh            N=10000
#   N=2000 bench/bench_idle.sh     a quick trial
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${MSE_PYTHON:-/usr/bin/python3}
MSE=${MSE_BIN:-$ROOT/build/mse}
N=${N:-10000}

[ -x "$MSE" ] || { echo "bench_idle: $MSE missing (make)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/mse-bench-idle.XXXXXX)
SERVER_PID=
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/app"
cat >"$WORK/app/app.py" <<'EOF'
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello, World!"
EOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
	-days 1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

echo "machine: $(nproc) CPUs, $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "open files limit of this shell: soft $(ulimit -Sn), hard $(ulimit -Hn)"
"$MSE" serve app:app --code "$WORK/app" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
	--port 0 --port-file "$WORK/port" --idle-timeout 600 --log-level warn --no-access-log \
	>"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do [ -s "$WORK/port" ] && break; sleep 0.05; done
[ -s "$WORK/port" ] || { cat "$WORK/serve.log" >&2; exit 1; }
"$PY" - "$(cat "$WORK/port")" "$SERVER_PID" "$N" <<'EOF'
import asyncio, resource, ssl, sys, time

port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
REQ = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def rss_kib():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


async def one(src, keep):
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, local_addr=(src, 0),
                                         server_hostname="localhost")
    w.write(REQ)
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    await r.readexactly(length)
    assert head.startswith(b"HTTP/1.1 200"), head
    if keep:
        return r, w
    w.close()


async def main():
    for _ in range(20):  # warm up: imports, allocator
        await one("127.0.0.1", False)
    await asyncio.sleep(0.5)
    before = rss_kib()
    conns = []
    t0 = time.monotonic()
    sem = asyncio.Semaphore(64)

    async def opener(i):
        async with sem:
            return await one("127.0.0.%d" % (2 + i % 50), True)
    conns = await asyncio.gather(*(opener(i) for i in range(n)))
    opened = time.monotonic() - t0
    await asyncio.sleep(1.0)
    after = rss_kib()
    per = (after - before) * 1024 / n
    print("%d idle TLS keep-alive connections opened in %.1f s; server RSS %.1f MiB -> %.1f MiB: "
          "%.0f bytes (%.1f KiB) per idle connection" % (n, opened, before / 1024, after / 1024, per, per / 1024))
    lat = []
    for _ in range(200):
        t = time.perf_counter()
        await one("127.0.0.1", False)
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    print("new connections meanwhile (connect + TLS 1.3 handshake + GET, 200 in a row): "
          "p50 %.2f ms, p99 %.2f ms, max %.2f ms" % (lat[100], lat[197], lat[-1]))
    ok = 0
    for r, w in conns[:: max(1, n // 200)]:
        w.write(REQ)
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        ok += head.startswith(b"HTTP/1.1 200")
        length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
        await r.readexactly(length)
    print("a sample of %d of the idle connections still answers: %d ok" % (len(conns[:: max(1, n // 200)]), ok))
    print("server RSS at the end: %.1f MiB" % (rss_kib() / 1024))
    for r, w in conns:
        w.close()

asyncio.run(main())
EOF
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -iE "warn|error" "$WORK/serve.log" || true
