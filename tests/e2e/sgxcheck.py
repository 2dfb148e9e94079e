# SPDX-License-Identifier: Apache-2.0
"""Independent checks of SGX quotes, RA-TLS certificates and simulation
collateral, written against Intel's documents (ECDSA Quote Library API,
appendix A; PCK Certificate and CRL Profile; PCS API v4) with
python3-cryptography only. Shared by the e2e tests of the enclave side; it
never calls mse-c code."""
import hashlib
import json
import struct

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

SGX_EXT = "1.2.840.113741.1.13.1"
RATLS_EXT = "1.2.840.113741.1337.6"


def ecdsa_verify_raw(pub, sig64, msg):
    r = int.from_bytes(sig64[:32], "big")
    s = int.from_bytes(sig64[32:], "big")
    pub.verify(utils.encode_dss_signature(r, s), msg, ec.ECDSA(hashes.SHA256()))


def p256_from_xy(xy):
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + xy)


def parse_report_body(b):
    assert len(b) == 384
    return {
        "cpusvn": b[0:16],
        "miscselect": struct.unpack_from("<I", b, 16)[0],
        "attributes": b[48:64],
        "mrenclave": b[64:96],
        "mrsigner": b[128:160],
        "isv_prod_id": struct.unpack_from("<H", b, 256)[0],
        "isv_svn": struct.unpack_from("<H", b, 258)[0],
        "report_data": b[320:384],
    }


def parse_quote(q):
    """Quote v3 (A.4). Returns a dict; raises on any structural problem."""
    version, key_type, _tee, qe_svn, pce_svn = struct.unpack_from("<HHIHH", q, 0)
    assert version == 3, version
    assert key_type == 2, key_type
    header = q[:48]
    body = q[48:432]
    (sig_len,) = struct.unpack_from("<I", q, 432)
    sig = q[436:436 + sig_len]
    assert len(sig) == sig_len
    off = 0
    isv_sig = sig[off:off + 64]; off += 64
    attest_key = sig[off:off + 64]; off += 64
    qe_report = sig[off:off + 384]; off += 384
    qe_sig = sig[off:off + 64]; off += 64
    (auth_len,) = struct.unpack_from("<H", sig, off); off += 2
    auth = sig[off:off + auth_len]; off += auth_len
    cert_type, cert_len = struct.unpack_from("<HI", sig, off); off += 6
    cert_data = sig[off:off + cert_len]; off += cert_len
    assert off == sig_len, (off, sig_len)
    return {
        "header": header, "qe_svn": qe_svn, "pce_svn": pce_svn,
        "body": parse_report_body(body), "signed": q[:432], "isv_sig": isv_sig,
        "attest_key": attest_key, "qe_report_raw": qe_report,
        "qe_report": parse_report_body(qe_report), "qe_sig": qe_sig, "auth": auth,
        "cert_type": cert_type, "cert_data": cert_data, "trailing": q[436 + sig_len:],
    }


def load_pem_chain(data):
    """All certificates of a PEM bundle, in order (python3-cryptography here
    predates load_pem_x509_certificates)."""
    out, end = [], b"-----END CERTIFICATE-----"
    for part in data.split(end)[:-1]:
        start = part.index(b"-----BEGIN CERTIFICATE-----")
        out.append(x509.load_pem_x509_certificate(part[start:] + end + b"\n"))
    return out


def verify_quote_signatures(qd):
    """The three checks of A.4: quote signature by the attestation key, QE
    report signed by the PCK key, QE report binds the attestation key."""
    ecdsa_verify_raw(p256_from_xy(qd["attest_key"]), qd["isv_sig"], qd["signed"])
    assert qd["cert_type"] == 5
    chain = load_pem_chain(qd["cert_data"])
    ecdsa_verify_raw(chain[0].public_key(), qd["qe_sig"], qd["qe_report_raw"])
    h = hashlib.sha256(qd["attest_key"] + qd["auth"]).digest()
    assert qd["qe_report"]["report_data"] == h + b"\0" * 32
    return chain


def verify_chain(chain, root):
    """Each certificate signed by the next, the last by root."""
    certs = list(chain) + [root]
    for c, issuer in zip(certs, certs[1:] + [root]):
        issuer.public_key().verify(c.signature, c.tbs_certificate_bytes,
                                   ec.ECDSA(c.signature_hash_algorithm))
        assert c.issuer == issuer.subject


# --- a minimal DER reader for the SGX extension ---------------------------
def der_read(b, off=0):
    tag = b[off]
    ln = b[off + 1]
    off += 2
    if ln & 0x80:
        n = ln & 0x7F
        ln = int.from_bytes(b[off:off + n], "big")
        off += n
    return tag, b[off:off + ln], off + ln


def der_seq(b):
    out, off = [], 0
    while off < len(b):
        tag, val, off = der_read(b, off)
        out.append((tag, val))
    return out


def der_oid(v):
    arcs, n = [], 0
    first = True
    for byte in v:
        n = (n << 7) | (byte & 0x7F)
        if not byte & 0x80:
            if first:
                arcs += [min(n // 40, 2), n - 40 * min(n // 40, 2)]
                first = False
            else:
                arcs.append(n)
            n = 0
    return ".".join(map(str, arcs))


def sgx_extension(cert):
    """Returns {oid_suffix: value} of the SGX extension, TCB as a dict."""
    ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXT))
    tag, content, _ = der_read(ext.value.value)
    assert tag == 0x30
    out = {}
    for tag, item in der_seq(content):
        assert tag == 0x30
        (t1, oid), (t2, val) = der_seq(item)
        assert t1 == 0x06
        key = der_oid(oid)[len(SGX_EXT) + 1:]
        if key in ("2", "7"):
            sub = {}
            for _, comp in der_seq(val):
                (_, coid), (ct, cval) = der_seq(comp)
                sub[der_oid(coid)[len(SGX_EXT) + 1:]] = (ct, cval)
            out[key] = sub
        else:
            out[key] = (t2, val)
    return out


def verify_signed_json(path, name, signer_cert):
    """PCS v4: the signature covers the exact bytes of the NAME object."""
    raw = open(path, "rb").read()
    prefix = b'{"' + name.encode() + b'":'
    assert raw.startswith(prefix)
    i = raw.rindex(b',"signature":"')
    text = raw[len(prefix):i]
    sig = bytes.fromhex(json.loads(raw)["signature"])
    ecdsa_verify_raw(signer_cert.public_key(), sig, text)
    return json.loads(text)


def mrsigner_of(pem):
    key = serialization.load_pem_public_key(pem)
    n = key.public_numbers().n
    return hashlib.sha256(n.to_bytes(384, "little")).digest()


def ratls_binding(cert):
    """report_data[0:32] as MSE computes it from the certificate key."""
    pt = cert.public_key().public_bytes(serialization.Encoding.X962,
                                        serialization.PublicFormat.UncompressedPoint)
    return hashlib.sha256(pt).digest()
