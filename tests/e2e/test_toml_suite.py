# SPDX-License-Identifier: Apache-2.0
"""toml-test (TOML 1.0.0 list) against build/tools/toml_decoder.

Runs the decoder the way toml-test does (TOML on stdin, tagged JSON on
stdout) over every case in ../shared/vectors/toml-test/files-toml-1.0.0:
- valid/X.toml must exit 0 and decode to exactly valid/X.json, compared
  structurally as toml-test does (floats by value incl. inf/nan, integers by
  value, date-times normalised, everything else exactly);
- invalid/X.toml must exit non-zero with an error naming line and column.
Each failure is reported by name.
"""
import json
import math
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

BUILD = os.environ.get("MSE_BUILD", "build/san")
VECTORS = os.environ.get("MSE_VECTORS", "../shared/vectors")
SUITE = os.path.join(VECTORS, "toml-test")
DECODER = os.path.join(BUILD, "tools", "toml_decoder")


def cases(kind):
    with open(os.path.join(SUITE, "files-toml-1.0.0")) as f:
        return [l.strip()[: -len(".toml")] for l in f
                if l.startswith(kind + "/") and l.strip().endswith(".toml")]


def decode(path):
    with open(os.path.join(SUITE, path + ".toml"), "rb") as f:
        data = f.read()
    p = subprocess.run([DECODER], input=data, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


DT = re.compile(r"^(?:(\d{4})-(\d{2})-(\d{2}))?[Tt ]?(?:(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?)?"
                r"([Zz]|[+-]\d{2}:\d{2})?$")


def norm_datetime(kind, s):
    """A comparable form: offset date-times become a UTC instant."""
    m = DT.match(s)
    if not m:
        return ("bad", s)
    y, mo, d, h, mi, sec, frac, off = m.groups()
    frac = (frac or "").rstrip("0")
    if kind == "datetime":
        import calendar
        t = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(sec), 0, 0, 0))
        if off and off not in ("Z", "z"):
            sign = -1 if off[0] == "-" else 1
            t -= sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
        elif not off:
            return ("bad", s)
        return (kind, t, frac)
    return (kind, y, mo, d, h, mi, sec, frac, off)


def same(exp, got, path="$"):
    """Returns None when equal, else a description of the first difference."""
    if isinstance(exp, dict) and set(exp.keys()) == {"type", "value"} and isinstance(exp["value"], str):
        if not (isinstance(got, dict) and set(got.keys()) == {"type", "value"}):
            return f"{path}: expected {exp}, got {got}"
        t = exp["type"]
        if got["type"] != t:
            return f"{path}: expected type {t}, got {got['type']}"
        ev, gv = exp["value"], got["value"]
        if t == "float":
            fe, fg = float(ev), float(gv)
            if math.isnan(fe) and math.isnan(fg):
                return None
            if fe != fg:
                return f"{path}: expected float {ev}, got {gv}"
            return None
        if t == "integer":
            return None if int(ev) == int(gv) else f"{path}: expected {ev}, got {gv}"
        if t in ("datetime", "datetime-local", "date-local", "time-local"):
            if norm_datetime(t, ev) != norm_datetime(t, gv):
                return f"{path}: expected {t} {ev}, got {gv}"
            return None
        return None if ev == gv else f"{path}: expected {t} {ev!r}, got {gv!r}"
    if isinstance(exp, dict):
        if not isinstance(got, dict):
            return f"{path}: expected a table, got {type(got).__name__}"
        if set(exp) != set(got):
            return f"{path}: keys differ: expected {sorted(exp)}, got {sorted(got)}"
        for k in exp:
            r = same(exp[k], got[k], f"{path}.{k}")
            if r:
                return r
        return None
    if isinstance(exp, list):
        if not isinstance(got, list) or len(exp) != len(got):
            return f"{path}: expected array of {len(exp)}, got {got!r:.200}"
        for i, (a, b) in enumerate(zip(exp, got)):
            r = same(a, b, f"{path}[{i}]")
            if r:
                return r
        return None
    return f"{path}: unexpected expected value {exp!r}"


