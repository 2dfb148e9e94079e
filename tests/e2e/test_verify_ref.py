# SPDX-License-Identifier: Apache-2.0
"""bench/verify_ref.py, the Python reference verifier, on the real vectors:
the outcomes the vectors' sources assert (README of shared/vectors), the
sgx3-oasis failure cases at the step named, the TDX sets' outcomes, and tampering."""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

ROOT = pathlib.Path(os.environ.get("MSE_ROOT", "."))
REF = ROOT / "bench" / "verify_ref.py"
VECTORS = pathlib.Path(os.environ.get("MSE_VECTORS", "../shared/vectors"))
DQ = VECTORS / "dcap-quotes"
EVIDENCE = VECTORS / "mse-evidence" / "evidence.json"
PY = os.environ.get("MSE_PYTHON", "/usr/bin/python3")


def ref(*args, rc=None):
    p = subprocess.run([PY, str(REF), *map(str, args)], capture_output=True, text=True,
                       timeout=120)
    out = json.loads(p.stdout)
    if rc is not None:
        assert p.returncode == rc, (p.returncode, p.stdout, p.stderr)
    assert (p.returncode == 0) == out["ok"]
    return out


def test_dcapqvl_known_status():
    out = ref("--collateral", DQ / "sgx3-dcapqvl", "--now", "2025-07-19T10:01:17Z", rc=0)
    assert out["status"] == "ConfigurationAndSWHardeningNeeded"
    assert out["advisories"] == ["INTEL-SA-00289", "INTEL-SA-00615"]
    assert out["ca"] == "processor" and out["fmspc"] == "00a067110000"
    assert out["expired"] == [] and out["missing_crls"] == []


def test_automata_ok():
    out = ref("--collateral", DQ / "sgx3-automata", "--now", "2025-08-15T05:45:00Z", rc=0)
    assert out["ca"] == "platform" and out["fmspc"] == "00606a000000"
    assert out["expired"] == []


