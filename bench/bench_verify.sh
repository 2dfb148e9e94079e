#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Verify benchmark: mse-c's verifier (tests/tools/bench_verify.c) in its
# configurations (a) per-platform cache, (b) everything each time with and
# without the parsed-certificate cache, (d) the ECDSA verifications alone, and
# (c) the Python reference verifier bench/verify_ref.py (python3-cryptography)
# on the same quote and collateral, all in this run, for an SGX quote
# (sgx3-dcapqvl) and TDX quotes v4 (tdx4-dcapqvl) and v5 with TD report 1.5
# (tdx5-oe-relaunch). Times are CPU time, so a busy shared machine slows both
# sides alike. Usage: bench/bench_verify.sh [SECONDS] [SET...]
set -eu
cd "$(dirname "$0")/.."
PY=${MSE_PYTHON:-/usr/bin/python3}
VEC=${MSE_VECTORS:-$(cd ../shared/vectors && pwd)}
SECS=${1:-2}
shift || true
SETS=${*:-"sgx3-dcapqvl tdx4-dcapqvl tdx5-oe-relaunch"}
make --no-print-directory -s tools >/dev/null

now_of() {
	case $1 in
	sgx3-dcapqvl) echo 2025-07-19T10:01:17Z ;;
	tdx4-dcapqvl) echo 2025-07-19T10:00:34Z ;;
	tdx5-oe-relaunch) echo 2025-03-01T00:00:00Z ;;
	*) echo "bench_verify: no 'now' known for $1" >&2; exit 2 ;;
	esac
}

for name in $SETS; do
	SET="$VEC/dcap-quotes/$name"
	NOW=$(now_of "$name")
	echo "-- $name"
	out=$(MSE_VECTORS="$VEC" build/tools/bench_verify "$SET" "$NOW" "$SECS")
	echo "$out"
	get() { echo "$out" | grep -oE "$1=[0-9.]+" | head -n1 | cut -d= -f2; }
	a=$(get a_cached_us); b=$(get b_full_nocache_us); bc=$(get b_full_certcache_us); d=$(get d_ecdsa_only_us)

	c=""
	if [ -f bench/verify_ref.py ]; then
		# CPU seconds of N iterations minus those of 1 (interpreter start and imports).
		cpu() {
			( TIMEFORMAT='%U %S'; { time "$PY" bench/verify_ref.py --collateral "$SET" --now "$NOW" \
				--bench "$1" >/dev/null; } 2>&1 ) | awk '{print $1+$2}'
		}
		n=200
		c1=$(cpu 1); cn=$(cpu $n)
		c=$(awk -v a="$cn" -v b="$c1" -v n="$n" 'BEGIN { printf "%.1f", (a - b) * 1e6 / (n - 1) }')
		echo "c_python_ref_us=$c (python3-cryptography, CPU time, $n iterations)"
	else
		echo "c_python_ref_us=n/a (bench/verify_ref.py not present)"
	fi
	awk -v n="$name" -v a="$a" -v b="$b" -v bc="$bc" -v d="$d" -v c="$c" 'BEGIN {
		printf "summary %s: (a) %.0f us/quote = %.0f quotes/s per core (aim <= 200 us)\n", n, a, 1e6 / a
		printf "         (b) %.0f us/quote without any cache, %.0f us with the certificate cache\n", b, bc
		printf "         (b)/(d) = %.2f without, %.2f with the certificate cache (aim <= 1.5)\n", b / d, bc / d
		if (c != "") printf "         (c)/(b) = %.1f without cache, %.1f with (aim >= 2)\n", c / b, c / bc
	}'
done
