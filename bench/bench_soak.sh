#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The soak: build/mse serve with a Flask hello-world over TLS, wrk -t2 at 50
# keep-alive connections for 10 minutes (DURATION=600). Reports requests,
# errors (socket errors and non-2xx answers) and the server's RSS after the
# warm-up, every minute, and at the end; the verdict is whether RSS stayed
# flat (end within 10 % of start).
#
#   bench/bench_soak.sh                  600 s, 50 connections (as reported)
#   DURATION=120 bench/bench_soak.sh     a shorter soak on a busy machine
# Needs: scripts/deps.sh --bench (wrk).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MSE=${MSE_BIN:-$ROOT/build/mse}
DURATION=${DURATION:-600}
CONNS=${CONNS:-50}
THREADS=${THREADS:-}

for tool in wrk openssl curl; do
	command -v "$tool" >/dev/null || { echo "bench_soak: $tool missing (scripts/deps.sh --bench)" >&2; exit 1; }
done
[ -x "$MSE" ] || { echo "bench_soak: $MSE missing (make)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mse-bench-soak.XXXXXX)
SERVER_PID=
WRK_PID=
cleanup() {
	[ -n "$WRK_PID" ] && kill "$WRK_PID" 2>/dev/null
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/app"
cat >"$WORK/app/app.py" <<'PYEOF'
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello, World!"
PYEOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
	-days 1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

rss() { awk '/^VmRSS:/ {print $2}' /proc/"$SERVER_PID"/status; }

"$MSE" serve app:app --code "$WORK/app" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
	--port "$port" --log-level warn ${THREADS:+--threads $THREADS} >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 200); do
	curl -skf "https://127.0.0.1:$port/" >/dev/null 2>&1 && break
	sleep 0.05
done
# Warm up: imports, TLS machinery, thread pools, allocator arenas.
wrk -t2 -c"$CONNS" -d10s "https://127.0.0.1:$port/" >/dev/null 2>&1 || true
start=$(rss)
echo "machine: $(nproc) CPUs, $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t2 -c$CONNS -d${DURATION}s over TLS with keep-alive; RSS after warm-up: $((start / 1024)) MiB"
wrk -t2 -c"$CONNS" -d"${DURATION}s" "https://127.0.0.1:$port/" >"$WORK/wrk.out" 2>&1 &
WRK_PID=$!
elapsed=0
while kill -0 "$WRK_PID" 2>/dev/null; do
	sleep 1
	elapsed=$((elapsed + 1))
	if [ $((elapsed % 60)) -eq 0 ]; then
		echo "  t=${elapsed}s RSS $(( $(rss) / 1024 )) MiB"
	fi
done
wait "$WRK_PID" || true
WRK_PID=
end=$(rss)
reqs=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.out")
sock=$(awk '/Socket errors/ {print}' "$WORK/wrk.out")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.out")
echo "requests: ${reqs:-0} (${rps:-0}/s); errors: non-2xx ${non2xx:-0}${sock:+; $sock}"
echo "RSS start $((start / 1024)) MiB ($start KiB), end $((end / 1024)) MiB ($end KiB)"
awk -v a="$start" -v b="$end" 'BEGIN {
	d = (b - a) * 100.0 / a
	printf "RSS change %+.1f %%: %s\n", d, (d <= 10 && d >= -10) ? "flat (within 10 %)" : "NOT flat" }'
if grep -qiE "error|sanitizer" "$WORK/server.log"; then
	echo "server log:"; tail -n 20 "$WORK/server.log"
fi
