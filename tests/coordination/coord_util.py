"""Shared helpers of the coordination tests: a fast-timing raftkv cluster,
etcdctl shortcuts and the Lock/Election test client."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402

# Election timeout 500 ms: the minimum lease TTL is ceil(1.5 x 0.5 s) = 1 s.
FAST = ["--heartbeat-interval", "50", "--election-timeout", "500"]
COORD_CLIENT = os.environ.get("COORD_CLIENT_BIN", "")


def ctl(ep, *args, **kw):
    return h.etcdctl([ep] if isinstance(ep, str) else ep, *args, **kw)


def ok(ep, *args, **kw) -> str:
    r = ctl(ep, *args, **kw)
    if r.returncode != 0:
        raise AssertionError(f"etcdctl {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def grant(ep, ttl: int) -> str:
    """Grants a lease; returns its id in hex as etcdctl prints it."""
    out = ok(ep, "lease", "grant", str(ttl))
    m = re.search(r"lease ([0-9a-f]+) granted with TTL\((\d+)s\)", out)
    assert m, out
    return m.group(1)


def get_value(ep, key: str):
    out = ok(ep, "get", key, "--print-value-only").strip("\n")
    return out if out else None


def wait_until(pred, timeout_s: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


def coord(ep: str, *args: str, timeout_s: float = 20.0) -> subprocess.CompletedProcess:
    if not COORD_CLIENT:
        raise RuntimeError("COORD_CLIENT_BIN is not set (run through CTest)")
    return subprocess.run([COORD_CLIENT, ep, *args], capture_output=True, text=True,
                          timeout=timeout_s)


def coord_bg(ep: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([COORD_CLIENT, ep, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def watch_service_available(ep: str) -> bool:
    """True when the server answers the Watch service (etcdctl lock/elect and
    the etcd3 client's contended lock() wait with it)."""
    p = subprocess.Popen([h.ETCDCTL_BIN, "--endpoints", ep, "watch", "probe-watch-service"],
                         env=dict(os.environ, ETCDCTL_API="3"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        _, err = p.communicate(timeout=1.5)
        return "Unimplemented" not in err and "unknown service" not in err
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        return True  # still watching: the service is there
