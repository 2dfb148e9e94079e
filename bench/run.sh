#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs every bench/bench_*.sh in turn. BENCH=name runs only bench/bench_name.sh.
set -eu
cd "$(dirname "$0")/.."
for b in bench/bench_*.sh; do
	[ -f "$b" ] || continue
	name=$(basename "$b" .sh); name=${name#bench_}
	[ -n "${BENCH:-}" ] && [ "$BENCH" != "$name" ] && continue
	echo "== bench $name"
	bash "$b"
done
