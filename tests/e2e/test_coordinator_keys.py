# SPDX-License-Identifier: Apache-2.0
"""The coordinator's key derivations are a frozen wire format: the known answers in
tests/vectors/ckeys.json (which the C unit test test_coordinator checks the C code
against) must be exactly what python3-cryptography computes from the documented
definitions (src/crypto/ckeys.h). A change to the C derivation fails the unit test;
a change to the file that is not the documented derivation fails here."""
import importlib.util
import json
import os
from pathlib import Path

ROOT = Path(os.environ.get("MSE_ROOT", Path(__file__).resolve().parents[2]))


def load_gen():
    spec = importlib.util.spec_from_file_location("gen_ckeys", ROOT / "tests/vectors/gen_ckeys.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_vectors_are_the_documented_derivation():
    gen = load_gen()
    stored = json.loads((ROOT / "tests/vectors/ckeys.json").read_text())["vectors"]
    assert stored == gen.vectors()
    assert len(stored) >= 4 and all(len(v["app_keys"]) >= 4 for v in stored)


def test_hkdf_rfc5869_case3_through_the_same_helper():
    """The helper itself against RFC 5869 A.3 (SHA-256, empty salt and info)."""
    gen = load_gen()
    okm = gen.hkdf(bytes([0x0b] * 22), b"", 42)
    assert okm.hex() == ("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
                         "9d201395faa4b61a96c8")


def test_ca_scalar_is_reduced_into_range():
    gen = load_gen()
    # A root whose 48-byte HKDF output is above n: the reduction still lands in [1, n-1].
    for v in json.loads((ROOT / "tests/vectors/ckeys.json").read_text())["vectors"]:
        d = int(v["ca_scalar"], 16)
        assert 1 <= d <= gen.N - 1
