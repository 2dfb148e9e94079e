# SPDX-License-Identifier: Apache-2.0
"""The C verifier and the Python reference (bench/verify_ref.py, written independently with
python3-cryptography) agree on TDX: the five real sets (status, advisories, module status,
every TD field), simulated quotes covering every status, module case, TD relaunch and TD
policy failure, and byte-flipped copies of a v4 and a v5 quote and their TCB info and QE
identity (accepted or refused alike; the C tool tests/tools/verify_mutations runs the C
side). The default plan flips every byte of the quotes' signed headers and TD reports and a
stride of the rest; MSE_MUTATION_FULL=1 flips every byte of every signed region (about
10,000 verifications each side)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(os.environ.get("MSE_ROOT", "."))
MSE = os.environ.get("MSE_BIN", "build/san/mse")
BUILD = pathlib.Path(os.environ.get("MSE_BUILD", "build/san"))
VECTORS = pathlib.Path(os.environ.get("MSE_VECTORS", "../shared/vectors"))
DQ = VECTORS / "dcap-quotes"
PY = os.environ.get("MSE_PYTHON", "/usr/bin/python3")
ALL = ("SWHardeningNeeded,ConfigurationNeeded,ConfigurationAndSWHardeningNeeded,OutOfDate,"
       "OutOfDateConfigurationNeeded,Revoked,TDRelaunchAdvised,TDRelaunchAdvisedConfigurationNeeded")

sys.path.insert(0, str(ROOT / "bench"))
import verify_ref  # noqa: E402

SETS = {
    "tdx4-dcapqvl": ("2025-07-19T10:00:34Z", []),
    "tdx4-oasis": ("2024-09-02T07:43:52Z", ["allow-missing-crl"]),
    "tdx4-gotdx-notsupported": ("2023-07-01T01:00:00Z", ["allow-sept-ve"]),
    "tdx5-oe-relaunch": ("2025-03-01T00:00:00Z", []),
    "tdx5-oe-outofdate": ("2026-06-20T00:00:00Z", ["allow-service-td"]),
}


def c_verify(*args, env=None):
    p = subprocess.run([MSE, "verify", *map(str, args), "--json", "--accept-tcb-status", ALL],
                       capture_output=True, text=True, timeout=120, env=env)
    return p.returncode, json.loads(p.stdout)


def ref_verify(*args):
    p = subprocess.run([PY, str(ROOT / "bench" / "verify_ref.py"), *map(str, args)],
                       capture_output=True, text=True, timeout=120)
    out = json.loads(p.stdout)
    assert (p.returncode == 0) == out["ok"]
    return out


def compare(c, r):
    assert c["ok"] == r["ok"], (c.get("error"), r.get("error"))
    if not r["ok"]:
        return
    assert c["tee"] == r["tee"] == "TDX"
    assert c["tcb_status"] == r["status"]
    assert c["platform_tcb_status"] == r["platform_status"]
    assert c["qe_tcb_status"] == r["qe_status"]
    assert c["sgx_tcb_status"] == r["sgx_status"]
    assert c["tdx_tcb_status"] == r["tdx_status"]
    assert c["tdx_module_tcb_status"] == r["module_status"]
    assert c["advisories"] == r["advisories"]
    assert c["quote_version"] == r["version"] and c["body_type"] == r["body_type"]
    assert c["trailing_bytes"] == r["trailing_bytes"]
    assert (c["fmspc"], c["pceid"], c["pck_ca"]) == (r["fmspc"], r["pce_id"], r["ca"])
    for k, v in r["td"].items():
        assert c["td"][k] == v, k


@pytest.mark.parametrize("name", list(SETS))
def test_real_sets_agree(name):
    now, opts = SETS[name]
    d = DQ / name
    rc, c = c_verify("--quote", d / "quote.bin", "--collateral", d, "--now", now,
                     *[f"--{o}" for o in opts])
    r = ref_verify("--collateral", d, "--now", now, *[f"--{o}" for o in opts])
    compare(c, r)
    assert r["ok"] == (name != "tdx4-gotdx-notsupported")
    if not r["ok"]:
        assert r["step"] == "tcb" and "TCB level not supported" in r["error"]
        assert c["error"]["step"] == "tcb-level"


def test_strict_and_default_policy_agree():
    d = DQ / "tdx4-oasis"
    neg = d / "negative" / "quote_trailing.bin"
    r = ref_verify("--collateral", d, "--quote", neg, "--now", SETS["tdx4-oasis"][0],
                   "--allow-missing-crl", "--strict")
    assert not r["ok"] and r["step"] == "quote" and "trailing" in r["error"]
    # SEPT_VE_DISABLE clear and a service TD are refused by both without the options.
    for name, opt in (("tdx5-oe-outofdate", "allow-service-td"),):
        now = SETS[name][0]
        rc, c = c_verify("--quote", DQ / name / "quote.bin", "--collateral", DQ / name,
                         "--now", now)
        r = ref_verify("--collateral", DQ / name, "--now", now)
        assert rc == 1 and not r["ok"] and r["step"] == "td_policy"
        assert c["error"]["step"] == "td-attributes"


def svn(*b):
    return bytes(b + (0,) * (16 - len(b))).hex()


SIM_QUOTES = [
    (4, ["--tee-tcb-svn", svn(5, 1, x)]) for x in (10, 9, 8, 7, 6, 5, 4, 3)
] + [
    (4, ["--tee-tcb-svn", s]) for s in (svn(3, 1, 10), svn(3, 1, 8), svn(1, 1, 10), svn(0, 1, 10),
                                        svn(2, 0, 10), svn(1, 0, 10), svn(0, 10, 10),
                                        svn(5, 2, 10))
] + [
    (5, ["--td15", "--tee-tcb-svn", a, "--tee-tcb-svn2", b])
    for a, b in ((svn(3, 1, 10), svn(5, 1, 10)), (svn(3, 1, 8), svn(5, 1, 10)),
                 (svn(3, 1, 10), svn(4, 1, 10)), (svn(3, 1, 10), svn(2, 0, 10)),
                 (svn(3, 1, 10), svn(5, 3, 10)), (svn(5, 1, 6), svn(5, 1, 10)))
] + [
    (5, ["--tee-tcb-svn", svn(3, 1, 10)]),
    (4, ["--td-attributes", "0100001000000000"]),
    (4, ["--td-attributes", "0000000000000000"]),
    (5, ["--td15", "--mrservicetd", "ab" * 48]),
    (4, ["--mrsignerseam", "01" * 48]),
    (4, ["--seam-attributes", "0100000000000000"]),
]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("tdxref")
    env = dict(os.environ, MSE_SIM_DIR=str(root / "sim"), HOME=str(root))
    for args in (["sim", "init"], ["sim", "tdx-collateral", "--out", root / "coll"]):
        assert subprocess.run([MSE, *map(str, args)], capture_output=True, env=env).returncode == 0
    return root, env


@pytest.mark.parametrize("version,args", SIM_QUOTES, ids=[" ".join(map(str, a[1])) + f" v{a[0]}"
                                                          for a in SIM_QUOTES])
def test_sim_quotes_agree(sim, version, args):
    root, env = sim
    q = root / "coll" / "quote.bin"
    p = subprocess.run([MSE, "sim", "tdx-quote", "--out", q, "--quote-version", str(version),
                        *args], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    rc, c = c_verify("--quote", q, "--collateral", root / "coll", "--allow-simulation", env=env)
    r = ref_verify("--collateral", root / "coll", "--sim-root", root / "sim" / "root_ca.der")
    compare(c, r)


def plan_for(name):
    """(file, offset) pairs: signed regions, every byte or a stride (see the docstring)."""
    full = bool(os.environ.get("MSE_MUTATION_FULL"))
    d = DQ / name
    q = (d / "quote.bin").read_bytes()
    pq = verify_ref.parse_quote(q)
    signed = len(pq["signed"])
    chain_at = q.find(b"-----BEGIN CERTIFICATE-----")
    plan = [("quote", i) for i in range(0, signed)]
    plan += [("quote", i) for i in range(signed, chain_at, 1 if full else 5)]
    for f, key in (("tcb_info", "tcbInfo"), ("qe_identity", "enclaveIdentity")):
        text = (d / f"{f}.json").read_text()
        span = verify_ref.json_spans(text)[key][1]
        a = text.index(span)
        b = a + len(span)
        plan += [(f, i) for i in range(a, b, 1 if full else (17 if f == "tcb_info" else 7))]
    return plan


@pytest.mark.parametrize("name", ["tdx4-dcapqvl", "tdx5-oe-relaunch"])
def test_mutations_agree(name):
    now, opts = SETS[name]
    d = DQ / name
    plan = plan_for(name)
    p = subprocess.run([str(BUILD / "tools" / "verify_mutations"), str(d), now, *opts],
                       input="".join(f"{f} {o}\n" for f, o in plan), capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    c_lines = p.stdout.splitlines()
    assert len(c_lines) == len(plan)
    base = verify_ref.inputs_from_dir(str(d / "quote.bin"), str(d))
    nowt = verify_ref.parse_time(now)
    td_allow = ("allow-debug-td" in opts, "allow-sept-ve" in opts, "allow-service-td" in opts)
    disagreements, refused = [], 0
    for (f, off), line in zip(plan, c_lines):
        inp = dict(base)
        m = bytearray(inp[f])
        m[off] ^= 0x01
        inp[f] = bytes(m)
        try:
            verify_ref.verify(inp, nowt, False, "allow-missing-crl" in opts, False, False, td_allow)
            r_ok = True
        except verify_ref.VerifyError:
            r_ok = False
        except (KeyError, TypeError, ValueError, IndexError, UnicodeDecodeError):
            r_ok = False
        c_ok = line.split()[2] == "ok"
        refused += not c_ok
        if c_ok != r_ok:
            disagreements.append((f, off, line))
    assert not disagreements, disagreements[:20]
    # every signed byte of the quote is refused by both
    assert all(line.split()[2] == "refused" for (f, o), line in zip(plan, c_lines)
               if f == "quote" and o < len(verify_ref.parse_quote((d / "quote.bin").read_bytes())["signed"]))
    print(f"{name}: {len(plan)} mutations, {refused} refused by both, the rest accepted by both")
