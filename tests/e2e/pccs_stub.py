# SPDX-License-Identifier: Apache-2.0
"""A small PCCS stub for the tests: serves one collateral set of
../shared/vectors/dcap-quotes under /sgx/certification/v4/ the way Intel's PCS
and PCCS do (issuer chains percent-encoded in response headers), over HTTP or
HTTPS with a throwaway CA, and counts the requests it answers.

    with PccsStub(vectors / "dcap-quotes/sgx3-dcapqvl", ca="processor") as s:
        s.url            # http://127.0.0.1:PORT/sgx/certification/v4/
        s.hits           # {"tcb": 1, "qe/identity": 1, ...}
        s.override["tcb"] = (404, b"", {})

Knobs: headers="v4"|"v3" (issuer-chain header names), crl="der"|"hex",
tls=True (then s.ca_pem is the CA bundle to trust).
"""

import datetime
import ipaddress
import json
import os
import ssl
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/sgx/certification/v4/"


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def make_tls_files(dirname):
    """A CA and a server certificate for 127.0.0.1 (python3-cryptography)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mse test PCCS CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {k: os.path.join(dirname, k + ".pem") for k in ("ca", "cert", "key")}
    with open(paths["ca"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["cert"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


class PccsStub:
    def __init__(self, set_dir, ca, headers="v4", crl="der", tls=False, prefix=PREFIX):
        self.set_dir = str(set_dir)
        self.ca = ca
        self.headers = headers
        self.crl = crl
        self.tls = tls
        self.prefix = prefix
        self.hits = {}
        self.override = {}  # route -> (status, body bytes, headers dict) or callable
        self.delay = {}     # route -> seconds to sleep before answering
        self.tcb = _read(os.path.join(self.set_dir, "tcb_info.json"))
        self.fmspc = json.loads(self.tcb)["tcbInfo"]["fmspc"]
        self._tmp = tempfile.TemporaryDirectory()
        self.ca_pem = None

    def file(self, name):
        return _read(os.path.join(self.set_dir, name))

    def chain_header(self, name):
        # Intel percent-encodes the whole PEM text (every reserved character).
        return urllib.parse.quote(self.file(name).decode(), safe="")

    def crl_body(self, name):
        der = self.file(name)
        return der if self.crl == "der" else der.hex().encode()

    def answer(self, route, query):
        """(status, body, headers) for a route under the prefix."""
        if self.headers == "v4":
            tcb_h, qe_h = "TCB-Info-Issuer-Chain", "SGX-Enclave-Identity-Issuer-Chain"
        else:
            tcb_h, qe_h = "SGX-TCB-Info-Issuer-Chain", "Enclave-Identity-Issuer-Chain"
        if route == "tcb":
            if query.get("fmspc", [""])[0].lower() != self.fmspc.lower():
                return 404, b"", {}
            return 200, self.tcb, {tcb_h: self.chain_header("tcb_info_issuer_chain.pem"),
                                   "Content-Type": "application/json"}
        if route == "qe/identity":
            return 200, self.file("qe_identity.json"), {
                qe_h: self.chain_header("qe_identity_issuer_chain.pem"),
                "Content-Type": "application/json"}
        if route == "pckcrl":
            if query.get("ca", [""])[0] != self.ca:
                return 404, b"", {}
            return 200, self.crl_body("pck_crl.der"), {
                "SGX-PCK-CRL-Issuer-Chain": self.chain_header("pck_crl_issuer_chain.pem")}
        if route == "rootcacrl":
            return 200, self.crl_body("root_ca_crl.der"), {}
        return 404, b"no such route", {}

    def __enter__(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                if not u.path.startswith(stub.prefix):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                route = u.path[len(stub.prefix):]
                stub.hits[route] = stub.hits.get(route, 0) + 1
                if route in stub.delay:
                    time.sleep(stub.delay[route])
                ov = stub.override.get(route)
                if callable(ov):
                    status, body, headers = ov(stub, urllib.parse.parse_qs(u.query))
                elif ov is not None:
                    status, body, headers = ov
                else:
                    status, body, headers = stub.answer(route, urllib.parse.parse_qs(u.query))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if self.tls:
            paths = make_tls_files(self._tmp.name)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(paths["cert"], paths["key"])
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.ca_pem = paths["ca"]
            scheme = "https"
        self.port = self.server.server_address[1]
        self.root = f"{scheme}://127.0.0.1:{self.port}"
        self.url = self.root + self.prefix
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def total_hits(self):
        return sum(self.hits.values())

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        self._tmp.cleanup()
