# SPDX-License-Identifier: Apache-2.0
"""SGX SIGSTRUCT (enclave_css_t, 1808 bytes) written with python3-cryptography,
independently of src/attest/sigstruct.c: the test oracle for the C parser and
verifier, and what the Gramine stand-in (tests/gramine-standin/) writes into
its .sig files.

Layout from the Intel SDM Vol. 3D, 34.14 (Enclave Signature Structure):
header 0..127, modulus 128, exponent 512, signature 516, body 900..1027,
Q1 1040, Q2 1424. Modulus, signature, Q1 and Q2 are little-endian.
"""
import hashlib
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HEADER = bytes.fromhex("06000000e10000000000010000000000")
HEADER2 = bytes.fromhex("01010000600000006000000001000000")
SIZE = 1808


def new_key():
    return rsa.generate_private_key(public_exponent=3, key_size=3072)


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def mrsigner(key) -> bytes:
    n = key.public_key().public_numbers().n
    return hashlib.sha256(n.to_bytes(384, "little")).digest()


def build(key, mrenclave: bytes, isv_prod_id=1, isv_svn=1, debug=False, date=(2026, 12, 3),
          vendor=0, attr_xfrm=0x3, exponent=None, tamper=None) -> bytes:
    """A signed SIGSTRUCT. tamper(buf) may change the bytes after signing
    (for negative tests); exponent overrides the stored exponent field."""
    assert len(mrenclave) == 32
    b = bytearray(SIZE)
    b[0:16] = HEADER
    y, m, d = date
    struct.pack_into("<I", b, 16, vendor)
    # DATE is BCD: day, month, then the year as a 16-bit BCD number.
    b[20] = int(f"{d:02d}", 16)
    b[21] = int(f"{m:02d}", 16)
    struct.pack_into("<H", b, 22, int(f"{y:04d}", 16))
    b[24:40] = HEADER2
    # body
    struct.pack_into("<II", b, 900, 0, 0xFFFFFFFF)  # MISCSELECT, MISCMASK
    flags = 0x4 | (0x2 if debug else 0)  # MODE64BIT, DEBUG
    struct.pack_into("<QQ", b, 928, flags, attr_xfrm)
    struct.pack_into("<QQ", b, 944, 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFF9FF1B)
    b[960:992] = mrenclave
    struct.pack_into("<HH", b, 1024, isv_prod_id, isv_svn)
    pub = key.public_key().public_numbers()
    n = pub.n
    b[128:512] = n.to_bytes(384, "little")
    struct.pack_into("<I", b, 512, pub.e if exponent is None else exponent)
    signed = bytes(b[0:128]) + bytes(b[900:1028])
    sig = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    s = int.from_bytes(sig, "big")
    b[516:900] = s.to_bytes(384, "little")
    q1 = (s * s) // n
    q2 = (s * s * s - q1 * s * n) // n
    b[1040:1424] = q1.to_bytes(384, "little")
    b[1424:1808] = q2.to_bytes(384, "little")
    if tamper:
        tamper(b)
    return bytes(b)


def parse(data: bytes) -> dict:
    """Reads and verifies a SIGSTRUCT as EINIT would (signature with the
    embedded key, e = 3, Q1/Q2); raises ValueError otherwise."""
    from cryptography.exceptions import InvalidSignature

    if len(data) != SIZE:
        raise ValueError(f"SIGSTRUCT: expected {SIZE} bytes, got {len(data)}")
    if data[0:16] != HEADER or data[24:40] != HEADER2:
        raise ValueError("SIGSTRUCT: bad HEADER or HEADER2")
    n = int.from_bytes(data[128:512], "little")
    e = struct.unpack_from("<I", data, 512)[0]
    s = int.from_bytes(data[516:900], "little")
    if e != 3 or n.bit_length() != 3072:
        raise ValueError("SIGSTRUCT: expected an RSA-3072 key with exponent 3")
    pub = rsa.RSAPublicNumbers(e, n).public_key()
    try:
        pub.verify(s.to_bytes(384, "big"), data[0:128] + data[900:1028], padding.PKCS1v15(),
                   hashes.SHA256())
    except InvalidSignature:
        raise ValueError("SIGSTRUCT: bad signature") from None
    q1 = (s * s) // n
    if data[1040:1424] != q1.to_bytes(384, "little") or \
            data[1424:1808] != ((s * s * s - q1 * s * n) // n).to_bytes(384, "little"):
        raise ValueError("SIGSTRUCT: bad Q1/Q2")
    flags = struct.unpack_from("<Q", data, 928)[0]
    prod, svn = struct.unpack_from("<HH", data, 1024)
    return {"mrenclave": data[960:992], "mrsigner": hashlib.sha256(data[128:512]).digest(),
            "isvprodid": prod, "isvsvn": svn, "debug": bool(flags & 2)}
