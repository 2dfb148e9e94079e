#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""verify_ref.py -- a reference verifier for Intel DCAP quotes (SGX v3, v4, v5;
TDX v4 and v5 with TD report 1.0 and 1.5), in Python with python3-cryptography,
written independently of the C verifier so that the two can be compared, and
used as peer (c) of the verify benchmark.

It performs the checks of Intel's Quote Verification Library
(sgx_qv_verify_quote / QVL's "Intel SGX ECDSA QuoteLibReference DCAP API"):

  quote      header (v3, ECDSA-256, SGX, Intel QE vendor id), bounded parse
  pck        PCK chain from certification data type 5, root pinned by the
             SHA-256 of its DER, every signature and validity window
  crl        root CA CRL (revokes the intermediate and the TCB signing cert),
             PCK CRL (revokes the PCK leaf); CRL signatures and dates
  signature  quote signature by the attestation key over header + body,
             QE report signature by the PCK key
  binding    QE report_data == SHA-256(attestation key || QE auth data) || 0*32
  collateral TCB info and QE identity signatures over the exact bytes of the
             tcbInfo / enclaveIdentity object text, TCB signing chain, dates
  tcb        FMSPC and PCE-ID match, TCB level from the PCK's CPUSVN
             components and PCESVN, QE identity match and QE TCB level,
             status convergence (QVL convergeTcbStatusWithQeTcbStatus),
             advisory IDs (union)
  tdx        TCB info v3 "TDX" and QE identity "TD_QE" for TDX quotes; the TDX
             module (tdxModule for major version 0, else tdxModuleIdentities
             "TDX_%02X"): MRSIGNERSEAM, masked SEAM attributes, its TCB level;
             TDX TCB level (SGX components, PCESVN, then TEE_TCB_SVN, bytes 0-1
             skipped when the major version is non-zero), module status merged,
             TD relaunch for TD report 1.5 (QVL TDRelaunchCheck), QE merged;
             TD policy: debug, SEPT_VE_DISABLE and MRSERVICETD refused unless
             allowed (--allow-debug-td, --allow-sept-ve, --allow-service-td)

Usage:
  verify_ref.py --quote quote.bin --collateral DIR [--now TIME] [options]
  verify_ref.py --collateral DIR            (reads DIR/quote.bin)
  verify_ref.py --evidence evidence.json    (MSE's evidence file)
  verify_ref.py --quote FILE --quote-only   (no collateral: quote, PCK chain, QE report)
Options:
  --now TIME             RFC 3339 instant to verify at (default: now)
  --accept-expired       collateral past its nextUpdate is reported, not fatal
  --allow-missing-crl    missing CRL files are reported, not fatal
  --allow-debug-td, --allow-sept-ve, --allow-service-td   TD policy (TDX)
  --bench N              verify N times and report quotes per second
Prints one JSON object; exit 0 when every check passed, 1 when one failed
("step" and "error" say which), 2 on usage errors.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import struct
import sys
import time

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

INTEL_ROOT_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
SGX_EXT_OID = "1.2.840.113741.1.13.1"
RATLS_QUOTE_OID = "1.2.840.113741.1337.6"
HEADER_LEN, BODY_LEN = 48, 384
TD10_LEN, TD15_LEN = 584, 648
TEE_SGX, TEE_TDX = 0x00, 0x81


class VerifyError(Exception):
    def __init__(self, step, msg):
        super().__init__(msg)
        self.step = step


def fail(step, msg):
    raise VerifyError(step, msg)


def parse_time(s):
    s = s.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    t = datetime.datetime.fromisoformat(s)
    if t.tzinfo is None:
        raise ValueError("no time zone")
    return t.astimezone(datetime.timezone.utc).replace(tzinfo=None)


# ---- the quote (Intel SGX ECDSA QuoteLibReference DCAP API, "Quote Format") ----

class Reader:
    def __init__(self, data):
        self.d, self.o = data, 0

    def take(self, n, what):
        if n < 0 or self.o + n > len(self.d):
            fail("quote", f"truncated: {what} needs {n} bytes at offset {self.o}, "
                          f"{len(self.d) - self.o} left")
        b = self.d[self.o:self.o + n]
        self.o += n
        return b

    def u16(self, what):
        return struct.unpack("<H", self.take(2, what))[0]

    def u32(self, what):
        return struct.unpack("<I", self.take(4, what))[0]


def parse_report(b):
    """SGX REPORT body (384 bytes)."""
    return {
        "cpusvn": b[0:16], "miscselect": struct.unpack("<I", b[16:20])[0],
        "attributes": b[48:64], "mrenclave": b[64:96], "mrsigner": b[128:160],
        "isvprodid": struct.unpack("<H", b[256:258])[0],
        "isvsvn": struct.unpack("<H", b[258:260])[0], "report_data": b[320:384],
        "raw": b,
    }


def parse_td(b):
    """TD report 1.0 (584 bytes) or 1.5 (648 bytes)."""
    td = {
        "tee_tcb_svn": b[0:16], "mrseam": b[16:64], "mrsignerseam": b[64:112],
        "seam_attributes": b[112:120], "td_attributes": b[120:128], "xfam": b[128:136],
        "mrtd": b[136:184], "mrconfigid": b[184:232], "mrowner": b[232:280],
        "mrownerconfig": b[280:328], "rtmr": [b[328 + 48 * i:376 + 48 * i] for i in range(4)],
        "report_data": b[520:584], "raw": b,
    }
    if len(b) == TD15_LEN:
        td["tee_tcb_svn2"] = b[584:600]
        td["mrservicetd"] = b[600:648]
    return td


def parse_qe_part(sig, q):
    q["qe_report"] = parse_report(sig.take(BODY_LEN, "QE report"))
    q["qe_report_sig"] = sig.take(64, "QE report signature")
    q["qe_auth"] = sig.take(sig.u16("QE auth data size"), "QE auth data")
    cert_type = sig.u16("certification data type")
    cert_data = sig.take(sig.u32("certification data size"), "certification data")
    if sig.o != len(sig.d):
        fail("quote", f"{len(sig.d) - sig.o} bytes after the certification data inside "
                      "the signature data")
    if cert_type != 5:
        fail("quote", f"certification data type: expected 5 (PCK chain), got {cert_type}: "
                      "no PCK chain in the quote, cannot be verified offline")
    q["pck_chain_pem"] = cert_data


def parse_quote(data, strict=False):
    r = Reader(data)
    header = r.take(HEADER_LEN, "header")
    version, key_type, tee_type = struct.unpack("<HHI", header[0:8])
    if version not in (3, 4, 5):
        fail("quote", f"version: expected 3, 4 or 5, got {version}")
    if version == 3:
        tee_type = TEE_SGX  # reserved in v3
    if tee_type not in (TEE_SGX, TEE_TDX):
        fail("quote", f"tee_type: expected 0 (SGX) or 0x81 (TDX), got {tee_type:#x}")
    if key_type != 2:
        fail("quote", f"attestation key type: expected 2 (ECDSA-256-with-P-256), got {key_type}")
    if header[12:28] != INTEL_QE_VENDOR_ID:
        fail("quote", f"QE vendor id: expected {INTEL_QE_VENDOR_ID.hex()}, got {header[12:28].hex()}")
    blen = TD10_LEN if tee_type == TEE_TDX else BODY_LEN
    body_type = 2 if tee_type == TEE_TDX else 1
    if version == 5:
        body_type = r.u16("body type")
        size = r.u32("body size")
        want = {1: BODY_LEN, 2: TD10_LEN, 3: TD15_LEN}.get(body_type)
        if want is None or (body_type == 1) != (tee_type == TEE_SGX):
            fail("quote", f"body type {body_type} for tee_type {tee_type:#x}")
        if size != want:
            fail("quote", f"body size: expected {want}, got {size}")
        blen = want
    body = r.take(blen, "report body")
    signed = data[:r.o]
    sig_len = r.u32("signature data length")
    sig = Reader(r.take(sig_len, "signature data"))
    q = {
        "version": version, "tee": "TDX" if tee_type == TEE_TDX else "SGX",
        "body_type": body_type, "header": header, "signed": signed,
        "signature": sig.take(64, "quote signature"),
        "attest_key": sig.take(64, "attestation key"),
    }
    if tee_type == TEE_TDX:
        q["td"] = parse_td(body)
    else:
        q["body"] = parse_report(body)
    if version == 3:
        parse_qe_part(sig, q)
    else:
        ctype = sig.u16("certification data type")
        if ctype != 6:
            fail("quote", f"certification data type: expected 6 (QE report), got {ctype}")
        inner = Reader(sig.take(sig.u32("QE report certification data size"),
                                "QE report certification data"))
        parse_qe_part(inner, q)
        if sig.o != len(sig.d):
            fail("quote", "bytes after the QE report certification data")
    q["trailing"] = len(data) - r.o
    if strict and q["trailing"]:
        fail("quote", f"{q['trailing']} trailing bytes (strict)")
    return q


# ---- X.509 helpers -----------------------------------------------------------

def load_pem_chain(pem, what):
    certs = []
    marker = b"-----END CERTIFICATE-----"
    rest = pem
    while b"-----BEGIN CERTIFICATE-----" in rest:
        end = rest.find(marker)
        if end < 0:
            fail("pck" if what == "PCK chain" else "collateral", f"{what}: truncated PEM")
        block = rest[rest.find(b"-----BEGIN CERTIFICATE-----"):end + len(marker)]
        try:
            certs.append(x509.load_pem_x509_certificate(block))
        except ValueError as e:
            fail("pck" if what == "PCK chain" else "collateral", f"{what}: bad certificate: {e}")
        rest = rest[end + len(marker):]
    return certs


def ecdsa_verify(pub, sig_der, data):
    try:
        pub.verify(sig_der, data, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def raw_sig_to_der(raw):
    if len(raw) != 64:
        return None
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def raw_pubkey(raw64):
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + raw64)
    except ValueError:
        fail("signature", "quote: ECDSA attestation key is not a point of P-256")


def check_issued(cert, issuer, step, what):
    if cert.issuer != issuer.subject:
        fail(step, f"{what}: issuer {cert.issuer.rfc4514_string()} is not "
                   f"{issuer.subject.rfc4514_string()}")
    try:
        issuer.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                                   ec.ECDSA(cert.signature_hash_algorithm))
    except (InvalidSignature, TypeError, AttributeError):
        fail(step, f"{what}: signature by {issuer.subject.rfc4514_string()} does not verify")


def check_validity(cert, now, step, what):
    if now < cert.not_valid_before:
        fail(step, f"{what}: not yet valid (notBefore {cert.not_valid_before}Z, now {now}Z)")
    if now > cert.not_valid_after:
        fail(step, f"{what}: expired (notAfter {cert.not_valid_after}Z, now {now}Z)")


# --sim-root: the mse-c simulation root is trusted too (its certificates' names differ).
SIM = {"root": None}
SIM_NAMES = {"tcb": "mse-c Simulated SGX TCB Signing", "ca": "mse-c Simulated SGX PCK Platform CA"}


def check_root(cert, step, what):
    h = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    if h != INTEL_ROOT_SHA256 and h != SIM["root"]:
        fail(step, f"{what}: root SHA-256 expected {INTEL_ROOT_SHA256}, got {h}")


def cn(name):
    v = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return v[0].value if v else ""


# ---- DER for the PCK SGX extension (Intel "PCK Certificate and CRL Profile") ----

def der_items(b):
    out, o = [], 0
    while o < len(b):
        if o + 2 > len(b):
            fail("pck", "SGX extension: truncated DER")
        tag, ln = b[o], b[o + 1]
        o += 2
        if ln & 0x80:
            n = ln & 0x7F
            if n == 0 or n > 4 or o + n > len(b):
                fail("pck", "SGX extension: bad DER length")
            ln = int.from_bytes(b[o:o + n], "big")
            o += n
        if o + ln > len(b):
            fail("pck", "SGX extension: DER value past the end")
        out.append((tag, b[o:o + ln]))
        o += ln
    return out


def der_oid(v):
    if not v:
        fail("pck", "SGX extension: empty OID")
    parts = [v[0] // 40, v[0] % 40]
    n = 0
    for c in v[1:]:
        n = (n << 7) | (c & 0x7F)
        if not c & 0x80:
            parts.append(n)
            n = 0
    return ".".join(map(str, parts))


def der_int(v):
    return int.from_bytes(v, "big", signed=True)


def parse_sgx_ext(cert):
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXT_OID))
    except x509.ExtensionNotFound:
        fail("pck", "PCK certificate has no SGX extension")
    top = der_items(ext.value.value)
    if len(top) != 1 or top[0][0] != 0x30:
        fail("pck", "SGX extension: expected one SEQUENCE")
    out = {}
    for tag, item in der_items(top[0][1]):
        kv = der_items(item)
        if tag != 0x30 or len(kv) != 2 or kv[0][0] != 0x06:
            fail("pck", "SGX extension: expected SEQUENCE { OID, value }")
        oid, (vtag, val) = der_oid(kv[0][1]), kv[1]
        sub = oid[len(SGX_EXT_OID) + 1:] if oid.startswith(SGX_EXT_OID + ".") else None
        if sub == "1":
            out["ppid"] = val
        elif sub == "2":
            comps, pcesvn, cpusvn = [None] * 16, None, None
            for t2, it2 in der_items(val):
                kv2 = der_items(it2)
                o2 = der_oid(kv2[0][1])
                idx = int(o2.rsplit(".", 1)[1])
                if 1 <= idx <= 16:
                    comps[idx - 1] = der_int(kv2[1][1])
                elif idx == 17:
                    pcesvn = der_int(kv2[1][1])
                elif idx == 18:
                    cpusvn = kv2[1][1]
            if None in comps or pcesvn is None:
                fail("pck", "SGX extension: TCB lacks a component SVN or the PCESVN")
            out["tcb_comps"], out["pcesvn"], out["cpusvn"] = comps, pcesvn, cpusvn
        elif sub == "3":
            out["pceid"] = val
        elif sub == "4":
            out["fmspc"] = val
        elif sub == "5":
            out["sgx_type"] = der_int(val)
    for k in ("fmspc", "pceid", "tcb_comps"):
        if k not in out:
            fail("pck", f"SGX extension: no {k}")
    if len(out["fmspc"]) != 6 or len(out["pceid"]) != 2:
        fail("pck", "SGX extension: FMSPC must be 6 bytes and PCE-ID 2")
    return out


