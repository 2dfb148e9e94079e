# SPDX-License-Identifier: Apache-2.0
"""Packaging and secrets crypto, end to end, against independent implementations.

Oracles: PyNaCl (libsodium bindings: SecretBox, SealedBox, PrivateKey),
python3-cryptography (P-256 keys, X.509 building), Python's tarfile and
hashlib. Nothing here compares against output our own code produced earlier.
"""
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.secret import SecretBox
from nacl.utils import random as nacl_random

MSE = os.environ.get("MSE_BIN", "build/mse")
VECTORS = Path(os.environ.get("MSE_VECTORS", "../shared/vectors"))


def mse(*args, check=None, cwd=None):
    p = subprocess.run([MSE, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                       timeout=120)
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# ---- keygen ----------------------------------------------------------------

def test_keygen_symmetric_0600_and_never_overwrites(tmp_path):
    key = tmp_path / "code.key"
    mse("keygen", "--symmetric", "--output", key, check=0)
    data = key.read_bytes()
    assert len(data) == 32 and mode(key) == 0o600
    p = mse("keygen", "--symmetric", "--output", key, check=1)
    assert "already exists" in p.stderr
    assert key.read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["code.key"]  # no temporary left behind


def test_keygen_asymmetric_is_a_real_x25519_pair(tmp_path):
    key, pub = tmp_path / "pair.key", tmp_path / "pub.key"
    p = mse("keygen", "--asymmetric", "--output", key, "--public-output", pub, check=0)
    data = key.read_bytes()
    assert len(data) == 64 and mode(key) == 0o600 and mode(pub) == 0o644
    # PyNaCl derives the public half from the private half independently.
    assert bytes(PrivateKey(data[32:]).public_key) == data[:32]
    assert pub.read_bytes() == data[:32]
    assert p.stdout.strip() == data[:32].hex()


@pytest.mark.parametrize("args,code", [
    ([], 2), (["--symmetric"], 2), (["--symmetric", "--asymmetric", "--output", "x"], 2),
    (["--bogus"], 2), (["--symmetric", "--public-output", "p", "--output", "x"], 2),
])
def test_keygen_usage_errors(tmp_path, args, code):
    mse("keygen", *args, check=code, cwd=tmp_path)


def test_help_for_each_command():
    for cmd in ("package", "keygen", "decrypt", "seal", "unseal"):
        p = mse(cmd, "--help", check=0)
        assert p.stdout.startswith("Usage: mse " + cmd)


# ---- decrypt -----------------------------------------------------------------

def test_decrypt_mse_vector(tmp_path):
    out = tmp_path / "app.py"
    mse("decrypt", "--key", VECTORS / "mse-code-secretbox/code.key",
        "--input", VECTORS / "mse-code-secretbox/app.py.enc", "--output", out, check=0)
    assert out.read_bytes() == (VECTORS / "mse-code-secretbox/app.py").read_bytes()
    assert mode(out) == 0o600


def test_decrypt_wrong_key_or_corrupt_names_file_writes_nothing(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_bytes(os.urandom(32))
    out = tmp_path / "out.py"
    p = mse("decrypt", "--key", bad, "--input", VECTORS / "mse-code-secretbox/app.py.enc",
            "--output", out, check=1)
    assert "app.py.enc" in p.stderr and "wrong key or corrupt" in p.stderr
    assert not out.exists()
    corrupt = tmp_path / "app.py.enc"
    data = bytearray((VECTORS / "mse-code-secretbox/app.py.enc").read_bytes())
    data[-1] ^= 0x80
    corrupt.write_bytes(bytes(data))
    p = mse("decrypt", "--key", VECTORS / "mse-code-secretbox/code.key", "--input", corrupt,
            "--output", out, check=1)
    assert str(corrupt) in p.stderr
    assert not out.exists()
    # A 64-byte key pair is not a code key.
    pair = tmp_path / "pair.key"
    pair.write_bytes(os.urandom(64))
    p = mse("decrypt", "--key", pair, "--input", corrupt, "--output", out, check=1)
    assert "expected 32 raw bytes, got 64" in p.stderr


def nacl_encrypt_tree(root: Path, files: dict, key: bytes):
    """MSE's algorithm with PyNaCl: each file -> NAME.enc, requirements.txt clear."""
    box = SecretBox(key)
    for rel, data in files.items():
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel == "requirements.txt":
            dst.write_bytes(data)
        else:
            Path(str(dst) + ".enc").write_bytes(bytes(box.encrypt(data)))


FILES = {
    "app.py": b"from flask import Flask\napp = Flask(__name__)\n",
    "pkg/__init__.py": b"",
    "pkg/deep/util.py": b"X = 1\n" * 1000,
    "requirements.txt": b"flask\n",
    "static/logo.bin": bytes(range(256)) * 3,
}


def test_decrypt_directory_and_app_tar_made_by_pynacl(tmp_path):
    key = nacl_random(32)
    (tmp_path / "k").write_bytes(key)
    src = tmp_path / "enc"
    nacl_encrypt_tree(src, FILES, key)
    out = tmp_path / "dir-out"
    mse("decrypt", "--key", tmp_path / "k", "--input", src, "--output", out, check=0)
    for rel, data in FILES.items():
        assert (out / rel).read_bytes() == data
    # The same as an app.tar written by Python's tarfile (GNU format, with "./" names).
    tar = tmp_path / "app.tar"
    with tarfile.open(tar, "w", format=tarfile.GNU_FORMAT) as t:
        t.add(src, arcname=".")
    out2 = tmp_path / "tar-out"
    mse("decrypt", "--key", tmp_path / "k", "--input", tar, "--output", out2, check=0)
    for rel, data in FILES.items():
        assert (out2 / rel).read_bytes() == data
    # Existing non-empty output: refused, untouched.
    p = mse("decrypt", "--key", tmp_path / "k", "--input", tar, "--output", out2, check=1)
    assert "not overwriting" in p.stderr


def test_decrypt_app_tar_wrong_key_leaves_nothing(tmp_path):
    key = nacl_random(32)
    src = tmp_path / "enc"
    nacl_encrypt_tree(src, FILES, key)
    # One file encrypted under another key: the whole decryption must fail.
    (src / "pkg/deep/util.py.enc").write_bytes(bytes(SecretBox(nacl_random(32)).encrypt(b"x")))
    tar = tmp_path / "app.tar"
    with tarfile.open(tar, "w") as t:
        for f in sorted(src.rglob("*")):
            if f.is_file():
                t.add(f, arcname=str(f.relative_to(src)))
    (tmp_path / "k").write_bytes(key)
    out = tmp_path / "out"
    p = mse("decrypt", "--key", tmp_path / "k", "--input", tar, "--output", out, check=1)
    assert "pkg/deep/util.py.enc" in p.stderr
    assert not out.exists()
    assert [e for e in os.listdir(tmp_path) if e.startswith("out")] == []


def evil_tar(path: Path, members, key: bytes):
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as t:
        for name, kind, extra in members:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                # Valid code files, so that only the archive structure is wrong.
                data = extra or bytes(SecretBox(key).encrypt(b"x"))
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
                continue
            ti.type = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE,
                       "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE,
                       "dir": tarfile.DIRTYPE}[kind]
            if kind in ("sym", "hard"):
                ti.linkname = extra
            t.addfile(ti)


@pytest.mark.parametrize("members,why", [
    ([("/etc/cron.d/x.enc", "file", None)], "absolute path"),
    ([("../../outside.enc", "file", None)], "\"..\""),
    ([("a/../../outside.enc", "file", None)], "\"..\""),
    ([("escape", "sym", "../../../etc")], "symbolic link"),
    ([("abs", "sym", "/etc/passwd")], "symbolic link"),
    ([("ok.enc", "file", None), ("hard.enc", "hard", "ok.enc")], "hard link"),
    ([("hard.enc", "hard", "/etc/passwd")], "hard link"),
    ([("null", "chr", None)], "device file"),
    ([("sda", "blk", None)], "device file"),
    ([("pipe", "fifo", None)], "FIFO"),
    ([("a.enc", "file", None), ("a.enc", "file", None)], "duplicate"),
    ([("a.enc", "file", None), ("./a.enc", "file", None)], "duplicate"),
    ([("d", "dir", None), ("d/", "dir", None)], "duplicate"),
    # Every trailing '/' and leading "./" goes: all of these name one path.
    ([("d", "dir", None), ("d//", "dir", None)], "duplicate"),
    ([("d///", "dir", None), ("./d", "dir", None)], "duplicate"),
    ([("./d//", "dir", None), ("d/", "dir", None)], "duplicate"),
])
def test_malicious_tars_refused(tmp_path, members, why):
    key = tmp_path / "k"
    key.write_bytes(nacl_random(32))
    tar = tmp_path / "evil.tar"
    evil_tar(tar, members, key.read_bytes())
    out = tmp_path / "out"
    p = mse("decrypt", "--key", key, "--input", tar, "--output", out, check=1)
    assert why in p.stderr, p.stderr
    assert "refused" in p.stderr
    assert not out.exists()
    assert not (tmp_path.parent / "outside.enc").exists()


@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_sparse_tar_refused(tmp_path, fmt):
    """A 10 KB archive that declares 256 MiB (under the per-file limit):
    GNU tar's sparse entries (old GNU 'S' headers, pax GNU.sparse.*) carry
    only the non-zero blocks."""
    key = tmp_path / "k"
    key.write_bytes(nacl_random(32))
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "big.enc", "wb") as f:
        f.truncate(256 << 20)
    tar = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", f"--format={fmt}", "-cf", tar, "-C", src, "big.enc"],
                   check=True)
    assert tar.stat().st_size < 64 << 10
    with tarfile.open(tar) as t:  # the oracle: Python sees the declared size
        assert t.getmember("big.enc").size == 256 << 20
    out = tmp_path / "out"
    p = mse("decrypt", "--key", key, "--input", tar, "--output", out, check=1)
    assert "big.enc: refused: sparse file" in p.stderr, p.stderr
    assert not out.exists()


