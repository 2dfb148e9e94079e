# SPDX-License-Identifier: Apache-2.0
"""evidence.json for an SGX enclave: collateral from a PCCS for the quote's
platform (the stub serves real Intel collateral), signer key from the
operator. Checked field by field against the vector files, independently of
our writer."""
import base64
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

sys.path.insert(0, os.path.dirname(__file__))
from pccs_stub import PccsStub  # noqa: E402

VEC = Path(os.environ.get("MSE_VECTORS", "../shared/vectors"))
TOOL = Path(os.environ.get("MSE_BUILD", "build/san")) / "tools/sgx_evidence"
SET = VEC / "dcap-quotes/sgx3-dcapqvl"


def ratls_cert_with(quote: bytes) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.2.840.113741.1337.6"), quote),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def env_for(tmp):
    e = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"), NO_PROXY="127.0.0.1")
    return e


@pytest.fixture
def setup(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "ratls.pem").write_bytes(ratls_cert_with((SET / "quote.bin").read_bytes()))
    signer = rsa.generate_private_key(public_exponent=3, key_size=3072)
    (tmp_path / "signer.key").write_bytes(signer.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    pub = signer.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return state, pub


def test_sgx_evidence_from_the_pccs(tmp_path, setup):
    state, pub = setup
    with PccsStub(SET, ca="processor") as s:
        r = subprocess.run([str(TOOL), str(state), str(tmp_path / "out"), s.url,
                            str(tmp_path / "signer.key")], env=env_for(tmp_path),
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    ev = json.loads((tmp_path / "out/evidence.json").read_text())
    # MSE's quirk: base64 of the hex of the PCCS body, newline-terminated.
    assert bytes.fromhex(base64.b64decode(ev["tcb_info"]).decode().strip()) == (SET / "tcb_info.json").read_bytes()
    assert base64.b64decode(ev["qe_identity"]) == (SET / "qe_identity.json").read_bytes()
    crl = x509.load_pem_x509_crl(ev["pck_platform_crl"].encode())
    assert crl.public_bytes(serialization.Encoding.DER) == (SET / "pck_crl.der").read_bytes()
    root = x509.load_pem_x509_crl(ev["root_ca_crl"].encode())
    assert root.public_bytes(serialization.Encoding.DER) == (SET / "root_ca_crl.der").read_bytes()
    tcb = x509.load_pem_x509_certificate(ev["tcb_cert"].encode())
    # The first certificate of the issuer chain: the TCB signing certificate.
    assert tcb == x509.load_pem_x509_certificate((SET / "tcb_info_issuer_chain.pem").read_bytes())
    # Only the public half of the signer key is published.
    assert ev["signer_pk"].encode() == pub
    assert "PRIVATE" not in json.dumps(ev)
    assert ev["ratls_certificate"].encode() == (state / "ratls.pem").read_bytes()
    assert ev["input_args"]["app_id"] == "63322f85-1ff8-4483-91ae-f18d7398d157"


def test_sgx_evidence_needs_signer_and_pccs(tmp_path, setup):
    state, _ = setup
    r = subprocess.run([str(TOOL), str(state), str(tmp_path / "out"), "http://127.0.0.1:1/sgx/certification/v4/",
                        str(tmp_path / "signer.key")], env=env_for(tmp_path), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and "127.0.0.1:1" in r.stderr
    assert not (tmp_path / "out/evidence.json").exists()
    (tmp_path / "notrsa.pem").write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with PccsStub(SET, ca="processor") as s:
        r = subprocess.run([str(TOOL), str(state), str(tmp_path / "out"), s.url, str(tmp_path / "notrsa.pem")],
                           env=env_for(tmp_path), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "RSA signer key" in r.stderr
