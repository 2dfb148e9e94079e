# SPDX-License-Identifier: Apache-2.0
"""Simulation MRENCLAVE, enclave key derivation, quote providers and the
RA-TLS certificate, each checked against an independent Python
implementation (hashlib, python3-nacl, python3-cryptography, openssl)."""
import datetime
import hashlib
import ipaddress
import os
import struct
import subprocess
import tarfile
import time

import nacl.public
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import sgxcheck

BUILD = os.environ.get("MSE_BUILD", "build")
TOOL = os.path.join(BUILD, "tools", "enclavetool")
MSE = os.environ.get("MSE_BIN", os.path.join(BUILD, "mse"))
VECTORS = os.environ.get("MSE_VECTORS", "../shared/vectors")


def tool(*args, check=True):
    p = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"{args}: {p.returncode} {p.stderr}")
    return p


# --- the documented encoding, written again from docs/simulation.md -------
def u32(n):
    return struct.pack("<I", n)


def py_tree(files):
    """files: {relpath: bytes}"""
    h = hashlib.sha256(u32(len(files)))
    for path in sorted(files, key=lambda p: p.encode()):
        h.update(u32(len(path.encode())) + path.encode() + hashlib.sha256(files[path]).digest())
    return h.digest()


def py_mrenclave(boot, args, tree):
    h = hashlib.sha256(b"mse-c/sim-mrenclave/v1" + boot)
    for a in args:
        a = a.encode()
        h.update(u32(len(a)) + a)
    h.update(tree)
    return h.digest()


FILES = {
    "app.py.enc": b"\x01" * 100,
    "requirements.txt": b"flask\n",
    "pkg/__init__.py.enc": b"",
    "pkg/sub/data.bin.enc": os.urandom(70000),
    "Z.enc": b"upper case sorts first",
}


@pytest.fixture
def appdir(tmp_path):
    d = tmp_path / "app"
    for p, b in FILES.items():
        (d / p).parent.mkdir(parents=True, exist_ok=True)
        (d / p).write_bytes(b)
    (d / "empty_dir").mkdir()
    return d


def test_tree_hash_dir_and_tar_agree_with_spec(appdir, tmp_path):
    want = py_tree(FILES).hex()
    assert tool("treehash", appdir).stdout.strip() == want
    tar = tmp_path / "app.tar"
    with tarfile.open(tar, "w") as t:
        t.add(appdir, arcname=".")
    assert tool("treehash", tar).stdout.strip() == want
    tar2 = tmp_path / "app2.tar"
    with tarfile.open(tar2, "w") as t:
        for p in sorted(FILES, reverse=True):
            t.add(appdir / p, arcname=p)
    assert tool("treehash", tar2).stdout.strip() == want


def test_tree_hash_detects_changes_and_refuses_odd_entries(appdir, tmp_path):
    base = tool("treehash", appdir).stdout
    (appdir / "app.py.enc").write_bytes(b"\x02" * 100)
    assert tool("treehash", appdir).stdout != base
    (appdir / "app.py.enc").write_bytes(b"\x01" * 100)
    (appdir / "pkg/sub/data.bin.enc").rename(appdir / "pkg/data.bin.enc")
    assert tool("treehash", appdir).stdout != base
    os.symlink("/etc/passwd", appdir / "link")
    p = tool("treehash", appdir, check=False)
    assert p.returncode == 1 and "link" in p.stderr
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as t:
        info = tarfile.TarInfo("../escape.py.enc")
        t.addfile(info, None)
    p = tool("treehash", evil, check=False)
    assert p.returncode == 1 and "unsafe" in p.stderr


def test_mrenclave_matches_spec(appdir):
    boot = hashlib.sha256(b"some bootstrap").digest()
    args = ["CN=localhost,O=MyApp Company", "localhost", "1714058115", "4096",
            "63322f85-1ff8-4483-91ae-f18d7398d157", "app:app"]
    want = py_mrenclave(boot, args, py_tree(FILES)).hex()
    got = tool("measure", boot.hex(), *args, appdir).stdout.strip()
    assert got == want
    # Absent expiration (custom certificate mode) is the empty string.
    args0 = args[:2] + ["", ""] + args[4:]
    got0 = tool("measure", boot.hex(), args[0], args[1], "0", "0", *args[4:], appdir).stdout.strip()
    assert got0 == py_mrenclave(boot, args0, py_tree(FILES)).hex()
    # Every input matters.
    for i in range(len(args)):
        changed = list(args)
        changed[i] = changed[i] + "1"
        assert tool("measure", boot.hex(), *changed, appdir).stdout.strip() != want
    other = hashlib.sha256(b"another bootstrap").digest()
    assert tool("measure", other.hex(), *args, appdir).stdout.strip() != want