# ---- seal / unseal -------------------------------------------------------------

def test_seal_opens_with_pynacl_sealedbox(tmp_path):
    sk = PrivateKey.generate()
    pub = tmp_path / "pub"
    pub.write_bytes(bytes(sk.public_key))
    secret = tmp_path / "secrets.json"
    secret.write_bytes(json.dumps({"password": "azerty", "n": list(range(100))}).encode())
    out = tmp_path / "sealed"
    mse("seal", "--input", secret, "--receiver-public-key", pub, "--output", out, check=0)
    sealed = out.read_bytes()
    assert len(sealed) == len(secret.read_bytes()) + 48
    assert SealedBox(sk).decrypt(sealed) == secret.read_bytes()
    # Sealing twice gives different bytes (fresh ephemeral key), both open.
    out2 = tmp_path / "sealed2"
    mse("seal", "--input", secret, "--receiver-public-key", pub, "--output", out2, check=0)
    assert out2.read_bytes() != sealed
    assert SealedBox(sk).decrypt(out2.read_bytes()) == secret.read_bytes()
    # Never overwrites.
    mse("seal", "--input", secret, "--receiver-public-key", pub, "--output", out2, check=1)


def test_unseal_opens_pynacl_sealed_data(tmp_path):
    pair = tmp_path / "pair.key"
    mse("keygen", "--asymmetric", "--output", pair, check=0)
    pk = PublicKey(pair.read_bytes()[:32])
    msg = os.urandom(5000)
    sealed = tmp_path / "s"
    sealed.write_bytes(bytes(SealedBox(pk).encrypt(msg)))
    out = tmp_path / "plain"
    mse("unseal", "--input", sealed, "--private-key", pair, "--output", out, check=0)
    assert out.read_bytes() == msg and mode(out) == 0o600
    # A 32-byte private key file works too.
    sk32 = tmp_path / "sk"
    sk32.write_bytes(pair.read_bytes()[32:])
    out2 = tmp_path / "plain2"
    mse("unseal", "--input", sealed, "--private-key", sk32, "--output", out2, check=0)
    assert out2.read_bytes() == msg
    # Wrong key and corrupt input: nothing written.
    other = tmp_path / "other"
    other.write_bytes(bytes(PrivateKey.generate()))
    out3 = tmp_path / "plain3"
    p = mse("unseal", "--input", sealed, "--private-key", other, "--output", out3, check=1)
    assert "wrong private key or corrupt" in p.stderr and not out3.exists()
    data = bytearray(sealed.read_bytes())
    data[60] ^= 1
    sealed.write_bytes(bytes(data))
    mse("unseal", "--input", sealed, "--private-key", pair, "--output", out3, check=1)
    assert not out3.exists()


