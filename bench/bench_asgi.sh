#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The ASGI benchmark: FastAPI over TLS with keep-alive, driven by wrk -t2 at
# 64 connections, two routes: "hello" (a small JSON) and "json16k" (a 16 KiB
# JSON document of 16 string fields, encoded per request); then WebSocket
# echo messages per second.
# Servers, all on 127.0.0.1 with the same certificate and app:
#   mse-c      build/mse serve (C HTTP/TLS threads, one asyncio loop thread)
#   uvicorn    /usr/bin/python3 -m uvicorn, 1 worker, --loop asyncio --http h11
#   hypercorn  /usr/bin/python3 -m hypercorn, 1 worker
# WebSocket echo (mse-c and uvicorn, whose --ws is websockets): WS_CONNS
# clients (python3-websockets, in one asyncio process) each send WS_MSGS
# messages of 64 bytes one after the other over wss://, waiting for each echo.
#
#   bench/bench_asgi.sh                 10 s per run (as reported)
#   DURATION=3 bench/bench_asgi.sh      shorter trial runs
#   SERVERS="mse-c uvicorn" bench/bench_asgi.sh
# Needs: scripts/deps.sh --bench (wrk, python3-hypercorn), python3-uvicorn,
# python3-fastapi, python3-websockets (scripts/deps.sh).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${MSE_PYTHON:-/usr/bin/python3}
MSE=${MSE_BIN:-$ROOT/build/mse}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
SERVERS=${SERVERS:-"mse-c uvicorn hypercorn"}
WS_CONNS=${WS_CONNS:-16}
WS_MSGS=${WS_MSGS:-2000}

for tool in wrk openssl curl; do
	command -v "$tool" >/dev/null || { echo "bench_asgi: $tool missing (scripts/deps.sh --bench)" >&2; exit 1; }
done
[ -x "$MSE" ] || { echo "bench_asgi: $MSE missing (make)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mse-bench-asgi.XXXXXX)
SERVER_PID=
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/app"
cat >"$WORK/app/main.py" <<'PYEOF'
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
# 16 KiB of JSON in 16 fields: what the servers move, not FastAPI's encoder
# walking thousands of small objects (which would make every server equal).
DOC = {"field%02d" % i: "%04d" % i * 256 for i in range(16)}


@app.get("/")
async def hello():
    return {"message": "Hello, World!"}


@app.get("/json16k")
async def json16k():
    return DOC


@app.websocket("/ws")
async def echo(ws: WebSocket):
    await ws.accept()
    try:
        while True:
            await ws.send_text(await ws.receive_text())
    except WebSocketDisconnect:
        pass
PYEOF
cat >"$WORK/wsclient.py" <<'PYEOF'
import asyncio, ssl, sys, time
import websockets

url, conns, msgs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
payload = "x" * 64


async def one():
    async with websockets.connect(url, ssl=ctx, max_size=None) as ws:
        for _ in range(msgs):
            await ws.send(payload)
            assert await ws.recv() == payload


async def main():
    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(conns)))
    print("%.0f" % (conns * msgs / (time.perf_counter() - t0)))

asyncio.run(main())
PYEOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
	-days 1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

to_ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
		else printf "%s", v }'
}

start_server() {
	local name=$1 port=$2
	case "$name" in
	mse-c)
		"$MSE" serve main:app --code "$WORK/app" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
			--port "$port" --log-level warn >"$WORK/$name.log" 2>&1 &
		;;
	uvicorn)
		(cd "$WORK/app" && exec "$PY" -m uvicorn --loop asyncio --http h11 --workers 1 \
			--ssl-certfile "$WORK/cert.pem" --ssl-keyfile "$WORK/key.pem" \
			--host 127.0.0.1 --port "$port" --log-level warning main:app) >"$WORK/$name.log" 2>&1 &
		;;
	hypercorn)
		(cd "$WORK/app" && exec "$PY" -m hypercorn --workers 1 --certfile "$WORK/cert.pem" \
			--keyfile "$WORK/key.pem" --bind "127.0.0.1:$port" --log-level warning \
			main:app) >"$WORK/$name.log" 2>&1 &
		;;
	esac
	SERVER_PID=$!
	for _ in $(seq 1 200); do
		if curl -skf "https://127.0.0.1:$port/" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
	done
	echo "bench_asgi: $name did not start:" >&2
	cat "$WORK/$name.log" >&2
	return 1
}

stop_server() {
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

RESULTS="$WORK/results"
: >"$RESULTS"
echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t2 -c$CONNS -d${DURATION}s --latency over TLS; WebSocket echo: $WS_CONNS x $WS_MSGS messages"
printf '%-10s %-8s %10s %8s %8s\n' server route "req/s" "p50 ms" "p99 ms"
for name in $SERVERS; do
	port=$(free_port)
	start_server "$name" "$port" || continue
	wrk -t2 -c16 -d1s "https://127.0.0.1:$port/" >/dev/null 2>&1 || true
	for route in hello json16k; do
		path=/
		[ "$route" = json16k ] && path=/json16k
		out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "https://127.0.0.1:$port$path" 2>&1)
		rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
		p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
		p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
		errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {printf "%s ", $0}')
		printf '%-10s %-8s %10s %8s %8s %s\n' "$name" "$route" "${rps:-0}" "$p50" "$p99" "$errs"
		echo "$name $route ${rps:-0}" >>"$RESULTS"
	done
	if [ "$name" != hypercorn ]; then
		mps=$("$PY" "$WORK/wsclient.py" "wss://127.0.0.1:$port/ws" "$WS_CONNS" "$WS_MSGS" 2>"$WORK/ws.err" || echo 0)
		[ "$mps" = 0 ] && sed 's/^/  ws: /' "$WORK/ws.err" | tail -3
		printf '%-10s %-8s %10s msgs/s\n' "$name" ws-echo "$mps"
		echo "$name ws $mps" >>"$RESULTS"
	fi
	stop_server
done

echo
ratio() { # ratio ROUTE A B
	awk -v r="$1" -v a="$2" -v b="$3" '$2 == r && $1 == a {x = $3} $2 == r && $1 == b {y = $3}
		END { if (x > 0 && y > 0) printf "%.2f", x / y; else printf "-" }' "$RESULTS"
}
for route in hello json16k ws; do
	echo "$route: mse-c / uvicorn = $(ratio $route mse-c uvicorn)x, mse-c / hypercorn = $(ratio $route mse-c hypercorn)x"
done
