# SPDX-License-Identifier: Apache-2.0
"""Where dcap-qvl and go-tdx-guest decide TDX quotes differently from Intel's QVL, which
mse-c follows (docs/attestation.md, "Where dcap-qvl and go-tdx-guest differ"). Each test
runs the other verifier's rule — re-implemented here in a few lines from its source (Phala
dcap-qvl `tdx_module.rs`/`verify.rs`, google/go-tdx-guest `verify/verify.go`) — next to
`mse verify` on the same input: a real set, or a simulated quote with simulated collateral
(re-signed here with the simulation's TCB signing key when a variant is needed)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ROOT = pathlib.Path(os.environ.get("MSE_ROOT", "."))
MSE = os.environ.get("MSE_BIN", "build/san/mse")
VECTORS = pathlib.Path(os.environ.get("MSE_VECTORS", "../shared/vectors"))
DQ = VECTORS / "dcap-quotes"
ALL = ("SWHardeningNeeded,ConfigurationNeeded,ConfigurationAndSWHardeningNeeded,OutOfDate,"
       "OutOfDateConfigurationNeeded,Revoked,TDRelaunchAdvised,TDRelaunchAdvisedConfigurationNeeded")

sys.path.insert(0, str(ROOT / "bench"))
import verify_ref  # noqa: E402


def mse(*args, env=None):
    return subprocess.run([MSE, *map(str, args)], capture_output=True, text=True, timeout=120,
                          env=env)


def verify(*args, env=None):
    p = mse("verify", *args, "--json", "--accept-tcb-status", ALL, env=env)
    return p.returncode, json.loads(p.stdout)


def svn(*b):
    return bytes(b + (0,) * (16 - len(b))).hex()


def tcb_info_of(d):
    return json.loads((pathlib.Path(d) / "tcb_info.json").read_text())["tcbInfo"]


def td_of(quote):
    return verify_ref.parse_quote(quote)["td"]


def pck_of(quote):
    q = verify_ref.parse_quote(quote)
    leaf = verify_ref.load_pem_chain(q["pck_chain_pem"], "PCK chain")[0]
    ext = verify_ref.parse_sgx_ext(leaf)
    return ext["tcb_comps"], ext["pcesvn"]


# ---- the other verifiers' rules -------------------------------------------------------

def gotdx_tcb_level(tcb_info, quote):
    """go-tdx-guest getMatchingTcbLevel + checkTcbInfoTcbStatus: all 16 TEE_TCB_SVN bytes,
    then tdxtcbcomponents[1] must equal TEE_TCB_SVN[1], then the status must be UpToDate."""
    comps, pcesvn = pck_of(quote)
    svn_ = td_of(quote)["tee_tcb_svn"]
    for lv in tcb_info["tcbLevels"]:
        sgx = [c["svn"] for c in lv["tcb"]["sgxtcbcomponents"]]
        tdx = [c["svn"] for c in lv["tcb"]["tdxtcbcomponents"]]
        if all(comps[i] >= sgx[i] for i in range(16)) and pcesvn >= lv["tcb"]["pcesvn"] and \
                all(svn_[i] >= tdx[i] for i in range(16)):
            if tdx[1] != svn_[1]:
                return "error: SVN at index 1 differs"
            return lv["tcbStatus"] if lv["tcbStatus"] == "UpToDate" else "error: not UpToDate"
    return "error: no matching TCB level"


def dcapqvl_module(tcb_info, td):
    """dcap-qvl verify_tdx_module: identity TDX_{:02x} looked up for every version, exact id
    compare, attributes compared without the mask."""
    version, isvsvn = td["tee_tcb_svn"][1], td["tee_tcb_svn"][0]
    ident = next((m for m in tcb_info.get("tdxModuleIdentities") or []
                  if m["id"] == f"TDX_{version:02x}"), None)
    if ident is None:
        return "error: no tdx module identity"
    base = ident if version > 0 else tcb_info["tdxModule"]
    if bytes.fromhex(base["mrsigner"]) != td["mrsignerseam"]:
        return "error: mrsigner"
    if bytes.fromhex(base["attributes"]) != td["seam_attributes"]:
        return "error: attributes"
    lv = next((l for l in ident["tcbLevels"] if isvsvn >= l["tcb"]["isvsvn"]), None)
    return lv["tcbStatus"] if lv else "error: no level"


def dcapqvl_relaunch_applies(qe, sgx, tdx, module):
    """dcap-qvl check_for_relaunch's precondition."""
    ood = ("OutOfDate", "OutOfDateConfigurationNeeded")
    return qe not in ood and sgx not in ood and tdx in ood and module in ood


