"""Helpers shared by the maintenance tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402,F401

RAFTKVCTL_BIN = os.environ.get("RAFTKVCTL_BIN", "")
FAST = ["--heartbeat-interval", "50", "--election-timeout", "500"]


def ctl(endpoints, *args: str, timeout_s: float = 20.0) -> subprocess.CompletedProcess:
    """etcdctl against a list of endpoints (or one endpoint string)."""
    eps = [endpoints] if isinstance(endpoints, str) else list(endpoints)
    return h.etcdctl(eps, *args, timeout_s=timeout_s)


def ok(endpoints, *args: str, timeout_s: float = 20.0) -> str:
    r = ctl(endpoints, *args, timeout_s=timeout_s)
    if r.returncode != 0:
        raise AssertionError(f"etcdctl {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    return r.stdout


def js(endpoints, *args: str, timeout_s: float = 20.0):
    out = ok(endpoints, "-w", "json", *args, timeout_s=timeout_s)
    # --cluster commands print one JSON document (a list) per call.
    return json.loads(out)


def raftkvctl(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    if not RAFTKVCTL_BIN:
        raise RuntimeError("RAFTKVCTL_BIN is not set (run through CTest)")
    env = dict(os.environ)
    # restore runs the server binary: let raftkvctl find it on PATH too.
    if h.RAFTKV_BIN:
        env["PATH"] = os.path.dirname(h.RAFTKV_BIN) + os.pathsep + env.get("PATH", "")
    return subprocess.run([RAFTKVCTL_BIN, *args], capture_output=True, text=True,
                          timeout=timeout_s, env=env)


def wait_until(pred, timeout_s: float, what: str, step_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step_s)