# ---- signed JSON collateral ------------------------------------------------------

def json_spans(text):
    """Top-level members of a JSON object with the exact text span of each value."""
    dec = json.JSONDecoder()
    ws = " \t\r\n"
    i = 0

    def skip(j):
        while j < len(text) and text[j] in ws:
            j += 1
        return j

    i = skip(i)
    if i >= len(text) or text[i] != "{":
        raise ValueError("not a JSON object")
    i = skip(i + 1)
    spans = {}
    if i < len(text) and text[i] == "}":
        i += 1
    else:
        while True:
            key, i = dec.raw_decode(text, i)
            if not isinstance(key, str):
                raise ValueError("key is not a string")
            i = skip(i)
            if i >= len(text) or text[i] != ":":
                raise ValueError("expected ':'")
            i = skip(i + 1)
            val, end = dec.raw_decode(text, i)
            if key in spans:
                raise ValueError(f"duplicate key {key!r}")
            spans[key] = (val, text[i:end])
            i = skip(end)
            if i < len(text) and text[i] == ",":
                i = skip(i + 1)
                continue
            if i < len(text) and text[i] == "}":
                i += 1
                break
            raise ValueError("expected ',' or '}'")
    if skip(i) != len(text):
        raise ValueError("text after the object")
    return spans


