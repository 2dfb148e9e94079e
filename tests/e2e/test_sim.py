# SPDX-License-Identifier: Apache-2.0
"""`mse sim`: the simulation PKI, collateral and quotes, checked with
python3-cryptography and the openssl CLI (never with mse-c's verifier)."""
import datetime
import json
import os
import stat
import subprocess

import pytest
from cryptography import x509

import sgxcheck

MSE = os.environ.get("MSE_BIN", "build/mse")
VECTORS = os.environ.get("MSE_VECTORS", "../shared/vectors")


def run(*args, env=None, check=True):
    p = subprocess.run([MSE, *args], capture_output=True, text=True, env=env, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"{args}: rc={p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture(scope="module")
def simdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim") / "sim"
    run("sim", "init", "--dir", str(d))
    return d


def load(d, name):
    return x509.load_pem_x509_certificate((d / name).read_bytes())


def test_help_and_usage_errors():
    p = run("sim", "--help")
    assert "mse sim init" in p.stdout
    assert run("sim", check=False).returncode == 2
    assert run("sim", "bogus", check=False).returncode == 2
    assert run("sim", "init", "--nope", check=False).returncode == 2
    assert run("sim", "quote", "--mrenclave", "zz", check=False).returncode == 2


def test_layout_and_modes(simdir):
    for f in ["root_ca.der", "root_ca.pem", "pck_ca.pem", "pck.pem", "tcb_signing.pem",
              "signer.pem"]:
        assert (simdir / f).is_file(), f
    col = simdir / "collateral"
    for f in ["tcb_info.json", "qe_identity.json", "tcb_info_issuer_chain.pem",
              "qe_identity_issuer_chain.pem", "pck_crl.der", "pck_crl_issuer_chain.pem",
              "root_ca_crl.der"]:
        assert (col / f).is_file(), f
    keys = simdir / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for k in keys.iterdir():
        assert stat.S_IMODE(k.stat().st_mode) == 0o600, k


def test_reinit_refused_then_forced(tmp_path):
    d = tmp_path / "s"
    run("sim", "init", "--dir", str(d))
    before = (d / "root_ca.der").read_bytes()
    p = run("sim", "init", "--dir", str(d), check=False)
    assert p.returncode == 1 and "--force" in p.stderr
    assert (d / "root_ca.der").read_bytes() == before
    run("sim", "init", "--dir", str(d), "--force")
    assert (d / "root_ca.der").read_bytes() != before
    assert not [x for x in tmp_path.iterdir() if x.name != "s"], "temporary dirs left behind"


def test_env_var_and_path(tmp_path):
    env = dict(os.environ, MSE_SIM_DIR=str(tmp_path / "e"))
    assert run("sim", "path", env=env).stdout.strip() == str(tmp_path / "e")
    env2 = dict(os.environ, HOME=str(tmp_path))
    env2.pop("MSE_SIM_DIR", None)
    assert run("sim", "path", env=env2).stdout.strip() == str(tmp_path / ".config/mse/sim")


def test_pki_chain_and_openssl(simdir):
    root = x509.load_der_x509_certificate((simdir / "root_ca.der").read_bytes())
    assert root == load(simdir, "root_ca.pem")
    pck, pck_ca, tcb = load(simdir, "pck.pem"), load(simdir, "pck_ca.pem"), load(simdir, "tcb_signing.pem")
    sgxcheck.verify_chain([pck, pck_ca], root)
    sgxcheck.verify_chain([tcb], root)
    bc = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    assert not pck.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert "Simulated" in pck.subject.rfc4514_string()
    assert "Platform CA" in pck_ca.subject.rfc4514_string()
    # openssl agrees, and the chain files are what PCCS would send.
    p = subprocess.run(["openssl", "verify", "-CAfile", str(simdir / "root_ca.pem"),
                        "-untrusted", str(simdir / "pck_ca.pem"), str(simdir / "pck.pem")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    chain = sgxcheck.load_pem_chain((simdir / "collateral/tcb_info_issuer_chain.pem").read_bytes())
    assert chain == [tcb, root]
    chain = sgxcheck.load_pem_chain((simdir / "collateral/pck_crl_issuer_chain.pem").read_bytes())
    assert chain == [pck_ca, root]


def test_sgx_extension_layout(simdir):
    pck = load(simdir, "pck.pem")
    ext = sgxcheck.sgx_extension(pck)
    assert ext["1"][0] == 0x04 and len(ext["1"][1]) == 16  # PPID
    tcb = ext["2"]
    assert sorted(tcb, key=lambda k: int(k.split(".")[1])) == [f"2.{i}" for i in range(1, 19)]
    comps = [int.from_bytes(tcb[f"2.{i}"][1], "big") for i in range(1, 17)]
    assert bytes(comps) == tcb["2.18"][1]  # CPUSVN
    pcesvn = int.from_bytes(tcb["2.17"][1], "big")
    assert ext["3"] == (0x04, b"\0\0")  # PCE-ID
    assert ext["4"][0] == 0x04 and len(ext["4"][1]) == 6  # FMSPC
    assert ext["5"][0] == 0x0A  # SGX type: ENUMERATED
    # The same layout as Intel's real PCK certificate.
    real = x509.load_pem_x509_certificate(open(f"{VECTORS}/sgx-quote-cosmian/pck_cert.pem", "rb").read())
    rext = sgxcheck.sgx_extension(real)
    assert set(rext) == set(ext)
    assert set(rext["2"]) == set(tcb)
    assert {k: v[0] for k, v in rext["7"].items()} == {k: v[0] for k, v in ext["7"].items()}
    # The TCB info has an UpToDate level equal to this TCB.
    info = json.loads((simdir / "collateral/tcb_info.json").read_text())["tcbInfo"]
    assert info["fmspc"].lower() == ext["4"][1].hex()
    up = [l for l in info["tcbLevels"] if l["tcbStatus"] == "UpToDate"]
    assert [c["svn"] for c in up[0]["tcb"]["sgxtcbcomponents"]] == comps
    assert up[0]["tcb"]["pcesvn"] == pcesvn


def test_collateral_signed_as_intel_does(simdir):
    tcb = load(simdir, "tcb_signing.pem")
    col = simdir / "collateral"
    info = sgxcheck.verify_signed_json(col / "tcb_info.json", "tcbInfo", tcb)
    assert info["id"] == "SGX" and info["version"] == 3
    now = datetime.datetime.now(datetime.timezone.utc)
    issue = datetime.datetime.fromisoformat(info["issueDate"].replace("Z", "+00:00"))
    nxt = datetime.datetime.fromisoformat(info["nextUpdate"].replace("Z", "+00:00"))
    assert issue <= now < nxt
    qe = sgxcheck.verify_signed_json(col / "qe_identity.json", "enclaveIdentity", tcb)
    assert qe["id"] == "QE" and qe["version"] == 2
    # A changed byte breaks the signature (the check is real).
    raw = (col / "tcb_info.json").read_bytes().replace(b'"pcesvn":13', b'"pcesvn":14', 1)
    bad = simdir.parent / "bad.json"
    bad.write_bytes(raw)
    with pytest.raises(Exception):
        sgxcheck.verify_signed_json(bad, "tcbInfo", tcb)
    # CRLs signed by their issuers; the PCK is not revoked.
    root = load(simdir, "root_ca.pem")
    pck_ca = load(simdir, "pck_ca.pem")
    rcrl = x509.load_der_x509_crl((col / "root_ca_crl.der").read_bytes())
    pcrl = x509.load_der_x509_crl((col / "pck_crl.der").read_bytes())
    assert rcrl.is_signature_valid(root.public_key())
    assert pcrl.is_signature_valid(pck_ca.public_key())
    assert not pcrl.is_signature_valid(root.public_key())
    assert pcrl.get_revoked_certificate_by_serial_number(load(simdir, "pck.pem").serial_number) is None
    assert len(list(pcrl)) == 1
    p = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", str(col / "pck_crl.der"),
                        "-CAfile", str(simdir / "root_ca.pem"), "-noout"], capture_output=True)
    # openssl needs the issuer itself to check; the text parse must succeed at least.
    assert b"unable to load" not in p.stderr


def test_quote_verifies_independently(simdir, tmp_path):
    mre = bytes(range(32)).hex()
    rd = bytes(range(64, 128)).hex()
    out = tmp_path / "q.bin"
    run("sim", "quote", "--dir", str(simdir), "--out", str(out), "--mrenclave", mre,
        "--report-data", rd, "--isv-prod-id", "1", "--isv-svn", "10")
    qd = sgxcheck.parse_quote(out.read_bytes())
    assert qd["trailing"] == b""
    chain = sgxcheck.verify_quote_signatures(qd)
    root = x509.load_der_x509_certificate((simdir / "root_ca.der").read_bytes())
    assert chain[-1] == root
    sgxcheck.verify_chain(chain[:-1], root)
    b = qd["body"]
    assert b["mrenclave"].hex() == mre and b["report_data"].hex() == rd
    assert b["isv_prod_id"] == 1 and b["isv_svn"] == 10
    assert b["attributes"][0] & 0x02 == 0, "debug bit must be clear"
    # MRSIGNER is SGX's: SHA-256 of the signer's little-endian modulus.
    assert b["mrsigner"] == sgxcheck.mrsigner_of((simdir / "signer.pem").read_bytes())
    # QE report matches the signed QE identity.
    qe = json.loads((simdir / "collateral/qe_identity.json").read_text())["enclaveIdentity"]
    assert qd["qe_report"]["mrsigner"].hex().upper() == qe["mrsigner"]
    assert qd["qe_report"]["isv_prod_id"] == qe["isvprodid"]
    assert qd["qe_report"]["isv_svn"] == qe["tcbLevels"][0]["tcb"]["isvsvn"]
    mask = bytes.fromhex(qe["attributesMask"])
    want = bytes.fromhex(qe["attributes"])
    assert bytes(a & m for a, m in zip(qd["qe_report"]["attributes"], mask)) == bytes(
        a & m for a, m in zip(want, mask))
    # The PCK's CPUSVN is the report's.
    ext = sgxcheck.sgx_extension(chain[0])
    assert ext["2"]["2.18"][1] == b["cpusvn"]
    assert qd["pce_svn"] == int.from_bytes(ext["2"]["2.17"][1], "big")
    # A flipped report byte breaks the quote signature.
    q = bytearray(out.read_bytes())
    q[48 + 64] ^= 1
    with pytest.raises(Exception):
        sgxcheck.verify_quote_signatures(sgxcheck.parse_quote(bytes(q)))


def test_quote_parser_agrees_with_real_quote():
    """The independent parser itself is checked on Intel's real quote."""
    q = open(f"{VECTORS}/sgx-quote-cosmian/quote.dat", "rb").read()
    qd = sgxcheck.parse_quote(q)
    sgxcheck.verify_quote_signatures(qd)
    assert qd["body"]["mrenclave"].hex() == "e413a4ed616c7a79634d5ca05a2fda746a1f0c71349a80b25a02828846fab90e"


def test_mrsigner_formula_on_mse_evidence():
    """MRSIGNER = SHA256(modulus LE) holds on MSE's real evidence."""
    ev = json.load(open(f"{VECTORS}/mse-evidence/evidence.json"))
    cert = x509.load_pem_x509_certificate(ev["ratls_certificate"].encode())
    quote = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(sgxcheck.RATLS_EXT)).value.value
    qd = sgxcheck.parse_quote(quote)
    assert qd["body"]["mrsigner"] == sgxcheck.mrsigner_of(ev["signer_pk"].encode())
    assert qd["body"]["report_data"][:32] == sgxcheck.ratls_binding(cert)
