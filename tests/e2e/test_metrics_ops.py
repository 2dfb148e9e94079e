# SPDX-License-Identifier: Apache-2.0
"""The app server's Prometheus metrics through the operator's normal flow (issue 17):
`mse serve --metrics`, `mse deploy --metrics` (one enclave, simulation), `mse deploy
--replicas 2 --metrics` (each replica its own port), kept by `mse restart`, shown by
`mse status --json` and `mse list --json`; a bad address and a port in use are refused
naming the option.

Requests go through curl (independently of the server); the scrapes are parsed by
tests/e2e/prom_text.py, written from the exposition format's rules, not from our C code.
The counters are compared before and after the requests made here, so that the deploy's
own health checks do not count: the difference is exactly what this test did."""
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from clirun import run
from prom_text import parse_prometheus

MSE = os.path.abspath(os.environ.get("MSE_BIN", "build/mse"))
BUILD = Path(os.environ.get("MSE_BUILD", "build"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(addr):
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    fams = parse_prometheus(text)
    classes = {s[1]["class"]: s[2] for s in fams["mse_http_requests_total"]["samples"]}
    count = [v for n, _, v in fams["mse_http_request_duration_seconds"]["samples"]
             if n.endswith("_count")][0]
    return text, classes, count


def curl(url, ca=None):
    args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20"]
    if ca:
        args += ["--cacert", str(ca)]
    return run(*args, url, env=os.environ, check=False, timeout=60).stdout


def env_for(tmp_path):
    e = dict(os.environ, HOME=str(tmp_path / "home"), XDG_STATE_HOME=str(tmp_path / "state"),
             MSE_SIM_DIR=str(tmp_path / "sim"))
    e.pop("MSE_COORDINATOR", None)
    e.pop("MSE_REPLICA_METRICS", None)
    return e


WSGI_APP = '''
def app(environ, start_response):
    ok = environ["PATH_INFO"] == "/"
    start_response("200 OK" if ok else "404 Not Found", [("Content-Type", "text/plain")])
    return [b"hello" if ok else b"no"]
'''


def test_serve_metrics_count_what_was_done_and_bad_addresses(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(WSGI_APP)
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    mport = free_port()
    port_file = tmp_path / "port"
    log = open(tmp_path / "log", "w+")
    p = subprocess.Popen([MSE, "serve", "app:app", "--code", code, "--no-tls", "--port", "0",
                          "--port-file", port_file, "--threads", "2",
                          "--metrics", f"127.0.0.1:{mport}"],
                         stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + 60
        while not port_file.exists():
            assert p.poll() is None, (tmp_path / "log").read_text()
            assert time.time() < deadline, (tmp_path / "log").read_text()
            time.sleep(0.05)
        port = int(port_file.read_text())
        assert f"metrics on http://127.0.0.1:{mport}/metrics" in (tmp_path / "log").read_text()
        _, before, n0 = scrape(f"127.0.0.1:{mport}")
        assert before == {"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}, before
        for _ in range(5):
            assert curl(f"http://127.0.0.1:{port}/") == "200"
        for _ in range(2):
            assert curl(f"http://127.0.0.1:{port}/missing") == "404"
        text, after, n1 = scrape(f"127.0.0.1:{mport}")
        assert after == {"1xx": 0, "2xx": 5, "3xx": 0, "4xx": 2, "5xx": 0}, after
        assert n1 - n0 == 7
        assert "/missing" not in text and str(port) not in text

        # The port is held by this server now: a second one is refused, naming the option.
        r = run(MSE, "serve", "app:app", "--code", code, "--no-tls", "--port", "0",
                "--metrics", f"127.0.0.1:{mport}", env=env, check=False, timeout=60)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "--metrics" in r.stderr and "Address already in use" in r.stderr, r.stderr
    finally:
        p.terminate()
        assert p.wait(timeout=30) == 0, (tmp_path / "log").read_text()
        log.close()
    # The app's own port: refused as a usage error naming both, before anything binds
    # (it bound the metrics first, then failed "cannot listen on ...: in use" for the app).
    for argv in ([MSE, "serve", "app:app", "--code", code, "--no-tls", "--port", str(mport)],
                 [MSE, "serve", "app:app", "--code", code, "--no-tls"]):  # default --port 8443
        p = argv[-1] if argv[-2] == "--port" else "8443"
        r = run(*argv, "--metrics", f"127.0.0.1:{p}", env=env, check=False, timeout=60)
        assert r.returncode == 2 and "--metrics" in r.stderr and "--port" in r.stderr, r.stderr
        assert f"port {p} " in r.stderr, r.stderr
    boot = os.environ.get("MSE_BOOTSTRAP", str(BUILD / "mse-bootstrap"))
    benv = dict(env, MSE_COORDINATOR="127.0.0.1:1", MSE_REPLICA_LISTEN=f"127.0.0.1:{mport}",
                MSE_REPLICA_METRICS=f"127.0.0.1:{mport}")
    r = run(boot, "app:app", "--app-dir", code, "--coordinator-mrenclave", "ab" * 32, env=benv,
            check=False, timeout=60)
    assert r.returncode == 2 and "MSE_REPLICA_METRICS" in r.stderr and f"port {mport} " in r.stderr, r.stderr
    r = run(boot, "app:app", "--app-dir", code, "--id", "x", "--no-ssl", "--port", mport,
            "--metrics", f"127.0.0.1:{mport}", env=env, check=False, timeout=60)
    assert r.returncode == 2 and "--metrics" in r.stderr and f"port {mport} " in r.stderr, r.stderr
    for bad in ("9100", "127.0.0.1", "127.0.0.1:99999", "::1:9100"):
        r = run(MSE, "serve", "app:app", "--code", code, "--no-tls", "--metrics", bad, env=env,
                check=False, timeout=60)
        assert r.returncode == 2 and "--metrics" in r.stderr and bad in r.stderr, (bad, r.stderr)


def test_deploy_metrics_restart_status_list(tmp_path):
    env = env_for(tmp_path)
    run(MSE, "scaffold", "mapp", env=env, cwd=tmp_path)
    proj = tmp_path / "mapp"
    # Refused before anything starts: a malformed value (usage), a name where an
    # address is expected, a port another process holds.
    r = run(MSE, "deploy", "--project", proj, "--no-tests", "--metrics", "nonsense", env=env,
            check=False)
    assert r.returncode == 2 and "--metrics" in r.stderr and "nonsense" in r.stderr, r.stderr
    r = run(MSE, "deploy", "--project", proj, "--no-tests", "--metrics", "localhost:0", env=env,
            check=False)
    assert r.returncode == 1 and "--metrics" in r.stderr and "numeric" in r.stderr, r.stderr
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    try:
        r = run(MSE, "deploy", "--project", proj, "--no-tests", "--metrics",
                f"127.0.0.1:{held.getsockname()[1]}", env=env, check=False)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "--metrics" in r.stderr and "Address already in use" in r.stderr, r.stderr
    finally:
        held.close()
    assert run(MSE, "list", "--json", env=env).stdout.count('"name"') == 0

    mport = free_port()
    addr = f"127.0.0.1:{mport}"
    try:
        j = json.loads(run(MSE, "deploy", "--project", proj, "--no-tests", "--json",
                           "--metrics", addr, env=env).stdout)
        assert j["ok"] and j["metrics"] == addr, j
        ca = proj / ".mse/verified/ratls.pem"
        url = f"https://localhost:{j['port']}"
        _, c0, n0 = scrape(addr)
        for _ in range(4):
            assert curl(url + "/health", ca) == "200"
        for _ in range(3):
            assert curl(url + "/no-such-page", ca) == "404"
        text, c1, n1 = scrape(addr)
        d = {k: c1[k] - c0[k] for k in c1}
        assert d == {"1xx": 0, "2xx": 4, "3xx": 0, "4xx": 3, "5xx": 0}, (c0, c1)
        assert n1 - n0 == 7
        key = (proj / ".mse").glob("package.*/*.key")
        for k in key:  # the code key never appears, in any spelling
            assert k.read_bytes().strip().decode(errors="replace") not in text
        assert "no-such-page" not in text and "localhost" not in text

        st = json.loads(run(MSE, "status", "mapp", "--json", env=env).stdout)
        assert st["metrics"] == addr
        assert f"metrics       http://{addr}/metrics" in run(MSE, "status", "mapp", env=env).stdout
        (entry,) = json.loads(run(MSE, "list", "--json", env=env).stdout)["instances"]
        assert entry["metrics"] == addr and entry["role"] == "enclave"
        state = json.loads((tmp_path / "state/mse/mapp/state.json").read_text())
        assert state["metrics"] == addr

        # restart: the same address, a new process (counters from zero), still counting.
        run(MSE, "restart", "mapp", env=env)
        assert json.loads(run(MSE, "status", "mapp", "--json", env=env).stdout)["metrics"] == addr
        _, c2, n2 = scrape(addr)  # the old process is stopped: this is the new one's
        assert curl(url + "/health", tmp_path / "state/mse/mapp/ratls.pem") == "200"
        _, c3, n3 = scrape(addr)
        assert c3["2xx"] - c2["2xx"] == 1 and n3 - n2 == 1
    finally:
        run(MSE, "stop", "mapp", "--remove", env=env, check=False)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{addr}/metrics", timeout=5)


@pytest.mark.skipif(not (BUILD / "mse-coordinator").exists(), reason="mse-coordinator not built")
def test_deploy_replicas_each_its_own_metrics_port(tmp_path):
    env = env_for(tmp_path)
    run(MSE, "scaffold", "mrep", env=env, cwd=tmp_path)
    proj = tmp_path / "mrep"
    base = free_port()
    try:
        out = run(MSE, "deploy", "--project", proj, "--replicas", "2", "--no-tests", "--json",
                  "--metrics", f"127.0.0.1:{base}", env=env).stdout
        j = json.loads(out)
        assert j["ok"] and len(j["replica_metrics"]) == 2, j
        addrs = j["replica_metrics"]
        ports = [int(a.rsplit(":", 1)[1]) for a in addrs]
        assert ports[0] == base and len(set(ports)) == 2 and all(p > base for p in ports[1:]), addrs
        ca = proj / ".mse/ca.pem"
        # Each replica counts its own requests: 2 on the first, 3 on the second.
        before = [scrape(a)[1] for a in addrs]
        for i, n in enumerate((2, 3)):
            for _ in range(n):
                assert curl(f"https://localhost:{j['replica_ports'][i]}/health", ca) == "200"
        after = [scrape(a)[1] for a in addrs]
        assert [after[i]["2xx"] - before[i]["2xx"] for i in range(2)] == [2, 3], (before, after)
        # Not in the measurement: both replicas are one identity for the coordinator.
        st = json.loads(run(MSE, "status", "mrep-coordinator", "--json", env=env).stdout)
        assert len({r["mrenclave"] for r in st["replicas"]}) == 1, st["replicas"]
        lst = {e["name"]: e for e in json.loads(run(MSE, "list", "--json", env=env).stdout)["instances"]}
        assert [lst["mrep-1"]["metrics"], lst["mrep-2"]["metrics"]] == addrs
        assert lst["mrep-coordinator"]["metrics"] is None
        # A replica restarted keeps its address.
        run(MSE, "restart", "mrep-2", env=env)
        assert json.loads(run(MSE, "status", "mrep-2", "--json", env=env).stdout)["metrics"] == addrs[1]
        assert curl(f"https://localhost:{j['replica_ports'][1]}/health", ca) == "200"
        assert scrape(addrs[1])[1]["2xx"] >= 1
        # A new version rolled without --metrics: each new replica keeps its old one's
        # address, on the next free port (the old one holds its own until it stops).
        (proj / "mse_src/app.py").write_text((proj / "mse_src/app.py").read_text() + "\n# v2\n")
        j2 = json.loads(run(MSE, "deploy", "--project", proj, "--replicas", "2", "--no-tests",
                            "--json", env=env).stdout)
        new = j2["replica_metrics"]
        assert len(new) == 2 and all(a and a.startswith("127.0.0.1:") for a in new), new
        assert len(set(new)) == 2 and not set(new) & set(addrs), (addrs, new)
        for i, a in enumerate(new):
            _, c0, _ = scrape(a)
            assert curl(f"https://localhost:{j2['replica_ports'][i]}/health", ca) == "200"
            assert scrape(a)[1]["2xx"] - c0["2xx"] == 1
    finally:
        lst = run(MSE, "list", env=env, check=False).stdout
        names = [l.split()[0] for l in lst.splitlines()[1:] if l.strip()]
        for n in names:
            run(MSE, "stop", n, "--remove", env=env, check=False)
    assert run(MSE, "list", env=env).stdout.strip().startswith("no enclaves")


def test_coordinator_replica_refuses_a_bad_metrics_address(tmp_path):
    env = env_for(tmp_path)
    r = run(MSE, "coordinator", "replica", "--name", "r", "--package", tmp_path / "p.tar",
            "--url", "127.0.0.1:1", "--coordinator-mrenclave", "00" * 32, "--metrics", "x:y",
            env=env, check=False)
    assert r.returncode == 2 and "--metrics" in r.stderr and "x:y" in r.stderr, r.stderr
    # A replica's option: another subcommand refuses it instead of ignoring it.
    for sub in (["keygen", "--out", tmp_path / "k"],
                ["start", "--name", "c", "--owner-key", tmp_path / "k.pub"]):
        r = run(MSE, "coordinator", *sub, "--metrics", "127.0.0.1:0", env=env, check=False)
        assert r.returncode == 2 and "--metrics" in r.stderr and sub[0] in r.stderr, r.stderr
    assert not list(tmp_path.glob("k*")), "keygen ran despite the usage error"
    r = run(MSE, "spawn", "s", "--package", tmp_path / "p.tar", "--output", tmp_path / "o",
            "--metrics", "[::1]", env=env, check=False)
    assert r.returncode == 2 and "--metrics" in r.stderr, r.stderr