def test_seal_refuses_zero_and_small_order_keys(tmp_path):
    secret = tmp_path / "s"
    secret.write_bytes(b"{}")
    for name, key in (("zero", bytes(32)), ("one", b"\x01" + bytes(31))):
        k = tmp_path / name
        k.write_bytes(key)
        p = mse("seal", "--input", secret, "--receiver-public-key", k, "--output",
                tmp_path / ("o" + name), check=1)
        assert ("all zeros" in p.stderr) or ("small order" in p.stderr), p.stderr
        assert not (tmp_path / ("o" + name)).exists()


# RA-TLS: a certificate built here with python3-cryptography, carrying the real
# Cosmian quote with report_data replaced (seal parses the quote; verifying its
# signature is `mse verify`'s job, done before this certificate is trusted).

def ratls_cert(tmp_path, x25519_pub: bytes, bind=True):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime

    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    quote = bytearray((VECTORS / "sgx-quote-cosmian/quote.dat").read_bytes())
    digest = hashlib.sha256(point).digest()
    if not bind:
        digest = bytes(32)
    quote[368:432] = digest + x25519_pub
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "enclave")])
    now = datetime.datetime(2026, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.2.840.113741.1337.6"), bytes(quote)), critical=False)
            .sign(key, hashes.SHA256()))
    path = tmp_path / ("ratls.pem" if bind else "unbound.pem")
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_seal_to_ratls_certificate(tmp_path):
    sk = PrivateKey.generate()
    cert = ratls_cert(tmp_path, bytes(sk.public_key))
    secret = tmp_path / "s.json"
    secret.write_bytes(b'{"api_key": "k"}')
    out = tmp_path / "sealed"
    p = mse("seal", "--input", secret, "--receiver-enclave", cert, "--output", out, check=0)
    assert bytes(sk.public_key).hex() in p.stderr
    assert SealedBox(sk).decrypt(out.read_bytes()) == secret.read_bytes()


