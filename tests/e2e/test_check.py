# SPDX-License-Identifier: Apache-2.0
"""`mse check` end to end: exit codes, output, every error on stderr.

The resolved settings `mse check` prints are TOML: Python's own tomllib reads
them back (an independent parser), and tomllib also cross-checks what our
parser accepted in the vectors.
"""
import os
import re
import shutil
import subprocess
import tomllib

import pytest

MSE = os.environ.get("MSE_BIN", "build/san/mse")
VEC = os.path.join(os.environ.get("MSE_VECTORS", "../shared/vectors"), "mse-cli-config")
NOW = "2024-01-01T00:00:00Z"


def mse(*args, cwd=None):
    return subprocess.run([os.path.abspath(MSE), "check", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


@pytest.fixture
def code(tmp_path):
    d = tmp_path / "code"
    d.mkdir()
    shutil.copy(os.path.join(VEC, "app.py"), d / "app.py")
    return d


def test_help_and_usage_errors():
    r = subprocess.run([MSE, "check", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "Usage: mse check" in r.stdout and "--now" in r.stdout
    # `mse help check`: the manual page where man is installed, else the usage.
    r = subprocess.run([MSE, "help", "check"], capture_output=True, text=True)
    assert r.returncode == 0 and ("Usage: mse check" in r.stdout or "mse-check - load" in r.stdout)
    assert mse("--bogus").returncode == 2
    assert mse("extra").returncode == 2
    assert mse("--config").returncode == 2
    r = mse("--now", "yesterday")
    assert r.returncode == 2 and "--now" in r.stderr


def test_all_set_prints_resolved_settings_as_toml(code):
    r = mse("--config", os.path.join(VEC, "all_set.toml"), "--code", str(code), "--now", NOW)
    assert r.returncode == 0, r.stderr
    out = tomllib.loads(r.stdout)
    src = tomllib.load(open(os.path.join(VEC, "all_set.toml"), "rb"))
    vdir = os.path.realpath(VEC)
    assert out["name"] == src["name"]
    assert out["python_application"] == src["python_application"]
    assert out["tests_requirements"] == src["tests_requirements"]
    assert out["module_file"] == str(code / "app.py")
    assert out["code_dir"] == str(code)
    assert out["cloud"]["docker"] == src["cloud"]["docker"]
    # The loader keeps paths as given (absolute, links unresolved): compare the files.
    assert os.path.isabs(out["cloud"]["secrets"])
    assert os.path.realpath(out["cloud"]["secrets"]) == os.path.join(vdir, "secrets.json")
    assert os.path.realpath(out["cloud"]["ssl"]["certificate"]) == os.path.join(vdir, "cert.pem")
    # 2024-03-14 00:00:00+00:00 as an instant
    assert out["cloud"]["expiration_date"].isoformat() == "2024-03-14T00:00:00+00:00"


@pytest.mark.parametrize("name", ["mse.toml", "home-mse.toml", "all_set.toml",
                                  "cloud_without_optionals.toml", "cloud_ssl_without_optionals.toml",
                                  "bad_docker.toml", "bad_docker_latest.toml",
                                  "bad_project_name.toml", "non_free_plan.toml",
                                  "bad_python_application.toml"])
def test_mse_files_load(code, name):
    r = mse("-c", os.path.join(VEC, name), "--code", str(code), "--now", NOW)
    assert r.returncode == 0, r.stderr
    tomllib.loads(r.stdout)


POS = re.compile(r"^mse check: (?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<field>[a-z_.]+): ")


@pytest.mark.parametrize("name,field,line", [
    ("ssl_bad_domain_name.toml", "cloud.ssl.domain_name", 15),
    ("ssl_bad_expiration_date.toml", "cloud.expiration_date", 12),
])
def test_mse_files_that_fail(code, name, field, line):
    r = mse("-c", os.path.join(VEC, name), "--code", str(code), "--now", NOW)
    assert r.returncode == 1
    assert r.stdout == ""
    m = POS.match(r.stderr.splitlines()[0])
    assert m and m["field"] == field and int(m["line"]) == line, r.stderr
    assert r.stderr.splitlines()[-1].startswith("mse check: 1 error in ")


def test_no_app_py(tmp_path):
    r = mse("-c", os.path.join(VEC, "bad_python_application.toml"), "--code", str(tmp_path),
            "--now", NOW)
    assert r.returncode == 1
    assert re.search(r":2:22: python_application: module \"app\" not found", r.stderr), r.stderr


def test_every_error_and_default_config(tmp_path):
    (tmp_path / "mse.toml").write_text(
        'name = "x"\npython_application = "app"\nhealthcheck_endpoint = "health"\n'
        'tests_cmd = "pytest"\ntests_requirements = []\nnmae = 1\n')
    r = mse(cwd=tmp_path)  # ./mse.toml by default
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert 'mse check: mse.toml:2:22: python_application: expected "module:variable" or "module:factory(literal arguments)", got "app"' in lines
    assert any(l.startswith("mse check: mse.toml:3:24: healthcheck_endpoint: ") for l in lines)
    assert 'mse check: mse.toml:6:1: nmae: unknown key (did you mean "name"?)' in lines
    assert lines[-1] == "mse check: 3 errors in mse.toml"
    # in document order
    assert [int(POS.match(l)["line"]) for l in lines[:-1]] == [2, 3, 6]


def test_syntax_error_and_missing_file(tmp_path):
    (tmp_path / "mse.toml").write_text('name = "x"\nname = "y"\n')
    r = mse(cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith("mse check: mse.toml:2:1: duplicate key 'name'"), r.stderr
    with pytest.raises(tomllib.TOMLDecodeError):  # tomllib agrees it is not TOML
        tomllib.loads((tmp_path / "mse.toml").read_text())
    r = mse("-c", str(tmp_path / "nope.toml"))
    assert r.returncode == 1 and "nope.toml" in r.stderr


def test_now_decides_expiry(code):
    cfg = os.path.join(VEC, "all_set.toml")
    assert mse("-c", cfg, "--code", str(code), "--now", "2024-03-13T23:59:59Z").returncode == 0
    r = mse("-c", cfg, "--code", str(code), "--now", "2024-03-14T00:00:00Z")
    assert r.returncode == 1 and "cloud.expiration_date: expected a date after now" in r.stderr
