# SPDX-License-Identifier: Apache-2.0
"""One way for the e2e tests to run a command: its output captured as text, a
failure (with check) raised with both streams so the test log shows why."""
import subprocess


def run(*args, env, cwd=None, check=True, timeout=300):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r