def test_seal_to_ratls_refuses_unbound_or_keyless(tmp_path):
    sk = PrivateKey.generate()
    secret = tmp_path / "s.json"
    secret.write_bytes(b"{}")
    unbound = ratls_cert(tmp_path, bytes(sk.public_key), bind=False)
    p = mse("seal", "--input", secret, "--receiver-enclave", unbound, "--output",
            tmp_path / "o1", check=1)
    assert "binding" in p.stderr
    # MSE's own evidence certificate: bound, but zeros where the sealing key goes.
    ev = json.loads((VECTORS / "mse-evidence/evidence.json").read_text())
    pem = tmp_path / "mse.pem"
    pem.write_text(ev["ratls_certificate"])
    p = mse("seal", "--input", secret, "--receiver-enclave", pem, "--output", tmp_path / "o2",
            check=1)
    assert "all zeros" in p.stderr
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    mse("seal", "--input", secret, "--output", tmp_path / "o3", check=2)
    mse("seal", "--input", secret, "--receiver-enclave", pem, "--receiver-public-key", pem,
        "--output", tmp_path / "o3", check=2)


# ---- package ---------------------------------------------------------------------

MSE_TOML = b'''name = "demo"
python_application = "app:app"
healthcheck_endpoint = "/health"
tests_cmd = "pytest"
tests_requirements = ["pytest==7.2.0"]
'''

