# SPDX-License-Identifier: Apache-2.0
"""The include rule of docs/architecture.md, read from the #include lines.

Shared layers, lowest first: common < config, net < crypto < attest. A layer
includes only itself and lower layers. Above them, one folder per actor:
enclave/ (and any enclave-side folder added later, e.g. a coordinator, listed
in ENCLAVE_LIKE) includes only the shared layers and itself; operator/ adds
nothing above the shared layers but itself; codeprovider/ may use operator/
(deploy starts a local instance); cli/ may use everything. A folder under
src/ that the rule does not know fails the test: whoever adds one decides
where it sits here and in docs/architecture.md.

mse-bootstrap is linked from the shared layers and enclave/ only: no symbol
defined in operator/, codeprovider/, coordinator/ or cli/ objects may be in it
(nm); mse-coordinator likewise from the shared layers and coordinator/ only.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("MSE_ROOT", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("MSE_BUILD", ROOT / "build/san"))

SHARED = {"common": 0, "config": 1, "net": 1, "crypto": 2, "attest": 3}
ENCLAVE_LIKE = {"enclave", "coordinator"}
ALLOWED = {
    **{d: {"common", "config", "net", "crypto", "attest", d} for d in ENCLAVE_LIKE},
    "operator": {"common", "config", "net", "crypto", "attest", "operator"},
    "codeprovider": {"common", "config", "net", "crypto", "attest", "operator", "codeprovider"},
}
CLI = "cli"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"')


def allowed(src, dst):
    if src in SHARED:
        return dst in SHARED and SHARED[dst] <= SHARED[src] and (dst == src or SHARED[dst] < SHARED[src])
    if src in ALLOWED:
        return dst in ALLOWED[src]
    if src == CLI:
        return True
    return None  # unknown folder


def violations(src_root):
    """Every forbidden or unknown include, as 'file:line: message'."""
    out = []
    for path in sorted(src_root.rglob("*")):
        if path.suffix not in (".c", ".h", ".def") or not path.is_file():
            continue
        folder = path.relative_to(src_root).parts[0]
        if allowed(folder, folder) is None:
            out.append(f"{path}:1: folder src/{folder}/ is not in the include rule "
                       f"(add it to tests/e2e/test_layers.py and docs/architecture.md)")
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            dst = m.group(1)
            ok = allowed(folder, dst)
            if not ok:
                out.append(f"{path}:{n}: src/{folder}/ may not include \"{dst}/…\": {line.strip()}")
    return out


def test_tree_follows_the_rule():
    v = violations(ROOT / "src")
    assert not v, "\n".join(v)


def test_rule_catches_a_forbidden_include(tmp_path):
    """The checker itself: a planted upward include is named with file and line."""
    for d, text in {
        "attest/a.c": '#include "attest/b.h"\n#include "crypto/c.h"\n',
        "crypto/c.c": '#include "common/x.h"\n\n#include "attest/ratls.h"\n',
        "enclave/e.c": '#include "operator/instance.h"\n',
        "operator/o.c": '#include "codeprovider/deploy.h"\n',
        "net/n.c": '#include "config/toml.h"\n',
        "kube/k.c": '#include "common/x.h"\n',
        "coordinator/c.c": '#include "enclave/replica.h"\n',
        "cli/m.c": '#include "codeprovider/deploy.h"\n#include "enclave/wsgi.h"\n',
    }.items():
        p = tmp_path / d
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    v = violations(tmp_path)
    joined = "\n".join(v)
    assert f"{tmp_path}/crypto/c.c:3: src/crypto/ may not include \"attest/…\"" in joined
    assert f"{tmp_path}/enclave/e.c:1: src/enclave/ may not include \"operator/…\"" in joined
    assert f"{tmp_path}/operator/o.c:1: src/operator/ may not include \"codeprovider/…\"" in joined
    assert f"{tmp_path}/net/n.c:1: src/net/ may not include \"config/…\"" in joined
    assert "folder src/kube/ is not in the include rule" in joined
    assert f"{tmp_path}/coordinator/c.c:1: src/coordinator/ may not include \"enclave/…\"" in joined
    assert len(v) == 6, joined  # attest -> crypto and cli -> anything are allowed


def defined_symbols(obj):
    r = subprocess.run(["nm", "--defined-only", "-g", str(obj)], capture_output=True, text=True,
                       check=True)
    return {line.split()[-1] for line in r.stdout.splitlines() if len(line.split()) == 3}


@pytest.mark.parametrize("binary,own,others", [
    ("mse-bootstrap", "mse_bootstrap_", ("operator", "codeprovider", "coordinator", "cli")),
    ("mse-coordinator", "mse_coord_", ("operator", "codeprovider", "enclave", "cli")),
])
def test_enclave_binaries_hold_only_their_code(binary, own, others):
    boot = BUILD / binary
    if not boot.exists():
        pytest.skip(f"{boot} not built")
    outside = {}
    for folder in others:
        objs = sorted((BUILD / "obj/src" / folder).glob("*.o"))
        assert objs, f"no objects in {BUILD}/obj/src/{folder}"
        for o in objs:
            for s in defined_symbols(o):
                if s != "main":
                    outside[s] = o.name
    assert len(outside) > 40, outside  # the check has something to look for
    r = subprocess.run(["nm", str(boot)], capture_output=True, text=True, check=True)
    in_boot = {line.split()[-1] for line in r.stdout.splitlines() if line.split()}
    leaked = sorted(f"{s} (from {outside[s]})" for s in in_boot & outside.keys())
    assert not leaked, f"in {binary}: " + ", ".join(leaked)
    # and the binary's own code is there
    assert any(s.startswith(own) for s in in_boot)
