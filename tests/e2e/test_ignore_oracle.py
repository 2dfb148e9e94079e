# SPDX-License-Identifier: Apache-2.0
"""`.mseignore` against `git check-ignore` as the oracle.

Each case builds a directory tree of a few thousand paths (seeded random
names, including odd bytes: spaces, tabs, brackets, backslashes, UTF-8),
writes a pattern file (seeded random patterns plus hand-written tricky ones),
and asks both git and mse-c about every file AND every directory:

- git:  `git check-ignore --no-index -v -n -z --stdin` with the patterns in
        the repository's info/exclude (same semantics as a root .gitignore)
- mse:  build/tools/ignore_check (mse_ignore_check), is_dir from lstat

The verdict (not matched / excluded / re-included) and the line number of
the deciding pattern must agree for every path. Then mse_ignore_list (the
walker used by `mse package`) must return exactly the regular files git does
not ignore, sorted.
"""

import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

BUILD = Path(os.environ.get("MSE_BUILD", "build"))
TOOL = BUILD / "tools" / "ignore_check"
VECTORS = Path(os.environ.get("MSE_VECTORS", "../shared/vectors"))

# File and directory names. Odd ones on purpose: git's pathspec parsing
# takes them literally (none starts with ':').
NAMES = [
    "a", "b", "c", "ab", "abc", "a.c", "b.py", "keep.py", "x.txt", "foo", "bar",
    "foo.bar", "Foo", "BAR", ".hidden", ".git", ".gitignore", ".github",
    "__pycache__", "build", "doc", "frotz", "hello.c", "test.json",
    "mse.toml", "secrets.json", ".env", ".venv", "x.egg", "p.egg-info",
    "a b", "a ", " a", "#c", "!b", "[a]", "*", "?", "a\\b", "-", "]", "^",
    "\u00e9t\u00e9", "t\tab", "v\x0bt", "f\x0cf", "1", "9z", "a-b", "a_b",
    "a^b", "a,b", "a*c", "a?c", "[", "x]y", "~", "{a,b}", "a.b.c", "A",
    "ba", "bba", "cab", "aab", "abab", "aaa",
]

# Pattern building blocks for random patterns.
ATOMS = [
    "a", "b", "c", "ab", "foo", "bar", "doc", "build", "frotz", "*", "?", "**",
    "*.py", "*.c", "a*", "*b", "*a*", "[ab]", "[!a]", "[^b]*", "[a-c]",
    "[a-c]*", "[[:alpha:]]", "[[:alpha:]]*", "[[:upper:]]*", "[[:digit:]]*",
    "[[:space:]]", "*[[:space:]]*", "[[:punct:]]", "[[:xdigit:]]*", "[[:cntrl:]]*",
    "[[:blank:]]*", "[[:graph:]]*", "[[:print:]]", "[[:alnum:]]*", "[[:lower:]]",
    "[[:bogus:]]", "[:alpha:]", "[]a]", "[]]", "[a", "[!]]", "[a-]", "[-a]",
    "[\\]]", "[\\a-c]", "[a-\\c]", "\\*", "\\?", "\\[a]", "a?c", "?a", "f*o",
    "*.*", ".*", ".git*", "__pycache__", "*.egg-info", "a b", "a\\ ", "\\#c",
    "\\!b", "a\\\\b", "\u00e9*", "*t\u00e9", "t\tab", "x]y", "{a,b}", "a**",
    "**a", "a**b", "*\\", "\\", "b*a", "*ab*", "a*b*a", "[[:space:]", "[[]",
    "[*]", "[?]", "[\\\\]", "[a-a]", "[z-a]", "[a-b-c]*", "[!a-b-]*", "[[:alpha:]-z]*",
    "[b-a-c]*", "[]-a]*", "[!-]*", "[[:digit:][:upper:]]*",
]

TRICKY = r"""
# comments and blank lines count as lines
*.py
!keep.py
/build
doc/frotz/
foo/*
**/foo
abc/**
a/**/b
**/
/*/
!/a/
/a/*
!/a/b
\#c
\!b
a\ 
a   
a\\b
[a]
\[a\]
[]a]
[!a]*
[^ab]
[a-c]
[[:alpha:]]
[[:upper:]]*
[[:space:]]*
[[:punct:]]
[[:bogus:]]
[:alpha:]
[a
b/**/
fo**/bar
a**/b
**/a/**
a/**/**/c
*/b
*/*/c
?
??
a?c
\*
\?
foo\
.git*
__pycache__/
*.egg-info/
x/**/
**/b/**
/**/c
b/**/*.py
!**/c/
 a
#not a comment: next line has a CR
ba\r
aab\ \ 
!
/
//
!/
***/abab
a/***
c/**b
**b/a
""".replace("\\r", "\r")


