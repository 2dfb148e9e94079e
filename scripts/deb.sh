#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Turns a staged `make install PREFIX=/usr DESTDIR=ROOT` into
# OUTDIR/mse-c_VERSION_ARCH.deb, then checks it with lintian: any error fails.
#   scripts/deb.sh ROOT VERSION OUTDIR       (run by `make deb`)
# Depends comes from dpkg-shlibdeps over the programs, plus python3 (mse
# checks requirements.txt with /usr/bin/python3); Recommends what the
# scaffolded app and its tests import. Nothing here needs root.
set -euo pipefail
root=$1 version=$2 out=$3
arch=$(dpkg --print-architecture)
maint="mse-c maintainers <mse-c@example.org>"
work=$(mktemp -d "${TMPDIR:-/tmp}/mse-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
pkg=$work/pkg
doc=$pkg/usr/share/doc/mse-c

[ -x "$root/usr/bin/mse" ] || { echo "deb.sh: $root/usr/bin/mse missing (make install PREFIX=/usr DESTDIR=$root)" >&2; exit 1; }
cp -a "$root" "$pkg"
# Debian ships licences in copyright, and never a second copy.
rm -f "$doc/LICENSE"
# Every program in usr/bin (mse, mse-bootstrap, and whatever make install adds).
bins=()
for f in "$pkg"/usr/bin/*; do
	if [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then bins+=("$f"); fi
done
[ ${#bins[@]} -ge 2 ] || { echo "deb.sh: no programs in $pkg/usr/bin" >&2; exit 1; }
strip --remove-section=.comment --remove-section=.note --strip-unneeded "${bins[@]}"
find "$pkg/usr/share/man" -type f -exec gzip -9n {} +

# Dates come from the last commit, so two builds of one tree are identical.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: mse-c

Files: *
Copyright: $(date -u -d "@$epoch" +%Y) the mse-c authors
License: Apache-2.0

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License");
 you may not use this file except in compliance with the License.
 You may obtain a copy of the License at
 .
 http://www.apache.org/licenses/LICENSE-2.0
 .
 Unless required by applicable law or agreed to in writing, software
 distributed under the License is distributed on an "AS IS" BASIS,
 WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 See the License for the specific language governing permissions and
 limitations under the License.
 .
 On Debian systems, the full text of the Apache License, Version 2.0
 can be found in "/usr/share/common-licenses/Apache-2.0".
EOF
cat >"$work/changelog" <<EOF
mse-c ($version) unstable; urgency=medium

  * Built from the mse-c tree (make deb).

 -- $maint  $(date -u -R -d "@$epoch")
EOF
gzip -9n -c "$work/changelog" >"$doc/changelog.gz"

# Programs linked with Debian's libpython3.11.a (the Makefile's PY_STATIC=1,
# as Debian links /usr/bin/python3): non-PIE, and its pyexpat module carries
# expat's error messages, which lintian takes for an embedded expat (Debian's
# python3.11-minimal overrides the same tag); expat is the system's
# libexpat.so.1 (NEEDED).
overrides=""
for f in "${bins[@]}"; do
	if readelf -d "$f" | grep -q 'NEEDED.*libexpat' && ! readelf -d "$f" | grep -q 'NEEDED.*libpython'; then
		rel=${f#"$pkg"/}
		overrides+="mse-c: embedded-library expat [$rel]"$'\n'"mse-c: hardening-no-pie [$rel]"$'\n'
	fi
done
if [ -n "$overrides" ]; then
	mkdir -p "$pkg/usr/share/lintian/overrides"
	printf '%s' "$overrides" >"$pkg/usr/share/lintian/overrides/mse-c"
fi

# Runtime libraries, as dpkg-shlibdeps finds them (it wants a debian/control).
mkdir -p "$work/src/debian"
printf 'Source: mse-c\n\nPackage: mse-c\nArchitecture: any\n' >"$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O "${bins[@]/#/-e}" 2>/dev/null |
	sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

mkdir -p "$pkg/DEBIAN"
(cd "$pkg" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"
cat >"$pkg/DEBIAN/control" <<EOF
Package: mse-c
Version: $version
Architecture: $arch
Maintainer: $maint
Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
Depends: $shlibs, python3
Recommends: python3-flask, python3-pytest, python3-requests
Section: admin
Priority: optional
Description: run Python web apps in Intel SGX enclaves, with remote attestation
 mse-c runs an unmodified Python WSGI or ASGI app (Flask, Django, FastAPI...)
 inside an Intel SGX enclave, or in a faithful simulation on machines without
 SGX. It proves what code runs there through an RA-TLS certificate, delivers
 the code key and secrets only after that proof, and serves the app over TLS
 from a C server with CPython embedded. It is wire-compatible with Cosmian's
 MicroService Encryption (MSE).
 .
 This package provides the mse command line and mse-bootstrap, the program
 that runs inside the enclave.
EOF
find "$pkg" -exec touch --no-dereference -d "@$epoch" {} +
mkdir -p "$out"
deb="$out/mse-c_${version}_${arch}.deb"
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "deb.sh: built $deb"

# lintian: errors fail the build; warnings are printed.
if ! lintian --fail-on error --tag-display-limit 0 "$deb"; then
	echo "deb.sh: lintian reports errors in $deb" >&2
	exit 1
fi
echo "deb.sh: lintian: no errors"
