# SPDX-License-Identifier: Apache-2.0
"""`mse verify` end to end: every input form (--evidence, --quote, --cert PEM/DER,
--url), the policy options, --json, --output, and the exit codes. Expected
values come from the vectors' READMEs; certificates are compared with
python3-cryptography."""

import base64
import json
import os
import pathlib
import ssl
import subprocess
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

MSE = os.environ.get("MSE_BIN", "build/san/mse")
VECTORS = pathlib.Path(os.environ.get("MSE_VECTORS", "../shared/vectors"))
EVIDENCE = VECTORS / "mse-evidence" / "evidence.json"
DQ = VECTORS / "dcap-quotes"
ADVISORIES = ["INTEL-SA-00586", "INTEL-SA-00614", "INTEL-SA-00615", "INTEL-SA-00657",
              "INTEL-SA-00730", "INTEL-SA-00738", "INTEL-SA-00767"]


def run(*args, env=None):
    return subprocess.run([MSE, "verify", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env)


def js(p):
    return json.loads(p.stdout)


def test_help_and_usage_errors():
    p = run("--help")
    assert p.returncode == 0 and "Usage: mse verify" in p.stdout and "--accept-tcb-status" in p.stdout
    assert run().returncode == 2
    assert run("--quote", "a", "--evidence", "b").returncode == 2
    assert run("--evidence", EVIDENCE, "--mrenclave", "zz").returncode == 2
    assert run("--evidence", EVIDENCE, "--accept-tcb-status", "Fine").returncode == 2
    assert run("--evidence", EVIDENCE, "--now", "yesterday").returncode == 2
    assert run("--evidence", EVIDENCE, "--collateral", "x", "--offline").returncode == 2
    assert run("--evidence", EVIDENCE, "--bogus").returncode == 2


def test_evidence_policy_and_output(tmp_path):
    now = "2023-06-21T00:00:00Z"
    p = run("--evidence", EVIDENCE, "--now", now)
    assert p.returncode == 1
    assert "[crl]" in p.stderr and "expired" in p.stderr
    p = run("--evidence", EVIDENCE, "--now", now, "--accept-expired-collateral", "--json")
    assert p.returncode == 1
    out = js(p)
    assert out["ok"] is False and out["error"]["step"] == "tcb-status"
    assert out["tcb_status"] == "OutOfDate" and out["qe_tcb_status"] == "UpToDate"
    assert out["advisories"] == ADVISORIES
    assert out["collateral_expired"] is True and out["simulation"] is False
    # accepted, and the trusted certificate is written
    ev = json.loads(EVIDENCE.read_text())
    key = tmp_path / "signer.pem"
    key.write_text(ev["signer_pk"])
    # A signer alone admits every enclave its key ever signed: refused for --output.
    p = run("--evidence", EVIDENCE, "--now", now, "--accept-expired-collateral",
            "--accept-tcb-status", "OutOfDate", "--signer-key", key, "--output", tmp_path / "out")
    assert p.returncode == 2 and "--isvprodid" in p.stderr, p.stderr
    assert not (tmp_path / "out").exists()
    p = run("--evidence", EVIDENCE, "--now", now, "--accept-expired-collateral",
            "--accept-tcb-status", "OutOfDate", "--signer-key", key, "--isvprodid", "1",
            "--min-isvsvn", "10", "--output", tmp_path / "out")
    assert p.returncode == 0, p.stderr
    assert "measurement=ok" in p.stdout and "NOT CHECKED" not in p.stdout
    assert "OutOfDate" in p.stdout and "INTEL-SA-00767" in p.stdout
    got = x509.load_pem_x509_certificate((tmp_path / "out" / "ratls.pem").read_bytes())
    want = x509.load_pem_x509_certificate(ev["ratls_certificate"].encode())
    assert got == want
    # a wrong expected MRENCLAVE names the step and both values
    p = run("--evidence", EVIDENCE, "--now", now, "--accept-expired-collateral",
            "--accept-tcb-status", "OutOfDate", "--mrenclave", "ab" * 32,
            "--output", tmp_path / "out2")
    assert p.returncode == 1
    assert "[measurement] mrenclave: expected abab" in p.stderr
    assert "got 0e4ec55e" in p.stderr
    assert not (tmp_path / "out2").exists()


NOW = ["--now", "2023-06-21T00:00:00Z", "--accept-expired-collateral", "--accept-tcb-status", "OutOfDate"]
MRENCLAVE = "0e4ec55e690b06a574af59dfd51baa3866ac4c8d37896effc0f1fad17b31cf3b"  # vectors README


def test_output_needs_an_expected_identity(tmp_path):
    """The ratls.pem that --output writes is what `mse run` pins: without an
    expected identity it would pin any genuine enclave running any code."""
    out = tmp_path / "out"
    p = run("--evidence", EVIDENCE, *NOW, "--output", out)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "--mrenclave" in p.stderr and "--any-enclave" in p.stderr
    assert not out.exists()
    # MRSIGNER and ISVPRODID without a minimum ISVSVN: still refused
    p = run("--evidence", EVIDENCE, *NOW, "--mrsigner", "c1" * 32, "--isvprodid", "1", "--output", out)
    assert p.returncode == 2 and "--min-isvsvn" in p.stderr, p.stderr
    assert not out.exists()
    # --any-enclave is the explicit choice: written, and the measurement says "not checked"
    p = run("--evidence", EVIDENCE, *NOW, "--output", out, "--any-enclave", "--json")
    assert p.returncode == 0, p.stderr
    assert js(p)["steps"]["measurement"] == "not-checked"
    assert "any genuine enclave" in p.stderr
    assert (out / "ratls.pem").exists()
    # the expected MRENCLAVE: written, measurement ok
    p = run("--evidence", EVIDENCE, *NOW, "--mrenclave", MRENCLAVE, "--output", tmp_path / "o2")
    assert p.returncode == 0, p.stderr
    assert "measurement=ok" in p.stdout
    assert (tmp_path / "o2" / "ratls.pem").exists()
    assert run("--evidence", EVIDENCE, *NOW, "--any-enclave").returncode == 2  # needs --output


def test_measurement_not_checked_is_never_ok():
    p = run("--evidence", EVIDENCE, *NOW)
    assert p.returncode == 0, p.stderr
    assert "measurement=not-checked" in p.stdout and "measurement=ok" not in p.stdout
    assert "NOT CHECKED" in p.stdout
    assert js(run("--evidence", EVIDENCE, *NOW, "--json"))["steps"]["measurement"] == "not-checked"
    assert js(run("--evidence", EVIDENCE, *NOW, "--json", "--isvprodid", "1"))["steps"]["measurement"] == "ok"


def test_package_on_sgx_without_mrenclave_prints_what_was_compared(tmp_path):
    """An SGX evidence and no --mrenclave: nothing is recomputed, so no
    expected MRENCLAVE may be printed (it used to print 0000…)."""
    env = dict(os.environ, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / ".config"),
               XDG_STATE_HOME=str(tmp_path / ".state"))
    env.pop("MSE_SIM_DIR", None)
    subprocess.run([MSE, "scaffold", "demo"], cwd=tmp_path, env=env, check=True, capture_output=True)
    subprocess.run([MSE, "package", "--project", str(tmp_path / "demo"), "--output", str(tmp_path / "pkg"),
                    "--quiet"], env=env, check=True, capture_output=True)
    pkg = next((tmp_path / "pkg").glob("package_*.tar"))
    p = run("--package", pkg, "--evidence", EVIDENCE, env=env)
    assert p.returncode == 1
    assert "0" * 64 not in p.stdout, p.stdout
    assert "no MRENCLAVE" in p.stdout and "nothing was compared" in p.stdout
    # given, it is printed as given
    p = run("--package", pkg, "--evidence", EVIDENCE, "--mrenclave", MRENCLAVE, env=env)
    assert f"expected:     MRENCLAVE {MRENCLAVE} (given)" in p.stdout, p.stdout


