# SPDX-License-Identifier: Apache-2.0
"""Everything the suite relies on is installed by scripts/deps.sh.

CI runs on a machine where people installed things by hand, so a test that
passes here can still fail the first `make check` on a fresh machine. This
finds, with dpkg's own database, the Debian package behind every Python module
the tests import and every program they run by name, and checks that it is in
the closure (Depends, Pre-Depends) of the packages deps.sh installs by default.
"""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("MSE_ROOT", Path(__file__).resolve().parents[2]))
E2E = ROOT / "tests" / "e2e"

if not shutil.which("dpkg-query"):
    pytest.skip("not a Debian system", allow_module_level=True)


def deps_packages():
    text = (ROOT / "scripts" / "deps.sh").read_text()
    m = re.search(r'^PKGS="([^"]*)"', text, re.M)
    assert m, "scripts/deps.sh: no PKGS=\"...\" list"
    return set(m.group(1).split())


def installed_closure(roots):
    """Installed packages reachable from roots through Depends/Pre-Depends."""
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Provides}\t${Depends}, ${Pre-Depends}\n"],
                         capture_output=True, text=True, check=True).stdout
    deps, provides = {}, {}
    for line in out.splitlines():
        name, prov, dep = (line.split("\t") + ["", ""])[:3]
        deps[name] = dep
        for p in filter(None, (x.strip().split(" ")[0] for x in prov.split(","))):
            provides.setdefault(p, []).append(name)
    essential = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Essential}\n"],
                               capture_output=True, text=True, check=True).stdout
    # Essential packages are on every Debian system (coreutils, tar, ...).
    seen, todo = set(), [r for r in roots if r in deps]
    todo += [line.split("\t")[0] for line in essential.splitlines() if line.endswith("\tyes")]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for clause in deps.get(p, "").split(","):
            for alt in clause.split("|"):
                n = alt.strip().split(" ")[0].split(":")[0]
                cands = ([n] if n in deps else []) + provides.get(n, [])
                if cands:
                    todo.extend(cands)
    return seen


def owner(path):
    """The package that ships path (merged /usr: dpkg may know it as /bin/...)."""
    cands = [path, os.path.realpath(path)]
    cands += [c.replace("/usr/", "/", 1) for c in cands if c.startswith(("/usr/bin/", "/usr/sbin/", "/usr/lib/"))]
    for c in cands:
        p = subprocess.run(["dpkg-query", "-S", c], capture_output=True, text=True)
        if p.returncode == 0:
            return p.stdout.split(":")[0].split(",")[0].strip()
    return None


def _source_files():
    return sorted(E2E.glob("test_*.py")) + sorted(p for p in E2E.glob("*.py") if not p.name.startswith("test_"))


def imported_modules():
    local = {p.stem for d in ("tests", "bench", "scripts") for p in (ROOT / d).rglob("*.py")}
    mods = {}
    for f in _source_files():
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                top = n.split(".")[0]
                if top not in local and top not in sys.builtin_module_names:
                    mods.setdefault(top, f.name)
    return mods


def programs():
    progs = {}
    call = re.compile(r'subprocess\.\w+\(\s*\[\s*"([^"$/{][^"]*)"')
    which = re.compile(r'shutil\.which\(\s*"([^"]+)"\s*\)')  # not which(x, path=...): a stub
    for f in _source_files():
        text = f.read_text()
        for rx in (call, which):
            for name in rx.findall(text):
                progs.setdefault(name, f.name)
    return progs


def test_python_modules_the_tests_import_come_from_deps_sh():
    closure = installed_closure(deps_packages())
    py = "/usr/bin/python3"
    missing = []
    for mod, where in sorted(imported_modules().items()):
        origin = subprocess.run([py, "-c", "import importlib.util,sys;s=importlib.util.find_spec(sys.argv[1]);"
                                 "print(s.origin if s and s.origin else (list(s.submodule_search_locations)[0] if s else ''))",
                                 mod], capture_output=True, text=True).stdout.strip()
        if origin in ("", "built-in", "frozen"):
            if not origin:
                missing.append(f"{mod} (imported by {where}): not importable by {py}")
            continue
        pkg = owner(origin)
        if pkg is None:
            missing.append(f"{mod} (imported by {where}): {origin} belongs to no Debian package")
        elif pkg not in closure:
            missing.append(f"{mod} (imported by {where}): package {pkg} is not installed by scripts/deps.sh")
    assert not missing, "\n".join(missing)


def test_programs_the_tests_run_come_from_deps_sh():
    closure = installed_closure(deps_packages())
    missing = []
    for prog, where in sorted(programs().items()):
        path = shutil.which(prog)
        if path is None:
            missing.append(f"{prog} (run by {where}): not installed")
            continue
        pkg = owner(path)
        if pkg is None:
            missing.append(f"{prog} (run by {where}): {path} belongs to no Debian package")
        elif pkg not in closure:
            missing.append(f"{prog} (run by {where}): package {pkg} is not installed by scripts/deps.sh")
    assert not missing, "\n".join(missing)


def test_the_closure_check_can_fail():
    # A package surely outside deps.sh's closure is reported as outside.
    assert "lintian" not in installed_closure(deps_packages()) or "lintian" in deps_packages()
    assert "python3-flask" in installed_closure({"python3-flask"})
