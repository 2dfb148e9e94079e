# SPDX-License-Identifier: Apache-2.0
"""Rolling replicas (issue 17): `mse deploy --replicas N` on a changed project and
`mse coordinator update --manifest FILE` replace the replicas one at a time, each new
one healthy before an old one stops, while a client keeps being answered (curl through
the CA, polled during the whole roll); the new version serves afterwards, the app key
is unchanged, and `mse status COORDINATOR` shows which replica runs which identity."""
import json
import os
import re
import threading
import time
from pathlib import Path

import pytest

from clirun import run

MSE = os.path.abspath(os.environ.get("MSE_BIN", "build/mse"))
BUILD = Path(os.environ.get("MSE_BUILD", "build"))
BOOT = os.environ.get("MSE_BOOTSTRAP", str(BUILD / "mse-bootstrap"))

pytestmark = pytest.mark.skipif(not (BUILD / "mse-coordinator").exists(),
                                reason="mse-coordinator not built")

APP = '''
import hashlib, os
from flask import Flask
app = Flask(__name__)

@app.route("/health")
def health():
    return "ok"

@app.route("/version")
def version():
    return "%s"

@app.route("/appkey")
def appkey():
    with open(os.environ["APP_KEY_PATH"], "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
'''


def curl(ca, port, path="/health"):
    return run("curl", "-sS", "--fail", "--max-time", "5", "--cacert", ca,
               f"https://localhost:{port}{path}", env=os.environ, check=False, timeout=30)


def replicas(env):
    """{name: port} of the running replicas (mse list, mse status --json)."""
    out = {}
    for line in run(MSE, "list", env=env).stdout.splitlines()[1:]:
        f = line.split()
        if len(f) > 1 and f[1] == "replica":
            st = json.loads(run(MSE, "status", f[0], "--json", env=env, check=False).stdout)
            out[f[0]] = st["port"]
    return out


class Poller(threading.Thread):
    """Asks every known replica for /health all along; records each round's answers."""

    def __init__(self, ca, ports):
        super().__init__(daemon=True)
        self.ca, self.ports, self.rounds, self.stop_ = ca, dict(ports), [], False

    def run(self):
        while not self.stop_:
            ok = [n for n, p in list(self.ports.items()) if curl(self.ca, p).returncode == 0]
            self.rounds.append(ok)
            time.sleep(0.05)


def check_rolled(rounds, first, second):
    """The old replicas stopped one after the other, not together: while the second
    still answered, every round had an answer, and the first answered at the start."""
    names = [set(r) for r in rounds]
    gone1 = next((i for i, r in enumerate(names) if first not in r), len(names))
    gone2 = next((i for i, r in enumerate(names) if second not in r), len(names))
    assert gone1 > 0 and gone1 <= gone2, names
    assert all(second in r for r in names[:gone2]), names
    # What follows gone2 is the very end of the roll (the poller stops with it).
    assert len(names) - gone2 <= 3, names


def order(out, *needles):
    pos = [out.find(n) for n in needles]
    assert all(p >= 0 for p in pos), (needles, out)
    assert pos == sorted(pos), (needles, out)


