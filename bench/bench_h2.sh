#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# HTTP/2 against HTTP/1.1 on the same mse-c server, driven by h2load
# (nghttp2-client) for both protocols (h2load --h1 for HTTP/1.1), over TLS,
# on a Flask and a FastAPI hello-world:
#   keep-alive   h2: CONNS connections x STREAMS concurrent streams, for
#                DURATION s; h1: CONNS connections (one request in flight
#                each), for DURATION s;
#   churn        a new connection per 100 requests: ROUNDS runs of
#                h2load -n CONNS*100 -c CONNS (each client does its 100
#                requests on one connection, then the next run connects
#                again); h2 with STREAMS streams, h1 one at a time.
#
#   bench/bench_h2.sh                    10 s per keep-alive run, 10 churn rounds
#   DURATION=3 ROUNDS=3 bench/bench_h2.sh
# Besides req/s, each line gives the server's cost per request, which a
# loaded machine disturbs far less than throughput: its CPU time (all
# threads, /proc/PID/stat) in ms per 1000 requests, and its context
# switches per request (voluntary + involuntary, summed over
# /proc/PID/task/*/status: threads that exited during the run are missed).
# Needs: scripts/deps.sh (nghttp2-client for h2load, python3-flask, python3-fastapi).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${MSE_PYTHON:-/usr/bin/python3}
MSE=${MSE_BIN:-$ROOT/build/mse}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
STREAMS=${STREAMS:-16}
ROUNDS=${ROUNDS:-10}
APPS=${APPS:-"flask fastapi"}

for tool in h2load openssl curl; do
	command -v "$tool" >/dev/null || { echo "bench_h2: $tool missing (scripts/deps.sh)" >&2; exit 1; }
done
[ -x "$MSE" ] || { echo "bench_h2: $MSE missing (make)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mse-bench-h2.XXXXXX)
SERVER_PID=
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/flask" "$WORK/fastapi"
cat >"$WORK/flask/app.py" <<'PYEOF'
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello, World!"
PYEOF
cat >"$WORK/fastapi/app.py" <<'PYEOF'
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello():
    return {"message": "Hello, World!"}
PYEOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
	-days 1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_server() {
	local app=$1 port=$2
	"$MSE" serve app:app --code "$WORK/$app" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
		--port "$port" --log-level warn --no-access-log >"$WORK/$app.log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 1 200); do
		curl -skf "https://127.0.0.1:$port/" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "bench_h2: the $app server did not start:" >&2
	cat "$WORK/$app.log" >&2
	return 1
}

stop_server() {
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

# The server's CPU time in ms (utime + stime of all its threads, proc(5)).
cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' \
		"/proc/$SERVER_PID/stat" 2>/dev/null || echo 0
}

# Its threads' context switches so far.
ctx_switches() {
	cat /proc/"$SERVER_PID"/task/*/status 2>/dev/null |
		awk '/^(non)?voluntary_ctxt_switches/ { n += $2 } END { print n + 0 }'
}

# "cpu-ms/1000req ctxsw/req" from the counters before (cpu0 cs0) and n requests.
cost() {
	awk -v c0="$1" -v c1="$(cpu_ms)" -v s0="$2" -v s1="$(ctx_switches)" -v n="$3" \
		'BEGIN { if (n > 0) printf "%.0f %.2f", (c1 - c0) * 1000 / n, (s1 - s0) / n; else print "- -" }'
}

# h2load output -> "req/s succeeded failed seconds"
parse() {
	awk '/^finished in/ { t = $3; sub(/s,$/, "", t); if (t ~ /m$/) { sub(/m$/, "", t); t /= 1000 }
			      r = $4 }
	     /^requests:/ { ok = $8; bad = $10 }
	     END { printf "%s %s %s %s\n", r, ok, bad, t }'
}

echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "h2load over TLS; keep-alive ${DURATION}s at $CONNS connections (h2: x $STREAMS streams);"
echo "churn: $ROUNDS x ($CONNS connections x 100 requests)"
printf '%-8s %-10s %-6s %10s %10s %8s %9s %7s\n' app run proto "req/s" requests failed \
	"cpu-ms/k" "csw/req"
RESULTS="$WORK/results"
: >"$RESULTS"
for app in $APPS; do
	port=$(free_port)
	start_server "$app" "$port" || continue
	url="https://127.0.0.1:$port/"
	h2load -c16 -m4 -D1 "$url" >/dev/null 2>&1 || true
	for proto in h2 h1; do
		c0=$(cpu_ms) s0=$(ctx_switches)
		if [ "$proto" = h2 ]; then
			out=$(h2load -c"$CONNS" -m"$STREAMS" -D"$DURATION" "$url" 2>&1)
		else
			out=$(h2load --h1 -c"$CONNS" -m1 -D"$DURATION" "$url" 2>&1)
		fi
		read -r rps ok bad _ <<<"$(echo "$out" | parse)"
		read -r cpk csw <<<"$(cost "$c0" "$s0" "$ok")"
		printf '%-8s %-10s %-6s %10s %10s %8s %9s %7s\n' "$app" keep-alive "$proto" "$rps" "$ok" \
			"$bad" "$cpk" "$csw"
		echo "$app keep-alive $proto $rps" >>"$RESULTS"
	done
	for proto in h2 h1; do
		total=0 secs=0 fails=0
		c0=$(cpu_ms) s0=$(ctx_switches)
		for _ in $(seq 1 "$ROUNDS"); do
			if [ "$proto" = h2 ]; then
				out=$(h2load -n $((CONNS * 100)) -c"$CONNS" -m"$STREAMS" "$url" 2>&1)
			else
				out=$(h2load --h1 -n $((CONNS * 100)) -c"$CONNS" -m1 "$url" 2>&1)
			fi
			read -r _ ok bad t <<<"$(echo "$out" | parse)"
			total=$((total + ok))
			fails=$((fails + bad))
			secs=$(awk -v a="$secs" -v b="$t" 'BEGIN { print a + b }')
		done
		rps=$(awk -v n="$total" -v s="$secs" 'BEGIN { if (s > 0) printf "%.2f", n / s; else print 0 }')
		read -r cpk csw <<<"$(cost "$c0" "$s0" "$total")"
		printf '%-8s %-10s %-6s %10s %10s %8s %9s %7s\n' "$app" churn "$proto" "$rps" "$total" \
			"$fails" "$cpk" "$csw"
		echo "$app churn $proto $rps" >>"$RESULTS"
	done
	stop_server
done
echo
for app in $APPS; do
	for run in keep-alive churn; do
		awk -v a="$app" -v r="$run" '$1 == a && $2 == r && $3 == "h2" {x = $4}
			$1 == a && $2 == r && $3 == "h1" {y = $4}
			END { if (x > 0 && y > 0) printf "%s %s: h2 / h1 = %.2fx\n", a, r, x / y }' "$RESULTS"
	done
done
