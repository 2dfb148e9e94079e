# SPDX-License-Identifier: Apache-2.0
"""`mse verify` on TDX quotes, end to end.

Real sets (../shared/vectors/dcap-quotes, Intel-signed): at the "now" of their README and
with the options each needs, the outcome their source asserts, every TD field in --json and
text; the default policy refuses them at the step that names the missing option.

Simulation (`mse sim tdx-quote` / `tdx-collateral`, TCB levels documented in
src/attest/simtdx.h): every TCB status, the module statuses and identity failures, TD
relaunch, and every TD policy failure, each named. The TD fields reported are checked
against the bytes of the quote read here at the offsets of Intel's TD report layout."""

import json
import os
import pathlib
import subprocess

import pytest

MSE = os.environ.get("MSE_BIN", "build/san/mse")
VECTORS = pathlib.Path(os.environ.get("MSE_VECTORS", "../shared/vectors"))
DQ = VECTORS / "dcap-quotes"
ALL = ("SWHardeningNeeded,ConfigurationNeeded,ConfigurationAndSWHardeningNeeded,OutOfDate,"
       "OutOfDateConfigurationNeeded,Revoked,TDRelaunchAdvised,TDRelaunchAdvisedConfigurationNeeded")

# set, now, options it needs, expected (status or error step + text)
SETS = {
    "tdx4-dcapqvl": ("2025-07-19T10:00:34Z", [], "UpToDate"),
    "tdx4-oasis": ("2024-09-02T07:43:52Z", ["--allow-missing-crl"], "UpToDate"),
    "tdx4-gotdx-notsupported": ("2023-07-01T01:00:00Z", ["--allow-sept-ve"],
                                ("tcb-level", "TCB level not supported")),
    "tdx5-oe-relaunch": ("2025-03-01", ["--accept-tcb-status", "TDRelaunchAdvised"],
                         "TDRelaunchAdvised"),
    "tdx5-oe-outofdate": ("2026-06-20", ["--allow-service-td", "--accept-tcb-status", "OutOfDate"],
                          "OutOfDate"),
}


def mse(*args, env=None):
    return subprocess.run([MSE, *map(str, args)], capture_output=True, text=True, timeout=120,
                          env=env)


def verify(*args, env=None):
    p = mse("verify", *args, "--json", env=env)
    return p, json.loads(p.stdout)


def td_fields(q):
    """TD report fields read from the raw quote (Intel's TD report 1.0/1.5 layout)."""
    ver = int.from_bytes(q[0:2], "little")
    body = 54 if ver == 5 else 48
    b = q[body:]
    f = {"tee_tcb_svn": b[0:16], "mrseam": b[16:64], "mrsignerseam": b[64:112],
         "seam_attributes": b[112:120], "td_attributes": b[120:128], "xfam": b[128:136],
         "mrtd": b[136:184], "mrconfigid": b[184:232], "mrowner": b[232:280],
         "mrownerconfig": b[280:328], "report_data": b[520:584]}
    if ver == 5 and int.from_bytes(q[48:50], "little") == 3:
        f["tee_tcb_svn2"] = b[584:600]
        f["mrservicetd"] = b[600:648]
    rtmr = [b[328 + 48 * i:376 + 48 * i].hex() for i in range(4)]
    return {k: v.hex() for k, v in f.items()}, rtmr


@pytest.mark.parametrize("name", list(SETS))
def test_real_set_outcome_and_fields(name):
    now, opts, want = SETS[name]
    d = DQ / name
    p, out = verify("--quote", d / "quote.bin", "--collateral", d, "--now", now, *opts)
    fields, rtmr = td_fields((d / "quote.bin").read_bytes())
    assert out["tee"] == "TDX"
    for k, v in fields.items():
        assert out["td"][k] == v, (k, out["td"][k], v)
    assert out["td"]["rtmr"] == rtmr
    attr = int.from_bytes(bytes.fromhex(fields["td_attributes"]), "little")
    dec = out["td"]["td_attributes_decoded"]
    assert dec["debug"] == bool(attr & 1) and dec["sept_ve_disable"] == bool(attr >> 28 & 1)
    if isinstance(want, tuple):
        assert p.returncode == 1 and out["error"]["step"] == want[0], p.stdout
        assert want[1] in out["error"]["message"]
        for s in ("pck-chain", "crl", "qe-report", "qe-binding", "quote-signature"):
            assert out["steps"][s] == "ok", s
        return
    assert p.returncode == 0, p.stdout + p.stderr
    assert out["ok"] is True and out["tcb_status"] == want
    # text output carries the same fields
    t = mse("verify", "--quote", d / "quote.bin", "--collateral", d, "--now", now, *opts)
    assert t.returncode == 0 and f"mrtd:         {fields['mrtd']}" in t.stdout
    assert f"tcb status:   {want}" in t.stdout and "td_attributes:" in t.stdout