def test_rolling_deploy_and_update(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path / "home"), XDG_STATE_HOME=str(tmp_path / "state"),
               MSE_SIM_DIR=str(tmp_path / "sim"))
    env.pop("MSE_COORDINATOR", None)
    run(MSE, "scaffold", "roll", env=env, cwd=tmp_path)
    proj = tmp_path / "roll"
    (proj / "mse_src/app.py").write_text(APP % "v1")
    try:
        run(MSE, "deploy", "--project", proj, "--replicas", "2", "--no-tests", env=env)
        ca = proj / ".mse/ca.pem"
        before = replicas(env)
        assert set(before) == {"roll-1", "roll-2"}, before
        key = {curl(ca, p, "/appkey").stdout for p in before.values()}
        assert len(key) == 1
        # A changed project, deployed again: rolled one at a time.
        (proj / "mse_src/app.py").write_text(APP % "v2")
        poll = Poller(ca, before)
        poll.start()
        out = run(MSE, "deploy", "--project", proj, "--replicas", "2", "--no-tests",
                  env=env).stdout
        poll.stop_ = True
        poll.join()
        order(out, "started roll-3 to replace roll-1", "roll-3 is healthy",
              "stopping and removing roll-1 (replaced)", "started roll-4 to replace roll-2",
              "roll-4 is healthy", "stopping and removing roll-2 (replaced)")
        # The old replicas answered while the new ones started (never both gone).
        check_rolled(poll.rounds, "roll-1", "roll-2")
        after = replicas(env)
        assert set(after) == {"roll-3", "roll-4"}, after
        for p in after.values():
            assert curl(ca, p, "/version").stdout == "v2"
            assert curl(ca, p, "/appkey").stdout in key
        # mse coordinator update: the owner's manifest (seq + 1) for a v3 package.
        (proj / "mse_src/app.py").write_text(APP % "v3")
        run(MSE, "package", "--project", proj, "--output", tmp_path / "pkg3", "--quiet", env=env)
        pkg = next((tmp_path / "pkg3").glob("*.tar"))
        pin = proj / ".mse/coordinator/ratls.pem"
        st = json.loads(run(MSE, "status", "roll-coordinator", "--json", env=env).stdout)
        url = f"127.0.0.1:{st['port']}"
        cst = json.loads(run(MSE, "coordinator", "status", "--url", url, "--pin", pin,
                             env=env).stdout)
        run(MSE, "coordinator", "manifest", "--coordinator-cert", pin, "--package", pkg,
            "--code-key", str(pkg)[:-4] + ".key", "--deployment-id", cst["deployment_id"],
            "--seq", cst["seq"] + 1, "--dns", "localhost", "--dns", "127.0.0.1",
            "--allow-simulation", "--bootstrap", BOOT, "--out", tmp_path / "m3.json", env=env)
        poll = Poller(ca, after)
        poll.start()
        r = run(MSE, "coordinator", "update", "--url", url, "--pin", pin, "--manifest",
                tmp_path / "m3.json", "--owner-key", proj / ".mse/owner.key", "--package", pkg,
                env=env)
        poll.stop_ = True
        poll.join()
        order(r.stderr, "started roll-5 to replace roll-3", "roll-5 is healthy",
              "stopping and removing roll-3", "started roll-6 to replace roll-4",
              "roll-6 is healthy", "stopping and removing roll-4")
        check_rolled(poll.rounds, "roll-3", "roll-4")
        ports = dict(re.findall(r"replica (\S+) https://localhost:(\d+)/", r.stdout))
        assert set(ports) == {"roll-5", "roll-6"}, r.stdout
        for p in ports.values():
            assert curl(ca, int(p), "/version").stdout == "v3"
            assert curl(ca, int(p), "/appkey").stdout in key
        # Which replica runs which identity: mse status on the coordinator.
        m3 = json.loads((tmp_path / "m3.json").read_text())["identities"][0]["mrenclave"]
        st = json.loads(run(MSE, "status", "roll-coordinator", "--json", env=env).stdout)
        by = {e["instance"]: e for e in st["replicas"]}
        assert by["roll-5"]["mrenclave"] == m3 and by["roll-5"]["accepted_now"] is True
        assert by["roll-1"]["accepted_now"] is False  # v1: no longer in the manifest
        text = run(MSE, "status", "roll-coordinator", env=env).stdout
        assert re.search(r"roll-5\s+" + m3 + r"\s+isvsvn 1\s+accepted", text), text
        assert re.search(r"roll-1\s+[0-9a-f]{64}\s+isvsvn 1\s+REFUSED", text), text
    finally:
        names = [l.split()[0] for l in run(MSE, "list", env=env, check=False).stdout.splitlines()[1:]
                 if l.strip()]
        for n in names:
            run(MSE, "stop", n, "--remove", env=env, check=False)
