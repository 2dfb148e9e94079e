#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The app server benchmark: a Flask hello-world over TLS with keep-alive,
# driven by wrk -t2 at 16, 64 and 128 connections, each server reported at
# its best. Servers, all on 127.0.0.1 with the same certificate:
#   mse-c      build/mse serve (C HTTP/TLS threads, embedded CPython)
#   hypercorn  /usr/bin/python3 -m hypercorn, asgiref's WsgiToAsgi (MSE's server)
#   gunicorn   /usr/bin/python3 -m gunicorn, 1 worker, 4 threads, TLS
#   in-process the same app called in a Python loop: no HTTP, no TLS (the limit)
# Reports requests/s, p50/p99 latency, server RSS (the process tree, after
# the runs) and the ratios.
#
#   bench/bench_serve.sh                 10 s per run (as reported)
#   DURATION=3 bench/bench_serve.sh      shorter trial runs
#   CONNS="64" SERVERS="mse-c gunicorn" bench/bench_serve.sh
# Needs: scripts/deps.sh --bench (wrk, python3-hypercorn, python3-asgiref, gunicorn).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${MSE_PYTHON:-/usr/bin/python3}
MSE=${MSE_BIN:-$ROOT/build/mse}
DURATION=${DURATION:-10}
CONNS=${CONNS:-"16 64 128"}
SERVERS=${SERVERS:-"mse-c hypercorn gunicorn"}
THREADS=${THREADS:-}

for tool in wrk openssl curl; do
	command -v "$tool" >/dev/null || { echo "bench_serve: $tool missing (scripts/deps.sh --bench)" >&2; exit 1; }
done
[ -x "$MSE" ] || { echo "bench_serve: $MSE missing (make)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mse-bench-serve.XXXXXX)
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
cat >"$WORK/app/asgi.py" <<'EOF'
from asgiref.wsgi import WsgiToAsgi

from app import app as wsgi_app

app = WsgiToAsgi(wsgi_app)
EOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
	-days 1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Sum of VmRSS (KiB) over a process and its descendants.
tree_rss() {
	local pids="$1" all="" p
	while [ -n "$pids" ]; do
		all="$all $pids"
		local next=""
		for p in $pids; do
			next="$next $(cat /proc/"$p"/task/*/children 2>/dev/null)"
		done
		pids=$(echo $next)
	done
	local sum=0 r
	for p in $all; do
		r=$(awk '/^VmRSS:/ {print $2}' /proc/"$p"/status 2>/dev/null || echo 0)
		sum=$((sum + ${r:-0}))
	done
	echo $sum
}

# wrk latency "1.23ms" / "850.00us" / "1.02s" -> milliseconds
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
		"$MSE" serve app:app --code "$WORK/app" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
			--port "$port" --log-level warn ${THREADS:+--threads $THREADS} \
			>"$WORK/$name.log" 2>&1 &
		;;
	hypercorn)
		(cd "$WORK/app" && exec "$PY" -m hypercorn --certfile "$WORK/cert.pem" \
			--keyfile "$WORK/key.pem" --bind "127.0.0.1:$port" --log-level warning \
			asgi:app) >"$WORK/$name.log" 2>&1 &
		;;
	gunicorn)
		(cd "$WORK/app" && exec "$PY" -m gunicorn --workers 1 --threads 4 \
			--certfile "$WORK/cert.pem" --keyfile "$WORK/key.pem" \
			--bind "127.0.0.1:$port" --log-level warning app:app) >"$WORK/$name.log" 2>&1 &
		;;
	esac
	SERVER_PID=$!
	for _ in $(seq 1 200); do
		if curl -skf "https://127.0.0.1:$port/" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
	done
	echo "bench_serve: $name did not start:" >&2
	cat "$WORK/$name.log" >&2
	return 1
}

stop_server() {
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

# The in-process limit: the WSGI call alone, same app, one Python thread.
# Sampled before each server and at the end: on a shared machine the limit
# is the best sample.
inproc_once() {
	(cd "$WORK/app" && "$PY" - "$DURATION" <<'EOF'
import sys, time
from io import BytesIO
from app import app

base = {
    "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/", "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1", "wsgi.version": (1, 0),
    "wsgi.url_scheme": "https", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
    "wsgi.multiprocess": False, "wsgi.run_once": False,
}

def start_response(status, headers, exc_info=None):
    return None

duration = float(sys.argv[1])
n, t0 = 0, time.perf_counter()
while True:
    for _ in range(200):
        env = dict(base)
        env["wsgi.input"] = BytesIO(b"")
        it = app(env, start_response)
        b"".join(it)
        if hasattr(it, "close"):
            it.close()
    n += 200
    t = time.perf_counter() - t0
    if t >= duration:
        break
print("%.2f" % (n / t))
EOF
	)
}
INPROC_SAMPLES=""
RESULTS="$WORK/results"
: >"$RESULTS"
echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t2 -d${DURATION}s --latency, connections: $CONNS"
printf '%-11s %6s %11s %9s %9s %9s\n' server conns "req/s" "p50 ms" "p99 ms" "RSS MiB"
for name in $SERVERS; do
	INPROC_SAMPLES="$INPROC_SAMPLES $(inproc_once)"
	port=$(free_port)
	start_server "$name" "$port" || continue
	# Warm up (imports, TLS session machinery, thread pools).
	wrk -t2 -c16 -d1s "https://127.0.0.1:$port/" >/dev/null 2>&1 || true
	for c in $CONNS; do
		out=$(wrk -t2 -c"$c" -d"${DURATION}s" --latency "https://127.0.0.1:$port/" 2>&1)
		rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
		p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
		p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
		errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {printf "%s ", $0}')
		rss=$(( $(tree_rss "$SERVER_PID") / 1024 ))
		printf '%-11s %6s %11s %9s %9s %9s %s\n' "$name" "$c" "${rps:-0}" "$p50" "$p99" "$rss" "$errs"
		echo "$name $c ${rps:-0} $p50 $p99 $rss" >>"$RESULTS"
	done
	stop_server
done


INPROC_SAMPLES="$INPROC_SAMPLES $(inproc_once)"
inproc=$(echo $INPROC_SAMPLES | tr ' ' '\n' | sort -g | tail -n 1)
printf '%-11s %6s %11s %9s %9s %9s (samples:%s)\n' in-process - "$inproc" - - - "$INPROC_SAMPLES"
echo "in-process - $inproc - - -" >>"$RESULTS"

# Best run of each server, and the ratios.
echo
echo "best of each (requests/s at its best connection count):"
awk -v inproc="$inproc" '
	$1 != "in-process" { if ($3 + 0 > best[$1] + 0) { best[$1] = $3; line[$1] = $0 } }
	END {
		m = best["mse-c"]
		for (s in best) {
			split(line[s], f, " ")
			printf "  %-10s %10.0f req/s at %3s conns, p50 %s ms, p99 %s ms, RSS %s MiB\n", s, best[s], f[2], f[4], f[5], f[6]
		}
		printf "  %-10s %10.0f req/s (one Python thread, no HTTP, no TLS)\n", "in-process", inproc
		if (m > 0) {
			printf "ratios: mse-c / in-process = %.2f", m / inproc
			if (best["gunicorn"] > 0) printf ", mse-c / gunicorn = %.2f", m / best["gunicorn"]
			if (best["hypercorn"] > 0) printf ", mse-c / hypercorn = %.2f", m / best["hypercorn"]
			printf "\n"
		}
	}' "$RESULTS"
