# SPDX-License-Identifier: Apache-2.0
"""Manual pages: every command of the dispatch table has its page, every
option its --help shows is in that page, and `mse help CMD` opens it.

Pages are read in the roff that `make` built from docs/man/*.scd (font escapes
removed, `\\-` read as `-`), so what is checked is what man shows.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("MSE_ROOT", ".")).resolve()
BUILD = Path(os.environ.get("MSE_BUILD", "build/san")).resolve()
MSE = str(BUILD / "mse")
BOOTSTRAP = str(BUILD / "mse-bootstrap")
MAN = BUILD / "man"


def commands():
    text = (ROOT / "src/cli/commands.def").read_text()
    return re.findall(r"^MSE_CMD\((\w+),", text, re.M)


def page_text(path):
    roff = path.read_text()
    roff = re.sub(r"\\f[BIRP]", "", roff)
    return roff.replace("\\-", "-").replace("\\&", "")


def help_options(argv):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    opts = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", out.stdout))
    opts |= set(re.findall(r"(?:^|[\s,(\[|])(-[a-zA-Z])\b(?!-)", out.stdout, re.M))
    return out.stdout, opts


def has(text, opt):
    return re.search(r"(?<![\w-])" + re.escape(opt) + r"(?![\w-])", text) is not None


def test_commands_found():
    assert len(commands()) >= 20
    assert "deploy" in commands() and "verify" in commands()


@pytest.mark.parametrize("cmd", commands())
def test_command_page_lists_every_option(cmd):
    page = MAN / "man1" / f"mse-{cmd}.1"
    assert page.is_file(), f"no manual page for 'mse {cmd}': add docs/man/mse-{cmd}.1.scd"
    text = page_text(page)
    assert f"mse-{cmd} - " in text, "NAME section missing"
    out, opts = help_options([MSE, cmd, "--help"])
    assert len(opts) >= 2, out
    missing = sorted(o for o in opts if not has(text, o))
    assert not missing, f"mse-{cmd}(1) does not document {missing} (shown by 'mse {cmd} --help')"


@pytest.mark.parametrize("prog", ["mse-bootstrap", "mse-coordinator"])
def test_enclave_program_page_lists_every_option(prog):
    text = page_text(MAN / "man8" / f"{prog}.8")
    _, opts = help_options([str(BUILD / prog), "--help"])
    assert len(opts) > 10
    missing = sorted(o for o in opts if not has(text, o))
    assert not missing, f"{prog}(8) does not document {missing}"


def test_mse_page_names_every_command_and_toml_page_every_key():
    text = page_text(MAN / "man1" / "mse.1")
    missing = [c for c in commands() if f"mse-{c}(1)" not in text]
    assert not missing, f"mse(1) does not list {missing}"
    toml = page_text(MAN / "man5" / "mse.toml.5")
    for key in ("name", "python_application", "healthcheck_endpoint", "tests_cmd",
                "tests_requirements", "[cloud]", "code", "tests", "docker", "project",
                "hardware", "expiration_date", "secrets", "dev_mode", "[cloud.ssl]",
                "domain_name", "private_key", "certificate"):
        assert has(toml, key), key


def test_no_page_without_a_command():
    pages = {p.name[len("mse-"):-len(".1.scd")] for p in (ROOT / "docs/man").glob("mse-*.1.scd")}
    stale = pages - set(commands())
    assert not stale, f"pages for commands that do not exist: {sorted(stale)}"


def test_option_check_catches_an_undocumented_option(tmp_path):
    # The check above must be able to fail: a page without one option fails it.
    text = page_text(MAN / "man1" / "mse-deploy.1")
    assert has(text, "--replace")
    assert not has(text.replace("--replace", "--rep"), "--replace")
    assert not has(text, "--replac")


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_help_opens_the_page():
    env = dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="100", LC_ALL="C")
    out = subprocess.run([MSE, "help", "deploy"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "mse-deploy - package, spawn, verify" in out.stdout
    assert "SEE ALSO" in out.stdout and "Usage:" not in out.stdout


def test_help_falls_back_to_usage_without_man(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no man on PATH
    out = subprocess.run([MSE, "help", "deploy"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: mse deploy")


def test_help_falls_back_when_man_has_no_page(tmp_path):
    # An mse copied where no man directory is beside it, and a man path without mse pages.
    shutil.copy(MSE, tmp_path / "mse")
    env = dict(os.environ, MANPATH=str(tmp_path), MANPAGER="cat")
    out = subprocess.run([str(tmp_path / "mse"), "help", "stop"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: mse stop")


def test_help_unknown_command():
    out = subprocess.run([MSE, "help", "nosuch"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "unknown command 'nosuch'" in out.stderr


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_pages_render_without_warnings():
    pages = sorted(MAN.glob("man*/*"))
    assert len(pages) == len(commands()) + 4  # + mse(1), mse.toml(5), mse-bootstrap(8), mse-coordinator(8)
    env = dict(os.environ, LC_ALL="C", MANWIDTH="80")
    for page in pages:
        out = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True,
                             text=True, env=env, timeout=60)
        assert out.returncode == 0 and not out.stderr.strip(), f"{page}: {out.stderr}"


def synopses(text, prefix):
    """{SUBCOMMAND: set of options} of each 'PREFIX SUB ...' form, continuation lines included."""
    forms, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"\s*(?:Usage:)?\s*" + re.escape(prefix) + r" (\w+)(.*)", line)
        if m:
            cur = forms.setdefault(m.group(1), set())
            rest = m.group(2)
        elif cur is not None and line.startswith(" ") and line.strip():
            rest = line
        else:
            cur = None
            continue
        cur |= set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest))
    return forms


def test_coordinator_synopsis_per_subcommand_matches_help():
    """Each `mse coordinator SUB` form of the page's SYNOPSIS names the options its
    --help form names (test_command_page_lists_every_option only checks that each
    option appears somewhere in the page: an option on the wrong subcommand passed)."""
    out = subprocess.run([MSE, "coordinator", "--help"], capture_output=True, text=True,
                         timeout=30).stdout
    usage = out.split("\n\n")[0]
    page = page_text(MAN / "man1" / "mse-coordinator.1")
    syn = page.split("DESCRIPTION")[0]
    syn = re.sub(r"\n(?=\S)", "\n\n", syn)  # one form per paragraph in the roff
    help_forms = synopses(usage, "mse coordinator")
    page_forms = {}
    for para in re.split(r"\n\s*\n|\.PP|\.P\b", syn):
        flat = " ".join(para.split())
        m = re.search(r"mse coordinator (\w+)(.*)", flat)
        if m:
            page_forms.setdefault(m.group(1), set()).update(
                re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", m.group(2)))
    assert len(help_forms) >= 10, help_forms
    assert set(help_forms) == set(page_forms), (sorted(help_forms), sorted(page_forms))
    wrong = {sub: (sorted(help_forms[sub] - page_forms[sub]), sorted(page_forms[sub] - help_forms[sub]))
             for sub in help_forms if help_forms[sub] != page_forms[sub]}
    assert not wrong, f"--help only, page only: {wrong}"
