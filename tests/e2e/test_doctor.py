# SPDX-License-Identifier: Apache-2.0
"""mse doctor on three machines: a fake root where SGX is present and set up
(character devices, AESM socket, QCNL pointing at the PCCS stub, Gramine on
PATH, CPUID values from a file), a fake root where the set-up is broken, and
this machine. Each answer is checked against something independent: the
CPUID values written, the stub's hit counter, the collateral vectors'
nextUpdate read with python3-cryptography, /proc/cpuinfo, and the Python
and Flask that /usr/bin/python3 imports."""

import datetime
import json
import os
import pathlib
import platform
import shutil
import socket
import stat
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from pccs_stub import PccsStub  # noqa: E402

MSE = os.environ.get("MSE_BIN", "build/san/mse")
VEC = pathlib.Path(os.environ.get("MSE_VECTORS", "../shared/vectors")) / "dcap-quotes"
SET = "sgx3-dcapqvl"
FMSPC = "00A067110000"

# CPUID (Intel SDM vol. 2A "CPUID"): leaf 7 EBX[2] SGX, ECX[30] SGX_LC; leaf 0x12
# sub-leaf 0 EAX[0] SGX1, EAX[1] SGX2, EDX[15:8] log2 max enclave size (64-bit);
# sub-leaf 2 an EPC section: EAX[3:0] = 1, size = ECX[31:12] | EDX[19:0] << 32.
CPUID_SGX = """# leaf subleaf eax ebx ecx edx
0 0 1f 0 0 0
7 0 0 4 40000000 0
12 0 3 0 0 2400
12 2 80000001 0 4000000 0
12 3 0 0 0 0
"""
CPUID_NO_FLC = CPUID_SGX.replace("7 0 0 4 40000000 0", "7 0 0 4 0 0")


def run(*args, env, check_rc=None):
    p = subprocess.run([MSE, "doctor", *args], capture_output=True, text=True, env=env,
                       timeout=120)
    if check_rc is not None:
        assert p.returncode == check_rc, (p.returncode, p.stdout, p.stderr)
    return p


def doc(*args, env, rc):
    p = run("--json", *args, env=env, check_rc=rc)
    return json.loads(p.stdout)


def checks(d):
    return {c["name"]: c for c in d["checks"]}


@pytest.fixture
def base_env(tmp_path):
    env = dict(os.environ)
    env["HOME"] = str(tmp_path / "home")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["MSE_SIM_DIR"] = str(tmp_path / "sim")
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1"
    env.pop("MSE_DOCTOR_CPUID", None)
    return env


def earliest_next_update(d):
    """The earliest nextUpdate of a collateral directory, read independently."""
    from cryptography import x509
    t = []
    for name, key in (("tcb_info.json", "tcbInfo"), ("qe_identity.json", "enclaveIdentity")):
        j = json.loads((d / name).read_text())
        t.append(datetime.datetime.fromisoformat(j[key]["nextUpdate"].replace("Z", "+00:00")))
    for name in ("pck_crl.der", "root_ca_crl.der"):
        crl = x509.load_der_x509_crl((d / name).read_bytes())
        t.append(crl.next_update.replace(tzinfo=datetime.timezone.utc))
    return min(t).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.skipif(os.geteuid() != 0, reason="creating character devices needs root")
def test_device_present_layout(tmp_path, base_env):
    root = tmp_path / "root"
    (root / "dev").mkdir(parents=True)
    for name in ("sgx_enclave", "sgx_provision"):
        os.mknod(root / "dev" / name, stat.S_IFCHR | 0o660, os.makedev(10, 125))
    (root / "var/run/aesmd").mkdir(parents=True)
    aesm = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    aesm.bind(str(root / "var/run/aesmd/aesm.socket"))
    dist = root / "usr/lib/python3/dist-packages/Flask-9.8.7.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: Flask\nVersion: 9.8.7\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gramine-sgx").write_text("#!/bin/sh\necho 'Gramine 1.7 (d0f0f0)'\n")
    (bindir / "gramine-sgx").chmod(0o755)
    cpuid = tmp_path / "cpuid.txt"
    cpuid.write_text(CPUID_SGX)
    # The collateral vectors in the cache layout: from 2025, so expired now.
    cache = pathlib.Path(base_env["XDG_CACHE_HOME"]) / "mse/collateral" / f"{FMSPC}-processor"
    shutil.copytree(VEC / SET, cache)
    env = dict(base_env, MSE_DOCTOR_CPUID=str(cpuid), PATH=f"{bindir}:{base_env['PATH']}")
    with PccsStub(VEC / SET, ca="processor") as s:
        (root / "etc").mkdir()
        (root / "etc/sgx_default_qcnl.conf").write_text(
            '{\n  // the local PCCS\n  "pccs_url": "%s",\n  "use_secure_cert": false\n}\n' % s.url)
        d = doc("--root", str(root), env=env, rc=0)
        assert s.hits.get("rootcacrl") == 1, s.hits
    aesm.close()
    c = checks(d)
    assert d["ok"] is True and d["role"] == "all" and d["fails"] == 0
    assert d["cpu"] == {"sgx": True, "sgx1": True, "sgx2": True, "flc": True,
                        "epc_bytes": 64 << 20, "from_file": True}
    assert d["simulation_only"] is False
    assert c["cpu"]["status"] == "OK" and "EPC 64 MiB" in c["cpu"]["detail"], c["cpu"]
    assert "2^36" in c["cpu"]["detail"]
    for name in ("sgx_enclave", "sgx_provision", "aesm", "pccs", "gramine", "python", "flask",
                 "simulation", "clock"):
        assert c[name]["status"] == "OK", c[name]
        assert "fix" not in c[name]
    assert d["pccs_url"] == s.url
    # use_secure_cert false is worth a warning with its fix.
    assert c["qcnl"]["status"] == "WARN" and "use_secure_cert is false" in c["qcnl"]["detail"]
    assert "use_secure_cert" in c["qcnl"]["fix"]
    assert d["gramine_version"] == "Gramine 1.7 (d0f0f0)"
    assert d["flask_version"] == "9.8.7"
    assert d["python_version"] == platform.python_version()
    assert "PCCS's clock" in c["clock"]["detail"]
    # The cache entry is expired: named with its earliest nextUpdate.
    assert c["collateral"]["status"] == "WARN"
    assert "1 expired" in c["collateral"]["detail"]
    assert earliest_next_update(VEC / SET) in c["collateral"]["detail"], c["collateral"]
    assert d["warnings"] == 2


