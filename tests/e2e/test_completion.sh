#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The bash completion (scripts/completion.bash): commands, each command's
# options, instance names for status/logs/stop/restart, files and
# directories for options that take them. Expected values are read from the
# dispatch table and from --help, independently of the script's own parsing.
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD=$(cd "${MSE_BUILD:-build/san}" && pwd)
T=$(mktemp -d /tmp/mse-comp.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

export PATH="$BUILD:$PATH" XDG_STATE_HOME="$T/state"
# shellcheck source=../../scripts/completion.bash
source scripts/completion.bash
complete -p mse >/dev/null || fail "no completion registered for mse"

comp() { # comp WORD... : completes the last word
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_mse
	printf '%s\n' "${COMPREPLY[@]}" | sort
}

# Commands: exactly the dispatch table (plus help and the global options).
want=$( (sed -n 's/^MSE_CMD(\([a-z][a-z0-9]*\),.*/\1/p' src/cli/commands.def; printf 'help\n--help\n--version\n') | sort)
got=$(comp mse "")
[ "$got" = "$want" ] || { diff <(echo "$want") <(echo "$got"); fail "commands"; }
[ "$(comp mse dep)" = "deploy" ] || fail "mse dep<TAB>: $(comp mse dep)"
[ "$(comp mse help verif)" = "verify" ] || fail "mse help verif<TAB>"
echo "ok: commands"

# Options: every long option of each command's --help, in its usage lines and
# its option list (lines that start with an option).
for cmd in $(sed -n 's/^MSE_CMD(\([a-z][a-z0-9]*\),.*/\1/p' src/cli/commands.def); do
	got=$(comp mse "$cmd" --)
	opts=$( (mse "$cmd" --help | sed -n '1,/^$/p' | grep -oE -- '--[a-z][a-z0-9-]*'
		mse "$cmd" --help | grep -oE -- '^ +(-[a-zA-Z], )?--[a-z][a-z0-9-]*' | grep -oE -- '--[a-z0-9-]+') | sort -u)
	[ -n "$opts" ] || fail "no options found in mse $cmd --help"
	for o in $opts; do
		grep -qx -- "$o" <<<"$got" || fail "mse $cmd --<TAB> lacks $o"
	done
done
[ "$(comp mse verify --allow-sim)" = "--allow-simulation" ] || fail "mse verify --allow-sim<TAB>"
echo "ok: options of every command"

# Instance names, from the state directories (what `mse list -q` reads).
for n in alpha beta; do
	mkdir -p "$T/state/mse/$n"
	echo '{}' >"$T/state/mse/$n/state.json"
done
for cmd in status logs stop restart; do
	got=$(comp mse "$cmd" "")
	[ "$got" = "$(printf 'alpha\nbeta')" ] || fail "mse $cmd <TAB>: '$got'"
	[ "$(comp mse "$cmd" al)" = "alpha" ] || fail "mse $cmd al<TAB>"
done
# ...only as the first argument
[ -z "$(comp mse stop alpha "")" ] || [ "$(comp mse stop alpha "")" != "$(printf 'alpha\nbeta')" ] ||
	fail "mse stop alpha <TAB> offers names again"
echo "ok: instance names for status, logs, stop, restart"

# Option arguments: directories for DIR, files otherwise.
mkdir -p "$T/work/outdir" && touch "$T/work/outfile"
cd "$T/work"
[ "$(comp mse package --output out)" = "outdir" ] || fail "--output DIR should complete directories: $(comp mse package --output out)"
got=$(comp mse seal --input out)
[ "$got" = "$(printf 'outdir\noutfile')" ] || fail "--input FILE should complete files: '$got'"
cd "$ROOT"
echo "ok: option arguments"
