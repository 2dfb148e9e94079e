#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Coordinator benchmark (bench/bench_coordinator.sh).

(a) replica cold start -> first 200 through the CA: start mse-bootstrap
    --coordinator-mrenclave (simulation), poll GET /health with only the
    coordinator's CA trusted (python ssl, like curl --cacert) every 10 ms;
    RUNS runs, median and p99 (nearest rank: with 20 runs, the maximum).
(b) CONC replicas attesting at once, protocol level: CONC distinct RA-TLS
    certificates (a P-256 key each, a simulated quote over SHA-256(key) ||
    an X25519 key, for the replicas' MRENCLAVE) connect at the same moment
    with mutual TLS and POST /replica; all must get 200; attestations/s =
    CONC / wall time from the barrier to the last answer.
(c) REAL real replicas (mse-bootstrap processes, one Python each) started at
    once: wall time until every one answers 200 through the CA.
"""
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.x509.oid import NameOID, ObjectIdentifier

BUILD = Path(os.environ.get("MSE_BUILD", "build"))
MSE, BOOT, COORD = (str((BUILD / n).resolve()) for n in ("mse", "mse-bootstrap", "mse-coordinator"))
RUNS = int(os.environ.get("RUNS", "20"))
CONC = int(os.environ.get("CONC", "100"))
REAL = int(os.environ.get("REAL", "8"))


def run(*a, **kw):
    return subprocess.run([str(x) for x in a], check=True, capture_output=True, text=True, **kw)


def wait_for(pred, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    raise RuntimeError("timeout")


def first_200(port, ca, proc, timeout=60):
    ctx = ssl.create_default_context(cafile=str(ca))
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("replica exited")
        try:
            c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                c.close()
                return time.monotonic()
            c.close()
        except (OSError, ssl.SSLError, http.client.HTTPException):
            pass
        time.sleep(0.01)
    raise RuntimeError("no 200")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(xs, p):
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, -(-len(xs) * p // 100) - 1))]


def main():
    d = Path(tempfile.mkdtemp(prefix="mse-bench-coord."))
    env = dict(os.environ, MSE_SIM_DIR=str(d / "sim"), HOME=str(d / "home"))
    try:
        run(MSE, "sim", "init", env=env)
        run(MSE, "scaffold", "app", env=env, cwd=d)
        run(MSE, "package", "--project", d / "app", "--output", d / "pkg", "--quiet", env=env)
        pkg = next((d / "pkg").glob("*.tar"))
        key = next((d / "pkg").glob("*.key"))
        with tarfile.open(pkg) as t:
            t.extract("app.tar", d / "x")
        with tarfile.open(d / "x/app.tar") as t:
            t.extractall(d / "appdir")
        run(MSE, "coordinator", "keygen", "--out", d / "owner", env=env)
        pub = (d / "owner.pub").read_text().strip()
        log = open(d / "coord.log", "w")
        coord = subprocess.Popen([COORD, "--owner-key", pub, "--state-dir", d / "state", "--host",
                                  "127.0.0.1", "--port", "0", "--rate", "100000", "--log-level",
                                  "warn"], stdout=log, stderr=subprocess.STDOUT, env=env)
        info = d / "state/coordinator.json"
        wait_for(info.exists)
        url = f"127.0.0.1:{json.loads(info.read_text())['port']}"
        mre = run(MSE, "coordinator", "measure", "--owner-key", pub, "--coordinator", COORD,
                  env=env).stdout.strip()
        run(MSE, "verify", "--url", url, "--mrenclave", mre, "--allow-simulation", "--output",
            d / "v", env=env)
        run(MSE, "coordinator", "manifest", "--coordinator-cert", d / "v/ratls.pem", "--package",
            pkg, "--code-key", key, "--project", d / "app", "--allow-simulation", "--bootstrap",
            BOOT, "--out", d / "m.json", env=env)
        run(MSE, "coordinator", "set", "--url", url, "--pin", d / "v/ratls.pem", "--manifest",
            d / "m.json", "--owner-key", d / "owner.key", env=env)
        run(MSE, "coordinator", "ca", "--url", url, "--pin", d / "v/ratls.pem", "--out",
            d / "ca.pem", env=env)
        replica_mre = json.loads((d / "m.json").read_text())["identities"][0]["mrenclave"]
        renv = dict(env, MSE_COORDINATOR=url)

        def start_replica(i):
            port = free_port()
            ws = d / f"r{i}"
            p = subprocess.Popen([BOOT, "app:app", "--app-dir", d / "appdir",
                                  "--coordinator-mrenclave", mre, "--id", f"r{i}", "--host",
                                  "127.0.0.1", "--port", str(port), "--workspace", ws,
                                  "--log-level", "warn"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=renv)
            return p, port

        # (a) cold start
        times = []
        for i in range(RUNS):
            t0 = time.monotonic()
            p, port = start_replica(f"a{i}")
            t1 = first_200(port, d / "ca.pem", p)
            times.append((t1 - t0) * 1000)
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
            shutil.rmtree(d / f"ra{i}", ignore_errors=True)
        print(f"(a) replica cold start -> first 200 through the CA, {RUNS} runs: "
              f"median {statistics.median(times):.0f} ms, p99 {pct(times, 99):.0f} ms, "
              f"min {min(times):.0f} ms")

        # (b) CONC attestations at once (protocol level)
        oid = ObjectIdentifier("1.2.840.113741.1337.6")
        certs = []
        t_prep = time.monotonic()
        for i in range(CONC):
            k = ec.generate_private_key(ec.SECP256R1())
            point = k.public_key().public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint)
            xpk = x25519.X25519PrivateKey.generate().public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            rd = hashlib.sha256(point).hexdigest() + xpk.hex()
            qf = d / f"q{i}.bin"
            run(MSE, "sim", "quote", "--out", qf, "--mrenclave", replica_mre, "--report-data",
                rd, env=env)
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"replica-{i}")])
            now = time.time()
            import datetime
            c = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                 .public_key(k.public_key()).serial_number(x509.random_serial_number())
                 .not_valid_before(datetime.datetime.utcfromtimestamp(now - 60))
                 .not_valid_after(datetime.datetime.utcfromtimestamp(now + 3600))
                 .add_extension(x509.UnrecognizedExtension(oid, qf.read_bytes()), False)
                 .sign(k, hashes.SHA256()))
            cp, kp = d / f"c{i}.pem", d / f"k{i}.pem"
            cp.write_bytes(c.public_bytes(serialization.Encoding.PEM))
            kp.write_bytes(k.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
            certs.append((cp, kp))
        prep = time.monotonic() - t_prep
        host, port = url.split(":")
        barrier = threading.Barrier(CONC + 1)
        results = [None] * CONC
        ends = [0.0] * CONC

        def attest(i):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the benchmark measures the coordinator's side
            ctx.load_cert_chain(certs[i][0], certs[i][1])
            body = json.dumps({"instance": f"bench-{i}"})
            barrier.wait()
            try:
                c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=120)
                c.request("POST", "/replica", body, {"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                results[i] = (r.status, json.loads(data).get("app_key") if r.status == 200 else data)
                c.close()
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = (0, repr(e))
            ends[i] = time.monotonic()

        ths = [threading.Thread(target=attest, args=(i,)) for i in range(CONC)]
        for t in ths:
            t.start()
        barrier.wait()
        t0 = time.monotonic()
        for t in ths:
            t.join()
        wall = max(ends) - t0
        ok = [r for r in results if r and r[0] == 200]
        keys = {r[1] for r in ok}
        print(f"(b) {CONC} replicas attesting at once (mutual RA-TLS, full verification, "
              f"protocol level): {len(ok)}/{CONC} served (one app key: {len(keys) == 1}), "
              f"{wall * 1000:.0f} ms wall, {CONC / wall:.0f} attestations/s "
              f"(certificates and quotes prepared beforehand in {prep:.1f} s)")
        bad = [r for r in results if not r or r[0] != 200]
        if bad:
            print("    failures:", bad[:3])

        # (c) REAL processes at once
        t0 = time.monotonic()
        procs = [start_replica(f"c{i}") for i in range(REAL)]
        done = [first_200(port, d / "ca.pem", p, timeout=180) for p, port in procs]
        wall = max(done) - t0
        print(f"(c) {REAL} real replicas (mse-bootstrap + Python each) started at once: all "
              f"{len(done)} answer 200 through the CA after {wall * 1000:.0f} ms")
        for p, _ in procs:
            p.send_signal(signal.SIGTERM)
        for p, _ in procs:
            p.wait(timeout=30)
        coord.send_signal(signal.SIGTERM)
        coord.wait(timeout=30)
        return 0 if len(ok) == CONC else 1
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