def test_config_broken_layout(tmp_path, base_env):
    root = tmp_path / "root"
    (root / "dev").mkdir(parents=True)
    (root / "dev/sgx_enclave").write_text("")  # a regular file, not the device
    (root / "etc").mkdir()
    (root / "etc/sgx_default_qcnl.conf").write_text(
        '{\n  "pccs_url": "https://localhost:8081/sgx/certification/v4/"\n  "use_secure_cert": true\n}\n')
    cpuid = tmp_path / "cpuid.txt"
    cpuid.write_text(CPUID_NO_FLC)
    env = dict(base_env, MSE_DOCTOR_CPUID=str(cpuid), PATH="/usr/bin:/bin")
    assert shutil.which("gramine-sgx", path=env["PATH"]) is None
    d = doc("--root", str(root), "--role", "operator", env=env, rc=1)
    c = checks(d)
    assert d["ok"] is False and d["role"] == "operator"
    assert d["cpu"]["sgx"] is True and d["cpu"]["flc"] is False
    assert c["cpu"]["status"] == "FAIL" and "Flexible Launch Control" in c["cpu"]["detail"]
    assert d["error"]["step"] == "cpu" and "Flexible Launch Control" in d["error"]["message"]
    assert c["sgx_enclave"]["status"] == "FAIL" and "not a character device" in c["sgx_enclave"]["detail"]
    assert c["sgx_provision"]["status"] == "FAIL" and "No such file" in c["sgx_provision"]["detail"]
    assert c["aesm"]["status"] == "FAIL" and "aesmd" in c["aesm"]["fix"]
    # The broken QCNL config is named with its line (the missing comma before line 3).
    assert c["qcnl"]["status"] == "FAIL", c["qcnl"]
    assert "/etc/sgx_default_qcnl.conf:3:" in c["qcnl"]["detail"], c["qcnl"]
    assert c["pccs"]["status"] == "WARN"
    assert c["gramine"]["status"] == "FAIL" and "gramine" in c["gramine"]["fix"].lower()
    for k in d["checks"]:
        if k["status"] != "OK":
            assert k["fix"], k
    assert d["fails"] == sum(1 for k in d["checks"] if k["status"] == "FAIL") >= 6
    # The text form says the same, one line per check, each failure with its fix.
    p = run("--root", str(root), "--role", "operator", env=env, check_rc=1)
    assert p.stdout.count("FAIL  ") == d["fails"]
    assert "fix: enable it in the BIOS" in p.stdout or "Flexible Launch Control" in p.stdout
    assert f"{d['fails']} failed" in p.stdout


def test_this_machine(base_env):
    d = doc("--role", "operator", env=base_env, rc=None)
    p = run("--role", "operator", env=base_env)
    assert p.returncode == (0 if d["ok"] else 1)
    c = checks(d)
    with open("/proc/cpuinfo") as f:
        flags = set()
        for line in f:
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
    # The kernel's view of the CPU agrees with CPUID (it hides SGX when disabled).
    if "sgx" not in flags:
        assert d["cpu"]["sgx"] is False or d["cpu"]["sgx1"] is False
    if d["cpu"]["sgx"] is False:
        assert d["simulation_only"] is True
        assert c["cpu"]["status"] == "WARN" and "simulation" in c["cpu"]["detail"]
        assert "simulation" in c["cpu"]["fix"]
        assert "no SGX here" in p.stdout
    assert d["cpu"]["from_file"] is False
    assert d["python_version"] == platform.python_version()
    import flask
    from importlib.metadata import version
    assert d["flask_version"] == version("flask") == flask.__version__
    # The simulation root does not exist yet in this test's MSE_SIM_DIR.
    assert c["simulation"]["status"] == "OK" and "not created yet" in c["simulation"]["detail"]
    # Then it does, and is valid.
    subprocess.run([MSE, "sim", "init"], env=base_env, check=True, capture_output=True,
                   timeout=120)
    c = checks(doc("--role", "codeprovider", env=base_env, rc=None))
    assert c["simulation"]["status"] == "OK" and "valid until" in c["simulation"]["detail"]
    assert "cpu" not in c and "gramine" not in c and "sgx_enclave" not in c
    assert {"python", "flask", "qcnl", "pccs", "collateral", "simulation", "clock"} <= set(c)


def test_bad_cpuid_file_and_usage(tmp_path, base_env):
    bad = tmp_path / "cpuid.txt"
    bad.write_text("0 0 1f 0 0 0\n7 zero\n")
    d = doc(env=dict(base_env, MSE_DOCTOR_CPUID=str(bad)), rc=1)
    assert d["ok"] is False
    assert d["error"]["file"] == str(bad) and d["error"]["line"] == 2
    assert d["error"]["expected"] == "LEAF SUBLEAF EAX EBX ECX EDX in hex"
    p = run("--role", "admin", env=base_env, check_rc=2)
    assert "expected codeprovider or operator, got 'admin'" in p.stderr