def qvl_relaunch_applies(qe, sgx, tdx, module):
    """Intel QVL checkForRelaunch's precondition (what mse-c does)."""
    return qe not in ("OutOfDate", "Revoked") and sgx in (
        "UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
        "ConfigurationAndSWHardeningNeeded") and \
        tdx in ("OutOfDate", "OutOfDateConfigurationNeeded") and module == "OutOfDate"


# ---- 1, 7: go-tdx-guest on the real sets -----------------------------------------------

@pytest.mark.parametrize("name,now,opts", [
    ("tdx4-dcapqvl", "2025-07-19T10:00:34Z", []),
    ("tdx4-oasis", "2024-09-02T07:43:52Z", ["--allow-missing-crl"]),
])
def test_gotdx_refuses_versioned_modules_that_qvl_accepts(name, now, opts):
    d = DQ / name
    quote = (d / "quote.bin").read_bytes()
    assert td_of(quote)["tee_tcb_svn"][1] == 1  # a versioned TDX module
    assert gotdx_tcb_level(tcb_info_of(d), quote) == "error: SVN at index 1 differs"
    rc, out = verify("--quote", d / "quote.bin", "--collateral", d, "--now", now, *opts)
    assert rc == 0 and out["tcb_status"] == "UpToDate" and out["tdx_module"] == "TDX_01"


def test_gotdx_and_qvl_agree_on_not_supported():
    d = DQ / "tdx4-gotdx-notsupported"
    quote = (d / "quote.bin").read_bytes()
    assert gotdx_tcb_level(tcb_info_of(d), quote) == "error: no matching TCB level"
    rc, out = verify("--quote", d / "quote.bin", "--collateral", d, "--now",
                     "2023-07-01T01:00:00Z", "--allow-sept-ve")
    assert rc == 1 and out["error"]["step"] == "tcb-level"


def test_gotdx_makes_any_status_but_uptodate_an_error():
    d = DQ / "tdx5-oe-outofdate"
    rc, out = verify("--quote", d / "quote.bin", "--collateral", d, "--now", "2026-06-20",
                     "--allow-service-td")
    assert rc == 0 and out["tcb_status"] == "OutOfDate" and len(out["advisories"]) == 16


# ---- 2, 3, 4, 6: dcap-qvl, on simulated quotes --------------------------------------------

@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("tdxdiv")
    env = dict(os.environ, MSE_SIM_DIR=str(root / "sim"), HOME=str(root))
    assert mse("sim", "init", env=env).returncode == 0
    assert mse("sim", "tdx-collateral", "--out", root / "coll", env=env).returncode == 0
    return root, env


def sim_quote(sim, *args, version=4):
    root, env = sim
    q = root / "q.bin"
    assert mse("sim", "tdx-quote", "--out", q, "--quote-version", version, *args,
               env=env).returncode == 0
    return q


def resign(sim, name, change):
    """A copy of the simulated collateral whose TCB info is changed, then signed again with
    the simulation's TCB signing key (ECDSA P-256 over the exact tcbInfo text)."""
    root, env = sim
    d = root / name
    d.mkdir(exist_ok=True)
    for f in (root / "coll").iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    info = tcb_info_of(root / "coll")
    change(info)
    text = json.dumps(info, separators=(",", ":"))
    key = serialization.load_pem_private_key(
        (root / "sim" / "keys" / "tcb_signing.key.pem").read_bytes(), None)
    r, s = decode_dss_signature(key.sign(text.encode(), ec.ECDSA(hashes.SHA256())))
    sig = (r.to_bytes(32, "big") + s.to_bytes(32, "big")).hex()
    (d / "tcb_info.json").write_text('{"tcbInfo":%s,"signature":"%s"}' % (text, sig))
    return d