def test_evidence_today():
    p = run("--evidence", EVIDENCE, "--json")
    assert p.returncode == 1 and "expired" in js(p)["error"]["message"]
    p = run("--evidence", EVIDENCE, "--json", "--accept-expired-collateral",
            "--accept-tcb-status", "OutOfDate")
    assert p.returncode == 0, p.stderr
    out = js(p)
    assert out["ok"] and out["collateral_expired"] and "RA-TLS certificate expired" in out["accepted"]


def evidence_as_directory(d, crl_form):
    """The evidence's collateral written as a collateral directory; CRLs in another form."""
    ev = json.loads(EVIDENCE.read_text())
    d.mkdir()
    tcb_hex = base64.b64decode(ev["tcb_info"]).decode().strip()
    (d / "tcb_info.json").write_bytes(bytes.fromhex(tcb_hex))
    (d / "qe_identity.json").write_bytes(base64.b64decode(ev["qe_identity"]))
    (d / "tcb_info_issuer_chain.pem").write_text(ev["tcb_cert"])
    (d / "qe_identity_issuer_chain.pem").write_text(ev["tcb_cert"])
    for name, key in (("pck_crl.der", "pck_platform_crl"), ("root_ca_crl.der", "root_ca_crl")):
        crl = x509.load_pem_x509_crl(ev[key].encode())
        der = crl.public_bytes(serialization.Encoding.DER)
        data = {"pem": ev[key].encode(), "der": der, "hex": der.hex().encode()}[crl_form]
        (d / name).write_bytes(data)
    cert = x509.load_pem_x509_certificate(ev["ratls_certificate"].encode())
    return cert


