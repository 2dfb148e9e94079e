#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs every test of mse-c against the binaries in BUILD_DIR and ends with
# one line "N passed, N failed[, N skipped]". Exit status 1 if any failed.
#
#   scripts/run-tests.sh [BUILD_DIR] [FILTER]
#
# - unit tests: BUILD_DIR/tests/test_* (cmocka, TAP output), one count per case
# - end-to-end: tests/e2e/test_*.sh (exit 0 pass, 77 skip, else fail) and
#   tests/e2e/test_*.py (pytest, run with $MSE_PYTHON, default /usr/bin/python3)
# - fuzz regression: build/fuzz/fuzz_* replayed over tests/fuzz/corpus/NAME
# FILTER (a substring) restricts which files run.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${1:-build/san}
FILTER=${2:-}
BUILD=$(cd "$BUILD" && pwd) || { echo "run-tests: no build directory $1" >&2; exit 2; }
PY=${MSE_PYTHON:-/usr/bin/python3}

export MSE_BUILD="$BUILD" MSE_BIN="$BUILD/mse" MSE_BOOTSTRAP="$BUILD/mse-bootstrap"
export MSE_ROOT="$ROOT" MSE_PYTHON="$PY"
export MSE_VECTORS="${MSE_VECTORS:-$(cd "$ROOT/../shared/vectors" 2>/dev/null && pwd)}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export CMOCKA_MESSAGE_OUTPUT=TAP
# Tests never touch the user's real configuration or state.
TESTHOME=$(mktemp -d /tmp/mse-test-home.XXXXXX)
export HOME="$TESTHOME" XDG_CONFIG_HOME="$TESTHOME/.config" XDG_STATE_HOME="$TESTHOME/.local/state"
export XDG_CACHE_HOME="$TESTHOME/.cache"
trap 'rm -rf "$TESTHOME"' EXIT

pass=0 fail=0 skip=0
failed_names=()
LOG=$(mktemp /tmp/mse-test-log.XXXXXX)

match() { [ -z "$FILTER" ] || [[ "$1" == *"$FILTER"* ]]; }

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	match "$t" || continue
	name=$(basename "$t")
	timeout 600 "$t" >"$LOG" 2>&1
	rc=$?
	p=$(grep -c '^ok ' "$LOG")
	f=$(grep -c '^not ok ' "$LOG")
	s=$(grep -c '^ok .*# SKIP' "$LOG")
	p=$((p - s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	if [ "$f" -ne 0 ]; then
		failed_names+=("$name")
		echo "---- FAIL $name (exit $rc)"; tail -n 60 "$LOG"
	else
		echo "ok   $name ($p cases)"
	fi
done

for t in tests/e2e/test_*.sh; do
	[ -f "$t" ] || continue
	match "$t" || continue
	timeout 900 bash "$t" >"$LOG" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then pass=$((pass + 1)); echo "ok   $t"
	elif [ $rc -eq 77 ]; then skip=$((skip + 1)); echo "skip $t: $(tail -n 1 "$LOG")"
	else fail=$((fail + 1)); failed_names+=("$t"); echo "---- FAIL $t (exit $rc)"; tail -n 60 "$LOG"
	fi
done

pyfiles=()
for t in tests/e2e/test_*.py; do
	[ -f "$t" ] && match "$t" && pyfiles+=("$t")
done
if [ ${#pyfiles[@]} -gt 0 ]; then
	timeout 1800 "$PY" -m pytest -q -p no:cacheprovider -rfEs "${pyfiles[@]}" >"$LOG" 2>&1
	rc=$?
	summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|error)' "$LOG" | tail -n 1)
	get() { echo "$summary" | grep -oE "[0-9]+ $1" | grep -oE '[0-9]+' || echo 0; }
	p=$(get passed); f=$(get failed); e=$(get error); s=$(get skipped)
	f=$((f + e))
	if [ $rc -ne 0 ] && [ $f -eq 0 ]; then f=1; fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	if [ $f -ne 0 ]; then
		failed_names+=("pytest")
		echo "---- FAIL pytest (exit $rc)"; tail -n 120 "$LOG"
	else
		echo "ok   pytest: $summary"
	fi
fi

# Fuzz regression: each target replays its seed corpus (no new inputs).
if [ -d build/fuzz ]; then
	for f in build/fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		match "$f" || continue
		name=$(basename "$f")
		corpus="tests/fuzz/corpus/${name#fuzz_}"
		[ -d "$corpus" ] || { skip=$((skip + 1)); echo "skip $name: no corpus"; continue; }
		if ASAN_OPTIONS=detect_leaks=1 timeout 300 "$f" -runs=0 "$corpus" >"$LOG" 2>&1; then
			pass=$((pass + 1)); echo "ok   $name (corpus replay)"
		else
			fail=$((fail + 1)); failed_names+=("$name"); echo "---- FAIL $name"; tail -n 40 "$LOG"
		fi
	done
fi
rm -f "$LOG"

[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
if [ $skip -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ $fail -eq 0 ]
