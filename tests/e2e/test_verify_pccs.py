# SPDX-License-Identifier: Apache-2.0
"""`mse verify` with collateral from a PCCS (--pccs, --pccs-ca, --offline)
against the local PCCS stub, and `mse verify --json` compared with the
independent Python reference verifier (bench/verify_ref.py) on every SGX
vector set, including failures and flipped quote bytes."""

import json
import os
import pathlib
import random
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from pccs_stub import PccsStub  # noqa: E402

MSE = os.environ.get("MSE_BIN", "build/san/mse")
ROOT = pathlib.Path(os.environ.get("MSE_ROOT", "."))
REF = ROOT / "bench" / "verify_ref.py"
PY = os.environ.get("MSE_PYTHON", "/usr/bin/python3")
VECTORS = pathlib.Path(os.environ.get("MSE_VECTORS", "../shared/vectors"))
DQ = VECTORS / "dcap-quotes"
EVIDENCE = VECTORS / "mse-evidence" / "evidence.json"
FILES = ["tcb_info.json", "tcb_info_issuer_chain.pem", "qe_identity.json",
         "qe_identity_issuer_chain.pem", "pck_crl.der", "pck_crl_issuer_chain.pem",
         "root_ca_crl.der"]
ALL_STATUSES = ("SWHardeningNeeded,ConfigurationNeeded,ConfigurationAndSWHardeningNeeded,"
                "OutOfDate,OutOfDateConfigurationNeeded,Revoked")


def mse_verify(*args, home):
    env = dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(home / "cache"),
               NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    p = subprocess.run([MSE, "verify", "--json", *map(str, args)], capture_output=True,
                       text=True, env=env, timeout=120)
    try:
        out = json.loads(p.stdout) if p.stdout.strip() else None
    except json.JSONDecodeError:
        out = None
    return p, out


def ref(*args):
    p = subprocess.run([PY, str(REF), *map(str, args)], capture_output=True, text=True,
                       timeout=120)
    return json.loads(p.stdout)


# ---- --pccs / --pccs-ca / --offline ----------------------------------------------

def test_verify_fetches_then_works_offline(tmp_path):
    now = "2025-07-19T10:01:17Z"
    quote = DQ / "sgx3-dcapqvl" / "quote.bin"
    with PccsStub(DQ / "sgx3-dcapqvl", ca="processor") as s:
        p, out = mse_verify("--quote", quote, "--pccs", s.url, "--now", now,
                            "--accept-tcb-status", "ConfigurationAndSWHardeningNeeded",
                            home=tmp_path)
        assert p.returncode == 0, p.stderr
        assert out["tcb_status"] == "ConfigurationAndSWHardeningNeeded"
        assert out["advisories"] == ["INTEL-SA-00289", "INTEL-SA-00615"]
        assert s.total_hits() == 4
        cached = tmp_path / "cache" / "mse" / "collateral" / "00a067110000-processor"
        for name in FILES:
            assert (cached / name).read_bytes() == (DQ / "sgx3-dcapqvl" / name).read_bytes()
        # Second run: from the cache, no request.
        p, out = mse_verify("--quote", quote, "--pccs", s.url, "--now", now,
                            "--accept-tcb-status", "ConfigurationAndSWHardeningNeeded",
                            home=tmp_path)
        assert p.returncode == 0 and s.total_hits() == 4
    # Offline: no server at all.
    p, out = mse_verify("--quote", quote, "--offline", "--now", now,
                        "--accept-tcb-status", "ConfigurationAndSWHardeningNeeded", home=tmp_path)
    assert p.returncode == 0, p.stderr
    assert out["tcb_status"] == "ConfigurationAndSWHardeningNeeded"
    # The default policy still refuses that status, with the status shown.
    p, out = mse_verify("--quote", quote, "--offline", "--now", now, home=tmp_path)
    assert p.returncode == 1 and out["tcb_status"] == "ConfigurationAndSWHardeningNeeded"
    # Offline once the cache has expired (QE identity nextUpdate 2025-07-19T10:01:18Z).
    p, out = mse_verify("--quote", quote, "--offline", "--now", "2025-07-20T00:00:00Z",
                        home=tmp_path)
    assert p.returncode == 1 and "expired at 2025-07-19T10:01:18Z" in p.stderr, p.stderr