# Without the option each set needs: refused, at the step that names it.
DEFAULT_REFUSALS = [
    ("tdx4-oasis", ["--now", "2024-09-02T07:43:52Z"], "crl", "--allow-missing-crl"),
    ("tdx5-oe-relaunch", ["--now", "2025-03-01"], "tcb-status", "--accept-tcb-status TDRelaunchAdvised"),
    ("tdx5-oe-outofdate", ["--now", "2026-06-20", "--accept-tcb-status", "OutOfDate"],
     "td-attributes", "--allow-service-td"),
    ("tdx5-oe-outofdate", ["--now", "2026-06-20", "--allow-service-td"], "tcb-status",
     "--accept-tcb-status OutOfDate"),
    ("tdx4-dcapqvl", [], "tcb-info", "--accept-expired-collateral"),
]


@pytest.mark.parametrize("name,args,step,hint", DEFAULT_REFUSALS,
                         ids=[f"{c[0]}-{c[2]}" for c in DEFAULT_REFUSALS])
def test_default_policy_refuses_named(name, args, step, hint):
    d = DQ / name
    p, out = verify("--quote", d / "quote.bin", "--collateral", d, *args)
    assert p.returncode == 1 and out["error"]["step"] == step, p.stdout
    assert hint in out["error"]["message"], out["error"]["message"]
    # A TD policy refusal comes after Intel's verdict, which is reported.
    if step == "td-attributes":
        assert out["steps"]["tcb-status"] == "accepted" and out["tcb_status"] == "OutOfDate"


def test_strict_refuses_oasis_trailing():
    d = DQ / "tdx4-oasis"
    p, out = verify("--quote", d / "negative" / "quote_trailing.bin", "--collateral", d,
                    "--now", "2024-09-02T07:43:52Z", "--allow-missing-crl", "--strict")
    assert p.returncode == 1 and out["error"]["step"] == "parse"
    assert "trailing" in out["error"]["message"]


def test_td_policy_options_on_a_real_quote():
    d = DQ / "tdx4-dcapqvl"
    fields, rtmr = td_fields((d / "quote.bin").read_bytes())
    base = ["--quote", d / "quote.bin", "--collateral", d, "--now", "2025-07-19T10:00:34Z"]
    good = ["--mrtd", fields["mrtd"], "--rtmr", f"0={rtmr[0]}", "--rtmr", f"3={rtmr[3]}",
            "--mrconfigid", fields["mrconfigid"], "--mrowner", fields["mrowner"],
            "--mrseam", fields["mrseam"]]
    p, out = verify(*base, *good)
    assert p.returncode == 0 and out["steps"]["measurement"] == "ok", p.stdout
    for i, opt in enumerate(good):
        if not isinstance(opt, str) or opt.startswith("--"):
            continue
        bad = list(good)
        v = opt.split("=", 1)
        val = v[-1]
        val = ("0" if val[0] != "0" else "1") + val[1:]
        bad[i] = f"{v[0]}={val}" if len(v) == 2 else val
        p, out = verify(*base, *bad)
        field = good[i - 1][2:] if len(v) == 1 else f"rtmr{v[0]}"
        assert p.returncode == 1 and out["error"]["step"] == "measurement", (opt, p.stdout)
        assert out["error"]["field"] == field
    p = mse("verify", *base, "--rtmr", "4=00")
    assert p.returncode == 2
    p = mse("verify", *base, "--mrtd", "00")
    assert p.returncode == 2 and "96 hex digits" in p.stderr


