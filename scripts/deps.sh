#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Install every Debian package mse-c needs to build, test and demo.
# Idempotent: when everything is already installed it only runs dpkg-query.
#   scripts/deps.sh          build + man pages + test + demo dependencies
#   scripts/deps.sh --bench  also the benchmark peers (wrk, hyperfine, hypercorn, gunicorn,
#                            uWSGI and nginx for bench/bench_serve.sh)
#   scripts/deps.sh --fuzz   also clang's libFuzzer runtime
#   scripts/deps.sh --deb    also what `make deb` and `make deb-check` need (lintian, mmdebstrap)
#   scripts/deps.sh --k8s    also what `make k8s-check` needs (mmdebstrap, podman and its runc,
#                            netavark, aardvark-dns, catatonit, iptables)
#   scripts/deps.sh --check  also the Kubernetes schema validator of the tests (`make check`
#                            runs this): npm's kubernetes-models, pinned with integrity
#                            hashes in tests/k8s/package-lock.json, into build/k8s-validate/
#                            with `npm ci` (again only when the lockfile changed)
set -eu
VALIDATOR=

PKGS="build-essential gcc clang make pkg-config git openssl ca-certificates
libssl-dev libsodium-dev libjansson-dev libarchive-dev libcurl4-openssl-dev
libseccomp-dev libpython3.11-dev libcmocka-dev libclang-rt-14-dev
python3 python3-flask python3-pytest python3-requests python3-nacl
python3-cryptography curl scdoc man-db dpkg-dev
python3-fastapi python3-starlette python3-quart python3-uvicorn python3-httpx
python3-websockets python3-h11 libwslay-dev yamllint nodejs
libnghttp2-dev nghttp2-client python3-h2"

for arg in "$@"; do
	case "$arg" in
	--bench) PKGS="$PKGS wrk hyperfine python3-hypercorn python3-asgiref gunicorn valgrind
		uwsgi-core uwsgi-plugin-python3 nginx-light" ;;
	--fuzz) PKGS="$PKGS libclang-rt-14-dev" ;;
	--deb) PKGS="$PKGS lintian mmdebstrap binutils" ;;
	--check)
		VALIDATOR=1
		# npm: Debian's, unless the installed nodejs brings its own (a nodejs
		# package from elsewhere that bundles npm conflicts with Debian's npm).
		command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm" ;;
	--k8s) PKGS="$PKGS mmdebstrap podman runc netavark aardvark-dns catatonit iptables" ;;
	-h|--help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "deps.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
	esac
done

missing=""

for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
k8s_validator() {
	[ -n "$VALIDATOR" ] || return 0
	cd "$(dirname "$0")/.."
	dest=build/k8s-validate
	[ -f tests/k8s/package-lock.json ] || return 0
	if [ -d "$dest/node_modules/kubernetes-models" ] &&
		cmp -s tests/k8s/package-lock.json "$dest/package-lock.json"; then
		return 0
	fi
	echo "deps.sh: npm ci (kubernetes-models, tests/k8s/package-lock.json) into $dest"
	rm -rf "$dest"
	mkdir -p "$dest"
	cp tests/k8s/package.json tests/k8s/package-lock.json "$dest/"
	(cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
}

if [ -z "$missing" ]; then
	k8s_validator
	exit 0
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
k8s_validator
