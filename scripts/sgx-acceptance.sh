#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# scripts/sgx-acceptance.sh — for the owner of an SGX machine with Gramine:
# proves mse-c's SGX path on real hardware and prints a report to paste into
# an issue. See docs/sgx.md (set-up, what must be installed).
#
#   scripts/sgx-acceptance.sh
#
# Environment:
#   MSE        the mse to test (default: mse on PATH, else build/mse)
#   PCCS_URL   the PCCS for Intel's collateral (default: pccs_url of
#              /etc/sgx_default_qcnl.conf, as mse reads it)
#   PORT       the port the app listens on (default: a free one)
#   KEEP=1     keep the work directory (logs, evidence, keys) afterwards
#   MSE_ACCEPTANCE_STANDIN=1  for mse-c's own test of this script, with the
#              Gramine stand-in (tests/gramine-standin) on PATH: no SGX device
#              needed, simulation quotes accepted. The report says so; it is
#              NOT an SGX result.
#
# Steps: environment, mse doctor (if this mse has it), signer key, scaffold,
# deploy --sgx (verified against the PCCS's collateral, MRENCLAVE recomputed
# with gramine-sgx-sign), verify the certificate again against the PCCS, call
# the app through the pinned certificate (write a file, sign with the sealed
# key), restart, fetch and verify the new certificate, check the file and the
# sealed key survived, stop and remove. Then the coordinator (docs/coordinator.md,
# "SGX"): mse coordinator start --sgx, its MRENCLAVE recomputed by the owner
# (mse coordinator measure --sgx) and verified against the PCCS's collateral,
# a manifest set (the SGX replicas' MRENCLAVE recomputed: manifest --sgx), the
# CA fetched, two replicas started with --sgx that attest to it and answer
# through the CA, restart with its sealed state, stop. (With the stand-in those
# replicas are skipped: SGX enclaves refuse its simulation quotes.) Then the
# owner's one command: mse deploy --replicas 2 --sgx (coordinator started and
# verified, manifest set, two replicas attested), each replica answering through
# the CA, the coordinator reporting both accepted, everything stopped. (With the
# stand-in it runs with --accept-simulation-quotes and a PCCS stub serving the
# simulation's collateral: the enclaves then trust the simulation root, measured.)
# Exit status 0 if every step passed.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MSE=${MSE:-$(command -v mse || echo "$ROOT/build/mse")}
STANDIN=${MSE_ACCEPTANCE_STANDIN:-0}
WORK=$(mktemp -d /tmp/mse-sgx-acceptance.XXXXXX)
LOG=$WORK/acceptance.log
NAME=mse-accept-$$
RESULTS=()
FAILED=0

note() { printf '%s\n' "$*" | tee -a "$LOG"; }
# step NAME COMMAND...: runs it, records PASS/FAIL, keeps its output in the log.
step() {
	local name=$1
	shift
	{ echo; echo "### $name"; echo "\$ $*"; } >>"$LOG"
	if "$@" >>"$LOG" 2>&1; then
		RESULTS+=("PASS  $name")
		return 0
	fi
	RESULTS+=("FAIL  $name")
	FAILED=1
	return 1
}