def signed_json(body, key, what, chain, root_crl, now, soft):
    """Checks the signature over the exact bytes of body[key]; returns the object."""
    try:
        spans = json_spans(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        fail("collateral", f"{what}: {e}")
    if key not in spans or "signature" not in spans:
        fail("collateral", f"{what}: expected {{\"{key}\":{{...}},\"signature\":\"...\"}}")
    obj, text = spans[key]
    sig_hex = spans["signature"][0]
    if not isinstance(obj, dict) or not isinstance(sig_hex, str):
        fail("collateral", f"{what}: {key} must be an object and signature a string")
    try:
        sig = raw_sig_to_der(bytes.fromhex(sig_hex))
    except ValueError:
        sig = None
    if sig is None:
        fail("collateral", f"{what}: signature is not 64 bytes of hex")
    if not chain:
        fail("collateral", f"{what}: no issuer chain")
    signer = chain[0]
    check_root(chain[-1], "collateral", f"{what} issuer chain")
    for i in range(len(chain) - 1):
        check_issued(chain[i], chain[i + 1], "collateral", f"{what} issuer chain")
    check_issued(chain[-1], chain[-1], "collateral", f"{what} issuer chain root")
    for c in chain:
        check_validity(c, now, "collateral", f"{what} issuer {cn(c.subject)}")
    if cn(signer.subject) != "Intel SGX TCB Signing" and not (
            SIM["root"] and cn(signer.subject) == SIM_NAMES["tcb"]):
        fail("collateral", f"{what} signature: signer is {cn(signer.subject)!r}, "
                           "expected 'Intel SGX TCB Signing'")
    if root_crl is not None and root_crl.get_revoked_certificate_by_serial_number(
            signer.serial_number) is not None:
        fail("crl", f"{what}: TCB signing certificate revoked by the root CA CRL")
    if not ecdsa_verify(signer.public_key(), sig, text.encode("utf-8")):
        fail("collateral", f"{what} signature: does not verify over the {key} text")
    issue = parse_time(obj["issueDate"])
    nxt = parse_time(obj["nextUpdate"])
    if now < issue:
        fail("collateral", f"{what}: not yet valid (issueDate {obj['issueDate']}, now {now}Z)")
    if now > nxt:
        soft.append(f"{what} expired (nextUpdate {obj['nextUpdate']})")
    return obj


def load_crl(der, issuer, now, soft, what, step="crl"):
    try:
        if der.lstrip().startswith(b"-----BEGIN"):
            crl = x509.load_pem_x509_crl(der)
        else:
            crl = x509.load_der_x509_crl(der)
    except ValueError as e:
        fail(step, f"{what}: does not parse: {e}")
    if crl.issuer != issuer.subject:
        fail(step, f"{what}: issued by {crl.issuer.rfc4514_string()}, expected "
                   f"{issuer.subject.rfc4514_string()}")
    if not crl.is_signature_valid(issuer.public_key()):
        fail(step, f"{what}: signature does not verify")
    if now < crl.last_update:
        fail(step, f"{what}: not yet valid (thisUpdate {crl.last_update}Z)")
    if crl.next_update is None or now > crl.next_update:
        soft.append(f"{what} expired (nextUpdate {crl.next_update}Z)")
    return crl


# ---- TCB status ---------------------------------------------------------------

def tcb_level(tcb_info, ext):
    v = tcb_info.get("version")
    for level in tcb_info.get("tcbLevels", []):
        tcb = level["tcb"]
        if v == 3 or "sgxtcbcomponents" in tcb:
            svns = [c["svn"] for c in tcb["sgxtcbcomponents"]]
        else:
            svns = [tcb[f"sgxtcbcomp{i:02d}svn"] for i in range(1, 17)]
        if len(svns) != 16:
            fail("tcb", "TCB level without 16 SGX components")
        if all(ext["tcb_comps"][i] >= svns[i] for i in range(16)) and \
                ext["pcesvn"] >= tcb["pcesvn"]:
            return level
    fail("tcb", "TCB level not supported: no TCB level of the TCB info matches the "
                f"PCK's components {ext['tcb_comps']} and PCESVN {ext['pcesvn']}")


def converge(qe_status, platform_status):
    """QVL's convergeTcbStatusWithQeTcbStatus."""
    if qe_status == "OutOfDate":
        if platform_status in ("UpToDate", "SWHardeningNeeded"):
            return "OutOfDate"
        if platform_status in ("ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"):
            return "OutOfDateConfigurationNeeded"
    if qe_status == "Revoked":
        return "Revoked"
    return platform_status


# ---- TDX (Intel QVL: TcbLevelCheck, TdxModuleCheck, TDRelaunchCheck) -------------

def comps(level, key):
    c = [x["svn"] for x in level["tcb"][key]]
    if len(c) != 16:
        fail("tcb", f"TCB level without 16 {key}")
    return c


def find_module(tcb_info, version):
    want = f"TDX_{version:02X}"
    for m in tcb_info.get("tdxModuleIdentities") or []:
        if m["id"].upper() == want:
            return m
    return None


def converge_module(tdx_status, module_status):
    if module_status == "OutOfDate":
        if tdx_status in ("UpToDate", "SWHardeningNeeded"):
            return "OutOfDate"
        if tdx_status in ("ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"):
            return "OutOfDateConfigurationNeeded"
    if module_status == "Revoked":
        return "Revoked"
    return tdx_status


def config_needed(s):
    return s in ("ConfigurationNeeded", "OutOfDateConfigurationNeeded",
                 "ConfigurationAndSWHardeningNeeded", "TDRelaunchAdvisedConfigurationNeeded")


def tdx_tcb(tcb_info, ext, td, qe_status):
    """Returns (tdx status before the QE merge, sgx status, module status, advisories)."""
    svn = td["tee_tcb_svn"]
    version, isvsvn = svn[1], svn[0]
    # the module: identity, then its TCB level
    if version == 0:
        mod = tcb_info.get("tdxModule")
        if mod is None:
            fail("tdx_module", "TCB info has no tdxModule")
    else:
        mod = find_module(tcb_info, version)
        if mod is None:
            fail("tdx_module", f"no TDX module identity TDX_{version:02X}")
    if bytes.fromhex(mod["mrsigner"]) != td["mrsignerseam"]:
        fail("tdx_module", "MRSIGNERSEAM does not match the TDX module identity")
    mask = bytes.fromhex(mod["attributesMask"])
    if bytes(a & m for a, m in zip(td["seam_attributes"], mask)) != bytes.fromhex(mod["attributes"]):
        fail("tdx_module", "SEAM attributes (masked) do not match the TDX module identity")
    module_status, module_adv = "UpToDate", []
    if version != 0:
        lv = next((l for l in mod["tcbLevels"] if isvsvn >= l["tcb"]["isvsvn"]), None)
        if lv is None:
            fail("tdx_module", f"TDX module TCB level not supported (SVN {isvsvn})")
        module_status, module_adv = lv["tcbStatus"], lv.get("advisoryIDs", [])
    # SGX then TDX level
    sgx_level = tdx_level = None
    start = 2 if version else 0
    for lv in tcb_info["tcbLevels"]:
        sc = comps(lv, "sgxtcbcomponents")
        if not (all(ext["tcb_comps"][i] >= sc[i] for i in range(16)) and
                ext["pcesvn"] >= lv["tcb"]["pcesvn"]):
            continue
        if sgx_level is None:
            sgx_level = lv
        tc = comps(lv, "tdxtcbcomponents")
        if all(svn[i] >= tc[i] for i in range(start, 16)):
            tdx_level = lv
            break
    if tdx_level is None:
        fail("tcb", "TCB level not supported: no TCB level matches the PCK's components, "
                    "PCESVN and the TD's TEE_TCB_SVN")
    sgx_status = sgx_level["tcbStatus"]
    status = converge_module(tdx_level["tcbStatus"], module_status)
    if "tee_tcb_svn2" in td and status != "Revoked":
        status = relaunch(tcb_info, td["tee_tcb_svn2"], sgx_status, status, module_status,
                          qe_status)
    return status, sgx_status, tdx_level["tcbStatus"], module_status, \
        tdx_level.get("advisoryIDs", []) + module_adv


def relaunch(tcb_info, svn2, sgx_status, tdx_status, module_status, qe_status):
    """QVL TDRelaunchCheck: would the TD be up to date after a relaunch?"""
    if qe_status in ("OutOfDate", "Revoked"):
        return tdx_status
    if sgx_status not in ("UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
                          "ConfigurationAndSWHardeningNeeded"):
        return tdx_status
    if tdx_status not in ("OutOfDate", "OutOfDateConfigurationNeeded") or \
            module_status != "OutOfDate":
        return tdx_status
    latest = comps(tcb_info["tcbLevels"][0], "tdxtcbcomponents")
    if svn2[1] == 0:
        reach = svn2[0] >= latest[0] and svn2[2] >= latest[2]
    else:
        m = find_module(tcb_info, svn2[1])
        if m is None:
            fail("tdx_module", f"no TDX module identity TDX_{svn2[1]:02X} for the relaunch")
        reach = svn2[0] >= m["tcbLevels"][0]["tcb"]["isvsvn"] and svn2[2] >= latest[2]
    if not reach:
        return tdx_status
    if config_needed(sgx_status) or config_needed(tdx_status):
        return "TDRelaunchAdvisedConfigurationNeeded"
    return "TDRelaunchAdvised"


def td_policy(td, allow_debug, allow_sept_ve, allow_service_td):
    attr = int.from_bytes(td["td_attributes"], "little")
    if attr & 1 and not allow_debug:
        fail("td_policy", "debug TD")
    if not attr >> 28 & 1 and not allow_sept_ve:
        fail("td_policy", "SEPT_VE_DISABLE clear")
    if any(td.get("mrservicetd", b"")) and not allow_service_td:
        fail("td_policy", "bound to a service TD (MRSERVICETD non-zero)")


def td_facts(td):
    out = {k: td[k].hex() for k in ("tee_tcb_svn", "mrseam", "mrsignerseam", "seam_attributes",
                                   "td_attributes", "xfam", "mrtd", "mrconfigid", "mrowner",
                                   "mrownerconfig", "report_data")}
    out["rtmr"] = [r.hex() for r in td["rtmr"]]
    for k in ("tee_tcb_svn2", "mrservicetd"):
        if k in td:
            out[k] = td[k].hex()
    return out


# ---- inputs ----------------------------------------------------------------------

def read_opt(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def inputs_from_dir(quote_path, d):
    def need(name):
        b = read_opt(os.path.join(d, name))
        if b is None:
            fail("collateral", f"{os.path.join(d, name)}: missing")
        return b
    return {
        "quote": need_file(quote_path),
        "tcb_info": need("tcb_info.json"),
        "tcb_chain": read_opt(os.path.join(d, "tcb_info_issuer_chain.pem")) or b"",
        "qe_identity": need("qe_identity.json"),
        "qe_chain": read_opt(os.path.join(d, "qe_identity_issuer_chain.pem")) or b"",
        "pck_crl": read_opt(os.path.join(d, "pck_crl.der")),
        "root_crl": read_opt(os.path.join(d, "root_ca_crl.der")),
    }


def need_file(path):
    b = read_opt(path)
    if b is None:
        fail("quote", f"{path}: missing")
    return b


def inputs_from_evidence(path):
    """MSE's evidence.json: tcb_info is base64 of the ASCII hex of the PCCS body."""
    with open(path, "rb") as f:
        ev = json.load(f)
    cert = x509.load_pem_x509_certificate(ev["ratls_certificate"].encode())
    try:
        quote = cert.extensions.get_extension_for_oid(
            x509.ObjectIdentifier(RATLS_QUOTE_OID)).value.value
    except x509.ExtensionNotFound:
        fail("quote", f"RA-TLS certificate has no extension {RATLS_QUOTE_OID}")
    tcb_hex = base64.b64decode(ev["tcb_info"]).decode("ascii").strip()
    tcb_cert = ev["tcb_cert"].encode()
    return {
        "quote": quote,
        "ratls_cert": cert,
        "tcb_info": bytes.fromhex(tcb_hex),
        "qe_identity": base64.b64decode(ev["qe_identity"]),
        # MSE ships only the TCB signing cert; the root is the pinned one, taken
        # from the quote's own PCK chain below.
        "tcb_chain": tcb_cert, "qe_chain": tcb_cert, "chain_needs_root": True,
        "pck_crl": ev["pck_platform_crl"].encode(),
        "root_crl": ev["root_ca_crl"].encode(),
        "signer_pk": ev.get("signer_pk"),
    }


# ---- the verification ---------------------------------------------------------------

def check_quote_signatures(q, leaf):
    if not ecdsa_verify(raw_pubkey(q["attest_key"]), raw_sig_to_der(q["signature"]),
                        q["signed"]):
        fail("signature", "quote: ECDSA signature by the attestation key does not verify")
    if not ecdsa_verify(leaf.public_key(), raw_sig_to_der(q["qe_report_sig"]),
                        q["qe_report"]["raw"]):
        fail("signature", "QE report: ECDSA signature by the PCK key does not verify")
    want = hashlib.sha256(q["attest_key"] + q["qe_auth"]).digest() + bytes(32)
    if q["qe_report"]["report_data"] != want:
        fail("binding", f"QE report_data: expected {want.hex()}, "
                        f"got {q['qe_report']['report_data'].hex()}")


def quote_facts(q, ext, ca):
    if q["tee"] == "TDX":
        return {"tee": "TDX", "version": q["version"], "body_type": q["body_type"],
                "td": td_facts(q["td"]), "debug": bool(q["td"]["td_attributes"][0] & 1),
                "fmspc": ext["fmspc"].hex(), "pce_id": ext["pceid"].hex(), "ca": ca,
                "trailing_bytes": q["trailing"]}
    body = q["body"]
    return {
        "tee": "SGX", "version": q["version"],
        "mrenclave": body["mrenclave"].hex(),
        "mrsigner": body["mrsigner"].hex(),
        "isvprodid": body["isvprodid"],
        "isvsvn": body["isvsvn"],
        "report_data": body["report_data"].hex(),
        "debug": bool(body["attributes"][0] & 0x02),
        "fmspc": ext["fmspc"].hex(),
        "pce_id": ext["pceid"].hex(),
        "ca": ca,
        "trailing_bytes": q["trailing"],
    }


def verify(inp, now, accept_expired=False, allow_missing_crl=False, quote_only=False,
           strict=False, td_allow=(False, False, False)):
    soft = []
    q = parse_quote(inp["quote"], strict)

    # PCK chain: leaf, intermediate (Platform or Processor CA), root.
    chain = load_pem_chain(q["pck_chain_pem"], "PCK chain")
    if len(chain) != 3:
        fail("pck", f"PCK chain: expected 3 certificates, got {len(chain)}")
    leaf, inter, root = chain
    check_root(root, "pck", "PCK chain")
    check_issued(root, root, "pck", "Intel SGX Root CA")
    check_issued(inter, root, "pck", "PCK intermediate CA")
    check_issued(leaf, inter, "pck", "PCK certificate")
    for c, what in ((root, "Intel SGX Root CA"), (inter, "PCK intermediate CA"),
                    (leaf, "PCK certificate")):
        check_validity(c, now, "pck", what)
    ca_cn = cn(inter.subject)
    ca = {"Intel SGX PCK Platform CA": "platform",
          "Intel SGX PCK Processor CA": "processor"}.get(ca_cn)
    if SIM["root"] and ca_cn == SIM_NAMES["ca"]:
        ca = "platform"
    if ca is None:
        fail("pck", f"PCK intermediate CA: unexpected subject CN {ca_cn!r}")
    ext = parse_sgx_ext(leaf)

    if quote_only:
        # No collateral: the quote, its PCK chain to the pinned root, the QE
        # report and the binding only (no CRL, TCB info, QE identity, status).
        check_quote_signatures(q, leaf)
        return dict(quote_facts(q, ext, ca), ok=True, status=None, quote_only=True)

    # CRLs.
    missing = []
    root_crl = pck_crl = None
    if inp.get("root_crl") is None:
        missing.append("root_ca_crl")
    else:
        root_crl = load_crl(inp["root_crl"], root, now, soft, "root CA CRL")
        if root_crl.get_revoked_certificate_by_serial_number(inter.serial_number) is not None:
            fail("crl", "PCK intermediate CA revoked by the root CA CRL")
    if inp.get("pck_crl") is None:
        missing.append("pck_crl")
    else:
        pck_crl = load_crl(inp["pck_crl"], inter, now, soft, "PCK CRL")
        if pck_crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None:
            fail("crl", f"PCK certificate (serial {leaf.serial_number:x}) revoked by the PCK CRL")
    if missing and not allow_missing_crl:
        fail("crl", "missing CRL: " + ", ".join(missing))

    check_quote_signatures(q, leaf)

    # Collateral.
    def chain_of(pem, what):
        certs = load_pem_chain(pem, what)
        if inp.get("chain_needs_root"):
            certs.append(root)
        return certs
    tcb_info = signed_json(inp["tcb_info"], "tcbInfo", "TCB info",
                           chain_of(inp["tcb_chain"], "TCB info issuer chain"),
                           root_crl, now, soft)
    qe_id = signed_json(inp["qe_identity"], "enclaveIdentity", "QE identity",
                        chain_of(inp["qe_chain"], "QE identity issuer chain"),
                        root_crl, now, soft)
    if soft and not accept_expired:
        fail("expired", "collateral expired: " + "; ".join(soft))

    # TCB info against the PCK, for the quote's TEE.
    want_id = "TDX" if q["tee"] == "TDX" else "SGX"
    if tcb_info.get("version") not in (2, 3) or tcb_info.get("id", "SGX") != want_id or \
            (want_id == "TDX" and tcb_info.get("version") != 3):
        fail("tcb", f"TCB info: expected {want_id} TCB info, got id {tcb_info.get('id')} "
                    f"version {tcb_info.get('version')}")
    if tcb_info["fmspc"].lower() != ext["fmspc"].hex():
        fail("tcb", f"FMSPC: PCK has {ext['fmspc'].hex()}, TCB info {tcb_info['fmspc']}")
    if tcb_info["pceId"].lower() != ext["pceid"].hex():
        fail("tcb", f"PCE-ID: PCK has {ext['pceid'].hex()}, TCB info {tcb_info['pceId']}")
    level = tcb_level(tcb_info, ext) if q["tee"] == "SGX" else None

    # QE identity against the QE report.
    qr = q["qe_report"]
    want_qe = "TD_QE" if q["tee"] == "TDX" else "QE"
    if qe_id.get("id", "QE") != want_qe or qe_id.get("version") != 2:
        fail("tcb", f"QE identity: expected {want_qe} v2, got {qe_id.get('id')} "
                    f"{qe_id.get('version')}")
    mask = int(qe_id["miscselectMask"], 16)
    if qr["miscselect"] & mask != int(qe_id["miscselect"], 16) & mask:
        fail("tcb", f"QE MISCSELECT: expected {qe_id['miscselect']} under mask "
                    f"{qe_id['miscselectMask']}, got {qr['miscselect']:08x}")
    amask = bytes.fromhex(qe_id["attributesMask"])
    attrs = bytes.fromhex(qe_id["attributes"])
    if bytes(a & m for a, m in zip(qr["attributes"], amask)) != \
            bytes(a & m for a, m in zip(attrs, amask)):
        fail("tcb", f"QE ATTRIBUTES: expected {qe_id['attributes']} under mask "
                    f"{qe_id['attributesMask']}, got {qr['attributes'].hex()}")
    if qr["mrsigner"].hex() != qe_id["mrsigner"].lower():
        fail("tcb", f"QE MRSIGNER: expected {qe_id['mrsigner'].lower()}, "
                    f"got {qr['mrsigner'].hex()}")
    if qr["isvprodid"] != qe_id["isvprodid"]:
        fail("tcb", f"QE ISVPRODID: expected {qe_id['isvprodid']}, got {qr['isvprodid']}")
    qe_level = None
    for lv in qe_id.get("tcbLevels", []):
        if qr["isvsvn"] >= lv["tcb"]["isvsvn"]:
            qe_level = lv
            break
    if qe_level is None:
        fail("tcb", f"QE TCB level not supported: ISVSVN {qr['isvsvn']}")

    qe_status = qe_level["tcbStatus"]
    if q["tee"] == "TDX":
        platform_status, sgx_status, tdx_level_status, module_status, adv = \
            tdx_tcb(tcb_info, ext, q["td"], qe_status)
        status = converge(qe_status, platform_status)
        advisories = sorted(set(adv) | set(qe_level.get("advisoryIDs", [])))
        td_policy(q["td"], *td_allow)
        return dict(quote_facts(q, ext, ca), ok=True, status=status, advisories=advisories,
                    platform_status=platform_status, qe_status=qe_status,
                    sgx_status=sgx_status, tdx_status=tdx_level_status,
                    module_status=module_status, expired=soft, missing_crls=missing)
    platform_status = level["tcbStatus"]
    status = converge(qe_status, platform_status)
    advisories = sorted(set(level.get("advisoryIDs", [])) | set(qe_level.get("advisoryIDs", [])))

    body = q["body"]
    out = {
        "ok": True,
        "status": status,
        "advisories": advisories,
        "platform_status": platform_status,
        "qe_status": qe_status,
        "mrenclave": body["mrenclave"].hex(),
        "mrsigner": body["mrsigner"].hex(),
        "isvprodid": body["isvprodid"],
        "isvsvn": body["isvsvn"],
        "report_data": body["report_data"].hex(),
        "debug": bool(body["attributes"][0] & 0x02),
        "fmspc": ext["fmspc"].hex(),
        "pce_id": ext["pceid"].hex(),
        "ca": ca,
        "tcb_date": level.get("tcbDate"),
        "trailing_bytes": q["trailing"],
        "expired": soft,
        "missing_crls": missing,
    }
    if "ratls_cert" in inp:
        rc_ = inp["ratls_cert"]
        if not rc_.not_valid_before <= now <= rc_.not_valid_after:
            # Reported like expired collateral (only fatal without --accept-expired).
            soft.append(f"RA-TLS certificate outside its validity ({rc_.not_valid_before}Z .. "
                        f"{rc_.not_valid_after}Z)")
            if not accept_expired:
                fail("expired", "RA-TLS certificate: " + soft[-1])
        pub = inp["ratls_cert"].public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        if hashlib.sha256(pub).digest() != body["report_data"][:32]:
            fail("binding", "RA-TLS: report_data[0:32] is not SHA-256 of the certificate key")
        out["ratls_binding"] = True
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quote")
    ap.add_argument("--collateral")
    ap.add_argument("--evidence")
    ap.add_argument("--now")
    ap.add_argument("--accept-expired", action="store_true")
    ap.add_argument("--allow-missing-crl", action="store_true")
    ap.add_argument("--quote-only", action="store_true")
    ap.add_argument("--bench", type=int, default=0)
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--sim-root", help="also trust this (mse-c simulation) root CA, DER")
    ap.add_argument("--allow-debug-td", action="store_true")
    ap.add_argument("--allow-sept-ve", action="store_true")
    ap.add_argument("--allow-service-td", action="store_true")
    a = ap.parse_args(argv)
    if a.quote_only and a.quote and not a.collateral and not a.evidence:
        pass
    elif bool(a.evidence) == bool(a.collateral):
        ap.print_usage(sys.stderr)
        print("verify_ref.py: give --evidence FILE or --collateral DIR", file=sys.stderr)
        return 2
    if a.sim_root:
        with open(a.sim_root, "rb") as f:
            SIM["root"] = hashlib.sha256(f.read()).hexdigest()
    try:
        now = parse_time(a.now) if a.now else datetime.datetime.utcnow()
    except ValueError:
        print(f"verify_ref.py: bad --now {a.now!r}", file=sys.stderr)
        return 2

    def load():
        if a.quote_only and not a.evidence and not a.collateral:
            return {"quote": need_file(a.quote)}
        if a.evidence:
            return inputs_from_evidence(a.evidence)
        return inputs_from_dir(a.quote or os.path.join(a.collateral, "quote.bin"), a.collateral)

    def once(inp):
        # Everything is parsed again from the bytes each time (quote, PEM chains,
        # CRLs, JSON): a verifier without caches, like the C one's figure (b).
        return verify(inp, now, a.accept_expired, a.allow_missing_crl, a.quote_only, a.strict,
                      (a.allow_debug_td, a.allow_sept_ve, a.allow_service_td))

    try:
        inp = load()
        out = once(inp)
        if a.bench > 0:
            t0 = time.perf_counter()
            for _ in range(a.bench):
                once(inp)
            dt = time.perf_counter() - t0
            out["bench"] = {"iterations": a.bench, "seconds": round(dt, 6),
                            "quotes_per_s": round(a.bench / dt, 1),
                            "ms_per_quote": round(1000 * dt / a.bench, 4)}
        rc = 0
    except VerifyError as e:
        out, rc = {"ok": False, "step": e.step, "error": str(e)}, 1
    except (KeyError, TypeError, ValueError) as e:
        out, rc = {"ok": False, "step": "collateral", "error": f"malformed input: {e!r}"}, 1
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