def test_dcapqvl_needs_an_identity_for_module_version_0(sim):
    root, env = sim
    q = sim_quote(sim, "--tee-tcb-svn", svn(2, 0, 10))
    info = tcb_info_of(root / "coll")
    assert not any(m["id"] == "TDX_00" for m in info["tdxModuleIdentities"])
    assert dcapqvl_module(info, td_of(q.read_bytes())) == "error: no tdx module identity"
    rc, out = verify("--quote", q, "--collateral", root / "coll", "--allow-simulation", env=env)
    assert rc == 0 and out["tdx_module"] == "tdxModule" and out["tcb_status"] == "UpToDate"


def test_dcapqvl_lower_case_identity_ids(sim):
    root, env = sim
    q = sim_quote(sim, "--tee-tcb-svn", svn(0, 10, 10))
    info = tcb_info_of(root / "coll")
    assert dcapqvl_module(info, td_of(q.read_bytes())) == "error: no tdx module identity"
    rc, out = verify("--quote", q, "--collateral", root / "coll", "--allow-simulation", env=env)
    assert rc == 0 and out["tdx_module"] == "TDX_0A"


def test_dcapqvl_compares_seam_attributes_unmasked(sim):
    root, env = sim

    def mask(info):
        for m in info["tdxModuleIdentities"]:
            m["attributesMask"] = "FEFFFFFFFFFFFFFF"  # bit 0 of byte 0 ignored
    d = resign(sim, "masked", mask)
    q = sim_quote(sim, "--seam-attributes", "0100000000000000")
    assert dcapqvl_module(tcb_info_of(d), td_of(q.read_bytes())) == "error: attributes"
    rc, out = verify("--quote", q, "--collateral", d, "--allow-simulation", env=env)
    assert rc == 0 and out["tdx_module_tcb_status"] == "UpToDate"
    # the reference (QVL's rule, independently written) agrees with mse-c
    (d / "quote.bin").write_bytes(q.read_bytes())
    inp = verify_ref.inputs_from_dir(str(d / "quote.bin"), str(d))
    verify_ref.SIM["root"] = __import__("hashlib").sha256(
        (root / "sim" / "root_ca.der").read_bytes()).hexdigest()
    try:
        r = verify_ref.verify(inp, verify_ref.parse_time(out["now"]))
    finally:
        verify_ref.SIM["root"] = None
    assert r["ok"] and r["module_status"] == "UpToDate"
    # and a bit the mask keeps is still refused
    q = sim_quote(sim, "--seam-attributes", "0200000000000000")
    rc, out = verify("--quote", q, "--collateral", d, "--allow-simulation", env=env)
    assert rc == 1 and out["error"]["step"] == "tdx-module"


def test_dcapqvl_relaunches_a_revoked_sgx_level(sim):
    """A newest level (TDX late microcode 11) whose SGX part is Revoked: QVL (mse-c) never
    advises a relaunch for a revoked SGX TCB; dcap-qvl's precondition would."""
    root, env = sim

    def revoked_top(info):
        top = json.loads(json.dumps(info["tcbLevels"][0]))
        top["tcb"]["tdxtcbcomponents"][2]["svn"] = 11
        top["tcbStatus"] = "Revoked"
        info["tcbLevels"][0]["tcbStatus"] = "OutOfDate"
        info["tcbLevels"].insert(0, top)
    d = resign(sim, "revoked-top", revoked_top)
    q = sim_quote(sim, "--td15", "--tee-tcb-svn", svn(3, 1, 10), "--tee-tcb-svn2",
                  svn(5, 1, 11), version=5)
    rc, out = verify("--quote", q, "--collateral", d, "--allow-simulation", env=env)
    assert rc == 0, out
    sgx, tdx, module = out["sgx_tcb_status"], out["tdx_tcb_status"], out["tdx_module_tcb_status"]
    assert (sgx, tdx, module) == ("Revoked", "OutOfDate", "OutOfDate")
    assert not qvl_relaunch_applies("UpToDate", sgx, "OutOfDate", module)
    assert dcapqvl_relaunch_applies("UpToDate", sgx, "OutOfDate", module)
    assert out["tcb_status"] == "OutOfDate"  # dcap-qvl: TDRelaunchAdvised
