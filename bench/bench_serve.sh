#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The app server benchmark (issue 21): one Flask app over TLS 1.3 with
# keep-alive, the same P-256 certificate, every server on 127.0.0.1, driven
# by wrk -t2 -c64. Peers, each started and stopped in turn, ROUNDS times
# interleaved (medians reported, so the load of a shared machine hits all
# alike):
#   mse-c        build/mse serve (C HTTP/TLS threads, embedded CPython)
#   uwsgi        uWSGI (Debian uwsgi-core + uwsgi-plugin-python3), 1 process x
#                4 threads behind its own --https router, which reaches the
#                worker over a unix socket with 64 KiB buffers (its default
#                buffers stall ~44 ms per response)
#   nginx-uwsgi  nginx-light terminating TLS -> the same uWSGI over uwsgi_pass
#   gunicorn     /usr/bin/python3 -m gunicorn, 1 worker, 4 threads, TLS
#   hypercorn    (optional) /usr/bin/python3 -m hypercorn + asgiref WsgiToAsgi
# Workloads: hello (GET /), json (16 KiB JSON, Flask jsonify per request),
# post64k (POST 64 KiB, echoed), sleep (a handler sleeping 50 ms, GIL
# released, at 64 connections, while one more client calls /fast: its p50
# and p99 are reported). Server CPU per request (hello, json): the utime +
# stime of the server's process tree (/proc/PID/stat) over the run divided
# by the requests served, against the in-process cost: the same app called
# in a Python loop (CPU time per call, time.process_time). Then mse-c alone
# with --no-tls: 1 MiB bodies POSTed, timed inside the app from the first to
# the last byte read (readinto one buffer): GB/s reaching the app; then the
# server's RSS before and after 16 MiB bodies (readinto, read(65536)).
#
#   bench/bench_serve.sh                       ROUNDS=3, DURATION=8
#   DURATION=3 ROUNDS=1 bench/bench_serve.sh   a quick trial
#   SERVERS="mse-c uwsgi" WORKLOADS="hello post64k" bench/bench_serve.sh
#   SERVERS=mse-c MSE_BIN_B=/tmp/mse-main WORKLOADS="hello sleep" BODY_RATE=0 \
#     bench/bench_serve.sh                     A/B of two builds, same rounds
# Needs: scripts/deps.sh --bench.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${MSE_PYTHON:-/usr/bin/python3}
MSE=${MSE_BIN:-$ROOT/build/mse}
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
SERVERS=${SERVERS:-"mse-c uwsgi nginx-uwsgi gunicorn"}
WORKLOADS=${WORKLOADS:-"hello json post64k sleep"}
THREADS=${THREADS:-}
# A second mse binary (say, a build of main) run as the server "mse-c-b",
# interleaved with mse-c in the same rounds: a before/after A/B.
MSE_B=${MSE_BIN_B:-}
[ -n "$MSE_B" ] && case " $SERVERS " in *" mse-c-b "*) ;; *) SERVERS="$SERVERS mse-c-b" ;; esac

for tool in wrk openssl curl; do
	command -v "$tool" >/dev/null || { echo "bench_serve: $tool missing (scripts/deps.sh --bench)" >&2; exit 1; }
done
[ -x "$MSE" ] || { echo "bench_serve: $MSE missing (make)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mse-bench-serve.XXXXXX)
chmod 755 "$WORK"
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/app"
cat >"$WORK/app/app.py" <<'EOF'
import time

from flask import Flask, jsonify, request

app = Flask(__name__)
DOC = {"field%02d" % i: "%04d" % i + "x" * 1020 for i in range(16)}  # 16.6 KiB encoded


@app.route("/")
def hello():
    return "Hello, World!"


@app.route("/json")
def json16k():
    return jsonify(DOC)


@app.route("/echo", methods=["POST"])
def echo():
    return request.get_data()


@app.route("/sleep")
def sleep():
    time.sleep(0.05)
    return "slept"


@app.route("/fast")
def fast():
    return "fast"
EOF
# The body-rate app (WSGI, no Flask): reads the body with readinto into one
# reused 1 MiB buffer and times it from the first to the last byte read.
cat >"$WORK/app/rate.py" <<'EOF'
import time

BUF = bytearray(1 << 20)
TOTAL = [0, 0.0]


def app(environ, start_response):
    if environ["PATH_INFO"] == "/rate":
        body = b"%d %.6f" % (TOTAL[0], TOTAL[1])
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    inp = environ["wsgi.input"]
    if environ["PATH_INFO"] == "/read64k":
        # The 16 MiB RSS check: read(65536) pieces, each a new bytes.
        while inp.read(65536):
            pass
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]
    n, t0 = 0, time.perf_counter()
    while True:
        k = inp.readinto(BUF)
        if not k:
            break
        n += k
    if environ["PATH_INFO"] == "/up":  # the timed 1 MiB bodies only
        TOTAL[0] += n
        TOTAL[1] += time.perf_counter() - t0
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
EOF
cat >"$WORK/app/asgi.py" <<'EOF'
from asgiref.wsgi import WsgiToAsgi