def run_git(tree, gitdir, paths):
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
               GIT_DIR=str(gitdir), GIT_WORK_TREE=str(tree), LC_ALL="C")
    out = subprocess.run(
        ["git", "check-ignore", "--no-index", "-v", "-n", "-z", "--stdin"],
        input=b"".join(p + b"\0" for p in paths), cwd=tree, env=env,
        capture_output=True, check=False)
    assert out.returncode in (0, 1), out.stderr.decode(errors="replace")
    fields = out.stdout.split(b"\0")
    assert fields[-1] == b""
    fields = fields[:-1]
    assert len(fields) == 4 * len(paths)
    res = {}
    for i in range(len(paths)):
        source, line, pattern, path = fields[4 * i:4 * i + 4]
        if not pattern:
            res[path] = ("n", 0)
        else:
            res[path] = ("i" if pattern.startswith(b"!") else "x", int(line))
    return res


def run_mse(tree, patterns_file, paths):
    out = subprocess.run([str(TOOL), "check", str(tree), str(patterns_file)],
                         input=b"".join(p + b"\0" for p in paths),
                         capture_output=True, check=True)
    res = {}
    for rec in out.stdout.split(b"\0")[:-1]:
        line, verdict, path = rec.split(b" ", 2)
        res[path] = (verdict.decode(), int(line))
    return res


def make_tree(rng, root, nfiles):
    """Random files (and the directories holding them); returns (files, dirs)."""
    files, dirs = set(), set()
    names = [os.fsencode(n) for n in NAMES]
    tries = 0
    while len(files) < nfiles and tries < nfiles * 20:
        tries += 1
        depth = rng.choice([1, 1, 2, 2, 2, 3, 3, 4, 5])
        parts = [rng.choice(names) for _ in range(depth)]
        path = b"/".join(parts)
        prefixes = [b"/".join(parts[:k]) for k in range(1, depth)]
        if path in dirs or path in files or any(p in files for p in prefixes):
            continue
        files.add(path)
        dirs.update(prefixes)
    # A few empty directories too (git decides them as well).
    for _ in range(nfiles // 50):
        d = rng.choice(sorted(dirs)) + b"/" + rng.choice(names) if dirs else b"e"
        if d not in files and d not in dirs and not any(
                d.startswith(f + b"/") for f in files):
            dirs.add(d)
    for d in sorted(dirs, key=len):
        os.makedirs(os.path.join(os.fsencode(root), d), exist_ok=True)
    for f in files:
        with open(os.path.join(os.fsencode(root), f), "wb") as fh:
            fh.write(b"x")
    return sorted(files), sorted(dirs)


def random_pattern(rng):
    n = rng.choice([1, 1, 1, 2, 2, 3, 4])
    pat = "/".join(rng.choice(ATOMS) for _ in range(n))
    if rng.random() < 0.4:
        # Below a directory, so that one broad atom does not decide it all.
        pat = rng.choice(["a/", "foo/", "b/", "**/a/", "doc/", "/ab/", "[ab]/"]) + pat
    r = rng.random()
    if r < 0.15:
        pat = "/" + pat
    elif r < 0.22:
        pat = "**/" + pat
    elif r < 0.27:
        pat = pat + "/**"
    if rng.random() < 0.2:
        pat += "/"
    if rng.random() < 0.25:
        pat = "!" + pat
    if rng.random() < 0.05:
        pat += rng.choice([" ", "  ", "\\ ", " \\ ", "\t"])
    if rng.random() < 0.03:
        pat = rng.choice(["#", " #", "\\#"]) + pat
    return pat


def pattern_text(rng, kind):
    if kind == "tricky":
        lines = TRICKY.split("\n")
    elif kind == "default":
        return (VECTORS / "mse-cli-config" / ".mseignore").read_bytes()
    else:
        lines = [random_pattern(rng) for _ in range(rng.randint(3, 15))]
        for _ in range(rng.randint(0, 5)):
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(["", "# c", "   "]))
    text = "\n".join(lines)
    if kind != "tricky" and rng.random() < 0.3:
        text = text.replace("\n", "\r\n")
    if rng.random() < 0.5:
        text += "\n"
    data = text.encode()
    if kind != "tricky" and rng.random() < 0.2:
        data = b"\xef\xbb\xbf" + data
    return data


