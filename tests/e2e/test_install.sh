#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make install / make uninstall with PREFIX and DESTDIR: the installed mse
# deploys a scaffolded app (simulation) with the mse-bootstrap installed beside
# it, shows its own man pages, and uninstall leaves no file behind.
# Installs the binaries of MSE_BUILD (the suite's build), so nothing is rebuilt.
set -u
cd "$(dirname "$0")/../.."
# Run from `make check`: the outer make's flags and command-line variables
# (SKIP_DEPS=1, SAN, BUILD... which make also exports) must not leak in.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES SKIP_DEPS SAN BUILD ENTRY_MAKEFLAGS
ROOT=$(pwd)
BUILD=$(cd "${MSE_BUILD:-build/san}" && pwd)
PY=${MSE_PYTHON:-/usr/bin/python3}
T=$(mktemp -d /tmp/mse-install.XXXXXX)
PREFIX=/opt/mse-c
BIN=$T/dest$PREFIX/bin
cleanup() {
	[ -x "$BIN/mse" ] && "$BIN/mse" stop app --remove >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

SAN=0
[ -e "$BUILD/obj" ] && nm "$BUILD/mse" 2>/dev/null | grep -q __asan_init && SAN=1
mk() { make --no-print-directory -C "$ROOT" SKIP_DEPS=1 SAN=$SAN BUILD="$BUILD" \
	PREFIX=$PREFIX DESTDIR="$T/dest" "$@"; }

mk install >"$T/install.log" 2>&1 || { tail -20 "$T/install.log"; fail "make install"; }
for f in bin/mse bin/mse-bootstrap share/man/man1/mse.1 share/man/man5/mse.toml.5 \
	share/man/man8/mse-bootstrap.8 share/bash-completion/completions/mse \
	share/doc/mse-c/README.md share/doc/mse-c/LICENSE; do
	[ -f "$T/dest$PREFIX/$f" ] || fail "not installed: $PREFIX/$f"
done
for c in $(sed -n 's/^MSE_CMD(\([a-z][a-z0-9]*\),.*/\1/p' src/cli/commands.def); do
	[ -f "$T/dest$PREFIX/share/man/man1/mse-$c.1" ] || fail "no installed page for mse $c"
done
[ -x "$BIN/mse" ] && [ -x "$BIN/mse-bootstrap" ] || fail "binaries not executable"
cmp -s "$BIN/mse-bootstrap" "$BUILD/mse-bootstrap" || fail "installed mse-bootstrap differs from the build's"
echo "ok: make install DESTDIR=... PREFIX=$PREFIX"

# The installed mse alone: no MSE_BOOTSTRAP, no build tree on PATH, its own HOME.
unset MSE_BOOTSTRAP MSE_BIN MSE_BUILD
export HOME=$T/home XDG_STATE_HOME=$T/home/state XDG_CONFIG_HOME=$T/home/config XDG_CACHE_HOME=$T/home/cache
export PATH="$BIN:/usr/local/bin:/usr/bin:/bin"
mkdir -p "$HOME" "$T/work"
cd "$T/work"
[ "$(command -v mse)" = "$BIN/mse" ] || fail "mse on PATH is $(command -v mse)"
mse scaffold app >"$T/scaffold.log" 2>&1 || { cat "$T/scaffold.log"; fail "mse scaffold"; }
mse deploy --project app >"$T/deploy.log" 2>&1 || { tail -40 "$T/deploy.log"; fail "mse deploy with the installed mse"; }
pid=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$XDG_STATE_HOME/mse/app/state.json")
exe=$(readlink "/proc/$pid/exe")
[ "$exe" = "$BIN/mse-bootstrap" ] || fail "the enclave runs $exe, not the installed $BIN/mse-bootstrap"
port=$(mse status app --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["port"])')
body=$(curl -sS --fail --cacert app/.mse/verified/ratls.pem "https://localhost:$port/health") ||
	fail "GET /health through the pinned certificate"
[ "$body" = "OK" ] || fail "GET /health answered '$body'"
echo "ok: the installed mse scaffolds and deploys (enclave: $exe, verified, health OK)"

# The health check needs a 2xx: pointed at a path the app answers 404, the
# instance is not running.
st=$XDG_STATE_HOME/mse/app/state.json
cp "$st" "$T/state.json"
"$PY" -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); d["healthcheck_endpoint"]="/nothere"; json.dump(d,open(p,"w"))' "$st"
if mse status app >"$T/status.log" 2>&1; then cat "$T/status.log"; fail "status: running although the health check answers 404"; fi
grep -q "HTTP 404" "$T/status.log" || { cat "$T/status.log"; fail "status does not say what the health check answered"; }
cp "$T/state.json" "$st"
mse status app >"$T/status.log" 2>&1 || { cat "$T/status.log"; fail "status after restoring the health check"; }
echo "ok: mse status: running only when healthcheck_endpoint answers a 2xx"

# The verifier measures the mse-bootstrap beside mse: with another one there,
# the same package no longer verifies.
cp -p "$BIN/mse-bootstrap" "$T/mse-bootstrap.orig"
cp -p "$BIN/mse-bootstrap" "$T/mse-bootstrap.other" && printf '\n' >>"$T/mse-bootstrap.other"
mv "$T/mse-bootstrap.other" "$BIN/mse-bootstrap" # a new file: the running one is busy
mse evidence app --output "$T/ev" >/dev/null 2>&1 || fail "mse evidence"
pkg=$(ls app/.mse/package.*/package_app_*.tar | head -n 1)
if mse verify --package "$pkg" --evidence "$T/ev/evidence.json" --allow-simulation >"$T/verify.log" 2>&1; then
	fail "verify accepted an enclave whose mse-bootstrap is not the one beside mse"
fi
grep -q measurement "$T/verify.log" || { cat "$T/verify.log"; fail "verify did not fail at the measurement"; }
cp "$T/mse-bootstrap.orig" "$BIN/mse-bootstrap"
mse verify --package "$pkg" --evidence "$T/ev/evidence.json" --allow-simulation >"$T/verify.log" 2>&1 ||
	{ cat "$T/verify.log"; fail "verify with the installed mse-bootstrap"; }
echo "ok: mse verify measures the mse-bootstrap beside the installed mse"

if command -v man >/dev/null; then
	out=$(MANPATH=/nonexistent MANPAGER=cat LC_ALL=C mse help deploy 2>&1)
	grep -q "mse-deploy - package, spawn" <<<"$out" || { echo "$out" | head; fail "mse help deploy: no page"; }
	echo "ok: mse help deploy shows the installed page"
fi
mse stop app --remove >/dev/null || fail "mse stop --remove"
cd "$ROOT"

mk uninstall >"$T/uninstall.log" 2>&1 || { cat "$T/uninstall.log"; fail "make uninstall"; }
left=$(find "$T/dest" ! -type d)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "ok: make uninstall leaves no file"
