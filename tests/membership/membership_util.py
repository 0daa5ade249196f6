"""Helpers shared by the membership tests: etcdctl member commands, starting a
member that joins a running cluster, and waiting for leaders and catch-up."""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402

ELECTION_MS = 500
FAST = ["--heartbeat-interval", "50", "--election-timeout", str(ELECTION_MS)]


def ctl(endpoints, *args, timeout_s=20.0):
    if isinstance(endpoints, str):
        endpoints = [endpoints]
    return h.etcdctl(endpoints, *args, timeout_s=timeout_s)


def member_list(endpoint):
    r = ctl(endpoint, "-w", "json", "member", "list")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout).get("members", [])


def member_id(endpoint, name):
    for m in member_list(endpoint):
        if m.get("name") == name:
            return m["ID"]
    raise AssertionError(f"{name} not in the member list")


def hex_id(i):
    return format(i, "x")


def status(node):
    r = ctl(node.endpoint, "-w", "json", "endpoint", "status", timeout_s=3)
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)[0]["Status"]
    except (ValueError, KeyError, IndexError):
        return None


def wait_leader(nodes, timeout_s=15.0):
    """The node that every answering member names as leader."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sts = {n.name: status(n) for n in nodes}
        leaders = {s.get("leader", 0) for s in sts.values() if s is not None}
        if len(leaders) == 1 and 0 not in leaders:
            (lead,) = leaders
            for n in nodes:
                s = sts[n.name]
                if s is not None and s["header"]["member_id"] == lead:
                    return n
        time.sleep(0.05)
    raise AssertionError("no leader agreed on")


def add_member(endpoints, name, peer_url, learner=False):
    """etcdctl member add; returns (member id, ETCD_INITIAL_CLUSTER)."""
    args = ["member", "add", name, "--peer-urls", peer_url]
    if learner:
        args.append("--learner")
    r = ctl(endpoints, *args)
    assert r.returncode == 0, r.stderr
    m = re.search(r"Member +([0-9a-f]+) added", r.stdout)
    ic = re.search(r'ETCD_INITIAL_CLUSTER="([^"]*)"', r.stdout)
    assert m and ic, r.stdout
    assert 'ETCD_INITIAL_CLUSTER_STATE="existing"' in r.stdout
    return int(m.group(1), 16), ic.group(1)


def join(workdir, endpoints, name, extra_args=(), learner=False, node=None):
    """Adds a member and starts it with --initial-cluster-state existing."""
    n = node or h.Node("raftkv", name, workdir, extra_args=list(FAST) + list(extra_args))
    mid, initial_cluster = add_member(endpoints, name, n.peer_url, learner=learner)
    try:
        n.start(initial_cluster, "existing")
    except RuntimeError as e:
        raise AssertionError(f"{name} did not start: {e}\n{n.log_tail()}") from e
    return n, mid


def wait_serves(node, key, value, timeout_s=30.0):
    """Waits until `node` serves key=value from its own store (serializable)."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = ctl(node.endpoint, "get", key, "--consistency=s", "--print-value-only", timeout_s=5)
        if r.returncode == 0 and r.stdout.strip() == value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{node.name} does not serve {key}={value}: {r.stdout!r} "
                                 f"{r.stderr!r}\n{node.log_tail()}")
        time.sleep(0.1)


def wait_exit(node, timeout_s=15.0):
    """Waits for a member to stop by itself; returns its exit code."""
    deadline = time.monotonic() + timeout_s
    while node.proc.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{node.name} still running\n{node.log_tail()}")
        time.sleep(0.1)
    return node.proc.returncode


def log_text(node):
    with open(node.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")