def test_verify_offline_without_cache(tmp_path):
    p, out = mse_verify("--quote", DQ / "sgx3-automata" / "quote.bin", "--offline",
                        home=tmp_path)
    assert p.returncode == 1
    assert "no cached collateral for FMSPC 00606a000000 (platform CA)" in p.stderr, p.stderr


def test_verify_pccs_https_needs_its_ca(tmp_path):
    now = "2025-08-15T05:45:00Z"
    quote = DQ / "sgx3-automata" / "quote.bin"
    with PccsStub(DQ / "sgx3-automata", ca="platform", tls=True) as s:
        p, out = mse_verify("--quote", quote, "--pccs", s.url, "--now", now, home=tmp_path)
        assert p.returncode == 1 and s.url in p.stderr and "[pccs]" in p.stderr, p.stderr
        p, out = mse_verify("--quote", quote, "--pccs", s.url, "--pccs-ca", s.ca_pem,
                            "--now", now, "--accept-tcb-status", ALL_STATUSES, home=tmp_path)
        assert p.returncode == 0, p.stderr
    assert out["fmspc"] == "00606a000000"


def test_verify_pccs_bad_answer(tmp_path):
    with PccsStub(DQ / "sgx3-dcapqvl", ca="processor") as s:
        s.override["pckcrl"] = (404, b"", {})
        p, out = mse_verify("--quote", DQ / "sgx3-dcapqvl" / "quote.bin", "--pccs", s.url,
                            "--now", "2025-07-19T10:01:17Z", home=tmp_path)
    assert p.returncode == 1
    assert s.url + "pckcrl?ca=processor&encoding=der: HTTP 404" in p.stderr, p.stderr


@pytest.mark.parametrize("args", [
    ["--pccs-ca", "/dev/null"],
    ["--collateral", DQ / "sgx3-dcapqvl", "--pccs", "http://127.0.0.1:1/"],
    ["--collateral", DQ / "sgx3-dcapqvl", "--offline"],
    ["--pccs", "http://127.0.0.1:1/", "--offline"],
])
def test_verify_pccs_usage_errors(tmp_path, args):
    p, _ = mse_verify("--quote", DQ / "sgx3-dcapqvl" / "quote.bin", *args, home=tmp_path)
    assert p.returncode == 2, (p.stdout, p.stderr)


# ---- the C verifier against the Python reference ------------------------------------

CASES = [
    # (name, C args, reference args)
    ("dcapqvl", ["--quote", DQ / "sgx3-dcapqvl/quote.bin", "--collateral", DQ / "sgx3-dcapqvl",
                 "--now", "2025-07-19T10:01:17Z"],
     ["--collateral", DQ / "sgx3-dcapqvl", "--now", "2025-07-19T10:01:17Z"]),
    ("automata", ["--quote", DQ / "sgx3-automata/quote.bin", "--collateral",
                  DQ / "sgx3-automata", "--now", "2025-08-15T05:45:00Z"],
     ["--collateral", DQ / "sgx3-automata", "--now", "2025-08-15T05:45:00Z"]),
    ("oasis", ["--quote", DQ / "sgx3-oasis/quote.bin", "--collateral", DQ / "sgx3-oasis",
               "--now", "2022-12-20T00:50:04Z", "--allow-missing-crl"],
     ["--collateral", DQ / "sgx3-oasis", "--now", "2022-12-20T00:50:04Z",
      "--allow-missing-crl"]),
    ("evidence", ["--evidence", EVIDENCE, "--now", "2023-06-20T12:00:00Z",
                  "--accept-expired-collateral"],
     ["--evidence", EVIDENCE, "--now", "2023-06-20T12:00:00Z", "--accept-expired"]),
]
# Failures: both must refuse (steps are named differently; see STEPS).
FAIL_CASES = [
    ("evidence-expired", ["--evidence", EVIDENCE, "--now", "2023-06-20T12:00:00Z"],
     ["--evidence", EVIDENCE, "--now", "2023-06-20T12:00:00Z"]),
    ("oasis-no-crl", ["--quote", DQ / "sgx3-oasis/quote.bin", "--collateral", DQ / "sgx3-oasis",
                      "--now", "2022-12-20T00:50:04Z"],
     ["--collateral", DQ / "sgx3-oasis", "--now", "2022-12-20T00:50:04Z"]),
] + [
    (f"oasis-{now}", ["--quote", DQ / "sgx3-oasis/quote.bin", "--collateral", DQ / "sgx3-oasis",
                      "--now", now, "--allow-missing-crl"],
     ["--collateral", DQ / "sgx3-oasis", "--now", now, "--allow-missing-crl"])
    for now in ("2029-12-05T11:12:02Z", "2022-12-05T11:12:00Z", "2022-12-16T12:45:35Z",
                "2023-01-15T12:45:37Z")
] + [
    (f"tdx-{n}", ["--quote", DQ / n / "quote.bin", "--collateral", DQ / n],
     ["--collateral", DQ / n])
    for n in ("tdx4-dcapqvl", "tdx5-oe-relaunch")
]


