# SPDX-License-Identifier: Apache-2.0
"""The PCCS collateral client (src/attest/pccs.c) against a local PCCS stub
serving the real collateral of ../shared/vectors/dcap-quotes: the directory it
writes must equal the vectors byte for byte, whatever header generation or
CRL encoding the server uses; the cache is reused until the earliest
nextUpdate; offline mode uses only the cache; bad answers are refused with the
URL and status and never cached."""

import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from pccs_stub import PccsStub  # noqa: E402

BUILD = pathlib.Path(os.environ.get("MSE_BUILD", "build/san"))
TOOL = BUILD / "tools" / "pccs_fetch"
VEC = pathlib.Path(os.environ.get("MSE_VECTORS", "../shared/vectors")) / "dcap-quotes"
FILES = ["tcb_info.json", "tcb_info_issuer_chain.pem", "qe_identity.json",
         "qe_identity_issuer_chain.pem", "pck_crl.der", "pck_crl_issuer_chain.pem",
         "root_ca_crl.der"]
# (set, PCK CA type, FMSPC, an instant when all its collateral is current)
SETS = {
    "sgx3-dcapqvl": ("processor", "00A067110000", "2025-07-19T10:01:17Z"),
    "sgx3-automata": ("platform", "00606A000000", "2025-08-15T05:45:00Z"),
}

pytestmark = pytest.mark.skipif(not TOOL.exists(), reason=f"{TOOL} not built")


