#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Writes tests/vectors/ckeys.json: known answers for src/crypto/ckeys.h, computed
with python3-cryptography (an implementation independent of the C code).

    app key = HKDF-SHA256(IKM=root, salt=empty, info="mse-c/app-key/v1" || u32le(len(name)) || name, L=32)
    CA d    = (OS2IP(HKDF-SHA256(IKM=root, salt=empty, info="mse-c/ca-key/v1", L=48)) mod (n-1)) + 1
"""
import json
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def hkdf(ikm, info, n):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=None, info=info).derive(ikm)


def app_key(root, name):
    b = name.encode()
    return hkdf(root, b"mse-c/app-key/v1" + struct.pack("<I", len(b)) + b, 32)


def ca(root):
    d = int.from_bytes(hkdf(root, b"mse-c/ca-key/v1", 48), "big") % (N - 1) + 1
    pub = ec.derive_private_key(d, ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return d.to_bytes(32, "big"), pub


def vectors():
    roots = [bytes(32), bytes(range(32)), bytes([0xff] * 32),
             bytes.fromhex("5c1f0a3d9e8b7c6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa9988")]
    names = ["app", "app1", "é-ünïcode", "x" * 255]
    out = []
    for r in roots:
        d, pub = ca(r)
        out.append({"root": r.hex(), "ca_scalar": d.hex(), "ca_public": pub.hex(),
                    "app_keys": {n: app_key(r, n).hex() for n in names}})
    return out


if __name__ == "__main__":
    json.dump({"comment": __doc__.strip(), "vectors": vectors()}, sys.stdout, indent=1,
              ensure_ascii=False)
    sys.stdout.write("\n")