LONG = "pkg/" + "a_rather_long_module_name_" * 5 + ".py"  # > 100 bytes: GNU long name

SOURCES = {
    "app.py": b"from flask import Flask\napp = Flask(__name__)\n",
    "requirements.txt": b"flask\n",
    "pkg/__init__.py": b"",
    "pkg/util.py": b"X = 1\n",
    "pkg/déjà_vu.py": b"# accents\n",
    LONG: b"LONG = True\n",
    "static/blob.bin": os.urandom(100_000),
}


def make_project(root: Path):
    src = root / "mse_src"
    for rel, data in SOURCES.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    # Never packaged: MSE's default .mseignore keeps secrets and caches out.
    (src / "secrets.json").write_text('{"password": "nope"}')
    (src / "__pycache__").mkdir()
    (src / "__pycache__/app.cpython-311.pyc").write_bytes(b"\0")
    (root / "tests").mkdir()
    (root / "tests/test_app.py").write_text("def test_ok():\n    assert True\n")
    (root / "mse.toml").write_bytes(MSE_TOML)
    return src


def outputs(out: Path):
    tars = sorted(out.glob("package_demo_*.tar"))
    keys = sorted(out.glob("package_demo_*.key"))
    nonces = sorted(out.glob("package_demo_*.nonces.json"))
    return tars, keys, nonces


