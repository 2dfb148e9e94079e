#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Python reference packager for `make bench`: MSE's algorithm with python3-nacl.

What MSE's `mse package` does, step by step: copy nothing, walk the code
directory; for each file read it, encrypt it with nacl.secret.SecretBox
(XSalsa20-Poly1305, a random 24-byte nonce), write NAME.enc (requirements.txt
is copied clear); then tar that directory into app.tar, hash it, and tar
app.tar, tests.tar, mse.toml and package.json into the package.

    package_ref.py --code DIR --config FILE --output DIR [--key FILE]

The key is read from --key (32 raw bytes) or generated. Prints the package path.
"""
import argparse
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import nacl.utils
from nacl.secret import SecretBox


def encrypt_directory(src: Path, dst: Path, key: bytes) -> dict:
    box = SecretBox(key)
    nonces = {}
    for root, dirs, files in os.walk(src):
        dirs.sort()
        rel_root = Path(root).relative_to(src)
        (dst / rel_root).mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            rel = rel_root / name
            data = (src / rel).read_bytes()
            if str(rel) == "requirements.txt":
                (dst / rel).write_bytes(data)
                continue
            nonce = nacl.utils.random(SecretBox.NONCE_SIZE)
            (dst / (str(rel) + ".enc")).write_bytes(bytes(box.encrypt(data, nonce)))
            nonces[str(rel)] = nonce.hex()
    return nonces


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--code", required=True, type=Path)
    ap.add_argument("--config", required=True, type=Path)
    ap.add_argument("--output", required=True, type=Path)
    ap.add_argument("--key", type=Path)
    a = ap.parse_args()
    key = a.key.read_bytes() if a.key else nacl.utils.random(SecretBox.KEY_SIZE)
    ns = time.time_ns()
    a.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=a.output) as tmp:
        tmp = Path(tmp)
        enc = tmp / "code"
        nonces = encrypt_directory(a.code, enc, key)
        app_tar = tmp / "app.tar"
        with tarfile.open(app_tar, "w") as t:
            for f in sorted(p for p in enc.rglob("*") if p.is_file()):
                t.add(f, arcname=str(f.relative_to(enc)))
        tests_tar = tmp / "tests.tar"
        tarfile.open(tests_tar, "w").close()
        h = hashlib.sha256()
        with open(app_tar, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        (tmp / "package.json").write_text(json.dumps({
            "format_version": 1, "name": "bench", "python_application": "app:app",
            "healthcheck_endpoint": "/", "app_sha256": h.hexdigest()}, indent=2, sort_keys=True))
        shutil.copy(a.config, tmp / "mse.toml")
        pkg = a.output / f"package_bench_{ns}.tar"
        with tarfile.open(pkg, "w") as t:
            for name in ("package.json", "mse.toml", "app.tar", "tests.tar"):
                t.add(tmp / name, arcname=name)
        (a.output / f"package_bench_{ns}.nonces.json").write_text(json.dumps(nonces))
    print(pkg)


if __name__ == "__main__":
    main()
