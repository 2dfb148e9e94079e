#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench_package — `mse package` against, in the same run:
#   python: bench/package_ref.py, MSE's algorithm with python3-nacl (encrypt each
#           file to NAME.enc, tar the directory, hash, tar the package)
#   floor:  build/tools/secretbox_floor, one secretbox pass + one write per file,
#           nothing else (no tar, no hash, no per-file outputs)
# on two inputs: 10,000 files of 4 KiB, and one file of 256 MiB.
# Each command runs BENCH_RUNS times (default 3); the best time is kept.
# Prints a table and the ratios; exit 0 (the figures are for bench/README.md).
set -eu
cd "$(dirname "$0")/.."
MSE=${MSE_BIN:-build/mse}
PY=${MSE_PYTHON:-/usr/bin/python3}
RUNS=${BENCH_RUNS:-3}
make --no-print-directory tools >/dev/null
FLOOR=build/tools/secretbox_floor
W=$(mktemp -d /tmp/mse-bench-package.XXXXXX)
trap 'rm -rf "$W"' EXIT

setup() { # DIR
	mkdir -p "$1/mse_src"
	printf 'from flask import Flask\napp = Flask(__name__)\n' >"$1/mse_src/app.py"
	printf 'name = "bench"\npython_application = "app:app"\nhealthcheck_endpoint = "/"\ntests_cmd = "pytest"\ntests_requirements = []\n' >"$1/mse.toml"
}
setup "$W/small"
setup "$W/large"
"$PY" - "$W/small/mse_src" <<'PYEOF'
import os, sys
root = sys.argv[1]
for d in range(100):
    os.makedirs(f"{root}/pkg{d:03d}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/pkg{d:03d}/mod{f:03d}.py", "wb") as fh:
            fh.write(os.urandom(4096))
PYEOF
head -c $((256 << 20)) /dev/urandom >"$W/large/mse_src/model.bin"
head -c 32 /dev/urandom >"$W/key"

# best CMD...: "WALL_MS CPU_MS", the best of RUNS runs (outputs removed between
# runs). CPU = user + system time of the command: on a shared machine the wall
# time also measures the neighbours, the CPU time much less so.
best() {
	local bw=0 bc=0 w c
	for _ in $(seq "$RUNS"); do
		rm -rf "$W/out" && mkdir -p "$W/out"
		sync
		/usr/bin/time -f "%e %U %S" -o "$W/time" "$@" >/dev/null
		read -r w c < <(awk '{ printf "%d %d\n", $1 * 1000, ($2 + $3) * 1000 }' "$W/time")
		if [ "$bw" -eq 0 ] || [ "$w" -lt "$bw" ]; then bw=$w; fi
		if [ "$bc" -eq 0 ] || [ "$c" -lt "$bc" ]; then bc=$c; fi
	done
	echo "$bw $bc"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

printf '%-16s %-5s %9s %9s %9s %11s %10s\n' case time "mse-c ms" "python ms" "floor ms" "python/mse" "floor/mse"
for c in small large; do
	cat "$W/$c/mse_src"/* "$W/$c/mse_src"/*/* >/dev/null 2>&1 || true # warm the page cache
	read -r mw mc < <(best "$MSE" package --code "$W/$c/mse_src" --config "$W/$c/mse.toml" \
		--output "$W/out" --key "$W/key" --quiet)
	read -r pw pc < <(best "$PY" bench/package_ref.py --code "$W/$c/mse_src" \
		--config "$W/$c/mse.toml" --output "$W/out" --key "$W/key")
	read -r fw fc < <(best "$FLOOR" "$W/out/floor.bin" "$W/$c/mse_src")
	label=$([ $c = small ] && echo "10,000 x 4 KiB" || echo "1 x 256 MiB")
	printf '%-16s %-5s %9s %9s %9s %11s %10s\n' "$label" wall "$mw" "$pw" "$fw" \
		"$(ratio "$pw" "$mw")" "$(ratio "$fw" "$mw")"
	printf '%-16s %-5s %9s %9s %9s %11s %10s\n' "" cpu "$mc" "$pc" "$fc" \
		"$(ratio "$pc" "$mc")" "$(ratio "$fc" "$mc")"
done
echo "python/mse: how many times faster mse-c is than the Python reference (aim >= 4 on small files)"
echo "floor/mse: mse-c throughput as a fraction of the floor's (aim >= 0.5 on the large file)"
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