# ---- simulation --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("tdxsim")
    env = dict(os.environ, MSE_SIM_DIR=str(root / "sim"), HOME=str(root))
    assert mse("sim", "init", env=env).returncode == 0
    p = mse("sim", "tdx-collateral", "--out", root / "coll", env=env)
    assert p.returncode == 0, p.stderr
    return root, env


def svn(*b):
    return bytes(b + (0,) * (16 - len(b))).hex()


def sim_verify(sim, quote_args, verify_args=(), version=4):
    root, env = sim
    q = root / "q.bin"
    p = mse("sim", "tdx-quote", "--out", q, "--quote-version", version, *quote_args, env=env)
    assert p.returncode == 0, p.stderr
    return verify("--quote", q, "--collateral", root / "coll", "--allow-simulation",
                  *verify_args, env=env)


@pytest.mark.parametrize("tee_svn,status,module", [
    (svn(5, 1, 10), "UpToDate", "UpToDate"),
    (svn(5, 1, 9), "SWHardeningNeeded", "UpToDate"),
    (svn(5, 1, 8), "ConfigurationNeeded", "UpToDate"),
    (svn(5, 1, 7), "ConfigurationAndSWHardeningNeeded", "UpToDate"),
    (svn(5, 1, 6), "OutOfDate", "UpToDate"),
    (svn(5, 1, 5), "OutOfDateConfigurationNeeded", "UpToDate"),
    (svn(5, 1, 4), "Revoked", "UpToDate"),
    # module TDX_01 OutOfDate merged into the TDX level's status (QVL's rule)
    (svn(3, 1, 10), "OutOfDate", "OutOfDate"),
    (svn(3, 1, 9), "OutOfDate", "OutOfDate"),
    (svn(3, 1, 8), "OutOfDateConfigurationNeeded", "OutOfDate"),
    (svn(1, 1, 10), "Revoked", "Revoked"),
    # major version 0: the base tdxModule, bytes 0-1 matched against the levels
    (svn(2, 0, 10), "UpToDate", "UpToDate"),
    # major version 10: identity "TDX_0A" (hex, upper case)
    (svn(0, 10, 10), "UpToDate", "UpToDate"),
])
def test_sim_every_status(sim, tee_svn, status, module):
    p, out = sim_verify(sim, ["--tee-tcb-svn", tee_svn], ["--accept-tcb-status", ALL])
    assert p.returncode == 0, p.stdout + p.stderr
    assert out["simulation"] is True and out["tcb_status"] == status
    assert out["tdx_module_tcb_status"] == module
    p, out = sim_verify(sim, ["--tee-tcb-svn", tee_svn])
    assert (p.returncode == 0) == (status == "UpToDate")
    if status != "UpToDate":
        assert out["error"]["step"] == "tcb-status" and status in out["error"]["message"]


@pytest.mark.parametrize("args,step,text", [
    (["--tee-tcb-svn", svn(5, 1, 3)], "tcb-level", "TCB level not supported"),
    (["--tee-tcb-svn", svn(1, 0, 10)], "tcb-level", "TCB level not supported"),
    (["--tee-tcb-svn", svn(0, 1, 10)], "tdx-module", "TCB level not supported"),
    (["--tee-tcb-svn", svn(5, 2, 10)], "tdx-module", "TDX_02"),
    (["--mrsignerseam", "01" * 48], "tdx-module", "mrsignerseam"),
    (["--seam-attributes", "0100000000000000"], "tdx-module", "seam_attributes"),
])
def test_sim_module_and_level_failures(sim, args, step, text):
    p, out = sim_verify(sim, args, ["--accept-tcb-status", ALL])
    assert p.returncode == 1 and out["error"]["step"] == step, p.stdout
    assert text in out["error"]["message"]