def test_filehash():
    assert tool("filehash", MSE).stdout.strip() == hashlib.sha256(open(MSE, "rb").read()).hexdigest()


def py_enclave_key(seal):
    sk = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
              info=b"mse-sgx-enclave-sealing-key").derive(seal)
    return sk, bytes(nacl.public.PrivateKey(sk).public_key)


def test_enclave_key_derivation():
    seal = bytes(range(16))
    sk, pk = py_enclave_key(seal)
    out = tool("enclave-key", seal.hex()).stdout.split()
    assert out == [sk.hex(), pk.hex()]
    # A sealed box to pk opens with sk (MSE's sealing).
    box = nacl.public.SealedBox(nacl.public.PublicKey(pk)).encrypt(b"secret")
    assert nacl.public.SealedBox(nacl.public.PrivateKey(sk)).decrypt(box) == b"secret"


@pytest.fixture
def gramine(tmp_path):
    d = tmp_path / "dev_attestation"
    (d / "keys").mkdir(parents=True)
    (d / "attestation_type").write_text("dcap")
    (d / "user_report_data").write_bytes(b"\0" * 64)
    (d / "quote").write_bytes(open(f"{VECTORS}/sgx-quote-cosmian/quote.dat", "rb").read())
    (d / "keys/_sgx_mrenclave").write_bytes(bytes(range(100, 116)))
    return d


def check_cert(cert_path, subject, san, exp):
    cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
    assert cert.subject == cert.issuer == x509.Name.from_rfc4514_string(subject)
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    try:
        assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(san)]
    except ValueError:
        assert names.get_values_for_type(x509.DNSName) == [san]
    assert cert.not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp() == exp
    assert cert.not_valid_before.timestamp() <= time.time() + 1
    cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                             __import__("cryptography.hazmat.primitives.asymmetric.ec",
                                        fromlist=["ECDSA"]).ECDSA(hashes.SHA256()))
    ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(sgxcheck.RATLS_EXT))
    assert not ext.critical
    txt = subprocess.run(["openssl", "x509", "-in", str(cert_path), "-noout", "-text"],
                         capture_output=True, text=True, check=True).stdout
    assert "CA:TRUE" in txt and "1.2.840.113741.1337.6" in txt and "prime256v1" in txt
    return cert, ext.value.value


def test_ratls_gramine_provider(gramine, tmp_path):
    exp = int(time.time()) + 3600
    subj = "CN=localhost,O=MyApp Company,C=FR,L=Paris,ST=Ile-de-France"
    pk = tool("ratls", "gramine", gramine, subj, "localhost", exp, tmp_path / "c.pem",
              tmp_path / "k.pem").stdout.strip()
    _, ref_pk = py_enclave_key(bytes(range(100, 116)))
    assert pk == ref_pk.hex()
    cert, quote = check_cert(tmp_path / "c.pem", subj, "localhost", exp)
    # The quote is what Gramine returned, byte for byte.
    assert quote == (gramine / "quote").read_bytes()
    # And the report data written to Gramine binds the key and the enclave key.
    rd = (gramine / "user_report_data").read_bytes()
    assert rd == sgxcheck.ratls_binding(cert) + ref_pk
    assert os.stat(tmp_path / "k.pem").st_mode & 0o777 == 0o600


def test_gramine_provider_refuses_wrong_type(gramine, tmp_path):
    (gramine / "attestation_type").write_text("epid")
    p = tool("ratls", "gramine", gramine, "CN=x", "x", int(time.time()) + 60, tmp_path / "c",
             tmp_path / "k", check=False)
    assert p.returncode == 1 and "dcap" in p.stderr
    p = tool("ratls", "gramine", tmp_path / "nothing", "CN=x", "x", int(time.time()) + 60,
             tmp_path / "c", tmp_path / "k", check=False)
    assert p.returncode == 1