@pytest.mark.parametrize("crl_form", ["pem", "der", "hex"])
def test_cert_file_with_collateral_directory(tmp_path, crl_form):
    cert = evidence_as_directory(tmp_path / "col", crl_form)
    der = tmp_path / "ratls.der"
    der.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    p = run("--cert", der, "--collateral", tmp_path / "col", "--now", "2023-06-21T00:00:00Z",
            "--accept-expired-collateral", "--accept-tcb-status", "OutOfDate", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    assert js(p)["tcb_status"] == "OutOfDate"


def test_quote_sets():
    p = run("--quote", DQ / "sgx3-dcapqvl" / "quote.bin", "--collateral", DQ / "sgx3-dcapqvl",
            "--now", "2025-07-19T10:01:17Z", "--json")
    assert p.returncode == 1
    out = js(p)
    assert out["tcb_status"] == "ConfigurationAndSWHardeningNeeded"
    assert out["advisories"] == ["INTEL-SA-00289", "INTEL-SA-00615"]
    p = run("--quote", DQ / "sgx3-dcapqvl" / "quote.bin", "--collateral", DQ / "sgx3-dcapqvl",
            "--now", "2025-07-19T10:01:17Z", "--accept-tcb-status",
            "ConfigurationAndSWHardeningNeeded")
    assert p.returncode == 0, p.stderr
    p = run("--quote", DQ / "sgx3-oasis" / "quote.bin", "--collateral", DQ / "sgx3-oasis",
            "--now", "2022-12-20T00:50:04Z", "--accept-tcb-status", "SWHardeningNeeded")
    assert p.returncode == 1 and "[crl]" in p.stderr and "missing" in p.stderr
    p = run("--quote", DQ / "sgx3-oasis" / "quote.bin", "--collateral", DQ / "sgx3-oasis",
            "--now", "2022-12-20T00:50:04Z", "--accept-tcb-status", "SWHardeningNeeded",
            "--allow-missing-crl", "--json")
    assert p.returncode == 0 and js(p)["crl_missing"] is True
    # TDX sets are verified (tests/e2e/test_verify_tdx.py); outside their window, refused.
    for tdx in ("tdx4-dcapqvl", "tdx5-oe-relaunch"):
        p = run("--quote", DQ / tdx / "quote.bin", "--collateral", DQ / tdx)
        assert p.returncode == 1 and "expired" in p.stderr, p.stderr


def test_strict_rejects_trailing(tmp_path):
    q = (DQ / "sgx3-dcapqvl" / "quote.bin").read_bytes() + b"\0" * 5
    f = tmp_path / "q.bin"
    f.write_bytes(q)
    args = ["--quote", f, "--collateral", DQ / "sgx3-dcapqvl", "--now", "2025-07-19T10:01:17Z",
            "--accept-tcb-status", "ConfigurationAndSWHardeningNeeded"]
    p = run(*args)
    assert p.returncode == 0 and "trailing" in p.stdout
    p = run(*args, "--strict")
    assert p.returncode == 1 and "5 trailing bytes" in p.stderr


def test_url_fetches_without_trust(tmp_path):
    """A TLS server with a plain certificate: fetched, then refused as not RA-TLS."""
    k = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")])
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key())
         .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
         .sign(k, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(c.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(k.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve():
        try:
            conn, _ = srv.accept()
            with ctx.wrap_socket(conn, server_side=True) as s:
                s.recv(1)
        except (OSError, ssl.SSLError):
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    p = run("--url", f"127.0.0.1:{port}", "--collateral", DQ / "sgx3-dcapqvl")
    t.join(timeout=10)
    srv.close()
    assert p.returncode == 1
    assert "[ratls]" in p.stderr and "not an RA-TLS certificate" in p.stderr
    # nothing listening
    s2 = socket.socket()
    s2.bind(("127.0.0.1", 0))
    dead = s2.getsockname()[1]
    s2.close()
    p = run("--url", f"127.0.0.1:{dead}", "--collateral", DQ / "sgx3-dcapqvl")
    assert p.returncode == 1 and "[fetch]" in p.stderr


def test_simulation_needs_flag(tmp_path):
    """--sim-root without --allow-simulation is a usage error; an Intel quote stays Intel."""
    root = DQ / "intel_sgx_root_ca.der"
    assert run("--evidence", EVIDENCE, "--sim-root", root).returncode == 2
    p = run("--quote", DQ / "sgx3-dcapqvl" / "quote.bin", "--collateral", DQ / "sgx3-dcapqvl",
            "--now", "2025-07-19T10:01:17Z", "--accept-tcb-status",
            "ConfigurationAndSWHardeningNeeded", "--allow-simulation", "--sim-root", root, "--json")
    assert p.returncode == 0 and js(p)["simulation"] is False
    assert "SIMULATION" not in p.stdout + p.stderr