@pytest.mark.parametrize("td,svn2,status", [
    (svn(3, 1, 10), svn(5, 1, 10), "TDRelaunchAdvised"),
    (svn(3, 1, 8), svn(5, 1, 10), "TDRelaunchAdvisedConfigurationNeeded"),
    (svn(3, 1, 10), svn(4, 1, 10), "OutOfDate"),        # relaunch would not reach the latest
    (svn(3, 1, 10), svn(5, 1, 9), "OutOfDate"),         # late microcode below the latest level
    (svn(5, 1, 6), svn(5, 1, 10), "OutOfDate"),          # module current: not a relaunch case
    (svn(3, 1, 10), svn(2, 0, 10), "TDRelaunchAdvised"),  # module major 0 after relaunch
])
def test_sim_td_relaunch(sim, td, svn2, status):
    p, out = sim_verify(sim, ["--td15", "--tee-tcb-svn", td, "--tee-tcb-svn2", svn2],
                        ["--accept-tcb-status", ALL], version=5)
    assert p.returncode == 0, p.stdout
    assert out["tcb_status"] == status and out["body"] == "TD report 1.5"
    # TD report 1.0 in a v5 quote: no relaunch rule
    p, out = sim_verify(sim, ["--tee-tcb-svn", td], ["--accept-tcb-status", ALL], version=5)
    assert p.returncode == 0 and out["body"] == "TD report 1.0"
    assert not out["tcb_status"].startswith("TDRelaunch")


@pytest.mark.parametrize("quote_args,verify_args,step,field", [
    (["--td-attributes", "0100001000000000"], [], "td-attributes", "td_attributes.DEBUG"),
    (["--td-attributes", "0000000000000000"], [], "td-attributes", "td_attributes.SEPT_VE_DISABLE"),
    (["--td15", "--mrservicetd", "ab" * 48], [], "td-attributes", "mr_service_td"),
    ([], ["--mrtd", "00" * 48], "measurement", "mrtd"),
    ([], ["--rtmr", "1=" + "00" * 48], "measurement", "rtmr1"),
    ([], ["--mrconfigid", "11" * 48], "measurement", "mrconfigid"),
    ([], ["--mrowner", "11" * 48], "measurement", "mrowner"),
    ([], ["--mrseam", "11" * 48], "measurement", "mrseam"),
    ([], ["--mrenclave", "00" * 32], "measurement", "mrenclave"),
])
def test_sim_policy_failures(sim, quote_args, verify_args, step, field):
    version = 5 if "--td15" in quote_args else 4
    p, out = sim_verify(sim, quote_args, verify_args, version=version)
    assert p.returncode == 1 and out["error"]["step"] == step, p.stdout
    assert out["error"]["field"] == field
    # Intel's checks ran and were reported first
    assert out["steps"]["tcb-status"] == "ok" and out["tcb_status"] == "UpToDate"


@pytest.mark.parametrize("quote_args,allow", [
    (["--td-attributes", "0100001000000000"], "--allow-debug-td"),
    (["--td-attributes", "0000000000000000"], "--allow-sept-ve"),
    (["--td15", "--mrservicetd", "ab" * 48], "--allow-service-td"),
])
def test_sim_policy_allowances(sim, quote_args, allow):
    version = 5 if "--td15" in quote_args else 4
    p, out = sim_verify(sim, quote_args, [allow], version=version)
    assert p.returncode == 0, p.stdout
    assert out["steps"]["td-attributes"] == "accepted"


def test_sim_measurements_match(sim):
    root, env = sim
    mrtd, rt2, owner = "12" * 48, "34" * 48, "56" * 48
    p, out = sim_verify(sim, ["--mrtd", mrtd, "--rtmr", f"2={rt2}", "--mrowner", owner],
                        ["--mrtd", mrtd, "--rtmr", f"2={rt2}", "--mrowner", owner])
    assert p.returncode == 0 and out["td"]["mrtd"] == mrtd and out["td"]["rtmr"][2] == rt2
    fields, _ = td_fields((root / "q.bin").read_bytes())
    assert fields["mrtd"] == mrtd and fields["mrowner"] == owner


def test_sim_quote_needs_simulation_root(sim):
    root, env = sim
    assert mse("sim", "tdx-quote", "--out", root / "q.bin", env=env).returncode == 0
    p, out = verify("--quote", root / "q.bin", "--collateral", root / "coll", env=env)
    assert p.returncode == 1 and out["error"]["step"] == "pck-chain"
    assert mse("sim", "tdx-quote", "--out", root / "q.bin", "--td15", env=env).returncode == 2