@pytest.mark.parametrize("name,c_args,ref_args", CASES, ids=[c[0] for c in CASES])
def test_c_verifier_agrees_with_reference(tmp_path, name, c_args, ref_args):
    p, c = mse_verify(*c_args, "--accept-tcb-status", ALL_STATUSES, home=tmp_path)
    r = ref(*ref_args)
    assert r["ok"] is True, r
    assert p.returncode == 0 and c["ok"] is True, (p.stdout, p.stderr)
    for ck, rk in [("tcb_status", "status"), ("platform_tcb_status", "platform_status"),
                   ("qe_tcb_status", "qe_status"), ("advisories", "advisories"),
                   ("mrenclave", "mrenclave"), ("mrsigner", "mrsigner"),
                   ("isvprodid", "isvprodid"), ("isvsvn", "isvsvn"),
                   ("report_data", "report_data"), ("debug", "debug"), ("fmspc", "fmspc"),
                   ("pceid", "pce_id"), ("pck_ca", "ca"), ("trailing_bytes", "trailing_bytes")]:
        assert c[ck] == r[rk], (name, ck, c[ck], r[rk])
    assert c["crl_missing"] == bool(r["missing_crls"])
    assert c["collateral_expired"] == bool(r["expired"])


@pytest.mark.parametrize("name,c_args,ref_args", FAIL_CASES, ids=[c[0] for c in FAIL_CASES])
def test_c_verifier_refuses_with_reference(tmp_path, name, c_args, ref_args):
    p, c = mse_verify(*c_args, "--accept-tcb-status", ALL_STATUSES, home=tmp_path)
    r = ref(*ref_args)
    assert r["ok"] is False
    assert p.returncode == 1 and c["ok"] is False, (p.stdout, p.stderr)


def test_flipped_quote_bytes_agree(tmp_path):
    """Both verifiers accept or refuse each mutated quote alike."""
    src = DQ / "sgx3-dcapqvl"
    quote = (src / "quote.bin").read_bytes()
    rng = random.Random(20261124)
    # Every region: header, body, signature, attestation key, QE report, its
    # signature, QE auth data, certification data (PEM), and a length field.
    offsets = sorted({0, 2, 8, 30, 47, 48, 100, 300, 431, 432, 436, 470, 520, 600, 900, 1000,
                      1012, 1020, 1100, 2000, 3500, len(quote) - 30}
                     | {rng.randrange(len(quote)) for _ in range(8)})
    d = tmp_path / "set"
    shutil.copytree(src, d)
    for f in d.rglob("*"):
        f.chmod(0o644 if f.is_file() else 0o755)
    disagreements = []
    for off in offsets:
        q = bytearray(quote)
        q[off] ^= 0x40
        (d / "quote.bin").write_bytes(bytes(q))
        p, c = mse_verify("--quote", d / "quote.bin", "--collateral", d, "--now",
                          "2025-07-19T10:01:17Z", "--accept-tcb-status", ALL_STATUSES,
                          home=tmp_path)
        assert p.returncode in (0, 1), (off, p.returncode, p.stderr)
        r = ref("--collateral", d, "--now", "2025-07-19T10:01:17Z")
        if (p.returncode == 0) != r["ok"]:
            disagreements.append((off, p.stderr.strip(), r.get("error")))
        if p.returncode == 0:
            # Accepted only if the byte is not covered by any signature: then
            # every reported value must be unchanged.
            assert c["mrenclave"] == r["mrenclave"]
    assert not disagreements, disagreements


