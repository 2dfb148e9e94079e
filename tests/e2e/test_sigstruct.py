# SPDX-License-Identifier: Apache-2.0
"""SGX SIGSTRUCT (src/attest/sigstruct.c, `mse verify --sigstruct`) against
SIGSTRUCTs written by python3-cryptography (tests/helpers/sigstruct_py.py),
an independent implementation of the SDM's layout and signature."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "helpers"))
import sigstruct_py  # noqa: E402

MSE = os.environ.get("MSE_BIN", "build/mse")
TOOL = Path(os.environ.get("MSE_BUILD", "build/san")) / "tools/sigstruct_flip"
MRE = hashlib.sha256(b"an enclave").digest()


@pytest.fixture(scope="module")
def key():
    return sigstruct_py.new_key()


def verify(path, *args):
    p = subprocess.run([MSE, "verify", "--sigstruct", str(path), "--json", *args],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, json.loads(p.stdout)


def test_every_signed_byte_matters(tmp_path, key):
    f = tmp_path / "a.sig"
    f.write_bytes(sigstruct_py.build(key, MRE, isv_prod_id=5, isv_svn=9))
    p = subprocess.run([TOOL, f], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    head, *flips = p.stdout.splitlines()
    assert head == (f"mrenclave={MRE.hex()} mrsigner={sigstruct_py.mrsigner(key).hex()} "
                    "isvprodid=5 isvsvn=9 debug=0")
    # Header, key, signature, body, Q1 and Q2: any flipped bit is refused. Only the 12
    # reserved bytes between the body and Q1 are neither signed nor checked (SDM 34.14).
    assert [int(x.split()[1]) for x in flips] == list(range(1028, 1040))


def test_mse_verify_sigstruct(tmp_path, key):
    f = tmp_path / "a.sig"
    f.write_bytes(sigstruct_py.build(key, MRE, isv_prod_id=2, isv_svn=4, date=(2026, 1, 31)))
    rc, j = verify(f)
    assert rc == 0 and j["ok"], j
    assert j["mrenclave"] == MRE.hex() and j["mrsigner"] == sigstruct_py.mrsigner(key).hex()
    assert (j["isvprodid"], j["isvsvn"], j["debug"], j["date"]) == (2, 4, False, "2026-01-31")
    pub = tmp_path / "pub.pem"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    assert verify(f, "--signer-key", str(pub), "--mrenclave", MRE.hex(), "--isvprodid", "2",
                  "--min-isvsvn", "4")[0] == 0
    rc, j = verify(f, "--mrenclave", "11" * 32)
    assert rc == 1 and "expected " + "11" * 32 in j["error"] and MRE.hex() in j["error"]
    other = tmp_path / "other.pem"
    other.write_bytes(sigstruct_py.new_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    rc, j = verify(f, "--signer-key", str(other))
    assert rc == 1 and "MRSIGNER" in j["error"]
    rc, j = verify(f, "--min-isvsvn", "5")
    assert rc == 1 and "ISVSVN" in j["error"]
    # Text output names the fields too.
    p = subprocess.run([MSE, "verify", "--sigstruct", str(f)], capture_output=True, text=True)
    assert p.returncode == 0 and f"mrenclave:    {MRE.hex()}" in p.stdout


def test_mse_verify_sigstruct_refusals(tmp_path, key):
    cases = {
        "debug": (sigstruct_py.build(key, MRE, debug=True), "DEBUG enclave"),
        "short": (sigstruct_py.build(key, MRE)[:1807], "expected 1808 bytes"),
        "header": (sigstruct_py.build(key, MRE, tamper=lambda b: b.__setitem__(4, 0xe2)), "HEADER (offset 0)"),
        "q2": (sigstruct_py.build(key, MRE, tamper=lambda b: b.__setitem__(1500, b[1500] ^ 1)), "Q2 (offset 1424)"),
        "exponent": (sigstruct_py.build(key, MRE, exponent=65537), "EXPONENT (offset 512)"),
        "enclavehash": (sigstruct_py.build(key, MRE, tamper=lambda b: b.__setitem__(960, b[960] ^ 1)),
                        "SIGNATURE (offset 516)"),
    }
    for name, (data, why) in cases.items():
        f = tmp_path / f"{name}.sig"
        f.write_bytes(data)
        rc, j = verify(f)
        assert rc == 1 and not j["ok"] and why in j["error"], (name, j)
        assert str(f) in j["error"], (name, j)
    # A 2048-bit signer is not an SGX signer, even when its signature verifies.
    k2 = rsa.generate_private_key(public_exponent=3, key_size=2048)
    data = bytearray(sigstruct_py.build(key, MRE))
    n = k2.public_key().public_numbers().n
    data[128:512] = n.to_bytes(384, "little")
    f = tmp_path / "small.sig"
    f.write_bytes(bytes(data))
    rc, j = verify(f)
    assert rc == 1 and "3072-bit" in j["error"], j