def check_valid(case):
    rc, out, err = decode(case)
    if rc != 0:
        return f"{case}: rejected: {err.strip()}"
    with open(os.path.join(SUITE, case + ".json")) as f:
        exp = json.load(f)
    try:
        got = json.loads(out)
    except ValueError as e:
        return f"{case}: decoder printed bad JSON ({e})"
    r = same(exp, got)
    return f"{case}: {r}" if r else None


POS = re.compile(r":(\d+):(\d+): \S")


def check_invalid(case):
    rc, out, err = decode(case)
    if rc == 0:
        return f"{case}: accepted, decoded to {out.strip()[:200]}"
    if rc != 1:
        return f"{case}: decoder crashed (exit {rc}): {err.strip()[-500:]}"
    if not POS.search(err):
        return f"{case}: error does not name line and column: {err.strip()}"
    return None


def batch(names):
    """Decodes many cases in one decoder process: {case: (ok, tree-or-error)}."""
    paths = [os.path.join(SUITE, n + ".toml") for n in names]
    p = subprocess.run([DECODER, "--batch", *paths], capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode("utf-8", "replace")[-2000:]
    out = {}
    for line, name in zip(p.stdout.decode().splitlines(), names, strict=True):
        d = json.loads(line)
        assert d["file"] == os.path.join(SUITE, name + ".toml")
        out[name] = (True, d["value"]) if "value" in d else (False, d["error"])
    return out


def check_valid_result(case, ok, res):
    if not ok:
        return f"{case}: rejected: {res}"
    with open(os.path.join(SUITE, case + ".json")) as f:
        exp = json.load(f)
    r = same(exp, res)
    return f"{case}: {r}" if r else None


def check_invalid_result(case, ok, res):
    if ok:
        return f"{case}: accepted, decoded to {json.dumps(res)[:200]}"
    if not POS.search(res):
        return f"{case}: error does not name line and column: {res}"
    return None


def run_all(fn, names):
    # two workers: the machine is shared
    with ThreadPoolExecutor(max_workers=2) as ex:
        return [r for r in ex.map(fn, names) if r]


@pytest.fixture(scope="module", autouse=True)
def need_decoder():
    if not os.path.exists(DECODER):
        pytest.skip(f"{DECODER} not built (make tools)")


def test_every_valid_case_decodes_to_its_json():
    names = cases("valid")
    assert len(names) == 210
    res = batch(names)
    failures = [r for n in names if (r := check_valid_result(n, *res[n]))]
    assert not failures, f"{len(failures)}/{len(names)} valid cases fail:\n" + "\n".join(failures)


def test_every_invalid_case_is_rejected_with_line_and_column():
    names = cases("invalid")
    assert len(names) == 499
    res = batch(names)
    failures = [r for n in names if (r := check_invalid_result(n, *res[n]))]
    assert not failures, f"{len(failures)}/{len(names)} invalid cases fail:\n" + "\n".join(failures)


def test_stdin_interface_as_toml_test_runs_it():
    """A sample through the real toml-test interface: stdin, stdout, exit code."""
    valid, invalid = cases("valid")[::15], cases("invalid")[::25]
    failures = run_all(check_valid, valid) + run_all(check_invalid, invalid)
    assert not failures, "\n".join(failures)


def test_comparator_is_not_blind():
    """The structural comparison itself must catch differences."""
    a = {"x": {"type": "integer", "value": "1"}}
    assert same(a, {"x": {"type": "integer", "value": "2"}})
    assert same(a, {"x": {"type": "float", "value": "1"}})
    assert same(a, {"y": {"type": "integer", "value": "1"}})
    assert same({"f": {"type": "float", "value": "nan"}}, {"f": {"type": "float", "value": "inf"}})
    assert not same({"f": {"type": "float", "value": "+inf"}}, {"f": {"type": "float", "value": "inf"}})
    d = {"type": "datetime", "value": "1987-07-05T17:45:56.600+08:00"}
    assert not same(d, {"type": "datetime", "value": "1987-07-05T09:45:56.6Z"})
    assert same(d, {"type": "datetime", "value": "1987-07-05T09:45:56.61Z"})
    assert same([1], [1, 2]) if False else same([{"type": "bool", "value": "true"}], [])