from app import app as wsgi_app

app = WsgiToAsgi(wsgi_app)
EOF
head -c 65536 /dev/zero | tr '\0' 'x' >"$WORK/body64k"
cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.body = string.rep("x", 65536)
wrk.headers["Content-Type"] = "application/octet-stream"
EOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
	-days 1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
chmod 644 "$WORK/key.pem"

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Every pid of a process tree.
tree_pids() {
	local pids="$1" all="" p
	while [ -n "$pids" ]; do
		all="$all $pids"
		local next=""
		for p in $pids; do
			next="$next $(cat /proc/"$p"/task/*/children 2>/dev/null)"
		done
		pids=$(echo $next)
	done
	echo $all
}
tree_rss() {
	local sum=0 r p
	for p in $(tree_pids "$1"); do
		r=$(awk '/^VmRSS:/ {print $2}' /proc/"$p"/status 2>/dev/null || echo 0)
		sum=$((sum + ${r:-0}))
	done
	echo $sum
}
# utime + stime (clock ticks) of a process tree.
tree_cpu() {
	local sum=0 p c
	for p in $(tree_pids "$1"); do
		c=$(awk '{print $14 + $15}' /proc/"$p"/stat 2>/dev/null || echo 0)
		sum=$((sum + ${c:-0}))
	done
	echo $sum
}
TICK=$(getconf CLK_TCK)

to_ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
		else printf "%s", v }'
}

UWSGI_PID=""
start_server() {
	local name=$1 port=$2 bin
	UWSGI_PID=""
	case "$name" in
	mse-c | mse-c-b)
		bin=$MSE
		[ "$name" = mse-c-b ] && bin=$MSE_B
		"$bin" serve app:app --code "$WORK/app" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
			--port "$port" --log-level warn --no-access-log ${THREADS:+--threads $THREADS} \
			>"$WORK/$name.log" 2>&1 &
		;;
	uwsgi)
		# 1 process x 4 threads behind uWSGI's HTTPS router; the router
		# and the worker talk over a unix socket with 64 KiB buffers.
		uwsgi --plugins http,python3 --master --processes 1 --threads 4 \
			--https "127.0.0.1:$port,$WORK/cert.pem,$WORK/key.pem" --http-keepalive \
			--socket "$WORK/uwsgi.sock" --socket-sndbuf 65536 --socket-rcvbuf 65536 \
			--buffer-size 65535 --chdir "$WORK/app" --module app:app \
			--disable-logging --die-on-term >"$WORK/$name.log" 2>&1 &
		;;
	nginx-uwsgi)
		uwsgi --plugins python3 --master --processes 1 --threads 4 \
			--socket "$WORK/uwsgi-ng.sock" --chmod-socket=666 --socket-sndbuf 65536 \
			--socket-rcvbuf 65536 --buffer-size 65535 --chdir "$WORK/app" --module app:app \
			--disable-logging --die-on-term >"$WORK/uwsgi-ng.log" 2>&1 &
		UWSGI_PID=$!
		PIDS="$PIDS $UWSGI_PID"
		mkdir -p "$WORK/nginx"
		cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
user root;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $WORK/nginx/body;
	proxy_temp_path $WORK/nginx/proxy;
	fastcgi_temp_path $WORK/nginx/fastcgi;
	uwsgi_temp_path $WORK/nginx/uwsgi;
	scgi_temp_path $WORK/nginx/scgi;
	client_max_body_size 16m;
	keepalive_requests 1000000;
	upstream app { server unix:$WORK/uwsgi-ng.sock; }
	server {
		listen 127.0.0.1:$port ssl;
		ssl_certificate $WORK/cert.pem;
		ssl_certificate_key $WORK/key.pem;
		ssl_protocols TLSv1.3;
		location / {
			include /etc/nginx/uwsgi_params;
			uwsgi_pass app;
		}
	}
}
EOF
		nginx -p "$WORK/nginx" -c "$WORK/nginx.conf" -g 'daemon off;' >"$WORK/$name.log" 2>&1 &
		;;
	gunicorn)
		(cd "$WORK/app" && exec "$PY" -m gunicorn --workers 1 --threads 4 \
			--certfile "$WORK/cert.pem" --keyfile "$WORK/key.pem" \
			--bind "127.0.0.1:$port" --log-level warning app:app) >"$WORK/$name.log" 2>&1 &
		;;
	hypercorn)
		(cd "$WORK/app" && exec "$PY" -m hypercorn --certfile "$WORK/cert.pem" \
			--keyfile "$WORK/key.pem" --bind "127.0.0.1:$port" --log-level warning \
			asgi:app) >"$WORK/$name.log" 2>&1 &
		;;
	esac
	SERVER_PID=$!
	PIDS="$PIDS $SERVER_PID"
	for _ in $(seq 1 300); do
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
	kill -TERM "$SERVER_PID" ${UWSGI_PID:+"$UWSGI_PID"} 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	[ -n "$UWSGI_PID" ] && { wait "$UWSGI_PID" 2>/dev/null || true; }
	SERVER_PID=
	UWSGI_PID=
}

