#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Every entry target of the Makefile works the first time on a machine where
# the -dev packages are not installed yet (issue 13): its compile and link
# commands get pkg-config's flags although pkg-config fails until deps.sh ran.
#
# A PKG_CONFIG wrapper fails until a marker file exists, and adds a mark of its
# own to the flags once it does; a fake deps.sh creates the marker. Each entry
# target runs with the second make in dry-run mode (ENTRY_MAKEFLAGS=-n), so the
# commands it would run are printed, not run, into throw-away build dirs.
set -u
cd "$(dirname "$0")/../.."
# Run from `make check`: the outer make's flags and command-line variables
# (SKIP_DEPS=1, SAN, BUILD... which make also exports) must not leak in.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES SKIP_DEPS SAN BUILD ENTRY_MAKEFLAGS
T=$(mktemp -d /tmp/mse-fresh.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat >"$T/pkg-config" <<EOF
#!/bin/sh
[ -e "$T/installed" ] || { echo "pkg-config: package not found (not installed yet)" >&2; exit 1; }
out=\$(pkg-config "\$@") || exit \$?
case " \$* " in
*" --cflags "*) echo "\$out -DMSE_FRESH_CFLAGS" ;;
*" --libs "*) echo "\$out -L/nonexistent/mse-fresh-libs" ;;
*) echo "\$out" ;;
esac
EOF
printf '#!/bin/sh\necho "fake deps.sh $*" >&2\ntouch "%s/installed"\n' "$T" >"$T/deps.sh"
chmod +x "$T/pkg-config" "$T/deps.sh"

run_make() {
	make --no-print-directory PKG_CONFIG="$T/pkg-config" DEPS_SH="$T/deps.sh" \
		BUILD="$T/b" SAN_BUILD="$T/san" CLANG_BUILD="$T/clang" FUZZ_BUILD="$T/fuzz" \
		DEB_BUILD="$T/deb" DEB_OUT="$T/out" DESTDIR="$T/dest" "$@"
}

# Without deps, a plain build must stop with a message that says what to do
# (never compile without include paths).
rm -f "$T/installed"
run_make -n all >"$T/plain.log" 2>&1 && fail "make all succeeded without pkg-config"
grep -q "the -dev packages are missing; run 'make deps'" "$T/plain.log" ||
	{ cat "$T/plain.log"; fail "make all: no hint to run make deps"; }
echo "ok: make all without the -dev packages stops and says 'make deps'"
touch "$T/installed"
run_make -n all >"$T/plain.log" 2>&1 || { tail "$T/plain.log"; fail "make -n all failed with the packages installed"; }
n=$(grep -E ' -c [^ ]+\.c -o ' "$T/plain.log" | grep -c -- '-DMSE_FRESH_CFLAGS')
[ "$n" -gt 0 ] || fail "make all: no compile command with pkg-config's flags"
echo "ok: make all with the packages installed: $n compile commands with pkg-config's flags"

for target in demo check bench fuzz install deb deb-check; do
	rm -f "$T/installed"
	rm -rf "$T/b" "$T/san" "$T/clang" "$T/fuzz" "$T/deb"
	run_make ENTRY_MAKEFLAGS=-n "$target" >"$T/$target.log" 2>&1
	rc=$?
	log="$T/$target.log"
	[ -e "$T/installed" ] || { tail -20 "$log"; fail "$target: deps did not run"; }
	[ $rc -eq 0 ] || { tail -30 "$log"; fail "$target: make exited $rc"; }
	case $target in
	bench) flags=--bench ;; fuzz) flags=--fuzz ;; deb | deb-check) flags=--deb ;; *) flags= ;;
	esac
	grep -qx "fake deps.sh $flags" "$log" || { grep "fake deps" "$log"; fail "$target: deps.sh not run with '$flags'"; }
	# compile commands: "... -c src/x.c -o .../x.o"
	ncc=$(grep -cE ' -c [^ ]+\.c -o ' "$log")
	[ "$ncc" -gt 0 ] || { tail -30 "$log"; fail "$target: no compile command"; }
	bad=$(grep -E ' -c [^ ]+\.c -o ' "$log" | grep -vc -- '-DMSE_FRESH_CFLAGS')
	[ "$bad" -eq 0 ] || { grep -E ' -c [^ ]+\.c -o ' "$log" | grep -v -- '-DMSE_FRESH_CFLAGS' | head -3
		fail "$target: $bad of $ncc compile commands lack pkg-config's --cflags"; }
	# link commands of the programs
	nld=$(grep -E -- '-o [^ ]+/(mse|mse-bootstrap|fuzz_[a-z_]+) ' "$log" | grep -vc ' -c ')
	[ "$nld" -gt 0 ] || { tail -30 "$log"; fail "$target: no link command"; }
	bad=$(grep -E -- '-o [^ ]+/(mse|mse-bootstrap|fuzz_[a-z_]+) ' "$log" | grep -v ' -c ' | grep -vc 'mse-fresh-libs')
	[ "$bad" -eq 0 ] || fail "$target: $bad link commands lack pkg-config's --libs"
	echo "ok: make $target: deps first, then $ncc compile and $nld link commands, all with pkg-config's flags"
done

# deps.sh is idempotent and quick when everything is installed: dpkg-query only.
start=$(date +%s%N)
scripts/deps.sh >"$T/deps.log" 2>&1 || { cat "$T/deps.log"; fail "deps.sh failed"; }
[ ! -s "$T/deps.log" ] || { cat "$T/deps.log"; fail "deps.sh did something although everything is installed"; }
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 30000 ] || fail "deps.sh took ${ms} ms with everything installed"
echo "ok: deps.sh with everything installed: ${ms} ms, no output"