class Oracle:
    """One tree, one bare git dir; compares git and mse on pattern texts."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.tree, self.gitdir = tmp / "tree", tmp / "git"
        self.tree.mkdir()
        subprocess.run(["git", "init", "-q", "--bare", str(self.gitdir)], check=True,
                       env=dict(os.environ, GIT_CONFIG_NOSYSTEM="1",
                                GIT_CONFIG_GLOBAL="/dev/null"))
        (self.gitdir / "info").mkdir(exist_ok=True)
        self.files, self.dirs = make_tree(random.Random(1), self.tree, 1800)
        self.paths = self.files + self.dirs
        self.pfile = tmp / "patterns"

    def compare(self, patterns):
        """Returns (git verdicts, list of differences)."""
        (self.gitdir / "info" / "exclude").write_bytes(patterns)
        self.pfile.write_bytes(patterns)
        want = run_git(self.tree, self.gitdir, self.paths)
        got = run_mse(self.tree, self.pfile, self.paths)
        bad = [(p, want[p], got.get(p)) for p in self.paths if want[p] != got.get(p)]
        return want, bad

    def check(self, patterns):
        want, bad = self.compare(patterns)
        if bad:
            lines = patterns.decode(errors="replace").split("\n")
            msg = []
            for p, w, g in bad[:15]:
                def pl(v):
                    return repr(lines[v[1] - 1]) if v and v[1] else ""
                msg.append(f"{p!r}: git {w} {pl(w)} mse {g} {pl(g)}")
            pytest.fail(f"patterns {patterns!r}:\n{len(bad)} of {len(self.paths)} "
                        "paths differ:\n" + "\n".join(msg))
        return want

    def check_walker(self, patterns, want):
        """mse_ignore_list keeps exactly the regular files git keeps."""
        self.pfile.write_bytes(patterns)
        out = subprocess.run([str(TOOL), "list", str(self.tree), str(self.pfile)],
                             capture_output=True, check=True)
        listed = out.stdout.split(b"\0")[:-1]
        assert listed == sorted(f for f in self.files if want[f][0] != "x")


@pytest.fixture(scope="module")
def oracle():
    if not TOOL.exists():
        pytest.fail(f"{TOOL} not built (make tools)")
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="mse-ignore-oracle.", dir=shm) as tmp:
        o = Oracle(Path(tmp))
        assert len(o.paths) > 2000
        yield o


def single_patterns():
    """Each tricky line, and each atom in several positions, on its own."""
    pats = [line for line in TRICKY.split("\n") if line and not line.startswith("#")]
    forms = ["{}", "/{}", "{}/", "**/{}", "{}/**", "*/{}", "a/{}", "{}/b", "!{}"]
    for i, atom in enumerate(ATOMS):
        # Each atom alone, plus one of the other forms (rotating, to stay fast).
        for k in (0, 1 + i % 8):
            pats.append(forms[k].format(atom))
    return pats


def test_each_pattern_alone(oracle):
    """Every pattern on its own: the matcher itself, path by path."""
    seen = set()
    for pat in single_patterns():
        # A negation alone matches but excludes nothing: put a "*" before it.
        text = ("*\n" + pat if pat.startswith("!") else pat).encode()
        want = oracle.check(text)
        seen.update(v[0] for v in want.values())
    assert seen == {"n", "x", "i"}


def test_tricky_file_as_a_whole(oracle):
    want = oracle.check(TRICKY.encode())
    oracle.check_walker(TRICKY.encode(), want)


def test_mse_default_mseignore(oracle):
    text = (VECTORS / "mse-cli-config" / ".mseignore").read_bytes()
    want = oracle.check(text)
    assert sum(v[0] == "x" for v in want.values()) > 100
    oracle.check_walker(text, want)


@pytest.mark.parametrize("seed", range(100, 116))
def test_random_pattern_files(oracle, seed):
    """Seeded random files: negations, anchoring, CRLF, BOM, comments."""
    rng = random.Random(seed)
    text = pattern_text(rng, "random")
    want = oracle.check(text)
    oracle.check_walker(text, want)


def test_odd_bytes_in_patterns(oracle):
    """A lone CR, a BOM only at the very start, escapes at the end."""
    oracle.check(b"\xef\xbb\xbfa\r\nb\r\r\n\xef\xbb\xbfc\nfoo\\\n\\\n[\n")