# CPU of everything that serves (nginx + uWSGI for nginx-uwsgi).
serving_cpu() {
	local c
	c=$(tree_cpu "$SERVER_PID")
	[ -n "$UWSGI_PID" ] && c=$((c + $(tree_cpu "$UWSGI_PID")))
	echo "$c"
}
serving_rss() {
	local r
	r=$(tree_rss "$SERVER_PID")
	[ -n "$UWSGI_PID" ] && r=$((r + $(tree_rss "$UWSGI_PID")))
	echo "$r"
}

# In-process CPU cost per call (µs) of each route, the same app, one thread.
inproc() {
	(cd "$WORK/app" && "$PY" - "$DURATION" <<'EOF'
import sys, time
from io import BytesIO
from app import app

base = {
    "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1", "wsgi.version": (1, 0),
    "wsgi.url_scheme": "https", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
    "wsgi.multiprocess": False, "wsgi.run_once": False,
}
body = b"x" * 65536

def sr(status, headers, exc_info=None):
    return None

def one(path):
    env = dict(base)
    env["PATH_INFO"] = path
    if path == "/echo":
        env["REQUEST_METHOD"] = "POST"
        env["CONTENT_LENGTH"] = str(len(body))
        env["CONTENT_TYPE"] = "application/octet-stream"
        env["wsgi.input"] = BytesIO(body)
    else:
        env["wsgi.input"] = BytesIO(b"")
    it = app(env, sr)
    b"".join(it)
    if hasattr(it, "close"):
        it.close()

budget = max(1.0, float(sys.argv[1]) / 3)
out = []
for name, path in (("hello", "/"), ("json", "/json"), ("post64k", "/echo")):
    for _ in range(200):
        one(path)
    n, c0, w0 = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - w0 < budget:
        for _ in range(100):
            one(path)
        n += 100
    c, w = time.process_time() - c0, time.perf_counter() - w0
    out.append("%s %.2f %.1f" % (name, c / n * 1e6, n / w))
print(" ".join(out))
EOF
	)
}

RESULTS="$WORK/results"
: >"$RESULTS"
echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t2 -c$CONNS -d${DURATION}s, $ROUNDS interleaved rounds; servers: $SERVERS; workloads: $WORKLOADS"
for round in $(seq 1 "$ROUNDS"); do
	# The in-process cost, sampled every round: "name cpu_us calls_per_s" x3.
	set -- $(inproc)
	while [ $# -ge 3 ]; do
		echo "in-process $1 $round $3 - - $2 0" >>"$RESULTS"
		shift 3
	done
	for name in $SERVERS; do
		port=$(free_port)
		start_server "$name" "$port" || continue
		url="https://127.0.0.1:$port"
		wrk -t2 -c16 -d1s "$url/" >/dev/null 2>&1 || true
		wrk -t2 -c16 -d1s -s "$WORK/post.lua" "$url/echo" >/dev/null 2>&1 || true
		for w in $WORKLOADS; do
			fast=""
			cpu0=$(serving_cpu)
			case "$w" in
			hello) out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$url/" 2>&1) ;;
			json) out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$url/json" 2>&1) ;;
			post64k) out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$url/echo" 2>&1) ;;
			sleep)
				wrk -t1 -c1 -d"$((DURATION - 1))s" --latency "$url/fast" >"$WORK/fast.out" 2>&1 &
				fpid=$!
				out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$url/sleep" 2>&1)
				wait "$fpid" || true
				fast="$(to_ms "$(awk '$1 == "50%" {print $2}' "$WORK/fast.out")")/$(to_ms "$(awk '$1 == "99%" {print $2}' "$WORK/fast.out")")"
				;;
			esac
			cpu1=$(serving_cpu)
			reqs=$(echo "$out" | awk '/requests in/ {print $1}')
			rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
			p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
			errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {printf "%s; ", $0}')
			cpu_us=$(awk -v a="$cpu0" -v b="$cpu1" -v r="${reqs:-0}" -v t="$TICK" \
				'BEGIN { if (r > 0) printf "%.1f", (b - a) / t * 1e6 / r; else print 0 }')
			echo "$name $w $round ${rps:-0} $p99 ${fast:--} $cpu_us $(($(serving_rss) / 1024))" >>"$RESULTS"
			printf '  round %d %-12s %-8s %9s req/s  p99 %7s ms  cpu %7s us/req  fast p50/p99 %s ms  %s\n' \
				"$round" "$name" "$w" "${rps:-0}" "$p99" "$cpu_us" "${fast:--}" "$errs"
		done
		stop_server
	done
