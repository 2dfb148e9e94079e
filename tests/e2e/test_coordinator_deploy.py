# SPDX-License-Identifier: Apache-2.0
"""`mse deploy --replicas N` and the operator commands that know coordinators and
replicas: the owner's one command starts a coordinator, verifies it, uploads the
signed manifest and starts N replicas; `mse list` shows the roles; every replica
answers `curl --cacert ca.pem` (curl, independently); a killed replica brought back
with `mse restart` serves again without the owner; a second deploy reuses the
coordinator (same CA, higher seq)."""
import json
import os
import re
import signal
from pathlib import Path

import pytest

from clirun import run

MSE = os.path.abspath(os.environ.get("MSE_BIN", "build/mse"))
BUILD = Path(os.environ.get("MSE_BUILD", "build"))

pytestmark = pytest.mark.skipif(not (BUILD / "mse-coordinator").exists(),
                                reason="mse-coordinator not built")


def curl(ca, port, path="/health"):
    return run("curl", "-sS", "--fail", "--cacert", ca, f"https://localhost:{port}{path}",
               env=os.environ, check=False, timeout=30)


def test_deploy_replicas(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path / "home"), XDG_STATE_HOME=str(tmp_path / "state"),
               MSE_SIM_DIR=str(tmp_path / "sim"))
    env.pop("MSE_COORDINATOR", None)
    run(MSE, "scaffold", "app3", env=env, cwd=tmp_path)
    proj = tmp_path / "app3"
    try:
        out = run(MSE, "deploy", "--project", proj, "--replicas", "3", "--no-tests", env=env).stdout
        ca = proj / ".mse/ca.pem"
        assert ca.exists() and "3 replicas behind the coordinator" in out, out
        ports = [int(p) for p in re.findall(r"replica \d+\s+https://localhost:(\d+)/", out)]
        assert len(ports) == 3
        for p in ports:
            r = curl(ca, p)
            assert r.returncode == 0, r.stderr
        lst = run(MSE, "list", env=env).stdout
        roles = {l.split()[0]: l.split()[1] for l in lst.splitlines()[1:]}
        assert roles == {"app3-coordinator": "coordinator", "app3-1": "replica",
                         "app3-2": "replica", "app3-3": "replica"}, lst
        st = json.loads(run(MSE, "status", "app3-2", "--json", env=env).stdout)
        assert st["role"] == "replica" and st["status"] == "running"
        # Kill a replica: the coordinator, not the owner, provisions it again.
        state = json.loads((tmp_path / "state/mse/app3-2/state.json").read_text())
        os.kill(state["pid"], signal.SIGKILL)
        assert run(MSE, "status", "app3-2", env=env, check=False).returncode != 0
        r = run(MSE, "restart", "app3-2", env=env)
        assert "attested to the coordinator" in r.stdout
        assert curl(ca, ports[1]).returncode == 0
        # Deploy again: the same coordinator (and CA), a higher seq.
        ca_before = ca.read_text()
        out = run(MSE, "deploy", "--project", proj, "--replicas", "2", "--no-tests", env=env).stdout
        assert "reusing app3-coordinator" in out and '"seq":2' in out, out
        assert ca.read_text() == ca_before
        assert "stopping and removing app3-3" in out
        assert "app3-3" not in run(MSE, "list", env=env).stdout
        ports = [int(p) for p in re.findall(r"replica \d+\s+https://localhost:(\d+)/", out)]
        for p in ports:
            assert curl(ca, p).returncode == 0
    finally:
        # Every instance, whatever the rolling deploy named its new replicas
        # (app3-4, app3-5, ...): none may outlive the test.
        lst = run(MSE, "list", env=env, check=False).stdout
        names = [l.split()[0] for l in lst.splitlines()[1:] if l.strip()]
        for n in sorted(set(names) | {"app3-1", "app3-2", "app3-3", "app3-coordinator"}):
            run(MSE, "stop", n, "--remove", env=env, check=False)
    lst = run(MSE, "list", env=env).stdout
    assert lst.strip().startswith("no enclaves"), lst


def test_deploy_replicas_that_never_get_healthy_are_removed(tmp_path):
    """An app that dies at import: the replicas attest, are provisioned, exit; the deploy
    fails at step 8 (test) naming the replica, and the new replicas are stopped and removed
    (only the coordinator, which holds the owner's manifest, stays)."""
    env = dict(os.environ, HOME=str(tmp_path / "home"), XDG_STATE_HOME=str(tmp_path / "state"),
               MSE_SIM_DIR=str(tmp_path / "sim"))
    env.pop("MSE_COORDINATOR", None)
    run(MSE, "scaffold", "bad", env=env, cwd=tmp_path)
    app = tmp_path / "bad/mse_src/app.py"
    app.write_text(app.read_text() + "\nraise RuntimeError('broken on purpose')\n")
    try:
        r = run(MSE, "deploy", "--project", tmp_path / "bad", "--replicas", "2", "--no-tests",
                env=env, check=False)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "step 8 (test) failed" in r.stderr and "new replica bad-" in r.stderr, r.stderr
        # The replica and its log are gone: the error quotes its last words.
        assert "its last words:" in r.stderr and "broken on purpose" in r.stderr, r.stderr
        assert "the new replicas are not all healthy" in r.stdout, r.stdout
        lst = run(MSE, "list", env=env).stdout
        assert [l.split()[0] for l in lst.splitlines()[1:]] == ["bad-coordinator"], lst
    finally:
        lst = run(MSE, "list", env=env, check=False).stdout
        for n in {l.split()[0] for l in lst.splitlines()[1:] if l.strip()} | {"bad-coordinator"}:
            run(MSE, "stop", n, "--remove", env=env, check=False)
