#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The images and the Kubernetes manifests, run (tests/k8s/test_podman.py):
# `mse image build` twice from the cached base (same digests), then
# `podman kube play` of `mse k8s render --podman`: a coordinator and three
# replicas attest and serve, a killed replica comes back by itself, a new
# version rolls out with the app key kept.
#   scripts/k8s-check.sh [BUILD_DIR]     (run by `make k8s-check`; needs root)
# podman reads build/k8s/containers.conf (runc, ulimits: tests/k8s/containers.conf)
# through CONTAINERS_CONF; /etc/containers is never touched. The image base is
# cached in $MSE_CACHE (default ~/.cache/mse-c): the first run makes it with
# mmdebstrap (a few minutes), later ones reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "k8s-check: needs root (mmdebstrap, podman)" >&2; exit 2; }
BUILD=$(cd "${1:-build}" && pwd)
for p in mse mse-bootstrap mse-coordinator; do
	[ -x "$BUILD/$p" ] || { echo "k8s-check: $BUILD/$p missing (make all)" >&2; exit 2; }
done
mkdir -p build/k8s
cp tests/k8s/containers.conf build/k8s/containers.conf
export CONTAINERS_CONF=$PWD/build/k8s/containers.conf
export MSE_CACHE=${MSE_CACHE:-$HOME/.cache/mse-c}
export MSE_BUILD=$BUILD MSE_ROOT=$PWD
# The tests' own state, not the user's.
T=$(mktemp -d /tmp/mse-k8s-check.XXXXXX)
trap 'rm -rf "$T"' EXIT
export HOME=$T XDG_CONFIG_HOME=$T/.config XDG_STATE_HOME=$T/.local/state
timeout 1500 /usr/bin/python3 -m pytest -q -p no:cacheprovider -rfEs -s --basetemp="$T/pytest" \
	tests/k8s/test_podman.py
