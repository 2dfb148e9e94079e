#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make demo: the main job on this machine, in simulation (no SGX needed):
# scaffold a Flask app -> deploy it (package, spawn, evidence, verify, seal,
# run, tests) -> call it through the pinned RA-TLS certificate.
# Everything happens in a throw-away directory with its own HOME; the
# enclave is stopped and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
MSE=${MSE:-$(pwd)/build/mse}
PY=${MSE_PYTHON:-/usr/bin/python3}
DEMO=$(mktemp -d /tmp/mse-demo.XXXXXX)
export HOME="$DEMO/home" XDG_STATE_HOME="$DEMO/home/.local/state" XDG_CONFIG_HOME="$DEMO/home/.config"
export XDG_CACHE_HOME="$DEMO/home/.cache"
mkdir -p "$HOME"
cleanup() {
	"$MSE" stop demo --remove >/dev/null 2>&1 || true
	rm -rf "$DEMO"
}
trap cleanup EXIT

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "mse scaffold demo"
cd "$DEMO"
"$MSE" scaffold demo

say "mse deploy --project demo   (simulation: this machine has no SGX)"
"$MSE" deploy --project demo

PORT=$("$MSE" status demo --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["port"])')
CA=demo/.mse/verified/ratls.pem
URL="https://localhost:$PORT"

say "Calling the app through the pinned certificate ($CA)"
echo "\$ curl --cacert $CA $URL/whoami           # reads \$SECRETS_PATH"
curl -sS --fail --cacert "$CA" "$URL/whoami"; echo
echo "\$ curl --cacert $CA -X POST $URL/          # writes a file in \$HOME"
curl -sS --fail --cacert "$CA" -X POST "$URL/" -o /dev/null -w '%{http_code}\n'
echo "\$ curl --cacert $CA $URL/                  # reads it back"
curl -sS --fail --cacert "$CA" "$URL/"; echo
echo "\$ curl --cacert $CA '$URL/sign?message=hi' # HMAC under the sealed api_key"
curl -sS --fail --cacert "$CA" "$URL/sign?message=hi"
want=$("$PY" -c 'import hmac,hashlib,json; k=json.load(open("demo/secrets_to_seal.json"))["api_key"]; print(hmac.new(k.encode(), b"hi", hashlib.sha256).hexdigest())')
echo "expected hmac_sha256 (computed here from secrets_to_seal.json): $want"

say "mse status demo"
"$MSE" status demo
say "Done: stopping and removing the enclave"
"$MSE" stop demo --remove