done

echo
echo "medians of $ROUNDS rounds (load now: $(cut -d' ' -f1-3 /proc/loadavg)):"
awk '
	function median(list,   n, a, i, j, t) {
		n = split(list, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{ k = $1 SUBSEP $2; rps[k] = rps[k] " " $4; p99[k] = p99[k] " " $5
	  if ($6 != "-") { split($6, f, "/"); f50[k] = f50[k] " " f[1]; f99[k] = f99[k] " " f[2] }
	  cpu[k] = cpu[k] " " $7; rss[$1] = $8; seen[$1] = 1; wl[$2] = 1 }
	END {
		printf "%-12s %-8s %10s %9s %10s %14s %8s\n", "server", "workload", "req/s", "p99 ms", "cpu us/req", "fast p50/p99", "RSS MiB"
		for (s in seen) for (w in wl) {
			k = s SUBSEP w
			if (!(k in rps)) continue
			m[k] = median(rps[k]); c[k] = median(cpu[k])
			fast[k] = (k in f50) ? sprintf("%.2f/%.2f", median(f50[k]), median(f99[k])) : "-"
			printf "%-12s %-8s %10.0f %9.2f %10.1f %14s %8s\n", s, w, m[k], median(p99[k]), c[k], fast[k], s == "in-process" ? "-" : rss[s]
		}
		print ""
		for (w in wl) {
			k = "mse-c" SUBSEP w
			if (!(k in m)) continue
			line = sprintf("%-8s", w)
			if (("in-process" SUBSEP w) in c && c["in-process" SUBSEP w] > 0)
				line = line sprintf("  mse-c CPU/req / in-process = %.2f (%.1f / %.1f us)", c[k] / c["in-process" SUBSEP w], c[k], c["in-process" SUBSEP w])
			if (("in-process" SUBSEP w) in m && m["in-process" SUBSEP w] > 0)
				line = line sprintf("  rate / in-process = %.2f", m[k] / m["in-process" SUBSEP w])
			for (s in seen) if (s != "mse-c" && s != "in-process" && ((s SUBSEP w) in m) && m[s SUBSEP w] > 0)
				line = line sprintf("  / %s = %.2fx", s, m[k] / m[s SUBSEP w])
			print line
		}
	}' "$RESULTS"

# 1 MiB bodies reaching the app, timed inside it (--no-tls: the body path
# without TLS decryption), mse-c only.
if [ "${BODY_RATE:-1}" = 1 ]; then
	port=$(free_port)
	"$MSE" serve rate:app --code "$WORK/app" --no-tls --port "$port" --log-level warn \
		--no-access-log >"$WORK/rate.log" 2>&1 &
	SERVER_PID=$!
	PIDS="$PIDS $SERVER_PID"
	for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/rate" >/dev/null 2>&1 && break; sleep 0.05; done
	"$PY" - "$port" "$SERVER_PID" <<'EOF'
import http.client, sys
port, pid = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)


def rss_kib():
    with open("/proc/%d/status" % pid) as f:
        return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])


# First, on the fresh server (one small request served): a 16 MiB body
# must stream, never be held: the server's RSS after three of them
# (readinto one buffer, then read(65536) pieces) against before.
c.request("POST", "/into", body=b"\x5a" * 1000)
assert c.getresponse().read() == b"ok"
big = b"\x5a" * (16 << 20)
before = rss_kib()
for path in ("/into", "/read64k", "/into", "/read64k", "/into", "/read64k"):
    c.request("POST", path, body=big)
    assert c.getresponse().read() == b"ok"
after = rss_kib()
print("16 MiB bodies (readinto, read(65536)), --no-tls: RSS %d -> %d KiB, +%d KiB "
      "(aim: <= 4096)" % (before, after, after - before))
body = b"\xa5" * (1 << 20)
for _ in range(300):
    c.request("POST", "/up", body=body)
    assert c.getresponse().read() == b"ok"
c.request("GET", "/rate")
n, t = c.getresponse().read().split()
print("1 MiB bodies, --no-tls, timed in the app (first to last byte, readinto): "
      "%d MiB in %.3f s = %.2f GB/s" % (int(n) >> 20, float(t), int(n) / float(t) / 1e9))
EOF
	stop_server
fi