def test_evidence_out_of_date_and_expired_collateral():
    # 2023-06-20T12:00Z: TCB info and QE identity current, the PCK CRL expired on 06-15.
    now = "2023-06-20T12:00:00Z"
    out = ref("--evidence", EVIDENCE, "--now", now, rc=1)
    assert out["step"] == "expired" and "PCK CRL" in out["error"]
    out = ref("--evidence", EVIDENCE, "--now", now, "--accept-expired", rc=0)
    assert out["status"] == "OutOfDate" and out["qe_status"] == "UpToDate"
    assert out["advisories"] == ["INTEL-SA-%05d" % n
                                 for n in (586, 614, 615, 657, 730, 738, 767)]
    assert out["ratls_binding"] is True
    assert len(out["expired"]) == 1
    # MRSIGNER is SHA-256 of the signer's little-endian RSA modulus.
    ev = json.loads(EVIDENCE.read_text())
    pk = serialization.load_pem_public_key(ev["signer_pk"].encode())
    n = pk.public_numbers().n
    assert out["mrsigner"] == hashlib.sha256(n.to_bytes(pk.key_size // 8, "little")).hexdigest()
    # Today even the TCB signing certificate (notAfter 2025-05-21) has expired.
    out = ref("--evidence", EVIDENCE, rc=1)
    assert out["step"] == "collateral" and "expired" in out["error"]
    out = ref("--evidence", EVIDENCE, "--now", "2024-01-01T00:00:00Z", rc=1)
    assert out["step"] == "expired"
    assert "TCB info expired" in out["error"] and "QE identity expired" in out["error"]


OASIS_NOW = "2022-12-20T00:50:04Z"


def test_oasis_ok_without_crls_only_when_allowed():
    out = ref("--collateral", DQ / "sgx3-oasis", "--now", OASIS_NOW, rc=1)
    assert out["step"] == "crl" and "missing CRL" in out["error"]
    out = ref("--collateral", DQ / "sgx3-oasis", "--now", OASIS_NOW, "--allow-missing-crl", rc=0)
    assert out["missing_crls"] == ["root_ca_crl", "pck_crl"]


@pytest.mark.parametrize("now,step,text", [
    ("2029-12-05T11:12:02Z", "pck", "PCK certificate: expired"),
    ("2022-12-05T11:12:00Z", "pck", "PCK certificate: not yet valid"),
    ("2022-12-16T12:45:35Z", "collateral", "not yet valid"),
    ("2023-01-15T12:45:37Z", "expired", "QE identity expired"),
])
def test_oasis_dates(now, step, text):
    out = ref("--collateral", DQ / "sgx3-oasis", "--now", now, "--allow-missing-crl", rc=1)
    assert out["step"] == step and text in out["error"], out


def oasis_copy(tmp_path):
    d = tmp_path / "set"
    shutil.copytree(DQ / "sgx3-oasis", d)
    for f in d.rglob("*"):
        f.chmod(0o644 if f.is_file() else 0o755)
    return d


def run_oasis(d, *extra):
    return ref("--collateral", d, "--now", OASIS_NOW, "--allow-missing-crl", *extra, rc=1)


def test_oasis_tampered_collateral(tmp_path):
    d = oasis_copy(tmp_path)
    tcb = (d / "tcb_info.json").read_bytes()
    (d / "tcb_info.json").write_bytes(tcb.replace(b'"tcbEvaluationDataNumber":13',
                                                  b'"tcbEvaluationDataNumber":14', 1))
    out = run_oasis(d)
    assert out["step"] == "collateral" and "TCB info signature" in out["error"]
    (d / "tcb_info.json").write_bytes(tcb)
    qe = (d / "qe_identity.json").read_bytes()
    (d / "qe_identity.json").write_bytes(qe.replace(b'"isvprodid":1', b'"isvprodid":2', 1))
    out = run_oasis(d)
    assert out["step"] == "collateral" and "QE identity signature" in out["error"]
    (d / "qe_identity.json").write_bytes(qe)
    shutil.copy(d / "negative" / "tcb_info_issuer_chain_bad.pem", d / "tcb_info_issuer_chain.pem")
    out = run_oasis(d)
    assert out["step"] == "collateral" and "signer" in out["error"]
    (d / "tcb_info_issuer_chain.pem").unlink()
    out = run_oasis(d)
    assert out["step"] == "collateral" and "no issuer chain" in out["error"]


def test_oasis_eppid_quote_has_no_pck_chain():
    out = ref("--collateral", DQ / "sgx3-oasis", "--quote",
              DQ / "sgx3-oasis" / "negative" / "quote_v3_eppid.bin", "--now", OASIS_NOW,
              "--allow-missing-crl", rc=1)
    assert out["step"] == "quote" and "no PCK chain" in out["error"]


TDX_SETS = [
    ("tdx4-dcapqvl", "2025-07-19T10:00:34Z", [], "UpToDate"),
    ("tdx4-oasis", "2024-09-02T07:43:52Z", ["--allow-missing-crl"], "UpToDate"),
    ("tdx5-oe-relaunch", "2025-03-01T00:00:00Z", [], "TDRelaunchAdvised"),
    ("tdx5-oe-outofdate", "2026-06-20T00:00:00Z", ["--allow-service-td"], "OutOfDate"),
]


@pytest.mark.parametrize("name,now,opts,status", TDX_SETS, ids=[t[0] for t in TDX_SETS])
def test_tdx_known_outcomes(name, now, opts, status):
    out = ref("--collateral", DQ / name, "--now", now, *opts, rc=0)
    assert out["tee"] == "TDX" and out["status"] == status
    # outside the collateral window: refused
    ref("--collateral", DQ / name, "--now", "2030-01-01T00:00:00Z", *opts, rc=1)


def test_tdx_gotdx_tcb_level_not_supported():
    out = ref("--collateral", DQ / "tdx4-gotdx-notsupported", "--now", "2023-07-01T01:00:00Z",
              "--allow-sept-ve", rc=1)
    assert out["step"] == "tcb" and "TCB level not supported" in out["error"]


# Offsets in an SGX quote v3 (header 48, body 384, then signature data).
FLIPS = [
    (100, "signature", "quote: ECDSA"),          # MRENCLAVE, in the signed body
    (30, "signature", "quote: ECDSA"),           # header user data
    (20, "quote", "QE vendor id"),               # header QE vendor id
    (440, "signature", "quote: ECDSA"),          # the quote signature itself
    (520, "signature", "quote: ECDSA"),          # the attestation key
    (600, "signature", "QE report"),             # the QE report
    (960, "signature", "QE report"),             # the QE report signature
    (1020, "binding", "QE report_data"),         # QE authentication data
]


@pytest.mark.parametrize("offset,step,text", FLIPS)
def test_flipped_quote_bytes_are_caught(tmp_path, offset, step, text):
    d = tmp_path / "set"
    shutil.copytree(DQ / "sgx3-dcapqvl", d)
    for f in d.rglob("*"):
        f.chmod(0o644 if f.is_file() else 0o755)
    q = bytearray((d / "quote.bin").read_bytes())
    q[offset] ^= 0x01
    (d / "quote.bin").write_bytes(bytes(q))
    out = ref("--collateral", d, "--now", "2025-07-19T10:01:17Z", rc=1)
    assert out["step"] == step and text in out["error"], out


def test_bench_reports_rate():
    out = ref("--collateral", DQ / "sgx3-automata", "--now", "2025-08-15T05:45:00Z",
              "--bench", 3, rc=0)
    assert out["bench"]["iterations"] == 3 and out["bench"]["quotes_per_s"] > 0


def test_usage_error():
    p = subprocess.run([PY, str(REF)], capture_output=True, text=True)
    assert p.returncode == 2


def test_cosmian_quote_without_collateral():
    """Issue 5 acceptance facts of sgx-quote-cosmian/quote.dat, independently."""
    quote = VECTORS / "sgx-quote-cosmian" / "quote.dat"
    out = ref("--quote", quote, "--quote-only", "--now", "2024-01-01T00:00:00Z", rc=0)
    assert out["mrenclave"] == "e413a4ed616c7a79634d5ca05a2fda746a1f0c71349a80b25a02828846fab90e"
    assert out["mrsigner"] == "ac2c9fa87e4c91768b1d0c47169466c50d5a98c790639fbaefe7352a59919980"
    assert (out["isvprodid"], out["isvsvn"], out["debug"]) == (1, 10, False)
    assert out["status"] is None and out["quote_only"] is True
    # Its PCK leaf (not the one in pck_cert.pem: another serial) dates from 2023-03-09.
    out = ref("--quote", quote, "--quote-only", "--now", "2023-03-01T00:00:00Z", rc=1)
    assert out["step"] == "pck" and "not yet valid" in out["error"]


def test_quote_only_catches_a_flipped_signature(tmp_path):
    q = bytearray((VECTORS / "sgx-quote-cosmian" / "quote.dat").read_bytes())
    q[440] ^= 1
    (tmp_path / "q.bin").write_bytes(bytes(q))
    out = ref("--quote", tmp_path / "q.bin", "--quote-only", "--now", "2024-01-01T00:00:00Z",
              rc=1)
    assert out["step"] == "signature"
