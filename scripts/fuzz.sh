#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs each libFuzzer target for SECONDS seconds, starting from its seed corpus.
# New inputs go to build/fuzz/corpus/NAME (not the checked-in seeds); crashes
# to build/fuzz/crashes/. Usage: scripts/fuzz.sh FUZZ_BUILD_DIR SECONDS [NAME]
set -eu
cd "$(dirname "$0")/.."
dir=$1 secs=$2 only=${3:-}
status=0
mkdir -p "$dir/crashes"
for f in "$dir"/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f"); name=${name#fuzz_}
	[ -n "$only" ] && [ "$only" != "$name" ] && continue
	work="$dir/corpus/$name"; mkdir -p "$work"
	seeds="tests/fuzz/corpus/$name"; [ -d "$seeds" ] || seeds=""
	echo "== fuzz $name for ${secs}s"
	if ! "$f" -max_total_time="$secs" -artifact_prefix="$dir/crashes/$name-" \
		-print_final_stats=1 "$work" $seeds 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|crash-|leak-|timeout-'; then
		:
	fi
	if ls "$dir/crashes/$name-"* >/dev/null 2>&1; then echo "!! $name: crashes in $dir/crashes"; status=1; fi
done
exit $status