def gramine_error(gramine, tmp_path):
    p = tool("ratls", "gramine", gramine, "CN=x", "x", int(time.time()) + 60, tmp_path / "c",
             tmp_path / "k", check=False)
    assert p.returncode == 1, p.stdout
    assert not (tmp_path / "c").exists() and not (tmp_path / "k").exists()
    return p.stderr


def test_gramine_provider_error_cases(gramine, tmp_path):
    """Each way the Gramine interface can be absent or wrong gets its own message."""
    # Not under Gramine at all.
    err = gramine_error(tmp_path / "nothing", tmp_path)
    assert "not running under Gramine" in err and "attestation_type" in err and "--simulation" in err
    # Gramine without DCAP attestation: an empty type, or another one.
    (gramine / "attestation_type").write_text("")
    err = gramine_error(gramine, tmp_path)
    assert 'expected "dcap"' in err and "none" in err, err
    (gramine / "attestation_type").write_bytes(b"epid\x01")
    err = gramine_error(gramine, tmp_path)
    assert "epid\\x01" in err, err
    (gramine / "attestation_type").write_text("dcap")
    # A short quote, then a malformed one (right length, wrong version).
    (gramine / "quote").write_bytes(b"\3" * 100)
    err = gramine_error(gramine, tmp_path)
    assert "quote of 100 bytes is too short" in err and "/quote" in err, err
    good = open(f"{VECTORS}/sgx-quote-cosmian/quote.dat", "rb").read()
    (gramine / "quote").write_bytes(b"\x09\x00" + good[2:])
    err = gramine_error(gramine, tmp_path)
    assert "malformed quote from Gramine" in err, err
    (gramine / "quote").write_bytes(good[:600])
    err = gramine_error(gramine, tmp_path)
    assert "malformed quote from Gramine" in err, err
    (gramine / "quote").write_bytes(good)
    # The sealing key: missing, then the wrong length.
    (gramine / "keys/_sgx_mrenclave").unlink()
    err = gramine_error(gramine, tmp_path)
    assert "no MRENCLAVE sealing key" in err and "keys/_sgx_mrenclave" in err, err
    (gramine / "keys/_sgx_mrenclave").write_bytes(b"k" * 15)
    err = gramine_error(gramine, tmp_path)
    assert "expected 16 bytes, got 15" in err, err


def test_ratls_sim_provider(tmp_path):
    sim = tmp_path / "sim"
    subprocess.run([MSE, "sim", "init", "--dir", str(sim)], check=True, capture_output=True)
    mre = hashlib.sha256(b"m").hexdigest()
    exp = int(time.time()) + 600
    pk = tool("ratls", "sim", sim, mre, "CN=127.0.0.1", "127.0.0.1", exp, tmp_path / "c.pem",
              tmp_path / "k.pem").stdout.strip()
    cert, quote = check_cert(tmp_path / "c.pem", "CN=127.0.0.1", "127.0.0.1", exp)
    qd = sgxcheck.parse_quote(quote)
    chain = sgxcheck.verify_quote_signatures(qd)
    root = x509.load_der_x509_certificate((sim / "root_ca.der").read_bytes())
    sgxcheck.verify_chain(chain[:-1], root)
    assert qd["body"]["mrenclave"].hex() == mre
    assert qd["body"]["report_data"] == sgxcheck.ratls_binding(cert) + bytes.fromhex(pk)
    # Same MRENCLAVE -> same enclave key (restart); other MRENCLAVE -> other key.
    pk2 = tool("ratls", "sim", sim, mre, "CN=a", "a", exp, tmp_path / "c2", tmp_path / "k2").stdout.strip()
    assert pk2 == pk
    pk3 = tool("ratls", "sim", sim, "00" * 32, "CN=a", "a", exp, tmp_path / "c3", tmp_path / "k3").stdout.strip()
    assert pk3 != pk


def test_ratls_bad_arguments(tmp_path, gramine):
    for subj, san, exp in [("CN=x", "x", int(time.time()) - 10), ("nonsense", "x", 2**33),
                           ("CN=x", "a b", 2**33), ("CN=x,+O=y", "x", 2**33)]:
        p = tool("ratls", "gramine", gramine, subj, san, exp, tmp_path / "c", tmp_path / "k",
                 check=False)
        assert p.returncode == 1, (subj, san, exp)
        assert not (tmp_path / "c").exists()