def run(*args, cache, check=True):
    env = dict(os.environ, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    p = subprocess.run([str(TOOL), "--cache", str(cache), "--timeout", "5", *args],
                       capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def assert_same_as_vectors(outdir, set_name):
    got = sorted(os.listdir(outdir))
    assert got == sorted(FILES)
    for name in FILES:
        assert (pathlib.Path(outdir) / name).read_bytes() == (VEC / set_name / name).read_bytes(), name


def stub(set_name, **kw):
    return PccsStub(VEC / set_name, ca=SETS[set_name][0], **kw)


@pytest.mark.parametrize("set_name", sorted(SETS))
@pytest.mark.parametrize("headers,crl", [("v4", "der"), ("v3", "hex")])
def test_fetch_writes_vectors_byte_for_byte(tmp_path, set_name, headers, crl):
    ca, fmspc, now = SETS[set_name]
    with stub(set_name, headers=headers, crl=crl) as s:
        p = run("--url", s.url, "--now", now, fmspc, ca, cache=tmp_path)
        assert s.hits == {"tcb": 1, "qe/identity": 1, "pckcrl": 1, "rootcacrl": 1}
    kind, outdir = p.stdout.split()
    assert kind == "fetched"
    assert outdir == str(tmp_path / f"{fmspc.lower()}-{ca}")
    assert_same_as_vectors(outdir, set_name)
    # Nothing else (no temporary directory) is left in the cache.
    assert os.listdir(tmp_path) == [f"{fmspc.lower()}-{ca}"]


def test_bare_host_url_and_lowercase_fmspc(tmp_path):
    ca, fmspc, now = SETS["sgx3-dcapqvl"]
    with stub("sgx3-dcapqvl") as s:
        p = run("--url", s.root + "/", "--now", now, fmspc.lower(), ca.upper(), cache=tmp_path)
    assert_same_as_vectors(p.stdout.split()[1], "sgx3-dcapqvl")


def test_cache_reused_until_earliest_next_update(tmp_path):
    ca, fmspc, now = SETS["sgx3-dcapqvl"]
    with stub("sgx3-dcapqvl") as s:
        run("--url", s.url, "--now", now, fmspc, ca, cache=tmp_path)
        assert s.total_hits() == 4
        p = run("--url", s.url, "--now", now, fmspc, ca, cache=tmp_path)
        assert p.stdout.split()[0] == "cached" and s.total_hits() == 4
        # qe_identity.json's nextUpdate (2025-07-19T10:01:18Z) is the earliest.
        p = run("--url", s.url, "--now", "2025-07-19T10:01:17Z", fmspc, ca, cache=tmp_path)
        assert p.stdout.split()[0] == "cached" and s.total_hits() == 4
        p = run("--url", s.url, "--now", "2025-07-19T10:01:18Z", fmspc, ca, cache=tmp_path)
        assert p.stdout.split()[0] == "fetched" and s.total_hits() == 8
        p = run("--url", s.url, "--now", now, "--refresh", fmspc, ca, cache=tmp_path)
        assert p.stdout.split()[0] == "fetched" and s.total_hits() == 12
        # Another CA type of the same FMSPC is another cache entry.
        p = run("--url", s.url, "--now", now, fmspc, "platform", cache=tmp_path, check=False)
        assert p.returncode == 1 and "HTTP 404" in p.stderr
    assert_same_as_vectors(tmp_path / f"{fmspc.lower()}-{ca}", "sgx3-dcapqvl")


def test_offline(tmp_path):
    ca, fmspc, now = SETS["sgx3-automata"]
    p = run("--offline", "--now", now, fmspc, ca, cache=tmp_path, check=False)
    assert p.returncode == 1
    assert "offline: no cached collateral for FMSPC 00606a000000 (platform CA)" in p.stderr
    with stub("sgx3-automata") as s:
        run("--url", s.url, "--now", now, fmspc, ca, cache=tmp_path)
        hits = s.total_hits()
        # Offline needs no URL and makes no request.
        p = run("--offline", "--now", now, fmspc, ca, cache=tmp_path)
        assert p.stdout.split()[0] == "cached" and s.total_hits() == hits
        # The automata QE identity expires first: 2025-09-14T04:36:46Z.
        p = run("--offline", "--now", "2025-09-14T04:36:46Z", fmspc, ca, cache=tmp_path,
                check=False)
        assert p.returncode == 1 and s.total_hits() == hits
    assert "expired at 2025-09-14T04:36:46Z (qe_identity.json nextUpdate)" in p.stderr
    assert "--collateral" in p.stderr


def test_incomplete_cache_is_refetched_and_refused_offline(tmp_path):
    ca, fmspc, now = SETS["sgx3-dcapqvl"]
    with stub("sgx3-dcapqvl") as s:
        outdir = pathlib.Path(run("--url", s.url, "--now", now, fmspc, ca,
                                  cache=tmp_path).stdout.split()[1])
        (outdir / "pck_crl_issuer_chain.pem").unlink()
        p = run("--offline", "--now", now, fmspc, ca, cache=tmp_path, check=False)
        assert p.returncode == 1 and "unusable" in p.stderr
        (outdir / "tcb_info.json").write_text("{}")
        p = run("--url", s.url, "--now", now, fmspc, ca, cache=tmp_path)
        assert p.stdout.split()[0] == "fetched"
    assert_same_as_vectors(outdir, "sgx3-dcapqvl")


def garbage_cases():
    ok_chain = None  # filled by the stub's own header

    def tcb_not_json(s, q):
        return 200, b"<html>oops</html>", {"TCB-Info-Issuer-Chain": s.chain_header(
            "tcb_info_issuer_chain.pem")}

    def tcb_no_chain(s, q):
        return 200, s.tcb, {}

    def tcb_chain_not_pem(s, q):
        return 200, s.tcb, {"TCB-Info-Issuer-Chain": "hello%20world"}

    def tcb_chain_bad_escape(s, q):
        return 200, s.tcb, {"TCB-Info-Issuer-Chain": "%zz"}

    def tcb_wrong_fmspc(s, q):
        body = s.tcb.replace(s.fmspc.encode(), b"00906EA10000")
        return 200, body, {"TCB-Info-Issuer-Chain": s.chain_header("tcb_info_issuer_chain.pem")}

    def qe_wrong_shape(s, q):
        return 200, b'{"tcbInfo":{},"signature":"00"}', {
            "SGX-Enclave-Identity-Issuer-Chain": s.chain_header("qe_identity_issuer_chain.pem")}

    def crl_garbage(s, q):
        return 200, b"this is not a CRL", {
            "SGX-PCK-CRL-Issuer-Chain": s.chain_header("pck_crl_issuer_chain.pem")}

    def crl_truncated(s, q):
        return 200, s.file("pck_crl.der")[:-10], {
            "SGX-PCK-CRL-Issuer-Chain": s.chain_header("pck_crl_issuer_chain.pem")}

    def root_odd_hex(s, q):
        return 200, s.file("root_ca_crl.der").hex()[:-1].encode(), {}

    del ok_chain
    return [
        ("tcb", (404, b'{"error":"fmspc not found"}', {}), "HTTP 404"),
        ("tcb", (500, b"", {}), "HTTP 500"),
        ("tcb", tcb_not_json, "body is not JSON"),
        ("tcb", tcb_no_chain, "no issuer chain header (TCB-Info-Issuer-Chain or "
                              "SGX-TCB-Info-Issuer-Chain)"),
        ("tcb", tcb_chain_not_pem, "header holds no PEM certificate"),
        ("tcb", tcb_chain_bad_escape, "not valid percent-encoding"),
        ("tcb", tcb_wrong_fmspc, "tcbInfo.fmspc: expected 00A067110000, got 00906EA10000"),
        ("qe/identity", (404, b"", {}), "qe/identity: HTTP 404"),
        ("qe/identity", qe_wrong_shape, 'expected {"enclaveIdentity"'),
        ("pckcrl", crl_garbage, "expected DER, hex text or PEM"),
        ("pckcrl", crl_truncated, "do not parse as one DER X.509 CRL"),
        ("rootcacrl", root_odd_hex, "expected DER, hex text or PEM"),
        ("rootcacrl", (403, b"forbidden\x00\x01", {}), "HTTP 403 (expected 200): forbidden.."),
        ("qe/identity", (200, b" " * (5 << 20), {}), "response larger than 4194304 bytes"),
    ]


@pytest.mark.parametrize("route,override,message", garbage_cases(),
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(garbage_cases())])
def test_bad_answers_are_refused_and_not_cached(tmp_path, route, override, message):
    ca, fmspc, now = SETS["sgx3-dcapqvl"]
    with stub("sgx3-dcapqvl") as s:
        # A good entry exists and has expired: a failed refresh must leave it alone.
        run("--url", s.url, "--now", now, fmspc, ca, cache=tmp_path)
        s.override[route] = override
        p = run("--url", s.url, "--now", "2030-01-01T00:00:00Z", fmspc, ca, cache=tmp_path,
                check=False)
    assert p.returncode == 1
    assert message in p.stderr, p.stderr
    assert s.url + route in p.stderr, p.stderr
    assert "[pccs]" in p.stderr
    assert_same_as_vectors(tmp_path / f"{fmspc.lower()}-{ca}", "sgx3-dcapqvl")
    assert os.listdir(tmp_path) == [f"{fmspc.lower()}-{ca}"]


def test_nothing_cached_on_first_failure(tmp_path):
    ca, fmspc, now = SETS["sgx3-dcapqvl"]
    with stub("sgx3-dcapqvl") as s:
        s.override["rootcacrl"] = (404, b"", {})
        p = run("--url", s.url, "--now", now, fmspc, ca, cache=tmp_path, check=False)
    assert p.returncode == 1 and "rootcacrl: HTTP 404" in p.stderr
    assert os.listdir(tmp_path) == []


def test_https_with_private_ca(tmp_path):
    ca, fmspc, now = SETS["sgx3-automata"]
    with stub("sgx3-automata", tls=True) as s:
        assert s.url.startswith("https://")
        # Verification is on by default: the throwaway CA is not trusted.
        p = run("--url", s.url, "--now", now, fmspc, ca, cache=tmp_path, check=False)
        assert p.returncode == 1
        assert s.url in p.stderr and "certificate" in p.stderr.lower(), p.stderr
        p = run("--url", s.url, "--ca", s.ca_pem, "--now", now, fmspc, ca, cache=tmp_path)
    assert_same_as_vectors(p.stdout.split()[1], "sgx3-automata")


def test_url_from_qcnl_config(tmp_path):
    ca, fmspc, now = SETS["sgx3-dcapqvl"]
    sample = (VEC.parent / "mse-cli-config" / "sgx_default_qcnl.conf").read_text()
    with stub("sgx3-dcapqvl") as s:
        conf = tmp_path / "qcnl.conf"
        # Intel's sample, pointed at the stub (its comments and "//" in strings kept).
        conf.write_text(sample.replace("https://example.cosmian.com/sgx/certification/v4/", s.url))
        p = run("--qcnl", str(conf), "--now", now, fmspc, ca, cache=tmp_path / "c")
        assert s.total_hits() == 4
        # collateral_service, when set, wins over pccs_url.
        conf.write_text(sample.replace('//"collateral_service": "https://api.trustedservices.'
                                       'intel.com/sgx/certification/v4/"',
                                       f'"collateral_service": "{s.root}"'))
        run("--qcnl", str(conf), "--now", now, "--refresh", fmspc, ca, cache=tmp_path / "c")
        assert s.total_hits() == 8
    assert_same_as_vectors(p.stdout.split()[1], "sgx3-dcapqvl")
    p = run("--qcnl", str(tmp_path / "missing.conf"), fmspc, ca, cache=tmp_path, check=False)
    assert p.returncode == 1 and "missing.conf" in p.stderr and "--pccs" in p.stderr
    conf.write_text('{\n  "pccs_url": 42\n}\n')
    p = run("--qcnl", str(conf), fmspc, ca, cache=tmp_path, check=False)
    assert p.returncode == 1 and "pccs_url" in p.stderr
    conf.write_text('{\n  // comment\n  "pccs_url": "x",,\n}\n')
    p = run("--qcnl", str(conf), fmspc, ca, cache=tmp_path, check=False)
    assert p.returncode == 1 and "qcnl.conf:3:" in p.stderr, p.stderr


def test_connection_refused_and_timeout(tmp_path):
    ca, fmspc, now = SETS["sgx3-dcapqvl"]
    with stub("sgx3-dcapqvl") as s:
        url = s.url
    p = run("--url", url, "--now", now, fmspc, ca, cache=tmp_path, check=False)
    assert p.returncode == 1 and url + "tcb?fmspc=" in p.stderr
    with stub("sgx3-dcapqvl") as s:
        s.delay["qe/identity"] = 3
        p = subprocess.run([str(TOOL), "--cache", str(tmp_path), "--timeout", "1", "--url",
                            s.url, "--now", now, fmspc, ca], capture_output=True, text=True,
                           env=dict(os.environ, NO_PROXY="127.0.0.1"), timeout=60)
    assert p.returncode == 1 and "qe/identity" in p.stderr and "timed out" in p.stderr, p.stderr
    assert os.listdir(tmp_path) == []


def test_bad_arguments(tmp_path):
    for args, msg in [(["0000", "platform"], "fmspc: expected 12 hex digits"),
                      (["00A06711000G", "platform"], "fmspc: expected 12 hex digits"),
                      (["00A067110000", "root"], 'expected "platform" or "processor"'),
                      (["--url", "ftp://x/", "00A067110000", "platform"],
                       "expected an http:// or https:// URL")]:
        p = run(*args, cache=tmp_path, check=False)
        assert p.returncode == 1 and msg in p.stderr, p.stderr