def test_verify_pccs_needs_a_pck_chain(tmp_path):
    p, _ = mse_verify("--quote", DQ / "sgx3-oasis" / "negative" / "quote_v3_eppid.bin",
                      "--offline", home=tmp_path)
    assert p.returncode == 1 and "not a PCK chain (5)" in p.stderr, p.stderr


def test_verify_pccs_from_qcnl_config(tmp_path):
    now = "2025-07-19T10:01:17Z"
    quote = DQ / "sgx3-dcapqvl" / "quote.bin"
    sample = (VECTORS / "mse-cli-config" / "sgx_default_qcnl.conf").read_text()
    conf = tmp_path / "qcnl.conf"
    with PccsStub(DQ / "sgx3-dcapqvl", ca="processor") as s:
        conf.write_text(sample.replace("https://example.cosmian.com/sgx/certification/v4/", s.url))
        p, out = mse_verify("--quote", quote, "--pccs", conf, "--now", now,
                            "--accept-tcb-status", ALL_STATUSES, home=tmp_path)
        assert p.returncode == 0, p.stderr
        assert s.total_hits() == 4
    p, _ = mse_verify("--quote", quote, "--pccs", tmp_path / "missing.conf", home=tmp_path)
    assert p.returncode == 1 and "missing.conf" in p.stderr and "QCNL" in p.stderr, p.stderr


def test_verify_without_collateral_source_is_a_usage_error(tmp_path):
    p, _ = mse_verify("--quote", DQ / "sgx3-dcapqvl" / "quote.bin", home=tmp_path)
    assert p.returncode == 2 and "--pccs URL|QCNL_CONF" in p.stderr, p.stderr


def test_flipped_collateral_bytes_agree(tmp_path):
    """Both verifiers accept or refuse each mutated collateral file alike."""
    src = DQ / "sgx3-automata"
    now = "2025-08-15T05:45:00Z"
    rng = random.Random(5)
    plan = {"tcb_info.json": 6, "qe_identity.json": 4, "pck_crl.der": 4,
            "root_ca_crl.der": 4, "tcb_info_issuer_chain.pem": 3,
            "qe_identity_issuer_chain.pem": 2, "pck_crl_issuer_chain.pem": 2}
    d = tmp_path / "set"
    shutil.copytree(src, d)
    for f in d.rglob("*"):
        f.chmod(0o644 if f.is_file() else 0o755)
    disagreements, refused = [], 0
    for name, count in plan.items():
        orig = (src / name).read_bytes()
        for off in sorted(rng.sample(range(len(orig)), count)):
            m = bytearray(orig)
            m[off] ^= 0x01
            (d / name).write_bytes(bytes(m))
            p, _ = mse_verify("--quote", d / "quote.bin", "--collateral", d, "--now", now,
                              "--accept-tcb-status", ALL_STATUSES, home=tmp_path)
            assert p.returncode in (0, 1), (name, off, p.returncode, p.stderr)
            r = ref("--collateral", d, "--now", now)
            refused += p.returncode == 1
            if (p.returncode == 0) != r["ok"]:
                disagreements.append((name, off, p.stderr.strip(), r.get("error")))
        (d / name).write_bytes(orig)
    assert not disagreements, disagreements
    assert refused >= 15  # the signed files' flips are all caught
