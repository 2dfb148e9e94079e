# SPDX-License-Identifier: Apache-2.0
"""Numeric options: every binary reads them with one rule (common/num.c).

A value that is not a plain decimal number in the option's range is a usage
error (exit 2) naming the option and the range; Python's own reading of the
same text (int() with a sign, spaces and overflow allowed) is what the old
per-command parsers let through and this must refuse.
"""

import os
import subprocess

import pytest

BUILD = os.environ.get("MSE_BUILD", "build/san")
MSE = os.path.join(BUILD, "mse")
BOOTSTRAP = os.path.join(BUILD, "mse-bootstrap")

# (argv before the value, option, min, max, argv after the value)
CASES = [
    (["deploy", "--port"], "--port", 1, 65535, []),
    (["deploy", "--replicas"], "--replicas", 1, 64, []),
    (["deploy", "--size"], "--size", 1, 1 << 20, []),
    (["localtest", "--timeout"], "--timeout", 1, 3600, []),
    (["spawn", "--days"], "--days", 1, 3650, ["x"]),
    (["spawn", "--request-timeout"], "--request-timeout", 1, 86400, ["x"]),
    (["logs", "--lines"], "--lines", 0, 1 << 30, ["x"]),
    (["run", "--timeout"], "--timeout", 1, 86400, ["x"]),
    (["restart", "--timeout"], "--timeout", 1, 3600, ["x"]),
]

BAD = ["", "-1", "+1", " 1", "1x", "0x10", "1e3", "99999999999999999999999"]


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, HOME=os.environ.get("HOME", "/tmp")))


@pytest.mark.parametrize("pre,opt,lo,hi,post", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_out_of_range_and_malformed_are_usage_errors(pre, opt, lo, hi, post):
    for value in BAD + [str(hi + 1)] + ([str(lo - 1)] if lo > 0 else []):
        p = run([MSE, *pre, value, *post])
        assert p.returncode == 2, (value, p.stdout, p.stderr)
        assert f"{opt}: expected a number in {lo}..{hi}, got '{value}'" in p.stderr, (value, p.stderr)


@pytest.mark.parametrize("pre,opt,lo,hi,post", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bounds_are_accepted(pre, opt, lo, hi, post):
    # The value parses: whatever fails next is not the number (no usage error naming it).
    for value in (str(lo), str(hi)):
        p = run([MSE, *pre, value, *post, "--help"])
        assert p.returncode == 0, (value, p.stderr)


def test_bootstrap_refuses_a_signed_port():
    p = run([BOOTSTRAP, "--port", "+443"])
    assert p.returncode == 2 and "--port" in p.stderr, p.stderr