PCCS_PID=
cleanup() {
	for n in "$NAME-rep-coordinator" "$NAME-rep-1" "$NAME-rep-2"; do
		"$MSE" stop "$n" --remove >>"$LOG" 2>&1 || true
	done
	[ -n "$PCCS_PID" ] && kill "$PCCS_PID" 2>/dev/null
	"$MSE" stop "$NAME" --remove >>"$LOG" 2>&1 || true
	"$MSE" stop "$NAME-coord" --remove >>"$LOG" 2>&1 || true
	"$MSE" stop "$NAME-r1" --remove >>"$LOG" 2>&1 || true
	"$MSE" stop "$NAME-r2" --remove >>"$LOG" 2>&1 || true
	if [ "${KEEP:-0}" = 1 ]; then
		echo "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- environment ---------------------------------------------------------
ENV_LINES=()
envline() { ENV_LINES+=("$(printf '%-22s %s' "$1" "$2")"); }
envline kernel "$(uname -sr)"
envline os "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
envline cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
envline /dev/sgx_enclave "$([ -e /dev/sgx_enclave ] && echo present || echo MISSING)"
envline /dev/sgx_provision "$([ -e /dev/sgx_provision ] && echo present || echo MISSING)"
envline gramine "$(gramine-sgx --version 2>/dev/null | sed -n 1p || echo 'not found')"
envline is-sgx-available "$(command -v is-sgx-available >/dev/null && { is-sgx-available >/dev/null 2>&1 && echo ok || echo 'reports problems'; } || echo 'not installed')"
envline aesmd "$(systemctl is-active aesmd 2>/dev/null || echo unknown)"
QCNL=$(grep -o '"pccs_url"[^,]*' /etc/sgx_default_qcnl.conf 2>/dev/null | head -n1)
envline qcnl_pccs_url "${QCNL:-no pccs_url in /etc/sgx_default_qcnl.conf}"
envline mse "$("$MSE" --version 2>&1 | sed -n 1p)"
envline python3 "$(/usr/bin/python3 --version 2>&1)"

if [ "$STANDIN" != 1 ] && [ ! -e /dev/sgx_enclave ]; then
	echo "sgx-acceptance: no /dev/sgx_enclave: this is for a machine with SGX (docs/sgx.md)" >&2
	exit 2
fi
DEPLOY_EXTRA=()
VERIFY_COLL=()
PCCS_ARGS=()
if [ "$STANDIN" = 1 ]; then
	DEPLOY_EXTRA=(--accept-simulation-quotes)
	VERIFY_COLL=(--allow-simulation)
else
	if [ -n "${PCCS_URL:-}" ]; then
		PCCS_ARGS=(--pccs "$PCCS_URL")
		VERIFY_COLL=(--pccs "$PCCS_URL")
	else
		VERIFY_COLL=(--pccs /etc/sgx_default_qcnl.conf)
	fi
fi
PORT=${PORT:-$(free_port)}

# ---- the run -------------------------------------------------------------
if "$MSE" doctor --help >/dev/null 2>&1; then
	step "mse doctor" "$MSE" doctor
else
	RESULTS+=("SKIP  mse doctor (not in this mse)")
fi
step "signer key (mse keygen --sgx-signer)" "$MSE" keygen --sgx-signer --output "$WORK/signer.pem"
MRSIGNER=$(grep -m1 -E '^[0-9a-f]{64}$' "$LOG" || true)
[ -n "$MRSIGNER" ] || MRSIGNER=unknown
step "scaffold" bash -c "cd '$WORK' && '$MSE' scaffold accept"
if step "deploy --sgx (PCCS collateral, MRENCLAVE recomputed)" \
	"$MSE" deploy --project "$WORK/accept" --name "$NAME" --sgx --signer-key "$WORK/signer.pem" \
	--port "$PORT" "${PCCS_ARGS[@]}" "${DEPLOY_EXTRA[@]}"; then
	MRENCLAVE=$(grep -oE 'MRENCLAVE +[0-9a-f]{64}' "$LOG" | tail -n1 | awk '{print $2}')
	CERT=$WORK/accept/.mse/verified/ratls.pem
	URL=https://localhost:$PORT
	step "verify the certificate against the collateral" \
		"$MSE" verify --cert "$CERT" "${VERIFY_COLL[@]}" --mrenclave "$MRENCLAVE" \
		--mrsigner "$MRSIGNER"
	step "GET /health through the pinned certificate" curl -fsS --cacert "$CERT" "$URL/health"
	step "POST / (writes a file in the encrypted /root)" curl -fsS -X POST --cacert "$CERT" "$URL/"
	SIG1=$(curl -fsS --cacert "$CERT" "$URL/sign?message=acceptance" 2>>"$LOG")
	step "GET /sign (HMAC with the sealed key)" test -n "$SIG1"
	step "mse restart" "$MSE" restart "$NAME"
	step "mse evidence after the restart" "$MSE" evidence "$NAME" --output "$WORK/ev2" \
		--signer-key "$WORK/signer.pem" "${PCCS_ARGS[@]}"
	PKG=$(ls "$WORK"/accept/.mse/package.*/package_*.tar 2>/dev/null | head -n1)
	VERIFY_PKG=()
	[ "$STANDIN" = 1 ] && VERIFY_PKG=(--allow-simulation)
	step "verify the restarted enclave (recomputed MRENCLAVE)" \
		"$MSE" verify --package "$PKG" --evidence "$WORK/ev2/evidence.json" \
		--signer-key "$WORK/signer.pem" --output "$WORK/trusted2" "${VERIFY_PKG[@]}"
	CERT2=$WORK/trusted2/ratls.pem
	SIG2=$(curl -fsS --cacert "$CERT2" "$URL/sign?message=acceptance" 2>>"$LOG")
	step "sealed key survived the restart (same HMAC)" test -n "$SIG2" -a "$SIG1" = "$SIG2"
	step "file in /root survived the restart (GET /)" curl -fsS --cacert "$CERT2" "$URL/"
	step "mse stop --remove" "$MSE" stop "$NAME" --remove
fi

# ---- the coordinator on SGX ---------------------------------------------------
COORD_PCCS=()
[ -n "${PCCS_URL:-}" ] && COORD_PCCS=(--pccs-url "$PCCS_URL")
# The stand-in has no PCCS; its coordinator needs one named to start (no replica asks it).
[ "$STANDIN" = 1 ] && COORD_PCCS=(--pccs-url "http://127.0.0.1:9")
COORD_VERIFY=("${VERIFY_COLL[@]}")
if [ -x "$(dirname "$(command -v "$MSE")")/mse-coordinator" ] || [ -n "${MSE_COORDINATOR_BIN:-}" ]; then
	step "owner key (mse coordinator keygen)" "$MSE" coordinator keygen --out "$WORK/owner"
	if step "mse coordinator start --sgx (signed with the operator's key)" 		"$MSE" coordinator start --name "$NAME-coord" --owner-key "$WORK/owner.pub" --sgx 		--signer-key "$WORK/signer.pem" "${COORD_PCCS[@]}"; then
		CPORT=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' 			"${XDG_STATE_HOME:-$HOME/.local/state}/mse/$NAME-coord/state.json" 2>>"$LOG")
		CURL_C=127.0.0.1:$CPORT
		CMRE=$("$MSE" coordinator measure --owner-key "$WORK/owner.pub" --sgx 2>>"$LOG")
		step "coordinator MRENCLAVE recomputed by the owner" test -n "$CMRE"
		COORD_MRENCLAVE=$CMRE
		step "verify the coordinator (quote, collateral, MRENCLAVE)" 			"$MSE" verify --url "$CURL_C" --mrenclave "$CMRE" "${COORD_VERIFY[@]}" 			--output "$WORK/coord-verified"
		PKG=$(ls "$WORK"/accept/.mse/package.*/package_*.tar 2>/dev/null | head -n1)
		KEYF=$(ls "$WORK"/accept/.mse/package.*/package_*.key 2>/dev/null | head -n1)
		step "coordinator manifest (owner)" "$MSE" coordinator manifest 			--coordinator-cert "$WORK/coord-verified/ratls.pem" --package "$PKG" 			--code-key "$KEYF" --dns localhost --sgx --out "$WORK/cmanifest.json"
		step "coordinator set (signed, uploaded over the pin)" "$MSE" coordinator set 			--url "$CURL_C" --pin "$WORK/coord-verified/ratls.pem" 			--manifest "$WORK/cmanifest.json" --owner-key "$WORK/owner.key"
		step "coordinator CA (fetched over the pin)" "$MSE" coordinator ca --url "$CURL_C" 			--pin "$WORK/coord-verified/ratls.pem" --out "$WORK/ca.pem"
		if [ "$STANDIN" = 1 ]; then
			RESULTS+=("SKIP  2 SGX replicas (the stand-in's simulation quotes are refused by SGX enclaves)")
		else
			for r in 1 2; do
				RPORT=$(free_port)
				step "replica $r (mse coordinator replica --sgx)" "$MSE" coordinator replica \
					--name "$NAME-r$r" --package "$PKG" --url "$CURL_C" \
					--coordinator-mrenclave "$CMRE" --dns localhost --port "$RPORT" --sgx \
					--signer-key "$WORK/signer.pem" "${COORD_PCCS[@]}"
				step "replica $r attested and answers through the CA (curl --cacert ca.pem)" \
					bash -c "for i in \$(seq 180); do curl -fsS --cacert '$WORK/ca.pem' https://localhost:$RPORT/health && exit 0; sleep 1; done; exit 1"
			done
			step "the coordinator accepted both replicas" bash -c \
				"'$MSE' coordinator status --url '$CURL_C' --pin '$WORK/coord-verified/ratls.pem' | grep -q '\"attestations_accepted\":2'"
			"$MSE" stop "$NAME-r1" --remove >>"$LOG" 2>&1
			"$MSE" stop "$NAME-r2" --remove >>"$LOG" 2>&1
		fi
		step "mse restart (coordinator)" "$MSE" restart "$NAME-coord"
		step "verify the restarted coordinator (same MRENCLAVE)" 			"$MSE" verify --url "$CURL_C" --mrenclave "$CMRE" "${COORD_VERIFY[@]}" 			--output "$WORK/coord-verified2"
		step "sealed state survived the restart (GET /status: ready)" bash -c 			"'$MSE' coordinator status --url '$CURL_C' --pin '$WORK/coord-verified2/ratls.pem' | grep -q '\"state\":\"ready\"'"
		step "mse stop --remove (coordinator)" "$MSE" stop "$NAME-coord" --remove
	fi
else
	RESULTS+=("SKIP  coordinator (no mse-coordinator beside $MSE)")
fi

# ---- the owner's one command: mse deploy --replicas 2 --sgx -------------------
REP_EXTRA=()
REP_PCCS=("${PCCS_ARGS[@]}")
if [ "$STANDIN" = 1 ]; then
	# A PCCS serving this machine's simulation collateral, for the enclaves' own
	# verifications (the stand-in's quotes are simulation quotes).
	/usr/bin/python3 - "$("$MSE" sim path)/collateral" "$WORK/pccs.url" $$ <<'PY' >>"$LOG" 2>&1 &
import os, sys, time
sys.path.insert(0, "tests/e2e")
from pccs_stub import PccsStub
with PccsStub(sys.argv[1], ca="platform") as s:
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write(s.url)
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    while True:  # until this script is gone (or its clean-up kills it)
        try:
            os.kill(int(sys.argv[3]), 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
PY
	PCCS_PID=$!
	for _ in $(seq 100); do [ -s "$WORK/pccs.url" ] && break; sleep 0.1; done
	REP_PCCS=(--pccs "$(cat "$WORK/pccs.url" 2>/dev/null)")
	REP_EXTRA=(--accept-simulation-quotes)
fi
if [ -x "$(dirname "$(command -v "$MSE")")/mse-coordinator" ] || [ -n "${MSE_COORDINATOR_BIN:-}" ]; then
	if step "mse deploy --replicas 2 --sgx (coordinator verified, manifest set, replicas attested)" \
		"$MSE" deploy --project "$WORK/accept" --name "$NAME-rep" --replicas 2 --sgx \
		--signer-key "$WORK/signer.pem" --no-tests "${REP_PCCS[@]}" "${REP_EXTRA[@]}"; then
		STATE=${XDG_STATE_HOME:-$HOME/.local/state}/mse
		RCPORT=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' \
			"$STATE/$NAME-rep-coordinator/state.json" 2>>"$LOG")
		for r in 1 2; do
			RP=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' \
				"$STATE/$NAME-rep-$r/state.json" 2>>"$LOG")
			step "deploy replica $r answers through the CA (curl --cacert .mse/ca.pem)" \
				curl -fsS --cacert "$WORK/accept/.mse/ca.pem" "https://localhost:$RP/health"
		done
		step "the deployed coordinator accepted both replicas" bash -c \
			"'$MSE' coordinator status --url 127.0.0.1:$RCPORT --pin '$WORK/accept/.mse/coordinator/ratls.pem' | grep -q '\"attestations_accepted\":2'"
	fi
	for n in "$NAME-rep-1" "$NAME-rep-2" "$NAME-rep-coordinator"; do
		"$MSE" stop "$n" --remove >>"$LOG" 2>&1
	done
	step "mse stop --remove (the deploy's coordinator and replicas)" bash -c \
		"! '$MSE' list | grep -q '$NAME-rep'"
else
	RESULTS+=("SKIP  mse deploy --replicas 2 --sgx (no mse-coordinator beside $MSE)")
fi

# ---- the report ------------------------------------------------------------
{
	echo
	echo "==== mse-c SGX acceptance report ($(date -u +%Y-%m-%dT%H:%M:%SZ)) ===="
	[ "$STANDIN" = 1 ] && echo "STAND-IN RUN (tests/gramine-standin, simulation quotes): NOT an SGX result"
	for l in "${ENV_LINES[@]}"; do echo "$l"; done
	printf '%-22s %s\n' MRSIGNER "${MRSIGNER:-?}" MRENCLAVE "${MRENCLAVE:-?}" \
		"coordinator MRENCLAVE" "${COORD_MRENCLAVE:-?}"
	echo
	for r in "${RESULTS[@]}"; do echo "$r"; done
	echo
	if [ $FAILED = 0 ]; then echo "RESULT: all steps passed"; else
		echo "RESULT: FAILED — the log's last lines:"
		tail -n 40 "$LOG" | sed 's/^/    /'
	fi
	echo "==== end of report ===="
} | tee -a "$LOG"
[ "${KEEP:-0}" = 1 ] && echo "full log: $LOG"
exit $FAILED
