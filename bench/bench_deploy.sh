#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Startup of a deployed enclave, in simulation, with the release build:
# spawn -> configuration server waiting -> verify -> run -> first 200 on the
# health check, and the enclave's RSS once serving. Also, as the floor in the
# same run, `mse serve` of the same app (no attestation, no provisioning):
# start -> first 200. RUNS=N (default 5); best and median reported.
set -euo pipefail
cd "$(dirname "$0")/.."
MSE=$(pwd)/build/mse
PY=${MSE_PYTHON:-/usr/bin/python3}
RUNS=${RUNS:-5}
W=$(mktemp -d /tmp/mse-bench-deploy.XXXXXX)
export HOME="$W/home" XDG_STATE_HOME="$W/home/.local/state" XDG_CONFIG_HOME="$W/home/.config"
mkdir -p "$HOME"
trap '"$MSE" stop b --remove >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
cd "$W"
"$MSE" scaffold b >/dev/null
"$MSE" package --project b --output pkg --quiet
PKG=$(ls pkg/package_*.tar); KEY=$(ls pkg/package_*.key)
"$MSE" sim init >/dev/null 2>&1 || true
now() { date +%s.%N; }
wait200() { # url ca
	for _ in $(seq 1 600); do
		if curl -s -o /dev/null -w '%{http_code}' ${2:+--cacert "$2"} "$1" 2>/dev/null | grep -q 200; then return 0; fi
		sleep 0.01
	done
	return 1
}
: >"$W/times"
for i in $(seq 1 "$RUNS"); do
	t0=$(now)
	"$MSE" spawn b --package "$PKG" --output ev >/dev/null
	t1=$(now)
	"$MSE" verify --package "$PKG" --evidence ev/evidence.json --allow-simulation --output ok >/dev/null
	t2=$(now)
	"$MSE" run b --ratls ok/ratls.pem --key "$KEY" --secrets b/secrets.json >/dev/null
	PORT=$("$MSE" status b --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["port"])')
	wait200 "https://localhost:$PORT/health" ok/ratls.pem
	t3=$(now)
	PID=$("$MSE" status b --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
	rss=$(awk '/VmRSS/ {print $2}' /proc/"$PID"/status)
	"$MSE" stop b --remove >/dev/null
	# The floor: the same app served alone.
	SP=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	mkdir -p plain && rm -rf plain/* && cp b/mse_src/app.py plain/
	t4=$(now)
	"$MSE" serve app:app --code plain --no-tls --host 127.0.0.1 --port "$SP" >/dev/null 2>&1 &
	SPID=$!
	wait200 "http://127.0.0.1:$SP/health" ""
	t5=$(now)
	srss=$(awk '/VmRSS/ {print $2}' /proc/"$SPID"/status)
	kill "$SPID"; wait "$SPID" 2>/dev/null || true
	echo "$t0 $t1 $t2 $t3 $rss $t4 $t5 $srss" >>"$W/times"
done
"$PY" - "$W/times" <<'PYEOF'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
def col(f): return [f(r) for r in rows]
spawn = col(lambda r: (r[1]-r[0])*1000); verify = col(lambda r: (r[2]-r[1])*1000)
run = col(lambda r: (r[3]-r[2])*1000); total = col(lambda r: (r[3]-r[0])*1000)
serve = col(lambda r: (r[6]-r[5])*1000)
rss = col(lambda r: r[4]/1024); srss = col(lambda r: r[7]/1024)
def fmt(name, v, unit="ms"): print(f"{name:38s} best {min(v):8.1f} {unit}   median {statistics.median(v):8.1f} {unit}")
fmt("spawn (start -> config server waiting)", spawn)
fmt("verify (code provider, recomputed)", verify)
fmt("run -> first 200 on /health", run)
fmt("total: spawn -> first 200", total)
fmt("floor: mse serve start -> first 200", serve)
fmt("enclave RSS when serving", rss, "MiB")
fmt("mse serve RSS when serving", srss, "MiB")
print(f"ratio total/floor (median): {statistics.median(total)/statistics.median(serve):.1f}x")
PYEOF
