# SPDX-License-Identifier: Apache-2.0
"""Differential test of the TOML parser against Python's tomllib.

toml-test pins the cases its authors thought of; this mutates them (deleted
bytes, inserted TOML tokens, duplicated fragments: seeded, so reproducible)
and requires build/tools/toml_decoder and tomllib — an independent TOML 1.0
implementation — to agree on every result: both reject, or both accept with
the same values. Two tomllib limitations are factored out: tomllib.loads
does not skip a leading BOM (TOML allows it), and Python's datetime cannot
hold year 0 (RFC 3339 allows 0000).
"""
import datetime
import json
import math
import os
import random
import subprocess
import tomllib

import pytest

BUILD = os.environ.get("MSE_BUILD", "build/san")
SUITE = os.path.join(os.environ.get("MSE_VECTORS", "../shared/vectors"), "toml-test")
DECODER = os.path.join(BUILD, "tools", "toml_decoder")
TOKENS = [b"[", b"]", b"{", b"}", b",", b"=", b".", b'"', b"'", b"\n", b" ", b"#", b"\\", b"_",
          b"0", b"1", b"e", b"-", b"+", b":", b"T", b"Z", b"a", b'"""', b"'''", b"[[", b"]]",
          b"\r\n", b"\t", b"inf", b"nan", b"0x", b"1979-05-27", b"07:32:00"]


def mutate(rng, d):
    d = bytearray(d)
    for _ in range(rng.randint(1, 3)):
        op, i = rng.random(), rng.randint(0, len(d))
        if op < 0.4 and d:
            del d[i:i + rng.randint(1, 3)]
        elif op < 0.8:
            d[i:i] = rng.choice(TOKENS)
        else:
            j = rng.randint(0, len(d))
            d[i:i] = d[j:j + rng.randint(1, 20)]
    return bytes(d)


def utc(d):
    return d.astimezone(datetime.timezone.utc).replace(tzinfo=None).isoformat()


def from_python(v):
    if isinstance(v, dict):
        return {k: from_python(x) for k, x in v.items()}
    if isinstance(v, list):
        return [from_python(x) for x in v]
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int):
        return ("integer", v)
    if isinstance(v, float):
        return ("float", "nan" if math.isnan(v) else v)
    if isinstance(v, str):
        return ("string", v)
    if isinstance(v, datetime.datetime):
        return ("datetime", utc(v)) if v.tzinfo else ("datetime-local", v.isoformat())
    if isinstance(v, datetime.date):
        return ("date-local", v.isoformat())
    if isinstance(v, datetime.time):
        return ("time-local", v.isoformat())
    raise TypeError(v)


def from_tagged(v):
    if isinstance(v, dict) and set(v) == {"type", "value"} and isinstance(v["value"], str):
        t, s = v["type"], v["value"]
        conv = {
            "bool": lambda: s == "true",
            "integer": lambda: int(s),
            "float": lambda: "nan" if math.isnan(float(s)) else float(s),
            "string": lambda: s,
            # tomllib keeps microseconds: compare at that precision
            "datetime": lambda: utc(datetime.datetime.fromisoformat(_us(s))),
            "datetime-local": lambda: datetime.datetime.fromisoformat(_us(s)).isoformat(),
            "date-local": lambda: datetime.date.fromisoformat(s).isoformat(),
            "time-local": lambda: datetime.time.fromisoformat(_us(s)).isoformat(),
        }
        return (t, conv[t]())
    if isinstance(v, dict):
        return {k: from_tagged(x) for k, x in v.items()}
    return [from_tagged(x) for x in v]


def _us(s):
    """Truncates a fraction to microseconds, keeping any offset; Z -> +00:00."""
    s = s.replace("Z", "+00:00")
    if "." not in s:
        return s
    head, rest = s.split(".", 1)
    digits = "".join(c for c in rest if c.isdigit())
    tail = rest[len(digits):]
    return f"{head}.{(digits + '000000')[:6]}{tail}"


@pytest.mark.skipif(not os.path.exists(DECODER), reason="toml_decoder not built")
def test_decoder_agrees_with_tomllib_on_mutated_documents(tmp_path):
    with open(os.path.join(SUITE, "files-toml-1.0.0")) as f:
        names = [l.strip() for l in f if l.strip().endswith(".toml")]
    seeds = [open(os.path.join(SUITE, n), "rb").read() for n in names]
    rng = random.Random(20261124)
    paths = []
    for k in range(3000):
        p = tmp_path / f"{k}.toml"
        p.write_bytes(mutate(rng, rng.choice(seeds)))
        paths.append(str(p))
    out = subprocess.run([DECODER, "--batch", *paths], capture_output=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.decode().splitlines()
    assert len(lines) == len(paths)
    problems, compared = [], 0
    for path, line in zip(paths, lines):
        ours = json.loads(line)
        data = open(path, "rb").read()
        try:
            text = data.decode("utf-8").removeprefix("\ufeff")
            ref, ref_ok = tomllib.loads(text), True
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            ref_ok, ref_err = False, str(e)
            if "0000-" in text and "date" in ref_err:
                continue  # year 0: valid RFC 3339, not representable in Python
        if ("value" in ours) != ref_ok:
            who = "decoder" if ref_ok is False else "tomllib"
            problems.append(f"{path}: only {who} accepts: "
                            f"{ours.get('error') or ref_err} :: {data[:120]!r}")
        elif ref_ok:
            compared += 1
            if from_python(ref) != from_tagged(ours["value"]):
                problems.append(f"{path}: values differ :: {data[:120]!r}")
    assert compared > 250  # the mutations leave plenty of valid documents (312 with this seed)
    assert not problems, f"{len(problems)} disagreements:\n" + "\n".join(problems[:20])