def read_members(tar_bytes: bytes):
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as t:
        return [(m.name, t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()]


def test_package_opens_with_pynacl_and_tarfile(tmp_path):
    make_project(tmp_path)
    out = tmp_path / "out"
    p = mse("package", "--project", tmp_path, "--output", out, check=0)
    tars, keys, nonces = outputs(out)
    assert len(tars) == len(keys) == len(nonces) == 1
    stem = tars[0].name[:-4]
    assert keys[0].name == stem + ".key" and nonces[0].name == stem + ".nonces.json"
    assert stem.split("_")[-1].isdigit() and len(stem.split("_")[-1]) >= 19  # UNIX ns
    key = keys[0].read_bytes()
    assert len(key) == 32 and mode(keys[0]) == 0o600
    members = read_members(tars[0].read_bytes())
    assert sorted(m[0] for m in members) == ["app.tar", "mse.toml", "package.json", "tests.tar"]
    files = dict(members)
    pj = json.loads(files["package.json"])
    assert pj == {"format_version": 1, "name": "demo", "python_application": "app:app",
                  "healthcheck_endpoint": "/health",
                  "app_sha256": hashlib.sha256(files["app.tar"]).hexdigest()}
    assert pj["app_sha256"] in p.stdout
    assert files["mse.toml"] == MSE_TOML
    app = read_members(files["app.tar"])
    names = [n for n, _ in app]
    assert names == sorted(names, key=lambda n: n[:-4] if n.endswith(".enc") else n)
    box = SecretBox(key)
    nmap = json.loads(nonces[0].read_text())
    got = {}
    for name, data in app:
        if name == "requirements.txt":
            got[name] = data  # clear, as MSE leaves it
            continue
        assert name.endswith(".enc")
        rel = name[:-4]
        got[rel] = box.decrypt(data)  # PyNaCl opens nonce ‖ tag ‖ ciphertext
        assert data[:24].hex() == nmap[rel]["nonce"]
        assert nmap[rel]["sha256"] == hashlib.sha256(got[rel]).hexdigest()
    assert got == SOURCES
    assert "secrets.json" not in str(names) and "__pycache__" not in str(names)
    assert "requirements.txt" not in nmap and "key" not in nonces[0].read_text().lower()
    tests = dict(read_members(files["tests.tar"]))
    assert tests == {"test_app.py": b"def test_ok():\n    assert True\n"}


def test_package_reproducible_across_runs_and_locales(tmp_path):
    make_project(tmp_path)
    out = tmp_path / "out"
    mse("package", "--project", tmp_path, "--output", out, "--quiet", check=0)
    (tar1,), (key,), (nonces,) = outputs(out)
    out2 = tmp_path / "out2"
    for lang in ("C", "C.UTF-8"):
        env = dict(os.environ, LANG=lang, LC_ALL=lang)
        p = subprocess.run([MSE, "package", "--code", tmp_path / "mse_src", "--config",
                            tmp_path / "mse.toml", "--test", tmp_path / "tests", "--output",
                            out2 / lang, "--key", key, "--nonces", nonces], env=env,
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert "with recorded nonces" in p.stdout
        (tar2,) = sorted((out2 / lang).glob("package_demo_*.tar"))
        assert tar2.read_bytes() == tar1.read_bytes(), lang
        assert not list((out2 / lang).glob("*.key"))  # --key given: no new key
    # Without the nonce map: fresh nonces, so different bytes (same plaintext).
    out3 = tmp_path / "out3"
    mse("package", "--project", tmp_path, "--output", out3, "--key", key, check=0)
    (tar3,), _, _ = outputs(out3)
    assert tar3.read_bytes() != tar1.read_bytes()


def test_package_accepts_mse_context_nonces(tmp_path):
    make_project(tmp_path)
    ctx = tmp_path / "context.toml"
    ctx.write_text('[instance]\nid = "x"\n\n[instance.nonces]\n'
                   '"app.py" = "f33f4a1a1555660f9396aea7811b0ff7b0f19503a7485914"\n')
    out = tmp_path / "out"
    mse("package", "--project", tmp_path, "--output", out, "--nonces", ctx, check=0)
    (tar,), (key,), _ = outputs(out)
    app = dict(read_members(dict(read_members(tar.read_bytes()))["app.tar"]))
    enc = app["app.py.enc"]
    assert enc[:24].hex() == "f33f4a1a1555660f9396aea7811b0ff7b0f19503a7485914"
    assert enc == bytes(SecretBox(key.read_bytes()).encrypt(
        SOURCES["app.py"], bytes.fromhex("f33f4a1a1555660f9396aea7811b0ff7b0f19503a7485914")))


def test_package_refuses_nonce_reuse_on_changed_file(tmp_path):
    src = make_project(tmp_path)
    out = tmp_path / "out"
    mse("package", "--project", tmp_path, "--output", out, "--quiet", check=0)
    _, (key,), (nonces,) = outputs(out)
    (src / "pkg/util.py").write_bytes(b"X = 2\n")
    out2 = tmp_path / "out2"
    p = mse("package", "--project", tmp_path, "--output", out2, "--key", key, "--nonces",
            nonces, check=1)
    assert "pkg/util.py" in p.stderr and "keystream" in p.stderr
    assert not out2.exists() or os.listdir(out2) == []
    # Without --key a new key would be written first: it is removed again on failure.
    p = mse("package", "--project", tmp_path, "--output", out2, "--nonces", nonces, check=1)
    assert os.listdir(out2) == []


def test_package_then_decrypt_app_tar(tmp_path):
    make_project(tmp_path)
    out = tmp_path / "out"
    mse("package", "--project", tmp_path, "--output", out, "--quiet", check=0)
    (tar,), (key,), _ = outputs(out)
    app = tmp_path / "app.tar"
    app.write_bytes(dict(read_members(tar.read_bytes()))["app.tar"])
    plain = tmp_path / "plain"
    mse("decrypt", "--key", key, "--input", app, "--output", plain, check=0)
    got = {str(f.relative_to(plain)): f.read_bytes() for f in plain.rglob("*") if f.is_file()}
    assert got == SOURCES
    # The whole package works too (after its app.tar digest is checked).
    plain2 = tmp_path / "plain2"
    mse("decrypt", "--key", key, "--input", tar, "--output", plain2, check=0)
    got = {str(f.relative_to(plain2)): f.read_bytes() for f in plain2.rglob("*") if f.is_file()}
    assert got == SOURCES
    assert sorted(os.listdir(tmp_path)) == sorted(["app.tar", "mse.toml", "mse_src", "out",
                                                   "plain", "plain2", "tests"])


def test_package_errors(tmp_path):
    make_project(tmp_path)
    mse("package", "--project", tmp_path, check=2)
    mse("package", "--project", tmp_path, "--code", tmp_path, "--output", tmp_path / "o",
        check=2)
    mse("package", "--code", tmp_path / "mse_src", "--output", tmp_path / "o", check=2)
    bad = tmp_path / "bad.key"
    bad.write_bytes(b"short")
    p = mse("package", "--project", tmp_path, "--output", tmp_path / "o", "--key", bad,
            check=1)
    assert "expected 32 raw bytes, got 5" in p.stderr
    (tmp_path / "mse.toml").write_text('name = "demo"\npython_application = 5\n')
    p = mse("package", "--project", tmp_path, "--output", tmp_path / "o", check=1)
    assert "mse.toml:2" in p.stderr
    assert not (tmp_path / "o").exists() or os.listdir(tmp_path / "o") == []


def test_package_follows_mseignore(tmp_path):
    src = make_project(tmp_path)
    (src / ".mseignore").write_text("*.log\ndata/\n!keep.log\n")
    (src / "debug.log").write_text("noise")
    (src / "keep.log").write_text("kept")
    (src / "data").mkdir()
    (src / "data/big.csv").write_text("1,2,3")
    out = tmp_path / "out"
    mse("package", "--project", tmp_path, "--output", out, "--quiet", check=0)
    (tar,), (key,), _ = outputs(out)
    names = [n for n, _ in read_members(dict(read_members(tar.read_bytes()))["app.tar"])]
    assert "keep.log.enc" in names
    assert not [n for n in names if n.startswith(("debug.log", "data/"))]
    # With a .mseignore of its own, MSE's defaults no longer apply (as in MSE and git):
    # what it does not list ships, encrypted, .mseignore and secrets.json included.
    assert "secrets.json.enc" in names and ".mseignore.enc" in names
    # A link that leaves the code directory is refused, naming it.
    os.symlink("/etc/passwd", src / "passwd")
    p = mse("package", "--project", tmp_path, "--output", tmp_path / "o2", check=1)
    assert "passwd" in p.stderr


def test_package_refuses_files_over_the_memory_bound(tmp_path):
    src = make_project(tmp_path)
    with open(src / "huge.bin", "wb") as f:  # sparse: nothing is read before the refusal
        f.truncate((1 << 30) + 1)
    p = mse("package", "--project", tmp_path, "--output", tmp_path / "out", check=1)
    assert "huge.bin" in p.stderr and "over the limit of 1073741824 bytes" in p.stderr
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


@pytest.mark.skipif(not Path("/usr/bin/script").exists(), reason="util-linux script missing")
def test_package_progress_bar_on_a_terminal(tmp_path):
    make_project(tmp_path)
    cmd = f"{MSE} package --project {tmp_path} --output {tmp_path / 'out'}"
    p = subprocess.run(["/usr/bin/script", "-qec", cmd, "/dev/null"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout
    assert "100%" in p.stdout and "files" in p.stdout and "[####" in p.stdout
    # Not on a pipe, and not with --quiet.
    p = mse("package", "--project", tmp_path, "--output", tmp_path / "o2", check=0)
    assert "%" not in p.stderr
    p = mse("package", "--project", tmp_path, "--output", tmp_path / "o3", "--quiet", check=0)
    assert p.stdout == "" and p.stderr == ""
