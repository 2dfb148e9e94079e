# SPDX-License-Identifier: Apache-2.0
"""`mse verify` on synthetic quotes built here, independently, with python3-cryptography:
a throwaway root CA, PCK CA, PCK leaf (SGX extension DER written by hand), TCB signing
certificate, signed TCB info and QE identity, CRLs, a QE report and a quote (v3 and the v4
SGX layout). The chain ends at our root, so these are "simulation" quotes: they exercise the
simulation-root mode and every check real vectors cannot reach (debug enclave, revocation of
the PCK leaf and CA, QE identity mismatch, QE revoked, TCB level not supported, statuses
and advisories, measurements)."""

import datetime
import hashlib
import json
import os
import struct
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

MSE = os.environ.get("MSE_BIN", "build/san/mse")
NOW = datetime.datetime(2026, 1, 15, tzinfo=datetime.timezone.utc)
NOW_TXT = "2026-01-15T00:00:00Z"
INTEL_QE_VENDOR = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
QE_MRSIGNER = bytes(range(32))
FMSPC = bytes.fromhex("00906ed50000")


# ---- DER by hand (the SGX extension) ----
def der(tag, content):
    n = len(content)
    if n < 0x80:
        ln = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        ln = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + ln + content


def oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    out = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.insert(0, 0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(enc)
    return der(0x06, out)


def integer(v):
    b = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
    return der(0x02, b)


SGX = "1.2.840.113741.1.13.1"


def sgx_extension(comps, pcesvn):
    tcb = b"".join(der(0x30, oid(f"{SGX}.2.{i + 1}") + integer(c)) for i, c in enumerate(comps))
    tcb += der(0x30, oid(f"{SGX}.2.17") + integer(pcesvn))
    tcb += der(0x30, oid(f"{SGX}.2.18") + der(0x04, bytes(comps)))
    entries = [
        der(0x30, oid(f"{SGX}.1") + der(0x04, b"\x11" * 16)),
        der(0x30, oid(f"{SGX}.2") + der(0x30, tcb)),
        der(0x30, oid(f"{SGX}.3") + der(0x04, b"\x00\x00")),
        der(0x30, oid(f"{SGX}.4") + der(0x04, FMSPC)),
        der(0x30, oid(f"{SGX}.5") + der(0x0A, b"\x00")),
    ]
    return der(0x30, b"".join(entries))


# ---- certificates ----
def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def cert(subject, subject_key, issuer, issuer_key, ca, serial, ext=None):
    b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
         .public_key(subject_key.public_key()).serial_number(serial)
         .not_valid_before(NOW - datetime.timedelta(days=365))
         .not_valid_after(NOW + datetime.timedelta(days=365))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ext is not None:
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(SGX), ext), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def crl(issuer, key, revoked=()):
    b = (x509.CertificateRevocationListBuilder().issuer_name(name(issuer))
         .last_update(NOW - datetime.timedelta(days=1)).next_update(NOW + datetime.timedelta(days=30)))
    for s in revoked:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(s)
                                      .revocation_date(NOW - datetime.timedelta(days=2)).build())
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def raw_sig(key, msg):
    r, s = decode_dss_signature(key.sign(msg, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def raw_pub(key):
    n = key.public_key().public_numbers()
    return n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")


def report(mrenclave, mrsigner, attributes, prodid, svn, report_data, cpusvn=b"\0" * 16):
    b = bytearray(384)
    b[0:16] = cpusvn
    b[48:64] = attributes
    b[64:96] = mrenclave
    b[128:160] = mrsigner
    b[256:258] = struct.pack("<H", prodid)
    b[258:260] = struct.pack("<H", svn)
    b[320:384] = report_data
    return bytes(b)


def signed_body(key, member, obj):
    text = json.dumps(obj, separators=(",", ":"))
    return ('{"%s":%s,"signature":"%s"}' % (member, text, raw_sig(key, text.encode()).hex())).encode()


def levels(hi, lo):
    def comps(v):
        return [{"svn": x} for x in v]
    return [
        {"tcb": {"sgxtcbcomponents": comps(hi), "pcesvn": 11}, "tcbDate": "2025-01-01T00:00:00Z",
         "tcbStatus": "UpToDate"},
        {"tcb": {"sgxtcbcomponents": comps(lo), "pcesvn": 5}, "tcbDate": "2024-01-01T00:00:00Z",
         "tcbStatus": "OutOfDate", "advisoryIDs": ["INTEL-SA-00001", "INTEL-SA-00002"]},
    ]


def build(d, *, version=3, debug=False, pck_comps=None, revoke_leaf=False, revoke_ca=False,
          qe_mrsigner=QE_MRSIGNER, qe_svn=8):
    """Writes DIR/quote.bin, a collateral directory DIR/col and DIR/root.der."""
    d.mkdir(parents=True, exist_ok=True)
    root_k, ca_k, pck_k, tcb_k, att_k = (ec.generate_private_key(ec.SECP256R1()) for _ in range(5))
    hi, lo = [5] * 16, [2] * 16
    comps = pck_comps if pck_comps is not None else hi
    root = cert("MSE Test Root CA", root_k, "MSE Test Root CA", root_k, True, 1)
    ca = cert("MSE Test PCK Platform CA", ca_k, "MSE Test Root CA", root_k, True, 2)
    pck = cert("MSE Test PCK Certificate", pck_k, "MSE Test PCK Platform CA", ca_k, False, 3,
               sgx_extension(comps, 11))
    tcb = cert("MSE Test TCB Signing", tcb_k, "MSE Test Root CA", root_k, False, 4)
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    (d / "root.der").write_bytes(root.public_bytes(serialization.Encoding.DER))

    col = d / "col"
    col.mkdir(exist_ok=True)
    issue, nxt = "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"
    ti = {"id": "SGX", "version": 3, "issueDate": issue, "nextUpdate": nxt, "fmspc": FMSPC.hex(),
          "pceId": "0000", "tcbType": 0, "tcbEvaluationDataNumber": 17, "tcbLevels": levels(hi, lo)}
    qi = {"id": "QE", "version": 2, "issueDate": issue, "nextUpdate": nxt,
          "tcbEvaluationDataNumber": 17, "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
          "attributes": "11000000000000000000000000000000",
          "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000", "mrsigner": QE_MRSIGNER.hex().upper(),
          "isvprodid": 1,
          "tcbLevels": [{"tcb": {"isvsvn": 8}, "tcbDate": "2025-01-01T00:00:00Z", "tcbStatus": "UpToDate"},
                        {"tcb": {"isvsvn": 6}, "tcbDate": "2024-01-01T00:00:00Z", "tcbStatus": "OutOfDate",
                         "advisoryIDs": ["INTEL-SA-00003"]}]}
    (col / "tcb_info.json").write_bytes(signed_body(tcb_k, "tcbInfo", ti))
    (col / "qe_identity.json").write_bytes(signed_body(tcb_k, "enclaveIdentity", qi))
    (col / "tcb_info_issuer_chain.pem").write_bytes(pem(tcb) + pem(root))
    (col / "qe_identity_issuer_chain.pem").write_bytes(pem(tcb) + pem(root))
    (col / "pck_crl_issuer_chain.pem").write_bytes(pem(ca) + pem(root))
    (col / "pck_crl.der").write_bytes(crl("MSE Test PCK Platform CA", ca_k, [3] if revoke_leaf else []))
    (col / "root_ca_crl.der").write_bytes(crl("MSE Test Root CA", root_k, [2] if revoke_ca else []))

    # QE report bound to the attestation key
    qe_auth = bytes(range(32))
    att_pub = raw_pub(att_k)
    qe_rd = hashlib.sha256(att_pub + qe_auth).digest() + b"\0" * 32
    qe_rep = report(b"\x42" * 32, qe_mrsigner, bytes([0x11]) + b"\0" * 15, 1, qe_svn, qe_rd)
    qe_sig = raw_sig(pck_k, qe_rep)
    chain = pem(pck) + pem(ca) + pem(root) + b"\0"
    attributes = bytes([0x04 | (0x02 if debug else 0)]) + b"\0" * 7 + bytes([0x03]) + b"\0" * 7
    body = report(b"\xaa" * 32, b"\xbb" * 32, attributes, 7, 3, b"\xcc" * 64)
    header = struct.pack("<HHIHH", version, 2, 0, 8, 11) + INTEL_QE_VENDOR + b"\0" * 20
    assert len(header) == 48
    isv_sig = raw_sig(att_k, header + body)
    qe_part = (qe_rep + qe_sig + struct.pack("<H", len(qe_auth)) + qe_auth
               + struct.pack("<HI", 5, len(chain)) + chain)
    if version == 3:
        sig_data = isv_sig + att_pub + qe_part
    else:
        sig_data = isv_sig + att_pub + struct.pack("<HI", 6, len(qe_part)) + qe_part
    (d / "quote.bin").write_bytes(header + body + struct.pack("<I", len(sig_data)) + sig_data)
    return d


def verify(d, *extra, sim=True):
    args = [MSE, "verify", "--quote", d / "quote.bin", "--collateral", d / "col", "--now", NOW_TXT,
            "--json"]
    if sim:
        args += ["--allow-simulation", "--sim-root", d / "root.der"]
    p = subprocess.run([str(a) for a in args + list(extra)], capture_output=True, text=True,
                       timeout=60)
    return p, json.loads(p.stdout)


@pytest.mark.parametrize("version", [3, 4])
def test_simulation_quote_verifies(tmp_path, version):
    d = build(tmp_path / "q", version=version)
    p, out = verify(d, "--mrenclave", "aa" * 32, "--mrsigner", "bb" * 32, "--isvprodid", "7",
                    "--min-isvsvn", "3")
    assert p.returncode == 0, p.stdout + p.stderr
    assert out["ok"] and out["simulation"] and out["quote_version"] == version
    assert out["tcb_status"] == "UpToDate" and out["advisories"] == []
    assert out["fmspc"] == FMSPC.hex() and out["report_data"] == "cc" * 64
    assert "SIMULATION" in p.stderr and "not confidential" in out["warning"]
    # text output says it too
    t = subprocess.run([MSE, "verify", "--quote", str(d / "quote.bin"), "--collateral", str(d / "col"),
                        "--now", NOW_TXT, "--allow-simulation", "--sim-root", str(d / "root.der")],
                       capture_output=True, text=True)
    assert t.returncode == 0 and t.stdout.startswith("SIMULATION — not confidential")
    # wrong expectations
    p, out = verify(d, "--min-isvsvn", "4")
    assert p.returncode == 1 and out["error"]["step"] == "measurement" and out["error"]["field"] == "isvsvn"


def test_simulation_root_needs_the_flag(tmp_path):
    d = build(tmp_path / "q")
    p, out = verify(d, sim=False)
    assert p.returncode == 1 and out["error"]["step"] == "pck-chain"
    assert "root CA is not trusted" in out["error"]["message"]
    # another simulation root is not ours
    other = build(tmp_path / "other")
    p, out = verify(d, "--allow-simulation", "--sim-root", other / "root.der", sim=False)
    assert p.returncode == 1 and out["error"]["step"] == "pck-chain"


def test_debug_enclave_refused(tmp_path):
    p, out = verify(build(tmp_path / "q", debug=True), "--accept-tcb-status", "OutOfDate")
    assert p.returncode == 1 and out["error"]["step"] == "enclave"
    assert "debug" in out["error"]["message"]


def test_revoked_pck_leaf_and_ca(tmp_path):
    p, out = verify(build(tmp_path / "a", revoke_leaf=True))
    assert p.returncode == 1 and out["error"]["step"] == "crl"
    assert "PCK Certificate\" is revoked" in out["error"]["message"]
    p, out = verify(build(tmp_path / "b", revoke_ca=True))
    assert p.returncode == 1 and out["error"]["step"] == "crl"
    assert "PCK Platform CA\" is revoked" in out["error"]["message"]


def test_tcb_levels(tmp_path):
    # between the two levels: OutOfDate with its advisories, refused then accepted
    d = build(tmp_path / "a", pck_comps=[3] * 16)
    p, out = verify(d)
    assert p.returncode == 1 and out["error"]["step"] == "tcb-status"
    assert out["tcb_status"] == "OutOfDate" and out["advisories"] == ["INTEL-SA-00001", "INTEL-SA-00002"]
    p, out = verify(d, "--accept-tcb-status", "OutOfDate")
    assert p.returncode == 0 and out["platform_tcb_status"] == "OutOfDate"
    # below every level
    p, out = verify(build(tmp_path / "b", pck_comps=[1] * 16))
    assert p.returncode == 1 and out["error"]["step"] == "tcb-level"
    assert "TCB level not supported" in out["error"]["message"]
    # one component lower than UpToDate's: the next level
    comps = [5] * 16
    comps[7] = 4
    p, out = verify(build(tmp_path / "c", pck_comps=comps), "--accept-tcb-status", "OutOfDate")
    assert p.returncode == 0 and out["tcb_status"] == "OutOfDate"


def test_qe_identity(tmp_path):
    p, out = verify(build(tmp_path / "a", qe_mrsigner=b"\x01" * 32))
    assert p.returncode == 1 and out["error"]["step"] == "qe-identity"
    assert out["error"]["field"] == "qe_report.mrsigner"
    # QE older than its UpToDate level: OutOfDate converges the platform's UpToDate
    p, out = verify(build(tmp_path / "b", qe_svn=7), "--accept-tcb-status", "OutOfDate")
    assert p.returncode == 0
    assert out["qe_tcb_status"] == "OutOfDate" and out["tcb_status"] == "OutOfDate"
    assert out["advisories"] == ["INTEL-SA-00003"]
    # older than every QE level: Revoked
    p, out = verify(build(tmp_path / "c", qe_svn=5), "--accept-tcb-status", "OutOfDate")
    assert p.returncode == 1 and out["error"]["step"] == "tcb-status" and out["tcb_status"] == "Revoked"
