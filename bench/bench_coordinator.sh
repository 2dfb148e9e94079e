#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The coordinator (docs/coordinator.md): replica cold start -> first 200 through
# the CA, CONC replicas attesting at once (default 100), REAL real replicas at once.
# Release build (make); RUNS, CONC, REAL override the sizes.
set -eu
cd "$(dirname "$0")/.."
BUILD=${MSE_BUILD:-build}
for b in mse mse-bootstrap mse-coordinator; do
	[ -x "$BUILD/$b" ] || { echo "bench_coordinator: $BUILD/$b missing (make)" >&2; exit 1; }
done
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
MSE_BUILD="$BUILD" "${MSE_PYTHON:-/usr/bin/python3}" bench/coordinator_bench.py
